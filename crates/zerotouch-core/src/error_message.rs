//! The error message, valid in every flow.
//!
//! Errors are unsigned: a receiver treats one only as a hint to retry later (or with another
//! version), never as a reason to give up or to distrust a key, because anyone on the path can
//! forge it. Unknown, blocked and locked devices all get [`ErrorCode::NotAuthorized`], byte for
//! byte alike, so nothing can be enumerated.
//!
//! ```text
//! error = [ code: uint, retry_after_s: uint, supported_versions: bstr ]
//! ```

use alloc::vec::Vec;
use ciborium::Value;

use crate::{DecodeError, Message, MessageTag, ProtocolVersion, cbor};

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    /// The message was malformed or not expected in this state.
    BadMessage = 1,
    /// The version is not spoken here; `supported_versions` lists those that are.
    UnsupportedVersion = 2,
    /// No cipher suite in common.
    NoCommonSuite = 3,
    /// The device is unknown, blocked or locked out, or the key proof failed. One code for all,
    /// so an attacker cannot tell them apart.
    NotAuthorized = 4,
    /// The session or nonce expired: start a new session.
    SessionExpired = 5,
    /// Too many requests: retry after `retry_after_s`.
    RateLimited = 6,
    /// The server failed; retry after `retry_after_s`.
    Internal = 7,
    /// Flow 2: the association server does not confirm that the two devices share an account
    /// (the joiner is unknown, blocked, on another account, or has no device secret: one code
    /// for all). The sponsor may offer the owner a fallback.
    NotAssociated = 8,
    /// Flow 2, sponsor → joiner: the sponsor cannot hand over now (server unreachable, limits
    /// reached, channel mismatch); the joiner may try another sponsor or a fallback.
    HandoffUnavailable = 9,
}

impl ErrorCode {
    fn from_u64(v: u64) -> Result<Self, DecodeError> {
        Ok(match v {
            1 => ErrorCode::BadMessage,
            2 => ErrorCode::UnsupportedVersion,
            3 => ErrorCode::NoCommonSuite,
            4 => ErrorCode::NotAuthorized,
            5 => ErrorCode::SessionExpired,
            6 => ErrorCode::RateLimited,
            7 => ErrorCode::Internal,
            8 => ErrorCode::NotAssociated,
            9 => ErrorCode::HandoffUnavailable,
            other => return Err(DecodeError::UnknownErrorCode(other)),
        })
    }
}

/// An error message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// What went wrong.
    pub code: ErrorCode,
    /// Seconds to wait before retrying (0: at once).
    pub retry_after_s: u32,
    /// Versions the sender speaks (filled in for [`ErrorCode::UnsupportedVersion`]).
    pub supported_versions: Vec<ProtocolVersion>,
}

impl Message for ErrorMessage {
    const TAG: MessageTag = MessageTag::Error;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Integer((self.code as u8).into()),
            Value::Integer(self.retry_after_s.into()),
            Value::Bytes(self.supported_versions.iter().map(|v| v.0).collect()),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut it = cbor::array(cbor::decode(bytes)?, "error", 3)?.into_iter();
        let mut next = || it.next().unwrap_or(Value::Null);
        let code = ErrorCode::from_u64(cbor::uint(&next(), "code", 255)?)?;
        let retry = cbor::uint(&next(), "retry_after_s", u64::from(u32::MAX))?;
        let retry_after_s = u32::try_from(retry).map_err(|_| DecodeError::OutOfRange {
            field: "retry_after_s",
        })?;
        let versions = cbor::bytes(next(), "supported_versions")?;
        if versions.len() > 16 {
            return Err(DecodeError::OutOfRange {
                field: "supported_versions",
            });
        }
        Ok(ErrorMessage {
            code,
            retry_after_s,
            supported_versions: versions.into_iter().map(ProtocolVersion).collect(),
        })
    }
}
