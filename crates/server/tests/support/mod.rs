//! Test support: a real server on 127.0.0.1:0 over a SQLite file in a temp dir, and a small
//! protocol client over real WebSockets (tokio-tungstenite), ws:// or wss:// ([`wss`]). Every
//! wait is bounded.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

pub mod api;
pub mod process;
pub mod wss;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::{
    AddComment, Anchor, Auth, BroadcastId, ChatId, ClientMessage, CommentId, CreateChat,
    DeleteChat, EditComment, Event, Hello, ImageId, Position, ServerMessage, TenantId, Welcome,
};
use image_chat_server::app::SessionLimits;
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::http::StaticDirs;
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::tenant::Tenants;
use image_chat_server::{RunningServer, Security, ServerParts};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Bound on every wait in these tests: generous for a loaded CI machine, finite so a bug fails
/// the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(10);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh canonical id (a UUID v4 in its wire form, unique within the test process).
pub fn new_id() -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    image_chat_protocol::ids::encode_uuid_v4(bytes)
}

pub struct TestServer {
    pub server: RunningServer,
    pub db: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(1000, SessionLimits::default()).await
    }

    pub async fn start_with(retention: u64, limits: SessionLimits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("image-chat.db");
        let server = start_on(&db, retention, limits).await;
        Self {
            server,
            db,
            _dir: Some(dir),
        }
    }

    /// With explicit abuse limits (e.g. `Limits::unlimited()` for hundreds of connections).
    pub async fn start_secured(security: Security) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("image-chat.db");
        let server = start_with_security(&db, 1000, SessionLimits::default(), security).await;
        Self {
            server,
            db,
            _dir: Some(dir),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Shuts down and starts again on the same database file (a new port).
    pub async fn restart(self) -> Self {
        let Self { server, db, _dir } = self;
        server.shutdown().await;
        let server = start_on(&db, 1000, SessionLimits::default()).await;
        Self { server, db, _dir }
    }
}

/// A server over a database on tmpfs when there is one (tests that commit hundreds of events
/// measure fan-out, not the disk's fsync), with no abuse limits (one client pipelining hundreds
/// of ops would rightly be refused), serving wss:// with `tls`. The directory must outlive it.
pub async fn start_unlimited(
    limits: SessionLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let security = Security {
        limits: image_chat_server::limits::Limits::unlimited(),
        tls,
    };
    let server = start_with_security(&dir.path().join("db"), 1000, limits, security).await;
    (server, dir)
}

pub async fn start_on(db: &Path, retention: u64, limits: SessionLimits) -> RunningServer {
    start_with_security(db, retention, limits, Security::default()).await
}

/// Like [`start_on`] with explicit abuse limits (e.g. `Limits::unlimited()` for load tests that
/// pipeline hundreds of ops from one address).
pub async fn start_with_security(
    db: &Path,
    retention: u64,
    limits: SessionLimits,
    security: Security,
) -> RunningServer {
    let store = SqliteStore::open(
        db,
        SqliteConfig {
            retention,
            ..SqliteConfig::default()
        },
    )
    .unwrap();
    RunningServer::start(ServerParts {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: Arc::new(store),
        broker: Arc::new(MemoryBroker::default()),
        presence: None,
        cluster_rates: None,
        tenants: Tenants::builtin(),
        limits,
        dirs: StaticDirs::default(),
        security,
    })
    .await
    .unwrap()
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A protocol client over a WebSocket on `S`: plain TCP by default, or a TLS stream
/// ([`wss`]). Only opening a plain socket is specific to `S`; the rest is the same over both.
pub struct Client<S = MaybeTlsStream<TcpStream>> {
    pub ws: WebSocketStream<S>,
    pub welcome: Option<Welcome>,
}

/// A `hello` for page `page` (discussions on its text).
pub fn page_hello(page: &str, resume: Option<Position>) -> Hello {
    Hello {
        subject: image_chat_protocol::PageId::new(page).into(),
        ..hello(page, resume)
    }
}

pub fn hello(image: &str, resume: Option<Position>) -> Hello {
    Hello {
        protocol: 1,
        tenant_id: TenantId::new("demo"),
        subject: ImageId::new(image).into(),
        auth: Some(Auth::Anonymous {
            name: "Tester".into(),
            token: None,
        }),
        resume,
    }
}

impl Client {
    /// Opens a socket without saying hello.
    pub async fn open(addr: SocketAddr, origin: Option<&str>) -> Self {
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect timed out")
            .unwrap();
        Self { ws, welcome: None }
    }

    /// Connects and completes the hello/welcome exchange.
    pub async fn join(addr: SocketAddr, image: &str) -> Self {
        Self::join_with(addr, hello(image, None)).await
    }

    pub async fn join_with(addr: SocketAddr, hello: Hello) -> Self {
        Self::open(addr, None).await.say_hello(hello).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Says `hello` on an open socket and reads the welcome.
    pub async fn say_hello(mut self, hello: Hello) -> Self {
        self.send(&ClientMessage::Hello(hello)).await;
        match self.recv().await {
            ServerMessage::Welcome(w) => self.welcome = Some(w),
            other => panic!("expected welcome, got {other:?}"),
        }
        self
    }

    pub fn welcome(&self) -> &Welcome {
        self.welcome.as_ref().unwrap()
    }

    pub async fn send(&mut self, message: &ClientMessage) {
        self.send_raw(&message.to_json()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// Next protocol message of any kind.
    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no message in time")
                .expect("socket ended")
                .unwrap();
            match frame {
                Message::Text(text) => return ServerMessage::from_json(&text).unwrap(),
                Message::Close(frame) => panic!("socket closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Next message that is not a presence update.
    pub async fn recv_skip_presence(&mut self) -> ServerMessage {
        loop {
            match self.recv().await {
                ServerMessage::Presence(_) => continue,
                other => return other,
            }
        }
    }

    /// The next `n` events (at least), whether each came alone or with others in a batch
    /// (the image's pump gathers what queued up while it wrote to a big crowd).
    pub async fn recv_events(&mut self, n: usize) -> Vec<Event> {
        let mut events = Vec::new();
        while events.len() < n {
            let message = self.recv_skip_presence().await;
            events.extend(
                message
                    .into_events()
                    .unwrap_or_else(|other| panic!("expected an event, got {other:?}")),
            );
        }
        events
    }

    /// Reads until `ops` acks and the echoes of as many events have arrived (each echo alone or
    /// in a batch): what a poster of `ops` pipelined ops gets back.
    pub async fn acks_and_echoes(&mut self, ops: usize) {
        let (mut acks, mut echoes) = (0, 0);
        while acks < ops || echoes < ops {
            match self.recv_skip_presence().await {
                ServerMessage::Ack(_) => acks += 1,
                other => echoes += other.into_events().map_or(0, |events| events.len()),
            }
        }
    }

    /// Waits until a presence update reports `online` viewers.
    pub async fn wait_for_presence(&mut self, online: u32) {
        loop {
            if let ServerMessage::Presence(p) = self.recv().await
                && p.online == online
            {
                return;
            }
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn closed(&mut self) -> u16 {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no close in time");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("socket error before close: {err}"),
            }
        }
    }

    /// Proves nothing else is queued for this client: a ping's pong is the next non-presence
    /// message (the server answers frames in order).
    pub async fn assert_quiet(&mut self) {
        let nonce = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.send(&ClientMessage::Ping { nonce }).await;
        match self.recv_skip_presence().await {
            ServerMessage::Pong(p) => assert_eq!(p.nonce, nonce),
            other => panic!("expected only the pong, got {other:?}"),
        }
    }
}

/// Sends a WebSocket ping and waits for its pong (the session's frames in between are skipped).
pub async fn ping_is_answered<S>(ws: &mut WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer in time")
            .expect("socket open")
            .unwrap()
        {
            Message::Pong(payload) => break payload,
            Message::Text(_) => continue,
            other => panic!("expected a pong, got {other:?}"),
        }
    };
    assert_eq!(&pong[..], b"are you there");
}

/// Closes the socket and checks that the server answers the close handshake.
pub async fn close_is_answered<S>(ws: &mut WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.close(None).await.unwrap();
    let answered = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None => return true,
                Some(Ok(_)) => continue,
                Some(Err(_)) => return false,
            }
        }
    })
    .await
    .expect("the close answered in time");
    assert!(answered, "the server answers the close handshake");
}

/// One poster's view of its pipelined ops: checks that the `ack` of each op it sent reaches it
/// before the echo of that op's event (PROTOCOL §5), and records what arrived.
pub struct PosterLog<'a> {
    sent: &'a [BroadcastId],
    /// The acks, in the order they came.
    pub acked: Vec<BroadcastId>,
    /// Events seen (each of a batch's).
    pub events: usize,
}

impl<'a> PosterLog<'a> {
    pub fn new(sent: &'a [BroadcastId]) -> Self {
        Self {
            sent,
            acked: Vec::new(),
            events: 0,
        }
    }

    /// Takes the poster's next message; panics on the echo of an op not acked yet.
    pub fn see(&mut self, message: ServerMessage) {
        let events = match message {
            ServerMessage::Ack(ack) => return self.acked.push(ack.broadcast_id),
            other => other
                .into_events()
                .unwrap_or_else(|other| panic!("expected an event, got {other:?}")),
        };
        for event in events {
            let id = event.broadcast_id();
            assert!(
                !self.sent.contains(id) || self.acked.contains(id),
                "the echo of {id:?} came before its ack"
            );
            self.events += 1;
        }
    }
}

pub fn create_op(x: f64, y: f64, text: &str) -> CreateChat {
    CreateChat {
        broadcast_id: BroadcastId::new(new_id()),
        chat_id: ChatId::new(new_id()),
        anchor: Anchor::point(x, y),
        text: text.into(),
    }
}

pub fn reply_op(chat: &ChatId, text: &str) -> AddComment {
    AddComment {
        broadcast_id: BroadcastId::new(new_id()),
        chat_id: chat.clone(),
        comment_id: CommentId::new(new_id()),
        text: text.into(),
    }
}

pub fn edit_op(chat: &ChatId, comment: &CommentId, text: &str) -> EditComment {
    EditComment {
        broadcast_id: BroadcastId::new(new_id()),
        chat_id: chat.clone(),
        comment_id: comment.clone(),
        text: text.into(),
    }
}

pub fn delete_op(chat: &ChatId) -> DeleteChat {
    DeleteChat {
        broadcast_id: BroadcastId::new(new_id()),
        chat_id: chat.clone(),
    }
}

/// Sends an op and returns the ack's seq, without reading further.
pub async fn send_for_ack<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<S>,
    message: ClientMessage,
) -> u64 {
    client.send(&message).await;
    match client.recv_skip_presence().await {
        ServerMessage::Ack(ack) => ack.seq,
        other => panic!("expected ack, got {other:?}"),
    }
}

/// Sends an op, returns its ack's seq and consumes its echo (which follows the ack).
pub async fn commit<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<S>,
    message: ClientMessage,
) -> u64 {
    let seq = send_for_ack(client, message).await;
    match client.recv_skip_presence().await.into_event() {
        Ok(e) if e.seq() == seq => {}
        other => panic!("expected the echo of seq {seq}, got {other:?}"),
    }
    seq
}

pub fn close_code(code: WsCloseCode) -> u16 {
    u16::from(code)
}

/// Plain HTTP/1.1 GET over a TCP socket; returns the whole response (status line, headers,
/// body), lossily decoded.
pub async fn http_raw(addr: SocketAddr, path: &str) -> String {
    http_raw_with(addr, path, "").await
}

/// Plain HTTP/1.1 GET with extra header lines (each ending in `\r\n`); returns the raw
/// response.
pub async fn http_raw_with(addr: SocketAddr, path: &str, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// Plain HTTP/1.1 GET over a TCP socket; returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = http_raw(addr, path).await;
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
