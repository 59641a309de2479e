//! The DOM calls that build the overlay, the thread panel and the comments, bound without
//! wasm-bindgen's `catch`, so they return no `Result`.
//!
//! web-sys declares `createElement`, `setAttribute`, `removeAttribute`, `appendChild`,
//! `insertBefore` and `replaceWith` as throwing, so every call returns a `Result` and needs an
//! exit path, in the wasm, that drops everything built so far (the builders had about a
//! hundred of them), and the glue wraps each in a `try`. They throw only on an invalid tag or
//! attribute name, and on a tree that cannot be (a node inserted into itself or its own
//! descendant): the widget passes only literal names and builds only its own fresh elements,
//! so neither happens. Were it to happen anyway, the exception would reach the page like any
//! other uncaught one.
//!
//! Text goes in through `textContent` and values through `setAttribute` only, as elsewhere:
//! nothing here parses HTML.

use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, Node};

#[wasm_bindgen]
extern "C" {
    /// Any DOM node or document, called structurally (`this.createElement(…)`).
    type Dom;

    #[wasm_bindgen(method, js_name = createElement)]
    fn create_element(this: &Dom, tag: &str) -> Element;
    #[wasm_bindgen(method, js_name = setAttribute)]
    fn set_attribute(this: &Dom, name: &str, value: &str);
    #[wasm_bindgen(method, js_name = removeAttribute)]
    fn remove_attribute(this: &Dom, name: &str);
    #[wasm_bindgen(method, js_name = appendChild)]
    fn append_child(this: &Dom, child: &Node);
    #[wasm_bindgen(method, js_name = insertBefore)]
    fn insert_before(this: &Dom, node: &Node, before: Option<&Node>);
    #[wasm_bindgen(method, js_name = replaceWith)]
    fn replace_with(this: &Dom, node: &Node);
}

fn dom(value: &JsValue) -> &Dom {
    value.unchecked_ref()
}

/// `<tag>` (a literal tag name).
pub fn create(doc: &Document, tag: &str) -> Element {
    dom(doc).create_element(tag)
}

/// `e.setAttribute(name, value)` (a literal name).
pub fn set(e: &Element, name: &str, value: &str) {
    dom(e).set_attribute(name, value);
}

/// `e.removeAttribute(name)` (a literal name).
pub fn unset(e: &Element, name: &str) {
    dom(e).remove_attribute(name);
}

/// `parent.appendChild(child)`.
pub fn append(parent: &Node, child: &Node) {
    dom(parent).append_child(child);
}

/// `parent.insertBefore(node, before)` (at the end for `None`).
pub fn insert(parent: &Node, node: &Node, before: Option<&Node>) {
    dom(parent).insert_before(node, before);
}

/// `old.replaceWith(new)`.
pub fn replace(old: &Element, new: &Node) {
    dom(old).replace_with(new);
}
