//! The admin HTTP API over real HTTP: a server on 127.0.0.1:0 with two tenants, requests
//! written on a TCP socket, widgets on real WebSockets. Covers authentication (missing, wrong
//! and another tenant's key, the SSO secret), the JSON error shape for every kind of bad input
//! (and that it changed nothing), the OpenAPI document (valid JSON, lists every route), and
//! the endpoints themselves with their live effect on open widgets.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use image_chat_protocol::{
    Auth, ClientMessage, ErrorCode, Hello, ImageId, Lock, ServerMessage, TenantId,
};
use image_chat_server::app::SessionLimits;
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::http::StaticDirs;
use image_chat_server::ratelimit::Rate;
use image_chat_server::secret::Secret;
use image_chat_server::sso;
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::tenant::Tenants;
use image_chat_server::{RunningServer, Security, ServerParts};
use serde_json::Value;
use support::api::{Reply, request};
use support::*;

const ACME_KEY: &str = "acme-api-key-0123456789abcdef0123456789";
const ACME_SECRET: &str = "acme-sso-secret-0123456789abcdef012345";
const OTHER_KEY: &str = "other-api-key-0123456789abcdef012345678";

const TENANTS: &str = r#"
[[tenant]]
id = "acme"
secret = "acme-sso-secret-0123456789abcdef012345"
api_key = "acme-api-key-0123456789abcdef0123456789"
sso_audience = "chat.acme.test"
origins = ["localhost"]
anonymous = "allow"

[[tenant]]
id = "other"
api_key = "other-api-key-0123456789abcdef012345678"
origins = ["localhost"]
anonymous = "allow"

[[tenant]]
id = "nokey"
origins = ["localhost"]
anonymous = "allow"
"#;

struct Env {
    server: RunningServer,
    _dir: tempfile::TempDir,
}

impl Env {
    /// A server whose HTTP API budget per address is large enough for a whole test (the
    /// default budget is tested on its own).
    async fn start() -> Self {
        let mut security = Security::default();
        security.limits.api_requests = Rate::new(10_000.0, 10_000);
        Self::start_with(security).await
    }

    async fn start_with(security: Security) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).unwrap();
        let mut tenants = Tenants::builtin();
        tenants.merge_toml(TENANTS, "test").unwrap();
        let server = RunningServer::start(ServerParts {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: Arc::new(store),
            broker: Arc::new(MemoryBroker::default()),
            presence: None,
            cluster_rates: None,
            tenants,
            limits: SessionLimits::default(),
            dirs: StaticDirs::default(),
            security,
        })
        .await
        .unwrap();
        Self { server, _dir: dir }
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// A request with `key` as bearer (`None`: no Authorization header).
    async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Reply {
        let mut headers = String::new();
        if let Some(key) = key {
            headers.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        if body.is_some() {
            headers.push_str("Content-Type: application/json\r\n");
        }
        request(self.addr(), method, path, &headers, body.unwrap_or("")).await
    }

    async fn acme(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.call(method, &format!("{BASE}/acme{path}"), Some(ACME_KEY), body)
            .await
    }
}

const BASE: &str = "/admin/api/v1/tenants";

fn acme_hello(image: &str) -> Hello {
    Hello {
        protocol: 1,
        tenant_id: TenantId::new("acme"),
        subject: ImageId::new(image).into(),
        auth: Some(Auth::Anonymous {
            name: "Reader".into(),
            token: None,
        }),
        resume: None,
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Every route of the API as the OpenAPI document lists it, with `{…}` parameters filled in.
fn document_routes(doc: &Value) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                routes.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// Every `$ref` string in the document.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn fill(path: &str, tenant: &str) -> String {
    path.replace("{tenant}", tenant)
        .replace("{chat}", &new_id())
        .replace("{comment}", &new_id())
        .replace("{user}", "sso%3Au1")
}

#[tokio::test]
async fn openapi_document_is_served_and_lists_every_route() {
    let env = Env::start().await;
    let reply = env.call("GET", "/admin/api/openapi.json", None, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let doc = reply.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    let routes = document_routes(&doc);
    // Every `$ref` names a schema the document defines.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in &refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "$ref {r} resolves"
        );
    }
    // The document the code generates is the one served.
    let generated = serde_json::to_value(image_chat_server::admin_api::openapi()).unwrap();
    assert_eq!(document_routes(&generated), routes);
    let expected = [
        ("GET", "/admin/api/v1/tenants/{tenant}/images"),
        ("GET", "/admin/api/v1/tenants/{tenant}/live"),
        ("GET", "/admin/api/v1/tenants/{tenant}/activity"),
        ("GET", "/admin/api/v1/tenants/{tenant}/chats"),
        ("GET", "/admin/api/v1/tenants/{tenant}/chats/{chat}"),
        ("DELETE", "/admin/api/v1/tenants/{tenant}/chats/{chat}"),
        (
            "DELETE",
            "/admin/api/v1/tenants/{tenant}/chats/{chat}/comments/{comment}",
        ),
        ("GET", "/admin/api/v1/tenants/{tenant}/locks"),
        ("PUT", "/admin/api/v1/tenants/{tenant}/locks"),
        ("DELETE", "/admin/api/v1/tenants/{tenant}/locks"),
        ("GET", "/admin/api/v1/tenants/{tenant}/bans"),
        ("PUT", "/admin/api/v1/tenants/{tenant}/bans"),
        ("DELETE", "/admin/api/v1/tenants/{tenant}/bans"),
    ];
    for (method, path) in expected {
        assert!(
            routes.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} missing from {routes:?}"
        );
    }
    for (method, path) in &routes {
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path} has a summary"
        );
        // Every success response carries an example.
        let ok = &op["responses"]["200"]["content"]["application/json"];
        assert!(
            ok["example"].is_object(),
            "{method} {path} 200 example: {ok}"
        );
        assert!(
            op["responses"]["200"].is_object() || op["responses"]["204"].is_object(),
            "{method} {path}"
        );
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path} documents 401"
        );
        // Every route exists and is guarded: without a key, the JSON 401.
        let body = (method != "GET" && method != "DELETE").then_some("{}");
        env.call(method, &fill(path, "acme"), None, body)
            .await
            .error(401, "authentication-failed");
    }
    env.server.shutdown().await;
}

#[tokio::test]
async fn keys_are_per_tenant_and_never_the_sso_secret() {
    let env = Env::start().await;
    let path = |tenant: &str| format!("{BASE}/{tenant}/chats?image=a");
    env.call("GET", &path("acme"), Some(ACME_KEY), None).await;
    assert_eq!(
        env.call("GET", &path("acme"), Some(ACME_KEY), None)
            .await
            .status,
        200
    );
    for (tenant, key) in [
        ("acme", None),
        ("acme", Some("wrong")),
        ("acme", Some("")),
        // Another tenant's key.
        ("acme", Some(OTHER_KEY)),
        ("other", Some(ACME_KEY)),
        // The SSO secret signs users; it never opens the API.
        ("acme", Some(ACME_SECRET)),
        // A tenant without a key has no admin API; an unknown one answers the same.
        ("nokey", Some(ACME_KEY)),
        ("nobody", Some(ACME_KEY)),
        ("demo", Some("")),
    ] {
        env.call("GET", &path(tenant), key, None)
            .await
            .error(401, "authentication-failed");
    }
    // Not "Bearer": refused too.
    request(
        env.addr(),
        "GET",
        &path("acme"),
        &format!("Authorization: Basic {ACME_KEY}\r\n"),
        "",
    )
    .await
    .error(401, "authentication-failed");
    env.server.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_json_errors() {
    let env = Env::start().await;
    let image = enc("https://acme.example/a.jpg");
    env.acme("GET", &format!("/chats?image={image}&limit=201"), None)
        .await
        .error(400, "invalid-request");
    env.acme("GET", &format!("/chats?image={image}&limit=0"), None)
        .await
        .error(400, "invalid-request");
    env.acme("GET", &format!("/chats?image={image}&limit=-1"), None)
        .await
        .error(400, "invalid-request");
    env.acme(
        "GET",
        &format!("/chats?image={image}&limit=99999999999"),
        None,
    )
    .await
    .error(400, "invalid-request");
    env.acme("GET", &format!("/chats?image={image}&cursor=nope"), None)
        .await
        .error(400, "invalid-request");
    env.acme("GET", "/chats", None)
        .await
        .error(400, "invalid-request");
    env.acme("GET", &format!("/chats?image={}", "x".repeat(5000)), None)
        .await
        .error(400, "invalid-id");
    env.acme("GET", &format!("/chats/not-an-id?image={image}"), None)
        .await
        .error(400, "invalid-id");
    env.acme("GET", &format!("/chats/{}?image={image}", new_id()), None)
        .await
        .error(404, "unknown-chat");
    env.acme("GET", "/nothing-here", None)
        .await
        .error(404, "not-found");
    env.acme("POST", &format!("/chats?image={image}"), Some("{}"))
        .await
        .error(405, "method-not-allowed");
    env.call(
        "GET",
        &format!("{BASE}/bad%20id/chats?image=a"),
        Some(ACME_KEY),
        None,
    )
    .await
    .error(400, "invalid-id");
    env.server.shutdown().await;
}

#[tokio::test]
async fn lists_and_reads_discussions_newest_first() {
    let env = Env::start().await;
    let image = "https://acme.example/harbour.jpg";
    let mut widget = Client::join_with(env.addr(), acme_hello(image)).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let op = create_op(0.1, 0.2, &format!("chat {i}"));
        ids.push(op.chat_id.clone());
        commit(&mut widget, ClientMessage::CreateChat(op)).await;
    }
    commit(
        &mut widget,
        ClientMessage::AddComment(reply_op(&ids[4], "a reply")),
    )
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/chats?image={}&limit=2", enc(image));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        let page = env.acme("GET", &path, None).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        assert!(page["chats"].as_array().unwrap().len() <= 2);
        for chat in page["chats"].as_array().unwrap() {
            seen.push(chat["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().map(|id| id.as_str().to_owned()).collect();
    assert_eq!(seen, newest_first);

    let one = env
        .acme(
            "GET",
            &format!("/chats/{}?image={}", ids[4].as_str(), enc(image)),
            None,
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.body);
    let one = one.json();
    assert_eq!(one["comments"].as_array().unwrap().len(), 2);
    assert_eq!(one["comments"][0]["text"], "chat 4");
    assert_eq!(one["comments"][0]["id"], ids[4].as_str());
    assert_eq!(one["comments"][1]["text"], "a reply");
    assert!(
        one["comments"][1]["author"]["id"]
            .as_str()
            .unwrap()
            .starts_with("anon:")
    );
    // Another tenant's key does not read acme's image, and the other tenant's own image of the
    // same name is a different one.
    let theirs = env
        .call(
            "GET",
            &format!("{BASE}/other/chats?image={}", enc(image)),
            Some(OTHER_KEY),
            None,
        )
        .await;
    assert_eq!(theirs.json()["chats"].as_array().unwrap().len(), 0);
    env.server.shutdown().await;
}

fn moderator_auth() -> Auth {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let user = serde_json::json!({"id": "mod-1", "name": "Mia", "isModerator": true});
    let (user_data, hash) = sso::sign(
        &Secret::new(ACME_SECRET),
        sso::Audience {
            tenant: "acme",
            audience: "chat.acme.test",
        },
        &user.to_string(),
        timestamp,
    );
    Auth::Sso {
        user_data,
        timestamp,
        hash,
    }
}

/// The next message that is neither presence nor pong.
async fn next(client: &mut Client) -> ServerMessage {
    client.recv_skip_presence().await
}

/// Sends an op and expects it refused with `code`.
async fn refused(client: &mut Client, message: ClientMessage, code: ErrorCode) {
    client.send(&message).await;
    match next(client).await {
        ServerMessage::Error(e) => assert_eq!(e.code, code, "{e:?}"),
        other => panic!("expected {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn deletes_reach_open_widgets_like_a_persons() {
    let env = Env::start().await;
    let image = "https://acme.example/delete.jpg";
    let mut author = Client::join_with(env.addr(), acme_hello(image)).await;
    let mut viewer = Client::join_with(env.addr(), acme_hello(image)).await;
    author.wait_for_presence(2).await;
    let op = create_op(0.3, 0.3, "spam");
    let chat = op.chat_id.clone();
    commit(&mut author, ClientMessage::CreateChat(op)).await;
    let reply = reply_op(&chat, "more spam");
    let comment = reply.comment_id.clone();
    commit(&mut author, ClientMessage::AddComment(reply)).await;
    for _ in 0..2 {
        next(&mut viewer).await;
    }
    let q = format!("?image={}", enc(image));

    // The opening comment goes only with its discussion; unknown ids are 404; nothing changes.
    env.acme(
        "DELETE",
        &format!("/chats/{}/comments/{}{q}", chat.as_str(), chat.as_str()),
        None,
    )
    .await
    .error(409, "conflict");
    env.acme(
        "DELETE",
        &format!("/chats/{}/comments/{}{q}", chat.as_str(), new_id()),
        None,
    )
    .await
    .error(404, "unknown-comment");
    env.acme("DELETE", &format!("/chats/{}{q}", new_id()), None)
        .await
        .error(404, "unknown-chat");
    // Another tenant's key cannot touch acme's image.
    env.call(
        "DELETE",
        &format!("{BASE}/acme/chats/{}{q}", chat.as_str()),
        Some(OTHER_KEY),
        None,
    )
    .await
    .error(401, "authentication-failed");
    // …and the other tenant's image of the same name has no such discussion.
    env.call(
        "DELETE",
        &format!("{BASE}/other/chats/{}{q}", chat.as_str()),
        Some(OTHER_KEY),
        None,
    )
    .await
    .error(404, "unknown-chat");
    viewer.assert_quiet().await;
    let one = env
        .acme("GET", &format!("/chats/{}{q}", chat.as_str()), None)
        .await;
    assert_eq!(one.json()["comments"].as_array().unwrap().len(), 2);

    let deleted = env
        .acme(
            "DELETE",
            &format!("/chats/{}/comments/{}{q}", chat.as_str(), comment.as_str()),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let seq = deleted.json()["seq"].as_u64().unwrap();
    for client in [&mut viewer, &mut author] {
        match next(client).await {
            ServerMessage::ImageChatUpdated(e) => {
                assert_eq!(e.seq, seq);
                assert_eq!(e.chat_id, chat);
            }
            other => panic!("expected the comment deletion, got {other:?}"),
        }
    }
    let deleted = env
        .acme("DELETE", &format!("/chats/{}{q}", chat.as_str()), None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.json()["chatId"], chat.as_str());
    match next(&mut viewer).await {
        ServerMessage::DeletedImageChat(e) => assert_eq!(e.chat_id, chat),
        other => panic!("expected the deletion, got {other:?}"),
    }
    env.acme("GET", &format!("/chats/{}{q}", chat.as_str()), None)
        .await
        .error(404, "unknown-chat");
    // A latecomer sees the image as it now is.
    let late = Client::join_with(env.addr(), acme_hello(image)).await;
    assert!(late.welcome().snapshot.as_ref().unwrap().chats.is_empty());
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_lock_is_enforced_live_and_moderators_share_its_path() {
    let env = Env::start().await;
    let image = "https://acme.example/locked.jpg";
    let q = format!("?image={}", enc(image));
    let mut reader = Client::join_with(env.addr(), acme_hello(image)).await;
    let mut moderator = Client::join_with(
        env.addr(),
        Hello {
            auth: Some(moderator_auth()),
            ..acme_hello(image)
        },
    )
    .await;
    assert!(moderator.welcome().you.is_moderator);
    assert!(!reader.welcome().locked);
    reader.wait_for_presence(2).await;

    let body = serde_json::json!({ "image": image }).to_string();
    let locked = env.acme("PUT", "/locks", Some(&body)).await;
    assert_eq!(locked.status, 200, "{}", locked.body);
    assert_eq!(locked.json()["changed"], true);
    for client in [&mut reader, &mut moderator] {
        assert_eq!(
            next(client).await,
            ServerMessage::Lock(Lock { locked: true })
        );
    }
    // Again: nothing changes, nothing is sent.
    assert_eq!(
        env.acme("PUT", "/locks", Some(&body)).await.json()["changed"],
        false
    );
    reader.assert_quiet().await;

    // The open reader's ops are refused; a newcomer learns it in its welcome.
    refused(
        &mut reader,
        ClientMessage::CreateChat(create_op(0.5, 0.5, "hi")),
        ErrorCode::ImageLocked,
    )
    .await;
    let late = Client::join_with(env.addr(), acme_hello(image)).await;
    assert!(late.welcome().locked);
    drop(late);
    // A moderator still may.
    let op = create_op(0.5, 0.5, "closing this");
    let chat = op.chat_id.clone();
    commit(&mut moderator, ClientMessage::CreateChat(op)).await;
    match next(&mut reader).await {
        ServerMessage::NewImageChat(e) => assert_eq!(e.chat.id, chat),
        other => panic!("expected the moderator's discussion, got {other:?}"),
    }
    let locks = env.acme("GET", "/locks", None).await.json();
    assert_eq!(locks["locks"][0]["image"], image);
    let images = env.acme("GET", "/images", None).await.json();
    assert_eq!(images["images"][0]["locked"], true);

    // The moderator unlocks from the widget: the same path, every viewer told.
    moderator
        .send(&ClientMessage::SetLock { locked: false })
        .await;
    for client in [&mut reader, &mut moderator] {
        assert_eq!(
            next(client).await,
            ServerMessage::Lock(Lock { locked: false })
        );
    }
    commit(
        &mut reader,
        ClientMessage::AddComment(reply_op(&chat, "thanks")),
    )
    .await;
    // A reader cannot lock.
    refused(
        &mut reader,
        ClientMessage::SetLock { locked: true },
        ErrorCode::Forbidden,
    )
    .await;
    moderator
        .send(&ClientMessage::SetLock { locked: true })
        .await;
    assert_eq!(
        next(&mut reader).await,
        ServerMessage::Lock(Lock { locked: true })
    );
    // The admin API unlocks.
    let unlocked = env.acme("DELETE", &format!("/locks{q}"), None).await;
    assert_eq!(
        unlocked.json(),
        serde_json::json!({"image": image, "locked": false, "changed": true})
    );
    assert_eq!(
        next(&mut reader).await,
        ServerMessage::Lock(Lock { locked: false })
    );
    assert_eq!(
        env.acme("GET", "/locks", None).await.json()["locks"],
        serde_json::json!([])
    );
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_ban_holds_at_once_on_open_connections() {
    let env = Env::start().await;
    let image = "https://acme.example/banned.jpg";
    let mut troll = Client::join_with(env.addr(), acme_hello(image)).await;
    let mut other =
        Client::join_with(env.addr(), acme_hello("https://acme.example/elsewhere.jpg")).await;
    let token = troll.welcome().token.clone().unwrap();
    let troll_id = troll.welcome().you.id.clone();
    let op = create_op(0.1, 0.1, "first");
    let chat = op.chat_id.clone();
    commit(&mut troll, ClientMessage::CreateChat(op)).await;

    // Banned by the token the widget holds: the id is read from it.
    let body = serde_json::json!({ "anonymousToken": token, "reason": "spam" }).to_string();
    let banned = env.acme("PUT", "/bans", Some(&body)).await;
    assert_eq!(banned.status, 200, "{}", banned.body);
    assert_eq!(banned.json()["userId"], troll_id.as_str());
    refused(
        &mut troll,
        ClientMessage::AddComment(reply_op(&chat, "again")),
        ErrorCode::Banned,
    )
    .await;
    refused(
        &mut troll,
        ClientMessage::DeleteChat(delete_op(&chat)),
        ErrorCode::Banned,
    )
    .await;
    // Reconnecting changes nothing: the ban is the person's, on every image of the tenant.
    let mut again = Client::join_with(
        env.addr(),
        Hello {
            auth: Some(Auth::Anonymous {
                name: "Troll".into(),
                token: Some(token.clone()),
            }),
            ..acme_hello("https://acme.example/another.jpg")
        },
    )
    .await;
    assert_eq!(again.welcome().you.id, troll_id);
    refused(
        &mut again,
        ClientMessage::CreateChat(create_op(0.2, 0.2, "x")),
        ErrorCode::Banned,
    )
    .await;
    // Others are not affected.
    commit(
        &mut other,
        ClientMessage::CreateChat(create_op(0.2, 0.2, "fine")),
    )
    .await;

    // Banned by user id too; listed newest first; a second ban changes nothing.
    let body = serde_json::json!({ "userId": "sso:someone" }).to_string();
    assert_eq!(
        env.acme("PUT", "/bans", Some(&body)).await.json()["changed"],
        true
    );
    assert_eq!(
        env.acme("PUT", "/bans", Some(&body)).await.json()["changed"],
        false
    );
    let list = env.acme("GET", "/bans?limit=1", None).await.json();
    assert_eq!(list["bans"].as_array().unwrap().len(), 1);
    let cursor = list["nextCursor"].as_str().unwrap().to_owned();
    let rest = env
        .acme(
            "GET",
            &format!("/bans?limit=1&cursor={}", enc(&cursor)),
            None,
        )
        .await
        .json();
    let mut users: Vec<&str> = [&list, &rest]
        .iter()
        .map(|p| p["bans"][0]["userId"].as_str().unwrap())
        .collect();
    users.sort_unstable();
    let mut expected = ["sso:someone", troll_id.as_str()];
    expected.sort_unstable();
    assert_eq!(users, expected);
    assert!(rest["nextCursor"].is_null());
    // The other tenant sees none of them.
    let theirs = env
        .call("GET", &format!("{BASE}/other/bans"), Some(OTHER_KEY), None)
        .await;
    assert_eq!(theirs.json()["bans"], serde_json::json!([]));

    let unban = env
        .acme("DELETE", &format!("/bans?userId={}", enc(&troll_id)), None)
        .await;
    assert_eq!(unban.status, 200, "{}", unban.body);
    env.acme("DELETE", &format!("/bans?userId={}", enc(&troll_id)), None)
        .await
        .error(404, "unknown-ban");
    commit(
        &mut troll,
        ClientMessage::AddComment(reply_op(&chat, "sorry")),
    )
    .await;
    env.server.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_get_json_errors_and_change_nothing() {
    let env = Env::start().await;
    let image = "https://acme.example/x.jpg";
    let json_headers =
        format!("Authorization: Bearer {ACME_KEY}\r\nContent-Type: application/json\r\n");
    let path = |p: &str| format!("{BASE}/acme{p}");
    for (p, body, status, code) in [
        ("/locks", "{", 400, "malformed-json"),
        ("/locks", "[]", 400, "malformed-json"),
        ("/locks", r#"{"image": 5}"#, 400, "malformed-json"),
        (
            "/locks",
            r#"{"image": "a", "extra": 1}"#,
            400,
            "malformed-json",
        ),
        ("/locks", r#"{"image": ""}"#, 400, "invalid-id"),
        ("/bans", "{}", 400, "invalid-request"),
        (
            "/bans",
            r#"{"userId": "sso:a", "anonymousToken": "x"}"#,
            400,
            "invalid-request",
        ),
        ("/bans", r#"{"userId": "root"}"#, 400, "invalid-id"),
        ("/bans", r#"{"userId": "sso:"}"#, 400, "invalid-id"),
        (
            "/bans",
            r#"{"anonymousToken": "anon:0011.deadbeef"}"#,
            400,
            "invalid-id",
        ),
        ("/bans", r#"{"userId": "sso:a\u0000b"}"#, 400, "invalid-id"),
    ] {
        request(env.addr(), "PUT", &path(p), &json_headers, body)
            .await
            .error(status, code);
    }
    let long_reason = serde_json::json!({"userId": "sso:a", "reason": "x".repeat(501)}).to_string();
    request(
        env.addr(),
        "PUT",
        &path("/bans"),
        &json_headers,
        &long_reason,
    )
    .await
    .error(400, "invalid-request");
    // Not JSON at all.
    let plain = format!("Authorization: Bearer {ACME_KEY}\r\nContent-Type: text/plain\r\n");
    request(
        env.addr(),
        "PUT",
        &path("/locks"),
        &plain,
        r#"{"image":"a"}"#,
    )
    .await
    .error(415, "unsupported-media-type");
    // Over the body limit (16 KiB), declared or not.
    let huge = format!(r#"{{"image":"{}"}}"#, "a".repeat(64 * 1024));
    request(env.addr(), "PUT", &path("/locks"), &json_headers, &huge)
        .await
        .error(413, "body-too-large");
    // A token issued for another tenant does not ban anyone here.
    let other = Client::join_with(
        env.addr(),
        Hello {
            tenant_id: TenantId::new("other"),
            ..acme_hello(image)
        },
    )
    .await;
    let foreign = serde_json::json!({"anonymousToken": other.welcome().token}).to_string();
    request(env.addr(), "PUT", &path("/bans"), &json_headers, &foreign)
        .await
        .error(400, "invalid-id");
    // Wrong keys on writes.
    let body = serde_json::json!({ "image": image }).to_string();
    env.call("PUT", &path("/locks"), Some(OTHER_KEY), Some(&body))
        .await
        .error(401, "authentication-failed");
    env.call("PUT", &path("/bans"), None, Some(r#"{"userId":"sso:a"}"#))
        .await
        .error(401, "authentication-failed");
    env.acme("GET", "/bans?limit=500", None)
        .await
        .error(400, "invalid-request");
    env.acme("GET", "/locks?cursor=x", None)
        .await
        .error(400, "invalid-request");
    env.acme("GET", "/images?cursor=-4", None)
        .await
        .error(400, "invalid-request");

    // Nothing of the above changed anything.
    assert_eq!(
        env.acme("GET", "/locks", None).await.json()["locks"],
        serde_json::json!([])
    );
    assert_eq!(
        env.acme("GET", "/bans", None).await.json()["bans"],
        serde_json::json!([])
    );
    assert_eq!(
        env.call("GET", &format!("{BASE}/other/locks"), Some(OTHER_KEY), None)
            .await
            .json()["locks"],
        serde_json::json!([])
    );
    let fresh = Client::join_with(env.addr(), acme_hello(image)).await;
    assert!(!fresh.welcome().locked);
    env.server.shutdown().await;
}

#[tokio::test]
async fn images_are_listed_newest_first_in_pages() {
    let env = Env::start().await;
    let names: Vec<String> = (0..5)
        .map(|i| format!("https://acme.example/{i}.jpg"))
        .collect();
    for name in &names {
        let mut w = Client::join_with(env.addr(), acme_hello(name)).await;
        commit(&mut w, ClientMessage::CreateChat(create_op(0.1, 0.1, "x"))).await;
    }
    let mut seen = Vec::new();
    let mut cursor = None::<String>;
    loop {
        let mut p = "/images?limit=2".to_owned();
        if let Some(c) = &cursor {
            p.push_str(&format!("&cursor={c}"));
        }
        let page = env.acme("GET", &p, None).await.json();
        for image in page["images"].as_array().unwrap() {
            assert_eq!(image["chats"], 1);
            assert!(image["lastActivityAt"].as_u64().unwrap() > 0);
            seen.push(image["image"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = names.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let theirs = env
        .call(
            "GET",
            &format!("{BASE}/other/images"),
            Some(OTHER_KEY),
            None,
        )
        .await;
    assert_eq!(theirs.json()["images"], serde_json::json!([]));
    // Live connections: acme's open widgets (the writers above are gone), not the other
    // tenant's.
    let _open = Client::join_with(env.addr(), acme_hello(&names[0])).await;
    assert_eq!(
        env.acme("GET", "/live", None).await.json()["connections"],
        1
    );
    let other_live = env
        .call("GET", &format!("{BASE}/other/live"), Some(OTHER_KEY), None)
        .await;
    assert_eq!(other_live.json()["connections"], 0);
    env.server.shutdown().await;
}

#[tokio::test]
async fn guessing_keys_is_rate_limited_per_address() {
    // The default budget: 20 at once, then 5 a second, shared with the public snapshot API.
    let env = Env::start_with(Security::default()).await;
    let path = format!("{BASE}/acme/bans");
    let mut statuses = Vec::new();
    for i in 0..25 {
        let reply = env
            .call("GET", &path, Some(&format!("guess-{i}")), None)
            .await;
        statuses.push(reply.status);
        if reply.status == 429 {
            reply.error(429, "rate-limited");
            assert!(
                reply.head.to_ascii_lowercase().contains("retry-after: "),
                "{}",
                reply.head
            );
        }
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].contains(&429), "{statuses:?}");
    // Even the right key waits its turn.
    env.call("GET", &path, Some(ACME_KEY), None)
        .await
        .error(429, "rate-limited");
    env.server.shutdown().await;
}
