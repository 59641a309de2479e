//! Turning the in-memory meters into rows of the store: every interval and on shutdown, the
//! growth of each tenant's counters since the last successful flush is added to the current
//! UTC day, and the peaks of open connections sampled since are raised per minute.
//!
//! # Counters across nodes and restarts
//!
//! A flush adds deltas (`frames = frames + Δ`), never writes totals, so any number of nodes
//! add up, and a failed flush (the database unreachable) loses nothing: the next one carries
//! the delta since the last *successful* one. What a node had not flushed when it was killed
//! (SIGKILL, power loss: at most one interval) is lost; a clean stop flushes.
//!
//! # Peak concurrent viewers across nodes
//!
//! The day's peak is not the sum of each node's daily peak (their peaks need not coincide: two
//! nodes each peaking at 100 at different hours never had 200), nor the largest node's peak
//! (two nodes at 100 at once had 200). Each node samples its own peak per minute and the store
//! keeps one row per (tenant, day, minute, node), raised to the highest value the node reports
//! (`GREATEST`, so re-sending is harmless); a day's peak is the highest per-minute **sum over
//! nodes**. On one node that is exactly its peak. On several it is exact when their peaks fall
//! in the same minute and otherwise an upper bound by at most the connections that came and
//! went within one minute. A node's rows are named by `--node-name` (random per process
//! without it, in which case a restart within a minute adds the old and the new process's
//! peaks of that minute; with it, the higher of the two counts).

use std::collections::HashMap;

use image_chat_protocol::TenantId;

use super::Meters;
use super::calendar::{day_of, minute_of_day};
use crate::store::{DayDelta, Store, StoreError, UsageBatch, UsageCounts, ViewerPeak};

/// The flush state of one node.
#[derive(Debug)]
pub struct Flusher {
    node: String,
    /// Each tenant's totals as of the last successful flush.
    flushed: HashMap<TenantId, UsageCounts>,
    /// Peaks sampled and not yet known to be stored, per (tenant, day, minute).
    peaks: HashMap<(TenantId, String, u32), u64>,
}

impl Flusher {
    /// A flusher for the node named `node`.
    pub fn new(node: String) -> Self {
        Self {
            node,
            flushed: HashMap::new(),
            peaks: HashMap::new(),
        }
    }

    /// Names the node's rows `node` from now on (`--node-name`: a name that stays the same
    /// across restarts keeps a restarted node's peak from adding to its own earlier one).
    pub fn rename(&mut self, node: String) {
        self.node = node;
    }

    /// Samples `meters` at `now_ms`: the batch to write and the totals it brings each tenant
    /// to (pass both back to [`Flusher::stored`] once the batch is committed).
    pub fn sample(
        &mut self,
        meters: &Meters,
        now_ms: u64,
    ) -> (UsageBatch, Vec<(TenantId, UsageCounts)>) {
        let day = day_of(now_ms);
        let minute = minute_of_day(now_ms);
        let mut batch = UsageBatch {
            node: self.node.clone(),
            ..UsageBatch::default()
        };
        let mut totals = Vec::new();
        for (tenant, meter) in meters.all() {
            let peak = meter.take_peak();
            if peak > 0 {
                let slot = self
                    .peaks
                    .entry((tenant.clone(), day.clone(), minute))
                    .or_default();
                *slot = (*slot).max(peak);
            }
            let now = meter.totals();
            let before = self.flushed.get(&tenant).copied().unwrap_or_default();
            let delta = now.since(&before);
            if !delta.is_zero() {
                batch.days.push(DayDelta {
                    tenant: tenant.clone(),
                    day: day.clone(),
                    counts: delta,
                });
                totals.push((tenant, now));
            }
        }
        batch.peaks = self
            .peaks
            .iter()
            .map(|((tenant, day, minute), viewers)| ViewerPeak {
                tenant: tenant.clone(),
                day: day.clone(),
                minute: *minute,
                viewers: *viewers,
            })
            .collect();
        (batch, totals)
    }

    /// Records that `batch` (sampled at `now_ms`) is in the store.
    pub fn stored(
        &mut self,
        batch: &UsageBatch,
        totals: Vec<(TenantId, UsageCounts)>,
        now_ms: u64,
    ) {
        self.flushed.extend(totals);
        // The current minute's peak may still rise: keep it (re-sent, raised, harmless).
        let (day, minute) = (day_of(now_ms), minute_of_day(now_ms));
        for peak in &batch.peaks {
            if peak.day != day || peak.minute != minute {
                self.peaks
                    .remove(&(peak.tenant.clone(), peak.day.clone(), peak.minute));
            }
        }
    }

    /// Samples `meters` and writes the batch to `store`; on failure nothing is marked stored,
    /// so the next flush carries it.
    pub async fn flush(
        &mut self,
        meters: &Meters,
        store: &dyn Store,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let (batch, totals) = self.sample(meters, now_ms);
        if batch.is_empty() {
            return Ok(());
        }
        store.add_usage(&batch).await?;
        self.stored(&batch, totals, now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_796_553_000_000; // 2026-12-06T10:30:00Z

    #[test]
    fn deltas_since_the_last_successful_flush_and_peaks_per_minute() {
        let meters = Meters::default();
        let acme = TenantId::new("acme");
        let meter = meters.tenant(&acme);
        let mut flusher = Flusher::new("n1".into());
        meter.sent(100);
        let a = meter.connect();
        let b = meter.connect();
        drop(b);
        let (batch, totals) = flusher.sample(&meters, T0);
        assert_eq!(batch.days.len(), 1);
        assert_eq!(batch.days[0].day, "2026-12-06");
        assert_eq!(batch.days[0].counts.frames, 1);
        assert_eq!(batch.days[0].counts.connections, 2);
        assert_eq!(batch.peaks[0].viewers, 2);
        assert_eq!(batch.peaks[0].minute, 630);
        // Not stored (the database was down): the next sample carries everything again.
        meter.sent(1);
        let (batch, totals2) = flusher.sample(&meters, T0 + 1_000);
        assert_eq!(batch.days[0].counts.frames, 2);
        assert_eq!(batch.days[0].counts.bytes, 101);
        // The minute's peak stays the highest sampled.
        assert_eq!(batch.peaks[0].viewers, 2);
        drop(totals);
        flusher.stored(&batch, totals2, T0 + 1_000);
        // Nothing new: only the current minute's peak (1 open) is re-sent.
        let (batch, _) = flusher.sample(&meters, T0 + 2_000);
        assert!(batch.days.is_empty());
        assert_eq!(batch.peaks.len(), 1);
        // A minute later: that minute's peak is stored and forgotten once the batch is.
        let (batch, totals) = flusher.sample(&meters, T0 + 61_000);
        assert_eq!(batch.peaks.len(), 2);
        flusher.stored(&batch, totals, T0 + 61_000);
        let (batch, _) = flusher.sample(&meters, T0 + 62_000);
        assert_eq!(batch.peaks.len(), 1);
        assert_eq!(batch.peaks[0].minute, 631);
        drop(a);
    }
}
