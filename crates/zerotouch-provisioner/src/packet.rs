//! What the engine needs to know about a packet: who sent it, where to, and how big. The
//! router's data path fills this in from headers it has already parsed.

use core::net::IpAddr;

/// A setup client's link-layer address: the router knows its clients by MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientMac(pub [u8; 6]);

impl core::fmt::Display for ClientMac {
    /// `02:5a:00:00:00:0a`: the form nft, hostapd and dnsmasq read.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl core::str::FromStr for ClientMac {
    type Err = crate::Error;

    /// Six two-digit hex bytes separated by `:` or `-`, in either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut mac = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut mac {
            let part = parts.next().ok_or(crate::Error::InvalidMac)?;
            // from_str_radix alone would take "+a".
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(crate::Error::InvalidMac);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| crate::Error::InvalidMac)?;
        }
        if parts.next().is_some() {
            return Err(crate::Error::InvalidMac);
        }
        Ok(ClientMac(mac))
    }
}

/// Transport protocol of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// Anything else (ICMP, raw IP, ...).
    Other,
}

/// Which way a packet goes relative to the setup client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the setup client into the router.
    FromClient,
    /// To the setup client.
    ToClient,
}

/// A packet as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// The setup client concerned (sender or receiver).
    pub client: ClientMac,
    /// Direction relative to that client.
    pub direction: Direction,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Source address.
    pub src: IpAddr,
    /// Source port (0 without ports).
    pub src_port: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port (0 without ports).
    pub dst_port: u16,
    /// Bytes on the wire.
    pub len: u32,
}
