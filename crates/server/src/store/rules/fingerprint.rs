//! The idempotency fingerprint: what makes an op *this* op, so that a retry (same
//! `broadcastId`) is recognised as the same op and acknowledged again, while another op reusing
//! the `broadcastId` is refused (`broadcast-id-conflict`).
//!
//! It covers the actor's id and the op's content (kind, ids, canonical anchor, text), not the
//! time: a retry at a later time is the same op, but another person replaying someone's
//! `broadcastId` is not. Idempotency lasts as long as the op's event is retained in the image's
//! log: a retry of an op whose event was pruned is treated as a new op (and is then usually
//! refused, e.g. `duplicate-id` for a create-chat, which the client reports as a failure rather
//! than silently duplicating).
//!
//! The hash is stored with every event; changing what it covers changes every stored value,
//! so a new version needs a new domain tag (and old events then conflict with retries for as
//! long as they are retained, which is harmless).

use image_chat_protocol::{Op, User};
use sha2::{Digest, Sha256};

use super::super::StoreError;

/// SHA-256 over the actor's id and the op's content. Fields are length-prefixed so no two
/// different ops encode the same bytes.
pub fn fingerprint(actor: &User, op: &Op) -> Result<Vec<u8>, StoreError> {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"image-chat op fingerprint v1");
    field(actor.id.as_bytes());
    match op {
        Op::CreateChat(op) => {
            let anchor = serde_json::to_vec(&op.anchor.canonical())
                .map_err(|e| StoreError::Backend(format!("encoding an anchor: {e}")))?;
            field(b"create-chat");
            field(op.chat_id.as_str().as_bytes());
            field(&anchor);
            field(op.text.as_bytes());
        }
        Op::AddComment(op) => {
            field(b"add-comment");
            field(op.chat_id.as_str().as_bytes());
            field(op.comment_id.as_str().as_bytes());
            field(op.text.as_bytes());
        }
        Op::EditComment(op) => {
            field(b"edit-comment");
            field(op.chat_id.as_str().as_bytes());
            field(op.comment_id.as_str().as_bytes());
            field(op.text.as_bytes());
        }
        Op::DeleteChat(op) => {
            field(b"delete-chat");
            field(op.chat_id.as_str().as_bytes());
        }
        Op::DeleteComment(op) => {
            field(b"delete-comment");
            field(op.chat_id.as_str().as_bytes());
            field(op.comment_id.as_str().as_bytes());
        }
        Op::ResolveChat(op) => {
            field(b"resolve-chat");
            field(op.chat_id.as_str().as_bytes());
            field(&[u8::from(op.resolved)]);
        }
        Op::MoveChat(op) => {
            let anchor = serde_json::to_vec(&op.anchor.canonical())
                .map_err(|e| StoreError::Backend(format!("encoding an anchor: {e}")))?;
            field(b"move-chat");
            field(op.chat_id.as_str().as_bytes());
            field(&anchor);
        }
    }
    Ok(hasher.finalize().to_vec())
}

#[cfg(test)]
mod tests {
    use image_chat_protocol::{AddComment, BroadcastId, ChatId, CommentId, EditComment};

    use super::*;

    #[test]
    fn fingerprint_covers_actor_kind_ids_and_text() {
        let user = |id: &str| User {
            id: id.into(),
            name: "N".into(),
            avatar_url: None,
            is_moderator: false,
            signed_in: false,
        };
        let add = |comment: &str, text: &str| {
            Op::AddComment(AddComment {
                broadcast_id: BroadcastId::new("b"),
                chat_id: ChatId::new("c"),
                comment_id: CommentId::new(comment),
                text: text.into(),
            })
        };
        let base = fingerprint(&user("u"), &add("m", "hi")).expect("fp");
        assert_eq!(base, fingerprint(&user("u"), &add("m", "hi")).expect("fp"));
        assert_ne!(base, fingerprint(&user("v"), &add("m", "hi")).expect("fp"));
        assert_ne!(base, fingerprint(&user("u"), &add("m", "hi!")).expect("fp"));
        assert_ne!(base, fingerprint(&user("u"), &add("n", "hi")).expect("fp"));
        let edit = Op::EditComment(EditComment {
            broadcast_id: BroadcastId::new("b"),
            chat_id: ChatId::new("c"),
            comment_id: CommentId::new("m"),
            text: "hi".into(),
        });
        assert_ne!(base, fingerprint(&user("u"), &edit).expect("fp"));
        // Length prefixes: moving a byte between adjacent fields changes the hash.
        assert_ne!(
            fingerprint(&user("u"), &add("mh", "i")).expect("fp"),
            fingerprint(&user("u"), &add("m", "hi")).expect("fp")
        );
    }
}
