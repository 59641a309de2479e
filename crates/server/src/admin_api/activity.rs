//! What happened lately on a tenant's images (`GET …/activity`): the discussions with the most
//! recent activity over all its images, newest first, and its busiest images (most
//! discussions, with how many people view each now). What the `/admin` dashboard shows under "Recent activity" and "Busiest
//! images", in one request instead of one per image.
//!
//! It reads the store's image list (at most [`MAX_SCANNED_IMAGES`], newest first) and the
//! snapshots of the images with the latest activity, so its cost is bounded whatever the
//! tenant holds. A tenant with more images than that sees the activity and ranking of its
//! newest ones (the response says so in `scannedAll`).

use std::cmp::Reverse;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::TenantAdmin;
use super::chats::{ChatSummary, current_chats, image_key, page_of_chats};
use super::error::{ApiError, ApiErrorCode, ApiQuery, ApiResult, ErrorBody};
use super::images::ImageSummary;
use super::paging::{MAX_LIMIT, PageQuery};
use crate::app::App;
use crate::store::{ImageEntry, Page};

/// Most images read from the store's list per request.
pub const MAX_SCANNED_IMAGES: usize = 1000;
/// Discussions listed when the request does not say.
pub const DEFAULT_RECENT: u32 = 20;
/// Most discussions one request lists.
pub const MAX_RECENT: u32 = 100;
/// Busiest images listed.
pub const BUSIEST: usize = 10;

/// `?limit=…`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// Discussions to list, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, example = 20)]
    pub limit: Option<u32>,
}

/// A discussion with recent activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentChat {
    /// The image it is on.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
    /// Whether that image is locked read-only.
    pub image_locked: bool,
    /// The discussion.
    pub chat: ChatSummary,
}

/// One of the busiest images.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BusyImage {
    /// The image id.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
    /// Discussions it holds.
    #[schema(example = 12)]
    pub chats: u64,
    /// Bytes its discussions weigh.
    #[schema(example = 5310)]
    pub bytes: u64,
    /// When its latest comment was written or edited (ms since the Unix epoch).
    #[schema(example = 1_765_015_260_000_u64)]
    pub last_activity_at: Option<u64>,
    /// Locked read-only.
    pub locked: bool,
    /// Its live count now: the people its viewers are shown (over every node when presence
    /// is shared through Redis).
    #[schema(example = 4)]
    pub viewers: u32,
}

/// Recent discussions and busiest images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// Discussions, latest activity (opening, reply or edit) first.
    pub recent: Vec<RecentChat>,
    /// The images holding the most discussions (then the most bytes), at most 10.
    pub busiest: Vec<BusyImage>,
    /// Whether every image of the tenant was looked at (false: only the newest 1,000).
    pub scanned_all: bool,
}

/// The busiest of `images`: most discussions, then most bytes, then latest activity.
pub fn busiest(images: &[ImageEntry]) -> Vec<&ImageEntry> {
    let mut ranked: Vec<&ImageEntry> = images.iter().filter(|i| i.chats > 0).collect();
    ranked.sort_by_key(|i| {
        (
            Reverse(i.chats),
            Reverse(i.bytes),
            Reverse(i.last_activity_at),
        )
    });
    ranked.truncate(BUSIEST);
    ranked
}

/// The images worth reading for the `limit` most recent discussions: those with the latest
/// activity (no other image can hold one of them).
pub fn most_recently_active(images: &[ImageEntry], limit: usize) -> Vec<&ImageEntry> {
    let mut active: Vec<&ImageEntry> = images
        .iter()
        .filter(|i| i.last_activity_at.is_some())
        .collect();
    active.sort_by_key(|i| Reverse(i.last_activity_at));
    active.truncate(limit);
    active
}

/// Keeps the `limit` discussions with the latest activity, latest first.
pub fn newest(mut recent: Vec<RecentChat>, limit: usize) -> Vec<RecentChat> {
    recent.sort_by(|a, b| {
        b.chat
            .last_activity_at
            .cmp(&a.chat.last_activity_at)
            .then_with(|| b.chat.opening.created_at.cmp(&a.chat.opening.created_at))
            .then_with(|| a.chat.id.cmp(&b.chat.id))
    });
    recent.truncate(limit);
    recent
}

/// Recent discussions over all images, and the busiest images.
#[utoipa::path(
    get,
    path = "/admin/api/v1/tenants/{tenant}/activity",
    tag = "activity",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), ActivityQuery),
    responses(
        (status = 200, description = "Recent discussions (latest activity first) and the busiest images", body = Activity,
         example = json!({"recent": [{"image": "https://acme.example/photos/harbour.jpg", "imageLocked": false, "chat": {"id": "Q2hhdC0xLi4uLi4uLi4uLg", "anchor": [0.42, 0.17], "resolved": false, "opening": {"id": "Q2hhdC0xLi4uLi4uLi4uLg", "author": {"id": "sso:u-1842", "name": "Ada", "isModerator": false, "signedIn": true}, "text": "Is that the old lighthouse?", "createdAt": 1_765_015_200_000_u64, "editedAt": null}, "comments": 3, "lastActivityAt": 1_765_015_260_000_u64}}], "busiest": [{"image": "https://acme.example/photos/harbour.jpg", "chats": 12, "bytes": 5310, "lastActivityAt": 1_765_015_260_000_u64, "locked": false, "viewers": 4}], "scannedAll": true})),
        (status = 400, description = "A limit over 100", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    )
)]
pub async fn get_activity(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> ApiResult<Json<Activity>> {
    let limit = match query.limit {
        None => DEFAULT_RECENT,
        Some(n) if (1..=MAX_RECENT).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::new(
                ApiErrorCode::InvalidRequest,
                format!("limit must be between 1 and {MAX_RECENT}"),
            ));
        }
    };
    let mut images: Vec<ImageEntry> = Vec::new();
    let mut after = None;
    let scanned_all = loop {
        let page = app
            .store
            .images(
                admin.id(),
                Page {
                    after,
                    limit: MAX_LIMIT,
                },
            )
            .await
            .map_err(|err| ApiError::store(&err))?;
        let last_page = page.len() < MAX_LIMIT as usize;
        after = page.last().map(|e| e.row);
        images.extend(page);
        if last_page {
            break true;
        }
        if images.len() >= MAX_SCANNED_IMAGES {
            break false;
        }
    };
    let mut recent = Vec::new();
    // Every chat of an image, newest first: the most recent activity may be on any of them.
    let all = PageQuery {
        limit: Some(MAX_LIMIT),
        cursor: None,
    };
    for entry in most_recently_active(&images, limit as usize) {
        let key = image_key(&admin, entry.image.as_str())?;
        let (_, chats) = current_chats(&app, &key).await?;
        let page = page_of_chats(&entry.image, &chats, &all)?;
        recent.extend(page.chats.into_iter().map(|chat| RecentChat {
            image: page.image.clone(),
            image_locked: entry.locked,
            chat,
        }));
    }
    let mut busy = Vec::with_capacity(BUSIEST);
    for entry in busiest(&images) {
        let key = image_key(&admin, entry.image.as_str())?;
        let summary = ImageSummary::from(entry.clone());
        busy.push(BusyImage {
            image: summary.image,
            chats: summary.chats,
            bytes: summary.bytes,
            last_activity_at: summary.last_activity_at,
            locked: summary.locked,
            viewers: app.presence.count(&key).await,
        });
    }
    Ok(Json(Activity {
        recent: newest(recent, limit as usize),
        busiest: busy,
        scanned_all,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_api::chats::{Author, CommentView};
    use image_chat_protocol::ImageId;

    fn entry(row: i64, image: &str, chats: u64, bytes: u64, last: Option<u64>) -> ImageEntry {
        ImageEntry {
            row,
            image: ImageId::new(image),
            chats,
            bytes,
            last_activity_at: last,
            locked: false,
        }
    }

    fn recent(id: &str, opened: u64, last: u64) -> RecentChat {
        let opening = CommentView {
            id: id.into(),
            author: Author {
                id: "anon:x".into(),
                name: "X".into(),
                is_moderator: false,
                signed_in: false,
            },
            text: "t".into(),
            created_at: opened,
            edited_at: None,
        };
        RecentChat {
            image: "i".into(),
            image_locked: false,
            chat: ChatSummary {
                id: id.into(),
                anchor: serde_json::json!([0.5, 0.5]),
                resolved: false,
                opening,
                comments: 1,
                last_activity_at: last,
            },
        }
    }

    #[test]
    fn busiest_ranks_by_discussions_then_bytes_and_skips_empty_images() {
        let images = [
            entry(1, "a", 2, 100, Some(5)),
            entry(2, "b", 5, 10, Some(1)),
            entry(3, "c", 2, 300, Some(2)),
            entry(4, "empty", 0, 0, None),
        ];
        let names: Vec<_> = busiest(&images)
            .into_iter()
            .map(|i| i.image.as_str())
            .collect();
        assert_eq!(names, ["b", "c", "a"]);
        let many: Vec<_> = (0..30)
            .map(|n| entry(n, &format!("i{n}"), n as u64 + 1, 0, Some(1)))
            .collect();
        let top = busiest(&many);
        assert_eq!(top.len(), BUSIEST);
        assert_eq!(top[0].image.as_str(), "i29");
    }

    #[test]
    fn only_the_latest_active_images_are_read() {
        let images = [
            entry(1, "old", 1, 1, Some(10)),
            entry(2, "new", 1, 1, Some(30)),
            entry(3, "mid", 1, 1, Some(20)),
            entry(4, "empty", 0, 0, None),
        ];
        let read: Vec<_> = most_recently_active(&images, 2)
            .into_iter()
            .map(|i| i.image.as_str())
            .collect();
        assert_eq!(read, ["new", "mid"]);
    }

    #[test]
    fn recent_is_latest_activity_first_and_bounded() {
        let list = vec![
            recent("a", 1, 50),
            recent("b", 40, 40),
            recent("c", 60, 60),
            recent("d", 2, 3),
        ];
        let ids: Vec<_> = newest(list, 3).into_iter().map(|r| r.chat.id).collect();
        assert_eq!(ids, ["c", "a", "b"]);
    }
}
