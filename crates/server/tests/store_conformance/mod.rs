//! The [`Store`] conformance suite: the behaviour every store implementation (SQLite,
//! PostgreSQL) must show, written once against the trait.
//!
//! Each `pub async fn` is one test. An implementation's test file provides a [`StoreFactory`]
//! and writes `store_conformance::every_test!(Factory);`, which makes one `#[tokio::test]` per
//! function: one list, so no backend can miss a test (the ones about concurrency get a
//! multi-threaded runtime, without which they would prove nothing). Tests use deterministic ids and times, so a failure reproduces exactly.
//!
//! The contract checked here, beyond the trait docs:
//! - `seq` starts at 1 per image and grows by exactly 1 per applied op; images and tenants have
//!   independent logs; chat and comment ids are unique per image (an id used on another image
//!   or by another tenant never blocks this one).
//! - A retry (same `broadcastId`, same actor, same content, any time) is `Duplicate` with the
//!   original seq while its event is retained; the same `broadcastId` with other content or
//!   from another actor is `BroadcastIdConflict`. A refused op commits nothing and does not use
//!   up its `broadcastId`.
//! - An image never written is at `{epoch: 0, seq: 0}`; resuming from exactly that on a
//!   still-empty image yields no events; the first commit gives the log a nonzero epoch.
//! - Replaying the log from empty with [`ImageState::apply`] gives the snapshot.
//! - A page is a subject of its own beside the images (a page and an image with the same id do
//!   not share anything); its events are named `*-text-chat`; it takes text anchors only, an
//!   image points and regions only (`WrongAnchorKind`, nothing committed).

mod operate;

pub use operate::*;

use std::future::Future;
use std::sync::Arc;

use image_chat_protocol::{
    AddComment, Anchor, BroadcastId, ChatChange, ChatId, CommentId, CreateChat, DeleteChat,
    DeleteComment, EditComment, Event, ImageId, ImageState, MoveChat, Op, PageId, Position,
    ResolveChat, Snapshot, SubjectKind, TenantId, User,
};
use image_chat_server::store::size::{SNAPSHOT_OVERHEAD_BYTES, chat_bytes, comment_bytes};
use image_chat_server::store::{
    CATCH_UP_EVENT_BYTES_FLOOR, CatchUp, Commit, CommitLimits, ImageKey, Page, Rejection, Store,
    StoreError,
};

/// How the suite obtains stores of the implementation under test.
pub trait StoreFactory {
    /// The implementation under test.
    type Store: Store;
    /// Where one store's data lives (a temp file, a database schema…). The suite keeps it alive
    /// for the whole test; dropping it may delete the data.
    type Storage;

    /// A store on new, empty storage, keeping at least `retention` events per image log.
    fn create(&self, retention: u64) -> impl Future<Output = (Self::Store, Self::Storage)>;

    /// A store on existing `storage`, after the previous store on it has been dropped: what a
    /// server restart sees.
    fn reopen(&self, storage: &Self::Storage, retention: u64) -> impl Future<Output = Self::Store>;

    /// Another store on `storage` while the stores already on it keep running: what a second
    /// server on the same database is (its own connections, nothing shared in memory).
    fn attach(&self, storage: &Self::Storage, retention: u64) -> impl Future<Output = Self::Store>;
}

/// One `#[tokio::test]` per suite function, named like it, run against `$factory`: the one list
/// of the suite's tests, shared by every backend's test file.
macro_rules! every_test {
    ($factory:expr) => {
        store_conformance::every_test!(@current_thread $factory;
            seq_is_gap_free_and_ordered,
            images_and_tenants_are_independent,
            unwritten_image_is_empty_at_epoch_zero,
            retried_op_is_applied_once,
            reused_broadcast_id_with_other_content_conflicts,
            rejected_op_commits_nothing,
            catch_up_returns_exactly_the_missed_events,
            catch_up_falls_back_to_a_snapshot,
            snapshot_equals_replayed_log,
            unknown_chat_is_rejected,
            ids_used_on_another_image_do_not_block_this_one,
            image_byte_limit_bounds_the_snapshot,
            tenant_and_total_quotas,
            catch_up_is_never_heavier_than_the_snapshot,
            unknown_comment_is_rejected,
            duplicate_ids_are_rejected,
            only_author_or_moderator_edits_a_comment,
            only_author_or_moderator_deletes_a_chat,
            only_author_or_moderator_deletes_a_reply,
            only_author_or_moderator_resolves_or_moves_a_chat,
            resolving_and_moving_respect_the_image_byte_limit,
            data_survives_reopening,
            secrets_are_created_once,
            ping_answers_on_a_working_store,
            pages_are_subjects_of_their_own,
            anchors_must_fit_the_subject,
            locks_refuse_everyone_but_moderators,
            bans_refuse_the_person_on_every_image_of_the_tenant,
            locks_and_bans_hold_across_servers,
            images_are_listed_newest_first,
            pages_are_listed_apart_from_images,
            usage_adds_up_across_nodes_and_days,
            webhook_outbox_follows_commits_and_claims,
        );
        // Commits from different tasks (or stores, as several servers on one database) must
        // really run at the same time.
        store_conformance::every_test!(@multi_thread $factory;
            concurrent_commits_get_unique_gap_free_seqs,
            concurrent_commits_across_images_with_rejections_in_between,
            several_servers_on_one_database_get_gap_free_seqs,
            tenant_quota_holds_across_servers,
            webhook_claims_are_disjoint_across_servers,
        );
    };
    (@current_thread $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                store_conformance::$name(&$factory).await;
            }
        )*
    };
    (@multi_thread $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                store_conformance::$name(&$factory).await;
            }
        )*
    };
}
pub(crate) use every_test;

/// Retention large enough that no test's log is ever pruned.
const KEEP_ALL: u64 = 10_000;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Deterministic canonical ids (UUID v4 values in their wire form): every call gives a new one.
#[derive(Default)]
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> String {
        self.0 += 1;
        let mut bytes = [0u8; 16];
        bytes[8..].copy_from_slice(&self.0.to_be_bytes());
        image_chat_protocol::ids::encode_uuid_v4(bytes)
    }
    fn chat(&mut self) -> ChatId {
        ChatId::new(self.next())
    }
    fn comment(&mut self) -> CommentId {
        CommentId::new(self.next())
    }
    fn bid(&mut self) -> BroadcastId {
        BroadcastId::new(self.next())
    }
}

fn user(id: &str, name: &str, is_moderator: bool) -> User {
    User {
        id: id.into(),
        name: name.into(),
        avatar_url: None,
        is_moderator,
        signed_in: false,
    }
}

fn alice() -> User {
    user("sso:alice", "Alice", false)
}

fn bob() -> User {
    user("anon:bob", "Bob", false)
}

fn moderator() -> User {
    user("sso:mod", "Mo", true)
}

fn key(tenant: &str, image: &str) -> ImageKey {
    ImageKey::image(TenantId::new(tenant), ImageId::new(image))
}

/// A new discussion; its opening comment gets the id `chat.opening_comment()`.
fn create_op(bid: BroadcastId, chat: &ChatId, text: &str) -> Op {
    Op::CreateChat(CreateChat {
        broadcast_id: bid,
        chat_id: chat.clone(),
        anchor: Anchor::point(0.25, 0.75),
        text: text.into(),
    })
}

fn add_op(bid: BroadcastId, chat: &ChatId, comment: &CommentId, text: &str) -> Op {
    Op::AddComment(AddComment {
        broadcast_id: bid,
        chat_id: chat.clone(),
        comment_id: comment.clone(),
        text: text.into(),
    })
}

fn edit_op(bid: BroadcastId, chat: &ChatId, comment: &CommentId, text: &str) -> Op {
    Op::EditComment(EditComment {
        broadcast_id: bid,
        chat_id: chat.clone(),
        comment_id: comment.clone(),
        text: text.into(),
    })
}

fn delete_op(bid: BroadcastId, chat: &ChatId) -> Op {
    Op::DeleteChat(DeleteChat {
        broadcast_id: bid,
        chat_id: chat.clone(),
    })
}

/// Commits and expects a new change.
async fn applied(store: &impl Store, image: &ImageKey, actor: &User, op: &Op, now: u64) -> Event {
    match store.commit(image, actor, op, now).await {
        Ok(Commit::Applied(event)) => event,
        other => panic!("expected {op:?} to be applied, got {other:?}"),
    }
}

/// Commits and expects a refusal.
async fn rejected(store: &impl Store, image: &ImageKey, actor: &User, op: &Op) -> Rejection {
    match store.commit(image, actor, op, 1).await {
        Err(StoreError::Rejected(r)) => r,
        other => panic!("expected {op:?} to be rejected, got {other:?}"),
    }
}

/// Creates a chat by `actor`; returns its id and first comment's id.
async fn new_chat(
    store: &impl Store,
    image: &ImageKey,
    ids: &mut Ids,
    actor: &User,
    text: &str,
) -> (ChatId, CommentId) {
    let chat = ids.chat();
    let comment = chat.opening_comment();
    applied(store, image, actor, &create_op(ids.bid(), &chat, text), 1).await;
    (chat, comment)
}

async fn position(store: &impl Store, image: &ImageKey) -> Position {
    store.snapshot(image).await.expect("snapshot").0
}

async fn current_snapshot(store: &impl Store, image: &ImageKey) -> Snapshot {
    store.snapshot(image).await.expect("snapshot").1
}

/// The whole log (the test must keep the retention above the head).
async fn whole_log(store: &impl Store, image: &ImageKey) -> Vec<Event> {
    let head = position(store, image).await;
    let since = Position {
        epoch: head.epoch,
        seq: 0,
    };
    match store.catch_up(image, Some(since)).await.expect("catch_up") {
        CatchUp::Events { position, events } => {
            assert_eq!(position, head);
            events
        }
        other => panic!("expected the whole log from {since:?}, got {other:?}"),
    }
}

fn replay(events: &[Event]) -> Snapshot {
    let mut state = ImageState::default();
    for event in events {
        state
            .apply(event)
            .unwrap_or_else(|e| panic!("event {event:?} does not apply: {e}"));
    }
    state.to_snapshot()
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(Event::seq).collect()
}

fn expect_events(result: CatchUp) -> (Position, Vec<Event>) {
    match result {
        CatchUp::Events { position, events } => (position, events),
        other => panic!("expected events, got {other:?}"),
    }
}

fn expect_snapshot(result: CatchUp) -> (Position, Snapshot) {
    match result {
        CatchUp::Snapshot { position, snapshot } => (position, snapshot),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

/// Asserts replaying the whole log gives the snapshot.
async fn assert_log_replays_to_snapshot(store: &impl Store, image: &ImageKey) {
    let log = whole_log(store, image).await;
    assert_eq!(replay(&log), current_snapshot(store, image).await);
}

// ---------------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------------

/// Every applied op gets the next seq (1, 2, 3…) in one nonzero epoch, and the log returns them
/// in that order.
pub async fn seq_is_gap_free_and_ordered<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (chat, comment) = new_chat(&store, &image, &mut ids, &alice(), "first").await;
    let mut events = vec![];
    for i in 0..9u64 {
        let op = if i % 2 == 0 {
            add_op(ids.bid(), &chat, &ids.comment(), "reply")
        } else {
            edit_op(ids.bid(), &chat, &comment, &format!("edit {i}"))
        };
        events.push(applied(&store, &image, &alice(), &op, 100 + i).await);
    }
    let epoch = events[0].epoch();
    assert_ne!(epoch, 0, "a written log has a nonzero epoch");
    assert!(events.iter().all(|e| e.epoch() == epoch));
    assert_eq!(seqs(&events), (2..=10).collect::<Vec<_>>());
    assert_eq!(position(&store, &image).await, Position { epoch, seq: 10 });
    assert_eq!(
        seqs(&whole_log(&store, &image).await),
        (1..=10).collect::<Vec<_>>()
    );
}

/// Two images of one tenant and the same image name in another tenant have separate logs,
/// states and seq counters; chat ids are scoped to the tenant.
pub async fn images_and_tenants_are_independent<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let a = key("t1", "shared-name");
    let b = key("t1", "other");
    let c = key("t2", "shared-name");
    let mut ids = Ids::default();
    let chat = ids.chat();

    let on_a = applied(
        &store,
        &a,
        &alice(),
        &create_op(ids.bid(), &chat, "on a"),
        1,
    )
    .await;
    // The same chat and comment ids in another tenant are a different discussion.
    let on_c = applied(
        &store,
        &c,
        &alice(),
        &create_op(ids.bid(), &chat, "on c"),
        1,
    )
    .await;
    let (chat_b, _) = new_chat(&store, &b, &mut ids, &bob(), "on b").await;
    let on_b_2 = applied(
        &store,
        &b,
        &bob(),
        &add_op(ids.bid(), &chat_b, &ids.comment(), "b2"),
        2,
    )
    .await;
    let on_a_2 = applied(
        &store,
        &a,
        &bob(),
        &add_op(ids.bid(), &chat, &ids.comment(), "a2"),
        2,
    )
    .await;

    assert_eq!((on_a.seq(), on_a_2.seq()), (1, 2));
    assert_eq!(on_c.seq(), 1);
    assert_eq!(on_b_2.seq(), 2);
    assert_eq!(position(&store, &c).await.seq, 1);

    let texts = |s: Snapshot| -> Vec<Vec<String>> {
        s.chats
            .iter()
            .map(|c| c.comments.iter().map(|m| m.text.clone()).collect())
            .collect()
    };
    assert_eq!(texts(current_snapshot(&store, &a).await), [["on a", "a2"]]);
    assert_eq!(texts(current_snapshot(&store, &b).await), [["on b", "b2"]]);
    assert_eq!(texts(current_snapshot(&store, &c).await), [["on c"]]);

    // Deleting tenant 2's chat leaves tenant 1's chat of the same id alone.
    applied(&store, &c, &alice(), &delete_op(ids.bid(), &chat), 3).await;
    assert!(current_snapshot(&store, &c).await.chats.is_empty());
    assert_eq!(current_snapshot(&store, &a).await.chats.len(), 1);
}

/// An image never written is at `{0, 0}` and empty; a refused op does not create its log; the
/// first applied op creates it with a nonzero epoch, after which `{0, 0}` is a stale position.
pub async fn unwritten_image_is_empty_at_epoch_zero<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "fresh");
    let zero = Position { epoch: 0, seq: 0 };
    let mut ids = Ids::default();

    assert_eq!(
        store.snapshot(&image).await.expect("snapshot"),
        (zero, Snapshot::default())
    );
    assert_eq!(
        expect_snapshot(store.catch_up(&image, None).await.expect("catch_up")),
        (zero, Snapshot::default())
    );
    assert_eq!(
        expect_events(store.catch_up(&image, Some(zero)).await.expect("catch_up")),
        (zero, vec![])
    );
    // A position from some other log: start over.
    let stale = Position { epoch: 7, seq: 3 };
    assert_eq!(
        expect_snapshot(store.catch_up(&image, Some(stale)).await.expect("catch_up")),
        (zero, Snapshot::default())
    );

    let missing = ids.chat();
    let r = rejected(
        &store,
        &image,
        &alice(),
        &add_op(ids.bid(), &missing, &ids.comment(), "x"),
    )
    .await;
    assert_eq!(r, Rejection::UnknownChat);
    assert_eq!(position(&store, &image).await, zero);

    new_chat(&store, &image, &mut ids, &alice(), "hello").await;
    let now = position(&store, &image).await;
    assert_ne!(now.epoch, 0);
    assert_eq!(now.seq, 1);
    let (position, snapshot) =
        expect_snapshot(store.catch_up(&image, Some(zero)).await.expect("catch_up"));
    assert_eq!(position, now);
    assert_eq!(snapshot.chats.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------

/// Each kind of op sent twice (the second time later) is one change: the retry is `Duplicate`
/// with the original seq and changes nothing — even when the state has moved on since.
pub async fn retried_op_is_applied_once<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let chat = ids.chat();
    let comment = chat.opening_comment();
    let ops = [
        create_op(ids.bid(), &chat, "first"),
        add_op(ids.bid(), &chat, &ids.comment(), "reply"),
        edit_op(ids.bid(), &chat, &comment, "first, edited"),
        delete_op(ids.bid(), &chat),
    ];
    for (i, op) in ops.iter().enumerate() {
        let seq = applied(&store, &image, &alice(), op, 10).await.seq();
        assert_eq!(seq, i as u64 + 1);
        let before = store.snapshot(&image).await.expect("snapshot");
        let retry = store.commit(&image, &alice(), op, 99).await.expect("retry");
        assert_eq!(retry, Commit::Duplicate { seq }, "retry of {op:?}");
        assert_eq!(store.snapshot(&image).await.expect("snapshot"), before);
    }
    // Every op retried again after the chat is gone: still the original seqs, nothing
    // re-created.
    for (i, op) in ops.iter().enumerate() {
        let retry = store
            .commit(&image, &alice(), op, 500)
            .await
            .expect("retry");
        assert_eq!(retry, Commit::Duplicate { seq: i as u64 + 1 });
    }
    assert_eq!(position(&store, &image).await.seq, 4);
    assert!(current_snapshot(&store, &image).await.chats.is_empty());
    assert_eq!(seqs(&whole_log(&store, &image).await), [1, 2, 3, 4]);
}

/// A `broadcastId` already used on the image with other content, another kind of op, or by
/// another person is refused as a conflict, and commits nothing.
pub async fn reused_broadcast_id_with_other_content_conflicts<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let chat = ids.chat();
    let comment = chat.opening_comment();
    let bid = ids.bid();
    applied(
        &store,
        &image,
        &alice(),
        &create_op(bid.clone(), &chat, "first"),
        1,
    )
    .await;
    let reply_bid = ids.bid();
    let reply = ids.comment();
    applied(
        &store,
        &image,
        &alice(),
        &add_op(reply_bid.clone(), &chat, &reply, "reply"),
        2,
    )
    .await;
    let before = store.snapshot(&image).await.expect("snapshot");

    let conflicts = [
        // Same kind, other text.
        (alice(), create_op(bid.clone(), &chat, "different")),
        // Same kind, other ids.
        (alice(), create_op(bid.clone(), &ids.chat(), "first")),
        // Another kind of op.
        (alice(), edit_op(bid.clone(), &chat, &comment, "first")),
        (alice(), delete_op(bid.clone(), &chat)),
        (alice(), add_op(reply_bid.clone(), &chat, &reply, "reply!")),
        // The very same op, but from someone else.
        (bob(), add_op(reply_bid.clone(), &chat, &reply, "reply")),
    ];
    for (actor, op) in &conflicts {
        assert_eq!(
            rejected(&store, &image, actor, op).await,
            Rejection::BroadcastIdConflict,
            "{op:?} by {}",
            actor.id
        );
    }
    assert_eq!(store.snapshot(&image).await.expect("snapshot"), before);
}

/// A refused op leaves no trace: the head does not move and its `broadcastId` can still be
/// used for a valid op.
pub async fn rejected_op_commits_nothing<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (chat, comment) = new_chat(&store, &image, &mut ids, &alice(), "first").await;
    let before = store.snapshot(&image).await.expect("snapshot");

    let bid = ids.bid();
    let forbidden = edit_op(bid.clone(), &chat, &comment, "not yours");
    assert_eq!(
        rejected(&store, &image, &bob(), &forbidden).await,
        Rejection::Forbidden
    );
    assert_eq!(store.snapshot(&image).await.expect("snapshot"), before);

    // The same broadcastId, now for an op that is allowed: applied as seq 2, not a conflict.
    let event = applied(
        &store,
        &image,
        &bob(),
        &add_op(bid, &chat, &ids.comment(), "a reply instead"),
        5,
    )
    .await;
    assert_eq!(event.seq(), 2);
}

// ---------------------------------------------------------------------------------------------
// Catch-up
// ---------------------------------------------------------------------------------------------

/// From every position of the current log, catch-up returns exactly the events after it, as
/// they were when committed.
pub async fn catch_up_returns_exactly_the_missed_events<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let chat = ids.chat();
    let comment = chat.opening_comment();
    let mut committed = vec![
        applied(
            &store,
            &image,
            &alice(),
            &create_op(ids.bid(), &chat, "first"),
            1_000,
        )
        .await,
    ];
    for i in 0..11u64 {
        let op = match i % 3 {
            0 => add_op(ids.bid(), &chat, &ids.comment(), &format!("reply {i}")),
            1 => edit_op(ids.bid(), &chat, &comment, &format!("edit {i}")),
            _ => create_op(ids.bid(), &ids.chat(), &format!("chat {i}")),
        };
        committed.push(applied(&store, &image, &bob_or_mod(i), &op, 1_001 + i).await);
    }
    let head = position(&store, &image).await;
    assert_eq!(head.seq, 12);
    for since in 0..=head.seq {
        let resume = Position {
            epoch: head.epoch,
            seq: since,
        };
        let (position, events) = expect_events(
            store
                .catch_up(&image, Some(resume))
                .await
                .expect("catch_up"),
        );
        assert_eq!(position, head);
        let from = usize::try_from(since).expect("small");
        assert_eq!(events, committed[from..], "resuming from {since}");
    }
}

/// Edits of alice's comment need a moderator; replies can come from anyone.
fn bob_or_mod(i: u64) -> User {
    if i % 3 == 1 { moderator() } else { bob() }
}

/// No position, another epoch, a position ahead of the head, or one older than the retained
/// log all get the full snapshot; the oldest position still covered by the log gets events.
pub async fn catch_up_falls_back_to_a_snapshot<F: StoreFactory>(factory: &F) {
    let retention = 4;
    let (store, _storage) = factory.create(retention).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let mut committed = vec![];
    for i in 0..10u64 {
        let op = create_op(ids.bid(), &ids.chat(), &format!("chat {i}"));
        committed.push(applied(&store, &image, &alice(), &op, i).await);
    }
    let (head, snapshot) = store.snapshot(&image).await.expect("snapshot");
    assert_eq!(head.seq, 10);
    assert_eq!(snapshot.chats.len(), 10, "pruning the log keeps the state");
    let at = |epoch: u32, seq: u64| Some(Position { epoch, seq });
    let other_epoch = if head.epoch == u32::MAX {
        1
    } else {
        head.epoch + 1
    };

    for since in [
        None,
        at(other_epoch, 10),
        at(other_epoch, 3),
        at(0, 0),
        at(head.epoch, 11),
        at(head.epoch, 0),
        // Needs events 6..=10, but only the last 4 (7..=10) must be kept.
        at(head.epoch, 5),
    ] {
        let (position, got) =
            expect_snapshot(store.catch_up(&image, since).await.expect("catch_up"));
        assert_eq!(
            (position, &got),
            (head, &snapshot),
            "resuming from {since:?}"
        );
    }
    // The oldest position the retained log covers: exactly the last `retention` events.
    let (position, events) = expect_events(
        store
            .catch_up(&image, at(head.epoch, 6))
            .await
            .expect("catch_up"),
    );
    assert_eq!(position, head);
    assert_eq!(events, committed[6..]);
    let (_, events) = expect_events(
        store
            .catch_up(&image, at(head.epoch, 10))
            .await
            .expect("catch_up"),
    );
    assert!(events.is_empty());
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// After every commit of a mixed script, replaying the log from empty gives the snapshot; the
/// snapshot lists chats in creation order and comments in thread order, with the committing
/// actor as author and the commit times.
pub async fn snapshot_equals_replayed_log<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let c1 = ids.chat();
    let c1m1 = c1.opening_comment();
    let c2 = ids.chat();
    let c3 = ids.chat();
    let c3m1 = c3.opening_comment();
    let (c1m2, c1m3, c3m2) = (ids.comment(), ids.comment(), ids.comment());
    let script = [
        (alice(), create_op(ids.bid(), &c1, "c1 first")),
        (bob(), create_op(ids.bid(), &c2, "c2 first")),
        (bob(), add_op(ids.bid(), &c1, &c1m2, "c1 reply by bob")),
        (alice(), create_op(ids.bid(), &c3, "c3 first")),
        (alice(), edit_op(ids.bid(), &c1, &c1m1, "c1 first, edited")),
        (alice(), add_op(ids.bid(), &c1, &c1m3, "c1 reply by alice")),
        (moderator(), edit_op(ids.bid(), &c1, &c1m2, "moderated")),
        (bob(), delete_op(ids.bid(), &c2)),
        (
            moderator(),
            add_op(ids.bid(), &c3, &c3m2, "c3 reply by mod"),
        ),
    ];
    for (i, (actor, op)) in script.iter().enumerate() {
        let now = 1_700_000_000_000 + i as u64;
        let event = applied(&store, &image, actor, op, now).await;
        // What the event says about the commit.
        match &event {
            Event::NewImageChat(e) | Event::NewTextChat(e) => {
                assert_eq!(e.chat.comments.len(), 1);
                assert_eq!(e.chat.comments[0].author, *actor);
                assert_eq!(e.chat.comments[0].created_at, now);
                assert_eq!(e.chat.comments[0].edited_at, None);
                assert_eq!(e.chat.anchor, Anchor::point(0.25, 0.75));
            }
            Event::ImageChatUpdated(e) | Event::UpdatedTextChat(e) => match &e.change {
                ChatChange::CommentAdded { comment } => {
                    assert_eq!(comment.author, *actor);
                    assert_eq!(comment.created_at, now);
                }
                ChatChange::CommentEdited { edited_at, .. } => assert_eq!(*edited_at, now),
                // Covered by the resolve / move / reply-deletion tests below.
                ChatChange::CommentDeleted { .. }
                | ChatChange::Resolved { .. }
                | ChatChange::Moved { .. } => {}
            },
            Event::DeletedImageChat(_) | Event::DeletedTextChat(_) => {}
        }
        assert_eq!(event.broadcast_id(), op.broadcast_id());
        assert_eq!(event.chat_id(), op.chat_id());
        assert_log_replays_to_snapshot(&store, &image).await;
    }

    let snapshot = current_snapshot(&store, &image).await;
    // (comment id, author id, text, edited?) per comment, per chat.
    type Thread = Vec<(CommentId, String, String, bool)>;
    let shape: Vec<(ChatId, Thread)> = snapshot
        .chats
        .iter()
        .map(|chat| {
            let comments = chat
                .comments
                .iter()
                .map(|m| {
                    let edited = m.edited_at.is_some();
                    (m.id.clone(), m.author.id.clone(), m.text.clone(), edited)
                })
                .collect();
            (chat.id.clone(), comments)
        })
        .collect();
    let t = |s: &str| s.to_owned();
    assert_eq!(
        shape,
        [
            (
                c1,
                vec![
                    (c1m1, alice().id, t("c1 first, edited"), true),
                    (c1m2, bob().id, t("moderated"), true),
                    (c1m3, alice().id, t("c1 reply by alice"), false),
                ]
            ),
            (
                c3,
                vec![
                    (c3m1, alice().id, t("c3 first"), false),
                    (c3m2, moderator().id, t("c3 reply by mod"), false),
                ]
            ),
        ]
    );
    // An edit keeps the comment's creation time.
    assert_eq!(snapshot.chats[0].comments[0].created_at, 1_700_000_000_000);
    assert_eq!(
        snapshot.chats[0].comments[0].edited_at,
        Some(1_700_000_000_004)
    );
}

// ---------------------------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------------------------

/// Replies, edits and deletes must name a discussion that exists on *this* image.
pub async fn unknown_chat_is_rejected<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let elsewhere = key("t1", "another-img");
    let other_tenant = key("t2", "img");
    let mut ids = Ids::default();
    new_chat(&store, &image, &mut ids, &alice(), "here").await;
    let (foreign, foreign_comment) =
        new_chat(&store, &elsewhere, &mut ids, &alice(), "elsewhere").await;
    let (deleted, deleted_comment) = new_chat(&store, &image, &mut ids, &alice(), "gone").await;
    applied(&store, &image, &alice(), &delete_op(ids.bid(), &deleted), 2).await;
    let never = ids.chat();
    let head = position(&store, &image).await;

    for (chat, comment) in [
        (&never, ids.comment()),
        (&foreign, foreign_comment.clone()),
        (&deleted, deleted_comment.clone()),
    ] {
        for op in [
            add_op(ids.bid(), chat, &ids.comment(), "reply"),
            edit_op(ids.bid(), chat, &comment, "edit"),
            delete_op(ids.bid(), chat),
        ] {
            // Even a moderator cannot act on what is not there.
            for actor in [alice(), moderator()] {
                assert_eq!(
                    rejected(&store, &image, &actor, &op).await,
                    Rejection::UnknownChat,
                    "{op:?}"
                );
            }
        }
    }
    // Another tenant's image with the same name does not see tenant 1's discussions.
    let op = add_op(ids.bid(), &foreign, &ids.comment(), "x");
    assert_eq!(
        rejected(&store, &other_tenant, &alice(), &op).await,
        Rejection::UnknownChat
    );
    assert_eq!(position(&store, &image).await, head);
    assert_eq!(current_snapshot(&store, &elsewhere).await.chats.len(), 1);
}

/// An edit must name a comment of the discussion it names.
pub async fn unknown_comment_is_rejected<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (c1, _) = new_chat(&store, &image, &mut ids, &alice(), "one").await;
    let (_, c2_first) = new_chat(&store, &image, &mut ids, &alice(), "two").await;
    let head = position(&store, &image).await;
    for comment in [ids.comment(), c2_first] {
        for actor in [alice(), moderator()] {
            let op = edit_op(ids.bid(), &c1, &comment, "edit");
            assert_eq!(
                rejected(&store, &image, &actor, &op).await,
                Rejection::UnknownComment
            );
        }
    }
    assert_eq!(position(&store, &image).await, head);
}

/// Chat and comment ids are unique within an image.
pub async fn duplicate_ids_are_rejected<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (chat, first) = new_chat(&store, &image, &mut ids, &alice(), "one").await;
    let (other_chat, other_first) = new_chat(&store, &image, &mut ids, &alice(), "two").await;
    let reply = ids.comment();
    applied(
        &store,
        &image,
        &bob(),
        &add_op(ids.bid(), &chat, &reply, "reply"),
        1,
    )
    .await;
    let head = position(&store, &image).await;
    let snapshot = current_snapshot(&store, &image).await;

    // The opening comment's id is the chat's: one id space for chats and comments.
    assert_eq!(first, chat.opening_comment());
    assert_eq!(other_first, other_chat.opening_comment());
    let as_chat = |comment: &CommentId| ChatId::new(comment.as_str());
    let as_comment = |chat: &ChatId| CommentId::new(chat.as_str());
    let cases = [
        // A chat id already used on this image.
        create_op(ids.bid(), &chat, "again"),
        create_op(ids.bid(), &other_chat, "again"),
        // A new chat whose id (the id of its opening comment) is a reply's id.
        create_op(ids.bid(), &as_chat(&reply), "again"),
        // A reply reusing a comment id of this thread or of another one.
        add_op(ids.bid(), &chat, &first, "again"),
        add_op(ids.bid(), &chat, &reply, "again"),
        add_op(ids.bid(), &chat, &other_first, "again"),
        // A reply reusing a chat id (of this thread, or of another one).
        add_op(ids.bid(), &chat, &as_comment(&chat), "again"),
        add_op(ids.bid(), &chat, &as_comment(&other_chat), "again"),
    ];
    for op in &cases {
        assert_eq!(
            rejected(&store, &image, &moderator(), op).await,
            Rejection::DuplicateId,
            "{op:?}"
        );
    }
    assert_eq!(position(&store, &image).await, head);
    assert_eq!(current_snapshot(&store, &image).await, snapshot);
}

/// Ids used on another image — of the same tenant or of another — do not block this image:
/// someone who learns or guesses the ids a person will use next cannot make that person's
/// creates and replies fail by using the ids first on an image of their own.
pub async fn ids_used_on_another_image_do_not_block_this_one<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let squatted = key("t1", "attacker-image");
    let other_tenant = key("t2", "victim-image");
    let victim = key("t1", "victim-image");
    let mut ids = Ids::default();
    let (chat, reply) = (ids.chat(), ids.comment());
    let (chat2, reply2) = (ids.chat(), ids.comment());
    // The attacker uses the victim's next ids first, as chats and as comments, elsewhere.
    for place in [&squatted, &other_tenant] {
        applied(
            &store,
            place,
            &bob(),
            &create_op(ids.bid(), &chat, "squat"),
            1,
        )
        .await;
        applied(
            &store,
            place,
            &bob(),
            &create_op(ids.bid(), &chat2, "squat"),
            1,
        )
        .await;
        let as_chat = ChatId::new(reply.as_str());
        applied(
            &store,
            place,
            &bob(),
            &create_op(ids.bid(), &as_chat, "squat"),
            1,
        )
        .await;
        applied(
            &store,
            place,
            &bob(),
            &add_op(ids.bid(), &chat2, &reply2, "squat"),
            1,
        )
        .await;
    }
    // The victim's creates and replies with those ids succeed on the victim's image.
    applied(
        &store,
        &victim,
        &alice(),
        &create_op(ids.bid(), &chat, "mine"),
        2,
    )
    .await;
    applied(
        &store,
        &victim,
        &alice(),
        &add_op(ids.bid(), &chat, &reply, "mine"),
        2,
    )
    .await;
    applied(
        &store,
        &victim,
        &alice(),
        &create_op(ids.bid(), &chat2, "mine"),
        2,
    )
    .await;
    applied(
        &store,
        &victim,
        &alice(),
        &add_op(ids.bid(), &chat2, &reply2, "mine"),
        2,
    )
    .await;
    let texts: Vec<Vec<String>> = current_snapshot(&store, &victim)
        .await
        .chats
        .iter()
        .map(|c| c.comments.iter().map(|m| m.text.clone()).collect())
        .collect();
    assert_eq!(texts, [["mine", "mine"], ["mine", "mine"]]);
    // Each image keeps its own discussion under the shared id; deleting one leaves the others.
    applied(&store, &squatted, &bob(), &delete_op(ids.bid(), &chat), 3).await;
    assert_eq!(current_snapshot(&store, &victim).await.chats.len(), 2);
    assert_eq!(current_snapshot(&store, &other_tenant).await.chats.len(), 3);
    // An edit names the comment on its own image only.
    applied(
        &store,
        &victim,
        &alice(),
        &edit_op(ids.bid(), &chat2, &reply2, "edited"),
        4,
    )
    .await;
    let squatter_texts: Vec<String> = current_snapshot(&store, &squatted)
        .await
        .chats
        .iter()
        .flat_map(|c| c.comments.iter().map(|m| m.text.clone()))
        .collect();
    assert!(squatter_texts.iter().all(|t| t == "squat"));
}

/// Only a comment's author or a moderator may edit it — owning the discussion is not enough.
pub async fn only_author_or_moderator_edits_a_comment<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (chat, alices) = new_chat(&store, &image, &mut ids, &alice(), "alice's").await;
    let bobs = ids.comment();
    applied(
        &store,
        &image,
        &bob(),
        &add_op(ids.bid(), &chat, &bobs, "bob's"),
        1,
    )
    .await;
    // A user with alice's name but another id is someone else.
    let impostor = user("anon:alice", "Alice", false);

    for (actor, comment) in [(&bob(), &alices), (&impostor, &alices), (&alice(), &bobs)] {
        let op = edit_op(ids.bid(), &chat, comment, "hijack");
        assert_eq!(
            rejected(&store, &image, actor, &op).await,
            Rejection::Forbidden,
            "{} editing {comment}",
            actor.id
        );
    }
    for (actor, comment) in [
        (&alice(), &alices),
        (&bob(), &bobs),
        (&moderator(), &alices),
        (&moderator(), &bobs),
    ] {
        let op = edit_op(ids.bid(), &chat, comment, &format!("by {}", actor.id));
        applied(&store, &image, actor, &op, 2).await;
    }
    let texts: Vec<String> = current_snapshot(&store, &image).await.chats[0]
        .comments
        .iter()
        .map(|c| c.text.clone())
        .collect();
    assert_eq!(texts, ["by sso:mod", "by sso:mod"]);
    // The moderator's edits did not change who wrote the comments.
    let authors: Vec<String> = current_snapshot(&store, &image).await.chats[0]
        .comments
        .iter()
        .map(|c| c.author.id.clone())
        .collect();
    assert_eq!(authors, [alice().id, bob().id]);
}

/// Only the discussion's author (author of its first comment) or a moderator may delete it —
/// having replied in it is not enough.
pub async fn only_author_or_moderator_deletes_a_chat<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (by_alice, _) = new_chat(&store, &image, &mut ids, &alice(), "one").await;
    let (also_by_alice, _) = new_chat(&store, &image, &mut ids, &alice(), "two").await;
    applied(
        &store,
        &image,
        &bob(),
        &add_op(ids.bid(), &by_alice, &ids.comment(), "bob's reply"),
        1,
    )
    .await;

    let op = delete_op(ids.bid(), &by_alice);
    assert_eq!(
        rejected(&store, &image, &bob(), &op).await,
        Rejection::Forbidden
    );
    assert_eq!(current_snapshot(&store, &image).await.chats.len(), 2);

    applied(
        &store,
        &image,
        &alice(),
        &delete_op(ids.bid(), &by_alice),
        2,
    )
    .await;
    applied(
        &store,
        &image,
        &moderator(),
        &delete_op(ids.bid(), &also_by_alice),
        3,
    )
    .await;
    assert!(current_snapshot(&store, &image).await.chats.is_empty());
    assert_log_replays_to_snapshot(&store, &image).await;
}

fn delete_comment_op(bid: BroadcastId, chat: &ChatId, comment: &CommentId) -> Op {
    Op::DeleteComment(DeleteComment {
        broadcast_id: bid,
        chat_id: chat.clone(),
        comment_id: comment.clone(),
    })
}

fn resolve_op(bid: BroadcastId, chat: &ChatId, resolved: bool) -> Op {
    Op::ResolveChat(ResolveChat {
        broadcast_id: bid,
        chat_id: chat.clone(),
        resolved,
    })
}

fn move_op(bid: BroadcastId, chat: &ChatId, anchor: Anchor) -> Op {
    Op::MoveChat(MoveChat {
        broadcast_id: bid,
        chat_id: chat.clone(),
        anchor,
    })
}

/// A reply is deleted by its author or a moderator, never by someone else; the opening
/// comment is never deleted on its own (`Forbidden`, whoever asks); an unknown reply is
/// `UnknownComment`. The image's weight drops by the reply's, and the log replays.
pub async fn only_author_or_moderator_deletes_a_reply<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (chat, opening) = new_chat(&store, &image, &mut ids, &alice(), "one").await;
    let (bobs, alices) = (ids.comment(), ids.comment());
    for (actor, comment) in [(bob(), &bobs), (alice(), &alices)] {
        applied(
            &store,
            &image,
            &actor,
            &add_op(ids.bid(), &chat, comment, "a reply"),
            1,
        )
        .await;
    }
    let before = store.usage(&image).await.expect("usage").image;
    for actor in [alice(), bob(), moderator()] {
        let op = delete_comment_op(ids.bid(), &chat, &opening);
        assert_eq!(
            rejected(&store, &image, &actor, &op).await,
            Rejection::Forbidden,
            "the opening comment goes only with its discussion"
        );
    }
    let op = delete_comment_op(ids.bid(), &chat, &bobs);
    assert_eq!(
        rejected(&store, &image, &alice(), &op).await,
        Rejection::Forbidden,
        "the discussion's author may not delete someone else's reply"
    );
    let op = delete_comment_op(ids.bid(), &chat, &ids.comment());
    assert_eq!(
        rejected(&store, &image, &moderator(), &op).await,
        Rejection::UnknownComment
    );
    let event = applied(
        &store,
        &image,
        &bob(),
        &delete_comment_op(ids.bid(), &chat, &bobs),
        2,
    )
    .await;
    assert!(matches!(
        event,
        Event::ImageChatUpdated(ref e)
            if e.change == ChatChange::CommentDeleted { comment_id: bobs.clone() }
    ));
    applied(
        &store,
        &image,
        &moderator(),
        &delete_comment_op(ids.bid(), &chat, &alices),
        3,
    )
    .await;
    let snapshot = current_snapshot(&store, &image).await;
    assert_eq!(snapshot.chats[0].comments.len(), 1);
    let after = store.usage(&image).await.expect("usage").image;
    assert!(after < before);
    assert_eq!(after, weight(&snapshot));
    assert_log_replays_to_snapshot(&store, &image).await;
}

/// Resolving, reopening and moving are for the discussion's author or a moderator; the
/// snapshot says `resolved` and carries the new (canonical) anchor, points and regions alike;
/// the image's weight follows (the flag and a longer anchor weigh), and the log replays.
pub async fn only_author_or_moderator_resolves_or_moves_a_chat<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (chat, _) = new_chat(&store, &image, &mut ids, &alice(), "one").await;
    for op in [
        resolve_op(ids.bid(), &chat, true),
        move_op(ids.bid(), &chat, Anchor::point(0.1, 0.1)),
    ] {
        assert_eq!(
            rejected(&store, &image, &bob(), &op).await,
            Rejection::Forbidden
        );
    }
    assert_eq!(
        rejected(
            &store,
            &image,
            &alice(),
            &resolve_op(ids.bid(), &ids.chat(), true)
        )
        .await,
        Rejection::UnknownChat
    );
    applied(
        &store,
        &image,
        &alice(),
        &resolve_op(ids.bid(), &chat, true),
        2,
    )
    .await;
    let snapshot = current_snapshot(&store, &image).await;
    assert!(snapshot.chats[0].resolved);
    assert_eq!(
        store.usage(&image).await.expect("usage").image,
        weight(&snapshot)
    );
    let region = Anchor::region(0.2, 0.3, 0.4, 0.25);
    applied(
        &store,
        &image,
        &moderator(),
        &move_op(ids.bid(), &chat, region.clone()),
        3,
    )
    .await;
    let snapshot = current_snapshot(&store, &image).await;
    assert_eq!(snapshot.chats[0].anchor, region);
    assert!(snapshot.chats[0].resolved, "moving keeps it resolved");
    assert_eq!(
        store.usage(&image).await.expect("usage").image,
        weight(&snapshot)
    );
    applied(
        &store,
        &image,
        &moderator(),
        &resolve_op(ids.bid(), &chat, false),
        4,
    )
    .await;
    applied(
        &store,
        &image,
        &alice(),
        &move_op(ids.bid(), &chat, Anchor::point(0.123_456, 1.0)),
        5,
    )
    .await;
    let snapshot = current_snapshot(&store, &image).await;
    assert!(!snapshot.chats[0].resolved);
    assert_eq!(snapshot.chats[0].anchor, Anchor::point(0.12346, 1.0));
    assert_eq!(
        store.usage(&image).await.expect("usage").image,
        weight(&snapshot)
    );
    assert_log_replays_to_snapshot(&store, &image).await;
    // A retry of the move is the same op; the same id moving elsewhere conflicts.
    let again = move_op(ids.bid(), &chat, Anchor::point(0.5, 0.5));
    let seq = match store.commit(&image, &alice(), &again, 6).await {
        Ok(Commit::Applied(e)) => e.seq(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        store.commit(&image, &alice(), &again, 7).await,
        Ok(Commit::Duplicate { seq: s }) if s == seq
    ));
    let Op::MoveChat(mut elsewhere) = again else {
        unreachable!()
    };
    elsewhere.anchor = Anchor::point(0.6, 0.5);
    assert_eq!(
        rejected(&store, &image, &alice(), &Op::MoveChat(elsewhere)).await,
        Rejection::BroadcastIdConflict
    );
}

/// Resolving and moving to a longer anchor grow the image: refused when it is full
/// (`ImageFull`, nothing committed); reopening and deleting a reply always pass.
pub async fn resolving_and_moving_respect_the_image_byte_limit<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (chat, _) = new_chat(&store, &image, &mut ids, &alice(), "one").await;
    let reply = ids.comment();
    applied(
        &store,
        &image,
        &alice(),
        &add_op(ids.bid(), &chat, &reply, "r"),
        1,
    )
    .await;
    let full = store.usage(&image).await.expect("usage").image;
    let limits = byte_limits(full, 0, 0);
    for op in [
        resolve_op(ids.bid(), &chat, true),
        move_op(ids.bid(), &chat, Anchor::region(0.1, 0.1, 0.2, 0.2)),
    ] {
        assert_eq!(
            commit_with(&store, &image, &alice(), &op, limits).await,
            Err(Rejection::ImageFull)
        );
    }
    assert!(!current_snapshot(&store, &image).await.chats[0].resolved);
    assert_eq!(
        commit_with(
            &store,
            &image,
            &alice(),
            &delete_comment_op(ids.bid(), &chat, &reply),
            limits
        )
        .await,
        Ok(())
    );
    // The freed reply made room for the flag.
    assert_eq!(
        commit_with(
            &store,
            &image,
            &alice(),
            &resolve_op(ids.bid(), &chat, true),
            limits
        )
        .await,
        Ok(())
    );
    assert_eq!(
        commit_with(
            &store,
            &image,
            &alice(),
            &resolve_op(ids.bid(), &chat, false),
            limits
        )
        .await,
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------------
// Durability, concurrency, secrets
// ---------------------------------------------------------------------------------------------

/// Chats, comments, the log, positions, idempotency records and secrets survive closing and
/// reopening the storage, and the log continues where it stopped, in the same epoch.
pub async fn data_survives_reopening<F: StoreFactory>(factory: &F) {
    let (store, storage) = factory.create(KEEP_ALL).await;
    let a = key("t1", "img");
    let b = key("t2", "img");
    let mut ids = Ids::default();
    let chat = ids.chat();
    let comment = chat.opening_comment();
    let create = create_op(ids.bid(), &chat, "first");
    applied(&store, &a, &alice(), &create, 1).await;
    applied(
        &store,
        &a,
        &bob(),
        &add_op(ids.bid(), &chat, &ids.comment(), "reply"),
        2,
    )
    .await;
    applied(
        &store,
        &a,
        &alice(),
        &edit_op(ids.bid(), &chat, &comment, "edited"),
        3,
    )
    .await;
    let (doomed, _) = new_chat(&store, &a, &mut ids, &bob(), "doomed").await;
    applied(&store, &a, &bob(), &delete_op(ids.bid(), &doomed), 5).await;
    new_chat(&store, &b, &mut ids, &bob(), "tenant 2").await;

    let before_a = store.snapshot(&a).await.expect("snapshot");
    let before_b = store.snapshot(&b).await.expect("snapshot");
    let log_a = whole_log(&store, &a).await;
    let secret = store.secret("anon-token").await.expect("secret");
    drop(store);

    let store = factory.reopen(&storage, KEEP_ALL).await;
    assert_eq!(store.snapshot(&a).await.expect("snapshot"), before_a);
    assert_eq!(store.snapshot(&b).await.expect("snapshot"), before_b);
    assert_eq!(whole_log(&store, &a).await, log_a);
    assert_eq!(store.secret("anon-token").await.expect("secret"), secret);
    let (position, events) = expect_events(
        store
            .catch_up(
                &a,
                Some(Position {
                    epoch: before_a.0.epoch,
                    seq: 3,
                }),
            )
            .await
            .expect("catch_up"),
    );
    assert_eq!((position, events), (before_a.0, log_a[3..].to_vec()));

    // A retry from before the restart is still recognised.
    assert_eq!(
        store.commit(&a, &alice(), &create, 9).await.expect("retry"),
        Commit::Duplicate { seq: 1 }
    );
    // The log goes on in the same epoch.
    let next = applied(
        &store,
        &a,
        &alice(),
        &add_op(ids.bid(), &chat, &ids.comment(), "after restart"),
        10,
    )
    .await;
    assert_eq!(
        next.position(),
        Position {
            epoch: before_a.0.epoch,
            seq: before_a.0.seq + 1
        }
    );
    assert_log_replays_to_snapshot(&store, &a).await;
}

/// Many tasks committing on one image at once still get unique, gap-free seqs, each task's in
/// increasing order, and a log that replays to the snapshot. Run it on a multi-threaded
/// runtime so the commits really overlap.
pub async fn concurrent_commits_get_unique_gap_free_seqs<F: StoreFactory>(factory: &F) {
    const TASKS: u64 = 8;
    const OPS_PER_TASK: u64 = 25;
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let store = Arc::new(store);
    let image = key("t1", "busy");
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        let image = image.clone();
        tasks.push(tokio::spawn(async move {
            // Disjoint id ranges per task, so every op is valid whatever the interleaving.
            let mut ids = Ids(task << 32);
            let actor = user(&format!("anon:{task}"), "Tasker", false);
            let chat = ids.chat();
            let mut seqs = Vec::new();
            for i in 0..OPS_PER_TASK {
                let op = if i == 0 {
                    create_op(ids.bid(), &chat, "start")
                } else {
                    add_op(ids.bid(), &chat, &ids.comment(), &format!("{task}/{i}"))
                };
                match store.commit(&image, &actor, &op, i).await {
                    Ok(Commit::Applied(event)) => seqs.push(event.seq()),
                    other => panic!("task {task} op {i}: {other:?}"),
                }
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.expect("task panicked");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one task's seqs increase: {seqs:?}"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=TASKS * OPS_PER_TASK).collect::<Vec<_>>());
    let log = whole_log(&*store, &image).await;
    assert_eq!(seqs(&log), all);
    assert_eq!(replay(&log), current_snapshot(&*store, &image).await);
    let snapshot = current_snapshot(&*store, &image).await;
    assert_eq!(snapshot.chats.len(), usize::try_from(TASKS).expect("small"));
    assert!(
        snapshot
            .chats
            .iter()
            .all(|c| c.comments.len() == usize::try_from(OPS_PER_TASK).expect("small"))
    );
}

/// Many tasks committing at once on several images, some of their ops refused: every image's
/// applied ops get unique, gap-free seqs (each task's increasing), each refused op commits
/// nothing and leaves its neighbours' changes in place (a backend committing waiting ops
/// together, as SQLite's group commit does, must undo only the refused one), and its
/// `broadcastId` stays free. Run it on a multi-threaded runtime so the commits really overlap.
pub async fn concurrent_commits_across_images_with_rejections_in_between<F: StoreFactory>(
    factory: &F,
) {
    const IMAGES: u64 = 4;
    const TASKS_PER_IMAGE: u64 = 4;
    const OPS_PER_TASK: u64 = 16;
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for image_no in 0..IMAGES {
        for t in 0..TASKS_PER_IMAGE {
            let store = Arc::clone(&store);
            let image = key(&format!("t{}", image_no % 2), &format!("img{image_no}"));
            let task = image_no * TASKS_PER_IMAGE + t;
            tasks.push(tokio::spawn(async move {
                let mut ids = Ids(task << 32);
                let actor = user(&format!("anon:{task}"), "Tasker", false);
                let chat = ids.chat();
                let mut seqs = Vec::new();
                let mut refused = Vec::new();
                for i in 0..OPS_PER_TASK {
                    if i % 3 == 2 {
                        // A comment on a discussion that does not exist: refused.
                        let bid = ids.bid();
                        let op = add_op(bid.clone(), &ids.chat(), &ids.comment(), "lost");
                        match store.commit(&image, &actor, &op, i).await {
                            Err(StoreError::Rejected(Rejection::UnknownChat)) => refused.push(bid),
                            other => panic!("task {task} op {i} must be refused: {other:?}"),
                        }
                        continue;
                    }
                    let op = if i == 0 {
                        create_op(ids.bid(), &chat, "start")
                    } else {
                        add_op(ids.bid(), &chat, &ids.comment(), &format!("{task}/{i}"))
                    };
                    match store.commit(&image, &actor, &op, i).await {
                        Ok(Commit::Applied(event)) => seqs.push(event.seq()),
                        other => panic!("task {task} op {i}: {other:?}"),
                    }
                }
                (image, actor, chat, seqs, refused)
            }));
        }
    }
    let mut per_image: std::collections::BTreeMap<ImageKey, Vec<u64>> = Default::default();
    let mut finished = Vec::new();
    for task in tasks {
        let (image, actor, chat, seqs, refused) = task.await.expect("task panicked");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one task's seqs increase: {seqs:?}"
        );
        per_image.entry(image.clone()).or_default().extend(&seqs);
        finished.push((image, actor, chat, seqs.len(), refused));
    }
    for (image, all) in &mut per_image {
        all.sort_unstable();
        let n = u64::try_from(all.len()).expect("small");
        assert_eq!(
            *all,
            (1..=n).collect::<Vec<_>>(),
            "{image:?}: gap-free seqs"
        );
        let log = whole_log(&*store, image).await;
        assert_eq!(
            &seqs(&log),
            all,
            "{image:?}: the log holds the applied ops only"
        );
        assert_eq!(replay(&log), current_snapshot(&*store, image).await);
    }
    // Ids beyond every task's range.
    let mut ids = Ids((IMAGES * TASKS_PER_IMAGE) << 32);
    for (image, actor, chat, applied_ops, refused) in finished {
        // Every applied op of the task is there, whatever was refused around it.
        let snapshot = current_snapshot(&*store, &image).await;
        let mine = snapshot
            .chats
            .iter()
            .find(|c| c.id == chat)
            .expect("the task's discussion");
        assert_eq!(mine.comments.len(), applied_ops);
        // A refused op did not use up its broadcastId.
        let bid = refused.into_iter().next().expect("a refused op");
        let reply = add_op(bid, &chat, &ids.comment(), "reused id");
        applied(&*store, &image, &actor, &reply, 99).await;
    }
}

/// Several servers on one database (each its own store, connections and memory) creating on one
/// new image at once: the image's log is created once, every op gets a unique seq, the seqs are
/// gap-free and each server's in increasing order; an op sent to every server at once (a client
/// retrying through another node) is applied exactly once and acknowledged everywhere with the
/// same seq. Nothing in-process orders these commits: only the database does. Run it on a
/// multi-threaded runtime so the commits really overlap.
pub async fn several_servers_on_one_database_get_gap_free_seqs<F: StoreFactory>(factory: &F) {
    const SERVERS: u64 = 3;
    const TASKS_PER_SERVER: u64 = 3;
    const CREATES_PER_TASK: u64 = 8;
    let (first, storage) = factory.create(KEEP_ALL).await;
    let mut servers = vec![Arc::new(first)];
    for _ in 1..SERVERS {
        servers.push(Arc::new(factory.attach(&storage, KEEP_ALL).await));
    }
    let image = key("t1", "shared");
    let shared_actor = user("anon:everyone", "Everyone", false);
    // Ids far from every task's range.
    let mut shared_ids = Ids(u64::MAX / 2);
    let shared_op = create_op(shared_ids.bid(), &shared_ids.chat(), "once");
    let mut tasks = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        for t in 0..TASKS_PER_SERVER {
            let task = s as u64 * TASKS_PER_SERVER + t;
            let (server, image) = (Arc::clone(server), image.clone());
            let (shared_actor, shared_op) = (shared_actor.clone(), shared_op.clone());
            tasks.push(tokio::spawn(async move {
                let mut ids = Ids(task << 32);
                let actor = user(&format!("anon:{task}"), "Node user", false);
                let mut applied = Vec::new();
                for i in 0..CREATES_PER_TASK {
                    let op = create_op(ids.bid(), &ids.chat(), &format!("{task}/{i}"));
                    match server.commit(&image, &actor, &op, i).await {
                        Ok(Commit::Applied(event)) => applied.push(event.seq()),
                        other => panic!("task {task} op {i}: {other:?}"),
                    }
                }
                // Then the same op on every server, while other tasks still create.
                let shared = server
                    .commit(&image, &shared_actor, &shared_op, 99)
                    .await
                    .unwrap_or_else(|e| panic!("task {task}, shared op: {e}"));
                (task, applied, shared)
            }));
        }
    }
    let mut all = Vec::new();
    let mut shared_seqs = Vec::new();
    let mut shared_applied = 0;
    for task in tasks {
        let (task, applied, shared) = task.await.expect("task panicked");
        assert!(
            applied.windows(2).all(|w| w[0] < w[1]),
            "task {task}'s seqs increase: {applied:?}"
        );
        all.extend(applied);
        match shared {
            Commit::Applied(event) => {
                shared_applied += 1;
                shared_seqs.push(event.seq());
                all.push(event.seq());
            }
            Commit::Duplicate { seq } => shared_seqs.push(seq),
        }
    }
    assert_eq!(
        shared_applied, 1,
        "the op sent to every server is applied once"
    );
    assert!(
        shared_seqs.windows(2).all(|w| w[0] == w[1]),
        "one seq for the shared op: {shared_seqs:?}"
    );
    all.sort_unstable();
    let total = SERVERS * TASKS_PER_SERVER * CREATES_PER_TASK + 1;
    assert_eq!(
        all,
        (1..=total).collect::<Vec<_>>(),
        "unique, gap-free seqs"
    );
    // Every server reads the same log and state.
    let log = whole_log(&*servers[0], &image).await;
    assert_eq!(seqs(&log), all);
    let epoch = log[0].position().epoch;
    assert!(
        log.iter().all(|e| e.position().epoch == epoch),
        "one log, one epoch"
    );
    let snapshot = current_snapshot(&*servers[0], &image).await;
    assert_eq!(replay(&log), snapshot);
    for server in &servers[1..] {
        assert_eq!(whole_log(&**server, &image).await, log);
        assert_eq!(current_snapshot(&**server, &image).await, snapshot);
    }
}

/// `ping` answers `Ok` on a working store, before and after writes.
pub async fn ping_answers_on_a_working_store<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    store.ping().await.expect("ping on a new store");
    let mut ids = Ids::default();
    new_chat(&store, &key("t1", "img"), &mut ids, &alice(), "hi").await;
    store.ping().await.expect("ping after a commit");
}

/// A named secret is 32 random bytes, created once and the same ever after — also when first
/// asked for by several tasks at once; different names get different secrets.
pub async fn secrets_are_created_once<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let store = Arc::new(store);
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.secret("racy").await.expect("secret") })
        })
        .collect();
    let mut values = Vec::new();
    for racer in racers {
        values.push(racer.await.expect("task panicked"));
    }
    assert!(values.windows(2).all(|w| w[0] == w[1]), "{values:?}");

    let a = store.secret("a").await.expect("secret");
    assert_eq!(store.secret("a").await.expect("secret"), a);
    let b = store.secret("b").await.expect("secret");
    assert_ne!(a, b);
    assert_ne!(a, values[0]);
    assert_ne!(a, [0u8; 32]);
}

// ---------------------------------------------------------------------------------------------
// Bytes: per-image limit, quotas, bounded catch-ups (issue 12, items 2 and 5)
// ---------------------------------------------------------------------------------------------

/// Commits with `limits` and returns the refusal, if any.
async fn commit_with(
    store: &impl Store,
    image: &ImageKey,
    actor: &User,
    op: &Op,
    limits: CommitLimits,
) -> Result<(), Rejection> {
    match store.commit_limited(image, actor, op, 1, limits).await {
        Ok(_) => Ok(()),
        Err(StoreError::Rejected(r)) => Err(r),
        Err(other) => panic!("backend failure: {other}"),
    }
}

fn byte_limits(image: u64, tenant: u64, total: u64) -> CommitLimits {
    CommitLimits {
        max_bytes_per_image: image,
        max_bytes_per_tenant: tenant,
        max_bytes_total: total,
        ..CommitLimits::UNLIMITED
    }
}

/// The weight of a snapshot as `store::size` defines it: what the image's byte total must be.
fn weight(snapshot: &Snapshot) -> u64 {
    snapshot
        .chats
        .iter()
        .map(|c| {
            chat_bytes(&c.id, &c.anchor, c.resolved)
                + c.comments.iter().map(comment_bytes).sum::<u64>()
        })
        .sum()
}

/// A tenant's quota when several servers commit on many of its images at once: each create
/// weighs the same and the quota has room for exactly `FIT` of them. Commits on other images
/// are not serialized against each other (that would make a cluster no faster than one
/// server), so creates committing at the same moment may pass together: at least `FIT` and
/// at most one more per concurrent task are applied, never a refusal while there was room,
/// the tenant's total is exactly what was applied, and once the race is over the next create
/// is refused. Run it on a multi-threaded runtime so the commits really overlap.
pub async fn tenant_quota_holds_across_servers<F: StoreFactory>(factory: &F) {
    const SERVERS: usize = 3;
    const TASKS_PER_SERVER: usize = 3;
    const CREATES_PER_TASK: usize = 4;
    const FIT: u64 = 10;
    let (first, storage) = factory.create(KEEP_ALL).await;
    let mut servers = vec![Arc::new(first)];
    for _ in 1..SERVERS {
        servers.push(Arc::new(factory.attach(&storage, KEEP_ALL).await));
    }
    // What one create weighs (ids have one length, the text and time are the same).
    let mut ids = Ids(u64::MAX / 2);
    let probe = key("probe", "img");
    commit_with(
        &*servers[0],
        &probe,
        &alice(),
        &create_op(ids.bid(), &ids.chat(), "same size"),
        CommitLimits::UNLIMITED,
    )
    .await
    .expect("probe");
    let weight = servers[0].usage(&probe).await.expect("usage").image;
    let limits = byte_limits(0, FIT * weight + weight / 2, 0);
    let mut tasks = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        for t in 0..TASKS_PER_SERVER {
            let task = (s * TASKS_PER_SERVER + t) as u64;
            let server = Arc::clone(server);
            tasks.push(tokio::spawn(async move {
                let mut ids = Ids(task << 32);
                let mut applied = 0u64;
                for i in 0..CREATES_PER_TASK {
                    // Each on an image of its own: nothing but the quota orders them.
                    let image = key("t1", &format!("img-{task}-{i}"));
                    let op = create_op(ids.bid(), &ids.chat(), "same size");
                    match commit_with(&*server, &image, &alice(), &op, limits).await {
                        Ok(()) => applied += 1,
                        Err(Rejection::QuotaExceeded) => {}
                        Err(other) => panic!("task {task}: {other:?}"),
                    }
                }
                applied
            }));
        }
    }
    let mut applied = 0;
    for task in tasks {
        applied += task.await.expect("task panicked");
    }
    let concurrent = (SERVERS * TASKS_PER_SERVER) as u64;
    assert!(
        (FIT..FIT + concurrent).contains(&applied),
        "{applied} creates applied for a quota with room for {FIT}"
    );
    let usage = servers[1]
        .usage(&key("t1", "img-0-0"))
        .await
        .expect("usage");
    assert_eq!(usage.tenant, applied * weight, "the total is exact");
    let late = create_op(ids.bid(), &ids.chat(), "same size");
    assert_eq!(
        commit_with(&*servers[2], &key("t1", "late"), &alice(), &late, limits).await,
        Err(Rejection::QuotaExceeded)
    );
}

/// An image holds at most its byte limit: the op that would pass it is `ImageFull` and commits
/// nothing; deleting frees room; an edit that shrinks a comment always passes; the stored total
/// is exactly the snapshot's weight, and the snapshot's JSON is bounded by the limit.
pub async fn image_byte_limit_bounds_the_snapshot<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let limit = 4_000;
    let limits = byte_limits(limit, 0, 0);
    let text = "é".repeat(400);
    let mut chats = vec![];
    let refused = loop {
        let chat = ids.chat();
        match commit_with(
            &store,
            &image,
            &alice(),
            &create_op(ids.bid(), &chat, &text),
            limits,
        )
        .await
        {
            Ok(()) => chats.push(chat),
            Err(r) => break r,
        }
        assert!(chats.len() < 100, "the byte limit never refused");
    };
    assert_eq!(refused, Rejection::ImageFull);
    let head = position(&store, &image).await;
    let snapshot = current_snapshot(&store, &image).await;
    let usage = store.usage(&image).await.expect("usage");
    assert_eq!(usage.image, weight(&snapshot));
    assert!(usage.image <= limit);
    let json = serde_json::to_string(&snapshot).expect("json");
    assert!(json.len() as u64 <= limit + SNAPSHOT_OVERHEAD_BYTES);
    // A reply and a growing edit are refused too; a shrinking edit passes.
    let first = chats[0].opening_comment();
    let reply = add_op(ids.bid(), &chats[0], &ids.comment(), &text);
    assert_eq!(
        commit_with(&store, &image, &alice(), &reply, limits).await,
        Err(Rejection::ImageFull)
    );
    let longer = edit_op(ids.bid(), &chats[0], &first, &"é".repeat(800));
    assert_eq!(
        commit_with(&store, &image, &alice(), &longer, limits).await,
        Err(Rejection::ImageFull)
    );
    assert_eq!(
        position(&store, &image).await,
        head,
        "refusals commit nothing"
    );
    let shorter = edit_op(ids.bid(), &chats[0], &first, "short");
    commit_with(&store, &image, &alice(), &shorter, limits)
        .await
        .expect("shrinking edit");
    // Deleting frees the discussion's bytes exactly.
    commit_with(
        &store,
        &image,
        &alice(),
        &delete_op(ids.bid(), &chats[1]),
        limits,
    )
    .await
    .expect("delete");
    let after = store.usage(&image).await.expect("usage");
    assert_eq!(after.image, weight(&current_snapshot(&store, &image).await));
    assert!(after.image < usage.image);
    commit_with(
        &store,
        &image,
        &alice(),
        &create_op(ids.bid(), &ids.chat(), &text),
        limits,
    )
    .await
    .expect("room again");
    // Unlimited commits still count bytes.
    applied(
        &store,
        &image,
        &alice(),
        &create_op(ids.bid(), &ids.chat(), "x"),
        1,
    )
    .await;
    let usage = store.usage(&image).await.expect("usage");
    assert_eq!(usage.image, weight(&current_snapshot(&store, &image).await));
}

/// A tenant's quota and the store-wide quota count every image: past them an op that grows
/// anything is `QuotaExceeded`; other tenants are unaffected by a tenant's quota; the totals
/// survive a reopen.
pub async fn tenant_and_total_quotas<F: StoreFactory>(factory: &F) {
    let (store, storage) = factory.create(KEEP_ALL).await;
    let mut ids = Ids::default();
    let text = "x".repeat(500);
    let tenant_quota = byte_limits(0, 2_000, 0);
    let mut n = 0;
    let refused = loop {
        let image = key("t1", &format!("img-{n}"));
        n += 1;
        let op = create_op(ids.bid(), &ids.chat(), &text);
        if let Err(r) = commit_with(&store, &image, &alice(), &op, tenant_quota).await {
            break r;
        }
        assert!(n < 100, "the tenant quota never refused");
    };
    assert_eq!(refused, Rejection::QuotaExceeded);
    let usage = store.usage(&key("t1", "img-0")).await.expect("usage");
    assert!(usage.tenant <= 2_000 && usage.tenant > 1_000, "{usage:?}");
    // Another tenant still has room under the same per-tenant quota…
    let other = key("t2", "img");
    commit_with(
        &store,
        &other,
        &alice(),
        &create_op(ids.bid(), &ids.chat(), &text),
        tenant_quota,
    )
    .await
    .expect("another tenant is not affected");
    // …but not under a store-wide quota that everything together has reached.
    let total = store.usage(&other).await.expect("usage").total;
    assert_eq!(
        total,
        usage.tenant + store.usage(&other).await.expect("usage").tenant
    );
    let whole = byte_limits(0, 0, total + 10);
    assert_eq!(
        commit_with(
            &store,
            &other,
            &alice(),
            &create_op(ids.bid(), &ids.chat(), &text),
            whole
        )
        .await,
        Err(Rejection::QuotaExceeded)
    );
    drop(store);
    let store = factory.reopen(&storage, KEEP_ALL).await;
    assert_eq!(store.usage(&other).await.expect("usage").total, total);
}

/// A catch-up carries the missed events only while they weigh no more than the larger of
/// `CATCH_UP_EVENT_BYTES_FLOOR` and the snapshot; past that it is the (smaller) snapshot.
/// `missed_events` and `position` agree with `catch_up`.
pub async fn catch_up_is_never_heavier_than_the_snapshot<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (chat, first) = new_chat(&store, &image, &mut ids, &alice(), "one").await;
    let start = position(&store, &image).await;
    assert_eq!(store.position(&image).await.expect("position"), start);
    // A few small edits: cheap to replay, so events.
    for i in 0..3 {
        let op = edit_op(ids.bid(), &chat, &first, &format!("edit {i}"));
        applied(&store, &image, &alice(), &op, 2).await;
    }
    let (_, events) = expect_events(store.catch_up(&image, Some(start)).await.expect("catch_up"));
    assert_eq!(events.len(), 3);
    let missed = store
        .missed_events(&image, Some(start))
        .await
        .expect("missed");
    assert_eq!(missed.map(|(_, e)| e.len()), Some(3));
    // Many edits of a long comment, ending short: the events outweigh the snapshot by far.
    let long = "y".repeat(3_900);
    let rounds = CATCH_UP_EVENT_BYTES_FLOOR / 3_900 + 2;
    for _ in 0..rounds {
        applied(
            &store,
            &image,
            &alice(),
            &edit_op(ids.bid(), &chat, &first, &long),
            3,
        )
        .await;
    }
    applied(
        &store,
        &image,
        &alice(),
        &edit_op(ids.bid(), &chat, &first, "short"),
        4,
    )
    .await;
    let head = position(&store, &image).await;
    let (at, snapshot) =
        expect_snapshot(store.catch_up(&image, Some(start)).await.expect("catch_up"));
    assert_eq!(at, head);
    assert_eq!(snapshot, current_snapshot(&store, &image).await);
    assert_eq!(
        store
            .missed_events(&image, Some(start))
            .await
            .expect("missed"),
        None
    );
    assert_eq!(store.position(&image).await.expect("position"), head);
    // Resuming from the head is still "nothing missed".
    let (_, none) = expect_events(store.catch_up(&image, Some(head)).await.expect("catch_up"));
    assert!(none.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Pages (discussions on page text)
// ---------------------------------------------------------------------------------------------

fn page(tenant: &str, page: &str) -> ImageKey {
    ImageKey::page(TenantId::new(tenant), PageId::new(page))
}

const ARTICLE: &str = "The harbour at dawn. Fishing boats leave before six; by seven the quay is \
                       quiet again and the gulls take over.";

/// The anchor of `passage` in [`ARTICLE`], as the widget builds it.
fn passage(passage: &str) -> Anchor {
    Anchor::Text(image_chat_anchor::describe_passage(ARTICLE, passage).expect("in the article"))
}

fn create_on(bid: BroadcastId, chat: &ChatId, anchor: Anchor, text: &str) -> Op {
    Op::CreateChat(CreateChat {
        broadcast_id: bid,
        chat_id: chat.clone(),
        anchor,
        text: text.into(),
    })
}

/// A text discussion's whole life on a page: created, replied to, edited, re-anchored,
/// resolved, a reply deleted, deleted; every event is a `*-text-chat` one, the log replays to
/// the snapshot, a resume gets exactly the missed events; and an image with the page's id
/// (another subject) sees none of it.
pub async fn pages_are_subjects_of_their_own<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let on_page = page("t1", "https://example.com/post#chapter-1");
    let same_id_image = key("t1", "https://example.com/post#chapter-1");
    let mut ids = Ids::default();
    let chat = ids.chat();
    let reply = ids.comment();

    let created = applied(
        &store,
        &on_page,
        &alice(),
        &create_on(
            ids.bid(),
            &chat,
            passage("Fishing boats leave"),
            "Why so early?",
        ),
        10,
    )
    .await;
    let Event::NewTextChat(created) = created else {
        panic!("a page's discussion is a new-text-chat: {created:?}")
    };
    assert_eq!(
        (created.seq, created.chat.anchor.clone()),
        (1, passage("Fishing boats leave"))
    );
    let mid = position(&store, &on_page).await;
    let script = [
        (bob(), add_op(ids.bid(), &chat, &reply, "The tide.")),
        (
            alice(),
            edit_op(ids.bid(), &chat, &chat.opening_comment(), "Why before six?"),
        ),
        (
            alice(),
            Op::MoveChat(MoveChat {
                broadcast_id: ids.bid(),
                chat_id: chat.clone(),
                anchor: passage("Fishing boats leave before six"),
            }),
        ),
        (
            moderator(),
            Op::ResolveChat(ResolveChat {
                broadcast_id: ids.bid(),
                chat_id: chat.clone(),
                resolved: true,
            }),
        ),
        (
            bob(),
            Op::DeleteComment(DeleteComment {
                broadcast_id: ids.bid(),
                chat_id: chat.clone(),
                comment_id: reply.clone(),
            }),
        ),
    ];
    for (i, (actor, op)) in script.iter().enumerate() {
        let event = applied(&store, &on_page, actor, op, 20 + i as u64).await;
        assert!(
            matches!(event, Event::UpdatedTextChat(_)),
            "a change on a page is an updated-text-chat: {event:?}"
        );
    }
    let snapshot = current_snapshot(&store, &on_page).await;
    assert_eq!(snapshot.chats.len(), 1);
    assert_eq!(
        snapshot.chats[0].anchor,
        passage("Fishing boats leave before six")
    );
    assert!(snapshot.chats[0].resolved);
    assert_eq!(snapshot.chats[0].comments.len(), 1);
    assert_log_replays_to_snapshot(&store, &on_page).await;
    // A client that saw the creation resumes with exactly the five changes after it.
    let (at, missed) = expect_events(store.catch_up(&on_page, Some(mid)).await.expect("catch up"));
    assert_eq!(seqs(&missed), [2, 3, 4, 5, 6]);
    assert_eq!(at.seq, 6);
    assert!(missed.iter().all(|e| e.subject_kind() == SubjectKind::Page));

    // The image of the same id is another subject: empty, its own log and ids.
    assert_eq!(
        position(&store, &same_id_image).await,
        Position { epoch: 0, seq: 0 }
    );
    let on_image = applied(
        &store,
        &same_id_image,
        &bob(),
        &create_op(ids.bid(), &chat, "same chat id, on the image"),
        40,
    )
    .await;
    assert!(matches!(on_image, Event::NewImageChat(ref e) if e.seq == 1));
    assert_eq!(current_snapshot(&store, &on_page).await, snapshot);

    let deleted = applied(&store, &on_page, &alice(), &delete_op(ids.bid(), &chat), 50).await;
    assert!(matches!(deleted, Event::DeletedTextChat(ref e) if e.seq == 7));
    assert!(current_snapshot(&store, &on_page).await.chats.is_empty());
    assert_eq!(
        current_snapshot(&store, &same_id_image).await.chats.len(),
        1
    );
    assert_log_replays_to_snapshot(&store, &on_page).await;

    // Locks are per subject too: locking the image leaves the page open, and a locked page
    // takes ops from moderators only.
    assert!(
        store
            .set_locked(&same_id_image, true, 60)
            .await
            .expect("lock")
    );
    assert!(!store.locked(&on_page).await.expect("locked"));
    let open_chat = ids.chat();
    let op = create_on(ids.bid(), &open_chat, passage("the gulls"), "still open");
    applied(&store, &on_page, &bob(), &op, 61).await;
    assert!(store.set_locked(&on_page, true, 62).await.expect("lock"));
    let reply = add_op(ids.bid(), &open_chat, &ids.comment(), "locked?");
    assert_eq!(
        rejected(&store, &on_page, &bob(), &reply).await,
        Rejection::ImageLocked
    );
    applied(&store, &on_page, &moderator(), &reply, 63).await;
}

/// Text anchors only on pages, points and regions only on images: anything else is refused
/// with `WrongAnchorKind` and commits nothing (no log is even created).
pub async fn anchors_must_fit_the_subject<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let on_page = page("t1", "article");
    let on_image = key("t1", "article");
    let mut ids = Ids::default();
    let chat = ids.chat();
    let text = passage("the quay");
    for anchor in [Anchor::point(0.5, 0.5), Anchor::region(0.1, 0.1, 0.2, 0.2)] {
        let op = create_on(ids.bid(), &chat, anchor, "on a page?");
        assert_eq!(
            rejected(&store, &on_page, &alice(), &op).await,
            Rejection::WrongAnchorKind
        );
    }
    let op = create_on(ids.bid(), &chat, text.clone(), "on an image?");
    assert_eq!(
        rejected(&store, &on_image, &alice(), &op).await,
        Rejection::WrongAnchorKind
    );
    assert_eq!(
        position(&store, &on_page).await,
        Position { epoch: 0, seq: 0 }
    );
    assert_eq!(
        position(&store, &on_image).await,
        Position { epoch: 0, seq: 0 }
    );
    // A discussion on the page cannot be moved onto a point either.
    applied(
        &store,
        &on_page,
        &alice(),
        &create_on(ids.bid(), &chat, text, "here"),
        1,
    )
    .await;
    let moved = Op::MoveChat(MoveChat {
        broadcast_id: ids.bid(),
        chat_id: chat.clone(),
        anchor: Anchor::point(0.5, 0.5),
    });
    assert_eq!(
        rejected(&store, &on_page, &alice(), &moved).await,
        Rejection::WrongAnchorKind
    );
    assert_eq!(position(&store, &on_page).await.seq, 1);
}

// ---------------------------------------------------------------------------------------------
// Moderation: image locks, bans, the admin listing of images (issue 16)
// ---------------------------------------------------------------------------------------------

fn first_page<C>(limit: u32) -> Page<C> {
    Page { after: None, limit }
}

/// A locked image takes ops from moderators only; a refused op commits nothing; a retry of an
/// op committed before the lock is still acknowledged; other images and tenants are not
/// touched; unlocking restores writing. Locking is idempotent, and an image never written can
/// be locked.
pub async fn locks_refuse_everyone_but_moderators<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let create = create_op(ids.bid(), &ids.chat(), "before the lock");
    applied(&store, &image, &alice(), &create, 1).await;
    let before = position(&store, &image).await;

    assert!(!store.locked(&image).await.expect("locked"));
    assert!(store.set_locked(&image, true, 50).await.expect("lock"));
    assert!(
        !store
            .set_locked(&image, true, 60)
            .await
            .expect("lock again")
    );
    assert!(store.locked(&image).await.expect("locked"));
    let op = create_op(ids.bid(), &ids.chat(), "after");
    assert_eq!(
        rejected(&store, &image, &alice(), &op).await,
        Rejection::ImageLocked
    );
    assert_eq!(
        rejected(&store, &image, &bob(), &op).await,
        Rejection::ImageLocked
    );
    assert_eq!(position(&store, &image).await, before, "nothing committed");
    // The retry of an op committed before the lock is answered from the log.
    let retry = store
        .commit(&image, &alice(), &create, 2)
        .await
        .expect("retry");
    assert_eq!(retry, Commit::Duplicate { seq: 1 });
    applied(&store, &image, &moderator(), &op, 3).await;
    // Other images, and the same image name of another tenant, are not locked.
    for other in [key("t1", "img2"), key("t2", "img")] {
        assert!(!store.locked(&other).await.expect("locked"));
        new_chat(&store, &other, &mut ids, &alice(), "elsewhere").await;
    }
    // An image never written can be locked, and its first op is refused.
    let fresh = key("t1", "fresh");
    assert!(store.set_locked(&fresh, true, 70).await.expect("lock"));
    let op = create_op(ids.bid(), &ids.chat(), "x");
    assert_eq!(
        rejected(&store, &fresh, &alice(), &op).await,
        Rejection::ImageLocked
    );
    assert_eq!(
        position(&store, &fresh).await,
        Position { epoch: 0, seq: 0 }
    );

    let locks = store
        .locks(&TenantId::new("t1"), first_page(10))
        .await
        .expect("locks");
    let listed: Vec<(&str, u64)> = locks
        .iter()
        .map(|l| (l.image.as_str(), l.locked_at))
        .collect();
    assert_eq!(listed, [("fresh", 70), ("img", 50)]);
    let page = store
        .locks(
            &TenantId::new("t1"),
            Page {
                after: Some((70, ImageId::new("fresh"))),
                limit: 10,
            },
        )
        .await
        .expect("locks");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].image.as_str(), "img");
    assert!(
        store
            .locks(&TenantId::new("t2"), first_page(10))
            .await
            .expect("locks")
            .is_empty()
    );

    assert!(store.set_locked(&image, false, 80).await.expect("unlock"));
    assert!(
        !store
            .set_locked(&image, false, 90)
            .await
            .expect("unlock again")
    );
    let op = create_op(ids.bid(), &ids.chat(), "open again");
    applied(&store, &image, &alice(), &op, 4).await;
    assert_log_replays_to_snapshot(&store, &image).await;
}

/// A ban refuses every op of the person on every image of the tenant (and nothing of anyone
/// else's, nor on other tenants); banning is idempotent; bans are listed newest first, paged;
/// unbanning restores writing.
pub async fn bans_refuse_the_person_on_every_image_of_the_tenant<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let t1 = TenantId::new("t1");
    let image = key("t1", "img");
    let mut ids = Ids::default();
    let (chat, _) = new_chat(&store, &image, &mut ids, &bob(), "bob's").await;

    assert!(store.ban(&t1, "anon:bob", "spam", 100).await.expect("ban"));
    assert!(
        !store
            .ban(&t1, "anon:bob", "other reason", 200)
            .await
            .expect("ban again")
    );
    assert!(store.ban(&t1, "sso:carol", "", 150).await.expect("ban"));
    let before = position(&store, &image).await;
    for op in [
        create_op(ids.bid(), &ids.chat(), "x"),
        add_op(ids.bid(), &chat, &ids.comment(), "y"),
        delete_op(ids.bid(), &chat),
    ] {
        assert_eq!(
            rejected(&store, &image, &bob(), &op).await,
            Rejection::Banned
        );
        let elsewhere = key("t1", "img2");
        if matches!(op, Op::CreateChat(_)) {
            assert_eq!(
                rejected(&store, &elsewhere, &bob(), &op).await,
                Rejection::Banned
            );
        }
    }
    assert_eq!(position(&store, &image).await, before, "nothing committed");
    // Alice is not banned; bob is not banned on another tenant.
    new_chat(&store, &image, &mut ids, &alice(), "fine").await;
    new_chat(&store, &key("t2", "img"), &mut ids, &bob(), "fine there").await;

    let bans = store.bans(&t1, first_page(1)).await.expect("bans");
    assert_eq!(bans.len(), 1);
    assert_eq!(
        (
            bans[0].user_id.as_str(),
            bans[0].reason.as_str(),
            bans[0].banned_at
        ),
        ("sso:carol", "", 150)
    );
    let rest = store
        .bans(
            &t1,
            Page {
                after: Some((150, "sso:carol".to_owned())),
                limit: 10,
            },
        )
        .await
        .expect("bans");
    assert_eq!(rest.len(), 1);
    assert_eq!(
        (
            rest[0].user_id.as_str(),
            rest[0].reason.as_str(),
            rest[0].banned_at
        ),
        ("anon:bob", "spam", 100)
    );
    assert!(
        store
            .bans(&TenantId::new("t2"), first_page(10))
            .await
            .expect("bans")
            .is_empty()
    );

    assert!(store.unban(&t1, "anon:bob").await.expect("unban"));
    assert!(!store.unban(&t1, "anon:bob").await.expect("unban again"));
    applied(&store, &image, &bob(), &delete_op(ids.bid(), &chat), 9).await;
    assert_log_replays_to_snapshot(&store, &image).await;
}

/// A lock or ban written through one server holds for the very next op on another server on
/// the same database (nothing is cached in memory).
pub async fn locks_and_bans_hold_across_servers<F: StoreFactory>(factory: &F) {
    let (one, storage) = factory.create(KEEP_ALL).await;
    let two = factory.attach(&storage, KEEP_ALL).await;
    let image = key("t1", "img");
    let mut ids = Ids::default();
    new_chat(&two, &image, &mut ids, &alice(), "warm up").await;
    assert!(one.set_locked(&image, true, 10).await.expect("lock"));
    assert!(two.locked(&image).await.expect("locked"));
    let op = create_op(ids.bid(), &ids.chat(), "x");
    assert_eq!(
        rejected(&two, &image, &alice(), &op).await,
        Rejection::ImageLocked
    );
    assert!(one.set_locked(&image, false, 20).await.expect("unlock"));
    applied(&two, &image, &alice(), &op, 2).await;
    assert!(
        one.ban(&TenantId::new("t1"), "sso:alice", "", 30)
            .await
            .expect("ban")
    );
    let op = create_op(ids.bid(), &ids.chat(), "y");
    assert_eq!(
        rejected(&two, &image, &alice(), &op).await,
        Rejection::Banned
    );
}

/// The admin listing: a tenant's images, first written last first, paged by row, with their
/// discussion count, weight, latest activity and lock; nothing of other tenants.
pub async fn images_are_listed_newest_first<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let t1 = TenantId::new("t1");
    let mut ids = Ids::default();
    for (name, chats) in [("a", 1), ("b", 2), ("c", 1)] {
        for i in 0..chats {
            let op = create_op(ids.bid(), &ids.chat(), "x");
            applied(&store, &key("t1", name), &alice(), &op, 1_000 + i).await;
        }
    }
    new_chat(&store, &key("t2", "z"), &mut ids, &alice(), "other tenant").await;
    assert!(
        store
            .set_locked(&key("t1", "b"), true, 5)
            .await
            .expect("lock")
    );
    // An edit is activity too.
    let (chat, _) = new_chat(&store, &key("t1", "a"), &mut ids, &alice(), "to edit").await;
    let edit = edit_op(ids.bid(), &chat, &chat.opening_comment(), "edited");
    applied(&store, &key("t1", "a"), &alice(), &edit, 9_000).await;

    let first = store.images(&t1, first_page(2)).await.expect("images");
    let names: Vec<&str> = first.iter().map(|e| e.image.as_str()).collect();
    assert_eq!(names, ["c", "b"]);
    assert_eq!((first[1].chats, first[1].locked), (2, true));
    assert_eq!(first[1].last_activity_at, Some(1_001));
    assert!(first[1].bytes > 0);
    assert!(!first[0].locked);
    let rest = store
        .images(
            &t1,
            Page {
                after: Some(first[1].row),
                limit: 2,
            },
        )
        .await
        .expect("images");
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].image.as_str(), rest[0].chats), ("a", 2));
    assert_eq!(rest[0].last_activity_at, Some(9_000));
    let snapshot = current_snapshot(&store, &key("t1", "a")).await;
    assert_eq!(snapshot.chats.len() as u64, rest[0].chats);
    assert!(
        store
            .images(&TenantId::new("t3"), first_page(5))
            .await
            .expect("images")
            .is_empty()
    );
}

/// Pages (text mode) are listed like images, newest first and paged by row, each list holding
/// only its own kind: a page and an image with the same id are one entry in each list, and
/// neither list shows the other tenant's.
pub async fn pages_are_listed_apart_from_images<F: StoreFactory>(factory: &F) {
    let (store, _storage) = factory.create(KEEP_ALL).await;
    let t1 = TenantId::new("t1");
    let mut ids = Ids::default();
    let shared = "https://example.com/post";
    new_chat(
        &store,
        &key("t1", shared),
        &mut ids,
        &alice(),
        "on the image",
    )
    .await;
    for (name, chats) in [
        (shared, 2),
        ("https://example.com/b", 1),
        ("https://example.com/c", 1),
    ] {
        for i in 0..chats {
            let op = create_on(ids.bid(), &ids.chat(), passage("the gulls"), "why?");
            applied(&store, &page("t1", name), &alice(), &op, 1_000 + i).await;
        }
    }
    let op = create_on(ids.bid(), &ids.chat(), passage("the gulls"), "elsewhere");
    applied(
        &store,
        &page("t2", "https://example.com/z"),
        &alice(),
        &op,
        5,
    )
    .await;
    assert!(
        store
            .set_locked(&page("t1", "https://example.com/b"), true, 7)
            .await
            .expect("lock")
    );

    let first = store.pages(&t1, first_page(2)).await.expect("pages");
    let names: Vec<&str> = first.iter().map(|e| e.image.as_str()).collect();
    assert_eq!(names, ["https://example.com/c", "https://example.com/b"]);
    assert_eq!((first[1].chats, first[1].locked), (1, true));
    assert!(!first[0].locked);
    assert_eq!(first[0].last_activity_at, Some(1_000));
    assert!(first[0].bytes > 0);
    let rest = store
        .pages(
            &t1,
            Page {
                after: Some(first[1].row),
                limit: 2,
            },
        )
        .await
        .expect("pages");
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].image.as_str(), rest[0].chats), (shared, 2));
    assert_eq!(rest[0].last_activity_at, Some(1_001));
    let snapshot = current_snapshot(&store, &page("t1", shared)).await;
    assert_eq!(snapshot.chats.len() as u64, rest[0].chats);

    // The image of the same id is in the images list only, with its own count.
    let images = store.images(&t1, first_page(10)).await.expect("images");
    let listed: Vec<(&str, u64)> = images.iter().map(|e| (e.image.as_str(), e.chats)).collect();
    assert_eq!(listed, [(shared, 1)]);
    assert!(
        store
            .pages(&TenantId::new("t3"), first_page(5))
            .await
            .expect("pages")
            .is_empty()
    );
}
