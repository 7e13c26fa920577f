//! Provisioning outcomes and scan reports, kept for a configured time and then purged.

use core::future::Future;
use core::time::Duration;

use zerotouch_core::{Instant, KeyId, SessionId};

use crate::{Bands, NetworkId, SecurityType, StoreError};

/// How a provisioning attempt ended, as the device reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OutcomeKind {
    /// Joined the network.
    Joined = 1,
    /// The passphrase was refused.
    WrongPassphrase = 2,
    /// The network was not found.
    NetworkGone = 3,
    /// Associated, but DHCP failed.
    DhcpFailed = 4,
    /// Any other failure.
    Other = 5,
}

impl OutcomeKind {
    /// From the stored number.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Joined),
            2 => Some(Self::WrongPassphrase),
            3 => Some(Self::NetworkGone),
            4 => Some(Self::DhcpFailed),
            5 => Some(Self::Other),
            _ => None,
        }
    }
}

/// One outcome report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRecord {
    /// The device.
    pub device: KeyId,
    /// The session it came from.
    pub session: SessionId,
    /// The network it concerns, if known.
    pub network: Option<NetworkId>,
    /// How it ended.
    pub kind: OutcomeKind,
    /// When the server received it.
    pub at: Instant,
}

/// A network a device saw when it scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenNetwork {
    /// The SSID.
    pub ssid: Vec<u8>,
    /// Signal strength in dBm.
    pub rssi_dbm: i8,
    /// The band it was seen on.
    pub band: Bands,
    /// The channel.
    pub channel: u16,
    /// Its security.
    pub security: SecurityType,
}

/// What a device reported seeing. Stored sealed (it tells where the home is) and purged after
/// the configured retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// The device.
    pub device: KeyId,
    /// The session.
    pub session: SessionId,
    /// What it saw.
    pub networks: Vec<SeenNetwork>,
    /// When the server received it.
    pub at: Instant,
}

/// How long records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Scan reports.
    pub scan_reports: Duration,
    /// Outcome reports.
    pub outcomes: Duration,
}

impl Retention {
    /// The oldest scan report and the oldest outcome kept at `now`: records received before
    /// these instants are past retention.
    pub fn cutoffs(&self, now: Instant) -> (Instant, Instant) {
        let before = |d: Duration| {
            Instant(
                now.0
                    .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            )
        };
        (before(self.scan_reports), before(self.outcomes))
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            scan_reports: Duration::from_secs(24 * 3600),
            outcomes: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// How many records a purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeReport {
    /// Expired sessions.
    pub sessions: u64,
    /// Expired nonces.
    pub nonces: u64,
    /// Expired stored responses.
    pub responses: u64,
    /// Expired counter windows.
    pub counters: u64,
    /// Scan reports past retention.
    pub scan_reports: u64,
    /// Outcomes past retention.
    pub outcomes: u64,
}

/// Outcomes, scan reports and the purge of everything that expires.
pub trait OutcomeStore: Send + Sync {
    /// Records an outcome report.
    fn record_outcome(
        &self,
        outcome: OutcomeRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The device's outcomes, oldest first.
    fn outcomes_of_device(
        &self,
        device: &KeyId,
    ) -> impl Future<Output = Result<Vec<OutcomeRecord>, StoreError>> + Send;

    /// Records a scan report.
    fn record_scan_report(
        &self,
        report: ScanReport,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The device's scan reports, oldest first.
    fn scan_reports_of_device(
        &self,
        device: &KeyId,
    ) -> impl Future<Output = Result<Vec<ScanReport>, StoreError>> + Send;

    /// Deletes expired sessions, nonces, responses and counter windows, and scan reports and
    /// outcomes older than `retention`. Associations, the audit log, devices and keys never
    /// expire.
    fn purge_expired(
        &self,
        now: Instant,
        retention: Retention,
    ) -> impl Future<Output = Result<PurgeReport, StoreError>> + Send;
}
