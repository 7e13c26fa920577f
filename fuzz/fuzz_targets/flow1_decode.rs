//! Every flow-1 body decoder on arbitrary bytes (the first byte picks the decoder): never
//! panics, and whatever decodes re-encodes to bytes that decode to the same value, stably.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_core::Message;
use zerotouch_core::flow1::{
    CredentialRequest, CredentialResponse, DeviceReport, Hello, OutcomeAck, OutcomeReport,
    RevocationQuery, RevocationVerdict, ServerProof,
};

fn round_trip<M: Message + PartialEq + core::fmt::Debug>(data: &[u8]) {
    let Ok(first) = M::decode_body(data) else {
        return;
    };
    let body = first.encode_body();
    match M::decode_body(&body) {
        Ok(second) => {
            assert_eq!(first, second, "decode(encode(m)) != m");
            assert_eq!(body, second.encode_body(), "encoding not stable");
        }
        Err(e) => panic!("re-encoded body does not decode: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((which, body)) = data.split_first() else {
        return;
    };
    match which % 9 {
        0 => round_trip::<Hello>(body),
        1 => round_trip::<ServerProof>(body),
        2 => round_trip::<CredentialRequest>(body),
        3 => round_trip::<CredentialResponse>(body),
        4 => round_trip::<OutcomeReport>(body),
        5 => round_trip::<OutcomeAck>(body),
        6 => round_trip::<RevocationQuery>(body),
        7 => round_trip::<RevocationVerdict>(body),
        _ => {
            if let Ok(first) = DeviceReport::decode(body) {
                let bytes = first.encode();
                match DeviceReport::decode(&bytes) {
                    Ok(second) => assert_eq!(first, second, "decode(encode(r)) != r"),
                    Err(e) => panic!("re-encoded report does not decode: {e:?}"),
                }
            }
        }
    }
});
