//! Who may call the admin API: the extractor [`TenantAdmin`] admits a request that carries
//! `Authorization: Bearer <API key>` of the tenant named in its path (`/…/tenants/{tenant}/…`),
//! after taking it from the client address's HTTP API budget (so guessing keys is rate
//! limited like everything else).
//!
//! The API key is the tenant's `api_key` from the tenants file, never its SSO `secret` (the
//! site's backend signs users with that one; a leaked API key must not make users, nor a leaked
//! signing secret open the admin API). It is compared in constant time ([`Secret::matches`]) and
//! read from the tenants in force at each request, so a SIGHUP reload that changes or removes a
//! key takes effect on the next request.

use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use image_chat_protocol::TenantId;

use super::error::{ApiError, ApiErrorCode};
use crate::admission::PeerAddr;
use crate::app::App;
use crate::http::api_wait;
use crate::tenant::Tenant;

/// A request authenticated for one tenant. Every admin API handler takes one; the route must
/// have a `{tenant}` path parameter.
#[derive(Clone, Debug)]
pub struct TenantAdmin {
    /// The tenant the key belongs to, as configured when the request arrived.
    pub tenant: Arc<Tenant>,
}

impl TenantAdmin {
    /// The tenant's id.
    pub fn id(&self) -> &TenantId {
        &self.tenant.id
    }
}

impl FromRequestParts<Arc<App>> for TenantAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<PeerAddr>>().map(|c| c.0);
        if let Some(secs) = api_wait(app, peer.as_ref(), &parts.headers) {
            let mut err = ApiError::new(
                ApiErrorCode::RateLimited,
                "too many requests from this address; retry later",
            );
            err.retry_after = Some(secs);
            return Err(err);
        }
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(|_| ApiError::new(ApiErrorCode::NotFound, "no such endpoint"))?;
        let Some((_, tenant)) = params.iter().find(|(name, _)| *name == "tenant") else {
            // A route without `{tenant}`: a programming error, refused rather than served.
            tracing::error!(path = %parts.uri.path(), "admin API route without {{tenant}}");
            return Err(ApiError::new(ApiErrorCode::NotFound, "no such endpoint"));
        };
        let tenant = TenantId::new(tenant);
        if tenant.validate().is_err() {
            return Err(ApiError::new(
                ApiErrorCode::InvalidId,
                "the tenant id is not valid",
            ));
        }
        // An unknown tenant and a wrong key get the same answer: the API does not tell which
        // tenants exist.
        match app.tenants.get(&tenant) {
            Some(config) if bearer_matches(&parts.headers, &config) => Ok(Self { tenant: config }),
            _ => Err(ApiError::unauthenticated()),
        }
    }
}

/// Whether the request carries `Authorization: Bearer <the tenant's API key>` (never its SSO
/// secret: the two are kept apart, see `tenant`).
pub fn bearer_matches(headers: &HeaderMap, tenant: &Tenant) -> bool {
    let Some(secret) = &tenant.api_key else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|presented| secret.matches(presented.trim().as_bytes()))
}
