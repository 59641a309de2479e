//! The in-process [`Presence`]: counts of this server's viewers only, each change published at
//! once (the batching broker coalesces a burst of them into the latest count). Right for a
//! single server.

use std::sync::Arc;

use async_trait::async_trait;

use super::counts::PresenceCounts;
use super::{Full, Presence, Viewer, ViewerLimits};
use crate::app::publish_presence;
use crate::broker::Broker;
use crate::store::ImageKey;

/// In-process [`Presence`].
pub struct MemoryPresence {
    counts: PresenceCounts,
    /// Where count changes are published.
    broker: Arc<dyn Broker>,
}

impl MemoryPresence {
    /// Counts at most `counted_anonymous_per_ip` anonymous people per address and image (0: all),
    /// publishing changes through `broker`.
    pub fn new(counted_anonymous_per_ip: u32, broker: Arc<dyn Broker>) -> Self {
        Self {
            counts: PresenceCounts::new(counted_anonymous_per_ip),
            broker,
        }
    }

    /// Connections on `image` here (for tests and metrics).
    pub fn connections(&self, image: &ImageKey) -> u32 {
        self.counts.connections(image)
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn join(
        &self,
        image: &ImageKey,
        viewer: &Viewer,
        limits: ViewerLimits,
    ) -> Result<u32, Full> {
        let online = self.counts.try_join(image, viewer, limits)?;
        publish_presence(self.broker.as_ref(), image, online).await;
        Ok(online)
    }

    async fn leave(&self, image: &ImageKey, viewer: &Viewer) {
        let online = self.counts.leave(image, viewer);
        publish_presence(self.broker.as_ref(), image, online).await;
    }

    async fn count(&self, image: &ImageKey) -> u32 {
        self.counts.count(image)
    }
}
