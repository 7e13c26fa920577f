//! The ruleset and set updates the policy renders: what each must contain for the kernel to
//! enforce the engine's rules, and the names refused because they could change a script. The
//! kernel itself checks them in zerotouch-router's namespace tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use zerotouch_core::Instant;
use zerotouch_provisioner::*;

const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
const SERVER_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10));
const A: ClientMac = ClientMac([2, 0x5a, 0, 0, 0, 0x0a]);
const B: ClientMac = ClientMac([2, 0x5a, 0, 0, 0, 0x0b]);

fn policy() -> SetupNetworkPolicy {
    let mut p = SetupNetworkPolicy::with_defaults(ROUTER, (ROUTER, 24), vec![SERVER, SERVER_V6]);
    p.max_clients = 1;
    p.min_age_before_eviction = Duration::ZERO;
    p.ban_duration = Duration::from_secs(30);
    p
}

fn interfaces() -> RouterInterfaces {
    RouterInterfaces {
        setup_bridge: "br-setup".into(),
        setup_ports: vec!["wlan0-1".into(), "veth.s1".into()],
        home: vec!["br-lan".into()],
    }
}

fn ruleset(p: &SetupNetworkPolicy) -> NftRuleset {
    NftRuleset::new(p, interfaces(), NftOptions::default()).unwrap()
}

/// The non-comment lines of a chain in the rendered ruleset.
fn chain<'a>(rendered: &'a str, family: &str, name: &str) -> Vec<&'a str> {
    let table = rendered
        .split(&format!("table {family} zerotouch {{"))
        .nth(1)
        .expect("table rendered");
    let body = table
        .split(&format!("chain {name} {{"))
        .nth(1)
        .expect("chain rendered");
    body.lines()
        .map(str::trim)
        .take_while(|l| *l != "}")
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn the_ruleset_replaces_both_tables_in_one_script() {
    let r = ruleset(&policy()).render();
    let head: Vec<&str> = r.lines().skip(1).take(4).collect();
    assert_eq!(
        head,
        [
            "add table bridge zerotouch",
            "delete table bridge zerotouch",
            "add table inet zerotouch",
            "delete table inet zerotouch",
        ]
    );
}

#[test]
fn only_admitted_clients_pass_and_banned_ones_never_do() {
    let r = ruleset(&policy()).render();
    let from = chain(&r, "bridge", "from_setup_client");
    assert_eq!(
        from[0],
        r#"ether saddr @banned counter drop comment "banned""#
    );
    assert_eq!(
        from[1],
        r#"ether saddr != @admitted counter drop comment "not admitted""#
    );
    let to = chain(&r, "bridge", "to_setup_client");
    // Group-addressed frames first (only ARP and DHCP replies), then the same two rules on the
    // destination.
    assert_eq!(
        &to[..3],
        [
            "ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 ether type arp accept",
            "ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 udp sport 67 udp dport 68 accept",
            r#"ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter drop comment "group-addressed""#,
        ]
    );
    assert_eq!(
        to[3],
        r#"ether daddr @banned counter drop comment "banned""#
    );
    assert_eq!(
        to[4],
        r#"ether daddr != @admitted counter drop comment "not admitted""#
    );
    // ARP may not map an address to a group MAC or to a station that is not admitted.
    assert_eq!(
        &from[2..4],
        [
            r#"arp saddr ether & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter drop comment "ARP for a group MAC""#,
            r#"arp saddr ether != @admitted counter drop comment "ARP for another MAC""#,
        ]
    );
    assert_eq!(
        chain(&r, "bridge", "input"),
        [
            r#"type filter hook input priority filter; policy accept;"#,
            r#"iifname { "wlan0-1", "veth.s1" } jump from_setup_client"#
        ]
    );
}

#[test]
fn setup_clients_never_reach_each_other_over_the_bridge() {
    let r = ruleset(&policy()).render();
    let forward = chain(&r, "bridge", "forward");
    assert!(forward.contains(
        &r#"iifname { "wlan0-1", "veth.s1" } counter drop comment "setup client to setup client""#
    ));
}

#[test]
fn the_policys_rates_and_volumes_are_in_the_ruleset() {
    let mut p = policy();
    p.client_rate = RateLimit {
        bytes_per_second: 1111,
        burst_bytes: 2222,
    };
    p.network_rate = RateLimit {
        bytes_per_second: 3333,
        burst_bytes: 4444,
    };
    p.client_daily_bytes = 5555;
    let mut small_burst = p.clone();
    p.network_daily_bytes = 6666;
    let r = ruleset(&p).render();
    for chain_name in ["from_setup_client", "to_setup_client"] {
        let rules = chain(&r, "bridge", chain_name).join("\n");
        // The kernel's bucket is rate + burst bytes: 1111 + 1111 = the policy's 2222.
        assert!(rules.contains("limit rate over 1111 bytes/second burst 1111 bytes"));
        assert!(rules.contains("quota over 5555 bytes"));
        assert!(rules.contains(r#"quota name "network_volume" counter drop"#));
        assert!(rules.contains(r#"limit name "network_rate" counter drop"#));
    }
    assert!(r.contains("rate over 3333 bytes/second burst 1111 bytes"));
    assert!(r.contains("over 6666 bytes"));
    // A burst under a second of the rate is rounded up to it: the kernel cannot hold less.
    small_burst.client_rate.burst_bytes = 10;
    let r = ruleset(&small_burst).render();
    assert!(r.contains("limit rate over 1111 bytes/second burst 0 bytes"));
}

#[test]
fn setup_clients_reach_only_dhcp_on_the_router_without_the_dns_binding() {
    let r = ruleset(&policy()).render();
    assert_eq!(
        chain(&r, "inet", "setup_client_to_router"),
        [
            r#"meta nfproto ipv6 counter drop comment "other address family""#,
            r#"udp sport 68 udp dport 67 ip daddr { 10.77.0.1, 255.255.255.255 } accept comment "DHCP""#,
            r#"counter drop comment "other router services""#
        ]
    );
    assert!(!r.contains("@resolved tcp"));
}

#[test]
fn with_dns_binding_dns_goes_only_to_the_routers_setup_address_and_resolved_addresses_open() {
    let mut p = policy();
    p.dns_to_router = true;
    let r = ruleset(&p).render();
    assert!(chain(&r, "inet", "setup_client_to_router").contains(
        &r#"ip daddr 10.77.0.1 meta l4proto { udp, tcp } th dport 53 accept comment "DNS to the filtering forwarder""#
    ));
    assert!(
        chain(&r, "inet", "from_setup_client")
            .iter()
            .any(|l| l.starts_with("ip daddr @resolved tcp dport 443 accept"))
    );
}

#[test]
fn setup_clients_reach_only_the_servers_https_port() {
    let r = ruleset(&policy()).render();
    let from = chain(&r, "inet", "from_setup_client");
    assert_eq!(
        from,
        [
            "meta mark set 0x5a7 meta priority set 1:3",
            r#"meta nfproto ipv6 counter drop comment "other address family""#,
            r#"ip saddr != 10.77.0.0/24 counter drop comment "spoofed source""#,
            r#"ip daddr @servers tcp dport 443 accept comment "the setup server""#,
            r#"counter drop comment "not the setup server""#,
        ]
    );
    // The v4 setup network's server set holds the v4 address only.
    assert!(r.contains("type ipv4_addr\n\t\telements = { 203.0.113.10 }"));
}

#[test]
fn only_replies_reach_setup_clients_and_the_home_side_is_cut_off_both_ways() {
    let r = ruleset(&policy()).render();
    let forward = chain(&r, "inet", "forward");
    assert_eq!(
        &forward[1..3],
        [
            r#"iifname "br-setup" oifname { "br-lan" } counter drop comment "setup to home""#,
            r#"iifname { "br-lan" } oifname "br-setup" counter drop comment "home to setup""#,
        ]
    );
    let to = chain(&r, "inet", "to_setup_client");
    assert_eq!(to.last(), Some(&r#"counter drop comment "not a reply""#));
    assert!(to.contains(&r#"ct state established ct direction reply accept comment "replies to the client's own connections""#));
}

#[test]
fn setup_traffic_is_marked_below_home_traffic_both_ways() {
    let options = NftOptions {
        marks: QueueMarks {
            mark: 0x42,
            class: (0x10, 0x7),
        },
        ..NftOptions::default()
    };
    let r = NftRuleset::new(&policy(), interfaces(), options)
        .unwrap()
        .render();
    for chain_name in ["from_setup_client", "to_setup_client"] {
        assert_eq!(
            chain(&r, "inet", chain_name)[0],
            "meta mark set 0x42 meta priority set 10:7"
        );
    }
}

#[test]
fn an_ipv6_setup_network_renders_ipv6_rules() {
    let router6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 1));
    let p = SetupNetworkPolicy::with_defaults(router6, (router6, 64), vec![SERVER, SERVER_V6]);
    let r = ruleset(&p).render();
    let from = chain(&r, "inet", "from_setup_client");
    assert!(from.contains(&r#"meta nfproto ipv4 counter drop comment "other address family""#));
    assert!(from.contains(&r#"ip6 saddr != fd00:77::/64 counter drop comment "spoofed source""#));
    assert!(r.contains("type ipv6_addr\n\t\telements = { 2001:db8::a }"));
    assert!(
        chain(&r, "inet", "setup_client_to_router")
            .iter()
            .any(|l| l.starts_with("icmpv6 type { nd-neighbor-solicit"))
    );
}

#[test]
fn a_join_that_evicts_cuts_off_and_bans_the_oldest_before_admitting() {
    let p = policy();
    let r = ruleset(&p);
    let mut net = SetupNetwork::new(p, NetworkMode::AlwaysOpen, Instant(0)).unwrap();
    let first = net.client_joined(A, Instant(0));
    assert_eq!(
        r.updates_for_join(A, &first, Instant(0)),
        [SetUpdate::Admit(A)]
    );
    let second = net.client_joined(B, Instant(5_000));
    let updates = r.updates_for_join(B, &second, Instant(5_000));
    assert_eq!(
        updates,
        [
            SetUpdate::Remove(A),
            SetUpdate::Ban {
                client: A,
                duration: Duration::from_secs(30)
            },
            SetUpdate::Admit(B),
        ]
    );
    assert_eq!(
        r.render_updates(&updates),
        "add element bridge zerotouch admitted { 02:5a:00:00:00:0a }\n\
         delete element bridge zerotouch admitted { 02:5a:00:00:00:0a }\n\
         add element bridge zerotouch banned { 02:5a:00:00:00:0a }\n\
         delete element bridge zerotouch banned { 02:5a:00:00:00:0a }\n\
         add element bridge zerotouch banned { 02:5a:00:00:00:0a timeout 30000ms }\n\
         add element bridge zerotouch admitted { 02:5a:00:00:00:0b }\n"
    );
}

#[test]
fn a_refused_join_changes_no_set() {
    let p = policy();
    let r = ruleset(&p);
    let mut net = SetupNetwork::new(p, NetworkMode::AlwaysOpen, Instant(0)).unwrap();
    net.client_joined(A, Instant(0));
    net.client_joined(B, Instant(1_000)); // evicts and bans A
    let refused = net.client_joined(A, Instant(2_000));
    assert!(matches!(
        refused,
        JoinDecision::Refused(RefuseReason::Banned { .. })
    ));
    assert!(r.updates_for_join(A, &refused, Instant(2_000)).is_empty());
}

#[test]
fn timer_decisions_lift_bans_and_cut_off_clients_of_a_closed_opening() {
    let r = ruleset(&policy());
    assert_eq!(
        r.updates_for_timer(&TimerDecision::Unbanned(A)),
        [SetUpdate::Unban(A)]
    );
    assert_eq!(
        r.updates_for_timer(&TimerDecision::ClosedEvicting(B)),
        [SetUpdate::Remove(B)]
    );
    assert!(r.updates_for_timer(&TimerDecision::Closed).is_empty());
    assert_eq!(
        r.render_updates(&[SetUpdate::ResetNetworkVolume, SetUpdate::RemoveAll]),
        "reset quota bridge zerotouch network_volume\nflush set bridge zerotouch admitted\n"
    );
}

#[test]
fn names_that_could_change_the_script_are_refused() {
    let p = policy();
    let bad = [
        "",
        "br\"x",
        "br x",
        "br;flush",
        "br}",
        "br\nflush ruleset",
        "0abc",
        "sixteen-bytes-xx",
    ];
    for name in bad {
        for place in 0..3 {
            let mut i = interfaces();
            match place {
                0 => i.setup_bridge = name.into(),
                1 => i.setup_ports.push(name.into()),
                _ => i.home.push(name.into()),
            }
            assert_eq!(
                NftRuleset::new(&p, i, NftOptions::default()),
                Err(Error::InvalidRouterConfig(
                    "interface name: 1-15 letters, digits, '_', '-' or '.', starting with a letter"
                )),
                "{name:?} at {place}"
            );
        }
        let options = NftOptions {
            table: name.into(),
            ..NftOptions::default()
        };
        if name != "sixteen-bytes-xx" {
            assert!(
                NftRuleset::new(&p, interfaces(), options).is_err(),
                "{name:?}"
            );
        }
    }
}

#[test]
fn a_setup_bridge_without_ports_or_sharing_an_interface_with_home_is_refused() {
    let p = policy();
    let mut none = interfaces();
    none.setup_ports.clear();
    assert!(NftRuleset::new(&p, none, NftOptions::default()).is_err());
    let mut shared = interfaces();
    shared.home.push("wlan0-1".into());
    assert!(NftRuleset::new(&p, shared, NftOptions::default()).is_err());
}

#[test]
fn the_forwarder_forwards_only_the_servers_names_and_feeds_the_resolved_set() {
    let mut p = policy();
    p.dns_to_router = true;
    let upstream = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));
    let conf = ruleset(&p)
        .render_dns_forwarder(&["setup.example.com", "dns.example.com."], &[upstream])
        .unwrap();
    let lines: Vec<&str> = conf.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "interface=br-setup",
            "except-interface=lo",
            "bind-interfaces",
            "no-resolv",
            "no-hosts",
            "address=/#/",
            "server=/setup.example.com/dns.example.com/192.168.1.1",
            "nftset=/setup.example.com/dns.example.com/4#inet#zerotouch#resolved",
        ]
    );
}

#[test]
fn forwarder_names_that_could_change_its_configuration_are_refused() {
    let r = ruleset(&policy());
    let upstream = [IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1))];
    for name in [
        "",
        "a/b",
        "#",
        "a\nserver=/#/1.1.1.1",
        "a..b",
        "-a.b",
        "a b",
    ] {
        assert!(
            r.render_dns_forwarder(&[name], &upstream).is_err(),
            "{name:?}"
        );
    }
    assert!(r.render_dns_forwarder(&["ok.example"], &[]).is_err());
}

#[test]
fn client_macs_print_and_parse_as_nft_and_hostapd_write_them() {
    assert_eq!(A.to_string(), "02:5a:00:00:00:0a");
    assert_eq!("02:5A:00:00:00:0A".parse::<ClientMac>(), Ok(A));
    assert_eq!("02-5a-00-00-00-0a".parse::<ClientMac>(), Ok(A));
    for bad in [
        "",
        "02:5a:00:00:00",
        "02:5a:00:00:00:0a:00",
        "2:5a:0:0:0:a",
        "zz:5a:00:00:00:0a",
        "+2:5a:00:00:00:0a",
    ] {
        assert_eq!(bad.parse::<ClientMac>(), Err(Error::InvalidMac), "{bad:?}");
    }
}
