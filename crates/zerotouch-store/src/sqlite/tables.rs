//! The store traits on SQLite.

use rusqlite::{OptionalExtension, Row, Transaction, params};
use zerotouch_core::{Instant, KeyId, KeyMapRule, KeyRole, KeyState, Nonce, PublicKey, SessionId};

use super::{Access, SqliteStore};
use crate::association::{ChangePlan, plan_change};
use crate::column_codec::{i2u, instant, key_id, nonce_bytes, t, u2i};
use crate::rows::{
    AuditRow, DeviceRow, KeyMapRow, NetworkRow, OutcomeRow, RegistrarRow, ServerKeyRow,
    attempt_state, credential_parts, key_state_code, nonce_refusal, open_scan_report,
    seal_passphrase, seal_scan_report, session_field, session_row, stored_response,
};
use crate::server_key::{retire_in, revoke_in};
use crate::{
    Account, AccountId, AccountStore, Association, AssociationChange, AssociationStore,
    AttemptState, AttemptStore, AuditEntry, ChangeOutcome, CounterKey, DeviceRecord, DeviceStore,
    FieldCipher, ImportReport, LockoutPolicy, Network, NetworkId, NewNetwork, NonceUse,
    OutcomeRecord, OutcomeStore, PurgeReport, PutResponse, Registrar, RegistrarCredential,
    RegistrarId, RegistrarStore, ResponseKey, Retention, ScanReport, ServerKeyRecord,
    ServerKeyStore, SessionCas, SessionRecord, SessionStore, StoreError, StoredResponse,
    after_failure,
};

impl AccountStore for SqliteStore {
    async fn create_account(&self, name: &str, now: Instant) -> Result<AccountId, StoreError> {
        let name = name.to_owned();
        self.run(Access::Write, move |tx, _| {
            tx.execute(
                "INSERT INTO accounts (name, created_at) VALUES (?1, ?2)",
                params![name, t(now)],
            )?;
            Ok(AccountId(tx.last_insert_rowid()))
        })
        .await
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        self.run(Access::Read, move |tx, _| {
            Ok(tx
                .query_row(
                    "SELECT name, created_at FROM accounts WHERE id = ?1",
                    [id.0],
                    |r| {
                        Ok(Account {
                            id,
                            name: r.get(0)?,
                            created_at: instant(r.get(1)?),
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn add_network(&self, n: NewNetwork, now: Instant) -> Result<NetworkId, StoreError> {
        n.validate()?;
        self.run(Access::Write, move |tx, cipher| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)",
                [n.account.0],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(StoreError::NotFound { what: "account" });
            }
            // The id is chosen inside the write transaction so the sealed passphrase can be
            // bound to its row.
            let id: i64 =
                tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM networks", [], |r| {
                    r.get(0)
                })?;
            let sealed = seal_passphrase(cipher, id, &n.passphrase)?;
            tx.execute(
                "INSERT INTO networks (id, account_id, ssid, passphrase_sealed, security, bands, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    n.account.0,
                    n.ssid,
                    sealed,
                    n.security.to_u8(),
                    n.bands.bits(),
                    t(now)
                ],
            )?;
            Ok(NetworkId(id))
        })
        .await
    }

    async fn networks_of_account(&self, account: AccountId) -> Result<Vec<Network>, StoreError> {
        self.run(Access::Read, move |tx, cipher| {
            let mut stmt = tx.prepare(
                "SELECT id, ssid, passphrase_sealed, security, bands, created_at FROM networks \
                 WHERE account_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([account.0], |r| {
                Ok(NetworkRow {
                    id: r.get(0)?,
                    ssid: r.get(1)?,
                    passphrase_sealed: r.get(2)?,
                    security: r.get(3)?,
                    bands: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })?;
            rows.map(|row| row?.open(account, cipher)).collect()
        })
        .await
    }

    async fn remove_network(&self, id: NetworkId) -> Result<bool, StoreError> {
        self.run(Access::Write, move |tx, _| {
            Ok(tx.execute("DELETE FROM networks WHERE id = ?1", [id.0])? > 0)
        })
        .await
    }
}

fn read_device(r: &Row<'_>, cipher: &FieldCipher) -> Result<DeviceRecord, StoreError> {
    DeviceRow {
        key_id: r.get(0)?,
        identity_kind: r.get(1)?,
        identity: r.get(2)?,
        device_type: r.get(3)?,
        serial: r.get(4)?,
        product_number: r.get(5)?,
        pin_sealed: r.get(6)?,
        secret_sealed: r.get(7)?,
        blocked: r.get(8)?,
        created_at: r.get(9)?,
    }
    .open(cipher)
}

fn device_in(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    key: &KeyId,
) -> Result<Option<DeviceRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {} FROM devices WHERE key_id = ?1",
        DeviceRow::COLUMNS
    ))?;
    let mut rows = stmt.query([key.as_bytes().as_slice()])?;
    match rows.next()? {
        Some(r) => Ok(Some(read_device(r, cipher)?)),
        None => Ok(None),
    }
}

fn exists(tx: &Transaction<'_>, sql: &str, p: impl rusqlite::Params) -> Result<bool, StoreError> {
    Ok(tx.query_row(sql, p, |r| r.get(0))?)
}

impl DeviceStore for SqliteStore {
    async fn import_devices(&self, devices: Vec<DeviceRecord>) -> Result<ImportReport, StoreError> {
        self.run(Access::Write, move |tx, cipher| {
            let mut report = ImportReport::default();
            let mut seen = std::collections::BTreeSet::new();
            for d in &devices {
                if !seen.insert(d.key_id) {
                    return Err(StoreError::InvalidInput(
                        "a device appears twice in the batch",
                    ));
                }
                match device_in(tx, cipher, &d.key_id)? {
                    Some(existing) if &existing == d => {
                        report.unchanged += 1;
                        continue;
                    }
                    // Returning an error rolls the whole batch back.
                    Some(_) => return Err(StoreError::Conflict { what: "device" }),
                    None => report.added += 1,
                }
                let row = DeviceRow::seal(d, cipher)?;
                tx.prepare_cached(&format!(
                    "INSERT INTO devices ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    DeviceRow::COLUMNS
                ))?
                .execute(params![
                    row.key_id,
                    row.identity_kind,
                    row.identity,
                    row.device_type,
                    row.serial,
                    row.product_number,
                    row.pin_sealed,
                    row.secret_sealed,
                    row.blocked,
                    row.created_at
                ])?;
            }
            Ok(report)
        })
        .await
    }

    async fn device(&self, key: &KeyId) -> Result<Option<DeviceRecord>, StoreError> {
        let key = *key;
        self.run(Access::Read, move |tx, cipher| device_in(tx, cipher, &key))
            .await
    }

    async fn devices_with_key_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyId>, StoreError> {
        if prefix.len() > 32 {
            return Ok(Vec::new());
        }
        // Every key id with the prefix lies between prefix‖00… and prefix‖ff….
        let mut low = [0x00u8; 32];
        let mut high = [0xffu8; 32];
        low.get_mut(..prefix.len())
            .ok_or(StoreError::InvalidInput("prefix too long"))?
            .copy_from_slice(prefix);
        high.get_mut(..prefix.len())
            .ok_or(StoreError::InvalidInput("prefix too long"))?
            .copy_from_slice(prefix);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(Access::Read, move |tx, _| {
            let mut stmt = tx.prepare(
                "SELECT key_id FROM devices WHERE key_id BETWEEN ?1 AND ?2 ORDER BY key_id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![low.as_slice(), high.as_slice(), limit], |r| {
                r.get::<_, Vec<u8>>(0)
            })?;
            rows.map(|r| key_id(&r?)).collect()
        })
        .await
    }

    async fn set_blocked(&self, key: &KeyId, blocked: bool) -> Result<(), StoreError> {
        let key = *key;
        self.run(Access::Write, move |tx, _| {
            let n = tx.execute(
                "UPDATE devices SET blocked = ?2 WHERE key_id = ?1",
                params![key.as_bytes().as_slice(), blocked],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "device" });
            }
            Ok(())
        })
        .await
    }
}

fn accounts_of(tx: &Transaction<'_>, device: &KeyId) -> Result<Vec<AccountId>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT account_id FROM associations WHERE device = ?1 ORDER BY since, id",
    )?;
    let rows = stmt.query_map([device.as_bytes().as_slice()], |r| r.get(0))?;
    rows.map(|r| Ok(AccountId(r?))).collect()
}

fn read_audit(r: &Row<'_>) -> Result<AuditEntry, StoreError> {
    AuditRow {
        seq: r.get(0)?,
        action: r.get(1)?,
        device: r.get(2)?,
        account_id: r.get(3)?,
        registrar_id: r.get(4)?,
        at: r.get(5)?,
        label_fingerprint: r.get(6)?,
        label_device_type: r.get(7)?,
        label_product_number: r.get(8)?,
        label_had_pin: r.get(9)?,
        previous_accounts: r.get(10)?,
    }
    .entry()
}

fn query_audit(
    tx: &Transaction<'_>,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = tx.prepare(sql)?;
    let mut rows = stmt.query(p)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(read_audit(r)?);
    }
    Ok(out)
}

impl AssociationStore for SqliteStore {
    async fn apply_association_change(
        &self,
        change: AssociationChange,
    ) -> Result<ChangeOutcome, StoreError> {
        self.run(Access::Write, move |tx, _| {
            let dev = change.device.as_bytes().as_slice();
            if !exists(
                tx,
                "SELECT EXISTS (SELECT 1 FROM devices WHERE key_id = ?1)",
                [dev],
            )? {
                return Err(StoreError::NotFound { what: "device" });
            }
            if !exists(
                tx,
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)",
                [change.account.0],
            )? {
                return Err(StoreError::NotFound { what: "account" });
            }
            if !exists(
                tx,
                "SELECT EXISTS (SELECT 1 FROM registrars WHERE id = ?1)",
                [change.registrar.0],
            )? {
                return Err(StoreError::NotFound { what: "registrar" });
            }
            let previous = accounts_of(tx, &change.device)?;
            let ChangePlan::Apply { remove, add } = plan_change(&previous, &change) else {
                return Ok(ChangeOutcome::Unchanged);
            };
            for account in remove {
                tx.execute(
                    "DELETE FROM associations WHERE device = ?1 AND account_id = ?2",
                    params![dev, account.0],
                )?;
            }
            if let Some(account) = add {
                tx.execute(
                    "INSERT INTO associations (device, account_id, registrar_id, since) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![dev, account.0, change.registrar.0, t(change.at)],
                )?;
            }
            let a = AuditRow::of(&change, &previous);
            tx.execute(
                &format!(
                    "INSERT INTO association_audit ({}) VALUES \
                     (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    AuditRow::COLUMNS
                ),
                params![
                    a.action,
                    a.device,
                    a.account_id,
                    a.registrar_id,
                    a.at,
                    a.label_fingerprint,
                    a.label_device_type,
                    a.label_product_number,
                    a.label_had_pin,
                    a.previous_accounts
                ],
            )?;
            let seq = i2u(tx.last_insert_rowid());
            Ok(ChangeOutcome::Applied {
                seq,
                now_associated: accounts_of(tx, &change.device)?,
            })
        })
        .await
    }

    async fn associations_of_device(&self, device: &KeyId) -> Result<Vec<Association>, StoreError> {
        let device = *device;
        self.run(Access::Read, move |tx, _| {
            let mut stmt = tx.prepare(
                "SELECT account_id, registrar_id, since FROM associations WHERE device = ?1 \
                 ORDER BY since, id",
            )?;
            let rows = stmt.query_map([device.as_bytes().as_slice()], |r| {
                Ok(Association {
                    device,
                    account: AccountId(r.get(0)?),
                    registrar: RegistrarId(r.get(1)?),
                    since: instant(r.get(2)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn devices_of_account(&self, account: AccountId) -> Result<Vec<KeyId>, StoreError> {
        self.run(Access::Read, move |tx, _| {
            let mut stmt =
                tx.prepare("SELECT device FROM associations WHERE account_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map([account.0], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|r| key_id(&r?)).collect()
        })
        .await
    }

    async fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(Access::Read, move |tx, _| {
            query_audit(
                tx,
                &format!(
                    "SELECT {} FROM association_audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    AuditRow::COLUMNS
                ),
                params![u2i(after), limit],
            )
        })
        .await
    }

    async fn device_history(&self, device: &KeyId) -> Result<Vec<AuditEntry>, StoreError> {
        let device = *device;
        self.run(Access::Read, move |tx, _| {
            query_audit(
                tx,
                &format!(
                    "SELECT {} FROM association_audit WHERE device = ?1 ORDER BY seq",
                    AuditRow::COLUMNS
                ),
                [device.as_bytes().as_slice()],
            )
        })
        .await
    }
}

fn read_registrar(r: &Row<'_>) -> Result<Registrar, StoreError> {
    RegistrarRow {
        id: r.get(0)?,
        name: r.get(1)?,
        credential_kind: r.get(2)?,
        credential: r.get(3)?,
        disabled: r.get(4)?,
        created_at: r.get(5)?,
    }
    .registrar()
}

fn query_registrar(
    tx: &Transaction<'_>,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Option<Registrar>, StoreError> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {} FROM registrars WHERE {filter}",
        RegistrarRow::COLUMNS
    ))?;
    let mut rows = stmt.query(p)?;
    rows.next()?.map(read_registrar).transpose()
}

impl RegistrarStore for SqliteStore {
    async fn add_registrar(
        &self,
        name: &str,
        credential: RegistrarCredential,
        now: Instant,
    ) -> Result<RegistrarId, StoreError> {
        let name = name.to_owned();
        self.run(Access::Write, move |tx, _| {
            let (kind, cred) = credential_parts(&credential);
            if exists(
                tx,
                "SELECT EXISTS (SELECT 1 FROM registrars WHERE credential_kind = ?1 AND \
                 credential = ?2)",
                params![kind, cred],
            )? {
                return Err(StoreError::Conflict {
                    what: "registrar credential",
                });
            }
            tx.execute(
                "INSERT INTO registrars (name, credential_kind, credential, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![name, kind, cred, t(now)],
            )?;
            Ok(RegistrarId(tx.last_insert_rowid()))
        })
        .await
    }

    async fn registrar_by_credential(
        &self,
        credential: &RegistrarCredential,
    ) -> Result<Option<Registrar>, StoreError> {
        let (kind, cred) = credential_parts(credential);
        self.run(Access::Read, move |tx, _| {
            query_registrar(
                tx,
                "credential_kind = ?1 AND credential = ?2",
                params![kind, cred],
            )
        })
        .await
    }

    async fn registrar(&self, id: RegistrarId) -> Result<Option<Registrar>, StoreError> {
        self.run(Access::Read, move |tx, _| {
            query_registrar(tx, "id = ?1", [id.0])
        })
        .await
    }

    async fn set_registrar_disabled(
        &self,
        id: RegistrarId,
        disabled: bool,
    ) -> Result<(), StoreError> {
        self.run(Access::Write, move |tx, _| {
            let n = tx.execute(
                "UPDATE registrars SET disabled = ?2 WHERE id = ?1",
                params![id.0, disabled],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "registrar" });
            }
            Ok(())
        })
        .await
    }
}

fn server_keys_in(tx: &Transaction<'_>) -> Result<Vec<ServerKeyRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {} FROM server_keys ORDER BY seq",
        ServerKeyRow::COLUMNS
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(ServerKeyRow {
            key_id: r.get(0)?,
            role: r.get(1)?,
            public_key: r.get(2)?,
            state: r.get(3)?,
            created_at: r.get(4)?,
            revoked_at: r.get(5)?,
            replacement: r.get(6)?,
        })
    })?;
    rows.map(|row| row?.record()).collect()
}

fn write_key_state(tx: &Transaction<'_>, k: &ServerKeyRecord) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE server_keys SET state = ?2, revoked_at = ?3, replacement = ?4 WHERE key_id = ?1",
        params![
            k.key_id.as_bytes().as_slice(),
            key_state_code(k.state),
            k.revoked_at.map(t),
            k.replacement.map(|r| r.as_bytes().to_vec())
        ],
    )?;
    Ok(())
}

impl ServerKeyStore for SqliteStore {
    async fn add_server_key(
        &self,
        role: KeyRole,
        public_key: PublicKey,
        now: Instant,
    ) -> Result<KeyId, StoreError> {
        self.run(Access::Write, move |tx, _| {
            let key_id = public_key.key_id();
            let existing: Option<u8> = tx
                .query_row(
                    "SELECT role FROM server_keys WHERE key_id = ?1",
                    [key_id.as_bytes().as_slice()],
                    |r| r.get(0),
                )
                .optional()?;
            match existing {
                Some(r) if r == role.to_u8() => return Ok(key_id),
                Some(_) => return Err(StoreError::Conflict { what: "server key" }),
                None => {}
            }
            tx.execute(
                "INSERT INTO server_keys (key_id, role, public_key, state, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    key_id.as_bytes().as_slice(),
                    role.to_u8(),
                    public_key.to_spki_der(),
                    key_state_code(KeyState::Active),
                    t(now)
                ],
            )?;
            Ok(key_id)
        })
        .await
    }

    async fn server_keys(&self) -> Result<Vec<ServerKeyRecord>, StoreError> {
        self.run(Access::Read, |tx, _| server_keys_in(tx)).await
    }

    async fn retire_server_key(&self, key: &KeyId) -> Result<(), StoreError> {
        let key = *key;
        self.run(Access::Write, move |tx, _| {
            let mut keys = server_keys_in(tx)?;
            retire_in(&mut keys, &key)?;
            if let Some(k) = keys.iter().find(|k| k.key_id == key) {
                write_key_state(tx, k)?;
            }
            Ok(())
        })
        .await
    }

    async fn revoke_server_key(
        &self,
        key: &KeyId,
        replacement: Option<KeyId>,
        now: Instant,
    ) -> Result<(), StoreError> {
        let key = *key;
        self.run(Access::Write, move |tx, _| {
            let mut keys = server_keys_in(tx)?;
            if revoke_in(&mut keys, &key, replacement, now)?
                && let Some(k) = keys.iter().find(|k| k.key_id == key)
            {
                write_key_state(tx, k)?;
            }
            Ok(())
        })
        .await
    }

    async fn add_key_map_rule(&self, rule: KeyMapRule) -> Result<(), StoreError> {
        if rule.first_serial > rule.last_serial {
            return Err(StoreError::InvalidInput("serial range is empty"));
        }
        self.run(Access::Write, move |tx, _| {
            let kid = rule.key_id.as_bytes().as_slice();
            if !exists(
                tx,
                "SELECT EXISTS (SELECT 1 FROM server_keys WHERE key_id = ?1)",
                [kid],
            )? {
                return Err(StoreError::NotFound { what: "server key" });
            }
            tx.execute(
                "INSERT INTO key_map (device_type, first_serial, last_serial, key_id) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    rule.device_type,
                    u2i(rule.first_serial),
                    u2i(rule.last_serial),
                    kid
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn key_map(&self) -> Result<Vec<KeyMapRule>, StoreError> {
        self.run(Access::Read, |tx, _| {
            let mut stmt = tx.prepare(
                "SELECT device_type, first_serial, last_serial, key_id FROM key_map ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(KeyMapRow {
                    device_type: r.get(0)?,
                    first_serial: r.get(1)?,
                    last_serial: r.get(2)?,
                    key_id: r.get(3)?,
                })
            })?;
            rows.map(|row| row?.rule()).collect()
        })
        .await
    }
}

impl SessionStore for SqliteStore {
    async fn compare_and_swap_session(
        &self,
        id: SessionId,
        expected: Option<u64>,
        state: Vec<u8>,
        expires_at: Instant,
        now: Instant,
    ) -> Result<SessionCas, StoreError> {
        self.run(Access::Write, move |tx, cipher| {
            let current: Option<u64> = tx
                .query_row(
                    "SELECT version FROM sessions WHERE id = ?1 AND expires_at > ?2",
                    params![id.0.as_slice(), t(now)],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map(i2u);
            if current != expected {
                return Ok(SessionCas::Conflict { current });
            }
            let version = current.unwrap_or(0) + 1;
            let sealed = cipher.seal(session_field(&session_row(&id, version)), &state)?;
            // An expired row may still be there: replace it.
            tx.execute(
                "INSERT INTO sessions (id, version, state_sealed, expires_at) VALUES \
                 (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
                 state_sealed = excluded.state_sealed, expires_at = excluded.expires_at",
                params![id.0.as_slice(), u2i(version), sealed, t(expires_at)],
            )?;
            Ok(SessionCas::Written { version })
        })
        .await
    }

    async fn session(
        &self,
        id: SessionId,
        now: Instant,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.run(Access::Read, move |tx, cipher| {
            let row: Option<(i64, Vec<u8>, i64)> = tx
                .query_row(
                    "SELECT version, state_sealed, expires_at FROM sessions \
                     WHERE id = ?1 AND expires_at > ?2",
                    params![id.0.as_slice(), t(now)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((version, sealed, expires)) = row else {
                return Ok(None);
            };
            let version = i2u(version);
            let state = cipher.open(session_field(&session_row(&id, version)), &sealed)?;
            Ok(Some(SessionRecord {
                id,
                version,
                state: state.to_vec(),
                expires_at: instant(expires),
            }))
        })
        .await
    }

    async fn issue_nonce(
        &self,
        nonce: Nonce,
        session: SessionId,
        expires_at: Instant,
    ) -> Result<(), StoreError> {
        self.run(Access::Write, move |tx, _| {
            let n = tx.execute(
                "INSERT INTO nonces (nonce, session, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (nonce) DO NOTHING",
                params![nonce_bytes(&nonce), session.0.as_slice(), t(expires_at)],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict { what: "nonce" });
            }
            Ok(())
        })
        .await
    }

    async fn consume_nonce(
        &self,
        nonce: Nonce,
        session: SessionId,
        now: Instant,
    ) -> Result<NonceUse, StoreError> {
        self.run(Access::Write, move |tx, _| {
            // One conditional UPDATE: whoever changes the row consumed the nonce.
            let n = tx.execute(
                "UPDATE nonces SET used = 1 WHERE nonce = ?1 AND session = ?2 AND used = 0 \
                 AND expires_at > ?3",
                params![nonce_bytes(&nonce), session.0.as_slice(), t(now)],
            )?;
            if n == 1 {
                return Ok(NonceUse::Consumed);
            }
            let row: Option<(Vec<u8>, bool)> = tx
                .query_row(
                    "SELECT session, used FROM nonces WHERE nonce = ?1",
                    [nonce_bytes(&nonce)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(nonce_refusal(row, &session))
        })
        .await
    }

    async fn put_response_if_absent(
        &self,
        key: ResponseKey,
        response: StoredResponse,
    ) -> Result<PutResponse, StoreError> {
        self.run(Access::Write, move |tx, _| {
            let n = tx.execute(
                "INSERT INTO responses (session, seq, request_digest, response, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (session, seq) DO NOTHING",
                params![
                    key.session.0.as_slice(),
                    u2i(key.seq),
                    response.request_digest.as_slice(),
                    response.response,
                    t(response.expires_at)
                ],
            )?;
            if n == 1 {
                return Ok(PutResponse::Stored);
            }
            let existing =
                read_response(tx, &key, None)?.ok_or(StoreError::Corrupt { what: "response" })?;
            Ok(PutResponse::Existing(existing))
        })
        .await
    }

    async fn stored_response(
        &self,
        key: ResponseKey,
        now: Instant,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.run(Access::Read, move |tx, _| {
            read_response(tx, &key, Some(now))
        })
        .await
    }
}

fn read_response(
    tx: &Transaction<'_>,
    key: &ResponseKey,
    now: Option<Instant>,
) -> Result<Option<StoredResponse>, StoreError> {
    let row: Option<(Vec<u8>, Vec<u8>, i64)> = tx
        .query_row(
            "SELECT request_digest, response, expires_at FROM responses \
             WHERE session = ?1 AND seq = ?2",
            params![key.session.0.as_slice(), u2i(key.seq)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((d, response, expires)) = row else {
        return Ok(None);
    };
    stored_response(&d, response, expires, now)
}

fn attempts_in(tx: &Transaction<'_>, key: &CounterKey) -> Result<AttemptState, StoreError> {
    let row: Option<(i64, i64, Option<i64>)> = tx
        .query_row(
            "SELECT failures, lockouts, locked_until FROM attempts WHERE scope = ?1 AND \
             subject = ?2",
            params![key.scope.as_str(), key.subject],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    attempt_state(row)
}

impl AttemptStore for SqliteStore {
    async fn increment_counter(
        &self,
        key: CounterKey,
        window_start: Instant,
        expires_at: Instant,
    ) -> Result<u64, StoreError> {
        self.run(Access::Write, move |tx, _| {
            let count: i64 = tx.query_row(
                "INSERT INTO counters (scope, subject, window_start, count, expires_at) \
                 VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT (scope, subject, window_start) \
                 DO UPDATE SET count = count + 1 RETURNING count",
                params![
                    key.scope.as_str(),
                    key.subject,
                    t(window_start),
                    t(expires_at)
                ],
                |r| r.get(0),
            )?;
            Ok(i2u(count))
        })
        .await
    }

    async fn record_failure(
        &self,
        key: CounterKey,
        policy: LockoutPolicy,
        now: Instant,
    ) -> Result<AttemptState, StoreError> {
        self.run(Access::Write, move |tx, _| {
            // Read and write inside one IMMEDIATE transaction: no other writer in between.
            let next = after_failure(attempts_in(tx, &key)?, &policy, now);
            tx.execute(
                "INSERT INTO attempts (scope, subject, failures, lockouts, locked_until) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope, subject) DO UPDATE SET \
                 failures = excluded.failures, lockouts = excluded.lockouts, \
                 locked_until = excluded.locked_until",
                params![
                    key.scope.as_str(),
                    key.subject,
                    next.failures,
                    next.lockouts,
                    next.locked_until.map(t)
                ],
            )?;
            Ok(next)
        })
        .await
    }

    async fn attempt_state(&self, key: CounterKey) -> Result<AttemptState, StoreError> {
        self.run(Access::Read, move |tx, _| attempts_in(tx, &key))
            .await
    }

    async fn clear_failures(&self, key: CounterKey) -> Result<(), StoreError> {
        self.run(Access::Write, move |tx, _| {
            tx.execute(
                "UPDATE attempts SET failures = 0 WHERE scope = ?1 AND subject = ?2",
                params![key.scope.as_str(), key.subject],
            )?;
            Ok(())
        })
        .await
    }
}

impl OutcomeStore for SqliteStore {
    async fn record_outcome(&self, o: OutcomeRecord) -> Result<(), StoreError> {
        self.run(Access::Write, move |tx, _| {
            tx.execute(
                "INSERT INTO outcomes (device, session, network_id, kind, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    o.device.as_bytes().as_slice(),
                    o.session.0.as_slice(),
                    o.network.map(|n| n.0),
                    o.kind as u8,
                    t(o.at)
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn outcomes_of_device(&self, device: &KeyId) -> Result<Vec<OutcomeRecord>, StoreError> {
        let device = *device;
        self.run(Access::Read, move |tx, _| {
            let mut stmt = tx.prepare(
                "SELECT session, network_id, kind, at FROM outcomes WHERE device = ?1 \
                 ORDER BY seq",
            )?;
            let rows = stmt.query_map([device.as_bytes().as_slice()], |r| {
                Ok(OutcomeRow {
                    session: r.get(0)?,
                    network_id: r.get(1)?,
                    kind: r.get(2)?,
                    at: r.get(3)?,
                })
            })?;
            rows.map(|row| row?.record(device)).collect()
        })
        .await
    }

    async fn record_scan_report(&self, report: ScanReport) -> Result<(), StoreError> {
        self.run(Access::Write, move |tx, cipher| {
            let sealed = seal_scan_report(cipher, &report)?;
            tx.execute(
                "INSERT INTO scan_reports (device, session, report_sealed, at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    report.device.as_bytes().as_slice(),
                    report.session.0.as_slice(),
                    sealed,
                    t(report.at)
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn scan_reports_of_device(&self, device: &KeyId) -> Result<Vec<ScanReport>, StoreError> {
        let device = *device;
        self.run(Access::Read, move |tx, cipher| {
            let mut stmt = tx.prepare(
                "SELECT session, report_sealed, at FROM scan_reports WHERE device = ?1 \
                 ORDER BY seq",
            )?;
            let rows = stmt.query_map([device.as_bytes().as_slice()], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?))
            })?;
            rows.map(|row| {
                let (session, sealed, at) = row?;
                open_scan_report(cipher, device, &session, &sealed, at)
            })
            .collect()
        })
        .await
    }

    async fn purge_expired(
        &self,
        now: Instant,
        retention: Retention,
    ) -> Result<PurgeReport, StoreError> {
        let (scan_cutoff, outcome_cutoff) = retention.cutoffs(now);
        let (scan_cutoff, outcome_cutoff) = (t(scan_cutoff), t(outcome_cutoff));
        self.run(Access::Write, move |tx, _| {
            let now = t(now);
            let del =
                |sql: &str, v: i64| -> Result<u64, StoreError> { Ok(tx.execute(sql, [v])? as u64) };
            Ok(PurgeReport {
                sessions: del("DELETE FROM sessions WHERE expires_at <= ?1", now)?,
                nonces: del("DELETE FROM nonces WHERE expires_at <= ?1", now)?,
                responses: del("DELETE FROM responses WHERE expires_at <= ?1", now)?,
                counters: del("DELETE FROM counters WHERE expires_at <= ?1", now)?,
                scan_reports: del("DELETE FROM scan_reports WHERE at < ?1", scan_cutoff)?,
                outcomes: del("DELETE FROM outcomes WHERE at < ?1", outcome_cutoff)?,
            })
        })
        .await
    }
}
