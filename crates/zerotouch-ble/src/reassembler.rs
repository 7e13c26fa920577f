//! Puts incoming segments back together into messages.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};
use zerotouch_core::Instant;

use crate::segment::{SEQ_MASK, Segment};
use crate::{Error, LinkConfig};

/// What one segment completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Nothing yet: the message goes on.
    Partial,
    /// A whole message, delivered once.
    Message(Vec<u8>),
    /// A message already delivered, sent again after a reconnect (same transaction id, same
    /// bytes): dropped.
    Duplicate {
        /// The transaction id of the message sent again.
        txn: u8,
    },
}

#[derive(Debug, Clone)]
struct InProgress {
    txn: u8,
    total: usize,
    /// Sequence number of the next segment.
    next_seq: u8,
    /// The bytes so far.
    bytes: Vec<u8>,
    received: usize,
    deadline: Instant,
}

/// Reassembles the messages of one direction of a link.
///
/// Every rule of the segment format is checked on every segment: size against this write's
/// MTU, sequence, announced length, end marker. A message begun and not finished within the
/// reassembly timeout is dropped. The transaction id and SHA-256 digest of the last message
/// delivered are kept across reconnects, so a message the sender repeats because it never saw
/// the last write acknowledged is recognised and not delivered twice, while a new message
/// that merely reuses the id (a central that restarted, its ids from 0 again) is delivered.
#[derive(Debug, Clone)]
pub struct Reassembler {
    max_message_len: usize,
    timeout_ms: u64,
    in_progress: Option<InProgress>,
    /// Transaction id and digest of the last message delivered.
    last_delivered: Option<(u8, [u8; 32])>,
}

impl Reassembler {
    /// A reassembler with `config`'s message limit and reassembly timeout.
    pub fn new(config: &LinkConfig) -> Self {
        Reassembler {
            max_message_len: config.max_message_len,
            timeout_ms: config.reassembly_timeout_ms,
            in_progress: None,
            last_delivered: None,
        }
    }

    /// Takes one segment written or indicated at `mtu`.
    ///
    /// # Errors
    /// Any framing variant of [`Error`]; the message being reassembled, if any, is dropped.
    pub fn receive(&mut self, now: Instant, segment: &[u8], mtu: u16) -> Result<Received, Error> {
        let result = self.take(now, segment, mtu);
        if result.is_err() {
            self.in_progress = None;
        }
        result
    }

    fn take(&mut self, now: Instant, segment: &[u8], mtu: u16) -> Result<Received, Error> {
        // A deadline that passed counts even if the caller has not run its timer yet.
        self.handle_timeout(now)?;
        match Segment::parse(segment, mtu)? {
            Segment::Begin {
                end,
                seq,
                txn,
                total,
                payload,
            } => {
                if let Some(current) = &self.in_progress {
                    return Err(Error::UnexpectedBegin { txn: current.txn });
                }
                if seq != 0 {
                    return Err(Error::OutOfOrder {
                        expected: 0,
                        got: seq,
                    });
                }
                let total = usize::from(total);
                if total > self.max_message_len {
                    return Err(Error::MessageTooLong {
                        len: total,
                        max: self.max_message_len,
                    });
                }
                let mut progress = InProgress {
                    txn,
                    total,
                    next_seq: 1,
                    bytes: Vec::with_capacity(total),
                    received: 0,
                    deadline: Instant(now.0.saturating_add(self.timeout_ms)),
                };
                Self::append(&mut progress, payload, end)?;
                self.finish_or_keep(progress, end)
            }
            Segment::Continuation { end, seq, payload } => {
                let Some(mut progress) = self.in_progress.take() else {
                    return Err(Error::NoMessageInProgress);
                };
                if seq != progress.next_seq {
                    let previous = progress.next_seq.wrapping_sub(1) & SEQ_MASK;
                    return Err(if seq == previous {
                        Error::DuplicateSegment { seq }
                    } else {
                        Error::OutOfOrder {
                            expected: progress.next_seq,
                            got: seq,
                        }
                    });
                }
                progress.next_seq = progress.next_seq.wrapping_add(1) & SEQ_MASK;
                Self::append(&mut progress, payload, end)?;
                self.finish_or_keep(progress, end)
            }
        }
    }

    fn append(progress: &mut InProgress, payload: &[u8], end: bool) -> Result<(), Error> {
        let received = progress.received + payload.len();
        if received > progress.total {
            return Err(Error::Overrun {
                total: progress.total,
            });
        }
        if end && received < progress.total {
            return Err(Error::Truncated {
                received,
                total: progress.total,
            });
        }
        if !end && received == progress.total {
            return Err(Error::MissingEnd {
                total: progress.total,
            });
        }
        progress.received = received;
        progress.bytes.extend_from_slice(payload);
        Ok(())
    }

    fn finish_or_keep(&mut self, progress: InProgress, end: bool) -> Result<Received, Error> {
        if !end {
            self.in_progress = Some(progress);
            return Ok(Received::Partial);
        }
        let digest: [u8; 32] = Sha256::digest(&progress.bytes).into();
        if self.last_delivered == Some((progress.txn, digest)) {
            return Ok(Received::Duplicate { txn: progress.txn });
        }
        self.last_delivered = Some((progress.txn, digest));
        Ok(Received::Message(progress.bytes))
    }

    /// The connection went away: a half-received message is dropped (its sender starts it
    /// over); the last delivered transaction id is kept.
    pub fn link_reset(&mut self) {
        self.in_progress = None;
    }

    /// Whether a message is half received.
    pub fn is_reassembling(&self) -> bool {
        self.in_progress.is_some()
    }

    /// When the message being reassembled times out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_progress.as_ref().map(|p| p.deadline)
    }

    /// Drops a message begun too long ago.
    ///
    /// # Errors
    /// [`Error::ReassemblyTimeout`] when one was dropped.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        match &self.in_progress {
            Some(progress) if now >= progress.deadline => {
                let txn = progress.txn;
                self.in_progress = None;
                Err(Error::ReassemblyTimeout { txn })
            }
            _ => Ok(()),
        }
    }
}
