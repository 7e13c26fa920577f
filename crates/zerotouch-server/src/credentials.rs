//! Which of an account's networks a device gets, and how: only networks the device reported
//! seeing, only in a security mode the access point it saw advertises, the owner configured
//! and its radio supports, and only on a band its radio has.

use zerotouch_core::Passphrase;
use zerotouch_core::flow1::{DeviceReport, EntryStatus, MAX_ENTRIES};
use zerotouch_store::{Network, SecurityType};

/// Security bits on the wire (report and response).
const WPA2: u8 = 1;
const WPA3: u8 = 2;

/// One planned entry of a credential response.
pub(crate) struct PlannedEntry<'a> {
    pub ssid: Vec<u8>,
    /// The mode to join with (sealed entries), else the mode the owner configured.
    pub security: u8,
    pub status: EntryStatus,
    /// The passphrase to seal, for sealed entries.
    pub passphrase: Option<&'a Passphrase>,
}

fn modes(security: SecurityType) -> u8 {
    match security {
        SecurityType::Wpa2Personal => WPA2,
        SecurityType::Wpa3Personal => WPA3,
        SecurityType::Wpa2Wpa3Transition => WPA2 | WPA3,
    }
}

/// Plans the response to `report` from the account's `networks`: one entry per reported SSID
/// the account owns, strongest sighting first, at most [`MAX_ENTRIES`].
pub(crate) fn plan<'a>(networks: &'a [Network], report: &DeviceReport) -> Vec<PlannedEntry<'a>> {
    let mut sightings: Vec<_> = report.networks.iter().collect();
    sightings.sort_by_key(|n| n.signal_loss_db);
    let mut out: Vec<PlannedEntry<'a>> = Vec::new();
    for seen in sightings {
        if out.len() == MAX_ENTRIES {
            break;
        }
        if out.iter().any(|e| e.ssid == seen.ssid) {
            continue;
        }
        let Some(network) = networks.iter().find(|n| n.ssid == seen.ssid) else {
            continue;
        };
        let configured = modes(network.security);
        // The access point the device saw must offer a mode the owner configured: anything
        // else is a downgrade or a look-alike, and the passphrase must not go to it.
        let offered = seen.security & configured;
        let usable = offered & report.radio_security;
        let band_ok =
            network.bands.bits() & report.radio_bands != 0 && seen.band & report.radio_bands != 0;
        let (status, security, passphrase) = if offered == 0 {
            (EntryStatus::Unavailable, configured, None)
        } else if usable == 0 || !band_ok {
            (EntryStatus::UnsupportedByRadio, configured, None)
        } else {
            let mode = if usable & WPA3 != 0 { WPA3 } else { WPA2 };
            (EntryStatus::Sealed, mode, Some(&network.passphrase))
        };
        out.push(PlannedEntry {
            ssid: seen.ssid.clone(),
            security,
            status,
            passphrase,
        });
    }
    out
}
