//! Why a local op was refused or failed. These are values the widget translates for people, so
//! every case is a concrete variant with a stable machine-readable key ([`FailReason::key`]).

use image_chat_protocol::{BroadcastId, ChatId, CommentId, ErrorCode, ValidationError};
use thiserror::Error;

/// Which of the four ops an op is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// A new marker with its first comment.
    CreateChat,
    /// A reply in a discussion.
    Reply,
    /// A change to the text of one's own comment.
    Edit,
    /// Removal of a whole discussion.
    Delete,
}

/// Why an op failed. Shown next to the marker or comment, with retry / dismiss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// The browser reported being offline when the op was attempted; nothing was sent.
    Offline,
    /// The connection was not live (connecting, reconnecting or stopped); nothing was sent.
    NotConnected,
    /// The op was in flight when the connection dropped and the resync showed the server never
    /// committed it.
    ConnectionLost,
    /// The server refused the op with this code.
    Server(ErrorCode),
}

impl FailReason {
    /// A stable key for translation: `offline`, `not-connected`, `connection-lost`, or the
    /// server's error code (`forbidden`, `rate-limited`, …).
    pub fn key(self) -> &'static str {
        match self {
            FailReason::Offline => "offline",
            FailReason::NotConnected => "not-connected",
            FailReason::ConnectionLost => "connection-lost",
            FailReason::Server(code) => code.as_str(),
        }
    }

    /// Whether retrying the same op may succeed. A hint for the widget (to offer "retry" or
    /// only "dismiss"); [`crate::Command::Retry`] is accepted either way.
    pub fn retryable(self) -> bool {
        match self {
            FailReason::Offline | FailReason::NotConnected | FailReason::ConnectionLost => true,
            FailReason::Server(code) => matches!(
                code,
                ErrorCode::Unavailable | ErrorCode::RateLimited | ErrorCode::LimitExceeded
            ),
        }
    }
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// Names an op and what it is about, so the widget can find it in the view (and, for a new
/// marker, open its thread).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpRef {
    /// The op's id; pass it to [`crate::Command::Retry`] / [`crate::Command::Dismiss`].
    pub op: BroadcastId,
    /// What kind of op.
    pub kind: OpKind,
    /// The discussion concerned.
    pub chat_id: ChatId,
    /// The comment concerned (create, reply, edit).
    pub comment_id: Option<CommentId>,
}

/// A local command that was refused. Validation failures change nothing; `NotConnected` records
/// the op as failed in the view (with retry / dismiss) and sends nothing.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum LocalError {
    /// The text or coordinates break the protocol's limits. Nothing was recorded or sent.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),
    /// The connection is not live. The op is shown as failed with `reason` (`Offline` or
    /// `NotConnected`) and can be retried later; it is never queued or sent on its own.
    #[error("not connected ({reason})")]
    NotConnected {
        /// The failed op, now visible in the view.
        op: OpRef,
        /// `Offline` or `NotConnected`.
        reason: FailReason,
    },
    /// The discussion is not (or no longer) shown.
    #[error("unknown discussion {0}")]
    UnknownChat(ChatId),
    /// The comment is not (or no longer) shown.
    #[error("unknown comment {0}")]
    UnknownComment(CommentId),
    /// The discussion or comment exists only as one of our failed ops (its creation failed),
    /// so the server does not know it: retry or dismiss that op first.
    #[error("the target's creation failed (op {0}); retry or dismiss it first")]
    TargetFailed(BroadcastId),
    /// Only the author (or a moderator) may edit a comment or delete a discussion, and a
    /// read-only person (see `View::read_only`) may change nothing.
    #[error("not allowed for this person")]
    NotAllowed,
    /// Retry / dismiss named an op that is not failed (unknown, pending or confirmed).
    #[error("no failed op {0}")]
    UnknownOp(BroadcastId),
    /// The engine was destroyed ([`crate::Engine::destroy`]); nothing more can be done.
    #[error("the sync engine was destroyed")]
    Destroyed,
}
