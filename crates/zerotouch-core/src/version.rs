//! Protocol versions and their negotiation.
//!
//! Firmware sits in boxes for years, so a server accepts every version it has released; the
//! device offers its versions and the server picks the highest common one. Both the offer and
//! the choice go into the transcript, so a man in the middle cannot strip the offer down.

use crate::NegotiationError;

/// A protocol version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolVersion(pub u8);

impl ProtocolVersion {
    /// Version 1, the first released version.
    pub const V1: ProtocolVersion = ProtocolVersion(1);
}

/// Every version this build speaks, oldest first. A release never removes an entry.
pub const SUPPORTED_VERSIONS: &[ProtocolVersion] = &[ProtocolVersion::V1];

/// Whether this build speaks `v`.
pub fn is_supported(v: ProtocolVersion) -> bool {
    SUPPORTED_VERSIONS.contains(&v)
}

/// Picks the highest version in both `offered` and `ours`.
pub fn negotiate_version(
    offered: &[ProtocolVersion],
    ours: &[ProtocolVersion],
) -> Result<ProtocolVersion, NegotiationError> {
    offered
        .iter()
        .filter(|v| ours.contains(v))
        .max()
        .copied()
        .ok_or(NegotiationError::NoCommonVersion)
}

/// Checks, on the side that offered, that the peer's choice was one of its offers. A choice
/// not offered means someone rewrote the offer or the answer.
pub fn check_version_choice(
    offered: &[ProtocolVersion],
    chosen: ProtocolVersion,
) -> Result<(), NegotiationError> {
    if offered.contains(&chosen) {
        Ok(())
    } else {
        Err(NegotiationError::NotOffered)
    }
}
