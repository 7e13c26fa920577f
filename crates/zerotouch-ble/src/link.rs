//! Both directions of one GATT link, sans-IO: messages in, segments out, and back.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use zerotouch_core::Instant;

use crate::reassembler::{Reassembler, Received};
use crate::segmenter::Segmenter;
use crate::{Error, MAX_MESSAGE_LEN};

/// Limits and timeouts of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// The longest message sent or accepted.
    pub max_message_len: usize,
    /// How long a begun message may take to finish arriving.
    pub reassembly_timeout_ms: u64,
    /// How long the link may see nothing move (no segment received or confirmed, nothing
    /// queued) before it reports [`Error::IdleTimeout`]. Long enough for a person to read a
    /// code on one device and confirm it on another.
    pub idle_timeout_ms: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            max_message_len: MAX_MESSAGE_LEN,
            reassembly_timeout_ms: 30_000,
            idle_timeout_ms: 180_000,
        }
    }
}

/// What the link counted: what the benchmarks report, and what a test checks against the
/// bytes a bearer really carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Messages handed to [`BleLink::send`].
    pub messages_sent: u64,
    /// Their bytes.
    pub message_bytes_sent: u64,
    /// Segments handed out by [`BleLink::poll_segment`] (each one ATT write or indication),
    /// repeats after a reconnect included.
    pub segments_sent: u64,
    /// Their bytes: the attribute values, ATT headers excluded.
    pub segment_bytes_sent: u64,
    /// Segments taken by [`BleLink::receive_segment`].
    pub segments_received: u64,
    /// Messages delivered.
    pub messages_received: u64,
    /// Copies of delivered messages recognised and dropped.
    pub duplicates_dropped: u64,
}

/// One side of a GATT link: a queue of outgoing messages cut into segments one at a time, and
/// the reassembly of incoming ones.
///
/// The caller moves bytes: it writes (central) or indicates (peripheral) each segment from
/// [`poll_segment`](Self::poll_segment), calls [`segment_confirmed`](Self::segment_confirmed)
/// when the write response or the indication's confirmation comes back, feeds every segment
/// the peer sends to [`receive_segment`](Self::receive_segment), and calls
/// [`link_lost`](Self::link_lost) on a disconnect: the message in flight is then sent again
/// from its start on the next connection, and the receiver drops it if it had already
/// delivered it. Only one segment is in flight at a time, as ATT allows one outstanding
/// request and one outstanding indication.
///
/// The peripheral keeps one link per central address for as long as a reconnect is
/// plausible; the central keeps one per peripheral and starts afresh when the peripheral's
/// [`ServiceInfo::instance`](crate::ServiceInfo::instance) changes.
#[derive(Debug, Clone)]
pub struct BleLink {
    config: LinkConfig,
    queue: VecDeque<Segmenter>,
    in_flight: bool,
    next_txn: u8,
    reassembler: Reassembler,
    last_activity: Instant,
    stats: LinkStats,
}

impl BleLink {
    /// A new link, quiet since `now`.
    pub fn new(config: LinkConfig, now: Instant) -> Self {
        BleLink {
            reassembler: Reassembler::new(&config),
            config,
            queue: VecDeque::new(),
            in_flight: false,
            next_txn: 0,
            last_activity: now,
            stats: LinkStats::default(),
        }
    }

    /// The link's limits.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Queues a message; returns its transaction id.
    ///
    /// # Errors
    /// [`Error::MessageTooLong`].
    pub fn send(&mut self, now: Instant, message: Vec<u8>) -> Result<u8, Error> {
        let txn = self.next_txn;
        let len = message.len() as u64;
        let segmenter = Segmenter::new(txn, message, self.config.max_message_len)?;
        if self.queue.is_empty() {
            self.last_activity = now;
        }
        self.queue.push_back(segmenter);
        self.next_txn = self.next_txn.wrapping_add(1);
        self.stats.messages_sent += 1;
        self.stats.message_bytes_sent += len;
        Ok(txn)
    }

    /// The next segment to write or indicate at `mtu`, when none is waiting for its
    /// confirmation.
    ///
    /// # Errors
    /// [`Error::MtuTooSmall`] below 23.
    pub fn poll_segment(&mut self, mtu: u16) -> Result<Option<Vec<u8>>, Error> {
        if self.in_flight {
            return Ok(None);
        }
        let Some(current) = self.queue.front_mut() else {
            return Ok(None);
        };
        let segment = current.next_segment(mtu)?;
        if let Some(segment) = &segment {
            self.in_flight = true;
            self.stats.segments_sent += 1;
            self.stats.segment_bytes_sent += segment.len() as u64;
        }
        Ok(segment)
    }

    /// The segment in flight was acknowledged (write response, indication confirmation).
    pub fn segment_confirmed(&mut self, now: Instant) {
        if !self.in_flight {
            return;
        }
        self.in_flight = false;
        self.last_activity = now;
        if self.queue.front().is_some_and(Segmenter::is_done) {
            self.queue.pop_front();
        }
    }

    /// Takes one segment from the peer, written or indicated at `mtu`; returns a message when
    /// this segment completed one.
    ///
    /// # Errors
    /// Any framing variant of [`Error`]: the message being reassembled is dropped.
    pub fn receive_segment(
        &mut self,
        now: Instant,
        segment: &[u8],
        mtu: u16,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.stats.segments_received += 1;
        let received = self.reassembler.receive(now, segment, mtu)?;
        // Only a segment that keeps to the format counts as the link moving: a peer sending
        // garbage still reaches the idle timeout.
        self.last_activity = now;
        match received {
            Received::Partial => Ok(None),
            Received::Message(message) => {
                self.stats.messages_received += 1;
                Ok(Some(message))
            }
            Received::Duplicate { .. } => {
                self.stats.duplicates_dropped += 1;
                Ok(None)
            }
        }
    }

    /// The connection went away: the unconfirmed message starts over on the next one, a
    /// half-received one is dropped.
    pub fn link_lost(&mut self, now: Instant) {
        self.in_flight = false;
        if let Some(current) = self.queue.front_mut() {
            current.rewind();
        }
        self.reassembler.link_reset();
        self.last_activity = now;
    }

    /// Whether nothing is queued or in flight.
    pub fn is_flushed(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a segment waits for its confirmation.
    pub fn is_in_flight(&self) -> bool {
        self.in_flight
    }

    /// What the link counted so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// The next deadline: the reassembly timeout of a begun message, or the idle timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = Instant(
            self.last_activity
                .0
                .saturating_add(self.config.idle_timeout_ms),
        );
        Some(match self.reassembler.poll_timeout() {
            Some(reassembly) if reassembly < idle => reassembly,
            _ => idle,
        })
    }

    /// Applies the deadlines that have passed.
    ///
    /// # Errors
    /// [`Error::ReassemblyTimeout`] when a begun message was dropped; [`Error::IdleTimeout`]
    /// when nothing moved for the idle timeout (the caller disconnects).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.reassembler.handle_timeout(now)?;
        if now.0
            >= self
                .last_activity
                .0
                .saturating_add(self.config.idle_timeout_ms)
        {
            return Err(Error::IdleTimeout);
        }
        Ok(())
    }
}
