//! Locks and bans: an image locked read-only takes ops from moderators only, and a banned
//! person's ops are refused on every image of the tenant. Both are rows in the store
//! (`image_locks`, `bans`), read inside every commit's transaction ([`check`]), so they hold
//! on every server sharing the database from the moment they are written, for connections
//! already open too. Changing them does not touch any image's log: open widgets learn of a
//! lock from a `lock` frame the server publishes (see `moderation` in the server), and of a
//! ban from the refusal of their next op.

use image_chat_protocol::{ImageId, PageId, SubjectKind, TenantId, User};

use super::super::{
    BanEntry, ImageEntry, ImageKey, LockEntry, Page, PageEntry, Rejection, StoreError,
};
use super::tx::{ReadTx, WriteTx};

/// Refuses `actor`'s op on `image` when the tenant bans them, or when the image is locked and
/// they are not a moderator.
pub async fn check<T: ReadTx>(
    tx: &mut T,
    image: &ImageKey,
    actor: &User,
) -> Result<(), StoreError> {
    let restrictions = tx.restrictions(image, &actor.id).await?;
    if restrictions.banned {
        return Err(Rejection::Banned.into());
    }
    if restrictions.locked && !actor.is_moderator {
        return Err(Rejection::ImageLocked.into());
    }
    Ok(())
}

/// Locks or unlocks `image`; whether that changed anything.
pub async fn set_locked<T: WriteTx>(
    tx: &mut T,
    image: &ImageKey,
    locked: bool,
    now_ms: u64,
) -> Result<bool, StoreError> {
    if locked {
        tx.insert_lock(image, now_ms).await
    } else {
        tx.delete_lock(image).await
    }
}

/// Whether `image` is locked.
pub async fn locked<T: ReadTx>(tx: &mut T, image: &ImageKey) -> Result<bool, StoreError> {
    // No user id is ever empty, so this asks only about the lock.
    Ok(tx.restrictions(image, "").await?.locked)
}

/// The tenant's locks, newest first.
pub async fn locks<T: ReadTx>(
    tx: &mut T,
    tenant: &TenantId,
    page: Page<(u64, ImageId)>,
) -> Result<Vec<LockEntry>, StoreError> {
    let page = Page {
        after: page
            .after
            .map(|(at, image)| (at, image.as_str().to_owned())),
        limit: page.limit,
    };
    tx.locks(tenant.as_str(), &page).await
}

/// Bans `user_id` on the tenant; whether the ban is new.
pub async fn ban<T: WriteTx>(
    tx: &mut T,
    tenant: &TenantId,
    user_id: &str,
    reason: &str,
    now_ms: u64,
) -> Result<bool, StoreError> {
    tx.insert_ban(tenant.as_str(), user_id, reason, now_ms)
        .await
}

/// Lifts a ban; whether there was one.
pub async fn unban<T: WriteTx>(
    tx: &mut T,
    tenant: &TenantId,
    user_id: &str,
) -> Result<bool, StoreError> {
    tx.delete_ban(tenant.as_str(), user_id).await
}

/// The tenant's bans, newest first.
pub async fn bans<T: ReadTx>(
    tx: &mut T,
    tenant: &TenantId,
    page: Page<(u64, String)>,
) -> Result<Vec<BanEntry>, StoreError> {
    tx.bans(tenant.as_str(), &page).await
}

/// The tenant's images, newest first.
pub async fn images<T: ReadTx>(
    tx: &mut T,
    tenant: &TenantId,
    page: Page<i64>,
) -> Result<Vec<ImageEntry>, StoreError> {
    Ok(tx
        .images(tenant.as_str(), SubjectKind::Image, &page)
        .await?
        .into_iter()
        .map(|entry| entry.map_id(ImageId::new))
        .collect())
}

/// The tenant's pages (text mode), newest first.
pub async fn pages<T: ReadTx>(
    tx: &mut T,
    tenant: &TenantId,
    page: Page<i64>,
) -> Result<Vec<PageEntry>, StoreError> {
    Ok(tx
        .images(tenant.as_str(), SubjectKind::Page, &page)
        .await?
        .into_iter()
        .map(|entry| entry.map_id(PageId::new))
        .collect())
}
