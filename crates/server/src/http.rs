//! The HTTP surface: the WebSocket endpoint, a read-only JSON snapshot of an image, liveness
//! and readiness ([`health`]), the access log, and static files (the demo page and the built widget, see [`statics`]). Handlers only translate between
//! HTTP and the rest of the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper::upgrade::OnUpgrade;
use image_chat_protocol::{ErrorCode, ImageId, PageId, Position, Snapshot, Subject, TenantId};
use serde::{Deserialize, Serialize};
use tower_http::trace::TraceLayer;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::WebSocketConfig;

use crate::admission::{ConnectionPermit, PeerAddr, client_ip};
use crate::app::App;
use crate::embedded;
use crate::health;
use crate::listen::{self, Accepted, TakenSocket};
use crate::pseudonyms;
use crate::raw_socket::RawSocket;
use crate::session::{self, Peer};
use crate::statics;
use crate::store::ImageKey;

/// Largest WebSocket message the transport accepts. Larger than the protocol's frame limit so
/// that oversize-but-plausible frames get a precise `frame-too-large` error; far larger ones are
/// cut off by the transport (close code 1009) without being buffered whole.
pub const TRANSPORT_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Read buffer of a WebSocket, and the most it reads per call. The transport allocates it
/// eagerly and zero-fills it before every read, so it is memory every idle connection holds
/// (the transport's default, 128 KiB, would dominate; 4 KiB was a third of an idle
/// connection's heap; 1 KiB → 512 B took 0.4 KiB off each). Client frames are small (an op
/// is a few hundred bytes, at most `MAX_CLIENT_FRAME_BYTES`, and at most a few a second): a
/// larger one grows the buffer for itself and takes a few reads.
pub const TRANSPORT_READ_BUFFER_BYTES: usize = 512;

/// Where static files come from.
#[derive(Clone, Debug, Default)]
pub struct StaticDirs {
    /// The demo site (served at `/`).
    pub www: Option<PathBuf>,
    /// The built widget (served at `/pkg/`, its `embed.js` at `/embed.js`); `None`: the one
    /// built into the binary ([`embedded`]).
    pub pkg: Option<PathBuf>,
}

/// Builds the router.
pub fn router(app: Arc<App>, dirs: &StaticDirs) -> Router {
    let mut router = Router::new()
        .route("/ws", get(websocket))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/tenants/{tenant}/snapshot", get(snapshot))
        .with_state(Arc::clone(&app))
        .merge(crate::admin_api::router(app))
        .merge(crate::dashboard::router());
    // The widget: `--pkg-dir` (a build being worked on) replaces the one built into the binary,
    // `embed.js` included.
    if let Some(pkg) = &dirs.pkg {
        router = router
            .route_service(
                "/embed.js",
                statics::router(pkg, statics::Kind::Widget).into_service::<Body>(),
            )
            .nest_service("/pkg", statics::router(pkg, statics::Kind::Widget));
    } else {
        if !embedded::has_widget() {
            tracing::warn!("{}", embedded::MISSING.trim_end());
        }
        router = router
            .route("/embed.js", get(embedded::embed_js))
            .route("/pkg/{*path}", get(embedded::pkg));
    }
    if let Some(www) = &dirs.www {
        router = router.fallback_service(statics::router(www, statics::Kind::Site));
    }
    // One `info` line per HTTP request (a WebSocket counts once, at its upgrade) under the
    // `image_chat_server::access` target, with the method, path, status and latency. The query
    // string is left out (it may carry image ids a site considers private); `RUST_LOG` can
    // silence the target (`info,image_chat_server::access=warn`).
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(|request: &Request<Body>| {
                tracing::info_span!(
                    target: ACCESS_TARGET,
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                )
            })
            .on_request(())
            .on_response(
                |response: &Response, latency: Duration, _: &tracing::Span| {
                    tracing::info!(
                        target: ACCESS_TARGET,
                        status = response.status().as_u16(),
                        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                        "served"
                    );
                },
            )
            .on_body_chunk(())
            .on_eos(())
            .on_failure(()),
    )
}

/// The log target of the access log.
pub const ACCESS_TARGET: &str = "image_chat_server::access";

async fn websocket(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<PeerAddr>>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    if app.shutdown.is_cancelled() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    // Served without connect info (a router embedded elsewhere): no per-address limits.
    let ip = peer.map(|Extension(ConnectInfo(PeerAddr(addr)))| {
        client_ip(addr, &headers, app.security.trust_forwarded_for)
    });
    // Every TCP connection was counted against its peer's address when it was accepted
    // (`listen`), and that count lives as long as the socket, upgraded or not. Behind a trusted
    // proxy the peer is the proxy, so WebSockets are counted here, under the forwarded address,
    // with the same counter: before the upgrade, so a flood costs one small HTTP answer per
    // attempt and no WebSocket state. Browsers see a failed connection and back off.
    let counted_here = ip.filter(|_| app.security.trust_forwarded_for);
    let permit = match counted_here {
        Some(ip) => match app
            .connections_per_ip
            .try_acquire(ip, app.security.max_connections_per_ip)
        {
            Some(permit) => Some(permit),
            None => {
                tracing::debug!(%ip, "too many connections from one address");
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "10")],
                    "too many connections from this address",
                )
                    .into_response();
            }
        },
        None => None,
    };
    let peer = Peer { origin, ip, host };
    // The accept loop's connections (plain or TLS) are taken over after the upgrade
    // (`raw_socket`); axum's extractor only checks the request.
    let direct = request
        .extensions()
        .get::<Accepted>()
        .and(request.extensions().get::<OnUpgrade>().cloned());
    if let Err(rejection) = WebSocketUpgrade::from_request(request, &()).await {
        return rejection.into_response();
    }
    match direct {
        Some(on_upgrade) => direct_websocket(app, peer, &headers, on_upgrade, permit),
        None => {
            // Every connection comes through `listen`, which marks it: a router served some
            // other way has no socket to take over.
            tracing::error!("a WebSocket upgrade that did not come through the accept loop");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Answers a checked upgrade request on a connection of the accept loop and serves its
/// WebSocket over the taken-over socket (`raw_socket`): the image's pump writes to it directly
/// (`fanout`), through its TLS session if it has one.
fn direct_websocket(
    app: Arc<App>,
    peer: Peer,
    headers: &HeaderMap,
    on_upgrade: OnUpgrade,
    permit: Option<ConnectionPermit>,
) -> Response {
    // The key is there: axum's extractor refused the request otherwise.
    let accept = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|key| derive_accept_key(key.as_bytes()))
        .and_then(|accept| HeaderValue::from_str(&accept).ok());
    let tracked = Arc::clone(&app);
    tracked.connections.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(%err, "upgrade failed");
                return;
            }
        };
        // Taken apart at once: fields moved out of a struct one by one keep the whole struct's
        // room in this task for the connection's life (measured: ~300 B per idle connection).
        let Some(TakenSocket {
            stream,
            transport,
            read_ahead,
            permits,
        }) = listen::take_socket(upgraded)
        else {
            tracing::error!("an accepted connection's upgraded socket was not its own");
            return;
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(TRANSPORT_MAX_MESSAGE_BYTES))
            .max_frame_size(Some(TRANSPORT_MAX_MESSAGE_BYTES))
            .read_buffer_size(TRANSPORT_READ_BUFFER_BYTES);
        let backlog = app.limits.backlog_frames;
        let keep = Box::new((permits, permit));
        let socket = RawSocket::new(stream, transport, read_ahead, config, backlog, keep).await;
        let outlet = Arc::clone(socket.outlet());
        session::run(app, peer, socket, Some(outlet)).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let answer = response.headers_mut();
    answer.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    answer.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Some(accept) = accept {
        answer.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// `?image=ID` or `?page=ID` (exactly one: an image's or a page's discussions).
#[derive(Deserialize)]
struct SnapshotQuery {
    image: Option<String>,
    page: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody {
    code: ErrorCode,
    message: &'static str,
}

fn error(status: StatusCode, code: ErrorCode, message: &'static str) -> Response {
    (status, Json(ErrorBody { code, message })).into_response()
}

/// Takes one HTTP API request from the client address's budget; past it, the 429 answer (with
/// the seconds until the next request would be accepted).
fn api_refusal(
    app: &App,
    peer: Option<Extension<ConnectInfo<PeerAddr>>>,
    headers: &HeaderMap,
) -> Option<Response> {
    let peer = peer.map(|Extension(ConnectInfo(peer))| peer);
    let secs = api_wait(app, peer.as_ref(), headers)?;
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        "too many requests from this address; retry later",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Some(response)
}

/// Takes one HTTP API request (the public one or the admin API) from the client address's
/// budget; past it, the whole seconds (at least 1) until the next would be accepted.
pub(crate) fn api_wait(app: &App, peer: Option<&PeerAddr>, headers: &HeaderMap) -> Option<u64> {
    // Served without connect info (a router embedded elsewhere): no per-address limits.
    let PeerAddr(addr) = peer?;
    let ip = client_ip(*addr, headers, app.security.trust_forwarded_for);
    let wait = app
        .api_requests
        .try_take(&ip, tokio::time::Instant::now())
        .err()?;
    tracing::debug!(%ip, "HTTP API rate limit");
    // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Some(secs.max(1))
}

/// `GET /api/v1/tenants/{tenant}/snapshot?image=…` (or `?page=…`, a page's discussions on its
/// text): `{"position":…,"chats":[…]}`, the image's
/// snapshot as shared by every reader (see `snapshots`), so its size is bounded by the image's
/// byte limit.
async fn snapshot(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<PeerAddr>>>,
    Path(tenant): Path<String>,
    Query(query): Query<SnapshotQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = api_refusal(&app, peer, &headers) {
        return refused;
    }
    let tenant = TenantId::new(tenant);
    let subject = match (query.image, query.page) {
        (Some(image), None) => Subject::Image(ImageId::new(image)),
        (None, Some(page)) => Subject::Page(PageId::new(page)),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedFrame,
                "name exactly one of ?image= and ?page=",
            );
        }
    };
    if tenant.validate().is_err() || subject.validate().is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidId,
            "invalid tenant, image or page id",
        );
    }
    let Some(config) = app.tenants.get(&tenant) else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownTenant,
            "unknown tenant",
        );
    };
    // What anonymous people may read over the WebSocket is public anyway; a tenant that admits
    // only signed users keeps its discussions behind its API key here too.
    let privileged = crate::admin_api::bearer_matches(&headers, &config);
    if !config.publicly_readable() && !privileged {
        return error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::AuthenticationFailed,
            "this tenant's discussions need its API key (Authorization: Bearer …)",
        );
    }
    let key = ImageKey { tenant, subject };
    let encoded = if privileged {
        app.snapshots.get(app.store.as_ref(), &key).await
    } else {
        // Anyone may fetch this: signed users' ids (often an email) become pseudonyms.
        let pseudonymise = |snapshot: &mut Snapshot| {
            pseudonyms::snapshot(&app.identities, key.tenant.as_str(), snapshot);
        };
        app.public_snapshots
            .get_viewed(app.store.as_ref(), &key, pseudonymise)
            .await
    };
    match encoded {
        Ok(encoded) => {
            let body = snapshot_body(encoded.position, &encoded.json);
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(err) => {
            tracing::error!(%err, "snapshot failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "try again later",
            )
        }
    }
}

/// `{"position":…,` followed by the encoded snapshot's fields: the position and the snapshot
/// in one object without decoding or re-encoding the shared snapshot.
fn snapshot_body(position: Position, snapshot_json: &str) -> String {
    // Plain derived struct: encoding cannot fail.
    let position = serde_json::to_string(&position).unwrap_or_default();
    // An encoded `Snapshot` is one object with at least its `chats` field: `{"chats":…}`.
    let fields = snapshot_json.strip_prefix('{').unwrap_or(snapshot_json);
    ["{\"position\":", &position, ",", fields].concat()
}
