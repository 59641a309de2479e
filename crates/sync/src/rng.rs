//! The engine's backoff jitter: a tiny seeded SplitMix64 generator.
//!
//! The engine never reads a system RNG (it must run identically in a native test and in the
//! browser), so the caller seeds it: the widget from `crypto.getRandomValues`, tests from a
//! constant. SplitMix64 is a few lines, has no dependencies (keeps the wasm small) and passes
//! BigCrush: good enough to spread reconnects. It is *not* a cryptographic generator, and one
//! output reveals the rest, so it never makes ids: those come from the caller's
//! [`crate::ids::IdSource`] (see `ids` for why). [`crate::ids::SeededIds`] wraps it for tests.

/// A seeded SplitMix64 pseudo-random generator.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`. Different seeds give unrelated streams.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly distributed value in `0..=max` (inclusive).
    pub fn below_or_equal(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            // Lemire's multiply-shift: unbiased enough for jitter (bias < 2^-40 for our ranges)
            // and free of the modulo's division.
            Some(span) => ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64,
            None => self.next_u64(),
        }
    }

    /// 16 random bytes (for [`crate::ids::SeededIds`], the tests' id source).
    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = Rng::new(1);
        for max in [0u64, 1, 2, 499, 500, 20_000, u64::MAX] {
            for _ in 0..200 {
                assert!(r.below_or_equal(max) <= max);
            }
        }
        // Both ends of a small range are reachable.
        let seen: std::collections::HashSet<u64> = (0..200).map(|_| r.below_or_equal(2)).collect();
        assert_eq!(seen.len(), 3);
    }
}
