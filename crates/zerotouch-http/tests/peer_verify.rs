//! Flow 2's verification request over real HTTPS on loopback: a sponsor with a manufacturer
//! certificate posts its signed request to `/v1/peer/verify` and gets verification data it
//! can check; without a client certificate, or with another device's, it gets nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use hyper::Method;
use zerotouch_core::flow2::{
    self, AnswerContext, AnswerKey, ChallengeData, ChannelBinding, Commitment,
    EXPECTED_ANSWER_INFO, VerificationData, VerificationRequest, challenge_answer,
    handoff_transcript,
};
use zerotouch_core::{
    Body, CipherSuite, CryptoProvider, DeviceSecret, Envelope, ErrorCode, ErrorMessage, KeyRole,
    Message, MessageTag, Nonce, PinnedKey, PinnedKeys, RustCryptoProvider, SessionId,
    SessionKeyPair, SignatureAlgorithm, Signer, SoftwareSigner, sign_message,
};
use zerotouch_http::{AssociationClient, CBOR, HttpError, Limits, PEER_VERIFY_PATH};

const P: RustCryptoProvider = RustCryptoProvider;
const BINDING: ChannelBinding = ChannelBinding([0x3c; 32]);

/// A sponsor and a joiner of account 0, both with device secrets.
async fn pair(h: &Harness) -> (TestDevice, TestDevice, DeviceSecret) {
    let secret = DeviceSecret::new([0x5e; 32]);
    let sponsor = h
        .make_device_with_secret(
            1,
            SignatureAlgorithm::EcdsaP256Sha256,
            0,
            Some(DeviceSecret::new([0x11; 32])),
        )
        .await;
    let joiner = h
        .make_device_with_secret(2, SignatureAlgorithm::Ed25519, 0, Some(secret.clone()))
        .await;
    (sponsor, joiner, secret)
}

/// The sponsor's verification request about `joiner` in handoff `n`, signed by `signer`.
fn request(
    signer: &SoftwareSigner,
    joiner: &TestDevice,
    n: u8,
    answer_key: &SessionKeyPair,
) -> (SessionId, VerificationRequest, Vec<u8>) {
    let session = SessionId([n; 16]);
    let body = VerificationRequest {
        sponsor_id: signer.key_id(),
        joiner_id: joiner.signer.key_id(),
        nonce: Nonce([n; 16]),
        commitment: Commitment([0xcc; 32]),
        binding: BINDING,
        answer_key: AnswerKey {
            suite: answer_key.suite(),
            public_key: answer_key.public_key().to_vec(),
        },
    };
    let bytes = sign_message(
        flow2::header(MessageTag::VerificationRequest, session),
        KeyRole::DeviceIdentity,
        &handoff_transcript(&P, &session),
        body.encode_body(),
        signer,
        &P,
    )
    .unwrap()
    .encode();
    (session, body, bytes)
}

fn answer_key(n: u8) -> SessionKeyPair {
    SessionKeyPair::derive(CipherSuite::X25519_SHA256_CHACHA20POLY1305, &[n]).unwrap()
}

fn error_code(bytes: &[u8]) -> ErrorCode {
    let e = Envelope::decode(bytes).unwrap();
    assert_eq!(e.header.tag, MessageTag::Error);
    let Body::Plain(body) = &e.body else {
        panic!("an error message is plain")
    };
    ErrorMessage::decode_body(body).unwrap().code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sponsor_with_its_device_certificate_gets_verification_data_it_can_check() {
    let h = Harness::start(Limits::default(), 1).await;
    let (sponsor, joiner, joiner_secret) = pair(&h).await;
    let key = answer_key(1);
    let (session, sent, bytes) = request(&sponsor.signer, &joiner, 1, &key);
    let mut client = AssociationClient::new(h.endpoint(), h.device_tls(&sponsor));
    let answer = client.verify(bytes.clone()).await.unwrap();

    // As the sponsor reads it: both signatures under the pinned association key.
    let pinned = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        h.association_key.clone(),
    )]);
    let th = handoff_transcript(&P, &session);
    let e = Envelope::decode(&answer).unwrap();
    assert_eq!(
        e.header,
        flow2::header(MessageTag::VerificationData, session)
    );
    let Body::Signed(signed) = &e.body else {
        panic!("verification data is signed")
    };
    let data = VerificationData::decode_body(
        signed
            .verify_trusted(&e.header, KeyRole::Association, &th, &pinned, &P)
            .unwrap(),
    )
    .unwrap();
    let cd = Envelope::decode(&data.challenge_data).unwrap();
    let Body::Signed(cd_signed) = &cd.body else {
        panic!("challenge data is signed")
    };
    let challenge = ChallengeData::decode_body(
        cd_signed
            .verify_trusted(&cd.header, KeyRole::Association, &th, &pinned, &P)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(challenge.binding, BINDING);
    assert_eq!(challenge.commitment, sent.commitment);
    let expected = key
        .open(
            &data.sealed_answer.encapsulated_key,
            EXPECTED_ANSWER_INFO,
            &P.sha256(&[&data.challenge_data]),
            &[&data.sealed_answer.ciphertext],
        )
        .unwrap();
    // The joiner, on the sponsor's channel, answers exactly that.
    let joiners = challenge_answer(
        &P,
        &joiner_secret,
        &AnswerContext {
            session_id: &session,
            nonce: &sent.nonce,
            sponsor_id: &sent.sponsor_id,
            joiner_id: &sent.joiner_id,
        },
        &challenge.challenge,
        &BINDING,
    );
    assert_eq!(expected[0].as_slice(), joiners.expose_secret());

    // A retransmission over the same client gets the same bytes.
    assert_eq!(client.verify(bytes).await.unwrap(), answer);
    assert!(
        h.metrics_text()
            .await
            .contains("zerotouch_association_requests_total{result=\"answered\"} 2"),
        "the association service counts into the server's registry (the retransmission is an \
         answered request too, though the limits count it once)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_without_a_client_certificate_is_refused() {
    let h = Harness::start(Limits::default(), 1).await;
    let (sponsor, joiner, _) = pair(&h).await;
    let (_, _, bytes) = request(&sponsor.signer, &joiner, 2, &answer_key(2));
    let tls = zerotouch_http::client_tls_config(None, h.operator_trust()).unwrap();
    let mut client = AssociationClient::new(h.endpoint(), tls);
    match client.verify(bytes).await {
        Err(HttpError::Status { status, code, .. }) => {
            assert_eq!(status, 401);
            assert_eq!(code, "client_certificate_required");
        }
        other => panic!("refused at the HTTP layer, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_of_another_device_than_the_signer_is_refused() {
    let h = Harness::start(Limits::default(), 1).await;
    let (sponsor, joiner, _) = pair(&h).await;
    let (_, _, bytes) = request(&sponsor.signer, &joiner, 3, &answer_key(3));
    // The joiner's own (valid, trusted) certificate carries the sponsor's signed request.
    let mut channel = h.device_channel(&joiner);
    let reply = channel
        .request(Method::POST, PEER_VERIFY_PATH, &[], Some((CBOR, bytes)))
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(error_code(&reply.body), ErrorCode::NotAuthorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_a_ca_other_than_the_manufacturers_is_refused() {
    let h = Harness::start(Limits::default(), 1).await;
    let (sponsor, joiner, _) = pair(&h).await;
    let (_, _, bytes) = request(&sponsor.signer, &joiner, 4, &answer_key(4));
    // A provisioner's certificate opens the relay endpoints, not this one.
    let mut client = AssociationClient::new(h.endpoint(), h.provisioner_tls());
    match client.verify(bytes).await {
        Err(HttpError::Status { status, code, .. }) => {
            assert_eq!(status, 403);
            assert_eq!(code, "certificate_not_trusted");
        }
        other => panic!("refused at the HTTP layer, got {other:?}"),
    }
}
