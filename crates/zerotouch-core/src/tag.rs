//! Message tags: which message an envelope carries, which flow it belongs to, whether its body
//! must be signed, and how large it may be.
//!
//! The size limits are what the transports size their buffers by: the DNS binding polls for
//! answers up to the limit, the BLE framing reassembles up to it. No message of any type may
//! exceed [`MAX_MESSAGE_LEN`].

use crate::{DecodeError, Flow, KeyRole};

/// The largest envelope of any type, in bytes.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Every message type of the protocol. Bodies are defined with their flows; the envelope
/// already knows each tag's flow, signing rule and size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MessageTag {
    /// Flow 1, device → server: versions, suites, device key or certificate, trusted key ids,
    /// device nonce.
    Hello = 0x01,
    /// Flow 1, server → device: signed proof, server nonce, sealing key, optional PIN challenge.
    ServerProof = 0x02,
    /// Flow 1, device → server: signed key proof with the sealed PIN proof and network report.
    CredentialRequest = 0x03,
    /// Flow 1, server → device: signed sealed credentials, in order, and "unavailable" markers.
    CredentialResponse = 0x04,
    /// Flow 1, device → server on the home network: signed outcome of the join attempt.
    OutcomeReport = 0x05,
    /// Flow 1, server → device: signed acknowledgement of the outcome.
    OutcomeAck = 0x06,
    /// Flow 1, device → revocation service: which key the device trusted, with a fresh nonce.
    RevocationQuery = 0x07,
    /// Flow 1, revocation service → device: signed verdict.
    RevocationVerdict = 0x08,
    /// Flow 1, setup server → an already-joined device: a signed order to open a setup
    /// network for one named device until a deadline (seed 000, paragraph 0053, claim 6).
    OpenSetupNetworkOrder = 0x09,
    /// Flow 2, joiner → sponsor: joiner id and fresh nonce.
    PeerCredentialRequest = 0x20,
    /// Flow 2, sponsor → association server: signed verification request.
    VerificationRequest = 0x21,
    /// Flow 2, association server → sponsor: signed verification data.
    VerificationData = 0x22,
    /// Flow 2, association server → joiner (forwarded by the sponsor unchanged): the
    /// joiner's part of the verification data, signed.
    ChallengeData = 0x23,
    /// Flow 2, joiner → sponsor: the answer to the challenge.
    ChallengeResponse = 0x24,
    /// Flow 2, sponsor → joiner, inside the encrypted channel: the credential.
    CredentialHandover = 0x25,
    /// Flow 2 fallback, sponsor → joiner: one attempt of a fallback begins.
    FallbackStart = 0x26,
    /// Flow 2 fallback (a), joiner → sponsor: the joiner's compared-code nonce.
    SasNonce = 0x27,
    /// Flow 2 fallback (a), sponsor → joiner: the sponsor's committed nonce, revealed.
    SasReveal = 0x28,
    /// Flow 2 fallback (a), joiner → sponsor: the owner's answer on the joiner.
    OwnerDecision = 0x29,
    /// Flow 2 fallbacks (b), (c), sponsor → joiner: the SPAKE2+ prover's share.
    PakeShare = 0x2a,
    /// Flow 2 fallbacks (b), (c), joiner → sponsor: the SPAKE2+ verifier's share and
    /// confirmation.
    PakeReply = 0x2b,
    /// Flow 2 fallback, sponsor → joiner, inside the encrypted channel: the credential.
    FallbackHandover = 0x2c,
    /// Any flow, either direction: an error. Unsigned errors are only hints to retry.
    Error = 0x7f,
}

impl MessageTag {
    /// Every tag, in number order.
    pub const ALL: [MessageTag; 23] = [
        MessageTag::Hello,
        MessageTag::ServerProof,
        MessageTag::CredentialRequest,
        MessageTag::CredentialResponse,
        MessageTag::OutcomeReport,
        MessageTag::OutcomeAck,
        MessageTag::RevocationQuery,
        MessageTag::RevocationVerdict,
        MessageTag::OpenSetupNetworkOrder,
        MessageTag::PeerCredentialRequest,
        MessageTag::VerificationRequest,
        MessageTag::VerificationData,
        MessageTag::ChallengeData,
        MessageTag::ChallengeResponse,
        MessageTag::CredentialHandover,
        MessageTag::FallbackStart,
        MessageTag::SasNonce,
        MessageTag::SasReveal,
        MessageTag::OwnerDecision,
        MessageTag::PakeShare,
        MessageTag::PakeReply,
        MessageTag::FallbackHandover,
        MessageTag::Error,
    ];

    /// The wire number.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// Parses a wire number.
    pub fn from_u64(v: u64) -> Result<Self, DecodeError> {
        MessageTag::ALL
            .iter()
            .copied()
            .find(|t| u64::from(t.to_u8()) == v)
            .ok_or(DecodeError::UnknownTag(v))
    }

    /// The flow this message belongs to, or `None` for messages valid in every flow.
    pub fn flow(self) -> Option<Flow> {
        match self.to_u8() {
            0x01..=0x1f => Some(Flow::ServerSetup),
            0x20..=0x3f => Some(Flow::PeerHandoff),
            _ => None,
        }
    }

    /// The role of the key that signs this message, or `None` for unsigned messages. Signing
    /// and verification refuse any other role, so a verifier that asks for the wrong role by
    /// mistake cannot accept, say, a setup key's signature as a revocation verdict.
    pub fn signer_role(self) -> Option<KeyRole> {
        match self {
            MessageTag::ServerProof | MessageTag::CredentialResponse | MessageTag::OutcomeAck => {
                Some(KeyRole::SetupSigning)
            }
            MessageTag::CredentialRequest
            | MessageTag::OutcomeReport
            | MessageTag::VerificationRequest => Some(KeyRole::DeviceIdentity),
            MessageTag::RevocationVerdict => Some(KeyRole::RevocationVerdict),
            MessageTag::OpenSetupNetworkOrder => Some(KeyRole::ProvisionerOrder),
            MessageTag::VerificationData | MessageTag::ChallengeData => Some(KeyRole::Association),
            MessageTag::Hello
            | MessageTag::RevocationQuery
            | MessageTag::PeerCredentialRequest
            | MessageTag::ChallengeResponse
            | MessageTag::CredentialHandover
            | MessageTag::FallbackStart
            | MessageTag::SasNonce
            | MessageTag::SasReveal
            | MessageTag::OwnerDecision
            | MessageTag::PakeShare
            | MessageTag::PakeReply
            | MessageTag::FallbackHandover
            | MessageTag::Error => None,
        }
    }

    /// Whether the body must be a COSE_Sign1 (true) or a plain byte string (false).
    pub fn is_signed(self) -> bool {
        self.signer_role().is_some()
    }

    /// The largest envelope of this type, in bytes (header and signature included).
    pub fn max_len(self) -> usize {
        match self {
            MessageTag::Hello => 1024,
            MessageTag::ServerProof => 1024,
            // 30 visible networks, each sealed with SSID, signal, band and security type.
            MessageTag::CredentialRequest => 3072,
            MessageTag::CredentialResponse => MAX_MESSAGE_LEN,
            MessageTag::OutcomeReport | MessageTag::OutcomeAck => 512,
            MessageTag::RevocationQuery | MessageTag::RevocationVerdict => 512,
            MessageTag::OpenSetupNetworkOrder => 512,
            MessageTag::PeerCredentialRequest => 512,
            MessageTag::VerificationRequest | MessageTag::VerificationData => 1536,
            MessageTag::ChallengeData => 1536,
            MessageTag::ChallengeResponse => 256,
            MessageTag::CredentialHandover => 512,
            MessageTag::FallbackStart | MessageTag::SasNonce | MessageTag::SasReveal => 256,
            MessageTag::OwnerDecision => 256,
            MessageTag::PakeShare | MessageTag::PakeReply => 256,
            MessageTag::FallbackHandover => 512,
            MessageTag::Error => 256,
        }
    }
}
