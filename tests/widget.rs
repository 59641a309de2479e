//! Browser tests of the widget (`wasm-pack test --headless --chrome`).
//!
//! Every test mounts on a real `<img>` (an in-memory SVG data URL with a known size) in a fresh
//! container and waits on DOM conditions with a bounded poll ([`wait_for`]) — never on a fixed
//! sleep. No server runs: tests either point the widget at a port nothing listens on (the
//! widget is then not live, which is what the offline tests need), or replace
//! `window.WebSocket` with a scripted fake so a test can play the server's side of the
//! protocol (welcome, acks, broadcasts, presence, close codes).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;

use image_chat::ImageChat;
use image_chat::i18n::{EN, Locale, Strings};
use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement, HtmlImageElement, HtmlTextAreaElement};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{doc, sleep, wait_for};

/// Nothing listens here (and browsers refuse the port outright), so the widget never goes live.
const NO_SERVER: &str = "ws://127.0.0.1:9/ws";

/// `root.querySelector(selector)`; for a test's container, the widget's overlay (which lives in
/// the page's overlay layer, not beside the image) is searched too.
fn q(root: &Element, selector: &str) -> Option<Element> {
    root.query_selector(selector).unwrap().or_else(|| {
        if !root.has_attribute("data-fixture") {
            return None;
        }
        doc()
            .query_selector(".image-chat-overlays")
            .unwrap()
            .and_then(|layer| layer.query_selector(selector).unwrap())
    })
}

fn count(selector: &str) -> u32 {
    doc().query_selector_all(selector).unwrap().length()
}

fn text(e: &Element) -> String {
    e.text_content().unwrap_or_default()
}

fn style(e: &Element, prop: &str) -> String {
    e.dyn_ref::<HtmlElement>()
        .unwrap()
        .style()
        .get_property_value(prop)
        .unwrap()
}

/// A fresh container with a 400×200 image (an SVG data URL), loaded.
/// Registers the shipped language tables (`locales/*.json`) as the widget does when their
/// chunks arrive (`image_chat::locales::add`), so that tests see every language at once. A
/// page gets them from `pkg/locales/` (covered by the e2e tests).
fn load_tables() {
    for (locale, json) in [
        (Locale::Fr, include_str!("../locales/fr.json")),
        (Locale::Pt, include_str!("../locales/pt.json")),
        (Locale::Ru, include_str!("../locales/ru.json")),
    ] {
        let table = js_sys::JSON::parse(json).unwrap();
        image_chat::locales::add(locale, &table).unwrap();
    }
}

async fn fixture() -> (Element, HtmlImageElement) {
    load_tables();
    let container = doc().create_element("div").unwrap();
    container
        .set_attribute("style", "margin:8px;padding:0")
        .unwrap();
    container.set_attribute("data-fixture", "").unwrap();
    let img: HtmlImageElement = doc().create_element("img").unwrap().unchecked_into();
    let svg = "<svg xmlns='http://www.w3.org/2000/svg' width='400' height='200'><rect width='400' height='200' fill='%2388c'/></svg>";
    img.set_src(&format!("data:image/svg+xml,{svg}"));
    img.set_width(400);
    img.set_height(200);
    img.set_alt("test image");
    container.append_child(&img).unwrap();
    doc()
        .body()
        .unwrap()
        .prepend_with_node_1(&container)
        .unwrap();
    let i = img.clone();
    wait_for("image loaded", move || {
        i.complete() && i.natural_width() > 0
    })
    .await;
    (container, img)
}

fn options(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap()
}

fn mount(img: &HtmlImageElement, json: &str) -> ImageChat {
    let target: JsValue = img.clone().into();
    ImageChat::mount(
        target.unchecked_into(),
        Some(options(json).unchecked_into()),
    )
    .unwrap()
}

fn root_of(container: &Element) -> Element {
    q(container, ".image-chat").expect("overlay root")
}

async fn overlay_sized(container: &Element, w: f64, h: f64) {
    let c = container.clone();
    wait_for("overlay sized to the image", move || {
        q(&c, ".image-chat").is_some_and(|r| {
            let b = r.get_bounding_client_rect();
            (b.width() - w).abs() < 0.5 && (b.height() - h).abs() < 0.5
        })
    })
    .await;
}

/// A bubbling click at viewport point (x, y), dispatched on whatever element is there (as a
/// real click or tap would be).
fn click_at(x: f64, y: f64) -> Element {
    let target = doc()
        .element_from_point(x as f32, y as f32)
        .expect("element at point");
    let init = web_sys::MouseEventInit::new();
    init.set_bubbles(true);
    init.set_cancelable(true);
    init.set_client_x(x as i32);
    init.set_client_y(y as i32);
    let ev = web_sys::MouseEvent::new_with_mouse_event_init_dict("click", &init).unwrap();
    target.dispatch_event(&ev).unwrap();
    target
}

fn click(e: &Element) {
    e.dyn_ref::<HtmlElement>().unwrap().click();
}

fn key(target: &Element, key: &str) {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key(key);
    init.set_bubbles(true);
    init.set_cancelable(true);
    let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    target.dispatch_event(&ev).unwrap();
}

fn active() -> Option<Element> {
    doc().active_element()
}

/// Clicks the image at fractions (fx, fy) of its size, returns the draft's textarea.
async fn place_draft(
    container: &Element,
    img: &HtmlImageElement,
    fx: f64,
    fy: f64,
) -> HtmlTextAreaElement {
    let r = img.get_bounding_client_rect();
    click_at(r.left() + r.width() * fx, r.top() + r.height() * fy);
    let c = container.clone();
    wait_for("draft marker", move || {
        q(&c, ".image-chat-marker[data-draft]").is_some()
    })
    .await;
    q(container, ".image-chat-thread[data-draft] textarea")
        .unwrap()
        .unchecked_into()
}

/// Places a draft and posts `body` while not live: the create fails at once.
async fn post_offline(container: &Element, img: &HtmlImageElement, body: &str) -> Element {
    let textarea = place_draft(container, img, 0.5, 0.5).await;
    textarea.set_value(body);
    click(
        &q(
            container,
            ".image-chat-thread[data-draft] [data-action=post]",
        )
        .unwrap(),
    );
    let c = container.clone();
    wait_for("failed marker", move || {
        q(&c, "button.image-chat-marker[data-chat-id][data-failed]").is_some()
    })
    .await;
    q(container, ".image-chat-thread[data-chat-id]").expect("thread of the failed discussion")
}

// -------------------------------------------------------------------------------------------
// Placement and layout
// -------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn click_places_marker_at_fraction_and_it_stays_on_spot_after_resize() {
    let (container, img) = fixture().await;
    let chat = mount(
        &img,
        &format!(r#"{{"server":"{NO_SERVER}","locale":"en"}}"#),
    );
    overlay_sized(&container, 400.0, 200.0).await;

    // The overlay covers the image exactly: the element under the image's centre is ours.
    let r = img.get_bounding_client_rect();
    let hit = doc()
        .element_from_point((r.left() + 200.0) as f32, (r.top() + 100.0) as f32)
        .unwrap();
    assert!(hit.class_list().contains("image-chat"), "overlay is on top");

    click_at(r.left() + 100.0, r.top() + 50.0);
    let c = container.clone();
    wait_for("draft marker", move || {
        q(&c, ".image-chat-marker[data-draft]").is_some()
    })
    .await;
    let marker = q(&container, ".image-chat-marker[data-draft]").unwrap();
    assert_eq!(style(&marker, "--x"), "25");
    assert_eq!(style(&marker, "--y"), "25");
    assert!(
        q(&container, ".image-chat-thread[data-draft] textarea").unwrap() == active().unwrap(),
        "focus moves into the composer"
    );

    // Resize the image: the marker keeps its spot on the picture.
    img.set_width(200);
    img.set_height(100);
    overlay_sized(&container, 200.0, 100.0).await;
    let r = img.get_bounding_client_rect();
    let m = marker.get_bounding_client_rect();
    let (cx, cy) = (m.left() + m.width() / 2.0, m.top() + m.height() / 2.0);
    assert!(
        (cx - (r.left() + 50.0)).abs() < 1.0,
        "x {cx} vs {}",
        r.left() + 50.0
    );
    assert!(
        (cy - (r.top() + 25.0)).abs() < 1.0,
        "y {cy} vs {}",
        r.top() + 25.0
    );

    chat.destroy();
    container.remove();
}

#[wasm_bindgen_test]
async fn overlay_covers_the_content_box_of_a_padded_bordered_image() {
    let (container, img) = fixture().await;
    img.set_attribute("style", "padding:10px;border:5px solid black")
        .unwrap();
    let chat = mount(&img, &format!(r#"{{"server":"{NO_SERVER}"}}"#));
    overlay_sized(&container, 400.0, 200.0).await;
    let r = img.get_bounding_client_rect();
    let o = root_of(&container).get_bounding_client_rect();
    assert!((o.left() - (r.left() + 15.0)).abs() < 0.5);
    assert!((o.top() - (r.top() + 15.0)).abs() < 0.5);

    // A click on the padding is not on the picture: no marker.
    click_at(r.left() + 5.0, r.top() + 100.0);
    sleep(0).await;
    assert!(q(&container, ".image-chat-marker").is_none());
    chat.destroy();
    container.remove();
}

#[wasm_bindgen_test]
async fn keyboard_places_at_crosshair_and_escape_returns_focus() {
    let (container, img) = fixture().await;
    let chat = mount(&img, &format!(r#"{{"server":"{NO_SERVER}"}}"#));
    overlay_sized(&container, 400.0, 200.0).await;
    let root = root_of(&container);
    root.dyn_ref::<HtmlElement>().unwrap().focus().unwrap();
    assert!(root.get_attribute("tabindex").as_deref() == Some("0"));
    assert!(
        !root
            .get_attribute("aria-label")
            .unwrap_or_default()
            .is_empty()
    );
    for _ in 0..5 {
        key(&root, "ArrowRight");
    }
    key(&root, "ArrowUp");
    let crosshair = q(&container, ".image-chat-crosshair").unwrap();
    assert_eq!(style(&crosshair, "--x"), "60");
    assert_eq!(style(&crosshair, "--y"), "48");
    key(&root, "Enter");
    let marker = q(&container, ".image-chat-marker[data-draft]").expect("draft by keyboard");
    assert_eq!(style(&marker, "--x"), "60");
    assert_eq!(style(&marker, "--y"), "48");
    let textarea = q(&container, ".image-chat-thread[data-draft] textarea").unwrap();
    assert!(active().unwrap() == textarea);
    key(&textarea, "Escape");
    assert!(q(&container, ".image-chat-marker[data-draft]").is_none());
    assert!(active().unwrap() == root, "focus back on the overlay");
    chat.destroy();
    container.remove();
}

// -------------------------------------------------------------------------------------------
// Offline behaviour, failures, XSS
// -------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn create_while_not_live_fails_at_once_with_message_and_retry() {
    let (container, img) = fixture().await;
    let chat = mount(
        &img,
        &format!(r#"{{"server":"{NO_SERVER}","locale":"en"}}"#),
    );
    let root = root_of(&container);
    let state = root.get_attribute("data-state").unwrap();
    assert!(state == "connecting" || state == "reconnecting", "{state}");

    let thread = post_offline(&container, &img, "Nice colour").await;
    let comment = q(&thread, ".image-chat-comment[data-failed]").expect("failed comment");
    assert!(comment.get_attribute("data-comment-id").is_some());
    assert_eq!(
        text(&q(&comment, ".image-chat-text").unwrap()),
        "Nice colour"
    );
    assert_eq!(
        text(&q(&comment, ".image-chat-error").unwrap()),
        EN.err_not_connected
    );
    let retry = q(&comment, "[data-action=retry]").expect("retry affordance");
    let marker = q(&container, "button.image-chat-marker[data-chat-id]").unwrap();
    assert_eq!(
        marker.get_attribute("data-chat-id"),
        thread.get_attribute("data-chat-id")
    );
    assert!(
        marker
            .get_attribute("aria-label")
            .unwrap()
            .contains("Nice colour")
    );

    // Retrying while still not live fails again, visibly; dismissing removes the marker.
    click(&retry);
    let c = container.clone();
    wait_for("still failed", move || {
        q(&c, ".image-chat-comment[data-failed]").is_some()
    })
    .await;
    click(&q(&container, ".image-chat-comment [data-action=dismiss]").unwrap());
    let c = container.clone();
    wait_for("dismissed", move || q(&c, ".image-chat-marker").is_none()).await;
    assert!(q(&container, ".image-chat-thread").is_none());

    // The status line tells why: reconnecting with a countdown.
    let c = container.clone();
    wait_for("reconnecting", move || {
        root_of(&c).get_attribute("data-state").as_deref() == Some("reconnecting")
    })
    .await;
    let status = text(&q(&container, ".image-chat-status").unwrap());
    assert!(status.starts_with("Reconnecting"), "{status}");
    chat.destroy();
    container.remove();
}

/// Markers are not kept as handles but found in the layer by their place in creation order;
/// a node a page script put into the layer must not make the widget touch the wrong marker.
#[wasm_bindgen_test]
async fn markers_are_found_even_with_a_foreign_node_in_the_layer() {
    let (container, img) = fixture().await;
    let chat = mount(
        &img,
        &format!(r#"{{"server":"{NO_SERVER}","locale":"en"}}"#),
    );
    let first = post_offline(&container, &img, "First").await;
    let first_id = first.get_attribute("data-chat-id").unwrap();
    click(&q(&first, ".image-chat-close").unwrap());
    let layer = q(&container, ".image-chat-layer").unwrap();
    let foreign = doc().create_element("i").unwrap();
    layer.prepend_with_node_1(&foreign).unwrap();

    let textarea = place_draft(&container, &img, 0.25, 0.25).await;
    textarea.set_value("Second");
    click(
        &q(
            &container,
            ".image-chat-thread[data-draft] [data-action=post]",
        )
        .unwrap(),
    );
    wait_for("two failed markers", || {
        count("button.image-chat-marker[data-chat-id][data-failed]") == 2
    })
    .await;
    let thread = q(&container, ".image-chat-thread[data-chat-id]").unwrap();
    let second_id = thread.get_attribute("data-chat-id").unwrap();
    assert_ne!(first_id, second_id);
    let marker = |id: &str| {
        q(
            &container,
            &format!("[data-chat-id=\"{id}\"].image-chat-marker"),
        )
    };
    assert_eq!(
        marker(&second_id)
            .unwrap()
            .get_attribute("aria-expanded")
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        marker(&first_id)
            .unwrap()
            .get_attribute("aria-expanded")
            .as_deref(),
        Some("false")
    );

    // Dismissing the second removes its marker only.
    click(&q(&thread, ".image-chat-comment [data-action=dismiss]").unwrap());
    let c = container.clone();
    let id = second_id.clone();
    wait_for("second removed", move || {
        q(&c, &format!("[data-chat-id=\"{id}\"].image-chat-marker")).is_none()
    })
    .await;
    assert!(marker(&first_id).is_some());
    assert!(foreign.is_connected());
    chat.destroy();
    container.remove();
}

#[wasm_bindgen_test]
async fn markup_in_comments_shows_as_text() {
    let (container, img) = fixture().await;
    let chat = mount(&img, &format!(r#"{{"server":"{NO_SERVER}"}}"#));
    let evil = r#"<img src=x onerror="window.__icPwned=1"><b>bold</b>"#;
    let thread = post_offline(&container, &img, evil).await;
    let body = q(&thread, ".image-chat-text").unwrap();
    assert_eq!(text(&body), evil);
    assert!(q(&thread, "b").is_none());
    assert!(q(&thread, "img").is_none());
    assert!(body.inner_html().contains("&lt;img"));
    sleep(20).await;
    let pwned = Reflect::get(&web_sys::window().unwrap(), &"__icPwned".into()).unwrap();
    assert!(pwned.is_undefined());
    chat.destroy();
    container.remove();
}

#[wasm_bindgen_test]
async fn empty_comment_is_refused_locally_with_a_message() {
    let (container, img) = fixture().await;
    let chat = mount(
        &img,
        &format!(r#"{{"server":"{NO_SERVER}","locale":"pt-BR"}}"#),
    );
    overlay_sized(&container, 400.0, 200.0).await;
    let textarea = place_draft(&container, &img, 0.3, 0.3).await;
    textarea.set_value("   ");
    click(&q(&container, "[data-action=post]").unwrap());
    let error = q(
        &container,
        ".image-chat-thread[data-draft] .image-chat-error",
    )
    .unwrap();
    assert_eq!(text(&error), Locale::Pt.strings().err_empty);
    assert!(q(&container, ".image-chat-marker[data-chat-id]").is_none());
    chat.destroy();
    container.remove();
}

// -------------------------------------------------------------------------------------------
// Lifecycle
// -------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn destroy_leaves_nothing_behind_and_remount_works() {
    let (container, img) = fixture().await;
    let chat = mount(&img, &format!(r#"{{"server":"{NO_SERVER}"}}"#));
    overlay_sized(&container, 400.0, 200.0).await;
    assert_eq!(count("#image-chat-style"), 1);
    // The site's DOM is untouched: no wrapper, no sibling.
    assert!(
        img.parent_element().unwrap() == container,
        "image not moved"
    );
    assert_eq!(
        container.child_element_count(),
        1,
        "nothing inserted beside it"
    );
    // A second mount on the same image hands the widget over: one overlay, and the new
    // handle controls it.
    let instances = || -> js_sys::Array { ImageChat::instances().unchecked_into() };
    assert_eq!(instances().length(), 1);
    let target: JsValue = img.clone().into();
    let same = ImageChat::mount(target.unchecked_into(), None).unwrap();
    assert_eq!(count(".image-chat"), 1);
    assert_eq!(instances().length(), 1);

    same.destroy();
    assert_eq!(chat.state(), "destroyed");
    assert_eq!(instances().length(), 0, "destroyed widgets leave instances");
    assert!(q(&container, ".image-chat").is_none());
    assert_eq!(
        count(".image-chat-overlays"),
        0,
        "layer removed with the last widget"
    );
    assert!(img.parent_element().unwrap() == container);
    assert_eq!(
        count("#image-chat-style"),
        0,
        "stylesheet removed with the last widget"
    );
    // No listener left: clicks and keys on the image do nothing.
    let r = img.get_bounding_client_rect();
    click_at(r.left() + 50.0, r.top() + 50.0);
    key(img.as_ref(), "Enter");
    sleep(20).await;
    assert_eq!(count(".image-chat, .image-chat-marker"), 0);
    chat.destroy(); // twice is fine

    let again = mount(&img, &format!(r#"{{"server":"{NO_SERVER}"}}"#));
    overlay_sized(&container, 400.0, 200.0).await;
    let r = img.get_bounding_client_rect();
    click_at(r.left() + 300.0, r.top() + 150.0);
    let marker = q(&container, ".image-chat-marker[data-draft]").expect("second mount works");
    assert_eq!(style(&marker, "--x"), "75");
    again.destroy();
    assert_eq!(count(".image-chat"), 0);
    container.remove();
}

#[wasm_bindgen_test]
async fn removing_the_image_from_the_page_cleans_up() {
    let (container, img) = fixture().await;
    let chat = mount(&img, &format!(r#"{{"server":"{NO_SERVER}"}}"#));
    overlay_sized(&container, 400.0, 200.0).await;
    // Hidden by the page (display: none), then shown again.
    img.set_attribute("style", "display:none").unwrap();
    wait_for("overlay hidden with the image", || {
        count(".image-chat[hidden]") == 1
    })
    .await;
    img.remove_attribute("style").unwrap();
    overlay_sized(&container, 400.0, 200.0).await;
    assert_eq!(count(".image-chat[hidden]"), 0);
    // Taken out and put back (a framework moving it): hidden meanwhile, then back in place.
    let body = doc().body().unwrap();
    container.remove();
    wait_for("overlay hidden while detached", || {
        count(".image-chat[hidden]") == 1
    })
    .await;
    body.prepend_with_node_1(&container).unwrap();
    overlay_sized(&container, 400.0, 200.0).await;
    assert_eq!(count(".image-chat[hidden]"), 0);
    sleep(3_200).await;
    assert_ne!(chat.state(), "destroyed", "brought back in time: kept");
    // Removed for good: the widget destroys itself (and closes its socket).
    container.remove();
    let c = chat;
    wait_for("self-destroy", move || c.state() == "destroyed").await;
    assert_eq!(count(".image-chat"), 0);
}

/// A 400×200 picture drawn with `object-fit` into a box of another shape, and under a scaled
/// ancestor: clicks and markers are fractions of the drawn picture, not of the element's box.
#[wasm_bindgen_test]
async fn markers_follow_object_fit_and_transforms() {
    let (container, img) = fixture().await;
    // cover in a 200×200 box: the picture is 400×200 at x = -100 (cropped on both sides).
    img.set_attribute("style", "width:200px;height:200px;object-fit:cover")
        .unwrap();
    let chat = mount(&img, &format!(r#"{{"server":"{NO_SERVER}"}}"#));
    overlay_sized(&container, 200.0, 200.0).await;
    let layer = q(&container, ".image-chat-layer").unwrap();
    let l = layer.get_bounding_client_rect();
    let r = img.get_bounding_client_rect();
    assert!((l.left() - (r.left() - 100.0)).abs() < 0.5, "picture box");
    assert!((l.width() - 400.0).abs() < 0.5 && (l.height() - 200.0).abs() < 0.5);
    click_at(r.left() + 150.0, r.top() + 50.0);
    let marker = q(&container, ".image-chat-marker[data-draft]").expect("draft");
    assert_eq!(style(&marker, "--x"), "62.5");
    assert_eq!(style(&marker, "--y"), "25");
    let m = marker.get_bounding_client_rect();
    assert!((m.left() + m.width() / 2.0 - (r.left() + 150.0)).abs() < 1.0);
    assert!((m.top() + m.height() / 2.0 - (r.top() + 50.0)).abs() < 1.0);
    key(
        &q(&container, ".image-chat-thread textarea").unwrap(),
        "Escape",
    );

    // contain at the bottom of a 200×300 box: 200×100 picture at y = 200.
    img.set_attribute(
        "style",
        "width:200px;height:300px;object-fit:contain;object-position:50% 100%",
    )
    .unwrap();
    overlay_sized(&container, 200.0, 100.0).await;
    let r = img.get_bounding_client_rect();
    let o = root_of(&container).get_bounding_client_rect();
    assert!(
        (o.top() - (r.top() + 200.0)).abs() < 0.5,
        "letterbox skipped"
    );

    // A scaled and translated ancestor: the overlay follows the image as drawn.
    img.remove_attribute("style").unwrap();
    container
        .set_attribute(
            "style",
            "margin:8px;transform:translate(30px,10px) scale(.5);transform-origin:0 0",
        )
        .unwrap();
    let (c, i) = (container.clone(), img.clone());
    wait_for("overlay on the transformed image", move || {
        let r = i.get_bounding_client_rect();
        let o = root_of(&c).get_bounding_client_rect();
        (o.left() - r.left()).abs() < 0.5
            && (o.top() - r.top()).abs() < 0.5
            && (o.width() - 200.0).abs() < 0.5
            && (o.height() - 100.0).abs() < 0.5
    })
    .await;
    let r = img.get_bounding_client_rect();
    click_at(r.left() + 50.0, r.top() + 75.0);
    let marker = q(&container, ".image-chat-marker[data-draft]").expect("draft");
    assert_eq!(style(&marker, "--x"), "25");
    assert_eq!(style(&marker, "--y"), "75");
    chat.destroy();
    container.remove();
}

/// On a 160-px thumbnail the status line is ellipsized (not cut mid-word) and stays inside
/// the picture.
#[wasm_bindgen_test]
async fn thumbnail_status_is_shortened_not_cut() {
    let (container, img) = fixture().await;
    img.set_width(160);
    img.set_height(80);
    let chat = mount(
        &img,
        &format!(r#"{{"server":"{NO_SERVER}","locale":"pt"}}"#),
    );
    overlay_sized(&container, 160.0, 80.0).await;
    let status = q(&container, ".image-chat-status").unwrap();
    status.set_text_content(Some("Reconectando em 20 s… tentativa muito longa"));
    let s: HtmlElement = status.clone().unchecked_into();
    assert!(s.scroll_width() > s.client_width(), "the text does not fit");
    let cs = web_sys::window()
        .unwrap()
        .get_computed_style(&status)
        .unwrap()
        .unwrap();
    assert_eq!(cs.get_property_value("text-overflow").unwrap(), "ellipsis");
    let bar = q(&container, ".image-chat-bar")
        .unwrap()
        .get_bounding_client_rect();
    let r = img.get_bounding_client_rect();
    assert!(bar.right() <= r.right() + 0.5, "bar inside the picture");
    assert!(q(&container, ".image-chat[data-compact]").is_some());
    chat.destroy();
    container.remove();
}

#[wasm_bindgen_test]
async fn auto_mount_uses_data_attributes() {
    let (container, img) = fixture().await;
    img.set_attribute("data-image-chat", "hero-image").unwrap();
    img.set_attribute("data-server", NO_SERVER).unwrap();
    img.set_attribute("data-locale", "ru").unwrap();
    img.set_attribute("data-read-only", "").unwrap();
    let mounted: js_sys::Array = ImageChat::auto_mount(None).unchecked_into();
    assert_eq!(mounted.length(), 1);
    let root = root_of(&container);
    assert_eq!(root.get_attribute("lang").as_deref(), Some("ru"));
    assert!(root.has_attribute("data-read-only"));
    assert_eq!(
        root.get_attribute("aria-label").as_deref(),
        Some(Locale::Ru.strings().overlay_label_read_only)
    );
    // Read-only: clicking does not start a discussion.
    overlay_sized(&container, 400.0, 200.0).await;
    let r = img.get_bounding_client_rect();
    click_at(r.left() + 100.0, r.top() + 100.0);
    sleep(0).await;
    assert!(q(&container, ".image-chat-marker").is_none());
    // Already mounted images are skipped.
    let again: js_sys::Array = ImageChat::auto_mount(None).unchecked_into();
    assert_eq!(again.length(), 0);
    for m in mounted.iter() {
        let destroy: Function = Reflect::get(&m, &"destroy".into())
            .unwrap()
            .unchecked_into();
        destroy.call0(&m).unwrap();
    }
    assert!(q(&container, ".image-chat").is_none());
    container.remove();
}

#[wasm_bindgen_test]
async fn mount_reports_bad_targets_and_options() {
    let (container, img) = fixture().await;
    let err = |r: Result<ImageChat, JsValue>| {
        let e = r.err().expect("an error");
        String::from(e.unchecked_into::<js_sys::Error>().message())
    };
    let target: JsValue = "#no-such-image".into();
    assert!(err(ImageChat::mount(target.unchecked_into(), None)).contains("no element"));
    let target: JsValue = container.clone().into();
    assert!(err(ImageChat::mount(target.unchecked_into(), None)).contains("<img>"));
    let target: JsValue = img.clone().into();
    let bad = options(r#"{"theme":"pink"}"#);
    assert!(
        err(ImageChat::mount(
            target.unchecked_into(),
            Some(bad.unchecked_into())
        ))
        .contains("theme")
    );
    assert!(
        q(&container, ".image-chat").is_none(),
        "nothing mounted on error"
    );
    container.remove();
}

// -------------------------------------------------------------------------------------------
// Languages
// -------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn every_locale_shows_its_own_strings() {
    load_tables();
    let cases: [(&str, &Strings); 4] = [
        ("fr-FR", Locale::Fr.strings()),
        ("ru", Locale::Ru.strings()),
        ("pt", Locale::Pt.strings()),
        ("en-GB", &EN),
    ];
    for (tag, strings) in cases {
        let (container, img) = fixture().await;
        let chat = mount(
            &img,
            &format!(r#"{{"server":"{NO_SERVER}","locale":"{tag}"}}"#),
        );
        let root = root_of(&container);
        assert_eq!(
            root.get_attribute("aria-label").as_deref(),
            Some(strings.overlay_label)
        );
        let status = text(&q(&container, ".image-chat-status").unwrap());
        let reconnecting = strings.reconnecting.trim_end_matches('…');
        assert!(
            status == strings.connecting || status.starts_with(reconnecting),
            "{tag}: {status}"
        );
        assert_eq!(
            Locale::from_tag(tag).map(Locale::tag),
            root.get_attribute("lang").as_deref()
        );
        overlay_sized(&container, 400.0, 200.0).await;
        let thread = post_offline(&container, &img, "hello").await;
        assert_eq!(
            text(&q(&thread, ".image-chat-error").unwrap()),
            strings.err_not_connected,
            "{tag}"
        );
        assert_eq!(
            text(&q(&thread, "[data-action=retry]").unwrap()),
            strings.retry
        );
        let author = text(&q(&thread, ".image-chat-author").unwrap());
        assert!(author.starts_with(strings.guest), "{tag}: {author}");
        chat.destroy();
        container.remove();
    }
}

// -------------------------------------------------------------------------------------------
// Live sync, with a scripted fake WebSocket playing the server
// -------------------------------------------------------------------------------------------

const FAKE_WS: &str = r#"
window.__icRealWebSocket = window.__icRealWebSocket || window.WebSocket;
window.__icSockets = [];
window.WebSocket = class FakeWebSocket extends EventTarget {
  constructor(url) { super(); this.url = url; this.readyState = 0; this.sent = []; window.__icSockets.push(this); }
  send(text) { if (this.readyState !== 1) throw new Error('not open'); this.sent.push(text); }
  close(code) { this.readyState = 3; this.closedWith = code; }
  serverOpen() { this.readyState = 1; this.onopen && this.onopen(new Event('open')); }
  serverSend(obj) { this.onmessage && this.onmessage(new MessageEvent('message', { data: JSON.stringify(obj) })); }
  serverClose(code) { this.readyState = 3; this.onclose && this.onclose(new CloseEvent('close', { code })); }
};
window.WebSocket.CONNECTING = 0; window.WebSocket.OPEN = 1; window.WebSocket.CLOSING = 2; window.WebSocket.CLOSED = 3;
"#;

fn js(code: &str) -> JsValue {
    Function::new_no_args(code).call0(&JsValue::NULL).unwrap()
}

fn socket(i: u32) -> JsValue {
    js(&format!("return window.__icSockets[{i}]"))
}

fn sockets() -> u32 {
    js("return window.__icSockets.length").as_f64().unwrap() as u32
}

fn sent(ws: &JsValue) -> Vec<serde_json::Value> {
    let arr: js_sys::Array = Reflect::get(ws, &"sent".into()).unwrap().unchecked_into();
    arr.iter()
        .map(|v| serde_json::from_str(&v.as_string().unwrap()).unwrap())
        .collect()
}

fn server_send(ws: &JsValue, json: &str) {
    let f: Function = Reflect::get(ws, &"serverSend".into())
        .unwrap()
        .unchecked_into();
    f.call1(ws, &js_sys::JSON::parse(json).unwrap()).unwrap();
}

fn server_call(ws: &JsValue, method: &str, arg: JsValue) {
    let f: Function = Reflect::get(ws, &method.into()).unwrap().unchecked_into();
    f.call1(ws, &arg).unwrap();
}

const CHAT_A: &str = "bxwqnjt9TB6aKwEjRWeJqg";
/// The opening comment of a discussion has the discussion's id (and no `id` key on the wire).
const COMMENT_A: &str = CHAT_A;
const CHAT_B: &str = "fxwqnjt9TB6aKwEjRWeJqg";

#[wasm_bindgen_test]
async fn live_sync_with_a_scripted_server() {
    js(FAKE_WS);
    let (container, img) = fixture().await;
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let token_key = "image-chat:token:ws://fake.test/ws:demo";
    storage.remove_item(token_key).unwrap();
    let chat = mount(
        &img,
        r#"{"server":"ws://fake.test/ws","locale":"en","imageId":"cat"}"#,
    );
    wait_for("socket opened", || sockets() == 1).await;
    let ws = socket(0);
    assert_eq!(
        Reflect::get(&ws, &"url".into())
            .unwrap()
            .as_string()
            .unwrap(),
        "ws://fake.test/ws"
    );
    server_call(&ws, "serverOpen", JsValue::UNDEFINED);
    let hello = sent(&ws).into_iter().next().expect("hello");
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["tenantId"], "demo");
    assert_eq!(hello["imageId"], "cat");
    assert_eq!(hello["auth"]["type"], "anonymous");
    assert_eq!(hello["auth"]["name"], "Guest");

    let two_min_ago = js_sys::Date::now() - 125_000.0;
    server_send(
        &ws,
        &format!(
            r#"{{"type":"welcome","you":{{"id":"anon:me","name":"Guest"}},"token":"tok-1",
            "position":{{"epoch":1,"seq":1}},"recovered":false,"online":3,
            "snapshot":{{"chats":[{{"id":"{CHAT_A}","anchor":[0.25,0.5],
            "comments":[{{"author":{{"id":"anon:eve","name":"<b>Eve</b> 😀 &amp; \"q\""}},
            "text":"<img src=x onerror=alert(1)> look","createdAt":{two_min_ago}}}]}}]}}}}"#
        ),
    );
    let root = root_of(&container);
    let r2 = root.clone();
    wait_for("live", move || {
        r2.get_attribute("data-state").as_deref() == Some("live")
    })
    .await;
    assert_eq!(text(&q(&container, ".image-chat-status").unwrap()), EN.live);
    assert_eq!(
        text(&q(&container, ".image-chat-online").unwrap()),
        "3 people here"
    );
    assert_eq!(
        storage.get_item(token_key).unwrap().as_deref(),
        Some("tok-1")
    );

    // The remote discussion: a marker at its fraction, a thread rendered as text.
    let marker = q(
        &container,
        &format!("button.image-chat-marker[data-chat-id=\"{CHAT_A}\"]"),
    )
    .unwrap();
    let (r, m) = (
        img.get_bounding_client_rect(),
        marker.get_bounding_client_rect(),
    );
    let (cx, cy) = (m.left() + m.width() / 2.0, m.top() + m.height() / 2.0);
    assert!((cx - (r.left() + r.width() * 0.25)).abs() < 1.0, "x {cx}");
    assert!((cy - (r.top() + r.height() * 0.5)).abs() < 1.0, "y {cy}");
    assert!(!marker.has_attribute("data-pending") && !marker.has_attribute("data-failed"));
    // Hostile and non-ASCII text lands in the accessible name as text (markers are built in
    // one call into JS from one string of fields; a wrong offset would garble what follows).
    assert_eq!(
        marker.get_attribute("aria-label").unwrap(),
        "Discussion by <b>Eve</b> 😀 &amp; \"q\": “<img src=x onerror=alert(1)> look”, 1 comment"
    );
    assert_eq!(text(&marker), "1");
    assert_eq!(marker.child_element_count(), 0);
    click(&marker);
    let thread = q(
        &container,
        &format!(".image-chat-thread[data-chat-id=\"{CHAT_A}\"]"),
    )
    .expect("thread");
    assert!(
        thread.contains(active().as_ref().map(|e| e.unchecked_ref())),
        "focus in the thread"
    );
    let comment = q(
        &thread,
        &format!(".image-chat-comment[data-comment-id=\"{COMMENT_A}\"]"),
    )
    .unwrap();
    assert_eq!(
        text(&q(&comment, ".image-chat-text").unwrap()),
        "<img src=x onerror=alert(1)> look"
    );
    assert_eq!(
        text(&q(&comment, ".image-chat-author").unwrap()),
        "<b>Eve</b> 😀 &amp; \"q\""
    );
    assert_eq!(
        text(&q(&comment, ".image-chat-time").unwrap()),
        "2 minutes ago"
    );
    assert!(q(&thread, "img").is_none() && q(&thread, "b").is_none());
    assert!(
        q(&comment, "[data-action=edit]").is_none(),
        "not ours: no edit"
    );

    // Our reply: pending at once, confirmed by ack + echo.
    let reply: HtmlTextAreaElement = q(&thread, ".image-chat-compose textarea")
        .unwrap()
        .unchecked_into();
    reply.set_value("Agreed");
    click(&q(&thread, "[data-action=reply]").unwrap());
    let pending = q(&thread, ".image-chat-comment[data-pending]").expect("pending reply");
    assert_eq!(text(&q(&pending, ".image-chat-text").unwrap()), "Agreed");
    assert!(marker.has_attribute("data-pending"));
    assert_eq!(reply.value(), "");
    let frame = sent(&ws)
        .into_iter()
        .find(|f| f["type"] == "add-comment")
        .expect("add-comment sent");
    let bid = frame["broadcastId"].as_str().unwrap().to_owned();
    let cid = frame["commentId"].as_str().unwrap().to_owned();
    server_send(
        &ws,
        &format!(r#"{{"type":"ack","broadcastId":"{bid}","seq":2}}"#),
    );
    server_send(
        &ws,
        &format!(
            r#"{{"type":"image-chat-updated","seq":2,"epoch":1,"broadcastId":"{bid}","chatId":"{CHAT_A}",
            "change":{{"kind":"comment-added","comment":{{"id":"{cid}","author":{{"id":"anon:me","name":"Guest"}},
            "text":"Agreed","createdAt":{now}}}}}}}"#,
            now = js_sys::Date::now()
        ),
    );
    let t = thread.clone();
    wait_for("reply confirmed", move || q(&t, "[data-pending]").is_none()).await;
    assert_eq!(
        thread
            .query_selector_all(".image-chat-comment")
            .unwrap()
            .length(),
        2
    );
    let mine = q(&thread, &format!("[data-comment-id=\"{cid}\"]")).unwrap();
    assert!(
        q(&mine, "[data-action=edit]").is_some(),
        "own comment: edit offered"
    );
    assert!(!marker.has_attribute("data-pending"));
    assert_eq!(text(&marker), "2");

    // Someone else starts a discussion: a marker appears and it is announced.
    server_send(
        &ws,
        &format!(
            r#"{{"type":"new-image-chat","seq":3,"epoch":1,"broadcastId":"jxwqnjt9TB6aKwEjRWeJqg",
            "chat":{{"id":"{CHAT_B}","anchor":[0.9,0.1],
            "comments":[{{"author":{{"id":"anon:bob","name":"Bob"}},"text":"hi","createdAt":1}}]}}}}"#
        ),
    );
    let c = container.clone();
    wait_for("remote marker", move || {
        q(
            &c,
            &format!(".image-chat-marker[data-chat-id=\"{CHAT_B}\"]"),
        )
        .is_some()
    })
    .await;
    assert_eq!(
        text(&q(&container, ".image-chat-sr").unwrap()),
        "Bob started a discussion"
    );
    server_send(&ws, r#"{"type":"presence","online":5}"#);
    assert_eq!(
        text(&q(&container, ".image-chat-online").unwrap()),
        "5 people here"
    );

    // Escape closes the thread and returns focus to its marker.
    key(&thread, "Escape");
    assert!(q(&container, ".image-chat-thread").is_none());
    assert!(active().unwrap() == marker);

    // The connection drops: reconnecting with a countdown, then a new socket with resume.
    server_call(&ws, "serverClose", JsValue::from_f64(1006.0));
    let r2 = root.clone();
    wait_for("reconnecting", move || {
        r2.get_attribute("data-state").as_deref() == Some("reconnecting")
    })
    .await;
    assert!(text(&q(&container, ".image-chat-status").unwrap()).starts_with("Reconnecting"));
    assert_eq!(text(&q(&container, ".image-chat-online").unwrap()), "");
    wait_for("second socket", || sockets() == 2).await;
    let ws2 = socket(1);
    server_call(&ws2, "serverOpen", JsValue::UNDEFINED);
    let hello = sent(&ws2).into_iter().next().unwrap();
    assert_eq!(hello["resume"]["seq"], 3);
    assert_eq!(
        hello["auth"]["token"], "tok-1",
        "the stored identity is presented again"
    );

    chat.destroy();
    assert_eq!(
        Reflect::get(&ws2, &"closedWith".into()).unwrap().as_f64(),
        Some(1000.0)
    );
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

#[wasm_bindgen_test]
async fn authentication_failure_stops_retrying_until_new_auth() {
    js(FAKE_WS);
    let (container, img) = fixture().await;
    let auth =
        r#"{"type":"sso","userData":"eyJpZCI6InUiLCJuYW1lIjoiVSJ9","timestamp":1000,"hash":"00"}"#;
    let chat = mount(
        &img,
        &format!(r#"{{"server":"ws://fake.test/ws","locale":"en","imageId":"cat","auth":{auth}}}"#),
    );
    wait_for("socket opened", || sockets() == 1).await;
    let ws = socket(0);
    server_call(&ws, "serverOpen", JsValue::UNDEFINED);
    // The signed user goes to the server unchanged.
    let hello = sent(&ws).into_iter().next().expect("hello");
    assert_eq!(hello["auth"]["type"], "sso");
    assert_eq!(hello["auth"]["userData"], "eyJpZCI6InUiLCJuYW1lIjoiVSJ9");
    assert_eq!(hello["auth"]["timestamp"], 1000);
    assert_eq!(hello["auth"]["hash"], "00");
    // The server refuses it as the real one does: an error frame, then close 4401.
    server_send(
        &ws,
        r#"{"type":"error","code":"authentication-failed","message":"the SSO signature does not match"}"#,
    );
    server_call(&ws, "serverClose", JsValue::from_f64(4401.0));
    let root = root_of(&container);
    let r = root.clone();
    wait_for("stopped", move || {
        r.get_attribute("data-state").as_deref() == Some("stopped")
    })
    .await;
    assert_eq!(chat.state(), "stopped");
    let status = q(&container, ".image-chat-status").unwrap();
    assert!(
        status.get_attribute("title").is_some_and(|t| !t.is_empty()),
        "the status says why it stopped"
    );
    // No retry is scheduled: the engine arms no timer once stopped (proved on a virtual clock
    // in the sync crate's `terminal_close_codes_stop_retrying`), and this glue only opens a
    // socket when the engine asks. So no wall-clock wait here: still the one socket.
    assert_eq!(sockets(), 1);
    // New auth from the page connects again.
    let fresh = js_sys::JSON::parse(
        r#"{"type":"sso","userData":"eyJpZCI6InUiLCJuYW1lIjoiVSJ9","timestamp":2000,"hash":"11"}"#,
    )
    .unwrap();
    chat.set_auth(fresh.unchecked_into()).unwrap();
    wait_for("reconnect with new auth", || sockets() == 2).await;
    let ws2 = socket(1);
    server_call(&ws2, "serverOpen", JsValue::UNDEFINED);
    let hello = sent(&ws2).into_iter().next().expect("hello");
    assert_eq!(hello["auth"]["timestamp"], 2000);
    chat.destroy();
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

#[wasm_bindgen_test]
async fn server_read_only_verdict_hides_the_controls() {
    js(FAKE_WS);
    let (container, img) = fixture().await;
    let chat = mount(
        &img,
        r#"{"server":"ws://fake.test/ws","locale":"en","imageId":"cat"}"#,
    );
    wait_for("socket opened", || sockets() == 1).await;
    let ws = socket(0);
    server_call(&ws, "serverOpen", JsValue::UNDEFINED);
    // The option said writable; the server says read-only (tenant policy or signed user data).
    server_send(
        &ws,
        &format!(
            r#"{{"type":"welcome","you":{{"id":"anon:me","name":"Guest"}},
            "position":{{"epoch":1,"seq":1}},"recovered":false,"online":1,"readOnly":true,
            "snapshot":{{"chats":[{{"id":"{CHAT_A}","anchor":[0.25,0.5],
            "comments":[{{"author":{{"id":"anon:me","name":"Guest"}},
            "text":"mine, but frozen","createdAt":1700000000000}}]}}]}}}}"#
        ),
    );
    let root = root_of(&container);
    let r = root.clone();
    wait_for("read-only", move || r.has_attribute("data-read-only")).await;
    // Clicking the picture opens no draft.
    let rect = img.get_bounding_client_rect();
    click_at(rect.left() + 20.0, rect.top() + 20.0);
    assert_eq!(count(".image-chat-thread[data-draft]"), 0);
    // A thread shows no reply box and no edit button, even on one's own comment.
    let marker = q(
        &container,
        &format!("button.image-chat-marker[data-chat-id=\"{CHAT_A}\"]"),
    )
    .unwrap();
    click(&marker);
    let thread = q(&container, ".image-chat-thread").expect("thread opens for reading");
    assert!(q(&thread, ".image-chat-compose").is_none());
    assert!(q(&thread, "[data-action=edit]").is_none());
    // Nothing but the hello was sent.
    assert_eq!(sent(&ws).len(), 1);
    chat.destroy();
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

// -------------------------------------------------------------------------------------------
// Reader flow: focus after every action, unsent text kept, state events, reconnect now,
// invalid options
// -------------------------------------------------------------------------------------------

fn ctrl_enter(target: &Element) {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key("Enter");
    init.set_ctrl_key(true);
    init.set_bubbles(true);
    init.set_cancelable(true);
    let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    target.dispatch_event(&ev).unwrap();
}

/// Mounts on a fresh fixture with the fake WebSocket and makes it live with one discussion,
/// `CHAT_A`, whose opening comment is `author`'s ("anon:me" is the person). Returns the
/// container, the image, the handle and the socket.
async fn live_with_one_chat(author: &str) -> (Element, HtmlImageElement, ImageChat, JsValue) {
    js(FAKE_WS);
    let (container, img) = fixture().await;
    let chat = mount(
        &img,
        r#"{"server":"ws://fake.test/ws","locale":"en","imageId":"cat"}"#,
    );
    wait_for("socket opened", || sockets() == 1).await;
    let ws = socket(0);
    server_call(&ws, "serverOpen", JsValue::UNDEFINED);
    server_send(
        &ws,
        &format!(
            r#"{{"type":"welcome","you":{{"id":"anon:me","name":"Guest"}},
            "position":{{"epoch":1,"seq":1}},"recovered":false,"online":1,
            "snapshot":{{"chats":[{{"id":"{CHAT_A}","anchor":[0.25,0.5],
            "comments":[{{"author":{{"id":"{author}","name":"Someone"}},
            "text":"first","createdAt":1700000000000}}]}}]}}}}"#
        ),
    );
    let root = root_of(&container);
    wait_for("live", move || {
        root.get_attribute("data-state").as_deref() == Some("live")
    })
    .await;
    (container, img, chat, ws)
}

fn open_thread_a(container: &Element) -> Element {
    let marker = q(
        container,
        &format!("button.image-chat-marker[data-chat-id=\"{CHAT_A}\"]"),
    )
    .unwrap();
    click(&marker);
    q(container, ".image-chat-thread[data-chat-id]").expect("thread")
}

fn focus_in(e: &Element) -> bool {
    active().is_some_and(|a| e.contains(Some(a.unchecked_ref())))
}

fn finish(chat: ImageChat, container: Element) {
    chat.destroy();
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

/// Saving an edit with Ctrl+Enter replaced the editor (which had focus) and left focus on
/// `<body>`, where Esc did nothing. Focus now stays in the thread, and Esc closes it.
#[wasm_bindgen_test]
async fn focus_stays_in_the_thread_after_saving_an_edit_with_ctrl_enter() {
    let (container, _img, chat, ws) = live_with_one_chat("anon:me").await;
    let thread = open_thread_a(&container);
    click(&q(&thread, "[data-action=edit]").expect("own comment: edit"));
    let editor: HtmlTextAreaElement = q(&thread, "textarea.image-chat-edit")
        .unwrap()
        .unchecked_into();
    assert!(focus_in(&thread));
    editor.set_value("first, edited");
    ctrl_enter(editor.unchecked_ref());
    assert!(
        sent(&ws).iter().any(|f| f["type"] == "edit-comment"),
        "the edit was sent"
    );
    assert!(
        q(&thread, "textarea.image-chat-edit").is_none(),
        "editor closed"
    );
    assert!(focus_in(&thread), "focus in the thread, not on <body>");
    key(&active().unwrap(), "Escape");
    assert!(
        q(&container, ".image-chat-thread").is_none(),
        "Esc closes it"
    );
    let marker = q(&container, "button.image-chat-marker[data-chat-id]").unwrap();
    assert!(active().unwrap() == marker, "focus back on the marker");
    finish(chat, container);
}

/// Pressing Retry on a failed reply re-rendered the comment without its Retry button (now
/// pending): focus fell to `<body>`. It now stays in the thread.
#[wasm_bindgen_test]
async fn focus_stays_in_the_thread_after_retry() {
    let (container, _img, chat, ws) = live_with_one_chat("anon:bob").await;
    let thread = open_thread_a(&container);
    let reply: HtmlTextAreaElement = q(&thread, ".image-chat-compose textarea")
        .unwrap()
        .unchecked_into();
    reply.set_value("will fail once");
    click(&q(&thread, "[data-action=reply]").unwrap());
    let frame = sent(&ws)
        .into_iter()
        .find(|f| f["type"] == "add-comment")
        .unwrap();
    let bid = frame["broadcastId"].as_str().unwrap().to_owned();
    server_send(
        &ws,
        &format!(
            r#"{{"type":"error","broadcastId":"{bid}","code":"unavailable","message":"try again"}}"#
        ),
    );
    let retry = q(&thread, "[data-action=retry]").expect("unavailable: retry offered");
    retry.dyn_ref::<HtmlElement>().unwrap().focus().unwrap();
    click(&retry);
    assert!(
        q(&thread, ".image-chat-comment[data-pending]").is_some(),
        "resent"
    );
    assert!(focus_in(&thread), "focus in the thread, not on <body>");
    key(&active().unwrap(), "Escape");
    assert!(
        q(&container, ".image-chat-thread").is_none(),
        "Esc closes it"
    );
    finish(chat, container);
}

/// A failure no retry can fix (the image is full) offers only "dismiss".
#[wasm_bindgen_test]
async fn no_retry_for_a_full_image() {
    let (container, _img, chat, ws) = live_with_one_chat("anon:bob").await;
    let thread = open_thread_a(&container);
    let reply: HtmlTextAreaElement = q(&thread, ".image-chat-compose textarea")
        .unwrap()
        .unchecked_into();
    reply.set_value("one too many");
    click(&q(&thread, "[data-action=reply]").unwrap());
    let bid = sent(&ws)
        .into_iter()
        .find(|f| f["type"] == "add-comment")
        .unwrap()["broadcastId"]
        .as_str()
        .unwrap()
        .to_owned();
    server_send(
        &ws,
        &format!(
            r#"{{"type":"error","broadcastId":"{bid}","code":"limit-exceeded","message":"full"}}"#
        ),
    );
    let failed = q(&thread, ".image-chat-comment[data-failed]").expect("failed reply");
    assert_eq!(
        text(&q(&failed, ".image-chat-error").unwrap()),
        EN.err_limit
    );
    assert!(q(&failed, "[data-action=retry]").is_none(), "no retry");
    assert!(q(&failed, "[data-action=dismiss]").is_some());
    finish(chat, container);
}

/// Someone else deletes the discussion while the person is typing a reply: the text is not
/// thrown away with the thread. A visible alert says so, the text stays (focused, selected)
/// with a Copy button, until the person closes the thread.
#[wasm_bindgen_test]
async fn a_reply_being_typed_survives_the_discussion_being_deleted() {
    let (container, _img, chat, ws) = live_with_one_chat("anon:bob").await;
    let thread = open_thread_a(&container);
    let reply: HtmlTextAreaElement = q(&thread, ".image-chat-compose textarea")
        .unwrap()
        .unchecked_into();
    reply.focus().unwrap();
    reply.set_value("a long and thoughtful answer");
    server_send(
        &ws,
        &format!(
            r#"{{"type":"deleted-image-chat","seq":2,"epoch":1,"broadcastId":"jxwqnjt9TB6aKwEjRWeJqg","chatId":"{CHAT_A}"}}"#
        ),
    );
    assert!(
        q(&container, "button.image-chat-marker[data-chat-id]").is_none(),
        "the marker is gone"
    );
    let thread = q(&container, ".image-chat-thread[data-deleted]").expect("the thread stays");
    let notice = q(&thread, "[role=alert]").expect("a visible notice");
    assert_eq!(text(&notice), EN.deleted_kept);
    assert!(!notice.has_attribute("hidden"));
    let kept: HtmlTextAreaElement = q(&thread, "textarea.image-chat-kept")
        .unwrap()
        .unchecked_into();
    assert_eq!(kept.value(), "a long and thoughtful answer");
    assert!(kept.read_only());
    assert!(
        active().unwrap() == *kept.unchecked_ref::<Element>(),
        "focused"
    );
    assert!(
        q(&thread, "[data-action=reply]").is_none(),
        "nothing to reply to"
    );
    let copy = q(&thread, "[data-action=copy]").expect("copy button");
    click(&copy);
    assert_eq!(text(&copy), EN.copied);
    assert!(focus_in(&thread));
    click(&q(&thread, "[data-action=close]").unwrap());
    assert!(q(&container, ".image-chat-thread").is_none());
    finish(chat, container);
}

/// `image-chat:state` fires on a change of state only: not again for each reconnect attempt
/// and countdown (12 "reconnecting" in 19 s before).
#[wasm_bindgen_test]
async fn state_event_fires_only_on_a_change() {
    js(FAKE_WS);
    let (container, img) = fixture().await;
    js("window.__icStates = [];");
    let record = Function::new_with_args("e", "window.__icStates.push(e.detail.state)");
    img.add_event_listener_with_callback("image-chat:state", &record)
        .unwrap();
    let chat = mount(
        &img,
        r#"{"server":"ws://fake.test/ws","locale":"en","imageId":"cat"}"#,
    );
    let states = || -> Vec<String> {
        let a: js_sys::Array = js("return window.__icStates").unchecked_into();
        a.iter().map(|v| v.as_string().unwrap()).collect()
    };
    let welcome = r#"{"type":"welcome","you":{"id":"anon:me","name":"Guest"},
        "position":{"epoch":1,"seq":0},"recovered":false,"online":1,"snapshot":{"chats":[]}}"#;
    wait_for("socket", || sockets() == 1).await;
    server_call(&socket(0), "serverOpen", JsValue::UNDEFINED);
    server_send(&socket(0), welcome);
    // Three failed attempts in a row: each is a new connecting / waiting status.
    for n in 0..3 {
        server_call(&socket(n), "serverClose", JsValue::from_f64(1006.0));
        wait_for("next attempt", move || sockets() == n + 2).await;
    }
    server_call(&socket(3), "serverOpen", JsValue::UNDEFINED);
    server_send(&socket(3), welcome);
    assert_eq!(states(), ["live", "reconnecting", "live"]);
    assert_eq!(chat.state(), "live");
    img.remove_event_listener_with_callback("image-chat:state", &record)
        .unwrap();
    finish(chat, container);
}

/// While a reconnect delay is counted down, "Reconnect now" is offered; it opens a socket at
/// once (in the same task, before any timer), and focus stays in the widget when the button
/// goes. Becoming visible again (`visibilitychange`) also attempts at once.
#[wasm_bindgen_test]
async fn reconnect_now_and_visibility_attempt_at_once() {
    let (container, _img, chat, ws) = live_with_one_chat("anon:bob").await;
    let button = q(&container, ".image-chat-bar [data-action=reconnect]").expect("button");
    assert!(button.has_attribute("hidden"), "not while live");
    // No await between the close and the click: no timer can have fired.
    server_call(&ws, "serverClose", JsValue::from_f64(1006.0));
    assert_eq!(chat.state(), "reconnecting");
    assert!(!button.has_attribute("hidden"), "offered while waiting");
    assert_eq!(text(&button), EN.reconnect_now);
    button.dyn_ref::<HtmlElement>().unwrap().focus().unwrap();
    click(&button);
    assert_eq!(sockets(), 2, "a socket at once");
    assert!(button.has_attribute("hidden"), "not while connecting");
    assert!(
        focus_in(&root_of(&container)),
        "focus stays in the widget, not on <body>"
    );
    server_call(&socket(1), "serverClose", JsValue::from_f64(1006.0));
    assert_eq!(chat.state(), "reconnecting");
    doc()
        .dispatch_event(&web_sys::Event::new("visibilitychange").unwrap())
        .unwrap();
    assert_eq!(sockets(), 3, "visible again: a socket at once");
    finish(chat, container);
}

/// An invalid option (an 80-character display name in a data attribute) no longer leaves
/// the page with nothing: a visible notice after the image names the option, in the page's
/// language, with the developer's message as its title; a correct retry replaces it.
#[wasm_bindgen_test]
async fn an_invalid_option_shows_which_one_instead_of_nothing() {
    let (container, img) = fixture().await;
    img.set_attribute("data-image-chat", "x").unwrap();
    img.set_attribute("data-server", NO_SERVER).unwrap();
    img.set_attribute("data-locale", "fr").unwrap();
    img.set_attribute("data-name", &"n".repeat(80)).unwrap();
    let mounted: js_sys::Array = ImageChat::auto_mount(None).unchecked_into();
    assert_eq!(mounted.length(), 0);
    assert!(q(&container, ".image-chat").is_none());
    let notice = q(&container, "img + .image-chat-invalid[role=alert]").expect("a notice");
    assert_eq!(notice.get_attribute("data-option").as_deref(), Some("name"));
    assert_eq!(text(&notice), Locale::Fr.invalid_option("name"));
    assert!(
        notice
            .get_attribute("title")
            .is_some_and(|t| t.contains("`name`"))
    );
    // Mounting again (still invalid) keeps one notice; fixed, the widget replaces it.
    let _: js_sys::Array = ImageChat::auto_mount(None).unchecked_into();
    assert_eq!(count(".image-chat-invalid"), 1);
    img.set_attribute("data-name", "Ada").unwrap();
    let mounted: js_sys::Array = ImageChat::auto_mount(None).unchecked_into();
    assert_eq!(mounted.length(), 1);
    assert_eq!(count(".image-chat-invalid"), 0);
    assert!(q(&container, ".image-chat").is_some());
    let m = mounted.get(0);
    let destroy: Function = Reflect::get(&m, &"destroy".into())
        .unwrap()
        .unchecked_into();
    destroy.call0(&m).unwrap();
    container.remove();
}

/// The overlay is not inside the image's ancestors, so the custom properties a site sets on
/// them are copied onto it (and follow later changes).
#[wasm_bindgen_test]
async fn custom_properties_on_the_images_ancestors_reach_the_overlay() {
    let (container, img) = fixture().await;
    container
        .set_attribute("style", "margin:8px;--image-chat-accent:rgb(1, 2, 3)")
        .unwrap();
    let chat = mount(&img, &format!(r#"{{"server":"{NO_SERVER}"}}"#));
    overlay_sized(&container, 400.0, 200.0).await;
    let r = img.get_bounding_client_rect();
    click_at(r.left() + 100.0, r.top() + 100.0);
    let marker = q(&container, ".image-chat-marker[data-draft]").expect("draft");
    let colour = |e: &Element, prop: &str| {
        web_sys::window()
            .unwrap()
            .get_computed_style(e)
            .unwrap()
            .unwrap()
            .get_property_value(prop)
            .unwrap()
    };
    assert_eq!(colour(&marker, "border-color"), "rgb(1, 2, 3)");
    container
        .set_attribute("style", "margin:8px;--image-chat-accent:rgb(4, 5, 6)")
        .unwrap();
    let m = marker.clone();
    wait_for("changed accent", move || {
        colour(&m, "border-color") == "rgb(4, 5, 6)"
    })
    .await;
    chat.destroy();
    container.remove();
}

/// An image in a scroller (a carousel): the overlay covers only the part the scroller shows,
/// follows its scrolling, and is hidden when the image is scrolled out of it.
#[wasm_bindgen_test]
async fn overlay_is_clipped_to_a_scrolling_ancestor_and_follows_it() {
    let (container, img) = fixture().await;
    container
        .set_attribute(
            "style",
            "margin:8px;width:200px;overflow-x:auto;white-space:nowrap",
        )
        .unwrap();
    let spacer = doc().create_element("span").unwrap();
    spacer
        .set_attribute("style", "display:inline-block;width:400px;height:10px")
        .unwrap();
    container.append_child(&spacer).unwrap();
    let chat = mount(&img, &format!(r#"{{"server":"{NO_SERVER}"}}"#));
    // Only the 200 px the scroller shows (its scrollbar aside).
    overlay_sized(&container, 200.0, 200.0).await;
    let c = container.clone();
    let layer = move || {
        q(&c, ".image-chat-layer")
            .unwrap()
            .get_bounding_client_rect()
    };
    let scroller = container.get_bounding_client_rect();
    assert!((layer().left() - scroller.left()).abs() < 0.5);
    assert!(
        (layer().width() - 400.0).abs() < 0.5,
        "markers keep the whole picture box"
    );

    container.set_scroll_left(150);
    let (l, s) = (layer.clone(), scroller.left());
    wait_for("layer follows the scroll", move || {
        (l().left() - (s - 150.0)).abs() < 0.5
    })
    .await;
    let root = root_of(&container).get_bounding_client_rect();
    assert!((root.left() - scroller.left()).abs() < 0.5 && (root.width() - 200.0).abs() < 0.5);

    // Scrolled past the image: nothing of it shows, nor does the overlay.
    container.set_scroll_left(500);
    wait_for("overlay hidden", || count(".image-chat[hidden]") == 1).await;
    chat.destroy();
    container.remove();
}

// -------------------------------------------------------------------------------------------
// People: names, badges, bidirectional text
// -------------------------------------------------------------------------------------------

/// Mounts with the scripted server, welcomes as `anon:me` with `snapshot_chats` (JSON array
/// items), and waits until live. Returns the widget, its socket and the overlay.
async fn live_with(
    img: &HtmlImageElement,
    container: &Element,
    options_json: &str,
    snapshot_chats: &str,
) -> (ImageChat, JsValue, Element) {
    js(FAKE_WS);
    let chat = mount(img, options_json);
    wait_for("socket opened", || sockets() == 1).await;
    let ws = socket(0);
    server_call(&ws, "serverOpen", JsValue::UNDEFINED);
    server_send(
        &ws,
        &format!(
            r#"{{"type":"welcome","you":{{"id":"anon:me","name":"Guest"}},
            "position":{{"epoch":1,"seq":1}},"recovered":false,"online":1,
            "snapshot":{{"chats":[{snapshot_chats}]}}}}"#
        ),
    );
    let root = root_of(container);
    let r = root.clone();
    wait_for("live", move || {
        r.get_attribute("data-state").as_deref() == Some("live")
    })
    .await;
    (chat, ws, root)
}

fn computed(e: &Element, prop: &str) -> String {
    web_sys::window()
        .unwrap()
        .get_computed_style(e)
        .unwrap()
        .unwrap()
        .get_property_value(prop)
        .unwrap()
}

#[wasm_bindgen_test]
async fn badges_cannot_be_imitated_and_names_are_isolated() {
    let (container, img) = fixture().await;
    let comment = |author: &str, text: &str| {
        format!(r#"{{"author":{author},"text":"{text}","createdAt":1700000000000}}"#)
    };
    let thread = [
        // Our own comment, under a name with a right-to-left override.
        comment(r#"{"id":"anon:me","name":"\u202eEve"}"#, "mine"),
        // Someone typing "(you)" and the badge words into their name.
        comment(
            r#"{"id":"anon:mallory","name":"Alice (you) signed in moderator"}"#,
            r"\u202ereversed text",
        ),
        // A signed-in moderator.
        comment(
            r#"{"id":"sso:u-1","name":"Grace","signedIn":true,"isModerator":true}"#,
            "welcome",
        ),
    ];
    let chats = format!(
        r#"{{"id":"{CHAT_A}","anchor":[0.25,0.5],"comments":[{},{{"id":"{CHAT_B}",{},{{"id":"jxwqnjt9TB6aKwEjRWeJqg",{}]}}"#,
        thread[0],
        &thread[1][1..],
        &thread[2][1..]
    );
    let (chat, _ws, _root) = live_with(
        &img,
        &container,
        r#"{"server":"ws://fake.test/ws","locale":"en","imageId":"cat"}"#,
        &chats,
    )
    .await;
    click(&q(&container, ".image-chat-marker[data-chat-id]").unwrap());
    let thread = q(&container, ".image-chat-thread").expect("thread");
    let comments = thread.query_selector_all(".image-chat-comment").unwrap();
    assert_eq!(comments.length(), 3);
    let badges = |i: u32| -> Vec<String> {
        let c: Element = comments.item(i).unwrap().unchecked_into();
        let list = c.query_selector_all(".image-chat-badge").unwrap();
        (0..list.length())
            .map(|j| {
                let b: Element = list.item(j).unwrap().unchecked_into();
                b.get_attribute("data-badge").unwrap()
            })
            .collect()
    };
    assert_eq!(badges(0), ["you"]);
    assert_eq!(
        badges(1),
        Vec::<String>::new(),
        "a typed name earns no badge"
    );
    assert_eq!(badges(2), ["signed-in", "moderator"]);
    let first: Element = comments.item(0).unwrap().unchecked_into();
    let badge = q(&first, ".image-chat-badge").unwrap();
    assert_eq!(text(&badge), EN.you);
    // The name is a <bdi> holding only the name; the badge is outside it.
    let author = q(&first, ".image-chat-author").unwrap();
    assert_eq!(author.tag_name(), "BDI");
    assert_eq!(text(&author), "\u{202e}Eve");
    assert!(!author.contains(Some(&badge)));
    assert_eq!(computed(&author, "unicode-bidi"), "isolate");
    // Rendered layout: the override in the name does not pull the badge or the time before
    // it (in an isolated name, "Eve" is drawn reversed, and everything after stays after).
    let a = author.get_bounding_client_rect();
    let b = badge.get_bounding_client_rect();
    let t = q(&first, ".image-chat-time")
        .unwrap()
        .get_bounding_client_rect();
    assert!(b.left() >= a.right() - 0.5, "badge after the name");
    assert!(t.left() >= b.right() - 0.5, "time after the badge");
    // Comment text takes its direction from itself and is isolated.
    let second: Element = comments.item(1).unwrap().unchecked_into();
    let body = q(&second, ".image-chat-text").unwrap();
    assert_eq!(body.get_attribute("dir").as_deref(), Some("auto"));
    assert_eq!(computed(&body, "unicode-bidi"), "plaintext");
    chat.destroy();
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

#[wasm_bindgen_test]
async fn a_chosen_name_is_checked_sent_and_remembered() {
    let (container, img) = fixture().await;
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    storage.remove_item("image-chat:name").unwrap();
    let opts = r#"{"server":"ws://fake.test/ws","locale":"en","imageId":"cat"}"#;
    let (chat, ws, _root) = live_with(&img, &container, opts, "").await;
    let textarea = place_draft(&container, &img, 0.3, 0.3).await;
    let name: web_sys::HtmlInputElement = q(
        &container,
        ".image-chat-thread[data-draft] input.image-chat-name",
    )
    .expect("a name field for an anonymous person")
    .unchecked_into();
    assert_eq!(name.value(), "", "nothing remembered yet");
    assert_eq!(name.placeholder(), EN.guest);
    assert_eq!(name.get_attribute("dir").as_deref(), Some("auto"));
    let post = || {
        click(
            &q(
                &container,
                ".image-chat-thread[data-draft] [data-action=post]",
            )
            .unwrap(),
        )
    };
    let error = || {
        text(
            &q(
                &container,
                ".image-chat-thread[data-draft] .image-chat-error",
            )
            .unwrap(),
        )
    };
    // A comment of invisible characters only: refused before sending, in words.
    textarea.set_value("\u{200b}\u{202e}\u{2066}");
    post();
    assert_eq!(error(), EN.err_invisible_text);
    // A name of invisible characters only: refused before sending, the field focused.
    textarea.set_value("Nice light");
    name.set_value("\u{200b}\u{3164}\u{feff}");
    post();
    assert_eq!(error(), EN.err_invisible_name);
    assert!(active().unwrap() == *name.unchecked_ref::<Element>());
    assert_eq!(sent(&ws).len(), 1, "only the hello went out");
    // A real one: `set-name` goes first, then the discussion, authored with it.
    name.set_value("  Ada ");
    post();
    let frames = sent(&ws);
    assert_eq!(frames[1]["type"], "set-name");
    assert_eq!(frames[1]["name"], "Ada");
    assert_eq!(frames[2]["type"], "create-chat");
    let mine = q(
        &container,
        ".image-chat-thread[data-chat-id] .image-chat-comment",
    )
    .unwrap();
    assert_eq!(text(&q(&mine, ".image-chat-author").unwrap()), "Ada");
    assert_eq!(
        storage.get_item("image-chat:name").unwrap().as_deref(),
        Some("Ada")
    );
    chat.destroy();
    // Remembered on this site: the next mount says hello as Ada and prefills the field.
    let (chat, ws, _root) = live_with(&img, &container, opts, "").await;
    let hello = sent(&ws).into_iter().next().unwrap();
    assert_eq!(hello["auth"]["name"], "Ada");
    place_draft(&container, &img, 0.6, 0.6).await;
    let name: web_sys::HtmlInputElement = q(&container, "input.image-chat-name")
        .unwrap()
        .unchecked_into();
    assert_eq!(name.value(), "Ada");
    chat.destroy();
    storage.remove_item("image-chat:name").unwrap();
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

#[wasm_bindgen_test]
async fn a_signed_user_gets_no_name_field() {
    let (container, img) = fixture().await;
    let opts = r#"{"server":"ws://fake.test/ws","locale":"en","imageId":"cat",
        "auth":{"type":"sso","userData":"eyJpZCI6InUiLCJuYW1lIjoiVSJ9","timestamp":1000,"hash":"00"}}"#;
    let (chat, _ws, _root) = live_with(&img, &container, opts, "").await;
    place_draft(&container, &img, 0.3, 0.3).await;
    assert!(q(&container, ".image-chat-thread[data-draft] textarea").is_some());
    assert!(q(&container, "input.image-chat-name").is_none());
    chat.destroy();
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

// -------------------------------------------------------------------------------------------
// Dense images: clusters and the markers toggle
// -------------------------------------------------------------------------------------------

fn rects_overlap(a: &web_sys::DomRect, b: &web_sys::DomRect) -> bool {
    a.left() < b.right() - 0.5
        && b.left() < a.right() - 0.5
        && a.top() < b.bottom() - 0.5
        && b.top() < a.bottom() - 0.5
}

/// One discussion of a snapshot: `id` at `(x, y)`, opened by Eve with `text`.
fn snapshot_chat(id: &str, (x, y): (f64, f64), text: &str) -> String {
    format!(
        r#"{{"id":"{id}","anchor":[{x},{y}],"comments":[{{"author":{{"id":"anon:eve","name":"Eve"}},"text":"{text}","createdAt":1}}]}}"#
    )
}

/// A live widget on `img` showing `chats` (see [`snapshot_chat`]), once it has drawn a
/// cluster; [`live_with`]'s handles.
async fn live_clustered(
    img: &HtmlImageElement,
    container: &Element,
    chats: &[String],
) -> (ImageChat, JsValue, Element) {
    let live = live_with(
        img,
        container,
        r#"{"server":"ws://fake.test/ws","locale":"en","imageId":"cat"}"#,
        &chats.join(","),
    )
    .await;
    let c = container.clone();
    wait_for("a cluster", move || q(&c, ".image-chat-cluster").is_some()).await;
    live
}

#[wasm_bindgen_test]
async fn overlapping_markers_cluster_expand_and_regroup_on_resize() {
    let (container, img) = fixture().await;
    // Five discussions within 16 px of the first on the 400×200 image (markers are 28 px:
    // they overlap), 32 px from one another once the image is twice as big; and one far away.
    let ids: Vec<String> = "cdefg"
        .chars()
        .map(|c| format!("{c}xwqnjt9TB6aKwEjRWeJqg"))
        .collect();
    let spots = [
        (0.3, 0.5),
        (0.34, 0.5),
        (0.26, 0.5),
        (0.3, 0.58),
        (0.3, 0.42),
    ];
    let mut chats: Vec<String> = ids
        .iter()
        .zip(spots)
        .enumerate()
        .map(|(i, (id, spot))| snapshot_chat(id, spot, &format!("n{i}")))
        .collect();
    chats.push(snapshot_chat(CHAT_A, (0.9, 0.1), "far"));
    let (chat, ws, root) = live_clustered(&img, &container, &chats).await;
    let clusters = root.query_selector_all(".image-chat-cluster").unwrap();
    assert_eq!(clusters.length(), 1);
    let cluster: Element = clusters.item(0).unwrap().unchecked_into();
    assert_eq!(cluster.get_attribute("data-count").as_deref(), Some("5"));
    assert_eq!(
        cluster.get_attribute("aria-label").as_deref(),
        Some("5 discussions")
    );
    assert_eq!(
        cluster.get_attribute("aria-expanded").as_deref(),
        Some("false")
    );
    assert_eq!(text(&cluster), "5");
    assert_eq!(cluster.tag_name(), "BUTTON", "keyboard-focusable");
    // Markers keep their contract: still in the layer, the clustered ones hidden.
    let marker = |id: &str| {
        q(
            &container,
            &format!(".image-chat-layer > button.image-chat-marker[data-chat-id=\"{id}\"]"),
        )
        .unwrap()
    };
    for id in &ids {
        assert!(marker(id).has_attribute("data-clustered"), "{id}");
        assert_eq!(computed(&marker(id), "display"), "none");
    }
    assert!(!marker(CHAT_A).has_attribute("data-clustered"));
    // The cluster sits on its oldest member's spot.
    let r = img.get_bounding_client_rect();
    let cr = cluster.get_bounding_client_rect();
    assert!((cr.left() + cr.width() / 2.0 - (r.left() + r.width() * 0.3)).abs() < 1.0);

    // Expanding: the members spread out, none covering another, the first one focused.
    click(&cluster);
    assert_eq!(
        cluster.get_attribute("aria-expanded").as_deref(),
        Some("true")
    );
    let rects: Vec<web_sys::DomRect> = ids
        .iter()
        .map(|id| {
            let m = marker(id);
            assert!(m.has_attribute("data-fanned"));
            assert_ne!(computed(&m, "display"), "none");
            m.get_bounding_client_rect()
        })
        .collect();
    for (i, a) in rects.iter().enumerate() {
        assert!(!rects_overlap(a, &cr), "member {i} covers the cluster");
        for b in &rects[i + 1..] {
            assert!(!rects_overlap(a, b), "members overlap");
        }
        // Around the cluster, not around the corner: a member hidden in the group was
        // created without its place, and gets it when the group fans out.
        let (dx, dy) = (
            a.left() + a.width() / 2.0 - (cr.left() + cr.width() / 2.0),
            a.top() + a.height() / 2.0 - (cr.top() + cr.height() / 2.0),
        );
        assert!(
            dx.hypot(dy) < 3.0 * cr.width(),
            "member {i} is {dx}, {dy} px away"
        );
    }
    assert!(
        active().unwrap() == marker(&ids[0]),
        "focus on the first member"
    );
    // A fanned marker opens its thread like any other.
    click(&marker(&ids[2]));
    assert!(
        q(
            &container,
            &format!(".image-chat-thread[data-chat-id=\"{}\"]", ids[2])
        )
        .is_some()
    );
    // Escape closes the thread, then folds the cluster and focuses it.
    key(&active().unwrap(), "Escape");
    assert!(q(&container, ".image-chat-thread").is_none());
    key(&active().unwrap(), "Escape");
    assert_eq!(
        cluster.get_attribute("aria-expanded").as_deref(),
        Some("false")
    );
    assert!(!marker(&ids[0]).has_attribute("data-fanned"));
    assert!(active().unwrap() == cluster);

    // Someone adds a discussion on the crowded spot: the same button counts it.
    server_send(
        &ws,
        r#"{"type":"new-image-chat","seq":2,"epoch":1,"broadcastId":"kxwqnjt9TB6aKwEjRWeJqg",
        "chat":{"id":"hxwqnjt9TB6aKwEjRWeJqg","anchor":[0.34,0.58],
        "comments":[{"author":{"id":"anon:bob","name":"Bob"},"text":"me too","createdAt":1}]}}"#,
    );
    let c = cluster.clone();
    wait_for("the cluster counts six", move || {
        c.get_attribute("data-count").as_deref() == Some("6")
    })
    .await;
    assert_eq!(count(".image-chat-cluster"), 1);
    assert!(
        q(&container, ".image-chat-cluster").unwrap() == cluster,
        "kept, not rebuilt"
    );
    assert_eq!(text(&cluster), "6");
    assert_eq!(
        cluster.get_attribute("aria-label").as_deref(),
        Some("6 discussions")
    );
    assert!(marker("hxwqnjt9TB6aKwEjRWeJqg").has_attribute("data-clustered"));

    // Twice as big: 32 px apart, nothing overlaps any more and the cluster goes.
    img.set_width(800);
    img.set_height(400);
    let c = container.clone();
    wait_for("regrouped after the resize", move || {
        q(&c, ".image-chat-cluster").is_none()
    })
    .await;
    // Each marker is on its own spot again, those created hidden in the group too.
    let r = img.get_bounding_client_rect();
    let spots = spots.iter().chain([&(0.34, 0.58)]);
    for (id, (x, y)) in ids
        .iter()
        .chain(["hxwqnjt9TB6aKwEjRWeJqg".to_string()].iter())
        .zip(spots)
    {
        let m = marker(id);
        assert!(!m.has_attribute("data-clustered"));
        let mr = m.get_bounding_client_rect();
        let (dx, dy) = (
            mr.left() + mr.width() / 2.0 - (r.left() + r.width() * x),
            mr.top() + mr.height() / 2.0 - (r.top() + r.height() * y),
        );
        assert!(
            dx.abs() < 1.0 && dy.abs() < 1.0,
            "{id} is {dx}, {dy} px off its spot"
        );
    }
    chat.destroy();
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

#[wasm_bindgen_test]
async fn live_events_regroup_markers_and_keep_the_clusters_in_order() {
    let (container, img) = fixture().await;
    // On the 400×200 image (markers 28 px): three lone markers, then two that overlap (the
    // second created hidden in their group).
    let id = |c: char| format!("{c}xwqnjt9TB6aKwEjRWeJqg");
    let snapshot: Vec<String> = [
        ('a', 0.1, 0.5),
        ('b', 0.5, 0.5),
        ('c', 0.9, 0.5),
        ('p', 0.3, 0.2),
        ('q', 0.32, 0.22),
    ]
    .iter()
    .map(|&(c, x, y)| snapshot_chat(&id(c), (x, y), &c.to_string()))
    .collect();
    let (chat, ws, root) = live_clustered(&img, &container, &snapshot).await;
    let marker = |c: char| {
        q(
            &container,
            &format!(
                ".image-chat-layer > .image-chat-marker[data-chat-id=\"{}\"]",
                id(c)
            ),
        )
        .unwrap()
    };
    let leaders = || -> Vec<String> {
        let all = root.query_selector_all(".image-chat-cluster").unwrap();
        (0..all.length())
            .filter_map(|i| all.item(i))
            .map(|n| {
                let e: Element = n.unchecked_into();
                e.get_attribute("data-cluster").unwrap_or_default()
            })
            .collect()
    };
    let clustered = |c: char| marker(c).has_attribute("data-clustered");
    assert_eq!(leaders(), [id('p')]);
    assert!(clustered('p') && clustered('q') && !clustered('b'));

    // Someone starts a discussion on b's spot: b, shown until now, joins a new group, whose
    // button goes before p's (buttons follow their leaders' creation order, as tab order does).
    server_send(
        &ws,
        &format!(
            r#"{{"type":"new-image-chat","seq":2,"epoch":1,"broadcastId":"kxwqnjt9TB6aKwEjRWeJqg",
            "chat":{{"id":"{}","anchor":[0.51,0.52],
            "comments":[{{"author":{{"id":"anon:bob","name":"Bob"}},"text":"d","createdAt":1}}]}}}}"#,
            id('d')
        ),
    );
    wait_for("b leads a group", || leaders().len() == 2).await;
    assert_eq!(leaders(), [id('b'), id('p')]);
    assert!(clustered('b') && clustered('d'), "both hidden in the group");
    assert!(clustered('p') && clustered('q') && !clustered('a') && !clustered('c'));

    // p goes: q, created hidden in the group, is alone and shown on its own spot; the others
    // keep their flags although every marker after p moved up one place.
    server_send(
        &ws,
        &format!(
            r#"{{"type":"deleted-image-chat","seq":3,"epoch":1,"broadcastId":"mxwqnjt9TB6aKwEjRWeJqg","chatId":"{}"}}"#,
            id('p')
        ),
    );
    wait_for("p's group is gone", || leaders().len() == 1).await;
    assert_eq!(leaders(), [id('b')]);
    assert!(!clustered('q') && clustered('b') && clustered('d'));
    assert!(!clustered('a') && !clustered('c'));
    let r = img.get_bounding_client_rect();
    let qr = marker('q').get_bounding_client_rect();
    let (dx, dy) = (
        qr.left() + qr.width() / 2.0 - (r.left() + r.width() * 0.32),
        qr.top() + qr.height() / 2.0 - (r.top() + r.height() * 0.22),
    );
    assert!(
        dx.abs() < 1.0 && dy.abs() < 1.0,
        "q is {dx}, {dy} px off its spot"
    );

    // d goes too: b is shown again and no group is left.
    server_send(
        &ws,
        &format!(
            r#"{{"type":"deleted-image-chat","seq":4,"epoch":1,"broadcastId":"nxwqnjt9TB6aKwEjRWeJqg","chatId":"{}"}}"#,
            id('d')
        ),
    );
    wait_for("no group left", || leaders().is_empty()).await;
    for c in "abcq".chars() {
        assert!(!clustered(c), "{c}");
        assert_ne!(computed(&marker(c), "display"), "none", "{c}");
    }
    chat.destroy();
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

#[wasm_bindgen_test]
async fn the_bar_toggle_hides_and_shows_the_markers() {
    let (container, img) = fixture().await;
    let chats = format!(
        r#"{{"id":"{CHAT_A}","anchor":[0.5,0.5],"comments":[{{"author":{{"id":"anon:eve","name":"Eve"}},"text":"x","createdAt":1}}]}}"#
    );
    let (chat, _ws, root) = live_with(
        &img,
        &container,
        r#"{"server":"ws://fake.test/ws","locale":"fr","imageId":"cat"}"#,
        &chats,
    )
    .await;
    let toggle = q(&container, ".image-chat-bar button.image-chat-toggle").expect("toggle");
    assert_eq!(
        toggle.get_attribute("aria-pressed").as_deref(),
        Some("true")
    );
    assert_eq!(
        toggle.get_attribute("aria-label").as_deref(),
        Some(Locale::Fr.strings().markers_toggle)
    );
    let marker = q(&container, ".image-chat-marker[data-chat-id]").unwrap();
    assert_ne!(computed(&marker, "display"), "none");
    click(&toggle);
    assert!(root.has_attribute("data-markers-hidden"));
    assert_eq!(
        toggle.get_attribute("aria-pressed").as_deref(),
        Some("false")
    );
    assert_eq!(
        computed(&q(&container, ".image-chat-layer").unwrap(), "display"),
        "none"
    );
    assert_eq!(
        text(&q(&container, ".image-chat-sr").unwrap()),
        Locale::Fr.strings().announce_markers_hidden
    );
    // Clicking the toggle opened no draft.
    assert!(q(&container, ".image-chat-thread").is_none());
    click(&toggle);
    assert!(!root.has_attribute("data-markers-hidden"));
    assert_eq!(
        toggle.get_attribute("aria-pressed").as_deref(),
        Some("true")
    );
    assert_ne!(computed(&marker, "display"), "none");
    assert_eq!(
        text(&q(&container, ".image-chat-sr").unwrap()),
        Locale::Fr.strings().announce_markers_shown
    );
    chat.destroy();
    js("window.WebSocket = window.__icRealWebSocket;");
    container.remove();
}

// -------------------------------------------------------------------------------------------
// Managing discussions: resolve / reopen and the filter, deleting a reply, moving a marker
// with the keyboard, avatars, links and `open()`, `update()`, page events
// -------------------------------------------------------------------------------------------

/// Sends the frames of an op the fake server accepts: its ack, then its event.
fn accept(ws: &JsValue, seq: u64, frame: &serde_json::Value, event: &str) {
    let bid = frame["broadcastId"].as_str().unwrap();
    server_send(
        ws,
        &format!(r#"{{"type":"ack","broadcastId":"{bid}","seq":{seq}}}"#),
    );
    server_send(ws, &event.replace("$BID", bid));
}

fn last_sent(ws: &JsValue, kind: &str) -> serde_json::Value {
    sent(ws)
        .into_iter()
        .rev()
        .find(|f| f["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} sent"))
}

#[wasm_bindgen_test]
async fn resolving_mutes_the_marker_collapses_the_thread_and_the_filter_hides_it() {
    let (container, img, chat, ws) = live_with_one_chat("anon:me").await;
    let counts = Rc::new(RefCell::new(Vec::<f64>::new()));
    let seen = counts.clone();
    let on_count =
        Closure::<dyn FnMut(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
            let resolved = Reflect::get(&e.detail(), &"resolved".into()).unwrap();
            seen.borrow_mut().push(resolved.as_f64().unwrap());
        });
    img.add_event_listener_with_callback("image-chat:count", on_count.as_ref().unchecked_ref())
        .unwrap();
    server_send(
        &ws,
        &format!(
            r#"{{"type":"image-chat-updated","seq":2,"epoch":1,"broadcastId":"AAAAAAAAQAKAAAAAAAAAAA",
            "chatId":"{CHAT_A}","change":{{"kind":"comment-added","comment":{{"id":"AAAAAAAAQAGAAAAAAAAAAA",
            "author":{{"id":"anon:bob","name":"Bob"}},"text":"a reply","createdAt":1700000000001}}}}}}"#
        ),
    );
    let thread = open_thread_a(&container);
    let resolve = q(&thread, "[data-action=resolve]").expect("the author may resolve");
    assert_eq!(text(&resolve), EN.resolve);
    click(&resolve);
    let frame = last_sent(&ws, "resolve-chat");
    assert_eq!(frame["resolved"], true);
    let marker = q(&container, "button.image-chat-marker[data-chat-id]").unwrap();
    assert!(marker.has_attribute("data-resolved"), "muted at once");
    accept(
        &ws,
        3,
        &frame,
        &format!(
            r#"{{"type":"image-chat-updated","seq":3,"epoch":1,"broadcastId":"$BID","chatId":"{CHAT_A}",
            "change":{{"kind":"resolved","resolved":true}}}}"#
        ),
    );
    let thread = q(&container, ".image-chat-thread[data-chat-id]").unwrap();
    assert!(
        thread.has_attribute("data-collapsed"),
        "resolved: collapsed"
    );
    assert!(text(&thread).contains(EN.resolved));
    assert!(
        marker
            .get_attribute("aria-label")
            .unwrap()
            .contains("(resolved)")
    );
    let replies = thread.query_selector_all(".image-chat-comment").unwrap();
    let second: Element = replies.item(1).unwrap().unchecked_into();
    assert_eq!(
        computed(&second, "display"),
        "none",
        "the reply is collapsed"
    );
    click(&q(&thread, "[data-action=show-thread]").unwrap());
    assert_ne!(computed(&second, "display"), "none", "expanded on request");
    assert_eq!(
        text(&q(&thread, "[data-action=resolve]").unwrap()),
        EN.reopen
    );
    // The bar's filter hides resolved discussions, and says so.
    let filter = q(&container, "button.image-chat-filter").unwrap();
    click(&q(&thread, "[data-action=close]").unwrap());
    click(&filter);
    assert_eq!(
        filter.get_attribute("aria-pressed").as_deref(),
        Some("false")
    );
    assert_eq!(computed(&marker, "display"), "none");
    assert_eq!(
        text(&q(&container, ".image-chat-sr").unwrap()),
        EN.announce_resolved_hidden
    );
    click(&filter);
    assert_ne!(computed(&marker, "display"), "none");
    assert_eq!(
        counts.borrow().last(),
        Some(&1.0),
        "count event: one resolved"
    );
    drop(on_count);
    finish(chat, container);
}

#[wasm_bindgen_test]
async fn deleting_a_reply_asks_once_then_removes_it() {
    let (container, _img, chat, ws) = live_with_one_chat("anon:bob").await;
    server_send(
        &ws,
        &format!(
            r#"{{"type":"image-chat-updated","seq":2,"epoch":1,"broadcastId":"AAAAAAAAQAKAAAAAAAAAAA",
            "chatId":"{CHAT_A}","change":{{"kind":"comment-added","comment":{{"id":"AAAAAAAAQAGAAAAAAAAAAA",
            "author":{{"id":"anon:me","name":"Me"}},"text":"my reply","createdAt":1700000000001}}}}}}"#
        ),
    );
    let thread = open_thread_a(&container);
    let comments = thread.query_selector_all(".image-chat-comment").unwrap();
    let first: Element = comments.item(0).unwrap().unchecked_into();
    assert!(
        q(&first, "[data-action=delete-comment]").is_none(),
        "someone else's opening comment: no delete"
    );
    assert!(q(&thread, "[data-action=resolve]").is_some_and(|b| b.has_attribute("hidden")));
    let delete = q(
        &thread,
        "[data-comment-id=AAAAAAAAQAGAAAAAAAAAAA] [data-action=delete-comment]",
    )
    .expect("own reply: delete");
    click(&delete);
    assert_eq!(text(&delete), EN.delete_confirm);
    assert!(!sent(&ws).iter().any(|f| f["type"] == "delete-comment"));
    click(&delete);
    let frame = last_sent(&ws, "delete-comment");
    assert_eq!(frame["commentId"], "AAAAAAAAQAGAAAAAAAAAAA");
    assert!(
        q(&thread, "[data-comment-id=AAAAAAAAQAGAAAAAAAAAAA]").is_none(),
        "gone at once"
    );
    accept(
        &ws,
        3,
        &frame,
        &format!(
            r#"{{"type":"image-chat-updated","seq":3,"epoch":1,"broadcastId":"$BID","chatId":"{CHAT_A}",
            "change":{{"kind":"comment-deleted","commentId":"AAAAAAAAQAGAAAAAAAAAAA"}}}}"#
        ),
    );
    let thread = q(&container, ".image-chat-thread[data-chat-id]").unwrap();
    assert_eq!(
        thread
            .query_selector_all(".image-chat-comment")
            .unwrap()
            .length(),
        1
    );
    finish(chat, container);
}

#[wasm_bindgen_test]
async fn a_marker_moves_with_arrow_keys_and_enter_and_escape_cancels() {
    let (container, _img, chat, ws) = live_with_one_chat("anon:me").await;
    let marker = q(&container, "button.image-chat-marker[data-chat-id]").unwrap();
    assert!(marker.has_attribute("data-movable"));
    marker.dyn_ref::<HtmlElement>().unwrap().focus().unwrap();
    key(&marker, "ArrowRight");
    assert_eq!(
        text(&q(&container, ".image-chat-sr").unwrap()),
        EN.move_hint
    );
    assert!(marker.get_attribute("style").unwrap().contains("left:27%"));
    key(&marker, "Escape");
    assert!(
        marker.get_attribute("style").unwrap().contains("left:25%"),
        "cancelled"
    );
    assert!(!sent(&ws).iter().any(|f| f["type"] == "move-chat"));
    key(&marker, "ArrowDown");
    key(&marker, "ArrowDown");
    key(&marker, "Enter");
    let frame = last_sent(&ws, "move-chat");
    assert_eq!(frame["anchor"], serde_json::json!([0.25, 0.54]));
    assert!(
        q(&container, ".image-chat-thread").is_none(),
        "Enter put it down, it did not open the thread"
    );
    let marker = q(&container, "button.image-chat-marker[data-chat-id]").unwrap();
    assert!(marker.get_attribute("style").unwrap().contains("top:54%"));
    assert!(marker.has_attribute("data-pending"));
    finish(chat, container);
}

#[wasm_bindgen_test]
async fn avatars_are_https_only_with_an_initial_otherwise() {
    js(FAKE_WS);
    let (container, img) = fixture().await;
    let chat = mount(
        &img,
        r#"{"server":"ws://fake.test/ws","locale":"en","imageId":"cat"}"#,
    );
    wait_for("socket opened", || sockets() == 1).await;
    let ws = socket(0);
    server_call(&ws, "serverOpen", JsValue::UNDEFINED);
    server_send(
        &ws,
        &format!(
            r#"{{"type":"welcome","you":{{"id":"anon:me","name":"Guest"}},
            "position":{{"epoch":1,"seq":1}},"recovered":false,"online":1,
            "snapshot":{{"chats":[{{"id":"{CHAT_A}","anchor":[0.25,0.5],
            "comments":[{{"author":{{"id":"sso:1","name":"Grace","avatarUrl":"https://example.com/g.png","signedIn":true}},
            "text":"first","createdAt":1700000000000}},
            {{"id":"AAAAAAAAQAGAAAAAAAAAAA","author":{{"id":"sso:2","name":"ada","avatarUrl":"javascript:alert(1)","signedIn":true}},
            "text":"second","createdAt":1700000000001}}]}}]}}}}"#
        ),
    );
    let root = root_of(&container);
    wait_for("live", move || {
        root.get_attribute("data-state").as_deref() == Some("live")
    })
    .await;
    let marker = q(&container, "button.image-chat-marker[data-chat-id]").unwrap();
    assert!(
        marker
            .get_attribute("aria-label")
            .unwrap()
            .starts_with("Discussion by Grace"),
        "the author's name is in the marker's accessible name"
    );
    let thread = open_thread_a(&container);
    let imgs = thread.query_selector_all("img.image-chat-avatar").unwrap();
    assert_eq!(imgs.length(), 1);
    let avatar: Element = imgs.item(0).unwrap().unchecked_into();
    assert_eq!(
        avatar.get_attribute("src").as_deref(),
        Some("https://example.com/g.png")
    );
    assert_eq!(avatar.get_attribute("alt").as_deref(), Some(""));
    let initial = q(&thread, "span.image-chat-avatar").expect("fallback initial");
    assert_eq!(text(&initial), "a");
    assert_eq!(computed(&initial, "text-transform"), "uppercase");
    finish(chat, container);
}

#[wasm_bindgen_test]
async fn open_update_and_page_events() {
    let (container, img, chat, ws) = live_with_one_chat("anon:me").await;
    let opened = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = opened.clone();
    let on_open =
        Closure::<dyn FnMut(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
            let id = Reflect::get(&e.detail(), &"chatId".into()).unwrap();
            seen.borrow_mut().push(id.as_string().unwrap());
        });
    img.add_event_listener_with_callback("image-chat:open", on_open.as_ref().unchecked_ref())
        .unwrap();
    assert!(
        !chat.open("AAAAAAAAQAGAAAAAAAAAAA".into()),
        "not on this image"
    );
    assert!(chat.open(CHAT_A.into()));
    assert!(q(&container, ".image-chat-thread[data-chat-id]").is_some());
    assert_eq!(*opened.borrow(), vec![CHAT_A.to_owned()]);
    // Language and theme change in place; the thread closes, the markers stay.
    chat.update(options(r#"{"locale":"fr","theme":"dark"}"#).unchecked_into())
        .unwrap();
    let root = root_of(&container);
    assert_eq!(root.get_attribute("lang").as_deref(), Some("fr"));
    assert_eq!(root.get_attribute("data-theme").as_deref(), Some("dark"));
    assert_eq!(
        text(&q(&container, ".image-chat-status").unwrap()),
        Locale::Fr.strings().live
    );
    let marker = q(&container, "button.image-chat-marker[data-chat-id]").unwrap();
    assert!(
        marker
            .get_attribute("aria-label")
            .unwrap()
            .starts_with("Discussion de")
    );
    // Read-only from the page: no drafts, no controls.
    chat.update(options(r#"{"readOnly":true}"#).unchecked_into())
        .unwrap();
    assert!(root.has_attribute("data-read-only"));
    // What names another conversation needs a remount; nothing changes then.
    assert!(
        chat.update(options(r#"{"tenant":"other"}"#).unchecked_into())
            .is_err()
    );
    assert!(
        chat.update(options(r#"{"theme":"neon"}"#).unchecked_into())
            .is_err()
    );
    assert_eq!(root.get_attribute("data-theme").as_deref(), Some("dark"));
    // New auth reconnects at once, with it.
    chat.update(
        options(r#"{"readOnly":false,"auth":{"type":"anonymous","name":"Zoé"}}"#).unchecked_into(),
    )
    .unwrap();
    wait_for("a new socket", || sockets() == 2).await;
    let ws2 = socket(1);
    server_call(&ws2, "serverOpen", JsValue::UNDEFINED);
    let hello = sent(&ws2).into_iter().next().unwrap();
    assert_eq!(hello["auth"]["name"], "Zoé");
    drop(ws);
    drop(on_open);
    finish(chat, container);
}

#[wasm_bindgen_test]
async fn an_area_is_marked_out_from_the_keyboard() {
    let (container, _img, chat, ws) = live_with_one_chat("anon:me").await;
    let root = root_of(&container);
    root.dyn_ref::<HtmlElement>().unwrap().focus().unwrap();
    assert!(
        root.get_attribute("aria-label")
            .unwrap()
            .contains("Shift+Enter")
    );
    let shift_enter = web_sys::KeyboardEventInit::new();
    shift_enter.set_key("Enter");
    shift_enter.set_shift_key(true);
    shift_enter.set_bubbles(true);
    shift_enter.set_cancelable(true);
    let ev =
        web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &shift_enter).unwrap();
    root.dispatch_event(&ev).unwrap();
    assert_eq!(
        text(&q(&container, ".image-chat-sr").unwrap()),
        EN.region_hint
    );
    // Escape gives it up; Shift+Enter again, two steps right and three down, Enter.
    key(&root, "Escape");
    assert!(q(&container, ".image-chat-region[data-draft]").is_none());
    root.dispatch_event(&ev).unwrap();
    for k in [
        "ArrowRight",
        "ArrowRight",
        "ArrowDown",
        "ArrowDown",
        "ArrowDown",
    ] {
        key(&root, k);
    }
    let drawn = q(&container, ".image-chat-region[data-draft]").expect("the area is drawn");
    assert_eq!(
        drawn.get_attribute("style").as_deref(),
        Some("left:50%;top:50%;width:4%;height:6%")
    );
    key(&root, "Enter");
    let draft = q(&container, ".image-chat-thread[data-draft]").expect("a draft about it");
    let textarea: HtmlTextAreaElement = q(&draft, "textarea").unwrap().unchecked_into();
    textarea.set_value("this corner");
    click(&q(&draft, "[data-action=post]").unwrap());
    let frame = last_sent(&ws, "create-chat");
    assert_eq!(
        frame["anchor"],
        serde_json::json!({"type": "region", "x": 0.5, "y": 0.5, "w": 0.04, "h": 0.06})
    );
    assert!(q(&container, ".image-chat-region[data-chat-id]").is_some());
    finish(chat, container);
}

/// Dragging a marker by touch or mouse goes through pointer events: a press on a movable
/// marker, moves past a few pixels, a release; the click that ends it does not open the thread.
#[wasm_bindgen_test]
async fn a_marker_is_dragged_with_pointer_events_touch_included() {
    let (container, img, chat, ws) = live_with_one_chat("anon:me").await;
    let marker = q(&container, "button.image-chat-marker[data-chat-id]").unwrap();
    marker.set_id("drag-marker");
    assert_eq!(
        computed(&marker, "touch-action"),
        "none",
        "no scrolling under a finger"
    );
    let m = marker.get_bounding_client_rect();
    let p = img.get_bounding_client_rect();
    let (x0, y0) = (m.left() + m.width() / 2.0, m.top() + m.height() / 2.0);
    let (x1, y1) = (p.left() + 0.75 * p.width(), p.top() + 0.25 * p.height());
    js(&format!(
        r#"const m = document.getElementById('drag-marker');
        const fire = (type, x, y) => m.dispatchEvent(new PointerEvent(type, {{
            bubbles: true, cancelable: true, pointerId: 7, pointerType: 'touch', isPrimary: true,
            button: type === 'pointermove' ? -1 : 0, clientX: x, clientY: y }}));
        fire('pointerdown', {x0}, {y0});
        fire('pointermove', {x0} + 2, {y0});
        fire('pointermove', ({x0} + {x1}) / 2, ({y0} + {y1}) / 2);
        fire('pointermove', {x1}, {y1});
        fire('pointerup', {x1}, {y1});
        m.dispatchEvent(new MouseEvent('click', {{ bubbles: true, clientX: {x1}, clientY: {y1} }}));
        return null;"#
    ));
    let frame = last_sent(&ws, "move-chat");
    assert_eq!(frame["anchor"], serde_json::json!([0.75, 0.25]));
    assert!(
        q(&container, ".image-chat-thread").is_none(),
        "the click ending the drag opened nothing"
    );
    let marker = q(&container, "button.image-chat-marker[data-chat-id]").unwrap();
    let style = marker.get_attribute("style").unwrap();
    assert!(
        style.contains("left:75%") && style.contains("top:25%"),
        "{style}"
    );
    assert!(!marker.has_attribute("data-moving"));
    finish(chat, container);
}
