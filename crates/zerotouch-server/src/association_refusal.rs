//! Why the association service refused a verification request, and the code the sponsor sees.
//!
//! The reasons go to the logs and metrics; the sponsor sees only the code. Every reason that
//! concerns the sponsor's own standing (unknown, blocked, bad signature, a client certificate
//! of another device) is one `NotAuthorized`; every reason that concerns the joiner (unknown,
//! blocked, no device secret, on another account) is one `NotAssociated`, so a sponsor cannot
//! probe which devices exist or which state they are in.

use zerotouch_core::ErrorCode;

/// Why the association service refused a request (for logs, metrics and tests; never sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssociationRefusal {
    /// The bytes are not a well-formed verification request.
    Malformed,
    /// The request's protocol version is not spoken here.
    UnsupportedVersion,
    /// The answer key's suite is not one this server can seal to.
    UnsupportedSuite,
    /// No device has the signing key.
    UnknownSponsor,
    /// The sponsor is on the blocklist.
    BlockedSponsor,
    /// The sponsor's signature does not verify.
    BadSignature,
    /// The payload's sponsor id is not the signer's key id.
    SponsorIdMismatch,
    /// The mutual-TLS client key is not the sponsor's.
    ClientKeyMismatch,
    /// A different request under a session that already has an answer.
    Replay,
    /// The joiner's nonce was seen before.
    ReplayedNonce,
    /// The sponsor made too many requests in this window.
    SponsorLimit,
    /// Too many requests named this joiner in this window.
    JoinerLimit,
    /// No device is the joiner.
    UnknownJoiner,
    /// The joiner is on the blocklist.
    BlockedJoiner,
    /// The joiner has no device secret to answer a challenge with.
    NoDeviceSecret,
    /// The two devices share no account.
    NoSharedAccount,
    /// The store or a signer failed, or no association key is usable.
    Internal,
}

impl AssociationRefusal {
    /// A stable snake_case name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AssociationRefusal::Malformed => "malformed",
            AssociationRefusal::UnsupportedVersion => "unsupported_version",
            AssociationRefusal::UnsupportedSuite => "unsupported_suite",
            AssociationRefusal::UnknownSponsor => "unknown_sponsor",
            AssociationRefusal::BlockedSponsor => "blocked_sponsor",
            AssociationRefusal::BadSignature => "bad_signature",
            AssociationRefusal::SponsorIdMismatch => "sponsor_id_mismatch",
            AssociationRefusal::ClientKeyMismatch => "client_key_mismatch",
            AssociationRefusal::Replay => "replay",
            AssociationRefusal::ReplayedNonce => "replayed_nonce",
            AssociationRefusal::SponsorLimit => "sponsor_limit",
            AssociationRefusal::JoinerLimit => "joiner_limit",
            AssociationRefusal::UnknownJoiner => "unknown_joiner",
            AssociationRefusal::BlockedJoiner => "blocked_joiner",
            AssociationRefusal::NoDeviceSecret => "no_device_secret",
            AssociationRefusal::NoSharedAccount => "no_shared_account",
            AssociationRefusal::Internal => "internal",
        }
    }

    /// The code the sponsor sees.
    pub fn code(self) -> ErrorCode {
        match self {
            AssociationRefusal::Malformed | AssociationRefusal::UnsupportedSuite => {
                ErrorCode::BadMessage
            }
            AssociationRefusal::UnsupportedVersion => ErrorCode::UnsupportedVersion,
            AssociationRefusal::UnknownSponsor
            | AssociationRefusal::BlockedSponsor
            | AssociationRefusal::BadSignature
            | AssociationRefusal::SponsorIdMismatch
            | AssociationRefusal::ClientKeyMismatch => ErrorCode::NotAuthorized,
            AssociationRefusal::Replay | AssociationRefusal::ReplayedNonce => {
                ErrorCode::SessionExpired
            }
            AssociationRefusal::SponsorLimit | AssociationRefusal::JoinerLimit => {
                ErrorCode::RateLimited
            }
            AssociationRefusal::UnknownJoiner
            | AssociationRefusal::BlockedJoiner
            | AssociationRefusal::NoDeviceSecret
            | AssociationRefusal::NoSharedAccount => ErrorCode::NotAssociated,
            AssociationRefusal::Internal => ErrorCode::Internal,
        }
    }
}

/// The association service's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationAnswer {
    /// The bytes to send back: the signed verification data, or (if refused) an unsigned
    /// error message.
    pub bytes: Vec<u8>,
    /// Why it was refused, if it was (for logs and metrics; the sponsor sees only its code).
    pub refusal: Option<AssociationRefusal>,
}

impl AssociationAnswer {
    /// The error code the sponsor sees, if the request was refused (a transport sets its
    /// status from it).
    pub fn code(&self) -> Option<ErrorCode> {
        self.refusal.map(AssociationRefusal::code)
    }
}
