//! Presence over a cluster ([`RedisPresence`]): the live count is the people on the image over
//! every node, someone with tabs on two nodes counts once, each new count is published, and a
//! node that stops refreshing (it died) has its viewers leave the count within its ttl.

mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use image_chat_protocol::{ImageId, ServerMessage, TenantId};
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::broker::{Broker, Received, Subscription};
use image_chat_server::presence::redis::{PresenceTiming, RedisPresence};
use image_chat_server::presence::{Full, Presence, Viewer, ViewerLimits};
use image_chat_server::store::ImageKey;

const OPEN: ViewerLimits = ViewerLimits {
    per_image: 0,
    per_ip: 0,
};

const TIMING: PresenceTiming = PresenceTiming {
    ttl: Duration::from_millis(900),
    refresh: Duration::from_millis(300),
};

fn image() -> ImageKey {
    ImageKey::image(TenantId::new("t"), ImageId::new("img"))
}

fn signed(person: &str, ip: &str) -> Viewer {
    Viewer {
        person: format!("sso:{person}"),
        anonymous: false,
        ip: Some(ip.parse().expect("ip")),
    }
}

async fn node(prefix: &str, i: usize, broker: &Arc<MemoryBroker>) -> RedisPresence {
    RedisPresence::connect(
        redis_support::node(prefix, i),
        TIMING,
        10,
        Arc::clone(broker) as Arc<dyn Broker>,
    )
    .await
    .unwrap_or_else(|err| panic!("Redis at {}: {err}", redis_support::url()))
}

/// The next presence count published.
async fn published(sub: &mut Subscription) -> u32 {
    let received = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .expect("a count in time");
    let Received::Message(message) = received else {
        panic!("expected a message, got {received:?}");
    };
    match ServerMessage::from_json(message.frame.as_str()).expect("a frame") {
        ServerMessage::Presence(p) => p.online,
        other => panic!("expected presence, got {other:?}"),
    }
}

#[tokio::test]
async fn the_count_is_the_people_of_every_node_once_each() {
    let prefix = redis_support::fresh_prefix();
    // Every node's counts reach the viewers through the (here shared) broker.
    let broker = Arc::new(MemoryBroker::default());
    let mut viewers = broker.subscribe(&image()).await.expect("subscribe");
    let a = node(&prefix, 0, &broker).await;
    let b = node(&prefix, 1, &broker).await;
    assert_eq!(
        a.join(&image(), &signed("alice", "10.0.0.1"), OPEN).await,
        Ok(1)
    );
    assert_eq!(published(&mut viewers).await, 1);
    assert_eq!(
        b.join(&image(), &signed("bob", "10.0.0.2"), OPEN).await,
        Ok(2)
    );
    assert_eq!(published(&mut viewers).await, 2);
    // Alice opens a tab on the other node: still two people, nothing new to publish.
    assert_eq!(
        b.join(&image(), &signed("alice", "10.0.0.1"), OPEN).await,
        Ok(2)
    );
    assert_eq!(a.count(&image()).await, 2);
    // Her first tab closes: she is still there through node b.
    a.leave(&image(), &signed("alice", "10.0.0.1")).await;
    assert_eq!(b.count(&image()).await, 2);
    b.leave(&image(), &signed("bob", "10.0.0.2")).await;
    assert_eq!(published(&mut viewers).await, 1);
    b.leave(&image(), &signed("alice", "10.0.0.1")).await;
    assert_eq!(published(&mut viewers).await, 0);
    redis_support::clean(&prefix).await;
}

#[tokio::test]
async fn a_dead_nodes_viewers_leave_the_count_within_its_ttl() {
    let prefix = redis_support::fresh_prefix();
    let broker = Arc::new(MemoryBroker::default());
    let mut viewers = broker.subscribe(&image()).await.expect("subscribe");
    let a = node(&prefix, 0, &broker).await;
    let b = node(&prefix, 1, &broker).await;
    a.join(&image(), &signed("alice", "10.0.0.1"), OPEN)
        .await
        .expect("join");
    a.join(&image(), &signed("carol", "10.0.0.3"), OPEN)
        .await
        .expect("join");
    assert_eq!(
        b.join(&image(), &signed("bob", "10.0.0.2"), OPEN).await,
        Ok(3)
    );
    while published(&mut viewers).await != 3 {}
    // Node a stops (no leave, no refresh: as if it was killed). Its refresh had kept its
    // entries alive so far; now node b's refresh sees them expire and publishes the new count.
    tokio::time::sleep(TIMING.ttl).await;
    assert_eq!(
        b.count(&image()).await,
        3,
        "a refreshing node stays counted"
    );
    let died = tokio::time::Instant::now();
    drop(a);
    assert_eq!(published(&mut viewers).await, 1);
    let took = died.elapsed();
    assert!(
        took <= TIMING.ttl + TIMING.refresh + Duration::from_millis(500),
        "{took:?}"
    );
    redis_support::clean(&prefix).await;
}

#[tokio::test]
async fn connection_limits_stay_per_node() {
    let prefix = redis_support::fresh_prefix();
    let broker = Arc::new(MemoryBroker::default());
    let a = node(&prefix, 0, &broker).await;
    let b = node(&prefix, 1, &broker).await;
    let one = ViewerLimits {
        per_image: 1,
        per_ip: 0,
    };
    a.join(&image(), &signed("alice", "10.0.0.1"), one)
        .await
        .expect("join");
    assert_eq!(
        a.join(&image(), &signed("bob", "10.0.0.2"), one).await,
        Err(Full::Image)
    );
    assert_eq!(
        b.join(&image(), &signed("bob", "10.0.0.2"), one).await,
        Ok(2)
    );
    assert_eq!(a.connections(&image()), 1);
    redis_support::clean(&prefix).await;
}

/// A page (discussions on its text) and an image with the same id are counted apart, on every
/// node: a reader of the page is not a viewer of the image.
#[tokio::test]
async fn a_page_and_an_image_of_one_id_are_counted_apart() {
    let prefix = redis_support::fresh_prefix();
    let broker = Arc::new(MemoryBroker::default());
    let page = ImageKey::page(TenantId::new("t"), image_chat_protocol::PageId::new("img"));
    let a = node(&prefix, 0, &broker).await;
    let b = node(&prefix, 1, &broker).await;
    assert_eq!(
        a.join(&page, &signed("alice", "10.0.0.1"), OPEN).await,
        Ok(1)
    );
    assert_eq!(b.join(&page, &signed("bob", "10.0.0.2"), OPEN).await, Ok(2));
    assert_eq!(
        b.join(&image(), &signed("carol", "10.0.0.3"), OPEN).await,
        Ok(1)
    );
    assert_eq!(a.count(&page).await, 2);
    assert_eq!(a.count(&image()).await, 1);
    b.leave(&page, &signed("bob", "10.0.0.2")).await;
    assert_eq!(a.count(&page).await, 1);
    assert_eq!(b.count(&image()).await, 1);
}

/// Polls `a`'s cluster-wide connection count of `tenant` (with `here` of its own) until it is
/// `want`; panics after 5 s.
async fn live_becomes(a: &RedisPresence, tenant: &TenantId, here: u64, want: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = a.tenant_connections(tenant, here).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "live count of {tenant:?} stayed {got}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The admin API's live count over a cluster: a node adds what the other nodes reported (per
/// tenant, every refresh) to its own exact count; a node whose connections all closed, or
/// that died, leaves it.
#[tokio::test]
async fn a_tenants_live_connections_add_up_over_the_nodes() {
    let prefix = redis_support::fresh_prefix();
    let broker = Arc::new(MemoryBroker::default());
    let (t, u) = (TenantId::new("t"), TenantId::new("u"));
    let page = ImageKey::page(t.clone(), image_chat_protocol::PageId::new("story"));
    let other_tenant = ImageKey::image(u.clone(), ImageId::new("img"));
    let a = node(&prefix, 0, &broker).await;
    let b = node(&prefix, 1, &broker).await;
    // Node a: one connection. Node b: Alice's two tabs on the image and Bob on a page of the
    // same tenant, and someone of another tenant.
    a.join(&image(), &signed("carol", "10.0.0.3"), OPEN)
        .await
        .expect("join");
    for (key, who) in [
        (&image(), signed("alice", "10.0.0.1")),
        (&image(), signed("alice", "10.0.0.1")),
        (&page, signed("bob", "10.0.0.2")),
        (&other_tenant, signed("dan", "10.0.0.4")),
    ] {
        b.join(key, &who, OPEN).await.expect("join");
    }
    live_becomes(&a, &t, 1, 4).await;
    live_becomes(&a, &u, 0, 1).await;
    live_becomes(&b, &t, 3, 4).await;
    // Bob leaves: b reports 2 for t at its next refresh.
    b.leave(&page, &signed("bob", "10.0.0.2")).await;
    live_becomes(&a, &t, 1, 3).await;
    // Tenant u's last connection closes: b's field for it goes.
    b.leave(&other_tenant, &signed("dan", "10.0.0.4")).await;
    live_becomes(&a, &u, 0, 0).await;
    // Node b dies (no leave, no refresh): its connections leave a's count within the ttl.
    drop(b);
    live_becomes(&a, &t, 1, 1).await;
    redis_support::clean(&prefix).await;
}
