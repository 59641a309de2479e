//! The server over real WebSockets on 127.0.0.1:0: live fan-out between clients of one image,
//! isolation between images, resume (exact missed events, or a snapshot past retention or on a
//! wrong epoch), durability across restarts, idempotent retries, presence, and bad input that
//! gets a precise error while the socket keeps working.

mod support;

use image_chat_protocol::{
    ChatChange, ClientMessage, ErrorCode, Event, ImageState, Position, ServerMessage,
};
use image_chat_server::Security;
use image_chat_server::app::SessionLimits;
use support::*;

fn expect_event(message: ServerMessage) -> Event {
    match message {
        ServerMessage::NewImageChat(e) => Event::NewImageChat(e),
        ServerMessage::ImageChatUpdated(e) => Event::ImageChatUpdated(e),
        ServerMessage::DeletedImageChat(e) => Event::DeletedImageChat(e),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn two_clients_see_each_others_create_reply_edit_delete() {
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "img-1").await;
    let mut b = Client::join(server.addr(), "img-1").await;
    assert!(!a.welcome().recovered, "a fresh client gets a snapshot");
    assert!(a.welcome().snapshot.as_ref().unwrap().chats.is_empty());

    // A creates: A gets the ack, then its own echo (same broadcastId); B gets the event.
    let create = create_op(0.25, 0.75, "Look at this corner");
    let seq = send_for_ack(&mut a, ClientMessage::CreateChat(create.clone())).await;
    assert_eq!(seq, 1);
    let echo = expect_event(a.recv_skip_presence().await);
    assert_eq!(echo.broadcast_id(), &create.broadcast_id);
    let Event::NewImageChat(seen) = expect_event(b.recv_skip_presence().await) else {
        panic!("expected new-image-chat");
    };
    assert_eq!(seen.seq, 1);
    assert_eq!(seen.chat.id, create.chat_id);
    assert_eq!(seen.chat.comments[0].text, "Look at this corner");
    assert_eq!(seen.chat.comments[0].author.id, a.welcome().you.id);

    // B replies: A sees the change (only the change, not the whole thread).
    let reply = reply_op(&create.chat_id, "Agreed");
    assert_eq!(
        send_for_ack(&mut b, ClientMessage::AddComment(reply.clone())).await,
        2
    );
    let Event::ImageChatUpdated(update) = expect_event(a.recv_skip_presence().await) else {
        panic!("expected image-chat-updated");
    };
    assert_eq!(update.seq, 2);
    assert!(
        matches!(&update.change, ChatChange::CommentAdded { comment } if comment.id == reply.comment_id && comment.text == "Agreed")
    );
    expect_event(b.recv_skip_presence().await); // B's echo

    // A edits its comment, then deletes the discussion.
    let edit = edit_op(
        &create.chat_id,
        &create.chat_id.opening_comment(),
        "Look at this corner (edited)",
    );
    assert_eq!(
        send_for_ack(&mut a, ClientMessage::EditComment(edit)).await,
        3
    );
    let Event::ImageChatUpdated(edited) = expect_event(b.recv_skip_presence().await) else {
        panic!("expected image-chat-updated");
    };
    assert!(
        matches!(&edited.change, ChatChange::CommentEdited { text, .. } if text == "Look at this corner (edited)")
    );
    expect_event(a.recv_skip_presence().await);

    assert_eq!(
        send_for_ack(
            &mut a,
            ClientMessage::DeleteChat(delete_op(&create.chat_id))
        )
        .await,
        4
    );
    let Event::DeletedImageChat(deleted) = expect_event(b.recv_skip_presence().await) else {
        panic!("expected deleted-image-chat");
    };
    assert_eq!(deleted.chat_id, create.chat_id);
    expect_event(a.recv_skip_presence().await);
    a.assert_quiet().await;
    b.assert_quiet().await;
}

#[tokio::test]
async fn another_image_sees_nothing() {
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "img-1").await;
    let mut other = Client::join(server.addr(), "img-2").await;
    let create = create_op(0.5, 0.5, "only for img-1");
    commit(&mut a, ClientMessage::CreateChat(create.clone())).await;
    commit(
        &mut a,
        ClientMessage::AddComment(reply_op(&create.chat_id, "more")),
    )
    .await;
    other.assert_quiet().await;
    // Ops of another image's chats are refused: the chat is not on this image.
    other
        .send(&ClientMessage::DeleteChat(delete_op(&create.chat_id)))
        .await;
    match other.recv_skip_presence().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::UnknownChat),
        m => panic!("expected error, got {m:?}"),
    }
}

#[tokio::test]
async fn a_resuming_client_gets_exactly_the_missed_events() {
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "img").await;
    let first = create_op(0.1, 0.1, "before");
    commit(&mut a, ClientMessage::CreateChat(first.clone())).await;
    let b = Client::join(server.addr(), "img").await;
    let resume = b.welcome().position;
    assert_eq!(resume.seq, 1);
    drop(b);

    let mut expected = Vec::new();
    for i in 0..5 {
        let seq = commit(
            &mut a,
            ClientMessage::AddComment(reply_op(&first.chat_id, &format!("m{i}"))),
        )
        .await;
        expected.push(seq);
    }
    let b = Client::join_with(server.addr(), hello("img", Some(resume))).await;
    let welcome = b.welcome();
    assert!(welcome.recovered);
    assert!(welcome.snapshot.is_none());
    let seqs: Vec<u64> = welcome.events.iter().map(Event::seq).collect();
    assert_eq!(seqs, expected);
    assert_eq!(welcome.position.seq, 6);

    // Resuming when nothing was missed: recovered with no events.
    let c = Client::join_with(server.addr(), hello("img", Some(welcome.position))).await;
    assert!(c.welcome().recovered);
    assert!(c.welcome().events.is_empty());
}

#[tokio::test]
async fn resume_past_retention_or_with_wrong_epoch_gets_a_snapshot() {
    let server = TestServer::start_with(3, SessionLimits::default()).await;
    let mut a = Client::join(server.addr(), "img").await;
    let chat = create_op(0.3, 0.3, "root");
    commit(&mut a, ClientMessage::CreateChat(chat.clone())).await;
    let old = Position {
        epoch: a.welcome().position.epoch,
        seq: 1,
    };
    for i in 0..10 {
        commit(
            &mut a,
            ClientMessage::AddComment(reply_op(&chat.chat_id, &format!("r{i}"))),
        )
        .await;
    }
    let b = Client::join(server.addr(), "img").await;
    let current = b.welcome().position;
    assert_eq!(current.seq, 11);

    let past = Client::join_with(
        server.addr(),
        hello(
            "img",
            Some(Position {
                epoch: current.epoch,
                ..old
            }),
        ),
    )
    .await;
    assert!(!past.welcome().recovered);
    let snapshot = past.welcome().snapshot.as_ref().unwrap();
    assert_eq!(snapshot.chats.len(), 1);
    assert_eq!(snapshot.chats[0].comments.len(), 11);
    assert_eq!(past.welcome().position, current);

    let wrong_epoch = Position {
        epoch: current.epoch.wrapping_add(1),
        seq: current.seq,
    };
    let other = Client::join_with(server.addr(), hello("img", Some(wrong_epoch))).await;
    assert!(!other.welcome().recovered);
    assert_eq!(other.welcome().snapshot.as_ref().unwrap(), snapshot);

    let ahead = Position {
        epoch: current.epoch,
        seq: current.seq + 5,
    };
    let ahead = Client::join_with(server.addr(), hello("img", Some(ahead))).await;
    assert!(!ahead.welcome().recovered);
}

#[tokio::test]
async fn a_restart_on_the_same_file_keeps_every_acked_change() {
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "img").await;
    let mut state = ImageState::default();
    let chat = create_op(0.9, 0.1, "durable");
    send_for_ack(&mut a, ClientMessage::CreateChat(chat.clone())).await;
    let created = expect_event(a.recv_skip_presence().await);
    // The log (and its epoch) comes into being with the image's first change.
    let before = created.epoch();
    state.apply(&created).unwrap();
    for i in 0..3 {
        let reply = reply_op(&chat.chat_id, &format!("c{i}"));
        send_for_ack(&mut a, ClientMessage::AddComment(reply)).await;
        state
            .apply(&expect_event(a.recv_skip_presence().await))
            .unwrap();
    }
    let server = server.restart().await;
    // The old socket was told to reconnect (service restart).
    assert_eq!(a.closed().await, 1012);

    let b = Client::join(server.addr(), "img").await;
    assert_eq!(
        b.welcome().position,
        Position {
            epoch: before,
            seq: 4
        }
    );
    assert_eq!(b.welcome().snapshot.as_ref().unwrap(), &state.to_snapshot());
    let resumed = Client::join_with(
        server.addr(),
        hello(
            "img",
            Some(Position {
                epoch: before,
                seq: 2,
            }),
        ),
    )
    .await;
    assert!(resumed.welcome().recovered);
    assert_eq!(resumed.welcome().events.len(), 2);
}

#[tokio::test]
async fn the_same_op_twice_makes_one_change_and_two_acks() {
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "img").await;
    let mut b = Client::join(server.addr(), "img").await;
    let create = ClientMessage::CreateChat(create_op(0.4, 0.6, "once"));
    let first = commit(&mut a, create.clone()).await;
    let second = send_for_ack(&mut a, create).await;
    assert_eq!(first, second);
    expect_event(b.recv_skip_presence().await);
    b.assert_quiet().await;
    a.assert_quiet().await;
}

#[tokio::test]
async fn bad_input_gets_an_error_and_the_socket_keeps_working() {
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "img").await;
    let kept = create_op(0.5, 0.5, "committed before the abuse");
    commit(&mut a, ClientMessage::CreateChat(kept.clone())).await;

    let mut out_of_range = create_op(0.5, 0.5, "x");
    out_of_range.anchor = image_chat_protocol::Anchor::Point { x: 1.5, y: -0.1 };
    let too_long = create_op(
        0.5,
        0.5,
        &"a".repeat(image_chat_protocol::limits::MAX_TEXT_CHARS + 1),
    );
    let unknown_chat = reply_op(&image_chat_protocol::ChatId::new(new_id()), "to nowhere");
    let cases: Vec<(String, ErrorCode, Option<String>)> = vec![
        ("{not json".into(), ErrorCode::MalformedFrame, None),
        ("[1,2,3]".into(), ErrorCode::MalformedFrame, None),
        (
            r#"{"type":"launch-missiles"}"#.into(),
            ErrorCode::UnknownType,
            None,
        ),
        (
            ClientMessage::CreateChat(out_of_range.clone()).to_json(),
            ErrorCode::InvalidCoordinates,
            Some(out_of_range.broadcast_id.to_string()),
        ),
        (
            ClientMessage::CreateChat(too_long.clone()).to_json(),
            ErrorCode::TextTooLong,
            Some(too_long.broadcast_id.to_string()),
        ),
        (
            ClientMessage::AddComment(unknown_chat.clone()).to_json(),
            ErrorCode::UnknownChat,
            Some(unknown_chat.broadcast_id.to_string()),
        ),
        (
            ClientMessage::Hello(hello("img", None)).to_json(),
            ErrorCode::UnexpectedMessage,
            None,
        ),
        ("x".repeat(40 * 1024), ErrorCode::FrameTooLarge, None),
    ];
    for (frame, code, broadcast_id) in cases {
        a.send_raw(&frame).await;
        match a.recv_skip_presence().await {
            ServerMessage::Error(e) => {
                assert_eq!(e.code, code, "for {}", &frame[..frame.len().min(60)]);
                assert_eq!(e.broadcast_id.map(|b| b.to_string()), broadcast_id);
                assert!(!e.message.is_empty());
            }
            other => panic!("expected error for {frame:.60}, got {other:?}"),
        }
    }
    // Someone else's comment cannot be edited.
    let mut b = Client::join(server.addr(), "img").await;
    b.send(&ClientMessage::EditComment(edit_op(
        &kept.chat_id,
        &kept.chat_id.opening_comment(),
        "hijack",
    )))
    .await;
    match b.recv_skip_presence().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::Forbidden),
        other => panic!("expected forbidden, got {other:?}"),
    }

    // Still alive, and what was committed before is intact.
    let after = create_op(0.2, 0.2, "still works");
    assert_eq!(
        send_for_ack(&mut a, ClientMessage::CreateChat(after)).await,
        2
    );
    let c = Client::join(server.addr(), "img").await;
    let chats = &c.welcome().snapshot.as_ref().unwrap().chats;
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[0].comments[0].text, "committed before the abuse");
}

#[tokio::test]
async fn presence_counts_follow_joins_and_leaves() {
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "img").await;
    assert_eq!(a.welcome().online, 1);
    let b = Client::join(server.addr(), "img").await;
    assert_eq!(b.welcome().online, 2);
    a.wait_for_presence(2).await;
    drop(b);
    a.wait_for_presence(1).await;
    let other = Client::join(server.addr(), "elsewhere").await;
    assert_eq!(other.welcome().online, 1);
}

#[tokio::test]
async fn refused_hellos_close_with_a_give_up_code() {
    let server = TestServer::start().await;
    let mut unknown = Client::open(server.addr(), None).await;
    let mut h = hello("img", None);
    h.tenant_id = image_chat_protocol::TenantId::new("nobody");
    unknown.send(&ClientMessage::Hello(h)).await;
    match unknown.recv().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::UnknownTenant),
        other => panic!("expected error, got {other:?}"),
    }
    assert_eq!(unknown.closed().await, 4404);

    let mut foreign = Client::open(server.addr(), Some("https://evil.example")).await;
    foreign
        .send(&ClientMessage::Hello(hello("img", None)))
        .await;
    match foreign.recv().await {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::Forbidden);
            // The site owner sees that the page's origin is the reason, and which one.
            assert_eq!(
                e.message,
                "this page's origin https://evil.example is not in the origins of tenant demo"
            );
        }
        other => panic!("expected error, got {other:?}"),
    }
    assert_eq!(foreign.closed().await, 4403);

    let mut early = Client::open(server.addr(), None).await;
    early
        .send(&ClientMessage::CreateChat(create_op(0.1, 0.1, "too soon")))
        .await;
    match early.recv().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::UnexpectedMessage),
        other => panic!("expected error, got {other:?}"),
    }
    assert_eq!(early.closed().await, 4400);

    let local = Client::open(server.addr(), Some("http://localhost:8080")).await;
    drop(local);
}

#[tokio::test]
async fn silent_connections_time_out() {
    let limits = SessionLimits {
        hello_timeout: std::time::Duration::from_millis(200),
        idle_timeout: std::time::Duration::from_millis(300),
        ..SessionLimits::default()
    };
    let server = TestServer::start_with(1000, limits).await;
    let mut mute = Client::open(server.addr(), None).await;
    assert_eq!(mute.closed().await, 4001);
    let mut idle = Client::join(server.addr(), "img").await;
    assert_eq!(idle.closed().await, 4001);
}

#[tokio::test]
async fn shutdown_tells_clients_to_reconnect() {
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "img").await;
    server.server.shutdown().await;
    let code = a.closed().await;
    assert_eq!(code, 1012);
    assert!(image_chat_protocol::CloseCode::from_code(code).should_reconnect());
}

#[tokio::test]
async fn http_snapshot_and_health() {
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "https://site.example/page?x=1#img.png").await;
    commit(
        &mut a,
        ClientMessage::CreateChat(create_op(0.5, 0.25, "via http")),
    )
    .await;
    let (status, body) = http_get(server.addr(), "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = http_get(
        server.addr(),
        "/api/v1/tenants/demo/snapshot?image=https%3A%2F%2Fsite.example%2Fpage%3Fx%3D1%23img.png",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["position"]["seq"], 1);
    assert_eq!(json["chats"][0]["comments"][0]["text"], "via http");
    assert_eq!(json["chats"][0]["anchor"], serde_json::json!([0.5, 0.25]));
    let (status, _) = http_get(server.addr(), "/api/v1/tenants/nobody/snapshot?image=x").await;
    assert_eq!(status, 404);
    let (status, _) = http_get(server.addr(), "/api/v1/tenants/demo/snapshot?image=").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn pipelined_ops_on_a_busy_image_get_each_ack_before_its_echo() {
    // Two people posting back to back on one image: the server writes published frames
    // straight into plain-TCP sockets (`fanout`), and must still answer each op on its own
    // connection before the echo of its event reaches that connection (PROTOCOL §5).
    let server = TestServer::start().await;
    let mut clients = [
        Client::join(server.addr(), "busy").await,
        Client::join(server.addr(), "busy").await,
    ];
    const OPS: usize = 12;
    let mut sent = [Vec::new(), Vec::new()];
    for i in 0..OPS {
        for (client, sent) in clients.iter_mut().zip(&mut sent) {
            let op = create_op(0.05 + 0.07 * i as f64, 0.5, "in a hurry");
            sent.push(op.broadcast_id.clone());
            client.send(&ClientMessage::CreateChat(op)).await;
        }
    }
    for (client, sent) in clients.iter_mut().zip(&sent) {
        let mut log = PosterLog::new(sent);
        while log.acked.len() < OPS || log.events < 2 * OPS {
            log.see(client.recv_skip_presence().await);
        }
        assert_eq!(
            &log.acked, sent,
            "every op answered once, in the order sent"
        );
        client.assert_quiet().await;
    }
}

#[tokio::test]
async fn an_image_with_more_viewers_than_one_pump_takes_reaches_each_once_in_order() {
    // Over 512 viewers of one image (`fanout::VIEWERS_PER_PUMP`), a second pump with its own
    // subscription serves the newer ones on a machine with two CPUs or more.
    let server = TestServer::start_secured(Security {
        limits: image_chat_server::limits::Limits::unlimited(),
        tls: None,
    })
    .await;
    let mut viewers = Vec::new();
    for _ in 0..600 {
        viewers.push(Client::join(server.addr(), "crowded").await);
    }
    let mut poster = Client::join(server.addr(), "crowded").await;
    for i in 0..3 {
        commit(
            &mut poster,
            ClientMessage::CreateChat(create_op(0.1 + 0.2 * i as f64, 0.5, "hi")),
        )
        .await;
    }
    for viewer in &mut viewers {
        let seqs: Vec<u64> = viewer.recv_events(3).await.iter().map(Event::seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }
    // Nothing twice, on either pump's side of the crowd.
    viewers[0].assert_quiet().await;
    viewers[599].assert_quiet().await;
}

#[tokio::test]
async fn websocket_pings_and_a_clients_close_are_answered_on_the_raw_socket() {
    // The server writes the sockets itself (`raw_socket`); tungstenite's own answers (a pong,
    // the reply to a close) go through the same writer, in order with everything else.
    let server = TestServer::start().await;
    let mut a = Client::join(server.addr(), "img").await;
    ping_is_answered(&mut a.ws).await;
    // The session goes on after it.
    commit(
        &mut a,
        ClientMessage::CreateChat(create_op(0.5, 0.5, "still here")),
    )
    .await;
    close_is_answered(&mut a.ws).await;
}
