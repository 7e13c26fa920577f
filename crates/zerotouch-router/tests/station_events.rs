//! The access point's station events as the router side reads them.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use zerotouch_provisioner::ClientMac;
use zerotouch_router::StationEvent;

const A: ClientMac = ClientMac([2, 0x5a, 0, 0, 0, 0x0a]);

#[test]
fn hostapd_station_lines_are_read_with_or_without_prefixes() {
    for line in [
        "AP-STA-CONNECTED 02:5a:00:00:00:0a",
        "<3>AP-STA-CONNECTED 02:5a:00:00:00:0a",
        "wlan0-1: AP-STA-CONNECTED 02:5A:00:00:00:0A auth_alg=open",
        "  <3>AP-STA-CONNECTED 02:5a:00:00:00:0a\r",
    ] {
        assert_eq!(
            StationEvent::parse(line),
            Some(StationEvent::Connected(A)),
            "{line:?}"
        );
    }
    assert_eq!(
        StationEvent::parse("<3>AP-STA-DISCONNECTED 02:5a:00:00:00:0a"),
        Some(StationEvent::Disconnected(A))
    );
}

#[test]
fn other_lines_and_bad_macs_are_no_event() {
    for line in [
        "",
        "ready",
        "<3>CTRL-EVENT-EAP-STARTED 02:5a:00:00:00:0a",
        "AP-STA-CONNECTED",
        "AP-STA-CONNECTED 02:5a:00:00:00",
        "AP-STA-CONNECTED not-a-mac",
        "AP-STA-POLL-OK 02:5a:00:00:00:0a",
    ] {
        assert_eq!(StationEvent::parse(line), None, "{line:?}");
    }
}

proptest! {
    #[test]
    fn reading_any_line_never_panics(line in "\\PC{0,80}") {
        let _ = StationEvent::parse(&line);
    }

    #[test]
    fn every_mac_in_a_connected_line_is_read_back(mac in any::<[u8; 6]>()) {
        let line = format!("<3>AP-STA-CONNECTED {}", ClientMac(mac));
        prop_assert_eq!(StationEvent::parse(&line), Some(StationEvent::Connected(ClientMac(mac))));
    }
}
