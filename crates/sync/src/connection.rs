//! The vocabulary between the engine and the socket it does not own: which socket an event is
//! about ([`ConnectionId`]), what the socket reported ([`TransportEvent`]), what the engine wants
//! done with sockets ([`Action`]) and the connection status shown to people
//! ([`ConnectionStatus`]).
//!
//! Every socket the engine asks for gets a fresh [`ConnectionId`]. The widget passes it back with
//! each event, so a late `close` from a socket the engine already abandoned cannot be mistaken
//! for the current one's.

use image_chat_protocol::CloseCode;

/// Names one socket the engine asked the widget to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// What a socket reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportEvent {
    /// The socket opened (`open`); the engine will queue `hello`.
    Opened,
    /// A text frame arrived (`message`).
    Message(String),
    /// The socket closed (`close`) with this code (1006 when it dropped without a close frame).
    Closed {
        /// The WebSocket close code.
        code: u16,
    },
    /// The socket reported an error (`error`). Browsers always follow it with `close`, which
    /// carries the code that decides between retrying and giving up, so the engine waits for
    /// that; a socket that never closes is caught by the handshake / silence timeouts.
    Error,
}

/// Something the engine wants done with a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a new WebSocket to the server; report its events with `conn`.
    Connect {
        /// The id to report this socket's events with.
        conn: ConnectionId,
    },
    /// Close this socket with this code and reason, and detach its handlers.
    Close {
        /// Which socket.
        conn: ConnectionId,
        /// Close code (1000, or 4001 when the connection went silent).
        code: u16,
        /// Close reason (short ASCII).
        reason: &'static str,
    },
}

/// Why the engine stopped for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The server closed with a code that means "do not retry" (4400, 4401, 4403, 4404).
    Refused(CloseCode),
    /// [`crate::Engine::destroy`] was called.
    Destroyed,
}

impl StopReason {
    /// Whether the server could not authenticate the person (close 4401). The widget may supply
    /// new auth with [`crate::Engine::set_auth`], which starts connecting again.
    pub fn is_auth_failure(self) -> bool {
        matches!(self, StopReason::Refused(CloseCode::AuthenticationFailed))
    }
}

/// The connection as people should see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// A socket is being opened, or `hello` was sent and `welcome` is awaited. `attempt` counts
    /// failed attempts since the last successful resync (0 on the very first connection).
    Connecting {
        /// Failed attempts so far.
        attempt: u32,
    },
    /// Welcomed and in sync: changes flow both ways.
    Live,
    /// Waiting before the next attempt, which happens at `next_attempt_at` (same clock as
    /// `now`), so the UI can show "next attempt in N s".
    Reconnecting {
        /// When the next attempt starts.
        next_attempt_at: u64,
        /// Failed attempts so far.
        attempt: u32,
    },
    /// The browser reports no network; the engine waits for the `online` signal.
    Offline,
    /// Given up for good (terminal close code, or destroyed).
    Stopped(StopReason),
}

impl ConnectionStatus {
    /// The overlay's `data-state` value from the DOM contract: `connecting`, `live`,
    /// `reconnecting` (also for a retry attempt in progress) or `offline` (also when stopped;
    /// use [`Self::stopped`] to tell the difference).
    pub fn data_state(self) -> &'static str {
        match self {
            ConnectionStatus::Connecting { attempt: 0 } => "connecting",
            ConnectionStatus::Connecting { .. } | ConnectionStatus::Reconnecting { .. } => {
                "reconnecting"
            }
            ConnectionStatus::Live => "live",
            ConnectionStatus::Offline | ConnectionStatus::Stopped(_) => "offline",
        }
    }

    /// Whether ops can be sent now.
    pub fn is_live(self) -> bool {
        matches!(self, ConnectionStatus::Live)
    }

    /// Why the engine stopped, if it did.
    pub fn stopped(self) -> Option<StopReason> {
        match self {
            ConnectionStatus::Stopped(reason) => Some(reason),
            _ => None,
        }
    }
}
