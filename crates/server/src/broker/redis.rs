//! The cluster broker: Redis pub/sub, one channel per image.
//!
//! Each node holds **one** Redis subscription per image that has local viewers, shared by all of
//! them through a bounded local queue, and drops it with the last one. A single task per node
//! owns the pub/sub connection: it subscribes and unsubscribes as viewers come and go, pings the
//! connection to notice a silent network failure, and reconnects by itself (with backoff). When
//! the connection is lost every local subscriber is told [`Feed::Disconnected`] (the ordering
//! layer, [`super::ordered`], then reads the store's log instead); Redis drops whatever is
//! published while a subscriber is disconnected, so after each reconnect every local subscriber
//! is told [`Feed::Interrupted`], and the ordering layer refills from the store's log: clients
//! never see the hole. A subscription asked for while Redis is away is granted at once (told
//! `Disconnected` first), so new viewers are served from the database meanwhile.
//!
//! Publishing goes through a [`ConnectionManager`] (reconnects by itself). A publish that fails
//! is retried in the background for a while: the event is committed and acknowledged, and other
//! nodes' viewers are waiting for it (their ordering layer would otherwise only fill it at the
//! next event of that image).
//!
//! Client library: the `redis` crate (tokio, `ConnectionManager` for commands, a split pub/sub
//! connection) rather than `fred`. Delivery correctness here hangs on knowing exactly when the
//! subscribing connection was lost and when it is live again (to report `Disconnected` and
//! `Interrupted` at the right moments); owning that loop is a few dozen lines with `redis`,
//! while `fred`'s automatic resubscription would hide the gap behind callbacks. `redis` is also
//! the smaller dependency, and is what the Lua scripts of presence and rate limits need.
//!
//! Wire format of a message (binary, no re-encoding of the frames): `S` + the state frame, or
//! `E` + epoch (u32 BE) + count (u32 BE) + per event: seq (u64 BE), length (u32 BE), JSON.
//! Channels are `<prefix>ch:<tenant>/<image>` (tenant ids have no `/`), so several clusters or
//! tests can share one Redis under different prefixes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use image_chat_protocol::SubjectKind;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::{AsyncCommands, Client, IntoConnectionInfo};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::memory::DEFAULT_SUBSCRIBER_BUFFER;
use super::{Broker, BrokerError, Feed, Published, Subscription};
use crate::store::ImageKey;

/// How the node reaches Redis.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prepended to every channel and key: separates clusters (and tests) sharing one Redis.
    pub prefix: String,
    /// This node's name, as Redis lists its connections (`CLIENT LIST`, `lib-ver=`).
    pub node: String,
}

impl RedisConfig {
    /// The Redis client for `self`, its connections named after the node.
    pub fn client(&self) -> Result<Client, BrokerError> {
        let info = self.url.as_str().into_connection_info().map_err(backend)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_lib_name("image-chat", &self.node);
        Client::open(info.set_redis_settings(settings)).map_err(backend)
    }

    /// A connection for commands that reconnects by itself.
    pub async fn manager(&self) -> Result<ConnectionManager, BrokerError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2);
        self.client()?
            .get_connection_manager_with_config(config)
            .await
            .map_err(backend)
    }
}

fn backend(err: impl std::fmt::Display) -> BrokerError {
    BrokerError::Backend(err.to_string())
}

/// Longest wait for a connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a reply (a silent connection counts as lost after it).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an idle pub/sub connection is pinged.
const PING_EVERY: Duration = Duration::from_secs(2);
/// Backoff between reconnection attempts: from the first to the cap, doubling.
const RECONNECT_FIRST: Duration = Duration::from_millis(50);
const RECONNECT_CAP: Duration = Duration::from_secs(2);
/// How long a failed publish is retried.
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(30);
/// Longest wait for a subscription to be confirmed (Redis down: the session is refused and its
/// client retries).
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the subscriber task is asked to do.
enum Command {
    /// Subscribe to the channel, then say so.
    Subscribe(String, oneshot::Sender<()>),
    /// The channel's last local subscriber left.
    Unsubscribe(String),
}

type Topics = HashMap<String, broadcast::Sender<Feed>>;

struct Shared {
    config: RedisConfig,
    publisher: ConnectionManager,
    topics: Mutex<Topics>,
    commands: mpsc::UnboundedSender<Command>,
    buffer: usize,
    /// Whether the pub/sub connection is up (subscriptions are then confirmed before they are
    /// granted).
    connected: std::sync::atomic::AtomicBool,
}

/// Redis [`Broker`]. Dropping the last clone stops its subscriber task.
#[derive(Clone)]
pub struct RedisBroker {
    shared: Arc<Shared>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RedisBroker {
    /// Connects (the publishing connection must come up now; the subscribing one comes up and
    /// reconnects by itself).
    pub async fn connect(config: RedisConfig) -> Result<Self, BrokerError> {
        Self::with_buffer(config, DEFAULT_SUBSCRIBER_BUFFER).await
    }

    /// [`RedisBroker::connect`] with local subscribers allowed `buffer` messages behind.
    pub async fn with_buffer(config: RedisConfig, buffer: usize) -> Result<Self, BrokerError> {
        let client = config.client()?;
        let publisher = config.manager().await?;
        let (commands, requests) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            publisher,
            topics: Mutex::default(),
            commands,
            buffer: buffer.max(1),
            connected: std::sync::atomic::AtomicBool::new(false),
        });
        let task = tokio::spawn(subscriber(client, Arc::downgrade(&shared), requests));
        // The first pub/sub connection, briefly awaited: subscriptions are then confirmed from
        // the start (if it takes longer, they are granted as while Redis is away).
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        while !shared.connected.load(std::sync::atomic::Ordering::SeqCst)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Self {
            shared,
            _task: Arc::new(AbortOnDrop(task)),
        })
    }

    /// Channels this node is subscribed to (for tests and metrics).
    pub fn topic_count(&self) -> usize {
        self.shared.lock().len()
    }

    /// The configuration in force.
    pub fn config(&self) -> &RedisConfig {
        &self.shared.config
    }

    fn channel(&self, topic: &ImageKey) -> String {
        channel(&self.shared.config.prefix, topic)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The channel of `topic`.
pub fn channel(prefix: &str, topic: &ImageKey) -> String {
    // Tenant ids have no `:` or `/`, so an image's and a page's channels cannot meet.
    let kind = match topic.kind() {
        SubjectKind::Image => "ch:",
        SubjectKind::Page => "ch-page:",
    };
    [prefix, kind, topic.tenant.as_str(), "/", topic.id()].concat()
}

/// Drops the node's subscription to a channel with its last local subscriber.
struct Unsubscribe {
    shared: Arc<Shared>,
    channel: String,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let mut topics = self.shared.lock();
        if topics
            .get(&self.channel)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            topics.remove(&self.channel);
            // Sent under the lock, so a later subscribe's command follows it.
            let _ = self
                .shared
                .commands
                .send(Command::Unsubscribe(self.channel.clone()));
        }
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish(&self, topic: &ImageKey, message: Published) -> Result<(), BrokerError> {
        let channel = self.channel(topic);
        let payload = encode(&message);
        let mut publisher = self.shared.publisher.clone();
        let result: redis::RedisResult<i64> = publisher.publish(&channel, &payload).await;
        if let Err(err) = result {
            tracing::warn!(%err, "publish to Redis failed; retrying in the background");
            let mut publisher = self.shared.publisher.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + PUBLISH_RETRY_FOR;
                let mut wait = RECONNECT_FIRST;
                while tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RECONNECT_CAP);
                    let retried: redis::RedisResult<i64> =
                        publisher.publish(&channel, &payload).await;
                    if retried.is_ok() {
                        return;
                    }
                }
                tracing::error!("gave up publishing to Redis; other nodes fill from the store");
            });
            return Err(backend(err));
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        let mut publisher = self.shared.publisher.clone();
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut publisher).await;
        pong.map(drop).map_err(backend)
    }

    async fn subscribe(&self, topic: &ImageKey) -> Result<Subscription, BrokerError> {
        let channel = self.channel(topic);
        let (ack, confirmed) = oneshot::channel();
        let receiver = {
            let mut topics = self.shared.lock();
            let receiver = match topics.get(&channel) {
                Some(sender) => sender.subscribe(),
                None => {
                    let (sender, receiver) = broadcast::channel(self.shared.buffer);
                    topics.insert(channel.clone(), sender);
                    receiver
                }
            };
            // Even when another local subscriber asked first, a round trip through the task
            // (queued behind that subscribe) is what makes "subscribe returned" mean "live".
            self.shared
                .commands
                .send(Command::Subscribe(channel.clone(), ack))
                .map_err(|_| backend("the Redis subscriber task ended"))?;
            if !self
                .shared
                .connected
                .load(std::sync::atomic::Ordering::SeqCst)
                && let Some(sender) = topics.get(&channel)
            {
                // Redis is away: granted now, told so first; the reconnection subscribes it and
                // says `Interrupted`.
                let _ = sender.send(Feed::Disconnected);
            }
            receiver
        };
        let connected = self
            .shared
            .connected
            .load(std::sync::atomic::Ordering::SeqCst);
        let guard = Unsubscribe {
            shared: Arc::clone(&self.shared),
            channel,
        };
        let subscription = Subscription::new(receiver, Box::new(guard));
        if connected {
            // Confirmed, or the connection was lost meanwhile: then the subscription has been
            // (or will be) told `Disconnected`, and `Interrupted` once Redis is back.
            let _ = tokio::time::timeout(SUBSCRIBE_TIMEOUT, confirmed).await;
        }
        Ok(subscription)
    }
}

/// The node's pub/sub connection: see the module documentation. Ends when the broker is gone.
async fn subscriber(
    client: Client,
    shared: std::sync::Weak<Shared>,
    mut requests: mpsc::UnboundedReceiver<Command>,
) {
    let mut wait = RECONNECT_FIRST;
    let mut connected_before = false;
    loop {
        let pubsub = match tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(err)) => {
                tracing::warn!(%err, "cannot connect to Redis for pub/sub; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECONNECT_CAP);
                continue;
            }
            Err(_) => {
                tracing::warn!("connecting to Redis for pub/sub timed out; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECONNECT_CAP);
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        // Everything with local subscribers, subscribed again on the new connection before it
        // is reported: what follows the report is live.
        let channels: Vec<String> = match shared.upgrade() {
            Some(shared) => shared.lock().keys().cloned().collect(),
            None => return,
        };
        if !channels.is_empty() && !subscribe_all(&mut sink, &channels).await {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RECONNECT_CAP);
            continue;
        }
        shared_flag(&shared, true);
        if connected_before {
            tracing::info!("reconnected to Redis; local viewers refill from the store");
        }
        // Everything subscribed so far was told `Disconnected` (by the loss, or when it was
        // granted while Redis was away): it is live again.
        let Some(alive) = shared.upgrade() else {
            return;
        };
        for sender in alive.lock().values() {
            let _ = sender.send(Feed::Interrupted);
        }
        drop(alive);
        connected_before = true;
        wait = RECONNECT_FIRST;
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Serve until the connection is lost.
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else {
                        tracing::warn!("Redis pub/sub connection lost; reconnecting");
                        break;
                    };
                    let Some(shared) = shared.upgrade() else { return };
                    let channel = message.get_channel_name();
                    let Some(decoded) = decode(message.get_payload_bytes()) else {
                        tracing::warn!(channel, "undecodable message on a Redis channel");
                        continue;
                    };
                    if let Some(sender) = shared.lock().get(channel) {
                        let _ = sender.send(Feed::Message(decoded));
                    }
                }
                request = requests.recv() => {
                    let Some(request) = request else { return };
                    let ok = match request {
                        Command::Subscribe(channel, ack) => {
                            let ok = command(sink.subscribe(&channel)).await;
                            if ok {
                                let _ = ack.send(());
                            }
                            ok
                        }
                        Command::Unsubscribe(channel) => command(sink.unsubscribe(&channel)).await,
                    };
                    if !ok {
                        break;
                    }
                }
                _ = ping.tick() => {
                    // Any reply will do (in subscribed mode it is an array, not "PONG").
                    let pong: Option<redis::Value> =
                        tokio::time::timeout(RESPONSE_TIMEOUT, sink.ping())
                            .await
                            .ok()
                            .and_then(Result::ok);
                    if pong.is_none() {
                        tracing::warn!("Redis pub/sub connection silent; reconnecting");
                        break;
                    }
                }
            }
        }
        // Lost: every local subscriber reads the store meanwhile (see the module documentation).
        shared_flag(&shared, false);
        let Some(alive) = shared.upgrade() else {
            return;
        };
        for sender in alive.lock().values() {
            let _ = sender.send(Feed::Disconnected);
        }
    }
}

/// Records whether the pub/sub connection is up.
fn shared_flag(shared: &std::sync::Weak<Shared>, up: bool) {
    if let Some(shared) = shared.upgrade() {
        shared
            .connected
            .store(up, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs one pub/sub command, bounded; `false`: the connection is to be considered lost.
async fn command(run: impl std::future::Future<Output = redis::RedisResult<()>>) -> bool {
    match tokio::time::timeout(RESPONSE_TIMEOUT, run).await {
        Ok(Ok(())) => true,
        Ok(Err(err)) => {
            tracing::warn!(%err, "Redis pub/sub command failed; reconnecting");
            false
        }
        Err(_) => {
            tracing::warn!("Redis pub/sub command timed out; reconnecting");
            false
        }
    }
}

async fn subscribe_all(sink: &mut PubSubSink, channels: &[String]) -> bool {
    command(sink.subscribe(channels)).await
}

/// The wire form of a message (see the module documentation).
pub fn encode(message: &Published) -> Vec<u8> {
    let Some(seq) = message.seq else {
        let mut out = Vec::with_capacity(1 + message.frame.len());
        out.push(b'S');
        out.extend_from_slice(message.frame.as_bytes());
        return out;
    };
    let single = [(seq, message.frame.clone())];
    let parts: &[(u64, Utf8Bytes)] = message.parts.as_deref().unwrap_or(&single);
    let size = 9 + parts.iter().map(|(_, e)| 12 + e.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(b'E');
    out.extend_from_slice(&message.epoch.to_be_bytes());
    let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for (seq, event) in parts {
        out.extend_from_slice(&seq.to_be_bytes());
        let len = u32::try_from(event.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(event.as_bytes());
    }
    out
}

/// A message from its wire form; `None` if it is not one.
pub fn decode(bytes: &[u8]) -> Option<Published> {
    let (&kind, rest) = bytes.split_first()?;
    match kind {
        b'S' => {
            let frame = std::str::from_utf8(rest).ok()?;
            Some(Published::state(Utf8Bytes::from(frame)))
        }
        b'E' => {
            let mut reader = Reader(rest);
            let epoch = u32::from_be_bytes(reader.take()?);
            let count = u32::from_be_bytes(reader.take()?);
            let mut parts = Vec::with_capacity(count.min(1024) as usize);
            for _ in 0..count {
                let seq = u64::from_be_bytes(reader.take()?);
                let len = u32::from_be_bytes(reader.take()?) as usize;
                let json = std::str::from_utf8(reader.bytes(len)?).ok()?;
                parts.push((seq, Utf8Bytes::from(json)));
            }
            if !reader.0.is_empty() {
                return None;
            }
            Published::events(epoch, parts)
        }
        _ => None,
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_the_wire_form() {
        let event = |seq: u64| (seq, Utf8Bytes::from(format!(r#"{{"seq":{seq},"t":"é"}}"#)));
        let messages = [
            Published::state(Utf8Bytes::from_static(r#"{"type":"presence","online":3}"#)),
            Published::event(7, 1, event(1).1),
            Published::events(u32::MAX, (5..=9).map(event).collect()).expect("non-empty"),
        ];
        for message in messages {
            assert_eq!(decode(&encode(&message)), Some(message));
        }
        for junk in [&b""[..], b"X", b"E\0\0", b"E\0\0\0\x01\0\0\0\x05\0"] {
            assert_eq!(decode(junk), None);
        }
        let mut trailing = encode(&Published::event(1, 1, event(1).1));
        trailing.push(0);
        assert_eq!(decode(&trailing), None);
    }
}
