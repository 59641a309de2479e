//! `image-chat-loadgen`: a load generator for image-chat. It opens real WebSocket clients
//! (speaking the protocol, `hello` included) against a real server on loopback, drives one
//! scenario and prints a table (and, with `--json`, writes the figures).
//!
//! By default it spawns `image-chat-server` (the binary next to its own, i.e. both built with
//! `cargo build --profile server -p image-chat-server -p image-chat-loadgen`) on 127.0.0.1:0 with
//! a fresh SQLite file; `--attach ADDR --pid PID` uses a running server instead. Every scenario
//! is bounded in client count and time (`--deadline-secs` caps the whole run) and stops by
//! itself. It raises its own open-files soft limit to the hard limit (`ulimit -Hn`); the spawned
//! server inherits it. With `--tls` the spawned server serves wss:// with a self-signed
//! certificate made for the run, and every client connects over TLS.
//!
//! Module map:
//! - [`client`]: one simulated widget (connect, publish, measure each delivery).
//! - [`server`]: the server under test (spawn / attach / restart, RSS and CPU from `/proc`).
//! - [`scenario`]: idle, load, bytes, storm.
//! - [`hostile`]: the well-behaved load alone and under attack (slowloris, slow readers, junk,
//!   snapshot readers).
//! - [`hop`]: the cross-node hop: one image viewed through two nodes of a cluster against a
//!   single node, in one run.
//! - [`peer`]: the wire of the peer servers image-chat is compared with (`bench/peers`:
//!   Socket.IO, socketioxide, a plain relay) for the idle and load scenarios.
//! - [`summary`]: side-by-side tables (medians over rounds, ratios) of a run's JSON lines.
//! - [`stats`]: latency percentiles.
//! - [`tls`]: the certificate and client configuration of `--tls`.

pub mod client;
pub mod hop;
pub mod hostile;
pub mod peer;
pub mod scenario;
pub mod server;
pub mod stats;
pub mod summary;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::hostile::HostileParams;
use crate::peer::Protocol;
use crate::scenario::{LoadParams, Report};
use crate::server::{Server, Target};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "image-chat-loadgen",
    about = "Load generator and benchmarks for image-chat."
)]
struct Cli {
    /// The server binary to spawn (default: `image-chat-server` next to this binary; with
    /// `--protocol` other than image-chat, the peer's program, e.g. `node`).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The wire of the spawned server: image-chat, or a peer of `bench/peers` (then
    /// `--server-arg`s are the peer's arguments before `--listen`; idle and load only).
    #[arg(long, value_enum, default_value_t = Protocol::ImageChat)]
    protocol: Protocol,
    /// The server's name in the report (the side-by-side tables group by it).
    #[arg(long, default_value = summary::REFERENCE)]
    server_name: String,
    /// Extra flag for the spawned server's `serve` (repeatable), e.g.
    /// `--server-arg=--batch-window-ms=20`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Use a running server at this loopback address instead of spawning one.
    #[arg(long, requires = "pid")]
    attach: Option<SocketAddr>,
    /// The attached server's pid (for its memory and CPU).
    #[arg(long)]
    pid: Option<u32>,
    /// Append the reports, as JSON lines, to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A label stored with the report.
    #[arg(long)]
    label: Option<String>,
    /// Hard limit on the whole run, in seconds.
    #[arg(long, default_value_t = 600)]
    deadline_secs: u64,
    /// Clients connect over wss:// to the spawned server, which serves TLS with a self-signed
    /// certificate for "localhost" made for the run (not with `--attach` or a peer).
    #[arg(long)]
    tls: bool,
    /// What to run.
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// N idle connections: server memory per connection.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 100)]
        images: usize,
        /// Seconds to wait after the ramp-up before measuring.
        #[arg(long, default_value_t = 3)]
        settle_secs: u64,
    },
    /// N clients over M images, P of them publishing R ops/s in total for D seconds.
    Load {
        #[arg(long, default_value_t = 1_000)]
        clients: usize,
        #[arg(long, default_value_t = 1)]
        images: usize,
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        /// Ops per second, all publishers together.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        duration_secs: f64,
        /// Alternate creates and replies (default: creates only).
        #[arg(long)]
        replies: bool,
    },
    /// Bytes on the wire of a marker creation, a reply and a delete.
    Bytes,
    /// Reconnect storm: N live clients, the server restarted.
    Storm {
        #[arg(long, default_value_t = 5_000)]
        clients: usize,
        #[arg(long, default_value_t = 50)]
        images: usize,
    },
    /// The well-behaved load (N viewers of one image, one publisher) alone, then under attack:
    /// slowloris, slow readers, junk frames and a snapshot-reader flood.
    Hostile {
        #[arg(long, default_value_t = 1_000)]
        clients: usize,
        /// Ops per second of the publisher.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Seconds of publishing per phase.
        #[arg(long, default_value_t = 10.0)]
        duration_secs: f64,
        #[arg(long, default_value_t = 500)]
        slowloris: usize,
        #[arg(long, default_value_t = 50)]
        slow_readers: usize,
        #[arg(long, default_value_t = 20)]
        junk: usize,
        /// Junk frames per second per junk connection.
        #[arg(long, default_value_t = 50.0)]
        junk_rate: f64,
        #[arg(long, default_value_t = 4)]
        snapshot_readers: usize,
    },
    /// One image viewed through two nodes of a cluster (on Redis) against one node: the
    /// cross-node hop's added latency and deliveries per second.
    Hop {
        /// Viewers per node in the cluster phase (twice as many on the single node).
        #[arg(long, default_value_t = 100)]
        viewers: usize,
        /// Ops per second of the publisher.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Seconds of publishing per phase.
        #[arg(long, default_value_t = 10.0)]
        duration_secs: f64,
        /// The Redis the cluster phase uses.
        #[arg(
            long,
            env = "IMAGE_CHAT_REDIS_URL",
            default_value = "redis://127.0.0.1:6379"
        )]
        redis_url: String,
    },
    /// A quick run of every scenario with small numbers; fails if the tool or the figures'
    /// basic invariants break (used by the test script).
    Smoke,
    /// Side-by-side tables (median per server and case, image-chat's ratios) of a JSON-lines
    /// file written with `--json`; starts no server.
    Summary {
        /// The JSON-lines file.
        file: PathBuf,
    },
}

fn default_server_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("image-chat-server")))
        .unwrap_or_else(|| PathBuf::from("image-chat-server"))
}

fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            eprintln!("warning: cannot raise the open-files limit: {err}");
            0
        }
    }
}

async fn run_scenario(cli: &Cli, target: &Target) -> Result<Vec<Report>, String> {
    if let Scenario::Hop {
        viewers,
        rate,
        duration_secs,
        redis_url,
    } = &cli.scenario
    {
        let params = hop::HopParams {
            viewers: *viewers,
            rate: *rate,
            duration_secs: *duration_secs,
            redis_url: redis_url.clone(),
        };
        return Ok(vec![hop::hop(target, &params).await?]);
    }
    if let Scenario::Summary { file } = &cli.scenario {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        print!("{}", summary::tables(&text)?);
        return Ok(Vec::new());
    }
    if matches!(target, Target::Peer { .. })
        && !matches!(cli.scenario, Scenario::Idle { .. } | Scenario::Load { .. })
    {
        return Err("peers run the idle and load scenarios only".into());
    }
    let mut server = Server::start(target)?;
    let report = match &cli.scenario {
        Scenario::Idle {
            clients,
            images,
            settle_secs,
        } => {
            scenario::idle(
                &server,
                *clients,
                *images,
                Duration::from_secs(*settle_secs),
            )
            .await?
        }
        Scenario::Load {
            clients,
            images,
            publishers,
            rate,
            duration_secs,
            replies,
        } => {
            let params = LoadParams {
                clients: *clients,
                images: *images,
                publishers: *publishers,
                rate: *rate,
                duration_secs: *duration_secs,
                replies: *replies,
            };
            scenario::load(&server, &params).await?
        }
        Scenario::Bytes => scenario::bytes(&server).await?,
        Scenario::Storm { clients, images } => {
            scenario::storm(&mut server, *clients, *images, Duration::from_secs(120)).await?
        }
        Scenario::Hostile {
            clients,
            rate,
            duration_secs,
            slowloris,
            slow_readers,
            junk,
            junk_rate,
            snapshot_readers,
        } => {
            let params = HostileParams {
                clients: *clients,
                rate: *rate,
                duration_secs: *duration_secs,
                slowloris: *slowloris,
                slow_readers: *slow_readers,
                junk: *junk,
                junk_rate: *junk_rate,
                snapshot_readers: *snapshot_readers,
            };
            hostile::hostile(&server, &params).await?
        }
        Scenario::Smoke => return smoke(target).await,
        Scenario::Hop { .. } | Scenario::Summary { .. } => unreachable!("handled above"),
    };
    Ok(vec![report])
}

fn check(ok: bool, what: &str, failures: &mut Vec<String>) {
    if !ok {
        failures.push(what.to_owned());
    }
}

/// Small runs of every scenario, each against a fresh server, with sanity checks.
async fn smoke(target: &Target) -> Result<Vec<Report>, String> {
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    let num = |r: &Report, key: &str| r.results.get(key).and_then(serde_json::Value::as_f64);

    let server = Server::start(target)?;
    let r = scenario::bytes(&server).await?;
    for key in [
        "marker creation (new-image-chat)",
        "reply (image-chat-updated)",
        "delete (deleted-image-chat)",
    ] {
        let payload = r
            .results
            .pointer(&format!("/{key}/payload"))
            .and_then(|v| v.as_u64());
        check(
            payload.is_some_and(|b| b > 50 && b < 1024),
            &format!("bytes: {key} should be under 1 KB"),
            &mut failures,
        );
    }
    reports.push(r);
    drop(server);

    let server = Server::start(target)?;
    let r = scenario::idle(&server, 200, 10, Duration::from_secs(1)).await?;
    check(
        num(&r, "server_rss_per_connection_bytes").is_some_and(|b| b > 0.0),
        "idle: server memory grows with connections",
        &mut failures,
    );
    check(
        num(&r, "closed_while_idle") == Some(0.0),
        "idle: no connection closed",
        &mut failures,
    );
    reports.push(r);
    drop(server);

    for (label, window) in [
        ("batched by the pump", None),
        ("a 20 ms window", Some("20")),
    ] {
        let target = match (target, window) {
            (Target::Spawn { bin, args, tls }, Some(ms)) => {
                let mut args = args.clone();
                args.push(format!("--batch-window-ms={ms}"));
                Target::Spawn {
                    bin: bin.clone(),
                    args,
                    tls: *tls,
                }
            }
            _ => target.clone(),
        };
        let server = Server::start(&target)?;
        let params = LoadParams {
            clients: 200,
            images: 4,
            publishers: 4,
            rate: 100.0,
            duration_secs: 2.0,
            replies: true,
        };
        let mut r = scenario::load(&server, &params).await?;
        r.label = Some(label.into());
        let delivered = num(&r, "deliveries");
        check(
            delivered.is_some_and(|d| d > 0.0) && delivered == num(&r, "deliveries_expected"),
            &format!("load ({label}): every expected delivery arrives"),
            &mut failures,
        );
        check(
            num(&r, "errors") == Some(0.0) && num(&r, "acks") == num(&r, "ops_sent"),
            &format!("load ({label}): every op acked"),
            &mut failures,
        );
        check(
            r.results.pointer("/latency/count").and_then(|v| v.as_f64()) == delivered,
            &format!("load ({label}): every delivery timed"),
            &mut failures,
        );
        reports.push(r);
    }

    // A small hostile pass: the well-behaved viewers still get every event under attack.
    hostile_smoke(target, &mut reports, &mut failures).await?;

    let mut server = Server::start(target)?;
    match target {
        Target::Spawn { .. } => {
            let r = scenario::storm(&mut server, 100, 10, Duration::from_secs(30)).await?;
            reports.push(r);
        }
        Target::Attach { .. } | Target::Peer { .. } => {
            eprintln!("smoke: storm skipped (needs a spawned image-chat server)")
        }
    }
    drop(server);

    // Two nodes on Redis (the test setup's): every delivery arrives on both, and on one node.
    if let Target::Spawn { .. } = target {
        let redis_url = std::env::var("IMAGE_CHAT_TEST_REDIS_URL")
            .or_else(|_| std::env::var("IMAGE_CHAT_REDIS_URL"))
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let params = hop::HopParams {
            viewers: 10,
            rate: 20.0,
            duration_secs: 1.0,
            redis_url,
        };
        let r = hop::hop(target, &params).await?;
        for group in ["single", "cluster_same_node", "cluster_other_node"] {
            let got = r
                .results
                .pointer(&format!("/{group}/deliveries"))
                .and_then(serde_json::Value::as_f64);
            let expected = r
                .results
                .pointer(&format!("/{group}/deliveries_expected"))
                .and_then(serde_json::Value::as_f64);
            check(
                got.is_some_and(|d| d > 0.0) && got == expected,
                &format!("hop ({group}): every expected delivery arrives"),
                &mut failures,
            );
        }
        reports.push(r);
    }

    for r in &reports {
        r.print();
    }
    if failures.is_empty() {
        println!("\nsmoke: all checks passed");
        Ok(Vec::new())
    } else {
        Err(format!("smoke checks failed: {}", failures.join("; ")))
    }
}

/// The smoke run's small hostile pass (over TLS with `--tls`, attackers included).
async fn hostile_smoke(
    target: &Target,
    reports: &mut Vec<Report>,
    failures: &mut Vec<String>,
) -> Result<(), String> {
    let server = Server::start(target)?;
    let params = HostileParams {
        clients: 50,
        rate: 20.0,
        duration_secs: 1.0,
        slowloris: 20,
        slow_readers: 5,
        junk: 5,
        junk_rate: 200.0,
        snapshot_readers: 2,
    };
    let r = hostile::hostile(&server, &params).await?;
    for phase in ["calm", "attacked"] {
        let got = r
            .results
            .pointer(&format!("/{phase}/deliveries"))
            .and_then(serde_json::Value::as_f64);
        let expected = r
            .results
            .pointer(&format!("/{phase}/deliveries_expected"))
            .and_then(serde_json::Value::as_f64);
        check(
            got.is_some_and(|d| d > 0.0) && got == expected,
            &format!("hostile ({phase}): every expected delivery arrives"),
            failures,
        );
    }
    check(
        r.results
            .pointer("/attack/junk_closed_1008")
            .and_then(serde_json::Value::as_u64)
            .is_some_and(|n| n > 0),
        "hostile: junk connections are closed with 1008",
        failures,
    );
    // The raw attackers reached the server (over TLS with `--tls`: their handshakes too).
    for (key, what) in [
        ("slowloris_opened", "slowloris connections open"),
        ("snapshot_requests", "snapshot readers get snapshots"),
    ] {
        check(
            r.results
                .pointer(&format!("/attack/{key}"))
                .and_then(serde_json::Value::as_u64)
                .is_some_and(|n| n > 0),
            &format!("hostile: {what}"),
            failures,
        );
    }
    reports.push(r);
    Ok(())
}

fn write_json(path: &PathBuf, reports: &[Report]) -> Result<(), String> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for report in reports {
        let line = serde_json::to_string(report).map_err(|e| e.to_string())?;
        writeln!(file, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let nofile = raise_open_files_limit();
    let target = match (cli.attach, cli.pid) {
        // The certificate is made for a server this tool starts and trusted by its clients
        // only: a server it did not start, or a peer (ws:// only), cannot take part. Refused
        // rather than run without TLS, so that no plain figure passes for a TLS one.
        (Some(_), Some(_)) if cli.tls => {
            eprintln!(
                "image-chat-loadgen: --tls is not supported with --attach (it needs a server \
                 this tool spawns with its own certificate)"
            );
            return ExitCode::FAILURE;
        }
        _ if cli.tls && cli.protocol != Protocol::ImageChat => {
            eprintln!(
                "image-chat-loadgen: --tls is not supported with a peer (--protocol other than \
                 image-chat): peers speak plain ws:// only"
            );
            return ExitCode::FAILURE;
        }
        (Some(addr), Some(pid)) => Target::Attach { addr, pid },
        _ if cli.protocol != Protocol::ImageChat => Target::Peer {
            protocol: cli.protocol,
            bin: cli
                .server_bin
                .clone()
                .unwrap_or_else(|| PathBuf::from("node")),
            args: cli.server_args.clone(),
        },
        _ => Target::Spawn {
            bin: cli.server_bin.clone().unwrap_or_else(default_server_bin),
            args: cli.server_args.clone(),
            tls: cli.tls,
        },
    };
    eprintln!("loadgen: open-files limit {nofile}, target {target:?}");
    let deadline = Duration::from_secs(cli.deadline_secs);
    let outcome = match tokio::time::timeout(deadline, run_scenario(&cli, &target)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("deadline of {} s reached", cli.deadline_secs)),
    };
    match outcome {
        Ok(mut reports) => {
            for report in &mut reports {
                report.label.clone_from(&cli.label);
                report.server.clone_from(&cli.server_name);
                report.print();
            }
            if let Some(path) = &cli.json
                && let Err(err) = write_json(path, &reports)
            {
                eprintln!("image-chat-loadgen: {err}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("image-chat-loadgen: {err}");
            ExitCode::FAILURE
        }
    }
}
