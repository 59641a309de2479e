//! Admission control: which address a connection counts against, how many connections an
//! address may hold, and whether an op may go ahead (read-only, rate limits).
//!
//! Connections per address are counted by one [`ConnectionCounts`]: at accept time for every TCP
//! connection (`listen`), or, behind a trusted proxy whose address every connection shares, at
//! the WebSocket upgrade under the forwarded address (`http`). Per-image connections need the
//! `hello` and are refused in the session (close 4002).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::HeaderMap;
use image_chat_protocol::{ErrorCode, TenantId};
use tokio::time::Instant;

use crate::app::App;
use crate::ratelimit::{Rate, TokenBucket};
use crate::store::CommitLimits;

/// The TCP peer of a connection, for `ConnectInfo` on both the plain and the TLS listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The address a client is accounted under: the TCP peer, or, when the operator trusts a
/// reverse proxy, the last address in `X-Forwarded-For` (the one that proxy appended; entries
/// further left are whatever the client claimed). IPv6 addresses count per /64, the block one
/// subscriber typically gets, so rotating through it gains nothing.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> IpAddr {
    let forwarded = trust_forwarded_for
        .then(|| {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    accounting_key(forwarded.unwrap_or(peer.ip()))
}

/// The key an address is counted under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 per /64.
pub fn accounting_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per client address.
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    counts: Mutex<HashMap<IpAddr, u32>>,
}

/// One counted connection; dropping it counts it out.
#[derive(Debug)]
pub struct ConnectionPermit {
    counts: Arc<ConnectionCounts>,
    ip: IpAddr,
}

impl ConnectionCounts {
    /// Counts a connection from `ip` in, unless `ip` already holds `max` (0: unlimited).
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<ConnectionPermit> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if max > 0 && *count >= max {
            return None;
        }
        *count += 1;
        Some(ConnectionPermit {
            counts: Arc::clone(self),
            ip,
        })
    }

    /// Connections currently counted for `ip`.
    pub fn count(&self, ip: IpAddr) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Decides, op by op, whether a live session may change anything, and how many invalid frames
/// it may still send.
#[derive(Debug)]
pub struct OpGate {
    /// From the identity: the tenant's anonymous policy or the signed `readOnly` flag.
    read_only: bool,
    /// This connection's op bucket (`None`: unlimited).
    ops: Option<TokenBucket>,
    /// This connection's byte bucket (`None`: unlimited).
    bytes: Option<TokenBucket>,
    /// This connection's allowance of invalid frames (`None`: unlimited).
    junk: Option<TokenBucket>,
    /// The address whose shared buckets ops also draw from.
    ip: Option<IpAddr>,
    /// The tenant whose shared bucket ops also draw from.
    tenant: TenantId,
    /// Size limits the store checks.
    pub commit_limits: CommitLimits,
}

/// The per-connection rates of an [`OpGate`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GateRates {
    /// Ops.
    pub ops: Option<Rate>,
    /// Bytes of ops.
    pub bytes: Option<Rate>,
    /// Invalid frames.
    pub junk: Option<Rate>,
}

/// Why an op was refused before reaching the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Wire code.
    pub code: ErrorCode,
    /// Message for developers.
    pub message: &'static str,
}

/// The refusal of an op over a rate limit (this node's or the cluster's).
pub const RATE_LIMITED: Refusal = Refusal {
    code: ErrorCode::RateLimited,
    message: "too many changes in too short a time; try again in a moment",
};

impl OpGate {
    /// A gate for one session.
    pub fn new(
        read_only: bool,
        rates: GateRates,
        ip: Option<IpAddr>,
        tenant: TenantId,
        commit_limits: CommitLimits,
        now: Instant,
    ) -> Self {
        let bucket = |rate: Option<Rate>| rate.map(|rate| TokenBucket::new(rate, now));
        Self {
            read_only,
            ops: bucket(rates.ops),
            bytes: bucket(rates.bytes),
            junk: bucket(rates.junk),
            ip,
            tenant,
            commit_limits,
        }
    }

    /// Whether the session is read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Lets one op of `size` bytes through, or says why not. It must fit every budget: ops and
    /// bytes, of the connection and of its address, and the tenant's ops. A refused op takes
    /// nothing from any of them.
    pub fn admit(&mut self, app: &App, now: Instant, size: usize) -> Result<(), Refusal> {
        if self.read_only {
            return Err(Refusal {
                code: ErrorCode::Forbidden,
                message: "this session is read-only",
            });
        }
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        let limited = RATE_LIMITED;
        // Each step that refuses gives back what the steps before it took.
        let mut taken = Taken::default();
        let result = self.take_all(app, now, size, &mut taken);
        if result.is_err() {
            self.give_back(app, size, taken);
        }
        result.map_err(|()| limited)
    }

    fn take_all(
        &mut self,
        app: &App,
        now: Instant,
        size: u32,
        taken: &mut Taken,
    ) -> Result<(), ()> {
        if let Some(ops) = &mut self.ops {
            ops.try_take(now).map_err(drop)?;
            taken.ops = true;
        }
        if let Some(bytes) = &mut self.bytes {
            bytes.try_take_n(now, size).map_err(drop)?;
            taken.bytes = true;
        }
        if let Some(ip) = self.ip {
            app.ip_ops.try_take(&ip, now).map_err(drop)?;
            taken.ip_ops = true;
            app.ip_bytes.try_take_n(&ip, now, size).map_err(drop)?;
            taken.ip_bytes = true;
        }
        app.tenant_ops.try_take(&self.tenant, now).map_err(drop)?;
        taken.tenant_ops = true;
        Ok(())
    }

    fn give_back(&mut self, app: &App, size: u32, taken: Taken) {
        if taken.ops
            && let Some(ops) = &mut self.ops
        {
            ops.refund();
        }
        if taken.bytes
            && let Some(bytes) = &mut self.bytes
        {
            bytes.refund_n(size);
        }
        if let (true, Some(ip)) = (taken.ip_ops, self.ip) {
            app.ip_ops.refund_n(&ip, 1);
        }
        if let (true, Some(ip)) = (taken.ip_bytes, self.ip) {
            app.ip_bytes.refund_n(&ip, size);
        }
        if taken.tenant_ops {
            app.tenant_ops.refund_n(&self.tenant, 1);
        }
    }

    /// Gives back everything an op of `size` bytes took when [`OpGate::admit`] let it through
    /// (a later check, the cluster's budgets, refused it).
    pub fn refund(&mut self, app: &App, size: usize) {
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        let taken = Taken {
            ops: true,
            bytes: true,
            ip_ops: true,
            ip_bytes: true,
            tenant_ops: true,
        };
        self.give_back(app, size, taken);
    }

    /// Counts one invalid frame; `false` once the connection has sent more than its allowance
    /// (it is then closed with 1008).
    pub fn junk(&mut self, now: Instant) -> bool {
        self.junk
            .as_mut()
            .is_none_or(|bucket| bucket.try_take(now).is_ok())
    }
}

/// Which budgets an op took from so far.
#[derive(Clone, Copy, Debug, Default)]
struct Taken {
    ops: bool,
    bytes: bool,
    ip_ops: bool,
    ip_bytes: bool,
    tenant_ops: bool,
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5000)
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_only_when_trusted_and_only_the_last_hop() {
        let p = peer("10.0.0.1");
        let spoofed = headers(&["1.2.3.4, 5.6.7.8"]);
        assert_eq!(client_ip(p, &spoofed, false), peer("10.0.0.1").ip());
        assert_eq!(client_ip(p, &spoofed, true), peer("5.6.7.8").ip());
        assert_eq!(
            client_ip(p, &headers(&["1.1.1.1", "9.9.9.9"]), true),
            peer("9.9.9.9").ip()
        );
        assert_eq!(client_ip(p, &headers(&["garbage"]), true), p.ip());
        assert_eq!(client_ip(p, &HeaderMap::new(), true), p.ip());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let h = HeaderMap::new();
        let a = client_ip(peer("2001:db8:1:2:aaaa::1"), &h, false);
        let b = client_ip(peer("2001:db8:1:2:bbbb::9"), &h, false);
        let c = client_ip(peer("2001:db8:1:3::1"), &h, false);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            client_ip(peer("::ffff:192.0.2.1"), &h, false),
            peer("192.0.2.1").ip()
        );
    }

    #[test]
    fn permits_count_in_and_out() {
        let counts = Arc::new(ConnectionCounts::default());
        let ip = peer("192.0.2.1").ip();
        let a = counts.try_acquire(ip, 2).unwrap();
        let _b = counts.try_acquire(ip, 2).unwrap();
        assert!(counts.try_acquire(ip, 2).is_none());
        assert!(counts.try_acquire(peer("192.0.2.2").ip(), 2).is_some());
        drop(a);
        assert_eq!(counts.count(ip), 1);
        assert!(counts.try_acquire(ip, 2).is_some());
        // 0 is unlimited.
        let many: Vec<_> = (0..1000)
            .map(|_| counts.try_acquire(ip, 0).unwrap())
            .collect();
        assert_eq!(counts.count(ip), 1001);
        drop(many);
        assert_eq!(counts.count(ip), 1);
    }
}
