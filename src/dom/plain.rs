//! The DOM calls that build the overlay, the thread panel and the comments (and a few more
//! that cannot throw as the widget makes them), bound without wasm-bindgen's `catch`, so they
//! return no `Result`.
//!
//! web-sys declares `createElement`, `setAttribute`, `removeAttribute`, `appendChild`,
//! `insertBefore` and `replaceWith` as throwing, so every call returns a `Result` and needs an
//! exit path, in the wasm, that drops everything built so far (the builders had about a
//! hundred of them), and the glue wraps each in a `try`. They throw only on an invalid tag or
//! attribute name, and on a tree that cannot be (a node inserted into itself or its own
//! descendant): the widget passes only literal names and builds only its own fresh elements,
//! so neither happens. Were it to happen anyway, the exception would reach the page like any
//! other uncaught one. Likewise `closest` and `querySelector` with literal selectors, `focus`,
//! `style.setProperty`, adding and removing a listener function, dispatching a new event,
//! requesting and cancelling an animation frame, `querySelectorAll` with a literal selector, `setTimeout` with a function, the computed style
//! of an element, and the page's own `location` (whose getters throw only for another
//! origin's window).
//!
//! Text goes in through `textContent` and values through `setAttribute` only, as elsewhere:
//! nothing here parses HTML (the one icon, too, is built element by element).

use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, Event, Node};

#[wasm_bindgen]
extern "C" {
    /// Any DOM node or document, called structurally (`this.createElement(…)`).
    type Dom;

    #[wasm_bindgen(method, js_name = createElement)]
    fn create_element(this: &Dom, tag: &str) -> Element;
    #[wasm_bindgen(method, js_name = createElementNS)]
    fn create_element_ns(this: &Dom, namespace: &str, tag: &str) -> Element;
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
    #[wasm_bindgen(method)]
    fn closest(this: &Dom, selector: &str) -> Option<Element>;
    #[wasm_bindgen(method, js_name = querySelector)]
    fn query_selector(this: &Dom, selector: &str) -> Option<Element>;
    #[wasm_bindgen(method)]
    fn focus(this: &Dom);
    #[wasm_bindgen(method, getter)]
    fn style(this: &Dom) -> Dom;
    #[wasm_bindgen(method, js_name = setProperty)]
    fn set_property(this: &Dom, name: &str, value: &str);
    #[wasm_bindgen(method, js_name = addEventListener)]
    fn add_event_listener(this: &Dom, kind: &str, listener: &JsValue);
    #[wasm_bindgen(method, js_name = removeEventListener)]
    fn remove_event_listener(this: &Dom, kind: &str, listener: &JsValue);
    #[wasm_bindgen(method, js_name = dispatchEvent)]
    fn dispatch_event(this: &Dom, event: &Event);
    #[wasm_bindgen(method, js_name = querySelectorAll)]
    fn query_selector_all(this: &Dom, selector: &str) -> web_sys::NodeList;
    #[wasm_bindgen(method, js_name = addEventListener)]
    fn add_event_listener_capture(this: &Dom, kind: &str, listener: &JsValue, capture: bool);
    #[wasm_bindgen(method, js_name = removeEventListener)]
    fn remove_event_listener_capture(this: &Dom, kind: &str, listener: &JsValue, capture: bool);
    #[wasm_bindgen(method, js_name = requestAnimationFrame)]
    fn request_animation_frame(this: &Dom, callback: &JsValue) -> i32;
    #[wasm_bindgen(method, js_name = cancelAnimationFrame)]
    fn cancel_animation_frame(this: &Dom, id: i32);
    #[wasm_bindgen(method, js_name = setTimeout)]
    fn set_timeout(this: &Dom, callback: &JsValue, millis: i32) -> i32;
    #[wasm_bindgen(method, js_name = getComputedStyle)]
    fn get_computed_style(this: &Dom, e: &Element) -> Dom;
    #[wasm_bindgen(method, js_name = getPropertyValue)]
    fn get_property_value(this: &Dom, name: &str) -> String;
    #[wasm_bindgen(method, getter)]
    fn protocol(this: &Dom) -> String;
    #[wasm_bindgen(method, getter)]
    fn host(this: &Dom) -> String;
    #[wasm_bindgen(method, getter)]
    fn origin(this: &Dom) -> String;
    #[wasm_bindgen(method, getter)]
    fn pathname(this: &Dom) -> String;
}

fn dom(value: &JsValue) -> &Dom {
    value.unchecked_ref()
}

/// `<tag>` (a literal tag name).
pub fn create(doc: &Document, tag: &str) -> Element {
    dom(doc).create_element(tag)
}

/// `<tag>` in the SVG namespace (a literal tag name): `createElement` would make an unknown
/// HTML element, which draws nothing.
pub fn create_svg(doc: &Document, tag: &str) -> Element {
    dom(doc).create_element_ns("http://www.w3.org/2000/svg", tag)
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

/// `e.closest(selector)` (a literal selector).
pub fn closest(e: &Element, selector: &str) -> Option<Element> {
    dom(e).closest(selector)
}

/// `e.querySelector(selector)` (a literal selector).
pub fn query(e: &Element, selector: &str) -> Option<Element> {
    dom(e).query_selector(selector)
}

/// `e.focus()`.
pub fn focus(e: &Element) {
    dom(e).focus();
}

/// `e.style.setProperty(name, value)` (a literal name; the browser ignores an invalid value).
pub fn set_style(e: &Element, name: &str, value: &str) {
    dom(e).style().set_property(name, value);
}

/// `target.addEventListener(kind, listener)`.
pub fn listen(target: &JsValue, kind: &str, listener: &JsValue) {
    dom(target).add_event_listener(kind, listener);
}

/// `target.removeEventListener(kind, listener)`.
pub fn unlisten(target: &JsValue, kind: &str, listener: &JsValue) {
    dom(target).remove_event_listener(kind, listener);
}

/// `target.addEventListener(kind, listener, true)`: the capture phase, which also sees events
/// that do not bubble (`scroll` on any element).
pub fn listen_capture(target: &JsValue, kind: &str, listener: &JsValue) {
    dom(target).add_event_listener_capture(kind, listener, true);
}

/// `target.removeEventListener(kind, listener, true)`.
pub fn unlisten_capture(target: &JsValue, kind: &str, listener: &JsValue) {
    dom(target).remove_event_listener_capture(kind, listener, true);
}

/// `window.requestAnimationFrame(callback)`: the request's handle.
pub fn request_frame(window: &web_sys::Window, callback: &JsValue) -> i32 {
    dom(window).request_animation_frame(callback)
}

/// `window.cancelAnimationFrame(id)`.
pub fn cancel_frame(window: &web_sys::Window, id: i32) {
    dom(window).cancel_animation_frame(id);
}

/// `target.dispatchEvent(event)` (a new event, so never one being dispatched).
pub fn dispatch(target: &JsValue, event: &Event) {
    dom(target).dispatch_event(event);
}

/// The page's `location.protocol`, `host`, `origin` and `pathname`.
pub fn location(location: &web_sys::Location) -> [String; 4] {
    let l = dom(location);
    [l.protocol(), l.host(), l.origin(), l.pathname()]
}

/// `root.querySelectorAll(selector)` (a literal selector).
pub fn query_all(root: &JsValue, selector: &str) -> web_sys::NodeList {
    dom(root).query_selector_all(selector)
}

/// `window.setTimeout(callback, millis)`: the timer's handle.
pub fn set_timeout(window: &web_sys::Window, callback: &JsValue, millis: i32) -> i32 {
    dom(window).set_timeout(callback, millis)
}

/// The computed style of an element (`window.getComputedStyle(e)`).
pub struct ComputedStyle(Dom);

impl ComputedStyle {
    /// Reads `e`'s computed style.
    pub fn of(window: &web_sys::Window, e: &Element) -> Self {
        Self(dom(window).get_computed_style(e))
    }

    /// One property's computed value (`getPropertyValue(name)`).
    pub fn get(&self, name: &str) -> String {
        self.0.get_property_value(name)
    }
}
