//! The order decoder never panics, whatever arrives.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use proptest::prelude::*;
use zerotouch_core::{
    KeyRole, PinnedKey, PinnedKeys, RustCryptoProvider, SignatureAlgorithm, Signer, SigningKey,
    SoftwareSigner,
};
use zerotouch_provisioner::{ClientMac, OpenNetworkOrder};

fn key(b: u8) -> SoftwareSigner {
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::Ed25519, &[b; 32]).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn order_verify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let server = key(1);
        let me = key(2);
        let trusted = PinnedKeys::new(vec![PinnedKey::new(KeyRole::ProvisionerOrder, server.public_key().clone())]);
        let _ = OpenNetworkOrder::verify(&bytes, me.public_key(), &trusted, &RustCryptoProvider);
    }

    #[test]
    fn mutated_orders_never_panic_and_never_verify(idx in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let server = key(1);
        let me = key(2);
        let trusted = PinnedKeys::new(vec![PinnedKey::new(KeyRole::ProvisionerOrder, server.public_key().clone())]);
        let order = OpenNetworkOrder {
            order_id: [7; 16],
            provisioner_key_id: me.key_id(),
            device_key_id: key(3).key_id(),
            issued_at_ms: 1,
            not_after_ms: 2,
        };
        let mut bytes = order.sign(me.public_key(), &server, &RustCryptoProvider).unwrap();
        let i = idx.index(bytes.len());
        let changed = bytes[i] != byte;
        bytes[i] = byte;
        let r = OpenNetworkOrder::verify(&bytes, me.public_key(), &trusted, &RustCryptoProvider);
        if changed {
            prop_assert!(r.is_err());
        } else {
            prop_assert_eq!(r.unwrap(), order);
        }
    }

    #[test]
    fn mac_parsing_never_panics_and_round_trips(s in "\\PC{0,24}", mac in any::<[u8; 6]>()) {
        if let Ok(parsed) = s.parse::<ClientMac>() {
            prop_assert_eq!(parsed.to_string(), s.to_ascii_lowercase().replace('-', ":"));
        }
        let mac = ClientMac(mac);
        prop_assert_eq!(mac.to_string().parse::<ClientMac>(), Ok(mac));
    }
}
