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
