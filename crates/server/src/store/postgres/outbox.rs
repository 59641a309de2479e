//! The webhook outbox in PostgreSQL (table of migration 5): claim due rows with
//! `FOR UPDATE SKIP LOCKED` (nodes claiming at once skip each other's rows instead of waiting
//! or taking them twice), finish or reschedule them.

use image_chat_protocol::TenantId;

use super::tx::{PgTx, signed};
use crate::store::{OutboxItem, StoreError};

/// Claims up to `limit` due, unclaimed rows until `lease_until_ms`.
pub(super) async fn claim(
    tx: &mut PgTx<'_, '_>,
    now_ms: u64,
    lease_until_ms: u64,
    limit: u32,
) -> Result<Vec<OutboxItem>, StoreError> {
    let rows =
        tx.0.query(
            "UPDATE webhook_outbox SET lease_ms = $1 WHERE id IN (SELECT id FROM webhook_outbox \
             WHERE due_ms <= $2 AND lease_ms <= $2 ORDER BY id LIMIT $3 \
             FOR UPDATE SKIP LOCKED) RETURNING id, tenant, delivery_id, body, attempts",
            &[
                &signed("lease", lease_until_ms)?,
                &signed("now", now_ms)?,
                &i64::from(limit),
            ],
        )
        .await?;
    let mut items = rows
        .iter()
        .map(|r| {
            Ok(OutboxItem {
                id: r.try_get(0)?,
                tenant: TenantId::new(r.try_get::<_, String>(1)?),
                delivery_id: r.try_get(2)?,
                body: r.try_get(3)?,
                attempts: u32::try_from(r.try_get::<_, i32>(4)?).unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    items.sort_by_key(|item| item.id);
    Ok(items)
}

/// Removes a row.
pub(super) async fn done(tx: &mut PgTx<'_, '_>, id: i64) -> Result<(), StoreError> {
    tx.0.execute("DELETE FROM webhook_outbox WHERE id = $1", &[&id])
        .await?;
    Ok(())
}

/// Reschedules a row after a failed attempt and releases its claim.
pub(super) async fn retry(
    tx: &mut PgTx<'_, '_>,
    id: i64,
    attempts: u32,
    due_ms: u64,
) -> Result<(), StoreError> {
    let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
    tx.0.execute(
        "UPDATE webhook_outbox SET attempts = $2, due_ms = $3, lease_ms = 0 WHERE id = $1",
        &[&id, &attempts, &signed("due", due_ms)?],
    )
    .await?;
    Ok(())
}
