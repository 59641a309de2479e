//! Fuzzes what the server does with every untrusted frame: `decode_client_frame` (size check,
//! JSON parsing, validation, canonical anchors). It must never panic, and what it accepts must
//! satisfy the invariants the server relies on:
//! - every accepted op validates again, and its canonical form re-encodes to a frame that
//!   decodes to the same message (so what is stored is what is broadcast);
//! - refusals that name an op name it with a canonical id (22-character base64url).

#![no_main]

use image_chat_protocol::{ClientMessage, decode_client_frame, ids::is_canonical_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The transport hands the server only valid UTF-8 text frames.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode_client_frame(text) {
        Ok(message) => {
            if let Ok(op) = message.clone().into_op() {
                assert!(op.validate().is_ok(), "accepted an invalid op: {op:?}");
            }
            if let ClientMessage::Hello(hello) = &message {
                assert!(hello.validate().is_ok());
            }
            let again = decode_client_frame(&message.to_json())
                .unwrap_or_else(|e| panic!("re-encoded frame refused: {e} for {message:?}"));
            assert_eq!(again, message, "decode is not idempotent");
        }
        Err(err) => {
            if let Some(id) = &err.broadcast_id {
                assert!(is_canonical_id(id.as_str()));
            }
            // The error frame itself always serializes.
            let frame = serde_json::to_string(&err.to_frame()).unwrap_or_default();
            assert!(!frame.is_empty());
        }
    }
});
