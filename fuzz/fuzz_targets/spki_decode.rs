//! `PublicKey::from_spki_der` on arbitrary bytes: never panics, and to_spki_der → from_spki_der
//! round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_core::{PublicKey, SignatureAlgorithm};

fuzz_target!(|data: &[u8]| {
    let Ok(first) = PublicKey::from_spki_der(data) else {
        return;
    };
    let der1 = first.to_spki_der();
    let second = match PublicKey::from_spki_der(&der1) {
        Ok(k) => k,
        Err(e) => panic!("re-encoded SPKI does not parse: {e:?}: {der1:02x?}"),
    };
    assert_eq!(first, second, "SPKI round trip changed the key");
    assert_eq!(der1, second.to_spki_der(), "encoding not stable");
    assert_eq!(first.key_id(), second.key_id());
    match first.algorithm() {
        // RFC 8410: one DER encoding per Ed25519 key, so what was accepted is that encoding.
        SignatureAlgorithm::Ed25519 => {
            assert_eq!(first.raw_bytes().len(), 32);
            assert_eq!(der1, data, "accepted a second encoding of an Ed25519 SPKI");
        }
        // P-256 may arrive compressed; stored and re-encoded uncompressed.
        SignatureAlgorithm::EcdsaP256Sha256 => {
            assert_eq!(first.raw_bytes().len(), 65);
            assert_eq!(first.raw_bytes()[0], 0x04);
        }
    }
});
