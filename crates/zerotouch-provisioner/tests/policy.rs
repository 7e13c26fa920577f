//! Every rule of the setup-network policy, driven with a virtual clock. Each test fails if its
//! rule breaks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use zerotouch_core::{
    Instant, KeyRole, PinnedKey, PinnedKeys, RustCryptoProvider, SignatureAlgorithm, Signer,
    SigningKey, SoftwareSigner,
};
use zerotouch_provisioner::*;

const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 23));
const OTHER_CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 24));
const HOME_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
const INTERNET: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const A: ClientMac = ClientMac([2, 0, 0, 0, 0, 1]);
const B: ClientMac = ClientMac([2, 0, 0, 0, 0, 2]);
const C: ClientMac = ClientMac([2, 0, 0, 0, 0, 3]);
const D: ClientMac = ClientMac([2, 0, 0, 0, 0, 4]);

fn policy() -> SetupNetworkPolicy {
    let mut p = SetupNetworkPolicy::with_defaults(ROUTER, (ROUTER, 24), vec![SERVER]);
    p.max_clients = 3;
    p.min_age_before_eviction = Duration::from_secs(60);
    p.ban_duration = Duration::from_secs(300);
    p
}

fn net(p: SetupNetworkPolicy) -> SetupNetwork {
    SetupNetwork::new(p, NetworkMode::AlwaysOpen, Instant(0)).unwrap()
}

fn secs(s: u64) -> Instant {
    Instant(s * 1000)
}

fn out(client: ClientMac, protocol: Protocol, dst: IpAddr, dst_port: u16, len: u32) -> Packet {
    Packet {
        client,
        direction: Direction::FromClient,
        protocol,
        src: CLIENT_IP,
        src_port: 40000,
        dst,
        dst_port,
        len,
    }
}

fn admitted(d: JoinDecision) -> Vec<Eviction> {
    match d {
        JoinDecision::Admitted { evicted } => evicted,
        other => panic!("expected admission, got {other:?}"),
    }
}

const FWD: PacketDecision = PacketDecision::Forward(Priority::BelowHome);

// --- address rules ----------------------------------------------------------------------------

#[test]
fn dhcp_with_the_router_is_allowed() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    let discover = Packet {
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        src_port: 68,
        ..out(A, Protocol::Udp, IpAddr::V4(Ipv4Addr::BROADCAST), 67, 300)
    };
    assert_eq!(n.packet(&discover, secs(1)), FWD);
    let request = Packet {
        src_port: 68,
        ..out(A, Protocol::Udp, ROUTER, 67, 300)
    };
    assert_eq!(n.packet(&request, secs(1)), FWD);
    let offer = Packet {
        client: A,
        direction: Direction::ToClient,
        protocol: Protocol::Udp,
        src: ROUTER,
        src_port: 67,
        dst: CLIENT_IP,
        dst_port: 68,
        len: 300,
    };
    assert_eq!(n.packet(&offer, secs(1)), FWD);
}

#[test]
fn https_to_the_server_is_allowed_and_nothing_else_to_it() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, SERVER, 443, 600), secs(1)),
        FWD
    );
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, SERVER, 80, 600), secs(1)),
        PacketDecision::Drop(DropReason::NotAllowed)
    );
    assert_eq!(
        n.packet(&out(A, Protocol::Udp, SERVER, 443, 600), secs(1)),
        PacketDecision::Drop(DropReason::NotAllowed)
    );
    let reply = Packet {
        client: A,
        direction: Direction::ToClient,
        protocol: Protocol::Tcp,
        src: SERVER,
        src_port: 443,
        dst: CLIENT_IP,
        dst_port: 40000,
        len: 1400,
    };
    assert_eq!(n.packet(&reply, secs(1)), FWD);
}

#[test]
fn setup_clients_cannot_reach_the_home_network() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, HOME_HOST, 443, 100), secs(1)),
        PacketDecision::Drop(DropReason::HomeNetwork)
    );
    // Nor can the home network reach them.
    let inbound = Packet {
        client: A,
        direction: Direction::ToClient,
        protocol: Protocol::Tcp,
        src: HOME_HOST,
        src_port: 5555,
        dst: CLIENT_IP,
        dst_port: 22,
        len: 100,
    };
    assert_eq!(
        n.packet(&inbound, secs(1)),
        PacketDecision::Drop(DropReason::HomeNetwork)
    );
}

#[test]
fn setup_clients_cannot_reach_each_other() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    admitted(n.client_joined(B, secs(0)));
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, OTHER_CLIENT_IP, 443, 100), secs(1)),
        PacketDecision::Drop(DropReason::OtherSetupClient)
    );
    assert_eq!(
        n.packet(
            &out(A, Protocol::Udp, IpAddr::V4(Ipv4Addr::BROADCAST), 5353, 100),
            secs(1)
        ),
        PacketDecision::Drop(DropReason::OtherSetupClient)
    );
}

#[test]
fn router_services_other_than_dhcp_are_closed() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    for (proto, port) in [
        (Protocol::Tcp, 80),
        (Protocol::Tcp, 443),
        (Protocol::Tcp, 22),
        (Protocol::Udp, 53),
        (Protocol::Udp, 1900),
        (Protocol::Other, 0),
    ] {
        assert_eq!(
            n.packet(&out(A, proto, ROUTER, port, 100), secs(1)),
            PacketDecision::Drop(DropReason::RouterService),
            "{proto:?} {port}"
        );
    }
}

#[test]
fn dns_reaches_only_the_routers_forwarder_and_only_with_the_dns_binding() {
    let mut p = policy();
    p.dns_to_router = true;
    let mut n = net(p);
    admitted(n.client_joined(A, secs(0)));
    assert_eq!(
        n.packet(&out(A, Protocol::Udp, ROUTER, 53, 80), secs(1)),
        FWD
    );
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, ROUTER, 53, 80), secs(1)),
        FWD
    );
    // Not to any other resolver: the setup network is not a general DNS tunnel.
    assert_eq!(
        n.packet(&out(A, Protocol::Udp, INTERNET, 53, 80), secs(1)),
        PacketDecision::Drop(DropReason::NotAllowed)
    );
    assert_eq!(
        n.packet(&out(A, Protocol::Udp, HOME_HOST, 53, 80), secs(1)),
        PacketDecision::Drop(DropReason::HomeNetwork)
    );
}

#[test]
fn arbitrary_internet_destinations_are_dropped() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, INTERNET, 443, 100), secs(1)),
        PacketDecision::Drop(DropReason::NotAllowed)
    );
}

#[test]
fn packets_of_unadmitted_clients_are_dropped() {
    let mut n = net(policy());
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, SERVER, 443, 100), secs(1)),
        PacketDecision::Drop(DropReason::UnknownClient)
    );
    admitted(n.client_joined(A, secs(0)));
    n.client_left(A);
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, SERVER, 443, 100), secs(1)),
        PacketDecision::Drop(DropReason::UnknownClient)
    );
}

// --- client cap, eviction, bans -----------------------------------------------------------------

#[test]
fn full_network_evicts_the_oldest_client_past_the_minimum_age() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    admitted(n.client_joined(B, secs(10)));
    admitted(n.client_joined(C, secs(20)));
    let evicted = admitted(n.client_joined(D, secs(100)));
    assert_eq!(
        evicted,
        vec![Eviction {
            client: A,
            banned_until: secs(400)
        }]
    );
    assert_eq!(n.clients().collect::<Vec<_>>(), vec![B, C, D]);
}

#[test]
fn no_client_is_evicted_while_all_are_younger_than_the_minimum_age() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    admitted(n.client_joined(B, secs(1)));
    admitted(n.client_joined(C, secs(2)));
    assert_eq!(
        n.client_joined(D, secs(59)),
        JoinDecision::Refused(RefuseReason::Full)
    );
    assert_eq!(n.clients().count(), 3);
    // At 60 s the oldest is old enough.
    assert_eq!(admitted(n.client_joined(D, secs(60)))[0].client, A);
}

#[test]
fn only_clients_past_the_minimum_age_are_evicted_in_a_batch() {
    let mut p = policy();
    p.evict_batch = 2;
    let mut n = net(p);
    admitted(n.client_joined(A, secs(0)));
    admitted(n.client_joined(B, secs(50)));
    admitted(n.client_joined(C, secs(90)));
    // At 100 s, A (100 s) and B (50 s) are... only A is past 60 s.
    let evicted = admitted(n.client_joined(D, secs(100)));
    assert_eq!(
        evicted.iter().map(|e| e.client).collect::<Vec<_>>(),
        vec![A]
    );
    let mut n2 = net({
        let mut p = policy();
        p.evict_batch = 2;
        p
    });
    admitted(n2.client_joined(A, secs(0)));
    admitted(n2.client_joined(B, secs(10)));
    admitted(n2.client_joined(C, secs(20)));
    let evicted = admitted(n2.client_joined(D, secs(200)));
    assert_eq!(
        evicted.iter().map(|e| e.client).collect::<Vec<_>>(),
        vec![A, B]
    );
}

#[test]
fn evicted_client_stays_out_until_its_ban_expires() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    admitted(n.client_joined(B, secs(1)));
    admitted(n.client_joined(C, secs(2)));
    admitted(n.client_joined(D, secs(100)));
    assert_eq!(
        n.client_joined(A, secs(101)),
        JoinDecision::Refused(RefuseReason::Banned { until: secs(400) })
    );
    assert_eq!(
        n.client_joined(A, secs(399)),
        JoinDecision::Refused(RefuseReason::Banned { until: secs(400) })
    );
    assert_eq!(n.poll_timeout(), Some(secs(400)));
    assert!(n.handle_timeout(secs(399)).is_empty());
    assert_eq!(
        n.handle_timeout(secs(400)),
        vec![TimerDecision::Unbanned(A)]
    );
    assert_eq!(n.poll_timeout(), None);
    // B is old enough to make room now; A is let back in.
    assert!(matches!(
        n.client_joined(A, secs(401)),
        JoinDecision::Admitted { .. }
    ));
}

#[test]
fn a_client_that_leaves_by_itself_is_not_banned() {
    let mut n = net(policy());
    admitted(n.client_joined(A, secs(0)));
    n.client_left(A);
    assert!(matches!(
        n.client_joined(A, secs(1)),
        JoinDecision::Admitted { .. }
    ));
    assert_eq!(n.client_joined(A, secs(2)), JoinDecision::AlreadyAdmitted);
}

// --- rates and volumes ---------------------------------------------------------------------------

#[test]
fn client_rate_limit_drops_the_excess_and_refills() {
    let mut p = policy();
    p.client_rate = RateLimit {
        bytes_per_second: 1000,
        burst_bytes: 2000,
    };
    let mut n = net(p);
    admitted(n.client_joined(A, secs(0)));
    let pkt = out(A, Protocol::Tcp, SERVER, 443, 1000);
    assert_eq!(n.packet(&pkt, secs(0)), FWD);
    assert_eq!(n.packet(&pkt, secs(0)), FWD);
    assert_eq!(
        n.packet(&pkt, secs(0)),
        PacketDecision::Drop(DropReason::ClientRate)
    );
    // Half a second refills 500 bytes: not enough; one second: enough for one more.
    assert_eq!(
        n.packet(&pkt, Instant(500)),
        PacketDecision::Drop(DropReason::ClientRate)
    );
    assert_eq!(n.packet(&pkt, Instant(1000)), FWD);
}

#[test]
fn network_rate_limit_applies_across_clients() {
    let mut p = policy();
    p.network_rate = RateLimit {
        bytes_per_second: 1000,
        burst_bytes: 1500,
    };
    let mut n = net(p);
    admitted(n.client_joined(A, secs(0)));
    admitted(n.client_joined(B, secs(0)));
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, SERVER, 443, 1000), secs(0)),
        FWD
    );
    assert_eq!(
        n.packet(&out(B, Protocol::Tcp, SERVER, 443, 1000), secs(0)),
        PacketDecision::Drop(DropReason::NetworkRate)
    );
}

#[test]
fn daily_volume_caps_apply_per_client_and_reset_the_next_day() {
    let mut p = policy();
    p.client_daily_bytes = 3000;
    let mut n = net(p);
    admitted(n.client_joined(A, secs(0)));
    let pkt = out(A, Protocol::Tcp, SERVER, 443, 1000);
    for t in 0..3 {
        assert_eq!(n.packet(&pkt, secs(10 * t)), FWD);
    }
    assert_eq!(
        n.packet(&pkt, secs(40)),
        PacketDecision::Drop(DropReason::ClientDailyVolume)
    );
    assert_eq!(
        n.packet(&pkt, secs(86_399)),
        PacketDecision::Drop(DropReason::ClientDailyVolume)
    );
    assert_eq!(n.packet(&pkt, secs(86_400)), FWD);
}

#[test]
fn network_daily_volume_cap_applies_across_clients() {
    let mut p = policy();
    p.network_daily_bytes = 1500;
    let mut n = net(p);
    admitted(n.client_joined(A, secs(0)));
    admitted(n.client_joined(B, secs(0)));
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, SERVER, 443, 1000), secs(0)),
        FWD
    );
    assert_eq!(
        n.packet(&out(B, Protocol::Tcp, SERVER, 443, 1000), secs(5)),
        PacketDecision::Drop(DropReason::NetworkDailyVolume)
    );
}

#[test]
fn dropped_packets_use_no_quota() {
    let mut p = policy();
    p.client_rate = RateLimit {
        bytes_per_second: 1,
        burst_bytes: 1000,
    };
    let mut n = net(p);
    admitted(n.client_joined(A, secs(0)));
    for _ in 0..10 {
        assert_eq!(
            n.packet(&out(A, Protocol::Tcp, INTERNET, 443, 1000), secs(0)),
            PacketDecision::Drop(DropReason::NotAllowed)
        );
    }
    assert_eq!(
        n.packet(&out(A, Protocol::Tcp, SERVER, 443, 1000), secs(0)),
        FWD
    );
}

#[test]
fn invalid_policies_are_refused() {
    for change in [
        (|p: &mut SetupNetworkPolicy| p.max_clients = 0) as fn(&mut SetupNetworkPolicy),
        |p| p.evict_batch = 0,
        |p| p.evict_batch = 9,
        |p| p.server_addresses.clear(),
        |p| p.setup_prefix.1 = 33,
        |p| p.client_rate.bytes_per_second = 0,
    ] {
        let mut p = policy();
        change(&mut p);
        assert!(matches!(
            SetupNetwork::new(p, NetworkMode::AlwaysOpen, Instant(0)),
            Err(Error::InvalidPolicy(_))
        ));
    }
}

// --- orders to open the network (paragraph 0053) --------------------------------------------------

const P: RustCryptoProvider = RustCryptoProvider;
const WALL: u64 = 1_790_000_000_000; // Unix ms

fn signer(label: u8) -> SoftwareSigner {
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::Ed25519, &[label; 32]).unwrap(),
    )
}

struct OrderSetup {
    server: SoftwareSigner,
    me: SoftwareSigner,
    trusted: PinnedKeys,
    net: SetupNetwork,
}

fn order_setup() -> OrderSetup {
    let server = signer(1);
    let me = signer(2);
    let trusted = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::ProvisionerOrder,
        server.public_key().clone(),
    )]);
    let net = SetupNetwork::new(policy(), NetworkMode::OpenedByOrder, Instant(0)).unwrap();
    OrderSetup {
        server,
        me,
        trusted,
        net,
    }
}

fn order(s: &OrderSetup, id: u8, not_after_ms: u64) -> OpenNetworkOrder {
    OpenNetworkOrder {
        order_id: [id; 16],
        provisioner_key_id: s.me.key_id(),
        device_key_id: signer(9).key_id(),
        issued_at_ms: WALL,
        not_after_ms,
    }
}

fn accept(
    s: &mut OrderSetup,
    bytes: &[u8],
    wall: u64,
    now: Instant,
) -> Result<OrderedOpening, OrderError> {
    let me = s.me.public_key().clone();
    s.net.accept_order(bytes, &me, &s.trusted, &P, wall, now)
}

#[test]
fn closed_network_admits_no_one_before_an_order() {
    let mut s = order_setup();
    assert_eq!(
        s.net.client_joined(A, secs(0)),
        JoinDecision::Refused(RefuseReason::Closed)
    );
}

#[test]
fn signed_order_opens_the_network_for_one_device_until_its_deadline() {
    let mut s = order_setup();
    let o = order(&s, 1, WALL + 3_600_000);
    let bytes = o.sign(s.me.public_key(), &s.server, &P).unwrap();
    let opening = accept(&mut s, &bytes, WALL + 1000, secs(10)).unwrap();
    assert_eq!(opening.device_key_id, signer(9).key_id());
    assert_eq!(opening.until, Instant(10_000 + 3_599_000));
    admitted(s.net.client_joined(A, secs(20)));
    // At the deadline the network closes and its clients are cut off.
    assert_eq!(s.net.poll_timeout(), Some(opening.until));
    assert_eq!(
        s.net.handle_timeout(opening.until),
        vec![TimerDecision::ClosedEvicting(A), TimerDecision::Closed]
    );
    assert_eq!(
        s.net.client_joined(B, opening.until),
        JoinDecision::Refused(RefuseReason::Closed)
    );
}

#[test]
fn order_signed_by_an_untrusted_key_is_refused() {
    let mut s = order_setup();
    let o = order(&s, 1, WALL + 3_600_000);
    let bytes = o.sign(s.me.public_key(), &signer(7), &P).unwrap();
    assert!(matches!(
        accept(&mut s, &bytes, WALL, secs(0)),
        Err(OrderError::Signature(_))
    ));
    assert_eq!(s.net.opening(), None);
}

#[test]
fn order_key_trusted_for_another_role_is_refused() {
    let mut s = order_setup();
    s.trusted = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::SetupSigning,
        s.server.public_key().clone(),
    )]);
    let bytes = order(&s, 1, WALL + 3_600_000)
        .sign(s.me.public_key(), &s.server, &P)
        .unwrap();
    assert!(matches!(
        accept(&mut s, &bytes, WALL, secs(0)),
        Err(OrderError::Signature(_))
    ));
}

#[test]
fn order_for_another_provisioner_is_refused() {
    let mut s = order_setup();
    let other = signer(3);
    // Signed for the other device: our transcript differs, so the signature fails.
    let bytes = order(&s, 1, WALL + 3_600_000)
        .sign(other.public_key(), &s.server, &P)
        .unwrap();
    assert!(matches!(
        accept(&mut s, &bytes, WALL, secs(0)),
        Err(OrderError::Signature(_))
    ));
    // Signed over our key but naming the other device in the body.
    let mut o = order(&s, 2, WALL + 3_600_000);
    o.provisioner_key_id = other.key_id();
    let bytes = o.sign(s.me.public_key(), &s.server, &P).unwrap();
    assert_eq!(
        accept(&mut s, &bytes, WALL, secs(0)),
        Err(OrderError::NotForThisDevice)
    );
}

#[test]
fn expired_order_is_refused() {
    let mut s = order_setup();
    let bytes = order(&s, 1, WALL + 1000)
        .sign(s.me.public_key(), &s.server, &P)
        .unwrap();
    assert_eq!(
        accept(&mut s, &bytes, WALL + 1000, secs(0)),
        Err(OrderError::Expired)
    );
}

#[test]
fn order_longer_than_the_policy_allows_is_refused() {
    let mut s = order_setup();
    let bytes = order(&s, 1, WALL + 8 * 24 * 3_600_000)
        .sign(s.me.public_key(), &s.server, &P)
        .unwrap();
    assert_eq!(
        accept(&mut s, &bytes, WALL, secs(0)),
        Err(OrderError::TooLong)
    );
}

#[test]
fn replayed_order_is_refused() {
    let mut s = order_setup();
    let bytes = order(&s, 1, WALL + 3_600_000)
        .sign(s.me.public_key(), &s.server, &P)
        .unwrap();
    accept(&mut s, &bytes, WALL, secs(0)).unwrap();
    assert_eq!(
        accept(&mut s, &bytes, WALL + 5, secs(1)),
        Err(OrderError::Replayed)
    );
}

#[test]
fn tampered_order_is_refused() {
    let mut s = order_setup();
    let bytes = order(&s, 1, WALL + 3_600_000)
        .sign(s.me.public_key(), &s.server, &P)
        .unwrap();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        assert!(accept(&mut s, &bad, WALL, secs(0)).is_err(), "byte {i}");
    }
    assert_eq!(s.net.opening(), None);
}
