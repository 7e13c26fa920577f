//! Every flow-1 body decoder on arbitrary bytes (the first byte picks the decoder): never
//! panics, and whatever decodes re-encodes to bytes that decode to the same value, stably.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_core::Message;
use zerotouch_core::flow1::{
    CredentialRequest, CredentialResponse, DeviceReport, Hello, OutcomeAck, OutcomeReport,
    RevocationQuery, RevocationVerdict, ServerProof,
};
use zerotouch_fuzz::check_round_trip;

fn round_trip<M: Message + PartialEq + core::fmt::Debug>(data: &[u8]) {
    check_round_trip::<M>(data, false);
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
