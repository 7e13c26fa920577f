//! `MeasuredStore` only times: wrapped around the in-memory store it passes the whole store
//! suite, so every operation reaches the store underneath with its arguments intact.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_server::{MeasuredStore, ServiceMetrics};
use zerotouch_store::MemoryStore;
use zerotouch_store_suite::Harness;

struct Measured;

impl Harness for Measured {
    type Store = MeasuredStore<MemoryStore>;

    async fn fresh(&self) -> Self::Store {
        MeasuredStore::new(MemoryStore::new(), ServiceMetrics::default())
    }

    async fn reopen(&self, _store: Self::Store) -> Option<Self::Store> {
        None
    }
}

zerotouch_store_suite::store_suite!(Measured);
