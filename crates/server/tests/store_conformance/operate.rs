//! Conformance of what operating a server stores besides discussions: usage per tenant per day
//! (additive across nodes, peaks summed per minute) and the webhook outbox (written with the
//! commit, claimed by one node at a time).

use std::collections::HashSet;

use image_chat_protocol::TenantId;
use image_chat_server::store::{
    CommitLimits, DayDelta, DayUsage, Store, UsageBatch, UsageCounts, ViewerPeak,
};

use super::{Ids, KEEP_ALL, StoreFactory, alice, create_op, key};

fn counts(frames: u64, connections: u64) -> UsageCounts {
    UsageCounts {
        frames,
        bytes: frames * 100,
        discussions: 1,
        comments: 2,
        ops: 3,
        connections,
    }
}

fn day(tenant: &str, day: &str, counts: UsageCounts) -> DayDelta {
    DayDelta {
        tenant: TenantId::new(tenant),
        day: day.into(),
        counts,
    }
}

fn peak(tenant: &str, day: &str, minute: u32, viewers: u64) -> ViewerPeak {
    ViewerPeak {
        tenant: TenantId::new(tenant),
        day: day.into(),
        minute,
        viewers,
    }
}

async fn read(store: &impl Store, tenant: &str, from: &str, to: &str) -> Vec<DayUsage> {
    store
        .read_usage(&TenantId::new(tenant), from, to)
        .await
        .expect("read usage")
}

/// Counters from several nodes (stores on one database) and several flushes add up per tenant
/// and day; a day's viewer peak is the highest per-minute sum over nodes, each node's minute
/// keeping the highest value it reported; ranges and tenants are kept apart; all of it
/// survives a restart.
pub async fn usage_adds_up_across_nodes_and_days<F: StoreFactory>(factory: &F) {
    let (n1, storage) = factory.create(KEEP_ALL).await;
    let n2 = factory.attach(&storage, KEEP_ALL).await;
    let batch = |node: &str, days: Vec<DayDelta>, peaks: Vec<ViewerPeak>| UsageBatch {
        node: node.into(),
        days,
        peaks,
    };
    n1.add_usage(&batch(
        "n1",
        vec![
            day("acme", "2026-12-05", counts(10, 1)),
            day("other", "2026-12-05", counts(7, 7)),
        ],
        vec![
            peak("acme", "2026-12-05", 600, 3),
            peak("acme", "2026-12-05", 601, 6),
        ],
    ))
    .await
    .expect("n1");
    n2.add_usage(&batch(
        "n2",
        vec![
            day("acme", "2026-12-05", counts(5, 2)),
            day("acme", "2026-12-06", counts(1, 1)),
        ],
        vec![
            peak("acme", "2026-12-05", 600, 4),
            peak("acme", "2026-12-06", 0, 2),
        ],
    ))
    .await
    .expect("n2");
    // n1 flushes again: counters add, a lower peak for a minute it reported changes nothing.
    n1.add_usage(&batch(
        "n1",
        vec![day("acme", "2026-12-05", counts(1, 0))],
        vec![peak("acme", "2026-12-05", 600, 2)],
    ))
    .await
    .expect("n1 again");
    let expected = vec![
        DayUsage {
            day: "2026-12-05".into(),
            counts: UsageCounts {
                frames: 16,
                bytes: 1600,
                discussions: 3,
                comments: 6,
                ops: 9,
                connections: 3,
            },
            // Minute 600: 3 + 4 = 7 beats minute 601's 6 (n1 alone).
            peak_viewers: 7,
        },
        DayUsage {
            day: "2026-12-06".into(),
            counts: counts(1, 1),
            peak_viewers: 2,
        },
    ];
    assert_eq!(
        read(&n1, "acme", "2026-12-01", "2026-12-31").await,
        expected
    );
    assert_eq!(
        read(&n2, "acme", "2026-12-06", "2026-12-06").await,
        expected[1..]
    );
    assert!(
        read(&n1, "acme", "2026-11-01", "2026-11-30")
            .await
            .is_empty()
    );
    assert!(
        read(&n1, "nobody", "2026-01-01", "2026-12-31")
            .await
            .is_empty()
    );
    assert_eq!(
        read(&n1, "other", "2026-12-05", "2026-12-05").await[0]
            .counts
            .frames,
        7
    );
    // Only peaks, no counters, still make a day.
    n2.add_usage(&batch("n2", vec![], vec![peak("acme", "2026-12-07", 5, 1)]))
        .await
        .expect("peaks only");
    let rows = read(&n2, "acme", "2026-12-07", "2026-12-07").await;
    assert_eq!(
        (rows[0].counts, rows[0].peak_viewers),
        (UsageCounts::default(), 1)
    );
    drop((n1, n2));
    let reopened = factory.reopen(&storage, KEEP_ALL).await;
    assert_eq!(
        read(&reopened, "acme", "2026-12-01", "2026-12-06").await,
        expected
    );
}

/// A commit that asks for it queues its change in the outbox, in its own transaction: one row
/// per applied change (not for a refused op, a retried duplicate, or a commit that does not ask),
/// with a stable delivery id and the event in the body. A claimed row is nobody else's until
/// its lease runs out; a failed attempt reschedules it; a delivered one is gone.
pub async fn webhook_outbox_follows_commits_and_claims<F: StoreFactory>(factory: &F) {
    let (store, storage) = factory.create(KEEP_ALL).await;
    let other = factory.attach(&storage, KEEP_ALL).await;
    let image = key("acme", "photo");
    let mut ids = Ids::default();
    let hooked = CommitLimits {
        webhook: true,
        ..CommitLimits::UNLIMITED
    };
    let chat = ids.chat();
    let create = create_op(ids.bid(), &chat, "hello");
    store
        .commit_limited(&image, &alice(), &create, 1_000, hooked)
        .await
        .expect("commit");
    // The retry is a duplicate: no second row. The same chat id again is refused: no row.
    store
        .commit_limited(&image, &alice(), &create, 1_001, hooked)
        .await
        .expect("retry");
    let refused = create_op(ids.bid(), &chat, "again");
    assert!(
        store
            .commit_limited(&image, &alice(), &refused, 1_002, hooked)
            .await
            .is_err()
    );
    // Without the flag: no row.
    let quiet = create_op(ids.bid(), &ids.chat(), "quiet");
    store
        .commit(&image, &alice(), &quiet, 1_003)
        .await
        .expect("commit");

    let claimed = store
        .claim_webhooks(2_000, 62_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    let item = &claimed[0];
    assert_eq!((item.tenant.as_str(), item.attempts), ("acme", 0));
    assert_eq!(item.delivery_id.len(), 32);
    let body: serde_json::Value = serde_json::from_str(&item.body).expect("JSON body");
    assert_eq!(body["id"], item.delivery_id.as_str());
    assert_eq!(
        (body["tenant"].as_str(), body["image"].as_str()),
        (Some("acme"), Some("photo"))
    );
    assert_eq!(body["seq"], 1);
    assert_eq!(body["change"]["type"], "new-image-chat");
    assert_eq!(body["change"]["chat"]["id"], chat.as_str());
    // Leased: nobody (this node or another) gets it again before the lease ends.
    assert!(
        other
            .claim_webhooks(3_000, 63_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    // A node that died holding it: after the lease, another node takes it over.
    let again = other
        .claim_webhooks(62_000, 122_000, 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery_id, item.delivery_id);
    // A failed attempt: due later, claim released.
    other
        .webhook_retry(item.id, 1, 70_000)
        .await
        .expect("retry");
    assert!(
        store
            .claim_webhooks(69_999, 129_999, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let retried = store
        .claim_webhooks(70_000, 130_000, 10)
        .await
        .expect("claim");
    assert_eq!((retried.len(), retried[0].attempts), (1, 1));
    assert_eq!(retried[0].body, item.body);
    store.webhook_done(item.id).await.expect("done");
    assert!(
        store
            .claim_webhooks(u64::MAX / 4, u64::MAX / 4, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    // Survives a restart: a queued row is still there.
    let second = create_op(ids.bid(), &ids.chat(), "second");
    store
        .commit_limited(&image, &alice(), &second, 5_000, hooked)
        .await
        .expect("commit");
    drop((store, other));
    let reopened = factory.reopen(&storage, KEEP_ALL).await;
    let left = reopened
        .claim_webhooks(6_000, 66_000, 10)
        .await
        .expect("claim");
    assert_eq!(left.len(), 1);
    assert_ne!(left[0].delivery_id, item.delivery_id);
}

/// Several servers claiming the outbox at the same moment each get different rows, and
/// together all of them.
pub async fn webhook_claims_are_disjoint_across_servers<F: StoreFactory>(factory: &F) {
    let (store, storage) = factory.create(KEEP_ALL).await;
    let image = key("acme", "photo");
    let mut ids = Ids::default();
    let hooked = CommitLimits {
        webhook: true,
        ..CommitLimits::UNLIMITED
    };
    for _ in 0..30 {
        let op = create_op(ids.bid(), &ids.chat(), "x");
        store
            .commit_limited(&image, &alice(), &op, 1_000, hooked)
            .await
            .expect("commit");
    }
    let mut nodes = vec![store];
    for _ in 0..2 {
        nodes.push(factory.attach(&storage, KEEP_ALL).await);
    }
    let nodes: Vec<_> = nodes.into_iter().map(std::sync::Arc::new).collect();
    let tasks: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = std::sync::Arc::clone(node);
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = node.claim_webhooks(2_000, 62_000, 4).await.expect("claim");
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|item| item.delivery_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (30, 30));
}
