//! The whole flow under hostile conditions: lossy, duplicating, reordering links; power cuts
//! at every point of the flow; the setup network's engine enforcing its limits; and the
//! harness's own promise, that a seed fixes a run byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashSet;

use common::*;
use zerotouch_core::flow1::Hello;
use zerotouch_core::*;
use zerotouch_device::{Event, Failure, Trigger};
use zerotouch_provisioner::{DropReason, NetworkMode, SetupNetworkPolicy};
use zerotouch_server::ServiceConfig;
use zerotouch_sim::*;
use zerotouch_store::MemoryStore;

fn household(config: SimConfig) -> Sim<MemoryStore> {
    household_sim(config, ServiceConfig::default(), DeviceSpec::fixture(1))
        .unwrap()
        .0
}

fn hostile(seed: u64, loss_percent: u32) -> SimConfig {
    SimConfig {
        setup_link: LinkConditions::hostile(loss_percent),
        home_link: LinkConditions::hostile(loss_percent),
        ..SimConfig::new(seed)
    }
}

/// Session ids and device nonces of every hello the device sent.
fn hello_freshness(sim: &Sim<MemoryStore>) -> (Vec<SessionId>, Vec<Nonce>) {
    sent_by_device(sim, MessageTag::Hello)
        .iter()
        .map(|b| {
            let hello = Hello::decode_body(&plain_body(b)).unwrap();
            (session_of(b), hello.device_nonce)
        })
        .unzip()
}

/// Distinct session ids and nonces: each hello retransmitted as is, none reused across
/// sessions.
fn assert_no_reuse(sim: &Sim<MemoryStore>) {
    let (sids, nonces) = hello_freshness(sim);
    let pairs: HashSet<_> = sids.iter().zip(&nonces).collect();
    let sid_set: HashSet<_> = sids.iter().collect();
    let nonce_set: HashSet<_> = nonces.iter().collect();
    assert_eq!(pairs.len(), sid_set.len(), "a session id with two nonces");
    assert_eq!(pairs.len(), nonce_set.len(), "a nonce in two sessions");
}

#[test]
fn the_whole_flow_completes_under_20_percent_loss_with_duplication_and_reordering() {
    let mut totals = LinkStats::default();
    for seed in 0..24 {
        let mut sim = household(hostile(seed, 20));
        sim.start(Trigger::FirstBoot);
        let out = sim.run();
        assert!(
            matches!(out, Outcome::Stopped(Event::Complete { .. })),
            "seed {seed}: {out:?}"
        );
        assert_eq!(joined(&sim), vec![b"home".to_vec()], "seed {seed}");
        assert_no_reuse(&sim);
        let s = sim.link_stats();
        totals.sent += s.sent;
        totals.lost += s.lost;
        totals.duplicated += s.duplicated;
        totals.reordered += s.reordered;
    }
    // The conditions really were hostile.
    assert!(totals.lost * 100 >= totals.sent * 15, "{totals:?}");
    assert!(totals.duplicated > 0 && totals.reordered > 0, "{totals:?}");
}

#[test]
fn under_heavy_loss_the_device_gives_up_within_its_budget_or_completes_never_hangs() {
    for seed in 0..8 {
        let mut sim = household(hostile(seed, 60));
        sim.start(Trigger::FirstBoot);
        let out = sim.run();
        assert!(
            matches!(
                out,
                Outcome::Stopped(Event::Complete { .. } | Event::GaveUp { .. })
            ),
            "seed {seed}: {out:?}"
        );
        assert_no_reuse(&sim);
    }
}

#[test]
fn the_same_seed_gives_the_same_run_byte_for_byte() {
    let run = |seed| {
        let mut sim = household(hostile(seed, 20));
        sim.start(Trigger::FirstBoot);
        sim.run();
        (sim.trace().to_vec(), sim.events().to_vec())
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5).0, run(6).0);
}

/// Every point a power cut can hit: after each message the device sends, after each event.
fn reboot_points() -> Vec<(String, Reboot)> {
    let mut points = Vec::new();
    for (tag, n) in [
        (MessageTag::Hello, 1),
        (MessageTag::CredentialRequest, 1),
        (MessageTag::OutcomeReport, 1),
        (MessageTag::RevocationQuery, 1),
    ] {
        points.push((
            format!("after sending {tag:?}"),
            Reboot::AfterSending(tag, n),
        ));
    }
    type Named = (&'static str, fn(&Event) -> bool);
    let events: [Named; 6] = [
        ("ScanRequested", |e| matches!(e, Event::ScanRequested)),
        ("ServerAuthenticated", |e| {
            matches!(e, Event::ServerAuthenticated { .. })
        }),
        ("Join", |e| matches!(e, Event::Join { .. })),
        ("Joined", |e| matches!(e, Event::Joined { .. })),
        ("OutcomeAcknowledged", |e| {
            matches!(e, Event::OutcomeAcknowledged)
        }),
        ("SessionFailed", |e| {
            matches!(e, Event::SessionFailed { .. })
        }),
    ];
    for (name, f) in events {
        points.push((format!("after event {name}"), Reboot::AfterEvent(f, 1)));
    }
    points
}

#[test]
fn a_reboot_at_any_point_mid_flow_starts_a_fresh_session_and_completes() {
    for (i, (name, point)) in reboot_points().into_iter().enumerate() {
        let mut sim = household(SimConfig::new(100 + i as u64));
        // So that "SessionFailed" happens: the first session's requests are all lost.
        let mut first = None;
        sim.set_adversary(Tap::new().device(move |_, _, b| {
            if tag_of(&b) == Some(MessageTag::CredentialRequest)
                && *first.get_or_insert(session_of(&b)) == session_of(&b)
            {
                return Wire::default();
            }
            Wire::forward(b)
        }));
        sim.reboot_at(point);
        sim.start(Trigger::FirstBoot);
        let out = sim.run();
        assert_eq!(out, complete(true), "{name}");
        assert_eq!(sim.boots(), 2, "{name}: the power cut happened");
        assert_no_reuse(&sim);
        let stored = sim.storage().stored().unwrap();
        assert_eq!(stored.in_progress, None, "{name}");
        assert_eq!(stored.failed_sessions, 0, "{name}");
        let hellos = sent_by_device(&sim, MessageTag::Hello);
        let sessions: HashSet<_> = hellos.iter().map(|h| session_of(h)).collect();
        if !name.contains("ScanRequested") && !name.contains("Hello") {
            assert!(
                sessions.len() >= 2,
                "{name}: a fresh session after the reboot"
            );
        }
    }
}

#[test]
fn a_device_that_keeps_rebooting_gives_up_instead_of_looping() {
    let mut sim = household(SimConfig::new(200));
    for n in 1..=20 {
        sim.reboot_at(Reboot::AfterSending(MessageTag::Hello, n));
    }
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert_eq!(
        out,
        Outcome::Stopped(Event::GaveUp {
            reason: Failure::Interrupted
        })
    );
    let budget = zerotouch_device::RetryPolicy::default().max_sessions;
    assert_eq!(
        sim.boots(),
        budget + 1,
        "one boot per session, then no more"
    );
    assert_no_reuse(&sim);
}

#[test]
fn a_reboot_while_the_server_answer_is_in_flight_ignores_the_late_answer() {
    let mut sim = household(SimConfig {
        // Slower than a reboot and a scan: the device is back on the setup network, in a new
        // session, when the first hello's proof arrives.
        setup_link: LinkConditions {
            min_delay_ms: 3_000,
            max_delay_ms: 3_000,
            ..LinkConditions::PERFECT
        },
        boot_ms: 100,
        ..SimConfig::new(201)
    });
    sim.reboot_at(Reboot::AfterSending(MessageTag::Hello, 1));
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(true));
    use zerotouch_device::Refusal;
    let r = refusals(&sim);
    assert_eq!(
        r.first(),
        Some(&Refusal::WrongSession),
        "the first session's proof"
    );
    // Then at most the stored copies answering the new session's retransmitted hello.
    assert!(
        r.iter()
            .all(|r| matches!(r, Refusal::WrongSession | Refusal::Unexpected)),
        "{r:?}"
    );
    assert_no_reuse(&sim);
}

#[test]
fn the_setup_network_carries_the_setup_exchange_and_nothing_after_the_join() {
    let mut sim = household(SimConfig::new(300));
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(true));
    for s in sim.trace() {
        assert_eq!(s.dropped, None, "{s:?}");
        let setup_tag = matches!(
            s.tag(),
            Some(
                MessageTag::Hello
                    | MessageTag::ServerProof
                    | MessageTag::CredentialRequest
                    | MessageTag::CredentialResponse
            )
        );
        assert_eq!(
            s.path == zerotouch_device::Path::Setup,
            setup_tag,
            "{:?}",
            s.tag()
        );
    }
    assert_eq!(
        sim.setup_network().clients().count(),
        0,
        "the device left the setup network when it joined"
    );
}

#[test]
fn the_setup_networks_volume_limit_is_enforced_and_the_device_gives_up() {
    let mut sim = household(SimConfig::new(301));
    let mut policy = SetupNetworkPolicy::with_defaults(ROUTER, (ROUTER, 24), vec![SERVER]);
    // Enough for a hello and its proof (about 420 bytes), not for the credential request.
    policy.client_daily_bytes = 600;
    sim.set_setup_network(policy, NetworkMode::AlwaysOpen)
        .unwrap();
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert!(gave_up(&out), "{out:?}");
    let drops: Vec<_> = sim.trace().iter().filter_map(|s| s.dropped).collect();
    assert!(!drops.is_empty());
    assert!(
        drops.iter().all(|d| *d == DropReason::ClientDailyVolume),
        "{drops:?}"
    );
    assert!(joins(&sim).is_empty());
}

#[test]
fn a_device_on_dns_through_the_routers_forwarder_completes() {
    let spec = DeviceSpec {
        transport: Transport::Dns,
        ..DeviceSpec::fixture(1)
    };
    let (mut sim, _) = household_sim(hostile(302, 20), ServiceConfig::default(), spec).unwrap();
    sim.start(Trigger::FirstBoot);
    assert!(matches!(
        sim.run(),
        Outcome::Stopped(Event::Complete { .. })
    ));
    // And with the forwarder off, the engine drops it all.
    let spec = DeviceSpec {
        transport: Transport::Dns,
        ..DeviceSpec::fixture(1)
    };
    let (mut sim, _) = household_sim(SimConfig::new(303), ServiceConfig::default(), spec).unwrap();
    let policy = SetupNetworkPolicy::with_defaults(ROUTER, (ROUTER, 24), vec![SERVER]);
    assert!(!policy.dns_to_router);
    sim.set_setup_network(policy, NetworkMode::AlwaysOpen)
        .unwrap();
    sim.start(Trigger::FirstBoot);
    assert!(gave_up(&sim.run()));
    assert!(
        sim.trace()
            .iter()
            .all(|s| s.dropped == Some(DropReason::RouterService))
    );
}
