//! Rows as the SQL stores keep them, and the one conversion each way between a row and the
//! store's types, shared by the SQLite and PostgreSQL stores.
//!
//! Sealed values are bound to their table, column and row ([`SealedField`]); the bindings live
//! here so that both stores seal alike and a database's sealed columns mean the same thing
//! whichever engine holds them. A backend implements [`Columns`] for its row type (every
//! integer is an `i64`, every flag a `bool`, every blob bytes); the row structs here read
//! themselves from it and build the records.

use zerotouch_core::{
    DeviceSecret, Instant, KeyId, KeyMapRule, KeyRole, KeyState, Passphrase, PublicKey, SessionId,
};

use crate::column_codec::{
    decode_seen, digest, i2u, ids_to_text, instant, key_id, session_id, small, t, text_to_ids, u2i,
};
use crate::{
    AccountId, AssociationAction, AssociationChange, AttemptState, AuditEntry, Bands,
    DeviceIdentity, DeviceRecord, FieldCipher, Network, NetworkId, NonceUse, OutcomeKind,
    OutcomeRecord, PinRecord, Registrar, RegistrarCredential, RegistrarId, ScanReport,
    ScannedLabel, SealedField, SecurityType, ServerKeyRecord, SessionRecord, StoreError,
    StoredResponse,
};

/// A result row of either engine, column by column (0-based).
pub(crate) trait Columns {
    /// An integer.
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    /// An integer or NULL.
    fn int_opt(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// A flag.
    fn flag(&self, i: usize) -> Result<bool, StoreError>;
    /// A flag or NULL.
    fn flag_opt(&self, i: usize) -> Result<Option<bool>, StoreError>;
    /// A byte string.
    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError>;
    /// A byte string or NULL.
    fn bytes_opt(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;
    /// Text.
    fn text(&self, i: usize) -> Result<String, StoreError>;
    /// Text or NULL.
    fn text_opt(&self, i: usize) -> Result<Option<String>, StoreError>;
}

/// Implements [`Columns`] for a backend's row type through its typed getter (whose error
/// converts into [`StoreError`]).
macro_rules! columns_through {
    ($row:ty, $get:ident) => {
        impl $crate::rows::Columns for $row {
            fn int(&self, i: usize) -> Result<i64, StoreError> {
                Ok(self.$get(i)?)
            }
            fn int_opt(&self, i: usize) -> Result<Option<i64>, StoreError> {
                Ok(self.$get(i)?)
            }
            fn flag(&self, i: usize) -> Result<bool, StoreError> {
                Ok(self.$get(i)?)
            }
            fn flag_opt(&self, i: usize) -> Result<Option<bool>, StoreError> {
                Ok(self.$get(i)?)
            }
            fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
                Ok(self.$get(i)?)
            }
            fn bytes_opt(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(self.$get(i)?)
            }
            fn text(&self, i: usize) -> Result<String, StoreError> {
                Ok(self.$get(i)?)
            }
            fn text_opt(&self, i: usize) -> Result<Option<String>, StoreError> {
                Ok(self.$get(i)?)
            }
        }
    };
}
pub(crate) use columns_through;

/// The range of key ids that start with `prefix`: from prefix‖00… to prefix‖ff… (both engines
/// compare byte strings byte by byte). `None` if no key id can (a prefix over 32 bytes).
pub(crate) fn key_prefix_range(prefix: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    let mut low = [0x00u8; 32];
    let mut high = [0xffu8; 32];
    low.get_mut(..prefix.len())?.copy_from_slice(prefix);
    high.get_mut(..prefix.len())?.copy_from_slice(prefix);
    Some((low, high))
}

/// Refuses a batch that names one device twice.
pub(crate) fn distinct_devices(devices: &[DeviceRecord]) -> Result<(), StoreError> {
    let mut seen = std::collections::BTreeSet::new();
    if devices.iter().all(|d| seen.insert(d.key_id)) {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(
            "a device appears twice in the batch",
        ))
    }
}

/// A known plaintext sealed when a database is created (in `meta`, name `key_check`): opening
/// with the wrong data key fails at once instead of at the first secret read.
const KEY_CHECK: &[u8] = b"zerotouch data key check";

fn key_check_field() -> SealedField<'static> {
    SealedField {
        table: "meta",
        column: "key_check",
        row: b"",
    }
}

/// The key-check value to store in a new database.
pub(crate) fn seal_key_check(cipher: &FieldCipher) -> Result<Vec<u8>, StoreError> {
    cipher.seal(key_check_field(), KEY_CHECK)
}

/// Checks a database's stored key-check value against the data key.
pub(crate) fn verify_key_check(cipher: &FieldCipher, stored: &[u8]) -> Result<(), StoreError> {
    let opened = cipher.open(key_check_field(), stored).map_err(|_| {
        StoreError::DataKey("this is not the data key the database was created with".into())
    })?;
    if opened.as_slice() != KEY_CHECK {
        return Err(StoreError::Corrupt { what: "key check" });
    }
    Ok(())
}

fn passphrase_field(id: &[u8]) -> SealedField<'_> {
    SealedField {
        table: "networks",
        column: "passphrase",
        row: id,
    }
}

/// Seals a network's passphrase, bound to the network's id.
pub(crate) fn seal_passphrase(
    cipher: &FieldCipher,
    id: i64,
    passphrase: &Passphrase,
) -> Result<Vec<u8>, StoreError> {
    cipher.seal(
        passphrase_field(&id.to_be_bytes()),
        passphrase.expose_secret(),
    )
}

/// A `networks` row (without its account, which the query names).
pub(crate) struct NetworkRow {
    pub id: i64,
    pub ssid: Vec<u8>,
    pub passphrase_sealed: Vec<u8>,
    pub security: i64,
    pub bands: i64,
    pub created_at: i64,
}

impl NetworkRow {
    /// The columns read, in the order of the fields.
    pub const COLUMNS: &'static str = "id, ssid, passphrase_sealed, security, bands, created_at";

    /// From a row of [`Self::COLUMNS`].
    pub fn read(r: &impl Columns) -> Result<Self, StoreError> {
        Ok(NetworkRow {
            id: r.int(0)?,
            ssid: r.bytes(1)?,
            passphrase_sealed: r.bytes(2)?,
            security: r.int(3)?,
            bands: r.int(4)?,
            created_at: r.int(5)?,
        })
    }

    /// The network, passphrase opened.
    pub fn open(self, account: AccountId, cipher: &FieldCipher) -> Result<Network, StoreError> {
        let opened = cipher.open(
            passphrase_field(&self.id.to_be_bytes()),
            &self.passphrase_sealed,
        )?;
        let corrupt = || StoreError::Corrupt { what: "network" };
        Ok(Network {
            id: NetworkId(self.id),
            account,
            ssid: self.ssid,
            passphrase: Passphrase::new(&opened).map_err(|_| corrupt())?,
            security: SecurityType::from_u8(small(self.security, "network")?)
                .ok_or_else(corrupt)?,
            bands: Bands::from_bits(small(self.bands, "network")?).ok_or_else(corrupt)?,
            created_at: instant(self.created_at),
        })
    }
}

fn device_field<'a>(column: &'static str, key_id: &'a KeyId) -> SealedField<'a> {
    SealedField {
        table: "devices",
        column,
        row: key_id.as_bytes(),
    }
}

/// A `devices` row, its PIN record and device secret sealed.
pub(crate) struct DeviceRow {
    pub key_id: Vec<u8>,
    pub identity_kind: i64,
    pub identity: Vec<u8>,
    pub device_type: i64,
    pub serial: i64,
    pub product_number: String,
    pub pin_sealed: Option<Vec<u8>>,
    pub secret_sealed: Option<Vec<u8>>,
    pub blocked: bool,
    pub created_at: i64,
}

impl DeviceRow {
    /// The columns of the `devices` table, in the order of the fields.
    pub const COLUMNS: &'static str = "key_id, identity_kind, identity, device_type, serial, \
         product_number, pin_sealed, secret_sealed, blocked, created_at";

    /// From a row of [`Self::COLUMNS`].
    pub fn read(r: &impl Columns) -> Result<Self, StoreError> {
        Ok(DeviceRow {
            key_id: r.bytes(0)?,
            identity_kind: r.int(1)?,
            identity: r.bytes(2)?,
            device_type: r.int(3)?,
            serial: r.int(4)?,
            product_number: r.text(5)?,
            pin_sealed: r.bytes_opt(6)?,
            secret_sealed: r.bytes_opt(7)?,
            blocked: r.flag(8)?,
            created_at: r.int(9)?,
        })
    }

    /// The row for `d`, secrets sealed.
    pub fn seal(d: &DeviceRecord, cipher: &FieldCipher) -> Result<Self, StoreError> {
        let (identity_kind, identity) = match &d.identity {
            DeviceIdentity::Certificate(der) => (1, der.clone()),
            DeviceIdentity::PublicKey(der) => (2, der.clone()),
        };
        let pin_sealed = d
            .pin
            .as_ref()
            .map(|p| cipher.seal(device_field("pin", &d.key_id), &p.to_bytes()))
            .transpose()?;
        let secret_sealed = d
            .device_secret
            .as_ref()
            .map(|s| cipher.seal(device_field("secret", &d.key_id), s.expose_secret()))
            .transpose()?;
        Ok(DeviceRow {
            key_id: d.key_id.as_bytes().to_vec(),
            identity_kind,
            identity,
            device_type: i64::from(d.device_type),
            serial: u2i(d.serial),
            product_number: d.product_number.clone(),
            pin_sealed,
            secret_sealed,
            blocked: d.blocked,
            created_at: t(d.created_at),
        })
    }

    /// The device, secrets opened.
    pub fn open(self, cipher: &FieldCipher) -> Result<DeviceRecord, StoreError> {
        let corrupt = || StoreError::Corrupt { what: "device" };
        let key_id = key_id(&self.key_id)?;
        let identity = match self.identity_kind {
            1 => DeviceIdentity::Certificate(self.identity),
            2 => DeviceIdentity::PublicKey(self.identity),
            _ => return Err(corrupt()),
        };
        let pin = match self.pin_sealed {
            Some(sealed) => Some(PinRecord::from_bytes(
                &cipher.open(device_field("pin", &key_id), &sealed)?,
            )?),
            None => None,
        };
        let device_secret = match self.secret_sealed {
            Some(sealed) => Some(
                DeviceSecret::from_slice(&cipher.open(device_field("secret", &key_id), &sealed)?)
                    .map_err(|_| corrupt())?,
            ),
            None => None,
        };
        Ok(DeviceRecord {
            key_id,
            identity,
            device_type: small(self.device_type, "device type")?,
            serial: i2u(self.serial),
            product_number: self.product_number,
            pin,
            device_secret,
            blocked: self.blocked,
            created_at: instant(self.created_at),
        })
    }
}

/// An `association_audit` row.
pub(crate) struct AuditRow {
    pub seq: i64,
    pub action: i64,
    pub device: Vec<u8>,
    pub account_id: i64,
    pub registrar_id: i64,
    pub at: i64,
    pub label_fingerprint: Option<String>,
    pub label_device_type: Option<i64>,
    pub label_product_number: Option<String>,
    pub label_had_pin: Option<bool>,
    pub previous_accounts: String,
}

impl AuditRow {
    /// The columns of the `association_audit` table, in the order of the fields.
    pub const COLUMNS: &'static str = "seq, action, device, account_id, registrar_id, at, \
         label_fingerprint, label_device_type, label_product_number, label_had_pin, \
         previous_accounts";

    /// From a row of [`Self::COLUMNS`].
    pub fn read(r: &impl Columns) -> Result<Self, StoreError> {
        Ok(AuditRow {
            seq: r.int(0)?,
            action: r.int(1)?,
            device: r.bytes(2)?,
            account_id: r.int(3)?,
            registrar_id: r.int(4)?,
            at: r.int(5)?,
            label_fingerprint: r.text_opt(6)?,
            label_device_type: r.int_opt(7)?,
            label_product_number: r.text_opt(8)?,
            label_had_pin: r.flag_opt(9)?,
            previous_accounts: r.text(10)?,
        })
    }

    /// The row recording `change`, made while the device was associated with `previous`; its
    /// `seq` is the database's to assign (0 here).
    pub fn of(change: &AssociationChange, previous: &[AccountId]) -> Self {
        let label = change.label.as_ref();
        AuditRow {
            seq: 0,
            action: i64::from(change.action as u8),
            device: change.device.as_bytes().to_vec(),
            account_id: change.account.0,
            registrar_id: change.registrar.0,
            at: t(change.at),
            label_fingerprint: label.map(|l| l.fingerprint.clone()),
            label_device_type: label.map(|l| i64::from(l.device_type)),
            label_product_number: label.map(|l| l.product_number.clone()),
            label_had_pin: label.map(|l| l.had_pin),
            previous_accounts: ids_to_text(previous),
        }
    }

    /// The audit entry.
    pub fn entry(self) -> Result<AuditEntry, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "audit entry",
        };
        let label = match self.label_fingerprint {
            Some(fingerprint) => Some(ScannedLabel {
                fingerprint,
                device_type: small(self.label_device_type.unwrap_or(-1), "audit entry")?,
                product_number: self.label_product_number.unwrap_or_default(),
                had_pin: self.label_had_pin.unwrap_or(false),
            }),
            None => None,
        };
        Ok(AuditEntry {
            seq: i2u(self.seq),
            change: AssociationChange {
                action: AssociationAction::from_u8(small(self.action, "audit entry")?)
                    .ok_or_else(corrupt)?,
                device: key_id(&self.device)?,
                account: AccountId(self.account_id),
                registrar: RegistrarId(self.registrar_id),
                label,
                at: instant(self.at),
            },
            previous: text_to_ids(&self.previous_accounts)?,
        })
    }
}

/// A registrar credential's `credential_kind` and `credential` columns.
pub(crate) fn credential_parts(c: &RegistrarCredential) -> (i64, Vec<u8>) {
    match c {
        RegistrarCredential::Certificate(id) => (1, id.as_bytes().to_vec()),
        RegistrarCredential::ApiTokenHash(h) => (2, h.to_vec()),
    }
}

/// A `registrars` row.
pub(crate) struct RegistrarRow {
    pub id: i64,
    pub name: String,
    pub credential_kind: i64,
    pub credential: Vec<u8>,
    pub disabled: bool,
    pub created_at: i64,
}

impl RegistrarRow {
    /// The columns of the `registrars` table, in the order of the fields.
    pub const COLUMNS: &'static str = "id, name, credential_kind, credential, disabled, created_at";

    /// From a row of [`Self::COLUMNS`].
    pub fn read(r: &impl Columns) -> Result<Self, StoreError> {
        Ok(RegistrarRow {
            id: r.int(0)?,
            name: r.text(1)?,
            credential_kind: r.int(2)?,
            credential: r.bytes(3)?,
            disabled: r.flag(4)?,
            created_at: r.int(5)?,
        })
    }

    /// The registrar.
    pub fn registrar(self) -> Result<Registrar, StoreError> {
        let credential = match self.credential_kind {
            1 => RegistrarCredential::Certificate(key_id(&self.credential)?),
            2 => RegistrarCredential::ApiTokenHash(digest(&self.credential)?),
            _ => return Err(StoreError::Corrupt { what: "registrar" }),
        };
        Ok(Registrar {
            id: RegistrarId(self.id),
            name: self.name,
            credential,
            disabled: self.disabled,
            created_at: instant(self.created_at),
        })
    }
}

/// A key state's stored number.
pub(crate) fn key_state_code(s: KeyState) -> i64 {
    match s {
        KeyState::Active => 1,
        KeyState::Retired => 2,
        KeyState::Revoked => 3,
    }
}

/// A `server_keys` row (without its `seq`, which only orders).
pub(crate) struct ServerKeyRow {
    pub key_id: Vec<u8>,
    pub role: i64,
    pub public_key: Vec<u8>,
    pub state: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub replacement: Option<Vec<u8>>,
}

impl ServerKeyRow {
    /// The columns read, in the order of the fields.
    pub const COLUMNS: &'static str =
        "key_id, role, public_key, state, created_at, revoked_at, replacement";

    /// From a row of [`Self::COLUMNS`].
    pub fn read(r: &impl Columns) -> Result<Self, StoreError> {
        Ok(ServerKeyRow {
            key_id: r.bytes(0)?,
            role: r.int(1)?,
            public_key: r.bytes(2)?,
            state: r.int(3)?,
            created_at: r.int(4)?,
            revoked_at: r.int_opt(5)?,
            replacement: r.bytes_opt(6)?,
        })
    }

    /// The key record.
    pub fn record(self) -> Result<ServerKeyRecord, StoreError> {
        let corrupt = || StoreError::Corrupt { what: "server key" };
        let state = match self.state {
            1 => KeyState::Active,
            2 => KeyState::Retired,
            3 => KeyState::Revoked,
            _ => return Err(corrupt()),
        };
        Ok(ServerKeyRecord {
            key_id: key_id(&self.key_id)?,
            role: KeyRole::ALL
                .into_iter()
                .find(|k| i64::from(k.to_u8()) == self.role)
                .ok_or_else(corrupt)?,
            public_key: PublicKey::from_spki_der(&self.public_key).map_err(|_| corrupt())?,
            state,
            created_at: instant(self.created_at),
            revoked_at: self.revoked_at.map(instant),
            replacement: self.replacement.map(|b| key_id(&b)).transpose()?,
        })
    }
}

/// A `key_map` row (without its `seq`, which only orders).
pub(crate) struct KeyMapRow {
    pub device_type: i64,
    pub first_serial: i64,
    pub last_serial: i64,
    pub key_id: Vec<u8>,
}

impl KeyMapRow {
    /// The columns read, in the order of the fields.
    pub const COLUMNS: &'static str = "device_type, first_serial, last_serial, key_id";

    /// From a row of [`Self::COLUMNS`].
    pub fn read(r: &impl Columns) -> Result<Self, StoreError> {
        Ok(KeyMapRow {
            device_type: r.int(0)?,
            first_serial: r.int(1)?,
            last_serial: r.int(2)?,
            key_id: r.bytes(3)?,
        })
    }

    /// The rule.
    pub fn rule(self) -> Result<KeyMapRule, StoreError> {
        Ok(KeyMapRule {
            device_type: small(self.device_type, "key map rule")?,
            first_serial: i2u(self.first_serial),
            last_serial: i2u(self.last_serial),
            key_id: key_id(&self.key_id)?,
        })
    }
}

/// The session's sealed-state binding: session id ‖ version (big-endian), so a state sealed
/// for one version does not open as another.
fn session_row(id: &SessionId, version: u64) -> [u8; 24] {
    let mut row = [0u8; 24];
    let (sid, ver) = row.split_at_mut(16);
    sid.copy_from_slice(&id.0);
    ver.copy_from_slice(&version.to_be_bytes());
    row
}

/// Where a session's state is sealed.
fn session_field(row: &[u8]) -> SealedField<'_> {
    SealedField {
        table: "sessions",
        column: "state",
        row,
    }
}

/// What to read of a nonce that was not consumed.
pub(crate) const NONCE_COLUMNS: &str = "session, used";

/// Why a nonce was not consumed, from its row of [`NONCE_COLUMNS`] if it exists.
pub(crate) fn nonce_refusal(
    row: Option<&impl Columns>,
    session: &SessionId,
) -> Result<NonceUse, StoreError> {
    let Some(r) = row else {
        return Ok(NonceUse::Unknown);
    };
    Ok(if r.bytes(0)? != session.0 {
        NonceUse::WrongSession
    } else if r.flag(1)? {
        NonceUse::AlreadyUsed
    } else {
        NonceUse::Expired
    })
}

/// What to read of a stored response.
pub(crate) const RESPONSE_COLUMNS: &str = "request_digest, response, expires_at";

/// The stored response in a row of [`RESPONSE_COLUMNS`], unless `now` is given and it has
/// expired.
pub(crate) fn stored_response(
    r: &impl Columns,
    now: Option<Instant>,
) -> Result<Option<StoredResponse>, StoreError> {
    let expires_at = instant(r.int(2)?);
    if now.is_some_and(|now| now.is_past(expires_at)) {
        return Ok(None);
    }
    Ok(Some(StoredResponse {
        request_digest: digest(&r.bytes(0)?)?,
        response: r.bytes(1)?,
        expires_at,
    }))
}

/// What to read of a subject's attempts.
pub(crate) const ATTEMPT_COLUMNS: &str = "failures, lockouts, locked_until";

/// The state in a row of [`ATTEMPT_COLUMNS`]; no row is the initial state.
pub(crate) fn attempt_state(row: Option<&impl Columns>) -> Result<AttemptState, StoreError> {
    let Some(r) = row else {
        return Ok(AttemptState::default());
    };
    Ok(AttemptState {
        failures: small(r.int(0)?, "attempts")?,
        lockouts: small(r.int(1)?, "attempts")?,
        locked_until: r.int_opt(2)?.map(instant),
    })
}

/// An `outcomes` row of a device.
pub(crate) struct OutcomeRow {
    pub session: Vec<u8>,
    pub network_id: Option<i64>,
    pub kind: i64,
    pub at: i64,
}

impl OutcomeRow {
    /// The columns read, in the order of the fields.
    pub const COLUMNS: &'static str = "session, network_id, kind, at";

    /// From a row of [`Self::COLUMNS`].
    pub fn read(r: &impl Columns) -> Result<Self, StoreError> {
        Ok(OutcomeRow {
            session: r.bytes(0)?,
            network_id: r.int_opt(1)?,
            kind: r.int(2)?,
            at: r.int(3)?,
        })
    }

    /// The outcome record of `device`.
    pub fn record(self, device: KeyId) -> Result<OutcomeRecord, StoreError> {
        Ok(OutcomeRecord {
            device,
            session: session_id(&self.session)?,
            network: self.network_id.map(NetworkId),
            kind: OutcomeKind::from_u8(small(self.kind, "outcome")?)
                .ok_or(StoreError::Corrupt { what: "outcome" })?,
            at: instant(self.at),
        })
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

/// A scan report's networks, encoded and sealed, bound to device, session and time.
pub(crate) fn seal_scan_report(
    cipher: &FieldCipher,
    report: &ScanReport,
) -> Result<Vec<u8>, StoreError> {
    let plain = crate::column_codec::encode_seen(&report.networks)?;
    let row = scan_row(&report.device, &report.session, report.at);
    cipher.seal(scan_field(&row), &plain)
}

/// What to read of a scan report.
pub(crate) const SCAN_COLUMNS: &str = "session, report_sealed, at";

/// A scan report of `device` in a row of [`SCAN_COLUMNS`], opened.
pub(crate) fn open_scan_report(
    cipher: &FieldCipher,
    device: KeyId,
    r: &impl Columns,
) -> Result<ScanReport, StoreError> {
    let session = session_id(&r.bytes(0)?)?;
    let at = instant(r.int(2)?);
    let plain = cipher.open(scan_field(&scan_row(&device, &session, at)), &r.bytes(1)?)?;
    Ok(ScanReport {
        device,
        session,
        networks: decode_seen(&plain)?,
        at,
    })
}

/// What to read of a session.
pub(crate) const SESSION_COLUMNS: &str = "version, state_sealed, expires_at";

/// A session's state sealed for the version it is written at.
pub(crate) fn seal_session(
    cipher: &FieldCipher,
    id: &SessionId,
    version: u64,
    state: &[u8],
) -> Result<Vec<u8>, StoreError> {
    cipher.seal(session_field(&session_row(id, version)), state)
}

/// Session `id` in a row of [`SESSION_COLUMNS`], its state opened.
pub(crate) fn open_session(
    cipher: &FieldCipher,
    id: SessionId,
    r: &impl Columns,
) -> Result<SessionRecord, StoreError> {
    let version = i2u(r.int(0)?);
    let state = cipher.open(session_field(&session_row(&id, version)), &r.bytes(1)?)?;
    Ok(SessionRecord {
        id,
        version,
        state: state.to_vec(),
        expires_at: instant(r.int(2)?),
    })
}

/// The migrations after `current`, in order; a database migrated past the last one this build
/// knows is refused.
pub(crate) fn pending_migrations(
    migrations: &'static [(i64, &'static str)],
    current: i64,
) -> Result<impl Iterator<Item = &'static (i64, &'static str)>, StoreError> {
    let supported = migrations.last().map_or(0, |m| m.0);
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    Ok(migrations.iter().filter(move |m| m.0 > current))
}

/// `Ok` if a write changed a row (`changed`), else `otherwise`.
pub(crate) fn changed(changed: bool, otherwise: StoreError) -> Result<(), StoreError> {
    if changed { Ok(()) } else { Err(otherwise) }
}
