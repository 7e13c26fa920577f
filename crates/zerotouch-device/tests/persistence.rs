//! What survives a reboot: dropped keys, the indication, and the mark of a setup in progress.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use proptest::prelude::*;
use zerotouch_core::Signer as _;
use zerotouch_core::flow1::RevocationStatus;
use zerotouch_core::{KeyId, KeyRole, SessionId};
use zerotouch_device::*;

#[test]
fn dropped_keys_survive_reboot() {
    let mut dev = Dev::new(None);
    let query = to_query(&mut dev);
    let v = revoked(&query, Some(setup_b().key_id()));
    dev.recv(Path::Home, &v);
    // Power cut: a new session from what the store holds, with the firmware's full pin list.
    let store = dev.s.state().clone();
    let mut rebooted = Dev::with(config(None), store);
    assert_eq!(rebooted.s.pinned_keys().dropped(), &[setup_a().key_id()]);
    assert_eq!(
        rebooted.s.pinned_keys().indication(),
        Some(setup_b().key_id())
    );
    rebooted.s.start(rebooted.now, Trigger::FirstBoot);
    rebooted.events();
    rebooted.scan();
    let hello = rebooted.sent().bytes;
    only_b_is_trusted(&mut rebooted, &hello);
}

#[test]
fn reboot_mid_flow_resumes() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let stored = dev.s.state().stored().unwrap();
    assert_eq!(stored.in_progress, Some(session_of(&hello)));
    assert_eq!(stored.failed_sessions, 0);

    // Reboot: the interrupted attempt counts, and is saved at once.
    let mut store = dev.s.state().clone();
    for boot in 1..retry().max_sessions {
        let mut rebooted = Dev::with(config(None), store);
        rebooted.reseed(u64::from(boot));
        assert!(rebooted.s.resume_pending());
        assert_eq!(rebooted.s.state().stored().unwrap().failed_sessions, boot);
        // Whatever trigger the firmware passes, it resumes and keeps the count.
        rebooted.s.start(rebooted.now, Trigger::NoHomeNetwork);
        assert_eq!(rebooted.s.trigger(), Some(Trigger::Resume));
        assert!(!rebooted.s.resume_pending());
        assert_eq!(rebooted.events(), vec![Event::ScanRequested]);
        rebooted.scan();
        let again = rebooted.sent().bytes;
        assert_ne!(session_of(&again), session_of(&hello), "a fresh session");
        assert_eq!(rebooted.s.persisted().failed_sessions, boot);
        assert_eq!(rebooted.s.persisted().in_progress, Some(session_of(&again)));
        store = rebooted.s.state().clone();
    }
    // A device that keeps rebooting mid-flow runs out of its budget.
    let mut rebooted = Dev::with(config(None), store);
    rebooted.s.start(rebooted.now, Trigger::Resume);
    assert_eq!(
        rebooted.events(),
        vec![Event::GaveUp {
            reason: Failure::Interrupted
        }]
    );
    assert!(rebooted.transmits().is_empty());
    // A person pressing the button later starts over with a fresh budget.
    rebooted.s.start(rebooted.now, Trigger::Button);
    assert_eq!(rebooted.events(), vec![Event::ScanRequested]);
}

#[test]
fn completed_setup_clears_the_marker() {
    let mut dev = Dev::new(None);
    let query = to_query(&mut dev);
    let v = verdict(&query, &verdict_key(), RevocationStatus::Good, None, None);
    dev.recv(Path::Home, &v);
    let rebooted = Dev::with(config(None), dev.s.state().clone());
    assert!(!rebooted.s.resume_pending());
    assert_eq!(
        rebooted.s.state().stored().unwrap(),
        PersistedState::default()
    );
}

#[test]
fn persisted_state_round_trips() {
    let state = PersistedState {
        dropped_keys: vec![KeyId([1; 32]), KeyId([2; 32])],
        indication: Some(setup_b().key_id()),
        failed_sessions: 3,
        in_progress: Some(SessionId([5; 16])),
    };
    let bytes = state.encode();
    assert_eq!(PersistedState::decode(&bytes).unwrap(), state);
    assert_eq!(
        PersistedState::decode(&PersistedState::default().encode()).unwrap(),
        PersistedState::default()
    );
    // One byte form only: trailing bytes are refused.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(PersistedState::decode(&longer).is_err());
}

#[test]
fn a_configuration_whose_hello_would_exceed_the_wire_limit_is_refused() {
    // An 800-byte certificate fits a hello with the usual pinned keys, not with eight.
    let mut cfg = config(None);
    cfg.identity = zerotouch_core::flow1::DeviceIdentityRef::Certificate(vec![0x30; 800]);
    assert!(
        DeviceSession::new(
            cfg.clone(),
            pinned(),
            device_key(),
            MemoryDeviceState::new()
        )
        .is_ok()
    );
    use zerotouch_core::{PinnedKey, PinnedKeys};
    let many = PinnedKeys::new(
        (0..8)
            .map(|i| {
                PinnedKey::new(
                    KeyRole::SetupSigning,
                    key(&format!("setup {i}")).public_key().clone(),
                )
            })
            .collect(),
    );
    assert!(matches!(
        DeviceSession::new(cfg, many, device_key(), MemoryDeviceState::new()),
        Err(DeviceError::HelloTooLong { limit: 1024, .. })
    ));
}

#[test]
fn unusable_configurations_are_refused() {
    let mut cfg = config(None);
    cfg.suites.clear();
    assert!(matches!(
        DeviceSession::new(cfg, pinned(), device_key(), MemoryDeviceState::new()),
        Err(DeviceError::SuiteCount)
    ));
    let mut cfg = config(None);
    cfg.identity =
        zerotouch_core::flow1::DeviceIdentityRef::PublicKey(rogue().public_key().to_spki_der());
    assert!(matches!(
        DeviceSession::new(cfg, pinned(), device_key(), MemoryDeviceState::new()),
        Err(DeviceError::IdentityMismatch)
    ));
    let mut store = MemoryDeviceState::new();
    let _ = store.save(&PersistedState::default());
    let broken = MemoryDeviceState::with_state(&PersistedState {
        dropped_keys: vec![KeyId([0; 32]); MAX_DROPPED_KEYS],
        ..PersistedState::default()
    });
    assert!(DeviceSession::new(config(None), pinned(), device_key(), broken).is_ok());
}

#[test]
fn no_trusted_key_left_gives_up() {
    let state = PersistedState {
        dropped_keys: vec![setup_a().key_id(), setup_b().key_id()],
        ..PersistedState::default()
    };
    let mut dev = Dev::with(config(None), MemoryDeviceState::with_state(&state));
    assert!(
        dev.s
            .pinned_keys()
            .trusted_key_ids(KeyRole::SetupSigning)
            .is_empty()
    );
    dev.start();
    dev.scan();
    assert_eq!(
        dev.events(),
        vec![Event::GaveUp {
            reason: Failure::NoTrustedKey
        }]
    );
    assert!(dev.transmits().is_empty());
}

proptest! {
    #[test]
    fn persisted_state_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(state) = PersistedState::decode(&bytes) {
            // Whatever decodes is in the one byte form.
            prop_assert_eq!(state.encode(), bytes);
        }
    }

    #[test]
    fn persisted_state_round_trips_any_value(
        dropped in proptest::collection::vec(any::<[u8; 32]>(), 0..8),
        indication in proptest::option::of(any::<[u8; 32]>()),
        failed in any::<u32>(),
        in_progress in proptest::option::of(any::<[u8; 16]>()),
    ) {
        let state = PersistedState {
            dropped_keys: dropped.into_iter().map(KeyId).collect(),
            indication: indication.map(KeyId),
            failed_sessions: failed,
            in_progress: in_progress.map(SessionId),
        };
        prop_assert_eq!(PersistedState::decode(&state.encode()).unwrap(), state);
    }
}
