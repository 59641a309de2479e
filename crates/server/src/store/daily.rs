//! Usage per tenant per UTC day as the store keeps it: counters that nodes add to (additive
//! upserts, so any number of nodes and restarts add up), and per-minute viewer peaks per node,
//! from which a day's peak is derived (see `usage::flush` for why).

use image_chat_protocol::TenantId;

/// Counters of one tenant over some span (a flush interval, a day).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Frames sent to widgets (`pubSubMessageCount`).
    pub frames: u64,
    /// Bytes of those frames (`pubSubBandwidth`).
    pub bytes: u64,
    /// Discussions created.
    pub discussions: u64,
    /// Comments created (a discussion's opening comment included).
    pub comments: u64,
    /// Ops committed (every kind).
    pub ops: u64,
    /// Connections admitted (a `welcome` was sent).
    pub connections: u64,
}

impl UsageCounts {
    /// `self - earlier`, field by field (counters only grow; saturating all the same).
    pub fn since(&self, earlier: &UsageCounts) -> UsageCounts {
        UsageCounts {
            frames: self.frames.saturating_sub(earlier.frames),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            discussions: self.discussions.saturating_sub(earlier.discussions),
            comments: self.comments.saturating_sub(earlier.comments),
            ops: self.ops.saturating_sub(earlier.ops),
            connections: self.connections.saturating_sub(earlier.connections),
        }
    }

    /// Whether nothing was counted.
    pub fn is_zero(&self) -> bool {
        *self == UsageCounts::default()
    }
}

/// One tenant's counters to add to one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayDelta {
    /// The tenant.
    pub tenant: TenantId,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// What to add.
    pub counts: UsageCounts,
}

/// The most connections one node had open at once for a tenant during one minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewerPeak {
    /// The tenant.
    pub tenant: TenantId,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Minute of the day (0..1440).
    pub minute: u32,
    /// Connections open at once (the store keeps the highest value it is given).
    pub viewers: u64,
}

/// What one node flushes at once, in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageBatch {
    /// The node's name: its viewer peaks are kept apart from other nodes' and summed on read.
    pub node: String,
    /// Counters to add.
    pub days: Vec<DayDelta>,
    /// Per-minute peaks to raise.
    pub peaks: Vec<ViewerPeak>,
}

impl UsageBatch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty() && self.peaks.is_empty()
    }
}

/// A tenant's usage on one day, as read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayUsage {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Every node's counters, added up.
    pub counts: UsageCounts,
    /// The day's highest per-minute sum over nodes of each node's peak in that minute.
    pub peak_viewers: u64,
}

/// Merges counters read per day with peaks read per day into one row per day, in day order.
pub fn merge_days(counts: Vec<(String, UsageCounts)>, peaks: Vec<(String, u64)>) -> Vec<DayUsage> {
    let mut days: std::collections::BTreeMap<String, DayUsage> = counts
        .into_iter()
        .map(|(day, counts)| {
            let usage = DayUsage {
                day: day.clone(),
                counts,
                peak_viewers: 0,
            };
            (day, usage)
        })
        .collect();
    for (day, peak) in peaks {
        days.entry(day.clone())
            .or_insert_with(|| DayUsage {
                day,
                ..DayUsage::default()
            })
            .peak_viewers = peak;
    }
    days.into_values().collect()
}
