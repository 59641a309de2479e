//! Usage per tenant, counted in memory as the server sends and receives, and flushed to the
//! store per UTC day ([`flush`]).
//!
//! What is counted (docs/OPERATIONS.md#usage): every text frame handed to a widget's socket
//! (`pubSubMessageCount`) and its bytes (`pubSubBandwidth`), discussions and comments created,
//! ops committed, connections admitted, and the highest number of connections open at once.
//!
//! The hot path is a session sending a frame: it holds its tenant's [`TenantMeter`] (looked up
//! once, when the session is admitted) and adds to two relaxed atomic counters — no lock, no
//! map lookup, no store write. The counters only ever grow (they are also what `/metrics`
//! exports); the flusher turns them into per-day deltas.
//!
//! Open connections are a gauge per tenant with a "highest since last looked" companion, which
//! the flusher samples into per-minute peaks ([`flush`] explains how peaks add up across nodes).

pub mod calendar;
pub mod flush;
pub mod metered;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use image_chat_protocol::{ChatChange, Event, TenantId};

use crate::store::UsageCounts;

/// One tenant's counters on this node, since the process started.
#[derive(Debug, Default)]
pub struct TenantMeter {
    frames: AtomicU64,
    bytes: AtomicU64,
    discussions: AtomicU64,
    comments: AtomicU64,
    ops: AtomicU64,
    connections: AtomicU64,
    /// Connections open now.
    open: AtomicU64,
    /// The most connections open at once since the flusher last sampled it.
    peak: AtomicU64,
}

impl TenantMeter {
    /// A frame of `bytes` was handed to a widget's socket.
    #[inline]
    pub fn sent(&self, bytes: usize) {
        self.sent_many(1, bytes);
    }

    /// `frames` frames of `bytes` in all were sent (an image's pump counts a message's
    /// deliveries at once).
    pub fn sent_many(&self, frames: u64, bytes: usize) {
        self.frames.fetch_add(frames, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// An op was committed as `event`.
    pub fn committed(&self, event: &Event) {
        self.ops.fetch_add(1, Relaxed);
        match event {
            Event::NewImageChat(_) | Event::NewTextChat(_) => {
                // A discussion opens with its first comment.
                self.discussions.fetch_add(1, Relaxed);
                self.comments.fetch_add(1, Relaxed);
            }
            Event::ImageChatUpdated(update) | Event::UpdatedTextChat(update) => {
                if matches!(update.change, ChatChange::CommentAdded { .. }) {
                    self.comments.fetch_add(1, Relaxed);
                }
            }
            Event::DeletedImageChat(_) | Event::DeletedTextChat(_) => {}
        }
    }

    /// A connection was admitted; it counts as open until the guard is dropped.
    pub fn connect(self: &Arc<Self>) -> OpenConnection {
        self.connections.fetch_add(1, Relaxed);
        let open = self.open.fetch_add(1, Relaxed) + 1;
        self.peak.fetch_max(open, Relaxed);
        OpenConnection(Arc::clone(self))
    }

    /// Everything counted so far (monotonic; `open` is the current gauge).
    pub fn totals(&self) -> UsageCounts {
        UsageCounts {
            frames: self.frames.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            discussions: self.discussions.load(Relaxed),
            comments: self.comments.load(Relaxed),
            ops: self.ops.load(Relaxed),
            connections: self.connections.load(Relaxed),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Relaxed)
    }

    /// The most connections open at once since the previous call (at least those open now),
    /// and restarts the measurement from now.
    fn take_peak(&self) -> u64 {
        let now = self.open.load(Relaxed);
        self.peak.swap(now, Relaxed).max(now)
    }
}

/// An admitted connection, counted out of its tenant's open connections when dropped.
#[derive(Debug)]
pub struct OpenConnection(Arc<TenantMeter>);

impl OpenConnection {
    /// The tenant's meter.
    pub fn meter(&self) -> &Arc<TenantMeter> {
        &self.0
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

/// Every tenant's meter on this node. A tenant's meter is created on first use and kept for
/// the process's life (a few hundred bytes per tenant that ever connected).
#[derive(Debug, Default)]
pub struct Meters {
    tenants: RwLock<HashMap<TenantId, Arc<TenantMeter>>>,
}

impl Meters {
    /// `tenant`'s meter (a read lock and a lookup; sessions call it once, ops once each).
    pub fn tenant(&self, tenant: &TenantId) -> Arc<TenantMeter> {
        if let Ok(map) = self.tenants.read()
            && let Some(meter) = map.get(tenant)
        {
            return Arc::clone(meter);
        }
        match self.tenants.write() {
            Ok(mut map) => Arc::clone(map.entry(tenant.clone()).or_default()),
            // A panic while inserting: count into a meter of its own rather than fail a
            // connection over bookkeeping.
            Err(_) => Arc::default(),
        }
    }

    /// Every tenant's meter, in no particular order.
    pub fn all(&self) -> Vec<(TenantId, Arc<TenantMeter>)> {
        match self.tenants.read() {
            Ok(map) => map
                .iter()
                .map(|(id, meter)| (id.clone(), Arc::clone(meter)))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// `tenant`'s connections open now on this node (the admin API's live count; a tenant
    /// that never connected has no meter and none open).
    pub fn open_for(&self, tenant: &TenantId) -> u64 {
        match self.tenants.read() {
            Ok(map) => map.get(tenant).map_or(0, |meter| meter.open()),
            Err(_) => 0,
        }
    }

    /// Connections open now over every tenant.
    pub fn open(&self) -> u64 {
        self.all().iter().map(|(_, meter)| meter.open()).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use image_chat_protocol::TenantId;

    use super::*;

    #[test]
    fn frames_connections_and_peaks_are_counted() {
        let meters = Meters::default();
        let acme = TenantId::new("acme");
        let meter = meters.tenant(&acme);
        assert!(Arc::ptr_eq(&meter, &meters.tenant(&acme)));
        meter.sent(10);
        meter.sent(5);
        let a = meter.connect();
        let b = meter.connect();
        let c = meter.connect();
        drop(b);
        assert_eq!(meter.open(), 2);
        assert_eq!(meters.open_for(&acme), 2, "the admin API's live count");
        assert_eq!(meters.open_for(&TenantId::new("never-connected")), 0);
        assert_eq!(meters.all().len(), 1, "asking creates no meter");
        assert_eq!(meter.take_peak(), 3);
        // The next sample starts from what is open now.
        assert_eq!(meter.take_peak(), 2);
        drop((a, c));
        assert_eq!(meter.take_peak(), 2);
        assert_eq!(meter.take_peak(), 0);
        let totals = meter.totals();
        assert_eq!(
            (totals.frames, totals.bytes, totals.connections),
            (2, 15, 3)
        );
        assert_eq!(meters.open(), 0);
    }
}
