//! Station events as hostapd reports them: the router side learns of setup clients from the
//! access point's `AP-STA-CONNECTED` and `AP-STA-DISCONNECTED` lines.

use zerotouch_provisioner::ClientMac;

/// A client associated with or left the setup network's access point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationEvent {
    /// `AP-STA-CONNECTED <mac>`.
    Connected(ClientMac),
    /// `AP-STA-DISCONNECTED <mac>`.
    Disconnected(ClientMac),
}

impl StationEvent {
    /// Reads one line of `hostapd_cli` output (`<3>AP-STA-CONNECTED 02:5a:00:00:00:0a`, with
    /// or without the level prefix, an interface prefix, or trailing fields). Any other line,
    /// or a station event without a valid MAC, is `None`: the access point reports much else.
    pub fn parse(line: &str) -> Option<StationEvent> {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            let word = word.rsplit('>').next().unwrap_or(word);
            let event: fn(ClientMac) -> StationEvent = match word {
                "AP-STA-CONNECTED" => StationEvent::Connected,
                "AP-STA-DISCONNECTED" => StationEvent::Disconnected,
                _ => continue,
            };
            return words.next()?.parse().ok().map(event);
        }
        None
    }
}
