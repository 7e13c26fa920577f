//! Every flow-2 body decoder on arbitrary bytes (the first byte picks the decoder, in the order
//! of `zerotouch_fuzz::peer::FLOW2_TAGS`): never panics, and whatever decodes re-encodes to
//! bytes that decode to the same value, stably.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_core::Message;
use zerotouch_core::flow2::{
    ChallengeData, ChallengeResponse, CredentialHandover, PeerCredentialRequest, VerificationData,
    VerificationRequest,
};
use zerotouch_fuzz::check_round_trip;

fn round_trip<M: Message + PartialEq + core::fmt::Debug>(data: &[u8]) {
    // Decoding is canonical: a body that decodes is the one byte form of its value.
    check_round_trip::<M>(data, true);
}

fuzz_target!(|data: &[u8]| {
    let Some((which, body)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => round_trip::<PeerCredentialRequest>(body),
        1 => round_trip::<VerificationRequest>(body),
        2 => round_trip::<VerificationData>(body),
        3 => round_trip::<ChallengeData>(body),
        4 => round_trip::<ChallengeResponse>(body),
        _ => round_trip::<CredentialHandover>(body),
    }
});
