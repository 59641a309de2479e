//! A tenant's webhook endpoint as configured (`[tenant.webhook]` in the tenants file): its URL,
//! checked (https, or http to a loopback host only), and the secret that signs deliveries.

use serde::Deserialize;

use crate::secret::Secret;

/// Where and how a tenant's deliveries go.
#[derive(Clone, Debug)]
pub struct WebhookTarget {
    /// The endpoint.
    pub url: WebhookUrl,
    /// Signs each delivery (HMAC-SHA256, see [`super::sign`]).
    pub secret: Secret,
}

/// `[tenant.webhook]` in the tenants file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookEntry {
    pub(crate) url: String,
    pub(crate) secret: Secret,
}

/// A parsed endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookUrl {
    /// `https` (else plain `http`, loopback only).
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (443 / 80 when the URL names none).
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl WebhookUrl {
    /// Parses and checks `text`: `https://host[:port][/path][?query]`, or `http://` with a
    /// loopback host (`localhost`, `127.0.0.0/8`, `[::1]`). No user info, no fragment, no
    /// spaces or control characters, at most 2048 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > 2048 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("webhook url must be at most 2048 characters without spaces".into());
        }
        let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("webhook url must start with https://".into());
        };
        if rest.contains('#') {
            return Err("webhook url must not have a fragment (#…)".into());
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err("webhook url must not carry a user name or password".into());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (inner, after) = v6
                    .split_once(']')
                    .ok_or("webhook url has an unclosed [ in its host")?;
                (inner.to_owned(), after)
            }
            None => match authority.rfind(':') {
                Some(i) => (authority[..i].to_owned(), &authority[i..]),
                None => (authority.to_owned(), ""),
            },
        };
        let port = match port {
            "" => {
                if tls {
                    443
                } else {
                    80
                }
            }
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or("webhook url has an invalid port")?,
        };
        let host = host.to_ascii_lowercase();
        let valid_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if !valid_host {
            return Err("webhook url has an invalid host".into());
        }
        if !tls && !is_loopback(&host) {
            return Err(
                "webhook url must be https:// (plain http:// only to localhost, for development)"
                    .into(),
            );
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self {
            tls,
            host,
            port,
            path,
        })
    }

    /// The `Host` header.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => host,
            (_, port) => format!("{host}:{port}"),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_on_loopback_only() {
        let url = WebhookUrl::parse("https://Hooks.Acme.example/image-chat?x=1").expect("valid");
        assert_eq!(
            url,
            WebhookUrl {
                tls: true,
                host: "hooks.acme.example".into(),
                port: 443,
                path: "/image-chat?x=1".into()
            }
        );
        assert_eq!(url.host_header(), "hooks.acme.example");
        let url = WebhookUrl::parse("http://127.0.0.1:8123").expect("loopback");
        assert_eq!((url.port, url.path.as_str()), (8123, "/"));
        assert_eq!(url.host_header(), "127.0.0.1:8123");
        let url = WebhookUrl::parse("http://[::1]:9/h").expect("loopback v6");
        assert_eq!(
            (url.host.as_str(), url.host_header()),
            ("::1", "[::1]:9".into())
        );
        assert!(WebhookUrl::parse("http://localhost/h").is_ok());
        for bad in [
            "http://hooks.acme.example/h",
            "http://10.0.0.1/h",
            "ftp://x/",
            "https://",
            "https://user:pw@x.example/",
            "https://x.example:0/",
            "https://x.example:99999/",
            "https://x.example/a#b",
            "https://x .example/",
            "https://[::1/",
            "https://x_y.example/",
            "//x.example/",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
