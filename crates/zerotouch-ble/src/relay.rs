//! The provisioner relay: a router (or a sponsor acting as one) accepts a device over BLE and
//! forwards its flow-1 messages, unchanged, to the server's relay endpoint over HTTPS with the
//! provisioner's certificate, under the setup network's limits.
//!
//! A BLE device has no address on the setup network, but it costs the router the same as one
//! that has: the relay puts it through the same [`SetupNetwork`] engine. Connecting is
//! joining (admission, eviction of the oldest clients past their minimum age, bans); every
//! message each way is accounted as one packet to the setup server's HTTPS port, against the
//! client's and the network's rate and daily volume; a device the engine evicts or whose
//! traffic it drops is disconnected. The relay reads nothing in the messages: the server
//! authenticates the device by its key proof and binds the transcript to transport `Ble`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant as Clock;

use zerotouch_core::{Instant, Transport};
use zerotouch_http::{RelayClient, ServerEndpoint};
use zerotouch_provisioner::{
    ClientMac, Direction, DropReason, Eviction, JoinDecision, Packet, PacketDecision, Protocol,
    SetupNetwork, TimerDecision,
};

use crate::{BleChannel, Error, GattBearer};

/// The port the setup server listens on, as the engine's address rules expect.
const HTTPS_PORT: u16 = 443;

/// Why the relay stopped carrying a device's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEnd {
    /// The device went away, or its link broke or fell idle.
    DeviceGone(Error),
    /// The engine dropped its traffic (rate or volume limit).
    Dropped(DropReason),
    /// The engine evicted it to make room, or the setup network closed.
    Removed,
    /// The server could not be reached or did not answer.
    ServerUnreachable(String),
}

/// What the relay did for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySummary {
    /// The device's BLE address.
    pub device: ClientMac,
    /// Messages forwarded to the server (each answered).
    pub forwarded: u64,
    /// Bytes of those messages.
    pub bytes_to_server: u64,
    /// Bytes of the server's answers carried back.
    pub bytes_to_device: u64,
    /// Why it stopped.
    pub end: RelayEnd,
}

/// Relays BLE devices to the setup server. Shared by every device connected at once.
#[derive(Debug)]
pub struct ProvisionerRelay {
    server: ServerEndpoint,
    tls: Arc<rustls::ClientConfig>,
    network: Mutex<SetupNetwork>,
    /// The setup server's address as the engine knows it.
    server_ip: IpAddr,
    /// The address standing for every BLE device in the engine's packets (they have none).
    device_ip: IpAddr,
    started: Clock,
}

impl ProvisionerRelay {
    /// A relay to `server` with the provisioner's TLS configuration (its certificate, from
    /// [`zerotouch_http::client_tls_config`]), under `network`'s policy, whose server
    /// addresses must include `server.address`'s.
    ///
    /// # Errors
    /// [`Error::Relay`] when the policy would drop every message to that server.
    pub fn new(
        server: ServerEndpoint,
        tls: Arc<rustls::ClientConfig>,
        network: SetupNetwork,
    ) -> Result<Self, Error> {
        let server_ip = server.address.ip();
        let policy = network.policy();
        if !policy.server_addresses.contains(&server_ip) {
            return Err(Error::Relay(format!(
                "the setup network policy does not list the server address {server_ip}"
            )));
        }
        let device_ip = policy.setup_prefix.0;
        Ok(ProvisionerRelay {
            server,
            tls,
            network: Mutex::new(network),
            server_ip,
            device_ip,
            started: Clock::now(),
        })
    }

    fn now(&self) -> Instant {
        Instant(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn network(&self) -> MutexGuard<'_, SetupNetwork> {
        self.network.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A device connected: admits it, or says why not. The evicted clients returned must be
    /// disconnected by the caller (their relays also stop at their next message).
    ///
    /// # Errors
    /// [`Error::Relay`] when the engine refuses it (banned, full, closed).
    pub fn admit(&self, device: ClientMac) -> Result<Vec<Eviction>, Error> {
        match self.network().client_joined(device, self.now()) {
            JoinDecision::Admitted { evicted } => Ok(evicted),
            JoinDecision::AlreadyAdmitted => Ok(Vec::new()),
            JoinDecision::Refused(reason) => Err(Error::Relay(format!(
                "device {device:?} refused by the setup network: {reason:?}"
            ))),
        }
    }

    /// Applies the engine's timers (unbans, closing); returns what changed.
    pub fn tick(&self) -> Vec<TimerDecision> {
        self.network().handle_timeout(self.now())
    }

    fn account(&self, device: ClientMac, direction: Direction, len: usize) -> Option<RelayEnd> {
        let (src, dst) = match direction {
            Direction::FromClient => (self.device_ip, self.server_ip),
            Direction::ToClient => (self.server_ip, self.device_ip),
        };
        let (src_port, dst_port) = match direction {
            Direction::FromClient => (0, HTTPS_PORT),
            Direction::ToClient => (HTTPS_PORT, 0),
        };
        let packet = Packet {
            client: device,
            direction,
            protocol: Protocol::Tcp,
            src,
            src_port,
            dst,
            dst_port,
            len: u32::try_from(len).unwrap_or(u32::MAX),
        };
        let now = self.now();
        let mut network = self.network();
        network.handle_timeout(now);
        match network.packet(&packet, now) {
            PacketDecision::Forward(_) => None,
            PacketDecision::Drop(DropReason::UnknownClient) => Some(RelayEnd::Removed),
            PacketDecision::Drop(reason) => Some(RelayEnd::Dropped(reason)),
        }
    }

    /// Carries one admitted device's messages until it goes away or the engine stops it;
    /// then it leaves the setup network (unless the engine already removed it).
    pub async fn relay<B: GattBearer>(
        &self,
        device: ClientMac,
        channel: &mut BleChannel<B>,
    ) -> RelaySummary {
        let mut summary = RelaySummary {
            device,
            forwarded: 0,
            bytes_to_server: 0,
            bytes_to_device: 0,
            end: RelayEnd::Removed,
        };
        let mut client =
            match RelayClient::new(self.server.clone(), Arc::clone(&self.tls), Transport::Ble) {
                Ok(client) => client,
                Err(e) => {
                    summary.end = RelayEnd::ServerUnreachable(e.to_string());
                    return self.leave(summary);
                }
            };
        summary.end = loop {
            let message = match channel.recv().await {
                Ok(message) => message,
                Err(e) => break RelayEnd::DeviceGone(e),
            };
            if let Some(end) = self.account(device, Direction::FromClient, message.len()) {
                break end;
            }
            let len = message.len();
            let answer = match client.forward(message).await {
                Ok(answer) => answer,
                Err(e) => break RelayEnd::ServerUnreachable(e.to_string()),
            };
            summary.forwarded += 1;
            summary.bytes_to_server += len as u64;
            if let Some(end) = self.account(device, Direction::ToClient, answer.len()) {
                break end;
            }
            summary.bytes_to_device += answer.len() as u64;
            if let Err(e) = channel.send(answer).await {
                break RelayEnd::DeviceGone(e);
            }
        };
        self.leave(summary)
    }

    fn leave(&self, summary: RelaySummary) -> RelaySummary {
        tracing::info!(device = ?summary.device, forwarded = summary.forwarded, end = ?summary.end, "ble relay ended");
        self.network().client_left(summary.device);
        summary
    }
}
