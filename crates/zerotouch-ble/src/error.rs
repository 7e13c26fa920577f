//! The one error type of this crate: what was wrong with a segment, a message or the link.

use alloc::string::String;

/// Why the BLE binding refused a segment, a message or gave up on the link.
///
/// The framing variants say what was wrong with the bytes a peer wrote or indicated. After
/// one of them the message being reassembled is discarded; the link itself stays usable (a
/// later begin segment starts afresh), and the adapters disconnect a peer that keeps sending
/// bad segments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ATT MTU is below the minimum of 23 that every LE link supports.
    #[error("ATT MTU {mtu} is below the minimum of 23")]
    MtuTooSmall {
        /// The MTU given.
        mtu: u16,
    },
    /// A segment of zero bytes, or a continuation segment with no payload.
    #[error("empty segment")]
    EmptySegment,
    /// A segment longer than the attribute value one ATT write or indication carries at this
    /// MTU (`min(MTU - 3, 512)`).
    #[error(
        "segment of {len} bytes is longer than {max}, the most one ATT operation carries at this MTU"
    )]
    SegmentTooLong {
        /// The segment's length.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A begin segment shorter than its 4-byte header.
    #[error("begin segment of {len} bytes is shorter than its 4-byte header")]
    TruncatedHeader {
        /// The segment's length.
        len: usize,
    },
    /// A message (announced or given to send) longer than the receiver accepts.
    #[error("message of {len} bytes is longer than the limit of {max}")]
    MessageTooLong {
        /// The length announced or given.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A continuation segment arrived with no message begun.
    #[error("continuation segment with no message begun")]
    NoMessageInProgress,
    /// A begin segment arrived while another message was being reassembled on the same
    /// connection (after a reconnect the sender starts over, which is expected).
    #[error("begin segment in the middle of message {txn}")]
    UnexpectedBegin {
        /// The transaction id of the message being reassembled.
        txn: u8,
    },
    /// The same segment twice in a row.
    #[error("duplicated segment {seq}")]
    DuplicateSegment {
        /// Its sequence number.
        seq: u8,
    },
    /// A segment whose sequence number is not the next one.
    #[error("segment {got} out of order: expected {expected}")]
    OutOfOrder {
        /// The sequence number expected.
        expected: u8,
        /// The one received.
        got: u8,
    },
    /// Segments carried more bytes than the begin segment announced.
    #[error("segments carry more than the {total} bytes announced")]
    Overrun {
        /// The length announced.
        total: usize,
    },
    /// The end segment arrived before the announced length was complete.
    #[error("message ended after {received} of {total} bytes")]
    Truncated {
        /// Bytes received.
        received: usize,
        /// Bytes announced.
        total: usize,
    },
    /// The announced length was complete but the segment carrying the last byte was not
    /// marked as the end.
    #[error("message complete at {total} bytes without an end segment")]
    MissingEnd {
        /// Bytes announced (and received).
        total: usize,
    },
    /// A message was begun and not finished within the reassembly timeout.
    #[error("message {txn} not finished within the reassembly timeout")]
    ReassemblyTimeout {
        /// Its transaction id.
        txn: u8,
    },
    /// Nothing moved on the link (no segment received, none confirmed) for the idle timeout.
    #[error("link idle for longer than the idle timeout")]
    IdleTimeout,
    /// The info characteristic's value is malformed.
    #[error("info characteristic value malformed: {0}")]
    MalformedInfo(&'static str),
    /// The peer speaks a version of the segment format this one does not.
    #[error("peer speaks BLE profile version {0}, this one speaks 1")]
    UnsupportedVersion(u8),
    /// The connection went away; what was in flight will be sent again on the next one.
    #[error("disconnected")]
    Disconnected,
    /// The BLE stack (BlueZ over D-Bus, or the simulated link) failed.
    #[error("BLE stack: {0}")]
    Stack(String),
    /// The provisioner relay could not forward a device's message, or refused to.
    #[error("relay: {0}")]
    Relay(String),
}
