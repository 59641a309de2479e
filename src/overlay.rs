//! Keeping the overlay on the image's drawn picture without touching the site's DOM.
//!
//! Frameworks (React, Vue) own the site's nodes and reconcile them by reference: a node moved
//! into a wrapper, or a sibling inserted next to one they manage, breaks their `insertBefore` /
//! `removeChild` calls (and Vue reads `nextSibling` to find where to insert). So the widget
//! never moves, wraps or re-parents the `<img>` and inserts nothing beside it: every overlay
//! lives in one widget-owned layer per page, `div.image-chat-overlays`, appended to `<body>`,
//! and is put over the picture by measurement ([`measure`]): the image's border box on screen,
//! its border and padding, `object-fit` / `object-position` with its natural size, the scale
//! of any CSS transform on it or its ancestors, and the ancestors that clip it (scrollers,
//! `overflow: hidden` carousels). The pure arithmetic is in [`crate::geometry`].
//!
//! The layer is absolutely positioned in the document, so page scrolling moves it with the
//! image for free; what moves the image relative to the document (a scroller, a re-layout, a
//! resize, a transition) is noticed by the widget's observers and re-measured.
//!
//! Since the overlay is not inside the image's ancestors, the public custom properties a site
//! sets on them would not reach it: [`inherited_properties`] copies them over.

use std::cell::Cell;

use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, HtmlImageElement, Window};

use crate::dom::plain::{self, ComputedStyle};
use crate::geometry::{Insets, ObjectFit, ObjectPosition, Rect, drawn_picture, parse_px};

/// Class of the page's overlay layer.
pub const LAYER_CLASS: &str = "image-chat-overlays";

thread_local! {
    /// Mounted instances sharing the layer.
    static USERS: Cell<u32> = const { Cell::new(0) };
}

/// The page's overlay layer (created, at the end of `<body>`, by the first widget).
pub fn acquire_layer(doc: &Document) -> Element {
    USERS.with(|u| u.set(u.get().saturating_add(1)));
    let found = doc
        .body()
        .and_then(|b| plain::query(&b, ".image-chat-overlays"));
    if let Some(layer) = found {
        return layer;
    }
    let layer = plain::create(doc, "div");
    layer.set_class_name(LAYER_CLASS);
    attach_layer(doc, &layer);
    layer
}

/// Puts the layer back at the end of `<body>` (after the page replaced the body's content).
pub fn attach_layer(doc: &Document, layer: &Element) {
    let parent = doc
        .body()
        .map(web_sys::Node::from)
        .or_else(|| doc.document_element().map(Into::into));
    if let Some(parent) = parent {
        plain::append(&parent, layer);
    }
}

/// Removes the layer with the last widget.
pub fn release_layer(layer: &Element) {
    let left = USERS.with(|u| {
        let n = u.get().saturating_sub(1);
        u.set(n);
        n
    });
    // Another instance of the widget on the page may share the layer: it stays while not empty.
    if left == 0 && layer.child_element_count() == 0 {
        layer.remove();
    }
}

/// An ancestor that clips the image (`overflow` other than `visible`), and on which axes.
pub struct Clip {
    el: Element,
    x: bool,
    y: bool,
}

/// The image's clipping ancestors, nearest first, up to (not including) `<body>`; a fixed
/// ancestor ends the chain (what is above it does not clip it).
pub fn clip_ancestors(window: &Window, img: &Element) -> Vec<Clip> {
    let mut out = Vec::new();
    let mut at = img.parent_element();
    while let Some(el) = at {
        let tag = el.tag_name();
        if tag == "BODY" || tag == "HTML" {
            break;
        }
        let cs = ComputedStyle::of(window, &el);
        let x = cs.get("overflow-x") != "visible";
        let y = cs.get("overflow-y") != "visible";
        if x || y {
            out.push(Clip {
                el: el.clone(),
                x,
                y,
            });
        }
        if cs.get("position") == "fixed" {
            break;
        }
        at = el.parent_element();
    }
    out
}

fn rect(r: &web_sys::DomRect) -> Rect {
    Rect {
        left: r.left(),
        top: r.top(),
        width: r.width(),
        height: r.height(),
    }
}

/// Where the image's picture is on screen (viewport coordinates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// The drawn picture (may extend past what is shown, with `cover`).
    pub picture: Rect,
    /// The part of it the page shows: ∩ the content box ∩ clipping ancestors.
    pub visible: Rect,
}

#[wasm_bindgen]
extern "C" {
    type Visibility;
    /// `Element.checkVisibility` (absent in older browsers, hence `catch`).
    #[wasm_bindgen(method, catch, js_name = checkVisibility)]
    fn check_visibility(this: &Visibility, options: &JsValue) -> Result<bool, JsValue>;
}

/// Whether the image is rendered and not made invisible by `visibility` or `opacity: 0` (on it
/// or an ancestor). Browsers without `checkVisibility` count it visible.
fn rendered(img: &Element) -> bool {
    let options = js_sys::Object::new();
    for key in ["visibilityProperty", "opacityProperty"] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &JsValue::TRUE);
    }
    let v: &Visibility = wasm_bindgen::JsCast::unchecked_ref(img);
    v.check_visibility(&options).unwrap_or(true)
}

/// Measures the picture, or `None` when the image is not in the document, not rendered,
/// invisible or of no size.
pub fn measure(window: &Window, img: &HtmlImageElement, clips: &[Clip]) -> Option<Measured> {
    if !img.is_connected() || !rendered(img) {
        return None;
    }
    let border_box = rect(&img.get_bounding_client_rect());
    if border_box.is_empty() {
        return None;
    }
    let cs = ComputedStyle::of(window, img);
    let px = |prop: &str| parse_px(&cs.get(prop));
    // The on-screen size over the layout size: a CSS transform (here or on an ancestor) scales
    // the box, its border and padding, the natural size and pixel offsets alike. Layout sizes
    // are whole pixels (`offsetWidth`), so a difference under a pixel is rounding, not scale.
    let scale = |shown: f64, layout: i32| {
        let layout = f64::from(layout);
        if layout > 0.0 && (shown - layout).abs() >= 1.0 {
            shown / layout
        } else {
            1.0
        }
    };
    let (sx, sy) = (
        scale(border_box.width, img.offset_width()),
        scale(border_box.height, img.offset_height()),
    );
    let insets = Insets {
        top: (px("border-top-width") + px("padding-top")) * sy,
        right: (px("border-right-width") + px("padding-right")) * sx,
        bottom: (px("border-bottom-width") + px("padding-bottom")) * sy,
        left: (px("border-left-width") + px("padding-left")) * sx,
    };
    let content = border_box.inset(insets);
    let natural = (
        f64::from(img.natural_width()),
        f64::from(img.natural_height()),
    );
    let picture = drawn_picture(
        content,
        natural,
        ObjectFit::parse(&cs.get("object-fit")),
        ObjectPosition::parse(&cs.get("object-position")),
        (sx, sy),
    );
    Some(Measured {
        picture,
        visible: clipped(picture.intersect(content), clips),
    })
}

/// `visible` cut by the clipping ancestors' padding boxes.
fn clipped(mut visible: Rect, clips: &[Clip]) -> Rect {
    for clip in clips {
        let r = rect(&clip.el.get_bounding_client_rect());
        // The padding box: inside the borders, without the scrollbars.
        let inner = Rect {
            left: r.left + f64::from(clip.el.client_left()),
            top: r.top + f64::from(clip.el.client_top()),
            width: f64::from(clip.el.client_width()),
            height: f64::from(clip.el.client_height()),
        };
        let bound = Rect {
            left: if clip.x { inner.left } else { visible.left },
            width: if clip.x { inner.width } else { visible.width },
            top: if clip.y { inner.top } else { visible.top },
            height: if clip.y { inner.height } else { visible.height },
        };
        visible = visible.intersect(bound);
    }
    visible
}

/// Where a text container is on screen: its border box (as the "picture" the thread panel is
/// placed against) and the part of it its clipping ancestors show. `None` when it is not in
/// the document, not rendered or of no size.
#[cfg(feature = "text")]
pub fn measure_box(el: &Element, clips: &[Clip]) -> Option<Measured> {
    if !el.is_connected() || !rendered(el) {
        return None;
    }
    let picture = rect(&el.get_bounding_client_rect());
    if picture.is_empty() {
        return None;
    }
    Some(Measured {
        picture,
        visible: clipped(picture, clips),
    })
}

/// The public custom properties the overlay would inherit if it were inside the image's
/// ancestors (`--image-chat-marker-size` is the widget's own option and not copied).
const INHERITED: [&str; 15] = [
    "--image-chat-accent",
    "--image-chat-on-accent",
    "--image-chat-bg",
    "--image-chat-fg",
    "--image-chat-muted",
    "--image-chat-border",
    "--image-chat-danger",
    "--image-chat-live",
    "--image-chat-bar-bg",
    "--image-chat-field-bg",
    "--image-chat-font",
    "--image-chat-radius",
    "--image-chat-panel-width",
    "--image-chat-pending-opacity",
    "--image-chat-z",
];

/// The `--image-chat-*` values the image gets from its ancestors that the overlay would not
/// get where it is (`layer`'s own values, from `:root` or `<body>`, reach both): empty where
/// they agree, so a rule on `.image-chat` itself still applies. In [`INHERITED`]'s order.
pub fn inherited_properties(window: &Window, img: &Element, layer: &Element) -> Vec<String> {
    let image = ComputedStyle::of(window, img);
    let here = ComputedStyle::of(window, layer);
    INHERITED
        .iter()
        .map(|name| {
            let value = image.get(name);
            if value == here.get(name) {
                String::new()
            } else {
                value
            }
        })
        .collect()
}

/// Sets the `values` read by [`inherited_properties`] on the overlay root (removing the unset
/// ones).
pub fn apply_properties(root: &Element, values: &[String]) {
    for (name, value) in INHERITED.iter().zip(values) {
        plain::set_style(root, name, value.trim());
    }
}
