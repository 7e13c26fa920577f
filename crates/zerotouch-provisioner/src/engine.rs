//! The setup-network engine: the router calls it with events and carries out its decisions.

use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;
use zerotouch_core::{CryptoProvider, Instant, KeyId, KeyLookup, PublicKey};

use crate::rate::{DailyVolume, TokenBucket};
use crate::{
    ClientMac, Direction, Error, OpenNetworkOrder, OrderError, Packet, Protocol, SetupNetworkPolicy,
};

const DHCP_SERVER_PORT: u16 = 67;
const DHCP_CLIENT_PORT: u16 = 68;
const DNS_PORT: u16 = 53;
const HTTPS_PORT: u16 = 443;

/// Whether the setup network is always there (a router) or opened only by a signed order (an
/// already-joined device, paragraph 0053).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The router's permanent restricted setup network.
    AlwaysOpen,
    /// Closed until a valid order opens it for one device.
    OpenedByOrder,
}

/// Why a client may not join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// Evicted earlier and still banned.
    Banned {
        /// When the ban ends.
        until: Instant,
    },
    /// Full, and every client is younger than the minimum age (they may be provisioning).
    Full,
    /// The network is closed (no valid order).
    Closed,
}

/// A client pushed out to make room, and banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    /// The client.
    pub client: ClientMac,
    /// When it may come back.
    pub banned_until: Instant,
}

/// What to do with a client that associates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinDecision {
    /// Admit it, after disconnecting and banning `evicted` (oldest first).
    Admitted {
        /// Clients to disconnect first.
        evicted: Vec<Eviction>,
    },
    /// It is already admitted; nothing changes.
    AlreadyAdmitted,
    /// Refuse it.
    Refused(RefuseReason),
}

/// Priority of forwarded setup traffic: always below the home network's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Below every home-network class (mark for the router's queueing).
    BelowHome,
}

/// Why a packet is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The client is not admitted.
    UnknownClient,
    /// Addressed to the home network (or from it).
    HomeNetwork,
    /// Addressed to another setup client.
    OtherSetupClient,
    /// Addressed to a router service other than DHCP (and DNS when allowed).
    RouterService,
    /// Any other destination: only the setup server on TCP 443 is reachable.
    NotAllowed,
    /// Over the client's rate.
    ClientRate,
    /// Over the whole network's rate.
    NetworkRate,
    /// Over the client's daily volume.
    ClientDailyVolume,
    /// Over the whole network's daily volume.
    NetworkDailyVolume,
}

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketDecision {
    /// Forward it, at this priority.
    Forward(Priority),
    /// Drop it.
    Drop(DropReason),
}

/// Something that happened when time passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerDecision {
    /// A ban ended: the client may join again.
    Unbanned(ClientMac),
    /// An ordered opening ended: close the network and disconnect this client.
    ClosedEvicting(ClientMac),
    /// An ordered opening ended.
    Closed,
}

/// A network opened by an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderedOpening {
    /// The device it is open for; the relay checks that the device's hello names this key.
    pub device_key_id: KeyId,
    /// When it closes.
    pub until: Instant,
}

#[derive(Debug, Clone)]
struct Client {
    mac: ClientMac,
    joined: Instant,
    rate: TokenBucket,
    volume: DailyVolume,
}

/// The engine. Sans-IO: no clock, no sockets; the router passes `now` (monotonic) with every
/// call and applies the decisions (firewall sets, disconnects, queue marks).
#[derive(Debug)]
pub struct SetupNetwork {
    policy: SetupNetworkPolicy,
    mode: NetworkMode,
    clients: Vec<Client>,
    bans: Vec<(ClientMac, Instant)>,
    network_rate: TokenBucket,
    network_volume: DailyVolume,
    opening: Option<OrderedOpening>,
    /// Orders carried out, with their wall-clock deadline, so none is used twice.
    used_orders: Vec<([u8; 16], u64)>,
}

impl SetupNetwork {
    /// An engine enforcing `policy`.
    pub fn new(policy: SetupNetworkPolicy, mode: NetworkMode, now: Instant) -> Result<Self, Error> {
        policy.validate()?;
        Ok(SetupNetwork {
            network_rate: TokenBucket::new(policy.network_rate, now),
            network_volume: DailyVolume::new(policy.network_daily_bytes, now),
            policy,
            mode,
            clients: Vec::new(),
            bans: Vec::new(),
            opening: None,
            used_orders: Vec::new(),
        })
    }

    /// The policy.
    pub fn policy(&self) -> &SetupNetworkPolicy {
        &self.policy
    }

    /// Admitted clients, oldest first.
    pub fn clients(&self) -> impl Iterator<Item = ClientMac> + '_ {
        self.clients.iter().map(|c| c.mac)
    }

    /// Banned clients and when each ban ends.
    pub fn bans(&self) -> impl Iterator<Item = (ClientMac, Instant)> + '_ {
        self.bans.iter().copied()
    }

    /// The current ordered opening, if any.
    pub fn opening(&self) -> Option<OrderedOpening> {
        self.opening
    }

    fn is_open(&self) -> bool {
        match self.mode {
            NetworkMode::AlwaysOpen => true,
            NetworkMode::OpenedByOrder => self.opening.is_some(),
        }
    }

    fn ban_of(&self, mac: ClientMac, now: Instant) -> Option<Instant> {
        self.bans
            .iter()
            .find(|(m, until)| *m == mac && now < *until)
            .map(|(_, until)| *until)
    }

    /// A client associated with the setup network.
    pub fn client_joined(&mut self, mac: ClientMac, now: Instant) -> JoinDecision {
        if !self.is_open() {
            return JoinDecision::Refused(RefuseReason::Closed);
        }
        if let Some(until) = self.ban_of(mac, now) {
            return JoinDecision::Refused(RefuseReason::Banned { until });
        }
        if self.clients.iter().any(|c| c.mac == mac) {
            return JoinDecision::AlreadyAdmitted;
        }
        let mut evicted = Vec::new();
        if self.clients.len() >= self.policy.max_clients {
            // Oldest first; only those past the minimum age. None old enough: take no action,
            // they may be provisioning right now.
            let min_age = self.policy.min_age_before_eviction;
            let mut eligible: Vec<(Instant, ClientMac)> = self
                .clients
                .iter()
                .filter(|c| now.saturating_duration_since(c.joined) >= min_age)
                .map(|c| (c.joined, c.mac))
                .collect();
            if eligible.is_empty() {
                return JoinDecision::Refused(RefuseReason::Full);
            }
            // (joined, mac) pairs are unique, so an unstable sort gives the same order in less code.
            eligible.sort_unstable();
            let banned_until = now.saturating_add(self.policy.ban_duration);
            for (_, victim) in eligible.into_iter().take(self.policy.evict_batch) {
                self.remove_client(victim);
                self.bans.retain(|(m, _)| *m != victim);
                self.bans.push((victim, banned_until));
                evicted.push(Eviction {
                    client: victim,
                    banned_until,
                });
            }
        }
        self.clients.push(Client {
            mac,
            joined: now,
            rate: TokenBucket::new(self.policy.client_rate, now),
            volume: DailyVolume::new(self.policy.client_daily_bytes, now),
        });
        JoinDecision::Admitted { evicted }
    }

    fn remove_client(&mut self, mac: ClientMac) {
        self.clients.retain(|c| c.mac != mac);
    }

    /// A client left by itself (disassociated). It is not banned.
    pub fn client_left(&mut self, mac: ClientMac) {
        self.remove_client(mac);
    }

    /// Classifies a packet to or from a setup client, and accounts for it if forwarded.
    pub fn packet(&mut self, p: &Packet, now: Instant) -> PacketDecision {
        let Some(idx) = self.clients.iter().position(|c| c.mac == p.client) else {
            return PacketDecision::Drop(DropReason::UnknownClient);
        };
        if let Err(reason) = self.allowed(p) {
            return PacketDecision::Drop(reason);
        }
        let Some(client) = self.clients.get_mut(idx) else {
            return PacketDecision::Drop(DropReason::UnknownClient);
        };
        // Check every limit before taking from any, so a dropped packet costs nothing.
        if !client.volume.allows(p.len, now) {
            return PacketDecision::Drop(DropReason::ClientDailyVolume);
        }
        if !self.network_volume.allows(p.len, now) {
            return PacketDecision::Drop(DropReason::NetworkDailyVolume);
        }
        if !client.rate.allows(p.len, now) {
            return PacketDecision::Drop(DropReason::ClientRate);
        }
        if !self.network_rate.allows(p.len, now) {
            return PacketDecision::Drop(DropReason::NetworkRate);
        }
        client.volume.take(p.len);
        client.rate.take(p.len);
        self.network_volume.take(p.len);
        self.network_rate.take(p.len);
        PacketDecision::Forward(Priority::BelowHome)
    }

    /// The address rules of paragraph 0046, independent of limits.
    fn allowed(&self, p: &Packet) -> Result<(), DropReason> {
        let pol = &self.policy;
        let (peer, peer_port, client_port) = match p.direction {
            Direction::FromClient => (p.dst, p.dst_port, p.src_port),
            Direction::ToClient => (p.src, p.src_port, p.dst_port),
        };
        let broadcast = peer == IpAddr::V4(core::net::Ipv4Addr::BROADCAST);
        // DHCP with the router (requests are broadcast before the client has an address).
        if p.protocol == Protocol::Udp
            && peer_port == DHCP_SERVER_PORT
            && client_port == DHCP_CLIENT_PORT
            && (peer == pol.router_address || broadcast)
        {
            return Ok(());
        }
        if peer == pol.router_address {
            let dns = pol.dns_to_router
                && peer_port == DNS_PORT
                && matches!(p.protocol, Protocol::Udp | Protocol::Tcp);
            return if dns {
                Ok(())
            } else {
                Err(DropReason::RouterService)
            };
        }
        if pol.server_addresses.contains(&peer) {
            return if p.protocol == Protocol::Tcp && peer_port == HTTPS_PORT {
                Ok(())
            } else {
                Err(DropReason::NotAllowed)
            };
        }
        if pol.in_setup_prefix(peer) || broadcast {
            return Err(DropReason::OtherSetupClient);
        }
        if is_local(peer) {
            return Err(DropReason::HomeNetwork);
        }
        Err(DropReason::NotAllowed)
    }

    /// Carries out a signed order to open the network for one device. `wall_now_ms` is Unix
    /// time in milliseconds (the order's deadline is wall-clock); `now` is the engine's clock.
    pub fn accept_order(
        &mut self,
        bytes: &[u8],
        me: &PublicKey,
        trusted: &dyn KeyLookup,
        provider: &dyn CryptoProvider,
        wall_now_ms: u64,
        now: Instant,
    ) -> Result<OrderedOpening, OrderError> {
        let order = OpenNetworkOrder::verify(bytes, me, trusted, provider)?;
        if wall_now_ms >= order.not_after_ms {
            return Err(OrderError::Expired);
        }
        let max = u64::try_from(self.policy.max_order_validity.as_millis()).unwrap_or(u64::MAX);
        if order.not_after_ms.saturating_sub(order.issued_at_ms) > max
            || order.not_after_ms.saturating_sub(wall_now_ms) > max
        {
            return Err(OrderError::TooLong);
        }
        self.used_orders
            .retain(|(_, deadline)| *deadline > wall_now_ms);
        if self.used_orders.iter().any(|(id, _)| *id == order.order_id) {
            return Err(OrderError::Replayed);
        }
        self.used_orders.push((order.order_id, order.not_after_ms));
        let opening = OrderedOpening {
            device_key_id: order.device_key_id,
            until: now.saturating_add(Duration::from_millis(order.not_after_ms - wall_now_ms)),
        };
        self.opening = Some(opening);
        Ok(opening)
    }

    /// When the engine next needs [`SetupNetwork::handle_timeout`]: the earliest ban expiry or
    /// the end of an ordered opening.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let bans = self.bans.iter().map(|(_, until)| *until);
        let opening = self.opening.map(|o| o.until);
        bans.chain(opening).min()
    }

    /// Lets time pass: ends bans and ordered openings that are due.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TimerDecision> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some((mac, until)) = self.bans.get(i).copied() {
            if now >= until {
                self.bans.remove(i);
                out.push(TimerDecision::Unbanned(mac));
            } else {
                i += 1;
            }
        }
        if let Some(o) = self.opening
            && now >= o.until
        {
            self.opening = None;
            if self.mode == NetworkMode::OpenedByOrder {
                for c in self.clients.drain(..) {
                    out.push(TimerDecision::ClosedEvicting(c.mac));
                }
                out.push(TimerDecision::Closed);
            }
        }
        out
    }

    /// When the daily volume counters next reset (for a router that reports it).
    pub fn next_volume_reset(&self) -> Instant {
        self.network_volume.next_reset()
    }

    /// Starts the network's volume day that `now` falls in, for a router whose kernel counts
    /// the volume (and so never calls [`SetupNetwork::packet`]): it resets the kernel's quota
    /// at [`SetupNetwork::next_volume_reset`], then calls this so the next reset moves a day on.
    pub fn roll_volume_day(&mut self, now: Instant) {
        // Asking about zero bytes moves the window without counting anything.
        let _ = self.network_volume.allows(0, now);
    }
}

/// Private, link-local and unique-local addresses: the home side of a router.
fn is_local(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_private() || a.is_link_local() || a.is_loopback(),
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            a.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}
