//! Device certificates made with the openssl CLI (tests/data/certs/make.sh): the key is taken
//! out, validity dates are never checked, unsupported keys are refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_core::*;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/certs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn p256_device_certificate_yields_its_key() {
    let cert = DeviceCertificate::from_der(&data("device-p256.der")).unwrap();
    let spki_key = PublicKey::from_spki_der(&data("device-p256.spki.der")).unwrap();
    assert_eq!(cert.public_key(), &spki_key);
    assert_eq!(cert.key_id(), spki_key.key_id());
    assert_eq!(
        cert.public_key().algorithm(),
        SignatureAlgorithm::EcdsaP256Sha256
    );
    assert_eq!(
        cert.public_key().to_spki_der(),
        data("device-p256.spki.der")
    );
    assert_eq!(cert.der(), data("device-p256.der"));
    assert!(!cert.serial_number().is_empty());
}

#[test]
fn ed25519_device_certificate_yields_its_key() {
    let cert = DeviceCertificate::from_der(&data("device-ed25519.der")).unwrap();
    assert_eq!(cert.public_key().algorithm(), SignatureAlgorithm::Ed25519);
    assert_eq!(
        cert.public_key().to_spki_der(),
        data("device-ed25519.spki.der")
    );
}

#[test]
fn certificate_that_never_expires_is_accepted() {
    // Both test certificates carry notAfter 99991231235959Z; nothing checks dates anyway,
    // because a device has no trustworthy clock at first boot.
    let der = data("device-p256.der");
    assert!(der.windows(15).any(|w| w == b"99991231235959Z"));
    DeviceCertificate::from_der(&der).unwrap();
}

#[test]
fn rsa_and_p384_certificates_are_refused() {
    assert_eq!(
        DeviceCertificate::from_der(&data("device-rsa.der")),
        Err(CertificateError::UnsupportedKey)
    );
    assert_eq!(
        DeviceCertificate::from_der(&data("device-p384.der")),
        Err(CertificateError::UnsupportedKey)
    );
    assert_eq!(
        PublicKey::from_spki_der(&data("device-rsa.spki.der")),
        Err(KeyError::UnsupportedAlgorithm)
    );
}

#[test]
fn malformed_certificate_is_refused() {
    let der = data("device-p256.der");
    assert_eq!(
        DeviceCertificate::from_der(&der[..der.len() - 1]),
        Err(CertificateError::MalformedDer)
    );
    assert_eq!(
        DeviceCertificate::from_der(b"not a certificate"),
        Err(CertificateError::MalformedDer)
    );
}

#[test]
fn public_key_not_on_the_curve_is_refused() {
    let mut spki = data("device-p256.spki.der");
    let last = spki.len() - 1;
    spki[last] ^= 1;
    assert_eq!(
        PublicKey::from_spki_der(&spki),
        Err(KeyError::MalformedPublicKey)
    );
}
