//! The storage interface the rules run over: SQL-shaped reads and writes inside one
//! transaction that the backend has begun and will commit (or roll back).
//!
//! A backend ([`super::super::sqlite`], [`super::super::postgres`]) implements these two
//! traits on its transaction type and nothing else of the op rules: every decision (is this id free,
//! may this person edit, which `seq` comes next, what the event says) is made in
//! [`super`] from what these methods return. Each method is one statement (or one short
//! sequence of statements for one row) and says nothing about why it is called.
//!
//! Values cross the interface in the form they are stored in: ids as their wire strings,
//! anchors and authors as JSON text, event bodies as the exact JSON broadcast, sizes as
//! [`super::size`] weighs them. Row ids of `images` are the backend's (`i64`), used only to
//! address the other tables.
//!
//! Why `async fn` here although SQLite is blocking: PostgreSQL's client is async. SQLite's
//! methods never wait (they run on a blocking thread and return ready futures, see
//! `sqlite::run_ready`), so the same rules drive both.

use image_chat_protocol::SubjectKind;

use super::super::{BanEntry, ImageEntry, ImageKey, LockEntry, Page, StoreError};

/// An image's log as stored in `images`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageRow {
    /// The backend's row id, the key the other tables use.
    pub id: i64,
    /// The log's epoch (random, nonzero).
    pub epoch: u32,
    /// The last assigned `seq` (0: no event yet).
    pub head: u64,
    /// The weight of the image's discussions.
    pub bytes: u64,
}

/// A new row of `chats`.
#[derive(Clone, Copy, Debug)]
pub struct NewChat<'a> {
    /// The discussion's id.
    pub chat_id: &'a str,
    /// Its anchor, as JSON.
    pub anchor: &'a str,
    /// The id of the person who opened it (authorization checks it).
    pub author_id: &'a str,
    /// The `seq` that created it: discussions are listed in that order.
    pub created_seq: u64,
    /// Its weight without its comments.
    pub bytes: u64,
}

/// A new row of `comments`.
#[derive(Clone, Copy, Debug)]
pub struct NewComment<'a> {
    /// The comment's id (an opening comment has its discussion's id).
    pub comment_id: &'a str,
    /// The discussion it belongs to.
    pub chat_id: &'a str,
    /// The `seq` that added it: comments are listed in that order.
    pub seq: u64,
    /// The author's id (authorization checks it).
    pub author_id: &'a str,
    /// The author as shown, as JSON.
    pub author: &'a str,
    /// The text.
    pub text: &'a str,
    /// Server time it was added (ms since the Unix epoch).
    pub created_at: u64,
    /// Server time it was last edited.
    pub edited_at: Option<u64>,
    /// Its weight.
    pub bytes: u64,
}

/// What an edit needs of a stored comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredComment {
    /// The author's id.
    pub author_id: String,
    /// The author as shown, as JSON.
    pub author: String,
    /// When it was added.
    pub created_at: u64,
    /// Its weight.
    pub bytes: u64,
}

/// What resolving or moving needs of a stored discussion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChat {
    /// The id of the person who opened it.
    pub author_id: String,
    /// Its anchor, as JSON.
    pub anchor: String,
    /// Whether it is resolved.
    pub resolved: bool,
    /// Its weight without its comments.
    pub bytes: u64,
}

/// A new entry of an image's event log.
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    /// Its `seq`.
    pub seq: u64,
    /// The op's `broadcastId` (unique per image while the entry is kept).
    pub broadcast_id: &'a str,
    /// The op's idempotency fingerprint (see [`super::fingerprint`]).
    pub fingerprint: &'a [u8],
    /// The event as broadcast (JSON).
    pub body: &'a str,
}

/// One comment of an image with its discussion, in snapshot order (discussions by the `seq`
/// that created them, comments within one by the `seq` that added them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRow {
    /// The discussion's id.
    pub chat_id: String,
    /// The discussion's anchor, as JSON.
    pub anchor: String,
    /// Whether the discussion is resolved.
    pub resolved: bool,
    /// The comment's id.
    pub comment_id: String,
    /// The author as shown, as JSON.
    pub author: String,
    /// The text.
    pub text: String,
    /// When it was added.
    pub created_at: u64,
    /// When it was last edited.
    pub edited_at: Option<u64>,
}

/// Reads, inside one transaction that sees one consistent state of the database.
#[allow(
    async_fn_in_trait,
    reason = "used only with concrete backends, whose futures' Send-ness the compiler sees \
              (PostgreSQL's are Send; SQLite's needn't be: they run on a blocking thread)"
)]
pub trait ReadTx {
    /// The image's row, if it has one.
    async fn image(&mut self, key: &ImageKey) -> Result<Option<ImageRow>, StoreError>;

    /// The lowest `seq` still in the image's log.
    async fn oldest_event(&mut self, image: i64) -> Result<Option<u64>, StoreError>;

    /// Bytes of the bodies of the image's events after `seq`.
    async fn event_bytes_after(&mut self, image: i64, seq: u64) -> Result<u64, StoreError>;

    /// The image's events after `seq`, as `(seq, body)`, in `seq` order.
    async fn events_after(
        &mut self,
        image: i64,
        seq: u64,
    ) -> Result<Vec<(u64, String)>, StoreError>;

    /// The `(seq, fingerprint)` of the image's event committed under `broadcast_id`.
    async fn event_by_broadcast_id(
        &mut self,
        image: i64,
        broadcast_id: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError>;

    /// The author id of the discussion `chat_id` on the image.
    async fn chat_author(
        &mut self,
        image: i64,
        chat_id: &str,
    ) -> Result<Option<String>, StoreError>;

    /// The discussion `chat_id` on the image.
    async fn chat(&mut self, image: i64, chat_id: &str) -> Result<Option<StoredChat>, StoreError>;

    /// Whether the image has a comment `comment_id` (in any discussion).
    async fn comment_exists(&mut self, image: i64, comment_id: &str) -> Result<bool, StoreError>;

    /// The comment `comment_id` of the discussion `chat_id` on the image.
    async fn comment(
        &mut self,
        image: i64,
        chat_id: &str,
        comment_id: &str,
    ) -> Result<Option<StoredComment>, StoreError>;

    /// How many discussions the image holds.
    async fn count_chats(&mut self, image: i64) -> Result<u64, StoreError>;

    /// How many comments the discussion holds.
    async fn count_comments(&mut self, image: i64, chat_id: &str) -> Result<u64, StoreError>;

    /// The weight of the discussion and all its comments (0 if it does not exist).
    async fn chat_weight(&mut self, image: i64, chat_id: &str) -> Result<u64, StoreError>;

    /// Every comment of the image with its discussion, in snapshot order.
    async fn snapshot_rows(&mut self, image: i64) -> Result<Vec<SnapshotRow>, StoreError>;

    /// Bytes the tenant stores (0 if it stores none).
    async fn tenant_bytes(&mut self, tenant: &str) -> Result<u64, StoreError>;

    /// Bytes every tenant stores together.
    async fn total_bytes(&mut self) -> Result<u64, StoreError>;

    /// The secret stored under `name`.
    async fn secret(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Whether the image is locked (a row in `image_locks`) and whether the tenant bans
    /// `user_id` (a row in `bans`), in one statement: every commit asks.
    async fn restrictions(
        &mut self,
        key: &ImageKey,
        user_id: &str,
    ) -> Result<Restrictions, StoreError>;

    /// The tenant's rows of `image_locks`, newest first, after `page.after`.
    async fn locks(
        &mut self,
        tenant: &str,
        page: &Page<(u64, String)>,
    ) -> Result<Vec<LockEntry>, StoreError>;

    /// The tenant's rows of `bans`, newest first, after `page.after`.
    async fn bans(
        &mut self,
        tenant: &str,
        page: &Page<(u64, String)>,
    ) -> Result<Vec<BanEntry>, StoreError>;

    /// The tenant's rows of `images` of `kind` with their discussion count, latest comment
    /// time and lock, highest row id first, below `page.after`.
    async fn images(
        &mut self,
        tenant: &str,
        kind: SubjectKind,
        page: &Page<i64>,
    ) -> Result<Vec<ImageEntry<String>>, StoreError>;
}

/// What a commit must know about who may write on an image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restrictions {
    /// The image is locked read-only.
    pub locked: bool,
    /// The actor is banned on the tenant.
    pub banned: bool,
}

/// Writes, inside the one transaction of a commit. Everything the commit reads it reads
/// through [`ReadTx`] on the same transaction, after [`WriteTx::lock_image`].
#[allow(
    async_fn_in_trait,
    reason = "used only with concrete backends, whose futures' Send-ness the compiler sees"
)]
pub trait WriteTx: ReadTx {
    /// The image's row, locked until the transaction ends: no other transaction (on any
    /// connection, any server) changes the image or reads it for writing meanwhile. This lock
    /// is what makes `seq` gap-free and totally ordered.
    async fn lock_image(&mut self, key: &ImageKey) -> Result<Option<ImageRow>, StoreError>;

    /// Creates the image's row with an empty log in `epoch`, locked like [`Self::lock_image`];
    /// `None` if another transaction created it first (lock it then).
    async fn insert_image(
        &mut self,
        key: &ImageKey,
        epoch: u32,
    ) -> Result<Option<ImageRow>, StoreError>;

    /// Inserts a discussion.
    async fn insert_chat(&mut self, image: i64, chat: NewChat<'_>) -> Result<(), StoreError>;

    /// Inserts a comment.
    async fn insert_comment(
        &mut self,
        image: i64,
        comment: NewComment<'_>,
    ) -> Result<(), StoreError>;

    /// Replaces a comment's text, edit time and weight.
    async fn update_comment(
        &mut self,
        image: i64,
        comment_id: &str,
        text: &str,
        edited_at: u64,
        bytes: u64,
    ) -> Result<(), StoreError>;

    /// Deletes one comment.
    async fn delete_comment(&mut self, image: i64, comment_id: &str) -> Result<(), StoreError>;

    /// Replaces a discussion's anchor (JSON), resolved state and weight.
    async fn update_chat(
        &mut self,
        image: i64,
        chat_id: &str,
        anchor: &str,
        resolved: bool,
        bytes: u64,
    ) -> Result<(), StoreError>;

    /// Deletes a discussion and its comments.
    async fn delete_chat(&mut self, image: i64, chat_id: &str) -> Result<(), StoreError>;

    /// Adds `delta` (may be negative) to the image's weight, never below 0.
    async fn add_image_bytes(&mut self, image: i64, delta: i64) -> Result<(), StoreError>;

    /// Adds `delta` (may be negative) to the tenant's stored bytes, never below 0. `image` is
    /// the image the bytes belong to: a backend may keep a tenant's total in several rows,
    /// chosen by image, so that commits on different images do not wait for one row (an
    /// image's changes must always go to the same row).
    async fn add_tenant_bytes(
        &mut self,
        tenant: &str,
        image: i64,
        delta: i64,
    ) -> Result<(), StoreError>;

    /// Appends an event to the image's log.
    async fn append_event(&mut self, image: i64, event: NewEvent<'_>) -> Result<(), StoreError>;

    /// Moves the image's head (its last assigned `seq`) to `seq`.
    async fn set_head(&mut self, image: i64, seq: u64) -> Result<(), StoreError>;

    /// Drops the image's events up to and including `seq`.
    async fn prune_events(&mut self, image: i64, through: u64) -> Result<(), StoreError>;

    /// Stores `value` under `name` unless a secret of that name exists.
    async fn insert_secret(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Queues a webhook delivery (`delivery_id` unique) of `body` for `tenant`, due now.
    async fn enqueue_webhook(
        &mut self,
        tenant: &str,
        delivery_id: &str,
        body: &str,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Adds the image to `image_locks` at `now_ms` unless it is there; whether it was added.
    async fn insert_lock(&mut self, key: &ImageKey, now_ms: u64) -> Result<bool, StoreError>;

    /// Removes the image from `image_locks`; whether it was there.
    async fn delete_lock(&mut self, key: &ImageKey) -> Result<bool, StoreError>;

    /// Adds a ban unless the tenant already bans `user_id`; whether it was added.
    async fn insert_ban(
        &mut self,
        tenant: &str,
        user_id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError>;

    /// Removes a ban; whether there was one.
    async fn delete_ban(&mut self, tenant: &str, user_id: &str) -> Result<bool, StoreError>;
}
