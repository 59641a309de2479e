//! Domain values carried on the wire: who wrote something, where a discussion is anchored, the
//! comments and discussions themselves, and the position in an image's event log.
//!
//! Two wire forms here are written by hand rather than derived, to keep the frames short (a
//! marker creation has a 300-byte budget): a point [`Anchor`] is the array `[x, y]`, and a
//! [`Chat`]'s opening comment carries no `id` (it is the chat's id).

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::ids::{ChatId, CommentId, SubjectKind};
use crate::limits::{ValidationError, quantize_fraction, validate_fraction};

pub use image_chat_anchor::TextAnchor;

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
    /// The site signed this person in (Secure SSO): the name is the one the site vouches for,
    /// not one the person typed. Clients show it as a badge a typed name cannot imitate.
    /// Omitted when false (anonymous people), so it costs an anonymous event nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signed_in: bool,
}

/// Where a discussion is attached.
///
/// On the wire a point is the JSON array `[x, y]` (the common case, kept short). Every other
/// kind is a JSON object tagged by `type`, so an array always means a point and a client can
/// tell a kind it does not know: today `{"type":"region","x":…,"y":…,"w":…,"h":…}` and
/// `{"type":"text","exact":…,"prefix":…,"suffix":…,"start":…,"end":…}`.
///
/// Points and regions anchor discussions on images, text anchors discussions on pages
/// ([`Anchor::subject_kind`]); a server refuses the other combinations (`wrong-anchor-kind`).
#[derive(Clone, Debug, PartialEq)]
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
    /// An area of the image: a rectangle whose top-left corner is `(x, y)` and whose size is
    /// `w` × `h`, all fractions of the image's width / height. It lies inside the image
    /// (`x + w ≤ 1`, `y + h ≤ 1`) and is not empty (`w`, `h` > 0). Its marker sits at the
    /// top-left corner, [`Anchor::corner`].
    Region {
        /// Left edge, fraction of the image width.
        x: f64,
        /// Top edge, fraction of the image height.
        y: f64,
        /// Width, fraction of the image width.
        w: f64,
        /// Height, fraction of the image height.
        h: f64,
    },
    /// A passage of a page's text: its quote with some context, and its offsets in UTF-16
    /// code units of the container's flattened text (see the `image-chat-anchor` crate, which
    /// also finds the passage again when the page changed).
    Text(TextAnchor),
}

impl Anchor {
    /// A point anchor with both coordinates quantized (see [`quantize_fraction`]).
    pub fn point(x: f64, y: f64) -> Self {
        Anchor::Point {
            x: quantize_fraction(x),
            y: quantize_fraction(y),
        }
    }

    /// A region anchor with every value quantized (see [`quantize_fraction`]).
    pub fn region(x: f64, y: f64, w: f64, h: f64) -> Self {
        Anchor::Region {
            x: quantize_fraction(x),
            y: quantize_fraction(y),
            w: quantize_fraction(w),
            h: quantize_fraction(h),
        }
    }

    /// Checks the coordinates are finite fractions in [0, 1]; a region must also be non-empty
    /// and inside the image once canonical (compared in whole 1/100,000ths, so rounding cannot
    /// let `x + w` pass 1). A text anchor is checked by [`TextAnchor::validate`].
    pub fn validate(&self) -> Result<(), ValidationError> {
        match *self {
            Anchor::Text(ref text) => Ok(text.validate()?),
            Anchor::Point { x, y } => {
                validate_fraction(x)?;
                validate_fraction(y)
            }
            Anchor::Region { x, y, w, h } => {
                for v in [x, y, w, h] {
                    validate_fraction(v)?;
                }
                let units = |v: f64| (quantize_fraction(v) * 100_000.0).round() as i64;
                let fits = |start: f64, size: f64| {
                    units(size) > 0 && units(start) + units(size) <= 100_000
                };
                if fits(x, w) && fits(y, h) {
                    Ok(())
                } else {
                    Err(ValidationError::InvalidCoordinates)
                }
            }
        }
    }

    /// The same anchor in canonical (quantized) form, as the server stores it. A text anchor
    /// is canonical as it is.
    pub fn canonical(&self) -> Self {
        match *self {
            Anchor::Point { x, y } => Anchor::point(x, y),
            Anchor::Region { x, y, w, h } => Anchor::region(x, y, w, h),
            Anchor::Text(ref text) => Anchor::Text(text.clone()),
        }
    }

    /// The kind of subject this anchor belongs on: points and regions on images, text on
    /// pages.
    pub fn subject_kind(&self) -> SubjectKind {
        match self {
            Anchor::Point { .. } | Anchor::Region { .. } => SubjectKind::Image,
            Anchor::Text(_) => SubjectKind::Page,
        }
    }

    /// Checks that this anchor may be used on a subject of `kind` (`wrong-anchor-kind`).
    pub fn check_kind(&self, kind: SubjectKind) -> Result<(), ValidationError> {
        match (self.subject_kind(), kind) {
            (a, b) if a == b => Ok(()),
            (SubjectKind::Page, _) => Err(ValidationError::WrongAnchorKind(
                "a text anchor is only for discussions on a page (hello.pageId)",
            )),
            (SubjectKind::Image, _) => Err(ValidationError::WrongAnchorKind(
                "a point or region anchor is only for discussions on an image (hello.imageId)",
            )),
        }
    }

    /// Where the marker sits: the point itself, or a region's top-left corner. A text anchor
    /// has no point on an image: `(0, 0)` (never used, text anchors are only on pages).
    pub fn corner(&self) -> (f64, f64) {
        match *self {
            Anchor::Point { x, y } | Anchor::Region { x, y, .. } => (x, y),
            Anchor::Text(_) => (0.0, 0.0),
        }
    }

    /// The same kind of anchor with its marker (a point, a region's top-left corner) at
    /// `(x, y)`: a region keeps its size and is pushed back inside the image. A text anchor
    /// does not move by coordinates and is returned unchanged.
    pub fn moved_to(&self, x: f64, y: f64) -> Self {
        match *self {
            Anchor::Point { .. } => Anchor::point(x, y),
            Anchor::Region { w, h, .. } => {
                Anchor::region(x.clamp(0.0, 1.0 - w), y.clamp(0.0, 1.0 - h), w, h)
            }
            Anchor::Text(ref text) => Anchor::Text(text.clone()),
        }
    }

    /// The text anchor, if this is one.
    pub fn as_text(&self) -> Option<&TextAnchor> {
        match self {
            Anchor::Text(text) => Some(text),
            _ => None,
        }
    }
}

impl Serialize for Anchor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Anchor::Point { x, y } => {
                let mut seq = serializer.serialize_seq(Some(2))?;
                seq.serialize_element(x)?;
                seq.serialize_element(y)?;
                seq.end()
            }
            Anchor::Region { x, y, w, h } => {
                let mut region = serializer.serialize_struct("Region", 5)?;
                region.serialize_field("type", "region")?;
                region.serialize_field("x", x)?;
                region.serialize_field("y", y)?;
                region.serialize_field("w", w)?;
                region.serialize_field("h", h)?;
                region.end()
            }
            Anchor::Text(text) => {
                let mut out = serializer.serialize_struct("Text", 6)?;
                out.serialize_field("type", "text")?;
                out.serialize_field("exact", &text.exact)?;
                out.serialize_field("prefix", &text.prefix)?;
                out.serialize_field("suffix", &text.suffix)?;
                out.serialize_field("start", &text.start)?;
                out.serialize_field("end", &text.end)?;
                out.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Anchor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnchorVisitor)
    }
}

/// Reads `[x, y]` or a tagged anchor object (`region`, `text`); any other object kind is
/// refused.
struct AnchorVisitor;

/// A region or text anchor as sent: every field required. Unknown fields are dropped, never
/// stored (as in `resume`: servers add fields to anchors they send, and clients must ignore
/// those).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum TaggedAnchor {
    Region {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
    },
    Text {
        exact: String,
        prefix: String,
        suffix: String,
        start: u32,
        end: u32,
    },
}

impl<'de> Visitor<'de> for AnchorVisitor {
    type Value = Anchor;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a point anchor [x, y]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Anchor, A::Error> {
        let x = seq
            .next_element::<f64>()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let y = seq
            .next_element::<f64>()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(Anchor::Point { x, y })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Anchor, A::Error> {
        Ok(
            match TaggedAnchor::deserialize(de::value::MapAccessDeserializer::new(map))? {
                TaggedAnchor::Region { x, y, w, h } => Anchor::Region { x, y, w, h },
                TaggedAnchor::Text {
                    exact,
                    prefix,
                    suffix,
                    start,
                    end,
                } => Anchor::Text(TextAnchor {
                    exact,
                    prefix,
                    suffix,
                    start,
                    end,
                }),
            },
        )
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
/// time are those of its first comment (`comments[0]`), which always exists and whose id is the
/// discussion's id ([`ChatId::opening_comment`]).
///
/// On the wire the opening comment has no `id` key: encoders omit it (whatever
/// `comments[0].id` holds, so keep the invariant) and decoders set it to the chat's id,
/// refusing an opening comment that carries one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "WireChat")]
pub struct Chat {
    /// Client-generated id, also the id of the opening comment.
    pub id: ChatId,
    /// Where the marker sits.
    pub anchor: Anchor,
    /// The thread, oldest first; never empty.
    pub comments: Vec<Comment>,
    /// Marked settled (`resolve-chat`): clients draw it muted and collapsed. Written only
    /// when true, after `comments`, so an open discussion costs nothing on the wire.
    pub resolved: bool,
}

impl Serialize for Chat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if self.resolved { 4 } else { 3 };
        let mut chat = serializer.serialize_struct("Chat", len)?;
        chat.serialize_field("id", &self.id)?;
        chat.serialize_field("anchor", &self.anchor)?;
        chat.serialize_field("comments", &Thread(&self.comments))?;
        if self.resolved {
            chat.serialize_field("resolved", &true)?;
        }
        chat.end()
    }
}

/// A chat's comments as written: the first one without its id.
struct Thread<'a>(&'a [Comment]);

impl Serialize for Thread<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (i, comment) in self.0.iter().enumerate() {
            if i == 0 {
                seq.serialize_element(&OpeningComment(comment))?;
            } else {
                seq.serialize_element(comment)?;
            }
        }
        seq.end()
    }
}

/// A comment written without its `id` (the opening comment of a chat).
struct OpeningComment<'a>(&'a Comment);

impl Serialize for OpeningComment<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let len = if c.edited_at.is_some() { 4 } else { 3 };
        let mut out = serializer.serialize_struct("Comment", len)?;
        out.serialize_field("author", &c.author)?;
        out.serialize_field("text", &c.text)?;
        out.serialize_field("createdAt", &c.created_at)?;
        if let Some(edited_at) = c.edited_at {
            out.serialize_field("editedAt", &edited_at)?;
        }
        out.end()
    }
}

/// A chat as read from the wire, before the opening comment gets the chat's id.
#[derive(Deserialize)]
struct WireChat {
    id: ChatId,
    anchor: Anchor,
    comments: Vec<WireComment>,
    #[serde(default)]
    resolved: bool,
}

/// A comment as read inside a chat: `id` is absent on the opening comment.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireComment {
    #[serde(default)]
    id: Option<CommentId>,
    author: User,
    text: String,
    created_at: u64,
    #[serde(default)]
    edited_at: Option<u64>,
}

/// Why a chat object is not in its wire form.
#[derive(Debug, Error)]
enum ChatFormError {
    /// The opening comment's id is implied (the chat's); writing one is not the wire form.
    #[error("the opening comment of a chat has no `id` (it is the chat's id)")]
    OpeningCommentId,
    /// Every other comment names itself.
    #[error("missing field `id`")]
    MissingCommentId,
}

impl TryFrom<WireChat> for Chat {
    type Error = ChatFormError;

    fn try_from(wire: WireChat) -> Result<Self, Self::Error> {
        let comments = wire
            .comments
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let id = match (i, c.id) {
                    (0, None) => wire.id.opening_comment(),
                    (0, Some(_)) => return Err(ChatFormError::OpeningCommentId),
                    (_, Some(id)) => id,
                    (_, None) => return Err(ChatFormError::MissingCommentId),
                };
                Ok(Comment {
                    id,
                    author: c.author,
                    text: c.text,
                    created_at: c.created_at,
                    edited_at: c.edited_at,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Chat {
            id: wire.id,
            anchor: wire.anchor,
            comments,
            resolved: wire.resolved,
        })
    }
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
