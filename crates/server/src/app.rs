//! Shared server state: the store, the broker, tenants, identities, presence, the per-image
//! ordering locks, limits and the shutdown signal. One `Arc<App>` is handed to every connection.

use std::collections::hash_map::DefaultHasher;
use std::future::{Future, poll_fn};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use image_chat_protocol::{Op, ServerMessage, TenantId, User};
use tokio::sync::{Mutex, MutexGuard, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::ConnectionCounts;
use crate::broker::{Broker, Published};
use crate::cluster_rates::ClusterRates;
use crate::identity::Identities;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::pseudonyms::FrameMemo;
use crate::ratelimit::KeyedLimiter;
use crate::snapshots::SnapshotCache;
use crate::store::{Commit, CommitLimits, ImageKey, Store, StoreError};
use crate::tenant::{LiveTenants, Tenants};
use crate::usage::Meters;
use crate::usage::flush::Flusher;

/// Default [`SessionLimits::send_timeout`].
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Timeouts that govern a connection.
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// A connection that has not said `hello` by then is closed.
    pub hello_timeout: Duration,
    /// A connection that sends nothing (not even a ping) for this long is closed.
    pub idle_timeout: Duration,
    /// A frame the peer's socket has not accepted within this long marks a slow consumer: the
    /// connection is closed with 4000 (the client reconnects and resyncs). Bounds how long a
    /// session can be stuck behind a peer that stopped reading.
    pub send_timeout: Duration,
    /// Published frames that may wait for a connection's socket before it is closed as a slow
    /// consumer (`outlet`; the broker's `--subscriber-buffer` bounds the tests' queues).
    pub backlog_frames: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            hello_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(70),
            send_timeout: DEFAULT_SEND_TIMEOUT,
            backlog_frames: crate::broker::memory::DEFAULT_SUBSCRIBER_BUFFER,
        }
    }
}

/// Number of ordering locks. Images hash onto them; two images sharing a lock only serialize
/// their commits, which is harmless, and memory stays fixed however many images exist.
const ORDERING_STRIPES: usize = 256;

/// Everything a connection needs.
pub struct App {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Fan-out.
    pub broker: Arc<dyn Broker>,
    /// Known tenants (reloadable).
    pub tenants: LiveTenants,
    /// Anonymous identity signing.
    pub identities: Identities,
    /// Viewers and live counts per image.
    pub presence: Arc<dyn Presence>,
    /// Connection timeouts.
    pub limits: SessionLimits,
    /// Rate, size and connection limits.
    pub security: Limits,
    /// Ops per client address, shared by all its connections.
    pub ip_ops: KeyedLimiter<IpAddr>,
    /// Bytes of ops per client address, shared by all its connections.
    pub ip_bytes: KeyedLimiter<IpAddr>,
    /// Ops per tenant, shared by all its connections.
    pub tenant_ops: KeyedLimiter<TenantId>,
    /// Open connections per client address.
    pub connections_per_ip: Arc<ConnectionCounts>,
    /// The per-address budgets shared by every node of a cluster (`None`: a single server;
    /// the per-address buckets above are then the whole story).
    pub cluster_rates: Option<Arc<ClusterRates>>,
    /// HTTP API requests per client address.
    pub api_requests: KeyedLimiter<IpAddr>,
    /// Each image's snapshot, encoded once per position and shared by every reader.
    pub snapshots: SnapshotCache,
    /// The same for readers without the tenant's API key: signed users' ids pseudonymised.
    pub public_snapshots: SnapshotCache,
    /// Published frames as anonymous viewers receive them, rewritten once per frame.
    pub pseudonymised_frames: FrameMemo,
    /// The pumps writing published frames straight into viewers' sockets (`fanout`).
    pub fanout: crate::fanout::Fanout,
    /// Cancelled when the server shuts down: connections close with "service restart".
    pub shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for their close frames to go out.
    pub connections: TaskTracker,
    /// Usage per tenant on this node (frames, bytes, ops, connections), counted live.
    pub usage: Arc<Meters>,
    /// Turns [`App::usage`] into rows of the store (every interval, on demand, at shutdown).
    pub usage_flusher: Mutex<Flusher>,
    /// `/metrics`.
    pub metrics: Metrics,
    /// Poked after a commit queued a webhook delivery (`webhooks::dispatch`).
    pub webhook_wake: tokio::sync::Notify,
    /// Per-image ordering of this process's publishes, so this node's subscribers see its
    /// events in `seq` order even when several connections write to one image at once (see
    /// [`Ordering`]). Not what makes `seq` gap-free: the store assigns it inside the commit's
    /// database transaction (`store::rules`), whichever node commits.
    ordering: Vec<Mutex<Turns>>,
}

impl App {
    /// Assembles the state.
    pub fn new(
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        presence: Arc<dyn Presence>,
        tenants: Tenants,
        identities: Identities,
        limits: SessionLimits,
        security: Limits,
    ) -> Self {
        let usage = Arc::new(Meters::default());
        Self {
            metrics: Metrics::new(Arc::clone(&usage)),
            usage_flusher: Mutex::new(Flusher::new(node_name())),
            webhook_wake: tokio::sync::Notify::new(),
            usage,
            store,
            broker,
            tenants: LiveTenants::new(tenants),
            identities,
            presence,
            limits,
            ip_ops: KeyedLimiter::new(security.ip_ops),
            ip_bytes: KeyedLimiter::new(security.ip_bytes),
            tenant_ops: KeyedLimiter::new(security.tenant_ops),
            connections_per_ip: Arc::default(),
            api_requests: KeyedLimiter::new(security.api_requests),
            cluster_rates: None,
            snapshots: SnapshotCache::default(),
            public_snapshots: SnapshotCache::default(),
            pseudonymised_frames: FrameMemo::default(),
            fanout: crate::fanout::Fanout::default(),
            security,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            ordering: (0..ORDERING_STRIPES)
                .map(|_| Mutex::new(Turns::default()))
                .collect(),
        }
    }

    /// Commits `op` by `author` and publishes its event, in the image's order so this node's
    /// subscribers see events in `seq` order (see [`Ordering`]): the one path of every change,
    /// whether a widget's op or the admin API's. Returns the `seq` to acknowledge (a retry of
    /// an op already committed gets its original `seq` and publishes nothing).
    pub async fn commit(
        &self,
        image: &ImageKey,
        author: &User,
        op: &Op,
        now_ms: u64,
        limits: CommitLimits,
    ) -> Result<u64, StoreError> {
        let unordered = Turns::default().next_turn();
        self.commit_after(unordered, image, author, op, now_ms, limits)
            .await
    }

    /// [`App::commit`], for one of several ops a connection has in flight at once: `sent` is
    /// the op's turn among its connection's ops, and the op takes its image's lock only after
    /// the op sent before it took it. The lock is granted first come, first served, so the
    /// connection's ops are committed, numbered and published in the order they were sent
    /// (a reply may name the discussion its connection created one op earlier), while every
    /// other step (reading, the cluster's budgets, the commit itself) overlaps.
    pub async fn commit_after(
        &self,
        mut sent: Turn,
        image: &ImageKey,
        author: &User,
        op: &Op,
        now_ms: u64,
        limits: CommitLimits,
    ) -> Result<u64, StoreError> {
        sent.wait().await;
        let mut ordering = self.lock_image(image).await;
        // Holding the lock: the connection's next op may ask for it now, and queues behind.
        drop(sent);
        // The tenants file may gain or lose a webhook on reload: decided per commit.
        let mut limits = limits;
        limits.webhook = self
            .tenants
            .get(&image.tenant)
            .is_some_and(|tenant| tenant.webhook.is_some());
        let started = tokio::time::Instant::now();
        let mut committing = pin!(self.store.commit_limited(image, author, op, now_ms, limits));
        if !self.store.commits_in_poll_order() {
            // The store orders concurrent commits itself (PostgreSQL's row lock): one at a time.
            let committed = committing.await;
            self.metrics
                .commit_latency
                .observe(started.elapsed().as_secs_f64());
            let seq = self.publish(image, committed, limits.webhook).await;
            drop(ordering);
            return seq;
        }
        // Queued by its first poll, the write's place (so its seq) is fixed: the image's next
        // op may queue behind it now instead of after this commit's fsync, and the writer
        // commits both in one group. Publishing still goes in queue order (the turn).
        let polled = poll_fn(|cx| Poll::Ready(committing.as_mut().poll(cx))).await;
        let mut turn = ordering.next_turn();
        drop(ordering);
        let committed = match polled {
            Poll::Ready(committed) => committed,
            Poll::Pending => committing.await,
        };
        self.metrics
            .commit_latency
            .observe(started.elapsed().as_secs_f64());
        turn.wait().await;
        self.publish(image, committed, limits.webhook).await
    }

    /// Publishes a committed op's event (and pokes the webhook dispatcher when the commit
    /// queued a delivery); the `seq` to acknowledge.
    async fn publish(
        &self,
        image: &ImageKey,
        committed: Result<Commit, StoreError>,
        webhook: bool,
    ) -> Result<u64, StoreError> {
        match committed? {
            Commit::Applied(event) => {
                self.usage.tenant(&image.tenant).committed(&event);
                if webhook {
                    self.webhook_wake.notify_one();
                }
                let seq = event.seq();
                // Serialized once here; every subscriber shares these bytes.
                let message = Published::event(event.epoch(), seq, event.to_json().into());
                if let Err(err) = self.broker.publish(image, message).await {
                    // Committed and acked; viewers will see a seq gap at the next event and
                    // resync.
                    tracing::error!(%err, "publish failed after commit");
                }
                Ok(seq)
            }
            Commit::Duplicate { seq } => Ok(seq),
        }
    }

    /// Takes the ordering lock for `image`.
    pub async fn lock_image(&self, image: &ImageKey) -> Ordering<'_> {
        let mut hasher = DefaultHasher::new();
        image.hash(&mut hasher);
        // Truncation is fine: only the remainder matters.
        let stripe = (hasher.finish() % ORDERING_STRIPES as u64) as usize;
        Ordering(self.ordering[stripe].lock().await)
    }
}

/// An image's ordering lock, held. Two ways to use it:
/// - hold it across commit and publish (any store): commits of the image run one at a time;
/// - with a store whose commits take effect in the order they were first polled
///   ([`Store::commits_in_poll_order`]), hold it only while the commit is queued and take a
///   [`Turn`]: later ops of the image queue behind it at once (the SQLite writer commits them
///   together, in one group), and each publishes only after the op queued before it did.
pub struct Ordering<'a>(MutexGuard<'a, Turns>);

impl Ordering<'_> {
    /// This op's place in the image's publishes: after every op that took a turn before it.
    pub fn next_turn(&mut self) -> Turn {
        self.0.next_turn()
    }
}

/// A queue of [`Turn`]s: each one handed out waits for the one handed out before it. An
/// image's publishes take turns ([`Ordering`]), and so do a connection's ops on their way to
/// the image's lock ([`App::commit_after`]).
#[derive(Debug, Default)]
pub struct Turns(Option<oneshot::Receiver<()>>);

impl Turns {
    /// The next place in the queue: after every turn handed out before it.
    pub fn next_turn(&mut self) -> Turn {
        let (done, next) = oneshot::channel();
        Turn {
            previous: self.0.replace(next),
            _done: done,
        }
    }
}

/// One place in a queue of [`Turns`] (an op's place in its image's publishes, or among its
/// connection's ops). Dropping it, once done or on any failure, lets the next one go.
pub struct Turn {
    previous: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Turn {
    /// Waits until the turn handed out before this one is over (done or given up).
    pub async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            // An error only means that turn was dropped: it is over either way.
            let _ = previous.await;
        }
    }
}

/// Publishes a viewer count; a failure only delays the count until the next change.
pub async fn publish_presence(broker: &dyn Broker, image: &ImageKey, online: u32) {
    let frame = ServerMessage::Presence(image_chat_protocol::Presence { online }).to_json();
    let message = Published::state(frame.into());
    if let Err(err) = broker.publish(image, message).await {
        tracing::warn!(%err, "could not publish presence");
    }
}

/// This process's name among the nodes writing usage rows: random per start, so two processes
/// never mix their per-minute peaks (`usage::flush`).
fn node_name() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Milliseconds since the Unix epoch (the server's clock: stamps comments, usage days).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl App {
    /// `message` as a viewer of `tenant` receives it: anonymous viewers see signed users' ids
    /// as pseudonyms (`pseudonyms`). Takes the message by value: a session's own copy moves
    /// through without touching the shared frame's reference count once more.
    pub fn viewer_frame(&self, tenant: &str, anonymous: bool, message: Published) -> Utf8Bytes {
        if anonymous && message.names_signed_users {
            self.pseudonymised_frames
                .view(&self.identities, tenant, message.frame)
        } else {
            message.frame
        }
    }

    /// Writes this node's usage counted since the last flush to the store now.
    pub async fn flush_usage(&self) -> Result<(), crate::store::StoreError> {
        let now = now_ms();
        let mut flusher = self.usage_flusher.lock().await;
        flusher.flush(&self.usage, self.store.as_ref(), now).await
    }
}
