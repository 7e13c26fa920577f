//! The credential handover: the home network credential and the commitment key, sent only
//! inside the encrypted local channel.

use alloc::vec::Vec;
use ciborium::Value;
use zeroize::{Zeroize, Zeroizing};

use super::{CommitmentKey, bytes32};
use crate::{DecodeError, Message, MessageTag, Passphrase, cbor};

/// The home network credential a sponsor holds. `Debug` redacts the passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeCredential {
    /// SSID, 1 to 32 bytes.
    pub ssid: Vec<u8>,
    /// Security bits to join with: 1 = WPA2-Personal, 2 = WPA3-Personal (SAE), 3 = either.
    pub security: u8,
    /// The passphrase (or 64-hex-digit PSK).
    pub passphrase: Passphrase,
}

/// `credential_handover = [ commitment_key: bstr .size 32, ssid: bstr .size (1..32),
/// security: uint (1..3), passphrase: bstr .size (8..64) ]`, plain, inside the local channel
/// only. `Debug` redacts both secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHandover {
    /// The key of the commitment the server signed; the joiner recomputes the commitment with
    /// it before it uses the credential.
    pub commitment_key: CommitmentKey,
    /// The credential.
    pub credential: HomeCredential,
}

impl PartialEq for CommitmentKey {
    fn eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.expose_secret()[..], &other.expose_secret()[..]).into()
    }
}
impl Eq for CommitmentKey {}

impl HomeCredential {
    /// `[first, ssid, security, passphrase]` encoded, wiped when dropped; every byte string of
    /// the intermediate CBOR value is wiped too. The two handovers differ only in `first`.
    pub(crate) fn encode_after(&self, first: Value) -> Zeroizing<Vec<u8>> {
        let mut value = Value::Array(alloc::vec![
            first,
            Value::Bytes(self.ssid.clone()),
            Value::Integer(self.security.into()),
            Value::Bytes(self.passphrase.expose_secret().to_vec()),
        ]);
        let bytes = Zeroizing::new(cbor::encode(&value));
        if let Value::Array(items) = &mut value {
            for item in items.iter_mut() {
                if let Value::Bytes(b) = item {
                    b.zeroize();
                }
            }
        }
        bytes
    }

    /// The credential from its three wire fields: SSID 1..32 bytes, security 1..3,
    /// passphrase 8..64 bytes.
    pub(crate) fn decode_fields(
        ssid: Value,
        security: Value,
        passphrase: Value,
    ) -> Result<Self, DecodeError> {
        let passphrase = Zeroizing::new(cbor::bytes_in(passphrase, "passphrase", 8, 64)?);
        Ok(HomeCredential {
            ssid: cbor::bytes_in(ssid, "ssid", 1, 32)?,
            security: u8::try_from(cbor::uint(&security, "security", 3)?)
                .ok()
                .filter(|s| *s >= 1)
                .ok_or(DecodeError::OutOfRange { field: "security" })?,
            passphrase: Passphrase::new(&passphrase).map_err(|_| DecodeError::OutOfRange {
                field: "passphrase",
            })?,
        })
    }
}

impl CredentialHandover {
    /// The body's bytes, wiped when dropped: they hold the passphrase.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        self.credential
            .encode_after(bytes32(self.commitment_key.expose_secret()))
    }
}

impl Message for CredentialHandover {
    const TAG: MessageTag = MessageTag::CredentialHandover;

    fn encode_body(&self) -> Vec<u8> {
        // The envelope takes a plain Vec; the caller encrypts and wipes it (see `encode`).
        self.encode().to_vec()
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [key, ssid, security, passphrase] =
            cbor::fields(cbor::decode(bytes)?, "credential_handover")?;
        let key = Zeroizing::new(cbor::fixed_bytes::<32>(key, "commitment_key")?);
        Ok(CredentialHandover {
            commitment_key: CommitmentKey::new(*key),
            credential: HomeCredential::decode_fields(ssid, security, passphrase)?,
        })
    }
}
