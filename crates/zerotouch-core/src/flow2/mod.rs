//! Flow 2 (peer handoff) message bodies and the values that bind them.
//!
//! ```text
//! joiner                         sponsor                          association server
//!   │ ── Noise NN handshake ──▶ │   (local channel; binding = handshake hash)
//!   │ PeerCredentialRequest ───▶│
//!   │                           │ VerificationRequest ──────────▶ (signed: DeviceIdentity)
//!   │                           │ ◀────────────── VerificationData (signed: Association;
//!   │                           │                                    carries ChallengeData and the
//!   │                           │                                    expected answer sealed to the sponsor)
//!   │ ◀────────── ChallengeData │   (forwarded unchanged; signed: Association)
//!   │ ChallengeResponse ───────▶│   (HMAC of the joiner's device secret)
//!   │ ◀────── CredentialHandover│   (credential and commitment key, inside the channel only)
//! ```
//!
//! Every signed flow-2 message is signed over the [`handoff_transcript`] of the joiner's fresh
//! session id, so a signature never moves to another handoff. The rules that make the
//! flow safe live in the values defined here:
//!
//! - [`ChannelBinding`]: the handshake hash of the sponsor's *own* channel goes into the signed
//!   request and comes back signed; a relay sits on two channels with two bindings.
//! - [`challenge_answer`]: HMAC-SHA-256 under the joiner's device secret over the challenge
//!   *and* the binding, so an answer given on one channel is worth nothing on another.
//! - [`credential_commitment`]: HMAC-SHA-256 of the credential under a random key the sponsor
//!   reveals only inside the channel, so the server (which signs the commitment) cannot test
//!   passphrase guesses against it.
//!
//! Decoding is strict and never panics, like flow 1's.

mod challenge;
mod credential_request;
pub mod fallback;
mod handover;
mod verification;

pub use challenge::{ChallengeData, ChallengeResponse};
pub use credential_request::PeerCredentialRequest;
pub use fallback::{
    Fallback, FallbackHandover, FallbackStart, OwnerDecision, PakeReply, PakeShare, SasNonce,
    SasReveal, ShortAuthString, sas_commitment, short_auth_string,
};
pub use handover::{CredentialHandover, HomeCredential};
pub use verification::{AnswerKey, SealedAnswer, VerificationData, VerificationRequest};

use ciborium::Value;
use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{
    CryptoProvider, DecodeError, DeviceSecret, Flow, Header, KeyId, MessageTag, Nonce,
    ProtocolVersion, SessionId, Transcript, TranscriptHash, Transport, cbor,
};

/// HPKE `info` of the expected answer the server seals to the sponsor.
pub const EXPECTED_ANSWER_INFO: &[u8] = b"zerotouch flow2 expected answer";
/// Domain label of the challenge answer's HMAC input.
pub const ANSWER_LABEL: &str = "zerotouch-flow2-answer";
/// Domain label of the credential commitment's HMAC input.
pub const COMMITMENT_LABEL: &str = "zerotouch-flow2-commitment";
/// The Noise protocol of the local channel.
pub const NOISE_PROTOCOL: &str = "Noise_NN_25519_ChaChaPoly_SHA256";
/// The Noise prologue of the local channel: both sides must use it or the handshake fails.
pub const NOISE_PROLOGUE: &[u8] = b"zerotouch flow2 v1";

/// The sequence number a flow-2 message carries: its place in its exchange (the local one, or
/// the sponsor's with the server). An error answering a message carries that number plus one.
pub fn seq_of(tag: MessageTag) -> u32 {
    match tag {
        MessageTag::PeerCredentialRequest | MessageTag::VerificationRequest => 0,
        MessageTag::ChallengeData | MessageTag::VerificationData => 1,
        MessageTag::ChallengeResponse => 2,
        MessageTag::CredentialHandover => 3,
        MessageTag::FallbackStart => 4,
        MessageTag::SasNonce | MessageTag::PakeShare => 5,
        MessageTag::SasReveal | MessageTag::PakeReply => 6,
        MessageTag::OwnerDecision => 7,
        MessageTag::FallbackHandover => 8,
        _ => 0,
    }
}

/// The header of a flow-2 message of `tag` in `session_id`, protocol version 1.
pub fn header(tag: MessageTag, session_id: SessionId) -> Header {
    Header {
        version: ProtocolVersion::V1,
        flow: Flow::PeerHandoff,
        tag,
        session_id,
        seq: seq_of(tag),
    }
}

/// The transcript every signed flow-2 message is signed over:
/// `start(flow 2, local stream, session_id)`.
///
/// The joiner draws a fresh session id for every handoff, so the sponsor's request, the
/// server's challenge data and its verification data cannot be replayed into another handoff.
/// (The nonce is in every signed payload; it is not in the transcript because the server must
/// find the signer's key before it can read the payload.)
pub fn handoff_transcript(provider: &dyn CryptoProvider, session_id: &SessionId) -> TranscriptHash {
    Transcript::new(
        provider,
        Flow::PeerHandoff,
        Transport::LocalStream,
        session_id,
    )
    .hash()
}

/// The binding value of an encrypted local channel: its Noise handshake hash. Two channels
/// never share one, so a value signed for one channel is refused on every other.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelBinding(pub [u8; 32]);

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelBinding(")?;
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

/// A challenge the association server draws for one handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Challenge(pub [u8; 32]);

/// The commitment to the credential that the server signs: HMAC-SHA-256 under a key only the
/// sponsor and, after the handover, the joiner know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Commitment(pub [u8; 32]);

impl Commitment {
    /// Whether `self` equals `other`, in constant time.
    pub fn matches(&self, other: &Commitment) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// The random key of a [`Commitment`]: chosen by the sponsor per handoff, sent only inside the
/// encrypted handover. Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CommitmentKey([u8; 32]);

impl CommitmentKey {
    /// Wraps 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        CommitmentKey(bytes)
    }

    /// Draws a fresh key.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        CommitmentKey(b)
    }

    /// The key bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for CommitmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CommitmentKey(<redacted>)")
    }
}

/// An answer to a challenge (the joiner's, or the expected one the server computed). Compared
/// in constant time, zeroized on drop, redacted in `Debug`: whoever holds the expected answer
/// could pass the sponsor's check.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ChallengeAnswer([u8; 32]);

impl ChallengeAnswer {
    /// Wraps 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        ChallengeAnswer(bytes)
    }

    /// The answer bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for ChallengeAnswer {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for ChallengeAnswer {}

impl fmt::Debug for ChallengeAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeAnswer(<redacted>)")
    }
}

/// What a challenge answer covers besides the challenge: everything that names this handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerContext<'a> {
    /// The handoff's session id.
    pub session_id: &'a SessionId,
    /// The joiner's nonce.
    pub nonce: &'a Nonce,
    /// The sponsor's device key id.
    pub sponsor_id: &'a KeyId,
    /// The joiner's device key id.
    pub joiner_id: &'a KeyId,
}

/// The answer to `challenge` on the channel with `binding`:
///
/// ```text
/// HMAC-SHA-256(device_secret, CBOR["zerotouch-flow2-answer", session_id, nonce, sponsor_id,
///                                  joiner_id, challenge, binding])
/// ```
///
/// The server computes it as the expected answer for the sponsor's binding; the joiner computes
/// it for its own binding. They agree only when both sit on the same channel.
pub fn challenge_answer(
    provider: &dyn CryptoProvider,
    secret: &DeviceSecret,
    context: &AnswerContext<'_>,
    challenge: &Challenge,
    binding: &ChannelBinding,
) -> ChallengeAnswer {
    let input = cbor::encode(&Value::Array(alloc::vec![
        Value::Text(ANSWER_LABEL.into()),
        Value::Bytes(context.session_id.0.to_vec()),
        Value::Bytes(context.nonce.0.to_vec()),
        Value::Bytes(context.sponsor_id.0.to_vec()),
        Value::Bytes(context.joiner_id.0.to_vec()),
        Value::Bytes(challenge.0.to_vec()),
        Value::Bytes(binding.0.to_vec()),
    ]));
    ChallengeAnswer(provider.hmac_sha256(secret.expose_secret(), &[&input]))
}

/// The commitment to `credential` for the handoff of `nonce` by `joiner_id`:
///
/// ```text
/// HMAC-SHA-256(commitment_key, CBOR["zerotouch-flow2-commitment", session_id, nonce, joiner_id,
///                                   ssid, security, passphrase])
/// ```
///
/// Without the 256-bit key, which only travels inside the encrypted handover, the commitment
/// reveals nothing a guess can be tested against: unlike the seed's plain credential hash.
pub fn credential_commitment(
    provider: &dyn CryptoProvider,
    key: &CommitmentKey,
    session_id: &SessionId,
    nonce: &Nonce,
    joiner_id: &KeyId,
    credential: &HomeCredential,
) -> Commitment {
    let mut value = Value::Array(alloc::vec![
        Value::Text(COMMITMENT_LABEL.into()),
        Value::Bytes(session_id.0.to_vec()),
        Value::Bytes(nonce.0.to_vec()),
        Value::Bytes(joiner_id.0.to_vec()),
        Value::Bytes(credential.ssid.clone()),
        Value::Integer(credential.security.into()),
        Value::Bytes(credential.passphrase.expose_secret().to_vec()),
    ]);
    let mut input = cbor::encode(&value);
    let mac = provider.hmac_sha256(key.expose_secret(), &[&input]);
    input.zeroize();
    if let Value::Array(items) = &mut value
        && let Some(Value::Bytes(p)) = items.last_mut()
    {
        p.zeroize();
    }
    Commitment(mac)
}

/// The five values a verification request and its challenge data both start with, in wire
/// order: `sponsor_id, joiner_id, nonce, commitment, binding`.
pub(crate) struct HandoffNames {
    pub(crate) sponsor_id: KeyId,
    pub(crate) joiner_id: KeyId,
    pub(crate) nonce: Nonce,
    pub(crate) commitment: Commitment,
    pub(crate) binding: ChannelBinding,
}

impl HandoffNames {
    pub(crate) fn encode(&self) -> [Value; 5] {
        [
            bytes32(&self.sponsor_id.0),
            bytes32(&self.joiner_id.0),
            Value::Bytes(self.nonce.0.to_vec()),
            bytes32(&self.commitment.0),
            bytes32(&self.binding.0),
        ]
    }

    pub(crate) fn decode(values: [Value; 5]) -> Result<Self, DecodeError> {
        let [sponsor, joiner, n, commitment, binding] = values;
        Ok(HandoffNames {
            sponsor_id: key_id(sponsor, "sponsor_id")?,
            joiner_id: key_id(joiner, "joiner_id")?,
            nonce: nonce(n)?,
            commitment: Commitment(cbor::fixed_bytes::<32>(commitment, "commitment")?),
            binding: ChannelBinding(cbor::fixed_bytes::<32>(binding, "binding")?),
        })
    }
}

pub(crate) fn key_id(value: Value, field: &'static str) -> Result<KeyId, DecodeError> {
    cbor::fixed_bytes::<32>(value, field).map(KeyId)
}

pub(crate) fn nonce(value: Value) -> Result<Nonce, DecodeError> {
    cbor::fixed_bytes::<16>(value, "nonce").map(Nonce)
}

pub(crate) fn bytes32(b: &[u8; 32]) -> Value {
    Value::Bytes(b.to_vec())
}
