//! The opened credentials and the order the device tries them in.

use alloc::vec::Vec;

use zerotouch_core::Passphrase;
use zerotouch_core::flow1::ReportedNetwork;

/// Security bit of WPA3-Personal (SAE).
const WPA3: u8 = 2;

/// One opened credential. `Debug` redacts the passphrase, which is zeroized on drop.
#[derive(Debug, Clone)]
pub(crate) struct Credential {
    pub(crate) ssid: Vec<u8>,
    pub(crate) security: u8,
    pub(crate) passphrase: Passphrase,
}

/// Strongest first: lowest signal loss the device's own scan reported for the SSID (an SSID
/// it did not see goes last), then WPA3 before WPA2; otherwise the server's order. The
/// device's own scan decides rather than the server's order, which it cannot check.
pub(crate) fn strongest_first(credentials: &mut [Credential], scan: &[ReportedNetwork]) {
    let loss = |ssid: &[u8]| {
        scan.iter()
            .filter(|n| n.ssid == ssid)
            .map(|n| u16::from(n.signal_loss_db))
            .min()
            .unwrap_or(u16::MAX)
    };
    credentials.sort_by_key(|c| (loss(&c.ssid), c.security & WPA3 == 0));
}
