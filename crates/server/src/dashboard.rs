//! The site owner's dashboard at `/admin`: one HTML page, its stylesheet and its script, built
//! into the binary (`crates/server/dashboard/`), talking only to the admin API
//! ([`crate::admin_api`]) of the same server with the tenant's API key, which the person pastes
//! into the page (kept in `sessionStorage`, sent as `Authorization: Bearer …`, never in a URL).
//!
//! The files are served with a strict Content Security Policy ([`DASHBOARD_CSP`]): the page's
//! own script and stylesheet only, requests to this server only, no inline script or style, no
//! framing. The page draws its chart as inline SVG and writes every text that comes from users
//! with `textContent`, so a hostile comment is shown as text, never run.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Where the dashboard is served.
pub const PATH: &str = "/admin";

/// Content Security Policy of the dashboard's files: its own script and stylesheet, `fetch`
/// to this server, images only as `data:` (none today), nothing inline, no plugins, no
/// framing, no `<base>`, forms submit nowhere (the login form is handled by the script).
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/dashboard.js");
const STYLE: &str = include_str!("../dashboard/dashboard.css");

/// The dashboard's routes (to merge into the server's router; they do not overlap
/// `/admin/api/`).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            PATH,
            get(|| async { file(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route("/admin/", get(|| async { Redirect::permanent(PATH) }))
        .route(
            "/admin/dashboard.js",
            get(|| async { file(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/admin/dashboard.css",
            get(|| async { file(STYLE, "text/css; charset=utf-8") }),
        )
}

/// One of the files with the headers every one of them gets: the CSP, no sniffing, no
/// referrer (the page's URL is nobody's business), and revalidation (a new server version
/// must not run with an old script).
fn file(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DASHBOARD_CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        body,
    )
        .into_response()
}
