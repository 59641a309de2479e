//! The tenant's live connection count (the dashboard's "live now").

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::TenantAdmin;
use super::error::{ApiResult, ErrorBody};
use crate::app::App;

/// Open connections now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveCount {
    /// The tenant's open widget connections: on a cluster, over every node (the answering
    /// node's exactly, the others' as they reported them, at most a few seconds ago).
    #[schema(example = 17)]
    pub connections: u64,
}

/// The tenant's open widget connections now, over every node of a cluster.
#[utoipa::path(
    get,
    path = "/admin/api/v1/tenants/{tenant}/live",
    tag = "usage",
    params(("tenant" = String, Path, description = "The tenant id", example = "acme")),
    responses(
        (status = 200, description = "Open connections (over every node of a cluster)", body = LiveCount,
         example = json!({"connections": 17})),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
    )
)]
pub async fn live(admin: TenantAdmin, State(app): State<Arc<App>>) -> ApiResult<Json<LiveCount>> {
    let here = app.usage.open_for(admin.id());
    Ok(Json(LiveCount {
        connections: app.presence.tenant_connections(admin.id(), here).await,
    }))
}
