//! The cluster's [`Presence`]: the live count is the number of people on an image over every
//! node, kept in Redis; each node's entries expire unless the node refreshes them, so the viewers
//! of a node that dies leave the count within `ttl` by themselves.
//!
//! Per image, one sorted set `<prefix>presence:<tenant>/<image>` holds a member `<node>\n<person>`
//! for every person a node counts (as [`PresenceCounts::counted_people`] says: signed users and
//! at most the per-address cap of anonymous people, per node), scored with its expiry in Redis'
//! own clock (`TIME`, so the nodes' clocks do not matter). The count is the number of distinct
//! people among the unexpired members: someone with tabs on two nodes counts once.
//!
//! One Lua script does a node's whole update of an image atomically: add or refresh its
//! members, remove the ones that left, drop expired ones, count, and compare with the last
//! count published for the image (kept beside the set): whichever node first sees a new count
//! publishes it as a `presence` frame to every node's viewers. Joins and leaves update at once;
//! a refresh loop re-adds every counted person each `refresh` (and so also notices, and
//! publishes, a dead node's people expiring).
//!
//! A join or leave recomputes which of the image's people this node counts (linear in the
//! image's viewers on this node) and sends Redis only the difference; the count itself is
//! linear in the image's entries over the cluster. Both are fine for thousands of viewers per
//! image; an image watched by hundreds of thousands would want a cheaper structure.
//!
//! Each tenant's open connections over the cluster (the admin API's live count): per tenant,
//! one hash `<prefix>live:<tenant>` with a field per node, `<expiry> <connections>`, written by
//! the refresh loop; a reader adds the other nodes' unexpired fields to its own exact count,
//! so the figure is at most one `refresh` old for other nodes, and a dead node's connections
//! leave it within `ttl`.
//!
//! Connection limits (per image, per address) stay per node: they are checked locally at join,
//! as before. If Redis cannot be reached, a join is not refused: the viewer is shown this
//! node's own count, and the refresh loop brings Redis up to date once it answers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use image_chat_protocol::{SubjectKind, TenantId};
use redis::Script;
use redis::aio::ConnectionManager;
use tokio::task::JoinHandle;

use super::counts::PresenceCounts;
use super::{Full, Presence, Viewer, ViewerLimits};
use crate::app::publish_presence;
use crate::broker::redis::RedisConfig;
use crate::broker::{Broker, BrokerError};
use crate::store::ImageKey;

/// How long a node's entries live without a refresh.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6);
/// How often a node refreshes its entries.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(2);
/// Longest a join or leave waits for Redis before going on with this node's count.
const UPDATE_TIMEOUT: Duration = Duration::from_millis(500);

/// KEYS: the image's set, its last published count. ARGV: ttl (ms), node, number of people to
/// add, the people to add, then the people to remove. Returns `{count, changed}`.
const SYNC: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local node = ARGV[2]
local adds = tonumber(ARGV[3])
for i = 4, 3 + adds do
  redis.call('ZADD', KEYS[1], now + ttl, node .. '\n' .. ARGV[i])
end
for i = 4 + adds, #ARGV do
  redis.call('ZREM', KEYS[1], node .. '\n' .. ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local seen = {}
local count = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local cut = string.find(member, '\n', 1, true)
  local person = string.sub(member, (cut or 0) + 1)
  if not seen[person] then
    seen[person] = true
    count = count + 1
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
local changed = 0
if redis.call('GET', KEYS[2]) ~= tostring(count) then
  changed = 1
end
redis.call('SET', KEYS[2], count, 'PX', ttl * 2)
return {count, changed}
";

/// KEYS: the tenant's hash. ARGV: ttl (ms), node, its connections (0: the field goes).
const LIVE_REPORT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
if tonumber(ARGV[3]) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[2], (now + ttl) .. ' ' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
end
return 1
";

/// KEYS: the tenant's hash. ARGV: the asking node (left out). Returns the other nodes'
/// unexpired connections, dropping expired fields.
const LIVE_SUM: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #fields, 2 do
  local cut = string.find(fields[i + 1], ' ', 1, true)
  local expiry = tonumber(string.sub(fields[i + 1], 1, (cut or 1) - 1)) or 0
  if expiry <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif fields[i] ~= ARGV[1] then
    sum = sum + (tonumber(string.sub(fields[i + 1], (cut or 0) + 1)) or 0)
  end
end
return sum
";

/// Timing of the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceTiming {
    /// How long a node's entries live without a refresh (how long a dead node's viewers stay
    /// counted, at most).
    pub ttl: Duration,
    /// How often a node refreshes its entries (well under `ttl`).
    pub refresh: Duration,
}

impl Default for PresenceTiming {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            refresh: DEFAULT_REFRESH,
        }
    }
}

struct Shared {
    counts: PresenceCounts,
    config: RedisConfig,
    timing: PresenceTiming,
    conn: ConnectionManager,
    broker: Arc<dyn Broker>,
    script: Script,
    live_report: Script,
    live_sum: Script,
    /// The tenants whose connections this node last reported as more than zero.
    reported: Mutex<HashSet<TenantId>>,
    /// The people this node has in each image's set, as Redis last confirmed.
    synced: Mutex<HashMap<ImageKey, HashSet<String>>>,
    /// One update at a time per node: two joins on one image must not both compute their
    /// difference from the same `synced`.
    updating: tokio::sync::Mutex<()>,
}

/// Redis [`Presence`]. Dropping it stops its refresh loop (its entries then expire).
pub struct RedisPresence {
    shared: Arc<Shared>,
    refresh: JoinHandle<()>,
}

impl Drop for RedisPresence {
    fn drop(&mut self) {
        self.refresh.abort();
    }
}

impl RedisPresence {
    /// Counts for the node `config` names, publishing new counts through `broker`; counts at
    /// most `counted_anonymous_per_ip` anonymous people per address and node (0: all).
    pub async fn connect(
        config: RedisConfig,
        timing: PresenceTiming,
        counted_anonymous_per_ip: u32,
        broker: Arc<dyn Broker>,
    ) -> Result<Self, BrokerError> {
        let conn = config.manager().await?;
        let shared = Arc::new(Shared {
            counts: PresenceCounts::new(counted_anonymous_per_ip),
            config,
            timing,
            conn,
            broker,
            script: Script::new(SYNC),
            live_report: Script::new(LIVE_REPORT),
            live_sum: Script::new(LIVE_SUM),
            reported: Mutex::default(),
            synced: Mutex::default(),
            updating: tokio::sync::Mutex::new(()),
        });
        let refresh = tokio::spawn(refresh_loop(Arc::downgrade(&shared)));
        Ok(Self { shared, refresh })
    }

    /// Connections on `image` here (for tests and metrics).
    pub fn connections(&self, image: &ImageKey) -> u32 {
        self.shared.counts.connections(image)
    }
}

impl Shared {
    fn synced(&self) -> std::sync::MutexGuard<'_, HashMap<ImageKey, HashSet<String>>> {
        self.synced.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entries' ttl as the scripts take it (ms).
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.timing.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    fn live_key(&self, tenant: &TenantId) -> String {
        [self.config.prefix.as_str(), "live:", tenant.as_str()].concat()
    }

    /// Writes this node's connections per tenant (and zero for the tenants it reported last
    /// time and has none of now, so their field goes).
    async fn report_live(&self) -> Result<(), redis::RedisError> {
        let here = self.counts.connections_by_tenant();
        let gone: Vec<TenantId> = {
            let reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
            reported
                .iter()
                .filter(|tenant| !here.contains_key(*tenant))
                .cloned()
                .collect()
        };
        let ttl_ms = self.ttl_ms();
        let mut conn = self.conn.clone();
        let reports = here
            .iter()
            .map(|(tenant, n)| (tenant, *n))
            .chain(gone.iter().map(|tenant| (tenant, 0)));
        for (tenant, connections) in reports {
            self.live_report
                .key(self.live_key(tenant))
                .arg(ttl_ms)
                .arg(&self.config.node)
                .arg(connections)
                .invoke_async::<()>(&mut conn)
                .await?;
        }
        *self.reported.lock().unwrap_or_else(PoisonError::into_inner) = here.into_keys().collect();
        Ok(())
    }

    fn key(&self, image: &ImageKey) -> String {
        // Tenant ids have no `:` or `/`, so the two kinds' keys cannot meet.
        let kind = match image.kind() {
            SubjectKind::Image => "presence:",
            SubjectKind::Page => "presence-page:",
        };
        [
            self.config.prefix.as_str(),
            kind,
            image.tenant.as_str(),
            "/",
            image.id(),
        ]
        .concat()
    }

    /// Brings this node's entries for `image` in Redis up to date (`refresh`: every counted
    /// person re-added, so their expiry moves on), publishes the count if it is new to the
    /// cluster, and returns it.
    async fn update(&self, image: &ImageKey, refresh: bool) -> Result<u32, redis::RedisError> {
        let _one_at_a_time = self.updating.lock().await;
        let now: HashSet<String> = self.counts.counted_people(image).into_iter().collect();
        let before = self.synced().get(image).cloned().unwrap_or_default();
        let adds: Vec<&String> = if refresh {
            now.iter().collect()
        } else {
            now.difference(&before).collect()
        };
        let removes: Vec<&String> = before.difference(&now).collect();
        let key = self.key(image);
        let mut invocation = self.script.key(&key);
        invocation.key(format!("{key}:count"));
        invocation
            .arg(self.ttl_ms())
            .arg(&self.config.node)
            .arg(adds.len())
            .arg(adds)
            .arg(removes);
        let mut conn = self.conn.clone();
        let (count, changed): (u32, u8) = invocation.invoke_async(&mut conn).await?;
        {
            let mut synced = self.synced();
            if now.is_empty() {
                synced.remove(image);
            } else {
                synced.insert(image.clone(), now);
            }
        }
        if changed == 1 {
            publish_presence(self.broker.as_ref(), image, count).await;
        }
        Ok(count)
    }
}

/// Every `refresh`: re-adds this node's people for every image it has viewers on or still has
/// entries for (which also notices other nodes' expired entries and publishes the new count).
async fn refresh_loop(shared: Weak<Shared>) {
    let Some(every) = shared.upgrade().map(|s| s.timing.refresh) else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut images: HashSet<ImageKey> = shared.counts.images().into_iter().collect();
        images.extend(shared.synced().keys().cloned());
        for image in images {
            if let Err(err) = shared.update(&image, true).await {
                tracing::warn!(%err, "cannot refresh presence in Redis; retrying");
                break;
            }
        }
        if let Err(err) = shared.report_live().await {
            tracing::warn!(%err, "cannot report live connections to Redis; retrying");
        }
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn join(
        &self,
        image: &ImageKey,
        viewer: &Viewer,
        limits: ViewerLimits,
    ) -> Result<u32, Full> {
        let local = self.shared.counts.try_join(image, viewer, limits)?;
        // A welcome must not wait on a Redis that does not answer: bounded, then this node's
        // own count (the refresh loop brings Redis up to date later).
        match tokio::time::timeout(UPDATE_TIMEOUT, self.shared.update(image, false)).await {
            Ok(Ok(count)) => Ok(count),
            Ok(Err(err)) => {
                tracing::warn!(%err, "cannot count the viewer in Redis; showing this node's count");
                Ok(local)
            }
            Err(_) => {
                tracing::warn!("Redis did not count the viewer in time; showing this node's count");
                Ok(local)
            }
        }
    }

    async fn leave(&self, image: &ImageKey, viewer: &Viewer) {
        self.shared.counts.leave(image, viewer);
        match tokio::time::timeout(UPDATE_TIMEOUT, self.shared.update(image, false)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::warn!(%err, "cannot count a viewer out in Redis; the refresh will");
            }
            Err(_) => tracing::warn!("Redis did not count a viewer out in time; the refresh will"),
        }
    }

    async fn count(&self, image: &ImageKey) -> u32 {
        match self.shared.update(image, false).await {
            Ok(count) => count,
            Err(_) => self.shared.counts.count(image),
        }
    }

    async fn tenant_connections(&self, tenant: &TenantId, here: u64) -> u64 {
        let mut conn = self.shared.conn.clone();
        let mut invocation = self.shared.live_sum.key(self.shared.live_key(tenant));
        invocation.arg(&self.shared.config.node);
        let others = invocation.invoke_async::<u64>(&mut conn);
        match tokio::time::timeout(UPDATE_TIMEOUT, others).await {
            Ok(Ok(others)) => here + others,
            Ok(Err(err)) => {
                tracing::warn!(%err, "cannot read other nodes' live connections; this node's only");
                here
            }
            Err(_) => {
                tracing::warn!("Redis did not answer the live count in time; this node's only");
                here
            }
        }
    }
}
