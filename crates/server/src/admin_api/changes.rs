//! Deleting a discussion or one comment. Each is the same op a moderator's widget would send
//! (`delete-chat`, `delete-comment`), committed by [`App::commit`] as the admin moderator
//! ([`moderation::admin_actor`]) and published through the broker: open widgets on every node
//! see it at once, exactly like a person's delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use image_chat_protocol::{BroadcastId, CommentId, DeleteChat, DeleteComment, Op};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::TenantAdmin;
use super::chats::{ImageQuery, chat_id, image_key};
use super::error::{ApiError, ApiErrorCode, ApiQuery, ApiResult, ErrorBody};
use crate::app::App;
use crate::moderation::admin_actor;
use crate::session::now_ms;
use crate::store::{CommitLimits, ImageKey, Rejection, StoreError};

/// What a delete did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// The image.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
    /// The discussion.
    #[schema(example = "Q2hhdC0xLi4uLi4uLi4uLg")]
    pub chat_id: String,
    /// The comment, when one comment was deleted.
    pub comment_id: Option<String>,
    /// The change's position in the image's log (what widgets receive as `seq`).
    #[schema(example = 42)]
    pub seq: u64,
}

/// A fresh `broadcastId` for an op the server makes itself.
fn broadcast_id() -> BroadcastId {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    BroadcastId::new(image_chat_protocol::ids::encode_uuid_v4(bytes))
}

/// Commits `op` as the admin moderator; store refusals become 404 / 409.
async fn commit(app: &App, image: &ImageKey, op: &Op) -> Result<u64, ApiError> {
    // Deletes only shrink an image: no size limit applies.
    match app
        .commit(image, &admin_actor(), op, now_ms(), CommitLimits::UNLIMITED)
        .await
    {
        Ok(seq) => Ok(seq),
        Err(StoreError::Rejected(rejection)) => Err(match rejection {
            Rejection::UnknownChat => {
                ApiError::new(ApiErrorCode::UnknownChat, rejection.to_string())
            }
            Rejection::UnknownComment => {
                ApiError::new(ApiErrorCode::UnknownComment, rejection.to_string())
            }
            // The opening comment of a discussion goes only with the discussion.
            Rejection::Forbidden => ApiError::new(
                ApiErrorCode::Conflict,
                "the opening comment is deleted with its discussion: delete the discussion",
            ),
            other => ApiError::new(ApiErrorCode::Conflict, other.to_string()),
        }),
        Err(err) => Err(ApiError::store(&err)),
    }
}

/// Delete a discussion with all its comments (live on open widgets).
#[utoipa::path(
    delete,
    path = "/admin/api/v1/tenants/{tenant}/chats/{chat}",
    tag = "discussions",
    params(
        ("tenant" = String, Path, description = "The tenant id", example = "acme"),
        ("chat" = String, Path, description = "The discussion id", example = "Q2hhdC0xLi4uLi4uLi4uLg"),
        ImageQuery,
    ),
    responses(
        (status = 200, description = "Deleted; open widgets received `deleted-image-chat`", body = Deleted,
         example = json!({"image": "https://acme.example/photos/harbour.jpg", "chatId": "Q2hhdC0xLi4uLi4uLi4uLg", "commentId": null, "seq": 42})),
        (status = 400, description = "Invalid image or discussion id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such discussion on this image", body = ErrorBody,
         example = json!({"code": "unknown-chat", "message": "no such discussion on this image"})),
    )
)]
pub async fn delete_chat(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    Path(path): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ImageQuery>,
) -> ApiResult<Json<Deleted>> {
    let key = image_key(&admin, &query.image)?;
    let chat = chat_id(&path.1)?;
    let op = Op::DeleteChat(DeleteChat {
        broadcast_id: broadcast_id(),
        chat_id: chat.clone(),
    });
    let seq = commit(&app, &key, &op).await?;
    tracing::info!(tenant = %key.tenant, chat = %chat.as_str(), "admin API deleted a discussion");
    Ok(Json(Deleted {
        image: key.id().to_owned(),
        chat_id: chat.as_str().to_owned(),
        comment_id: None,
        seq,
    }))
}

/// Delete one reply of a discussion (live on open widgets). The opening comment is deleted
/// only with its discussion.
#[utoipa::path(
    delete,
    path = "/admin/api/v1/tenants/{tenant}/chats/{chat}/comments/{comment}",
    tag = "discussions",
    params(
        ("tenant" = String, Path, description = "The tenant id", example = "acme"),
        ("chat" = String, Path, description = "The discussion id", example = "Q2hhdC0xLi4uLi4uLi4uLg"),
        ("comment" = String, Path, description = "The comment id", example = "UmVwbHktMS4uLi4uLi4uLg"),
        ImageQuery,
    ),
    responses(
        (status = 200, description = "Deleted; open widgets received `image-chat-updated` (comment-deleted)", body = Deleted,
         example = json!({"image": "https://acme.example/photos/harbour.jpg", "chatId": "Q2hhdC0xLi4uLi4uLi4uLg", "commentId": "UmVwbHktMS4uLi4uLi4uLg", "seq": 43})),
        (status = 400, description = "Invalid image, discussion or comment id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such discussion or comment", body = ErrorBody,
         example = json!({"code": "unknown-comment", "message": "no such comment in this discussion"})),
        (status = 409, description = "The opening comment (delete the discussion instead)", body = ErrorBody,
         example = json!({"code": "conflict", "message": "the opening comment is deleted with its discussion: delete the discussion"})),
    )
)]
pub async fn delete_comment(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    Path(path): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<ImageQuery>,
) -> ApiResult<Json<Deleted>> {
    let key = image_key(&admin, &query.image)?;
    let chat = chat_id(&path.1)?;
    let comment = CommentId::new(path.2.as_str());
    if comment.validate().is_err() {
        return Err(ApiError::new(
            ApiErrorCode::InvalidId,
            "the comment id is not valid",
        ));
    }
    let op = Op::DeleteComment(DeleteComment {
        broadcast_id: broadcast_id(),
        chat_id: chat.clone(),
        comment_id: comment.clone(),
    });
    let seq = commit(&app, &key, &op).await?;
    tracing::info!(tenant = %key.tenant, chat = %chat.as_str(), "admin API deleted a comment");
    Ok(Json(Deleted {
        image: key.id().to_owned(),
        chat_id: chat.as_str().to_owned(),
        comment_id: Some(comment.as_str().to_owned()),
        seq,
    }))
}
