//! A real device session (`zerotouch-device`) and the setup service complete flow 1 in
//! process, with a manual clock: with and without PIN, one and several networks, a failed
//! join, a key revoked after joining.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::drive::*;

use common::*;
use zerotouch_device::*;
use zerotouch_server::*;
use zerotouch_store::*;
use zerotouch_store_suite::fixtures;

#[tokio::test]
async fn device_and_server_complete_flow_1_with_pin_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("zt.db"),
        &StaticDataKey([5; 32]),
        SqliteOptions::default(),
    )
    .await
    .unwrap();
    let w = world_on(store, ServiceConfig::default()).await;
    let mut dev = device(&w.pinned, Some(fixtures::PIN));
    let mut clock = T0;
    dev.start(clock, Trigger::FirstBoot);
    let mut tried = Vec::new();
    let events = drive(
        &w.service,
        &mut dev,
        &mut clock,
        &mut |ssid| {
            tried.push(ssid.to_vec());
            JoinResult::Joined
        },
        &complete,
    )
    .await;
    assert_eq!(
        tried,
        vec![b"home".to_vec()],
        "strongest first, and only one needed"
    );
    assert_eq!(joined_ssids(&events), vec![b"home".to_vec()]);
    assert!(events.contains(&Event::OutcomeAcknowledged));
    assert_eq!(
        events.last(),
        Some(&Event::Complete {
            revocation_checked: true
        })
    );
    let outcomes = w
        .service
        .store()
        .outcomes_of_device(&fixtures::device_id(1))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].kind, OutcomeKind::Joined);
    assert_eq!(
        clock, T0,
        "no timer fired: two round trips, then outcome and check"
    );
}

#[tokio::test]
async fn device_and_server_complete_flow_1_without_pin() {
    let config = ServiceConfig {
        pin_policy: PinPolicy::Never,
        ..ServiceConfig::default()
    };
    let w = world(config).await;
    let mut dev = device(&w.pinned, None);
    let mut clock = T0;
    dev.start(clock, Trigger::Button);
    let events = drive(
        &w.service,
        &mut dev,
        &mut clock,
        &mut |_| JoinResult::Joined,
        &complete,
    )
    .await;
    assert_eq!(joined_ssids(&events), vec![b"home".to_vec()]);
    assert!(matches!(events.last(), Some(Event::Complete { .. })));
}

#[tokio::test]
async fn with_several_networks_a_failed_join_moves_to_the_next() {
    let w = world(ServiceConfig::default()).await;
    let mut dev = device(&w.pinned, Some(fixtures::PIN));
    let mut clock = T0;
    dev.start(clock, Trigger::NoHomeNetwork);
    let mut tried = Vec::new();
    let events = drive(
        &w.service,
        &mut dev,
        &mut clock,
        &mut |ssid| {
            tried.push(ssid.to_vec());
            if ssid == b"home" {
                JoinResult::Failed(JoinFailure::WrongPassphrase)
            } else {
                JoinResult::Joined
            }
        },
        &complete,
    )
    .await;
    assert_eq!(tried, vec![b"home".to_vec(), b"home-2g".to_vec()]);
    assert_eq!(joined_ssids(&events), vec![b"home-2g".to_vec()]);
    let outcomes = w
        .service
        .store()
        .outcomes_of_device(&fixtures::device_id(1))
        .await
        .unwrap();
    assert_eq!(outcomes.last().unwrap().kind, OutcomeKind::Joined);
}

#[tokio::test]
async fn a_key_revoked_after_joining_makes_the_device_leave_and_set_up_again_with_the_replacement()
{
    let w = world(ServiceConfig::default()).await;
    let mut dev = device(&w.pinned, Some(fixtures::PIN));
    let mut clock = T0;
    dev.start(clock, Trigger::FirstBoot);
    let events = drive(
        &w.service,
        &mut dev,
        &mut clock,
        &mut |_| JoinResult::Joined,
        &|e| matches!(e, Event::Joined { .. }),
    )
    .await;
    let signed_by = events
        .iter()
        .find_map(|e| match e {
            Event::ServerAuthenticated { key_id } => Some(*key_id),
            _ => None,
        })
        .unwrap();
    assert_eq!(signed_by, w.setup_key);
    w.service
        .store()
        .revoke_server_key(&w.setup_key, Some(w.second_setup_key), clock)
        .await
        .unwrap();
    let events = drive(
        &w.service,
        &mut dev,
        &mut clock,
        &mut |_| JoinResult::Joined,
        &complete,
    )
    .await;
    assert!(events.contains(&Event::KeyRevoked {
        key_id: w.setup_key,
        replacement: Some(w.second_setup_key)
    }));
    assert!(events.contains(&Event::LeaveNetwork));
    assert!(events.contains(&Event::ServerAuthenticated {
        key_id: w.second_setup_key
    }));
    assert_eq!(
        events.last(),
        Some(&Event::Complete {
            revocation_checked: true
        })
    );
    assert_eq!(dev.pinned_keys().dropped(), &[w.setup_key]);
    assert_eq!(dev.persisted().dropped_keys, vec![w.setup_key]);
}
