//! `PinnedKeyBundle::decode` on arbitrary bytes: never panics; what decodes re-encodes to the
//! same bytes (one byte form), every key id matches its key, and every indication names a
//! setup key of the bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_core::{KeyRole, PinnedKeyBundle, RustCryptoProvider};

fuzz_target!(|data: &[u8]| {
    let p = RustCryptoProvider;
    let Ok(bundle) = PinnedKeyBundle::decode(data, &p) else {
        return;
    };
    assert_eq!(bundle.encode(&p), data, "a second byte form was accepted");
    for rule in &bundle.indications {
        assert!(rule.first_serial <= rule.last_serial);
        assert!(bundle
            .keys
            .iter()
            .any(|(role, k)| *role == KeyRole::SetupSigning && k.key_id() == rule.key_id));
        let pinned = bundle
            .pinned_keys_for(rule.device_type, rule.first_serial)
            .expect("an indicated key is pinned");
        assert!(pinned.indication().is_some());
    }
});
