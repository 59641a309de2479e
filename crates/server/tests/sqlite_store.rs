//! Runs the store conformance suite (`tests/store_conformance/`) against [`SqliteStore`], each
//! test on its own database file in a fresh temporary directory.

mod store_conformance;

use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use store_conformance::StoreFactory;
use tempfile::TempDir;

/// Stores on real files: the temporary directory is the storage, so reopening finds the same
/// file and dropping it at the end of the test deletes everything.
struct Sqlite;

impl Sqlite {
    fn open(dir: &TempDir, retention: u64) -> SqliteStore {
        let config = SqliteConfig {
            retention,
            ..SqliteConfig::default()
        };
        SqliteStore::open(&dir.path().join("image-chat.db"), config).expect("open the database")
    }
}

impl StoreFactory for Sqlite {
    type Store = SqliteStore;
    type Storage = TempDir;

    async fn create(&self, retention: u64) -> (SqliteStore, TempDir) {
        let dir = tempfile::tempdir().expect("create a temp dir");
        (Self::open(&dir, retention), dir)
    }

    async fn reopen(&self, dir: &TempDir, retention: u64) -> SqliteStore {
        Self::open(dir, retention)
    }

    async fn attach(&self, dir: &TempDir, retention: u64) -> SqliteStore {
        Self::open(dir, retention)
    }
}

/// One `#[tokio::test]` per suite function, named like it.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                store_conformance::$name(&Sqlite).await;
            }
        )*
    };
}

conformance!(
    seq_is_gap_free_and_ordered,
    images_and_tenants_are_independent,
    unwritten_image_is_empty_at_epoch_zero,
    retried_op_is_applied_once,
    reused_broadcast_id_with_other_content_conflicts,
    rejected_op_commits_nothing,
    catch_up_returns_exactly_the_missed_events,
    catch_up_falls_back_to_a_snapshot,
    snapshot_equals_replayed_log,
    unknown_chat_is_rejected,
    ids_used_on_another_image_do_not_block_this_one,
    image_byte_limit_bounds_the_snapshot,
    tenant_and_total_quotas,
    catch_up_is_never_heavier_than_the_snapshot,
    unknown_comment_is_rejected,
    duplicate_ids_are_rejected,
    only_author_or_moderator_edits_a_comment,
    only_author_or_moderator_deletes_a_chat,
    only_author_or_moderator_deletes_a_reply,
    only_author_or_moderator_resolves_or_moves_a_chat,
    resolving_and_moving_respect_the_image_byte_limit,
    data_survives_reopening,
    secrets_are_created_once,
    ping_answers_on_a_working_store,
);

// Multi-threaded, so that commits from different tasks really run at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_get_unique_gap_free_seqs() {
    store_conformance::concurrent_commits_get_unique_gap_free_seqs(&Sqlite).await;
}

// Several stores on one file, as several servers on one database would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_servers_on_one_database_get_gap_free_seqs() {
    store_conformance::several_servers_on_one_database_get_gap_free_seqs(&Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenant_quota_holds_across_servers() {
    store_conformance::tenant_quota_holds_across_servers(&Sqlite).await;
}
