//! The admin HTTP API: a site owner's backend (or the `/admin` dashboard) lists, reads and
//! removes discussions, locks images and bans people, authenticated by the tenant's API key
//! (see [`auth`]). Every endpoint lives under `/admin/api/v1/tenants/{tenant}/…`, answers JSON,
//! and fails with the one error shape of [`error`]. The OpenAPI document, generated from the
//! handlers' annotations (utoipa), is served at [`OPENAPI_PATH`].
//!
//! Adding an endpoint: write the handler in a module of its own here, annotated with
//! `#[utoipa::path(…)]` (path, params, request body, every response with an example, `tag`),
//! taking [`TenantAdmin`] first (it authenticates and rate-limits) and returning
//! [`ApiResult`]; read bodies with [`ApiJson`] and query strings with [`ApiQuery`] so bad
//! input gets the JSON error; then add `.routes(routes!(module::handler))` in [`api_routes`].
//! The OpenAPI test (`tests/admin_api.rs`) checks that every route is in the document.
//!
//! Handlers only translate between HTTP and the server: changes go through the same commit
//! path as a widget's op (`session::commit`, then the broker), so open widgets see them live.

pub mod activity;
pub mod auth;
pub mod bans;
pub mod changes;
pub mod chats;
pub mod error;
pub mod images;
pub mod live;
pub mod locks;
pub mod paging;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{TenantAdmin, bearer_matches};
pub use error::{ApiError, ApiErrorCode, ApiJson, ApiQuery, ApiResult, ErrorBody};

use crate::app::App;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/admin/api/openapi.json";

/// The prefix of every endpoint.
pub const PREFIX: &str = "/admin/api/v1/tenants/{tenant}";

/// Largest request body an endpoint reads unless it says otherwise: admin requests are small
/// JSON objects (an endpoint that takes files sets its own `DefaultBodyLimit`).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The document's fixed parts; the paths come from [`api_routes`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "image-chat admin API",
        description = "Manage a tenant's discussions: list and read them, delete discussions and \
                       comments (live on open widgets), lock images read-only, ban people from \
                       posting. Authenticate with `Authorization: Bearer <api_key>` (the tenant's \
                       `api_key` from the tenants file). Errors are `{\"code\",\"message\"}`.",
    ),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    components(schemas(ErrorBody, ApiErrorCode)),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The tenant's `api_key` from the tenants file"))
                    .build(),
            ),
        );
    }
}

/// Every endpoint with its OpenAPI description. Add new ones here (see the module doc).
fn api_routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(images::list_images))
        .routes(routes!(live::live))
        .routes(routes!(chats::list_chats))
        .routes(routes!(chats::get_chat, changes::delete_chat))
        .routes(routes!(changes::delete_comment))
        .routes(routes!(locks::list_locks, locks::lock, locks::unlock))
        .routes(routes!(bans::list_bans, bans::ban, bans::unban))
        .routes(routes!(activity::get_activity))
}

/// The OpenAPI document of the admin API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The admin API's routes (to merge into the server's router), with the document at
/// [`OPENAPI_PATH`] and a JSON 404 for anything else under `/admin/api/`.
pub fn router(app: Arc<App>) -> Router {
    let (routes, doc) = api_routes().split_for_parts();
    let doc = Arc::new(doc);
    routes
        .route(
            OPENAPI_PATH,
            get(move || {
                let doc = Arc::clone(&doc);
                async move { Json(doc.as_ref().clone()).into_response() }
            }),
        )
        .route("/admin/api/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::new(
        ApiErrorCode::NotFound,
        "no such endpoint (see /admin/api/openapi.json)",
    )
}
