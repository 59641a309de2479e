//! One simulated widget: a real WebSocket client that says `hello`, reads `welcome`, optionally
//! publishes ops when told to, and measures every event it receives.
//!
//! Latency without a shared map: a publisher stamps each op's `broadcastId` (a valid UUID v4,
//! in the protocol's base64url form) with its send instant (nanoseconds on this process's
//! monotonic clock) and a counter. A
//! subscriber finds every `"broadcastId":"…"` in an event frame (one per event, batches
//! included; JSON escaping guarantees the pattern cannot occur inside comment text), decodes the
//! instant and records `now - sent`. Publisher and subscribers live in this process, so the
//! clock is the same.
//!
//! Over wss:// ([`Endpoint::tls`]) the socket is the same type ([`Ws`], its `Rustls` variant);
//! the plain path connects exactly as without TLS support.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::ids::{ID_LEN, decode_id, encode_uuid_v4};
use image_chat_protocol::{
    AddComment, Anchor, Auth, BroadcastId, ChatId, ClientMessage, CommentId, CreateChat,
    DeleteChat, Hello, ImageId, Position, ServerMessage, TenantId, Welcome,
};
use image_chat_sync::rng::Rng;
use memchr::memmem;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::peer::{Kind, Protocol};

/// A client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where image-chat clients connect.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The server's (loopback) address: TCP always goes here, with or without TLS.
    pub addr: SocketAddr,
    /// wss:// to [`crate::tls::NAME`] with this configuration (it trusts the server's
    /// certificate); ws:// when `None`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Bound on a connection attempt (TCP + upgrade + hello/welcome).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a peer's handshake step waits for its answer before sending its frame again.
const JOIN_RETRY: Duration = Duration::from_secs(2);
/// Keepalive, as the widget does.
const PING_EVERY: Duration = Duration::from_secs(25);

static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's clock base (monotonic).
pub fn now_ns() -> u64 {
    u64::try_from(BASE.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A prefix that makes this run's chat / comment ids unique (for runs against a kept server).
fn run_prefix() -> u32 {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    *PREFIX.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0)
    })
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh UUID v4 id (wire form), unique within this run: the run prefix, then a counter.
fn fresh_id() -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&run_prefix().to_be_bytes());
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    encode_uuid_v4(bytes)
}

/// A `broadcastId` carrying its send instant: bytes 0..6 hold the instant's low 48 bits
/// (78 hours of nanoseconds, clear of the version and variant bits in bytes 6 and 8), bytes
/// 10..16 a counter, so the id is still a valid, unique UUID v4.
pub fn stamped_broadcast_id(sent_ns: u64) -> BroadcastId {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&sent_ns.to_be_bytes()[2..]);
    bytes[10..].copy_from_slice(&n.to_be_bytes()[2..]);
    BroadcastId::new(encode_uuid_v4(bytes))
}

/// The send instant in a stamped `broadcastId` (the id's first 22 characters).
fn sent_ns(id: &str) -> Option<u64> {
    let bytes = decode_id(id.get(..ID_LEN)?)?;
    let mut instant = [0u8; 8];
    instant[2..].copy_from_slice(&bytes[..6]);
    Some(u64::from_be_bytes(instant))
}

/// Whether an image-chat text frame carries events (one, or a batch).
pub fn is_event_frame(text: &str) -> bool {
    Protocol::ImageChat.classify(text) == Kind::Events
}

/// Records the latency of every event in an event frame; returns how many it holds.
pub fn record_events(text: &str, now: u64, latencies_us: &mut Vec<u32>) -> u64 {
    const KEY: &str = r#""broadcastId":""#;
    // Built once: `str::find` sets up its searcher on every call, which cost more than the
    // search itself (twice per frame: the hit and the final miss).
    static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(KEY));
    let mut count = 0;
    let mut rest = text;
    while let Some(at) = FINDER.find(rest.as_bytes()) {
        rest = &rest[at + KEY.len()..];
        count += 1;
        if let Some(sent) = sent_ns(rest) {
            let us = now.saturating_sub(sent) / 1000;
            latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
    count
}

/// The position after the events of an event frame (the last `seq` and its `epoch`).
pub fn last_position(text: &str) -> Option<Position> {
    fn number_after(text: &str, key: &str) -> Option<u64> {
        let at = text.rfind(key)? + key.len();
        let digits: String = text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }
    // In an event, `seq` and `epoch` come first; in a batch, the last event's come last.
    let seq = number_after(text, r#""seq":"#)?;
    let epoch = number_after(text, r#""epoch":"#)?;
    Some(Position {
        epoch: u32::try_from(epoch).ok()?,
        seq,
    })
}

/// The `hello` of an anonymous person on the demo tenant.
pub fn hello(image: &str, resume: Option<Position>) -> ClientMessage {
    ClientMessage::Hello(Hello {
        protocol: image_chat_protocol::PROTOCOL_VERSION,
        tenant_id: TenantId::new("demo"),
        subject: ImageId::new(image).into(),
        auth: Some(Auth::Anonymous {
            name: "Ada".into(),
            token: None,
        }),
        resume,
    })
}

/// Client socket settings: small buffers (thousands of clients live in this process) and
/// frames written at once. The read buffer is also the most the transport reads per call, and
/// it zero-fills that much before every read attempt (two per frame: the one that gets it and
/// the one that finds the socket empty); with 8 KiB that zeroing was a third of this process's
/// instructions. 1 KiB holds an event frame (~400 B) or a small batch whole; larger frames
/// take a few reads, and are timed when their last byte is read either way.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
}

/// Stops a set of clients: each gets its own one-shot receiver, and dropping this stops them
/// all. One receiver per client, not a shared `watch`: every client polls its stop signal each
/// time it wakes (once per frame received), and a `watch` registers each poll in one waiter
/// list behind a mutex shared by all clients; a one-shot receiver only stores the waker.
#[derive(Default)]
pub struct StopAll(Vec<oneshot::Sender<()>>);

impl StopAll {
    /// The stop signal of one more client.
    pub fn signal(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.0.push(tx);
        rx
    }
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// TCP or WebSocket upgrade failed (e.g. the server is down).
    Transport(String),
    /// The server closed or answered something else than `welcome`.
    Refused(String),
    /// No `welcome` within [`CONNECT_TIMEOUT`].
    Timeout,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Transport(e) => write!(f, "transport: {e}"),
            ConnectError::Refused(e) => write!(f, "refused: {e}"),
            ConnectError::Timeout => f.write_str("timed out"),
        }
    }
}

/// Opens the WebSocket (TCP, TLS if the endpoint says so, upgrade), with Nagle off either way.
pub async fn open_socket(endpoint: &Endpoint) -> Result<Ws, ConnectError> {
    let transport =
        |e: tokio_tungstenite::tungstenite::Error| ConnectError::Transport(e.to_string());
    let Some(tls) = &endpoint.tls else {
        let url = format!("ws://{}/ws", endpoint.addr);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
            .await
            .map_err(transport)?;
        return Ok(ws);
    };
    // Not `connect_async` with the wss:// URL: that would look the name up (and might try
    // ::1 first); TCP goes to the server's address, the name only serves SNI and the check.
    let io = |e: std::io::Error| ConnectError::Transport(e.to_string());
    let tcp = TcpStream::connect(endpoint.addr).await.map_err(io)?;
    tcp.set_nodelay(true).map_err(io)?;
    let url = format!("wss://{}:{}/ws", crate::tls::NAME, endpoint.addr.port());
    let connector = Connector::Rustls(Arc::clone(tls));
    let (ws, _) = tokio_tungstenite::client_async_tls_with_config(
        url,
        tcp,
        Some(ws_config()),
        Some(connector),
    )
    .await
    .map_err(transport)?;
    Ok(ws)
}

/// Opens a socket, says hello and waits for `welcome`.
pub async fn connect(
    endpoint: &Endpoint,
    image: &str,
    resume: Option<Position>,
) -> Result<(Ws, Welcome), ConnectError> {
    let attempt = async {
        let mut ws = open_socket(endpoint).await?;
        ws.send(Message::text(hello(image, resume).to_json()))
            .await
            .map_err(|e| ConnectError::Transport(e.to_string()))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => match ServerMessage::from_json(&text) {
                    Ok(ServerMessage::Welcome(welcome)) => return Ok((ws, welcome)),
                    Ok(ServerMessage::Presence(_)) => continue,
                    _ => return Err(ConnectError::Refused(text.to_string())),
                },
                Some(Ok(Message::Close(frame))) => {
                    return Err(ConnectError::Refused(format!("closed: {frame:?}")));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ConnectError::Transport(e.to_string())),
                None => return Err(ConnectError::Transport("socket ended".into())),
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or(Err(ConnectError::Timeout))
}

/// Opens a socket to a peer server (`bench/peers`) and joins the image's room, answering
/// heartbeats on the way. image-chat itself: [`connect`].
pub async fn connect_peer(
    protocol: Protocol,
    addr: SocketAddr,
    image: &str,
) -> Result<Ws, ConnectError> {
    let attempt = async {
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
            protocol.url(addr),
            Some(ws_config()),
            true,
        )
        .await
        .map_err(|e| ConnectError::Transport(e.to_string()))?;
        for (send, answer) in protocol.join_steps(image) {
            if let Some(frame) = &send {
                ws.send(Message::text(frame.as_str()))
                    .await
                    .map_err(|e| ConnectError::Transport(e.to_string()))?;
            }
            loop {
                // socketioxide sends its CONNECT answer before its connect handler has
                // registered the event handlers, so a `join` sent at once is sometimes dropped
                // (never acknowledged): it is sent again after a while (joining twice is
                // harmless; a late second acknowledgement is ignored).
                let Ok(next) = tokio::time::timeout(JOIN_RETRY, ws.next()).await else {
                    if let Some(frame) = &send {
                        ws.send(Message::text(frame.as_str()))
                            .await
                            .map_err(|e| ConnectError::Transport(e.to_string()))?;
                    }
                    continue;
                };
                match next {
                    Some(Ok(Message::Text(text))) if text.starts_with(answer) => break,
                    Some(Ok(Message::Text(text))) if protocol.classify(&text) == Kind::Ping => {
                        ws.send(Message::text(protocol.pong()))
                            .await
                            .map_err(|e| ConnectError::Transport(e.to_string()))?;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Err(ConnectError::Refused(format!("closed: {frame:?}")));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(ConnectError::Transport(e.to_string())),
                    None => return Err(ConnectError::Transport("socket ended".into())),
                }
            }
        }
        Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or(Err(ConnectError::Timeout))
}

/// Opens a socket to any server and joins the image (image-chat: `hello`, no resume; peers
/// speak ws:// only).
pub async fn open(
    protocol: Protocol,
    endpoint: &Endpoint,
    image: &str,
) -> Result<Ws, ConnectError> {
    match protocol {
        Protocol::ImageChat => connect(endpoint, image, None).await.map(|(ws, _)| ws),
        peer => connect_peer(peer, endpoint.addr, image).await,
    }
}

/// What a publisher is told to do.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// Create a discussion (marker + first comment).
    Create,
    /// Reply to this publisher's latest discussion (creates one if it has none).
    Reply,
    /// Delete this publisher's latest discussion (creates one if it has none).
    Delete,
}

/// What one client measured.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Latency of every event received, in µs.
    pub latencies_us: Vec<u32>,
    /// Publish → ack latency of every op acknowledged, in µs.
    pub ack_latencies_us: Vec<u32>,
    /// Events received (a batch counts each of its events).
    pub events: u64,
    /// Frames carrying events.
    pub event_frames: u64,
    /// Payload bytes of those frames.
    pub event_bytes: u64,
    /// Ops sent.
    pub ops: u64,
    /// Acks received.
    pub acks: u64,
    /// Error frames received.
    pub errors: u64,
    /// The close code, if the server closed the connection.
    pub closed: Option<u16>,
}

/// A live client: reads until told to stop, publishing the ops it is sent.
pub async fn run(
    protocol: Protocol,
    mut ws: Ws,
    seed: u64,
    mut ops: Option<mpsc::Receiver<Op>>,
    mut stop: oneshot::Receiver<()>,
) -> ClientStats {
    let mut stats = ClientStats::default();
    let mut rng = Rng::new(seed);
    let mut chats: Vec<ChatId> = Vec::new();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut nonce = 0;
    loop {
        let next_op = async {
            match ops.as_mut() {
                Some(ops) => ops.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // The socket first: the receive instant is taken as soon as the task runs, and the
            // other branches are not polled on the wakes that only the socket caused.
            biased;
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let now = now_ns();
                    match protocol.classify(&text) {
                        Kind::Events => {
                            stats.event_frames += 1;
                            stats.event_bytes += text.len() as u64;
                            stats.events += record_events(&text, now, &mut stats.latencies_us);
                        }
                        Kind::Ack => {
                            stats.acks += 1;
                            record_events(&text, now, &mut stats.ack_latencies_us);
                        }
                        Kind::Error => stats.errors += 1,
                        Kind::Ping => {
                            if ws.send(Message::text(protocol.pong())).await.is_err() {
                                break;
                            }
                        }
                        Kind::Other => {}
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    stats.closed = Some(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    stats.closed.get_or_insert(1006);
                    break;
                }
            },
            _ = &mut stop => break,
            _ = ping.tick(), if protocol == Protocol::ImageChat => {
                nonce += 1;
                if ws.send(Message::text(ClientMessage::Ping { nonce }.to_json())).await.is_err() {
                    break;
                }
            }
            op = next_op => {
                let Some(op) = op else {
                    ops = None;
                    continue;
                };
                let message = make_op(op, &mut rng, &mut chats);
                stats.ops += 1;
                let frame = protocol.op_frame(&message.to_json(), stats.ops);
                if ws.send(Message::text(frame)).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = ws.close(None).await;
    stats
}

/// A realistic comment: short, like most are.
pub const TEXT: &str = "Love the light on the water here.";

/// Builds the op, stamping its send instant into the `broadcastId`.
pub fn make_op(op: Op, rng: &mut Rng, chats: &mut Vec<ChatId>) -> ClientMessage {
    let broadcast_id = stamped_broadcast_id(now_ns());
    let latest = chats.last().cloned();
    match (op, latest) {
        (Op::Reply, Some(chat_id)) => ClientMessage::AddComment(AddComment {
            broadcast_id,
            chat_id,
            comment_id: CommentId::new(fresh_id()),
            text: "Agreed, the reflections are great.".into(),
        }),
        (Op::Delete, Some(chat_id)) => {
            chats.pop();
            ClientMessage::DeleteChat(DeleteChat {
                broadcast_id,
                chat_id,
            })
        }
        _ => {
            let chat_id = ChatId::new(fresh_id());
            chats.push(chat_id.clone());
            // 5 significant decimals, as the server stores them.
            let x = rng.below_or_equal(100_000) as f64 / 100_000.0;
            let y = rng.below_or_equal(100_000) as f64 / 100_000.0;
            ClientMessage::CreateChat(CreateChat {
                broadcast_id,
                chat_id,
                anchor: Anchor::point(x, y),
                text: TEXT.into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn stamped_ids_are_valid_uuids_and_carry_their_instant() {
        for t in [0u64, 1, 123_456_789, (1 << 48) - 1] {
            let id = stamped_broadcast_id(t);
            assert!(id.validate().is_ok(), "{}", id.as_str());
            let bytes = decode_id(id.as_str()).unwrap();
            assert_eq!((bytes[6] >> 4, bytes[8] >> 6), (4, 0b10), "a UUID v4");
            assert_eq!(sent_ns(id.as_str()), Some(t));
        }
        assert_ne!(stamped_broadcast_id(7), stamped_broadcast_id(7));
        let fresh = ChatId::new(fresh_id());
        assert!(fresh.validate().is_ok(), "{fresh}");
    }

    #[test]
    fn events_are_found_in_single_frames_and_batches() {
        let id = stamped_broadcast_id(1_000_000);
        let frame = format!(
            r#"{{"type":"batch","events":[{{"type":"deleted-image-chat","seq":4,"epoch":9,"broadcastId":"{0}","chatId":"x"}},{{"type":"deleted-image-chat","seq":5,"epoch":9,"broadcastId":"{0}","chatId":"y"}}]}}"#,
            id.as_str()
        );
        assert!(is_event_frame(&frame));
        let mut lat = Vec::new();
        assert_eq!(record_events(&frame, 3_000_000, &mut lat), 2);
        assert_eq!(lat, vec![2000, 2000]);
        assert_eq!(last_position(&frame), Some(Position { epoch: 9, seq: 5 }));
        assert!(!is_event_frame(r#"{"type":"presence","online":3}"#));
    }
}
