//! The release widget compiled into the binary (by `build.rs` from `scripts/build-widget.sh`'s
//! `pkg/`): `/embed.js` and `/pkg/…` served from memory, so a server needs no files beside it.
//! `--pkg-dir` replaces it with a directory (see `http`).
//!
//! The answers carry what [`crate::statics`] gives files on disk: the precompressed twin the
//! browser accepts (Brotli, then gzip) with `Vary: Accept-Encoding`, the type by extension
//! (`application/wasm` whichever twin is sent, as streaming compilation requires), `nosniff`,
//! and CORS / CORP headers that let pages on any origin load them. An ETag (a hash of the file,
//! computed at build time) lets browsers revalidate with one small `304`.
//!
//! A binary built without a widget answers `503` with a sentence saying how to get one, and
//! logs the same at startup: never a silently broken embed.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Path under `pkg/` (`embed.js`, `image_chat_bg.wasm`, `snippets/…`).
    pub path: &'static str,
    /// The file.
    pub identity: &'static [u8],
    /// Its Brotli twin, if the build wrote one.
    pub br: Option<&'static [u8]>,
    /// Its gzip twin, if the build wrote one.
    pub gzip: Option<&'static [u8]>,
    /// Strong validator of `identity` (quoted).
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/widget.rs"));

/// What `/embed.js` answers in a binary built without the widget.
pub const MISSING: &str = "this image-chat-server was built without the widget: run \
`bash scripts/build-widget.sh` and build the server again, or start it with --pkg-dir DIR\n";

/// Whether this binary carries the widget.
pub fn has_widget() -> bool {
    WIDGET.is_some()
}

/// The embedded file at `path` (relative to `pkg/`).
pub fn find(path: &str) -> Option<&'static Asset> {
    WIDGET?.iter().find(|asset| asset.path == path)
}

/// Content encodings this module can send, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Brotli twin.
    Br,
    /// gzip twin.
    Gzip,
    /// The file as built.
    Identity,
}

/// The best encoding `asset` has that `accept_encoding` admits. A coding listed with `q=0` is
/// refused; any other listing (with or without a weight) is accepted.
pub fn choose(asset: &Asset, accept_encoding: &str) -> Encoding {
    let accepts = |coding: &str| {
        accept_encoding.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let named = parts
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case(coding));
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            named && !refused
        })
    };
    if asset.br.is_some() && accepts("br") {
        Encoding::Br
    } else if asset.gzip.is_some() && accepts("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// The `Content-Type` of a widget file.
fn content_type(path: &str) -> &'static str {
    if path.ends_with(".wasm") {
        "application/wasm"
    } else if path.ends_with(".js") {
        "text/javascript"
    } else {
        "application/octet-stream"
    }
}

/// Answers a GET for the embedded file `path` (axum answers HEAD with the same headers).
pub fn respond(path: &str, request_headers: &HeaderMap) -> Response {
    let Some(asset) = find(path) else {
        return if has_widget() {
            StatusCode::NOT_FOUND.into_response()
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, MISSING).into_response()
        };
    };
    let accept = request_headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = choose(asset, accept);
    let mut headers = HeaderMap::new();
    let static_header = |v: &'static str| HeaderValue::from_static(v);
    headers.insert(header::CONTENT_TYPE, static_header(content_type(path)));
    headers.insert(header::VARY, static_header("accept-encoding"));
    headers.insert(header::ETAG, static_header(asset.etag));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, static_header("*"));
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        static_header("cross-origin"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, static_header("nosniff"));
    let revalidated = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    if revalidated {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let body = match encoding {
        Encoding::Br => asset.br,
        Encoding::Gzip => asset.gzip,
        Encoding::Identity => None,
    }
    .unwrap_or(asset.identity);
    match encoding {
        Encoding::Br => {
            headers.insert(header::CONTENT_ENCODING, static_header("br"));
        }
        Encoding::Gzip => {
            headers.insert(header::CONTENT_ENCODING, static_header("gzip"));
        }
        Encoding::Identity => {}
    }
    (StatusCode::OK, headers, body).into_response()
}

/// `GET /embed.js`.
pub async fn embed_js(headers: HeaderMap) -> Response {
    respond("embed.js", &headers)
}

/// `GET /pkg/{*path}`.
pub async fn pkg(Path(path): Path<String>, headers: HeaderMap) -> Response {
    respond(&path, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Asset = Asset {
        path: "x.wasm",
        identity: b"plain",
        br: Some(b"br"),
        gzip: Some(b"gz"),
        etag: "\"1\"",
    };

    #[test]
    fn the_best_accepted_twin_is_chosen() {
        assert_eq!(choose(&BOTH, ""), Encoding::Identity);
        assert_eq!(choose(&BOTH, "gzip, deflate"), Encoding::Gzip);
        assert_eq!(choose(&BOTH, "gzip, deflate, br, zstd"), Encoding::Br);
        assert_eq!(choose(&BOTH, "br;q=0, gzip;q=0.5"), Encoding::Gzip);
        assert_eq!(choose(&BOTH, "BR"), Encoding::Br);
        assert_eq!(choose(&BOTH, "identity"), Encoding::Identity);
        let gzip_only = Asset { br: None, ..BOTH };
        assert_eq!(choose(&gzip_only, "br, gzip"), Encoding::Gzip);
    }

    #[test]
    fn a_wasm_file_keeps_its_type_whatever_the_encoding() {
        assert_eq!(content_type("image_chat_bg.wasm"), "application/wasm");
        assert_eq!(content_type("snippets/a/bulk.js"), "text/javascript");
    }
}
