//! The store traits on PostgreSQL.
//!
//! Each operation is one transaction in READ COMMITTED, where every statement sees what was
//! committed before it started and a row another transaction is changing is waited for. So a
//! race is settled by one statement that both checks and writes (`UPDATE … WHERE`, `INSERT …
//! ON CONFLICT`), or by locking the row before reading it (`SELECT … FOR UPDATE`); never by a
//! read followed by a write.

use zerotouch_core::{Instant, KeyId, KeyMapRule, KeyRole, KeyState, Nonce, PublicKey, SessionId};

use super::{AUDIT_LOCK, Params, PostgresStore, Tx};
use crate::association::{ChangePlan, plan_change};
use crate::column_codec::{i2u, instant, key_id, nonce_bytes, t, u2i};
use crate::rows::{
    ATTEMPT_COLUMNS, AuditRow, DeviceRow, KeyMapRow, NONCE_COLUMNS, NetworkRow, OutcomeRow,
    RESPONSE_COLUMNS, RegistrarRow, SCAN_COLUMNS, SESSION_COLUMNS, ServerKeyRow, attempt_state,
    changed, credential_parts, distinct_devices, key_prefix_range, key_state_code, nonce_refusal,
    open_scan_report, open_session, seal_passphrase, seal_scan_report, seal_session,
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

/// A `LIMIT` from a `usize`.
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl AccountStore for PostgresStore {
    async fn create_account(&self, name: &str, now: Instant) -> Result<AccountId, StoreError> {
        let name = name.to_owned();
        self.run(async move |tx, _| {
            let id = tx
                .value(
                    "INSERT INTO accounts (name, created_at) VALUES ($1, $2) RETURNING id",
                    &[&name, &t(now)],
                )
                .await?;
            Ok(AccountId(id))
        })
        .await
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        self.run(async move |tx, _| {
            tx.first(
                "SELECT name, created_at FROM accounts WHERE id = $1",
                &[&id.0],
                |r| {
                    Ok(Account {
                        id,
                        name: r.try_get(0)?,
                        created_at: instant(r.try_get(1)?),
                    })
                },
            )
            .await
        })
        .await
    }

    async fn add_network(&self, n: NewNetwork, now: Instant) -> Result<NetworkId, StoreError> {
        n.validate()?;
        self.run(async move |tx, cipher| {
            if !tx
                .exists("SELECT 1 FROM accounts WHERE id = $1", &[&n.account.0])
                .await?
            {
                return Err(StoreError::NotFound { what: "account" });
            }
            // The id comes from the sequence before the row is written, so the sealed
            // passphrase can be bound to it; sequence values are never handed out twice.
            let id: i64 = tx
                .value(
                    "SELECT nextval(pg_get_serial_sequence('networks', 'id'))",
                    &[],
                )
                .await?;
            let sealed = seal_passphrase(cipher, id, &n.passphrase)?;
            tx.execute(
                "INSERT INTO networks (id, account_id, ssid, passphrase_sealed, security, bands, \
                 created_at) OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &id,
                    &n.account.0,
                    &n.ssid,
                    &sealed,
                    &i64::from(n.security.to_u8()),
                    &i64::from(n.bands.bits()),
                    &t(now),
                ],
            )
            .await?;
            Ok(NetworkId(id))
        })
        .await
    }

    async fn networks_of_account(&self, account: AccountId) -> Result<Vec<Network>, StoreError> {
        let sql = format!(
            "SELECT {} FROM networks WHERE account_id = $1 ORDER BY id",
            NetworkRow::COLUMNS
        );
        self.run(async move |tx, cipher| {
            tx.all(&sql, &[&account.0], |r| {
                NetworkRow::read(r)?.open(account, cipher)
            })
            .await
        })
        .await
    }

    async fn remove_network(&self, id: NetworkId) -> Result<bool, StoreError> {
        self.run(async move |tx, _| {
            Ok(tx
                .execute("DELETE FROM networks WHERE id = $1", &[&id.0])
                .await?
                > 0)
        })
        .await
    }
}

async fn device_in(
    tx: &Tx<'_>,
    cipher: &FieldCipher,
    key: &KeyId,
) -> Result<Option<DeviceRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM devices WHERE key_id = $1",
        DeviceRow::COLUMNS
    );
    tx.first(&sql, &[&key.as_bytes().as_slice()], |r| {
        DeviceRow::read(r)?.open(cipher)
    })
    .await
}

impl DeviceStore for PostgresStore {
    async fn import_devices(&self, devices: Vec<DeviceRecord>) -> Result<ImportReport, StoreError> {
        distinct_devices(&devices)?;
        let insert = format!(
            "INSERT INTO devices ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (key_id) DO NOTHING",
            DeviceRow::COLUMNS
        );
        self.run(async move |tx, cipher| {
            let mut report = ImportReport::default();
            for d in &devices {
                let row = DeviceRow::seal(d, cipher)?;
                let inserted = tx
                    .execute(
                        &insert,
                        &[
                            &row.key_id,
                            &row.identity_kind,
                            &row.identity,
                            &row.device_type,
                            &row.serial,
                            &row.product_number,
                            &row.pin_sealed,
                            &row.secret_sealed,
                            &row.blocked,
                            &row.created_at,
                        ],
                    )
                    .await?;
                if inserted == 1 {
                    report.added += 1;
                    continue;
                }
                // Present already (perhaps committed a moment ago by another process): the
                // same record is fine, another one fails the batch, which rolls it back.
                match device_in(tx, cipher, &d.key_id).await? {
                    Some(existing) if &existing == d => report.unchanged += 1,
                    _ => return Err(StoreError::Conflict { what: "device" }),
                }
            }
            Ok(report)
        })
        .await
    }

    async fn device(&self, key: &KeyId) -> Result<Option<DeviceRecord>, StoreError> {
        let key = *key;
        self.run(async move |tx, cipher| device_in(tx, cipher, &key).await)
            .await
    }

    async fn devices_with_key_prefix(
        &self,
        prefix: &[u8],
        limit_to: usize,
    ) -> Result<Vec<KeyId>, StoreError> {
        let Some((low, high)) = key_prefix_range(prefix) else {
            return Ok(Vec::new());
        };
        self.run(async move |tx, _| {
            tx.all(
                "SELECT key_id FROM devices WHERE key_id BETWEEN $1 AND $2 ORDER BY key_id \
                 LIMIT $3",
                &[&low.as_slice(), &high.as_slice(), &limit(limit_to)],
                |r| key_id(r.try_get(0)?),
            )
            .await
        })
        .await
    }

    async fn set_blocked(&self, key: &KeyId, blocked: bool) -> Result<(), StoreError> {
        let key = *key;
        self.run(async move |tx, _| {
            let n = tx
                .execute(
                    "UPDATE devices SET blocked = $2 WHERE key_id = $1",
                    &[&key.as_bytes().as_slice(), &blocked],
                )
                .await?;
            changed(n > 0, StoreError::NotFound { what: "device" })
        })
        .await
    }
}

async fn accounts_of(tx: &Tx<'_>, device: &[u8]) -> Result<Vec<AccountId>, StoreError> {
    tx.all(
        "SELECT account_id FROM associations WHERE device = $1 ORDER BY since, id",
        &[&device],
        |r| Ok(AccountId(r.try_get(0)?)),
    )
    .await
}

impl AssociationStore for PostgresStore {
    async fn apply_association_change(
        &self,
        change: AssociationChange,
    ) -> Result<ChangeOutcome, StoreError> {
        let insert_audit = format!(
            "INSERT INTO association_audit ({}) VALUES \
             (DEFAULT, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq",
            AuditRow::COLUMNS
        );
        self.run(async move |tx, _| {
            let dev = change.device.as_bytes().as_slice();
            // Changes to one device wait for each other here, so the policy below sees a
            // set of associations no one else is changing.
            if !tx
                .exists(
                    "SELECT 1 FROM devices WHERE key_id = $1 FOR UPDATE",
                    &[&dev],
                )
                .await?
            {
                return Err(StoreError::NotFound { what: "device" });
            }
            if !tx
                .exists("SELECT 1 FROM accounts WHERE id = $1", &[&change.account.0])
                .await?
            {
                return Err(StoreError::NotFound { what: "account" });
            }
            if !tx
                .exists(
                    "SELECT 1 FROM registrars WHERE id = $1",
                    &[&change.registrar.0],
                )
                .await?
            {
                return Err(StoreError::NotFound { what: "registrar" });
            }
            let previous = accounts_of(tx, dev).await?;
            let ChangePlan::Apply { remove, add } = plan_change(&previous, &change) else {
                return Ok(ChangeOutcome::Unchanged);
            };
            for account in remove {
                tx.execute(
                    "DELETE FROM associations WHERE device = $1 AND account_id = $2",
                    &[&dev, &account.0],
                )
                .await?;
            }
            if let Some(account) = add {
                tx.execute(
                    "INSERT INTO associations (device, account_id, registrar_id, since) \
                     VALUES ($1, $2, $3, $4)",
                    &[&dev, &account.0, &change.registrar.0, &t(change.at)],
                )
                .await?;
            }
            // Held to commit: audit entries commit in seq order, so a reader paging by seq
            // never skips one that commits later with a smaller seq. Always taken after the
            // device's row lock, so the two locks cannot deadlock.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
                .await?;
            let a = AuditRow::of(&change, &previous);
            let seq: i64 = tx
                .value(
                    &insert_audit,
                    &[
                        &a.action,
                        &a.device,
                        &a.account_id,
                        &a.registrar_id,
                        &a.at,
                        &a.label_fingerprint,
                        &a.label_device_type,
                        &a.label_product_number,
                        &a.label_had_pin,
                        &a.previous_accounts,
                    ],
                )
                .await?;
            Ok(ChangeOutcome::Applied {
                seq: i2u(seq),
                now_associated: accounts_of(tx, dev).await?,
            })
        })
        .await
    }

    async fn associations_of_device(&self, device: &KeyId) -> Result<Vec<Association>, StoreError> {
        let device = *device;
        self.run(async move |tx, _| {
            tx.all(
                "SELECT account_id, registrar_id, since FROM associations WHERE device = $1 \
                 ORDER BY since, id",
                &[&device.as_bytes().as_slice()],
                |r| {
                    Ok(Association {
                        device,
                        account: AccountId(r.try_get(0)?),
                        registrar: RegistrarId(r.try_get(1)?),
                        since: instant(r.try_get(2)?),
                    })
                },
            )
            .await
        })
        .await
    }

    async fn devices_of_account(&self, account: AccountId) -> Result<Vec<KeyId>, StoreError> {
        self.run(async move |tx, _| {
            tx.all(
                "SELECT device FROM associations WHERE account_id = $1 ORDER BY id",
                &[&account.0],
                |r| key_id(r.try_get(0)?),
            )
            .await
        })
        .await
    }

    async fn audit_log(&self, after: u64, limit_to: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!(
            "SELECT {} FROM association_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            AuditRow::COLUMNS
        );
        self.run(async move |tx, _| {
            tx.all(&sql, &[&u2i(after), &limit(limit_to)], |r| {
                AuditRow::read(r)?.entry()
            })
            .await
        })
        .await
    }

    async fn device_history(&self, device: &KeyId) -> Result<Vec<AuditEntry>, StoreError> {
        let device = *device;
        let sql = format!(
            "SELECT {} FROM association_audit WHERE device = $1 ORDER BY seq",
            AuditRow::COLUMNS
        );
        self.run(async move |tx, _| {
            tx.all(&sql, &[&device.as_bytes().as_slice()], |r| {
                AuditRow::read(r)?.entry()
            })
            .await
        })
        .await
    }
}

async fn query_registrar(
    tx: &Tx<'_>,
    filter: &str,
    params: &Params<'_>,
) -> Result<Option<Registrar>, StoreError> {
    let sql = format!(
        "SELECT {} FROM registrars WHERE {filter}",
        RegistrarRow::COLUMNS
    );
    tx.first(&sql, params, |r| RegistrarRow::read(r)?.registrar())
        .await
}

impl RegistrarStore for PostgresStore {
    async fn add_registrar(
        &self,
        name: &str,
        credential: RegistrarCredential,
        now: Instant,
    ) -> Result<RegistrarId, StoreError> {
        let (kind, cred) = credential_parts(&credential);
        let name = name.to_owned();
        self.run(async move |tx, _| {
            tx.first(
                "INSERT INTO registrars (name, credential_kind, credential, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (credential_kind, credential) \
                 DO NOTHING RETURNING id",
                &[&name, &kind, &cred, &t(now)],
                |r| Ok(RegistrarId(r.try_get(0)?)),
            )
            .await?
            .ok_or(StoreError::Conflict {
                what: "registrar credential",
            })
        })
        .await
    }

    async fn registrar_by_credential(
        &self,
        credential: &RegistrarCredential,
    ) -> Result<Option<Registrar>, StoreError> {
        let (kind, cred) = credential_parts(credential);
        self.run(async move |tx, _| {
            query_registrar(
                tx,
                "credential_kind = $1 AND credential = $2",
                &[&kind, &cred],
            )
            .await
        })
        .await
    }

    async fn registrar(&self, id: RegistrarId) -> Result<Option<Registrar>, StoreError> {
        self.run(async move |tx, _| query_registrar(tx, "id = $1", &[&id.0]).await)
            .await
    }

    async fn set_registrar_disabled(
        &self,
        id: RegistrarId,
        disabled: bool,
    ) -> Result<(), StoreError> {
        self.run(async move |tx, _| {
            let n = tx
                .execute(
                    "UPDATE registrars SET disabled = $2 WHERE id = $1",
                    &[&id.0, &disabled],
                )
                .await?;
            changed(n > 0, StoreError::NotFound { what: "registrar" })
        })
        .await
    }
}

/// Every server key in the order added; with `for_update`, locked until commit so that a
/// retirement or revocation decides on keys no one else is changing.
async fn server_keys_in(tx: &Tx<'_>, for_update: bool) -> Result<Vec<ServerKeyRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM server_keys ORDER BY seq{}",
        ServerKeyRow::COLUMNS,
        if for_update { " FOR UPDATE" } else { "" }
    );
    tx.all(&sql, &[], |r| ServerKeyRow::read(r)?.record()).await
}

async fn write_key_state(tx: &Tx<'_>, k: &ServerKeyRecord) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE server_keys SET state = $2, revoked_at = $3, replacement = $4 WHERE key_id = $1",
        &[
            &k.key_id.as_bytes().as_slice(),
            &key_state_code(k.state),
            &k.revoked_at.map(t),
            &k.replacement.map(|r| r.as_bytes().to_vec()),
        ],
    )
    .await?;
    Ok(())
}

impl ServerKeyStore for PostgresStore {
    async fn add_server_key(
        &self,
        role: KeyRole,
        public_key: PublicKey,
        now: Instant,
    ) -> Result<KeyId, StoreError> {
        let key_id = public_key.key_id();
        let role_code = i64::from(role.to_u8());
        let der = public_key.to_spki_der();
        self.run(async move |tx, _| {
            let kid = key_id.as_bytes().as_slice();
            let inserted = tx
                .execute(
                    "INSERT INTO server_keys (key_id, role, public_key, state, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id) DO NOTHING",
                    &[
                        &kid,
                        &role_code,
                        &der,
                        &key_state_code(KeyState::Active),
                        &t(now),
                    ],
                )
                .await?;
            if inserted == 0 {
                // The same key (its id is its public key's hash) is there already: adding it
                // again is a no-op unless it was added for another role.
                let stored: i64 = tx
                    .value("SELECT role FROM server_keys WHERE key_id = $1", &[&kid])
                    .await?;
                if stored != role_code {
                    return Err(StoreError::Conflict { what: "server key" });
                }
            }
            Ok(key_id)
        })
        .await
    }

    async fn server_keys(&self) -> Result<Vec<ServerKeyRecord>, StoreError> {
        self.run(async move |tx, _| server_keys_in(tx, false).await)
            .await
    }

    async fn retire_server_key(&self, key: &KeyId) -> Result<(), StoreError> {
        let key = *key;
        self.run(async move |tx, _| {
            let mut keys = server_keys_in(tx, true).await?;
            write_key_state(tx, retire_in(&mut keys, &key)?).await
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
        self.run(async move |tx, _| {
            let mut keys = server_keys_in(tx, true).await?;
            if let Some(revoked) = revoke_in(&mut keys, &key, replacement, now)? {
                write_key_state(tx, revoked).await?;
            }
            Ok(())
        })
        .await
    }

    async fn add_key_map_rule(&self, rule: KeyMapRule) -> Result<(), StoreError> {
        if rule.first_serial > rule.last_serial {
            return Err(StoreError::InvalidInput("serial range is empty"));
        }
        self.run(async move |tx, _| {
            // One statement: the rule goes in only if its key exists.
            let n = tx
                .execute(
                    "INSERT INTO key_map (device_type, first_serial, last_serial, key_id) \
                     SELECT $1::BIGINT, $2::BIGINT, $3::BIGINT, $4::BYTEA \
                     WHERE EXISTS (SELECT 1 FROM server_keys WHERE key_id = $4::BYTEA)",
                    &[
                        &i64::from(rule.device_type),
                        &u2i(rule.first_serial),
                        &u2i(rule.last_serial),
                        &rule.key_id.as_bytes().as_slice(),
                    ],
                )
                .await?;
            changed(n > 0, StoreError::NotFound { what: "server key" })
        })
        .await
    }

    async fn key_map(&self) -> Result<Vec<KeyMapRule>, StoreError> {
        let sql = format!("SELECT {} FROM key_map ORDER BY seq", KeyMapRow::COLUMNS);
        self.run(async move |tx, _| tx.all(&sql, &[], |r| KeyMapRow::read(r)?.rule()).await)
            .await
    }
}

impl SessionStore for PostgresStore {
    async fn compare_and_swap_session(
        &self,
        id: SessionId,
        expected: Option<u64>,
        state: Vec<u8>,
        expires_at: Instant,
        now: Instant,
    ) -> Result<SessionCas, StoreError> {
        let version = expected.map_or(Ok(1), |v| {
            v.checked_add(1)
                .ok_or(StoreError::InvalidInput("session version overflows"))
        })?;
        self.run(async move |tx, cipher| {
            let sid = id.0.as_slice();
            // The state is sealed for the version it is written at, known before writing.
            let sealed = seal_session(cipher, &id, version, &state)?;
            let (version_i, expires, now_i) = (u2i(version), t(expires_at), t(now));
            let written = match expected {
                // Replaces only a row that has expired: a live one is another writer's.
                None => {
                    tx.execute(
                        "INSERT INTO sessions (id, version, state_sealed, expires_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
                         version = EXCLUDED.version, state_sealed = EXCLUDED.state_sealed, \
                         expires_at = EXCLUDED.expires_at WHERE sessions.expires_at <= $5",
                        &[&sid, &version_i, &sealed, &expires, &now_i],
                    )
                    .await?
                }
                // A concurrent writer of the same version is waited for, then the row is
                // checked again: the second finds the version moved on.
                Some(v) => {
                    tx.execute(
                        "UPDATE sessions SET version = $2, state_sealed = $3, expires_at = $4 \
                         WHERE id = $1 AND version = $6 AND expires_at > $5",
                        &[&sid, &version_i, &sealed, &expires, &now_i, &u2i(v)],
                    )
                    .await?
                }
            };
            if written == 1 {
                return Ok(SessionCas::Written { version });
            }
            let current = tx
                .first(
                    "SELECT version FROM sessions WHERE id = $1 AND expires_at > $2",
                    &[&sid, &now_i],
                    |r| Ok(i2u(r.try_get(0)?)),
                )
                .await?;
            Ok(SessionCas::Conflict { current })
        })
        .await
    }

    async fn session(
        &self,
        id: SessionId,
        now: Instant,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.run(async move |tx, cipher| {
            tx.first(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 AND expires_at > $2"
                ),
                &[&id.0.as_slice(), &t(now)],
                |r| open_session(cipher, id, r),
            )
            .await
        })
        .await
    }

    async fn issue_nonce(
        &self,
        nonce: Nonce,
        session: SessionId,
        expires_at: Instant,
    ) -> Result<(), StoreError> {
        self.run(async move |tx, _| {
            let n = tx
                .execute(
                    "INSERT INTO nonces (nonce, session, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (nonce) DO NOTHING",
                    &[&nonce_bytes(&nonce), &session.0.as_slice(), &t(expires_at)],
                )
                .await?;
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
        self.run(async move |tx, _| {
            let nonce = nonce_bytes(&nonce);
            // One conditional UPDATE: a second consumer waits for the first, then finds the
            // row used and changes nothing.
            let n = tx
                .execute(
                    "UPDATE nonces SET used = TRUE WHERE nonce = $1 AND session = $2 \
                     AND NOT used AND expires_at > $3",
                    &[&nonce, &session.0.as_slice(), &t(now)],
                )
                .await?;
            if n == 1 {
                return Ok(NonceUse::Consumed);
            }
            let row = tx
                .query_opt(
                    &format!("SELECT {NONCE_COLUMNS} FROM nonces WHERE nonce = $1"),
                    &[&nonce],
                )
                .await?;
            nonce_refusal(row.as_ref(), &session)
        })
        .await
    }

    async fn put_response_if_absent(
        &self,
        key: ResponseKey,
        response: StoredResponse,
    ) -> Result<PutResponse, StoreError> {
        self.run(async move |tx, _| {
            let n = tx
                .execute(
                    "INSERT INTO responses (session, seq, request_digest, response, expires_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session, seq) DO NOTHING",
                    &[
                        &key.session.0.as_slice(),
                        &u2i(key.seq),
                        &response.request_digest.as_slice(),
                        &response.response,
                        &t(response.expires_at),
                    ],
                )
                .await?;
            if n == 1 {
                return Ok(PutResponse::Stored);
            }
            // The conflicting row is committed (the INSERT waited for it), so this statement,
            // with a snapshot of its own, sees it.
            let existing = read_response(tx, &key, None)
                .await?
                .ok_or(StoreError::Corrupt { what: "response" })?;
            Ok(PutResponse::Existing(existing))
        })
        .await
    }

    async fn stored_response(
        &self,
        key: ResponseKey,
        now: Instant,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.run(async move |tx, _| read_response(tx, &key, Some(now)).await)
            .await
    }
}

async fn read_response(
    tx: &Tx<'_>,
    key: &ResponseKey,
    now: Option<Instant>,
) -> Result<Option<StoredResponse>, StoreError> {
    Ok(tx
        .first(
            &format!("SELECT {RESPONSE_COLUMNS} FROM responses WHERE session = $1 AND seq = $2"),
            &[&key.session.0.as_slice(), &u2i(key.seq)],
            |r| stored_response(r, now),
        )
        .await?
        .flatten())
}

async fn attempts_in(
    tx: &Tx<'_>,
    key: &CounterKey,
    for_update: bool,
) -> Result<AttemptState, StoreError> {
    let sql = format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE scope = $1 AND subject = $2{}",
        if for_update { " FOR UPDATE" } else { "" }
    );
    let row = tx
        .query_opt(&sql, &[&key.scope.as_str(), &key.subject])
        .await?;
    attempt_state(row.as_ref())
}

impl AttemptStore for PostgresStore {
    async fn increment_counter(
        &self,
        key: CounterKey,
        window_start: Instant,
        expires_at: Instant,
    ) -> Result<u64, StoreError> {
        self.run(async move |tx, _| {
            let count: i64 = tx
                .value(
                    "INSERT INTO counters (scope, subject, window_start, count, expires_at) \
                     VALUES ($1, $2, $3, 1, $4) ON CONFLICT (scope, subject, window_start) \
                     DO UPDATE SET count = counters.count + 1 RETURNING count",
                    &[
                        &key.scope.as_str(),
                        &key.subject,
                        &t(window_start),
                        &t(expires_at),
                    ],
                )
                .await?;
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
        self.run(async move |tx, _| {
            let (scope, subject) = (key.scope.as_str(), &key.subject);
            // Make sure the row exists, then lock it: concurrent failures for one subject
            // take turns from here to commit, each seeing the one before.
            tx.execute(
                "INSERT INTO attempts (scope, subject, failures, lockouts, locked_until) \
                 VALUES ($1, $2, 0, 0, NULL) ON CONFLICT (scope, subject) DO NOTHING",
                &[&scope, subject],
            )
            .await?;
            let next = after_failure(attempts_in(tx, &key, true).await?, &policy, now);
            tx.execute(
                "UPDATE attempts SET failures = $3, lockouts = $4, locked_until = $5 \
                 WHERE scope = $1 AND subject = $2",
                &[
                    &scope,
                    subject,
                    &i64::from(next.failures),
                    &i64::from(next.lockouts),
                    &next.locked_until.map(t),
                ],
            )
            .await?;
            Ok(next)
        })
        .await
    }

    async fn attempt_state(&self, key: CounterKey) -> Result<AttemptState, StoreError> {
        self.run(async move |tx, _| attempts_in(tx, &key, false).await)
            .await
    }

    async fn clear_failures(&self, key: CounterKey) -> Result<(), StoreError> {
        self.run(async move |tx, _| {
            tx.execute(
                "UPDATE attempts SET failures = 0 WHERE scope = $1 AND subject = $2",
                &[&key.scope.as_str(), &key.subject],
            )
            .await?;
            Ok(())
        })
        .await
    }
}

impl OutcomeStore for PostgresStore {
    async fn record_outcome(&self, o: OutcomeRecord) -> Result<(), StoreError> {
        self.run(async move |tx, _| {
            tx.execute(
                "INSERT INTO outcomes (device, session, network_id, kind, at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &o.device.as_bytes().as_slice(),
                    &o.session.0.as_slice(),
                    &o.network.map(|n| n.0),
                    &i64::from(o.kind as u8),
                    &t(o.at),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn outcomes_of_device(&self, device: &KeyId) -> Result<Vec<OutcomeRecord>, StoreError> {
        let device = *device;
        self.run(async move |tx, _| {
            tx.all(
                &format!(
                    "SELECT {} FROM outcomes WHERE device = $1 ORDER BY seq",
                    OutcomeRow::COLUMNS
                ),
                &[&device.as_bytes().as_slice()],
                |r| OutcomeRow::read(r)?.record(device),
            )
            .await
        })
        .await
    }

    async fn record_scan_report(&self, report: ScanReport) -> Result<(), StoreError> {
        self.run(async move |tx, cipher| {
            let sealed = seal_scan_report(cipher, &report)?;
            tx.execute(
                "INSERT INTO scan_reports (device, session, report_sealed, at) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    &report.device.as_bytes().as_slice(),
                    &report.session.0.as_slice(),
                    &sealed,
                    &t(report.at),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn scan_reports_of_device(&self, device: &KeyId) -> Result<Vec<ScanReport>, StoreError> {
        let device = *device;
        self.run(async move |tx, cipher| {
            tx.all(
                &format!("SELECT {SCAN_COLUMNS} FROM scan_reports WHERE device = $1 ORDER BY seq"),
                &[&device.as_bytes().as_slice()],
                |r| open_scan_report(cipher, device, r),
            )
            .await
        })
        .await
    }

    async fn purge_expired(
        &self,
        now: Instant,
        retention: Retention,
    ) -> Result<PurgeReport, StoreError> {
        let (scan_cutoff, outcome_cutoff) = retention.cutoffs(now);
        let (now, scan_cutoff, outcome_cutoff) = (t(now), t(scan_cutoff), t(outcome_cutoff));
        self.run(async move |tx, _| {
            Ok(PurgeReport {
                sessions: tx
                    .execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now])
                    .await?,
                nonces: tx
                    .execute("DELETE FROM nonces WHERE expires_at <= $1", &[&now])
                    .await?,
                responses: tx
                    .execute("DELETE FROM responses WHERE expires_at <= $1", &[&now])
                    .await?,
                counters: tx
                    .execute("DELETE FROM counters WHERE expires_at <= $1", &[&now])
                    .await?,
                scan_reports: tx
                    .execute("DELETE FROM scan_reports WHERE at < $1", &[&scan_cutoff])
                    .await?,
                outcomes: tx
                    .execute("DELETE FROM outcomes WHERE at < $1", &[&outcome_cutoff])
                    .await?,
            })
        })
        .await
    }
}
