//! Moderation across a cluster: two server processes on one PostgreSQL and one Redis. A lock
//! made through one node's admin API reaches the open widgets of the other node at once (the
//! `lock` frame through the broker) and refuses their ops (the store); a ban made on one node
//! refuses the banned person's ops on a connection already open on the other. The admin API's
//! live count on either node counts both nodes' connections.

#![allow(missing_docs, clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod cluster_support;
mod postgres_support;
mod redis_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use cluster_support::{Cluster, ClusterConfig, Database};
use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::{ErrorCode, Lock, ServerMessage};
use support::api::{Reply, request};
use support::new_id;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "cluster-admin-key-0123456789abcdef0123";

/// The demo tenant, redefined with an API key.
const TENANTS: &str = r#"
[[tenant]]
id = "demo"
api_key = "cluster-admin-key-0123456789abcdef0123"
origins = ["localhost"]
anonymous = "allow"
"#;

const WAIT: Duration = Duration::from_secs(10);

struct Widget {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    token: String,
}

impl Widget {
    async fn join(addr: SocketAddr, image: &str) -> Self {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        let hello = serde_json::json!({
            "type": "hello", "protocol": 1, "tenantId": "demo", "imageId": image,
        });
        ws.send(Message::text(hello.to_string())).await.unwrap();
        let mut widget = Self {
            ws,
            token: String::new(),
        };
        match widget.next().await {
            ServerMessage::Welcome(w) => widget.token = w.token.unwrap(),
            other => panic!("expected welcome, got {other:?}"),
        }
        widget
    }

    /// The next frame that is not presence.
    async fn next(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("socket open")
                .unwrap();
            if let Message::Text(text) = frame {
                match ServerMessage::from_json(&text).unwrap() {
                    ServerMessage::Presence(_) => continue,
                    other => return other,
                }
            }
        }
    }

    /// The next `lock` frame (events before it, such as our own echoes, are skipped).
    async fn lock(&mut self) -> Lock {
        loop {
            if let ServerMessage::Lock(lock) = self.next().await {
                return lock;
            }
        }
    }

    /// Sends a new discussion; the answer (ack or error).
    async fn create(&mut self) -> ServerMessage {
        let op = serde_json::json!({
            "type": "create-chat", "broadcastId": new_id(), "chatId": new_id(),
            "anchor": [0.5, 0.5], "text": "hello",
        });
        self.ws.send(Message::text(op.to_string())).await.unwrap();
        loop {
            match self.next().await {
                reply @ (ServerMessage::Ack(_) | ServerMessage::Error(_)) => return reply,
                _ => continue,
            }
        }
    }
}

async fn admin(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Reply {
    let mut headers = format!("Authorization: Bearer {KEY}\r\n");
    if body.is_some() {
        headers.push_str("Content-Type: application/json\r\n");
    }
    let reply = request(
        addr,
        method,
        &format!("/admin/api/v1/tenants/demo{path}"),
        &headers,
        body.unwrap_or(""),
    )
    .await;
    assert_eq!(reply.status, 200, "{method} {path}: {}", reply.body);
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_and_bans_hold_on_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(&tenants, TENANTS).unwrap();
    let mut config = ClusterConfig::new(redis_support::url());
    config
        .env
        .push(("IMAGE_CHAT_TENANTS".into(), tenants.display().to_string()));
    let cluster = Cluster::start(2, Database::postgres().await, config);
    let image = "https://example.com/cluster-lock.jpg";
    let mut on_one = Widget::join(cluster.addr(1), image).await;
    assert!(matches!(on_one.create().await, ServerMessage::Ack(_)));

    // Locked through node 0: node 1's open widget is told and refused.
    let body = serde_json::json!({ "image": image }).to_string();
    admin(cluster.addr(0), "PUT", "/locks", Some(&body)).await;
    assert_eq!(on_one.lock().await, Lock { locked: true });
    match on_one.create().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::ImageLocked),
        other => panic!("expected image-locked, got {other:?}"),
    }
    let q = percent_encoding::utf8_percent_encode(image, percent_encoding::NON_ALPHANUMERIC);
    admin(
        cluster.addr(0),
        "DELETE",
        &format!("/locks?image={q}"),
        None,
    )
    .await;
    assert_eq!(on_one.lock().await, Lock { locked: false });
    assert!(matches!(on_one.create().await, ServerMessage::Ack(_)));

    // Banned through node 1 (by the widget's token): refused on node 0's open connection.
    let mut on_zero = Widget::join(cluster.addr(0), image).await;
    let body = serde_json::json!({ "anonymousToken": on_zero.token }).to_string();
    admin(cluster.addr(1), "PUT", "/bans", Some(&body)).await;
    match on_zero.create().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::Banned),
        other => panic!("expected banned, got {other:?}"),
    }
    // Listed the same on either node.
    let bans = admin(cluster.addr(0), "GET", "/bans", None).await.json();
    assert_eq!(bans["bans"].as_array().unwrap().len(), 1);
    assert!(matches!(on_one.create().await, ServerMessage::Ack(_)));

    // The dashboard's live count covers both nodes, whichever one answers.
    for node in [0, 1] {
        live_becomes(cluster.addr(node), 2).await;
    }
    drop(on_zero);
    live_becomes(cluster.addr(1), 1).await;
}

/// Polls the admin API's live count on `addr` until it is `want` (at most `WAIT`).
async fn live_becomes(addr: SocketAddr, want: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let live = admin(addr, "GET", "/live", None).await.json();
        if live["connections"] == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "live count on {addr} stayed {live}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
