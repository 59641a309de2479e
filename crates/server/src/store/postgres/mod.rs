//! The cluster [`Store`]: every server of a cluster on one PostgreSQL database. The op rules
//! are in [`super::rules`]; this module connects, applies the migrations (`schema.rs`), runs
//! transactions on a connection pool, and implements the rules' storage interface (`tx.rs`).
//!
//! # Guarantees, as SQLite's
//!
//! - Ordering: a commit locks its image's row (`SELECT … FOR UPDATE`) before it reads the head,
//!   in a READ COMMITTED transaction, so commits on one image from any number of servers run
//!   one after the other and `seq` is gap-free and totally ordered. Commits on different
//!   images do not wait for each other.
//! - Durability: [`Store::commit`] returns after `COMMIT` returned, i.e. after PostgreSQL made
//!   the transaction durable per its `synchronous_commit` (on by default: flushed to the WAL;
//!   with synchronous replicas configured, on them too). Do not turn it off for this database.
//! - Idempotency: as every store, by the rules (the event log keeps each op's fingerprint).
//! - Reads (catch-ups, snapshots) run in REPEATABLE READ READ ONLY transactions: one
//!   consistent state, and they never block a commit.
//!
//! # Failures
//!
//! Connections come from a [`deadpool_postgres`] pool. A connection found closed is replaced
//! when it is next taken; when PostgreSQL is down, taking one fails within
//! [`PostgresConfig::connect_timeout`] and the op fails with [`StoreError::Backend`] (clients
//! get `unavailable`; retrying with the same `broadcastId` is safe). Nothing else is needed to
//! recover: the next op after PostgreSQL is back opens new connections. A whole operation is
//! bounded by [`PostgresConfig::op_timeout`]; PostgreSQL itself ends a transaction left idle by
//! a server that vanished (`idle_in_transaction_session_timeout`), releasing its image lock.
//!
//! # Why tokio-postgres and deadpool
//!
//! The rules are plain SQL behind a trait, so sqlx's compile-time checked queries (which want
//! a database at build time) and its migration macros buy nothing here, for a much larger
//! dependency tree to build. tokio-postgres gives explicit transactions and pipelining;
//! deadpool adds a small pool with timeouts and a per-connection statement cache.

mod outbox;
mod schema;
mod tx;
mod usage;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Client, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction,
};
use image_chat_protocol::{Event, ImageId, Op, Position, Snapshot, TenantId, User};
use tokio_postgres::{IsolationLevel, NoTls};

use super::rules::{self, CommitRequest, catch_up, limits, moderation};
use super::{
    BanEntry, CatchUp, Commit, CommitLimits, DayUsage, ImageEntry, ImageKey, LockEntry, OutboxItem,
    Page, PageEntry, Store, StoreError, Usage, UsageBatch, daily,
};
use tx::PgTx;

/// Tuning for [`PostgresStore`].
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// Events kept per image log (at least 1), as [`super::sqlite::SqliteConfig::retention`].
    pub retention: u64,
    /// Most connections this server opens. Each commit and each read holds one for its
    /// duration. Default 16; mind PostgreSQL's `max_connections` over all servers.
    pub pool_size: usize,
    /// How long opening a connection, or waiting for a free one, may take before the op
    /// fails as `unavailable`. Default 5 s.
    pub connect_timeout: Duration,
    /// Longest a whole store operation may take (a commit waiting for a lock held by a server
    /// that vanished, a dead network path) before it fails as `unavailable`. Default 30 s.
    pub op_timeout: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            retention: 1000,
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            op_timeout: Duration::from_secs(30),
        }
    }
}

/// A [`Store`] on a PostgreSQL database, shared by every server of a cluster.
#[derive(Clone)]
pub struct PostgresStore {
    /// Connections; replaced when broken (see the module doc).
    pool: Pool,
    /// Events kept per image, ≥ 1.
    retention: u64,
    /// Bound on one operation.
    op_timeout: Duration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .field("retention", &self.retention)
            .finish()
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Backend(format!("postgres: {e}"))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Backend(format!("postgres connection pool: {e}"))
    }
}

/// Session settings every connection gets, unless the URL's `options` sets them: a
/// transaction left open by a server that stopped answering is ended by PostgreSQL (its image
/// lock released), and no statement runs for ever.
const SESSION_OPTIONS: [(&str, &str); 2] = [
    ("idle_in_transaction_session_timeout", "30s"),
    ("statement_timeout", "60s"),
];

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or
    /// the key/value form; `?options=-csearch_path%3Dname` puts the tables in schema `name`),
    /// applies the missing migrations, and returns the store.
    ///
    /// Fails if `config.retention` is 0, if the URL does not parse, if PostgreSQL cannot be
    /// reached, or if the database's schema is newer than this code: a server does not start
    /// on a database it cannot use.
    pub async fn connect(url: &str, config: PostgresConfig) -> Result<Self, StoreError> {
        if config.retention == 0 {
            return Err(StoreError::Backend(
                "postgres: retention must be at least 1 event per image".into(),
            ));
        }
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("postgres: invalid database URL: {e}")))?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.connect_timeout);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("image-chat-server");
        }
        // Find a dead peer in about 25 s rather than the system's default two hours.
        pg.keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        let mut options = pg.get_options().unwrap_or_default().to_owned();
        for (name, value) in SESSION_OPTIONS {
            if !options.contains(name) {
                options.push_str(&format!(" -c {name}={value}"));
            }
        }
        pg.options(options.trim());
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                // Only checks that the connection is open: a connection that died while idle
                // fails its first statement, which fails that one op as `unavailable`.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.connect_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres connection pool: {e}")))?;
        let store = Self {
            pool,
            retention: config.retention,
            op_timeout: config.op_timeout,
        };
        let mut client = store.client().await?;
        let before = schema::migrate(&mut client).await?;
        tracing::info!(
            version = schema::current_version(),
            before,
            "postgres: store ready"
        );
        Ok(store)
    }

    async fn client(&self) -> Result<Client, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Bounds `op` by the operation timeout.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.op_timeout, op)
            .await
            .map_err(|_| {
                StoreError::Backend(format!("postgres: no answer within {:?}", self.op_timeout))
            })?
    }
}

/// Commits `tx` if the rules succeeded, rolls it back (reporting the rules' error) if not.
async fn finish<T>(tx: Transaction<'_>, out: Result<T, StoreError>) -> Result<T, StoreError> {
    match out {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(err) => {
            // A failed rollback changes nothing for the caller: the transaction is not
            // committed either way, and a broken connection is replaced by the pool.
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(%rollback, "postgres: rollback failed");
            }
            Err(err)
        }
    }
}

/// Runs `$body` (an expression using `$tx: &mut PgTx`) in a transaction of `$store` begun by
/// `$begin`, committing on success. A macro, not a function taking a closure: the rules'
/// futures borrow the transaction, which a closure's return type cannot express on stable.
macro_rules! in_tx {
    ($store:expr, $begin:expr, |$tx:ident| $body:expr) => {
        $store
            .bounded(async {
                let mut client = $store.client().await?;
                let begin: fn(&mut Client) -> deadpool_postgres::TransactionBuilder<'_> = $begin;
                let transaction = begin(&mut client).start().await?;
                let out = {
                    let $tx = &mut PgTx(&transaction);
                    $body.await
                };
                finish(transaction, out).await
            })
            .await
    };
}

/// A commit's transaction: READ COMMITTED, serialized per image by the row lock.
fn write(client: &mut Client) -> deadpool_postgres::TransactionBuilder<'_> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
}

/// A read's transaction: one snapshot of the database for every statement.
fn read(client: &mut Client) -> deadpool_postgres::TransactionBuilder<'_> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit_limited(
        &self,
        image: &ImageKey,
        actor: &User,
        op: &Op,
        now_ms: u64,
        limits: CommitLimits,
    ) -> Result<Commit, StoreError> {
        let request = CommitRequest {
            image,
            actor,
            op,
            now_ms,
            limits,
            retention: self.retention,
        };
        in_tx!(self, write, |tx| rules::commit(tx, request))
    }

    async fn catch_up(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<CatchUp, StoreError> {
        in_tx!(self, read, |tx| catch_up::catch_up(tx, image, since))
    }

    async fn snapshot(&self, image: &ImageKey) -> Result<(Position, Snapshot), StoreError> {
        in_tx!(self, read, |tx| catch_up::snapshot(tx, image))
    }

    async fn position(&self, image: &ImageKey) -> Result<Position, StoreError> {
        in_tx!(self, read, |tx| catch_up::position(tx, image))
    }

    async fn missed_events(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<Option<(Position, Vec<Event>)>, StoreError> {
        in_tx!(self, read, |tx| catch_up::missed_events(tx, image, since))
    }

    async fn usage(&self, image: &ImageKey) -> Result<Usage, StoreError> {
        in_tx!(self, read, |tx| limits::usage(tx, image))
    }

    async fn secret(&self, name: &str) -> Result<[u8; 32], StoreError> {
        in_tx!(self, write, |tx| rules::secret(tx, name))
    }

    async fn add_usage(&self, batch: &UsageBatch) -> Result<(), StoreError> {
        in_tx!(self, write, |tx| usage::add(tx, batch))
    }

    async fn read_usage(
        &self,
        tenant: &TenantId,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayUsage>, StoreError> {
        in_tx!(self, read, |tx| async {
            let counts = usage::counts(tx, tenant.as_str(), from, to).await?;
            let peaks = usage::peaks(tx, tenant.as_str(), from, to).await?;
            Ok(daily::merge_days(counts, peaks))
        })
    }

    async fn claim_webhooks(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        in_tx!(self, write, |tx| outbox::claim(
            tx,
            now_ms,
            lease_until_ms,
            limit
        ))
    }

    async fn webhook_done(&self, id: i64) -> Result<(), StoreError> {
        in_tx!(self, write, |tx| outbox::done(tx, id))
    }

    async fn webhook_retry(&self, id: i64, attempts: u32, due_ms: u64) -> Result<(), StoreError> {
        in_tx!(self, write, |tx| outbox::retry(tx, id, attempts, due_ms))
    }

    async fn set_locked(
        &self,
        image: &ImageKey,
        locked: bool,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        in_tx!(self, write, |tx| moderation::set_locked(
            tx, image, locked, now_ms
        ))
    }

    async fn locked(&self, image: &ImageKey) -> Result<bool, StoreError> {
        in_tx!(self, read, |tx| moderation::locked(tx, image))
    }

    async fn locks(
        &self,
        tenant: &TenantId,
        page: Page<(u64, ImageId)>,
    ) -> Result<Vec<LockEntry>, StoreError> {
        in_tx!(self, read, |tx| moderation::locks(tx, tenant, page))
    }

    async fn ban(
        &self,
        tenant: &TenantId,
        user_id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        in_tx!(self, write, |tx| moderation::ban(
            tx, tenant, user_id, reason, now_ms
        ))
    }

    async fn unban(&self, tenant: &TenantId, user_id: &str) -> Result<bool, StoreError> {
        in_tx!(self, write, |tx| moderation::unban(tx, tenant, user_id))
    }

    async fn bans(
        &self,
        tenant: &TenantId,
        page: Page<(u64, String)>,
    ) -> Result<Vec<BanEntry>, StoreError> {
        in_tx!(self, read, |tx| moderation::bans(tx, tenant, page))
    }

    async fn images(
        &self,
        tenant: &TenantId,
        page: Page<i64>,
    ) -> Result<Vec<ImageEntry>, StoreError> {
        in_tx!(self, read, |tx| moderation::images(tx, tenant, page))
    }

    async fn pages(
        &self,
        tenant: &TenantId,
        page: Page<i64>,
    ) -> Result<Vec<PageEntry>, StoreError> {
        in_tx!(self, read, |tx| moderation::pages(tx, tenant, page))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }
}
