//! Whole messages over any [`GattBearer`]: the [`BleLink`] driven by tokio.

use std::collections::VecDeque;
use std::time::{Duration, Instant as Clock};

use zerotouch_core::Instant;
use zerotouch_device::Path;
use zerotouch_device_tokio::Exchange;

use crate::{BearerEvent, BleLink, Error, GattBearer, LinkConfig, LinkStats};

/// Messages over one GATT connection (and its reconnects), one segment in flight at a time.
///
/// [`send`](Self::send) returns once every segment of the message was acknowledged;
/// [`recv`](Self::recv) returns the next whole message. A disconnect in the middle of either
/// waits for the bearer to report the peer back, then starts the unacknowledged message
/// over; the peer drops a copy of a message it already had. The link's idle and reassembly
/// timeouts run on the bearer's clock of milliseconds since the channel was made.
#[derive(Debug)]
pub struct BleChannel<B> {
    bearer: B,
    link: BleLink,
    inbox: VecDeque<Vec<u8>>,
    started: Clock,
}

impl<B: GattBearer> BleChannel<B> {
    /// A channel over `bearer`.
    pub fn new(bearer: B, config: LinkConfig) -> Self {
        BleChannel {
            bearer,
            link: BleLink::new(config, Instant(0)),
            inbox: VecDeque::new(),
            started: Clock::now(),
        }
    }

    fn now(&self) -> Instant {
        Instant(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Sends one message and waits until the peer acknowledged all of it.
    ///
    /// # Errors
    /// [`Error::MessageTooLong`], the link's timeouts while waiting for a reconnect, a
    /// segment the peer sent meanwhile that breaks the format, or the bearer's failure.
    pub async fn send(&mut self, message: Vec<u8>) -> Result<(), Error> {
        self.link.send(self.now(), message)?;
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        loop {
            let Some(segment) = self.link.poll_segment(self.bearer.mtu())? else {
                if self.link.is_flushed() {
                    return Ok(());
                }
                // Unreachable while only `flush` sends; kept so a cancelled send recovers.
                self.link.link_lost(self.now());
                continue;
            };
            match self.bearer.send_segment(segment).await {
                Ok(()) => self.link.segment_confirmed(self.now()),
                Err(Error::Disconnected) => self.await_reconnect().await?,
                Err(other) => return Err(other),
            }
        }
    }

    /// Takes the peer's events until it is connected again; segments from before the
    /// disconnect are still reassembled (the bearer reports them first).
    async fn await_reconnect(&mut self) -> Result<(), Error> {
        loop {
            match self.next_event().await? {
                BearerEvent::Segment { bytes, mtu } => self.take_segment(&bytes, mtu)?,
                BearerEvent::Disconnected => self.link.link_lost(self.now()),
                BearerEvent::Reconnected => return Ok(()),
            }
        }
    }

    /// The next event, or the link's timeout.
    async fn next_event(&mut self) -> Result<BearerEvent, Error> {
        loop {
            let now = self.now();
            self.link.handle_timeout(now)?;
            let wait = self
                .link
                .poll_timeout()
                .map_or(Duration::from_secs(3600), |at| {
                    Duration::from_millis(at.0.saturating_sub(now.0))
                });
            if let Ok(event) = tokio::time::timeout(wait, self.bearer.next_event()).await {
                return event;
            }
        }
    }

    fn take_segment(&mut self, bytes: &[u8], mtu: u16) -> Result<(), Error> {
        if let Some(message) = self.link.receive_segment(self.now(), bytes, mtu)? {
            self.inbox.push_back(message);
        }
        Ok(())
    }

    /// Waits for the next whole message from the peer.
    ///
    /// # Errors
    /// A segment that breaks the format (the message is dropped), the link's timeouts, or the
    /// bearer's failure.
    pub async fn recv(&mut self) -> Result<Vec<u8>, Error> {
        loop {
            if let Some(message) = self.inbox.pop_front() {
                return Ok(message);
            }
            match self.next_event().await? {
                BearerEvent::Segment { bytes, mtu } => self.take_segment(&bytes, mtu)?,
                BearerEvent::Disconnected => self.link.link_lost(self.now()),
                // A message cut short by the disconnect goes out again from its start.
                BearerEvent::Reconnected => self.flush().await?,
            }
        }
    }

    /// What the link counted.
    pub fn stats(&self) -> LinkStats {
        self.link.stats()
    }

    /// The bearer.
    pub fn bearer(&self) -> &B {
        &self.bearer
    }

    /// The bearer, mutably.
    pub fn bearer_mut(&mut self) -> &mut B {
        &mut self.bearer
    }

    /// Gives the bearer back.
    pub fn into_bearer(self) -> B {
        self.bearer
    }
}

impl<B: GattBearer> Exchange for BleChannel<B> {
    type Error = Error;

    /// Over BLE both of the device's paths go to the one peer it is connected to (a
    /// provisioner relays them).
    async fn exchange(&mut self, _path: Path, message: Vec<u8>) -> Result<Vec<u8>, Error> {
        self.send(message).await?;
        self.recv().await
    }
}
