//! The setup service's rules, one test each, driven with a hand-built device and a manual
//! clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use core::time::Duration;
use zerotouch_core::flow1::*;
use zerotouch_core::*;
use zerotouch_server::*;
use zerotouch_store::*;
use zerotouch_store_suite::fixtures;

const PIN: &str = fixtures::PIN;

fn no_pin() -> ServiceConfig {
    ServiceConfig {
        pin_policy: PinPolicy::Never,
        ..ServiceConfig::default()
    }
}

async fn full_run<St: Store>(
    w: &World<St>,
    report: &DeviceReport,
    now: Instant,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = Client::new(w.device_seed, &w.pinned);
    proof_for(w, &mut c, now).await;
    let req = c.request(report);
    let resp = w.service.handle(&req, &direct(), now, &mut fresh()).await;
    let (response, opened) = c.open_response(&req, &resp, &w.pinned);
    let sealed: Vec<_> = response
        .entries
        .iter()
        .filter(|e| e.status == EntryStatus::Sealed)
        .collect();
    sealed
        .iter()
        .zip(opened)
        .map(|(e, p)| (e.ssid.clone(), p.to_vec()))
        .collect()
}

#[tokio::test]
async fn setup_with_pin_releases_every_reported_network_of_the_account() {
    let w = world(ServiceConfig::default()).await;
    let mut c = Client::new(1, &w.pinned);
    let proof = proof_for(&w, &mut c, T0).await;
    assert!(proof.pin_required);
    let req = c.request(&report(Some(PIN)));
    let resp = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    let (response, opened) = c.open_response(&req, &resp, &w.pinned);
    assert_eq!(response.entries.len(), 2);
    assert_eq!(response.entries[0].ssid, b"home");
    assert_eq!(response.entries[0].security, 2, "WPA3 when both sides can");
    assert_eq!(response.entries[1].ssid, b"home-2g");
    assert_eq!(opened[0].as_slice(), PASSPHRASE);
    assert_eq!(opened[1].as_slice(), b"two point four only");
}

#[tokio::test]
async fn setup_without_pin_needs_none_when_policy_says_never() {
    let w = world(no_pin()).await;
    let got = full_run(&w, &report(None), T0).await;
    assert_eq!(got.len(), 2);
}

#[tokio::test]
async fn a_single_network_is_released_alone() {
    let w = world(no_pin()).await;
    let mut r = report(None);
    r.networks.truncate(1);
    let got = full_run(&w, &r, T0).await;
    assert_eq!(got, vec![(b"home".to_vec(), PASSPHRASE.to_vec())]);
}

#[tokio::test]
async fn unknown_blocked_locked_and_unowned_devices_get_identical_errors() {
    let config = ServiceConfig {
        pin_lockout: LockoutPolicy {
            max_failures: 1,
            lockout: Duration::from_secs(3600),
        },
        ..ServiceConfig::default()
    };
    let w = world(config).await;
    let answer = |seed: u8| {
        let mut c = Client::new(seed, &w.pinned);
        c.hello();
        c.sid = SessionId([0x55; 16]);
        let hello = Envelope::plain(header(MessageTag::Hello, c.sid), c.hello_body.clone())
            .unwrap()
            .encode();
        let svc = &w.service;
        async move { svc.handle(&hello, &direct(), T0, &mut fresh()).await }
    };
    // Device 3 does not exist; device 2 exists but belongs to nobody.
    let unknown = answer(3).await;
    let unowned = answer(2).await;
    assert_eq!(code_of(&unknown), Some(ErrorCode::NotAuthorized));
    assert_eq!(unknown, unowned);
    // Locked: one wrong PIN with a valid key proof.
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request(&report(Some("000000")));
    let r = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
    let locked = answer(1).await;
    assert_eq!(locked, unknown);
    // Blocked.
    let w2 = world(ServiceConfig::default()).await;
    w2.service
        .store()
        .set_blocked(&fixtures::device_id(1), true)
        .await
        .unwrap();
    let mut c = Client::new(1, &w2.pinned);
    c.hello();
    c.sid = SessionId([0x55; 16]);
    let hello = Envelope::plain(header(MessageTag::Hello, c.sid), c.hello_body.clone())
        .unwrap()
        .encode();
    let blocked = w2.service.handle(&hello, &direct(), T0, &mut fresh()).await;
    assert_eq!(blocked, unknown);
}

#[tokio::test]
async fn certificate_alone_without_key_proof_gets_no_credentials() {
    let w = world(no_pin()).await;
    // The attacker knows the device's public key (it travels in clear) but not its private key.
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request_with(&report(None), &signer(0x66));
    let r = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
}

#[tokio::test]
async fn request_signed_over_another_transcript_is_refused() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    // Sign over t1 (before the proof) instead of t2: the transcript then lacks the server's
    // nonce and sealing key.
    c.transcript = Some(SetupTranscript::after_hello(
        &P,
        c.transport,
        &c.sid,
        &c.hello_body,
    ));
    let req = c.request(&report(None));
    let r = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
}

#[tokio::test]
async fn tampered_request_is_refused() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let mut req = c.request(&report(None));
    let i = req.len() - 100;
    req[i] ^= 1;
    let r = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert!(code_of(&r).is_some(), "refused");
}

#[tokio::test]
async fn pin_attempts_count_only_after_the_key_proof_verifies() {
    let w = world(ServiceConfig::default()).await;
    let counter = CounterKey::new(CounterScope::PinAttempts, fixtures::device_id(1).0.to_vec());
    // Wrong PIN, wrong key: not counted.
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request_with(&report(Some("000000")), &signer(0x66));
    w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(
        w.service
            .store()
            .attempt_state(counter.clone())
            .await
            .unwrap()
            .failures,
        0
    );
    // Wrong PIN, right key: counted.
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request(&report(Some("000000")));
    let r = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
    assert_eq!(
        w.service
            .store()
            .attempt_state(counter.clone())
            .await
            .unwrap()
            .failures,
        1
    );
    // Missing PIN when one is required: counted too.
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request(&report(None));
    w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(
        w.service
            .store()
            .attempt_state(counter.clone())
            .await
            .unwrap()
            .failures,
        2
    );
    // The right PIN clears the failures.
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request(&report(Some(PIN)));
    let r = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    c.open_response(&req, &r, &w.pinned);
    assert_eq!(
        w.service
            .store()
            .attempt_state(counter)
            .await
            .unwrap()
            .failures,
        0
    );
}

#[tokio::test]
async fn pin_lockout_survives_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zt.db");
    let keys = StaticDataKey([3; 32]);
    let config = ServiceConfig {
        pin_lockout: LockoutPolicy {
            max_failures: 2,
            lockout: Duration::from_secs(3600),
        },
        ..ServiceConfig::default()
    };
    {
        let store = SqliteStore::open(&path, &keys, SqliteOptions::default())
            .await
            .unwrap();
        let w = world_on(store, config.clone()).await;
        for _ in 0..2 {
            let mut c = Client::new(1, &w.pinned);
            proof_for(&w, &mut c, T0).await;
            let req = c.request(&report(Some("000000")));
            w.service.handle(&req, &direct(), T0, &mut fresh()).await;
        }
    }
    let store = SqliteStore::open(&path, &keys, SqliteOptions::default())
        .await
        .unwrap();
    let (ring, pinned) = ring();
    let service = SetupService::new(store, ring, config);
    let mut c = Client::new(1, &pinned);
    let hello = c.hello();
    let later = Instant(T0.0 + 60_000);
    let r = service.handle(&hello, &direct(), later, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized), "still locked");
    let after = Instant(T0.0 + 3_601_000);
    let r = service
        .handle(&c.hello(), &direct(), after, &mut fresh())
        .await;
    assert_eq!(code_of(&r), None, "lock-out over");
}

#[tokio::test]
async fn identical_retransmissions_get_identical_stored_bytes() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    let hello = c.hello();
    let a = w.service.handle(&hello, &direct(), T0, &mut fresh()).await;
    let b = w.service.handle(&hello, &direct(), T0, &mut fresh()).await;
    assert_eq!(a, b, "re-signing would give other bytes");
    c.accept_proof(&a, &w.pinned);
    let req = c.request(&report(None));
    let x = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    let y = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(x, y, "re-sealing would give other bytes");
    c.open_response(&req, &y, &w.pinned);
}

#[tokio::test]
async fn high_s_copy_of_a_request_gets_the_stored_response() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request(&report(None));
    let first = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    // The signature is the envelope's last 64 bytes; flip s to n - s.
    let mut copy = req.clone();
    let n = copy.len();
    let sig = p256::ecdsa::Signature::from_slice(&copy[n - 64..]).unwrap();
    let (r, s) = sig.split_scalars();
    let high = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    copy[n - 64..].copy_from_slice(&high.to_bytes());
    assert_ne!(copy, req);
    let second = w.service.handle(&copy, &direct(), T0, &mut fresh()).await;
    assert_eq!(first, second);
}

#[tokio::test]
async fn different_request_reusing_a_nonce_is_refused() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request(&report(None));
    let ok = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&ok), None);
    // Same session and server nonce, freshly sealed: other bytes.
    let again = c.request(&report(None));
    assert_ne!(again, req);
    let r = w.service.handle(&again, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
}

#[tokio::test]
async fn different_hello_reusing_a_session_id_is_refused() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    let hello = c.hello();
    w.service.handle(&hello, &direct(), T0, &mut fresh()).await;
    let sid = c.sid;
    c.hello();
    c.sid = sid;
    let other = Envelope::plain(header(MessageTag::Hello, sid), c.hello_body.clone())
        .unwrap()
        .encode();
    assert_ne!(other, hello);
    let r = w.service.handle(&other, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
}

#[tokio::test]
async fn expired_nonce_is_refused() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request(&report(None));
    let late = Instant(T0.0 + 121_000);
    let r = w.service.handle(&req, &direct(), late, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::SessionExpired));
}

#[tokio::test]
async fn expired_session_is_refused() {
    let config = ServiceConfig {
        pin_policy: PinPolicy::Never,
        nonce_lifetime: Duration::from_secs(3600),
        session_lifetime: Duration::from_secs(60),
        ..ServiceConfig::default()
    };
    let w = world(config).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let req = c.request(&report(None));
    let r = w
        .service
        .handle(&req, &direct(), Instant(T0.0 + 61_000), &mut fresh())
        .await;
    assert_eq!(code_of(&r), Some(ErrorCode::SessionExpired));
}

#[tokio::test]
async fn credentials_never_come_from_another_account() {
    let w = world(no_pin()).await;
    let mut r = report(None);
    r.networks.insert(0, seen("neighbour", 10, 2, 2));
    let got = full_run(&w, &r, T0).await;
    assert!(got.iter().all(|(ssid, _)| ssid != b"neighbour"));
    assert_eq!(got.len(), 2);
}

#[tokio::test]
async fn a_2_4_ghz_only_radio_gets_no_5_ghz_only_network() {
    let w = world(no_pin()).await;
    w.service
        .store()
        .add_network(
            NewNetwork {
                account: w.account,
                ssid: b"home-5g".to_vec(),
                passphrase: Passphrase::new(b"five gigahertz only").unwrap(),
                security: SecurityType::Wpa3Personal,
                bands: Bands::GHZ_5,
            },
            T0,
        )
        .await
        .unwrap();
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let r = DeviceReport {
        pin: None,
        // A sighting the radio could not have made; the server still refuses to send it.
        networks: vec![seen("home-5g", 30, 1, 2), seen("home-2g", 50, 1, 1)],
        radio_bands: 1,
        radio_security: 3,
    };
    let req = c.request(&r);
    let resp = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    let (response, opened) = c.open_response(&req, &resp, &w.pinned);
    assert_eq!(response.entries[0].ssid, b"home-5g");
    assert_eq!(response.entries[0].status, EntryStatus::UnsupportedByRadio);
    assert!(response.entries[0].ciphertext.is_empty());
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].as_slice(), b"two point four only");
}

#[tokio::test]
async fn a_wpa2_only_radio_gets_no_wpa3_only_network() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let mut r = report(None);
    r.radio_security = 1;
    let req = c.request(&r);
    let resp = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    let (response, opened) = c.open_response(&req, &resp, &w.pinned);
    assert_eq!(response.entries[0].status, EntryStatus::UnsupportedByRadio);
    assert_eq!(opened.len(), 1);
}

#[tokio::test]
async fn access_point_not_offering_the_configured_security_gets_no_passphrase() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    // "home" is WPA3; an access point with that name offering only WPA2 is a downgrade.
    let r = DeviceReport {
        pin: None,
        networks: vec![seen("home", 20, 2, 1)],
        radio_bands: 3,
        radio_security: 3,
    };
    let req = c.request(&r);
    let resp = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    let (response, opened) = c.open_response(&req, &resp, &w.pinned);
    assert_eq!(response.entries[0].status, EntryStatus::Unavailable);
    assert!(response.encapsulated_key.is_empty());
    assert!(opened.is_empty());
}

#[tokio::test]
async fn signatures_per_device_key_per_hour_are_capped() {
    let config = ServiceConfig {
        signatures_per_hour: 3,
        ..no_pin()
    };
    let w = world(config).await;
    let hour = Instant(T0.0 - T0.0 % 3_600_000);
    let mut c = Client::new(1, &w.pinned);
    for _ in 0..3 {
        let r = w
            .service
            .handle(&c.hello(), &direct(), hour, &mut fresh())
            .await;
        assert_eq!(code_of(&r), None);
    }
    let r = w
        .service
        .handle(&c.hello(), &direct(), hour, &mut fresh())
        .await;
    let e = error_of(&r).unwrap();
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(e.retry_after_s, 3600);
    let next = Instant(hour.0 + 3_600_000);
    let r = w
        .service
        .handle(&c.hello(), &direct(), next, &mut fresh())
        .await;
    assert_eq!(code_of(&r), None, "a new hour");
}

#[tokio::test]
async fn key_selection_prefers_the_mapped_key_when_trusted() {
    let (mut ring, pinned) = ring();
    let second = ring.keys()[1].signer.key_id();
    ring.map_devices(7, 0, u64::MAX, second).unwrap();
    let store = MemoryStore::new();
    let base = world_on(store, no_pin()).await;
    // Rebuild the service with the mapped ring over the same store.
    let World { service, .. } = base;
    let store = service_into_store(service);
    let service = SetupService::new(store, ring, no_pin());
    let mut c = Client::new(1, &pinned);
    let r = service
        .handle(&c.hello(), &direct(), T0, &mut fresh())
        .await;
    c.accept_proof(&r, &pinned);
    assert_eq!(c.proof_key, Some(second));
    // Not trusted by the device: the first trusted key signs.
    c.trusted = vec![pinned.trusted_key_ids(KeyRole::SetupSigning)[0]];
    let r = service
        .handle(&c.hello(), &direct(), T0, &mut fresh())
        .await;
    c.accept_proof(&r, &pinned);
    assert_ne!(c.proof_key, Some(second));
}

fn service_into_store(service: SetupService<MemoryStore, SoftwareSigner>) -> MemoryStore {
    match service.into_store() {
        Ok(store) => store,
        Err(_) => panic!("nothing else shares the store"),
    }
}

#[tokio::test]
async fn a_revoked_key_is_never_used() {
    let w = world(no_pin()).await;
    w.service
        .store()
        .revoke_server_key(&w.setup_key, Some(w.second_setup_key), T0)
        .await
        .unwrap();
    let mut c = Client::new(1, &w.pinned);
    let r = w
        .service
        .handle(&c.hello(), &direct(), T0, &mut fresh())
        .await;
    c.accept_proof(&r, &w.pinned);
    assert_eq!(c.proof_key, Some(w.second_setup_key));
    // A device that trusts only the revoked key is refused.
    c.trusted = vec![w.setup_key];
    let r = w
        .service
        .handle(&c.hello(), &direct(), T0, &mut fresh())
        .await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
}

#[tokio::test]
async fn mutual_tls_key_must_be_the_hello_key() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    let wrong = TransportIdentity::Direct {
        transport: Transport::Https,
        client_key: Some(signer(0x66).public_key().clone()),
    };
    c.transport = Transport::Https;
    let r = w.service.handle(&c.hello(), &wrong, T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
    let right = TransportIdentity::Direct {
        transport: Transport::Https,
        client_key: Some(c.key.public_key().clone()),
    };
    let r = w.service.handle(&c.hello(), &right, T0, &mut fresh()).await;
    c.accept_proof(&r, &w.pinned);
}

#[tokio::test]
async fn the_transcript_carries_the_transport_the_device_used_not_the_relays() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    c.transport = Transport::Ble;
    let relay = |t: Transport| TransportIdentity::Relayed {
        relay: KeyId([4; 32]),
        device_transport: t,
    };
    // Honest relay: the device verifies the proof.
    let r = w
        .service
        .handle(&c.hello(), &relay(Transport::Ble), T0, &mut fresh())
        .await;
    c.accept_proof(&r, &w.pinned);
    // A relay claiming HTTPS: the proof is over another transcript and fails on the device.
    let hello = c.hello();
    let r = w
        .service
        .handle(&hello, &relay(Transport::Https), T0, &mut fresh())
        .await;
    let env = Envelope::decode(&r).unwrap();
    let Body::Signed(s) = &env.body else { panic!() };
    let th = c.transcript.as_ref().unwrap().hash();
    assert!(
        s.verify_trusted(&env.header, KeyRole::SetupSigning, &th, &w.pinned, &P)
            .is_err()
    );
}

fn outcome_report(c: &Client, osid: SessionId, signer: &SoftwareSigner) -> (Vec<u8>, Nonce) {
    outcome_report_of(c, osid, signer, JoinOutcome::Joined)
}

fn outcome_report_of(
    c: &Client,
    osid: SessionId,
    signer: &SoftwareSigner,
    outcome: JoinOutcome,
) -> (Vec<u8>, Nonce) {
    let nonce = Nonce([0x42; 16]);
    let report = OutcomeReport {
        setup_session: c.sid,
        ssid: b"home".to_vec(),
        outcome,
        device_nonce: nonce,
    };
    let th = binding::outcome_report_transcript(&P, Transport::Https, &osid);
    let bytes = sign_message(
        header(MessageTag::OutcomeReport, osid),
        KeyRole::DeviceIdentity,
        &th,
        report.encode_body(),
        signer,
        &P,
    )
    .unwrap()
    .encode();
    (bytes, nonce)
}

fn home() -> TransportIdentity {
    TransportIdentity::Direct {
        transport: Transport::Https,
        client_key: None,
    }
}

#[tokio::test]
async fn outcome_report_is_recorded_and_acknowledged_by_the_sessions_key() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let osid = SessionId([0x0c; 16]);
    let (bytes, nonce) = outcome_report(&c, osid, &c.key);
    let r = w.service.handle(&bytes, &home(), T0, &mut fresh()).await;
    let env = Envelope::decode(&r).unwrap();
    assert_eq!(env.header.tag, MessageTag::OutcomeAck, "{:?}", error_of(&r));
    let Body::Signed(s) = &env.body else { panic!() };
    assert_eq!(Some(*s.key_id()), c.proof_key);
    let Body::Signed(rs) = &Envelope::decode(&bytes).unwrap().body else {
        panic!()
    };
    let th0 = binding::outcome_report_transcript(&P, Transport::Https, &osid);
    let payload = rs
        .verify(
            &Envelope::decode(&bytes).unwrap().header,
            KeyRole::DeviceIdentity,
            &th0,
            c.key.public_key(),
            &P,
        )
        .unwrap();
    let th = binding::outcome_ack_transcript(&P, Transport::Https, &osid, payload);
    let ack = OutcomeAck::decode_body(
        s.verify_trusted(&env.header, KeyRole::SetupSigning, &th, &w.pinned, &P)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ack.device_nonce, nonce);
    let outcomes = outcomes_of_device_1(&w).await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].kind, OutcomeKind::Joined);
    assert_eq!(outcomes[0].session, c.sid);
    assert!(outcomes[0].network.is_some());
    // A replay gets the same bytes and records nothing more.
    let again = w.service.handle(&bytes, &home(), T0, &mut fresh()).await;
    assert_eq!(again, r);
    assert_eq!(outcomes_of_device_1(&w).await.len(), 1);
}

#[tokio::test]
async fn outcome_report_signed_by_another_key_is_refused() {
    let w = world(no_pin()).await;
    let c = Client::new(1, &w.pinned);
    let forged = SoftwareSigner::new(fixtures::device_key(3));
    let (bytes, _) = outcome_report(&c, SessionId([0x0d; 16]), &forged);
    let r = w.service.handle(&bytes, &home(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
}

fn query(key: KeyId, rsid: SessionId) -> Vec<u8> {
    let q = RevocationQuery {
        key_id: key,
        device_nonce: Nonce([0x17; 16]),
    };
    Envelope::plain(header(MessageTag::RevocationQuery, rsid), q.encode_body())
        .unwrap()
        .encode()
}

fn verdict_of(w: &World<MemoryStore>, query_bytes: &[u8], r: &[u8]) -> (RevocationVerdict, KeyId) {
    let q = Envelope::decode(query_bytes).unwrap();
    let Body::Plain(qb) = &q.body else { panic!() };
    let env = Envelope::decode(r).unwrap();
    assert_eq!(
        env.header.tag,
        MessageTag::RevocationVerdict,
        "{:?}",
        error_of(r)
    );
    let Body::Signed(s) = &env.body else { panic!() };
    let th = binding::revocation_transcript(&P, Transport::Https, &q.header.session_id, qb);
    let v = RevocationVerdict::decode_body(
        s.verify_trusted(&env.header, KeyRole::RevocationVerdict, &th, &w.pinned, &P)
            .unwrap(),
    )
    .unwrap();
    (v, *s.key_id())
}

#[tokio::test]
async fn revocation_verdict_is_signed_by_the_dedicated_key_over_the_query() {
    let w = world(no_pin()).await;
    let q = query(w.setup_key, SessionId([0x21; 16]));
    let r = w.service.handle(&q, &home(), T0, &mut fresh()).await;
    let (v, signer) = verdict_of(&w, &q, &r);
    assert_eq!(signer, w.revocation_key);
    assert_ne!(signer, w.setup_key);
    assert_eq!(v.status, RevocationStatus::Good);
    assert_eq!(v.device_nonce, Nonce([0x17; 16]));
    assert_eq!(v.key_id, w.setup_key);
}

#[tokio::test]
async fn revoked_key_verdict_names_the_replacement() {
    let w = world(no_pin()).await;
    w.service
        .store()
        .revoke_server_key(&w.setup_key, Some(w.second_setup_key), T0)
        .await
        .unwrap();
    let q = query(w.setup_key, SessionId([0x22; 16]));
    let r = w.service.handle(&q, &home(), T0, &mut fresh()).await;
    let (v, _) = verdict_of(&w, &q, &r);
    assert_eq!(v.status, RevocationStatus::Revoked);
    assert_eq!(v.replacement, Some(w.second_setup_key));
}

#[tokio::test]
async fn revocation_query_for_an_unknown_key_is_refused() {
    let w = world(no_pin()).await;
    let q = query(KeyId([9; 32]), SessionId([0x23; 16]));
    let r = w.service.handle(&q, &home(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
    // Nor is the revocation key itself answered for: only setup keys are queried.
    let q = query(w.revocation_key, SessionId([0x24; 16]));
    let r = w.service.handle(&q, &home(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
}

#[tokio::test]
async fn garbage_and_unexpected_messages_get_an_error() {
    let w = world(no_pin()).await;
    for bytes in [&b""[..], b"\xff\xff", &[0x86, 1, 1, 2, 0x50]] {
        let r = w.service.handle(bytes, &direct(), T0, &mut fresh()).await;
        assert_eq!(code_of(&r), Some(ErrorCode::BadMessage));
    }
    // A message the server sends, sent to the server.
    let mut c = Client::new(1, &w.pinned);
    let proof = w
        .service
        .handle(&c.hello(), &direct(), T0, &mut fresh())
        .await;
    let r = w.service.handle(&proof, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::BadMessage));
}

#[tokio::test]
async fn no_common_suite_is_reported_as_such() {
    let config = ServiceConfig {
        suites: vec![CipherSuite::P256_SHA256_CHACHA20POLY1305],
        ..no_pin()
    };
    let w = world(config).await;
    let mut c = Client::new(1, &w.pinned);
    c.suites = vec![CipherSuite::X25519_SHA256_CHACHA20POLY1305];
    let r = w
        .service
        .handle(&c.hello(), &direct(), T0, &mut fresh())
        .await;
    assert_eq!(code_of(&r), Some(ErrorCode::NoCommonSuite));
}

#[tokio::test]
async fn ambiguous_key_is_refused_or_resolved_to_the_most_recent_by_policy() {
    for (policy, expect_ok) in [
        (AmbiguousKeyPolicy::Refuse, false),
        (AmbiguousKeyPolicy::MostRecent, true),
    ] {
        let config = ServiceConfig {
            ambiguous_key: policy,
            ..no_pin()
        };
        let w = world(config).await;
        // A second row, as an import could leave it.
        w.service
            .store()
            .apply_association_change(AssociationChange {
                action: AssociationAction::Add,
                device: fixtures::device_id(1),
                account: w.other_account,
                registrar: w.registrar,
                label: None,
                at: Instant(T0.0 + 1),
            })
            .await
            .unwrap();
        let mut c = Client::new(1, &w.pinned);
        let r = w
            .service
            .handle(&c.hello(), &direct(), T0, &mut fresh())
            .await;
        if !expect_ok {
            assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
            continue;
        }
        c.accept_proof(&r, &w.pinned);
        let mut rep = report(None);
        rep.networks.push(seen("neighbour", 10, 2, 2));
        let req = c.request(&rep);
        let resp = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
        let (response, _) = c.open_response(&req, &resp, &w.pinned);
        let ssids: Vec<_> = response.entries.iter().map(|e| e.ssid.clone()).collect();
        assert_eq!(
            ssids,
            vec![b"neighbour".to_vec()],
            "the most recent account's networks"
        );
    }
}

#[tokio::test]
async fn expired_rows_are_purged_on_the_side() {
    let config = ServiceConfig {
        purge_interval: Duration::from_secs(60),
        ..no_pin()
    };
    let w = world(config).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let sid = c.sid;
    let later = Instant(T0.0 + 3_600_000);
    assert!(w.service.store().session(sid, T0).await.unwrap().is_some());
    // Any request an hour later triggers the purge.
    w.service.handle(b"", &direct(), later, &mut fresh()).await;
    let purged = w.service.purge_expired(later).await.unwrap();
    assert_eq!(purged.sessions, 0, "the handler already purged them");
}

#[tokio::test]
async fn a_device_moved_to_another_account_after_its_hello_gets_nothing() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    w.service
        .register_device(
            w.registrar,
            &label(1, true),
            w.other_account,
            ReassociationProof::None,
            T0,
        )
        .await
        .unwrap();
    let req = c.request(&report(None));
    let r = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
}

#[tokio::test]
async fn negotiation_errors_do_not_tell_known_devices_from_unknown_ones() {
    let w = world(no_pin()).await;
    for seed in [1, 3] {
        let mut c = Client::new(seed, &w.pinned);
        c.suites = vec![CipherSuite {
            kem: 0x7777,
            kdf: 1,
            aead: 3,
        }];
        let r = w
            .service
            .handle(&c.hello(), &direct(), T0, &mut fresh())
            .await;
        assert_eq!(code_of(&r), Some(ErrorCode::NoCommonSuite), "device {seed}");
    }
}

#[tokio::test]
async fn a_refusal_before_the_nonce_is_used_leaves_the_request_retryable() {
    let config = ServiceConfig {
        signatures_per_hour: 1,
        ..no_pin()
    };
    let w = world(config).await;
    let hour_end = Instant(T0.0 - T0.0 % 3_600_000 + 3_600_000);
    let before = Instant(hour_end.0 - 10_000);
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, before).await;
    let req = c.request(&report(None));
    // The proof spent this hour's one signature: refused, and the nonce is left unused…
    let r = w
        .service
        .handle(&req, &direct(), before, &mut fresh())
        .await;
    assert_eq!(code_of(&r), Some(ErrorCode::RateLimited));
    // …so the identical request, retransmitted in the next hour within the nonce's life,
    // gets its credentials.
    let after = Instant(hour_end.0 + 1_000);
    let r = w.service.handle(&req, &direct(), after, &mut fresh()).await;
    let (response, opened) = c.open_response(&req, &r, &w.pinned);
    assert_eq!(response.entries.len(), 2);
    assert_eq!(opened.len(), 2);
}

// ---- a process dying between two writes --------------------------------------------------

/// Fixture device 1's PIN attempt state.
async fn pin_attempts(w: &World<MemoryStore>) -> AttemptState {
    w.service
        .store()
        .attempt_state(CounterKey::new(
            CounterScope::PinAttempts,
            fixtures::device_id(1).0.to_vec(),
        ))
        .await
        .unwrap()
}

/// The stored session state of `c`'s session as a process that claimed it for `request`
/// writes it (stage 3 and the request's digest appended), as if it then died.
async fn claim_as_a_dying_process(w: &World<MemoryStore>, c: &Client, request: &[u8]) {
    let store = w.service.store();
    let open = store.session(c.sid, T0).await.unwrap().unwrap();
    let ciborium::Value::Array(mut items) = cbor::decode(&open.state).unwrap() else {
        panic!("session state is not an array")
    };
    items[0] = ciborium::Value::Integer(3.into());
    let digest = Envelope::decode(request).unwrap().canonical_digest(&P);
    items.push(ciborium::Value::Bytes(digest.to_vec()));
    let claimed = cbor::encode(&ciborium::Value::Array(items));
    let written = store
        .compare_and_swap_session(c.sid, Some(open.version), claimed, open.expires_at, T0)
        .await
        .unwrap();
    assert!(matches!(written, SessionCas::Written { .. }));
}

#[tokio::test]
async fn request_that_claimed_its_session_in_a_process_that_died_is_answered_when_sent_again() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    let proof = proof_for(&w, &mut c, T0).await;
    let req = c.request(&report(None));
    // Another process claimed the session for this request, used the nonce, and died
    // before it stored an answer.
    claim_as_a_dying_process(&w, &c, &req).await;
    let used = w
        .service
        .store()
        .consume_nonce(proof.server_nonce, c.sid, T0)
        .await
        .unwrap();
    assert_eq!(used, NonceUse::Consumed);
    let r = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), None, "{:?}", error_of(&r));
    let (_, opened) = c.open_response(&req, &r, &w.pinned);
    assert!(!opened.is_empty(), "no credential delivered");
    assert_eq!(w.service.handle(&req, &direct(), T0, &mut fresh()).await, r);
}

#[tokio::test]
async fn different_request_for_a_session_another_request_claimed_is_a_replay() {
    // The claim is what keeps a session to one PIN attempt: a second, different request
    // (another PIN guess) is refused even while the first has not answered.
    let w = world(ServiceConfig::default()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let first = c.request(&report(Some("000000")));
    claim_as_a_dying_process(&w, &c, &first).await;
    let second = c.request(&report(Some(PIN)));
    let r = w.service.handle(&second, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), Some(ErrorCode::NotAuthorized));
    let attempts = pin_attempts(&w).await;
    assert_eq!(attempts.failures, 0, "the second guess was checked");
}

#[tokio::test]
async fn different_requests_racing_for_one_session_get_one_pin_check() {
    let w = world(ServiceConfig::default()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let guesses: Vec<Vec<u8>> = ["000001", "000002", "000003", "000004", PIN]
        .iter()
        .map(|p| c.request(&report(Some(p))))
        .collect();
    let answers = futures_join_all(&w, &guesses).await;
    let answered = answers.iter().filter(|r| code_of(r).is_none()).count();
    let attempts = pin_attempts(&w).await;
    // Exactly one request was checked: either it was the right PIN (answered, no failure)
    // or a wrong one (one failure, nothing answered).
    assert!(
        (answered == 1 && attempts.failures == 0) || (answered == 0 && attempts.failures == 1),
        "answered {answered}, failures {}",
        attempts.failures
    );
}

/// Sends every request at once (their futures polled together).
async fn futures_join_all(w: &World<MemoryStore>, requests: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let service = &w.service;
    futures_util::future::join_all(
        requests
            .iter()
            .map(|req| async move { service.handle(req, &direct(), T0, &mut fresh()).await }),
    )
    .await
}

#[tokio::test]
async fn retransmission_finishes_a_session_its_answer_left_open() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let store = w.service.store();
    let open = store.session(c.sid, T0).await.unwrap().unwrap();
    let req = c.request(&report(None));
    let r = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(code_of(&r), None);
    // As if the process died after storing the answer and before finishing the session:
    // put the open state (with its sealing key) back.
    let finished = store.session(c.sid, T0).await.unwrap().unwrap();
    store
        .compare_and_swap_session(
            c.sid,
            Some(finished.version),
            open.state.clone(),
            open.expires_at,
            T0,
        )
        .await
        .unwrap();
    let reopened = store.session(c.sid, T0).await.unwrap().unwrap();
    assert_eq!(reopened.state, open.state);
    let again = w.service.handle(&req, &direct(), T0, &mut fresh()).await;
    assert_eq!(again, r, "the retransmission gets the stored answer");
    let after = store.session(c.sid, T0).await.unwrap().unwrap();
    assert!(
        after.version > reopened.version,
        "the session was not finished"
    );
    assert_eq!(after.state, finished.state, "not the finished state");
}

#[tokio::test]
async fn outcome_recorded_by_a_process_that_died_before_answering_is_not_recorded_twice() {
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    let osid = SessionId([0x0c; 16]);
    let (bytes, _) = outcome_report(&c, osid, &c.key);
    // Another process recorded the outcome and died before it stored the acknowledgement.
    let home_network = w
        .service
        .store()
        .networks_of_account(w.account)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.ssid == b"home")
        .map(|n| n.id);
    assert!(home_network.is_some());
    w.service
        .store()
        .record_outcome(OutcomeRecord {
            device: fixtures::device_id(1),
            session: c.sid,
            network: home_network,
            kind: OutcomeKind::Joined,
            at: T0,
        })
        .await
        .unwrap();
    let r = w.service.handle(&bytes, &home(), T0, &mut fresh()).await;
    let env = Envelope::decode(&r).unwrap();
    assert_eq!(env.header.tag, MessageTag::OutcomeAck, "{:?}", error_of(&r));
    let outcomes = outcomes_of_device_1(&w).await;
    assert_eq!(outcomes.len(), 1);
}

#[tokio::test]
async fn different_outcomes_of_one_setup_session_are_all_recorded() {
    // A device may report the network that refused its passphrase, then the one it joined.
    let w = world(no_pin()).await;
    let mut c = Client::new(1, &w.pinned);
    proof_for(&w, &mut c, T0).await;
    for (osid, outcome) in [
        (SessionId([0x0c; 16]), JoinOutcome::WrongPassphrase),
        (SessionId([0x0d; 16]), JoinOutcome::Joined),
    ] {
        let (bytes, _) = outcome_report_of(&c, osid, &c.key, outcome);
        let r = w.service.handle(&bytes, &home(), T0, &mut fresh()).await;
        assert_eq!(code_of(&r), None, "{:?}", error_of(&r));
    }
    let kinds: Vec<OutcomeKind> = outcomes_of_device_1(&w)
        .await
        .iter()
        .map(|o| o.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![OutcomeKind::WrongPassphrase, OutcomeKind::Joined]
    );
}

/// Every outcome recorded for fixture device 1.
async fn outcomes_of_device_1(w: &World<MemoryStore>) -> Vec<OutcomeRecord> {
    w.service
        .store()
        .outcomes_of_device(&fixtures::device_id(1))
        .await
        .unwrap()
}
