//! Why a request was refused, and the unsigned error message the device gets instead.
//!
//! The reason goes to the logs; the device sees only the error code. Unknown, blocked, locked
//! and unowned devices, bad key proofs and wrong PINs all map to the one `NotAuthorized`
//! message, so nobody can probe which devices exist or which state they are in.

use zerotouch_core::{
    Envelope, ErrorCode, ErrorMessage, Header, Message, MessageTag, ProtocolVersion,
    SUPPORTED_VERSIONS, SessionId,
};

/// Why the service refused a request (for logs and tests; never sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The bytes are not a well-formed message of the expected kind.
    Malformed,
    /// The device offered no version this server speaks.
    UnsupportedVersion,
    /// The device offered no suite this server accepts.
    NoCommonSuite,
    /// No device with this key is known.
    UnknownDevice,
    /// The device is on the blocklist.
    Blocked,
    /// The device is locked out after wrong PINs.
    Locked,
    /// The device is associated with no account.
    NotAssociated,
    /// The device is associated with several accounts and the policy refuses it.
    Ambiguous,
    /// The device trusts no key this server may sign with.
    NoUsableKey,
    /// The mutual-TLS client key is not the key the hello names.
    ClientKeyMismatch,
    /// The device's key proof did not verify.
    BadKeyProof,
    /// The PIN was absent or wrong.
    WrongPin,
    /// A different request reused a session, nonce or sequence number.
    Replay,
    /// The session or its nonce expired, or never existed.
    SessionExpired,
    /// The device key hit its signature cap for this hour.
    SignatureCap,
    /// The sealed report did not open or decode.
    BadReport,
    /// The revocation query names a key this server does not know.
    UnknownKey,
    /// The store or a signer failed.
    Internal,
}

impl Refusal {
    /// A stable snake_case name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::UnsupportedVersion => "unsupported_version",
            Refusal::NoCommonSuite => "no_common_suite",
            Refusal::UnknownDevice => "unknown_device",
            Refusal::Blocked => "blocked",
            Refusal::Locked => "locked",
            Refusal::NotAssociated => "not_associated",
            Refusal::Ambiguous => "ambiguous",
            Refusal::NoUsableKey => "no_usable_key",
            Refusal::ClientKeyMismatch => "client_key_mismatch",
            Refusal::BadKeyProof => "bad_key_proof",
            Refusal::WrongPin => "wrong_pin",
            Refusal::Replay => "replay",
            Refusal::SessionExpired => "session_expired",
            Refusal::SignatureCap => "signature_cap",
            Refusal::BadReport => "bad_report",
            Refusal::UnknownKey => "unknown_key",
            Refusal::Internal => "internal",
        }
    }

    /// The code the device sees.
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::Malformed | Refusal::BadReport => ErrorCode::BadMessage,
            Refusal::UnsupportedVersion => ErrorCode::UnsupportedVersion,
            Refusal::NoCommonSuite => ErrorCode::NoCommonSuite,
            Refusal::SessionExpired => ErrorCode::SessionExpired,
            Refusal::SignatureCap => ErrorCode::RateLimited,
            Refusal::Internal => ErrorCode::Internal,
            Refusal::UnknownDevice
            | Refusal::Blocked
            | Refusal::Locked
            | Refusal::NotAssociated
            | Refusal::Ambiguous
            | Refusal::NoUsableKey
            | Refusal::ClientKeyMismatch
            | Refusal::BadKeyProof
            | Refusal::WrongPin
            | Refusal::Replay
            | Refusal::UnknownKey => ErrorCode::NotAuthorized,
        }
    }
}

/// The error message answering a request with `request` header (or none, if it did not
/// decode). Unsigned: the device takes it only as a hint to retry.
pub(crate) fn error_response(
    request: Option<&Header>,
    refusal: Refusal,
    retry_after_s: u32,
) -> Vec<u8> {
    let header = Header {
        version: ProtocolVersion::V1,
        flow: request.map_or(zerotouch_core::Flow::ServerSetup, |h| h.flow),
        tag: MessageTag::Error,
        session_id: request.map_or(SessionId([0; 16]), |h| h.session_id),
        seq: request.map_or(0, |h| h.seq.saturating_add(1)),
    };
    error_envelope(header, refusal.code(), retry_after_s)
}

/// An unsigned error message with `header` (its tag must be `Error`) and `code`.
pub(crate) fn error_envelope(header: Header, code: ErrorCode, retry_after_s: u32) -> Vec<u8> {
    let body = ErrorMessage {
        code,
        retry_after_s,
        supported_versions: SUPPORTED_VERSIONS.to_vec(),
    }
    .encode_body();
    // An error envelope is plain by definition; building one cannot fail.
    Envelope::plain(header, body)
        .map(|e| e.encode())
        .unwrap_or_default()
}
