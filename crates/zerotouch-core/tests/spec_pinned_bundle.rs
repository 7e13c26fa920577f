//! docs/PROTOCOL.md section 17 gives a pinned-key bundle as a test vector: this test builds
//! the same bundle from the keys the section names and fails if the bytes differ, or if the
//! spec's bytes do not decode to it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_core::{
    KeyMapRule, KeyRole, PinnedKeyBundle, RustCryptoProvider, SignatureAlgorithm, SigningKey,
};

/// The bundle section 17 describes: setup key = P-256 secret 0x03 * 32, revocation key =
/// Ed25519 secret 0x04 * 32, devices of type 7 with serials 1..=99 indicated to the setup key.
fn vector_bundle() -> PinnedKeyBundle {
    let setup = SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[3; 32])
        .unwrap()
        .public_key();
    let revocation = SigningKey::from_secret_bytes(SignatureAlgorithm::Ed25519, &[4; 32])
        .unwrap()
        .public_key();
    PinnedKeyBundle {
        keys: vec![
            (KeyRole::SetupSigning, setup.clone()),
            (KeyRole::RevocationVerdict, revocation),
        ],
        indications: vec![KeyMapRule {
            device_type: 7,
            first_serial: 1,
            last_serial: 99,
            key_id: setup.key_id(),
        }],
    }
}

fn spec_vector_hex() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("## 17. Pinned-key bundle").expect("section 17");
    let section = &text[start..];
    let open = section.find("```hex\n").expect("hex block") + "```hex\n".len();
    let close = section[open..].find("```").unwrap() + open;
    section[open..close].split_whitespace().collect()
}

#[test]
fn spec_vector_is_what_the_code_encodes() {
    let bytes = vector_bundle().encode(&RustCryptoProvider);
    assert_eq!(
        spec_vector_hex(),
        hex::encode(&bytes),
        "docs/PROTOCOL.md section 17's vector differs from the encoder's output"
    );
}

#[test]
fn spec_vector_decodes_to_the_described_bundle() {
    let bytes = hex::decode(spec_vector_hex()).unwrap();
    let decoded = PinnedKeyBundle::decode(&bytes, &RustCryptoProvider).unwrap();
    assert_eq!(decoded, vector_bundle());
}
