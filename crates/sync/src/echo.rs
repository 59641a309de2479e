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

use image_chat_protocol::BroadcastId;

/// How many of our most recent broadcast ids are remembered.
pub const OWN_IDS_CAPACITY: usize = 1024;

/// A bounded, insertion-ordered set of our broadcast ids.
#[derive(Clone, Debug, Default)]
pub struct OwnIds {
    /// The ids, used as a ring once full (a plain `Vec`: a `VecDeque` of ids would bring its
    /// own ring-buffer code into the widget's wasm). Looked up by a linear scan: one broadcast
    /// checks at most 1,024 short strings (a few microseconds), and no hash or tree map code
    /// lands in the widget's wasm.
    ids: Vec<BroadcastId>,
    /// Once full, where the next id goes: the oldest one.
    oldest: usize,
}

impl OwnIds {
    /// Remembers `id`, forgetting the oldest id when full.
    pub fn insert(&mut self, id: BroadcastId) {
        if self.contains(&id) {
            return;
        }
        if self.ids.len() < OWN_IDS_CAPACITY {
            self.ids.push(id);
        } else if let Some(slot) = self.ids.get_mut(self.oldest) {
            *slot = id;
            self.oldest = (self.oldest + 1) % OWN_IDS_CAPACITY;
        }
    }

    /// Whether `id` is one of ours.
    pub fn contains(&self, id: &BroadcastId) -> bool {
        self.ids.contains(id)
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
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
        // Still oldest first after wrapping around.
        for i in OWN_IDS_CAPACITY + 10..3 * OWN_IDS_CAPACITY {
            ids.insert(BroadcastId::new(format!("{i}")));
        }
        assert_eq!(ids.len(), OWN_IDS_CAPACITY);
        assert!(!ids.contains(&BroadcastId::new(format!("{}", 2 * OWN_IDS_CAPACITY - 1))));
        assert!(ids.contains(&BroadcastId::new(format!("{}", 2 * OWN_IDS_CAPACITY))));
    }
}
