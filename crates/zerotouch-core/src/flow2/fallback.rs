//! The flow-2 fallbacks (seed 001, figures 8 to 10): when the association server cannot be
//! reached or does not know the two devices as one account's, the owner steps in, and the
//! credential still only crosses the encrypted local channel.
//!
//! ```text
//! (a) compared codes            (b) typed code, (c) label code
//! joiner           sponsor      joiner                    sponsor
//!   │ ◀── FallbackStart (Cs)      │ ◀── FallbackStart          │   shows / asks for the code
//!   │ SasNonce (Nj) ──▶           │ ◀── PakeShare (shareP)     │   SPAKE2+ prover: the sponsor
//!   │ ◀── SasReveal (Ns)          │ PakeReply (shareV, confirmV) ──▶ verifier: the joiner
//!   │  both show the code,        │ ◀── FallbackHandover (confirmP, credential)
//!   │  the owner confirms both    │   (or FallbackStart again: wrong code, next attempt)
//!   │ OwnerDecision ──▶           │
//!   │ ◀── FallbackHandover (credential)
//! ```
//!
//! This module holds the wire bodies and the short authentication string of (a). The PAKE of
//! (b) and (c) runs in `zerotouch-peer`, which owns the SPAKE2+ dependency.

use alloc::vec::Vec;
use ciborium::Value;
use zeroize::Zeroizing;

use super::{ChannelBinding, HomeCredential, bytes32, key_id};
use crate::{CryptoProvider, DecodeError, KeyId, Message, MessageTag, cbor};

/// Domain label of the commitment to the sponsor's compared-code nonce.
pub const SAS_COMMIT_LABEL: &[u8] = b"zerotouch-flow2-sas-commit";
/// Domain label of the short authentication string.
pub const SAS_LABEL: &[u8] = b"zerotouch-flow2-sas";
/// Digits of the compared code (a).
pub const SAS_DIGITS: u32 = 6;
/// Bytes of each side's compared-code nonce.
pub const SAS_NONCE_LEN: usize = 16;
/// Bytes of a SPAKE2+ P-256 share (SEC1 uncompressed point).
pub const PAKE_SHARE_LEN: usize = 65;
/// Bytes of a SPAKE2+ key confirmation (HMAC-SHA-256).
pub const PAKE_CONFIRM_LEN: usize = 32;

/// A way for the owner to step in, as the devices declare and offer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fallback {
    /// (a) Both devices show a 6-digit code from the channel; the owner confirms on both that
    /// they match. Needs a display and a confirm control on both.
    CompareCodes = 1,
    /// (b) The joiner shows a fresh 8-digit code; the owner types it on the sponsor.
    JoinerShowsCode = 2,
    /// (b) The sponsor shows a fresh 8-digit code; the owner types it on the joiner.
    SponsorShowsCode = 3,
    /// (c) The owner types the code printed on the joiner's label on the sponsor.
    LabelCode = 4,
}

impl Fallback {
    /// Every fallback, in wire order.
    pub const ALL: [Fallback; 4] = [
        Fallback::CompareCodes,
        Fallback::JoinerShowsCode,
        Fallback::SponsorShowsCode,
        Fallback::LabelCode,
    ];

    /// The wire number.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// Parses a wire number.
    pub fn from_u64(v: u64) -> Result<Self, DecodeError> {
        Fallback::ALL
            .iter()
            .copied()
            .find(|f| u64::from(f.to_u8()) == v)
            .ok_or(DecodeError::OutOfRange { field: "fallback" })
    }

    /// Whether the fallback runs SPAKE2+ on a typed code ((b) and (c)).
    pub fn uses_pake(self) -> bool {
        !matches!(self, Fallback::CompareCodes)
    }
}

/// Encodes a list of fallbacks, in order.
pub(crate) fn encode_fallbacks(list: &[Fallback]) -> Value {
    Value::Array(
        list.iter()
            .map(|f| Value::Integer(f.to_u8().into()))
            .collect(),
    )
}

/// Decodes a list of at most four distinct fallbacks, keeping the order.
pub(crate) fn decode_fallbacks(value: Value) -> Result<Vec<Fallback>, DecodeError> {
    let mut out: Vec<Fallback> = Vec::new();
    for item in cbor::list(value, "fallbacks", Fallback::ALL.len())? {
        let f = Fallback::from_u64(cbor::uint(&item, "fallback", 0xff)?)?;
        if out.contains(&f) {
            return Err(DecodeError::OutOfRange { field: "fallbacks" });
        }
        out.push(f);
    }
    Ok(out)
}

/// `fallback_start = [ fallback: uint, sponsor_id: bstr .size 32, sas_commitment: bstr .size 32
/// / null ]`, sponsor → joiner inside the channel: one attempt of `fallback` begins. Sent again
/// after a wrong code, for the next attempt. `sas_commitment` is present exactly for
/// [`Fallback::CompareCodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackStart {
    /// The fallback the sponsor chose: the first of its own list the joiner declared.
    pub fallback: Fallback,
    /// The sponsor's device key id (the SPAKE2+ prover identity).
    pub sponsor_id: KeyId,
    /// (a) only: [`sas_commitment`] of the sponsor's nonce.
    pub sas_commitment: Option<[u8; 32]>,
}

impl Message for FallbackStart {
    const TAG: MessageTag = MessageTag::FallbackStart;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Integer(self.fallback.to_u8().into()),
            bytes32(&self.sponsor_id.0),
            self.sas_commitment.as_ref().map_or(Value::Null, bytes32),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [fallback, sponsor, commitment] = cbor::fields(cbor::decode(bytes)?, "fallback_start")?;
        let fallback = Fallback::from_u64(cbor::uint(&fallback, "fallback", 0xff)?)?;
        let sas_commitment =
            cbor::nullable(commitment, |v| cbor::fixed_bytes::<32>(v, "sas_commitment"))?;
        if sas_commitment.is_some() != (fallback == Fallback::CompareCodes) {
            return Err(DecodeError::OutOfRange {
                field: "sas_commitment",
            });
        }
        Ok(FallbackStart {
            fallback,
            sponsor_id: key_id(sponsor, "sponsor_id")?,
            sas_commitment,
        })
    }
}

macro_rules! nonce_message {
    ($(#[$doc:meta])* $name:ident, $tag:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// A fresh random nonce.
            pub nonce: [u8; SAS_NONCE_LEN],
        }

        impl Message for $name {
            const TAG: MessageTag = MessageTag::$tag;

            fn encode_body(&self) -> Vec<u8> {
                cbor::encode(&Value::Array(alloc::vec![Value::Bytes(self.nonce.to_vec())]))
            }

            fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
                let [nonce] = cbor::fields(cbor::decode(bytes)?, $field)?;
                Ok($name {
                    nonce: cbor::fixed_bytes::<SAS_NONCE_LEN>(nonce, "nonce")?,
                })
            }
        }
    };
}

nonce_message!(
    /// `sas_nonce = [ nonce: bstr .size 16 ]`, joiner → sponsor: the joiner's contribution
    /// to the compared code, sent only after the sponsor committed to its own.
    SasNonce,
    SasNonce,
    "sas_nonce"
);
nonce_message!(
    /// `sas_reveal = [ nonce: bstr .size 16 ]`, sponsor → joiner: the nonce the sponsor
    /// committed to; the joiner refuses it unless it matches the commitment.
    SasReveal,
    SasReveal,
    "sas_reveal"
);

/// `owner_decision = [ confirmed: uint (0..1) ]`, joiner → sponsor: what the owner answered on
/// the joiner when asked whether the two compared codes match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerDecision {
    /// Whether the owner confirmed that the codes match.
    pub confirmed: bool,
}

impl Message for OwnerDecision {
    const TAG: MessageTag = MessageTag::OwnerDecision;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![Value::Integer(
            u8::from(self.confirmed).into()
        )]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [confirmed] = cbor::fields(cbor::decode(bytes)?, "owner_decision")?;
        Ok(OwnerDecision {
            confirmed: cbor::uint(&confirmed, "confirmed", 1)? == 1,
        })
    }
}

/// `pake_share = [ share_p: bstr .size 65 ]`, sponsor → joiner: the SPAKE2+ prover's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PakeShare {
    /// `shareP`, a P-256 point, SEC1 uncompressed.
    pub share: [u8; PAKE_SHARE_LEN],
}

impl Message for PakeShare {
    const TAG: MessageTag = MessageTag::PakeShare;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![Value::Bytes(
            self.share.to_vec()
        )]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [share] = cbor::fields(cbor::decode(bytes)?, "pake_share")?;
        Ok(PakeShare {
            share: cbor::fixed_bytes::<PAKE_SHARE_LEN>(share, "share_p")?,
        })
    }
}

/// `pake_reply = [ share_v: bstr .size 65, confirm_v: bstr .size 32 ]`, joiner → sponsor: the
/// SPAKE2+ verifier's share and key confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PakeReply {
    /// `shareV`, a P-256 point, SEC1 uncompressed.
    pub share: [u8; PAKE_SHARE_LEN],
    /// `confirmV`.
    pub confirm: [u8; PAKE_CONFIRM_LEN],
}

impl Message for PakeReply {
    const TAG: MessageTag = MessageTag::PakeReply;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Bytes(self.share.to_vec()),
            bytes32(&self.confirm),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [share, confirm] = cbor::fields(cbor::decode(bytes)?, "pake_reply")?;
        Ok(PakeReply {
            share: cbor::fixed_bytes::<PAKE_SHARE_LEN>(share, "share_v")?,
            confirm: cbor::fixed_bytes::<PAKE_CONFIRM_LEN>(confirm, "confirm_v")?,
        })
    }
}

/// `fallback_handover = [ confirm_p: bstr .size 32 / null, ssid: bstr .size (1..32),
/// security: uint (1..3), passphrase: bstr .size (8..64) ]`, sponsor → joiner inside the
/// channel only. `confirm_p` (the SPAKE2+ prover's confirmation) is present exactly for (b)
/// and (c); the joiner checks it before it looks at the credential. `Debug` redacts the
/// passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackHandover {
    /// `confirmP`, for the PAKE fallbacks.
    pub confirm: Option<[u8; PAKE_CONFIRM_LEN]>,
    /// The credential.
    pub credential: HomeCredential,
}

impl FallbackHandover {
    /// The body's bytes, wiped when dropped: they hold the passphrase.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let first = self.confirm.as_ref().map_or(Value::Null, bytes32);
        self.credential.encode_after(first)
    }
}

impl Message for FallbackHandover {
    const TAG: MessageTag = MessageTag::FallbackHandover;

    fn encode_body(&self) -> Vec<u8> {
        self.encode().to_vec()
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [confirm, ssid, security, passphrase] =
            cbor::fields(cbor::decode(bytes)?, "fallback_handover")?;
        Ok(FallbackHandover {
            confirm: cbor::nullable(confirm, |v| {
                cbor::fixed_bytes::<PAKE_CONFIRM_LEN>(v, "confirm_p")
            })?,
            credential: HomeCredential::decode_fields(ssid, security, passphrase)?,
        })
    }
}

/// The sponsor's commitment to its compared-code nonce on the channel with `binding`:
/// `SHA-256("zerotouch-flow2-sas-commit" || binding || nonce_s)`.
pub fn sas_commitment(
    provider: &dyn CryptoProvider,
    binding: &ChannelBinding,
    sponsor_nonce: &[u8; SAS_NONCE_LEN],
) -> [u8; 32] {
    provider.sha256(&[SAS_COMMIT_LABEL, &binding.0, sponsor_nonce])
}

/// The compared code (a), a short authentication string of [`SAS_DIGITS`] decimal digits:
/// the first 8 bytes of `SHA-256("zerotouch-flow2-sas" || binding || nonce_s || nonce_j)` as a
/// big-endian integer, modulo 10^6 (bias below 2^-44).
pub fn short_auth_string(
    provider: &dyn CryptoProvider,
    binding: &ChannelBinding,
    sponsor_nonce: &[u8; SAS_NONCE_LEN],
    joiner_nonce: &[u8; SAS_NONCE_LEN],
) -> ShortAuthString {
    let digest = provider.sha256(&[SAS_LABEL, &binding.0, sponsor_nonce, joiner_nonce]);
    let head = digest.first_chunk::<8>().copied().unwrap_or_default();
    let value = u64::from_be_bytes(head) % 10u64.pow(SAS_DIGITS);
    ShortAuthString(u32::try_from(value).unwrap_or(0))
}

/// A 6-digit compared code. Not a secret: both devices show it; it proves nothing unless the
/// owner sees the same value on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShortAuthString(pub u32);

impl core::fmt::Display for ShortAuthString {
    /// Two groups of three digits: `012 345`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:03} {:03}", self.0 / 1000, self.0 % 1000)
    }
}
