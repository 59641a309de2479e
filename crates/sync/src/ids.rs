//! UUID v4 generation for the ids the client mints: `broadcastId`, `chatId`, `commentId`.
//!
//! The protocol wants the canonical lowercase hyphenated form (see
//! `image_chat_protocol::ids::is_canonical_uuid`). Formatting 16 bytes is a dozen lines, so the
//! `uuid` crate (and its own RNG plumbing) stays out of the wasm bundle.

use image_chat_protocol::{BroadcastId, ChatId, CommentId};

use crate::rng::Rng;

/// Formats 16 random bytes as a UUID version 4 (RFC 9562): version nibble `4`, variant `10`.
pub fn uuid_v4(rng: &mut Rng) -> String {
    let mut b = rng.bytes16();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(byte >> 4)]));
        s.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    s
}

/// A fresh broadcast id.
pub fn broadcast_id(rng: &mut Rng) -> BroadcastId {
    BroadcastId::new(uuid_v4(rng))
}

/// A fresh discussion id.
pub fn chat_id(rng: &mut Rng) -> ChatId {
    ChatId::new(uuid_v4(rng))
}

/// A fresh comment id.
pub fn comment_id(rng: &mut Rng) -> CommentId {
    CommentId::new(uuid_v4(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image_chat_protocol::ids::is_canonical_uuid;

    #[test]
    fn uuids_are_canonical_v4_and_distinct() {
        let mut rng = Rng::new(42);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let u = uuid_v4(&mut rng);
            assert!(is_canonical_uuid(&u), "{u}");
            assert_eq!(&u[14..15], "4", "version nibble in {u}");
            assert!(
                matches!(&u[19..20], "8" | "9" | "a" | "b"),
                "variant in {u}"
            );
            assert!(seen.insert(u));
        }
        assert!(broadcast_id(&mut rng).validate().is_ok());
    }
}
