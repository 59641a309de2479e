//! Moderation actions shared by the admin API and moderators' widgets, so both take the same
//! path: locking an image (the store, then a `lock` frame to every viewer on every node through
//! the broker) and the moderator identity the admin API's changes are made as.
//!
//! Deletions need nothing of their own: they are ops committed by a moderator through
//! [`App::commit`], exactly like a widget's. Bans and locks are enforced by the store inside
//! every commit (`store::rules::moderation`), which is what makes them hold at once on every
//! node and on connections already open.

use image_chat_protocol::{Lock, ServerMessage, User};

use crate::app::App;
use crate::broker::Published;
use crate::session::now_ms;
use crate::store::{ImageKey, StoreError};

/// Locks `image` read-only or unlocks it; when that changed anything, tells every viewer (on
/// every node) with a `lock` frame. Whether it changed anything.
pub async fn set_lock(app: &App, image: &ImageKey, locked: bool) -> Result<bool, StoreError> {
    let changed = app.store.set_locked(image, locked, now_ms()).await?;
    if changed {
        publish_lock(app, image, locked).await;
    }
    Ok(changed)
}

/// Sends the image's lock state to its viewers. Not an event of its log: a viewer that misses
/// it (disconnected meanwhile) reads the state in its next `welcome`.
async fn publish_lock(app: &App, image: &ImageKey, locked: bool) {
    let frame = ServerMessage::Lock(Lock { locked }).to_json();
    if let Err(err) = app
        .broker
        .publish(image, Published::state(frame.into()))
        .await
    {
        // Stored and in force (the store refuses ops); open widgets learn it at their next op
        // (`image-locked`) or reconnect.
        tracing::warn!(%err, "could not publish a lock change");
    }
}

/// The author of the admin API's changes: a moderator (the API key is the site owner's), with
/// an id no person can have (`admin:` is neither `anon:` nor `sso:`).
pub fn admin_actor() -> User {
    User {
        id: "admin:api".into(),
        name: "Moderator".into(),
        avatar_url: None,
        is_moderator: true,
        signed_in: true,
    }
}
