//! The op rules every [`Store`](super::Store) applies, written once over the storage
//! transaction interface in [`tx`]: which op may change what (authorship, duplicate ids), the
//! size limits and quotas, the event an op becomes, the idempotency fingerprint, how `seq` is
//! assigned, and what a resuming client is sent.
//!
//! A backend begins a transaction, hands it to one of the functions here, and commits it if the
//! function returned `Ok` (rolling it back otherwise). It implements only the SQL of [`tx`];
//! nothing here knows which database runs underneath, and the store conformance suite
//! (`tests/store_conformance/`) checks that every backend behaves the same.
//!
//! # The commit, and why `seq` is gap-free across servers
//!
//! [`commit`] first locks the image's row ([`tx::WriteTx::lock_image`]; created on the first
//! op), then answers a retry from the log, then checks and writes the op, appends its event
//! as `head + 1` and moves the head, all in the caller's one transaction. The row lock is held
//! until that transaction ends, so two commits on one image — from two tasks or from two
//! servers on one database — are serialized by the database itself: each reads the head the
//! previous one wrote. No in-process lock is needed for that (the server's per-image lock in
//! `app.rs` only keeps its own publishes in order).
//!
//! # How to add an op
//!
//! 1. Add the variant to `image_chat_protocol::Op` (and its event or [`ChatChange`]).
//! 2. Give it a fingerprint arm in [`fingerprint`] (a new kind tag, then every field that makes
//!    the op *this* op; never the time).
//! 3. Write its rule in [`ops`]: one `async fn` taking the [`ops::OpContext`] (image row, the
//!    `seq` it will get, actor, time, limits) and the op, checking the state through
//!    [`tx::ReadTx`] and changing it through [`tx::WriteTx`], returning its [`Event`](image_chat_protocol::Event); then
//!    dispatch to it from [`ops::apply`]. Keep byte totals exact with [`limits::check_bytes`]
//!    before a write that grows the image and [`limits::add_bytes`] after any write that changes
//!    its weight.
//! 4. If it needs a statement the interface lacks (say, deleting one comment), add the method
//!    to [`tx`] and implement it in every backend (`store/sqlite/tx.rs`,
//!    `store/postgres/tx.rs`); a new column needs a migration in each backend's schema module
//!    (`sqlite/schema.rs`: a new `user_version`; `postgres/schema.rs`: a new entry at the end
//!    of `MIGRATIONS`).
//! 5. Add its behaviour to the conformance suite: it then runs against every backend.
//!
//! [`ChatChange`]: image_chat_protocol::ChatChange

pub mod catch_up;
pub mod fingerprint;
pub mod limits;
pub mod moderation;
pub mod ops;
pub mod size;
pub mod tx;

use image_chat_protocol::{Op, Position, User};
use rand::TryRngCore;
use rand::rngs::OsRng;

use super::{Commit, CommitLimits, ImageKey, Rejection, StoreError};
use tx::{ImageRow, NewEvent, WriteTx};

/// Position of an image that has no log yet: epoch 0 means "no log" (a log's epoch is random
/// and nonzero), so a client resuming from exactly this on a still-empty image is current.
pub const NO_LOG: Position = Position { epoch: 0, seq: 0 };

impl ImageRow {
    /// Where the image's log stands.
    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch,
            seq: self.head,
        }
    }
}

/// What [`commit`] is asked to do.
#[derive(Clone, Copy, Debug)]
pub struct CommitRequest<'a> {
    /// The image written.
    pub image: &'a ImageKey,
    /// Who sends the op.
    pub actor: &'a User,
    /// The op (its shape already validated by the codec).
    pub op: &'a Op,
    /// Server time, ms since the Unix epoch: stamps comments.
    pub now_ms: u64,
    /// Size limits to respect.
    pub limits: CommitLimits,
    /// Events kept per image log (≥ 1): older ones are pruned by this commit.
    pub retention: u64,
}

/// Commits `req.op` in the caller's transaction (see the module doc), or recognises a retry of
/// an op already committed. On `Err` the caller must roll the transaction back: a refused op
/// may have created the image's row.
pub async fn commit<T: WriteTx>(tx: &mut T, req: CommitRequest<'_>) -> Result<Commit, StoreError> {
    let fingerprint = fingerprint::fingerprint(req.actor, req.op)?;
    let broadcast_id = req.op.broadcast_id().as_str();
    let image = lock_or_create_image(tx, req.image).await?;
    // A retry of an op already committed (and still retained) is answered from the log, before
    // any state check: the state has moved on since (the chat now exists…). A new log has
    // nothing to look up.
    if image.head > 0
        && let Some((seq, previous)) = tx.event_by_broadcast_id(image.id, broadcast_id).await?
    {
        return if previous == fingerprint {
            Ok(Commit::Duplicate { seq })
        } else {
            Err(Rejection::BroadcastIdConflict.into())
        };
    }
    // Checked after the retry lookup (a retry of an op committed before a lock or ban is
    // acknowledged again, not refused) and inside the transaction, so a lock or ban made on
    // any server holds for the very next op everywhere.
    moderation::check(tx, req.image, req.actor).await?;
    let seq = image.head + 1;
    let cx = ops::OpContext {
        tenant: req.image.tenant.as_str(),
        kind: req.image.kind(),
        image,
        seq,
        actor: req.actor,
        now_ms: req.now_ms,
        limits: req.limits,
    };
    let event = ops::apply(tx, &cx, req.op).await?;
    let body = to_json(&event)?;
    tx.append_event(
        image.id,
        NewEvent {
            seq,
            broadcast_id,
            fingerprint: &fingerprint,
            body: &body,
        },
    )
    .await?;
    tx.set_head(image.id, seq).await?;
    if let Some(oldest_kept) = seq.checked_sub(req.retention) {
        tx.prune_events(image.id, oldest_kept).await?;
    }
    Ok(Commit::Applied(event))
}

/// The image's row, locked; created with a fresh epoch and an empty log if it has none (in
/// the caller's transaction: a refused op rolls the creation back).
async fn lock_or_create_image<T: WriteTx>(
    tx: &mut T,
    key: &ImageKey,
) -> Result<ImageRow, StoreError> {
    if let Some(row) = tx.lock_image(key).await? {
        return Ok(row);
    }
    if let Some(row) = tx.insert_image(key, random_epoch()?).await? {
        return Ok(row);
    }
    // Another server created it between our two statements; it is committed now (the insert
    // waited for it), so this finds and locks it.
    tx.lock_image(key)
        .await?
        .ok_or_else(|| StoreError::Backend("an image row vanished while being created".into()))
}

/// A random nonzero epoch: random so that a log recreated from scratch (a new database) does
/// not repeat an epoch clients may still hold; nonzero because 0 means "no log".
fn random_epoch() -> Result<u32, StoreError> {
    loop {
        let epoch = OsRng
            .try_next_u32()
            .map_err(|e| StoreError::Backend(format!("os random source failed: {e}")))?;
        if epoch != 0 {
            return Ok(epoch);
        }
    }
}

/// The named 32-byte secret: created at random by the first caller, the same for every later
/// one (and every server sharing the database). Needs a write transaction.
pub async fn secret<T: WriteTx>(tx: &mut T, name: &str) -> Result<[u8; 32], StoreError> {
    let mut fresh = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut fresh)
        .map_err(|e| StoreError::Backend(format!("os random source failed: {e}")))?;
    // The first caller's value wins, for good: later calls (and other servers) read it back.
    tx.insert_secret(name, &fresh).await?;
    let value = tx
        .secret(name)
        .await?
        .ok_or_else(|| corrupt("secret", "missing right after it was stored"))?;
    value
        .try_into()
        .map_err(|v: Vec<u8>| corrupt("secret", format!("{} bytes instead of 32", v.len())))
}

/// Stored data these rules cannot read back (JSON that does not parse, a log with a hole): the
/// database was changed by something else, or is corrupt.
pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored data is corrupt: {what}: {detail}"))
}

/// JSON of a value stored or broadcast.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))
}

/// Parses stored JSON, reporting a failure as corruption of `what`.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| corrupt(what, e))
}

/// A size as a signed delta (sizes are far below `i64::MAX`).
pub(crate) fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
