//! Envelope decoding rules: one entry point that refuses everything malformed with a typed error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
use ciborium::Value;
use common::*;
use zerotouch_core::*;

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = vec![];
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

fn raw_envelope(version: u64, flow: u64, tag: u64, sid: Vec<u8>, seq: u64, body: Value) -> Vec<u8> {
    cbor(&Value::Array(vec![
        Value::Integer(version.into()),
        Value::Integer(flow.into()),
        Value::Integer(tag.into()),
        Value::Bytes(sid),
        Value::Integer(seq.into()),
        body,
    ]))
}

fn error_body() -> Vec<u8> {
    ErrorMessage {
        code: ErrorCode::NotAuthorized,
        retry_after_s: 0,
        supported_versions: vec![],
    }
    .encode_body()
}

#[test]
fn plain_envelope_round_trips() {
    let env = Envelope::plain(header(MessageTag::Error), error_body()).unwrap();
    let wire = env.encode();
    assert_eq!(Envelope::decode(&wire).unwrap(), env);
}

#[test]
fn every_tag_round_trips_with_its_body_kind() {
    let th = TranscriptInputs::fixed().hash();
    let signer = key(SignatureAlgorithm::Ed25519, "k");
    for tag in MessageTag::ALL {
        let env = if tag.is_signed() {
            sign_message(
                header(tag),
                tag.signer_role().unwrap(),
                &th,
                vec![1, 2, 3],
                &signer,
                &PROVIDER,
            )
            .unwrap()
        } else {
            Envelope::plain(header(tag), vec![1, 2, 3]).unwrap()
        };
        let wire = env.encode();
        assert!(wire.len() <= tag.max_len());
        assert_eq!(Envelope::decode(&wire).unwrap(), env, "{tag:?}");
    }
}

#[test]
fn oversized_message_is_refused() {
    // Over the type's limit.
    let big = vec![0u8; MessageTag::Error.max_len()];
    let wire = Envelope::plain(header(MessageTag::Error), big)
        .unwrap()
        .encode();
    assert!(matches!(
        Envelope::decode(&wire),
        Err(DecodeError::TooLong { limit: 256, .. })
    ));
    // Over the overall limit, refused before parsing.
    let huge = vec![0u8; MAX_MESSAGE_LEN + 1];
    assert_eq!(
        Envelope::decode(&huge),
        Err(DecodeError::TooLong {
            len: MAX_MESSAGE_LEN + 1,
            limit: MAX_MESSAGE_LEN
        })
    );
}

#[test]
fn unsupported_version_is_refused() {
    let wire = raw_envelope(2, 1, 0x7f, vec![0; 16], 0, Value::Bytes(error_body()));
    assert_eq!(
        Envelope::decode(&wire),
        Err(DecodeError::UnsupportedVersion(2))
    );
    let wire = raw_envelope(256, 1, 0x7f, vec![0; 16], 0, Value::Bytes(error_body()));
    assert_eq!(
        Envelope::decode(&wire),
        Err(DecodeError::UnsupportedVersion(256))
    );
}

#[test]
fn unknown_flow_and_tag_are_refused() {
    let wire = raw_envelope(1, 9, 0x7f, vec![0; 16], 0, Value::Bytes(vec![]));
    assert_eq!(Envelope::decode(&wire), Err(DecodeError::UnknownFlow(9)));
    let wire = raw_envelope(1, 1, 0x40, vec![0; 16], 0, Value::Bytes(vec![]));
    assert_eq!(Envelope::decode(&wire), Err(DecodeError::UnknownTag(0x40)));
}

#[test]
fn message_of_another_flow_is_refused() {
    // A flow-2 message in a flow-1 envelope.
    let wire = raw_envelope(1, 1, 0x20, vec![0; 16], 0, Value::Bytes(vec![]));
    assert_eq!(
        Envelope::decode(&wire),
        Err(DecodeError::TagNotInFlow { tag: 0x20, flow: 1 })
    );
}

#[test]
fn signed_tag_with_plain_body_is_refused() {
    let wire = raw_envelope(1, 1, 0x02, vec![0; 16], 0, Value::Bytes(vec![1]));
    assert_eq!(
        Envelope::decode(&wire),
        Err(DecodeError::WrongBodyKind(0x02))
    );
    let wire = raw_envelope(1, 1, 0x01, vec![0; 16], 0, Value::Array(vec![]));
    assert_eq!(
        Envelope::decode(&wire),
        Err(DecodeError::WrongBodyKind(0x01))
    );
}

#[test]
fn session_id_must_be_16_bytes() {
    let wire = raw_envelope(1, 1, 0x01, vec![0; 15], 0, Value::Bytes(vec![]));
    assert!(matches!(
        Envelope::decode(&wire),
        Err(DecodeError::WrongLength {
            field: "session_id",
            ..
        })
    ));
}

#[test]
fn sequence_number_over_32_bits_is_refused() {
    let wire = raw_envelope(1, 1, 0x01, vec![0; 16], 1 << 32, Value::Bytes(vec![]));
    assert_eq!(
        Envelope::decode(&wire),
        Err(DecodeError::OutOfRange { field: "seq" })
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let mut wire = Envelope::plain(header(MessageTag::Hello), vec![])
        .unwrap()
        .encode();
    wire.push(0);
    assert_eq!(Envelope::decode(&wire), Err(DecodeError::TrailingBytes));
}

#[test]
fn deeply_nested_cbor_is_refused() {
    let mut wire = vec![0x81u8; 200]; // 200 nested one-element arrays
    wire.push(0x00);
    assert_eq!(Envelope::decode(&wire), Err(DecodeError::InvalidCbor));
}

#[test]
fn truncated_envelope_is_refused() {
    let wire = Envelope::plain(header(MessageTag::Hello), vec![1, 2, 3])
        .unwrap()
        .encode();
    for n in 0..wire.len() {
        assert!(
            Envelope::decode(&wire[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
}

fn signed_wire() -> Vec<u8> {
    let th = TranscriptInputs::fixed().hash();
    let signer = key(SignatureAlgorithm::Ed25519, "k");
    sign_message(
        header(MessageTag::ServerProof),
        KeyRole::SetupSigning,
        &th,
        vec![1],
        &signer,
        &PROVIDER,
    )
    .unwrap()
    .encode()
}

/// Decodes the signed wire message, lets `f` edit the COSE array, re-encodes.
fn edit_cose(f: impl FnOnce(&mut Vec<Value>)) -> Vec<u8> {
    let Value::Array(mut items) = ciborium::de::from_reader(signed_wire().as_slice()).unwrap()
    else {
        panic!()
    };
    let Value::Array(cose) = &mut items[5] else {
        panic!()
    };
    f(cose);
    cbor(&Value::Array(items))
}

#[test]
fn cose_unprotected_header_is_refused() {
    let wire = edit_cose(|c| {
        c[1] = Value::Map(vec![(Value::Integer(4.into()), Value::Bytes(vec![0; 32]))])
    });
    assert!(matches!(Envelope::decode(&wire), Err(DecodeError::Cose(_))));
}

#[test]
fn cose_extra_protected_header_is_refused() {
    let prot = cbor(&Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer((-8).into())),
        (Value::Integer(4.into()), Value::Bytes(vec![0; 32])),
        (Value::Integer(3.into()), Value::Integer(60.into())),
    ]));
    let wire = edit_cose(|c| c[0] = Value::Bytes(prot));
    assert!(matches!(Envelope::decode(&wire), Err(DecodeError::Cose(_))));
}

#[test]
fn cose_unknown_algorithm_is_refused() {
    let prot = cbor(&Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer((-35).into())),
        (Value::Integer(4.into()), Value::Bytes(vec![0; 32])),
    ]));
    let wire = edit_cose(|c| c[0] = Value::Bytes(prot));
    assert!(matches!(Envelope::decode(&wire), Err(DecodeError::Cose(_))));
}

#[test]
fn cose_short_key_id_is_refused() {
    let prot = cbor(&Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer((-8).into())),
        (Value::Integer(4.into()), Value::Bytes(vec![0; 8])),
    ]));
    let wire = edit_cose(|c| c[0] = Value::Bytes(prot));
    assert!(matches!(Envelope::decode(&wire), Err(DecodeError::Cose(_))));
}

#[test]
fn cose_detached_payload_is_refused() {
    let wire = edit_cose(|c| c[2] = Value::Null);
    assert!(matches!(Envelope::decode(&wire), Err(DecodeError::Cose(_))));
}

#[test]
fn cose_signature_of_wrong_length_is_refused() {
    let wire = edit_cose(|c| c[3] = Value::Bytes(vec![0; 63]));
    assert!(matches!(Envelope::decode(&wire), Err(DecodeError::Cose(_))));
}

#[test]
fn error_message_round_trips_and_refuses_unknown_codes() {
    let m = ErrorMessage {
        code: ErrorCode::UnsupportedVersion,
        retry_after_s: 30,
        supported_versions: SUPPORTED_VERSIONS.to_vec(),
    };
    assert_eq!(ErrorMessage::decode_body(&m.encode_body()).unwrap(), m);
    let bad = cbor(&Value::Array(vec![
        Value::Integer(99.into()),
        Value::Integer(0.into()),
        Value::Bytes(vec![]),
    ]));
    assert_eq!(
        ErrorMessage::decode_body(&bad),
        Err(DecodeError::UnknownErrorCode(99))
    );
}

#[test]
fn highest_common_version_is_chosen() {
    let offered = [ProtocolVersion(1), ProtocolVersion(3), ProtocolVersion(2)];
    let ours = [ProtocolVersion(1), ProtocolVersion(2)];
    assert_eq!(negotiate_version(&offered, &ours), Ok(ProtocolVersion(2)));
    assert_eq!(
        negotiate_version(&[ProtocolVersion(9)], &ours),
        Err(NegotiationError::NoCommonVersion)
    );
}

#[test]
fn server_accepts_every_released_version() {
    for v in SUPPORTED_VERSIONS {
        assert!(is_supported(*v));
        assert_eq!(negotiate_version(&[*v], SUPPORTED_VERSIONS), Ok(*v));
    }
}

#[test]
fn choice_that_was_not_offered_is_a_downgrade() {
    assert_eq!(
        check_version_choice(&[ProtocolVersion(2)], ProtocolVersion(1)),
        Err(NegotiationError::NotOffered)
    );
    assert_eq!(
        check_suite_choice(
            &[CipherSuite::X25519_SHA256_CHACHA20POLY1305],
            CipherSuite::P256_SHA256_CHACHA20POLY1305
        ),
        Err(NegotiationError::NotOffered)
    );
}

#[test]
fn suite_follows_the_choosers_preference() {
    let offered = [
        CipherSuite::P256_SHA256_CHACHA20POLY1305,
        CipherSuite::X25519_SHA256_CHACHA20POLY1305,
    ];
    assert_eq!(
        negotiate_suite(&offered, CipherSuite::SUPPORTED),
        Ok(CipherSuite::X25519_SHA256_CHACHA20POLY1305)
    );
    assert_eq!(
        negotiate_suite(
            &[CipherSuite::P256_SHA256_CHACHA20POLY1305],
            &[CipherSuite::X25519_SHA256_CHACHA20POLY1305]
        ),
        Err(NegotiationError::NoCommonSuite)
    );
}

/// Runs `f` on a thread with a 64 KiB stack, as small as a microcontroller task's.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("decoding overflowed a 64 KiB stack")
}

#[test]
fn nested_cose_header_cannot_exhaust_the_stack() {
    // A protected header holding 100 nested arrays: ~190 bytes, under the tag's limit.
    let mut nested = vec![0xa1, 0x18, 0x63];
    nested.extend(std::iter::repeat_n(0x81u8, 100));
    nested.push(0x00);
    let wire = edit_cose(|c| c[0] = Value::Bytes(nested));
    let out = on_small_stack(move || Envelope::decode(&wire));
    assert!(matches!(out, Err(DecodeError::Cose(_))), "{out:?}");
}

#[test]
fn counter_signature_chain_in_the_header_is_refused() {
    // {7: [<protected>, {}, h'']} nested 200 times: each level a fresh parse in a general COSE
    // parser. Refused by the fixed header form before anything parses it.
    let mut prot = cbor(&Value::Map(vec![(
        Value::Integer(1.into()),
        Value::Integer((-8).into()),
    )]));
    for _ in 0..200 {
        prot = cbor(&Value::Map(vec![(
            Value::Integer(7.into()),
            Value::Array(vec![
                Value::Bytes(prot),
                Value::Map(vec![]),
                Value::Bytes(vec![]),
            ]),
        )]));
    }
    let wire = edit_cose(|c| c[0] = Value::Bytes(prot));
    let out = on_small_stack(move || Envelope::decode(&wire));
    assert!(out.is_err());
}

#[test]
fn non_canonical_encodings_are_refused() {
    let good = Envelope::plain(header(MessageTag::Hello), vec![1, 2])
        .unwrap()
        .encode();
    assert!(Envelope::decode(&good).is_ok());
    // version as a two-byte integer: 18 01 instead of 01
    let mut long_int = vec![good[0], 0x18, 0x01];
    long_int.extend_from_slice(&good[2..]);
    // the whole envelope as an indefinite-length array: 9f ... ff
    let mut indefinite = vec![0x9f];
    indefinite.extend_from_slice(&good[1..]);
    indefinite.push(0xff);
    // seq (here 1) as a bignum: c2 41 01
    let seq_at = good.len() - 4; // [.., seq, 42 01 02]
    assert_eq!(good[seq_at], 0x01);
    let mut bignum = good[..seq_at].to_vec();
    bignum.extend_from_slice(&[0xc2, 0x41, 0x01]);
    bignum.extend_from_slice(&good[seq_at + 1..]);
    for (name, bad) in [
        ("long integer", long_int),
        ("indefinite array", indefinite),
        ("bignum", bignum),
    ] {
        assert!(
            matches!(
                Envelope::decode(&bad),
                Err(DecodeError::NonCanonical | DecodeError::InvalidCbor)
            ),
            "{name} accepted: {:?}",
            Envelope::decode(&bad)
        );
    }
}

#[test]
fn non_canonical_error_body_is_refused() {
    // [4, 0, h''] with 0 written as 18 00.
    assert_eq!(
        ErrorMessage::decode_body(&[0x83, 0x04, 0x18, 0x00, 0x40]),
        Err(DecodeError::NonCanonical)
    );
    assert!(ErrorMessage::decode_body(&[0x83, 0x04, 0x00, 0x40]).is_ok());
}
