//! wss:// served directly: a self-signed certificate made in the test (rcgen), the server
//! started through the real `serve` flags (`--tls-cert`, `--tls-key`), and a rustls client that
//! trusts only that certificate. The server writes published frames into wss sockets itself
//! too (`transport`): many viewers get every event once and in order, posters get their ack
//! first, pings and closes are answered. Also: plaintext and stalled handshakes on the TLS port
//! do not disturb anyone else, and unusable certificate files stop the server from starting.

#![allow(clippy::unwrap_used)]

mod support;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::{ClientMessage, ServerMessage};
use image_chat_server::config::{self, Cli, Command};
use image_chat_server::{RunningServer, StartError};
use rustls_pki_types::CertificateDer;
use support::wss::Wss;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

struct Tls {
    server: RunningServer,
    cert: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

fn serve_args(dir: &std::path::Path, cert: &str, key: &str) -> config::ServeArgs {
    let db = dir.join("db");
    let cli = Cli::try_parse_from([
        "image-chat-server",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        db.to_str().unwrap(),
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ])
    .unwrap();
    match cli.command {
        Command::Serve(args) => *args,
        _ => unreachable!(),
    }
}

async fn start_tls() -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, generated.cert.pem()).unwrap();
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).unwrap();
    let args = serve_args(
        dir.path(),
        cert_path.to_str().unwrap(),
        key_path.to_str().unwrap(),
    );
    let server = config::start(&args).await.unwrap();
    assert!(server.is_tls());
    Tls {
        server,
        cert: generated.cert.der().clone(),
        _dir: dir,
    }
}

/// Opens wss://localhost:PORT/ws.
async fn wss(tls: &Tls) -> Wss {
    support::wss::connect(tls.server.local_addr(), &tls.cert).await
}

async fn send(ws: &mut Wss, message: &ClientMessage) {
    ws.send(Message::text(message.to_json())).await.unwrap();
}

/// Next message that is not a presence update.
async fn recv(ws: &mut Wss) -> ServerMessage {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no message in time")
            .expect("socket ended")
            .unwrap();
        if let Message::Text(text) = frame {
            match ServerMessage::from_json(&text).unwrap() {
                ServerMessage::Presence(_) => continue,
                other => return other,
            }
        }
    }
}

/// A session over wss:// works end to end: hello, welcome, create, ack, echo.
async fn assert_wss_session_works(tls: &Tls) {
    let mut ws = wss(tls).await;
    send(&mut ws, &ClientMessage::Hello(hello("tls-img", None))).await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::Welcome(_)));
    let op = create_op(0.5, 0.5, "over TLS");
    send(&mut ws, &ClientMessage::CreateChat(op.clone())).await;
    match recv(&mut ws).await {
        ServerMessage::Ack(ack) => assert_eq!(ack.broadcast_id, op.broadcast_id),
        other => panic!("expected ack, got {other:?}"),
    }
    assert!(matches!(
        recv(&mut ws).await,
        ServerMessage::NewImageChat(_)
    ));
}

#[tokio::test]
async fn wss_serves_sessions_with_the_configured_certificate() {
    let tls = start_tls().await;
    assert_wss_session_works(&tls).await;
    tls.server.shutdown().await;
}

/// Opens wss://, says hello for `image` and reads the welcome.
async fn join_wss(tls: &Tls, image: &str) -> Wss {
    let mut ws = wss(tls).await;
    send(&mut ws, &ClientMessage::Hello(hello(image, None))).await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::Welcome(_)));
    ws
}

/// The events of a frame: one, or a batch's (the server coalesces a busy image's events).
fn events(message: ServerMessage) -> Vec<image_chat_protocol::Event> {
    message
        .into_events()
        .unwrap_or_else(|other| panic!("expected an event, got {other:?}"))
}

#[tokio::test]
async fn wss_viewers_get_each_event_once_in_order_and_posters_their_ack_first() {
    // Over TLS too the image's pump writes published frames into the sockets itself
    // (`transport`: each viewer's copy encrypted under its outlet's lock), and each op is
    // answered on its own connection before the echo of its event (PROTOCOL §5).
    let tls = start_tls().await;
    let mut viewers = Vec::new();
    for _ in 0..40 {
        viewers.push(join_wss(&tls, "crowd").await);
    }
    let mut posters = [join_wss(&tls, "crowd").await, join_wss(&tls, "crowd").await];
    const OPS: usize = 8;
    let mut sent = [Vec::new(), Vec::new()];
    for i in 0..OPS {
        for (poster, sent) in posters.iter_mut().zip(&mut sent) {
            let op = create_op(0.05 + 0.1 * i as f64, 0.5, "pipelined over TLS");
            sent.push(op.broadcast_id.clone());
            send(poster, &ClientMessage::CreateChat(op)).await;
        }
    }
    for (poster, sent) in posters.iter_mut().zip(&sent) {
        let mut log = PosterLog::new(sent);
        while log.acked.len() < OPS || log.events < 2 * OPS {
            log.see(recv(poster).await);
        }
        assert_eq!(
            &log.acked, sent,
            "every op answered once, in the order sent"
        );
    }
    for viewer in &mut viewers {
        let mut seqs = Vec::new();
        while seqs.len() < 2 * OPS {
            seqs.extend(events(recv(viewer).await).iter().map(|e| e.seq()));
        }
        assert_eq!(seqs, (1..=(2 * OPS) as u64).collect::<Vec<_>>());
    }
    tls.server.shutdown().await;
}

#[tokio::test]
async fn wss_pings_and_a_clients_close_are_answered() {
    // tungstenite's own answers go through the TLS session in order with everything else.
    let tls = start_tls().await;
    let mut ws = join_wss(&tls, "tls-ping").await;
    ping_is_answered(&mut ws).await;
    // The session goes on after it.
    let op = create_op(0.5, 0.5, "still here");
    send(&mut ws, &ClientMessage::CreateChat(op.clone())).await;
    match recv(&mut ws).await {
        ServerMessage::Ack(ack) => assert_eq!(ack.broadcast_id, op.broadcast_id),
        other => panic!("expected ack, got {other:?}"),
    }
    close_is_answered(&mut ws).await;
    tls.server.shutdown().await;
}

#[tokio::test]
async fn plaintext_and_stalled_handshakes_do_not_disturb_others() {
    let tls = start_tls().await;
    // A client that opens TCP and never starts the handshake (slowloris on the TLS port).
    let _stalled = TcpStream::connect(tls.server.local_addr()).await.unwrap();
    // A client that speaks plain HTTP / ws:// to the TLS port: its handshake fails.
    let mut plain = TcpStream::connect(tls.server.local_addr()).await.unwrap();
    plain
        .write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, plain.read_to_end(&mut buf))
        .await
        .expect("the server kept a failed handshake open");
    // Closed (possibly with a TLS alert), never an HTTP answer.
    assert!(read.is_err() || !String::from_utf8_lossy(&buf).contains("HTTP/1.1"));
    // Meanwhile a proper client is served.
    assert_wss_session_works(&tls).await;
    tls.server.shutdown().await;
}

#[tokio::test]
async fn unusable_certificate_files_stop_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    let other_key = dir.path().join("other-key.pem");
    let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
    std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
    for (c, k) in [
        (&garbage, &garbage),
        (&missing, &missing),
        (&cert, &garbage),
        // A key that does not belong to the certificate.
        (&cert, &other_key),
    ] {
        let args = serve_args(dir.path(), c.to_str().unwrap(), k.to_str().unwrap());
        match config::start(&args).await {
            Err(StartError::Tls(err)) => {
                // The message names the file, never key material.
                assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
            }
            Err(other) => panic!("expected a TLS error, got {other}"),
            Ok(_) => panic!("started with {c:?} / {k:?}"),
        }
    }
}
