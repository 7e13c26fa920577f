//! The joiner's credential request.

use alloc::vec::Vec;
use ciborium::Value;

use super::fallback::{Fallback, decode_fallbacks, encode_fallbacks};
use super::{ChannelBinding, bytes32, key_id, nonce};
use crate::{DecodeError, KeyId, Message, MessageTag, Nonce, cbor};

/// `peer_credential_request = [ joiner_id: bstr .size 32, nonce: bstr .size 16,
/// seen_binding: bstr .size 32 / null, fallbacks: [* uint] ]`, plain, inside the local
/// channel.
///
/// `seen_binding` is the binding of the channel as the joiner sees it. It is advisory only: a
/// sponsor may stop early when it differs from its own (a relay, or a broken channel), but it
/// never copies it anywhere. The binding the server signs is always the sponsor's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCredentialRequest {
    /// The joiner's device key id (SHA-256 of its identity key's SubjectPublicKeyInfo).
    pub joiner_id: KeyId,
    /// A fresh nonce: single-use, valid for a short time on the joiner's own clock.
    pub nonce: Nonce,
    /// The joiner's view of the channel binding.
    pub seen_binding: Option<ChannelBinding>,
    /// The fallbacks the joiner can run, in its firmware's order of preference (at most four,
    /// distinct). A joiner without a display never lists [`Fallback::CompareCodes`] or
    /// [`Fallback::JoinerShowsCode`].
    pub fallbacks: Vec<Fallback>,
}

impl Message for PeerCredentialRequest {
    const TAG: MessageTag = MessageTag::PeerCredentialRequest;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            bytes32(&self.joiner_id.0),
            Value::Bytes(self.nonce.0.to_vec()),
            self.seen_binding.map_or(Value::Null, |b| bytes32(&b.0)),
            encode_fallbacks(&self.fallbacks),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [joiner, n, seen, fallbacks] =
            cbor::fields(cbor::decode(bytes)?, "peer_credential_request")?;
        Ok(PeerCredentialRequest {
            joiner_id: key_id(joiner, "joiner_id")?,
            nonce: nonce(n)?,
            seen_binding: cbor::nullable(seen, |v| {
                cbor::fixed_bytes::<32>(v, "seen_binding").map(ChannelBinding)
            })?,
            fallbacks: decode_fallbacks(fallbacks)?,
        })
    }
}
