//! A bounded chaos run across a cluster: clients on three nodes send random ops while nodes are
//! SIGKILLed and replaced, Redis is killed and restarted, and client connections are cut. Each
//! client resumes from its position on any live node and retries the op it had in flight with
//! the same `broadcastId`. Afterwards: every acknowledged op is present exactly once, no client
//! ever saw a gap or a repeat, and every client has converged to the same state within 5 s of
//! the last fault. The seed is printed (`CHAOS_SEED` replays a run), and so are the counts.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod cluster_support;
mod postgres_support;
mod proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_support::{Cluster, ClusterConfig, Database, PrivateRedis, Replica, Reply, new_id};
use image_chat_protocol::{
    AddComment, Anchor, BroadcastId, ChatId, ClientMessage, CommentId, CreateChat, DeleteChat,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

const CLIENTS: usize = 9;
const CHAOS: Duration = Duration::from_secs(10);
const CONVERGED_WITHIN: Duration = Duration::from_secs(5);
const IMAGE: &str = "chaos";

/// The live nodes' addresses, as a load balancer would know them.
type Balancer = Arc<Mutex<Vec<SocketAddr>>>;

/// What one client had acknowledged.
#[derive(Default)]
struct Acked {
    created: BTreeSet<String>,
    deleted: BTreeSet<String>,
    /// Reply comment id → its chat.
    replies: BTreeMap<String, String>,
    ops: u64,
    refused: u64,
    retried: u64,
    reconnects: u64,
}

async fn reconnect(replica: &mut Replica, balancer: &Balancer, rng: &mut StdRng) {
    loop {
        let addrs = balancer.lock().unwrap().clone();
        if !addrs.is_empty() {
            let addr = addrs[rng.random_range(0..addrs.len())];
            if replica.connect(addr).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..200))).await;
    }
}

fn random_op(rng: &mut StdRng, mine: &[String]) -> ClientMessage {
    let roll = rng.random_range(0..10);
    let bid = BroadcastId::new(new_id());
    match (roll, mine.last()) {
        (0, Some(chat)) => ClientMessage::DeleteChat(DeleteChat {
            broadcast_id: bid,
            chat_id: ChatId::new(chat.clone()),
        }),
        (1..=3, Some(chat)) => ClientMessage::AddComment(AddComment {
            broadcast_id: bid,
            chat_id: ChatId::new(chat.clone()),
            comment_id: CommentId::new(new_id()),
            text: "a reply".into(),
        }),
        _ => ClientMessage::CreateChat(CreateChat {
            broadcast_id: bid,
            chat_id: ChatId::new(new_id()),
            anchor: Anchor::point(rng.random_range(0.0..1.0), rng.random_range(0.0..1.0)),
            text: "a marker".into(),
        }),
    }
}

/// One client: random ops until `until`, reconnecting and retrying through every fault.
async fn client(seed: u64, balancer: Balancer, until: Instant) -> (Replica, Acked) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut replica = Replica::new(IMAGE);
    let mut acked = Acked::default();
    let mut mine: Vec<String> = Vec::new();
    reconnect(&mut replica, &balancer, &mut rng).await;
    while Instant::now() < until {
        let op = random_op(&mut rng, &mine);
        acked.ops += 1;
        // Until this op is answered: a lost connection means reconnect and send it again.
        let reply = loop {
            if !replica.connected() {
                acked.reconnects += 1;
                acked.retried += 1;
                reconnect(&mut replica, &balancer, &mut rng).await;
            }
            if replica.send(&op).await.is_err() {
                continue;
            }
            let answered = loop {
                match replica.next(Duration::from_secs(10)).await {
                    Ok(Some(Reply::Ack(ack))) => break Some(Ok(ack)),
                    Ok(Some(Reply::Error(e))) => break Some(Err(e)),
                    Ok(Some(_)) => continue,
                    // Silence: a node that lost its database or Redis for a moment; send again.
                    Ok(None) => break None,
                    Err(_) => break None,
                }
            };
            if let Some(answer) = answered {
                break answer;
            }
            replica.drop_connection();
        };
        match (reply, &op) {
            (Ok(_), ClientMessage::CreateChat(c)) => {
                acked.created.insert(c.chat_id.as_str().to_string());
                mine.push(c.chat_id.as_str().to_string());
            }
            (Ok(_), ClientMessage::AddComment(c)) => {
                acked.replies.insert(
                    c.comment_id.as_str().to_string(),
                    c.chat_id.as_str().to_string(),
                );
            }
            (Ok(_), ClientMessage::DeleteChat(d)) => {
                acked.deleted.insert(d.chat_id.as_str().to_string());
                mine.retain(|c| c != d.chat_id.as_str());
            }
            (Ok(_), _) => {}
            // Refusals that a fault can cause (the database unreachable for a moment) or that
            // follow a retried delete; counted, and never acknowledged.
            (Err(_), ClientMessage::DeleteChat(d)) => {
                acked.refused += 1;
                mine.retain(|c| c != d.chat_id.as_str());
            }
            (Err(_), _) => acked.refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..120))).await;
    }
    (replica, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_across_nodes_keeps_every_acknowledged_op_exactly_once() {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("chaos seed {seed} (CHAOS_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut redis = PrivateRedis::start();
    let mut cluster = Cluster::start(
        3,
        Database::postgres().await,
        ClusterConfig::new(redis.url()),
    );
    // Clients reach each node through a proxy of its own, which a fault may cut.
    let mut proxies = Vec::new();
    for i in 0..3 {
        proxies.push(proxy::Proxy::start(cluster.addr(i)).await);
    }
    let balancer: Balancer = Arc::new(Mutex::new(proxies.iter().map(|p| p.addr()).collect()));
    let start = Instant::now();
    let until = start + CHAOS;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(seed ^ (i as u64 + 1), Arc::clone(&balancer), until)))
        .collect();

    let mut faults: BTreeMap<&str, u32> = BTreeMap::new();
    let mut last_fault = start;
    while Instant::now() + Duration::from_millis(1500) < until {
        tokio::time::sleep(Duration::from_millis(rng.random_range(700..1300))).await;
        match rng.random_range(0..3) {
            0 => {
                let i = rng.random_range(0..3);
                let gone = proxies[i].addr();
                balancer.lock().unwrap().retain(|a| *a != gone);
                cluster.nodes[i].kill();
                tokio::time::sleep(Duration::from_millis(200)).await;
                cluster.restart(i);
                proxies[i] = proxy::Proxy::start(cluster.addr(i)).await;
                balancer.lock().unwrap().push(proxies[i].addr());
                *faults.entry("node SIGKILLed and replaced").or_default() += 1;
            }
            1 => {
                redis.kill();
                tokio::time::sleep(Duration::from_millis(rng.random_range(100..800))).await;
                redis.restart();
                *faults.entry("Redis killed and restarted").or_default() += 1;
            }
            _ => {
                // Every client connection of one node cut at once (the node stays up).
                let i = rng.random_range(0..3);
                proxies[i].cut();
                *faults.entry("a node's client connections cut").or_default() += 1;
            }
        }
        last_fault = Instant::now();
    }

    let mut results = Vec::new();
    for task in clients {
        results.push(task.await.unwrap());
    }
    // The truth: a fresh client's snapshot from any node.
    let mut truth = Replica::new(IMAGE);
    truth.connect(cluster.addr(0)).await.unwrap();
    let head = truth.position.unwrap().seq;
    let snapshot = truth.state.to_snapshot();

    let mut converged_after = Duration::ZERO;
    for (i, (replica, _)) in results.iter_mut().enumerate() {
        if !replica.connected() {
            reconnect(replica, &balancer, &mut rng).await;
        }
        replica
            .catch_up_to(head, CONVERGED_WITHIN)
            .await
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        converged_after = converged_after.max(last_fault.elapsed());
        assert!(
            replica.violations.is_empty(),
            "client {i}: {:?}",
            replica.violations
        );
        assert_eq!(replica.state, truth.state, "client {i} converged");
    }
    assert!(
        converged_after <= CONVERGED_WITHIN + Duration::from_secs(1),
        "converged {converged_after:?} after the last fault"
    );

    // Every acknowledged op exactly once.
    let mut chats: BTreeMap<String, usize> = BTreeMap::new();
    let mut comments: BTreeMap<String, usize> = BTreeMap::new();
    for chat in &snapshot.chats {
        *chats.entry(chat.id.as_str().to_string()).or_default() += 1;
        for comment in &chat.comments {
            *comments.entry(comment.id.as_str().to_string()).or_default() += 1;
        }
    }
    assert!(chats.values().all(|n| *n == 1), "a discussion twice");
    assert!(comments.values().all(|n| *n == 1), "a comment twice");
    let (mut ops, mut acks, mut refused, mut retried, mut reconnects, mut snapshots) =
        (0, 0, 0, 0, 0, 0);
    let deleted: BTreeSet<String> = results
        .iter()
        .flat_map(|(_, a)| a.deleted.iter().cloned())
        .collect();
    for (replica, acked) in &results {
        for chat in &acked.created {
            assert_eq!(
                chats.contains_key(chat),
                !deleted.contains(chat),
                "acknowledged discussion {chat}"
            );
        }
        for (comment, chat) in &acked.replies {
            if !deleted.contains(chat) {
                assert!(
                    comments.contains_key(comment),
                    "acknowledged reply {comment}"
                );
            }
        }
        ops += acked.ops;
        acks += acked.created.len() + acked.replies.len() + acked.deleted.len();
        refused += acked.refused;
        retried += acked.retried;
        reconnects += acked.reconnects;
        snapshots += replica.snapshots;
    }
    // Every acknowledged op is one event, and nothing else is: none was applied twice.
    assert_eq!(head, acks as u64, "log head vs acknowledged ops");
    println!(
        "chaos: {CLIENTS} clients, 3 nodes, {:.1} s; faults {faults:?}; ops {ops}, acknowledged \
         {acks}, refused {refused}, resent after a lost connection {retried}, reconnects \
         {reconnects}, snapshot resyncs {snapshots}; log head {head}, {} discussions, {} \
         comments; every client converged {:.2} s after the last fault",
        CHAOS.as_secs_f64(),
        chats.len(),
        comments.len(),
        converged_after.as_secs_f64()
    );
}
