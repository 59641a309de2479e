//! Text mode's DOM glue: the container's flattened text and DOM `Range` ↔ offsets, hit tests,
//! the selection, and the highlights. Bound to a small hand-written module (`glue.js`): these
//! walk many nodes and ranges (a tree walker, `comparePoint`, `getClientRects`), each a call
//! into JS from Rust, so the loops stay on the JS side and Rust sees only offsets.
//!
//! Offsets are UTF-16 code units of the flattened text (what DOM ranges and `Text` offsets
//! use, and what `image-chat-anchor` describes and locates). The flattened text is every
//! `Text` node under the container in document order, except the widget's own elements
//! (`[data-image-chat-own]`: the top bar) and text that is not shown as text (`script`,
//! `style`, `noscript`, `template`, `textarea`, `select`). What to anchor and how to find it
//! again is `image-chat-anchor`'s job, not this module's.

use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, Node, Range};

#[wasm_bindgen(module = "/src/text/glue.js")]
extern "C" {
    /// The container's text nodes and flattened text, at one moment.
    pub type Flat;
    #[wasm_bindgen(constructor)]
    fn new(root: &Element) -> Flat;
    #[wasm_bindgen(method, getter)]
    fn text(this: &Flat) -> String;
    #[wasm_bindgen(method)]
    fn offsets(this: &Flat, range: &Range) -> Option<Vec<u32>>;
    #[wasm_bindgen(method)]
    fn range(this: &Flat, start: u32, end: u32) -> Option<Range>;
    #[wasm_bindgen(method, js_name = offsetAt)]
    fn offset_at(this: &Flat, x: f64, y: f64) -> i32;

    #[wasm_bindgen(js_name = rangeHas)]
    fn range_has(range: &Range, x: f64, y: f64) -> bool;
    #[wasm_bindgen(js_name = lastLine)]
    fn last_line(range: &Range) -> Option<Vec<f64>>;
    #[wasm_bindgen(js_name = selectedRange)]
    fn selected_range(doc: &Document) -> Option<Range>;
    #[wasm_bindgen(js_name = select)]
    fn select_range(doc: &Document, range: Option<&Range>);
    #[wasm_bindgen(js_name = modify)]
    fn modify_selection(doc: &Document, alter: &str, direction: &str, granularity: &str);
    #[wasm_bindgen(js_name = highlightApi)]
    fn highlight_api() -> bool;
    #[wasm_bindgen(js_name = paint)]
    fn paint_ranges(name: &str, owner: &JsValue, ranges: &js_sys::Array);
    #[wasm_bindgen(js_name = wrap)]
    fn wrap_range(range: &Range, id: &str, kind: &str) -> js_sys::Array;
    #[wasm_bindgen(js_name = unwrap)]
    fn unwrap_marks(marks: &js_sys::Array);
}

impl Flat {
    /// Reads `root`'s text now.
    pub fn read(root: &Element) -> Flat {
        Flat::new(root)
    }

    /// The flattened text.
    pub fn content(&self) -> String {
        self.text()
    }

    /// `[start, end)` of `range` clipped to the container; `None` when it selects no text of
    /// it.
    pub fn offsets_of(&self, range: &Range) -> Option<(u32, u32)> {
        match self.offsets(range)?.as_slice() {
            [start, end] if end > start => Some((*start, *end)),
            _ => None,
        }
    }

    /// A DOM range over `[start, end)`; `None` when the text is shorter or the span empty.
    pub fn range_of(&self, start: u32, end: u32) -> Option<Range> {
        self.range(start, end)
    }

    /// The offset of the text under a viewport point, if any.
    pub fn offset_under(&self, x: f64, y: f64) -> Option<u32> {
        u32::try_from(self.offset_at(x, y)).ok()
    }
}

/// Whether the viewport point `(x, y)` is on one of `range`'s line boxes (a caret position
/// alone is not enough: at the end of a line it is also past the text).
pub fn contains_point(range: &Range, x: f64, y: f64) -> bool {
    range_has(range, x, y)
}

/// The last line box of `range` in viewport coordinates: (left, right, top, bottom).
pub fn last_line_of(range: &Range) -> Option<(f64, f64, f64, f64)> {
    match last_line(range)?.as_slice() {
        [l, r, t, b] => Some((*l, *r, *t, *b)),
        _ => None,
    }
}

/// The document's non-empty selection, if any.
pub fn selection(doc: &Document) -> Option<Range> {
    selected_range(doc)
}

/// Replaces the selection with `range` (or clears it).
pub fn set_selection(doc: &Document, range: Option<&Range>) {
    select_range(doc, range);
}

/// How the keyboard changes the selection (see [`modify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alter {
    /// Moves the caret (collapsing the selection).
    Move,
    /// Moves the selection's focus end, keeping its anchor.
    Extend,
}

/// By how much (see [`modify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// One character.
    Character,
    /// One word.
    Word,
    /// One line.
    Line,
}

/// `Selection.modify`: moves or extends the selection by one `step`, `forward` or back.
pub fn modify(doc: &Document, alter: Alter, forward: bool, step: Step) {
    let alter = match alter {
        Alter::Move => "move",
        Alter::Extend => "extend",
    };
    let step = match step {
        Step::Character => "character",
        Step::Word => "word",
        Step::Line => "line",
    };
    modify_selection(
        doc,
        alter,
        if forward { "forward" } else { "backward" },
        step,
    );
}

/// Whether the browser has the CSS Custom Highlight API (`CSS.highlights`, `Highlight`).
pub fn has_highlight_api() -> bool {
    highlight_api()
}

/// Sets this widget's (`owner`'s) ranges under the highlight `name` (`::highlight(name)` in
/// CSS); other widgets' ranges under the same name stay.
pub fn paint(name: &str, owner: &JsValue, ranges: &[Range]) {
    let list = js_sys::Array::new();
    for r in ranges {
        list.push(r);
    }
    paint_ranges(name, owner, &list);
}

/// The fallback without the Highlight API: wraps the text of `range` in
/// `mark.image-chat-mark[data-chat-id][data-kind]` elements (returned, for [`unwrap`]).
pub fn wrap(range: &Range, id: &str, kind: &str) -> js_sys::Array {
    wrap_range(range, id, kind)
}

/// Removes marks made by [`wrap`], putting their text back in place.
pub fn unwrap(marks: &js_sys::Array) {
    unwrap_marks(marks);
}

/// Whether `node` is inside one of the widget's own elements in the container (the top bar).
pub fn is_own(node: &Node) -> bool {
    let el = match node.dyn_ref::<Element>() {
        Some(e) => Some(e.clone()),
        None => node.parent_element(),
    };
    el.is_some_and(|e| crate::dom::plain::closest(&e, "[data-image-chat-own]").is_some())
}
