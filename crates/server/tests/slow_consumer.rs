//! A client that stops reading is cut off with close code 4000 ("slow consumer": reconnect and
//! resync) while a normal client of the same image keeps receiving every event promptly, and the
//! cut-off client can come back and resume. Over real sockets on 127.0.0.1:0.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::{ClientMessage, ImageId, Position, ServerMessage, TenantId};
use image_chat_server::Security;
use image_chat_server::app::SessionLimits;
use image_chat_server::limits::Limits;
use image_chat_server::store::ImageKey;
use support::{Client, WAIT, commit, create_op, hello, start_with_security};
use tokio::net::TcpSocket;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

// Long enough that a busy 2-core machine finishes a round of 16 commits well within it: the
// assertion below is that the watcher is not held up for the whole send timeout.
const SEND_TIMEOUT: Duration = Duration::from_millis(3000);

/// A round of 16 ops starts at most this often, so that however fast the machine commits, the
/// events written before the cut-off (the send buffers' fill plus `SEND_TIMEOUT`: a few
/// seconds, at most ~107 events a second of ~16 KB) stay far below what one catch-up frame may
/// carry to the reconnecting client (16 MiB): unpaced, a fast machine committed ~1,900 events
/// (~30 MB) before the cut-off.
const ROUND_EVERY: Duration = Duration::from_millis(150);

/// Opens a socket with a tiny receive buffer, says hello, and then reads nothing.
async fn never_reading_client(
    addr: std::net::SocketAddr,
    image: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .unwrap()
        .unwrap();
    let request = format!("ws://{addr}/ws").into_client_request().unwrap();
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .unwrap()
        .unwrap();
    let hello = ClientMessage::Hello(hello(image, None)).to_json();
    ws.send(Message::text(hello)).await.unwrap();
    ws
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_and_others_keep_receiving() {
    let limits = SessionLimits {
        send_timeout: SEND_TIMEOUT,
        ..SessionLimits::default()
    };
    // The database on tmpfs when there is one: this test commits a few hundred events and
    // measures fan-out, not the disk's fsync.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    // One publisher pipelines hundreds of ops: the abuse limits would (rightly) refuse them.
    let security = Security {
        limits: Limits::unlimited(),
        tls: None,
    };
    let server = start_with_security(&dir.path().join("db"), 1000, limits, security).await;
    let image = ImageKey::image(TenantId::new("demo"), ImageId::new("busy"));
    let addr = server.local_addr();
    let mut publisher = Client::join(addr, "busy").await;
    let mut watcher = Client::join(addr, "busy").await;
    let mut slow = never_reading_client(addr, "busy").await;
    let app = server.app();
    let deadline = Instant::now() + WAIT;
    while app.presence.count(&image).await < 3 {
        assert!(Instant::now() < deadline, "the slow client never joined");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Big comments (4,000 four-byte characters: ~16 KB per event) fill the slow client's socket
    // buffers quickly; ops are pipelined in rounds of 16.
    let text = "\u{1F30A}".repeat(4_000);
    let mut worst = Duration::ZERO;
    let mut sent = 0u64;
    let mut cut_after = None;
    // Rounds go on until the cut-off (bounded by WAIT), however fast this machine commits.
    let rounds_until = Instant::now() + WAIT;
    while Instant::now() < rounds_until {
        let started = Instant::now();
        for _ in 0..16 {
            publisher
                .send(&ClientMessage::CreateChat(create_op(0.5, 0.5, &text)))
                .await;
        }
        for _ in 0..16 {
            // The watcher gets every event, in order, promptly, whatever the slow client does.
            sent += 1;
            match watcher.recv_skip_presence().await {
                ServerMessage::NewImageChat(e) => assert_eq!(e.seq, sent),
                other => panic!("expected event {sent}, got {other:?}"),
            }
        }
        worst = worst.max(started.elapsed());
        for _ in 0..32 {
            // The publisher's acks and echoes.
            publisher.recv_skip_presence().await;
        }
        if app.presence.count(&image).await == 2 {
            cut_after = Some(sent);
            break;
        }
        tokio::time::sleep_until(started + ROUND_EVERY).await;
    }
    let cut_after = cut_after.expect("the slow client was never cut off");
    println!("slow client cut off after {cut_after} events; worst round to the watcher {worst:?}");
    assert!(
        worst < SEND_TIMEOUT,
        "the watcher was held up by the slow client: {worst:?}"
    );

    // The slow client, reading at last, finds what fit in the buffers and then the close code.
    let mut last = Position { epoch: 0, seq: 0 };
    let code = loop {
        let frame = tokio::time::timeout(WAIT, slow.next())
            .await
            .expect("no close in time");
        match frame {
            Some(Ok(Message::Text(text))) => match ServerMessage::from_json(&text).unwrap() {
                ServerMessage::NewImageChat(e) => {
                    last = Position {
                        epoch: e.epoch,
                        seq: e.seq,
                    }
                }
                ServerMessage::Welcome(_) | ServerMessage::Presence(_) => {}
                other => panic!("unexpected {other:?}"),
            },
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            other => panic!("expected the close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 4000, "slow consumer must be told to reconnect");
    assert!(
        last.seq < sent,
        "the slow client cannot have received everything"
    );

    // Life goes on for the others...
    let seq = commit(
        &mut publisher,
        ClientMessage::CreateChat(create_op(0.1, 0.1, "still here")),
    )
    .await;
    match watcher.recv_skip_presence().await {
        ServerMessage::NewImageChat(e) => assert_eq!(e.seq, seq),
        other => panic!("expected event {seq}, got {other:?}"),
    }
    // ...and the slow client resyncs from where it was.
    let mut back = Client::join_with(addr, hello("busy", Some(last))).await;
    let welcome = back.welcome().clone();
    assert_eq!(welcome.position.seq, seq);
    if last.seq > 0 {
        assert!(welcome.recovered);
        assert_eq!(welcome.events.len() as u64, seq - last.seq);
    }
    back.assert_quiet().await;
}
