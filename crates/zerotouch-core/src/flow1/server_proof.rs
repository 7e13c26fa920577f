//! The server's proof: its choices, its nonce and its ephemeral sealing key, signed.

use alloc::vec::Vec;
use ciborium::Value;

use super::{small_uint, suite_from_chunk, suites_to_bytes, uint_value};
use crate::{CipherSuite, DecodeError, Message, MessageTag, Nonce, ProtocolVersion, cbor};

/// Longest KEM public key on the wire (uncompressed P-256 point).
pub(crate) const MAX_KEM_KEY_LEN: usize = 65;

/// `server_proof = [ version: uint, suite: bstr .size 6, server_nonce: bstr .size 16,
/// sealing_key: bstr, pin_required: uint (0 / 1), expires_in_s: uint ]`, the payload of a
/// COSE_Sign1 by the SetupSigning key the key selection names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProof {
    /// The version the server chose from the hello's offer.
    pub version: ProtocolVersion,
    /// The suite the server chose from the hello's offer.
    pub suite: CipherSuite,
    /// The server's fresh, single-use nonce.
    pub server_nonce: Nonce,
    /// The server's ephemeral public key for this session (the chosen suite's KEM): the device
    /// seals its PIN proof and network report to it.
    pub sealing_key: Vec<u8>,
    /// Whether the device must prove its PIN (its account registered it with one).
    pub pin_required: bool,
    /// Seconds the session (and the nonce) stay valid.
    pub expires_in_s: u32,
}

impl Message for ServerProof {
    const TAG: MessageTag = MessageTag::ServerProof;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            uint_value(self.version.0.into()),
            Value::Bytes(suites_to_bytes(&[self.suite])),
            Value::Bytes(self.server_nonce.0.to_vec()),
            Value::Bytes(self.sealing_key.clone()),
            uint_value(self.pin_required.into()),
            uint_value(self.expires_in_s.into()),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [version, suite, nonce, key, pin, expires] =
            cbor::fields(cbor::decode(bytes)?, "server_proof")?;
        let suite = cbor::fixed_bytes::<6>(suite, "suite")?;
        Ok(ServerProof {
            version: ProtocolVersion(small_uint(&version, "version", 255)?),
            suite: suite_from_chunk(&suite).ok_or(DecodeError::OutOfRange { field: "suite" })?,
            server_nonce: Nonce(cbor::fixed_bytes::<16>(nonce, "server_nonce")?),
            sealing_key: cbor::bytes_in(key, "sealing_key", 32, MAX_KEM_KEY_LEN)?,
            pin_required: cbor::uint(&pin, "pin_required", 1)? == 1,
            expires_in_s: small_uint(&expires, "expires_in_s", u64::from(u32::MAX))?,
        })
    }
}
