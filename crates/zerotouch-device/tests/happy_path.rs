//! A whole setup, from the scan to the revocation check, with and without a PIN.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use zerotouch_core::Signer as _;
use zerotouch_core::flow1::RevocationStatus;
use zerotouch_core::{KeyRole, Passphrase};
use zerotouch_device::*;

fn happy_path(pin: Option<&str>) {
    let mut dev = Dev::new(pin);
    let hello = dev.hello();
    let (_, h, _) = read_hello(&hello);
    assert_eq!(h.trusted_keys, vec![setup_a().key_id(), setup_b().key_id()]);
    let stored = dev.s.state().stored().unwrap();
    assert_eq!(stored.in_progress, Some(session_of(&hello)));

    let opts = ProofOpts {
        pin_required: pin.is_some(),
        ..ProofOpts::default()
    };
    let (wire, mut setup) = proof(&hello, &setup_a(), opts);
    assert_eq!(
        dev.recv(Path::Setup, &wire),
        vec![Event::ServerAuthenticated {
            key_id: setup_a().key_id()
        }]
    );
    let req = setup.read_request(&dev.sent().bytes);
    assert_eq!(
        req.report
            .pin
            .as_ref()
            .map(|p| p.expose_secret().to_owned()),
        pin.map(str::to_owned)
    );
    let resp = setup.response(&req, CREDS);
    assert_eq!(
        dev.recv(Path::Setup, &resp),
        vec![Event::Join {
            ssid: b"home-5g".to_vec(),
            security: 2,
            passphrase: Passphrase::new(b"5g passphrase").unwrap(),
        }]
    );
    assert_eq!(dev.s.poll_timeout(), None, "joining waits for the firmware");

    assert_eq!(
        dev.join(JoinResult::Joined),
        vec![Event::Joined {
            ssid: b"home-5g".to_vec()
        }]
    );
    let report = dev.sent();
    assert_eq!(report.path, Path::Home);
    let (outcome, wire) = ack(&report.bytes, &setup_a(), None);
    assert_eq!(outcome.setup_session, session_of(&hello));
    assert_eq!(outcome.ssid, b"home-5g");
    assert_eq!(
        dev.recv(Path::Home, &wire),
        vec![Event::OutcomeAcknowledged]
    );

    let query = dev.sent();
    assert_eq!(query.path, Path::Home);
    let (_, q, _) = read_query(&query.bytes);
    assert_eq!(q.key_id, setup_a().key_id());
    let v = verdict(
        &query.bytes,
        &verdict_key(),
        RevocationStatus::Good,
        None,
        None,
    );
    assert_eq!(
        dev.recv(Path::Home, &v),
        vec![Event::Complete {
            revocation_checked: true
        }]
    );
    assert!(dev.s.is_idle());
    assert_eq!(dev.s.poll_timeout(), None);
    assert!(dev.transmits().is_empty());
    let stored = dev.s.state().stored().unwrap();
    assert_eq!(stored, PersistedState::default());
    // Saved at the session start and at completion.
    assert_eq!(dev.s.state().saves(), 2);
    assert_eq!(
        dev.s
            .pinned_keys()
            .trusted_key_ids(KeyRole::SetupSigning)
            .len(),
        2
    );
}

#[test]
fn happy_path_without_pin() {
    happy_path(None);
}

#[test]
fn happy_path_with_pin() {
    happy_path(Some(PIN));
}
