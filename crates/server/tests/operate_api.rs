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

const IMAGE: &str = "https://acme.example/harbour.jpg";

fn annotations_path(image: &str) -> String {
    format!("{BASE}/acme/annotations?image={}", support::api::enc(image))
}

/// The whole-tenant annotations endpoint as `tenant`'s administrator (`key`): `GET` exports,
/// `POST` imports `body`.
async fn tenant_annotations(
    env: &ApiEnv,
    method: &str,
    tenant: &str,
    key: &str,
    body: Option<&str>,
) -> support::api::Reply {
    let path = format!("{BASE}/{tenant}/annotations");
    env.call(method, &path, Some(key), body).await
}

/// A file written by hand from the W3C Web Annotation model's examples (a string body, a
/// target IRI with a media fragment, a TextualBody with purposes, a collection page) and the
/// Annotorious shape.
fn hand_written() -> String {
    serde_json::json!({
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "AnnotationPage",
        "items": [
            {"id": "http://example.org/anno1", "type": "Annotation",
             "body": "The harbour light", "target": format!("{IMAGE}#xywh=percent:25,40,0,0")},
            {"id": "http://example.org/anno2", "type": "Annotation",
             "creator": {"id": "http://example.org/user1", "type": "Person", "name": "A. Person"},
             "created": "2015-10-13T13:00:00Z",
             "body": [{"type": "TextualBody", "value": "The pier", "purpose": "commenting"},
                      {"type": "TextualBody", "value": "Rebuilt in 1950", "purpose": "replying",
                       "creator": {"id": "http://example.org/user2", "name": "B. Person"}}],
             "target": {"source": IMAGE, "selector": {"type": "FragmentSelector",
                        "conformsTo": "http://www.w3.org/TR/media-frags/",
                        "value": "xywh=percent:10,60,30,20"}}},
            {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
             "id": "#a88b22d0-6106-4872-9435-c78b5e89fede",
             "body": [{"type": "TextualBody", "value": "A boat", "purpose": "commenting",
                       "creator": {"id": "https://example.org/u/ann", "name": "Ann"}},
                      {"type": "TextualBody", "value": "resolved", "purpose": "tagging"}],
             "target": {"source": IMAGE, "selector": {"type": "FragmentSelector",
                        "conformsTo": "http://www.w3.org/TR/media-frags/",
                        "value": "xywh=percent:55.5,20.25,5,5"}}}
        ]
    })
    .to_string()
}

#[tokio::test]
async fn annotations_import_live_export_and_round_trip() {
    let env = ApiEnv::start(TENANTS).await;
    // A widget watching the image sees the import live.
    let mut viewer = Client::join_with(env.addr(), hello_for("acme", IMAGE)).await;
    let reply = env
        .call(
            "POST",
            &annotations_path(IMAGE),
            Some(ACME_KEY),
            Some(&hand_written()),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = reply.json();
    assert_eq!(
        (report["discussions"].as_u64(), report["comments"].as_u64()),
        (Some(3), Some(4))
    );
    // 3 creates, 1 reply, 1 resolve.
    assert_eq!(report["applied"], 5);
    let mut live = 0;
    while live < 5 {
        // Alone, or gathered into a batch by the image's pump.
        match viewer.recv_skip_presence().await.into_events() {
            Ok(events) => live += events.len(),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    // Importing the same file again changes nothing.
    let again = env
        .call(
            "POST",
            &annotations_path(IMAGE),
            Some(ACME_KEY),
            Some(&hand_written()),
        )
        .await;
    assert_eq!(again.json()["applied"], 0, "{}", again.body);
    viewer.assert_quiet().await;

    // Export: W3C annotations of what is there.
    let exported = env
        .call("GET", &annotations_path(IMAGE), Some(ACME_KEY), None)
        .await;
    assert_eq!(exported.status, 200);
    let collection = exported.json();
    assert_eq!(collection["@context"], "http://www.w3.org/ns/anno.jsonld");
    assert_eq!(collection["type"], "AnnotationCollection");
    assert_eq!(collection["total"], 3);
    let items = collection["first"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let by_text = |text: &str| {
        items
            .iter()
            .find(|a| a["body"][0]["value"] == text)
            .unwrap_or_else(|| panic!("{text} in {items:?}"))
    };
    let light = by_text("The harbour light");
    assert_eq!(light["@context"], "http://www.w3.org/ns/anno.jsonld");
    assert_eq!(
        light["target"]["selector"]["value"],
        "xywh=percent:25,40,0,0"
    );
    let pier = by_text("The pier");
    assert_eq!(
        pier["target"]["selector"]["value"],
        "xywh=percent:10,60,30,20"
    );
    assert_eq!(pier["body"][1]["purpose"], "replying");
    assert_eq!(pier["body"][1]["creator"]["name"], "B. Person");
    assert_eq!(pier["created"], "2015-10-13T13:00:00.000Z");
    let boat = by_text("A boat");
    assert_eq!(boat["body"][1]["purpose"], "tagging");

    // Round trip: the export imported into another image gives the same discussions there.
    let other = "https://acme.example/copy.jpg";
    let moved = exported.body.replace(IMAGE, other);
    let reply = env
        .call(
            "POST",
            &annotations_path(other),
            Some(ACME_KEY),
            Some(&moved),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let copy = env
        .call("GET", &annotations_path(other), Some(ACME_KEY), None)
        .await;
    let strip = |body: &str| body.replace(other, IMAGE);
    assert_eq!(strip(&copy.body), exported.body);
    drop(viewer);
    env.server.shutdown().await;
}

#[tokio::test]
async fn annotation_bad_input_gets_json_errors_and_changes_nothing() {
    let env = ApiEnv::start(TENANTS).await;
    let path = annotations_path(IMAGE);
    let point = |text: &str| {
        serde_json::json!([{"body": text, "target": format!("{IMAGE}#xywh=percent:1,1,0,0")}])
            .to_string()
    };
    for (body, code) in [
        ("{not json".to_owned(), "malformed-json"),
        ("42".to_owned(), "invalid-request"),
        ("[{\"body\":\"x\",\"target\":\"https://evil.example/x.jpg#xywh=percent:1,1,0,0\"}]".to_owned(), "invalid-request"),
        ("[{\"body\":\"x\",\"target\":\"https://acme.example/harbour.jpg#xywh=10,10,5,5\"}]".to_owned(), "invalid-request"),
        ("[{\"body\":\"x\",\"target\":\"https://acme.example/harbour.jpg#xywh=percent:90,10,20,5\"}]".to_owned(), "invalid-request"),
        (point(&"x".repeat(4001)), "invalid-request"),
        (point("   "), "invalid-request"),
        // A valid first annotation and a bad second: neither is imported.
        (
            serde_json::json!([
                {"body": "fine", "target": format!("{IMAGE}#xywh=percent:1,1,0,0")},
                {"body": "bad", "target": format!("{IMAGE}#xywh=percent:1,1")}
            ])
            .to_string(),
            "invalid-request",
        ),
    ] {
        env.call("POST", &path, Some(ACME_KEY), Some(&body))
            .await
            .error(400, code);
    }
    let too_many: Vec<_> = (0..1001).map(|_| serde_json::json!({})).collect();
    env.call(
        "POST",
        &path,
        Some(ACME_KEY),
        Some(&serde_json::Value::Array(too_many).to_string()),
    )
    .await
    .error(400, "invalid-request");
    let huge = format!("[\"{}\"]", "x".repeat(5 * 1024 * 1024));
    env.call("POST", &path, Some(ACME_KEY), Some(&huge))
        .await
        .error(413, "body-too-large");
    support::api::request(
        env.addr(),
        "POST",
        &path,
        &format!("Authorization: Bearer {ACME_KEY}\r\nContent-Type: text/plain\r\n"),
        "[]",
    )
    .await
    .error(415, "unsupported-media-type");
    for key in [None, Some("wrong"), Some(OTHER_KEY)] {
        env.call("POST", &path, key, Some(&point("hi")))
            .await
            .error(401, "authentication-failed");
        env.call("GET", &path, key, None)
            .await
            .error(401, "authentication-failed");
    }
    env.call(
        "GET",
        &format!("{BASE}/acme/annotations?image={}", "x".repeat(5000)),
        Some(ACME_KEY),
        None,
    )
    .await
    .error(400, "invalid-id");
    // Nothing was imported by any of it.
    let exported = env.call("GET", &path, Some(ACME_KEY), None).await;
    assert_eq!(exported.status, 200);
    assert_eq!(exported.json()["total"], 0);
    env.server.shutdown().await;
}

#[tokio::test]
async fn a_whole_tenant_is_exported_and_imported_into_another() {
    let env = ApiEnv::start(TENANTS).await;
    let imported = env
        .call(
            "POST",
            &annotations_path(IMAGE),
            Some(ACME_KEY),
            Some(&hand_written()),
        )
        .await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    let mut ada = Client::join_with(env.addr(), hello_for("acme", "photo")).await;
    commit(
        &mut ada,
        ClientMessage::CreateChat(create_op(0.5, 0.25, "on a second image")),
    )
    .await;

    // Without `image`: every image of the tenant, each annotation naming its own.
    let exported = tenant_annotations(&env, "GET", "acme", ACME_KEY, None).await;
    assert_eq!(exported.status, 200, "{}", exported.body);
    let collection = exported.json();
    assert_eq!(collection["total"], 4);
    let mut sources: Vec<String> = collection["first"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target"]["source"].as_str().unwrap().to_owned())
        .collect();
    sources.sort();
    sources.dedup();
    assert_eq!(sources, [IMAGE, "photo"]);

    // An annotation that names no image cannot go into a tenant import: nothing changes.
    let nameless = serde_json::json!([
        {"body": "fine", "target": format!("{IMAGE}#xywh=percent:1,1,0,0")},
        {"body": "where?", "target": {"selector": {"type": "FragmentSelector",
            "value": "xywh=percent:1,1,0,0"}}}
    ])
    .to_string();
    let refused = tenant_annotations(&env, "POST", "other", OTHER_KEY, Some(&nameless)).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["code"], "invalid-request");
    let empty = tenant_annotations(&env, "GET", "other", OTHER_KEY, None).await;
    assert_eq!(empty.json()["total"], 0, "{}", empty.body);

    // The export imported into another tenant recreates the same discussions on the same
    // images; a second import changes nothing.
    let report = tenant_annotations(&env, "POST", "other", OTHER_KEY, Some(&exported.body)).await;
    assert_eq!(report.status, 200, "{}", report.body);
    let report = report.json();
    assert_eq!(report["images"], 2);
    assert!(report.get("image").is_none(), "{report}");
    assert_eq!(report["discussions"], 4);
    let again = tenant_annotations(&env, "POST", "other", OTHER_KEY, Some(&exported.body)).await;
    assert_eq!(again.json()["applied"], 0, "{}", again.body);
    let copy = tenant_annotations(&env, "GET", "other", OTHER_KEY, None).await;
    let by_id = |body: &serde_json::Value| {
        let mut items = body["first"]["items"].as_array().unwrap().clone();
        items.sort_by_key(|a| a["id"].as_str().unwrap().to_owned());
        items
    };
    assert_eq!(by_id(&copy.json()), by_id(&collection));
    drop(ada);
    env.server.shutdown().await;
}

const PAGE: &str = "https://acme.example/blog/harbour#story";
const ARTICLE: &str = "The harbour at dawn. Fishing boats leave before six; by seven the quay \
                       is quiet again and the gulls take over.";

/// A discussion on `passage` of [`ARTICLE`], anchored as the widget anchors it.
fn on_passage(passage: &str, text: &str) -> ClientMessage {
    let anchor = image_chat_anchor::describe_passage(ARTICLE, passage).unwrap();
    ClientMessage::CreateChat(image_chat_protocol::CreateChat {
        anchor: image_chat_protocol::Anchor::Text(anchor),
        ..create_op(0.0, 0.0, text)
    })
}

#[tokio::test]
async fn text_discussions_are_exported_as_quotes_and_imported_back() {
    let env = ApiEnv::start(TENANTS).await;
    let page_hello = |tenant: &str| image_chat_protocol::Hello {
        subject: image_chat_protocol::PageId::new(PAGE).into(),
        ..hello_for(tenant, PAGE)
    };
    let mut reader = Client::join_with(env.addr(), page_hello("acme")).await;
    commit(
        &mut reader,
        on_passage("Fishing boats leave", "Why so early?"),
    )
    .await;
    // An image with the page's id is another subject, exported too.
    let mut viewer = Client::join_with(env.addr(), hello_for("acme", PAGE)).await;
    commit(
        &mut viewer,
        ClientMessage::CreateChat(create_op(0.5, 0.5, "on the image")),
    )
    .await;

    // The whole tenant: the image's discussion, then the page's, as a TextQuoteSelector.
    let exported = tenant_annotations(&env, "GET", "acme", ACME_KEY, None).await;
    assert_eq!(exported.status, 200, "{}", exported.body);
    let collection = exported.json();
    assert_eq!(collection["total"], 2, "{collection}");
    let items = collection["first"]["items"].as_array().unwrap();
    assert_eq!(
        items[0]["target"]["selector"]["type"], "FragmentSelector",
        "images first"
    );
    let text = &items[1];
    assert_eq!(text["target"]["source"], PAGE);
    assert_eq!(
        text["target"]["selector"],
        serde_json::json!([
            {"type": "TextQuoteSelector", "exact": "Fishing boats leave",
             "prefix": "The harbour at dawn. ", "suffix": " before six; by seven the quay i"},
            {"type": "TextPositionSelector", "start": 21, "end": 40},
        ])
    );
    assert_eq!(text["body"][0]["value"], "Why so early?");
    // One page, or one image, alone; not both at once.
    let page_path = |tenant: &str| {
        format!(
            "{BASE}/{tenant}/annotations?page={}",
            support::api::enc(PAGE)
        )
    };
    let one = env
        .call("GET", &page_path("acme"), Some(ACME_KEY), None)
        .await;
    assert_eq!(one.json()["first"]["items"], serde_json::json!([text]));
    let image_only = env
        .call("GET", &annotations_path(PAGE), Some(ACME_KEY), None)
        .await;
    assert_eq!(image_only.json()["first"]["items"][0], items[0]);
    let both = env
        .call(
            "GET",
            &format!("{}&page=x", annotations_path(PAGE)),
            Some(ACME_KEY),
            None,
        )
        .await;
    assert_eq!(both.status, 400, "{}", both.body);

    // Into another tenant: the same discussions on the same image and page, live for a reader
    // of the page; a second import changes nothing.
    let mut other_reader = Client::join_with(env.addr(), page_hello("other")).await;
    let report = tenant_annotations(&env, "POST", "other", OTHER_KEY, Some(&exported.body)).await;
    assert_eq!(report.status, 200, "{}", report.body);
    let report = report.json();
    assert_eq!(
        (
            &report["images"],
            &report["discussions"],
            &report["applied"]
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!(2),
            &serde_json::json!(2)
        )
    );
    match other_reader.recv_skip_presence().await {
        image_chat_protocol::ServerMessage::NewTextChat(event) => {
            assert_eq!(event.chat.comments[0].text, "Why so early?");
        }
        other => panic!("expected the page's discussion live, got {other:?}"),
    }
    let again = tenant_annotations(&env, "POST", "other", OTHER_KEY, Some(&exported.body)).await;
    assert_eq!(again.json()["applied"], 0, "{}", again.body);
    let copy = tenant_annotations(&env, "GET", "other", OTHER_KEY, None).await;
    assert_eq!(copy.json()["first"]["items"], collection["first"]["items"]);

    // A page takes passages only: an image's annotation sent to `?page=` changes nothing.
    let placed = serde_json::json!([{"body": "here",
        "target": {"source": PAGE, "selector": {"type": "FragmentSelector",
                   "value": "xywh=percent:1,1,0,0"}}}])
    .to_string();
    let refused = env
        .call("POST", &page_path("other"), Some(OTHER_KEY), Some(&placed))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["code"], "invalid-request");
    // A quote written by another tool (no position) goes on the page.
    let quoted = serde_json::json!([{"body": "Gulls!",
        "target": {"source": PAGE, "selector": {"type": "TextQuoteSelector",
                   "exact": "the gulls", "prefix": "is quiet again and "}}}])
    .to_string();
    let added = env
        .call("POST", &page_path("other"), Some(OTHER_KEY), Some(&quoted))
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(
        (&added.json()["page"], &added.json()["applied"]),
        (&serde_json::json!(PAGE), &serde_json::json!(1))
    );
    let page_now = env
        .call("GET", &page_path("other"), Some(OTHER_KEY), None)
        .await;
    assert_eq!(page_now.json()["total"], 2, "{}", page_now.body);
    drop((reader, viewer, other_reader));
    env.server.shutdown().await;
}
