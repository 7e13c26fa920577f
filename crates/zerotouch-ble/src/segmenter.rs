//! Cuts one outgoing message into segments, one at a time, at whatever MTU each write has.

use alloc::vec::Vec;

use crate::segment::{BEGIN, BEGIN_HEADER_LEN, CONTINUATION_HEADER_LEN, END, SEQ_MASK};
use crate::{Error, segment_capacity};

/// One message on its way out.
///
/// Segments are cut lazily so each takes the MTU of the moment it is written (a central may
/// renegotiate, and BlueZ reports the MTU per write). After a disconnect, [`rewind`] starts the
/// message over from its begin segment with the same transaction id, so the receiver either
/// completes it or recognises it as a copy of one it already delivered.
///
/// [`rewind`]: Segmenter::rewind
#[derive(Debug, Clone)]
pub struct Segmenter {
    message: Vec<u8>,
    txn: u8,
    total: u16,
    /// Bytes of the message already cut into segments.
    offset: usize,
    /// Sequence number of the next segment.
    seq: u8,
    begun: bool,
}

impl Segmenter {
    /// A message with transaction id `txn`.
    ///
    /// # Errors
    /// [`Error::MessageTooLong`] above `max_len` (or above 65,535, what the total field holds).
    pub fn new(txn: u8, message: Vec<u8>, max_len: usize) -> Result<Self, Error> {
        let total = u16::try_from(message.len())
            .ok()
            .filter(|&len| usize::from(len) <= max_len)
            .ok_or(Error::MessageTooLong {
                len: message.len(),
                max: max_len.min(usize::from(u16::MAX)),
            })?;
        Ok(Segmenter {
            message,
            txn,
            total,
            offset: 0,
            seq: 0,
            begun: false,
        })
    }

    /// The message's transaction id.
    pub fn txn(&self) -> u8 {
        self.txn
    }

    /// Whether every segment has been cut.
    pub fn is_done(&self) -> bool {
        self.begun && self.offset == self.message.len()
    }

    /// The next segment at `mtu`, or `None` when all have been cut.
    ///
    /// # Errors
    /// [`Error::MtuTooSmall`] below 23.
    pub fn next_segment(&mut self, mtu: u16) -> Result<Option<Vec<u8>>, Error> {
        let capacity = segment_capacity(mtu)?;
        if self.is_done() {
            return Ok(None);
        }
        let header = if self.begun {
            CONTINUATION_HEADER_LEN
        } else {
            BEGIN_HEADER_LEN
        };
        let rest = self.message.get(self.offset..).unwrap_or_default();
        let take = rest.len().min(capacity - header);
        let chunk = rest.get(..take).unwrap_or_default();
        let end = take == rest.len();
        let mut control = self.seq & SEQ_MASK;
        if end {
            control |= END;
        }
        let mut segment = Vec::with_capacity(header + take);
        if self.begun {
            segment.push(control);
        } else {
            let [t0, t1] = self.total.to_be_bytes();
            segment.extend_from_slice(&[control | BEGIN, self.txn, t0, t1]);
        }
        segment.extend_from_slice(chunk);
        self.begun = true;
        self.offset += take;
        self.seq = self.seq.wrapping_add(1) & SEQ_MASK;
        Ok(Some(segment))
    }

    /// Starts over from the begin segment (after a disconnect).
    pub fn rewind(&mut self) {
        self.offset = 0;
        self.seq = 0;
        self.begun = false;
    }
}
