//! Usage counting and `/metrics` over real sockets: what widgets are sent and what they commit
//! is counted per tenant, exported on the metrics listener, written to the store at shutdown,
//! and added up across restarts.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::HashMap;

use image_chat_protocol::{ClientMessage, TenantId};
use image_chat_server::store::Store;
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::usage::calendar::day_of;
use support::{Client, TestServer, commit, create_op, http_get, reply_op};

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    day_of(now)
}

#[tokio::test]
async fn usage_is_counted_exported_and_kept_across_restarts() {
    let server = TestServer::start().await;
    // As `--node-name` does: the restarted server is the same node for the viewer peaks.
    name_node(&server).await;
    let (metrics, _task) = image_chat_server::metrics::listen(
        server.server.app().clone(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut ada = Client::join(server.addr(), "photo").await;
    let mut bob = Client::join(server.addr(), "photo").await;
    let chat = match commit(
        &mut ada,
        ClientMessage::CreateChat(create_op(0.1, 0.2, "hi")),
    )
    .await
    {
        1 => ada_chat(&mut bob).await,
        other => panic!("seq {other}"),
    };
    commit(
        &mut bob,
        ClientMessage::AddComment(reply_op(&chat, "hello")),
    )
    .await;

    // `/metrics`: on its own listener only, Prometheus text.
    let (status, _) = http_get(server.addr(), "/metrics").await;
    assert_eq!(status, 404, "never on the public port");
    let (status, text) = http_get(metrics, "/metrics").await;
    assert_eq!(status, 200);
    let s = samples(&text);
    assert_eq!(s["image_chat_open_connections"], 2.0, "{text}");
    assert_eq!(
        s["image_chat_tenant_open_connections{tenant=\"demo\"}"],
        2.0
    );
    assert_eq!(s["image_chat_tenant_ops_total{tenant=\"demo\"}"], 2.0);
    assert_eq!(
        s["image_chat_tenant_discussions_total{tenant=\"demo\"}"],
        1.0
    );
    assert_eq!(s["image_chat_tenant_comments_total{tenant=\"demo\"}"], 2.0);
    assert_eq!(
        s["image_chat_tenant_connections_total{tenant=\"demo\"}"],
        2.0
    );
    // welcome ×2, ack ×2, two events to two viewers, presence updates.
    let frames = s["image_chat_tenant_frames_total{tenant=\"demo\"}"];
    assert!(frames >= 8.0, "{frames}");
    assert!(s["image_chat_tenant_sent_bytes_total{tenant=\"demo\"}"] > frames * 20.0);
    assert_eq!(s["image_chat_commit_latency_seconds_count"], 2.0);
    assert!(s["process_resident_memory_bytes"] > 1e6);
    assert!(s["process_open_fds"] >= 4.0);
    assert!(s.contains_key("process_cpu_seconds_total"));

    // Shutdown writes everything counted: exactly what `/metrics` said.
    drop((ada, bob));
    let server = server.restart().await;
    name_node(&server).await;
    let mut carol = Client::join(server.addr(), "photo").await;
    commit(
        &mut carol,
        ClientMessage::AddComment(reply_op(&chat, "again")),
    )
    .await;
    drop(carol);
    let db = server.db.clone();
    let app = server.server.app().clone();
    server.server.shutdown().await;
    drop(app);
    let store = SqliteStore::open(&db, SqliteConfig::default()).unwrap();
    let day = today();
    let rows = store
        .read_usage(&TenantId::new("demo"), &day, &day)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let usage = &rows[0];
    // Both runs added up.
    assert_eq!(
        (
            usage.counts.ops,
            usage.counts.comments,
            usage.counts.discussions
        ),
        (3, 3, 1)
    );
    assert_eq!(usage.counts.connections, 3);
    assert!(usage.counts.frames as f64 > frames);
    // The same node before and after its restart: the higher of its peaks, not their sum.
    assert_eq!(usage.peak_viewers, 2);
}

async fn name_node(server: &TestServer) {
    server
        .server
        .app()
        .usage_flusher
        .lock()
        .await
        .rename("node-1".into());
}

/// Bob sees Ada's discussion: its id.
async fn ada_chat(bob: &mut Client) -> image_chat_protocol::ChatId {
    match bob.recv_skip_presence().await {
        image_chat_protocol::ServerMessage::NewImageChat(e) => e.chat.id,
        other => panic!("expected the new discussion, got {other:?}"),
    }
}
