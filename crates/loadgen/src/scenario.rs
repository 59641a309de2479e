//! The benchmark scenarios. Each is bounded in client count and time, and returns a report: a
//! table for people and a JSON value for tools.
//!
//! - [`idle`]: N connections that do nothing: server memory per connection.
//! - [`load`]: N clients over M images, P of them publishing R ops/s for D seconds: delivery
//!   latency (publisher's send → each subscriber's receive), deliveries and frames per second,
//!   bytes per event, server CPU.
//! - [`bytes`]: the size on the wire of a marker creation, a reply and a delete.
//! - [`storm`]: N live clients, the server restarted: time until every client is live and
//!   resynced again, and reconnects per second (spread by the widget's backoff jitter).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::Position;
use image_chat_sync::backoff::{Backoff, DEFAULT_BASE_MS, DEFAULT_CAP_MS};
use image_chat_sync::rng::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, ClientStats, ConnectError, Endpoint, Op, StopAll, Ws, now_ns};
use crate::server::{self, Server};
use crate::stats::Latency;

/// A finished scenario.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Free label given on the command line.
    pub label: Option<String>,
    /// The server measured (`--server-name`; image-chat unless a peer was run).
    pub server: String,
    /// Parameters.
    pub params: Value,
    /// Figures.
    pub results: Value,
    /// Rows for the printed table.
    #[serde(skip)]
    pub table: Vec<(String, String)>,
}

impl Report {
    /// Prints the table.
    pub fn print(&self) {
        let title = match &self.label {
            Some(label) => format!("{} ({label})", self.scenario),
            None => self.scenario.clone(),
        };
        println!("\n== {title} ==");
        println!("   params: {}", self.params);
        let width = self.table.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in &self.table {
            println!("   {key:<width$}  {value}");
        }
    }
}

/// Concurrent connection attempts while ramping up.
const CONNECT_CONCURRENCY: usize = 64;

fn image_of(client: usize, images: usize) -> String {
    format!("img-{}", client % images.max(1))
}

fn kib(v: Option<u64>) -> u64 {
    v.unwrap_or(0)
}

/// Connection timing of a ramp-up.
#[derive(Debug, Default, Serialize)]
struct ConnectStats {
    clients: usize,
    wall_secs: f64,
    per_sec: f64,
    connect: Latency,
}

/// Opens `n` clients (client `i` on image `i % images`), `CONNECT_CONCURRENCY` at a time.
async fn connect_all(
    server: &Server,
    n: usize,
    images: usize,
) -> Result<(Vec<(usize, Ws)>, ConnectStats), String> {
    let started = Instant::now();
    let (protocol, endpoint) = (server.protocol, &server.endpoint());
    let attempts = futures_util::stream::iter(0..n).map(|i| async move {
        let t = Instant::now();
        let result = client::open(protocol, endpoint, &image_of(i, images)).await;
        (i, result, t.elapsed())
    });
    let mut attempts = attempts.buffer_unordered(CONNECT_CONCURRENCY);
    let mut clients = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    while let Some((i, result, took)) = attempts.next().await {
        match result {
            Ok(ws) => {
                clients.push((i, ws));
                times.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            }
            Err(err) => return Err(format!("client {i} could not connect: {err}")),
        }
    }
    clients.sort_by_key(|(i, _)| *i);
    let wall = started.elapsed().as_secs_f64();
    Ok((
        clients,
        ConnectStats {
            clients: n,
            wall_secs: wall,
            per_sec: n as f64 / wall.max(1e-9),
            connect: Latency::from_us(times),
        },
    ))
}

/// Scenario 1: idle connections.
pub async fn idle(
    server: &Server,
    clients: usize,
    images: usize,
    settle: Duration,
) -> Result<Report, String> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = kib(server.rss_kib());
    let self_before = kib(server::self_rss_kib());
    let (conns, connect) = connect_all(server, clients, images).await?;
    let mut stop = StopAll::default();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(i, ws)| {
            tokio::spawn(client::run(
                server.protocol,
                ws,
                i as u64,
                None,
                stop.signal(),
            ))
        })
        .collect();
    tokio::time::sleep(settle).await;
    let rss_after = kib(server.rss_kib());
    let self_after = kib(server::self_rss_kib());
    drop(stop);
    let mut closed = 0;
    for task in tasks {
        if task.await.map_err(|e| e.to_string())?.closed.is_some() {
            closed += 1;
        }
    }
    let per_conn = (rss_after.saturating_sub(rss_before)) as f64 * 1024.0 / clients.max(1) as f64;
    let self_per_conn =
        (self_after.saturating_sub(self_before)) as f64 * 1024.0 / clients.max(1) as f64;
    let table = vec![
        ("connections".into(), clients.to_string()),
        (
            "connect (all)".into(),
            format!("{:.2} s, {:.0}/s", connect.wall_secs, connect.per_sec),
        ),
        ("connect p50/p99/max".into(), connect.connect.cell()),
        (
            "server RSS before / after".into(),
            format!("{rss_before} KiB / {rss_after} KiB"),
        ),
        (
            "server RSS per connection".into(),
            format!("{:.1} KiB (target <= 8 KiB)", per_conn / 1024.0),
        ),
        (
            "loadgen RSS per connection".into(),
            format!("{:.1} KiB", self_per_conn / 1024.0),
        ),
        ("closed by server while idle".into(), closed.to_string()),
    ];
    Ok(Report {
        scenario: "idle".into(),
        label: None,
        server: crate::summary::REFERENCE.into(),
        params: json!({"clients": clients, "images": images, "settle_secs": settle.as_secs_f64()}),
        results: json!({
            "connect": connect,
            "server_rss_before_kib": rss_before,
            "server_rss_after_kib": rss_after,
            "server_rss_per_connection_bytes": per_conn,
            "loadgen_rss_per_connection_bytes": self_per_conn,
            "closed_while_idle": closed,
        }),
        table,
    })
}

/// Parameters of [`load`].
#[derive(Clone, Debug, Serialize)]
pub struct LoadParams {
    /// Clients (all subscribe).
    pub clients: usize,
    /// Images they spread over.
    pub images: usize,
    /// How many of them publish (client `p < publishers` publishes on image `p % images`).
    pub publishers: usize,
    /// Ops per second in total.
    pub rate: f64,
    /// Seconds of publishing.
    pub duration_secs: f64,
    /// Creates only, or creates and replies alternating.
    pub replies: bool,
}

/// Scenarios 2 and 3: publishers at a fixed total rate, every delivery measured.
pub async fn load(server: &Server, p: &LoadParams) -> Result<Report, String> {
    let publishers = p.publishers.clamp(1, p.clients.max(1));
    let rss_before = kib(server.rss_kib());
    let (conns, connect) = connect_all(server, p.clients, p.images).await?;
    // Let presence updates of the ramp-up settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = kib(server.rss_kib());

    let mut subscribers_of_image = vec![0u64; p.images.max(1)];
    for (i, _) in &conns {
        subscribers_of_image[i % p.images.max(1)] += 1;
    }
    let mut stop = StopAll::default();
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for (i, ws) in conns {
        let ops = if i < publishers {
            let (tx, rx) = mpsc::channel(1024);
            senders.push((i, tx));
            Some(rx)
        } else {
            None
        };
        tasks.push(tokio::spawn(client::run(
            server.protocol,
            ws,
            i as u64 + 1,
            ops,
            stop.signal(),
        )));
    }

    let total = (p.rate * p.duration_secs).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / p.rate.max(1e-3));
    let cpu_before = server.cpu_secs().unwrap_or(0.0);
    let self_cpu_before = server::self_cpu_secs().unwrap_or(0.0);
    let started = Instant::now();
    let mut expected = 0u64;
    let mut skipped = 0u64;
    for k in 0..total {
        tokio::time::sleep_until(started + interval * u32::try_from(k).unwrap_or(u32::MAX)).await;
        let (i, tx) = &senders[(k as usize) % senders.len()];
        let round = k / senders.len() as u64;
        let op = if p.replies && round % 2 == 1 {
            Op::Reply
        } else {
            Op::Create
        };
        if tx.try_send(op).is_ok() {
            expected += subscribers_of_image[i % p.images.max(1)];
        } else {
            skipped += 1;
        }
    }
    let publish_secs = started.elapsed().as_secs_f64();
    // Drain: until every expected delivery arrived is not observable from here without
    // coordination, so wait a fixed, generous time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_secs = server.cpu_secs().unwrap_or(0.0) - cpu_before;
    let self_cpu_secs = server::self_cpu_secs().unwrap_or(0.0) - self_cpu_before;
    let elapsed = started.elapsed().as_secs_f64();
    let rss_after = kib(server.rss_kib());
    drop(stop);

    let mut all = ClientStats::default();
    let mut closes: std::collections::BTreeMap<u16, u64> = Default::default();
    for task in tasks {
        let s = task.await.map_err(|e| e.to_string())?;
        all.latencies_us.extend(s.latencies_us);
        all.ack_latencies_us.extend(s.ack_latencies_us);
        all.events += s.events;
        all.event_frames += s.event_frames;
        all.event_bytes += s.event_bytes;
        all.ops += s.ops;
        all.acks += s.acks;
        all.errors += s.errors;
        if let Some(code) = s.closed {
            *closes.entry(code).or_default() += 1;
        }
    }
    let latency = Latency::from_us(std::mem::take(&mut all.latencies_us));
    let ack_latency = Latency::from_us(std::mem::take(&mut all.ack_latencies_us));
    let deliveries_per_cpu_sec = all.events as f64 / cpu_secs.max(1e-9);
    let deliveries_per_sec = all.events as f64 / publish_secs.max(1e-9);
    let frames_per_sec = all.event_frames as f64 / publish_secs.max(1e-9);
    let bytes_per_event = all.event_bytes as f64 / all.events.max(1) as f64;
    let events_per_frame = all.events as f64 / all.event_frames.max(1) as f64;
    let table = vec![
        (
            "clients / images / publishers".into(),
            format!("{} / {} / {publishers}", p.clients, p.images),
        ),
        (
            "connect (all)".into(),
            format!(
                "{:.2} s, {:.0}/s; each p50/p99/max {}",
                connect.wall_secs,
                connect.per_sec,
                connect.connect.cell()
            ),
        ),
        (
            "ops sent / acked / errors".into(),
            format!("{} / {} / {}", all.ops, all.acks, all.errors),
        ),
        (
            "deliveries (received / expected)".into(),
            format!("{} / {expected}", all.events),
        ),
        ("delivery latency p50/p99/max".into(), latency.cell()),
        (
            "delivery latency p99.9".into(),
            format!("{:.2} ms", latency.p999_ms),
        ),
        ("publish → ack p50/p99/max".into(), ack_latency.cell()),
        (
            "deliveries per second".into(),
            format!("{deliveries_per_sec:.0}"),
        ),
        (
            "deliveries per server CPU-second".into(),
            format!("{deliveries_per_cpu_sec:.0}"),
        ),
        (
            "event frames per second".into(),
            format!("{frames_per_sec:.0} ({events_per_frame:.2} events/frame)"),
        ),
        (
            "payload bytes per event".into(),
            format!("{bytes_per_event:.0}"),
        ),
        (
            "server CPU".into(),
            format!(
                "{:.2} s over {elapsed:.1} s ({:.0}% of one core)",
                cpu_secs,
                100.0 * cpu_secs / elapsed.max(1e-9)
            ),
        ),
        (
            "loadgen CPU".into(),
            format!(
                "{:.0}% of one core",
                100.0 * self_cpu_secs / elapsed.max(1e-9)
            ),
        ),
        (
            "server RSS before / connected / after".into(),
            format!("{rss_before} / {rss_connected} / {rss_after} KiB"),
        ),
        (
            "closed by server (code: count)".into(),
            format!("{closes:?}"),
        ),
    ];
    Ok(Report {
        scenario: "load".into(),
        label: None,
        server: crate::summary::REFERENCE.into(),
        params: serde_json::to_value(p).map_err(|e| e.to_string())?,
        results: json!({
            "connect": connect,
            "ops_sent": all.ops,
            "ops_skipped": skipped,
            "acks": all.acks,
            "errors": all.errors,
            "deliveries": all.events,
            "deliveries_expected": expected,
            "latency": latency,
            "ack_latency": ack_latency,
            "deliveries_per_sec": deliveries_per_sec,
            "deliveries_per_cpu_sec": deliveries_per_cpu_sec,
            "event_frames": all.event_frames,
            "event_frames_per_sec": frames_per_sec,
            "events_per_frame": events_per_frame,
            "payload_bytes_per_event": bytes_per_event,
            "server_cpu_secs": cpu_secs,
            "loadgen_cpu_secs": self_cpu_secs,
            "elapsed_secs": elapsed,
            "server_rss_before_kib": rss_before,
            "server_rss_connected_kib": rss_connected,
            "server_rss_after_kib": rss_after,
            "closes": closes,
        }),
        table,
    })
}

/// WebSocket frame header size for a server → client (unmasked) payload of `len` bytes.
fn ws_header(len: usize, masked: bool) -> usize {
    let base = match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    if masked { base + 4 } else { base }
}

async fn next_event_frame(ws: &mut Ws) -> Result<String, String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| "no event in time".to_string())?;
        match frame {
            Some(Ok(Message::Text(text))) if client::is_event_frame(&text) => {
                return Ok(text.to_string());
            }
            Some(Ok(_)) => continue,
            other => return Err(format!("socket ended: {other:?}")),
        }
    }
}

/// Scenario 4: bytes on the wire of a marker creation, a reply and a delete, as a viewer of the
/// image receives them (and as the author sends the op).
pub async fn bytes(server: &Server) -> Result<Report, String> {
    let endpoint = &server.endpoint();
    let connect = |image: &'static str| async move {
        client::connect(endpoint, image, None)
            .await
            .map_err(|e: ConnectError| e.to_string())
    };
    let (mut author, _) = connect("bytes").await?;
    let (mut viewer, _) = connect("bytes").await?;
    let mut rng = Rng::new(42);
    let mut chats = Vec::new();
    let mut rows = Vec::new();
    let mut results = serde_json::Map::new();
    for (name, op) in [
        ("marker creation (new-image-chat)", Op::Create),
        ("reply (image-chat-updated)", Op::Reply),
        ("delete (deleted-image-chat)", Op::Delete),
    ] {
        let message = client::make_op(op, &mut rng, &mut chats).to_json();
        author
            .send(Message::text(message.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let received = next_event_frame(&mut viewer).await?;
        let payload = received.len();
        let wire = payload + ws_header(payload, false);
        let sent = message.len() + ws_header(message.len(), true);
        rows.push((
            name.to_string(),
            format!("{payload} B payload, {wire} B WebSocket frame (op sent: {sent} B)"),
        ));
        results.insert(
            name.into(),
            json!({"payload": payload, "frame": wire, "op_frame": sent, "example": received}),
        );
    }
    rows.push((
        "comment text in the examples".into(),
        format!("{:?} ({} B)", client::TEXT, client::TEXT.len()),
    ));
    Ok(Report {
        scenario: "bytes".into(),
        label: None,
        server: crate::summary::REFERENCE.into(),
        params: json!({}),
        results: Value::Object(results),
        table: rows,
    })
}

/// What every storm client shares.
struct Storm {
    /// Clients that have received a `welcome` since the restart.
    resynced: AtomicUsize,
    /// Clients live right now.
    live: AtomicUsize,
    /// `now_ns()` of the restart (0 before it).
    restart_ns: AtomicU64,
    /// Welcomes after the restart that resumed (`recovered: true`).
    recovered: AtomicUsize,
}

/// A client that reconnects like the widget: on any drop, wait a full-jitter backoff delay
/// (`image_chat_sync::backoff`, the widget's own, seeded per client), resume from its position,
/// reset the backoff after a `welcome`. Returns the instants of its connection attempts.
async fn storm_client(
    endpoint: Endpoint,
    image: String,
    seed: u64,
    shared: Arc<Storm>,
    mut stop: watch::Receiver<bool>,
) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let mut backoff = Backoff::new(DEFAULT_BASE_MS, DEFAULT_CAP_MS);
    let mut position: Option<Position> = None;
    let mut attempts = Vec::new();
    let mut counted = false;
    loop {
        if *stop.borrow() {
            break;
        }
        attempts.push(now_ns());
        let connected = tokio::select! {
            _ = stop.changed() => break,
            r = client::connect(&endpoint, &image, position) => r,
        };
        if let Ok((mut ws, welcome)) = connected {
            backoff.reset();
            position = Some(welcome.position);
            let restart = shared.restart_ns.load(Ordering::SeqCst);
            if restart != 0 && !counted {
                counted = true;
                if welcome.recovered {
                    shared.recovered.fetch_add(1, Ordering::SeqCst);
                }
                shared.resynced.fetch_add(1, Ordering::SeqCst);
            }
            shared.live.fetch_add(1, Ordering::SeqCst);
            let stopped = loop {
                tokio::select! {
                    _ = stop.changed() => break true,
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            if client::is_event_frame(&text)
                                && let Some(p) = client::last_position(&text) {
                                    position = Some(p);
                                }
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break false,
                        Some(Ok(_)) => {}
                    }
                }
            };
            shared.live.fetch_sub(1, Ordering::SeqCst);
            if stopped {
                let _ = ws.close(None).await;
                break;
            }
        }
        let delay = Duration::from_millis(backoff.next_delay(&mut rng));
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    attempts
}

/// Scenario 5: reconnect storm.
pub async fn storm(
    server: &mut Server,
    clients: usize,
    images: usize,
    limit: Duration,
) -> Result<Report, String> {
    let shared = Arc::new(Storm {
        resynced: AtomicUsize::new(0),
        live: AtomicUsize::new(0),
        restart_ns: AtomicU64::new(0),
        recovered: AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    // The restart keeps the address and the certificate: the endpoint stays valid.
    let endpoint = server.endpoint();
    // Ramp up gradually (the storm is the restart, not the first connection).
    let ramp = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        tasks.push(tokio::spawn(storm_client(
            endpoint.clone(),
            image_of(i, images),
            0x5eed_0000 + i as u64,
            Arc::clone(&shared),
            stop_rx.clone(),
        )));
        if i % CONNECT_CONCURRENCY == CONNECT_CONCURRENCY - 1 {
            while shared.live.load(Ordering::SeqCst) + CONNECT_CONCURRENCY < i {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let deadline = Instant::now() + limit;
    while shared.live.load(Ordering::SeqCst) < clients {
        if Instant::now() > deadline {
            let _ = stop_tx.send(true);
            return Err(format!(
                "only {} of {clients} clients connected",
                shared.live.load(Ordering::SeqCst)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp_secs = ramp.elapsed().as_secs_f64();

    // The restart: SIGTERM (clients get 1012 and back off), wait for exit, start again.
    let restart_ns = now_ns().max(1);
    shared.restart_ns.store(restart_ns, Ordering::SeqCst);
    let t0 = Instant::now();
    // Blocking process management; the other worker thread keeps serving the clients.
    tokio::task::block_in_place(|| server.stop_gracefully().and_then(|()| server.start_again()))?;
    let down_secs = t0.elapsed().as_secs_f64();

    let deadline = Instant::now() + limit;
    while shared.resynced.load(Ordering::SeqCst) < clients {
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_secs = t0.elapsed().as_secs_f64();
    let resynced = shared.resynced.load(Ordering::SeqCst);
    // Let stragglers' attempt lists settle, then stop everyone.
    let _ = stop_tx.send(true);
    let mut attempts_after = Vec::new();
    for task in tasks {
        let attempts = task.await.map_err(|e| e.to_string())?;
        attempts_after.extend(attempts.into_iter().filter(|t| *t >= restart_ns));
    }
    // Reconnect attempts per second, in one-second buckets from the restart, and the peak of a
    // 100 ms bucket scaled to a rate.
    let mut per_sec = std::collections::BTreeMap::<u64, u64>::new();
    let mut per_100ms = std::collections::BTreeMap::<u64, u64>::new();
    for t in &attempts_after {
        let since = t - restart_ns;
        *per_sec.entry(since / 1_000_000_000).or_default() += 1;
        *per_100ms.entry(since / 100_000_000).or_default() += 1;
    }
    let peak_sec = per_sec.values().copied().max().unwrap_or(0);
    let peak_100ms = per_100ms.values().copied().max().unwrap_or(0);
    let recovered = shared.recovered.load(Ordering::SeqCst);
    let ok = resynced == clients;
    let table = vec![
        (
            "clients / images".into(),
            format!("{clients} / {images} (ramp-up {ramp_secs:.1} s)"),
        ),
        (
            "server stop + start".into(),
            format!("{down_secs:.2} s (SIGTERM to listening again)"),
        ),
        (
            "all live and resynced after".into(),
            if ok {
                format!("{all_secs:.2} s")
            } else {
                format!("NOT REACHED: {resynced}/{clients} after {all_secs:.1} s")
            },
        ),
        (
            "resumed (recovered) / snapshot".into(),
            format!("{recovered} / {}", resynced - recovered.min(resynced)),
        ),
        (
            "connection attempts after the restart".into(),
            attempts_after.len().to_string(),
        ),
        ("peak attempts in one second".into(), peak_sec.to_string()),
        (
            "peak attempts in 100 ms (as a rate)".into(),
            format!("{peak_100ms} ({}/s)", peak_100ms * 10),
        ),
        (
            "attempts per second".into(),
            format!("{:?}", per_sec.values().collect::<Vec<_>>()),
        ),
    ];
    let report = Report {
        scenario: "storm".into(),
        label: None,
        server: crate::summary::REFERENCE.into(),
        params: json!({"clients": clients, "images": images, "backoff_base_ms": DEFAULT_BASE_MS, "backoff_cap_ms": DEFAULT_CAP_MS}),
        results: json!({
            "ramp_secs": ramp_secs,
            "server_down_secs": down_secs,
            "all_resynced_secs": if ok { Some(all_secs) } else { None },
            "resynced": resynced,
            "recovered": recovered,
            "attempts_after_restart": attempts_after.len(),
            "peak_attempts_per_sec": peak_sec,
            "peak_attempts_per_100ms": peak_100ms,
            "attempts_per_sec": per_sec.values().collect::<Vec<_>>(),
        }),
        table,
    };
    if ok {
        Ok(report)
    } else {
        report.print();
        Err(format!(
            "only {resynced} of {clients} clients resynced in time"
        ))
    }
}
