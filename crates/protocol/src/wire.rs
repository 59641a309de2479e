//! The client side of the wire without serde: encoding client frames ([`ClientMessage::to_json`])
//! and decoding server frames ([`ServerMessage::decode`]).
//!
//! Why by hand: the widget ships as WebAssembly and every byte is downloaded by every visitor.
//! serde's derived decoders for `type`-tagged enums buffer each message into an intermediate
//! tree first (its `Content` machinery), and with serde_json and the float formatter they made
//! up the largest part of the bundle. Here a server frame is read in one pass straight into the
//! protocol types (a tagged object is pre-scanned for its tag only when the tag is not its first
//! key, which the server never does), and client frames are written directly.
//!
//! The wire shape is *not* defined here: it is the serde derives on the types (plus the two
//! hand-written serde impls in [`crate::model`]: the `[x, y]` point anchor and the chat whose
//! opening comment has no `id`) and `docs/PROTOCOL.md`. Tests pin this module to them: every server fixture decodes to what
//! serde decodes, every client fixture is encoded byte for byte, and property tests compare both
//! directions with serde on random messages (`tests/wire.rs`). Decoding follows serde's rules:
//! unknown fields are ignored, a missing required field, a duplicate field, a wrong type or
//! trailing characters are errors, `null` is "absent" for optional fields. Deliberate
//! differences: a message written as a JSON array (which serde's tagged enums also accept) is
//! refused, and floats are read exactly or refused ([`crate::number::parse`]'s fast path: a
//! coordinate with more than about 16 significant digits or a power of ten beyond ±22, which
//! serde reads, is refused; the canonical 5-decimal coordinates read the same either way).
//! Encoding is byte for byte what serde_json writes, except non-canonical coordinates (only
//! tests send them): the same value, in 17 significant digits rather than the shortest form.
//! No float formatter or parser with tables is linked.

use std::borrow::Cow;

use thiserror::Error;

use crate::client::{Auth, ClientMessage};
use crate::error::ErrorCode;
use crate::ids::Subject;
use crate::ids::{BroadcastId, ChatId, CommentId};
use crate::model::{Anchor, Chat, Comment, Position, Snapshot, TextAnchor, User};
use crate::server::{
    Ack, Batch, ChatChange, DeletedImageChat, ErrorFrame, Event, ImageChatUpdated, Lock,
    NewImageChat, Pong, Presence, ServerMessage, Welcome,
};

/// Nesting deeper than this is refused (serde_json's limit too), so a hostile frame cannot
/// exhaust the stack.
const MAX_DEPTH: usize = 128;

/// Why a server frame could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Not JSON (or trailing characters after it); the byte offset where reading stopped.
    #[error("invalid JSON at byte {0}")]
    Syntax(usize),
    /// Nested deeper than the limit.
    #[error("JSON nested too deeply")]
    TooDeep,
    /// A required field is missing.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field is present twice.
    #[error("duplicate field `{0}`")]
    Duplicate(&'static str),
    /// A field (or the frame itself) has the wrong type or an out-of-range value.
    #[error("invalid value for `{0}`")]
    Invalid(&'static str),
    /// The `type` (or `kind`) names nothing this client knows.
    #[error("unknown message type")]
    UnknownType,
}

type Result<T> = std::result::Result<T, FrameError>;

impl ServerMessage {
    /// Decodes a frame from the server without serde (see the [module docs](self)). This is
    /// what the widget's sync engine uses; [`ServerMessage::from_json`] is the serde reference.
    pub fn decode(text: &str) -> Result<Self> {
        let mut c = Cursor::new(text);
        let message = server_message(&mut c)?;
        c.ws();
        if c.pos != text.len() {
            return c.syntax();
        }
        Ok(message)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// A position in the frame being read.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    // Inlined (as `ws`'s test below): called for nearly every byte of a frame, and a call is
    // dear in V8's baseline wasm tier, which runs a page's first snapshot.
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn syntax<T>(&self) -> Result<T> {
        Err(FrameError::Syntax(self.pos))
    }

    /// Skips JSON whitespace (space, tab, LF, CR). The server writes none, so the test for
    /// it is inlined and the loop is not.
    #[inline(always)]
    fn ws(&mut self) {
        if let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.skip_ws();
        }
    }

    #[inline(never)]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        self.ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.eat(byte) {
            Ok(())
        } else {
            self.syntax()
        }
    }

    fn literal(&mut self, word: &str) -> Result<()> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.syntax()
        }
    }

    /// Consumes `null` if it comes next (an absent optional value).
    fn null(&mut self) -> Result<bool> {
        self.ws();
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads a string, borrowing it when it has no escapes.
    fn str(&mut self) -> Result<Cow<'a, str>> {
        self.expect(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.pos;
        self.pos = plain_run(bytes, self.pos);
        loop {
            match bytes.get(self.pos) {
                None => return self.syntax(),
                Some(b'"') => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(&b) if b < 0x20 => return self.syntax(),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            match bytes.get(self.pos) {
                None => return self.syntax(),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let simple = match bytes.get(self.pos) {
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'/') => Some('/'),
                        Some(b'b') => Some('\u{8}'),
                        Some(b'f') => Some('\u{c}'),
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        Some(b'u') => None,
                        _ => return self.syntax(),
                    };
                    self.pos += 1;
                    let ch = match simple {
                        Some(ch) => ch,
                        None => self.unicode_escape()?,
                    };
                    out.push(ch);
                }
                Some(&b) if b < 0x20 => return self.syntax(),
                Some(_) => {
                    // Copy a run of plain characters at once (keeps multi-byte UTF-8 whole).
                    let run = self.pos;
                    while let Some(&b) = bytes.get(self.pos) {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.pos += 1;
                    }
                    out.push_str(&self.text[run..self.pos]);
                }
            }
        }
    }

    /// Reads the 4 hex digits after `\u` (and a second escape for a surrogate pair).
    fn unicode_escape(&mut self) -> Result<char> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                if !self.text[self.pos..].starts_with("\\u") {
                    return self.syntax();
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return self.syntax();
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return self.syntax(),
            other => other,
        };
        char::from_u32(code).map_or_else(|| self.syntax(), Ok)
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.text.get(self.pos..self.pos + 4).unwrap_or_default();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.syntax();
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_or_else(|_| self.syntax(), Ok)
    }

    fn string(&mut self) -> Result<String> {
        self.str().map(Cow::into_owned)
    }

    /// Reads a JSON number token; returns its text and whether it is an integer.
    fn number(&mut self) -> Result<(&'a str, bool)> {
        self.ws();
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let digits = |c: &mut Self| {
            let from = c.pos;
            while bytes.get(c.pos).is_some_and(u8::is_ascii_digit) {
                c.pos += 1;
            }
            c.pos - from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 || (n > 1 && bytes[int_start] == b'0') {
            return self.syntax();
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integer = false;
            if digits(self) == 0 {
                return self.syntax();
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.syntax();
            }
        }
        Ok((&self.text[start..self.pos], integer))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64> {
        let (token, integer) = self.number()?;
        if !integer {
            return Err(FrameError::Invalid(field));
        }
        // Negative numbers (even `-0`, a float to serde_json) are refused for unsigned fields.
        // The rest is digits (`number` checked): read here rather than by `str::parse`, whose
        // overflow checks are a 128-bit multiplication call per digit on wasm32.
        let mut n = 0;
        for &c in token.as_bytes() {
            if !c.is_ascii_digit() {
                return Err(FrameError::Invalid(field));
            }
            n = crate::number::push_digit(n, u64::from(c - b'0'))
                .ok_or(FrameError::Invalid(field))?;
        }
        Ok(n)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32> {
        u32::try_from(self.u64(field)?).map_err(|_| FrameError::Invalid(field))
    }

    /// A float, read exactly or refused: JSON numbers beyond the fast path of
    /// [`crate::number::parse`] (more than 2^53 in their significant digits, or a power of ten
    /// beyond ±22) are refused although serde reads them. Coordinates, the only floats, have
    /// at most five decimals on the wire.
    fn f64(&mut self, field: &'static str) -> Result<f64> {
        let (token, _) = self.number()?;
        match crate::number::parse(token) {
            Some(crate::number::Decimal { value, exact: true }) => Ok(value),
            _ => Err(FrameError::Invalid(field)),
        }
    }

    fn bool(&mut self, field: &'static str) -> Result<bool> {
        self.ws();
        match self.peek() {
            Some(b't') => self.literal("true").map(|()| true),
            Some(b'f') => self.literal("false").map(|()| false),
            _ => Err(FrameError::Invalid(field)),
        }
    }

    /// Skips one value of any type, checking it is well-formed.
    fn skip(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(FrameError::TooDeep);
        }
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(depth, |c, _| c.skip(depth + 1)),
            Some(b'[') => self.array(depth, |c| c.skip(depth + 1)),
            Some(b'"') => self.str().map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            _ => self.number().map(drop),
        }
    }

    /// Reads an object, calling `field` with the cursor on each value (which it must consume).
    fn object(
        &mut self,
        depth: usize,
        mut field: impl FnMut(&mut Self, &str) -> Result<()>,
    ) -> Result<()> {
        self.object_dyn(depth, &mut field)
    }

    /// [`Cursor::object`]'s loop, compiled once: generic over the callback, it was copied into
    /// every message type's reader.
    fn object_dyn(
        &mut self,
        depth: usize,
        field: &mut dyn FnMut(&mut Self, &str) -> Result<()>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(FrameError::TooDeep);
        }
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let key = self.str()?;
            self.expect(b':')?;
            field(self, &key)?;
            if self.eat(b',') {
                continue;
            }
            return self.expect(b'}');
        }
    }

    /// Reads a tagged object: the tag key `tag` (already read by [`Cursor::tag`]) is skipped,
    /// and refused if present twice, as serde does.
    fn tagged(
        &mut self,
        depth: usize,
        tag: &'static str,
        mut field: impl FnMut(&mut Self, &str) -> Result<()>,
    ) -> Result<()> {
        let mut seen = false;
        self.object(depth, |c, key| {
            if key != tag {
                return field(c, key);
            }
            if seen {
                return Err(FrameError::Duplicate(tag));
            }
            seen = true;
            c.skip(depth + 1)
        })
    }

    /// Reads an array, calling `item` with the cursor on each element.
    fn array(&mut self, depth: usize, mut item: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.array_dyn(depth, &mut item)
    }

    /// [`Cursor::array`]'s loop, compiled once (see [`Cursor::object_dyn`]).
    fn array_dyn(
        &mut self,
        depth: usize,
        item: &mut dyn FnMut(&mut Self) -> Result<()>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(FrameError::TooDeep);
        }
        self.expect(b'[')?;
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            item(self)?;
            if self.eat(b',') {
                continue;
            }
            return self.expect(b']');
        }
    }

    /// The value of the tag key `key` of the object at the cursor, without moving the cursor.
    /// The server writes the tag first, so this is normally one key long.
    fn tag(&self, key: &'static str, depth: usize) -> Result<Cow<'a, str>> {
        let mut scan = *self;
        scan.ws();
        if scan.peek() != Some(b'{') {
            return Err(FrameError::Invalid(key));
        }
        let mut found: Option<Cow<'a, str>> = None;
        let mut first = true;
        let result = scan.object(depth, |c, k| {
            if k == key {
                if found.is_some() {
                    return Err(FrameError::Duplicate(key));
                }
                c.ws();
                if c.peek() != Some(b'"') {
                    return Err(FrameError::Invalid(key));
                }
                found = Some(c.str()?);
                if first {
                    // Stop at once: the rest is read (and checked) by the variant's decoder.
                    return Err(FrameError::Syntax(usize::MAX));
                }
            } else {
                c.skip(depth + 1)?;
            }
            first = false;
            Ok(())
        });
        match (result, found) {
            (Ok(()) | Err(FrameError::Syntax(usize::MAX)), Some(tag)) => Ok(tag),
            (Ok(()), None) => Err(FrameError::Missing(key)),
            (Err(e), _) => Err(e),
        }
    }
}

/// Where the run of plain string bytes (neither a quote, a backslash nor a control character)
/// from `at` ends, or a little before: eight bytes at a time, so a snapshot's ~100 KB of ids,
/// names and texts take an eighth of the steps (each dear in V8's baseline wasm tier, which
/// runs a page's first snapshot); the caller's byte loop reads the rest. A word is left at the
/// first byte that is, or may be, special (the bit tests can flag a plain byte after a
/// special one, never miss one).
#[inline(always)]
fn plain_run(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A high bit for each byte of `x` that is below `n` (for bytes below 0x80; the others are
    // never flagged, and UTF-8's are all plain).
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    while let Some(&[a, b, c, d, e, f, g, h]) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
        if below(x, 0x20)
            | below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1)
            != 0
        {
            break;
        }
        at += 8;
    }
    at
}

/// Stores a field's value, refusing a second one.
fn once<T>(slot: &mut Option<T>, name: &'static str, value: Result<T>) -> Result<()> {
    if slot.is_some() {
        return Err(FrameError::Duplicate(name));
    }
    *slot = Some(value?);
    Ok(())
}

fn required<T>(slot: Option<T>, name: &'static str) -> Result<T> {
    slot.ok_or(FrameError::Missing(name))
}

/// An optional field: `null` counts as absent.
fn optional<'a, T>(
    c: &mut Cursor<'a>,
    slot: &mut Option<Option<T>>,
    name: &'static str,
    read: impl FnOnce(&mut Cursor<'a>) -> Result<T>,
) -> Result<()> {
    let value = if c.null()? {
        Ok(None)
    } else {
        read(c).map(Some)
    };
    once(slot, name, value)
}

fn server_message(c: &mut Cursor<'_>) -> Result<ServerMessage> {
    let tag = c.tag("type", 0)?;
    Ok(match tag.as_ref() {
        "welcome" => ServerMessage::Welcome(welcome(c, 0)?),
        "batch" => ServerMessage::Batch(batch(c)?),
        "ack" => ServerMessage::Ack(ack(c)?),
        "error" => ServerMessage::Error(error_frame(c)?),
        "presence" => ServerMessage::Presence(presence(c)?),
        "lock" => ServerMessage::Lock(lock(c)?),
        "pong" => ServerMessage::Pong(pong(c)?),
        other => event_of(other, c, 0)?.into(),
    })
}

fn event(c: &mut Cursor<'_>, depth: usize) -> Result<Event> {
    let tag = c.tag("type", depth)?;
    event_of(&tag, c, depth)
}

fn event_of(tag: &str, c: &mut Cursor<'_>, depth: usize) -> Result<Event> {
    match tag {
        "new-image-chat" => new_image_chat(c, depth).map(Event::NewImageChat),
        "image-chat-updated" => image_chat_updated(c, depth).map(Event::ImageChatUpdated),
        "deleted-image-chat" => deleted_image_chat(c, depth).map(Event::DeletedImageChat),
        "new-text-chat" => new_image_chat(c, depth).map(Event::NewTextChat),
        "updated-text-chat" => image_chat_updated(c, depth).map(Event::UpdatedTextChat),
        "deleted-text-chat" => deleted_image_chat(c, depth).map(Event::DeletedTextChat),
        _ => Err(FrameError::UnknownType),
    }
}

fn welcome(c: &mut Cursor<'_>, depth: usize) -> Result<Welcome> {
    let (mut you, mut token, mut position, mut recovered) = (None, None, None, None);
    let (mut events, mut snapshot, mut online, mut read_only) = (None, None, None, None);
    let mut locked = None;
    c.tagged(depth, "type", |c, key| match key {
        "you" => once(&mut you, "you", user(c, depth + 1)),
        "token" => optional(c, &mut token, "token", Cursor::string),
        "position" => once(&mut position, "position", self::position(c, depth + 1)),
        "recovered" => once(&mut recovered, "recovered", c.bool("recovered")),
        "events" => once(&mut events, "events", list(c, depth + 1, event)),
        "snapshot" => optional(c, &mut snapshot, "snapshot", |c| {
            self::snapshot(c, depth + 1)
        }),
        "online" => once(&mut online, "online", c.u32("online")),
        "readOnly" => once(&mut read_only, "readOnly", c.bool("readOnly")),
        "locked" => once(&mut locked, "locked", c.bool("locked")),
        _ => c.skip(depth + 1),
    })?;
    Ok(Welcome {
        you: required(you, "you")?,
        token: token.flatten(),
        position: required(position, "position")?,
        recovered: required(recovered, "recovered")?,
        events: events.unwrap_or_default(),
        snapshot: snapshot.flatten(),
        online: required(online, "online")?,
        // Absent means false (the server omits it then).
        read_only: read_only.unwrap_or(false),
        locked: locked.unwrap_or(false),
    })
}

fn list<T>(
    c: &mut Cursor<'_>,
    depth: usize,
    item: impl Fn(&mut Cursor<'_>, usize) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    c.array(depth, |c| {
        out.push(item(c, depth + 1)?);
        Ok(())
    })?;
    Ok(out)
}

fn user(c: &mut Cursor<'_>, depth: usize) -> Result<User> {
    let (mut id, mut name, mut avatar_url) = (None, None, None);
    let (mut is_moderator, mut signed_in) = (None, None);
    c.object(depth, |c, key| match key {
        "id" => once(&mut id, "id", c.string()),
        "name" => once(&mut name, "name", c.string()),
        "avatarUrl" => optional(c, &mut avatar_url, "avatarUrl", Cursor::string),
        "isModerator" => once(&mut is_moderator, "isModerator", c.bool("isModerator")),
        "signedIn" => once(&mut signed_in, "signedIn", c.bool("signedIn")),
        _ => c.skip(depth + 1),
    })?;
    Ok(User {
        id: required(id, "id")?,
        name: required(name, "name")?,
        avatar_url: avatar_url.flatten(),
        is_moderator: is_moderator.unwrap_or(false),
        signed_in: signed_in.unwrap_or(false),
    })
}

fn position(c: &mut Cursor<'_>, depth: usize) -> Result<Position> {
    let (mut epoch, mut seq) = (None, None);
    c.object(depth, |c, key| match key {
        "epoch" => once(&mut epoch, "epoch", c.u32("epoch")),
        "seq" => once(&mut seq, "seq", c.u64("seq")),
        _ => c.skip(depth + 1),
    })?;
    Ok(Position {
        epoch: required(epoch, "epoch")?,
        seq: required(seq, "seq")?,
    })
}

fn snapshot(c: &mut Cursor<'_>, depth: usize) -> Result<Snapshot> {
    let mut chats = None;
    c.object(depth, |c, key| match key {
        "chats" => once(&mut chats, "chats", list(c, depth + 1, chat)),
        _ => c.skip(depth + 1),
    })?;
    Ok(Snapshot {
        chats: required(chats, "chats")?,
    })
}

/// A chat: its opening comment has no `id` on the wire and gets the chat's (which may come
/// after `comments` in the object, so it is set at the end).
fn chat(c: &mut Cursor<'_>, depth: usize) -> Result<Chat> {
    let (mut id, mut anchor_, mut comments, mut resolved) = (None, None, None, None);
    c.object(depth, |c, key| match key {
        "id" => once(&mut id, "id", c.string().map(ChatId::new)),
        "anchor" => once(&mut anchor_, "anchor", anchor(c, depth + 1)),
        "comments" => once(&mut comments, "comments", thread(c, depth + 1)),
        "resolved" => once(&mut resolved, "resolved", c.bool("resolved")),
        _ => c.skip(depth + 1),
    })?;
    let id: ChatId = required(id, "id")?;
    let anchor = required(anchor_, "anchor")?;
    let mut comments: Vec<Comment> = required(comments, "comments")?;
    if let Some(opening) = comments.first_mut() {
        opening.id = id.opening_comment();
    }
    Ok(Chat {
        id,
        anchor,
        comments,
        resolved: resolved.unwrap_or(false),
    })
}

/// A chat's comments, read straight into their final list (a snapshot holds thousands): the
/// first must have no `id` and gets an empty one here, for [`chat`] to set; every other must
/// have one.
fn thread(c: &mut Cursor<'_>, depth: usize) -> Result<Vec<Comment>> {
    // Room for the opening comment, the only one of most threads, without the growth path.
    let mut out: Vec<Comment> = Vec::with_capacity(1);
    c.array(depth, |c| {
        let mut parts = comment_parts(c, depth + 1)?;
        let id = match (out.is_empty(), parts.id.take()) {
            (true, None) => CommentId::new(String::new()),
            (true, Some(_)) => return Err(FrameError::Invalid("id")),
            (false, Some(id)) => id,
            (false, None) => return Err(FrameError::Missing("id")),
        };
        out.push(parts.with_id(id));
        Ok(())
    })?;
    Ok(out)
}

/// A point is `[x, y]`; an object is a kind tagged by `type` (`region`, `text`; any other kind
/// is one this client does not know).
fn anchor(c: &mut Cursor<'_>, depth: usize) -> Result<Anchor> {
    c.ws();
    match c.peek() {
        Some(b'[') => {}
        Some(b'{') => return tagged_anchor(c, depth),
        _ => return Err(FrameError::Invalid("anchor")),
    }
    let mut xy = [0.0; 2];
    let mut n = 0;
    c.array(depth, |c| {
        let slot = xy.get_mut(n).ok_or(FrameError::Invalid("anchor"))?;
        *slot = c.f64("anchor")?;
        n += 1;
        Ok(())
    })?;
    if n != 2 {
        return Err(FrameError::Invalid("anchor"));
    }
    Ok(Anchor::Point { x: xy[0], y: xy[1] })
}

/// `{"type":"region","x":…,"y":…,"w":…,"h":…}` or
/// `{"type":"text","exact":…,"prefix":…,"suffix":…,"start":…,"end":…}`.
fn tagged_anchor(c: &mut Cursor<'_>, depth: usize) -> Result<Anchor> {
    match c.tag("type", depth)?.as_ref() {
        "region" => {}
        "text" => return text_anchor(c, depth),
        _ => return Err(FrameError::UnknownType),
    }
    let mut v: [Option<f64>; 4] = [None; 4];
    c.tagged(depth, "type", |c, key| {
        let i = match key {
            "x" => 0,
            "y" => 1,
            "w" => 2,
            "h" => 3,
            _ => return c.skip(depth + 1),
        };
        once(&mut v[i], "anchor", c.f64("anchor"))
    })?;
    let [Some(x), Some(y), Some(w), Some(h)] = v else {
        return Err(FrameError::Missing("anchor"));
    };
    Ok(Anchor::Region { x, y, w, h })
}

/// The fields of a text anchor (its tag already known).
fn text_anchor(c: &mut Cursor<'_>, depth: usize) -> Result<Anchor> {
    let (mut exact, mut prefix, mut suffix) = (None, None, None);
    let (mut start, mut end) = (None, None);
    c.tagged(depth, "type", |c, key| match key {
        "exact" => once(&mut exact, "anchor", c.string()),
        "prefix" => once(&mut prefix, "anchor", c.string()),
        "suffix" => once(&mut suffix, "anchor", c.string()),
        "start" => once(&mut start, "anchor", c.u32("anchor")),
        "end" => once(&mut end, "anchor", c.u32("anchor")),
        _ => c.skip(depth + 1),
    })?;
    let (Some(exact), Some(prefix), Some(suffix), Some(start), Some(end)) =
        (exact, prefix, suffix, start, end)
    else {
        return Err(FrameError::Missing("anchor"));
    };
    Ok(Anchor::Text(TextAnchor {
        exact,
        prefix,
        suffix,
        start,
        end,
    }))
}

/// A comment as read, before its id is settled: a chat's opening comment has none on the wire.
struct CommentParts {
    id: Option<CommentId>,
    author: User,
    text: String,
    created_at: u64,
    edited_at: Option<u64>,
}

impl CommentParts {
    fn with_id(self, id: CommentId) -> Comment {
        Comment {
            id,
            author: self.author,
            text: self.text,
            created_at: self.created_at,
            edited_at: self.edited_at,
        }
    }
}

fn comment_parts(c: &mut Cursor<'_>, depth: usize) -> Result<CommentParts> {
    let (mut id, mut author, mut text) = (None, None, None);
    let (mut created_at, mut edited_at) = (None, None);
    c.object(depth, |c, key| match key {
        // Optional (and `null` is absent) only so the opening comment of a chat can omit it;
        // the callers require it everywhere else.
        "id" => optional(c, &mut id, "id", |c| c.string().map(CommentId::new)),
        "author" => once(&mut author, "author", user(c, depth + 1)),
        "text" => once(&mut text, "text", c.string()),
        "createdAt" => once(&mut created_at, "createdAt", c.u64("createdAt")),
        "editedAt" => optional(c, &mut edited_at, "editedAt", |c| c.u64("editedAt")),
        _ => c.skip(depth + 1),
    })?;
    Ok(CommentParts {
        id: id.flatten(),
        author: required(author, "author")?,
        text: required(text, "text")?,
        created_at: required(created_at, "createdAt")?,
        edited_at: edited_at.flatten(),
    })
}

fn comment(c: &mut Cursor<'_>, depth: usize) -> Result<Comment> {
    let parts = comment_parts(c, depth)?;
    let id = required(parts.id.clone(), "id")?;
    Ok(parts.with_id(id))
}

/// The fields every broadcast event carries.
#[derive(Default)]
struct Head {
    seq: Option<u64>,
    epoch: Option<u32>,
    broadcast_id: Option<BroadcastId>,
}

impl Head {
    /// Reads `key` if it is one of the common fields; `Ok(false)` otherwise.
    fn field(&mut self, c: &mut Cursor<'_>, key: &str) -> Result<bool> {
        match key {
            "seq" => once(&mut self.seq, "seq", c.u64("seq"))?,
            "epoch" => once(&mut self.epoch, "epoch", c.u32("epoch"))?,
            "broadcastId" => once(
                &mut self.broadcast_id,
                "broadcastId",
                c.string().map(BroadcastId::new),
            )?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(self) -> Result<(u64, u32, BroadcastId)> {
        Ok((
            required(self.seq, "seq")?,
            required(self.epoch, "epoch")?,
            required(self.broadcast_id, "broadcastId")?,
        ))
    }
}

fn new_image_chat(c: &mut Cursor<'_>, depth: usize) -> Result<NewImageChat> {
    let (mut head, mut chat_) = (Head::default(), None);
    c.tagged(depth, "type", |c, key| {
        if head.field(c, key)? {
            return Ok(());
        }
        match key {
            "chat" => once(&mut chat_, "chat", chat(c, depth + 1)),
            _ => c.skip(depth + 1),
        }
    })?;
    let (seq, epoch, broadcast_id) = head.finish()?;
    Ok(NewImageChat {
        seq,
        epoch,
        broadcast_id,
        chat: required(chat_, "chat")?,
    })
}

fn image_chat_updated(c: &mut Cursor<'_>, depth: usize) -> Result<ImageChatUpdated> {
    let (mut head, mut chat_id, mut change_) = (Head::default(), None, None);
    c.tagged(depth, "type", |c, key| {
        if head.field(c, key)? {
            return Ok(());
        }
        match key {
            "chatId" => once(&mut chat_id, "chatId", c.string().map(ChatId::new)),
            "change" => once(&mut change_, "change", change(c, depth + 1)),
            _ => c.skip(depth + 1),
        }
    })?;
    let (seq, epoch, broadcast_id) = head.finish()?;
    Ok(ImageChatUpdated {
        seq,
        epoch,
        broadcast_id,
        chat_id: required(chat_id, "chatId")?,
        change: required(change_, "change")?,
    })
}

fn change(c: &mut Cursor<'_>, depth: usize) -> Result<ChatChange> {
    let kind = c.tag("kind", depth)?;
    match kind.as_ref() {
        "comment-added" => {
            let mut comment_ = None;
            c.tagged(depth, "kind", |c, key| match key {
                "comment" => once(&mut comment_, "comment", comment(c, depth + 1)),
                _ => c.skip(depth + 1),
            })?;
            Ok(ChatChange::CommentAdded {
                comment: required(comment_, "comment")?,
            })
        }
        "comment-edited" => {
            let (mut comment_id, mut text, mut edited_at) = (None, None, None);
            c.tagged(depth, "kind", |c, key| match key {
                "commentId" => once(&mut comment_id, "commentId", c.string().map(CommentId::new)),
                "text" => once(&mut text, "text", c.string()),
                "editedAt" => once(&mut edited_at, "editedAt", c.u64("editedAt")),
                _ => c.skip(depth + 1),
            })?;
            Ok(ChatChange::CommentEdited {
                comment_id: required(comment_id, "commentId")?,
                text: required(text, "text")?,
                edited_at: required(edited_at, "editedAt")?,
            })
        }
        "comment-deleted" => {
            let mut comment_id = None;
            c.tagged(depth, "kind", |c, key| match key {
                "commentId" => once(&mut comment_id, "commentId", c.string().map(CommentId::new)),
                _ => c.skip(depth + 1),
            })?;
            Ok(ChatChange::CommentDeleted {
                comment_id: required(comment_id, "commentId")?,
            })
        }
        "resolved" => {
            let mut resolved = None;
            c.tagged(depth, "kind", |c, key| match key {
                "resolved" => once(&mut resolved, "resolved", c.bool("resolved")),
                _ => c.skip(depth + 1),
            })?;
            Ok(ChatChange::Resolved {
                resolved: required(resolved, "resolved")?,
            })
        }
        "moved" => {
            let mut anchor_ = None;
            c.tagged(depth, "kind", |c, key| match key {
                "anchor" => once(&mut anchor_, "anchor", anchor(c, depth + 1)),
                _ => c.skip(depth + 1),
            })?;
            Ok(ChatChange::Moved {
                anchor: required(anchor_, "anchor")?,
            })
        }
        _ => Err(FrameError::UnknownType),
    }
}

fn deleted_image_chat(c: &mut Cursor<'_>, depth: usize) -> Result<DeletedImageChat> {
    let (mut head, mut chat_id) = (Head::default(), None);
    c.tagged(depth, "type", |c, key| {
        if head.field(c, key)? {
            return Ok(());
        }
        match key {
            "chatId" => once(&mut chat_id, "chatId", c.string().map(ChatId::new)),
            _ => c.skip(depth + 1),
        }
    })?;
    let (seq, epoch, broadcast_id) = head.finish()?;
    Ok(DeletedImageChat {
        seq,
        epoch,
        broadcast_id,
        chat_id: required(chat_id, "chatId")?,
    })
}

fn batch(c: &mut Cursor<'_>) -> Result<Batch> {
    let mut events = None;
    c.tagged(0, "type", |c, key| match key {
        "events" => once(&mut events, "events", list(c, 1, event)),
        _ => c.skip(1),
    })?;
    Ok(Batch {
        events: required(events, "events")?,
    })
}

fn ack(c: &mut Cursor<'_>) -> Result<Ack> {
    let (mut broadcast_id, mut seq) = (None, None);
    c.tagged(0, "type", |c, key| match key {
        "broadcastId" => once(
            &mut broadcast_id,
            "broadcastId",
            c.string().map(BroadcastId::new),
        ),
        "seq" => once(&mut seq, "seq", c.u64("seq")),
        _ => c.skip(1),
    })?;
    Ok(Ack {
        broadcast_id: required(broadcast_id, "broadcastId")?,
        seq: required(seq, "seq")?,
    })
}

fn error_frame(c: &mut Cursor<'_>) -> Result<ErrorFrame> {
    let (mut broadcast_id, mut code, mut message) = (None, None, None);
    c.tagged(0, "type", |c, key| match key {
        "broadcastId" => optional(c, &mut broadcast_id, "broadcastId", |c| {
            c.string().map(BroadcastId::new)
        }),
        "code" => {
            let value = c
                .str()
                .and_then(|s| ErrorCode::from_wire(&s).ok_or(FrameError::Invalid("code")));
            once(&mut code, "code", value)
        }
        "message" => once(&mut message, "message", c.string()),
        _ => c.skip(1),
    })?;
    Ok(ErrorFrame {
        broadcast_id: broadcast_id.flatten(),
        code: required(code, "code")?,
        message: required(message, "message")?,
    })
}

fn presence(c: &mut Cursor<'_>) -> Result<Presence> {
    let mut online = None;
    c.tagged(0, "type", |c, key| match key {
        "online" => once(&mut online, "online", c.u32("online")),
        _ => c.skip(1),
    })?;
    Ok(Presence {
        online: required(online, "online")?,
    })
}

fn lock(c: &mut Cursor<'_>) -> Result<Lock> {
    let mut locked = None;
    c.tagged(0, "type", |c, key| match key {
        "locked" => once(&mut locked, "locked", c.bool("locked")),
        _ => c.skip(1),
    })?;
    Ok(Lock {
        locked: required(locked, "locked")?,
    })
}

fn pong(c: &mut Cursor<'_>) -> Result<Pong> {
    let mut nonce = None;
    c.tagged(0, "type", |c, key| match key {
        "nonce" => once(&mut nonce, "nonce", c.u64("nonce")),
        _ => c.skip(1),
    })?;
    Ok(Pong {
        nonce: required(nonce, "nonce")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Writes a client message as compact JSON, in the serde derives' field order.
pub(crate) fn encode_client(message: &ClientMessage) -> String {
    let mut w = Writer(String::with_capacity(256));
    match message {
        ClientMessage::Hello(hello) => {
            w.tag("hello");
            w.key("protocol");
            w.uint(u64::from(hello.protocol));
            w.str_field("tenantId", hello.tenant_id.as_str());
            match &hello.subject {
                Subject::Image(id) => w.str_field("imageId", id.as_str()),
                Subject::Page(id) => w.str_field("pageId", id.as_str()),
            }
            if let Some(auth) = &hello.auth {
                w.key("auth");
                match auth {
                    Auth::Anonymous { name, token } => {
                        w.tag("anonymous");
                        w.str_field("name", name);
                        if let Some(token) = token {
                            w.str_field("token", token);
                        }
                    }
                    Auth::Sso {
                        user_data,
                        timestamp,
                        hash,
                    } => {
                        w.tag("sso");
                        w.str_field("userData", user_data);
                        w.key("timestamp");
                        w.uint(*timestamp);
                        w.str_field("hash", hash);
                    }
                }
                w.close();
            }
            if let Some(resume) = &hello.resume {
                w.key("resume");
                w.0.push('{');
                w.0.push_str("\"epoch\":");
                w.uint(u64::from(resume.epoch));
                w.key("seq");
                w.uint(resume.seq);
                w.close();
            }
        }
        ClientMessage::CreateChat(op) => {
            w.tag("create-chat");
            w.str_field("broadcastId", op.broadcast_id.as_str());
            w.str_field("chatId", op.chat_id.as_str());
            w.anchor(&op.anchor);
            w.str_field("text", &op.text);
        }
        ClientMessage::AddComment(op) => {
            w.tag("add-comment");
            w.str_field("broadcastId", op.broadcast_id.as_str());
            w.str_field("chatId", op.chat_id.as_str());
            w.str_field("commentId", op.comment_id.as_str());
            w.str_field("text", &op.text);
        }
        ClientMessage::EditComment(op) => {
            w.tag("edit-comment");
            w.str_field("broadcastId", op.broadcast_id.as_str());
            w.str_field("chatId", op.chat_id.as_str());
            w.str_field("commentId", op.comment_id.as_str());
            w.str_field("text", &op.text);
        }
        ClientMessage::DeleteChat(op) => {
            w.tag("delete-chat");
            w.str_field("broadcastId", op.broadcast_id.as_str());
            w.str_field("chatId", op.chat_id.as_str());
        }
        ClientMessage::DeleteComment(op) => {
            w.tag("delete-comment");
            w.str_field("broadcastId", op.broadcast_id.as_str());
            w.str_field("chatId", op.chat_id.as_str());
            w.str_field("commentId", op.comment_id.as_str());
        }
        ClientMessage::ResolveChat(op) => {
            w.tag("resolve-chat");
            w.str_field("broadcastId", op.broadcast_id.as_str());
            w.str_field("chatId", op.chat_id.as_str());
            w.key("resolved");
            w.0.push_str(if op.resolved { "true" } else { "false" });
        }
        ClientMessage::MoveChat(op) => {
            w.tag("move-chat");
            w.str_field("broadcastId", op.broadcast_id.as_str());
            w.str_field("chatId", op.chat_id.as_str());
            w.anchor(&op.anchor);
        }
        ClientMessage::SetName { name } => {
            w.tag("set-name");
            w.str_field("name", name);
        }
        ClientMessage::SetLock { locked } => {
            w.tag("set-lock");
            w.key("locked");
            w.0.push_str(if *locked { "true" } else { "false" });
        }
        ClientMessage::Ping { nonce } => {
            w.tag("ping");
            w.key("nonce");
            w.uint(*nonce);
        }
    }
    w.close();
    w.0
}

struct Writer(String);

impl Writer {
    /// Opens an object with its `type` tag (always the first key, as serde writes it).
    fn tag(&mut self, name: &str) {
        self.0.push_str("{\"type\":");
        self.string(name);
    }

    fn close(&mut self) {
        self.0.push('}');
    }

    /// `,"key":` (every key here follows the tag or another field).
    fn key(&mut self, key: &str) {
        self.0.push_str(",\"");
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    fn str_field(&mut self, key: &str, value: &str) {
        self.key(key);
        self.string(value);
    }

    /// A string escaped exactly as serde_json does: `"`, `\` and control characters only.
    fn string(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.0.push('"');
        let mut run = 0;
        for (i, b) in s.bytes().enumerate() {
            let short = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                0x08 => "\\b",
                0x0c => "\\f",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.push_str(&s[run..i]);
            run = i + 1;
            if short.is_empty() {
                self.0.push_str("\\u00");
                self.0.push(char::from(HEX[usize::from(b >> 4)]));
                self.0.push(char::from(HEX[usize::from(b & 0xf)]));
            } else {
                self.0.push_str(short);
            }
        }
        self.0.push_str(&s[run..]);
        self.0.push('"');
    }

    /// `,"anchor":` and the anchor: `[x,y]`, or a region or text object (serde's field order).
    fn anchor(&mut self, anchor: &Anchor) {
        self.key("anchor");
        match *anchor {
            Anchor::Text(ref text) => {
                self.tag("text");
                self.str_field("exact", &text.exact);
                self.str_field("prefix", &text.prefix);
                self.str_field("suffix", &text.suffix);
                self.key("start");
                self.uint(u64::from(text.start));
                self.key("end");
                self.uint(u64::from(text.end));
                self.close();
            }
            Anchor::Point { x, y } => {
                self.0.push('[');
                self.fraction(x);
                self.0.push(',');
                self.fraction(y);
                self.0.push(']');
            }
            Anchor::Region { x, y, w, h } => {
                self.tag("region");
                for (key, v) in [("x", x), ("y", y), ("w", w), ("h", h)] {
                    self.key(key);
                    self.fraction(v);
                }
                self.close();
            }
        }
    }

    /// An unsigned integer, without the `core::fmt` machinery.
    fn uint(&mut self, n: u64) {
        crate::number::write_u64(n, &mut self.0);
    }

    /// A coordinate as serde_json writes it: [`crate::number::write`], the fewest digits that
    /// read back as `v`. For canonical fractions (everything the widget sends, as ops are
    /// quantized and validated first) that is their plain decimal (`0.0`, `1.0`, `0.41237`),
    /// byte for byte serde_json's (all 100,001 are tested); anything else, e.g. the invalid
    /// values tests send on purpose, is the same value, not always the same text (see
    /// [`crate::number`]), so the frame always says what the message holds. One writer for
    /// both: a separate integer path for the canonical ones measured larger.
    fn fraction(&mut self, v: f64) {
        crate::number::write(v, &mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_runs_stop_before_every_special_byte() {
        let text = "0123456789abcdef0123456789abcdef";
        assert_eq!(plain_run(text.as_bytes(), 0), 32);
        assert_eq!(plain_run(b"", 0), 0);
        assert_eq!(plain_run(b"short", 0), 0);
        for special in [b'"', b'\\', 0x00, 0x1F, b'\n'] {
            for at in 0..32 {
                let mut bytes = text.as_bytes().to_vec();
                bytes[at] = special;
                let end = plain_run(&bytes, 0);
                assert!(end <= at && at - end < 8, "{special:#x} at {at}: {end}");
            }
        }
        // UTF-8 is plain: a run stops only at a word's end, and the caller's loop goes on.
        let utf8 = "é€😀é€😀é€😀…!";
        assert_eq!(plain_run(utf8.as_bytes(), 0), 24);
    }

    #[test]
    fn integers_read_up_to_the_largest_u64() {
        let read = |text: &str| Cursor::new(text).u64("n");
        assert_eq!(read("0"), Ok(0));
        assert_eq!(read("1763712401123"), Ok(1_763_712_401_123));
        assert_eq!(read("18446744073709551615"), Ok(u64::MAX));
        for refused in [
            "18446744073709551616",
            "99999999999999999999",
            "-0",
            "-1",
            "1.0",
            "1e3",
        ] {
            assert_eq!(read(refused), Err(FrameError::Invalid("n")), "{refused}");
        }
    }
}
