//! The envelope every message travels in, and the one decode entry point.
//!
//! ```text
//! envelope = [ version: uint, flow: uint, tag: uint, session_id: bstr .size 16, seq: uint,
//!              body: bstr / COSE_Sign1 ]
//! ```
//!
//! A plain body is a byte string holding the message's CBOR; a signed body is an untagged
//! COSE_Sign1 whose payload is that byte string. Either way the message's exact bytes are kept,
//! so a relay forwards them unchanged, a transcript hashes them, and a server answers an
//! identical retransmission with the identical stored response.

use alloc::vec::Vec;
use ciborium::Value;

use crate::cbor;
use crate::signed::SignedBody;
use crate::{
    DecodeError, Flow, MAX_MESSAGE_LEN, MessageTag, ProtocolVersion, SessionId, is_supported,
};

/// The fields in front of every message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Protocol version of this message.
    pub version: ProtocolVersion,
    /// Flow of the session.
    pub flow: Flow,
    /// Which message this is.
    pub tag: MessageTag,
    /// Session the message belongs to.
    pub session_id: SessionId,
    /// Sequence number of the message within the session, per direction, from 0. A
    /// retransmission repeats its sequence number.
    pub seq: u32,
}

/// The body of an envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// An unsigned message: its CBOR bytes.
    Plain(Vec<u8>),
    /// A signed message, not yet verified. Boxed: a COSE structure is large beside a `Vec`.
    Signed(alloc::boxed::Box<SignedBody>),
}

/// One protocol message: header and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The header.
    pub header: Header,
    /// The body.
    pub body: Body,
}

impl Envelope {
    /// A plain (unsigned) envelope. Fails if the tag must be signed.
    pub fn plain(header: Header, payload: Vec<u8>) -> Result<Self, DecodeError> {
        if header.tag.is_signed() {
            return Err(DecodeError::WrongBodyKind(header.tag.to_u8()));
        }
        Ok(Envelope {
            header,
            body: Body::Plain(payload),
        })
    }

    /// Encodes the envelope. Signed bodies are written from the bytes they were signed or
    /// received with.
    pub fn encode(&self) -> Vec<u8> {
        let h = &self.header;
        let body = match &self.body {
            Body::Plain(b) => Value::Bytes(b.clone()),
            Body::Signed(s) => s.to_value(),
        };
        cbor::encode(&Value::Array(alloc::vec![
            Value::Integer(h.version.0.into()),
            Value::Integer(h.flow.to_u8().into()),
            Value::Integer(h.tag.to_u8().into()),
            Value::Bytes(h.session_id.0.to_vec()),
            Value::Integer(h.seq.into()),
            body,
        ]))
    }

    /// The digest a server files a request under: SHA-256 of the encoding with any signature
    /// in canonical form, so a copy whose ECDSA signature a relay flipped to the high `s`
    /// counts as the same request (and gets the same stored response) rather than a replay.
    pub fn canonical_digest(&self, provider: &dyn crate::CryptoProvider) -> [u8; 32] {
        let bytes = match &self.body {
            Body::Signed(s) => Envelope {
                header: self.header,
                body: Body::Signed(alloc::boxed::Box::new(s.normalized())),
            }
            .encode(),
            Body::Plain(_) => self.encode(),
        };
        provider.sha256(&[&bytes])
    }

    /// Decodes an envelope: the one entry point for bytes from outside. Checks the overall size,
    /// the version, that the tag belongs to the flow, the tag's size limit and body kind, and the
    /// COSE_Sign1 structure. Never panics; every failure is a typed [`DecodeError`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                limit: MAX_MESSAGE_LEN,
            });
        }
        let mut it = cbor::array(cbor::decode(bytes)?, "envelope", 6)?.into_iter();
        let mut next = || it.next().unwrap_or(Value::Null);

        let version = cbor::uint(&next(), "version", u64::MAX)?;
        let version = u8::try_from(version)
            .map(ProtocolVersion)
            .ok()
            .filter(|v| is_supported(*v))
            .ok_or(DecodeError::UnsupportedVersion(version))?;
        let flow = Flow::from_u64(cbor::uint(&next(), "flow", u64::MAX)?)?;
        let tag = MessageTag::from_u64(cbor::uint(&next(), "tag", u64::MAX)?)?;
        if tag.flow().is_some_and(|f| f != flow) {
            return Err(DecodeError::TagNotInFlow {
                tag: tag.to_u8(),
                flow: flow.to_u8(),
            });
        }
        if bytes.len() > tag.max_len() {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                limit: tag.max_len(),
            });
        }
        let session_id = SessionId(cbor::fixed_bytes::<16>(next(), "session_id")?);
        let seq = cbor::uint(&next(), "seq", u64::from(u32::MAX))?;
        let seq = u32::try_from(seq).map_err(|_| DecodeError::OutOfRange { field: "seq" })?;
        let header = Header {
            version,
            flow,
            tag,
            session_id,
            seq,
        };
        let body = match (next(), tag.is_signed()) {
            (Value::Bytes(b), false) => Body::Plain(b),
            (v @ Value::Array(_), true) => {
                Body::Signed(alloc::boxed::Box::new(SignedBody::from_value(v)?))
            }
            _ => return Err(DecodeError::WrongBodyKind(tag.to_u8())),
        };
        Ok(Envelope { header, body })
    }
}

/// A message type with a CBOR body. Implemented by every protocol message.
pub trait Message: Sized {
    /// The tag of this message type.
    const TAG: MessageTag;

    /// Encodes the body.
    fn encode_body(&self) -> Vec<u8>;

    /// Decodes the body from its exact bytes.
    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError>;
}
