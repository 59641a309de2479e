//! Why a local op was refused or failed. These are values the widget translates for people, so
//! every case is a concrete variant with a stable machine-readable key ([`FailReason::key`]).

use image_chat_protocol::{BroadcastId, ChatId, CloseCode, CommentId, ErrorCode, ValidationError};
use thiserror::Error;

/// Which op an op is.
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
    /// Removal of one reply.
    DeleteComment,
    /// Resolving or reopening a discussion.
    Resolve,
    /// Moving a discussion's marker (or region).
    Move,
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
    /// The server refused the connection for good with this close code (the page's origin is
    /// not allowed, no such tenant, the person could not be authenticated); nothing was sent.
    Refused(CloseCode),
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
            FailReason::Refused(_) => "refused",
        }
    }

    /// Whether retrying the same op may succeed, so the widget offers "retry" (else only
    /// "dismiss"). Retry resends the same op, with the same ids and text, so only a failure of
    /// the moment can be fixed by it: no connection, a server that could not commit, a rate
    /// limit that will have refilled. A full image or thread, a refusal, text the server finds
    /// too long, a discussion deleted meanwhile stay as they are however often the op is sent.
    /// [`crate::Command::Retry`] is accepted either way.
    pub fn retryable(self) -> bool {
        match self {
            FailReason::Offline | FailReason::NotConnected | FailReason::ConnectionLost => true,
            // An allow-list: a code added later (the enum is non-exhaustive) offers no retry
            // until someone decides it can help.
            FailReason::Server(code) => {
                matches!(code, ErrorCode::Unavailable | ErrorCode::RateLimited)
            }
            // New auth from the page (`set_auth`) connects again; an origin or a tenant the
            // server refused stays refused.
            FailReason::Refused(code) => code == CloseCode::AuthenticationFailed,
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
    /// The comment concerned (create, reply, edit, delete of a reply).
    pub comment_id: Option<CommentId>,
}

/// A local command that was refused. Validation failures change nothing; `NotConnected` records
/// the op as failed in the view (with retry / dismiss) and sends nothing.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum LocalError {
    /// The text or coordinates break the protocol's limits. Nothing was recorded or sent.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),
    /// The connection is not live. The op is shown as failed with `reason` (`Offline`,
    /// `NotConnected`, or `Refused` once the server refused the page for good) and can be
    /// retried later where that may help; it is never queued or sent on its own.
    #[error("not connected ({reason})")]
    NotConnected {
        /// The failed op, now visible in the view.
        op: OpRef,
        /// `Offline`, `NotConnected` or `Refused`.
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
    /// Only the author (or a moderator) may edit or delete a comment or delete, resolve or
    /// move a discussion, a read-only person (see `View::read_only`) may change nothing, and
    /// on a locked image (`View::locked`) only moderators may change anything (or unlock it).
    /// The opening comment is deleted only with its discussion ([`crate::Command::Delete`]).
    #[error("not allowed for this person")]
    NotAllowed,
    /// Retry / dismiss named an op that is not failed (unknown, pending or confirmed).
    #[error("no failed op {0}")]
    UnknownOp(BroadcastId),
    /// The engine was destroyed ([`crate::Engine::destroy`]); nothing more can be done.
    #[error("the sync engine was destroyed")]
    Destroyed,
    /// A request that is not an op (locking the image) needs a live connection; nothing was
    /// sent. Try again once connected.
    #[error("not connected")]
    Offline,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Retry is offered only where sending the same op again can succeed: "image is full",
    /// "forbidden" or "too long" stay so however often it is sent (it used to offer retry on a
    /// full image).
    #[test]
    fn only_failures_of_the_moment_are_retryable() {
        let retryable: Vec<&str> = ErrorCode::ALL
            .into_iter()
            .filter(|c| FailReason::Server(*c).retryable())
            .map(ErrorCode::as_str)
            .collect();
        assert_eq!(retryable, ["rate-limited", "unavailable"]);
        for reason in [
            FailReason::Offline,
            FailReason::NotConnected,
            FailReason::ConnectionLost,
        ] {
            assert!(reason.retryable(), "{reason}");
        }
        assert!(FailReason::Refused(CloseCode::AuthenticationFailed).retryable());
        assert!(!FailReason::Refused(CloseCode::Forbidden).retryable());
        assert!(!FailReason::Refused(CloseCode::UnknownTenant).retryable());
        for code in [
            ErrorCode::LimitExceeded,
            ErrorCode::Forbidden,
            ErrorCode::TextTooLong,
            ErrorCode::UnknownChat,
        ] {
            assert!(!FailReason::Server(code).retryable(), "{code:?}");
        }
    }
}
