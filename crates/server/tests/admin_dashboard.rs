//! The `/admin` dashboard's server side over real HTTP: its files are served with a strict
//! Content Security Policy and carry nothing inline; the `activity` endpoint it reads (recent
//! discussions over all images, busiest images with their viewers) answers with the right
//! order and numbers for discussions written by widgets on real WebSockets, only to the
//! tenant's key, and refuses bad input with the JSON error. (The page itself is driven in
//! Chromium by `e2e/admin.test.mjs`.)

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use image_chat_protocol::{Auth, ClientMessage, Hello, ImageId, TenantId};
use image_chat_server::app::SessionLimits;
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::dashboard::DASHBOARD_CSP;
use image_chat_server::http::StaticDirs;
use image_chat_server::ratelimit::Rate;
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::tenant::Tenants;
use image_chat_server::{RunningServer, Security, ServerParts};
use support::api::{Reply, request};
use support::*;

const KEY: &str = "dash-api-key-0123456789abcdef0123456789ab";
const OTHER_KEY: &str = "dash-other-key-0123456789abcdef0123456789";
const TENANTS: &str = r#"
[[tenant]]
id = "acme"
api_key = "dash-api-key-0123456789abcdef0123456789ab"
origins = ["localhost"]
anonymous = "allow"

[[tenant]]
id = "other"
api_key = "dash-other-key-0123456789abcdef0123456789"
origins = ["localhost"]
anonymous = "allow"
"#;

async fn start(dir: &tempfile::TempDir) -> RunningServer {
    let store = SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).unwrap();
    let mut tenants = Tenants::builtin();
    tenants.merge_toml(TENANTS, "test").unwrap();
    let mut security = Security::default();
    security.limits.api_requests = Rate::new(10_000.0, 10_000);
    RunningServer::start(ServerParts {
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
    .unwrap()
}

fn hello(image: &str, name: &str) -> Hello {
    Hello {
        protocol: 1,
        tenant_id: TenantId::new("acme"),
        subject: ImageId::new(image).into(),
        auth: Some(Auth::Anonymous {
            name: name.into(),
            token: None,
        }),
        resume: None,
    }
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn dashboard_files_are_served_with_a_strict_csp_and_nothing_inline() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir).await;
    for (path, kind) in [
        ("/admin", "text/html"),
        ("/admin/dashboard.js", "text/javascript"),
        ("/admin/dashboard.css", "text/css"),
    ] {
        let reply = request(server.local_addr(), "GET", path, "", "").await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            header(&reply, "content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(
            header(&reply, "content-security-policy"),
            Some(DASHBOARD_CSP)
        );
        assert_eq!(header(&reply, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&reply, "referrer-policy"), Some("no-referrer"));
        assert!(!reply.body.is_empty());
    }
    // The CSP admits no inline code: the page must not need any.
    assert!(!DASHBOARD_CSP.contains("unsafe-inline") && !DASHBOARD_CSP.contains("unsafe-eval"));
    let html = request(server.local_addr(), "GET", "/admin", "", "")
        .await
        .body;
    let lower = html.to_ascii_lowercase();
    assert_eq!(
        lower.matches("<script").count(),
        1,
        "one script, from a file"
    );
    assert!(lower.contains(r#"<script src="/admin/dashboard.js""#));
    assert!(
        !lower.contains(" style=") && !lower.contains("<style"),
        "no inline style"
    );
    assert!(
        !lower.contains(" onclick=") && !lower.contains(" onload="),
        "no inline handler"
    );
    // The script writes user text as text only.
    let js = request(server.local_addr(), "GET", "/admin/dashboard.js", "", "")
        .await
        .body;
    assert!(
        !js.contains("innerHTML") && !js.contains("insertAdjacentHTML") && !js.contains("eval(")
    );
    // `/admin/` leads to the page; the API under it is untouched.
    let slash = request(server.local_addr(), "GET", "/admin/", "", "").await;
    assert_eq!(slash.status, 308);
    assert_eq!(header(&slash, "location"), Some("/admin"));
    request(
        server.local_addr(),
        "GET",
        "/admin/api/v1/tenants/acme/activity",
        "",
        "",
    )
    .await
    .error(401, "authentication-failed");
    server.shutdown().await;
}

#[tokio::test]
async fn activity_lists_recent_discussions_and_busiest_images_of_the_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir).await;
    let addr = server.local_addr();
    let get = |path: String, key: Option<&'static str>| async move {
        let headers = key
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        request(addr, "GET", &path, &headers, "").await
    };
    let base = "/admin/api/v1/tenants/acme/activity";

    // Nothing yet.
    let empty = get(base.into(), Some(KEY)).await.json();
    assert_eq!(empty["recent"], serde_json::json!([]));
    assert_eq!(empty["busiest"], serde_json::json!([]));
    assert_eq!(empty["scannedAll"], true);

    // Three images; "a" holds three discussions, "c" two, "b" one; a reply on a's first one
    // makes it the most recently active.
    let mut a = Client::join_with(addr, hello("a", "Ada")).await;
    let mut b = Client::join_with(addr, hello("b", "Bob")).await;
    let mut c = Client::join_with(addr, hello("c", "Cleo")).await;
    let mut opened = Vec::new();
    for (who, text) in [
        ('a', "a1"),
        ('c', "c1"),
        ('a', "a2"),
        ('b', "b1"),
        ('c', "c2"),
        ('a', "a3"),
    ] {
        let client = match who {
            'a' => &mut a,
            'b' => &mut b,
            _ => &mut c,
        };
        let op = create_op(0.5, 0.5, text);
        opened.push(op.chat_id.clone());
        commit(client, ClientMessage::CreateChat(op)).await;
        // Distinct commit times: the order below is then unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    commit(
        &mut a,
        ClientMessage::AddComment(reply_op(&opened[0], "a1 reply")),
    )
    .await;
    // Cleo leaves: "c" has no viewer any more.
    drop(c);

    let activity = get(base.into(), Some(KEY)).await.json();
    let recent: Vec<&str> = activity["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["chat"]["opening"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(recent, ["a1", "a3", "c2", "b1", "a2", "c1"]);
    assert_eq!(activity["recent"][0]["image"], "a");
    assert_eq!(activity["recent"][0]["chat"]["comments"], 2);
    assert_eq!(activity["recent"][0]["imageLocked"], false);
    let busiest: Vec<(String, u64)> = activity["busiest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["image"].as_str().unwrap().to_owned(),
                i["chats"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        busiest,
        [
            ("a".to_owned(), 3),
            ("c".to_owned(), 2),
            ("b".to_owned(), 1)
        ]
    );
    assert_eq!(activity["busiest"][0]["viewers"], 1);
    assert_eq!(activity["busiest"][2]["viewers"], 1);

    // `limit` bounds the list; bad limits are refused.
    let two = get(format!("{base}?limit=2"), Some(KEY)).await.json();
    assert_eq!(two["recent"].as_array().unwrap().len(), 2);
    for bad in ["0", "101", "x"] {
        let reply = get(format!("{base}?limit={bad}"), Some(KEY)).await;
        assert_eq!(reply.status, 400, "limit={bad}: {}", reply.body);
    }
    // Another tenant's key is refused here, and that tenant sees nothing of acme's.
    get(base.into(), Some(OTHER_KEY))
        .await
        .error(401, "authentication-failed");
    let theirs = get(
        "/admin/api/v1/tenants/other/activity".into(),
        Some(OTHER_KEY),
    )
    .await
    .json();
    assert_eq!(theirs["recent"], serde_json::json!([]));
    assert_eq!(theirs["busiest"], serde_json::json!([]));

    drop((a, b));
    server.shutdown().await;
}
