//! With the `provisioner` feature, [`crate::zt_check_run`] also drives `zerotouch-provisioner`
//! as an already-joined device would (seed 000, paragraph 0053): its setup network is closed
//! until a signed order from the setup server opens it for one new device; the engine then
//! admits, isolates, rate-limits, evicts and bans setup clients, and closes the network at the
//! order's deadline. Forged, replayed, misaddressed, expired and over-long orders are refused.

use alloc::vec;
use core::net::{IpAddr, Ipv4Addr};

use zerotouch_core::{
    Instant, KeyId, KeyRole, PinnedKey, PinnedKeys, RustCryptoProvider, Signer, SoftwareSigner,
};
use zerotouch_provisioner::{
    ClientMac, Direction, DropReason, Error, Eviction, JoinDecision, NetworkMode, OpenNetworkOrder,
    OrderError, Packet, PacketDecision, Priority, Protocol, RefuseReason, SetupNetwork,
    SetupNetworkPolicy, TimerDecision,
};

use crate::run::{Check, Step, ensure};

/// Wall-clock time (Unix ms) at which the order arrives: 2026-01-01T00:00:00Z.
const WALL: u64 = 1_767_225_600_000;
/// The order keeps the network open for an hour.
const ORDER_VALIDITY_MS: u64 = 3_600_000;
const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
const SETUP_NET: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 0));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
/// The new device the order is for.
const NEW_DEVICE: ClientMac = ClientMac([0x02, 0, 0, 0, 0, 0x01]);

fn mac(n: u8) -> ClientMac {
    ClientMac([0x02, 0, 0, 0, 0x10, n])
}

/// A packet from `client` (at 10.77.0.23) to `dst:dst_port`.
fn from_client(client: ClientMac, protocol: Protocol, dst: IpAddr, dst_port: u16) -> Packet {
    Packet {
        client,
        direction: Direction::FromClient,
        protocol,
        src: IpAddr::V4(Ipv4Addr::new(10, 77, 0, 23)),
        src_port: 40000,
        dst,
        dst_port,
        len: 1500,
    }
}

/// `server` holds the setup server's order key; `me` is the already-joined device that runs
/// the setup network.
pub fn run(provider: &RustCryptoProvider, server: &SoftwareSigner, me: &SoftwareSigner) -> Check {
    // The policy: defaults, and an unusable one refused.
    let policy = SetupNetworkPolicy::with_defaults(ROUTER, (SETUP_NET, 24), vec![SERVER]);
    let broken = SetupNetworkPolicy {
        evict_batch: 0,
        ..policy.clone()
    };
    ensure(
        matches!(
            SetupNetwork::new(broken, NetworkMode::OpenedByOrder, Instant(0)),
            Err(Error::InvalidPolicy(_))
        ),
        Step::ProvisionerPolicy,
    )?;
    let mut net = SetupNetwork::new(policy, NetworkMode::OpenedByOrder, Instant(0))
        .map_err(|_| Step::ProvisionerPolicy)?;
    ensure(
        net.client_joined(NEW_DEVICE, Instant(500)) == JoinDecision::Refused(RefuseReason::Closed),
        Step::ProvisionerAdmission,
    )?;

    // The device trusts the server's order key for that role only.
    let trusted = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::ProvisionerOrder,
        server.public_key().clone(),
    )]);
    let order = OpenNetworkOrder {
        order_id: [0x0d; 16],
        provisioner_key_id: me.key_id(),
        device_key_id: KeyId([0x4e; 32]),
        issued_at_ms: WALL,
        not_after_ms: WALL + ORDER_VALIDITY_MS,
    };
    let wire = order
        .sign(me.public_key(), server, provider)
        .map_err(|_| Step::ProvisionerOrderSign)?;
    let verified = OpenNetworkOrder::verify(&wire, me.public_key(), &trusted, provider)
        .map_err(|_| Step::ProvisionerOrderRefused)?;
    ensure(verified == order, Step::ProvisionerOrderRefused)?;

    // Refused before anything opens: one flipped signature bit, a signer the device does not
    // trust, an order naming another device, an expired one, one open longer than allowed.
    let mut tampered = wire.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0x01;
    }
    let now = Instant(1_000);
    let wall = WALL + 1_000;
    let refused = |net: &mut SetupNetwork, bytes: &[u8], expected: fn(&OrderError) -> bool| {
        let r = net.accept_order(bytes, me.public_key(), &trusted, provider, wall, now);
        ensure(
            r.as_ref().err().is_some_and(expected),
            Step::ProvisionerBadOrderAccepted,
        )
    };
    refused(&mut net, &tampered, |e| {
        matches!(e, OrderError::Signature(_))
    })?;
    let forged = order
        .sign(me.public_key(), me, provider)
        .map_err(|_| Step::ProvisionerOrderSign)?;
    refused(&mut net, &forged, |e| matches!(e, OrderError::Signature(_)))?;
    let misaddressed = OpenNetworkOrder {
        order_id: [0x0e; 16],
        provisioner_key_id: KeyId([0x99; 32]),
        ..order
    }
    .sign(me.public_key(), server, provider)
    .map_err(|_| Step::ProvisionerOrderSign)?;
    refused(&mut net, &misaddressed, |e| {
        *e == OrderError::NotForThisDevice
    })?;
    let expired = OpenNetworkOrder {
        order_id: [0x0f; 16],
        not_after_ms: wall,
        ..order
    }
    .sign(me.public_key(), server, provider)
    .map_err(|_| Step::ProvisionerOrderSign)?;
    refused(&mut net, &expired, |e| *e == OrderError::Expired)?;
    let too_long = OpenNetworkOrder {
        order_id: [0x10; 16],
        not_after_ms: WALL + 8 * 24 * ORDER_VALIDITY_MS,
        ..order
    }
    .sign(me.public_key(), server, provider)
    .map_err(|_| Step::ProvisionerOrderSign)?;
    refused(&mut net, &too_long, |e| *e == OrderError::TooLong)?;
    ensure(net.opening().is_none(), Step::ProvisionerBadOrderAccepted)?;

    // The real order opens the network until its deadline, once.
    let opening = net
        .accept_order(&wire, me.public_key(), &trusted, provider, wall, now)
        .map_err(|_| Step::ProvisionerOrderRefused)?;
    let closes = Instant(now.0 + ORDER_VALIDITY_MS - 1_000);
    ensure(
        opening.device_key_id == order.device_key_id && opening.until == closes,
        Step::ProvisionerOrderRefused,
    )?;
    refused(&mut net, &wire, |e| *e == OrderError::Replayed)?;

    // Admission.
    ensure(
        net.client_joined(NEW_DEVICE, now) == JoinDecision::Admitted { evicted: vec![] },
        Step::ProvisionerAdmission,
    )?;
    ensure(
        net.client_joined(NEW_DEVICE, now) == JoinDecision::AlreadyAdmitted,
        Step::ProvisionerAdmission,
    )?;

    packets(&mut net, now)?;
    admission(&mut net, now, closes)
}

/// Isolation and rate limits (paragraph 0046): only DHCP with the router and HTTPS to the
/// setup server pass; the router's other services, the home network, other setup clients and
/// the internet do not; a client past its burst is held back.
fn packets(net: &mut SetupNetwork, now: Instant) -> Check {
    let forward = PacketDecision::Forward(Priority::BelowHome);
    let drop = PacketDecision::Drop;
    // A DHCP discover, broadcast before the client has an address.
    let dhcp = Packet {
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        src_port: 68,
        len: 342,
        ..from_client(
            NEW_DEVICE,
            Protocol::Udp,
            IpAddr::V4(Ipv4Addr::BROADCAST),
            67,
        )
    };
    let cases = [
        (from_client(NEW_DEVICE, Protocol::Tcp, SERVER, 443), forward),
        (dhcp, forward),
        (
            from_client(NEW_DEVICE, Protocol::Tcp, ROUTER, 80),
            drop(DropReason::RouterService),
        ),
        (
            from_client(NEW_DEVICE, Protocol::Udp, ROUTER, 53),
            drop(DropReason::RouterService),
        ),
        (
            from_client(NEW_DEVICE, Protocol::Tcp, SERVER, 80),
            drop(DropReason::NotAllowed),
        ),
        (
            from_client(
                NEW_DEVICE,
                Protocol::Tcp,
                IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)),
                443,
            ),
            drop(DropReason::HomeNetwork),
        ),
        (
            from_client(
                NEW_DEVICE,
                Protocol::Tcp,
                IpAddr::V4(Ipv4Addr::new(10, 77, 0, 40)),
                443,
            ),
            drop(DropReason::OtherSetupClient),
        ),
        (
            from_client(
                NEW_DEVICE,
                Protocol::Udp,
                IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
                53,
            ),
            drop(DropReason::NotAllowed),
        ),
        (
            from_client(mac(0xff), Protocol::Tcp, SERVER, 443),
            drop(DropReason::UnknownClient),
        ),
    ];
    for (packet, expected) in cases {
        ensure(
            net.packet(&packet, now) == expected,
            Step::ProvisionerPacket,
        )?;
    }

    // The client's burst (64 KiB by default) passes at once; the next packet waits.
    let https = from_client(NEW_DEVICE, Protocol::Tcp, SERVER, 443);
    let later = Instant(now.0 + 60_000);
    let mut passed = 0u32;
    while net.packet(&https, later) == forward {
        passed += 1;
        ensure(passed < 1_000, Step::ProvisionerPacket)?;
    }
    ensure(
        passed == 64 * 1024 / https.len
            && net.packet(&https, later) == drop(DropReason::ClientRate),
        Step::ProvisionerPacket,
    )?;
    // A second later the bucket has refilled (32 KiB/s).
    ensure(
        net.packet(&https, Instant(later.0 + 1_000)) == forward,
        Step::ProvisionerPacket,
    )
}

/// Eviction and bans (paragraph 0045): a full network refuses newcomers while every client is
/// younger than the minimum age, then evicts and bans the oldest; the ban ends, and so does the
/// ordered opening, which disconnects everyone.
fn admission(net: &mut SetupNetwork, joined: Instant, closes: Instant) -> Check {
    let max = u8::try_from(net.policy().max_clients).map_err(|_| Step::ProvisionerAdmission)?;
    // NEW_DEVICE joined at `joined`; the others a moment later fill the network.
    let now = Instant(joined.0 + 1);
    for n in 1..max {
        ensure(
            matches!(
                net.client_joined(mac(n), now),
                JoinDecision::Admitted { evicted } if evicted.is_empty()
            ),
            Step::ProvisionerAdmission,
        )?;
    }
    ensure(
        net.client_joined(mac(max), now) == JoinDecision::Refused(RefuseReason::Full),
        Step::ProvisionerAdmission,
    )?;
    // Once NEW_DEVICE, and only it, is past the minimum age, it makes room and is banned.
    let later = joined.saturating_add(net.policy().min_age_before_eviction);
    let banned_until = later.saturating_add(net.policy().ban_duration);
    ensure(
        net.client_joined(mac(max), later)
            == JoinDecision::Admitted {
                evicted: vec![Eviction {
                    client: NEW_DEVICE,
                    banned_until,
                }],
            },
        Step::ProvisionerAdmission,
    )?;
    ensure(
        net.client_joined(NEW_DEVICE, later)
            == JoinDecision::Refused(RefuseReason::Banned {
                until: banned_until,
            }),
        Step::ProvisionerAdmission,
    )?;
    ensure(
        net.poll_timeout() == Some(banned_until),
        Step::ProvisionerTimeout,
    )?;
    ensure(
        net.handle_timeout(banned_until) == vec![TimerDecision::Unbanned(NEW_DEVICE)],
        Step::ProvisionerTimeout,
    )?;
    // A client that leaves by itself is not banned.
    net.client_left(mac(1));
    ensure(
        net.client_joined(mac(1), banned_until) == JoinDecision::Admitted { evicted: vec![] },
        Step::ProvisionerAdmission,
    )?;

    // The order's deadline closes the network and disconnects every client.
    ensure(net.poll_timeout() == Some(closes), Step::ProvisionerTimeout)?;
    let clients = net.clients().count();
    let closed = net.handle_timeout(closes);
    ensure(
        closed.len() == clients + 1
            && closed.last() == Some(&TimerDecision::Closed)
            && closed
                .iter()
                .take(clients)
                .all(|d| matches!(d, TimerDecision::ClosedEvicting(_))),
        Step::ProvisionerTimeout,
    )?;
    ensure(
        net.opening().is_none()
            && net.clients().next().is_none()
            && net.client_joined(NEW_DEVICE, closes) == JoinDecision::Refused(RefuseReason::Closed),
        Step::ProvisionerTimeout,
    )?;
    ensure(
        net.next_volume_reset() > closes && net.poll_timeout().is_none(),
        Step::ProvisionerTimeout,
    )?;
    Ok(())
}
