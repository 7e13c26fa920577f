//! The credential response: for each reported network the account owns, its sealed credential
//! or why it is unavailable, in the order the device should try them; signed whole.

use alloc::vec::Vec;
use ciborium::Value;

use super::server_proof::MAX_KEM_KEY_LEN;
use super::{small_uint, uint_value};
use crate::{DecodeError, Message, MessageTag, cbor};

/// Most entries a response may carry.
pub const MAX_ENTRIES: usize = 16;
/// A sealed passphrase: at most 64 bytes plus the 16-byte tag.
const MAX_SEALED_CREDENTIAL_LEN: usize = 80;

/// Whether an entry carries a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryStatus {
    /// The credential is sealed in this entry.
    Sealed = 0,
    /// The account has this network, but the device's radio cannot join it (band or security).
    UnsupportedByRadio = 1,
    /// The account has this network, but its credential cannot be released now.
    Unavailable = 2,
}

/// One entry. Sealed entries' ciphertexts open in entry order in one HPKE context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialEntry {
    /// The network's SSID.
    pub ssid: Vec<u8>,
    /// Security bits to join with (1 = WPA2-Personal, 2 = WPA3-Personal).
    pub security: u8,
    /// Sealed or not, and why.
    pub status: EntryStatus,
    /// The sealed passphrase (empty unless `status` is `Sealed`).
    pub ciphertext: Vec<u8>,
}

/// `credential_response = [ enc: bstr, entries: [* [ssid, security, status, ciphertext]] ]`,
/// the payload of a COSE_Sign1 by the SetupSigning key over the transcript: the encapsulated
/// key, every ciphertext and every "unavailable" are signed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialResponse {
    /// HPKE encapsulated key for the device's session key (empty when nothing is sealed).
    pub encapsulated_key: Vec<u8>,
    /// Entries, strongest first.
    pub entries: Vec<CredentialEntry>,
}

impl Message for CredentialResponse {
    const TAG: MessageTag = MessageTag::CredentialResponse;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Bytes(self.encapsulated_key.clone()),
            Value::Array(
                self.entries
                    .iter()
                    .map(|e| Value::Array(alloc::vec![
                        Value::Bytes(e.ssid.clone()),
                        uint_value(e.security.into()),
                        uint_value(e.status as u64),
                        Value::Bytes(e.ciphertext.clone()),
                    ]))
                    .collect()
            ),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [enc, entries] = cbor::fields(cbor::decode(bytes)?, "credential_response")?;
        let encapsulated_key = cbor::bytes_in(enc, "encapsulated_key", 0, MAX_KEM_KEY_LEN)?;
        let entries: Vec<CredentialEntry> = cbor::list(entries, "entries", MAX_ENTRIES)?
            .into_iter()
            .map(|e| {
                let [ssid, security, status, ct] = cbor::fields(e, "entry")?;
                let status = match cbor::uint(&status, "status", 2)? {
                    0 => EntryStatus::Sealed,
                    1 => EntryStatus::UnsupportedByRadio,
                    _ => EntryStatus::Unavailable,
                };
                let ciphertext = cbor::bytes_in(ct, "ciphertext", 0, MAX_SEALED_CREDENTIAL_LEN)?;
                // A sealed entry carries a ciphertext (at least the 16-byte tag); others none.
                let well_formed = match status {
                    EntryStatus::Sealed => ciphertext.len() >= 16,
                    _ => ciphertext.is_empty(),
                };
                if !well_formed {
                    return Err(DecodeError::OutOfRange {
                        field: "ciphertext",
                    });
                }
                Ok(CredentialEntry {
                    ssid: cbor::bytes_in(ssid, "ssid", 1, 32)?,
                    security: small_uint(&security, "security", 3)?,
                    status,
                    ciphertext,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        let any_sealed = entries.iter().any(|e| e.status == EntryStatus::Sealed);
        if any_sealed == encapsulated_key.is_empty() {
            return Err(DecodeError::OutOfRange {
                field: "encapsulated_key",
            });
        }
        Ok(CredentialResponse {
            encapsulated_key,
            entries,
        })
    }
}
