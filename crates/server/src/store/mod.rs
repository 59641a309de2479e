//! Durable state: discussions, comments and each image's event log, behind the [`Store`] trait.
//!
//! The server calls a store in this order for every op on an image: validate (done by the
//! protocol codec before the store is reached) → [`Store::commit`] (checks the op against the
//! current state, assigns the next `seq`, makes it durable) → ack → publish. A store returns
//! only after the change is durable: an acked op survives a crash.
//!
//! Implementations: [`sqlite::SqliteStore`] (embedded, the default). Every implementation runs
//! the same conformance suite (`tests/store_conformance/`).

pub mod sqlite;

use async_trait::async_trait;
use image_chat_protocol::{ErrorCode, Event, ImageId, Op, Position, Snapshot, TenantId, User};
use thiserror::Error;

/// One image of one tenant: the unit of ordering, fan-out and resync.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageKey {
    /// The tenant owning the image.
    pub tenant: TenantId,
    /// The image within the tenant.
    pub image: ImageId,
}

/// What committing an op produced.
#[derive(Clone, Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a short-lived return value moved once into the ack/publish path; boxing the \
              event would only add an allocation per commit"
)]
pub enum Commit {
    /// A new change: ack it, then publish the event.
    Applied(Event),
    /// The same op (same `broadcastId`, actor and content) was committed before as `seq`: ack it
    /// again, publish nothing.
    Duplicate {
        /// The seq the op was first committed as.
        seq: u64,
    },
}

/// What a (re)connecting client needs to be current.
#[derive(Clone, Debug, PartialEq)]
pub enum CatchUp {
    /// Exactly the events after the client's position, in order (possibly none).
    Events {
        /// Position after the last event.
        position: Position,
        /// The missed events.
        events: Vec<Event>,
    },
    /// The whole state: the client had no position, a position older than the retained log,
    /// a position ahead of the log, or a different epoch.
    Snapshot {
        /// Position the snapshot reflects.
        position: Position,
        /// Every discussion.
        snapshot: Snapshot,
    },
}

/// Why an op was not committed because of the state it met (as opposed to its shape, which
/// the codec checked before).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Rejection {
    /// The discussion does not exist on this image.
    #[error("no such discussion on this image")]
    UnknownChat,
    /// The comment does not exist in this discussion.
    #[error("no such comment in this discussion")]
    UnknownComment,
    /// The actor is neither the author nor a moderator.
    #[error("only the author or a moderator may do this")]
    Forbidden,
    /// The chat or comment id is already used.
    #[error("that id is already taken")]
    DuplicateId,
    /// The broadcastId was used before for a different op.
    #[error("that broadcastId was already used for a different op")]
    BroadcastIdConflict,
    /// The image already holds the most discussions it may, or the thread the most comments.
    #[error("this image or discussion has reached its size limit")]
    LimitExceeded,
}

impl From<Rejection> for ErrorCode {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::UnknownChat => ErrorCode::UnknownChat,
            Rejection::UnknownComment => ErrorCode::UnknownComment,
            Rejection::Forbidden => ErrorCode::Forbidden,
            Rejection::DuplicateId => ErrorCode::DuplicateId,
            Rejection::BroadcastIdConflict => ErrorCode::BroadcastIdConflict,
            Rejection::LimitExceeded => ErrorCode::LimitExceeded,
        }
    }
}

/// A store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The op does not fit the current state; nothing was committed. Sent to the client.
    #[error("rejected: {0}")]
    Rejected(#[from] Rejection),
    /// The backend failed; nothing was committed. Logged, reported to clients only as
    /// `unavailable`.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// Size limits a commit must respect. They depend on the state (how many discussions the image
/// holds), so the store checks them atomically with the write, like authorship. `0` means
/// unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitLimits {
    /// Most discussions one image may hold (checked by `create-chat`).
    pub max_chats_per_image: u32,
    /// Most comments one discussion may hold, its first included (checked by `add-comment`).
    pub max_comments_per_thread: u32,
}

impl CommitLimits {
    /// No size limits (tests and tools).
    pub const UNLIMITED: CommitLimits = CommitLimits {
        max_chats_per_image: 0,
        max_comments_per_thread: 0,
    };
}

/// Durable discussions and per-image event logs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits `op` by `actor` on `image` at server time `now_ms` (ms since the Unix epoch),
    /// assigning the image's next `seq`, or recognises a repeat of an op already committed.
    /// Authorization that depends on state (authorship) and the size `limits` are checked here,
    /// atomically with the write. A repeat of a committed op is acknowledged even when the
    /// limit has been reached since. Returns once the change is durable.
    async fn commit_limited(
        &self,
        image: &ImageKey,
        actor: &User,
        op: &Op,
        now_ms: u64,
        limits: CommitLimits,
    ) -> Result<Commit, StoreError>;

    /// [`Store::commit_limited`] without size limits.
    async fn commit(
        &self,
        image: &ImageKey,
        actor: &User,
        op: &Op,
        now_ms: u64,
    ) -> Result<Commit, StoreError> {
        self.commit_limited(image, actor, op, now_ms, CommitLimits::UNLIMITED)
            .await
    }

    /// What a client resuming from `since` (or connecting fresh, with `None`) must apply.
    async fn catch_up(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<CatchUp, StoreError>;

    /// The current state of `image` and the position it reflects.
    async fn snapshot(&self, image: &ImageKey) -> Result<(Position, Snapshot), StoreError>;

    /// A named 32-byte server secret, created at random the first time it is asked for and the
    /// same ever after (and on every server sharing this store).
    async fn secret(&self, name: &str) -> Result<[u8; 32], StoreError>;
}
