//! Machine-readable error codes carried by `error` frames. Clients translate them for people;
//! the accompanying `message` is for developers only.

use serde::{Deserialize, Serialize};

use crate::limits::ValidationError;

/// Why the server refused a frame or an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, not an object, or missing / mistyped fields.
    MalformedFrame,
    /// A `type` the server does not know.
    UnknownType,
    /// The frame is larger than the server accepts.
    FrameTooLarge,
    /// An id is not in its required format.
    InvalidId,
    /// Coordinates are not finite fractions in [0, 1].
    InvalidCoordinates,
    /// Comment text is empty or blank.
    EmptyText,
    /// Comment text is too long.
    TextTooLong,
    /// Text contains forbidden control characters.
    InvalidText,
    /// A display name is empty or too long.
    InvalidName,
    /// The protocol version in `hello` is not supported.
    UnsupportedProtocol,
    /// An op arrived before `hello`, or a second `hello` arrived.
    UnexpectedMessage,
    /// The tenant does not exist.
    UnknownTenant,
    /// The person could not be identified (bad signature, expired, anonymous not allowed…).
    AuthenticationFailed,
    /// The person may not do this (not the author, read-only…).
    Forbidden,
    /// The discussion does not exist (any more) on this image.
    UnknownChat,
    /// The comment does not exist in this discussion.
    UnknownComment,
    /// A chat or comment id is already taken.
    DuplicateId,
    /// The same `broadcastId` was used before for a different op.
    BroadcastIdConflict,
    /// Too many ops in too short a time.
    RateLimited,
    /// A per-image or per-thread limit would be exceeded.
    LimitExceeded,
    /// The server could not complete the op; nothing was committed. Retrying may work.
    Unavailable,
    /// The image holds as many bytes of discussions as the server allows (its size bounds
    /// every snapshot of it): nothing more can be added until something is deleted.
    ImageFull,
    /// The site (tenant) or the whole server has used its storage quota.
    QuotaExceeded,
    /// A text anchor breaks its rules: offsets, lengths, blank or control characters.
    InvalidAnchor,
    /// An anchor of the wrong kind for the subject: a text anchor on an image, a point or a
    /// region on a page.
    WrongAnchorKind,
    /// The image is locked read-only by a moderator: only moderators may change it.
    ImageLocked,
    /// The person is banned from posting on this site.
    Banned,
}

impl From<&ValidationError> for ErrorCode {
    fn from(e: &ValidationError) -> Self {
        match e {
            ValidationError::InvalidId { .. } => ErrorCode::InvalidId,
            ValidationError::InvalidCoordinates => ErrorCode::InvalidCoordinates,
            ValidationError::EmptyText | ValidationError::InvisibleText => ErrorCode::EmptyText,
            ValidationError::TextTooLong { .. } => ErrorCode::TextTooLong,
            ValidationError::ControlCharacters => ErrorCode::InvalidText,
            ValidationError::InvalidName { .. } | ValidationError::InvisibleName => {
                ErrorCode::InvalidName
            }
            ValidationError::InvalidAnchor(_) => ErrorCode::InvalidAnchor,
            ValidationError::WrongAnchorKind(_) => ErrorCode::WrongAnchorKind,
        }
    }
}

impl ErrorCode {
    /// Every code, for reading them back ([`ErrorCode::from_wire`]). A test fails to compile
    /// when a code is added without being listed here.
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::MalformedFrame,
        ErrorCode::UnknownType,
        ErrorCode::FrameTooLarge,
        ErrorCode::InvalidId,
        ErrorCode::InvalidCoordinates,
        ErrorCode::EmptyText,
        ErrorCode::TextTooLong,
        ErrorCode::InvalidText,
        ErrorCode::InvalidName,
        ErrorCode::UnsupportedProtocol,
        ErrorCode::UnexpectedMessage,
        ErrorCode::UnknownTenant,
        ErrorCode::AuthenticationFailed,
        ErrorCode::Forbidden,
        ErrorCode::UnknownChat,
        ErrorCode::UnknownComment,
        ErrorCode::DuplicateId,
        ErrorCode::BroadcastIdConflict,
        ErrorCode::RateLimited,
        ErrorCode::LimitExceeded,
        ErrorCode::Unavailable,
        ErrorCode::ImageFull,
        ErrorCode::QuotaExceeded,
        ErrorCode::InvalidAnchor,
        ErrorCode::WrongAnchorKind,
        ErrorCode::ImageLocked,
        ErrorCode::Banned,
    ];

    /// The code a wire name denotes (the inverse of [`ErrorCode::as_str`]), without serde.
    pub fn from_wire(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The code as written on the wire (e.g. `text-too-long`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedFrame => "malformed-frame",
            ErrorCode::UnknownType => "unknown-type",
            ErrorCode::FrameTooLarge => "frame-too-large",
            ErrorCode::InvalidId => "invalid-id",
            ErrorCode::InvalidCoordinates => "invalid-coordinates",
            ErrorCode::EmptyText => "empty-text",
            ErrorCode::TextTooLong => "text-too-long",
            ErrorCode::InvalidText => "invalid-text",
            ErrorCode::InvalidName => "invalid-name",
            ErrorCode::UnsupportedProtocol => "unsupported-protocol",
            ErrorCode::UnexpectedMessage => "unexpected-message",
            ErrorCode::UnknownTenant => "unknown-tenant",
            ErrorCode::AuthenticationFailed => "authentication-failed",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::UnknownChat => "unknown-chat",
            ErrorCode::UnknownComment => "unknown-comment",
            ErrorCode::DuplicateId => "duplicate-id",
            ErrorCode::BroadcastIdConflict => "broadcast-id-conflict",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::LimitExceeded => "limit-exceeded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ImageFull => "image-full",
            ErrorCode::QuotaExceeded => "quota-exceeded",
            ErrorCode::InvalidAnchor => "invalid-anchor",
            ErrorCode::WrongAnchorKind => "wrong-anchor-kind",
            ErrorCode::ImageLocked => "image-locked",
            ErrorCode::Banned => "banned",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// Exhaustive on purpose: adding a code breaks this match until `ALL` is updated too.
    fn listed(code: ErrorCode) -> bool {
        match code {
            ErrorCode::MalformedFrame
            | ErrorCode::UnknownType
            | ErrorCode::FrameTooLarge
            | ErrorCode::InvalidId
            | ErrorCode::InvalidCoordinates
            | ErrorCode::EmptyText
            | ErrorCode::TextTooLong
            | ErrorCode::InvalidText
            | ErrorCode::InvalidName
            | ErrorCode::UnsupportedProtocol
            | ErrorCode::UnexpectedMessage
            | ErrorCode::UnknownTenant
            | ErrorCode::AuthenticationFailed
            | ErrorCode::Forbidden
            | ErrorCode::UnknownChat
            | ErrorCode::UnknownComment
            | ErrorCode::DuplicateId
            | ErrorCode::BroadcastIdConflict
            | ErrorCode::RateLimited
            | ErrorCode::LimitExceeded
            | ErrorCode::Unavailable
            | ErrorCode::ImageFull
            | ErrorCode::QuotaExceeded
            | ErrorCode::InvalidAnchor
            | ErrorCode::WrongAnchorKind
            | ErrorCode::ImageLocked
            | ErrorCode::Banned => ErrorCode::ALL.contains(&code),
        }
    }

    #[test]
    fn every_code_reads_back_as_serde_reads_it() {
        for code in ErrorCode::ALL {
            assert!(listed(code));
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::from_wire("no-such-code"), None);
    }
}
