//! Static files: the demo site (`/`) and the built widget (`/pkg/`), with the headers public
//! assets need to be embedded on other sites and nothing more.
//!
//! - Any origin may load them (`Access-Control-Allow-Origin: *`, `Cross-Origin-Resource-Policy:
//!   cross-origin`). Every real site embeds the widget from another origin than the server's,
//!   and the loader fetches the glue with a module `import()` and the wasm with `fetch`, both
//!   CORS requests: without the header the browser refuses them. The files are the same for
//!   everyone and no request carries credentials, so the wildcard gives a page nothing it could
//!   not get with `curl`; who may *use* the server is decided by the WebSocket's origin check
//!   (the tenant's `origins`), which this does not touch.
//! - Precompressed twins (`x.wasm.br`, `x.wasm.gz`, written by `scripts/build-widget.sh`) are
//!   sent when the browser accepts them, with `Vary: Accept-Encoding` so a shared cache keeps
//!   the encodings apart; the wasm keeps `Content-Type: application/wasm` either way, which
//!   streaming compilation requires.
//! - `X-Content-Type-Options: nosniff` on every file, so nothing served here is ever run as a
//!   type it was not sent as.
//! - The demo pages (HTML) carry a strict Content Security Policy ([`DEMO_CSP`]).
//! - Nothing outside the directory is served: a symlink inside it that leads out (to
//!   `/etc/passwd`, to the database) answers 404, as if it did not exist. `ServeDir` rejects
//!   `..` and absolute paths but follows symlinks wherever they point.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Content Security Policy of the demo pages: their own scripts and the widget (served from
/// here, compiled with `wasm-unsafe-eval`), the WebSocket back to this server (`'self'` covers
/// `ws:`/`wss:` on the same host and port), their own images, and inline styles (the demo
/// page's `<style>` and the widget's injected stylesheet). No inline script, no plugin, no
/// framing, no `<base>` or form redirection.
pub const DEMO_CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What a directory serves, which decides the headers beyond the common ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The demo site: its HTML pages get [`DEMO_CSP`].
    Site,
    /// The built widget (no pages).
    Widget,
}

/// A service answering with the files under `dir`.
pub fn router(dir: &Path, kind: Kind) -> Router {
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    // A directory that cannot be resolved now (missing) keeps its path as given: every file
    // under it then fails the containment check, which is what a missing directory means.
    let root = Arc::new(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
    let mut router = Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn_with_state(root, confine))
        .layer(common_header(header::VARY, "accept-encoding"))
        .layer(common_header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .layer(common_header(
            HeaderName::from_static("cross-origin-resource-policy"),
            "cross-origin",
        ))
        .layer(common_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if kind == Kind::Site {
        router = router.layer(middleware::map_response(demo_csp));
    }
    router
}

fn common_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

/// Adds [`DEMO_CSP`] to HTML responses.
async fn demo_csp(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEMO_CSP),
        );
    }
    response
}

/// Answers 404 for a request whose file (or compressed twin, or directory index) resolves,
/// through symlinks, to somewhere outside `root`; passes everything else on to `ServeDir`.
async fn confine(State(root): State<Arc<PathBuf>>, request: Request, next: Next) -> Response {
    if let Some(path) = requested_file(&root, request.uri().path()) {
        let accepts = request
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Over-inclusive on purpose (`br;q=0` counts): checking a twin that will not be sent
        // only costs a lookup.
        let twins = [("br", ".br"), ("gzip", ".gz")]
            .into_iter()
            .filter(|(encoding, _)| accepts.contains(encoding))
            .map(|(_, suffix)| suffix);
        let suffixes: Vec<&str> = std::iter::once("").chain(twins).collect();
        if escapes(&root, &path, &suffixes).await {
            tracing::warn!(path = %path.display(), "static file leads outside its directory");
            return StatusCode::NOT_FOUND.into_response();
        }
    }
    next.run(request).await
}

/// The file a request path names under `root`, decoded the way `ServeDir` does; `None` for a
/// path `ServeDir` itself refuses (`..`, absolute, not UTF-8).
fn requested_file(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode_str(uri_path.trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    let mut path = root.to_path_buf();
    for component in Path::new(&*decoded).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::Prefix(_) | Component::RootDir | Component::ParentDir => return None,
        }
    }
    Some(path)
}

/// Whether any file `ServeDir` may open for `path` (itself with each of `suffixes`: `""` and
/// the compressed twins the browser accepts; for a directory, its `index.html` likewise) exists
/// and resolves outside `root`.
async fn escapes(root: &Path, path: &Path, suffixes: &[&str]) -> bool {
    let mut bases = vec![path.to_path_buf()];
    if tokio::fs::metadata(path).await.is_ok_and(|m| m.is_dir()) {
        bases.push(path.join("index.html"));
    }
    for base in bases {
        for suffix in suffixes {
            let mut candidate = base.clone().into_os_string();
            candidate.push(suffix);
            // Canonicalizing follows every symlink on the way; a file that does not exist
            // cannot be served either, so it is no escape.
            if let Ok(real) = tokio::fs::canonicalize(&candidate).await
                && !real.starts_with(root)
            {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_file_decodes_like_serve_dir_and_refuses_what_it_refuses() {
        let root = Path::new("/srv/www");
        assert_eq!(
            requested_file(root, "/pkg/a%20b.js"),
            Some(PathBuf::from("/srv/www/pkg/a b.js"))
        );
        assert_eq!(
            requested_file(root, "/./x"),
            Some(PathBuf::from("/srv/www/x"))
        );
        assert_eq!(requested_file(root, "/a/../../etc/passwd"), None);
        assert_eq!(requested_file(root, "/%2e%2e/etc/passwd"), None);
        assert_eq!(requested_file(root, "/%ff"), None);
    }
}
