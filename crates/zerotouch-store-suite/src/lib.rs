//! # zerotouch-store-suite
//!
//! The one test suite every implementation of the zerotouch store traits must pass: every
//! operation, the atomic ones under concurrency, and (for persistent stores) a restart. An
//! implementation's test file provides a [`Harness`] and expands [`store_suite!`]; each rule
//! becomes a test named after it, so the list of tests reads as the list of rules.
//!
//! ```no_run
//! use zerotouch_store::MemoryStore;
//! use zerotouch_store_suite::Harness;
//!
//! struct Memory;
//! impl Harness for Memory {
//!     type Store = MemoryStore;
//!     async fn fresh(&self) -> MemoryStore { MemoryStore::new() }
//!     async fn reopen(&self, _store: MemoryStore) -> Option<MemoryStore> { None }
//! }
//! // In a test file: zerotouch_store_suite::store_suite!(Memory);
//! ```
// A test harness: failing loudly is its job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod fixtures;
pub mod postgres;
pub mod rules;

use core::future::Future;

use zerotouch_store::Store;

/// Makes stores for the suite.
pub trait Harness: Send + Sync + 'static {
    /// The implementation under test.
    type Store: Store;

    /// A new, empty store.
    fn fresh(&self) -> impl Future<Output = Self::Store> + Send;

    /// Closes `store` and opens it again from what it persisted; `None` if the implementation
    /// keeps nothing (the restart rules then do nothing).
    fn reopen(&self, store: Self::Store) -> impl Future<Output = Option<Self::Store>> + Send;
}

/// Expands to one `#[tokio::test]` per rule of the suite, each building its store with the
/// given harness expression. The calling crate needs `tokio` with `macros` and
/// `rt-multi-thread`.
#[macro_export]
macro_rules! store_suite {
    ($harness:expr) => {
        $crate::store_suite!(@rules $harness;
            account_round_trips,
            network_passphrase_round_trips_and_stays_with_its_account,
            network_for_unknown_account_is_refused,
            ssid_longer_than_32_bytes_is_refused,
            removed_network_is_gone,
            device_import_round_trips_every_field,
            device_import_is_idempotent,
            conflicting_device_import_rolls_back_the_whole_batch,
            devices_are_found_by_key_prefix,
            blocked_flag_is_stored_and_unknown_device_is_not_found,
            association_change_is_audited_with_registrar_time_and_label,
            ambiguous_key_is_kept_not_overwritten,
            reassociation_replaces_every_previous_account,
            unchanged_association_is_not_logged,
            association_needs_known_device_account_and_registrar,
            audit_log_pages_in_order,
            registrar_is_found_by_credential_and_credentials_are_unique,
            registrar_can_be_disabled,
            server_keys_round_trip_in_order,
            revoked_server_key_stays_revoked,
            replacement_key_must_be_unrevoked_and_of_the_same_role,
            key_map_keeps_order_and_refuses_unknown_keys,
            session_is_written_only_at_the_expected_version,
            expired_session_counts_as_absent,
            concurrent_session_writers_exactly_one_wins,
            session_state_round_trips,
            nonce_is_consumed_exactly_once,
            expired_nonce_is_refused,
            nonce_of_another_session_is_refused,
            unknown_nonce_is_refused,
            reissued_nonce_is_a_conflict,
            two_writers_consuming_one_nonce_exactly_one_wins,
            first_stored_response_wins,
            concurrent_response_writers_agree_on_one_response,
            expired_response_is_not_served,
            counter_windows_are_independent,
            concurrent_increments_are_never_lost,
            peer_request_counters_count_per_scope_and_survive_a_restart,
            failures_lock_out_at_the_limit_and_lockouts_double,
            failures_while_locked_are_not_counted,
            concurrent_failures_are_never_lost,
            clearing_failures_keeps_the_lockout_history,
            outcomes_and_scan_reports_round_trip,
            purge_removes_only_what_expired,
            everything_survives_a_restart,
        );
    };
    (@rules $harness:expr; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $rule() {
                let harness = $harness;
                $crate::rules::$rule(&harness).await;
            }
        )*
    };
}
