//! Flow-2 message bodies (docs/PROTOCOL.md 18.3): each round-trips, refuses every field of the
//! wrong size or out of range, and never panics on any input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ciborium::Value;
use proptest::prelude::*;
use zerotouch_core::flow2::{
    AnswerKey, Challenge, ChallengeAnswer, ChallengeData, ChallengeResponse, ChannelBinding,
    Commitment, CommitmentKey, CredentialHandover, Fallback, HomeCredential, PeerCredentialRequest,
    SealedAnswer, VerificationData, VerificationRequest,
};
use zerotouch_core::{CipherSuite, DecodeError, KeyId, Message, Nonce, Passphrase, cbor};

fn credential_request() -> PeerCredentialRequest {
    PeerCredentialRequest {
        joiner_id: KeyId([1; 32]),
        nonce: Nonce([2; 16]),
        seen_binding: Some(ChannelBinding([3; 32])),
        fallbacks: vec![Fallback::LabelCode, Fallback::CompareCodes],
    }
}

fn verification_request() -> VerificationRequest {
    VerificationRequest {
        sponsor_id: KeyId([4; 32]),
        joiner_id: KeyId([1; 32]),
        nonce: Nonce([2; 16]),
        commitment: Commitment([5; 32]),
        binding: ChannelBinding([3; 32]),
        answer_key: AnswerKey {
            suite: CipherSuite::P256_SHA256_CHACHA20POLY1305,
            public_key: vec![4; 65],
        },
    }
}

fn challenge_data() -> ChallengeData {
    ChallengeData {
        sponsor_id: KeyId([4; 32]),
        joiner_id: KeyId([1; 32]),
        nonce: Nonce([2; 16]),
        commitment: Commitment([5; 32]),
        binding: ChannelBinding([3; 32]),
        challenge: Challenge([6; 32]),
    }
}

fn verification_data() -> VerificationData {
    VerificationData {
        challenge_data: vec![0x84; 300],
        sealed_answer: SealedAnswer {
            encapsulated_key: vec![7; 65],
            ciphertext: vec![8; 48],
        },
        answer_window_ms: 30_000,
    }
}

fn response() -> ChallengeResponse {
    ChallengeResponse {
        answer: ChallengeAnswer::new([9; 32]),
    }
}

fn handover() -> CredentialHandover {
    CredentialHandover {
        commitment_key: CommitmentKey::new([10; 32]),
        credential: HomeCredential {
            ssid: b"home".to_vec(),
            security: 2,
            passphrase: Passphrase::new(b"correct horse battery").unwrap(),
        },
    }
}

fn round_trip<M: Message + PartialEq + std::fmt::Debug>(m: &M) {
    let bytes = m.encode_body();
    assert_eq!(&M::decode_body(&bytes).unwrap(), m);
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(M::decode_body(&longer), Err(DecodeError::TrailingBytes));
    assert!(M::decode_body(&bytes[..bytes.len() - 1]).is_err());
}

/// `m`'s encoding with the element at `path` (indices into nested arrays) replaced.
fn with_field<M: Message>(m: &M, path: &[usize], value: Value) -> Vec<u8> {
    let mut top = cbor::decode(&m.encode_body()).unwrap();
    let mut at = &mut top;
    for &i in path {
        let Value::Array(items) = at else {
            panic!("no array at {path:?}")
        };
        at = &mut items[i];
    }
    *at = value;
    cbor::encode(&top)
}

fn bytes(n: usize) -> Value {
    Value::Bytes(vec![0x41; n])
}

/// Decoding `m` with the field at `path` set to each of `values` fails naming `field`.
fn refused<M: Message + std::fmt::Debug>(m: &M, path: &[usize], field: &str, values: &[Value]) {
    for v in values {
        let err = M::decode_body(&with_field(m, path, v.clone()))
            .expect_err(&format!("{field} = {v:?} accepted"));
        let named = match err {
            DecodeError::WrongLength { field, .. }
            | DecodeError::OutOfRange { field }
            | DecodeError::UnexpectedType { field, .. } => field,
            other => panic!("{field} = {v:?}: {other:?}"),
        };
        assert_eq!(named, field, "{v:?}");
    }
}

#[test]
fn every_flow2_message_round_trips() {
    round_trip(&credential_request());
    round_trip(&PeerCredentialRequest {
        seen_binding: None,
        ..credential_request()
    });
    round_trip(&verification_request());
    round_trip(&challenge_data());
    round_trip(&verification_data());
    round_trip(&response());
    round_trip(&handover());
    let h = handover();
    assert_eq!(h.encode().to_vec(), h.encode_body());
}

#[test]
fn ids_nonces_bindings_and_values_of_the_wrong_length_are_refused() {
    let short_long = |n: usize| [bytes(n - 1), bytes(n + 1), bytes(0)];
    let r = credential_request();
    refused(&r, &[0], "joiner_id", &short_long(32));
    refused(&r, &[1], "nonce", &short_long(16));
    refused(&r, &[2], "seen_binding", &short_long(32));
    let v = verification_request();
    refused(&v, &[0], "sponsor_id", &short_long(32));
    refused(&v, &[1], "joiner_id", &short_long(32));
    refused(&v, &[2], "nonce", &short_long(16));
    refused(&v, &[3], "commitment", &short_long(32));
    refused(&v, &[4], "binding", &short_long(32));
    let c = challenge_data();
    refused(&c, &[0], "sponsor_id", &short_long(32));
    refused(&c, &[1], "joiner_id", &short_long(32));
    refused(&c, &[2], "nonce", &short_long(16));
    refused(&c, &[3], "commitment", &short_long(32));
    refused(&c, &[4], "binding", &short_long(32));
    refused(&c, &[5], "challenge", &short_long(32));
    refused(&response(), &[0], "answer", &short_long(32));
    refused(&handover(), &[0], "commitment_key", &short_long(32));
}

#[test]
fn answer_key_of_the_wrong_size_is_refused() {
    let v = verification_request();
    refused(
        &v,
        &[5, 0],
        "answer_key suite",
        &[bytes(0), bytes(5), bytes(7), bytes(12)],
    );
    refused(&v, &[5, 1], "answer_key", &[bytes(31), bytes(66)]);
    // The suite is `bstr .size 6` (18.3): an unknown one decodes, and whoever seals to it
    // refuses it then, as for flow 1's offered suites.
    VerificationRequest::decode_body(&with_field(&v, &[5, 0], bytes(6))).unwrap();
}

#[test]
fn sealed_answer_and_challenge_data_of_the_wrong_size_are_refused() {
    let d = verification_data();
    refused(&d, &[0], "challenge_data", &[bytes(0), bytes(1025)]);
    refused(&d, &[1, 0], "encapsulated_key", &[bytes(31), bytes(66)]);
    refused(
        &d,
        &[1, 1],
        "sealed_answer",
        &[bytes(47), bytes(49), bytes(32)],
    );
    refused(
        &d,
        &[2],
        "answer_window_ms",
        &[Value::Integer((u64::from(u32::MAX) + 1).into())],
    );
}

#[test]
fn handover_with_security_0_or_4_is_refused() {
    for security in [0u8, 4] {
        let mut h = handover();
        h.credential.security = security;
        assert_eq!(
            CredentialHandover::decode_body(&h.encode_body()),
            Err(DecodeError::OutOfRange { field: "security" }),
            "security {security}"
        );
    }
    for security in 1..=3u8 {
        let mut h = handover();
        h.credential.security = security;
        round_trip(&h);
    }
}

#[test]
fn handover_with_a_passphrase_too_short_too_long_or_not_printable_is_refused() {
    let h = handover();
    refused(
        &h,
        &[3],
        "passphrase",
        &[
            Value::Bytes(b"short12".to_vec()),
            bytes(65),
            Value::Bytes(b"tab\there ok".to_vec()),
            Value::Bytes(vec![b'g'; 64]),
        ],
    );
    // The bounds themselves: 8 printable bytes, and a 64-hex-digit PSK.
    for ok in [b"exactly8".to_vec(), vec![b'a'; 64]] {
        CredentialHandover::decode_body(&with_field(&h, &[3], Value::Bytes(ok))).unwrap();
    }
}

#[test]
fn handover_with_an_ssid_empty_or_over_32_bytes_is_refused() {
    refused(&handover(), &[1], "ssid", &[bytes(0), bytes(33)]);
    CredentialHandover::decode_body(&with_field(&handover(), &[1], bytes(32))).unwrap();
}

#[test]
fn messages_with_a_field_missing_or_extra_are_refused() {
    fn arity<M: Message + std::fmt::Debug>(m: &M) {
        let Value::Array(items) = cbor::decode(&m.encode_body()).unwrap() else {
            panic!()
        };
        let mut fewer = items.clone();
        fewer.pop();
        let mut more = items;
        more.push(Value::Null);
        for v in [fewer, more] {
            assert!(matches!(
                M::decode_body(&cbor::encode(&Value::Array(v))),
                Err(DecodeError::WrongLength { .. })
            ));
        }
    }
    arity(&credential_request());
    arity(&verification_request());
    arity(&challenge_data());
    arity(&verification_data());
    arity(&response());
    arity(&handover());
}

#[test]
fn handover_debug_shows_neither_secret() {
    let text = format!("{:?}", handover());
    assert!(!text.contains("correct horse") && !text.contains("10, 10"));
}

/// Every flow-2 decoder on `bytes`.
fn decode_all(bytes: &[u8]) {
    let _ = PeerCredentialRequest::decode_body(bytes);
    let _ = VerificationRequest::decode_body(bytes);
    let _ = ChallengeData::decode_body(bytes);
    let _ = VerificationData::decode_body(bytes);
    let _ = ChallengeResponse::decode_body(bytes);
    let _ = CredentialHandover::decode_body(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn flow2_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_all(&bytes);
    }

    #[test]
    fn flow2_decoders_never_panic_on_mutated_messages(
        idx in 0usize..4000,
        byte in any::<u8>(),
        cut in any::<bool>(),
        which in 0usize..6,
    ) {
        let mut bytes = match which {
            0 => credential_request().encode_body(),
            1 => verification_request().encode_body(),
            2 => challenge_data().encode_body(),
            3 => verification_data().encode_body(),
            4 => response().encode_body(),
            _ => handover().encode_body(),
        };
        let i = idx % bytes.len();
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] = byte;
        }
        decode_all(&bytes);
    }
}
