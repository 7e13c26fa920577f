//! The association service's rules (flow 2, steps 3–4), one test each, named as the rule. A
//! sponsor is built here from the core's primitives, so tests can send what a correct sponsor
//! sends, and anything else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::association::*;
use zerotouch_core::flow2::{
    self, AnswerKey, ChallengeResponse, ChannelBinding, CommitmentKey, HomeCredential,
    credential_commitment, handoff_transcript,
};
use zerotouch_core::*;
use zerotouch_server::*;
use zerotouch_store::*;
use zerotouch_store_suite::fixtures::{self, device_id, device_key};

// ---- rule 1: decoding --------------------------------------------------------------------

#[tokio::test]
async fn undecodable_bytes_get_bad_message() {
    let s = service().await;
    let a = send(&s, b"\x86garbage", T0).await;
    assert_eq!(error_of(&a.bytes, 0).code, ErrorCode::BadMessage);
    assert_eq!(a.refusal, Some(AssociationRefusal::Malformed));
}

#[tokio::test]
async fn a_message_other_than_a_verification_request_gets_bad_message() {
    let s = service().await;
    // A flow-2 message a sponsor never sends the server.
    let plain = Envelope::plain(
        flow2::header(MessageTag::ChallengeResponse, SessionId([4; 16])),
        ChallengeResponse {
            answer: flow2::ChallengeAnswer::new([1; 32]),
        }
        .encode_body(),
    )
    .unwrap()
    .encode();
    let a = send(&s, &plain, T0).await;
    let e = error_of(&a.bytes, 3);
    assert_eq!(e.code, ErrorCode::BadMessage);
    // A correctly signed request with the wrong sequence number.
    let req = Req::new(SPONSOR, JOINER, 4);
    let mut header = flow2::header(MessageTag::VerificationRequest, req.session);
    header.seq = 5;
    let wrong_seq = sign_message(
        header,
        KeyRole::DeviceIdentity,
        &handoff_transcript(&P, &req.session),
        req.payload().encode_body(),
        &SoftwareSigner::new(device_key(SPONSOR)),
        &P,
    )
    .unwrap()
    .encode();
    let a = send(&s, &wrong_seq, T0).await;
    assert_eq!(error_of(&a.bytes, 6).code, ErrorCode::BadMessage);
    // The correct request is answered.
    assert_eq!(code_of(&send(&s, &req.bytes(), T0).await), None);
}

// ---- rule 2: the sponsor -----------------------------------------------------------------

#[tokio::test]
async fn unknown_sponsor_blocked_sponsor_and_bad_signature_get_identical_not_authorized() {
    let s = service().await;
    let unknown = Req::new(UNKNOWN, JOINER, 10);
    let blocked = Req::new(BLOCKED_SPONSOR, JOINER, 10);
    let mut bad_signature = Req::new(SPONSOR, JOINER, 10).bytes();
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 1;
    let answers = [
        send(&s, &unknown.bytes(), T0).await,
        send(&s, &blocked.bytes(), T0).await,
        send(&s, &bad_signature, T0).await,
    ];
    assert_eq!(code_of(&answers[0]), Some(ErrorCode::NotAuthorized));
    assert_eq!(answers[0].bytes, answers[1].bytes);
    assert_eq!(answers[0].bytes, answers[2].bytes);
    let reasons: Vec<_> = answers.iter().map(|a| a.refusal).collect();
    assert_eq!(
        reasons,
        [
            Some(AssociationRefusal::UnknownSponsor),
            Some(AssociationRefusal::BlockedSponsor),
            Some(AssociationRefusal::BadSignature),
        ]
    );
}

#[tokio::test]
async fn tampered_request_payload_or_signature_gets_not_authorized() {
    let s = service().await;
    let req = Req::new(SPONSOR, JOINER, 11);
    let good = req.bytes();
    // The payload: one bit of the commitment.
    let at = good
        .windows(32)
        .position(|w| w == [0xcc; 32])
        .expect("the commitment is in the request");
    let mut payload = good.clone();
    payload[at] ^= 1;
    // The signature: its last byte.
    let mut signature = good.clone();
    let last = signature.len() - 1;
    signature[last] ^= 0x80;
    for tampered in [payload, signature] {
        let a = send(&s, &tampered, T0).await;
        assert_eq!(code_of(&a), Some(ErrorCode::NotAuthorized));
        assert_eq!(a.refusal, Some(AssociationRefusal::BadSignature));
    }
    // Nothing was spent on them: the untampered request is answered.
    assert_eq!(code_of(&send(&s, &good, T0).await), None);
}

#[tokio::test]
async fn sponsor_id_that_is_not_the_signer_gets_not_authorized() {
    let s = service().await;
    let mut req = Req::new(SPONSOR, JOINER, 12);
    // Signed by the sponsor, naming another device of the account as sponsor.
    req.sponsor_id = device_id(SECOND_SPONSOR);
    let a = send(&s, &req.bytes(), T0).await;
    assert_eq!(code_of(&a), Some(ErrorCode::NotAuthorized));
    assert_eq!(a.refusal, Some(AssociationRefusal::SponsorIdMismatch));
}

#[tokio::test]
async fn client_certificate_of_another_device_than_the_signer_gets_not_authorized() {
    let s = service().await;
    let req = Req::new(SPONSOR, JOINER, 13);
    let a = s
        .answer(&req.bytes(), &with_client_key(JOINER), T0, &mut fresh())
        .await;
    assert_eq!(code_of(&a), Some(ErrorCode::NotAuthorized));
    assert_eq!(a.refusal, Some(AssociationRefusal::ClientKeyMismatch));
    // The sponsor's own certificate is accepted.
    let a = s
        .answer(&req.bytes(), &with_client_key(SPONSOR), T0, &mut fresh())
        .await;
    assert_eq!(code_of(&a), None);
}

// ---- rule 3: retransmission and replay ---------------------------------------------------

/// An identical retransmission (a lossy link) gets the stored bytes, and is not counted
/// against the sponsor's or the joiner's limit: only the first copy is.
#[tokio::test]
async fn identical_retransmission_gets_identical_bytes_and_is_counted_once() {
    let s = service_with(AssociationConfig {
        requests_per_sponsor: 2,
        requests_per_joiner: 2,
        ..AssociationConfig::default()
    })
    .await;
    let first = Req::new(SPONSOR, JOINER, 20).bytes();
    let answer = send(&s, &first, T0).await;
    assert_eq!(code_of(&answer), None);
    for later in [1, 1_000, 60_000] {
        let again = send(&s, &first, Instant(T0.0 + later)).await;
        assert_eq!(again.bytes, answer.bytes, "the stored bytes, unchanged");
    }
    // The second request of the hour is still within both limits of 2...
    let second = send(&s, &Req::new(SPONSOR, JOINER, 21).bytes(), T0).await;
    assert_eq!(code_of(&second), None);
    // ...and the third is not.
    let third = send(&s, &Req::new(SPONSOR, JOINER, 22).bytes(), T0).await;
    assert_eq!(code_of(&third), Some(ErrorCode::RateLimited));
}

#[tokio::test]
async fn different_request_under_an_answered_session_gets_session_expired() {
    let s = service().await;
    let req = Req::new(SPONSOR, JOINER, 23);
    assert_eq!(code_of(&send(&s, &req.bytes(), T0).await), None);
    let mut other = Req::new(SPONSOR, JOINER, 23);
    other.nonce = Nonce([0x99; 16]);
    let a = send(&s, &other.bytes(), T0).await;
    assert_eq!(code_of(&a), Some(ErrorCode::SessionExpired));
    assert_eq!(a.refusal, Some(AssociationRefusal::Replay));
}

#[tokio::test]
async fn replayed_nonce_in_a_new_session_is_refused() {
    let s = service().await;
    let req = Req::new(SPONSOR, JOINER, 24);
    assert_eq!(code_of(&send(&s, &req.bytes(), T0).await), None);
    let mut replay = Req::new(SPONSOR, JOINER, 24);
    replay.session = SessionId([0x42; 16]);
    let a = send(&s, &replay.bytes(), Instant(T0.0 + 23 * HOUR_MS)).await;
    assert_eq!(code_of(&a), Some(ErrorCode::SessionExpired));
    assert_eq!(a.refusal, Some(AssociationRefusal::ReplayedNonce));
    // By another sponsor of the account too.
    let mut other = Req::new(SECOND_SPONSOR, JOINER, 24);
    other.session = SessionId([0x43; 16]);
    let a = send(&s, &other.bytes(), T0).await;
    assert_eq!(a.refusal, Some(AssociationRefusal::ReplayedNonce));
}

// ---- rule 4: limits ----------------------------------------------------------------------

#[tokio::test]
async fn sponsor_over_its_limit_gets_rate_limited_until_the_window_ends() {
    let s = service_with(AssociationConfig {
        requests_per_sponsor: 2,
        ..AssociationConfig::default()
    })
    .await;
    let hour = Instant(T0.0 - T0.0 % HOUR_MS);
    let now = Instant(hour.0 + 600_000);
    // Different joiners, so only the sponsor's limit is in play.
    for (n, joiner) in [(30, JOINER), (31, SECRETLESS_JOINER)] {
        let _ = send(&s, &Req::new(SPONSOR, joiner, n).bytes(), now).await;
    }
    let a = send(&s, &Req::new(SPONSOR, BLOCKED_JOINER, 32).bytes(), now).await;
    assert_eq!(code_of(&a), Some(ErrorCode::RateLimited));
    assert_eq!(a.refusal, Some(AssociationRefusal::SponsorLimit));
    assert_eq!(
        error_of(&a.bytes, 1).retry_after_s,
        3_000,
        "seconds to the hour's end"
    );
    // Another sponsor is not limited by it.
    let a = send(&s, &Req::new(SECOND_SPONSOR, JOINER, 33).bytes(), now).await;
    assert_eq!(code_of(&a), None);
    // The next window counts afresh.
    let a = send(
        &s,
        &Req::new(SPONSOR, JOINER, 34).bytes(),
        Instant(hour.0 + HOUR_MS),
    )
    .await;
    assert_eq!(code_of(&a), None);
}

#[tokio::test]
async fn joiner_over_its_limit_gets_rate_limited_whichever_sponsor_asks() {
    let s = service_with(AssociationConfig {
        requests_per_joiner: 1,
        ..AssociationConfig::default()
    })
    .await;
    assert_eq!(
        code_of(&send(&s, &Req::new(SPONSOR, JOINER, 35).bytes(), T0).await),
        None
    );
    let a = send(&s, &Req::new(SECOND_SPONSOR, JOINER, 36).bytes(), T0).await;
    assert_eq!(code_of(&a), Some(ErrorCode::RateLimited));
    assert_eq!(a.refusal, Some(AssociationRefusal::JoinerLimit));
}

#[tokio::test]
async fn rate_limits_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zerotouch.db");
    let data_key = LocalKeyFile::new(dir.path().join("data.key"));
    let config = AssociationConfig {
        requests_per_sponsor: 1,
        ..AssociationConfig::default()
    };
    let store = SqliteStore::open(&path, &data_key, SqliteOptions::default())
        .await
        .unwrap();
    populate(&store).await;
    let s = AssociationService::new(store, ring(), config.clone());
    assert_eq!(
        code_of(&send(&s, &Req::new(SPONSOR, JOINER, 37).bytes(), T0).await),
        None
    );
    drop(s);
    let store = SqliteStore::open(&path, &data_key, SqliteOptions::default())
        .await
        .unwrap();
    let s = AssociationService::new(store, ring(), config);
    let a = send(&s, &Req::new(SPONSOR, JOINER, 38).bytes(), T0).await;
    assert_eq!(code_of(&a), Some(ErrorCode::RateLimited));
}

// ---- rule 5: association -----------------------------------------------------------------

#[tokio::test]
async fn sponsor_and_joiner_on_different_accounts_get_not_associated() {
    let s = service().await;
    let a = send(&s, &Req::new(SPONSOR, NEIGHBOURS_DEVICE, 40).bytes(), T0).await;
    assert_eq!(code_of(&a), Some(ErrorCode::NotAssociated));
    assert_eq!(a.refusal, Some(AssociationRefusal::NoSharedAccount));
}

#[tokio::test]
async fn unknown_blocked_other_account_and_secretless_joiners_get_identical_not_associated() {
    let s = service().await;
    let mut answers = Vec::new();
    // One session for all four, so the messages may be compared byte for byte.
    for joiner in [
        UNKNOWN,
        BLOCKED_JOINER,
        NEIGHBOURS_DEVICE,
        SECRETLESS_JOINER,
    ] {
        answers.push(send(&s, &Req::new(SPONSOR, joiner, 41).bytes(), T0).await);
    }
    assert_eq!(code_of(&answers[0]), Some(ErrorCode::NotAssociated));
    for a in &answers[1..] {
        assert_eq!(a.bytes, answers[0].bytes);
    }
    let reasons: Vec<_> = answers.iter().map(|a| a.refusal).collect();
    assert_eq!(
        reasons,
        [
            Some(AssociationRefusal::UnknownJoiner),
            Some(AssociationRefusal::BlockedJoiner),
            Some(AssociationRefusal::NoSharedAccount),
            Some(AssociationRefusal::NoDeviceSecret),
        ]
    );
}

#[tokio::test]
async fn blocked_sponsor_gets_not_authorized_not_not_associated() {
    let s = service().await;
    let a = send(&s, &Req::new(BLOCKED_SPONSOR, JOINER, 42).bytes(), T0).await;
    assert_eq!(code_of(&a), Some(ErrorCode::NotAuthorized));
}

// ---- rule 6: what is built ---------------------------------------------------------------

#[tokio::test]
async fn happy_path_the_sealed_answer_is_the_joiners_answer_on_the_sponsors_binding() {
    let s = service().await;
    let req = Req::new(SPONSOR, JOINER, 50);
    let a = send(&s, &req.bytes(), T0).await;
    assert_eq!(code_of(&a), None);
    let opened = open_as_sponsor(&req, &a.bytes);
    let cd = &opened.challenge_data;
    assert_eq!(
        (
            cd.sponsor_id,
            cd.joiner_id,
            cd.nonce,
            cd.commitment,
            cd.binding
        ),
        (
            req.sponsor_id,
            req.joiner_id,
            req.nonce,
            req.commitment,
            req.binding
        ),
        "the challenge data repeats the request, binding included"
    );
    assert_eq!(opened.window_ms, 30_000);
    // The joiner on the sponsor's channel answers what the server expects...
    assert_eq!(opened.expected, joiner_answer(&req, cd, &BINDING));
    // ...and on another channel (a relay in the middle) it does not.
    assert_ne!(
        opened.expected,
        joiner_answer(&req, cd, &ChannelBinding([0x11; 32]))
    );
    // A new handoff gets a new challenge.
    let req2 = Req::new(SPONSOR, JOINER, 51);
    let opened2 = open_as_sponsor(&req2, &send(&s, &req2.bytes(), T0).await.bytes);
    assert_ne!(opened2.challenge_data.challenge, cd.challenge);
}

#[tokio::test]
async fn expected_answer_does_not_open_without_the_sponsors_answer_key() {
    let s = service().await;
    let req = Req::new(SPONSOR, JOINER, 52);
    let a = send(&s, &req.bytes(), T0).await;
    assert!(open_with(&req, &a.bytes, &req.answer_key).is_ok());
    let other =
        SessionKeyPair::derive(CipherSuite::X25519_SHA256_CHACHA20POLY1305, b"eve").unwrap();
    assert!(open_with(&req, &a.bytes, &other).is_err());
}

#[tokio::test]
async fn challenge_data_never_contains_the_expected_answer() {
    let s = service().await;
    let req = Req::new(SPONSOR, JOINER, 53);
    let a = send(&s, &req.bytes(), T0).await;
    let opened = open_as_sponsor(&req, &a.bytes);
    assert_eq!(opened.expected.len(), 32);
    assert!(!contains(&opened.challenge_data_bytes, &opened.expected));
    // Nor does any part of the answer in clear.
    assert!(!contains(&a.bytes, &opened.expected));
}

#[tokio::test]
async fn answer_key_that_is_not_a_public_key_of_its_suite_gets_bad_message() {
    let s = service().await;
    let req = Req::new(SPONSOR, JOINER, 54);
    let mut payload = req.payload();
    // A P-256 "point" that is not on the curve.
    payload.answer_key = AnswerKey {
        suite: CipherSuite::P256_SHA256_CHACHA20POLY1305,
        public_key: [&[4u8][..], &[0xff; 64]].concat(),
    };
    let a = send(&s, &req.bytes_of(payload.encode_body()), T0).await;
    assert_eq!(code_of(&a), Some(ErrorCode::BadMessage));
}

#[tokio::test]
async fn a_revoked_association_key_is_never_used() {
    let s = service().await;
    s.store()
        .revoke_server_key(&association_signer().key_id(), None, T0)
        .await
        .unwrap();
    let a = send(&s, &Req::new(SPONSOR, JOINER, 55).bytes(), T0).await;
    assert_eq!(code_of(&a), Some(ErrorCode::Internal));
}

/// The seed's plain credential hash would let the server test passphrase guesses. The
/// commitment is an HMAC under a 256-bit key the server never receives: it is not in the
/// request, and no key the server could derive from what it sees confirms any guess, the
/// true passphrase included.
#[tokio::test]
async fn an_association_server_that_tries_to_confirm_a_guessed_credential_cannot() {
    let s = service().await;
    let mut rng = fresh();
    let credential = |passphrase: &[u8]| HomeCredential {
        ssid: b"home".to_vec(),
        security: 2,
        passphrase: Passphrase::new(passphrase).unwrap(),
    };
    let truth = credential(fixtures::PASSPHRASE);
    let mut req = Req::new(SPONSOR, JOINER, 60);
    let key = CommitmentKey::generate(&mut rng);
    let (session, nonce, _, joiner) = req.context();
    req.commitment = credential_commitment(&P, &key, &session, &nonce, &joiner, &truth);
    let bytes = req.bytes();

    // The request carries neither the credential, nor its plain hash, nor the key.
    for secret in [
        fixtures::PASSPHRASE.to_vec(),
        P.sha256(&[fixtures::PASSPHRASE]).to_vec(),
        P.sha256(&[b"home", fixtures::PASSPHRASE]).to_vec(),
        key.expose_secret().to_vec(),
    ] {
        assert!(!contains(&bytes, &secret));
    }
    // Keys a server could make from what it has: none confirms any guess.
    let server_keys = [
        CommitmentKey::new([0; 32]),
        CommitmentKey::new(P.sha256(&[&bytes])),
        CommitmentKey::new(req.binding.0),
        CommitmentKey::new(req.commitment.0),
        CommitmentKey::new(P.sha256(&[&session.0, &nonce.0])),
    ];
    let guesses: [&[u8]; 4] = [
        b"password",
        b"12345678",
        b"correct horse battery stapler",
        fixtures::PASSPHRASE,
    ];
    for guess in guesses {
        for k in &server_keys {
            let c = credential_commitment(&P, k, &session, &nonce, &joiner, &credential(guess));
            assert!(!c.matches(&req.commitment));
        }
    }
    // The commitment depends on the key: the true credential under two random keys differs.
    let other = CommitmentKey::generate(&mut rng);
    assert!(
        !credential_commitment(&P, &other, &session, &nonce, &joiner, &truth)
            .matches(&req.commitment)
    );
    // The server only copies the commitment into what it signs.
    let a = send(&s, &bytes, T0).await;
    let opened = open_as_sponsor(&req, &a.bytes);
    assert_eq!(opened.challenge_data.commitment, req.commitment);
    assert!(!contains(&a.bytes, fixtures::PASSPHRASE));
}

// ---- metrics -----------------------------------------------------------------------------

#[tokio::test]
async fn answers_and_refusals_are_counted_by_result() {
    let s = service().await;
    let _ = send(&s, &Req::new(SPONSOR, JOINER, 70).bytes(), T0).await;
    let _ = send(&s, &Req::new(UNKNOWN, JOINER, 71).bytes(), T0).await;
    let m = s.metrics();
    assert_eq!(m.association_requests_counted("answered"), 1);
    assert_eq!(m.association_requests_counted("unknown_sponsor"), 1);
}

// ---- a setup service and an association service on one store ------------------------------

#[tokio::test]
async fn an_association_service_built_from_a_setup_service_shares_its_store_and_keys() {
    let store = MemoryStore::new();
    populate(&store).await;
    let setup = SetupService::new(store, ring(), ServiceConfig::default());
    let association = setup.association_service(AssociationConfig::default());
    // A device blocked through the setup service's store is blocked for the association
    // service at once.
    setup
        .store()
        .set_blocked(&device_id(SPONSOR), true)
        .await
        .unwrap();
    let a = send(&association, &Req::new(SPONSOR, JOINER, 80).bytes(), T0).await;
    assert_eq!(a.refusal, Some(AssociationRefusal::BlockedSponsor));
    let a = send(
        &association,
        &Req::new(SECOND_SPONSOR, JOINER, 81).bytes(),
        T0,
    )
    .await;
    assert_eq!(code_of(&a), None);
    assert_eq!(setup.metrics().association_requests_counted("answered"), 1);
    // While the association service lives, the store cannot be taken from the setup service.
    assert!(setup.into_store().is_err());
}
