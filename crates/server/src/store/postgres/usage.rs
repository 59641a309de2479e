//! Usage rows in PostgreSQL (the tables of migration 5): additive upserts of a node's batch,
//! and the per-day read with the day's viewer peak. The same statements as SQLite's
//! (`sqlite/usage.rs`) in PostgreSQL's dialect.

use super::tx::{PgTx, signed, unsigned};
use crate::store::{StoreError, UsageBatch, UsageCounts};

/// Adds `batch` in the caller's transaction.
pub(super) async fn add(tx: &mut PgTx<'_, '_>, batch: &UsageBatch) -> Result<(), StoreError> {
    let days =
        tx.0.prepare_cached(
            "INSERT INTO usage_days (tenant, day, frames, bytes, discussions, comments, ops, \
             connections) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant, day) DO UPDATE SET \
             frames = usage_days.frames + EXCLUDED.frames, \
             bytes = usage_days.bytes + EXCLUDED.bytes, \
             discussions = usage_days.discussions + EXCLUDED.discussions, \
             comments = usage_days.comments + EXCLUDED.comments, \
             ops = usage_days.ops + EXCLUDED.ops, \
             connections = usage_days.connections + EXCLUDED.connections",
        )
        .await?;
    for row in &batch.days {
        let c = &row.counts;
        tx.0.execute(
            &days,
            &[
                &row.tenant.as_str(),
                &row.day,
                &signed("frames", c.frames)?,
                &signed("bytes", c.bytes)?,
                &signed("discussions", c.discussions)?,
                &signed("comments", c.comments)?,
                &signed("ops", c.ops)?,
                &signed("connections", c.connections)?,
            ],
        )
        .await?;
    }
    let peaks =
        tx.0.prepare_cached(
            "INSERT INTO usage_viewer_minutes (tenant, day, minute, node, viewers) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, day, minute, node) DO UPDATE SET \
             viewers = GREATEST(usage_viewer_minutes.viewers, EXCLUDED.viewers)",
        )
        .await?;
    for peak in &batch.peaks {
        // < 1440.
        let minute = i16::try_from(peak.minute).unwrap_or(i16::MAX);
        tx.0.execute(
            &peaks,
            &[
                &peak.tenant.as_str(),
                &peak.day,
                &minute,
                &batch.node,
                &signed("viewers", peak.viewers)?,
            ],
        )
        .await?;
    }
    Ok(())
}

/// Counters per day of `tenant` in `from..=to`.
pub(super) async fn counts(
    tx: &mut PgTx<'_, '_>,
    tenant: &str,
    from: &str,
    to: &str,
) -> Result<Vec<(String, UsageCounts)>, StoreError> {
    let rows =
        tx.0.query(
            "SELECT day, frames, bytes, discussions, comments, ops, connections FROM usage_days \
             WHERE tenant = $1 AND day >= $2 AND day <= $3 ORDER BY day",
            &[&tenant, &from, &to],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                UsageCounts {
                    frames: unsigned("frames", r.try_get(1)?)?,
                    bytes: unsigned("bytes", r.try_get(2)?)?,
                    discussions: unsigned("discussions", r.try_get(3)?)?,
                    comments: unsigned("comments", r.try_get(4)?)?,
                    ops: unsigned("ops", r.try_get(5)?)?,
                    connections: unsigned("connections", r.try_get(6)?)?,
                },
            ))
        })
        .collect()
}

/// Each day's peak (the highest per-minute sum over nodes) of `tenant` in `from..=to`.
pub(super) async fn peaks(
    tx: &mut PgTx<'_, '_>,
    tenant: &str,
    from: &str,
    to: &str,
) -> Result<Vec<(String, u64)>, StoreError> {
    let rows =
        tx.0.query(
            "SELECT day, MAX(total)::BIGINT FROM (SELECT day, minute, SUM(viewers) AS total \
             FROM usage_viewer_minutes WHERE tenant = $1 AND day >= $2 AND day <= $3 \
             GROUP BY day, minute) AS per_minute GROUP BY day ORDER BY day",
            &[&tenant, &from, &to],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, unsigned("viewers", r.try_get(1)?)?)))
        .collect()
}
