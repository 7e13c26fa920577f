//! Answers: one TXT record whose character-strings, joined, are a status byte, a 16-bit
//! length and a body.
//!
//! Resolvers rotate the records of a set but keep the strings of one record in order, so
//! everything travels in a single record. Its size is chosen so the resolver's answer to the
//! device fits the device's [`AnswerLimit`], whatever the question's length.

use alloc::vec::Vec;

use crate::DnsError;
use crate::header::AnswerLimit;

/// Bytes before the body: status and length.
pub const PAYLOAD_HEADER_LEN: usize = 3;
/// The bytes of a device-bound answer that are not record data: the DNS header (12), the
/// question's type and class (4), and the answer record's compressed owner, type, class, TTL
/// and length (12).
pub const ANSWER_OVERHEAD: usize = 12 + 4 + 12;
/// An OPT record, which a resolver adds to its answer when the device's query carried one.
/// Reserved in every answer limit above 512 bytes. The classic limit of exactly 512 reserves
/// none: a device asks it either without EDNS (no OPT comes back) or while advertising a
/// larger EDNS payload (the OPT fits in the difference), which spares the 11 bytes where they
/// matter most, in the answer to a full-length name.
pub const OPT_RECORD: usize = 11;

/// What an answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerStatus {
    /// The chunk is stored; send the next. Body empty, length 0.
    Ack = 0x00,
    /// A piece of the response: length = the response's total length, body = its bytes from
    /// the offset asked for (0 in the answer to the last chunk).
    Data = 0x01,
    /// The retry cookie: body = 5 bytes.
    Cookie = 0x02,
    /// A probe's filler: body = bytes `i mod 251`, as many as fit the limit.
    Probe = 0x03,
    /// The cookie is wrong or expired: ask for a new one.
    BadCookie = 0x10,
    /// Too many queries from this client or tunnel: length = seconds to wait.
    RateLimited = 0x11,
    /// The last chunk came but others are missing: send the message again.
    Incomplete = 0x12,
    /// No response is stored for that message.
    NoResponse = 0x13,
    /// The message is longer than the server accepts.
    TooLarge = 0x14,
    /// A chunk was sent again with other bytes.
    ChunkConflict = 0x15,
    /// A poll asked for an offset beyond the response.
    BadOffset = 0x16,
    /// The tunnel has carried as many messages as it can: open a new one.
    TunnelFull = 0x17,
}

impl AnswerStatus {
    /// Parses the status byte.
    pub fn from_u8(v: u8) -> Result<AnswerStatus, DnsError> {
        Ok(match v {
            0x00 => AnswerStatus::Ack,
            0x01 => AnswerStatus::Data,
            0x02 => AnswerStatus::Cookie,
            0x03 => AnswerStatus::Probe,
            0x10 => AnswerStatus::BadCookie,
            0x11 => AnswerStatus::RateLimited,
            0x12 => AnswerStatus::Incomplete,
            0x13 => AnswerStatus::NoResponse,
            0x14 => AnswerStatus::TooLarge,
            0x15 => AnswerStatus::ChunkConflict,
            0x16 => AnswerStatus::BadOffset,
            0x17 => AnswerStatus::TunnelFull,
            other => return Err(DnsError::UnknownStatus(other)),
        })
    }
}

/// An answer's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerPayload {
    /// What it says.
    pub status: AnswerStatus,
    /// Data: the response's total length; rate limited: seconds to wait; else 0.
    pub length: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl AnswerPayload {
    /// A payload with no body.
    pub fn status(status: AnswerStatus, length: u16) -> AnswerPayload {
        AnswerPayload {
            status,
            length,
            body: Vec::new(),
        }
    }

    /// The TXT record's character-strings: the payload cut into 255-byte strings, the last
    /// one shorter.
    pub fn to_strings(&self) -> Vec<Vec<u8>> {
        let mut bytes = Vec::with_capacity(PAYLOAD_HEADER_LEN + self.body.len());
        bytes.push(self.status as u8);
        bytes.extend_from_slice(&self.length.to_be_bytes());
        bytes.extend_from_slice(&self.body);
        bytes.chunks(255).map(<[u8]>::to_vec).collect()
    }

    /// Reads a TXT record's character-strings.
    pub fn from_strings<S: AsRef<[u8]>>(strings: &[S]) -> Result<AnswerPayload, DnsError> {
        let Some((last, full)) = strings.split_last() else {
            return Err(DnsError::BadAnswer("no strings"));
        };
        if full.iter().any(|s| s.as_ref().len() != 255) || last.as_ref().len() > 255 {
            return Err(DnsError::BadAnswer("strings not cut at 255 bytes"));
        }
        let mut bytes = Vec::with_capacity(strings.iter().map(|s| s.as_ref().len()).sum());
        for s in strings {
            bytes.extend_from_slice(s.as_ref());
        }
        let [status, l0, l1] = *bytes
            .first_chunk::<PAYLOAD_HEADER_LEN>()
            .ok_or(DnsError::BadAnswer("shorter than status and length"))?;
        // The body in place, without a second copy (a device's heap is small).
        bytes.drain(..PAYLOAD_HEADER_LEN);
        Ok(AnswerPayload {
            status: AnswerStatus::from_u8(status)?,
            length: u16::from_be_bytes([l0, l1]),
            body: bytes,
        })
    }
}

/// The most body bytes an answer may carry so that the resolver's answer to a question of
/// `qname_wire_len` octets fits `limit`.
pub fn body_capacity(limit: AnswerLimit, qname_wire_len: usize) -> usize {
    let opt = if limit > AnswerLimit::CLASSIC {
        OPT_RECORD
    } else {
        0
    };
    let rdata = limit
        .bytes()
        .saturating_sub(ANSWER_OVERHEAD + opt + qname_wire_len);
    // Each 255 bytes of payload (or part of it) costs one length byte.
    let mut payload = rdata.saturating_sub(rdata.div_ceil(256));
    while payload + payload.div_ceil(255).max(1) > rdata && payload > 0 {
        payload -= 1;
    }
    payload.saturating_sub(PAYLOAD_HEADER_LEN)
}

/// The probe's filler of `n` bytes: `i mod 251`, so a cut or shifted answer shows.
pub fn probe_filler(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Whether `body` is exactly the probe's filler of `n` bytes (compared without building it).
pub fn is_probe_filler(body: &[u8], n: usize) -> bool {
    body.len() == n
        && body
            .iter()
            .enumerate()
            .all(|(i, &b)| usize::from(b) == i % 251)
}
