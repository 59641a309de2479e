//! Per-address and per-tenant op budgets shared by the nodes of a cluster ([`ClusterRates`], in
//! Redis): what an address or a tenant spends on one node is spent on every node, a refused op
//! takes nothing, and a session refused by the cluster's budget gets `rate-limited` for that op
//! only.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod redis_support;
mod support;

use std::net::IpAddr;
use std::sync::Arc;

use image_chat_protocol::{ClientMessage, ErrorCode, ServerMessage, TenantId};
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::cluster_rates::{ClusterRates, Verdict};
use image_chat_server::http::StaticDirs;
use image_chat_server::limits::Limits;
use image_chat_server::ratelimit::Rate;
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::tenant::Tenants;
use image_chat_server::{RunningServer, Security, ServerParts};
use support::{Client, create_op};

/// Refills so slowly that no test sees a token come back.
fn rate(burst: u32) -> Option<Rate> {
    Rate::new(0.001, burst)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn an_address_spends_one_budget_over_every_node() {
    let prefix = redis_support::fresh_prefix();
    let a = ClusterRates::connect(&redis_support::node(&prefix, 0), rate(3), rate(100), None)
        .await
        .unwrap();
    let b = ClusterRates::connect(&redis_support::node(&prefix, 1), rate(3), rate(100), None)
        .await
        .unwrap();
    let client = Some(ip("192.0.2.1"));
    let site = TenantId::new("site");
    assert_eq!(a.admit(client, &site, 10).await, Verdict::Allowed);
    assert_eq!(b.admit(client, &site, 10).await, Verdict::Allowed);
    // Over the byte budget: refused, and neither budget is charged.
    assert_eq!(a.admit(client, &site, 90).await, Verdict::Limited);
    assert_eq!(b.admit(client, &site, 10).await, Verdict::Allowed);
    // Three ops spent over two nodes: the fourth is refused on both.
    assert_eq!(a.admit(client, &site, 1).await, Verdict::Limited);
    assert_eq!(b.admit(client, &site, 1).await, Verdict::Limited);
    // Another address has its own budget.
    assert_eq!(
        a.admit(Some(ip("192.0.2.2")), &site, 1).await,
        Verdict::Allowed
    );
    redis_support::clean(&prefix).await;
}

#[tokio::test]
async fn a_tenant_spends_one_budget_over_every_node_and_address() {
    let prefix = redis_support::fresh_prefix();
    let a = ClusterRates::connect(&redis_support::node(&prefix, 0), None, None, rate(4))
        .await
        .unwrap();
    let b = ClusterRates::connect(&redis_support::node(&prefix, 1), None, None, rate(4))
        .await
        .unwrap();
    let site = TenantId::new("site");
    for (node, address) in [(&a, "192.0.2.1"), (&b, "192.0.2.2"), (&a, "192.0.2.3")] {
        assert_eq!(
            node.admit(Some(ip(address)), &site, 1).await,
            Verdict::Allowed
        );
    }
    assert_eq!(b.admit(None, &site, 1).await, Verdict::Allowed);
    // Four ops of the site, from three addresses over two nodes: the fifth is refused.
    assert_eq!(
        a.admit(Some(ip("192.0.2.9")), &site, 1).await,
        Verdict::Limited
    );
    assert_eq!(b.admit(None, &site, 1).await, Verdict::Limited);
    // Another site has its own budget.
    let other = TenantId::new("other");
    assert_eq!(a.admit(None, &other, 1).await, Verdict::Allowed);
    redis_support::clean(&prefix).await;
}

async fn node(prefix: &str, i: usize, dir: &std::path::Path) -> RunningServer {
    let limits = Limits {
        ip_ops: rate(3),
        ip_bytes: None,
        ..Limits::default()
    };
    let rates = ClusterRates::connect(&redis_support::node(prefix, i), limits.ip_ops, None, None)
        .await
        .unwrap();
    let store = SqliteStore::open(&dir.join(format!("n{i}.db")), SqliteConfig::default()).unwrap();
    RunningServer::start(ServerParts {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: Arc::new(store),
        broker: Arc::new(MemoryBroker::default()),
        presence: None,
        cluster_rates: Some(Arc::new(rates)),
        tenants: Tenants::builtin(),
        limits: Default::default(),
        dirs: StaticDirs::default(),
        security: Security { limits, tls: None },
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn sessions_on_two_nodes_share_their_address_budget() {
    let prefix = redis_support::fresh_prefix();
    let dir = tempfile::tempdir().unwrap();
    let a = node(&prefix, 0, dir.path()).await;
    let b = node(&prefix, 1, dir.path()).await;
    let mut on_a = Client::join(a.local_addr(), "img").await;
    let mut on_b = Client::join(b.local_addr(), "img").await;
    for text in ["one", "two"] {
        support::commit(
            &mut on_a,
            ClientMessage::CreateChat(create_op(0.5, 0.5, text)),
        )
        .await;
    }
    support::commit(
        &mut on_b,
        ClientMessage::CreateChat(create_op(0.5, 0.5, "three")),
    )
    .await;
    // Node b's own bucket for this address has two tokens left; the cluster's has none.
    let op = create_op(0.5, 0.5, "four");
    on_b.send(&ClientMessage::CreateChat(op.clone())).await;
    match on_b.recv_skip_presence().await {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::RateLimited);
            assert_eq!(e.broadcast_id, Some(op.broadcast_id));
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    a.shutdown().await;
    b.shutdown().await;
    redis_support::clean(&prefix).await;
}

/// On one server (no Redis), the tenant's budget is this process's: shared by every
/// connection of the tenant, whatever its address.
#[tokio::test]
async fn one_servers_tenant_budget_is_shared_by_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        tenant_ops: rate(3),
        ..Limits::default()
    };
    let store = SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).unwrap();
    let server = RunningServer::start(ServerParts {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: Arc::new(store),
        broker: Arc::new(MemoryBroker::default()),
        presence: None,
        cluster_rates: None,
        tenants: Tenants::builtin(),
        limits: Default::default(),
        dirs: StaticDirs::default(),
        security: Security { limits, tls: None },
    })
    .await
    .unwrap();
    let mut one = Client::join(server.local_addr(), "a").await;
    let mut two = Client::join(server.local_addr(), "b").await;
    for text in ["one", "two"] {
        support::commit(
            &mut one,
            ClientMessage::CreateChat(create_op(0.5, 0.5, text)),
        )
        .await;
    }
    support::commit(
        &mut two,
        ClientMessage::CreateChat(create_op(0.5, 0.5, "three")),
    )
    .await;
    two.send(&ClientMessage::CreateChat(create_op(0.5, 0.5, "four")))
        .await;
    match two.recv_skip_presence().await {
        ServerMessage::Error(e) => assert_eq!(e.code, ErrorCode::RateLimited),
        other => panic!("expected rate-limited, got {other:?}"),
    }
    server.shutdown().await;
}
