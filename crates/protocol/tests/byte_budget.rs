//! The size of a marker creation on the wire. The protocol's hard requirement is that a
//! `new-image-chat` event for a typical new marker stays well under 1 KB; the target is 300
//! bytes or less. This test builds a realistic event (UUID v4 ids in their 22-character
//! base64url form, canonical 5-decimal coordinates, a short comment by an anonymous person
//! called "Ada", millisecond timestamps, a `seq` in the thousands and a 10-digit epoch), prints
//! it with its size and asserts both the target and the hard limit.
//!
//! Run with `--nocapture` to see the figures.

use image_chat_protocol::{
    Anchor, BroadcastId, Chat, ChatId, ClientMessage, Comment, CreateChat, Event, NewImageChat,
    ServerMessage, User,
};

/// The hard protocol requirement for a marker creation.
const HARD_LIMIT: usize = 1024;
/// The target for the representative creation event (anonymous id in the reference server's
/// form).
const TARGET: usize = 300;

const TEXT: &str = "Love the light on the water here.";
const CHAT: &str = "OPfIayT_TXG3Z9MGL1orcQ";
const OP: &str = "W-jTnjuUR0Ody2duZaqEnQ";

fn event(author_id: &str) -> Event {
    event_by(User {
        id: author_id.into(),
        name: "Ada".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    })
}

fn event_by(author: User) -> Event {
    let chat = ChatId::new(CHAT);
    Event::NewImageChat(NewImageChat {
        seq: 4217,
        epoch: 1_763_712_345,
        broadcast_id: BroadcastId::new(OP),
        chat: Chat {
            id: chat.clone(),
            // Worst case for a 5-decimal coordinate: 7 bytes each.
            anchor: Anchor::point(0.41237, 0.62815),
            comments: vec![Comment {
                id: chat.opening_comment(),
                author,
                text: TEXT.into(),
                created_at: 1_763_712_401_123,
                edited_at: None,
            }],
            resolved: false,
        },
    })
}

#[test]
fn new_image_chat_fits_the_byte_budget() {
    // Anonymous ids: the reference server's form (`anon:` + 16 hex digits), and a longer
    // plausible form, a hyphenated UUID (36 chars), for the worst-case checks.
    let compact = event("anon:3f9a0c2e7b14d865").to_json();
    let long = event("anon:2d67c2d7-b328-443f-a24f-4e670c54c305").to_json();
    assert_eq!(
        compact,
        ServerMessage::from(event("anon:3f9a0c2e7b14d865")).to_json()
    );
    // It is the same event as the golden fixture (which a server sends compact).
    let fixture = include_str!("fixtures/server-new-image-chat.json");
    let fixture: serde_json::Value = serde_json::from_str(fixture).expect("fixture is JSON");
    assert_eq!(
        serde_json::to_string(&fixture).expect("serializes").len(),
        compact.len(),
        "the fixture and this event differ in size"
    );

    let create = ClientMessage::CreateChat(CreateChat {
        broadcast_id: BroadcastId::new(OP),
        chat_id: ChatId::new(CHAT),
        anchor: Anchor::point(0.41237, 0.62815),
        text: TEXT.into(),
    })
    .to_json();

    // The badges' flags cost an anonymous person nothing (omitted when false); a signed
    // moderator pays for them.
    let signed = event_by(User {
        id: "sso:u-1842".into(),
        name: "Ada".into(),
        avatar_url: None,
        is_moderator: true,
        signed_in: true,
    })
    .to_json();

    let text_bytes = TEXT.len();
    println!("{compact}");
    println!(
        "new-image-chat, anon id as 16 hex:     {} bytes",
        compact.len()
    );
    println!("new-image-chat, anon id as UUID:      {} bytes", long.len());
    println!("  of which comment text:               {text_bytes} bytes");
    println!("  of which the two ids (quoted):       {} bytes", 2 * 24);
    println!(
        "create-chat (client → server):         {} bytes",
        create.len()
    );
    println!(
        "new-image-chat, signed moderator:       {} bytes",
        signed.len()
    );
    println!("hard limit {HARD_LIMIT} bytes, target {TARGET} bytes");

    assert!(
        compact.len() <= TARGET,
        "the representative marker creation must be at most {TARGET} bytes: {} bytes\n{compact}",
        compact.len()
    );
    assert!(
        long.len() < HARD_LIMIT,
        "a marker creation must stay under 1 KB: {} bytes",
        long.len()
    );
    assert!(create.len() < HARD_LIMIT);
    assert!(!compact.contains("signedIn") && !compact.contains("isModerator"));
    assert!(signed.len() < HARD_LIMIT, "{signed}");
    // Headroom: even a 500-byte comment keeps the event under the hard limit.
    let roomy = long.len() - text_bytes + 500;
    assert!(roomy < HARD_LIMIT, "{roomy}");
}

/// A paragraph of an article, as a container's flattened text.
const ARTICLE: &str = "The harbour wakes before the town does. Fishing boats leave before six, \
                       their lamps still lit, and by seven the quay is quiet again and the \
                       gulls take over the nets left to dry.";

/// The same budget for a new discussion on page text: a typical selection (one clause, 61
/// characters) with its 32 units of context on each side, anchored by the anchor crate as the
/// widget does, and the same 33-character comment. The hard limit holds with room to spare;
/// the quote and its context are what a text discussion adds to a marker's bytes.
#[test]
fn new_text_chat_fits_the_byte_budget() {
    let start = ARTICLE.find("Fishing").expect("passage") as u32;
    let anchor = image_chat_anchor::describe(ARTICLE, start..start + 61).expect("anchors");
    assert_eq!(
        anchor.exact,
        "Fishing boats leave before six, their lamps still lit, and by"
    );
    let chat = ChatId::new(CHAT);
    let event = Event::NewTextChat(NewImageChat {
        seq: 4217,
        epoch: 1_763_712_345,
        broadcast_id: BroadcastId::new(OP),
        chat: Chat {
            id: chat.clone(),
            anchor: Anchor::Text(anchor.clone()),
            comments: vec![Comment {
                id: chat.opening_comment(),
                author: User {
                    id: "anon:3f9a0c2e7b14d865".into(),
                    name: "Ada".into(),
                    avatar_url: None,
                    is_moderator: false,
                    signed_in: false,
                },
                text: TEXT.into(),
                created_at: 1_763_712_401_123,
                edited_at: None,
            }],
            resolved: false,
        },
    })
    .to_json();
    let create = ClientMessage::CreateChat(CreateChat {
        broadcast_id: BroadcastId::new(OP),
        chat_id: chat,
        anchor: Anchor::Text(anchor.clone()),
        text: TEXT.into(),
    })
    .to_json();
    let quote_bytes = anchor.exact.len() + anchor.prefix.len() + anchor.suffix.len();
    println!("{event}");
    println!(
        "new-text-chat:                         {} bytes",
        event.len()
    );
    println!(
        "create-chat with a text anchor:        {} bytes",
        create.len()
    );
    println!("  of which quote + context (raw):      {quote_bytes} bytes");
    assert!(event.starts_with("{\"type\":\"new-text-chat\""));
    assert!(
        event.len() < 600,
        "a typical new text discussion stays well under 1 KB: {} bytes\n{event}",
        event.len()
    );
    assert!(create.len() < 450, "{} bytes\n{create}", create.len());
    // Headroom: a passage five times as long still fits the hard limit.
    let roomy = event.len() + 4 * anchor.exact.len();
    assert!(roomy < HARD_LIMIT, "{roomy}");
}
