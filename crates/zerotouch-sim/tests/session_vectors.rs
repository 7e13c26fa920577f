//! Whole-session test vectors: every message of one deterministic flow-1 run (30 visible
//! networks, perfect links), with the device's random draws, its keys, its scan and the
//! server's keys, in `docs/vectors/session.json`. A device written in another language feeds
//! itself the draws and the server's messages and must send the vector's messages byte for
//! byte; the second test does exactly that with the Rust device, so the file is known to be
//! sufficient.
//!
//! After an intended change: `ZT_UPDATE_VECTORS=1 cargo test -p zerotouch-sim --test
//! session_vectors` rewrites the file, and the diff shows what changed on the wire.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;

use common::*;
use rand_core::{TryCryptoRng, TryRng};
use serde_json::{Value, json};
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::*;
use zerotouch_device::*;
use zerotouch_server::ServiceConfig;
use zerotouch_sim::*;
use zerotouch_store::MemoryStore;
use zerotouch_store_suite::fixtures;

const SEED: u64 = 2026;

/// The household's access points plus neighbours' up to 30 visible networks.
fn thirty_networks() -> Air {
    let mut air = household_air();
    let names = [
        "FRITZ!Box 7590 QX",
        "Vodafone-4A2C",
        "TP-Link_5G_81F0",
        "eduroam",
        "DIRECT-7B-HP OfficeJet",
        "Telekom_FON",
        "Pixel_3321",
        "NETGEAR47-5G",
        "Livebox-9F10",
        "dlink-A8B2",
        "SKY1F2C3",
        "BTHub6-9QXK",
        "Linksys02941",
        "ASUS_58_5G",
        "UPC1234567",
        "Ziggo8842163",
        "devolo-9a1",
        "Guest",
        "iPhone von Anna",
        "Büro 2.OG",
        "ThisNetworkNameIsExactly32Bytes!",
        "ORBI21",
        "MagentaWLAN-7RTX",
        "o2-WLAN62",
        "HUAWEI-B535-ABCD",
    ];
    for (i, name) in names.iter().enumerate() {
        let band = if i % 3 == 0 { 2 } else { 1 };
        let security = if i % 4 == 0 { 2 } else { 1 };
        air.access_points.push(AccessPoint::new(
            name,
            band,
            security,
            b"not ours to know",
            60 + (i % 30) as u8,
        ));
    }
    assert_eq!(air.access_points.len(), 30);
    air
}

fn reference_run() -> Sim<MemoryStore> {
    let rt = runtime().unwrap();
    let deployment = rt
        .block_on(Deployment::new(
            MemoryStore::new(),
            ServiceConfig::default(),
        ))
        .unwrap();
    rt.block_on(household(&deployment)).unwrap();
    let mut sim = Sim::new(
        rt,
        deployment,
        SimConfig::new(SEED),
        DeviceSpec::fixture(1),
        thirty_networks(),
    )
    .unwrap();
    sim.start(Trigger::FirstBoot);
    assert_eq!(sim.run(), complete(true));
    sim
}

fn key_json(seed: u8) -> Value {
    let s = server_signer(seed).unwrap();
    json!({
        "private_scalar": hex::encode([seed; 32]),
        "spki": hex::encode(s.public_key().to_spki_der()),
        "key_id": hex::encode(s.key_id().0),
    })
}

fn vectors(sim: &Sim<MemoryStore>) -> Value {
    let identity = fixtures::device_key(1).public_key();
    let scan: Vec<Value> = sim
        .air
        .scan(3)
        .iter()
        .map(|n| {
            json!({
                "ssid": String::from_utf8(n.ssid.clone()).unwrap(),
                "signal_loss_db": n.signal_loss_db,
                "band": n.band,
                "channel": n.channel,
                "security": n.security,
            })
        })
        .collect();
    // The device's clock: 0 when setup starts (the scan request).
    let start = sim.events()[0].0.0;
    let messages: Vec<Value> = sim
        .trace()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut m = json!({
                "at_ms": s.at.0 - start,
                "from": match s.sender { Sender::Device => "device", _ => "server" },
                "path": match s.path { Path::Setup => "setup", Path::Home => "home" },
                "tag": format!("{:?}", s.tag().unwrap()),
                "hex": hex::encode(&s.bytes),
            });
            if s.sender == Sender::Device {
                // The draws made since the previous message that were for this one.
                let draws: Vec<String> = sim
                    .device_draws()
                    .iter()
                    .filter(|(at, _)| *at == i)
                    .map(|(_, d)| hex::encode(d))
                    .collect();
                m["device_random"] = json!(draws);
            }
            m
        })
        .collect();
    let events: Vec<Value> = sim
        .events()
        .iter()
        .map(|(t, e)| json!({ "at_ms": t.0 - start, "event": format!("{e:?}") }))
        .collect();
    let pinned = sim
        .deployment()
        .pinned
        .trusted_key_ids(KeyRole::SetupSigning);
    json!({
        "description": "One whole flow-1 session (zerotouch-sim, seed 2026, perfect links): \
            every message in order, the device's random draws before each of its messages, \
            its identity key, PIN, configuration and scan, and the server's keys. Times are \
            the device's clock in milliseconds from the start of setup (the scan request). \
            ECDSA signatures are deterministic (RFC 6979).",
        "device": {
            "identity_private_scalar": hex::encode([1u8; 32]),
            "identity_spki": hex::encode(identity.to_spki_der()),
            "pin": fixtures::PIN,
            "transport": "https",
            "home_transport": "https",
            "radio_bands": 3,
            "radio_security": 3,
            "suites": CipherSuite::SUPPORTED
                .iter()
                .map(|s| json!({ "kem": s.kem, "kdf": s.kdf, "aead": s.aead }))
                .collect::<Vec<_>>(),
            "pinned_setup_keys": pinned.iter().map(|k| hex::encode(k.0)).collect::<Vec<_>>(),
        },
        "server": {
            "setup_keys": [key_json(SETUP_KEY_SEEDS[0]), key_json(SETUP_KEY_SEEDS[1])],
            "revocation_key": key_json(REVOCATION_KEY_SEED),
        },
        "scan": scan,
        "messages": messages,
        "device_events": events,
    })
}

#[test]
fn the_session_vectors_match_the_code() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let path = format!("{root}/docs/vectors/session.json");
    let sim = reference_run();
    let text = serde_json::to_string_pretty(&vectors(&sim)).unwrap() + "\n";
    if std::env::var_os("ZT_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .expect("docs/vectors/session.json (run with ZT_UPDATE_VECTORS=1)");
    assert_eq!(
        committed, text,
        "docs/vectors/session.json is stale: the wire format or the flow changed"
    );
}

/// Hands out the vector's draws, in order, checking each size.
struct ReplayRng(VecDeque<Vec<u8>>);

impl TryRng for ReplayRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let d = self.0.pop_front().expect("a draw left");
        Ok(u32::from_le_bytes(d.try_into().expect("a 4-byte draw")))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let d = self.0.pop_front().expect("a draw left");
        Ok(u64::from_le_bytes(d.try_into().expect("an 8-byte draw")))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let d = self.0.pop_front().expect("a draw left");
        assert_eq!(d.len(), dst.len(), "draw size");
        dst.copy_from_slice(&d);
        Ok(())
    }
}
impl TryCryptoRng for ReplayRng {}

#[test]
fn a_device_fed_the_vectors_draws_and_server_messages_sends_the_vectors_messages() {
    // The file's content (the other test holds the file to it), read as a port would.
    let v: Value =
        serde_json::from_str(&serde_json::to_string(&vectors(&reference_run())).unwrap()).unwrap();
    let unhex = |v: &Value| hex::decode(v.as_str().unwrap()).unwrap();
    let d = &v["device"];
    let key = SoftwareSigner::new(
        SigningKey::from_secret_bytes(
            SignatureAlgorithm::EcdsaP256Sha256,
            &unhex(&d["identity_private_scalar"]).try_into().unwrap(),
        )
        .unwrap(),
    );
    let mut pinned = Vec::new();
    for k in v["server"]["setup_keys"].as_array().unwrap() {
        let pk = PublicKey::from_spki_der(&unhex(&k["spki"])).unwrap();
        pinned.push(PinnedKey::new(KeyRole::SetupSigning, pk));
    }
    let rk = PublicKey::from_spki_der(&unhex(&v["server"]["revocation_key"]["spki"])).unwrap();
    pinned.push(PinnedKey::new(KeyRole::RevocationVerdict, rk));
    let config = DeviceConfig {
        transport: Transport::Https,
        home_transport: Transport::Https,
        identity: DeviceIdentityRef::PublicKey(unhex(&d["identity_spki"])),
        pin: Some(Pin::new(d["pin"].as_str().unwrap()).unwrap()),
        radio_bands: 3,
        radio_security: 3,
        suites: CipherSuite::SUPPORTED.to_vec(),
        retry: RetryPolicy::default(),
    };
    let mut device = DeviceSession::new(
        config,
        PinnedKeys::new(pinned),
        key,
        MemoryDeviceState::new(),
    )
    .unwrap();
    let scan: Vec<ReportedNetwork> = v["scan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| ReportedNetwork {
            ssid: n["ssid"].as_str().unwrap().as_bytes().to_vec(),
            signal_loss_db: n["signal_loss_db"].as_u64().unwrap() as u8,
            band: n["band"].as_u64().unwrap() as u8,
            channel: n["channel"].as_u64().unwrap() as u16,
            security: n["security"].as_u64().unwrap() as u8,
        })
        .collect();
    let messages = v["messages"].as_array().unwrap();
    // Every draw, in order: the device draws nothing that is not in the file.
    let draws: VecDeque<Vec<u8>> = messages
        .iter()
        .filter_map(|m| m["device_random"].as_array())
        .flatten()
        .map(unhex)
        .collect();
    let mut rng = ReplayRng(draws);
    let at = |m: &Value| Instant(m["at_ms"].as_u64().unwrap());
    let path = |m: &Value| match m["path"].as_str().unwrap() {
        "setup" => Path::Setup,
        _ => Path::Home,
    };
    device.start(Instant(0), Trigger::FirstBoot);
    assert_eq!(device.poll_event(), Some(Event::ScanRequested));
    // The scan ends when the hello goes out.
    device.scan_complete(at(&messages[0]), scan, &mut rng);
    let mut complete = false;
    for m in messages {
        let bytes = unhex(&m["hex"]);
        if m["from"] == "device" {
            let sent = device
                .poll_transmit()
                .expect("the device sends the next message");
            assert_eq!(sent.path, path(m));
            assert_eq!(sent.bytes, bytes, "{} differs", m["tag"]);
            continue;
        }
        assert_eq!(device.poll_transmit(), None);
        device.handle_incoming(at(m), path(m), &bytes, &mut rng);
        while let Some(e) = device.poll_event() {
            match e {
                Event::Join { .. } => device.join_result(at(m), JoinResult::Joined, &mut rng),
                Event::MessageRefused { reason } => panic!("{reason:?}"),
                Event::Complete {
                    revocation_checked: true,
                } => complete = true,
                _ => {}
            }
        }
    }
    assert!(complete);
    assert!(rng.0.is_empty(), "every draw used");
}
