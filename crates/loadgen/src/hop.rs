//! The cross-node hop: what a second node costs a viewer. One image, one publisher at a fixed
//! rate, every delivery measured, in two phases of the same run:
//!
//! 1. **single node**: one server (in-process fan-out), `2 × viewers` viewers on it;
//! 2. **cluster**: two servers on one database and one Redis, `viewers` on the publisher's node
//!    (their events also go through Redis: a clustered node fans out what Redis hands back) and
//!    `viewers` on the other node (the hop).
//!
//! Reported per group: delivery latency p50/p99/max and deliveries per second, and the hop's
//! added latency (other node minus the single node).

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client::{self, ClientStats, Endpoint, Op, StopAll};
use crate::peer::Protocol;
use crate::scenario::Report;
use crate::server::{Server, Target};
use crate::stats::Latency;

/// Parameters of the hop scenario.
#[derive(Clone, Debug)]
pub struct HopParams {
    /// Viewers per node in the cluster phase (twice as many on the single node).
    pub viewers: usize,
    /// Ops per second of the publisher.
    pub rate: f64,
    /// Seconds of publishing per phase.
    pub duration_secs: f64,
    /// The Redis the cluster phase uses.
    pub redis_url: String,
}

/// One group of viewers' figures.
struct Group {
    latency: Latency,
    deliveries: u64,
    per_sec: f64,
}

/// Runs one phase: `viewers[g]` viewers on `endpoints[g]` for each group `g`, the publisher on
/// `endpoints[0]`; returns each group's figures and the ops sent.
async fn phase(
    endpoints: &[Endpoint],
    viewers: &[usize],
    p: &HopParams,
) -> Result<(Vec<Group>, u64), String> {
    let image = "hop";
    let mut stop = StopAll::default();
    let mut groups = Vec::new();
    let mut seed = 1;
    for (endpoint, n) in endpoints.iter().zip(viewers) {
        let mut tasks = Vec::new();
        for _ in 0..*n {
            let (ws, _) = client::connect(endpoint, image, None)
                .await
                .map_err(|e| format!("viewer could not connect: {e}"))?;
            seed += 1;
            tasks.push(tokio::spawn(client::run(
                Protocol::ImageChat,
                ws,
                seed,
                None,
                stop.signal(),
            )));
        }
        groups.push(tasks);
    }
    let (ws, _) = client::connect(&endpoints[0], image, None)
        .await
        .map_err(|e| format!("publisher could not connect: {e}"))?;
    let (tx, rx) = mpsc::channel(1024);
    let publisher = tokio::spawn(client::run(
        Protocol::ImageChat,
        ws,
        0,
        Some(rx),
        stop.signal(),
    ));
    // Let the joins' presence updates settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let total = (p.rate * p.duration_secs).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / p.rate.max(1e-3));
    let started = Instant::now();
    for k in 0..total {
        tokio::time::sleep_until(started + interval * u32::try_from(k).unwrap_or(u32::MAX)).await;
        tx.try_send(Op::Create)
            .map_err(|_| "the publisher fell behind".to_string())?;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(stop);
    let sent = publisher.await.map_err(|e| e.to_string())?.ops;
    let mut out = Vec::new();
    for tasks in groups {
        let mut all = ClientStats::default();
        for task in tasks {
            let s = task.await.map_err(|e| e.to_string())?;
            all.latencies_us.extend(s.latencies_us);
            all.events += s.events;
        }
        out.push(Group {
            latency: Latency::from_us(all.latencies_us),
            deliveries: all.events,
            per_sec: all.events as f64 / publish_secs.max(1e-9),
        });
    }
    Ok((out, sent))
}

/// The hop scenario (see the module documentation).
pub async fn hop(target: &Target, p: &HopParams) -> Result<Report, String> {
    let Target::Spawn { bin, args, tls } = target else {
        return Err("the hop scenario spawns its servers (no --attach)".into());
    };
    let single = Server::start(target)?;
    let (single_groups, single_sent) = phase(&[single.endpoint()], &[2 * p.viewers], p).await?;
    drop(single);

    let prefix = format!("loadgen-hop:{}:", std::process::id());
    let cluster_args = |node: &str| {
        let mut a = args.clone();
        a.extend([
            format!("--redis-url={}", p.redis_url),
            format!("--redis-prefix={prefix}"),
            format!("--node-name={node}"),
        ]);
        a
    };
    let a = Server::start(&Target::Spawn {
        bin: bin.clone(),
        args: cluster_args("a"),
        tls: *tls,
    })?;
    let b = a.spawn_sibling(&cluster_args("b"))?;
    let (cluster_groups, cluster_sent) =
        phase(&[a.endpoint(), b.endpoint()], &[p.viewers, p.viewers], p).await?;

    let [single_all] = &single_groups[..] else {
        return Err("one group expected".into());
    };
    let [same, other] = &cluster_groups[..] else {
        return Err("two groups expected".into());
    };
    let added_p50 = other.latency.p50_ms - single_all.latency.p50_ms;
    let added_p99 = other.latency.p99_ms - single_all.latency.p99_ms;
    let row = |g: &Group, expected: u64| {
        format!(
            "{} · {:.0} deliveries/s ({} / {expected})",
            g.latency.cell(),
            g.per_sec,
            g.deliveries
        )
    };
    let v = p.viewers as u64;
    let table = vec![
        (
            "single node, all viewers".into(),
            row(single_all, single_sent * 2 * v),
        ),
        (
            "cluster, publisher's node".into(),
            row(same, cluster_sent * v),
        ),
        ("cluster, other node".into(), row(other, cluster_sent * v)),
        (
            "hop added (other node − single)".into(),
            format!("p50 {added_p50:+.2} ms, p99 {added_p99:+.2} ms"),
        ),
    ];
    let group = |g: &Group, expected: u64| {
        json!({
            "latency": g.latency,
            "deliveries": g.deliveries,
            "deliveries_expected": expected,
            "deliveries_per_sec": g.per_sec,
        })
    };
    Ok(Report {
        scenario: "hop".into(),
        label: None,
        server: crate::summary::REFERENCE.into(),
        params: json!({
            "viewers_per_node": p.viewers,
            "rate": p.rate,
            "duration_secs": p.duration_secs,
        }),
        results: json!({
            "single": group(single_all, single_sent * 2 * v),
            "cluster_same_node": group(same, cluster_sent * v),
            "cluster_other_node": group(other, cluster_sent * v),
            "hop_added_p50_ms": added_p50,
            "hop_added_p99_ms": added_p99,
        }),
        table,
    })
}
