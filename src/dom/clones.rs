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
    ) -> Result<(), JsValue>;

    #[wasm_bindgen(js_name = syncFlags, catch)]
    fn sync_flags(parent: &Node, want: &[u8], name: &str) -> Result<(), JsValue>;
}

/// Makes the empty attribute `name` present on child `i` of `parent` exactly when `want[i]` is
/// true, in one call into JS that touches only the children that differ.
pub fn flag_children(parent: &Node, want: &[bool], name: &str) -> Result<(), JsValue> {
    let want: Vec<u8> = want.iter().map(|&w| u8::from(w)).collect();
    sync_flags(parent, &want, name)
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
            self.field(value);
        }
        self.field(text);
        for (i, flag) in flags.iter().enumerate() {
            if i > 0 {
                self.text.push(' ');
                self.len16 += 1;
            }
            self.text.push_str(flag);
            self.len16 += utf16_len(flag);
        }
        self.ends.push(self.len16);
    }

    fn field(&mut self, value: &str) {
        self.text.push_str(value);
        self.len16 += utf16_len(value);
        self.ends.push(self.len16);
    }

    /// Clones `template` once per element, sets each one's attributes and text, and inserts
    /// them all into `parent` before `before` (at the end for `None`).
    pub fn insert(
        &self,
        parent: &Node,
        before: Option<&Node>,
        template: &Element,
    ) -> Result<(), JsValue> {
        clone_each(parent, before, template, self.names, &self.text, &self.ends)
    }
}

/// Length of `s` in UTF-16 code units (what JavaScript's `String.prototype.slice` counts),
/// from its bytes without decoding characters: each character is one unit (count the bytes
/// that start one, i.e. all but UTF-8 continuation bytes) and those of 4 bytes are two.
fn utf16_len(s: &str) -> u32 {
    let n = s
        .bytes()
        .map(|b| usize::from(b & 0xC0 != 0x80) + usize::from(b >= 0xF0))
        .sum::<usize>();
    u32::try_from(n).unwrap_or(u32::MAX)
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
        ] {
            let want: usize = s.chars().map(char::len_utf16).sum();
            assert_eq!(utf16_len(s) as usize, want, "{s}");
        }
    }
}
