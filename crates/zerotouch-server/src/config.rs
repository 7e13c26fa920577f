//! What an operator decides: suites, lifetimes, limits and the registrar policy.

use core::time::Duration;

use zerotouch_core::CipherSuite;
use zerotouch_store::{LockoutPolicy, Retention};

/// What the setup service does with a device the store associates with more than one account
/// (rows an import or an operator tool created; the registrar itself never creates them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmbiguousKeyPolicy {
    /// Refuse the device until an operator resolves it.
    Refuse,
    /// Use the most recent association.
    MostRecent,
}

/// When the device must prove its PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinPolicy {
    /// Whenever the device record holds a PIN (the default: the PIN is what proves the
    /// owner's box is the box being set up).
    WhenRecorded,
    /// Never (deployments whose devices have no PIN on the label).
    Never,
}

/// The setup service's configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// HPKE suites in the server's order of preference.
    pub suites: Vec<CipherSuite>,
    /// How long a setup session lives in the store.
    pub session_lifetime: Duration,
    /// How long the server's nonce (and so the proof) stays usable: the device must send its
    /// credential request within this time.
    pub nonce_lifetime: Duration,
    /// When a PIN is required.
    pub pin_policy: PinPolicy,
    /// PIN failures per device before a lock-out, and its length (doubling each time).
    pub pin_lockout: LockoutPolicy,
    /// Signatures per device key per hour (cloud KMS bills per signature).
    pub signatures_per_hour: u64,
    /// Devices with several associations.
    pub ambiguous_key: AmbiguousKeyPolicy,
    /// Wrong in-box PINs a registrar may submit per device before a lock-out.
    pub registrar_lockout: LockoutPolicy,
    /// How long a device is told to wait after a refusal.
    pub refusal_retry_after: Duration,
    /// Retention of scan reports and outcomes.
    pub retention: Retention,
    /// How often `handle` purges expired rows on the side (0: never; call
    /// [`SetupService::purge_expired`](crate::SetupService::purge_expired) yourself).
    pub purge_interval: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            suites: CipherSuite::SUPPORTED.to_vec(),
            session_lifetime: Duration::from_secs(600),
            nonce_lifetime: Duration::from_secs(120),
            pin_policy: PinPolicy::WhenRecorded,
            pin_lockout: LockoutPolicy {
                max_failures: 5,
                lockout: Duration::from_secs(15 * 60),
            },
            signatures_per_hour: 60,
            ambiguous_key: AmbiguousKeyPolicy::Refuse,
            registrar_lockout: LockoutPolicy {
                max_failures: 5,
                lockout: Duration::from_secs(15 * 60),
            },
            refusal_retry_after: Duration::from_secs(60),
            retention: Retention::default(),
            purge_interval: Duration::from_secs(300),
        }
    }
}

/// The association service's configuration (flow 2).
#[derive(Debug, Clone)]
pub struct AssociationConfig {
    /// How long a joiner's nonce is remembered: within this time a second verification request
    /// with the same nonce is refused, whatever its session. Longer than any nonce lifetime a
    /// joiner accepts on its own clock (which may be wrong), so a captured request cannot be
    /// replayed while the joiner might still take the answer.
    pub nonce_memory: Duration,
    /// How long the response to a request is kept for identical retransmissions.
    pub response_lifetime: Duration,
    /// The window the request limits count in.
    pub rate_window: Duration,
    /// Verification requests one sponsor may make per window.
    pub requests_per_sponsor: u64,
    /// Verification requests naming one joiner per window (whichever sponsors make them).
    pub requests_per_joiner: u64,
    /// How long the sponsor waits for the joiner's answer, on its own clock (sent in the
    /// verification data).
    pub answer_window: Duration,
    /// How long a sponsor is told to wait after being refused as not authorized or not
    /// associated.
    pub refusal_retry_after: Duration,
}

impl Default for AssociationConfig {
    fn default() -> Self {
        AssociationConfig {
            nonce_memory: Duration::from_secs(24 * 3600),
            response_lifetime: Duration::from_secs(600),
            rate_window: Duration::from_secs(3600),
            requests_per_sponsor: 20,
            requests_per_joiner: 10,
            answer_window: Duration::from_millis(30_000),
            refusal_retry_after: Duration::from_secs(60),
        }
    }
}
