//! The registrar and operator bodies come from outside: decoding never panics, and what
//! encodes decodes to itself. (Device bodies are the core's messages, fuzzed there.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use proptest::prelude::*;
use zeroize::Zeroizing;
use zerotouch_http::api::{from_cbor, to_cbor};
use zerotouch_http::{AuditRecord, RegistrationRequest, RegistrationResponse};

proptest! {
    #[test]
    fn registration_request_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = from_cbor::<RegistrationRequest>(&bytes);
        let _ = from_cbor::<RegistrationResponse>(&bytes);
        let _ = from_cbor::<Vec<AuditRecord>>(&bytes);
    }

    #[test]
    fn registration_request_round_trips(
        label in "[A-Z0-9:]{0,80}",
        account in any::<i64>(),
        pin in proptest::option::of("[0-9]{4,12}"),
        owner in proptest::option::of(any::<i64>()),
    ) {
        let request = RegistrationRequest {
            label,
            account,
            pin: pin.map(Zeroizing::new),
            owner_consent: owner,
        };
        let decoded: RegistrationRequest = from_cbor(&to_cbor(&request).unwrap()).unwrap();
        prop_assert_eq!(decoded, request);
    }
}

#[test]
fn registration_request_debug_redacts_the_pin() {
    let request = RegistrationRequest {
        label: "ZT1:X".into(),
        account: 1,
        pin: Some(Zeroizing::new("482915".into())),
        owner_consent: None,
    };
    let shown = format!("{request:?}");
    assert!(
        !shown.contains("482915") && shown.contains("redacted"),
        "{shown}"
    );
}
