//! The server binary on PostgreSQL (`IMAGE_CHAT_DATABASE_URL`), as an operator runs one node
//! of a cluster: it creates its schema on start, keeps what it acknowledged across a restart,
//! answers `unavailable` (and a failing `/readyz`) while PostgreSQL is unreachable, and serves
//! again by itself when it is back. Each test has a schema of its own (see `postgres_support`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod postgres_support;
mod support;

use std::time::Duration;

use image_chat_protocol::{ClientMessage, ErrorCode, ServerMessage};
use postgres_support::{Outage, TestSchema};
use support::process::ServerProcess;
use support::*;

fn serve(dir: &std::path::Path, database_url: &str) -> ServerProcess {
    ServerProcess::serve(
        dir,
        &[],
        &[
            ("IMAGE_CHAT_DATABASE_URL", database_url),
            // A small pool, as on a node of a cluster sharing PostgreSQL's connections.
            ("IMAGE_CHAT_DATABASE_POOL_SIZE", "4"),
        ],
        false,
    )
}

#[tokio::test]
async fn a_node_on_postgres_keeps_what_it_acknowledged_across_a_restart() {
    let schema = TestSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let process = serve(dir.path(), &schema.url);
    assert_eq!(http_get(process.addr, "/readyz").await.0, 200);
    let mut client = Client::join(process.addr, "img").await;
    let seq = commit(
        &mut client,
        ClientMessage::CreateChat(create_op(0.5, 0.5, "kept in PostgreSQL")),
    )
    .await;
    assert_eq!(seq, 1);
    drop(client);
    drop(process); // killed: nothing but PostgreSQL remembers

    let process = serve(dir.path(), &schema.url);
    let reader = Client::join(process.addr, "img").await;
    let chats = &reader.welcome().snapshot.as_ref().unwrap().chats;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].comments[0].text, "kept in PostgreSQL");
    assert!(
        !dir.path().join("image-chat.db").exists(),
        "no SQLite file is created when PostgreSQL is the store"
    );
}

// Multi-threaded: the proxy must keep running while `serve` blocks reading the child's stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_gives_unavailable_then_the_node_recovers_by_itself() {
    let schema = TestSchema::create().await;
    let outage = Outage::start(postgres_support::addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let process = serve(dir.path(), &outage.url(&schema));
    let mut client = Client::join(process.addr, "img").await;
    commit(
        &mut client,
        ClientMessage::CreateChat(create_op(0.25, 0.25, "before")),
    )
    .await;

    outage.down();
    let op = create_op(0.75, 0.75, "during");
    client.send(&ClientMessage::CreateChat(op.clone())).await;
    match client.recv_skip_presence().await {
        ServerMessage::Error(error) => {
            assert_eq!(error.code, ErrorCode::Unavailable);
            assert_eq!(error.broadcast_id.as_ref(), Some(&op.broadcast_id));
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(
        http_get(process.addr, "/readyz").await.0,
        503,
        "not ready without its database"
    );

    outage.back();
    // The client retries the same op (same broadcastId), as the widget's retry does: applied
    // once, now. The first try after the outage may still meet a connection that died in the
    // pool; a retry after it gets a new one.
    let mut acked = None;
    for _ in 0..5 {
        client.send(&ClientMessage::CreateChat(op.clone())).await;
        match client.recv_skip_presence().await {
            ServerMessage::Ack(ack) => {
                acked = Some(ack.seq);
                break;
            }
            ServerMessage::Error(error) if error.code == ErrorCode::Unavailable => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("expected an ack, got {other:?}"),
        }
    }
    assert_eq!(acked, Some(2), "the node serves again without a restart");
    assert_eq!(http_get(process.addr, "/readyz").await.0, 200);
}
