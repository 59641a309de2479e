//! The sync engine: one state machine per mounted widget, driven by inputs and drained by
//! outputs, with no I/O of its own (the quinn-proto style).
//!
//! Inputs: [`Engine::handle_local`] (the person's ops), [`Engine::handle_transport`] (what the
//! socket reported), [`Engine::handle_network`] (the browser's `online` / `offline` events),
//! [`Engine::handle_timeout`], [`Engine::set_auth`], [`Engine::destroy`]. Outputs, drained after
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
//!   discussion is gone). Otherwise it becomes failed with [`FailReason::ConnectionLost`].
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

use std::collections::VecDeque;

use image_chat_protocol::limits::{validate_fraction, validate_text};
use image_chat_protocol::{
    AddComment, Anchor, Auth, BroadcastId, ChatId, ClientMessage, CloseCode, CommentId, CreateChat,
    DeleteChat, EditComment, ErrorFrame, Event, Hello, ImageId, ImageState, Op, PROTOCOL_VERSION,
    Position, ServerMessage, TenantId, User, Welcome,
};

use crate::backoff::{Backoff, DEFAULT_BASE_MS, DEFAULT_CAP_MS};
use crate::connection::{Action, ConnectionId, ConnectionStatus, StopReason, TransportEvent};
use crate::echo::OwnIds;
use crate::error::{FailReason, LocalError, OpKind, OpRef};
use crate::ids;
use crate::pending::{LocalOp, PendingOps, Progress};
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
    /// The image discussed.
    pub image_id: ImageId,
    /// Who the person is (`None`: anonymous without a name, if the tenant allows it). Read
    /// afresh for every `hello`; change it with [`Engine::set_auth`].
    pub auth: Option<Auth>,
    /// `navigator.onLine` at mount: when false the engine waits for the `online` signal.
    pub online: bool,
    /// Timers and backoff bounds.
    pub timing: Timing,
}

impl Config {
    /// A config with default timing, assuming the browser is online.
    pub fn new(tenant_id: TenantId, image_id: ImageId, auth: Option<Auth>) -> Self {
        Self {
            tenant_id,
            image_id,
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
    image_id: ImageId,
    /// Current auth; every `hello` is built from it, so an updated SSO signature is used on the
    /// next attempt.
    auth: Option<Auth>,
    /// The server-signed anonymous identity from the last `welcome`, sent back in later
    /// `hello`s so the person keeps authorship of their comments across reconnects.
    token: Option<String>,
    timing: Timing,
    rng: Rng,
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
    /// The confirmed state or the ops changed since the view was last rebuilt.
    dirty: bool,
    ping_nonce: u64,
    transmits: VecDeque<String>,
    actions: VecDeque<Action>,
    updates: VecDeque<ViewUpdate>,
}

impl Engine {
    /// A new engine. If `config.online`, it asks for a socket at once ([`Action::Connect`]).
    /// `seed` feeds the id generator and the backoff jitter: take it from
    /// `crypto.getRandomValues` so two tabs never mint the same ids.
    pub fn new(now: u64, config: Config, seed: u64) -> Self {
        let status = if config.online {
            ConnectionStatus::Connecting { attempt: 0 }
        } else {
            ConnectionStatus::Offline
        };
        let mut engine = Self {
            tenant_id: config.tenant_id,
            image_id: config.image_id,
            auth: config.auth,
            token: None,
            timing: config.timing,
            rng: Rng::new(seed),
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
            },
            dirty: false,
            ping_nonce: 0,
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            updates: VecDeque::new(),
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
            Op::DeleteChat(_) => None,
        }
    }

    // ----------------------------------------------------------------------------------------
    // Local ops
    // ----------------------------------------------------------------------------------------

    fn submit(&mut self, now: u64, cmd: Command) -> Result<OpRef, LocalError> {
        let broadcast_id = ids::broadcast_id(&mut self.rng);
        let op = match cmd {
            Command::CreateChat { x, y, text } => {
                validate_fraction(x)?;
                validate_fraction(y)?;
                validate_text(&text)?;
                Op::CreateChat(CreateChat {
                    broadcast_id,
                    chat_id: ids::chat_id(&mut self.rng),
                    anchor: Anchor::point(x, y),
                    comment_id: ids::comment_id(&mut self.rng),
                    text,
                })
            }
            Command::Reply { chat_id, text } => {
                validate_text(&text)?;
                let chat = self
                    .view
                    .chat(&chat_id)
                    .ok_or_else(|| LocalError::UnknownChat(chat_id.clone()))?;
                target_exists(&chat.state)?;
                Op::AddComment(AddComment {
                    broadcast_id,
                    chat_id,
                    comment_id: ids::comment_id(&mut self.rng),
                    text,
                })
            }
            Command::Edit {
                chat_id,
                comment_id,
                text,
            } => {
                validate_text(&text)?;
                let chat = self
                    .view
                    .chat(&chat_id)
                    .ok_or_else(|| LocalError::UnknownChat(chat_id.clone()))?;
                let comment = chat
                    .comments
                    .iter()
                    .find(|c| c.id == comment_id)
                    .ok_or_else(|| LocalError::UnknownComment(comment_id.clone()))?;
                target_exists(&chat.state)?;
                target_exists(&comment.state)?;
                if self.you.is_some() && !comment.can_edit {
                    return Err(LocalError::NotAllowed);
                }
                Op::EditComment(EditComment {
                    broadcast_id,
                    chat_id,
                    comment_id,
                    text,
                })
            }
            Command::Delete { chat_id } => {
                let chat = self
                    .view
                    .chat(&chat_id)
                    .ok_or_else(|| LocalError::UnknownChat(chat_id.clone()))?;
                target_exists(&chat.state)?;
                if self.you.is_some() && !chat.can_delete {
                    return Err(LocalError::NotAllowed);
                }
                Op::DeleteChat(DeleteChat {
                    broadcast_id,
                    chat_id,
                })
            }
            // Handled by `handle_local`.
            Command::Retry { op } | Command::Dismiss { op } => {
                return Err(LocalError::UnknownOp(op));
            }
        };
        self.own.insert(op.broadcast_id().clone());
        let author = self.optimistic_author();
        let progress = match self.live_conn() {
            Some(conn) => {
                self.transmits
                    .push_back(op.clone().into_message().to_json());
                Progress::Pending { conn }
            }
            None => Progress::Failed(self.not_live_reason()),
        };
        let local = LocalOp {
            op,
            progress,
            at: now,
            author,
        };
        let op_ref = local.op_ref();
        let failed = match local.progress {
            Progress::Failed(reason) => Some(reason),
            _ => None,
        };
        self.ops.push(local);
        self.dirty = true;
        match failed {
            Some(reason) => {
                self.report_failure(&op_ref, reason);
                Err(LocalError::NotConnected { op: op_ref, reason })
            }
            None => Ok(op_ref),
        }
    }

    fn retry(&mut self, id: BroadcastId) -> Result<OpRef, LocalError> {
        let live = self.live_conn();
        let not_live = self.not_live_reason();
        let Some(local) = self
            .ops
            .get_mut(&id)
            .filter(|o| matches!(o.progress, Progress::Failed(_)))
        else {
            return Err(LocalError::UnknownOp(id));
        };
        let op_ref = local.op_ref();
        self.dirty = true;
        match live {
            Some(conn) => {
                local.progress = Progress::Pending { conn };
                self.transmits
                    .push_back(local.op.clone().into_message().to_json());
                // Sent after everything else, so replayed after everything else.
                self.ops.move_to_end(&id);
                Ok(op_ref)
            }
            None => {
                local.progress = Progress::Failed(not_live);
                self.report_failure(&op_ref, not_live);
                Err(LocalError::NotConnected {
                    op: op_ref,
                    reason: not_live,
                })
            }
        }
    }

    fn dismiss(&mut self, id: &BroadcastId) -> Result<OpRef, LocalError> {
        match self.ops.get(id) {
            Some(op) if matches!(op.progress, Progress::Failed(_)) => {
                let op_ref = op.op_ref();
                self.ops.remove(id);
                self.dirty = true;
                Ok(op_ref)
            }
            _ => Err(LocalError::UnknownOp(id.clone())),
        }
    }

    fn optimistic_author(&self) -> User {
        if let Some(you) = &self.you {
            return you.clone();
        }
        let name = match &self.auth {
            Some(Auth::Anonymous { name, .. }) => name.clone(),
            _ => String::new(),
        };
        User {
            id: String::new(),
            name,
            avatar_url: None,
            is_moderator: false,
        }
    }

    fn not_live_reason(&self) -> FailReason {
        if self.browser_online {
            FailReason::NotConnected
        } else {
            FailReason::Offline
        }
    }

    fn report_failure(&mut self, op: &OpRef, reason: FailReason) {
        self.updates.push_back(ViewUpdate::OpFailed {
            op: op.op.clone(),
            kind: op.kind,
            reason,
        });
    }

    // ----------------------------------------------------------------------------------------
    // Connection lifecycle
    // ----------------------------------------------------------------------------------------

    fn current_conn(&self) -> Option<ConnectionId> {
        match self.link {
            Link::Connecting { conn, .. } | Link::Live { conn, .. } => Some(conn),
            _ => None,
        }
    }

    fn live_conn(&self) -> Option<ConnectionId> {
        match self.link {
            Link::Live { conn, .. } => Some(conn),
            _ => None,
        }
    }

    fn set_link(&mut self, link: Link) {
        self.link = link;
        let status = match &self.link {
            Link::Connecting { .. } => ConnectionStatus::Connecting {
                attempt: self.backoff.attempt(),
            },
            Link::Live { .. } => ConnectionStatus::Live,
            Link::Waiting { until } => ConnectionStatus::Reconnecting {
                next_attempt_at: *until,
                attempt: self.backoff.attempt(),
            },
            Link::Offline => ConnectionStatus::Offline,
            Link::Stopped(reason) => ConnectionStatus::Stopped(*reason),
        };
        if status != self.view.connection {
            self.view.connection = status;
            self.updates.push_back(ViewUpdate::Connection(status));
        }
    }

    fn start_attempt(&mut self, now: u64) {
        self.next_conn += 1;
        let conn = ConnectionId(self.next_conn);
        self.actions.push_back(Action::Connect { conn });
        self.set_link(Link::Connecting {
            conn,
            opened: false,
            deadline: now.saturating_add(self.timing.handshake_timeout_ms),
        });
    }

    /// Asks the widget to close the current socket, and forgets frames meant for it.
    fn close_current(&mut self, code: u16, reason: &'static str) {
        if let Some(conn) = self.current_conn() {
            self.actions.push_back(Action::Close { conn, code, reason });
        }
        self.transmits.clear();
    }

    /// The current socket is gone (or must go): close it if asked, then wait for the next
    /// attempt (or for the network).
    fn drop_connection(&mut self, now: u64, close: Option<(u16, &'static str)>) {
        match close {
            Some((code, reason)) => self.close_current(code, reason),
            None => self.transmits.clear(),
        }
        if self.browser_online {
            let delay = self.backoff.next_delay(&mut self.rng);
            self.set_link(Link::Waiting {
                until: now.saturating_add(delay),
            });
        } else {
            self.set_link(Link::Offline);
        }
    }

    /// Drops the socket to resynchronize; `snapshot` when our state cannot be trusted.
    fn resync(&mut self, now: u64, snapshot: bool) {
        self.need_snapshot |= snapshot;
        self.drop_connection(now, Some((CloseCode::Normal.code(), "resync")));
    }

    fn on_open(&mut self, _now: u64) {
        if let Link::Connecting { opened, .. } = &mut self.link {
            if *opened {
                return;
            }
            *opened = true;
            let hello = self.hello();
            self.transmits
                .push_back(ClientMessage::Hello(hello).to_json());
        }
    }

    /// A `hello` built from the current auth and position.
    fn hello(&self) -> Hello {
        let auth = match &self.auth {
            Some(Auth::Anonymous { name, token: None }) => Some(Auth::Anonymous {
                name: name.clone(),
                token: self.token.clone(),
            }),
            other => other.clone(),
        };
        Hello {
            protocol: PROTOCOL_VERSION,
            tenant_id: self.tenant_id.clone(),
            image_id: self.image_id.clone(),
            auth,
            resume: if self.need_snapshot {
                None
            } else {
                self.position
            },
        }
    }

    fn on_closed(&mut self, now: u64, code: u16) {
        let code = CloseCode::from_code(code);
        if code.should_reconnect() {
            self.drop_connection(now, None);
        } else {
            self.transmits.clear();
            self.set_link(Link::Stopped(StopReason::Refused(code)));
        }
    }

    // ----------------------------------------------------------------------------------------
    // Server frames
    // ----------------------------------------------------------------------------------------

    fn on_message(&mut self, now: u64, text: &str) {
        if let Link::Live { last_rx, .. } = &mut self.link {
            *last_rx = now;
        }
        // Frames we cannot parse (e.g. a message type from a newer server) are ignored: if one
        // was an event, the next event's `seq` reveals the gap and triggers a resync.
        let Ok(message) = ServerMessage::from_json(text) else {
            return;
        };
        match message {
            ServerMessage::Welcome(welcome) => {
                if matches!(self.link, Link::Connecting { opened: true, .. }) {
                    self.on_welcome(now, welcome);
                }
            }
            ServerMessage::NewImageChat(e) => {
                self.on_live_events(now, vec![Event::NewImageChat(e)])
            }
            ServerMessage::ImageChatUpdated(e) => {
                self.on_live_events(now, vec![Event::ImageChatUpdated(e)]);
            }
            ServerMessage::DeletedImageChat(e) => {
                self.on_live_events(now, vec![Event::DeletedImageChat(e)]);
            }
            ServerMessage::Batch(batch) => self.on_live_events(now, batch.events),
            ServerMessage::Ack(ack) => self.on_ack(&ack.broadcast_id, ack.seq),
            ServerMessage::Error(error) => self.on_error(error),
            ServerMessage::Presence(p) => self.set_online(p.online),
            ServerMessage::Pong(_) => {}
        }
    }

    fn set_online(&mut self, online: u32) {
        if online != self.view.online {
            self.view.online = online;
            self.updates.push_back(ViewUpdate::Online(online));
        }
    }

    fn on_live_events(&mut self, now: u64, events: Vec<Event>) {
        if !matches!(self.link, Link::Live { .. }) {
            return;
        }
        for event in events {
            match self.apply_event(&event) {
                Applied::Yes { announce } => {
                    if let Some(a) = announce {
                        self.updates.push_back(ViewUpdate::Announce(a));
                    }
                }
                Applied::Duplicate => {}
                Applied::Gap => return self.resync(now, false),
                Applied::Corrupt => return self.resync(now, true),
            }
        }
    }

    /// Applies one event in order to the confirmed state, settling our op if it is ours.
    fn apply_event(&mut self, event: &Event) -> Applied {
        let base = self.position.unwrap_or(Position {
            epoch: event.epoch(),
            seq: 0,
        });
        if event.epoch() != base.epoch {
            return Applied::Corrupt;
        }
        if event.seq() <= base.seq {
            return Applied::Duplicate;
        }
        if event.seq() != base.seq + 1 {
            return Applied::Gap;
        }
        // Announcement text needs the state before a delete and after an add.
        if self.state.apply(event).is_err() {
            return Applied::Corrupt;
        }
        self.position = Some(event.position());
        self.dirty = true;
        let id = event.broadcast_id();
        if self.ops.remove(id).is_some() || self.own.contains(id) {
            // Our own change: the confirmed state now holds it, the op is settled, and it is
            // neither applied twice nor announced.
            return Applied::Yes { announce: None };
        }
        Applied::Yes {
            announce: self.announcement(event),
        }
    }

    /// What to say about a remote event, unless the current person made it (another tab).
    fn announcement(&self, event: &Event) -> Option<Announcement> {
        let is_you = |user: &User| self.you.as_ref().is_some_and(|you| you.id == user.id);
        match event {
            Event::NewImageChat(e) => {
                let by = e.chat.author()?.clone();
                (!is_you(&by)).then(|| Announcement::NewChat {
                    chat_id: e.chat.id.clone(),
                    by,
                })
            }
            Event::ImageChatUpdated(e) => match &e.change {
                image_chat_protocol::ChatChange::CommentAdded { comment } => {
                    (!is_you(&comment.author)).then(|| Announcement::Reply {
                        chat_id: e.chat_id.clone(),
                        comment_id: comment.id.clone(),
                        by: comment.author.clone(),
                    })
                }
                image_chat_protocol::ChatChange::CommentEdited { comment_id, .. } => {
                    let by = self
                        .state
                        .chat(&e.chat_id)?
                        .comments
                        .iter()
                        .find(|c| &c.id == comment_id)?
                        .author
                        .clone();
                    (!is_you(&by)).then(|| Announcement::Edited {
                        chat_id: e.chat_id.clone(),
                        comment_id: comment_id.clone(),
                        by,
                    })
                }
                #[allow(unreachable_patterns)]
                _ => None,
            },
            Event::DeletedImageChat(e) => Some(Announcement::Deleted {
                chat_id: e.chat_id.clone(),
            }),
        }
    }

    fn on_welcome(&mut self, now: u64, welcome: Welcome) {
        let Link::Connecting { conn, .. } = self.link else {
            return;
        };
        let reconnect = self.position.is_some();
        self.you = Some(welcome.you);
        if welcome.token.is_some() {
            self.token = welcome.token;
        }
        self.set_online(welcome.online);
        self.dirty = true;

        let resumed = welcome.recovered && !self.need_snapshot && self.position.is_some();
        let mut announcements = Vec::new();
        if resumed {
            for event in &welcome.events {
                match self.apply_event(event) {
                    Applied::Yes { announce } => announcements.extend(announce),
                    Applied::Duplicate => {}
                    Applied::Gap | Applied::Corrupt => return self.resync(now, true),
                }
            }
            if self.position != Some(welcome.position) {
                // The server claims a position the events did not bring us to.
                return self.resync(now, true);
            }
            // Committed ops had their events among the missed ones (and are settled); an op
            // still pending never reached the log.
        } else {
            let snapshot = welcome.snapshot.unwrap_or_default();
            self.state = ImageState::from_snapshot(snapshot);
            self.position = Some(welcome.position);
            self.need_snapshot = false;
            // An acknowledged op is in the snapshot (or was undone since by someone else); an
            // in-flight one is committed iff its effect is visible.
            let state = &self.state;
            // Discussions that exist only as our failed (or now failing) creates: a delete of
            // one is not "done" just because the snapshot lacks it.
            let mut unborn: Vec<ChatId> = Vec::new();
            self.ops.retain(|op| {
                let keep = match op.progress {
                    Progress::Acked { .. } => false,
                    Progress::Pending { .. } => !effect_visible(state, &op.op, &unborn),
                    Progress::Failed(_) => true,
                };
                if keep {
                    if let Op::CreateChat(create) = &op.op {
                        unborn.push(create.chat_id.clone());
                    }
                }
                keep
            });
            if reconnect {
                announcements.push(Announcement::Caught { changes: 0 });
            }
        }
        let mut lost = Vec::new();
        for op in self.ops.iter_mut() {
            if matches!(op.progress, Progress::Pending { .. }) {
                op.progress = Progress::Failed(FailReason::ConnectionLost);
                lost.push(op.op_ref());
            }
        }
        for op in &lost {
            self.report_failure(op, FailReason::ConnectionLost);
        }
        self.settle_acked();
        if announcements.len() > MAX_INDIVIDUAL_CATCH_UP_ANNOUNCEMENTS {
            announcements = vec![Announcement::Caught {
                changes: announcements.len(),
            }];
        }
        self.updates
            .extend(announcements.into_iter().map(ViewUpdate::Announce));
        self.backoff.reset();
        self.set_link(Link::Live {
            conn,
            last_rx: now,
            next_ping: now.saturating_add(self.timing.ping_interval_ms),
        });
    }

    /// Drops acknowledged ops whose change the confirmed state already includes.
    fn settle_acked(&mut self) {
        let seq = self.position.map_or(0, |p| p.seq);
        let before = self.ops.len();
        self.ops
            .retain(|op| !matches!(op.progress, Progress::Acked { seq: s } if s <= seq));
        self.dirty |= self.ops.len() != before;
    }

    fn on_ack(&mut self, id: &BroadcastId, seq: u64) {
        if let Some(op) = self.ops.get_mut(id) {
            op.progress = Progress::Acked { seq };
            self.dirty = true;
        }
        self.settle_acked();
    }

    fn on_error(&mut self, error: ErrorFrame) {
        let Some(id) = error.broadcast_id else {
            // Errors about the session itself come with a close code, which decides.
            return;
        };
        let Some(op) = self
            .ops
            .get_mut(&id)
            .filter(|o| matches!(o.progress, Progress::Pending { .. }))
        else {
            return;
        };
        let reason = FailReason::Server(error.code);
        op.progress = Progress::Failed(reason);
        let op_ref = op.op_ref();
        self.dirty = true;
        self.report_failure(&op_ref, reason);
    }

    // ----------------------------------------------------------------------------------------
    // View
    // ----------------------------------------------------------------------------------------

    fn refresh_view(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let chats = view::build(&self.state, &self.ops, self.you.as_ref());
        view::diff(&self.view.chats, &chats, &mut self.updates);
        self.view.chats = chats;
    }
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

/// Refuses ops on a discussion or comment that only exists as our failed create / reply: the
/// server does not know it, so the op could only fail (or, for a delete, look confirmed
/// without ever having been committed).
fn target_exists(state: &OpState) -> Result<(), LocalError> {
    match state {
        OpState::Failed {
            op,
            kind: OpKind::CreateChat | OpKind::Reply,
            ..
        } => Err(LocalError::TargetFailed(op.clone())),
        _ => Ok(()),
    }
}

/// Whether a snapshot shows the effect of `op` (used to settle an op in flight at a drop).
/// A delete whose discussion is gone counts as done even if someone else deleted it first: what
/// the person asked for holds, and nothing is left to retry.
/// `unborn` lists discussions whose creation by us was not committed.
fn effect_visible(state: &ImageState, op: &Op, unborn: &[ChatId]) -> bool {
    let comment = |chat_id: &ChatId, comment_id: &CommentId| {
        state
            .chat(chat_id)
            .and_then(|chat| chat.comments.iter().find(|c| &c.id == comment_id))
    };
    match op {
        Op::CreateChat(o) => comment(&o.chat_id, &o.comment_id).is_some(),
        Op::AddComment(o) => comment(&o.chat_id, &o.comment_id).is_some(),
        Op::EditComment(o) => comment(&o.chat_id, &o.comment_id).is_some_and(|c| c.text == o.text),
        Op::DeleteChat(o) => state.chat(&o.chat_id).is_none() && !unborn.contains(&o.chat_id),
    }
}
