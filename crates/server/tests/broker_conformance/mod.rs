//! The [`Broker`] conformance suite: the behaviour every broker implementation (in-process, Redis)
//! must show, written once against the trait, like `tests/store_conformance/`.
//!
//! Each `pub async fn` is one test. An implementation's test file provides a [`BrokerFactory`]
//! and calls every function from its own `#[tokio::test]` (see `tests/memory_broker.rs`,
//! `tests/redis_broker.rs`). A factory hands out several *nodes*: brokers that share one backend
//! (for the in-process broker, the same broker), so the suite checks what a cluster relies on:
//! a message published on one node reaches subscribers on every node.
//!
//! The contract checked here, beyond the trait docs:
//! - Per topic, messages reach every subscriber in the order one publisher published them,
//!   unchanged: `(epoch, seq, frame, parts)` round-trip exactly; topics never mix.
//! - Every subscriber of a topic receives every message (fan-out on one node and across nodes);
//!   `subscribe` returning means later publishes are delivered.
//! - Dropping a subscription stops its delivery and leaves the others alone; a node forgets a
//!   topic with its last local subscriber, and subscribing again works.
//! - After a lost backend connection a subscriber is told [`Received::Disconnected`], then
//!   [`Received::Interrupted`] once the broker is back (never a silent hole), and then receives
//!   what is published after the broker reconnected.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use image_chat_protocol::{ImageId, TenantId};
use image_chat_server::broker::{Broker, Published, Received, Subscription};
use image_chat_server::store::ImageKey;

/// How the suite obtains brokers of the implementation under test.
pub trait BrokerFactory {
    /// The implementation under test.
    type Broker: Broker;

    /// `n` nodes sharing one fresh backend namespace (a key prefix, say), isolated from every
    /// other test.
    fn nodes(&self, n: usize) -> impl Future<Output = Vec<Arc<Self::Broker>>>;

    /// Topics `node` holds a subscription for (what the node costs the backend).
    fn subscribed_topics(&self, node: &Self::Broker) -> usize;

    /// Cuts `node`'s connection to its backend, as a network failure or a backend restart
    /// would, and returns once the node will notice. `false`: the implementation has no
    /// backend connection to lose (the lost-connection test then does not apply).
    fn interrupt(&self, node: &Self::Broker) -> impl Future<Output = bool>;
}

/// Longest wait for a message that must arrive.
const DELIVERY: Duration = Duration::from_secs(10);

fn topic(image: &str) -> ImageKey {
    ImageKey::image(TenantId::new("t"), ImageId::new(image))
}

fn event(seq: u64) -> Published {
    Published::event(
        42,
        seq,
        Utf8Bytes::from(format!(r#"{{"type":"deleted-image-chat","seq":{seq}}}"#)),
    )
}

fn state(n: u32) -> Published {
    Published::state(Utf8Bytes::from(format!(
        r#"{{"type":"presence","online":{n}}}"#
    )))
}

async fn next(sub: &mut Subscription) -> Received {
    tokio::time::timeout(DELIVERY, sub.recv())
        .await
        .expect("a published message must be delivered in time")
}

async fn next_message(sub: &mut Subscription) -> Published {
    match next(sub).await {
        Received::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn subscribe(node: &impl Broker, image: &str) -> Subscription {
    node.subscribe(&topic(image)).await.expect("subscribe")
}

async fn publish(node: &impl Broker, image: &str, message: Published) {
    node.publish(&topic(image), message).await.expect("publish");
}

/// Messages of one publisher arrive in publish order on every node, exactly as published, and
/// topics do not mix.
pub async fn messages_arrive_in_order_unchanged_and_per_topic<F: BrokerFactory>(f: &F) {
    let nodes = f.nodes(2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut here = subscribe(a.as_ref(), "img").await;
    let mut there = subscribe(b.as_ref(), "img").await;
    let mut other = subscribe(b.as_ref(), "other").await;
    let batch = Published::events(
        42,
        (101..=103)
            .map(|seq| (seq, event(seq).frame))
            .collect::<Vec<_>>(),
    )
    .expect("non-empty");
    let mut sent = Vec::new();
    for seq in 1..=100 {
        sent.push(event(seq));
        if seq % 10 == 0 {
            sent.push(state(u32::try_from(seq).unwrap_or(0)));
        }
    }
    sent.push(batch);
    for message in &sent {
        publish(a.as_ref(), "img", message.clone()).await;
    }
    publish(a.as_ref(), "other", state(7)).await;
    for sub in [&mut here, &mut there] {
        for expected in &sent {
            assert_eq!(&next_message(sub).await, expected);
        }
    }
    // The other topic got only its own message.
    assert_eq!(next_message(&mut other).await, state(7));

    // A page and an image with the same id are two topics (channels) that do not mix.
    let page = ImageKey::page(
        image_chat_protocol::TenantId::new("t"),
        image_chat_protocol::PageId::new("img"),
    );
    let mut on_page = b.subscribe(&page).await.expect("subscribe");
    publish(a.as_ref(), "img", state(8)).await;
    a.publish(&page, state(9)).await.expect("publish");
    assert_eq!(next_message(&mut on_page).await, state(9));
    assert_eq!(next_message(&mut there).await, state(8));
    assert_eq!(next_message(&mut here).await, state(8));
}

/// Every subscriber of a topic, on every node, receives every message.
pub async fn every_subscriber_on_every_node_receives_every_message<F: BrokerFactory>(f: &F) {
    let nodes = f.nodes(3).await;
    let mut subs = Vec::new();
    for node in &nodes {
        subs.push(subscribe(node.as_ref(), "img").await);
        subs.push(subscribe(node.as_ref(), "img").await);
    }
    for (i, node) in nodes.iter().enumerate() {
        publish(node.as_ref(), "img", event(i as u64 + 1)).await;
    }
    for sub in &mut subs {
        let mut got: Vec<_> = Vec::new();
        for _ in 0..nodes.len() {
            got.push(next_message(sub).await.seq.expect("an event"));
        }
        // Across publishers no order is promised (that is the ordering layer's job).
        got.sort_unstable();
        assert_eq!(got, vec![1, 2, 3]);
    }
}

/// Publishing to a topic nobody subscribes to is fine, and nothing of it is delivered to a
/// later subscriber.
pub async fn only_what_is_published_after_subscribing_is_delivered<F: BrokerFactory>(f: &F) {
    let nodes = f.nodes(2).await;
    publish(nodes[0].as_ref(), "img", event(1)).await;
    let mut sub = subscribe(nodes[1].as_ref(), "img").await;
    publish(nodes[0].as_ref(), "img", event(2)).await;
    assert_eq!(next_message(&mut sub).await, event(2));
}

/// Dropping a subscription leaves the others receiving; the node forgets the topic with its
/// last subscriber and can subscribe again.
pub async fn unsubscribing_stops_delivery_and_frees_the_topic<F: BrokerFactory>(f: &F) {
    let nodes = f.nodes(2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let first = subscribe(b.as_ref(), "img").await;
    let mut second = subscribe(b.as_ref(), "img").await;
    assert_eq!(
        f.subscribed_topics(b),
        1,
        "one backend subscription per topic"
    );
    drop(first);
    publish(a.as_ref(), "img", event(1)).await;
    assert_eq!(next_message(&mut second).await, event(1));
    drop(second);
    wait_until(|| f.subscribed_topics(b) == 0).await;
    // Subscribing again works, and gets only what follows.
    let mut again = subscribe(b.as_ref(), "img").await;
    assert_eq!(f.subscribed_topics(b), 1);
    publish(a.as_ref(), "img", event(2)).await;
    assert_eq!(next_message(&mut again).await, event(2));
}

/// After the node's backend connection is lost, each subscriber is told so (disconnected, then
/// back) before anything else, then receives what is published once the node is connected
/// again.
pub async fn a_lost_connection_is_reported_then_delivery_resumes<F: BrokerFactory>(f: &F) {
    let nodes = f.nodes(2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut subs = vec![
        subscribe(b.as_ref(), "img").await,
        subscribe(b.as_ref(), "img").await,
    ];
    publish(a.as_ref(), "img", event(1)).await;
    for sub in &mut subs {
        assert_eq!(next_message(sub).await, event(1));
    }
    if !f.interrupt(b).await {
        return;
    }
    for sub in &mut subs {
        assert_eq!(next(sub).await, Received::Disconnected);
        assert_eq!(next(sub).await, Received::Interrupted);
    }
    // Delivery resumes: publish until a message comes through (the node reconnects by itself,
    // so the first few may be published before it listens again, and its publishing connection
    // was cut too: a publish may fail, and an implementation may retry it later).
    let deadline = tokio::time::Instant::now() + DELIVERY;
    let mut seq = 1;
    let mut accepted = Vec::new();
    loop {
        seq += 1;
        if a.publish(&topic("img"), event(seq)).await.is_ok() {
            accepted.push(seq);
        }
        match tokio::time::timeout(Duration::from_millis(100), subs[0].recv()).await {
            Ok(Received::Message(_)) => break,
            Ok(other) => panic!("expected a message after reconnecting, got {other:?}"),
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "the node did not reconnect"
            ),
        }
    }
    // Once live again, nothing is lost: a last message reaches every subscriber, after every
    // message it received since, none twice.
    let last = seq + 1;
    publish(a.as_ref(), "img", event(last)).await;
    for sub in &mut subs {
        let mut seen = Vec::new();
        loop {
            let got = next_message(sub).await.seq.expect("an event");
            assert!(!seen.contains(&got), "{got} delivered twice");
            seen.push(got);
            if got == last {
                break;
            }
        }
    }
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DELIVERY;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs every test of the suite against `factory` (for implementations whose tests share one
/// setup, e.g. a backend started once).
pub async fn all<F: BrokerFactory>(factory: &F) {
    messages_arrive_in_order_unchanged_and_per_topic(factory).await;
    every_subscriber_on_every_node_receives_every_message(factory).await;
    only_what_is_published_after_subscribing_is_delivered(factory).await;
    unsubscribing_stops_delivery_and_frees_the_topic(factory).await;
    a_lost_connection_is_reported_then_delivery_resumes(factory).await;
}
