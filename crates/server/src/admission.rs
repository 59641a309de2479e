//! Admission control: which address a connection counts against, how many connections an
//! address may hold, and whether an op may go ahead (read-only, rate limits).
//!
//! Connections per address are counted at the HTTP upgrade, before any WebSocket state exists,
//! and refused there with HTTP 429: the cheapest possible answer to a flood. Per-image
//! connections need the `hello` and are refused in the session (close 4002).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::connect_info::Connected;
use axum::http::HeaderMap;
use axum::serve::IncomingStream;
use image_chat_protocol::ErrorCode;
use tokio::time::Instant;

use crate::TunedListener;
use crate::app::App;
use crate::ratelimit::{Rate, TokenBucket};
use crate::store::CommitLimits;
use crate::tls::TlsListener;

/// The TCP peer of a connection, for `ConnectInfo` on both the plain and the TLS listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TunedListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TunedListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

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

fn accounting_key(ip: IpAddr) -> IpAddr {
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

/// Decides, op by op, whether a live session may change anything.
#[derive(Debug)]
pub struct OpGate {
    /// From the identity: the tenant's anonymous policy or the signed `readOnly` flag.
    read_only: bool,
    /// This connection's bucket (`None`: unlimited).
    bucket: Option<TokenBucket>,
    /// The address whose shared bucket ops also draw from.
    ip: Option<IpAddr>,
    /// Size limits the store checks.
    pub commit_limits: CommitLimits,
}

/// Why an op was refused before reaching the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Wire code.
    pub code: ErrorCode,
    /// Message for developers.
    pub message: &'static str,
}

impl OpGate {
    /// A gate for one session.
    pub fn new(
        read_only: bool,
        ops: Option<Rate>,
        ip: Option<IpAddr>,
        commit_limits: CommitLimits,
        now: Instant,
    ) -> Self {
        Self {
            read_only,
            bucket: ops.map(|rate| TokenBucket::new(rate, now)),
            ip,
            commit_limits,
        }
    }

    /// Whether the session is read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Lets one op through, or says why not. A refused op takes no token.
    pub fn admit(&mut self, app: &App, now: Instant) -> Result<(), Refusal> {
        if self.read_only {
            return Err(Refusal {
                code: ErrorCode::Forbidden,
                message: "this session is read-only",
            });
        }
        let limited = |_| Refusal {
            code: ErrorCode::RateLimited,
            message: "too many changes in too short a time; try again in a moment",
        };
        if let Some(bucket) = &mut self.bucket {
            bucket.try_take(now).map_err(limited)?;
        }
        if let Some(ip) = self.ip {
            if let Err(wait) = app.ip_ops.try_take(&ip, now) {
                // The address's budget refused it: the connection's token is given back.
                if let Some(bucket) = &mut self.bucket {
                    bucket.refund();
                }
                return Err(limited(wait));
            }
        }
        Ok(())
    }
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
