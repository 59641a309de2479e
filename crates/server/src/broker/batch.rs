//! Batching in front of the broker: a [`Broker`] decorator that coalesces an image's presence
//! updates into the latest count and, when an operator sets a window, its events into `batch`
//! frames.
//!
//! By default events pass straight through (on a cluster, handed on by the image's flusher task,
//! [`BatchConfig::detached`], so that no session waits for Redis): a busy image's events are
//! batched by its pump instead ([`crate::fanout`]: whatever queued up while it wrote the
//! previous frame goes out as one), which costs nothing when the machine has time to spare. A
//! fixed window
//! (`--batch-window-ms`) trades latency for fewer frames whatever the load, and fewer messages
//! through a cluster's Redis. Its policy, per image (topic):
//! - An event that arrives while the image is quiet (no event frame went out during the last
//!   `window`) is published **at once**, alone, and opens a window. At low rates nothing is ever
//!   delayed and nothing is batched.
//! - Events that arrive while a window is open are held. When the window closes they go out as
//!   **one** frame (a `batch` of them, or the event itself if there is one), which opens the next
//!   window. So an image emits at most one event frame per `window` however busy it is, and an
//!   event waits at most `window` (plus scheduling) before it is published.
//! - A batch is sent early when it reaches `max_events` events or `max_bytes` bytes of JSON.
//! - The batch frame is assembled once per image from the already serialized events (each event
//!   is serialized once, at commit) and the same bytes are shared by every subscriber.
//!
//! Presence follows the same rule with its own `presence_interval`, except that held updates are
//! not batched: only the latest count is sent (the protocol allows coalescing presence). Without
//! this, N viewers joining one image would cost N² presence frames.
//!
//! A `window` of zero (the default) holds no events (every event is published at once); a
//! `presence_interval` of zero turns presence coalescing off.
//!
//! One flusher task runs per image while a window is open; it does every publish of that image
//! that goes through the decorator, so frames keep their order. It ends (and the image's entry
//! is forgotten) once a window closes with nothing held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Broker, BrokerError, Published, Subscription};
use crate::store::ImageKey;

/// Batching policy. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// How long events are held after an event frame went out (zero: none).
    pub window: Duration,
    /// A held batch is sent as soon as it has this many events.
    pub max_events: usize,
    /// A held batch is sent as soon as its events' JSON reaches this many bytes.
    pub max_bytes: usize,
    /// At most one presence frame per image per this interval, the latest count (zero: off).
    pub presence_interval: Duration,
    /// Events are handed to the inner broker by the image's flusher even without a window,
    /// never by the publisher: for an inner broker across a network (a cluster's Redis), so
    /// that a session, which publishes in its image's turn before its ack, never waits for a
    /// round trip (half a second per attempt while Redis is away). Events that arrive while a
    /// publish is in flight then go out together. Off for the in-process broker: handing each
    /// event to a task cost a busy image about 15 % of its deliveries per CPU-second and 3–5 ms
    /// at p99, for a publish that never waits.
    pub detached: bool,
}

/// Default event window: none. A 20 ms window was the default until it was measured on a quiet
/// machine: it held a busy image's events (1,000 viewers, 200 ops/s) for 15 ms at the median
/// and 27 ms at p99, against 2.7 and 7–9 ms with the pump's own batching, which on a loaded
/// core did better too (p99 26–28 against 29–37 ms; docs/BENCHMARKS.md, "A busy image batched
/// by its pump").
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(DEFAULT_WINDOW_MS);
/// [`DEFAULT_WINDOW`] in milliseconds (the command line's default).
pub const DEFAULT_WINDOW_MS: u64 = 0;
/// Default presence interval.
pub const DEFAULT_PRESENCE_INTERVAL: Duration = Duration::from_millis(500);

/// The most events one `batch` frame carries by default (`--batch-max-events`), and the most a
/// pump gathers into one ([`crate::fanout`]).
pub const MAX_BATCH_EVENTS: usize = 64;
/// A batch is closed once its events' JSON reaches this many bytes.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            max_events: MAX_BATCH_EVENTS,
            max_bytes: MAX_BATCH_BYTES,
            detached: false,
            presence_interval: DEFAULT_PRESENCE_INTERVAL,
        }
    }
}

impl BatchConfig {
    /// No batching, no coalescing: every frame is published at once.
    pub fn off() -> Self {
        Self {
            window: Duration::ZERO,
            presence_interval: Duration::ZERO,
            ..Self::default()
        }
    }
}

/// What is held for one image while its flusher task runs.
#[derive(Default)]
struct Held {
    /// Events waiting for the window to close, in `seq` order (publishes of one image are
    /// serialized by its ordering lock).
    events: Vec<(u64, Utf8Bytes)>,
    /// Their JSON size.
    bytes: usize,
    /// Their log's epoch (that of the latest held event: an image's epoch only changes when its
    /// log is recreated, i.e. never while a server runs on the same database).
    epoch: u32,
    /// The latest presence frame waiting for its interval.
    presence: Option<Utf8Bytes>,
    /// Wakes the flusher early: a first event held (its window may be closed) or a full batch.
    wake: Arc<Notify>,
}

type Topics = HashMap<ImageKey, Held>;

/// A [`Broker`] that batches events and coalesces presence before handing them to `inner`.
#[derive(Clone)]
pub struct Batching {
    inner: Arc<dyn Broker>,
    config: BatchConfig,
    /// Images with an open window (and so a running flusher task).
    topics: Arc<Mutex<Topics>>,
}

impl Batching {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Broker>, config: BatchConfig) -> Self {
        Self {
            inner,
            config: BatchConfig {
                max_events: config.max_events.max(1),
                ..config
            },
            topics: Arc::default(),
        }
    }

    /// The policy in force.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// Images with an open window (for tests and metrics).
    pub fn active_topics(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `message` for `topic`, starting the image's flusher if none runs.
    fn hold(&self, topic: &ImageKey, message: Published) {
        let mut topics = self.lock();
        let start = !topics.contains_key(topic);
        let held = topics.entry(topic.clone()).or_default();
        match message.seq {
            Some(seq) => {
                held.bytes += message.frame.len();
                held.epoch = message.epoch;
                held.events.push((seq, message.frame));
                // The flusher may be asleep until the presence interval ends: the first held
                // event wakes it (it sends at once if the event window is closed), and so does
                // a full batch.
                if held.events.len() == 1
                    || held.events.len() >= self.config.max_events
                    || held.bytes >= self.config.max_bytes
                {
                    held.wake.notify_one();
                }
            }
            None => held.presence = Some(message.frame),
        }
        let wake = Arc::clone(&held.wake);
        drop(topics);
        if start {
            tokio::spawn(flush_topic(self.clone(), topic.clone(), wake));
        }
    }
}

/// The flusher of one image: publishes what is held whenever its window (or the presence
/// interval) closes, and ends after a window closes with nothing held.
async fn flush_topic(batching: Batching, topic: ImageKey, wake: Arc<Notify>) {
    let config = &batching.config;
    // Both windows start closed: whatever started the task goes out at once.
    let start = Instant::now();
    let mut events_until = start;
    let mut presence_until = start;
    loop {
        let now = Instant::now();
        let next = [events_until, presence_until]
            .into_iter()
            .filter(|t| *t > now)
            .min();
        if let Some(next) = next {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = wake.notified() => {}
            }
        }
        let now = Instant::now();
        let (epoch, events, presence) = {
            let mut topics = batching.lock();
            let Some(held) = topics.get_mut(&topic) else {
                return;
            };
            let batch_full =
                held.events.len() >= config.max_events || held.bytes >= config.max_bytes;
            let events = if !held.events.is_empty() && (now >= events_until || batch_full) {
                held.bytes = 0;
                std::mem::take(&mut held.events)
            } else {
                Vec::new()
            };
            let presence = if now >= presence_until {
                held.presence.take()
            } else {
                None
            };
            let idle = events.is_empty()
                && presence.is_none()
                && held.events.is_empty()
                && held.presence.is_none()
                && now >= events_until
                && now >= presence_until;
            if idle {
                topics.remove(&topic);
                return;
            }
            (held.epoch, events, presence)
        };
        if let Some(message) = Published::events(epoch, events) {
            events_until = now + config.window;
            if let Err(err) = batching.inner.publish(&topic, message).await {
                // Committed and acked; viewers will see a seq gap at the next event and resync.
                tracing::error!(%err, "publish failed after commit");
            }
        }
        if let Some(frame) = presence {
            presence_until = now + config.presence_interval;
            if let Err(err) = batching
                .inner
                .publish(&topic, Published::state(frame))
                .await
            {
                tracing::warn!(%err, "could not publish presence");
            }
        }
    }
}

#[async_trait]
impl Broker for Batching {
    async fn publish(&self, topic: &ImageKey, message: Published) -> Result<(), BrokerError> {
        let at_once = match message.seq {
            Some(_) => self.config.window.is_zero() && !self.config.detached,
            None => self.config.presence_interval.is_zero(),
        };
        if at_once {
            return self.inner.publish(topic, message).await;
        }
        self.hold(topic, message);
        Ok(())
    }

    async fn subscribe(&self, topic: &ImageKey) -> Result<Subscription, BrokerError> {
        self.inner.subscribe(topic).await
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    //! On tokio's paused clock, so windows are exact and the tests instant.

    #![allow(clippy::unwrap_used)]

    use image_chat_protocol::{ImageId, TenantId};

    use super::*;
    use crate::broker::Received;
    use crate::broker::memory::MemoryBroker;

    fn key() -> ImageKey {
        ImageKey::image(TenantId::new("t"), ImageId::new("img"))
    }

    fn event(seq: u64) -> Published {
        Published::event(1, seq, format!("{{\"seq\":{seq}}}").into())
    }

    fn presence(online: u32) -> Published {
        Published::state(format!("{{\"online\":{online}}}").into())
    }

    /// The window the event tests set (the default is none).
    const WINDOW: Duration = Duration::from_millis(20);

    fn windowed() -> BatchConfig {
        BatchConfig {
            window: WINDOW,
            ..BatchConfig::default()
        }
    }

    fn batching(config: BatchConfig) -> Batching {
        Batching::new(Arc::new(MemoryBroker::default()), config)
    }

    /// Lets spawned tasks run without moving the clock.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    async fn next(sub: &mut Subscription) -> Published {
        match tokio::time::timeout(Duration::from_secs(1), sub.recv()).await {
            Ok(Received::Message(m)) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    async fn nothing_yet(sub: &mut Subscription) {
        settle().await;
        assert!(
            futures_util::FutureExt::now_or_never(sub.recv()).is_none(),
            "nothing should have been published yet"
        );
    }

    fn seqs(message: &Published) -> Vec<u64> {
        match &message.parts {
            Some(parts) => parts.iter().map(|(s, _)| *s).collect(),
            None => message.seq.into_iter().collect(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_events_go_at_once_and_a_burst_goes_as_one_batch() {
        let b = batching(windowed());
        let mut sub = b.subscribe(&key()).await.unwrap();

        let t0 = Instant::now();
        b.publish(&key(), event(1)).await.unwrap();
        let first = next(&mut sub).await;
        assert_eq!(first, event(1));
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "a quiet image's event is not delayed"
        );

        for seq in 2..=4 {
            b.publish(&key(), event(seq)).await.unwrap();
        }
        nothing_yet(&mut sub).await;
        let batch = next(&mut sub).await;
        assert_eq!(t0.elapsed(), WINDOW);
        assert_eq!(seqs(&batch), vec![2, 3, 4]);
        assert!(
            batch
                .frame
                .as_str()
                .starts_with(r#"{"type":"batch","events":[{"seq":2}"#)
        );

        // After a quiet window the flusher ends and the next event goes at once again.
        tokio::time::sleep(WINDOW * 3).await;
        assert_eq!(b.active_topics(), 0);
        let t1 = Instant::now();
        b.publish(&key(), event(5)).await.unwrap();
        assert_eq!(next(&mut sub).await, event(5));
        assert_eq!(t1.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_before_the_window_closes() {
        let b = batching(BatchConfig {
            max_events: 3,
            ..windowed()
        });
        let mut sub = b.subscribe(&key()).await.unwrap();
        let t0 = Instant::now();
        for seq in 1..=5 {
            b.publish(&key(), event(seq)).await.unwrap();
            settle().await;
        }
        // 1 went at once (it opened the window); 2..=4 filled a batch; 5 waits for the window.
        assert_eq!(seqs(&next(&mut sub).await), vec![1]);
        assert_eq!(seqs(&next(&mut sub).await), vec![2, 3, 4]);
        assert_eq!(t0.elapsed(), Duration::ZERO);
        assert_eq!(seqs(&next(&mut sub).await), vec![5]);
        assert_eq!(t0.elapsed(), WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn presence_is_coalesced_to_the_latest_count() {
        let b = batching(BatchConfig::default());
        let mut sub = b.subscribe(&key()).await.unwrap();
        let t0 = Instant::now();
        b.publish(&key(), presence(1)).await.unwrap();
        assert_eq!(next(&mut sub).await, presence(1));
        for online in 2..=9 {
            b.publish(&key(), presence(online)).await.unwrap();
        }
        // An event is not held back by presence.
        b.publish(&key(), event(1)).await.unwrap();
        assert_eq!(next(&mut sub).await, event(1));
        assert_eq!(t0.elapsed(), Duration::ZERO);
        assert_eq!(next(&mut sub).await, presence(9));
        assert_eq!(t0.elapsed(), DEFAULT_PRESENCE_INTERVAL);
        tokio::time::sleep(DEFAULT_PRESENCE_INTERVAL * 2).await;
        assert_eq!(b.active_topics(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn off_publishes_everything_at_once() {
        let b = batching(BatchConfig::off());
        let mut sub = b.subscribe(&key()).await.unwrap();
        let t0 = Instant::now();
        for seq in 1..=3 {
            b.publish(&key(), event(seq)).await.unwrap();
            settle().await;
            b.publish(&key(), presence(1)).await.unwrap();
        }
        for seq in 1..=3 {
            assert_eq!(next(&mut sub).await, event(seq));
            assert_eq!(next(&mut sub).await, presence(1));
        }
        assert_eq!(t0.elapsed(), Duration::ZERO);
        settle().await;
        assert_eq!(b.active_topics(), 0);
    }

    /// An inner broker whose every publish takes `delay` (Redis reconnecting).
    struct Slow {
        inner: MemoryBroker,
        delay: Duration,
    }

    #[async_trait]
    impl Broker for Slow {
        async fn publish(&self, topic: &ImageKey, message: Published) -> Result<(), BrokerError> {
            tokio::time::sleep(self.delay).await;
            self.inner.publish(topic, message).await
        }

        async fn subscribe(&self, topic: &ImageKey) -> Result<Subscription, BrokerError> {
            self.inner.subscribe(topic).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn detached_without_a_window_a_slow_broker_holds_up_no_publisher() {
        let delay = Duration::from_millis(500);
        let b = Batching::new(
            Arc::new(Slow {
                inner: MemoryBroker::default(),
                delay,
            }),
            BatchConfig {
                detached: true,
                ..BatchConfig::default()
            },
        );
        let mut sub = b.subscribe(&key()).await.unwrap();
        let t0 = Instant::now();
        for seq in 1..=4 {
            b.publish(&key(), event(seq)).await.unwrap();
            settle().await;
        }
        assert_eq!(t0.elapsed(), Duration::ZERO, "no publisher waited");
        // The first went out alone; the three that arrived during its publish, together.
        assert_eq!(seqs(&next(&mut sub).await), vec![1]);
        assert_eq!(t0.elapsed(), delay);
        assert_eq!(seqs(&next(&mut sub).await), vec![2, 3, 4]);
        assert_eq!(t0.elapsed(), delay * 2);
    }
}
