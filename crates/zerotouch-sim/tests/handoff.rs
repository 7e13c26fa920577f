//! Flow 2 under simulation: the real joiner, sponsor and association service over a stream
//! that chunks, delays and breaks, and a server link that loses, duplicates and reorders.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_core::ErrorCode;
use zerotouch_peer::{JoinerEvent, SponsorEvent, SponsorFailure};
use zerotouch_sim::*;
use zerotouch_store::MemoryStore;

fn sim(config: HandoffConfig, same_account: bool) -> HandoffSim<MemoryStore> {
    let rt = runtime().unwrap();
    let store = MemoryStore::new();
    rt.block_on(handoff_store(
        &store,
        "home",
        if same_account { "home" } else { "other" },
    ))
    .unwrap();
    HandoffSim::new(config, store).unwrap()
}

fn rough(seed: u64) -> HandoffConfig {
    HandoffConfig {
        stream: StreamConditions::ROUGH,
        server_link: LinkConditions::hostile(20),
        ..HandoffConfig::new(seed)
    }
}

#[test]
fn handoff_completes_on_calm_links() {
    let out = sim(HandoffConfig::new(1), true).run().unwrap();
    assert_eq!(out.joined_with.as_deref(), Some(HANDOFF_PASSPHRASE));
    assert_eq!((out.handoffs, out.server_requests), (1, 1));
}

#[test]
fn handoff_completes_over_lossy_links_for_every_seed() {
    let mut retransmitted = 0;
    let mut broken = 0;
    for seed in 0..16 {
        let out = sim(rough(seed), true).run().unwrap();
        assert_eq!(
            out.joined_with.as_deref(),
            Some(HANDOFF_PASSPHRASE),
            "seed {seed}: {out:?}"
        );
        retransmitted += out.server_requests.saturating_sub(out.handoffs);
        broken += out.broken_streams;
    }
    // The conditions really were hostile: requests were retransmitted and streams broke.
    assert!(retransmitted > 0 && broken > 0, "{retransmitted} {broken}");
}

#[test]
fn handoff_over_a_dead_server_link_ends_without_a_credential() {
    let config = HandoffConfig {
        server_link: LinkConditions::DEAD,
        max_handoffs: 3,
        ..HandoffConfig::new(3)
    };
    let out = sim(config, true).run().unwrap();
    assert!(out.joined_with.is_none());
    assert_eq!(out.handoffs, 3);
    let unreachable = out
        .sponsor_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SponsorEvent::Failed {
                    reason: SponsorFailure::ServerUnreachable
                }
            )
        })
        .count();
    assert_eq!(unreachable, 3);
    assert!(out.joiner_events.contains(&JoinerEvent::SponsorHint {
        code: ErrorCode::HandoffUnavailable
    }));
}

#[test]
fn devices_on_different_accounts_never_hand_over() {
    let config = HandoffConfig {
        server_link: LinkConditions::hostile(20),
        max_handoffs: 3,
        ..HandoffConfig::new(4)
    };
    let out = sim(config, false).run().unwrap();
    assert!(out.joined_with.is_none());
    assert!(
        !out.sponsor_events
            .iter()
            .any(|e| matches!(e, SponsorEvent::HandedOver { .. }))
    );
    assert!(
        out.sponsor_events.contains(&SponsorEvent::ServerRefused {
            code: ErrorCode::NotAssociated
        }),
        "{:?}",
        out.sponsor_events
    );
}

#[test]
fn a_seed_fixes_the_run() {
    let a = sim(rough(9), true).run().unwrap();
    let b = sim(rough(9), true).run().unwrap();
    assert_eq!(a, b);
}
