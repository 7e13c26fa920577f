//! The radio environment: which access points the device can see, and what happens when it
//! tries to join one.

use zerotouch_core::flow1::ReportedNetwork;
use zerotouch_device::{JoinFailure, JoinResult};

/// One access point on the air.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessPoint {
    /// Its SSID.
    pub ssid: Vec<u8>,
    /// Band bit (1 = 2.4 GHz, 2 = 5 GHz).
    pub band: u8,
    /// Security bits it offers (1 = WPA2-Personal, 2 = WPA3-Personal).
    pub security: u8,
    /// The passphrase it accepts.
    pub passphrase: Vec<u8>,
    /// Path loss the device measures, in dB (lower is stronger).
    pub signal_loss_db: u8,
    /// Whether association works but DHCP never answers.
    pub dhcp_broken: bool,
}

impl core::fmt::Debug for AccessPoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AccessPoint")
            .field("ssid", &String::from_utf8_lossy(&self.ssid))
            .field("band", &self.band)
            .field("security", &self.security)
            .field("passphrase", &"<redacted>")
            .field("signal_loss_db", &self.signal_loss_db)
            .finish()
    }
}

impl AccessPoint {
    /// An access point that accepts `passphrase`.
    pub fn new(ssid: &str, band: u8, security: u8, passphrase: &[u8], signal_loss_db: u8) -> Self {
        AccessPoint {
            ssid: ssid.as_bytes().to_vec(),
            band,
            security,
            passphrase: passphrase.to_vec(),
            signal_loss_db,
            dhcp_broken: false,
        }
    }

    fn channel(&self) -> u16 {
        if self.band == 1 { 6 } else { 36 }
    }
}

/// Every access point in range of the device.
#[derive(Debug, Clone, Default)]
pub struct Air {
    /// The access points, in no particular order.
    pub access_points: Vec<AccessPoint>,
}

impl Air {
    /// What a radio supporting `radio_bands` sees.
    pub fn scan(&self, radio_bands: u8) -> Vec<ReportedNetwork> {
        self.access_points
            .iter()
            .filter(|ap| ap.band & radio_bands != 0)
            .map(|ap| ReportedNetwork {
                ssid: ap.ssid.clone(),
                signal_loss_db: ap.signal_loss_db,
                band: ap.band,
                channel: ap.channel(),
                security: ap.security,
            })
            .collect()
    }

    /// Tries to join `ssid` with `security` and `passphrase` from a radio supporting
    /// `radio_bands`.
    pub fn join(
        &self,
        radio_bands: u8,
        ssid: &[u8],
        security: u8,
        passphrase: &[u8],
    ) -> JoinResult {
        let mut visible = self
            .access_points
            .iter()
            .filter(|ap| ap.ssid == ssid && ap.band & radio_bands != 0)
            .peekable();
        if visible.peek().is_none() {
            return JoinResult::Failed(JoinFailure::NetworkGone);
        }
        // Any access point of the network (either band) that accepts the passphrase will do.
        let mut authenticated = false;
        for ap in visible {
            if ap.security & security != 0 && ap.passphrase == passphrase {
                if !ap.dhcp_broken {
                    return JoinResult::Joined;
                }
                authenticated = true;
            }
        }
        JoinResult::Failed(if authenticated {
            JoinFailure::DhcpFailed
        } else {
            JoinFailure::WrongPassphrase
        })
    }
}
