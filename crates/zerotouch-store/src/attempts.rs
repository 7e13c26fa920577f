//! Counters and lock-outs: PIN attempts, signatures per device key per hour, registrar tries,
//! flow-2 verification requests per sponsor and per joiner.

use core::future::Future;
use core::time::Duration;

use zerotouch_core::Instant;

use crate::StoreError;

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CounterScope {
    /// Wrong PINs per device.
    PinAttempts,
    /// Server signatures per device key (cloud KMS bills per signature).
    Signatures,
    /// Failed registrar claims per registrar.
    RegistrarClaims,
    /// Wrong codes in flow-2 fallbacks per device.
    CodeAttempts,
    /// Flow-2 verification requests per sponsor device (the signer of the request).
    PeerSponsorRequests,
    /// Flow-2 verification requests per joiner device (the device a sponsor asks about).
    PeerJoinerRequests,
    /// DNS-binding queries per client address (a resolver, or the device itself).
    DnsClientQueries,
    /// DNS-binding queries per tunnel.
    DnsTunnelQueries,
}

impl CounterScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CounterScope::PinAttempts => "pin",
            CounterScope::Signatures => "signatures",
            CounterScope::RegistrarClaims => "registrar-claims",
            CounterScope::CodeAttempts => "code",
            CounterScope::PeerSponsorRequests => "peer-sponsor",
            CounterScope::PeerJoinerRequests => "peer-joiner",
            CounterScope::DnsClientQueries => "dns-client",
            CounterScope::DnsTunnelQueries => "dns-tunnel",
        }
    }
}

/// Names one counter: a scope and a subject (a key id, a registrar id…).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    /// What it counts.
    pub scope: CounterScope,
    /// Whose.
    pub subject: Vec<u8>,
}

impl CounterKey {
    /// A counter for `subject` in `scope`.
    pub fn new(scope: CounterScope, subject: impl Into<Vec<u8>>) -> Self {
        CounterKey {
            scope,
            subject: subject.into(),
        }
    }
}

/// When failures lock a subject out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that trigger a lock-out.
    pub max_failures: u32,
    /// Length of the first lock-out; each further one doubles, up to 64 times this.
    pub lockout: Duration,
}

/// A subject's failures and lock-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptState {
    /// Failures since the last lock-out or success.
    pub failures: u32,
    /// Lock-outs so far (each doubles the next).
    pub lockouts: u32,
    /// Locked until then, if locked now.
    pub locked_until: Option<Instant>,
}

impl AttemptState {
    /// Whether the subject is locked at `now`.
    pub fn is_locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }
}

/// The lock-out length after `lockouts` lock-outs (1-based).
pub fn lockout_length(policy: &LockoutPolicy, lockouts: u32) -> Duration {
    let factor = 1u32 << lockouts.saturating_sub(1).min(6);
    policy.lockout.saturating_mul(factor)
}

/// Pure transition for a failure, shared by every implementation so they agree.
pub fn after_failure(state: AttemptState, policy: &LockoutPolicy, now: Instant) -> AttemptState {
    if state.is_locked(now) {
        // Failures while locked were refused before they were tried: they do not count.
        return state;
    }
    let failures = state.failures.saturating_add(1);
    if failures >= policy.max_failures.max(1) {
        let lockouts = state.lockouts.saturating_add(1);
        AttemptState {
            failures: 0,
            lockouts,
            locked_until: Some(now.saturating_add(lockout_length(policy, lockouts))),
        }
    } else {
        AttemptState {
            failures,
            lockouts: state.lockouts,
            locked_until: state.locked_until,
        }
    }
}

/// Counters in time windows, and failure counters with lock-outs. Every update is atomic:
/// concurrent increments are never lost.
pub trait AttemptStore: Send + Sync {
    /// Adds one to the counter for the window starting at `window_start` and returns the new
    /// count. The row may be purged after `expires_at`.
    fn increment_counter(
        &self,
        key: CounterKey,
        window_start: Instant,
        expires_at: Instant,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records a failure under `policy` and returns the new state. While locked, failures are
    /// not counted.
    fn record_failure(
        &self,
        key: CounterKey,
        policy: LockoutPolicy,
        now: Instant,
    ) -> impl Future<Output = Result<AttemptState, StoreError>> + Send;

    /// The subject's current state.
    fn attempt_state(
        &self,
        key: CounterKey,
    ) -> impl Future<Output = Result<AttemptState, StoreError>> + Send;

    /// Clears failures after a success (lock-out history is kept so the next lock-out is
    /// still longer).
    fn clear_failures(
        &self,
        key: CounterKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
