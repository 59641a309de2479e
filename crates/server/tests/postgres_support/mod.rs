//! PostgreSQL for tests: the server at `IMAGE_CHAT_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, which `scripts/setup.sh test` installs and starts
//! when nothing listens there), a fresh schema per test so parallel tests (and other test
//! binaries) never see each other's rows, and the schema dropped afterwards. A test that
//! cannot reach PostgreSQL fails: it is never skipped.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The database the tests use.
pub fn url() -> String {
    std::env::var("IMAGE_CHAT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// The PostgreSQL server's TCP address (for paths in front of it).
pub fn addr() -> SocketAddr {
    let url = url();
    let host_port = url
        .split_once('@')
        .map_or(url.as_str(), |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("cannot resolve the PostgreSQL address in {url}"))
}

/// A plain connection for test statements (its connection task runs on the caller's runtime).
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|err| {
            panic!("PostgreSQL is not reachable at {url} ({err}); run `bash scripts/setup.sh test`")
        });
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// `url` with every connection's tables in `schema` (its `search_path`).
pub fn with_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}")
}

/// A schema of its own in the test database, dropped (with everything in it) on drop.
///
/// The drop blocks the test's thread until `DROP SCHEMA` is done, which waits for every
/// transaction still open on the schema. A transaction left open by a store on a
/// current-thread test runtime cannot end meanwhile (its connection task needs that thread),
/// so the drop would wait for PostgreSQL's `idle_in_transaction_session_timeout` (30 s): stores
/// end their transactions before returning, and a test that abandons one (a timed-out future)
/// should use a multi-threaded runtime.
pub struct TestSchema {
    /// The schema's name.
    pub name: String,
    /// The database URL whose connections use it.
    pub url: String,
}

impl TestSchema {
    /// Creates a schema no other test (in this or another process) uses.
    pub async fn create() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("test_{}_{nanos:x}_{n}", std::process::id());
        let base = url();
        connect(&base)
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap_or_else(|err| panic!("create schema {name}: {err}"));
        Self {
            url: with_schema(&base, &name),
            name,
        }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own
        // with a runtime of its own drops the schema, and the test waits for it.
        let (base, name) = (url(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping a schema");
            runtime.block_on(async {
                connect(&base)
                    .await
                    .batch_execute(&format!("DROP SCHEMA {name} CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// A TCP path to PostgreSQL that a test can take down (every connection cut, new ones closed
/// at once, as when PostgreSQL is stopped) and bring back.
pub struct Outage {
    /// Where connections to PostgreSQL through this path go.
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
    accept: tokio::task::JoinHandle<()>,
}

impl Outage {
    /// Starts the path to `upstream`, up.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (up2, cut2) = (Arc::clone(&up), Arc::clone(&cut));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let cut = Arc::clone(&cut2);
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            cut,
            accept,
        }
    }

    /// Cuts every connection and closes new ones at once.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    /// Lets connections through again.
    pub fn back(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Outage {
    /// `schema`'s URL with its host and port replaced by this path's.
    pub fn url(&self, schema: &TestSchema) -> String {
        let rest = schema
            .url
            .strip_prefix("postgres://")
            .expect("a postgres:// test URL");
        let (user, rest) = rest.split_once('@').map_or(("", rest), |(u, r)| (u, r));
        let (_, database) = rest.split_once('/').expect("a database in the test URL");
        let at = if user.is_empty() { "" } else { "@" };
        format!("postgres://{user}{at}{}/{database}", self.addr)
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut.notify_waiters();
    }
}
