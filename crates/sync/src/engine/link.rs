//! The socket lifecycle: asking for sockets, `hello`, closing, backoff waits, and the
//! connection status that follows from them.

use image_chat_protocol::{Auth, ClientMessage, CloseCode, Hello, PROTOCOL_VERSION};

use super::{Engine, Link};
use crate::connection::{Action, ConnectionId, ConnectionStatus, StopReason};
use crate::view::ViewUpdate;

impl Engine {
    pub(super) fn current_conn(&self) -> Option<ConnectionId> {
        match self.link {
            Link::Connecting { conn, .. } | Link::Live { conn, .. } => Some(conn),
            _ => None,
        }
    }

    pub(super) fn live_conn(&self) -> Option<ConnectionId> {
        match self.link {
            Link::Live { conn, .. } => Some(conn),
            _ => None,
        }
    }

    pub(super) fn set_link(&mut self, link: Link) {
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

    pub(super) fn start_attempt(&mut self, now: u64) {
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
    pub(super) fn close_current(&mut self, code: u16, reason: &'static str) {
        if let Some(conn) = self.current_conn() {
            self.actions.push_back(Action::Close { conn, code, reason });
        }
        self.transmits.clear();
    }

    /// The current socket is gone (or must go): close it if asked, then wait for the next
    /// attempt (or for the network).
    pub(super) fn drop_connection(&mut self, now: u64, close: Option<(u16, &'static str)>) {
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
    pub(super) fn resync(&mut self, now: u64, snapshot: bool) {
        self.need_snapshot |= snapshot;
        self.drop_connection(now, Some((CloseCode::Normal.code(), "resync")));
    }

    pub(super) fn on_open(&mut self, _now: u64) {
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
    pub(super) fn hello(&self) -> Hello {
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
            subject: self.subject.clone(),
            auth,
            resume: if self.need_snapshot {
                None
            } else {
                self.position
            },
        }
    }

    pub(super) fn on_closed(&mut self, now: u64, code: u16) {
        let code = CloseCode::from_code(code);
        if code.should_reconnect() {
            self.drop_connection(now, None);
        } else {
            self.transmits.clear();
            self.set_link(Link::Stopped(StopReason::Refused(code)));
        }
    }
}
