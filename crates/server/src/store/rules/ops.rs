//! One rule per op: what it requires of the current state, what it writes, the event it
//! becomes. Each runs inside [`super::commit`]'s transaction, after the image's row is locked,
//! and returns early with a [`Rejection`] when the op does not fit (the caller then rolls back
//! everything, including anything already written).
//!
//! Ids: the opening comment of a discussion is stored under the discussion's id (the protocol
//! gives it that id), so one id space per image covers discussions and comments: a new
//! discussion id must be free as a comment id and vice versa. Ids used on other images never
//! count. Deleted discussions and replies leave no tombstone, so their ids become free again (ids are
//! client UUIDs: reuse only happens through a retry past retention, which is then refused or
//! applied as new).

use image_chat_protocol::{
    AddComment, Anchor, Chat, ChatChange, ChatId, Comment, CommentId, CreateChat, DeleteChat,
    DeleteComment, DeletedImageChat, EditComment, Event, ImageChatUpdated, MoveChat, NewImageChat,
    Op, ResolveChat, SubjectKind, User,
};

use super::super::{CommitLimits, Rejection, StoreError};
use super::limits::{add_bytes, check_bytes};
use super::size::{chat_bytes, comment_bytes};
use super::tx::{ImageRow, NewChat, NewComment, ReadTx, StoredChat, StoredComment, WriteTx};
use super::{from_json, signed, to_json};

/// What every op rule knows besides the op.
#[derive(Clone, Copy, Debug)]
pub struct OpContext<'a> {
    /// The tenant owning the image (quotas are per tenant).
    pub tenant: &'a str,
    /// Image or page: which anchors the op may carry, and which names its event takes.
    pub kind: SubjectKind,
    /// The image's row, locked.
    pub image: ImageRow,
    /// The `seq` this op gets if it is applied.
    pub seq: u64,
    /// Who sends the op.
    pub actor: &'a User,
    /// Server time (ms since the Unix epoch).
    pub now_ms: u64,
    /// Size limits to respect.
    pub limits: CommitLimits,
}

/// Checks `op` against the state and writes its change, returning its event.
pub async fn apply<T: WriteTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    op: &Op,
) -> Result<Event, StoreError> {
    // The codec's checks come first in a session; this keeps every caller of the rules to
    // text on pages and points or regions on images.
    if op.check_subject(cx.kind).is_err() {
        return Err(Rejection::WrongAnchorKind.into());
    }
    match op {
        Op::CreateChat(op) => create_chat(tx, cx, op).await,
        Op::AddComment(op) => add_comment(tx, cx, op).await,
        Op::EditComment(op) => edit_comment(tx, cx, op).await,
        Op::DeleteChat(op) => delete_chat(tx, cx, op).await,
        Op::DeleteComment(op) => delete_comment(tx, cx, op).await,
        Op::ResolveChat(op) => {
            let chat = managed_chat(tx, cx, &op.chat_id).await?;
            let anchor = from_json("anchor", &chat.anchor)?;
            let change = ChatChange::Resolved {
                resolved: op.resolved,
            };
            reshape_chat(tx, cx, op, &chat, anchor, op.resolved, change).await
        }
        Op::MoveChat(op) => {
            let chat = managed_chat(tx, cx, &op.chat_id).await?;
            let anchor = op.anchor.canonical();
            let change = ChatChange::Moved {
                anchor: anchor.clone(),
            };
            reshape_chat(tx, cx, op, &chat, anchor, chat.resolved, change).await
        }
    }
}

/// A new discussion and its opening comment.
async fn create_chat<T: WriteTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    op: &CreateChat,
) -> Result<Event, StoreError> {
    let image = cx.image.id;
    // The opening comment is stored under the chat id: the id must be free in both tables (a
    // reply may have taken it as a comment id).
    if id_taken(tx, image, op.chat_id.as_str()).await? {
        return Err(Rejection::DuplicateId.into());
    }
    if cx.limits.max_chats_per_image > 0
        && tx.count_chats(image).await? >= u64::from(cx.limits.max_chats_per_image)
    {
        return Err(Rejection::LimitExceeded.into());
    }
    let anchor: Anchor = op.anchor.canonical();
    let comment = Comment {
        id: op.chat_id.opening_comment(),
        author: cx.actor.clone(),
        text: op.text.clone(),
        created_at: cx.now_ms,
        edited_at: None,
    };
    let shell = chat_bytes(&op.chat_id, &anchor, false);
    let delta = signed(shell + comment_bytes(&comment));
    check_bytes(tx, cx, delta).await?;
    tx.insert_chat(
        image,
        NewChat {
            chat_id: op.chat_id.as_str(),
            anchor: &to_json(&anchor)?,
            author_id: &cx.actor.id,
            created_seq: cx.seq,
            bytes: shell,
        },
    )
    .await?;
    insert_comment(tx, cx, &op.chat_id, &comment).await?;
    add_bytes(tx, cx, delta).await?;
    Ok(Event::created(
        cx.kind,
        NewImageChat {
            seq: cx.seq,
            epoch: cx.image.epoch,
            broadcast_id: op.broadcast_id.clone(),
            chat: Chat {
                id: op.chat_id.clone(),
                anchor,
                comments: vec![comment],
                resolved: false,
            },
        },
    ))
}

/// A reply in an existing discussion.
async fn add_comment<T: WriteTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    op: &AddComment,
) -> Result<Event, StoreError> {
    let image = cx.image.id;
    chat_author(tx, image, &op.chat_id).await?;
    // Every live chat id is also a comment id (its opening comment's, written in the same
    // transaction), so this refuses a reply reusing a chat id too.
    if tx.comment_exists(image, op.comment_id.as_str()).await? {
        return Err(Rejection::DuplicateId.into());
    }
    if cx.limits.max_comments_per_thread > 0
        && tx.count_comments(image, op.chat_id.as_str()).await?
            >= u64::from(cx.limits.max_comments_per_thread)
    {
        return Err(Rejection::LimitExceeded.into());
    }
    let comment = Comment {
        id: op.comment_id.clone(),
        author: cx.actor.clone(),
        text: op.text.clone(),
        created_at: cx.now_ms,
        edited_at: None,
    };
    let delta = signed(comment_bytes(&comment));
    check_bytes(tx, cx, delta).await?;
    insert_comment(tx, cx, &op.chat_id, &comment).await?;
    add_bytes(tx, cx, delta).await?;
    let change = ChatChange::CommentAdded { comment };
    Ok(updated(cx, op.broadcast_id.clone(), &op.chat_id, change))
}

/// New text for a comment, by its author or a moderator.
async fn edit_comment<T: WriteTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    op: &EditComment,
) -> Result<Event, StoreError> {
    let image = cx.image.id;
    let stored = changeable_comment(tx, cx, &op.chat_id, &op.comment_id).await?;
    let edited = Comment {
        id: op.comment_id.clone(),
        author: from_json("comment author", &stored.author)?,
        text: op.text.clone(),
        created_at: stored.created_at,
        edited_at: Some(cx.now_ms),
    };
    let new_bytes = comment_bytes(&edited);
    let delta = signed(new_bytes) - signed(stored.bytes);
    check_bytes(tx, cx, delta).await?;
    tx.update_comment(
        image,
        op.comment_id.as_str(),
        &op.text,
        cx.now_ms,
        new_bytes,
    )
    .await?;
    add_bytes(tx, cx, delta).await?;
    let change = ChatChange::CommentEdited {
        comment_id: op.comment_id.clone(),
        text: op.text.clone(),
        edited_at: cx.now_ms,
    };
    Ok(updated(cx, op.broadcast_id.clone(), &op.chat_id, change))
}

/// A discussion and all its comments removed, by its author or a moderator.
async fn delete_chat<T: WriteTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    op: &DeleteChat,
) -> Result<Event, StoreError> {
    let image = cx.image.id;
    let author_id = chat_author(tx, image, &op.chat_id).await?;
    if !may_change(cx.actor, &author_id) {
        return Err(Rejection::Forbidden.into());
    }
    let freed = tx.chat_weight(image, op.chat_id.as_str()).await?;
    tx.delete_chat(image, op.chat_id.as_str()).await?;
    add_bytes(tx, cx, -signed(freed)).await?;
    Ok(Event::deleted(
        cx.kind,
        DeletedImageChat {
            seq: cx.seq,
            epoch: cx.image.epoch,
            broadcast_id: op.broadcast_id.clone(),
            chat_id: op.chat_id.clone(),
        },
    ))
}

/// One reply removed, by its author or a moderator. The opening comment is the discussion
/// (its author, its time): it goes only with it (`delete-chat`), so naming it is `forbidden`.
async fn delete_comment<T: WriteTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    op: &DeleteComment,
) -> Result<Event, StoreError> {
    let stored = changeable_comment(tx, cx, &op.chat_id, &op.comment_id).await?;
    if op.comment_id == op.chat_id.opening_comment() {
        return Err(Rejection::Forbidden.into());
    }
    tx.delete_comment(cx.image.id, op.comment_id.as_str())
        .await?;
    add_bytes(tx, cx, -signed(stored.bytes)).await?;
    let change = ChatChange::CommentDeleted {
        comment_id: op.comment_id.clone(),
    };
    Ok(updated(cx, op.broadcast_id.clone(), &op.chat_id, change))
}

/// The comment `comment_id` of the discussion `chat_id`, if the actor may change it
/// (`unknown-chat`, `unknown-comment`, `forbidden` otherwise, in that order).
async fn changeable_comment<T: ReadTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    chat_id: &ChatId,
    comment_id: &CommentId,
) -> Result<StoredComment, StoreError> {
    chat_author(tx, cx.image.id, chat_id).await?;
    let stored = tx
        .comment(cx.image.id, chat_id.as_str(), comment_id.as_str())
        .await?
        .ok_or(Rejection::UnknownComment)?;
    if !may_change(cx.actor, &stored.author_id) {
        return Err(Rejection::Forbidden.into());
    }
    Ok(stored)
}

/// What the discussion-wide ops (resolve, move) share: they name a discussion of this image,
/// which only its author or a moderator may change.
trait ChatOp {
    fn broadcast_id(&self) -> &image_chat_protocol::BroadcastId;
    fn chat_id(&self) -> &ChatId;
}

impl ChatOp for ResolveChat {
    fn broadcast_id(&self) -> &image_chat_protocol::BroadcastId {
        &self.broadcast_id
    }
    fn chat_id(&self) -> &ChatId {
        &self.chat_id
    }
}

impl ChatOp for MoveChat {
    fn broadcast_id(&self) -> &image_chat_protocol::BroadcastId {
        &self.broadcast_id
    }
    fn chat_id(&self) -> &ChatId {
        &self.chat_id
    }
}

/// The discussion `chat_id`, if the actor may manage it (`unknown-chat`, `forbidden`
/// otherwise).
async fn managed_chat<T: ReadTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    chat_id: &ChatId,
) -> Result<StoredChat, StoreError> {
    let chat = tx
        .chat(cx.image.id, chat_id.as_str())
        .await?
        .ok_or(Rejection::UnknownChat)?;
    if !may_change(cx.actor, &chat.author_id) {
        return Err(Rejection::Forbidden.into());
    }
    Ok(chat)
}

/// Stores a discussion's new anchor and resolved state (weighed again: a longer anchor or the
/// `resolved` flag grows the image, within its limits) and returns the event saying so.
async fn reshape_chat<T: WriteTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    op: &impl ChatOp,
    chat: &StoredChat,
    anchor: Anchor,
    resolved: bool,
    change: ChatChange,
) -> Result<Event, StoreError> {
    let bytes = chat_bytes(op.chat_id(), &anchor, resolved);
    let delta = signed(bytes) - signed(chat.bytes);
    check_bytes(tx, cx, delta).await?;
    tx.update_chat(
        cx.image.id,
        op.chat_id().as_str(),
        &to_json(&anchor)?,
        resolved,
        bytes,
    )
    .await?;
    add_bytes(tx, cx, delta).await?;
    Ok(updated(cx, op.broadcast_id().clone(), op.chat_id(), change))
}

/// An `image-chat-updated` (on a page `updated-text-chat`) event of this commit.
fn updated(
    cx: &OpContext<'_>,
    broadcast_id: image_chat_protocol::BroadcastId,
    chat_id: &ChatId,
    change: ChatChange,
) -> Event {
    Event::updated(
        cx.kind,
        ImageChatUpdated {
            seq: cx.seq,
            epoch: cx.image.epoch,
            broadcast_id,
            chat_id: chat_id.clone(),
            change,
        },
    )
}

/// Whether `id` is taken on this image, as a discussion id or as a comment id (one id space
/// covers both, see the module doc).
async fn id_taken<T: ReadTx>(tx: &mut T, image: i64, id: &str) -> Result<bool, StoreError> {
    Ok(tx.chat_author(image, id).await?.is_some() || tx.comment_exists(image, id).await?)
}

/// The author id of `chat` if it exists on this image; `UnknownChat` otherwise (including when
/// the same id exists on another image: ops are bound to their connection's image).
async fn chat_author<T: ReadTx>(
    tx: &mut T,
    image: i64,
    chat: &ChatId,
) -> Result<String, StoreError> {
    tx.chat_author(image, chat.as_str())
        .await?
        .ok_or(Rejection::UnknownChat.into())
}

/// Only the author or a moderator edits, deletes, resolves or moves.
fn may_change(actor: &User, author_id: &str) -> bool {
    actor.is_moderator || actor.id == author_id
}

async fn insert_comment<T: WriteTx>(
    tx: &mut T,
    cx: &OpContext<'_>,
    chat: &ChatId,
    comment: &Comment,
) -> Result<(), StoreError> {
    tx.insert_comment(
        cx.image.id,
        NewComment {
            comment_id: comment.id.as_str(),
            chat_id: chat.as_str(),
            seq: cx.seq,
            author_id: &comment.author.id,
            author: &to_json(&comment.author)?,
            text: &comment.text,
            created_at: comment.created_at,
            edited_at: comment.edited_at,
            bytes: comment_bytes(comment),
        },
    )
    .await
}
