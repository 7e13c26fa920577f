//! Every flow-2 body decoder on arbitrary bytes, the fallbacks' included (the first byte picks
//! the decoder, in the order of `zerotouch_fuzz::peer::flow2_tags`): never panics, and
//! whatever decodes re-encodes to bytes that decode to the same value, stably.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use zerotouch_core::flow2::{
    ChallengeData, ChallengeResponse, CredentialHandover, FallbackHandover, FallbackStart,
    OwnerDecision, PakeReply, PakeShare, PeerCredentialRequest, SasNonce, SasReveal,
    VerificationData, VerificationRequest,
};
use zerotouch_core::{Message, MessageTag};
use zerotouch_fuzz::check_round_trip;
use zerotouch_fuzz::peer::flow2_tags;

fn round_trip<M: Message + PartialEq + core::fmt::Debug>(data: &[u8]) {
    // Decoding is canonical: a body that decodes is the one byte form of its value.
    check_round_trip::<M>(data, true);
}

fuzz_target!(|data: &[u8]| {
    static TAGS: LazyLock<Vec<MessageTag>> = LazyLock::new(flow2_tags);
    let Some((which, body)) = data.split_first() else {
        return;
    };
    let tag = TAGS[usize::from(*which) % TAGS.len()];
    match tag {
        MessageTag::PeerCredentialRequest => round_trip::<PeerCredentialRequest>(body),
        MessageTag::VerificationRequest => round_trip::<VerificationRequest>(body),
        MessageTag::VerificationData => round_trip::<VerificationData>(body),
        MessageTag::ChallengeData => round_trip::<ChallengeData>(body),
        MessageTag::ChallengeResponse => round_trip::<ChallengeResponse>(body),
        MessageTag::CredentialHandover => round_trip::<CredentialHandover>(body),
        MessageTag::FallbackStart => round_trip::<FallbackStart>(body),
        MessageTag::SasNonce => round_trip::<SasNonce>(body),
        MessageTag::SasReveal => round_trip::<SasReveal>(body),
        MessageTag::OwnerDecision => round_trip::<OwnerDecision>(body),
        MessageTag::PakeShare => round_trip::<PakeShare>(body),
        MessageTag::PakeReply => round_trip::<PakeReply>(body),
        MessageTag::FallbackHandover => round_trip::<FallbackHandover>(body),
        // A flow-2 tag added to the core needs its decoder here.
        other => panic!("flow2_decode has no decoder for {other:?}"),
    }
});
