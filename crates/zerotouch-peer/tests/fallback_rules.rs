//! The rules of the flow-2 fallbacks (compared codes, a typed code, a label code), one test
//! each. The association server is the test's own (see `common`): unreachable, refusing, or
//! answering, as each rule needs. Each test fails if its rule is broken.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use zerotouch_core::flow2::{
    self, Fallback, FallbackHandover, FallbackStart, PakeShare, SasReveal,
};
use zerotouch_core::*;
use zerotouch_peer::*;

const LABEL: &str = "3141-5926";

/// A world whose roles run with the configurations `configure` sets.
fn world(seed: u64, configure: impl FnOnce(&mut JoinerConfig, &mut SponsorConfig)) -> World {
    world_with_states(
        seed,
        MemoryPeerState::new(),
        MemoryPeerState::new(),
        configure,
    )
}

fn world_with_states(
    seed: u64,
    joiner_state: MemoryPeerState,
    sponsor_state: MemoryPeerState,
    configure: impl FnOnce(&mut JoinerConfig, &mut SponsorConfig),
) -> World {
    let w = World::new(seed);
    let mut joiner = JoinerConfig::new(
        w.joiner_id,
        w.server.joiner_secret.clone(),
        w.pinned.clone(),
    );
    let mut sponsor = SponsorConfig::new(home(), w.pinned.clone());
    configure(&mut joiner, &mut sponsor);
    w.with_joiner(joiner, joiner_state)
        .with_sponsor(sponsor, sponsor_state)
}

/// Both devices have a display and a keypad and allow `fallbacks`, in that order; the joiner
/// has a label record of [`LABEL`].
fn full(fallbacks: &[Fallback]) -> impl FnOnce(&mut JoinerConfig, &mut SponsorConfig) {
    let fallbacks = fallbacks.to_vec();
    move |j, s| {
        j.interface = OwnerInterface::FULL;
        j.fallbacks = fallbacks.clone();
        j.label_record = Some(
            LabelRecord::from_code(&PairingCode::parse(LABEL).unwrap(), &j.joiner_id).unwrap(),
        );
        s.interface = OwnerInterface::FULL;
        s.fallbacks = fallbacks;
    }
}

/// Starts a handoff whose association server never answers, and lets the sponsor's timer run
/// out (every retransmission lost).
fn run_unreachable(w: &mut World) {
    w.start();
    settle_unreachable(w);
}

fn settle_unreachable(w: &mut World) {
    for _ in 0..10 {
        w.run_with(&mut |_, _, _| None);
        if fallback_started(w).is_some() || w.sponsor.is_idle() {
            break;
        }
        let Some(t) = w.sponsor.poll_timeout() else {
            break;
        };
        w.now = t;
        w.sponsor.handle_timeout(w.now, &mut w.rng);
    }
    w.run_with(&mut |_, _, _| None);
}

fn fallback_started(w: &World) -> Option<Fallback> {
    w.sponsor_events.iter().find_map(|e| match e {
        SponsorEvent::FallbackStarted { fallback } => Some(*fallback),
        _ => None,
    })
}

/// The last thing asked of the owner on the joiner, and on the sponsor.
fn joiner_prompt(w: &World) -> Option<OwnerPrompt> {
    w.joiner_events.iter().rev().find_map(|e| match e {
        JoinerEvent::OwnerAction { prompt, .. } => Some(prompt.clone()),
        _ => None,
    })
}

fn sponsor_prompt(w: &World) -> Option<OwnerPrompt> {
    w.sponsor_events.iter().rev().find_map(|e| match e {
        SponsorEvent::OwnerAction { prompt, .. } => Some(prompt.clone()),
        _ => None,
    })
}

fn prompts(w: &World) -> Vec<OwnerPrompt> {
    let mut all: Vec<OwnerPrompt> = w
        .joiner_events
        .iter()
        .filter_map(|e| match e {
            JoinerEvent::OwnerAction { prompt, .. } => Some(prompt.clone()),
            _ => None,
        })
        .collect();
    all.extend(w.sponsor_events.iter().filter_map(|e| match e {
        SponsorEvent::OwnerAction { prompt, .. } => Some(prompt.clone()),
        _ => None,
    }));
    all
}

fn shown_code(prompt: Option<OwnerPrompt>) -> PairingCode {
    match prompt {
        Some(OwnerPrompt::ShowCode { code }) => code,
        other => panic!("expected a code to show, got {other:?}"),
    }
}

fn compared_code(prompt: Option<OwnerPrompt>) -> flow2::ShortAuthString {
    match prompt {
        Some(OwnerPrompt::CompareCode { code }) => code,
        other => panic!("expected a code to compare, got {other:?}"),
    }
}

fn typed(code: &PairingCode) -> String {
    code.grouped()
}

fn settle(w: &mut World) {
    w.run_with(&mut |_, _, _| None);
}

/// The sponsor handed over and the joiner joined with the home passphrase.
fn assert_handed_over(w: &World) {
    assert!(w.handed_over(), "the sponsor did not hand over");
    let passphrase = w.joined().map(|e| match e {
        JoinerEvent::Join { passphrase, .. } => passphrase.expose_secret().to_vec(),
        _ => unreachable!(),
    });
    assert_eq!(passphrase.as_deref(), Some(PASSPHRASE));
}

fn code_rejections(w: &World) -> usize {
    w.sponsor_events
        .iter()
        .filter(|e| matches!(e, SponsorEvent::CodeRejected { .. }))
        .count()
}

// ---------------------------------------------------------------------------------------------
// Happy paths
// ---------------------------------------------------------------------------------------------

#[test]
fn compared_codes_hand_over_once_the_owner_confirms_on_both() {
    let mut w = world(1, full(&[Fallback::CompareCodes]));
    run_unreachable(&mut w);
    assert_eq!(fallback_started(&w), Some(Fallback::CompareCodes));
    let on_joiner = compared_code(joiner_prompt(&w));
    let on_sponsor = compared_code(sponsor_prompt(&w));
    assert_eq!(
        on_joiner, on_sponsor,
        "no one in the middle: the codes match"
    );
    assert!(on_joiner.0 < 1_000_000 && on_joiner.to_string().len() == 7);

    w.joiner.confirm_code(w.now, true).unwrap();
    settle(&mut w);
    assert!(!w.handed_over(), "one confirmation is not enough");
    w.sponsor.confirm_code(w.now, true).unwrap();
    settle(&mut w);
    assert_handed_over(&w);
}

#[test]
fn compared_codes_hand_over_whichever_device_confirms_first() {
    let mut w = world(2, full(&[Fallback::CompareCodes]));
    run_unreachable(&mut w);
    w.sponsor.confirm_code(w.now, true).unwrap();
    settle(&mut w);
    assert!(!w.handed_over(), "the joiner's owner has not confirmed yet");
    w.joiner.confirm_code(w.now, true).unwrap();
    settle(&mut w);
    assert_handed_over(&w);
}

#[test]
fn code_shown_by_the_joiner_and_typed_on_the_sponsor_hands_over() {
    let mut w = world(3, full(&[Fallback::JoinerShowsCode]));
    run_unreachable(&mut w);
    let code = shown_code(joiner_prompt(&w));
    assert_eq!(sponsor_prompt(&w), Some(OwnerPrompt::EnterShownCode));
    w.sponsor
        .enter_code(w.now, &typed(&code), &mut w.rng)
        .unwrap();
    settle(&mut w);
    assert_handed_over(&w);
}

#[test]
fn code_shown_by_the_sponsor_and_typed_on_the_joiner_hands_over() {
    let mut w = world(4, full(&[Fallback::SponsorShowsCode]));
    run_unreachable(&mut w);
    let code = shown_code(sponsor_prompt(&w));
    assert_eq!(joiner_prompt(&w), Some(OwnerPrompt::EnterShownCode));
    w.joiner
        .enter_code(w.now, &typed(&code), &mut w.rng)
        .unwrap();
    settle(&mut w);
    assert_handed_over(&w);
}

#[test]
fn label_code_typed_on_the_sponsor_hands_over() {
    let mut w = world(5, full(&[Fallback::LabelCode]));
    run_unreachable(&mut w);
    assert_eq!(sponsor_prompt(&w), Some(OwnerPrompt::EnterLabelCode));
    assert_eq!(joiner_prompt(&w), Some(OwnerPrompt::TypeLabelCodeElsewhere));
    w.sponsor.enter_code(w.now, "31415926", &mut w.rng).unwrap();
    settle(&mut w);
    assert_handed_over(&w);
}

#[test]
fn fallback_credential_crosses_the_link_only_encrypted() {
    let mut w = world(6, full(&[Fallback::LabelCode]));
    run_unreachable(&mut w);
    w.sponsor.enter_code(w.now, LABEL, &mut w.rng).unwrap();
    settle(&mut w);
    assert!(w.joined().is_some());
    assert!(
        !w.local_bytes
            .windows(PASSPHRASE.len())
            .any(|win| win == PASSPHRASE)
    );
    assert!(!w.local_bytes.windows(8).any(|win| win == b"31415926"));
}

// ---------------------------------------------------------------------------------------------
// When a fallback is offered
// ---------------------------------------------------------------------------------------------

#[test]
fn unreachable_server_offers_the_fallback_only_after_every_retry() {
    let mut w = world(7, full(&[Fallback::CompareCodes]));
    w.start();
    w.run_with(&mut |_, _, _| None);
    let mut timeouts = 0;
    while fallback_started(&w).is_none() {
        assert!(
            prompts(&w).is_empty(),
            "the owner was asked before the server gave up"
        );
        assert!(
            !w.local_bytes.is_empty() && w.joiner.poll_event().is_none(),
            "nothing reaches the joiner while the sponsor retries"
        );
        let t = w
            .sponsor
            .poll_timeout()
            .expect("the sponsor waits for the server");
        w.now = t;
        w.sponsor.handle_timeout(w.now, &mut w.rng);
        w.run_with(&mut |_, _, _| None);
        timeouts += 1;
        assert!(timeouts < 10);
    }
    // Three retransmissions, then the fourth deadline starts the fallback.
    assert_eq!(timeouts, 4);
    assert_eq!(
        w.server.requests.len(),
        0,
        "the test server never saw a request"
    );
    assert!(matches!(
        sponsor_prompt(&w),
        None | Some(OwnerPrompt::CompareCode { .. })
    ));
    assert!(compared_code(joiner_prompt(&w)).0 < 1_000_000);
}

#[test]
fn not_associated_answer_offers_the_fallback() {
    let mut w = world(8, full(&[Fallback::LabelCode]));
    w.start();
    w.run_with(&mut |_, bytes, _| Some(server_error(bytes, ErrorCode::NotAssociated)));
    assert_eq!(fallback_started(&w), Some(Fallback::LabelCode));
    assert_eq!(sponsor_prompt(&w), Some(OwnerPrompt::EnterLabelCode));
    assert_eq!(w.sponsor_failure(), None);
}

#[test]
fn other_server_refusals_offer_no_fallback() {
    for code in [
        ErrorCode::HandoffUnavailable,
        ErrorCode::RateLimited,
        ErrorCode::NotAuthorized,
        ErrorCode::Internal,
    ] {
        let mut w = world(9, full(&[Fallback::CompareCodes, Fallback::LabelCode]));
        w.start();
        w.run_with(&mut |_, bytes, _| Some(server_error(bytes, code)));
        assert_eq!(fallback_started(&w), None, "{code:?}");
        assert!(prompts(&w).is_empty());
        assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::ServerRefused));
    }
}

#[test]
fn a_wrong_answer_to_the_server_challenge_offers_no_fallback() {
    let w = world(10, full(&[Fallback::LabelCode]));
    let mut w = w;
    w.server.joiner_secret = DeviceSecret::new([9; 32]);
    w.start();
    w.run();
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::WrongAnswer));
    assert_eq!(fallback_started(&w), None);
    assert!(prompts(&w).is_empty());
}

#[test]
fn a_working_server_runs_no_fallback() {
    let mut w = world(11, full(&[Fallback::CompareCodes]));
    w.start();
    w.run();
    assert_handed_over(&w);
    assert_eq!(fallback_started(&w), None);
    assert!(prompts(&w).is_empty());
}

#[test]
fn fallbacks_not_allowed_by_the_sponsor_firmware_are_never_run() {
    let mut w = world(12, |j, s| {
        full(&[Fallback::CompareCodes, Fallback::LabelCode])(j, s);
        s.fallbacks = vec![];
    });
    run_unreachable(&mut w);
    assert_eq!(fallback_started(&w), None);
    assert_eq!(
        w.sponsor_failure(),
        Some(&SponsorFailure::ServerUnreachable)
    );
}

#[test]
fn the_sponsor_firmware_order_chooses_among_the_joiners_fallbacks() {
    let mut w = world(13, |j, s| {
        full(&[Fallback::CompareCodes, Fallback::LabelCode])(j, s);
        s.fallbacks = vec![Fallback::LabelCode, Fallback::CompareCodes];
    });
    run_unreachable(&mut w);
    assert_eq!(fallback_started(&w), Some(Fallback::LabelCode));
}

#[test]
fn joiner_without_a_display_is_never_offered_compared_codes() {
    let mut w = world(14, |j, s| {
        full(&[
            Fallback::CompareCodes,
            Fallback::JoinerShowsCode,
            Fallback::LabelCode,
        ])(j, s);
        j.interface = OwnerInterface::HEADLESS;
    });
    // The joiner declares so in its request.
    let declared = open_as_sponsor(&mut w).2.fallbacks;
    assert_eq!(declared, vec![Fallback::LabelCode]);

    // And a sponsor preferring compared codes runs the label code instead.
    let mut w = world(14, |j, s| {
        full(&[
            Fallback::CompareCodes,
            Fallback::JoinerShowsCode,
            Fallback::LabelCode,
        ])(j, s);
        j.interface = OwnerInterface::HEADLESS;
    });
    run_unreachable(&mut w);
    assert_eq!(fallback_started(&w), Some(Fallback::LabelCode));
    assert!(
        !prompts(&w)
            .iter()
            .any(|p| matches!(p, OwnerPrompt::CompareCode { .. }))
    );
}

#[test]
fn sponsor_without_a_display_never_runs_compared_codes() {
    let mut w = world(15, |j, s| {
        full(&[Fallback::CompareCodes, Fallback::LabelCode])(j, s);
        s.interface = OwnerInterface {
            display: false,
            keypad: true,
        };
    });
    run_unreachable(&mut w);
    assert_eq!(fallback_started(&w), Some(Fallback::LabelCode));
}

#[test]
fn joiner_refuses_a_fallback_it_did_not_declare() {
    let mut w = world(16, |j, s| {
        full(&[Fallback::LabelCode])(j, s);
        j.fallbacks = vec![Fallback::LabelCode];
    });
    let mut rogue = RogueSponsor::new(&mut w);
    rogue.send(
        &mut w,
        MessageTag::FallbackStart,
        FallbackStart {
            fallback: Fallback::CompareCodes,
            sponsor_id: KeyId([5; 32]),
            sas_commitment: Some([0; 32]),
        }
        .encode_body(),
    );
    w.drain_events();
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::FallbackNotOffered));
    // And says so, so the sponsor does not keep its owner waiting.
    let told = rogue.received(&mut w);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].header.tag, MessageTag::Error);
}

#[test]
fn compared_codes_cannot_be_restarted_within_a_handoff() {
    // A device in the middle that could restart the comparison would draw a new code each
    // time until one happened to match.
    let mut w = world(52, full(&[Fallback::CompareCodes]));
    let mut rogue = RogueSponsor::new(&mut w);
    let start = FallbackStart {
        fallback: Fallback::CompareCodes,
        sponsor_id: KeyId([5; 32]),
        sas_commitment: Some([0; 32]),
    };
    rogue.send(&mut w, MessageTag::FallbackStart, start.encode_body());
    assert_eq!(rogue.received(&mut w)[0].header.tag, MessageTag::SasNonce);
    rogue.send(&mut w, MessageTag::FallbackStart, start.encode_body());
    w.drain_events();
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::Unexpected));
    let after: Vec<MessageTag> = rogue
        .received(&mut w)
        .iter()
        .map(|e| e.header.tag)
        .collect();
    assert!(!after.contains(&MessageTag::SasNonce), "{after:?}");
    assert_eq!(w.joiner.state().stored().unwrap().fallback_attempts, 1);
}

#[test]
fn typed_code_attempt_cannot_be_restarted_before_the_pake_reply() {
    // Redrawing the shown code (and the owner's deadline) must cost an attempt: a new
    // attempt starts only after the joiner's PAKE reply.
    let mut w = world(53, full(&[Fallback::JoinerShowsCode]));
    let mut rogue = RogueSponsor::new(&mut w);
    let start = FallbackStart {
        fallback: Fallback::JoinerShowsCode,
        sponsor_id: KeyId([5; 32]),
        sas_commitment: None,
    };
    rogue.send(&mut w, MessageTag::FallbackStart, start.encode_body());
    rogue.send(&mut w, MessageTag::FallbackStart, start.encode_body());
    w.drain_events();
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::Unexpected));
    let shown = w
        .joiner_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                JoinerEvent::OwnerAction {
                    prompt: OwnerPrompt::ShowCode { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(shown, 1);
}

// ---------------------------------------------------------------------------------------------
// Wrong codes, attempt limits
// ---------------------------------------------------------------------------------------------

#[test]
fn owner_rejecting_the_compared_code_on_the_sponsor_sends_no_credential() {
    let mut w = world(17, full(&[Fallback::CompareCodes]));
    run_unreachable(&mut w);
    w.joiner.confirm_code(w.now, true).unwrap();
    w.sponsor.confirm_code(w.now, false).unwrap();
    settle(&mut w);
    assert!(!w.handed_over() && w.joined().is_none());
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::CodesDiffer));
}

#[test]
fn owner_rejecting_the_compared_code_on_the_joiner_stops_the_sponsor() {
    let mut w = world(18, full(&[Fallback::CompareCodes]));
    run_unreachable(&mut w);
    w.joiner.confirm_code(w.now, false).unwrap();
    settle(&mut w);
    w.sponsor.confirm_code(w.now, true).unwrap_err();
    settle(&mut w);
    assert!(!w.handed_over() && w.joined().is_none());
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::CodesDiffer));
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::CodesDiffer));
}

#[test]
fn wrong_typed_code_is_refused_and_a_fresh_code_follows() {
    let mut w = world(19, full(&[Fallback::JoinerShowsCode]));
    run_unreachable(&mut w);
    let first = shown_code(joiner_prompt(&w));
    let wrong = if first.digits() == b"00000000" {
        "00000001"
    } else {
        "00000000"
    };
    w.sponsor.enter_code(w.now, wrong, &mut w.rng).unwrap();
    settle(&mut w);
    assert!(!w.handed_over() && w.joined().is_none());
    assert_eq!(code_rejections(&w), 1);
    let second = shown_code(joiner_prompt(&w));
    assert_ne!(first, second, "a new code after a failure");

    // The old code is worth nothing now.
    w.sponsor
        .enter_code(w.now, &typed(&first), &mut w.rng)
        .unwrap();
    settle(&mut w);
    assert!(!w.handed_over());
    assert_eq!(code_rejections(&w), 2);
    let third = shown_code(joiner_prompt(&w));
    assert!(third != first && third != second);

    w.sponsor
        .enter_code(w.now, &typed(&third), &mut w.rng)
        .unwrap();
    settle(&mut w);
    assert_handed_over(&w);
}

#[test]
fn code_shown_by_the_sponsor_is_fresh_after_a_wrong_entry() {
    let mut w = world(20, full(&[Fallback::SponsorShowsCode]));
    run_unreachable(&mut w);
    let first = shown_code(sponsor_prompt(&w));
    w.joiner
        .enter_code(w.now, "12-34-56-78", &mut w.rng)
        .unwrap();
    settle(&mut w);
    assert_eq!(code_rejections(&w), 1);
    let second = shown_code(sponsor_prompt(&w));
    assert_ne!(first, second);
    assert_eq!(joiner_prompt(&w), Some(OwnerPrompt::EnterShownCode));
    w.joiner
        .enter_code(w.now, &typed(&first), &mut w.rng)
        .unwrap();
    settle(&mut w);
    assert!(!w.handed_over(), "the first code was retired");
    let third = shown_code(sponsor_prompt(&w));
    w.joiner
        .enter_code(w.now, &typed(&third), &mut w.rng)
        .unwrap();
    settle(&mut w);
    assert_handed_over(&w);
}

#[test]
fn wrong_label_code_is_refused() {
    let mut w = world(21, full(&[Fallback::LabelCode]));
    run_unreachable(&mut w);
    w.sponsor.enter_code(w.now, "31415927", &mut w.rng).unwrap();
    settle(&mut w);
    assert!(!w.handed_over() && w.joined().is_none());
    assert_eq!(code_rejections(&w), 1);
    // The owner may have mistyped: the same label code works on the next attempt.
    w.sponsor.enter_code(w.now, LABEL, &mut w.rng).unwrap();
    settle(&mut w);
    assert_handed_over(&w);
}

#[test]
fn malformed_typed_code_is_refused_without_using_an_attempt() {
    let mut w = world(22, full(&[Fallback::LabelCode]));
    run_unreachable(&mut w);
    let before = w.sponsor.state().stored().unwrap().fallback_attempts;
    for bad in ["1234567", "123456789", "1234abcd", ""] {
        assert_eq!(
            w.sponsor.enter_code(w.now, bad, &mut w.rng),
            Err(PeerError::InvalidCode)
        );
    }
    settle(&mut w);
    assert_eq!(
        w.sponsor.state().stored().unwrap().fallback_attempts,
        before
    );
    assert_eq!(code_rejections(&w), 0);
}

#[test]
fn sponsor_fallback_attempt_limit_survives_a_reboot() {
    let limit2 = |j: &mut JoinerConfig, s: &mut SponsorConfig| {
        full(&[Fallback::LabelCode])(j, s);
        s.fallback_limit = AttemptLimit { max_attempts: 2 };
    };
    let mut w = world(23, limit2);
    run_unreachable(&mut w);
    for _ in 0..2 {
        w.sponsor.enter_code(w.now, "00000000", &mut w.rng).unwrap();
        settle(&mut w);
    }
    assert_eq!(
        w.sponsor_failure(),
        Some(&SponsorFailure::AttemptLimitReached)
    );
    let flash = w.sponsor.state().clone();
    assert_eq!(flash.stored().unwrap().fallback_attempts, 2);

    // Rebooted with the same flash: the next handoff's fallback is refused before any code.
    let mut w = world_with_states(24, MemoryPeerState::new(), flash, limit2);
    run_unreachable(&mut w);
    assert_eq!(
        w.sponsor_failure(),
        Some(&SponsorFailure::AttemptLimitReached)
    );
    assert_eq!(fallback_started(&w), None);
    assert!(
        prompts(&w)
            .iter()
            .all(|p| *p != OwnerPrompt::EnterLabelCode)
    );
    assert!(w.sponsor.enter_code(w.now, LABEL, &mut w.rng).is_err());
}

#[test]
fn joiner_fallback_attempt_limit_survives_a_reboot() {
    let limit2 = |j: &mut JoinerConfig, s: &mut SponsorConfig| {
        full(&[Fallback::JoinerShowsCode])(j, s);
        j.fallback_limit = AttemptLimit { max_attempts: 2 };
    };
    let mut w = world(25, limit2);
    run_unreachable(&mut w);
    for _ in 0..2 {
        w.sponsor.enter_code(w.now, "00000000", &mut w.rng).unwrap();
        settle(&mut w);
    }
    assert_eq!(w.joiner.state().stored().unwrap().fallback_attempts, 2);
    let flash = w.joiner.state().clone();

    // Rebooted: with its counter used up the joiner no longer declares the fallback.
    let mut w = world_with_states(26, flash.clone(), MemoryPeerState::new(), limit2);
    run_unreachable(&mut w);
    assert_eq!(fallback_started(&w), None);
    assert_eq!(
        w.sponsor_failure(),
        Some(&SponsorFailure::ServerUnreachable)
    );

    // The owner-action reset gives the attempts back.
    let mut w = world_with_states(27, flash, MemoryPeerState::new(), limit2);
    w.joiner.reset_attempt_limit().unwrap();
    run_unreachable(&mut w);
    assert_eq!(fallback_started(&w), Some(Fallback::JoinerShowsCode));
}

#[test]
fn label_code_attempts_are_limited_for_the_devices_life() {
    let limit3 = |j: &mut JoinerConfig, s: &mut SponsorConfig| {
        full(&[Fallback::LabelCode, Fallback::JoinerShowsCode])(j, s);
        j.label_limit = AttemptLimit { max_attempts: 3 };
    };
    let mut w = world(28, limit3);
    run_unreachable(&mut w);
    for _ in 0..3 {
        w.sponsor.enter_code(w.now, "00000000", &mut w.rng).unwrap();
        settle(&mut w);
    }
    assert_eq!(w.joiner.state().stored().unwrap().label_attempts, 3);
    assert_eq!(
        w.joiner_failure(),
        Some(&JoinerFailure::AttemptLimitReached)
    );
    assert!(!w.handed_over());

    // Neither a reboot, nor the owner-action reset, nor a completed handoff gives them back.
    let mut flash = w.joiner.state().clone();
    let mut w = world_with_states(29, flash.clone(), MemoryPeerState::new(), limit3);
    w.joiner.reset_attempt_limit().unwrap();
    run_unreachable(&mut w);
    assert_eq!(fallback_started(&w), Some(Fallback::JoinerShowsCode));
    let code = shown_code(joiner_prompt(&w));
    w.sponsor
        .enter_code(w.now, &typed(&code), &mut w.rng)
        .unwrap();
    settle(&mut w);
    assert!(w.joined().is_some());
    assert_eq!(w.joiner.state().stored().unwrap().label_attempts, 3);
    flash = w.joiner.state().clone();
    let mut w = world_with_states(30, flash, MemoryPeerState::new(), limit3);
    run_unreachable(&mut w);
    assert_ne!(fallback_started(&w), Some(Fallback::LabelCode));

    // A factory reset (the state erased) does.
    let mut w = world_with_states(31, MemoryPeerState::new(), MemoryPeerState::new(), limit3);
    run_unreachable(&mut w);
    assert_eq!(fallback_started(&w), Some(Fallback::LabelCode));
}

#[test]
fn joiner_counts_the_attempt_before_its_pake_reply_leaves() {
    let mut w = world(32, full(&[Fallback::LabelCode]));
    run_unreachable(&mut w);
    assert_eq!(w.joiner.state().stored().map(|s| s.label_attempts), None);
    w.sponsor.enter_code(w.now, "00000000", &mut w.rng).unwrap();
    // The sponsor's share reaches the joiner; its reply is queued, not yet delivered.
    let share = w.sponsor.poll_transmit().unwrap();
    w.joiner.receive(w.now, &share.bytes, &mut w.rng);
    assert_eq!(w.joiner.state().stored().unwrap().label_attempts, 1);
    assert!(w.joiner.poll_transmit().is_some());
}

#[test]
fn owner_who_never_acts_ends_the_fallback() {
    let mut w = world(33, full(&[Fallback::JoinerShowsCode]));
    run_unreachable(&mut w);
    let deadline = w.sponsor.poll_timeout().unwrap();
    w.now = deadline;
    w.sponsor.handle_timeout(w.now, &mut w.rng);
    w.joiner.handle_timeout(w.now);
    settle(&mut w);
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::OwnerTimeout));
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::OwnerTimeout));
    assert!(w.sponsor.enter_code(w.now, "00000000", &mut w.rng).is_err());
}

// ---------------------------------------------------------------------------------------------
// Someone in the middle, or posing as the sponsor
// ---------------------------------------------------------------------------------------------

/// A relay: a channel to the joiner (as its sponsor) and one to the sponsor (as its joiner),
/// passing every plaintext message through, hiding the joiner's view of the binding so the
/// sponsor cannot stop early.
struct Relay {
    to_joiner: LocalChannel,
    to_sponsor: LocalChannel,
    saw_credential: bool,
    /// Commit to (and reveal) this nonce towards the joiner instead of the sponsor's.
    own_sas_nonce: Option<[u8; 16]>,
}

impl Relay {
    fn new(w: &mut World) -> Relay {
        let (to_joiner, to_sponsor) = open_relay(w);
        Relay {
            to_joiner,
            to_sponsor,
            saw_credential: false,
            own_sas_nonce: None,
        }
    }

    /// Moves everything through the relay; the server never answers.
    fn run(&mut self, w: &mut World) {
        for _ in 0..50 {
            let mut moved =
                relay_from_joiner(w, &mut self.to_joiner, &mut self.to_sponsor, Some(None));
            while let Some(t) = w.sponsor.poll_transmit() {
                moved = true;
                if t.destination != Destination::Joiner {
                    continue; // the server is unreachable
                }
                let r = self.to_sponsor.receive(&t.bytes).unwrap();
                for m in r.messages {
                    let mut env = Envelope::decode(&m).unwrap();
                    if env.header.tag == MessageTag::FallbackHandover {
                        self.saw_credential = true;
                    }
                    if let (Some(nonce), Body::Plain(b)) = (self.own_sas_nonce, &env.body) {
                        let binding = self.to_joiner.binding().unwrap();
                        if env.header.tag == MessageTag::FallbackStart {
                            let mut start = FallbackStart::decode_body(b).unwrap();
                            start.sas_commitment =
                                Some(flow2::sas_commitment(&RustCryptoProvider, &binding, &nonce));
                            env.body = Body::Plain(start.encode_body());
                        } else if env.header.tag == MessageTag::SasReveal {
                            env.body = Body::Plain(SasReveal { nonce }.encode_body());
                        }
                    }
                    let out = self.to_joiner.seal(&env.encode()).unwrap();
                    w.joiner.receive(w.now, &out, &mut w.rng);
                }
            }
            w.drain_events();
            if !moved {
                return;
            }
        }
        panic!("relay run did not settle");
    }

    fn run_unreachable(&mut self, w: &mut World) {
        for _ in 0..10 {
            self.run(w);
            if fallback_started(w).is_some() || w.sponsor.is_idle() {
                break;
            }
            let t = w.sponsor.poll_timeout().unwrap();
            w.now = t;
            w.sponsor.handle_timeout(w.now, &mut w.rng);
        }
        self.run(w);
    }
}

#[test]
fn relay_passing_the_compared_code_exchange_is_caught_by_the_commitment() {
    // The sponsor's commitment covers its own channel's binding; the joiner checks the reveal
    // against its own: a relay on two channels is caught before any code is shown.
    let mut w = world(40, full(&[Fallback::CompareCodes]));
    let mut relay = Relay::new(&mut w);
    relay.run_unreachable(&mut w);
    assert_eq!(
        w.joiner_failure(),
        Some(&JoinerFailure::SasCommitmentMismatch)
    );
    assert!(joiner_prompt(&w).is_none());
    assert!(w.sponsor.confirm_code(w.now, true).is_err() || !w.handed_over());
    relay.run(&mut w);
    assert!(!relay.saw_credential && !w.handed_over());
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::JoinerGaveUp));
}

#[test]
fn relay_running_its_own_compared_code_exchange_shows_two_different_codes() {
    // An active relay commits to a nonce of its own towards the joiner. It must do so before
    // it sees the joiner's nonce, so it cannot steer the joiner's code onto the sponsor's:
    // the owner sees two codes (the same only with probability 10^-6).
    for seed in 41..46 {
        let mut w = world(seed, full(&[Fallback::CompareCodes]));
        let mut relay = Relay::new(&mut w);
        relay.own_sas_nonce = Some([0x77; 16]);
        relay.run_unreachable(&mut w);
        let on_joiner = compared_code(joiner_prompt(&w));
        let on_sponsor = compared_code(sponsor_prompt(&w));
        assert_ne!(on_joiner, on_sponsor, "seed {seed}");
        // The owner, seeing two codes, says so; nothing is sent.
        w.sponsor.confirm_code(w.now, false).unwrap();
        relay.run(&mut w);
        assert!(!relay.saw_credential && !w.handed_over());
    }
}

#[test]
fn relay_in_the_middle_of_a_typed_code_gets_no_credential() {
    // The owner types the right code, but the PAKE is bound to each end's channel.
    let mut w = world(46, full(&[Fallback::JoinerShowsCode]));
    let mut relay = Relay::new(&mut w);
    relay.run_unreachable(&mut w);
    let code = shown_code(joiner_prompt(&w));
    w.sponsor
        .enter_code(w.now, &typed(&code), &mut w.rng)
        .unwrap();
    relay.run(&mut w);
    assert!(!relay.saw_credential && !w.handed_over() && w.joined().is_none());
    assert_eq!(code_rejections(&w), 1);
}

#[test]
fn relay_in_the_middle_of_a_label_code_gets_no_credential() {
    let mut w = world(47, full(&[Fallback::LabelCode]));
    let mut relay = Relay::new(&mut w);
    relay.run_unreachable(&mut w);
    w.sponsor.enter_code(w.now, LABEL, &mut w.rng).unwrap();
    relay.run(&mut w);
    assert!(!relay.saw_credential && !w.handed_over() && w.joined().is_none());
    assert_eq!(code_rejections(&w), 1);
}

/// The test posing as a sponsor over a channel of its own with the joiner.
struct RogueSponsor {
    channel: LocalChannel,
    session: SessionId,
}

impl RogueSponsor {
    fn new(w: &mut World) -> RogueSponsor {
        let (channel, session, _) = open_as_sponsor(w);
        RogueSponsor { channel, session }
    }

    fn send(&mut self, w: &mut World, tag: MessageTag, body: Vec<u8>) {
        let env = Envelope::plain(flow2::header(tag, self.session), body).unwrap();
        let out = self.channel.seal(&env.encode()).unwrap();
        w.joiner.receive(w.now, &out, &mut w.rng);
    }

    /// The joiner's messages, decrypted.
    fn received(&mut self, w: &mut World) -> Vec<Envelope> {
        let mut out = vec![];
        while let Some(bytes) = w.joiner.poll_transmit() {
            for m in self.channel.receive(&bytes).unwrap().messages {
                out.push(Envelope::decode(&m).unwrap());
            }
        }
        out
    }
}

#[test]
fn revealed_nonce_not_matching_the_commitment_is_refused() {
    // A sponsor (or relay) that could pick its nonce after seeing the joiner's could steer the
    // compared code; the commitment pins it first.
    let mut w = world(48, full(&[Fallback::CompareCodes]));
    let mut rogue = RogueSponsor::new(&mut w);
    let binding = rogue.channel.binding().unwrap();
    let committed = [1u8; 16];
    rogue.send(
        &mut w,
        MessageTag::FallbackStart,
        FallbackStart {
            fallback: Fallback::CompareCodes,
            sponsor_id: KeyId([5; 32]),
            sas_commitment: Some(flow2::sas_commitment(
                &RustCryptoProvider,
                &binding,
                &committed,
            )),
        }
        .encode_body(),
    );
    assert_eq!(rogue.received(&mut w)[0].header.tag, MessageTag::SasNonce);
    rogue.send(
        &mut w,
        MessageTag::SasReveal,
        SasReveal { nonce: [2; 16] }.encode_body(),
    );
    w.drain_events();
    assert_eq!(
        w.joiner_failure(),
        Some(&JoinerFailure::SasCommitmentMismatch)
    );
    assert!(joiner_prompt(&w).is_none(), "no code was shown");
}

#[test]
fn compared_code_handover_before_the_joiners_owner_confirmed_is_refused() {
    let mut w = world(49, full(&[Fallback::CompareCodes]));
    let mut rogue = RogueSponsor::new(&mut w);
    let binding = rogue.channel.binding().unwrap();
    let nonce = [1u8; 16];
    rogue.send(
        &mut w,
        MessageTag::FallbackStart,
        FallbackStart {
            fallback: Fallback::CompareCodes,
            sponsor_id: KeyId([5; 32]),
            sas_commitment: Some(flow2::sas_commitment(&RustCryptoProvider, &binding, &nonce)),
        }
        .encode_body(),
    );
    rogue.send(
        &mut w,
        MessageTag::SasReveal,
        SasReveal { nonce }.encode_body(),
    );
    let handover = FallbackHandover {
        confirm: None,
        credential: home(),
    };
    rogue.send(
        &mut w,
        MessageTag::FallbackHandover,
        handover.encode().to_vec(),
    );
    w.drain_events();
    assert!(w.joined().is_none());
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::Unexpected));
}

#[test]
fn pake_handover_without_a_valid_confirmation_is_refused() {
    for confirm in [None, Some([0u8; 32])] {
        let mut w = world(50, full(&[Fallback::LabelCode]));
        let mut rogue = RogueSponsor::new(&mut w);
        rogue.send(
            &mut w,
            MessageTag::FallbackStart,
            FallbackStart {
                fallback: Fallback::LabelCode,
                sponsor_id: KeyId([5; 32]),
                sas_commitment: None,
            }
            .encode_body(),
        );
        // A guessed code: a valid share, but not the label's.
        let secret = pake::prover_secret(
            &PairingCode::parse("00000000").unwrap(),
            &w.joiner_id,
            pake::CodeKind::Label,
        )
        .unwrap();
        let context = spake2plus::Context {
            context: b"whatever the rogue likes",
            prover_id: &[5; 32],
            verifier_id: &w.joiner_id.0,
        };
        let (_, share) = spake2plus::Prover::start(&secret, &context, &mut w.rng);
        rogue.send(
            &mut w,
            MessageTag::PakeShare,
            PakeShare {
                share: *share.as_bytes(),
            }
            .encode_body(),
        );
        assert_eq!(rogue.received(&mut w)[0].header.tag, MessageTag::PakeReply);
        let handover = FallbackHandover {
            confirm,
            credential: home(),
        };
        rogue.send(
            &mut w,
            MessageTag::FallbackHandover,
            handover.encode().to_vec(),
        );
        w.drain_events();
        assert!(w.joined().is_none(), "{confirm:?}");
        assert!(matches!(
            w.joiner_failure(),
            Some(JoinerFailure::WrongCode | JoinerFailure::Unexpected)
        ));
    }
}

#[test]
fn fallback_events_redact_codes_from_debug_output() {
    let mut w = world(51, full(&[Fallback::JoinerShowsCode]));
    run_unreachable(&mut w);
    let code = shown_code(joiner_prompt(&w));
    let shown = format!("{:?} {:?}", w.joiner_events, w.sponsor_events);
    let digits = std::str::from_utf8(code.digits()).unwrap();
    assert!(
        !shown.contains(digits) && !shown.contains(&code.grouped()),
        "{shown}"
    );
    // The text to show carries it, for the screen.
    let text = w
        .joiner_events
        .iter()
        .find_map(|e| match e {
            JoinerEvent::OwnerAction { text, .. } => Some(text.as_str().to_owned()),
            _ => None,
        })
        .unwrap();
    assert!(text.contains(&code.grouped()));
}
