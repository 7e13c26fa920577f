//! The factory manifest: signed in role FactoryManifest, secrets sealed to the server's import
//! key, opened into store records. Each test is named after the rule it checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ciborium::Value;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::{
    CipherSuite, Instant, KeyRole, PinnedKey, PinnedKeys, RustCryptoProvider, SessionKeyPair,
    SignatureAlgorithm, Signer, SigningKey, SoftwareSigner, ToBeSigned, cbor,
};
use zerotouch_factory::{
    BatchSpec, FactoryBatch, FactoryError, FactoryManifest, KeySource, make_batch, open_manifest,
};
use zerotouch_pki::{CertificateAuthority, Validity};
use zerotouch_store::{DeviceIdentity, DeviceStore, MIN_PIN_ITERATIONS, MemoryStore};

const CREATED: Instant = Instant(1_700_000_000_000);
const NOW: Instant = Instant(1_700_000_500_000);

struct Fixture {
    batch: FactoryBatch,
    import_key: SessionKeyPair,
    factory: SoftwareSigner,
    manifest: Vec<u8>,
}

impl Fixture {
    fn new(suite: CipherSuite, signer_algorithm: SignatureAlgorithm) -> Self {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let ca = CertificateAuthority::new(
            "Acme devices",
            SignatureAlgorithm::EcdsaP256Sha256,
            Validity::years_from_now(20),
        )
        .unwrap();
        let spec = BatchSpec {
            device_type: 7,
            first_serial: 1001,
            count: 3,
            product_number: "SMARTPLUG01".into(),
            algorithm: SignatureAlgorithm::EcdsaP256Sha256,
            pin_digits: Some(8),
            device_secrets: true,
            pin_iterations: MIN_PIN_ITERATIONS,
        };
        let batch = make_batch(&spec, KeySource::Generate, &ca, &mut rng).unwrap();
        let import_key = SessionKeyPair::generate(suite, &mut rng).unwrap();
        let factory =
            SoftwareSigner::new(SigningKey::generate(signer_algorithm, &mut rng).unwrap());
        let manifest = FactoryManifest::build(
            &batch,
            CREATED,
            import_key.suite(),
            import_key.public_key(),
            &factory,
            &mut rng,
        )
        .unwrap();
        Fixture {
            batch,
            import_key,
            factory,
            manifest,
        }
    }

    fn default() -> Self {
        Self::new(
            CipherSuite::X25519_SHA256_CHACHA20POLY1305,
            SignatureAlgorithm::Ed25519,
        )
    }

    fn trusted(&self) -> PinnedKeys {
        trust(KeyRole::FactoryManifest, &self.factory)
    }

    fn open(&self, bytes: &[u8]) -> Result<zerotouch_factory::OpenedManifest, FactoryError> {
        open_manifest(bytes, &self.trusted(), &self.import_key, NOW)
    }

    /// Changes the payload and signs it again with the trusted factory key, exactly as
    /// docs/PROTOCOL.md says (an implementation independent of the crate's own encoder).
    fn resigned(&self, change: impl FnOnce(&mut Vec<Value>)) -> Vec<u8> {
        let Value::Array(cose) = cbor::decode(&self.manifest).unwrap() else {
            panic!("not an array")
        };
        let Value::Bytes(protected) = cose[0].clone() else {
            panic!("protected")
        };
        let Value::Bytes(payload) = cose[2].clone() else {
            panic!("payload")
        };
        let Value::Array(mut fields) = cbor::decode(&payload).unwrap() else {
            panic!("payload array")
        };
        change(&mut fields);
        let payload = cbor::encode(&Value::Array(fields));
        let aad = cbor::encode(&Value::Array(vec![
            Value::Text("zerotouch-factory-manifest".into()),
            Value::Integer(5.into()),
        ]));
        let sig_structure = cbor::encode(&Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(protected.clone()),
            Value::Bytes(aad),
            Value::Bytes(payload.clone()),
        ]));
        let signature = self
            .factory
            .sign(&ToBeSigned::new(sig_structure, &RustCryptoProvider))
            .unwrap();
        cbor::encode(&Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(vec![]),
            Value::Bytes(payload),
            Value::Bytes(signature.bytes.to_vec()),
        ]))
    }
}

fn trust(role: KeyRole, signer: &SoftwareSigner) -> PinnedKeys {
    PinnedKeys::new(vec![PinnedKey::new(role, signer.public_key().clone())])
}

fn devices_of(fields: &mut [Value]) -> &mut Vec<Value> {
    let Value::Array(devices) = &mut fields[3] else {
        panic!("devices")
    };
    devices
}

#[test]
fn imported_devices_match_the_batch() {
    for (suite, signer) in [
        (
            CipherSuite::X25519_SHA256_CHACHA20POLY1305,
            SignatureAlgorithm::Ed25519,
        ),
        (
            CipherSuite::P256_SHA256_CHACHA20POLY1305,
            SignatureAlgorithm::EcdsaP256Sha256,
        ),
    ] {
        let f = Fixture::new(suite, signer);
        let opened = f.open(&f.manifest).unwrap();
        assert_eq!(opened.batch.device_type, 7);
        assert_eq!(opened.batch.product_number, "SMARTPLUG01");
        assert_eq!(opened.batch.created_at, CREATED);
        assert_eq!(opened.batch.signed_by, f.factory.key_id());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = MemoryStore::new();
        let report = rt.block_on(store.import_devices(opened.devices)).unwrap();
        assert_eq!(report.added, 3);
        for made in &f.batch.devices {
            let record = rt.block_on(store.device(&made.key_id)).unwrap().unwrap();
            assert_eq!(
                record.identity,
                DeviceIdentity::Certificate(made.certificate_der.clone())
            );
            assert_eq!(
                (
                    record.device_type,
                    record.serial,
                    record.product_number.as_str()
                ),
                (7, made.serial, "SMARTPLUG01")
            );
            assert!(
                record
                    .pin
                    .as_ref()
                    .unwrap()
                    .verify(made.pin.as_ref().unwrap())
            );
            assert_eq!(record.device_secret, made.device_secret);
            assert!(!record.blocked);
            assert_eq!(record.created_at, NOW);
        }
        // Importing the same manifest again changes nothing.
        let again = f.open(&f.manifest).unwrap();
        let report = rt.block_on(store.import_devices(again.devices)).unwrap();
        assert_eq!((report.added, report.unchanged), (0, 3));
    }
}

#[test]
fn tampered_manifest_is_refused() {
    let f = Fixture::default();
    for i in 0..f.manifest.len() {
        for bit in [0x01u8, 0x80] {
            let mut bytes = f.manifest.clone();
            bytes[i] ^= bit;
            assert!(f.open(&bytes).is_err(), "byte {i} bit {bit:#x} accepted");
        }
    }
    for len in [0, 1, f.manifest.len() / 2, f.manifest.len() - 1] {
        assert!(f.open(&f.manifest[..len]).is_err());
    }
    let mut longer = f.manifest.clone();
    longer.push(0);
    assert!(matches!(
        f.open(&longer),
        Err(FactoryError::MalformedManifest(_))
    ));
}

#[test]
fn manifest_signed_by_untrusted_key_is_refused() {
    let f = Fixture::default();
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let stranger =
        SoftwareSigner::new(SigningKey::generate(SignatureAlgorithm::Ed25519, &mut rng).unwrap());
    let err = open_manifest(
        &f.manifest,
        &trust(KeyRole::FactoryManifest, &stranger),
        &f.import_key,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, FactoryError::UntrustedSigner), "{err}");

    // A manifest the stranger signed, relabelled with the trusted key's id.
    let forged = FactoryManifest::build(
        &f.batch,
        CREATED,
        f.import_key.suite(),
        f.import_key.public_key(),
        &stranger,
        &mut rng,
    )
    .unwrap();
    let (from, to) = (stranger.key_id(), f.factory.key_id());
    let at = forged
        .windows(32)
        .position(|w| w == from.as_bytes())
        .unwrap();
    let mut relabelled = forged.clone();
    relabelled[at..at + 32].copy_from_slice(to.as_bytes());
    let err = f.open(&relabelled).unwrap_err();
    assert!(matches!(err, FactoryError::BadSignature(_)), "{err}");
}

#[test]
fn manifest_signed_by_a_key_of_another_role_is_refused() {
    let f = Fixture::default();
    for role in [
        KeyRole::DeviceIdentity,
        KeyRole::SetupSigning,
        KeyRole::RevocationVerdict,
        KeyRole::Association,
        KeyRole::ProvisionerOrder,
    ] {
        let err =
            open_manifest(&f.manifest, &trust(role, &f.factory), &f.import_key, NOW).unwrap_err();
        assert!(
            matches!(err, FactoryError::UntrustedSigner),
            "{role:?}: {err}"
        );
    }
}

#[test]
fn secrets_are_not_readable_without_the_import_key() {
    let f = Fixture::default();
    let found = |needle: &[u8]| f.manifest.windows(needle.len()).any(|w| w == needle);
    for device in &f.batch.devices {
        assert!(!found(
            device.pin.as_ref().unwrap().expose_secret().as_bytes()
        ));
        let record = device.pin_record().unwrap().to_bytes();
        // Neither the whole record, nor its salt, nor its hash.
        assert!(!found(&record));
        assert!(!found(&record[..16]));
        assert!(!found(&record[20..]));
        assert!(!found(
            device.device_secret.as_ref().unwrap().expose_secret()
        ));
        // The public parts are in clear, for whoever audits the batch.
        assert!(found(&device.certificate_der));
    }
}

#[test]
fn wrong_import_key_is_refused() {
    let f = Fixture::default();
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    for suite in [
        CipherSuite::X25519_SHA256_CHACHA20POLY1305,
        CipherSuite::P256_SHA256_CHACHA20POLY1305,
    ] {
        let other = SessionKeyPair::generate(suite, &mut rng).unwrap();
        let err = open_manifest(&f.manifest, &f.trusted(), &other, NOW).unwrap_err();
        assert!(matches!(err, FactoryError::WrongImportKey), "{err}");
    }
}

#[test]
fn manifest_made_from_the_spec_opens() {
    // Re-signing the unchanged payload per docs/PROTOCOL.md gives a manifest that opens.
    let f = Fixture::default();
    let resigned = f.resigned(|_| {});
    assert_eq!(f.open(&resigned).unwrap().devices.len(), 3);
}

#[test]
fn unknown_format_is_refused() {
    let f = Fixture::default();
    let bytes = f.resigned(|fields| fields[0] = Value::Integer(2.into()));
    assert!(matches!(
        f.open(&bytes),
        Err(FactoryError::UnsupportedFormat(2))
    ));
}

#[test]
fn secrets_are_bound_to_their_device_and_batch_even_for_the_signer() {
    // Whoever holds a trusted factory key still cannot move sealed secrets between devices
    // or batches: the order, the key id and serial inside, and the header in the AAD bind them.
    let f = Fixture::default();
    let swapped_secrets = f.resigned(|fields| {
        let devices = devices_of(fields);
        let take = |d: &Value| match d {
            Value::Array(items) => items[2].clone(),
            _ => panic!("device"),
        };
        let (a, b) = (take(&devices[0]), take(&devices[1]));
        if let Value::Array(items) = &mut devices[0] {
            items[2] = b;
        }
        if let Value::Array(items) = &mut devices[1] {
            items[2] = a;
        }
    });
    let reordered = f.resigned(|fields| devices_of(fields).swap(0, 1));
    let dropped = f.resigned(|fields| {
        devices_of(fields).remove(0);
    });
    let other_type = f.resigned(|fields| {
        if let Value::Array(header) = &mut fields[1] {
            header[2] = Value::Integer(8.into());
        }
    });
    let other_serial = f.resigned(|fields| {
        if let Value::Array(items) = &mut devices_of(fields)[0] {
            items[0] = Value::Integer(999.into());
        }
    });
    for (what, bytes) in [
        ("swapped secrets", swapped_secrets),
        ("reordered devices", reordered),
        ("dropped device", dropped),
        ("other device type", other_type),
        ("other serial", other_serial),
    ] {
        let err = f.open(&bytes).unwrap_err();
        assert!(
            matches!(err, FactoryError::SecretsDoNotOpen),
            "{what}: {err}"
        );
    }
    let duplicated = f.resigned(|fields| {
        let devices = devices_of(fields);
        devices[1] = devices[0].clone();
    });
    assert!(matches!(
        f.open(&duplicated),
        Err(FactoryError::DuplicateDevice { index: 1 })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn open_manifest_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let f = fixture();
        prop_assert!(f.open(&bytes).is_err());
    }

    #[test]
    fn open_manifest_never_panics_on_a_damaged_manifest(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let f = fixture();
        let mut bytes = f.manifest.clone();
        for (at, value) in edits {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        // No panic; whether an edit that restored the original bytes opens does not matter.
        let _ = f.open(&bytes);
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(Fixture::default)
}
