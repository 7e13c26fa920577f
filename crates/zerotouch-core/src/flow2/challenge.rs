//! The challenge data the server signs for the joiner, and the joiner's answer.

use alloc::vec::Vec;
use ciborium::Value;

use super::{Challenge, ChallengeAnswer, ChannelBinding, Commitment, HandoffNames, bytes32};
use crate::{DecodeError, KeyId, Message, MessageTag, Nonce, cbor};

/// `challenge_data = [ sponsor_id: bstr .size 32, joiner_id: bstr .size 32, nonce: bstr .size 16,
/// commitment: bstr .size 32, binding: bstr .size 32, challenge: bstr .size 32 ]`, the payload
/// of a COSE_Sign1 by an association key over the handoff transcript.
///
/// The sponsor forwards the signed envelope to the joiner unchanged. The joiner accepts it
/// only if the signature verifies under a pinned association key, the ids and nonce are its
/// own, its nonce is still fresh, and `binding` equals its own channel's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeData {
    /// The sponsor the server vouched for.
    pub sponsor_id: KeyId,
    /// The joiner the challenge is for.
    pub joiner_id: KeyId,
    /// The joiner's nonce, as the sponsor relayed it.
    pub nonce: Nonce,
    /// The sponsor's commitment to the credential it will hand over.
    pub commitment: Commitment,
    /// The binding of the sponsor's own local channel.
    pub binding: ChannelBinding,
    /// The challenge the joiner answers with its device secret.
    pub challenge: Challenge,
}

impl Message for ChallengeData {
    const TAG: MessageTag = MessageTag::ChallengeData;

    fn encode_body(&self) -> Vec<u8> {
        let names = HandoffNames {
            sponsor_id: self.sponsor_id,
            joiner_id: self.joiner_id,
            nonce: self.nonce,
            commitment: self.commitment,
            binding: self.binding,
        };
        let mut items = names.encode().to_vec();
        items.push(bytes32(&self.challenge.0));
        cbor::encode(&Value::Array(items))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [sponsor, joiner, n, commitment, binding, challenge] =
            cbor::fields(cbor::decode(bytes)?, "challenge_data")?;
        let names = HandoffNames::decode([sponsor, joiner, n, commitment, binding])?;
        Ok(ChallengeData {
            sponsor_id: names.sponsor_id,
            joiner_id: names.joiner_id,
            nonce: names.nonce,
            commitment: names.commitment,
            binding: names.binding,
            challenge: Challenge(cbor::fixed_bytes::<32>(challenge, "challenge")?),
        })
    }
}

/// `challenge_response = [ answer: bstr .size 32 ]`, plain, inside the local channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeResponse {
    /// [`super::challenge_answer`] over the challenge and the joiner's channel binding.
    pub answer: ChallengeAnswer,
}

impl Message for ChallengeResponse {
    const TAG: MessageTag = MessageTag::ChallengeResponse;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![bytes32(
            self.answer.expose_secret()
        )]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [answer] = cbor::fields(cbor::decode(bytes)?, "challenge_response")?;
        Ok(ChallengeResponse {
            answer: ChallengeAnswer::new(cbor::fixed_bytes::<32>(answer, "answer")?),
        })
    }
}
