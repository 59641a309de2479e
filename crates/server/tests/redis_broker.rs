//! The broker conformance suite against the Redis broker: every "node" is its own
//! [`RedisBroker`] (its own connections) on one Redis, under a prefix of its test's own.

mod broker_conformance;
mod proxy;
mod redis_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use broker_conformance as suite;
use image_chat_server::broker::redis::RedisBroker;

/// Each node reaches Redis through a proxy of its own, which `interrupt` cuts.
#[derive(Default)]
struct Redis {
    proxies: Mutex<HashMap<String, proxy::Proxy>>,
}

impl suite::BrokerFactory for Redis {
    type Broker = RedisBroker;

    async fn nodes(&self, n: usize) -> Vec<Arc<RedisBroker>> {
        let prefix = redis_support::fresh_prefix();
        let mut nodes = Vec::new();
        for i in 0..n {
            let proxy = proxy::Proxy::start(redis_support::addr()).await;
            let mut config = redis_support::node(&prefix, i);
            config.url = format!("redis://{}", proxy.addr());
            self.proxies
                .lock()
                .expect("proxies")
                .insert(config.node.clone(), proxy);
            let broker = RedisBroker::connect(config)
                .await
                .unwrap_or_else(|err| panic!("Redis at {}: {err}", redis_support::url()));
            nodes.push(Arc::new(broker));
        }
        nodes
    }

    fn subscribed_topics(&self, node: &RedisBroker) -> usize {
        node.topic_count()
    }

    async fn interrupt(&self, node: &RedisBroker) -> bool {
        let proxies = self.proxies.lock().expect("proxies");
        let cut = proxies[&node.config().node].cut();
        assert_eq!(cut, 2, "a publishing and a subscribing connection per node");
        true
    }
}

#[tokio::test]
async fn messages_arrive_in_order_unchanged_and_per_topic() {
    suite::messages_arrive_in_order_unchanged_and_per_topic(&Redis::default()).await;
}

#[tokio::test]
async fn every_subscriber_on_every_node_receives_every_message() {
    suite::every_subscriber_on_every_node_receives_every_message(&Redis::default()).await;
}

#[tokio::test]
async fn only_what_is_published_after_subscribing_is_delivered() {
    suite::only_what_is_published_after_subscribing_is_delivered(&Redis::default()).await;
}

#[tokio::test]
async fn unsubscribing_stops_delivery_and_frees_the_topic() {
    suite::unsubscribing_stops_delivery_and_frees_the_topic(&Redis::default()).await;
}

#[tokio::test]
async fn a_lost_connection_is_reported_then_delivery_resumes() {
    suite::a_lost_connection_is_reported_then_delivery_resumes(&Redis::default()).await;
}

/// A node's own publishes coming back through Redis are timed: `/metrics` reports the hop
/// (`image_chat_broker_lag_seconds`).
#[tokio::test]
async fn the_redis_hop_is_measured() {
    use image_chat_protocol::{ImageId, TenantId};
    use image_chat_server::broker::{Broker, Published, Received};
    use image_chat_server::store::ImageKey;

    let count = || {
        let text = image_chat_server::metrics::Metrics::new(Arc::default())
            .render()
            .expect("render");
        text.lines()
            .find_map(|l| l.strip_prefix("image_chat_broker_lag_seconds_count "))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("the histogram is exported")
    };
    let before = count();
    // The factory holds the node's proxy: kept for the whole test.
    let redis = Redis::default();
    let nodes = suite::BrokerFactory::nodes(&redis, 1).await;
    let topic = ImageKey::image(TenantId::new("t"), ImageId::new("img"));
    let mut sub = nodes[0].subscribe(&topic).await.expect("subscribe");
    for seq in 1..=5 {
        let frame = format!(r#"{{"seq":{seq}}}"#);
        nodes[0]
            .publish(&topic, Published::event(1, seq, frame.into()))
            .await
            .expect("publish");
    }
    let mut got = 0;
    while got < 5 {
        match tokio::time::timeout(std::time::Duration::from_secs(5), sub.recv()).await {
            Ok(Received::Message(_)) => got += 1,
            Ok(_) => {}
            Err(_) => panic!("no message in time"),
        }
    }
    // Other tests in this process may publish too: at least these five.
    assert!(count() >= before + 5);
}
