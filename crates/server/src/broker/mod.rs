//! Fan-out of committed events (and presence) to every connection viewing an image, behind the
//! [`Broker`] trait.
//!
//! A topic is one image of one tenant. Every subscriber of a topic receives every message
//! published to it, in publish order — including the publisher's own connection, which
//! recognises its echo by `broadcastId`. A message is serialized once by the publisher and shared
//! by all subscribers.
//!
//! Implementations: [`memory::MemoryBroker`] (in-process, the default). A clustered broker keeps
//! the same contract and runs the same tests.

pub mod memory;

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use thiserror::Error;
use tokio::sync::broadcast;

use crate::store::ImageKey;

/// One published frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The event's `seq`, for frames that carry committed events (`None` for presence). Lets a
    /// subscriber that caught up from the store skip what it already has.
    pub seq: Option<u64>,
    /// The frame exactly as sent to clients. Cloning shares the bytes.
    pub frame: Utf8Bytes,
}

/// Broker failure.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// The backend could not publish or subscribe.
    #[error("broker backend failed: {0}")]
    Backend(String),
}

/// What a subscriber gets from [`Subscription::recv`].
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// The next message.
    Message(Published),
    /// The subscriber fell behind and `n` messages were dropped for it: it must resync.
    Lagged(u64),
    /// The topic is gone (the broker shut down).
    Closed,
}

/// A live subscription to one topic; dropping it unsubscribes.
pub struct Subscription {
    /// Bounded per-subscriber queue: a subscriber that cannot keep up loses messages and is told
    /// so (`Lagged`) instead of slowing the publisher or growing memory.
    receiver: broadcast::Receiver<Published>,
    /// Released when the subscription is dropped (lets the broker forget empty topics).
    _guard: Box<dyn Send + Sync>,
}

impl Subscription {
    /// Wraps a receiver and a guard whose drop unsubscribes.
    pub fn new(receiver: broadcast::Receiver<Published>, guard: Box<dyn Send + Sync>) -> Self {
        Self {
            receiver,
            _guard: guard,
        }
    }

    /// Waits for the next message.
    pub async fn recv(&mut self) -> Received {
        match self.receiver.recv().await {
            Ok(message) => Received::Message(message),
            Err(broadcast::error::RecvError::Lagged(n)) => Received::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }
}

/// Per-image publish/subscribe.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Sends `message` to every current subscriber of `topic`.
    async fn publish(&self, topic: &ImageKey, message: Published) -> Result<(), BrokerError>;

    /// Starts receiving what is published to `topic` from now on.
    async fn subscribe(&self, topic: &ImageKey) -> Result<Subscription, BrokerError>;
}
