//! Attacks on the wire, through the whole stack: an adversary on the setup network, the home
//! network or the path to the server reads, drops, rewrites, replays and forges messages
//! between the real device session and the real setup service. Each test is named for the
//! rule it checks and fails if the rule breaks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::flow1::binding::{CREDENTIALS_INFO, revocation_transcript, seal_aad};
use zerotouch_core::flow1::*;
use zerotouch_core::*;
use zerotouch_device::{Event, Path, Refusal, Trigger};
use zerotouch_server::{ServiceConfig, TransportIdentity};
use zerotouch_sim::*;
use zerotouch_store::ServerKeyStore;

fn sim(seed: u64) -> Sim<zerotouch_store::MemoryStore> {
    household_sim(
        SimConfig::new(seed),
        ServiceConfig::default(),
        DeviceSpec::fixture(1),
    )
    .unwrap()
    .0
}

fn signature_refused(sim: &Sim<zerotouch_store::MemoryStore>) -> bool {
    refusals(sim)
        .iter()
        .any(|r| matches!(r, Refusal::Signature(_)))
}

/// Rewrites every server proof with `f` (signature kept).
fn rewrite_proofs(f: impl Fn(&mut ServerProof) + 'static) -> Tap {
    Tap::new().server(move |_, _, b| {
        if tag_of(&b) != Some(MessageTag::ServerProof) {
            return vec![b];
        }
        let mut proof = ServerProof::decode_body(&signed_payload(&b)).unwrap();
        f(&mut proof);
        vec![with_signed_payload(&b, proof.encode_body())]
    })
}

#[test]
fn a_proof_resent_with_an_attackers_sealing_key_is_refused_and_the_pin_never_leaves() {
    let mut sim = sim(1);
    let rng = RefCell::new(ChaCha20Rng::seed_from_u64(99));
    sim.set_adversary(rewrite_proofs(move |p| {
        let attacker = SessionKeyPair::generate(p.suite, &mut *rng.borrow_mut()).unwrap();
        p.sealing_key = attacker.public_key().to_vec();
    }));
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert!(gave_up(&out), "{out:?}");
    assert!(signature_refused(&sim));
    assert!(
        sent_by_device(&sim, MessageTag::CredentialRequest).is_empty(),
        "no request, so neither PIN nor report, was sealed to the attacker's key"
    );
}

#[test]
fn a_sealing_key_swapped_in_from_another_session_is_refused() {
    let mut sim = sim(2);
    // Session 1's proof passes, its request is lost for good: session 1 fails. Session 2's
    // proof carries session 1's sealing key. Session 3 is left alone.
    type FirstSealingKey = Rc<RefCell<Option<(SessionId, Vec<u8>)>>>;
    let first_key: FirstSealingKey = Rc::default();
    let swapped: Rc<RefCell<Vec<SessionId>>> = Rc::default();
    let (fk, fk2, sw) = (first_key.clone(), first_key.clone(), swapped.clone());
    sim.set_adversary(
        Tap::new()
            .device(move |_, _, b| {
                let first = fk.borrow().as_ref().map(|(s, _)| *s);
                if tag_of(&b) == Some(MessageTag::CredentialRequest)
                    && first == Some(session_of(&b))
                {
                    return Wire::default();
                }
                Wire::forward(b)
            })
            .server(move |_, _, b| {
                if tag_of(&b) != Some(MessageTag::ServerProof) {
                    return vec![b];
                }
                let sid = session_of(&b);
                let mut proof = ServerProof::decode_body(&signed_payload(&b)).unwrap();
                let mut first = fk2.borrow_mut();
                match first.as_ref() {
                    None => {
                        *first = Some((sid, proof.sealing_key.clone()));
                        vec![b]
                    }
                    Some((s, _)) if *s == sid => vec![b],
                    Some((_, key)) => {
                        let mut sw = sw.borrow_mut();
                        if !sw.is_empty() && !sw.contains(&sid) {
                            return vec![b];
                        }
                        if !sw.contains(&sid) {
                            sw.push(sid);
                        }
                        proof.sealing_key = key.clone();
                        vec![with_signed_payload(&b, proof.encode_body())]
                    }
                }
            }),
    );
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(true));
    assert!(signature_refused(&sim));
    let swapped = swapped.borrow();
    assert_eq!(swapped.len(), 1);
    assert!(
        sent_by_device(&sim, MessageTag::CredentialRequest)
            .iter()
            .all(|r| session_of(r) != swapped[0]),
        "nothing was sealed under the swapped key"
    );
}

/// What the adversary needs to re-seal credentials: every message of the session is public.
#[derive(Default)]
struct Observed {
    hello: Option<Vec<u8>>,
    proof: Option<Vec<u8>>,
    request: Option<Vec<u8>>,
}

#[test]
fn a_credential_re_sealed_to_the_devices_session_key_is_refused() {
    let mut sim = sim(3);
    const ATTACKER_PASSPHRASE: &[u8] = b"attacker controls this";
    sim.air
        .access_points
        .push(AccessPoint::new("home", 2, 2, ATTACKER_PASSPHRASE, 10));
    let seen: Rc<RefCell<Observed>> = Rc::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    let rng = RefCell::new(ChaCha20Rng::seed_from_u64(7));
    sim.set_adversary(
        Tap::new()
            .device(move |_, _, b| {
                match tag_of(&b) {
                    Some(MessageTag::Hello) => s1.borrow_mut().hello = Some(b.clone()),
                    Some(MessageTag::CredentialRequest) => {
                        s1.borrow_mut().request = Some(b.clone())
                    }
                    _ => {}
                }
                Wire::forward(b)
            })
            .server(move |_, _, b| {
                let mut o = s2.borrow_mut();
                match tag_of(&b) {
                    Some(MessageTag::ServerProof) => o.proof = Some(b.clone()),
                    Some(MessageTag::CredentialResponse) => {
                        let proof_payload = signed_payload(o.proof.as_ref().unwrap());
                        let proof = ServerProof::decode_body(&proof_payload).unwrap();
                        let request_payload = signed_payload(o.request.as_ref().unwrap());
                        let request = CredentialRequest::decode_body(&request_payload).unwrap();
                        let mut t = t1_of(o.hello.as_ref().unwrap(), Transport::Https);
                        t.absorb_proof(&P, &proof_payload);
                        t.absorb_request(&P, &request_payload);
                        let sealed = seal_to(
                            proof.suite,
                            &request.session_key,
                            CREDENTIALS_INFO,
                            &seal_aad(&t.hash()),
                            &[ATTACKER_PASSPHRASE],
                            &mut *rng.borrow_mut(),
                        )
                        .unwrap();
                        let mut response =
                            CredentialResponse::decode_body(&signed_payload(&b)).unwrap();
                        response.encapsulated_key = sealed.encapsulated_key;
                        response.entries = vec![CredentialEntry {
                            ssid: b"home".to_vec(),
                            security: 2,
                            status: EntryStatus::Sealed,
                            ciphertext: sealed.ciphertexts[0].clone(),
                        }];
                        return vec![with_signed_payload(&b, response.encode_body())];
                    }
                    _ => {}
                }
                vec![b]
            }),
    );
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert!(gave_up(&out), "{out:?}");
    assert!(signature_refused(&sim));
    assert!(
        joins(&sim).is_empty(),
        "no credential was used, least of all the attacker's"
    );
}

#[test]
fn a_credential_entry_dropped_from_the_response_is_refused() {
    let mut sim = sim(4);
    sim.set_adversary(Tap::new().server(|_, _, b| {
        if tag_of(&b) != Some(MessageTag::CredentialResponse) {
            return vec![b];
        }
        let mut response = CredentialResponse::decode_body(&signed_payload(&b)).unwrap();
        assert!(response.entries.len() > 1, "the household has two networks");
        response.entries.remove(0);
        vec![with_signed_payload(&b, response.encode_body())]
    }));
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert!(gave_up(&out), "{out:?}");
    assert!(signature_refused(&sim));
    assert!(joins(&sim).is_empty());
}

#[test]
fn a_dropped_credential_response_is_recovered_with_the_stored_identical_bytes() {
    let mut sim = sim(5);
    let responses = seen();
    let r = responses.clone();
    sim.set_adversary(Tap::new().server(move |_, _, b| {
        if tag_of(&b) == Some(MessageTag::CredentialResponse) {
            r.borrow_mut().push(b.clone());
            if r.borrow().len() <= 2 {
                return Vec::new();
            }
        }
        vec![b]
    }));
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(true));
    let requests = sent_by_device(&sim, MessageTag::CredentialRequest);
    assert_eq!(requests.len(), 3, "two retransmissions");
    assert!(requests.windows(2).all(|w| w[0] == w[1]), "identical bytes");
    let responses = responses.borrow();
    assert_eq!(responses.len(), 3);
    assert!(
        responses.windows(2).all(|w| w[0] == w[1]),
        "the server answered each copy with the stored response"
    );
    assert_eq!(
        sent_by_device(&sim, MessageTag::Hello).len(),
        1,
        "one session"
    );
}

#[test]
fn a_stripped_pin_challenge_is_refused() {
    let mut sim = sim(6);
    sim.set_adversary(rewrite_proofs(|p| {
        assert!(p.pin_required, "the device has a PIN on record");
        p.pin_required = false;
    }));
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert!(gave_up(&out), "{out:?}");
    assert!(signature_refused(&sim));
    assert!(sent_by_device(&sim, MessageTag::CredentialRequest).is_empty());
}

#[test]
fn a_suite_downgraded_in_the_hello_is_detected_by_the_device() {
    let mut sim = sim(7);
    // The device prefers X25519; the attacker leaves only P-256 in the hello.
    sim.set_adversary(Tap::new().device(|_, _, b| {
        if tag_of(&b) != Some(MessageTag::Hello) {
            return Wire::forward(b);
        }
        let mut hello = Hello::decode_body(&plain_body(&b)).unwrap();
        assert!(hello.suites.len() > 1);
        hello.suites = vec![CipherSuite::P256_SHA256_CHACHA20POLY1305];
        Wire::forward(with_plain_body(&b, hello.encode_body()))
    }));
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert!(gave_up(&out), "{out:?}");
    assert!(
        signature_refused(&sim),
        "the proof is over the altered hello"
    );
    assert!(sent_by_device(&sim, MessageTag::CredentialRequest).is_empty());
}

#[test]
fn a_suite_or_version_downgraded_in_the_proof_is_refused() {
    for downgrade in [
        (|p: &mut ServerProof| p.suite = CipherSuite::P256_SHA256_CHACHA20POLY1305)
            as fn(&mut ServerProof),
        |p: &mut ServerProof| p.version = ProtocolVersion(0),
    ] {
        let mut sim = sim(8);
        sim.set_adversary(rewrite_proofs(move |p| {
            let before = p.clone();
            downgrade(p);
            if *p == before {
                // Already the weaker suite: make it the other one, still a change.
                p.suite = CipherSuite::SUPPORTED[0];
            }
        }));
        sim.start(Trigger::FirstBoot);
        let out = sim.run();
        assert!(gave_up(&out), "{out:?}");
        assert!(
            refusals(&sim)
                .iter()
                .any(|r| matches!(r, Refusal::Signature(_) | Refusal::Downgrade(_))),
            "{:?}",
            refusals(&sim)
        );
        assert!(sent_by_device(&sim, MessageTag::CredentialRequest).is_empty());
    }
}

/// Answers every hello itself with a proof signed by `signer` over the right transcript,
/// sealing to its own key, and keeps the hello from the server.
fn impersonate_server(signer: SoftwareSigner) -> Tap {
    let rng = RefCell::new(ChaCha20Rng::seed_from_u64(13));
    Tap::new().device(move |_, _, b| {
        if tag_of(&b) != Some(MessageTag::Hello) {
            return Wire::forward(b);
        }
        let t = t1_of(&b, Transport::Https);
        let mut rng = rng.borrow_mut();
        let suite = CipherSuite::P256_SHA256_CHACHA20POLY1305;
        let sealing = SessionKeyPair::generate(suite, &mut *rng).unwrap();
        let proof = ServerProof {
            version: ProtocolVersion::V1,
            suite,
            server_nonce: Nonce::random(&mut *rng),
            sealing_key: sealing.public_key().to_vec(),
            pin_required: true,
            expires_in_s: 120,
        };
        let forged = sign_message(
            header(MessageTag::ServerProof, session_of(&b)),
            KeyRole::SetupSigning,
            &t.hash(),
            proof.encode_body(),
            &signer,
            &P,
        )
        .unwrap()
        .encode();
        Wire {
            to_device: vec![forged],
            ..Wire::default()
        }
    })
}

#[test]
fn a_server_proof_signed_by_an_unpinned_key_is_refused() {
    let mut sim = sim(9);
    sim.set_adversary(impersonate_server(attacker_signer()));
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert!(gave_up(&out), "{out:?}");
    assert!(
        refusals(&sim)
            .iter()
            .all(|r| matches!(r, Refusal::KeyNotOffered | Refusal::Signature(_))),
        "{:?}",
        refusals(&sim)
    );
    assert!(!refusals(&sim).is_empty());
    assert!(sent_by_device(&sim, MessageTag::CredentialRequest).is_empty());
    assert!(
        !sim.events()
            .iter()
            .any(|(_, e)| matches!(e, Event::ServerAuthenticated { .. }))
    );
}

#[test]
fn a_replayed_server_proof_from_an_earlier_session_is_refused() {
    let mut sim = sim(10);
    let proofs = seen();
    let (p1, p2) = (proofs.clone(), proofs.clone());
    sim.set_adversary(
        Tap::new()
            .device(move |_, _, b| {
                let mut wire = Wire::forward(b.clone());
                if tag_of(&b) == Some(MessageTag::Hello)
                    && let Some(old) = p1.borrow().first()
                {
                    // Replayed as it was, and rewritten into the new session.
                    wire.to_device = vec![old.clone(), with_session(old, session_of(&b))];
                }
                wire
            })
            .server(move |_, _, b| {
                if tag_of(&b) == Some(MessageTag::ServerProof) {
                    p2.borrow_mut().push(b.clone());
                }
                vec![b]
            }),
    );
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(true));
    sim.start(Trigger::Button);
    assert_eq!(sim.run(), complete(true), "the genuine proof still works");
    let r = refusals(&sim);
    assert!(r.contains(&Refusal::WrongSession), "{r:?}");
    assert!(
        r.iter().any(|r| matches!(r, Refusal::Signature(_))),
        "{r:?}"
    );
}

#[test]
fn a_replayed_hello_and_pin_proof_get_nothing_new() {
    let mut sim = sim(11);
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(true));
    let hello = sent_by_device(&sim, MessageTag::Hello)[0].clone();
    let proof = sent_by_server(&sim, MessageTag::ServerProof)[0].clone();
    let request = sent_by_device(&sim, MessageTag::CredentialRequest)[0].clone();
    let response = sent_by_server(&sim, MessageTag::CredentialResponse)[0].clone();
    let attacker = TransportIdentity::Direct {
        transport: Transport::Https,
        client_key: None,
    };
    // Within the session's life: the stored answers, nothing fresh (the credentials in them
    // are sealed to the device's session key, which never left the device). More replays than
    // the PIN lock-out allows failures: none counts as an attempt.
    for _ in 0..ServiceConfig::default().pin_lockout.max_failures + 2 {
        let a = sim.send_to_server(&hello, &attacker);
        assert!(a == proof || code_of(&a).is_some(), "no new proof");
        assert_eq!(sim.send_to_server(&request, &attacker), response);
    }
    // After it: a hello names a device without proving anything, so the server may answer a
    // replayed one afresh; the replayed request is refused, in that new session or without it.
    sim.advance(ServiceConfig::default().session_lifetime.as_millis() as u64 + 60_000);
    assert!(code_of(&sim.send_to_server(&request, &attacker)).is_some());
    let a = sim.send_to_server(&hello, &attacker);
    assert_ne!(a, proof, "the old proof expired with its session");
    assert_eq!(
        code_of(&sim.send_to_server(&request, &attacker)),
        Some(ErrorCode::NotAuthorized),
        "signed over the old proof, not this one"
    );
    // The device is not locked out by any of it.
    sim.start(Trigger::Button);
    assert_eq!(sim.run(), complete(true));
}

#[test]
fn a_device_message_relayed_over_another_transport_makes_the_session_fail() {
    // The device speaks DNS; the attacker carries its hello to the server over HTTPS
    // instead, so the server's proof is over an HTTPS transcript.
    let spec = DeviceSpec {
        transport: Transport::Dns,
        ..DeviceSpec::fixture(1)
    };
    let (mut sim, _) = household_sim(SimConfig::new(12), ServiceConfig::default(), spec).unwrap();
    sim.set_adversary(Tap::new().device(|_, path, b| {
        if path == Path::Setup {
            return Wire {
                to_server_over: vec![(Transport::Https, b)],
                ..Wire::default()
            };
        }
        Wire::forward(b)
    }));
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert!(gave_up(&out), "{out:?}");
    assert!(!sent_by_server(&sim, MessageTag::ServerProof).is_empty());
    assert!(signature_refused(&sim));
    assert!(sent_by_device(&sim, MessageTag::CredentialRequest).is_empty());
}

#[test]
fn a_request_from_an_https_session_replayed_into_a_dns_session_is_refused() {
    let mut https = sim(13);
    https.start(Trigger::FirstBoot);
    assert_eq!(https.run(), complete(true));
    let hello = sent_by_device(&https, MessageTag::Hello)[0].clone();
    let request = sent_by_device(&https, MessageTag::CredentialRequest)[0].clone();
    // Another server process, same records: the hello opens a DNS session there. The request
    // is refused for two reasons (another proof, another transport); the transport alone is
    // held by a_device_message_relayed_over_another_transport_makes_the_session_fail.
    let mut other = sim(14);
    let dns = TransportIdentity::Direct {
        transport: Transport::Dns,
        client_key: None,
    };
    assert_eq!(
        tag_of(&other.send_to_server(&hello, &dns)),
        Some(MessageTag::ServerProof)
    );
    let answer = other.send_to_server(&request, &dns);
    assert_eq!(code_of(&answer), Some(ErrorCode::NotAuthorized));
}

#[test]
fn a_forged_unavailable_status_is_refused() {
    let mut sim = sim(15);
    sim.set_adversary(Tap::new().server(|_, _, b| {
        if tag_of(&b) != Some(MessageTag::CredentialResponse) {
            return vec![b];
        }
        let mut response = CredentialResponse::decode_body(&signed_payload(&b)).unwrap();
        let first = &mut response.entries[0];
        assert_eq!(first.status, EntryStatus::Sealed);
        first.status = EntryStatus::Unavailable;
        vec![with_signed_payload(&b, response.encode_body())]
    }));
    sim.start(Trigger::FirstBoot);
    let out = sim.run();
    assert!(gave_up(&out), "{out:?}");
    assert!(signature_refused(&sim));
    assert!(joins(&sim).is_empty(), "no entry of a forged list is used");
}

#[test]
fn a_forged_unsigned_error_only_delays_the_setup() {
    let mut sim = sim(16);
    // Every answer is preceded by an unsigned "not authorized, retry in a day".
    sim.set_adversary(Tap::new().device(|_, _, b| {
        let request = Envelope::decode(&b).unwrap().header;
        let forged = ErrorMessage {
            code: ErrorCode::NotAuthorized,
            retry_after_s: 86_400,
            supported_versions: vec![ProtocolVersion::V1],
        };
        // What the server's error to this request would carry in its header.
        let h = Header {
            tag: MessageTag::Error,
            seq: request.seq + 1,
            ..request
        };
        let env = Envelope::plain(h, forged.encode_body()).unwrap();
        Wire {
            to_server: vec![b],
            to_device: vec![env.encode()],
            ..Wire::default()
        }
    }));
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(true));
    assert!(
        sim.events()
            .iter()
            .any(|(_, e)| matches!(e, Event::ServerHint { .. }))
    );
}

/// Answers on the home path: the revocation query's answer replaced by `f`'s.
fn on_verdict(f: impl FnMut(Vec<u8>) -> Vec<Vec<u8>> + 'static) -> Tap {
    let f = RefCell::new(f);
    Tap::new().server(move |_, _, b| {
        if tag_of(&b) == Some(MessageTag::RevocationVerdict) {
            return (f.borrow_mut())(b);
        }
        vec![b]
    })
}

#[test]
fn a_forged_not_revoked_verdict_is_refused() {
    let mut sim = sim(17);
    let queries = seen();
    let q = queries.clone();
    let attacker = attacker_signer();
    let mut tap = on_verdict(move |genuine| {
        // The attacker's "good" for the queried key, over the right transcript (the query is
        // public), signed by its own key.
        let query = q.borrow().last().cloned().unwrap();
        let th = revocation_transcript(
            &P,
            Transport::Https,
            &session_of(&query),
            &plain_body(&query),
        );
        let env = Envelope::decode(&genuine).unwrap();
        let verdict = RevocationVerdict::decode_body(&signed_payload(&genuine)).unwrap();
        let forged = RevocationVerdict {
            status: RevocationStatus::Good,
            replacement: None,
            ..verdict
        };
        let forged = sign_message(
            env.header,
            KeyRole::RevocationVerdict,
            &th,
            forged.encode_body(),
            &attacker,
            &P,
        )
        .unwrap()
        .encode();
        vec![forged]
    });
    tap.on_device = Box::new(move |_, _, b| {
        if tag_of(&b) == Some(MessageTag::RevocationQuery) {
            queries.borrow_mut().push(b.clone());
        }
        Wire::forward(b)
    });
    sim.set_adversary(tap);
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(false), "checked only by a pinned key");
    assert!(signature_refused(&sim));
}

#[test]
fn a_replayed_good_verdict_does_not_hide_a_revocation() {
    let mut sim = sim(18);
    let verdicts = seen();
    let v = verdicts.clone();
    let replay = Rc::new(RefCell::new(false));
    let r = replay.clone();
    sim.set_adversary(on_verdict(move |genuine| {
        let mut out = Vec::new();
        if *r.borrow()
            && let Some(old) = v.borrow().first()
        {
            out.push(old.clone());
            out.push(with_session(old, session_of(&genuine)));
        }
        v.borrow_mut().push(genuine.clone());
        out.push(genuine);
        out
    }));
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(true));
    let [first_key, second_key, _] = sim.deployment().key_ids;
    // A second setup through the first key; once the device has joined, the first key is
    // revoked (the revocation check is what tells the device).
    sim.start(Trigger::Button);
    let out = sim.run_until(|e| matches!(e, Event::Joined { .. }));
    assert!(matches!(out, Outcome::Stopped(Event::Joined { .. })));
    assert!(
        sim.events()
            .iter()
            .any(|(_, e)| *e == Event::ServerAuthenticated { key_id: first_key })
    );
    sim.block_on(sim.deployment().service.store().revoke_server_key(
        &first_key,
        Some(second_key),
        sim.now(),
    ))
    .unwrap();
    *replay.borrow_mut() = true;
    let out = sim.run_until(|e| matches!(e, Event::KeyRevoked { .. }));
    assert_eq!(
        out,
        Outcome::Stopped(Event::KeyRevoked {
            key_id: first_key,
            replacement: Some(second_key)
        })
    );
    let r = refusals(&sim);
    assert!(
        r.iter().any(|r| matches!(
            r,
            Refusal::WrongSession | Refusal::WrongNonce | Refusal::Signature(_)
        )),
        "{r:?}"
    );
    // It sets up again through the replacement key.
    assert_eq!(sim.run(), complete(true));
    assert!(
        sim.storage()
            .stored()
            .unwrap()
            .dropped_keys
            .contains(&first_key)
    );
}

#[test]
fn an_unreachable_revocation_service_keeps_the_key_and_completes_unchecked() {
    let mut sim = sim(19);
    sim.set_adversary(on_verdict(|_| Vec::new()));
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(false));
    assert_eq!(
        joined(&sim),
        vec![b"home".to_vec()],
        "it stays on the network"
    );
    assert!(sim.storage().stored().unwrap().dropped_keys.is_empty());
}
