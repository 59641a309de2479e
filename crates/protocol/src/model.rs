//! Domain values carried on the wire: who wrote something, where a discussion is anchored, the
//! comments and discussions themselves, and the position in an image's event log.

use serde::{Deserialize, Serialize};

use crate::ids::{ChatId, CommentId};
use crate::limits::{ValidationError, quantize_fraction, validate_fraction};

/// A person as the server vouches for them. Assigned by the server (from a signed SSO payload or
/// an anonymous session), never taken from a client's op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Stable id within the tenant (`anon:…` for anonymous people, `sso:…` for signed users).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Optional avatar image URL (signed users only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// Moderators may edit and delete anything in their tenant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_moderator: bool,
}

/// Where a discussion is attached. Tagged by `type` so that other kinds of anchor (a selected
/// range of page text, for discussions outside images) can be added without breaking old
/// clients' parsing of the point anchor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Anchor {
    /// A point on the image, as fractions of its width (`x`) and height (`y`), each in [0, 1],
    /// measured from the top-left corner. Fractions keep a marker on its spot at any size.
    Point {
        /// Fraction of the image width.
        x: f64,
        /// Fraction of the image height.
        y: f64,
    },
}

impl Anchor {
    /// A point anchor with both coordinates quantized (see [`quantize_fraction`]).
    pub fn point(x: f64, y: f64) -> Self {
        Anchor::Point {
            x: quantize_fraction(x),
            y: quantize_fraction(y),
        }
    }

    /// Checks the coordinates are finite fractions in [0, 1].
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Anchor::Point { x, y } => {
                validate_fraction(*x)?;
                validate_fraction(*y)
            }
        }
    }

    /// The same anchor in canonical (quantized) form, as the server stores it.
    pub fn canonical(&self) -> Self {
        match self {
            Anchor::Point { x, y } => Anchor::point(*x, *y),
        }
    }
}

/// One comment in a discussion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// Client-generated id.
    pub id: CommentId,
    /// Who wrote it (as the server vouched at the time).
    pub author: User,
    /// Plain text; never interpreted as markup by any client.
    pub text: String,
    /// When the server committed it, in milliseconds since the Unix epoch.
    pub created_at: u64,
    /// When it was last edited, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<u64>,
}

/// One discussion: a marker on the image and its thread. The discussion's author and creation
/// time are those of its first comment (`comments[0]`), which always exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    /// Client-generated id.
    pub id: ChatId,
    /// Where the marker sits.
    pub anchor: Anchor,
    /// The thread, oldest first; never empty.
    pub comments: Vec<Comment>,
}

impl Chat {
    /// The person who started the discussion (the author of the first comment).
    pub fn author(&self) -> Option<&User> {
        self.comments.first().map(|c| &c.author)
    }
}

/// A position in one image's event log. `seq` counts committed changes (+1 each, starting at 1;
/// 0 means "nothing yet"); `epoch` names the log itself and changes when the log is recreated,
/// which tells a resuming client its `seq` no longer means anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Identifies the log.
    pub epoch: u32,
    /// Last committed change seen.
    pub seq: u64,
}

/// Every discussion on one image, in creation order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Discussions, oldest first.
    pub chats: Vec<Chat>,
}
