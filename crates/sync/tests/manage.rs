//! Scenario tests for managing discussions: deleting a reply, resolving / reopening, moving a
//! marker, regions. Each is driven by the virtual clock and the scripted fake server in
//! `support`, like `scenarios.rs`: optimistic at once, confirmed once without echo, rolled back
//! visibly on a refusal, never queued while offline, settled by the resync when in flight, and
//! the conflicts two people make (a marker moved while someone deletes it).

mod support;

use image_chat_protocol::{Anchor, ChatId, ErrorCode, Event, Op, ServerMessage};
use image_chat_sync::{Announcement, Command, FailReason, LocalError, OpKind, OpState, ViewUpdate};
use support::{Client, FakeServer, alice, bob, create};

fn live(seed: u64) -> (Client, FakeServer) {
    let server = FakeServer::new();
    let mut client = Client::new(seed);
    client.connect(&server);
    (client, server)
}

/// A discussion of Alice's (the client) with a reply of hers and one of Bob's.
fn thread(client: &mut Client, server: &mut FakeServer) -> ChatId {
    let chat_id = client.op(server, create("a marker")).chat_id;
    client.op(
        server,
        Command::Reply {
            chat_id: chat_id.clone(),
            text: "mine".into(),
        },
    );
    let bobs = server.remote_reply(&bob(), &chat_id, "bob's");
    client.recv_event(bobs);
    chat_id
}

/// Sends what the engine queued since `before` to the fake server, answering it.
fn serve_since(client: &mut Client, server: &mut FakeServer, before: usize) {
    let frames = client.sent[before..].to_vec();
    client.serve(server, frames);
}

#[test]
fn deleting_a_reply_hides_it_at_once_and_is_confirmed_without_echo() {
    let (mut client, mut server) = live(1);
    let chat_id = thread(&mut client, &mut server);
    let mine = client.engine.view().chat(&chat_id).unwrap().comments[1]
        .id
        .clone();
    let before = client.sent.len();
    let op = client
        .local(Command::DeleteComment {
            chat_id: chat_id.clone(),
            comment_id: mine.clone(),
        })
        .unwrap();
    assert_eq!(op.kind, OpKind::DeleteComment);
    assert_eq!(op.comment_id.as_ref(), Some(&mine));
    let shown = client.engine.view().chat(&chat_id).unwrap().clone();
    assert_eq!(shown.comments.len(), 2, "hidden at once");
    assert!(shown.comments.iter().all(|c| c.id != mine));
    serve_since(&mut client, &mut server, before);
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert_eq!(
        client.engine.view().chat(&chat_id).unwrap().comments.len(),
        2
    );
    assert!(client.engine.op_state(&op.op).is_none(), "settled");
    assert!(
        !client
            .announcements()
            .iter()
            .any(|a| matches!(a, Announcement::CommentDeleted { .. })),
        "our own change is not announced"
    );
}

#[test]
fn the_opening_comment_and_someone_elses_reply_are_refused_locally() {
    let (mut client, mut server) = live(2);
    let chat_id = thread(&mut client, &mut server);
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert_eq!(
        client.local(Command::DeleteComment {
            chat_id: chat_id.clone(),
            comment_id: chat_id.opening_comment(),
        }),
        Err(LocalError::NotAllowed),
        "the opening comment goes only with its discussion"
    );
    assert!(!chat.comments[2].can_edit, "Bob's reply is not Alice's");
    assert_eq!(
        client.local(Command::DeleteComment {
            chat_id: chat_id.clone(),
            comment_id: chat.comments[2].id.clone(),
        }),
        Err(LocalError::NotAllowed)
    );
    // Bob's discussion is not Alice's to resolve or move.
    let bobs = server.remote_create(&bob(), "bob's marker");
    let bobs_id = bobs.chat_id().clone();
    client.recv_event(bobs);
    let sent = client.sent_ops().len();
    for cmd in [
        Command::Resolve {
            chat_id: bobs_id.clone(),
            resolved: true,
        },
        Command::Move {
            chat_id: bobs_id.clone(),
            anchor: Anchor::point(0.1, 0.1),
        },
    ] {
        assert_eq!(client.local(cmd), Err(LocalError::NotAllowed));
    }
    assert_eq!(client.sent_ops().len(), sent, "nothing sent");
}

#[test]
fn a_moderator_may_manage_anyones_discussion() {
    let mut server = FakeServer::new();
    let mut client = Client::new(3);
    let mut moderator = alice();
    moderator.is_moderator = true;
    let hello = client.open();
    let bobs = server.remote_create(&bob(), "bob's marker");
    let reply = server.remote_reply(&bob(), bobs.chat_id(), "bob's reply");
    let chat_id = bobs.chat_id().clone();
    client.recv(ServerMessage::Welcome(server.welcome(&hello, &moderator)));
    let Event::ImageChatUpdated(reply) = reply else {
        unreachable!()
    };
    let image_chat_protocol::ChatChange::CommentAdded { comment } = reply.change else {
        unreachable!()
    };
    let before = client.sent.len();
    for cmd in [
        Command::Resolve {
            chat_id: chat_id.clone(),
            resolved: true,
        },
        Command::Move {
            chat_id: chat_id.clone(),
            anchor: Anchor::point(0.125, 0.5),
        },
        Command::DeleteComment {
            chat_id: chat_id.clone(),
            comment_id: comment.id.clone(),
        },
    ] {
        client.local(cmd).expect("a moderator may");
    }
    // The fake server checks rights against who sent it: serve as the moderator.
    let ops: Vec<Op> = client.sent[before..]
        .iter()
        .cloned()
        .filter_map(|m| m.into_op().ok())
        .collect();
    for op in ops {
        let (ack, event) = server.submit(&op, &moderator).expect("committed");
        client.recv(ServerMessage::Ack(ack));
        client.recv_event(event.expect("new"));
    }
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert!(chat.resolved);
    assert_eq!(chat.anchor, Anchor::point(0.125, 0.5));
    assert_eq!(chat.comments.len(), 1);
    assert_eq!(client.engine.confirmed_state(), &server.state);
}

#[test]
fn resolving_and_reopening_are_optimistic_live_and_announced_to_others() {
    let (mut client, mut server) = live(4);
    let chat_id = client.op(&mut server, create("settle me")).chat_id;
    let before = client.sent.len();
    let op = client
        .local(Command::Resolve {
            chat_id: chat_id.clone(),
            resolved: true,
        })
        .unwrap();
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert!(chat.resolved, "shown resolved at once");
    assert_eq!(
        chat.state,
        OpState::Pending {
            op: op.op.clone(),
            kind: OpKind::Resolve
        }
    );
    serve_since(&mut client, &mut server, before);
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert!(chat.resolved);
    assert_eq!(chat.state, OpState::Confirmed);
    assert!(server.state.chat(&chat_id).unwrap().resolved);

    // A moderator reopens it: applied live and announced.
    let mut moderator = bob();
    moderator.is_moderator = true;
    let reopened = server.remote_resolve(&moderator, &chat_id, false);
    client.recv_event(reopened);
    assert!(!client.engine.view().chat(&chat_id).unwrap().resolved);
    assert_eq!(
        client.announcements().last(),
        Some(&Announcement::Resolved {
            chat_id: chat_id.clone(),
            resolved: false
        })
    );
    assert_eq!(client.engine.confirmed_state(), &server.state);
}

#[test]
fn resolving_while_offline_fails_visibly_and_is_never_sent_later() {
    let (mut client, mut server) = live(5);
    let chat_id = client.op(&mut server, create("settle me")).chat_id;
    client.network(false);
    let sent = client.sent_ops().len();
    let result = client.local(Command::Resolve {
        chat_id: chat_id.clone(),
        resolved: true,
    });
    let Err(LocalError::NotConnected { op, reason }) = result else {
        panic!("expected NotConnected, got {result:?}");
    };
    assert_eq!(reason, FailReason::Offline);
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert!(!chat.resolved, "a failed resolve shows the confirmed state");
    assert!(matches!(
        chat.state,
        OpState::Failed {
            kind: OpKind::Resolve,
            reason: FailReason::Offline,
            retryable: true,
            ..
        }
    ));
    assert!(client.updates.contains(&ViewUpdate::OpFailed {
        op: op.op.clone(),
        kind: OpKind::Resolve,
        reason: FailReason::Offline
    }));
    client.network(true);
    client.reconnect(&server);
    assert_eq!(client.sent_ops().len(), sent, "never queued");
    // Retry sends it with the same broadcastId; the server commits it.
    let before = client.sent.len();
    client.local(Command::Retry { op: op.op.clone() }).unwrap();
    assert_eq!(client.sent_ops().last().unwrap().broadcast_id(), &op.op);
    serve_since(&mut client, &mut server, before);
    assert!(client.engine.view().chat(&chat_id).unwrap().resolved);
}

#[test]
fn moving_a_marker_is_optimistic_canonical_and_live() {
    let (mut client, mut server) = live(6);
    let chat_id = client.op(&mut server, create("move me")).chat_id;
    let before = client.sent.len();
    client
        .local(Command::Move {
            chat_id: chat_id.clone(),
            anchor: Anchor::point(0.123_456_7, 0.9),
        })
        .unwrap();
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert_eq!(
        chat.anchor,
        Anchor::point(0.12346, 0.9),
        "canonical at once"
    );
    assert!(chat.state.is_pending());
    assert!(client.updates.iter().any(
        |u| matches!(u, ViewUpdate::Chat { chat, .. } if chat.id == chat_id && chat.anchor == Anchor::point(0.12346, 0.9))
    ));
    serve_since(&mut client, &mut server, before);
    assert_eq!(client.engine.confirmed_state(), &server.state);
    assert_eq!(
        client.engine.view().chat(&chat_id).unwrap().state,
        OpState::Confirmed
    );
    // Out of the picture: refused before anything is sent.
    assert!(matches!(
        client.local(Command::Move {
            chat_id: chat_id.clone(),
            anchor: Anchor::point(1.5, 0.5),
        }),
        Err(LocalError::Invalid(_))
    ));
}

#[test]
fn a_refused_move_puts_the_marker_back_with_retry_and_dismiss() {
    let (mut client, mut server) = live(7);
    let chat_id = client.op(&mut server, create("move me")).chat_id;
    let before = client.sent.len();
    server.refuse_next.push(ErrorCode::Unavailable);
    let op = client
        .local(Command::Move {
            chat_id: chat_id.clone(),
            anchor: Anchor::point(0.9, 0.9),
        })
        .unwrap();
    serve_since(&mut client, &mut server, before);
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert_eq!(chat.anchor, Anchor::point(0.5, 0.5), "back where it was");
    assert!(matches!(
        chat.state,
        OpState::Failed {
            kind: OpKind::Move,
            retryable: true,
            ..
        }
    ));
    client.local(Command::Dismiss { op: op.op }).unwrap();
    assert_eq!(
        client.engine.view().chat(&chat_id).unwrap().state,
        OpState::Confirmed
    );
}

/// The conflict: Alice drags her marker while a moderator deletes the discussion. The delete
/// wins: the marker disappears for Alice as soon as the delete arrives, and the server's
/// refusal of her move is reported (no marker comes back).
#[test]
fn moving_a_marker_someone_just_deleted_loses_to_the_delete() {
    let (mut client, mut server) = live(8);
    let chat_id = client.op(&mut server, create("doomed")).chat_id;
    let before = client.sent.len();
    let op = client
        .local(Command::Move {
            chat_id: chat_id.clone(),
            anchor: Anchor::point(0.2, 0.2),
        })
        .unwrap();
    let mut moderator = bob();
    moderator.is_moderator = true;
    let deleted = server.remote_delete(&moderator, &chat_id);
    client.recv_event(deleted);
    assert!(
        client.engine.view().chat(&chat_id).is_none(),
        "the delete removes it despite our pending move"
    );
    assert!(client.updates.contains(&ViewUpdate::ChatRemoved {
        chat_id: chat_id.clone()
    }));
    serve_since(&mut client, &mut server, before);
    assert!(client.updates.contains(&ViewUpdate::OpFailed {
        op: op.op.clone(),
        kind: OpKind::Move,
        reason: FailReason::Server(ErrorCode::UnknownChat)
    }));
    assert!(
        client.engine.view().chat(&chat_id).is_none(),
        "nothing comes back"
    );
    assert_eq!(client.engine.confirmed_state(), &server.state);
}

/// The other order: someone deletes a reply while Alice is resolving the discussion; both
/// apply, in the server's order, and each person sees the same result.
#[test]
fn concurrent_resolve_and_reply_deletion_both_apply() {
    let (mut client, mut server) = live(9);
    let chat_id = thread(&mut client, &mut server);
    let bobs_reply = client.engine.view().chat(&chat_id).unwrap().comments[2]
        .id
        .clone();
    let before = client.sent.len();
    client
        .local(Command::Resolve {
            chat_id: chat_id.clone(),
            resolved: true,
        })
        .unwrap();
    let removed = server.remote_delete_comment(&bob(), &chat_id, &bobs_reply);
    client.recv_event(removed);
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert!(chat.resolved, "our pending resolve still shows");
    assert_eq!(chat.comments.len(), 2);
    assert_eq!(
        client.announcements().last(),
        Some(&Announcement::CommentDeleted {
            chat_id: chat_id.clone()
        })
    );
    serve_since(&mut client, &mut server, before);
    assert_eq!(client.engine.confirmed_state(), &server.state);
}

#[test]
fn in_flight_management_ops_are_settled_by_the_snapshot() {
    let (mut client, mut server) = live(10);
    let chat_id = thread(&mut client, &mut server);
    let mine = client.engine.view().chat(&chat_id).unwrap().comments[1]
        .id
        .clone();
    let before = client.sent.len();
    let resolve = client
        .local(Command::Resolve {
            chat_id: chat_id.clone(),
            resolved: true,
        })
        .unwrap();
    let moved = client
        .local(Command::Move {
            chat_id: chat_id.clone(),
            anchor: Anchor::point(0.3, 0.3),
        })
        .unwrap();
    let delete = client
        .local(Command::DeleteComment {
            chat_id: chat_id.clone(),
            comment_id: mine,
        })
        .unwrap();
    // The server commits the resolve and the reply's deletion, not the move; the connection
    // drops before any answer, and the log is lost (a new epoch: the resync is a snapshot).
    let sent: Vec<Op> = client.sent[before..]
        .iter()
        .cloned()
        .filter_map(|m| m.into_op().ok())
        .collect();
    server.submit(&sent[0], &alice()).unwrap();
    server.submit(&sent[2], &alice()).unwrap();
    server.new_epoch();
    client.closed(1006);
    client.reconnect(&server);
    assert_eq!(client.engine.op_state(&resolve.op), None, "committed");
    assert_eq!(client.engine.op_state(&delete.op), None, "committed");
    assert!(matches!(
        client.engine.op_state(&moved.op),
        Some(OpState::Failed {
            reason: FailReason::ConnectionLost,
            ..
        })
    ));
    let chat = client.engine.view().chat(&chat_id).unwrap().clone();
    assert!(chat.resolved);
    assert_eq!(
        chat.anchor,
        Anchor::point(0.5, 0.5),
        "the move was not committed"
    );
    assert_eq!(chat.comments.len(), 2);
}

#[test]
fn in_flight_management_ops_are_settled_by_missed_events() {
    let (mut client, mut server) = live(11);
    let chat_id = client.op(&mut server, create("x")).chat_id;
    let before = client.sent.len();
    let op = client
        .local(Command::Resolve {
            chat_id: chat_id.clone(),
            resolved: true,
        })
        .unwrap();
    let sent = client.sent[before..].to_vec();
    server
        .submit(&sent[0].clone().into_op().unwrap(), &alice())
        .unwrap();
    client.closed(1006);
    client.reconnect(&server);
    assert_eq!(client.engine.op_state(&op.op), None);
    assert!(client.engine.view().chat(&chat_id).unwrap().resolved);
    assert_eq!(client.sent_ops().len(), 2, "not re-sent");
}

#[test]
fn a_region_discussion_is_created_validated_and_moved_keeping_its_size() {
    let (mut client, mut server) = live(12);
    let created = client.op(
        &mut server,
        Command::CreateRegion {
            x: 0.1,
            y: 0.2,
            w: 0.3,
            h: 0.25,
            text: "this area".into(),
        },
    );
    let chat = client.engine.view().chat(&created.chat_id).unwrap().clone();
    assert_eq!(chat.region(), Some((0.1, 0.2, 0.3, 0.25)));
    assert_eq!(
        chat.point(),
        Some((0.1, 0.2)),
        "its marker is its top-left corner"
    );
    assert_eq!(client.engine.confirmed_state(), &server.state);
    // Moved near the right edge: pushed back inside, same size.
    let anchor = chat.anchor.moved_to(0.9, 0.9);
    assert_eq!(anchor, Anchor::region(0.7, 0.75, 0.3, 0.25));
    client.op(
        &mut server,
        Command::Move {
            chat_id: created.chat_id.clone(),
            anchor,
        },
    );
    assert_eq!(client.engine.confirmed_state(), &server.state);
    // Empty or out of the picture: refused at once.
    for (x, y, w, h) in [
        (0.5, 0.5, 0.0, 0.1),
        (0.8, 0.5, 0.3, 0.1),
        (-0.1, 0.0, 0.2, 0.2),
    ] {
        assert!(matches!(
            client.local(Command::CreateRegion {
                x,
                y,
                w,
                h,
                text: "no".into()
            }),
            Err(LocalError::Invalid(_))
        ));
    }
}

#[test]
fn remote_moves_and_reply_deletions_are_announced() {
    let (mut client, mut server) = live(13);
    let bobs = server.remote_create(&bob(), "bob's");
    let chat_id = bobs.chat_id().clone();
    client.recv_event(bobs);
    let reply = server.remote_reply(&bob(), &chat_id, "r");
    client.recv_event(reply);
    let reply_id = client.engine.view().chat(&chat_id).unwrap().comments[1]
        .id
        .clone();
    client.recv_event(server.remote_move(&bob(), &chat_id, Anchor::point(0.7, 0.7)));
    client.recv_event(server.remote_delete_comment(&bob(), &chat_id, &reply_id));
    let tail: Vec<Announcement> = client.announcements().into_iter().rev().take(2).collect();
    assert_eq!(
        tail,
        vec![
            Announcement::CommentDeleted {
                chat_id: chat_id.clone()
            },
            Announcement::Moved {
                chat_id: chat_id.clone()
            },
        ]
    );
    assert_eq!(
        client.engine.view().chat(&chat_id).unwrap().anchor,
        Anchor::point(0.7, 0.7)
    );
    assert_eq!(client.engine.confirmed_state(), &server.state);
}
