//! The hello: what the device speaks, who it is, which server keys it still trusts.

use alloc::vec::Vec;
use ciborium::Value;

use super::{suite_from_chunk, suites_to_bytes, uint_value};
use crate::{CipherSuite, DecodeError, KeyId, Message, MessageTag, Nonce, ProtocolVersion, cbor};

/// Most server key ids a hello may list.
pub const MAX_TRUSTED_KEYS: usize = 16;
const MAX_VERSIONS: usize = 16;
const MAX_SUITES: usize = 8;
/// A device certificate or SPKI larger than this is refused (the hello's envelope is 1024 B).
const MAX_IDENTITY_LEN: usize = 800;

/// How the hello names the device key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceIdentityRef {
    /// The device's X.509 certificate (DER).
    Certificate(Vec<u8>),
    /// The device key's DER SubjectPublicKeyInfo.
    PublicKey(Vec<u8>),
}

/// `hello = [ versions: bstr, suites: bstr, identity: [kind, bstr], trusted: [* bstr .size 32],
/// device_nonce: bstr .size 16 ]`; kind 1 = certificate, 2 = SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Versions the device speaks, in its order (1 to 16).
    pub versions: Vec<ProtocolVersion>,
    /// Suites the device offers, in its order (1 to 8).
    pub suites: Vec<CipherSuite>,
    /// The device key, by certificate or bare key.
    pub identity: DeviceIdentityRef,
    /// Server key ids the device still trusts, indicated first (1 to 16).
    pub trusted_keys: Vec<KeyId>,
    /// The device's fresh nonce.
    pub device_nonce: Nonce,
}

impl Message for Hello {
    const TAG: MessageTag = MessageTag::Hello;

    fn encode_body(&self) -> Vec<u8> {
        let (kind, der) = match &self.identity {
            DeviceIdentityRef::Certificate(d) => (1, d),
            DeviceIdentityRef::PublicKey(d) => (2, d),
        };
        cbor::encode(&Value::Array(alloc::vec![
            Value::Bytes(self.versions.iter().map(|v| v.0).collect()),
            Value::Bytes(suites_to_bytes(&self.suites)),
            Value::Array(alloc::vec![uint_value(kind), Value::Bytes(der.clone())]),
            Value::Array(
                self.trusted_keys
                    .iter()
                    .map(|k| Value::Bytes(k.0.to_vec()))
                    .collect()
            ),
            Value::Bytes(self.device_nonce.0.to_vec()),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [versions, suites, identity, trusted, nonce] =
            cbor::fields(cbor::decode(bytes)?, "hello")?;
        let versions = cbor::bytes_in(versions, "versions", 1, MAX_VERSIONS)?
            .into_iter()
            .map(ProtocolVersion)
            .collect();
        let suites = cbor::bytes_in(suites, "suites", 6, 6 * MAX_SUITES)?;
        if suites.len() % 6 != 0 {
            return Err(DecodeError::OutOfRange { field: "suites" });
        }
        let suites = suites
            .chunks(6)
            .map(|c| suite_from_chunk(c).ok_or(DecodeError::OutOfRange { field: "suites" }))
            .collect::<Result<_, _>>()?;
        let [kind, der] = cbor::fields(identity, "identity")?;
        let der = cbor::bytes_in(der, "identity", 1, MAX_IDENTITY_LEN)?;
        let identity = match cbor::uint(&kind, "identity kind", 2)? {
            1 => DeviceIdentityRef::Certificate(der),
            2 => DeviceIdentityRef::PublicKey(der),
            _ => {
                return Err(DecodeError::OutOfRange {
                    field: "identity kind",
                });
            }
        };
        let trusted = cbor::list(trusted, "trusted_keys", MAX_TRUSTED_KEYS)?;
        if trusted.is_empty() {
            return Err(DecodeError::OutOfRange {
                field: "trusted_keys",
            });
        }
        let trusted_keys = trusted
            .into_iter()
            .map(|k| cbor::fixed_bytes::<32>(k, "trusted key id").map(KeyId))
            .collect::<Result<_, _>>()?;
        Ok(Hello {
            versions,
            suites,
            identity,
            trusted_keys,
            device_nonce: Nonce(cbor::fixed_bytes::<16>(nonce, "device_nonce")?),
        })
    }
}
