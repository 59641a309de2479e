//! The size of a marker creation on the wire. The protocol's hard requirement is that a
//! `new-image-chat` event for a typical new marker stays well under 1 KB; the performance target
//! is 300 bytes or less. This test builds a realistic event (UUID v4 ids, canonical 5-decimal
//! coordinates, a short comment by an anonymous person called "Ada", millisecond timestamps, a
//! `seq` in the thousands and a 10-digit epoch), prints its size and asserts the hard limit.
//!
//! Run with `--nocapture` to see the figures.

use image_chat_protocol::{
    Anchor, BroadcastId, Chat, ChatId, ClientMessage, Comment, CommentId, CreateChat, Event,
    NewImageChat, ServerMessage, User,
};

/// The hard protocol requirement for a marker creation.
const HARD_LIMIT: usize = 1024;
/// The performance target (reported, not asserted: see the test's output).
const TARGET: usize = 300;

const TEXT: &str = "Love the light on the water here.";

fn event(author_id: &str) -> Event {
    Event::NewImageChat(NewImageChat {
        seq: 4217,
        epoch: 1_763_712_345,
        broadcast_id: BroadcastId::new("5be8d39e-3b94-4743-9dcb-676e65aa849d"),
        chat: Chat {
            id: ChatId::new("38f7c86b-24ff-4d71-b767-d3062f5a2b71"),
            // Worst case for a 5-decimal coordinate: 7 bytes each.
            anchor: Anchor::point(0.41237, 0.62815),
            comments: vec![Comment {
                id: CommentId::new("ae305c9d-ea4d-4ea4-bda0-2d5862a8dffd"),
                author: User {
                    id: author_id.into(),
                    name: "Ada".into(),
                    avatar_url: None,
                    is_moderator: false,
                },
                text: TEXT.into(),
                created_at: 1_763_712_401_123,
                edited_at: None,
            }],
        },
    })
}

#[test]
fn new_image_chat_fits_the_byte_budget() {
    // Anonymous ids: the reference server's form (`anon:` + 16 hex digits), and a longer
    // plausible form, a hyphenated UUID (36 chars). The budget is asserted on the longer one.
    let compact = event("anon:3f9a0c2e7b14d865").to_json();
    let long = event("anon:2d67c2d7-b328-443f-a24f-4e670c54c305").to_json();
    assert_eq!(
        long,
        ServerMessage::from(event("anon:2d67c2d7-b328-443f-a24f-4e670c54c305")).to_json()
    );

    let create = ClientMessage::CreateChat(CreateChat {
        broadcast_id: BroadcastId::new("5be8d39e-3b94-4743-9dcb-676e65aa849d"),
        chat_id: ChatId::new("38f7c86b-24ff-4d71-b767-d3062f5a2b71"),
        anchor: Anchor::point(0.41237, 0.62815),
        comment_id: CommentId::new("ae305c9d-ea4d-4ea4-bda0-2d5862a8dffd"),
        text: TEXT.into(),
    })
    .to_json();

    let text_bytes = TEXT.len();
    println!(
        "new-image-chat, anon id as 16 hex:     {} bytes",
        compact.len()
    );
    println!("new-image-chat, anon id as UUID:      {} bytes", long.len());
    println!("  of which comment text:               {text_bytes} bytes");
    println!("  of which the three UUIDs (quoted):   {} bytes", 3 * 38);
    println!(
        "create-chat (client → server):         {} bytes",
        create.len()
    );
    println!("hard limit {HARD_LIMIT} bytes, target {TARGET} bytes");
    println!("{long}");

    assert!(
        long.len() < HARD_LIMIT,
        "a marker creation must stay under 1 KB: {} bytes",
        long.len()
    );
    assert!(create.len() < HARD_LIMIT);
    // Headroom: even a 500-byte comment keeps the event under the hard limit.
    let roomy = long.len() - text_bytes + 500;
    assert!(roomy < HARD_LIMIT, "{roomy}");
}
