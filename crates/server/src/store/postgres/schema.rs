//! The PostgreSQL schema and its versioned migrations, applied when a server starts.
//!
//! The tables are SQLite's (see `sqlite/schema.rs` for what each holds) in PostgreSQL's types:
//! `BIGINT` for every count, seq, time and byte total (checked non-negative; the code converts
//! to `u64`), `BYTEA` for fingerprints and secrets, an identity column for `images.id`. One
//! difference: `usage` holds a tenant's bytes in several rows (`shard`, chosen by image; see
//! `tx.rs`), summed when read.
//!
//! # Migrations
//!
//! [`MIGRATIONS`] is an append-only list: version `n` is the `n`th entry, and a released entry
//! is never edited (a change is a new entry). Entries only add (tables, indexes, columns with
//! defaults), so nodes of the previous release keep working on a migrated schema during a
//! rolling upgrade — except the `images.kind` entry, which changes the images' key (noted on
//! it). The versions applied are recorded in
//! `image_chat_migrations`. On start, [`migrate`] takes a transaction-scoped advisory lock (per
//! schema, so servers starting together on one new database do not both create the tables),
//! applies the missing versions in order in that one transaction (PostgreSQL's DDL is
//! transactional: a failed migration leaves the previous version intact), and refuses a
//! database whose version is newer than this code's, rather than writing rows it does not
//! understand.
//!
//! The tables live in the connection's current schema (the first existing one on its
//! `search_path`), so one database can hold several independent stores (tests use one schema
//! each): see docs/OPERATIONS.md.

use deadpool_postgres::{Client, Transaction};

use crate::store::StoreError;

/// One schema change.
struct Migration {
    /// What it does, recorded beside its version.
    description: &'static str,
    /// The statements, run in the migration transaction.
    sql: &'static str,
}

/// Every migration, in order; version = index + 1. Append only.
const MIGRATIONS: &[Migration] = &[
    Migration {
        description: "images, chats, comments, events, usage, secrets",
        sql: "
CREATE TABLE images (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT   NOT NULL,
    image  TEXT   NOT NULL,
    epoch  BIGINT NOT NULL CHECK (epoch > 0 AND epoch <= 4294967295),
    head   BIGINT NOT NULL CHECK (head >= 0),
    bytes  BIGINT NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    UNIQUE (tenant, image)
);

CREATE TABLE chats (
    image_row   BIGINT NOT NULL REFERENCES images (id),
    chat_id     TEXT   NOT NULL,
    anchor      TEXT   NOT NULL,
    author_id   TEXT   NOT NULL,
    created_seq BIGINT NOT NULL,
    bytes       BIGINT NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (image_row, chat_id)
);
CREATE INDEX chats_by_image ON chats (image_row, created_seq);

CREATE TABLE comments (
    image_row  BIGINT NOT NULL,
    comment_id TEXT   NOT NULL,
    chat_id    TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    author_id  TEXT   NOT NULL,
    author     TEXT   NOT NULL,
    text       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at  BIGINT,
    bytes      BIGINT NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (image_row, comment_id),
    FOREIGN KEY (image_row, chat_id) REFERENCES chats (image_row, chat_id) ON DELETE CASCADE
);
CREATE INDEX comments_by_chat ON comments (image_row, chat_id, seq);

CREATE TABLE events (
    image_row    BIGINT NOT NULL REFERENCES images (id),
    seq          BIGINT NOT NULL,
    broadcast_id TEXT   NOT NULL,
    fingerprint  BYTEA  NOT NULL,
    body         TEXT   NOT NULL,
    PRIMARY KEY (image_row, seq)
);
CREATE UNIQUE INDEX events_by_broadcast_id ON events (image_row, broadcast_id);

CREATE TABLE usage (
    tenant TEXT     NOT NULL,
    shard  SMALLINT NOT NULL,
    bytes  BIGINT   NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (tenant, shard)
);

CREATE TABLE secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL CHECK (length(value) = 32)
);
",
    },
    Migration {
        description: "chats.resolved (resolve / reopen)",
        sql: "ALTER TABLE chats ADD COLUMN resolved BOOLEAN NOT NULL DEFAULT FALSE;",
    },
    Migration {
        description: "image_locks, bans (moderation); images by tenant",
        sql: "
CREATE TABLE image_locks (
    tenant    TEXT   NOT NULL,
    image     TEXT   NOT NULL,
    locked_at BIGINT NOT NULL CHECK (locked_at >= 0),
    PRIMARY KEY (tenant, image)
);
CREATE INDEX image_locks_by_time ON image_locks (tenant, locked_at, image);

CREATE TABLE bans (
    tenant    TEXT   NOT NULL,
    user_id   TEXT   NOT NULL,
    reason    TEXT   NOT NULL,
    banned_at BIGINT NOT NULL CHECK (banned_at >= 0),
    PRIMARY KEY (tenant, user_id)
);
CREATE INDEX bans_by_time ON bans (tenant, banned_at, user_id);

CREATE INDEX images_by_tenant ON images (tenant, id);
",
    },
    Migration {
        description: "images.kind and image_locks.kind (discussions on page text), keys with the kind",
        // The one entry that changes keys: a node of the previous release reads and writes
        // its images (kind 'image' by default) but cannot create one any more (its
        // `ON CONFLICT (tenant, image)` has no matching constraint). Upgrade every node past it
        // together (see OPERATIONS.md, "Upgrading").
        sql: "
ALTER TABLE images ADD COLUMN kind TEXT NOT NULL DEFAULT 'image' CHECK (kind IN ('image', 'page'));
ALTER TABLE images DROP CONSTRAINT images_tenant_image_key;
ALTER TABLE images ADD CONSTRAINT images_tenant_kind_image_key UNIQUE (tenant, kind, image);
ALTER TABLE image_locks ADD COLUMN kind TEXT NOT NULL DEFAULT 'image' CHECK (kind IN ('image', 'page'));
ALTER TABLE image_locks DROP CONSTRAINT image_locks_pkey;
ALTER TABLE image_locks ADD PRIMARY KEY (tenant, kind, image);
",
    },
];

/// The schema version this code reads and writes.
pub(super) fn current_version() -> i32 {
    // A handful of entries: the cast cannot truncate.
    MIGRATIONS.len() as i32
}

/// First key of the advisory lock migrations take (the second is the schema's hash): an
/// arbitrary constant that names this application's lock among others on the database.
const MIGRATION_LOCK: i32 = 0x1c_4a7;

/// Brings the connection's current schema to [`current_version`], or refuses a newer one.
/// Returns the version found before.
pub(super) async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let tx = client.transaction().await?;
    match migrate_in(&tx).await {
        Ok(found) => {
            tx.commit().await?;
            Ok(found)
        }
        Err(err) => {
            // Now, not when the connection is next used: the transaction holds the migration
            // lock, which other servers starting on this schema wait for.
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(%rollback, "postgres: rollback failed");
            }
            Err(err)
        }
    }
}

async fn migrate_in(tx: &Transaction<'_>) -> Result<i32, StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        &[&MIGRATION_LOCK],
    )
    .await?;
    let schema: Option<String> = tx
        .query_one("SELECT current_schema()", &[])
        .await?
        .try_get(0)?;
    if schema.is_none() {
        return Err(StoreError::Backend(
            "postgres: no schema of the search_path exists: create it, or fix the search_path"
                .into(),
        ));
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS image_chat_migrations (
             version     INTEGER     NOT NULL PRIMARY KEY,
             description TEXT        NOT NULL,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM image_chat_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    if found > current_version() {
        return Err(StoreError::Backend(format!(
            "postgres: database schema version {found} is newer than this server's \
             ({}): run a newer server",
            current_version()
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i32 + 1;
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            "INSERT INTO image_chat_migrations (version, description) VALUES ($1, $2)",
            &[&version, &migration.description],
        )
        .await?;
        tracing::info!(version, migration.description, "postgres: schema migrated");
    }
    Ok(found)
}
