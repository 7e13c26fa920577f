//! The bodies of the registrar and operator endpoints (CBOR; the audit endpoint also answers
//! JSON when asked). Device endpoints carry protocol messages, defined in `zerotouch-core`.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// `POST /v1/registrar/registrations`: a scanned label and the account it goes to.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationRequest {
    /// The barcode payload as scanned (`ZT1:…`).
    pub label: String,
    /// The account the device goes to.
    pub account: i64,
    /// The in-box PIN, when the device is on another account and the buyer typed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Zeroizing<String>>,
    /// The current owner's account, when that owner agreed to the move (the registrar
    /// vouches that it authenticated the owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_consent: Option<i64>,
}

impl core::fmt::Debug for RegistrationRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RegistrationRequest")
            .field("label", &self.label)
            .field("account", &self.account)
            .field("pin", &self.pin.as_ref().map(|_| "<redacted>"))
            .field("owner_consent", &self.owner_consent)
            .finish()
    }
}

/// What a registration did.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationResult {
    /// The device now belongs to the account.
    Added,
    /// It already did.
    AlreadyRegistered,
    /// It moved from the accounts in `previous_accounts`.
    Reassociated,
}

/// The answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationResponse {
    /// What happened.
    pub result: RegistrationResult,
    /// The accounts the device left (re-association only).
    #[serde(default)]
    pub previous_accounts: Vec<i64>,
}

/// The label a registrar scanned, as the audit log keeps it (never the PIN).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditLabel {
    /// The key fingerprint (base32).
    pub fingerprint: String,
    /// The device type.
    pub device_type: u32,
    /// The product number.
    pub product_number: String,
    /// Whether the label carried the PIN.
    pub had_pin: bool,
}

/// One entry of `GET /v1/operator/audit`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the log (strictly increasing).
    pub seq: u64,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// `add`, `reassociate` or `remove`.
    pub action: String,
    /// The device's key id (hex).
    pub device: String,
    /// The account.
    pub account: i64,
    /// The registrar that made the change.
    pub registrar: i64,
    /// The accounts the device belonged to before.
    pub previous: Vec<i64>,
    /// The scanned label, if the change came from a scan.
    pub label: Option<AuditLabel>,
}

impl AuditRecord {
    /// The record of a store audit entry.
    pub fn of(entry: &zerotouch_store::AuditEntry) -> Self {
        use zerotouch_store::AssociationAction;
        let c = &entry.change;
        AuditRecord {
            seq: entry.seq,
            at_ms: c.at.0,
            action: match c.action {
                AssociationAction::Add => "add",
                AssociationAction::Reassociate => "reassociate",
                AssociationAction::Remove => "remove",
            }
            .to_string(),
            device: hex::encode(c.device.0),
            account: c.account.0,
            registrar: c.registrar.0,
            previous: entry.previous.iter().map(|a| a.0).collect(),
            label: c.label.as_ref().map(|l| AuditLabel {
                fingerprint: l.fingerprint.clone(),
                device_type: l.device_type,
                product_number: l.product_number.clone(),
                had_pin: l.had_pin,
            }),
        }
    }
}

/// Encodes a body as CBOR.
pub fn to_cbor<T: Serialize>(value: &T) -> Result<Vec<u8>, crate::HttpError> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| crate::HttpError::Cbor(e.to_string()))?;
    Ok(out)
}

/// Decodes a CBOR body.
pub fn from_cbor<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, crate::HttpError> {
    ciborium::from_reader(bytes).map_err(|e| crate::HttpError::Cbor(e.to_string()))
}
