//! The Redis hop, measured: a node notes when it publishes an event on a channel it is itself
//! subscribed to, and when its own subscription hands that event back; the difference is what
//! every other node's viewers wait on top of the commit (`image_chat_broker_lag_seconds`).
//! Only channels with local viewers are noted (others never come back), and the table is
//! bounded: entries whose echo was lost (Redis restarted) are dropped wholesale past the bound.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Publishes awaiting their echo, at most.
const MAX_PENDING: usize = 4096;

/// Publish times awaiting their echo, per (channel, seq).
#[derive(Debug, Default)]
pub struct LagClock {
    sent: Mutex<HashMap<(String, u64), Instant>>,
}

impl LagClock {
    /// `seq` was published on `channel` at `at`.
    pub fn published(&self, channel: &str, seq: u64, at: Instant) {
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        if sent.len() >= MAX_PENDING {
            sent.clear();
        }
        sent.insert((channel.to_owned(), seq), at);
    }

    /// `seq` came back on `channel` at `at`: the hop, if this node published it.
    pub fn received(&self, channel: &str, seq: u64, at: Instant) -> Option<Duration> {
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        let published = sent.remove(&(channel.to_owned(), seq))?;
        Some(at.saturating_duration_since(published))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hop_of_own_publishes_only_and_bounded() {
        let clock = LagClock::default();
        let t0 = Instant::now();
        clock.published("a", 1, t0);
        assert_eq!(clock.received("b", 1, t0), None);
        assert_eq!(
            clock.received("a", 1, t0 + Duration::from_millis(3)),
            Some(Duration::from_millis(3))
        );
        // Once.
        assert_eq!(clock.received("a", 1, t0), None);
        for seq in 0..MAX_PENDING as u64 + 10 {
            clock.published("a", seq, t0);
        }
        assert!(clock.sent.lock().unwrap().len() <= MAX_PENDING);
    }
}
