//! One request waiting for its answer: its exact bytes (retransmitted unchanged), its
//! timer, and which answer it accepts.

use alloc::vec::Vec;

use zerotouch_core::flow1::seq_of;
use zerotouch_core::{Flow, Header, Instant, MessageTag, SessionId};

use crate::config::{Path, RetryPolicy, Transmit};
use crate::event::Refusal;

/// `now + ms`, saturating.
pub(crate) fn after(now: Instant, ms: u64) -> Instant {
    Instant(now.0.saturating_add(ms))
}

#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) path: Path,
    pub(crate) session_id: SessionId,
    /// The tag of the answer this request waits for.
    answer: MessageTag,
    /// The request's envelope, as first sent: servers answer an identical retransmission with
    /// their stored answer, so it must never be rebuilt (new nonces would make it a new request).
    bytes: Vec<u8>,
    timeout_ms: u64,
    pub(crate) deadline: Instant,
    retransmits: u32,
}

impl Exchange {
    pub(crate) fn new(
        now: Instant,
        retry: &RetryPolicy,
        path: Path,
        session_id: SessionId,
        answer: MessageTag,
        bytes: Vec<u8>,
    ) -> Self {
        Exchange {
            path,
            session_id,
            answer,
            bytes,
            timeout_ms: retry.initial_timeout_ms,
            deadline: after(now, retry.initial_timeout_ms),
            retransmits: 0,
        }
    }

    pub(crate) fn transmit(&self) -> Transmit {
        Transmit {
            path: self.path,
            bytes: self.bytes.clone(),
        }
    }

    /// At the deadline: the same bytes again with a doubled wait, or `None` when the
    /// retransmissions are used up.
    pub(crate) fn retransmit(&mut self, now: Instant, retry: &RetryPolicy) -> Option<Transmit> {
        if self.retransmits >= retry.max_retransmits {
            return None;
        }
        self.retransmits = self.retransmits.saturating_add(1);
        self.timeout_ms = self
            .timeout_ms
            .saturating_mul(2)
            .min(retry.max_timeout_ms)
            .max(retry.initial_timeout_ms.min(retry.max_timeout_ms));
        self.deadline = after(now, self.timeout_ms);
        Some(self.transmit())
    }

    /// An unsigned error arrived: retry no sooner than the server asked (up to the longest
    /// timeout), nor sooner than the back-off, and never sooner than already planned (an
    /// injected error cannot speed up retransmissions). Each hint uses up one retransmission,
    /// so errors injected before every deadline cannot hold the session open for ever: the
    /// session still fails after the retransmission budget. A valid answer is still accepted
    /// meanwhile.
    pub(crate) fn hint(&mut self, now: Instant, retry_after_s: u32, retry: &RetryPolicy) {
        self.retransmits = self.retransmits.saturating_add(1);
        let wait = u64::from(retry_after_s)
            .saturating_mul(1000)
            .min(retry.max_timeout_ms)
            .max(self.timeout_ms);
        self.deadline = self.deadline.max(after(now, wait));
    }

    /// Whether `header` can be the answer (or an error answering this request).
    pub(crate) fn check_header(&self, header: &Header) -> Result<(), Refusal> {
        if header.tag != self.answer && header.tag != MessageTag::Error {
            return Err(Refusal::Unexpected);
        }
        // An error answering a request carries the request's number plus one: the answer's.
        if header.flow != Flow::ServerSetup
            || header.session_id != self.session_id
            || header.seq != seq_of(self.answer)
        {
            return Err(Refusal::WrongSession);
        }
        Ok(())
    }
}
