//! The in-process broker: one bounded broadcast channel per image with at least one subscriber.
//! Right for a single server; a cluster needs a shared broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{Broker, BrokerError, Feed, Published, Subscription};
use crate::store::ImageKey;

/// Messages a subscriber may fall behind by before it is told it lagged (and is disconnected to
/// resync). The image's queue preallocates this many slots (~80 bytes each) as soon as it has
/// a viewer, so it is a per-image cost: 256 slots are ~20 KiB per viewed image (1,024 were
/// ~80 KiB, 80 MiB for 1,000 viewed images). Batching sends at most one event frame per
/// window (20 ms) plus a presence frame per 500 ms, so 256 frames are still over 5 s of the
/// busiest image's stream: a connection that far behind has stalled, and resyncs on reconnect.
pub const DEFAULT_SUBSCRIBER_BUFFER: usize = 256;

type Topics = HashMap<ImageKey, broadcast::Sender<Feed>>;

/// In-process [`Broker`].
#[derive(Clone)]
pub struct MemoryBroker {
    topics: Arc<Mutex<Topics>>,
    buffer: usize,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new(DEFAULT_SUBSCRIBER_BUFFER)
    }
}

impl MemoryBroker {
    /// A broker whose subscribers may fall `buffer` messages behind.
    pub fn new(buffer: usize) -> Self {
        Self {
            topics: Arc::default(),
            buffer: buffer.max(1),
        }
    }

    /// Number of topics with subscribers (for tests and metrics).
    pub fn topic_count(&self) -> usize {
        self.topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Forgets a topic once its last subscriber is gone, so idle images cost nothing.
struct Unsubscribe {
    topics: Arc<Mutex<Topics>>,
    topic: ImageKey,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        // `Subscription` drops its receiver before this guard (field order), so the topic is
        // empty when no receiver is left; a subscriber that joined meanwhile keeps it.
        if topics
            .get(&self.topic)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            topics.remove(&self.topic);
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, topic: &ImageKey, message: Published) -> Result<(), BrokerError> {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = topics.get(topic) {
            // An error only means nobody is subscribed right now, which is fine.
            let _ = sender.send(Feed::Message(message));
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &ImageKey) -> Result<Subscription, BrokerError> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = topics
            .entry(topic.clone())
            .or_insert_with(|| broadcast::channel(self.buffer).0)
            .subscribe();
        let guard = Unsubscribe {
            topics: Arc::clone(&self.topics),
            topic: topic.clone(),
        };
        Ok(Subscription::new(receiver, Box::new(guard)))
    }
}
