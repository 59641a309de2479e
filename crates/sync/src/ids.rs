//! Fresh ids for what the client mints: `broadcastId`, `chatId`, `commentId`.
//!
//! Each is a random UUID version 4 (RFC 9562) in the protocol's wire form, 22 characters of
//! base64url: the bytes come from the engine's seeded [`Rng`], the version bits and the encoding
//! from `image_chat_protocol::ids::encode_uuid_v4`, the one implementation of the form. The
//! opening comment of a discussion has no id of its own (it is the discussion's).

use image_chat_protocol::ids::encode_uuid_v4;
use image_chat_protocol::{BroadcastId, ChatId, CommentId};

use crate::rng::Rng;

/// 16 random bytes as a UUID version 4 in its wire form.
pub fn uuid_v4(rng: &mut Rng) -> String {
    encode_uuid_v4(rng.bytes16())
}

/// A fresh broadcast id.
pub fn broadcast_id(rng: &mut Rng) -> BroadcastId {
    BroadcastId::new(uuid_v4(rng))
}

/// A fresh discussion id (also the id of its opening comment).
pub fn chat_id(rng: &mut Rng) -> ChatId {
    ChatId::new(uuid_v4(rng))
}

/// A fresh id for a reply.
pub fn comment_id(rng: &mut Rng) -> CommentId {
    CommentId::new(uuid_v4(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image_chat_protocol::ids::decode_id;

    #[test]
    fn ids_are_canonical_v4_and_distinct() {
        let mut rng = Rng::new(42);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let u = uuid_v4(&mut rng);
            let bytes = decode_id(&u).unwrap_or_else(|| panic!("not canonical: {u}"));
            assert_eq!(bytes[6] >> 4, 4, "version nibble in {u}");
            assert_eq!(bytes[8] >> 6, 0b10, "variant in {u}");
            assert!(seen.insert(u));
        }
        assert!(broadcast_id(&mut rng).validate().is_ok());
        assert!(chat_id(&mut rng).validate().is_ok());
        assert!(comment_id(&mut rng).validate().is_ok());
    }
}
