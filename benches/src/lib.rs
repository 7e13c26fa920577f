//! Benchmarks live in `benches/`; run them with `cargo bench -p zerotouch-benches`.
//!
//! This library holds what the `physical_limit` bench and the test of the operation table in
//! `docs/PROTOCOL.md` share: a fleet of devices with certificates, a setup service over any
//! store with those devices registered, and one whole flow-1 session (scan, hello, credential
//! request, join, outcome report, revocation check) driven through any carrier: the service
//! in process, or HTTPS. For the `dns_session` bench, [`dns_relay`] counts what a real
//! unbound on loopback (`zerotouch_dns::local_resolver`) sends the DNS server. For the
//! `server_processes` bench, [`procfs`] reads where the time went (CPU of processes, process
//! trees and the machine, disk flushes) and [`quantile`] gives session-time percentiles.

pub mod dns_relay;
pub mod procfs;

use std::future::Future;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::{
    BarcodePayload, CipherSuite, CryptoProvider, Instant, KeyFingerprint, KeyRole, Passphrase,
    PinnedKey, PinnedKeys, ServerKeyRing, SignatureAlgorithm, Signer, SigningKey, SoftwareSigner,
    Transport,
};
use zerotouch_device::{
    DeviceConfig, DeviceSession, Event, JoinResult, MemoryDeviceState, Path, RetryPolicy, Trigger,
};
use zerotouch_pki::{CertificateAuthority, IssuedCertificate, Validity};
use zerotouch_server::{ReassociationProof, ServiceConfig, SetupService, TransportIdentity};
use zerotouch_store::{
    Bands, DeviceIdentity, DeviceRecord, NewNetwork, RegistrarCredential, SecurityType, Store,
};

/// Any failure while setting up or running a benchmark.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The server's name in its certificate.
pub const SERVER_NAME: &str = "setup.bench.test";

/// The device type of every device in the fleet.
const DEVICE_TYPE: u32 = 7;

/// One device: its identity key and its certificate from the manufacturer CA.
#[derive(Debug, Clone)]
pub struct Kit {
    /// The identity key (signs the protocol's proofs and the TLS handshake).
    pub signer: Arc<SoftwareSigner>,
    /// Its DER certificate.
    pub certificate: Vec<u8>,
    /// Its serial number.
    pub serial: u64,
}

/// The PKI, the server keys the firmware pins, and the devices.
pub struct Fleet {
    /// The manufacturer CA that certified every device.
    pub manufacturer: CertificateAuthority,
    /// The CA of the server certificate.
    pub server_ca: CertificateAuthority,
    /// The server's TLS certificate for [`SERVER_NAME`].
    pub server_certificate: IssuedCertificate,
    /// The devices.
    pub devices: Vec<Kit>,
    /// The server keys' secrets (a fresh ring is made from them for each service).
    server_secrets: Vec<(KeyRole, [u8; 32])>,
}

impl Fleet {
    /// `count` devices with P-256 identity keys and certificates; P-256 server keys (one
    /// setup key, one revocation-verdict key). Deterministic from `seed`.
    pub fn new(count: usize, seed: u64) -> Result<Self, BenchError> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let manufacturer = CertificateAuthority::new(
            "Bench devices",
            SignatureAlgorithm::EcdsaP256Sha256,
            Validity::years_from_now(20),
        )?;
        let server_ca = CertificateAuthority::new(
            "Bench servers",
            SignatureAlgorithm::EcdsaP256Sha256,
            Validity::years_from_now(5),
        )?;
        let server_certificate =
            server_ca.issue_server(&[SERVER_NAME], Validity::years_from_now(1))?;
        let mut devices = Vec::with_capacity(count);
        for i in 0..count {
            let signer = Arc::new(SoftwareSigner::new(SigningKey::generate(
                SignatureAlgorithm::EcdsaP256Sha256,
                &mut rng,
            )?));
            let serial = 100_000 + u64::try_from(i)?;
            let certificate =
                manufacturer.issue_device(signer.public_key(), DEVICE_TYPE, serial)?;
            devices.push(Kit {
                signer,
                certificate,
                serial,
            });
        }
        let server_secrets = vec![
            (KeyRole::SetupSigning, [0xa1; 32]),
            (KeyRole::RevocationVerdict, [0xa3; 32]),
        ];
        Ok(Fleet {
            manufacturer,
            server_ca,
            server_certificate,
            devices,
            server_secrets,
        })
    }

    /// A fresh key ring of the server keys, and the keys a device pins.
    pub fn ring(&self) -> Result<(ServerKeyRing<SoftwareSigner>, PinnedKeys), BenchError> {
        let mut ring = ServerKeyRing::new();
        let mut pinned = Vec::new();
        for (role, secret) in &self.server_secrets {
            let key = SoftwareSigner::new(SigningKey::from_secret_bytes(
                SignatureAlgorithm::EcdsaP256Sha256,
                secret,
            )?);
            pinned.push(PinnedKey::new(*role, key.public_key().clone()));
            ring.add(*role, key)?;
        }
        Ok((ring, PinnedKeys::new(pinned)))
    }

    /// [`Self::ring`], with the server keys' public halves recorded in `store`.
    pub async fn stored_ring<St: Store>(
        &self,
        store: &St,
        now: Instant,
    ) -> Result<(ServerKeyRing<SoftwareSigner>, PinnedKeys), BenchError> {
        let (ring, pinned) = self.ring()?;
        for k in ring.keys() {
            store
                .add_server_key(k.role, k.signer.public_key().clone(), now)
                .await?;
        }
        Ok((ring, pinned))
    }

    /// A setup service over `store` with every device of the fleet imported (no PIN
    /// recorded) and registered by a registrar to one account, which has one home network.
    pub async fn service_on<St: Store>(
        &self,
        store: St,
        config: ServiceConfig,
        now: Instant,
    ) -> Result<SetupService<St, SoftwareSigner>, BenchError> {
        self.service_on_first(store, config, now, self.devices.len())
            .await
    }

    /// [`Self::service_on`] with only the first `count` devices imported and registered.
    pub async fn service_on_first<St: Store>(
        &self,
        store: St,
        config: ServiceConfig,
        now: Instant,
        count: usize,
    ) -> Result<SetupService<St, SoftwareSigner>, BenchError> {
        let devices = self.devices.get(..count).unwrap_or(&self.devices);
        let (ring, _) = self.stored_ring(&store, now).await?;
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
        let registrar = store
            .add_registrar("bench", RegistrarCredential::ApiTokenHash([7; 32]), now)
            .await?;
        let records = devices
            .iter()
            .map(|d| DeviceRecord {
                key_id: d.signer.key_id(),
                identity: DeviceIdentity::Certificate(d.certificate.clone()),
                device_type: DEVICE_TYPE,
                serial: d.serial,
                product_number: "BENCH01".into(),
                pin: None,
                device_secret: None,
                blocked: false,
                created_at: now,
            })
            .collect();
        store.import_devices(records).await?;
        let service = SetupService::new(store, ring, config);
        for d in devices {
            let label = BarcodePayload {
                fingerprint: KeyFingerprint::of(&d.signer.key_id(), 16)?,
                device_type: DEVICE_TYPE,
                product_number: "BENCH01".into(),
                pin: None,
            };
            service
                .register_device(registrar, &label, account, ReassociationProof::None, now)
                .await?;
        }
        Ok(service)
    }
}

/// The device session of `kit`: HTTPS on both networks, its certificate as identity, no PIN,
/// a dual-band WPA2/WPA3 radio, every suite this build has; every cryptographic operation
/// through `provider`.
pub fn device_session<P: CryptoProvider>(
    kit: &Kit,
    pinned: &PinnedKeys,
    provider: P,
) -> Result<DeviceSession<Arc<SoftwareSigner>, MemoryDeviceState, P>, BenchError> {
    let config = DeviceConfig {
        transport: Transport::Https,
        home_transport: Transport::Https,
        identity: DeviceIdentityRef::Certificate(kit.certificate.clone()),
        pin: None,
        radio_bands: 3,
        radio_security: 3,
        suites: device_suites(),
        retry: RetryPolicy::default(),
    };
    Ok(DeviceSession::with_provider(
        config,
        pinned.clone(),
        Arc::clone(&kit.signer),
        MemoryDeviceState::new(),
        provider,
    )?)
}

/// The suites the bench's devices offer, in their order.
pub fn device_suites() -> Vec<CipherSuite> {
    CipherSuite::SUPPORTED.to_vec()
}

/// What the device's radio sees: the owner's network and two others.
pub fn scan() -> Vec<ReportedNetwork> {
    let seen = |ssid: &[u8], loss, band, channel, security| ReportedNetwork {
        ssid: ssid.to_vec(),
        signal_loss_db: loss,
        band,
        channel,
        security,
    };
    vec![
        seen(b"home", 45, 2, 36, 2),
        seen(b"cafe", 60, 1, 6, 1),
        seen(b"neighbour", 70, 1, 11, 3),
    ]
}

/// Carries one device message to the server and brings back its answer.
pub trait Carrier {
    /// The answer to `message`, sent over `path`.
    fn carry(
        &mut self,
        path: Path,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, BenchError>>;
}

/// The setup service itself, called in process: no transport at all.
pub struct InProcess<'a, St, S> {
    /// The service.
    pub service: &'a SetupService<St, S>,
    /// The server's RNG.
    pub rng: &'a mut ChaCha20Rng,
    /// The server's clock.
    pub now: Instant,
}

impl<St: Store, S: Signer> Carrier for InProcess<'_, St, S> {
    async fn carry(&mut self, _path: Path, message: Vec<u8>) -> Result<Vec<u8>, BenchError> {
        let from = TransportIdentity::Direct {
            transport: Transport::Https,
            client_key: None,
        };
        Ok(self
            .service
            .handle(&message, &from, self.now, self.rng)
            .await)
    }
}

/// Runs one whole flow-1 session of `device` through `carrier` at the fixed time `now` (no
/// timer fires on the happy path): scan, hello, credential request, join, outcome report and
/// acknowledgement, revocation check. Fails if it ends any other way.
pub async fn run_session<S: Signer, P: CryptoProvider, C: Carrier>(
    device: &mut DeviceSession<S, MemoryDeviceState, P>,
    carrier: &mut C,
    now: Instant,
    rng: &mut ChaCha20Rng,
) -> Result<(), BenchError> {
    device.start(now, Trigger::FirstBoot);
    for _ in 0..64 {
        let mut moved = false;
        while let Some(event) = device.poll_event() {
            moved = true;
            match event {
                Event::ScanRequested => device.scan_complete(now, scan(), rng),
                Event::Join { .. } => device.join_result(now, JoinResult::Joined, rng),
                Event::Complete {
                    revocation_checked: true,
                } => return Ok(()),
                Event::Complete { .. }
                | Event::GaveUp { .. }
                | Event::SessionFailed { .. }
                | Event::MessageRefused { .. }
                | Event::ServerHint { .. } => {
                    return Err(format!("session went wrong: {event:?}").into());
                }
                _ => {}
            }
        }
        while let Some(t) = device.poll_transmit() {
            moved = true;
            let answer = carrier.carry(t.path, t.bytes).await?;
            device.handle_incoming(now, t.path, &answer, rng);
        }
        if !moved {
            return Err("the session stopped without completing".into());
        }
    }
    Err("the session did not complete".into())
}

/// One whole session of `kit`'s device (its cryptography through `provider`) against
/// `service` in process, at `now`: the server draws from `server_rng`, the device from
/// `device_rng`.
pub async fn in_process_session<St: Store, S: Signer, P: CryptoProvider>(
    service: &SetupService<St, S>,
    kit: &Kit,
    pinned: &PinnedKeys,
    provider: P,
    now: Instant,
    server_rng: &mut ChaCha20Rng,
    device_rng: &mut ChaCha20Rng,
) -> Result<(), BenchError> {
    let mut device = device_session(kit, pinned, provider)?;
    run_session(
        &mut device,
        &mut InProcess {
            service,
            rng: server_rng,
            now,
        },
        now,
        device_rng,
    )
    .await
}

/// Microseconds per call of `f`, over `iters` calls after `iters / 10` warm-up calls.
pub fn time_per_op(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let start = std::time::Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
}

/// The `q` quantile (0 to 1) of `values` by nearest rank: the smallest value with at least
/// `q` of them at or below it (NaN for none).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize;
    v.get(rank.saturating_sub(1)).copied().unwrap_or(f64::NAN)
}
