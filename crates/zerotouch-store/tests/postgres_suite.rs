//! The store suite against PostgreSQL: one throwaway cluster for the test process, a new
//! database for each test.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use zerotouch_store::{PostgresOptions, PostgresStore, StaticDataKey};
use zerotouch_store_suite::Harness;
use zerotouch_store_suite::postgres::ThrowawayPostgres;

const DATA_KEY: StaticDataKey = StaticDataKey([0x5a; 32]);

struct Postgres {
    /// Held so the shared cluster outlives the test.
    _pg: Arc<ThrowawayPostgres>,
    url: String,
}

impl Postgres {
    fn new() -> Self {
        let pg = ThrowawayPostgres::shared();
        let url = pg.fresh_database();
        Postgres { _pg: pg, url }
    }

    async fn connect(&self) -> PostgresStore {
        PostgresStore::connect(&self.url, &DATA_KEY, PostgresOptions::default())
            .await
            .unwrap()
    }
}

impl Harness for Postgres {
    type Store = PostgresStore;

    async fn fresh(&self) -> PostgresStore {
        self.connect().await
    }

    async fn reopen(&self, store: PostgresStore) -> Option<PostgresStore> {
        drop(store);
        Some(self.connect().await)
    }
}

zerotouch_store_suite::store_suite!(Postgres::new());
