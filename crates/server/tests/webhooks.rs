//! Webhooks end to end over real sockets: a tenant's HTTPS endpoint (a local receiver on
//! 127.0.0.1 with its own certificate, which the server is told to trust with
//! `--webhook-ca`) receives each committed change, signed; a receiver that fails is retried
//! with backoff; a change whose deliveries keep failing survives a server restart and is
//! delivered by the restarted server, under the same delivery id.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Request, Response, StatusCode};
use clap::Parser;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use image_chat_protocol::{Auth, ClientMessage, Hello, ImageId, TenantId};
use image_chat_server::config::{self, Cli, Command};
use image_chat_server::webhooks::sign::{
    DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::{Client, commit, create_op};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const SECRET: &str = "webhook-secret-0123456789abcdef0123456789";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    answered: StatusCode,
}

/// A local HTTPS endpoint that records every request and fails while told to.
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Received>>,
    /// Requests still to fail with 503 before succeeding.
    fail_next: AtomicUsize,
    /// Fail every request while set.
    fail_all: AtomicBool,
}

impl Receiver {
    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `pred` holds over what was received.
    async fn wait_until(&self, what: &str, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.all();
            if pred(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts the receiver; returns its port and its certificate (PEM) for `--webhook-ca`.
async fn start_receiver(receiver: Arc<Receiver>) -> (u16, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(generated.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let receiver = Arc::clone(&receiver);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |request: Request<Incoming>| {
                    let receiver = Arc::clone(&receiver);
                    async move { Ok::<_, Infallible>(record(&receiver, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, generated.cert.pem())
}

async fn record(receiver: &Receiver, request: Request<Incoming>) -> Response<String> {
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(axum::body::Body::new(request.into_body()), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    let fail = receiver.fail_all.load(Ordering::SeqCst)
        || receiver
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let answered = if fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    };
    receiver.got.lock().unwrap().push(Received {
        headers,
        body,
        answered,
    });
    let mut response = Response::new(String::new());
    *response.status_mut() = answered;
    response
}

fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received.headers.get(name).unwrap().to_str().unwrap()
}

/// What a site's receiver does first: check the signature and the timestamp.
fn assert_signed(received: &Received) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    verify(
        SECRET.as_bytes(),
        header(received, TIMESTAMP_HEADER),
        header(received, SIGNATURE_HEADER),
        &received.body,
        now,
        300,
    )
    .unwrap();
    // Tampering is detected.
    let mut tampered = received.body.clone();
    tampered[0] = b' ';
    assert!(
        verify(
            SECRET.as_bytes(),
            header(received, TIMESTAMP_HEADER),
            header(received, SIGNATURE_HEADER),
            &tampered,
            now,
            300
        )
        .is_err()
    );
}

fn body(received: &Received) -> serde_json::Value {
    serde_json::from_slice(&received.body).unwrap()
}

fn serve_args(dir: &std::path::Path) -> config::ServeArgs {
    let db = dir.join("db");
    let tenants = dir.join("tenants.toml");
    let ca = dir.join("ca.pem");
    let cli = Cli::try_parse_from([
        "image-chat-server",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-demo-tenant",
        "--database",
        db.to_str().unwrap(),
        "--tenants",
        tenants.to_str().unwrap(),
        "--webhook-ca",
        ca.to_str().unwrap(),
    ])
    .unwrap();
    match cli.command {
        Command::Serve(args) => *args,
        _ => unreachable!(),
    }
}

fn hello() -> Hello {
    Hello {
        protocol: 1,
        tenant_id: TenantId::new("acme"),
        subject: ImageId::new("photo-1").into(),
        auth: Some(Auth::Anonymous {
            name: "Ada".into(),
            token: None,
        }),
        resume: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_posted_signed_retried_and_survive_a_restart() {
    let receiver = Arc::new(Receiver::default());
    let (port, ca_pem) = start_receiver(Arc::clone(&receiver)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
    std::fs::write(
        dir.path().join("tenants.toml"),
        format!(
            "[[tenant]]\nid = \"acme\"\norigins = [\"localhost\"]\nanonymous = \"allow\"\n\n\
             [tenant.webhook]\nurl = \"https://localhost:{port}/hooks/image-chat?site=1\"\n\
             secret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    let args = serve_args(dir.path());
    let server = config::start(&args).await.unwrap();

    // 1. The first attempt fails (503); the retry, about a second later, succeeds.
    receiver.fail_next.store(1, Ordering::SeqCst);
    let mut ada = Client::join_with(server.local_addr(), hello()).await;
    let seq = commit(
        &mut ada,
        ClientMessage::CreateChat(create_op(0.25, 0.5, "first")),
    )
    .await;
    assert_eq!(seq, 1);
    let got = receiver
        .wait_until("the retry", |got| {
            got.iter().any(|r| r.answered.is_success())
        })
        .await;
    assert_eq!(got.len(), 2, "one failure, one success: {got:#?}");
    assert_eq!(got[0].answered, StatusCode::SERVICE_UNAVAILABLE);
    for attempt in &got {
        assert_signed(attempt);
        assert_eq!(attempt.headers["content-type"], "application/json");
        assert_eq!(
            attempt.headers["host"],
            format!("localhost:{port}").as_str()
        );
    }
    // Same change, same bytes, same idempotency key; each attempt signed afresh.
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        header(&got[0], DELIVERY_HEADER),
        header(&got[1], DELIVERY_HEADER)
    );
    assert_eq!(
        header(&got[1], "idempotency-key"),
        header(&got[1], DELIVERY_HEADER)
    );
    let first = body(&got[1]);
    assert_eq!(first["id"], header(&got[1], DELIVERY_HEADER));
    assert_eq!(
        (first["tenant"].as_str(), first["image"].as_str()),
        (Some("acme"), Some("photo-1"))
    );
    assert_eq!(first["seq"], 1);
    assert_eq!(first["change"]["type"], "new-image-chat");
    assert_eq!(first["change"]["chat"]["comments"][0]["text"], "first");

    // 2. The receiver goes down; a change is committed (acked at once: delivery never holds up
    //    the live path) and its first attempt fails; the server restarts.
    receiver.fail_all.store(true, Ordering::SeqCst);
    let seq = commit(
        &mut ada,
        ClientMessage::CreateChat(create_op(0.5, 0.5, "second")),
    )
    .await;
    assert_eq!(seq, 2);
    let failed = receiver
        .wait_until("a failed attempt at the second change", |got| {
            got.iter().any(|r| body(r)["seq"] == 2)
        })
        .await;
    let second_id = failed
        .iter()
        .find(|r| body(r)["seq"] == 2)
        .map(|r| header(r, DELIVERY_HEADER).to_owned())
        .unwrap();
    drop(ada);
    server.shutdown().await;
    let delivered_before = receiver
        .all()
        .iter()
        .filter(|r| r.answered.is_success())
        .count();
    assert_eq!(delivered_before, 1);

    // 3. The receiver is back; the restarted server (same database) delivers the change it
    //    had queued, under the same delivery id, exactly as signed content.
    receiver.fail_all.store(false, Ordering::SeqCst);
    let server = config::start(&args).await.unwrap();
    let got = receiver
        .wait_until("the second change after the restart", |got| {
            got.iter()
                .any(|r| r.answered.is_success() && body(r)["seq"] == 2)
        })
        .await;
    let delivered = got
        .iter()
        .find(|r| r.answered.is_success() && body(r)["seq"] == 2)
        .unwrap();
    assert_signed(delivered);
    assert_eq!(header(delivered, DELIVERY_HEADER), second_id);
    assert_eq!(
        body(delivered)["change"]["chat"]["comments"][0]["text"],
        "second"
    );
    // Each change was delivered successfully exactly once here (at least once in general).
    let successes: Vec<_> = got.iter().filter(|r| r.answered.is_success()).collect();
    assert_eq!(successes.len(), 2);
    server.shutdown().await;
}
