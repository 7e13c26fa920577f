//! Flow 1 (server-based setup) message bodies, one type each.
//!
//! Each type encodes to, and decodes from, the body bytes an [`Envelope`](crate::Envelope)
//! carries: plain for the hello and the revocation query, the payload of a COSE_Sign1 for the
//! others (verify first, then decode the verified payload). Decoding is strict (one byte form,
//! every length bounded) and never panics.
//!
//! ```text
//! device                                   server
//!   Hello ───────────────────────────────▶
//!         ◀─────────────────────────────── ServerProof            (signed: SetupSigning)
//!   CredentialRequest ───────────────────▶                        (signed: DeviceIdentity,
//!                                                                   sealed PIN + network report)
//!         ◀─────────────────────────────── CredentialResponse     (signed, credentials sealed)
//!   … joins the home network …
//!   OutcomeReport ───────────────────────▶                        (signed: DeviceIdentity)
//!         ◀─────────────────────────────── OutcomeAck             (signed: SetupSigning)
//!   RevocationQuery ─────────────────────▶ revocation service
//!         ◀─────────────────────────────── RevocationVerdict      (signed: RevocationVerdict)
//! ```

pub mod binding;
mod credential_request;
mod credential_response;
mod hello;
mod outcome;
mod revocation;
mod server_proof;

pub use binding::{SetupTranscript, header, seq_of};
pub use credential_request::{
    CredentialRequest, DeviceReport, MAX_REPORTED_NETWORKS, ReportedNetwork, SealedReport,
};
pub use credential_response::{CredentialEntry, CredentialResponse, EntryStatus, MAX_ENTRIES};
pub use hello::{DeviceIdentityRef, Hello, MAX_TRUSTED_KEYS};
pub use outcome::{JoinOutcome, OutcomeAck, OutcomeReport};
pub use revocation::{RevocationQuery, RevocationStatus, RevocationVerdict};
pub use server_proof::ServerProof;

use alloc::vec::Vec;
use ciborium::Value;

use crate::{CipherSuite, DecodeError, cbor};

/// Suites as the wire carries them: 6 bytes each (KEM, KDF, AEAD ids, big-endian u16).
pub(crate) fn suites_to_bytes(suites: &[CipherSuite]) -> Vec<u8> {
    suites
        .iter()
        .flat_map(|s| {
            let mut b = [0u8; 6];
            b[..2].copy_from_slice(&s.kem.to_be_bytes());
            b[2..4].copy_from_slice(&s.kdf.to_be_bytes());
            b[4..].copy_from_slice(&s.aead.to_be_bytes());
            b
        })
        .collect()
}

pub(crate) fn suite_from_chunk(c: &[u8]) -> Option<CipherSuite> {
    let c: &[u8; 6] = c.try_into().ok()?;
    Some(CipherSuite {
        kem: u16::from_be_bytes([c[0], c[1]]),
        kdf: u16::from_be_bytes([c[2], c[3]]),
        aead: u16::from_be_bytes([c[4], c[5]]),
    })
}

pub(crate) fn uint_value(v: u64) -> Value {
    Value::Integer(v.into())
}

pub(crate) fn small_uint<T: TryFrom<u64>>(
    v: &Value,
    field: &'static str,
    max: u64,
) -> Result<T, DecodeError> {
    T::try_from(cbor::uint(v, field, max)?).map_err(|_| DecodeError::OutOfRange { field })
}
