//! Rate limiting as pure logic: a token bucket and a keyed set of them, driven by the caller's
//! clock (`now` is always a parameter), so the behaviour is tested exactly with a virtual clock
//! and the server decides where the time comes from.
//!
//! A bucket holds up to `burst` tokens and gains `per_second` tokens per second; each op takes
//! one. A person can therefore act in quick bursts (post, then fix a typo at once) while a
//! sustained flood is held to `per_second`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// A sustained rate and a burst allowance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Tokens regained per second (may be fractional, e.g. 0.5 = one op every two seconds).
    pub per_second: f64,
    /// Bucket size: how many ops may come at once after a quiet period (at least 1).
    pub burst: u32,
}

impl Rate {
    /// A rate from configuration values; `None` (unlimited) when either is zero or the rate is
    /// not a positive finite number.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second.is_finite() && per_second > 0.0 && burst > 0)
            .then_some(Self { per_second, burst })
    }
}

/// One token bucket.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: Rate,
    /// Tokens available at `updated` (fractional: refill is continuous).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            tokens: f64::from(rate.burst),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        // A clock that went backwards (it cannot with `Instant`, but be safe) adds nothing.
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst));
        self.updated = self.updated.max(now);
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.try_take_n(now, 1)
    }

    /// Takes `n` tokens (an op's size in bytes, say), or says how long until they are
    /// available. More than the burst costs the whole burst: a full bucket always admits one.
    pub fn try_take_n(&mut self, now: Instant, n: u32) -> Result<(), Duration> {
        self.refill(now);
        let cost = f64::from(n.min(self.rate.burst));
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            let missing = cost - self.tokens;
            Err(Duration::from_secs_f64(missing / self.rate.per_second))
        }
    }

    /// Gives back a token taken by [`TokenBucket::try_take`] for an op that another limit then
    /// refused, so a refused op costs nothing.
    pub fn refund(&mut self) {
        self.refund_n(1);
    }

    /// Gives back what [`TokenBucket::try_take_n`] took.
    pub fn refund_n(&mut self, n: u32) {
        let cost = f64::from(n.min(self.rate.burst));
        self.tokens = (self.tokens + cost).min(f64::from(self.rate.burst));
    }

    /// Whether the bucket is full at `now` (it then carries no information and can be dropped).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= f64::from(self.rate.burst)
    }
}

/// How many keys a [`KeyedLimiter`] may hold before it drops its full buckets (a full bucket is
/// the same as no bucket, so dropping it changes no decision).
const PRUNE_ABOVE: usize = 4096;

/// One token bucket per key (e.g. per client IP), shared by every connection.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    rate: Option<Rate>,
    buckets: Mutex<Buckets<K>>,
}

#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, TokenBucket>,
    /// Prune when the map grows past this. Doubled after a prune that left many live buckets,
    /// so a flood from many addresses costs amortized O(1) per call, not a scan per call.
    prune_at: usize,
}

impl<K: Eq + Hash + Clone> KeyedLimiter<K> {
    /// A limiter with `rate` per key; `None` never limits.
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                prune_at: PRUNE_ABOVE,
            }),
        }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is available.
    pub fn try_take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        self.try_take_n(key, now, 1)
    }

    /// Gives back what [`KeyedLimiter::try_take_n`] took from `key` (another limit refused the
    /// op after all).
    pub fn refund_n(&self, key: &K, n: u32) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = buckets.map.get_mut(key) {
            bucket.refund_n(n);
        }
    }

    /// Takes `n` tokens from `key`'s bucket (see [`TokenBucket::try_take_n`]).
    pub fn try_take_n(&self, key: &K, now: Instant, n: u32) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        // The map holds plain data; a panic elsewhere cannot leave it inconsistent.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.map.len() > buckets.prune_at {
            buckets.map.retain(|_, bucket| !bucket.is_full(now));
            buckets.prune_at = PRUNE_ABOVE.max(buckets.map.len() * 2);
        }
        buckets
            .map
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(rate, now))
            .try_take_n(now, n)
    }

    /// Number of keys currently tracked.
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    //! Every test runs on a virtual clock: `t0 + offset`, never the wall clock.

    use super::*;

    fn rate(per_second: f64, burst: u32) -> Rate {
        Rate::new(per_second, burst).unwrap()
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn burst_then_sustained_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(rate(2.0, 3), t0);
        for _ in 0..3 {
            assert_eq!(b.try_take(t0), Ok(()));
        }
        // Empty: the next token comes in 1/2 s.
        assert_eq!(b.try_take(t0), Err(secs(0.5)));
        assert_eq!(b.try_take(t0 + secs(0.25)), Err(secs(0.25)));
        assert_eq!(b.try_take(t0 + secs(0.5)), Ok(()));
        assert!(b.try_take(t0 + secs(0.5)).is_err());
        // Trying every 1/4 s for the next 10 s: exactly 20 more ops pass (every other try).
        // (Quarter seconds are exact in binary, so the count is exact too.)
        let mut passed = 0;
        for i in 1..=40 {
            if b.try_take(t0 + secs(0.5 + f64::from(i) * 0.25)).is_ok() {
                passed += 1;
            }
        }
        assert_eq!(passed, 20);
    }

    #[test]
    fn refill_caps_at_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(rate(1.0, 2), t0);
        assert!(b.try_take(t0).is_ok());
        // A long quiet period refills only up to the burst.
        let later = t0 + secs(3600.0);
        assert!(b.is_full(later));
        assert!(b.try_take(later).is_ok());
        assert!(b.try_take(later).is_ok());
        assert!(b.try_take(later).is_err());
    }

    #[test]
    fn a_refund_restores_one_token_up_to_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(rate(0.001, 2), t0);
        b.refund();
        assert!(b.is_full(t0));
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_err());
        b.refund();
        assert!(b.try_take(t0).is_ok());
    }

    #[test]
    fn many_live_keys_do_not_make_every_call_scan() {
        let t0 = Instant::now();
        let l = KeyedLimiter::new(Some(rate(0.001, 1)));
        for key in 0..3 * PRUNE_ABOVE as u32 {
            assert!(l.try_take(&key, t0).is_ok());
        }
        // Nothing could be pruned (no bucket refilled), and the threshold moved up.
        assert_eq!(l.len(), 3 * PRUNE_ABOVE);
        let prune_at = l.buckets.lock().unwrap().prune_at;
        assert!(prune_at > 2 * PRUNE_ABOVE, "{prune_at}");
    }

    #[test]
    fn byte_budgets_take_many_tokens_and_refund_them() {
        let t0 = Instant::now();
        // 4 KiB/s, 64 KiB at once: four 16 KiB edits pass, the fifth waits 4 s.
        let mut b = TokenBucket::new(rate(4096.0, 65_536), t0);
        for _ in 0..4 {
            assert_eq!(b.try_take_n(t0, 16_384), Ok(()));
        }
        assert_eq!(b.try_take_n(t0, 16_384), Err(secs(4.0)));
        b.refund_n(16_384);
        assert_eq!(b.try_take_n(t0, 16_384), Ok(()));
        assert!(b.try_take_n(t0 + secs(4.0), 16_384).is_ok());
        // More than the burst costs the burst: a full bucket admits it.
        let mut small = TokenBucket::new(rate(1.0, 10), t0);
        assert_eq!(small.try_take_n(t0, 1000), Ok(()));
        assert!(small.try_take_n(t0, 1).is_err());
        let l = KeyedLimiter::new(Some(rate(1.0, 100)));
        assert!(l.try_take_n(&1u8, t0, 60).is_ok());
        assert!(l.try_take_n(&1u8, t0, 60).is_err());
        l.refund_n(&1u8, 60);
        assert!(l.try_take_n(&1u8, t0, 100).is_ok());
    }

    #[test]
    fn fractional_rates() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(rate(0.1, 1), t0);
        assert!(b.try_take(t0).is_ok());
        assert_eq!(b.try_take(t0 + secs(5.0)), Err(secs(5.0)));
        assert!(b.try_take(t0 + secs(10.0)).is_ok());
    }

    #[test]
    fn zero_or_nonsense_means_unlimited() {
        assert_eq!(Rate::new(0.0, 10), None);
        assert_eq!(Rate::new(10.0, 0), None);
        assert_eq!(Rate::new(f64::NAN, 10), None);
        assert_eq!(Rate::new(f64::INFINITY, 10), None);
        assert_eq!(Rate::new(-1.0, 10), None);
        let unlimited = KeyedLimiter::<u8>::new(None);
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert!(unlimited.try_take(&1, t0).is_ok());
        }
        assert!(unlimited.is_empty());
    }

    #[test]
    fn keys_are_independent() {
        let t0 = Instant::now();
        let l = KeyedLimiter::new(Some(rate(1.0, 2)));
        assert!(l.try_take(&"a", t0).is_ok());
        assert!(l.try_take(&"a", t0).is_ok());
        assert!(l.try_take(&"a", t0).is_err());
        // "a" flooding does not affect "b".
        assert!(l.try_take(&"b", t0).is_ok());
        assert!(l.try_take(&"a", t0 + secs(1.0)).is_ok());
    }

    #[test]
    fn full_buckets_are_pruned_so_memory_stays_bounded() {
        let t0 = Instant::now();
        let l = KeyedLimiter::new(Some(rate(1.0, 1)));
        for key in 0..=PRUNE_ABOVE as u32 {
            assert!(l.try_take(&key, t0).is_ok());
        }
        assert_eq!(l.len(), PRUNE_ABOVE + 1);
        // Two seconds later every bucket is full again: the next call drops them all.
        assert!(l.try_take(&u32::MAX, t0 + secs(2.0)).is_ok());
        assert_eq!(l.len(), 1);
        // A bucket still empty survives pruning (its key stays limited).
        let l = KeyedLimiter::new(Some(rate(0.001, 1)));
        assert!(l.try_take(&0u32, t0).is_ok());
        for key in 1..=PRUNE_ABOVE as u32 {
            assert!(l.try_take(&key, t0).is_ok());
        }
        assert!(l.try_take(&0, t0 + secs(2.0)).is_err());
    }
}
