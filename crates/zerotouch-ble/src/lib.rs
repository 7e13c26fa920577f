//! # zerotouch-ble
//!
//! The zerotouch BLE binding: flow 1 (device ↔ provisioner, which relays to the server) and
//! flow 2 (joiner ↔ sponsor) over one GATT service, at any ATT MTU from 23 to 517 and for
//! every message the core allows. No protocol decision is made here: the crate only moves the
//! core's bytes.
//!
//! - **Framing** (`no_std` + `alloc`): a message is cut into segments of at most
//!   `min(MTU - 3, 512)` bytes ([`Segmenter`]), each one ATT write or indication, with begin
//!   and end markers, a sequence number, and the total length and a transaction id on the
//!   first ([`segment`]); [`Reassembler`] checks every rule and puts them back together;
//!   [`BleLink`] holds both directions of a link, one segment in flight, a message cut by a
//!   disconnect sent again from its start and recognised by its receiver if it already had
//!   it, and idle and reassembly timeouts on the caller's `now`.
//! - **Profile** ([`profile`]): one service, a write characteristic (central → peripheral), an
//!   indicate characteristic (peripheral → central) and a read-only info characteristic
//!   ([`ServiceInfo`]); no long writes or long reads.
//! - **Adapters** (feature `tokio`, on by default): [`BleChannel`] moves whole messages over
//!   any [`GattBearer`] and is the device's `Exchange`; [`simulated`] is an in-process GATT
//!   link with a chosen MTU and cuts; feature `bluer` is the BlueZ backend; feature `relay` is
//!   the provisioner relay that forwards a BLE device's flow-1 messages to the server's relay
//!   endpoint over HTTPS under the setup network's limits.
//!
//! The wire format is `docs/PROTOCOL.md` section 20.
//!
//! ```
//! use zerotouch_ble::{BleLink, LinkConfig};
//! use zerotouch_core::Instant;
//!
//! // A device (peripheral) indicates a 300-byte message to a provisioner (central) at MTU 23.
//! let mut device = BleLink::new(LinkConfig::default(), Instant(0));
//! let mut provisioner = BleLink::new(LinkConfig::default(), Instant(0));
//! device.send(Instant(0), vec![7; 300])?;
//! let mut delivered = None;
//! while let Some(segment) = device.poll_segment(23)? {
//!     assert!(segment.len() <= 20);
//!     delivered = provisioner.receive_segment(Instant(1), &segment, 23)?.or(delivered);
//!     device.segment_confirmed(Instant(1)); // the indication's confirmation
//! }
//! assert_eq!(delivered, Some(vec![7; 300]));
//! // 16 bytes after the 4-byte begin header, then 19 after each 1-byte header.
//! assert_eq!(device.stats().segments_sent, 16);
//! assert_eq!(device.stats().segment_bytes_sent, 300 + 4 + 15);
//! # Ok::<(), zerotouch_ble::Error>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod error;
mod link;
pub mod profile;
mod reassembler;
pub mod segment;
mod segmenter;

#[cfg(feature = "tokio")]
mod bearer;
#[cfg(feature = "tokio")]
mod channel;
#[cfg(feature = "tokio")]
pub mod simulated;

#[cfg(feature = "bluer")]
pub mod bluez;
#[cfg(feature = "relay")]
pub mod relay;

pub use error::Error;
pub use link::{BleLink, LinkConfig, LinkStats};
pub use profile::{
    ATT_HEADER_LEN, MAX_ATT_MTU, MAX_ATTRIBUTE_LEN, MAX_MESSAGE_LEN, MIN_ATT_MTU, PROFILE_VERSION,
    SERVICE_UUID, ServiceInfo, segment_capacity,
};
pub use reassembler::{Reassembler, Received};
pub use segment::Segment;
pub use segmenter::Segmenter;

#[cfg(feature = "tokio")]
pub use bearer::{BearerEvent, GattBearer};
#[cfg(feature = "tokio")]
pub use channel::BleChannel;
