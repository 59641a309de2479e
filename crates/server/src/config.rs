//! Configuration from command-line flags and environment variables (every flag has an
//! `IMAGE_CHAT_*` variable), and the `serve` command that wires the default implementations
//! together: SQLite store (or, with `--database-url`, PostgreSQL), in-process broker (or, with
//! `--redis-url`, the Redis broker behind per-node `seq` ordering; both behind the batching
//! decorator), the tenants file (plus the built-in demo tenant), limits and TLS. Also the
//! operator's `tenant new` and `sign` subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app::SessionLimits;
use crate::broker::memory::DEFAULT_SUBSCRIBER_BUFFER;
use crate::http::StaticDirs;
use crate::limits::{HttpLimits, Limits, SsoWindow, TenantLimits};
use crate::ratelimit::Rate;
use crate::reload::Reload;
use crate::store::postgres::{PostgresConfig, PostgresStore};
use crate::store::sqlite::{SqliteConfig, SqliteStore};
use crate::store::{Store, StoreError};
use crate::tenant::{AnonymousPolicy, Tenants};
use crate::{RunningServer, Security, ServerParts, StartError};
use image_chat_protocol::TenantId;

/// The `image-chat-server` command line.
#[derive(Debug, Parser)]
#[command(
    name = "image-chat-server",
    version,
    about = "Real-time discussions on images."
)]
pub struct Cli {
    /// Log lines on stderr: `text` for people, `json` (one object per line) for collectors.
    #[arg(
        long,
        global = true,
        env = "IMAGE_CHAT_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event (`timestamp`, `level`, `fields`, `target`, `span`).
    Json,
}

/// Subcommands.
// Parsed once per process: the size of the `serve` flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Sign a user the way a site backend does and print the `auth` object the widget takes.
    Sign(SignArgs),
}

/// `tenant` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Print a `[[tenant]]` block with a fresh random secret, to add to the tenants file.
    New {
        /// The tenant id (letters, digits, `-`, `_`, `.`; as the widget's `tenant` option).
        #[arg(long)]
        id: String,
        /// A page origin allowed to embed the widget (`https://host[:port]`); repeatable.
        #[arg(long = "origin", required = true)]
        origins: Vec<String>,
        /// Whether people who are not signed in may take part.
        #[arg(long, value_enum, default_value = "deny")]
        anonymous: AnonymousPolicy,
    },
}

/// Flags of `sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The tenant the user is signed for (with `--tenants`, its secret is read from the file).
    #[arg(long)]
    pub tenant: Option<String>,
    /// The server's audience the user is signed for: its public host as the widget reaches it
    /// (`chat.example.com`; locally `127.0.0.1:8080`), or the tenant's `sso_audience`.
    #[arg(long, env = "IMAGE_CHAT_SSO_AUDIENCE")]
    pub audience: String,
    /// The tenants file to read the secret from.
    #[arg(long, env = "IMAGE_CHAT_TENANTS")]
    pub tenants: Option<PathBuf>,
    /// The tenant's secret (prefer the environment variable: flags end up in shell history).
    #[arg(long, env = "IMAGE_CHAT_SSO_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The user as JSON: `{"id":"…","name":"…","avatar":"https://…","isModerator":false}`.
    #[arg(long)]
    pub user: String,
    /// Signing time in ms since the Unix epoch (default: now).
    #[arg(long)]
    pub timestamp: Option<u64>,
}

/// Flags of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the bound address is printed on stdout).
    #[arg(long, env = "IMAGE_CHAT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQLite database file (created if missing). Not used with --database-url.
    #[arg(long, env = "IMAGE_CHAT_DATABASE", default_value = "image-chat.db")]
    pub database: PathBuf,
    /// PostgreSQL database shared by the nodes of a cluster
    /// (`postgres://user:password@host:port/database`), instead of the SQLite file (--database
    /// is then ignored). Its schema is created or migrated on start.
    #[arg(long, env = "IMAGE_CHAT_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most connections this node opens to PostgreSQL (with --database-url).
    #[arg(long, env = "IMAGE_CHAT_DATABASE_POOL_SIZE", default_value_t = 16)]
    pub database_pool_size: usize,
    /// Events kept per image for resuming clients; older gaps get a full snapshot instead.
    #[arg(long, env = "IMAGE_CHAT_RETENTION", default_value_t = 1000)]
    pub retention: u64,
    /// Most SQLite writes committed together in one transaction and one fsync (group commit).
    /// 1 commits every op on its own: only for comparisons (docs/BENCHMARKS.md).
    #[arg(long, env = "IMAGE_CHAT_SQLITE_MAX_GROUP", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub sqlite_max_group: u16,
    /// Directory served at `/` (the demo site).
    #[arg(long, env = "IMAGE_CHAT_WWW_DIR")]
    pub www_dir: Option<PathBuf>,
    /// A built widget (`scripts/build-widget.sh`'s `pkg/`) to serve at `/pkg/` and `/embed.js`
    /// instead of the one built into this binary.
    #[arg(long, env = "IMAGE_CHAT_PKG_DIR")]
    pub pkg_dir: Option<PathBuf>,
    /// Seconds a new connection has to say `hello`.
    #[arg(long, env = "IMAGE_CHAT_HELLO_TIMEOUT_SECS", default_value_t = 10)]
    pub hello_timeout_secs: u64,
    /// Seconds of silence after which a connection is closed (clients ping every 25 s).
    #[arg(long, env = "IMAGE_CHAT_IDLE_TIMEOUT_SECS", default_value_t = 70)]
    pub idle_timeout_secs: u64,
    /// TOML file of tenants (ids, secrets, allowed origins, anonymous policy, limits).
    #[arg(long, env = "IMAGE_CHAT_TENANTS")]
    pub tenants: Option<PathBuf>,
    /// Do not provide the built-in `demo` tenant (localhost pages, anonymous people).
    #[arg(
        long,
        env = "IMAGE_CHAT_NO_DEMO_TENANT",
        conflicts_with = "demo_tenant"
    )]
    pub no_demo_tenant: bool,
    /// Provide the built-in `demo` tenant even though the server listens beyond loopback. By
    /// default it exists only on a loopback `--listen` address (local development, the demo,
    /// tests): anyone could otherwise store anything through it.
    #[arg(long, env = "IMAGE_CHAT_DEMO_TENANT")]
    pub demo_tenant: bool,
    /// PEM certificate chain: serve wss:// and https:// directly (needs --tls-key).
    #[arg(long, env = "IMAGE_CHAT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "IMAGE_CHAT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a signed user's timestamp stays valid (tenants may override).
    #[arg(long, env = "IMAGE_CHAT_SSO_MAX_AGE_SECS", default_value_t = 86_400)]
    pub sso_max_age_secs: u64,
    /// The audience signed users are signed for: this server's public host as the widget
    /// reaches it (e.g. `chat.example.com`); tenants may override it (`sso_audience`). Unset:
    /// the `Host` each connection names, which is the same behind a proxy that keeps `Host`.
    #[arg(long, env = "IMAGE_CHAT_SSO_AUDIENCE")]
    pub sso_audience: Option<String>,
    /// Seconds a signed user's timestamp may be ahead of this server's clock.
    #[arg(long, env = "IMAGE_CHAT_SSO_MAX_SKEW_SECS", default_value_t = 300)]
    pub sso_max_skew_secs: u64,
    /// Sustained ops per second per connection (0: unlimited; tenants may override).
    #[arg(long, env = "IMAGE_CHAT_OPS_PER_SEC", default_value_t = 5.0)]
    pub ops_per_sec: f64,
    /// Ops a connection may send at once (0: unlimited; tenants may override).
    #[arg(long, env = "IMAGE_CHAT_OPS_BURST", default_value_t = 20)]
    pub ops_burst: u32,
    /// Sustained ops per second per client address, all its connections together (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_IP_OPS_PER_SEC", default_value_t = 20.0)]
    pub ip_ops_per_sec: f64,
    /// Ops a client address may send at once (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_IP_OPS_BURST", default_value_t = 100)]
    pub ip_ops_burst: u32,
    /// Open connections per client address; more are refused with HTTP 429 (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 200)]
    pub max_connections_per_ip: u32,
    /// Connections the server holds at once, all addresses together; more get HTTP 503 at
    /// accept (0: unlimited; default: the open-files limit minus a reserve of 128).
    #[arg(long, env = "IMAGE_CHAT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a complete request head, from the connection's start or
    /// the end of the previous response (so also the keep-alive idle timeout).
    #[arg(
        long,
        env = "IMAGE_CHAT_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub header_read_timeout_secs: u64,
    /// Largest request head in bytes (request line and headers; at least 8192); larger get
    /// HTTP 431.
    #[arg(long, env = "IMAGE_CHAT_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Sustained bytes of ops per second per connection (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_BYTES_PER_SEC", default_value_t = 4096)]
    pub bytes_per_sec: u32,
    /// Bytes of ops a connection may send at once (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_BYTES_BURST", default_value_t = 64 * 1024)]
    pub bytes_burst: u32,
    /// Sustained bytes of ops per second per client address (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_IP_BYTES_PER_SEC", default_value_t = 32 * 1024)]
    pub ip_bytes_per_sec: u32,
    /// Bytes of ops a client address may send at once (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_IP_BYTES_BURST", default_value_t = 256 * 1024)]
    pub ip_bytes_burst: u32,
    /// Sustained ops per second per tenant, all its connections (and a cluster's nodes)
    /// together (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_TENANT_OPS_PER_SEC", default_value_t = 0.0)]
    pub tenant_ops_per_sec: f64,
    /// Ops a tenant may receive at once (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_TENANT_OPS_BURST", default_value_t = 0)]
    pub tenant_ops_burst: u32,
    /// Invalid frames per second a connection may send in the long run (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_JUNK_PER_SEC", default_value_t = 1.0)]
    pub junk_per_sec: f64,
    /// Invalid frames a connection may send at once before it is closed with 1008 (0:
    /// unlimited).
    #[arg(long, env = "IMAGE_CHAT_JUNK_BURST", default_value_t = 100)]
    pub junk_burst: u32,
    /// Viewers of one image from one client address; more are closed with 4002 (0: unlimited).
    #[arg(
        long,
        env = "IMAGE_CHAT_MAX_VIEWERS_PER_IP_PER_IMAGE",
        default_value_t = 50
    )]
    pub max_viewers_per_ip_per_image: u32,
    /// Anonymous people of one client address counted in an image's live count (0: all).
    #[arg(
        long,
        env = "IMAGE_CHAT_COUNTED_ANONYMOUS_PER_IP",
        default_value_t = 10
    )]
    pub counted_anonymous_per_ip: u32,
    /// Connections viewing one image; more are closed with 4002 (0: unlimited; per tenant too).
    #[arg(
        long,
        env = "IMAGE_CHAT_MAX_CONNECTIONS_PER_IMAGE",
        default_value_t = 10_000
    )]
    pub max_connections_per_image: u32,
    /// Discussions one image may hold (0: unlimited; tenants may override).
    #[arg(long, env = "IMAGE_CHAT_MAX_CHATS_PER_IMAGE", default_value_t = 1_000)]
    pub max_chats_per_image: u32,
    /// Comments one discussion may hold (0: unlimited; tenants may override).
    #[arg(
        long,
        env = "IMAGE_CHAT_MAX_COMMENTS_PER_THREAD",
        default_value_t = 500
    )]
    pub max_comments_per_thread: u32,
    /// Bytes of discussions one image may hold, as their snapshot JSON weighs them: bounds
    /// every snapshot and `welcome` of the image (0: unlimited; tenants may override).
    #[arg(long, env = "IMAGE_CHAT_MAX_BYTES_PER_IMAGE", default_value_t = crate::limits::DEFAULT_MAX_BYTES_PER_IMAGE)]
    pub max_bytes_per_image: u64,
    /// Bytes one tenant may store over all its images (0: unlimited; tenants may override).
    #[arg(long, env = "IMAGE_CHAT_MAX_BYTES_PER_TENANT", default_value_t = crate::limits::DEFAULT_MAX_BYTES_PER_TENANT)]
    pub max_bytes_per_tenant: u64,
    /// Bytes the server may store over every tenant (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_MAX_BYTES_TOTAL", default_value_t = crate::limits::DEFAULT_MAX_BYTES_TOTAL)]
    pub max_bytes_total: u64,
    /// Sustained HTTP API requests (`/api/…`) per second per client address (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_API_REQUESTS_PER_SEC", default_value_t = 5.0)]
    pub api_requests_per_sec: f64,
    /// HTTP API requests a client address may make at once (0: unlimited).
    #[arg(long, env = "IMAGE_CHAT_API_REQUESTS_BURST", default_value_t = 20)]
    pub api_requests_burst: u32,
    /// Take the client address from the last `X-Forwarded-For` entry. Only behind a reverse
    /// proxy that appends it and that every client must go through.
    #[arg(long, env = "IMAGE_CHAT_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Milliseconds a frame may wait for a peer that stopped reading before the connection is
    /// closed as a slow consumer (4000; the client reconnects and resyncs).
    #[arg(long, env = "IMAGE_CHAT_SEND_TIMEOUT_MS", default_value_t = 10_000)]
    pub send_timeout_ms: u64,
    /// Batching window in milliseconds: events of one image arriving within this long after an
    /// event frame went out are held and sent together as one `batch` frame. 0 (the default):
    /// no window; a busy image's pump still sends what queued up while it wrote as one batch.
    #[arg(long, env = "IMAGE_CHAT_BATCH_WINDOW_MS", default_value_t = crate::broker::batch::DEFAULT_WINDOW_MS)]
    pub batch_window_ms: u64,
    /// Largest batch (events); a full batch is sent before its window closes.
    #[arg(long, env = "IMAGE_CHAT_BATCH_MAX_EVENTS", default_value_t = crate::broker::batch::MAX_BATCH_EVENTS)]
    pub batch_max_events: usize,
    /// Presence updates of one image are sent at most once per this many milliseconds (the
    /// latest count). 0 sends every change at once.
    #[arg(long, env = "IMAGE_CHAT_PRESENCE_INTERVAL_MS", default_value_t = 500)]
    pub presence_interval_ms: u64,
    /// Frames a connection may fall behind by before it is disconnected as a slow consumer (its
    /// frames waiting in its socket's backlog).
    #[arg(long, env = "IMAGE_CHAT_SUBSCRIBER_BUFFER", default_value_t = DEFAULT_SUBSCRIBER_BUFFER)]
    pub subscriber_buffer: usize,
    /// Redis shared by the nodes of a cluster (`redis://[user:password@]host:port[/db]`): events
    /// and live counts then reach every node. Unset: this process only (a single server).
    #[arg(long, env = "IMAGE_CHAT_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis channel and key this cluster uses (clusters sharing one Redis need
    /// different prefixes).
    #[arg(long, env = "IMAGE_CHAT_REDIS_PREFIX", default_value = "image-chat:")]
    pub redis_prefix: String,
    /// This node's name in the cluster (in Redis' client list and presence entries; default: a
    /// random one per start).
    #[arg(long, env = "IMAGE_CHAT_NODE_NAME")]
    pub node_name: Option<String>,
    /// Milliseconds a node waits for an event missing from the stream of one image (arriving
    /// out of order from another node) before reading it from the database.
    #[arg(long, env = "IMAGE_CHAT_GAP_WAIT_MS", default_value_t = 200)]
    pub gap_wait_ms: u64,
    /// Seconds a node's viewers stay in the cluster's live counts after the node stops
    /// refreshing them (it died, or lost Redis); it refreshes every third of this.
    #[arg(long, env = "IMAGE_CHAT_PRESENCE_TTL_SECS", default_value_t = 6)]
    pub presence_ttl_secs: u64,
    /// Serve `/metrics` (Prometheus text format) on this address, apart from the public
    /// listener: a loopback or private address the scraper reaches (port 0 picks one). Unset:
    /// no `/metrics`.
    #[arg(long, env = "IMAGE_CHAT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// PEM file of certificate authorities that webhook endpoints may also be signed by
    /// (besides the public ones): a private CA.
    #[arg(long, env = "IMAGE_CHAT_WEBHOOK_CA")]
    pub webhook_ca: Option<PathBuf>,
}

impl ServeArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> Limits {
        Limits {
            tenant: TenantLimits {
                ops: Rate::new(self.ops_per_sec, self.ops_burst),
                max_connections_per_image: self.max_connections_per_image,
                max_chats_per_image: self.max_chats_per_image,
                max_comments_per_thread: self.max_comments_per_thread,
                max_bytes_per_image: self.max_bytes_per_image,
                max_bytes_per_tenant: self.max_bytes_per_tenant,
            },
            ip_ops: Rate::new(self.ip_ops_per_sec, self.ip_ops_burst),
            conn_bytes: Rate::new(f64::from(self.bytes_per_sec), self.bytes_burst),
            ip_bytes: Rate::new(f64::from(self.ip_bytes_per_sec), self.ip_bytes_burst),
            tenant_ops: Rate::new(self.tenant_ops_per_sec, self.tenant_ops_burst),
            junk: Rate::new(self.junk_per_sec, self.junk_burst),
            max_connections_per_ip: self.max_connections_per_ip,
            max_viewers_per_ip_per_image: self.max_viewers_per_ip_per_image,
            counted_anonymous_per_ip: self.counted_anonymous_per_ip,
            http: HttpLimits {
                max_connections: self.max_connections.unwrap_or_else(auto_max_connections),
                header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
                max_header_bytes: self.max_header_bytes,
                ..HttpLimits::default()
            },
            trust_forwarded_for: self.trust_forwarded_for,
            sso: SsoWindow {
                max_age: Duration::from_secs(self.sso_max_age_secs),
                max_skew: Duration::from_secs(self.sso_max_skew_secs),
            },
            sso_audience: self.sso_audience.clone(),
            max_bytes_total: self.max_bytes_total,
            api_requests: Rate::new(self.api_requests_per_sec, self.api_requests_burst),
        }
    }

    /// Whether the built-in `demo` tenant is provided: asked for, or (unless refused) when the
    /// server listens on loopback only.
    pub fn demo_enabled(&self) -> bool {
        !self.no_demo_tenant && (self.demo_tenant || self.listen.ip().is_loopback())
    }

    /// The tenants these flags describe: the demo tenant (see [`ServeArgs::demo_enabled`]) and
    /// the file's.
    pub fn tenants(&self) -> Result<Tenants, StartError> {
        let mut tenants = Tenants::builtin();
        if !self.demo_enabled() {
            if !self.no_demo_tenant {
                tracing::info!(
                    listen = %self.listen,
                    "no demo tenant: the server listens beyond loopback (--demo-tenant provides it)"
                );
            }
            tenants.remove(&TenantId::new("demo"));
        }
        if let Some(path) = &self.tenants {
            tenants.merge_file(path)?;
        }
        if tenants.is_empty() {
            tracing::warn!("no tenants: every connection will be refused");
        }
        Ok(tenants)
    }
}

/// Descriptors kept free for everything that is not a client connection: the database and its
/// WAL, the listener, logs, TLS files, refused connections being closed.
const DESCRIPTOR_RESERVE: u64 = 128;

/// The default server-wide connection limit: the open-files soft limit minus
/// [`DESCRIPTOR_RESERVE`], so a flood meets HTTP 503 rather than "too many open files" (which
/// would fail the database and every accept). 0 (unlimited) when the limit is unlimited.
pub fn auto_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current.map_or(0, |soft| {
        usize::try_from(soft.saturating_sub(DESCRIPTOR_RESERVE).max(16)).unwrap_or(usize::MAX)
    })
}

/// The store `args` name: PostgreSQL with `--database-url`, else the SQLite file.
async fn open_store(args: &ServeArgs) -> Result<Arc<dyn Store>, StoreError> {
    match &args.database_url {
        Some(url) => {
            let config = PostgresConfig {
                retention: args.retention,
                pool_size: args.database_pool_size,
                ..PostgresConfig::default()
            };
            // The URL may hold a password: not logged.
            tracing::info!(pool_size = config.pool_size, "store: PostgreSQL");
            Ok(Arc::new(PostgresStore::connect(url, config).await?))
        }
        None => {
            let config = SqliteConfig {
                retention: args.retention,
                max_group: usize::from(args.sqlite_max_group),
                // Nothing here runs on tokio's paused test clock: skip the blocking pool.
                blocking_wait: false,
                ..SqliteConfig::default()
            };
            Ok(Arc::new(SqliteStore::open(&args.database, config)?))
        }
    }
}

/// Opens the store and starts serving per `args`.
pub async fn start(args: &ServeArgs) -> Result<RunningServer, StartError> {
    Ok(start_reloadable(args).await?.0)
}

/// [`start`], with the handle that reloads the tenants file and the certificate (SIGHUP).
pub async fn start_reloadable(args: &ServeArgs) -> Result<(RunningServer, Reload), StartError> {
    let store = open_store(args).await?;
    for (name, dir) in [("www", &args.www_dir), ("pkg", &args.pkg_dir)] {
        if let Some(dir) = dir.as_ref().filter(|d| !d.is_dir()) {
            tracing::warn!(dir = %dir.display(), "{name} directory does not exist (yet)");
        }
    }
    let tenants = args.tenants()?;
    let (tls, certs) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let (config, certs) = crate::tls::load_config(cert, key)?;
            (Some(config), Some(certs))
        }
        _ => (None, None),
    };
    let fan_out = crate::cluster::fan_out(args, &store).await?;
    let server = RunningServer::start(ServerParts {
        listen: args.listen,
        store,
        broker: fan_out.broker,
        presence: fan_out.presence,
        cluster_rates: fan_out.rates,
        tenants,
        limits: SessionLimits {
            hello_timeout: Duration::from_secs(args.hello_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
            send_timeout: Duration::from_millis(args.send_timeout_ms.max(1)),
            backlog_frames: args.subscriber_buffer.max(1),
        },
        dirs: StaticDirs {
            www: args.www_dir.clone(),
            pkg: args.pkg_dir.clone(),
        },
        security: Security {
            limits: args.limits(),
            tls,
        },
    })
    .await?;
    if let Some(name) = &args.node_name {
        server.app().usage_flusher.lock().await.rename(name.clone());
    }
    let mut webhooks = crate::webhooks::dispatch::WebhookOptions::default();
    if let Some(path) = &args.webhook_ca {
        webhooks.extra_roots = crate::tls::read_certificates(path)?;
    }
    crate::webhooks::dispatch::spawn(Arc::clone(server.app()), webhooks);
    if let Some(addr) = args.metrics_listen {
        let (bound, _task) = crate::metrics::listen(Arc::clone(server.app()), addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        tracing::info!(addr = %bound, "serving /metrics");
    }
    let reload = Reload::new(args.clone(), Arc::clone(server.app()), certs);
    Ok((server, reload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["image-chat-server", "serve"].iter().chain(args))
            .expect("valid flags");
        match cli.command {
            Command::Serve(args) => *args,
            _ => unreachable!("parsed serve"),
        }
    }

    /// Issue 12 item 5: the demo tenant (anonymous writes, no secret) only on loopback unless
    /// asked for.
    #[test]
    fn the_demo_tenant_exists_on_loopback_or_when_asked_for() {
        let demo = TenantId::new("demo");
        let has_demo = |args: &[&str]| serve(args).tenants().expect("tenants").get(&demo).is_some();
        assert!(has_demo(&["--listen", "127.0.0.1:8080"]));
        assert!(has_demo(&["--listen", "[::1]:8080"]));
        assert!(!has_demo(&["--listen", "0.0.0.0:8080"]));
        assert!(!has_demo(&["--listen", "192.0.2.10:8080"]));
        assert!(has_demo(&["--listen", "0.0.0.0:8080", "--demo-tenant"]));
        assert!(!has_demo(&[
            "--listen",
            "127.0.0.1:8080",
            "--no-demo-tenant"
        ]));
        assert!(
            Cli::try_parse_from(["s", "serve", "--demo-tenant", "--no-demo-tenant"]).is_err(),
            "contradictory flags are refused"
        );
    }
}
