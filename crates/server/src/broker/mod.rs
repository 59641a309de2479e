//! Fan-out of committed events (and presence) to every connection viewing an image, behind the
//! [`Broker`] trait.
//!
//! A topic is one image of one tenant. Every subscriber of a topic receives every message
//! published to it, in publish order — including the publisher's own connection, which
//! recognises its echo by `broadcastId`. A message is serialized once by the publisher and shared
//! by all subscribers.
//!
//! Implementations: [`memory::MemoryBroker`] (in-process, the default) and [`redis::RedisBroker`]
//! (Redis pub/sub, for a cluster). Both pass the conformance suite in
//! `tests/broker_conformance/` (ordering per topic, fan-out across nodes, unsubscribe, what a
//! subscriber sees after a lost connection). Decorators: [`ordered::Ordered`] puts the events a
//! cluster broker delivers back in `seq` order per image on each node and fills gaps from the
//! store (its decisions are the pure [`reorder::Reorder`]); [`batch::Batching`] wraps any broker
//! and, under high activity, coalesces an image's events into `batch` frames and its presence
//! updates into the latest count (see that module for the policy). A cluster runs
//! `Batching(Ordered(RedisBroker))`, a single server `Batching(MemoryBroker)`.

pub mod batch;
pub mod lag;
pub mod memory;
pub mod ordered;
pub mod redis;
pub mod reorder;

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use futures_util::FutureExt;
use thiserror::Error;
use tokio::sync::broadcast;

use crate::pseudonyms;
use crate::store::ImageKey;

/// One published frame: `(epoch, seq, frame)` for committed events, so that a node receiving
/// them from a shared broker can put them back in `seq` order and see gaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The epoch of the image log the events belong to (0 for state frames).
    pub epoch: u32,
    /// The (last) event's `seq`, for frames that carry committed events; `None` for state frames
    /// (presence), where the latest one supersedes the earlier ones. Lets a subscriber that
    /// caught up from the store skip what it already has.
    pub seq: Option<u64>,
    /// The frame exactly as sent to clients. Cloning shares the bytes.
    pub frame: Utf8Bytes,
    /// For a `batch` frame: each event's `seq` and JSON, in order, so that a subscriber whose
    /// catch-up already covered the first few events sends only the rest. `None` otherwise.
    pub parts: Option<Arc<[(u64, Utf8Bytes)]>>,
    /// Whether `frame` may carry a signed user's id ([`pseudonyms::may_name_signed_users`]):
    /// looked for once here, so that anonymous subscribers, who need such ids rewritten, do not
    /// each scan the frame for one.
    pub names_signed_users: bool,
}

impl Published {
    /// A frame holding one committed event (`event` is its JSON) of the log `epoch`.
    pub fn event(epoch: u32, seq: u64, event: Utf8Bytes) -> Self {
        Self {
            epoch,
            seq: Some(seq),
            names_signed_users: pseudonyms::may_name_signed_users(&event),
            frame: event,
            parts: None,
        }
    }

    /// A state frame (presence): not an event, the latest one wins.
    pub fn state(frame: Utf8Bytes) -> Self {
        Self {
            epoch: 0,
            seq: None,
            names_signed_users: pseudonyms::may_name_signed_users(&frame),
            frame,
            parts: None,
        }
    }

    /// Several consecutive events (`(seq, JSON)`, in `seq` order, at least one) of the log
    /// `epoch` as one frame: the event itself when there is one, a `batch` otherwise. The batch
    /// frame is assembled from the already serialized events, once, and shared by every
    /// subscriber.
    pub fn events(epoch: u32, parts: Vec<(u64, Utf8Bytes)>) -> Option<Self> {
        match parts.len() {
            0 => None,
            1 => parts
                .into_iter()
                .next()
                .map(|(seq, event)| Self::event(epoch, seq, event)),
            _ => Some(Self::batch(epoch, parts)),
        }
    }

    /// `parts` as one `batch` frame, however many.
    fn batch(epoch: u32, parts: Vec<(u64, Utf8Bytes)>) -> Self {
        let seq = parts.last().map(|(seq, _)| *seq);
        let frame = batch_frame(&parts);
        Self {
            epoch,
            seq,
            names_signed_users: pseudonyms::may_name_signed_users(&frame),
            frame,
            parts: Some(parts.into()),
        }
    }

    /// This event frame followed by `later` ones of the same log, as one `batch` frame (itself
    /// when `later` is empty). A state frame has no events to join, and is returned as it is.
    pub fn followed_by(self, later: Vec<Published>) -> Self {
        if later.is_empty() || self.seq.is_none() {
            return self;
        }
        let epoch = self.epoch;
        let parts = std::iter::once(self)
            .chain(later)
            .flat_map(Published::into_events)
            .collect();
        Self::batch(epoch, parts)
    }

    /// How many events this frame carries (none for a state frame).
    pub fn event_count(&self) -> usize {
        match (&self.parts, self.seq) {
            (Some(parts), _) => parts.len(),
            (None, seq) => usize::from(seq.is_some()),
        }
    }

    /// The events this frame carries, `(seq, JSON)` in order: a batch's parts, an event itself,
    /// none for a state frame.
    fn into_events(self) -> Vec<(u64, Utf8Bytes)> {
        match (self.parts, self.seq) {
            (Some(parts), _) => parts.to_vec(),
            (None, Some(seq)) => vec![(seq, self.frame)],
            (None, None) => Vec::new(),
        }
    }

    /// The first event's `seq` (`None` for state frames).
    pub fn first_seq(&self) -> Option<u64> {
        match &self.parts {
            Some(parts) => parts.first().map(|(seq, _)| *seq),
            None => self.seq,
        }
    }

    /// This message as a subscriber that has every event up to `delivered` needs it: whole, a
    /// batch trimmed to its new events (re-assembled: rare, only right after a catch-up), or
    /// nothing. State frames are always new. Takes the subscriber's own copy: the usual case
    /// (all of it new) moves it through instead of sharing its bytes once more, a reference
    /// count every subscriber of the image would touch once more per delivery.
    pub fn after(self, delivered: u64) -> Option<Published> {
        let Some(seq) = self.seq else {
            return Some(self);
        };
        if seq <= delivered {
            return None;
        }
        match &self.parts {
            Some(parts) if parts.first().is_some_and(|(first, _)| *first <= delivered) => {
                let rest: Vec<_> = parts
                    .iter()
                    .filter(|(s, _)| *s > delivered)
                    .cloned()
                    .collect();
                Published::events(self.epoch, rest)
            }
            _ => Some(self),
        }
    }
}

/// `{"type":"batch","events":[e1,e2,…]}` from the events' JSON, without re-serializing them.
fn batch_frame(parts: &[(u64, Utf8Bytes)]) -> Utf8Bytes {
    const HEAD: &str = r#"{"type":"batch","events":["#;
    let len = HEAD.len() + parts.iter().map(|(_, e)| e.len() + 1).sum::<usize>() + 1;
    let mut frame = String::with_capacity(len);
    frame.push_str(HEAD);
    for (i, (_, event)) in parts.iter().enumerate() {
        if i > 0 {
            frame.push(',');
        }
        frame.push_str(event.as_str());
    }
    frame.push_str("]}");
    frame.into()
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
    /// The broker lost its connection to a shared backend: nothing more arrives until
    /// [`Received::Interrupted`] says it is back. Only a broker with a backend outside the
    /// process says this.
    Disconnected,
    /// The broker lost its connection to a shared backend and has it again: messages published
    /// meanwhile (an unknown number) were not delivered. What follows is live again. Only a
    /// broker with a backend outside the process says this.
    Interrupted,
    /// The topic is gone (the broker shut down).
    Closed,
}

/// What a topic's local queue carries to each subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    /// A published message.
    Message(Published),
    /// The backend connection is lost ([`Received::Disconnected`]).
    Disconnected,
    /// Messages may have been lost here ([`Received::Interrupted`]).
    Interrupted,
}

/// A live subscription to one topic; dropping it unsubscribes.
pub struct Subscription {
    /// Bounded per-subscriber queue: a subscriber that cannot keep up loses messages and is told
    /// so (`Lagged`) instead of slowing the publisher or growing memory.
    receiver: broadcast::Receiver<Feed>,
    /// Released when the subscription is dropped (lets the broker forget empty topics).
    _guard: Box<dyn Send + Sync>,
}

impl Subscription {
    /// Wraps a receiver and a guard whose drop unsubscribes.
    pub fn new(receiver: broadcast::Receiver<Feed>, guard: Box<dyn Send + Sync>) -> Self {
        Self {
            receiver,
            _guard: guard,
        }
    }

    /// Waits for the next message.
    ///
    /// The queue's own future with its result mapped, not an `async fn` around it: a session
    /// makes one of these per delivered frame, and the extra state machine's moves and drop
    /// glue were measurable there (docs/BENCHMARKS.md, "CPU per delivery").
    pub fn recv(&mut self) -> impl Future<Output = Received> + '_ {
        self.receiver.recv().map(|result| match result {
            Ok(feed) => feed.into(),
            Err(broadcast::error::RecvError::Lagged(n)) => Received::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        })
    }

    /// The next message if one is already queued (`None`: nothing yet). A session that fell
    /// behind takes what is queued with this and sends it all in one write.
    pub fn try_recv(&mut self) -> Option<Received> {
        match self.receiver.try_recv() {
            Ok(feed) => Some(feed.into()),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Received::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Some(Received::Closed),
        }
    }
}

impl From<Feed> for Received {
    fn from(feed: Feed) -> Self {
        match feed {
            Feed::Message(message) => Received::Message(message),
            Feed::Interrupted => Received::Interrupted,
            Feed::Disconnected => Received::Disconnected,
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

    /// Whether the broker can carry messages now (`/readyz`). An in-process broker always can;
    /// one behind a network connection checks that connection.
    async fn ping(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use image_chat_protocol::{Batch, BroadcastId, ChatId, DeletedImageChat, Event, ServerMessage};

    use super::*;

    fn event(seq: u64) -> (u64, Utf8Bytes) {
        let e = Event::DeletedImageChat(DeletedImageChat {
            seq,
            epoch: 7,
            broadcast_id: BroadcastId::new(format!("00000000-0000-4000-8000-{seq:012x}")),
            chat_id: ChatId::new("AAAAAAAAQACAAAAAAAAAAA"),
        });
        (seq, e.to_json().into())
    }

    fn decode(frame: &Utf8Bytes) -> ServerMessage {
        ServerMessage::from_json(frame.as_str()).expect("valid frame")
    }

    fn seqs(frame: &Utf8Bytes) -> Vec<u64> {
        match decode(frame) {
            ServerMessage::Batch(Batch { events }) => events.iter().map(Event::seq).collect(),
            ServerMessage::DeletedImageChat(e) => vec![e.seq],
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_batch_frame_is_the_protocol_batch_of_the_same_events() {
        let parts: Vec<_> = (5..=8).map(event).collect();
        let published = Published::events(7, parts.clone()).expect("non-empty");
        assert_eq!(published.seq, Some(8));
        let events = parts
            .iter()
            .map(|(_, json)| serde_json::from_str::<Event>(json.as_str()).expect("event"))
            .collect();
        assert_eq!(
            published.frame.as_str(),
            ServerMessage::Batch(Batch { events }).to_json()
        );
        // One event alone is sent as itself, not as a batch of one.
        let single = Published::events(7, vec![event(3)]).expect("non-empty");
        assert_eq!(single, Published::event(7, 3, event(3).1));
        assert_eq!(Published::events(7, Vec::new()), None);
    }

    #[test]
    fn frames_followed_by_later_ones_become_one_batch_in_order() {
        let single = Published::event(7, 3, event(3).1);
        let batch = Published::events(7, (4..=5).map(event).collect()).expect("non-empty");
        let later = Published::event(7, 6, event(6).1);
        let joined = single.clone().followed_by(vec![batch, later]);
        assert_eq!(seqs(&joined.frame), vec![3, 4, 5, 6]);
        assert_eq!(
            (joined.epoch, joined.seq, joined.first_seq()),
            (7, Some(6), Some(3))
        );
        assert_eq!(
            joined,
            Published::events(7, (3..=6).map(event).collect()).expect("non-empty"),
            "the same frame as a batch of the four made at once"
        );
        assert_eq!(single.clone().followed_by(Vec::new()), single);
        let presence =
            Published::state(Utf8Bytes::from_static(r#"{"type":"presence","online":2}"#));
        assert_eq!(presence.clone().followed_by(vec![single]), presence);
    }

    #[test]
    fn whether_a_frame_names_signed_users_is_found_once_when_published() {
        let signed = Utf8Bytes::from_static(r#"{"author":{"id":"sso:ada"}}"#);
        assert!(Published::event(7, 1, signed.clone()).names_signed_users);
        assert!(!Published::event(7, 2, event(2).1).names_signed_users);
        let presence = Utf8Bytes::from_static(r#"{"type":"presence","online":2}"#);
        assert!(!Published::state(presence).names_signed_users);
        // A batch names them if any of its events does, and a trimmed batch is looked at anew.
        let batch = Published::events(7, vec![(1, signed), event(2)]).expect("non-empty");
        assert!(batch.names_signed_users);
        let rest = batch.after(1).expect("one new");
        assert_eq!(rest.seq, Some(2));
        assert!(!rest.names_signed_users);
    }

    #[test]
    fn after_skips_what_the_catch_up_delivered() {
        let batch = Published::events(7, (5..=8).map(event).collect()).expect("non-empty");
        let after = |p: &Published, delivered| p.clone().after(delivered).map(|p| p.frame);
        assert_eq!(seqs(&after(&batch, 4).expect("all new")), vec![5, 6, 7, 8]);
        assert_eq!(seqs(&after(&batch, 6).expect("two new")), vec![7, 8]);
        assert_eq!(seqs(&after(&batch, 7).expect("one new")), vec![8]);
        assert_eq!(after(&batch, 8), None);
        let single = Published::event(7, 3, event(3).1);
        assert_eq!(after(&single, 3), None);
        assert!(after(&single, 2).is_some());
        let presence =
            Published::state(Utf8Bytes::from_static(r#"{"type":"presence","online":2}"#));
        assert!(presence.after(u64::MAX).is_some());
    }
}
