//! The delivery loop: claims due outbox rows, POSTs them, records the outcome. One per node,
//! off the live path (a commit only writes its row and pokes [`crate::app::App::webhook_wake`]).
//!
//! Bounded: at most [`BATCH`] deliveries in flight per node, each with a [`REQUEST_TIMEOUT`]
//! for connecting, the TLS handshake and the answer's head; a claimed row is leased for
//! [`LEASE`], longer than any attempt, so no other node takes it meanwhile. A row whose tenant
//! no longer has a webhook (removed on reload) is dropped when claimed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use super::backoff::{self, Next};
use super::sign::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};
use super::target::WebhookTarget;
use crate::app::{App, now_ms};
use crate::store::OutboxItem;

/// Deliveries claimed (and so in flight) at once per node.
pub const BATCH: u32 = 16;
/// Time for one attempt: connect, TLS, request, the answer's head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed row stays this node's.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often the outbox is looked at without a poke (retries falling due, rows left by a node
/// that died, commits of other nodes).
pub const POLL: Duration = Duration::from_secs(1);

/// How the dispatcher reaches endpoints.
#[derive(Clone, Debug, Default)]
pub struct WebhookOptions {
    /// Certificate authorities trusted besides the public ones (webpki roots): a private CA, or
    /// a test's own certificate.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

/// Why one attempt failed (logged; the delivery is retried).
#[derive(Debug, Error)]
pub enum DeliveryError {
    /// The host name did not resolve, or the connection was refused or dropped.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// The TLS handshake failed (certificate not trusted, wrong name…).
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// No answer in time.
    #[error("no answer within {REQUEST_TIMEOUT:?}")]
    Timeout,
    /// The endpoint answered with a status other than 2xx.
    #[error("endpoint answered {0}")]
    Status(u16),
    /// The request could not be built (a header value the URL produced).
    #[error("request: {0}")]
    Request(String),
}

/// Starts the node's delivery loop; it ends when the server shuts down.
pub fn spawn(app: Arc<App>, options: WebhookOptions) -> JoinHandle<()> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in options.extra_roots {
        if let Err(err) = roots.add(cert) {
            tracing::warn!(%err, "ignoring an extra webhook CA certificate");
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    let connector = match tls {
        Ok(config) => Some(TlsConnector::from(Arc::new(config))),
        Err(err) => {
            // Only https endpoints are affected; they are retried and logged.
            tracing::error!(%err, "webhook TLS configuration failed");
            None
        }
    };
    tokio::spawn(run(app, connector))
}

async fn run(app: Arc<App>, connector: Option<TlsConnector>) {
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            () = app.webhook_wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
        // Drain what is due, batch by batch.
        loop {
            let now = now_ms();
            let lease = now + LEASE.as_millis() as u64;
            let items = match app.store.claim_webhooks(now, lease, BATCH).await {
                Ok(items) => items,
                Err(err) => {
                    tracing::warn!(%err, "cannot read the webhook outbox");
                    break;
                }
            };
            if items.is_empty() {
                break;
            }
            let attempts = items
                .into_iter()
                .map(|item| attempt(&app, connector.as_ref(), item));
            futures_util::future::join_all(attempts).await;
            if app.shutdown.is_cancelled() {
                return;
            }
        }
    }
}

/// One attempt at `item`, and its outcome recorded in the outbox.
async fn attempt(app: &App, connector: Option<&TlsConnector>, item: OutboxItem) {
    let target = app
        .tenants
        .get(&item.tenant)
        .and_then(|t| t.webhook.clone());
    let Some(target) = target else {
        tracing::warn!(tenant = %item.tenant, delivery = %item.delivery_id,
            "dropping a webhook delivery: the tenant has no webhook any more");
        if let Err(err) = app.store.webhook_done(item.id).await {
            tracing::warn!(%err, "cannot remove a webhook delivery");
        }
        return;
    };
    let result = tokio::time::timeout(REQUEST_TIMEOUT, deliver(&target, connector, &item))
        .await
        .unwrap_or(Err(DeliveryError::Timeout));
    let recorded = match result {
        Ok(()) => {
            tracing::debug!(tenant = %item.tenant, delivery = %item.delivery_id, "webhook delivered");
            app.store.webhook_done(item.id).await
        }
        Err(err) => {
            let failures = item.attempts.saturating_add(1);
            match backoff::after_failure(failures, now_ms(), rand::random::<f64>()) {
                Next::RetryAt(due) => {
                    tracing::info!(tenant = %item.tenant, delivery = %item.delivery_id,
                        failures, %err, "webhook delivery failed; will retry");
                    app.store.webhook_retry(item.id, failures, due).await
                }
                Next::GiveUp => {
                    tracing::error!(tenant = %item.tenant, delivery = %item.delivery_id,
                        failures, %err, "webhook delivery failed too often; dropped");
                    app.store.webhook_done(item.id).await
                }
            }
        }
    };
    if let Err(err) = recorded {
        // The lease runs out and the row is tried again: at least once, maybe twice.
        tracing::warn!(%err, "cannot record a webhook outcome");
    }
}

/// POSTs `item` to `target`: `Ok` on a 2xx answer.
async fn deliver(
    target: &WebhookTarget,
    connector: Option<&TlsConnector>,
    item: &OutboxItem,
) -> Result<(), DeliveryError> {
    let url = &target.url;
    let timestamp = now_ms() / 1000;
    let request = Request::post(url.path.as_str())
        .header(header::HOST, url.host_header())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "image-chat-webhook/1")
        .header(TIMESTAMP_HEADER, timestamp)
        .header(
            SIGNATURE_HEADER,
            signature(target.secret.expose(), timestamp, item.body.as_bytes()),
        )
        .header(DELIVERY_HEADER, item.delivery_id.as_str())
        .header("idempotency-key", item.delivery_id.as_str())
        .body(Body::from(item.body.clone()))
        .map_err(|e| DeliveryError::Request(e.to_string()))?;
    let tcp = connect(&url.host, url.port).await?;
    let status = if url.tls {
        let connector = connector
            .ok_or_else(|| DeliveryError::Tls(std::io::Error::other("TLS is not configured")))?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| DeliveryError::Tls(std::io::Error::other(e)))?;
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(DeliveryError::Tls)?;
        exchange(stream, request).await?
    } else {
        exchange(tcp, request).await?
    };
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(DeliveryError::Status(status))
    }
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, DeliveryError> {
    // An IP literal is used as is; a name is resolved by the system resolver.
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return TcpStream::connect(SocketAddr::new(ip, port))
            .await
            .map_err(DeliveryError::Connect);
    }
    TcpStream::connect((host, port))
        .await
        .map_err(DeliveryError::Connect)
}

/// One HTTP/1.1 request on `io`; the answer's status (its body is not read).
async fn exchange<IO>(io: IO, request: Request<Body>) -> Result<u16, DeliveryError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await;
    driver.abort();
    Ok(response?.status().as_u16())
}
