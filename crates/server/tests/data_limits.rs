//! Issue 12, item 2 over real sockets: an image is limited by the bytes it stores, so what one
//! `welcome` and one `GET …/snapshot` carry is bounded; concurrent readers share one encoded
//! snapshot; the HTTP API is rate limited per address.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use image_chat_protocol::{ClientMessage, ErrorCode, ServerMessage};
use image_chat_server::Security;
use image_chat_server::app::SessionLimits;
use image_chat_server::limits::{Limits, TenantLimits};
use image_chat_server::ratelimit::Rate;
use image_chat_server::store::size::SNAPSHOT_OVERHEAD_BYTES;
use support::{
    Client, WAIT, commit, create_op, edit_op, hello, http_get, http_raw, start_with_security,
};
use tokio_tungstenite::tungstenite::Message;

/// A deliberately small per-image byte limit, so the test fills an image in a few ops.
const IMAGE_BYTES: u64 = 6_000;

fn security(api: Option<Rate>) -> Security {
    Security {
        limits: Limits {
            tenant: TenantLimits {
                max_bytes_per_image: IMAGE_BYTES,
                ..TenantLimits::default()
            },
            api_requests: api,
            ..Limits::default()
        },
        tls: None,
    }
}

/// The raw text of the welcome a fresh client receives.
async fn raw_welcome(addr: std::net::SocketAddr, image: &str) -> String {
    let mut client = Client::open(addr, None).await;
    client.send(&ClientMessage::Hello(hello(image, None))).await;
    loop {
        let frame = tokio::time::timeout(WAIT, client.ws.next())
            .await
            .expect("welcome in time")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(text) = frame
            && text.contains(r#""type":"welcome""#)
        {
            return text.to_string();
        }
    }
}

#[tokio::test]
async fn an_image_is_limited_by_bytes_and_its_snapshot_and_welcome_by_that_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_security(
        &dir.path().join("db"),
        1000,
        SessionLimits::default(),
        security(None),
    )
    .await;
    let addr = server.local_addr();
    let mut writer = Client::join(addr, "big").await;
    // Long comments until the server says the image is full.
    let text = "€".repeat(1_000);
    let mut created = vec![];
    let refusal = loop {
        let op = create_op(0.5, 0.5, &text);
        writer.send(&ClientMessage::CreateChat(op.clone())).await;
        match writer.recv_skip_presence().await {
            ServerMessage::Ack(_) => {
                // Its echo.
                writer.recv_skip_presence().await;
                created.push(op);
            }
            ServerMessage::Error(e) => break e,
            other => panic!("expected ack or error, got {other:?}"),
        }
        assert!(created.len() < 50, "the byte limit never refused");
    };
    assert_eq!(refusal.code, ErrorCode::ImageFull);
    assert!(!created.is_empty());
    // A growing edit is refused as well; a shrinking one is accepted.
    let first = &created[0];
    let grow = edit_op(
        &first.chat_id,
        &first.chat_id.opening_comment(),
        &"€".repeat(3_000),
    );
    writer.send(&ClientMessage::EditComment(grow)).await;
    match writer.recv_skip_presence().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::ImageFull),
        other => panic!("expected image-full, got {other:?}"),
    }
    let shrink = edit_op(&first.chat_id, &first.chat_id.opening_comment(), "short");
    commit(&mut writer, ClientMessage::EditComment(shrink)).await;

    // Everything a reader downloads is bounded by the limit: the HTTP snapshot and a welcome.
    let (status, body) = http_get(addr, "/api/v1/tenants/demo/snapshot?image=big").await;
    assert_eq!(status, 200);
    let position_field = r#""position":{"epoch":4294967295,"seq":18446744073709551615},"#.len();
    assert!(
        body.len() as u64 <= IMAGE_BYTES + SNAPSHOT_OVERHEAD_BYTES + position_field as u64,
        "snapshot of {} bytes",
        body.len()
    );
    let snapshot: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snapshot["chats"].as_array().unwrap().len(), created.len());
    let welcome = raw_welcome(addr, "big").await;
    assert!(
        (welcome.len() as u64) < IMAGE_BYTES + SNAPSHOT_OVERHEAD_BYTES + 1_024,
        "welcome of {} bytes",
        welcome.len()
    );
    let ServerMessage::Welcome(parsed) = ServerMessage::from_json(&welcome).unwrap() else {
        panic!("not a welcome");
    };
    let chats = parsed
        .snapshot
        .expect("a fresh client gets the snapshot")
        .chats;
    assert_eq!(chats.len(), created.len());
    assert_eq!(chats[0].comments[0].text, "short");
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_readers_share_one_encoded_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_security(
        &dir.path().join("db"),
        1000,
        SessionLimits::default(),
        security(None),
    )
    .await;
    let addr = server.local_addr();
    let mut writer = Client::join(addr, "shared").await;
    commit(
        &mut writer,
        ClientMessage::CreateChat(create_op(0.1, 0.2, "hello")),
    )
    .await;
    // Anonymous viewers and anonymous GETs share one encoding (the public view, where signed
    // users' ids are pseudonyms); signed viewers and API-key GETs share the other.
    let fills = server.app().snapshots.fills();
    let public_fills = server.app().public_snapshots.fills();
    // Ten GETs and five fresh viewers at once, all at the same position.
    let gets = futures_util::future::join_all(
        (0..10).map(|_| http_get(addr, "/api/v1/tenants/demo/snapshot?image=shared")),
    );
    let joins = futures_util::future::join_all((0..5).map(|_| raw_welcome(addr, "shared")));
    let (gets, joins) = tokio::join!(gets, joins);
    let bodies: Vec<&String> = gets
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 200);
            b
        })
        .collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert!(joins.iter().all(|w| w.contains("hello")));
    assert_eq!(
        server.app().public_snapshots.fills() - public_fills,
        1,
        "one read and one encoding for every reader of one position"
    );
    assert_eq!(
        server.app().snapshots.fills(),
        fills,
        "no signed reader here"
    );
    // A new commit makes the next reader read once more.
    commit(
        &mut writer,
        ClientMessage::CreateChat(create_op(0.3, 0.4, "again")),
    )
    .await;
    let (_, body) = http_get(addr, "/api/v1/tenants/demo/snapshot?image=shared").await;
    assert!(body.contains("again"));
    assert_eq!(server.app().public_snapshots.fills() - public_fills, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn the_http_api_is_rate_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let burst = 5;
    let server = start_with_security(
        &dir.path().join("db"),
        1000,
        SessionLimits::default(),
        // One request every 10 s once the burst is spent: the test cannot refill it by accident.
        security(Rate::new(0.1, burst)),
    )
    .await;
    let addr = server.local_addr();
    let path = "/api/v1/tenants/demo/snapshot?image=x";
    for _ in 0..burst {
        assert_eq!(http_get(addr, path).await.0, 200);
    }
    let refused = http_raw(addr, path).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    let retry_after: u64 = refused
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_owned())
        })
        .expect("Retry-After header")
        .parse()
        .unwrap();
    assert!(
        (1..=10).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert!(refused.contains("rate-limited"));
    // Health checks and the WebSocket are not part of the API budget.
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    let _viewer = Client::join(addr, "x").await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_tenant_quota_counts_every_image_and_refuses_with_quota_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let mut security = security(None);
    security.limits.tenant.max_bytes_per_tenant = 5_000;
    let server = start_with_security(
        &dir.path().join("db"),
        1000,
        SessionLimits::default(),
        security,
    )
    .await;
    let addr = server.local_addr();
    // Fresh image ids, each well under the per-image limit: the tenant's total still stops them.
    let text = "q".repeat(1_000);
    let mut n = 0;
    let refusal = loop {
        let mut client = Client::join(addr, &format!("fresh-{n}")).await;
        n += 1;
        client
            .send(&ClientMessage::CreateChat(create_op(0.5, 0.5, &text)))
            .await;
        match client.recv_skip_presence().await {
            ServerMessage::Ack(_) => {}
            ServerMessage::Error(e) => break e,
            other => panic!("expected ack or error, got {other:?}"),
        }
        assert!(n < 20, "the tenant quota never refused");
    };
    assert_eq!(refusal.code, ErrorCode::QuotaExceeded);
    assert!(n >= 3, "refused after {n} images");
    server.shutdown().await;
}
