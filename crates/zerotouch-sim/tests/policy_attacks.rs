//! The setup service's policy rules (PROTOCOL.md 15.4) attacked through the whole stack: the
//! real device session, setup network and setup service on a real store, driven by the
//! simulation. One test per rule, each named for it; each asserts what the device ends up
//! with (which networks it joined, which events it saw) and what the server put on the wire
//! (error codes, credential entries, byte equality), so it fails if the rule is broken.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use core::time::Duration;
use std::path::Path;

use zerotouch_core::flow1::{CredentialResponse, EntryStatus, SetupTranscript};
use zerotouch_core::{
    Body, Envelope, ErrorCode, Instant, KeyRole, Message, MessageTag, RustCryptoProvider,
    SessionId, Transport,
};
use zerotouch_device::{Event, Failure, Trigger};
use zerotouch_server::{AmbiguousKeyPolicy, ServiceConfig};
use zerotouch_sim::{
    AccessPoint, Air, Deployment, DeviceSpec, EPOCH, HOME_2G_PASSPHRASE, LinkConditions,
    NEIGHBOUR_PASSPHRASE, Outcome, Sender, Sent, Sim, SimConfig, SimError, household,
    household_air, household_sim, runtime,
};
use zerotouch_store::{
    AccountStore, AssociationAction, AssociationChange, AssociationStore, AttemptState,
    AttemptStore, Bands, CounterKey, CounterScope, DeviceStore, LockoutPolicy, OutcomeKind,
    OutcomeStore, RegistrarId, SecurityType, SqliteOptions, SqliteStore, StaticDataKey, Store,
};
use zerotouch_store_suite::fixtures;

use common::{error_of, join_attempts, joined, session_failures};

/// The data key the SQLite databases of these tests are sealed with.
const DATA_KEY: StaticDataKey = StaticDataKey([3; 32]);

/// The end of a run that went all the way: joined, acknowledged, revocation checked.
const COMPLETE: Outcome = Outcome::Stopped(Event::Complete {
    revocation_checked: true,
});

// ---- reading a run ------------------------------------------------------------------------

fn ssid(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn show(ssids: &[Vec<u8>]) -> Vec<String> {
    ssids
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn count_events<St: Store>(sim: &Sim<St>, f: impl Fn(&Event) -> bool) -> usize {
    sim.events().iter().filter(|(_, e)| f(e)).count()
}

fn session_of(sent: &Sent) -> SessionId {
    Envelope::decode(&sent.bytes).unwrap().header.session_id
}

/// What the server sent, in `trace`.
fn server_answers(trace: &[Sent]) -> Vec<&Sent> {
    trace
        .iter()
        .filter(|s| s.sender == Sender::Server)
        .collect()
}

/// Datagrams `sender` sent with `tag`.
fn with_tag(trace: &[Sent], sender: Sender, tag: MessageTag) -> Vec<&Sent> {
    trace
        .iter()
        .filter(|s| s.sender == sender && s.tag() == Some(tag))
        .collect()
}

/// The session ids of the hellos the device sent, each once, in order (retransmissions
/// repeat a session id).
fn setup_sessions(trace: &[Sent]) -> Vec<SessionId> {
    let mut out = Vec::new();
    for s in with_tag(trace, Sender::Device, MessageTag::Hello) {
        let sid = session_of(s);
        if !out.contains(&sid) {
            out.push(sid);
        }
    }
    out
}

fn code_of(sent: &Sent) -> Option<ErrorCode> {
    common::code_of(&sent.bytes)
}

/// Every credential response the server sent to fixture device `seed`, verified the way the
/// device verifies it: the transcript rebuilt from the hello, the proof (against the pinned
/// keys) and the request (against the device's key) of its session.
fn credential_responses<St: Store>(sim: &Sim<St>, seed: u8) -> Vec<CredentialResponse> {
    let p = RustCryptoProvider;
    let pinned = &sim.deployment().pinned;
    let device_key = fixtures::device_key(seed).public_key();
    let trace = sim.trace();
    let find = |sender: Sender, tag: MessageTag, sid: SessionId| {
        let sent = with_tag(trace, sender, tag)
            .into_iter()
            .find(|s| session_of(s) == sid)
            .unwrap_or_else(|| panic!("no {tag:?} in session {sid:?}"));
        Envelope::decode(&sent.bytes).unwrap()
    };
    with_tag(trace, Sender::Server, MessageTag::CredentialResponse)
        .into_iter()
        .map(|sent| {
            let env = Envelope::decode(&sent.bytes).unwrap();
            let sid = env.header.session_id;
            let hello = find(Sender::Device, MessageTag::Hello, sid);
            let Body::Plain(hello_body) = &hello.body else {
                panic!("signed hello")
            };
            let mut t = SetupTranscript::after_hello(&p, Transport::Https, &sid, hello_body);
            let proof = find(Sender::Server, MessageTag::ServerProof, sid);
            let Body::Signed(ps) = &proof.body else {
                panic!("unsigned proof")
            };
            let payload = ps
                .verify_trusted(&proof.header, KeyRole::SetupSigning, &t.hash(), pinned, &p)
                .unwrap();
            t.absorb_proof(&p, payload);
            let request = find(Sender::Device, MessageTag::CredentialRequest, sid);
            let Body::Signed(rs) = &request.body else {
                panic!("unsigned request")
            };
            let payload = rs
                .verify(
                    &request.header,
                    KeyRole::DeviceIdentity,
                    &t.hash(),
                    &device_key,
                    &p,
                )
                .unwrap();
            t.absorb_request(&p, payload);
            let Body::Signed(s) = &env.body else {
                panic!("unsigned response")
            };
            let payload = s
                .verify_trusted(&env.header, KeyRole::SetupSigning, &t.hash(), pinned, &p)
                .unwrap();
            CredentialResponse::decode_body(payload).unwrap()
        })
        .collect()
}

/// (SSID, status) of each entry of a response.
fn entries(response: &CredentialResponse) -> Vec<(String, EntryStatus)> {
    response
        .entries
        .iter()
        .map(|e| (String::from_utf8_lossy(&e.ssid).into_owned(), e.status))
        .collect()
}

/// Asserts the device never got past the hello: every server answer is `NotAuthorized`, no
/// proof, no credentials, no join, and it gave up after its session budget.
fn assert_got_nothing<St: Store>(sim: &Sim<St>, outcome: &Outcome) {
    let answers = server_answers(sim.trace());
    assert!(!answers.is_empty(), "the server answered");
    for a in &answers {
        assert_eq!(a.tag(), Some(MessageTag::Error), "only errors");
        assert_eq!(code_of(a), Some(ErrorCode::NotAuthorized));
    }
    assert!(with_tag(sim.trace(), Sender::Device, MessageTag::CredentialRequest).is_empty());
    assert_eq!(
        count_events(sim, |e| matches!(e, Event::ServerAuthenticated { .. })),
        0
    );
    assert!(join_attempts(sim).is_empty());
    assert_eq!(
        *outcome,
        Outcome::Stopped(Event::GaveUp {
            reason: Failure::Timeout
        })
    );
    // Errors are hints: every session ran out its retransmissions, none ended on an error.
    assert_eq!(
        session_failures(sim),
        vec![Failure::Timeout; 5],
        "each of the five sessions of its budget times out"
    );
}

// ---- building worlds --------------------------------------------------------------------

fn pin_counter(seed: u8) -> CounterKey {
    CounterKey::new(
        CounterScope::PinAttempts,
        fixtures::device_id(seed).0.to_vec(),
    )
}

fn attempts<St: Store>(sim: &Sim<St>, seed: u8) -> AttemptState {
    sim.block_on(
        sim.deployment()
            .service
            .store()
            .attempt_state(pin_counter(seed)),
    )
    .unwrap()
}

async fn open_sqlite(path: &Path) -> Result<SqliteStore, SimError> {
    Ok(SqliteStore::open(path, &DATA_KEY, SqliteOptions::default()).await?)
}

/// A simulation of `spec` over the SQLite database at `path`, which already holds the
/// household: a server process started afresh over it.
fn sim_on_existing_db(
    path: &Path,
    config: ServiceConfig,
    registrar: RegistrarId,
    sim_config: SimConfig,
    spec: DeviceSpec,
) -> Result<Sim<SqliteStore>, SimError> {
    let rt = runtime()?;
    let store = rt.block_on(open_sqlite(path))?;
    let deployment = Deployment::reopen(store, config, registrar)?;
    Sim::new(rt, deployment, sim_config, spec, household_air())
}

/// A link that delivers everything, each way after `ms`.
fn slow_link(ms: u64) -> LinkConditions {
    LinkConditions {
        loss_per_mille: 0,
        duplicate_per_mille: 0,
        min_delay_ms: ms,
        max_delay_ms: ms,
    }
}

/// Adds an association of device `seed` with `account`, after the registration, as an import
/// or an operator tool could.
fn add_second_association<St: Store>(
    sim: &Sim<St>,
    seed: u8,
    account: zerotouch_store::AccountId,
) -> Result<(), SimError> {
    let d = sim.deployment();
    sim.block_on(
        d.service
            .store()
            .apply_association_change(AssociationChange {
                action: AssociationAction::Add,
                device: fixtures::device_id(seed),
                account,
                registrar: d.registrar,
                label: None,
                at: Instant(EPOCH.0 + 1_000),
            }),
    )?;
    Ok(())
}

// ---- rule 6: PIN attempts and lock-outs ------------------------------------------------------

#[test]
fn wrong_pin_is_counted_and_locks_out_across_a_server_restart() -> Result<(), SimError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zerotouch.db");
    let lockout = Duration::from_secs(3_600);
    let config = ServiceConfig {
        pin_lockout: LockoutPolicy {
            max_failures: 2,
            lockout,
        },
        ..ServiceConfig::default()
    };

    // A device whose firmware holds the wrong PIN.
    let rt = runtime()?;
    let store = rt.block_on(open_sqlite(&path))?;
    let deployment = rt.block_on(Deployment::new(store, config.clone()))?;
    rt.block_on(household(&deployment))?;
    let registrar = deployment.registrar;
    let mut wrong = DeviceSpec::fixture(1);
    wrong.pin = Some("000000".to_string());
    let mut sim = Sim::new(rt, deployment, SimConfig::new(61), wrong, household_air())?;
    sim.start(Trigger::FirstBoot);

    // The first session: the PIN is checked after the key proof, refused and counted.
    // The device cannot tell a refused PIN from silence (errors are unsigned hints): it
    // retransmits until its budget is spent.
    let first = sim.run_until(|e| matches!(e, Event::SessionFailed { .. }));
    assert_eq!(
        first,
        Outcome::Stopped(Event::SessionFailed {
            reason: Failure::Timeout
        })
    );
    let requests = with_tag(sim.trace(), Sender::Device, MessageTag::CredentialRequest);
    assert!(
        !requests.is_empty(),
        "the authenticated server asked for the PIN"
    );
    let sid = session_of(requests[0]);
    let answers: Vec<_> = server_answers(sim.trace())
        .into_iter()
        .filter(|s| session_of(s) == sid && s.tag() != Some(MessageTag::ServerProof))
        .collect();
    assert!(!answers.is_empty());
    for a in &answers {
        assert_eq!(code_of(a), Some(ErrorCode::NotAuthorized));
    }
    let state = attempts(&sim, 1);
    assert_eq!(
        (state.failures, state.locked_until),
        (1, None),
        "one wrong PIN counted, once (its retransmissions are not new attempts)"
    );

    // The rest of its budget: the second wrong PIN locks the device out; then even its hello
    // is refused.
    let outcome = sim.run();
    assert!(
        matches!(outcome, Outcome::Stopped(Event::GaveUp { .. })),
        "{outcome:?}"
    );
    assert!(join_attempts(&sim).is_empty(), "a wrong PIN gets nothing");
    assert!(with_tag(sim.trace(), Sender::Server, MessageTag::CredentialResponse).is_empty());
    let state = attempts(&sim, 1);
    assert_eq!(state.lockouts, 1);
    let locked_until = state.locked_until.expect("locked out");
    assert!(locked_until.0 > sim.now().0);
    let proofs = with_tag(sim.trace(), Sender::Server, MessageTag::ServerProof);
    let mut proof_sessions: Vec<SessionId> = proofs.iter().map(|s| session_of(s)).collect();
    proof_sessions.dedup();
    assert_eq!(
        proof_sessions.len(),
        2,
        "two sessions got a proof, then none"
    );
    assert!(setup_sessions(sim.trace()).len() > 2);

    // The server restarts: a new process over the same database, nothing kept in memory.
    let reopened = sim.block_on(open_sqlite(&path))?;
    sim.restart_server(reopened)?;
    let before = sim.trace().len();
    sim.start(Trigger::Button);
    let outcome = sim.run();
    assert!(matches!(outcome, Outcome::Stopped(Event::GaveUp { .. })));
    let after_restart = &sim.trace()[before..];
    assert!(!server_answers(after_restart).is_empty());
    for a in server_answers(after_restart) {
        assert_eq!(code_of(a), Some(ErrorCode::NotAuthorized), "still locked");
    }
    let clock = sim.now();
    drop(sim);

    // The device with the right PIN, against yet another server process: still refused
    // while the lock-out lasts…
    let mut right = sim_on_existing_db(
        &path,
        config,
        registrar,
        SimConfig::new(62),
        DeviceSpec::fixture(1),
    )?;
    right.advance(clock.0 - right.now().0);
    right.start(Trigger::FirstBoot);
    let outcome = right.run();
    assert_got_nothing(&right, &outcome);
    assert!(
        right.now().0 < locked_until.0,
        "refused within the lock-out"
    );

    // …and served once it is over.
    right.advance(locked_until.0 - right.now().0 + 1_000);
    right.start(Trigger::Button);
    assert_eq!(right.run(), COMPLETE);
    assert_eq!(joined(&right), vec![ssid("home")]);
    let state = attempts(&right, 1);
    assert_eq!(
        (state.failures, state.lockouts),
        (0, 1),
        "the right PIN clears the failures, the next lock-out stays longer"
    );
    Ok(())
}

// ---- rule 8: nonces and sessions expire ----------------------------------------------------

#[test]
fn expired_nonce_is_refused_and_the_device_starts_a_fresh_session() -> Result<(), SimError> {
    // A one-second nonce over a link that takes 0.9 s each way: the request reaches the server
    // 1.8 s after the proof left it.
    let service = ServiceConfig {
        nonce_lifetime: Duration::from_secs(1),
        ..ServiceConfig::default()
    };
    let mut config = SimConfig::new(81);
    config.setup_link = slow_link(900);
    let (mut sim, _) = household_sim(config, service, DeviceSpec::fixture(1))?;
    sim.start(Trigger::FirstBoot);
    let first = sim.run_until(|e| matches!(e, Event::SessionFailed { .. }));
    assert_eq!(
        first,
        Outcome::Stopped(Event::SessionFailed {
            reason: Failure::ProofExpired
        })
    );
    let sessions = setup_sessions(sim.trace());
    assert_eq!(sessions.len(), 1);
    let stale = sessions[0];
    let answers: Vec<_> = server_answers(sim.trace())
        .into_iter()
        .filter(|s| session_of(s) == stale)
        .collect();
    assert_eq!(answers[0].tag(), Some(MessageTag::ServerProof));
    assert!(answers.len() >= 2, "the request was answered");
    for a in &answers[1..] {
        let e = error_of(&a.bytes).expect("an error");
        assert_eq!((e.code, e.retry_after_s), (ErrorCode::SessionExpired, 0));
    }
    assert!(join_attempts(&sim).is_empty());

    // The link recovers; the device's next session is a fresh one and completes.
    sim.set_links(LinkConditions::PERFECT, LinkConditions::PERFECT);
    assert_eq!(sim.run(), COMPLETE);
    let sessions = setup_sessions(sim.trace());
    assert_eq!(sessions.len(), 2);
    assert_ne!(sessions[1], stale, "a fresh session id");
    let responses = with_tag(sim.trace(), Sender::Server, MessageTag::CredentialResponse);
    assert!(!responses.is_empty());
    assert!(
        responses.iter().all(|s| session_of(s) == sessions[1]),
        "no credentials ever answer the expired nonce"
    );
    assert_eq!(joined(&sim), vec![ssid("home")]);
    Ok(())
}

#[test]
fn expired_session_is_refused_and_the_device_starts_a_fresh_session() -> Result<(), SimError> {
    // The nonce would live two minutes, but the session only one second.
    let service = ServiceConfig {
        session_lifetime: Duration::from_secs(1),
        ..ServiceConfig::default()
    };
    let mut config = SimConfig::new(82);
    config.setup_link = slow_link(900);
    let (mut sim, _) = household_sim(config, service, DeviceSpec::fixture(1))?;
    sim.start(Trigger::FirstBoot);
    let first = sim.run_until(|e| matches!(e, Event::SessionFailed { .. }));
    // The device's proof is still valid: it retransmits until its budget is spent.
    assert_eq!(
        first,
        Outcome::Stopped(Event::SessionFailed {
            reason: Failure::Timeout
        })
    );
    let stale = setup_sessions(sim.trace())[0];
    let answers: Vec<_> = server_answers(sim.trace())
        .into_iter()
        .filter(|s| session_of(s) == stale)
        .collect();
    assert_eq!(answers[0].tag(), Some(MessageTag::ServerProof));
    assert!(
        answers.len() >= 3,
        "the request and its retransmissions were answered"
    );
    for a in &answers[1..] {
        assert_eq!(code_of(a), Some(ErrorCode::SessionExpired));
    }
    let hints = count_events(&sim, |e| {
        matches!(
            e,
            Event::ServerHint {
                code: ErrorCode::SessionExpired,
                ..
            }
        )
    });
    assert!(hints >= 1, "the device saw the refusals as hints");
    assert!(join_attempts(&sim).is_empty());

    sim.set_links(LinkConditions::PERFECT, LinkConditions::PERFECT);
    assert_eq!(sim.run(), COMPLETE);
    let sessions = setup_sessions(sim.trace());
    assert_eq!(sessions.len(), 2);
    assert_ne!(sessions[1], stale);
    assert!(
        with_tag(sim.trace(), Sender::Server, MessageTag::CredentialResponse)
            .iter()
            .all(|s| session_of(s) == sessions[1])
    );
    assert_eq!(joined(&sim), vec![ssid("home")]);
    Ok(())
}

// ---- rule 12: ambiguous associations -------------------------------------------------------

#[test]
fn ambiguous_association_is_refused_under_refuse_policy() -> Result<(), SimError> {
    let service = ServiceConfig {
        ambiguous_key: AmbiguousKeyPolicy::Refuse,
        ..ServiceConfig::default()
    };
    let (mut sim, accounts) = household_sim(SimConfig::new(121), service, DeviceSpec::fixture(1))?;
    add_second_association(&sim, 1, accounts.neighbour)?;
    let store = sim.deployment().service.store();
    assert_eq!(
        sim.block_on(store.associations_of_device(&fixtures::device_id(1)))?
            .len(),
        2
    );
    sim.start(Trigger::FirstBoot);
    let outcome = sim.run();
    assert_got_nothing(&sim, &outcome);

    // An operator resolves it: the device is served again, from its one account.
    let d = sim.deployment();
    sim.block_on(
        d.service
            .store()
            .apply_association_change(AssociationChange {
                action: AssociationAction::Remove,
                device: fixtures::device_id(1),
                account: accounts.neighbour,
                registrar: d.registrar,
                label: None,
                at: Instant(EPOCH.0 + 2_000),
            }),
    )?;
    sim.start(Trigger::Button);
    assert_eq!(sim.run(), COMPLETE);
    assert_eq!(joined(&sim), vec![ssid("home")]);
    Ok(())
}

#[test]
fn ambiguous_association_resolves_to_the_most_recent_account_under_most_recent_policy()
-> Result<(), SimError> {
    let service = ServiceConfig {
        ambiguous_key: AmbiguousKeyPolicy::MostRecent,
        ..ServiceConfig::default()
    };
    let (mut sim, accounts) = household_sim(SimConfig::new(122), service, DeviceSpec::fixture(1))?;
    // Registered to the owner at the epoch; the neighbour's association is a second later.
    add_second_association(&sim, 1, accounts.neighbour)?;
    // The owner's networks are stronger: were the older association used, "home" would win.
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), COMPLETE);
    assert_eq!(show(&join_attempts(&sim)), ["neighbour"]);
    assert_eq!(joined(&sim), vec![ssid("neighbour")]);
    let responses = credential_responses(&sim, 1);
    assert_eq!(responses.len(), 1);
    assert_eq!(
        entries(&responses[0]),
        [("neighbour".to_string(), EntryStatus::Sealed)],
        "nothing of the older account's"
    );
    Ok(())
}

// ---- rule 9: unknown, unowned, blocked devices ---------------------------------------------

#[test]
fn a_device_with_no_association_gets_nothing() -> Result<(), SimError> {
    // Device 3 is imported but registered to nobody.
    let (mut sim, accounts) = household_sim(
        SimConfig::new(91),
        ServiceConfig::default(),
        DeviceSpec::fixture(3),
    )?;
    sim.start(Trigger::FirstBoot);
    let outcome = sim.run();
    assert_got_nothing(&sim, &outcome);

    // Once registered, the same device is served: the association is what was missing.
    sim.block_on(sim.deployment().register(3, accounts.owner))?;
    sim.start(Trigger::Button);
    assert_eq!(sim.run(), COMPLETE);
    assert_eq!(joined(&sim), vec![ssid("home")]);
    Ok(())
}

#[test]
fn a_blocked_device_gets_nothing() -> Result<(), SimError> {
    let (mut sim, _) = household_sim(
        SimConfig::new(92),
        ServiceConfig::default(),
        DeviceSpec::fixture(1),
    )?;
    let store = sim.deployment().service.store();
    sim.block_on(store.set_blocked(&fixtures::device_id(1), true))?;
    sim.start(Trigger::FirstBoot);
    let outcome = sim.run();
    assert_got_nothing(&sim, &outcome);

    // Unblocked, the same device is served: the block is what stopped it.
    let store = sim.deployment().service.store();
    sim.block_on(store.set_blocked(&fixtures::device_id(1), false))?;
    sim.start(Trigger::Button);
    assert_eq!(sim.run(), COMPLETE);
    assert_eq!(joined(&sim), vec![ssid("home")]);
    Ok(())
}

#[test]
fn enumeration_unknown_unowned_blocked_locked_and_ambiguous_answers_are_identical()
-> Result<(), SimError> {
    // Each device runs with the same simulation seed, so its RNG draws the same session ids
    // and nonces: whatever differs in the server's answers would come from the device's
    // state on the server.
    let cases: [(&str, u8); 5] = [
        ("unknown", 9),
        ("unowned", 3),
        ("blocked", 1),
        ("locked", 1),
        ("ambiguous", 1),
    ];
    let mut runs = Vec::new();
    for (case, seed) in cases {
        let (mut sim, accounts) = household_sim(
            SimConfig::new(90),
            ServiceConfig::default(),
            DeviceSpec::fixture(seed),
        )?;
        let store = sim.deployment().service.store();
        match case {
            "blocked" => sim.block_on(store.set_blocked(&fixtures::device_id(1), true))?,
            "locked" => {
                let policy = LockoutPolicy {
                    max_failures: 1,
                    lockout: Duration::from_secs(3_600),
                };
                let state =
                    sim.block_on(store.record_failure(pin_counter(1), policy, sim.now()))?;
                assert!(state.is_locked(sim.now()));
            }
            "ambiguous" => add_second_association(&sim, 1, accounts.neighbour)?,
            _ => {}
        }
        sim.start(Trigger::FirstBoot);
        let outcome = sim.run();
        assert_got_nothing(&sim, &outcome);
        let hellos = with_tag(sim.trace(), Sender::Device, MessageTag::Hello);
        let answers: Vec<(u64, Vec<u8>)> = server_answers(sim.trace())
            .iter()
            .map(|s| (s.at.0, s.bytes.clone()))
            .collect();
        runs.push((case, session_of(hellos[0]), answers, sim.events().to_vec()));
    }
    let (_, sid, answers, events) = &runs[0];
    for (case, other_sid, other_answers, other_events) in &runs[1..] {
        assert_eq!(other_sid, sid, "{case}: same session ids, so bytes compare");
        assert_eq!(
            other_answers.len(),
            answers.len(),
            "{case}: as many answers"
        );
        for (i, ((at, a), (other_at, b))) in answers.iter().zip(other_answers).enumerate() {
            assert_eq!(a.len(), b.len(), "{case}: answer {i}: length");
            assert_eq!(a, b, "{case}: answer {i}: bytes");
            assert_eq!(at, other_at, "{case}: answer {i}: time");
        }
        assert_eq!(
            other_events, events,
            "{case}: the device saw the same thing"
        );
    }
    Ok(())
}

// ---- rule 7: which credentials a device gets ------------------------------------------------

#[test]
fn two_accounts_each_device_gets_only_its_own_network() -> Result<(), SimError> {
    // One server database, two devices in the same air: device 1 belongs to the owner,
    // device 2 to the neighbour.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zerotouch.db");
    let rt = runtime()?;
    let store = rt.block_on(open_sqlite(&path))?;
    let deployment = rt.block_on(Deployment::new(store, ServiceConfig::default()))?;
    rt.block_on(household(&deployment))?;
    let registrar = deployment.registrar;
    let mut owners = Sim::new(
        rt,
        deployment,
        SimConfig::new(71),
        DeviceSpec::fixture(1),
        household_air(),
    )?;
    let mut neighbours = sim_on_existing_db(
        &path,
        ServiceConfig::default(),
        registrar,
        SimConfig::new(72),
        DeviceSpec::fixture(2),
    )?;
    owners.start(Trigger::FirstBoot);
    neighbours.start(Trigger::FirstBoot);
    assert_eq!(owners.run(), COMPLETE);
    assert_eq!(neighbours.run(), COMPLETE);

    assert_eq!(show(&join_attempts(&owners)), ["home"]);
    assert_eq!(joined(&owners), vec![ssid("home")]);
    assert_eq!(show(&join_attempts(&neighbours)), ["neighbour"]);
    assert_eq!(joined(&neighbours), vec![ssid("neighbour")]);

    // Both saw every network; each response holds only its own account's.
    let owner_entries = entries(&credential_responses(&owners, 1)[0]);
    assert_eq!(
        owner_entries,
        [
            ("home".to_string(), EntryStatus::Sealed),
            ("home-2g".to_string(), EntryStatus::Sealed),
        ]
    );
    let neighbour_entries = entries(&credential_responses(&neighbours, 2)[0]);
    assert_eq!(
        neighbour_entries,
        [("neighbour".to_string(), EntryStatus::Sealed)]
    );
    Ok(())
}

#[test]
fn networks_of_another_account_or_a_downgraded_security_are_not_released_and_the_next_is_joined()
-> Result<(), SimError> {
    let (mut sim, _) = household_sim(
        SimConfig::new(72),
        ServiceConfig::default(),
        DeviceSpec::fixture(1),
    )?;
    // Strongest: the neighbour's network (not the owner's); then an access point named like
    // the WPA3 "home" that offers only WPA2 (a look-alike, or a downgrade), which accepts the
    // real passphrase; then "home-2g".
    sim.air = Air {
        access_points: vec![
            AccessPoint::new("neighbour", 2, 2, NEIGHBOUR_PASSPHRASE, 20),
            AccessPoint::new("home", 2, 1, fixtures::PASSPHRASE, 30),
            AccessPoint::new("home-2g", 1, 1, HOME_2G_PASSPHRASE, 55),
        ],
    };
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), COMPLETE);
    let responses = credential_responses(&sim, 1);
    assert_eq!(responses.len(), 1);
    assert_eq!(
        entries(&responses[0]),
        [
            ("home".to_string(), EntryStatus::Unavailable),
            ("home-2g".to_string(), EntryStatus::Sealed),
        ],
        "no entry for another account's network; the look-alike is unavailable"
    );
    let home = &responses[0].entries[0];
    assert!(
        home.ciphertext.is_empty(),
        "no passphrase for the look-alike"
    );
    assert_eq!(home.security, 2, "the owner's configured security");
    assert_eq!(show(&join_attempts(&sim)), ["home-2g"]);
    assert_eq!(joined(&sim), vec![ssid("home-2g")]);
    Ok(())
}

#[test]
fn band_filtering_a_2_4_ghz_radio_never_gets_a_5_ghz_only_network() -> Result<(), SimError> {
    const FIVE: &[u8] = b"five gigahertz only";
    let world = |radio_bands: u8| -> Result<Sim<zerotouch_store::MemoryStore>, SimError> {
        let mut spec = DeviceSpec::fixture(1);
        spec.radio_bands = radio_bands;
        let (mut sim, accounts) =
            household_sim(SimConfig::new(73), ServiceConfig::default(), spec)?;
        // The owner recorded "home-5g" as 5 GHz only; its name is also on the air at 2.4 GHz
        // (the strongest there), accepting the same passphrase.
        sim.block_on(sim.deployment().add_network(
            accounts.owner,
            "home-5g",
            FIVE,
            SecurityType::Wpa3Personal,
            Bands::GHZ_5,
        ))?;
        sim.air
            .access_points
            .push(AccessPoint::new("home-5g", 2, 2, FIVE, 15));
        sim.air
            .access_points
            .push(AccessPoint::new("home-5g", 1, 2, FIVE, 20));
        Ok(sim)
    };

    let mut narrow = world(1)?;
    narrow.start(Trigger::FirstBoot);
    assert_eq!(narrow.run(), COMPLETE);
    let responses = credential_responses(&narrow, 1);
    assert_eq!(
        entries(&responses[0]),
        [
            ("home-5g".to_string(), EntryStatus::UnsupportedByRadio),
            ("home".to_string(), EntryStatus::Sealed),
            ("home-2g".to_string(), EntryStatus::Sealed),
        ]
    );
    assert!(responses[0].entries[0].ciphertext.is_empty());
    assert_eq!(show(&join_attempts(&narrow)), ["home"]);
    assert_eq!(joined(&narrow), vec![ssid("home")]);

    // The same world with a dual-band radio gets "home-5g": the radio's band is what decides.
    let mut wide = world(3)?;
    wide.start(Trigger::FirstBoot);
    assert_eq!(wide.run(), COMPLETE);
    let responses = credential_responses(&wide, 1);
    assert_eq!(
        responses[0].entries[0].ssid,
        b"home-5g",
        "{:?}",
        entries(&responses[0])
    );
    assert_eq!(responses[0].entries[0].status, EntryStatus::Sealed);
    assert_eq!(joined(&wide), vec![ssid("home-5g")]);
    Ok(())
}

// ---- device behaviour (15.5): a failed join moves on ---------------------------------------

/// What goes wrong with an access point.
type Breakage = fn(&mut AccessPoint);

#[test]
fn join_failure_moves_to_the_next_credential_without_a_new_session() -> Result<(), SimError> {
    let breakages: [(&str, Breakage); 2] = [
        ("DHCP never answers", |ap| ap.dhcp_broken = true),
        ("the router's passphrase changed", |ap| {
            ap.passphrase = b"changed since the account was set up".to_vec();
        }),
    ];
    for (why, break_it) in breakages {
        let (mut sim, accounts) = household_sim(
            SimConfig::new(151),
            ServiceConfig::default(),
            DeviceSpec::fixture(1),
        )?;
        for ap in &mut sim.air.access_points {
            if ap.ssid == b"home" {
                break_it(ap);
            }
        }
        sim.start(Trigger::FirstBoot);
        assert_eq!(sim.run(), COMPLETE, "{why}");
        assert_eq!(show(&join_attempts(&sim)), ["home", "home-2g"], "{why}");
        assert_eq!(joined(&sim), vec![ssid("home-2g")], "{why}");
        assert!(
            session_failures(&sim).is_empty(),
            "{why}: no session failed"
        );
        let sessions = setup_sessions(sim.trace());
        assert_eq!(sessions.len(), 1, "{why}: one hello");
        assert_eq!(
            with_tag(sim.trace(), Sender::Device, MessageTag::CredentialRequest).len(),
            1,
            "{why}: one credential request"
        );
        // The server's record: one outcome, for that one session, on "home-2g".
        let store = sim.deployment().service.store();
        let outcomes = sim.block_on(store.outcomes_of_device(&fixtures::device_id(1)))?;
        let networks = sim.block_on(store.networks_of_account(accounts.owner))?;
        let home_2g = networks.iter().find(|n| n.ssid == b"home-2g").unwrap().id;
        assert_eq!(outcomes.len(), 1, "{why}");
        assert_eq!(outcomes[0].session, sessions[0], "{why}");
        assert_eq!(outcomes[0].kind, OutcomeKind::Joined, "{why}");
        assert_eq!(outcomes[0].network, Some(home_2g), "{why}");
    }
    Ok(())
}
