//! The rules, one function each. Every function fails (panics) if its rule is broken.

use std::sync::Arc;
use std::time::Duration;

use zerotouch_core::{
    Instant, KeyMapRule, KeyRole, KeyState, Nonce, Passphrase, Pin, SessionId, SignatureAlgorithm,
    SigningKey,
};
use zerotouch_store::{
    AccountId, AccountStore, AssociationAction, AssociationChange, AssociationStore, AttemptState,
    AttemptStore, Bands, ChangeOutcome, CounterKey, CounterScope, DeviceStore, LockoutPolicy,
    NonceUse, OutcomeKind, OutcomeRecord, OutcomeStore, PutResponse, RegistrarCredential,
    RegistrarId, RegistrarStore, ResponseKey, Retention, ScanReport, ScannedLabel, SecurityType,
    SeenNetwork, ServerKeyStore, SessionCas, SessionStore, StoreError, StoredResponse,
};

use crate::Harness;
use crate::fixtures::{PASSPHRASE, PIN, device, device_id, network};

const T0: Instant = Instant(1_700_000_000_000);

fn at(ms: u64) -> Instant {
    Instant(T0.0 + ms)
}

fn server_key(seed: u8) -> zerotouch_core::PublicKey {
    SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[seed; 32])
        .unwrap()
        .public_key()
}

/// A store with one account, one registrar and devices 1..=3 imported.
async fn populated<H: Harness>(h: &H) -> (H::Store, AccountId, AccountId, RegistrarId) {
    let s = h.fresh().await;
    let a = s.create_account("alice", T0).await.unwrap();
    let b = s.create_account("bob", T0).await.unwrap();
    let r = s
        .add_registrar("phone app", RegistrarCredential::ApiTokenHash([9; 32]), T0)
        .await
        .unwrap();
    s.import_devices(vec![device(1), device(2), device(3)])
        .await
        .unwrap();
    (s, a, b, r)
}

fn change(
    action: AssociationAction,
    dev: u8,
    account: AccountId,
    r: RegistrarId,
    t: u64,
) -> AssociationChange {
    AssociationChange {
        action,
        device: device_id(dev),
        account,
        registrar: r,
        label: Some(ScannedLabel {
            fingerprint: "ABCDEFGH".into(),
            device_type: 7,
            product_number: format!("ZT{dev:03}"),
            had_pin: true,
        }),
        at: at(t),
    }
}

// ---- accounts and networks ----

/// An account reads back as created.
pub async fn account_round_trips<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let id = s.create_account("alice", T0).await.unwrap();
    let acc = s.account(id).await.unwrap().unwrap();
    assert_eq!(
        (acc.id, acc.name.as_str(), acc.created_at),
        (id, "alice", T0)
    );
    assert!(s.account(AccountId(id.0 + 1000)).await.unwrap().is_none());
}

/// A network's passphrase reads back intact, and only its own account lists it.
pub async fn network_passphrase_round_trips_and_stays_with_its_account<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let a = s.create_account("alice", T0).await.unwrap();
    let b = s.create_account("bob", T0).await.unwrap();
    let na = s.add_network(network(a, "alice-home"), T0).await.unwrap();
    let nb = s.add_network(network(b, "bob-home"), T0).await.unwrap();
    assert_ne!(na, nb);
    let of_a = s.networks_of_account(a).await.unwrap();
    assert_eq!(of_a.len(), 1);
    assert_eq!(of_a[0].id, na);
    assert_eq!(of_a[0].ssid, b"alice-home");
    assert_eq!(of_a[0].passphrase, Passphrase::new(PASSPHRASE).unwrap());
    assert_eq!(of_a[0].security, SecurityType::Wpa3Personal);
    assert_eq!(of_a[0].bands, Bands::GHZ_2_4.union(Bands::GHZ_5));
    let of_b = s.networks_of_account(b).await.unwrap();
    assert_eq!(of_b.iter().map(|n| n.id).collect::<Vec<_>>(), vec![nb]);
}

/// A network cannot be added to an account that does not exist.
pub async fn network_for_unknown_account_is_refused<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let err = s
        .add_network(network(AccountId(42), "x"), T0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "account" }),
        "{err:?}"
    );
}

/// SSIDs are 1 to 32 bytes.
pub async fn ssid_longer_than_32_bytes_is_refused<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let a = s.create_account("alice", T0).await.unwrap();
    let long = "x".repeat(33);
    assert!(matches!(
        s.add_network(network(a, &long), T0).await,
        Err(StoreError::InvalidInput(_))
    ));
    let mut empty = network(a, "x");
    empty.ssid.clear();
    assert!(matches!(
        s.add_network(empty, T0).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert!(s.networks_of_account(a).await.unwrap().is_empty());
}

/// A removed network is no longer listed; removing it again reports nothing removed.
pub async fn removed_network_is_gone<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let a = s.create_account("alice", T0).await.unwrap();
    let n1 = s.add_network(network(a, "one"), T0).await.unwrap();
    let n2 = s.add_network(network(a, "two"), T0).await.unwrap();
    assert!(s.remove_network(n1).await.unwrap());
    assert!(!s.remove_network(n1).await.unwrap());
    let left: Vec<_> = s
        .networks_of_account(a)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(left, vec![n2]);
}

// ---- devices ----

/// Every device field, secrets included, reads back as imported.
pub async fn device_import_round_trips_every_field<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let report = s.import_devices(vec![device(1), device(2)]).await.unwrap();
    assert_eq!((report.added, report.unchanged), (2, 0));
    let d = s.device(&device_id(1)).await.unwrap().unwrap();
    assert_eq!(d, device(1));
    assert!(d.pin.as_ref().unwrap().verify(&Pin::new(PIN).unwrap()));
    assert!(!d.pin.as_ref().unwrap().verify(&Pin::new("000000").unwrap()));
    assert!(s.device(&device_id(9)).await.unwrap().is_none());
}

/// Importing the same manifest twice changes nothing.
pub async fn device_import_is_idempotent<H: Harness>(h: &H) {
    let s = h.fresh().await;
    s.import_devices(vec![device(1)]).await.unwrap();
    let again = s.import_devices(vec![device(1), device(2)]).await.unwrap();
    assert_eq!((again.added, again.unchanged), (1, 1));
}

/// A batch with one device conflicting with a stored one is refused as a whole.
pub async fn conflicting_device_import_rolls_back_the_whole_batch<H: Harness>(h: &H) {
    let s = h.fresh().await;
    s.import_devices(vec![device(1)]).await.unwrap();
    let mut changed = device(1);
    changed.serial += 1;
    let err = s
        .import_devices(vec![device(2), changed, device(3)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { what: "device" }),
        "{err:?}"
    );
    assert!(s.device(&device_id(2)).await.unwrap().is_none());
    assert!(s.device(&device_id(3)).await.unwrap().is_none());
    assert_eq!(s.device(&device_id(1)).await.unwrap().unwrap(), device(1));
    let dup = s
        .import_devices(vec![device(4), device(4)])
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::InvalidInput(_)));
    assert!(s.device(&device_id(4)).await.unwrap().is_none());
}

/// A barcode's key-id prefix finds the device (and only devices with that prefix).
pub async fn devices_are_found_by_key_prefix<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let devs: Vec<_> = (1..=20).map(device).collect();
    s.import_devices(devs.clone()).await.unwrap();
    for d in &devs {
        let found = s
            .devices_with_key_prefix(&d.key_id.as_bytes()[..5], 10)
            .await
            .unwrap();
        assert_eq!(found, vec![d.key_id]);
    }
    let all = s.devices_with_key_prefix(&[], 100).await.unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(s.devices_with_key_prefix(&[], 3).await.unwrap().len(), 3);
    let id = devs[0].key_id.as_bytes();
    let mut other = id[..6].to_vec();
    other[5] ^= 0xff;
    assert!(
        s.devices_with_key_prefix(&other, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Blocking is stored and reversible; an unknown device cannot be blocked.
pub async fn blocked_flag_is_stored_and_unknown_device_is_not_found<H: Harness>(h: &H) {
    let s = h.fresh().await;
    s.import_devices(vec![device(1)]).await.unwrap();
    s.set_blocked(&device_id(1), true).await.unwrap();
    assert!(s.device(&device_id(1)).await.unwrap().unwrap().blocked);
    s.set_blocked(&device_id(1), false).await.unwrap();
    assert!(!s.device(&device_id(1)).await.unwrap().unwrap().blocked);
    assert!(matches!(
        s.set_blocked(&device_id(2), true).await,
        Err(StoreError::NotFound { what: "device" })
    ));
}

// ---- associations ----

/// Every applied change is in the audit log with who, when, what label and what came before.
pub async fn association_change_is_audited_with_registrar_time_and_label<H: Harness>(h: &H) {
    let (s, a, _, r) = populated(h).await;
    let c = change(AssociationAction::Add, 1, a, r, 5);
    let out = s.apply_association_change(c.clone()).await.unwrap();
    let ChangeOutcome::Applied {
        seq,
        now_associated,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(now_associated, vec![a]);
    let log = s.audit_log(0, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].seq, seq);
    assert_eq!(log[0].change, c);
    assert!(log[0].previous.is_empty());
    let assoc = s.associations_of_device(&device_id(1)).await.unwrap();
    assert_eq!(assoc.len(), 1);
    assert_eq!(
        (assoc[0].account, assoc[0].registrar, assoc[0].since),
        (a, r, at(5))
    );
    assert_eq!(s.devices_of_account(a).await.unwrap(), vec![device_id(1)]);
}

/// A key added to a second account keeps both associations, so server policy decides later.
pub async fn ambiguous_key_is_kept_not_overwritten<H: Harness>(h: &H) {
    let (s, a, b, r) = populated(h).await;
    s.apply_association_change(change(AssociationAction::Add, 1, a, r, 1))
        .await
        .unwrap();
    let out = s
        .apply_association_change(change(AssociationAction::Add, 1, b, r, 2))
        .await
        .unwrap();
    let ChangeOutcome::Applied { now_associated, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(now_associated, vec![a, b]);
    let assoc = s.associations_of_device(&device_id(1)).await.unwrap();
    assert_eq!(
        assoc
            .iter()
            .map(|x| (x.account, x.since))
            .collect::<Vec<_>>(),
        vec![(a, at(1)), (b, at(2))]
    );
    let log = s.device_history(&device_id(1)).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].previous, vec![a]);
}

/// Re-association leaves exactly the new account, and the log remembers the old ones.
pub async fn reassociation_replaces_every_previous_account<H: Harness>(h: &H) {
    let (s, a, b, r) = populated(h).await;
    let c = s.create_account("carol", T0).await.unwrap();
    s.apply_association_change(change(AssociationAction::Add, 1, a, r, 1))
        .await
        .unwrap();
    s.apply_association_change(change(AssociationAction::Add, 1, b, r, 2))
        .await
        .unwrap();
    s.apply_association_change(change(AssociationAction::Reassociate, 1, c, r, 3))
        .await
        .unwrap();
    let now: Vec<_> = s
        .associations_of_device(&device_id(1))
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.account)
        .collect();
    assert_eq!(now, vec![c]);
    let hist = s.device_history(&device_id(1)).await.unwrap();
    assert_eq!(hist.last().unwrap().previous, vec![a, b]);
    assert!(s.devices_of_account(a).await.unwrap().is_empty());
    s.apply_association_change(change(AssociationAction::Remove, 1, c, r, 4))
        .await
        .unwrap();
    assert!(
        s.associations_of_device(&device_id(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.device_history(&device_id(1)).await.unwrap().len(), 4);
}

/// A change that changes nothing is not logged.
pub async fn unchanged_association_is_not_logged<H: Harness>(h: &H) {
    let (s, a, b, r) = populated(h).await;
    s.apply_association_change(change(AssociationAction::Add, 1, a, r, 1))
        .await
        .unwrap();
    for c in [
        change(AssociationAction::Add, 1, a, r, 2),
        change(AssociationAction::Reassociate, 1, a, r, 3),
        change(AssociationAction::Remove, 1, b, r, 4),
    ] {
        assert_eq!(
            s.apply_association_change(c).await.unwrap(),
            ChangeOutcome::Unchanged
        );
    }
    assert_eq!(s.audit_log(0, 100).await.unwrap().len(), 1);
}

/// Changes naming an unknown device, account or registrar are refused and not logged.
pub async fn association_needs_known_device_account_and_registrar<H: Harness>(h: &H) {
    let (s, a, _, r) = populated(h).await;
    let e = s
        .apply_association_change(change(AssociationAction::Add, 9, a, r, 1))
        .await;
    assert!(
        matches!(e, Err(StoreError::NotFound { what: "device" })),
        "{e:?}"
    );
    let e = s
        .apply_association_change(change(AssociationAction::Add, 1, AccountId(999), r, 1))
        .await;
    assert!(
        matches!(e, Err(StoreError::NotFound { what: "account" })),
        "{e:?}"
    );
    let e = s
        .apply_association_change(change(AssociationAction::Add, 1, a, RegistrarId(999), 1))
        .await;
    assert!(
        matches!(e, Err(StoreError::NotFound { what: "registrar" })),
        "{e:?}"
    );
    assert!(s.audit_log(0, 100).await.unwrap().is_empty());
}

/// The audit log reads in order, page by page, from any position.
pub async fn audit_log_pages_in_order<H: Harness>(h: &H) {
    let (s, a, b, r) = populated(h).await;
    for i in 0..10u64 {
        let acc = if i % 2 == 0 { a } else { b };
        s.apply_association_change(change(
            AssociationAction::Reassociate,
            1 + (i % 3) as u8,
            acc,
            r,
            i,
        ))
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = s.audit_log(after, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().unwrap().seq;
        seen.extend(page);
    }
    assert_eq!(seen.len(), 10);
    assert!(seen.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(seen.windows(2).all(|w| w[0].change.at < w[1].change.at));
}

// ---- registrars ----

/// A registrar is found by its credential, and no two registrars share one.
pub async fn registrar_is_found_by_credential_and_credentials_are_unique<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let cert = RegistrarCredential::Certificate(device_id(1));
    let token = RegistrarCredential::ApiTokenHash([3; 32]);
    let r1 = s.add_registrar("scanner", cert, T0).await.unwrap();
    let r2 = s.add_registrar("app", token, T0).await.unwrap();
    assert_ne!(r1, r2);
    let got = s.registrar_by_credential(&cert).await.unwrap().unwrap();
    assert_eq!(
        (got.id, got.name.as_str(), got.disabled),
        (r1, "scanner", false)
    );
    assert_eq!(
        s.registrar_by_credential(&token).await.unwrap().unwrap().id,
        r2
    );
    assert!(
        s.registrar_by_credential(&RegistrarCredential::ApiTokenHash([4; 32]))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        s.add_registrar("copy", token, T0).await,
        Err(StoreError::Conflict { .. })
    ));
}

/// A disabled registrar reads back disabled, and can be enabled again.
pub async fn registrar_can_be_disabled<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let r = s
        .add_registrar("app", RegistrarCredential::ApiTokenHash([3; 32]), T0)
        .await
        .unwrap();
    s.set_registrar_disabled(r, true).await.unwrap();
    assert!(s.registrar(r).await.unwrap().unwrap().disabled);
    s.set_registrar_disabled(r, false).await.unwrap();
    assert!(!s.registrar(r).await.unwrap().unwrap().disabled);
    assert!(matches!(
        s.set_registrar_disabled(RegistrarId(999), true).await,
        Err(StoreError::NotFound { .. })
    ));
}

// ---- server keys ----

/// Server keys read back in the order added, with their roles and public keys.
pub async fn server_keys_round_trip_in_order<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let k1 = s
        .add_server_key(KeyRole::SetupSigning, server_key(1), T0)
        .await
        .unwrap();
    let k2 = s
        .add_server_key(KeyRole::RevocationVerdict, server_key(2), T0)
        .await
        .unwrap();
    assert_eq!(
        s.add_server_key(KeyRole::SetupSigning, server_key(1), T0)
            .await
            .unwrap(),
        k1
    );
    assert!(matches!(
        s.add_server_key(KeyRole::Association, server_key(1), T0)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let keys = s.server_keys().await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k.key_id, k.role, k.state))
            .collect::<Vec<_>>(),
        vec![
            (k1, KeyRole::SetupSigning, KeyState::Active),
            (k2, KeyRole::RevocationVerdict, KeyState::Active),
        ]
    );
    assert_eq!(keys[0].public_key, server_key(1));
}

/// Revocation is final: a revoked key cannot be retired, and revoking again keeps the first
/// record.
pub async fn revoked_server_key_stays_revoked<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let k1 = s
        .add_server_key(KeyRole::SetupSigning, server_key(1), T0)
        .await
        .unwrap();
    let k2 = s
        .add_server_key(KeyRole::SetupSigning, server_key(2), T0)
        .await
        .unwrap();
    s.retire_server_key(&k1).await.unwrap();
    assert_eq!(s.server_keys().await.unwrap()[0].state, KeyState::Retired);
    s.revoke_server_key(&k1, Some(k2), at(10)).await.unwrap();
    s.revoke_server_key(&k1, None, at(20)).await.unwrap();
    let k = &s.server_keys().await.unwrap()[0];
    assert_eq!(
        (k.state, k.revoked_at, k.replacement),
        (KeyState::Revoked, Some(at(10)), Some(k2))
    );
    assert!(matches!(
        s.retire_server_key(&k1).await,
        Err(StoreError::InvalidChange(_))
    ));
    assert!(matches!(
        s.revoke_server_key(&device_id(9), None, T0).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A revoked key's replacement must be another unrevoked key of the same role.
pub async fn replacement_key_must_be_unrevoked_and_of_the_same_role<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let k1 = s
        .add_server_key(KeyRole::SetupSigning, server_key(1), T0)
        .await
        .unwrap();
    let k2 = s
        .add_server_key(KeyRole::SetupSigning, server_key(2), T0)
        .await
        .unwrap();
    let other_role = s
        .add_server_key(KeyRole::RevocationVerdict, server_key(3), T0)
        .await
        .unwrap();
    for bad in [Some(other_role), Some(k1), Some(device_id(9))] {
        assert!(matches!(
            s.revoke_server_key(&k1, bad, T0).await,
            Err(StoreError::InvalidChange(_))
        ));
    }
    s.revoke_server_key(&k2, None, T0).await.unwrap();
    assert!(matches!(
        s.revoke_server_key(&k1, Some(k2), T0).await,
        Err(StoreError::InvalidChange(_))
    ));
    assert_eq!(s.server_keys().await.unwrap()[0].state, KeyState::Active);
}

/// The type/serial map keeps its order and only names known keys.
pub async fn key_map_keeps_order_and_refuses_unknown_keys<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let k1 = s
        .add_server_key(KeyRole::SetupSigning, server_key(1), T0)
        .await
        .unwrap();
    let k2 = s
        .add_server_key(KeyRole::SetupSigning, server_key(2), T0)
        .await
        .unwrap();
    let rules = vec![
        KeyMapRule {
            device_type: 7,
            first_serial: 0,
            last_serial: 99,
            key_id: k2,
        },
        KeyMapRule {
            device_type: 7,
            first_serial: 100,
            last_serial: u64::MAX >> 1,
            key_id: k1,
        },
    ];
    for r in &rules {
        s.add_key_map_rule(*r).await.unwrap();
    }
    assert_eq!(s.key_map().await.unwrap(), rules);
    let unknown = KeyMapRule {
        device_type: 1,
        first_serial: 0,
        last_serial: 1,
        key_id: device_id(9),
    };
    assert!(matches!(
        s.add_key_map_rule(unknown).await,
        Err(StoreError::NotFound { .. })
    ));
    let empty = KeyMapRule {
        device_type: 1,
        first_serial: 5,
        last_serial: 4,
        key_id: k1,
    };
    assert!(matches!(
        s.add_key_map_rule(empty).await,
        Err(StoreError::InvalidInput(_))
    ));
}

// ---- sessions ----

/// A session is written only when the caller read the version that is stored.
pub async fn session_is_written_only_at_the_expected_version<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let id = SessionId([1; 16]);
    let exp = at(60_000);
    assert_eq!(
        s.compare_and_swap_session(id, None, b"v1".to_vec(), exp, T0)
            .await
            .unwrap(),
        SessionCas::Written { version: 1 }
    );
    assert_eq!(
        s.compare_and_swap_session(id, None, b"x".to_vec(), exp, T0)
            .await
            .unwrap(),
        SessionCas::Conflict { current: Some(1) }
    );
    assert_eq!(
        s.compare_and_swap_session(id, Some(2), b"x".to_vec(), exp, T0)
            .await
            .unwrap(),
        SessionCas::Conflict { current: Some(1) }
    );
    assert_eq!(
        s.compare_and_swap_session(id, Some(1), b"v2".to_vec(), exp, T0)
            .await
            .unwrap(),
        SessionCas::Written { version: 2 }
    );
    let rec = s.session(id, T0).await.unwrap().unwrap();
    assert_eq!((rec.version, rec.state.as_slice()), (2, b"v2".as_slice()));
    assert_eq!(
        s.compare_and_swap_session(SessionId([2; 16]), Some(1), b"x".to_vec(), exp, T0)
            .await
            .unwrap(),
        SessionCas::Conflict { current: None }
    );
}

/// An expired session is gone: not read, and a new one may take its id.
pub async fn expired_session_counts_as_absent<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let id = SessionId([1; 16]);
    s.compare_and_swap_session(id, None, b"old".to_vec(), at(100), T0)
        .await
        .unwrap();
    assert!(s.session(id, at(99)).await.unwrap().is_some());
    assert!(s.session(id, at(100)).await.unwrap().is_none());
    assert_eq!(
        s.compare_and_swap_session(id, Some(1), b"x".to_vec(), at(500), at(100))
            .await
            .unwrap(),
        SessionCas::Conflict { current: None }
    );
    assert_eq!(
        s.compare_and_swap_session(id, None, b"new".to_vec(), at(500), at(100))
            .await
            .unwrap(),
        SessionCas::Written { version: 1 }
    );
    assert_eq!(s.session(id, at(101)).await.unwrap().unwrap().state, b"new");
}

/// Of many writers racing from one version, exactly one succeeds.
pub async fn concurrent_session_writers_exactly_one_wins<H: Harness>(h: &H) {
    let s = Arc::new(h.fresh().await);
    let id = SessionId([7; 16]);
    s.compare_and_swap_session(id, None, b"start".to_vec(), at(60_000), T0)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..12u8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.compare_and_swap_session(id, Some(1), vec![i], at(60_000), T0)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            SessionCas::Written { version } => {
                assert_eq!(version, 2);
                wins += 1;
            }
            SessionCas::Conflict { current } => assert_eq!(current, Some(2)),
        }
    }
    assert_eq!(wins, 1);
}

/// Session state of any length reads back byte for byte.
pub async fn session_state_round_trips<H: Harness>(h: &H) {
    let s = h.fresh().await;
    for (i, len) in [0usize, 1, 4096, 70_000].into_iter().enumerate() {
        let id = SessionId([i as u8; 16]);
        let state: Vec<u8> = (0..len).map(|j| (j * 31 % 251) as u8).collect();
        s.compare_and_swap_session(id, None, state.clone(), at(1000), T0)
            .await
            .unwrap();
        assert_eq!(s.session(id, T0).await.unwrap().unwrap().state, state);
    }
}

// ---- nonces ----

/// A nonce is consumed once; using it again is refused.
pub async fn nonce_is_consumed_exactly_once<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let (n, sid) = (Nonce([1; 16]), SessionId([2; 16]));
    s.issue_nonce(n, sid, at(1000)).await.unwrap();
    assert_eq!(
        s.consume_nonce(n, sid, at(1)).await.unwrap(),
        NonceUse::Consumed
    );
    assert_eq!(
        s.consume_nonce(n, sid, at(2)).await.unwrap(),
        NonceUse::AlreadyUsed
    );
}

/// A nonce past its expiry is refused, and stays unusable.
pub async fn expired_nonce_is_refused<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let (n, sid) = (Nonce([1; 16]), SessionId([2; 16]));
    s.issue_nonce(n, sid, at(1000)).await.unwrap();
    assert_eq!(
        s.consume_nonce(n, sid, at(1000)).await.unwrap(),
        NonceUse::Expired
    );
    assert_eq!(
        s.consume_nonce(n, sid, at(5)).await.unwrap(),
        NonceUse::Consumed,
        "expiry is checked against the caller's now"
    );
}

/// A nonce issued for one session cannot be spent in another.
pub async fn nonce_of_another_session_is_refused<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let n = Nonce([1; 16]);
    s.issue_nonce(n, SessionId([2; 16]), at(1000))
        .await
        .unwrap();
    assert_eq!(
        s.consume_nonce(n, SessionId([3; 16]), at(1)).await.unwrap(),
        NonceUse::WrongSession
    );
    assert_eq!(
        s.consume_nonce(n, SessionId([2; 16]), at(1)).await.unwrap(),
        NonceUse::Consumed
    );
}

/// A nonce the server never issued is refused.
pub async fn unknown_nonce_is_refused<H: Harness>(h: &H) {
    let s = h.fresh().await;
    assert_eq!(
        s.consume_nonce(Nonce([9; 16]), SessionId([2; 16]), T0)
            .await
            .unwrap(),
        NonceUse::Unknown
    );
}

/// Issuing a nonce twice is an error (it means the RNG repeated).
pub async fn reissued_nonce_is_a_conflict<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let n = Nonce([1; 16]);
    s.issue_nonce(n, SessionId([2; 16]), at(1000))
        .await
        .unwrap();
    assert!(matches!(
        s.issue_nonce(n, SessionId([3; 16]), at(1000)).await,
        Err(StoreError::Conflict { what: "nonce" })
    ));
}

/// Two (and more) writers consuming one nonce at once: exactly one wins.
pub async fn two_writers_consuming_one_nonce_exactly_one_wins<H: Harness>(h: &H) {
    let s = Arc::new(h.fresh().await);
    for round in 0..5u8 {
        let (n, sid) = (Nonce([round; 16]), SessionId([2; 16]));
        s.issue_nonce(n, sid, at(60_000)).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let s = Arc::clone(&s);
                tokio::spawn(async move { s.consume_nonce(n, sid, T0).await.unwrap() })
            })
            .collect();
        let mut consumed = 0;
        for t in tasks {
            match t.await.unwrap() {
                NonceUse::Consumed => consumed += 1,
                other => assert_eq!(other, NonceUse::AlreadyUsed),
            }
        }
        assert_eq!(consumed, 1, "round {round}");
    }
}

// ---- stored responses ----

fn response(tag: u8, exp: Instant) -> StoredResponse {
    StoredResponse {
        request_digest: [tag; 32],
        response: vec![tag; 300],
        expires_at: exp,
    }
}

/// The first response stored for a request wins; later puts get it back unchanged.
pub async fn first_stored_response_wins<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let key = ResponseKey {
        session: SessionId([1; 16]),
        seq: 1,
    };
    assert_eq!(
        s.put_response_if_absent(key, response(1, at(1000)))
            .await
            .unwrap(),
        PutResponse::Stored
    );
    assert_eq!(
        s.put_response_if_absent(key, response(2, at(1000)))
            .await
            .unwrap(),
        PutResponse::Existing(response(1, at(1000)))
    );
    assert_eq!(
        s.stored_response(key, T0).await.unwrap(),
        Some(response(1, at(1000)))
    );
    let other = ResponseKey {
        session: SessionId([1; 16]),
        seq: 2,
    };
    assert_eq!(s.stored_response(other, T0).await.unwrap(), None);
}

/// Racing processes storing responses for one request all end up with the same bytes.
pub async fn concurrent_response_writers_agree_on_one_response<H: Harness>(h: &H) {
    let s = Arc::new(h.fresh().await);
    let key = ResponseKey {
        session: SessionId([1; 16]),
        seq: 3,
    };
    let tasks: Vec<_> = (1..=8u8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                match s
                    .put_response_if_absent(key, response(i, at(1000)))
                    .await
                    .unwrap()
                {
                    PutResponse::Stored => (true, response(i, at(1000))),
                    PutResponse::Existing(r) => (false, r),
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| r.0).count(), 1);
    let winner = &results.iter().find(|r| r.0).unwrap().1;
    assert!(results.iter().all(|r| &r.1 == winner));
}

/// An expired stored response is not served.
pub async fn expired_response_is_not_served<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let key = ResponseKey {
        session: SessionId([1; 16]),
        seq: 1,
    };
    s.put_response_if_absent(key, response(1, at(100)))
        .await
        .unwrap();
    assert!(s.stored_response(key, at(99)).await.unwrap().is_some());
    assert!(s.stored_response(key, at(100)).await.unwrap().is_none());
}

// ---- counters and lock-outs ----

/// Each window counts on its own, and each subject and scope on its own.
pub async fn counter_windows_are_independent<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let k = CounterKey::new(CounterScope::Signatures, device_id(1).as_bytes().to_vec());
    let k2 = CounterKey::new(CounterScope::Signatures, device_id(2).as_bytes().to_vec());
    let k3 = CounterKey::new(CounterScope::PinAttempts, device_id(1).as_bytes().to_vec());
    for expected in 1..=3 {
        assert_eq!(
            s.increment_counter(k.clone(), at(0), at(3_600_000))
                .await
                .unwrap(),
            expected
        );
    }
    assert_eq!(
        s.increment_counter(k.clone(), at(3_600_000), at(7_200_000))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.increment_counter(k2, at(0), at(3_600_000)).await.unwrap(),
        1
    );
    assert_eq!(
        s.increment_counter(k3, at(0), at(3_600_000)).await.unwrap(),
        1
    );
}

/// Concurrent increments are never lost.
pub async fn concurrent_increments_are_never_lost<H: Harness>(h: &H) {
    let s = Arc::new(h.fresh().await);
    let k = CounterKey::new(CounterScope::Signatures, b"dev".to_vec());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (s, k) = (Arc::clone(&s), k.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..25 {
                    seen.push(
                        s.increment_counter(k.clone(), T0, at(3_600_000))
                            .await
                            .unwrap(),
                    );
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=200).collect::<Vec<u64>>(),
        "every increment returned a distinct count"
    );
}

/// The flow-2 request counters (per sponsor, per joiner) count apart from each other and from
/// every other scope for the same subject, and keep their counts across a restart: a sponsor
/// cannot get a fresh budget by waiting for the server to restart.
pub async fn peer_request_counters_count_per_scope_and_survive_a_restart<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let subject = device_id(1).as_bytes().to_vec();
    let sponsor = CounterKey::new(CounterScope::PeerSponsorRequests, subject.clone());
    let joiner = CounterKey::new(CounterScope::PeerJoinerRequests, subject.clone());
    let signatures = CounterKey::new(CounterScope::Signatures, subject);
    assert_ne!(
        CounterScope::PeerSponsorRequests.as_str(),
        CounterScope::PeerJoinerRequests.as_str()
    );
    for expected in 1..=2 {
        assert_eq!(
            s.increment_counter(sponsor.clone(), T0, at(7_200_000))
                .await
                .unwrap(),
            expected
        );
    }
    assert_eq!(
        s.increment_counter(joiner.clone(), T0, at(7_200_000))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.increment_counter(signatures, T0, at(7_200_000))
            .await
            .unwrap(),
        1
    );
    let Some(s) = h.reopen(s).await else { return };
    assert_eq!(
        s.increment_counter(sponsor, T0, at(7_200_000))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.increment_counter(joiner, T0, at(7_200_000))
            .await
            .unwrap(),
        2
    );
}

const POLICY: LockoutPolicy = LockoutPolicy {
    max_failures: 3,
    lockout: Duration::from_secs(60),
};

/// The limit-th failure locks the subject out; each later lock-out is twice as long.
pub async fn failures_lock_out_at_the_limit_and_lockouts_double<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let k = CounterKey::new(CounterScope::PinAttempts, b"dev".to_vec());
    assert_eq!(
        s.record_failure(k.clone(), POLICY, at(0))
            .await
            .unwrap()
            .failures,
        1
    );
    assert_eq!(
        s.record_failure(k.clone(), POLICY, at(1))
            .await
            .unwrap()
            .failures,
        2
    );
    let locked = s.record_failure(k.clone(), POLICY, at(2)).await.unwrap();
    assert_eq!(
        locked,
        AttemptState {
            failures: 0,
            lockouts: 1,
            locked_until: Some(at(60_002))
        }
    );
    assert!(locked.is_locked(at(60_001)) && !locked.is_locked(at(60_002)));
    assert_eq!(s.attempt_state(k.clone()).await.unwrap(), locked);
    for i in 0..3 {
        s.record_failure(k.clone(), POLICY, at(70_000 + i))
            .await
            .unwrap();
    }
    let second = s.attempt_state(k.clone()).await.unwrap();
    assert_eq!(second.lockouts, 2);
    assert_eq!(second.locked_until, Some(at(70_002 + 120_000)));
}

/// Failures reported while locked do not count.
pub async fn failures_while_locked_are_not_counted<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let k = CounterKey::new(CounterScope::PinAttempts, b"dev".to_vec());
    for i in 0..3 {
        s.record_failure(k.clone(), POLICY, at(i)).await.unwrap();
    }
    let locked = s.attempt_state(k.clone()).await.unwrap();
    for i in 0..10 {
        assert_eq!(
            s.record_failure(k.clone(), POLICY, at(100 + i))
                .await
                .unwrap(),
            locked
        );
    }
}

/// Concurrent failures are never lost: 3 × 4 racing failures make exactly 4 lock-outs.
pub async fn concurrent_failures_are_never_lost<H: Harness>(h: &H) {
    let s = Arc::new(h.fresh().await);
    let k = CounterKey::new(CounterScope::CodeAttempts, b"dev".to_vec());
    // Zero-length lock-outs so no failure is dropped for being inside one.
    let policy = LockoutPolicy {
        max_failures: 3,
        lockout: Duration::ZERO,
    };
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (s, k) = (Arc::clone(&s), k.clone());
            tokio::spawn(async move { s.record_failure(k, policy, T0).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let st = s.attempt_state(k).await.unwrap();
    assert_eq!((st.lockouts, st.failures), (4, 0));
}

/// A success clears failures but keeps the lock-out count, so the next lock-out is longer.
pub async fn clearing_failures_keeps_the_lockout_history<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let k = CounterKey::new(CounterScope::PinAttempts, b"dev".to_vec());
    for i in 0..3 {
        s.record_failure(k.clone(), POLICY, at(i)).await.unwrap();
    }
    s.record_failure(k.clone(), POLICY, at(70_000))
        .await
        .unwrap();
    s.clear_failures(k.clone()).await.unwrap();
    let st = s.attempt_state(k.clone()).await.unwrap();
    assert_eq!((st.failures, st.lockouts), (0, 1));
    s.clear_failures(CounterKey::new(
        CounterScope::PinAttempts,
        b"never".to_vec(),
    ))
    .await
    .unwrap();
}

// ---- outcomes, scan reports, purge ----

fn scan(dev: u8, t: u64) -> ScanReport {
    ScanReport {
        device: device_id(dev),
        session: SessionId([dev; 16]),
        networks: vec![
            SeenNetwork {
                ssid: b"alice-home".to_vec(),
                rssi_dbm: -48,
                band: Bands::GHZ_5,
                channel: 36,
                security: SecurityType::Wpa3Personal,
            },
            SeenNetwork {
                ssid: vec![0xff; 32],
                rssi_dbm: -91,
                band: Bands::GHZ_2_4,
                channel: 11,
                security: SecurityType::Wpa2Personal,
            },
        ],
        at: at(t),
    }
}

fn outcome(dev: u8, kind: OutcomeKind, t: u64) -> OutcomeRecord {
    OutcomeRecord {
        device: device_id(dev),
        session: SessionId([dev; 16]),
        network: None,
        kind,
        at: at(t),
    }
}

/// Outcomes and scan reports read back per device, in order.
pub async fn outcomes_and_scan_reports_round_trip<H: Harness>(h: &H) {
    let s = h.fresh().await;
    let a = s.create_account("alice", T0).await.unwrap();
    let n = s.add_network(network(a, "alice-home"), T0).await.unwrap();
    let mut joined = outcome(1, OutcomeKind::Joined, 2);
    joined.network = Some(n);
    s.record_outcome(outcome(1, OutcomeKind::WrongPassphrase, 1))
        .await
        .unwrap();
    s.record_outcome(joined.clone()).await.unwrap();
    s.record_outcome(outcome(2, OutcomeKind::DhcpFailed, 1))
        .await
        .unwrap();
    assert_eq!(
        s.outcomes_of_device(&device_id(1)).await.unwrap(),
        vec![outcome(1, OutcomeKind::WrongPassphrase, 1), joined]
    );
    s.record_scan_report(scan(1, 1)).await.unwrap();
    s.record_scan_report(scan(2, 1)).await.unwrap();
    assert_eq!(
        s.scan_reports_of_device(&device_id(1)).await.unwrap(),
        vec![scan(1, 1)]
    );
}

/// Purging removes expired sessions, nonces, responses and counters and reports and outcomes
/// past retention, and nothing else.
pub async fn purge_removes_only_what_expired<H: Harness>(h: &H) {
    let (s, a, _, r) = populated(h).await;
    s.apply_association_change(change(AssociationAction::Add, 1, a, r, 0))
        .await
        .unwrap();
    s.compare_and_swap_session(SessionId([1; 16]), None, vec![1], at(100), T0)
        .await
        .unwrap();
    s.compare_and_swap_session(SessionId([2; 16]), None, vec![2], at(10_000), T0)
        .await
        .unwrap();
    s.issue_nonce(Nonce([1; 16]), SessionId([1; 16]), at(100))
        .await
        .unwrap();
    s.issue_nonce(Nonce([2; 16]), SessionId([1; 16]), at(10_000))
        .await
        .unwrap();
    let rk = |seq| ResponseKey {
        session: SessionId([1; 16]),
        seq,
    };
    s.put_response_if_absent(rk(1), response(1, at(100)))
        .await
        .unwrap();
    s.put_response_if_absent(rk(2), response(2, at(10_000)))
        .await
        .unwrap();
    let ck = CounterKey::new(CounterScope::Signatures, b"d".to_vec());
    s.increment_counter(ck.clone(), at(0), at(100))
        .await
        .unwrap();
    s.increment_counter(ck.clone(), at(100), at(10_000))
        .await
        .unwrap();
    s.record_scan_report(scan(1, 0)).await.unwrap();
    s.record_scan_report(scan(1, 900)).await.unwrap();
    s.record_outcome(outcome(1, OutcomeKind::Joined, 0))
        .await
        .unwrap();
    s.record_outcome(outcome(1, OutcomeKind::Joined, 1_500))
        .await
        .unwrap();
    let retention = Retention {
        scan_reports: Duration::from_millis(500),
        outcomes: Duration::from_millis(1_000),
    };
    let report = s.purge_expired(at(1_200), retention).await.unwrap();
    assert_eq!(
        (
            report.sessions,
            report.nonces,
            report.responses,
            report.counters,
            report.scan_reports,
            report.outcomes
        ),
        (1, 1, 1, 1, 1, 1)
    );
    assert!(
        s.session(SessionId([2; 16]), at(1_000))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.consume_nonce(Nonce([1; 16]), SessionId([1; 16]), at(1_000))
            .await
            .unwrap(),
        NonceUse::Unknown
    );
    assert_eq!(
        s.consume_nonce(Nonce([2; 16]), SessionId([1; 16]), at(1_000))
            .await
            .unwrap(),
        NonceUse::Consumed
    );
    assert!(s.stored_response(rk(2), at(1_000)).await.unwrap().is_some());
    assert_eq!(
        s.increment_counter(ck, at(100), at(10_000)).await.unwrap(),
        2
    );
    assert_eq!(
        s.scan_reports_of_device(&device_id(1)).await.unwrap(),
        vec![scan(1, 900)]
    );
    assert_eq!(
        s.outcomes_of_device(&device_id(1)).await.unwrap(),
        vec![outcome(1, OutcomeKind::Joined, 1_500)]
    );
    // What never expires is still there.
    assert_eq!(
        s.associations_of_device(&device_id(1)).await.unwrap().len(),
        1
    );
    assert_eq!(s.audit_log(0, 10).await.unwrap().len(), 1);
    assert!(s.device(&device_id(1)).await.unwrap().is_some());
}

/// Everything written is there after closing and reopening the store.
pub async fn everything_survives_a_restart<H: Harness>(h: &H) {
    let (s, a, _, r) = populated(h).await;
    let n = s.add_network(network(a, "alice-home"), T0).await.unwrap();
    s.apply_association_change(change(AssociationAction::Add, 1, a, r, 1))
        .await
        .unwrap();
    let k = s
        .add_server_key(KeyRole::SetupSigning, server_key(1), T0)
        .await
        .unwrap();
    s.revoke_server_key(&k, None, at(3)).await.unwrap();
    s.compare_and_swap_session(SessionId([1; 16]), None, b"state".to_vec(), at(60_000), T0)
        .await
        .unwrap();
    s.issue_nonce(Nonce([1; 16]), SessionId([1; 16]), at(60_000))
        .await
        .unwrap();
    s.issue_nonce(Nonce([2; 16]), SessionId([1; 16]), at(60_000))
        .await
        .unwrap();
    s.consume_nonce(Nonce([1; 16]), SessionId([1; 16]), T0)
        .await
        .unwrap();
    let rk = ResponseKey {
        session: SessionId([1; 16]),
        seq: 1,
    };
    s.put_response_if_absent(rk, response(1, at(60_000)))
        .await
        .unwrap();
    let pin = CounterKey::new(CounterScope::PinAttempts, device_id(1).as_bytes().to_vec());
    for i in 0..3 {
        s.record_failure(pin.clone(), POLICY, at(i)).await.unwrap();
    }
    s.record_outcome(outcome(1, OutcomeKind::Joined, 5))
        .await
        .unwrap();
    s.record_scan_report(scan(1, 5)).await.unwrap();

    let Some(s) = h.reopen(s).await else { return };

    assert_eq!(s.networks_of_account(a).await.unwrap()[0].id, n);
    assert_eq!(
        s.networks_of_account(a).await.unwrap()[0].passphrase,
        Passphrase::new(PASSPHRASE).unwrap()
    );
    assert_eq!(s.device(&device_id(1)).await.unwrap().unwrap(), device(1));
    assert_eq!(
        s.associations_of_device(&device_id(1)).await.unwrap()[0].account,
        a
    );
    assert_eq!(s.audit_log(0, 10).await.unwrap().len(), 1);
    assert_eq!(s.server_keys().await.unwrap()[0].state, KeyState::Revoked);
    assert_eq!(
        s.session(SessionId([1; 16]), T0)
            .await
            .unwrap()
            .unwrap()
            .state,
        b"state"
    );
    assert_eq!(
        s.consume_nonce(Nonce([1; 16]), SessionId([1; 16]), T0)
            .await
            .unwrap(),
        NonceUse::AlreadyUsed
    );
    assert_eq!(
        s.consume_nonce(Nonce([2; 16]), SessionId([1; 16]), T0)
            .await
            .unwrap(),
        NonceUse::Consumed
    );
    assert_eq!(
        s.stored_response(rk, T0).await.unwrap(),
        Some(response(1, at(60_000)))
    );
    assert!(
        s.attempt_state(pin).await.unwrap().is_locked(at(10)),
        "lock-outs are kept across restarts"
    );
    assert_eq!(s.outcomes_of_device(&device_id(1)).await.unwrap().len(), 1);
    assert_eq!(
        s.scan_reports_of_device(&device_id(1)).await.unwrap(),
        vec![scan(1, 5)]
    );
}
