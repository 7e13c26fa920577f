//! The flow-2 fallback bodies (FallbackStart 0x26, SasNonce 0x27, SasReveal 0x28,
//! OwnerDecision 0x29, PakeShare 0x2a, PakeReply 0x2b, FallbackHandover 0x2c) and the credential
//! request with its `fallbacks` field: no input makes a decoder panic (arbitrary bytes, valid
//! encodings mutated or cut short, arrays of the right shape holding arbitrary items), whatever
//! decodes re-encodes to exactly the bytes it came from, and every valid message round-trips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ciborium::Value;
use proptest::prelude::*;
use zerotouch_core::flow2::fallback::{PAKE_CONFIRM_LEN, PAKE_SHARE_LEN, SAS_NONCE_LEN};
use zerotouch_core::flow2::{
    ChannelBinding, Fallback, FallbackHandover, FallbackStart, HomeCredential, OwnerDecision,
    PakeReply, PakeShare, PeerCredentialRequest, SasNonce, SasReveal,
};
use zerotouch_core::{KeyId, Message, Nonce, Passphrase, cbor};

/// `M::decode_body(bytes)`, and if it decodes, its re-encoding is `bytes` itself.
fn decodes_canonically<M: Message + std::fmt::Debug>(bytes: &[u8]) -> bool {
    match M::decode_body(bytes) {
        Ok(m) => {
            assert_eq!(m.encode_body(), bytes, "{m:?} re-encodes to other bytes");
            true
        }
        Err(_) => false,
    }
}

/// Every decoder this file covers on `bytes`: how many accepted them.
fn decode_all(bytes: &[u8]) -> usize {
    [
        decodes_canonically::<FallbackStart>(bytes),
        decodes_canonically::<SasNonce>(bytes),
        decodes_canonically::<SasReveal>(bytes),
        decodes_canonically::<OwnerDecision>(bytes),
        decodes_canonically::<PakeShare>(bytes),
        decodes_canonically::<PakeReply>(bytes),
        decodes_canonically::<FallbackHandover>(bytes),
        decodes_canonically::<PeerCredentialRequest>(bytes),
    ]
    .into_iter()
    .filter(|ok| *ok)
    .count()
}

fn credential() -> HomeCredential {
    HomeCredential {
        ssid: b"home".to_vec(),
        security: 2,
        passphrase: Passphrase::new(b"correct horse battery").unwrap(),
    }
}

/// One valid encoding of each body.
fn valid_bodies() -> Vec<Vec<u8>> {
    vec![
        FallbackStart {
            fallback: Fallback::CompareCodes,
            sponsor_id: KeyId([1; 32]),
            sas_commitment: Some([2; 32]),
        }
        .encode_body(),
        FallbackStart {
            fallback: Fallback::LabelCode,
            sponsor_id: KeyId([1; 32]),
            sas_commitment: None,
        }
        .encode_body(),
        SasNonce { nonce: [3; 16] }.encode_body(),
        SasReveal { nonce: [4; 16] }.encode_body(),
        OwnerDecision { confirmed: true }.encode_body(),
        PakeShare { share: [5; 65] }.encode_body(),
        PakeReply {
            share: [6; 65],
            confirm: [7; 32],
        }
        .encode_body(),
        FallbackHandover {
            confirm: Some([8; 32]),
            credential: credential(),
        }
        .encode_body(),
        FallbackHandover {
            confirm: None,
            credential: credential(),
        }
        .encode_body(),
        PeerCredentialRequest {
            joiner_id: KeyId([9; 32]),
            nonce: Nonce([10; 16]),
            seen_binding: Some(ChannelBinding([11; 32])),
            fallbacks: Fallback::ALL.to_vec(),
        }
        .encode_body(),
    ]
}

/// A CBOR item such as a field might hold: integers around the bounds the decoders check, byte
/// strings of the lengths they check and around them, null, text, booleans, negative numbers,
/// and small arrays of those.
fn item() -> impl Strategy<Value = Value> {
    let lengths = prop::sample::select(vec![
        0usize, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 66,
    ]);
    let leaf = prop_oneof![
        (0u64..8).prop_map(|n| Value::Integer(n.into())),
        any::<u64>().prop_map(|n| Value::Integer(n.into())),
        (-3i64..0).prop_map(|n| Value::Integer(n.into())),
        (lengths, any::<u8>()).prop_map(|(n, b)| Value::Bytes(vec![b; n])),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        "[ -~]{0,10}".prop_map(Value::Text),
    ];
    leaf.prop_recursive(2, 12, 5, |inner| {
        prop::collection::vec(inner, 0..6).prop_map(Value::Array)
    })
}

/// A passphrase a handover may carry: 8 to 63 printable bytes, or 64 hex digits.
fn passphrase() -> impl Strategy<Value = Passphrase> {
    prop_oneof!["[ -~]{8,63}", "[0-9a-fA-F]{64}"]
        .prop_map(|s| Passphrase::new(s.as_bytes()).unwrap())
}

fn fallback() -> impl Strategy<Value = Fallback> {
    prop::sample::select(Fallback::ALL.to_vec())
}

fn round_trips<M: Message + PartialEq + std::fmt::Debug>(m: &M) {
    let bytes = m.encode_body();
    assert_eq!(&M::decode_body(&bytes).unwrap(), m);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fallback_decoders_never_panic_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        decode_all(&bytes);
    }

    #[test]
    fn fallback_decoders_never_panic_on_mutated_or_truncated_messages(
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bodies = valid_bodies();
        let mut bytes = which.get(&bodies).clone();
        let i = at.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] = byte;
        }
        decode_all(&bytes);
    }

    /// Arrays of the lengths the bodies have (1 to 4 fields, and one more or less), holding
    /// anything: every field check runs on every kind of item.
    #[test]
    fn fallback_decoders_never_panic_on_arrays_of_arbitrary_fields(
        fields in prop::collection::vec(item(), 0..6),
    ) {
        decode_all(&cbor::encode(&Value::Array(fields)));
    }

    /// The request's `fallbacks`: at most four distinct known fallbacks (1 to 4), in the order
    /// given; anything else is refused, and the rest of the request cannot make it panic.
    #[test]
    fn request_fallbacks_decode_only_as_at_most_four_distinct_known_values(
        listed in prop::collection::vec(0u64..7, 0..7),
        seen in any::<bool>(),
    ) {
        let request = PeerCredentialRequest {
            joiner_id: KeyId([9; 32]),
            nonce: Nonce([10; 16]),
            seen_binding: seen.then_some(ChannelBinding([11; 32])),
            fallbacks: Vec::new(),
        };
        let Value::Array(mut fields) = cbor::decode(&request.encode_body()).unwrap() else {
            panic!("a request is an array")
        };
        fields[3] = Value::Array(listed.iter().map(|n| Value::Integer((*n).into())).collect());
        let bytes = cbor::encode(&Value::Array(fields));
        let mut distinct = listed.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let valid = listed.len() <= 4
            && distinct.len() == listed.len()
            && listed.iter().all(|n| (1..=4).contains(n));
        match PeerCredentialRequest::decode_body(&bytes) {
            Ok(decoded) => {
                prop_assert!(valid, "{listed:?} accepted");
                let numbers: Vec<u64> = decoded.fallbacks.iter().map(|f| f.to_u8().into()).collect();
                prop_assert_eq!(numbers, listed);
                prop_assert_eq!(decoded.encode_body(), bytes);
            }
            Err(_) => prop_assert!(!valid, "{listed:?} refused"),
        }
    }

    #[test]
    fn every_valid_fallback_message_round_trips(
        f in fallback(),
        id in any::<[u8; 32]>(),
        commitment in any::<[u8; 32]>(),
        nonce in any::<[u8; SAS_NONCE_LEN]>(),
        confirmed in any::<bool>(),
        share in prop::collection::vec(any::<u8>(), PAKE_SHARE_LEN),
        confirm in any::<[u8; PAKE_CONFIRM_LEN]>(),
        with_confirm in any::<bool>(),
        ssid in prop::collection::vec(any::<u8>(), 1..=32),
        security in 1u8..=3,
        passphrase in passphrase(),
        declared in prop::sample::subsequence(Fallback::ALL.to_vec(), 0..=4).prop_shuffle(),
    ) {
        let share: [u8; PAKE_SHARE_LEN] = share.try_into().unwrap();
        round_trips(&FallbackStart {
            fallback: f,
            sponsor_id: KeyId(id),
            sas_commitment: (f == Fallback::CompareCodes).then_some(commitment),
        });
        round_trips(&SasNonce { nonce });
        round_trips(&SasReveal { nonce });
        round_trips(&OwnerDecision { confirmed });
        round_trips(&PakeShare { share });
        round_trips(&PakeReply { share, confirm });
        round_trips(&FallbackHandover {
            confirm: with_confirm.then_some(confirm),
            credential: HomeCredential { ssid, security, passphrase },
        });
        round_trips(&PeerCredentialRequest {
            joiner_id: KeyId(id),
            nonce: Nonce(nonce),
            seen_binding: with_confirm.then_some(ChannelBinding(commitment)),
            fallbacks: declared,
        });
    }
}

#[test]
fn the_mutated_messages_start_from_bodies_that_decode() {
    // The strategies above only mean something if the valid bodies decode: each is accepted
    // by at least its own decoder.
    for body in valid_bodies() {
        assert!(decode_all(&body) >= 1, "{body:02x?} decodes as nothing");
    }
}
