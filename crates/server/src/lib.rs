//! image-chat server: real-time discussions on images over WebSockets.
//!
//! Module map:
//! - [`store`]: durable discussions and per-image event logs ([`store::Store`]): the op rules
//!   once in [`store::rules`], SQLite (default) and PostgreSQL (clusters) implementing only SQL.
//! - [`snapshots`]: each image's snapshot encoded once per position, shared by its readers.
//! - [`pseudonyms`]: signed users' ids as anonymous readers see them.
//! - [`broker`]: per-image fan-out of committed events ([`broker::Broker`], in-process default).
//! - [`session`]: one WebSocket connection from `hello` to close (generic over Sink/Stream).
//! - [`outbound`]: the session's send budget (a peer that stops reading is cut off).
//! - [`gate`]: per-branch wake tracking for the session loop (poll only what was woken).
//! - [`app`]: state shared by all connections, per-image publish order, shutdown signal.
//! - [`tenant`], [`identity`], [`sso`], [`secret`]: who may connect from where, and as whom
//!   (tenants file, signed users, anonymous tokens, secrets that never print).
//! - [`limits`], [`ratelimit`], [`admission`]: configurable limits, token buckets (pure logic),
//!   per-address connection counts and the per-op gate (read-only, rate limits).
//! - [`listen`]: the accept loop: connections counted per address and in total at accept,
//!   HTTP/1.1 with a header read timeout and bounded request heads (plain and TLS).
//! - [`tls`]: wss:// served directly (rustls).
//! - [`admin`]: the `tenant new` and `sign` subcommands.
//! - [`admin_api`]: the admin HTTP API (API key per tenant, OpenAPI document, JSON errors).
//! - [`dashboard`]: the site owner's dashboard at `/admin` (static page over the admin API).
//! - [`moderation`]: image locks (store + `lock` frame) shared by the admin API and moderators.
//! - [`presence`]: viewers and live counts ([`presence::Presence`], in-process default).
//! - [`http`]: the router (WebSocket, snapshot API, health, static files, access log).
//! - [`health`]: `/healthz` (liveness) and `/readyz` (store and broker answer).
//! - [`embedded`]: the release widget built into the binary (`/embed.js`, `/pkg/…`).
//! - [`statics`]: static files with the headers public assets need (CORS, nosniff, CSP,
//!   precompressed twins) and no way out of their directory.
//! - [`reload`]: SIGHUP re-reads the tenants file and the TLS certificate (open connections
//!   stay).
//! - [`cluster`]: the broker and presence a node runs with (in-process, or Redis for a cluster).
//! - [`cluster_rates`]: per-address op budgets shared by the nodes of a cluster (Redis).
//! - [`usage`]: usage per tenant per day (frames and bytes sent, ops, connections, peaks),
//!   counted live in memory and flushed to the store; its gauge of open connections is also
//!   the admin API's live count.
//! - [`metrics`]: `/metrics` (Prometheus text) on its own listener.
//! - [`webhooks`]: each committed change POSTed, signed, to a tenant's endpoint (durable
//!   outbox, retries, at least once).
//! - [`config`]: command line / environment configuration and the `serve` entry point.
//!
//! Every op on an image goes validate (protocol codec) → commit (store, assigns `seq`) → ack →
//! publish (broker), under that image's ordering lock.

pub mod admin;
pub mod admin_api;
pub mod admission;
pub mod annotations;
pub mod app;
pub mod broker;
pub mod cluster;
pub mod cluster_rates;
pub mod config;
pub mod dashboard;
pub mod embedded;
pub mod fanout;
pub mod gate;
pub mod health;
pub mod http;
pub mod identity;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod moderation;
pub mod op_pipeline;
pub mod outbound;
pub mod outlet;
pub mod presence;
pub mod pseudonyms;
pub mod ratelimit;
pub mod raw_socket;
pub mod reload;
pub mod secret;
pub mod session;
pub mod snapshots;
pub mod sso;
pub mod statics;
pub mod store;
pub mod tenant;
pub mod tls;
pub mod transport;
pub mod usage;
pub mod webhooks;
pub mod ws_frame;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app::{App, SessionLimits};
use crate::broker::Broker;
use crate::cluster_rates::ClusterRates;
use crate::http::StaticDirs;
use crate::identity::Identities;
use crate::limits::Limits;
use crate::listen::Listen;
use crate::presence::Presence;
use crate::presence::memory::MemoryPresence;
use crate::store::{Store, StoreError};
use crate::tenant::Tenants;

/// How long shutdown waits for connections to send their close frames.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cluster's broker (Redis) could not be reached.
    #[error(transparent)]
    Broker(crate::broker::BrokerError),
    /// The tenants file could not be loaded.
    #[error(transparent)]
    Tenants(#[from] crate::tenant::TenantConfigError),
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// What to run.
pub struct ServerParts {
    /// Where to listen (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Fan-out.
    pub broker: Arc<dyn Broker>,
    /// Viewers and live counts (`None`: this process's own, [`MemoryPresence`], published
    /// through `broker`).
    pub presence: Option<Arc<dyn Presence>>,
    /// Per-address op budgets shared with the other nodes of a cluster (`None`: this node's
    /// own only).
    pub cluster_rates: Option<Arc<ClusterRates>>,
    /// Known tenants.
    pub tenants: Tenants,
    /// Connection timeouts.
    pub limits: SessionLimits,
    /// Static files.
    pub dirs: StaticDirs,
    /// Limits and TLS.
    pub security: Security,
}

/// The security-related part of the configuration.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// Rate, size and connection limits.
    pub limits: Limits,
    /// Serve wss:// (and https://) directly with this configuration; `None`: plain ws://
    /// (behind a TLS-terminating proxy, or for local development).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Socket options of an accepted connection. `TCP_NODELAY`: every frame is written whole and
/// at once (the WebSocket transport has no write buffering here), so Nagle's algorithm can only
/// hold a small frame back until the previous one is acknowledged, which adds a round trip to
/// deliveries that follow each other closely (batches, presence then an event). The send buffer
/// keeps the kernel's autotuning: fixing `SO_SNDBUF` would turn it off, and the send timeout
/// (not the buffer size) is what bounds a slow consumer.
pub(crate) fn tune_accepted(tcp: &mut tokio::net::TcpStream) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(%err, "cannot set TCP_NODELAY");
    }
}

/// How often each node writes the usage it counted to the store (and so how much a node that
/// is killed, not stopped, can lose; `/api/…/usage` flushes this node first).
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Writes usage every [`USAGE_FLUSH_INTERVAL`] until shutdown (which writes the rest itself).
async fn flush_usage_periodically(app: Arc<App>) {
    let mut tick = tokio::time::interval(USAGE_FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(err) = app.flush_usage().await {
            // Kept in memory and carried by the next flush.
            tracing::warn!(%err, "could not write usage; will retry");
        }
    }
}

/// A server accepting connections.
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    app: Arc<App>,
    serve: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Binds and starts serving.
    pub async fn start(parts: ServerParts) -> Result<Self, StartError> {
        let secret = parts.store.secret("anonymous-identity").await?;
        let presence = parts.presence.unwrap_or_else(|| {
            Arc::new(MemoryPresence::new(
                parts.security.limits.counted_anonymous_per_ip,
                Arc::clone(&parts.broker),
            ))
        });
        let mut app = App::new(
            parts.store,
            parts.broker,
            presence,
            parts.tenants,
            Identities::new(secret),
            parts.limits,
            parts.security.limits,
        );
        app.cluster_rates = parts.cluster_rates;
        let app = Arc::new(app);
        let listener =
            TcpListener::bind(parts.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: parts.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: parts.listen,
            source,
        })?;
        let tls = parts.security.tls.is_some();
        let listen = Listen {
            listener,
            tls: parts.security.tls.map(tokio_rustls::TlsAcceptor::from),
            router: http::router(Arc::clone(&app), &parts.dirs),
            per_ip: Arc::clone(&app.connections_per_ip),
            max_connections_per_ip: app.security.max_connections_per_ip,
            trust_forwarded_for: app.security.trust_forwarded_for,
            http: app.security.http,
            stop: app.shutdown.clone(),
        };
        let serve = tokio::spawn(listen::run(listen));
        tokio::spawn(flush_usage_periodically(Arc::clone(&app)));
        tracing::info!(%addr, tls, "listening");
        Ok(Self {
            addr,
            tls,
            app,
            serve,
        })
    }

    /// Whether the server speaks TLS (wss://, https://).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shared state (for tests and tools in this process).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Stops accepting, closes every connection with "service restart" (clients reconnect), and
    /// waits (bounded) for the close frames to go out.
    pub async fn shutdown(self) {
        self.app.shutdown.cancel();
        self.app.connections.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.app.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
        }
        // Every connection has ended: what they were counted for is final.
        if let Err(err) = self.app.flush_usage().await {
            tracing::warn!(%err, "could not write usage at shutdown");
        }
        match tokio::time::timeout(SHUTDOWN_GRACE, self.serve).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::warn!(%err, "server error during shutdown"),
            Ok(Err(err)) => tracing::warn!(%err, "server task failed"),
            Err(_) => tracing::warn!("HTTP server did not stop in time"),
        }
    }
}
