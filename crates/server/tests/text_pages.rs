//! Discussions on page text over real WebSockets on 127.0.0.1:0 (issue #14): a page is named by
//! `hello.pageId` and works exactly as an image does — create, reply, edit, re-anchor, delete
//! live between two people and a second tab, events named `new-text-chat`,
//! `updated-text-chat`, `deleted-text-chat` echoing the op's `broadcastId`, the live count of
//! the page's connections, resume (exact missed events, or a snapshot on a stale epoch),
//! durability across a restart — while anchors of the wrong kind and hostile text anchors are
//! refused with precise codes, the socket working on.

mod support;

use image_chat_protocol::{
    Anchor, ChatChange, ClientMessage, ErrorCode, Event, ImageState, MoveChat, Position,
    ServerMessage, SubjectKind,
};
use support::*;

const ARTICLE: &str = "The harbour at dawn. Fishing boats leave before six; by seven the quay \
                       is quiet again and the gulls take over. 🦊 Foxes sleep in the nets.";

/// The text anchor of `passage` in [`ARTICLE`], built by the anchor crate as the widget does.
fn passage(passage: &str) -> Anchor {
    Anchor::Text(image_chat_anchor::describe_passage(ARTICLE, passage).expect("in the article"))
}

fn create_on(anchor: Anchor, text: &str) -> image_chat_protocol::CreateChat {
    image_chat_protocol::CreateChat {
        anchor,
        ..create_op(0.0, 0.0, text)
    }
}

async fn join_page(server: &TestServer, page: &str) -> Client {
    Client::join_with(server.addr(), page_hello(page, None)).await
}

/// The next event, which must be of a page.
async fn text_event(client: &mut Client) -> Event {
    let message = client.recv_skip_presence().await;
    let event = message
        .into_event()
        .unwrap_or_else(|m| panic!("expected an event, got {m:?}"));
    assert_eq!(event.subject_kind(), SubjectKind::Page, "{event:?}");
    event
}

async fn refused(client: &mut Client, frame: &str) -> image_chat_protocol::ErrorFrame {
    client.send_raw(frame).await;
    match client.recv_skip_presence().await {
        ServerMessage::Error(e) => e,
        other => panic!("expected an error for {frame}, got {other:?}"),
    }
}

/// Sends `op` from `clients[author]`, expects its ack with `seq`, then the event with that
/// `seq` on every client (the author's echo carries the op's `broadcastId`).
async fn everyone_sees(clients: &mut [&mut Client], author: usize, op: ClientMessage) -> Event {
    let broadcast_id = op.clone().into_op().expect("an op").broadcast_id().clone();
    let seq = send_for_ack(clients[author], op).await;
    let mut seen = Vec::new();
    for client in clients.iter_mut() {
        let event = text_event(client).await;
        assert_eq!(event.seq(), seq);
        assert_eq!(event.broadcast_id(), &broadcast_id);
        seen.push(event);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "one event for all");
    seen.remove(0)
}

#[tokio::test]
async fn a_text_discussion_lives_on_a_page_for_everyone() {
    let server = TestServer::start().await;
    let page = "https://example.com/blog/harbour#chapter-1";
    let mut ada = join_page(&server, page).await;
    let mut grace = join_page(&server, page).await;
    let mut ada_tab = join_page(&server, page).await;
    // Someone on the image with the page's id is on another subject.
    let mut image_viewer = Client::join(server.addr(), page).await;
    assert!(!ada.welcome().recovered);
    assert!(ada.welcome().snapshot.as_ref().unwrap().chats.is_empty());
    // The live count is the page's connections (three, tabs included), not the image's.
    assert_eq!(ada_tab.welcome().online, 3);
    assert_eq!(image_viewer.welcome().online, 1);
    let ada_id = ada.welcome().you.id.clone();
    let mut clients = [&mut ada, &mut grace, &mut ada_tab];
    const ADA: usize = 0;
    const GRACE: usize = 1;

    // Ada discusses a passage: `new-text-chat` for all three connections.
    let create = create_on(passage("Fishing boats leave before six"), "Why so early?");
    let Event::NewTextChat(created) =
        everyone_sees(&mut clients, ADA, ClientMessage::CreateChat(create.clone())).await
    else {
        panic!("expected new-text-chat");
    };
    assert_eq!((created.seq, &created.chat.id), (1, &create.chat_id));
    assert_eq!(created.chat.anchor, create.anchor);
    assert_eq!(created.chat.comments[0].author.id, ada_id);

    // Grace replies, Ada edits and re-anchors: `updated-text-chat`.
    let reply = reply_op(&create.chat_id, "The tide, I think.");
    let edit = edit_op(
        &create.chat_id,
        &create.chat_id.opening_comment(),
        "Why before six?",
    );
    let moved = MoveChat {
        broadcast_id: image_chat_protocol::BroadcastId::new(new_id()),
        chat_id: create.chat_id.clone(),
        anchor: passage("by seven the quay is quiet"),
    };
    for (author, op) in [
        (GRACE, ClientMessage::AddComment(reply.clone())),
        (ADA, ClientMessage::EditComment(edit)),
        (ADA, ClientMessage::MoveChat(moved.clone())),
    ] {
        let event = everyone_sees(&mut clients, author, op).await;
        assert!(matches!(event, Event::UpdatedTextChat(_)), "{event:?}");
    }
    // Ada may not delete Grace's reply; Grace may.
    let delete_reply = image_chat_protocol::DeleteComment {
        broadcast_id: image_chat_protocol::BroadcastId::new(new_id()),
        chat_id: create.chat_id.clone(),
        comment_id: reply.comment_id.clone(),
    };
    let e = refused(
        clients[ADA],
        &ClientMessage::DeleteComment(delete_reply.clone()).to_json(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::Forbidden);
    let Event::UpdatedTextChat(removed) = everyone_sees(
        &mut clients,
        GRACE,
        ClientMessage::DeleteComment(image_chat_protocol::DeleteComment {
            broadcast_id: image_chat_protocol::BroadcastId::new(new_id()),
            ..delete_reply
        }),
    )
    .await
    else {
        panic!("expected updated-text-chat");
    };
    assert!(matches!(removed.change, ChatChange::CommentDeleted { .. }));

    // A newcomer's snapshot is the replayed story.
    let fresh = join_page(&server, page).await;
    let state = ImageState::from_snapshot(fresh.welcome().snapshot.clone().unwrap());
    let chat = &state.chats()[0];
    assert_eq!(chat.anchor, moved.anchor, "the re-anchored passage");
    assert_eq!(chat.comments.len(), 1);
    assert_eq!(chat.comments[0].text, "Why before six?");
    drop(fresh);

    // Ada deletes the discussion: `deleted-text-chat` for everyone.
    let Event::DeletedTextChat(deleted) = everyone_sees(
        &mut clients,
        ADA,
        ClientMessage::DeleteChat(delete_op(&create.chat_id)),
    )
    .await
    else {
        panic!("expected deleted-text-chat");
    };
    assert_eq!((deleted.seq, &deleted.chat_id), (6, &create.chat_id));
    for client in clients {
        client.assert_quiet().await;
    }
    // The image of the same id saw none of it.
    image_viewer.assert_quiet().await;
    assert!(
        Client::join(server.addr(), page)
            .await
            .welcome()
            .snapshot
            .as_ref()
            .unwrap()
            .chats
            .is_empty()
    );
}

#[tokio::test]
async fn a_page_resumes_with_exactly_the_missed_text_events_and_survives_a_restart() {
    let server = TestServer::start().await;
    let page = "https://example.com/notes#intro";
    let mut ada = join_page(&server, page).await;
    let create = create_on(passage("Foxes sleep in the nets"), "Really?");
    commit(&mut ada, ClientMessage::CreateChat(create.clone())).await;
    // Ada's welcome came before the log existed (epoch 0): the log's epoch is what a later
    // welcome says (the widget takes it from the events).
    let epoch = join_page(&server, page).await.welcome().position.epoch;
    let seen = Position { epoch, seq: 1 };
    drop(ada);

    let mut grace = join_page(&server, page).await;
    let reply = reply_op(&create.chat_id, "Yes, every morning.");
    commit(&mut grace, ClientMessage::AddComment(reply.clone())).await;
    commit(
        &mut grace,
        ClientMessage::EditComment(edit_op(
            &create.chat_id,
            &reply.comment_id,
            "Yes, every morning 🦊",
        )),
    )
    .await;

    let back = Client::join_with(server.addr(), page_hello(page, Some(seen))).await;
    let welcome = back.welcome();
    assert!(welcome.recovered);
    assert_eq!(welcome.position, Position { epoch, seq: 3 });
    assert_eq!(welcome.events.len(), 2);
    assert!(
        welcome
            .events
            .iter()
            .all(|e| matches!(e, Event::UpdatedTextChat(_)))
    );

    // A stale epoch gets the snapshot, text anchors and all; so does everyone after a restart.
    let stale = Position {
        epoch: epoch.wrapping_add(1),
        seq: 3,
    };
    let server = server.restart().await;
    let again = Client::join_with(server.addr(), page_hello(page, Some(stale))).await;
    let welcome = again.welcome();
    assert!(!welcome.recovered);
    let chats = &welcome.snapshot.as_ref().unwrap().chats;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].anchor, create.anchor);
    assert_eq!(chats[0].comments[1].text, "Yes, every morning 🦊");
    assert_eq!(welcome.position, Position { epoch, seq: 3 });

    // The HTTP snapshot names a page with `?page=` (exactly one of image and page).
    let encoded = "https%3A%2F%2Fexample.com%2Fnotes%23intro";
    let (status, body) = http_get(
        server.addr(),
        &format!("/api/v1/tenants/demo/snapshot?page={encoded}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let snapshot: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snapshot["chats"][0]["anchor"]["type"], "text");
    assert_eq!(snapshot["position"]["seq"], 3);
    let (_, on_image) = http_get(
        server.addr(),
        &format!("/api/v1/tenants/demo/snapshot?image={encoded}"),
    )
    .await;
    assert!(on_image.contains("\"chats\":[]"), "{on_image}");
    for query in [format!("image={encoded}&page={encoded}"), String::new()] {
        let (status, _) = http_get(
            server.addr(),
            &format!("/api/v1/tenants/demo/snapshot?{query}"),
        )
        .await;
        assert_eq!(status, 400, "{query}");
    }
}

#[tokio::test]
async fn anchors_of_the_wrong_kind_are_refused() {
    let server = TestServer::start().await;
    let mut on_page = join_page(&server, "article").await;
    let mut on_image = Client::join(server.addr(), "photo.jpg").await;

    for anchor in [Anchor::point(0.5, 0.5), Anchor::region(0.1, 0.2, 0.3, 0.4)] {
        let op = create_on(anchor, "a marker on text?");
        let e = refused(
            &mut on_page,
            &ClientMessage::CreateChat(op.clone()).to_json(),
        )
        .await;
        assert_eq!(e.code, ErrorCode::WrongAnchorKind);
        assert_eq!(e.broadcast_id, Some(op.broadcast_id));
    }
    let op = create_on(passage("the gulls"), "text on a picture?");
    let e = refused(
        &mut on_image,
        &ClientMessage::CreateChat(op.clone()).to_json(),
    )
    .await;
    assert_eq!(e.code, ErrorCode::WrongAnchorKind);
    assert_eq!(e.broadcast_id, Some(op.broadcast_id));

    // A page discussion cannot be moved onto a point either; the socket keeps working.
    let create = create_on(passage("the gulls"), "fine here");
    commit(&mut on_page, ClientMessage::CreateChat(create.clone())).await;
    let moved = MoveChat {
        broadcast_id: image_chat_protocol::BroadcastId::new(new_id()),
        chat_id: create.chat_id.clone(),
        anchor: Anchor::point(0.5, 0.5),
    };
    let e = refused(&mut on_page, &ClientMessage::MoveChat(moved).to_json()).await;
    assert_eq!(e.code, ErrorCode::WrongAnchorKind);
    on_page.assert_quiet().await;
    on_image.assert_quiet().await;
    assert_eq!(
        join_page(&server, "article").await.welcome().position.seq,
        1,
        "nothing refused was committed"
    );
}

#[tokio::test]
async fn hostile_text_anchors_and_page_ids_are_refused_with_clear_codes() {
    let server = TestServer::start().await;
    let mut client = join_page(&server, "article").await;
    let frame = |anchor: serde_json::Value| {
        serde_json::json!({
            "type": "create-chat",
            "broadcastId": new_id(),
            "chatId": new_id(),
            "anchor": anchor,
            "text": "hostile",
        })
        .to_string()
    };
    let text = |exact: &str, start: u64, end: u64| serde_json::json!({"type": "text", "exact": exact, "prefix": "", "suffix": "", "start": start, "end": end});
    let huge = "x".repeat(image_chat_protocol::limits::MAX_EXACT_UNITS + 1);
    let mut long_context = text("fox", 0, 3);
    long_context["prefix"] = serde_json::json!("p".repeat(33));
    let mut escape = text("fox", 0, 3);
    escape["suffix"] = serde_json::json!("\u{1b}[2J\u{7}");
    let cases = [
        (text("fox", 7, 4), ErrorCode::InvalidAnchor, "start > end"),
        (text("fox", 4, 4), ErrorCode::InvalidAnchor, "empty range"),
        (
            text("fox", 0, 9),
            ErrorCode::InvalidAnchor,
            "offsets against exact",
        ),
        (text("a\u{0}b", 0, 3), ErrorCode::InvalidAnchor, "NUL"),
        (
            text("\u{202e}\u{1b}", 0, 2),
            ErrorCode::InvalidAnchor,
            "escape",
        ),
        (text("   ", 0, 3), ErrorCode::InvalidAnchor, "blank"),
        (
            text(&huge, 0, huge.len() as u64),
            ErrorCode::InvalidAnchor,
            "huge exact",
        ),
        (long_context, ErrorCode::InvalidAnchor, "long prefix"),
        (
            escape,
            ErrorCode::InvalidAnchor,
            "control characters in the suffix",
        ),
        (
            text("fox", 0, 1 << 32),
            ErrorCode::MalformedFrame,
            "offset beyond u32",
        ),
        (
            text("fox", 0, 3)
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("start".into(), serde_json::json!(-1));
                    serde_json::Value::Object(o)
                })
                .unwrap(),
            ErrorCode::MalformedFrame,
            "negative offset",
        ),
        (
            serde_json::json!({"type": "text", "exact": "fox", "start": 0, "end": 3}),
            ErrorCode::MalformedFrame,
            "missing context keys",
        ),
        (
            serde_json::json!({"type": "highlight", "exact": "fox"}),
            ErrorCode::MalformedFrame,
            "unknown anchor kind",
        ),
    ];
    for (anchor, code, why) in cases {
        let e = refused(&mut client, &frame(anchor)).await;
        assert_eq!(e.code, code, "{why}: {}", e.message);
        assert!(e.broadcast_id.is_some(), "{why}: the error names the op");
    }
    client.assert_quiet().await;
    assert_eq!(
        join_page(&server, "article").await.welcome().position.seq,
        0
    );

    // Bad page ids and a subject named twice or not at all end the session (4400).
    let both = serde_json::json!({
        "type": "hello", "protocol": 1, "tenantId": "demo", "imageId": "a", "pageId": "a",
    });
    let neither = serde_json::json!({"type": "hello", "protocol": 1, "tenantId": "demo"});
    let control = serde_json::json!({
        "type": "hello", "protocol": 1, "tenantId": "demo", "pageId": "a\u{0}b",
    });
    let long = serde_json::json!({
        "type": "hello", "protocol": 1, "tenantId": "demo", "pageId": "p".repeat(513),
    });
    for (hello, code) in [
        (both, ErrorCode::MalformedFrame),
        (neither, ErrorCode::MalformedFrame),
        (control, ErrorCode::InvalidId),
        (long, ErrorCode::InvalidId),
    ] {
        let mut c = Client::open(server.addr(), None).await;
        c.send_raw(&hello.to_string()).await;
        match c.recv().await {
            ServerMessage::Error(e) => assert_eq!(e.code, code, "{hello}: {}", e.message),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(c.closed().await, 4400);
    }
}
