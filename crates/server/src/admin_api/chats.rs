//! Reading an image's discussions: the list (newest first, paged) and one discussion with all
//! its comments. Reads the store's snapshot of the image (bounded by the image's byte limit),
//! with signed users' real ids: the API key is the site owner's.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use image_chat_protocol::{Chat, ChatId, Comment, ImageId, Position, User};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::TenantAdmin;
use super::error::{ApiError, ApiErrorCode, ApiQuery, ApiResult, ErrorBody};
use super::paging::PageQuery;
use crate::app::App;
use crate::store::ImageKey;

/// `?image=…`: the image an endpoint works on.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// The image id, as the widget names it (usually the image's URL).
    #[param(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
}

/// `?image=…&limit=…&cursor=…`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListChatsQuery {
    /// The image id.
    #[param(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
    /// Discussions per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A person as the server vouched for them when they wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Author {
    /// `anon:…` (anonymous, see `anonymousToken` bans) or `sso:…` (signed by the site).
    #[schema(example = "sso:u-1842")]
    pub id: String,
    /// Display name.
    #[schema(example = "Ada")]
    pub name: String,
    /// A moderator of the site.
    pub is_moderator: bool,
    /// Signed in by the site.
    pub signed_in: bool,
}

impl From<&User> for Author {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            name: user.name.clone(),
            is_moderator: user.is_moderator,
            signed_in: user.signed_in,
        }
    }
}

/// One comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentView {
    /// The comment's id (the opening comment has its discussion's id).
    #[schema(example = "Q2hhdC0xLi4uLi4uLi4uLg")]
    pub id: String,
    /// Who wrote it.
    pub author: Author,
    /// Plain text.
    #[schema(example = "Is that the old lighthouse?")]
    pub text: String,
    /// When the server committed it (ms since the Unix epoch).
    #[schema(example = 1_765_015_200_000_u64)]
    pub created_at: u64,
    /// When it was last edited.
    pub edited_at: Option<u64>,
}

impl CommentView {
    fn new(chat: &ChatId, comment: &Comment) -> Self {
        // The protocol leaves the opening comment's id implicit (the discussion's).
        let id = if comment.id.as_str().is_empty() {
            chat.as_str().to_owned()
        } else {
            comment.id.as_str().to_owned()
        };
        Self {
            id,
            author: Author::from(&comment.author),
            text: comment.text.clone(),
            created_at: comment.created_at,
            edited_at: comment.edited_at,
        }
    }
}

/// A discussion in a list: its opening comment and how many comments it has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatSummary {
    /// The discussion's id.
    #[schema(example = "Q2hhdC0xLi4uLi4uLi4uLg")]
    pub id: String,
    /// Where it is attached, as in the protocol (`[x, y]` or a region object).
    #[schema(value_type = Object, example = json!([0.42, 0.17]))]
    pub anchor: serde_json::Value,
    /// Marked settled.
    pub resolved: bool,
    /// Its opening comment.
    pub opening: CommentView,
    /// Comments, the opening one included.
    #[schema(example = 3)]
    pub comments: usize,
    /// When its latest comment was written or edited (ms since the Unix epoch).
    #[schema(example = 1_765_015_260_000_u64)]
    pub last_activity_at: u64,
}

/// A page of an image's discussions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatPage {
    /// The image.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
    /// Newest first.
    pub chats: Vec<ChatSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One discussion with all its comments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatView {
    /// The image.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    pub image: String,
    /// The discussion's id.
    #[schema(example = "Q2hhdC0xLi4uLi4uLi4uLg")]
    pub id: String,
    /// Where it is attached, as in the protocol.
    #[schema(value_type = Object, example = json!([0.42, 0.17]))]
    pub anchor: serde_json::Value,
    /// Marked settled.
    pub resolved: bool,
    /// The thread, oldest first (the opening comment first).
    pub comments: Vec<CommentView>,
}

fn chat_view(image: &ImageId, chat: &Chat) -> ChatView {
    ChatView {
        image: image.as_str().to_owned(),
        id: chat.id.as_str().to_owned(),
        anchor: anchor_json(chat),
        resolved: chat.resolved,
        comments: chat
            .comments
            .iter()
            .map(|c| CommentView::new(&chat.id, c))
            .collect(),
    }
}

fn anchor_json(chat: &Chat) -> serde_json::Value {
    serde_json::to_value(&chat.anchor).unwrap_or(serde_json::Value::Null)
}

/// The image of a request, checked.
pub fn image_key(admin: &TenantAdmin, image: &str) -> Result<ImageKey, ApiError> {
    let image = ImageId::new(image);
    if image.validate().is_err() {
        return Err(ApiError::new(
            ApiErrorCode::InvalidId,
            "the image id is not valid",
        ));
    }
    Ok(ImageKey::image(admin.id().clone(), image))
}

/// A discussion id from a path, checked.
pub fn chat_id(raw: &str) -> Result<ChatId, ApiError> {
    let id = ChatId::new(raw);
    id.validate()
        .map(|()| id)
        .map_err(|_| ApiError::new(ApiErrorCode::InvalidId, "the discussion id is not valid"))
}

/// Where a page of discussions resumes: after the discussion opened at `created_at` with `id`
/// (newest first: older ones, or as old with a smaller id).
fn parse_chat_cursor(raw: &str) -> Option<(u64, String)> {
    let (at, id) = raw.split_once('.')?;
    let at = at.parse().ok()?;
    ChatId::new(id).validate().ok()?;
    Some((at, id.to_owned()))
}

/// The image's discussions in newest-first order, one page.
pub fn page_of_chats(
    image: &ImageId,
    chats: &[Chat],
    page: &PageQuery,
) -> Result<ChatPage, ApiError> {
    let limit = page.limit()? as usize;
    let after = page.cursor(parse_chat_cursor)?;
    let key = |chat: &Chat| {
        let opened = chat.comments.first().map_or(0, |c| c.created_at);
        (opened, chat.id.as_str().to_owned())
    };
    let mut ordered: Vec<&Chat> = chats
        .iter()
        .filter(|chat| after.as_ref().is_none_or(|after| key(chat) < *after))
        .collect();
    ordered.sort_by_key(|chat| std::cmp::Reverse(key(chat)));
    let next_cursor = (ordered.len() > limit)
        .then(|| ordered.get(limit - 1))
        .flatten()
        .map(|last| {
            let (at, id) = key(last);
            format!("{at}.{id}")
        });
    let chats = ordered
        .into_iter()
        .take(limit)
        .filter_map(|chat| {
            let opening = chat.comments.first()?;
            Some(ChatSummary {
                id: chat.id.as_str().to_owned(),
                anchor: anchor_json(chat),
                resolved: chat.resolved,
                opening: CommentView::new(&chat.id, opening),
                comments: chat.comments.len(),
                last_activity_at: chat
                    .comments
                    .iter()
                    .map(|c| c.edited_at.unwrap_or(c.created_at).max(c.created_at))
                    .max()
                    .unwrap_or(opening.created_at),
            })
        })
        .collect();
    Ok(ChatPage {
        image: image.as_str().to_owned(),
        chats,
        next_cursor,
    })
}

/// The image's current discussions.
pub async fn current_chats(app: &App, image: &ImageKey) -> Result<(Position, Vec<Chat>), ApiError> {
    let (position, snapshot) = app
        .store
        .snapshot(image)
        .await
        .map_err(|err| ApiError::store(&err))?;
    Ok((position, snapshot.chats))
}

/// List an image's discussions, newest first.
#[utoipa::path(
    get,
    path = "/admin/api/v1/tenants/{tenant}/chats",
    tag = "discussions",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), ListChatsQuery),
    responses(
        (status = 200, description = "A page of discussions, newest first", body = ChatPage,
         example = json!({"image": "https://acme.example/photos/harbour.jpg", "chats": [{"id": "Q2hhdC0xLi4uLi4uLi4uLg", "anchor": [0.42, 0.17], "resolved": false, "opening": {"id": "Q2hhdC0xLi4uLi4uLi4uLg", "author": {"id": "sso:u-1842", "name": "Ada", "isModerator": false, "signedIn": true}, "text": "Is that the old lighthouse?", "createdAt": 1_765_015_200_000_u64, "editedAt": null}, "comments": 3, "lastActivityAt": 1_765_015_260_000_u64}], "nextCursor": "1765015200000.Q2hhdC0xLi4uLi4uLi4uLg"})),
        (status = 400, description = "Invalid image id, limit over 200, or a cursor this API did not return", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    )
)]
pub async fn list_chats(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<ListChatsQuery>,
) -> ApiResult<Json<ChatPage>> {
    let key = image_key(&admin, &query.image)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    // Check the paging before reading anything.
    page.limit()?;
    page.cursor(parse_chat_cursor)?;
    let (_, chats) = current_chats(&app, &key).await?;
    Ok(Json(page_of_chats(&ImageId::new(key.id()), &chats, &page)?))
}

/// Read one discussion with all its comments.
#[utoipa::path(
    get,
    path = "/admin/api/v1/tenants/{tenant}/chats/{chat}",
    tag = "discussions",
    params(
        ("tenant" = String, Path, description = "The tenant id", example = "acme"),
        ("chat" = String, Path, description = "The discussion id", example = "Q2hhdC0xLi4uLi4uLi4uLg"),
        ImageQuery,
    ),
    responses(
        (status = 200, description = "The discussion", body = ChatView,
         example = json!({"image": "https://acme.example/photos/harbour.jpg", "id": "Q2hhdC0xLi4uLi4uLi4uLg", "anchor": [0.42, 0.17], "resolved": false, "comments": [{"id": "Q2hhdC0xLi4uLi4uLi4uLg", "author": {"id": "sso:u-1842", "name": "Ada", "isModerator": false, "signedIn": true}, "text": "Is that the old lighthouse?", "createdAt": 1_765_015_200_000_u64, "editedAt": null}, {"id": "UmVwbHktMS4uLi4uLi4uLg", "author": {"id": "anon:6f1c0e", "name": "Guest", "isModerator": false, "signedIn": false}, "text": "Yes, before 1920.", "createdAt": 1_765_015_260_000_u64, "editedAt": null}]})),
        (status = 400, description = "Invalid image or discussion id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such discussion on this image", body = ErrorBody,
         example = json!({"code": "unknown-chat", "message": "no such discussion on this image"})),
    )
)]
pub async fn get_chat(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    Path(path): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ImageQuery>,
) -> ApiResult<Json<ChatView>> {
    let key = image_key(&admin, &query.image)?;
    let chat = chat_id(&path.1)?;
    let (_, chats) = current_chats(&app, &key).await?;
    let found = chats.iter().find(|c| c.id == chat).ok_or_else(|| {
        ApiError::new(
            ApiErrorCode::UnknownChat,
            "no such discussion on this image",
        )
    })?;
    Ok(Json(chat_view(&ImageId::new(key.id()), found)))
}
