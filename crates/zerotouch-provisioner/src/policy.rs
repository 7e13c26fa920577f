//! The setup network's restrictions (seed 000, paragraphs 0044-0046), as numbers a router
//! maker sets.

use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use crate::Error;

/// A rate limit: a token bucket refilled at `bytes_per_second`, holding at most `burst_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate.
    pub bytes_per_second: u64,
    /// Largest burst above the sustained rate.
    pub burst_bytes: u64,
}

/// Everything the engine enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupNetworkPolicy {
    /// The router's address on the setup network (DHCP server, DNS forwarder).
    pub router_address: IpAddr,
    /// The setup network's prefix (for telling "another setup client" apart), as address and
    /// prefix length.
    pub setup_prefix: (IpAddr, u8),
    /// The setup server's addresses: the only destinations reachable, on TCP 443.
    pub server_addresses: Vec<IpAddr>,
    /// Whether setup clients may send DNS to the router's filtering forwarder (the DNS binding).
    pub dns_to_router: bool,
    /// Most clients on the setup network at once.
    pub max_clients: usize,
    /// When full, evict this many of the oldest clients at once (at least one).
    pub evict_batch: usize,
    /// A client younger than this is never evicted: it may be provisioning right now.
    pub min_age_before_eviction: Duration,
    /// How long an evicted client stays out.
    pub ban_duration: Duration,
    /// Per-client rate.
    pub client_rate: RateLimit,
    /// Whole-network rate.
    pub network_rate: RateLimit,
    /// Per-client bytes per day.
    pub client_daily_bytes: u64,
    /// Whole-network bytes per day.
    pub network_daily_bytes: u64,
    /// Longest an open-network order may keep the network open.
    pub max_order_validity: Duration,
}

impl SetupNetworkPolicy {
    /// A policy with the defaults a home router would use, for the given addresses.
    pub fn with_defaults(
        router_address: IpAddr,
        setup_prefix: (IpAddr, u8),
        server_addresses: Vec<IpAddr>,
    ) -> Self {
        SetupNetworkPolicy {
            router_address,
            setup_prefix,
            server_addresses,
            dns_to_router: false,
            max_clients: 8,
            evict_batch: 1,
            min_age_before_eviction: Duration::from_secs(120),
            ban_duration: Duration::from_secs(600),
            client_rate: RateLimit {
                bytes_per_second: 32 * 1024,
                burst_bytes: 64 * 1024,
            },
            network_rate: RateLimit {
                bytes_per_second: 128 * 1024,
                burst_bytes: 256 * 1024,
            },
            client_daily_bytes: 16 * 1024 * 1024,
            network_daily_bytes: 64 * 1024 * 1024,
            max_order_validity: Duration::from_secs(7 * 24 * 3600),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.max_clients == 0 {
            return Err(Error::InvalidPolicy("max_clients must be at least 1"));
        }
        if self.evict_batch == 0 || self.evict_batch > self.max_clients {
            return Err(Error::InvalidPolicy("evict_batch must be 1..=max_clients"));
        }
        if self.server_addresses.is_empty() {
            return Err(Error::InvalidPolicy(
                "at least one server address is needed",
            ));
        }
        let max_len = if self.setup_prefix.0.is_ipv4() {
            32
        } else {
            128
        };
        if self.setup_prefix.1 > max_len {
            return Err(Error::InvalidPolicy("setup prefix length out of range"));
        }
        if self.client_rate.bytes_per_second == 0 || self.network_rate.bytes_per_second == 0 {
            return Err(Error::InvalidPolicy("rates must be positive"));
        }
        Ok(())
    }

    /// Whether `addr` is inside the setup network's prefix.
    pub fn in_setup_prefix(&self, addr: IpAddr) -> bool {
        prefix_contains(self.setup_prefix.0, self.setup_prefix.1, addr)
    }
}

/// The network address of `net/len`: its host bits cleared.
pub(crate) fn network_address(net: IpAddr, len: u8) -> IpAddr {
    match net {
        IpAddr::V4(n) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(n) & mask).into())
        }
        IpAddr::V6(n) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(n) & mask).into())
        }
    }
}

fn prefix_contains(net: IpAddr, len: u8, addr: IpAddr) -> bool {
    net.is_ipv4() == addr.is_ipv4() && network_address(net, len) == network_address(addr, len)
}
