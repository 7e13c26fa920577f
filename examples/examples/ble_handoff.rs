//! Flow 2 over Bluetooth LE: a new joiner serves the provisioning GATT service (BlueZ
//! peripheral on `hci0`), an already-joined sponsor connects to it as the central (`hci1`) and
//! hands it the home credential, after asking the association server behind HTTPS (mutual TLS,
//! embedded SQLite store) to vouch for it. Every flow-2 frame crosses GATT in segments of at
//! most MTU - 3 bytes.
//!
//! There is no Bluetooth here: the example starts BlueZoo, BlueZ's D-Bus API simulated with
//! two adapters, on a private D-Bus (`zerotouch_ble::bluez::bluezoo`; needs `dbus-daemon` and
//! `pip install bluezoo`, see scripts/system-deps.sh), then runs itself again with
//! `DBUS_SYSTEM_BUS_ADDRESS` pointing there. Run:
//! `cargo run -p zerotouch-examples --example ble_handoff [MTU]` (MTU 23 by default).

use std::error::Error;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant as Clock, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_ble::bluez::bluezoo::{Bluezoo, CENTRAL_ADAPTER, PERIPHERAL_ADAPTER};
use zerotouch_ble::bluez::{BleCentral, BlePeripheral, CentralBearer, PeripheralBearer};
use zerotouch_ble::{BleChannel, GattBearer, LinkConfig, MAX_MESSAGE_LEN, PROFILE_VERSION};
use zerotouch_ble::{ServiceInfo, segment_capacity};
use zerotouch_core::flow2::HomeCredential;
use zerotouch_core::*;
use zerotouch_http::*;
use zerotouch_peer::*;
use zerotouch_pki::{CertificateAuthority, Validity};
use zerotouch_server::*;
use zerotouch_store::*;

const SERVER_NAME: &str = "association.example.test";
const HOME_PASSPHRASE: &[u8] = b"correct horse battery staple";
/// The whole run, simulator start to handoff.
const DEADLINE: Duration = Duration::from_secs(90);

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    let outcome = match Bluezoo::mtu_from_env() {
        Some(mtu) => child(mtu),
        None => parent(),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ble_handoff: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the simulator and runs this program again on its bus.
fn parent() -> Result<ExitCode, BoxError> {
    let mtu = match std::env::args().nth(1) {
        Some(mtu) => mtu.parse()?,
        None => 23,
    };
    let simulator = Bluezoo::start(mtu)?;
    println!(
        "bluezoo        BlueZoo {} on {}: adapters {PERIPHERAL_ADAPTER} and {CENTRAL_ADAPTER}, ATT MTU {mtu}",
        simulator.version(),
        simulator.bus_address()
    );
    let status = simulator.run(Command::new(std::env::current_exe()?), DEADLINE)?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn child(mtu: u16) -> Result<ExitCode, BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let handed_over = rt.block_on(async {
        tokio::time::timeout(DEADLINE, handoff(mtu))
            .await
            .map_err(|_| "the handoff did not finish in time")?
    })?;
    Ok(if handed_over {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn wall_clock() -> Instant {
    Instant(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// A device's monotonic clock: milliseconds since the handoff started.
fn device_clock(started: Clock) -> Instant {
    Instant(started.elapsed().as_millis() as u64)
}

fn seeded() -> Result<ChaCha20Rng, BoxError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("system RNG: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// The association server, the two devices, and the handoff between them over GATT.
async fn handoff(mtu: u16) -> Result<bool, BoxError> {
    let started = Clock::now();
    let mut rng = seeded()?;
    let now = wall_clock();

    // A manufacturer CA for device certificates, a server CA and the server's certificate.
    let ca = |name| {
        CertificateAuthority::new(
            name,
            SignatureAlgorithm::EcdsaP256Sha256,
            Validity::years_from_now(20),
        )
    };
    let (manufacturer, server_ca) = (ca("Acme devices")?, ca("Acme servers")?);
    let server_cert = server_ca.issue_server(&[SERVER_NAME], Validity::years_from_now(1))?;

    // The association key (firmware pins it), the embedded store, two devices on one account.
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(
        dir.path().join("zerotouch.db"),
        &LocalKeyFile::new(dir.path().join("data.key")),
        SqliteOptions::default(),
    )
    .await?;
    let new_key = |rng: &mut ChaCha20Rng| {
        SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, rng).map(SoftwareSigner::new)
    };
    let association_key = new_key(&mut rng)?;
    let association_public = association_key.public_key().clone();
    let pinned = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        association_public.clone(),
    )]);
    store
        .add_server_key(KeyRole::Association, association_public, now)
        .await?;
    let mut ring = ServerKeyRing::new();
    ring.add(KeyRole::Association, association_key)?;

    // The factory: a certificate each; the joiner's device secret goes to the server only.
    let sponsor_identity = Arc::new(new_key(&mut rng)?);
    let joiner_identity = new_key(&mut rng)?;
    let joiner_id = joiner_identity.key_id();
    let sponsor_cert = manufacturer.issue_device(sponsor_identity.public_key(), 7, 2001)?;
    let joiner_cert = manufacturer.issue_device(joiner_identity.public_key(), 7, 2002)?;
    let joiner_secret = DeviceSecret::generate(&mut rng);
    let devices = [
        (sponsor_identity.key_id(), &sponsor_cert, 2001, None),
        (joiner_id, &joiner_cert, 2002, Some(joiner_secret.clone())),
    ];
    store
        .import_devices(
            devices
                .iter()
                .map(|(key_id, cert, serial, secret)| DeviceRecord {
                    key_id: *key_id,
                    identity: DeviceIdentity::Certificate(cert.to_vec()),
                    device_type: 7,
                    serial: *serial,
                    product_number: "LAMP01".into(),
                    pin: None,
                    device_secret: secret.clone(),
                    blocked: false,
                    created_at: now,
                })
                .collect(),
        )
        .await?;
    let account = store.create_account("owner", now).await?;
    let registrar = store
        .add_registrar("shop", RegistrarCredential::ApiTokenHash([7; 32]), now)
        .await?;
    for (device, ..) in devices {
        let change = AssociationChange {
            action: AssociationAction::Add,
            device,
            account,
            registrar,
            label: None,
            at: now,
        };
        store.apply_association_change(change).await?;
    }
    println!(
        "server         sponsor 7-2001 and joiner 7-2002 on account {}",
        account.0
    );

    let service = Arc::new(SetupService::new(store, ring, ServiceConfig::default()));
    let server = serve(
        HttpConfig {
            listen: "127.0.0.1:0".parse()?,
            ops_listen: None,
            certificate_chain: server_cert.chain(),
            private_key: server_cert.private_key(),
            device_cas: vec![manufacturer.certificate_der().to_vec().into()],
            registrar_cas: vec![],
            provisioner_cas: vec![],
            operator_token_sha256: None,
            limits: Limits::default(),
        },
        Arc::clone(&service),
    )
    .await?;
    println!(
        "server         https://{SERVER_NAME}{PEER_VERIFY_PATH} on {}",
        server.local_addr()
    );

    // The joiner: advertises the service and waits for a central.
    let info = ServiceInfo {
        version: PROFILE_VERSION,
        max_message_len: MAX_MESSAGE_LEN as u16,
        instance: rand_core::Rng::next_u32(&mut rng),
    };
    let peripheral =
        BlePeripheral::start(Some(PERIPHERAL_ADAPTER), "zerotouch-joiner", info).await?;
    println!("joiner         advertising the provisioning service on {PERIPHERAL_ADAPTER}");
    let joiner = Joiner::new(
        JoinerConfig::new(joiner_id, joiner_secret, pinned.clone()),
        MemoryPeerState::new(),
    )?;
    let joiner_task = tokio::spawn(async move {
        let bearer = peripheral.accept().await?;
        println!("joiner         a central subscribed to indications");
        run_joiner(
            BleChannel::new(bearer, LinkConfig::default()),
            joiner,
            started,
        )
        .await
    });

    // The sponsor: on the home network; finds the joiner over BLE.
    let home = HomeCredential {
        ssid: b"home".to_vec(),
        security: 2,
        passphrase: Passphrase::new(HOME_PASSPHRASE)?,
    };
    let sponsor = Sponsor::new(
        SponsorConfig::new(home, pinned),
        Arc::clone(&sponsor_identity),
        MemoryPeerState::new(),
    )?;
    let client = AssociationClient::new(
        ServerEndpoint::new(server.local_addr(), SERVER_NAME),
        device_tls_config(
            sponsor_cert,
            sponsor_identity,
            ServerTrust::Ca {
                ca_der: server_ca.certificate_der().to_vec(),
                check_dates: false,
            },
        )?,
    );
    let bearer = BleCentral::connect(Some(CENTRAL_ADAPTER), Duration::from_secs(30)).await?;
    println!(
        "sponsor        connected from {CENTRAL_ADAPTER}: {:?}, ATT MTU {}, segments of up to {} bytes",
        bearer.info(),
        bearer.mtu(),
        segment_capacity(bearer.mtu())?
    );
    if bearer.mtu() != mtu {
        return Err(format!(
            "the central sees MTU {}, BlueZoo reports {mtu}",
            bearer.mtu()
        )
        .into());
    }
    let sponsor_channel = BleChannel::new(bearer, LinkConfig::default());
    let (handed_over, sponsor_channel) =
        run_sponsor(sponsor_channel, sponsor, client, started).await?;
    let joined = joiner_task.await??;
    server.shutdown().await;

    let stats = sponsor_channel.stats();
    let bearer = sponsor_channel.bearer();
    println!(
        "gatt           sponsor wrote {} segments ({} bytes, largest {}), received {} indications (largest {})",
        stats.segments_sent,
        stats.segment_bytes_sent,
        bearer.largest_segment_written(),
        stats.segments_received,
        bearer.largest_segment_received()
    );
    match joined {
        Some(passphrase) if handed_over && passphrase == HOME_PASSPHRASE => {
            println!(
                "done: the joiner got the home credential over BLE in {} ms; nobody typed anything",
                started.elapsed().as_millis()
            );
            Ok(true)
        }
        _ => {
            println!("the handoff did not complete");
            Ok(false)
        }
    }
}

/// How long a flow-2 state machine may wait for the next message before its own timeout.
fn wait(deadline: Option<Instant>, started: Clock) -> Duration {
    deadline.map_or(Duration::from_secs(60), |t| {
        Duration::from_millis(t.0.saturating_sub(device_clock(started).0))
    })
}

/// Drives the joiner over its GATT channel until it joins (the passphrase) or fails.
async fn run_joiner(
    mut channel: BleChannel<PeripheralBearer>,
    mut joiner: Joiner<MemoryPeerState>,
    started: Clock,
) -> Result<Option<Vec<u8>>, BoxError> {
    let mut rng = seeded()?;
    joiner.start(device_clock(started), &mut rng);
    loop {
        while let Some(frame) = joiner.poll_transmit() {
            println!("joiner         → {} B indicated", frame.len());
            channel.send(frame).await?;
        }
        while let Some(event) = joiner.poll_event() {
            match event {
                JoinerEvent::Join {
                    ssid, passphrase, ..
                } => {
                    println!(
                        "joiner         credential matches the signed commitment: join {:?}",
                        String::from_utf8_lossy(&ssid)
                    );
                    return Ok(Some(passphrase.expose_secret().to_vec()));
                }
                JoinerEvent::Failed { reason } => {
                    println!("joiner         failed: {reason:?}");
                    return Ok(None);
                }
                other => println!("joiner         {other:?}"),
            }
        }
        match tokio::time::timeout(wait(joiner.poll_timeout(), started), channel.recv()).await {
            Ok(frame) => {
                let frame = frame?;
                println!("joiner         ← {} B written", frame.len());
                joiner.receive(device_clock(started), &frame, &mut rng);
            }
            Err(_) => joiner.handle_timeout(device_clock(started)),
        }
    }
}

/// Drives the sponsor over its GATT channel, asking the association server over HTTPS, until
/// it hands over or fails; gives the channel back for its counts.
async fn run_sponsor(
    mut channel: BleChannel<CentralBearer>,
    mut sponsor: Sponsor<Arc<SoftwareSigner>, MemoryPeerState>,
    mut client: AssociationClient,
    started: Clock,
) -> Result<(bool, BleChannel<CentralBearer>), BoxError> {
    let mut rng = seeded()?;
    sponsor.accept(device_clock(started), &mut rng);
    loop {
        while let Some(t) = sponsor.poll_transmit() {
            match t.destination {
                Destination::Joiner => {
                    println!("sponsor        → {} B written", t.bytes.len());
                    channel.send(t.bytes).await?;
                }
                Destination::AssociationServer => {
                    println!(
                        "sponsor        verification request ({} B) → association server over mutual TLS",
                        t.bytes.len()
                    );
                    let answer = client.verify(t.bytes).await?;
                    println!("association    answered ({} B)", answer.len());
                    sponsor.receive_server(device_clock(started), &answer, &mut rng);
                }
            }
        }
        while let Some(event) = sponsor.poll_event() {
            match event {
                SponsorEvent::HandedOver { joiner_id } => {
                    // The handover frame goes out before returning.
                    while let Some(t) = sponsor.poll_transmit() {
                        channel.send(t.bytes).await?;
                    }
                    println!(
                        "sponsor        credential handed to {joiner_id:?} inside the channel"
                    );
                    return Ok((true, channel));
                }
                SponsorEvent::Failed { reason } => {
                    println!("sponsor        failed: {reason:?}");
                    return Ok((false, channel));
                }
                other => println!("sponsor        {other:?}"),
            }
        }
        match tokio::time::timeout(wait(sponsor.poll_timeout(), started), channel.recv()).await {
            Ok(frame) => {
                let frame = frame?;
                println!("sponsor        ← {} B indicated", frame.len());
                sponsor.receive_local(device_clock(started), &frame, &mut rng);
            }
            Err(_) => sponsor.handle_timeout(device_clock(started), &mut rng),
        }
    }
}
