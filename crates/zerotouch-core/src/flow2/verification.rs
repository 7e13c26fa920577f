//! The sponsor's verification request to the association server, and the server's answer.

use alloc::vec::Vec;
use ciborium::Value;

use super::{ChannelBinding, Commitment, HandoffNames};
use crate::flow1::{suite_from_chunk, suites_to_bytes};
use crate::{CipherSuite, DecodeError, KeyId, Message, MessageTag, Nonce, cbor};

/// Longest KEM public key (P-256 uncompressed).
const MAX_KEM_KEY_LEN: usize = 65;
/// Longest ChallengeData envelope the verification data may carry.
const MAX_CHALLENGE_DATA_LEN: usize = 1024;

/// The sponsor's per-handoff HPKE key: the server seals the expected answer to it, so only
/// the sponsor ever reads it, whatever carries the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerKey {
    /// Its suite.
    pub suite: CipherSuite,
    /// Its public key, raw encoding.
    pub public_key: Vec<u8>,
}

/// `verification_request = [ sponsor_id: bstr .size 32, joiner_id: bstr .size 32,
/// nonce: bstr .size 16, commitment: bstr .size 32, binding: bstr .size 32,
/// answer_key: [ suite: bstr .size 6, public_key: bstr ] ]`, the payload of a COSE_Sign1 by
/// the sponsor's device identity key over the handoff transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRequest {
    /// The sponsor's device key id.
    pub sponsor_id: KeyId,
    /// The joiner's device key id, from its credential request.
    pub joiner_id: KeyId,
    /// The joiner's nonce, from its credential request.
    pub nonce: Nonce,
    /// The commitment to the credential (never the credential, never a plain hash of it).
    pub commitment: Commitment,
    /// The binding of the sponsor's own channel to the joiner, never a value the joiner sent.
    pub binding: ChannelBinding,
    /// Where the server seals the expected answer.
    pub answer_key: AnswerKey,
}

impl Message for VerificationRequest {
    const TAG: MessageTag = MessageTag::VerificationRequest;

    fn encode_body(&self) -> Vec<u8> {
        let names = HandoffNames {
            sponsor_id: self.sponsor_id,
            joiner_id: self.joiner_id,
            nonce: self.nonce,
            commitment: self.commitment,
            binding: self.binding,
        };
        let mut items = names.encode().to_vec();
        items.push(Value::Array(alloc::vec![
            Value::Bytes(suites_to_bytes(&[self.answer_key.suite])),
            Value::Bytes(self.answer_key.public_key.clone()),
        ]));
        cbor::encode(&Value::Array(items))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [sponsor, joiner, n, commitment, binding, answer_key] =
            cbor::fields(cbor::decode(bytes)?, "verification_request")?;
        let [suite, public_key] = cbor::fields(answer_key, "answer_key")?;
        let suite = cbor::bytes(suite, "answer_key suite")?;
        let names = HandoffNames::decode([sponsor, joiner, n, commitment, binding])?;
        Ok(VerificationRequest {
            sponsor_id: names.sponsor_id,
            joiner_id: names.joiner_id,
            nonce: names.nonce,
            commitment: names.commitment,
            binding: names.binding,
            answer_key: AnswerKey {
                suite: suite_from_chunk(&suite).ok_or(DecodeError::OutOfRange {
                    field: "answer_key suite",
                })?,
                public_key: cbor::bytes_in(public_key, "answer_key", 32, MAX_KEM_KEY_LEN)?,
            },
        })
    }
}

/// The expected answer sealed to the sponsor's [`AnswerKey`] (HPKE base mode, `info`
/// [`super::EXPECTED_ANSWER_INFO`], `aad` SHA-256 of the challenge data envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedAnswer {
    /// HPKE encapsulated key.
    pub encapsulated_key: Vec<u8>,
    /// The sealed 32-byte answer.
    pub ciphertext: Vec<u8>,
}

/// `verification_data = [ challenge_data: bstr, sealed_answer: [ enc: bstr, ciphertext: bstr ],
/// answer_window_ms: uint ]`, the payload of a COSE_Sign1 by an association key over the
/// handoff transcript.
///
/// `challenge_data` is a whole ChallengeData envelope, itself signed, which the sponsor
/// forwards to the joiner unchanged. The expected answer is for the sponsor alone: sealed, and
/// in a message the joiner never sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationData {
    /// The signed ChallengeData envelope's exact bytes.
    pub challenge_data: Vec<u8>,
    /// The expected answer, sealed to the sponsor.
    pub sealed_answer: SealedAnswer,
    /// How long the sponsor waits for the joiner's answer, on its own clock.
    pub answer_window_ms: u32,
}

impl Message for VerificationData {
    const TAG: MessageTag = MessageTag::VerificationData;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Bytes(self.challenge_data.clone()),
            Value::Array(alloc::vec![
                Value::Bytes(self.sealed_answer.encapsulated_key.clone()),
                Value::Bytes(self.sealed_answer.ciphertext.clone()),
            ]),
            Value::Integer(self.answer_window_ms.into()),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [challenge_data, sealed, window] =
            cbor::fields(cbor::decode(bytes)?, "verification_data")?;
        let [enc, ct] = cbor::fields(sealed, "sealed_answer")?;
        let window = cbor::uint(&window, "answer_window_ms", u64::from(u32::MAX))?;
        Ok(VerificationData {
            challenge_data: cbor::bytes_in(
                challenge_data,
                "challenge_data",
                1,
                MAX_CHALLENGE_DATA_LEN,
            )?,
            sealed_answer: SealedAnswer {
                encapsulated_key: cbor::bytes_in(enc, "encapsulated_key", 32, MAX_KEM_KEY_LEN)?,
                // 32-byte answer + 16-byte AEAD tag.
                ciphertext: cbor::bytes_in(ct, "sealed_answer", 48, 48)?,
            },
            answer_window_ms: u32::try_from(window).map_err(|_| DecodeError::OutOfRange {
                field: "answer_window_ms",
            })?,
        })
    }
}
