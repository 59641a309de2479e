//! Durable state: discussions, comments and each image's event log, behind the [`Store`] trait.
//!
//! The server calls a store in this order for every op on an image: validate (done by the
//! protocol codec before the store is reached) → [`Store::commit`] (checks the op against the
//! current state, assigns the next `seq`, makes it durable) → ack → publish. A store returns
//! only after the change is durable: an acked op survives a crash.
//!
//! The op rules themselves (authorship, duplicate ids, limits, events, idempotency, `seq`,
//! catch-up) are written once in [`rules`], over a small transaction interface
//! ([`rules::tx`]). Implementations only run transactions and the SQL of that interface:
//! [`sqlite::SqliteStore`] (embedded, the default) and [`postgres::PostgresStore`] (one
//! database shared by the servers of a cluster). Every implementation runs the same
//! conformance suite (`tests/store_conformance/`).

pub mod daily;
pub mod postgres;
pub mod rules;
pub mod sqlite;

pub use daily::{DayDelta, DayUsage, UsageBatch, UsageCounts, ViewerPeak};
pub use rules::size;

use async_trait::async_trait;
use image_chat_protocol::{
    ErrorCode, Event, ImageId, Op, PageId, Position, Snapshot, Subject, SubjectKind, TenantId, User,
};
use thiserror::Error;

/// One image, or one page, of one tenant: the unit of ordering, fan-out, presence and resync.
/// (Named for images, which came first; a page's text is a subject like an image, with its own
/// discussions, event log, `seq` and `epoch`. A page and an image with the same id are two
/// subjects.)
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageKey {
    /// The tenant owning the image or page.
    pub tenant: TenantId,
    /// The image or page within the tenant.
    pub subject: Subject,
}

impl ImageKey {
    /// The key of an image.
    pub fn image(tenant: TenantId, image: ImageId) -> Self {
        Self {
            tenant,
            subject: Subject::Image(image),
        }
    }

    /// The key of a page.
    pub fn page(tenant: TenantId, page: PageId) -> Self {
        Self {
            tenant,
            subject: Subject::Page(page),
        }
    }

    /// Image or page.
    pub fn kind(&self) -> SubjectKind {
        self.subject.kind()
    }

    /// The image's or page's id.
    pub fn id(&self) -> &str {
        self.subject.as_str()
    }
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
    /// The op would take the image past its byte limit.
    #[error("this image holds as many bytes of discussions as it may")]
    ImageFull,
    /// The op would take the tenant, or the whole server, past its storage quota.
    #[error("the storage quota is used up")]
    QuotaExceeded,
    /// The op's anchor is not for this kind of subject (text on an image, a point on a page).
    #[error("that kind of anchor does not belong on this image or page")]
    WrongAnchorKind,
    /// The image is locked read-only and the actor is not a moderator.
    #[error("this image is locked: its discussions are read-only")]
    ImageLocked,
    /// The actor is banned from posting on this site.
    #[error("you may not post on this site")]
    Banned,
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
            Rejection::ImageFull => ErrorCode::ImageFull,
            Rejection::QuotaExceeded => ErrorCode::QuotaExceeded,
            Rejection::WrongAnchorKind => ErrorCode::WrongAnchorKind,
            Rejection::ImageLocked => ErrorCode::ImageLocked,
            Rejection::Banned => ErrorCode::Banned,
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
///
/// Bytes are counted as [`size`] weighs them (the JSON a snapshot carries). Only a commit that
/// makes a total grow is checked against it: an edit that shortens a comment, or a delete,
/// always passes, so an image or tenant over its limit (after the limit was lowered) can shrink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitLimits {
    /// Most discussions one image may hold (checked by `create-chat`).
    pub max_chats_per_image: u32,
    /// Most comments one discussion may hold, its first included (checked by `add-comment`).
    pub max_comments_per_thread: u32,
    /// Most bytes one image may hold (`image-full`). This is what bounds a snapshot.
    pub max_bytes_per_image: u64,
    /// Most bytes one tenant may hold over all its images (`quota-exceeded`).
    pub max_bytes_per_tenant: u64,
    /// Most bytes the whole store may hold over all tenants (`quota-exceeded`).
    pub max_bytes_total: u64,
    /// Also queue the committed change for the tenant's webhook: a row of the durable outbox
    /// written in the commit's own transaction ([`rules::outbox`]), so no committed change is
    /// ever missing from it and no refused one is in it. Not a limit, but decided per commit
    /// like them (the tenants file may gain or lose a webhook on reload).
    pub webhook: bool,
}

impl CommitLimits {
    /// No size limits (tests and tools).
    pub const UNLIMITED: CommitLimits = CommitLimits {
        max_chats_per_image: 0,
        max_comments_per_thread: 0,
        max_bytes_per_image: 0,
        max_bytes_per_tenant: 0,
        max_bytes_total: 0,
        webhook: false,
    };
}

/// Bytes stored (as [`size`] weighs them) by one image, its tenant, and the whole store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// The image.
    pub image: u64,
    /// Every image of the tenant.
    pub tenant: u64,
    /// Every image of every tenant.
    pub total: u64,
}

/// An image that is locked read-only (see [`Store::set_locked`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockEntry {
    /// The image.
    pub image: ImageId,
    /// When it was locked (ms since the Unix epoch).
    pub locked_at: u64,
}

/// A person banned from posting on one tenant's images (see [`Store::ban`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanEntry {
    /// The person's user id (`anon:…` or `sso:…`), as their comments carry it.
    pub user_id: String,
    /// Why, as the moderator wrote it (may be empty).
    pub reason: String,
    /// When the ban was made (ms since the Unix epoch).
    pub banned_at: u64,
}

/// One image of a tenant as the admin API lists it; with `I = PageId` ([`PageEntry`]), one
/// page (text mode), which the store lists the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageEntry<I = ImageId> {
    /// The store's row id: images are listed newest first by it, and it is the paging cursor.
    pub row: i64,
    /// The image (or page).
    pub image: I,
    /// Discussions it holds now.
    pub chats: u64,
    /// Bytes its discussions weigh.
    pub bytes: u64,
    /// When its latest comment was written or edited (ms), if it holds any.
    pub last_activity_at: Option<u64>,
    /// Whether it is locked.
    pub locked: bool,
}

/// One page (text mode) of a tenant as the store lists it.
pub type PageEntry = ImageEntry<PageId>;

impl<I> ImageEntry<I> {
    /// The same entry with its id converted (the backends read ids as strings).
    pub fn map_id<J>(self, id: impl FnOnce(I) -> J) -> ImageEntry<J> {
        ImageEntry {
            row: self.row,
            image: id(self.image),
            chats: self.chats,
            bytes: self.bytes,
            last_activity_at: self.last_activity_at,
            locked: self.locked,
        }
    }
}

/// Keyset paging of a store list: at most `limit` rows after `after` (a cursor the previous
/// page's last row gave).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<C> {
    /// Resume after this row (`None`: from the start).
    pub after: Option<C>,
    /// Most rows.
    pub limit: u32,
}

/// Events a catch-up may carry instead of a snapshot, in bytes, however small the snapshot:
/// below this, replaying events is cheap whatever the image weighs. Above it, a client gets
/// whichever is smaller, the events or the snapshot (so a `welcome` never carries more than
/// the larger of this and the image's byte limit).
pub const CATCH_UP_EVENT_BYTES_FLOOR: u64 = 64 * 1024;

/// A webhook delivery claimed from the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// The row (for [`Store::webhook_done`] / [`Store::webhook_retry`]).
    pub id: i64,
    /// The tenant whose webhook receives it.
    pub tenant: TenantId,
    /// The change's stable id (the receiver's idempotency key).
    pub delivery_id: String,
    /// The JSON body, fixed at commit.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// Durable discussions and per-image event logs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether commits take effect in the order their futures were first polled, whenever
    /// they complete: a commit future polled once holds its place (and its `seq`) against
    /// every commit polled after it. The session then queues an image's ops back to back and
    /// only orders their publishes ([`crate::app::Ordering`]). `false` (the default, and what
    /// a wrapping store must answer unless it forwards the commit at its first poll): commits
    /// of one image are run one at a time.
    fn commits_in_poll_order(&self) -> bool {
        false
    }

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

    /// What a client resuming from `since` (or connecting fresh, with `None`) must apply. The
    /// missed events are returned only while they weigh (as JSON) at most the larger of
    /// [`CATCH_UP_EVENT_BYTES_FLOOR`] and the image's current byte total; past that the snapshot
    /// is smaller and is returned instead. A catch-up is therefore bounded by the image's byte
    /// limit like a snapshot.
    async fn catch_up(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<CatchUp, StoreError>;

    /// The current state of `image` and the position it reflects.
    async fn snapshot(&self, image: &ImageKey) -> Result<(Position, Snapshot), StoreError>;

    /// Where `image`'s log stands (cheap: no discussion is read). A shared snapshot cache
    /// checks with it whether its copy is current.
    async fn position(&self, image: &ImageKey) -> Result<Position, StoreError> {
        Ok(self.snapshot(image).await?.0)
    }

    /// The events a client resuming from `since` missed, as [`Store::catch_up`] would return
    /// them, or `None` where `catch_up` would answer with a snapshot (which the caller then reads
    /// through its shared cache rather than have the store read it here).
    async fn missed_events(
        &self,
        image: &ImageKey,
        since: Option<Position>,
    ) -> Result<Option<(Position, Vec<Event>)>, StoreError> {
        Ok(match self.catch_up(image, since).await? {
            CatchUp::Events { position, events } => Some((position, events)),
            CatchUp::Snapshot { .. } => None,
        })
    }

    /// Bytes stored by `image`, its tenant and the whole store (what the byte limits count).
    async fn usage(&self, image: &ImageKey) -> Result<Usage, StoreError>;

    /// A named 32-byte server secret, created at random the first time it is asked for and the
    /// same ever after (and on every server sharing this store).
    async fn secret(&self, name: &str) -> Result<[u8; 32], StoreError>;

    /// Adds one node's usage `batch` in one transaction: counters are added to each day's
    /// (additive: any number of nodes add up), per-minute viewer peaks raised to the highest
    /// value reported per node ([`daily`]).
    async fn add_usage(&self, batch: &UsageBatch) -> Result<(), StoreError> {
        let _ = batch;
        Err(StoreError::Backend("this store keeps no usage".into()))
    }

    /// `tenant`'s usage on the days `from..=to` (`YYYY-MM-DD`), one row per day that has any,
    /// in day order.
    async fn read_usage(
        &self,
        tenant: &TenantId,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayUsage>, StoreError> {
        let _ = (tenant, from, to);
        Err(StoreError::Backend("this store keeps no usage".into()))
    }

    /// Claims up to `limit` webhook deliveries that are due at `now_ms` and not claimed by
    /// another node (or whose claim expired), until `lease_until_ms`: several nodes polling
    /// the outbox each get different rows. Oldest first.
    async fn claim_webhooks(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let _ = (now_ms, lease_until_ms, limit);
        Err(StoreError::Backend(
            "this store has no webhook outbox".into(),
        ))
    }

    /// Removes a delivered (or abandoned) webhook delivery from the outbox.
    async fn webhook_done(&self, id: i64) -> Result<(), StoreError> {
        let _ = id;
        Err(StoreError::Backend(
            "this store has no webhook outbox".into(),
        ))
    }

    /// Records a failed attempt: the delivery has had `attempts` and is due again at
    /// `due_ms` (its claim is released).
    async fn webhook_retry(&self, id: i64, attempts: u32, due_ms: u64) -> Result<(), StoreError> {
        let _ = (id, attempts, due_ms);
        Err(StoreError::Backend(
            "this store has no webhook outbox".into(),
        ))
    }

    /// Locks `image` read-only (`locked`) or unlocks it, at server time `now_ms`; whether that
    /// changed anything. While locked, every op on the image from an actor who is not a
    /// moderator is refused with [`Rejection::ImageLocked`], on every server sharing the store
    /// (checked inside the commit's transaction). An image never written can be locked.
    async fn set_locked(
        &self,
        image: &ImageKey,
        locked: bool,
        now_ms: u64,
    ) -> Result<bool, StoreError>;

    /// Whether `image` is locked.
    async fn locked(&self, image: &ImageKey) -> Result<bool, StoreError>;

    /// The tenant's locked images, most recently locked first; `page.after` is the
    /// `(locked_at, image)` of the previous page's last entry.
    async fn locks(
        &self,
        tenant: &TenantId,
        page: Page<(u64, ImageId)>,
    ) -> Result<Vec<LockEntry>, StoreError>;

    /// Bans `user_id` from posting on the tenant's images (every op of theirs is refused with
    /// [`Rejection::Banned`] from now on, on every server sharing the store); whether the ban is
    /// new (an existing ban keeps its reason and time).
    async fn ban(
        &self,
        tenant: &TenantId,
        user_id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError>;

    /// Lifts a ban; whether there was one.
    async fn unban(&self, tenant: &TenantId, user_id: &str) -> Result<bool, StoreError>;

    /// The tenant's bans, newest first; `page.after` is the `(banned_at, user_id)` of the
    /// previous page's last entry.
    async fn bans(
        &self,
        tenant: &TenantId,
        page: Page<(u64, String)>,
    ) -> Result<Vec<BanEntry>, StoreError>;

    /// The tenant's images, newest (first written) first; `page.after` is the previous page's
    /// last [`ImageEntry::row`].
    async fn images(
        &self,
        tenant: &TenantId,
        page: Page<i64>,
    ) -> Result<Vec<ImageEntry>, StoreError>;

    /// The tenant's pages (text mode: discussions on a page's text), newest (first written)
    /// first, paged like [`Store::images`]; a whole-tenant export needs them besides the
    /// images.
    async fn pages(&self, tenant: &TenantId, page: Page<i64>)
    -> Result<Vec<PageEntry>, StoreError>;

    /// Whether the store answers a trivial query now (`/readyz`): reads touch the database, so
    /// a missing, unreadable or unreachable database fails here rather than on a client's op.
    async fn ping(&self) -> Result<(), StoreError>;
}
