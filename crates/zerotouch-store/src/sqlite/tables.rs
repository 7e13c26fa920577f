//! The store traits on SQLite.

use rusqlite::{OptionalExtension, Row, Transaction, params};
use zerotouch_core::{
    DeviceSecret, Instant, KeyId, KeyMapRule, KeyRole, KeyState, Nonce, Passphrase, PublicKey,
    SessionId,
};

use super::codec::{
    decode_seen, digest, encode_seen, i2u, ids_to_text, instant, key_id, nonce_bytes, session_id,
    small, t, text_to_ids, u2i,
};
use super::{Access, SqliteStore};
use crate::association::{ChangePlan, plan_change};
use crate::server_key::{retire_in, revoke_in};
use crate::{
    Account, AccountId, AccountStore, Association, AssociationAction, AssociationChange,
    AssociationStore, AttemptState, AttemptStore, AuditEntry, Bands, ChangeOutcome, CounterKey,
    DeviceIdentity, DeviceRecord, DeviceStore, FieldCipher, ImportReport, LockoutPolicy, Network,
    NetworkId, NewNetwork, NonceUse, OutcomeKind, OutcomeRecord, OutcomeStore, PinRecord,
    PurgeReport, PutResponse, Registrar, RegistrarCredential, RegistrarId, RegistrarStore,
    ResponseKey, Retention, ScanReport, ScannedLabel, SealedField, SecurityType, ServerKeyRecord,
    ServerKeyStore, SessionCas, SessionRecord, SessionStore, StoreError, StoredResponse,
    after_failure,
};

fn passphrase_field(id: &[u8]) -> SealedField<'_> {
    SealedField {
        table: "networks",
        column: "passphrase",
        row: id,
    }
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
            let sealed = cipher.seal(
                passphrase_field(&id.to_be_bytes()),
                n.passphrase.expose_secret(),
            )?;
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
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, u8>(3)?,
                    r.get::<_, u8>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, ssid, sealed, security, bands, created) = row?;
                let opened = cipher.open(passphrase_field(&id.to_be_bytes()), &sealed)?;
                let corrupt = || StoreError::Corrupt { what: "network" };
                out.push(Network {
                    id: NetworkId(id),
                    account,
                    ssid,
                    passphrase: Passphrase::new(&opened).map_err(|_| corrupt())?,
                    security: SecurityType::from_u8(security).ok_or_else(corrupt)?,
                    bands: Bands::from_bits(bands).ok_or_else(corrupt)?,
                    created_at: instant(created),
                });
            }
            Ok(out)
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

const DEVICE_COLUMNS: &str = "key_id, identity_kind, identity, device_type, serial, \
     product_number, pin_sealed, secret_sealed, blocked, created_at";

fn device_field<'a>(column: &'static str, key_id: &'a KeyId) -> SealedField<'a> {
    SealedField {
        table: "devices",
        column,
        row: key_id.as_bytes(),
    }
}

fn read_device(r: &Row<'_>, cipher: &FieldCipher) -> Result<DeviceRecord, StoreError> {
    let key_id = key_id(&r.get::<_, Vec<u8>>(0)?)?;
    let identity = match r.get::<_, u8>(1)? {
        1 => DeviceIdentity::Certificate(r.get(2)?),
        2 => DeviceIdentity::PublicKey(r.get(2)?),
        _ => return Err(StoreError::Corrupt { what: "device" }),
    };
    let pin = match r.get::<_, Option<Vec<u8>>>(6)? {
        Some(sealed) => Some(PinRecord::from_bytes(
            &cipher.open(device_field("pin", &key_id), &sealed)?,
        )?),
        None => None,
    };
    let device_secret = match r.get::<_, Option<Vec<u8>>>(7)? {
        Some(sealed) => Some(
            DeviceSecret::from_slice(&cipher.open(device_field("secret", &key_id), &sealed)?)
                .map_err(|_| StoreError::Corrupt { what: "device" })?,
        ),
        None => None,
    };
    Ok(DeviceRecord {
        key_id,
        identity,
        device_type: small(r.get(3)?, "device type")?,
        serial: i2u(r.get(4)?),
        product_number: r.get(5)?,
        pin,
        device_secret,
        blocked: r.get(8)?,
        created_at: instant(r.get(9)?),
    })
}

fn device_in(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    key: &KeyId,
) -> Result<Option<DeviceRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE key_id = ?1"
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
                let (kind, identity) = match &d.identity {
                    DeviceIdentity::Certificate(der) => (1u8, der),
                    DeviceIdentity::PublicKey(der) => (2u8, der),
                };
                let pin = d
                    .pin
                    .as_ref()
                    .map(|p| cipher.seal(device_field("pin", &d.key_id), &p.to_bytes()))
                    .transpose()?;
                let secret = d
                    .device_secret
                    .as_ref()
                    .map(|s| cipher.seal(device_field("secret", &d.key_id), s.expose_secret()))
                    .transpose()?;
                tx.prepare_cached(&format!(
                    "INSERT INTO devices ({DEVICE_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ))?
                .execute(params![
                    d.key_id.as_bytes().as_slice(),
                    kind,
                    identity,
                    d.device_type,
                    u2i(d.serial),
                    d.product_number,
                    pin,
                    secret,
                    d.blocked,
                    t(d.created_at)
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

const AUDIT_COLUMNS: &str = "seq, action, device, account_id, registrar_id, at, \
     label_fingerprint, label_device_type, label_product_number, label_had_pin, previous_accounts";

fn read_audit(r: &Row<'_>) -> Result<AuditEntry, StoreError> {
    let label = match r.get::<_, Option<String>>(6)? {
        Some(fingerprint) => Some(ScannedLabel {
            fingerprint,
            device_type: small(r.get::<_, Option<i64>>(7)?.unwrap_or(-1), "audit entry")?,
            product_number: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
            had_pin: r.get::<_, Option<bool>>(9)?.unwrap_or(false),
        }),
        None => None,
    };
    Ok(AuditEntry {
        seq: i2u(r.get(0)?),
        change: AssociationChange {
            action: AssociationAction::from_u8(r.get(1)?).ok_or(StoreError::Corrupt {
                what: "audit entry",
            })?,
            device: key_id(&r.get::<_, Vec<u8>>(2)?)?,
            account: AccountId(r.get(3)?),
            registrar: RegistrarId(r.get(4)?),
            label,
            at: instant(r.get(5)?),
        },
        previous: text_to_ids(&r.get::<_, String>(10)?)?,
    })
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
            let label = change.label.as_ref();
            tx.execute(
                &format!(
                    "INSERT INTO association_audit ({}) VALUES \
                     (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    AUDIT_COLUMNS
                ),
                params![
                    change.action as u8,
                    dev,
                    change.account.0,
                    change.registrar.0,
                    t(change.at),
                    label.map(|l| l.fingerprint.clone()),
                    label.map(|l| l.device_type),
                    label.map(|l| l.product_number.clone()),
                    label.map(|l| l.had_pin),
                    ids_to_text(&previous)
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
                    "SELECT {AUDIT_COLUMNS} FROM association_audit WHERE seq > ?1 ORDER BY seq \
                     LIMIT ?2"
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
                    "SELECT {AUDIT_COLUMNS} FROM association_audit WHERE device = ?1 ORDER BY seq"
                ),
                [device.as_bytes().as_slice()],
            )
        })
        .await
    }
}

fn credential_parts(c: &RegistrarCredential) -> (u8, Vec<u8>) {
    match c {
        RegistrarCredential::Certificate(id) => (1, id.as_bytes().to_vec()),
        RegistrarCredential::ApiTokenHash(h) => (2, h.to_vec()),
    }
}

fn read_registrar(r: &Row<'_>) -> Result<Registrar, StoreError> {
    let kind: u8 = r.get(2)?;
    let cred: Vec<u8> = r.get(3)?;
    let credential = match kind {
        1 => RegistrarCredential::Certificate(key_id(&cred)?),
        2 => RegistrarCredential::ApiTokenHash(digest(&cred)?),
        _ => return Err(StoreError::Corrupt { what: "registrar" }),
    };
    Ok(Registrar {
        id: RegistrarId(r.get(0)?),
        name: r.get(1)?,
        credential,
        disabled: r.get(4)?,
        created_at: instant(r.get(5)?),
    })
}

const REGISTRAR_COLUMNS: &str = "id, name, credential_kind, credential, disabled, created_at";

fn query_registrar(
    tx: &Transaction<'_>,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Option<Registrar>, StoreError> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {REGISTRAR_COLUMNS} FROM registrars WHERE {filter}"
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

fn key_state_code(s: KeyState) -> u8 {
    match s {
        KeyState::Active => 1,
        KeyState::Retired => 2,
        KeyState::Revoked => 3,
    }
}

fn server_keys_in(tx: &Transaction<'_>) -> Result<Vec<ServerKeyRecord>, StoreError> {
    let corrupt = || StoreError::Corrupt { what: "server key" };
    let mut stmt = tx.prepare_cached(
        "SELECT key_id, role, public_key, state, created_at, revoked_at, replacement \
         FROM server_keys ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let role: u8 = r.get(1)?;
        let state = match r.get::<_, u8>(3)? {
            1 => KeyState::Active,
            2 => KeyState::Retired,
            3 => KeyState::Revoked,
            _ => return Err(corrupt()),
        };
        out.push(ServerKeyRecord {
            key_id: key_id(&r.get::<_, Vec<u8>>(0)?)?,
            role: KeyRole::ALL
                .into_iter()
                .find(|k| k.to_u8() == role)
                .ok_or_else(corrupt)?,
            public_key: PublicKey::from_spki_der(&r.get::<_, Vec<u8>>(2)?)
                .map_err(|_| corrupt())?,
            state,
            created_at: instant(r.get(4)?),
            revoked_at: r.get::<_, Option<i64>>(5)?.map(instant),
            replacement: r
                .get::<_, Option<Vec<u8>>>(6)?
                .map(|b| key_id(&b))
                .transpose()?,
        });
    }
    Ok(out)
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
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(KeyMapRule {
                    device_type: small(r.get(0)?, "key map rule")?,
                    first_serial: i2u(r.get(1)?),
                    last_serial: i2u(r.get(2)?),
                    key_id: key_id(&r.get::<_, Vec<u8>>(3)?)?,
                });
            }
            Ok(out)
        })
        .await
    }
}

fn session_row(id: &SessionId, version: u64) -> [u8; 24] {
    let mut row = [0u8; 24];
    row[..16].copy_from_slice(&id.0);
    row[16..].copy_from_slice(&version.to_be_bytes());
    row
}

fn session_field(row: &[u8]) -> SealedField<'_> {
    SealedField {
        table: "sessions",
        column: "state",
        row,
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
            Ok(match row {
                None => NonceUse::Unknown,
                Some((s, _)) if s != session.0 => NonceUse::WrongSession,
                Some((_, true)) => NonceUse::AlreadyUsed,
                Some((_, false)) => NonceUse::Expired,
            })
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
    let expires_at = instant(expires);
    if now.is_some_and(|now| now.is_past(expires_at)) {
        return Ok(None);
    }
    Ok(Some(StoredResponse {
        request_digest: digest(&d)?,
        response,
        expires_at,
    }))
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
    Ok(match row {
        None => AttemptState::default(),
        Some((failures, lockouts, until)) => AttemptState {
            failures: small(failures, "attempts")?,
            lockouts: small(lockouts, "attempts")?,
            locked_until: until.map(instant),
        },
    })
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

fn scan_field(row: &[u8]) -> SealedField<'_> {
    SealedField {
        table: "scan_reports",
        column: "report",
        row,
    }
}

fn scan_row(device: &KeyId, session: &SessionId, at: Instant) -> Vec<u8> {
    let mut row = Vec::with_capacity(56);
    row.extend_from_slice(device.as_bytes());
    row.extend_from_slice(&session.0);
    row.extend_from_slice(&at.0.to_be_bytes());
    row
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
            let mut rows = stmt.query([device.as_bytes().as_slice()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(OutcomeRecord {
                    device,
                    session: session_id(&r.get::<_, Vec<u8>>(0)?)?,
                    network: r.get::<_, Option<i64>>(1)?.map(NetworkId),
                    kind: OutcomeKind::from_u8(r.get(2)?)
                        .ok_or(StoreError::Corrupt { what: "outcome" })?,
                    at: instant(r.get(3)?),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn record_scan_report(&self, report: ScanReport) -> Result<(), StoreError> {
        let plain = encode_seen(&report.networks)?;
        self.run(Access::Write, move |tx, cipher| {
            let row = scan_row(&report.device, &report.session, report.at);
            let sealed = cipher.seal(scan_field(&row), &plain)?;
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
            let mut rows = stmt.query([device.as_bytes().as_slice()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let session = session_id(&r.get::<_, Vec<u8>>(0)?)?;
                let at = instant(r.get(2)?);
                let sealed: Vec<u8> = r.get(1)?;
                let plain = cipher.open(scan_field(&scan_row(&device, &session, at)), &sealed)?;
                out.push(ScanReport {
                    device,
                    session,
                    networks: decode_seen(&plain)?,
                    at,
                });
            }
            Ok(out)
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
