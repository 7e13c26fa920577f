//! Connection caps and request rate limits, per address and per certificate.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::RateLimit;

/// Counts open connections, in all and per address.
#[derive(Debug)]
pub(crate) struct ConnectionTracker {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    max_total: usize,
    max_per_address: usize,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionRefusal {
    ServerFull,
    AddressFull,
}

impl ConnectionRefusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConnectionRefusal::ServerFull => "server_full",
            ConnectionRefusal::AddressFull => "address_full",
        }
    }
}

/// Holds one connection's place; gives it back when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    tracker: Arc<ConnectionTracker>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.tracker.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl ConnectionTracker {
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(ConnectionTracker {
            open: Mutex::new((0, HashMap::new())),
            max_total,
            max_per_address,
        })
    }

    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, ConnectionRefusal> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.0 >= self.max_total {
            return Err(ConnectionRefusal::ServerFull);
        }
        let from_ip = open.1.entry(ip).or_insert(0);
        if *from_ip >= self.max_per_address {
            return Err(ConnectionRefusal::AddressFull);
        }
        *from_ip += 1;
        open.0 += 1;
        Ok(ConnectionSlot {
            tracker: Arc::clone(self),
            ip,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets per key. Full buckets are forgotten when the table grows, so a flood of
/// distinct keys costs bounded memory.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    limit: RateLimit,
    buckets: Mutex<HashMap<K, Bucket>>,
    max_tracked: usize,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub(crate) fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
            max_tracked: 100_000,
        }
    }

    /// Takes one token for `key`; if none is left, how long until one is.
    pub(crate) fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.limit.burst.max(1));
        let rate = self.limit.per_second.max(f64::MIN_POSITIVE);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= self.max_tracked && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_until_it_refills() {
        let limiter = RateLimiter::new(RateLimit {
            burst: 3,
            per_second: 1.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(&1u8, t0).is_ok());
        }
        let wait = limiter.take(&1u8, t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        // Another key has its own bucket.
        assert!(limiter.take(&2u8, t0).is_ok());
        assert!(limiter.take(&1u8, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn connections_per_address_are_capped_and_given_back() {
        let tracker = ConnectionTracker::new(10, 2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let a = tracker.admit(ip).unwrap();
        let _b = tracker.admit(ip).unwrap();
        assert_eq!(
            tracker.admit(ip).unwrap_err(),
            ConnectionRefusal::AddressFull
        );
        assert!(tracker.admit([127, 0, 0, 2].into()).is_ok());
        drop(a);
        assert!(tracker.admit(ip).is_ok());
    }
}
