//! Tenants: who may use the server, from which pages, and as whom.
//!
//! A connection names its tenant in `hello`; the tenant decides whether the page's `Origin` is
//! allowed and whether anonymous people may take part. The built-in `demo` tenant serves the
//! bundled demo page: anonymous people, pages on localhost only.

use std::collections::HashMap;
use std::sync::Arc;

use image_chat_protocol::TenantId;

/// Which page origins may open sessions for a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPolicy {
    /// `http(s)://localhost`, `127.0.0.1` or `[::1]`, any port; also clients that send no
    /// `Origin` at all (non-browser tools on the same machine, tests, the load generator).
    Localhost,
    /// Exactly these origins (scheme://host[:port], compared case-insensitively).
    List(Vec<String>),
}

impl OriginPolicy {
    /// Whether a connection with this `Origin` header may use the tenant.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (self, origin) {
            (OriginPolicy::Localhost, None) => true,
            (OriginPolicy::Localhost, Some(origin)) => is_localhost_origin(origin),
            (OriginPolicy::List(_), None) => false,
            (OriginPolicy::List(allowed), Some(origin)) => {
                allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
            }
        }
    }
}

fn is_localhost_origin(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    // Split "host[:port]", where an IPv6 host is bracketed and contains colons itself.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((inner, port)) => (format!("[{inner}]"), port),
            None => return false,
        },
        None => match authority.find(':') {
            Some(i) => (authority[..i].to_owned(), &authority[i..]),
            None => (authority.to_owned(), ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.parse::<u16>().is_ok());
    port_ok
        && matches!(
            host.to_ascii_lowercase().as_str(),
            "localhost" | "127.0.0.1" | "[::1]"
        )
}

/// One site owner's account.
#[derive(Clone, Debug)]
pub struct Tenant {
    /// The tenant's id, as sent in `hello`.
    pub id: TenantId,
    /// Pages allowed to connect.
    pub origins: OriginPolicy,
    /// Whether people without a signed identity may take part.
    pub allow_anonymous: bool,
}

impl Tenant {
    /// The built-in demo tenant.
    pub fn demo() -> Self {
        Self {
            id: TenantId::new("demo"),
            origins: OriginPolicy::Localhost,
            allow_anonymous: true,
        }
    }
}

/// Every tenant the server knows.
#[derive(Clone, Debug, Default)]
pub struct Tenants {
    by_id: HashMap<TenantId, Arc<Tenant>>,
}

impl Tenants {
    /// The built-in tenants (just `demo`).
    pub fn builtin() -> Self {
        let mut tenants = Self::default();
        tenants.insert(Tenant::demo());
        tenants
    }

    /// Adds or replaces a tenant.
    pub fn insert(&mut self, tenant: Tenant) {
        self.by_id.insert(tenant.id.clone(), Arc::new(tenant));
    }

    /// Looks a tenant up.
    pub fn get(&self, id: &TenantId) -> Option<Arc<Tenant>> {
        self.by_id.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_policy() {
        let p = OriginPolicy::Localhost;
        for ok in [
            "http://localhost",
            "http://localhost:8080",
            "https://127.0.0.1:3000",
            "http://[::1]:9000",
            "http://[::1]",
            "HTTP://LOCALHOST:1",
        ] {
            assert!(p.allows(Some(&ok.to_ascii_lowercase())), "{ok}");
        }
        assert!(p.allows(None));
        for bad in [
            "http://localhost.evil.com",
            "http://evil.com",
            "null",
            "file://",
            "http://127.0.0.1.nip.io",
            "http://localhost:notaport",
            "http://evil.com/localhost",
            "ws://localhost",
        ] {
            assert!(!p.allows(Some(bad)), "{bad}");
        }
    }

    #[test]
    fn list_policy() {
        let p = OriginPolicy::List(vec!["https://example.com".into()]);
        assert!(p.allows(Some("https://example.com")));
        assert!(p.allows(Some("https://EXAMPLE.com")));
        assert!(!p.allows(Some("http://example.com")));
        assert!(!p.allows(None));
    }
}
