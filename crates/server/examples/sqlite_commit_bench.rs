//! Offered-load benchmark of the SQLite store's commit path alone (no sockets, no fan-out): at
//! each rate, ops are started on a fixed schedule (open loop) over many images for a few
//! seconds, each a `create-chat` committed through [`SqliteStore`]; it prints the rate achieved
//! and the ack latency, measured from each op's scheduled start so a slow store cannot hide its
//! queue (no coordinated omission).
//!
//! `cargo run -p image-chat-server --example sqlite_commit_bench -- [DIR] [RATES] [SECS] [GROUP]`:
//! the database goes in a new temporary directory under DIR (default: the system temp dir;
//! `/dev/shm` for tmpfs, where fsync costs nothing), RATES is a comma list of ops/s (default
//! `200,1000,5000`), SECS the seconds per rate (default 4), GROUP the most writes committed
//! together (default: the store's, 64; 1 = one transaction and fsync per op, as before group
//! commit). Figures are in docs/BENCHMARKS.md.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use image_chat_protocol::ids::encode_uuid_v4;
use image_chat_protocol::{Anchor, BroadcastId, ChatId, CreateChat, ImageId, Op, TenantId, User};
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::store::{Commit, ImageKey, Store};
use tokio::time::MissedTickBehavior;

/// Images the ops are spread over (round-robin), across 10 tenants.
const IMAGES: u64 = 100;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let rates: Vec<u64> = args
        .next()
        .unwrap_or_else(|| "200,1000,5000".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let secs: u64 = args.next().map_or(Ok(4), |s| s.parse())?;
    let max_group: usize = args
        .next()
        .map_or(Ok(SqliteConfig::default().max_group), |s| s.parse())?;
    if secs == 0 || rates.contains(&0) {
        return Err("rates and seconds must be at least 1".into());
    }
    println!(
        "dir {} | {IMAGES} images | {secs} s per rate | group commit of at most {max_group}",
        base.display()
    );
    println!("offered ops/s | achieved ops/s | ack p50 ms | ack p99 ms | ack max ms");
    for rate in rates {
        let dir = tempfile::tempdir_in(&base)?;
        let store = Arc::new(SqliteStore::open(
            &dir.path().join("bench.db"),
            SqliteConfig {
                max_group,
                // As the server runs it (`config.rs`).
                blocking_wait: false,
                ..SqliteConfig::default()
            },
        )?);
        let (achieved, mut latencies) = run(&store, rate, secs).await?;
        latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            latencies[i].as_secs_f64() * 1000.0
        };
        println!(
            "{rate} | {achieved:.0} | {:.2} | {:.2} | {:.2}",
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    Ok(())
}

/// Offers `rate` ops/s for `secs` seconds: the achieved rate (ops over the time until the last
/// ack) and every op's ack latency.
async fn run(
    store: &Arc<SqliteStore>,
    rate: u64,
    secs: u64,
) -> Result<(f64, Vec<Duration>), Box<dyn Error>> {
    let total = rate * secs;
    let period = Duration::from_secs(1) / u32::try_from(rate)?;
    let mut ticks = tokio::time::interval(period);
    // Late ticks fire at once: the schedule, not the store, sets the offered rate.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total)?);
    for n in 0..total {
        ticks.tick().await;
        let scheduled = start + period * u32::try_from(n)?;
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let (image, actor, op) = create(n);
            match store.commit(&image, &actor, &op, n).await {
                Ok(Commit::Applied(_)) => Ok(scheduled.elapsed()),
                other => Err(format!("op {n}: {other:?}")),
            }
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await??);
    }
    Ok((total as f64 / start.elapsed().as_secs_f64(), latencies))
}

/// The `n`th op: a new discussion on image `n % IMAGES`, with ids unique to `n`.
fn create(n: u64) -> (ImageKey, User, Op) {
    let id = |kind: u8| {
        let mut bytes = [0u8; 16];
        bytes[0] = kind;
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        encode_uuid_v4(bytes)
    };
    let image = ImageKey::image(
        TenantId::new(format!("t{}", n % 10)),
        ImageId::new(format!("img{}", n % IMAGES)),
    );
    let actor = User {
        id: format!("anon:{}", n % 37),
        name: "Bench".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    };
    let op = Op::CreateChat(CreateChat {
        broadcast_id: BroadcastId::new(id(1)),
        chat_id: ChatId::new(id(2)),
        anchor: Anchor::point(0.5, 0.5),
        text: "bench".into(),
    });
    (image, actor, op)
}
