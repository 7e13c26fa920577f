//! The namespace lab: a router, two setup clients, a home client and a server, each in its own
//! network namespace and wired with veth pairs, so that tests check what the kernel enforces.
//!
//! ```text
//!  SetupA eth0 ─ zts-a ┐
//!                      ├ zts (bridge, 10.77.0.1/24) ┐
//!  SetupB eth0 ─ zts-b ┘                            │
//!                                                  Router ─ ztw 10.0.3.1 ─ eth0 Server 10.0.3.2 .20 .30
//!  Home eth0 192.168.50.10 ─ zth 192.168.50.1 ──────┘
//! ```
//!
//! Needs root and iproute2 (plus nftables and dnsmasq for the parts that use them);
//! scripts/system-deps.sh installs all three.
// Each test binary uses a different part of the lab; the lab panics on environment failures
// (no root, no binaries), which are not outcomes under test.
#![allow(dead_code, unused_imports, clippy::expect_used, clippy::panic)]

pub mod dhcp;
pub mod dnsmasq;
pub mod lab;
pub mod probe;
pub mod services;

use std::net::Ipv4Addr;

pub use lab::{Host, Lab, namespaces_with_prefix};
pub use probe::{DnsReply, ProbeError};

/// The router's address on the setup bridge (gateway, DHCP server, DNS forwarder).
pub const ROUTER_SETUP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The address the router's DHCP server reserves for setup client A.
pub const SETUP_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
/// The address the router's DHCP server reserves for setup client B.
pub const SETUP_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 11);
/// The home client.
pub const HOME: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 10);
/// The router's address on the home network.
pub const ROUTER_HOME: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 1);
/// The router's address on the WAN side.
pub const ROUTER_WAN: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 1);
/// The server's main address (setup service and the upstream resolver on port 53).
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 2);
/// The server's address behind `setup.zt.test`: only reachable once it was resolved.
pub const SERVER_BY_NAME: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 20);
/// Another server address (`other.example`), never allowed for setup clients.
pub const SERVER_OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 30);
/// Setup client A's MAC address.
pub const MAC_A: [u8; 6] = [0x02, 0x5a, 0, 0, 0, 0x0a];
/// Setup client B's MAC address.
pub const MAC_B: [u8; 6] = [0x02, 0x5a, 0, 0, 0, 0x0b];
/// The router's setup bridge.
pub const SETUP_BRIDGE: &str = "zts";
/// The router's bridge ports towards setup clients A and B.
pub const SETUP_PORTS: [&str; 2] = ["zts-a", "zts-b"];
/// The router's interface towards the home network.
pub const HOME_IF: &str = "zth";
/// The router's interface towards the server (WAN).
pub const WAN_IF: &str = "ztw";
/// The name the upstream resolver answers with [`SERVER_BY_NAME`].
pub const SETUP_NAME: &str = "setup.zt.test";
/// The name the upstream resolver answers with [`SERVER_OTHER`].
pub const OTHER_NAME: &str = "other.example";
/// The name the upstream resolver answers with a TXT record `tunnel-ok`.
pub const TXT_NAME: &str = "t1.zt.test";
