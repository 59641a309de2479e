//! The admin HTTP API over real HTTP: a server on 127.0.0.1:0 with two tenants, requests
//! written on a TCP socket, widgets on real WebSockets. Covers authentication (missing, wrong
//! and another tenant's key, the SSO secret), the JSON error shape for every kind of bad input
//! (and that it changed nothing), the OpenAPI document (valid JSON, lists every route), and
//! the endpoints themselves with their live effect on open widgets.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use image_chat_protocol::{Auth, ClientMessage, Hello, ImageId, TenantId};
use image_chat_server::app::SessionLimits;
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::http::StaticDirs;
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::tenant::Tenants;
use image_chat_server::{RunningServer, Security, ServerParts};
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ACME_KEY: &str = "acme-api-key-0123456789abcdef0123456789";
const ACME_SECRET: &str = "acme-sso-secret-0123456789abcdef012345";
const OTHER_KEY: &str = "other-api-key-0123456789abcdef012345678";

const TENANTS: &str = r#"
[[tenant]]
id = "acme"
secret = "acme-sso-secret-0123456789abcdef012345"
api_key = "acme-api-key-0123456789abcdef0123456789"
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
    async fn start() -> Self {
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
            security: Security::default(),
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

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// Asserts the JSON error shape with this status and code.
    #[track_caller]
    fn error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{}",
            self.head
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "only code and message: {body}"
        );
    }
}

/// One HTTP/1.1 request on a fresh TCP connection; the response read to its end.
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // A server may answer (413) before reading a large body, and close: that is fine.
    let _ = stream.write_all(body.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response in time");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        head: head.to_owned(),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn acme_hello(image: &str) -> Hello {
    Hello {
        protocol: 1,
        tenant_id: TenantId::new("acme"),
        image_id: ImageId::new(image),
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
    // The document the code generates is the one served.
    let generated = serde_json::to_value(image_chat_server::admin_api::openapi()).unwrap();
    assert_eq!(document_routes(&generated), routes);
    let expected = [
        ("GET", "/admin/api/v1/tenants/{tenant}/chats"),
        ("GET", "/admin/api/v1/tenants/{tenant}/chats/{chat}"),
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
