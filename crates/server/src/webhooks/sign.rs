//! Signing a delivery, and checking a signature as a receiver does.
//!
//! Each POST carries `X-Image-Chat-Timestamp` (Unix seconds at sending) and
//! `X-Image-Chat-Signature: v1=<hex>`, the HMAC-SHA256 under the tenant's webhook secret of
//! `<timestamp>.<body>`. Covering the timestamp lets a receiver refuse replays of an old
//! delivery; a retry is signed afresh with its own timestamp (the body is the same bytes).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header holding the signature.
pub const SIGNATURE_HEADER: &str = "x-image-chat-signature";
/// Header holding the timestamp the signature covers (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-image-chat-timestamp";
/// Header holding the change's stable id: the same on every retry (idempotency key).
pub const DELIVERY_HEADER: &str = "x-image-chat-delivery";

/// The signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return [0; 32];
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Why a receiver refuses a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The timestamp header is missing or not a number.
    #[error("missing or malformed timestamp")]
    Timestamp,
    /// The timestamp is further from now than the tolerance (a replay, or a wrong clock).
    #[error("timestamp outside the tolerance")]
    Stale,
    /// The signature does not match.
    #[error("signature does not match")]
    Signature,
}

/// What a receiver checks: the signature over `timestamp.body`, and that `timestamp` is within
/// `tolerance_secs` of `now_secs`.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
) -> Result<(), VerifyError> {
    let ts: u64 = timestamp.parse().map_err(|_| VerifyError::Timestamp)?;
    if ts.abs_diff(now_secs) > tolerance_secs {
        return Err(VerifyError::Stale);
    }
    let presented = signature
        .strip_prefix("v1=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::Signature)?;
    if bool::from(presented.ct_eq(&mac(secret, ts, body))) {
        Ok(())
    } else {
        Err(VerifyError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let body = br#"{"id":"x","seq":1}"#;
        let sig = signature(secret, 1_800_000_000, body);
        // Computed independently (Python's hmac module over `1800000000.<body>`).
        assert_eq!(
            sig,
            "v1=7c9485110eb6b53c27a69b3856cbcaba8544707c1202dbc23d6c024dd1e64651"
        );
        assert_eq!(
            verify(secret, "1800000000", &sig, body, 1_800_000_100, 300),
            Ok(())
        );
        assert_eq!(
            verify(secret, "1800000000", &sig, b"{}", 1_800_000_000, 300),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(secret, "1800000001", &sig, body, 1_800_000_000, 300),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(
                b"another secret of 32 bytes......",
                "1800000000",
                &sig,
                body,
                1_800_000_000,
                300
            ),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(secret, "1800000000", &sig, body, 1_800_000_301, 300),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(secret, "soon", &sig, body, 0, 300),
            Err(VerifyError::Timestamp)
        );
        assert_eq!(
            verify(secret, "1800000000", "v1=zz", body, 1_800_000_000, 300),
            Err(VerifyError::Signature)
        );
    }
}
