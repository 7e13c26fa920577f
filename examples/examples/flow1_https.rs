//! The main job over real HTTPS on loopback: a factory makes a device with a certificate from
//! the manufacturer CA, a shop's registrar registers its label to the owner's account over
//! mutual TLS with its own certificate, and the real device session (`zerotouch-device`)
//! provisions itself through the HTTPS server (`zerotouch-http`) in front of the setup
//! service (`zerotouch-server`) on the embedded SQLite store, then reports its outcome and
//! checks its server key. Each step is printed (the device's events as a list when its run
//! ends). Run:
//! `cargo run -p zerotouch-examples --example flow1_https`

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant as Clock, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::*;
use zerotouch_device::*;
use zerotouch_http::*;
use zerotouch_pki::{CertificateAuthority, ClientRole, Validity};
use zerotouch_server::*;
use zerotouch_store::*;

const SERVER_NAME: &str = "setup.example.test";

fn main() -> Result<(), Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn wall_clock() -> Instant {
    Instant(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// The device's radio: the owner's network and a neighbour's are in range.
struct Air {
    networks: Vec<(ReportedNetwork, &'static [u8])>,
}

impl Radio for Air {
    async fn scan(&mut self) -> Vec<ReportedNetwork> {
        println!(
            "device         scans: {} networks in range",
            self.networks.len()
        );
        self.networks.iter().map(|(n, _)| n.clone()).collect()
    }

    async fn join(&mut self, ssid: &[u8], _security: u8, passphrase: &Passphrase) -> JoinResult {
        let ok = self
            .networks
            .iter()
            .any(|(n, p)| n.ssid == ssid && *p == passphrase.expose_secret());
        println!(
            "device         joins {:?}: {}",
            String::from_utf8_lossy(ssid),
            if ok {
                "associated, DHCP lease"
            } else {
                "refused"
            }
        );
        if ok {
            JoinResult::Joined
        } else {
            JoinResult::Failed(JoinFailure::WrongPassphrase)
        }
    }

    async fn leave(&mut self) {}
}

async fn run() -> Result<(), Box<dyn Error>> {
    let started = Clock::now();
    let mut rng = ChaCha20Rng::from_seed({
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("system RNG: {e}"))?;
        seed
    });
    let now = wall_clock();

    // PKI: a manufacturer CA, a registrar CA and a server certificate.
    let manufacturer = CertificateAuthority::new(
        "Acme devices",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(20),
    )?;
    let registrars = CertificateAuthority::new(
        "Acme registrars",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(5),
    )?;
    let server_ca = CertificateAuthority::new(
        "Acme servers",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(5),
    )?;
    let server_cert = server_ca.issue_server(&[SERVER_NAME], Validity::years_from_now(1))?;
    let shop_cert = registrars.issue_client(
        ClientRole::Registrar,
        "shop scanner",
        Validity::years_from_now(1),
    )?;
    println!(
        "pki            manufacturer, registrar and server CAs; server and registrar certificates"
    );

    // Server keys (firmware pins them) and the embedded store.
    let mut ring = ServerKeyRing::new();
    let mut pinned = Vec::new();
    let dir = tempfile::tempdir()?;
    let metrics = ServiceMetrics::default();
    let store = MeasuredStore::new(
        SqliteStore::open(
            dir.path().join("zerotouch.db"),
            &LocalKeyFile::new(dir.path().join("data.key")),
            SqliteOptions::default(),
        )
        .await?,
        metrics.clone(),
    );
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
    println!(
        "server         embedded store at {}",
        dir.path().join("zerotouch.db").display()
    );

    // Factory: the device's key (a secure element exports only the public half), its
    // never-expiring certificate, its PIN and its box label.
    let identity = Arc::new(SoftwareSigner::new(SigningKey::generate(
        SignatureAlgorithm::EcdsaP256Sha256,
        &mut rng,
    )?));
    let device_cert = manufacturer.issue_device(identity.public_key(), 7, 1001)?;
    let pin = Pin::generate(&mut rng, 6)?;
    store
        .import_devices(vec![DeviceRecord {
            key_id: identity.key_id(),
            identity: DeviceIdentity::Certificate(device_cert.clone()),
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
    println!(
        "factory        device 7-1001 with a certificate and the label {}",
        label.encode()
    );

    // The owner's account and home network; the shop's registrar.
    let account = store.create_account("owner", now).await?;
    store
        .add_network(
            NewNetwork {
                account,
                ssid: b"home".to_vec(),
                passphrase: Passphrase::new(b"correct horse battery staple")?,
                security: SecurityType::Wpa3Personal,
                bands: Bands::GHZ_2_4.union(Bands::GHZ_5),
            },
            now,
        )
        .await?;
    let shop_key = DeviceCertificate::from_der(shop_cert.certificate_der())?.key_id();
    store
        .add_registrar(
            "shop scanner",
            RegistrarCredential::Certificate(shop_key),
            now,
        )
        .await?;

    // The HTTPS server on loopback.
    let service =
        Arc::new(SetupService::new(store, ring, ServiceConfig::default()).with_metrics(metrics));
    let server = serve(
        HttpConfig {
            listen: "127.0.0.1:0".parse()?,
            ops_listen: Some("127.0.0.1:0".parse()?),
            certificate_chain: server_cert.chain(),
            private_key: server_cert.private_key(),
            device_cas: vec![manufacturer.certificate_der().to_vec().into()],
            registrar_cas: vec![registrars.certificate_der().to_vec().into()],
            provisioner_cas: vec![],
            operator_token_sha256: None,
            limits: Limits::default(),
        },
        Arc::clone(&service),
    )
    .await?;
    let endpoint = ServerEndpoint::new(server.local_addr(), SERVER_NAME);
    println!(
        "server         https://{SERVER_NAME} on {} (metrics on http://{}/metrics)",
        server.local_addr(),
        server.ops_addr().map_or("-".to_string(), |a| a.to_string())
    );
    let server_trust = ServerTrust::Ca {
        ca_der: server_ca.certificate_der().to_vec(),
        check_dates: true,
    };

    // The shop scans the label into the owner's account over mutual TLS.
    let mut shop = RegistrarClient::new(
        endpoint.clone(),
        client_tls_config(
            Some((shop_cert.chain(), shop_cert.private_key())),
            server_trust,
        )?,
        None,
    );
    let registered = shop
        .register(&RegistrationRequest {
            label: label.encode(),
            account: account.0,
            pin: None,
            owner_consent: None,
        })
        .await?;
    println!(
        "registrar      label registered to account {}: {:?}",
        account.0, registered.result
    );

    // The device: first boot, mutual TLS with its certificate, the server checked against
    // its CA without a clock.
    let device_started = Clock::now();
    let tls = device_tls_config(
        device_cert.clone(),
        Arc::clone(&identity),
        ServerTrust::Ca {
            ca_der: server_ca.certificate_der().to_vec(),
            check_dates: false,
        },
    )?;
    let mut exchange = DirectHttps::new(endpoint.clone(), endpoint, tls);
    let mut session = DeviceSession::new(
        DeviceConfig {
            transport: Transport::Https,
            home_transport: Transport::Https,
            identity: DeviceIdentityRef::Certificate(device_cert),
            pin: Some(pin),
            radio_bands: 1,
            radio_security: 3,
            suites: CipherSuite::SUPPORTED.to_vec(),
            retry: RetryPolicy::default(),
        },
        PinnedKeys::new(pinned),
        Arc::clone(&identity),
        MemoryDeviceState::new(),
    )?;
    let mut air = Air {
        networks: vec![
            (
                ReportedNetwork {
                    ssid: b"home".to_vec(),
                    signal_loss_db: 48,
                    band: 1,
                    channel: 6,
                    security: 2,
                },
                b"correct horse battery staple",
            ),
            (
                ReportedNetwork {
                    ssid: b"neighbours".to_vec(),
                    signal_loss_db: 70,
                    band: 1,
                    channel: 1,
                    security: 1,
                },
                b"not ours",
            ),
        ],
    };
    let mut device_rng = ChaCha20Rng::from_rng(&mut rng);
    let run = drive(
        &mut session,
        Trigger::FirstBoot,
        &mut exchange,
        &mut air,
        &mut device_rng,
        Duration::from_secs(60),
    )
    .await?;
    for event in &run.events {
        // `Event`'s Debug output redacts the passphrase.
        println!("device         {event:?}");
    }
    let outcomes = service
        .store()
        .outcomes_of_device(&identity.key_id())
        .await?;
    println!(
        "server         outcome recorded: {:?}",
        outcomes.iter().map(|o| o.kind).collect::<Vec<_>>()
    );
    server.shutdown().await;
    let joined = run.joined.ok_or("the device did not join")?;
    println!(
        "done           the device joined {:?} after {} HTTPS exchanges in {:?} ({:?} in all)",
        String::from_utf8_lossy(&joined),
        run.exchanges,
        device_started.elapsed(),
        started.elapsed()
    );
    Ok(())
}
