//! One segment: what a single ATT write or indication carries.
//!
//! ```text
//! begin:        | B E s s s s s s | txn | total (u16 BE) | payload ...
//! continuation: | 0 E s s s s s s | payload ...
//! ```
//! `B` (0x80) marks the first segment of a message, `E` (0x40) the last (a message in one
//! segment has both); `s` is the 6-bit sequence number, 0 on the begin segment and one more
//! (mod 64) on each segment after. The transaction id tells a message from a copy of it sent
//! again after a reconnect; the total is the message's length. One byte of header on every
//! continuation segment is what keeps 19 of every 20 bytes payload at MTU 23.

use crate::Error;

/// Marks a message's first segment.
pub const BEGIN: u8 = 0x80;
/// Marks a message's last segment.
pub const END: u8 = 0x40;
/// The sequence number's bits.
pub const SEQ_MASK: u8 = 0x3f;
/// Header bytes of a begin segment: control, transaction id, total length.
pub const BEGIN_HEADER_LEN: usize = 4;
/// Header bytes of a continuation segment: control.
pub const CONTINUATION_HEADER_LEN: usize = 1;

/// A parsed segment, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// A message's first segment.
    Begin {
        /// Also the last.
        end: bool,
        /// The sequence number (0 in a well-formed begin segment).
        seq: u8,
        /// The message's transaction id.
        txn: u8,
        /// The message's length.
        total: u16,
        /// The first bytes of the message.
        payload: &'a [u8],
    },
    /// Any later segment.
    Continuation {
        /// The last one.
        end: bool,
        /// The sequence number.
        seq: u8,
        /// The next bytes of the message.
        payload: &'a [u8],
    },
}

impl<'a> Segment<'a> {
    /// Parses one segment written or indicated at `mtu`.
    ///
    /// # Errors
    /// [`Error::EmptySegment`], [`Error::SegmentTooLong`] (above `min(mtu - 3, 512)`),
    /// [`Error::MtuTooSmall`], [`Error::TruncatedHeader`] for a begin segment under 4 bytes.
    pub fn parse(bytes: &'a [u8], mtu: u16) -> Result<Self, Error> {
        let max = crate::segment_capacity(mtu)?;
        if bytes.len() > max {
            return Err(Error::SegmentTooLong {
                len: bytes.len(),
                max,
            });
        }
        let Some((&control, rest)) = bytes.split_first() else {
            return Err(Error::EmptySegment);
        };
        let end = control & END != 0;
        let seq = control & SEQ_MASK;
        if control & BEGIN != 0 {
            let &[txn, t0, t1, ref payload @ ..] = rest else {
                return Err(Error::TruncatedHeader { len: bytes.len() });
            };
            Ok(Segment::Begin {
                end,
                seq,
                txn,
                total: u16::from_be_bytes([t0, t1]),
                payload,
            })
        } else if rest.is_empty() {
            Err(Error::EmptySegment)
        } else {
            Ok(Segment::Continuation {
                end,
                seq,
                payload: rest,
            })
        }
    }
}
