//! Fixed-window query limits: the arithmetic shared with the store's counters, and an
//! in-memory table for cookie requests (which must cost no store access).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use zerotouch_core::Instant;

use super::QueryLimit;

/// How many client addresses the in-memory table tracks before it forgets old windows.
const MAX_TRACKED: usize = 100_000;

impl QueryLimit {
    /// The window that holds `now`: its start and end.
    pub(crate) fn window_at(&self, now: Instant) -> (Instant, Instant) {
        let len = self.window_ms();
        let start = now.0 - now.0 % len;
        (Instant(start), Instant(start.saturating_add(len)))
    }

    fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// Whole seconds from `now` until `end` (at least one), as a rate-limited answer says them.
pub(crate) fn seconds_until(end: Instant, now: Instant) -> u16 {
    let secs = end.0.saturating_sub(now.0).div_ceil(1000).max(1);
    u16::try_from(secs).unwrap_or(u16::MAX)
}

/// Counts per client address in fixed windows, in memory.
///
/// Bounded: once [`MAX_TRACKED`] addresses are tracked, addresses of past windows are
/// forgotten; if all are current, the table starts afresh (a flood of spoofed addresses then
/// costs a few HMACs, never store access).
#[derive(Debug)]
pub(crate) struct WindowLimiter {
    limit: QueryLimit,
    table: Mutex<HashMap<IpAddr, (u64, u64)>>,
}

impl WindowLimiter {
    pub(crate) fn new(limit: QueryLimit) -> Self {
        WindowLimiter {
            limit,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `client`; over the limit, the seconds until its window ends.
    pub(crate) fn take(&self, client: IpAddr, now: Instant) -> Result<(), u16> {
        let (start, end) = self.limit.window_at(now);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_TRACKED && !table.contains_key(&client) {
            table.retain(|_, (window, _)| *window == start.0);
            if table.len() >= MAX_TRACKED {
                table.clear();
            }
        }
        let entry = table.entry(client).or_insert((start.0, 0));
        if entry.0 != start.0 {
            *entry = (start.0, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 > self.limit.queries {
            Err(seconds_until(end, now))
        } else {
            Ok(())
        }
    }
}
