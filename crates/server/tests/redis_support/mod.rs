//! Redis for tests: the server at `IMAGE_CHAT_TEST_REDIS_URL` (default 127.0.0.1:6379, which
//! `scripts/setup.sh test` installs and starts when nothing listens there), a fresh key prefix
//! per test so parallel tests never see each other, and the keys removed afterwards. A test that
//! cannot reach Redis fails: it is never skipped.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use image_chat_server::broker::redis::RedisConfig;

/// The Redis the tests use.
pub fn url() -> String {
    std::env::var("IMAGE_CHAT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// A prefix no other test (in this or another process) uses.
pub fn fresh_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("test:{}:{nanos:x}:{n}:", std::process::id())
}

/// Node `i`'s configuration under `prefix`.
pub fn node(prefix: &str, i: usize) -> RedisConfig {
    RedisConfig {
        url: url(),
        prefix: prefix.to_string(),
        node: format!("{}-n{i}", prefix.replace(':', "-").trim_end_matches('-')),
    }
}

/// A plain connection for test commands.
pub async fn connection() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url()).expect("valid Redis URL");
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "Redis is not reachable at {} ({err}); run `bash scripts/setup.sh test`",
                url()
            )
        })
}

/// The Redis server's TCP address (for proxies in front of it).
pub fn addr() -> std::net::SocketAddr {
    let url = url();
    let rest = url
        .strip_prefix("redis://")
        .unwrap_or(&url)
        .trim_end_matches('/');
    let host_port = rest.rsplit('@').next().unwrap_or(rest);
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("cannot resolve the Redis address in {url}"))
}

/// Removes every key under `prefix`.
pub async fn clean(prefix: &str) {
    let mut conn = connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}
