//! Size limits and quotas: how much one image, one tenant and the whole store may hold, in
//! bytes as [`super::size`] weighs them, kept exact by every commit.
//!
//! A commit that makes a total grow is checked against it; one that shrinks it (an edit that
//! shortens a comment, a delete) always passes, so an image or tenant over its limit (after the
//! limit was lowered) can shrink. The totals live in the database (`images.bytes`, `usage`) and
//! are read and changed in the commit's transaction, like authorship.
//!
//! Across servers on one PostgreSQL database the image's total is exact (its row is locked by
//! the commit). A tenant's and the server's totals are read without a lock: locking them would
//! make every commit of a tenant wait for the one before it, across the whole cluster, which is
//! what scaling out must avoid. Commits on *other* images committing at the same moment can
//! therefore pass a quota together, by at most what they add (one op each); the next commit
//! after them is refused. See docs/ARCHITECTURE.md, "Storage".

use super::super::{CommitLimits, Rejection, StoreError, Usage};
use super::ops::OpContext;
use super::tx::{ReadTx, WriteTx};

impl CommitLimits {
    /// Which byte limit, if any, a commit that changes the image by `delta` bytes (positive:
    /// it grows) breaks, given the totals before it.
    pub fn check_bytes(&self, delta: i64, usage: Usage) -> Result<(), Rejection> {
        if delta <= 0 {
            return Ok(());
        }
        let grown = |before: u64| before.saturating_add(delta.unsigned_abs());
        let over = |limit: u64, before: u64| limit > 0 && grown(before) > limit;
        if over(self.max_bytes_per_image, usage.image) {
            return Err(Rejection::ImageFull);
        }
        if over(self.max_bytes_per_tenant, usage.tenant) || over(self.max_bytes_total, usage.total)
        {
            return Err(Rejection::QuotaExceeded);
        }
        Ok(())
    }
}

/// Refuses a change of `delta` bytes to the image that would break a byte limit.
pub async fn check_bytes<T: ReadTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    delta: i64,
) -> Result<(), StoreError> {
    if delta <= 0 {
        return Ok(());
    }
    let tenant = if cx.limits.max_bytes_per_tenant > 0 {
        tx.tenant_bytes(cx.tenant).await?
    } else {
        0
    };
    let total = if cx.limits.max_bytes_total > 0 {
        tx.total_bytes().await?
    } else {
        0
    };
    let usage = Usage {
        image: cx.image.bytes,
        tenant,
        total,
    };
    Ok(cx.limits.check_bytes(delta, usage)?)
}

/// Adds `delta` bytes to the image's and the tenant's totals.
pub async fn add_bytes<T: WriteTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    delta: i64,
) -> Result<(), StoreError> {
    if delta == 0 {
        return Ok(());
    }
    tx.add_image_bytes(cx.image.id, delta).await?;
    tx.add_tenant_bytes(cx.tenant, cx.image.id, delta).await
}

/// Bytes stored by `image` (0 if never written), its tenant and the whole store.
pub async fn usage<T: ReadTx>(
    tx: &mut T,
    image: &super::super::ImageKey,
) -> Result<Usage, StoreError> {
    let bytes = tx.image(image).await?.map_or(0, |r| r.bytes);
    Ok(Usage {
        image: bytes,
        tenant: tx.tenant_bytes(image.tenant.as_str()).await?,
        total: tx.total_bytes().await?,
    })
}
