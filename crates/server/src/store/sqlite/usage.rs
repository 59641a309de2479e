//! Usage rows in SQLite (tables in `schema.rs`): additive upserts of a node's batch, and the
//! per-day read with the day's viewer peak.

use rusqlite::{Connection, params};

use crate::store::{StoreError, UsageBatch, UsageCounts};

/// Adds `batch` in the caller's transaction.
pub(super) fn add(conn: &Connection, batch: &UsageBatch) -> Result<(), StoreError> {
    let mut days = conn.prepare_cached(
        "INSERT INTO usage_days (tenant, day, frames, bytes, discussions, comments, ops, \
         connections) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (tenant, day) DO UPDATE SET \
         frames = usage_days.frames + excluded.frames, \
         bytes = usage_days.bytes + excluded.bytes, \
         discussions = usage_days.discussions + excluded.discussions, \
         comments = usage_days.comments + excluded.comments, \
         ops = usage_days.ops + excluded.ops, \
         connections = usage_days.connections + excluded.connections",
    )?;
    for row in &batch.days {
        let c = &row.counts;
        days.execute(params![
            row.tenant.as_str(),
            row.day,
            c.frames,
            c.bytes,
            c.discussions,
            c.comments,
            c.ops,
            c.connections
        ])?;
    }
    let mut peaks = conn.prepare_cached(
        "INSERT INTO usage_viewer_minutes (tenant, day, minute, node, viewers) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant, day, minute, node) DO UPDATE SET \
         viewers = MAX(usage_viewer_minutes.viewers, excluded.viewers)",
    )?;
    for peak in &batch.peaks {
        peaks.execute(params![
            peak.tenant.as_str(),
            peak.day,
            peak.minute,
            batch.node,
            peak.viewers
        ])?;
    }
    Ok(())
}

/// Counters per day of `tenant` in `from..=to`.
pub(super) fn counts(
    conn: &Connection,
    tenant: &str,
    from: &str,
    to: &str,
) -> Result<Vec<(String, UsageCounts)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT day, frames, bytes, discussions, comments, ops, connections FROM usage_days \
         WHERE tenant = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day",
    )?;
    let rows = stmt.query_map(params![tenant, from, to], |r| {
        Ok((
            r.get(0)?,
            UsageCounts {
                frames: r.get(1)?,
                bytes: r.get(2)?,
                discussions: r.get(3)?,
                comments: r.get(4)?,
                ops: r.get(5)?,
                connections: r.get(6)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Each day's peak (the highest per-minute sum over nodes) of `tenant` in `from..=to`.
pub(super) fn peaks(
    conn: &Connection,
    tenant: &str,
    from: &str,
    to: &str,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT day, MAX(total) FROM (SELECT day, minute, SUM(viewers) AS total \
         FROM usage_viewer_minutes WHERE tenant = ?1 AND day >= ?2 AND day <= ?3 \
         GROUP BY day, minute) GROUP BY day ORDER BY day",
    )?;
    let rows = stmt.query_map(params![tenant, from, to], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
