//! # zerotouch-provisioner
//!
//! The restricted setup network's policy (seed 000, paragraphs 0044-0046 and 0053) as a
//! sans-IO engine. A router, or an already-joined device acting as one, calls it with events:
//! a client associated, a packet seen, time passed, a signed order arrived. It answers with
//! decisions: admit (after evicting and banning the oldest clients past a minimum age), refuse,
//! forward at a priority below the home network, drop with a reason, unban, close. It owns no
//! socket, firewall or clock; the router applies the decisions. [`NftRuleset`] renders the
//! policy as an nftables ruleset (and a `dnsmasq` filtering forwarder for the DNS binding), and
//! each decision as set updates, which `zerotouch-router` applies.
//!
//! ```
//! use core::net::{IpAddr, Ipv4Addr};
//! use zerotouch_core::Instant;
//! use zerotouch_provisioner::*;
//!
//! let router = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
//! let server = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
//! let policy = SetupNetworkPolicy::with_defaults(router, (router, 24), vec![server]);
//! let mut net = SetupNetwork::new(policy, NetworkMode::AlwaysOpen, Instant(0))?;
//!
//! let device = ClientMac([2, 0, 0, 0, 0, 1]);
//! assert!(matches!(net.client_joined(device, Instant(0)), JoinDecision::Admitted { .. }));
//!
//! let to_server = Packet {
//!     client: device, direction: Direction::FromClient, protocol: Protocol::Tcp,
//!     src: IpAddr::V4(Ipv4Addr::new(10, 77, 0, 23)), src_port: 40000,
//!     dst: server, dst_port: 443, len: 600,
//! };
//! assert_eq!(net.packet(&to_server, Instant(5)), PacketDecision::Forward(Priority::BelowHome));
//! let to_router_admin = Packet { dst: router, dst_port: 80, ..to_server };
//! assert_eq!(net.packet(&to_router_admin, Instant(6)), PacketDecision::Drop(DropReason::RouterService));
//! # Ok::<(), Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod dns_forwarder;
mod engine;
mod error;
mod nftables;
mod order;
mod packet;
mod policy;
mod rate;

pub use engine::{
    DropReason, Eviction, JoinDecision, NetworkMode, OrderedOpening, PacketDecision, Priority,
    RefuseReason, SetupNetwork, TimerDecision,
};
pub use error::{Error, OrderError};
pub use nftables::{NftOptions, NftRuleset, QueueMarks, RouterInterfaces, SetUpdate};
pub use order::{OpenNetworkOrder, order_transcript};
pub use packet::{ClientMac, Direction, Packet, Protocol};
pub use policy::{RateLimit, SetupNetworkPolicy};
