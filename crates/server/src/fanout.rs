//! Direct-write fan-out: one pump per image writes every published frame straight into the
//! sockets of the image's viewers (plain TCP or TLS), instead of waking one task per viewer.
//!
//! A pump is a task holding one subscription to the broker (any broker: in-process, Redis,
//! the cluster's ordering layer) for its image (a big image has several, see [`Fanout`]). For every message it frames the bytes once
//! ([`ws_frame`](crate::ws_frame)), rewrites them once for anonymous viewers when they name
//! signed users ([`pseudonyms`](crate::pseudonyms)), and hands them to each viewer's
//! [`Outlet`], which writes them at once or queues them. It lives while its image has viewers
//! here.
//!
//! **Joining without a gap or a repeat.** A session subscribes on its own first, reads its
//! catch-up, sends `welcome`, and then [`Fanout::join`]s. Under the pump's lock it takes what
//! its own subscription queued meanwhile (`catch_up`) and registers with the last `seq` it
//! sent. The pump writes to viewers under the same lock, so every message is either in the
//! session's queue when it drains it, or reaches the pump after the viewer is registered;
//! the pump subscribed before the session joined, and skips what a viewer already has by
//! `seq` (a repeated presence frame is harmless: the latest wins).
//!
//! **Batching a busy image.** The events that queued up in a pump's feed while it wrote the
//! previous frame go out together, as one `batch` ([`gather`]), and after a pass over its
//! viewers that took over a millisecond the pump waits as long again before it reads on: the
//! batches are as large as the load makes them, and an image whose pump keeps up sends every
//! event at once and alone.
//!
//! **Ending.** A pump whose subscription lagged or was interrupted ends its viewers as slow
//! consumers (they reconnect and resync, as a lagging session of their own would), and as a
//! service restart when the broker closed. A viewer that leaves drops its [`Joined`]; a pump
//! without viewers unsubscribes and ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use image_chat_protocol::CloseCode;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::app::App;
use crate::broker::batch::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
use crate::broker::{BrokerError, Published, Received, Subscription};
use crate::outlet::Outlet;
use crate::store::ImageKey;
use crate::usage::TenantMeter;
use crate::ws_frame;

/// One viewer of a pump.
struct Viewer {
    outlet: Arc<Outlet>,
    /// The last event `seq` this viewer has.
    delivered_seq: u64,
    /// Signed users' ids are shown to it as pseudonyms.
    anonymous: bool,
}

/// One image's pump, shared by its task and its viewers' [`Joined`].
#[derive(Default)]
struct Pump {
    viewers: Mutex<Vec<Viewer>>,
    /// Told when the last viewer left, so that the pump ends without waiting for a message.
    emptied: Notify,
}

impl Pump {
    fn viewers(&self) -> MutexGuard<'_, Vec<Viewer>> {
        self.viewers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A pass over the viewers shorter than this is not followed by a pause (the timer's
/// granularity: a shorter sleep would last a millisecond anyway).
const MIN_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause after a pass: the most a busy image's event waits to be gathered.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Viewers a pump takes before the image gets another (see [`Fanout`]).
const VIEWERS_PER_PUMP: usize = 512;

/// Every image's pumps on this node.
///
/// An image with many viewers gets several pumps (one per [`VIEWERS_PER_PUMP`] viewers, at
/// most one per CPU), each with its own subscription and its share of the viewers: they write
/// one message to their shares in parallel, which halves the time until the last viewer of a
/// big image has it on two cores (docs/BENCHMARKS.md, "Direct-write fan-out").
pub struct Fanout {
    /// Never held across an await: each image has its own lock for that ([`ImagePumps`]).
    images: Mutex<HashMap<ImageKey, Arc<ImagePumps>>>,
    /// The most pumps one image gets.
    max_pumps: usize,
}

/// One image's pumps. Its lock is held while a session joins (creating a pump subscribes to
/// the broker, which may take a network round trip, and two sessions must not both create
/// one) and while a pump leaves, so that no session joins a pump that is ending. A session
/// that joins an image's pumps just as the last one left and forgot them starts a new pump
/// there, with a subscription of its own: it misses nothing.
#[derive(Default)]
struct ImagePumps {
    pumps: tokio::sync::Mutex<Vec<Arc<Pump>>>,
}

impl Default for Fanout {
    fn default() -> Self {
        Self {
            images: Mutex::default(),
            max_pumps: std::thread::available_parallelism().map_or(1, |cpus| cpus.get()),
        }
    }
}

impl Fanout {
    fn images(&self) -> MutexGuard<'_, HashMap<ImageKey, Arc<ImagePumps>>> {
        self.images.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `image`'s pumps, made if it has none.
    fn image(&self, image: &ImageKey) -> Arc<ImagePumps> {
        Arc::clone(self.images().entry(image.clone()).or_default())
    }

    /// Forgets `image`'s pumps `slot` (unless the image has another by now).
    fn forget(&self, image: &ImageKey, slot: &Arc<ImagePumps>) {
        let mut images = self.images();
        if images
            .get(image)
            .is_some_and(|known| Arc::ptr_eq(known, slot))
        {
            images.remove(image);
        }
    }
}

/// A viewer's place in its image's pump; dropping it leaves.
pub struct Joined {
    pump: Arc<Pump>,
    outlet: Arc<Outlet>,
}

impl Drop for Joined {
    fn drop(&mut self) {
        let mut viewers = self.pump.viewers();
        viewers.retain(|viewer| !Arc::ptr_eq(&viewer.outlet, &self.outlet));
        if viewers.is_empty() {
            self.pump.emptied.notify_one();
        }
    }
}

/// What a session's own subscription still held when it joined: the last `seq` it has sent,
/// or `None` when the session must end (its subscription lagged or closed).
pub type CatchUp = Option<u64>;

impl Fanout {
    /// Registers `outlet` as a viewer of `image` (creating the image's pump if needed), after
    /// `catch_up` has sent what the session's own subscription queued (see the module doc).
    /// `Ok(None)`: `catch_up` said the session ends.
    pub async fn join(
        app: &Arc<App>,
        image: &ImageKey,
        outlet: &Arc<Outlet>,
        anonymous: bool,
        catch_up: impl FnOnce() -> CatchUp,
    ) -> Result<Option<Joined>, BrokerError> {
        let slot = app.fanout.image(image);
        let mut pumps = slot.pumps.lock().await;
        let least_busy = pumps
            .iter()
            .min_by_key(|pump| pump.viewers().len())
            .filter(|pump| {
                pump.viewers().len() < VIEWERS_PER_PUMP || pumps.len() >= app.fanout.max_pumps
            })
            .map(Arc::clone);
        let pump = match least_busy {
            Some(pump) => pump,
            None => {
                let feed = match app.broker.subscribe(image).await {
                    Ok(feed) => feed,
                    Err(err) => {
                        if pumps.is_empty() {
                            app.fanout.forget(image, &slot);
                        }
                        return Err(err);
                    }
                };
                let pump = Arc::new(Pump::default());
                pumps.push(Arc::clone(&pump));
                tokio::spawn(run(
                    Arc::clone(app),
                    image.clone(),
                    Arc::clone(&slot),
                    Arc::clone(&pump),
                    feed,
                ));
                pump
            }
        };
        let mut viewers = pump.viewers();
        let Some(delivered_seq) = catch_up() else {
            // A pump made for this session alone ends at once instead of holding its
            // subscription until the next message.
            if viewers.is_empty() {
                pump.emptied.notify_one();
            }
            return Ok(None);
        };
        viewers.push(Viewer {
            outlet: Arc::clone(outlet),
            delivered_seq,
            anonymous,
        });
        drop(viewers);
        Ok(Some(Joined {
            pump,
            outlet: Arc::clone(outlet),
        }))
    }
}

/// The bytes one message is written as, made at most once per message for each kind of viewer.
struct Framed<'a> {
    app: &'a App,
    tenant: &'a str,
    message: &'a Published,
    plain: Option<Bytes>,
    pseudonymised: Option<Bytes>,
}

impl Framed<'_> {
    fn for_viewer(&mut self, anonymous: bool) -> Bytes {
        let app = self.app;
        let (tenant, message) = (self.tenant, self.message);
        let slot = if anonymous && message.names_signed_users {
            &mut self.pseudonymised
        } else {
            &mut self.plain
        };
        slot.get_or_insert_with(|| {
            let text = app.viewer_frame(tenant, anonymous, message.clone());
            ws_frame::text(text.as_str())
        })
        .clone()
    }
}

async fn run(
    app: Arc<App>,
    image: ImageKey,
    slot: Arc<ImagePumps>,
    pump: Arc<Pump>,
    mut feed: Subscription,
) {
    let meter = app.usage.tenant(&image.tenant);
    // What gathering took from the feed and could not join to its frame: handled next.
    let mut next = None;
    loop {
        let received = match next.take() {
            Some(received) => received,
            None => tokio::select! {
                received = feed.recv() => received,
                () = pump.emptied.notified() => {
                    if leave_if_empty(&app, &image, &slot, &pump).await {
                        return;
                    }
                    continue;
                }
            },
        };
        match received {
            Received::Message(message) => {
                let (message, rest) = gather(message, &mut feed);
                next = rest;
                let started = Instant::now();
                deliver(&app, &image, &pump, &meter, &message);
                if let Some(pause) = pause_after(started.elapsed())
                    && next.is_none()
                {
                    tokio::time::sleep(pause).await;
                }
            }
            // Nothing arrives until the broker is back (the cluster's ordering layer never
            // says this: it reads the database meanwhile).
            Received::Disconnected => {}
            Received::Lagged(missed) => {
                tracing::info!(missed, "image pump fell behind; its viewers resync");
                end_all(&pump, CloseCode::SlowConsumer);
            }
            Received::Interrupted => {
                tracing::info!("broker connection interrupted; clients resync");
                end_all(&pump, CloseCode::SlowConsumer);
            }
            Received::Closed => {
                end_all(&pump, CloseCode::ServiceRestart);
                leave(&app, &image, &slot, &mut *slot.pumps.lock().await, &pump);
                return;
            }
        }
    }
}

/// How long a pump waits before it reads its feed again after a pass over its viewers that took
/// `pass`: as long again, up to [`MAX_PAUSE`], so that one image's frames take about half of
/// its core's time at most (more only when passes take over 20 ms) and the next batch gathers
/// meanwhile; nothing after a short pass.
fn pause_after(pass: Duration) -> Option<Duration> {
    (pass >= MIN_PAUSE).then(|| pass.min(MAX_PAUSE))
}

/// `first` and the events that queued up behind it in the pump's feed while the pump was
/// writing the previous frame, as one frame (a `batch`, at most [`MAX_BATCH_EVENTS`] events or
/// [`MAX_BATCH_BYTES`] of JSON), and what ended the run (a state frame, another log's event, a
/// lag: to be handled next).
///
/// This is what batches a busy image: the batch is whatever arrived during one pass over the
/// viewers, so an image whose pump keeps up sends every event at once and alone, and one whose
/// pump falls behind (a slow or loaded machine, a big image) writes each viewer once per pass
/// instead of once per event, and catches up instead of lagging its viewers out. A fixed window
/// in front of the broker delayed every event of a busy image by up to its length even when
/// the machine had time to spare (docs/BENCHMARKS.md, "A busy image batched by its pump").
fn gather(first: Published, feed: &mut Subscription) -> (Published, Option<Received>) {
    if first.seq.is_none() {
        return (first, None);
    }
    let mut later = Vec::new();
    let mut events = first.event_count();
    let mut bytes = first.frame.len();
    let rest = loop {
        if events >= MAX_BATCH_EVENTS || bytes >= MAX_BATCH_BYTES {
            break None;
        }
        match feed.try_recv() {
            Some(Received::Message(event)) if event.seq.is_some() && event.epoch == first.epoch => {
                events += event.event_count();
                bytes += event.frame.len();
                later.push(event);
            }
            other => break other,
        }
    };
    (first.followed_by(later), rest)
}

fn deliver(app: &App, image: &ImageKey, pump: &Pump, meter: &TenantMeter, message: &Published) {
    let mut framed = Framed {
        app,
        tenant: image.tenant.as_str(),
        message,
        plain: None,
        pseudonymised: None,
    };
    let first_seq = message.first_seq();
    let mut viewers = pump.viewers();
    let mut sent = 0;
    let mut bytes = 0;
    viewers.retain_mut(|viewer| {
        let frame = match message.seq {
            // A viewer that joined with some of these events already sent (rare: only
            // right after joining) gets the rest, or nothing.
            Some(seq) if first_seq.is_some_and(|first| first <= viewer.delivered_seq) => {
                let Some(rest) = message.clone().after(viewer.delivered_seq) else {
                    return true;
                };
                viewer.delivered_seq = viewer.delivered_seq.max(seq);
                let text = app.viewer_frame(image.tenant.as_str(), viewer.anonymous, rest);
                ws_frame::text(text.as_str())
            }
            Some(seq) => {
                viewer.delivered_seq = seq;
                framed.for_viewer(viewer.anonymous)
            }
            None => framed.for_viewer(viewer.anonymous),
        };
        let len = frame.len();
        // An outlet that cannot take more has ended (its session closes): it leaves.
        let kept = viewer.outlet.publish(message.seq, frame);
        if kept {
            sent += 1;
            bytes += len;
        }
        kept
    });
    meter.sent_many(sent, bytes);
}

fn end_all(pump: &Pump, code: CloseCode) {
    for viewer in pump.viewers().drain(..) {
        viewer.outlet.end(code);
    }
}

/// Ends the pump if it has no viewers left (under its image's lock, so that no session joins a
/// pump that is ending). `true`: it ended.
async fn leave_if_empty(
    app: &App,
    image: &ImageKey,
    slot: &Arc<ImagePumps>,
    pump: &Arc<Pump>,
) -> bool {
    let mut pumps = slot.pumps.lock().await;
    if !pump.viewers().is_empty() {
        return false;
    }
    leave(app, image, slot, &mut pumps, pump);
    true
}

/// Removes `pump` from its image's `pumps`, and forgets the image once it has none.
fn leave(
    app: &App,
    image: &ImageKey,
    slot: &Arc<ImagePumps>,
    pumps: &mut Vec<Arc<Pump>>,
    pump: &Arc<Pump>,
) {
    pumps.retain(|known| !Arc::ptr_eq(known, pump));
    if pumps.is_empty() {
        app.fanout.forget(image, slot);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use image_chat_protocol::{ImageId, TenantId};

    use super::*;
    use crate::broker::Broker;
    use crate::broker::memory::MemoryBroker;

    fn event(epoch: u32, seq: u64) -> Published {
        Published::event(epoch, seq, format!("{{\"seq\":{seq}}}").into())
    }

    fn seqs(message: &Published) -> Vec<u64> {
        match &message.parts {
            Some(parts) => parts.iter().map(|(seq, _)| *seq).collect(),
            None => message.seq.into_iter().collect(),
        }
    }

    /// A feed holding `messages`, and the first of them taken as the pump would.
    async fn feed_of(messages: Vec<Published>) -> (Published, Subscription) {
        let broker = MemoryBroker::default();
        let key = ImageKey::image(TenantId::new("t"), ImageId::new("img"));
        let mut feed = broker.subscribe(&key).await.unwrap();
        for message in messages {
            broker.publish(&key, message).await.unwrap();
        }
        match feed.try_recv() {
            Some(Received::Message(first)) => (first, feed),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn events_queued_behind_a_frame_go_with_it_until_something_else() {
        let presence = Published::state(r#"{"type":"presence","online":2}"#.into());
        let batch = Published::events(1, vec![(3, "{}".into()), (4, "{}".into())]).unwrap();
        let (first, mut feed) = feed_of(vec![
            event(1, 1),
            event(1, 2),
            batch,
            presence.clone(),
            event(1, 5),
            event(2, 1),
        ])
        .await;
        let (gathered, rest) = gather(first, &mut feed);
        assert_eq!(seqs(&gathered), vec![1, 2, 3, 4]);
        assert!(
            gathered
                .frame
                .as_str()
                .starts_with(r#"{"type":"batch","events":[{"seq":1},"#)
        );
        assert_eq!(
            rest,
            Some(Received::Message(presence)),
            "presence is not an event"
        );
        // A presence frame is delivered alone; the next event then goes alone: the one after it
        // belongs to another log (a recreated one), which a batch never mixes.
        let Some(Received::Message(next)) = feed.try_recv() else {
            panic!("event 5 is queued");
        };
        let (gathered, rest) = gather(next, &mut feed);
        assert_eq!(gathered, event(1, 5));
        assert_eq!(rest, Some(Received::Message(event(2, 1))));
        // Nothing queued: the frame goes as it came, and nothing is left.
        let (alone, mut feed) = feed_of(vec![event(1, 9)]).await;
        assert_eq!(gather(alone, &mut feed), (event(1, 9), None));
    }

    #[test]
    fn a_pump_pauses_as_long_as_its_pass_took_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(pause_after(Duration::from_micros(900)), None);
        assert_eq!(pause_after(ms(1)), Some(ms(1)));
        assert_eq!(pause_after(ms(7)), Some(ms(7)));
        assert_eq!(pause_after(ms(20)), Some(ms(20)));
        assert_eq!(pause_after(ms(300)), Some(MAX_PAUSE));
    }

    #[tokio::test]
    async fn a_gathered_batch_stops_at_the_batch_limit() {
        let events = (1..=MAX_BATCH_EVENTS as u64 + 6)
            .map(|seq| event(1, seq))
            .collect();
        let (first, mut feed) = feed_of(events).await;
        let (gathered, rest) = gather(first, &mut feed);
        assert_eq!(seqs(&gathered).len(), MAX_BATCH_EVENTS);
        assert_eq!(rest, None, "the rest stays queued");
        let Some(Received::Message(next)) = feed.try_recv() else {
            panic!("the rest is queued");
        };
        let (gathered, _) = gather(next, &mut feed);
        assert_eq!(
            seqs(&gathered),
            (MAX_BATCH_EVENTS as u64 + 1..=MAX_BATCH_EVENTS as u64 + 6).collect::<Vec<_>>()
        );
    }
}
