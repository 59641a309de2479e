//! The broker conformance suite against the in-process broker (one process is one node, so
//! every "node" is the same broker; it has no backend connection to lose).

mod broker_conformance;

use std::sync::Arc;

use broker_conformance as suite;
use image_chat_server::broker::memory::MemoryBroker;

struct Memory;

impl suite::BrokerFactory for Memory {
    type Broker = MemoryBroker;

    async fn nodes(&self, n: usize) -> Vec<Arc<MemoryBroker>> {
        let broker = Arc::new(MemoryBroker::default());
        vec![broker; n]
    }

    fn subscribed_topics(&self, node: &MemoryBroker) -> usize {
        node.topic_count()
    }

    async fn interrupt(&self, _node: &MemoryBroker) -> bool {
        false
    }
}

#[tokio::test]
async fn messages_arrive_in_order_unchanged_and_per_topic() {
    suite::messages_arrive_in_order_unchanged_and_per_topic(&Memory).await;
}

#[tokio::test]
async fn every_subscriber_on_every_node_receives_every_message() {
    suite::every_subscriber_on_every_node_receives_every_message(&Memory).await;
}

#[tokio::test]
async fn only_what_is_published_after_subscribing_is_delivered() {
    suite::only_what_is_published_after_subscribing_is_delivered(&Memory).await;
}

#[tokio::test]
async fn unsubscribing_stops_delivery_and_frees_the_topic() {
    suite::unsubscribing_stops_delivery_and_frees_the_topic(&Memory).await;
}

#[tokio::test]
async fn a_lost_connection_is_reported_then_delivery_resumes() {
    suite::a_lost_connection_is_reported_then_delivery_resumes(&Memory).await;
}
