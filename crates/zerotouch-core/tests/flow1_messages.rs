//! Flow-1 message bodies: each round-trips, refuses what is out of range, and never panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use proptest::prelude::*;
use zerotouch_core::flow1::{
    CredentialEntry, CredentialRequest, CredentialResponse, DeviceIdentityRef, DeviceReport,
    EntryStatus, Hello, JoinOutcome, OutcomeAck, OutcomeReport, ReportedNetwork, RevocationQuery,
    RevocationStatus, RevocationVerdict, SealedReport, ServerProof,
};
use zerotouch_core::{
    CipherSuite, DecodeError, KeyId, Message, Nonce, Pin, ProtocolVersion, SessionId,
};

fn hello() -> Hello {
    Hello {
        versions: vec![ProtocolVersion::V1],
        suites: vec![
            CipherSuite::P256_SHA256_CHACHA20POLY1305,
            CipherSuite::X25519_SHA256_CHACHA20POLY1305,
        ],
        identity: DeviceIdentityRef::PublicKey(vec![0x30; 91]),
        trusted_keys: vec![KeyId([1; 32]), KeyId([2; 32])],
        device_nonce: Nonce([3; 16]),
    }
}

fn proof() -> ServerProof {
    ServerProof {
        version: ProtocolVersion::V1,
        suite: CipherSuite::P256_SHA256_CHACHA20POLY1305,
        server_nonce: Nonce([4; 16]),
        sealing_key: vec![4; 65],
        pin_required: true,
        expires_in_s: 120,
    }
}

fn request() -> CredentialRequest {
    CredentialRequest {
        session_key: vec![5; 65],
        report: SealedReport {
            encapsulated_key: vec![6; 65],
            ciphertext: vec![7; 200],
        },
    }
}

fn report() -> DeviceReport {
    DeviceReport {
        pin: Some(Pin::new("482915").unwrap()),
        networks: vec![
            ReportedNetwork {
                ssid: b"home-5g".to_vec(),
                signal_loss_db: 48,
                band: 2,
                channel: 36,
                security: 2,
            },
            ReportedNetwork {
                ssid: b"home".to_vec(),
                signal_loss_db: 71,
                band: 1,
                channel: 6,
                security: 1,
            },
        ],
        radio_bands: 3,
        radio_security: 3,
    }
}

fn response() -> CredentialResponse {
    CredentialResponse {
        encapsulated_key: vec![8; 65],
        entries: vec![
            CredentialEntry {
                ssid: b"home-5g".to_vec(),
                security: 2,
                status: EntryStatus::Sealed,
                ciphertext: vec![9; 40],
            },
            CredentialEntry {
                ssid: b"home-6g".to_vec(),
                security: 2,
                status: EntryStatus::UnsupportedByRadio,
                ciphertext: vec![],
            },
        ],
    }
}

fn outcome() -> OutcomeReport {
    OutcomeReport {
        setup_session: SessionId([1; 16]),
        ssid: b"home-5g".to_vec(),
        outcome: JoinOutcome::Joined,
        device_nonce: Nonce([2; 16]),
    }
}

fn verdict() -> RevocationVerdict {
    RevocationVerdict {
        key_id: KeyId([1; 32]),
        device_nonce: Nonce([2; 16]),
        status: RevocationStatus::Revoked,
        replacement: Some(KeyId([3; 32])),
    }
}

fn round_trip<M: Message + PartialEq + std::fmt::Debug>(m: &M) {
    let bytes = m.encode_body();
    assert_eq!(&M::decode_body(&bytes).unwrap(), m);
    // Trailing bytes and truncation are refused.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(M::decode_body(&longer).is_err());
    assert!(M::decode_body(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn every_flow1_message_round_trips() {
    round_trip(&hello());
    round_trip(&proof());
    round_trip(&request());
    round_trip(&response());
    round_trip(&outcome());
    round_trip(&OutcomeAck {
        device_nonce: Nonce([5; 16]),
    });
    round_trip(&RevocationQuery {
        key_id: KeyId([1; 32]),
        device_nonce: Nonce([2; 16]),
    });
    round_trip(&verdict());
    let r = report();
    assert_eq!(DeviceReport::decode(&r.encode()).unwrap(), r);
}

#[test]
fn hello_without_trusted_keys_or_suites_is_refused() {
    let mut h = hello();
    h.trusted_keys.clear();
    assert!(matches!(
        Hello::decode_body(&h.encode_body()),
        Err(DecodeError::OutOfRange {
            field: "trusted_keys"
        })
    ));
    let mut h = hello();
    h.suites.clear();
    assert!(Hello::decode_body(&h.encode_body()).is_err());
    let mut h = hello();
    h.trusted_keys = vec![KeyId([0; 32]); 17];
    assert!(Hello::decode_body(&h.encode_body()).is_err());
}

#[test]
fn sealed_entry_without_ciphertext_and_unsealed_entry_with_one_are_refused() {
    let mut r = response();
    r.entries[0].ciphertext.clear();
    assert!(matches!(
        CredentialResponse::decode_body(&r.encode_body()),
        Err(DecodeError::OutOfRange {
            field: "ciphertext"
        })
    ));
    let mut r = response();
    r.entries[1].ciphertext = vec![1; 20];
    assert!(CredentialResponse::decode_body(&r.encode_body()).is_err());
}

#[test]
fn response_with_sealed_entries_needs_an_encapsulated_key_and_only_then() {
    let mut r = response();
    r.encapsulated_key.clear();
    assert!(CredentialResponse::decode_body(&r.encode_body()).is_err());
    let mut r = response();
    r.entries.remove(0);
    assert!(
        CredentialResponse::decode_body(&r.encode_body()).is_err(),
        "key without sealed entries"
    );
    r.encapsulated_key.clear();
    assert!(CredentialResponse::decode_body(&r.encode_body()).is_ok());
}

#[test]
fn good_verdict_naming_a_replacement_is_refused() {
    let mut v = verdict();
    v.status = RevocationStatus::Good;
    assert!(RevocationVerdict::decode_body(&v.encode_body()).is_err());
    v.replacement = None;
    assert!(RevocationVerdict::decode_body(&v.encode_body()).is_ok());
}

#[test]
fn report_with_an_invalid_pin_or_too_many_networks_is_refused() {
    let mut r = report();
    r.networks = vec![r.networks[0].clone(); 41];
    assert!(DeviceReport::decode(&r.encode()).is_err());
    // A PIN field that is not 6-12 digits: build the bytes by hand from a valid report.
    let bytes = report().encode();
    let mut bad = bytes.clone();
    let pos = bytes.windows(6).position(|w| w == b"482915").unwrap();
    bad[pos] = b'x';
    assert!(DeviceReport::decode(&bad).is_err());
}

#[test]
fn report_debug_does_not_show_the_pin() {
    assert!(!format!("{:?}", report()).contains("482915"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn flow1_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Hello::decode_body(&bytes);
        let _ = ServerProof::decode_body(&bytes);
        let _ = CredentialRequest::decode_body(&bytes);
        let _ = CredentialResponse::decode_body(&bytes);
        let _ = OutcomeReport::decode_body(&bytes);
        let _ = OutcomeAck::decode_body(&bytes);
        let _ = RevocationQuery::decode_body(&bytes);
        let _ = RevocationVerdict::decode_body(&bytes);
        let _ = DeviceReport::decode(&bytes);
    }

    #[test]
    fn flow1_decoders_never_panic_on_mutated_messages(idx in 0usize..4000, byte in any::<u8>(), which in 0usize..5) {
        let mut bytes = match which {
            0 => hello().encode_body(),
            1 => proof().encode_body(),
            2 => response().encode_body(),
            3 => report().encode().to_vec(),
            _ => verdict().encode_body(),
        };
        let i = idx % bytes.len();
        bytes[i] = byte;
        let _ = Hello::decode_body(&bytes);
        let _ = ServerProof::decode_body(&bytes);
        let _ = CredentialResponse::decode_body(&bytes);
        let _ = DeviceReport::decode(&bytes);
        let _ = RevocationVerdict::decode_body(&bytes);
    }
}
