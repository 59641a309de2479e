//! SIGHUP reloads the tenants file and the TLS certificate of a running `image-chat-server`
//! without dropping anyone: after the signal a newly listed origin is allowed, a removed tenant
//! is refused, new handshakes get the renewed certificate, and a WebSocket opened before the
//! reload keeps working; a changed admin API key applies to the next request. A reload with an
//! invalid file changes nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::{ClientMessage, Hello, ServerMessage, TenantId};
use rustls_pki_types::{CertificateDer, ServerName};
use support::api::request;
use support::process::ServerProcess;
use support::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

struct Cert {
    der: CertificateDer<'static>,
    pem: String,
    key_pem: String,
}

fn new_cert() -> Cert {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Cert {
        der: generated.cert.der().clone(),
        pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
    }
}

/// Writes `text` to `path` the way renewal tools do: a new file renamed over the old one.
fn replace_file(path: &Path, text: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

fn install(dir: &Path, cert: &Cert) {
    replace_file(&dir.join("cert.pem"), &cert.pem);
    replace_file(&dir.join("key.pem"), &cert.key_pem);
}

fn tenants(entries: &[(&str, &[&str])]) -> String {
    entries
        .iter()
        .map(|(id, origins)| {
            let origins: Vec<String> = origins.iter().map(|o| format!("{o:?}")).collect();
            format!(
                "[[tenant]]\nid = {id:?}\norigins = [{}]\nanonymous = \"allow\"\n\n",
                origins.join(", ")
            )
        })
        .collect()
}

/// Opens wss://localhost:PORT/ws from a page on `origin`, trusting every certificate in
/// `trusted`; also returns the certificate the server presented.
async fn wss(
    server: &ServerProcess,
    trusted: &[&Cert],
    origin: &str,
) -> (Wss, CertificateDer<'static>) {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let stream = tokio::time::timeout(
        WAIT,
        support::wss::connector(trusted.iter().map(|cert| &cert.der))
            .connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("TLS handshake timed out")
    .unwrap();
    let presented = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    let mut request = format!("wss://localhost:{}/ws", server.addr.port())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .expect("WebSocket handshake timed out")
        .unwrap();
    (ws, presented)
}

fn hello_to(tenant: &str) -> ClientMessage {
    ClientMessage::Hello(Hello {
        tenant_id: TenantId::new(tenant),
        ..hello("reload-img", None)
    })
}

async fn send(ws: &mut Wss, message: &ClientMessage) {
    ws.send(Message::text(message.to_json())).await.unwrap();
}

/// The next message that is not a presence update, or the close code.
async fn next(ws: &mut Wss) -> Result<ServerMessage, u16> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("nothing in time")
            .expect("socket ended without a close frame")
            .unwrap();
        match frame {
            Message::Text(text) => match ServerMessage::from_json(&text).unwrap() {
                ServerMessage::Presence(_) => continue,
                other => return Ok(other),
            },
            Message::Close(close) => return Err(close.map_or(1005, |c| u16::from(c.code))),
            _ => continue,
        }
    }
}

/// Says hello as `tenant`: `Ok` once welcomed, else the close code.
async fn join(ws: &mut Wss, tenant: &str) -> Result<(), u16> {
    send(ws, &hello_to(tenant)).await;
    loop {
        match next(ws).await? {
            ServerMessage::Welcome(_) => return Ok(()),
            ServerMessage::Error(_) => continue, // the close frame follows
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Waits until the server has logged `needle` `count` times.
async fn logged(server: &ServerProcess, needle: &str, count: usize) {
    for _ in 0..200 {
        if server.logs().matches(needle).count() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{needle:?} not logged {count} times:\n{}", server.logs());
}

#[tokio::test]
async fn sighup_reloads_tenants_and_certificate_and_keeps_open_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let (old, renewed) = (new_cert(), new_cert());
    let both = [&old, &renewed];
    install(dir.path(), &old);
    let tenants_file = dir.path().join("tenants.toml");
    let (a, b) = ("https://a.example", "https://b.example");
    std::fs::write(&tenants_file, tenants(&[("acme", &[a]), ("gone", &[a, b])])).unwrap();
    let server = ServerProcess::serve(
        dir.path(),
        &[
            "--tls-cert".as_ref(),
            dir.path().join("cert.pem").as_os_str(),
            "--tls-key".as_ref(),
            dir.path().join("key.pem").as_os_str(),
            "--tenants".as_ref(),
            tenants_file.as_os_str(),
        ],
        &[("RUST_LOG", "info")],
        true,
    );
    assert_eq!(server.scheme, "https");

    // Before: page A may use acme, page B may not; the old certificate is presented.
    let (mut open, presented) = wss(&server, &both, a).await;
    assert_eq!(presented, old.der);
    join(&mut open, "acme").await.unwrap();
    let (mut ws, _) = wss(&server, &both, b).await;
    assert_eq!(join(&mut ws, "acme").await, Err(4403));
    let (mut ws, _) = wss(&server, &both, b).await;
    join(&mut ws, "gone").await.unwrap();

    // The operator adds B to acme, removes `gone`, installs a renewed certificate, sends HUP.
    std::fs::write(&tenants_file, tenants(&[("acme", &[a, b])])).unwrap();
    install(dir.path(), &renewed);
    server.signal("HUP");
    logged(&server, "configuration reloaded", 1).await;

    let (mut ws, presented) = wss(&server, &both, b).await;
    assert_eq!(
        presented, renewed.der,
        "new handshakes get the renewed certificate"
    );
    join(&mut ws, "acme").await.unwrap();
    let (mut ws, _) = wss(&server, &both, b).await;
    assert_eq!(
        join(&mut ws, "gone").await,
        Err(4404),
        "a removed tenant is refused"
    );

    // The socket opened before the reload still works: an op is committed and echoed.
    let op = create_op(0.25, 0.75, "across the reload");
    send(&mut open, &ClientMessage::CreateChat(op.clone())).await;
    match next(&mut open).await {
        Ok(ServerMessage::Ack(ack)) => assert_eq!(ack.broadcast_id, op.broadcast_id),
        other => panic!("expected the ack, got {other:?}"),
    }
    assert!(matches!(
        next(&mut open).await,
        Ok(ServerMessage::NewImageChat(_))
    ));

    // A broken tenants file changes nothing: B still gets in, the certificate stays.
    std::fs::write(&tenants_file, "[[tenant]]\nid = \"acme\"\norigins = 7\n").unwrap();
    server.signal("HUP");
    logged(&server, "reload failed", 1).await;
    let (mut ws, presented) = wss(&server, &both, b).await;
    assert_eq!(presented, renewed.der);
    join(&mut ws, "acme").await.unwrap();
    let op = create_op(0.5, 0.5, "still here");
    send(&mut open, &ClientMessage::CreateChat(op.clone())).await;
    assert!(matches!(next(&mut open).await, Ok(ServerMessage::Ack(_))));
}

/// The admin API's key is the tenants file's: a SIGHUP that changes it takes effect on the next
/// request (the old key is refused, the new one works); a broken file keeps the key in force.
#[tokio::test]
async fn sighup_changes_the_admin_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let tenants_file = dir.path().join("tenants.toml");
    let with_key = |key: &str| {
        format!(
            "[[tenant]]\nid = \"acme\"\napi_key = \"{key}\"\norigins = [\"localhost\"]\n\
             anonymous = \"allow\"\n"
        )
    };
    let (old, new) = (
        "old-admin-key-0123456789abcdef01234567",
        "new-admin-key-0123456789abcdef01234567",
    );
    std::fs::write(&tenants_file, with_key(old)).unwrap();
    let server = ServerProcess::serve(
        dir.path(),
        &["--tenants".as_ref(), tenants_file.as_os_str()],
        &[("RUST_LOG", "info")],
        true,
    );
    let status = |key: &'static str| {
        let addr = server.addr;
        async move {
            request(
                addr,
                "GET",
                "/admin/api/v1/tenants/acme/bans",
                &format!("Authorization: Bearer {key}\r\n"),
                "",
            )
            .await
            .status
        }
    };
    assert_eq!((status(old).await, status(new).await), (200, 401));

    replace_file(&tenants_file, &with_key(new));
    server.signal("HUP");
    logged(&server, "configuration reloaded", 1).await;
    assert_eq!((status(old).await, status(new).await), (401, 200));

    std::fs::write(&tenants_file, "[[tenant]]\nid = \"acme\"\norigins = 7\n").unwrap();
    server.signal("HUP");
    logged(&server, "reload failed", 1).await;
    assert_eq!((status(old).await, status(new).await), (401, 200));
}
