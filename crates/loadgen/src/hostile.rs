//! Scenario 6, hostile traffic: the well-behaved load of [`scenario::load`] (N viewers of one
//! image, one publisher) measured twice, alone and while attackers run against the same server:
//!
//! - **slowloris**: TCP connections that send a request head one header line per second and
//!   never finish it (reconnecting when the server closes them);
//! - **slow readers**: WebSockets on the busy image that say `hello` and never read again;
//! - **junk**: WebSockets on the busy image sending invalid frames as fast as their pacing allows
//!   (reconnecting when the server closes them with 1008);
//! - **snapshot readers**: `GET /api/v1/tenants/demo/snapshot?image=…` of the busy image in a
//!   loop, each on a fresh connection.
//!
//! Everything runs from 127.0.0.1 against a server whose per-address limits are lifted (the
//! well-behaved viewers share that address), so the figure shows what attack traffic costs the
//! server once it got past the per-address limits, e.g. from many addresses. Bounded: the
//! attackers are a fixed number of tasks, paced, and stop with the run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client;
use crate::scenario::{self, LoadParams, Report};
use crate::server::Server;

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
    let addr = server.addr;
    for _ in 0..p.slowloris {
        attackers.push(tokio::spawn(slowloris(
            addr,
            Arc::clone(&stats),
            stop.clone(),
        )));
    }
    let mut slow = Vec::new();
    for _ in 0..p.slow_readers {
        if let Ok(ws) = slow_reader(addr).await {
            bump(&stats.slow_readers_opened);
            slow.push(ws);
        }
    }
    for _ in 0..p.junk {
        attackers.push(tokio::spawn(junk(
            server.endpoint(),
            p.junk_rate,
            Arc::clone(&stats),
            stop.clone(),
        )));
    }
    for _ in 0..p.snapshot_readers {
        attackers.push(tokio::spawn(snapshot_reader(
            addr,
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
    let table = vec![
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

/// One slowloris slot: a request head trickled one header line per second, never finished.
async fn slowloris(addr: SocketAddr, stats: Arc<AttackStats>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let Ok(mut tcp) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        bump(&stats.slowloris_opened);
        if tcp
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
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
                read = tcp.read(&mut buf) => {
                    // The server answered (timeout, 4xx) or closed: it is done with us.
                    if matches!(read, Ok(0) | Err(_)) {
                        bump(&stats.slowloris_closed_by_server);
                        break;
                    }
                }
                _ = tick.tick() => {
                    if tcp.write_all(b"X-Slow: 1\r\n").await.is_err() {
                        bump(&stats.slowloris_closed_by_server);
                        break;
                    }
                }
            }
        }
    }
}

/// A WebSocket with a tiny receive buffer that says `hello` on the busy image and never reads.
async fn slow_reader(addr: SocketAddr) -> Result<client::Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .set_recv_buffer_size(4096)
        .map_err(|e| e.to_string())?;
    let tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("ws://{addr}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let (mut ws, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .map_err(|e| e.to_string())?;
    ws.send(Message::text(client::hello(IMAGE, None).to_json()))
        .await
        .map_err(|e| e.to_string())?;
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

/// Fetches the busy image's snapshot in a loop, one connection per request.
async fn snapshot_reader(
    addr: SocketAddr,
    stats: Arc<AttackStats>,
    mut stop: watch::Receiver<bool>,
) {
    let request = format!(
        "GET /api/v1/tenants/demo/snapshot?image={IMAGE} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut body = Vec::new();
    while !*stop.borrow() {
        let fetch = async {
            let mut tcp = TcpStream::connect(addr).await.ok()?;
            tcp.write_all(request.as_bytes()).await.ok()?;
            body.clear();
            tcp.read_to_end(&mut body).await.ok()?;
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
