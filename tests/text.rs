//! Browser tests of text mode (`wasm-pack test --headless --chrome -- --features text --test
//! text`, run by scripts/test-wasm.sh): the DOM glue (flattened text ↔ DOM ranges in UTF-16,
//! highlights, the wrapping fallback, hit tests) and text mode mounted on an article against a
//! scripted fake server (the `hello` naming the page, highlights from the snapshot, re-anchoring
//! after the page's text changes, the prompt and a new discussion's frame, `destroy()`).
//! Every wait is a bounded poll on a DOM condition.
#![cfg(all(target_arch = "wasm32", feature = "text"))]
#![allow(clippy::unwrap_used, missing_docs)]

use image_chat::ImageChat;
use image_chat::text::dom::{self, Flat};
use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use web_sys::{Element, Range};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{doc, wait_for};

fn js(code: &str) -> JsValue {
    Function::new_no_args(code).call0(&JsValue::NULL).unwrap()
}

/// A fresh `<article>` holding `html` (the test's own markup), first in `<body>`.
fn article(html: &str) -> Element {
    let a = doc().create_element("article").unwrap();
    a.set_attribute("style", "width:420px;font:16px/1.5 sans-serif")
        .unwrap();
    a.set_inner_html(html);
    doc().body().unwrap().prepend_with_node_1(&a).unwrap();
    a
}

fn by_id(id: &str) -> Element {
    doc().get_element_by_id(id).unwrap()
}

/// A range over `text` inside element `id` (in the first of its child text nodes holding it).
fn range_over(id: &str, text: &str) -> Range {
    let el = by_id(id);
    let children = el.child_nodes();
    let node = (0..children.length())
        .filter_map(|i| children.item(i))
        .find(|n| n.node_type() == 3 && n.text_content().unwrap().contains(text))
        .unwrap();
    let data = node.text_content().unwrap();
    let at = data.encode_utf16().count() - data[data.find(text).unwrap()..].encode_utf16().count();
    let r = doc().create_range().unwrap();
    r.set_start(&node, at as u32).unwrap();
    r.set_end(&node, (at + text.encode_utf16().count()) as u32)
        .unwrap();
    r
}

fn range_text(r: &Range) -> String {
    r.to_string().as_string().unwrap()
}

#[wasm_bindgen_test]
fn flattening_maps_ranges_and_offsets_both_ways_in_utf16() {
    let a = article(
        "<div data-image-chat-own>bar text</div><h2 id=t1>Title</h2>\
         <p id=t2>One <b id=t3>two</b> three 😀 four</p><script>var x = 1;</script>\
         <p id=t4>five</p>",
    );
    let flat = Flat::read(&a);
    // The widget's own elements and script text are not part of the text.
    assert_eq!(flat.content(), "TitleOne two three 😀 fourfive");
    // "two three" spans an element boundary; offsets count UTF-16 units.
    let r = doc().create_range().unwrap();
    r.set_start(&by_id("t3").first_child().unwrap(), 0).unwrap();
    let p_text = by_id("t3").next_sibling().unwrap();
    r.set_end(&p_text, 6).unwrap();
    assert_eq!(range_text(&r), "two three");
    let (s, e) = flat.offsets_of(&r).unwrap();
    assert_eq!((s, e), (9, 18));
    assert_eq!(range_text(&flat.range_of(s, e).unwrap()), "two three");
    // The emoji is two units: "four" starts 3 units after it.
    let four = range_over("t2", "four");
    let (s, e) = flat.offsets_of(&four).unwrap();
    assert_eq!((s, e), (22, 26));
    assert_eq!(range_text(&flat.range_of(19, 21).unwrap()), "😀");
    // Element boundaries: from the start of <h2> to after <b>.
    let r = doc().create_range().unwrap();
    r.set_start(&by_id("t1"), 0).unwrap();
    r.set_end_after(&by_id("t3")).unwrap();
    assert_eq!(flat.offsets_of(&r), Some((0, 12)));
    // A range reaching outside the container is clipped to it; one outside it gives nothing.
    let outside = doc().create_element("p").unwrap();
    outside.set_text_content(Some("elsewhere"));
    doc().body().unwrap().append_child(&outside).unwrap();
    let r = doc().create_range().unwrap();
    r.set_start(&by_id("t4").first_child().unwrap(), 2).unwrap();
    r.set_end(&outside.first_child().unwrap(), 4).unwrap();
    assert_eq!(flat.offsets_of(&r), Some((28, 30)));
    let r = doc().create_range().unwrap();
    r.select_node_contents(&outside).unwrap();
    assert_eq!(flat.offsets_of(&r), None);
    // Past the end of the text there is no range.
    assert!(flat.range_of(28, 31).is_none());
    outside.remove();
    a.remove();
}

#[wasm_bindgen_test]
fn highlights_are_shared_by_name_between_widgets() {
    assert!(dom::has_highlight_api(), "Chromium has the Highlight API");
    let a = article("<p id=h1>alpha beta gamma</p>");
    let (one, two): (JsValue, JsValue) =
        (js_sys::Object::new().into(), js_sys::Object::new().into());
    let size = || {
        js("return CSS.highlights.get('image-chat-test')?.size ?? -1")
            .as_f64()
            .unwrap()
    };
    dom::paint("image-chat-test", &one, &[range_over("h1", "alpha")]);
    assert_eq!(size(), 1.0);
    dom::paint(
        "image-chat-test",
        &two,
        &[range_over("h1", "beta"), range_over("h1", "gamma")],
    );
    assert_eq!(size(), 3.0);
    dom::paint("image-chat-test", &one, &[]);
    assert_eq!(size(), 2.0);
    dom::paint("image-chat-test", &two, &[]);
    assert_eq!(size(), -1.0, "the name is removed with its last range");
    a.remove();
}

#[wasm_bindgen_test]
fn the_fallback_wraps_and_unwraps_without_changing_the_text() {
    let a = article("<p id=w1>one two</p><p id=w2>three four</p>");
    let before = a.text_content().unwrap();
    let flat = Flat::read(&a);
    let r = flat.range_of(4, 12).unwrap();
    assert_eq!(range_text(&r), "twothree");
    let marks = dom::wrap(&r, "chat-1", "image-chat");
    assert_eq!(marks.length(), 2);
    let found = a
        .query_selector_all("mark.image-chat-mark[data-chat-id=chat-1]")
        .unwrap();
    assert_eq!(found.length(), 2);
    assert_eq!(a.text_content().unwrap(), before);
    assert_eq!(Flat::read(&a).content(), "one twothree four");
    dom::unwrap(&marks);
    assert_eq!(a.query_selector_all("mark").unwrap().length(), 0);
    assert_eq!(a.text_content().unwrap(), before);
    // The text nodes split for the marks are joined again.
    assert_eq!(by_id("w1").child_nodes().length(), 1);
    assert_eq!(by_id("w2").child_nodes().length(), 1);
    a.remove();
}

#[wasm_bindgen_test]
fn the_offset_under_a_point_and_the_line_boxes_of_a_range() {
    let a = article("<p id=o1>The boat left the pier after seven.</p>");
    let flat = Flat::read(&a);
    let pier = range_over("o1", "pier");
    let b = pier.get_bounding_client_rect();
    let (x, y) = (b.left() + b.width() / 2.0, b.top() + b.height() / 2.0);
    let at = flat.offset_under(x, y).unwrap();
    assert!((18..=22).contains(&at), "offset {at}");
    assert!(dom::contains_point(&pier, x, y));
    assert!(!dom::contains_point(&pier, b.right() + 40.0, y));
    let (left, right, top, bottom) = dom::last_line_of(&pier).unwrap();
    assert!((left - b.left()).abs() < 0.5 && (right - b.right()).abs() < 0.5);
    assert!(top < bottom);
    a.remove();
}

const FAKE_WS: &str = r#"
window.__icSockets = [];
window.WebSocket = class FakeWebSocket extends EventTarget {
  constructor(url) { super(); this.url = url; this.readyState = 0; this.sent = []; window.__icSockets.push(this); }
  send(text) { if (this.readyState !== 1) throw new Error('not open'); this.sent.push(text); }
  close(code) { this.readyState = 3; this.closedWith = code; }
  serverOpen() { this.readyState = 1; this.onopen && this.onopen(new Event('open')); }
  serverSend(obj) { this.onmessage && this.onmessage(new MessageEvent('message', { data: JSON.stringify(obj) })); }
};
window.WebSocket.CONNECTING = 0; window.WebSocket.OPEN = 1; window.WebSocket.CLOSING = 2; window.WebSocket.CLOSED = 3;
"#;

fn sent(ws: &JsValue) -> Vec<serde_json::Value> {
    let arr: js_sys::Array = Reflect::get(ws, &"sent".into()).unwrap().unchecked_into();
    arr.iter()
        .map(|v| serde_json::from_str(&v.as_string().unwrap()).unwrap())
        .collect()
}

fn call(ws: &JsValue, method: &str, arg: JsValue) {
    let f: Function = Reflect::get(ws, &method.into()).unwrap().unchecked_into();
    f.call1(ws, &arg).unwrap();
}

fn q(selector: &str) -> Option<Element> {
    doc().query_selector(selector).unwrap()
}

fn text_of(selector: &str) -> String {
    q(selector)
        .and_then(|e| e.text_content())
        .unwrap_or_default()
}

/// The texts of the ranges under highlight `name`, sorted.
fn highlighted(name: &str) -> Vec<String> {
    let list = js(&format!(
        "return [...(CSS.highlights.get('{name}') ?? [])].map((r) => r.toString()).sort()"
    ));
    js_sys::Array::from(&list)
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect()
}

const CHAT: &str = "bxwqnjt9TB6aKwEjRWeJqg";

#[wasm_bindgen_test]
async fn text_mode_with_a_scripted_server() {
    js(FAKE_WS);
    let a = article(
        "<p id=s1>The boat left the pier a little after seven.</p>\
         <p id=s2>The water turned the colour of old brass.</p>",
    );
    a.set_attribute("data-collab-chat", "chapter-x").unwrap();
    let opts =
        js_sys::JSON::parse(r#"{"server":"ws://fake.test/ws","locale":"en","pageId":"page-1"}"#)
            .unwrap();
    let target: JsValue = a.clone().into();
    let chat = ImageChat::mount_text(target.unchecked_into(), Some(opts.unchecked_into())).unwrap();
    wait_for("socket", || {
        js("return window.__icSockets.length").as_f64() == Some(1.0)
    })
    .await;
    let ws = js("return window.__icSockets[0]");
    call(&ws, "serverOpen", JsValue::UNDEFINED);
    let hello = sent(&ws).into_iter().next().expect("hello");
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["pageId"], "page-1");
    assert!(hello.get("imageId").is_none());
    // The top bar is first in the article; the hint shows while there is no discussion.
    assert_eq!(
        a.first_element_child().unwrap().class_name(),
        "image-chat-topbar"
    );

    // The snapshot's discussion is about "old brass" (text offsets of the flattened text).
    let full =
        "The boat left the pier a little after seven.The water turned the colour of old brass.";
    let start = full.find("old brass").unwrap();
    let welcome = format!(
        r#"{{"type":"welcome","you":{{"id":"anon:me","name":"Guest"}},"token":"t",
        "position":{{"epoch":1,"seq":1}},"recovered":false,"online":2,
        "snapshot":{{"chats":[{{"id":"{CHAT}","anchor":{{"type":"text","exact":"old brass",
        "prefix":"{prefix}","suffix":".","start":{start},"end":{end}}},
        "comments":[{{"author":{{"id":"anon:eve","name":"Eve"}},"text":"<b>brass?</b>","createdAt":1}}]}}]}}}}"#,
        prefix = &full[start - 14..start],
        end = start + 9,
    );
    call(&ws, "serverSend", js_sys::JSON::parse(&welcome).unwrap());
    wait_for("live", || {
        q(".image-chat-topbar")
            .and_then(|b| b.get_attribute("data-state"))
            .as_deref()
            == Some("live")
    })
    .await;
    assert_eq!(text_of(".image-chat-count"), "1 discussion");
    assert_eq!(text_of(".image-chat-online"), "2 people here");
    assert_eq!(highlighted("image-chat"), vec!["old brass"]);
    let entry = q(".image-chat-list button[data-chat-id]").unwrap();
    assert_eq!(entry.text_content().unwrap(), "“old brass” · 1 comment");

    // A paragraph inserted before it: found again, in its own paragraph.
    let extra = doc().create_element("p").unwrap();
    extra.set_text_content(Some("A new first paragraph with old brass in it too."));
    by_id("s1").before_with_node_1(&extra).unwrap();
    wait_for("re-anchored", || {
        js("const h = CSS.highlights.get('image-chat'); \
            return !!h && [...h].some((r) => document.getElementById('s2').contains(r.startContainer))")
        .as_bool()
            == Some(true)
    })
    .await;
    assert_eq!(highlighted("image-chat"), vec!["old brass"]);

    // The passage deleted: listed as on text that changed, never dropped; it still opens.
    by_id("s2").remove();
    wait_for("listed as changed", || {
        q(".image-chat-list ol[data-changed] button").is_some()
    })
    .await;
    assert!(highlighted("image-chat").is_empty());
    assert_eq!(text_of(".image-chat-count"), "1 discussion");
    let changed: web_sys::HtmlElement = q(".image-chat-list ol[data-changed] button")
        .unwrap()
        .unchecked_into();
    changed.click();
    wait_for("thread open", || {
        q(".image-chat-thread[data-chat-id]").is_some()
    })
    .await;
    assert_eq!(
        text_of(".image-chat-thread .image-chat-text"),
        "<b>brass?</b>"
    );
    assert!(q(".image-chat-thread .image-chat-text b").is_none());

    // A selection offers the prompt; discussing it sends a text anchor.
    dom::set_selection(&doc(), Some(&range_over("s1", "the pier")));
    wait_for("prompt", || {
        q(".image-chat-prompt").is_some_and(|p| !p.has_attribute("hidden"))
    })
    .await;
    let discuss: web_sys::HtmlElement = q(".image-chat-prompt [data-text-action=discuss]")
        .unwrap()
        .unchecked_into();
    discuss.click();
    let draft: web_sys::HtmlTextAreaElement = q(".image-chat-thread[data-draft] textarea")
        .unwrap()
        .unchecked_into();
    assert_eq!(highlighted("image-chat-open"), vec!["the pier"]);
    draft.set_value("Which pier?");
    let post: web_sys::HtmlElement = q(".image-chat-thread[data-draft] [data-action=post]")
        .unwrap()
        .unchecked_into();
    post.click();
    let create = sent(&ws)
        .into_iter()
        .find(|f| f["type"] == "create-chat")
        .expect("create-chat sent");
    assert_eq!(create["anchor"]["type"], "text");
    assert_eq!(create["anchor"]["exact"], "the pier");
    assert_eq!(create["text"], "Which pier?");
    wait_for("two discussions", || {
        text_of(".image-chat-count") == "2 discussions"
    })
    .await;

    // destroy() leaves nothing behind: no bar, no highlight, no overlay.
    chat.destroy();
    assert!(q(".image-chat-topbar").is_none());
    assert!(q(".image-chat").is_none());
    for name in ["image-chat", "image-chat-open", "image-chat-resolved"] {
        assert!(highlighted(name).is_empty(), "{name}");
    }
    assert_eq!(
        Reflect::get(&ws, &"closedWith".into()).unwrap().as_f64(),
        Some(1000.0)
    );
    a.remove();
}
