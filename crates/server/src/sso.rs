//! Secure SSO: users signed by the site owner's backend.
//!
//! The backend serializes the user as JSON, encodes it as base64 (`userData`), takes the time
//! in milliseconds since the Unix epoch (`timestamp`) and computes
//!
//! ```text
//! hash = hex(HMAC-SHA256(tenant secret, tenantId "\n" audience "\n" decimal(timestamp) "\n" userData))
//! ```
//!
//! The widget passes `userData`, `timestamp` and `hash` to the server in `hello`. The signature
//! covers the tenant and the server's audience (its public host, see [`Audience`]), so a payload
//! signed for one tenant or one server is refused by every other: a page that leaks it (to
//! user-supplied markup pointing the widget elsewhere, say) hands out nothing usable. The server
//! checks, in this order, and refuses at the first failure: the hash's shape, the signature (in
//! constant time, before anything of the payload is parsed), the timestamp window, then the
//! payload itself.
//!
//! The user JSON: `id` (string or integer, required), `name` (required), `avatar` or `avatarUrl`
//! (optional `https:` URL; anything else is dropped, not shown), `isModerator` (optional bool),
//! `readOnly` (optional bool: the person may read but not write). Other fields (an email, say)
//! are ignored, so a backend can sign the object it already has.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, Mac};
use image_chat_protocol::limits::validate_name;
use serde::Deserialize;
use sha2::Sha256;
use thiserror::Error;

use crate::limits::SsoWindow;
use crate::secret::Secret;

/// Longest accepted `userData`, in bytes: a user object is a few hundred bytes; bounding it
/// bounds the work an unauthenticated client can ask for.
pub const MAX_USER_DATA_BYTES: usize = 8 * 1024;
/// Longest accepted user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 128;
/// Longest avatar URL kept, in bytes.
pub const MAX_AVATAR_URL_BYTES: usize = 2048;

/// Why a signed user was refused. All map to `authentication-failed` / close 4401. The variant
/// is logged; clients are told apart only what a forger learns nothing from (see
/// [`SsoError::client_message`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SsoError {
    /// The hash is not 64 hex digits, or `userData` is oversized.
    #[error("the SSO hash must be 64 hex digits and userData at most 8 KiB")]
    BadFormat,
    /// The hash does not match (forged, tampered with, or signed with another secret).
    #[error("the SSO signature does not match")]
    BadSignature,
    /// The timestamp is older than the accepted window.
    #[error("the SSO signature has expired; sign the user again")]
    Expired,
    /// The timestamp is further in the future than clock skew explains.
    #[error("the SSO timestamp is in the future")]
    FromFuture,
    /// Signed correctly, but `userData` is not base64 of a valid user object.
    #[error("the signed user data is malformed: {0}")]
    Malformed(&'static str),
}

impl SsoError {
    /// What the client is told. A bad signature, an expired one and one from the future read
    /// the same: telling "expired" apart would confirm to whoever holds a payload that it was
    /// genuine (and for which tenant and server). The precise reason goes to the server log.
    pub fn client_message(self) -> &'static str {
        match self {
            SsoError::BadFormat => "the SSO hash or userData is malformed",
            SsoError::BadSignature | SsoError::Expired | SsoError::FromFuture => {
                "the SSO signature is invalid or expired; sign the user again"
            }
            SsoError::Malformed(why) => why,
        }
    }
}

/// What a signature is bound to besides the user: the tenant and the server's audience.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Audience<'a> {
    /// The tenant id the widget names in `hello`.
    pub tenant: &'a str,
    /// The server's public host as the site's backend names it when signing: the tenant's
    /// `sso_audience`, else the server's `--sso-audience`, else the `Host` the widget
    /// connected to (e.g. `chat.example.com`, or `127.0.0.1:8080`).
    pub audience: &'a str,
}

/// A user as the site's backend vouched for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoUser {
    /// The site's id for the person (without the `sso:` prefix).
    pub id: String,
    /// Display name (trimmed).
    pub name: String,
    /// Avatar URL, only when it is `https:`.
    pub avatar_url: Option<String>,
    /// May edit and delete anything in the tenant.
    pub is_moderator: bool,
    /// May read but not write.
    pub read_only: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    id: serde_json::Value,
    name: String,
    #[serde(default, alias = "avatar")]
    avatar_url: Option<String>,
    #[serde(default)]
    is_moderator: bool,
    #[serde(default)]
    read_only: bool,
}

/// Base64 as site backends write it: standard alphabet (Node's `toString('base64')`, Python's
/// `b64encode`) or URL-safe, with or without padding.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

fn mac(secret: &Secret, to: Audience<'_>, timestamp: u64, user_data: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    // Newline-separated: a tenant id has none (its format forbids it), an audience is a host,
    // a decimal has none; base64 last. No two different inputs give the same bytes.
    mac.update(to.tenant.as_bytes());
    mac.update(b"\n");
    mac.update(to.audience.as_bytes());
    mac.update(b"\n");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(user_data.as_bytes());
    mac
}

/// What a site backend computes: `(userData, hash)` for `user_json` at `timestamp` (ms), for the
/// tenant and server `to`.
pub fn sign(
    secret: &Secret,
    to: Audience<'_>,
    user_json: &str,
    timestamp: u64,
) -> (String, String) {
    let user_data = general_purpose::STANDARD.encode(user_json.as_bytes());
    let hash = hex::encode(
        mac(secret, to, timestamp, &user_data)
            .finalize()
            .into_bytes(),
    );
    (user_data, hash)
}

/// Verifies a signed user presented to tenant and server `to` at server time `now_ms`.
pub fn verify(
    secret: &Secret,
    to: Audience<'_>,
    user_data: &str,
    timestamp: u64,
    hash: &str,
    now_ms: u64,
    window: SsoWindow,
) -> Result<SsoUser, SsoError> {
    if hash.len() != 64 || user_data.len() > MAX_USER_DATA_BYTES {
        return Err(SsoError::BadFormat);
    }
    let signature = hex::decode(hash).map_err(|_| SsoError::BadFormat)?;
    // `verify_slice` compares in constant time.
    mac(secret, to, timestamp, user_data)
        .verify_slice(&signature)
        .map_err(|_| SsoError::BadSignature)?;
    let max_age = u64::try_from(window.max_age.as_millis()).unwrap_or(u64::MAX);
    let max_skew = u64::try_from(window.max_skew.as_millis()).unwrap_or(u64::MAX);
    if timestamp > now_ms.saturating_add(max_skew) {
        return Err(SsoError::FromFuture);
    }
    if now_ms.saturating_sub(timestamp) > max_age {
        return Err(SsoError::Expired);
    }
    parse_user(user_data)
}

fn parse_user(user_data: &str) -> Result<SsoUser, SsoError> {
    let json = STANDARD
        .decode(user_data)
        .or_else(|_| URL_SAFE.decode(user_data))
        .map_err(|_| SsoError::Malformed("userData is not base64"))?;
    let payload: Payload = serde_json::from_slice(&json)
        .map_err(|_| SsoError::Malformed("userData is not a JSON user object with id and name"))?;
    let id = match payload.id {
        serde_json::Value::String(id) => id,
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => return Err(SsoError::Malformed("id must be a string or an integer")),
    };
    if id.is_empty() || id.len() > MAX_USER_ID_BYTES || id.chars().any(char::is_control) {
        return Err(SsoError::Malformed(
            "id must be 1 to 128 bytes without control characters",
        ));
    }
    let name = payload.name.trim();
    validate_name(name).map_err(|_| SsoError::Malformed("name must be 1 to 64 characters"))?;
    // The avatar ends up in other people's `img src`: only https, no oddities. A bad one is
    // dropped rather than refused: it must not lock a person out.
    let avatar_url = payload.avatar_url.filter(|url| {
        url.len() <= MAX_AVATAR_URL_BYTES
            && url.starts_with("https://")
            && !url.chars().any(|c| c.is_control() || c.is_whitespace())
    });
    Ok(SsoUser {
        id,
        name: name.to_owned(),
        avatar_url,
        is_moderator: payload.is_moderator,
        read_only: payload.read_only,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NOW: u64 = 1_763_712_000_000;

    fn secret() -> Secret {
        Secret::new("0123456789abcdef0123456789abcdef")
    }

    fn window() -> SsoWindow {
        SsoWindow {
            max_age: Duration::from_secs(60),
            max_skew: Duration::from_secs(5),
        }
    }

    const TO: Audience<'static> = Audience {
        tenant: "acme",
        audience: "chat.acme.example",
    };

    fn check(user: &str, ts: u64) -> Result<SsoUser, SsoError> {
        let (data, hash) = sign(&secret(), TO, user, ts);
        verify(&secret(), TO, &data, ts, &hash, NOW, window())
    }

    /// Issue 12 item 3: a payload works for the tenant and the server it was signed for only.
    #[test]
    fn a_signature_is_bound_to_its_tenant_and_audience() {
        let user = r#"{"id":"u","name":"U"}"#;
        let (data, hash) = sign(&secret(), TO, user, NOW);
        let at = |tenant: &str, audience: &str| {
            verify(
                &secret(),
                Audience { tenant, audience },
                &data,
                NOW,
                &hash,
                NOW,
                window(),
            )
        };
        assert!(at("acme", "chat.acme.example").is_ok());
        assert_eq!(
            at("other", "chat.acme.example"),
            Err(SsoError::BadSignature)
        );
        assert_eq!(at("acme", "attacker.example"), Err(SsoError::BadSignature));
        assert_eq!(
            at("acme", "chat.acme.example:8443"),
            Err(SsoError::BadSignature)
        );
        // The separators make shifting text between fields a different signature.
        assert_eq!(
            at("acme\nchat.acme.example", ""),
            Err(SsoError::BadSignature)
        );
        // Bad, expired and future signatures read the same to the client.
        let message = SsoError::BadSignature.client_message();
        assert_eq!(SsoError::Expired.client_message(), message);
        assert_eq!(SsoError::FromFuture.client_message(), message);
    }

    #[test]
    fn a_signed_user_round_trips() {
        let got = check(
            r#"{"id":"u-1","name":" Grace ","avatar":"https://e.example/a.png","isModerator":true,"email":"g@e.example"}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(got.id, "u-1");
        assert_eq!(got.name, "Grace");
        assert_eq!(got.avatar_url.as_deref(), Some("https://e.example/a.png"));
        assert!(got.is_moderator);
        assert!(!got.read_only);
        let numeric = check(r#"{"id":42,"name":"N","readOnly":true}"#, NOW).unwrap();
        assert_eq!(numeric.id, "42");
        assert!(numeric.read_only);
    }

    #[test]
    fn the_window_is_enforced_at_its_edges() {
        let user = r#"{"id":"u","name":"U"}"#;
        assert!(check(user, NOW - 60_000).is_ok());
        assert_eq!(check(user, NOW - 60_001), Err(SsoError::Expired));
        assert!(check(user, NOW + 5_000).is_ok());
        assert_eq!(check(user, NOW + 5_001), Err(SsoError::FromFuture));
        assert_eq!(check(user, 0), Err(SsoError::Expired));
        assert_eq!(check(user, u64::MAX), Err(SsoError::FromFuture));
    }

    #[test]
    fn forgeries_are_refused() {
        let user = r#"{"id":"u","name":"U"}"#;
        let (data, hash) = sign(&secret(), TO, user, NOW);
        let v = |d: &str, ts: u64, h: &str| verify(&secret(), TO, d, ts, h, NOW, window());
        // Another secret, another timestamp, another payload.
        let (_, other) = sign(
            &Secret::new("another-secret-of-enough-bytes"),
            TO,
            user,
            NOW,
        );
        assert_eq!(v(&data, NOW, &other), Err(SsoError::BadSignature));
        assert_eq!(v(&data, NOW - 1, &hash), Err(SsoError::BadSignature));
        let (evil, _) = sign(
            &secret(),
            TO,
            r#"{"id":"u","name":"U","isModerator":true}"#,
            NOW,
        );
        assert_eq!(v(&evil, NOW, &hash), Err(SsoError::BadSignature));
        // Uppercase hex is the same signature.
        assert!(v(&data, NOW, &hash.to_uppercase()).is_ok());
        for bad in ["", "00", &"g".repeat(64), &"0".repeat(63), &"0".repeat(65)] {
            assert_eq!(v(&data, NOW, bad), Err(SsoError::BadFormat), "{bad}");
        }
        assert_eq!(
            v(&"A".repeat(MAX_USER_DATA_BYTES + 1), NOW, &hash),
            Err(SsoError::BadFormat)
        );
    }

    #[test]
    fn malformed_payloads_are_refused_even_when_signed() {
        for bad in [
            "not json",
            "[]",
            r#"{"name":"no id"}"#,
            r#"{"id":"no name"}"#,
            r#"{"id":"","name":"U"}"#,
            r#"{"id":1.5,"name":"U"}"#,
            r#"{"id":{"x":1},"name":"U"}"#,
            r#"{"id":"u","name":"   "}"#,
            r#"{"id":"u","name":"bell\u0007"}"#,
            r#"{"id":"u\n","name":"U"}"#,
            r#"{"id":"u","name":"U","isModerator":"yes"}"#,
        ] {
            assert!(
                matches!(check(bad, NOW), Err(SsoError::Malformed(_))),
                "{bad}"
            );
        }
        let long_id = format!(r#"{{"id":"{}","name":"U"}}"#, "i".repeat(129));
        assert!(matches!(check(&long_id, NOW), Err(SsoError::Malformed(_))));
        // Signed garbage that is not base64.
        let (_, hash) = {
            let data = "!!!not base64!!!";
            let h = hex::encode(mac(&secret(), TO, NOW, data).finalize().into_bytes());
            ((), h)
        };
        assert_eq!(
            verify(&secret(), TO, "!!!not base64!!!", NOW, &hash, NOW, window()),
            Err(SsoError::Malformed("userData is not base64"))
        );
    }

    #[test]
    fn unsafe_avatars_are_dropped() {
        for avatar in [
            "javascript:alert(1)",
            "http://e.example/a.png",
            "data:image/png;base64,AAAA",
            "https://e.example/a b.png",
        ] {
            let user = serde_json::json!({"id":"u","name":"U","avatarUrl":avatar}).to_string();
            assert_eq!(check(&user, NOW).unwrap().avatar_url, None, "{avatar}");
        }
    }

    #[test]
    fn url_safe_and_unpadded_base64_are_accepted() {
        let json = r#"{"id":"u?>","name":"U~~"}"#;
        for data in [
            general_purpose::URL_SAFE_NO_PAD.encode(json),
            general_purpose::STANDARD_NO_PAD.encode(json),
        ] {
            let hash = hex::encode(mac(&secret(), TO, NOW, &data).finalize().into_bytes());
            assert!(
                verify(&secret(), TO, &data, NOW, &hash, NOW, window()).is_ok(),
                "{data}"
            );
        }
    }
}
