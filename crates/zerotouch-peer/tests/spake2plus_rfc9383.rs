//! SPAKE2+ as the fallbacks use it (`spake2plus` =0.1.0, suite
//! `P256-SHA256-HKDF-SHA256-HMAC-SHA256`), checked through the crate's public API only against
//! RFC 9383 Appendix C's vector for that suite (`tests/data/rfc9383_p256_sha256.json`):
//! the registration record, both shares, both confirmations and the shared key, byte for byte,
//! in the RFC's order. Then the two refusals the fallbacks rely on: another password, or
//! another context (the context is what binds a run to the local channel), fails key
//! confirmation on both sides.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::Value;
use spake2plus::rand_core::{Infallible, TryCryptoRng, TryRng};
use spake2plus::{
    ConfirmP, ConfirmV, Context, Error, P256Sha256, Prover, ProverSecret, ShareP, ShareV, Suite,
    Verifier, VerifierRecord,
};

const VECTOR: &str = include_str!("data/rfc9383_p256_sha256.json");

/// The vector's values, decoded.
struct Vector {
    context: Vec<u8>,
    prover_id: Vec<u8>,
    verifier_id: Vec<u8>,
    w0: Vec<u8>,
    w1: Vec<u8>,
    l: Vec<u8>,
    x: Vec<u8>,
    share_p: Vec<u8>,
    y: Vec<u8>,
    share_v: Vec<u8>,
    confirm_p: Vec<u8>,
    confirm_v: Vec<u8>,
    k_shared: Vec<u8>,
}

fn vector() -> Vector {
    let v: Value = serde_json::from_str(VECTOR).unwrap();
    let text = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{name} missing"))
            .as_bytes()
            .to_vec()
    };
    let hex = |name: &str| hex::decode(text(name)).unwrap();
    assert_eq!(
        v.get("suite").and_then(Value::as_str),
        Some(P256Sha256::NAME),
        "the vector is the suite's the fallbacks use"
    );
    Vector {
        context: text("context"),
        prover_id: text("idProver"),
        verifier_id: text("idVerifier"),
        w0: hex("w0"),
        w1: hex("w1"),
        l: hex("L"),
        x: hex("x"),
        share_p: hex("shareP"),
        y: hex("y"),
        share_v: hex("shareV"),
        confirm_p: hex("confirmP"),
        confirm_v: hex("confirmV"),
        k_shared: hex("K_shared"),
    }
}

impl Vector {
    fn context(&self) -> Context<'_> {
        Context {
            context: &self.context,
            prover_id: &self.prover_id,
            verifier_id: &self.verifier_id,
        }
    }
}

/// An 80-byte PBKDF output that reduces to `w0` and `w1`: each 40-byte half is eight zero bytes
/// then the 32-byte scalar (a big-endian integer below the group order reduces to itself).
fn pbkdf_output(w0: &[u8], w1: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    for scalar in [w0, w1] {
        assert_eq!(scalar.len(), 32);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(scalar);
    }
    assert_eq!(out.len(), P256Sha256::MIN_PBKDF_OUTPUT_LEN);
    out
}

fn secret(w0: &[u8], w1: &[u8]) -> ProverSecret<P256Sha256> {
    ProverSecret::from_pbkdf_output(&pbkdf_output(w0, w1)).unwrap()
}

/// A "random" number generator that hands out exactly the bytes it was made with, so a run
/// picks the vector's `x` or `y`: 64 bytes, 32 zeros then the scalar, which the crate's wide
/// reduction turns into the scalar itself. Asking for more than it holds fails the test.
struct Replay {
    bytes: Vec<u8>,
    at: usize,
}

impl Replay {
    fn scalar(scalar: &[u8]) -> Self {
        assert_eq!(scalar.len(), 32);
        let mut bytes = vec![0; 32];
        bytes.extend_from_slice(scalar);
        Replay { bytes, at: 0 }
    }

    /// Bytes not handed out yet.
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }
}

impl TryRng for Replay {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(dst.len() <= self.left(), "the replayed bytes ran out");
        dst.copy_from_slice(&self.bytes[self.at..self.at + dst.len()]);
        self.at += dst.len();
        Ok(())
    }
}

impl TryCryptoRng for Replay {}

/// `run` with a [`Replay`] of `scalar`, which it must draw whole: one 64-byte scalar.
fn drawing<T>(scalar: &[u8], run: impl FnOnce(&mut Replay) -> T) -> T {
    let mut rng = Replay::scalar(scalar);
    let out = run(&mut rng);
    assert_eq!(rng.left(), 0, "one 64-byte scalar drawn");
    out
}

#[test]
fn the_registration_record_is_w0_then_l_as_the_rfc_gives_them() {
    let v = vector();
    let record = secret(&v.w0, &v.w1).verifier_record();
    let expected = [&v.w0[..], &v.l[..]].concat();
    assert_eq!(record.to_bytes().as_ref(), &expected[..]);
    // What a joiner stores for its label code parses back to the same record.
    let parsed = VerifierRecord::<P256Sha256>::from_bytes(&expected).unwrap();
    assert_eq!(parsed.to_bytes().as_ref(), &expected[..]);
}

#[test]
fn shares_confirmations_and_shared_key_match_the_rfc_vector_in_the_rfcs_order() {
    let v = vector();
    let secret = secret(&v.w0, &v.w1);
    let record = VerifierRecord::<P256Sha256>::from_bytes(&[&v.w0[..], &v.l[..]].concat()).unwrap();
    let (prover, share_p) = drawing(&v.x, |rng| Prover::start(&secret, &v.context(), rng));
    let (verifier, share_v) = drawing(&v.y, |rng| Verifier::start(&record, &v.context(), rng));
    assert_eq!(share_p.as_bytes()[..], v.share_p[..], "shareP");
    assert_eq!(share_v.as_bytes()[..], v.share_v[..], "shareV");

    // Each side works on what it received, parsed from the wire bytes.
    let received_p = ShareP::<P256Sha256>::from_bytes(share_p.as_bytes()).unwrap();
    let received_v = ShareV::<P256Sha256>::from_bytes(share_v.as_bytes()).unwrap();

    // Verifier: shareP in, confirmV out.
    let (verifier, confirm_v) = verifier.receive(&received_p).unwrap();
    assert_eq!(confirm_v.as_bytes()[..], v.confirm_v[..], "confirmV");

    // Prover: shareV in, confirmV checked, then confirmP and K_shared.
    let confirming = prover.receive(&received_v).unwrap();
    let received_confirm_v = ConfirmV::<P256Sha256>::from_bytes(confirm_v.as_bytes()).unwrap();
    let (confirm_p, prover_key) = confirming.finish(&received_confirm_v).unwrap();
    assert_eq!(confirm_p.as_bytes()[..], v.confirm_p[..], "confirmP");
    assert_eq!(
        prover_key.as_bytes()[..],
        v.k_shared[..],
        "K_shared (prover)"
    );

    // Verifier: confirmP checked, then K_shared.
    let received_confirm_p = ConfirmP::<P256Sha256>::from_bytes(confirm_p.as_bytes()).unwrap();
    let verifier_key = verifier.finish(&received_confirm_p).unwrap();
    assert_eq!(
        verifier_key.as_bytes()[..],
        v.k_shared[..],
        "K_shared (verifier)"
    );
}

/// Runs the vector's exchange with the prover on `secret` and `prover_context`, the verifier
/// on the vector's record and context, and checks that each side refuses the other's key
/// confirmation: the prover refuses confirmV (so it never sends confirmP, RFC 9383's order),
/// and the verifier refuses the confirmP such a prover would compute.
fn both_sides_refuse_confirmation(secret: &ProverSecret<P256Sha256>, prover_context: &Context<'_>) {
    let v = vector();
    let record = VerifierRecord::<P256Sha256>::from_bytes(&[&v.w0[..], &v.l[..]].concat()).unwrap();
    let (prover, share_p) = drawing(&v.x, |rng| Prover::start(secret, prover_context, rng));
    let (verifier, share_v) = drawing(&v.y, |rng| Verifier::start(&record, &v.context(), rng));
    let (verifier, confirm_v) = verifier.receive(&share_p).unwrap();

    let refused = prover.receive(&share_v).unwrap().finish(&confirm_v);
    assert_eq!(refused.err(), Some(Error::ConfirmationFailed), "prover");

    // The same prover again (same x), confirming first to get its confirmP.
    let (prover, _) = drawing(&v.x, |rng| Prover::start(secret, prover_context, rng));
    let (confirm_p, _) = prover.receive(&share_v).unwrap().confirm_first();
    assert_eq!(
        verifier.finish(&confirm_p).err(),
        Some(Error::ConfirmationFailed),
        "verifier"
    );
}

#[test]
fn a_wrong_password_fails_key_confirmation_on_both_sides() {
    let v = vector();
    // Another password: other w0 and w1 (the vector's own, swapped, and w0 with one bit
    // flipped, so only w0 differs, then only w1).
    let mut other_w0 = v.w0.clone();
    other_w0[31] ^= 1;
    let mut other_w1 = v.w1.clone();
    other_w1[31] ^= 1;
    for (w0, w1) in [(&v.w1, &v.w0), (&other_w0, &v.w1), (&v.w0, &other_w1)] {
        both_sides_refuse_confirmation(&secret(w0, w1), &v.context());
    }
}

#[test]
fn a_changed_context_fails_key_confirmation_on_both_sides() {
    let v = vector();
    let secret = secret(&v.w0, &v.w1);
    let mut context = v.context.clone();
    context[0] ^= 1;
    let changed = [
        // Another context string (in the fallbacks: another channel binding or session).
        Context {
            context: &context,
            ..v.context()
        },
        // Another prover or verifier identity.
        Context {
            prover_id: b"clienT",
            ..v.context()
        },
        Context {
            verifier_id: b"serveR",
            ..v.context()
        },
    ];
    for prover_context in &changed {
        both_sides_refuse_confirmation(&secret, prover_context);
    }
}
