//! Wiring of the fan-out from the configuration: the broker and presence a node runs with.
//!
//! Alone (no `--redis-url`): the in-process broker and presence. In a cluster: the Redis broker
//! behind per-node `seq` ordering ([`Ordered`], gaps filled from the store), presence counted
//! over the cluster in Redis ([`RedisPresence`]), per-address op budgets shared in Redis
//! ([`ClusterRates`]). Either way the batching decorator is outermost:
//! it coalesces what this node publishes.

use std::sync::Arc;
use std::time::Duration;

use crate::StartError;
use crate::broker::Broker;
use crate::broker::batch::{BatchConfig, Batching};
use crate::broker::memory::MemoryBroker;
use crate::broker::ordered::Ordered;
use crate::broker::redis::{RedisBroker, RedisConfig};
use crate::broker::reorder::ReorderConfig;
use crate::cluster_rates::ClusterRates;
use crate::config::ServeArgs;
use crate::presence::Presence;
use crate::presence::redis::{PresenceTiming, RedisPresence};
use crate::store::Store;

/// What a node fans out with.
pub struct FanOut {
    /// The broker sessions publish to and subscribe from.
    pub broker: Arc<dyn Broker>,
    /// The presence (`None`: the in-process one over `broker`).
    pub presence: Option<Arc<dyn Presence>>,
    /// Per-address op budgets shared by the cluster (`None`: this node's only).
    pub rates: Option<Arc<ClusterRates>>,
}

/// The broker and presence `args` ask for.
pub async fn fan_out(args: &ServeArgs, store: &Arc<dyn Store>) -> Result<FanOut, StartError> {
    let batching = |shared, detached| -> Arc<dyn Broker> {
        Arc::new(Batching::new(
            shared,
            BatchConfig {
                window: Duration::from_millis(args.batch_window_ms),
                max_events: args.batch_max_events,
                presence_interval: Duration::from_millis(args.presence_interval_ms),
                detached,
                ..BatchConfig::default()
            },
        ))
    };
    let Some(url) = &args.redis_url else {
        return Ok(FanOut {
            broker: batching(Arc::new(MemoryBroker::new(args.subscriber_buffer)), false),
            presence: None,
            rates: None,
        });
    };
    let redis = RedisConfig {
        url: url.clone(),
        prefix: args.redis_prefix.clone(),
        node: args.node_name.clone().unwrap_or_else(random_node_name),
    };
    tracing::info!(node = %redis.node, prefix = %redis.prefix, "joining the cluster on Redis");
    let shared = RedisBroker::with_buffer(redis.clone(), args.subscriber_buffer)
        .await
        .map_err(StartError::Broker)?;
    // Events from every node, put back in seq order per image, gaps filled from the store.
    let ordered = Arc::new(Ordered::new(
        Arc::new(shared),
        Arc::clone(store),
        ReorderConfig {
            gap_wait: Duration::from_millis(args.gap_wait_ms),
            ..ReorderConfig::default()
        },
        args.subscriber_buffer,
    ));
    // Redis is a network hop away: no session waits for it.
    let broker = batching(ordered, true);
    let limits = args.limits();
    let rates = ClusterRates::connect(&redis, limits.ip_ops, limits.ip_bytes, limits.tenant_ops)
        .await
        .map_err(StartError::Broker)?;
    let ttl = Duration::from_secs(args.presence_ttl_secs.max(1));
    let presence = RedisPresence::connect(
        redis,
        PresenceTiming {
            ttl,
            refresh: ttl / 3,
        },
        args.counted_anonymous_per_ip,
        Arc::clone(&broker),
    )
    .await
    .map_err(StartError::Broker)?;
    Ok(FanOut {
        broker,
        presence: Some(Arc::new(presence)),
        rates: Some(Arc::new(rates)),
    })
}

/// A node name for a start without `--node-name`: random, so two nodes never share one.
fn random_node_name() -> String {
    use rand::Rng;
    format!("node-{:08x}", rand::rng().random::<u32>())
}
