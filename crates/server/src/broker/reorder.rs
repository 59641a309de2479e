//! Delivery in `seq` order for one image on one node, as pure logic (no I/O; time is a
//! parameter), driven by [`super::ordered`].
//!
//! Events of one image reach a node through a shared broker from every node that commits to it,
//! so they can arrive out of order (two nodes publish seq 5 and 6 at once, 6 gets there first),
//! or not at all (the broker dropped them: Redis pub/sub does on a lost connection). A node keeps
//! the image's last delivered position and delivers strictly the next `seq`:
//!
//! - An event that continues the delivered position is delivered, with any held events it
//!   connects to.
//! - An event ahead of a gap is held, and the gap waits `gap_wait` for the missing event (usually
//!   it is just a few milliseconds behind). If it is still open then, the node asks the store's
//!   log for everything after its position ([`Action::Fill`]) and delivers that, then what it
//!   held beyond it.
//! - Too many held events fill at once instead of waiting.
//! - An event of another epoch (the image's log was recreated) is a gap too: the fill tells.
//! - A lost broker connection fills before anything more is delivered: events published
//!   meanwhile never come through the broker.
//! - Anything at or below the delivered position is a repeat and is dropped; a batch straddling
//!   it is trimmed to its new events.
//! - State frames (presence) are delivered as they come: the latest supersedes the rest.
//!
//! The caller performs each fill and reports its outcome ([`Reorder::filled`],
//! [`Reorder::fill_failed`], or [`Reorder::rebase`] when the store can only offer a snapshot, in
//! which case the caller makes its viewers resync). At most one fill is outstanding.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use image_chat_protocol::Position;
use tokio::time::Instant;

use super::Published;

/// Timing and bounds of the reordering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReorderConfig {
    /// How long a gap waits for its missing event before it is filled from the store.
    pub gap_wait: Duration,
    /// Held events (ahead of a gap) beyond which the gap is filled at once.
    pub max_held: usize,
    /// How long after a failed fill (the store unreachable) it is tried again.
    pub retry_wait: Duration,
    /// While the broker is disconnected: how often the store's log is read instead.
    pub poll_every: Duration,
}

/// Default [`ReorderConfig::gap_wait`]: far above how far apart two nodes' publishes of
/// consecutive events arrive (a commit and a publish each take about a millisecond), far below
/// what a person notices.
pub const DEFAULT_GAP_WAIT: Duration = Duration::from_millis(200);

/// Most events delivered as one frame (as the batching decorator's default batch).
pub const MAX_RUN: usize = 64;

impl Default for ReorderConfig {
    fn default() -> Self {
        Self {
            gap_wait: DEFAULT_GAP_WAIT,
            max_held: 1024,
            retry_wait: Duration::from_millis(500),
            poll_every: Duration::from_millis(250),
        }
    }
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deliver this to every local subscriber, now (in the order the actions come).
    Deliver(Published),
    /// Read the store's log after this position and report it ([`Reorder::filled`]).
    Fill(Position),
}

/// One image's delivery state on one node.
#[derive(Debug)]
pub struct Reorder {
    config: ReorderConfig,
    /// The last position delivered (`epoch` 0: the image had no log yet).
    delivered: Position,
    /// Events ahead of a gap, by `seq`, with their log's epoch. A batch is held as its events:
    /// one node's batch holds only the events *it* committed, which other nodes' events may
    /// interleave (its seqs need not be consecutive).
    held: BTreeMap<u64, (u32, Utf8Bytes)>,
    /// When to fill (an open gap, or a failed fill's retry). `None`: nothing scheduled.
    fill_at: Option<Instant>,
    /// A fill is outstanding: nothing with a `seq` is delivered until it is reported.
    filling: bool,
    /// The broker is disconnected: the store's log is read every `poll_every` instead.
    polling: bool,
}

impl Reorder {
    /// Delivery starting after `base` (where the store's log stood when the node subscribed).
    pub fn new(base: Position, config: ReorderConfig) -> Self {
        Self {
            config,
            delivered: base,
            held: BTreeMap::new(),
            fill_at: None,
            filling: false,
            polling: false,
        }
    }

    /// The last position delivered.
    pub fn delivered(&self) -> Position {
        self.delivered
    }

    /// Events held ahead of a gap.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// When [`Reorder::handle_timeout`] must be called (`None`: no need).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.filling { None } else { self.fill_at }
    }

    /// A message from the broker.
    pub fn receive(&mut self, now: Instant, message: Published) -> Vec<Action> {
        let Some(last) = message.seq else {
            return vec![Action::Deliver(message)];
        };
        let epoch = message.epoch;
        let other_epoch = self.delivered.epoch != 0 && epoch != self.delivered.epoch;
        match message.parts {
            Some(parts) => {
                for (seq, event) in parts.iter() {
                    self.hold(epoch, *seq, event.clone());
                }
            }
            None => self.hold(epoch, last, message.frame),
        }
        let mut actions = Vec::new();
        if other_epoch {
            // A gap: the fill learns from the store what the log is now.
            actions.extend(self.fill_now());
            return actions;
        }
        if !self.filling {
            self.drain(&mut actions);
        }
        if self.held.len() > self.config.max_held {
            actions.extend(self.fill_now());
        } else {
            self.schedule_gap(now);
        }
        actions
    }

    /// The broker is back after losing its connection (or this subscriber fell behind it):
    /// fill before delivering anything more, and stop polling.
    pub fn interrupted(&mut self) -> Option<Action> {
        self.polling = false;
        self.fill_now()
    }

    /// The broker lost its connection: read the store's log now and every `poll_every` until
    /// [`Reorder::interrupted`] says the broker is back.
    pub fn disconnected(&mut self) -> Option<Action> {
        self.polling = true;
        self.fill_now()
    }

    /// Time passed: fills a gap that waited long enough (or retries a failed fill).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Action> {
        match self.fill_at {
            Some(at) if !self.filling && at <= now => self.fill_now(),
            _ => None,
        }
    }

    /// The store's log after the position of the last [`Action::Fill`]: `events` (single
    /// events) in `seq` order, ending at `position` (the log's head when it was read).
    pub fn filled(
        &mut self,
        now: Instant,
        position: Position,
        events: Vec<Published>,
    ) -> Vec<Action> {
        self.filling = false;
        self.fill_at = None;
        if position.epoch != self.delivered.epoch {
            self.delivered = Position {
                epoch: position.epoch,
                seq: 0,
            };
        }
        for event in events {
            if let Some(seq) = event.seq {
                self.hold(event.epoch, seq, event.frame);
            }
        }
        let mut actions = Vec::new();
        self.drop_stale_epochs();
        self.drain(&mut actions);
        // The log had nothing more than this: whatever is missing below its head is not coming.
        if self.delivered.seq < position.seq {
            tracing::warn!(
                delivered = self.delivered.seq,
                head = position.seq,
                "the store listed fewer events than its head; continuing after the head"
            );
            self.delivered.seq = position.seq;
            self.drain(&mut actions);
        }
        self.schedule_gap(now);
        actions
    }

    /// The fill failed (the store is unreachable): held events stay held and the fill is tried
    /// again after `retry_wait`.
    pub fn fill_failed(&mut self, now: Instant) {
        self.filling = false;
        self.fill_at = Some(now + self.config.retry_wait);
    }

    /// The store cannot list what followed the delivered position (its epoch changed, or the
    /// events are no longer retained): delivery continues after `position`, the log's head, and
    /// the caller has made every viewer resync (they get a snapshot).
    pub fn rebase(&mut self, now: Instant, position: Position) -> Vec<Action> {
        self.filling = false;
        self.fill_at = None;
        self.delivered = position;
        self.drop_stale_epochs();
        let mut actions = Vec::new();
        self.drain(&mut actions);
        self.schedule_gap(now);
        actions
    }

    /// Holds one event unless it is a repeat of what was delivered.
    fn hold(&mut self, epoch: u32, seq: u64, event: Utf8Bytes) {
        if epoch == self.delivered.epoch && seq <= self.delivered.seq {
            return;
        }
        self.held.insert(seq, (epoch, event));
    }

    fn fill_now(&mut self) -> Option<Action> {
        if self.filling {
            return None;
        }
        self.filling = true;
        self.fill_at = None;
        Some(Action::Fill(self.delivered))
    }

    /// Held events of another epoch than the delivered one can never connect: forgotten.
    fn drop_stale_epochs(&mut self) {
        let epoch = self.delivered.epoch;
        self.held.retain(|_, (e, _)| *e == epoch);
    }

    /// Delivers the held events that continue the delivered position, as frames of at most
    /// [`MAX_RUN`] events, dropping repeats.
    fn drain(&mut self, actions: &mut Vec<Action>) {
        let mut run: Vec<(u64, Utf8Bytes)> = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            let seq = *entry.key();
            if seq > self.delivered.seq + 1 {
                break;
            }
            let (epoch, event) = entry.remove();
            if self.delivered.epoch == 0 {
                // The image had no log when delivery started: its first event sets the epoch.
                self.delivered.epoch = epoch;
            }
            if epoch != self.delivered.epoch || seq <= self.delivered.seq {
                continue;
            }
            self.delivered.seq = seq;
            run.push((seq, event));
            if run.len() == MAX_RUN {
                self.deliver(std::mem::take(&mut run), actions);
            }
        }
        self.deliver(run, actions);
    }

    fn deliver(&self, run: Vec<(u64, Utf8Bytes)>, actions: &mut Vec<Action>) {
        if let Some(message) = Published::events(self.delivered.epoch, run) {
            actions.push(Action::Deliver(message));
        }
    }

    /// Opens the gap's wait if something is held and nothing is scheduled; closes it when
    /// nothing is held any more.
    fn schedule_gap(&mut self, now: Instant) {
        if self.filling {
            return;
        }
        if self.polling {
            self.fill_at = Some(self.fill_at.unwrap_or(now + self.config.poll_every));
        } else if self.held.is_empty() {
            self.fill_at = None;
        } else if self.fill_at.is_none() {
            self.fill_at = Some(now + self.config.gap_wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: u32 = 9;

    fn event(seq: u64) -> Published {
        Published::event(EPOCH, seq, Utf8Bytes::from(format!("{{\"seq\":{seq}}}")))
    }

    fn batch(seqs: impl IntoIterator<Item = u64>) -> Published {
        let parts = seqs.into_iter().map(|s| (s, event(s).frame)).collect();
        Published::events(EPOCH, parts).expect("non-empty")
    }

    fn at(seq: u64) -> Position {
        Position { epoch: EPOCH, seq }
    }

    /// The seqs delivered by `actions` (a batch as its parts), and the fill asked for, if any.
    fn outcome(actions: &[Action]) -> (Vec<u64>, Option<Position>) {
        let mut seqs = Vec::new();
        let mut fill = None;
        for action in actions {
            match action {
                Action::Deliver(m) => match &m.parts {
                    Some(parts) => seqs.extend(parts.iter().map(|(s, _)| *s)),
                    None => seqs.extend(m.seq),
                },
                Action::Fill(p) => fill = Some(*p),
            }
        }
        (seqs, fill)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn in_order_events_are_delivered_at_once_and_repeats_dropped() {
        let t0 = Instant::now();
        let mut r = Reorder::new(at(4), ReorderConfig::default());
        assert_eq!(outcome(&r.receive(t0, event(5))), (vec![5], None));
        assert_eq!(outcome(&r.receive(t0, event(6))), (vec![6], None));
        assert_eq!(outcome(&r.receive(t0, event(6))), (vec![], None));
        assert_eq!(outcome(&r.receive(t0, event(3))), (vec![], None));
        // A batch straddling the position is trimmed to what is new.
        assert_eq!(outcome(&r.receive(t0, batch(5..=8))), (vec![7, 8], None));
        assert_eq!(r.delivered(), at(8));
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn one_nodes_batch_is_interleaved_with_the_other_nodes_events() {
        let t0 = Instant::now();
        let mut r = Reorder::new(at(10), ReorderConfig::default());
        // Node A committed 11, 13 and 16 in one batching window; B and C committed the rest.
        assert_eq!(
            outcome(&r.receive(t0, batch([11, 13, 16]))),
            (vec![11], None)
        );
        assert_eq!(outcome(&r.receive(t0, event(14))), (vec![], None));
        assert_eq!(outcome(&r.receive(t0, event(12))), (vec![12, 13, 14], None));
        assert_eq!(
            outcome(&r.receive(t0, batch([15, 17]))),
            (vec![15, 16, 17], None)
        );
        assert_eq!(r.held(), 0);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn runs_are_delivered_as_frames_of_at_most_max_run_events() {
        let t0 = Instant::now();
        let mut r = Reorder::new(at(0), ReorderConfig::default());
        let total = MAX_RUN as u64 + 6;
        for seq in 2..=total {
            r.receive(t0, event(seq));
        }
        let actions = r.receive(t0, event(1));
        assert_eq!(actions.len(), 2);
        assert_eq!(outcome(&actions).0, (1..=total).collect::<Vec<_>>());
    }

    #[test]
    fn an_event_ahead_of_a_gap_waits_for_the_missing_one() {
        let t0 = Instant::now();
        let mut r = Reorder::new(at(0), ReorderConfig::default());
        assert_eq!(outcome(&r.receive(t0, event(2))), (vec![], None));
        assert_eq!(outcome(&r.receive(t0 + ms(1), event(3))), (vec![], None));
        assert_eq!(r.poll_timeout(), Some(t0 + DEFAULT_GAP_WAIT));
        // The missing one arrives in time: all three, in order.
        assert_eq!(
            outcome(&r.receive(t0 + ms(5), event(1))),
            (vec![1, 2, 3], None)
        );
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.handle_timeout(t0 + DEFAULT_GAP_WAIT), None);
    }

    #[test]
    fn a_gap_still_open_after_the_wait_is_filled_from_the_store() {
        let t0 = Instant::now();
        let mut r = Reorder::new(at(10), ReorderConfig::default());
        r.receive(t0, event(13));
        assert_eq!(r.handle_timeout(t0 + DEFAULT_GAP_WAIT - ms(1)), None);
        let fill = r.handle_timeout(t0 + DEFAULT_GAP_WAIT);
        assert_eq!(fill, Some(Action::Fill(at(10))));
        // While the fill runs, later events are held, not delivered past the gap.
        assert_eq!(outcome(&r.receive(t0 + ms(300), event(14))), (vec![], None));
        assert_eq!(r.poll_timeout(), None);
        // The store had 11..=13 (13 was committed and is also held): each once, then 14.
        let from_store = vec![event(11), event(12), event(13)];
        let actions = r.filled(t0 + ms(310), at(13), from_store);
        assert_eq!(outcome(&actions), (vec![11, 12, 13, 14], None));
        assert_eq!(r.delivered(), at(14));
        assert_eq!(r.held(), 0);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn a_fill_that_does_not_reach_the_held_events_waits_again() {
        let t0 = Instant::now();
        let mut r = Reorder::new(at(0), ReorderConfig::default());
        r.receive(t0, event(5));
        assert!(r.handle_timeout(t0 + DEFAULT_GAP_WAIT).is_some());
        // The store read happened before 3 and 4 were committed.
        let actions = r.filled(t0 + ms(250), at(2), vec![event(1), event(2)]);
        assert_eq!(outcome(&actions), (vec![1, 2], None));
        assert_eq!(r.poll_timeout(), Some(t0 + ms(250) + DEFAULT_GAP_WAIT));
        assert_eq!(
            outcome(&r.receive(t0 + ms(260), batch(3..=4))),
            (vec![3, 4, 5], None)
        );
    }

    #[test]
    fn a_failed_fill_is_retried_and_holds_meanwhile() {
        let t0 = Instant::now();
        let config = ReorderConfig::default();
        let mut r = Reorder::new(at(1), config);
        r.receive(t0, event(3));
        assert!(r.handle_timeout(t0 + config.gap_wait).is_some());
        r.fill_failed(t0 + ms(201));
        assert_eq!(r.poll_timeout(), Some(t0 + ms(201) + config.retry_wait));
        assert_eq!(r.handle_timeout(t0 + ms(300)), None);
        assert_eq!(
            r.handle_timeout(t0 + ms(201) + config.retry_wait),
            Some(Action::Fill(at(1)))
        );
        let actions = r.filled(t0 + ms(800), at(3), vec![event(2), event(3)]);
        assert_eq!(outcome(&actions), (vec![2, 3], None));
    }

    #[test]
    fn a_lost_connection_fills_before_delivering_again() {
        let t0 = Instant::now();
        let mut r = Reorder::new(at(5), ReorderConfig::default());
        assert_eq!(r.interrupted(), Some(Action::Fill(at(5))));
        // Only one fill at a time.
        assert_eq!(r.interrupted(), None);
        // Even the next seq waits for the fill: something older may be missing.
        assert_eq!(outcome(&r.receive(t0, event(6))), (vec![], None));
        let actions = r.filled(t0, at(6), vec![event(6)]);
        assert_eq!(outcome(&actions), (vec![6], None));
        assert_eq!(outcome(&r.receive(t0, event(7))), (vec![7], None));
    }

    #[test]
    fn a_disconnected_broker_is_replaced_by_polling_the_store_until_it_is_back() {
        let t0 = Instant::now();
        let config = ReorderConfig::default();
        let mut r = Reorder::new(at(3), config);
        assert_eq!(r.disconnected(), Some(Action::Fill(at(3))));
        let actions = r.filled(t0, at(4), vec![event(4)]);
        assert_eq!(outcome(&actions), (vec![4], None));
        // Nothing held, yet the store is read again after `poll_every`.
        assert_eq!(r.poll_timeout(), Some(t0 + config.poll_every));
        assert_eq!(
            r.handle_timeout(t0 + config.poll_every),
            Some(Action::Fill(at(4)))
        );
        let actions = r.filled(t0 + config.poll_every, at(4), vec![]);
        assert_eq!(outcome(&actions), (vec![], None));
        assert_eq!(r.poll_timeout(), Some(t0 + config.poll_every * 2));
        // Back: one more fill (what was published while it reconnected), then no polling.
        assert_eq!(r.interrupted(), Some(Action::Fill(at(4))));
        let actions = r.filled(t0 + config.poll_every * 2, at(5), vec![event(5)]);
        assert_eq!(outcome(&actions), (vec![5], None));
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(outcome(&r.receive(t0, event(6))), (vec![6], None));
    }

    #[test]
    fn too_many_held_events_fill_at_once() {
        let t0 = Instant::now();
        let config = ReorderConfig {
            max_held: 3,
            ..ReorderConfig::default()
        };
        let mut r = Reorder::new(at(0), config);
        for seq in 2..=4 {
            assert_eq!(outcome(&r.receive(t0, event(seq))), (vec![], None));
        }
        assert_eq!(outcome(&r.receive(t0, event(5))), (vec![], Some(at(0))));
    }

    #[test]
    fn state_frames_pass_at_once_even_during_a_fill() {
        let t0 = Instant::now();
        let mut r = Reorder::new(at(0), ReorderConfig::default());
        r.interrupted();
        let presence = Published::state(Utf8Bytes::from_static(r#"{"type":"presence"}"#));
        assert_eq!(
            r.receive(t0, presence.clone()),
            vec![Action::Deliver(presence)]
        );
    }

    #[test]
    fn the_first_event_of_a_new_log_sets_the_epoch() {
        let t0 = Instant::now();
        let mut r = Reorder::new(Position { epoch: 0, seq: 0 }, ReorderConfig::default());
        assert_eq!(outcome(&r.receive(t0, event(1))), (vec![1], None));
        assert_eq!(r.delivered(), at(1));
    }

    #[test]
    fn another_epoch_fills_and_a_rebase_continues_after_the_new_head() {
        let t0 = Instant::now();
        let mut r = Reorder::new(at(40), ReorderConfig::default());
        let other = Published::event(EPOCH + 1, 3, Utf8Bytes::from_static("{}"));
        assert_eq!(outcome(&r.receive(t0, other)), (vec![], Some(at(40))));
        // The store cannot list events after (EPOCH, 40): the caller resyncs its viewers.
        let head = Position {
            epoch: EPOCH + 1,
            seq: 3,
        };
        assert_eq!(outcome(&r.rebase(t0, head)), (vec![], None));
        let next = Published::event(EPOCH + 1, 4, Utf8Bytes::from_static("{}"));
        assert_eq!(outcome(&r.receive(t0, next)), (vec![4], None));
        assert_eq!(r.held(), 0);
    }
}
