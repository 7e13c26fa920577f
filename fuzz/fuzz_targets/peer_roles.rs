//! A joiner after `start` and a sponsor after `accept`, both allowing every fallback, fed the
//! input as chunks: raw stream bytes, plaintexts sealed into their open channels,
//! association-server answers, clock steps and the owners' answers (the format is in
//! `zerotouch_fuzz::peer`). Neither role may panic, and whatever the input: the sponsor never
//! sends the passphrase to the association server, nor unencrypted into the local stream, and
//! neither role hands over or joins in a fallback without the answer it asked its owner for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_fuzz::contains_slice;
use zerotouch_fuzz::peer::{PeerWorld, home_credential};

fuzz_target!(|data: &[u8]| {
    let mut world = PeerWorld::new();
    world.apply(data);
    let credential = home_credential();
    let passphrase = credential.passphrase.expose_secret();
    for request in &world.to_server {
        assert!(
            !contains_slice(request, passphrase),
            "the passphrase went to the association server"
        );
    }
    for bytes in &world.sponsor_wire {
        assert!(
            !contains_slice(bytes, passphrase),
            "the passphrase went into the local stream unencrypted"
        );
    }
    assert!(world.violations.is_empty(), "{:?}", world.violations);
});
