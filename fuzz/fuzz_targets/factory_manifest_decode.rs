//! `FactoryManifest::open`, the server's entry point for a factory manifest file, on arbitrary
//! bytes. With `InsecureFuzzingProvider`, which accepts every signature, the fuzzer gets past
//! the signature to the payload decoder, but never past the COSE profile, the trusted-key and
//! role check, the import key check or the HPKE opening of the secrets. Whatever it accepts is
//! consistent: the real provider never accepts more, and every record's key id is its
//! identity's, with no key or serial twice.
#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use zerotouch_core::{
    DeviceCertificate, InsecureFuzzingProvider, Instant, PinnedKeys, PublicKey, SessionKeyPair,
};
use zerotouch_factory::DeviceIdentity;
use zerotouch_factory::FactoryManifest;
use zerotouch_fuzz::manifest_fixture;

static FIXTURE: LazyLock<(PinnedKeys, SessionKeyPair)> = LazyLock::new(manifest_fixture);

const NOW: Instant = Instant(1_767_225_600_000);

fuzz_target!(|data: &[u8]| {
    let (trusted, import) = &*FIXTURE;
    let insecure = FactoryManifest::open_with(data, trusted, import, NOW, &InsecureFuzzingProvider);
    let real = FactoryManifest::open(data, trusted, import, NOW);
    match (&real, &insecure) {
        (Ok(r), Ok(i)) => assert_eq!(r.devices, i.devices, "the providers disagree"),
        (Ok(_), Err(e)) => panic!("the real provider accepted what the insecure one refused: {e}"),
        (Err(_), _) => {}
    }
    let Ok(opened) = insecure else { return };
    assert!(!opened.devices.is_empty(), "an empty manifest was accepted");
    let mut keys = HashSet::new();
    let mut serials = HashSet::new();
    for d in &opened.devices {
        assert!(keys.insert(d.key_id), "a key listed twice");
        assert!(serials.insert(d.serial), "a serial listed twice");
        assert_eq!(d.device_type, opened.batch.device_type);
        assert_eq!(d.product_number, opened.batch.product_number);
        assert_eq!(d.created_at, NOW);
        assert!(!d.blocked);
        let key_id = match &d.identity {
            DeviceIdentity::Certificate(der) => {
                DeviceCertificate::from_der(der).map(|c| c.key_id()).ok()
            }
            DeviceIdentity::PublicKey(der) => {
                PublicKey::from_spki_der(der).map(|k| k.key_id()).ok()
            }
        };
        assert_eq!(
            key_id,
            Some(d.key_id),
            "a key id that is not its identity's"
        );
    }
});
