//! Joining: the device's own scan orders the credentials; failures move to the next; when
//! all fail, it asks again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use zerotouch_device::*;

#[test]
fn credentials_are_tried_strongest_first() {
    let mut dev = Dev::new(None);
    // The server lists home (loss 70), twin (40, WPA2), home-5g (40, WPA3).
    to_join(&mut dev, ProofOpts::default());
    let mut tried = vec![b"home-5g".to_vec()];
    loop {
        let ev = dev.join(JoinResult::Failed(JoinFailure::NetworkGone));
        let next = join_ssids(&ev);
        if next.is_empty() {
            break;
        }
        tried.extend(next);
    }
    // Lowest loss first; at equal loss WPA3 before WPA2; the server's order does not count.
    assert_eq!(
        tried,
        vec![b"home-5g".to_vec(), b"twin".to_vec(), b"home".to_vec()]
    );
}

#[test]
fn failed_join_tries_next_credential() {
    let mut dev = Dev::new(None);
    to_join(&mut dev, ProofOpts::default());
    let ev = dev.join(JoinResult::Failed(JoinFailure::WrongPassphrase));
    assert_eq!(
        ev,
        vec![Event::Join {
            ssid: b"twin".to_vec(),
            security: 1,
            passphrase: zerotouch_core::Passphrase::new(b"twin passphrase").unwrap(),
        }]
    );
    assert!(dev.transmits().is_empty());
    assert_eq!(
        dev.join(JoinResult::Joined),
        vec![Event::Joined {
            ssid: b"twin".to_vec()
        }]
    );
    let (report, _) = ack(&dev.sent().bytes, &setup_a(), None);
    assert_eq!(report.ssid, b"twin");
}

#[test]
fn all_joins_failed_asks_again_with_fresh_scan() {
    let mut dev = Dev::new(None);
    let (setup, _) = to_join(&mut dev, ProofOpts::default());
    dev.join(JoinResult::Failed(JoinFailure::DhcpFailed));
    dev.join(JoinResult::Failed(JoinFailure::WrongPassphrase));
    let ev = dev.join(JoinResult::Failed(JoinFailure::NetworkGone));
    assert_eq!(
        ev,
        vec![Event::SessionFailed {
            reason: Failure::AllJoinsFailed
        }]
    );
    // Counted against the budget, and saved.
    assert_eq!(dev.s.state().stored().unwrap().failed_sessions, 1);
    // After the back-off: a fresh scan, then a new session.
    let before = dev.now;
    let at = dev.fire();
    assert_eq!(at.0 - before.0, retry().initial_timeout_ms);
    assert_eq!(dev.events(), vec![Event::ScanRequested]);
    assert!(dev.transmits().is_empty(), "no hello before the scan");
    dev.scan();
    let hello = dev.sent().bytes;
    assert_ne!(session_of(&hello), setup.sid);
}

#[test]
fn join_results_out_of_turn_are_ignored() {
    let mut dev = Dev::new(None);
    dev.hello();
    let timer = dev.s.poll_timeout();
    assert!(dev.join(JoinResult::Joined).is_empty());
    assert!(dev.transmits().is_empty());
    assert_eq!(dev.s.poll_timeout(), timer);
}
