//! An in-process GATT connection: two [`GattBearer`]s joined by queues, with the ATT rules a
//! real link enforces and the faults a real link has.
//!
//! Writes and indications are reliable and in order, one outstanding at a time, as ATT makes
//! them; a value longer than `MTU - 3` (or 512) is refused as a real stack refuses it. The
//! [`GattControl`] changes the MTU between writes, counts every ATT operation and byte, and
//! cuts the connection after a chosen number of segments (losing that segment, or delivering
//! it and losing only its acknowledgement), after which both sides see the disconnect and the
//! reconnect. Tests, examples and benchmarks use it to run whole flows over GATT without a
//! radio.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::{BearerEvent, Error, GattBearer, segment_capacity};

/// Which end of the connection a bearer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GattRole {
    /// Writes segments, receives indications (provisioner, sponsor).
    Central,
    /// Indicates segments, receives writes (device, joiner).
    Peripheral,
}

/// What the simulated connection carried, one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionCounts {
    /// ATT operations (Write Requests or Handle Value Indications) acknowledged.
    pub operations: u64,
    /// Attribute-value bytes they carried (ATT headers excluded).
    pub value_bytes: u64,
    /// The longest value.
    pub largest_value: usize,
    /// Operations lost to a cut (not acknowledged).
    pub lost: u64,
}

/// How the next cut happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The segment never arrives.
    SegmentLost,
    /// The segment arrives but its acknowledgement is lost: the sender cannot tell, and sends
    /// the message again.
    AcknowledgementLost,
}

#[derive(Debug)]
struct Shared {
    mtu: u16,
    central_to_peripheral: DirectionCounts,
    peripheral_to_central: DirectionCounts,
    cut_after: Option<(u64, Cut)>,
    cuts: u64,
}

/// Controls and observes a simulated connection.
#[derive(Debug, Clone)]
pub struct GattControl {
    shared: Arc<Mutex<Shared>>,
}

impl GattControl {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the ATT MTU from the next operation on (as after an Exchange MTU).
    pub fn set_mtu(&self, mtu: u16) {
        self.lock().mtu = mtu;
    }

    /// Cuts the connection when the `n`th segment from now (either direction, counting from
    /// 1) is sent, in the way `cut` says; both sides then reconnect at once.
    pub fn cut_after(&self, n: u64, cut: Cut) {
        self.lock().cut_after = Some((n.max(1), cut));
    }

    /// Operations and bytes written by the central.
    pub fn central_to_peripheral(&self) -> DirectionCounts {
        self.lock().central_to_peripheral
    }

    /// Operations and bytes indicated by the peripheral.
    pub fn peripheral_to_central(&self) -> DirectionCounts {
        self.lock().peripheral_to_central
    }

    /// How many times the connection was cut.
    pub fn cuts(&self) -> u64 {
        self.lock().cuts
    }
}

/// One end of a simulated connection.
#[derive(Debug)]
pub struct SimulatedBearer {
    role: GattRole,
    shared: Arc<Mutex<Shared>>,
    to_peer: mpsc::UnboundedSender<BearerEvent>,
    /// Weak, so the queue closes when the peer is dropped.
    to_self: mpsc::WeakUnboundedSender<BearerEvent>,
    events: mpsc::UnboundedReceiver<BearerEvent>,
}

/// A connection at `mtu`: the peripheral's bearer, the central's, and the control.
pub fn simulated_gatt(mtu: u16) -> (SimulatedBearer, SimulatedBearer, GattControl) {
    let shared = Arc::new(Mutex::new(Shared {
        mtu,
        central_to_peripheral: DirectionCounts::default(),
        peripheral_to_central: DirectionCounts::default(),
        cut_after: None,
        cuts: 0,
    }));
    let (to_peripheral, peripheral_events) = mpsc::unbounded_channel();
    let (to_central, central_events) = mpsc::unbounded_channel();
    let peripheral = SimulatedBearer {
        role: GattRole::Peripheral,
        shared: Arc::clone(&shared),
        to_peer: to_central.clone(),
        to_self: to_peripheral.downgrade(),
        events: peripheral_events,
    };
    let central = SimulatedBearer {
        role: GattRole::Central,
        shared: Arc::clone(&shared),
        to_peer: to_peripheral,
        to_self: to_central.downgrade(),
        events: central_events,
    };
    (peripheral, central, GattControl { shared })
}

impl SimulatedBearer {
    /// Which end this is.
    pub fn role(&self) -> GattRole {
        self.role
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl GattBearer for SimulatedBearer {
    fn mtu(&self) -> u16 {
        self.lock().mtu
    }

    async fn send_segment(&mut self, segment: Vec<u8>) -> Result<(), Error> {
        let (mtu, cut) = {
            let mut shared = self.lock();
            let cut = match shared.cut_after {
                Some((1, cut)) => {
                    shared.cut_after = None;
                    shared.cuts += 1;
                    Some(cut)
                }
                Some((n, cut)) => {
                    shared.cut_after = Some((n - 1, cut));
                    None
                }
                None => None,
            };
            (shared.mtu, cut)
        };
        let max = segment_capacity(mtu)?;
        if segment.len() > max {
            // What a real stack answers to a value that does not fit one ATT PDU.
            return Err(Error::SegmentTooLong {
                len: segment.len(),
                max,
            });
        }
        let delivered = cut != Some(Cut::SegmentLost);
        {
            let mut shared = self.lock();
            let counts = match self.role {
                GattRole::Central => &mut shared.central_to_peripheral,
                GattRole::Peripheral => &mut shared.peripheral_to_central,
            };
            if cut.is_none() {
                counts.operations += 1;
                counts.value_bytes += segment.len() as u64;
                counts.largest_value = counts.largest_value.max(segment.len());
            } else {
                counts.lost += 1;
            }
        }
        let peer_gone = || Error::Stack("the simulated peer was dropped".into());
        if delivered {
            self.to_peer
                .send(BearerEvent::Segment {
                    bytes: segment,
                    mtu,
                })
                .map_err(|_| peer_gone())?;
        }
        if cut.is_some() {
            // Both ends see the link drop and come back; the peer sees it after every segment
            // that reached it, as a real stack reports them.
            for event in [BearerEvent::Disconnected, BearerEvent::Reconnected] {
                self.to_peer.send(event.clone()).map_err(|_| peer_gone())?;
                self.to_self
                    .upgrade()
                    .ok_or_else(peer_gone)?
                    .send(event)
                    .map_err(|_| peer_gone())?;
            }
            return Err(Error::Disconnected);
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Result<BearerEvent, Error> {
        self.events
            .recv()
            .await
            .ok_or_else(|| Error::Stack("the simulated peer was dropped".into()))
    }
}
