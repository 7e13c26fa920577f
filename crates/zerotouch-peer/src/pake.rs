//! The codes the owner types in fallbacks (b) and (c), and the SPAKE2+ run that proves both
//! devices hold the same code without a code on the wire (RFC 9383, suite
//! `P256-SHA256-HKDF-SHA256-HMAC-SHA256`, through the `spake2plus` crate).
//!
//! Roles: the sponsor is the prover, the joiner the verifier. For a label code (c) that fits
//! the augmented PAKE exactly: the factory stores only the verifier's record (`w0`, `L`) in the
//! joiner, never the printed code.
//!
//! Inputs (`docs/PROTOCOL.md` section 18.7):
//!
//! ```text
//! pbkdf_input = len(code) || code || len("") || "" || len(joiner_id) || joiner_id
//!               (each len 8 bytes little-endian; code = its 8 ASCII digits)
//! w0s || w1s  = PBKDF2-HMAC-SHA256(pbkdf_input, salt, iterations, 80 bytes)
//!               session code (b): salt "zerotouch-flow2-session-code", 1 iteration
//!               label code (c):   salt "zerotouch-flow2-label-code", 10,000 iterations
//! Context     = "zerotouch flow2 fallback v1" || fallback (1 byte) || session_id (16)
//!               || channel binding (32)
//! idProver    = sponsor_id (32),  idVerifier = joiner_id (32)
//! ```
//!
//! The channel binding in the context is what ties the PAKE to the local channel: a device
//! relaying between two channels holds two bindings, so the two ends' confirmations differ
//! even when the owner typed the right code.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use spake2plus::{Context, P256Sha256, ProverSecret, VerifierRecord};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;
use zerotouch_core::flow2::{ChannelBinding, Fallback};
use zerotouch_core::{KeyId, SessionId};

use crate::PeerError;

/// The SPAKE2+ suite of every fallback.
pub type PakeSuite = P256Sha256;
/// Digits of a session code (b) and of a label code (c).
pub const CODE_DIGITS: usize = 8;
/// The first bytes of every PAKE context.
pub const PAKE_CONTEXT_LABEL: &[u8] = b"zerotouch flow2 fallback v1";
/// PBKDF2 salt of a session code (b).
pub const SESSION_CODE_SALT: &[u8] = b"zerotouch-flow2-session-code";
/// PBKDF2 salt of a label code (c).
pub const LABEL_CODE_SALT: &[u8] = b"zerotouch-flow2-label-code";
/// PBKDF2 iterations of a session code: it lives for one attempt and no record of it is ever
/// stored, so slowing an offline search buys nothing; each attempt is one online guess.
pub const SESSION_CODE_ITERATIONS: u32 = 1;
/// PBKDF2 iterations of a label code: its record lives in the joiner's flash for the device's
/// life, so a dump of that flash should cost an offline search something.
pub const LABEL_CODE_ITERATIONS: u32 = 10_000;
/// Bytes of PBKDF2 output: `w0s || w1s`, 40 bytes each (RFC 9383 section 3.2 for P-256).
pub const PBKDF_OUTPUT_LEN: usize = 80;
/// Bytes of a stored label record: `w0` (32) then `L` (65, SEC1 uncompressed).
pub const LABEL_RECORD_LEN: usize = 97;

/// An 8-digit code the owner reads on one device and types on the other: a fresh session code
/// (b) or the joiner's label code (c). Zeroized on drop, compared in constant time, and
/// redacted from `Debug` (firmware shows it with [`grouped`](Self::grouped), never logs it).
#[derive(Clone)]
pub struct PairingCode(Zeroizing<[u8; CODE_DIGITS]>);

impl PairingCode {
    /// A uniformly random code (rejection sampling, no modulo bias).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        // 4_200_000_000 is the largest multiple of 10^8 below 2^32.
        let value = loop {
            let v = rng.next_u32();
            if v < 4_200_000_000 {
                break v % 100_000_000;
            }
        };
        let mut digits = Zeroizing::new([b'0'; CODE_DIGITS]);
        let mut rest = value;
        for d in digits.iter_mut().rev() {
            // `rest % 10` is below 10.
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        PairingCode(digits)
    }

    /// Parses what the owner typed: exactly eight digits, with any spaces or dashes between
    /// them ignored.
    pub fn parse(typed: &str) -> Result<Self, PeerError> {
        let mut digits = Zeroizing::new([0u8; CODE_DIGITS]);
        let mut n = 0usize;
        for c in typed.bytes() {
            match c {
                b'0'..=b'9' => {
                    let slot = digits.get_mut(n).ok_or(PeerError::InvalidCode)?;
                    *slot = c;
                    n += 1;
                }
                b' ' | b'-' => {}
                _ => return Err(PeerError::InvalidCode),
            }
        }
        if n != CODE_DIGITS {
            return Err(PeerError::InvalidCode);
        }
        Ok(PairingCode(digits))
    }

    /// The eight ASCII digits.
    pub fn digits(&self) -> &[u8; CODE_DIGITS] {
        &self.0
    }

    /// The code as the owner should read it: `1234 5678`.
    pub fn grouped(&self) -> String {
        let mut out = String::with_capacity(CODE_DIGITS + 1);
        for (i, d) in self.0.iter().enumerate() {
            if i == CODE_DIGITS / 2 {
                out.push(' ');
            }
            out.push(char::from(*d));
        }
        out
    }
}

impl PartialEq for PairingCode {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&*other.0).into()
    }
}
impl Eq for PairingCode {}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingCode(<redacted>)")
    }
}

/// Which kind of code, and so which PBKDF2 salt and iteration count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// A fresh code for one attempt of fallback (b).
    Session,
    /// The code printed on the joiner's label, fallback (c).
    Label,
}

impl CodeKind {
    fn salt(self) -> &'static [u8] {
        match self {
            CodeKind::Session => SESSION_CODE_SALT,
            CodeKind::Label => LABEL_CODE_SALT,
        }
    }

    fn iterations(self) -> u32 {
        match self {
            CodeKind::Session => SESSION_CODE_ITERATIONS,
            CodeKind::Label => LABEL_CODE_ITERATIONS,
        }
    }
}

/// `w0s || w1s` of `code` for the joiner `joiner_id` (see the module documentation).
pub fn pbkdf_output(
    code: &PairingCode,
    joiner_id: &KeyId,
    kind: CodeKind,
) -> Result<Zeroizing<[u8; PBKDF_OUTPUT_LEN]>, PeerError> {
    let mut input = Zeroizing::new(Vec::with_capacity(3 * 8 + CODE_DIGITS + 32));
    for part in [&code.digits()[..], &[], &joiner_id.0[..]] {
        input.extend_from_slice(&(part.len() as u64).to_le_bytes());
        input.extend_from_slice(part);
    }
    let mut out = Zeroizing::new([0u8; PBKDF_OUTPUT_LEN]);
    pbkdf2::pbkdf2::<hmac::Hmac<sha2::Sha256>>(&input, kind.salt(), kind.iterations(), &mut *out)
        .map_err(|_| PeerError::Kdf)?;
    Ok(out)
}

/// The prover's secret (`w0`, `w1`) for `code`.
pub fn prover_secret(
    code: &PairingCode,
    joiner_id: &KeyId,
    kind: CodeKind,
) -> Result<ProverSecret<PakeSuite>, PeerError> {
    let output = pbkdf_output(code, joiner_id, kind)?;
    ProverSecret::from_pbkdf_output(&*output).map_err(PeerError::Pake)
}

/// The record a joiner stores for its label code (c): `w0` and `L = w1·P`, 97 bytes. The
/// factory computes it with [`LabelRecord::from_code`] and prints the code on the label; the
/// device keeps only this. Zeroized on drop; `Debug` is redacted.
#[derive(Clone)]
pub struct LabelRecord(Zeroizing<[u8; LABEL_RECORD_LEN]>);

impl LabelRecord {
    /// The record of `code` for the joiner `joiner_id` (10,000 PBKDF2 iterations).
    pub fn from_code(code: &PairingCode, joiner_id: &KeyId) -> Result<Self, PeerError> {
        let record = prover_secret(code, joiner_id, CodeKind::Label)?.verifier_record();
        Ok(LabelRecord(Zeroizing::new(*record.to_bytes())))
    }

    /// A stored record, checked: `w0` a non-zero scalar, `L` a point of the group.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PeerError> {
        VerifierRecord::<PakeSuite>::from_bytes(bytes).map_err(PeerError::Pake)?;
        let mut out = Zeroizing::new([0u8; LABEL_RECORD_LEN]);
        out.copy_from_slice(bytes);
        Ok(LabelRecord(out))
    }

    /// The bytes to store.
    pub fn to_bytes(&self) -> &[u8; LABEL_RECORD_LEN] {
        &self.0
    }

    pub(crate) fn record(&self) -> Result<VerifierRecord<PakeSuite>, PeerError> {
        VerifierRecord::from_bytes(&*self.0).map_err(PeerError::Pake)
    }
}

impl fmt::Debug for LabelRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LabelRecord(<redacted>)")
    }
}

/// The PAKE context of one attempt: names the fallback, the handoff and the channel.
pub(crate) struct PakeContext {
    context: Vec<u8>,
    sponsor_id: KeyId,
    joiner_id: KeyId,
}

impl PakeContext {
    pub(crate) fn new(
        fallback: Fallback,
        session_id: &SessionId,
        binding: &ChannelBinding,
        sponsor_id: KeyId,
        joiner_id: KeyId,
    ) -> Self {
        let mut context = Vec::with_capacity(PAKE_CONTEXT_LABEL.len() + 1 + 16 + 32);
        context.extend_from_slice(PAKE_CONTEXT_LABEL);
        context.push(fallback.to_u8());
        context.extend_from_slice(&session_id.0);
        context.extend_from_slice(&binding.0);
        PakeContext {
            context,
            sponsor_id,
            joiner_id,
        }
    }

    pub(crate) fn get(&self) -> Context<'_> {
        Context {
            context: &self.context,
            prover_id: &self.sponsor_id.0,
            verifier_id: &self.joiner_id.0,
        }
    }
}
