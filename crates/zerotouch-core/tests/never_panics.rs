//! Property tests: decoders never panic on any input, and encodings round-trip.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
use common::*;
use proptest::prelude::*;
use zerotouch_core::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn envelope_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn envelope_decode_of_mutated_valid_messages_never_panics(
        idx in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()
    ) {
        let th = TranscriptInputs::fixed().hash();
        let signer = key(SignatureAlgorithm::Ed25519, "k");
        let mut wire = sign_message(header(MessageTag::ServerProof), KeyRole::SetupSigning, &th, vec![7; 20], &signer, &PROVIDER)
            .unwrap()
            .encode();
        let i = idx.index(wire.len());
        wire[i] = byte;
        let n = cut.index(wire.len() + 1);
        if let Ok(env) = Envelope::decode(&wire[..n]) {
            // Decoded envelopes re-encode and decode to the same thing.
            prop_assert_eq!(Envelope::decode(&env.encode()).unwrap(), env.clone());
            if let Body::Signed(s) = &env.body {
                let _ = s.verify(&env.header, KeyRole::SetupSigning, &th, signer.public_key(), &PROVIDER);
            }
        }
    }

    #[test]
    fn error_message_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = ErrorMessage::decode_body(&bytes);
    }

    #[test]
    fn barcode_decode_never_panics(text in "\\PC{0,80}") {
        let _ = BarcodePayload::decode(&text);
    }

    #[test]
    fn barcode_decode_of_near_valid_text_never_panics(text in "ZT1/[A-Z2-7]{0,60}/[0-9]{0,11}/[0-9A-Z]{0,26}/[0-9]{0,14}/[0-9A-Z/]{0,3}") {
        let _ = BarcodePayload::decode(&text);
    }

    #[test]
    fn certificate_and_spki_decode_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = DeviceCertificate::from_der(&bytes);
        let _ = PublicKey::from_spki_der(&bytes);
    }

    #[test]
    fn plain_envelope_round_trips(
        tag_idx in any::<prop::sample::Index>(),
        sid in any::<[u8; 16]>(),
        seq in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let plain: Vec<MessageTag> = MessageTag::ALL.into_iter().filter(|t| !t.is_signed()).collect();
        let tag = plain[tag_idx.index(plain.len())];
        let h = Header { version: ProtocolVersion::V1, flow: tag.flow().unwrap_or(Flow::PeerHandoff), tag, session_id: SessionId(sid), seq };
        let env = Envelope::plain(h, payload).unwrap();
        let wire = env.encode();
        if wire.len() <= tag.max_len() {
            prop_assert_eq!(Envelope::decode(&wire).unwrap(), env);
        } else {
            let too_long = matches!(Envelope::decode(&wire), Err(DecodeError::TooLong { .. }));
            prop_assert!(too_long);
        }
    }

    #[test]
    fn barcode_round_trips(
        seed in any::<[u8; 32]>(), fp_len in 16usize..=32, device_type in any::<u32>(),
        product in "[0-9A-Z]{1,24}", pin in proptest::option::of("[0-9]{6,12}"),
    ) {
        let id = KeyId(PROVIDER.sha256(&[&seed]));
        let p = BarcodePayload {
            fingerprint: KeyFingerprint::of(&id, fp_len).unwrap(),
            device_type,
            product_number: product,
            pin: pin.map(|p| Pin::new(&p).unwrap()),
        };
        prop_assert_eq!(BarcodePayload::decode(&p.encode()).unwrap(), p);
    }
}
