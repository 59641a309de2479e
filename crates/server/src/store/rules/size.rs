//! What a discussion and a comment weigh: the bytes they add to an image's snapshot (at most;
//! an opening comment is weighed with the `id` the wire leaves out).
//!
//! Every store keeps, per image, the sum of these weights and refuses a commit that would take
//! it past the image's byte limit (`image-full`), the tenant's quota or the server's
//! (`quota-exceeded`). The weights are the exact lengths of the JSON a snapshot carries (plus
//! one byte for the separating comma), so the byte limit bounds every snapshot and every
//! `welcome` of the image: a snapshot's `{"chats":[…]}` is at most [`SNAPSHOT_OVERHEAD_BYTES`]
//! more than the image's weight. Weights depend only on what is stored, never on the time of
//! the computation, so an image's total stays exact as it is edited and pruned.

use image_chat_protocol::{Anchor, Chat, ChatId, Comment};

/// Bytes a snapshot's JSON carries beyond the weights of its discussions: `{"chats":[]}`.
pub const SNAPSHOT_OVERHEAD_BYTES: u64 = 12;

/// Bytes a discussion adds besides its comments: its JSON with an empty thread (and its
/// `resolved` flag, written only when set), and a comma.
pub fn chat_bytes(id: &ChatId, anchor: &Anchor, resolved: bool) -> u64 {
    let shell = Chat {
        id: id.clone(),
        anchor: anchor.clone(),
        comments: Vec::new(),
        resolved,
    };
    json_len(&shell) + 1
}

/// Bytes a comment adds to its thread: its JSON and a comma.
pub fn comment_bytes(comment: &Comment) -> u64 {
    json_len(comment) + 1
}

fn json_len<T: serde::Serialize>(value: &T) -> u64 {
    // Counting writer: nothing is allocated. Plain derived structs cannot fail to encode.
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use image_chat_protocol::{CommentId, Snapshot, User};

    use super::*;

    #[test]
    fn weights_bound_the_snapshot_exactly() {
        let comment = |id: &str, text: &str| Comment {
            id: CommentId::new(id),
            author: User {
                id: "sso:a\"b".into(),
                name: "Zoë".into(),
                avatar_url: None,
                is_moderator: false,
                signed_in: false,
            },
            text: text.into(),
            created_at: 1,
            edited_at: Some(2),
        };
        // A point, a region, a resolved discussion: every shell shape.
        let chats: Vec<Chat> = (0..3)
            .map(|i| Chat {
                id: ChatId::new(format!("chat{i}")),
                anchor: if i == 1 {
                    Anchor::region(0.125, 0.25, 0.5, 0.33333)
                } else {
                    Anchor::point(0.5, 0.25)
                },
                comments: (0..i + 1)
                    .map(|j| comment(&format!("c{i}{j}"), "tab\t\"quoted\" ✓"))
                    .collect(),
                resolved: i == 2,
            })
            .collect();
        let weight: u64 = chats
            .iter()
            .map(|c| {
                chat_bytes(&c.id, &c.anchor, c.resolved)
                    + c.comments.iter().map(comment_bytes).sum::<u64>()
            })
            .sum();
        let json = serde_json::to_string(&Snapshot { chats }).expect("encode");
        assert!(json.len() as u64 <= weight + SNAPSHOT_OVERHEAD_BYTES);
        // Close: each discussion's and each comment's comma is counted, and the JSON writes
        // one fewer than there are items in each list (1 + 3 fewer for 3 discussions); an
        // opening comment is counted with its `"id":"…",`, which the wire leaves out.
        let opening_ids: u64 = (0..3)
            .map(|i| format!(r#""id":"c{i}0","#).len() as u64)
            .sum();
        assert_eq!(
            json.len() as u64 + 1 + 3 + opening_ids,
            weight + SNAPSHOT_OVERHEAD_BYTES
        );
        assert_eq!(
            serde_json::to_string(&Snapshot::default())
                .expect("encode")
                .len() as u64,
            SNAPSHOT_OVERHEAD_BYTES
        );
    }
}
