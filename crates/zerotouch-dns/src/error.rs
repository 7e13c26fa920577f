//! What can be wrong with a name, an answer or a message, and why a tunnel failed.

use thiserror::Error;

/// Errors of the DNS binding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The zone is not a valid DNS name of letters, digits and hyphens.
    #[error("invalid zone name")]
    InvalidZone,
    /// The zone leaves no room for a header and data in a 255-octet name.
    #[error("zone too long: {0} octets on the wire")]
    ZoneTooLong(usize),
    /// The name is not under the configured zone.
    #[error("name outside the zone")]
    OutsideZone,
    /// A label is not lower- or upper-case RFC 4648 base32 without padding, or its spare bits
    /// are not zero.
    #[error("label is not canonical base32")]
    NotBase32,
    /// The header label does not decode to a 15-byte header of a known version and kind
    /// whose fields the kind allows.
    #[error("bad header: {0}")]
    BadHeader(&'static str),
    /// The name has more data labels than its header declares.
    #[error("{found} data labels where the header declares {declared}")]
    LabelCount {
        /// Data labels the header declares.
        declared: usize,
        /// Data labels the name has.
        found: usize,
    },
    /// A data label is empty or longer than 63 characters, or one other than the outermost is
    /// shorter than 63.
    #[error("data labels are not split at 63 characters")]
    LabelSplit,
    /// The encoded name would exceed 255 octets.
    #[error("name too long: {0} octets")]
    NameTooLong(usize),
    /// The answer's TXT strings are not a canonical payload (empty, or a string other than
    /// the last shorter than 255 bytes, or no status and length).
    #[error("malformed answer payload: {0}")]
    BadAnswer(&'static str),
    /// An answer status byte this version does not define.
    #[error("unknown answer status {0:#04x}")]
    UnknownStatus(u8),
    /// The answer limit is below 512 bytes or above 4,080.
    #[error("answer limit {0} out of range")]
    AnswerLimit(usize),
    /// A message longer than the binding carries.
    #[error("message of {0} bytes is longer than the binding carries")]
    MessageTooLong(usize),
    /// A stored tunnel record does not decode.
    #[error("corrupt tunnel record: {0}")]
    CorruptRecord(&'static str),
}
