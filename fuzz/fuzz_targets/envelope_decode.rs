//! `Envelope::decode` on arbitrary bytes: never panics, and decode → encode → decode is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_core::{Body, Envelope, MAX_MESSAGE_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(first) = Envelope::decode(data) else {
        return;
    };
    // What was accepted respects the tag's size limit (and so the overall one).
    assert!(data.len() <= first.header.tag.max_len() && data.len() <= MAX_MESSAGE_LEN);
    let wire1 = first.encode();
    // The re-encoding is shortest-form CBOR: never longer than what was accepted, so it stays
    // within the limit too.
    assert!(
        wire1.len() <= data.len(),
        "re-encoding grew from {} to {} bytes",
        data.len(),
        wire1.len()
    );
    let second = match Envelope::decode(&wire1) {
        Ok(e) => e,
        Err(e) => panic!("re-encoded envelope does not decode: {e:?}\nwire: {wire1:02x?}"),
    };
    assert_eq!(first, second, "decode(encode(e)) != e");
    let wire2 = second.encode();
    assert_eq!(wire1, wire2, "encoding not stable");
    // The body kind follows the tag.
    assert_eq!(
        matches!(first.body, Body::Signed(_)),
        first.header.tag.is_signed()
    );
});
