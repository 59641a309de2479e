//! The webhook outbox in SQLite (table in `schema.rs`): claim due rows, finish or reschedule
//! them. One writer: a claim is one statement, so two stores on one file never claim a row
//! twice.

use image_chat_protocol::TenantId;
use rusqlite::{Connection, params};

use crate::store::{OutboxItem, StoreError};

/// Claims up to `limit` due, unclaimed rows until `lease_until_ms`.
pub(super) fn claim(
    conn: &Connection,
    now_ms: u64,
    lease_until_ms: u64,
    limit: u32,
) -> Result<Vec<OutboxItem>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE webhook_outbox SET lease_ms = ?1 WHERE id IN (SELECT id FROM webhook_outbox \
         WHERE due_ms <= ?2 AND lease_ms <= ?2 ORDER BY id LIMIT ?3) \
         RETURNING id, tenant, delivery_id, body, attempts",
    )?;
    let rows = stmt.query_map(params![lease_until_ms, now_ms, limit], |r| {
        Ok(OutboxItem {
            id: r.get(0)?,
            tenant: TenantId::new(r.get::<_, String>(1)?),
            delivery_id: r.get(2)?,
            body: r.get(3)?,
            attempts: r.get(4)?,
        })
    })?;
    let mut items: Vec<OutboxItem> = rows.collect::<Result<_, _>>()?;
    items.sort_by_key(|item| item.id);
    Ok(items)
}

/// Removes a row.
pub(super) fn done(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM webhook_outbox WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

/// Reschedules a row after a failed attempt and releases its claim.
pub(super) fn retry(
    conn: &Connection,
    id: i64,
    attempts: u32,
    due_ms: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE webhook_outbox SET attempts = ?2, due_ms = ?3, lease_ms = 0 WHERE id = ?1",
    )?
    .execute(params![id, attempts, due_ms])?;
    Ok(())
}
