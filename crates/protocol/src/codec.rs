//! Decoding untrusted client frames into validated messages, with a precise error for anything
//! refused. This is the one entry point the server uses for client input (and the fuzz target):
//! it never panics, and its errors name the op (`broadcastId`) whenever the frame carried one.

use serde::Deserialize;
use thiserror::Error;

use crate::client::{ClientMessage, Op};
use crate::error::ErrorCode;
use crate::ids::{BroadcastId, is_canonical_id};
use crate::limits::MAX_CLIENT_FRAME_BYTES;
use crate::server::ErrorFrame;

/// Message types a client may send; anything else is `unknown-type`.
const CLIENT_TYPES: &[&str] = &[
    "hello",
    "create-chat",
    "add-comment",
    "edit-comment",
    "delete-chat",
    "delete-comment",
    "resolve-chat",
    "move-chat",
    "set-name",
    "set-lock",
    "ping",
];

/// A refused client frame.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// The op's id, when the frame carried a well-formed one.
    pub broadcast_id: Option<BroadcastId>,
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Explanation for developers.
    pub message: String,
}

impl DecodeError {
    fn new(broadcast_id: Option<BroadcastId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            broadcast_id,
            code,
            message: message.into(),
        }
    }

    /// The `error` frame that reports this to the client.
    pub fn to_frame(&self) -> ErrorFrame {
        ErrorFrame {
            broadcast_id: self.broadcast_id.clone(),
            code: self.code,
            message: self.message.clone(),
        }
    }
}

/// Just enough of a frame to report an error about it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(rename = "type")]
    kind: Option<String>,
    broadcast_id: Option<serde_json::Value>,
}

/// Decodes and validates one text frame from a client. Anchors come back in canonical
/// (quantized) form.
pub fn decode_client_frame(text: &str) -> Result<ClientMessage, DecodeError> {
    if text.len() > MAX_CLIENT_FRAME_BYTES {
        return Err(DecodeError::new(
            None,
            ErrorCode::FrameTooLarge,
            format!("frames are limited to {MAX_CLIENT_FRAME_BYTES} bytes"),
        ));
    }
    // serde also accepts an internally tagged enum written as an array (`["ping", 1]`); the
    // protocol only has objects. JSON whitespace is space, tab, LF and CR.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(DecodeError::new(
            None,
            ErrorCode::MalformedFrame,
            "expected a JSON object",
        ));
    }
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(err) => return Err(classify_parse_error(text, &err)),
    };
    validate(message)
}

fn classify_parse_error(text: &str, err: &serde_json::Error) -> DecodeError {
    let Ok(probe) = serde_json::from_str::<Probe>(text) else {
        // Not even parseable as an object (syntax, depth, a non-string `type`…): serde's message
        // says where, and never contains server internals.
        return DecodeError::new(None, ErrorCode::MalformedFrame, err.to_string());
    };
    let broadcast_id = probe
        .broadcast_id
        .as_ref()
        .and_then(|v| v.as_str())
        .filter(|s| is_canonical_id(s))
        .map(BroadcastId::new);
    match probe.kind.as_deref() {
        None => DecodeError::new(broadcast_id, ErrorCode::MalformedFrame, "missing `type`"),
        Some(kind) if !CLIENT_TYPES.contains(&kind) => {
            DecodeError::new(broadcast_id, ErrorCode::UnknownType, "unknown message type")
        }
        // serde's message names the field and the expectation, never server internals.
        Some(_) => DecodeError::new(broadcast_id, ErrorCode::MalformedFrame, err.to_string()),
    }
}

fn validate(message: ClientMessage) -> Result<ClientMessage, DecodeError> {
    match message {
        ClientMessage::Hello(hello) => match hello.validate() {
            Ok(()) => Ok(ClientMessage::Hello(hello)),
            Err(e) => Err(DecodeError::new(None, ErrorCode::from(&e), e.to_string())),
        },
        ClientMessage::SetName { name } => match crate::limits::validate_name(&name) {
            Ok(()) => Ok(ClientMessage::SetName {
                name: name.trim().to_owned(),
            }),
            Err(e) => Err(DecodeError::new(None, ErrorCode::from(&e), e.to_string())),
        },
        ClientMessage::Ping { nonce } => Ok(ClientMessage::Ping { nonce }),
        ClientMessage::SetLock { locked } => Ok(ClientMessage::SetLock { locked }),
        other => match other.into_op() {
            Ok(op) => validate_op(op).map(Op::into_message),
            // `into_op` only refuses non-op messages, all handled above.
            Err(other) => Ok(other),
        },
    }
}

fn validate_op(mut op: Op) -> Result<Op, DecodeError> {
    if let Err(e) = op.validate() {
        let id = op.broadcast_id();
        let id = is_canonical_id(id.as_str()).then(|| id.clone());
        return Err(DecodeError::new(id, ErrorCode::from(&e), e.to_string()));
    }
    match &mut op {
        Op::CreateChat(create) => create.anchor = create.anchor.canonical(),
        Op::MoveChat(moved) => moved.anchor = moved.anchor.canonical(),
        _ => {}
    }
    Ok(op)
}
