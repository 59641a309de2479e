//! Per-node delivery in `seq` order ([`Ordered`]) over a shared broker, with a real store: events
//! published out of order, never published, lost with a broker connection, or from a log the
//! store can no longer list. The pure reordering decisions are unit-tested with a virtual clock
//! in `broker::reorder`; this checks the I/O around them.

mod proxy;
mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use image_chat_protocol::{
    Anchor, BroadcastId, ChatId, CreateChat, Event, ImageId, Op, TenantId, User,
};
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::broker::ordered::Ordered;
use image_chat_server::broker::redis::RedisBroker;
use image_chat_server::broker::reorder::ReorderConfig;
use image_chat_server::broker::{Broker, Published, Received, Subscription};
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::store::{Commit, ImageKey, Store};

const GAP_WAIT: Duration = Duration::from_millis(50);
const DELIVERY: Duration = Duration::from_secs(10);

fn image() -> ImageKey {
    ImageKey::image(TenantId::new("t"), ImageId::new("img"))
}

fn config() -> ReorderConfig {
    ReorderConfig {
        gap_wait: GAP_WAIT,
        ..ReorderConfig::default()
    }
}

fn store() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).expect("store");
    (Arc::new(store), dir)
}

/// Commits the `n`-th marker on the image; returns its event.
async fn commit(store: &SqliteStore, n: u64) -> Event {
    let id = |kind: u64| {
        let mut bytes = [0u8; 16];
        bytes[0] = u8::try_from(kind).unwrap_or(0);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        image_chat_protocol::ids::encode_uuid_v4(bytes)
    };
    let op = Op::CreateChat(CreateChat {
        broadcast_id: BroadcastId::new(id(1)),
        chat_id: ChatId::new(id(2)),
        anchor: Anchor::point(0.5, 0.5),
        text: format!("marker {n}"),
    });
    let actor = User {
        id: "sso:alice".into(),
        name: "Alice".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: true,
    };
    match store.commit(&image(), &actor, &op, 1_000 + n).await {
        Ok(Commit::Applied(event)) => event,
        other => panic!("commit failed: {other:?}"),
    }
}

fn published(event: &Event) -> Published {
    Published::event(event.epoch(), event.seq(), event.to_json().into())
}

async fn next(sub: &mut Subscription) -> Received {
    tokio::time::timeout(DELIVERY, sub.recv())
        .await
        .expect("delivery in time")
}

/// The events of one delivered frame (a batch's parts, or the event): `(seq, JSON)`.
fn parts(m: &Published) -> Vec<(u64, String)> {
    match &m.parts {
        Some(parts) => parts.iter().map(|(s, e)| (*s, e.to_string())).collect(),
        None => vec![(m.seq.expect("an event"), m.frame.to_string())],
    }
}

/// Reads frames until event `last` arrived; every event in between, in delivery order.
async fn events_until(sub: &mut Subscription, last: u64) -> Vec<(u64, String)> {
    let mut events = Vec::new();
    while events.last().is_none_or(|(seq, _)| *seq < last) {
        match next(sub).await {
            Received::Message(m) => events.extend(parts(&m)),
            other => panic!("expected events, got {other:?}"),
        }
    }
    events
}

async fn seqs_until(sub: &mut Subscription, last: u64) -> Vec<u64> {
    events_until(sub, last)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

#[tokio::test]
async fn events_published_out_of_order_are_delivered_in_order() {
    let (store, _dir) = store();
    let shared = Arc::new(MemoryBroker::default());
    let node = Ordered::new(shared.clone(), store.clone(), config(), 64);
    let mut sub = node.subscribe(&image()).await.expect("subscribe");
    let events = [
        commit(&store, 1).await,
        commit(&store, 2).await,
        commit(&store, 3).await,
    ];
    for i in [2, 1, 0] {
        shared
            .publish(&image(), published(&events[i]))
            .await
            .expect("publish");
    }
    assert_eq!(seqs_until(&mut sub, 3).await, vec![1, 2, 3]);
    // A repeat is not delivered again: the next thing through is the next event.
    shared
        .publish(&image(), published(&events[1]))
        .await
        .expect("publish");
    let fourth = commit(&store, 4).await;
    shared
        .publish(&image(), published(&fourth))
        .await
        .expect("publish");
    assert_eq!(seqs_until(&mut sub, 4).await, vec![4]);
}

#[tokio::test]
async fn an_event_never_published_is_filled_from_the_store_after_the_wait() {
    let (store, _dir) = store();
    let shared = Arc::new(MemoryBroker::default());
    let node = Ordered::new(shared.clone(), store.clone(), config(), 64);
    let mut a = node.subscribe(&image()).await.expect("subscribe");
    let mut b = node.subscribe(&image()).await.expect("subscribe");
    let first = commit(&store, 1).await;
    let lost = commit(&store, 2).await;
    let third = commit(&store, 3).await;
    shared
        .publish(&image(), published(&first))
        .await
        .expect("publish");
    let held_from = tokio::time::Instant::now();
    shared
        .publish(&image(), published(&third))
        .await
        .expect("publish");
    for sub in [&mut a, &mut b] {
        let events = events_until(sub, 3).await;
        let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(events[1].1, lost.to_json(), "the store's copy");
    }
    assert!(held_from.elapsed() >= GAP_WAIT, "the gap waited first");
    assert_eq!(node.topic_count(), 1, "one pump for both viewers");
    drop((a, b));
    assert_eq!(node.topic_count(), 0, "stopped with the last viewer");
}

#[tokio::test]
async fn an_image_without_a_log_yet_fills_from_its_first_event() {
    let (store, _dir) = store();
    let shared = Arc::new(MemoryBroker::default());
    let node = Ordered::new(shared.clone(), store.clone(), config(), 64);
    // Subscribed while the image has no log: the base is epoch 0.
    let mut sub = node.subscribe(&image()).await.expect("subscribe");
    commit(&store, 1).await;
    let second = commit(&store, 2).await;
    shared
        .publish(&image(), published(&second))
        .await
        .expect("publish");
    assert_eq!(seqs_until(&mut sub, 2).await, vec![1, 2]);
}

#[tokio::test]
async fn a_gap_the_store_can_no_longer_list_makes_viewers_resync() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_2 = SqliteConfig {
        retention: 2,
        ..SqliteConfig::default()
    };
    let store = Arc::new(SqliteStore::open(&dir.path().join("db"), config_2).expect("store"));
    let shared = Arc::new(MemoryBroker::default());
    let node = Ordered::new(shared.clone(), store.clone(), config(), 64);
    commit(&store, 1).await;
    let mut sub = node.subscribe(&image()).await.expect("subscribe");
    // 2..=5 are never published, and only the last two are retained when the gap is filled.
    let mut last = None;
    for n in 2..=6 {
        last = Some(commit(&store, n).await);
    }
    let last = last.expect("committed");
    shared
        .publish(&image(), published(&last))
        .await
        .expect("publish");
    assert_eq!(next(&mut sub).await, Received::Interrupted);
    // Delivery goes on after the log's head.
    let seventh = commit(&store, 7).await;
    shared
        .publish(&image(), published(&seventh))
        .await
        .expect("publish");
    assert_eq!(seqs_until(&mut sub, 7).await, vec![7]);
}

#[tokio::test]
async fn a_stray_event_of_another_log_is_not_delivered() {
    let (store, _dir) = store();
    let shared = Arc::new(MemoryBroker::default());
    let node = Ordered::new(shared.clone(), store.clone(), config(), 64);
    commit(&store, 1).await;
    let mut sub = node.subscribe(&image()).await.expect("subscribe");
    // Not a gap of this log (the store says where it stands): dropped, no resync.
    let stray = Published::event(u32::MAX, 9, "{}".into());
    shared.publish(&image(), stray).await.expect("publish");
    let second = commit(&store, 2).await;
    shared
        .publish(&image(), published(&second))
        .await
        .expect("publish");
    assert_eq!(seqs_until(&mut sub, 2).await, vec![2]);
}

/// Two nodes on one Redis: node B's connection to Redis is cut while node A commits and
/// publishes; B's viewer gets every event once, in order, with no resync.
#[tokio::test]
async fn a_lost_redis_connection_is_refilled_from_the_store() {
    let (store, _dir) = store();
    let prefix = redis_support::fresh_prefix();
    let a = RedisBroker::connect(redis_support::node(&prefix, 0))
        .await
        .expect("Redis (run scripts/setup.sh test)");
    let proxy = proxy::Proxy::start(redis_support::addr()).await;
    let mut b_config = redis_support::node(&prefix, 1);
    b_config.url = format!("redis://{}", proxy.addr());
    let b = RedisBroker::connect(b_config).await.expect("Redis");
    let node_b = Ordered::new(Arc::new(b), store.clone(), config(), 64);
    let mut viewer = node_b.subscribe(&image()).await.expect("subscribe");
    let one = commit(&store, 1).await;
    a.publish(&image(), published(&one)).await.expect("publish");
    assert_eq!(seqs_until(&mut viewer, 1).await, vec![1]);
    proxy.cut();
    for n in 2..=4 {
        let event = commit(&store, n).await;
        a.publish(&image(), published(&event))
            .await
            .expect("publish");
    }
    // Keep committing until B is back and delivering; every event once, in order.
    let mut expected = 2;
    let mut committed = 4;
    let deadline = tokio::time::Instant::now() + DELIVERY;
    while expected <= committed {
        match tokio::time::timeout(Duration::from_millis(200), viewer.recv()).await {
            Ok(Received::Message(m)) => {
                for (seq, _) in parts(&m) {
                    assert_eq!(seq, expected, "in order, nothing twice");
                    expected += 1;
                }
            }
            Ok(other) => panic!("no resync expected, got {other:?}"),
            Err(_) => {
                assert!(tokio::time::Instant::now() < deadline, "B never recovered");
                committed += 1;
                let event = commit(&store, committed).await;
                a.publish(&image(), published(&event))
                    .await
                    .expect("publish");
            }
        }
    }
    redis_support::clean(&prefix).await;
}
