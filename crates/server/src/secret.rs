//! Secrets (tenant API secrets) in a wrapper that cannot leak by accident: its `Debug` and
//! `Display` print `[redacted]`, it is not `Serialize`, and comparing it runs in constant time.
//! The only way to the bytes is [`Secret::expose`], so every use is easy to find in review.

use std::fmt;

use rand::RngCore;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// A tenant's API secret: the HMAC key of its signed users and the bearer token of its private
/// HTTP API. Kept as the exact string the operator configured (its UTF-8 bytes are the key), so
/// a site backend in any language signs with the same string it was given.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

/// Shortest secret accepted from configuration: shorter keys make forging signatures by brute
/// force conceivable.
pub const MIN_SECRET_BYTES: usize = 16;

impl Secret {
    /// Wraps a configured secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// A fresh random secret: 32 bytes from the thread-local CSPRNG (ChaCha, seeded by the OS),
    /// hex-encoded (64 characters).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// The key bytes. Call only to sign or verify, never to log or send.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in bytes (for configuration checks).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with a presented value in constant time (for equal lengths; the length itself
    /// is not secret: every generated secret has the same one).
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2-hunter2-hunter2");
        assert_eq!(format!("{s}"), "[redacted]");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let (a, b) = (Secret::generate(), Secret::generate());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(a.matches(a.expose()));
        assert!(!a.matches(b.expose()));
        assert!(!a.matches(b""));
    }
}
