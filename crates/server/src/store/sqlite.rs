//! The embedded, default [`Store`]: one SQLite database file holding every tenant's discussions,
//! each image's event log, and the server secrets.
//!
//! # Durability and concurrency
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a transaction is on disk when
//! `COMMIT` returns: [`Store::commit`] resolves only after that, which is what lets the server
//! ack an op as durable. Every write goes through one connection behind a [`std::sync::Mutex`]
//! and runs on tokio's blocking pool (rusqlite is blocking). One writer is what SQLite allows
//! anyway, and serializing every commit on the mutex is what makes `seq` assignment gap-free
//! without any retry logic. A commit whose caller stops waiting (a client disconnects) still
//! runs to its end: the change is either fully committed or not at all, and the client learns
//! which on resync.
//!
//! Reads (catch-ups, snapshots, positions) use a small pool of their own read-only connections.
//! WAL lets readers and the writer work at the same time, each reader on the database as it
//! was when its transaction began, so a long read (a big snapshot) never delays a commit, and a
//! commit never delays a read.
//!
//! # Schema (version 3, recorded in `PRAGMA user_version`)
//!
//! Ids, anchors and event bodies are stored in their wire form (22-character base64url ids,
//! `[x, y]` point anchors). A version-2 file is converted when it is opened (see
//! [`migrate_v2`]); version 1 (hyphenated UUIDs, `{"type":"point",…}` anchors, never released)
//! is refused.
//!
//! - `images`: one row per image that has ever been written: its log `epoch` (random, nonzero),
//!   `head` (the last assigned `seq`) and `bytes` (the weight of its discussions, see
//!   [`super::size`]). The row is created by the first committed op.
//! - `chats`: one row per live discussion, keyed by `(image_row, chat_id)` — ids are unique
//!   within an image, so an id used on another image (or by another tenant) cannot block this
//!   one — with its anchor (JSON, so new anchor kinds need no migration), its author's id, the
//!   `seq` that created it (its order) and its own weight.
//! - `comments`: keyed by `(image_row, comment_id)`, ordered within a discussion by the `seq`
//!   that added them, each with its weight, deleted with their discussion (`ON DELETE
//!   CASCADE`). A discussion's opening comment is stored under the discussion's id (the protocol
//!   gives it that id), so one id space covers both tables: a new chat id must be free as a
//!   comment id and vice versa.
//! - `events`: the last `retention` events of each image, as the exact JSON broadcast, with the
//!   op's `broadcast_id` and a fingerprint of its content for idempotent retries.
//! - `usage`: the bytes each tenant stores (the sum of its images' `bytes`), for quotas.
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use image_chat_protocol::{
    Anchor, Chat, ChatChange, ChatId, Comment, CommentId, DeletedImageChat, Event,
    ImageChatUpdated, NewImageChat, Op, Position, Snapshot, User,
};
use rand::TryRngCore;
use rand::rngs::OsRng;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use sha2::{Digest, Sha256};

use super::size::{chat_bytes, comment_bytes};
use super::{
    CATCH_UP_EVENT_BYTES_FLOOR, CatchUp, Commit, CommitLimits, ImageKey, Rejection, Store,
    StoreError, Usage,
};

/// The schema this code reads and writes, stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 3;

/// The per-image tables of version 3 (see the module doc). `images` is created apart: a
/// version-2 file keeps its `images` table and gains a column.
const SCHEMA_V3_IMAGE_TABLES: &str = "
CREATE TABLE chats (
    image_row   INTEGER NOT NULL REFERENCES images (id),
    chat_id     TEXT    NOT NULL,
    anchor      TEXT    NOT NULL,
    author_id   TEXT    NOT NULL,
    created_seq INTEGER NOT NULL,
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (image_row, chat_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX chats_by_image ON chats (image_row, created_seq);

CREATE TABLE comments (
    image_row  INTEGER NOT NULL,
    comment_id TEXT    NOT NULL,
    chat_id    TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    author_id  TEXT    NOT NULL,
    author     TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    bytes      INTEGER NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (image_row, comment_id),
    FOREIGN KEY (image_row, chat_id) REFERENCES chats (image_row, chat_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX comments_by_chat ON comments (image_row, chat_id, seq);

CREATE TABLE usage (
    tenant TEXT    NOT NULL PRIMARY KEY,
    bytes  INTEGER NOT NULL CHECK (bytes >= 0)
) STRICT, WITHOUT ROWID;
";

/// The tables of a new database. Run once, inside the transaction that sets `user_version`, so
/// a crash during creation leaves an empty database (version 0) rather than half a schema.
const SCHEMA_NEW: &str = "
CREATE TABLE images (
    id     INTEGER PRIMARY KEY,
    tenant TEXT    NOT NULL,
    image  TEXT    NOT NULL,
    epoch  INTEGER NOT NULL CHECK (epoch > 0),
    head   INTEGER NOT NULL CHECK (head >= 0),
    bytes  INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    UNIQUE (tenant, image)
) STRICT;

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
    /// Read-only connections for catch-ups and snapshots (at least 1). Default 4: reads of
    /// different images then run side by side, and the server's snapshot cache keeps them few.
    pub readers: usize,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            retention: 1000,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
        }
    }
}

/// A [`Store`] in one SQLite database file. Cheap to share: wrap it in an `Arc`.
#[derive(Debug)]
pub struct SqliteStore {
    /// The one writing connection; the mutex serializes every write (see the module doc).
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections, taken round-robin (see the module doc).
    readers: Arc<[Arc<Mutex<Connection>>]>,
    /// Which reader the next read starts looking at.
    next_reader: AtomicUsize,
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
    /// `synchronous=FULL` and foreign keys on, creates, converts or checks the schema, and opens
    /// the read connections.
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
        let readers = (0..config.readers.max(1))
            .map(|_| open_reader(path, config.busy_timeout).map(|c| Arc::new(Mutex::new(c))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: readers.into(),
            next_reader: AtomicUsize::new(0),
            retention: config.retention,
        })
    }

    /// Runs `f` with the writing connection on tokio's blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&mut *lock(&conn)?))
            .await
            .map_err(|e| StoreError::Backend(format!("sqlite: blocking task failed: {e}")))?
    }

    /// Runs `f` with a read connection on tokio's blocking pool: the first free one from the
    /// round-robin start, or (all busy) waits for that one.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let n = readers.len();
            for i in 0..n {
                if let Ok(mut conn) = readers[(start + i) % n].try_lock() {
                    return f(&mut conn);
                }
            }
            f(&mut *lock(&readers[start % n])?)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite: blocking task failed: {e}")))?
    }
}

fn lock(conn: &Mutex<Connection>) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
    conn.lock()
        .map_err(|_| StoreError::Backend("sqlite: connection lock poisoned by a panic".into()))
}

/// A read-only connection to the (already created and migrated) database.
fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

/// Creates the schema on a new database, converts a version-2 one, accepts the current one,
/// refuses others.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE: two servers opening a new file at once must not both create the schema.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_NEW)?;
            tx.execute_batch(SCHEMA_V3_IMAGE_TABLES)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        2 => {
            migrate_v2(&tx)?;
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

/// Version 2 → 3, in the caller's transaction: chat and comment ids become unique per image
/// instead of per tenant (the tables are rebuilt under their new keys), and every discussion,
/// comment, image and tenant gets its byte weight.
fn migrate_v2(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE images ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0);
         ALTER TABLE chats RENAME TO chats_v2;
         ALTER TABLE comments RENAME TO comments_v2;
         DROP INDEX chats_by_image;
         DROP INDEX comments_by_chat;",
    )?;
    tx.execute_batch(SCHEMA_V3_IMAGE_TABLES)?;
    tx.execute_batch(
        "INSERT INTO chats (image_row, chat_id, anchor, author_id, created_seq, bytes)
             SELECT image_row, chat_id, anchor, author_id, created_seq, 0 FROM chats_v2;
         INSERT INTO comments (image_row, comment_id, chat_id, seq, author_id, author, text,
                               created_at, edited_at, bytes)
             SELECT c.image_row, m.comment_id, m.chat_id, m.seq, m.author_id, m.author, m.text,
                    m.created_at, m.edited_at, 0
             FROM comments_v2 m JOIN chats_v2 c ON c.tenant = m.tenant AND c.chat_id = m.chat_id;
         DROP TABLE comments_v2;
         DROP TABLE chats_v2;",
    )?;
    // The weights are the JSON the snapshot carries: computed here, in Rust, like on commit.
    let chats: Vec<(i64, String, String)> = tx
        .prepare("SELECT image_row, chat_id, anchor FROM chats")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (image_row, chat_id, anchor) in chats {
        let anchor: Anchor = serde_json::from_str(&anchor).map_err(|e| corrupt("anchor", e))?;
        let bytes = chat_bytes(&ChatId::new(chat_id.as_str()), &anchor);
        tx.execute(
            "UPDATE chats SET bytes = ?1 WHERE image_row = ?2 AND chat_id = ?3",
            params![bytes, image_row, chat_id],
        )?;
    }
    let comments: Vec<(i64, String, Comment)> = tx
        .prepare("SELECT image_row, comment_id, author, text, created_at, edited_at FROM comments")?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, String>(1)?,
                (r.get::<_, String>(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
            ))
        })?
        .map(|row| {
            let (image_row, id, (author, text, created_at, edited_at)) = row?;
            let author = serde_json::from_str(&author).map_err(|e| corrupt("author", e))?;
            let comment = Comment {
                id: CommentId::new(id.as_str()),
                author,
                text,
                created_at,
                edited_at,
            };
            Ok((image_row, id, comment))
        })
        .collect::<Result<_, StoreError>>()?;
    for (image_row, id, comment) in comments {
        tx.execute(
            "UPDATE comments SET bytes = ?1 WHERE image_row = ?2 AND comment_id = ?3",
            params![comment_bytes(&comment), image_row, id],
        )?;
    }
    tx.execute_batch(
        "UPDATE images SET bytes =
             (SELECT COALESCE(SUM(bytes), 0) FROM chats WHERE image_row = images.id)
           + (SELECT COALESCE(SUM(bytes), 0) FROM comments WHERE image_row = images.id);
         INSERT INTO usage (tenant, bytes) SELECT tenant, SUM(bytes) FROM images GROUP BY tenant;",
    )?;
    Ok(())
}

/// An image's log as stored.
#[derive(Clone, Copy, Debug)]
struct ImageRow {
    /// Row id, the key the other tables use.
    id: i64,
    epoch: u32,
    head: u64,
    /// The weight of its discussions.
    bytes: u64,
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
            "SELECT id, epoch, head, bytes FROM images WHERE tenant = ?1 AND image = ?2",
            params![image.tenant.as_str(), image.image.as_str()],
            |row| {
                Ok(ImageRow {
                    id: row.get(0)?,
                    epoch: row.get(1)?,
                    head: row.get(2)?,
                    bytes: row.get(3)?,
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
        "INSERT INTO images (tenant, image, epoch, head, bytes) VALUES (?1, ?2, ?3, 0, 0)",
        params![image.tenant.as_str(), image.image.as_str(), epoch],
    )?;
    Ok(ImageRow {
        id: tx.last_insert_rowid(),
        epoch,
        head: 0,
        bytes: 0,
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

/// Whether `sql` (parameters: image row, id) finds a row.
fn row_exists(
    tx: &Transaction<'_>,
    sql: &str,
    image_row: i64,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(tx
        .query_row(sql, params![image_row, id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether `id` is taken on this image, as a discussion id or as a comment id (one id space
/// covers both, see the module doc). Ids used on other images do not count.
fn id_taken(tx: &Transaction<'_>, image_row: i64, id: &str) -> Result<bool, StoreError> {
    Ok(row_exists(
        tx,
        "SELECT 1 FROM chats WHERE image_row = ?1 AND chat_id = ?2",
        image_row,
        id,
    )? || row_exists(
        tx,
        "SELECT 1 FROM comments WHERE image_row = ?1 AND comment_id = ?2",
        image_row,
        id,
    )?)
}

/// The author id of `chat` if it exists on this image; `UnknownChat` otherwise (including when
/// the same id exists on another image: ops are bound to their connection's image).
fn chat_author_on_image(
    tx: &Transaction<'_>,
    image_row: i64,
    chat: &ChatId,
) -> Result<String, StoreError> {
    tx.query_row(
        "SELECT author_id FROM chats WHERE image_row = ?1 AND chat_id = ?2",
        params![image_row, chat.as_str()],
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
    image_row: i64,
    chat: &ChatId,
    seq: u64,
    comment: &Comment,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO comments (image_row, comment_id, chat_id, seq, author_id, author, text, \
         created_at, edited_at, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            image_row,
            comment.id.as_str(),
            chat.as_str(),
            seq,
            comment.author.id,
            to_json(&comment.author)?,
            comment.text,
            comment.created_at,
            comment.edited_at,
            comment_bytes(comment),
        ],
    )?;
    Ok(())
}

/// Bytes stored by the tenant (from `usage`) and by everyone (the sum over tenants: a few rows).
fn tenant_and_total_bytes(tx: &Transaction<'_>, tenant: &str) -> Result<(u64, u64), StoreError> {
    let tenant: u64 = tx
        .query_row(
            "SELECT bytes FROM usage WHERE tenant = ?1",
            params![tenant],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let total: u64 = tx.query_row("SELECT COALESCE(SUM(bytes), 0) FROM usage", [], |r| {
        r.get(0)
    })?;
    Ok((tenant, total))
}

/// Refuses a change of `delta` bytes that would break a byte limit (checked in the commit's
/// transaction, like authorship).
fn check_bytes(
    tx: &Transaction<'_>,
    tenant: &str,
    image: ImageRow,
    delta: i64,
    limits: CommitLimits,
) -> Result<(), StoreError> {
    if delta <= 0 {
        return Ok(());
    }
    let (tenant_bytes, total) = if limits.max_bytes_per_tenant > 0 || limits.max_bytes_total > 0 {
        tenant_and_total_bytes(tx, tenant)?
    } else {
        (0, 0)
    };
    let usage = Usage {
        image: image.bytes,
        tenant: tenant_bytes,
        total,
    };
    Ok(limits.check_bytes(delta, usage)?)
}

/// Adds `delta` bytes to the image's and the tenant's totals.
fn add_bytes(
    tx: &Transaction<'_>,
    tenant: &str,
    image_row: i64,
    delta: i64,
) -> Result<(), StoreError> {
    if delta == 0 {
        return Ok(());
    }
    // MAX(0, …): a total never goes negative, even over a file edited by hand.
    tx.execute(
        "UPDATE images SET bytes = MAX(0, bytes + ?1) WHERE id = ?2",
        params![delta, image_row],
    )?;
    tx.execute(
        "INSERT INTO usage (tenant, bytes) VALUES (?1, MAX(0, ?2)) \
         ON CONFLICT (tenant) DO UPDATE SET bytes = MAX(0, bytes + ?2)",
        params![tenant, delta],
    )?;
    Ok(())
}

/// A size as a signed delta (sizes are far below `i64::MAX`).
fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
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
            if id_taken(tx, image.id, op.chat_id.as_str())? {
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
            let comment = Comment {
                id: opening,
                author: actor.clone(),
                text: op.text.clone(),
                created_at: now_ms,
                edited_at: None,
            };
            let shell = chat_bytes(&op.chat_id, &anchor);
            let delta = signed(shell + comment_bytes(&comment));
            check_bytes(tx, tenant, image, delta, limits)?;
            tx.execute(
                "INSERT INTO chats (image_row, chat_id, anchor, author_id, created_seq, bytes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    image.id,
                    op.chat_id.as_str(),
                    to_json(&anchor)?,
                    actor.id,
                    seq,
                    shell
                ],
            )?;
            insert_comment(tx, image.id, &op.chat_id, seq, &comment)?;
            add_bytes(tx, tenant, image.id, delta)?;
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
            chat_author_on_image(tx, image.id, &op.chat_id)?;
            // Every live chat id is also a comment id (its opening comment's, written in the
            // same transaction), so this refuses a reply reusing a chat id too.
            if id_taken(tx, image.id, op.comment_id.as_str())? {
                return Err(Rejection::DuplicateId.into());
            }
            if limits.max_comments_per_thread > 0 {
                // Counted through the `comments_by_chat` index.
                let comments: u64 = tx.query_row(
                    "SELECT COUNT(*) FROM comments WHERE image_row = ?1 AND chat_id = ?2",
                    params![image.id, op.chat_id.as_str()],
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
            let delta = signed(comment_bytes(&comment));
            check_bytes(tx, tenant, image, delta, limits)?;
            insert_comment(tx, image.id, &op.chat_id, seq, &comment)?;
            add_bytes(tx, tenant, image.id, delta)?;
            Ok(Event::ImageChatUpdated(ImageChatUpdated {
                seq,
                epoch,
                broadcast_id: op.broadcast_id.clone(),
                chat_id: op.chat_id.clone(),
                change: ChatChange::CommentAdded { comment },
            }))
        }
        Op::EditComment(op) => {
            chat_author_on_image(tx, image.id, &op.chat_id)?;
            let (author_id, author, created_at, old_bytes): (String, String, u64, u64) = tx
                .query_row(
                    "SELECT author_id, author, created_at, bytes FROM comments \
                     WHERE image_row = ?1 AND comment_id = ?2 AND chat_id = ?3",
                    params![image.id, op.comment_id.as_str(), op.chat_id.as_str()],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()?
                .ok_or(StoreError::Rejected(Rejection::UnknownComment))?;
            if !may_change(actor, &author_id) {
                return Err(Rejection::Forbidden.into());
            }
            let edited = Comment {
                id: op.comment_id.clone(),
                author: serde_json::from_str(&author).map_err(|e| corrupt("comment author", e))?,
                text: op.text.clone(),
                created_at,
                edited_at: Some(now_ms),
            };
            let new_bytes = comment_bytes(&edited);
            let delta = signed(new_bytes) - signed(old_bytes);
            check_bytes(tx, tenant, image, delta, limits)?;
            tx.execute(
                "UPDATE comments SET text = ?1, edited_at = ?2, bytes = ?3 \
                 WHERE image_row = ?4 AND comment_id = ?5",
                params![op.text, now_ms, new_bytes, image.id, op.comment_id.as_str()],
            )?;
            add_bytes(tx, tenant, image.id, delta)?;
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
            let author_id = chat_author_on_image(tx, image.id, &op.chat_id)?;
            if !may_change(actor, &author_id) {
                return Err(Rejection::Forbidden.into());
            }
            let freed: u64 = tx.query_row(
                "SELECT c.bytes + (SELECT COALESCE(SUM(m.bytes), 0) FROM comments m \
                                   WHERE m.image_row = c.image_row AND m.chat_id = c.chat_id) \
                 FROM chats c WHERE c.image_row = ?1 AND c.chat_id = ?2",
                params![image.id, op.chat_id.as_str()],
                |row| row.get(0),
            )?;
            // The comments go with it (ON DELETE CASCADE).
            tx.execute(
                "DELETE FROM chats WHERE image_row = ?1 AND chat_id = ?2",
                params![image.id, op.chat_id.as_str()],
            )?;
            add_bytes(tx, tenant, image.id, -signed(freed))?;
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
         FROM chats c JOIN comments m ON m.image_row = c.image_row AND m.chat_id = c.chat_id \
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

/// The events a client at `since` missed, if they are retained and weigh no more than the
/// snapshot would (see [`Store::catch_up`]); `None`: send the snapshot.
fn missed_in(
    tx: &Transaction<'_>,
    row: Option<ImageRow>,
    since: Option<Position>,
) -> Result<Option<Vec<Event>>, StoreError> {
    let position = row.map_or(NO_LOG, |r| r.position());
    match (since, row) {
        // Resuming exactly where the log stands (including "no log yet" on a still-empty
        // image): nothing missed.
        (Some(since), _) if since == position => Ok(Some(Vec::new())),
        // Same log, behind its head: the missed events, if still retained and not heavier
        // than the snapshot.
        (Some(since), Some(row)) if since.epoch == row.epoch && since.seq < row.head => {
            // Bytes, not characters: `length()` of TEXT counts characters.
            let weight: u64 = tx.query_row(
                "SELECT COALESCE(SUM(length(CAST(body AS BLOB))), 0) FROM events \
                 WHERE image_row = ?1 AND seq > ?2",
                params![row.id, since.seq],
                |r| r.get(0),
            )?;
            if weight > CATCH_UP_EVENT_BYTES_FLOOR.max(row.bytes) {
                return Ok(None);
            }
            read_events_after(tx, row, since.seq)
        }
        // No position, another epoch, or ahead of the head.
        _ => Ok(None),
    }
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
    let result = match missed_in(&tx, row, since)? {
        Some(events) => CatchUp::Events { position, events },
        None => CatchUp::Snapshot {
            position,
            snapshot: read_snapshot(&tx, row)?,
        },
    };
    tx.commit()?;
    Ok(result)
}

fn missed_events_blocking(
    conn: &mut Connection,
    image: &ImageKey,
    since: Option<Position>,
) -> Result<Option<(Position, Vec<Event>)>, StoreError> {
    let tx = conn.transaction()?;
    let row = load_image(&tx, image)?;
    let position = row.map_or(NO_LOG, |r| r.position());
    let events = missed_in(&tx, row, since)?;
    tx.commit()?;
    Ok(events.map(|events| (position, events)))
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

fn position_blocking(conn: &mut Connection, image: &ImageKey) -> Result<Position, StoreError> {
    let tx = conn.transaction()?;
    let row = load_image(&tx, image)?;
    tx.commit()?;
    Ok(row.map_or(NO_LOG, |r| r.position()))
}

fn usage_blocking(conn: &mut Connection, image: &ImageKey) -> Result<Usage, StoreError> {
    let tx = conn.transaction()?;
    let bytes = load_image(&tx, image)?.map_or(0, |r| r.bytes);
    let (tenant, total) = tenant_and_total_bytes(&tx, image.tenant.as_str())?;
    tx.commit()?;
    Ok(Usage {
        image: bytes,
        tenant,
        total,
    })
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
        self.read(move |conn| catch_up_blocking(conn, &image, since))
            .await
    }

    async fn snapshot(&self, image: &ImageKey) -> Result<(Position, Snapshot), StoreError> {
        let image = image.clone();
        self.read(move |conn| snapshot_blocking(conn, &image)).await
    }

    async fn position(&self, image: &ImageKey) -> Result<Position, StoreError> {
        let image = image.clone();
        self.read(move |conn| position_blocking(conn, &image)).await
    }

    async fn missed_events(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<Option<(Position, Vec<Event>)>, StoreError> {
        let image = image.clone();
        self.read(move |conn| missed_events_blocking(conn, &image, since))
            .await
    }

    async fn usage(&self, image: &ImageKey) -> Result<Usage, StoreError> {
        let image = image.clone();
        self.read(move |conn| usage_blocking(conn, &image)).await
    }

    async fn secret(&self, name: &str) -> Result<[u8; 32], StoreError> {
        let name = name.to_owned();
        self.run(move |conn| secret_blocking(conn, &name)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Reads the schema page: the file itself must be there and readable, which `SELECT 1`
        // alone would not check.
        self.read(|conn| {
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| {
                row.get::<_, i64>(0)
            })?;
            Ok(())
        })
        .await
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

    #[tokio::test]
    async fn a_long_read_does_not_delay_a_commit() {
        use image_chat_protocol::{BroadcastId, CreateChat, ImageId, TenantId};
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir, 10).expect("open");
        let key = |tenant: &str| ImageKey {
            tenant: TenantId::new(tenant),
            image: ImageId::new("img"),
        };
        let actor = User {
            id: "u".into(),
            name: "U".into(),
            avatar_url: None,
            is_moderator: false,
            signed_in: false,
        };
        let create = |n: u8| {
            let id = |k: u8| {
                let mut bytes = [0u8; 16];
                bytes[0] = n;
                bytes[1] = k;
                image_chat_protocol::ids::encode_uuid_v4(bytes)
            };
            Op::CreateChat(CreateChat {
                broadcast_id: BroadcastId::new(id(1)),
                chat_id: ChatId::new(id(2)),
                anchor: Anchor::point(0.5, 0.5),
                text: "hi".into(),
            })
        };
        store
            .commit(&key("a"), &actor, &create(1), 1)
            .await
            .expect("seed tenant a");
        // Every read connection is in the middle of a read transaction (a big snapshot being
        // read, frozen at this point): each has read and keeps its view of the database open.
        let readers: Vec<_> = store
            .readers
            .iter()
            .map(|r| r.lock().expect("reader"))
            .collect();
        for reader in &readers {
            reader.execute_batch("BEGIN").expect("begin");
            let chats: i64 = reader
                .query_row("SELECT COUNT(*) FROM chats", [], |r| r.get(0))
                .expect("read");
            assert_eq!(chats, 1);
        }
        // A commit on another tenant completes while the reads are still open. Before reads had
        // their own connections, the read held the only connection and this commit waited for
        // it (here: for ever, so the timeout fails the test).
        let committed = tokio::time::timeout(
            Duration::from_secs(5),
            store.commit(&key("b"), &actor, &create(2), 2),
        )
        .await
        .expect("a commit must not wait for reads in progress")
        .expect("commit");
        assert!(matches!(committed, Commit::Applied(_)));
        // The readers still see the database as it was when their reads began.
        for reader in &readers {
            let chats: i64 = reader
                .query_row("SELECT COUNT(*) FROM chats", [], |r| r.get(0))
                .expect("read");
            assert_eq!(chats, 1, "a read sees one consistent state");
            reader.execute_batch("COMMIT").expect("end read");
        }
    }

    /// A version-2 file (ids unique per tenant, no byte weights) is converted on open: its
    /// discussions survive, ids become per-image, and every weight is what a commit computes.
    #[tokio::test]
    async fn version_2_files_are_converted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("chat.db");
        let id = |k: u8| image_chat_protocol::ids::encode_uuid_v4([k; 16]);
        {
            let conn = Connection::open(&path).expect("create v2");
            conn.execute_batch(&format!(
                "CREATE TABLE images (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, \
                   image TEXT NOT NULL, epoch INTEGER NOT NULL CHECK (epoch > 0), \
                   head INTEGER NOT NULL CHECK (head >= 0), UNIQUE (tenant, image)) STRICT;
                 CREATE TABLE chats (tenant TEXT NOT NULL, chat_id TEXT NOT NULL, \
                   image_row INTEGER NOT NULL REFERENCES images (id), anchor TEXT NOT NULL, \
                   author_id TEXT NOT NULL, created_seq INTEGER NOT NULL, \
                   PRIMARY KEY (tenant, chat_id)) STRICT, WITHOUT ROWID;
                 CREATE INDEX chats_by_image ON chats (image_row, created_seq);
                 CREATE TABLE comments (tenant TEXT NOT NULL, comment_id TEXT NOT NULL, \
                   chat_id TEXT NOT NULL, seq INTEGER NOT NULL, author_id TEXT NOT NULL, \
                   author TEXT NOT NULL, text TEXT NOT NULL, created_at INTEGER NOT NULL, \
                   edited_at INTEGER, PRIMARY KEY (tenant, comment_id), \
                   FOREIGN KEY (tenant, chat_id) REFERENCES chats (tenant, chat_id) \
                   ON DELETE CASCADE) STRICT, WITHOUT ROWID;
                 CREATE INDEX comments_by_chat ON comments (tenant, chat_id, seq);
                 CREATE TABLE events (image_row INTEGER NOT NULL REFERENCES images (id), \
                   seq INTEGER NOT NULL, broadcast_id TEXT NOT NULL, fingerprint BLOB NOT NULL, \
                   body TEXT NOT NULL, PRIMARY KEY (image_row, seq)) STRICT, WITHOUT ROWID;
                 CREATE UNIQUE INDEX events_by_broadcast_id ON events (image_row, broadcast_id);
                 CREATE TABLE secrets (name TEXT NOT NULL PRIMARY KEY, \
                   value BLOB NOT NULL CHECK (length(value) = 32)) STRICT, WITHOUT ROWID;
                 INSERT INTO images VALUES (1, 't', 'img', 7, 2);
                 INSERT INTO chats VALUES ('t', '{c}', 1, '[0.5,0.25]', 'u', 1);
                 INSERT INTO comments VALUES ('t', '{c}', '{c}', 1, 'u', \
                   '{{\"id\":\"u\",\"name\":\"U\"}}', 'hello', 10, NULL);
                 INSERT INTO comments VALUES ('t', '{r}', '{c}', 2, 'u', \
                   '{{\"id\":\"u\",\"name\":\"U\"}}', 'reply', 11, 12);
                 PRAGMA user_version = 2;",
                c = id(1),
                r = id(2),
            ))
            .expect("v2 schema and rows");
        }
        let store = open(&dir, 10).expect("convert");
        let image = ImageKey {
            tenant: image_chat_protocol::TenantId::new("t"),
            image: image_chat_protocol::ImageId::new("img"),
        };
        let (position, snapshot) = store.snapshot(&image).await.expect("snapshot");
        assert_eq!(position, Position { epoch: 7, seq: 2 });
        assert_eq!(snapshot.chats.len(), 1);
        let texts: Vec<&str> = snapshot.chats[0]
            .comments
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        assert_eq!(texts, ["hello", "reply"]);
        let chat = &snapshot.chats[0];
        let weight = chat_bytes(&chat.id, &chat.anchor)
            + chat.comments.iter().map(comment_bytes).sum::<u64>();
        let usage = store.usage(&image).await.expect("usage");
        assert_eq!(
            (usage.image, usage.tenant, usage.total),
            (weight, weight, weight)
        );
        let conn = store.conn.lock().expect("lock");
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
