//! Making a batch: generated keys and signing requests, certificates, PINs, secrets, labels,
//! QR codes and key files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rcgen::{CertificateParams, KeyPair};
use zerotouch_core::{BarcodePayload, DeviceCertificate, SignatureAlgorithm};
use zerotouch_factory::{BatchSpec, FactoryError, KeySource, make_batch};
use zerotouch_pki::{CertificateAuthority, PkiError, Validity};
use zerotouch_store::MIN_PIN_ITERATIONS;

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([42; 32])
}

fn ca() -> CertificateAuthority {
    CertificateAuthority::new(
        "Acme devices",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(20),
    )
    .unwrap()
}

fn spec(count: u32, algorithm: SignatureAlgorithm) -> BatchSpec {
    BatchSpec {
        device_type: 7,
        first_serial: 1001,
        count,
        product_number: "SMARTPLUG01".into(),
        algorithm,
        pin_digits: Some(6),
        device_secrets: true,
        pin_iterations: MIN_PIN_ITERATIONS,
    }
}

fn rcgen_alg(algorithm: SignatureAlgorithm) -> &'static rcgen::SignatureAlgorithm {
    match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        SignatureAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

fn one_p256_device() -> zerotouch_factory::FactoryBatch {
    make_batch(
        &spec(1, SignatureAlgorithm::EcdsaP256Sha256),
        KeySource::Generate,
        &ca(),
        &mut rng(),
    )
    .unwrap()
}

fn csr(key: &KeyPair) -> Vec<u8> {
    CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(key)
        .unwrap()
        .der()
        .to_vec()
}

#[test]
fn generated_batch_has_one_certified_key_pin_secret_and_label_per_serial() {
    for algorithm in [
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::Ed25519,
    ] {
        let batch =
            make_batch(&spec(3, algorithm), KeySource::Generate, &ca(), &mut rng()).unwrap();
        assert_eq!(batch.devices.len(), 3);
        for (i, device) in batch.devices.iter().enumerate() {
            assert_eq!(device.serial, 1001 + i as u64);
            let cert = DeviceCertificate::from_der(&device.certificate_der).unwrap();
            assert_eq!(cert.key_id(), device.key_id);
            let key = device.private_key.as_ref().unwrap();
            assert_eq!(key.public_key().key_id(), device.key_id);
            assert_eq!(key.algorithm(), algorithm);
            let pin = device.pin.as_ref().unwrap();
            assert_eq!(pin.expose_secret().len(), 6);
            assert!(device.pin_record().unwrap().verify(pin));
            assert!(device.device_secret.is_some());
            // The box label: no PIN; it scans back to this device.
            let scanned = BarcodePayload::decode(&device.label.encode()).unwrap();
            assert!(scanned.pin.is_none());
            assert!(scanned.fingerprint.matches(&device.key_id));
            assert_eq!(scanned.device_type, 7);
            assert_eq!(scanned.product_number, "SMARTPLUG01");
            // The in-box label carries the PIN.
            let inside = BarcodePayload::decode(&device.in_box_label().unwrap().encode()).unwrap();
            assert_eq!(inside.pin.as_ref(), Some(pin));
        }
        assert_ne!(batch.devices[0].key_id, batch.devices[1].key_id);
        assert_ne!(
            batch.devices[0].device_secret,
            batch.devices[1].device_secret
        );
    }
}

#[test]
fn batch_without_pins_or_secrets_has_none() {
    let mut s = spec(1, SignatureAlgorithm::Ed25519);
    s.pin_digits = None;
    s.device_secrets = false;
    let batch = make_batch(&s, KeySource::Generate, &ca(), &mut rng()).unwrap();
    let device = &batch.devices[0];
    assert!(device.pin.is_none() && device.pin_record().is_none());
    assert!(device.device_secret.is_none());
    assert!(device.in_box_label().is_none() && device.in_box_qr_png().is_none());
}

#[test]
fn csr_batch_issues_certificates_for_the_requested_keys() {
    for algorithm in [
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::Ed25519,
    ] {
        let keys: Vec<KeyPair> = (0..3)
            .map(|_| KeyPair::generate_for(rcgen_alg(algorithm)).unwrap())
            .collect();
        let requests = keys.iter().map(csr).collect();
        let batch = make_batch(
            &spec(3, algorithm),
            KeySource::SigningRequests(requests),
            &ca(),
            &mut rng(),
        )
        .unwrap();
        for (device, key) in batch.devices.iter().zip(&keys) {
            let cert = DeviceCertificate::from_der(&device.certificate_der).unwrap();
            assert_eq!(cert.public_key().raw_bytes(), key.public_key_raw());
            assert_eq!(cert.key_id(), device.key_id);
            // The device holds the key: the factory has none to flash or write.
            assert!(device.private_key.is_none());
            assert!(device.private_key_pem().is_none());
        }
    }
}

#[test]
fn csr_batch_refuses_a_bad_request_a_wrong_algorithm_a_repeated_key_and_a_wrong_count() {
    let p256 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let s = spec(2, SignatureAlgorithm::EcdsaP256Sha256);
    let run = |requests: Vec<Vec<u8>>| {
        make_batch(&s, KeySource::SigningRequests(requests), &ca(), &mut rng()).unwrap_err()
    };

    let mut forged = csr(&other);
    *forged.last_mut().unwrap() ^= 1;
    let err = run(vec![csr(&p256), forged]);
    assert!(
        matches!(
            err,
            FactoryError::SigningRequest {
                index: 1,
                source: PkiError::SigningRequestSignature
            }
        ),
        "{err}"
    );
    let err = run(vec![csr(&ed), csr(&p256)]);
    assert!(
        matches!(err, FactoryError::SigningRequestAlgorithm { index: 0, .. }),
        "{err}"
    );
    let err = run(vec![csr(&p256), csr(&p256)]);
    assert!(
        matches!(err, FactoryError::DuplicateDevice { index: 1 }),
        "{err}"
    );
    let err = run(vec![csr(&p256)]);
    assert!(
        matches!(
            err,
            FactoryError::SigningRequestCount {
                expected: 2,
                found: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn specs_that_cannot_be_made_are_refused() {
    let base = spec(1, SignatureAlgorithm::Ed25519);
    let cases: Vec<(&str, BatchSpec)> = vec![
        (
            "no devices",
            BatchSpec {
                count: 0,
                ..base.clone()
            },
        ),
        (
            "too many devices",
            BatchSpec {
                count: 100_001,
                ..base.clone()
            },
        ),
        (
            "serials overflow",
            BatchSpec {
                first_serial: u64::MAX,
                count: 2,
                ..base.clone()
            },
        ),
        (
            "5-digit PIN",
            BatchSpec {
                pin_digits: Some(5),
                ..base.clone()
            },
        ),
        (
            "13-digit PIN",
            BatchSpec {
                pin_digits: Some(13),
                ..base.clone()
            },
        ),
        (
            "weak PIN hash",
            BatchSpec {
                pin_iterations: MIN_PIN_ITERATIONS - 1,
                ..base.clone()
            },
        ),
    ];
    for (what, s) in cases {
        let err = make_batch(&s, KeySource::Generate, &ca(), &mut rng()).unwrap_err();
        assert!(
            matches!(err, FactoryError::InvalidBatch(_)),
            "{what}: {err}"
        );
    }
    for product in ["", "smartplug", "SMART-PLUG", "A123456789012345678901234"] {
        let s = BatchSpec {
            product_number: product.into(),
            ..base.clone()
        };
        let err = make_batch(&s, KeySource::Generate, &ca(), &mut rng()).unwrap_err();
        assert!(matches!(err, FactoryError::Label(_)), "{product:?}: {err}");
    }
}

#[test]
fn qr_png_decodes_to_the_label() {
    let batch = one_p256_device();
    let device = &batch.devices[0];
    for (png, expected) in [
        (device.qr_png().unwrap(), device.label.encode()),
        (
            device.in_box_qr_png().unwrap().unwrap(),
            device.in_box_label().unwrap().encode(),
        ),
    ] {
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let image = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(image.width(), image.height());
        // Modules of 8 pixels, with the 4-module quiet zone on each side.
        assert_eq!(image.width() % zerotouch_factory::QR_MODULE_PIXELS, 0);
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, expected);
        assert_eq!(
            BarcodePayload::decode(&content).unwrap().fingerprint,
            device.label.fingerprint
        );
    }
}

#[test]
fn private_key_pem_loads_as_the_device_key() {
    for algorithm in [
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::Ed25519,
    ] {
        let batch =
            make_batch(&spec(1, algorithm), KeySource::Generate, &ca(), &mut rng()).unwrap();
        let device = &batch.devices[0];
        let pem = device.private_key_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        // ring (through rcgen) reads it, and it is the certified key.
        let loaded = KeyPair::from_pem(&pem).unwrap();
        assert_eq!(loaded.algorithm(), rcgen_alg(algorithm));
        let cert = DeviceCertificate::from_der(&device.certificate_der).unwrap();
        assert_eq!(loaded.public_key_raw(), cert.public_key().raw_bytes());
        assert_eq!(
            device.private_key_pkcs8().unwrap().as_slice(),
            loaded.serialized_der()
        );
    }
}

#[test]
fn debug_output_shows_no_secret() {
    let batch = one_p256_device();
    let device = &batch.devices[0];
    let debug = format!("{batch:?}");
    let pin = device.pin.as_ref().unwrap().expose_secret();
    assert!(!debug.contains(pin), "{debug}");
    let secret_hex: String = device
        .device_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!debug.contains(&secret_hex));
    assert!(!debug.contains(&format!(
        "{:?}",
        device.device_secret.as_ref().unwrap().expose_secret()
    )));
    let key = device.private_key.as_ref().unwrap().to_secret_bytes();
    assert!(!debug.contains(&format!("{:?}", key.as_slice())));
    assert!(debug.contains("<redacted>"));
}
