//! What the firmware tells the session once (configuration) and at each call (paths, join
//! results, triggers).

use alloc::vec::Vec;

use zerotouch_core::flow1::DeviceIdentityRef;
use zerotouch_core::{CipherSuite, Pin, Transport};

/// The device's fixed configuration. `Debug` redacts the PIN.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// The transport the setup exchange uses (entered in the transcript).
    pub transport: Transport,
    /// The transport the outcome report and the revocation check use, over the home network.
    pub home_transport: Transport,
    /// How the hello names the device key: its certificate or its SubjectPublicKeyInfo.
    pub identity: DeviceIdentityRef,
    /// The PIN printed for this device, if it has one. Sent sealed, and only when the
    /// authenticated server asks for it.
    pub pin: Option<Pin>,
    /// Band bits the radio supports (1 = 2.4 GHz, 2 = 5 GHz, 4 = 6 GHz).
    pub radio_bands: u8,
    /// Security bits the radio supports (1 = WPA2-Personal, 2 = WPA3-Personal).
    pub radio_security: u8,
    /// HPKE suites offered, in the device's order of preference (1 to 8).
    pub suites: Vec<CipherSuite>,
    /// Timeouts, retransmissions and the session budget.
    pub retry: RetryPolicy,
}

/// How long to wait, how often to retransmit, how many sessions to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First wait for an answer, in ms; also the first back-off between sessions.
    pub initial_timeout_ms: u64,
    /// Longest wait (each timeout doubles the last, up to this).
    pub max_timeout_ms: u64,
    /// Identical retransmissions of one request before the session fails.
    pub max_retransmits: u32,
    /// Sessions that may fail in a row before the device gives up (also bounds the
    /// revocation check's attempts).
    pub max_sessions: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_timeout_ms: 2000,
            max_timeout_ms: 32000,
            max_retransmits: 4,
            max_sessions: 5,
        }
    }
}

impl RetryPolicy {
    /// The wait after `n` consecutive failures (n >= 1): the initial timeout doubled n - 1
    /// times, capped at the maximum.
    pub fn back_off_ms(&self, n: u32) -> u64 {
        let factor = 1u64.checked_shl(n.saturating_sub(1)).unwrap_or(u64::MAX);
        self.initial_timeout_ms
            .saturating_mul(factor)
            .min(self.max_timeout_ms)
    }
}

/// Why setup starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Out of the box.
    FirstBoot,
    /// No home network is configured (after a reset).
    NoHomeNetwork,
    /// The configured home network has disappeared.
    HomeNetworkGone,
    /// Someone pressed the setup button.
    Button,
    /// A verified revocation dropped the key the last setup trusted.
    KeyRevoked,
    /// The device rebooted in the middle of a setup (see [`crate::DeviceSession::new`]).
    Resume,
}

/// Which network a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// The restricted setup network, to the setup server.
    Setup,
    /// The home network, after joining.
    Home,
}

/// Bytes the firmware must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Over which network.
    pub path: Path,
    /// The whole envelope.
    pub bytes: Vec<u8>,
}

/// What happened when the firmware tried to join a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinResult {
    /// Associated and got an address.
    Joined,
    /// It did not work.
    Failed(JoinFailure),
}

/// Why a join failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinFailure {
    /// Authentication failed.
    WrongPassphrase,
    /// The network is no longer visible.
    NetworkGone,
    /// Associated, but no address.
    DhcpFailed,
}
