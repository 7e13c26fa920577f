//! Flow 2 on loopback: an already-joined sponsor hands the home credential to a new joiner.
//! The association server runs behind the HTTPS server (`zerotouch-http`, mutual TLS: the
//! sponsor presents its manufacturer-CA device certificate) on the embedded SQLite store; the
//! sponsor and the joiner (`zerotouch-peer`) talk over a local TCP connection carrying the
//! Noise-encrypted channel. Each step is printed as it happens. Run:
//! `cargo run -p zerotouch-examples --example flow2_handoff`

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant as Clock, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zerotouch_core::flow2::HomeCredential;
use zerotouch_core::*;
use zerotouch_http::*;
use zerotouch_peer::*;
use zerotouch_pki::{CertificateAuthority, Validity};
use zerotouch_server::*;
use zerotouch_store::*;

const SERVER_NAME: &str = "association.example.test";
const HOME_PASSPHRASE: &[u8] = b"correct horse battery staple";

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

/// A device's monotonic clock: milliseconds since the example started.
fn device_clock(started: Clock) -> Instant {
    Instant(started.elapsed().as_millis() as u64)
}

fn seeded() -> Result<ChaCha20Rng, Box<dyn Error>> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("system RNG: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

async fn run() -> Result<(), Box<dyn Error>> {
    let started = Clock::now();
    let mut rng = seeded()?;
    let now = wall_clock();

    // PKI: the manufacturer CA signs device certificates; a server CA and certificate.
    let manufacturer = CertificateAuthority::new(
        "Acme devices",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(20),
    )?;
    let server_ca = CertificateAuthority::new(
        "Acme servers",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(5),
    )?;
    let server_cert = server_ca.issue_server(&[SERVER_NAME], Validity::years_from_now(1))?;

    // The association key (firmware pins it) and the embedded store.
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(
        dir.path().join("zerotouch.db"),
        &LocalKeyFile::new(dir.path().join("data.key")),
        SqliteOptions::default(),
    )
    .await?;
    let association_key = SoftwareSigner::new(SigningKey::generate(
        SignatureAlgorithm::EcdsaP256Sha256,
        &mut rng,
    )?);
    let pinned = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        association_key.public_key().clone(),
    )]);
    store
        .add_server_key(
            KeyRole::Association,
            association_key.public_key().clone(),
            now,
        )
        .await?;
    let mut ring = ServerKeyRing::new();
    ring.add(KeyRole::Association, association_key)?;
    println!(
        "server         association key made; embedded store at {}",
        dir.path().display()
    );

    // Factory: two devices with certificates; the joiner also gets a device secret, which the
    // server learns from the factory (never over the air).
    let sponsor_identity = Arc::new(SoftwareSigner::new(SigningKey::generate(
        SignatureAlgorithm::EcdsaP256Sha256,
        &mut rng,
    )?));
    let joiner_identity = SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, &mut rng)?;
    let sponsor_cert = manufacturer.issue_device(sponsor_identity.public_key(), 7, 1001)?;
    let joiner_cert = manufacturer.issue_device(&joiner_identity.public_key(), 7, 1002)?;
    let joiner_secret = DeviceSecret::generate(&mut rng);
    let joiner_id = joiner_identity.public_key().key_id();
    let record = |key_id, cert: &Vec<u8>, serial, secret: Option<DeviceSecret>| DeviceRecord {
        key_id,
        identity: DeviceIdentity::Certificate(cert.clone()),
        device_type: 7,
        serial,
        product_number: "SPEAKER01".into(),
        pin: None,
        device_secret: secret,
        blocked: false,
        created_at: now,
    };
    store
        .import_devices(vec![
            record(sponsor_identity.key_id(), &sponsor_cert, 1001, None),
            record(joiner_id, &joiner_cert, 1002, Some(joiner_secret.clone())),
        ])
        .await?;
    println!("factory        sponsor 7-1001 and joiner 7-1002, the joiner with a device secret");

    // Both devices belong to the owner's account (as a registrar's scans would record).
    let account = store.create_account("owner", now).await?;
    let registrar = store
        .add_registrar("shop", RegistrarCredential::ApiTokenHash([7; 32]), now)
        .await?;
    for device in [sponsor_identity.key_id(), joiner_id] {
        store
            .apply_association_change(AssociationChange {
                action: AssociationAction::Add,
                device,
                account,
                registrar,
                label: None,
                at: now,
            })
            .await?;
    }
    println!("registrar      both devices on account {}", account.0);

    // The HTTPS server on loopback: the setup service and, beside it, the association service.
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

    // The sponsor: on the home network, listening on a local TCP port.
    let home = HomeCredential {
        ssid: b"home".to_vec(),
        security: 2,
        passphrase: Passphrase::new(HOME_PASSPHRASE)?,
    };
    let sponsor = Sponsor::new(
        SponsorConfig::new(home, pinned.clone()),
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
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    println!("sponsor        listening for joiners on {local}");
    let sponsor_task = tokio::spawn(run_sponsor(listener, sponsor, client, started));

    // The joiner: fresh out of the box, it finds the sponsor and connects.
    let joiner = Joiner::new(
        JoinerConfig::new(joiner_id, joiner_secret, pinned),
        MemoryPeerState::new(),
    )?;
    let stream = TcpStream::connect(local).await?;
    println!("joiner         connected to the sponsor at {local}");
    let joined = run_joiner(stream, joiner, started)
        .await
        .map_err(|e| e.to_string())?;
    let handed_over = sponsor_task.await?.map_err(|e| e.to_string())?;
    server.shutdown().await;

    match joined {
        Some((ssid, passphrase)) if handed_over && passphrase == HOME_PASSPHRASE => {
            println!(
                "done: the joiner got {:?} from the sponsor in {} ms; nobody typed anything",
                String::from_utf8_lossy(&ssid),
                started.elapsed().as_millis()
            );
            Ok(())
        }
        _ => Err("the handoff did not complete".into()),
    }
}

/// Drives the joiner over its stream until it joins or fails.
async fn run_joiner(
    mut stream: TcpStream,
    mut joiner: Joiner<MemoryPeerState>,
    started: Clock,
) -> Result<Option<(Vec<u8>, Vec<u8>)>, Box<dyn Error + Send + Sync>> {
    let mut rng = seeded().map_err(|e| e.to_string())?;
    joiner.start(device_clock(started), &mut rng);
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(bytes) = joiner.poll_transmit() {
            stream.write_all(&bytes).await?;
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
                    return Ok(Some((ssid, passphrase.expose_secret().to_vec())));
                }
                JoinerEvent::ChannelOpen { binding } => {
                    println!("joiner         Noise channel open, binding {binding:?}")
                }
                JoinerEvent::Challenged { sponsor_id } => println!(
                    "joiner         challenge signed by the association server for sponsor {sponsor_id:?}, binding is ours: answered"
                ),
                JoinerEvent::Failed { reason } => {
                    println!("joiner         failed: {reason:?}");
                    return Ok(None);
                }
                other => println!("joiner         {other:?}"),
            }
        }
        let wait = joiner.poll_timeout().map_or(Duration::from_secs(60), |t| {
            Duration::from_millis(t.0.saturating_sub(device_clock(started).0))
        });
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return Ok(None),
            Ok(Ok(n)) => {
                joiner.receive(device_clock(started), buf.get(..n).unwrap_or(&[]), &mut rng)
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => joiner.handle_timeout(device_clock(started)),
        }
    }
}

/// Accepts one joiner and drives the sponsor until it hands over or fails.
async fn run_sponsor(
    listener: TcpListener,
    mut sponsor: Sponsor<Arc<SoftwareSigner>, MemoryPeerState>,
    mut client: AssociationClient,
    started: Clock,
) -> Result<bool, Box<dyn Error + Send + Sync>> {
    let mut rng = seeded().map_err(|e| e.to_string())?;
    let (mut stream, peer) = listener.accept().await?;
    println!("sponsor        joiner connected from {peer}");
    sponsor.accept(device_clock(started), &mut rng);
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(t) = sponsor.poll_transmit() {
            match t.destination {
                Destination::Joiner => stream.write_all(&t.bytes).await?,
                Destination::AssociationServer => {
                    println!(
                        "sponsor        verification request ({} B, signed, commitment not credential) → association server over mutual TLS",
                        t.bytes.len()
                    );
                    match client.verify(t.bytes).await {
                        Ok(answer) => {
                            println!("association    answered ({} B)", answer.len());
                            sponsor.receive_server(device_clock(started), &answer, &mut rng);
                        }
                        Err(e) => println!("sponsor        server unreachable: {e}"),
                    }
                }
            }
        }
        while let Some(event) = sponsor.poll_event() {
            match event {
                SponsorEvent::HandedOver { joiner_id } => {
                    // Flush the handover before returning.
                    while let Some(t) = sponsor.poll_transmit() {
                        stream.write_all(&t.bytes).await?;
                    }
                    println!(
                        "sponsor        answer matches: credential handed to {joiner_id:?} inside the channel"
                    );
                    return Ok(true);
                }
                SponsorEvent::JoinerVouchedFor { joiner_id } => println!(
                    "sponsor        both signatures check, expected answer opened; challenge forwarded to {joiner_id:?}"
                ),
                SponsorEvent::Failed { reason } => {
                    while let Some(t) = sponsor.poll_transmit() {
                        stream.write_all(&t.bytes).await?;
                    }
                    println!("sponsor        failed: {reason:?}");
                    return Ok(false);
                }
                other => println!("sponsor        {other:?}"),
            }
        }
        let wait = sponsor.poll_timeout().map_or(Duration::from_secs(60), |t| {
            Duration::from_millis(t.0.saturating_sub(device_clock(started).0))
        });
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return Ok(false),
            Ok(Ok(n)) => {
                sponsor.receive_local(device_clock(started), buf.get(..n).unwrap_or(&[]), &mut rng)
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => sponsor.handle_timeout(device_clock(started), &mut rng),
        }
    }
}
