//! Scenario 6, hostile traffic: the well-behaved load of [`scenario::load`] (N viewers of one
//! image, one publisher) measured twice, alone and while attackers run against the same server:
//!
//! - **slowloris**: connections that send a request head one header line per second and never
//!   finish it (reconnecting when the server closes them);
//! - **slow readers**: WebSockets on the busy image that say `hello` and never read again;
//! - **junk**: WebSockets on the busy image sending invalid frames as fast as their pacing allows
//!   (reconnecting when the server closes them with 1008);
//! - **snapshot readers**: `GET /api/v1/tenants/demo/snapshot?image=…` of the busy image in a
//!   loop, each on a fresh connection.
//!
//! With `--tls` every attacker speaks TLS to the server's TLS port, as one on a wss:// site
//! would: slowloris completes the handshake and then trickles its head inside it, slow readers
//! and junk are wss:// clients, snapshot readers fetch over HTTPS. Each attacker has one code
//! path over a [`Stream`], plain TCP or TLS over it.
//!
//! Everything runs from 127.0.0.1 against a server whose per-address limits are lifted (the
//! well-behaved viewers share that address), so the figure shows what attack traffic costs the
//! server once it got past the per-address limits, e.g. from many addresses. Bounded: the
//! attackers are a fixed number of tasks, paced, and stop with the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client::{self, Endpoint};
use crate::scenario::{self, LoadParams, Report};
use crate::server::Server;
use crate::tls;

/// The image the well-behaved load and the attackers share.
const IMAGE: &str = "img-0";

/// Parameters of [`hostile`].
#[derive(Clone, Debug, Serialize)]
pub struct HostileParams {
    /// Well-behaved viewers of the image (one of them publishes).
    pub clients: usize,
    /// Ops per second of the publisher.
    pub rate: f64,
    /// Seconds of publishing, per phase.
    pub duration_secs: f64,
    /// Slowloris connections held at once.
    pub slowloris: usize,
    /// WebSockets that never read.
    pub slow_readers: usize,
    /// WebSockets sending junk.
    pub junk: usize,
    /// Junk frames per second per junk connection.
    pub junk_rate: f64,
    /// Tasks fetching the snapshot in a loop.
    pub snapshot_readers: usize,
}

/// What the attackers did (and what the server did to them).
#[derive(Debug, Default, Serialize)]
struct AttackStats {
    slowloris_opened: AtomicU64,
    slowloris_closed_by_server: AtomicU64,
    slow_readers_opened: AtomicU64,
    junk_connections: AtomicU64,
    junk_frames: AtomicU64,
    junk_closed_1008: AtomicU64,
    snapshot_requests: AtomicU64,
    snapshot_bytes: AtomicU64,
    snapshot_failures: AtomicU64,
    /// TLS handshakes of slowloris, slow readers and snapshot readers that failed (`--tls`;
    /// junk connects as the well-behaved clients do, whose failures are not counted).
    tls_handshake_failures: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Runs the well-behaved load alone, then under attack; reports both.
pub async fn hostile(server: &Server, p: &HostileParams) -> Result<Report, String> {
    let load = LoadParams {
        clients: p.clients,
        images: 1,
        publishers: 1,
        rate: p.rate,
        duration_secs: p.duration_secs,
        replies: false,
    };
    let calm = scenario::load(server, &load).await?;

    let stats = Arc::new(AttackStats::default());
    let (stop_tx, stop) = watch::channel(false);
    let mut attackers = Vec::new();
    let endpoint = server.endpoint();
    for _ in 0..p.slowloris {
        attackers.push(tokio::spawn(slowloris(
            endpoint.clone(),
            Arc::clone(&stats),
            stop.clone(),
        )));
    }
    let mut slow = Vec::new();
    for _ in 0..p.slow_readers {
        if let Ok(ws) = slow_reader(&endpoint, &stats).await {
            bump(&stats.slow_readers_opened);
            slow.push(ws);
        }
    }
    for _ in 0..p.junk {
        attackers.push(tokio::spawn(junk(
            endpoint.clone(),
            p.junk_rate,
            Arc::clone(&stats),
            stop.clone(),
        )));
    }
    for _ in 0..p.snapshot_readers {
        attackers.push(tokio::spawn(snapshot_reader(
            endpoint.clone(),
            Arc::clone(&stats),
            stop.clone(),
        )));
    }
    // Let the attack ramp up before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attacked = scenario::load(server, &load).await;
    let _ = stop_tx.send(true);
    for attacker in attackers {
        let _ = attacker.await;
    }
    drop(slow);
    let attacked = attacked?;

    let latency = |r: &Report| r.results.get("latency").cloned().unwrap_or(Value::Null);
    let cell = |r: &Report| {
        let l = latency(r);
        let ms = |k: &str| l.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        format!(
            "{:.2} / {:.2} / {:.2} ms",
            ms("p50_ms"),
            ms("p99_ms"),
            ms("max_ms")
        )
    };
    let deliveries = |r: &Report| {
        let n = |k: &str| r.results.get(k).and_then(Value::as_u64).unwrap_or(0);
        format!("{} / {}", n("deliveries"), n("deliveries_expected"))
    };
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut table = vec![
        ("well-behaved p50/p99/max, no attack".into(), cell(&calm)),
        (
            "well-behaved p50/p99/max, under attack".into(),
            cell(&attacked),
        ),
        (
            "deliveries (received / expected), no attack".into(),
            deliveries(&calm),
        ),
        (
            "deliveries (received / expected), under attack".into(),
            deliveries(&attacked),
        ),
        (
            "slowloris: opened / closed by the server".into(),
            format!(
                "{} / {}",
                n(&stats.slowloris_opened),
                n(&stats.slowloris_closed_by_server)
            ),
        ),
        (
            "slow readers connected".into(),
            n(&stats.slow_readers_opened).to_string(),
        ),
        (
            "junk: connections / frames / closed with 1008".into(),
            format!(
                "{} / {} / {}",
                n(&stats.junk_connections),
                n(&stats.junk_frames),
                n(&stats.junk_closed_1008)
            ),
        ),
        (
            "snapshots: requests / MB / failures".into(),
            format!(
                "{} / {:.1} / {}",
                n(&stats.snapshot_requests),
                n(&stats.snapshot_bytes) as f64 / 1e6,
                n(&stats.snapshot_failures)
            ),
        ),
    ];
    if endpoint.tls.is_some() {
        table.push((
            "TLS handshakes failed (slowloris, slow readers, snapshots)".into(),
            n(&stats.tls_handshake_failures).to_string(),
        ));
    }
    let attack = serde_json::to_value(&*stats).map_err(|e| e.to_string())?;
    Ok(Report {
        scenario: "hostile".into(),
        label: None,
        server: crate::summary::REFERENCE.into(),
        params: serde_json::to_value(p).map_err(|e| e.to_string())?,
        results: json!({
            "calm": calm.results,
            "attacked": attacked.results,
            "attack": attack,
        }),
        table,
    })
}

/// Whether the run is over.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One slowloris slot: a request head trickled one header line per second, never finished
/// (inside the TLS session with `--tls`: the handshake completes, the head never does).
async fn slowloris(endpoint: Endpoint, stats: Arc<AttackStats>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let opened = tokio::select! {
            () = stopped(&mut stop) => return,
            opened = open(&endpoint, None, &stats) => opened,
        };
        let Ok(mut stream) = opened else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        bump(&stats.slowloris_opened);
        if send(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            continue;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut buf = [0u8; 512];
        loop {
            tokio::select! {
                () = stopped(&mut stop) => return,
                read = stream.read(&mut buf) => {
                    // The server answered (timeout, 4xx) or closed: it is done with us. Over
                    // TLS a close without close_notify is an error, and means the same.
                    if matches!(read, Ok(0) | Err(_)) {
                        bump(&stats.slowloris_closed_by_server);
                        break;
                    }
                }
                _ = tick.tick() => {
                    if send(&mut stream, b"X-Slow: 1\r\n").await.is_err() {
                        bump(&stats.slowloris_closed_by_server);
                        break;
                    }
                }
            }
        }
    }
}

/// A WebSocket with a tiny receive buffer that says `hello` on the busy image and never reads.
async fn slow_reader(endpoint: &Endpoint, stats: &AttackStats) -> Result<client::Ws, AttackError> {
    let stream = open(endpoint, Some(4096), stats).await?;
    let request = ws_url(endpoint).into_client_request()?;
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream).await?;
    ws.send(Message::text(client::hello(IMAGE, None).to_json()))
        .await?;
    Ok(ws)
}

/// A WebSocket on the busy image sending invalid frames at `rate` per second and reading what
/// comes back; reconnects when the server closes it.
async fn junk(
    endpoint: client::Endpoint,
    rate: f64,
    stats: Arc<AttackStats>,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_secs_f64(1.0 / rate.max(1.0));
    while !*stop.borrow() {
        let Ok((mut ws, _)) = client::connect(&endpoint, IMAGE, None).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        bump(&stats.junk_connections);
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = stopped(&mut stop) => return,
                frame = ws.next() => match frame {
                    Some(Ok(Message::Close(close))) => {
                        if close.is_some_and(|c| u16::from(c.code) == 1008) {
                            bump(&stats.junk_closed_1008);
                        }
                        break;
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                _ = tick.tick() => {
                    if ws.send(Message::text("{junk")).await.is_err() {
                        break;
                    }
                    bump(&stats.junk_frames);
                }
            }
        }
    }
}

/// Fetches the busy image's snapshot in a loop, one connection per request (HTTPS with
/// `--tls`).
async fn snapshot_reader(
    endpoint: Endpoint,
    stats: Arc<AttackStats>,
    mut stop: watch::Receiver<bool>,
) {
    let request = format!(
        "GET /api/v1/tenants/demo/snapshot?image={IMAGE} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        authority(&endpoint)
    );
    let mut body = Vec::new();
    while !*stop.borrow() {
        let fetch = async {
            let mut stream = open(&endpoint, None, &stats).await.ok()?;
            send(&mut stream, request.as_bytes()).await.ok()?;
            body.clear();
            stream.read_to_end(&mut body).await.ok()?;
            body.starts_with(b"HTTP/1.1 200").then_some(body.len())
        };
        tokio::select! {
            () = stopped(&mut stop) => return,
            fetched = fetch => match fetched {
                Some(bytes) => {
                    bump(&stats.snapshot_requests);
                    stats.snapshot_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                }
                None => {
                    bump(&stats.snapshot_failures);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// An attacker's connection: plain TCP, or TLS over it with `--tls` (the type the WebSocket
/// clients use too, so a slow reader's socket is a [`client::Ws`] either way).
type Stream = MaybeTlsStream<TcpStream>;

/// Why an attacker could not get its connection.
#[derive(Debug, thiserror::Error)]
enum AttackError {
    /// TCP could not be opened.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The TLS handshake failed (`--tls`).
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] std::io::Error),
    /// The WebSocket upgrade or the `hello` failed.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}

/// Opens TCP to the server (with a receive buffer of `recv_buffer` bytes if given) and, if the
/// endpoint is wss://, completes the TLS handshake over it, counting a failed one.
async fn open(
    endpoint: &Endpoint,
    recv_buffer: Option<u32>,
    stats: &AttackStats,
) -> Result<Stream, AttackError> {
    let socket = if endpoint.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(AttackError::Connect)?;
    if let Some(bytes) = recv_buffer {
        socket
            .set_recv_buffer_size(bytes)
            .map_err(AttackError::Connect)?;
    }
    let tcp = socket
        .connect(endpoint.addr)
        .await
        .map_err(AttackError::Connect)?;
    let Some(config) = &endpoint.tls else {
        return Ok(MaybeTlsStream::Plain(tcp));
    };
    match tls::connect(config, tcp).await {
        Ok(stream) => Ok(MaybeTlsStream::Rustls(stream)),
        Err(err) => {
            bump(&stats.tls_handshake_failures);
            Err(AttackError::Handshake(err))
        }
    }
}

/// Writes `bytes` and flushes them: over TLS they could otherwise wait in the session's buffer,
/// and each slowloris trickle must reach the server when it is sent.
async fn send(stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// The server's authority as a client names it: its address, or [`tls::NAME`] and the port
/// over TLS (the name the certificate is for).
fn authority(endpoint: &Endpoint) -> String {
    match endpoint.tls {
        Some(_) => format!("{}:{}", tls::NAME, endpoint.addr.port()),
        None => endpoint.addr.to_string(),
    }
}

/// The WebSocket URL of the server.
fn ws_url(endpoint: &Endpoint) -> String {
    let scheme = if endpoint.tls.is_some() { "wss" } else { "ws" };
    format!("{scheme}://{}/ws", authority(endpoint))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::pin::Pin;

    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::tls::ServerTls;
    use crate::tls::test_support::acceptor;

    /// A server-side connection, decrypted when the test server speaks TLS.
    trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

    /// A test server on 127.0.0.1:0, speaking TLS with a generated certificate when `tls`.
    struct TestServer {
        listener: TcpListener,
        acceptor: Option<TlsAcceptor>,
        endpoint: Endpoint,
        _dir: tempfile::TempDir,
    }

    impl TestServer {
        async fn new(tls: bool) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let setup = tls.then(|| ServerTls::generate(dir.path()).unwrap());
            let endpoint = Endpoint {
                addr: listener.local_addr().unwrap(),
                tls: setup.as_ref().map(|t| Arc::clone(&t.client)),
            };
            Self {
                listener,
                acceptor: setup.as_ref().map(acceptor),
                endpoint,
                _dir: dir,
            }
        }

        async fn accept(&self) -> Pin<Box<dyn Conn>> {
            let (tcp, _) = self.listener.accept().await.unwrap();
            match &self.acceptor {
                Some(acceptor) => Box::pin(acceptor.accept(tcp).await.unwrap()),
                None => Box::pin(tcp),
            }
        }
    }

    /// Reads from `conn` until `text` has been seen; returns everything read.
    async fn read_until(conn: &mut Pin<Box<dyn Conn>>, text: &str) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&seen).contains(text) {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before {text:?}: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(seen).unwrap()
    }

    async fn slowloris_trickles_its_head(tls: bool) {
        let server = TestServer::new(tls).await;
        let stats = Arc::new(AttackStats::default());
        let (stop_tx, stop) = watch::channel(false);
        let attacker = tokio::spawn(slowloris(server.endpoint.clone(), Arc::clone(&stats), stop));
        let mut conn = server.accept().await;
        let head = tokio::time::timeout(
            Duration::from_secs(10),
            read_until(&mut conn, "X-Slow: 1\r\nX-Slow: 1\r\n"),
        )
        .await
        .unwrap();
        assert!(head.starts_with("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
        assert!(!head.contains("\r\n\r\n"), "the head is never finished");
        assert_eq!(stats.slowloris_opened.load(Ordering::Relaxed), 1);
        // The server gives up on it (without a TLS close_notify): it notices and reconnects.
        drop(conn);
        let _again = tokio::time::timeout(Duration::from_secs(10), server.accept())
            .await
            .unwrap();
        assert_eq!(stats.slowloris_closed_by_server.load(Ordering::Relaxed), 1);
        stop_tx.send(true).unwrap();
        attacker.await.unwrap();
        assert_eq!(stats.tls_handshake_failures.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn slowloris_trickles_its_head_over_tcp() {
        slowloris_trickles_its_head(false).await;
    }

    #[tokio::test]
    async fn slowloris_trickles_its_head_inside_a_tls_session() {
        slowloris_trickles_its_head(true).await;
    }

    async fn slow_reader_says_hello(tls: bool) {
        let server = TestServer::new(tls).await;
        let stats = AttackStats::default();
        let endpoint = server.endpoint.clone();
        let (ws, hello) = tokio::join!(slow_reader(&endpoint, &stats), async {
            let mut ws = tokio_tungstenite::accept_async(server.accept().await)
                .await
                .unwrap();
            ws.next().await.unwrap().unwrap()
        });
        let ws = ws.unwrap();
        assert_eq!(
            matches!(ws.get_ref(), MaybeTlsStream::Rustls(_)),
            tls,
            "wss:// exactly when the server speaks TLS"
        );
        let hello: Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
        assert_eq!(hello["type"], "hello");
    }

    #[tokio::test]
    async fn slow_readers_say_hello_over_ws() {
        slow_reader_says_hello(false).await;
    }

    #[tokio::test]
    async fn slow_readers_say_hello_over_wss() {
        slow_reader_says_hello(true).await;
    }

    async fn snapshot_readers_fetch(tls: bool) {
        let server = TestServer::new(tls).await;
        let stats = Arc::new(AttackStats::default());
        let (stop_tx, stop) = watch::channel(false);
        let attacker = tokio::spawn(snapshot_reader(
            server.endpoint.clone(),
            Arc::clone(&stats),
            stop,
        ));
        const RESPONSE: &[u8] =
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let host = authority(&server.endpoint);
        for _ in 0..2 {
            let mut conn = server.accept().await;
            let head = read_until(&mut conn, "\r\n\r\n").await;
            let request = "GET /api/v1/tenants/demo/snapshot?image=img-0 HTTP/1.1\r\n";
            assert!(head.starts_with(request), "{head}");
            assert!(head.contains(&format!("\r\nHost: {host}\r\n")), "{head}");
            conn.write_all(RESPONSE).await.unwrap();
            // A clean close: over TLS, close_notify before the FIN.
            conn.shutdown().await.unwrap();
        }
        // The second response is counted once the attacker has read it to the end.
        tokio::time::timeout(Duration::from_secs(10), async {
            while stats.snapshot_requests.load(Ordering::Relaxed) < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        stop_tx.send(true).unwrap();
        attacker.await.unwrap();
        assert_eq!(stats.snapshot_failures.load(Ordering::Relaxed), 0);
        let bytes = stats.snapshot_bytes.load(Ordering::Relaxed);
        assert_eq!(bytes, 2 * RESPONSE.len() as u64);
    }

    #[tokio::test]
    async fn snapshot_readers_fetch_over_http() {
        snapshot_readers_fetch(false).await;
    }

    #[tokio::test]
    async fn snapshot_readers_fetch_over_https() {
        snapshot_readers_fetch(true).await;
    }
}
