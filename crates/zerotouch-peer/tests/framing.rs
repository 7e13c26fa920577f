//! Framing: frames cut at every byte boundary reassemble, bad lengths are refused at the
//! header, the buffer stays bounded, and no input makes the decoder panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::num::NonZeroU16;

use proptest::prelude::*;
use zerotouch_peer::framing::{
    FrameDecoder, FramingError, HEADER_LEN, MAX_FRAME_LEN, encode_frame,
};

fn stream(bodies: &[&[u8]]) -> Vec<u8> {
    bodies
        .iter()
        .flat_map(|b| encode_frame(b).unwrap())
        .collect()
}

fn drain(decoder: &mut FrameDecoder, out: &mut Vec<Vec<u8>>) {
    while let Some(frame) = decoder.next_frame() {
        out.push(frame);
    }
}

#[test]
fn frames_split_at_every_byte_boundary_reassemble() {
    let big = vec![0xab; MAX_FRAME_LEN];
    let bodies: Vec<&[u8]> = vec![b"a", b"hello", &[0u8; 300], &big, b"zz"];
    let bytes = stream(&bodies);
    // Two pieces, cut at every position.
    for cut in 0..=bytes.len() {
        let mut decoder = FrameDecoder::new();
        let mut out = Vec::new();
        decoder.push(&bytes[..cut]).unwrap();
        drain(&mut decoder, &mut out);
        decoder.push(&bytes[cut..]).unwrap();
        drain(&mut decoder, &mut out);
        assert_eq!(out, bodies, "cut at {cut}");
        assert_eq!(decoder.buffered_len(), 0);
    }
    // One byte at a time.
    let mut decoder = FrameDecoder::new();
    let mut out = Vec::new();
    for byte in &bytes {
        decoder.push(core::slice::from_ref(byte)).unwrap();
        assert!(decoder.buffered_len() <= HEADER_LEN + MAX_FRAME_LEN);
        drain(&mut decoder, &mut out);
    }
    assert_eq!(out, bodies);
    // All at once.
    let mut decoder = FrameDecoder::new();
    decoder.push(&bytes).unwrap();
    let mut out = Vec::new();
    drain(&mut decoder, &mut out);
    assert_eq!(out, bodies);
}

#[test]
fn encoded_frame_is_big_endian_length_then_body() {
    assert_eq!(encode_frame(b"abc").unwrap(), b"\x00\x03abc");
    let body = vec![1u8; 0x0102];
    let frame = encode_frame(&body).unwrap();
    assert_eq!(&frame[..2], &[0x01, 0x02]);
    assert_eq!(&frame[2..], &body[..]);
}

#[test]
fn oversize_frame_is_refused() {
    assert_eq!(
        encode_frame(&vec![0; MAX_FRAME_LEN + 1]),
        Err(FramingError::FrameTooLong {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
    assert!(encode_frame(&vec![0; 70_000]).is_err());
    assert!(encode_frame(&vec![0; MAX_FRAME_LEN]).is_ok());
    // Refused at the header, before any body byte is buffered.
    let mut decoder = FrameDecoder::new();
    let too_long = u16::try_from(MAX_FRAME_LEN + 1).unwrap().to_be_bytes();
    assert_eq!(
        decoder.push(&too_long),
        Err(FramingError::FrameTooLong {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
    assert_eq!(decoder.buffered_len(), 0);
    // And the decoder stays refused: the stream is out of step.
    assert!(decoder.push(&encode_frame(b"ok").unwrap()).is_err());
    assert_eq!(decoder.next_frame(), None);
    // A smaller configured limit.
    let mut decoder = FrameDecoder::with_max_len(NonZeroU16::new(4).unwrap());
    assert_eq!(decoder.max_len(), 4);
    decoder.push(b"\x00\x04abcd").unwrap();
    assert_eq!(decoder.next_frame().unwrap(), b"abcd");
    assert_eq!(
        decoder.push(b"\x00\x05"),
        Err(FramingError::FrameTooLong { len: 5, max: 4 })
    );
    // The largest a 16-bit header allows.
    let mut decoder = FrameDecoder::with_max_len(NonZeroU16::MAX);
    let mut frame = vec![0xff, 0xff];
    frame.extend(vec![3u8; 65535]);
    decoder.push(&frame).unwrap();
    assert_eq!(decoder.next_frame().unwrap().len(), 65535);
}

#[test]
fn zero_length_frame_is_refused() {
    assert_eq!(encode_frame(b""), Err(FramingError::EmptyFrame));
    let mut decoder = FrameDecoder::new();
    // Frames before the bad header still come out; nothing after it does.
    let mut bytes = encode_frame(b"first").unwrap();
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend(encode_frame(b"after").unwrap());
    assert_eq!(decoder.push(&bytes), Err(FramingError::EmptyFrame));
    assert_eq!(decoder.next_frame().unwrap(), b"first");
    assert_eq!(decoder.next_frame(), None);
    assert_eq!(decoder.push(b"\x00\x01x"), Err(FramingError::EmptyFrame));
    // Split header: the zero length is seen once both bytes are in.
    let mut decoder = FrameDecoder::new();
    decoder.push(&[0]).unwrap();
    assert_eq!(decoder.push(&[0]), Err(FramingError::EmptyFrame));
}

proptest! {
    #[test]
    fn framing_round_trips_in_any_chunking(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..600), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let bytes = stream(&refs);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut decoder = FrameDecoder::new();
        let mut out = Vec::new();
        for pair in cuts.windows(2) {
            decoder.push(&bytes[pair[0]..pair[1]]).unwrap();
            prop_assert!(decoder.buffered_len() <= HEADER_LEN + MAX_FRAME_LEN);
            drain(&mut decoder, &mut out);
        }
        prop_assert_eq!(out, bodies);
    }

    #[test]
    fn decoder_never_panics(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..5000), 0..8),
        max in 1u16..,
    ) {
        let mut decoder = FrameDecoder::with_max_len(NonZeroU16::new(max).unwrap());
        for chunk in &chunks {
            let result = decoder.push(chunk);
            prop_assert!(decoder.buffered_len() <= HEADER_LEN + usize::from(max));
            while let Some(frame) = decoder.next_frame() {
                prop_assert!(!frame.is_empty() && frame.len() <= usize::from(max));
            }
            if result.is_err() {
                prop_assert!(decoder.push(b"\x00\x01a").is_err());
            }
        }
    }
}
