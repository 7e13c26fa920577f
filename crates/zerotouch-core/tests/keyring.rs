//! Key ring rules: server key selection by type/serial map, rotation and revocation; the
//! device's pinned keys with indication and dropped keys.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
use common::*;
use zerotouch_core::*;

fn ring() -> (ServerKeyRing<SoftwareSigner>, [KeyId; 3]) {
    let mut r = ServerKeyRing::new();
    let a = r
        .add(KeyRole::SetupSigning, key(SignatureAlgorithm::Ed25519, "a"))
        .unwrap();
    let b = r
        .add(
            KeyRole::SetupSigning,
            key(SignatureAlgorithm::EcdsaP256Sha256, "b"),
        )
        .unwrap();
    let c = r
        .add(KeyRole::SetupSigning, key(SignatureAlgorithm::Ed25519, "c"))
        .unwrap();
    r.map_devices(7, 1000, 1999, b).unwrap();
    (r, [a, b, c])
}

#[test]
fn key_id_is_sha256_of_spki() {
    let k = key(SignatureAlgorithm::EcdsaP256Sha256, "x");
    let spki = k.public_key().to_spki_der();
    assert_eq!(k.key_id().0, PROVIDER.sha256(&[&spki]));
    assert_eq!(PublicKey::from_spki_der(&spki).unwrap(), *k.public_key());
}

#[test]
fn same_key_bytes_under_two_algorithms_have_different_ids() {
    // The id fixes the algorithm: an Ed25519 key and a P-256 point never share an id.
    let ed = key(SignatureAlgorithm::Ed25519, "x");
    let p = key(SignatureAlgorithm::EcdsaP256Sha256, "x");
    assert_ne!(ed.key_id(), p.key_id());
}

#[test]
fn mapped_key_is_chosen_when_the_device_trusts_it() {
    let (r, [a, b, c]) = ring();
    let chosen = r.select_setup_key(7, 1500, &[a, b, c]).unwrap();
    assert_eq!(chosen.key_id(), b);
}

#[test]
fn first_trusted_key_is_chosen_outside_the_map() {
    let (r, [a, _b, c]) = ring();
    // Serial outside the range, and another device type.
    assert_eq!(r.select_setup_key(7, 5000, &[c, a]).unwrap().key_id(), c);
    assert_eq!(r.select_setup_key(8, 1500, &[a, c]).unwrap().key_id(), a);
}

#[test]
fn mapped_key_the_device_no_longer_trusts_is_not_used() {
    let (r, [a, _b, c]) = ring();
    assert_eq!(r.select_setup_key(7, 1500, &[c, a]).unwrap().key_id(), c);
}

#[test]
fn revoked_key_is_never_selected() {
    let (mut r, [a, b, _c]) = ring();
    r.revoke(&b).unwrap();
    assert_eq!(r.select_setup_key(7, 1500, &[b, a]).unwrap().key_id(), a);
    assert!(matches!(
        r.select_setup_key(7, 1500, &[b]),
        Err(KeyError::NoUsableKey)
    ));
    assert!(r.is_revoked(&b));
    assert_eq!(r.revoked().collect::<Vec<_>>(), vec![b]);
    // A revoked key cannot be brought back by retiring it.
    assert_eq!(r.retire(&b), Err(KeyError::Revoked));
}

#[test]
fn retired_key_is_used_only_when_no_active_key_is_trusted() {
    let (mut r, [a, _b, c]) = ring();
    r.retire(&a).unwrap();
    assert_eq!(r.select_setup_key(9, 0, &[a, c]).unwrap().key_id(), c);
    assert_eq!(r.select_setup_key(9, 0, &[a]).unwrap().key_id(), a);
}

#[test]
fn key_unknown_to_the_server_is_not_selected() {
    let (r, _) = ring();
    let stranger = key(SignatureAlgorithm::Ed25519, "stranger").key_id();
    assert!(matches!(
        r.select_setup_key(7, 1500, &[stranger]),
        Err(KeyError::NoUsableKey)
    ));
}

#[test]
fn keys_of_other_roles_are_never_selected_for_setup() {
    let mut r = ServerKeyRing::new();
    let rev = r
        .add(
            KeyRole::RevocationVerdict,
            key(SignatureAlgorithm::Ed25519, "rev"),
        )
        .unwrap();
    assert!(matches!(
        r.select_setup_key(1, 1, &[rev]),
        Err(KeyError::NoUsableKey)
    ));
    assert!(matches!(
        r.map_devices(1, 0, 10, rev),
        Err(KeyError::WrongRole { .. })
    ));
    assert_eq!(
        r.signer_for(KeyRole::RevocationVerdict).unwrap().key_id(),
        rev
    );
    assert!(r.signer_for(KeyRole::Association).is_err());
    // Lookup for verification honours roles too.
    assert!(r.trusted_key(KeyRole::SetupSigning, &rev).is_none());
    assert!(r.trusted_key(KeyRole::RevocationVerdict, &rev).is_some());
}

#[test]
fn overlapping_or_empty_serial_ranges_are_refused() {
    let (mut r, [a, ..]) = ring();
    assert_eq!(r.map_devices(7, 1999, 2500, a), Err(KeyError::InvalidRange));
    assert_eq!(r.map_devices(7, 500, 1000, a), Err(KeyError::InvalidRange));
    assert_eq!(r.map_devices(7, 10, 9, a), Err(KeyError::InvalidRange));
    // Adjacent ranges and other device types are fine.
    r.map_devices(7, 2000, 2999, a).unwrap();
    r.map_devices(8, 1000, 1999, a).unwrap();
    assert_eq!(r.mapped_key(7, 2000), Some(a));
}

#[test]
fn duplicate_key_is_refused() {
    let (mut r, _) = ring();
    assert_eq!(
        r.add(KeyRole::SetupSigning, key(SignatureAlgorithm::Ed25519, "a"))
            .unwrap_err(),
        KeyError::Duplicate
    );
}

fn pinned() -> (PinnedKeys, [KeyId; 3]) {
    let ks = [
        key(SignatureAlgorithm::Ed25519, "a"),
        key(SignatureAlgorithm::EcdsaP256Sha256, "b"),
        key(SignatureAlgorithm::Ed25519, "rev"),
    ];
    let ids = [ks[0].key_id(), ks[1].key_id(), ks[2].key_id()];
    let p = PinnedKeys::new(vec![
        PinnedKey::new(KeyRole::SetupSigning, ks[0].public_key().clone()),
        PinnedKey::new(KeyRole::SetupSigning, ks[1].public_key().clone()),
        PinnedKey::new(KeyRole::RevocationVerdict, ks[2].public_key().clone()),
    ]);
    (p, ids)
}

#[test]
fn device_trusts_each_pinned_key_in_turn_without_indication() {
    let (p, [a, b, rev]) = pinned();
    assert_eq!(p.trusted_key_ids(KeyRole::SetupSigning), vec![a, b]);
    assert!(p.trusted_key(KeyRole::SetupSigning, &a).is_some());
    assert!(p.trusted_key(KeyRole::SetupSigning, &b).is_some());
    assert!(p.trusted_key(KeyRole::SetupSigning, &rev).is_none());
}

#[test]
fn indicated_key_is_the_only_setup_key_accepted() {
    let (mut p, [a, b, rev]) = pinned();
    p.indicate(b).unwrap();
    assert_eq!(p.trusted_key_ids(KeyRole::SetupSigning), vec![b, a]);
    assert!(p.trusted_key(KeyRole::SetupSigning, &a).is_none());
    assert!(p.trusted_key(KeyRole::SetupSigning, &b).is_some());
    // Only setup keys can be indicated.
    assert!(matches!(p.indicate(rev), Err(KeyError::WrongRole { .. })));
}

#[test]
fn dropped_key_is_refused_and_the_others_are_taken_in_turn() {
    let (mut p, [a, b, _]) = pinned();
    p.indicate(b).unwrap();
    p.drop_key(b);
    assert_eq!(p.indication(), None);
    assert_eq!(p.trusted_key_ids(KeyRole::SetupSigning), vec![a]);
    assert!(p.trusted_key(KeyRole::SetupSigning, &b).is_none());
    assert!(p.trusted_key(KeyRole::SetupSigning, &a).is_some());
    assert_eq!(p.dropped(), &[b]);
}

#[test]
fn dropped_key_cannot_be_indicated_again() {
    // Firmware restoring state as "drop, then indicate from factory config" must not end up
    // trusting no key at all.
    let (mut p, [a, b, _]) = pinned();
    p.drop_key(b);
    assert_eq!(p.indicate(b), Err(KeyError::Revoked));
    assert_eq!(p.trusted_key_ids(KeyRole::SetupSigning), vec![a]);
    assert!(p.trusted_key(KeyRole::SetupSigning, &a).is_some());
}

#[test]
fn compressed_p256_point_in_spki_is_refused() {
    // The key id hashes the uncompressed SPKI; a second encoding would be a second id.
    let k = key(SignatureAlgorithm::EcdsaP256Sha256, "x");
    let PublicKey::P256(point) = k.public_key() else {
        panic!()
    };
    let mut compressed = vec![0x02 | (point[64] & 1)];
    compressed.extend_from_slice(&point[1..33]);
    let mut spki = vec![
        0x30, 0x39, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x22, 0x00,
    ];
    spki.extend_from_slice(&compressed);
    assert_eq!(
        PublicKey::from_spki_der(&spki),
        Err(KeyError::MalformedPublicKey)
    );
    // The same point given as SEC1 bytes directly is accepted and stored uncompressed.
    assert_eq!(PublicKey::p256_sec1(&compressed).unwrap(), *k.public_key());
}
