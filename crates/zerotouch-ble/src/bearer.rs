//! What a GATT stack must do for a [`BleChannel`](crate::BleChannel): move one segment at a
//! time and report what the peer did. The simulated link and the BlueZ backend implement it.

use alloc::vec::Vec;
use core::future::Future;

use crate::Error;

/// Something the peer did on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerEvent {
    /// The peer wrote (to a peripheral) or indicated (to a central) one segment, at this MTU.
    Segment {
        /// The attribute value.
        bytes: Vec<u8>,
        /// The ATT MTU of the connection when it arrived.
        mtu: u16,
    },
    /// The connection went away. Every segment the peer sent before it has already been
    /// reported.
    Disconnected,
    /// The same peer is connected again (and, for a central, subscribed again).
    Reconnected,
}

/// One side of a GATT connection to one peer: the central's writes to the write
/// characteristic and subscription to the indicate characteristic, or the peripheral's
/// indications and the writes it receives.
pub trait GattBearer: Send {
    /// The ATT MTU a segment sent now may use.
    fn mtu(&self) -> u16;

    /// Writes (central, Write Request) or indicates (peripheral) one segment, and returns once
    /// the peer acknowledged it (write response, indication confirmation).
    ///
    /// # Errors
    /// [`Error::Disconnected`] when the connection went away before the acknowledgement (the
    /// bearer then reports [`BearerEvent::Disconnected`] too); [`Error::Stack`] when the stack
    /// refused the operation.
    fn send_segment(&mut self, segment: Vec<u8>) -> impl Future<Output = Result<(), Error>> + Send;

    /// Waits for the next thing the peer did. Segments that arrive while
    /// [`send_segment`](Self::send_segment) waits are kept for this, in order.
    ///
    /// # Errors
    /// [`Error::Stack`] when the stack failed for good.
    fn next_event(&mut self) -> impl Future<Output = Result<BearerEvent, Error>> + Send;
}
