//! `/metrics` in the Prometheus text format (prometheus-client's encoder): process figures
//! (Linux), open connections, each tenant's frames and bytes sent, the commit latency, and
//! the Redis hop of a cluster's fan-out.
//!
//! Counters that the live path already keeps (the per-tenant [`Meters`]) are read when
//! scraped by a [`Collector`] rather than counted twice; only the latency histograms are
//! prometheus-client metrics of their own (a commit already waits for the database, so the
//! histogram's lock costs nothing there).
//!
//! `/metrics` is served on its own listener (`--metrics-listen`, see [`listen`]), never on the
//! public port: per-tenant figures are the operator's business, and a scrape target on a
//! private address needs no credentials (docs/OPERATIONS.md#metrics).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::usage::Meters;

/// The Redis hop of this process's publishes (`broker::lag`), 0.1 ms .. ~1.6 s: one for the
/// process, since the broker is built before the server's state and outlives none of it.
pub static BROKER_LAG: std::sync::LazyLock<Histogram> =
    std::sync::LazyLock::new(|| Histogram::new(exponential_buckets(0.000_1, 2.0, 15)));

/// The server's metrics registry and the metrics the live path records into directly.
pub struct Metrics {
    registry: Registry,
    /// Seconds a commit took in the store (the transaction, its fsync included).
    pub commit_latency: Histogram,
    /// Seconds from a node's publish to Redis until that node's own subscription delivered it
    /// back: the Redis hop every other node's viewers wait for.
    pub broker_lag: Histogram,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A registry with every metric of this server, reading the live counters of `meters`.
    pub fn new(meters: Arc<Meters>) -> Self {
        let mut registry = Registry::default();
        // 0.25 ms .. ~4 s.
        let commit_latency = Histogram::new(exponential_buckets(0.000_25, 2.0, 15));
        registry.register_with_unit(
            "image_chat_commit_latency",
            "Time a commit took in the store (transaction and fsync)",
            Unit::Seconds,
            commit_latency.clone(),
        );
        let broker_lag = BROKER_LAG.clone();
        registry.register_with_unit(
            "image_chat_broker_lag",
            "Time from publishing an event to Redis until this node received it back",
            Unit::Seconds,
            broker_lag.clone(),
        );
        registry.register_collector(Box::new(UsageCollector(meters)));
        registry.register_collector(Box::new(ProcessCollector));
        Self {
            registry,
            commit_latency,
            broker_lag,
        }
    }

    /// The exposition text.
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Reads one counter of a tenant's totals.
type CountField = fn(&crate::store::UsageCounts) -> u64;

/// Each tenant's counters and open connections, read from the live [`Meters`] at each scrape.
#[derive(Debug)]
struct UsageCollector(Arc<Meters>);

impl Collector for UsageCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let mut tenants = self.0.all();
        tenants.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let total_open: u64 = tenants.iter().map(|(_, m)| m.open()).sum();
        ConstGauge::new(total_open).encode(encoder.encode_descriptor(
            "image_chat_open_connections",
            "WebSocket connections open now (admitted sessions)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?)?;
        let counters: [(&str, &str, CountField); 6] = [
            (
                "image_chat_tenant_frames",
                "Frames sent to widgets (pubSubMessageCount)",
                |c| c.frames,
            ),
            (
                "image_chat_tenant_sent_bytes",
                "Bytes of frames sent to widgets (pubSubBandwidth)",
                |c| c.bytes,
            ),
            (
                "image_chat_tenant_discussions",
                "Discussions created",
                |c| c.discussions,
            ),
            ("image_chat_tenant_comments", "Comments created", |c| {
                c.comments
            }),
            ("image_chat_tenant_ops", "Ops committed", |c| c.ops),
            (
                "image_chat_tenant_connections",
                "Connections admitted",
                |c| c.connections,
            ),
        ];
        let totals: Vec<_> = tenants.iter().map(|(id, m)| (id, m.totals())).collect();
        for (name, help, field) in counters {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (tenant, counts) in &totals {
                let labels = [("tenant", tenant.as_str())];
                ConstCounter::new(field(counts)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "image_chat_tenant_open_connections",
            "Connections open now per tenant",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (tenant, meter) in &tenants {
            let labels = [("tenant", tenant.as_str())];
            ConstGauge::new(meter.open()).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The process's resident memory, CPU time and file descriptors, read from `/proc/self` at
/// each scrape (Linux; elsewhere these metrics are left out).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let Some(process) = process::read() else {
            return Ok(());
        };
        ConstGauge::new(process.resident_bytes).encode(encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?)?;
        ConstCounter::new(process.cpu_seconds).encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent in seconds",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?)?;
        ConstGauge::new(process.open_fds).encode(encoder.encode_descriptor(
            "process_open_fds",
            "Open file descriptors",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?)?;
        ConstGauge::new(process.max_fds).encode(encoder.encode_descriptor(
            "process_max_fds",
            "Limit of open file descriptors",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?)?;
        Ok(())
    }
}

/// Reading `/proc/self` (pure parsing separate from the reads, tested natively).
mod process {
    /// What a scrape reports of the process.
    pub(super) struct Process {
        pub(super) resident_bytes: u64,
        pub(super) cpu_seconds: f64,
        pub(super) open_fds: u64,
        pub(super) max_fds: u64,
    }

    pub(super) fn read() -> Option<Process> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let ticks = rustix::param::clock_ticks_per_second().max(1);
        let max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        Some(Process {
            resident_bytes: resident_kib(&status)? * 1024,
            cpu_seconds: cpu_ticks(&stat)? as f64 / ticks as f64,
            open_fds,
            max_fds,
        })
    }

    /// `VmRSS` of `/proc/self/status`, in KiB.
    pub(super) fn resident_kib(status: &str) -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// `utime + stime` of `/proc/self/stat`, in clock ticks. The command name (field 2) is in
    /// parentheses and may itself hold spaces and parentheses: fields are counted after the
    /// last `)`.
    pub(super) fn cpu_ticks(stat: &str) -> Option<u64> {
        let after = &stat[stat.rfind(')')? + 1..];
        let mut fields = after.split_whitespace();
        // After the name: state is field 3, utime field 14, stime field 15.
        let utime: u64 = fields.nth(11)?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(utime + stime)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_proc_files() {
            let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n";
            assert_eq!(resident_kib(status), Some(1234));
            let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3";
            assert_eq!(cpu_ticks(stat), Some(300));
            assert_eq!(cpu_ticks("garbage"), None);
            // The live files parse on this (Linux) machine.
            assert!(read().is_some_and(|p| p.resident_bytes > 0 && p.open_fds > 0));
        }
    }
}

/// `GET /metrics`.
async fn scrape(State(app): State<Arc<App>>) -> Response {
    match app.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Serves `/metrics` of `app` on its own listener at `addr` (port 0 picks one) until the
/// server shuts down; returns the address bound.
pub async fn listen(
    app: Arc<App>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let stop = app.shutdown.clone();
    let router = Router::new().route("/metrics", get(scrape)).with_state(app);
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(err) = serve.await {
            tracing::warn!(%err, "metrics listener failed");
        }
    });
    Ok((bound, task))
}
