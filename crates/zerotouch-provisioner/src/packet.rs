//! What the engine needs to know about a packet: who sent it, where to, and how big. The
//! router's data path fills this in from headers it has already parsed.

use core::net::IpAddr;

/// A setup client's link-layer address: the router knows its clients by MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientMac(pub [u8; 6]);

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
