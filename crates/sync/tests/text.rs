//! Scenario tests for discussions on page text: the same engine as for images (it does not care
//! which kind its subject is), driven with a page's `hello`, text anchors and `*-text-chat`
//! events — optimistic create, echo suppression, remote changes, offline, resume and
//! snapshot, conflicts — plus the one rule that knows the kind: anchors of the wrong kind are
//! refused locally.

mod support;

use image_chat_protocol::{
    Anchor, ErrorCode, Event, Position, ServerMessage, Subject, SubjectKind, ValidationError,
};
use image_chat_sync::{
    Announcement, Command, ConnectionStatus, FailReason, LocalError, OpKind, OpState, ViewUpdate,
};
use support::{Client, FakeServer, alice, bob, create, create_text, page_config, passage};

fn live_page(seed: u64) -> (Client, FakeServer) {
    let server = FakeServer::page();
    let mut client = Client::with_config(seed, page_config());
    client.connect(&server);
    (client, server)
}

#[test]
fn a_page_engine_says_hello_with_its_page_id() {
    let server = FakeServer::page();
    let mut client = Client::with_config(1, page_config());
    let hello = client.open();
    assert_eq!(hello.subject.kind(), SubjectKind::Page);
    assert!(matches!(hello.subject, Subject::Page(ref p) if p.as_str().ends_with("#chapter-1")));
    let frame = client.sent[0].to_json();
    assert!(
        frame.contains("\"pageId\":") && !frame.contains("imageId"),
        "{frame}"
    );
    client.recv(ServerMessage::Welcome(server.welcome(&hello, &alice())));
    assert_eq!(client.engine.status(), ConnectionStatus::Live);
    assert_eq!(client.engine.subject().kind(), SubjectKind::Page);
}

#[test]
fn optimistic_text_discussion_is_confirmed_once_by_ack_and_echo() {
    let (mut client, mut server) = live_page(2);
    let op = client
        .local(create_text("Fishing boats leave", "Why so early?"))
        .unwrap();
    assert_eq!(op.kind, OpKind::CreateChat);
    // Shown at once, pending, on its passage.
    let chat = client.engine.view().chat(&op.chat_id).unwrap().clone();
    assert!(chat.state.is_pending());
    assert_eq!(chat.text(), Some(&passage("Fishing boats leave")));
    assert_eq!(chat.point(), None, "no marker on an image");
    assert_eq!(chat.region(), None);

    let sent = client.sent_ops();
    let (ack, event) = server.submit(&sent[0], &alice()).unwrap();
    let event = event.unwrap();
    assert!(matches!(event, Event::NewTextChat(_)));
    client.recv(ServerMessage::Ack(ack));
    // The echo is the page's event name; it is recognised by its broadcastId.
    client.recv(ServerMessage::from(event));
    let view = client.engine.view();
    assert_eq!(view.chats.len(), 1, "the echo is not applied twice");
    assert_eq!(view.chats[0].state, OpState::Confirmed);
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert!(
        client.announcements().is_empty(),
        "own change not announced"
    );
}

#[test]
fn remote_text_changes_are_applied_and_announced() {
    let (mut client, mut server) = live_page(3);
    let created = server.remote_create_text(&bob(), passage("the gulls take over"), "Noisy!");
    let Event::NewTextChat(ref e) = created else {
        panic!("a page event")
    };
    let chat_id = e.chat.id.clone();
    client.recv_event(created);
    let reply = server.remote_reply(&bob(), &chat_id, "Every morning.");
    assert!(matches!(reply, Event::UpdatedTextChat(_)));
    client.recv_event(reply);
    let moved = server.remote_move(&bob(), &chat_id, Anchor::Text(passage("the quay is quiet")));
    client.recv_event(moved);
    let chat = client.engine.view().chat(&chat_id).unwrap();
    assert_eq!(chat.comments.len(), 2);
    assert_eq!(chat.text(), Some(&passage("the quay is quiet")));
    let deleted = server.remote_delete(&bob(), &chat_id);
    assert!(matches!(deleted, Event::DeletedTextChat(_)));
    client.recv_event(deleted);
    assert!(client.engine.view().chats.is_empty());
    assert_eq!(client.engine.confirmed_state(), &server.state);
    let said = client.announcements();
    assert!(matches!(&said[0], Announcement::NewChat { by, .. } if by == &bob()));
    assert!(matches!(said[1], Announcement::Reply { .. }));
    assert!(matches!(said[2], Announcement::Moved { .. }));
    assert!(matches!(said[3], Announcement::Deleted { .. }));
}

#[test]
fn reply_edit_resolve_delete_on_a_page_are_optimistic_and_confirmed() {
    let (mut client, mut server) = live_page(4);
    let created = client.op(&mut server, create_text("Fishing boats", "first"));
    let reply = client.op(
        &mut server,
        Command::Reply {
            chat_id: created.chat_id.clone(),
            text: "second".into(),
        },
    );
    client.op(
        &mut server,
        Command::Edit {
            chat_id: created.chat_id.clone(),
            comment_id: reply.comment_id.clone().unwrap(),
            text: "second, edited".into(),
        },
    );
    client.op(
        &mut server,
        Command::Resolve {
            chat_id: created.chat_id.clone(),
            resolved: true,
        },
    );
    // Re-anchored on other text (the widget does this when the person picks a new passage).
    client.op(
        &mut server,
        Command::Move {
            chat_id: created.chat_id.clone(),
            anchor: Anchor::Text(passage("by seven")),
        },
    );
    let chat = client.engine.view().chat(&created.chat_id).unwrap();
    assert!(chat.resolved);
    assert_eq!(chat.comments[1].text, "second, edited");
    assert_eq!(chat.text(), Some(&passage("by seven")));
    assert!(
        server
            .log
            .iter()
            .all(|e| e.subject_kind() == SubjectKind::Page)
    );
    client.op(
        &mut server,
        Command::Delete {
            chat_id: created.chat_id.clone(),
        },
    );
    assert!(client.engine.view().chats.is_empty());
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert!(client.announcements().is_empty());
}

#[test]
fn anchors_of_the_wrong_kind_and_broken_text_anchors_are_refused_locally() {
    let (mut client, _server) = live_page(5);
    for cmd in [
        create("a point on a page"),
        Command::CreateRegion {
            x: 0.1,
            y: 0.1,
            w: 0.2,
            h: 0.2,
            text: "a region on a page".into(),
        },
    ] {
        assert!(matches!(
            client.local(cmd),
            Err(LocalError::Invalid(ValidationError::WrongAnchorKind(_)))
        ));
    }
    let mut broken = passage("the quay");
    broken.end = broken.start; // an empty range
    assert!(matches!(
        client.local(Command::CreateText {
            anchor: broken,
            text: "x".into()
        }),
        Err(LocalError::Invalid(ValidationError::InvalidAnchor(_)))
    ));
    assert!(client.sent_ops().is_empty(), "nothing was sent");
    assert!(client.engine.view().chats.is_empty(), "nothing was shown");

    // And text on an image engine.
    let server = FakeServer::new();
    let mut on_image = Client::new(6);
    on_image.connect(&server);
    assert!(matches!(
        on_image.local(create_text("the quay", "text on a picture")),
        Err(LocalError::Invalid(ValidationError::WrongAnchorKind(_)))
    ));
    assert!(on_image.sent_ops().is_empty());
}

#[test]
fn offline_text_discussion_fails_at_once_and_is_only_sent_on_retry() {
    let (mut client, mut server) = live_page(7);
    client.network(false);
    let result = client.local(create_text("gulls", "offline"));
    let Err(LocalError::NotConnected { op, reason }) = result else {
        panic!("expected NotConnected, got {result:?}");
    };
    assert_eq!(reason, FailReason::Offline);
    assert!(
        client
            .engine
            .view()
            .chat(&op.chat_id)
            .unwrap()
            .state
            .is_failed()
    );
    client.network(true);
    client.reconnect(&server);
    assert!(client.sent_ops().is_empty(), "never queued");
    let before = client.sent.len();
    client.local(Command::Retry { op: op.op.clone() }).unwrap();
    let frames = client.sent[before..].to_vec();
    client.serve(&mut server, frames);
    let chat = client.engine.view().chat(&op.chat_id).unwrap();
    assert_eq!(chat.state, OpState::Confirmed);
    assert_eq!(chat.text(), Some(&passage("gulls")));
}

#[test]
fn a_page_resumes_with_missed_text_events_or_a_snapshot() {
    let (mut client, mut server) = live_page(8);
    let mine = client.op(&mut server, create_text("Fishing boats", "mine"));
    // In flight when the socket drops; committed by the server.
    client
        .local(Command::Reply {
            chat_id: mine.chat_id.clone(),
            text: "in flight".into(),
        })
        .unwrap();
    let sent = client.sent_ops();
    server.submit(sent.last().unwrap(), &alice()).unwrap();
    let theirs = server.remote_create_text(&bob(), passage("the gulls"), "theirs");
    client.closed(1006);

    let hello = client.reconnect(&server);
    assert_eq!(
        hello.resume,
        Some(Position {
            epoch: server.epoch,
            seq: 1
        })
    );
    assert_eq!(client.engine.view().chats.len(), 2);
    let chat = client.engine.view().chat(&mine.chat_id).unwrap();
    assert!(chat.comments.iter().all(|c| c.state == OpState::Confirmed));
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert!(theirs.subject_kind() == SubjectKind::Page);

    // A new epoch: the resume gets the snapshot, text anchors and all.
    client.closed(1006);
    server.remote_delete(&bob(), &theirs.chat_id().clone());
    server.new_epoch();
    client.reconnect(&server);
    assert_eq!(client.engine.view().chats.len(), 1);
    assert_eq!(
        client.engine.view().chats[0].text(),
        Some(&passage("Fishing boats"))
    );
    assert_eq!(client.engine.confirmed_state(), &server.state);
}

#[test]
fn a_reply_to_a_discussion_deleted_meanwhile_fails_and_the_view_converges() {
    let (mut client, mut server) = live_page(9);
    let theirs = server.remote_create_text(&bob(), passage("the quay"), "theirs");
    let chat_id = theirs.chat_id().clone();
    client.recv_event(theirs);
    let reply = client
        .local(Command::Reply {
            chat_id: chat_id.clone(),
            text: "too late".into(),
        })
        .unwrap();
    // Bob deletes the discussion before our reply reaches the server.
    let deleted = server.remote_delete(&bob(), &chat_id);
    client.recv_event(deleted);
    let frames = client.sent.clone();
    let frames: Vec<_> = frames
        .into_iter()
        .filter(|m| m.clone().into_op().is_ok())
        .collect();
    client.serve(&mut server, frames);
    assert!(client.engine.view().chat(&chat_id).is_none());
    assert!(client.updates.iter().any(|u| matches!(
        u,
        ViewUpdate::OpFailed { op, reason: FailReason::Server(ErrorCode::UnknownChat), .. }
            if op == &reply.op
    )));
    assert_eq!(client.engine.confirmed_state(), &server.state);
}
