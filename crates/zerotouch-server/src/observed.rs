//! What the service keeps of what devices tell it: scan reports (for support: why did this
//! device get no credential?) and outcomes, both under the store's retention.

use zerotouch_core::flow1::{DeviceReport, JoinOutcome};
use zerotouch_core::{Instant, KeyId, SessionId};
use zerotouch_store::{Bands, OutcomeKind, ScanReport, SecurityType, SeenNetwork};

/// The store's record of a reported outcome.
pub(crate) fn outcome_kind(outcome: JoinOutcome) -> OutcomeKind {
    match outcome {
        JoinOutcome::Joined => OutcomeKind::Joined,
        JoinOutcome::WrongPassphrase => OutcomeKind::WrongPassphrase,
        JoinOutcome::NetworkGone => OutcomeKind::NetworkGone,
        JoinOutcome::DhcpFailed => OutcomeKind::DhcpFailed,
    }
}

/// The scan report of a session: the secured networks the device saw. The PIN is not part
/// of it.
pub(crate) fn scan_report(
    device: &KeyId,
    session: SessionId,
    report: &DeviceReport,
    now: Instant,
) -> ScanReport {
    let networks = report
        .networks
        .iter()
        .filter_map(|n| {
            let security = match n.security {
                1 => SecurityType::Wpa2Personal,
                2 => SecurityType::Wpa3Personal,
                3 => SecurityType::Wpa2Wpa3Transition,
                _ => return None,
            };
            Some(SeenNetwork {
                ssid: n.ssid.clone(),
                // The wire carries the loss below 0 dBm (0..=127).
                rssi_dbm: i8::try_from(n.signal_loss_db).map_or(i8::MIN, |l| -l),
                band: Bands::from_bits(n.band)?,
                channel: n.channel,
                security,
            })
        })
        .collect();
    ScanReport {
        device: *device,
        session,
        networks,
        at: now,
    }
}
