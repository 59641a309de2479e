//! The image-chat client sync engine: everything the widget does between the person and the
//! WebSocket, as a sans-I/O state machine (no sockets, no clock, no system randomness). Time
//! comes in as `now` in milliseconds, randomness from a seed, so every reconnect, resync and
//! optimistic-update scenario runs as a plain native test with a virtual clock.
//!
//! Module map:
//! - [`engine`]: [`Engine`], the state machine: inputs (`handle_*`), outputs (`poll_*`), and the
//!   rules it follows (optimistic ops, echo suppression, resync, keepalive). Private
//!   submodules split its work: `local` (the person's ops), `link` (socket lifecycle,
//!   backoff waits, `hello`), `inbound` (server frames, resync, settling ops in flight).
//! - [`view`]: the view model the widget renders ([`View`], [`ChatView`], [`CommentView`],
//!   [`OpState`]) and the incremental [`ViewUpdate`]s, including `aria-live`
//!   [`Announcement`]s.
//! - [`connection`]: socket vocabulary: [`ConnectionId`], [`TransportEvent`], [`Action`],
//!   [`ConnectionStatus`], [`StopReason`].
//! - [`error`]: [`LocalError`] (a command refused), [`FailReason`] (an op failed), [`OpKind`],
//!   [`OpRef`].
//! - [`backoff`]: full-jitter exponential reconnect delays (500 ms base, 20 s cap).
//! - [`echo`]: the bounded set of our own broadcast ids (1,024, survives reconnects).
//! - [`ids`]: UUID v4 ids for broadcast / chat / comment ids, from the caller's
//!   [`ids::IdSource`] (the widget's: `crypto.getRandomValues`).
//! - [`rng`]: the seeded SplitMix64 generator behind the backoff jitter (never ids).
//! - [`sorted`]: [`sorted::SortedMap`], the small sorted-`Vec` map the engine and the widget use
//!   instead of hash or B-tree maps (wasm size).
//! - `pending` (private): our unsettled ops in submission order.
//!
//! # Driving the engine (what the widget does)
//!
//! ```
//! use image_chat_sync::{Action, Config, ConnectionId, Engine, TransportEvent};
//! use image_chat_sync::ids::SeededIds;
//! use image_chat_protocol::{ImageId, TenantId};
//!
//! let config = Config::new(TenantId::new("demo"), ImageId::new("cat.png"), None);
//! // A browser passes an id source over `crypto.getRandomValues` instead (see `ids`).
//! let mut engine = Engine::new(0, config, 0x5eed, Box::new(SeededIds::new(1)));
//! // After every input: drain actions, frames and view updates, then re-arm one timer.
//! while let Some(action) = engine.poll_action() {
//!     if let Action::Connect { conn } = action {
//!         // new WebSocket(url); route its events as `handle_transport(now, conn, …)`.
//!         engine.handle_transport(5, conn, TransportEvent::Opened);
//!     }
//! }
//! let hello = engine.poll_transmit().expect("hello goes first");
//! assert!(hello.contains("\"type\":\"hello\""));
//! while let Some(_update) = engine.poll_view() { /* patch the DOM */ }
//! let _next_deadline = engine.poll_timeout(); // setTimeout(handle_timeout, deadline - now)
//! ```
//!
//! # API stability
//!
//! The widget codes against this API. Additions are compatible; any breaking change will be
//! listed here. Changes since the first published version (all additions):
//! - [`LocalError::TargetFailed`]: replying to / editing / deleting something that only exists
//!   as our failed create or reply is refused (retry or dismiss that op first). Breaks only an
//!   exhaustive `match` on [`LocalError`].
//! - [`Engine::op_state`]: where one of our ops stands.
//! - [`sorted::SortedMap`]: the sorted-`Vec` map, public so the widget uses the same one.
//! - Managing discussions: [`Command::DeleteComment`], [`Command::Resolve`],
//!   [`Command::Move`], [`Command::CreateRegion`]; [`OpKind::DeleteComment`],
//!   [`OpKind::Resolve`], [`OpKind::Move`]; [`ChatView::resolved`], [`ChatView::region`];
//!   [`Announcement::CommentDeleted`], [`Announcement::Resolved`], [`Announcement::Moved`].
//!   Breaks only exhaustive `match`es and struct literals of these types.
//! - Discussions on page text (issue 14): [`Config::new`] takes any subject (an `ImageId` or a
//!   `PageId`), and `Config.image_id` became `Config.subject`; [`Command::CreateText`];
//!   [`Engine::subject`]; [`ChatView::text`], and [`ChatView::point`] is `None` for text. The
//!   engine is otherwise the same for both kinds (`*-text-chat` events are applied as the image
//!   ones); it refuses locally an anchor of the wrong kind (`ValidationError::WrongAnchorKind`).
//! - Shared views (issue 18): [`View::chats`] holds `Rc<ChatView>`s and [`ViewUpdate::Chat`]
//!   carries the same `Rc`, so the engine's view, its updates and the widget's own table share
//!   one copy of each discussion (a snapshot's thousand were copied three times). Reading
//!   fields is unchanged (`Rc` dereferences); code that moves a `ChatView` out of an update or
//!   builds these types changes. [`sorted::SortedMap::take`] and [`sorted::SortedMap::put`]:
//!   an update of one key with one search.

pub mod backoff;
pub mod connection;
pub mod echo;
pub mod engine;
pub mod error;
pub mod ids;
mod pending;
pub mod queue;
pub mod rng;
pub mod sorted;
pub mod view;

pub use connection::{Action, ConnectionId, ConnectionStatus, StopReason, TransportEvent};
pub use engine::{Command, Config, Engine, Timing};
pub use error::{FailReason, LocalError, OpKind, OpRef};
pub use view::{Announcement, ChatView, CommentView, OpState, View, ViewUpdate};
