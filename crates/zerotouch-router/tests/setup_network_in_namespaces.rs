#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
//! The setup network enforced by the kernel, shown with real packets (seed 000, paragraphs
//! 0044-0046): the `zerotouch-router` binary loads the ruleset in the lab's router namespace
//! and keeps its sets in step with the engine from station events; setup clients, a home
//! client and a server in their own namespaces send real packets. Every probe from a setup
//! client is also put to the engine (`SetupNetwork::packet`), and the kernel must agree.
//!
//! Needs root, iproute2, nftables and dnsmasq (scripts/system-deps.sh installs them).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant as WallInstant};

use common::{HOME, ROUTER_HOME, ROUTER_SETUP, SERVER, SERVER_BY_NAME, SERVER_OTHER};
use common::{HOME_IF, MAC_A, MAC_B, SETUP_A, SETUP_B, SETUP_BRIDGE, SETUP_PORTS, WAN_IF};
use common::{Host, Lab, OTHER_NAME, ProbeError, SETUP_NAME, TXT_NAME};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use zerotouch_core::Instant;
use zerotouch_provisioner::{
    ClientMac, Direction, JoinDecision, NetworkMode, PacketDecision, Protocol, SetupNetwork,
    SetupNetworkPolicy,
};

const TABLE: &str = "zerotouch";
/// How long the binary may take to answer a station event.
const DECISION_TIMEOUT: Duration = Duration::from_secs(5);

fn at(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

fn mac(host: Host) -> ClientMac {
    match host {
        Host::SetupA => ClientMac(MAC_A),
        Host::SetupB => ClientMac(MAC_B),
        other => panic!("{other:?} is not a setup client"),
    }
}

/// The policy options the binary is started with; the engine twin gets the same numbers.
struct Limits {
    max_clients: usize,
    ban_secs: u64,
    client_rate: (u64, u64),
    dns: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 2,
            ban_secs: 600,
            // Fast enough that no probe here is slowed by it; the rate test sets its own.
            client_rate: (50_000_000, 50_000_000),
            dns: false,
        }
    }
}

impl Limits {
    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "--setup-bridge",
            SETUP_BRIDGE,
            "--setup-port",
            SETUP_PORTS[0],
            "--setup-port",
            SETUP_PORTS[1],
            "--home-interface",
            HOME_IF,
            "--router-address",
            "10.77.0.1",
            "--setup-prefix",
            "10.77.0.0/24",
            "--server",
            "10.0.3.2",
            "--min-age-secs",
            "0",
        ]
        .map(String::from)
        .into();
        let (rate, burst) = self.client_rate;
        args.extend([
            "--max-clients".into(),
            self.max_clients.to_string(),
            "--ban-secs".into(),
            self.ban_secs.to_string(),
            "--client-rate".into(),
            format!("{rate},{burst}"),
            "--network-rate".into(),
            format!("{},{}", rate * 2, burst * 2),
        ]);
        if self.dns {
            args.extend(["--dns-name", "zt.test", "--dns-upstream", "10.0.3.2"].map(String::from));
        }
        args
    }

    /// The engine the binary runs, to ask what it decides for a packet.
    fn engine(&self) -> SetupNetwork {
        let router = IpAddr::V4(ROUTER_SETUP);
        let mut p =
            SetupNetworkPolicy::with_defaults(router, (router, 24), vec![IpAddr::V4(SERVER)]);
        p.max_clients = self.max_clients;
        p.min_age_before_eviction = Duration::ZERO;
        p.dns_to_router = self.dns;
        let (rate, burst) = self.client_rate;
        p.client_rate.bytes_per_second = rate;
        p.client_rate.burst_bytes = burst;
        p.network_rate.bytes_per_second = rate * 2;
        p.network_rate.burst_bytes = burst * 2;
        SetupNetwork::new(p, NetworkMode::AlwaysOpen, Instant(0)).expect("policy")
    }
}

/// The `zerotouch-router run` process in the router's namespace: station events in on its
/// standard input, decisions read from its standard output. Killed when dropped.
struct RouterProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl RouterProcess {
    fn start(lab: &Lab, limits: &Limits) -> RouterProcess {
        let stderr = std::fs::File::create(lab.log_path("zerotouch-router")).expect("log file");
        let mut child = lab.in_ns(Host::Router, || {
            Command::new(env!("CARGO_BIN_EXE_zerotouch-router"))
                .arg("run")
                .args(limits.args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(stderr)
                .spawn()
                .expect("start zerotouch-router")
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut router = RouterProcess {
            child,
            lines,
            seen: Vec::new(),
        };
        router.expect(lab, "ready");
        router
    }

    /// Sends a hostapd event line.
    fn event(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}").expect("write to zerotouch-router");
    }

    fn connected(&mut self, host: Host) {
        self.event(&format!("<3>AP-STA-CONNECTED {}", mac(host)));
    }

    /// Waits for the next line, which must be `expected`.
    fn expect(&mut self, lab: &Lab, expected: &str) {
        self.expect_within(lab, expected, DECISION_TIMEOUT);
    }

    /// Waits up to `wait` for the next line, which must be `expected`.
    fn expect_within(&mut self, lab: &Lab, expected: &str, wait: Duration) {
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                assert_eq!(line, expected, "after {:?}", self.seen);
                self.seen.push(line);
            }
            Err(e) => panic!(
                "no {expected:?} from zerotouch-router ({e}) after {:?}; its stderr:\n{}",
                self.seen,
                lab.log("zerotouch-router")
            ),
        }
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lab with its services, the router's dnsmasq (DHCP, and the forwarder with `limits.dns`)
/// and the router binary running.
fn lab_with_router(limits: &Limits) -> (Lab, RouterProcess) {
    let lab = Lab::build();
    lab.start_services();
    if limits.dns {
        lab.start_upstream_dns();
    }
    let router = start_router(&lab, limits);
    (lab, router)
}

/// The router binary and the router's dnsmasq (DHCP, and the forwarder with `limits.dns`).
fn start_router(lab: &Lab, limits: &Limits) -> RouterProcess {
    let router = RouterProcess::start(lab, limits);
    let mut dnsmasq = lab.router_dhcp_config(limits.dns);
    if limits.dns {
        let out = Command::new(env!("CARGO_BIN_EXE_zerotouch-router"))
            .arg("render")
            .arg("--dnsmasq")
            .args(limits.args())
            .output()
            .expect("render the forwarder");
        assert!(out.status.success());
        dnsmasq.push_str(&String::from_utf8(out.stdout).expect("utf-8"));
    }
    lab.start_dnsmasq(Host::Router, "router-dnsmasq", &dnsmasq);
    router
}

/// Admits `host` through the binary and gives it its address by DHCP through the ruleset.
fn join(lab: &Lab, router: &mut RouterProcess, host: Host, address: Ipv4Addr) {
    router.connected(host);
    router.expect(lab, &format!("admitted {}", mac(host)));
    assert_eq!(
        lab.dhcp_lease(host),
        Ok(address),
        "{host:?} gets its lease through the ruleset; dnsmasq:\n{}",
        lab.log("router-dnsmasq")
    );
    lab.configure_address(host, address);
}

#[derive(Clone, Copy, Debug)]
enum Probe {
    Tcp(Ipv4Addr, u16),
    Udp(Ipv4Addr, u16),
}

impl Probe {
    fn run(self, lab: &Lab, from: Host) -> Result<(), ProbeError> {
        match self {
            Probe::Tcp(ip, port) => lab.tcp_echo(from, at(ip, port)),
            Probe::Udp(ip, port) => lab.udp_echo(from, at(ip, port)),
        }
    }

    /// What the engine decides for the probe's first packet from `client` at `src`.
    fn engine_forwards(self, engine: &mut SetupNetwork, client: ClientMac, src: Ipv4Addr) -> bool {
        let (protocol, dst, dst_port) = match self {
            Probe::Tcp(ip, port) => (Protocol::Tcp, ip, port),
            Probe::Udp(ip, port) => (Protocol::Udp, ip, port),
        };
        let packet = zerotouch_provisioner::Packet {
            client,
            direction: Direction::FromClient,
            protocol,
            src: IpAddr::V4(src),
            src_port: 40000,
            dst: IpAddr::V4(dst),
            dst_port,
            len: 60,
        };
        matches!(
            engine.packet(&packet, Instant(1)),
            PacketDecision::Forward(_)
        )
    }
}

/// Runs every probe at once (a dropped probe costs its whole timeout) and returns, per probe,
/// whether it got its answer.
fn run_all(lab: &Lab, probes: &[(Host, Probe)]) -> Vec<Result<(), ProbeError>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = probes
            .iter()
            .map(|&(from, probe)| scope.spawn(move || probe.run(lab, from)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("probe thread"))
            .collect()
    })
}

fn admitted_engine(limits: &Limits, clients: &[Host]) -> SetupNetwork {
    let mut engine = limits.engine();
    for &c in clients {
        assert!(matches!(
            engine.client_joined(mac(c), Instant(0)),
            JoinDecision::Admitted { .. }
        ));
    }
    engine
}

fn address(host: Host) -> Ipv4Addr {
    match host {
        Host::SetupA => SETUP_A,
        Host::SetupB => SETUP_B,
        other => panic!("{other:?} is not a setup client"),
    }
}

#[test]
fn a_setup_client_reaches_dhcp_and_the_servers_https_port_and_nothing_else() {
    let limits = Limits::default();
    let (lab, mut router) = lab_with_router(&limits);
    join(&lab, &mut router, Host::SetupA, SETUP_A);
    join(&lab, &mut router, Host::SetupB, SETUP_B);

    let from_setup = [
        // allowed: the setup server's HTTPS port
        Probe::Tcp(SERVER, 443),
        // the server on any other port or protocol
        Probe::Tcp(SERVER, 80),
        Probe::Udp(SERVER, 9000),
        // other Internet addresses, also on 443
        Probe::Tcp(SERVER_OTHER, 443),
        Probe::Tcp(SERVER_BY_NAME, 443),
        // the router's other ports, on either of its addresses
        Probe::Tcp(ROUTER_SETUP, 22),
        Probe::Tcp(ROUTER_SETUP, 8080),
        Probe::Udp(ROUTER_SETUP, 9000),
        Probe::Tcp(ROUTER_HOME, 8080),
        // the home client
        Probe::Tcp(HOME, 8080),
        Probe::Udp(HOME, 9000),
    ];
    let mut probes: Vec<(Host, Probe)> = from_setup.iter().map(|&p| (Host::SetupA, p)).collect();
    // The other setup client, both ways.
    probes.push((Host::SetupA, Probe::Tcp(SETUP_B, 8080)));
    probes.push((Host::SetupA, Probe::Udp(SETUP_B, 9000)));
    probes.push((Host::SetupB, Probe::Tcp(SETUP_A, 8080)));
    probes.push((Host::SetupB, Probe::Tcp(SERVER, 443)));
    let results = run_all(&lab, &probes);

    let mut engine = admitted_engine(&limits, &[Host::SetupA, Host::SetupB]);
    let mut report = Vec::new();
    for (&(from, probe), result) in probes.iter().zip(&results) {
        let engine_says = probe.engine_forwards(&mut engine, mac(from), address(from));
        let kernel_says = result.is_ok();
        if engine_says != kernel_says {
            report.push(format!(
                "{from:?} → {probe:?}: engine forwards {engine_says}, kernel {result:?}"
            ));
        }
    }
    assert!(
        report.is_empty(),
        "kernel and engine disagree:\n{}",
        report.join("\n")
    );
    // The only probes that got through are the two to the server's port 443.
    let passed: Vec<_> = probes
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(passed.len(), 2, "{passed:?}");
}

#[test]
fn the_home_side_is_unaffected_and_never_reaches_setup_clients() {
    let limits = Limits::default();
    let (lab, mut router) = lab_with_router(&limits);
    join(&lab, &mut router, Host::SetupA, SETUP_A);
    let probes = [
        (Host::Home, Probe::Tcp(SERVER, 443)),
        (Host::Home, Probe::Tcp(SERVER, 80)),
        (Host::Home, Probe::Udp(SERVER, 9000)),
        (Host::Home, Probe::Tcp(ROUTER_HOME, 8080)),
        (Host::Home, Probe::Tcp(SETUP_A, 8080)),
        (Host::Home, Probe::Udp(SETUP_A, 9000)),
    ];
    let results = run_all(&lab, &probes);
    let expected = [true, true, true, true, false, false];
    for ((probe, result), want) in probes.iter().zip(&results).zip(expected) {
        assert_eq!(result.is_ok(), want, "{probe:?}: {result:?}");
    }
    // The engine agrees that a packet from home to a setup client is dropped.
    let mut engine = admitted_engine(&limits, &[Host::SetupA]);
    let to_client = zerotouch_provisioner::Packet {
        client: mac(Host::SetupA),
        direction: Direction::ToClient,
        protocol: Protocol::Tcp,
        src: IpAddr::V4(HOME),
        src_port: 40000,
        dst: IpAddr::V4(SETUP_A),
        dst_port: 8080,
        len: 60,
    };
    assert!(matches!(
        engine.packet(&to_client, Instant(1)),
        PacketDecision::Drop(_)
    ));
    // A big download from home is not held to the setup network's rates.
    let (got, _) = lab
        .tcp_download(
            Host::Home,
            at(SERVER, 443),
            4_000_000,
            Duration::from_secs(10),
        )
        .expect("home download");
    assert_eq!(got, 4_000_000);
}

#[test]
fn a_client_that_is_not_admitted_gets_nothing_not_even_dhcp() {
    let limits = Limits::default();
    let (lab, mut router) = lab_with_router(&limits);
    join(&lab, &mut router, Host::SetupA, SETUP_A);
    // B never associated (no station event): its DHCP discover is dropped on the bridge.
    assert!(lab.dhcp_lease(Host::SetupB).is_err());
    // With an address configured by hand it still reaches nothing.
    lab.configure_address(Host::SetupB, SETUP_B);
    let probes = [
        (Host::SetupB, Probe::Tcp(SERVER, 443)),
        (Host::SetupB, Probe::Tcp(ROUTER_SETUP, 22)),
        (Host::SetupB, Probe::Tcp(SETUP_A, 8080)),
    ];
    for (probe, result) in probes.iter().zip(run_all(&lab, &probes)) {
        assert!(result.is_err(), "{probe:?} reached");
    }
}

fn nft(lab: &Lab, args: &str) -> String {
    let mut cmd = vec![common::lab::tool("nft").display().to_string()];
    cmd.extend(args.split_whitespace().map(String::from));
    lab.exec_ok(Host::Router, &cmd)
}

/// The rule handles of both tables (`nft -a`): a reload would renumber them.
fn rule_handles(lab: &Lab) -> Vec<String> {
    let mut handles = Vec::new();
    for family in ["bridge", "inet"] {
        let listing = nft(lab, &format!("-a list table {family} {TABLE}"));
        handles.extend(
            listing
                .lines()
                .filter_map(|l| l.split("# handle ").nth(1))
                .map(|h| format!("{family} {h}")),
        );
    }
    handles
}

/// Packets counted by the rule with `comment` in `family`'s `chain`.
fn rule_packets(lab: &Lab, family: &str, chain: &str, comment: &str) -> u64 {
    let listing = nft(lab, &format!("list chain {family} {TABLE} {chain}"));
    let line = listing
        .lines()
        .find(|l| l.contains(&format!("comment \"{comment}\"")))
        .unwrap_or_else(|| panic!("no rule {comment:?} in {chain}:\n{listing}"));
    line.split("packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter on {line:?}"))
}

#[test]
fn an_evicted_client_is_cut_off_and_a_banned_one_stays_out_until_the_ban_expires() {
    let limits = Limits {
        max_clients: 1,
        ban_secs: 10,
        ..Limits::default()
    };
    let (lab, mut router) = lab_with_router(&limits);
    join(&lab, &mut router, Host::SetupA, SETUP_A);
    lab.tcp_echo(Host::SetupA, at(SERVER, 443))
        .expect("admitted A reaches the server");

    // A long download A has open when it is evicted.
    let mut open = lab.in_ns(Host::SetupA, || {
        let mut s =
            TcpStream::connect_timeout(&at(SERVER, 443), Duration::from_secs(2)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        s.write_all(b"stream 1000000000\n").unwrap();
        s
    });
    let mut buf = vec![0u8; 65536];
    assert!(open.read(&mut buf).expect("download starts") > 0);
    // A drop counted before the updates, to see that they do not reset counters.
    assert!(lab.tcp_echo(Host::SetupA, at(ROUTER_SETUP, 22)).is_err());
    let router_drops = || {
        rule_packets(
            &lab,
            "inet",
            "setup_client_to_router",
            "other router services",
        )
    };
    let router_drops_before = router_drops();
    assert!(router_drops_before > 0);
    let handles_before = rule_handles(&lab);

    // B associates: the network is full and A is the oldest, so A is evicted and banned.
    let banned_at = WallInstant::now();
    router.connected(Host::SetupB);
    router.expect(
        &lab,
        &format!("evicted {} banned-ms 10000", mac(Host::SetupA)),
    );
    router.expect(&lab, &format!("admitted {}", mac(Host::SetupB)));
    // The ban is an element with the ban's timeout: the kernel lifts it by itself.
    let banned = nft(&lab, &format!("list set bridge {TABLE} banned"));
    assert!(
        banned.contains(&format!("{} expires", mac(Host::SetupA))),
        "{banned}"
    );
    assert_eq!(lab.dhcp_lease(Host::SetupB), Ok(SETUP_B));
    lab.configure_address(Host::SetupB, SETUP_B);

    // A's open download stops: after what was already in flight, nothing more arrives.
    let mut after = 0usize;
    let stalled = loop {
        match open.read(&mut buf) {
            Ok(0) => break false,
            Ok(n) => after += n,
            Err(_) => break true,
        }
        assert!(after < 64 << 20, "A still receives after its eviction");
    };
    assert!(stalled, "A's connection ended instead of being cut off");

    // A stays out while banned, even when it associates again.
    router.connected(Host::SetupA);
    router.expect(&lab, &format!("refused {} banned", mac(Host::SetupA)));
    let probes = [
        (Host::SetupA, Probe::Tcp(SERVER, 443)),
        (Host::SetupB, Probe::Tcp(SERVER, 443)),
    ];
    let results = run_all(&lab, &probes);
    assert!(results[0].is_err(), "banned A reached the server");
    assert_eq!(results[1], Ok(()), "B reaches the server");
    assert!(lab.dhcp_lease(Host::SetupA).is_err(), "banned A got DHCP");

    // The updates changed sets, not rules: same handles, counters kept counting.
    assert_eq!(rule_handles(&lab), handles_before);
    assert!(router_drops() >= router_drops_before);
    assert!(rule_packets(&lab, "bridge", "from_setup_client", "banned") > 0);

    // The ban ends by itself in the kernel (the element's timeout) and in the engine.
    let left = Duration::from_secs(10).saturating_sub(banned_at.elapsed());
    router.expect_within(
        &lab,
        &format!("unbanned {}", mac(Host::SetupA)),
        left + DECISION_TIMEOUT,
    );
    assert!(banned_at.elapsed() >= Duration::from_secs(10));
    let banned = nft(&lab, &format!("list set bridge {TABLE} banned"));
    assert!(!banned.contains(&mac(Host::SetupA).to_string()), "{banned}");

    // A may come back; B (now the oldest) makes room.
    router.connected(Host::SetupA);
    router.expect(
        &lab,
        &format!("evicted {} banned-ms 10000", mac(Host::SetupB)),
    );
    router.expect(&lab, &format!("admitted {}", mac(Host::SetupA)));
    let results = run_all(&lab, &probes);
    assert_eq!(results[0], Ok(()), "A is back");
    assert!(results[1].is_err(), "evicted B still reaches the server");
}

#[test]
fn dns_goes_only_to_the_forwarder_which_resolves_only_the_servers_names() {
    let limits = Limits {
        dns: true,
        ..Limits::default()
    };
    let (lab, mut router) = lab_with_router(&limits);
    join(&lab, &mut router, Host::SetupA, SETUP_A);
    let forwarder = at(ROUTER_SETUP, 53);

    // Before the name is resolved, its address is closed.
    assert!(lab.tcp_echo(Host::SetupA, at(SERVER_BY_NAME, 443)).is_err());

    // Any other name: NXDOMAIN from the forwarder, nothing forwarded, nothing opened.
    let other = lab
        .dns_query(Host::SetupA, forwarder, OTHER_NAME, RecordType::A)
        .expect("the forwarder answers");
    assert_eq!(other.rcode, ResponseCode::NXDomain);
    assert!(other.a.is_empty());
    let tunnel = lab
        .dns_query(
            Host::SetupA,
            forwarder,
            "data.evil-tunnel.example",
            RecordType::TXT,
        )
        .expect("the forwarder answers");
    assert_eq!(tunnel.rcode, ResponseCode::NXDomain);
    assert!(lab.tcp_echo(Host::SetupA, at(SERVER_OTHER, 443)).is_err());

    // The server's zone: forwarded, the DNS binding's TXT queries included.
    let txt = lab
        .dns_query(Host::SetupA, forwarder, TXT_NAME, RecordType::TXT)
        .expect("the forwarder answers");
    assert_eq!(txt.txt, ["tunnel-ok"]);
    let setup = lab
        .dns_query(Host::SetupA, forwarder, SETUP_NAME, RecordType::A)
        .expect("the forwarder answers");
    assert_eq!(setup.a, [SERVER_BY_NAME]);
    let resolved = nft(&lab, &format!("list set inet {TABLE} resolved"));
    assert!(resolved.contains(&SERVER_BY_NAME.to_string()), "{resolved}");
    assert!(!resolved.contains(&SERVER_OTHER.to_string()), "{resolved}");

    // Now the resolved address is open, on 443 only.
    let probes = [
        (Host::SetupA, Probe::Tcp(SERVER_BY_NAME, 443)),
        (Host::SetupA, Probe::Tcp(SERVER_BY_NAME, 80)),
        (Host::SetupA, Probe::Tcp(SERVER_OTHER, 443)),
    ];
    let results = run_all(&lab, &probes);
    assert_eq!(results[0], Ok(()));
    assert!(results[1].is_err() && results[2].is_err(), "{results:?}");

    // DNS to the router's other addresses is dropped: a resolver listening there (a home
    // router's own) would be a general DNS tunnel.
    let home_side_dns = lab.in_ns(Host::Router, || {
        std::net::TcpListener::bind(at(ROUTER_HOME, 53)).expect("a listener on the home address")
    });
    let reached = lab.in_ns(Host::SetupA, || {
        TcpStream::connect_timeout(&at(ROUTER_HOME, 53), Duration::from_millis(1500)).is_ok()
    });
    assert!(
        !reached,
        "a setup client reached port 53 on the router's home address"
    );
    assert!(
        lab.in_ns(Host::Home, || TcpStream::connect_timeout(
            &at(ROUTER_HOME, 53),
            Duration::from_millis(1500)
        )
        .is_ok()),
        "the listener is there for the home side"
    );
    drop(home_side_dns);

    // DNS to any other resolver, the real upstream included, is dropped.
    let direct = lab.dns_query(Host::SetupA, at(SERVER, 53), SETUP_NAME, RecordType::A);
    assert_eq!(direct, Err(ProbeError::Timeout));
    // The home client uses that resolver freely.
    let home = lab
        .dns_query(Host::Home, at(SERVER, 53), OTHER_NAME, RecordType::A)
        .expect("home resolves");
    assert_eq!(home.a, [SERVER_OTHER]);
}

#[test]
fn a_setup_clients_rate_is_held_to_its_limit_and_the_home_clients_is_not() {
    const RATE: u64 = 100_000;
    const BURST: u64 = 150_000;
    let limits = Limits {
        client_rate: (RATE, BURST),
        ..Limits::default()
    };
    let (lab, mut router) = lab_with_router(&limits);
    join(&lab, &mut router, Host::SetupA, SETUP_A);
    let (got, took) = lab
        .tcp_download(
            Host::SetupA,
            at(SERVER, 443),
            10_000_000,
            Duration::from_secs(3),
        )
        .expect("download");
    // The bucket passes at most its size plus the rate over the time. Frames count their
    // headers, so the payload that arrives is less; 5 % covers the clock of `took` starting
    // after the bucket's.
    let budget = (BURST + RATE * took.as_millis() as u64 / 1000) * 105 / 100;
    assert!(
        (got as u64) <= budget,
        "{got} bytes in {took:?}, budget {budget}"
    );
    assert!(got > 0, "nothing passed");
    let chain = nft(&lab, &format!("list chain bridge {TABLE} to_setup_client"));
    let rate_rule = chain
        .lines()
        .find(|l| l.contains("\"client rate\""))
        .expect("rate rule");
    assert!(!rate_rule.contains("packets 0 "), "{rate_rule}");
    // The home client downloads the same at full speed in the same time.
    let (home_got, _) = lab
        .tcp_download(
            Host::Home,
            at(SERVER, 443),
            10_000_000,
            Duration::from_secs(3),
        )
        .expect("home download");
    assert_eq!(home_got, 10_000_000);
}

/// Packets sent through class `class` of the WAN's qdisc.
fn class_packets(lab: &Lab, class: &str) -> u64 {
    let tc = common::lab::tool("tc").display().to_string();
    let out = lab.exec_ok(
        Host::Router,
        &[tc.as_str(), "-s", "class", "show", "dev", WAN_IF],
    );
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        if line.contains(&format!("class htb {class} ")) {
            let stats = lines.next().unwrap_or_default();
            return stats
                .split(" pkt")
                .next()
                .and_then(|s| s.split_whitespace().last())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no packet count in {stats:?}"));
        }
    }
    panic!("no class {class} on {WAN_IF}:\n{out}");
}

#[test]
fn setup_traffic_is_queued_below_home_traffic() {
    let limits = Limits::default();
    let (lab, mut router) = lab_with_router(&limits);
    join(&lab, &mut router, Host::SetupA, SETUP_A);
    // The router's WAN queue as docs/SETUP-NETWORK.md sets it up: htb with handle 1:, home
    // traffic in the default class 1:2, setup traffic in the low-priority class 1:3.
    let tc = common::lab::tool("tc").display().to_string();
    for args in [
        "qdisc replace dev ztw root handle 1: htb default 2",
        "class add dev ztw parent 1: classid 1:2 htb rate 90mbit ceil 100mbit prio 0",
        "class add dev ztw parent 1: classid 1:3 htb rate 1mbit ceil 100mbit prio 7",
    ] {
        let mut cmd = vec![tc.clone()];
        cmd.extend(args.split_whitespace().map(String::from));
        lab.exec_ok(Host::Router, &cmd);
    }
    let (low, normal) = (class_packets(&lab, "1:3"), class_packets(&lab, "1:2"));
    lab.tcp_echo(Host::Home, at(SERVER, 443)).expect("home");
    assert_eq!(
        class_packets(&lab, "1:3"),
        low,
        "home traffic in the setup class"
    );
    assert!(
        class_packets(&lab, "1:2") > normal,
        "home traffic not in the normal class"
    );
    lab.tcp_echo(Host::SetupA, at(SERVER, 443)).expect("setup");
    // SYN, request, ACKs and FIN: at least four of A's packets left by the lowest band.
    assert!(class_packets(&lab, "1:3") >= low + 4);
}

/// Runs `serve` on a thread of its own inside `host`'s namespace (with a tokio runtime there, so
/// every socket it opens is that namespace's) until the returned sender is dropped or used.
fn serve_in_namespace(
    lab: &Lab,
    host: Host,
    serve: impl FnOnce(
        tokio::sync::oneshot::Receiver<()>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()>>>
    + Send
    + 'static,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
    use std::os::fd::AsFd;
    let path = format!("/run/netns/{}", lab.ns(host));
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("the namespace");
        move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
            .expect("enter the namespace");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(serve(stopped));
    });
    (stop, thread)
}

#[test]
fn a_device_on_the_setup_network_provisions_over_dns_through_the_filtering_forwarder() {
    use zerotouch_core::Transport;
    use zerotouch_device::RetryPolicy;
    use zerotouch_dns::client::{DnsClientConfig, DnsExchange};
    use zerotouch_dns::server::{DnsServerConfig, serve_dns};
    use zerotouch_dns::{TunnelConfig, Zone};
    use zerotouch_testkit::flow1;

    let limits = Limits {
        dns: true,
        ..Limits::default()
    };
    let lab = Lab::build();
    // The setup service's DNS server, authoritative for zt.test, on the server at 10.0.3.2:53
    // (where the other tests run a plain resolver), over the embedded store.
    let (ready_tx, ready) = mpsc::channel();
    let (stop, server) = serve_in_namespace(&lab, Host::Server, move |stopped| {
        Box::pin(async move {
            let dir = tempfile::tempdir().expect("a directory");
            let store = flow1::sqlite_store(dir.path()).await;
            let service = std::sync::Arc::new(flow1::registered_service(store, true).await);
            let config = DnsServerConfig::new(Zone::new("zt.test").expect("zone"), at(SERVER, 53));
            let running = serve_dns(config, service)
                .await
                .expect("serve DNS on 10.0.3.2:53");
            let _ = ready_tx.send(());
            let _ = stopped.await;
            running.shutdown().await;
        })
    });
    ready
        .recv_timeout(Duration::from_secs(20))
        .expect("the DNS server started");
    let mut router = start_router(&lab, &limits);
    join(&lab, &mut router, Host::SetupA, SETUP_A);

    // Fixture device 1 on setup client A, its only resolver the router's forwarder.
    let (run, radio) = lab.in_ns(Host::SetupA, || {
        let mut tunnel = TunnelConfig::new(Zone::new("zt.test").expect("zone"));
        tunnel.initial_timeout_ms = 500;
        tunnel.max_timeout_ms = 2000;
        tunnel.pacing_ms = 1;
        let mut exchange =
            DnsExchange::with_seed(DnsClientConfig::new(at(ROUTER_SETUP, 53), tunnel), [7; 32]);
        let retry = RetryPolicy {
            initial_timeout_ms: 3000,
            max_timeout_ms: 6000,
            max_retransmits: 3,
            max_sessions: 3,
        };
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(flow1::provision(
                flow1::device(Transport::Dns, retry),
                &mut exchange,
                7,
            ))
    });
    let _ = stop.send(());
    server.join().expect("the server thread");
    let run = run.unwrap_or_else(|e| {
        panic!(
            "flow 1 through the forwarder failed: {e}\nforwarder:\n{}",
            lab.log("router-dnsmasq")
        )
    });
    // Joined the home network with the account's passphrase, PIN proven, outcome reported.
    assert_eq!(run.joined.as_deref(), Some(&b"home"[..]));
    assert_eq!(
        radio.passphrase.as_deref(),
        Some(zerotouch_store_suite::fixtures::PASSPHRASE)
    );
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, zerotouch_device::Event::Complete { .. })),
        "{:?}",
        run.events
    );
    // The forwarder forwarded the tunnel's names and resolved nothing into the ruleset's set
    // (TXT answers carry no addresses).
    let resolved = nft(&lab, &format!("list set inet {TABLE} resolved"));
    assert!(!resolved.contains("elements"), "{resolved}");
}
