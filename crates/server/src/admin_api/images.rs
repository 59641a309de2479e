//! Listing a tenant's images (newest first, paged): every image something was ever written
//! on, with how many discussions it holds, its weight, its latest activity and its lock.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::TenantAdmin;
use super::error::{ApiError, ApiQuery, ApiResult, ErrorBody};
use super::paging::PageQuery;
use crate::app::App;
use crate::store::{ImageEntry, Page};

/// One image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    /// The image id.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
    /// Discussions it holds.
    #[schema(example = 12)]
    pub chats: u64,
    /// Bytes its discussions weigh (what the per-image limit counts).
    #[schema(example = 5310)]
    pub bytes: u64,
    /// When its latest comment was written or edited (ms since the Unix epoch); absent when it
    /// holds none.
    #[schema(example = 1_765_015_260_000_u64)]
    pub last_activity_at: Option<u64>,
    /// Locked read-only.
    pub locked: bool,
}

impl From<ImageEntry> for ImageSummary {
    fn from(entry: ImageEntry) -> Self {
        Self {
            image: entry.image.as_str().to_owned(),
            chats: entry.chats,
            bytes: entry.bytes,
            last_activity_at: entry.last_activity_at,
            locked: entry.locked,
        }
    }
}

/// A page of images.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePage {
    /// Newest (first written) first.
    pub images: Vec<ImageSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// List the tenant's images, newest first.
#[utoipa::path(
    get,
    path = "/admin/api/v1/tenants/{tenant}/images",
    tag = "images",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), PageQuery),
    responses(
        (status = 200, description = "A page of images, newest first", body = ImagePage,
         example = json!({"images": [{"image": "https://acme.example/photos/harbour.jpg", "chats": 12, "bytes": 5310, "lastActivityAt": 1_765_015_260_000_u64, "locked": false}], "nextCursor": "1842"})),
        (status = 400, description = "A limit over 200, or a cursor this API did not return", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    )
)]
pub async fn list_images(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<ImagePage>> {
    let limit = page.limit()?;
    let after = page.cursor(|raw| raw.parse::<i64>().ok().filter(|row| *row > 0))?;
    // One more than asked: whether there is a next page.
    let mut entries = app
        .store
        .images(
            admin.id(),
            Page {
                after,
                limit: limit + 1,
            },
        )
        .await
        .map_err(|err| ApiError::store(&err))?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_cursor = more
        .then(|| entries.last().map(|e| e.row.to_string()))
        .flatten();
    Ok(Json(ImagePage {
        images: entries.into_iter().map(ImageSummary::from).collect(),
        next_cursor,
    }))
}
