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

store_conformance::every_test!(Sqlite);
