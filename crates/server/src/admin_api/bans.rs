//! Banning a person from posting on the tenant's images, lifting a ban, listing bans. A ban
//! names a user id as comments carry it (`sso:…` for a signed user, `anon:…` for an anonymous
//! one) or an anonymous person's token (the server reads the id from it). It is enforced by the
//! store inside every commit, so it holds from the next op on, on every node and on connections
//! already open (their ops get `banned`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::TenantAdmin;
use super::error::{ApiError, ApiErrorCode, ApiJson, ApiQuery, ApiResult, ErrorBody};
use super::paging::PageQuery;
use crate::app::App;
use crate::session::now_ms;
use crate::store::Page;

/// Longest ban reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Longest user id a ban accepts, in bytes (signed ids are bounded by the SSO checks, anonymous
/// ones are short).
pub const MAX_USER_ID_BYTES: usize = 300;

/// The body of `PUT …/bans`: exactly one of `userId` and `anonymousToken`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BanRequest {
    /// The person's user id as their comments carry it (`sso:…` or `anon:…`).
    #[schema(example = "sso:u-1842")]
    pub user_id: Option<String>,
    /// An anonymous person's token (`welcome.token`, what their widget keeps).
    pub anonymous_token: Option<String>,
    /// Why (for the other moderators; never shown to the person). Up to 500 characters.
    #[schema(example = "spam")]
    pub reason: Option<String>,
}

/// A ban after a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanState {
    /// The person banned (or no longer banned).
    #[schema(example = "sso:u-1842")]
    pub user_id: String,
    /// Whether they are banned now.
    pub banned: bool,
    /// Whether this request changed it (false: they already were).
    pub changed: bool,
}

/// One ban.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanView {
    /// The person.
    #[schema(example = "sso:u-1842")]
    pub user_id: String,
    /// Why (may be empty).
    #[schema(example = "spam")]
    pub reason: String,
    /// When (ms since the Unix epoch).
    #[schema(example = 1_765_015_400_000_u64)]
    pub banned_at: u64,
}

/// A page of bans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanPage {
    /// Newest first.
    pub bans: Vec<BanView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `?userId=…` of an unban.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct UnbanQuery {
    /// The person to unban.
    #[param(example = "sso:u-1842")]
    pub user_id: String,
}

/// Checks a user id named by a ban: a signed or anonymous id, bounded, no control characters.
fn user_id(raw: &str) -> Result<String, ApiError> {
    let ok = (raw.starts_with("sso:") && raw.len() > 4
        || raw.starts_with("anon:") && raw.len() > 5)
        && raw.len() <= MAX_USER_ID_BYTES
        && !raw.chars().any(char::is_control);
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::new(
            ApiErrorCode::InvalidId,
            "userId must be a user id as comments carry it (sso:… or anon:…)",
        ))
    }
}

/// Ban a person from posting on the tenant's images (effective at once, on open widgets too).
#[utoipa::path(
    put,
    path = "/admin/api/v1/tenants/{tenant}/bans",
    tag = "bans",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme")),
    request_body(content = BanRequest, example = json!({"userId": "sso:u-1842", "reason": "spam"})),
    responses(
        (status = 200, description = "Banned: their ops are refused with `banned` from now on", body = BanState,
         example = json!({"userId": "sso:u-1842", "banned": true, "changed": true})),
        (status = 400, description = "Neither or both of userId and anonymousToken, an invalid id or token, a reason over 500 characters, malformed JSON", body = ErrorBody,
         example = json!({"code": "invalid-request", "message": "give exactly one of userId and anonymousToken"})),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
    )
)]
pub async fn ban(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<BanRequest>,
) -> ApiResult<Json<BanState>> {
    let user = match (&body.user_id, &body.anonymous_token) {
        (Some(id), None) => user_id(id)?,
        (None, Some(token)) => app.identities.verify(&admin.tenant, token).ok_or_else(|| {
            ApiError::new(
                ApiErrorCode::InvalidId,
                "anonymousToken is not a token this server issued for this tenant",
            )
        })?,
        _ => {
            return Err(ApiError::new(
                ApiErrorCode::InvalidRequest,
                "give exactly one of userId and anonymousToken",
            ));
        }
    };
    let reason = body.reason.unwrap_or_default();
    if reason.chars().count() > MAX_REASON_CHARS
        || reason.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ApiError::new(
            ApiErrorCode::InvalidRequest,
            format!(
                "reason must be at most {MAX_REASON_CHARS} characters, without control characters"
            ),
        ));
    }
    let changed = app
        .store
        .ban(admin.id(), &user, reason.trim(), now_ms())
        .await
        .map_err(|err| ApiError::store(&err))?;
    tracing::info!(tenant = %admin.id(), changed, "admin API ban");
    Ok(Json(BanState {
        user_id: user,
        banned: true,
        changed,
    }))
}

/// Lift a ban.
#[utoipa::path(
    delete,
    path = "/admin/api/v1/tenants/{tenant}/bans",
    tag = "bans",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), UnbanQuery),
    responses(
        (status = 200, description = "No longer banned", body = BanState,
         example = json!({"userId": "sso:u-1842", "banned": false, "changed": true})),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "This person is not banned", body = ErrorBody,
         example = json!({"code": "unknown-ban", "message": "this person is not banned"})),
    )
)]
pub async fn unban(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<UnbanQuery>,
) -> ApiResult<Json<BanState>> {
    let user = user_id(&query.user_id)?;
    let removed = app
        .store
        .unban(admin.id(), &user)
        .await
        .map_err(|err| ApiError::store(&err))?;
    if !removed {
        return Err(ApiError::new(
            ApiErrorCode::UnknownBan,
            "this person is not banned",
        ));
    }
    tracing::info!(tenant = %admin.id(), "admin API unban");
    Ok(Json(BanState {
        user_id: user,
        banned: false,
        changed: true,
    }))
}

/// List the tenant's bans, newest first.
#[utoipa::path(
    get,
    path = "/admin/api/v1/tenants/{tenant}/bans",
    tag = "bans",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme"), PageQuery),
    responses(
        (status = 200, description = "A page of bans", body = BanPage,
         example = json!({"bans": [{"userId": "sso:u-1842", "reason": "spam", "bannedAt": 1_765_015_400_000_u64}], "nextCursor": null})),
        (status = 400, description = "A limit over 200, or a cursor this API did not return", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
    )
)]
pub async fn list_bans(
    admin: TenantAdmin,
    State(app): State<Arc<App>>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<BanPage>> {
    let limit = page.limit()?;
    let after = page.cursor(|raw| {
        let (at, user) = raw.split_once('.')?;
        Some((at.parse::<u64>().ok()?, user_id(user).ok()?))
    })?;
    let mut bans = app
        .store
        .bans(
            admin.id(),
            Page {
                after,
                limit: limit + 1,
            },
        )
        .await
        .map_err(|err| ApiError::store(&err))?;
    let more = bans.len() > limit as usize;
    bans.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            bans.last()
                .map(|b| format!("{}.{}", b.banned_at, b.user_id))
        })
        .flatten();
    Ok(Json(BanPage {
        bans: bans
            .into_iter()
            .map(|b| BanView {
                user_id: b.user_id,
                reason: b.reason,
                banned_at: b.banned_at,
            })
            .collect(),
        next_cursor,
    }))
}
