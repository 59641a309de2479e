//! Several `image-chat-server` processes as one cluster, for the multi-node tests: nodes on one
//! PostgreSQL and one Redis (each test with its own schema and key prefix), a private
//! `redis-server` a test may kill and restart, and [`Replica`], a client that keeps its own copy
//! of an image and checks that every event continues the last one (no gap, no repeat, in order).
//! Every process is killed when its handle drops. Test files using it also declare
//! `mod postgres_support;`.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::{
    Ack, Auth, ClientMessage, ErrorFrame, Event, Hello, ImageId, ImageState, Position,
    ServerMessage, TenantId,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::postgres_support::{Outage, TestSchema};

/// Where the nodes keep their data: a PostgreSQL schema of the test's own (dropped with it),
/// reached directly or through a path the test can take down.
pub struct Database {
    /// The schema.
    pub schema: TestSchema,
    /// The URL the nodes use.
    pub url: String,
}

impl Database {
    /// A fresh schema on the test PostgreSQL (`scripts/setup.sh test` starts one).
    pub async fn postgres() -> Self {
        let schema = TestSchema::create().await;
        let url = schema.url.clone();
        Self { schema, url }
    }

    /// A fresh schema reached through `outage` (which the test can take down).
    pub async fn postgres_through(outage: &Outage) -> Self {
        let schema = TestSchema::create().await;
        let url = outage.url(&schema);
        Self { schema, url }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("IMAGE_CHAT_DATABASE_URL", self.url.clone())]
    }
}

/// A `redis-server` of the test's own, on a free port, that the test may kill and restart.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl PrivateRedis {
    /// Starts one (Debian's `redis-server`, which `scripts/setup.sh test` installs).
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (run scripts/setup.sh test)");
        self.child = Some(child);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on {addr}");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What every node of a cluster is started with.
pub struct ClusterConfig {
    /// Redis URL.
    pub redis_url: String,
    /// The cluster's key prefix in Redis.
    pub prefix: String,
    /// Extra environment (limits…).
    pub env: Vec<(String, String)>,
}

impl ClusterConfig {
    /// Nodes on `redis_url` under a fresh prefix, with the per-address and per-connection limits
    /// lifted (every test client shares 127.0.0.1).
    pub fn new(redis_url: String) -> Self {
        let lifted = [
            "IMAGE_CHAT_OPS_PER_SEC",
            "IMAGE_CHAT_IP_OPS_PER_SEC",
            "IMAGE_CHAT_BYTES_PER_SEC",
            "IMAGE_CHAT_IP_BYTES_PER_SEC",
            "IMAGE_CHAT_MAX_VIEWERS_PER_IP_PER_IMAGE",
            "IMAGE_CHAT_MAX_CONNECTIONS_PER_IP",
            "IMAGE_CHAT_API_REQUESTS_PER_SEC",
        ];
        Self {
            redis_url,
            prefix: format!("cluster-test:{:x}:", rand_u64()),
            env: lifted
                .iter()
                .map(|k| ((*k).to_string(), "0".to_string()))
                .chain([("IMAGE_CHAT_PRESENCE_TTL_SECS".to_string(), "3".to_string())])
                .collect(),
        }
    }
}

fn rand_u64() -> u64 {
    rand::random()
}

/// One server process.
pub struct Node {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
}

impl Node {
    /// Starts node `name` of the cluster.
    pub fn start(name: &str, db: &Database, config: &ClusterConfig) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_image-chat-server"));
        command
            .arg("serve")
            .env("IMAGE_CHAT_LISTEN", "127.0.0.1:0")
            .env("IMAGE_CHAT_REDIS_URL", &config.redis_url)
            .env("IMAGE_CHAT_REDIS_PREFIX", &config.prefix)
            .env("IMAGE_CHAT_NODE_NAME", name)
            .env(
                "RUST_LOG",
                std::env::var("CLUSTER_TEST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in db.env() {
            command.env(key, value);
        }
        for (key, value) in &config.env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("image-chat-server listening on http://")
            .unwrap_or_else(|| panic!("node {name} did not start: {line:?}"))
            .parse()
            .unwrap();
        Self {
            name: name.to_string(),
            addr,
            child,
        }
    }

    /// SIGKILL: the node vanishes mid-stream, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The test's cluster: its database and nodes.
pub struct Cluster {
    pub db: Database,
    pub config: ClusterConfig,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// `n` nodes on `db` and `config`.
    pub fn start(n: usize, db: Database, config: ClusterConfig) -> Self {
        let nodes = (0..n)
            .map(|i| Node::start(&format!("n{i}"), &db, &config))
            .collect();
        Self { db, config, nodes }
    }

    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr
    }

    /// Replaces node `i` with a fresh process (a new address).
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].kill();
        let name = format!("n{i}r");
        self.nodes[i] = Node::start(&name, &self.db, &self.config);
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a [`Replica`] read.
#[derive(Debug)]
pub enum Reply {
    /// Events, applied.
    Events,
    Ack(Ack),
    Error(ErrorFrame),
    Other,
}

/// A client keeping its own copy of one image, as the widget does: it resumes from its last
/// position on every (re)connect and checks that every event continues the previous one.
pub struct Replica {
    ws: Option<Socket>,
    image: String,
    pub position: Option<Position>,
    pub state: ImageState,
    /// Every event's seq, in the order applied (live or from a `welcome`).
    pub seen: Vec<u64>,
    /// `welcome`s that replaced the state with a snapshot although the client had a position.
    pub snapshots: u32,
    /// Events that did not continue the position (gaps, repeats, disorder): must stay empty.
    pub violations: Vec<String>,
    token: Option<String>,
}

impl Replica {
    /// A replica of `image` (of the demo tenant), not connected yet.
    pub fn new(image: &str) -> Self {
        Self {
            ws: None,
            image: image.to_string(),
            position: None,
            state: ImageState::default(),
            seen: Vec::new(),
            snapshots: 0,
            violations: Vec::new(),
            token: None,
        }
    }

    /// Whether a socket is open.
    pub fn connected(&self) -> bool {
        self.ws.is_some()
    }

    /// Connects to `addr` and resumes (hello, welcome applied).
    pub async fn connect(&mut self, addr: SocketAddr) -> Result<(), String> {
        self.ws = None;
        let url = format!("ws://{addr}/ws");
        let (mut ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
        let hello = ClientMessage::Hello(Hello {
            protocol: 1,
            tenant_id: TenantId::new("demo"),
            subject: ImageId::new(self.image.clone()).into(),
            auth: Some(Auth::Anonymous {
                name: "Replica".into(),
                token: self.token.clone(),
            }),
            resume: self.position,
        });
        ws.send(Message::text(hello.to_json()))
            .await
            .map_err(|e| e.to_string())?;
        self.ws = Some(ws);
        loop {
            match self.read(Duration::from_secs(10)).await? {
                Some(ServerMessage::Welcome(welcome)) => {
                    self.token = welcome.token.clone();
                    if let Some(snapshot) = welcome.snapshot {
                        if self.position.is_some() {
                            self.snapshots += 1;
                        }
                        self.state = ImageState::from_snapshot(snapshot);
                        self.position = Some(welcome.position);
                    } else {
                        for event in welcome.events {
                            self.apply(event);
                        }
                        self.position = Some(welcome.position);
                    }
                    return Ok(());
                }
                Some(ServerMessage::Presence(_)) => continue,
                Some(other) => return Err(format!("expected welcome, got {other:?}")),
                None => return Err("no welcome in time".into()),
            }
        }
    }

    /// Sends `message`.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), String> {
        let ws = self.ws.as_mut().ok_or("not connected")?;
        let sent = ws.send(Message::text(message.to_json())).await;
        if let Err(err) = sent {
            self.ws = None;
            return Err(err.to_string());
        }
        Ok(())
    }

    /// The next frame (events are applied); `Ok(None)`: nothing within `within`; `Err`: the
    /// connection ended (then not connected any more).
    pub async fn next(&mut self, within: Duration) -> Result<Option<Reply>, String> {
        let Some(message) = self.read(within).await? else {
            return Ok(None);
        };
        let reply = match message {
            ServerMessage::NewImageChat(e) => self.apply_all([Event::NewImageChat(e)]),
            ServerMessage::ImageChatUpdated(e) => self.apply_all([Event::ImageChatUpdated(e)]),
            ServerMessage::DeletedImageChat(e) => self.apply_all([Event::DeletedImageChat(e)]),
            ServerMessage::Batch(batch) => self.apply_all(batch.events),
            ServerMessage::Ack(ack) => Reply::Ack(ack),
            ServerMessage::Error(e) => Reply::Error(e),
            _ => Reply::Other,
        };
        Ok(Some(reply))
    }

    fn apply_all(&mut self, events: impl IntoIterator<Item = Event>) -> Reply {
        for event in events {
            self.apply(event);
        }
        Reply::Events
    }

    /// Reads events until the position reaches `seq` (or `within` passes without progress).
    pub async fn catch_up_to(&mut self, seq: u64, within: Duration) -> Result<(), String> {
        while self.position.map_or(0, |p| p.seq) < seq {
            let before = self.position;
            if self.next(within).await?.is_none() && self.position == before {
                return Err(format!(
                    "stuck at {:?}, waiting for seq {seq}",
                    self.position
                ));
            }
        }
        Ok(())
    }

    /// Closes the socket abruptly (as a cut network would, from the client's side).
    pub fn drop_connection(&mut self) {
        self.ws = None;
    }

    async fn read(&mut self, within: Duration) -> Result<Option<ServerMessage>, String> {
        let ws = self.ws.as_mut().ok_or("not connected")?;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => return Ok(None),
                Ok(frame) => frame,
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return ServerMessage::from_json(&text)
                        .map(Some)
                        .map_err(|e| e.to_string());
                }
                Some(Ok(Message::Close(frame))) => {
                    self.ws = None;
                    return Err(format!("closed: {frame:?}"));
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => {
                    self.ws = None;
                    return Err(err.to_string());
                }
                None => {
                    self.ws = None;
                    return Err("socket ended".into());
                }
            }
        }
    }

    fn apply(&mut self, event: Event) {
        let seq = event.seq();
        let at = self.position.map_or(0, |p| p.seq);
        if seq != at + 1 {
            self.violations.push(format!(
                "event {seq} after {at} ({} so far)",
                self.seen.len()
            ));
            if seq <= at {
                return;
            }
        }
        if let Err(err) = self.state.apply(&event) {
            self.violations
                .push(format!("event {seq} does not apply: {err:?}"));
        }
        self.seen.push(seq);
        self.position = Some(Position {
            epoch: event.epoch(),
            seq,
        });
    }
}

/// A fresh creation op with its broadcast id.
pub fn create(text: &str) -> ClientMessage {
    ClientMessage::CreateChat(image_chat_protocol::CreateChat {
        broadcast_id: image_chat_protocol::BroadcastId::new(new_id()),
        chat_id: image_chat_protocol::ChatId::new(new_id()),
        anchor: image_chat_protocol::Anchor::point(0.25, 0.75),
        text: text.into(),
    })
}

/// A fresh random canonical id.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    let a = rand_u64().to_be_bytes();
    let b = rand_u64().to_be_bytes();
    bytes[..8].copy_from_slice(&a);
    bytes[8..].copy_from_slice(&b);
    image_chat_protocol::ids::encode_uuid_v4(bytes)
}
