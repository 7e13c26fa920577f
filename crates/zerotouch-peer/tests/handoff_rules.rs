//! The rules of flow 2 on the devices, one test each, against an association server the test
//! plays itself. Each test fails if its rule is broken.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use zerotouch_core::flow2::{
    self, ChallengeData, ChallengeResponse, ChannelBinding, CommitmentKey, CredentialHandover,
    HomeCredential, PeerCredentialRequest, VerificationRequest, credential_commitment,
};
use zerotouch_core::*;
use zerotouch_peer::*;

#[test]
fn happy_path_hands_over_the_credential() {
    let mut w = World::new(1);
    w.start();
    w.run();
    match w.joined() {
        Some(JoinerEvent::Join {
            ssid,
            security,
            passphrase,
        }) => {
            assert_eq!(ssid, b"home");
            assert_eq!(*security, 2);
            assert_eq!(passphrase.expose_secret(), PASSPHRASE);
        }
        other => panic!("no join: {other:?} / {:?}", w.sponsor_events),
    }
    assert!(w.handed_over());
    assert!(w.joiner.is_finished() && w.sponsor.is_finished());
    assert_eq!(w.server.requests.len(), 1);
    // Both attempt counters are back to zero after the completed handoff.
    assert_eq!(w.joiner.state().stored().unwrap().attempts, 0);
    assert_eq!(w.sponsor.state().stored().unwrap().attempts, 0);
}

#[test]
fn credential_never_crosses_the_link_in_clear() {
    let mut w = World::new(2);
    w.start();
    w.run();
    assert!(w.joined().is_some());
    let link = &w.local_bytes;
    for secret in [PASSPHRASE, b"home".as_slice(), &w.joiner_id.0[..]] {
        assert!(
            !link.windows(secret.len()).any(|win| win == secret),
            "clear text on the link"
        );
    }
}

#[test]
fn verification_request_carries_the_sponsors_own_binding_and_no_credential() {
    let mut w = World::new(3);
    w.start();
    let mut sponsor_binding = None;
    w.run();
    for e in &w.sponsor_events {
        if let SponsorEvent::ChannelOpen { binding } = e {
            sponsor_binding = Some(*binding);
        }
    }
    let env = Envelope::decode(&w.server.requests[0]).unwrap();
    let Body::Signed(body) = &env.body else {
        panic!()
    };
    let th = flow2::handoff_transcript(&RustCryptoProvider, &env.header.session_id);
    let payload = body
        .verify(
            &env.header,
            KeyRole::DeviceIdentity,
            &th,
            &w.server.sponsor_key,
            &RustCryptoProvider,
        )
        .unwrap();
    let request = VerificationRequest::decode_body(payload).unwrap();
    assert_eq!(Some(request.binding), sponsor_binding);
    let bytes = &w.server.requests[0];
    let hash = RustCryptoProvider.sha256(&[PASSPHRASE]);
    assert!(!bytes.windows(PASSPHRASE.len()).any(|win| win == PASSPHRASE));
    assert!(!bytes.windows(32).any(|win| win == hash));
}

/// A device between joiner and sponsor: two channels, plaintext forwarded between them.
struct Relay {
    to_joiner: LocalChannel,
    to_sponsor: LocalChannel,
    rewrite_seen_binding: Option<Option<ChannelBinding>>,
    forge_answer: bool,
    got_handover: bool,
}

/// Runs joiner ↔ relay ↔ sponsor (with the test server) until nothing moves.
fn run_relayed(w: &mut World, relay: &mut Relay) {
    for _ in 0..50 {
        let mut moved = relay_from_joiner(
            w,
            &mut relay.to_joiner,
            &mut relay.to_sponsor,
            relay.rewrite_seen_binding,
        );
        while let Some(t) = w.sponsor.poll_transmit() {
            moved = true;
            match t.destination {
                Destination::AssociationServer => {
                    let answer = w.server.answer(&t.bytes, &mut w.rng);
                    w.sponsor.receive_server(w.now, &answer, &mut w.rng);
                }
                Destination::Joiner => {
                    let r = relay.to_sponsor.receive(&t.bytes).unwrap();
                    if !r.reply.is_empty() {
                        w.sponsor.receive_local(w.now, &r.reply, &mut w.rng);
                    }
                    for m in r.messages {
                        let env = Envelope::decode(&m).unwrap();
                        if env.header.tag == MessageTag::CredentialHandover {
                            relay.got_handover = true;
                        }
                        if env.header.tag == MessageTag::ChallengeData && relay.forge_answer {
                            // Without the device secret, the relay can only guess.
                            let answer = ChallengeResponse {
                                answer: flow2::ChallengeAnswer::new([7; 32]),
                            };
                            let e = Envelope::plain(
                                flow2::header(MessageTag::ChallengeResponse, env.header.session_id),
                                answer.encode_body(),
                            )
                            .unwrap();
                            let out = relay.to_sponsor.seal(&e.encode()).unwrap();
                            w.sponsor.receive_local(w.now, &out, &mut w.rng);
                            continue;
                        }
                        let out = relay.to_joiner.seal(&m).unwrap();
                        w.joiner.receive(w.now, &out, &mut w.rng);
                    }
                }
            }
        }
        w.drain_events();
        if !moved {
            return;
        }
    }
    panic!("relay run did not settle");
}

fn relay(w: &mut World) -> Relay {
    let (to_joiner, to_sponsor) = open_relay(w);
    Relay {
        to_joiner,
        to_sponsor,
        rewrite_seen_binding: None,
        forge_answer: false,
        got_handover: false,
    }
}

#[test]
fn relay_in_the_middle_gets_no_credential() {
    // The relay hides the joiner's view of the binding, so the sponsor cannot stop early: the
    // sponsor has its own binding signed, the joiner sees it is not its channel's and stops.
    let mut w = World::new(4);
    let mut r = relay(&mut w);
    r.rewrite_seen_binding = Some(None);
    run_relayed(&mut w, &mut r);
    assert!(!r.got_handover && !w.handed_over() && w.joined().is_none());
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::BindingMismatch));
    // The joiner never answered: its device secret was not used.
    assert!(
        !w.joiner_events
            .iter()
            .any(|e| matches!(e, JoinerEvent::Challenged { .. }))
    );
}

#[test]
fn relay_answering_for_the_joiner_gets_no_credential() {
    let mut w = World::new(5);
    let mut r = relay(&mut w);
    r.rewrite_seen_binding = Some(None);
    r.forge_answer = true;
    run_relayed(&mut w, &mut r);
    assert!(!r.got_handover && !w.handed_over());
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::WrongAnswer));
}

#[test]
fn joiner_supplied_binding_is_never_signed() {
    // The relay passes on the joiner's own binding (of the joiner–relay channel). A sponsor
    // that signed the joiner's value would get the relay a valid answer; this one stops.
    let mut w = World::new(6);
    let mut r = relay(&mut w);
    run_relayed(&mut w, &mut r);
    assert!(
        w.server.requests.is_empty(),
        "the sponsor asked the server about a foreign binding"
    );
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::BindingMismatch));
    assert!(!r.got_handover);
}

#[test]
fn wrong_device_secret_gets_no_credential() {
    let w = World::new(7);
    let pinned = w.pinned.clone();
    let id = w.joiner_id;
    let mut w = w.with_joiner(
        JoinerConfig::new(id, DeviceSecret::new([1; 32]), pinned),
        MemoryPeerState::new(),
    );
    w.start();
    w.run();
    assert!(w.joined().is_none() && !w.handed_over());
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::WrongAnswer));
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::SponsorRefused));
}

#[test]
fn not_associated_refusal_reaches_the_joiner_as_a_hint() {
    let mut w = World::new(8);
    w.start();
    w.run_with(&mut |_, bytes, _| Some(server_error(bytes, ErrorCode::NotAssociated)));
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::ServerRefused));
    assert!(w.joiner_events.contains(&JoinerEvent::SponsorHint {
        code: ErrorCode::NotAssociated
    }));
    assert!(w.joined().is_none());
}

/// One handoff against a server that tampers as told.
fn run_tampered(seed: u64, tamper: ServerTampering) -> World {
    let mut w = World::new(seed);
    w.server.tamper = tamper;
    w.start();
    w.run();
    assert!(w.joined().is_none() && !w.handed_over());
    w
}

/// A server answer about something else than the request: the sponsor refuses it.
fn sponsor_finds_the_verification_wrong(seed: u64, tamper: ServerTampering) {
    let w = run_tampered(seed, tamper);
    assert_eq!(
        w.sponsor_failure(),
        Some(&SponsorFailure::WrongVerification)
    );
}

#[test]
fn tampered_challenge_data_is_refused() {
    for tamper in [
        ServerTampering {
            flip_challenge_payload: true,
            ..Default::default()
        },
        ServerTampering {
            sign_challenge_with_other_key: true,
            ..Default::default()
        },
    ] {
        let w = run_tampered(9, tamper);
        assert!(matches!(
            w.sponsor_failure(),
            Some(SponsorFailure::Signature(_))
        ));
    }
}

#[test]
fn tampered_commitment_is_refused() {
    sponsor_finds_the_verification_wrong(
        10,
        ServerTampering {
            commitment: Some(flow2::Commitment([3; 32])),
            ..Default::default()
        },
    );
}

#[test]
fn tampered_binding_is_refused() {
    sponsor_finds_the_verification_wrong(
        11,
        ServerTampering {
            binding: Some(ChannelBinding([4; 32])),
            ..Default::default()
        },
    );
}

#[test]
fn challenge_for_another_joiner_is_refused() {
    sponsor_finds_the_verification_wrong(
        12,
        ServerTampering {
            joiner_id: Some(KeyId([5; 32])),
            ..Default::default()
        },
    );
}

#[test]
fn tampered_expected_answer_is_refused() {
    for tamper in [
        ServerTampering {
            flip_sealed_answer: true,
            ..Default::default()
        },
        ServerTampering {
            seal_over_other_aad: true,
            ..Default::default()
        },
    ] {
        let w = run_tampered(13, tamper);
        assert!(matches!(
            w.sponsor_failure(),
            Some(SponsorFailure::SealedAnswer(_))
        ));
    }
}

/// Drives the joiner alone, playing the sponsor with raw channel operations: a rogue or
/// replaying sponsor.
struct RogueSponsor {
    channel: LocalChannel,
    session: SessionId,
    request: PeerCredentialRequest,
}

fn rogue(w: &mut World) -> RogueSponsor {
    let (channel, session, request) = open_as_sponsor(w);
    RogueSponsor {
        channel,
        session,
        request,
    }
}

/// The server's challenge data for what the rogue saw, with the true binding.
fn signed_challenge(
    w: &mut World,
    r: &RogueSponsor,
    commitment: flow2::Commitment,
    session: SessionId,
) -> Vec<u8> {
    let data = ChallengeData {
        sponsor_id: KeyId([8; 32]),
        joiner_id: r.request.joiner_id,
        nonce: r.request.nonce,
        commitment,
        binding: r.channel.binding().unwrap(),
        challenge: flow2::Challenge([9; 32]),
    };
    let th = flow2::handoff_transcript(&RustCryptoProvider, &session);
    sign_message(
        flow2::header(MessageTag::ChallengeData, session),
        KeyRole::Association,
        &th,
        data.encode_body(),
        &w.server.signer,
        &RustCryptoProvider,
    )
    .unwrap()
    .encode()
}

#[test]
fn credential_not_matching_the_commitment_is_refused() {
    let mut w = World::new(14);
    let mut r = rogue(&mut w);
    let key = CommitmentKey::new([6; 32]);
    let committed = credential_commitment(
        &RustCryptoProvider,
        &key,
        &r.session,
        &r.request.nonce,
        &w.joiner_id,
        &home(),
    );
    let cd = signed_challenge(&mut w, &r, committed, r.session);
    let out = r.channel.seal(&cd).unwrap();
    w.joiner.receive(w.now, &out, &mut w.rng);
    let answer = w
        .joiner
        .poll_transmit()
        .expect("the joiner answers a valid challenge");
    r.channel.receive(&answer).unwrap();
    // Another network than the one the server vouched for.
    let other = HomeCredential {
        ssid: b"evil".to_vec(),
        security: 2,
        passphrase: Passphrase::new(b"attacker's network").unwrap(),
    };
    let handover = CredentialHandover {
        commitment_key: key,
        credential: other,
    };
    let env = Envelope::plain(
        flow2::header(MessageTag::CredentialHandover, r.session),
        handover.encode().to_vec(),
    )
    .unwrap();
    let out = r.channel.seal(&env.encode()).unwrap();
    w.joiner.receive(w.now, &out, &mut w.rng);
    w.drain_events();
    assert!(w.joined().is_none());
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::CommitmentMismatch));
}

#[test]
fn replayed_challenge_data_is_refused() {
    // Challenge data signed for an earlier handoff (its session and nonce) is worth nothing
    // in the next one.
    let mut w = World::new(15);
    let old = rogue(&mut w);
    let old_cd = signed_challenge(&mut w, &old, flow2::Commitment([1; 32]), old.session);
    let mut r = rogue(&mut w);
    assert_ne!(r.session, old.session);
    let out = r.channel.seal(&old_cd).unwrap();
    w.joiner.receive(w.now, &out, &mut w.rng);
    w.drain_events();
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::WrongHandoff));
    assert!(
        w.joiner.poll_transmit().is_none(),
        "the joiner answered a replayed challenge"
    );
}

#[test]
fn challenge_data_not_signed_by_a_pinned_key_is_refused() {
    let mut w = World::new(16);
    let mut r = rogue(&mut w);
    let mut cd = signed_challenge(&mut w, &r, flow2::Commitment([1; 32]), r.session);
    let at = cd.len() - 70;
    cd[at] ^= 1;
    let out = r.channel.seal(&cd).unwrap();
    w.joiner.receive(w.now, &out, &mut w.rng);
    w.drain_events();
    assert!(matches!(
        w.joiner_failure(),
        Some(JoinerFailure::Signature(_))
    ));
    assert!(w.joiner.poll_transmit().is_none());
}

#[test]
fn expired_nonce_is_refused() {
    let mut w = World::new(17);
    let mut r = rogue(&mut w);
    let cd = signed_challenge(&mut w, &r, flow2::Commitment([1; 32]), r.session);
    let out = r.channel.seal(&cd).unwrap();
    // 60 s of the joiner's own clock later.
    w.joiner
        .receive(Instant(w.now.0 + 60_000), &out, &mut w.rng);
    w.drain_events();
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::NonceExpired));
    assert!(w.joiner.poll_transmit().is_none());
}

#[test]
fn nonce_expiry_fires_as_a_timeout() {
    let mut w = World::new(18);
    let _r = rogue(&mut w);
    let deadline = w.joiner.poll_timeout().unwrap();
    assert_eq!(deadline, Instant(w.now.0 + 60_000));
    w.joiner.handle_timeout(deadline);
    w.drain_events();
    assert_eq!(w.joiner_failure(), Some(&JoinerFailure::NonceExpired));
    assert!(w.joiner.is_idle());
}

#[test]
fn server_cannot_confirm_a_guessed_credential() {
    // The test plays a curious server: it has the signed request (with the commitment) and a
    // dictionary that contains the true passphrase. Nothing it can compute from what it saw
    // matches the commitment, because the commitment key never reaches it.
    let mut w = World::new(19);
    w.start();
    w.run();
    assert!(w.joined().is_some());
    let bytes = w.server.requests[0].clone();
    let env = Envelope::decode(&bytes).unwrap();
    let Body::Signed(body) = &env.body else {
        panic!()
    };
    let th = flow2::handoff_transcript(&RustCryptoProvider, &env.header.session_id);
    let payload = body
        .verify(
            &env.header,
            KeyRole::DeviceIdentity,
            &th,
            &w.server.sponsor_key,
            &RustCryptoProvider,
        )
        .unwrap();
    let request = VerificationRequest::decode_body(payload).unwrap();
    let p = RustCryptoProvider;
    let guesses: [&[u8]; 3] = [b"password123", PASSPHRASE, b"letmein!!"];
    let candidate_keys = [
        [0u8; 32],
        p.sha256(&[&bytes]),
        p.sha256(&[payload]),
        request.binding.0,
    ];
    for guess in guesses {
        let credential = HomeCredential {
            ssid: b"home".to_vec(),
            security: 2,
            passphrase: Passphrase::new(guess).unwrap(),
        };
        assert_ne!(p.sha256(&[guess]), request.commitment.0);
        for k in candidate_keys {
            let c = credential_commitment(
                &p,
                &CommitmentKey::new(k),
                &env.header.session_id,
                &request.nonce,
                &request.joiner_id,
                &credential,
            );
            assert!(!c.matches(&request.commitment));
        }
    }
    // And the same credential commits differently in every handoff: nothing to correlate.
    let mut again = World::new(19);
    again.rng = ChaCha20Rng::seed_from_u64(99);
    again.start();
    again.run();
    let other = Envelope::decode(&again.server.requests[0]).unwrap();
    assert_ne!(other.encode(), env.encode());
}

#[test]
fn attempt_limit_survives_a_reboot() {
    // A joiner with a wrong secret fails; each failure is counted before the answer goes out.
    let mut state = MemoryPeerState::new();
    let limited = |w: World, state: MemoryPeerState| {
        let mut c = JoinerConfig::new(w.joiner_id, DeviceSecret::new([1; 32]), w.pinned.clone());
        c.limit = AttemptLimit { max_attempts: 2 };
        w.with_joiner(c, state)
    };
    for attempt in 1..=2u32 {
        let mut w = limited(World::new(20 + u64::from(attempt)), state.clone());
        w.server.joiner_secret = DeviceSecret::new([2; 32]);
        w.start();
        w.run();
        assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::WrongAnswer));
        state = w.joiner.state().clone();
        assert_eq!(state.stored().unwrap().attempts, attempt);
    }
    // "Reboot": a new joiner on the same flash. It refuses to answer again.
    let mut w = limited(World::new(30), state.clone());
    w.start();
    w.run();
    assert_eq!(
        w.joiner_failure(),
        Some(&JoinerFailure::AttemptLimitReached)
    );
    assert!(
        !w.joiner_events
            .iter()
            .any(|e| matches!(e, JoinerEvent::Challenged { .. }))
    );
    // Only an explicit reset (an owner action) lifts it.
    w.joiner.reset_attempt_limit().unwrap();
    assert_eq!(w.joiner.state().stored().unwrap().attempts, 0);
}

#[test]
fn sponsor_attempt_limit_survives_a_reboot() {
    let mut sponsor_state = MemoryPeerState::new();
    for attempt in 1..=5u32 {
        let mut w = World::with_states(
            40 + u64::from(attempt),
            MemoryPeerState::new(),
            sponsor_state.clone(),
        );
        w.server.joiner_secret = DeviceSecret::new([2; 32]);
        w.start();
        w.run();
        assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::WrongAnswer));
        sponsor_state = w.sponsor.state().clone();
        assert_eq!(sponsor_state.stored().unwrap().attempts, attempt);
    }
    let mut w = World::with_states(50, MemoryPeerState::new(), sponsor_state);
    w.start();
    w.run();
    assert_eq!(
        w.sponsor_failure(),
        Some(&SponsorFailure::AttemptLimitReached)
    );
    assert!(!w.handed_over());
}

#[test]
fn attempt_is_counted_before_the_answer_is_sent() {
    let mut w = World::new(60);
    let mut r = rogue(&mut w);
    let cd = signed_challenge(&mut w, &r, flow2::Commitment([1; 32]), r.session);
    let out = r.channel.seal(&cd).unwrap();
    w.joiner.receive(w.now, &out, &mut w.rng);
    // The answer is queued and the count is already on flash: a power cut now still counts.
    assert!(w.joiner.poll_transmit().is_some());
    assert_eq!(w.joiner.state().stored().unwrap().attempts, 1);
}

#[test]
fn unreachable_server_is_retried_with_identical_bytes_then_reported() {
    let mut w = World::new(61);
    w.start();
    let mut sent: Vec<Vec<u8>> = vec![];
    w.run_with(&mut |_, bytes, _| {
        sent.push(bytes.to_vec());
        None
    });
    for _ in 0..4 {
        let t = w.sponsor.poll_timeout().unwrap();
        w.now = t;
        w.sponsor.handle_timeout(t, &mut w.rng);
        w.run_with(&mut |_, bytes, _| {
            sent.push(bytes.to_vec());
            None
        });
    }
    assert_eq!(sent.len(), 4, "one request and three retransmissions");
    assert!(sent.windows(2).all(|p| p[0] == p[1]));
    assert_eq!(
        w.sponsor_failure(),
        Some(&SponsorFailure::ServerUnreachable)
    );
    assert!(w.joiner_events.contains(&JoinerEvent::SponsorHint {
        code: ErrorCode::HandoffUnavailable
    }));
}

#[test]
fn joiner_that_never_answers_times_out_at_the_sponsor() {
    let mut w = World::new(62);
    w.start();
    // Deliver everything except the joiner's answer.
    w.run_with(&mut |s, b, rng| Some(s.answer(b, rng)));
    assert!(w.handed_over(), "baseline");
    let mut w = World::new(63);
    let mut r = relay(&mut w);
    r.rewrite_seen_binding = Some(None);
    run_relayed(&mut w, &mut r);
    let t = w.sponsor.poll_timeout().unwrap();
    w.sponsor.handle_timeout(t, &mut w.rng);
    w.drain_events();
    assert_eq!(w.sponsor_failure(), Some(&SponsorFailure::AnswerTimeout));
}

#[test]
fn debug_output_redacts_secrets() {
    let w = World::new(64);
    let text = format!("{:?} {:?} {:?}", w.joiner, w.sponsor, home());
    assert!(!text.contains("correct horse"));
    let key = CommitmentKey::new([0xab; 32]);
    assert!(!format!("{key:?}").contains("ab"));
}
