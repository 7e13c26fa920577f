//! `DeviceCertificate::from_der` on arbitrary bytes: never panics, and the key it yields is
//! consistent with its SubjectPublicKeyInfo and key id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_core::{CryptoProvider, DeviceCertificate, PublicKey, RustCryptoProvider};

fuzz_target!(|data: &[u8]| {
    let Ok(cert) = DeviceCertificate::from_der(data) else {
        return;
    };
    assert_eq!(cert.der(), data, "der() is not the certificate as received");
    let key = cert.public_key();
    let spki = key.to_spki_der();
    let again = match PublicKey::from_spki_der(&spki) {
        Ok(k) => k,
        Err(e) => panic!("certificate key's SPKI does not parse: {e:?}: {spki:02x?}"),
    };
    assert_eq!(&again, key, "SPKI round trip changed the key");
    assert_eq!(
        cert.key_id(),
        again.key_id(),
        "key_id() disagrees with the key"
    );
    assert_eq!(
        cert.key_id().0,
        RustCryptoProvider.sha256(&[&spki]),
        "key id is not SHA-256 of the SPKI"
    );
    assert_eq!(again.to_spki_der(), spki);
});
