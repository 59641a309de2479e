//! Fresh ids for what the client mints: `broadcastId`, `chatId`, `commentId`.
//!
//! Each is a random UUID version 4 (RFC 9562) in the protocol's wire form, 22 characters of
//! base64url: the bytes come from the engine's [`IdSource`], the version bits and the encoding
//! from `image_chat_protocol::ids::encode_uuid_v4`, the one implementation of the form. The
//! opening comment of a discussion has no id of its own (it is the discussion's).
//!
//! # Why ids are not drawn from the engine's seeded generator
//!
//! Ids are public (every viewer sees every `broadcastId`), and an id someone else can predict
//! is one they can use first: ids drawn from a seeded SplitMix64 stream gave the generator's
//! state away with a single `broadcastId`, so an attacker predicted a person's next `chatId`s
//! and, by using them first, made that person's creates fail with `duplicate-id`. The bytes of
//! every id therefore come from an [`IdSource`] the caller passes in: the widget's draws each
//! id from `crypto.getRandomValues`. The engine stays free of I/O and of any system random
//! source; tests pass a [`SeededIds`] and stay exactly reproducible.

use image_chat_protocol::ids::encode_uuid_v4;
use image_chat_protocol::{BroadcastId, ChatId, CommentId};

use crate::rng::Rng;

/// Where the engine takes the 16 bytes of each id it mints. In a browser they MUST be
/// unpredictable to anyone else (`crypto.getRandomValues`); see the module doc.
pub trait IdSource: std::fmt::Debug {
    /// 16 fresh random bytes.
    fn random16(&mut self) -> [u8; 16];
}

/// A deterministic [`IdSource`] for tests and simulations: SplitMix64 from a seed. Its ids are
/// predictable from any one of them, by design: never use it where people do.
#[derive(Clone, Debug)]
pub struct SeededIds(Rng);

impl SeededIds {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Rng::new(seed))
    }
}

impl IdSource for SeededIds {
    fn random16(&mut self) -> [u8; 16] {
        self.0.bytes16()
    }
}

/// 16 random bytes as a UUID version 4 in its wire form.
pub fn uuid_v4(source: &mut dyn IdSource) -> String {
    encode_uuid_v4(source.random16())
}

/// A fresh broadcast id.
pub fn broadcast_id(source: &mut dyn IdSource) -> BroadcastId {
    BroadcastId::new(uuid_v4(source))
}

/// A fresh discussion id (also the id of its opening comment).
pub fn chat_id(source: &mut dyn IdSource) -> ChatId {
    ChatId::new(uuid_v4(source))
}

/// A fresh id for a reply.
pub fn comment_id(source: &mut dyn IdSource) -> CommentId {
    CommentId::new(uuid_v4(source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image_chat_protocol::ids::decode_id;

    #[test]
    fn ids_are_canonical_v4_and_distinct() {
        let mut source = SeededIds::new(42);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let u = uuid_v4(&mut source);
            let bytes = decode_id(&u).unwrap_or_else(|| panic!("not canonical: {u}"));
            assert_eq!(bytes[6] >> 4, 4, "version nibble in {u}");
            assert_eq!(bytes[8] >> 6, 0b10, "variant in {u}");
            assert!(seen.insert(u));
        }
        assert!(broadcast_id(&mut source).validate().is_ok());
        assert!(chat_id(&mut source).validate().is_ok());
        assert!(comment_id(&mut source).validate().is_ok());
    }
}
