//! The operating endpoints of the admin API over real HTTP (usage; W3C Web Annotation export
//! and import): API-key authentication, the JSON error for bad input (and that it changed
//! nothing), and the endpoints' effect with widgets on real WebSockets.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use image_chat_protocol::ClientMessage;
use support::api::{ApiEnv, BASE, hello_for};
use support::{Client, commit, create_op, reply_op};

const ACME_KEY: &str = "acme-api-key-0123456789abcdef0123456789";
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
"#;

fn today() -> String {
    image_chat_server::usage::calendar::day_of(image_chat_server::app::now_ms())
}

#[tokio::test]
async fn usage_per_day_with_the_api_key() {
    let env = ApiEnv::start(TENANTS).await;
    let mut ada = Client::join_with(env.addr(), hello_for("acme", "photo")).await;
    let created = commit(
        &mut ada,
        ClientMessage::CreateChat(create_op(0.5, 0.5, "hi")),
    )
    .await;
    assert_eq!(created, 1);
    let chat = ada_chat(&env).await;
    commit(&mut ada, ClientMessage::AddComment(reply_op(&chat, "more"))).await;
    // Another tenant's activity is not acme's.
    let mut eve = Client::join_with(env.addr(), hello_for("other", "photo")).await;
    commit(
        &mut eve,
        ClientMessage::CreateChat(create_op(0.1, 0.1, "x")),
    )
    .await;

    let day = today();
    let reply = env
        .call(
            "GET",
            &format!("{BASE}/acme/usage?from={day}&to={day}"),
            Some(ACME_KEY),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let usage = reply.json();
    assert_eq!(
        (usage["tenant"].as_str(), usage["from"].as_str()),
        (Some("acme"), Some(day.as_str()))
    );
    let days = usage["days"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    let today = &days[0];
    assert_eq!(today["day"], day.as_str());
    assert_eq!(
        (today["ops"].as_u64(), today["discussions"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        (today["comments"].as_u64(), today["connections"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(today["peakViewers"], 1);
    // welcome, two acks, two echoes (and maybe presence).
    let frames = today["pubSubMessageCount"].as_u64().unwrap();
    assert!(frames >= 5, "{frames}");
    assert!(today["pubSubBandwidth"].as_u64().unwrap() > frames * 20);
    assert_eq!(usage["totals"]["ops"], 2);
    assert!(usage["totals"].get("day").is_none());
    // Default range: the last 30 days up to today.
    let reply = env
        .call("GET", &format!("{BASE}/acme/usage"), Some(ACME_KEY), None)
        .await;
    assert_eq!(reply.json()["to"], day.as_str());
    assert_eq!(reply.json()["days"].as_array().unwrap().len(), 1);
    // A range without activity.
    let reply = env
        .call(
            "GET",
            &format!("{BASE}/acme/usage?from=2020-01-01&to=2020-01-31"),
            Some(ACME_KEY),
            None,
        )
        .await;
    assert_eq!(reply.json()["days"], serde_json::json!([]));
    drop((ada, eve));
    env.server.shutdown().await;
}

#[tokio::test]
async fn usage_bad_input_gets_json_errors() {
    let env = ApiEnv::start(TENANTS).await;
    let path = |q: &str| format!("{BASE}/acme/usage{q}");
    for q in [
        "?from=yesterday",
        "?to=2026-02-30",
        "?from=2026-12-07&to=2026-12-06",
        "?from=2024-01-01&to=2026-01-01",
        "?from=2026-1-1",
        "?from=%FF",
    ] {
        env.call("GET", &path(q), Some(ACME_KEY), None)
            .await
            .error(400, "invalid-request");
    }
    for key in [
        None,
        Some("wrong"),
        Some(OTHER_KEY),
        Some("acme-sso-secret-0123456789abcdef012345"),
    ] {
        env.call("GET", &path(""), key, None)
            .await
            .error(401, "authentication-failed");
    }
    env.call("POST", &path(""), Some(ACME_KEY), Some("{}"))
        .await
        .error(405, "method-not-allowed");
    env.server.shutdown().await;
}

/// The discussion acme's first commit created, read back through the admin API.
async fn ada_chat(env: &ApiEnv) -> image_chat_protocol::ChatId {
    let reply = env
        .call(
            "GET",
            &format!("{BASE}/acme/chats?image=photo"),
            Some(ACME_KEY),
            None,
        )
        .await;
    let id = reply.json()["chats"][0]["id"].as_str().unwrap().to_owned();
    image_chat_protocol::ChatId::new(id)
}
