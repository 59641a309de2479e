//! Live viewer counts per image (this server's connections). Each change is published as a
//! `presence` frame on the image's topic so every viewer's count follows joins and leaves.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::store::ImageKey;

/// Connection counts per image, forgotten when they reach zero.
#[derive(Default)]
pub struct PresenceCounts {
    counts: Mutex<HashMap<ImageKey, u32>>,
}

impl PresenceCounts {
    /// Records one more viewer; returns the new count.
    pub fn join(&self, image: &ImageKey) -> u32 {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(image.clone()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// Records one more viewer unless the image already has `max` (0: unlimited); returns the
    /// new count, or `None` when full. Checked and counted under one lock, so concurrent joins
    /// cannot overshoot.
    pub fn try_join(&self, image: &ImageKey, max: u32) -> Option<u32> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(image.clone()).or_insert(0);
        if max > 0 && *count >= max {
            if *count == 0 {
                counts.remove(image);
            }
            return None;
        }
        *count = count.saturating_add(1);
        Some(*count)
    }

    /// Records one viewer fewer; returns the new count.
    pub fn leave(&self, image: &ImageKey) -> u32 {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(count) = counts.get_mut(image) else {
            return 0;
        };
        *count = count.saturating_sub(1);
        let now = *count;
        if now == 0 {
            counts.remove(image);
        }
        now
    }

    /// Current count.
    pub fn count(&self, image: &ImageKey) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(image).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image_chat_protocol::{ImageId, TenantId};

    #[test]
    fn counts_follow_joins_and_leaves() {
        let p = PresenceCounts::default();
        let a = ImageKey {
            tenant: TenantId::new("t"),
            image: ImageId::new("a"),
        };
        let b = ImageKey {
            tenant: TenantId::new("t"),
            image: ImageId::new("b"),
        };
        assert_eq!(p.join(&a), 1);
        assert_eq!(p.join(&a), 2);
        assert_eq!(p.join(&b), 1);
        assert_eq!(p.leave(&a), 1);
        assert_eq!(p.count(&a), 1);
        assert_eq!(p.leave(&a), 0);
        assert_eq!(p.leave(&a), 0);
        assert_eq!(p.count(&b), 1);
        assert_eq!(p.try_join(&b, 2), Some(2));
        assert_eq!(p.try_join(&b, 2), None);
        assert_eq!(p.count(&b), 2);
        assert_eq!(p.try_join(&b, 0), Some(3));
    }
}
