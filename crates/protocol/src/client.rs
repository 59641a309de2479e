//! Client → server messages. A connection starts with exactly one `hello`; after the server's
//! `welcome` it may send ops (each tagged with a fresh `broadcastId`) and pings.

use serde::{Deserialize, Serialize};

use crate::ids::{BroadcastId, ChatId, CommentId, ImageId, PageId, Subject, SubjectKind, TenantId};
use crate::limits::{ValidationError, validate_name, validate_text};
use crate::model::{Anchor, Position};

/// Every message a client may send, tagged by `type`. Unknown fields are refused (here for the
/// struct variants such as `ping`; the newtype variants' structs refuse them themselves).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Opens the session: which tenant and image, who is asking, and where to resume.
    Hello(Hello),
    /// Starts a discussion: a marker plus its first comment.
    CreateChat(CreateChat),
    /// Replies in a discussion.
    AddComment(AddComment),
    /// Changes the text of one's own comment.
    EditComment(EditComment),
    /// Removes a whole discussion.
    DeleteChat(DeleteChat),
    /// Removes one reply.
    DeleteComment(DeleteComment),
    /// Marks a discussion resolved, or open again.
    ResolveChat(ResolveChat),
    /// Moves a discussion's marker (or reshapes its region).
    MoveChat(MoveChat),
    /// Changes the display name of an anonymous session, for this session's later ops (its
    /// reconnects carry the name in `hello`). Not an op: nothing is committed or acknowledged;
    /// an invalid name is refused with an `error` frame, a signed user's with `forbidden`
    /// (their name is the one the site signed).
    SetName {
        /// The new display name (see [`crate::limits::validate_name`]).
        name: String,
    },
    /// Locks the image read-only (`locked: true`) or unlocks it. Moderators only (anyone else
    /// gets `forbidden`). Not an op: nothing enters the image's log; every viewer (the sender
    /// included) receives a `lock` frame when the state changes.
    SetLock {
        /// The state asked for.
        locked: bool,
    },
    /// Keep-alive; answered by `pong` with the same nonce.
    Ping {
        /// Echoed back unchanged.
        nonce: u64,
    },
}

/// The first frame of every connection.
///
/// On the wire the subject is named by exactly one of `imageId` (an image) or `pageId` (a
/// page's text); a `hello` with both or neither is malformed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WireHello", into = "WireHello")]
pub struct Hello {
    /// Protocol version the client speaks ([`crate::PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The site's tenant.
    pub tenant_id: TenantId,
    /// The image or page this connection is about; the connection is bound to it.
    pub subject: Subject,
    /// Who the person is; `None` asks for an anonymous session where the tenant allows it.
    pub auth: Option<Auth>,
    /// The last position this client applied, to receive only what it missed.
    pub resume: Option<Position>,
}

/// `hello` as written: the subject as two optional keys, exactly one present.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireHello {
    protocol: u32,
    tenant_id: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image_id: Option<ImageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_id: Option<PageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<Auth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resume: Option<Position>,
}

/// A `hello` naming both an image and a page, or neither.
#[derive(Debug, thiserror::Error)]
#[error("hello names its subject with exactly one of `imageId` and `pageId`")]
pub struct SubjectFormError;

impl TryFrom<WireHello> for Hello {
    type Error = SubjectFormError;

    fn try_from(w: WireHello) -> Result<Self, Self::Error> {
        let subject = match (w.image_id, w.page_id) {
            (Some(image), None) => Subject::Image(image),
            (None, Some(page)) => Subject::Page(page),
            _ => return Err(SubjectFormError),
        };
        Ok(Hello {
            protocol: w.protocol,
            tenant_id: w.tenant_id,
            subject,
            auth: w.auth,
            resume: w.resume,
        })
    }
}

impl From<Hello> for WireHello {
    fn from(h: Hello) -> Self {
        let (image_id, page_id) = match h.subject {
            Subject::Image(id) => (Some(id), None),
            Subject::Page(id) => (None, Some(id)),
        };
        WireHello {
            protocol: h.protocol,
            tenant_id: h.tenant_id,
            image_id,
            page_id,
            auth: h.auth,
            resume: h.resume,
        }
    }
}

/// How a person identifies themselves in `hello`. Client-only, so unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Auth {
    /// An anonymous person with a display name. `token` is the server-signed anonymous identity
    /// from an earlier `welcome`, so the same person keeps authorship across reconnects and reloads.
    Anonymous {
        /// Display name.
        name: String,
        /// Server-issued identity token, if the client has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// A user signed by the site owner's backend (Secure SSO).
    #[serde(rename_all = "camelCase")]
    Sso {
        /// Base64 of the user JSON.
        user_data: String,
        /// Milliseconds since the Unix epoch at signing time.
        timestamp: u64,
        /// Hex HMAC-SHA256(secret, timestamp + userData).
        hash: String,
    },
}

/// Starts a discussion: a marker and its first comment. The discussion's id is client-generated
/// and is also the id of the first comment ([`ChatId::opening_comment`]), so the op carries no
/// comment id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChat {
    /// Fresh UUID v4 naming this op.
    pub broadcast_id: BroadcastId,
    /// Fresh UUID v4 for the discussion and its first comment.
    pub chat_id: ChatId,
    /// Where the marker goes.
    pub anchor: Anchor,
    /// The first comment's text.
    pub text: String,
}

/// Adds a reply to a discussion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddComment {
    /// Fresh UUID v4 naming this op.
    pub broadcast_id: BroadcastId,
    /// The discussion replied to.
    pub chat_id: ChatId,
    /// Fresh UUID for the reply.
    pub comment_id: CommentId,
    /// The reply's text.
    pub text: String,
}

/// Replaces the text of an existing comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditComment {
    /// Fresh UUID v4 naming this op.
    pub broadcast_id: BroadcastId,
    /// The discussion holding the comment.
    pub chat_id: ChatId,
    /// The comment to change (the chat's id for its opening comment).
    pub comment_id: CommentId,
    /// The new text.
    pub text: String,
}

/// Removes a discussion and all its comments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteChat {
    /// Fresh UUID v4 naming this op.
    pub broadcast_id: BroadcastId,
    /// The discussion to remove.
    pub chat_id: ChatId,
}

/// Removes one reply of a discussion. The opening comment cannot be removed on its own (it is
/// the discussion: its author, its time): a `delete-comment` naming it is `forbidden`, and
/// the discussion is removed with [`DeleteChat`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteComment {
    /// Fresh UUID v4 naming this op.
    pub broadcast_id: BroadcastId,
    /// The discussion holding the reply.
    pub chat_id: ChatId,
    /// The reply to remove.
    pub comment_id: CommentId,
}

/// Marks a discussion resolved (settled) or open again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolveChat {
    /// Fresh UUID v4 naming this op.
    pub broadcast_id: BroadcastId,
    /// The discussion.
    pub chat_id: ChatId,
    /// `true` resolves, `false` reopens.
    pub resolved: bool,
}

/// Puts a discussion on another anchor: its marker moved, its region moved or reshaped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoveChat {
    /// Fresh UUID v4 naming this op.
    pub broadcast_id: BroadcastId,
    /// The discussion.
    pub chat_id: ChatId,
    /// Where it goes now.
    pub anchor: Anchor,
}

/// A change a client asks for. Each becomes one committed, broadcast event.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// See [`CreateChat`].
    CreateChat(CreateChat),
    /// See [`AddComment`].
    AddComment(AddComment),
    /// See [`EditComment`].
    EditComment(EditComment),
    /// See [`DeleteChat`].
    DeleteChat(DeleteChat),
    /// See [`DeleteComment`].
    DeleteComment(DeleteComment),
    /// See [`ResolveChat`].
    ResolveChat(ResolveChat),
    /// See [`MoveChat`].
    MoveChat(MoveChat),
}

impl Op {
    /// The op's broadcast id.
    pub fn broadcast_id(&self) -> &BroadcastId {
        match self {
            Op::CreateChat(op) => &op.broadcast_id,
            Op::AddComment(op) => &op.broadcast_id,
            Op::EditComment(op) => &op.broadcast_id,
            Op::DeleteChat(op) => &op.broadcast_id,
            Op::DeleteComment(op) => &op.broadcast_id,
            Op::ResolveChat(op) => &op.broadcast_id,
            Op::MoveChat(op) => &op.broadcast_id,
        }
    }

    /// The discussion the op is about.
    pub fn chat_id(&self) -> &ChatId {
        match self {
            Op::CreateChat(op) => &op.chat_id,
            Op::AddComment(op) => &op.chat_id,
            Op::EditComment(op) => &op.chat_id,
            Op::DeleteChat(op) => &op.chat_id,
            Op::DeleteComment(op) => &op.chat_id,
            Op::ResolveChat(op) => &op.chat_id,
            Op::MoveChat(op) => &op.chat_id,
        }
    }

    /// The anchor the op puts a discussion on (`create-chat`, `move-chat`).
    pub fn anchor(&self) -> Option<&Anchor> {
        match self {
            Op::CreateChat(op) => Some(&op.anchor),
            Op::MoveChat(op) => Some(&op.anchor),
            _ => None,
        }
    }

    /// Checks that the op's anchor, if it has one, may be used on a subject of `kind`
    /// (`wrong-anchor-kind`): text on pages, points and regions on images.
    pub fn check_subject(&self, kind: SubjectKind) -> Result<(), ValidationError> {
        self.anchor().map_or(Ok(()), |a| a.check_kind(kind))
    }

    /// Checks every field against the shared limits (ids, anchors, text).
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.broadcast_id().validate()?;
        self.chat_id().validate()?;
        match self {
            Op::CreateChat(op) => {
                op.anchor.validate()?;
                validate_text(&op.text)
            }
            Op::AddComment(AddComment {
                comment_id, text, ..
            })
            | Op::EditComment(EditComment {
                comment_id, text, ..
            }) => {
                comment_id.validate()?;
                validate_text(text)
            }
            Op::DeleteComment(op) => op.comment_id.validate(),
            Op::MoveChat(op) => op.anchor.validate(),
            Op::DeleteChat(_) | Op::ResolveChat(_) => Ok(()),
        }
    }

    /// The op as the message that carries it.
    pub fn into_message(self) -> ClientMessage {
        match self {
            Op::CreateChat(op) => ClientMessage::CreateChat(op),
            Op::AddComment(op) => ClientMessage::AddComment(op),
            Op::EditComment(op) => ClientMessage::EditComment(op),
            Op::DeleteChat(op) => ClientMessage::DeleteChat(op),
            Op::DeleteComment(op) => ClientMessage::DeleteComment(op),
            Op::ResolveChat(op) => ClientMessage::ResolveChat(op),
            Op::MoveChat(op) => ClientMessage::MoveChat(op),
        }
    }
}

impl Hello {
    /// Checks ids and, for anonymous auth, the display name.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.tenant_id.validate()?;
        self.subject.validate()?;
        if let Some(Auth::Anonymous { name, .. }) = &self.auth {
            validate_name(name)?;
        }
        Ok(())
    }
}

impl ClientMessage {
    /// The op this message carries, if it is one.
    // The `Err` side hands the same message back unchanged (it is not an error value that gets
    // propagated); boxing it would cost every caller an allocation for nothing.
    #[allow(clippy::result_large_err)]
    pub fn into_op(self) -> Result<Op, Self> {
        match self {
            ClientMessage::CreateChat(op) => Ok(Op::CreateChat(op)),
            ClientMessage::AddComment(op) => Ok(Op::AddComment(op)),
            ClientMessage::EditComment(op) => Ok(Op::EditComment(op)),
            ClientMessage::DeleteChat(op) => Ok(Op::DeleteChat(op)),
            ClientMessage::DeleteComment(op) => Ok(Op::DeleteComment(op)),
            ClientMessage::ResolveChat(op) => Ok(Op::ResolveChat(op)),
            ClientMessage::MoveChat(op) => Ok(Op::MoveChat(op)),
            other => Err(other),
        }
    }

    /// Encodes as a compact JSON text frame: the bytes serde_json writes for this value, written
    /// without serde so the widget does not link it (see [`crate::wire`]).
    pub fn to_json(&self) -> String {
        crate::wire::encode_client(self)
    }
}
