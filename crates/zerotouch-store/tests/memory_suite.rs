//! The store suite against the in-memory store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_store::MemoryStore;
use zerotouch_store_suite::Harness;

struct Memory;

impl Harness for Memory {
    type Store = MemoryStore;

    async fn fresh(&self) -> MemoryStore {
        MemoryStore::new()
    }

    async fn reopen(&self, _store: MemoryStore) -> Option<MemoryStore> {
        None
    }
}

zerotouch_store_suite::store_suite!(Memory);
