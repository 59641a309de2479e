//! Issue 12, items 3 and 7 over real sockets: a signed user works only for the tenant and the
//! server (audience) it was signed for; a bad, expired or future signature reads the same to the
//! client.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use image_chat_protocol::{
    Auth, ClientMessage, ErrorCode, Hello, ImageId, ServerMessage, TenantId,
};
use image_chat_server::app::SessionLimits;
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::http::StaticDirs;
use image_chat_server::limits::{Limits, TenantLimitOverrides};
use image_chat_server::secret::Secret;
use image_chat_server::sso::{self, Audience};
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::tenant::{AnonymousPolicy, OriginPolicy, Tenant, Tenants};
use image_chat_server::{RunningServer, Security, ServerParts};
use support::Client;

/// Shared by tenants `a` and `b` on purpose: a tenants file may not do this (it is refused at
/// load), so the server is built in code, to show that the signature alone keeps them apart.
const SHARED_SECRET: &str = "shared-secret-0123456789abcdef0123";
const SERVER_AUDIENCE: &str = "chat.a.example";

const READ_ONLY_API_KEY: &str = "read-only-api-key-0123456789abcdef";

fn tenant(id: &str, audience: Option<&str>) -> Tenant {
    Tenant {
        id: TenantId::new(id),
        origins: OriginPolicy::Localhost,
        anonymous: AnonymousPolicy::Deny,
        secret: Some(Secret::new(SHARED_SECRET)),
        api_key: None,
        sso_audience: audience.map(str::to_owned),
        sso_max_age: None,
        limits: TenantLimitOverrides::default(),
    }
}

async fn start(audience: Option<&str>) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("test setup");
    let store =
        SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).expect("test setup");
    let mut tenants = Tenants::default();
    tenants.insert(tenant("a", None));
    tenants.insert(tenant("b", None));
    tenants.insert(tenant("c", Some("c.example")));
    tenants.insert(Tenant {
        anonymous: AnonymousPolicy::ReadOnly,
        api_key: Some(Secret::new(READ_ONLY_API_KEY)),
        ..tenant("r", None)
    });
    let server = RunningServer::start(ServerParts {
        listen: "127.0.0.1:0".parse().expect("test setup"),
        store: Arc::new(store),
        broker: Arc::new(MemoryBroker::default()),
        presence: None,
        cluster_rates: None,
        tenants,
        limits: SessionLimits::default(),
        dirs: StaticDirs::default(),
        security: Security {
            limits: Limits {
                sso_audience: audience.map(str::to_owned),
                ..Limits::default()
            },
            tls: None,
        },
    })
    .await
    .expect("test setup");
    (server, dir)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("test setup")
        .as_millis() as u64
}

fn signed(tenant: &str, audience: &str, timestamp: u64) -> Auth {
    let to = Audience { tenant, audience };
    let (user_data, hash) = sso::sign(
        &Secret::new(SHARED_SECRET),
        to,
        r#"{"id":"alice.smith@example.com","name":"Alice"}"#,
        timestamp,
    );
    Auth::Sso {
        user_data,
        timestamp,
        hash,
    }
}

/// Issue 12 item 7: a read-only tenant's public snapshot showed signed users' raw ids.
#[tokio::test]
async fn anonymous_readers_see_pseudonyms_not_signed_users_ids() {
    let (server, _dir) = start(Some(SERVER_AUDIENCE)).await;
    let addr = server.local_addr();
    // Alice (signed) writes on the read-only tenant's image.
    let mut alice = Client::open(addr, None).await;
    alice
        .send(&ClientMessage::Hello(Hello {
            protocol: 1,
            tenant_id: TenantId::new("r"),
            subject: ImageId::new("img").into(),
            auth: Some(signed("r", SERVER_AUDIENCE, now_ms())),
            resume: None,
        }))
        .await;
    assert!(matches!(alice.recv().await, ServerMessage::Welcome(_)));
    support::commit(
        &mut alice,
        ClientMessage::CreateChat(support::create_op(0.5, 0.5, "hello")),
    )
    .await;
    let path = "/api/v1/tenants/r/snapshot?image=img";
    let (status, public) = support::http_get(addr, path).await;
    assert_eq!(status, 200);
    assert!(public.contains("hello"));
    assert!(!public.contains("alice.smith"), "{public}");
    let snapshot: serde_json::Value = serde_json::from_str(&public).expect("json");
    let shown = snapshot["chats"][0]["comments"][0]["author"]["id"]
        .as_str()
        .expect("an author id")
        .to_owned();
    assert!(shown.starts_with("sso~"), "{shown}");
    assert_eq!(
        snapshot["chats"][0]["comments"][0]["author"]["name"],
        "Alice"
    );
    // Stable: the same person keeps the same pseudonym.
    let (_, again) = support::http_get(addr, path).await;
    assert_eq!(again, public);
    // An anonymous viewer of the same image sees the same pseudonym in its welcome, and in
    // the events that follow.
    let mut reader = Client::join_with(
        addr,
        Hello {
            protocol: 1,
            tenant_id: TenantId::new("r"),
            subject: ImageId::new("img").into(),
            auth: None,
            resume: None,
        },
    )
    .await;
    let welcome = reader.welcome().clone();
    let chats = welcome.snapshot.expect("a snapshot").chats;
    assert_eq!(chats[0].comments[0].author.id, shown);
    support::commit(
        &mut alice,
        ClientMessage::CreateChat(support::create_op(0.2, 0.2, "live")),
    )
    .await;
    match reader.recv_skip_presence().await {
        ServerMessage::NewImageChat(e) => assert_eq!(e.chat.comments[0].author.id, shown),
        other => panic!("expected the new discussion, got {other:?}"),
    }
    // The tenant's API key shows the real ids.
    let raw = support::http_raw_with(
        addr,
        path,
        &format!("Authorization: Bearer {READ_ONLY_API_KEY}\r\n"),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("sso:alice.smith@example.com"));
    server.shutdown().await;
}

/// `Ok(user id)` or `Err((code, message))`.
async fn hello(
    addr: std::net::SocketAddr,
    tenant: &str,
    auth: Auth,
) -> Result<String, (ErrorCode, String)> {
    let mut client = Client::open(addr, None).await;
    client
        .send(&ClientMessage::Hello(Hello {
            protocol: 1,
            tenant_id: TenantId::new(tenant),
            subject: ImageId::new("img").into(),
            auth: Some(auth),
            resume: None,
        }))
        .await;
    match client.recv().await {
        ServerMessage::Welcome(w) => Ok(w.you.id),
        ServerMessage::Error(e) => {
            assert_eq!(client.closed().await, 4401);
            Err((e.code, e.message))
        }
        other => panic!("expected welcome or error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_payload_works_only_for_its_tenant_and_audience() {
    let (server, _dir) = start(Some(SERVER_AUDIENCE)).await;
    let addr = server.local_addr();
    let now = now_ms();
    // Signed for tenant a on this server: accepted by a.
    assert_eq!(
        hello(addr, "a", signed("a", SERVER_AUDIENCE, now)).await,
        Ok("sso:alice.smith@example.com".into())
    );
    // The same payload presented to tenant b, whose secret is the same: refused.
    let refused = hello(addr, "b", signed("a", SERVER_AUDIENCE, now)).await;
    assert_eq!(refused.unwrap_err().0, ErrorCode::AuthenticationFailed);
    // Signed for tenant a on another server (audience Y): refused here.
    let refused = hello(addr, "a", signed("a", "chat.b.example", now)).await;
    assert_eq!(refused.unwrap_err().0, ErrorCode::AuthenticationFailed);
    // A tenant's own audience wins over the server's.
    assert!(
        hello(addr, "c", signed("c", "c.example", now))
            .await
            .is_ok()
    );
    assert!(
        hello(addr, "c", signed("c", SERVER_AUDIENCE, now))
            .await
            .is_err()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_configured_audience_it_is_the_host_the_client_reached() {
    let (server, _dir) = start(None).await;
    let addr = server.local_addr();
    let now = now_ms();
    // tungstenite sends `Host: 127.0.0.1:<port>`.
    assert!(
        hello(addr, "a", signed("a", &addr.to_string(), now))
            .await
            .is_ok()
    );
    assert!(
        hello(addr, "a", signed("a", "chat.a.example", now))
            .await
            .is_err()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_expired_and_future_signatures_read_the_same() {
    let (server, _dir) = start(Some(SERVER_AUDIENCE)).await;
    let addr = server.local_addr();
    let now = now_ms();
    let day = Duration::from_secs(25 * 3600).as_millis() as u64;
    let expired = hello(addr, "a", signed("a", SERVER_AUDIENCE, now - day)).await;
    let future = hello(addr, "a", signed("a", SERVER_AUDIENCE, now + day)).await;
    let Auth::Sso {
        user_data,
        timestamp,
        ..
    } = signed("a", SERVER_AUDIENCE, now)
    else {
        unreachable!()
    };
    let forged = hello(
        addr,
        "a",
        Auth::Sso {
            user_data,
            timestamp,
            hash: "0".repeat(64),
        },
    )
    .await;
    let forged = forged.unwrap_err();
    assert_eq!(forged.0, ErrorCode::AuthenticationFailed);
    // An expired genuine payload gets exactly the answer a forgery gets: nothing confirms
    // that it was genuine.
    assert_eq!(expired.unwrap_err(), forged);
    assert_eq!(future.unwrap_err(), forged);
    server.shutdown().await;
}
