//! What the envelope, COSE and transcript add on top of the bare signature operations.
//!
//! For each algorithm it times, in one run: the bare verification of a signature over the same
//! Sig_structure (the reference), and `Envelope::decode` + `SignedBody::verify` of the whole
//! message; likewise bare signing against `sign_message` + `encode`. It prints each figure and
//! the ratio to the reference. Run: `cargo bench -p zerotouch-benches --bench core_overhead`.

// A bench that hits an error has nothing to measure: stopping there is right.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use zerotouch_benches::time_per_op;
use zerotouch_core::*;

fn main() {
    let p = RustCryptoProvider;
    let session_id = SessionId([7; 16]);
    let mut t = Transcript::new(&p, Flow::ServerSetup, Transport::Dns, &session_id);
    t.device_nonce(&p, &Nonce([1; 16]));
    let th = t.hash();
    let header = Header {
        version: ProtocolVersion::V1,
        flow: Flow::ServerSetup,
        tag: MessageTag::ServerProof,
        session_id,
        seq: 0,
    };
    let payload = vec![0x42u8; 300];
    println!(
        "{:<10} {:>14} {:>14} {:>7} | {:>14} {:>14} {:>7}",
        "algorithm",
        "bare verify us",
        "msg verify us",
        "ratio",
        "bare sign us",
        "msg sign us",
        "ratio"
    );
    for alg in [
        SignatureAlgorithm::Ed25519,
        SignatureAlgorithm::EcdsaP256Sha256,
    ] {
        let signer =
            SoftwareSigner::new(SigningKey::from_secret_bytes(alg, &[9; 32]).expect("fixed key"));
        let env = sign_message(
            header,
            KeyRole::SetupSigning,
            &th,
            payload.clone(),
            &signer,
            &p,
        )
        .expect("sign");
        let wire = env.encode();
        let pending = PendingSignature::new(
            header,
            KeyRole::SetupSigning,
            &th,
            payload.clone(),
            signer.key_id(),
            alg,
            &p,
        )
        .expect("pending");
        let tbs = pending.request().tbs.clone();
        let sig = signer.sign(&tbs).expect("sign");
        let iters = 2000;
        let bare_verify = time_per_op(iters, || {
            black_box(p.verify_signature(signer.public_key(), black_box(&tbs), &sig))
                .expect("verify");
        });
        let msg_verify = time_per_op(iters, || {
            let env = Envelope::decode(black_box(&wire)).expect("decode");
            if let Body::Signed(b) = &env.body {
                black_box(b.verify(
                    &env.header,
                    KeyRole::SetupSigning,
                    &th,
                    signer.public_key(),
                    &p,
                ))
                .expect("verify");
            }
        });
        let bare_sign = time_per_op(iters, || {
            black_box(signer.sign(black_box(&tbs))).expect("sign");
        });
        let msg_sign = time_per_op(iters, || {
            let env = sign_message(
                header,
                KeyRole::SetupSigning,
                &th,
                payload.clone(),
                &signer,
                &p,
            )
            .expect("sign");
            black_box(env.encode());
        });
        println!(
            "{:<10} {:>14.1} {:>14.1} {:>7.3} | {:>14.1} {:>14.1} {:>7.3}",
            format!("{alg:?}").chars().take(10).collect::<String>(),
            bare_verify,
            msg_verify,
            msg_verify / bare_verify,
            bare_sign,
            msg_sign,
            msg_sign / bare_sign
        );
    }
}
