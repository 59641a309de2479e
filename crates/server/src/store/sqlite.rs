//! The embedded, default [`Store`]: one SQLite database file holding every tenant's discussions,
//! each image's event log, and the server secrets.
//!
//! # Durability and concurrency
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a transaction is on disk when
//! `COMMIT` returns: [`Store::commit`] resolves only after that, which is what lets the server
//! ack an op as durable. All work goes through one connection behind a [`std::sync::Mutex`] and
//! runs on tokio's blocking pool (rusqlite is blocking). One writer is what SQLite allows anyway,
//! and serializing every commit on the mutex is what makes `seq` assignment gap-free without any
//! retry logic. A commit whose caller stops waiting (a client disconnects) still runs to its end:
//! the change is either fully committed or not at all, and the client learns which on resync.
//!
//! # Schema (version 2, recorded in `PRAGMA user_version`)
//!
//! Ids, anchors and event bodies are stored in their wire form (22-character base64url ids,
//! `[x, y]` point anchors). Version 2 has version 1's tables; it was bumped when those wire forms
//! changed (they were hyphenated UUIDs and `{"type":"point",…}` objects), so a version-1 file is
//! refused at open instead of failing on its first read. No conversion is offered: version 1
//! never shipped in a release.
//!
//! - `images`: one row per image that has ever been written: its log `epoch` (random, nonzero)
//!   and `head` (the last assigned `seq`). The row is created by the first committed op.
//! - `chats`: one row per live discussion, keyed by `(tenant, chat_id)` — chat ids are unique in
//!   a tenant, not only in an image — with the image it belongs to, its anchor (JSON, so new
//!   anchor kinds need no migration), its author's id and the `seq` that created it (its order).
//! - `comments`: keyed by `(tenant, comment_id)`, ordered within a discussion by the `seq` that
//!   added them, deleted with their discussion (`ON DELETE CASCADE`). A discussion's opening
//!   comment is stored under the discussion's id (the protocol gives it that id), so one id
//!   space covers both tables: a new chat id must be free as a comment id and vice versa.
//! - `events`: the last `retention` events of each image, as the exact JSON broadcast, with the
//!   op's `broadcast_id` and a fingerprint of its content for idempotent retries.
//! - `secrets`: named 32-byte random values.
//!
//! # Choices worth knowing
//!
//! - Idempotency lasts as long as the op's event is retained: a retry of an op whose event was
//!   pruned is treated as a new op (and is then usually refused, e.g. `duplicate-id` for a
//!   create-chat, which the client reports as a failure rather than silently duplicating).
//! - The idempotency fingerprint covers the actor's id and the op's content (kind, ids, canonical
//!   anchor, text), not the time: a retry at a later time is the same op, but another person
//!   replaying someone's `broadcastId` is not.
//! - Epoch 0 means "this image has no log yet". An image never written reports position
//!   `{epoch: 0, seq: 0}`; a client resuming from exactly that while the image is still empty is
//!   up to date (no events). Once the first op creates the log its epoch is a random nonzero
//!   value, so the same client then gets a snapshot, which is correct.
//! - Deleted discussions leave no tombstone: their ids become free again. Ids are client UUIDs,
//!   so reuse only happens through a retry past retention (see above).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use image_chat_protocol::{
    Anchor, Chat, ChatChange, ChatId, Comment, CommentId, DeletedImageChat, Event,
    ImageChatUpdated, NewImageChat, Op, Position, Snapshot, User,
};
use rand::TryRngCore;
use rand::rngs::OsRng;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::{CatchUp, Commit, CommitLimits, ImageKey, Rejection, Store, StoreError};

/// The schema this code reads and writes, stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 2;

/// The tables (unchanged since version 1, see the module doc). Run once, inside the transaction that sets `user_version`, so a
/// crash during creation leaves an empty database (version 0) rather than half a schema.
const SCHEMA_TABLES: &str = "
CREATE TABLE images (
    id     INTEGER PRIMARY KEY,
    tenant TEXT    NOT NULL,
    image  TEXT    NOT NULL,
    epoch  INTEGER NOT NULL CHECK (epoch > 0),
    head   INTEGER NOT NULL CHECK (head >= 0),
    UNIQUE (tenant, image)
) STRICT;

CREATE TABLE chats (
    tenant      TEXT    NOT NULL,
    chat_id     TEXT    NOT NULL,
    image_row   INTEGER NOT NULL REFERENCES images (id),
    anchor      TEXT    NOT NULL,
    author_id   TEXT    NOT NULL,
    created_seq INTEGER NOT NULL,
    PRIMARY KEY (tenant, chat_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX chats_by_image ON chats (image_row, created_seq);

CREATE TABLE comments (
    tenant     TEXT    NOT NULL,
    comment_id TEXT    NOT NULL,
    chat_id    TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    author_id  TEXT    NOT NULL,
    author     TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    PRIMARY KEY (tenant, comment_id),
    FOREIGN KEY (tenant, chat_id) REFERENCES chats (tenant, chat_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX comments_by_chat ON comments (tenant, chat_id, seq);

CREATE TABLE events (
    image_row    INTEGER NOT NULL REFERENCES images (id),
    seq          INTEGER NOT NULL,
    broadcast_id TEXT    NOT NULL,
    fingerprint  BLOB    NOT NULL,
    body         TEXT    NOT NULL,
    PRIMARY KEY (image_row, seq)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX events_by_broadcast_id ON events (image_row, broadcast_id);

CREATE TABLE secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL CHECK (length(value) = 32)
) STRICT, WITHOUT ROWID;
";

/// Tuning for [`SqliteStore`].
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    /// Events kept per image log (at least 1). A client that missed more than this many changes
    /// gets a snapshot instead of the events; a retried op is recognised only while its event is
    /// kept. Default 1000.
    pub retention: u64,
    /// How long a statement waits for a lock held by another connection to the same file (a
    /// backup tool, an operator's `sqlite3` shell) before failing. Default 5 s.
    pub busy_timeout: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            retention: 1000,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`Store`] in one SQLite database file. Cheap to share: wrap it in an `Arc`.
#[derive(Debug)]
pub struct SqliteStore {
    /// The single connection; the mutex serializes every transaction (see the module doc).
    conn: Arc<Mutex<Connection>>,
    /// Events kept per image, ≥ 1.
    retention: u64,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(format!("sqlite: {e}"))
    }
}

/// Stored data this code cannot read back (JSON that does not parse, a secret of the wrong
/// length): the file was changed by something else, or is corrupt.
fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("sqlite: corrupt {what}: {detail}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, switches it to WAL with
    /// `synchronous=FULL` and foreign keys on, and creates or checks the schema.
    ///
    /// Fails if `config.retention` is 0 (idempotency and resync need at least the last event),
    /// if the file is not a database, if WAL cannot be enabled, or if its schema is newer than
    /// this code.
    pub fn open(path: &Path, config: SqliteConfig) -> Result<Self, StoreError> {
        if config.retention == 0 {
            return Err(StoreError::Backend(
                "sqlite: retention must be at least 1 event per image".into(),
            ));
        }
        let mut conn = Connection::open(path)?;
        // Set first: switching the journal mode itself may wait for other connections.
        conn.busy_timeout(config.busy_timeout)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // E.g. a filesystem without shared memory support. Refuse rather than run with a
            // concurrency model the rest of this module does not assume.
            return Err(StoreError::Backend(format!(
                "sqlite: could not enable WAL journal mode (got {mode})"
            )));
        }
        // FULL: in WAL mode NORMAL may lose the last transactions on power loss, and an acked op
        // must survive that.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            retention: config.retention,
        })
    }

    /// Runs `f` with the connection on tokio's blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().map_err(|_| {
                StoreError::Backend("sqlite: connection lock poisoned by a panic".into())
            })?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite: blocking task failed: {e}")))?
    }
}

/// Creates the schema on a new database, accepts the current one, refuses a newer one.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE: two servers opening a new file at once must not both create the schema.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_TABLES)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => {}
        1 => {
            // Written before ids became base64url and anchors arrays (protocol §3, §8); its
            // rows would not decode. Say what to do rather than only what went wrong.
            return Err(StoreError::Backend(format!(
                "sqlite: database schema version 1 predates this server's wire format (version \
                 {SCHEMA_VERSION}) and cannot be read: start it on a new database file"
            )));
        }
        other => {
            return Err(StoreError::Backend(format!(
                "sqlite: database schema version {other} is not supported (this server \
                 reads version {SCHEMA_VERSION})"
            )));
        }
    }
    tx.commit()?;
    Ok(())
}

/// An image's log as stored.
#[derive(Clone, Copy, Debug)]
struct ImageRow {
    /// Row id, the key the other tables use.
    id: i64,
    epoch: u32,
    head: u64,
}

impl ImageRow {
    fn position(&self) -> Position {
        Position {
            epoch: self.epoch,
            seq: self.head,
        }
    }
}

/// Position of an image that has no log yet (see the module doc).
const NO_LOG: Position = Position { epoch: 0, seq: 0 };

fn load_image(tx: &Transaction<'_>, image: &ImageKey) -> Result<Option<ImageRow>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id, epoch, head FROM images WHERE tenant = ?1 AND image = ?2",
            params![image.tenant.as_str(), image.image.as_str()],
            |row| {
                Ok(ImageRow {
                    id: row.get(0)?,
                    epoch: row.get(1)?,
                    head: row.get(2)?,
                })
            },
        )
        .optional()?)
}

/// The image's row, created (with a fresh random epoch and an empty log) if it does not exist.
fn load_or_create_image(tx: &Transaction<'_>, image: &ImageKey) -> Result<ImageRow, StoreError> {
    if let Some(row) = load_image(tx, image)? {
        return Ok(row);
    }
    let epoch = random_epoch()?;
    tx.execute(
        "INSERT INTO images (tenant, image, epoch, head) VALUES (?1, ?2, ?3, 0)",
        params![image.tenant.as_str(), image.image.as_str(), epoch],
    )?;
    Ok(ImageRow {
        id: tx.last_insert_rowid(),
        epoch,
        head: 0,
    })
}

/// A random nonzero epoch: random so that a log recreated from scratch (a new database file)
/// does not repeat an epoch clients may still hold; nonzero because 0 means "no log".
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

/// Hash of what makes an op *this* op: who sent it and its content (kind, ids, canonical
/// anchor, text), but not the time it arrived. Fields are length-prefixed so no two different
/// ops encode the same bytes.
fn fingerprint(actor: &User, op: &Op) -> Result<Vec<u8>, StoreError> {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"image-chat op fingerprint v1");
    field(actor.id.as_bytes());
    match op {
        Op::CreateChat(op) => {
            let anchor = serde_json::to_vec(&op.anchor.canonical())
                .map_err(|e| StoreError::Backend(format!("encoding an anchor: {e}")))?;
            field(b"create-chat");
            field(op.chat_id.as_str().as_bytes());
            field(&anchor);
            field(op.text.as_bytes());
        }
        Op::AddComment(op) => {
            field(b"add-comment");
            field(op.chat_id.as_str().as_bytes());
            field(op.comment_id.as_str().as_bytes());
            field(op.text.as_bytes());
        }
        Op::EditComment(op) => {
            field(b"edit-comment");
            field(op.chat_id.as_str().as_bytes());
            field(op.comment_id.as_str().as_bytes());
            field(op.text.as_bytes());
        }
        Op::DeleteChat(op) => {
            field(b"delete-chat");
            field(op.chat_id.as_str().as_bytes());
        }
    }
    Ok(hasher.finalize().to_vec())
}

/// Whether the chat or comment id is taken anywhere in the tenant.
fn chat_exists(tx: &Transaction<'_>, tenant: &str, chat: &ChatId) -> Result<bool, StoreError> {
    row_exists(
        tx,
        "SELECT 1 FROM chats WHERE tenant = ?1 AND chat_id = ?2",
        tenant,
        chat.as_str(),
    )
}

fn comment_exists(
    tx: &Transaction<'_>,
    tenant: &str,
    comment: &CommentId,
) -> Result<bool, StoreError> {
    row_exists(
        tx,
        "SELECT 1 FROM comments WHERE tenant = ?1 AND comment_id = ?2",
        tenant,
        comment.as_str(),
    )
}

/// Whether `sql` (parameters: tenant, id) finds a row.
fn row_exists(tx: &Transaction<'_>, sql: &str, tenant: &str, id: &str) -> Result<bool, StoreError> {
    Ok(tx
        .query_row(sql, params![tenant, id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The author id of `chat` if it exists on this image; `UnknownChat` otherwise (including when
/// it exists on another image of the tenant: ops are bound to their connection's image).
fn chat_author_on_image(
    tx: &Transaction<'_>,
    tenant: &str,
    image_row: i64,
    chat: &ChatId,
) -> Result<String, StoreError> {
    tx.query_row(
        "SELECT author_id FROM chats WHERE tenant = ?1 AND chat_id = ?2 AND image_row = ?3",
        params![tenant, chat.as_str(), image_row],
        |row| row.get(0),
    )
    .optional()?
    .ok_or(StoreError::Rejected(Rejection::UnknownChat))
}

fn may_change(actor: &User, author_id: &str) -> bool {
    actor.is_moderator || actor.id == author_id
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))
}

fn insert_comment(
    tx: &Transaction<'_>,
    tenant: &str,
    chat: &ChatId,
    seq: u64,
    comment: &Comment,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO comments (tenant, comment_id, chat_id, seq, author_id, author, text, \
         created_at, edited_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            tenant,
            comment.id.as_str(),
            chat.as_str(),
            seq,
            comment.author.id,
            to_json(&comment.author)?,
            comment.text,
            comment.created_at,
            comment.edited_at,
        ],
    )?;
    Ok(())
}

/// Checks `op` against the state and writes its change as change `seq` of `image`, returning
/// the event. A rejection returns early; the caller's transaction then rolls everything back.
#[allow(
    clippy::too_many_arguments,
    reason = "one private step of `commit_blocking`; a parameter struct would only rename them"
)]
fn apply_op(
    tx: &Transaction<'_>,
    tenant: &str,
    image: ImageRow,
    seq: u64,
    actor: &User,
    op: &Op,
    now_ms: u64,
    limits: CommitLimits,
) -> Result<Event, StoreError> {
    let epoch = image.epoch;
    match op {
        Op::CreateChat(op) => {
            // The opening comment is stored under the chat id: the id must be free in both
            // tables (a reply may have taken it as a comment id).
            let opening = op.chat_id.opening_comment();
            if chat_exists(tx, tenant, &op.chat_id)? || comment_exists(tx, tenant, &opening)? {
                return Err(Rejection::DuplicateId.into());
            }
            if limits.max_chats_per_image > 0 {
                // Counted through the `chats_by_image` index.
                let chats: u64 = tx.query_row(
                    "SELECT COUNT(*) FROM chats WHERE image_row = ?1",
                    params![image.id],
                    |row| row.get(0),
                )?;
                if chats >= u64::from(limits.max_chats_per_image) {
                    return Err(Rejection::LimitExceeded.into());
                }
            }
            let anchor: Anchor = op.anchor.canonical();
            tx.execute(
                "INSERT INTO chats (tenant, chat_id, image_row, anchor, author_id, created_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    tenant,
                    op.chat_id.as_str(),
                    image.id,
                    to_json(&anchor)?,
                    actor.id,
                    seq
                ],
            )?;
            let comment = Comment {
                id: opening,
                author: actor.clone(),
                text: op.text.clone(),
                created_at: now_ms,
                edited_at: None,
            };
            insert_comment(tx, tenant, &op.chat_id, seq, &comment)?;
            Ok(Event::NewImageChat(NewImageChat {
                seq,
                epoch,
                broadcast_id: op.broadcast_id.clone(),
                chat: Chat {
                    id: op.chat_id.clone(),
                    anchor,
                    comments: vec![comment],
                },
            }))
        }
        Op::AddComment(op) => {
            chat_author_on_image(tx, tenant, image.id, &op.chat_id)?;
            // Every live chat id is also a comment id (its opening comment's, written in the
            // same transaction), so this refuses a reply reusing a chat id too.
            if comment_exists(tx, tenant, &op.comment_id)? {
                return Err(Rejection::DuplicateId.into());
            }
            if limits.max_comments_per_thread > 0 {
                // Counted through the `comments_by_chat` index.
                let comments: u64 = tx.query_row(
                    "SELECT COUNT(*) FROM comments WHERE tenant = ?1 AND chat_id = ?2",
                    params![tenant, op.chat_id.as_str()],
                    |row| row.get(0),
                )?;
                if comments >= u64::from(limits.max_comments_per_thread) {
                    return Err(Rejection::LimitExceeded.into());
                }
            }
            let comment = Comment {
                id: op.comment_id.clone(),
                author: actor.clone(),
                text: op.text.clone(),
                created_at: now_ms,
                edited_at: None,
            };
            insert_comment(tx, tenant, &op.chat_id, seq, &comment)?;
            Ok(Event::ImageChatUpdated(ImageChatUpdated {
                seq,
                epoch,
                broadcast_id: op.broadcast_id.clone(),
                chat_id: op.chat_id.clone(),
                change: ChatChange::CommentAdded { comment },
            }))
        }
        Op::EditComment(op) => {
            chat_author_on_image(tx, tenant, image.id, &op.chat_id)?;
            let author_id: String = tx
                .query_row(
                    "SELECT author_id FROM comments \
                     WHERE tenant = ?1 AND comment_id = ?2 AND chat_id = ?3",
                    params![tenant, op.comment_id.as_str(), op.chat_id.as_str()],
                    |row| row.get(0),
                )
                .optional()?
                .ok_or(StoreError::Rejected(Rejection::UnknownComment))?;
            if !may_change(actor, &author_id) {
                return Err(Rejection::Forbidden.into());
            }
            tx.execute(
                "UPDATE comments SET text = ?1, edited_at = ?2 \
                 WHERE tenant = ?3 AND comment_id = ?4",
                params![op.text, now_ms, tenant, op.comment_id.as_str()],
            )?;
            Ok(Event::ImageChatUpdated(ImageChatUpdated {
                seq,
                epoch,
                broadcast_id: op.broadcast_id.clone(),
                chat_id: op.chat_id.clone(),
                change: ChatChange::CommentEdited {
                    comment_id: op.comment_id.clone(),
                    text: op.text.clone(),
                    edited_at: now_ms,
                },
            }))
        }
        Op::DeleteChat(op) => {
            let author_id = chat_author_on_image(tx, tenant, image.id, &op.chat_id)?;
            if !may_change(actor, &author_id) {
                return Err(Rejection::Forbidden.into());
            }
            // The comments go with it (ON DELETE CASCADE).
            tx.execute(
                "DELETE FROM chats WHERE tenant = ?1 AND chat_id = ?2",
                params![tenant, op.chat_id.as_str()],
            )?;
            Ok(Event::DeletedImageChat(DeletedImageChat {
                seq,
                epoch,
                broadcast_id: op.broadcast_id.clone(),
                chat_id: op.chat_id.clone(),
            }))
        }
    }
}

/// The whole commit, in one IMMEDIATE transaction (the write lock is taken up front, so the
/// checks and the write see the same state).
fn commit_blocking(
    conn: &mut Connection,
    retention: u64,
    image: &ImageKey,
    actor: &User,
    op: &Op,
    now_ms: u64,
    limits: CommitLimits,
) -> Result<Commit, StoreError> {
    let fingerprint = fingerprint(actor, op)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // 1. A retry of an op already committed (and still retained) is answered from the log,
    //    before any state check: the state has moved on since (the chat now exists…).
    if let Some(row) = load_image(&tx, image)? {
        let previous: Option<(u64, Vec<u8>)> = tx
            .query_row(
                "SELECT seq, fingerprint FROM events WHERE image_row = ?1 AND broadcast_id = ?2",
                params![row.id, op.broadcast_id().as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((seq, previous)) = previous {
            return if previous == fingerprint {
                Ok(Commit::Duplicate { seq })
            } else {
                Err(Rejection::BroadcastIdConflict.into())
            };
        }
    }
    // 2. Check and write the change. The image row (and its epoch) is created by the first op;
    //    if the op is refused, dropping `tx` rolls the creation back too.
    let row = load_or_create_image(&tx, image)?;
    let seq = row.head + 1;
    let event = apply_op(
        &tx,
        image.tenant.as_str(),
        row,
        seq,
        actor,
        op,
        now_ms,
        limits,
    )?;
    // 3. Append to the log and drop what falls out of the retention window.
    tx.execute(
        "INSERT INTO events (image_row, seq, broadcast_id, fingerprint, body) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            row.id,
            seq,
            op.broadcast_id().as_str(),
            fingerprint,
            to_json(&event)?
        ],
    )?;
    tx.execute(
        "UPDATE images SET head = ?1 WHERE id = ?2",
        params![seq, row.id],
    )?;
    if let Some(oldest_kept) = seq.checked_sub(retention) {
        tx.execute(
            "DELETE FROM events WHERE image_row = ?1 AND seq <= ?2",
            params![row.id, oldest_kept],
        )?;
    }
    tx.commit()?;
    Ok(Commit::Applied(event))
}

/// Reads the snapshot of an image inside `tx` (consistent with the position read there).
fn read_snapshot(tx: &Transaction<'_>, image: Option<ImageRow>) -> Result<Snapshot, StoreError> {
    let Some(image) = image else {
        return Ok(Snapshot::default());
    };
    let mut stmt = tx.prepare(
        "SELECT c.chat_id, c.anchor, m.comment_id, m.author, m.text, m.created_at, m.edited_at \
         FROM chats c JOIN comments m ON m.tenant = c.tenant AND m.chat_id = c.chat_id \
         WHERE c.image_row = ?1 \
         ORDER BY c.created_seq, m.seq",
    )?;
    let mut rows = stmt.query(params![image.id])?;
    let mut chats: Vec<Chat> = Vec::new();
    while let Some(row) = rows.next()? {
        let chat_id: String = row.get(0)?;
        let author: String = row.get(3)?;
        let comment = Comment {
            id: CommentId::new(row.get::<_, String>(2)?),
            author: serde_json::from_str(&author).map_err(|e| corrupt("comment author", e))?,
            text: row.get(4)?,
            created_at: row.get(5)?,
            edited_at: row.get(6)?,
        };
        // Rows come grouped by chat (ordered by its creation seq), so a new chat id starts a
        // new discussion.
        match chats.last_mut() {
            Some(chat) if chat.id.as_str() == chat_id => chat.comments.push(comment),
            _ => {
                let anchor: String = row.get(1)?;
                chats.push(Chat {
                    id: ChatId::new(chat_id),
                    anchor: serde_json::from_str(&anchor).map_err(|e| corrupt("anchor", e))?,
                    comments: vec![comment],
                });
            }
        }
    }
    Ok(Snapshot { chats })
}

/// The events of `image` after `since`, if the log still holds all of them.
fn read_events_after(
    tx: &Transaction<'_>,
    image: ImageRow,
    since: u64,
) -> Result<Option<Vec<Event>>, StoreError> {
    let oldest: Option<u64> = tx.query_row(
        "SELECT MIN(seq) FROM events WHERE image_row = ?1",
        params![image.id],
        |row| row.get(0),
    )?;
    // The client needs `since + 1 ..= head`; all retained iff the oldest kept is ≤ since + 1.
    match oldest {
        Some(oldest) if oldest <= since + 1 => {}
        _ => return Ok(None),
    }
    let mut stmt =
        tx.prepare("SELECT seq, body FROM events WHERE image_row = ?1 AND seq > ?2 ORDER BY seq")?;
    let mut rows = stmt.query(params![image.id, since])?;
    let mut events = Vec::new();
    let mut expected = since + 1;
    while let Some(row) = rows.next()? {
        let seq: u64 = row.get(0)?;
        let body: String = row.get(1)?;
        if seq != expected {
            // Commits keep the retained log contiguous; a hole means the file was edited.
            return Err(corrupt(
                "event log",
                format!("expected seq {expected}, found {seq}"),
            ));
        }
        events.push(serde_json::from_str(&body).map_err(|e| corrupt("event", e))?);
        expected += 1;
    }
    if expected != image.head + 1 {
        return Err(corrupt(
            "event log",
            format!(
                "head is {} but the log ends at {}",
                image.head,
                expected - 1
            ),
        ));
    }
    Ok(Some(events))
}

fn catch_up_blocking(
    conn: &mut Connection,
    image: &ImageKey,
    since: Option<Position>,
) -> Result<CatchUp, StoreError> {
    // A read transaction: position, events and snapshot all come from one database state.
    let tx = conn.transaction()?;
    let row = load_image(&tx, image)?;
    let position = row.map_or(NO_LOG, |r| r.position());
    let events = match (since, row) {
        // Resuming exactly where the log stands (including "no log yet" on a still-empty
        // image): nothing missed.
        (Some(since), _) if since == position => Some(Vec::new()),
        // Same log, behind its head: the missed events, if still retained.
        (Some(since), Some(row)) if since.epoch == row.epoch && since.seq < row.head => {
            read_events_after(&tx, row, since.seq)?
        }
        // No position, another epoch, or ahead of the head.
        _ => None,
    };
    let result = match events {
        Some(events) => CatchUp::Events { position, events },
        None => CatchUp::Snapshot {
            position,
            snapshot: read_snapshot(&tx, row)?,
        },
    };
    tx.commit()?;
    Ok(result)
}

fn snapshot_blocking(
    conn: &mut Connection,
    image: &ImageKey,
) -> Result<(Position, Snapshot), StoreError> {
    let tx = conn.transaction()?;
    let row = load_image(&tx, image)?;
    let snapshot = read_snapshot(&tx, row)?;
    tx.commit()?;
    Ok((row.map_or(NO_LOG, |r| r.position()), snapshot))
}

fn secret_blocking(conn: &mut Connection, name: &str) -> Result<[u8; 32], StoreError> {
    let mut fresh = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut fresh)
        .map_err(|e| StoreError::Backend(format!("os random source failed: {e}")))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // The first caller's value wins, for good: later calls (and other servers) read it back.
    tx.execute(
        "INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)",
        params![name, fresh.as_slice()],
    )?;
    let value: Vec<u8> = tx.query_row(
        "SELECT value FROM secrets WHERE name = ?1",
        params![name],
        |row| row.get(0),
    )?;
    tx.commit()?;
    value
        .try_into()
        .map_err(|v: Vec<u8>| corrupt("secret", format!("{} bytes instead of 32", v.len())))
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit_limited(
        &self,
        image: &ImageKey,
        actor: &User,
        op: &Op,
        now_ms: u64,
        limits: CommitLimits,
    ) -> Result<Commit, StoreError> {
        let (image, actor, op) = (image.clone(), actor.clone(), op.clone());
        let retention = self.retention;
        self.run(move |conn| commit_blocking(conn, retention, &image, &actor, &op, now_ms, limits))
            .await
    }

    async fn catch_up(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<CatchUp, StoreError> {
        let image = image.clone();
        self.run(move |conn| catch_up_blocking(conn, &image, since))
            .await
    }

    async fn snapshot(&self, image: &ImageKey) -> Result<(Position, Snapshot), StoreError> {
        let image = image.clone();
        self.run(move |conn| snapshot_blocking(conn, &image)).await
    }

    async fn secret(&self, name: &str) -> Result<[u8; 32], StoreError> {
        let name = name.to_owned();
        self.run(move |conn| secret_blocking(conn, &name)).await
    }
}

#[cfg(test)]
mod tests {
    //! Behaviour specific to the SQLite backend; the shared contract is tested by
    //! `tests/sqlite_store.rs` through the conformance suite.

    use super::*;

    fn open(dir: &tempfile::TempDir, retention: u64) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(
            &dir.path().join("chat.db"),
            SqliteConfig {
                retention,
                ..SqliteConfig::default()
            },
        )
    }

    #[test]
    fn open_sets_wal_full_sync_foreign_keys_and_schema_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir, 10).expect("open");
        let conn = store.conn.lock().expect("lock");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode.to_lowercase(), "wal");
        // 2 = FULL
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("synchronous");
        assert_eq!(sync, 2);
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("foreign_keys");
        assert_eq!(fk, 1);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("user_version");
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn reopening_is_idempotent() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(open(&dir, 10).expect("first open"));
        drop(open(&dir, 10).expect("second open"));
        open(&dir, 10).expect("third open");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = open(&dir, 10).expect("open");
            let conn = store.conn.lock().expect("lock");
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .expect("bump version");
        }
        let err = open(&dir, 10).expect_err("newer schema must be refused");
        assert!(err.to_string().contains("schema version"), "{err}");
    }

    #[test]
    fn version_1_files_are_refused() {
        // Written with hyphenated UUIDs and `{"type":"point",…}` anchors (see the module doc).
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = open(&dir, 10).expect("open");
            let conn = store.conn.lock().expect("lock");
            conn.pragma_update(None, "user_version", 1)
                .expect("set version");
        }
        let err = open(&dir, 10).expect_err("a version 1 file must be refused");
        assert!(err.to_string().contains("schema version 1"), "{err}");
    }

    #[test]
    fn zero_retention_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(matches!(open(&dir, 0), Err(StoreError::Backend(_))));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("chat.db"), vec![b'x'; 4096]).expect("write junk");
        assert!(matches!(open(&dir, 10), Err(StoreError::Backend(_))));
    }

    #[test]
    fn fingerprint_covers_actor_kind_ids_and_text() {
        use image_chat_protocol::{AddComment, BroadcastId, EditComment};
        let user = |id: &str| User {
            id: id.into(),
            name: "N".into(),
            avatar_url: None,
            is_moderator: false,
            signed_in: false,
        };
        let add = |comment: &str, text: &str| {
            Op::AddComment(AddComment {
                broadcast_id: BroadcastId::new("b"),
                chat_id: ChatId::new("c"),
                comment_id: CommentId::new(comment),
                text: text.into(),
            })
        };
        let base = fingerprint(&user("u"), &add("m", "hi")).expect("fp");
        assert_eq!(base, fingerprint(&user("u"), &add("m", "hi")).expect("fp"));
        assert_ne!(base, fingerprint(&user("v"), &add("m", "hi")).expect("fp"));
        assert_ne!(base, fingerprint(&user("u"), &add("m", "hi!")).expect("fp"));
        assert_ne!(base, fingerprint(&user("u"), &add("n", "hi")).expect("fp"));
        let edit = Op::EditComment(EditComment {
            broadcast_id: BroadcastId::new("b"),
            chat_id: ChatId::new("c"),
            comment_id: CommentId::new("m"),
            text: "hi".into(),
        });
        assert_ne!(base, fingerprint(&user("u"), &edit).expect("fp"));
        // Length prefixes: moving a byte between adjacent fields changes the hash.
        assert_ne!(
            fingerprint(&user("u"), &add("mh", "i")).expect("fp"),
            fingerprint(&user("u"), &add("m", "hi")).expect("fp")
        );
    }
}
