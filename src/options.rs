//! Mount options: what the page asked for ([`RawOptions`], from `data-*` attributes and the JS
//! options object) and what the widget runs with ([`Options`], every default applied and every
//! value checked). Pure, so the rules are tested natively.
//!
//! Precedence, lowest first: the loader script tag's `data-*` attributes, the image's `data-*`
//! attributes, the options object passed to `ImageChat.mount`.

use image_chat_protocol::limits::validate_name;
use image_chat_protocol::number;
use image_chat_protocol::{Auth, ImageId, TenantId};

use crate::i18n::{Locale, decimal};

/// Tenant used when none is given: the server's built-in demo tenant.
pub const DEFAULT_TENANT: &str = "demo";
/// Default marker diameter, in CSS pixels.
pub const DEFAULT_MARKER_SIZE: f64 = 28.0;
/// Smallest and largest accepted marker diameters: below 16 px a marker is hard to hit (and
/// under the 24 px WCAG target size once borders are counted), above 96 px it hides the image.
pub const MARKER_SIZE_RANGE: (f64, f64) = (16.0, 96.0);

/// A mount option the widget cannot run with. Thrown to JavaScript as an `Error` by `mount`.
/// The text is built by [`OptionsError::message`] (no `core::fmt` in the bundle).
#[derive(Debug, Clone, PartialEq)]
pub enum OptionsError {
    /// `server` is not a ws(s)/http(s) URL or an absolute path, or the page has no host to
    /// default to (e.g. opened from `file:`).
    InvalidServer(String),
    /// `tenant` is not 1–64 of `[A-Za-z0-9_-]`.
    InvalidTenant(String),
    /// `imageId` is empty, too long or has control characters.
    InvalidImageId,
    /// `name` is not a valid display name.
    InvalidName,
    /// `theme` is not light, dark or auto.
    InvalidTheme(String),
    /// `markerSize` is not a number of pixels in range.
    InvalidMarkerSize(String),
    /// `readOnly` is not a boolean.
    InvalidReadOnly(String),
    /// `auth` (or `data-auth`) is not a valid auth object.
    InvalidAuth(String),
    /// `update()` was asked to change an option that names another conversation (`server`,
    /// `tenant`, `imageId`) or the markers' size: those need a new `mount`.
    NeedsRemount(&'static str),
    /// The options value is not an object.
    NotAnObject,
    /// An option has the wrong JavaScript type.
    WrongType {
        /// The option's name.
        option: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

impl OptionsError {
    /// The message a person (the site's developer) reads.
    pub fn message(&self) -> String {
        match self {
            OptionsError::InvalidServer(got) => [
                "`server` must be a ws://, wss://, http:// or https:// URL or a path starting with `/` (got \"",
                got,
                "\")",
            ]
            .concat(),
            OptionsError::InvalidTenant(got) => [
                "`tenant` must be 1 to 64 letters, digits, `_` or `-` (got \"",
                got,
                "\")",
            ]
            .concat(),
            OptionsError::InvalidImageId => {
                "`imageId` must be 1 to 512 bytes without control characters".to_owned()
            }
            OptionsError::InvalidName => {
                "`name` must be 1 to 64 characters without control characters".to_owned()
            }
            OptionsError::InvalidTheme(got) => [
                "`theme` must be \"light\", \"dark\" or \"auto\" (got \"",
                got,
                "\")",
            ]
            .concat(),
            OptionsError::InvalidMarkerSize(got) => [
                "`markerSize` must be a number of pixels from 16 to 96 (got ",
                got,
                ")",
            ]
            .concat(),
            OptionsError::InvalidReadOnly(got) => {
                ["`readOnly` must be true or false (got ", got, ")"].concat()
            }
            OptionsError::InvalidAuth(why) => ["`auth` is not valid: ", why].concat(),
            OptionsError::NeedsRemount(option) => [
                "`",
                option,
                "` cannot change on a mounted widget: destroy() it and mount again",
            ]
            .concat(),
            OptionsError::NotAnObject => "options must be an object".to_owned(),
            OptionsError::WrongType { option, expected } => {
                ["`", option, "` must be a ", expected].concat()
            }
        }
    }
}

impl OptionsError {
    /// The option at fault, by its JavaScript name (`data-*` attributes use the kebab-case
    /// form: `markerSize` is `data-marker-size`), shown to people in place of the widget.
    pub fn option(&self) -> &'static str {
        match self {
            OptionsError::InvalidServer(_) => "server",
            OptionsError::InvalidTenant(_) => "tenant",
            OptionsError::InvalidImageId => "imageId",
            OptionsError::InvalidName => "name",
            OptionsError::InvalidTheme(_) => "theme",
            OptionsError::InvalidMarkerSize(_) => "markerSize",
            OptionsError::InvalidReadOnly(_) => "readOnly",
            OptionsError::InvalidAuth(_) => "auth",
            OptionsError::NotAnObject => "options",
            OptionsError::NeedsRemount(option) | OptionsError::WrongType { option, .. } => option,
        }
    }
}

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for OptionsError {}

/// An option value as JavaScript or an HTML attribute gave it, before it is checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Loose {
    /// A JS boolean.
    Bool(bool),
    /// A JS number.
    Number(f64),
    /// A string (every HTML attribute is one).
    Text(String),
    /// Anything else, described for the error message.
    Other(String),
}

impl Loose {
    /// The value as an error message shows it: `true`, `12`, `"abc"`, or its JS type.
    pub fn describe(&self) -> String {
        match self {
            Loose::Bool(b) => (if *b { "true" } else { "false" }).to_owned(),
            // Whole numbers are what anyone passes; no float formatting code in the bundle.
            Loose::Number(n) => {
                let whole = *n as i64;
                let sign = if whole < 0 { "-" } else { "" };
                [sign, &decimal(whole.unsigned_abs())].concat()
            }
            Loose::Text(s) => ["\"", s, "\""].concat(),
            Loose::Other(s) => s.clone(),
        }
    }
}

/// The fields of an `auth` object, as given (see `Auth` in the protocol crate).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthFields {
    /// `type`: `"sso"` or `"anonymous"`.
    pub kind: Option<String>,
    /// `name` (anonymous).
    pub name: Option<String>,
    /// `token` (anonymous).
    pub token: Option<String>,
    /// `userData` (sso).
    pub user_data: Option<String>,
    /// `timestamp` (sso), milliseconds since the Unix epoch.
    pub timestamp: Option<f64>,
    /// `hash` (sso).
    pub hash: Option<String>,
}

impl AuthFields {
    /// The protocol's `Auth`, if the fields make one.
    pub fn to_auth(&self) -> Result<Auth, OptionsError> {
        let missing = |what: &str| OptionsError::InvalidAuth(["missing `", what, "`"].concat());
        match self.kind.as_deref() {
            Some("sso") => {
                let timestamp = self
                    .timestamp
                    .filter(|t| t.is_finite() && *t >= 0.0)
                    .ok_or_else(|| missing("timestamp"))?;
                Ok(Auth::Sso {
                    user_data: self.user_data.clone().ok_or_else(|| missing("userData"))?,
                    timestamp: timestamp as u64,
                    hash: self.hash.clone().ok_or_else(|| missing("hash"))?,
                })
            }
            Some("anonymous") => Ok(Auth::Anonymous {
                name: self.name.clone().ok_or_else(|| missing("name"))?,
                token: self.token.clone(),
            }),
            Some(other) => Err(OptionsError::InvalidAuth(
                [
                    "unknown type \"",
                    other,
                    "\" (expected \"sso\" or \"anonymous\")",
                ]
                .concat(),
            )),
            None => Err(missing("type")),
        }
    }
}

/// Options as given, before defaults: from `data-*` attributes (strings) or a JS options
/// object (read field by field, so no JSON round trip). Checked by [`RawOptions::resolve`].
#[derive(Clone, Debug, Default, PartialEq)]
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
    pub read_only: Option<Loose>,
    /// Marker diameter in CSS pixels.
    pub marker_size: Option<Loose>,
    /// `light`, `dark` or `auto`.
    pub theme: Option<String>,
    /// Explicit auth (e.g. Secure SSO), passed through to `hello`; `Err` holds why the given
    /// value could not be read (e.g. a `data-auth` that is not JSON).
    pub auth: Option<Result<AuthFields, String>>,
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
    /// e.g. `data-tenant`). `data-auth` (JSON) is read by the caller, which can parse JSON.
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
                    Loose::Bool(true)
                } else {
                    Loose::Text(v)
                }
            }),
            marker_size: non_empty("data-marker-size").map(Loose::Text),
            theme: non_empty("data-theme"),
            auth: None,
            name: non_empty("data-name"),
        }
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

    /// The UI language wanted: the `locale` option, else the browser's languages, else
    /// English. Its table may not be loaded yet (see [`RawOptions::locale`]).
    pub fn wanted_locale(&self, env: &PageEnv) -> Locale {
        Locale::negotiate(
            self.locale
                .iter()
                .map(String::as_str)
                .chain(env.languages.iter().map(String::as_str)),
        )
    }

    /// The UI language shown now: the wanted one once its table is loaded, English until
    /// then. Never fails, so even a widget whose other options are invalid speaks the page's
    /// language (when it is loaded).
    pub fn locale(&self, env: &PageEnv) -> Locale {
        self.wanted_locale(env).shown()
    }

    /// The options after `instance.update(change)`: `change` overrides what it sets, checked
    /// like at mount. Only `locale`, `theme`, `readOnly`, `auth` and `name` may change; a
    /// change of `server`, `tenant`, `imageId` or `markerSize` is refused
    /// ([`OptionsError::NeedsRemount`]), as is an invalid value (nothing changes then).
    pub fn updated(
        &self,
        change: RawOptions,
        env: &PageEnv,
    ) -> Result<(RawOptions, Options), OptionsError> {
        for (option, set) in [
            ("server", change.server.is_some()),
            ("tenant", change.tenant.is_some()),
            ("imageId", change.image_id.is_some()),
            ("markerSize", change.marker_size.is_some()),
        ] {
            if set {
                return Err(OptionsError::NeedsRemount(option));
            }
        }
        let raw = self.clone().overridden_by(change);
        let opts = raw.resolve(env)?;
        Ok((raw, opts))
    }

    /// One widget's options from its three layers, lowest precedence first: `defaults` (the
    /// loader's script tag), `attrs` (the image's own `data-*` attributes) and `js` (the options
    /// object). Returns them merged, and whether credentials were dropped.
    ///
    /// An image's attributes are page content, often HTML written by the site's users (HTML
    /// sanitizers keep `data-*` attributes). They may pick a server, but credentials they did
    /// not bring never follow it: when the image's `data-server` decides the server and the
    /// `auth` comes from another layer, the auth is dropped (the widget connects anonymously)
    /// unless the image's server resolves to the same URL as the one the other layers name.
    pub fn layered(
        defaults: RawOptions,
        attrs: RawOptions,
        js: RawOptions,
        env: &PageEnv,
    ) -> (RawOptions, bool) {
        let image_picks_server = attrs.server.is_some() && js.server.is_none();
        let auth_from_elsewhere =
            js.auth.is_some() || (attrs.auth.is_none() && defaults.auth.is_some());
        let moved = image_picks_server && auth_from_elsewhere && {
            // Unresolvable on either side counts as different: drop rather than guess.
            let url = |server: Option<&str>| server_url(server, env).ok();
            let chosen = url(attrs.server.as_deref());
            chosen.is_none() || chosen != url(defaults.server.as_deref())
        };
        let mut merged = defaults.overridden_by(attrs).overridden_by(js);
        if moved {
            merged.auth = None;
        }
        (merged, moved)
    }

    /// Applies defaults and checks every value.
    pub fn resolve(&self, env: &PageEnv) -> Result<Options, OptionsError> {
        let locale = self.locale(env);
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
            None => false,
            Some(Loose::Bool(b)) => *b,
            Some(Loose::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" | "true" | "1" | "yes" | "read-only" | "readonly" => true,
                "false" | "0" | "no" => false,
                _ => return Err(OptionsError::InvalidReadOnly(s.clone())),
            },
            Some(other) => return Err(OptionsError::InvalidReadOnly(other.describe())),
        };
        let marker_size = match &self.marker_size {
            None => DEFAULT_MARKER_SIZE,
            Some(v) => {
                let n = match v {
                    Loose::Number(n) => Some(*n),
                    // Core's float parser would link its tables for this one field, and a
                    // `&str` pattern to `trim_end_matches` core's two-way substring searcher.
                    Loose::Text(s) => {
                        let s = s.trim();
                        number::parse(s.strip_suffix("px").unwrap_or(s).trim()).map(|d| d.value)
                    }
                    _ => None,
                };
                match n {
                    Some(n) if (MARKER_SIZE_RANGE.0..=MARKER_SIZE_RANGE.1).contains(&n) => n,
                    _ => return Err(OptionsError::InvalidMarkerSize(v.describe())),
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
            None => None,
            Some(Ok(fields)) => Some(fields.to_auth()?),
            Some(Err(why)) => return Err(OptionsError::InvalidAuth(why.clone())),
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
            Some([if secure_page { "wss" } else { "ws" }, "://", &env.host].concat())
        }
    };
    let invalid = || OptionsError::InvalidServer(option.unwrap_or_default().to_owned());
    let Some(value) = option.map(str::trim) else {
        return page_base().map(|b| b + "/ws").ok_or_else(invalid);
    };
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    if let Some(path) = value.strip_prefix('/').filter(|_| !value.starts_with("//")) {
        return page_base()
            .map(|b| [&b, "/", path].concat())
            .ok_or_else(invalid);
    }
    // A byte-window scan: a `&str` pattern (`split_once("://")`) links core's two-way
    // substring searcher (~1.2 KB of wasm) for this one call.
    let at = value
        .as_bytes()
        .windows(3)
        .position(|w| w == b"://")
        .ok_or_else(invalid)?;
    let (scheme, rest) = (&value[..at], &value[at + 3..]);
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(invalid()),
    };
    // A byte scan: `str::find(char)` would link memchr for this one call.
    let (host, path) = match rest.bytes().position(|b| b == b'/') {
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
    Ok([ws_scheme, "://", host, path].concat())
}

/// The default image id: the page (origin and path, so query strings and fragments do not split
/// a discussion) and the image's absolute `src`. Ids over the protocol's 512-byte limit (long
/// `data:` URLs, signed CDN links) or with control characters keep a readable prefix and end in
/// a 64-bit FNV-1a hash of the whole, so they stay stable across reloads.
pub fn derive_image_id(origin: &str, path: &str, src: &str) -> ImageId {
    ImageId::new(bounded_id([origin, path, "|", src].concat()))
}

/// `full` if it fits the protocol's 512-byte id limit without control characters, else a
/// readable prefix ending in a 64-bit FNV-1a hash of the whole (stable across reloads).
fn bounded_id(full: String) -> String {
    const MAX: usize = image_chat_protocol::limits::MAX_IMAGE_ID_BYTES;
    if full.len() <= MAX && !full.chars().any(char::is_control) {
        return full;
    }
    let hash = fnv1a64(full.as_bytes());
    let suffix: String = std::iter::once('#')
        .chain(
            (0..16)
                .rev()
                .map(|i| HEX_DIGITS[(hash >> (i * 4)) as usize & 0xf]),
        )
        .collect();
    let mut prefix: String = full.chars().filter(|c| !c.is_control()).collect();
    let mut cut = MAX.saturating_sub(suffix.len()).min(prefix.len());
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    prefix.truncate(cut);
    prefix + &suffix
}

/// The default page id of a text container: the page (origin and path), `#`, the
/// container's name (`data-collab-chat`), bounded and hashed like [`derive_image_id`].
#[cfg(feature = "text")]
pub fn derive_page_id(origin: &str, path: &str, name: &str) -> image_chat_protocol::PageId {
    let bounded = bounded_id([origin, path, "#", name].concat());
    image_chat_protocol::PageId::new(bounded)
}

/// Lower-case hexadecimal digits, for the hash suffix of long image ids.
const HEX_DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
];

/// 64-bit FNV-1a: tiny, stable, good enough to tell image URLs apart (not a security measure).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `localStorage` key of the display name an anonymous person chose: one per site (storage is
/// per origin), whichever image or tenant they post on.
pub const NAME_STORAGE_KEY: &str = "image-chat:name";

/// The `localStorage` key holding the anonymous identity token for one server and tenant, so a
/// person keeps authorship of their comments after a reload.
pub fn token_storage_key(server_url: &str, tenant: &TenantId) -> String {
    ["image-chat:token:", server_url, ":", tenant.as_str()].concat()
}

#[cfg(test)]
mod tests {

    #[test]
    fn update_changes_only_what_a_mounted_widget_can_change() {
        // The non-English tables are loaded chunks in the browser.
        crate::i18n::load_bundled();
        let env = PageEnv {
            protocol: "https:".into(),
            host: "shop.example".into(),
            origin: "https://shop.example".into(),
            path: "/p".into(),
            languages: vec!["en".into()],
            image_src: "https://shop.example/a.png".into(),
        };
        let mounted = RawOptions {
            tenant: Some("acme".into()),
            theme: Some("light".into()),
            ..RawOptions::default()
        };
        let (raw, opts) = mounted
            .updated(
                RawOptions {
                    locale: Some("fr".into()),
                    theme: Some("dark".into()),
                    read_only: Some(Loose::Bool(true)),
                    ..RawOptions::default()
                },
                &env,
            )
            .expect("allowed");
        assert_eq!(
            (
                opts.locale,
                opts.theme,
                opts.read_only,
                opts.tenant.as_str()
            ),
            (Locale::Fr, Theme::Dark, true, "acme")
        );
        // Left out: kept as mounted.
        let (_, again) = raw.updated(RawOptions::default(), &env).expect("nothing");
        assert_eq!(again.theme, Theme::Dark);
        for (change, option) in [
            (
                RawOptions {
                    tenant: Some("other".into()),
                    ..RawOptions::default()
                },
                "tenant",
            ),
            (
                RawOptions {
                    server: Some("/ws".into()),
                    ..RawOptions::default()
                },
                "server",
            ),
            (
                RawOptions {
                    image_id: Some("x".into()),
                    ..RawOptions::default()
                },
                "imageId",
            ),
            (
                RawOptions {
                    marker_size: Some(Loose::Number(40.0)),
                    ..RawOptions::default()
                },
                "markerSize",
            ),
        ] {
            assert_eq!(
                mounted.updated(change, &env).map(|_| ()),
                Err(OptionsError::NeedsRemount(option))
            );
        }
        assert!(matches!(
            mounted.updated(
                RawOptions {
                    theme: Some("neon".into()),
                    ..RawOptions::default()
                },
                &env
            ),
            Err(OptionsError::InvalidTheme(_))
        ));
    }

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
        // The non-English tables are loaded chunks in the browser.
        crate::i18n::load_bundled();
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
        // The non-English tables are loaded chunks in the browser.
        crate::i18n::load_bundled();
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
        let js = RawOptions {
            locale: Some("ru".into()),
            name: Some("  Ada ".into()),
            ..RawOptions::default()
        };
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

    /// Issue 12 item 3: `<img data-image-chat data-server="wss://attacker/ws">` in user
    /// content must not receive the signed user the loader tag carries.
    #[test]
    fn credentials_never_follow_a_server_chosen_by_the_image() {
        let e = env();
        let sso = || {
            Some(Ok(AuthFields {
                kind: Some("sso".into()),
                user_data: Some("eyJpZCI6MX0=".into()),
                timestamp: Some(1.0),
                hash: Some("ab".repeat(32)),
                ..AuthFields::default()
            }))
        };
        let server = |v: &str| Some(v.to_owned());
        let loader = || RawOptions {
            server: server("https://chat.site.example"),
            auth: sso(),
            ..RawOptions::default()
        };
        let evil = || RawOptions {
            server: server("wss://attacker.example/ws"),
            ..RawOptions::default()
        };
        // The image picks another server: the loader's auth is dropped.
        let (o, dropped) = RawOptions::layered(loader(), evil(), RawOptions::default(), &e);
        assert!(dropped);
        let o = o.resolve(&e).unwrap();
        assert_eq!(o.server_url, "wss://attacker.example/ws");
        assert_eq!(o.auth, None, "connects anonymously");
        // Auth given in the options object is not sent there either.
        let js = RawOptions {
            auth: sso(),
            ..RawOptions::default()
        };
        let (o, dropped) = RawOptions::layered(RawOptions::default(), evil(), js, &e);
        assert!(dropped && o.auth.is_none());
        // The same server written another way keeps the auth.
        let same = RawOptions {
            server: server("wss://chat.site.example/ws"),
            ..RawOptions::default()
        };
        let (o, dropped) = RawOptions::layered(loader(), same, RawOptions::default(), &e);
        assert!(!dropped && o.auth.is_some());
        // The options object choosing the server is the page's code, not its content.
        let js = RawOptions {
            server: server("wss://other.example/ws"),
            ..RawOptions::default()
        };
        let (o, dropped) = RawOptions::layered(loader(), evil(), js, &e);
        assert!(!dropped && o.auth.is_some());
        // An image bringing its own auth with its own server keeps both (it can only hand out
        // what it holds).
        let own = RawOptions {
            auth: sso(),
            ..evil()
        };
        let (o, dropped) =
            RawOptions::layered(RawOptions::default(), own, RawOptions::default(), &e);
        assert!(!dropped && o.auth.is_some());
        // Without auth there is nothing to protect; the image's server is used.
        let no_auth = RawOptions {
            server: server("https://chat.site.example"),
            ..RawOptions::default()
        };
        let (o, dropped) = RawOptions::layered(no_auth, evil(), RawOptions::default(), &e);
        assert!(!dropped);
        assert_eq!(
            o.resolve(&e).unwrap().server_url,
            "wss://attacker.example/ws"
        );
    }

    #[test]
    fn invalid_values_are_reported() {
        let e = env();
        let r = |raw: RawOptions| raw.resolve(&e);
        let d = RawOptions::default;
        let text = |v: &str| Some(v.to_owned());
        assert!(matches!(
            r(RawOptions {
                tenant: text("a b"),
                ..d()
            }),
            Err(OptionsError::InvalidTenant(_))
        ));
        assert!(matches!(
            r(RawOptions {
                image_id: text(""),
                ..d()
            }),
            Err(OptionsError::InvalidImageId)
        ));
        assert!(matches!(
            r(RawOptions {
                theme: text("pink"),
                ..d()
            }),
            Err(OptionsError::InvalidTheme(_))
        ));
        assert!(matches!(
            r(RawOptions {
                marker_size: Some(Loose::Number(4.0)),
                ..d()
            }),
            Err(OptionsError::InvalidMarkerSize(_))
        ));
        assert!(matches!(
            r(RawOptions {
                marker_size: Some(Loose::Text("big".into())),
                ..d()
            }),
            Err(OptionsError::InvalidMarkerSize(_))
        ));
        assert!(matches!(
            r(RawOptions {
                read_only: Some(Loose::Text("maybe".into())),
                ..d()
            }),
            Err(OptionsError::InvalidReadOnly(_))
        ));
        assert!(matches!(
            r(RawOptions {
                read_only: Some(Loose::Number(1.0)),
                ..d()
            }),
            Err(OptionsError::InvalidReadOnly(_))
        ));
        assert!(matches!(
            r(RawOptions {
                name: text("   "),
                ..d()
            }),
            Err(OptionsError::InvalidName)
        ));
        let magic = AuthFields {
            kind: text("magic"),
            ..AuthFields::default()
        };
        assert!(matches!(
            r(RawOptions {
                auth: Some(Ok(magic)),
                ..d()
            }),
            Err(OptionsError::InvalidAuth(_))
        ));
        let half_sso = AuthFields {
            kind: text("sso"),
            user_data: text("x"),
            ..AuthFields::default()
        };
        assert!(matches!(
            r(RawOptions { auth: Some(Ok(half_sso)), ..d() }),
            Err(OptionsError::InvalidAuth(m)) if m.contains("timestamp")
        ));
        assert!(matches!(
            r(RawOptions {
                auth: Some(Err("not JSON".into())),
                ..d()
            }),
            Err(OptionsError::InvalidAuth(_))
        ));
    }

    #[test]
    fn auth_passes_through() {
        let sso = AuthFields {
            kind: Some("sso".into()),
            user_data: Some("eyJ9".into()),
            timestamp: Some(1_700_000_000_000.0),
            hash: Some("ab".into()),
            ..AuthFields::default()
        };
        let o = RawOptions {
            auth: Some(Ok(sso)),
            read_only: Some(Loose::Bool(true)),
            marker_size: Some(Loose::Number(20.0)),
            ..RawOptions::default()
        }
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
        assert!(o.read_only);
        assert_eq!(o.marker_size, 20.0);
        let anon = AuthFields {
            kind: Some("anonymous".into()),
            name: Some("Ada".into()),
            ..AuthFields::default()
        };
        assert_eq!(
            anon.to_auth().unwrap(),
            Auth::Anonymous {
                name: "Ada".into(),
                token: None
            }
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
