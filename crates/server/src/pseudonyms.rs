//! Signed users' ids as people who are not signed in see them.
//!
//! A signed user's id is the site's own (`sso:` + often an email). Anonymous readers (an
//! unauthenticated `GET …/snapshot`, an anonymous WebSocket session) get each `sso:` author id
//! replaced by a stable pseudonym ([`Identities::pseudonym`]): threads stay readable (one person,
//! one pseudonym) and the real id cannot be read back. Anonymous ids (already random) and
//! everything else are left alone. An anonymous person never needs a signed user's real id: the
//! widget compares author ids only with the person's own (`you.id`), which is anonymous.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::extract::ws::Utf8Bytes;
use image_chat_protocol::{
    ChatChange, Comment, Event, ImageChatUpdated, NewImageChat, ServerMessage, Snapshot,
};

use crate::identity::Identities;

/// Frames remembered by a [`FrameMemo`] before it starts afresh.
const MEMO_FRAMES: usize = 1024;

/// Rewritten frames shared by every anonymous viewer of an image: a published frame is one
/// shared buffer for all its subscribers, so it is rewritten once, not once per viewer. Keyed
/// by the buffer's address; the entry keeps the original alive, so the address cannot be
/// reused by another frame while it is remembered. Bounded: cleared past [`MEMO_FRAMES`].
#[derive(Default)]
pub struct FrameMemo {
    frames: Mutex<HashMap<FrameKey, Remembered>>,
}

/// A published buffer's address and length.
type FrameKey = (usize, usize);

/// The published frame (kept alive, see [`FrameMemo`]) and its rewrite (`None`: unchanged).
type Remembered = (Utf8Bytes, Option<Utf8Bytes>);

impl FrameMemo {
    /// `published` as an anonymous viewer of `tenant` receives it (see [`frame`]).
    pub fn view(&self, ids: &Identities, tenant: &str, published: Utf8Bytes) -> Utf8Bytes {
        if !may_name_signed_users(&published) {
            return published;
        }
        let key = (
            published.as_str().as_ptr() as usize,
            published.as_str().len(),
        );
        let mut frames = self.frames.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, rewritten)) = frames.get(&key) {
            return rewritten.clone().unwrap_or(published);
        }
        let rewritten = frame(ids, tenant, published.as_str()).map(Utf8Bytes::from);
        if frames.len() >= MEMO_FRAMES {
            frames.clear();
        }
        frames.insert(key, (published.clone(), rewritten.clone()));
        rewritten.unwrap_or(published)
    }
}

fn comment(ids: &Identities, tenant: &str, comment: &mut Comment) {
    if let Some(pseudonym) = ids.pseudonym(tenant, &comment.author.id) {
        comment.author.id = pseudonym;
    }
}

/// Pseudonymises every author of `snapshot` (of a `tenant` image).
pub fn snapshot(ids: &Identities, tenant: &str, snapshot: &mut Snapshot) {
    for c in snapshot
        .chats
        .iter_mut()
        .flat_map(|chat| chat.comments.iter_mut())
    {
        comment(ids, tenant, c);
    }
}

/// Pseudonymises the author an event carries, if any.
pub fn event(ids: &Identities, tenant: &str, event: &mut Event) {
    match event {
        Event::NewImageChat(e) | Event::NewTextChat(e) => new_chat(ids, tenant, e),
        Event::ImageChatUpdated(e) | Event::UpdatedTextChat(e) => updated(ids, tenant, e),
        Event::DeletedImageChat(_) | Event::DeletedTextChat(_) => {}
    }
}

/// Pseudonymises the authors of a new discussion (the same payload as an event or a frame).
fn new_chat(ids: &Identities, tenant: &str, e: &mut NewImageChat) {
    for c in &mut e.chat.comments {
        comment(ids, tenant, c);
    }
}

/// Pseudonymises the author of an added comment; other changes carry none.
fn updated(ids: &Identities, tenant: &str, e: &mut ImageChatUpdated) {
    if let ChatChange::CommentAdded { comment: c } = &mut e.change {
        comment(ids, tenant, c);
    }
}

/// Whether `frame` may carry a signed user's id: `false` means it certainly does not, and goes
/// to anonymous viewers unchanged (most frames: presence, deletes, anonymous authors).
pub fn may_name_signed_users(frame: &str) -> bool {
    frame.contains("\"sso:")
}

/// A published frame (an event or a `batch`) as an anonymous viewer receives it: `None` when it
/// carries no signed user's id (the shared bytes go out unchanged, the usual case), else the
/// frame re-encoded with pseudonyms.
pub fn frame(ids: &Identities, tenant: &str, frame: &str) -> Option<String> {
    // Cheap test first: most frames (presence, deletes, anonymous authors) carry none.
    if !may_name_signed_users(frame) {
        return None;
    }
    let mut message = ServerMessage::from_json(frame).ok()?;
    match &mut message {
        ServerMessage::Batch(batch) => {
            for e in &mut batch.events {
                event(ids, tenant, e);
            }
        }
        ServerMessage::NewImageChat(e) | ServerMessage::NewTextChat(e) => new_chat(ids, tenant, e),
        ServerMessage::ImageChatUpdated(e) | ServerMessage::UpdatedTextChat(e) => {
            updated(ids, tenant, e)
        }
        // Published frames are events, batches and presence; nothing else carries authors.
        _ => return None,
    }
    Some(message.to_json())
}

#[cfg(test)]
mod tests {
    use image_chat_protocol::{
        Anchor, Batch, BroadcastId, Chat, ChatId, CommentId, ImageChatUpdated, NewImageChat, User,
    };

    use super::*;

    fn comment_by(id: &str) -> Comment {
        Comment {
            id: CommentId::new("c"),
            author: User {
                id: id.into(),
                name: "N".into(),
                avatar_url: None,
                is_moderator: false,
                signed_in: false,
            },
            text: "t".into(),
            created_at: 1,
            edited_at: None,
        }
    }

    #[test]
    fn frames_with_signed_authors_are_rewritten_and_others_left_alone() {
        let ids = Identities::new([3; 32]);
        let pseudonym = ids.pseudonym("t", "sso:ada@example.com").expect("signed");
        let created = Event::NewImageChat(NewImageChat {
            seq: 1,
            epoch: 2,
            broadcast_id: BroadcastId::new("b"),
            chat: Chat {
                id: ChatId::new("c"),
                anchor: Anchor::point(0.5, 0.5),
                comments: vec![comment_by("sso:ada@example.com")],
                resolved: false,
            },
        });
        let replied = Event::ImageChatUpdated(ImageChatUpdated {
            seq: 2,
            epoch: 2,
            broadcast_id: BroadcastId::new("b2"),
            chat_id: ChatId::new("c"),
            change: ChatChange::CommentAdded {
                comment: comment_by("sso:ada@example.com"),
            },
        });
        for message in [
            ServerMessage::from(created.clone()),
            ServerMessage::Batch(Batch {
                events: vec![created, replied],
            }),
        ] {
            let rewritten = frame(&ids, "t", &message.to_json()).expect("rewritten");
            assert!(!rewritten.contains("ada@example.com"), "{rewritten}");
            assert!(rewritten.contains(&pseudonym), "{rewritten}");
        }
        let anonymous = ServerMessage::from(Event::NewImageChat(NewImageChat {
            seq: 1,
            epoch: 2,
            broadcast_id: BroadcastId::new("b"),
            chat: Chat {
                id: ChatId::new("c"),
                anchor: Anchor::point(0.5, 0.5),
                comments: vec![comment_by("anon:0123")],
                resolved: false,
            },
        }));
        assert_eq!(frame(&ids, "t", &anonymous.to_json()), None);
        assert_eq!(frame(&ids, "t", r#"{"type":"presence","online":3}"#), None);
    }

    #[test]
    fn the_memo_rewrites_a_shared_frame_once() {
        let ids = Identities::new([3; 32]);
        let memo = FrameMemo::default();
        let event = Event::ImageChatUpdated(ImageChatUpdated {
            seq: 2,
            epoch: 2,
            broadcast_id: BroadcastId::new("b2"),
            chat_id: ChatId::new("c"),
            change: ChatChange::CommentAdded {
                comment: comment_by("sso:ada@example.com"),
            },
        });
        let published = Utf8Bytes::from(ServerMessage::from(event).to_json());
        let first = memo.view(&ids, "t", published.clone());
        let second = memo.view(&ids, "t", published.clone());
        assert!(!first.as_str().contains("ada@example.com"));
        // The same buffer, not a second rewrite.
        assert_eq!(first.as_str().as_ptr(), second.as_str().as_ptr());
        let presence = Utf8Bytes::from_static(r#"{"type":"presence","online":3}"#);
        assert_eq!(
            memo.view(&ids, "t", presence.clone()).as_str().as_ptr(),
            presence.as_str().as_ptr()
        );
    }
}
