//! Per-address op budgets shared by every node of a cluster, in Redis.
//!
//! A client address may spread its connections over several nodes (a load balancer without
//! sticky sessions does so by itself), so the per-address budgets of ops and bytes of ops
//! (`--ip-ops-*`, `--ip-bytes-*`) are token buckets kept in Redis, one hash per address and
//! budget (`<prefix>rl:ops:<ip>`, `<prefix>rl:bytes:<ip>`), updated by one Lua script that takes
//! from all of an op's buckets or from none (in Redis' clock, so the nodes' clocks do not
//! matter). Each node still checks its own copies of these buckets first (`admission`): a node's
//! share can never exceed the cluster's, so that refuses nothing the cluster would allow, and
//! it spares Redis the floods.
//!
//! What stays per node, by nature or by choice: the per-connection budgets (a connection lives
//! on one node; the tenant's `ops_per_second` is one of them), and the connection counts per
//! address (`--max-connections-per-ip`, checked at accept, before any Redis round trip).
//!
//! When Redis does not answer, ops are let through (logged): the per-node budgets still hold,
//! and a rate limit must not take writing down with it.

use std::net::IpAddr;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

use crate::broker::BrokerError;
use crate::broker::redis::RedisConfig;
use crate::ratelimit::Rate;

/// KEYS: the buckets. ARGV: per bucket its rate (tokens per second), burst and cost. Returns 1
/// when every bucket had its cost (all taken), 0 otherwise (none taken).
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local after = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local cost = math.min(tonumber(ARGV[3 * i]), burst)
  local held = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(held[1]) or burst
  local at = tonumber(held[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < cost then
    return 0
  end
  after[i] = {tokens - cost, math.ceil(burst / rate * 1000) + 1000}
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', tostring(after[i][1]), 'at', tostring(now))
  redis.call('PEXPIRE', key, after[i][2])
end
return 1
";

/// Whether an op fits the cluster's budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within every budget (taken from each).
    Allowed,
    /// Over a budget (nothing taken).
    Limited,
}

/// The cluster-wide per-address budgets.
pub struct ClusterRates {
    conn: ConnectionManager,
    prefix: String,
    script: Script,
    ip_ops: Option<Rate>,
    ip_bytes: Option<Rate>,
}

impl ClusterRates {
    /// Budgets `ip_ops` and `ip_bytes` (`None`: unlimited) kept in the Redis `config` names.
    pub async fn connect(
        config: &RedisConfig,
        ip_ops: Option<Rate>,
        ip_bytes: Option<Rate>,
    ) -> Result<Self, BrokerError> {
        Ok(Self {
            conn: config.manager().await?,
            prefix: config.prefix.clone(),
            script: Script::new(TAKE),
            ip_ops,
            ip_bytes,
        })
    }

    /// Takes one op of `size` bytes from `ip`'s budgets, or none of them.
    pub async fn admit(&self, ip: IpAddr, size: u32) -> Verdict {
        let ip = ip.to_string();
        let mut invocation = self.script.prepare_invoke();
        let mut any = false;
        for (name, rate, cost) in [("ops", self.ip_ops, 1), ("bytes", self.ip_bytes, size)] {
            let Some(rate) = rate else { continue };
            any = true;
            invocation.key([self.prefix.as_str(), "rl:", name, ":", ip.as_str()].concat());
            invocation.arg(rate.per_second).arg(rate.burst).arg(cost);
        }
        if !any {
            return Verdict::Allowed;
        }
        let mut conn = self.conn.clone();
        // An op normally waits about a millisecond here; a Redis that does not answer must not
        // hold every op for long (this node's budgets still hold meanwhile).
        let taken = tokio::time::timeout(
            Duration::from_millis(500),
            invocation.invoke_async::<u8>(&mut conn),
        )
        .await;
        match taken {
            Ok(Ok(1)) => Verdict::Allowed,
            Ok(Ok(_)) => Verdict::Limited,
            Ok(Err(err)) => {
                tracing::warn!(%err, "cluster rate limit unavailable; this node's limits hold");
                Verdict::Allowed
            }
            Err(_) => {
                tracing::warn!("cluster rate limit timed out; this node's limits hold");
                Verdict::Allowed
            }
        }
    }
}
