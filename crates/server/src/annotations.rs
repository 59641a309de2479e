//! Discussions as W3C Web Annotations (JSON-LD, <http://www.w3.org/ns/anno.jsonld>), both
//! ways, as pure conversions: export of an image's or a page's discussions, an import plan
//! (the ops that recreate annotations written by this server, by Annotorious, by Hypothesis,
//! or by hand from the W3C model's examples), and a tenant file's annotations grouped by image
//! and page. The admin API (`admin_api::annotations`) does the I/O.
//!
//! # Mapping
//!
//! One discussion is one `Annotation` (motivation `commenting`) whose `target` is the image
//! (`source`) with a `FragmentSelector` `xywh=percent:x,y,w,h` (Media Fragments): a region is
//! its rectangle; a **point marker is a zero-size rectangle** `x,y,0,0` (it has a position and
//! no extent; a box of invented size would change what was marked, and Annotorious reads
//! zero-size boxes as points). Values are percentages with up to four decimals: Media
//! Fragments 1.0 basic writes integers, which would move a marker on a 4,000-pixel image by up
//! to 40 pixels; readers of the `xywh` grammar that accept decimals (Annotorious, IIIF tools)
//! read them, and import accepts both. The thread is the `body`: one `TextualBody` per comment,
//! the opening one with purpose `commenting`, replies with `replying`, each with its `creator`
//! (`Person`, `name`) and `created` / `modified`; a resolved discussion has a further
//! `TextualBody` with purpose `tagging` and value `resolved`. Ids are
//! `urn:image-chat:chat:<id>` and `urn:image-chat:comment:<id>`.
//!
//! A discussion on a page's text (text mode) is the same annotation whose `target.source` is
//! the page id and whose `selector` is a list of two: a `TextQuoteSelector` (`exact`, and
//! `prefix` / `suffix` when not empty: the up to 32 UTF-16 code units of context the widget
//! keeps on each side) and a `TextPositionSelector` (`start`, `end`). The positions are what
//! the widget stores: UTF-16 code units (as browsers and Hypothesis count them) of the page
//! container's flattened text, not of the whole document, so a reader should find the passage
//! by its quote and take the position as a hint, as the widget does (crate `image-chat-anchor`).
//!
//! # Import
//!
//! Accepted: one annotation, an array of them, or an `AnnotationCollection` / `AnnotationPage`
//! (`items`, or `first.items`). `body` may be one body or an array, a plain string, or a
//! `TextualBody` (`value`); purposes other than `commenting` / `replying` / `tagging` (and
//! bodies without text) are skipped. The first commenting body opens the discussion (an
//! annotation without one is refused). `target` may be the image IRI with a
//! `#xywh=…` fragment, or an object with `selector` (one or an array; the first
//! `FragmentSelector` with `xywh` is used); pixel values cannot be placed on an image whose
//! size the server does not know, so only `percent:` is accepted. A target whose selectors
//! hold a `TextQuoteSelector` (and no `xywh`) is a passage of a page's text instead: its
//! `prefix` / `suffix` are cut to the 32 UTF-16 code units next to the passage (other tools
//! keep more), and its position comes from a `TextPositionSelector` beside it (`end` is
//! recomputed from `exact`, so a tool counting code points cannot make it inconsistent), or is
//! 0 without one (the widget finds a passage by its quote; the position only breaks ties).
//! Everything becomes ordinary
//! ops, validated exactly like a widget's (the protocol codec: ids, text, names, anchors) by
//! the caller, and ids are derived from the annotation's `id` (or its content) so importing the
//! same file twice changes nothing.

use image_chat_anchor::TextAnchor;
use image_chat_protocol::{
    Anchor, BroadcastId, Chat, ChatId, CommentId, ImageId, PageId, Subject, SubjectKind,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The JSON-LD context of every exported annotation.
pub const CONTEXT: &str = "http://www.w3.org/ns/anno.jsonld";
/// What an exported `FragmentSelector` conforms to.
pub const MEDIA_FRAGMENTS: &str = "http://www.w3.org/TR/media-frags/";
/// Most annotations one import may carry.
pub const MAX_IMPORT: usize = 1_000;
/// Most comments (bodies) one imported annotation may carry.
pub const MAX_COMMENTS: usize = 500;

const CHAT_URN: &str = "urn:image-chat:chat:";
const COMMENT_URN: &str = "urn:image-chat:comment:";
const USER_URN: &str = "urn:image-chat:user:";

/// Milliseconds since the Unix epoch as `xsd:dateTime` (UTC, milliseconds).
pub fn datetime(ms: u64) -> String {
    let secs = ms / 1000;
    let day = crate::usage::calendar::day_of(ms);
    let rem = secs % 86_400;
    format!(
        "{day}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Parses `YYYY-MM-DDThh:mm:ss[.fff]Z` (or `+00:00`) into milliseconds; `None` otherwise.
pub fn parse_datetime(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let days = crate::usage::calendar::parse_day(date)?;
    let time = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let ms = match frac.len() {
        0 => 0,
        n if frac.bytes().all(|b| b.is_ascii_digit()) => {
            let digits: u64 = frac.get(..n.min(3))?.parse().ok()?;
            digits * 10u64.pow(3 - n.min(3) as u32)
        }
        _ => return None,
    };
    let days = u64::try_from(days).ok()?;
    Some(((days * 86_400 + h * 3600 + m * 60 + s) * 1000) + ms)
}

/// A fraction (0..=1) as a percentage with at most four decimals, trailing zeros trimmed.
fn percent(fraction: f64) -> String {
    let text = format!("{:.4}", fraction * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// The `xywh=percent:…` of an anchor (a point is `x,y,0,0`); `None` for an anchor kind with
/// no place on an image.
pub fn xywh(anchor: &Anchor) -> Option<String> {
    let (x, y, w, h) = match *anchor {
        Anchor::Point { x, y } => (x, y, 0.0, 0.0),
        Anchor::Region { x, y, w, h } => (x, y, w, h),
        _ => return None,
    };
    Some(format!(
        "xywh=percent:{},{},{},{}",
        percent(x),
        percent(y),
        percent(w),
        percent(h)
    ))
}

/// The anchor an `xywh` value describes (`w = h = 0`: a point).
pub fn parse_xywh(value: &str) -> Result<Anchor, ImportError> {
    let bad = || ImportError::Selector(value.chars().take(80).collect());
    let rest = value.strip_prefix("xywh=").ok_or_else(bad)?;
    let numbers = if let Some(rest) = rest.strip_prefix("percent:") {
        rest
    } else if rest.starts_with("pixel:") || rest.chars().next().is_some_and(|c| c.is_ascii_digit())
    {
        return Err(ImportError::PixelUnits);
    } else {
        return Err(bad());
    };
    let values: Vec<f64> = numbers
        .split(',')
        .map(|n| {
            let ok = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            ok.then(|| n.parse::<f64>().ok()).flatten()
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let [x, y, w, h] = values[..] else {
        return Err(bad());
    };
    let f = |p: f64| p / 100.0;
    Ok(if w == 0.0 && h == 0.0 {
        Anchor::point(f(x), f(y))
    } else {
        Anchor::region(f(x), f(y), f(w), f(h))
    })
}

fn person(user: &image_chat_protocol::User) -> Value {
    json!({"id": format!("{USER_URN}{}", user.id), "type": "Person", "name": user.name})
}

/// The selectors of a passage: a `TextQuoteSelector` (without empty context) and a
/// `TextPositionSelector`.
pub fn text_selectors(anchor: &TextAnchor) -> Value {
    let mut quote = Map::new();
    quote.insert("type".into(), "TextQuoteSelector".into());
    quote.insert("exact".into(), anchor.exact.clone().into());
    for (name, context) in [("prefix", &anchor.prefix), ("suffix", &anchor.suffix)] {
        if !context.is_empty() {
            quote.insert(name.into(), context.clone().into());
        }
    }
    json!([
        quote,
        {"type": "TextPositionSelector", "start": anchor.start, "end": anchor.end},
    ])
}

/// The `target` of a discussion on `source` (the image or page id).
fn target(source: &str, anchor: &Anchor) -> Value {
    let selector = match (anchor, xywh(anchor)) {
        (Anchor::Text(text), _) => text_selectors(text),
        (_, Some(fragment)) => json!({
            "type": "FragmentSelector",
            "conformsTo": MEDIA_FRAGMENTS,
            "value": fragment,
        }),
        // Unreachable: every anchor that is not text has an `xywh`.
        (_, None) => Value::Null,
    };
    json!({"source": source, "selector": selector})
}

/// One discussion of `subject` (an image or a page) as an annotation.
pub fn to_annotation(subject: &Subject, chat: &Chat) -> Value {
    let mut bodies = Vec::with_capacity(chat.comments.len() + 1);
    for (i, comment) in chat.comments.iter().enumerate() {
        let id = if comment.id.as_str().is_empty() {
            chat.id.as_str()
        } else {
            comment.id.as_str()
        };
        let mut body = json!({
            "id": format!("{COMMENT_URN}{id}"),
            "type": "TextualBody",
            "value": comment.text,
            "format": "text/plain",
            "purpose": if i == 0 { "commenting" } else { "replying" },
            "creator": person(&comment.author),
            "created": datetime(comment.created_at),
        });
        if let (Some(edited), Some(map)) = (comment.edited_at, body.as_object_mut()) {
            map.insert("modified".into(), datetime(edited).into());
        }
        bodies.push(body);
    }
    if chat.resolved {
        bodies.push(json!({"type": "TextualBody", "value": "resolved", "purpose": "tagging"}));
    }
    let created = chat.comments.first().map_or(0, |c| c.created_at);
    let modified = chat
        .comments
        .iter()
        .map(|c| c.edited_at.unwrap_or(c.created_at).max(c.created_at))
        .max()
        .unwrap_or(created);
    let mut annotation = json!({
        "@context": CONTEXT,
        "id": format!("{CHAT_URN}{}", chat.id.as_str()),
        "type": "Annotation",
        "motivation": "commenting",
        "created": datetime(created),
        "modified": datetime(modified),
        "body": bodies,
        "target": target(subject.as_str(), &chat.anchor),
    });
    if let (Some(author), Some(map)) = (chat.comments.first(), annotation.as_object_mut()) {
        map.insert("creator".into(), person(&author.author));
    }
    annotation
}

/// Every discussion of `subject`, oldest first.
pub fn export(subject: &Subject, chats: &[Chat]) -> Vec<Value> {
    chats
        .iter()
        .map(|chat| to_annotation(subject, chat))
        .collect()
}

/// `items` as one W3C `AnnotationCollection` with its single page embedded (what an export
/// answers; an import takes it back as it is).
pub fn collection(items: Vec<Value>) -> Value {
    json!({
        "@context": CONTEXT,
        "type": "AnnotationCollection",
        "total": items.len(),
        "first": {"type": "AnnotationPage", "startIndex": 0, "items": items},
    })
}

/// Why an import document was refused (nothing is imported then).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ImportError {
    /// Not an annotation, an array of them, or a collection / page with `items`.
    #[error(
        "expected an Annotation, an array of annotations, or an AnnotationCollection / AnnotationPage with items"
    )]
    Shape,
    /// More than [`MAX_IMPORT`] annotations.
    #[error("at most {MAX_IMPORT} annotations per import")]
    TooMany,
    /// Annotation `index` has no commenting text.
    #[error("annotation {0}: no body with text to open the discussion with")]
    NoText(usize),
    /// Annotation `index` has more than [`MAX_COMMENTS`] comments.
    #[error("annotation {0}: at most {MAX_COMMENTS} comments")]
    TooManyComments(usize),
    /// Annotation `index` has no usable target selector.
    #[error(
        "annotation {0}: no target with a FragmentSelector xywh=percent:x,y,w,h or a TextQuoteSelector"
    )]
    NoSelector(usize),
    /// Annotation `index` marks a place on an image in an import into a page, or a passage of
    /// text in an import into an image.
    #[error("annotation {0}: a {1} selector cannot be imported into a {2}")]
    WrongKind(usize, &'static str, &'static str),
    /// A selector value that is not `xywh=percent:x,y,w,h`.
    #[error("not a media fragment xywh=percent:x,y,w,h: {0:?}")]
    Selector(String),
    /// `xywh` in pixels.
    #[error("xywh in pixels cannot be placed without the image's size: use xywh=percent:")]
    PixelUnits,
    /// Annotation `index` targets another image (or page) than the one imported into.
    #[error("annotation {0}: its target is another image or page ({1:?})")]
    OtherImage(usize, String),
    /// A tenant import's annotation `index` does not name its image or page
    /// (`target.source`).
    #[error("annotation {0}: a tenant import needs the image or page in target.source")]
    NoSource(usize),
}

/// One comment to create.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedComment {
    /// Its id (derived from the annotation when it had none of this server's).
    pub id: CommentId,
    /// Author's display name (`creator.name`, else "Imported").
    pub author: String,
    /// Author's stable id within the import (`creator.id`, else the name).
    pub author_key: String,
    /// Text.
    pub text: String,
    /// `created`, if given and valid.
    pub created_at: Option<u64>,
}

/// One discussion to create: the ops to commit, in order (create, replies, resolve).
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedChat {
    /// The discussion's id.
    pub id: ChatId,
    /// Where.
    pub anchor: Anchor,
    /// Opening comment first.
    pub comments: Vec<PlannedComment>,
    /// Tagged `resolved`.
    pub resolved: bool,
}

impl PlannedChat {
    /// A stable `broadcastId` for this discussion's `n`th op: a retry of the import is the
    /// same op, which the store recognises and applies once.
    pub fn broadcast_id(&self, n: usize) -> BroadcastId {
        BroadcastId::new(derived_id(&format!("op:{}:{n}", self.id.as_str())))
    }
}

/// A canonical id (UUID v4 shape, base64url) derived from `seed`.
fn derived_id(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    image_chat_protocol::ids::encode_uuid_v4(bytes)
}

/// The annotations of an import document.
fn items(doc: &Value) -> Result<Vec<&Value>, ImportError> {
    let list = match doc {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
            if let Some(Value::Array(items)) = map.get("items") {
                items.iter().collect()
            } else if let Some(Value::Array(items)) =
                map.get("first").and_then(|first| first.get("items"))
            {
                items.iter().collect()
            } else if kind == "Annotation" || map.contains_key("target") {
                vec![doc]
            } else {
                return Err(ImportError::Shape);
            }
        }
        _ => return Err(ImportError::Shape),
    };
    if list.len() > MAX_IMPORT {
        return Err(ImportError::TooMany);
    }
    Ok(list)
}

fn as_list(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    }
}

fn purposes(body: &Map<String, Value>) -> Vec<&str> {
    as_list(body.get("purpose"))
        .into_iter()
        .filter_map(Value::as_str)
        .collect()
}

/// What a target's selectors point at.
#[derive(Clone, Debug, PartialEq)]
enum Selected {
    /// A place on an image: an `xywh=` media fragment (not parsed yet).
    Fragment(String),
    /// A passage of a page's text.
    Text(TextAnchor),
}

impl Selected {
    fn kind(&self) -> SubjectKind {
        match self {
            Selected::Fragment(_) => SubjectKind::Image,
            Selected::Text(_) => SubjectKind::Page,
        }
    }
}

/// The passage `selectors` describe: the first `TextQuoteSelector`, its context cut like the
/// widget's, placed by the first `TextPositionSelector` (else at 0). Not validated here: the
/// op codec checks it like a widget's.
fn text_anchor(selectors: &[&Value]) -> Option<TextAnchor> {
    let of_type = |kind: &str| {
        selectors
            .iter()
            .find(|s| s.get("type").and_then(Value::as_str) == Some(kind))
    };
    let quote = of_type("TextQuoteSelector")?;
    let exact = quote.get("exact").and_then(Value::as_str)?;
    let context = |name: &str| quote.get(name).and_then(Value::as_str).unwrap_or("");
    let start = of_type("TextPositionSelector")
        .and_then(|p| p.get("start"))
        .and_then(Value::as_u64)
        .and_then(|start| u32::try_from(start).ok())
        .unwrap_or(0);
    TextAnchor::from_quote(exact, context("prefix"), context("suffix"), start)
}

/// What `target` selects, and the image or page it names.
fn selector(target: &Value) -> Option<(Selected, Option<String>)> {
    if let Some(iri) = target.as_str() {
        let (source, fragment) = iri.split_once('#')?;
        return fragment.starts_with("xywh=").then(|| {
            (
                Selected::Fragment(fragment.to_owned()),
                Some(source.to_owned()),
            )
        });
    }
    let map = target.as_object()?;
    let source = map
        .get("source")
        .and_then(|s| s.as_str().or_else(|| s.get("id").and_then(Value::as_str)))
        .map(str::to_owned);
    let selectors = as_list(map.get("selector"));
    let fragment = selectors.iter().find_map(|s| {
        let value = s.get("value").and_then(Value::as_str)?;
        let kind = s
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("FragmentSelector");
        (kind == "FragmentSelector" && value.starts_with("xywh="))
            .then(|| Selected::Fragment(value.to_owned()))
    });
    let selected = fragment.or_else(|| text_anchor(&selectors).map(Selected::Text))?;
    Some((selected, source))
}

fn creator(value: Option<&Value>) -> (String, String) {
    let Some(value) = value else {
        return ("Imported".into(), "imported".into());
    };
    if let Some(name) = value.as_str() {
        return (name.to_owned(), name.to_owned());
    }
    let name = value
        .get("name")
        .or_else(|| value.get("nickname"))
        .and_then(Value::as_str)
        .unwrap_or("Imported");
    let key = value.get("id").and_then(Value::as_str).unwrap_or(name);
    (name.to_owned(), key.to_owned())
}

/// A tenant import's annotations grouped by the image or page each names (`target.source`;
/// a text selector names a page, an `xywh` one an image), in order of first appearance: each
/// group is then planned like an import into that image or page. An annotation that names
/// none is refused, since it could belong to any.
pub fn by_subject(doc: &Value) -> Result<Vec<(Subject, Value)>, ImportError> {
    let mut groups: Vec<(Subject, Vec<Value>)> = Vec::new();
    for (index, annotation) in items(doc)?.into_iter().enumerate() {
        let (selected, source) = annotation
            .as_object()
            .ok_or(ImportError::Shape)?
            .get("target")
            .map(|target| as_list(Some(target)))
            .unwrap_or_default()
            .into_iter()
            .find_map(selector)
            .and_then(|(selected, source)| Some((selected, source?)))
            .ok_or(ImportError::NoSource(index))?;
        let subject = match selected.kind() {
            SubjectKind::Image => Subject::Image(ImageId::new(source)),
            SubjectKind::Page => Subject::Page(PageId::new(source)),
        };
        match groups.iter_mut().find(|(s, _)| *s == subject) {
            Some((_, group)) => group.push(annotation.clone()),
            None => groups.push((subject, vec![annotation.clone()])),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(image, group)| (image, Value::Array(group)))
        .collect())
}

/// The discussions `doc` describes for `subject`, an image or a page (pure: nothing is
/// committed). The caller validates every resulting op like a widget's before committing any.
pub fn plan(subject: &Subject, doc: &Value) -> Result<Vec<PlannedChat>, ImportError> {
    let mut chats = Vec::new();
    for (index, annotation) in items(doc)?.into_iter().enumerate() {
        let map = annotation.as_object().ok_or(ImportError::Shape)?;
        let targets = as_list(map.get("target"));
        let (selected, source) = targets
            .into_iter()
            .find_map(selector)
            .ok_or(ImportError::NoSelector(index))?;
        if let Some(source) = source
            && source != subject.as_str()
        {
            return Err(ImportError::OtherImage(
                index,
                source.chars().take(200).collect(),
            ));
        }
        let anchor = match (selected, subject.kind()) {
            (Selected::Fragment(value), SubjectKind::Image) => parse_xywh(&value)?,
            (Selected::Text(text), SubjectKind::Page) => Anchor::Text(text),
            (Selected::Fragment(_), SubjectKind::Page) => {
                return Err(ImportError::WrongKind(index, "xywh", "page"));
            }
            (Selected::Text(_), SubjectKind::Image) => {
                return Err(ImportError::WrongKind(index, "text", "image"));
            }
        };
        let annotation_id = map.get("id").and_then(Value::as_str);
        // This server's own ids come back unchanged; anything else gets a stable derived id.
        let seed = annotation_id
            .map(str::to_owned)
            .unwrap_or_else(|| serde_json::to_string(annotation).unwrap_or_default());
        let id = match annotation_id.and_then(|id| id.strip_prefix(CHAT_URN)) {
            Some(own) if ChatId::new(own).validate().is_ok() => ChatId::new(own),
            _ => ChatId::new(derived_id(&format!("chat:{seed}"))),
        };
        let fallback_creator = creator(map.get("creator"));
        let fallback_created = map
            .get("created")
            .and_then(Value::as_str)
            .and_then(parse_datetime);
        let mut comments = Vec::new();
        let mut resolved = false;
        for (n, body) in as_list(map.get("body")).into_iter().enumerate() {
            let (text, purposes, body_map) = match body {
                Value::String(text) => (text.clone(), vec!["commenting"], None),
                Value::Object(b) => {
                    let Some(text) = b.get("value").and_then(Value::as_str) else {
                        continue;
                    };
                    (text.to_owned(), purposes(b), Some(b))
                }
                _ => continue,
            };
            if purposes.contains(&"tagging") {
                resolved |= text.trim().eq_ignore_ascii_case("resolved");
                continue;
            }
            let commenting = purposes.is_empty()
                || purposes.contains(&"commenting")
                || purposes.contains(&"replying");
            if !commenting {
                continue;
            }
            let (author, author_key) = body_map
                .and_then(|b| b.get("creator"))
                .map(|c| creator(Some(c)))
                .unwrap_or_else(|| fallback_creator.clone());
            let created_at = body_map
                .and_then(|b| b.get("created"))
                .and_then(Value::as_str)
                .and_then(parse_datetime)
                .or(fallback_created);
            let own = body_map
                .and_then(|b| b.get("id"))
                .and_then(Value::as_str)
                .and_then(|id| id.strip_prefix(COMMENT_URN))
                .filter(|id| CommentId::new(*id).validate().is_ok());
            let comment_id = if comments.is_empty() {
                id.opening_comment()
            } else {
                match own {
                    Some(own) => CommentId::new(own),
                    None => CommentId::new(derived_id(&format!("comment:{seed}:{n}"))),
                }
            };
            comments.push(PlannedComment {
                id: comment_id,
                author,
                author_key,
                text,
                created_at,
            });
        }
        if comments.is_empty() {
            return Err(ImportError::NoText(index));
        }
        if comments.len() > MAX_COMMENTS {
            return Err(ImportError::TooManyComments(index));
        }
        chats.push(PlannedChat {
            id,
            anchor,
            comments,
            resolved,
        });
    }
    Ok(chats)
}

#[cfg(test)]
mod tests {
    use image_chat_protocol::{Comment, User};

    use super::*;

    fn user(id: &str, name: &str) -> User {
        User {
            id: id.into(),
            name: name.into(),
            avatar_url: None,
            is_moderator: false,
            signed_in: id.starts_with("sso:"),
        }
    }

    fn chat() -> Chat {
        let id = ChatId::new(image_chat_protocol::ids::encode_uuid_v4([7; 16]));
        Chat {
            id: id.clone(),
            anchor: Anchor::region(0.125, 0.5, 0.25, 0.125),
            comments: vec![
                Comment {
                    id: id.opening_comment(),
                    author: user("sso:ada", "Ada"),
                    text: "Is that the old lighthouse?".into(),
                    created_at: 1_796_553_000_000,
                    edited_at: None,
                },
                Comment {
                    id: CommentId::new(image_chat_protocol::ids::encode_uuid_v4([8; 16])),
                    author: user("anon:x", "Guest"),
                    text: "Yes, before 1920.".into(),
                    created_at: 1_796_553_060_000,
                    edited_at: Some(1_796_553_120_500),
                },
            ],
            resolved: true,
        }
    }

    #[test]
    fn dates_and_fragments_are_written_and_read() {
        assert_eq!(datetime(1_796_553_000_123), "2026-12-06T10:30:00.123Z");
        assert_eq!(
            parse_datetime("2026-12-06T10:30:00.123Z"),
            Some(1_796_553_000_123)
        );
        assert_eq!(
            parse_datetime("2015-10-13T13:00:00Z"),
            Some(1_444_741_200_000)
        );
        assert_eq!(
            parse_datetime("2015-10-13T13:00:00+00:00"),
            Some(1_444_741_200_000)
        );
        for bad in [
            "2015-10-13",
            "2015-10-13T25:00:00Z",
            "2015-10-13T13:00:00+02:00",
            "x",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(
            xywh(&Anchor::point(0.376, 0.5)).as_deref(),
            Some("xywh=percent:37.6,50,0,0")
        );
        assert_eq!(
            xywh(&Anchor::region(0.1, 0.2, 0.3, 0.4)).as_deref(),
            Some("xywh=percent:10,20,30,40")
        );
        assert_eq!(
            parse_xywh("xywh=percent:37.6,50,0,0"),
            Ok(Anchor::point(0.376, 0.5))
        );
        assert_eq!(
            parse_xywh("xywh=percent:10,20,30,40"),
            Ok(Anchor::region(0.1, 0.2, 0.3, 0.4))
        );
        assert_eq!(
            parse_xywh("xywh=160,120,320,240"),
            Err(ImportError::PixelUnits)
        );
        assert_eq!(
            parse_xywh("xywh=pixel:1,2,3,4"),
            Err(ImportError::PixelUnits)
        );
        for bad in [
            "xywh=percent:1,2,3",
            "xywh=percent:-1,2,3,4",
            "xywh=percent:a,b,c,d",
            "t=10",
        ] {
            assert!(parse_xywh(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_exported_discussion_is_a_w3c_annotation_and_plans_back_to_itself() {
        let image = Subject::Image(ImageId::new("https://acme.example/harbour.jpg"));
        let chat = chat();
        let exported = export(&image, std::slice::from_ref(&chat));
        let a = &exported[0];
        assert_eq!(a["@context"], CONTEXT);
        assert_eq!(a["type"], "Annotation");
        assert_eq!(a["motivation"], "commenting");
        assert_eq!(a["target"]["source"], image.as_str());
        assert_eq!(a["target"]["selector"]["type"], "FragmentSelector");
        assert_eq!(a["target"]["selector"]["conformsTo"], MEDIA_FRAGMENTS);
        assert_eq!(
            a["target"]["selector"]["value"],
            "xywh=percent:12.5,50,25,12.5"
        );
        assert_eq!(a["body"][0]["purpose"], "commenting");
        assert_eq!(a["body"][1]["purpose"], "replying");
        assert_eq!(a["body"][1]["modified"], "2026-12-06T10:32:00.500Z");
        assert_eq!(a["body"][2]["purpose"], "tagging");
        assert_eq!(a["creator"]["name"], "Ada");
        assert_eq!(a["created"], "2026-12-06T10:30:00.000Z");
        assert_eq!(a["modified"], "2026-12-06T10:32:00.500Z");

        let plan = plan(&image, &Value::Array(exported)).expect("plan");
        assert_eq!(plan.len(), 1);
        let p = &plan[0];
        assert_eq!(
            (&p.id, &p.anchor, p.resolved),
            (&chat.id, &chat.anchor, true)
        );
        let texts: Vec<_> = p.comments.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["Is that the old lighthouse?", "Yes, before 1920."]);
        assert_eq!(p.comments[1].id, chat.comments[1].id);
        assert_eq!(
            (p.comments[1].author.as_str(), p.comments[1].created_at),
            ("Guest", Some(1_796_553_060_000))
        );
    }

    #[test]
    fn a_tenant_import_is_grouped_by_the_image_each_annotation_names() {
        let on = |image: &str, text: &str| {
            json!({"body": text, "target": {"source": image,
                "selector": {"type": "FragmentSelector", "value": "xywh=percent:1,2,0,0"}}})
        };
        let doc = json!([
            on("https://a.example/1.jpg", "one"),
            json!({"body": "two", "target": "https://a.example/2.jpg#xywh=percent:5,5,0,0"}),
            on("https://a.example/1.jpg", "three"),
        ]);
        let groups =
            by_subject(&collection(doc.as_array().cloned().unwrap_or_default())).expect("grouped");
        let summary: Vec<(&str, usize)> = groups
            .iter()
            .map(|(image, group)| (image.as_str(), group.as_array().map_or(0, Vec::len)))
            .collect();
        assert_eq!(
            summary,
            [
                ("https://a.example/1.jpg", 2),
                ("https://a.example/2.jpg", 1)
            ]
        );
        for (image, group) in &groups {
            assert!(plan(image, group).is_ok(), "{image:?} plans");
        }
        let anonymous = json!([on("https://a.example/1.jpg", "ok"),
            {"body": "where?", "target": {"selector": {"type": "FragmentSelector", "value": "xywh=percent:1,1,0,0"}}}]);
        assert_eq!(by_subject(&anonymous), Err(ImportError::NoSource(1)));
    }

    #[test]
    fn hand_written_w3c_and_annotorious_shapes_are_read_and_bad_ones_refused() {
        let image = Subject::Image(ImageId::new("http://example.org/image1"));
        // The W3C model's shapes: a string body, a target IRI with a fragment, a collection.
        let w3c = json!({
            "@context": "http://www.w3.org/ns/anno.jsonld",
            "type": "AnnotationCollection",
            "first": {"type": "AnnotationPage", "items": [
                {"id": "http://example.org/anno1", "type": "Annotation",
                 "body": "A comment", "target": "http://example.org/image1#xywh=percent:10,10,0,0"},
                {"id": "http://example.org/anno2", "type": "Annotation",
                 "creator": {"id": "http://example.org/user1", "type": "Person", "name": "A. Person"},
                 "created": "2015-10-13T13:00:00Z",
                 "body": [{"type": "TextualBody", "value": "Region", "purpose": "commenting"},
                          {"type": "TextualBody", "value": "a tag", "purpose": "tagging"},
                          {"type": "TextualBody", "value": "a reply", "purpose": "replying"}],
                 "target": {"source": "http://example.org/image1",
                            "selector": {"type": "FragmentSelector",
                                         "conformsTo": "http://www.w3.org/TR/media-frags/",
                                         "value": "xywh=percent:20,30,40,10"}}}
            ]}
        });
        let plan1 = plan(&image, &w3c).expect("w3c");
        assert_eq!(plan1.len(), 2);
        assert_eq!(plan1[0].anchor, Anchor::point(0.1, 0.1));
        assert_eq!(plan1[1].anchor, Anchor::region(0.2, 0.3, 0.4, 0.1));
        assert_eq!(plan1[1].comments.len(), 2);
        assert_eq!(plan1[1].comments[0].author, "A. Person");
        assert_eq!(plan1[1].comments[0].created_at, Some(1_444_741_200_000));
        assert!(!plan1[1].resolved);
        // Deterministic: the same file plans the same ids.
        assert_eq!(plan(&image, &w3c).expect("again"), plan1);
        // Annotorious: an array, `#`-prefixed ids, selector in `target.selector`.
        let annotorious = json!([{
            "@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
            "id": "#a88b22d0-6106-4872-9435-c78b5e89fede",
            "body": [{"type": "TextualBody", "value": "It's a boat", "purpose": "commenting",
                      "creator": {"id": "https://example.org/u/ann", "name": "Ann"}}],
            "target": {"source": "http://example.org/image1",
                       "selector": {"type": "FragmentSelector", "conformsTo": "http://www.w3.org/TR/media-frags/",
                                    "value": "xywh=percent:5.5,6.25,10,20"}}
        }]);
        let plan2 = plan(&image, &annotorious).expect("annotorious");
        assert_eq!(plan2[0].anchor, Anchor::region(0.055, 0.0625, 0.1, 0.2));
        assert_eq!(plan2[0].comments[0].author, "Ann");

        let refused = |doc: Value| plan(&image, &doc).unwrap_err();
        assert_eq!(refused(json!(42)), ImportError::Shape);
        assert_eq!(refused(json!({"hello": 1})), ImportError::Shape);
        assert_eq!(
            refused(json!([{"body": "x", "target": "http://example.org/image1"}])),
            ImportError::NoSelector(0)
        );
        assert_eq!(
            refused(
                json!([{"body": "x", "target": "http://example.org/other#xywh=percent:1,1,0,0"}])
            ),
            ImportError::OtherImage(0, "http://example.org/other".into())
        );
        assert_eq!(
            refused(
                json!([{"body": {"purpose": "tagging", "value": "t"}, "target": "http://example.org/image1#xywh=percent:1,1,0,0"}])
            ),
            ImportError::NoText(0)
        );
        assert_eq!(
            refused(json!([{"body": "x", "target": "http://example.org/image1#xywh=1,1,5,5"}])),
            ImportError::PixelUnits
        );
        let many: Vec<Value> = (0..=MAX_IMPORT).map(|_| json!({})).collect();
        assert_eq!(refused(Value::Array(many)), ImportError::TooMany);
    }

    const ARTICLE: &str = "The harbour at dawn. Fishing boats leave before six; by seven the \
                           quay is quiet again and the gulls take over.";

    /// A discussion on `passage` of [`ARTICLE`], anchored as the widget anchors it.
    fn text_chat(passage: &str) -> Chat {
        let start = ARTICLE.find(passage).expect("in the article") as u32;
        let end = start + image_chat_anchor::units::utf16_len(passage) as u32;
        let anchor = image_chat_anchor::describe(ARTICLE, start..end).expect("anchors");
        Chat {
            anchor: Anchor::Text(anchor),
            resolved: false,
            ..chat()
        }
    }

    #[test]
    fn a_text_discussion_is_a_quote_with_its_position_and_plans_back_to_itself() {
        let page = Subject::Page(PageId::new("https://acme.example/blog/harbour#story"));
        let discussion = text_chat("Fishing boats leave");
        let a = to_annotation(&page, &discussion);
        assert_eq!(a["type"], "Annotation");
        assert_eq!(a["target"]["source"], page.as_str());
        assert_eq!(
            a["target"]["selector"],
            json!([
                {"type": "TextQuoteSelector", "exact": "Fishing boats leave",
                 "prefix": "The harbour at dawn. ",
                 "suffix": " before six; by seven the quay i"},
                {"type": "TextPositionSelector", "start": 21, "end": 40},
            ])
        );
        assert_eq!(a["body"].as_array().map(Vec::len), Some(2));

        let planned = plan(&page, &collection(vec![a.clone()])).expect("plan");
        assert_eq!(planned.len(), 1);
        assert_eq!(
            (&planned[0].id, &planned[0].anchor),
            (&discussion.id, &discussion.anchor)
        );
        assert_eq!(planned[0].comments.len(), 2);
        // A tenant file puts it under its page, beside the images.
        let image = chat();
        let on_image = to_annotation(&Subject::Image(ImageId::new(page.as_str())), &image);
        let groups = by_subject(&json!([a.clone(), on_image])).expect("grouped");
        let subjects: Vec<&Subject> = groups.iter().map(|(s, _)| s).collect();
        assert_eq!(
            subjects,
            [&page, &Subject::Image(ImageId::new(page.as_str()))]
        );
        // A passage cannot go on an image, nor a place on an image on a page.
        let image_subject = Subject::Image(ImageId::new(page.as_str()));
        assert_eq!(
            plan(&image_subject, &a),
            Err(ImportError::WrongKind(0, "text", "image"))
        );
        let mut placed = a.clone();
        placed["target"]["selector"] =
            json!({"type": "FragmentSelector", "value": "xywh=percent:1,2,0,0"});
        assert_eq!(
            plan(&page, &placed),
            Err(ImportError::WrongKind(0, "xywh", "page"))
        );
        // Context that is empty (a passage at the very start) is left out.
        let first = to_annotation(&page, &text_chat("The harbour"));
        assert_eq!(first["target"]["selector"][0].get("prefix"), None);
        assert_eq!(first["target"]["selector"][1]["start"], 0);
    }

    #[test]
    fn other_tools_quotes_are_cut_to_the_context_kept_and_placed() {
        let page = Subject::Page(PageId::new("https://example.org/post"));
        // Hypothesis-style: long context, no position; the cut never splits a character.
        let long_prefix = format!("{}🦀 the crab said: ", "a".repeat(40));
        let hypothesis = json!({
            "type": "Annotation",
            "body": [{"type": "TextualBody", "value": "Nice", "purpose": "commenting"}],
            "target": {"source": page.as_str(), "selector": [
                {"type": "RangeSelector", "startSelector": {"type": "XPathSelector", "value": "/p[1]"}},
                {"type": "TextQuoteSelector", "exact": "hello", "prefix": long_prefix,
                 "suffix": format!("{}🦀 tail", "b".repeat(31))},
            ]},
        });
        let planned = plan(&page, &hypothesis).expect("plan");
        let Anchor::Text(anchor) = &planned[0].anchor else {
            panic!("a text anchor: {:?}", planned[0].anchor)
        };
        assert_eq!(
            anchor.prefix,
            format!("{}🦀 the crab said: ", "a".repeat(14))
        );
        assert_eq!(image_chat_anchor::units::utf16_len(&anchor.prefix), 32);
        assert_eq!(
            anchor.suffix,
            "b".repeat(31),
            "the crab would pass 32 units"
        );
        assert_eq!((anchor.start, anchor.end), (0, 5));
        assert_eq!(anchor.validate(), Ok(()));
        // A position is taken as the start; `end` follows from `exact`, whatever it said.
        let mut placed = hypothesis.clone();
        placed["target"]["selector"] = json!([
            {"type": "TextQuoteSelector", "exact": "h🦀llo"},
            {"type": "TextPositionSelector", "start": 120, "end": 125},
        ]);
        let planned = plan(&page, &placed).expect("plan");
        let Anchor::Text(anchor) = &planned[0].anchor else {
            panic!("a text anchor")
        };
        assert_eq!((anchor.start, anchor.end), (120, 126));
        // Without an exact quote there is no passage.
        placed["target"]["selector"] = json!([{"type": "TextQuoteSelector", "prefix": "x"}]);
        assert_eq!(plan(&page, &placed), Err(ImportError::NoSelector(0)));
    }
}
