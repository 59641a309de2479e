//! Who is viewing each image, behind the [`Presence`] trait: connections (checked against the
//! viewer limits when a session joins) and people (the live count every viewer is shown).
//!
//! An implementation publishes every change of an image's count as a `presence` frame on the
//! image's topic, so each viewer's count follows joins and leaves; a session only joins,
//! shows the count it is given in its `welcome`, and leaves.
//!
//! Implementations: [`memory::MemoryPresence`] (this process only, the default) and
//! [`redis::RedisPresence`] (the people of every node, each node's entries expiring unless it
//! refreshes them, so a dead node's viewers leave the count by themselves; it also sums each
//! tenant's connections over the nodes for the admin API). Both count with
//! [`counts::PresenceCounts`] (pure logic); connection limits stay per node.

pub mod counts;
pub mod memory;
pub mod redis;

use std::net::IpAddr;

use async_trait::async_trait;
use image_chat_protocol::TenantId;

use crate::store::ImageKey;

/// One connection viewing an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Viewer {
    /// The person's id (`sso:…` or `anon:…`).
    pub person: String,
    /// Anonymous (counted under the per-address cap) or signed (always counted).
    pub anonymous: bool,
    /// The client address (`None`: unknown, no per-address accounting).
    pub ip: Option<IpAddr>,
}

/// Why a viewer was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// The image has its maximum of connections.
    Image,
    /// The viewer's address has its maximum of connections on this image.
    Address,
}

/// Limits checked at join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewerLimits {
    /// Connections on the image (0: unlimited).
    pub per_image: u32,
    /// Connections on the image from one address (0: unlimited).
    pub per_ip: u32,
}

/// Viewers per image and their live count.
#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Lets `viewer` in unless a limit is reached; returns the image's live count to show it.
    /// The new count is published to the image's viewers.
    async fn join(
        &self,
        image: &ImageKey,
        viewer: &Viewer,
        limits: ViewerLimits,
    ) -> Result<u32, Full>;

    /// Counts `viewer` (who joined `image`) out and publishes the new count.
    async fn leave(&self, image: &ImageKey, viewer: &Viewer);

    /// The image's current live count.
    async fn count(&self, image: &ImageKey) -> u32;

    /// `tenant`'s open connections over every node, given this node's own (`here`, exact):
    /// what the other nodes last reported is added (the admin API's live count). With one
    /// node there is nothing to add.
    async fn tenant_connections(&self, _tenant: &TenantId, here: u64) -> u64 {
        here
    }
}
