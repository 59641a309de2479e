//! What an operator relies on: `/readyz` reflects the store, every HTTP request is logged (as
//! JSON lines with `--log-format json`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use image_chat_protocol::{Event, ImageId, Op, Position, Snapshot, TenantId, User};
use image_chat_server::app::SessionLimits;
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::http::StaticDirs;
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::store::{
    BanEntry, CatchUp, Commit, CommitLimits, ImageEntry, ImageKey, LockEntry, Page, PageEntry,
    Store, StoreError, Usage,
};
use image_chat_server::tenant::Tenants;
use image_chat_server::{RunningServer, Security, ServerParts};
use support::process::ServerProcess;
use support::*;

/// The real SQLite store, with a switch that makes it unreachable the way a database server
/// that went away is: every call fails. (SQLite itself cannot go away under open connections.)
struct Unplugged {
    inner: SqliteStore,
    down: AtomicBool,
}

impl Unplugged {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("connection refused".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Unplugged {
    async fn commit_limited(
        &self,
        image: &ImageKey,
        actor: &User,
        op: &Op,
        now_ms: u64,
        limits: CommitLimits,
    ) -> Result<Commit, StoreError> {
        self.check()?;
        self.inner
            .commit_limited(image, actor, op, now_ms, limits)
            .await
    }
    async fn catch_up(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<CatchUp, StoreError> {
        self.check()?;
        self.inner.catch_up(image, since).await
    }
    async fn snapshot(&self, image: &ImageKey) -> Result<(Position, Snapshot), StoreError> {
        self.check()?;
        self.inner.snapshot(image).await
    }
    async fn missed_events(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<Option<(Position, Vec<Event>)>, StoreError> {
        self.check()?;
        self.inner.missed_events(image, since).await
    }
    async fn usage(&self, image: &ImageKey) -> Result<Usage, StoreError> {
        self.check()?;
        self.inner.usage(image).await
    }
    async fn secret(&self, name: &str) -> Result<[u8; 32], StoreError> {
        self.check()?;
        self.inner.secret(name).await
    }
    async fn set_locked(
        &self,
        image: &ImageKey,
        locked: bool,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.set_locked(image, locked, now_ms).await
    }
    async fn locked(&self, image: &ImageKey) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.locked(image).await
    }
    async fn locks(
        &self,
        tenant: &TenantId,
        page: Page<(u64, ImageId)>,
    ) -> Result<Vec<LockEntry>, StoreError> {
        self.check()?;
        self.inner.locks(tenant, page).await
    }
    async fn ban(
        &self,
        tenant: &TenantId,
        user_id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.ban(tenant, user_id, reason, now_ms).await
    }
    async fn unban(&self, tenant: &TenantId, user_id: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.unban(tenant, user_id).await
    }
    async fn bans(
        &self,
        tenant: &TenantId,
        page: Page<(u64, String)>,
    ) -> Result<Vec<BanEntry>, StoreError> {
        self.check()?;
        self.inner.bans(tenant, page).await
    }
    async fn images(
        &self,
        tenant: &TenantId,
        page: Page<i64>,
    ) -> Result<Vec<ImageEntry>, StoreError> {
        self.check()?;
        self.inner.images(tenant, page).await
    }
    async fn pages(
        &self,
        tenant: &TenantId,
        page: Page<i64>,
    ) -> Result<Vec<PageEntry>, StoreError> {
        self.check()?;
        self.inner.pages(tenant, page).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
}

#[tokio::test]
async fn readyz_answers_503_while_the_store_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Unplugged {
        inner: SqliteStore::open(&dir.path().join("db.sqlite"), SqliteConfig::default()).unwrap(),
        down: AtomicBool::new(false),
    });
    let server = RunningServer::start(ServerParts {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: Arc::clone(&store) as Arc<dyn Store>,
        broker: Arc::new(MemoryBroker::default()),
        presence: None,
        cluster_rates: None,
        tenants: Tenants::builtin(),
        limits: SessionLimits::default(),
        dirs: StaticDirs::default(),
        security: Security::default(),
    })
    .await
    .unwrap();
    let addr = server.local_addr();

    assert_eq!(
        http_get(addr, "/readyz").await,
        (
            200,
            r#"{"accepting":true,"store":"ok","broker":"ok"}"#.to_owned()
        )
    );
    store.down.store(true, Ordering::SeqCst);
    let (status, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        body, r#"{"accepting":true,"store":"unavailable","broker":"ok"}"#,
        "the error itself is logged, not sent"
    );
    assert_eq!(
        http_get(addr, "/healthz").await,
        (200, "ok".to_owned()),
        "alive all the same: a restart would not bring the database back"
    );
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(http_get(addr, "/readyz").await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn json_logs_carry_one_access_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::serve(
        dir.path(),
        &["--log-format".as_ref(), "json".as_ref()],
        &[("RUST_LOG", "info")],
        true,
    );
    assert_eq!(http_get(server.addr, "/readyz").await.0, 200);
    assert_eq!(http_get(server.addr, "/no-such-page?secret=1").await.0, 404);

    // The access line is written once the response is; give the log thread a moment.
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = server
            .logs()
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
            })
            .collect();
        let access = lines
            .iter()
            .filter(|l| l["target"] == "image_chat_server::access")
            .count();
        if access >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let access: Vec<_> = lines
        .iter()
        .filter(|l| l["target"] == "image_chat_server::access")
        .collect();
    assert_eq!(access.len(), 2, "{lines:#?}");
    assert_eq!(access[0]["level"], "INFO");
    assert_eq!(access[0]["span"]["method"], "GET");
    assert_eq!(access[0]["span"]["path"], "/readyz");
    assert_eq!(access[0]["fields"]["status"], 200);
    assert!(access[0]["fields"]["latency_us"].is_u64());
    assert_eq!(access[1]["span"]["path"], "/no-such-page");
    assert_eq!(access[1]["fields"]["status"], 404);
    assert!(
        !server.logs().contains("secret=1"),
        "query strings stay out of the log"
    );
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "listening"),
        "the server's own events are JSON too"
    );
}
