//! The image-chat wire protocol: every message that crosses the WebSocket, as serde types.
//!
//! This crate is shared by the widget (compiled to wasm32) and the server, so both sides agree on
//! the exact JSON shape, the validation limits and the meaning of each close code. It does no I/O.
//! `docs/PROTOCOL.md` is the normative, human-readable version of what lives here.
//!
//! Module map:
//! - [`ids`]: tenant, image, page, chat, comment and broadcast identifiers and their formats;
//!   the [`Subject`] a connection follows (an image or a page).
//! - [`model`]: the domain values carried on the wire: users, anchors (points, regions, text
//!   passages: [`TextAnchor`], from the `image-chat-anchor` crate), comments, chats, snapshots.
//! - [`client`]: client → server messages (`hello`, the seven ops, `set-name`, `set-lock`, `ping`).
//! - [`server`]: server → client messages (`welcome`, the broadcast events — three names on
//!   images, three on pages —, `batch`, `ack`, `error`, `presence`, `lock`, `pong`).
//! - [`state`]: what an event *means*: applying events to a snapshot, used by the client view and
//!   by the server's replay checks so the two can never disagree.
//! - [`limits`]: sizes and ranges, and the validation shared by client and server.
//! - [`error`]: machine-readable error codes sent in `error` frames.
//! - [`close`]: WebSocket close codes, split into "reconnect" and "give up".
//! - [`codec`]: decoding client frames into validated messages (what the server and the fuzzer call).
//! - [`number`]: decimal numbers read and written without core's float tables (for [`wire`]
//!   and the widget's CSS lengths).
//! - [`wire`]: the client's side without serde: client frames written and server frames read
//!   by hand (what the widget links), pinned to the serde derives by tests.

pub mod client;
pub mod close;
pub mod codec;
pub mod error;
pub mod ids;
pub mod limits;
pub mod model;
pub mod number;
pub mod server;
pub mod state;
pub mod wire;

pub use client::{
    AddComment, Auth, ClientMessage, CreateChat, DeleteChat, DeleteComment, EditComment, Hello,
    MoveChat, Op, ResolveChat,
};
pub use close::CloseCode;
pub use codec::{DecodeError, decode_client_frame};
pub use error::ErrorCode;
pub use ids::{BroadcastId, ChatId, CommentId, ImageId, PageId, Subject, SubjectKind, TenantId};
pub use limits::ValidationError;
pub use model::{Anchor, Chat, Comment, Position, Snapshot, TextAnchor, User};
pub use server::{
    Ack, Batch, ChatChange, DeletedImageChat, ErrorFrame, Event, ImageChatUpdated, Lock,
    NewImageChat, Pong, Presence, ServerMessage, Welcome,
};
pub use state::{ApplyError, ImageState};
pub use wire::FrameError;

/// The protocol version a client announces in `hello`. Bumped only on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;
