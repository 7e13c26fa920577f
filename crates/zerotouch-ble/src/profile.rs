//! The GATT profile: one service, three characteristics, and the sizes ATT allows.
//!
//! - the **write** characteristic (`…0002`): the central writes segments to it with Write
//!   Request (acknowledged); never Prepare/Execute Write (no long writes);
//! - the **indicate** characteristic (`…0003`): the peripheral sends segments to the central
//!   as indications (confirmed), one at a time;
//! - the **info** characteristic (`…0004`, read only): [`ServiceInfo`], 7 bytes, so one Read
//!   Response carries it at MTU 23 (no long reads).

use crate::Error;

/// The provisioning service's UUID, advertised by the peripheral.
pub const SERVICE_UUID: u128 = 0x6f7a_0001_5b1e_4c2d_9a3f_7e10_b2c4_d5e6;
/// The write characteristic (central → peripheral).
pub const WRITE_CHARACTERISTIC_UUID: u128 = 0x6f7a_0002_5b1e_4c2d_9a3f_7e10_b2c4_d5e6;
/// The indicate characteristic (peripheral → central).
pub const INDICATE_CHARACTERISTIC_UUID: u128 = 0x6f7a_0003_5b1e_4c2d_9a3f_7e10_b2c4_d5e6;
/// The read-only info characteristic.
pub const INFO_CHARACTERISTIC_UUID: u128 = 0x6f7a_0004_5b1e_4c2d_9a3f_7e10_b2c4_d5e6;

/// The version of the segment format this crate speaks.
pub const PROFILE_VERSION: u8 = 1;
/// The smallest ATT MTU of an LE link (Core spec, Vol 3, Part F, 3.2.8).
pub const MIN_ATT_MTU: u16 = 23;
/// The largest ATT MTU worth negotiating: a 512-byte value plus the 3-byte header, plus 2.
pub const MAX_ATT_MTU: u16 = 517;
/// Bytes of an ATT Write Request or Handle Value Indication before the value: opcode and
/// handle.
pub const ATT_HEADER_LEN: usize = 3;
/// The longest attribute value ATT allows (Core spec, Vol 3, Part F, 3.2.9).
pub const MAX_ATTRIBUTE_LEN: usize = 512;

/// The longest message the link carries: the largest either flow puts on it, a flow-2 frame
/// (the 2-byte length and a 4200-byte Noise message), above flow 1's 4096-byte envelopes.
pub const MAX_MESSAGE_LEN: usize = 4202;

/// The most bytes one segment may hold at `mtu`: `min(mtu - 3, 512)`.
///
/// # Errors
/// [`Error::MtuTooSmall`] below 23.
pub fn segment_capacity(mtu: u16) -> Result<usize, Error> {
    if mtu < MIN_ATT_MTU {
        return Err(Error::MtuTooSmall { mtu });
    }
    Ok((usize::from(mtu) - ATT_HEADER_LEN).min(MAX_ATTRIBUTE_LEN))
}

/// The info characteristic's value: what a central reads before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The segment format's version ([`PROFILE_VERSION`]).
    pub version: u8,
    /// The longest message the peripheral accepts.
    pub max_message_len: u16,
    /// Chosen at random when the peripheral's link state is created. A central that reads a
    /// different value after a reconnect knows the peripheral lost its state (restarted) and
    /// starts a fresh link instead of resuming.
    pub instance: u32,
}

impl ServiceInfo {
    /// Length of the encoded value.
    pub const LEN: usize = 7;

    /// `version (1) | max_message_len (2, big-endian) | instance (4, big-endian)`.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let [m0, m1] = self.max_message_len.to_be_bytes();
        let [i0, i1, i2, i3] = self.instance.to_be_bytes();
        [self.version, m0, m1, i0, i1, i2, i3]
    }

    /// Decodes the value read from the info characteristic.
    ///
    /// # Errors
    /// [`Error::MalformedInfo`] for a wrong length, [`Error::UnsupportedVersion`] for another
    /// version.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let &[version, m0, m1, i0, i1, i2, i3] = bytes else {
            return Err(Error::MalformedInfo("the value is not 7 bytes"));
        };
        if version != PROFILE_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        Ok(ServiceInfo {
            version,
            max_message_len: u16::from_be_bytes([m0, m1]),
            instance: u32::from_be_bytes([i0, i1, i2, i3]),
        })
    }
}
