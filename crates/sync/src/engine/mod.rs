//! The sync engine: one state machine per mounted widget, driven by inputs and drained by
//! outputs, with no I/O of its own (the quinn-proto style).
//!
//! Inputs: [`Engine::handle_local`] (the person's ops), [`Engine::handle_transport`] (what the
//! socket reported), [`Engine::handle_network`] (the browser's `online` / `offline` events),
//! [`Engine::handle_visible`] (the page became visible), [`Engine::reconnect_now`] (the
//! person's "Reconnect now"), [`Engine::handle_timeout`], [`Engine::set_auth`],
//! [`Engine::destroy`]. Outputs, drained after
//! every input: [`Engine::poll_transmit`] (text frames for the current socket),
//! [`Engine::poll_action`] (open / close a socket), [`Engine::poll_view`] (DOM changes) and
//! [`Engine::poll_timeout`] (when to call `handle_timeout` next).
//!
//! Decisions written down here:
//! - **Ops are never queued.** An op attempted while not live fails at once
//!   ([`LocalError::NotConnected`]) and is shown failed with a retry affordance; only the
//!   person's [`Command::Retry`] sends it.
//! - **Retry reuses the op's `broadcastId`** (and its chat / comment ids). The server is
//!   idempotent on `broadcastId`, so if the first attempt was in fact committed the retry is
//!   acknowledged with the original `seq` instead of creating a duplicate.
//! - **In-flight ops are settled by the resync**, never guessed at on disconnect: with missed
//!   events, an op is committed iff its `broadcastId` is among them; with a snapshot, iff its
//!   effect is visible (the discussion / comment exists, the edit's text is there, the
//!   discussion or reply is gone, the discussion is resolved / open and at the anchor as asked:
//!   what the person asked for holds, even if someone else did it). Otherwise it becomes failed with [`FailReason::ConnectionLost`](crate::FailReason::ConnectionLost).
//! - **A live gap or an event that does not apply triggers a resync**: the socket is closed and
//!   a new one opened after the (reset, so at most 500 ms) backoff delay. A gap resumes from the
//!   last position; an event that does not apply (or an epoch change) means our state cannot be
//!   trusted, so the next `hello` omits `resume` and the server sends a snapshot.
//! - **Keepalive**: a ping every 25 s while live; no frame at all for 60 s means the socket is
//!   dead (close 4001, reconnect). `hello` must be answered by `welcome` within 15 s.
//! - **Announcements**: remote changes applied live are announced one by one; after a resync,
//!   up to 3 missed changes are announced individually, more as one
//!   [`Announcement::Caught`]. Changes by the current person (our ids, or their other tabs)
//!   are never announced.

mod inbound;
mod link;
mod local;

use crate::queue::Queue;

use image_chat_protocol::limits::validate_name;
use image_chat_protocol::{
    Anchor, Auth, BroadcastId, ChatId, ClientMessage, CloseCode, CommentId, ImageState, Op,
    Position, Subject, TenantId, TextAnchor, User,
};

use crate::backoff::{Backoff, DEFAULT_BASE_MS, DEFAULT_CAP_MS};
use crate::connection::{Action, ConnectionId, ConnectionStatus, StopReason, TransportEvent};
use crate::echo::OwnIds;
use crate::error::{LocalError, OpRef};
use crate::ids::IdSource;
use crate::pending::{PendingOps, Progress};
use crate::rng::Rng;
use crate::view::{self, Announcement, OpState, View, ViewUpdate};

/// Missed events announced one by one after a resync; more are summarised.
const MAX_INDIVIDUAL_CATCH_UP_ANNOUNCEMENTS: usize = 3;

/// Timers and backoff bounds, in milliseconds. The defaults suit production; tests shrink or
/// inspect them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Ceiling of the first reconnect delay (full jitter: the delay is in `[0, ceiling]`).
    pub backoff_base_ms: u64,
    /// Largest reconnect delay ceiling.
    pub backoff_cap_ms: u64,
    /// Ping interval while live.
    pub ping_interval_ms: u64,
    /// Silence after which a live socket is considered dead.
    pub idle_timeout_ms: u64,
    /// Time allowed from asking for a socket to receiving `welcome`.
    pub handshake_timeout_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            backoff_base_ms: DEFAULT_BASE_MS,
            backoff_cap_ms: DEFAULT_CAP_MS,
            ping_interval_ms: 25_000,
            idle_timeout_ms: 60_000,
            handshake_timeout_ms: 15_000,
        }
    }
}

/// What the engine needs to know at mount time.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The site's tenant.
    pub tenant_id: TenantId,
    /// The image (or page) discussed. The engine treats both alike; the server takes only
    /// anchors of the subject's kind (points and regions on an image, text on a page).
    pub subject: Subject,
    /// Who the person is (`None`: anonymous without a name, if the tenant allows it). Read
    /// afresh for every `hello`; change it with [`Engine::set_auth`].
    pub auth: Option<Auth>,
    /// `navigator.onLine` at mount: when false the engine waits for the `online` signal.
    pub online: bool,
    /// Timers and backoff bounds.
    pub timing: Timing,
}

impl Config {
    /// A config with default timing, assuming the browser is online. `subject` is an
    /// [`ImageId`](image_chat_protocol::ImageId) or a [`PageId`](image_chat_protocol::PageId)
    /// (or a [`Subject`]).
    pub fn new(tenant_id: TenantId, subject: impl Into<Subject>, auth: Option<Auth>) -> Self {
        Self {
            tenant_id,
            subject: subject.into(),
            auth,
            online: true,
            timing: Timing::default(),
        }
    }
}

/// Something the person did.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Drop a marker at `(x, y)` (fractions of the image width / height) with a first comment.
    CreateChat {
        /// Fraction of the image width, in [0, 1].
        x: f64,
        /// Fraction of the image height, in [0, 1].
        y: f64,
        /// The first comment.
        text: String,
    },
    /// Reply in a discussion.
    Reply {
        /// The discussion.
        chat_id: ChatId,
        /// The reply.
        text: String,
    },
    /// Change the text of one's own comment.
    Edit {
        /// The discussion.
        chat_id: ChatId,
        /// The comment.
        comment_id: CommentId,
        /// The new text.
        text: String,
    },
    /// Delete a discussion (author or moderator).
    Delete {
        /// The discussion.
        chat_id: ChatId,
    },
    /// Start a discussion on an area of the image (a region anchor) with a first comment.
    CreateRegion {
        /// Left edge, fraction of the image width.
        x: f64,
        /// Top edge, fraction of the image height.
        y: f64,
        /// Width, fraction of the image width.
        w: f64,
        /// Height, fraction of the image height.
        h: f64,
        /// The first comment.
        text: String,
    },
    /// Start a discussion on a passage of a page's text (engines of a page only; build the
    /// anchor with `image_chat_anchor::describe`) with a first comment.
    CreateText {
        /// The passage.
        anchor: TextAnchor,
        /// The first comment.
        text: String,
    },
    /// Delete one reply (its author or a moderator; never the opening comment).
    DeleteComment {
        /// The discussion.
        chat_id: ChatId,
        /// The reply.
        comment_id: CommentId,
    },
    /// Resolve (`true`) or reopen (`false`) a discussion (its author or a moderator).
    Resolve {
        /// The discussion.
        chat_id: ChatId,
        /// The new state.
        resolved: bool,
    },
    /// Put a discussion on another anchor (its author or a moderator): see
    /// [`Anchor::moved_to`] to move a marker and keep a region's size.
    Move {
        /// The discussion.
        chat_id: ChatId,
        /// Where it goes.
        anchor: Anchor,
    },
    /// Send a failed op again (same content, same `broadcastId`).
    Retry {
        /// The failed op.
        op: BroadcastId,
    },
    /// Forget a failed op: its optimistic effect disappears (a failed marker is removed, a
    /// failed edit / delete stops being flagged).
    Dismiss {
        /// The failed op.
        op: BroadcastId,
    },
}

/// The socket as the engine tracks it (internal; see [`ConnectionStatus`] for the public view).
#[derive(Clone, Debug, PartialEq)]
enum Link {
    /// Asked for socket `conn`; `opened` once `hello` went out. Gives up at `deadline`.
    Connecting {
        conn: ConnectionId,
        opened: bool,
        deadline: u64,
    },
    /// Welcomed on `conn`.
    Live {
        conn: ConnectionId,
        last_rx: u64,
        next_ping: u64,
    },
    /// No socket; next attempt at `until`.
    Waiting { until: u64 },
    /// No socket; waiting for the browser's `online` signal.
    Offline,
    /// No socket, for good.
    Stopped(StopReason),
}

/// The client sync engine for one image. See the [module docs](self) for the rules it follows.
#[derive(Debug)]
pub struct Engine {
    tenant_id: TenantId,
    subject: Subject,
    /// Current auth; every `hello` is built from it, so an updated SSO signature is used on the
    /// next attempt.
    auth: Option<Auth>,
    /// The server-signed anonymous identity from the last `welcome`, sent back in later
    /// `hello`s so the person keeps authorship of their comments across reconnects.
    token: Option<String>,
    timing: Timing,
    /// Backoff jitter only.
    rng: Rng,
    /// The bytes of every id this engine mints (see `ids`: never the jitter generator).
    ids: Box<dyn IdSource>,
    backoff: Backoff,
    /// Source of [`ConnectionId`]s.
    next_conn: u64,
    link: Link,
    /// Last `navigator.onLine` value reported.
    browser_online: bool,
    /// The server's state as of `position` (only confirmed, committed changes).
    state: ImageState,
    /// Last applied position; `None` before the first `welcome`.
    position: Option<Position>,
    /// Our state may be corrupt: the next `hello` asks for a snapshot (omits `resume`).
    need_snapshot: bool,
    /// The person as the server identified them.
    you: Option<User>,
    /// Our unsettled ops.
    ops: PendingOps,
    /// Every broadcast id we minted recently (echo suppression; survives reconnects).
    own: OwnIds,
    /// The view as last reported through `poll_view`.
    view: View,
    /// What changed (in the confirmed state, our ops, or who we are) since the view was last
    /// refreshed.
    stale: Stale,
    ping_nonce: u64,
    transmits: Queue<String>,
    actions: Queue<Action>,
    updates: Queue<ViewUpdate>,
}

impl Engine {
    /// A new engine. If `config.online`, it asks for a socket at once ([`Action::Connect`]).
    /// `seed` feeds the backoff jitter (take it from `crypto.getRandomValues` so tabs do not
    /// reconnect in step); `ids` gives the bytes of every id it mints, which must be
    /// unpredictable to others in a browser (see [`crate::ids`]).
    pub fn new(now: u64, config: Config, seed: u64, ids: Box<dyn IdSource>) -> Self {
        let status = if config.online {
            ConnectionStatus::Connecting { attempt: 0 }
        } else {
            ConnectionStatus::Offline
        };
        let mut engine = Self {
            tenant_id: config.tenant_id,
            subject: config.subject,
            auth: config.auth,
            token: None,
            timing: config.timing,
            rng: Rng::new(seed),
            ids,
            backoff: Backoff::new(config.timing.backoff_base_ms, config.timing.backoff_cap_ms),
            next_conn: 0,
            link: Link::Offline,
            browser_online: config.online,
            state: ImageState::default(),
            position: None,
            need_snapshot: false,
            you: None,
            ops: PendingOps::default(),
            own: OwnIds::default(),
            view: View {
                chats: Vec::new(),
                connection: status,
                online: 0,
                read_only: false,
                locked: false,
            },
            stale: Stale::Fresh,
            ping_nonce: 0,
            transmits: Queue::new(),
            actions: Queue::new(),
            updates: Queue::new(),
        };
        if config.online {
            engine.start_attempt(now);
        }
        engine
    }

    // ----------------------------------------------------------------------------------------
    // Inputs
    // ----------------------------------------------------------------------------------------

    /// Applies a person's command. Ops are validated first (nothing happens on
    /// [`LocalError::Invalid`]); when live they are shown at once as pending and sent; when not
    /// live they are shown failed and [`LocalError::NotConnected`] is returned.
    pub fn handle_local(&mut self, now: u64, cmd: Command) -> Result<OpRef, LocalError> {
        if matches!(self.link, Link::Stopped(StopReason::Destroyed)) {
            return Err(LocalError::Destroyed);
        }
        let result = match cmd {
            Command::Retry { op } => self.retry(op),
            Command::Dismiss { op } => self.dismiss(&op),
            cmd => self.submit(now, cmd),
        };
        self.refresh_view();
        result
    }

    /// Reports what socket `conn` did. Events from sockets the engine no longer uses are
    /// ignored.
    pub fn handle_transport(&mut self, now: u64, conn: ConnectionId, event: TransportEvent) {
        if self.current_conn() != Some(conn) {
            return;
        }
        match event {
            TransportEvent::Opened => self.on_open(now),
            TransportEvent::Message(text) => self.on_message(now, &text),
            TransportEvent::Closed { code } => self.on_closed(now, code),
            TransportEvent::Error => {}
        }
        self.refresh_view();
    }

    /// Reports the browser's `online` (true) / `offline` (false) events. Going online starts an
    /// attempt at once (skipping any backoff wait); going offline closes the socket and waits.
    pub fn handle_network(&mut self, now: u64, online: bool) {
        self.browser_online = online;
        match (&self.link, online) {
            (Link::Offline | Link::Waiting { .. }, true) => self.start_attempt(now),
            (Link::Connecting { .. } | Link::Live { .. }, false) => {
                self.close_current(1000, "offline");
                self.set_link(Link::Offline);
            }
            (Link::Waiting { .. }, false) => self.set_link(Link::Offline),
            _ => {}
        }
        self.refresh_view();
    }

    /// The person pressed "Reconnect now". While waiting out a backoff delay, past failures
    /// are forgotten (the next delays start small again) and an attempt starts at once;
    /// otherwise (connecting, live, offline, stopped) there is nothing to hurry.
    pub fn reconnect_now(&mut self, now: u64) {
        if matches!(self.link, Link::Waiting { .. }) {
            self.backoff.reset();
            self.start_attempt(now);
        }
        self.refresh_view();
    }

    /// The page became visible again (`visibilitychange`). While waiting out a backoff delay
    /// (up to 20 s, perhaps counted down in a background tab), the attempt starts at once:
    /// someone is looking now. The backoff is kept, so flipping tabs cannot hammer a server
    /// that is down.
    pub fn handle_visible(&mut self, now: u64) {
        if matches!(self.link, Link::Waiting { .. }) {
            self.start_attempt(now);
        }
        self.refresh_view();
    }

    /// Runs whatever timers are due at `now` (reconnect, ping, silence, handshake).
    pub fn handle_timeout(&mut self, now: u64) {
        match self.link.clone() {
            Link::Waiting { until } if now >= until => self.start_attempt(now),
            Link::Connecting { deadline, .. } if now >= deadline => {
                self.drop_connection(now, Some((CloseCode::Timeout.code(), "no welcome")));
            }
            Link::Live {
                conn,
                last_rx,
                next_ping,
            } => {
                if now >= last_rx.saturating_add(self.timing.idle_timeout_ms) {
                    self.drop_connection(now, Some((CloseCode::Timeout.code(), "silent")));
                } else if now >= next_ping {
                    self.ping_nonce = self.ping_nonce.wrapping_add(1);
                    self.transmits.push_back(
                        ClientMessage::Ping {
                            nonce: self.ping_nonce,
                        }
                        .to_json(),
                    );
                    self.link = Link::Live {
                        conn,
                        last_rx,
                        next_ping: now.saturating_add(self.timing.ping_interval_ms),
                    };
                }
            }
            _ => {}
        }
        self.refresh_view();
    }

    /// Replaces the auth used by every later `hello` (e.g. a refreshed SSO signature, or a
    /// person who just signed in). A live connection keeps its identity until it reconnects;
    /// if the engine had stopped on a refusal (e.g. authentication failure), it starts over.
    pub fn set_auth(&mut self, now: u64, auth: Option<Auth>) {
        self.auth = auth;
        if matches!(self.link, Link::Stopped(StopReason::Refused(_))) {
            self.backoff.reset();
            if self.browser_online {
                self.start_attempt(now);
            } else {
                self.set_link(Link::Offline);
            }
        }
        self.refresh_view();
    }

    /// The person chose a display name (anonymous sessions only; a signed user's name is the
    /// site's: [`LocalError::NotAllowed`]). Checked like the server checks it
    /// ([`validate_name`]); used at once for our optimistic comments, sent as `set-name` when
    /// live (so our later ops are authored with it) and put in every later `hello`.
    pub fn set_name(&mut self, name: &str) -> Result<(), LocalError> {
        validate_name(name)?;
        let name = name.trim();
        match &mut self.auth {
            Some(Auth::Sso { .. }) => return Err(LocalError::NotAllowed),
            Some(Auth::Anonymous { name: current, .. }) => current.clear(),
            None => {
                self.auth = Some(Auth::Anonymous {
                    name: String::new(),
                    token: None,
                })
            }
        }
        if let Some(Auth::Anonymous { name: current, .. }) = &mut self.auth {
            current.push_str(name);
        }
        let Some(you) = self.you.as_mut() else {
            // Not welcomed yet: the coming `hello` carries it.
            return Ok(());
        };
        if you.signed_in || you.name == name {
            return Ok(());
        }
        you.name = name.to_owned();
        if matches!(self.link, Link::Live { .. }) {
            self.transmits.push_back(
                ClientMessage::SetName {
                    name: name.to_owned(),
                }
                .to_json(),
            );
        }
        Ok(())
    }

    /// Locks the image read-only (`true`) or unlocks it: moderators only, not in a read-only
    /// session (otherwise: [`LocalError::NotAllowed`]). Sent as `set-lock` when live; nothing changes locally until
    /// the server's `lock` frame arrives (to every viewer), so the view never shows a lock the
    /// server did not make. Not connected: [`LocalError::Offline`].
    pub fn set_lock(&mut self, locked: bool) -> Result<(), LocalError> {
        // A read-only session may change nothing, a lock included (the server says `forbidden`).
        if self.view.read_only || !self.you.as_ref().is_some_and(|you| you.is_moderator) {
            return Err(LocalError::NotAllowed);
        }
        if !matches!(self.link, Link::Live { .. }) {
            return Err(LocalError::Offline);
        }
        self.transmits
            .push_back(ClientMessage::SetLock { locked }.to_json());
        Ok(())
    }

    /// Whether this person may change the image now: not read-only, and either the image is
    /// not locked or they are a moderator.
    pub fn may_write(&self) -> bool {
        !self.view.read_only
            && (!self.view.locked || self.you.as_ref().is_some_and(|you| you.is_moderator))
    }

    /// Stops for good: closes the socket (1000) and ignores everything afterwards.
    pub fn destroy(&mut self, _now: u64) {
        if matches!(self.link, Link::Stopped(StopReason::Destroyed)) {
            return;
        }
        self.close_current(CloseCode::Normal.code(), CloseCode::Normal.reason());
        self.set_link(Link::Stopped(StopReason::Destroyed));
        self.refresh_view();
    }

    // ----------------------------------------------------------------------------------------
    // Outputs
    // ----------------------------------------------------------------------------------------

    /// The next text frame to send on the current socket (the one of the last
    /// [`Action::Connect`]). Frames are only queued while that socket is open, and the queue is
    /// cleared when the engine abandons it.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.transmits.pop_front()
    }

    /// The next socket action (open / close).
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next change the widget must make to its DOM.
    pub fn poll_view(&mut self) -> Option<ViewUpdate> {
        self.updates.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called (same clock as `now`), if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.link {
            Link::Connecting { deadline, .. } => Some(*deadline),
            Link::Live {
                last_rx, next_ping, ..
            } => Some((*next_ping).min(last_rx.saturating_add(self.timing.idle_timeout_ms))),
            Link::Waiting { until } => Some(*until),
            Link::Offline | Link::Stopped(_) => None,
        }
    }

    // ----------------------------------------------------------------------------------------
    // Queries
    // ----------------------------------------------------------------------------------------

    /// Everything to show, as of the last input (for a full render).
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The image or page this engine follows: its kind says which anchors the discussions
    /// carry (`subject().kind()`: points and regions, or text) and which `Command` creates one.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The connection status.
    pub fn status(&self) -> ConnectionStatus {
        self.view.connection
    }

    /// The person as the server identified them (after the first `welcome`).
    pub fn you(&self) -> Option<&User> {
        self.you.as_ref()
    }

    /// The anonymous identity token from the last `welcome`, to persist (e.g. in
    /// `localStorage`) and pass back in `Auth::Anonymous { token }` after a reload.
    pub fn anonymous_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The last applied log position.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// The confirmed server state (without our unsettled ops).
    pub fn confirmed_state(&self) -> &ImageState {
        &self.state
    }

    /// Where one of our ops stands while the engine still tracks it: pending, failed, or
    /// confirmed by an `ack` whose event has not arrived yet. `None` once it is settled (its
    /// change is in the confirmed state) or dismissed.
    pub fn op_state(&self, op: &BroadcastId) -> Option<OpState> {
        self.ops.get(op).map(view::op_state)
    }

    /// The text a failed op tried to write (create, reply, edit), e.g. to refill an editor.
    pub fn failed_text(&self, op: &BroadcastId) -> Option<&str> {
        let op = self.ops.get(op)?;
        if !matches!(op.progress, Progress::Failed(_)) {
            return None;
        }
        match &op.op {
            Op::CreateChat(o) => Some(&o.text),
            Op::AddComment(o) => Some(&o.text),
            Op::EditComment(o) => Some(&o.text),
            Op::DeleteChat(_) | Op::DeleteComment(_) | Op::ResolveChat(_) | Op::MoveChat(_) => None,
        }
    }

    // ----------------------------------------------------------------------------------------
    // View
    // ----------------------------------------------------------------------------------------

    /// Notes that discussion `id` may look different now (its confirmed state or one of our ops
    /// on it changed).
    fn touch(&mut self, id: &ChatId) {
        match &mut self.stale {
            Stale::Fresh => self.stale = Stale::Chats(vec![id.clone()]),
            Stale::Chats(ids) if ids.len() >= view::MAX_INCREMENTAL => self.stale = Stale::All,
            Stale::Chats(ids) => {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
            Stale::All => {}
        }
    }

    /// Notes that anything may look different now (a snapshot, a new identity).
    fn touch_all(&mut self) {
        self.stale = Stale::All;
    }

    fn refresh_view(&mut self) {
        #[cfg(debug_assertions)]
        let before = (self.view.chats.clone(), self.updates.len());
        match std::mem::replace(&mut self.stale, Stale::Fresh) {
            Stale::Fresh => {}
            Stale::Chats(ids) => {
                let you = self.you.as_ref();
                let done = view::refresh(
                    &mut self.view.chats,
                    &self.state,
                    &self.ops,
                    you,
                    &ids,
                    &mut self.updates,
                );
                if !done {
                    self.rebuild_view();
                }
            }
            Stale::All => self.rebuild_view(),
        }
        // Every test (scenarios, the model-based proptest, browser tests) runs in debug: there
        // the incremental refresh is checked against a full rebuild after every input, which
        // also catches a change that forgot to `touch` what it changed.
        #[cfg(debug_assertions)]
        {
            let full = view::build(&self.state, &self.ops, self.you.as_ref());
            assert_eq!(
                self.view.chats, full,
                "incremental view diverged from a full rebuild"
            );
            let mut expected = Queue::new();
            view::diff(&before.0, &full, &mut expected);
            let produced: Vec<&ViewUpdate> = self.updates.iter().skip(before.1).collect();
            assert_eq!(
                produced,
                expected.iter().collect::<Vec<_>>(),
                "incremental view updates differ from a full diff"
            );
        }
    }

    fn rebuild_view(&mut self) {
        let chats = view::build(&self.state, &self.ops, self.you.as_ref());
        view::diff(&self.view.chats, &chats, &mut self.updates);
        self.view.chats = chats;
    }
}

/// What the view must be refreshed for.
#[derive(Debug)]
enum Stale {
    /// Nothing changed.
    Fresh,
    /// Only these discussions (at most [`view::MAX_INCREMENTAL`]) can have changed.
    Chats(Vec<ChatId>),
    /// Anything can have changed: rebuild in full.
    All,
}

/// The outcome of applying one event in order.
enum Applied {
    /// Applied; maybe worth announcing.
    Yes { announce: Option<Announcement> },
    /// Already applied (`seq` not after our position): ignored.
    Duplicate,
    /// Events are missing before this one: resume from our position.
    Gap,
    /// The event contradicts our state, or belongs to another epoch: reload a snapshot.
    Corrupt,
}
