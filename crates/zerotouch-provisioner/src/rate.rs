//! Rate and volume accounting: a token bucket per rate limit and a counter per 24-hour window.

use zerotouch_core::Instant;

use crate::RateLimit;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// A token bucket in bytes, refilled from the caller's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenBucket {
    limit: RateLimit,
    /// Tokens in thousandths of a byte, so slow refills do not round away.
    milli_tokens: u128,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        TokenBucket {
            limit,
            milli_tokens: u128::from(limit.burst_bytes) * 1000,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed_ms = u128::from(now.0.saturating_sub(self.last.0));
        let cap = u128::from(self.limit.burst_bytes) * 1000;
        let added = elapsed_ms.saturating_mul(u128::from(self.limit.bytes_per_second));
        self.milli_tokens = self.milli_tokens.saturating_add(added).min(cap);
        if now > self.last {
            self.last = now;
        }
    }

    /// Whether `len` bytes may pass now (without taking them).
    pub(crate) fn allows(&mut self, len: u32, now: Instant) -> bool {
        self.refill(now);
        self.milli_tokens >= u128::from(len) * 1000
    }

    /// Takes `len` bytes; call only after `allows`.
    pub(crate) fn take(&mut self, len: u32) {
        self.milli_tokens = self.milli_tokens.saturating_sub(u128::from(len) * 1000);
    }
}

/// Bytes used in the current 24-hour window (windows count from the clock's origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DailyVolume {
    cap: u64,
    window: u64,
    used: u64,
}

impl DailyVolume {
    pub(crate) fn new(cap: u64, now: Instant) -> Self {
        DailyVolume {
            cap,
            window: now.0 / DAY_MS,
            used: 0,
        }
    }

    pub(crate) fn allows(&mut self, len: u32, now: Instant) -> bool {
        let window = now.0 / DAY_MS;
        if window != self.window {
            self.window = window;
            self.used = 0;
        }
        self.used.saturating_add(u64::from(len)) <= self.cap
    }

    pub(crate) fn take(&mut self, len: u32) {
        self.used = self.used.saturating_add(u64::from(len));
    }

    /// Start of the next window, when the count resets.
    pub(crate) fn next_reset(&self) -> Instant {
        Instant(self.window.saturating_add(1).saturating_mul(DAY_MS))
    }
}
