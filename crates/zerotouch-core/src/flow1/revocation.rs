//! The revocation check after joining: which key the device trusted, and a verdict signed by a
//! dedicated revocation key over the device's fresh nonce.

use alloc::vec::Vec;
use ciborium::Value;

use super::uint_value;
use crate::{DecodeError, KeyId, Message, MessageTag, Nonce, cbor};

/// `revocation_query = [ key_id: bstr .size 32, device_nonce: bstr .size 16 ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationQuery {
    /// The server key the device trusted in its setup session.
    pub key_id: KeyId,
    /// A fresh nonce the verdict must echo.
    pub device_nonce: Nonce,
}

impl Message for RevocationQuery {
    const TAG: MessageTag = MessageTag::RevocationQuery;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Bytes(self.key_id.0.to_vec()),
            Value::Bytes(self.device_nonce.0.to_vec()),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [key, nonce] = cbor::fields(cbor::decode(bytes)?, "revocation_query")?;
        Ok(RevocationQuery {
            key_id: KeyId(cbor::fixed_bytes::<32>(key, "key_id")?),
            device_nonce: Nonce(cbor::fixed_bytes::<16>(nonce, "device_nonce")?),
        })
    }
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RevocationStatus {
    /// The key is not revoked.
    Good = 1,
    /// The key is revoked: leave, drop it, and start again with the replacement.
    Revoked = 2,
}

/// `revocation_verdict = [ key_id: bstr .size 32, device_nonce: bstr .size 16, status: uint,
/// replacement: bstr .size 32 / null ]`, signed by a RevocationVerdict key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationVerdict {
    /// The key queried.
    pub key_id: KeyId,
    /// The query's nonce.
    pub device_nonce: Nonce,
    /// The verdict.
    pub status: RevocationStatus,
    /// The key to use instead (revoked only).
    pub replacement: Option<KeyId>,
}

impl Message for RevocationVerdict {
    const TAG: MessageTag = MessageTag::RevocationVerdict;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Bytes(self.key_id.0.to_vec()),
            Value::Bytes(self.device_nonce.0.to_vec()),
            uint_value(self.status as u64),
            match &self.replacement {
                Some(k) => Value::Bytes(k.0.to_vec()),
                None => Value::Null,
            },
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [key, nonce, status, replacement] =
            cbor::fields(cbor::decode(bytes)?, "revocation_verdict")?;
        let status = match cbor::uint(&status, "status", 2)? {
            1 => RevocationStatus::Good,
            2 => RevocationStatus::Revoked,
            _ => return Err(DecodeError::OutOfRange { field: "status" }),
        };
        let replacement = cbor::nullable(replacement, |v| {
            cbor::fixed_bytes::<32>(v, "replacement").map(KeyId)
        })?;
        if status == RevocationStatus::Good && replacement.is_some() {
            return Err(DecodeError::OutOfRange {
                field: "replacement",
            });
        }
        Ok(RevocationVerdict {
            key_id: KeyId(cbor::fixed_bytes::<32>(key, "key_id")?),
            device_nonce: Nonce(cbor::fixed_bytes::<16>(nonce, "device_nonce")?),
            status,
            replacement,
        })
    }
}
