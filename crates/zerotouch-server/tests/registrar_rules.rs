//! The registrar policy, one rule per test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use zerotouch_core::{Instant, Pin};
use zerotouch_server::*;
use zerotouch_store::*;
use zerotouch_store_suite::fixtures;

async fn owners<St: Store>(w: &World<St>) -> Vec<AccountId> {
    w.service
        .store()
        .associations_of_device(&fixtures::device_id(1))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.account)
        .collect()
}

#[tokio::test]
async fn scan_of_an_unowned_device_records_it_with_the_label_and_registrar() {
    let w = world(ServiceConfig::default()).await;
    let got = w
        .service
        .register_device(
            w.registrar,
            &label(2, false),
            w.other_account,
            ReassociationProof::None,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(got, Registration::Added);
    let history = w
        .service
        .store()
        .device_history(&fixtures::device_id(2))
        .await
        .unwrap();
    let change = &history[0].change;
    assert_eq!(change.registrar, w.registrar);
    let scanned = change.label.as_ref().unwrap();
    assert!(!scanned.had_pin);
}

#[tokio::test]
async fn scanning_again_for_the_same_account_changes_nothing() {
    let w = world(ServiceConfig::default()).await;
    let got = w
        .service
        .register_device(
            w.registrar,
            &label(1, false),
            w.account,
            ReassociationProof::None,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(got, Registration::AlreadyRegistered);
}

#[tokio::test]
async fn a_scan_alone_cannot_move_a_device_to_another_account() {
    let w = world(ServiceConfig::default()).await;
    let err = w
        .service
        .register_device(
            w.registrar,
            &label(1, false),
            w.other_account,
            ReassociationProof::None,
            T0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::ReassociationNeedsProof));
    assert_eq!(owners(&w).await, vec![w.account]);
}

#[tokio::test]
async fn the_in_box_pin_moves_a_device() {
    let w = world(ServiceConfig::default()).await;
    // On the label inside the box…
    let got = w
        .service
        .register_device(
            w.registrar,
            &label(1, true),
            w.other_account,
            ReassociationProof::None,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        Registration::Reassociated {
            from: vec![w.account]
        }
    );
    assert_eq!(owners(&w).await, vec![w.other_account]);
    // …or typed by the buyer.
    let got = w
        .service
        .register_device(
            w.registrar,
            &label(1, false),
            w.account,
            ReassociationProof::Pin(Pin::new(fixtures::PIN).unwrap()),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        Registration::Reassociated {
            from: vec![w.other_account]
        }
    );
}

#[tokio::test]
async fn wrong_in_box_pins_are_counted_and_lock_out() {
    let w = world(ServiceConfig::default()).await;
    let wrong = || ReassociationProof::Pin(Pin::new("000000").unwrap());
    for _ in 0..5 {
        let err = w
            .service
            .register_device(w.registrar, &label(1, false), w.other_account, wrong(), T0)
            .await
            .unwrap_err();
        assert!(matches!(err, ServerError::WrongPin));
    }
    // Locked now: even the right PIN waits.
    let err = w
        .service
        .register_device(
            w.registrar,
            &label(1, false),
            w.other_account,
            ReassociationProof::Pin(Pin::new(fixtures::PIN).unwrap()),
            Instant(T0.0 + 1_000),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::Locked { .. }));
    assert_eq!(owners(&w).await, vec![w.account]);
}

#[tokio::test]
async fn the_current_owners_consent_moves_a_device_and_nobody_elses_does() {
    let w = world(ServiceConfig::default()).await;
    let err = w
        .service
        .register_device(
            w.registrar,
            &label(1, false),
            w.other_account,
            ReassociationProof::OwnerConsent {
                owner: w.other_account,
            },
            T0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::ConsentNotFromOwner));
    let got = w
        .service
        .register_device(
            w.registrar,
            &label(1, false),
            w.other_account,
            ReassociationProof::OwnerConsent { owner: w.account },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        Registration::Reassociated {
            from: vec![w.account]
        }
    );
}

#[tokio::test]
async fn a_disabled_registrar_is_refused() {
    let w = world(ServiceConfig::default()).await;
    w.service
        .store()
        .set_registrar_disabled(w.registrar, true)
        .await
        .unwrap();
    let err = w
        .service
        .register_device(
            w.registrar,
            &label(2, false),
            w.account,
            ReassociationProof::None,
            T0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::RegistrarNotAllowed));
}

#[tokio::test]
async fn a_label_that_does_not_match_the_record_is_refused() {
    let w = world(ServiceConfig::default()).await;
    let mut l = label(2, false);
    l.product_number = "OTHER".into();
    let err = w
        .service
        .register_device(w.registrar, &l, w.account, ReassociationProof::None, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::LabelMismatch));
    let mut l = label(2, false);
    l.device_type = 99;
    let err = w
        .service
        .register_device(w.registrar, &l, w.account, ReassociationProof::None, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::LabelMismatch));
}

#[tokio::test]
async fn a_label_of_an_unknown_device_is_refused() {
    let w = world(ServiceConfig::default()).await;
    let err = w
        .service
        .register_device(
            w.registrar,
            &label(9, false),
            w.account,
            ReassociationProof::None,
            T0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::UnknownDevice));
}
