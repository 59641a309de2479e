//! Golden wire fixtures: one JSON file per message shape in `tests/fixtures/`, pinned against the
//! Rust types in both directions.
//!
//! How a fixture is compared (the same for every message):
//! - The file is the message pretty-printed by `serde_json::to_string_pretty` (2-space indent,
//!   trailing newline) and must match it *byte for byte*. That pins the key order and every
//!   optional field's presence or absence, not just the JSON value, while staying readable.
//! - The message's real wire encoder (`to_json`) must produce exactly the fixture with the JSON
//!   whitespace outside strings removed: the compact frame that goes on the socket.
//! - The fixture parsed as a `serde_json::Value` equals the message converted to a `Value`
//!   (order-insensitive; gives a readable diff when only the content drifted).
//! - Parsing the fixture gives back the same Rust value (client messages through the server's
//!   `decode_client_frame`, so every client fixture is also a *valid* frame; server messages
//!   through `ServerMessage::from_json` (serde) and `ServerMessage::decode` (the serde-free
//!   decoder the widget links; see also `tests/wire.rs`)).
//!
//! The three broadcast events are also checked to encode as `Event` exactly as the equivalent
//! `ServerMessage`, and the fixtures tell one consistent story that `ImageState` replays.
//!
//! After an intended wire change, regenerate with `UPDATE_FIXTURES=1 cargo test -p
//! image-chat-protocol --test golden`, review the diff, and update `docs/PROTOCOL.md`.

use std::path::PathBuf;

use image_chat_protocol::{
    Ack, AddComment, Anchor, Auth, Batch, Chat, ChatChange, ChatId, ClientMessage, Comment,
    CommentId, CreateChat, DeleteChat, DeleteComment, DeletedImageChat, EditComment, ErrorCode,
    ErrorFrame, Event, Hello, ImageChatUpdated, ImageId, ImageState, Lock, MoveChat, NewImageChat,
    PROTOCOL_VERSION, PageId, Pong, Position, Presence, ResolveChat, ServerMessage, Snapshot,
    Subject, TenantId, TextAnchor, User, Welcome, decode_client_frame,
};
use image_chat_protocol::{BroadcastId, Op};
use serde::Serialize;

// ---------------------------------------------------------------------------------------------
// The story the fixtures tell: on image "harbour.jpg" of tenant "demo", Ada (anonymous) starts
// a discussion (seq 4217), Grace (signed in) replies (4218), Ada edits her comment (4219), and a
// moderator deletes an older, unrelated discussion (4220). Then Ada moves her marker (4221) and
// resolves her discussion (4222), Grace deletes her reply (4223), and Lin opens a discussion on
// an area of the picture, a region (4224).
// ---------------------------------------------------------------------------------------------

const EPOCH: u32 = 1_763_712_345;
const IMAGE: &str = "https://example.com/gallery/harbour.jpg";
const ADA_TOKEN: &str =
    "v1.YW5vbjpEV3lmelFJVFFWaUhWX2M0b3Brd19n.qBpyDWyK0c2fWZ8v3yBJkzT4mA1u9Gk5hX7sLwR0nEo";

// Ids are UUID v4 values in their wire form (22 characters of base64url). Ada's opening comment
// has the chat's id, `CHAT`.
const CHAT: &str = "OPfIayT_TXG3Z9MGL1orcQ";
const CREATE_OP: &str = "W-jTnjuUR0Ody2duZaqEnQ";
const GRACE_COMMENT: &str = "-T4oSsm1T0qAYrS6qN1EBQ";
const REPLY_OP: &str = "LGslUVlqTry-aHWs6Ezi-w";
const EDIT_OP: &str = "UhVgKHY0SoylupgeMxIHng";
const OLD_CHAT: &str = "4hi3nPFvTwCPpi20OaCOrw";
const DELETE_OP: &str = "iWcSfhueTSG1FurHxllRNw";
const REFUSED_OP: &str = "NpKTfrRUS9uUo_Dftq9Tpg";
const MOVE_OP: &str = "b1Xq7dVfSiWm4cL0tZr9eA";
const RESOLVE_OP: &str = "Zk3pR8sWQ6ueYv2nM0aJxg";
const DELETE_REPLY_OP: &str = "q9FhT2mLRbKc5dNe7PwUsQ";
const REGION_OP: &str = "c7Lw0PzKTgSh2jXn4Ye6bw";
const REGION_CHAT: &str = "Hn5sV1kqR9yTd3Mf8aBzLg";

const CREATED_AT: u64 = 1_763_712_401_123;
const REPLIED_AT: u64 = 1_763_712_433_870;
const EDITED_AT: u64 = 1_763_712_459_004;

fn ada() -> User {
    User {
        id: "anon:3f9a0c2e7b14d865".into(),
        name: "Ada".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    }
}

fn grace() -> User {
    User {
        id: "sso:u-1842".into(),
        name: "Grace Hopper".into(),
        avatar_url: Some("https://example.com/avatars/1842.png".into()),
        is_moderator: true,
        signed_in: true,
    }
}

fn sso_auth() -> Auth {
    Auth::Sso {
        user_data: "eyJpZCI6InUtMTg0MiIsIm5hbWUiOiJHcmFjZSBIb3BwZXIiLCJhdmF0YXIiOiJodHRwczovL2V4YW1wbGUuY29tL2F2YXRhcnMvMTg0Mi5wbmcifQ==".into(),
        timestamp: 1_763_712_000_000,
        hash: "843caf152cb85982654a72d2ea5e6d1dcbe00f52d8b3be61505698322ae5adc0".into(),
    }
}

fn hello(auth: Option<Auth>, resume: Option<Position>) -> ClientMessage {
    ClientMessage::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        tenant_id: TenantId::new("demo"),
        subject: Subject::Image(ImageId::new(IMAGE)),
        auth,
        resume,
    })
}

fn ada_comment(text: &str, edited_at: Option<u64>) -> Comment {
    Comment {
        id: ChatId::new(CHAT).opening_comment(),
        author: ada(),
        text: text.into(),
        created_at: CREATED_AT,
        edited_at,
    }
}

fn grace_comment() -> Comment {
    Comment {
        id: CommentId::new(GRACE_COMMENT),
        author: grace(),
        text: "Agreed. Shot at 6 a.m., the \"blue hour\".\nMore in the gallery →".into(),
        created_at: REPLIED_AT,
        edited_at: None,
    }
}

const FIRST_TEXT: &str = "Love the light on the water here.";
const EDITED_TEXT: &str = "Love the light on the water here, just after sunrise.";

fn new_image_chat() -> Event {
    Event::NewImageChat(NewImageChat {
        seq: 4217,
        epoch: EPOCH,
        broadcast_id: BroadcastId::new(CREATE_OP),
        chat: Chat {
            id: ChatId::new(CHAT),
            anchor: Anchor::point(0.41237, 0.62815),
            comments: vec![ada_comment(FIRST_TEXT, None)],
            resolved: false,
        },
    })
}

fn comment_added() -> Event {
    Event::ImageChatUpdated(ImageChatUpdated {
        seq: 4218,
        epoch: EPOCH,
        broadcast_id: BroadcastId::new(REPLY_OP),
        chat_id: ChatId::new(CHAT),
        change: ChatChange::CommentAdded {
            comment: grace_comment(),
        },
    })
}

fn comment_edited() -> Event {
    Event::ImageChatUpdated(ImageChatUpdated {
        seq: 4219,
        epoch: EPOCH,
        broadcast_id: BroadcastId::new(EDIT_OP),
        chat_id: ChatId::new(CHAT),
        change: ChatChange::CommentEdited {
            comment_id: ChatId::new(CHAT).opening_comment(),
            text: EDITED_TEXT.into(),
            edited_at: EDITED_AT,
        },
    })
}

fn deleted_image_chat() -> Event {
    Event::DeletedImageChat(DeletedImageChat {
        seq: 4220,
        epoch: EPOCH,
        broadcast_id: BroadcastId::new(DELETE_OP),
        chat_id: ChatId::new(OLD_CHAT),
    })
}

fn moved() -> Event {
    Event::ImageChatUpdated(ImageChatUpdated {
        seq: 4221,
        epoch: EPOCH,
        broadcast_id: BroadcastId::new(MOVE_OP),
        chat_id: ChatId::new(CHAT),
        change: ChatChange::Moved {
            anchor: Anchor::point(0.4, 0.6125),
        },
    })
}

fn resolved() -> Event {
    Event::ImageChatUpdated(ImageChatUpdated {
        seq: 4222,
        epoch: EPOCH,
        broadcast_id: BroadcastId::new(RESOLVE_OP),
        chat_id: ChatId::new(CHAT),
        change: ChatChange::Resolved { resolved: true },
    })
}

fn comment_deleted() -> Event {
    Event::ImageChatUpdated(ImageChatUpdated {
        seq: 4223,
        epoch: EPOCH,
        broadcast_id: BroadcastId::new(DELETE_REPLY_OP),
        chat_id: ChatId::new(CHAT),
        change: ChatChange::CommentDeleted {
            comment_id: CommentId::new(GRACE_COMMENT),
        },
    })
}

fn region() -> Anchor {
    Anchor::region(0.125, 0.2, 0.25, 0.18)
}

fn region_chat() -> Event {
    Event::NewImageChat(NewImageChat {
        seq: 4224,
        epoch: EPOCH,
        broadcast_id: BroadcastId::new(REGION_OP),
        chat: Chat {
            id: ChatId::new(REGION_CHAT),
            anchor: region(),
            comments: vec![Comment {
                id: ChatId::new(REGION_CHAT).opening_comment(),
                author: lin(),
                text: "The whole boat shed is out of focus.".into(),
                created_at: 1_763_712_600_000,
                edited_at: None,
            }],
            resolved: false,
        },
    })
}

fn lin() -> User {
    User {
        id: "anon:9c41d07be2a35f18".into(),
        name: "Lin".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    }
}

/// The older discussion that `deleted-image-chat` removes; present in the snapshot.
fn old_chat() -> Chat {
    Chat {
        id: ChatId::new(OLD_CHAT),
        anchor: Anchor::point(0.9, 0.05),
        comments: vec![Comment {
            id: ChatId::new(OLD_CHAT).opening_comment(),
            author: lin(),
            text: "first!".into(),
            created_at: 1_763_600_000_000,
            edited_at: None,
        }],
        resolved: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison machinery.
// ---------------------------------------------------------------------------------------------

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.json"))
}

/// Removes JSON whitespace outside string literals: the compact form of a pretty document.
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

/// Checks `value` against fixture `name` (see the module doc) and returns the fixture text.
fn check_encoding<T: Serialize>(name: &str, value: &T, wire: &str) -> String {
    let path = fixture_path(name);
    let pretty = serde_json::to_string_pretty(value).expect("serializable") + "\n";
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &pretty).expect("write fixture");
    }
    let fixture = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_FIXTURES=1)", path.display()));

    let as_value: serde_json::Value = serde_json::from_str(&fixture).expect("fixture is JSON");
    assert_eq!(
        as_value,
        serde_json::to_value(value).expect("serializable"),
        "{name}: JSON content differs from the fixture"
    );
    assert_eq!(
        pretty, fixture,
        "{name}: key order or formatting differs from the fixture"
    );
    assert_eq!(
        wire,
        minify(&fixture),
        "{name}: the compact wire frame differs from the fixture"
    );
    // Equality with the minified fixture already proves compactness; a raw line break can only
    // appear outside strings (inside, JSON escapes it), so this is a cheap second witness.
    assert!(
        !wire.contains(['\n', '\r']),
        "{name}: wire frames are one line"
    );
    fixture
}

fn check_client(name: &str, message: ClientMessage) {
    let fixture = check_encoding(name, &message, &message.to_json());
    let parsed: ClientMessage = serde_json::from_str(&fixture).expect("parses");
    assert_eq!(parsed, message, "{name}: serde round trip");
    let decoded = decode_client_frame(&fixture).expect("the fixture is a valid frame");
    assert_eq!(decoded, message, "{name}: codec round trip");
    assert_eq!(
        decode_client_frame(&message.to_json()).expect("the wire frame is valid"),
        message,
        "{name}: compact frame round trip"
    );
}

fn check_server(name: &str, message: ServerMessage) {
    let fixture = check_encoding(name, &message, &message.to_json());
    let parsed = ServerMessage::from_json(&fixture).expect("parses");
    assert_eq!(parsed, message, "{name}: round trip");
    assert_eq!(
        ServerMessage::from_json(&message.to_json()).expect("parses"),
        message,
        "{name}: compact frame round trip"
    );
    assert_eq!(
        ServerMessage::decode(&fixture).as_ref(),
        Ok(&message),
        "{name}: the widget's decoder"
    );
    assert_eq!(
        ServerMessage::decode(&message.to_json()).as_ref(),
        Ok(&message),
        "{name}: the widget's decoder, compact frame"
    );
}

/// An event fixture: checked as a `ServerMessage`, and the `Event` encoding must be the same
/// bytes (so a stored event can be sent alone or inside a `batch` unchanged).
fn check_event(name: &str, event: Event) {
    let message = ServerMessage::from(event.clone());
    assert_eq!(
        event.to_json(),
        message.to_json(),
        "{name}: Event and ServerMessage encodings differ"
    );
    check_encoding(name, &event, &event.to_json());
    check_server(name, message);
    let fixture = std::fs::read_to_string(fixture_path(name)).expect("fixture");
    let parsed: Event = serde_json::from_str(&fixture).expect("parses as Event");
    assert_eq!(parsed, event, "{name}: Event round trip");
}

// ---------------------------------------------------------------------------------------------
// Client → server.
// ---------------------------------------------------------------------------------------------

#[test]
fn hello_anonymous() {
    check_client(
        "client-hello-anonymous",
        hello(
            Some(Auth::Anonymous {
                name: "Ada".into(),
                token: None,
            }),
            None,
        ),
    );
}

#[test]
fn hello_anonymous_resume() {
    check_client(
        "client-hello-anonymous-resume",
        hello(
            Some(Auth::Anonymous {
                name: "Ada".into(),
                token: Some(ADA_TOKEN.into()),
            }),
            Some(Position {
                epoch: EPOCH,
                seq: 4217,
            }),
        ),
    );
}

#[test]
fn hello_sso() {
    check_client("client-hello-sso", hello(Some(sso_auth()), None));
}

#[test]
fn hello_sso_resume() {
    check_client(
        "client-hello-sso-resume",
        hello(
            Some(sso_auth()),
            Some(Position {
                epoch: EPOCH,
                seq: 4219,
            }),
        ),
    );
}

#[test]
fn hello_without_auth() {
    check_client("client-hello-no-auth", hello(None, None));
}

#[test]
fn create_chat() {
    check_client(
        "client-create-chat",
        ClientMessage::CreateChat(CreateChat {
            broadcast_id: BroadcastId::new(CREATE_OP),
            chat_id: ChatId::new(CHAT),
            anchor: Anchor::point(0.41237, 0.62815),
            text: FIRST_TEXT.into(),
        }),
    );
}

#[test]
fn add_comment() {
    check_client(
        "client-add-comment",
        ClientMessage::AddComment(AddComment {
            broadcast_id: BroadcastId::new(REPLY_OP),
            chat_id: ChatId::new(CHAT),
            comment_id: CommentId::new(GRACE_COMMENT),
            text: grace_comment().text,
        }),
    );
}

#[test]
fn edit_comment() {
    check_client(
        "client-edit-comment",
        ClientMessage::EditComment(EditComment {
            broadcast_id: BroadcastId::new(EDIT_OP),
            chat_id: ChatId::new(CHAT),
            comment_id: ChatId::new(CHAT).opening_comment(),
            text: EDITED_TEXT.into(),
        }),
    );
}

#[test]
fn delete_chat() {
    check_client(
        "client-delete-chat",
        ClientMessage::DeleteChat(DeleteChat {
            broadcast_id: BroadcastId::new(DELETE_OP),
            chat_id: ChatId::new(OLD_CHAT),
        }),
    );
}

#[test]
fn delete_comment() {
    check_client(
        "client-delete-comment",
        ClientMessage::DeleteComment(DeleteComment {
            broadcast_id: BroadcastId::new(DELETE_REPLY_OP),
            chat_id: ChatId::new(CHAT),
            comment_id: CommentId::new(GRACE_COMMENT),
        }),
    );
}

#[test]
fn resolve_chat() {
    check_client(
        "client-resolve-chat",
        ClientMessage::ResolveChat(ResolveChat {
            broadcast_id: BroadcastId::new(RESOLVE_OP),
            chat_id: ChatId::new(CHAT),
            resolved: true,
        }),
    );
}

#[test]
fn move_chat() {
    check_client(
        "client-move-chat",
        ClientMessage::MoveChat(MoveChat {
            broadcast_id: BroadcastId::new(MOVE_OP),
            chat_id: ChatId::new(CHAT),
            anchor: Anchor::point(0.4, 0.6125),
        }),
    );
}

#[test]
fn create_chat_on_a_region() {
    check_client(
        "client-create-chat-region",
        ClientMessage::CreateChat(CreateChat {
            broadcast_id: BroadcastId::new(REGION_OP),
            chat_id: ChatId::new(REGION_CHAT),
            anchor: region(),
            text: "The whole boat shed is out of focus.".into(),
        }),
    );
}

#[test]
fn set_name() {
    check_client(
        "client-set-name",
        ClientMessage::SetName {
            name: "Ada Lovelace".into(),
        },
    );
}

#[test]
fn set_lock() {
    check_client("client-set-lock", ClientMessage::SetLock { locked: true });
}

#[test]
fn ping() {
    check_client(
        "client-ping",
        ClientMessage::Ping {
            nonce: 1_763_712_460_000,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Server → client.
// ---------------------------------------------------------------------------------------------

#[test]
fn welcome_recovered_with_events() {
    check_server(
        "server-welcome-recovered",
        ServerMessage::Welcome(Welcome {
            you: ada(),
            token: Some(ADA_TOKEN.into()),
            position: Position {
                epoch: EPOCH,
                seq: 4219,
            },
            recovered: true,
            events: vec![comment_added(), comment_edited()],
            snapshot: None,
            online: 2,
            read_only: false,
            locked: false,
        }),
    );
}

#[test]
fn welcome_recovered_nothing_missed() {
    check_server(
        "server-welcome-recovered-empty",
        ServerMessage::Welcome(Welcome {
            you: ada(),
            token: Some(ADA_TOKEN.into()),
            position: Position {
                epoch: EPOCH,
                seq: 4219,
            },
            recovered: true,
            events: vec![],
            snapshot: None,
            online: 2,
            read_only: false,
            locked: false,
        }),
    );
}

fn snapshot_after_4219() -> Snapshot {
    Snapshot {
        chats: vec![
            old_chat(),
            Chat {
                id: ChatId::new(CHAT),
                anchor: Anchor::point(0.41237, 0.62815),
                comments: vec![ada_comment(EDITED_TEXT, Some(EDITED_AT)), grace_comment()],
                resolved: false,
            },
        ],
    }
}

#[test]
fn welcome_with_snapshot() {
    check_server(
        "server-welcome-snapshot",
        ServerMessage::Welcome(Welcome {
            you: grace(),
            token: None,
            position: Position {
                epoch: EPOCH,
                seq: 4219,
            },
            recovered: false,
            events: vec![],
            snapshot: Some(snapshot_after_4219()),
            online: 3,
            read_only: false,
            locked: false,
        }),
    );
}

#[test]
fn event_new_image_chat() {
    check_event("server-new-image-chat", new_image_chat());
}

#[test]
fn event_comment_added() {
    check_event("server-image-chat-updated-comment-added", comment_added());
}

#[test]
fn event_comment_edited() {
    check_event("server-image-chat-updated-comment-edited", comment_edited());
}

#[test]
fn event_deleted_image_chat() {
    check_event("server-deleted-image-chat", deleted_image_chat());
}

#[test]
fn event_moved() {
    check_event("server-image-chat-updated-moved", moved());
}

#[test]
fn event_resolved() {
    check_event("server-image-chat-updated-resolved", resolved());
}

#[test]
fn event_comment_deleted() {
    check_event(
        "server-image-chat-updated-comment-deleted",
        comment_deleted(),
    );
}

#[test]
fn event_new_image_chat_on_a_region() {
    check_event("server-new-image-chat-region", region_chat());
}

/// A resolved discussion in a snapshot says so (and only then: open ones carry no key).
#[test]
fn snapshot_marks_resolved_discussions() {
    let mut state = ImageState::from_snapshot(snapshot_after_4219());
    for event in [deleted_image_chat(), moved(), resolved()] {
        state.apply(&event).expect("applies");
    }
    let json = serde_json::to_string(&state.to_snapshot()).expect("encodes");
    assert_eq!(json.matches("\"resolved\":true").count(), 1, "{json}");
    assert!(!json.contains("\"resolved\":false"), "{json}");
    let back = ServerMessage::decode(&format!(
        "{{\"type\":\"welcome\",\"you\":{{\"id\":\"a\",\"name\":\"A\"}},\"position\":{{\"epoch\":1,\"seq\":1}},\"recovered\":false,\"snapshot\":{json},\"online\":1}}"
    ))
    .expect("decodes");
    let ServerMessage::Welcome(welcome) = back else {
        unreachable!()
    };
    assert_eq!(welcome.snapshot, Some(state.to_snapshot()));
}

#[test]
fn batch() {
    check_server(
        "server-batch",
        ServerMessage::Batch(Batch {
            events: vec![comment_added(), comment_edited(), deleted_image_chat()],
        }),
    );
}

#[test]
fn ack() {
    check_server(
        "server-ack",
        ServerMessage::Ack(Ack {
            broadcast_id: BroadcastId::new(CREATE_OP),
            seq: 4217,
        }),
    );
}

#[test]
fn error_with_broadcast_id() {
    check_server(
        "server-error-op",
        ServerMessage::Error(ErrorFrame {
            broadcast_id: Some(BroadcastId::new(REFUSED_OP)),
            code: ErrorCode::TextTooLong,
            message: "the comment is longer than 4000 characters".into(),
        }),
    );
}

#[test]
fn error_without_broadcast_id() {
    check_server(
        "server-error-frame",
        ServerMessage::Error(ErrorFrame {
            broadcast_id: None,
            code: ErrorCode::MalformedFrame,
            message: "expected a JSON object".into(),
        }),
    );
}

/// A moderator's view of a locked image: `locked` is written only when true.
#[test]
fn welcome_on_a_locked_image() {
    check_server(
        "server-welcome-locked",
        ServerMessage::Welcome(Welcome {
            you: grace(),
            token: None,
            position: Position {
                epoch: EPOCH,
                seq: 4219,
            },
            recovered: true,
            events: vec![],
            snapshot: None,
            online: 2,
            read_only: false,
            locked: true,
        }),
    );
}

#[test]
fn lock() {
    check_server("server-lock", ServerMessage::Lock(Lock { locked: true }));
}

#[test]
fn presence() {
    check_server(
        "server-presence",
        ServerMessage::Presence(Presence { online: 3 }),
    );
}

#[test]
fn pong() {
    check_server(
        "server-pong",
        ServerMessage::Pong(Pong {
            nonce: 1_763_712_460_000,
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// Discussions on page text. On page "https://example.com/blog/harbour#chapter-1" (its own log,
// epoch `PAGE_EPOCH`), Ada selects a passage and starts a discussion on it (seq 12), Grace
// replies (13), Ada edits her comment (14) and re-anchors it on the edited passage (15), a
// moderator deletes it (16). A point anchor sent on the page is refused.
// ---------------------------------------------------------------------------------------------

const PAGE: &str = "https://example.com/blog/harbour#chapter-1";
const PAGE_EPOCH: u32 = 3_112_870_951;
/// The container's flattened text (its `textContent`).
const PAGE_TEXT: &str = "The harbour at dawn\n\nFishing boats leave before six; by seven the \
                         quay is quiet again and the gulls take over.";
const TEXT_CHAT: &str = "mB2xQ0c7T1GkVn8Zr4sHdw";
const TEXT_CREATE_OP: &str = "Yp6fK3wLQxmD9tR1aNv0Jg";
const TEXT_REPLY: &str = "t8VdN5qCRk2Hs0LmXw7ePg";
const TEXT_REPLY_OP: &str = "Qe4Jc9ZyTnWb1uF6oK3rSA";
const TEXT_EDIT_OP: &str = "Aa1Rk7VmSgqT4dLx9Hc2Ew";
const TEXT_MOVE_OP: &str = "Ux3Gm8PbQt5Ne0Wd2Kj7Hg";
const TEXT_DELETE_OP: &str = "Lr9Ts2XvRf6Ya1Mq4Bn8Cw";
const TEXT_REFUSED_OP: &str = "Dw5Hn0JsSe3Kp8Vx6Zq1Tg";

fn page_hello() -> ClientMessage {
    ClientMessage::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        tenant_id: TenantId::new("demo"),
        subject: Subject::Page(PageId::new(PAGE)),
        auth: Some(Auth::Anonymous {
            name: "Ada".into(),
            token: Some(ADA_TOKEN.into()),
        }),
        resume: None,
    })
}

/// The passage Ada selected, anchored by the anchor crate exactly as the widget does.
fn passage() -> TextAnchor {
    let start = PAGE_TEXT.find("Fishing").expect("passage") as u32;
    image_chat_anchor::describe(PAGE_TEXT, start..start + 30).expect("anchors")
}

/// The passage after the page's author rewrote it ("six" became "5 a.m.").
fn edited_passage() -> TextAnchor {
    let text = PAGE_TEXT.replace("before six", "before 5 a.m.");
    let found = image_chat_anchor::locate(&text, &passage()).expect("found again");
    assert_eq!(found.how, image_chat_anchor::How::Fuzzy);
    image_chat_anchor::describe(&text, found.start..found.end).expect("anchors")
}

const TEXT_FIRST: &str = "Is \"six\" still right in winter?";

fn text_chat() -> Chat {
    Chat {
        id: ChatId::new(TEXT_CHAT),
        anchor: Anchor::Text(passage()),
        comments: vec![Comment {
            id: ChatId::new(TEXT_CHAT).opening_comment(),
            author: ada(),
            text: TEXT_FIRST.into(),
            created_at: 1_763_720_000_250,
            edited_at: None,
        }],
        resolved: false,
    }
}

fn new_text_chat() -> Event {
    Event::NewTextChat(NewImageChat {
        seq: 12,
        epoch: PAGE_EPOCH,
        broadcast_id: BroadcastId::new(TEXT_CREATE_OP),
        chat: text_chat(),
    })
}

fn text_comment_added() -> Event {
    Event::UpdatedTextChat(ImageChatUpdated {
        seq: 13,
        epoch: PAGE_EPOCH,
        broadcast_id: BroadcastId::new(TEXT_REPLY_OP),
        chat_id: ChatId::new(TEXT_CHAT),
        change: ChatChange::CommentAdded {
            comment: Comment {
                id: CommentId::new(TEXT_REPLY),
                author: grace(),
                text: "No: 7 from November to February.".into(),
                created_at: 1_763_720_031_002,
                edited_at: None,
            },
        },
    })
}

fn text_comment_edited() -> Event {
    Event::UpdatedTextChat(ImageChatUpdated {
        seq: 14,
        epoch: PAGE_EPOCH,
        broadcast_id: BroadcastId::new(TEXT_EDIT_OP),
        chat_id: ChatId::new(TEXT_CHAT),
        change: ChatChange::CommentEdited {
            comment_id: ChatId::new(TEXT_CHAT).opening_comment(),
            text: "Is this still right in winter?".into(),
            edited_at: 1_763_720_090_417,
        },
    })
}

fn text_moved() -> Event {
    Event::UpdatedTextChat(ImageChatUpdated {
        seq: 15,
        epoch: PAGE_EPOCH,
        broadcast_id: BroadcastId::new(TEXT_MOVE_OP),
        chat_id: ChatId::new(TEXT_CHAT),
        change: ChatChange::Moved {
            anchor: Anchor::Text(edited_passage()),
        },
    })
}

fn deleted_text_chat() -> Event {
    Event::DeletedTextChat(DeletedImageChat {
        seq: 16,
        epoch: PAGE_EPOCH,
        broadcast_id: BroadcastId::new(TEXT_DELETE_OP),
        chat_id: ChatId::new(TEXT_CHAT),
    })
}

#[test]
fn hello_on_a_page() {
    check_client("client-hello-page", page_hello());
}

#[test]
fn create_chat_on_text() {
    check_client(
        "client-create-chat-text",
        ClientMessage::CreateChat(CreateChat {
            broadcast_id: BroadcastId::new(TEXT_CREATE_OP),
            chat_id: ChatId::new(TEXT_CHAT),
            anchor: Anchor::Text(passage()),
            text: TEXT_FIRST.into(),
        }),
    );
}

#[test]
fn move_chat_to_other_text() {
    check_client(
        "client-move-chat-text",
        ClientMessage::MoveChat(MoveChat {
            broadcast_id: BroadcastId::new(TEXT_MOVE_OP),
            chat_id: ChatId::new(TEXT_CHAT),
            anchor: Anchor::Text(edited_passage()),
        }),
    );
}

#[test]
fn event_new_text_chat() {
    check_event("server-new-text-chat", new_text_chat());
}

#[test]
fn event_updated_text_chat() {
    check_event(
        "server-updated-text-chat-comment-added",
        text_comment_added(),
    );
    check_event(
        "server-updated-text-chat-comment-edited",
        text_comment_edited(),
    );
    check_event("server-updated-text-chat-moved", text_moved());
}

#[test]
fn event_deleted_text_chat() {
    check_event("server-deleted-text-chat", deleted_text_chat());
}

#[test]
fn welcome_on_a_page() {
    check_server(
        "server-welcome-page-snapshot",
        ServerMessage::Welcome(Welcome {
            you: ada(),
            token: Some(ADA_TOKEN.into()),
            position: Position {
                epoch: PAGE_EPOCH,
                seq: 12,
            },
            recovered: false,
            events: vec![],
            snapshot: Some(Snapshot {
                chats: vec![text_chat()],
            }),
            online: 2,
            read_only: false,
            locked: false,
        }),
    );
}

#[test]
fn anchor_errors() {
    check_server(
        "server-error-wrong-anchor-kind",
        ServerMessage::Error(ErrorFrame {
            broadcast_id: Some(BroadcastId::new(TEXT_REFUSED_OP)),
            code: ErrorCode::WrongAnchorKind,
            message: "a point or region anchor is only for discussions on an image (hello.imageId)"
                .into(),
        }),
    );
    check_server(
        "server-error-invalid-anchor",
        ServerMessage::Error(ErrorFrame {
            broadcast_id: Some(BroadcastId::new(TEXT_REFUSED_OP)),
            code: ErrorCode::InvalidAnchor,
            message: "invalid text anchor: start and end must satisfy start < end and end - \
                      start = length of exact"
                .into(),
        }),
    );
}

/// The page's events replay like an image's: one state machine for both kinds.
#[test]
fn text_story_replays() {
    let mut state = ImageState::default();
    state.apply(&new_text_chat()).expect("applies");
    assert_eq!(state.to_snapshot().chats, vec![text_chat()]);
    for event in [text_comment_added(), text_comment_edited(), text_moved()] {
        state.apply(&event).expect("applies");
    }
    let chat = &state.chats()[0];
    assert_eq!(chat.comments.len(), 2);
    let Anchor::Text(anchor) = &chat.anchor else {
        unreachable!("a text anchor")
    };
    assert_eq!(anchor.exact, "Fishing boats leave before 5 a.m.");
    state.apply(&deleted_text_chat()).expect("applies");
    assert!(state.chats().is_empty());
    for event in [new_text_chat(), text_moved(), deleted_text_chat()] {
        assert_eq!(event.subject_kind(), image_chat_protocol::SubjectKind::Page);
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-checks between fixtures.
// ---------------------------------------------------------------------------------------------

/// The events mean what `welcome`'s snapshot says: replaying them gives the same state.
#[test]
fn fixture_story_replays_to_the_snapshot() {
    let mut state = ImageState::from_snapshot(Snapshot {
        chats: vec![old_chat()],
    });
    for event in [new_image_chat(), comment_added(), comment_edited()] {
        state.apply(&event).expect("applies");
    }
    assert_eq!(state.to_snapshot(), snapshot_after_4219());
    state.apply(&deleted_image_chat()).expect("applies");
    assert_eq!(state.chats().len(), 1);
    assert_eq!(state.chats()[0].id.as_str(), CHAT);
    for event in [moved(), resolved(), comment_deleted(), region_chat()] {
        state.apply(&event).expect("applies");
    }
    let chat = &state.chats()[0];
    assert_eq!(chat.anchor, Anchor::point(0.4, 0.6125));
    assert!(chat.resolved);
    assert_eq!(
        chat.comments.len(),
        1,
        "the reply is gone, the opening comment stays"
    );
    assert_eq!(state.chats()[1].anchor, region());
}

/// The opening comment goes only with its discussion: an event removing it does not apply.
#[test]
fn the_opening_comment_is_not_deleted_alone() {
    let mut state = ImageState::from_snapshot(snapshot_after_4219());
    let event = Event::ImageChatUpdated(ImageChatUpdated {
        seq: 4220,
        epoch: EPOCH,
        broadcast_id: BroadcastId::new(DELETE_REPLY_OP),
        chat_id: ChatId::new(CHAT),
        change: ChatChange::CommentDeleted {
            comment_id: ChatId::new(CHAT).opening_comment(),
        },
    });
    let before = state.clone();
    assert!(state.apply(&event).is_err());
    assert_eq!(state, before);
}

/// Each op fixture becomes the event fixture with the same `broadcastId` and content.
#[test]
fn ops_match_their_events() {
    let create = decode_client_frame(
        &std::fs::read_to_string(fixture_path("client-create-chat")).expect("fixture"),
    )
    .expect("valid")
    .into_op()
    .expect("an op");
    let Event::NewImageChat(created) = new_image_chat() else {
        unreachable!()
    };
    assert_eq!(create.broadcast_id(), &created.broadcast_id);
    assert_eq!(create.chat_id(), &created.chat.id);
    let Op::CreateChat(create) = create else {
        unreachable!()
    };
    assert_eq!(create.anchor, created.chat.anchor);
    assert_eq!(
        create.chat_id.opening_comment(),
        created.chat.comments[0].id
    );
    assert_eq!(create.text, created.chat.comments[0].text);
}

/// Every fixture file is covered by a test (no stale goldens left behind).
#[test]
fn no_orphan_fixtures() {
    let covered = [
        "client-hello-anonymous",
        "client-hello-anonymous-resume",
        "client-hello-sso",
        "client-hello-sso-resume",
        "client-hello-no-auth",
        "client-create-chat",
        "client-add-comment",
        "client-edit-comment",
        "client-delete-chat",
        "client-delete-comment",
        "client-resolve-chat",
        "client-move-chat",
        "client-create-chat-region",
        "client-set-name",
        "client-ping",
        "server-welcome-recovered",
        "server-welcome-recovered-empty",
        "server-welcome-snapshot",
        "server-new-image-chat",
        "server-image-chat-updated-comment-added",
        "server-image-chat-updated-comment-edited",
        "server-deleted-image-chat",
        "server-image-chat-updated-moved",
        "server-image-chat-updated-resolved",
        "server-image-chat-updated-comment-deleted",
        "server-new-image-chat-region",
        "server-batch",
        "server-ack",
        "server-error-op",
        "server-error-frame",
        "server-presence",
        "server-pong",
        "client-hello-page",
        "client-create-chat-text",
        "client-move-chat-text",
        "server-new-text-chat",
        "server-updated-text-chat-comment-added",
        "server-updated-text-chat-comment-edited",
        "server-updated-text-chat-moved",
        "server-deleted-text-chat",
        "server-welcome-page-snapshot",
        "server-error-wrong-anchor-kind",
        "server-error-invalid-anchor",
        "server-lock",
        "server-welcome-locked",
        "client-set-lock",
    ];
    let dir = fixture_path("x").parent().expect("dir").to_owned();
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut expected: Vec<String> = covered.iter().map(|n| format!("{n}.json")).collect();
    expected.sort();
    assert_eq!(found, expected);
}

/// Every example in `docs/PROTOCOL.md` marked `<!-- fixture: name -->` is that fixture verbatim,
/// and every fixture is shown there, so the normative document cannot drift from the code.
#[test]
fn protocol_doc_examples_are_the_fixtures() {
    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/PROTOCOL.md");
    let marker = "<!-- fixture: ";
    let mut shown = Vec::new();
    for (at, _) in doc.match_indices(marker) {
        let rest = &doc[at + marker.len()..];
        let (name, rest) = rest
            .split_once(" -->\n```json\n")
            .expect("a json block follows");
        let (body, _) = rest.split_once("```").expect("the block ends");
        let fixture = std::fs::read_to_string(fixture_path(name)).expect("fixture exists");
        assert_eq!(
            body, fixture,
            "docs/PROTOCOL.md example {name} differs from its fixture"
        );
        shown.push(name.to_owned());
    }
    for entry in std::fs::read_dir(fixture_path("x").parent().expect("dir")).expect("dir") {
        let file = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let name = file.trim_end_matches(".json");
        assert!(
            shown.iter().any(|s| s == name),
            "{name} is not shown in docs/PROTOCOL.md"
        );
    }
}
