//! Barcode payload rules: QR-alphanumeric text, typed-input friendly, every typo caught.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
use common::*;
use zerotouch_core::*;

fn payload(pin: Option<&str>) -> BarcodePayload {
    let id = key(SignatureAlgorithm::EcdsaP256Sha256, "device").key_id();
    BarcodePayload {
        fingerprint: KeyFingerprint::of(&id, 16).unwrap(),
        device_type: 7,
        product_number: "B07XJ8C8F5".into(),
        pin: pin.map(|p| Pin::new(p).unwrap()),
    }
}

const QR_ALPHANUMERIC: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const CHECK_SYMBOLS: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";

#[test]
fn payload_round_trips_with_and_without_pin() {
    for pin in [None, Some("482915"), Some("123456789012")] {
        let p = payload(pin);
        let text = p.encode();
        assert_eq!(BarcodePayload::decode(&text).unwrap(), p, "{text}");
    }
}

#[test]
fn payload_uses_only_qr_alphanumeric_characters() {
    let text = payload(Some("482915")).encode();
    assert!(text.chars().all(|c| QR_ALPHANUMERIC.contains(c)), "{text}");
    // 128-bit fingerprint, 6-digit PIN: short enough to type.
    assert!(text.len() <= 56, "{} characters", text.len());
}

#[test]
fn fingerprint_matches_the_device_key_id() {
    let id = key(SignatureAlgorithm::EcdsaP256Sha256, "device").key_id();
    let other = key(SignatureAlgorithm::EcdsaP256Sha256, "other").key_id();
    let p = BarcodePayload::decode(&payload(None).encode()).unwrap();
    assert!(p.fingerprint.matches(&id));
    assert!(!p.fingerprint.matches(&other));
    // Full 256-bit fingerprints work too.
    let full = BarcodePayload {
        fingerprint: KeyFingerprint::of(&id, 32).unwrap(),
        ..payload(None)
    };
    assert_eq!(BarcodePayload::decode(&full.encode()).unwrap(), full);
}

#[test]
fn fingerprint_shorter_than_128_bits_is_refused() {
    let id = key(SignatureAlgorithm::Ed25519, "d").key_id();
    assert!(KeyFingerprint::of(&id, 15).is_err());
    assert!(KeyFingerprint::of(&id, 33).is_err());
    // A 15-byte fingerprint on the wire with a valid check character is still refused.
    let text = payload(None).encode();
    let fields: Vec<&str> = text.split('/').collect();
    let short = format!("ZT1/{}/{}/{}/", &fields[1][..24], fields[2], fields[3]);
    let with_check = CHECK_SYMBOLS
        .chars()
        .map(|c| format!("{short}/{c}"))
        .find(|t| !matches!(BarcodePayload::decode(t), Err(BarcodeError::CheckMismatch)))
        .unwrap();
    assert_eq!(
        BarcodePayload::decode(&with_check),
        Err(BarcodeError::InvalidLength("fingerprint"))
    );
}

#[test]
fn typed_lower_case_is_accepted() {
    let p = payload(Some("482915"));
    assert_eq!(
        BarcodePayload::decode(&p.encode().to_ascii_lowercase()).unwrap(),
        p
    );
}

#[test]
fn every_single_mistyped_character_is_detected() {
    let text = payload(Some("482915")).encode();
    let alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (i, orig) in text.char_indices() {
        for sub in alphabet.chars().chain(['/', '*']).filter(|c| *c != orig) {
            let mut typo = text.clone();
            typo.replace_range(i..i + 1, &sub.to_string());
            assert!(BarcodePayload::decode(&typo).is_err(), "{typo} accepted");
        }
    }
}

#[test]
fn every_swap_of_adjacent_characters_is_detected() {
    let text = payload(Some("482915")).encode();
    let b = text.as_bytes();
    for i in 0..b.len() - 1 {
        if b[i] == b[i + 1] {
            continue;
        }
        let mut swapped = b.to_vec();
        swapped.swap(i, i + 1);
        let swapped = String::from_utf8(swapped).unwrap();
        assert!(
            BarcodePayload::decode(&swapped).is_err(),
            "{swapped} accepted"
        );
    }
}

#[test]
fn moved_separator_is_detected() {
    // Moving a `/` by one place turns a valid payload into another well-formed one (a digit
    // changes fields); the check character must catch it.
    let text = payload(Some("482915")).encode();
    for (i, c) in text.char_indices().filter(|(_, c)| *c == '/') {
        for j in [i.wrapping_sub(1), i + 1] {
            if j >= text.len() || text.as_bytes()[j] == b'/' {
                continue;
            }
            let mut b = text.as_bytes().to_vec();
            b.swap(i, j);
            let moved = String::from_utf8(b).unwrap();
            assert!(
                BarcodePayload::decode(&moved).is_err(),
                "{moved} ({c} moved) accepted"
            );
        }
    }
}

#[test]
fn malformed_payloads_get_typed_errors() {
    assert_eq!(
        BarcodePayload::decode("ZT2/AAAA/1/X//0"),
        Err(BarcodeError::UnknownVersion)
    );
    assert_eq!(
        BarcodePayload::decode(""),
        Err(BarcodeError::UnknownVersion)
    );
    assert!(matches!(
        BarcodePayload::decode("ZT1/A/B"),
        Err(BarcodeError::FieldCount { found: 3, .. })
    ));
    let text = payload(None).encode();
    assert!(BarcodePayload::decode(&format!("{text}X")).is_err());
}

#[test]
fn pin_in_payload_must_be_6_to_12_digits() {
    for bad in ["12345", "1234567890123"] {
        // Build the text by hand with a correct check character so only the PIN is wrong.
        let base = payload(None).encode();
        let data = &base[..base.len() - 2];
        let data = format!("{data}{bad}");
        let ok = CHECK_SYMBOLS
            .chars()
            .map(|c| format!("{data}/{c}"))
            .find(|t| !matches!(BarcodePayload::decode(t), Err(BarcodeError::CheckMismatch)))
            .unwrap();
        assert_eq!(
            BarcodePayload::decode(&ok),
            Err(BarcodeError::InvalidLength("pin")),
            "{ok}"
        );
    }
}

#[test]
fn overlong_payload_is_refused_before_parsing() {
    let long = format!("{}{}", payload(None).encode(), "0".repeat(MAX_PAYLOAD_LEN));
    assert_eq!(
        BarcodePayload::decode(&long),
        Err(BarcodeError::InvalidLength("payload"))
    );
    // The longest valid payload fits.
    let id = key(SignatureAlgorithm::Ed25519, "d").key_id();
    let longest = BarcodePayload {
        fingerprint: KeyFingerprint::of(&id, 32).unwrap(),
        device_type: u32::MAX,
        product_number: "Z".repeat(MAX_PRODUCT_NUMBER_LEN),
        pin: Some(Pin::new("123456789012").unwrap()),
    };
    assert_eq!(longest.encode().len(), MAX_PAYLOAD_LEN);
    assert_eq!(BarcodePayload::decode(&longest.encode()).unwrap(), longest);
}

#[test]
fn pin_is_redacted_from_debug() {
    let p = payload(Some("482915"));
    let shown = format!("{p:?}");
    assert!(!shown.contains("482915"), "{shown}");
    assert!(shown.contains("redacted"));
}
