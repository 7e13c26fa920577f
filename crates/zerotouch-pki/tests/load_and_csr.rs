//! Loading a CA from PEM files, and device certificates issued from PKCS#10 signing requests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use x509_parser::prelude::{FromDer, X509Certificate};
use zerotouch_core::{PublicKey, SignatureAlgorithm};
use zerotouch_pki::{CertificateAuthority, PkiError, Validity, csr_public_key};

const ALGORITHMS: [SignatureAlgorithm; 2] = [
    SignatureAlgorithm::EcdsaP256Sha256,
    SignatureAlgorithm::Ed25519,
];

fn ca(name: &str, algorithm: SignatureAlgorithm) -> CertificateAuthority {
    CertificateAuthority::new(name, algorithm, Validity::years_from_now(20)).unwrap()
}

fn rcgen_alg(algorithm: SignatureAlgorithm) -> &'static rcgen::SignatureAlgorithm {
    match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        SignatureAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

/// Checks `device_der` is a device certificate for `key` (type 7, serial 1001), signed by `ca`.
fn assert_device_certificate(ca: &CertificateAuthority, device_der: &[u8], key: &[u8]) {
    let (_, cert) = X509Certificate::from_der(device_der).unwrap();
    let (_, ca_cert) = X509Certificate::from_der(ca.certificate_der()).unwrap();
    cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    assert_eq!(cert.issuer(), ca_cert.subject());
    let certified = PublicKey::from_spki_der(cert.public_key().raw).unwrap();
    assert_eq!(certified.raw_bytes(), key);
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "7-1001");
    assert_eq!(cert.validity().not_after.to_datetime().year(), 9999);
}

#[test]
fn ca_saved_as_pem_loads_and_issues_verifiable_device_certificates() {
    for algorithm in ALGORITHMS {
        let ca = ca("Acme devices", algorithm);
        let (cert_pem, key_pem) = ca.to_pem();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let loaded = CertificateAuthority::from_pem(&cert_pem, &key_pem).unwrap();
        assert_eq!(loaded.algorithm(), algorithm);
        assert_eq!(loaded.certificate_der(), ca.certificate_der());
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let device_key = PublicKey::ed25519(key.public_key_raw().try_into().unwrap()).unwrap();
        let der = loaded.issue_device(&device_key, 7, 1001).unwrap();
        assert_device_certificate(&ca, &der, key.public_key_raw());
    }
}

#[test]
fn ca_key_that_the_certificate_does_not_certify_is_refused() {
    let a = ca("A", SignatureAlgorithm::EcdsaP256Sha256);
    let b = ca("B", SignatureAlgorithm::EcdsaP256Sha256);
    let (a_cert, _) = a.to_pem();
    let (_, b_key) = b.to_pem();
    let err = CertificateAuthority::from_pem(&a_cert, &b_key).unwrap_err();
    assert!(matches!(err, PkiError::CaCertificate(_)), "{err}");
}

#[test]
fn leaf_certificate_is_refused_as_a_ca() {
    let ca = ca("A", SignatureAlgorithm::EcdsaP256Sha256);
    let server = ca
        .issue_server(&["setup.example"], Validity::years_from_now(1))
        .unwrap();
    let err = CertificateAuthority::from_pem(&server.certificate_pem(), &server.private_key_pem())
        .unwrap_err();
    assert!(matches!(err, PkiError::CaCertificate(_)), "{err}");
}

#[test]
fn ca_with_a_p384_key_is_refused() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let cert = params.self_signed(&key).unwrap();
    let err = CertificateAuthority::from_pem(&cert.pem(), &key.serialize_pem()).unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedKeyAlgorithm(_)), "{err}");
}

#[test]
fn garbage_pem_is_refused() {
    let err = CertificateAuthority::from_pem("not pem", "not pem either").unwrap_err();
    assert!(matches!(err, PkiError::PrivateKey(_)), "{err}");
}

fn csr_for(key: &KeyPair) -> rcgen::CertificateSigningRequest {
    CertificateParams::new(vec!["ignored.example".to_string()])
        .unwrap()
        .serialize_request(key)
        .unwrap()
}

#[test]
fn csr_der_and_pem_get_a_device_certificate_for_their_key() {
    let ca = ca("Acme devices", SignatureAlgorithm::EcdsaP256Sha256);
    for algorithm in ALGORITHMS {
        let key = KeyPair::generate_for(rcgen_alg(algorithm)).unwrap();
        let csr = csr_for(&key);
        let from_der = ca.issue_device_from_csr(csr.der(), 7, 1001).unwrap();
        assert_device_certificate(&ca, &from_der, key.public_key_raw());
        let pem = csr.pem().unwrap();
        let from_pem = ca.issue_device_from_csr(pem.as_bytes(), 7, 1001).unwrap();
        assert_device_certificate(&ca, &from_pem, key.public_key_raw());
        assert_eq!(
            csr_public_key(csr.der()).unwrap().algorithm(),
            algorithm,
            "the request's key keeps its algorithm"
        );
    }
}

#[test]
fn csr_whose_signature_does_not_verify_is_refused() {
    let ca = ca("Acme devices", SignatureAlgorithm::Ed25519);
    for algorithm in ALGORITHMS {
        let key = KeyPair::generate_for(rcgen_alg(algorithm)).unwrap();
        let mut der = csr_for(&key).der().to_vec();
        // The signature is the last field: flip a bit of its last byte.
        *der.last_mut().unwrap() ^= 0x01;
        let err = ca.issue_device_from_csr(&der, 7, 1001).unwrap_err();
        assert!(matches!(err, PkiError::SigningRequestSignature), "{err}");

        // A request whose key was swapped for another one of the same algorithm: the
        // signature was made by a key the request no longer names.
        let other = KeyPair::generate_for(rcgen_alg(algorithm)).unwrap();
        let mut swapped = csr_for(&key).der().to_vec();
        let (old, new) = (key.public_key_raw(), other.public_key_raw());
        let at = swapped
            .windows(old.len())
            .position(|w| w == old)
            .expect("the key is in the request");
        swapped[at..at + new.len()].copy_from_slice(new);
        let err = ca.issue_device_from_csr(&swapped, 7, 1001).unwrap_err();
        assert!(matches!(err, PkiError::SigningRequestSignature), "{err}");
    }
}

#[test]
fn csr_with_a_p384_key_is_refused() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let err = csr_public_key(csr_for(&key).der()).unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedKeyAlgorithm(_)), "{err}");
}

#[test]
fn malformed_csrs_are_refused() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let der = csr_for(&key).der().to_vec();
    let mut trailing = der.clone();
    trailing.push(0);
    let cert_pem = pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()));
    for bad in [
        &b""[..],
        b"garbage",
        &der[..der.len() / 2],
        &trailing,
        cert_pem.as_bytes(),
        b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n",
    ] {
        let err = csr_public_key(bad).unwrap_err();
        assert!(matches!(err, PkiError::MalformedSigningRequest(_)), "{err}");
    }
}
