//! A store decorator that times every operation into [`ServiceMetrics`]: the same latency
//! figures whichever store is underneath (embedded, memory, a database server).

use core::future::Future;
use std::time::Instant as Clock;

use zerotouch_core::{Instant, KeyId, KeyMapRule, KeyRole, Nonce, PublicKey, SessionId};
use zerotouch_store::{
    Account, AccountId, AccountStore, Association, AssociationChange, AssociationStore,
    AttemptState, AttemptStore, AuditEntry, ChangeOutcome, CounterKey, DeviceRecord, DeviceStore,
    ImportReport, LockoutPolicy, Network, NetworkId, NewNetwork, NonceUse, OutcomeRecord,
    OutcomeStore, PurgeReport, PutResponse, Registrar, RegistrarCredential, RegistrarId,
    RegistrarStore, ResponseKey, Retention, ScanReport, ServerKeyRecord, ServerKeyStore,
    SessionCas, SessionRecord, SessionStore, StoreError, StoredResponse,
};

use crate::ServiceMetrics;

/// `St` with every operation timed into a [`ServiceMetrics`]'s
/// `zerotouch_store_operation_seconds{operation}` histogram.
#[derive(Debug, Clone)]
pub struct MeasuredStore<St> {
    inner: St,
    metrics: ServiceMetrics,
}

impl<St> MeasuredStore<St> {
    /// Wraps `inner`, recording into `metrics` (give the service the same set with
    /// [`crate::SetupService::with_metrics`]).
    pub fn new(inner: St, metrics: ServiceMetrics) -> Self {
        MeasuredStore { inner, metrics }
    }

    /// The store underneath.
    pub fn inner(&self) -> &St {
        &self.inner
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let start = Clock::now();
        let result = op.await;
        self.metrics.store_operation(operation, start.elapsed());
        result
    }
}

/// Implements a store trait by delegating each method through `timed`.
macro_rules! measured {
    ($trait:ident { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $ret:ty; )* }) => {
        impl<St: $trait> $trait for MeasuredStore<St> {
            $(
                fn $name(&self $(, $arg: $ty)*)
                    -> impl Future<Output = Result<$ret, StoreError>> + Send
                {
                    self.timed(stringify!($name), self.inner.$name($($arg),*))
                }
            )*
        }
    };
}

measured!(AccountStore {
    fn create_account(&self, name: &str, now: Instant) -> AccountId;
    fn account(&self, id: AccountId) -> Option<Account>;
    fn add_network(&self, network: NewNetwork, now: Instant) -> NetworkId;
    fn networks_of_account(&self, account: AccountId) -> Vec<Network>;
    fn remove_network(&self, id: NetworkId) -> bool;
});

measured!(AssociationStore {
    fn apply_association_change(&self, change: AssociationChange) -> ChangeOutcome;
    fn associations_of_device(&self, device: &KeyId) -> Vec<Association>;
    fn devices_of_account(&self, account: AccountId) -> Vec<KeyId>;
    fn audit_log(&self, after: u64, limit: usize) -> Vec<AuditEntry>;
    fn device_history(&self, device: &KeyId) -> Vec<AuditEntry>;
});

measured!(AttemptStore {
    fn increment_counter(&self, key: CounterKey, window_start: Instant, expires_at: Instant) -> u64;
    fn record_failure(&self, key: CounterKey, policy: LockoutPolicy, now: Instant) -> AttemptState;
    fn attempt_state(&self, key: CounterKey) -> AttemptState;
    fn clear_failures(&self, key: CounterKey) -> ();
});

measured!(DeviceStore {
    fn import_devices(&self, devices: Vec<DeviceRecord>) -> ImportReport;
    fn device(&self, key_id: &KeyId) -> Option<DeviceRecord>;
    fn devices_with_key_prefix(&self, prefix: &[u8], limit: usize) -> Vec<KeyId>;
    fn set_blocked(&self, key_id: &KeyId, blocked: bool) -> ();
});

measured!(OutcomeStore {
    fn record_outcome(&self, outcome: OutcomeRecord) -> ();
    fn outcomes_of_device(&self, device: &KeyId) -> Vec<OutcomeRecord>;
    fn record_scan_report(&self, report: ScanReport) -> ();
    fn scan_reports_of_device(&self, device: &KeyId) -> Vec<ScanReport>;
    fn purge_expired(&self, now: Instant, retention: Retention) -> PurgeReport;
});

measured!(RegistrarStore {
    fn add_registrar(&self, name: &str, credential: RegistrarCredential, now: Instant) -> RegistrarId;
    fn registrar_by_credential(&self, credential: &RegistrarCredential) -> Option<Registrar>;
    fn registrar(&self, id: RegistrarId) -> Option<Registrar>;
    fn set_registrar_disabled(&self, id: RegistrarId, disabled: bool) -> ();
});

measured!(ServerKeyStore {
    fn add_server_key(&self, role: KeyRole, public_key: PublicKey, now: Instant) -> KeyId;
    fn server_keys(&self) -> Vec<ServerKeyRecord>;
    fn retire_server_key(&self, key_id: &KeyId) -> ();
    fn revoke_server_key(&self, key_id: &KeyId, replacement: Option<KeyId>, now: Instant) -> ();
    fn add_key_map_rule(&self, rule: KeyMapRule) -> ();
    fn key_map(&self) -> Vec<KeyMapRule>;
});

measured!(SessionStore {
    fn compare_and_swap_session(&self, id: SessionId, expected: Option<u64>, state: Vec<u8>, expires_at: Instant, now: Instant) -> SessionCas;
    fn session(&self, id: SessionId, now: Instant) -> Option<SessionRecord>;
    fn issue_nonce(&self, nonce: Nonce, session: SessionId, expires_at: Instant) -> ();
    fn consume_nonce(&self, nonce: Nonce, session: SessionId, now: Instant) -> NonceUse;
    fn put_response_if_absent(&self, key: ResponseKey, response: StoredResponse) -> PutResponse;
    fn stored_response(&self, key: ResponseKey, now: Instant) -> Option<StoredResponse>;
});
