//! The flow and the transport a message belongs to: both go into every transcript, so a
//! message signed for one flow or transport cannot be replayed into another.

use crate::DecodeError;

/// Which protocol a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Flow {
    /// Flow 1: a new device, a setup network and the setup server.
    ServerSetup = 1,
    /// Flow 2: a joiner, a sponsor already on the home network, and the association server.
    PeerHandoff = 2,
}

impl Flow {
    /// Every flow, in number order.
    pub const ALL: [Flow; 2] = [Flow::ServerSetup, Flow::PeerHandoff];

    /// The wire number.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// Parses a wire number.
    pub fn from_u64(v: u64) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(Flow::ServerSetup),
            2 => Ok(Flow::PeerHandoff),
            other => Err(DecodeError::UnknownFlow(other)),
        }
    }
}

/// The transport the *device* used for a message. A relay (router over BLE, sponsor) forwards
/// the device's bytes unchanged, so the transcript names the device's own link, not the relay's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Transport {
    /// HTTPS with client certificates.
    Https = 1,
    /// Queries and answers through DNS resolvers.
    Dns = 2,
    /// A GATT service over Bluetooth LE.
    Ble = 3,
    /// A reliable local byte stream (TCP on a local link, Wi-Fi Direct) carrying an encrypted channel.
    LocalStream = 4,
}

impl Transport {
    /// Every transport, in number order.
    pub const ALL: [Transport; 4] = [
        Transport::Https,
        Transport::Dns,
        Transport::Ble,
        Transport::LocalStream,
    ];

    /// The wire number.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// Parses a wire number.
    pub fn from_u64(v: u64) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(Transport::Https),
            2 => Ok(Transport::Dns),
            3 => Ok(Transport::Ble),
            4 => Ok(Transport::LocalStream),
            other => Err(DecodeError::UnknownTransport(other)),
        }
    }
}
