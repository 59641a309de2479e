//! The embedded, default [`Store`]: one SQLite database file holding every tenant's discussions,
//! each image's event log, and the server secrets. The op rules are in [`super::rules`]; this
//! module opens the file, runs transactions, and implements the rules' storage interface
//! (`sqlite/tx.rs`). The tables are described in `sqlite/schema.rs`.
//!
//! # Durability and concurrency
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a transaction is on disk when
//! `COMMIT` returns: [`Store::commit`] resolves only after that, which is what lets the server
//! ack an op as durable. Every write goes through one connection, owned by a writer thread of
//! its own (rusqlite is blocking), in an IMMEDIATE transaction: the database's write lock is
//! taken before the commit reads the image's head, so the `seq` it assigns is gap-free even
//! when another process writes the same file (its transaction waits up to `busy_timeout`).
//! The writer commits every write already waiting in one transaction, each in a savepoint of
//! its own, with one fsync for all (group commit, `sqlite/writer.rs`). A commit whose caller
//! stops waiting (a client disconnects) still runs to its end: the change is either fully
//! committed or not at all, and the client learns which on resync.
//!
//! Reads (catch-ups, snapshots, positions) use a small pool of their own read-only connections.
//! WAL lets readers and the writer work at the same time, each reader on the database as it
//! was when its transaction began, so a long read (a big snapshot) never delays a commit, and a
//! commit never delays a read.

mod outbox;
mod schema;
mod tx;
mod usage;
mod writer;

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use image_chat_protocol::{Event, ImageId, Op, Position, Snapshot, TenantId, User};
use rusqlite::{Connection, OpenFlags};

use super::rules::{self, CommitRequest, catch_up, limits, moderation};
use super::{
    BanEntry, CatchUp, Commit, CommitLimits, DayUsage, ImageEntry, ImageKey, LockEntry, OutboxItem,
    Page, PageEntry, Store, StoreError, Usage, UsageBatch, daily,
};
use tx::SqliteTx;
use writer::Writer;

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
    /// Most writes committed together in one transaction and one fsync (group commit, see
    /// `writer.rs`; at least 1). Default 64. 1 commits every write on its own, as before group
    /// commit: only for comparisons (`examples/sqlite_commit_bench.rs`).
    pub max_group: usize,
    /// Whether a commit's caller waits for the writer's answer on tokio's blocking pool
    /// (`true`, the default: tokio's paused test clock then stands still during a commit, which
    /// tests of timeouts rely on) or as a plain future (`false`: what the server runs, one
    /// thread hand-off less per commit; see `writer.rs`).
    pub blocking_wait: bool,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            retention: 1000,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            max_group: writer::MAX_GROUP,
            blocking_wait: true,
        }
    }
}

/// A [`Store`] in one SQLite database file. Cheap to share: wrap it in an `Arc`.
#[derive(Debug)]
pub struct SqliteStore {
    /// The one writing connection, used by [`Self::writer`]'s thread (see the module doc).
    conn: Arc<Mutex<Connection>>,
    /// The queue of writes to that connection.
    writer: Writer,
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
        schema::migrate(&mut conn)?;
        let readers = (0..config.readers.max(1))
            .map(|_| open_reader(path, config.busy_timeout).map(|c| Arc::new(Mutex::new(c))))
            .collect::<Result<Vec<_>, _>>()?;
        let conn = Arc::new(Mutex::new(conn));
        Ok(Self {
            writer: Writer::start(Arc::clone(&conn), config.max_group, config.blocking_wait)?,
            conn,
            readers: readers.into(),
            next_reader: AtomicUsize::new(0),
            retention: config.retention,
        })
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
    /// Runs the rules' `f` in the writer's next group commit (see the module doc), in a
    /// savepoint of its own: its result once that transaction has committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteTx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// Runs the rules' `f` in a read transaction on a read connection: everything it reads
    /// comes from one state of the database.
    async fn read_tx<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteTx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.read(move |conn| {
            let tx = conn.transaction()?;
            let out = f(&mut SqliteTx(&tx))?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

/// Drives a future of the rules over [`SqliteTx`] to its end. Every `SqliteTx` method does its
/// work before it returns a ready future, so one poll completes the whole computation; this
/// keeps the rules' code async (for PostgreSQL) without running an executor on the blocking
/// thread.
fn run_ready<T>(future: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => Err(StoreError::Backend(
            "sqlite: a storage call did not complete at once (SQLite's never wait)".into(),
        )),
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
#[async_trait]
impl Store for SqliteStore {
    /// The first poll of a commit queues it on the writer thread (`writer.rs`), which runs
    /// writes in queue order.
    fn commits_in_poll_order(&self) -> bool {
        true
    }

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
        self.write(move |tx| {
            let request = CommitRequest {
                image: &image,
                actor: &actor,
                op: &op,
                now_ms,
                limits,
                retention,
            };
            run_ready(rules::commit(tx, request))
        })
        .await
    }

    async fn catch_up(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<CatchUp, StoreError> {
        let image = image.clone();
        self.read_tx(move |tx| run_ready(catch_up::catch_up(tx, &image, since)))
            .await
    }

    async fn snapshot(&self, image: &ImageKey) -> Result<(Position, Snapshot), StoreError> {
        let image = image.clone();
        self.read_tx(move |tx| run_ready(catch_up::snapshot(tx, &image)))
            .await
    }

    async fn position(&self, image: &ImageKey) -> Result<Position, StoreError> {
        let image = image.clone();
        self.read_tx(move |tx| run_ready(catch_up::position(tx, &image)))
            .await
    }

    async fn missed_events(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<Option<(Position, Vec<Event>)>, StoreError> {
        let image = image.clone();
        self.read_tx(move |tx| run_ready(catch_up::missed_events(tx, &image, since)))
            .await
    }

    async fn usage(&self, image: &ImageKey) -> Result<Usage, StoreError> {
        let image = image.clone();
        self.read_tx(move |tx| run_ready(limits::usage(tx, &image)))
            .await
    }

    async fn secret(&self, name: &str) -> Result<[u8; 32], StoreError> {
        let name = name.to_owned();
        self.write(move |tx| run_ready(rules::secret(tx, &name)))
            .await
    }

    async fn add_usage(&self, batch: &UsageBatch) -> Result<(), StoreError> {
        let batch = batch.clone();
        self.write(move |tx| usage::add(tx.0, &batch)).await
    }

    async fn read_usage(
        &self,
        tenant: &TenantId,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayUsage>, StoreError> {
        let (tenant, from, to) = (tenant.to_string(), from.to_owned(), to.to_owned());
        self.read(move |conn| {
            let tx = conn.transaction()?;
            let counts = usage::counts(&tx, &tenant, &from, &to)?;
            let peaks = usage::peaks(&tx, &tenant, &from, &to)?;
            tx.commit()?;
            Ok(daily::merge_days(counts, peaks))
        })
        .await
    }

    async fn claim_webhooks(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.write(move |tx| outbox::claim(tx.0, now_ms, lease_until_ms, limit))
            .await
    }

    async fn webhook_done(&self, id: i64) -> Result<(), StoreError> {
        self.write(move |tx| outbox::done(tx.0, id)).await
    }

    async fn webhook_retry(&self, id: i64, attempts: u32, due_ms: u64) -> Result<(), StoreError> {
        self.write(move |tx| outbox::retry(tx.0, id, attempts, due_ms))
            .await
    }

    async fn set_locked(
        &self,
        image: &ImageKey,
        locked: bool,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let image = image.clone();
        self.write(move |tx| run_ready(moderation::set_locked(tx, &image, locked, now_ms)))
            .await
    }

    async fn locked(&self, image: &ImageKey) -> Result<bool, StoreError> {
        let image = image.clone();
        self.read_tx(move |tx| run_ready(moderation::locked(tx, &image)))
            .await
    }

    async fn locks(
        &self,
        tenant: &TenantId,
        page: Page<(u64, ImageId)>,
    ) -> Result<Vec<LockEntry>, StoreError> {
        let tenant = tenant.clone();
        self.read_tx(move |tx| run_ready(moderation::locks(tx, &tenant, page)))
            .await
    }

    async fn ban(
        &self,
        tenant: &TenantId,
        user_id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let (tenant, user_id, reason) = (tenant.clone(), user_id.to_owned(), reason.to_owned());
        self.write(move |tx| run_ready(moderation::ban(tx, &tenant, &user_id, &reason, now_ms)))
            .await
    }

    async fn unban(&self, tenant: &TenantId, user_id: &str) -> Result<bool, StoreError> {
        let (tenant, user_id) = (tenant.clone(), user_id.to_owned());
        self.write(move |tx| run_ready(moderation::unban(tx, &tenant, &user_id)))
            .await
    }

    async fn bans(
        &self,
        tenant: &TenantId,
        page: Page<(u64, String)>,
    ) -> Result<Vec<BanEntry>, StoreError> {
        let tenant = tenant.clone();
        self.read_tx(move |tx| run_ready(moderation::bans(tx, &tenant, page)))
            .await
    }

    async fn images(
        &self,
        tenant: &TenantId,
        page: Page<i64>,
    ) -> Result<Vec<ImageEntry>, StoreError> {
        let tenant = tenant.clone();
        self.read_tx(move |tx| run_ready(moderation::images(tx, &tenant, page)))
            .await
    }

    async fn pages(
        &self,
        tenant: &TenantId,
        page: Page<i64>,
    ) -> Result<Vec<PageEntry>, StoreError> {
        let tenant = tenant.clone();
        self.read_tx(move |tx| run_ready(moderation::pages(tx, &tenant, page)))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A read on a read connection, and a writer not lost to a panic: what every op needs.
        // (Not the writer's lock itself: a probe must not wait behind a commit's fsync.)
        if self.conn.is_poisoned() {
            return Err(StoreError::Backend(
                "sqlite: connection lock poisoned by a panic".into(),
            ));
        }
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

    use super::schema::SCHEMA_VERSION;
    use super::*;
    use crate::store::size::{chat_bytes, comment_bytes};
    use image_chat_protocol::{Anchor, ChatId};

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
        let key = |tenant: &str| ImageKey::image(TenantId::new(tenant), ImageId::new("img"));
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
    /// What `commits_in_poll_order` promises the session: commits of one image get their
    /// `seq` in the order they were first polled, however their awaits are ordered after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_take_seq_in_the_order_they_were_first_polled() {
        use image_chat_protocol::{BroadcastId, CreateChat, ImageId, TenantId};
        use std::future::Future;
        use std::task::Poll;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir, 10).expect("open");
        assert!(store.commits_in_poll_order());
        let image = ImageKey::image(TenantId::new("t"), ImageId::new("img"));
        let actor = User {
            id: "u".into(),
            name: "U".into(),
            avatar_url: None,
            is_moderator: false,
            signed_in: false,
        };
        let ops: Vec<Op> = (0..24u8)
            .map(|n| {
                let id = |k: u8| {
                    image_chat_protocol::ids::encode_uuid_v4([
                        n, k, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    ])
                };
                Op::CreateChat(CreateChat {
                    broadcast_id: BroadcastId::new(id(1)),
                    chat_id: ChatId::new(id(2)),
                    anchor: Anchor::point(0.5, 0.5),
                    text: "hi".into(),
                })
            })
            .collect();
        let mut commits: Vec<_> = ops
            .iter()
            .map(|op| {
                Box::pin(futures_util::future::maybe_done(
                    store.commit(&image, &actor, op, 1),
                ))
            })
            .collect();
        for commit in &mut commits {
            std::future::poll_fn(|cx| Poll::Ready(commit.as_mut().poll(cx).is_ready())).await;
        }
        let mut seqs = Vec::new();
        for mut commit in commits.into_iter().rev() {
            commit.as_mut().await;
            let committed = commit.as_mut().take_output().expect("the commit's output");
            match committed.expect("commit") {
                Commit::Applied(event) => seqs.push(event.seq()),
                Commit::Duplicate { .. } => panic!("not a duplicate"),
            }
        }
        seqs.reverse();
        assert_eq!(seqs, (1..=24).collect::<Vec<u64>>());
    }

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
        let image = ImageKey::image(
            image_chat_protocol::TenantId::new("t"),
            image_chat_protocol::ImageId::new("img"),
        );
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
        let weight = chat_bytes(&chat.id, &chat.anchor, chat.resolved)
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

    #[tokio::test]
    async fn version_4_files_gain_locks_and_bans_then_usage_and_the_outbox() {
        let dir = tempfile::tempdir().expect("temp dir");
        let image = ImageKey::image(
            image_chat_protocol::TenantId::new("t"),
            image_chat_protocol::ImageId::new("img"),
        );
        {
            let store = open(&dir, 10).expect("open");
            let conn = store.conn.lock().expect("lock");
            conn.execute_batch(
                "DROP TABLE image_locks; DROP TABLE bans; DROP INDEX images_by_tenant;
                 DROP TABLE usage_days; DROP TABLE usage_viewer_minutes;
                 DROP TABLE webhook_outbox; PRAGMA user_version = 4;",
            )
            .expect("back to version 4");
        }
        let store = open(&dir, 10).expect("convert");
        assert!(!store.locked(&image).await.expect("locked"));
        assert!(store.set_locked(&image, true, 1).await.expect("lock"));
        assert!(store.locked(&image).await.expect("locked"));
        let tenant = image_chat_protocol::TenantId::new("t");
        assert!(store.ban(&tenant, "anon:x", "", 2).await.expect("ban"));
        // Version 6's tables.
        assert!(
            store
                .read_usage(&tenant, "2026-01-01", "2026-12-31")
                .await
                .expect("usage")
                .is_empty()
        );
        assert!(
            store
                .claim_webhooks(1, 2, 10)
                .await
                .expect("outbox")
                .is_empty()
        );
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
}
