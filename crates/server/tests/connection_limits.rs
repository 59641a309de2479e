//! Slow and half-sent HTTP requests (docs/SECURITY.md, rows 87–91): connections are counted per
//! address and in total from the moment they are accepted, on the plain and the TLS port; a
//! request head has a deadline and a size limit. Real sockets on 127.0.0.1:0; the attacker is
//! 127.0.0.1 and well-behaved clients connect from 127.0.0.2 (Linux routes all of 127/8 to
//! loopback), so the per-address limit tells them apart exactly as it would on the internet.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use image_chat_server::app::SessionLimits;
use image_chat_server::limits::{HttpLimits, Limits};
use image_chat_server::{RunningServer, Security};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A server with these per-address and HTTP limits (nothing else limited).
async fn server(
    max_per_ip: u32,
    http: HttpLimits,
    tls: bool,
) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls.then(|| {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let key =
            rustls_pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
        image_chat_server::tls::config_from(vec![generated.cert.der().clone()], key).unwrap()
    });
    let limits = Limits {
        max_connections_per_ip: max_per_ip,
        http,
        ..Limits::unlimited()
    };
    let server = start_with_security(
        &dir.path().join("db"),
        1000,
        SessionLimits::default(),
        Security { limits, tls },
    )
    .await;
    (server, dir)
}

/// A TCP connection from `source` (an address on the loopback network).
async fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
    tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .expect("connect timed out")
        .unwrap()
}

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const GOOD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The first part of a request head, never finished (slowloris).
const HALF: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";

/// Waits (bounded by WAIT) until `source` gets a plain 200 from `/healthz` again: its earlier
/// connections have been counted out.
async fn served_again(source: Ipv4Addr, addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut s = connect_from(source, addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (response, _) = read_until_closed(&mut s, WAIT).await;
        if response.starts_with("HTTP/1.1 200") {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {response}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads until the server closes; returns what it sent and how long that took.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + within),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => panic!(
                "still open after {within:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

/// Whether the server still holds `stream` open (nothing to read, no EOF) for `for_`.
async fn still_open(stream: &mut TcpStream, for_: Duration) -> bool {
    let mut buf = [0u8; 64];
    tokio::time::timeout(for_, stream.read(&mut buf))
        .await
        .is_err()
}

/// A complete request from a well-behaved client: answered promptly.
async fn healthz_from(source: Ipv4Addr, addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut s = connect_from(source, addr).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (response, _) = read_until_closed(&mut s, WAIT).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
    started.elapsed()
}

#[tokio::test]
async fn half_sent_requests_over_the_per_address_limit_are_refused_at_once() {
    let http = HttpLimits {
        // Long: the refusals below must come from the per-address limit, not the timeout.
        header_read_timeout: Duration::from_secs(60),
        ..HttpLimits::default()
    };
    let (server, _dir) = server(20, http, false).await;
    let addr = server.local_addr();
    // 20 half-sent requests: the address's whole allowance, held open.
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = connect_from(ATTACKER, addr).await;
        s.write_all(HALF).await.unwrap();
        held.push(s);
    }
    // 300 more: each is answered 429 and closed at once, without the server reading a byte.
    let mut refused = Vec::new();
    for _ in 0..300 {
        let mut s = connect_from(ATTACKER, addr).await;
        let _ = s.write_all(HALF).await;
        refused.push(s);
    }
    for (i, s) in refused.iter_mut().enumerate() {
        let (response, took) = read_until_closed(s, Duration::from_secs(3)).await;
        assert!(
            response.starts_with("HTTP/1.1 429") && response.contains("retry-after: 10"),
            "refused connection {i}: {response:?}"
        );
        assert!(took < Duration::from_secs(3));
    }
    // Meanwhile another address is served at once, over plain HTTP and over a WebSocket.
    assert!(healthz_from(GOOD, addr).await < Duration::from_secs(2));
    let mut ws = good_ws(addr).await;
    ws.assert_quiet().await;
    // The held ones are still open (they are within the limit and within the timeout)...
    assert!(still_open(&mut held[0], Duration::from_millis(200)).await);
    // ...and when they go, the address may connect again.
    drop(held);
    served_again(ATTACKER, addr, "never counted out").await;
    server.shutdown().await;
}

/// A WebSocket client from the well-behaved address that said hello.
async fn good_ws(addr: SocketAddr) -> Client {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let tcp = connect_from(GOOD, addr).await;
    let request = format!("ws://{addr}/ws").into_client_request().unwrap();
    let (ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(tcp)),
    )
    .await
    .unwrap()
    .unwrap();
    let mut client = Client { ws, welcome: None };
    client
        .send(&image_chat_protocol::ClientMessage::Hello(hello(
            "good", None,
        )))
        .await;
    assert!(matches!(
        client.recv().await,
        image_chat_protocol::ServerMessage::Welcome(_)
    ));
    client
}

#[tokio::test]
async fn a_half_sent_request_and_an_idle_keep_alive_are_closed_at_the_header_timeout() {
    let timeout = Duration::from_millis(600);
    let http = HttpLimits {
        header_read_timeout: timeout,
        ..HttpLimits::default()
    };
    let (server, _dir) = server(0, http, false).await;
    let addr = server.local_addr();
    // A request head that never ends.
    let mut slow = connect_from(ATTACKER, addr).await;
    slow.write_all(HALF).await.unwrap();
    // A connection that sends nothing at all.
    let mut silent = connect_from(ATTACKER, addr).await;
    // A keep-alive connection that made one request and then idles.
    let mut idle = connect_from(ATTACKER, addr).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Read all three at once: each must stay open about the timeout, then close.
    let (slow, silent, idle) = tokio::join!(
        read_until_closed(&mut slow, timeout * 5),
        read_until_closed(&mut silent, timeout * 5),
        read_until_closed(&mut idle, timeout * 5),
    );
    for (name, (got, took)) in [("slow", slow), ("silent", silent), ("idle", idle)] {
        assert!(
            took >= timeout / 2,
            "{name} closed too early: {took:?} {got:?}"
        );
    }
    // Trickling the head byte by byte does not extend the deadline.
    let mut trickle = connect_from(ATTACKER, addr).await;
    let started = Instant::now();
    let closed = async {
        for byte in HALF.iter().cycle() {
            if trickle.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(timeout * 5, closed)
        .await
        .expect("a trickled head outlived the header timeout");
    assert!(started.elapsed() >= timeout / 2);
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_request_heads_get_431_and_the_server_wide_cap_503() {
    let http = HttpLimits {
        max_connections: 10,
        max_header_bytes: 8 * 1024,
        ..HttpLimits::default()
    };
    let (server, _dir) = server(0, http, false).await;
    let addr = server.local_addr();
    // 20 KB of headers (hyper's default would buffer ~400 KB per connection before refusing).
    let mut big = connect_from(GOOD, addr).await;
    let filler = "a".repeat(1000);
    let mut head = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..20 {
        head.push_str(&format!("X-Filler-{i}: {filler}\r\n"));
    }
    head.push_str("\r\n");
    let _ = big.write_all(head.as_bytes()).await;
    let (response, _) = read_until_closed(&mut big, WAIT).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response:?}");
    // 10 connections from several addresses fill the server; the 11th is refused with 503.
    let mut held = Vec::new();
    for i in 0..10u8 {
        held.push(connect_from(Ipv4Addr::new(127, 0, 1, i + 1), addr).await);
    }
    let mut over = connect_from(GOOD, addr).await;
    let (response, took) = read_until_closed(&mut over, Duration::from_secs(3)).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response:?}");
    assert!(took < Duration::from_secs(3));
    drop(held);
    served_again(GOOD, addr, "never freed").await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_tls_port_counts_connections_at_accept_before_the_handshake() {
    let (server, _dir) = server(5, HttpLimits::default(), true).await;
    let addr = server.local_addr();
    // Five TCP connections that never start a handshake hold the address's allowance...
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from(ATTACKER, addr).await);
    }
    // ...so the sixth is closed at once, long before the 10 s handshake timeout.
    let mut sixth = connect_from(ATTACKER, addr).await;
    let (_, took) = read_until_closed(&mut sixth, Duration::from_secs(3)).await;
    assert!(took < Duration::from_secs(3));
    assert!(still_open(&mut held[0], Duration::from_millis(200)).await);
    // Another address still completes its handshake.
    let good = connect_from(GOOD, addr).await;
    let (n, _) = tls_client_hello_answered(good).await;
    assert!(n > 0, "no ServerHello for a well-behaved client");
    server.shutdown().await;
}

/// Sends a TLS ClientHello (any will do: the server answers with its own hello or an alert)
/// and returns how many bytes came back.
async fn tls_client_hello_answered(mut tcp: TcpStream) -> (usize, Duration) {
    let started = Instant::now();
    // A minimal TLS 1.2 ClientHello built by rustls itself.
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    tcp.write_all(&hello).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    (n, started.elapsed())
}
