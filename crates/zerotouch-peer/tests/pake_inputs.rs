//! What the owner types and what the factory stores for the PAKE fallbacks:
//! `PairingCode::parse` never panics on any string and accepts exactly the strings that are
//! eight ASCII digits once spaces and dashes are taken out; `LabelRecord::from_bytes` never
//! panics on any bytes and accepts only a 97-byte record (a non-zero scalar below the group
//! order, then a P-256 point), which it keeps byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::LazyLock;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::KeyId;
use zerotouch_peer::pake::LABEL_RECORD_LEN;
use zerotouch_peer::{LabelRecord, PairingCode, PeerError};

/// The rule `parse` follows, written out: the string without its spaces and dashes is eight
/// ASCII digits.
fn should_parse(typed: &str) -> Option<Vec<u8>> {
    let kept: Vec<u8> = typed.bytes().filter(|b| *b != b' ' && *b != b'-').collect();
    let digits = kept.len() == 8 && kept.iter().all(u8::is_ascii_digit);
    // A byte of a multi-byte character is never a space, a dash or a digit.
    digits.then_some(kept)
}

fn check_parse(typed: &str) -> Result<(), TestCaseError> {
    match (PairingCode::parse(typed), should_parse(typed)) {
        (Ok(code), Some(digits)) => prop_assert_eq!(&code.digits()[..], &digits[..]),
        (Err(e), None) => prop_assert!(matches!(e, PeerError::InvalidCode), "{e:?}"),
        (Ok(_), None) => prop_assert!(false, "{typed:?} accepted"),
        (Err(e), Some(_)) => prop_assert!(false, "{typed:?} refused: {e:?}"),
    }
    Ok(())
}

/// A valid record: the label record of one code for one joiner (10,000 PBKDF2 iterations, so
/// made once).
fn valid_record() -> [u8; LABEL_RECORD_LEN] {
    static RECORD: LazyLock<[u8; LABEL_RECORD_LEN]> = LazyLock::new(|| {
        let code = PairingCode::parse("1234 5678").unwrap();
        *LabelRecord::from_code(&code, &KeyId([7; 32]))
            .unwrap()
            .to_bytes()
    });
    *RECORD
}

fn check_record(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(record) = LabelRecord::from_bytes(bytes) {
        prop_assert_eq!(bytes.len(), LABEL_RECORD_LEN);
        prop_assert_eq!(&record.to_bytes()[..], bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn pairing_code_parse_never_panics_on_any_string(typed in any::<String>()) {
        check_parse(&typed)?;
    }

    /// Strings made mostly of what a code may contain (digits, spaces, dashes) with a few
    /// things it may not (letters, tabs, other dashes and digits, non-ASCII), so both answers
    /// come up often.
    #[test]
    fn pairing_code_parse_accepts_exactly_eight_digits_after_spaces_and_dashes(
        typed in "[0-9 \\-]{0,14}[0-9 \\-a\t–٣０]{0,2}[0-9 \\-]{0,4}",
    ) {
        check_parse(&typed)?;
    }

    #[test]
    fn a_generated_code_parses_back_as_shown(seed in any::<u64>()) {
        let code = PairingCode::generate(&mut ChaCha20Rng::seed_from_u64(seed));
        prop_assert!(code.digits().iter().all(u8::is_ascii_digit));
        prop_assert_eq!(PairingCode::parse(&code.grouped()).unwrap(), code);
    }

    #[test]
    fn label_record_from_bytes_never_panics_on_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        check_record(&bytes)?;
    }

    /// 97-byte inputs: arbitrary ones, and a valid record with one byte changed (a scalar at
    /// or above the group order, a point off the curve, another SEC1 form).
    #[test]
    fn label_record_from_bytes_never_panics_on_records_of_the_right_length(
        bytes in prop::collection::vec(any::<u8>(), LABEL_RECORD_LEN),
        at in 0..LABEL_RECORD_LEN,
        byte in any::<u8>(),
    ) {
        check_record(&bytes)?;
        let mut changed = valid_record();
        changed[at] = byte;
        check_record(&changed)?;
    }
}

#[test]
fn label_record_from_bytes_keeps_a_valid_record_and_refuses_other_lengths() {
    let valid = valid_record();
    assert_eq!(LabelRecord::from_bytes(&valid).unwrap().to_bytes(), &valid);
    for len in [0, LABEL_RECORD_LEN - 1, LABEL_RECORD_LEN + 1] {
        let mut bytes = valid.to_vec();
        bytes.resize(len, 0);
        assert!(LabelRecord::from_bytes(&bytes).is_err(), "{len} bytes");
    }
    // A zero scalar, and the order of P-256 itself, are refused as w0.
    let order =
        hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551").unwrap();
    for w0 in [vec![0; 32], order] {
        let mut bytes = valid;
        bytes[..32].copy_from_slice(&w0);
        assert!(LabelRecord::from_bytes(&bytes).is_err());
    }
}
