//! The server's configurable limits, and how a tenant's configuration overrides them.
//!
//! Every limit can be changed with a flag (see `config`), and the per-tenant ones again per
//! tenant in the tenants file, so a load test can lift them and a small site can tighten them.
//! `0` means "unlimited" throughout. What happens when one is exceeded:
//!
//! | limit | scope | answer |
//! | --- | --- | --- |
//! | ops per second (burst) | connection | `error` `rate-limited` for the op; nothing committed |
//! | ops per second (burst) | client IP | `error` `rate-limited` for the op; nothing committed |
//! | connections (any: HTTP, keep-alive, WebSocket) | client IP | HTTP 429 at accept, before the request is read |
//! | connections | server | HTTP 503 at accept |
//! | request head not complete in time / too large | connection | connection closed / HTTP 431 |
//! | op bytes per second (burst) | connection, client IP | `error` `rate-limited` for the op |
//! | viewers of one image | client IP | `error` `limit-exceeded`, then close 4002 |
//! | invalid frames (burst) | connection | `error` for each, then close 1008 |
//! | connections | image | `error` `limit-exceeded`, then close 4002 |
//! | discussions | image | `error` `limit-exceeded` for the `create-chat` |
//! | comments | discussion | `error` `limit-exceeded` for the `add-comment` |
//! | bytes | image | `error` `image-full` for an op that would grow it (bounds every snapshot) |
//! | bytes | tenant, server | `error` `quota-exceeded` for an op that would grow it |
//! | HTTP API requests per second (burst) | client IP | HTTP 429 with `Retry-After` |

use std::time::Duration;

use serde::Deserialize;

use crate::ratelimit::Rate;
use crate::store::CommitLimits;

/// Limits a tenant may override.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TenantLimits {
    /// Ops one connection may send (`None`: unlimited).
    pub ops: Option<Rate>,
    /// Connections viewing one image at once.
    pub max_connections_per_image: u32,
    /// Discussions one image may hold.
    pub max_chats_per_image: u32,
    /// Comments one discussion may hold.
    pub max_comments_per_thread: u32,
    /// Bytes one image may hold (as `store::size` weighs them); bounds its snapshot.
    pub max_bytes_per_image: u64,
    /// Bytes one tenant may hold over all its images.
    pub max_bytes_per_tenant: u64,
}

/// Default [`TenantLimits::max_bytes_per_image`]: 1 MiB, some 2,000 comments of a few lines,
/// far more than people read on one image, and a `welcome` a phone downloads in a second.
pub const DEFAULT_MAX_BYTES_PER_IMAGE: u64 = 1024 * 1024;
/// Default [`TenantLimits::max_bytes_per_tenant`]: 1 GiB.
pub const DEFAULT_MAX_BYTES_PER_TENANT: u64 = 1024 * 1024 * 1024;
/// Default [`Limits::max_bytes_total`]: 16 GiB over every tenant.
pub const DEFAULT_MAX_BYTES_TOTAL: u64 = 16 * 1024 * 1024 * 1024;

impl Default for TenantLimits {
    fn default() -> Self {
        Self {
            // A person types; 20 ops at once and 5 per second sustained is far above that,
            // and far below what hurts the server.
            ops: Rate::new(5.0, 20),
            max_connections_per_image: 10_000,
            max_chats_per_image: 1_000,
            max_comments_per_thread: 500,
            max_bytes_per_image: DEFAULT_MAX_BYTES_PER_IMAGE,
            max_bytes_per_tenant: DEFAULT_MAX_BYTES_PER_TENANT,
        }
    }
}

impl TenantLimits {
    /// The store-side part, with the server-wide byte quota `max_bytes_total`.
    pub fn commit_limits(&self, max_bytes_total: u64) -> CommitLimits {
        CommitLimits {
            max_chats_per_image: self.max_chats_per_image,
            max_comments_per_thread: self.max_comments_per_thread,
            max_bytes_per_image: self.max_bytes_per_image,
            max_bytes_per_tenant: self.max_bytes_per_tenant,
            max_bytes_total,
            // Decided per commit from the live tenants (`session::commit`).
            webhook: false,
        }
    }

    /// These limits with a tenant's overrides applied.
    pub fn with_overrides(&self, o: &TenantLimitOverrides) -> Self {
        let ops = if o.ops_per_second.is_some() || o.ops_burst.is_some() {
            Rate::new(
                o.ops_per_second
                    .or(self.ops.map(|r| r.per_second))
                    .unwrap_or(0.0),
                o.ops_burst.or(self.ops.map(|r| r.burst)).unwrap_or(0),
            )
        } else {
            self.ops
        };
        Self {
            ops,
            max_connections_per_image: o
                .max_connections_per_image
                .unwrap_or(self.max_connections_per_image),
            max_chats_per_image: o.max_chats_per_image.unwrap_or(self.max_chats_per_image),
            max_comments_per_thread: o
                .max_comments_per_thread
                .unwrap_or(self.max_comments_per_thread),
            max_bytes_per_image: o.max_bytes_per_image.unwrap_or(self.max_bytes_per_image),
            max_bytes_per_tenant: o.max_bytes_per_tenant.unwrap_or(self.max_bytes_per_tenant),
        }
    }
}

/// A tenant's `[tenant.limits]` table: each value given replaces the server-wide default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantLimitOverrides {
    /// Ops per second per connection (0: unlimited).
    pub ops_per_second: Option<f64>,
    /// Burst of ops per connection (0: unlimited).
    pub ops_burst: Option<u32>,
    /// Connections per image.
    pub max_connections_per_image: Option<u32>,
    /// Discussions per image.
    pub max_chats_per_image: Option<u32>,
    /// Comments per discussion.
    pub max_comments_per_thread: Option<u32>,
    /// Bytes per image.
    pub max_bytes_per_image: Option<u64>,
    /// Bytes over all the tenant's images (its storage quota).
    pub max_bytes_per_tenant: Option<u64>,
}

/// How old and how far in the future a signed-user timestamp may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsoWindow {
    /// Signatures older than this are refused (`expired`).
    pub max_age: Duration,
    /// Signatures dated more than this after the server's clock are refused (clock skew
    /// between the site's backend and this server is tolerated up to it).
    pub max_skew: Duration,
}

impl Default for SsoWindow {
    fn default() -> Self {
        Self {
            // A page signs once when it renders; its widget reconnects with the same signature
            // after network blips, so the window must cover a long-open tab. Pages that want a
            // shorter window refresh with `setAuth`.
            max_age: Duration::from_secs(24 * 3600),
            max_skew: Duration::from_secs(300),
        }
    }
}

/// Limits of the HTTP layer, applied to every TCP connection from its accept (`listen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections the server holds at once, all addresses together (0: unlimited).
    pub max_connections: usize,
    /// Time a client has to send a complete request head, from the connection's start or the
    /// end of the previous response (so also the keep-alive idle timeout).
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; also the connection's read
    /// buffer while a head is read.
    pub max_header_bytes: usize,
    /// Most header lines in one request.
    pub max_headers: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 0,
            header_read_timeout: Duration::from_secs(10),
            // Browsers send well under 4 KiB to this server (no cookies of its own).
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Server-wide limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Defaults of the per-tenant limits.
    pub tenant: TenantLimits,
    /// Ops one client IP may send across all its connections (`None`: unlimited).
    pub ip_ops: Option<Rate>,
    /// Bytes of ops one connection may send (`None`: unlimited). Ops are also counted in
    /// bytes because every byte is fanned out to every viewer: re-editing a 16 KB comment at
    /// the op rate would otherwise send hundreds of KB per second to each of them.
    pub conn_bytes: Option<Rate>,
    /// Bytes of ops one client IP may send across all its connections (`None`: unlimited).
    pub ip_bytes: Option<Rate>,
    /// Ops one tenant (one site) may receive over all its connections — and, in a cluster, all
    /// nodes (`None`: unlimited): one site's flood cannot take the whole service's capacity.
    pub tenant_ops: Option<Rate>,
    /// Invalid frames (undecodable, binary, a second `hello`) one connection may send; past
    /// the burst the connection is closed with 1008 (`None`: unlimited).
    pub junk: Option<Rate>,
    /// Connections one client IP may hold open (HTTP and WebSocket alike).
    pub max_connections_per_ip: u32,
    /// Viewers of one image from one client IP, so a few addresses cannot fill an image's
    /// viewer slots (0: unlimited).
    pub max_viewers_per_ip_per_image: u32,
    /// Anonymous people of one client IP counted in an image's live count: more are connected
    /// but not counted, so one address cannot inflate the count (0: unlimited).
    pub counted_anonymous_per_ip: u32,
    /// The HTTP layer.
    pub http: HttpLimits,
    /// Whether the client IP is taken from `X-Forwarded-For` (set only behind a trusted proxy
    /// that appends to it; otherwise any client could claim any address).
    pub trust_forwarded_for: bool,
    /// Accepted age of signed-user timestamps.
    pub sso: SsoWindow,
    /// The audience signed users must be signed for (the server's public host); tenants may
    /// override it. `None`: the `Host` the client connected to.
    pub sso_audience: Option<String>,
    /// Bytes the whole store may hold over every tenant (`quota-exceeded` past it).
    pub max_bytes_total: u64,
    /// Requests one client IP may make to the HTTP API (`/api/…`) (`None`: unlimited).
    pub api_requests: Option<Rate>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tenant: TenantLimits::default(),
            // Offices and mobile carriers put many people behind one address.
            ip_ops: Rate::new(20.0, 100),
            // Four 16 KB edits at once, then 4 KB/s (a person types far less); the address
            // together: 256 KB at once, then 32 KB/s.
            conn_bytes: Rate::new(4096.0, 64 * 1024),
            ip_bytes: Rate::new(32.0 * 1024.0, 256 * 1024),
            // Sites differ too much for one default; the operator sets it per deployment.
            tenant_ops: None,
            // A buggy client gets its errors; a junk flood is cut off.
            junk: Rate::new(1.0, 100),
            max_connections_per_ip: 200,
            max_viewers_per_ip_per_image: 50,
            counted_anonymous_per_ip: 10,
            http: HttpLimits::default(),
            trust_forwarded_for: false,
            sso: SsoWindow::default(),
            sso_audience: None,
            max_bytes_total: DEFAULT_MAX_BYTES_TOTAL,
            // A page reads a snapshot when it renders; 5 a second sustained and 20 at once is
            // plenty for people behind one address, and a snapshot flood is held to it.
            api_requests: Rate::new(5.0, 20),
        }
    }
}

impl Limits {
    /// No limits at all (benchmarks). Timeouts are not limits and stay as configured.
    pub fn unlimited() -> Self {
        Self {
            tenant: TenantLimits {
                ops: None,
                max_connections_per_image: 0,
                max_chats_per_image: 0,
                max_comments_per_thread: 0,
                max_bytes_per_image: 0,
                max_bytes_per_tenant: 0,
            },
            ip_ops: None,
            conn_bytes: None,
            ip_bytes: None,
            tenant_ops: None,
            junk: None,
            max_connections_per_ip: 0,
            max_viewers_per_ip_per_image: 0,
            counted_anonymous_per_ip: 0,
            http: HttpLimits::default(),
            trust_forwarded_for: false,
            sso: SsoWindow::default(),
            sso_audience: None,
            max_bytes_total: 0,
            api_requests: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_name() {
        let base = TenantLimits::default();
        assert_eq!(base.with_overrides(&TenantLimitOverrides::default()), base);
        let o = TenantLimitOverrides {
            ops_burst: Some(3),
            max_chats_per_image: Some(0),
            ..TenantLimitOverrides::default()
        };
        let got = base.with_overrides(&o);
        assert_eq!(got.ops, Rate::new(5.0, 3));
        assert_eq!(got.max_chats_per_image, 0);
        assert_eq!(got.max_comments_per_thread, base.max_comments_per_thread);
        let off = TenantLimitOverrides {
            ops_per_second: Some(0.0),
            ..TenantLimitOverrides::default()
        };
        assert_eq!(base.with_overrides(&off).ops, None);
    }
}
