//! The store suite against the embedded SQLite store, each test in its own database file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_store::{LocalKeyFile, SqliteOptions, SqliteStore};
use zerotouch_store_suite::Harness;

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn new() -> Self {
        Sqlite {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn key(&self) -> LocalKeyFile {
        LocalKeyFile::new(self.dir.path().join("data.key"))
    }
}

impl Harness for Sqlite {
    type Store = SqliteStore;

    async fn fresh(&self) -> SqliteStore {
        let path = self.dir.path().join("store.db");
        SqliteStore::open(&path, &self.key(), SqliteOptions::default())
            .await
            .unwrap()
    }

    async fn reopen(&self, store: SqliteStore) -> Option<SqliteStore> {
        let path = store.path().to_path_buf();
        drop(store);
        Some(
            SqliteStore::open(&path, &self.key(), SqliteOptions::default())
                .await
                .unwrap(),
        )
    }
}

zerotouch_store_suite::store_suite!(Sqlite::new());
