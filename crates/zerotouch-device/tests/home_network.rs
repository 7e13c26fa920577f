//! Over the home network: the outcome report and the revocation check. Only a verified
//! verdict about the queried key, answering this query, drops a key.
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
use zerotouch_core::{KeyRole, Nonce, SignatureError};
use zerotouch_device::*;

/// Lets every remaining revocation attempt time out; returns the events.
fn exhaust(dev: &mut Dev) -> Vec<Event> {
    let mut events = vec![];
    while dev.s.poll_timeout().is_some() {
        dev.fire();
        dev.transmits();
        events.extend(dev.events());
    }
    events
}

fn assert_key_kept(dev: &Dev) {
    assert!(dev.s.pinned_keys().dropped().is_empty());
    assert!(dev.s.state().stored().unwrap().dropped_keys.is_empty());
    assert_eq!(
        dev.s.pinned_keys().trusted_key_ids(KeyRole::SetupSigning)[0],
        setup_a().key_id()
    );
}

#[test]
fn outcome_ack_with_wrong_nonce_is_ignored() {
    let mut dev = Dev::new(None);
    to_join(&mut dev, ProofOpts::default());
    dev.join(JoinResult::Joined);
    let report = dev.sent().bytes;
    let (_, stale) = ack(&report, &setup_a(), Some(Nonce([9; 16])));
    let ev = dev.recv(Path::Home, &stale);
    assert_eq!(Dev::refusals(&ev), vec![Refusal::WrongNonce]);
    assert!(dev.transmits().is_empty(), "still waiting for the ack");
    let (_, forged) = ack(&report, &rogue(), None);
    assert_eq!(
        Dev::refusals(&dev.recv(Path::Home, &forged)),
        vec![Refusal::Signature(SignatureError::UnknownKey)]
    );
    let (_, good) = ack(&report, &setup_a(), None);
    assert_eq!(
        dev.recv(Path::Home, &good),
        vec![Event::OutcomeAcknowledged]
    );
    assert_eq!(dev.sent().path, Path::Home);
}

#[test]
fn missing_outcome_ack_still_leads_to_the_revocation_check() {
    let mut dev = Dev::new(None);
    to_join(&mut dev, ProofOpts::default());
    dev.join(JoinResult::Joined);
    let report = dev.sent().bytes;
    for _ in 0..retry().max_retransmits {
        dev.fire();
        assert_eq!(dev.sent().bytes, report);
    }
    dev.fire();
    let (_, q, _) = read_query(&dev.sent().bytes);
    assert_eq!(q.key_id, setup_a().key_id());
}

#[test]
fn verified_revoked_verdict_drops_key_and_restarts_with_replacement() {
    let mut dev = Dev::new(None);
    let query = to_query(&mut dev);
    let v = revoked(&query, Some(setup_b().key_id()));
    let saves = dev.s.state().saves();
    assert_eq!(
        dev.recv(Path::Home, &v),
        vec![
            Event::KeyRevoked {
                key_id: setup_a().key_id(),
                replacement: Some(setup_b().key_id())
            },
            Event::LeaveNetwork,
            Event::ScanRequested,
        ]
    );
    assert_eq!(dev.s.pinned_keys().dropped(), &[setup_a().key_id()]);
    assert_eq!(dev.s.pinned_keys().indication(), Some(setup_b().key_id()));
    let stored = dev.s.state().stored().unwrap();
    assert_eq!(stored.dropped_keys, vec![setup_a().key_id()]);
    assert_eq!(stored.indication, Some(setup_b().key_id()));
    assert!(dev.s.state().saves() > saves);
    assert_eq!(dev.s.trigger(), Some(Trigger::KeyRevoked));
    // The new session trusts the replacement only.
    dev.scan();
    let hello = dev.sent().bytes;
    only_b_is_trusted(&mut dev, &hello);
}

#[test]
fn revoked_verdict_with_unknown_replacement_falls_back_to_each_key() {
    let mut dev = Dev::new(None);
    let query = to_query(&mut dev);
    let v = revoked(&query, Some(rogue().key_id()));
    let ev = dev.recv(Path::Home, &v);
    assert_eq!(
        ev[0],
        Event::KeyRevoked {
            key_id: setup_a().key_id(),
            replacement: None
        }
    );
    assert_eq!(dev.s.pinned_keys().indication(), None);
    assert_eq!(
        dev.s.pinned_keys().trusted_key_ids(KeyRole::SetupSigning),
        vec![setup_b().key_id()]
    );
}

#[test]
fn verdict_signed_by_queried_key_is_not_acted_on() {
    let mut dev = Dev::new(None);
    let query = to_query(&mut dev);
    // The queried key itself says "revoked" (or, if stolen, "good"): neither counts.
    for status in [RevocationStatus::Revoked, RevocationStatus::Good] {
        let v = verdict(&query, &setup_a(), status, None, None);
        assert_eq!(
            Dev::refusals(&dev.recv(Path::Home, &v)),
            vec![Refusal::SignedByQueriedKey]
        );
    }
    assert_key_kept(&dev);
    let ev = exhaust(&mut dev);
    assert_eq!(
        ev.last(),
        Some(&Event::Complete {
            revocation_checked: false
        })
    );
    assert_key_kept(&dev);
}

#[test]
fn unverified_revoked_verdict_keeps_the_key() {
    let mut dev = Dev::new(None);
    let query = to_query(&mut dev);
    let forged = verdict(&query, &rogue(), RevocationStatus::Revoked, None, None);
    assert_eq!(
        Dev::refusals(&dev.recv(Path::Home, &forged)),
        vec![Refusal::Signature(SignatureError::UnknownKey)]
    );
    let mut tampered = verdict(
        &query,
        &verdict_key(),
        RevocationStatus::Revoked,
        None,
        None,
    );
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        Dev::refusals(&dev.recv(Path::Home, &tampered)),
        vec![Refusal::Signature(SignatureError::Invalid)]
    );
    assert_key_kept(&dev);
    // Retried a bounded number of times with back-off, each a fresh query, then done
    // without a verdict.
    let mut queries = vec![query];
    let mut events = vec![];
    while dev.s.poll_timeout().is_some() {
        dev.fire();
        queries.extend(dev.transmits().into_iter().map(|t| t.bytes));
        events.extend(dev.events());
    }
    let mut rsids: Vec<_> = queries.iter().map(|q| session_of(q)).collect();
    rsids.dedup();
    assert_eq!(rsids.len(), retry().max_sessions as usize);
    assert_eq!(
        events,
        vec![Event::Complete {
            revocation_checked: false
        }]
    );
    assert_key_kept(&dev);
}

#[test]
fn stale_verdict_with_old_nonce_keeps_the_key() {
    let mut dev = Dev::new(None);
    let first = to_query(&mut dev);
    // The first query goes unanswered until a second, fresh one goes out.
    let mut second = None;
    while second.is_none() {
        dev.fire();
        second = dev
            .transmits()
            .into_iter()
            .map(|t| t.bytes)
            .find(|q| *q != first);
    }
    let second = second.unwrap();
    let (_, q1, _) = read_query(&first);
    // A genuine verdict for the first query, replayed now.
    let replay = verdict(
        &first,
        &verdict_key(),
        RevocationStatus::Revoked,
        None,
        None,
    );
    assert_eq!(
        Dev::refusals(&dev.recv(Path::Home, &replay)),
        vec![Refusal::WrongSession]
    );
    // Signed for this query's session but carrying the old nonce.
    let stale = verdict(
        &second,
        &verdict_key(),
        RevocationStatus::Revoked,
        None,
        Some(q1.device_nonce),
    );
    assert_eq!(
        Dev::refusals(&dev.recv(Path::Home, &stale)),
        vec![Refusal::WrongNonce]
    );
    assert_key_kept(&dev);
}
