//! Rows as the SQL stores keep them, and the one conversion each way between a row and the
//! store's types, shared by the SQLite and PostgreSQL stores.
//!
//! Sealed values are bound to their table, column and row ([`SealedField`]); the bindings live
//! here so that both stores seal alike and a database's sealed columns mean the same thing
//! whichever engine holds them. A backend reads a row's columns into one of these structs (every
//! integer as `i64`, every flag as `bool`, every blob as bytes) and lets it build the record.

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
    ScannedLabel, SealedField, SecurityType, ServerKeyRecord, StoreError, StoredResponse,
};

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

/// Checks the stored key-check value against the data key; with none stored yet (a new
/// database), returns the sealed value to store.
pub(crate) fn check_data_key(
    cipher: &FieldCipher,
    stored: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, StoreError> {
    match stored {
        Some(sealed) => {
            let opened = cipher.open(key_check_field(), sealed).map_err(|_| {
                StoreError::DataKey("this is not the data key the database was created with".into())
            })?;
            if opened.as_slice() != KEY_CHECK {
                return Err(StoreError::Corrupt { what: "key check" });
            }
            Ok(None)
        }
        None => Ok(Some(cipher.seal(key_check_field(), KEY_CHECK)?)),
    }
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
pub(crate) fn session_row(id: &SessionId, version: u64) -> [u8; 24] {
    let mut row = [0u8; 24];
    let (sid, ver) = row.split_at_mut(16);
    sid.copy_from_slice(&id.0);
    ver.copy_from_slice(&version.to_be_bytes());
    row
}

/// Where a session's state is sealed.
pub(crate) fn session_field(row: &[u8]) -> SealedField<'_> {
    SealedField {
        table: "sessions",
        column: "state",
        row,
    }
}

/// Why a nonce was not consumed, from its row (`session`, `used`) if it exists.
pub(crate) fn nonce_refusal(row: Option<(Vec<u8>, bool)>, session: &SessionId) -> NonceUse {
    match row {
        None => NonceUse::Unknown,
        Some((s, _)) if s != session.0 => NonceUse::WrongSession,
        Some((_, true)) => NonceUse::AlreadyUsed,
        Some((_, false)) => NonceUse::Expired,
    }
}

/// A `responses` row's `request_digest`, `response` and `expires_at`: the stored response,
/// unless `now` is given and it has expired.
pub(crate) fn stored_response(
    request_digest: &[u8],
    response: Vec<u8>,
    expires_at: i64,
    now: Option<Instant>,
) -> Result<Option<StoredResponse>, StoreError> {
    let expires_at = instant(expires_at);
    if now.is_some_and(|now| now.is_past(expires_at)) {
        return Ok(None);
    }
    Ok(Some(StoredResponse {
        request_digest: digest(request_digest)?,
        response,
        expires_at,
    }))
}

/// An `attempts` row's `failures`, `lockouts` and `locked_until`; no row is the initial state.
pub(crate) fn attempt_state(
    row: Option<(i64, i64, Option<i64>)>,
) -> Result<AttemptState, StoreError> {
    Ok(match row {
        None => AttemptState::default(),
        Some((failures, lockouts, until)) => AttemptState {
            failures: small(failures, "attempts")?,
            lockouts: small(lockouts, "attempts")?,
            locked_until: until.map(instant),
        },
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

/// A `scan_reports` row of a device: its `session`, `report_sealed` and `at`, opened.
pub(crate) fn open_scan_report(
    cipher: &FieldCipher,
    device: KeyId,
    session: &[u8],
    sealed: &[u8],
    at: i64,
) -> Result<ScanReport, StoreError> {
    let session = session_id(session)?;
    let at = instant(at);
    let plain = cipher.open(scan_field(&scan_row(&device, &session, at)), sealed)?;
    Ok(ScanReport {
        device,
        session,
        networks: decode_seen(&plain)?,
        at,
    })
}
