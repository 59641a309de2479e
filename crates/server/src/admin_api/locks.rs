//! Locking an image read-only and unlocking it ([`moderation::set_lock`]: the store, then a
//! `lock` frame to every open widget on every node; the same path as a moderator's `set-lock`),
//! and listing the tenant's locked images.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use image_chat_protocol::ImageId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::TenantAdmin;
use super::chats::{ImageQuery, image_key};
use super::error::{ApiError, ApiJson, ApiQuery, ApiResult, ErrorBody};
use super::paging::PageQuery;
use crate::app::App;
use crate::moderation;
use crate::store::Page;

/// The body of `PUT …/locks`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockRequest {
    /// The image to lock.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
}

/// An image's lock state after a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockState {
    /// The image.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
    /// Whether it is locked now.
    pub locked: bool,
    /// Whether this request changed it (false: it already was).
    pub changed: bool,
}

/// One locked image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockView {
    /// The image.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
    /// When it was locked (ms since the Unix epoch).
    #[schema(example = 1_765_015_300_000_u64)]
    pub locked_at: u64,
}

/// A page of locked images.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockPage {
    /// Most recently locked first.
    pub locks: Vec<LockView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Lock an image read-only: from now on only moderators may change its discussions, and open
/// widgets switch to read-only at once.
#[utoipa::path(
    put,
    path = "/admin/api/v1/tenants/{tenant}/locks",
    tag = "locks",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme")),
    request_body(content = LockRequest, example = json!({"image": "https://acme.example/photos/harbour.jpg"})),
    responses(
        (status = 200, description = "Locked; open widgets received `{\"type\":\"lock\",\"locked\":true}`", body = LockState,
         example = json!({"image": "https://acme.example/photos/harbour.jpg", "locked": true, "changed": true})),
        (status = 400, description = "Invalid image id or malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
    )
)]
pub async fn lock(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<LockRequest>,
) -> ApiResult<Json<LockState>> {
    set(&app, &admin, &body.image, true).await
}

/// Unlock an image: open widgets get their controls back at once.
#[utoipa::path(
    delete,
    path = "/admin/api/v1/tenants/{tenant}/locks",
    tag = "locks",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), ImageQuery),
    responses(
        (status = 200, description = "Unlocked (or was not locked: `changed` false)", body = LockState,
         example = json!({"image": "https://acme.example/photos/harbour.jpg", "locked": false, "changed": true})),
        (status = 400, description = "Invalid image id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
    )
)]
pub async fn unlock(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<ImageQuery>,
) -> ApiResult<Json<LockState>> {
    set(&app, &admin, &query.image, false).await
}

async fn set(
    app: &App,
    admin: &TenantAdmin,
    image: &str,
    locked: bool,
) -> ApiResult<Json<LockState>> {
    let key = image_key(admin, image)?;
    let changed = moderation::set_lock(app, &key, locked)
        .await
        .map_err(|err| ApiError::store(&err))?;
    tracing::info!(tenant = %key.tenant, locked, changed, "admin API lock");
    Ok(Json(LockState {
        image: key.id().to_owned(),
        locked,
        changed,
    }))
}

/// List the tenant's locked images, most recently locked first.
#[utoipa::path(
    get,
    path = "/admin/api/v1/tenants/{tenant}/locks",
    tag = "locks",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), PageQuery),
    responses(
        (status = 200, description = "A page of locked images", body = LockPage,
         example = json!({"locks": [{"image": "https://acme.example/photos/harbour.jpg", "lockedAt": 1_765_015_300_000_u64}], "nextCursor": null})),
        (status = 400, description = "A limit over 200, or a cursor this API did not return", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
    )
)]
pub async fn list_locks(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<LockPage>> {
    let limit = page.limit()?;
    let after = page.cursor(|raw| {
        let (at, image) = raw.split_once('.')?;
        let image = ImageId::new(image);
        image.validate().ok()?;
        Some((at.parse::<u64>().ok()?, image))
    })?;
    let mut locks = app
        .store
        .locks(
            admin.id(),
            Page {
                after,
                limit: limit + 1,
            },
        )
        .await
        .map_err(|err| ApiError::store(&err))?;
    let more = locks.len() > limit as usize;
    locks.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            locks
                .last()
                .map(|l| format!("{}.{}", l.locked_at, l.image.as_str()))
        })
        .flatten();
    Ok(Json(LockPage {
        locks: locks
            .into_iter()
            .map(|l| LockView {
                image: l.image.as_str().to_owned(),
                locked_at: l.locked_at,
            })
            .collect(),
        next_cursor,
    }))
}
