//! Server → client messages: the session's `welcome`, the broadcast events (fixed names
//! `new-image-chat`, `image-chat-updated`, `deleted-image-chat` on an image, `new-text-chat`,
//! `updated-text-chat`, `deleted-text-chat` on a page; the same payloads), `batch`, per-op
//! `ack` / `error`, `presence`, `lock` and `pong`.
//!
//! Clients must ignore unknown fields, so the server may add information without a version bump.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{BroadcastId, ChatId, CommentId, SubjectKind};
use crate::model::{Anchor, Chat, Comment, Position, Snapshot, User};

/// Every message the server sends, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// Answer to `hello`.
    Welcome(Welcome),
    /// A discussion was created.
    #[serde(rename = "new-image-chat")]
    NewImageChat(NewImageChat),
    /// A discussion changed (a reply added, edited or deleted; resolved or reopened; moved).
    #[serde(rename = "image-chat-updated")]
    ImageChatUpdated(ImageChatUpdated),
    /// A discussion was removed.
    #[serde(rename = "deleted-image-chat")]
    DeletedImageChat(DeletedImageChat),
    /// A discussion on a page's text was created.
    #[serde(rename = "new-text-chat")]
    NewTextChat(NewImageChat),
    /// A discussion on a page's text changed.
    #[serde(rename = "updated-text-chat")]
    UpdatedTextChat(ImageChatUpdated),
    /// A discussion on a page's text was removed.
    #[serde(rename = "deleted-text-chat")]
    DeletedTextChat(DeletedImageChat),
    /// Several events, in `seq` order, in one frame (sent under high activity).
    Batch(Batch),
    /// An op was committed (durably) with this `seq`.
    Ack(Ack),
    /// A frame or op was refused.
    Error(ErrorFrame),
    /// How many connections currently view this image.
    Presence(Presence),
    /// A moderator locked the image read-only, or unlocked it.
    Lock(Lock),
    /// Answer to `ping`.
    Pong(Pong),
}

/// The server's answer to `hello`: who you are, where the log stands, and what you missed.
///
/// When `recovered` is true, `events` holds exactly the events after the client's resume
/// position (possibly none) and `snapshot` is absent. When false (first connection, a gap older
/// than the server keeps, or a different `epoch`), `snapshot` holds the whole current state and
/// the client must replace what it shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    /// The person as the server identified them.
    pub you: User,
    /// Signed anonymous identity to present in later `hello`s (anonymous sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Position after applying `events` or `snapshot`.
    pub position: Position,
    /// Whether `events` continue the client's resume position.
    pub recovered: bool,
    /// Missed events, in `seq` order (only when `recovered`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Full state (only when not `recovered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    /// Connections currently viewing this image, this one included.
    pub online: u32,
    /// The person may read but not write (the tenant's policy or their signed user data); ops
    /// would be refused with `forbidden`, so clients hide the controls. Omitted when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// A moderator locked the image read-only: ops from anyone but a moderator would be refused
    /// with `image-locked`, so clients hide the controls (moderators keep theirs). Later changes
    /// arrive as `lock` frames. Omitted when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
}

/// `new-image-chat` (and, on a page, `new-text-chat`): a discussion was created; `chat` holds
/// its anchor and first comment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewImageChat {
    /// Position of this change in the image's log.
    pub seq: u64,
    /// The log's epoch.
    pub epoch: u32,
    /// The originating op's id.
    pub broadcast_id: BroadcastId,
    /// The new discussion.
    pub chat: Chat,
}

/// `image-chat-updated` (and, on a page, `updated-text-chat`): one change to a discussion (not
/// the whole thread).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageChatUpdated {
    /// Position of this change in the image's log.
    pub seq: u64,
    /// The log's epoch.
    pub epoch: u32,
    /// The originating op's id.
    pub broadcast_id: BroadcastId,
    /// The discussion changed.
    pub chat_id: ChatId,
    /// What changed.
    pub change: ChatChange,
}

/// What changed in an `image-chat-updated` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChatChange {
    /// A reply was appended to the thread.
    CommentAdded {
        /// The new comment.
        comment: Comment,
    },
    /// A comment's text was replaced.
    #[serde(rename_all = "camelCase")]
    CommentEdited {
        /// Which comment.
        comment_id: CommentId,
        /// Its new text.
        text: String,
        /// When the edit was committed (ms since the Unix epoch).
        edited_at: u64,
    },
    /// A reply was removed from the thread (never the opening comment).
    #[serde(rename_all = "camelCase")]
    CommentDeleted {
        /// Which reply.
        comment_id: CommentId,
    },
    /// The discussion was resolved (`true`) or reopened (`false`).
    Resolved {
        /// The new state.
        resolved: bool,
    },
    /// The discussion's anchor changed (its marker moved, its region moved or reshaped).
    Moved {
        /// The new anchor, canonical.
        anchor: Anchor,
    },
}

/// `deleted-image-chat` (and, on a page, `deleted-text-chat`): a discussion and its thread are
/// gone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedImageChat {
    /// Position of this change in the image's log.
    pub seq: u64,
    /// The log's epoch.
    pub epoch: u32,
    /// The originating op's id.
    pub broadcast_id: BroadcastId,
    /// The discussion removed.
    pub chat_id: ChatId,
}

/// One committed change, as broadcast. Serializes exactly like the matching [`ServerMessage`]
/// variant, so an event can be stored once and sent as a frame of its own or inside a `batch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// See [`NewImageChat`].
    #[serde(rename = "new-image-chat")]
    NewImageChat(NewImageChat),
    /// See [`ImageChatUpdated`].
    #[serde(rename = "image-chat-updated")]
    ImageChatUpdated(ImageChatUpdated),
    /// See [`DeletedImageChat`].
    #[serde(rename = "deleted-image-chat")]
    DeletedImageChat(DeletedImageChat),
    /// `new-text-chat`: [`NewImageChat`] on a page.
    #[serde(rename = "new-text-chat")]
    NewTextChat(NewImageChat),
    /// `updated-text-chat`: [`ImageChatUpdated`] on a page.
    #[serde(rename = "updated-text-chat")]
    UpdatedTextChat(ImageChatUpdated),
    /// `deleted-text-chat`: [`DeletedImageChat`] on a page.
    #[serde(rename = "deleted-text-chat")]
    DeletedTextChat(DeletedImageChat),
}

impl Event {
    /// `new-image-chat` or `new-text-chat`, by the kind of the subject whose log it is in.
    pub fn created(kind: SubjectKind, e: NewImageChat) -> Self {
        match kind {
            SubjectKind::Image => Event::NewImageChat(e),
            SubjectKind::Page => Event::NewTextChat(e),
        }
    }

    /// `image-chat-updated` or `updated-text-chat`.
    pub fn updated(kind: SubjectKind, e: ImageChatUpdated) -> Self {
        match kind {
            SubjectKind::Image => Event::ImageChatUpdated(e),
            SubjectKind::Page => Event::UpdatedTextChat(e),
        }
    }

    /// `deleted-image-chat` or `deleted-text-chat`.
    pub fn deleted(kind: SubjectKind, e: DeletedImageChat) -> Self {
        match kind {
            SubjectKind::Image => Event::DeletedImageChat(e),
            SubjectKind::Page => Event::DeletedTextChat(e),
        }
    }

    /// Whether this is an event of an image's log or of a page's.
    pub fn subject_kind(&self) -> SubjectKind {
        match self {
            Event::NewImageChat(_) | Event::ImageChatUpdated(_) | Event::DeletedImageChat(_) => {
                SubjectKind::Image
            }
            Event::NewTextChat(_) | Event::UpdatedTextChat(_) | Event::DeletedTextChat(_) => {
                SubjectKind::Page
            }
        }
    }

    /// Position of this change in its image's (or page's) log.
    pub fn seq(&self) -> u64 {
        match self {
            Event::NewImageChat(e) | Event::NewTextChat(e) => e.seq,
            Event::ImageChatUpdated(e) | Event::UpdatedTextChat(e) => e.seq,
            Event::DeletedImageChat(e) | Event::DeletedTextChat(e) => e.seq,
        }
    }

    /// The log's epoch.
    pub fn epoch(&self) -> u32 {
        match self {
            Event::NewImageChat(e) | Event::NewTextChat(e) => e.epoch,
            Event::ImageChatUpdated(e) | Event::UpdatedTextChat(e) => e.epoch,
            Event::DeletedImageChat(e) | Event::DeletedTextChat(e) => e.epoch,
        }
    }

    /// The position this event moves its log to.
    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch(),
            seq: self.seq(),
        }
    }

    /// The originating op's id.
    pub fn broadcast_id(&self) -> &BroadcastId {
        match self {
            Event::NewImageChat(e) | Event::NewTextChat(e) => &e.broadcast_id,
            Event::ImageChatUpdated(e) | Event::UpdatedTextChat(e) => &e.broadcast_id,
            Event::DeletedImageChat(e) | Event::DeletedTextChat(e) => &e.broadcast_id,
        }
    }

    /// The discussion concerned.
    pub fn chat_id(&self) -> &ChatId {
        match self {
            Event::NewImageChat(e) | Event::NewTextChat(e) => &e.chat.id,
            Event::ImageChatUpdated(e) | Event::UpdatedTextChat(e) => &e.chat_id,
            Event::DeletedImageChat(e) | Event::DeletedTextChat(e) => &e.chat_id,
        }
    }

    /// Encodes as a JSON text frame (the same bytes as the equivalent [`ServerMessage`]).
    pub fn to_json(&self) -> String {
        // Plain derived structs with string keys: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl From<Event> for ServerMessage {
    fn from(event: Event) -> Self {
        match event {
            Event::NewImageChat(e) => ServerMessage::NewImageChat(e),
            Event::ImageChatUpdated(e) => ServerMessage::ImageChatUpdated(e),
            Event::DeletedImageChat(e) => ServerMessage::DeletedImageChat(e),
            Event::NewTextChat(e) => ServerMessage::NewTextChat(e),
            Event::UpdatedTextChat(e) => ServerMessage::UpdatedTextChat(e),
            Event::DeletedTextChat(e) => ServerMessage::DeletedTextChat(e),
        }
    }
}

/// Several events in one frame, in `seq` order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The events.
    pub events: Vec<Event>,
}

/// An op was committed durably as change `seq` (or had been already: retries of the same
/// `broadcastId` are acknowledged again with the original `seq`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// The op acknowledged.
    pub broadcast_id: BroadcastId,
    /// The change it became.
    pub seq: u64,
}

/// A refused frame or op. Nothing was committed for it; the connection stays open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorFrame {
    /// The refused op, when the frame named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast_id: Option<BroadcastId>,
    /// Machine-readable reason; clients translate it for people.
    pub code: ErrorCode,
    /// A short English explanation for developers (never internal details).
    pub message: String,
}

/// Live viewer count of the connection's image (or page).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Connections currently viewing the image.
    pub online: u32,
}

/// Whether the connection's image is locked read-only (sent to every viewer when a moderator
/// locks or unlocks it; the `welcome` carries the state at connection time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Locked: only moderators may change the image's discussions.
    pub locked: bool,
}

/// Answer to `ping`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The ping's nonce.
    pub nonce: u64,
}

impl ServerMessage {
    /// The event this message is, if it is one (of any subject kind); the message itself
    /// otherwise.
    // The `Err` side hands the same message back unchanged (as `ClientMessage::into_op`).
    #[allow(clippy::result_large_err)]
    pub fn into_event(self) -> Result<Event, ServerMessage> {
        match self {
            ServerMessage::NewImageChat(e) => Ok(Event::NewImageChat(e)),
            ServerMessage::ImageChatUpdated(e) => Ok(Event::ImageChatUpdated(e)),
            ServerMessage::DeletedImageChat(e) => Ok(Event::DeletedImageChat(e)),
            ServerMessage::NewTextChat(e) => Ok(Event::NewTextChat(e)),
            ServerMessage::UpdatedTextChat(e) => Ok(Event::UpdatedTextChat(e)),
            ServerMessage::DeletedTextChat(e) => Ok(Event::DeletedTextChat(e)),
            other => Err(other),
        }
    }

    /// The events this message carries, in order: a batch's, or the event it is; the message
    /// itself if it carries none. A client handles a batch exactly as its events one by one.
    #[allow(clippy::result_large_err)]
    pub fn into_events(self) -> Result<Vec<Event>, ServerMessage> {
        match self {
            ServerMessage::Batch(batch) => Ok(batch.events),
            other => other.into_event().map(|event| vec![event]),
        }
    }

    /// Encodes as a JSON text frame.
    pub fn to_json(&self) -> String {
        // Plain derived structs with string keys: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Encodes a `welcome` whose snapshot is already encoded as JSON (`snapshot_json`, the
    /// encoding of a [`Snapshot`]): the server encodes an image's snapshot once per position
    /// and shares those bytes between every reader. `welcome.snapshot` is ignored. Decodes to
    /// the same value as the `welcome` holding that snapshot (only the key order differs).
    pub fn welcome_with_encoded_snapshot(welcome: &Welcome, snapshot_json: &str) -> String {
        let head = ServerMessage::Welcome(Welcome {
            snapshot: None,
            events: Vec::new(),
            you: welcome.you.clone(),
            token: welcome.token.clone(),
            position: welcome.position,
            recovered: welcome.recovered,
            online: welcome.online,
            read_only: welcome.read_only,
            locked: welcome.locked,
        })
        .to_json();
        // A derived struct always encodes as one object: `{…}`.
        let open = head.strip_suffix('}').unwrap_or(&head);
        [open, ",\"snapshot\":", snapshot_json, "}"].concat()
    }

    /// Decodes a frame from the server.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}
