//! The set of broadcast ids this engine minted, for echo suppression.
//!
//! A broadcast carrying one of these ids is our own change coming back: it confirms the op and
//! must not be applied to the view a second time, nor announced. Other tabs of the same person
//! mint their own ids, so their changes are not in this set and are applied normally.
//!
//! The set lives in the engine (not in a connection), so it survives reconnects: an op sent just
//! before a drop is still recognised when it shows up among the missed events of the resync.
//! It is bounded to [`OWN_IDS_CAPACITY`] entries, oldest forgotten first. 1,024 is far more than
//! one person can have in flight (the server rate-limits ops well below that between two
//! resyncs), and costs about 40 KB at worst.

use std::collections::VecDeque;

use image_chat_protocol::BroadcastId;

/// How many of our most recent broadcast ids are remembered.
pub const OWN_IDS_CAPACITY: usize = 1024;

/// A bounded, insertion-ordered set of our broadcast ids.
#[derive(Clone, Debug, Default)]
pub struct OwnIds {
    /// Oldest first. Looked up by a linear scan: one broadcast checks at most 1,024 short
    /// strings (a few microseconds), and no hash or tree map code lands in the widget's wasm.
    order: VecDeque<BroadcastId>,
}

impl OwnIds {
    /// Remembers `id`, forgetting the oldest id when full.
    pub fn insert(&mut self, id: BroadcastId) {
        if self.contains(&id) {
            return;
        }
        if self.order.len() >= OWN_IDS_CAPACITY {
            self.order.pop_front();
        }
        self.order.push_back(id);
    }

    /// Whether `id` is one of ours.
    pub fn contains(&self, id: &BroadcastId) -> bool {
        self.order.contains(id)
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_oldest_first() {
        let mut ids = OwnIds::default();
        for i in 0..OWN_IDS_CAPACITY + 10 {
            ids.insert(BroadcastId::new(format!("{i}")));
        }
        assert_eq!(ids.len(), OWN_IDS_CAPACITY);
        assert!(!ids.contains(&BroadcastId::new("0")));
        assert!(!ids.contains(&BroadcastId::new("9")));
        assert!(ids.contains(&BroadcastId::new("10")));
        assert!(ids.contains(&BroadcastId::new(format!("{}", OWN_IDS_CAPACITY + 9))));
    }
}
