//! Several server processes as one cluster over real sockets: three nodes on one database and
//! one Redis (each test with its own database and key prefix). Clients on different nodes see
//! each other's ops in one order; concurrent writes from every node give a gap-free `seq`; a
//! node killed mid-stream sends its clients to another node where they resume with nothing
//! missed; Redis restarted mid-stream loses nothing; PostgreSQL unreachable gives writers
//! `unavailable` (nothing changed) and everything recovers by itself.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod cluster_support;
mod postgres_support;
mod redis_support;

use std::time::Duration;

use cluster_support::{Cluster, ClusterConfig, Database, PrivateRedis, Replica, Reply, create};
use image_chat_protocol::ErrorCode;

const WAIT: Duration = Duration::from_secs(15);

/// Sends a creation and reads until its ack; returns the acked seq.
async fn commit(replica: &mut Replica, text: &str) -> Result<u64, String> {
    let op = create(text);
    replica.send(&op).await?;
    loop {
        match replica.next(WAIT).await? {
            Some(Reply::Ack(ack)) => return Ok(ack.seq),
            Some(Reply::Error(e)) => return Err(format!("refused: {e:?}")),
            Some(Reply::Events | Reply::Other) => continue,
            None => return Err("no ack in time".into()),
        }
    }
}

fn assert_exactly(seen: &[u64], n: u64, who: &str) {
    let expected: Vec<u64> = (1..=n).collect();
    assert_eq!(
        seen,
        expected.as_slice(),
        "{who} saw every event once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_three_nodes_see_one_gap_free_order() {
    let cluster = Cluster::start(
        3,
        Database::postgres().await,
        ClusterConfig::new(redis_support::url()),
    );
    const PER_CLIENT: u64 = 20;
    let total = PER_CLIENT * 3;
    let mut tasks = Vec::new();
    // Everyone is connected before anyone writes: every event then arrives live.
    let connected = std::sync::Arc::new(tokio::sync::Barrier::new(3));
    for i in 0..3 {
        let addr = cluster.addr(i);
        let connected = std::sync::Arc::clone(&connected);
        tasks.push(tokio::spawn(async move {
            let mut replica = Replica::new("together");
            replica.connect(addr).await.unwrap();
            connected.wait().await;
            let mut acked = Vec::new();
            for k in 0..PER_CLIENT {
                acked.push(commit(&mut replica, &format!("n{i} #{k}")).await.unwrap());
            }
            replica.catch_up_to(total, WAIT).await.unwrap();
            (replica, acked)
        }));
    }
    let mut all_acked = Vec::new();
    let mut replicas = Vec::new();
    for task in tasks {
        let (replica, acked) = task.await.unwrap();
        all_acked.extend(acked);
        replicas.push(replica);
    }
    all_acked.sort_unstable();
    assert_exactly(
        &all_acked,
        total,
        "the acks (concurrent writers on three nodes)",
    );
    for (i, replica) in replicas.iter().enumerate() {
        assert!(
            replica.violations.is_empty(),
            "node {i}: {:?} (snapshots {})",
            replica.violations,
            replica.snapshots
        );
        assert_exactly(&replica.seen, total, &format!("the client on node {i}"));
        assert_eq!(replica.state, replicas[0].state, "one state everywhere");
    }
    println!("3 nodes, {total} concurrent creates: acks 1..={total}, every client in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_sends_its_clients_elsewhere_with_nothing_missed() {
    let mut cluster = Cluster::start(
        3,
        Database::postgres().await,
        ClusterConfig::new(redis_support::url()),
    );
    const TOTAL: u64 = 80;
    // The viewer joins first: every event then reaches it live or in a resume.
    let mut viewer = Replica::new("stream");
    viewer.connect(cluster.addr(2)).await.unwrap();
    let writer_addr = cluster.addr(0);
    let writer = tokio::spawn(async move {
        let mut writer = Replica::new("stream");
        writer.connect(writer_addr).await.unwrap();
        for k in 0..TOTAL {
            commit(&mut writer, &format!("#{k}")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    viewer.catch_up_to(20, WAIT).await.unwrap();
    cluster.nodes[2].kill();
    // The socket ends; the client reconnects through the "load balancer" to another node.
    let lost = loop {
        match viewer.next(WAIT).await {
            Err(err) => break err,
            Ok(None) => panic!("the killed node's socket did not end"),
            Ok(Some(_)) => continue,
        }
    };
    let at = viewer.position.unwrap().seq;
    viewer.connect(cluster.addr(1)).await.unwrap();
    viewer.catch_up_to(TOTAL, WAIT).await.unwrap();
    writer.await.unwrap();
    assert!(viewer.violations.is_empty(), "{:?}", viewer.violations);
    assert_eq!(
        viewer.snapshots, 0,
        "resumed with the missed events, no snapshot"
    );
    assert_exactly(&viewer.seen, TOTAL, "the moved client");
    println!("node killed at seq {at} ({lost}); resumed on another node, {TOTAL} events in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_stream_loses_nothing() {
    let mut redis = PrivateRedis::start();
    let cluster = Cluster::start(
        2,
        Database::postgres().await,
        ClusterConfig::new(redis.url()),
    );
    const TOTAL: u64 = 80;
    // The viewer joins first: every event then reaches it live.
    let mut viewer = Replica::new("stream");
    viewer.connect(cluster.addr(1)).await.unwrap();
    let writer_addr = cluster.addr(0);
    let writer = tokio::spawn(async move {
        let mut writer = Replica::new("stream");
        writer.connect(writer_addr).await.unwrap();
        for k in 0..TOTAL {
            // Acknowledged throughout: the database has every op, Redis is only the fan-out.
            commit(&mut writer, &format!("#{k}")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    viewer.catch_up_to(20, WAIT).await.unwrap();
    redis.kill();
    // While Redis is away the viewer's node reads the database instead: what the writer's node
    // commits keeps arriving, and a new viewer is served.
    let at_kill = viewer.position.unwrap().seq;
    let outage = tokio::time::Instant::now();
    viewer.catch_up_to(at_kill + 10, WAIT).await.unwrap();
    let kept_up_in = outage.elapsed();
    let mut newcomer = Replica::new("stream");
    newcomer.connect(cluster.addr(1)).await.unwrap();
    assert!(
        outage.elapsed() < Duration::from_secs(3),
        "{:?}",
        outage.elapsed()
    );
    redis.restart();
    viewer.catch_up_to(TOTAL, WAIT).await.unwrap();
    writer.await.unwrap();
    assert!(viewer.connected(), "the viewer was never disconnected");
    assert!(viewer.violations.is_empty(), "{:?}", viewer.violations);
    assert_eq!(viewer.snapshots, 0);
    assert_exactly(&viewer.seen, TOTAL, "the viewer on the other node");
    println!(
        "Redis killed mid-stream: 10 more events reached the other node's viewer in \
         {kept_up_in:?} without it, a new viewer was served; restarted: {TOTAL} events, in \
         order, no resync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unavailable_gives_unavailable_and_recovers() {
    let outage = postgres_support::Outage::start(postgres_support::addr()).await;
    let db = Database::postgres_through(&outage).await;
    let cluster = Cluster::start(2, db, ClusterConfig::new(redis_support::url()));
    let mut writer = Replica::new("outage");
    writer.connect(cluster.addr(0)).await.unwrap();
    let mut viewer = Replica::new("outage");
    viewer.connect(cluster.addr(1)).await.unwrap();
    for k in 0..5 {
        commit(&mut writer, &format!("before #{k}")).await.unwrap();
    }
    viewer.catch_up_to(5, WAIT).await.unwrap();

    outage.down();
    // A write now: `unavailable`, nothing changed (the database is the truth, and it is away).
    let refused = commit(&mut writer, "during").await;
    assert!(
        matches!(&refused, Err(e) if e.contains(&format!("{:?}", ErrorCode::Unavailable))),
        "{refused:?}"
    );
    // A new connection cannot be served meanwhile (it is told to come back later).
    let mut newcomer = Replica::new("outage");
    assert!(newcomer.connect(cluster.addr(1)).await.is_err());
    // Live viewers stay connected.
    assert!(viewer.connected());

    outage.back();
    // Recovers by itself: the next writes are acknowledged (the pool reconnects).
    let deadline = tokio::time::Instant::now() + WAIT;
    let first_after = loop {
        match commit(&mut writer, "after").await {
            Ok(seq) => break seq,
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert!(e.contains("Unavailable"), "{e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("did not recover: {e}"),
        }
    };
    assert_eq!(first_after, 6, "the refused write changed nothing");
    for k in 0..4 {
        commit(&mut writer, &format!("after #{k}")).await.unwrap();
    }
    viewer.catch_up_to(10, WAIT).await.unwrap();
    assert!(viewer.violations.is_empty(), "{:?}", viewer.violations);
    assert_exactly(&viewer.seen, 10, "the viewer on the other node");
    newcomer.connect(cluster.addr(1)).await.unwrap();
    assert_eq!(newcomer.position.unwrap().seq, 10);
    println!("PostgreSQL away: writes refused as unavailable, then 5 more acknowledged, 1..=10");
}
