#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::panic)]
//! The lab's baseline, with no nftables rules loaded: every path carries traffic, so a drop in
//! a later test is the rules' doing. Also: a lab leaves nothing behind.
//!
//! Needs root, iproute2 and dnsmasq (scripts/system-deps.sh).

mod common;

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use common::{HOME, ROUTER_SETUP, SERVER, SERVER_BY_NAME, SERVER_OTHER, SETUP_A, SETUP_B};
use common::{Host, Lab, namespaces_with_prefix};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn at(ip: std::net::Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

/// A lab with services, the router's DHCP server and both setup clients configured from the
/// leases they got.
fn lab_with_leases() -> Lab {
    let lab = Lab::build();
    lab.start_services();
    lab.start_dnsmasq(Host::Router, "router-dhcp", &lab.router_dhcp_config(false));
    for (client, expected) in [(Host::SetupA, SETUP_A), (Host::SetupB, SETUP_B)] {
        let lease = lab.dhcp_lease(client);
        assert_eq!(
            lease,
            Ok(expected),
            "{client:?}'s DHCP lease; dnsmasq log:\n{}",
            lab.log("router-dhcp")
        );
        lab.configure_address(client, expected);
    }
    lab
}

#[test]
fn without_rules_setup_clients_get_their_reserved_leases_by_dhcp() {
    // The assertions are in the helper: A gets 10.77.0.10, B 10.77.0.11.
    let lab = lab_with_leases();
    // Asking again gets the same address (the lease is kept, not a new one from the range).
    assert_eq!(lab.dhcp_lease(Host::SetupA), Ok(SETUP_A));
}

#[test]
fn without_rules_every_host_reaches_every_other() {
    let lab = lab_with_leases();
    let tcp = [
        (Host::SetupA, at(SERVER, 443)),
        (Host::SetupA, at(SERVER, 80)),
        (Host::SetupA, at(SERVER_BY_NAME, 443)),
        (Host::SetupA, at(SERVER_OTHER, 443)),
        (Host::SetupA, at(ROUTER_SETUP, 22)),
        (Host::SetupA, at(ROUTER_SETUP, 8080)),
        (Host::SetupA, at(HOME, 8080)),
        (Host::SetupA, at(SETUP_B, 8080)),
        (Host::SetupB, at(SETUP_A, 8080)),
        (Host::Home, at(SERVER, 443)),
        (Host::Home, at(ROUTER_SETUP, 8080)),
        (Host::Home, at(SETUP_A, 8080)),
        (Host::Server, at(HOME, 8080)),
    ];
    for (from, to) in tcp {
        assert_eq!(lab.tcp_echo(from, to), Ok(()), "TCP from {from:?} to {to}");
    }
    let udp = [
        (Host::SetupA, at(SERVER, 9000)),
        (Host::SetupA, at(SERVER_BY_NAME, 9000)),
        (Host::SetupA, at(ROUTER_SETUP, 9000)),
        (Host::SetupA, at(SETUP_B, 9000)),
        (Host::Home, at(ROUTER_SETUP, 9000)),
        (Host::Home, at(SERVER, 9000)),
        (Host::Server, at(HOME, 9000)),
    ];
    for (from, to) in udp {
        assert_eq!(lab.udp_echo(from, to), Ok(()), "UDP from {from:?} to {to}");
    }
}

#[test]
fn without_rules_the_upstream_resolver_answers_the_servers_zone() {
    let lab = lab_with_leases();
    lab.start_upstream_dns();
    let resolver = at(SERVER, 53);
    let query = |name, rtype| {
        lab.dns_query(Host::SetupA, resolver, name, rtype)
            .unwrap_or_else(|e| panic!("query {name} {rtype}: {e}\n{}", lab.log("upstream-dns")))
    };
    let setup = query(common::SETUP_NAME, RecordType::A);
    assert_eq!(
        (setup.rcode, setup.a),
        (ResponseCode::NoError, vec![SERVER_BY_NAME])
    );
    let other = query(common::OTHER_NAME, RecordType::A);
    assert_eq!(other.a, vec![SERVER_OTHER]);
    let txt = query(common::TXT_NAME, RecordType::TXT);
    assert_eq!(txt.txt, vec!["tunnel-ok".to_owned()]);
}

#[test]
fn without_rules_a_one_megabyte_download_from_the_server_completes() {
    let lab = lab_with_leases();
    let megabyte = 1 << 20;
    let (received, took) = lab
        .tcp_download(
            Host::SetupA,
            at(SERVER, 443),
            megabyte,
            Duration::from_secs(10),
        )
        .expect("download from the server");
    assert_eq!(received, megabyte, "bytes received in {took:?}");
}

#[test]
fn dropping_a_lab_removes_its_namespaces_and_processes() {
    let lab = Lab::build();
    lab.start_services();
    lab.start_dnsmasq(Host::Router, "router-dhcp", &lab.router_dhcp_config(false));
    let prefix = lab.prefix().to_owned();
    assert_eq!(
        namespaces_with_prefix(&prefix).len(),
        5,
        "the lab's namespaces"
    );
    let pid = lab.spawn(Host::Home, "sleeper", &["sleep", "600"]);
    drop(lab);
    assert_eq!(namespaces_with_prefix(&prefix), Vec::<String>::new());
    // Killed and reaped: no process, not even a zombie, is left.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} is left"
    );
}

#[test]
fn a_lab_dropped_by_a_panicking_test_removes_its_namespaces() {
    let (send, receive) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let lab = Lab::build();
        send.send(lab.prefix().to_owned())
            .expect("report the prefix");
        panic!("a test failing with a lab built (deliberately)");
    })
    .join();
    assert!(outcome.is_err(), "the thread panicked");
    let prefix = receive.recv().expect("the lab's prefix");
    assert_eq!(namespaces_with_prefix(&prefix), Vec::<String>::new());
}

#[test]
fn frames_bridged_between_setup_clients_skip_the_routers_inet_hooks() {
    // Whether or not br_netfilter is loaded on this machine, the lab behaves as without it: an
    // inet forward chain that drops everything stops routed traffic, not bridged traffic.
    let lab = lab_with_leases();
    lab.load_nftables(
        Host::Router,
        "table inet lab_check {\n\
         \tchain forward_chain {\n\
         \t\ttype filter hook forward priority filter; policy drop;\n\
         \t}\n\
         }\n",
    );
    assert_eq!(lab.tcp_echo(Host::SetupA, at(SETUP_B, 8080)), Ok(()));
    assert_eq!(
        lab.tcp_echo(Host::SetupA, at(SERVER, 443)),
        Err(common::ProbeError::Timeout)
    );
}

#[test]
fn the_labs_dhcp_codec_reads_its_own_messages_and_never_panics_on_cut_ones() {
    use common::dhcp::{DhcpMessage, REQUEST};
    let mut request = DhcpMessage::client(REQUEST, 0x1234_5678, common::MAC_A);
    request.requested_ip = Some(SETUP_A);
    request.server_id = Some(ROUTER_SETUP);
    let bytes = request.encode();
    assert_eq!(DhcpMessage::decode(&bytes), Some(request));
    for len in 0..bytes.len() {
        // Any prefix: decoded or refused, never a panic.
        let _ = DhcpMessage::decode(bytes.get(..len).unwrap_or_default());
    }
    let mut garbled = bytes;
    garbled.truncate(243); // through option 53
    garbled.extend([54, 200, 1]); // an option longer than what is left
    assert_eq!(DhcpMessage::decode(&garbled), None);
}
