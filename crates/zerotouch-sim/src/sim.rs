//! The simulation: one device, the setup network's engine, the setup service and the links
//! between them, stepped on a virtual clock.

use core::net::{IpAddr, Ipv4Addr};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::runtime::Runtime;
use zerotouch_core::flow1::DeviceIdentityRef;
use zerotouch_core::{
    CipherSuite, Envelope, Instant, MessageTag, Pin, PinnedKeys, Signer, SoftwareSigner, Transport,
};
use zerotouch_device::{
    DeviceConfig, DeviceSession, Event, MemoryDeviceState, Path, RetryPolicy, Trigger,
};
use zerotouch_provisioner::{
    ClientMac, Direction, DropReason, JoinDecision, NetworkMode, Packet, PacketDecision, Protocol,
    SetupNetwork, SetupNetworkPolicy,
};
use zerotouch_server::TransportIdentity;
use zerotouch_store::{RegistrarId, Store};
use zerotouch_store_suite::fixtures;

use crate::SimError;
use crate::adversary::{Adversary, NoAdversary};
use crate::air::Air;
use crate::deployment::{Deployment, EPOCH};
use crate::link::LinkConditions;
use crate::recording_rng::RecordingRng;

/// Most steps one [`Sim::run_until`] takes: every loop here is bounded.
const MAX_STEPS: usize = 200_000;

/// The router's address on the setup network.
pub const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
/// The setup server's address.
pub const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));

/// The device a simulation runs.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    /// Which fixture device (its identity key, label and PIN record).
    pub seed: u8,
    /// The PIN its firmware holds.
    pub pin: Option<String>,
    /// Band bits its radio supports.
    pub radio_bands: u8,
    /// Security bits its radio supports.
    pub radio_security: u8,
    /// How it reaches the server over the setup network.
    pub transport: Transport,
    /// How it reaches the server over the home network.
    pub home_transport: Transport,
    /// The suites it offers, preferred first.
    pub suites: Vec<CipherSuite>,
    /// Its retransmission and session budget.
    pub retry: RetryPolicy,
    /// The server keys its firmware pins (`None`: the deployment's).
    pub pinned: Option<PinnedKeys>,
}

impl DeviceSpec {
    /// Fixture device `seed` with its PIN, a dual-band WPA2/WPA3 radio, HTTPS on both paths.
    pub fn fixture(seed: u8) -> Self {
        DeviceSpec {
            seed,
            pin: Some(fixtures::PIN.to_string()),
            radio_bands: 3,
            radio_security: 3,
            transport: Transport::Https,
            home_transport: Transport::Https,
            suites: CipherSuite::SUPPORTED.to_vec(),
            retry: RetryPolicy::default(),
            pinned: None,
        }
    }

    fn mac(&self) -> ClientMac {
        ClientMac([2, 0, 0, 0, 0, self.seed])
    }

    fn address(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 10u8.wrapping_add(self.seed)))
    }
}

/// Timing and links of a simulation.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    /// Seeds every RNG of the run: the same seed gives the same run, byte for byte.
    pub seed: u64,
    /// Device ↔ server over the setup network.
    pub setup_link: LinkConditions,
    /// Device ↔ server over the home network.
    pub home_link: LinkConditions,
    /// How long a Wi-Fi scan takes.
    pub scan_ms: u64,
    /// How long joining a network takes.
    pub join_ms: u64,
    /// How long the device takes to boot.
    pub boot_ms: u64,
    /// The virtual time a run may last before it counts as stuck.
    pub limit_ms: u64,
}

impl SimConfig {
    /// Perfect links, a 1.5 s scan, a 3 s join, a 2 s boot and an hour's limit.
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            setup_link: LinkConditions::PERFECT,
            home_link: LinkConditions::PERFECT,
            scan_ms: 1_500,
            join_ms: 3_000,
            boot_ms: 2_000,
            limit_ms: 3_600_000,
        }
    }
}

/// Where the device goes down mid-flow.
#[derive(Debug, Clone, Copy)]
pub enum Reboot {
    /// Right after it sends its `n`th message (1-based) with this tag.
    AfterSending(MessageTag, usize),
    /// Right after it emits its `n`th event (1-based) matching this.
    AfterEvent(fn(&Event) -> bool, usize),
}

/// Which way a datagram went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The device sent it.
    Device,
    /// The server answered with it.
    Server,
    /// The adversary forged or replayed it to the device.
    Adversary,
}

/// A datagram put on a link, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// When it was sent.
    pub at: Instant,
    /// Who sent it.
    pub sender: Sender,
    /// Over which network.
    pub path: Path,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// How many copies the link delivered (0: lost or dropped).
    pub copies: usize,
    /// The setup network's reason, if it dropped the datagram.
    pub dropped: Option<DropReason>,
}

impl Sent {
    /// The message tag, if the bytes are an envelope.
    pub fn tag(&self) -> Option<MessageTag> {
        Envelope::decode(&self.bytes).ok().map(|e| e.header.tag)
    }
}

/// What the links did to the datagrams so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams put on a link.
    pub sent: usize,
    /// Lost by a link.
    pub lost: usize,
    /// Delivered twice.
    pub duplicated: usize,
    /// Delivered after a datagram sent later in the same direction.
    pub reordered: usize,
    /// Dropped by the setup network's engine.
    pub dropped_by_setup_network: usize,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The stop condition matched this event.
    Stopped(Event),
    /// Nothing was left to happen: no timer, nothing in flight.
    Idle,
    /// The time limit passed.
    TimedOut,
}

#[derive(Debug, Clone)]
enum Action {
    ScanDone,
    JoinDone(zerotouch_device::JoinResult),
    Boot,
}

#[derive(Debug, Clone)]
struct InFlight {
    at: Instant,
    seq: u64,
    to_server: bool,
    path: Path,
    bytes: Vec<u8>,
    /// The transport the server sees, when an adversary relays it over another one.
    relayed_over: Option<Transport>,
}

type Device = DeviceSession<SoftwareSigner, MemoryDeviceState>;

/// One device, the setup network, the setup service and the links, on a virtual clock.
///
/// Deterministic: the device, the server, the links and the adversary draw from RNGs seeded
/// from [`SimConfig::seed`], time only moves when the simulation advances it, and ties are
/// broken by the order things were scheduled.
pub struct Sim<St> {
    rt: Runtime,
    deployment: Deployment<St>,
    config: SimConfig,
    spec: DeviceSpec,
    device: Option<Device>,
    storage: MemoryDeviceState,
    /// The radio environment.
    pub air: Air,
    network: SetupNetwork,
    adversary: Box<dyn Adversary>,
    now: Instant,
    device_rng: RecordingRng,
    /// The device's random draws, each with the number of trace entries before it.
    draws: Vec<(usize, Vec<u8>)>,
    server_rng: ChaCha20Rng,
    link_rng: ChaCha20Rng,
    in_flight: Vec<InFlight>,
    actions: Vec<(Instant, u64, Action)>,
    seq: u64,
    on_setup_network: bool,
    reboots: Vec<Reboot>,
    boots: u32,
    sent_tags: Vec<MessageTag>,
    trace: Vec<Sent>,
    events: Vec<(Instant, Event)>,
    stats: LinkStats,
    /// Highest sequence delivered towards the server and towards the device.
    last_delivered: [u64; 2],
}

impl<St: Store> Sim<St> {
    /// A simulation of `spec` against `deployment` (built on `rt`), in `air`. The device
    /// boots at the deployment's epoch plus a minute; call [`start`](Self::start).
    pub fn new(
        rt: Runtime,
        deployment: Deployment<St>,
        config: SimConfig,
        spec: DeviceSpec,
        air: Air,
    ) -> Result<Self, SimError> {
        let mut policy = SetupNetworkPolicy::with_defaults(ROUTER, (ROUTER, 24), vec![SERVER]);
        policy.dns_to_router = true;
        let now = Instant(EPOCH.0 + 60_000);
        let network = SetupNetwork::new(policy, NetworkMode::AlwaysOpen, now)?;
        let stream =
            |n: u64| ChaCha20Rng::seed_from_u64(config.seed.wrapping_mul(4).wrapping_add(n));
        let mut sim = Sim {
            rt,
            deployment,
            config,
            spec,
            device: None,
            storage: MemoryDeviceState::new(),
            air,
            network,
            adversary: Box::new(NoAdversary),
            now,
            device_rng: RecordingRng::new(stream(0)),
            draws: Vec::new(),
            server_rng: stream(1),
            link_rng: stream(2),
            in_flight: Vec::new(),
            actions: Vec::new(),
            seq: 0,
            on_setup_network: false,
            reboots: Vec::new(),
            boots: 0,
            sent_tags: Vec::new(),
            trace: Vec::new(),
            events: Vec::new(),
            stats: LinkStats::default(),
            last_delivered: [0; 2],
        };
        sim.device = Some(sim.boot_device()?);
        Ok(sim)
    }

    /// Replaces the setup network's engine with one enforcing `policy` in `mode` (the device
    /// is not on it yet).
    pub fn set_setup_network(
        &mut self,
        policy: SetupNetworkPolicy,
        mode: NetworkMode,
    ) -> Result<(), SimError> {
        self.network = SetupNetwork::new(policy, mode, self.now)?;
        self.on_setup_network = false;
        Ok(())
    }

    /// What the links did so far.
    pub fn link_stats(&self) -> LinkStats {
        self.stats
    }

    /// Puts `adversary` on the links.
    pub fn set_adversary(&mut self, adversary: impl Adversary + 'static) {
        self.adversary = Box::new(adversary);
    }

    /// Changes the links (from now on; datagrams in flight keep their fate).
    pub fn set_links(&mut self, setup: LinkConditions, home: LinkConditions) {
        self.config.setup_link = setup;
        self.config.home_link = home;
    }

    /// Makes the device lose power at `point` (each point fires once).
    pub fn reboot_at(&mut self, point: Reboot) {
        self.reboots.push(point);
    }

    /// Starts setup with `trigger`.
    pub fn start(&mut self, trigger: Trigger) {
        let now = self.now;
        if let Some(d) = self.device.as_mut() {
            d.start(now, trigger);
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock forward by `ms` without running anything (a device left switched
    /// off, say).
    pub fn advance(&mut self, ms: u64) {
        self.now = Instant(self.now.0.saturating_add(ms));
    }

    /// The setup service and its records.
    pub fn deployment(&self) -> &Deployment<St> {
        &self.deployment
    }

    /// Restarts the server: a new service over `store` (the same database, reopened), with
    /// the same configuration. Nothing held in the old service's memory survives.
    pub fn restart_server(&mut self, store: St) -> Result<(), SimError> {
        let config = self.deployment.service.config().clone();
        let registrar: RegistrarId = self.deployment.registrar;
        self.deployment = Deployment::reopen(store, config, registrar)?;
        Ok(())
    }

    /// Runs a future on the simulation's runtime (store set-up and inspection).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The device's durable storage, as it would be read from flash.
    pub fn storage(&self) -> &MemoryDeviceState {
        self.device.as_ref().map_or(&self.storage, |d| d.state())
    }

    /// Every datagram put on a link so far, in the order sent.
    pub fn trace(&self) -> &[Sent] {
        &self.trace
    }

    /// Every event the device emitted, with its time.
    pub fn events(&self) -> &[(Instant, Event)] {
        &self.events
    }

    /// Every random value the device drew, in order, each with the number of trace entries
    /// sent before it (so the draws before entry `i` produced the device's messages from
    /// `i` on).
    pub fn device_draws(&self) -> &[(usize, Vec<u8>)] {
        &self.draws
    }

    /// How many times the device has booted.
    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// The setup network's engine.
    pub fn setup_network(&self) -> &SetupNetwork {
        &self.network
    }

    /// Sends `bytes` to the server as `from` would, now, and returns its answer: what an
    /// attacker with its own connection gets.
    pub fn send_to_server(&mut self, bytes: &[u8], from: &TransportIdentity) -> Vec<u8> {
        self.rt.block_on(self.deployment.service.handle(
            bytes,
            from,
            self.now,
            &mut self.server_rng,
        ))
    }

    /// Runs until the device completes setup or gives up.
    pub fn run(&mut self) -> Outcome {
        self.run_until(|e| matches!(e, Event::Complete { .. } | Event::GaveUp { .. }))
    }

    /// Runs until the device emits an event matching `stop`, nothing is left to happen, or
    /// the time limit passes.
    pub fn run_until(&mut self, stop: impl Fn(&Event) -> bool) -> Outcome {
        let deadline = Instant(self.now.0.saturating_add(self.config.limit_ms));
        for _ in 0..MAX_STEPS {
            if let Some(ev) = self.drain_device(&stop) {
                return Outcome::Stopped(ev);
            }
            let Some(next) = self.next_due() else {
                return Outcome::Idle;
            };
            if next > deadline {
                return Outcome::TimedOut;
            }
            self.now = Instant(self.now.0.max(next.0));
            self.fire_one();
        }
        Outcome::TimedOut
    }

    // -------------------------------------------------------------------------------------

    fn boot_device(&mut self) -> Result<Device, SimError> {
        self.boots = self.boots.saturating_add(1);
        let key = SoftwareSigner::new(fixtures::device_key(self.spec.seed));
        let pin = self.spec.pin.as_deref().map(Pin::new).transpose()?;
        let config = DeviceConfig {
            transport: self.spec.transport,
            home_transport: self.spec.home_transport,
            identity: DeviceIdentityRef::PublicKey(key.public_key().to_spki_der()),
            pin,
            radio_bands: self.spec.radio_bands,
            radio_security: self.spec.radio_security,
            suites: self.spec.suites.clone(),
            retry: self.spec.retry,
        };
        let pinned = self
            .spec
            .pinned
            .clone()
            .unwrap_or_else(|| self.deployment.pinned.clone());
        Ok(DeviceSession::new(
            config,
            pinned,
            key,
            self.storage.clone(),
        )?)
    }

    fn schedule(&mut self, at: Instant, action: Action) {
        self.seq = self.seq.wrapping_add(1);
        self.actions.push((at, self.seq, action));
    }

    fn next_due(&self) -> Option<Instant> {
        let device = self.device.as_ref().and_then(|d| d.poll_timeout());
        let flight = self.in_flight.iter().map(|f| f.at).min();
        let action = self.actions.iter().map(|a| a.0).min();
        let network = self.network.poll_timeout();
        [device, flight, action, network]
            .into_iter()
            .flatten()
            .min()
    }

    /// Handles the earliest thing due (actions, then deliveries, then timers on a tie).
    fn fire_one(&mut self) {
        let now = self.now;
        if let Some(i) = earliest(self.actions.iter().map(|a| (a.0, a.1)), now) {
            let (_, _, action) = self.actions.remove(i);
            self.act(action);
            return;
        }
        if let Some(i) = earliest(self.in_flight.iter().map(|f| (f.at, f.seq)), now) {
            let d = self.in_flight.remove(i);
            self.deliver(d);
            return;
        }
        if let Some(d) = self.device.as_mut()
            && d.poll_timeout().is_some_and(|t| t <= now)
        {
            d.handle_timeout(now, &mut self.device_rng);
            return;
        }
        if self.network.poll_timeout().is_some_and(|t| t <= now) {
            self.network.handle_timeout(now);
        }
    }

    fn act(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::ScanDone => {
                let seen = self.air.scan(self.spec.radio_bands);
                if let Some(d) = self.device.as_mut() {
                    d.scan_complete(now, seen, &mut self.device_rng);
                }
            }
            Action::JoinDone(result) => {
                if let Some(d) = self.device.as_mut() {
                    d.join_result(now, result, &mut self.device_rng);
                }
            }
            Action::Boot => {
                if let Some(d) = self.device.as_mut() {
                    d.start(now, Trigger::FirstBoot);
                }
            }
        }
    }

    fn leave_setup_network(&mut self) {
        if self.on_setup_network {
            self.network.client_left(self.spec.mac());
            self.on_setup_network = false;
        }
    }

    /// Drains the device's transmits and events; returns the first event matching `stop`.
    fn drain_device(&mut self, stop: &impl Fn(&Event) -> bool) -> Option<Event> {
        // Whatever the device drew went into what it is about to send.
        let at = self.trace.len();
        for d in self.device_rng.take_draws() {
            self.draws.push((at, d));
        }
        let mut stopped = None;
        for _ in 0..10_000 {
            let Some(device) = self.device.as_mut() else {
                return stopped;
            };
            if let Some(t) = device.poll_transmit() {
                let tag = Envelope::decode(&t.bytes).ok().map(|e| e.header.tag);
                self.send_from_device(t.path, t.bytes);
                if let Some(tag) = tag {
                    self.sent_tags.push(tag);
                    let n = self.sent_tags.iter().filter(|t| **t == tag).count();
                    self.maybe_reboot(
                        |r| matches!(r, Reboot::AfterSending(t, k) if *t == tag && *k == n),
                    );
                }
                continue;
            }
            let Some(ev) = device.poll_event() else {
                return stopped;
            };
            self.events.push((self.now, ev.clone()));
            match &ev {
                Event::ScanRequested => {
                    self.schedule(Instant(self.now.0 + self.config.scan_ms), Action::ScanDone);
                }
                Event::Join {
                    ssid,
                    security,
                    passphrase,
                } => {
                    let result = self.air.join(
                        self.spec.radio_bands,
                        ssid,
                        *security,
                        passphrase.expose_secret(),
                    );
                    // Joining another network leaves the setup network, whatever the result.
                    self.leave_setup_network();
                    let at = Instant(self.now.0 + self.config.join_ms);
                    self.schedule(at, Action::JoinDone(result));
                }
                _ => {}
            }
            let events = &self.events;
            let count = |f: fn(&Event) -> bool| events.iter().filter(|(_, e)| f(e)).count();
            let due = self.reboots.iter().position(|r| match r {
                Reboot::AfterEvent(f, n) => f(&ev) && count(*f) == *n,
                Reboot::AfterSending(..) => false,
            });
            if let Some(i) = due {
                self.reboots.remove(i);
                self.reboot();
            }
            if stopped.is_none() && stop(&ev) {
                stopped = Some(ev);
            }
        }
        stopped
    }

    fn maybe_reboot(&mut self, matches: impl Fn(&Reboot) -> bool) {
        if let Some(i) = self.reboots.iter().position(matches) {
            self.reboots.remove(i);
            self.reboot();
        }
    }

    /// Power cut: the session and everything it had scheduled are gone; storage survives.
    fn reboot(&mut self) {
        if let Some(d) = self.device.take() {
            self.storage = d.state().clone();
        }
        self.actions.clear();
        self.leave_setup_network();
        // A configuration that was valid at the first boot stays valid.
        self.device = self.boot_device().ok();
        self.schedule(Instant(self.now.0 + self.config.boot_ms), Action::Boot);
    }

    fn send_from_device(&mut self, path: Path, bytes: Vec<u8>) {
        // Sending over the setup network means associating with it first.
        if path == Path::Setup && !self.on_setup_network {
            let admitted = matches!(
                self.network.client_joined(self.spec.mac(), self.now),
                JoinDecision::Admitted { .. }
            );
            self.on_setup_network = admitted;
        }
        let wire = self.adversary.on_device_datagram(self.now, path, bytes);
        for b in wire.to_server {
            self.put_on_link(Sender::Device, true, path, b, None);
        }
        for (transport, b) in wire.to_server_over {
            self.put_on_link(Sender::Adversary, true, path, b, Some(transport));
        }
        for b in wire.to_device {
            self.put_on_link(Sender::Adversary, false, path, b, None);
        }
    }

    fn put_on_link(
        &mut self,
        sender: Sender,
        to_server: bool,
        path: Path,
        bytes: Vec<u8>,
        relayed_over: Option<Transport>,
    ) {
        let dropped = if path == Path::Setup {
            self.setup_network_decision(to_server, bytes.len())
        } else {
            None
        };
        let arrivals = if dropped.is_some() {
            Vec::new()
        } else {
            let link = match path {
                Path::Setup => self.config.setup_link,
                Path::Home => self.config.home_link,
            };
            link.arrivals(self.now, &mut self.link_rng)
        };
        self.stats.sent += 1;
        match (dropped.is_some(), arrivals.len()) {
            (true, _) => self.stats.dropped_by_setup_network += 1,
            (false, 0) => self.stats.lost += 1,
            (false, 1) => {}
            (false, _) => self.stats.duplicated += 1,
        }
        for at in &arrivals {
            self.seq = self.seq.wrapping_add(1);
            self.in_flight.push(InFlight {
                at: *at,
                seq: self.seq,
                to_server,
                path,
                bytes: bytes.clone(),
                relayed_over,
            });
        }
        self.trace.push(Sent {
            at: self.now,
            sender,
            path,
            bytes,
            copies: arrivals.len(),
            dropped,
        });
    }

    /// The setup network's engine decides on a datagram crossing the router.
    fn setup_network_decision(&mut self, to_server: bool, len: usize) -> Option<DropReason> {
        let mac = self.spec.mac();
        if !self.on_setup_network {
            return Some(DropReason::UnknownClient);
        }
        let (protocol, port, peer) = match self.spec.transport {
            Transport::Dns => (Protocol::Udp, 53, ROUTER),
            _ => (Protocol::Tcp, 443, SERVER),
        };
        let device = self.spec.address();
        let (direction, src, src_port, dst, dst_port) = if to_server {
            (Direction::FromClient, device, 40_000, peer, port)
        } else {
            (Direction::ToClient, peer, port, device, 40_000)
        };
        let packet = Packet {
            client: mac,
            direction,
            protocol,
            src,
            src_port,
            dst,
            dst_port,
            len: u32::try_from(len).unwrap_or(u32::MAX),
        };
        match self.network.packet(&packet, self.now) {
            PacketDecision::Forward(_) => None,
            PacketDecision::Drop(reason) => Some(reason),
        }
    }

    fn deliver(&mut self, d: InFlight) {
        let now = self.now;
        if let Some(last) = self.last_delivered.get_mut(usize::from(d.to_server)) {
            if d.seq < *last {
                self.stats.reordered += 1;
            }
            *last = (*last).max(d.seq);
        }
        if !d.to_server {
            if d.path == Path::Setup && !self.on_setup_network {
                return; // the device has left the network the answer was sent on
            }
            if let Some(device) = self.device.as_mut() {
                device.handle_incoming(now, d.path, &d.bytes, &mut self.device_rng);
            }
            return;
        }
        let from = match d.relayed_over {
            Some(transport) => TransportIdentity::Direct {
                transport,
                client_key: None,
            },
            None => self.transport_identity(d.path),
        };
        let answer = self.rt.block_on(self.deployment.service.handle(
            &d.bytes,
            &from,
            now,
            &mut self.server_rng,
        ));
        for b in self.adversary.on_server_answer(now, d.path, answer) {
            self.put_on_link(Sender::Server, false, d.path, b, None);
        }
    }

    fn transport_identity(&self, path: Path) -> TransportIdentity {
        let transport = match path {
            Path::Setup => self.spec.transport,
            Path::Home => self.spec.home_transport,
        };
        // Over HTTPS the device's TLS client certificate names its identity key.
        let client_key = (transport == Transport::Https)
            .then(|| fixtures::device_key(self.spec.seed).public_key());
        TransportIdentity::Direct {
            transport,
            client_key,
        }
    }
}

/// The index of the item due at or before `now` that was scheduled earliest.
fn earliest(items: impl Iterator<Item = (Instant, u64)>, now: Instant) -> Option<usize> {
    items
        .enumerate()
        .filter(|(_, (at, _))| *at <= now)
        .min_by_key(|(_, (at, seq))| (*at, *seq))
        .map(|(i, _)| i)
}
