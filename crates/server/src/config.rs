//! Configuration from command-line flags and environment variables (every flag has an
//! `IMAGE_CHAT_*` variable), and the `serve` command that wires the default implementations
//! together: SQLite store, in-process broker (behind the batching decorator), built-in tenants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app::SessionLimits;
use crate::broker::batch::{BatchConfig, Batching};
use crate::broker::memory::{DEFAULT_SUBSCRIBER_BUFFER, MemoryBroker};
use crate::http::StaticDirs;
use crate::store::sqlite::{SqliteConfig, SqliteStore};
use crate::tenant::Tenants;
use crate::{RunningServer, ServerParts, StartError};

/// The `image-chat-server` command line.
#[derive(Debug, Parser)]
#[command(
    name = "image-chat-server",
    version,
    about = "Real-time discussions on images."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
}

/// Flags of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the bound address is printed on stdout).
    #[arg(long, env = "IMAGE_CHAT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQLite database file (created if missing).
    #[arg(long, env = "IMAGE_CHAT_DATABASE", default_value = "image-chat.db")]
    pub database: PathBuf,
    /// Events kept per image for resuming clients; older gaps get a full snapshot instead.
    #[arg(long, env = "IMAGE_CHAT_RETENTION", default_value_t = 1000)]
    pub retention: u64,
    /// Directory served at `/` (the demo site).
    #[arg(long, env = "IMAGE_CHAT_WWW_DIR")]
    pub www_dir: Option<PathBuf>,
    /// Directory served at `/pkg/` (the wasm-pack output of the widget).
    #[arg(long, env = "IMAGE_CHAT_PKG_DIR")]
    pub pkg_dir: Option<PathBuf>,
    /// Seconds a new connection has to say `hello`.
    #[arg(long, env = "IMAGE_CHAT_HELLO_TIMEOUT_SECS", default_value_t = 10)]
    pub hello_timeout_secs: u64,
    /// Seconds of silence after which a connection is closed (clients ping every 25 s).
    #[arg(long, env = "IMAGE_CHAT_IDLE_TIMEOUT_SECS", default_value_t = 70)]
    pub idle_timeout_secs: u64,
    /// Milliseconds a frame may wait for a peer that stopped reading before the connection is
    /// closed as a slow consumer (4000; the client reconnects and resyncs).
    #[arg(long, env = "IMAGE_CHAT_SEND_TIMEOUT_MS", default_value_t = 10_000)]
    pub send_timeout_ms: u64,
    /// Batching window in milliseconds: events of one image arriving within this long after an
    /// event frame went out are sent together as one `batch` frame. 0 turns batching off.
    #[arg(long, env = "IMAGE_CHAT_BATCH_WINDOW_MS", default_value_t = 10)]
    pub batch_window_ms: u64,
    /// Largest batch (events); a full batch is sent before its window closes.
    #[arg(long, env = "IMAGE_CHAT_BATCH_MAX_EVENTS", default_value_t = 64)]
    pub batch_max_events: usize,
    /// Presence updates of one image are sent at most once per this many milliseconds (the
    /// latest count). 0 sends every change at once.
    #[arg(long, env = "IMAGE_CHAT_PRESENCE_INTERVAL_MS", default_value_t = 500)]
    pub presence_interval_ms: u64,
    /// Frames a subscriber may fall behind by before it is disconnected as a slow consumer.
    #[arg(long, env = "IMAGE_CHAT_SUBSCRIBER_BUFFER", default_value_t = DEFAULT_SUBSCRIBER_BUFFER)]
    pub subscriber_buffer: usize,
}

/// Opens the default store and starts serving per `args`.
pub async fn start(args: &ServeArgs) -> Result<RunningServer, StartError> {
    let store = SqliteStore::open(
        &args.database,
        SqliteConfig {
            retention: args.retention,
            ..SqliteConfig::default()
        },
    )?;
    for (name, dir) in [("www", &args.www_dir), ("pkg", &args.pkg_dir)] {
        if let Some(dir) = dir.as_ref().filter(|d| !d.is_dir()) {
            tracing::warn!(dir = %dir.display(), "{name} directory does not exist (yet)");
        }
    }
    RunningServer::start(ServerParts {
        listen: args.listen,
        store: Arc::new(store),
        broker: Arc::new(Batching::new(
            Arc::new(MemoryBroker::new(args.subscriber_buffer)),
            BatchConfig {
                window: Duration::from_millis(args.batch_window_ms),
                max_events: args.batch_max_events,
                presence_interval: Duration::from_millis(args.presence_interval_ms),
                ..BatchConfig::default()
            },
        )),
        tenants: Tenants::builtin(),
        limits: SessionLimits {
            hello_timeout: Duration::from_secs(args.hello_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
            send_timeout: Duration::from_millis(args.send_timeout_ms.max(1)),
        },
        dirs: StaticDirs {
            www: args.www_dir.clone(),
            pkg: args.pkg_dir.clone(),
        },
    })
    .await
}
