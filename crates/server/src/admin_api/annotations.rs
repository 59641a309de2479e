//! W3C Web Annotation export and import of an image's or a page's discussions, or of a whole
//! tenant's, images and pages (`annotations`: the pure conversion). Import validates every op exactly like a widget's (the protocol codec) before
//! committing any, then commits them through the one commit path ([`App::commit`]): open
//! widgets see the imported discussions live, webhooks and usage count them, and ids derived
//! from the annotations make a repeated import change nothing.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use image_chat_protocol::{
    AddComment, ClientMessage, CreateChat, Op, PageId, ResolveChat, Subject, User,
    decode_client_frame, limits::validate_name,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::auth::TenantAdmin;
use super::chats::{current_chats, image_key};
use super::error::{ApiError, ApiErrorCode, ApiJson, ApiQuery, ApiResult, ErrorBody};
use crate::annotations::{self, PlannedChat};
use crate::app::{App, now_ms};
use crate::store::{CommitLimits, ImageKey, Page, Rejection, StoreError};

/// `?image=…` or `?page=…` (optional, not both): one image's or one page's annotations, or
/// without either the whole tenant's.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnnotationsQuery {
    /// The image id; with neither `image` nor `page`: every image and page of the tenant (an
    /// import then takes each annotation's image or page from its `target.source`).
    #[param(example = "https://acme.example/photos/harbour.jpg")]
    pub image: Option<String>,
    /// The page id (text mode: discussions on a page's text, `TextQuoteSelector` targets).
    #[param(example = "https://acme.example/blog/harbour#story")]
    pub page: Option<String>,
}

impl AnnotationsQuery {
    /// The image or page asked for, checked; `None`: the whole tenant.
    fn key(&self, admin: &TenantAdmin) -> ApiResult<Option<ImageKey>> {
        match (&self.image, &self.page) {
            (Some(_), Some(_)) => Err(invalid("give image or page, not both".into())),
            (Some(image), None) => image_key(admin, image).map(Some),
            (None, Some(page)) => page_key(admin, page).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// A page's key from a query, checked (as [`image_key`] for an image).
fn page_key(admin: &TenantAdmin, page: &str) -> ApiResult<ImageKey> {
    let page = PageId::new(page);
    if page.validate().is_err() {
        return Err(ApiError::new(
            ApiErrorCode::InvalidId,
            "the page id is not valid",
        ));
    }
    Ok(ImageKey::page(admin.id().clone(), page))
}

/// How many images (or pages) an export reads per store call.
const EXPORT_PAGE: u32 = 200;

/// Largest import body.
pub const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;

/// What an import did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// The image imported into; absent for a page or tenant import.
    #[schema(example = "https://acme.example/photos/harbour.jpg")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The page imported into; absent for an image or tenant import.
    #[schema(example = json!(null))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Images and pages imported into (1 for an image or page import).
    #[schema(example = 1)]
    pub images: usize,
    /// Annotations read (each one discussion).
    #[schema(example = 2)]
    pub discussions: usize,
    /// Comments among them, opening ones included.
    #[schema(example = 5)]
    pub comments: usize,
    /// Ops committed now (a repeated import commits none: everything is already there).
    #[schema(example = 6)]
    pub applied: usize,
}

/// Export discussions as W3C Web Annotations: one image's, one page's, or the whole tenant's.
#[utoipa::path(
    get,
    path = "/admin/api/v1/tenants/{tenant}/annotations",
    tag = "annotations",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), AnnotationsQuery),
    responses(
        (status = 200, description = "A W3C AnnotationCollection (JSON-LD) whose first page holds one annotation per discussion, oldest first (a whole tenant: images newest first, then pages newest first). An image's discussion targets the image with a FragmentSelector xywh=percent:x,y,w,h; a page's (text mode) targets the page with a TextQuoteSelector (exact, prefix, suffix) and a TextPositionSelector (UTF-16 offsets in the page container's text)",
         body = Object,
         example = json!({"@context": "http://www.w3.org/ns/anno.jsonld", "type": "AnnotationCollection", "total": 1, "first": {"type": "AnnotationPage", "startIndex": 0, "items": [{"@context": "http://www.w3.org/ns/anno.jsonld", "id": "urn:image-chat:chat:Q2hhdC0xLi4uLi4uLi4uLg", "type": "Annotation", "motivation": "commenting", "created": "2026-12-06T10:30:00.000Z", "modified": "2026-12-06T10:31:00.000Z", "creator": {"id": "urn:image-chat:user:sso:u-1842", "type": "Person", "name": "Ada"}, "body": [{"id": "urn:image-chat:comment:Q2hhdC0xLi4uLi4uLi4uLg", "type": "TextualBody", "value": "Is that the old lighthouse?", "format": "text/plain", "purpose": "commenting", "creator": {"id": "urn:image-chat:user:sso:u-1842", "type": "Person", "name": "Ada"}, "created": "2026-12-06T10:30:00.000Z"}, {"id": "urn:image-chat:comment:UmVwbHktMS4uLi4uLi4uLg", "type": "TextualBody", "value": "Yes, before 1920.", "format": "text/plain", "purpose": "replying", "creator": {"id": "urn:image-chat:user:anon:6f1c0e", "type": "Person", "name": "Guest"}, "created": "2026-12-06T10:31:00.000Z"}], "target": {"source": "https://acme.example/photos/harbour.jpg", "selector": {"type": "FragmentSelector", "conformsTo": "http://www.w3.org/TR/media-frags/", "value": "xywh=percent:42,17,0,0"}}}]}})),
        (status = 400, description = "Invalid image or page id, or both given", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    )
)]
pub async fn export_annotations(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<AnnotationsQuery>,
) -> ApiResult<Response> {
    let keys = match query.key(&admin)? {
        Some(key) => vec![key],
        None => tenant_subjects(&app, &admin).await?,
    };
    let mut items = Vec::new();
    for key in &keys {
        let (_, chats) = current_chats(&app, key).await?;
        items.extend(annotations::export(&key.subject, &chats));
    }
    Ok(Json(annotations::collection(items)).into_response())
}

/// Every image of the tenant, then every page (text mode), each newest first.
async fn tenant_subjects(app: &App, admin: &TenantAdmin) -> ApiResult<Vec<ImageKey>> {
    let tenant = admin.id();
    let images = list_all(|page| app.store.images(tenant, page), |e| e.row).await?;
    let pages = list_all(|page| app.store.pages(tenant, page), |e| e.row).await?;
    let images = images
        .into_iter()
        .map(|e| ImageKey::image(tenant.clone(), e.image));
    let pages = pages
        .into_iter()
        .map(|e| ImageKey::page(tenant.clone(), e.image));
    Ok(images.chain(pages).collect())
}

/// Everything one of the store's listings holds, read `EXPORT_PAGE` rows at a time; `row`
/// is an entry's position, where the next read starts after.
async fn list_all<E, F>(
    mut list: impl FnMut(Page<i64>) -> F,
    row: impl Fn(&E) -> i64,
) -> ApiResult<Vec<E>>
where
    F: Future<Output = Result<Vec<E>, StoreError>>,
{
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = list(Page {
            after,
            limit: EXPORT_PAGE,
        })
        .await
        .map_err(|e| ApiError::store(&e))?;
        let more = page.len() == EXPORT_PAGE as usize;
        after = page.last().map(&row);
        all.extend(page);
        if !more {
            return Ok(all);
        }
    }
}

/// Import W3C Web Annotations as discussions of an image, of a page, or of the tenant's images
/// and pages.
#[utoipa::path(
    post,
    path = "/admin/api/v1/tenants/{tenant}/annotations",
    tag = "annotations",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), AnnotationsQuery),
    request_body(content = Object, content_type = "application/json",
        description = "One annotation, an array of them, or an AnnotationCollection / AnnotationPage (items); at most 1,000 annotations and 4 MiB. A target with a FragmentSelector xywh=percent: is a place on an image; one with a TextQuoteSelector (and optionally a TextPositionSelector) a passage of a page's text",
        example = json!([{"@context": "http://www.w3.org/ns/anno.jsonld", "id": "http://example.org/anno1", "type": "Annotation", "creator": {"id": "http://example.org/user1", "type": "Person", "name": "A. Person"}, "created": "2015-10-13T13:00:00Z", "body": [{"type": "TextualBody", "value": "Is that the old lighthouse?", "purpose": "commenting"}, {"type": "TextualBody", "value": "Yes.", "purpose": "replying"}], "target": {"source": "https://acme.example/photos/harbour.jpg", "selector": {"type": "FragmentSelector", "conformsTo": "http://www.w3.org/TR/media-frags/", "value": "xywh=percent:42,17,0,0"}}}])),
    responses(
        (status = 200, description = "Imported (or already there)", body = ImportReport,
         example = json!({"image": "https://acme.example/photos/harbour.jpg", "discussions": 1, "comments": 2, "applied": 2})),
        (status = 400, description = "Not JSON, not annotations, an annotation that does not fit (no text, no percent xywh or text quote selector, another image's or page's target, a text selector on an image or an xywh one on a page, text or name a widget could not send): nothing imported", body = ErrorBody,
         example = json!({"code": "invalid-request", "message": "annotation 0: no target with a FragmentSelector xywh=percent:x,y,w,h"})),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 409, description = "The image is full, locked, or at its discussion limit: the annotations before it were imported (importing again is safe)", body = ErrorBody),
        (status = 413, description = "Body over 4 MiB", body = ErrorBody),
        (status = 415, description = "Not Content-Type: application/json", body = ErrorBody),
    )
)]
pub async fn import_annotations(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<AnnotationsQuery>,
    ApiJson(doc): ApiJson<Value>,
) -> ApiResult<Json<ImportReport>> {
    let groups = match query.key(&admin)? {
        Some(key) => vec![(key.subject, doc)],
        None => annotations::by_subject(&doc).map_err(|e| invalid(e.to_string()))?,
    };
    // Every op of every image and page, validated like a widget's, before anything is
    // committed.
    let mut prepared = Vec::with_capacity(groups.len());
    for (subject, group) in &groups {
        let key = subject_key(&admin, subject)?;
        let plan = annotations::plan(subject, group).map_err(|e| invalid(e.to_string()))?;
        let ops = validated_ops(&plan)?;
        prepared.push((key, plan, ops));
    }
    let limits = app
        .security
        .tenant
        .with_overrides(&admin.tenant.limits)
        .commit_limits(app.security.max_bytes_total);
    let mut report = ImportReport {
        image: query.image.clone(),
        page: query.page.clone(),
        images: prepared.len(),
        discussions: 0,
        comments: 0,
        applied: 0,
    };
    for (key, plan, ops) in &prepared {
        report.discussions += plan.len();
        report.comments += plan.iter().map(|c| c.comments.len()).sum::<usize>();
        report.applied += commit_ops(&app, key, ops, limits).await?;
    }
    Ok(Json(report))
}

/// An op to import, its author and when it was originally made.
type TimedOp = (Op, User, Option<u64>);

fn invalid(message: String) -> ApiError {
    ApiError::new(ApiErrorCode::InvalidRequest, message)
}

/// The key of a tenant import's image or page, its id checked.
fn subject_key(admin: &TenantAdmin, subject: &Subject) -> ApiResult<ImageKey> {
    match subject {
        Subject::Image(image) => image_key(admin, image.as_str()),
        Subject::Page(page) => page_key(admin, page.as_str()),
    }
}

/// The ops that recreate `plan`, each checked by the protocol codec as a widget's would be.
fn validated_ops(plan: &[PlannedChat]) -> ApiResult<Vec<TimedOp>> {
    let mut ops = Vec::new();
    for (index, chat) in plan.iter().enumerate() {
        for (op, actor) in chat_ops(chat) {
            decode_client_frame(&op_frame(&op))
                .map(drop)
                .map_err(|e| invalid(format!("annotation {index}: {}", e.to_frame().message)))?;
            validate_name(&actor.name)
                .map_err(|e| invalid(format!("annotation {index}: creator name: {e}")))?;
            ops.push((op, actor, chat_time(chat, &ops)));
        }
    }
    Ok(ops)
}

/// Commits `ops` on `key` through the one commit path; how many changed something (an op
/// already there, from an earlier import, changes nothing).
async fn commit_ops(
    app: &App,
    key: &ImageKey,
    ops: &[TimedOp],
    limits: CommitLimits,
) -> ApiResult<usize> {
    let now = now_ms();
    let mut applied = 0;
    for (op, actor, at) in ops {
        let before = app
            .store
            .position(key)
            .await
            .map_err(|e| ApiError::store(&e))?;
        match app
            .commit(key, actor, op, at.unwrap_or(now).min(now), limits)
            .await
        {
            Ok(seq) => applied += usize::from(seq > before.seq),
            Err(StoreError::Rejected(rejection)) => {
                let message = match rejection {
                    Rejection::DuplicateId => {
                        "a discussion or comment with an id of this import already exists with \
                         other content"
                            .to_owned()
                    }
                    other => other.to_string(),
                };
                return Err(ApiError::new(ApiErrorCode::Conflict, message));
            }
            Err(err) => return Err(ApiError::store(&err)),
        }
    }
    Ok(applied)
}

/// The ops that create `chat` (create, each reply, resolve), each with its author.
fn chat_ops(chat: &PlannedChat) -> Vec<(Op, User)> {
    let mut ops = Vec::new();
    let mut comments = chat.comments.iter();
    let Some(opening) = comments.next() else {
        return ops;
    };
    let opener = actor(&opening.author, &opening.author_key);
    ops.push((
        Op::CreateChat(CreateChat {
            broadcast_id: chat.broadcast_id(0),
            chat_id: chat.id.clone(),
            anchor: chat.anchor.clone(),
            text: opening.text.clone(),
        }),
        opener.clone(),
    ));
    for (n, reply) in comments.enumerate() {
        ops.push((
            Op::AddComment(AddComment {
                broadcast_id: chat.broadcast_id(n + 1),
                chat_id: chat.id.clone(),
                comment_id: reply.id.clone(),
                text: reply.text.clone(),
            }),
            actor(&reply.author, &reply.author_key),
        ));
    }
    if chat.resolved {
        ops.push((
            Op::ResolveChat(ResolveChat {
                broadcast_id: chat.broadcast_id(chat.comments.len()),
                chat_id: chat.id.clone(),
                resolved: true,
            }),
            opener,
        ));
    }
    ops
}

/// When the `n`th op of `chat` (`n` = ops already planned for it) was originally made.
fn chat_time(chat: &PlannedChat, ops_so_far: &[(Op, User, Option<u64>)]) -> Option<u64> {
    let n = ops_so_far
        .iter()
        .rev()
        .take_while(|(op, _, _)| op_chat(op) == Some(&chat.id))
        .count();
    chat.comments
        .get(n)
        .or(chat.comments.last())
        .and_then(|c| c.created_at)
}

fn op_chat(op: &Op) -> Option<&image_chat_protocol::ChatId> {
    match op {
        Op::CreateChat(o) => Some(&o.chat_id),
        Op::AddComment(o) => Some(&o.chat_id),
        Op::ResolveChat(o) => Some(&o.chat_id),
        _ => None,
    }
}

/// An imported comment's author: named as the annotation says, with a stable id per creator
/// (this server's own user id when the creator is one of its `urn:image-chat:user:` ids, as in
/// an export: a restored comment keeps its author; else `import:` + a hash of the creator's
/// id), never a moderator nor signed in.
fn actor(name: &str, key: &str) -> User {
    let id = match key.strip_prefix("urn:image-chat:user:") {
        Some(own) if !own.is_empty() && own.len() <= 256 => own.to_owned(),
        _ => format!(
            "import:{}",
            hex::encode(&Sha256::digest(key.as_bytes())[..8])
        ),
    };
    User {
        id,
        name: name.trim().to_owned(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    }
}

/// The op as a widget would send it.
fn op_frame(op: &Op) -> String {
    let message = match op.clone() {
        Op::CreateChat(o) => ClientMessage::CreateChat(o),
        Op::AddComment(o) => ClientMessage::AddComment(o),
        Op::ResolveChat(o) => ClientMessage::ResolveChat(o),
        // Import makes nothing else.
        _ => return String::new(),
    };
    message.to_json()
}
