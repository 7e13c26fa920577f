//! `ErrorMessage::decode_body` on arbitrary bytes: never panics, decode → encode → decode is
//! stable, and every error that decodes fits in an error envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_core::{
    Body, Envelope, ErrorMessage, Flow, Header, Message, MessageTag, ProtocolVersion, SessionId,
};

fuzz_target!(|data: &[u8]| {
    let Ok(first) = ErrorMessage::decode_body(data) else {
        return;
    };
    let body1 = first.encode_body();
    let second = match ErrorMessage::decode_body(&body1) {
        Ok(m) => m,
        Err(e) => panic!("re-encoded error does not decode: {e:?}\nbody: {body1:02x?}"),
    };
    assert_eq!(first, second, "decode(encode(m)) != m");
    let body2 = second.encode_body();
    assert_eq!(body1, body2, "encoding not stable");

    // Any error we can decode we can also send: it fits the error tag's size limit.
    let header = Header {
        version: ProtocolVersion::V1,
        flow: Flow::ServerSetup,
        tag: MessageTag::Error,
        session_id: SessionId([0xff; 16]),
        seq: u32::MAX,
    };
    let env = match Envelope::plain(header, body1.clone()) {
        Ok(e) => e,
        Err(e) => panic!("error envelope refused: {e:?}"),
    };
    let wire = env.encode();
    match Envelope::decode(&wire) {
        Ok(back) => assert_eq!(back.body, Body::Plain(body1)),
        Err(e) => panic!(
            "error envelope of {} bytes does not decode: {e:?}",
            wire.len()
        ),
    }
});
