//! The store traits on SQLite.

use rusqlite::{OptionalExtension, Params, Row, Transaction, params};
use zerotouch_core::{Instant, KeyId, KeyMapRule, KeyRole, KeyState, Nonce, PublicKey, SessionId};

use super::{Access, SqliteStore};
use crate::association::{ChangePlan, plan_change};
use crate::column_codec::{i2u, instant, key_id, nonce_bytes, t, u2i};
use crate::rows::{
    ATTEMPT_COLUMNS, AuditRow, DeviceRow, KeyMapRow, NONCE_COLUMNS, NetworkRow, OutcomeRow,
    RESPONSE_COLUMNS, RegistrarRow, SCAN_COLUMNS, SESSION_COLUMNS, ServerKeyRow, attempt_state,
    changed, columns_through, credential_parts, distinct_devices, key_prefix_range, key_state_code,
    nonce_refusal, open_scan_report, open_session, seal_passphrase, seal_scan_report, seal_session,
    stored_response,
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

columns_through!(Row<'_>, get);

/// Every row `sql` selects, each made into a `T` by `f`.
fn all<T>(
    tx: &Transaction<'_>,
    sql: &str,
    p: impl Params,
    mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = tx.prepare_cached(sql)?;
    let mut rows = stmt.query(p)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(f(r)?);
    }
    Ok(out)
}

/// The first row `sql` selects, if any, made into a `T` by `f`.
fn first<T>(
    tx: &Transaction<'_>,
    sql: &str,
    p: impl Params,
    f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = tx.prepare_cached(sql)?;
    let mut rows = stmt.query(p)?;
    rows.next()?.map(f).transpose()
}

fn exists(tx: &Transaction<'_>, sql: &str, p: impl Params) -> Result<bool, StoreError> {
    Ok(tx.query_row(sql, p, |r| r.get(0))?)
}

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
            all(
                tx,
                &format!(
                    "SELECT {} FROM networks WHERE account_id = ?1 ORDER BY id",
                    NetworkRow::COLUMNS
                ),
                [account.0],
                |r| NetworkRow::read(r)?.open(account, cipher),
            )
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

fn device_in(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    key: &KeyId,
) -> Result<Option<DeviceRecord>, StoreError> {
    first(
        tx,
        &format!(
            "SELECT {} FROM devices WHERE key_id = ?1",
            DeviceRow::COLUMNS
        ),
        [key.as_bytes().as_slice()],
        |r| DeviceRow::read(r)?.open(cipher),
    )
}

impl DeviceStore for SqliteStore {
    async fn import_devices(&self, devices: Vec<DeviceRecord>) -> Result<ImportReport, StoreError> {
        distinct_devices(&devices)?;
        self.run(Access::Write, move |tx, cipher| {
            let mut report = ImportReport::default();
            for d in &devices {
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
        let Some((low, high)) = key_prefix_range(prefix) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(Access::Read, move |tx, _| {
            all(
                tx,
                "SELECT key_id FROM devices WHERE key_id BETWEEN ?1 AND ?2 ORDER BY key_id LIMIT ?3",
                params![low.as_slice(), high.as_slice(), limit],
                |r| key_id(&r.get::<_, Vec<u8>>(0)?),
            )
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
            changed(n > 0, StoreError::NotFound { what: "device" })
        })
        .await
    }
}

fn accounts_of(tx: &Transaction<'_>, device: &KeyId) -> Result<Vec<AccountId>, StoreError> {
    all(
        tx,
        "SELECT account_id FROM associations WHERE device = ?1 ORDER BY since, id",
        [device.as_bytes().as_slice()],
        |r| Ok(AccountId(r.get(0)?)),
    )
}

fn read_audit(r: &Row<'_>) -> Result<AuditEntry, StoreError> {
    AuditRow::read(r)?.entry()
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
            all(
                tx,
                "SELECT account_id, registrar_id, since FROM associations WHERE device = ?1 \
                 ORDER BY since, id",
                [device.as_bytes().as_slice()],
                |r| {
                    Ok(Association {
                        device,
                        account: AccountId(r.get(0)?),
                        registrar: RegistrarId(r.get(1)?),
                        since: instant(r.get(2)?),
                    })
                },
            )
        })
        .await
    }

    async fn devices_of_account(&self, account: AccountId) -> Result<Vec<KeyId>, StoreError> {
        self.run(Access::Read, move |tx, _| {
            all(
                tx,
                "SELECT device FROM associations WHERE account_id = ?1 ORDER BY id",
                [account.0],
                |r| key_id(&r.get::<_, Vec<u8>>(0)?),
            )
        })
        .await
    }

    async fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(Access::Read, move |tx, _| {
            all(
                tx,
                &format!(
                    "SELECT {} FROM association_audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    AuditRow::COLUMNS
                ),
                params![u2i(after), limit],
                read_audit,
            )
        })
        .await
    }

    async fn device_history(&self, device: &KeyId) -> Result<Vec<AuditEntry>, StoreError> {
        let device = *device;
        self.run(Access::Read, move |tx, _| {
            all(
                tx,
                &format!(
                    "SELECT {} FROM association_audit WHERE device = ?1 ORDER BY seq",
                    AuditRow::COLUMNS
                ),
                [device.as_bytes().as_slice()],
                read_audit,
            )
        })
        .await
    }
}

fn query_registrar(
    tx: &Transaction<'_>,
    filter: &str,
    p: impl Params,
) -> Result<Option<Registrar>, StoreError> {
    first(
        tx,
        &format!(
            "SELECT {} FROM registrars WHERE {filter}",
            RegistrarRow::COLUMNS
        ),
        p,
        |r| RegistrarRow::read(r)?.registrar(),
    )
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
            changed(n > 0, StoreError::NotFound { what: "registrar" })
        })
        .await
    }
}

fn server_keys_in(tx: &Transaction<'_>) -> Result<Vec<ServerKeyRecord>, StoreError> {
    all(
        tx,
        &format!(
            "SELECT {} FROM server_keys ORDER BY seq",
            ServerKeyRow::COLUMNS
        ),
        [],
        |r| ServerKeyRow::read(r)?.record(),
    )
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
            write_key_state(tx, retire_in(&mut keys, &key)?)
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
            match revoke_in(&mut keys, &key, replacement, now)? {
                Some(revoked) => write_key_state(tx, revoked),
                None => Ok(()),
            }
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
            all(
                tx,
                &format!("SELECT {} FROM key_map ORDER BY seq", KeyMapRow::COLUMNS),
                [],
                |r| KeyMapRow::read(r)?.rule(),
            )
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
            let sealed = seal_session(cipher, &id, version, &state)?;
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
            first(
                tx,
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1 AND expires_at > ?2"
                ),
                params![id.0.as_slice(), t(now)],
                |r| open_session(cipher, id, r),
            )
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
            changed(n > 0, StoreError::Conflict { what: "nonce" })
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
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {NONCE_COLUMNS} FROM nonces WHERE nonce = ?1"
            ))?;
            let mut rows = stmt.query([nonce_bytes(&nonce)])?;
            nonce_refusal(rows.next()?, &session)
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
    Ok(first(
        tx,
        &format!("SELECT {RESPONSE_COLUMNS} FROM responses WHERE session = ?1 AND seq = ?2"),
        params![key.session.0.as_slice(), u2i(key.seq)],
        |r| stored_response(r, now),
    )?
    .flatten())
}

fn attempts_in(tx: &Transaction<'_>, key: &CounterKey) -> Result<AttemptState, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE scope = ?1 AND subject = ?2"
    ))?;
    let mut rows = stmt.query(params![key.scope.as_str(), key.subject])?;
    attempt_state(rows.next()?)
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
            all(
                tx,
                &format!(
                    "SELECT {} FROM outcomes WHERE device = ?1 ORDER BY seq",
                    OutcomeRow::COLUMNS
                ),
                [device.as_bytes().as_slice()],
                |r| OutcomeRow::read(r)?.record(device),
            )
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
            all(
                tx,
                &format!("SELECT {SCAN_COLUMNS} FROM scan_reports WHERE device = ?1 ORDER BY seq"),
                [device.as_bytes().as_slice()],
                |r| open_scan_report(cipher, device, r),
            )
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
