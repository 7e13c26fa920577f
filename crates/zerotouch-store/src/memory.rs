//! The in-memory store: the reference behaviour, for tests and simulations.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use zerotouch_core::{Instant, KeyId, KeyMapRule, KeyRole, KeyState, Nonce, PublicKey, SessionId};

use crate::association::{ChangePlan, plan_change};
use crate::server_key::{retire_in, revoke_in};
use crate::{
    Account, AccountId, AccountStore, Association, AssociationChange, AssociationStore,
    AttemptState, AttemptStore, AuditEntry, ChangeOutcome, CounterKey, DeviceRecord, DeviceStore,
    ImportReport, LockoutPolicy, Network, NetworkId, NewNetwork, NonceUse, OutcomeRecord,
    OutcomeStore, PurgeReport, PutResponse, Registrar, RegistrarCredential, RegistrarId,
    RegistrarStore, ResponseKey, Retention, ScanReport, ServerKeyRecord, ServerKeyStore,
    SessionCas, SessionRecord, SessionStore, StoreError, StoredResponse, after_failure,
};

#[derive(Debug)]
struct NonceRow {
    session: SessionId,
    expires_at: Instant,
    used: bool,
}

#[derive(Debug, Default)]
struct Tables {
    next_id: i64,
    accounts: BTreeMap<AccountId, Account>,
    networks: BTreeMap<NetworkId, Network>,
    devices: BTreeMap<KeyId, DeviceRecord>,
    associations: Vec<Association>,
    audit: Vec<AuditEntry>,
    registrars: BTreeMap<RegistrarId, Registrar>,
    server_keys: Vec<ServerKeyRecord>,
    key_map: Vec<KeyMapRule>,
    sessions: HashMap<SessionId, SessionRecord>,
    nonces: HashMap<Nonce, NonceRow>,
    responses: HashMap<ResponseKey, StoredResponse>,
    counters: HashMap<(CounterKey, Instant), (u64, Instant)>,
    attempts: HashMap<CounterKey, AttemptState>,
    outcomes: Vec<OutcomeRecord>,
    scan_reports: Vec<ScanReport>,
}

impl Tables {
    fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// A store in memory. Every operation holds one lock for its whole duration, so each is atomic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic in another test thread must not make the store unusable.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AccountStore for MemoryStore {
    async fn create_account(&self, name: &str, now: Instant) -> Result<AccountId, StoreError> {
        let mut t = self.lock();
        let id = AccountId(t.next_id());
        t.accounts.insert(
            id,
            Account {
                id,
                name: name.to_owned(),
                created_at: now,
            },
        );
        Ok(id)
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().accounts.get(&id).cloned())
    }

    async fn add_network(&self, n: NewNetwork, now: Instant) -> Result<NetworkId, StoreError> {
        n.validate()?;
        let mut t = self.lock();
        if !t.accounts.contains_key(&n.account) {
            return Err(StoreError::NotFound { what: "account" });
        }
        let id = NetworkId(t.next_id());
        t.networks.insert(
            id,
            Network {
                id,
                account: n.account,
                ssid: n.ssid,
                passphrase: n.passphrase,
                security: n.security,
                bands: n.bands,
                created_at: now,
            },
        );
        Ok(id)
    }

    async fn networks_of_account(&self, account: AccountId) -> Result<Vec<Network>, StoreError> {
        let t = self.lock();
        Ok(t.networks
            .values()
            .filter(|n| n.account == account)
            .cloned()
            .collect())
    }

    async fn remove_network(&self, id: NetworkId) -> Result<bool, StoreError> {
        Ok(self.lock().networks.remove(&id).is_some())
    }
}

impl DeviceStore for MemoryStore {
    async fn import_devices(&self, devices: Vec<DeviceRecord>) -> Result<ImportReport, StoreError> {
        let mut t = self.lock();
        let mut report = ImportReport::default();
        // Check the whole batch before changing anything: all or none.
        let mut seen = std::collections::BTreeSet::new();
        for d in &devices {
            if !seen.insert(d.key_id) {
                return Err(StoreError::InvalidInput(
                    "a device appears twice in the batch",
                ));
            }
            match t.devices.get(&d.key_id) {
                Some(existing) if existing == d => report.unchanged += 1,
                Some(_) => return Err(StoreError::Conflict { what: "device" }),
                None => report.added += 1,
            }
        }
        for d in devices {
            t.devices.entry(d.key_id).or_insert(d);
        }
        Ok(report)
    }

    async fn device(&self, key_id: &KeyId) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self.lock().devices.get(key_id).cloned())
    }

    async fn devices_with_key_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyId>, StoreError> {
        let t = self.lock();
        Ok(t.devices
            .keys()
            .filter(|k| k.starts_with(prefix))
            .take(limit)
            .copied()
            .collect())
    }

    async fn set_blocked(&self, key_id: &KeyId, blocked: bool) -> Result<(), StoreError> {
        let mut t = self.lock();
        let d = t
            .devices
            .get_mut(key_id)
            .ok_or(StoreError::NotFound { what: "device" })?;
        d.blocked = blocked;
        Ok(())
    }
}

impl AssociationStore for MemoryStore {
    async fn apply_association_change(
        &self,
        change: AssociationChange,
    ) -> Result<ChangeOutcome, StoreError> {
        let mut t = self.lock();
        if !t.devices.contains_key(&change.device) {
            return Err(StoreError::NotFound { what: "device" });
        }
        if !t.accounts.contains_key(&change.account) {
            return Err(StoreError::NotFound { what: "account" });
        }
        if !t.registrars.contains_key(&change.registrar) {
            return Err(StoreError::NotFound { what: "registrar" });
        }
        let previous: Vec<AccountId> = t
            .associations
            .iter()
            .filter(|a| a.device == change.device)
            .map(|a| a.account)
            .collect();
        let ChangePlan::Apply { remove, add } = plan_change(&previous, &change) else {
            return Ok(ChangeOutcome::Unchanged);
        };
        t.associations
            .retain(|a| !(a.device == change.device && remove.contains(&a.account)));
        if let Some(account) = add {
            t.associations.push(Association {
                device: change.device,
                account,
                registrar: change.registrar,
                since: change.at,
            });
        }
        let seq = t.audit.len() as u64 + 1;
        t.audit.push(AuditEntry {
            seq,
            change: change.clone(),
            previous,
        });
        let now_associated = t
            .associations
            .iter()
            .filter(|a| a.device == change.device)
            .map(|a| a.account)
            .collect();
        Ok(ChangeOutcome::Applied {
            seq,
            now_associated,
        })
    }

    async fn associations_of_device(&self, device: &KeyId) -> Result<Vec<Association>, StoreError> {
        let t = self.lock();
        Ok(t.associations
            .iter()
            .filter(|a| &a.device == device)
            .cloned()
            .collect())
    }

    async fn devices_of_account(&self, account: AccountId) -> Result<Vec<KeyId>, StoreError> {
        let t = self.lock();
        Ok(t.associations
            .iter()
            .filter(|a| a.account == account)
            .map(|a| a.device)
            .collect())
    }

    async fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let t = self.lock();
        Ok(t.audit
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn device_history(&self, device: &KeyId) -> Result<Vec<AuditEntry>, StoreError> {
        let t = self.lock();
        Ok(t.audit
            .iter()
            .filter(|e| &e.change.device == device)
            .cloned()
            .collect())
    }
}

impl RegistrarStore for MemoryStore {
    async fn add_registrar(
        &self,
        name: &str,
        credential: RegistrarCredential,
        now: Instant,
    ) -> Result<RegistrarId, StoreError> {
        let mut t = self.lock();
        if t.registrars.values().any(|r| r.credential == credential) {
            return Err(StoreError::Conflict {
                what: "registrar credential",
            });
        }
        let id = RegistrarId(t.next_id());
        t.registrars.insert(
            id,
            Registrar {
                id,
                name: name.to_owned(),
                credential,
                disabled: false,
                created_at: now,
            },
        );
        Ok(id)
    }

    async fn registrar_by_credential(
        &self,
        credential: &RegistrarCredential,
    ) -> Result<Option<Registrar>, StoreError> {
        let t = self.lock();
        Ok(t.registrars
            .values()
            .find(|r| &r.credential == credential)
            .cloned())
    }

    async fn registrar(&self, id: RegistrarId) -> Result<Option<Registrar>, StoreError> {
        Ok(self.lock().registrars.get(&id).cloned())
    }

    async fn set_registrar_disabled(
        &self,
        id: RegistrarId,
        disabled: bool,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        let r = t
            .registrars
            .get_mut(&id)
            .ok_or(StoreError::NotFound { what: "registrar" })?;
        r.disabled = disabled;
        Ok(())
    }
}

impl ServerKeyStore for MemoryStore {
    async fn add_server_key(
        &self,
        role: KeyRole,
        public_key: PublicKey,
        now: Instant,
    ) -> Result<KeyId, StoreError> {
        let key_id = public_key.key_id();
        let mut t = self.lock();
        if let Some(existing) = t.server_keys.iter().find(|k| k.key_id == key_id) {
            return if existing.role == role {
                Ok(key_id)
            } else {
                Err(StoreError::Conflict { what: "server key" })
            };
        }
        t.server_keys.push(ServerKeyRecord {
            key_id,
            role,
            public_key,
            state: KeyState::Active,
            created_at: now,
            revoked_at: None,
            replacement: None,
        });
        Ok(key_id)
    }

    async fn server_keys(&self) -> Result<Vec<ServerKeyRecord>, StoreError> {
        Ok(self.lock().server_keys.clone())
    }

    async fn retire_server_key(&self, key_id: &KeyId) -> Result<(), StoreError> {
        retire_in(&mut self.lock().server_keys, key_id).map(|_| ())
    }

    async fn revoke_server_key(
        &self,
        key_id: &KeyId,
        replacement: Option<KeyId>,
        now: Instant,
    ) -> Result<(), StoreError> {
        revoke_in(&mut self.lock().server_keys, key_id, replacement, now).map(|_| ())
    }

    async fn add_key_map_rule(&self, rule: KeyMapRule) -> Result<(), StoreError> {
        let mut t = self.lock();
        if !t.server_keys.iter().any(|k| k.key_id == rule.key_id) {
            return Err(StoreError::NotFound { what: "server key" });
        }
        if rule.first_serial > rule.last_serial {
            return Err(StoreError::InvalidInput("serial range is empty"));
        }
        t.key_map.push(rule);
        Ok(())
    }

    async fn key_map(&self) -> Result<Vec<KeyMapRule>, StoreError> {
        Ok(self.lock().key_map.clone())
    }
}

impl SessionStore for MemoryStore {
    async fn compare_and_swap_session(
        &self,
        id: SessionId,
        expected: Option<u64>,
        state: Vec<u8>,
        expires_at: Instant,
        now: Instant,
    ) -> Result<SessionCas, StoreError> {
        let mut t = self.lock();
        let current = t
            .sessions
            .get(&id)
            .filter(|s| !now.is_past(s.expires_at))
            .map(|s| s.version);
        if current != expected {
            return Ok(SessionCas::Conflict { current });
        }
        let version = current.unwrap_or(0) + 1;
        t.sessions.insert(
            id,
            SessionRecord {
                id,
                version,
                state,
                expires_at,
            },
        );
        Ok(SessionCas::Written { version })
    }

    async fn session(
        &self,
        id: SessionId,
        now: Instant,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let t = self.lock();
        Ok(t.sessions
            .get(&id)
            .filter(|s| !now.is_past(s.expires_at))
            .cloned())
    }

    async fn issue_nonce(
        &self,
        nonce: Nonce,
        session: SessionId,
        expires_at: Instant,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.nonces.contains_key(&nonce) {
            return Err(StoreError::Conflict { what: "nonce" });
        }
        t.nonces.insert(
            nonce,
            NonceRow {
                session,
                expires_at,
                used: false,
            },
        );
        Ok(())
    }

    async fn consume_nonce(
        &self,
        nonce: Nonce,
        session: SessionId,
        now: Instant,
    ) -> Result<NonceUse, StoreError> {
        let mut t = self.lock();
        let Some(row) = t.nonces.get_mut(&nonce) else {
            return Ok(NonceUse::Unknown);
        };
        Ok(if row.session != session {
            NonceUse::WrongSession
        } else if row.used {
            NonceUse::AlreadyUsed
        } else if now.is_past(row.expires_at) {
            NonceUse::Expired
        } else {
            row.used = true;
            NonceUse::Consumed
        })
    }

    async fn put_response_if_absent(
        &self,
        key: ResponseKey,
        response: StoredResponse,
    ) -> Result<PutResponse, StoreError> {
        let mut t = self.lock();
        if let Some(existing) = t.responses.get(&key) {
            return Ok(PutResponse::Existing(existing.clone()));
        }
        t.responses.insert(key, response);
        Ok(PutResponse::Stored)
    }

    async fn stored_response(
        &self,
        key: ResponseKey,
        now: Instant,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let t = self.lock();
        Ok(t.responses
            .get(&key)
            .filter(|r| !now.is_past(r.expires_at))
            .cloned())
    }
}

impl AttemptStore for MemoryStore {
    async fn increment_counter(
        &self,
        key: CounterKey,
        window_start: Instant,
        expires_at: Instant,
    ) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let entry = t
            .counters
            .entry((key, window_start))
            .or_insert((0, expires_at));
        entry.0 = entry.0.saturating_add(1);
        Ok(entry.0)
    }

    async fn record_failure(
        &self,
        key: CounterKey,
        policy: LockoutPolicy,
        now: Instant,
    ) -> Result<AttemptState, StoreError> {
        let mut t = self.lock();
        let state = t.attempts.entry(key).or_default();
        *state = after_failure(*state, &policy, now);
        Ok(*state)
    }

    async fn attempt_state(&self, key: CounterKey) -> Result<AttemptState, StoreError> {
        Ok(self.lock().attempts.get(&key).copied().unwrap_or_default())
    }

    async fn clear_failures(&self, key: CounterKey) -> Result<(), StoreError> {
        if let Some(state) = self.lock().attempts.get_mut(&key) {
            state.failures = 0;
        }
        Ok(())
    }
}

impl OutcomeStore for MemoryStore {
    async fn record_outcome(&self, outcome: OutcomeRecord) -> Result<(), StoreError> {
        self.lock().outcomes.push(outcome);
        Ok(())
    }

    async fn outcomes_of_device(&self, device: &KeyId) -> Result<Vec<OutcomeRecord>, StoreError> {
        let t = self.lock();
        Ok(t.outcomes
            .iter()
            .filter(|o| &o.device == device)
            .cloned()
            .collect())
    }

    async fn record_scan_report(&self, report: ScanReport) -> Result<(), StoreError> {
        self.lock().scan_reports.push(report);
        Ok(())
    }

    async fn scan_reports_of_device(&self, device: &KeyId) -> Result<Vec<ScanReport>, StoreError> {
        let t = self.lock();
        Ok(t.scan_reports
            .iter()
            .filter(|r| &r.device == device)
            .cloned()
            .collect())
    }

    async fn purge_expired(
        &self,
        now: Instant,
        retention: Retention,
    ) -> Result<PurgeReport, StoreError> {
        fn count<T>(v: &mut Vec<T>, keep: impl Fn(&T) -> bool) -> u64 {
            let before = v.len();
            v.retain(keep);
            (before - v.len()) as u64
        }
        fn count_map<K: Eq + std::hash::Hash, V>(
            m: &mut HashMap<K, V>,
            keep: impl Fn(&V) -> bool,
        ) -> u64 {
            let before = m.len();
            m.retain(|_, v| keep(v));
            (before - m.len()) as u64
        }
        let mut t = self.lock();
        let (scan_cutoff, outcome_cutoff) = retention.cutoffs(now);
        Ok(PurgeReport {
            sessions: count_map(&mut t.sessions, |s| !now.is_past(s.expires_at)),
            nonces: count_map(&mut t.nonces, |n| !now.is_past(n.expires_at)),
            responses: count_map(&mut t.responses, |r| !now.is_past(r.expires_at)),
            counters: count_map(&mut t.counters, |c| !now.is_past(c.1)),
            scan_reports: count(&mut t.scan_reports, |r| r.at >= scan_cutoff),
            outcomes: count(&mut t.outcomes, |o| o.at >= outcome_cutoff),
        })
    }
}
