//! Known-answer tests: RFC 8032 (Ed25519), RFC 6979 A.2.5 (deterministic ECDSA P-256) and a
//! Project Wycheproof subset of P-256 verification cases a verifier must reject. The vectors are
//! data files under tests/data/kat, with their sources in SOURCES.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
use common::PROVIDER;
use serde_json::Value;
use zerotouch_core::*;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/kat/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hexv(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn ed25519_matches_rfc8032_vectors() {
    let data = load("ed25519_rfc8032.json");
    let vectors = data["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    for v in vectors {
        let secret: [u8; 32] = hexv(&v["secret_key"]).try_into().unwrap();
        let key = SigningKey::from_secret_bytes(SignatureAlgorithm::Ed25519, &secret).unwrap();
        let public = key.public_key();
        assert_eq!(public.raw_bytes(), hexv(&v["public_key"]), "{}", v["name"]);
        let tbs = ToBeSigned::new(hexv(&v["message"]), &PROVIDER);
        let sig = key.sign(&tbs).unwrap();
        assert_eq!(sig.bytes.to_vec(), hexv(&v["signature"]), "{}", v["name"]);
        PROVIDER.verify_signature(&public, &tbs, &sig).unwrap();
        let mut bad = sig;
        bad.bytes[0] ^= 1;
        assert!(PROVIDER.verify_signature(&public, &tbs, &bad).is_err());
    }
}

#[test]
fn ecdsa_p256_matches_rfc6979_vectors() {
    let data = load("p256_rfc6979.json");
    let secret: [u8; 32] = hexv(&data["private_key"]).try_into().unwrap();
    let key = SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &secret).unwrap();
    let PublicKey::P256(point) = key.public_key() else {
        panic!()
    };
    assert_eq!(point[1..33].to_vec(), hexv(&data["public_x"]));
    assert_eq!(point[33..].to_vec(), hexv(&data["public_y"]));
    let vectors = data["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    for v in vectors {
        let tbs = ToBeSigned::new(
            v["message_utf8"].as_str().unwrap().as_bytes().to_vec(),
            &PROVIDER,
        );
        let sig = key.sign(&tbs).unwrap();
        let mut expected = hexv(&v["r"]);
        expected.extend(hexv(&v["s"]));
        assert_eq!(sig.bytes.to_vec(), expected, "{}", v["message_utf8"]);
        PROVIDER
            .verify_signature(&key.public_key(), &tbs, &sig)
            .unwrap();
    }
}

#[test]
fn ecdsa_p256_verification_matches_wycheproof() {
    let data = load("p256_ecdsa_verify_wycheproof.json");
    assert_eq!(data["signature_format"], "p1363");
    let (mut valid, mut invalid) = (0, 0);
    for group in data["groups"].as_array().unwrap() {
        let key = PublicKey::p256_sec1(&hexv(&group["public_key_uncompressed"])).unwrap();
        for t in group["tests"].as_array().unwrap() {
            let tbs = ToBeSigned::new(hexv(&t["msg"]), &PROVIDER);
            let outcome =
                Signature::from_slice(SignatureAlgorithm::EcdsaP256Sha256, &hexv(&t["sig"]))
                    .and_then(|sig| PROVIDER.verify_signature(&key, &tbs, &sig));
            match t["result"].as_str().unwrap() {
                "valid" => {
                    valid += 1;
                    assert!(
                        outcome.is_ok(),
                        "tc {} ({}) should verify",
                        t["tc_id"],
                        t["comment"]
                    );
                }
                "invalid" => {
                    invalid += 1;
                    assert!(
                        outcome.is_err(),
                        "tc {} ({}) must be rejected",
                        t["tc_id"],
                        t["comment"]
                    );
                }
                other => panic!("unexpected result {other}"),
            }
        }
    }
    assert!(valid > 0 && invalid > 0);
}
