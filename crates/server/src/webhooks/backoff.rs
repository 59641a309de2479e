//! When a failed delivery is tried again: exponential backoff with jitter, capped, and when to
//! give up. Pure: the caller passes the time and the random draw (tests use a virtual clock).
//!
//! After the `n`th failed attempt the next one is due after `min(1 h, 1 s × 2^(n-1))`, scaled
//! by a random factor in `[0.5, 1)` ("equal jitter": never sooner than half the step, so a
//! receiver that is down is not hammered, yet many deliveries failing together spread out).
//! After [`MAX_ATTEMPTS`] attempts (about 20 hours of retrying) the delivery is dropped and
//! logged.

use std::time::Duration;

/// Attempts a delivery gets before it is dropped.
pub const MAX_ATTEMPTS: u32 = 25;
/// Delay after the first failure, before jitter.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest delay between two attempts, before jitter.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time (ms since the Unix epoch).
    RetryAt(u64),
    /// Stop: the delivery had [`MAX_ATTEMPTS`].
    GiveUp,
}

/// The step after `failures` failed attempts (≥ 1), before jitter.
pub fn step(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    FIRST_DELAY.saturating_mul(1u32 << doublings).min(MAX_DELAY)
}

/// After the attempt that made `failures` failures in all, at `now_ms`, with `unit` a random
/// draw in `[0, 1)`.
pub fn after_failure(failures: u32, now_ms: u64, unit: f64) -> Next {
    if failures >= MAX_ATTEMPTS {
        return Next::GiveUp;
    }
    let factor = 0.5 + 0.5 * unit.clamp(0.0, 1.0);
    let delay_ms = (step(failures).as_millis() as f64 * factor) as u64;
    Next::RetryAt(now_ms.saturating_add(delay_ms.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_to_the_cap() {
        let secs: Vec<u64> = (1..=14).map(|n| step(n).as_secs()).collect();
        assert_eq!(
            secs,
            [
                1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600
            ]
        );
        assert_eq!(step(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn a_receiver_down_for_an_hour_is_retried_on_a_virtual_clock_then_given_up_on() {
        // Every attempt fails; the clock jumps to each due time. Draws from a fixed sequence.
        let draws = [0.0, 0.99, 0.5, 0.25, 0.75];
        let mut now = 0u64;
        let mut due = Vec::new();
        let mut failures = 0;
        loop {
            failures += 1;
            match after_failure(failures, now, draws[failures as usize % draws.len()]) {
                Next::RetryAt(at) => {
                    let waited = at - now;
                    let step = step(failures).as_millis() as u64;
                    assert!(waited >= step / 2 && waited < step, "{failures}: {waited}");
                    due.push(at);
                    now = at;
                }
                Next::GiveUp => break,
            }
        }
        assert_eq!(failures, MAX_ATTEMPTS);
        // Within the first hour: about a dozen tries, not hundreds.
        let in_first_hour = due.iter().filter(|&&t| t < 3_600_000).count();
        assert!((8..=13).contains(&in_first_hour), "{in_first_hour}");
        // The whole horizon is many hours (a receiver down overnight still gets its changes).
        let horizon_h = now as f64 / 3_600_000.0;
        assert!((8.0..30.0).contains(&horizon_h), "{horizon_h}");
    }
}
