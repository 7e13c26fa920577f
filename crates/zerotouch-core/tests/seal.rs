//! HPKE sealing: the two suites against RFC 9180's published vectors, then the rules the
//! protocol relies on (order, transcript binding, wrong keys, tampering).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::{CipherSuite, SealError, SessionKeyPair, seal_to};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// RFC 9180 appendix A.2.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, base
/// mode), setup values and the encryption with sequence number 0.
mod a2 {
    pub const IKM_E: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
    pub const SK_RM: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
    pub const PK_RM: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
    pub const ENC: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
    pub const CT0: &str = "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28";
}

/// RFC 9180 appendix A.5.1 (DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, base
/// mode), setup values, the encryption with sequence number 0 and the three exported values.
mod a5 {
    pub const IKM_E: &str = "f1f1a3bc95416871539ecb51c3a8f0cf608afb40fbbe305c0a72819d35c33f1f";
    pub const IKM_R: &str = "61092f3f56994dd424405899154a9918353e3e008171517ad576b900ddb275e7";
    pub const SK_RM: &str = "a4d1c55836aa30f9b3fbb6ac98d338c877c2867dd3a77396d13f68d3ab150d3b";
    pub const PK_RM: &str = "04a697bffde9405c992883c5c439d6cc358170b51af72812333b015621dc0f40bad9bb726f68a5c013806a790ec716ab8669f84f6b694596c2987cf35baba2a006";
    pub const ENC: &str = "04c07836a0206e04e31d8ae99bfd549380b072a1b1b82e563c935c095827824fc1559eac6fb9e3c70cd3193968994e7fe9781aa103f5b50e934b5b2f387e381291";
    pub const CT0: &str = "6469c41c5c81d3aa85432531ecf6460ec945bde1eb428cb2fedf7a29f5a685b4ccb0d057f03ea2952a27bb458b";
    pub const EXPORTS: [(&str, &str); 3] = [
        (
            "",
            "9b13c510416ac977b553bf1741018809c246a695f45eff6d3b0356dbefe1e660",
        ),
        (
            "00",
            "6c8b7be3a20a5684edecb4253619d9051ce8583baf850e0cb53c402bdcaf8ebb",
        ),
        (
            "54657374436f6e74657874",
            "477a50d804c7c51941f69b8e32fe8288386ee1a84905fe4938d58972f24ac938",
        ),
    ];
}

/// "Ode on a Grecian Urn", the RFC's info string.
const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
/// "Beauty is truth, truth beauty", the RFC's plaintext.
const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
/// "Count-0", the associated data of sequence number 0.
const AAD0: &str = "436f756e742d30";

const X25519: CipherSuite = CipherSuite::X25519_SHA256_CHACHA20POLY1305;
const P256: CipherSuite = CipherSuite::P256_SHA256_CHACHA20POLY1305;

#[test]
fn rfc9180_a2_x25519_vector_opens_and_derives() {
    let recipient = SessionKeyPair::from_private_bytes(X25519, &h(a2::SK_RM)).unwrap();
    assert_eq!(recipient.public_key(), h(a2::PK_RM));
    let opened = recipient
        .open(&h(a2::ENC), &h(INFO), &h(AAD0), &[&h(a2::CT0)])
        .unwrap();
    assert_eq!(opened[0].as_slice(), h(PT));
    // The sender's ephemeral key: DeriveKeyPair(ikmE) gives the published enc.
    let ephemeral = SessionKeyPair::derive(X25519, &h(a2::IKM_E)).unwrap();
    assert_eq!(ephemeral.public_key(), h(a2::ENC));
}

#[test]
fn rfc9180_a5_p256_vector_opens_derives_and_exports() {
    let recipient = SessionKeyPair::derive(P256, &h(a5::IKM_R)).unwrap();
    assert_eq!(recipient.private_bytes().as_slice(), h(a5::SK_RM));
    assert_eq!(recipient.public_key(), h(a5::PK_RM));
    let opened = recipient
        .open(&h(a5::ENC), &h(INFO), &h(AAD0), &[&h(a5::CT0)])
        .unwrap();
    assert_eq!(opened[0].as_slice(), h(PT));
    for (ctx, value) in a5::EXPORTS {
        let mut out = [0u8; 32];
        recipient
            .export(&h(a5::ENC), &h(INFO), &h(ctx), &mut out)
            .unwrap();
        assert_eq!(out.to_vec(), h(value), "exporter context {ctx:?}");
    }
    let ephemeral = SessionKeyPair::derive(P256, &h(a5::IKM_E)).unwrap();
    assert_eq!(ephemeral.public_key(), h(a5::ENC));
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([7; 32])
}

fn each_suite(f: impl Fn(CipherSuite)) {
    for suite in [X25519, P256] {
        f(suite);
    }
}

#[test]
fn sealed_messages_open_in_the_order_sealed() {
    each_suite(|suite| {
        let device = SessionKeyPair::generate(suite, &mut rng()).unwrap();
        let msgs: [&[u8]; 3] = [b"home-5g passphrase", b"home-2g passphrase", b""];
        let sealed = seal_to(
            suite,
            device.public_key(),
            b"info",
            b"th",
            &msgs,
            &mut rng(),
        )
        .unwrap();
        let cts: Vec<&[u8]> = sealed.ciphertexts.iter().map(Vec::as_slice).collect();
        let opened = device
            .open(&sealed.encapsulated_key, b"info", b"th", &cts)
            .unwrap();
        assert_eq!(
            opened.iter().map(|m| m.to_vec()).collect::<Vec<_>>(),
            msgs.map(<[u8]>::to_vec)
        );
    });
}

#[test]
fn reordered_or_dropped_ciphertexts_do_not_open() {
    each_suite(|suite| {
        let device = SessionKeyPair::generate(suite, &mut rng()).unwrap();
        let sealed = seal_to(
            suite,
            device.public_key(),
            b"i",
            b"th",
            &[b"one", b"two"],
            &mut rng(),
        )
        .unwrap();
        let [a, b] = [&sealed.ciphertexts[0][..], &sealed.ciphertexts[1][..]];
        let enc = &sealed.encapsulated_key;
        assert_eq!(
            device.open(enc, b"i", b"th", &[b, a]),
            Err(SealError::OpenFailed)
        );
        assert_eq!(
            device.open(enc, b"i", b"th", &[b]),
            Err(SealError::OpenFailed),
            "first dropped"
        );
    });
}

#[test]
fn sealed_value_does_not_open_under_another_transcript() {
    each_suite(|suite| {
        let device = SessionKeyPair::generate(suite, &mut rng()).unwrap();
        let sealed = seal_to(
            suite,
            device.public_key(),
            b"i",
            b"transcript A",
            &[b"secret"],
            &mut rng(),
        )
        .unwrap();
        let ct = &sealed.ciphertexts[0][..];
        assert_eq!(
            device.open(&sealed.encapsulated_key, b"i", b"transcript B", &[ct]),
            Err(SealError::OpenFailed)
        );
        assert_eq!(
            device.open(&sealed.encapsulated_key, b"j", b"transcript A", &[ct]),
            Err(SealError::OpenFailed)
        );
    });
}

#[test]
fn sealed_value_does_not_open_with_another_key() {
    each_suite(|suite| {
        let device = SessionKeyPair::generate(suite, &mut rng()).unwrap();
        let other = SessionKeyPair::generate(suite, &mut ChaCha20Rng::from_seed([8; 32])).unwrap();
        let sealed = seal_to(
            suite,
            device.public_key(),
            b"i",
            b"th",
            &[b"secret"],
            &mut rng(),
        )
        .unwrap();
        assert_eq!(
            other.open(
                &sealed.encapsulated_key,
                b"i",
                b"th",
                &[&sealed.ciphertexts[0]]
            ),
            Err(SealError::OpenFailed)
        );
    });
}

#[test]
fn every_flipped_bit_of_a_sealed_value_is_detected() {
    each_suite(|suite| {
        let device = SessionKeyPair::generate(suite, &mut rng()).unwrap();
        let sealed = seal_to(
            suite,
            device.public_key(),
            b"i",
            b"th",
            &[b"secret"],
            &mut rng(),
        )
        .unwrap();
        for i in 0..sealed.ciphertexts[0].len() * 8 {
            let mut ct = sealed.ciphertexts[0].clone();
            ct[i / 8] ^= 1 << (i % 8);
            assert!(
                device
                    .open(&sealed.encapsulated_key, b"i", b"th", &[&ct])
                    .is_err(),
                "bit {i}"
            );
        }
        for i in 0..sealed.encapsulated_key.len() * 8 {
            let mut enc = sealed.encapsulated_key.clone();
            enc[i / 8] ^= 1 << (i % 8);
            assert!(
                device
                    .open(&enc, b"i", b"th", &[&sealed.ciphertexts[0]])
                    .is_err(),
                "enc bit {i}"
            );
        }
    });
}

#[test]
fn private_key_round_trips_through_its_bytes() {
    each_suite(|suite| {
        let key = SessionKeyPair::generate(suite, &mut rng()).unwrap();
        let again = SessionKeyPair::from_private_bytes(suite, &key.private_bytes()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let sealed = seal_to(suite, key.public_key(), b"i", b"th", &[b"x"], &mut rng()).unwrap();
        assert!(
            again
                .open(
                    &sealed.encapsulated_key,
                    b"i",
                    b"th",
                    &[&sealed.ciphertexts[0]]
                )
                .is_ok()
        );
    });
}

#[test]
fn invalid_keys_are_refused_with_typed_errors() {
    assert_eq!(
        seal_to(P256, &[4u8; 65], b"i", b"th", &[b"x"], &mut rng()).unwrap_err(),
        SealError::InvalidPublicKey
    );
    assert_eq!(
        seal_to(P256, &[], b"i", b"th", &[b"x"], &mut rng()).unwrap_err(),
        SealError::InvalidPublicKey
    );
    assert_eq!(
        SessionKeyPair::from_private_bytes(P256, &[0u8; 32]).unwrap_err(),
        SealError::InvalidPrivateKey
    );
    assert_eq!(
        SessionKeyPair::from_private_bytes(X25519, &[1u8; 31]).unwrap_err(),
        SealError::InvalidPrivateKey
    );
    let device = SessionKeyPair::generate(P256, &mut rng()).unwrap();
    assert_eq!(
        device.open(&[1, 2, 3], b"i", b"th", &[b"x"]).unwrap_err(),
        SealError::InvalidPublicKey
    );
}

#[test]
fn unknown_suite_is_refused() {
    let aes = CipherSuite {
        kem: 0x0010,
        kdf: 0x0001,
        aead: 0x0001,
    };
    assert_eq!(
        SessionKeyPair::generate(aes, &mut rng()).unwrap_err(),
        SealError::UnsupportedSuite
    );
    assert_eq!(
        seal_to(aes, &[0; 65], b"i", b"a", &[b"x"], &mut rng()).unwrap_err(),
        SealError::UnsupportedSuite
    );
}

#[test]
fn debug_shows_no_private_key() {
    let key = SessionKeyPair::derive(P256, &h(a5::IKM_R)).unwrap();
    let dbg = format!("{key:?}");
    assert!(!dbg.to_lowercase().contains(&a5::SK_RM[..16]), "{dbg}");
}
