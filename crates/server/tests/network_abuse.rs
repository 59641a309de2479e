//! Abuse that stays within the op rate but not within reason (docs/SECURITY.md, rows 92–97):
//! big ops re-sent at the op rate (bytes budgets), junk frames, oversized messages, and
//! addresses that crowd an image's viewer slots or inflate its live count. Real sockets on
//! 127.0.0.1:0; different client addresses are different loopback addresses (127.0.0.x).

#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::{Auth, ClientMessage, ErrorCode, ServerMessage};
use image_chat_server::app::SessionLimits;
use image_chat_server::limits::{Limits, TenantLimits};
use image_chat_server::ratelimit::Rate;
use image_chat_server::{RunningServer, Security};
use support::*;
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn server(limits: Limits) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_security(
        &dir.path().join("db"),
        1000,
        SessionLimits::default(),
        Security { limits, tls: None },
    )
    .await;
    (server, dir)
}

/// A WebSocket from `source` (a loopback address), without hello.
async fn open_from(source: Ipv4Addr, addr: SocketAddr) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
    let tcp = tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .unwrap()
        .unwrap();
    let request = format!("ws://{addr}/ws").into_client_request().unwrap();
    let (ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)),
    )
    .await
    .unwrap()
    .unwrap();
    Client { ws, welcome: None }
}

/// Says `hello` from `source`; returns the client and what the server answered first.
async fn hello_from(
    source: Ipv4Addr,
    addr: SocketAddr,
    image: &str,
    token: Option<String>,
) -> (Client, ServerMessage) {
    let mut c = open_from(source, addr).await;
    let mut h = hello(image, None);
    h.auth = Some(Auth::Anonymous {
        name: "Person".into(),
        token,
    });
    c.send(&ClientMessage::Hello(h)).await;
    let first = c.recv_skip_presence().await;
    if let ServerMessage::Welcome(w) = &first {
        c.welcome = Some(w.clone());
    }
    (c, first)
}

async fn join_from(source: Ipv4Addr, addr: SocketAddr, image: &str) -> Client {
    match hello_from(source, addr, image, None).await {
        (c, ServerMessage::Welcome(_)) => c,
        (_, other) => panic!("expected welcome, got {other:?}"),
    }
}

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const C: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Ops are limited generously here; what runs out is the byte budget.
fn byte_limits(conn_burst: u32, ip_burst: u32) -> Limits {
    Limits {
        tenant: TenantLimits {
            ops: Rate::new(1000.0, 1000),
            ..TenantLimits::default()
        },
        ip_ops: None,
        // Refills so slow that the outcome cannot depend on timing.
        conn_bytes: Rate::new(1.0, conn_burst),
        ip_bytes: Rate::new(1.0, ip_burst),
        ..Limits::default()
    }
}

/// Sends `n` edits of a 16 KB comment at once; returns (acks, rate-limited refusals).
async fn big_edits(c: &mut Client, n: usize) -> (usize, usize) {
    let create = create_op(0.5, 0.5, "short");
    commit(c, ClientMessage::CreateChat(create.clone())).await;
    // 4,000 four-byte characters: the longest comment, ~16 KB on the wire.
    let text = "\u{1F30A}".repeat(4_000);
    for _ in 0..n {
        let edit = edit_op(&create.chat_id, &create.chat_id.opening_comment(), &text);
        c.send(&ClientMessage::EditComment(edit)).await;
    }
    let (mut acks, mut limited) = (0, 0);
    while acks + limited < n {
        match c.recv_skip_presence().await {
            ServerMessage::Ack(_) => acks += 1,
            ServerMessage::Error(e) => {
                assert_eq!(e.code, ErrorCode::RateLimited, "{e:?}");
                assert!(e.broadcast_id.is_some());
                limited += 1;
            }
            // The edits' events, alone or gathered into a batch by the image's pump.
            ServerMessage::ImageChatUpdated(_) | ServerMessage::Batch(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    (acks, limited)
}

#[tokio::test]
async fn re_editing_a_big_comment_is_throttled_by_bytes_per_connection_and_address() {
    // 64 KiB per connection, 100 KB per address.
    let (server, _dir) = server(byte_limits(64 * 1024, 100_000)).await;
    let addr = server.local_addr();
    // Ten 16 KB edits at once (well within the op rate): four fit the connection's budget.
    let mut a = join_from(A, addr, "bytes").await;
    assert_eq!(big_edits(&mut a, 10).await, (4, 6));
    // A second connection of the same address gets what is left of the address's budget
    // (100 KB − the ~65 KB taken above): two more edits.
    let mut a2 = join_from(A, addr, "bytes").await;
    assert_eq!(big_edits(&mut a2, 4).await, (2, 2));
    // Another address is unaffected.
    let mut c = join_from(C, addr, "bytes").await;
    assert_eq!(big_edits(&mut c, 4).await, (4, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn junk_frames_are_answered_until_the_allowance_runs_out_then_closed_with_1008() {
    let limits = Limits {
        junk: Rate::new(0.001, 20),
        ..Limits::default()
    };
    let (server, _dir) = server(limits).await;
    let addr = server.local_addr();
    let mut junk = join_from(A, addr, "junk").await;
    let mut bystander = join_from(C, addr, "junk").await;
    // Pings are not junk.
    for nonce in 0..50 {
        junk.send(&ClientMessage::Ping { nonce }).await;
        assert!(matches!(
            junk.recv_skip_presence().await,
            ServerMessage::Pong(_)
        ));
    }
    for i in 0..40 {
        junk.send_raw(&format!("not json {i}")).await;
    }
    for _ in 0..20 {
        match junk.recv_skip_presence().await {
            ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::MalformedFrame),
            other => panic!("expected malformed-frame, got {other:?}"),
        }
    }
    match junk.recv_skip_presence().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::RateLimited),
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert_eq!(junk.closed().await, 1008);
    bystander.assert_quiet().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_over_256_kib_is_closed_with_1009_and_a_reason() {
    let (server, _dir) = server(Limits::default()).await;
    let addr = server.local_addr();
    let mut big = join_from(A, addr, "big").await;
    let payload = format!(
        r#"{{"type":"ping","nonce":1,"pad":"{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let _ = big.ws.send(Message::text(payload)).await;
    loop {
        let frame = tokio::time::timeout(WAIT, big.ws.next())
            .await
            .expect("no close in time");
        match frame {
            Some(Ok(Message::Close(Some(close)))) => {
                assert_eq!(u16::from(close.code), 1009);
                assert_eq!(close.reason.as_str(), "message over 256 KiB");
                break;
            }
            Some(Ok(Message::Text(_))) => continue,
            other => panic!("expected a close frame with 1009, got {other:?}"),
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_live_count_counts_people_not_tabs() {
    let (server, _dir) = server(Limits::default()).await;
    let addr = server.local_addr();
    // One anonymous person in two tabs (the second presents the first's token)...
    let first = join_from(A, addr, "people").await;
    let token = first.welcome().token.clone().unwrap();
    let (second, welcome) = hello_from(A, addr, "people", Some(token)).await;
    let ServerMessage::Welcome(welcome) = welcome else {
        panic!("expected welcome, got {welcome:?}");
    };
    assert_eq!(welcome.online, 1, "a second tab is not a second person");
    // ...and another person: two people in three tabs.
    let third = join_from(C, addr, "people").await;
    assert_eq!(third.welcome().online, 2);
    drop((first, second, third));
    server.shutdown().await;
}

#[tokio::test]
async fn many_sockets_from_one_address_neither_fill_an_image_nor_inflate_its_count() {
    let (server, _dir) = server(Limits::default()).await;
    let addr = server.local_addr();
    // 150 sockets from one address, each a fresh anonymous person: 50 are let in (the
    // per-address share of an image), the rest are refused with 4002.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..150 {
        match hello_from(A, addr, "crowd", None).await {
            (c, ServerMessage::Welcome(_)) => held.push(c),
            (mut c, ServerMessage::Error(e)) => {
                assert_eq!(e.code, ErrorCode::LimitExceeded);
                assert_eq!(c.closed().await, 4002);
                refused += 1;
            }
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((held.len(), refused), (50, 100));
    // Someone from elsewhere sees the attacker's address counted as 10 people at most.
    let other = join_from(C, addr, "crowd").await;
    assert_eq!(other.welcome().online, 11);
    drop(held);
    server.shutdown().await;
}

#[tokio::test]
async fn two_addresses_cannot_fill_an_images_viewer_slots() {
    let limits = Limits {
        tenant: TenantLimits {
            max_connections_per_image: 7,
            ..TenantLimits::default()
        },
        max_viewers_per_ip_per_image: 3,
        ..Limits::default()
    };
    let (server, _dir) = server(limits).await;
    let addr = server.local_addr();
    let mut held = Vec::new();
    for source in [A, B] {
        for _ in 0..3 {
            held.push(join_from(source, addr, "slots").await);
        }
        let (mut c, answer) = hello_from(source, addr, "slots", None).await;
        match answer {
            ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::LimitExceeded),
            other => panic!("a 4th viewer from one address was let in: {other:?}"),
        }
        assert_eq!(c.closed().await, 4002);
    }
    // A third address still gets in.
    let mut third = join_from(C, addr, "slots").await;
    third.assert_quiet().await;
    drop(held);
    server.shutdown().await;
}
