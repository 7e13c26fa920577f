//! Flow 1 end to end in one process: a factory makes a device, a shop's registrar scans its
//! label into the owner's account, and the real device session (`zerotouch-device`) sets up
//! against the real setup service (`zerotouch-server`) on the embedded SQLite store, then
//! reports its outcome and checks its server key. Only the transport is missing (HTTPS, DNS
//! and BLE arrive with their issues): bytes go straight from one to the other. Run:
//! `cargo run -p zerotouch-examples --example flow1_in_process`

use std::error::Error;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::*;
use zerotouch_device::*;
use zerotouch_server::*;
use zerotouch_store::*;

fn main() -> Result<(), Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    // Seeded RNGs keep the run reproducible; firmware and servers use a CSPRNG.
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let now = Instant(1_764_000_000_000);

    // Server keys: one setup key, one revocation-verdict key. Firmware pins both.
    let mut ring = ServerKeyRing::new();
    let mut pinned = Vec::new();
    for role in [KeyRole::SetupSigning, KeyRole::RevocationVerdict] {
        let key = SoftwareSigner::new(SigningKey::generate(
            SignatureAlgorithm::EcdsaP256Sha256,
            &mut rng,
        )?);
        pinned.push(PinnedKey::new(role, key.public_key().clone()));
        ring.add(role, key)?;
    }

    // The embedded store, its data key in a file beside it.
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(
        dir.path().join("zerotouch.db"),
        &LocalKeyFile::new(dir.path().join("data.key")),
        SqliteOptions::default(),
    )
    .await?;
    for k in ring.keys() {
        store
            .add_server_key(k.role, k.signer.public_key().clone(), now)
            .await?;
    }

    // Factory: the device's identity key, its PIN and its box label.
    let identity = SoftwareSigner::new(SigningKey::generate(
        SignatureAlgorithm::EcdsaP256Sha256,
        &mut rng,
    )?);
    let pin = Pin::generate(&mut rng, 6)?;
    store
        .import_devices(vec![DeviceRecord {
            key_id: identity.key_id(),
            identity: DeviceIdentity::PublicKey(identity.public_key().to_spki_der()),
            device_type: 7,
            serial: 1001,
            product_number: "SMARTPLUG01".into(),
            pin: Some(PinRecord::new(&pin, DEFAULT_PIN_ITERATIONS)?),
            device_secret: None,
            blocked: false,
            created_at: now,
        }])
        .await?;
    let label = BarcodePayload {
        fingerprint: KeyFingerprint::of(&identity.key_id(), 16)?,
        device_type: 7,
        product_number: "SMARTPLUG01".into(),
        pin: None,
    };

    // The owner's account and home networks.
    let account = store.create_account("owner", now).await?;
    for (ssid, passphrase, security, bands) in [
        (
            "home",
            "correct horse battery staple",
            SecurityType::Wpa3Personal,
            Bands::GHZ_2_4.union(Bands::GHZ_5),
        ),
        (
            "home-iot",
            "two point four only",
            SecurityType::Wpa2Personal,
            Bands::GHZ_2_4,
        ),
    ] {
        store
            .add_network(
                NewNetwork {
                    account,
                    ssid: ssid.as_bytes().to_vec(),
                    passphrase: Passphrase::new(passphrase.as_bytes())?,
                    security,
                    bands,
                },
                now,
            )
            .await?;
    }
    let shop = store
        .add_registrar("shop", RegistrarCredential::ApiTokenHash([7; 32]), now)
        .await?;

    let service = SetupService::new(store, ring, ServiceConfig::default());
    let registered = service
        .register_device(shop, &label, account, ReassociationProof::None, now)
        .await?;
    println!("registrar      label scanned into the owner's account: {registered:?}");

    // The device: a 2.4 GHz-only radio with WPA2 and WPA3, its PIN in firmware.
    let config = DeviceConfig {
        transport: Transport::Dns,
        home_transport: Transport::Https,
        identity: DeviceIdentityRef::PublicKey(identity.public_key().to_spki_der()),
        pin: Some(pin),
        radio_bands: 1,
        radio_security: 3,
        suites: CipherSuite::SUPPORTED.to_vec(),
        retry: RetryPolicy::default(),
    };
    let mut device = DeviceSession::new(
        config,
        PinnedKeys::new(pinned),
        identity,
        MemoryDeviceState::new(),
    )?;
    let scan = vec![
        ReportedNetwork {
            ssid: b"home".to_vec(),
            signal_loss_db: 48,
            band: 1,
            channel: 6,
            security: 2,
        },
        ReportedNetwork {
            ssid: b"home-iot".to_vec(),
            signal_loss_db: 60,
            band: 1,
            channel: 11,
            security: 1,
        },
        ReportedNetwork {
            ssid: b"neighbours".to_vec(),
            signal_loss_db: 70,
            band: 1,
            channel: 1,
            security: 1,
        },
    ];

    device.start(now, Trigger::FirstBoot);
    let mut server_rng = ChaCha20Rng::seed_from_u64(1);
    let mut round_trips = 0;
    for _ in 0..100 {
        let mut moved = false;
        while let Some(t) = device.poll_transmit() {
            moved = true;
            round_trips += 1;
            let from = TransportIdentity::Direct {
                transport: match t.path {
                    Path::Setup => Transport::Dns,
                    Path::Home => Transport::Https,
                },
                client_key: None,
            };
            let answer = service.handle(&t.bytes, &from, now, &mut server_rng).await;
            println!(
                "{:<14} {:>5} B request, {:>5} B answer",
                match t.path {
                    Path::Setup => "setup network",
                    Path::Home => "home network",
                },
                t.bytes.len(),
                answer.len()
            );
            device.handle_incoming(now, t.path, &answer, &mut rng);
        }
        while let Some(event) = device.poll_event() {
            moved = true;
            // `Event`'s Debug output redacts the passphrase.
            println!("device         {event:?}");
            match event {
                Event::ScanRequested => device.scan_complete(now, scan.clone(), &mut rng),
                Event::Join { .. } => device.join_result(now, JoinResult::Joined, &mut rng),
                Event::Complete { .. } => {
                    let outcomes = service
                        .store()
                        .outcomes_of_device(&label_key(&service, &label).await?)
                        .await?;
                    println!(
                        "server         outcomes recorded: {:?}",
                        outcomes.iter().map(|o| o.kind).collect::<Vec<_>>()
                    );
                    println!("done           {round_trips} round trips in all (2 for setup)");
                    return Ok(());
                }
                Event::GaveUp { reason } => return Err(format!("gave up: {reason:?}").into()),
                _ => {}
            }
        }
        if !moved {
            return Err("the session stopped without finishing".into());
        }
    }
    Err("the session did not finish".into())
}

async fn label_key<St: Store, S: Signer>(
    service: &SetupService<St, S>,
    label: &BarcodePayload,
) -> Result<KeyId, Box<dyn Error>> {
    let ids = service
        .store()
        .devices_with_key_prefix(label.fingerprint.as_bytes(), 1)
        .await?;
    ids.first()
        .copied()
        .ok_or_else(|| "device not found".into())
}
