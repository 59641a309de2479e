//! Per-node delivery in `seq` order over a shared broker: a [`Broker`] decorator that holds one
//! subscription to the inner (cluster) broker per image with local viewers, puts what arrives
//! back in `seq` order with [`Reorder`], fills gaps from the store's log, and fans the result
//! out to the local viewers. What the viewers of one node receive is gap-free and repeat-free,
//! whichever node committed each event and whatever the shared broker lost.
//!
//! One pump task per image does the I/O: it subscribes to the inner broker, *then* reads where
//! the store's log stands (so nothing committed in between can be missed: it either comes
//! through the subscription or lies at or below that position), and from then on feeds
//! [`Reorder`] with what the inner broker delivers, the clock and the outcome of each fill. A
//! [`subscribe`](Broker::subscribe) returns once its image's pump has its base position, so a
//! session reading its catch-up from the store after subscribing always starts at or after
//! what the pump delivers from.
//!
//! While the shared broker is disconnected the pump reads the store's log every `poll_every`
//! instead, so viewers keep receiving what every node commits (later by at most that much).
//!
//! When the store can list the missing events the viewers never notice a gap. When it cannot
//! (the log was recreated, or the missing events are no longer retained), every local viewer is
//! told [`Feed::Interrupted`] and resyncs (a fresh `welcome`). Publishing passes straight
//! through to the inner broker. The pump ends with the image's last local subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::reorder::{Action, Reorder, ReorderConfig};
use super::{Broker, BrokerError, Feed, Published, Received, Subscription};
use crate::store::{ImageKey, Store};

/// Where an image's pump is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Start {
    /// Subscribing to the inner broker and reading the base position.
    Starting,
    /// Delivering.
    Running,
    /// Could not start (logged); the subscription fails.
    Failed(String),
}

struct Topic {
    sender: broadcast::Sender<Feed>,
    started: watch::Receiver<Start>,
    pump: JoinHandle<()>,
}

type Topics = HashMap<ImageKey, Topic>;

/// A [`Broker`] delivering each image's events to this node's viewers in `seq` order.
#[derive(Clone)]
pub struct Ordered {
    inner: Arc<dyn Broker>,
    store: Arc<dyn Store>,
    config: ReorderConfig,
    /// Per-subscriber queue length of the local fan-out.
    buffer: usize,
    topics: Arc<Mutex<Topics>>,
}

impl Ordered {
    /// Orders what `inner` delivers, filling gaps from `store`; local subscribers may fall
    /// `buffer` messages behind.
    pub fn new(
        inner: Arc<dyn Broker>,
        store: Arc<dyn Store>,
        config: ReorderConfig,
        buffer: usize,
    ) -> Self {
        Self {
            inner,
            store,
            config,
            buffer: buffer.max(1),
            topics: Arc::default(),
        }
    }

    /// Images with a running pump (for tests and metrics).
    pub fn topic_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Stops the image's pump once its last local subscriber is gone.
struct Unsubscribe {
    topics: Arc<Mutex<Topics>>,
    topic: ImageKey,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        // The subscription's receiver is dropped before this guard (field order).
        if topics
            .get(&self.topic)
            .is_some_and(|t| t.sender.receiver_count() == 0)
            && let Some(topic) = topics.remove(&self.topic)
        {
            topic.pump.abort();
        }
    }
}

#[async_trait]
impl Broker for Ordered {
    async fn publish(&self, topic: &ImageKey, message: Published) -> Result<(), BrokerError> {
        self.inner.publish(topic, message).await
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        self.inner.ping().await
    }

    async fn subscribe(&self, topic: &ImageKey) -> Result<Subscription, BrokerError> {
        let (receiver, mut started) = {
            let mut topics = self.lock();
            let entry = topics.entry(topic.clone()).or_insert_with(|| {
                let (sender, _) = broadcast::channel(self.buffer);
                let (start_tx, started) = watch::channel(Start::Starting);
                let pump =
                    tokio::spawn(pump(self.clone(), topic.clone(), sender.clone(), start_tx));
                Topic {
                    sender,
                    started,
                    pump,
                }
            });
            (entry.sender.subscribe(), entry.started.clone())
        };
        let guard = Unsubscribe {
            topics: Arc::clone(&self.topics),
            topic: topic.clone(),
        };
        let subscription = Subscription::new(receiver, Box::new(guard));
        let state = started
            .wait_for(|s| *s != Start::Starting)
            .await
            .map(|s| s.clone())
            .unwrap_or_else(|_| Start::Failed("the image's pump ended".into()));
        match state {
            Start::Failed(reason) => {
                // Forget the failed pump so the next subscriber tries again.
                let mut topics = self.lock();
                if topics
                    .get(topic)
                    .is_some_and(|t| t.pump.is_finished() || t.started.has_changed().is_err())
                {
                    topics.remove(topic);
                }
                Err(BrokerError::Backend(reason))
            }
            _ => Ok(subscription),
        }
    }
}

/// One image's pump: see the module documentation.
async fn pump(
    ordered: Ordered,
    topic: ImageKey,
    local: broadcast::Sender<Feed>,
    started: watch::Sender<Start>,
) {
    let mut inner = match ordered.inner.subscribe(&topic).await {
        Ok(inner) => inner,
        Err(err) => {
            tracing::warn!(%err, "cannot subscribe to the shared broker");
            started.send_replace(Start::Failed(err.to_string()));
            return;
        }
    };
    let base = match ordered.store.position(&topic).await {
        Ok(base) => base,
        Err(err) => {
            tracing::warn!(%err, "cannot read the log position to order delivery from");
            started.send_replace(Start::Failed(err.to_string()));
            return;
        }
    };
    let mut reorder = Reorder::new(base, ordered.config);
    started.send_replace(Start::Running);
    let deliver = |actions: Vec<Action>, pending: &mut Vec<_>| {
        for action in actions {
            match action {
                // No receiver left only means the pump is about to be stopped.
                Action::Deliver(message) => drop(local.send(Feed::Message(message))),
                Action::Fill(after) => pending.push(after),
            }
        }
    };
    loop {
        let mut fills = Vec::new();
        let timeout = reorder.poll_timeout();
        tokio::select! {
            received = inner.recv() => match received {
                Received::Message(message) => {
                    deliver(reorder.receive(Instant::now(), message), &mut fills);
                }
                Received::Lagged(_) | Received::Interrupted => {
                    deliver(reorder.interrupted().into_iter().collect(), &mut fills);
                }
                // Until the broker is back, the database is polled for what others commit.
                Received::Disconnected => {
                    deliver(reorder.disconnected().into_iter().collect(), &mut fills);
                }
                Received::Closed => {
                    drop(local.send(Feed::Interrupted));
                    return;
                }
            },
            () = sleep_until(timeout.unwrap_or_else(Instant::now)), if timeout.is_some() => {
                deliver(reorder.handle_timeout(Instant::now()).into_iter().collect(), &mut fills);
            }
        }
        // At most one fill is outstanding, and each fill's outcome may ask for no other.
        for after in fills {
            let actions = fill(&ordered, &topic, &local, &mut reorder, after).await;
            deliver(actions, &mut Vec::new());
        }
    }
}

/// Reads the store's log after `after` and reports it to `reorder`.
async fn fill(
    ordered: &Ordered,
    topic: &ImageKey,
    local: &broadcast::Sender<Feed>,
    reorder: &mut Reorder,
    mut after: image_chat_protocol::Position,
) -> Vec<Action> {
    if after.epoch == 0 {
        // Delivery started before the image had a log: its events are listed from the start of
        // the log that exists now (a resume from epoch 0 would be answered with a snapshot).
        match ordered.store.position(topic).await {
            Ok(now) => after.epoch = now.epoch,
            Err(err) => {
                tracing::warn!(%err, "cannot fill a gap from the store; retrying");
                reorder.fill_failed(Instant::now());
                return Vec::new();
            }
        }
    }
    match ordered.store.missed_events(topic, Some(after)).await {
        Ok(Some((position, events))) => {
            tracing::debug!(
                from = after.seq,
                to = position.seq,
                "filled a gap from the store"
            );
            let events = events
                .iter()
                .map(|e| Published::event(e.epoch(), e.seq(), e.to_json().into()))
                .collect();
            reorder.filled(Instant::now(), position, events)
        }
        Ok(None) => match ordered.store.position(topic).await {
            Ok(position) => {
                tracing::info!("a gap cannot be filled from the log; viewers resync");
                drop(local.send(Feed::Interrupted));
                reorder.rebase(Instant::now(), position)
            }
            Err(err) => {
                tracing::warn!(%err, "cannot fill a gap from the store; retrying");
                reorder.fill_failed(Instant::now());
                Vec::new()
            }
        },
        Err(err) => {
            tracing::warn!(%err, "cannot fill a gap from the store; retrying");
            reorder.fill_failed(Instant::now());
            Vec::new()
        }
    }
}
