//! `BarcodePayload::decode` on arbitrary UTF-8: never panics, decode → encode → decode is
//! stable, and a payload has one spelling (the encoding is the upper-cased input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_core::BarcodePayload;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(first) = BarcodePayload::decode(text) else {
        return;
    };
    let text1 = first.encode();
    let second = match BarcodePayload::decode(&text1) {
        Ok(p) => p,
        Err(e) => panic!("re-encoded barcode does not decode: {e:?}: {text1:?}"),
    };
    assert_eq!(first, second, "decode(encode(p)) != p");
    assert_eq!(text1, second.encode(), "encoding not stable");
    assert_eq!(
        text1,
        text.to_ascii_uppercase(),
        "accepted a second spelling"
    );
    assert!(first.fingerprint.as_bytes().len() >= 16);
});
