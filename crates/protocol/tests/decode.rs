//! Validation at the codec level: every frame goes through `decode_client_frame`, exactly as the
//! server receives it, and every refusal is checked for its `ErrorCode` and for carrying the op's
//! `broadcastId` exactly when the frame held a well-formed one.
//!
//! Covered: each limit on both sides (at the limit accepted, one over refused) for comment text
//! (counted in characters, multibyte included), display names, tenant and image ids and the frame
//! size; blank text and control characters; coordinates (0 and 1 accepted, tiny negatives, values
//! above 1, out-of-range numbers); the UUID format of every id field of every op; malformed and
//! non-object JSON, missing and unknown `type`, unknown fields (top level and nested), deep
//! nesting, invalid numbers; anchor canonicalization to 5 decimals.

use image_chat_protocol::limits::{
    MAX_CLIENT_FRAME_BYTES, MAX_CONTEXT_UNITS, MAX_EXACT_UNITS, MAX_IMAGE_ID_BYTES, MAX_NAME_CHARS,
    MAX_TENANT_ID_BYTES, MAX_TEXT_CHARS,
};
use image_chat_protocol::{
    Anchor, Auth, ClientMessage, ErrorCode, Subject, SubjectKind, decode_client_frame,
};
use serde_json::{Value, json};

const BID: &str = "W-jTnjuUR0Ody2duZaqEnQ";
const CHAT: &str = "OPfIayT_TXG3Z9MGL1orcQ";
const COMMENT: &str = "rjBcnepNTqS9oC1YYqjf_Q";

// ---------------------------------------------------------------------------------------------
// Frame builders and assertions.
// ---------------------------------------------------------------------------------------------

fn create(text: &str) -> Value {
    json!({
        "type": "create-chat",
        "broadcastId": BID,
        "chatId": CHAT,
        "anchor": [0.25, 0.75],
        "text": text,
    })
}

fn add(text: &str) -> Value {
    json!({"type": "add-comment", "broadcastId": BID, "chatId": CHAT, "commentId": COMMENT, "text": text})
}

fn edit(text: &str) -> Value {
    json!({"type": "edit-comment", "broadcastId": BID, "chatId": CHAT, "commentId": COMMENT, "text": text})
}

fn delete() -> Value {
    json!({"type": "delete-chat", "broadcastId": BID, "chatId": CHAT})
}

/// The three ops that carry text, with `text`.
fn text_ops(text: &str) -> [Value; 3] {
    [create(text), add(text), edit(text)]
}

fn delete_comment() -> Value {
    json!({"type": "delete-comment", "broadcastId": BID, "chatId": CHAT, "commentId": COMMENT})
}

fn resolve(resolved: bool) -> Value {
    json!({"type": "resolve-chat", "broadcastId": BID, "chatId": CHAT, "resolved": resolved})
}

fn move_to(anchor: Value) -> Value {
    json!({"type": "move-chat", "broadcastId": BID, "chatId": CHAT, "anchor": anchor})
}

/// All seven ops (with a valid text or anchor where there is one).
fn all_ops() -> [Value; 7] {
    [
        create("hi"),
        add("hi"),
        edit("hi"),
        delete(),
        delete_comment(),
        resolve(true),
        move_to(json!([0.5, 0.5])),
    ]
}

fn hello_anon(name: &str) -> Value {
    json!({
        "type": "hello",
        "protocol": 1,
        "tenantId": "demo",
        "imageId": "https://example.com/a.png",
        "auth": {"type": "anonymous", "name": name},
    })
}

fn hello_ids(tenant: &str, image: &str) -> Value {
    json!({"type": "hello", "protocol": 1, "tenantId": tenant, "imageId": image})
}

fn set(mut frame: Value, key: &str, value: Value) -> Value {
    frame
        .as_object_mut()
        .expect("an object")
        .insert(key.into(), value);
    frame
}

fn kind(frame: &Value) -> &str {
    frame["type"].as_str().expect("typed")
}

#[track_caller]
fn ok(frame: &str) -> ClientMessage {
    match decode_client_frame(frame) {
        Ok(message) => message,
        Err(e) => panic!("refused ({e}): {}", preview(frame)),
    }
}

#[track_caller]
fn ok_v(frame: &Value) -> ClientMessage {
    ok(&frame.to_string())
}

/// Asserts the frame is refused with `code`, carrying `broadcast_id` (or none).
#[track_caller]
fn refused(frame: &str, code: ErrorCode, broadcast_id: Option<&str>) -> String {
    match decode_client_frame(frame) {
        Ok(m) => panic!("accepted {m:?}: {}", preview(frame)),
        Err(e) => {
            assert_eq!(e.code, code, "{e}: {}", preview(frame));
            assert_eq!(
                e.broadcast_id.as_ref().map(|b| b.as_str()),
                broadcast_id,
                "broadcastId of {e}: {}",
                preview(frame)
            );
            assert!(!e.message.is_empty());
            // The error frame sent back mirrors the decode error.
            let wire = e.to_frame();
            assert_eq!(wire.code, e.code);
            assert_eq!(wire.broadcast_id, e.broadcast_id);
            e.message
        }
    }
}

#[track_caller]
fn refused_v(frame: &Value, code: ErrorCode, broadcast_id: Option<&str>) -> String {
    refused(&frame.to_string(), code, broadcast_id)
}

fn preview(frame: &str) -> String {
    let head: String = frame.chars().take(160).collect();
    format!("{head}{}", if frame.len() > 160 { "…" } else { "" })
}

// ---------------------------------------------------------------------------------------------
// Comment text.
// ---------------------------------------------------------------------------------------------

#[test]
fn text_at_the_limit_is_accepted_one_over_is_refused() {
    // 1, 2, 3 and 4 bytes per character: the limit is in characters, not bytes.
    for unit in ["a", "é", "€", "😀"] {
        for frame in text_ops(&unit.repeat(MAX_TEXT_CHARS)) {
            ok_v(&frame);
        }
        for frame in text_ops(&unit.repeat(MAX_TEXT_CHARS + 1)) {
            refused_v(&frame, ErrorCode::TextTooLong, Some(BID));
        }
    }
    // A combining sequence counts per Unicode scalar value.
    for frame in text_ops(&"e\u{301}".repeat(MAX_TEXT_CHARS / 2)) {
        ok_v(&frame);
    }
    for frame in text_ops(&format!("{}x", "e\u{301}".repeat(MAX_TEXT_CHARS / 2))) {
        refused_v(&frame, ErrorCode::TextTooLong, Some(BID));
    }
}

#[test]
fn maximal_text_fits_in_a_frame_when_sent_as_utf8() {
    // serde_json (and JSON.stringify) write non-ASCII as raw UTF-8: 4,000 four-byte characters
    // make a ~16 KB frame, well within the limit.
    let frame = create(&"😀".repeat(MAX_TEXT_CHARS)).to_string();
    assert!(frame.len() < MAX_CLIENT_FRAME_BYTES);
    ok(&frame);
    // The same text with every character escaped as a \uXXXX surrogate pair is 48 KB: refused by
    // the frame limit before the text is even looked at. PROTOCOL.md tells clients not to escape.
    let escaped = frame.replace('😀', "\\ud83d\\ude00");
    assert!(escaped.len() > MAX_CLIENT_FRAME_BYTES);
    refused(&escaped, ErrorCode::FrameTooLarge, None);
}

#[test]
fn blank_text_is_refused() {
    for blank in ["", " ", "\n", "\t \r\n ", "\u{3000}", "\u{a0}"] {
        for frame in text_ops(blank) {
            refused_v(&frame, ErrorCode::EmptyText, Some(BID));
        }
    }
    for frame in text_ops("  x  ") {
        ok_v(&frame);
    }
}

#[test]
fn control_characters_are_refused_except_tab_and_line_breaks() {
    for frame in text_ops("line one\nline two\r\n\tindented") {
        ok_v(&frame);
    }
    for bad in [
        "a\u{0}b",
        "bell\u{7}",
        "esc\u{1b}[31m",
        "del\u{7f}",
        "nel\u{85}",
        "\u{8}",
    ] {
        for frame in text_ops(bad) {
            refused_v(&frame, ErrorCode::InvalidText, Some(BID));
        }
    }
    // Written as JSON escapes, the characters are the same after decoding.
    let escaped = format!(
        r#"{{"type":"add-comment","broadcastId":"{BID}","chatId":"{CHAT}","commentId":"{COMMENT}","text":"a\u0000b"}}"#
    );
    refused(&escaped, ErrorCode::InvalidText, Some(BID));
    // A raw control character inside a JSON string is not JSON at all.
    let raw = escaped.replace("\\u0000", "\u{1}");
    refused(&raw, ErrorCode::MalformedFrame, None);
}

#[test]
fn text_is_never_interpreted() {
    for text in [
        "<script>alert(1)</script>",
        "&amp; &lt;",
        "{{x}}",
        "\"quoted\"",
    ] {
        for frame in text_ops(text) {
            let message = ok_v(&frame);
            assert!(
                message
                    .to_json()
                    .contains(&serde_json::to_string(text).expect("json"))
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Display names (anonymous hello).
// ---------------------------------------------------------------------------------------------

#[test]
fn name_at_the_limit_is_accepted_one_over_is_refused() {
    for unit in ["n", "é", "漢", "😀"] {
        ok_v(&hello_anon(&unit.repeat(MAX_NAME_CHARS)));
        refused_v(
            &hello_anon(&unit.repeat(MAX_NAME_CHARS + 1)),
            ErrorCode::InvalidName,
            None,
        );
    }
    // Counted after trimming surrounding whitespace.
    ok_v(&hello_anon(&format!("  {}  ", "n".repeat(MAX_NAME_CHARS))));
    ok_v(&hello_anon("A"));
}

#[test]
fn blank_or_controlled_names_are_refused() {
    for bad in ["", "   ", "\t\n", "a\u{1b}b", "a\u{0}", "a\nb"] {
        refused_v(&hello_anon(bad), ErrorCode::InvalidName, None);
    }
}

// ---------------------------------------------------------------------------------------------
// Coordinates and anchor canonicalization.
// ---------------------------------------------------------------------------------------------

fn create_at(x: &str, y: &str) -> String {
    format!(
        r#"{{"type":"create-chat","broadcastId":"{BID}","chatId":"{CHAT}","anchor":[{x},{y}],"text":"hi"}}"#
    )
}

fn anchor_of(message: &ClientMessage) -> (f64, f64) {
    match message {
        ClientMessage::CreateChat(c) => match c.anchor {
            Anchor::Point { x, y } => (x, y),
            _ => unreachable!("only point anchors exist"),
        },
        other => panic!("not a create-chat: {other:?}"),
    }
}

#[test]
fn coordinates_zero_and_one_are_accepted() {
    for v in [
        "0", "0.0", "-0", "-0.0", "1", "1.0", "0.5", "1e-300", "5e-324", "1E0", "0e5",
    ] {
        ok(&create_at(v, "0.5"));
        ok(&create_at("0.5", v));
    }
}

#[test]
fn coordinates_outside_the_unit_square_are_refused() {
    for v in [
        "-1e-300",
        "-0.000001",
        "-1",
        "1.000001",
        "1.0000000000000002",
        "2",
        "1e308",
        "-1e308",
    ] {
        refused(
            &create_at(v, "0.5"),
            ErrorCode::InvalidCoordinates,
            Some(BID),
        );
        refused(
            &create_at("0.5", v),
            ErrorCode::InvalidCoordinates,
            Some(BID),
        );
    }
}

#[test]
fn unrepresentable_or_mistyped_coordinates_are_malformed() {
    // Out of f64 range is a JSON parse error, not a coordinate error.
    for v in ["1e999", "-1e999", "\"0.5\"", "null", "true", "[0.5]", "{}"] {
        refused(&create_at(v, "0.5"), ErrorCode::MalformedFrame, Some(BID));
        refused(&create_at("0.5", v), ErrorCode::MalformedFrame, Some(BID));
    }
    // Not JSON numbers at all: the whole frame is unparseable, so no broadcastId can be trusted.
    for v in [
        "NaN",
        "Infinity",
        "-Infinity",
        ".5",
        "0.",
        "+0.5",
        "01",
        "0x1",
        "1e",
        "--1",
    ] {
        refused(&create_at(v, "0.5"), ErrorCode::MalformedFrame, None);
    }
}

#[test]
fn anchors_are_quantized_to_five_decimals() {
    let cases = [
        ("0.123456789", "0.98765432", 0.12346, 0.98765),
        ("0.999999", "0.000004", 1.0, 0.0),
        ("0.000016", "0.5", 0.00002, 0.5),
        ("0.41237", "0.62815", 0.41237, 0.62815),
        ("1e-300", "0.99999", 0.0, 0.99999),
    ];
    for (x, y, qx, qy) in cases {
        let message = ok(&create_at(x, y));
        assert_eq!(anchor_of(&message), (qx, qy), "({x}, {y})");
        // Canonical form is a fixed point: decoding the re-encoded frame changes nothing.
        assert_eq!(ok(&message.to_json()), message);
    }
    // Wire text of a canonical anchor: at most 5 decimals, and negative zero is written as 0.0.
    let message = ok(&create_at("-0.0", "0.123456789"));
    let wire = message.to_json();
    assert!(wire.contains(r#""anchor":[0.0,0.12346],"#), "{wire}");
    assert_eq!(Anchor::point(-0.0, 0.0), Anchor::point(0.0, 0.0));
    assert_eq!(
        serde_json::to_string(&Anchor::point(-0.0, 1.0)).expect("json"),
        "[0.0,1.0]"
    );
}

/// A region is inside the image and not empty, checked in canonical units (so `x + w` cannot
/// pass 1 through rounding); on create and on move alike. Its numbers are canonicalized.
#[test]
fn regions_are_validated_and_canonicalized() {
    let region =
        |x: f64, y: f64, w: f64, h: f64| json!({"type": "region", "x": x, "y": y, "w": w, "h": h});
    for (x, y, w, h) in [
        (0.0, 0.0, 1.0, 1.0),
        (0.5, 0.5, 0.5, 0.5),
        (0.33333, 0.0, 0.66667, 0.00001),
        (0.999_99, 0.999_99, 0.000_01, 0.000_01),
    ] {
        for frame in [
            set(create("hi"), "anchor", region(x, y, w, h)),
            move_to(region(x, y, w, h)),
        ] {
            ok_v(&frame);
        }
    }
    for (x, y, w, h) in [
        (0.5, 0.5, 0.5 + 1e-5, 0.1),
        (0.5, 0.6, 0.1, 0.5),
        (0.2, 0.2, 0.0, 0.1),
        (0.2, 0.2, 0.1, 0.000_004),
        (-0.1, 0.2, 0.1, 0.1),
        (0.2, 0.2, 1.1, 0.1),
        (0.2, 0.2, -0.1, 0.1),
    ] {
        for frame in [
            set(create("hi"), "anchor", region(x, y, w, h)),
            move_to(region(x, y, w, h)),
        ] {
            refused_v(&frame, ErrorCode::InvalidCoordinates, Some(BID));
        }
    }
    let message = ok_v(&move_to(region(0.123_456, 0.1, 0.2, 0.300_004)));
    let ClientMessage::MoveChat(moved) = message else {
        unreachable!()
    };
    assert_eq!(
        moved.anchor,
        image_chat_protocol::Anchor::Region {
            x: 0.12346,
            y: 0.1,
            w: 0.2,
            h: 0.3
        }
    );
    // A missing or mistyped field is malformed; an unknown one is dropped.
    for bad in [
        json!({"type": "region", "x": 0.1, "y": 0.1, "w": 0.1}),
        json!({"type": "region", "x": 0.1, "y": 0.1, "w": 0.1, "h": "0.1"}),
        json!({"type": "region", "x": 0.1, "y": 0.1, "w": 0.1, "h": null}),
    ] {
        refused_v(&move_to(bad), ErrorCode::MalformedFrame, Some(BID));
    }
    let message = ok_v(&move_to(
        json!({"type": "region", "x": 0.1, "y": 0.1, "w": 0.1, "h": 0.1, "label": "x"}),
    ));
    assert!(!message.to_json().contains("label"));
}

/// Deleting, resolving and moving carry only ids, a boolean, an anchor: mistyped values are
/// malformed, and points are validated like on create.
#[test]
fn management_ops_refuse_hostile_values() {
    refused_v(
        &set(resolve(true), "resolved", json!("true")),
        ErrorCode::MalformedFrame,
        Some(BID),
    );
    refused_v(
        &set(resolve(true), "resolved", json!(1)),
        ErrorCode::MalformedFrame,
        Some(BID),
    );
    ok_v(&resolve(false));
    refused_v(
        &move_to(json!([1.5, 0.5])),
        ErrorCode::InvalidCoordinates,
        Some(BID),
    );
    refused_v(&move_to(json!([0.5])), ErrorCode::MalformedFrame, Some(BID));
    refused_v(
        &set(delete_comment(), "commentId", json!("nope")),
        ErrorCode::InvalidId,
        Some(BID),
    );
    let mut frame = delete_comment();
    frame.as_object_mut().map(|o| o.remove("commentId"));
    refused_v(&frame, ErrorCode::MalformedFrame, Some(BID));
}

/// A point is exactly `[x, y]`; every other kind is an object tagged by `type`, and a kind
/// the server does not know is malformed (the old point object included).
#[test]
fn unknown_anchor_kinds_and_other_shapes_are_malformed() {
    for anchor in [
        json!({"type": "text-range", "start": 0, "end": 4}),
        json!({"type": "Region", "x": 0.1, "y": 0.1, "w": 0.1, "h": 0.1}),
        json!({"type": "point", "x": 0.5, "y": 0.5}),
        json!({"x": 0.5, "y": 0.5}),
        json!([]),
        json!([0.5]),
        json!([0.5, 0.5, 0.5]),
        json!([[0.5], 0.5]),
        json!("0.5,0.5"),
        json!(null),
    ] {
        let frame = set(create("hi"), "anchor", anchor.clone());
        refused_v(&frame, ErrorCode::MalformedFrame, Some(BID));
    }
}

// ---------------------------------------------------------------------------------------------
// Ids.
// ---------------------------------------------------------------------------------------------

/// Malformed renderings of a valid id (`good`, 22 characters of base64url).
fn bad_ids() -> Vec<String> {
    let good = "bxwqnjt9TB6aKwEjRWeJqw";
    assert!(image_chat_protocol::ids::is_canonical_id(good));
    vec![
        // Padded, too short, too long.
        format!("{good}=="),
        good[..21].to_string(),
        format!("{good}A"),
        // The standard base64 alphabet instead of the URL-safe one.
        good.replace('J', "+"),
        good.replace('J', "/"),
        // Non-zero padding bits in the last character (another spelling of the same bytes).
        format!("{}x", &good[..21]),
        format!("{}B", &good[..21]),
        // Right length, a character outside the alphabet.
        good.replace('J', "."),
        format!(" {}", &good[1..]),
        format!("{}é", &good[..21]),
        // The hyphenated hex form of a UUID.
        "6f1c2a9e-3b7d-4c1e-9a2b-0123456789ab".into(),
        String::new(),
    ]
}

#[test]
fn malformed_ids_are_refused_for_every_field_of_every_op() {
    for bad in bad_ids() {
        for op in all_ops() {
            let fields: &[&str] = match kind(&op) {
                "delete-chat" | "create-chat" | "resolve-chat" | "move-chat" => {
                    &["broadcastId", "chatId"]
                }
                _ => &["broadcastId", "chatId", "commentId"],
            };
            for field in fields {
                let frame = set(op.clone(), field, json!(bad));
                // The error names the op only if its own id is well-formed.
                let expected_bid = (*field != "broadcastId").then_some(BID);
                let message = refused_v(&frame, ErrorCode::InvalidId, expected_bid);
                assert!(message.contains(field), "{message} should name {field}");
            }
        }
    }
}

#[test]
fn mistyped_ids_are_malformed() {
    for op in all_ops() {
        for field in ["chatId", "broadcastId"] {
            for v in [json!(42), json!(null), json!([BID]), json!({"id": BID})] {
                let frame = set(op.clone(), field, v);
                let expected_bid = (field != "broadcastId").then_some(BID);
                refused_v(&frame, ErrorCode::MalformedFrame, expected_bid);
            }
        }
    }
}

#[test]
fn tenant_id_limits() {
    ok_v(&hello_ids(&"t".repeat(MAX_TENANT_ID_BYTES), "img"));
    ok_v(&hello_ids(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
        "img",
    ));
    refused_v(
        &hello_ids(&"t".repeat(MAX_TENANT_ID_BYTES + 1), "img"),
        ErrorCode::InvalidId,
        None,
    );
    for bad in [
        "",
        "de mo",
        "démo",
        "demo.com",
        "demo/x",
        "demo\n",
        "de\u{0}mo",
    ] {
        let message = refused_v(&hello_ids(bad, "img"), ErrorCode::InvalidId, None);
        assert!(message.contains("tenantId"), "{message}");
    }
}

#[test]
fn image_id_limits() {
    // The limit is in bytes: 512 ASCII, 256 two-byte, 128 four-byte characters.
    for image in [
        "i".repeat(MAX_IMAGE_ID_BYTES),
        "é".repeat(MAX_IMAGE_ID_BYTES / 2),
        "😀".repeat(MAX_IMAGE_ID_BYTES / 4),
        "https://example.com/a b/ä.png?x=1#y".into(),
    ] {
        ok_v(&hello_ids("demo", &image));
    }
    for image in [
        "i".repeat(MAX_IMAGE_ID_BYTES + 1),
        format!("{}i", "é".repeat(MAX_IMAGE_ID_BYTES / 2)),
        "€".repeat(MAX_IMAGE_ID_BYTES / 3 + 1),
    ] {
        refused_v(&hello_ids("demo", &image), ErrorCode::InvalidId, None);
    }
    for bad in ["", "a\nb", "a\u{0}", "\u{7f}", "tab\there"] {
        let message = refused_v(&hello_ids("demo", bad), ErrorCode::InvalidId, None);
        assert!(message.contains("imageId"), "{message}");
    }
}

// ---------------------------------------------------------------------------------------------
// Pages and text anchors.
// ---------------------------------------------------------------------------------------------

fn hello_page(page: &str) -> Value {
    json!({"type": "hello", "protocol": 1, "tenantId": "demo", "pageId": page})
}

fn text_anchor(exact: &str, start: u64, end: u64) -> Value {
    json!({"type": "text", "exact": exact, "prefix": "The ", "suffix": " jumps", "start": start, "end": end})
}

fn create_on(anchor: Value) -> Value {
    set(create("hi"), "anchor", anchor)
}

#[test]
fn hello_names_an_image_or_a_page_never_both() {
    let ClientMessage::Hello(hello) = ok_v(&hello_page("https://example.com/post#chapter-1"))
    else {
        unreachable!()
    };
    assert_eq!(hello.subject.kind(), SubjectKind::Page);
    assert!(matches!(hello.subject, Subject::Page(ref p) if p.as_str().ends_with("chapter-1")));
    let both = set(hello_ids("demo", "img"), "pageId", json!("page"));
    let message = refused_v(&both, ErrorCode::MalformedFrame, None);
    assert!(message.contains("pageId"), "{message}");
    let neither = json!({"type": "hello", "protocol": 1, "tenantId": "demo"});
    refused_v(&neither, ErrorCode::MalformedFrame, None);
    // Same format as an image id; the message names the field.
    ok_v(&hello_page(&"p".repeat(MAX_IMAGE_ID_BYTES)));
    for bad in ["", "a\nb", &"p".repeat(MAX_IMAGE_ID_BYTES + 1)] {
        let message = refused_v(&hello_page(bad), ErrorCode::InvalidId, None);
        assert!(message.contains("pageId"), "{message}");
    }
}

#[test]
fn text_anchors_are_read_and_checked() {
    let ClientMessage::CreateChat(op) = ok_v(&create_on(text_anchor("quick brown", 4, 15))) else {
        unreachable!()
    };
    let Anchor::Text(anchor) = &op.anchor else {
        unreachable!()
    };
    assert_eq!(
        (anchor.exact.as_str(), anchor.start, anchor.end),
        ("quick brown", 4, 15)
    );
    // Offsets count UTF-16 code units: "😀é" is 3.
    ok_v(&create_on(text_anchor("😀é", 10, 13)));
    ok_v(&move_to(text_anchor("line\nbreak\ttab", 0, 14)));
    // At the limits.
    ok_v(&create_on(text_anchor(
        &"x".repeat(MAX_EXACT_UNITS),
        0,
        MAX_EXACT_UNITS as u64,
    )));
    let mut at_limit = text_anchor("fox", 4, 7);
    at_limit["prefix"] = json!("p".repeat(MAX_CONTEXT_UNITS));
    at_limit["suffix"] = json!("😀".repeat(MAX_CONTEXT_UNITS / 2));
    ok_v(&create_on(at_limit));
}

#[test]
fn hostile_text_anchors_are_refused_with_invalid_anchor() {
    let over = MAX_EXACT_UNITS as u64 + 1;
    let long_prefix = {
        let mut a = text_anchor("fox", 4, 7);
        a["prefix"] = json!("p".repeat(MAX_CONTEXT_UNITS + 1));
        a
    };
    let long_suffix = {
        let mut a = text_anchor("fox", 4, 7);
        a["suffix"] = json!("😀".repeat(MAX_CONTEXT_UNITS / 2 + 1));
        a
    };
    let control = {
        let mut a = text_anchor("fox", 4, 7);
        a["suffix"] = json!("\u{1b}[2J");
        a
    };
    for (anchor, why) in [
        (text_anchor("fox", 7, 4), "start > end"),
        (text_anchor("fox", 4, 4), "empty range"),
        (
            text_anchor("fox", 4, 8),
            "end - start is not the quote's length",
        ),
        (text_anchor("😀", 4, 5), "an astral character is 2 units"),
        (text_anchor("", 4, 4), "empty quote"),
        (text_anchor(" \n\t ", 4, 8), "blank quote"),
        (text_anchor("a\u{0}b", 4, 7), "NUL in the quote"),
        (
            text_anchor(&"x".repeat(over as usize), 0, over),
            "huge quote",
        ),
        (long_prefix, "prefix too long"),
        (long_suffix, "suffix too long"),
        (control, "control characters in the context"),
    ] {
        for frame in [create_on(anchor.clone()), move_to(anchor)] {
            let message = refused_v(&frame, ErrorCode::InvalidAnchor, Some(BID));
            assert!(message.contains("text anchor"), "{why}: {message}");
        }
    }
}

#[test]
fn malformed_text_anchors_are_malformed_frames() {
    let missing = json!({"type": "text", "exact": "fox", "prefix": "", "start": 0, "end": 3});
    let negative = text_anchor("fox", 0, 3);
    let mut negative = negative;
    negative["start"] = json!(-1);
    let mut fraction = text_anchor("fox", 0, 3);
    fraction["end"] = json!(3.5);
    let mut huge = text_anchor("fox", 0, 3);
    huge["end"] = json!(u64::from(u32::MAX) + 1);
    let mut typed = text_anchor("fox", 0, 3);
    typed["exact"] = json!(["fox"]);
    for anchor in [missing, negative, fraction, huge, typed] {
        refused_v(&create_on(anchor), ErrorCode::MalformedFrame, Some(BID));
    }
}

#[test]
fn anchors_must_fit_the_subject() {
    let text = ok_v(&create_on(text_anchor("quick brown", 4, 15)))
        .into_op()
        .expect("an op");
    assert_eq!(text.check_subject(SubjectKind::Page), Ok(()));
    let refused = text
        .check_subject(SubjectKind::Image)
        .expect_err("not on an image");
    assert_eq!(ErrorCode::from(&refused), ErrorCode::WrongAnchorKind);
    for anchor in [
        json!([0.5, 0.5]),
        json!({"type": "region", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}),
    ] {
        let op = ok_v(&create_on(anchor.clone())).into_op().expect("an op");
        assert_eq!(op.check_subject(SubjectKind::Image), Ok(()));
        let refused = op
            .check_subject(SubjectKind::Page)
            .expect_err("not on a page");
        assert_eq!(ErrorCode::from(&refused), ErrorCode::WrongAnchorKind);
        let moved = ok_v(&move_to(anchor)).into_op().expect("an op");
        assert!(moved.check_subject(SubjectKind::Page).is_err());
    }
    // Ops without an anchor fit anywhere.
    let reply = ok_v(&add("hi")).into_op().expect("an op");
    assert_eq!(reply.check_subject(SubjectKind::Page), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Frame size.
// ---------------------------------------------------------------------------------------------

/// A valid frame padded with JSON whitespace to exactly `len` bytes.
fn padded(frame: &Value, len: usize) -> String {
    let mut text = frame.to_string();
    assert!(text.len() <= len);
    text.insert_str(1, &" ".repeat(len - text.len()));
    assert_eq!(text.len(), len);
    text
}

#[test]
fn frame_size_limit() {
    for frame in [create("hi"), add("hi"), delete(), hello_anon("Ada")] {
        ok(&padded(&frame, MAX_CLIENT_FRAME_BYTES));
        // One byte over: refused before parsing, so not even the broadcastId is read.
        refused(
            &padded(&frame, MAX_CLIENT_FRAME_BYTES + 1),
            ErrorCode::FrameTooLarge,
            None,
        );
    }
    refused(
        &"x".repeat(10 * MAX_CLIENT_FRAME_BYTES),
        ErrorCode::FrameTooLarge,
        None,
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed JSON, types, unknown fields.
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_or_non_object_json_is_refused() {
    let ping = r#"{"type":"ping","nonce":1}"#;
    for bad in [
        "",
        " ",
        "{",
        "}",
        r#"{"type":"#,
        r#"{"type":"ping","nonce":1"#,
        &format!("{ping} x"),
        &format!("{ping}{ping}"),
        &format!("\u{feff}{ping}"),
        r#"{'type':'ping','nonce':1}"#,
        r#"{"type":"ping","nonce":1,}"#,
        r#"{"type":"ping", /* c */ "nonce":1}"#,
        r#"{type:"ping","nonce":1}"#,
        "null",
        "true",
        "42",
        r#""ping""#,
        "[]",
        // serde would happily read internally tagged enums from arrays; the protocol does not.
        r#"["ping", 1]"#,
        r#"["hello", 1, "demo", "img", null, null]"#,
        &format!(r#"["delete-chat", "{BID}", "{CHAT}"]"#),
        "\u{0}",
        "\u{fffd}\u{fffd}",
    ] {
        refused(bad, ErrorCode::MalformedFrame, None);
    }
    // JSON whitespace around the object is fine.
    ok(&format!(" \t\r\n{ping}\n "));
}

#[test]
fn missing_type_is_malformed() {
    refused(r#"{"nonce":1}"#, ErrorCode::MalformedFrame, None);
    refused(r#"{}"#, ErrorCode::MalformedFrame, None);
    refused(
        r#"{"type":null,"nonce":1}"#,
        ErrorCode::MalformedFrame,
        None,
    );
    refused(r#"{"type":1,"nonce":1}"#, ErrorCode::MalformedFrame, None);
    let mut op = delete();
    op.as_object_mut().expect("object").remove("type");
    refused_v(&op, ErrorCode::MalformedFrame, Some(BID));
}

#[test]
fn unknown_type_is_refused_with_its_own_code() {
    // Server message types, wrong case, old names: all unknown to a server.
    for t in [
        "pong",
        "welcome",
        "ack",
        "PING",
        "Ping",
        "create_chat",
        "createChat",
        "",
        "hello ",
    ] {
        refused_v(
            &json!({"type": t, "nonce": 1}),
            ErrorCode::UnknownType,
            None,
        );
        // An unknown op still names itself if it carries a well-formed broadcastId.
        refused_v(
            &json!({"type": t, "broadcastId": BID}),
            ErrorCode::UnknownType,
            Some(BID),
        );
        refused_v(
            &json!({"type": t, "broadcastId": "not-a-uuid"}),
            ErrorCode::UnknownType,
            None,
        );
    }
}

#[test]
fn unknown_fields_are_refused_in_every_client_message() {
    let hello_sso = json!({
        "type": "hello", "protocol": 1, "tenantId": "demo", "imageId": "img",
        "auth": {"type": "sso", "userData": "e30=", "timestamp": 1, "hash": "00"},
    });
    let ping = json!({"type": "ping", "nonce": 1});
    for frame in [hello_anon("Ada"), hello_sso.clone(), ping] {
        ok_v(&frame);
        for extra in ["extra", "Type", "tenant_id", "broadcastId"] {
            let frame = set(frame.clone(), extra, json!(1));
            refused_v(&frame, ErrorCode::MalformedFrame, None);
        }
    }
    for op in all_ops() {
        ok_v(&op);
        // Including fields of *other* ops, and the snake_case spelling of real ones.
        for extra in ["extra", "anchor", "text", "commentId", "chat_id", "seq"] {
            if op.get(extra).is_some() {
                continue;
            }
            let frame = set(op.clone(), extra, json!("x"));
            refused_v(&frame, ErrorCode::MalformedFrame, Some(BID));
        }
    }
    // Inside `auth` (a client-only object) too.
    let mut frame = hello_anon("Ada");
    frame["auth"]["avatar"] = json!("https://example.com/a.png");
    refused_v(&frame, ErrorCode::MalformedFrame, None);
    let mut frame = hello_sso;
    frame["auth"]["name"] = json!("Grace");
    refused_v(&frame, ErrorCode::MalformedFrame, None);
}

/// `resume` is the same type the server sends back (in `welcome`), and clients must ignore
/// unknown fields from the server, so it cannot refuse them. The decoded message drops them;
/// nothing unknown is ever stored or forwarded. (A point anchor is an array: no fields.)
#[test]
fn unknown_fields_inside_shared_objects_are_dropped() {
    let frame = set(
        hello_anon("Ada"),
        "resume",
        json!({"epoch": 1, "seq": 2, "extra": true}),
    );
    let message = ok_v(&frame);
    assert!(!message.to_json().contains("extra"));
}

#[test]
fn duplicate_fields_are_malformed() {
    let frame = format!(
        r#"{{"type":"delete-chat","broadcastId":"{BID}","chatId":"{CHAT}","chatId":"{CHAT}"}}"#
    );
    refused(&frame, ErrorCode::MalformedFrame, Some(BID));
    let frame = format!(
        r#"{{"type":"delete-chat","broadcastId":"{BID}","chatId":"{CHAT}","type":"ping"}}"#
    );
    refused(&frame, ErrorCode::MalformedFrame, None);
}

#[test]
fn missing_or_mistyped_fields_are_malformed_and_name_the_op() {
    for op in all_ops() {
        let keys: Vec<String> = op
            .as_object()
            .expect("object")
            .keys()
            .filter(|k| *k != "type" && *k != "broadcastId")
            .cloned()
            .collect();
        for key in keys {
            let mut frame = op.clone();
            frame.as_object_mut().expect("object").remove(&key);
            let message = refused_v(&frame, ErrorCode::MalformedFrame, Some(BID));
            assert!(message.contains(&key), "{message} should name {key}");
            refused_v(
                &set(op.clone(), &key, json!(7)),
                ErrorCode::MalformedFrame,
                Some(BID),
            );
        }
        let mut frame = op.clone();
        frame.as_object_mut().expect("object").remove("broadcastId");
        refused_v(&frame, ErrorCode::MalformedFrame, None);
    }
    // hello's required fields.
    for key in ["protocol", "tenantId", "imageId"] {
        let mut frame = hello_anon("Ada");
        frame.as_object_mut().expect("object").remove(key);
        refused_v(&frame, ErrorCode::MalformedFrame, None);
    }
}

#[test]
fn optional_hello_fields_may_be_null_or_absent() {
    let mut frame = hello_ids("demo", "img");
    ok_v(&frame);
    frame["auth"] = Value::Null;
    frame["resume"] = Value::Null;
    ok_v(&frame);
    let mut frame = hello_anon("Ada");
    frame["auth"]["token"] = Value::Null;
    let ClientMessage::Hello(hello) = ok_v(&frame) else {
        panic!("not a hello")
    };
    assert_eq!(
        hello.auth,
        Some(Auth::Anonymous {
            name: "Ada".into(),
            token: None
        })
    );
}

#[test]
fn deeply_nested_json_is_refused_without_panicking() {
    let depth = 15_000;
    for frame in [
        "[".repeat(depth),
        format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        format!("{}1{}", r#"{"a":"#.repeat(depth / 5), "}".repeat(depth / 5)),
        format!(r#"{{"type":"ping","nonce":1,"x":{}"#, "[".repeat(depth)),
        format!(
            r#"{{"type":"ping","nonce":1,"x":{}{}}}"#,
            "[".repeat(depth / 2),
            "]".repeat(depth / 2)
        ),
        format!(
            r#"{{"type":"delete-chat","broadcastId":"{BID}","chatId":"{CHAT}","x":{}0{}}}"#,
            "[".repeat(1_000),
            "]".repeat(1_000)
        ),
    ] {
        assert!(
            frame.len() <= MAX_CLIENT_FRAME_BYTES,
            "test frames stay in the size limit"
        );
        let err = decode_client_frame(&frame).expect_err("refused");
        assert_eq!(err.code, ErrorCode::MalformedFrame, "{err}");
    }
}

#[test]
fn invalid_numbers_are_malformed() {
    let pings = [
        "-1",
        "1.5",
        "1e3",
        "18446744073709551616",
        "\"1\"",
        "null",
        "true",
    ];
    for nonce in pings {
        refused(
            &format!(r#"{{"type":"ping","nonce":{nonce}}}"#),
            ErrorCode::MalformedFrame,
            None,
        );
    }
    ok(&format!(r#"{{"type":"ping","nonce":{}}}"#, u64::MAX));
    ok(r#"{"type":"ping","nonce":0}"#);
    for (field, value) in [
        ("protocol", json!(4_294_967_296_u64)),
        ("protocol", json!(-1)),
        ("protocol", json!(1.0)),
        ("resume", json!({"epoch": 4_294_967_296_u64, "seq": 1})),
        ("resume", json!({"epoch": 1, "seq": -1})),
        ("resume", json!({"epoch": 1})),
        ("resume", json!({"epoch": 1, "seq": 1.5})),
    ] {
        refused_v(
            &set(hello_anon("Ada"), field, value),
            ErrorCode::MalformedFrame,
            None,
        );
    }
    // Extremes that fit are accepted.
    ok_v(&set(
        hello_anon("Ada"),
        "resume",
        json!({"epoch": u32::MAX, "seq": u64::MAX}),
    ));
}

/// The codec accepts any `protocol` number: whether a version is supported is the server's
/// decision (it answers `unsupported-protocol` and closes with 4400), not a shape error.
#[test]
fn protocol_version_is_left_to_the_server() {
    for version in [0, 1, 2, u32::MAX] {
        let ClientMessage::Hello(hello) = ok_v(&set(hello_anon("Ada"), "protocol", json!(version)))
        else {
            panic!("not a hello")
        };
        assert_eq!(hello.protocol, version);
    }
}

#[test]
fn validation_order_reports_the_id_before_the_content() {
    // Several problems at once: ids are checked first, then coordinates, then text.
    let frame = set(
        set(create(""), "chatId", json!("nope")),
        "anchor",
        json!([2, 0]),
    );
    refused_v(&frame, ErrorCode::InvalidId, Some(BID));
    let frame = set(create(""), "anchor", json!([2, 0]));
    refused_v(&frame, ErrorCode::InvalidCoordinates, Some(BID));
}

/// Every one of the 100,001 canonical coordinates is written as a plain decimal with at most 5
/// decimals (never in exponent form), so a coordinate costs at most 7 bytes on the wire.
#[test]
fn every_canonical_coordinate_is_written_plainly() {
    use image_chat_protocol::limits::quantize_fraction;
    for k in 0..=100_000_u32 {
        let v = quantize_fraction(f64::from(k) / 100_000.0);
        let written = serde_json::to_string(&v).expect("finite");
        let decimals = written.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(
            decimals <= 5 && !written.contains('e') && written.len() <= 7,
            "{k}: {written}"
        );
        assert_eq!(quantize_fraction(v), v, "{k}: quantizing is idempotent");
    }
}
