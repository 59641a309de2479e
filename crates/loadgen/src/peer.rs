//! The wire of each server the load generator can drive: image-chat's own protocol, and the
//! two protocols of the peers it is compared with (`bench/peers`, docs/BENCHMARKS.md "Peers"):
//! Socket.IO (Engine.IO 4 / Socket.IO 5 over a WebSocket: the Node server and socketioxide) and
//! the plain relay's minimal JSON. Every peer has the benchmark's behaviour: a room per image,
//! an op is acknowledged to its sender with its own `broadcastId` and broadcast to the room, the
//! sender included. The op itself is image-chat's JSON in every case, so the `broadcastId`
//! timestamp (see [`crate::client`]) times deliveries and acks the same way for all servers.
//!
//! This module is pure: URLs, frame building and frame classification; the sockets are
//! [`crate::client`]'s.

use std::net::SocketAddr;

/// The wire a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// image-chat's protocol (`hello` / `welcome`, ops, events, acks).
    ImageChat,
    /// Socket.IO v5 over Engine.IO v4, WebSocket transport, default namespace: `join` and `op`
    /// events with acks, `event` broadcasts.
    SocketIo,
    /// The plain relay: `{"type":"join","room":…}` → `{"type":"joined"}`; an op → an `ack`
    /// and an `event` to the room.
    Relay,
}

/// What a received text frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One or more events (each carries its op's `broadcastId`).
    Events,
    /// The acknowledgement of one of our ops (carries its `broadcastId`).
    Ack,
    /// The server refused something.
    Error,
    /// A heartbeat the client must answer with [`Protocol::pong`].
    Ping,
    /// Anything else (presence, handshake leftovers).
    Other,
}

const IMAGE_CHAT_EVENTS: [&str; 4] = [
    r#"{"type":"new-image-chat""#,
    r#"{"type":"image-chat-updated""#,
    r#"{"type":"deleted-image-chat""#,
    r#"{"type":"batch""#,
];

impl Protocol {
    /// The WebSocket URL of a server at `addr`.
    pub fn url(self, addr: SocketAddr) -> String {
        match self {
            Protocol::ImageChat | Protocol::Relay => format!("ws://{addr}/ws"),
            Protocol::SocketIo => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
        }
    }

    /// What a text frame from the server is.
    pub fn classify(self, text: &str) -> Kind {
        match self {
            Protocol::ImageChat => {
                if IMAGE_CHAT_EVENTS.iter().any(|p| text.starts_with(p)) {
                    Kind::Events
                } else if text.starts_with(r#"{"type":"ack""#) {
                    Kind::Ack
                } else if text.starts_with(r#"{"type":"error""#) {
                    Kind::Error
                } else {
                    Kind::Other
                }
            }
            Protocol::SocketIo => match text.as_bytes() {
                [b'4', b'2', ..] => Kind::Events,
                // Acknowledgement id 0 is the join's (a repeated join's late answer).
                [b'4', b'3', b'0', b'[', ..] => Kind::Other,
                [b'4', b'3', ..] => Kind::Ack,
                [b'4', b'4', ..] => Kind::Error,
                [b'2'] => Kind::Ping,
                _ => Kind::Other,
            },
            Protocol::Relay => {
                if text.starts_with(r#"{"type":"event""#) {
                    Kind::Events
                } else if text.starts_with(r#"{"type":"ack""#) {
                    Kind::Ack
                } else {
                    Kind::Other
                }
            }
        }
    }

    /// The answer to a [`Kind::Ping`] frame.
    pub fn pong(self) -> &'static str {
        "3"
    }

    /// The frame that sends `op` (image-chat's JSON) with acknowledgement id `ack_id` (used by
    /// Socket.IO only; ids from 1, 0 is the join's).
    pub fn op_frame(self, op_json: &str, ack_id: u64) -> String {
        match self {
            Protocol::ImageChat | Protocol::Relay => op_json.to_owned(),
            Protocol::SocketIo => format!(r#"42{ack_id}["op",{op_json}]"#),
        }
    }

    /// The handshake after the WebSocket opened, as (frame to send once the previous step's
    /// answer arrived, prefix of that answer) pairs: joining the image's room, acknowledged.
    /// image-chat's own handshake (`hello` → `welcome`) is [`crate::client::connect`]'s.
    pub fn join_steps(self, image: &str) -> Vec<(Option<String>, &'static str)> {
        let room = serde_json::Value::from(image).to_string();
        match self {
            Protocol::ImageChat => Vec::new(),
            // Open packet first (`0{…}`), then connect to the default namespace, then join.
            Protocol::SocketIo => vec![
                (None, "0"),
                (Some("40".into()), "40"),
                (Some(format!(r#"420["join",{room}]"#)), "430"),
            ],
            Protocol::Relay => vec![(
                Some(format!(r#"{{"type":"join","room":{room}}}"#)),
                r#"{"type":"joined"}"#,
            )],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_classified_per_protocol() {
        let io = Protocol::SocketIo;
        assert_eq!(
            io.classify(r#"42["event",{"broadcastId":"x"}]"#),
            Kind::Events
        );
        assert_eq!(io.classify(r#"437[{"broadcastId":"x"}]"#), Kind::Ack);
        assert_eq!(io.classify("2"), Kind::Ping);
        assert_eq!(io.classify(r#"430["ok"]"#), Kind::Other);
        assert_eq!(io.classify(r#"40{"sid":"a"}"#), Kind::Other);
        let relay = Protocol::Relay;
        assert_eq!(relay.classify(r#"{"type":"event","op":{}}"#), Kind::Events);
        assert_eq!(
            relay.classify(r#"{"type":"ack","broadcastId":"x"}"#),
            Kind::Ack
        );
        let ic = Protocol::ImageChat;
        assert_eq!(ic.classify(r#"{"type":"batch","events":[]}"#), Kind::Events);
        assert_eq!(
            ic.classify(r#"{"type":"ack","broadcastId":"x","seq":1}"#),
            Kind::Ack
        );
        assert_eq!(
            ic.classify(r#"{"type":"presence","online":3}"#),
            Kind::Other
        );
    }

    #[test]
    fn ops_and_joins_are_framed_per_protocol() {
        assert_eq!(Protocol::SocketIo.op_frame("{}", 3), r#"423["op",{}]"#);
        assert_eq!(Protocol::Relay.op_frame("{}", 3), "{}");
        let steps = Protocol::SocketIo.join_steps("img-\"1");
        assert_eq!(steps[2].0.as_deref(), Some(r#"420["join","img-\"1"]"#));
        assert_eq!(
            Protocol::Relay.join_steps("a")[0].0.as_deref(),
            Some(r#"{"type":"join","room":"a"}"#)
        );
    }
}
