//! Scenario tests: one per rule of the sync engine, each driven by a virtual clock and the
//! scripted fake server in `support`.

mod support;

use image_chat_protocol::limits::MAX_TEXT_CHARS;
use image_chat_protocol::{
    Batch, ClientMessage, CloseCode, ErrorCode, Lock, Op, Position, Presence, ServerMessage, User,
    ValidationError,
};
use image_chat_sync::{
    Action, Announcement, Command, ConnectionStatus, FailReason, LocalError, OpKind, OpState,
    StopReason, TransportEvent, ViewUpdate,
};
use support::{Client, FakeServer, alice, bob, create};

fn moderator_user() -> User {
    User {
        id: "sso:mod".into(),
        name: "Mia".into(),
        avatar_url: None,
        is_moderator: true,
        signed_in: true,
    }
}

fn live(seed: u64) -> (Client, FakeServer) {
    let server = FakeServer::new();
    let mut client = Client::new(seed);
    client.connect(&server);
    (client, server)
}

/// Like [`live`], on an image whose log already exists (it has one discussion), so a resume
/// position names that log's epoch.
fn live_with_log(seed: u64) -> (Client, FakeServer) {
    let mut server = FakeServer::new();
    server.remote_create(&bob(), "already there");
    let mut client = Client::new(seed);
    client.connect(&server);
    (client, server)
}

// ------------------------------------------------------------------------------------------
// Connecting
// ------------------------------------------------------------------------------------------

#[test]
fn connects_sends_hello_first_and_goes_live_on_welcome() {
    let server = FakeServer::new();
    let mut client = Client::new(1);
    assert_eq!(client.connects.len(), 1, "asks for a socket at once");
    assert_eq!(
        client.engine.status(),
        ConnectionStatus::Connecting { attempt: 0 }
    );
    let hello = client.open();
    assert_eq!(hello.resume, None, "nothing to resume on first connection");
    assert_eq!(
        client.engine.status(),
        ConnectionStatus::Connecting { attempt: 0 },
        "an open socket is not live before welcome"
    );
    client.recv(ServerMessage::Welcome(server.welcome(&hello, &alice())));
    assert_eq!(client.engine.status(), ConnectionStatus::Live);
    assert_eq!(client.engine.you(), Some(&alice()));
    assert_eq!(client.engine.anonymous_token(), Some("tok-alice"));
    assert!(
        client
            .updates
            .contains(&ViewUpdate::Connection(ConnectionStatus::Live))
    );
}

#[test]
fn presence_updates_online_count() {
    let (mut client, _server) = live(2);
    assert_eq!(client.engine.view().online, 1);
    client.recv(ServerMessage::Presence(Presence { online: 4 }));
    assert_eq!(client.engine.view().online, 4);
    assert_eq!(client.updates.last(), Some(&ViewUpdate::Online(4)));
}

#[test]
fn a_locked_image_is_read_only_for_everyone_but_moderators() {
    let (mut client, _server) = live(4);
    assert!(client.engine.may_write());
    client.recv(ServerMessage::Lock(Lock { locked: true }));
    assert!(client.engine.view().locked);
    assert_eq!(client.updates.last(), Some(&ViewUpdate::Locked(true)));
    assert!(!client.engine.may_write());
    // The server would refuse it (`image-locked`): refused at once, nothing shown or sent.
    let sent = client.sent.len();
    assert_eq!(client.local(create("hi")), Err(LocalError::NotAllowed));
    assert!(client.engine.view().chats.is_empty());
    // Only moderators lock and unlock.
    assert_eq!(client.engine.set_lock(false), Err(LocalError::NotAllowed));
    assert_eq!(client.sent.len(), sent, "nothing sent");
    client.recv(ServerMessage::Lock(Lock { locked: false }));
    assert!(client.engine.may_write());
    assert_eq!(client.updates.last(), Some(&ViewUpdate::Locked(false)));

    // A moderator on a locked image (from the welcome) keeps writing and may unlock.
    let server = FakeServer::new();
    let mut moderator = Client::new(5);
    let hello = moderator.open();
    let mut welcome = server.welcome(&hello, &moderator_user());
    welcome.locked = true;
    moderator.recv(ServerMessage::Welcome(welcome));
    assert!(moderator.engine.view().locked);
    assert!(moderator.engine.may_write());
    assert!(moderator.local(create("closing remarks")).is_ok());
    moderator
        .engine
        .set_lock(false)
        .expect("a moderator unlocks");
    moderator.drain();
    assert_eq!(
        moderator.sent.last(),
        Some(&ClientMessage::SetLock { locked: false })
    );
    // Nothing changes locally until the server's `lock` frame says so.
    assert!(moderator.engine.view().locked);
}

#[test]
fn events_from_an_abandoned_socket_are_ignored() {
    let (mut client, server) = live(3);
    let old = client.conn.unwrap();
    client.closed(1006);
    client.reconnect(&server);
    let status = client.engine.status();
    client
        .engine
        .handle_transport(client.now, old, TransportEvent::Closed { code: 4401 });
    assert_eq!(client.engine.status(), status);
    assert!(client.engine.poll_action().is_none());
}

// ------------------------------------------------------------------------------------------
// Optimistic ops, acks and echo suppression
// ------------------------------------------------------------------------------------------

#[test]
fn optimistic_create_shows_at_once_then_ack_and_echo_confirm_it_once() {
    let (mut client, mut server) = live(10);
    let op = client.local(create("first!")).unwrap();
    assert_eq!(op.kind, OpKind::CreateChat);

    // Shown at once, pending, sent with a fresh v4 broadcastId.
    let view = client.engine.view();
    assert_eq!(view.chats.len(), 1);
    let chat = &view.chats[0];
    assert_eq!(chat.id, op.chat_id);
    assert!(chat.state.is_pending());
    assert_eq!(chat.comments[0].text, "first!");
    assert!(chat.mine && chat.comments[0].mine && chat.comments[0].can_edit);
    let sent = client.sent_ops();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].broadcast_id(), &op.op);
    let bytes = image_chat_protocol::ids::decode_id(op.op.as_str()).unwrap();
    assert_eq!(bytes[6] >> 4, 4, "a version 4 UUID");
    // The opening comment has the discussion's id.
    assert_eq!(chat.comments[0].id, chat.id.opening_comment());
    assert_eq!(op.comment_id, Some(chat.id.opening_comment()));

    // The server commits: ack first, then the broadcast (our echo).
    let (ack, event) = server.submit(&sent[0], &alice()).unwrap();
    client.recv(ServerMessage::Ack(ack));
    let chat = &client.engine.view().chats[0];
    assert_eq!(chat.state, OpState::Confirmed, "ack confirms");
    assert_eq!(chat.comments.len(), 1);

    client.recv_event(event.unwrap());
    let view = client.engine.view();
    assert_eq!(view.chats.len(), 1, "echo is not applied twice");
    assert_eq!(view.chats[0].comments.len(), 1);
    assert_eq!(view.chats[0].state, OpState::Confirmed);
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert!(
        client.announcements().is_empty(),
        "own change not announced"
    );
}

#[test]
fn echo_without_ack_confirms_and_later_ack_is_harmless() {
    let (mut client, mut server) = live(11);
    let op = client.local(create("hello")).unwrap();
    let sent = client.sent_ops();
    let (ack, event) = server.submit(&sent[0], &alice()).unwrap();
    client.recv_event(event.unwrap());
    assert_eq!(client.engine.view().chats.len(), 1);
    assert_eq!(client.engine.view().chats[0].state, OpState::Confirmed);
    client.recv(ServerMessage::Ack(ack));
    assert_eq!(client.engine.view().chats.len(), 1);
    assert_eq!(client.engine.view().chats[0].id, op.chat_id);
    assert!(client.announcements().is_empty());
}

#[test]
fn reply_edit_delete_are_optimistic_and_confirmed() {
    let (mut client, mut server) = live(12);
    let created = client.op(&mut server, create("a marker"));
    let chat_id = created.chat_id.clone();

    let reply = client
        .local(Command::Reply {
            chat_id: chat_id.clone(),
            text: "a reply".into(),
        })
        .unwrap();
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert_eq!(chat.comments.len(), 2);
    assert!(chat.comments[1].state.is_pending());
    let frames = client.sent[client.sent.len() - 1..].to_vec();
    client.serve(&mut server, frames);
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert_eq!(chat.comments.len(), 2);
    assert_eq!(chat.comments[1].state, OpState::Confirmed);
    assert_eq!(chat.comments[1].id, reply.comment_id.clone().unwrap());

    let first = created.comment_id.clone().unwrap();
    client
        .local(Command::Edit {
            chat_id: chat_id.clone(),
            comment_id: first.clone(),
            text: "edited".into(),
        })
        .unwrap();
    let comment = &client.engine.view().chat(&chat_id).unwrap().comments[0];
    assert_eq!(comment.text, "edited");
    assert!(comment.state.is_pending());
    let frames = client.sent[client.sent.len() - 1..].to_vec();
    client.serve(&mut server, frames);
    let comment = &client.engine.view().chat(&chat_id).unwrap().comments[0];
    assert_eq!(
        (comment.text.as_str(), &comment.state),
        ("edited", &OpState::Confirmed)
    );
    assert!(comment.edited_at.is_some());

    client
        .local(Command::Delete {
            chat_id: chat_id.clone(),
        })
        .unwrap();
    assert!(
        client.engine.view().chats.is_empty(),
        "delete hides at once"
    );
    assert!(client.updates.contains(&ViewUpdate::ChatRemoved {
        chat_id: chat_id.clone()
    }));
    let frames = client.sent[client.sent.len() - 1..].to_vec();
    client.serve(&mut server, frames);
    assert!(client.engine.view().chats.is_empty());
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert!(client.announcements().is_empty());
}

#[test]
fn other_tab_of_same_user_is_applied_but_not_announced_others_are_announced() {
    let (mut client, mut server) = live(13);
    // Alice's other tab: same user, its own broadcast ids.
    let event = server.remote_create(&alice(), "from my phone");
    client.recv_event(event);
    let view = client.engine.view();
    assert_eq!(view.chats.len(), 1, "other tab's change is applied");
    assert!(view.chats[0].mine);
    assert!(client.announcements().is_empty(), "the person's own change");

    let event = server.remote_create(&bob(), "hi from bob");
    let bob_chat = event.chat_id().clone();
    client.recv_event(event);
    assert_eq!(client.engine.view().chats.len(), 2);
    assert!(!client.engine.view().chats[1].mine);
    assert!(!client.engine.view().chats[1].can_delete);
    let event = server.remote_reply(&bob(), &bob_chat, "more");
    client.recv_event(event);
    let event = server.remote_delete(&bob(), &bob_chat);
    client.recv_event(event);
    let announcements = client.announcements();
    assert!(matches!(&announcements[0], Announcement::NewChat { by, .. } if by == &bob()));
    assert!(matches!(&announcements[1], Announcement::Reply { by, .. } if by == &bob()));
    assert_eq!(
        announcements[2],
        Announcement::Deleted {
            chat_id: bob_chat.clone()
        }
    );
    assert_eq!(client.engine.view().chats.len(), 1);
}

// ------------------------------------------------------------------------------------------
// Validation
// ------------------------------------------------------------------------------------------

#[test]
fn invalid_input_is_rejected_at_once_and_nothing_is_sent() {
    let (mut client, mut server) = live(20);
    let cases = [
        (create(""), ValidationError::EmptyText),
        (create("   "), ValidationError::EmptyText),
        (
            create(&"x".repeat(MAX_TEXT_CHARS + 1)),
            ValidationError::TextTooLong {
                max: MAX_TEXT_CHARS,
            },
        ),
        (
            Command::CreateChat {
                x: 1.5,
                y: 0.5,
                text: "hi".into(),
            },
            ValidationError::InvalidCoordinates,
        ),
        (
            Command::CreateChat {
                x: 0.5,
                y: f64::NAN,
                text: "hi".into(),
            },
            ValidationError::InvalidCoordinates,
        ),
    ];
    for (cmd, expected) in cases {
        assert_eq!(client.local(cmd), Err(LocalError::Invalid(expected)));
    }
    let chat = client.op(&mut server, create("ok")).chat_id;
    let sent_before = client.sent.len();
    assert_eq!(
        client.local(Command::Reply {
            chat_id: chat.clone(),
            text: "\u{7}".into()
        }),
        Err(LocalError::Invalid(ValidationError::ControlCharacters))
    );
    assert_eq!(client.sent.len(), sent_before);
    assert_eq!(client.engine.view().chats.len(), 1);
}

#[test]
fn a_chosen_name_is_sent_once_shown_at_once_and_kept_for_reconnects() {
    let (mut client, server) = live(41);
    client.engine.set_name("  Ada  ").expect("a valid name");
    assert_eq!(
        client.drain(),
        vec![ClientMessage::SetName { name: "Ada".into() }],
        "sent trimmed, before any op that follows it"
    );
    client.local(create("hello")).expect("accepted");
    let chat = &client.engine.view().chats[0];
    assert_eq!(
        chat.comments[0].author.name, "Ada",
        "the optimistic comment"
    );
    // The same name again sends nothing; an invisible one is refused and sends nothing.
    client.engine.set_name("Ada").expect("same name");
    assert_eq!(
        client.engine.set_name("\u{200B}\u{202E}"),
        Err(LocalError::Invalid(ValidationError::InvisibleName))
    );
    assert!(client.drain().is_empty());
    client.closed(1006);
    let hello = client.reconnect(&server);
    assert!(
        matches!(&hello.auth, Some(image_chat_protocol::Auth::Anonymous { name, .. }) if name == "Ada"),
        "{hello:?}"
    );
}

#[test]
fn a_signed_user_cannot_choose_a_name() {
    let mut config = support::config();
    config.auth = Some(image_chat_protocol::Auth::Sso {
        user_data: "e30=".into(),
        timestamp: 1,
        hash: "0".repeat(64),
    });
    let mut client = support::Client::with_config(3, config);
    assert_eq!(
        client.engine.set_name("Mallory"),
        Err(LocalError::NotAllowed)
    );
    assert!(client.drain().is_empty());
}

#[test]
fn editing_or_deleting_someone_elses_is_refused_locally() {
    let (mut client, mut server) = live(21);
    let event = server.remote_create(&bob(), "bob's");
    let chat_id = event.chat_id().clone();
    client.recv_event(event);
    let comment_id = client.engine.view().chats[0].comments[0].id.clone();
    assert!(!client.engine.view().chats[0].comments[0].can_edit);
    assert_eq!(
        client.local(Command::Edit {
            chat_id: chat_id.clone(),
            comment_id,
            text: "mine now".into()
        }),
        Err(LocalError::NotAllowed)
    );
    assert_eq!(
        client.local(Command::Delete {
            chat_id: chat_id.clone()
        }),
        Err(LocalError::NotAllowed)
    );
    let unknown = image_chat_protocol::ChatId::new("AAAAAAAAQACAAJmZmZmZmQ");
    assert_eq!(
        client.local(Command::Reply {
            chat_id: unknown.clone(),
            text: "?".into()
        }),
        Err(LocalError::UnknownChat(unknown))
    );
    assert!(client.sent_ops().is_empty());
}

// ------------------------------------------------------------------------------------------
// Server errors roll back visibly
// ------------------------------------------------------------------------------------------

fn failed_state(reason: ErrorCode) -> impl Fn(&OpState) -> bool {
    move |state| matches!(state, OpState::Failed { reason: FailReason::Server(code), .. } if *code == reason)
}

#[test]
fn failed_create_stays_visible_as_failed_with_retry_and_dismiss() {
    let (mut client, mut server) = live(30);
    server.refuse_next.push(ErrorCode::RateLimited);
    let op = client.op(&mut server, create("too fast"));
    let chat = client.engine.view().chat(&op.chat_id).unwrap().clone();
    assert!(failed_state(ErrorCode::RateLimited)(&chat.state));
    assert!(matches!(
        chat.state,
        OpState::Failed {
            retryable: true,
            ..
        }
    ));
    assert!(client.updates.contains(&ViewUpdate::OpFailed {
        op: op.op.clone(),
        kind: OpKind::CreateChat,
        reason: FailReason::Server(ErrorCode::RateLimited),
    }));
    assert_eq!(client.engine.failed_text(&op.op), Some("too fast"));

    // Retry re-sends the very same op (same broadcastId and ids), and it commits.
    let before = client.sent.len();
    client.local(Command::Retry { op: op.op.clone() }).unwrap();
    let frames = client.sent[before..].to_vec();
    match &frames[..] {
        [ClientMessage::CreateChat(c)] => {
            assert_eq!(c.broadcast_id, op.op);
            assert_eq!(c.chat_id, op.chat_id);
        }
        other => panic!("expected the create again, got {other:?}"),
    }
    client.serve(&mut server, frames);
    let view = client.engine.view();
    assert_eq!(view.chats.len(), 1);
    assert_eq!(view.chats[0].state, OpState::Confirmed);

    // Dismissing a failed create removes the marker.
    server.refuse_next.push(ErrorCode::Forbidden);
    let op = client.op(&mut server, create("refused"));
    assert!(matches!(
        client.engine.view().chat(&op.chat_id).unwrap().state,
        OpState::Failed {
            retryable: false,
            ..
        }
    ));
    client
        .local(Command::Dismiss { op: op.op.clone() })
        .unwrap();
    assert!(client.engine.view().chat(&op.chat_id).is_none());
    assert!(client.updates.contains(&ViewUpdate::ChatRemoved {
        chat_id: op.chat_id.clone()
    }));
    assert_eq!(
        client.local(Command::Dismiss { op: op.op.clone() }),
        Err(LocalError::UnknownOp(op.op))
    );
}

#[test]
fn failed_reply_is_marked_failed() {
    let (mut client, mut server) = live(31);
    let chat_id = client.op(&mut server, create("marker")).chat_id;
    server.refuse_next.push(ErrorCode::LimitExceeded);
    let op = client.op(
        &mut server,
        Command::Reply {
            chat_id: chat_id.clone(),
            text: "one too many".into(),
        },
    );
    let chat = client.engine.view().chat(&chat_id).unwrap();
    assert_eq!(chat.state, OpState::Confirmed);
    assert_eq!(chat.comments.len(), 2);
    assert_eq!(Some(&chat.comments[1].id), op.comment_id.as_ref());
    assert!(failed_state(ErrorCode::LimitExceeded)(
        &chat.comments[1].state
    ));
    client.local(Command::Dismiss { op: op.op }).unwrap();
    assert_eq!(
        client.engine.view().chat(&chat_id).unwrap().comments.len(),
        1
    );
}

#[test]
fn failed_edit_restores_the_old_text_and_marks_failed() {
    let (mut client, mut server) = live(32);
    let created = client.op(&mut server, create("original"));
    server.refuse_next.push(ErrorCode::Forbidden);
    let op = client.op(
        &mut server,
        Command::Edit {
            chat_id: created.chat_id.clone(),
            comment_id: created.comment_id.clone().unwrap(),
            text: "changed".into(),
        },
    );
    let comment = &client
        .engine
        .view()
        .chat(&created.chat_id)
        .unwrap()
        .comments[0];
    assert_eq!(comment.text, "original");
    assert_eq!(comment.edited_at, None);
    assert!(failed_state(ErrorCode::Forbidden)(&comment.state));
    assert_eq!(client.engine.failed_text(&op.op), Some("changed"));
    // The rollback reached the widget as an update of that discussion.
    let last_chat_update = client.updates.iter().rev().find_map(|u| match u {
        ViewUpdate::Chat { chat, .. } => Some(chat.clone()),
        _ => None,
    });
    assert_eq!(last_chat_update.unwrap().comments[0].text, "original");
}

#[test]
fn failed_delete_restores_the_discussion() {
    let (mut client, mut server) = live(33);
    let created = client.op(&mut server, create("keep me"));
    server.refuse_next.push(ErrorCode::Unavailable);
    let op = client.op(
        &mut server,
        Command::Delete {
            chat_id: created.chat_id.clone(),
        },
    );
    let chat = client.engine.view().chat(&created.chat_id).unwrap();
    assert_eq!(chat.comments[0].text, "keep me");
    assert!(failed_state(ErrorCode::Unavailable)(&chat.state));
    let removed_then_restored = client
        .updates
        .iter()
        .skip_while(|u| !matches!(u, ViewUpdate::ChatRemoved { .. }))
        .any(|u| matches!(u, ViewUpdate::Chat { chat, .. } if chat.id == created.chat_id));
    assert!(removed_then_restored);
    // Retrying works.
    let frames_before = client.sent.len();
    client.local(Command::Retry { op: op.op }).unwrap();
    let frames = client.sent[frames_before..].to_vec();
    client.serve(&mut server, frames);
    assert!(client.engine.view().chats.is_empty());
}

// ------------------------------------------------------------------------------------------
// Offline: fail at once, never queue
// ------------------------------------------------------------------------------------------

#[test]
fn op_while_browser_offline_fails_at_once_and_is_never_sent_later() {
    let (mut client, server) = live(40);
    client.network(false);
    assert_eq!(client.engine.status(), ConnectionStatus::Offline);
    assert!(matches!(client.closes.last(), Some((_, 1000))));
    assert_eq!(
        client.engine.poll_timeout(),
        None,
        "waits for the online signal"
    );

    let result = client.local(create("offline marker"));
    let Err(LocalError::NotConnected { op, reason }) = result else {
        panic!("expected NotConnected, got {result:?}");
    };
    assert_eq!(reason, FailReason::Offline);
    let chat = client.engine.view().chat(&op.chat_id).unwrap();
    assert!(matches!(
        chat.state,
        OpState::Failed {
            reason: FailReason::Offline,
            retryable: true,
            ..
        }
    ));
    assert!(client.sent_ops().is_empty());

    // Back online: reconnects at once, and the op is still not sent by itself.
    client.network(true);
    assert!(client.conn.is_some(), "online event connects immediately");
    client.reconnect(&server);
    client.advance(20_000);
    assert_eq!(client.engine.status(), ConnectionStatus::Live);
    assert!(client.sent_ops().is_empty(), "never queued");
    assert!(
        client
            .engine
            .view()
            .chat(&op.chat_id)
            .unwrap()
            .state
            .is_failed()
    );

    // Only an explicit retry sends it, with its original broadcastId.
    client.local(Command::Retry { op: op.op.clone() }).unwrap();
    assert_eq!(client.sent_ops().len(), 1);
    assert_eq!(client.sent_ops()[0].broadcast_id(), &op.op);
}

#[test]
fn op_while_reconnecting_fails_as_not_connected() {
    let (mut client, _server) = live(41);
    client.closed(1006);
    assert!(matches!(
        client.engine.status(),
        ConnectionStatus::Reconnecting { .. }
    ));
    let chat_id = client.engine.view().chats.first().map(|c| c.id.clone());
    assert!(chat_id.is_none());
    match client.local(create("now?")) {
        Err(LocalError::NotConnected { reason, .. }) => {
            assert_eq!(reason, FailReason::NotConnected);
            assert_eq!(reason.key(), "not-connected");
        }
        other => panic!("{other:?}"),
    }
    // Retrying while still not live fails the same way, nothing is sent.
    let op = client.engine.view().chats[0].state.clone();
    let OpState::Failed { op, .. } = op else {
        panic!()
    };
    assert!(matches!(
        client.local(Command::Retry { op }),
        Err(LocalError::NotConnected { .. })
    ));
    assert!(client.sent_ops().is_empty());
}

// ------------------------------------------------------------------------------------------
// In-flight ops settled by the resync
// ------------------------------------------------------------------------------------------

#[test]
fn in_flight_op_confirmed_by_missed_events() {
    let (mut client, mut server) = live_with_log(50);
    let op = client.local(create("in flight")).unwrap();
    // The server commits it, but the connection drops before ack and broadcast arrive.
    let sent = client.sent_ops();
    server.submit(&sent[0], &alice()).unwrap();
    server.remote_create(&bob(), "meanwhile");
    client.closed(1006);
    assert!(
        client
            .engine
            .view()
            .chat(&op.chat_id)
            .unwrap()
            .state
            .is_pending()
    );

    let hello = client.reconnect(&server);
    assert_eq!(
        hello.resume,
        Some(Position {
            epoch: server.epoch,
            seq: 1
        })
    );
    let view = client.engine.view();
    assert_eq!(view.chats.len(), 3);
    assert_eq!(view.chat(&op.chat_id).unwrap().state, OpState::Confirmed);
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert_eq!(client.sent_ops().len(), 1, "not re-sent");
    // Bob's change is announced, ours is not.
    assert_eq!(client.announcements().len(), 1);
    assert!(matches!(&client.announcements()[0], Announcement::NewChat { by, .. } if by == &bob()));
}

#[test]
fn in_flight_op_confirmed_by_snapshot() {
    let (mut client, mut server) = live(51);
    let created = client.op(&mut server, create("base"));
    client
        .local(Command::Reply {
            chat_id: created.chat_id.clone(),
            text: "in flight".into(),
        })
        .unwrap();
    let edit = client
        .local(Command::Edit {
            chat_id: created.chat_id.clone(),
            comment_id: created.comment_id.clone().unwrap(),
            text: "base v2".into(),
        })
        .unwrap();
    for op in client.sent_ops().iter().skip(1) {
        server.submit(op, &alice()).unwrap();
    }
    client.closed(1006);
    server.new_epoch(); // the log is gone: the resume gets a snapshot
    client.reconnect(&server);
    let chat = client.engine.view().chat(&created.chat_id).unwrap();
    assert_eq!(chat.comments.len(), 2);
    assert!(chat.comments.iter().all(|c| c.state == OpState::Confirmed));
    assert_eq!(chat.comments[0].text, "base v2");
    assert!(client.engine.failed_text(&edit.op).is_none());
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert_eq!(client.engine.position(), Some(server.position()));
}

#[test]
fn in_flight_op_not_committed_is_failed_after_resync_and_retry_does_not_duplicate() {
    let (mut client, mut server) = live(52);
    let op = client.local(create("lost")).unwrap();
    client.closed(1006); // the frame never reached the server
    client.reconnect(&server);
    let chat = client.engine.view().chat(&op.chat_id).unwrap();
    assert!(matches!(
        chat.state,
        OpState::Failed {
            reason: FailReason::ConnectionLost,
            retryable: true,
            ..
        }
    ));
    assert!(client.updates.contains(&ViewUpdate::OpFailed {
        op: op.op.clone(),
        kind: OpKind::CreateChat,
        reason: FailReason::ConnectionLost
    }));
    // Retry twice (e.g. a double click after the first retry's frame was committed): one chat.
    let before = client.sent.len();
    client.local(Command::Retry { op: op.op.clone() }).unwrap();
    let frames = client.sent[before..].to_vec();
    client.serve(&mut server, frames.clone());
    client.serve(&mut server, frames); // a duplicate delivery is acked, not re-committed
    assert_eq!(server.state.chats().len(), 1);
    assert_eq!(client.engine.view().chats.len(), 1);
    assert_eq!(client.engine.view().chats[0].state, OpState::Confirmed);
}

#[test]
fn in_flight_op_not_committed_is_failed_after_snapshot_resync() {
    // Not committed and the server moved to a new epoch: the snapshot decides.
    let (mut client, mut server) = live(53);
    let op = client.local(create("lost too")).unwrap();
    client.closed(1006);
    server.new_epoch();
    client.reconnect(&server);
    assert!(matches!(
        client.engine.view().chat(&op.chat_id).unwrap().state,
        OpState::Failed {
            reason: FailReason::ConnectionLost,
            ..
        }
    ));
}

// ------------------------------------------------------------------------------------------
// Reconnect and backoff
// ------------------------------------------------------------------------------------------

#[test]
fn backoff_delays_stay_within_full_jitter_bounds_and_reset_only_after_welcome() {
    let server = FakeServer::new();
    let mut client = Client::new(60);
    let base = 500u64;
    let cap = 20_000u64;
    // Twelve failed attempts; every other one even opens the socket (and sends hello) before
    // failing: an open socket must not reset the counter.
    for n in 0..12u32 {
        if n % 2 == 1 {
            client.open();
        }
        client.closed(1006);
        let ConnectionStatus::Reconnecting {
            next_attempt_at,
            attempt,
        } = client.engine.status()
        else {
            panic!("expected reconnecting, got {:?}", client.engine.status());
        };
        assert_eq!(attempt, n + 1);
        let delay = next_attempt_at - client.now;
        let ceiling = cap.min(base << n);
        assert!(delay <= ceiling, "attempt {n}: delay {delay} > {ceiling}");
        assert_eq!(client.engine.poll_timeout(), Some(next_attempt_at));
        // Nothing happens before the deadline.
        let connects = client.connects.len();
        client.advance(delay.saturating_sub(1));
        if delay > 0 {
            assert_eq!(client.connects.len(), connects);
        }
        client.advance(1);
        assert_eq!(
            client.connects.len(),
            connects + 1,
            "attempt at the deadline"
        );
        assert_eq!(
            client.engine.status(),
            ConnectionStatus::Connecting { attempt: n + 1 }
        );
    }
    // Success resets the counter: the next drop waits at most the base delay.
    let hello = client.open();
    client.recv(ServerMessage::Welcome(server.welcome(&hello, &alice())));
    client.closed(1006);
    let ConnectionStatus::Reconnecting {
        next_attempt_at,
        attempt,
    } = client.engine.status()
    else {
        panic!()
    };
    assert_eq!(attempt, 1);
    assert!(next_attempt_at - client.now <= base);
}

#[test]
fn backoff_sampled_over_many_seeds_is_within_bounds_and_jittered() {
    let mut firsts = std::collections::HashSet::new();
    for seed in 0..200 {
        let mut client = Client::new(seed);
        for n in 0..8u32 {
            client.closed(1006);
            let ConnectionStatus::Reconnecting {
                next_attempt_at, ..
            } = client.engine.status()
            else {
                panic!()
            };
            let delay = next_attempt_at - client.now;
            assert!(delay <= 20_000u64.min(500 << n));
            if n == 0 {
                firsts.insert(delay);
            }
            client.advance(delay);
        }
    }
    assert!(firsts.len() > 100, "delays are jittered, not fixed");
}

#[test]
fn online_event_reconnects_immediately_and_offline_waits() {
    let (mut client, server) = live(61);
    for _ in 0..5 {
        client.closed(1006);
        client.advance(client.engine.poll_timeout().unwrap() - client.now);
    }
    client.closed(1006);
    assert!(matches!(
        client.engine.status(),
        ConnectionStatus::Reconnecting { .. }
    ));
    client.network(false);
    assert_eq!(client.engine.status(), ConnectionStatus::Offline);
    let connects = client.connects.len();
    client.advance(10 * 60_000);
    assert_eq!(client.connects.len(), connects, "no attempts while offline");
    client.network(true);
    assert_eq!(client.connects.len(), connects + 1, "immediate attempt");
    assert_eq!(client.connect_times.last(), Some(&client.now));

    // Also while waiting out a backoff delay.
    client.closed(1006);
    assert!(client.conn.is_none());
    client.network(true);
    assert!(client.conn.is_some());
    client.reconnect(&server);
}

/// Fails attempts until the backoff ceiling reached the cap, then drops once more: the
/// client is waiting out a long delay (a 20 s countdown on screen).
fn waiting_after_many_failures(client: &mut Client) -> u64 {
    for _ in 0..8 {
        client.closed(1006);
        client.advance(
            client
                .engine
                .poll_timeout()
                .expect("a reconnect is scheduled")
                - client.now,
        );
    }
    client.closed(1006);
    let ConnectionStatus::Reconnecting {
        next_attempt_at,
        attempt,
    } = client.engine.status()
    else {
        panic!("expected reconnecting, got {:?}", client.engine.status());
    };
    assert_eq!(attempt, 9);
    next_attempt_at
}

#[test]
fn reconnect_now_attempts_at_once_and_resets_the_backoff() {
    let (mut client, server) = live(64);
    let until = waiting_after_many_failures(&mut client);
    // The ceiling is at the cap: the wait may be seconds long.
    client.advance((until - client.now) / 2);
    let connects = client.connects.len();
    client.reconnect_now();
    assert_eq!(client.connects.len(), connects + 1, "an attempt at once");
    assert_eq!(client.connect_times.last(), Some(&client.now));
    assert_eq!(
        client.engine.status(),
        ConnectionStatus::Connecting { attempt: 0 },
        "past failures forgotten"
    );
    // It fails too: the next delay is back to the first one's ceiling, not 20 s.
    client.closed(1006);
    let ConnectionStatus::Reconnecting {
        next_attempt_at,
        attempt,
    } = client.engine.status()
    else {
        panic!()
    };
    assert_eq!(attempt, 1);
    assert!(next_attempt_at - client.now <= 500);
    // Pressing it while an attempt is already under way (or live) changes nothing.
    client.advance(next_attempt_at - client.now);
    let connects = client.connects.len();
    client.reconnect_now();
    assert_eq!(
        client.connects.len(),
        connects,
        "no second socket while connecting"
    );
    client.reconnect(&server);
    client.reconnect_now();
    assert_eq!(client.engine.status(), ConnectionStatus::Live);
    assert_eq!(client.connects.len(), connects);
}

#[test]
fn page_becoming_visible_attempts_at_once_and_keeps_the_backoff() {
    let (mut client, server) = live(65);
    let until = waiting_after_many_failures(&mut client);
    assert!(until > client.now);
    let connects = client.connects.len();
    client.visible();
    assert_eq!(client.connects.len(), connects + 1, "an attempt at once");
    assert_eq!(client.connect_times.last(), Some(&client.now));
    // Not a reset: a server that is down is not hammered by tab switches.
    assert_eq!(
        client.engine.status(),
        ConnectionStatus::Connecting { attempt: 9 }
    );
    client.visible();
    assert_eq!(client.connects.len(), connects + 1, "nothing to hurry");
    client.reconnect(&server);
    assert_eq!(client.engine.status(), ConnectionStatus::Live);
    client.visible();
    assert_eq!(client.connects.len(), connects + 1);
    // Offline: visibility does not override the network.
    client.network(false);
    client.visible();
    assert_eq!(client.engine.status(), ConnectionStatus::Offline);
    assert_eq!(client.connects.len(), connects + 1);
}

#[test]
fn terminal_close_codes_stop_retrying() {
    for code in [4400u16, 4401, 4403, 4404] {
        let mut client = Client::new(62);
        client.open();
        client.closed(code);
        let status = client.engine.status();
        assert_eq!(
            status,
            ConnectionStatus::Stopped(StopReason::Refused(CloseCode::from_code(code)))
        );
        assert_eq!(status.stopped().unwrap().is_auth_failure(), code == 4401);
        assert_eq!(client.engine.poll_timeout(), None);
        client.advance(3_600_000);
        client.network(true);
        assert_eq!(client.connects.len(), 1, "{code}: gave up");
    }
}

/// After the server refused the page for good, an op fails at once as `Refused`: no Retry
/// where none can succeed (origin, tenant), Retry where new auth may fix it.
#[test]
fn ops_after_a_refusal_for_good_offer_retry_only_if_new_auth_can_help() {
    for (code, retry) in [(4403u16, false), (4404, false), (4401, true)] {
        let mut client = Client::new(66);
        client.open();
        client.closed(code);
        let err = client.local(create("after the refusal")).unwrap_err();
        let LocalError::NotConnected { op, reason } = err else {
            panic!("{code}: {err:?}")
        };
        assert_eq!(reason, FailReason::Refused(CloseCode::from_code(code)));
        assert_eq!(reason.retryable(), retry, "{code}");
        let chat = client.engine.view().chat(&op.chat_id).unwrap();
        assert!(
            matches!(chat.state, OpState::Failed { retryable, .. } if retryable == retry),
            "{code}: {:?}",
            chat.state
        );
        assert!(client.sent_ops().is_empty(), "nothing sent");
    }
}

#[test]
fn auth_failure_resumes_with_new_auth_and_auth_is_rebuilt_every_attempt() {
    let server = FakeServer::new();
    let mut client = Client::new(63);
    client.open();
    client.closed(4401);
    assert!(client.engine.status().stopped().unwrap().is_auth_failure());
    let sso = image_chat_protocol::Auth::Sso {
        user_data: "e30=".into(),
        timestamp: 1,
        hash: "00".into(),
    };
    client.engine.set_auth(client.now, Some(sso.clone()));
    client.drain();
    assert_eq!(client.connects.len(), 2, "new auth starts over");
    let hello = client.open();
    assert_eq!(hello.auth, Some(sso));
    client.recv(ServerMessage::Welcome(server.welcome(&hello, &alice())));

    // Updated auth (e.g. a refreshed signature) is used by the next attempt, not the old one.
    let refreshed = image_chat_protocol::Auth::Sso {
        user_data: "e30=".into(),
        timestamp: 2,
        hash: "11".into(),
    };
    client.engine.set_auth(client.now, Some(refreshed.clone()));
    client.drain();
    assert_eq!(
        client.engine.status(),
        ConnectionStatus::Live,
        "no forced reconnect"
    );
    client.closed(1006);
    let hello = client.reconnect(&server);
    assert_eq!(hello.auth, Some(refreshed));
}

#[test]
fn anonymous_token_from_welcome_is_sent_back() {
    let (mut client, server) = live(64);
    client.closed(1001);
    let hello = client.reconnect(&server);
    assert_eq!(
        hello.auth,
        Some(image_chat_protocol::Auth::Anonymous {
            name: "Alice".into(),
            token: Some("tok-alice".into())
        })
    );
}

#[test]
fn handshake_timeout_retries() {
    let mut client = Client::new(65);
    client.open(); // hello sent, welcome never comes
    client.advance(15_000);
    assert!(client.closes.iter().any(|(_, code)| *code == 4001));
    assert!(matches!(
        client.engine.status(),
        ConnectionStatus::Reconnecting { attempt: 1, .. }
    ));
}

#[test]
fn destroy_closes_and_ignores_everything_after() {
    let (mut client, _server) = live(66);
    let conn = client.conn.unwrap();
    client.engine.destroy(client.now);
    client.drain();
    assert_eq!(client.closes.last(), Some(&(conn, 1000)));
    assert_eq!(
        client.engine.status(),
        ConnectionStatus::Stopped(StopReason::Destroyed)
    );
    assert_eq!(client.local(create("late")), Err(LocalError::Destroyed));
    client.network(true);
    assert_eq!(client.engine.poll_timeout(), None);
    assert_eq!(client.connects.len(), 1);
}

// ------------------------------------------------------------------------------------------
// Resync
// ------------------------------------------------------------------------------------------

#[test]
fn resync_applies_exactly_the_missed_events() {
    let (mut client, mut server) = live(70);
    let first = server.remote_create(&bob(), "one");
    let chat = first.chat_id().clone();
    client.recv_event(first);
    client.closed(1006);
    let comment = server.state.chats()[0].comments[0].id.clone();
    server.remote_reply(&bob(), &chat, "two");
    server.remote_edit(&bob(), &chat, &comment, "one (edited)");
    let hello = client.reconnect(&server);
    assert_eq!(
        hello.resume,
        Some(Position {
            epoch: server.epoch,
            seq: 1
        })
    );
    assert_eq!(client.engine.confirmed_state(), &server.state);
    let view_chat = client.engine.view().chat(&chat).unwrap();
    assert_eq!(view_chat.comments.len(), 2);
    assert_eq!(view_chat.comments[0].text, "one (edited)");
    // Two missed changes: announced individually (after the first live announcement).
    assert_eq!(client.announcements().len(), 3);
    assert!(matches!(
        client.announcements()[2],
        Announcement::Edited { .. }
    ));
}

#[test]
fn many_missed_events_are_announced_as_one() {
    let (mut client, mut server) = live_with_log(71);
    client.closed(1006);
    for i in 0..5 {
        server.remote_create(&bob(), &format!("n{i}"));
    }
    client.reconnect(&server);
    assert_eq!(client.engine.view().chats.len(), 6);
    assert_eq!(
        client.announcements(),
        vec![Announcement::Caught { changes: 5 }]
    );
}

#[test]
fn snapshot_replaces_the_state() {
    let (mut client, mut server) = live(72);
    let gone = server.remote_create(&bob(), "will vanish");
    let gone_id = gone.chat_id().clone();
    client.recv_event(gone);
    client.closed(1006);
    // The server's log was recreated; the discussion vanished and another appeared.
    server.remote_delete(&bob(), &gone_id);
    server.new_epoch();
    server.remote_create(&bob(), "new world");
    let hello = client.reconnect(&server);
    assert!(hello.resume.is_some());
    let view = client.engine.view();
    assert_eq!(view.chats.len(), 1);
    assert_eq!(view.chats[0].comments[0].text, "new world");
    assert!(
        client
            .updates
            .contains(&ViewUpdate::ChatRemoved { chat_id: gone_id })
    );
    assert_eq!(client.engine.position(), Some(server.position()));
    assert!(
        client
            .announcements()
            .contains(&Announcement::Caught { changes: 0 })
    );
}

#[test]
fn live_gap_triggers_resync_from_last_position() {
    let (mut client, mut server) = live(73);
    let e1 = server.remote_create(&bob(), "1");
    let _e2 = server.remote_create(&bob(), "2"); // lost on the way
    let e3 = server.remote_create(&bob(), "3");
    client.recv_event(e1);
    let conn = client.conn.unwrap();
    client.recv_event(e3);
    assert!(
        client.closes.contains(&(conn, 1000)),
        "gap closes the socket"
    );
    assert_eq!(
        client.engine.view().chats.len(),
        1,
        "the out-of-order event is not applied"
    );
    let hello = client.reconnect(&server);
    assert_eq!(
        hello.resume,
        Some(Position {
            epoch: server.epoch,
            seq: 1
        })
    );
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert_eq!(client.engine.view().chats.len(), 3);
}

#[test]
fn event_that_does_not_apply_forces_a_snapshot_resync() {
    let (mut client, mut server) = live(74);
    let e1 = server.remote_create(&bob(), "1");
    let chat = e1.chat_id().clone();
    client.recv_event(e1.clone());
    // A corrupt stream: seq 2 deletes an unknown discussion.
    let mut bogus = server.remote_delete(&bob(), &chat);
    if let image_chat_protocol::Event::DeletedImageChat(d) = &mut bogus {
        d.chat_id = image_chat_protocol::ChatId::new("AAAAAAAAQACAAAAAAADerQ");
    }
    client.recv_event(bogus);
    assert!(client.conn.is_none());
    let hello = client.reconnect(&server);
    assert_eq!(
        hello.resume, None,
        "our state cannot be trusted: ask for a snapshot"
    );
    assert_eq!(client.engine.confirmed_state(), &server.state);
}

#[test]
fn duplicates_are_ignored_and_batches_apply_in_order() {
    let (mut client, mut server) = live(75);
    let e1 = server.remote_create(&bob(), "1");
    let chat = e1.chat_id().clone();
    let e2 = server.remote_reply(&bob(), &chat, "2");
    let e3 = server.remote_reply(&bob(), &chat, "3");
    client.recv(ServerMessage::Batch(Batch {
        events: vec![e1.clone(), e2.clone(), e3.clone()],
    }));
    assert_eq!(client.engine.confirmed_state(), &server.state);
    // Replays (seq <= last) change nothing and do not trigger a resync.
    client.recv_event(e2);
    client.recv(ServerMessage::Batch(Batch {
        events: vec![e1, e3],
    }));
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert_eq!(client.engine.status(), ConnectionStatus::Live);
    assert_eq!(client.engine.view().chat(&chat).unwrap().comments.len(), 3);
    assert_eq!(client.announcements().len(), 3);
}

#[test]
fn batch_with_a_gap_applies_the_prefix_then_resyncs() {
    let (mut client, mut server) = live(76);
    let e1 = server.remote_create(&bob(), "1");
    let _e2 = server.remote_create(&bob(), "2");
    let e3 = server.remote_create(&bob(), "3");
    client.recv(ServerMessage::Batch(Batch {
        events: vec![e1, e3],
    }));
    assert_eq!(client.engine.view().chats.len(), 1);
    assert!(client.conn.is_none());
    client.reconnect(&server);
    assert_eq!(client.engine.view().chats.len(), 3);
}

// ------------------------------------------------------------------------------------------
// Keepalive
// ------------------------------------------------------------------------------------------

#[test]
fn pings_every_25s_and_pongs_keep_the_connection() {
    let (mut client, mut server) = live(80);
    for round in 1..=6 {
        let before = client.sent.len();
        client.advance(25_000);
        let pings: Vec<_> = client.sent[before..]
            .iter()
            .filter(|m| matches!(m, ClientMessage::Ping { .. }))
            .cloned()
            .collect();
        assert_eq!(pings.len(), 1, "round {round}");
        client.serve(&mut server, pings);
    }
    assert_eq!(client.engine.status(), ConnectionStatus::Live);
}

#[test]
fn silence_for_60s_closes_and_reconnects() {
    let (mut client, server) = live(81);
    let conn = client.conn.unwrap();
    client.advance(59_999);
    assert_eq!(client.engine.status(), ConnectionStatus::Live);
    client.advance(1);
    assert!(client.closes.contains(&(conn, 4001)));
    assert!(matches!(
        client.engine.status(),
        ConnectionStatus::Reconnecting { .. }
    ));
    client.reconnect(&server);
}

#[test]
fn view_updates_are_incremental() {
    let (mut client, mut server) = live(82);
    client.op(&mut server, create("a"));
    client.op(&mut server, create("b"));
    client.updates.clear();
    let e = server.remote_create(&bob(), "c");
    client.recv_event(e);
    let chat_updates: Vec<_> = client
        .updates
        .iter()
        .filter(|u| matches!(u, ViewUpdate::Chat { .. } | ViewUpdate::ChatRemoved { .. }))
        .collect();
    assert_eq!(chat_updates.len(), 1, "only the new discussion is rendered");
    assert!(matches!(chat_updates[0], ViewUpdate::Chat { index: 2, .. }));
    // `sent_ops` contains exactly our two creates.
    assert!(
        client
            .sent_ops()
            .iter()
            .all(|op| matches!(op, Op::CreateChat(_)))
    );
}

#[test]
fn actions_name_the_socket() {
    let client = Client::new(83);
    assert!(matches!(
        client.connects[..],
        [image_chat_sync::ConnectionId(1)]
    ));
    let _ = Action::Connect {
        conn: client.connects[0],
    };
}

#[test]
fn the_first_change_on_a_fresh_image_brings_its_epoch_without_a_resync() {
    // The server has no log for the image yet: welcome says epoch 0, seq 0.
    let (mut client, mut server) = live(74);
    assert_eq!(client.engine.position().map(|p| p.epoch), Some(0));
    let first = server.remote_create(&bob(), "first!");
    assert_ne!(first.epoch(), 0);
    client.recv_event(first);
    assert!(
        client.closes.is_empty(),
        "no resync for the log's first event"
    );
    assert_eq!(client.engine.position(), Some(server.position()));
    assert_eq!(client.engine.view().chats.len(), 1);
}

#[test]
fn a_read_only_person_is_refused_locally_and_nothing_is_sent() {
    let server = FakeServer::new();
    let mut client = Client::new(75);
    let hello = client.open();
    let mut welcome = server.welcome(&hello, &alice());
    welcome.read_only = true;
    client.recv(ServerMessage::Welcome(welcome));
    assert!(client.engine.view().read_only);
    assert!(client.updates.contains(&ViewUpdate::ReadOnly(true)));
    assert_eq!(
        client.local(create("not allowed")),
        Err(LocalError::NotAllowed)
    );
    assert!(
        client.engine.view().chats.is_empty(),
        "nothing shown optimistically"
    );
    assert!(client.sent_ops().is_empty(), "nothing sent");

    // A later session that may write (e.g. new signed auth) lifts it.
    client.closed(1006);
    client.advance(30_000);
    let hello = client.open();
    client.recv(ServerMessage::Welcome(server.welcome(&hello, &alice())));
    assert!(!client.engine.view().read_only);
    assert!(client.updates.contains(&ViewUpdate::ReadOnly(false)));
}
