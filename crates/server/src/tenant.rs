//! Tenants: who may use the server, from which pages, and as whom.
//!
//! A connection names its tenant in `hello`; the tenant decides whether the page's `Origin` is
//! allowed, whether anonymous people may take part (and whether only to read), which secret
//! signs its users, and which limits apply. The built-in `demo` tenant serves the bundled demo
//! page: anonymous people, pages on localhost only, no secret.
//!
//! Tenants come from a TOML file (`--tenants`), one `[[tenant]]` table each:
//!
//! ```toml
//! [[tenant]]
//! id = "acme"
//! secret = "…64 hex characters from `image-chat-server tenant new`…"   # signs users
//! api_key = "…another 64 hex characters…"   # bearer token of the private HTTP API
//! sso_audience = "chat.acme.example"         # optional, overrides --sso-audience
//! origins = ["https://acme.example", "https://www.acme.example"]
//! anonymous = "read-only"        # allow | read-only | deny (default: deny)
//! sso_max_age_secs = 3600        # optional, overrides --sso-max-age-secs
//!
//! [tenant.limits]                # optional, each overrides the server-wide flag
//! ops_per_second = 2
//! max_chats_per_image = 200
//!
//! [tenant.webhook]               # optional: each committed change is POSTed here
//! url = "https://hooks.acme.example/image-chat"   # https (http only to localhost)
//! secret = "…at least 16 bytes…" # signs each delivery (HMAC-SHA256)
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use image_chat_protocol::TenantId;
use serde::Deserialize;
use thiserror::Error;

use crate::limits::TenantLimitOverrides;
use crate::secret::{MIN_SECRET_BYTES, Secret};
use crate::webhooks::target::{WebhookEntry, WebhookTarget, WebhookUrl};

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

/// Whether people without a signed identity may take part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AnonymousPolicy {
    /// Anonymous people may read and write.
    Allow,
    /// Anonymous people may read; every op they send is `forbidden`.
    ReadOnly,
    /// Only signed users may connect; anonymous `hello`s fail with 4401.
    Deny,
}

/// One site owner's account.
#[derive(Clone, Debug)]
pub struct Tenant {
    /// The tenant's id, as sent in `hello`.
    pub id: TenantId,
    /// Pages allowed to connect.
    pub origins: OriginPolicy,
    /// Whether people without a signed identity may take part.
    pub anonymous: AnonymousPolicy,
    /// Signs the tenant's users (Secure SSO). `None`: signed users are refused
    /// (`SsoNotConfigured`). Never accepted as an API key: the site's backend signs with it, and
    /// a key that guards the private API should not also make users.
    pub secret: Option<Secret>,
    /// Bearer token of the tenant's private HTTP API (`Authorization: Bearer …`). `None`: only
    /// what is public (tenants that admit anonymous readers) can be read over HTTP.
    pub api_key: Option<Secret>,
    /// The audience its signed users must be signed for (overrides the server's).
    pub sso_audience: Option<String>,
    /// Overrides the server-wide accepted age of signed-user timestamps.
    pub sso_max_age: Option<Duration>,
    /// Overrides of the server-wide limits.
    pub limits: TenantLimitOverrides,
    /// Where each committed change is POSTed (`[tenant.webhook]`), if anywhere.
    pub webhook: Option<WebhookTarget>,
}

impl AnonymousPolicy {
    /// The value as written in the tenants file.
    pub fn as_str(self) -> &'static str {
        match self {
            AnonymousPolicy::Allow => "allow",
            AnonymousPolicy::ReadOnly => "read-only",
            AnonymousPolicy::Deny => "deny",
        }
    }
}

impl Tenant {
    /// The built-in demo tenant.
    pub fn demo() -> Self {
        Self {
            id: TenantId::new("demo"),
            origins: OriginPolicy::Localhost,
            anonymous: AnonymousPolicy::Allow,
            secret: None,
            api_key: None,
            sso_audience: None,
            sso_max_age: None,
            limits: TenantLimitOverrides::default(),
            webhook: None,
        }
    }

    /// Whether anyone may read this tenant's discussions without signing in.
    pub fn publicly_readable(&self) -> bool {
        self.anonymous != AnonymousPolicy::Deny
    }
}

/// Why a tenants file was refused. The server does not start with a half-understood file.
#[derive(Debug, Error)]
pub enum TenantConfigError {
    /// The file could not be read.
    #[error("cannot read tenants file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("tenants file {path}, line {line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line of the problem.
        line: usize,
        /// What toml said, without the quoted source line (which could hold a secret).
        message: String,
    },
    /// A tenant's values are unacceptable.
    #[error("tenant {tenant:?}: {reason}")]
    Invalid {
        /// The tenant id.
        tenant: String,
        /// What is wrong.
        reason: String,
    },
}

/// The tenants file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    #[serde(default)]
    tenant: Vec<TenantEntry>,
}

/// One `[[tenant]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    id: String,
    secret: Option<Secret>,
    api_key: Option<Secret>,
    sso_audience: Option<String>,
    #[serde(default)]
    origins: Vec<String>,
    /// Secure by default: a tenant that says nothing admits only signed users.
    #[serde(default = "default_anonymous")]
    anonymous: AnonymousPolicy,
    sso_max_age_secs: Option<u64>,
    #[serde(default)]
    limits: TenantLimitOverrides,
    webhook: Option<WebhookEntry>,
}

fn default_anonymous() -> AnonymousPolicy {
    AnonymousPolicy::Deny
}

/// Checks one configured origin: `scheme://host[:port]`, nothing after, lowercased.
fn parse_origin(origin: &str) -> Result<String, String> {
    let lower = origin.trim().to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return Err(format!(
            "origin {origin:?} must start with https:// or http://"
        ));
    };
    if rest.is_empty()
        || rest.contains(['/', '?', '#', '@', '*', ' '])
        || rest.chars().any(char::is_control)
    {
        return Err(format!(
            "origin {origin:?} must be scheme://host[:port] exactly (no path, no wildcard)"
        ));
    }
    Ok(lower)
}

impl TenantEntry {
    fn into_tenant(self) -> Result<Tenant, TenantConfigError> {
        let invalid = |reason: String| TenantConfigError::Invalid {
            tenant: self.id.clone(),
            reason,
        };
        let id = TenantId::new(self.id.clone());
        id.validate().map_err(|e| invalid(e.to_string()))?;
        for (what, secret) in [("secret", &self.secret), ("api_key", &self.api_key)] {
            if secret.as_ref().is_some_and(|s| s.len() < MIN_SECRET_BYTES) {
                return Err(invalid(format!(
                    "{what} must be at least {MIN_SECRET_BYTES} bytes \
                     (`image-chat-server tenant new` makes one)"
                )));
            }
        }
        if let Some(audience) = &self.sso_audience
            && (audience.is_empty()
                || audience.len() > 255
                || audience
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(invalid(
                "sso_audience must be the server's public host (1 to 255 characters, no \
                     spaces), e.g. \"chat.example.com\""
                    .into(),
            ));
        }
        let origins = match self.origins.as_slice() {
            [] => return Err(invalid("origins must list at least one page origin".into())),
            [only] if only == "localhost" => OriginPolicy::Localhost,
            list => OriginPolicy::List(
                list.iter()
                    .map(|o| parse_origin(o))
                    .collect::<Result<_, _>>()
                    .map_err(invalid)?,
            ),
        };
        let webhook = match self.webhook {
            None => None,
            Some(entry) => {
                if entry.secret.len() < MIN_SECRET_BYTES {
                    return Err(invalid(format!(
                        "webhook secret must be at least {MIN_SECRET_BYTES} bytes"
                    )));
                }
                let url = WebhookUrl::parse(&entry.url).map_err(invalid)?;
                Some(WebhookTarget {
                    url,
                    secret: entry.secret,
                })
            }
        };
        Ok(Tenant {
            webhook,
            id,
            origins,
            anonymous: self.anonymous,
            secret: self.secret,
            api_key: self.api_key,
            sso_audience: self.sso_audience,
            sso_max_age: self.sso_max_age_secs.map(Duration::from_secs),
            limits: self.limits,
        })
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

    /// Removes a tenant.
    pub fn remove(&mut self, id: &TenantId) {
        self.by_id.remove(id);
    }

    /// Looks a tenant up.
    pub fn get(&self, id: &TenantId) -> Option<Arc<Tenant>> {
        self.by_id.get(id).cloned()
    }

    /// Number of tenants.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Adds (or replaces, by id) the tenants of a TOML document; `origin` names it in errors.
    pub fn merge_toml(&mut self, text: &str, origin: &str) -> Result<(), TenantConfigError> {
        let file: TenantsFile = toml::from_str(text).map_err(|e| TenantConfigError::Parse {
            path: origin.to_owned(),
            line: e
                .span()
                .map(|span| {
                    let before = text.as_bytes().get(..span.start).unwrap_or_default();
                    before.iter().filter(|b| **b == b'\n').count() + 1
                })
                .unwrap_or(0),
            message: e.message().to_owned(),
        })?;
        let mut seen = std::collections::HashSet::new();
        for entry in file.tenant {
            if !seen.insert(entry.id.clone()) {
                return Err(TenantConfigError::Invalid {
                    tenant: entry.id,
                    reason: "defined twice".into(),
                });
            }
            self.insert(entry.into_tenant()?);
        }
        self.refuse_shared_secrets()
    }

    /// Refuses two tenants with the same secret or API key (or one tenant using one value for
    /// both): a payload signed for one would be accepted by the other, and a key meant for the
    /// API would sign users. Each must be the tenant's own.
    fn refuse_shared_secrets(&self) -> Result<(), TenantConfigError> {
        let mut seen: HashMap<&[u8], (&TenantId, &'static str)> = HashMap::new();
        let mut tenants: Vec<&Arc<Tenant>> = self.by_id.values().collect();
        // A stable order, so the error names the same pair every time.
        tenants.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        for tenant in tenants {
            for (what, value) in [("secret", &tenant.secret), ("api_key", &tenant.api_key)] {
                let Some(value) = value else { continue };
                if let Some((first, first_what)) = seen.insert(value.expose(), (&tenant.id, what)) {
                    return Err(TenantConfigError::Invalid {
                        tenant: tenant.id.as_str().to_owned(),
                        reason: format!(
                            "its {what} is the same as the {first_what} of tenant {:?}: every \
                             tenant needs its own secret and API key (`image-chat-server tenant \
                             new` makes them)",
                            first.as_str()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Adds (or replaces, by id) the tenants of a TOML file.
    pub fn merge_file(&mut self, path: &Path) -> Result<(), TenantConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TenantConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        self.merge_toml(&text, &shown)
    }
}

/// The tenants in force, replaced whole when the operator reloads the tenants file (SIGHUP).
///
/// A connection looks its tenant up once, at `hello`, and keeps that [`Tenant`] for its life:
/// a reload changes who may connect from now on (a new origin is allowed, a removed tenant is
/// refused) without touching the connections already open.
#[derive(Debug, Default)]
pub struct LiveTenants(RwLock<Arc<Tenants>>);

impl LiveTenants {
    /// Starts with `tenants`.
    pub fn new(tenants: Tenants) -> Self {
        Self(RwLock::new(Arc::new(tenants)))
    }

    /// A tenant by id, as currently configured.
    pub fn get(&self, id: &TenantId) -> Option<Arc<Tenant>> {
        self.current().get(id)
    }

    /// Every tenant as currently configured.
    pub fn current(&self) -> Arc<Tenants> {
        // The lock only guards an `Arc` swap: a panic cannot leave it half-written.
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `tenants` in force for every lookup from now on.
    pub fn replace(&self, tenants: Tenants) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tenants);
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

    const FILE: &str = r#"
[[tenant]]
id = "acme"
secret = "0123456789abcdef0123456789abcdef"
origins = ["https://ACME.example", "http://localhost:3000"]
anonymous = "read-only"
sso_max_age_secs = 60

[tenant.limits]
ops_per_second = 1.5
max_chats_per_image = 7

[[tenant]]
id = "private"
secret = "fedcba9876543210fedcba9876543210"
origins = ["localhost"]
"#;

    #[test]
    fn file_format() {
        let mut t = Tenants::builtin();
        t.merge_toml(FILE, "test").unwrap();
        assert_eq!(t.len(), 3);
        let acme = t.get(&TenantId::new("acme")).unwrap();
        assert_eq!(acme.anonymous, AnonymousPolicy::ReadOnly);
        assert!(acme.origins.allows(Some("https://acme.example")));
        assert!(!acme.origins.allows(Some("https://evil.example")));
        assert_eq!(acme.sso_max_age, Some(Duration::from_secs(60)));
        assert_eq!(acme.limits.ops_per_second, Some(1.5));
        assert_eq!(acme.limits.max_chats_per_image, Some(7));
        // Secrets never reach Debug output.
        assert!(!format!("{acme:?}").contains("0123456789abcdef"));
        let private = t.get(&TenantId::new("private")).unwrap();
        assert_eq!(private.anonymous, AnonymousPolicy::Deny, "deny by default");
        assert_eq!(private.origins, OriginPolicy::Localhost);
    }

    /// Issue 12 item 7: tenants sharing a secret accepted each other's signed users.
    #[test]
    fn shared_secrets_and_api_keys_are_refused() {
        let tenant = |id: &str, secret: &str, key: &str| {
            format!(
                "[[tenant]]\nid = \"{id}\"\nsecret = \"{secret}\"\napi_key = \"{key}\"\n\
                 origins = [\"https://{id}.example\"]\n"
            )
        };
        let (s1, s2, k1, k2) = (
            "secret-one-secret-one",
            "secret-two-secret-two",
            "key-one-key-one-key-one",
            "key-two-key-two-key-two",
        );
        let ok = tenant("a", s1, k1) + &tenant("b", s2, k2);
        Tenants::default().merge_toml(&ok, "t").unwrap();
        for (bad, why) in [
            (
                tenant("a", s1, k1) + &tenant("b", s1, k2),
                "the same as the secret of tenant \"a\"",
            ),
            (
                tenant("a", s1, k1) + &tenant("b", s2, k1),
                "the same as the api_key",
            ),
            (
                tenant("a", s1, k1) + &tenant("b", s2, s1),
                "the same as the secret",
            ),
            (tenant("a", s1, s1), "the same as the secret"),
        ] {
            let err = Tenants::default()
                .merge_toml(&bad, "t")
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
            assert!(!err.contains(s1) && !err.contains(k1), "no secret in {err}");
        }
        // Across two files too (the second merged into the first).
        let mut two = Tenants::default();
        two.merge_toml(&tenant("a", s1, k1), "one").unwrap();
        assert!(two.merge_toml(&tenant("b", s1, k2), "two").is_err());
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        for (bad, why) in [
            (
                "[[tenant]]\nid = \"a\"\norigins = [\"https://a.example\"]\nsecret = \"short\"",
                "secret",
            ),
            ("[[tenant]]\nid = \"a\"\norigins = []", "origins"),
            (
                "[[tenant]]\nid = \"a\"\norigins = [\"https://a.example/path\"]",
                "origin",
            ),
            (
                "[[tenant]]\nid = \"a\"\norigins = [\"*.a.example\"]",
                "origin",
            ),
            (
                "[[tenant]]\nid = \"a b\"\norigins = [\"https://a.example\"]",
                "format",
            ),
            (
                "[[tenant]]\nid = \"a\"\norigins = [\"https://a.example\"]\nanonymous = \"maybe\"",
                "variant",
            ),
            (
                "[[tenant]]\nid = \"a\"\norigins = [\"https://a.example\"]\nextra = 1",
                "extra",
            ),
            (
                "[[tenant]]\nid = \"a\"\norigins = [\"https://a.example\"]\n[[tenant]]\nid = \"a\"\norigins = [\"https://a.example\"]",
                "twice",
            ),
            ("not toml", "line 1"),
        ] {
            let err = Tenants::default()
                .merge_toml(bad, "t")
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        // A secret in a refused file is not echoed.
        let err = Tenants::default()
            .merge_toml(
                "[[tenant]]\nid = \"a\"\nsecret = \"tiny-secret\"\norigins = [\"x\"]",
                "t",
            )
            .unwrap_err()
            .to_string();
        assert!(!err.contains("tiny-secret"), "{err}");
    }

    #[test]
    fn a_webhook_is_https_with_a_long_enough_secret() {
        let file = |url: &str, secret: &str| {
            format!(
                "[[tenant]]\nid = \"a\"\norigins = [\"https://a.example\"]\n\
                 [tenant.webhook]\nurl = \"{url}\"\nsecret = \"{secret}\"\n"
            )
        };
        let good = "0123456789abcdef0123";
        let mut tenants = Tenants::default();
        tenants
            .merge_toml(&file("https://hooks.a.example/x", good), "t")
            .unwrap();
        let hook = tenants
            .get(&TenantId::new("a"))
            .unwrap()
            .webhook
            .clone()
            .unwrap();
        assert_eq!(
            (hook.url.host.as_str(), hook.url.path.as_str()),
            ("hooks.a.example", "/x")
        );
        for (url, secret, why) in [
            ("http://hooks.a.example/x", good, "https://"),
            ("https://u:p@hooks.a.example/x", good, "user name"),
            ("https://hooks.a.example/x#f", good, "fragment"),
            ("https://hooks.a.example/x", "short-secret", "at least"),
        ] {
            let err = Tenants::default()
                .merge_toml(&file(url, secret), "t")
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains(secret), "{err}");
        }
    }
}
