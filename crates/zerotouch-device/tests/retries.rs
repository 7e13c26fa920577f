//! Timeouts, retransmissions, the session budget and unsigned errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use zerotouch_core::flow1::RevocationStatus;
use zerotouch_core::{ErrorCode, MessageTag};
use zerotouch_device::*;

#[test]
fn timeout_retransmits_identical_bytes() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let mut sent_at = dev.now;
    let mut waits = vec![];
    for _ in 0..retry().max_retransmits {
        let at = dev.fire();
        waits.push(at.0 - sent_at.0);
        sent_at = at;
        assert_eq!(dev.sent().bytes, hello, "identical bytes");
    }
    // Each wait doubles the last.
    assert_eq!(waits, vec![1000, 2000]);

    // The credential request too.
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let (wire, setup) = proof(&hello, &setup_a(), ProofOpts::default());
    dev.recv(Path::Setup, &wire);
    let request = dev.sent().bytes;
    dev.fire();
    let again = dev.sent().bytes;
    assert_eq!(again, request);
    setup.read_request(&again);
}

#[test]
fn retries_are_bounded_and_back_off() {
    let policy = retry();
    let mut dev = Dev::new(None);
    let mut hellos = vec![dev.hello()];
    let mut session_gaps = vec![];
    let mut failures = 0;
    let mut last_failure = dev.now;
    for _ in 0..100 {
        if dev.s.poll_timeout().is_none() {
            break;
        }
        dev.fire();
        for e in dev.events() {
            match e {
                Event::SessionFailed { reason } => {
                    assert_eq!(reason, Failure::Timeout);
                    failures += 1;
                    last_failure = dev.now;
                }
                Event::ScanRequested => {
                    session_gaps.push(dev.now.0 - last_failure.0);
                    dev.scan();
                }
                Event::GaveUp { reason } => assert_eq!(reason, Failure::Timeout),
                other => panic!("unexpected {other:?}"),
            }
        }
        hellos.extend(dev.transmits().into_iter().map(|t| t.bytes));
    }
    // max_sessions sessions, each sent once plus max_retransmits times.
    let per_session = 1 + policy.max_retransmits as usize;
    assert_eq!(hellos.len(), policy.max_sessions as usize * per_session);
    assert_eq!(failures, policy.max_sessions);
    // The back-off between sessions doubles.
    assert_eq!(session_gaps, vec![1000, 2000]);
    // Each session is a new one: fresh session ids.
    let mut ids: Vec<_> = hellos.iter().map(|h| session_of(h)).collect();
    ids.dedup();
    assert_eq!(ids.len(), policy.max_sessions as usize);
    // Gave up: no timer, nothing more to send, the marker cleared.
    assert_eq!(dev.s.poll_timeout(), None);
    assert!(dev.s.is_idle());
    assert_eq!(dev.s.state().stored().unwrap().in_progress, None);
}

#[test]
fn unsigned_error_is_only_a_hint() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let sid = session_of(&hello);
    let timer = dev.s.poll_timeout().unwrap();
    let ev = dev.recv(
        Path::Setup,
        &error(sid, MessageTag::ServerProof, ErrorCode::NotAuthorized, 60),
    );
    assert_eq!(
        ev,
        vec![Event::ServerHint {
            code: ErrorCode::NotAuthorized,
            retry_after_s: 60
        }]
    );
    // No retry before the server's delay, nothing sent, nothing failed.
    assert!(dev.transmits().is_empty());
    let retry_at = dev.s.poll_timeout().unwrap();
    assert!(retry_at > timer);
    // The server's delay is honoured up to the longest timeout (8 s here), no further: an
    // unsigned error cannot park the device.
    assert_eq!(retry_at.0, dev.now.0 + 8_000);
    // An error cannot bring the retry forward.
    dev.recv(
        Path::Setup,
        &error(sid, MessageTag::ServerProof, ErrorCode::Internal, 0),
    );
    assert_eq!(dev.s.poll_timeout(), Some(retry_at));
    // The genuine proof, arriving meanwhile, is still accepted.
    let (wire, _) = proof(&hello, &setup_a(), ProofOpts::default());
    dev.recv(Path::Setup, &wire);
    assert_eq!(dev.sent().path, Path::Setup);

    // At the revocation check, an error does not drop the key either.
    let mut dev = Dev::new(None);
    let query = to_query(&mut dev);
    let rsid = session_of(&query);
    dev.recv(
        Path::Home,
        &error(
            rsid,
            MessageTag::RevocationVerdict,
            ErrorCode::NotAuthorized,
            0,
        ),
    );
    assert!(dev.s.pinned_keys().dropped().is_empty());
    // Retried with the identical query at the timer.
    dev.fire();
    let again = dev.sent().bytes;
    assert_eq!(again, query);
    let v = verdict(&again, &verdict_key(), RevocationStatus::Good, None, None);
    assert_eq!(
        dev.recv(Path::Home, &v),
        vec![Event::Complete {
            revocation_checked: true
        }]
    );
}

#[test]
fn injected_errors_cannot_hold_a_session_open() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let sid = session_of(&hello);
    let started = dev.now;
    // An attacker answers every wait with an error asking for the longest delay.
    let mut failed = false;
    for _ in 0..20 {
        dev.recv(
            Path::Setup,
            &error(
                sid,
                MessageTag::ServerProof,
                ErrorCode::RateLimited,
                u32::MAX,
            ),
        );
        let timer = dev.s.poll_timeout().unwrap();
        assert!(
            timer.0 <= dev.now.0 + 8_000,
            "a hint waits at most the longest timeout"
        );
        dev.fire();
        if dev
            .events()
            .iter()
            .any(|e| matches!(e, Event::SessionFailed { .. }))
        {
            failed = true;
            break;
        }
        dev.transmits();
    }
    assert!(failed, "the session fails within its retransmission budget");
    assert!(dev.now.0 - started.0 <= 3 * 8_000, "bounded in time too");
}
