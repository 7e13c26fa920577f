//! Signed envelopes verified with `InsecureFuzzingProvider`, which accepts every signature: the
//! fuzzer gets past signatures, but never past the key-id, algorithm, key-role and
//! tag-to-role checks.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use zerotouch_core::{
    Body, Envelope, InsecureFuzzingProvider, KeyRole, PinnedKey, PinnedKeys, PublicKey,
    RustCryptoProvider, SignatureError,
};
use zerotouch_fuzz::{FUZZ_TH, contains_slice, fixed_public_keys};

struct Fixture {
    /// Ed25519, then P-256.
    keys: [PublicKey; 2],
    /// Ed25519 pinned for setup, P-256 for association.
    pinned: PinnedKeys,
    /// Both pinned for setup, P-256 indicated and Ed25519 dropped: only P-256 is trusted.
    pinned_indicated: PinnedKeys,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let [ed, p] = fixed_public_keys();
    let pinned = PinnedKeys::new(vec![
        PinnedKey::new(KeyRole::SetupSigning, ed.clone()),
        PinnedKey::new(KeyRole::Association, p.clone()),
    ]);
    let mut pinned_indicated = PinnedKeys::new(vec![
        PinnedKey::new(KeyRole::SetupSigning, ed.clone()),
        PinnedKey::new(KeyRole::SetupSigning, p.clone()),
    ]);
    if let Err(e) = pinned_indicated.indicate(p.key_id()) {
        panic!("indicate: {e:?}");
    }
    pinned_indicated.drop_key(ed.key_id());
    Fixture {
        keys: [ed, p],
        pinned,
        pinned_indicated,
    }
});

fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::decode(data) else {
        return;
    };
    let Body::Signed(body) = &env.body else {
        return;
    };
    let f = &*FIXTURE;
    let insecure = InsecureFuzzingProvider;
    let wire = env.encode();
    let kid = *body.key_id();

    for key in &f.keys {
        let kid_matches = key.key_id() == kid;
        for role in KeyRole::ALL {
            let r = body.verify(&env.header, role, &FUZZ_TH, key, &insecure);
            if !kid_matches {
                assert_eq!(
                    r,
                    Err(SignatureError::KeyIdMismatch),
                    "accepted under another key id"
                );
            } else if key.algorithm() != body.algorithm() {
                assert_eq!(
                    r,
                    Err(SignatureError::AlgorithmMismatch),
                    "accepted another algorithm"
                );
            } else if env.header.tag.signer_role() != Some(role) {
                assert_eq!(
                    r,
                    Err(SignatureError::RoleNotForTag),
                    "accepted in a role that does not sign this tag"
                );
            } else {
                let payload = match r {
                    Ok(p) => p,
                    Err(e) => panic!("insecure provider refused a matching key: {e:?}"),
                };
                assert!(
                    contains_slice(&wire, payload),
                    "payload is not the envelope's"
                );
            }
        }
        // The real provider on whatever signature bytes the fuzzer made: no panic, and it never
        // accepts what the algorithm check refuses. Once per key (a real verification costs as
        // much as thousands of decodes; the role only changes the signed bytes).
        if kid_matches {
            let role = env
                .header
                .tag
                .signer_role()
                .unwrap_or(KeyRole::SetupSigning);
            let real = body.verify(&env.header, role, &FUZZ_TH, key, &RustCryptoProvider);
            if real.is_ok() {
                assert_eq!(key.algorithm(), body.algorithm());
            }
        }
    }

    let [ed, p] = &f.keys;
    let alg_ok = |k: &PublicKey| k.key_id() == kid && k.algorithm() == body.algorithm();
    for role in KeyRole::ALL {
        let r = body.verify_trusted(&env.header, role, &FUZZ_TH, &f.pinned, &insecure);
        let trusted = (role == KeyRole::SetupSigning && ed.key_id() == kid)
            || (role == KeyRole::Association && p.key_id() == kid);
        if !trusted {
            assert_eq!(
                r,
                Err(SignatureError::UnknownKey),
                "trusted a key outside its role"
            );
        } else {
            let role_ok = env.header.tag.signer_role() == Some(role);
            let expected_ok = role_ok && (alg_ok(ed) || alg_ok(p));
            assert_eq!(r.is_ok(), expected_ok, "verify_trusted: {r:?}");
        }

        let r = body.verify_trusted(&env.header, role, &FUZZ_TH, &f.pinned_indicated, &insecure);
        if role == KeyRole::SetupSigning && p.key_id() == kid {
            let role_ok = env.header.tag.signer_role() == Some(role);
            assert_eq!(
                r.is_ok(),
                role_ok && alg_ok(p),
                "verify_trusted (indicated): {r:?}"
            );
        } else {
            assert_eq!(
                r,
                Err(SignatureError::UnknownKey),
                "trusted a dropped, unindicated or wrong-role key"
            );
        }
    }
});
