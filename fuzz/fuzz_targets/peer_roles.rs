//! A joiner after `start` and a sponsor after `accept`, fed the input as chunks: raw stream
//! bytes, plaintexts sealed into their open channels, association-server answers and clock
//! steps (the format is in `zerotouch_fuzz::peer`). Neither role may panic, and whatever the
//! input, the sponsor never sends the passphrase to the association server.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_fuzz::contains_slice;
use zerotouch_fuzz::peer::{PeerWorld, home_credential};

fuzz_target!(|data: &[u8]| {
    let mut world = PeerWorld::new();
    world.apply(data);
    let credential = home_credential();
    for request in &world.to_server {
        assert!(
            !contains_slice(request, credential.passphrase.expose_secret()),
            "the passphrase went to the association server"
        );
    }
});
