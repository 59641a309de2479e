//! Many elements from one template in a single call into JS (`bulk.js`). Each DOM call made
//! from wasm crosses into JS and decodes its strings one by one (a few µs each); a snapshot's
//! thousand markers at five or six calls each made that most of the render. Here the values are
//! gathered in Rust into one string with the end of every field, and one JS function clones the
//! template, sets the attributes and text, and inserts the lot. Values become attribute values
//! or text only (`setAttribute`, `textContent`), never HTML.
//!
//! No handle to the new elements comes back (that was one more call into JS per element, to
//! take each out of the returned array): callers find an element when they need it.
//!
//! Tried and dropped (docs/BENCHMARKS.md §6b): building the elements' markup here, escaped, for
//! one `insertAdjacentHTML` (no JS per element): the HTML parser cost as much as the calls it
//! saved, for 1.4 KB more widget.

use wasm_bindgen::prelude::*;
use web_sys::{Element, Node};

#[wasm_bindgen(module = "/src/dom/bulk.js")]
extern "C" {
    #[wasm_bindgen(js_name = cloneEach, catch)]
    fn clone_each(
        parent: &Node,
        before: Option<&Node>,
        template: &Element,
        names: &str,
        text: &str,
        ends: &[u32],
        alt: &Element,
        pick: &[u8],
        alt_skip: &str,
    ) -> Result<(), JsValue>;

    #[wasm_bindgen(js_name = syncFlags, catch)]
    fn sync_flags(parent: &Node, change: &[u8], name: &str) -> Result<(), JsValue>;

    #[wasm_bindgen(js_name = childElements)]
    fn child_elements(parent: &Element) -> Vec<Element>;
}

/// The element children of `parent`, in order, fetched in one call into JS (handles to a
/// snapshot's cluster buttons were one call each).
pub fn children(parent: &Element) -> Vec<Element> {
    child_elements(parent)
}

/// What [`flag_children`] does to one child's flag attribute (its code in `bulk.js`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FlagChange {
    /// Leave the child alone.
    Keep = 0,
    /// Set the attribute.
    Set = 1,
    /// Remove it.
    Remove = 2,
}

impl FlagChange {
    /// The change that takes a flag from `was` to `now`.
    pub fn between(was: bool, now: bool) -> Self {
        match (was, now) {
            (false, true) => Self::Set,
            (true, false) => Self::Remove,
            _ => Self::Keep,
        }
    }
}

/// Applies `change[i]` to the empty attribute `name` of child `i` of `parent`, in one call into
/// JS that touches only the children that change (a live event regroups a thousand markers and
/// changes one or two). Nothing is called when nothing changes.
pub fn flag_children(parent: &Node, change: &[FlagChange], name: &str) -> Result<(), JsValue> {
    if change.iter().all(|&c| c == FlagChange::Keep) {
        return Ok(());
    }
    let codes: Vec<u8> = change.iter().map(|&c| c as u8).collect();
    sync_flags(parent, &codes, name)
}

/// Elements to create: for each, its values of a fixed list of attributes, its text and its
/// flag attributes.
pub struct Clones {
    /// The attributes every element gets a value for, space separated.
    names: &'static str,
    /// Every field of every element, back to back.
    text: String,
    /// Where each field ends in `text`, in UTF-16 code units (JavaScript string offsets).
    ends: Vec<u32>,
    /// `text`'s length in UTF-16 code units.
    len16: u32,
}

impl Clones {
    /// An empty batch of elements that each get a value for every attribute in `names`
    /// (space separated; names are constants, so never contain a space themselves).
    pub fn new(names: &'static str) -> Self {
        Self {
            names,
            text: String::new(),
            ends: Vec::new(),
            len16: 0,
        }
    }

    /// Whether no element was added.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Adds one element: `values` (one per name, in order), its text, and the flag attributes
    /// to set to "" (constant names).
    pub fn push(&mut self, values: &[&str], text: &str, flags: &[&str]) {
        debug_assert_eq!(values.len(), self.names.split(' ').count());
        for value in values {
            self.value(value);
        }
        self.value(text);
        self.flags(flags);
    }

    /// Adds the next field of the element being added: its next attribute value (one per name,
    /// in order), then its text. [`Clones::flags`] ends the element.
    pub fn value(&mut self, value: &str) {
        self.value_with(|text| text.push_str(value));
    }

    /// [`Clones::value`], written by `write` straight into the batch (no string of its own).
    pub fn value_with(&mut self, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        self.len16 += utf16_len(&self.text[start..]);
        self.ends.push(self.len16);
    }

    /// Ends the element being added with its flag attributes (constant names, set to "").
    pub fn flags(&mut self, flags: &[&str]) {
        self.value_with(|text| {
            for (i, flag) in flags.iter().enumerate() {
                if i > 0 {
                    text.push(' ');
                }
                text.push_str(flag);
            }
        });
    }

    /// Clones `template` (deeply: its text node, if any, is kept when an element's text is the
    /// same) once per element, sets each one's attributes and text, and inserts them all into
    /// `parent` before `before` (at the end for `None`).
    pub fn insert(
        &self,
        parent: &Node,
        before: Option<&Node>,
        template: &Element,
    ) -> Result<(), JsValue> {
        self.insert_picked(parent, before, template, template, &[], "")
    }

    /// [`Clones::insert`], but element `j` is cloned from `alt` when `pick[j]` is 1 (`pick` may
    /// be shorter) and then goes without the attribute `alt_skip` (`""`: none): a template
    /// with one more attribute set (a clustered marker's), where setting that attribute on
    /// each clone was one more DOM call per element. `alt` must hold the same text node as
    /// `template`.
    pub fn insert_picked(
        &self,
        parent: &Node,
        before: Option<&Node>,
        template: &Element,
        alt: &Element,
        pick: &[u8],
        alt_skip: &str,
    ) -> Result<(), JsValue> {
        clone_each(
            parent, before, template, self.names, &self.text, &self.ends, alt, pick, alt_skip,
        )
    }
}

/// Length of `s` in UTF-16 code units (what JavaScript's `String.prototype.slice` counts),
/// from its bytes without decoding characters: each character is one unit (count the bytes
/// that start one, i.e. all but UTF-8 continuation bytes) and those of 4 bytes are two.
///
/// Eight bytes at a time, as a snapshot's thousand markers have ~100 KB of fields (byte by
/// byte this was a tenth of the widget's share of the first paint): in each byte, bit 7 set
/// and bit 6 clear marks a continuation byte, bits 7 to 4 all set the lead of 4 bytes.
fn utf16_len(s: &str) -> u32 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut rest = s.as_bytes();
    let mut units = rest.len();
    while let [a, b, c, d, e, f, g, h, tail @ ..] = rest {
        rest = tail;
        let x = u64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]);
        if x & HIGH != 0 {
            let continuations = x & !(x << 1) & HIGH;
            let four_byte_leads = x & (x << 1) & (x << 2) & (x << 3) & HIGH;
            units -= continuations.count_ones() as usize;
            units += four_byte_leads.count_ones() as usize;
        }
    }
    for &b in rest {
        units -= usize::from(b & 0xC0 == 0x80);
        units += usize::from(b >= 0xF0);
    }
    u32::try_from(units).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_end_at_utf16_offsets() {
        let mut c = Clones::new("a b");
        c.push(&["x", "é😀"], "1", &["data-p", "data-q"]);
        c.push(&["", "y"], "", &[]);
        assert_eq!(c.text, "xé😀1data-p data-qy");
        // x | é + 😀 (1 + 2 units) | 1 | "data-p data-q" | "" | y | "" | ""
        assert_eq!(c.ends, vec![1, 4, 5, 18, 18, 19, 19, 19]);
        for s in [
            "",
            "ascii",
            "“ok”",
            "€😀é",
            "\u{10FFFF}\u{7FF}\u{800}\u{FFFF}\u{10000}",
            "Discussion by Ada: “Nice sky over the bay”, 2 comments",
            "😀😀😀😀😀😀é€a😀€€€€€€€€😀xyz",
            "abcdefgh😀",
            "abcdefg😀",
        ] {
            let want: usize = s.chars().map(char::len_utf16).sum();
            assert_eq!(utf16_len(s) as usize, want, "{s}");
        }
    }
}
