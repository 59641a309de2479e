//! Runs the store conformance suite (`tests/store_conformance/`) against [`PostgresStore`], each
//! test in a schema of its own in the test database (see `postgres_support`), dropped at the
//! end; and checks what is PostgreSQL's own: migrations, and recovering from an outage.

mod postgres_support;
mod store_conformance;

use std::time::Duration;

use image_chat_protocol::{
    Anchor, BroadcastId, ChatId, CreateChat, ImageId, Op, ResolveChat, TenantId, User,
};
use image_chat_server::store::postgres::{PostgresConfig, PostgresStore};
use image_chat_server::store::{Commit, ImageKey, Store, StoreError};
use postgres_support::{Outage, TestSchema};
use store_conformance::StoreFactory;

/// Stores in a fresh schema: reopening connects to the same schema; dropping the storage
/// drops the schema.
struct Postgres;

async fn connect(url: &str, retention: u64) -> PostgresStore {
    let config = PostgresConfig {
        retention,
        ..PostgresConfig::default()
    };
    PostgresStore::connect(url, config)
        .await
        .unwrap_or_else(|err| panic!("connect the store to {url}: {err}"))
}

impl StoreFactory for Postgres {
    type Store = PostgresStore;
    type Storage = TestSchema;

    async fn create(&self, retention: u64) -> (PostgresStore, TestSchema) {
        let schema = TestSchema::create().await;
        (connect(&schema.url, retention).await, schema)
    }

    async fn reopen(&self, schema: &TestSchema, retention: u64) -> PostgresStore {
        connect(&schema.url, retention).await
    }

    async fn attach(&self, schema: &TestSchema, retention: u64) -> PostgresStore {
        connect(&schema.url, retention).await
    }
}

store_conformance::every_test!(Postgres);

// ---------------------------------------------------------------------------------------------
// PostgreSQL's own behaviour
// ---------------------------------------------------------------------------------------------

/// Applied migrations are recorded; connecting again applies nothing; a database migrated by a
/// newer server is refused rather than written to.
#[tokio::test]
async fn migrations_are_versioned_and_a_newer_schema_is_refused() {
    let schema = TestSchema::create().await;
    drop(connect(&schema.url, 10).await);
    drop(connect(&schema.url, 10).await);
    let client = postgres_support::connect(&schema.url).await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM image_chat_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("read migrations")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=versions.len() as i32).collect::<Vec<_>>(),
        "each migration applied once, in order"
    );
    assert!(versions.len() >= 2, "{versions:?}");
    client
        .execute(
            "INSERT INTO image_chat_migrations (version, description) VALUES (99, 'future')",
            &[],
        )
        .await
        .expect("pretend a newer server migrated");
    let err = PostgresStore::connect(&schema.url, PostgresConfig::default())
        .await
        .expect_err("a newer schema must be refused");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

/// A database of the first release (schema version 1: discussions could not be resolved) is
/// migrated when a newer server starts on it: its discussions survive, open, and can be
/// resolved.
#[tokio::test]
async fn a_version_1_database_is_migrated_on_start() {
    let schema = TestSchema::create().await;
    let store = connect(&schema.url, 10).await;
    let image = ImageKey::image(TenantId::new("t1"), ImageId::new("img"));
    let actor = User {
        id: "anon:a".into(),
        name: "A".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    };
    let chat = ChatId::new(image_chat_protocol::ids::encode_uuid_v4([2; 16]));
    let op = Op::CreateChat(CreateChat {
        broadcast_id: BroadcastId::new(image_chat_protocol::ids::encode_uuid_v4([1; 16])),
        chat_id: chat.clone(),
        anchor: Anchor::point(0.5, 0.5),
        text: "from release 1".into(),
    });
    store.commit(&image, &actor, &op, 1).await.expect("commit");
    drop(store);
    // Back to version 1, as the first release left it.
    postgres_support::connect(&schema.url)
        .await
        .batch_execute(
            "ALTER TABLE chats DROP COLUMN resolved;
             ALTER TABLE images DROP CONSTRAINT images_tenant_kind_image_key;
             ALTER TABLE images DROP COLUMN kind;
             ALTER TABLE images ADD CONSTRAINT images_tenant_image_key UNIQUE (tenant, image);
             DROP TABLE image_locks;
             DROP TABLE bans;
             DROP INDEX images_by_tenant;
             DELETE FROM image_chat_migrations WHERE version > 1;",
        )
        .await
        .expect("downgrade to version 1");

    let store = connect(&schema.url, 10).await;
    let (position, snapshot) = store.snapshot(&image).await.expect("snapshot");
    assert_eq!(position.seq, 1);
    assert_eq!(snapshot.chats.len(), 1);
    assert!(!snapshot.chats[0].resolved, "existing discussions are open");
    assert_eq!(snapshot.chats[0].comments[0].text, "from release 1");
    let resolve = Op::ResolveChat(ResolveChat {
        broadcast_id: BroadcastId::new(image_chat_protocol::ids::encode_uuid_v4([3; 16])),
        chat_id: chat,
        resolved: true,
    });
    assert!(matches!(
        store.commit(&image, &actor, &resolve, 2).await,
        Ok(Commit::Applied(_))
    ));
    assert!(store.snapshot(&image).await.expect("snapshot").1.chats[0].resolved);
    // Version 3: locks and bans.
    assert!(store.set_locked(&image, true, 3).await.expect("lock"));
    assert!(store.locked(&image).await.expect("locked"));
}

/// Servers starting together on a new schema create the tables once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_starting_together_migrate_once() {
    let schema = TestSchema::create().await;
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = schema.url.clone();
            tokio::spawn(async move { connect(&url, 10).await })
        })
        .collect();
    for start in starts {
        start.await.expect("a server failed to start");
    }
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let zero = PostgresConfig {
        retention: 0,
        ..PostgresConfig::default()
    };
    assert!(matches!(
        PostgresStore::connect(&postgres_support::url(), zero).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        PostgresStore::connect("postgres://[nope", PostgresConfig::default()).await,
        Err(StoreError::Backend(_))
    ));
    // TLS to PostgreSQL is not built in (docs/OPERATIONS.md): asking for it is refused.
    let tls = format!("{}?sslmode=require", postgres_support::url());
    assert!(matches!(
        PostgresStore::connect(&tls, PostgresConfig::default()).await,
        Err(StoreError::Backend(_))
    ));
    // A schema that does not exist: said so, not a confusing failure on the first write.
    let url = postgres_support::with_schema(&postgres_support::url(), "no_such_schema_here");
    let err = PostgresStore::connect(&url, PostgresConfig::default())
        .await
        .expect_err("missing schema");
    assert!(err.to_string().contains("search_path"), "{err}");
}

/// PostgreSQL going away fails ops promptly as backend errors (which clients see as
/// `unavailable`), `ping` reports it, and the store recovers by itself when it is back: the
/// pool replaces its dead connections, the op retried with the same `broadcastId` is applied
/// once, and nothing acknowledged before is lost.
#[tokio::test]
async fn an_outage_fails_ops_and_the_store_recovers_by_itself() {
    let schema = TestSchema::create().await;
    let outage = Outage::start(postgres_support::addr()).await;
    let url = outage.url(&schema);
    let config = PostgresConfig {
        connect_timeout: Duration::from_secs(2),
        op_timeout: Duration::from_secs(5),
        ..PostgresConfig::default()
    };
    let store = PostgresStore::connect(&url, config)
        .await
        .expect("connect through the proxy");
    let image = ImageKey::image(TenantId::new("t1"), ImageId::new("img"));
    let actor = User {
        id: "anon:a".into(),
        name: "A".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    };
    let create = |k: u8| {
        Op::CreateChat(CreateChat {
            broadcast_id: BroadcastId::new(image_chat_protocol::ids::encode_uuid_v4([k; 16])),
            chat_id: ChatId::new(image_chat_protocol::ids::encode_uuid_v4([k + 100; 16])),
            anchor: Anchor::point(0.5, 0.5),
            text: "hi".into(),
        })
    };
    assert!(matches!(
        store.commit(&image, &actor, &create(1), 1).await,
        Ok(Commit::Applied(_))
    ));

    outage.down();
    let started = std::time::Instant::now();
    match store.commit(&image, &actor, &create(2), 2).await {
        Err(StoreError::Backend(_)) => {}
        other => panic!("a commit during the outage must fail as a backend error: {other:?}"),
    }
    assert!(store.ping().await.is_err(), "ping reports the outage");
    assert!(store.snapshot(&image).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "failures are prompt: {:?}",
        started.elapsed()
    );

    outage.back();
    // The first op after the outage may still meet a connection that died while idle in the
    // pool (and fail as `unavailable`); the pool replaces it, so a client's retry succeeds.
    let mut retried = None;
    for _ in 0..5 {
        match store.commit(&image, &actor, &create(2), 3).await {
            Ok(commit) => {
                retried = Some(commit);
                break;
            }
            Err(StoreError::Backend(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("{other}"),
        }
    }
    match retried {
        Some(Commit::Applied(event)) => assert_eq!(event.seq(), 2, "nothing was half-applied"),
        other => panic!("the store did not recover: {other:?}"),
    }
    store.ping().await.expect("ping after the outage");
    let (position, snapshot) = store.snapshot(&image).await.expect("snapshot");
    assert_eq!(position.seq, 2);
    assert_eq!(snapshot.chats.len(), 2);
}
