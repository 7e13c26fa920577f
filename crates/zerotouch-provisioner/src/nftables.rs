//! The policy as an nftables ruleset, and the engine's decisions as set updates.
//!
//! Two tables carry it, both named by [`NftOptions::table`]:
//! - a `bridge` table on the setup bridge's ports holds everything keyed by a client's MAC:
//!   admission, bans (set elements with the ban's timeout, so the kernel lifts them itself),
//!   client isolation, per-client and whole-network rates and daily volumes;
//! - an `inet` table holds everything keyed by address: DHCP and (with the DNS binding) DNS to
//!   the router, TCP 443 to the server's addresses and to the addresses the filtering forwarder
//!   resolved, replies only to connections a setup client opened, the home side cut off both
//!   ways, and the queueing marks that put setup traffic below home traffic.
//!
//! The engine's run-time decisions become element updates in one `nft -f` transaction each,
//! never a reload, so counters, bans and rate state survive them.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::time::Duration;
use zerotouch_core::Instant;

use crate::{ClientMac, Error, JoinDecision, RateLimit, SetupNetworkPolicy, TimerDecision};

/// The router's interfaces the ruleset names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterInterfaces {
    /// The bridge the setup network's clients are on (it holds the router's setup address).
    /// A Wi-Fi setup network is one port of it, with the access point's client isolation on.
    pub setup_bridge: String,
    /// The bridge's ports that lead to setup clients (the hidden SSID's interface, or veths).
    pub setup_ports: Vec<String>,
    /// The home network's interfaces: nothing crosses between them and the setup bridge.
    pub home: Vec<String>,
}

/// How setup traffic is marked for the router's queueing (paragraph 0046: lower priority than
/// the home network's packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueMarks {
    /// Packet mark (`meta mark`), for `tc` filters and policy routing.
    pub mark: u32,
    /// Traffic-control class (`meta priority`) as `(major, minor)`, written in hex as `tc`
    /// writes class ids: a `prio` or `htb` qdisc
    /// with that major handle queues the packet in that class directly.
    pub class: (u16, u16),
}

/// Rendering options that are not policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftOptions {
    /// Name of both tables.
    pub table: String,
    /// Marks for setup traffic.
    pub marks: QueueMarks,
    /// How long an address the forwarder resolved stays reachable.
    pub resolved_lifetime: Duration,
}

impl Default for NftOptions {
    fn default() -> Self {
        NftOptions {
            table: String::from("zerotouch"),
            // Class 1:3 of an `htb` (or `prio`) qdisc with handle 1: is the router's low class.
            marks: QueueMarks {
                mark: 0x5a7,
                class: (1, 3),
            },
            resolved_lifetime: Duration::from_secs(3600),
        }
    }
}

/// One change to the ruleset's sets, from one engine decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetUpdate {
    /// Let the client's frames through.
    Admit(ClientMac),
    /// Stop the client's frames (left, evicted, or the network closed).
    Remove(ClientMac),
    /// Keep the client out for this long; the kernel removes the element when it ends.
    Ban {
        /// The client.
        client: ClientMac,
        /// How long.
        duration: Duration,
    },
    /// The ban ended (the kernel has already dropped the element; this keeps both in step).
    Unban(ClientMac),
    /// A new day: the whole network's daily volume starts again.
    ResetNetworkVolume,
    /// Let no client through (the router side stops: fail closed).
    RemoveAll,
}

/// The policy rendered for one router: the full ruleset, and the updates that keep its sets in
/// step with the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftRuleset {
    policy: SetupNetworkPolicy,
    interfaces: RouterInterfaces,
    options: NftOptions,
}

/// A rate as nft writes it. The kernel's byte bucket holds `rate + burst` bytes (one second of
/// the rate on top of the burst, `nft_limit.c`), while the engine's holds `burst_bytes`; the
/// burst given to nft is what makes the two the same size. A policy burst under one second of
/// its rate cannot be expressed and becomes one second of it.
fn nft_rate(limit: RateLimit) -> String {
    format!(
        "{} bytes/second burst {} bytes",
        limit.bytes_per_second,
        limit.burst_bytes.saturating_sub(limit.bytes_per_second)
    )
}

/// Interface names as an nft anonymous set: `{ "a", "b" }`.
fn anonymous_set(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", quoted.join(", "))
}

/// Names nft reads as identifiers: interface names (at most 15 bytes, `IFNAMSIZ - 1`) and table
/// names. Anything else is refused so that no configured name can change the script.
fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
}

impl NftRuleset {
    /// Checks the names and keeps what rendering needs.
    pub fn new(
        policy: &SetupNetworkPolicy,
        interfaces: RouterInterfaces,
        options: NftOptions,
    ) -> Result<Self, Error> {
        policy.validate()?;
        if !valid_name(&options.table, 32) {
            return Err(Error::InvalidRouterConfig(
                "table name: 1-32 letters, digits, '_', '-' or '.', starting with a letter",
            ));
        }
        let names = core::iter::once(&interfaces.setup_bridge)
            .chain(&interfaces.setup_ports)
            .chain(&interfaces.home);
        for name in names {
            if !valid_name(name, 15) {
                return Err(Error::InvalidRouterConfig(
                    "interface name: 1-15 letters, digits, '_', '-' or '.', starting with a letter",
                ));
            }
        }
        if interfaces.setup_ports.is_empty() {
            return Err(Error::InvalidRouterConfig(
                "the setup bridge needs at least one port",
            ));
        }
        if interfaces.setup_ports.contains(&interfaces.setup_bridge)
            || interfaces.home.contains(&interfaces.setup_bridge)
            || interfaces
                .setup_ports
                .iter()
                .any(|p| interfaces.home.contains(p))
        {
            return Err(Error::InvalidRouterConfig(
                "the setup bridge, its ports and the home interfaces must all differ",
            ));
        }
        if options.resolved_lifetime.as_secs() == 0 {
            return Err(Error::InvalidRouterConfig(
                "resolved addresses need a lifetime of at least a second",
            ));
        }
        Ok(NftRuleset {
            policy: policy.clone(),
            interfaces,
            options,
        })
    }

    /// The tables' name.
    pub fn table(&self) -> &str {
        &self.options.table
    }

    /// The policy it renders.
    pub fn policy(&self) -> &SetupNetworkPolicy {
        &self.policy
    }

    /// The interfaces the ruleset names.
    pub fn interfaces(&self) -> &RouterInterfaces {
        &self.interfaces
    }

    /// The whole ruleset as an `nft -f` script. It replaces earlier versions of both tables in
    /// one transaction (sets start empty: no client is admitted until the engine says so).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let t = &self.options.table;
        let _ = writeln!(
            out,
            "# zerotouch setup network (seed 000, paragraphs 0044-0046); generated, do not edit."
        );
        // `add` then `delete` replaces the tables whether or not they exist, atomically.
        for family in ["bridge", "inet"] {
            let _ = writeln!(out, "add table {family} {t}\ndelete table {family} {t}");
        }
        out.push('\n');
        self.render_bridge(&mut out);
        out.push('\n');
        self.render_inet(&mut out);
        out
    }

    fn ports(&self) -> String {
        anonymous_set(&self.interfaces.setup_ports)
    }

    fn render_bridge(&self, out: &mut String) {
        let p = &self.policy;
        let ports = self.ports();
        let client_rate = format!("limit rate over {}", nft_rate(p.client_rate));
        let client_volume = format!("quota over {} bytes", p.client_daily_bytes);
        let ban_s = p.ban_duration.as_secs().max(1);
        let _ = write!(
            out,
            r#"table bridge {t} {{
	# Only clients the engine admitted pass (it keeps their number within its cap).
	set admitted {{
		type ether_addr
	}}

	# Evicted clients, each element timing out when its ban ends.
	set banned {{
		type ether_addr
		flags timeout
		timeout {ban_s}s
	}}

	# One token bucket per client, shared by both directions.
	set client_rate {{
		type ether_addr
		size 65535
		flags dynamic,timeout
		timeout 10m
	}}

	# One daily quota per client: the element lives a day from the client's first frame.
	set client_volume {{
		type ether_addr
		size 65535
		flags dynamic,timeout
		timeout 1d
	}}

	limit network_rate {{
		rate over {network_rate}
	}}

	# Reset by the router side once a day.
	quota network_volume {{
		over {nvol} bytes
	}}

	chain input {{
		type filter hook input priority filter; policy accept;
		iifname {ports} jump from_setup_client
	}}

	chain forward {{
		type filter hook forward priority filter; policy accept;
		# Setup clients never reach each other, broadcasts and ARP included.
		iifname {ports} counter drop comment "setup client to setup client"
		oifname {ports} counter drop comment "bridged into the setup network"
	}}

	chain output {{
		type filter hook output priority filter; policy accept;
		oifname {ports} jump to_setup_client
	}}

	chain from_setup_client {{
		ether saddr @banned counter drop comment "banned"
		ether saddr != @admitted counter drop comment "not admitted"
		# ARP may not map an address to a group MAC (which would reach every port, unlimited) or
		# to a station that is not admitted.
		arp saddr ether & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter drop comment "ARP for a group MAC"
		arp saddr ether != @admitted counter drop comment "ARP for another MAC"
		add @client_volume {{ ether saddr {client_volume} }} counter drop comment "client daily volume"
		update @client_rate {{ ether saddr {client_rate} }} counter drop comment "client rate"
		quota name "network_volume" counter drop comment "network daily volume"
		limit name "network_rate" counter drop comment "network rate"
	}}

	chain to_setup_client {{
		# Group-addressed frames reach every port, so only ARP and DHCP replies may be sent so;
		# anything else (an address a client mapped to a broadcast MAC) would skip every limit.
		ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 ether type arp accept
		ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 udp sport 67 udp dport 68 accept
		ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter drop comment "group-addressed"
		ether daddr @banned counter drop comment "banned"
		ether daddr != @admitted counter drop comment "not admitted"
		add @client_volume {{ ether daddr {client_volume} }} counter drop comment "client daily volume"
		update @client_rate {{ ether daddr {client_rate} }} counter drop comment "client rate"
		quota name "network_volume" counter drop comment "network daily volume"
		limit name "network_rate" counter drop comment "network rate"
	}}
}}
"#,
            t = self.options.table,
            network_rate = nft_rate(p.network_rate),
            nvol = p.network_daily_bytes,
        );
    }

    fn render_inet(&self, out: &mut String) {
        let p = &self.policy;
        let bridge = &self.interfaces.setup_bridge;
        let prefix_len = p.setup_prefix.1;
        let prefix = crate::policy::network_address(p.setup_prefix.0, prefix_len);
        let (family, other_family, addr_type) = if prefix.is_ipv4() {
            ("ip", "ipv6", "ipv4_addr")
        } else {
            ("ip6", "ipv4", "ipv6_addr")
        };
        let servers: Vec<String> = p
            .server_addresses
            .iter()
            .filter(|a| a.is_ipv4() == prefix.is_ipv4())
            .map(|a| format!("{a}"))
            .collect();
        let server_elements = if servers.is_empty() {
            String::new()
        } else {
            format!("\n\t\telements = {{ {} }}", servers.join(", "))
        };
        let resolved_s = self.options.resolved_lifetime.as_secs();
        let marks = format!(
            "meta mark set {:#x} meta priority set {:x}:{:x}",
            self.options.marks.mark, self.options.marks.class.0, self.options.marks.class.1
        );
        let home = if self.interfaces.home.is_empty() {
            String::new()
        } else {
            let home = anonymous_set(&self.interfaces.home);
            format!(
                "\t\tiifname \"{bridge}\" oifname {home} counter drop comment \"setup to home\"\n\
                 \t\tiifname {home} oifname \"{bridge}\" counter drop comment \"home to setup\"\n"
            )
        };
        let router = p.router_address;
        // DHCPv6 clients send to this multicast group; DHCPv4 ones broadcast.
        let broadcast = if prefix.is_ipv4() {
            "255.255.255.255"
        } else {
            "ff02::1:2"
        };
        let dns_input = if p.dns_to_router {
            format!(
                "\t\t{family} daddr {router} meta l4proto {{ udp, tcp }} th dport 53 accept comment \"DNS to the filtering forwarder\"\n"
            )
        } else {
            String::new()
        };
        let nd_input = if prefix.is_ipv4() {
            ""
        } else {
            "\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept\n"
        };
        let resolved_rule = if p.dns_to_router {
            format!(
                "\t\t{family} daddr @resolved tcp dport 443 accept comment \"the server, by the name the forwarder resolved\"\n"
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            r#"table inet {t} {{
	# The setup server's configured addresses.
	set servers {{
		type {addr_type}{server_elements}
	}}

	# Addresses the filtering DNS forwarder resolved for the server's name.
	set resolved {{
		type {addr_type}
		flags timeout
		timeout {resolved_s}s
	}}

	chain input {{
		type filter hook input priority filter; policy accept;
		iifname "{bridge}" jump setup_client_to_router
	}}

	chain setup_client_to_router {{
		meta nfproto {other_family} counter drop comment "other address family"
		udp sport 68 udp dport 67 {family} daddr {{ {router}, {broadcast} }} accept comment "DHCP"
{dns_input}{nd_input}		counter drop comment "other router services"
	}}

	chain forward {{
		type filter hook forward priority filter; policy accept;
{home}		iifname "{bridge}" jump from_setup_client
		oifname "{bridge}" jump to_setup_client
	}}

	chain from_setup_client {{
		{marks}
		meta nfproto {other_family} counter drop comment "other address family"
		{family} saddr != {prefix}/{prefix_len} counter drop comment "spoofed source"
		{family} daddr @servers tcp dport 443 accept comment "the setup server"
{resolved_rule}		counter drop comment "not the setup server"
	}}

	chain to_setup_client {{
		{marks}
		ct state established ct direction reply accept comment "replies to the client's own connections"
		ct state related accept comment "errors about them"
		counter drop comment "not a reply"
	}}
}}
"#,
            t = self.options.table,
        );
    }

    /// The set updates an engine's join decision needs.
    pub fn updates_for_join(
        &self,
        client: ClientMac,
        decision: &JoinDecision,
        now: Instant,
    ) -> Vec<SetUpdate> {
        match decision {
            JoinDecision::Admitted { evicted } => {
                let mut updates = Vec::with_capacity(evicted.len() * 2 + 1);
                for e in evicted {
                    let ms = e.banned_until.0.saturating_sub(now.0);
                    updates.push(SetUpdate::Remove(e.client));
                    updates.push(SetUpdate::Ban {
                        client: e.client,
                        duration: Duration::from_millis(ms),
                    });
                }
                updates.push(SetUpdate::Admit(client));
                updates
            }
            // Admitting again is idempotent and heals a set someone else changed.
            JoinDecision::AlreadyAdmitted => alloc::vec![SetUpdate::Admit(client)],
            // Never admitted: the kernel already drops it.
            JoinDecision::Refused(_) => Vec::new(),
        }
    }

    /// The set updates a timer decision needs.
    pub fn updates_for_timer(&self, decision: &TimerDecision) -> Vec<SetUpdate> {
        match decision {
            TimerDecision::Unbanned(client) => alloc::vec![SetUpdate::Unban(*client)],
            TimerDecision::ClosedEvicting(client) => alloc::vec![SetUpdate::Remove(*client)],
            TimerDecision::Closed => Vec::new(),
        }
    }

    /// The updates as one `nft -f` script (one transaction). Each is idempotent: removing an
    /// absent element or admitting an admitted one is not an error.
    pub fn render_updates(&self, updates: &[SetUpdate]) -> String {
        let t = &self.options.table;
        let mut out = String::new();
        for update in updates {
            match update {
                SetUpdate::Admit(c) => {
                    let _ = writeln!(out, "add element bridge {t} admitted {{ {c} }}");
                }
                // nft 1.0.6 has no `destroy`: adding first makes the delete always succeed.
                SetUpdate::Remove(c) => {
                    let _ = writeln!(
                        out,
                        "add element bridge {t} admitted {{ {c} }}\ndelete element bridge {t} admitted {{ {c} }}"
                    );
                }
                SetUpdate::Ban { client, duration } => {
                    // A ban shorter than the kernel's timer resolution still bans.
                    let ms = duration.as_millis().max(1);
                    let _ = writeln!(
                        out,
                        "add element bridge {t} banned {{ {client} }}\ndelete element bridge {t} banned {{ {client} }}\nadd element bridge {t} banned {{ {client} timeout {ms}ms }}"
                    );
                }
                SetUpdate::Unban(c) => {
                    let _ = writeln!(
                        out,
                        "add element bridge {t} banned {{ {c} }}\ndelete element bridge {t} banned {{ {c} }}"
                    );
                }
                SetUpdate::ResetNetworkVolume => {
                    let _ = writeln!(out, "reset quota bridge {t} network_volume");
                }
                SetUpdate::RemoveAll => {
                    let _ = writeln!(out, "flush set bridge {t} admitted");
                }
            }
        }
        out
    }
}
