//! Whole flows over the in-process GATT link (`zerotouch_ble::simulated`): reliable writes
//! and indications at a chosen MTU, with the connection cut in the middle of a message.
//!
//! Flow 1: the device (peripheral) ↔ the provisioner relay (central) ↔ the real HTTPS server's
//! relay endpoint ↔ the setup service on SQLite. Flow 2: the joiner (peripheral) ↔ the sponsor
//! (central), the sponsor asking the association service.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::world::{BleWorld, HandoffWorld, provision};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_ble::relay::{RelayEnd, RelaySummary};
use zerotouch_ble::simulated::{Cut, GattControl, simulated_gatt};
use zerotouch_ble::{BleChannel, Error, LinkConfig, LinkStats};
use zerotouch_core::flow2::HomeCredential;
use zerotouch_core::{Instant, Passphrase, Signer, SoftwareSigner, Transport};
use zerotouch_device_tokio::DeviceRun;
use zerotouch_peer::{
    Destination, Joiner, JoinerConfig, JoinerEvent, MemoryPeerState, Sponsor, SponsorConfig,
    SponsorEvent,
};
use zerotouch_provisioner::{ClientMac, DropReason, RateLimit};
use zerotouch_server::TransportIdentity;
use zerotouch_store_suite::fixtures;

const DEVICE: ClientMac = ClientMac([0x02, 0, 0, 0, 0, 0x01]);

struct Flow1 {
    run: DeviceRun,
    passphrase: Option<Vec<u8>>,
    control: GattControl,
    device_link: LinkStats,
    relay: RelaySummary,
}

/// Flow 1 of fixture device 1 through a relay over a simulated link at `mtu`.
async fn flow1_over_gatt(mtu: u16, cut: Option<(u64, Cut)>) -> Flow1 {
    let world = BleWorld::start().await;
    let relay = world.relay(world.policy());
    let (peripheral, central, control) = simulated_gatt(mtu);
    if let Some((n, how)) = cut {
        control.cut_after(n, how);
    }
    relay.admit(DEVICE).unwrap();
    let relay_task = tokio::spawn(async move {
        let mut channel = BleChannel::new(central, LinkConfig::default());
        relay.relay(DEVICE, &mut channel).await
    });
    let mut device = BleChannel::new(peripheral, LinkConfig::default());
    let (run, radio) = provision(&mut device, u64::from(mtu)).await;
    let device_link = device.stats();
    // The device hangs up: the relay sees it go.
    drop(device);
    let relay = tokio::time::timeout(Duration::from_secs(10), relay_task)
        .await
        .unwrap()
        .unwrap();
    Flow1 {
        run: run.unwrap(),
        passphrase: radio.passphrase,
        control,
        device_link,
        relay,
    }
}

fn assert_provisioned(flow: &Flow1) {
    assert_eq!(flow.run.joined.as_deref(), Some(&b"home"[..]));
    assert_eq!(flow.passphrase.as_deref(), Some(fixtures::PASSPHRASE));
    assert!(flow.run.revocation_checked);
    assert!(
        matches!(flow.relay.end, RelayEnd::DeviceGone(_)),
        "{:?}",
        flow.relay.end
    );
    // Everything the device sent reached the server once, and every answer came back.
    assert_eq!(flow.relay.forwarded, flow.device_link.messages_received);
    assert_eq!(flow.relay.forwarded, flow.device_link.messages_sent);
}

/// Every segment fitted its ATT operation, and the largest filled it: the link really cut
/// messages at this MTU.
fn assert_segments_fill(control: &GattControl, mtu: u16) {
    let max = usize::from(mtu - 3).min(512);
    let directions = [
        control.central_to_peripheral(),
        control.peripheral_to_central(),
    ];
    assert!(
        directions.iter().all(|d| d.largest_value <= max),
        "{directions:?}"
    );
    assert!(
        directions.iter().any(|d| d.largest_value == max),
        "{directions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow1_device_relay_server_completes_at_mtu_23() {
    let flow = flow1_over_gatt(23, None).await;
    assert_provisioned(&flow);
    assert_segments_fill(&flow.control, 23);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow1_device_relay_server_completes_at_mtu_247() {
    let flow = flow1_over_gatt(247, None).await;
    assert_provisioned(&flow);
    assert_segments_fill(&flow.control, 247);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow1_survives_a_disconnect_mid_message_at_mtu_23() {
    // The 30th segment is lost with the connection: deep inside the server's first answer.
    let flow = flow1_over_gatt(23, Some((30, Cut::SegmentLost))).await;
    assert_provisioned(&flow);
    assert_eq!(flow.control.cuts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow1_message_whose_last_acknowledgement_was_lost_is_delivered_once() {
    // Each of the first 8 segments at MTU 247 in turn has its acknowledgement lost: the sender sends
    // the whole message again and the receiver drops the copy.
    let mut copies_dropped_by_device = 0;
    for n in 1..=8 {
        let flow = flow1_over_gatt(247, Some((n, Cut::AcknowledgementLost))).await;
        assert_provisioned(&flow);
        assert_eq!(flow.control.cuts(), 1, "cut after {n}");
        copies_dropped_by_device += flow.device_link.duplicates_dropped;
    }
    // Among those cuts, some fell on the last segment of an answer to the device.
    assert!(copies_dropped_by_device > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_refuses_a_device_when_the_setup_network_is_full() {
    let world = BleWorld::start().await;
    let mut policy = world.policy();
    policy.max_clients = 1;
    let relay = world.relay(policy);
    relay.admit(DEVICE).unwrap();
    let other = ClientMac([0x02, 0, 0, 0, 0, 0x02]);
    // The first device is younger than the minimum age before eviction: nobody makes room.
    let err = relay.admit(other).unwrap_err();
    assert!(
        matches!(&err, Error::Relay(why) if why.contains("Full")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_stops_a_device_over_its_rate_limit() {
    let world = BleWorld::start().await;
    let mut policy = world.policy();
    // Less than the device's first message.
    policy.client_rate = RateLimit {
        bytes_per_second: 10,
        burst_bytes: 100,
    };
    let relay = world.relay(policy);
    let (peripheral, central, _control) = simulated_gatt(23);
    relay.admit(DEVICE).unwrap();
    let relay_task = tokio::spawn(async move {
        let mut channel = BleChannel::new(central, LinkConfig::default());
        relay.relay(DEVICE, &mut channel).await
    });
    let mut device = BleChannel::new(peripheral, LinkConfig::default());
    device.send(vec![0xa5; 400]).await.unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(10), relay_task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.end, RelayEnd::Dropped(DropReason::ClientRate));
    assert_eq!(summary.forwarded, 0);
}

/// Flow 2 over a simulated link at `mtu`: the joiner (peripheral) gets the home credential
/// from the sponsor (central), which asks the association service in process.
async fn flow2_over_gatt(mtu: u16, cut: Option<(u64, Cut)>) -> (Vec<u8>, GattControl) {
    let world = HandoffWorld::start().await;
    let (peripheral, central, control) = simulated_gatt(mtu);
    if let Some((n, how)) = cut {
        control.cut_after(n, how);
    }
    let home = HomeCredential {
        ssid: b"home".to_vec(),
        security: 2,
        passphrase: Passphrase::new(fixtures::PASSPHRASE).unwrap(),
    };
    let identity = SoftwareSigner::new(fixtures::device_key(2));
    let sponsor_key = identity.public_key().clone();
    let sponsor = Sponsor::new(
        SponsorConfig::new(home, world.pinned.clone()),
        identity,
        MemoryPeerState::new(),
    )
    .unwrap();
    let joiner = Joiner::new(
        JoinerConfig::new(
            fixtures::device_id(3),
            fixtures::device(3).device_secret.unwrap(),
            world.pinned.clone(),
        ),
        MemoryPeerState::new(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let clock = move || Instant(started.elapsed().as_millis() as u64);
    let sponsor_side = async {
        let mut channel = BleChannel::new(central, LinkConfig::default());
        let mut sponsor = sponsor;
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        sponsor.accept(clock(), &mut rng);
        loop {
            while let Some(t) = sponsor.poll_transmit() {
                match t.destination {
                    Destination::Joiner => channel.send(t.bytes).await.unwrap(),
                    Destination::AssociationServer => {
                        let via = TransportIdentity::Direct {
                            transport: Transport::Https,
                            client_key: Some(sponsor_key.clone()),
                        };
                        let now = Instant(1_700_000_000_000 + clock().0);
                        let answer = world
                            .association
                            .handle(&t.bytes, &via, now, &mut rng)
                            .await;
                        sponsor.receive_server(clock(), &answer, &mut rng);
                    }
                }
            }
            while let Some(event) = sponsor.poll_event() {
                match event {
                    SponsorEvent::HandedOver { .. } => {
                        while let Some(t) = sponsor.poll_transmit() {
                            channel.send(t.bytes).await.unwrap();
                        }
                        return channel;
                    }
                    SponsorEvent::Failed { reason } => panic!("sponsor failed: {reason:?}"),
                    _ => {}
                }
            }
            let message = channel.recv().await.unwrap();
            sponsor.receive_local(clock(), &message, &mut rng);
        }
    };
    let joiner_side = async {
        let mut channel = BleChannel::new(peripheral, LinkConfig::default());
        let mut joiner = joiner;
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        joiner.start(clock(), &mut rng);
        loop {
            while let Some(bytes) = joiner.poll_transmit() {
                channel.send(bytes).await.unwrap();
            }
            while let Some(event) = joiner.poll_event() {
                match event {
                    JoinerEvent::Join { passphrase, .. } => {
                        return passphrase.expose_secret().to_vec();
                    }
                    JoinerEvent::Failed { reason } => panic!("joiner failed: {reason:?}"),
                    _ => {}
                }
            }
            let message = channel.recv().await.unwrap();
            joiner.receive(clock(), &message, &mut rng);
        }
    };
    let (_, passphrase) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(sponsor_side, joiner_side)
    })
    .await
    .unwrap();
    (passphrase, control)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow2_joiner_gets_the_credential_from_the_sponsor_at_mtu_23() {
    let (passphrase, control) = flow2_over_gatt(23, None).await;
    assert_eq!(passphrase, fixtures::PASSPHRASE);
    assert_segments_fill(&control, 23);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow2_joiner_gets_the_credential_from_the_sponsor_at_mtu_247() {
    let (passphrase, control) = flow2_over_gatt(247, None).await;
    assert_eq!(passphrase, fixtures::PASSPHRASE);
    assert_segments_fill(&control, 247);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow2_survives_a_disconnect_mid_message_at_mtu_23() {
    for (n, how) in [(12, Cut::SegmentLost), (25, Cut::AcknowledgementLost)] {
        let (passphrase, control) = flow2_over_gatt(23, Some((n, how))).await;
        assert_eq!(passphrase, fixtures::PASSPHRASE);
        assert_eq!(control.cuts(), 1);
    }
}
