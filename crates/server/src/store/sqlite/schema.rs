//! The SQLite schema (version 6, recorded in `PRAGMA user_version`): created on a new file,
//! converted from versions 2 to 5, refused when older or newer. Version 4 added
//! `chats.resolved` (resolve / reopen); a version-3 file gains the column, every discussion
//! open. Version 5 added `image_locks` and `bans` (moderation; empty on a converted file).
//! Version 6 added `kind` to `images` and `image_locks` (discussions on page text): both are
//! rebuilt under keys with the kind, `(tenant, kind, image)`, every existing row an image.
//!
//! Ids, anchors and event bodies are stored in their wire form (22-character base64url ids,
//! `[x, y]` point anchors). A version-2 file is converted when it is opened (see
//! [`migrate_v2`]); version 1 (hyphenated UUIDs, `{"type":"point",…}` anchors, never released)
//! is refused.
//!
//! - `images`: one row per image or page (`kind`: `image` / `page`; `image` holds its id) that
//!   has ever been written: its log `epoch` (random, nonzero), `head` (the last assigned `seq`)
//!   and `bytes` (the weight of its discussions, see [`crate::store::size`]). The row is
//!   created by the first committed op. Every other table hangs off its `id`, so a page's
//!   discussions, comments and events are stored exactly as an image's.
//! - `chats`: one row per live discussion, keyed by `(image_row, chat_id)` — ids are unique
//!   within an image, so an id used on another image (or by another tenant) cannot block this
//!   one — with its anchor (JSON, so new anchor kinds such as regions need no migration), its
//!   author's id, the `seq` that created it (its order), whether it is `resolved` (0 / 1) and
//!   its own weight.
//! - `comments`: keyed by `(image_row, comment_id)`, ordered within a discussion by the `seq`
//!   that added them, each with its weight, deleted with their discussion (`ON DELETE
//!   CASCADE`).
//! - `events`: the last `retention` events of each image, as the exact JSON broadcast, with the
//!   op's `broadcast_id` and its idempotency fingerprint.
//! - `usage`: the bytes each tenant stores (the sum of its images' `bytes`), for quotas.
//! - `secrets`: named 32-byte random values.
//! - `image_locks`: images (and pages) locked read-only, keyed by `(tenant, kind, image)` (an
//!   image never written can be locked, so not by `images` row), with when.
//! - `bans`: people banned from posting on a tenant's images, keyed by `(tenant, user_id)`, with
//!   the moderator's reason and when.
//!
//! The PostgreSQL schema (`postgres/schema.rs`) has the same tables and columns.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use crate::store::StoreError;
use crate::store::rules::corrupt;
use crate::store::size::{chat_bytes, comment_bytes};
use image_chat_protocol::{Anchor, ChatId, Comment, CommentId};

/// The schema this code reads and writes, stored in `PRAGMA user_version`.
pub(super) const SCHEMA_VERSION: i64 = 6;

/// Version 3 → 4: discussions can be resolved (existing ones are open).
const MIGRATE_V4: &str =
    "ALTER TABLE chats ADD COLUMN resolved INTEGER NOT NULL DEFAULT 0 CHECK (resolved IN (0, 1));";

/// Version 4 → 5: image locks and bans (moderation), and the index the admin API lists a
/// tenant's images by.
const MIGRATE_V5: &str = "
CREATE TABLE image_locks (
    tenant    TEXT    NOT NULL,
    image     TEXT    NOT NULL,
    locked_at INTEGER NOT NULL CHECK (locked_at >= 0),
    PRIMARY KEY (tenant, image)
) STRICT, WITHOUT ROWID;
CREATE INDEX image_locks_by_time ON image_locks (tenant, locked_at, image);

CREATE TABLE bans (
    tenant    TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    banned_at INTEGER NOT NULL CHECK (banned_at >= 0),
    PRIMARY KEY (tenant, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX bans_by_time ON bans (tenant, banned_at, user_id);

CREATE INDEX images_by_tenant ON images (tenant, id);
";

/// Version 5 → 6: `images` and `image_locks` gain `kind` (`image` / `page`) and are keyed by
/// `(tenant, kind, image)`. SQLite cannot change a table's key in place, so both are rebuilt
/// (the documented procedure: foreign keys off around it, see [`migrate`]), keeping every
/// image row's `id`, which the other tables reference, and recreating their indexes.
const MIGRATE_V6: &str = "
CREATE TABLE images_v6 (
    id     INTEGER PRIMARY KEY,
    tenant TEXT    NOT NULL,
    kind   TEXT    NOT NULL DEFAULT 'image' CHECK (kind IN ('image', 'page')),
    image  TEXT    NOT NULL,
    epoch  INTEGER NOT NULL CHECK (epoch > 0),
    head   INTEGER NOT NULL CHECK (head >= 0),
    bytes  INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    UNIQUE (tenant, kind, image)
) STRICT;
INSERT INTO images_v6 (id, tenant, kind, image, epoch, head, bytes)
    SELECT id, tenant, 'image', image, epoch, head, bytes FROM images;
DROP TABLE images;
ALTER TABLE images_v6 RENAME TO images;
CREATE INDEX images_by_tenant ON images (tenant, id);

CREATE TABLE image_locks_v6 (
    tenant    TEXT    NOT NULL,
    kind      TEXT    NOT NULL DEFAULT 'image' CHECK (kind IN ('image', 'page')),
    image     TEXT    NOT NULL,
    locked_at INTEGER NOT NULL CHECK (locked_at >= 0),
    PRIMARY KEY (tenant, kind, image)
) STRICT, WITHOUT ROWID;
INSERT INTO image_locks_v6 (tenant, kind, image, locked_at)
    SELECT tenant, 'image', image, locked_at FROM image_locks;
DROP TABLE image_locks;
ALTER TABLE image_locks_v6 RENAME TO image_locks;
CREATE INDEX image_locks_by_time ON image_locks (tenant, locked_at, image);
";

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

/// Creates the schema on a new database, converts an older one, accepts the current one,
/// refuses others.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // Rebuilding `images` (version 6) needs foreign keys off, and SQLite only switches them
    // outside a transaction. The version is read again under the lock below: when another
    // server migrated the file meanwhile, nothing is rebuilt.
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let rebuild = version < SCHEMA_VERSION && version != 1;
    if rebuild {
        conn.pragma_update(None, "foreign_keys", "OFF")?;
    }
    let result = migrate_locked(conn);
    if rebuild {
        conn.pragma_update(None, "foreign_keys", "ON")?;
    }
    result
}

fn migrate_locked(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE: two servers opening a new file at once must not both create the schema.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_NEW)?;
            tx.execute_batch(SCHEMA_V3_IMAGE_TABLES)?;
            tx.execute_batch(MIGRATE_V4)?;
            tx.execute_batch(MIGRATE_V5)?;
            migrate_v6(&tx)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        2 => {
            migrate_v2(&tx)?;
            tx.execute_batch(MIGRATE_V4)?;
            tx.execute_batch(MIGRATE_V5)?;
            migrate_v6(&tx)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        3 => {
            tx.execute_batch(MIGRATE_V4)?;
            tx.execute_batch(MIGRATE_V5)?;
            migrate_v6(&tx)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        4 => {
            tx.execute_batch(MIGRATE_V5)?;
            migrate_v6(&tx)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        5 => {
            migrate_v6(&tx)?;
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

/// Version 5 → 6 in the caller's transaction (foreign keys off, see [`migrate`]), checking
/// that every reference to `images` still holds afterwards.
fn migrate_v6(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(MIGRATE_V6)?;
    let broken: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if broken > 0 {
        return Err(StoreError::Backend(format!(
            "sqlite: {broken} rows reference no image after the version 6 migration"
        )));
    }
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
        let bytes = chat_bytes(&ChatId::new(chat_id.as_str()), &anchor, false);
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
