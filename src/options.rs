//! Mount options: what the page asked for ([`RawOptions`], from `data-*` attributes and the JS
//! options object) and what the widget runs with ([`Options`], every default applied and every
//! value checked). Pure, so the rules are tested natively.
//!
//! Precedence, lowest first: the loader script tag's `data-*` attributes, the image's `data-*`
//! attributes, the options object passed to `ImageChat.mount`.

use image_chat_protocol::limits::validate_name;
use image_chat_protocol::{Auth, ImageId, TenantId};
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::i18n::Locale;

/// Tenant used when none is given: the server's built-in demo tenant.
pub const DEFAULT_TENANT: &str = "demo";
/// Default marker diameter, in CSS pixels.
pub const DEFAULT_MARKER_SIZE: f64 = 28.0;
/// Smallest and largest accepted marker diameters: below 16 px a marker is hard to hit (and
/// under the 24 px WCAG target size once borders are counted), above 96 px it hides the image.
pub const MARKER_SIZE_RANGE: (f64, f64) = (16.0, 96.0);

/// A mount option the widget cannot run with. Thrown to JavaScript as an `Error` by `mount`.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OptionsError {
    /// `server` is not a ws(s)/http(s) URL or an absolute path, or the page has no host to
    /// default to (e.g. opened from `file:`).
    #[error(
        "`server` must be a ws://, wss://, http:// or https:// URL or a path starting with `/` (got {0:?})"
    )]
    InvalidServer(String),
    /// `tenant` is not 1–64 of `[A-Za-z0-9_-]`.
    #[error("`tenant` must be 1 to 64 letters, digits, `_` or `-` (got {0:?})")]
    InvalidTenant(String),
    /// `imageId` is empty, too long or has control characters.
    #[error("`imageId` must be 1 to 512 bytes without control characters")]
    InvalidImageId,
    /// `name` is not a valid display name.
    #[error("`name` must be 1 to 64 characters without control characters")]
    InvalidName,
    /// `theme` is not light, dark or auto.
    #[error("`theme` must be \"light\", \"dark\" or \"auto\" (got {0:?})")]
    InvalidTheme(String),
    /// `markerSize` is not a number of pixels in range.
    #[error("`markerSize` must be a number of pixels from 16 to 96 (got {0})")]
    InvalidMarkerSize(String),
    /// `readOnly` is not a boolean.
    #[error("`readOnly` must be true or false (got {0})")]
    InvalidReadOnly(String),
    /// `auth` (or `data-auth`) is not a valid auth object.
    #[error("`auth` is not valid: {0}")]
    InvalidAuth(String),
    /// The options value is not an object.
    #[error("options must be an object: {0}")]
    NotAnObject(String),
}

/// Options as given, before defaults. Loosely typed where HTML attributes are strings
/// (`readOnly`, `markerSize`), strictly checked by [`RawOptions::resolve`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawOptions {
    /// WebSocket endpoint (`wss://host/ws`), server base URL (`https://host`) or path (`/ws`).
    pub server: Option<String>,
    /// Tenant id.
    pub tenant: Option<String>,
    /// Image id; derived from the page and the image when absent.
    pub image_id: Option<String>,
    /// UI language tag (`fr`, `pt-BR`…); `navigator.languages` when absent.
    pub locale: Option<String>,
    /// Show discussions without allowing changes.
    pub read_only: Option<Value>,
    /// Marker diameter in CSS pixels.
    pub marker_size: Option<Value>,
    /// `light`, `dark` or `auto`.
    pub theme: Option<String>,
    /// Explicit auth (e.g. Secure SSO), passed through to `hello` unchanged.
    pub auth: Option<Value>,
    /// Display name of an anonymous person.
    pub name: Option<String>,
}

/// Colour theme of the widget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    /// Light colours.
    Light,
    /// Dark colours.
    Dark,
    /// Follow `prefers-color-scheme`.
    Auto,
}

impl Theme {
    /// The value of the overlay's `data-theme` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::Auto => "auto",
        }
    }
}

/// The page facts defaults are derived from (from `window.location`, `navigator` and the image).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PageEnv {
    /// `location.protocol`, e.g. `https:`.
    pub protocol: String,
    /// `location.host` (host and port); empty for `file:` pages.
    pub host: String,
    /// `location.origin`.
    pub origin: String,
    /// `location.pathname`.
    pub path: String,
    /// `navigator.languages` (or `[navigator.language]`).
    pub languages: Vec<String>,
    /// The image's absolute `src`.
    pub image_src: String,
}

/// Options the widget runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// `ws://` or `wss://` URL of the server's WebSocket endpoint.
    pub server_url: String,
    /// Tenant id (checked).
    pub tenant: TenantId,
    /// Image id (checked).
    pub image_id: ImageId,
    /// UI language.
    pub locale: Locale,
    /// No placing, replying, editing or deleting.
    pub read_only: bool,
    /// Marker diameter in CSS pixels.
    pub marker_size: f64,
    /// Colour theme.
    pub theme: Theme,
    /// Explicit auth; `None` means anonymous (with [`Options::name`] and a stored token).
    pub auth: Option<Auth>,
    /// Anonymous display name (defaults to the translated "Guest").
    pub name: String,
}

impl RawOptions {
    /// Reads the widget's `data-*` attributes through `get` (which is given the attribute name,
    /// e.g. `data-tenant`). An invalid `data-auth` JSON is kept as a string so that
    /// [`RawOptions::resolve`] reports it.
    pub fn from_attributes(get: impl Fn(&str) -> Option<String>) -> RawOptions {
        let non_empty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        RawOptions {
            server: non_empty("data-server"),
            tenant: non_empty("data-tenant"),
            // `<img data-image-chat="product-42">` names the image directly.
            image_id: non_empty("data-image-id").or_else(|| non_empty("data-image-chat")),
            locale: non_empty("data-locale"),
            // A bare `data-read-only` attribute (empty value) means true, as in HTML.
            read_only: get("data-read-only").map(|v| {
                if v.trim().is_empty() {
                    Value::Bool(true)
                } else {
                    Value::String(v)
                }
            }),
            marker_size: non_empty("data-marker-size").map(Value::String),
            theme: non_empty("data-theme"),
            auth: non_empty("data-auth")
                .map(|v| serde_json::from_str(&v).unwrap_or(Value::String(v))),
            name: non_empty("data-name"),
        }
    }

    /// Parses the JSON form of a JS options object (`JSON.stringify(options)`; `undefined` and
    /// `null` mean no options).
    pub fn from_json(json: &str) -> Result<RawOptions, OptionsError> {
        let json = json.trim();
        if json.is_empty() || json == "null" || json == "undefined" {
            return Ok(RawOptions::default());
        }
        serde_json::from_str(json).map_err(|e| OptionsError::NotAnObject(e.to_string()))
    }

    /// `self` with every option that `over` sets replaced by `over`'s value.
    pub fn overridden_by(self, over: RawOptions) -> RawOptions {
        RawOptions {
            server: over.server.or(self.server),
            tenant: over.tenant.or(self.tenant),
            image_id: over.image_id.or(self.image_id),
            locale: over.locale.or(self.locale),
            read_only: over.read_only.or(self.read_only),
            marker_size: over.marker_size.or(self.marker_size),
            theme: over.theme.or(self.theme),
            auth: over.auth.or(self.auth),
            name: over.name.or(self.name),
        }
    }

    /// Applies defaults and checks every value.
    pub fn resolve(&self, env: &PageEnv) -> Result<Options, OptionsError> {
        let locale = Locale::negotiate(
            self.locale
                .iter()
                .map(String::as_str)
                .chain(env.languages.iter().map(String::as_str)),
        );
        let server_url = server_url(self.server.as_deref(), env)?;
        let tenant_str = self.tenant.as_deref().unwrap_or(DEFAULT_TENANT).trim();
        let tenant = TenantId::new(tenant_str);
        tenant
            .validate()
            .map_err(|_| OptionsError::InvalidTenant(tenant_str.to_owned()))?;
        let image_id = match &self.image_id {
            Some(id) => ImageId::new(id.as_str()),
            None => derive_image_id(&env.origin, &env.path, &env.image_src),
        };
        image_id
            .validate()
            .map_err(|_| OptionsError::InvalidImageId)?;
        let read_only = match &self.read_only {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" | "true" | "1" | "yes" | "read-only" | "readonly" => true,
                "false" | "0" | "no" => false,
                _ => return Err(OptionsError::InvalidReadOnly(s.clone())),
            },
            Some(other) => return Err(OptionsError::InvalidReadOnly(other.to_string())),
        };
        let marker_size = match &self.marker_size {
            None | Some(Value::Null) => DEFAULT_MARKER_SIZE,
            Some(v) => {
                let n = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().trim_end_matches("px").trim().parse::<f64>().ok(),
                    _ => None,
                };
                match n {
                    Some(n) if (MARKER_SIZE_RANGE.0..=MARKER_SIZE_RANGE.1).contains(&n) => n,
                    _ => return Err(OptionsError::InvalidMarkerSize(v.to_string())),
                }
            }
        };
        let theme = match self.theme.as_deref().map(str::trim) {
            None | Some("auto") => Theme::Auto,
            Some("light") => Theme::Light,
            Some("dark") => Theme::Dark,
            Some(other) => return Err(OptionsError::InvalidTheme(other.to_owned())),
        };
        let auth = match &self.auth {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<Auth>(v.clone())
                    .map_err(|e| OptionsError::InvalidAuth(e.to_string()))?,
            ),
        };
        let name = match &self.name {
            Some(n) => {
                validate_name(n).map_err(|_| OptionsError::InvalidName)?;
                n.trim().to_owned()
            }
            None => locale.strings().guest.to_owned(),
        };
        Ok(Options {
            server_url,
            tenant,
            image_id,
            locale,
            read_only,
            marker_size,
            theme,
            auth,
            name,
        })
    }
}

/// The WebSocket URL for the `server` option (see [`RawOptions::server`]): `ws(s)://` URLs are
/// used as given; `http(s)://` URLs switch scheme and get `/ws` when they have no path; a path
/// is taken on the page's host; no option means `/ws` on the page's host, with `wss` on https
/// pages.
pub fn server_url(option: Option<&str>, env: &PageEnv) -> Result<String, OptionsError> {
    let secure_page = env.protocol == "https:";
    let page_base = || {
        if env.host.is_empty() {
            None
        } else {
            Some(format!(
                "{}://{}",
                if secure_page { "wss" } else { "ws" },
                env.host
            ))
        }
    };
    let invalid = || OptionsError::InvalidServer(option.unwrap_or_default().to_owned());
    let Some(value) = option.map(str::trim) else {
        return page_base().map(|b| format!("{b}/ws")).ok_or_else(invalid);
    };
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    if let Some(path) = value.strip_prefix('/').filter(|_| !value.starts_with("//")) {
        return page_base()
            .map(|b| format!("{b}/{path}"))
            .ok_or_else(invalid);
    }
    let (scheme, rest) = value.split_once("://").ok_or_else(invalid)?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(invalid()),
    };
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(invalid());
    }
    let is_http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let path = if is_http && (path.is_empty() || path == "/") {
        "/ws"
    } else {
        path
    };
    Ok(format!("{ws_scheme}://{host}{path}"))
}

/// The default image id: the page (origin and path, so query strings and fragments do not split
/// a discussion) and the image's absolute `src`. Ids over the protocol's 512-byte limit (long
/// `data:` URLs, signed CDN links) or with control characters keep a readable prefix and end in
/// a 64-bit FNV-1a hash of the whole, so they stay stable across reloads.
pub fn derive_image_id(origin: &str, path: &str, src: &str) -> ImageId {
    const MAX: usize = image_chat_protocol::limits::MAX_IMAGE_ID_BYTES;
    let full = format!("{origin}{path}|{src}");
    if full.len() <= MAX && !full.chars().any(char::is_control) {
        return ImageId::new(full);
    }
    let hash = fnv1a64(full.as_bytes());
    let suffix = format!("#{hash:016x}");
    let mut prefix: String = full.chars().filter(|c| !c.is_control()).collect();
    let mut cut = MAX.saturating_sub(suffix.len()).min(prefix.len());
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    prefix.truncate(cut);
    ImageId::new(prefix + &suffix)
}

/// 64-bit FNV-1a: tiny, stable, good enough to tell image URLs apart (not a security measure).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The `localStorage` key holding the anonymous identity token for one server and tenant, so a
/// person keeps authorship of their comments after a reload.
pub fn token_storage_key(server_url: &str, tenant: &TenantId) -> String {
    format!("image-chat:token:{server_url}:{tenant}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> PageEnv {
        PageEnv {
            protocol: "https:".into(),
            host: "shop.example:8443".into(),
            origin: "https://shop.example:8443".into(),
            path: "/products/42".into(),
            languages: vec!["de-DE".into(), "pt-BR".into()],
            image_src: "https://cdn.example/p/42.jpg".into(),
        }
    }

    #[test]
    fn defaults() {
        let o = RawOptions::default().resolve(&env()).unwrap();
        assert_eq!(o.server_url, "wss://shop.example:8443/ws");
        assert_eq!(o.tenant.as_str(), "demo");
        assert_eq!(
            o.image_id.as_str(),
            "https://shop.example:8443/products/42|https://cdn.example/p/42.jpg"
        );
        assert_eq!(o.locale, Locale::Pt);
        assert_eq!(o.name, "Convidado");
        assert!(!o.read_only);
        assert_eq!(o.marker_size, DEFAULT_MARKER_SIZE);
        assert_eq!(o.theme, Theme::Auto);
        assert_eq!(o.auth, None);
    }

    #[test]
    fn server_urls() {
        let e = env();
        let s = |v: &str| server_url(Some(v), &e);
        assert_eq!(s("wss://chat.example/ws").unwrap(), "wss://chat.example/ws");
        assert_eq!(
            s("ws://127.0.0.1:8080/ws").unwrap(),
            "ws://127.0.0.1:8080/ws"
        );
        assert_eq!(s("https://chat.example").unwrap(), "wss://chat.example/ws");
        assert_eq!(
            s("http://127.0.0.1:8080/").unwrap(),
            "ws://127.0.0.1:8080/ws"
        );
        assert_eq!(
            s("https://chat.example/custom").unwrap(),
            "wss://chat.example/custom"
        );
        assert_eq!(s("/chat/ws").unwrap(), "wss://shop.example:8443/chat/ws");
        for bad in [
            "ftp://x",
            "chat.example",
            "//chat.example",
            "wss://",
            "ws://a b",
        ] {
            assert!(s(bad).is_err(), "{bad}");
        }
        let plain = PageEnv {
            protocol: "http:".into(),
            host: "localhost:8080".into(),
            ..PageEnv::default()
        };
        assert_eq!(server_url(None, &plain).unwrap(), "ws://localhost:8080/ws");
        let file = PageEnv {
            protocol: "file:".into(),
            ..PageEnv::default()
        };
        assert!(server_url(None, &file).is_err());
        assert!(server_url(Some("/ws"), &file).is_err());
    }

    #[test]
    fn attributes_then_object_precedence() {
        let script = RawOptions::from_attributes(|name| match name {
            "data-tenant" => Some("acme".into()),
            "data-server" => Some("https://chat.acme.test".into()),
            "data-locale" => Some("fr".into()),
            _ => None,
        });
        let img = RawOptions::from_attributes(|name| match name {
            "data-image-chat" => Some("hero".into()),
            "data-read-only" => Some(String::new()),
            "data-marker-size" => Some("32px".into()),
            "data-theme" => Some("dark".into()),
            _ => None,
        });
        let js =
            RawOptions::from_json(r#"{"locale":"ru","name":"  Ada ","onEvent":null}"#).unwrap();
        let o = script
            .overridden_by(img)
            .overridden_by(js)
            .resolve(&env())
            .unwrap();
        assert_eq!(o.server_url, "wss://chat.acme.test/ws");
        assert_eq!(o.tenant.as_str(), "acme");
        assert_eq!(o.image_id.as_str(), "hero");
        assert_eq!(o.locale, Locale::Ru);
        assert!(o.read_only);
        assert_eq!(o.marker_size, 32.0);
        assert_eq!(o.theme, Theme::Dark);
        assert_eq!(o.name, "Ada");
    }

    #[test]
    fn invalid_values_are_reported() {
        let e = env();
        let r = |json: &str| RawOptions::from_json(json).unwrap().resolve(&e);
        assert!(matches!(
            r(r#"{"tenant":"a b"}"#),
            Err(OptionsError::InvalidTenant(_))
        ));
        assert!(matches!(
            r(r#"{"imageId":""}"#),
            Err(OptionsError::InvalidImageId)
        ));
        assert!(matches!(
            r(r#"{"theme":"pink"}"#),
            Err(OptionsError::InvalidTheme(_))
        ));
        assert!(matches!(
            r(r#"{"markerSize":4}"#),
            Err(OptionsError::InvalidMarkerSize(_))
        ));
        assert!(matches!(
            r(r#"{"markerSize":"big"}"#),
            Err(OptionsError::InvalidMarkerSize(_))
        ));
        assert!(matches!(
            r(r#"{"readOnly":"maybe"}"#),
            Err(OptionsError::InvalidReadOnly(_))
        ));
        assert!(matches!(
            r(r#"{"name":"   "}"#),
            Err(OptionsError::InvalidName)
        ));
        assert!(matches!(
            r(r#"{"auth":{"type":"magic"}}"#),
            Err(OptionsError::InvalidAuth(_))
        ));
        assert!(matches!(
            RawOptions::from_json("[1]"),
            Err(OptionsError::NotAnObject(_))
        ));
        assert_eq!(
            RawOptions::from_json("undefined").unwrap(),
            RawOptions::default()
        );
        let bad_attr = RawOptions::from_attributes(|n| (n == "data-auth").then(|| "{oops".into()));
        assert!(matches!(
            bad_attr.resolve(&e),
            Err(OptionsError::InvalidAuth(_))
        ));
    }

    #[test]
    fn auth_passes_through() {
        let o = RawOptions::from_json(
            r#"{"auth":{"type":"sso","userData":"eyJ9","timestamp":1700000000000,"hash":"ab"}}"#,
        )
        .unwrap()
        .resolve(&env())
        .unwrap();
        assert_eq!(
            o.auth,
            Some(Auth::Sso {
                user_data: "eyJ9".into(),
                timestamp: 1_700_000_000_000,
                hash: "ab".into()
            })
        );
        assert!(
            RawOptions::from_json(r#"{"readOnly":true,"markerSize":20}"#)
                .unwrap()
                .resolve(&env())
                .unwrap()
                .read_only
        );
    }

    #[test]
    fn long_image_ids_are_hashed_stably() {
        let src = format!("data:image/png;base64,{}", "A".repeat(5000));
        let a = derive_image_id("http://localhost", "/", &src);
        let b = derive_image_id("http://localhost", "/", &src);
        let c = derive_image_id("http://localhost", "/", &format!("{src}B"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.validate().is_ok());
        assert!(a.as_str().len() <= 512);
        assert!(a.as_str().starts_with("http://localhost/|data:image/png"));
        let ctl = derive_image_id("http://x", "/", "a\nb");
        assert!(ctl.validate().is_ok());
        // Multi-byte characters are never split.
        let wide = derive_image_id("http://x", "/", &"é".repeat(600));
        assert!(wide.validate().is_ok());
    }
}
