//! Reconnect delays: "full jitter" exponential backoff.
//!
//! Retry `n` (counting from 0) waits a uniformly random time in `[0, min(cap, base * 2^n)]`.
//! Full jitter (rather than "base plus a little noise") spreads a crowd of widgets that all lost
//! the same server at the same instant, so a restarting server is not hit by a synchronized
//! wave. Defaults: base 500 ms, cap 20 s, so the ceiling reaches the cap after 6 failed attempts
//! (500 · 2^6 = 32 s > 20 s) and a page never waits more than 20 s between tries.
//!
//! The attempt counter is reset by the engine only after a successful resync (a `welcome` was
//! processed), not when a socket merely opens: a server that accepts connections and then
//! drops them must still be backed off from.

use crate::rng::Rng;

/// Default smallest backoff ceiling (the ceiling of the first retry), in ms.
pub const DEFAULT_BASE_MS: u64 = 500;
/// Default largest backoff ceiling, in ms.
pub const DEFAULT_CAP_MS: u64 = 20_000;

/// Exponential backoff state: how many consecutive attempts failed.
#[derive(Clone, Debug)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    /// Consecutive attempts since the last successful resync.
    attempt: u32,
}

impl Backoff {
    /// A backoff with the given ceiling for the first retry and overall cap.
    pub fn new(base_ms: u64, cap_ms: u64) -> Self {
        Self {
            base_ms,
            cap_ms: cap_ms.max(base_ms),
            attempt: 0,
        }
    }

    /// Failed attempts since the last successful resync.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The upper bound of the delay for retry number `attempt`: `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> u64 {
        let factor = 1u64.checked_shl(attempt.min(63)).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.cap_ms)
    }

    /// Draws the delay before the next attempt and counts the attempt.
    pub fn next_delay(&mut self, rng: &mut Rng) -> u64 {
        let delay = rng.below_or_equal(self.ceiling(self.attempt));
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Forgets past failures (after a successful resync).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_full_jitter_bounds() {
        let mut rng = Rng::new(3);
        let mut b = Backoff::new(DEFAULT_BASE_MS, DEFAULT_CAP_MS);
        for n in 0..100u32 {
            let ceiling = DEFAULT_CAP_MS.min(DEFAULT_BASE_MS.saturating_mul(1u64 << n.min(40)));
            assert_eq!(b.ceiling(n), ceiling);
            let d = b.next_delay(&mut rng);
            assert!(d <= ceiling, "attempt {n}: {d} > {ceiling}");
        }
        assert_eq!(b.ceiling(6), DEFAULT_CAP_MS);
        b.reset();
        assert_eq!(b.attempt(), 0);
    }
}
