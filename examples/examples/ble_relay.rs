//! Flow 1 over BLE through a provisioner relay, on simulated adapters: a new device advertises
//! the provisioning service as a BLE peripheral (`hci0`); the router's relay, a BLE central
//! (`hci1`), connects, admits it to the setup network's engine and forwards each of its
//! messages unchanged to the server's relay endpoint over HTTPS with the provisioner's
//! certificate; the server (setup service on the embedded SQLite store) authenticates the
//! device by its key proof. Each step is printed.
//!
//! The adapters are BlueZoo's (BlueZ's D-Bus API without a radio) on a private D-Bus; the
//! example starts them and runs itself again as the process that talks to them. Needs
//! `dbus-daemon` and `pip install bluezoo` (`bash scripts/system-deps.sh` installs both). Run:
//! `cargo run -p zerotouch-examples --example ble_relay [MTU]` (MTU 23 by default).

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant as Clock, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_ble::bluez::bluezoo::{Bluezoo, CENTRAL_ADAPTER, PERIPHERAL_ADAPTER};
use zerotouch_ble::bluez::{BleCentral, BlePeripheral};
use zerotouch_ble::relay::ProvisionerRelay;
use zerotouch_ble::{BleChannel, LinkConfig, MAX_MESSAGE_LEN, PROFILE_VERSION, ServiceInfo};
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::*;
use zerotouch_device::*;
use zerotouch_http::*;
use zerotouch_pki::{CertificateAuthority, ClientRole, Validity};
use zerotouch_provisioner::{ClientMac, NetworkMode, SetupNetwork, SetupNetworkPolicy};
use zerotouch_server::*;
use zerotouch_store::*;

const SERVER_NAME: &str = "setup.example.test";
const HOME_PASSPHRASE: &[u8] = b"correct horse battery staple";

fn main() -> ExitCode {
    let result = match Bluezoo::mtu_from_env() {
        // The child: the simulator is up and its bus is in the environment.
        Some(mtu) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(run(mtu))),
        None => simulate(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ble_relay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts BlueZoo at the MTU asked and runs this example again against it.
fn simulate() -> Result<(), Box<dyn Error>> {
    let mtu = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|_| format!("not an MTU: {arg}"))?,
        None => 23,
    };
    let simulator = Bluezoo::start(mtu)?;
    println!(
        "bluezoo        {} on a private D-Bus: adapters {PERIPHERAL_ADAPTER} and {CENTRAL_ADAPTER}, ATT MTU {mtu}",
        simulator.version()
    );
    let status = simulator.run(
        Command::new(std::env::current_exe()?),
        Duration::from_secs(120),
    )?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the provisioning run failed ({status})").into())
    }
}

fn wall_clock() -> Instant {
    Instant(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// The device's radio: the owner's network is in range.
struct Air;

impl Radio for Air {
    async fn scan(&mut self) -> Vec<ReportedNetwork> {
        vec![ReportedNetwork {
            ssid: b"home".to_vec(),
            signal_loss_db: 48,
            band: 1,
            channel: 6,
            security: 2,
        }]
    }

    async fn join(&mut self, ssid: &[u8], _security: u8, passphrase: &Passphrase) -> JoinResult {
        if ssid == b"home" && passphrase.expose_secret() == HOME_PASSPHRASE {
            JoinResult::Joined
        } else {
            JoinResult::Failed(JoinFailure::WrongPassphrase)
        }
    }

    async fn leave(&mut self) {}
}

async fn run(mtu: u16) -> Result<(), Box<dyn Error>> {
    let started = Clock::now();
    let mut rng = ChaCha20Rng::from_seed({
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("system RNG: {e}"))?;
        seed
    });
    let now = wall_clock();

    // PKI: a server CA and certificate, a provisioner CA and the router's certificate.
    let ca = |name| {
        CertificateAuthority::new(
            name,
            SignatureAlgorithm::EcdsaP256Sha256,
            Validity::years_from_now(5),
        )
    };
    let server_ca = ca("Acme servers")?;
    let provisioners = ca("Acme routers")?;
    let server_cert = server_ca.issue_server(&[SERVER_NAME], Validity::years_from_now(1))?;
    let router_cert = provisioners.issue_client(
        ClientRole::Provisioner,
        "living-room router",
        Validity::years_from_now(1),
    )?;

    // Server keys (firmware pins them), the embedded store, the device and its owner.
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(
        dir.path().join("zerotouch.db"),
        &LocalKeyFile::new(dir.path().join("data.key")),
        SqliteOptions::default(),
    )
    .await?;
    let mut ring = ServerKeyRing::new();
    let mut pinned = Vec::new();
    for role in [KeyRole::SetupSigning, KeyRole::RevocationVerdict] {
        let key = SoftwareSigner::new(SigningKey::generate(
            SignatureAlgorithm::EcdsaP256Sha256,
            &mut rng,
        )?);
        pinned.push(PinnedKey::new(role, key.public_key().clone()));
        store
            .add_server_key(role, key.public_key().clone(), now)
            .await?;
        ring.add(role, key)?;
    }
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
            product_number: "BULB01".into(),
            pin: Some(PinRecord::new(&pin, DEFAULT_PIN_ITERATIONS)?),
            device_secret: None,
            blocked: false,
            created_at: now,
        }])
        .await?;
    let account = store.create_account("owner", now).await?;
    store
        .add_network(
            NewNetwork {
                account,
                ssid: b"home".to_vec(),
                passphrase: Passphrase::new(HOME_PASSPHRASE)?,
                security: SecurityType::Wpa3Personal,
                bands: Bands::GHZ_2_4,
            },
            now,
        )
        .await?;
    let shop = store
        .add_registrar("shop", RegistrarCredential::ApiTokenHash([9; 32]), now)
        .await?;
    let service = SetupService::new(store, ring, ServiceConfig::default());
    let label = BarcodePayload {
        fingerprint: KeyFingerprint::of(&identity.key_id(), 16)?,
        device_type: 7,
        product_number: "BULB01".into(),
        pin: None,
    };
    service
        .register_device(shop, &label, account, ReassociationProof::None, now)
        .await?;
    println!(
        "server         device 7-1001 registered to account {}",
        account.0
    );

    let server = serve(
        HttpConfig {
            listen: "127.0.0.1:0".parse()?,
            ops_listen: None,
            certificate_chain: server_cert.chain(),
            private_key: server_cert.private_key(),
            device_cas: vec![],
            registrar_cas: vec![],
            provisioner_cas: vec![provisioners.certificate_der().to_vec().into()],
            operator_token_sha256: None,
            limits: Limits::default(),
        },
        Arc::new(service),
    )
    .await?;
    println!(
        "server         https://{SERVER_NAME}/v1/relay/ble on {}",
        server.local_addr()
    );

    // The router: its setup network's engine and the relay with its certificate.
    let router_ip = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
    let policy = SetupNetworkPolicy::with_defaults(
        router_ip,
        (router_ip, 24),
        vec![server.local_addr().ip()],
    );
    let network = SetupNetwork::new(policy, NetworkMode::AlwaysOpen, Instant(0))?;
    let relay = ProvisionerRelay::new(
        ServerEndpoint::new(server.local_addr(), SERVER_NAME),
        client_tls_config(
            Some((router_cert.chain(), router_cert.private_key())),
            ServerTrust::Ca {
                ca_der: server_ca.certificate_der().to_vec(),
                check_dates: true,
            },
        )?,
        network,
    )?;

    // The device: advertises the provisioning service and waits for a provisioner.
    let peripheral = BlePeripheral::start(
        Some(PERIPHERAL_ADAPTER),
        "zerotouch BULB01",
        ServiceInfo {
            version: PROFILE_VERSION,
            max_message_len: MAX_MESSAGE_LEN as u16,
            instance: rand_core::Rng::next_u32(&mut rng),
        },
    )
    .await?;
    println!("device         advertising the provisioning service on {PERIPHERAL_ADAPTER}");
    let mut session = DeviceSession::new(
        DeviceConfig {
            transport: Transport::Ble,
            home_transport: Transport::Ble,
            identity: DeviceIdentityRef::PublicKey(identity.public_key().to_spki_der()),
            pin: Some(pin),
            radio_bands: 1,
            radio_security: 3,
            suites: CipherSuite::SUPPORTED.to_vec(),
            retry: RetryPolicy::default(),
        },
        PinnedKeys::new(pinned),
        identity,
        MemoryDeviceState::new(),
    )?;
    let mut device_rng = ChaCha20Rng::from_rng(&mut rng);
    let device = tokio::spawn(async move {
        let bearer = peripheral.accept().await?;
        println!("device         a provisioner subscribed; running flow 1");
        let mut channel = BleChannel::new(bearer, LinkConfig::default());
        let run = zerotouch_device_tokio::drive(
            &mut session,
            Trigger::FirstBoot,
            &mut channel,
            &mut Air,
            &mut device_rng,
            Duration::from_secs(60),
        )
        .await
        .map_err(|e| e.to_string())?;
        let stats = channel.stats();
        Ok::<_, Box<dyn Error + Send + Sync>>((run, stats))
    });

    // The relay: finds the device, admits it, forwards its messages.
    let bearer = BleCentral::connect(Some(CENTRAL_ADAPTER), Duration::from_secs(30)).await?;
    let device_mac = ClientMac(bearer.device().address().0);
    println!(
        "relay          connected to {} on {CENTRAL_ADAPTER} (ATT MTU {}, profile version {})",
        bearer.device().address(),
        zerotouch_ble::GattBearer::mtu(&bearer),
        bearer.info().version
    );
    relay.admit(device_mac)?;
    println!("relay          admitted to the setup network; forwarding over HTTPS");
    let mut channel = BleChannel::new(bearer, LinkConfig::default());
    let relaying = async { relay.relay(device_mac, &mut channel).await };
    let (run, stats) = tokio::select! {
        done = device => done.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?,
        summary = relaying => return Err(format!("the relay stopped first: {:?}", summary.end).into()),
    };
    for event in &run.events {
        // `Event`'s Debug output redacts the passphrase.
        println!("device         {event:?}");
    }
    println!(
        "device         sent {} messages in {} segments ({} bytes of attribute values) at MTU {mtu}",
        stats.messages_sent, stats.segments_sent, stats.segment_bytes_sent
    );
    server.shutdown().await;
    let joined = run.joined.ok_or("the device did not join")?;
    println!(
        "done           the device joined {:?} over BLE through the relay in {:?}; nobody typed anything",
        String::from_utf8_lossy(&joined),
        started.elapsed()
    );
    Ok(())
}
