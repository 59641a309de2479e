//! Property tests for `decode_client_frame`, the server's single entry point for untrusted input:
//!
//! - it never panics, on arbitrary strings, on strings made of JSON tokens, and on random
//!   mutations (deletions, insertions, replacements, truncations, splices) of valid frames;
//! - whatever it accepts is a fixed point (re-encoding and decoding gives the same message), and
//!   whatever it refuses names only a well-formed `broadcastId`;
//! - every valid op and hello survives `to_json` → decode unchanged, apart from the anchor being
//!   put in canonical (5-decimal) form, which is itself stable.
//!
//! Runs are deterministic: a fixed RNG seed, and no regression files are written into the tree.
//! To explore further locally, raise `PROPTEST_CASES` (the seed stays fixed).

use image_chat_protocol::ids::{encode_uuid_v4, is_canonical_id};
use image_chat_protocol::limits::MAX_CLIENT_FRAME_BYTES;
use image_chat_protocol::{
    AddComment, Anchor, Auth, BroadcastId, ChatId, ClientMessage, CommentId, CreateChat,
    DeleteChat, EditComment, Hello, ImageId, Op, PageId, Position, Subject, TenantId,
    decode_client_frame,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        rng_seed: RngSeed::Fixed(0x1a6e_c4a7),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Decodes and checks the invariants that hold for *any* input.
fn decode_checked(frame: &str) -> Result<(), TestCaseError> {
    match decode_client_frame(frame) {
        Ok(message) => {
            let again = decode_client_frame(&message.to_json());
            prop_assert_eq!(
                again.as_ref(),
                Ok(&message),
                "accepted frames are fixed points"
            );
        }
        Err(e) => {
            if let Some(id) = &e.broadcast_id {
                prop_assert!(is_canonical_id(id.as_str()));
            }
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generators of valid values.
// ---------------------------------------------------------------------------------------------

/// A random UUID v4 in its wire form (22 characters of base64url), as clients make them.
fn id() -> impl Strategy<Value = String> {
    any::<[u8; 16]>().prop_map(encode_uuid_v4)
}

fn fraction() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..=1.0f64,
        Just(0.0),
        Just(1.0),
        0.0..1e-5f64,
        (1.0 - 1e-5)..=1.0f64
    ]
}

/// Non-blank text without forbidden control characters, multibyte included.
fn text() -> impl Strategy<Value = String> {
    "[\\PC\t\n\r]{1,200}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (id(), id(), fraction(), fraction(), text()).prop_map(|(b, c, x, y, text)| {
            Op::CreateChat(CreateChat {
                broadcast_id: BroadcastId::new(b),
                chat_id: ChatId::new(c),
                anchor: Anchor::Point { x, y },
                text,
            })
        }),
        (id(), id(), id(), text()).prop_map(|(b, c, m, text)| Op::AddComment(AddComment {
            broadcast_id: BroadcastId::new(b),
            chat_id: ChatId::new(c),
            comment_id: CommentId::new(m),
            text,
        })),
        (id(), id(), id(), text()).prop_map(|(b, c, m, text)| Op::EditComment(EditComment {
            broadcast_id: BroadcastId::new(b),
            chat_id: ChatId::new(c),
            comment_id: CommentId::new(m),
            text,
        })),
        (id(), id()).prop_map(|(b, c)| Op::DeleteChat(DeleteChat {
            broadcast_id: BroadcastId::new(b),
            chat_id: ChatId::new(c),
        })),
    ]
}

fn hello() -> impl Strategy<Value = ClientMessage> {
    let auth = prop_oneof![
        Just(None),
        (
            "[\\PC]{0,10}[\\p{L}\\p{N}][\\PC]{0,10}",
            proptest::option::of("[A-Za-z0-9._-]{1,80}")
        )
            .prop_map(|(name, token)| Some(Auth::Anonymous { name, token })),
        ("[A-Za-z0-9+/=]{0,200}", any::<u64>(), "[0-9a-f]{64}").prop_map(
            |(user_data, timestamp, hash)| Some(Auth::Sso {
                user_data,
                timestamp,
                hash
            })
        ),
    ];
    (
        "[A-Za-z0-9_-]{1,64}",
        "[\\PC]{1,120}",
        auth,
        proptest::option::of((any::<u32>(), any::<u64>())),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(|(tenant, image, auth, resume, protocol, page)| {
            ClientMessage::Hello(Hello {
                protocol,
                tenant_id: TenantId::new(tenant),
                subject: if page {
                    Subject::Page(PageId::new(image))
                } else {
                    Subject::Image(ImageId::new(image))
                },
                auth,
                resume: resume.map(|(epoch, seq)| Position { epoch, seq }),
            })
        })
        // The byte limit on image and page ids is checked elsewhere; keep generated ones valid.
        .prop_filter("subject id within 512 bytes", |m| match m {
            ClientMessage::Hello(h) => h.subject.as_str().len() <= 512,
            _ => true,
        })
}

fn valid_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        op().prop_map(|op| op.into_message().to_json()),
        hello().prop_map(|m| m.to_json()),
        any::<u64>().prop_map(|nonce| ClientMessage::Ping { nonce }.to_json()),
    ]
}

/// One edit to a frame, applied at a char boundary.
#[derive(Clone, Debug)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, what: String },
    Replace { at: usize, with: char },
    Truncate { at: usize },
    Splice { from: usize, len: usize, to: usize },
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "\\ud83d", "null", "true", "-", "0",
            "1e999", "-0", "1.5", "NaN", "\"type\"", "\"x\"", "\u{0}", "\u{7f}", "é", "😀", " ",
        ])
        .prop_map(str::to_owned),
        any::<char>().prop_map(String::from),
        "[\\PC]{0,8}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..8usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), token()).prop_map(|(at, what)| Mutation::Insert { at, what }),
        (any::<usize>(), any::<char>()).prop_map(|(at, with)| Mutation::Replace { at, with }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), 1..40usize, any::<usize>()).prop_map(|(from, len, to)| Mutation::Splice {
            from,
            len,
            to
        }),
    ]
}

fn apply(frame: &str, mutation: &Mutation) -> String {
    let mut chars: Vec<char> = frame.chars().collect();
    let n = chars.len().max(1);
    match mutation {
        Mutation::Delete { at, len } => {
            let at = at % n;
            let end = (at + len).min(chars.len());
            chars.drain(at.min(end)..end);
        }
        Mutation::Insert { at, what } => {
            let at = at % (chars.len() + 1);
            chars.splice(at..at, what.chars());
        }
        Mutation::Replace { at, with } => {
            if !chars.is_empty() {
                chars[at % n] = *with;
            }
        }
        Mutation::Truncate { at } => chars.truncate(at % n),
        Mutation::Splice { from, len, to } => {
            let from = from % n;
            let end = (from + len).min(chars.len());
            let piece: Vec<char> = chars.get(from..end).unwrap_or_default().to_vec();
            let to = to % (chars.len() + 1);
            chars.splice(to..to, piece);
        }
    }
    chars.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn never_panics_on_arbitrary_strings(s in any::<String>()) {
        decode_checked(&s)?;
    }

    #[test]
    fn never_panics_on_json_token_soup(tokens in prop::collection::vec(token(), 0..64)) {
        decode_checked(&tokens.concat())?;
    }

    #[test]
    fn never_panics_on_mutated_valid_frames(
        frame in valid_frame(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut frame = frame;
        for m in &mutations {
            frame = apply(&frame, m);
        }
        decode_checked(&frame)?;
    }

    #[test]
    fn valid_ops_round_trip(op in op()) {
        let message = op.clone().into_message();
        let wire = message.to_json();
        prop_assert!(wire.len() <= MAX_CLIENT_FRAME_BYTES);
        let decoded = decode_client_frame(&wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // The only change decoding makes is canonicalizing the anchor.
        let mut expected = op;
        if let Op::CreateChat(create) = &mut expected {
            create.anchor = create.anchor.canonical();
        }
        prop_assert_eq!(&decoded, &expected.into_message());
        let again = decode_client_frame(&decoded.to_json());
        prop_assert_eq!(again.as_ref(), Ok(&decoded));
        // Canonical coordinates are written with at most 5 decimals.
        if let ClientMessage::CreateChat(CreateChat { anchor: Anchor::Point { x, y }, .. }) = &decoded {
            for v in [x, y] {
                let written = serde_json::to_string(v).expect("finite");
                let decimals = written.split_once('.').map_or(0, |(_, d)| d.len());
                prop_assert!(decimals <= 5 && !written.contains('e'), "{}", written);
            }
        }
    }

    #[test]
    fn valid_hellos_and_pings_round_trip(message in prop_oneof![
        hello(),
        any::<u64>().prop_map(|nonce| ClientMessage::Ping { nonce }),
        any::<bool>().prop_map(|locked| ClientMessage::SetLock { locked }),
    ]) {
        let decoded = decode_client_frame(&message.to_json())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded, message);
    }
}
