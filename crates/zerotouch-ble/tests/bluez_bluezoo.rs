//! The BlueZ backend against BlueZoo, BlueZ's D-Bus API simulated with two adapters: the real
//! `bluer` peripheral on hci0 and the real `bluer` central on hci1 carry whole messages through
//! `BleChannel` at ATT MTU 23 and 512.
//!
//! Each test starts the simulator on a private D-Bus, then runs itself again in a child
//! process with `DBUS_SYSTEM_BUS_ADDRESS` pointing there (a process cannot set its own
//! environment without `unsafe`); the child does the Bluetooth part. Without `dbus-daemon` or
//! BlueZoo the tests fail, saying what to install (`scripts/system-deps.sh`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![cfg(feature = "bluer")]

mod common;

use std::process::Command;
use std::time::Duration;

use common::world::{BleWorld, provision};
use zerotouch_provisioner::ClientMac;
use zerotouch_store_suite::fixtures;

use zerotouch_ble::bluez::bluer::gatt::WriteOp;
use zerotouch_ble::bluez::bluer::gatt::remote::CharacteristicWriteRequest;
use zerotouch_ble::bluez::bluezoo::{Bluezoo, CENTRAL_ADAPTER, PERIPHERAL_ADAPTER};
use zerotouch_ble::bluez::{BleCentral, BlePeripheral, CentralBearer};
use zerotouch_ble::profile::WRITE_CHARACTERISTIC_UUID;
use zerotouch_ble::{
    BleChannel, Error, GattBearer, LinkConfig, MAX_MESSAGE_LEN, PROFILE_VERSION, ServiceInfo,
    segment_capacity,
};

/// The whole test, simulator start to last check.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Central → peripheral message sizes; the peripheral answers each with the size at the same
/// place from the end. Around one segment at MTU 23 (16 bytes after the begin header, 19 after
/// a continuation header), around one at 512, and the longest a flow carries.
const SIZES: [usize; 10] = [0, 1, 16, 17, 35, 300, 505, 506, 1000, MAX_MESSAGE_LEN];

/// What the peripheral sends before anything else.
const GREETING: usize = 300;

const INFO: ServiceInfo = ServiceInfo {
    version: PROFILE_VERSION,
    max_message_len: MAX_MESSAGE_LEN as u16,
    instance: 0x5eed_0001,
};

#[test]
fn bluer_peripheral_and_central_complete_an_exchange_at_mtu_23() {
    in_simulator(
        "bluer_peripheral_and_central_complete_an_exchange_at_mtu_23",
        23,
        exchange,
    );
}

#[test]
fn bluer_peripheral_and_central_complete_an_exchange_at_mtu_512() {
    in_simulator(
        "bluer_peripheral_and_central_complete_an_exchange_at_mtu_512",
        512,
        exchange,
    );
}

#[test]
fn the_bluer_peripheral_refuses_a_long_write() {
    in_simulator("the_bluer_peripheral_refuses_a_long_write", 23, long_write);
}

#[test]
fn flow1_device_relay_server_completes_over_bluer_at_mtu_23() {
    in_simulator(
        "flow1_device_relay_server_completes_over_bluer_at_mtu_23",
        23,
        flow1_through_relay,
    );
}

#[test]
fn flow1_device_relay_server_completes_over_bluer_at_mtu_512() {
    in_simulator(
        "flow1_device_relay_server_completes_over_bluer_at_mtu_512",
        512,
        flow1_through_relay,
    );
}

/// A provisioning over BlueZ: fixture device 1 as the bluer peripheral runs flow 1 to the
/// end (PIN proof, sealed credential, join, outcome, revocation check) through the provisioner
/// relay as the bluer central, which forwards to the real HTTPS server's relay endpoint.
async fn flow1_through_relay(mtu: u16) {
    let world = BleWorld::start().await;
    let relay = world.relay(world.policy());
    let peripheral = start_peripheral().await;
    let device = tokio::spawn(async move {
        let bearer = peripheral.accept().await.unwrap();
        let mut channel = BleChannel::new(bearer, LinkConfig::default());
        let (run, radio) = provision(&mut channel, u64::from(mtu)).await;
        (run.unwrap(), radio.passphrase, channel.stats())
    });
    let central = connect_central(mtu).await;
    let device_mac = ClientMac(central.device().address().0);
    relay.admit(device_mac).unwrap();
    let mut channel = BleChannel::new(central, LinkConfig::default());
    let (run, passphrase, device_link) = tokio::select! {
        done = device => done.unwrap(),
        summary = relay.relay(device_mac, &mut channel) => panic!("the relay stopped first: {summary:?}"),
    };
    assert_eq!(run.joined.as_deref(), Some(&b"home"[..]));
    assert_eq!(passphrase.as_deref(), Some(fixtures::PASSPHRASE));
    assert!(run.revocation_checked);
    let relay_link = channel.stats();
    assert_eq!(relay_link.messages_received, device_link.messages_sent);
    assert_eq!(device_link.messages_received, relay_link.messages_sent);
    // The central checked every segment against MTU - 3 itself.
    let capacity = segment_capacity(mtu).unwrap();
    let central = channel.bearer();
    assert!(central.largest_segment_written() <= capacity);
    assert!(central.largest_segment_received() <= capacity);
    if mtu == 23 {
        // Flow 1's messages are all longer than one segment at MTU 23.
        assert_eq!(central.largest_segment_written(), capacity);
        assert_eq!(central.largest_segment_received(), capacity);
    }
}

/// In the test process: starts BlueZoo reporting `mtu` and runs `name` again in a child on
/// its bus. In that child: runs `body` with the MTU.
fn in_simulator<F: Future<Output = ()>>(name: &str, mtu: u16, body: fn(u16) -> F) {
    if let Some(given) = Bluezoo::mtu_from_env() {
        assert_eq!(given, mtu, "the child was started for another MTU");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(TEST_TIMEOUT, body(mtu))
                .await
                .expect("the exchange over BlueZoo did not finish in time");
        });
        return;
    }
    let simulator = Bluezoo::start(mtu).unwrap_or_else(|e| panic!("{e}"));
    // The child's output goes to a file and is printed here, where the test harness captures
    // it (shown when the test fails), instead of mixing its own test report into ours.
    let log = std::env::temp_dir().join(format!("{name}-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let status = simulator.run(child, TEST_TIMEOUT + Duration::from_secs(5));
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    print!("{output}");
    let status = status.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.success(),
        "the child on BlueZoo {} (MTU {mtu}) failed: {status}; its output is above",
        simulator.version()
    );
    // A name that matched no test would run nothing and exit 0.
    assert!(
        output.contains("test result: ok. 1 passed"),
        "the child did not run `{name}`; its output is above"
    );
}

/// A message whose bytes depend on who sends it, its place and its length.
fn message(from: u8, index: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (k.wrapping_mul(31) ^ index.wrapping_mul(7)) as u8 ^ from)
        .collect()
}

async fn start_peripheral() -> BlePeripheral {
    BlePeripheral::start(Some(PERIPHERAL_ADAPTER), "zerotouch-test", INFO)
        .await
        .unwrap()
}

async fn connect_central(mtu: u16) -> CentralBearer {
    let central = BleCentral::connect(Some(CENTRAL_ADAPTER), CONNECT_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(central.info(), INFO);
    assert_eq!(
        central.mtu(),
        mtu,
        "the central reads the MTU BlueZoo reports"
    );
    central
}

async fn exchange(mtu: u16) {
    let peripheral = start_peripheral().await;
    let device = tokio::spawn(async move {
        let bearer = peripheral.accept().await?;
        let mut channel = BleChannel::new(bearer, LinkConfig::default());
        // The peripheral speaks first, as a joiner does, the moment the central is accepted.
        channel.send(message(b'g', 0, GREETING)).await?;
        for (index, &len) in SIZES.iter().enumerate() {
            let received = channel.recv().await?;
            assert_eq!(received.len(), len);
            assert!(
                received == message(b'c', index, len),
                "message {index} changed"
            );
            // The MTU comes with each write request.
            assert_eq!(channel.bearer().mtu(), mtu);
            let reply = SIZES[SIZES.len() - 1 - index];
            channel.send(message(b'p', index, reply)).await?;
        }
        Ok::<_, Error>(channel.stats())
    });

    let mut channel = BleChannel::new(connect_central(mtu).await, LinkConfig::default());
    assert!(channel.recv().await.unwrap() == message(b'g', 0, GREETING));
    for (index, &len) in SIZES.iter().enumerate() {
        channel.send(message(b'c', index, len)).await.unwrap();
        let reply = channel.recv().await.unwrap();
        let expected = SIZES[SIZES.len() - 1 - index];
        assert_eq!(reply.len(), expected);
        assert!(
            reply == message(b'p', index, expected),
            "reply {index} changed"
        );
    }
    let peripheral_stats = device.await.unwrap().unwrap();

    // Every segment was checked against MTU - 3 as it went; the largest filled it, so at
    // MTU 23 the 20-byte segments a real small-MTU link allows were really used.
    let capacity = segment_capacity(mtu).unwrap();
    let bearer = channel.bearer();
    assert_eq!(bearer.largest_segment_written(), capacity);
    assert_eq!(bearer.largest_segment_received(), capacity);
    let stats = channel.stats();
    assert_eq!(stats.messages_sent, SIZES.len() as u64);
    assert_eq!(stats.messages_received, SIZES.len() as u64 + 1);
    assert_eq!(stats.segments_sent, peripheral_stats.segments_received);
    assert_eq!(stats.segments_received, peripheral_stats.segments_sent);
    println!(
        "MTU {mtu}: {} segments written, {} indicated, largest {capacity} bytes",
        stats.segments_sent, stats.segments_received
    );
}

/// A long write (a value at a non-zero offset) is refused with a GATT error, and the
/// peripheral sees nothing of it.
async fn long_write(mtu: u16) {
    let peripheral = start_peripheral().await;
    let device = tokio::spawn(async move {
        let mut channel = BleChannel::new(peripheral.accept().await?, LinkConfig::default());
        channel.recv().await
    });
    let mut channel = BleChannel::new(connect_central(mtu).await, LinkConfig::default());

    let device_handle = channel.bearer().device().clone();
    let mut write = None;
    for service in device_handle.services().await.unwrap() {
        for characteristic in service.characteristics().await.unwrap() {
            if characteristic.uuid().await.unwrap().as_u128() == WRITE_CHARACTERISTIC_UUID {
                write = Some(characteristic);
            }
        }
    }
    let request = CharacteristicWriteRequest {
        offset: 1,
        op_type: WriteOp::Request,
        ..Default::default()
    };
    let refused = write.unwrap().write_ext(&[0xc0, 0, 0, 1], &request).await;
    let error = refused.expect_err("a write at offset 1 was accepted");
    assert!(
        error.to_string().contains("Offset") || error.to_string().contains("offset"),
        "refused for another reason: {error}"
    );

    // The link is untouched: the next message arrives whole.
    channel.send(b"after".to_vec()).await.unwrap();
    assert_eq!(device.await.unwrap().unwrap(), b"after");
}
