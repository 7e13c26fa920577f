//! A deployment on loopback for the HTTPS tests: a PKI made with `zerotouch-pki`, the setup
//! service on the embedded SQLite store, accounts with home networks, registrars, and
//! devices with certificates that run the real device session through the real server.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::{
    BarcodePayload, CipherSuite, DeviceSecret, Instant, KeyFingerprint, KeyRole, Passphrase, Pin,
    PinnedKey, PinnedKeys, ServerKeyRing, SignatureAlgorithm, Signer, SigningKey, SoftwareSigner,
    Transport,
};
use zerotouch_device::{
    DeviceConfig, DeviceSession, JoinFailure, JoinResult, MemoryDeviceState, RetryPolicy, Trigger,
};
use zerotouch_http::{
    DeviceRun, DirectHttps, Exchange, HttpConfig, HttpError, HttpsChannel, Limits, Radio,
    RunningServer, ServerEndpoint, ServerTrust, client_tls_config, device_tls_config, drive, serve,
};
use zerotouch_pki::{CertificateAuthority, ClientRole, IssuedCertificate, Validity};
use zerotouch_server::{
    MeasuredStore, ReassociationProof, ServiceConfig, ServiceMetrics, SetupService,
};
use zerotouch_store::{
    AccountId, Bands, DeviceIdentity, DeviceRecord, LocalKeyFile, MIN_PIN_ITERATIONS, NewNetwork,
    PinRecord, RegistrarCredential, RegistrarId, SecurityType, SqliteOptions, SqliteStore,
};

pub const SERVER_NAME: &str = "setup.zerotouch.test";
pub type Store = MeasuredStore<SqliteStore>;
pub type Service = SetupService<Store, SoftwareSigner>;

pub fn now() -> Instant {
    Instant(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
}

/// Every CA of a deployment, and the server's certificate.
pub struct Pki {
    pub manufacturer: CertificateAuthority,
    pub registrars: CertificateAuthority,
    pub provisioners: CertificateAuthority,
    pub servers: CertificateAuthority,
    pub server: IssuedCertificate,
}

impl Pki {
    pub fn new() -> Self {
        let ca = |name| {
            CertificateAuthority::new(
                name,
                SignatureAlgorithm::EcdsaP256Sha256,
                Validity::years_from_now(20),
            )
            .unwrap()
        };
        let servers = ca("zerotouch test servers");
        let server = servers
            .issue_server(&[SERVER_NAME, "127.0.0.1"], Validity::years_from_now(1))
            .unwrap();
        Pki {
            manufacturer: ca("Acme devices"),
            registrars: ca("zerotouch test registrars"),
            provisioners: ca("zerotouch test provisioners"),
            servers,
            server,
        }
    }
}

/// Home network `i` of account `i`.
pub fn home_ssid(i: usize) -> Vec<u8> {
    format!("home-{i}").into_bytes()
}

pub fn home_passphrase(i: usize) -> Vec<u8> {
    format!("passphrase of home {i}").into_bytes()
}

/// Certificates from elsewhere (`openssl`) in place of the generated ones.
#[derive(Default)]
pub struct Overrides {
    /// The server's chain, key and the CA devices trust for it.
    pub server: Option<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
        Vec<u8>,
    )>,
    /// More device CAs.
    pub device_cas: Vec<Vec<u8>>,
    /// More registrar CAs.
    pub registrar_cas: Vec<Vec<u8>>,
}

pub struct Harness {
    pub pki: Pki,
    pub server_ca_der: Vec<u8>,
    pub dir: tempfile::TempDir,
    pub service: Arc<Service>,
    pub server: Option<RunningServer>,
    pub pinned: Vec<PinnedKey>,
    /// The association key (flow 2): sponsors and joiners pin it.
    pub association_key: zerotouch_core::PublicKey,
    pub accounts: Vec<AccountId>,
    pub cert_registrar: RegistrarId,
    pub registrar_cert: IssuedCertificate,
    pub token_registrar: RegistrarId,
    pub registrar_token: String,
    pub provisioner_cert: IssuedCertificate,
    pub operator_token: String,
    pub db_path: std::path::PathBuf,
}

pub fn key_id_of(cert_der: &[u8]) -> zerotouch_core::KeyId {
    zerotouch_core::DeviceCertificate::from_der(cert_der)
        .unwrap()
        .public_key()
        .key_id()
}

impl Harness {
    pub async fn start(limits: Limits, accounts: usize) -> Harness {
        Self::start_with(Pki::new(), limits, accounts).await
    }

    pub async fn start_with(pki: Pki, limits: Limits, accounts: usize) -> Harness {
        Self::start_custom(pki, Overrides::default(), limits, accounts).await
    }

    pub async fn start_custom(
        pki: Pki,
        overrides: Overrides,
        limits: Limits,
        accounts: usize,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("zerotouch.db");
        let metrics = ServiceMetrics::default();
        let store = MeasuredStore::new(
            SqliteStore::open(
                &db_path,
                &LocalKeyFile::new(dir.path().join("data.key")),
                SqliteOptions::default(),
            )
            .await
            .unwrap(),
            metrics.clone(),
        );
        let t = now();
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        let mut ring = ServerKeyRing::new();
        let mut pinned = Vec::new();
        let mut association_key = None;
        for role in [
            KeyRole::SetupSigning,
            KeyRole::RevocationVerdict,
            KeyRole::Association,
        ] {
            let key = SoftwareSigner::new(
                SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, &mut rng).unwrap(),
            );
            if role == KeyRole::Association {
                association_key = Some(key.public_key().clone());
            } else {
                pinned.push(PinnedKey::new(role, key.public_key().clone()));
            }
            use zerotouch_store::ServerKeyStore;
            store
                .add_server_key(role, key.public_key().clone(), t)
                .await
                .unwrap();
            ring.add(role, key).unwrap();
        }
        use zerotouch_store::{AccountStore, RegistrarStore};
        let mut ids = Vec::new();
        for i in 0..accounts {
            let account = store
                .create_account(&format!("owner {i}"), t)
                .await
                .unwrap();
            store
                .add_network(
                    NewNetwork {
                        account,
                        ssid: home_ssid(i),
                        passphrase: Passphrase::new(&home_passphrase(i)).unwrap(),
                        security: SecurityType::Wpa2Personal,
                        bands: Bands::GHZ_2_4,
                    },
                    t,
                )
                .await
                .unwrap();
            ids.push(account);
        }
        let registrar_cert = pki
            .registrars
            .issue_client(
                ClientRole::Registrar,
                "shop scanner",
                Validity::years_from_now(1),
            )
            .unwrap();
        let cert_registrar = store
            .add_registrar(
                "shop scanner",
                RegistrarCredential::Certificate(key_id_of(registrar_cert.certificate_der())),
                t,
            )
            .await
            .unwrap();
        let registrar_token = "zt-registrar-token-0123456789abcdef".to_string();
        let token_registrar = store
            .add_registrar(
                "phone app",
                RegistrarCredential::ApiTokenHash(Sha256::digest(&registrar_token).into()),
                t,
            )
            .await
            .unwrap();
        let provisioner_cert = pki
            .provisioners
            .issue_client(
                ClientRole::Provisioner,
                "router 1",
                Validity::years_from_now(1),
            )
            .unwrap();
        let operator_token = "zt-operator-token-fedcba9876543210".to_string();
        let service = Arc::new(
            SetupService::new(store, ring, ServiceConfig::default()).with_metrics(metrics),
        );
        let (certificate_chain, private_key, server_ca_der) =
            overrides.server.unwrap_or_else(|| {
                (
                    pki.server.chain(),
                    pki.server.private_key(),
                    pki.servers.certificate_der().to_vec(),
                )
            });
        let mut device_cas = vec![pki.manufacturer.certificate_der().to_vec().into()];
        device_cas.extend(overrides.device_cas.into_iter().map(Into::into));
        let mut registrar_cas = vec![pki.registrars.certificate_der().to_vec().into()];
        registrar_cas.extend(overrides.registrar_cas.into_iter().map(Into::into));
        let config = HttpConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ops_listen: Some("127.0.0.1:0".parse().unwrap()),
            certificate_chain,
            private_key,
            device_cas,
            registrar_cas,
            provisioner_cas: vec![pki.provisioners.certificate_der().to_vec().into()],
            operator_token_sha256: Some(Sha256::digest(&operator_token).into()),
            limits,
        };
        let server = serve(config, Arc::clone(&service)).await.unwrap();
        Harness {
            pki,
            server_ca_der,
            dir,
            service,
            server: Some(server),
            pinned,
            association_key: association_key.unwrap(),
            accounts: ids,
            cert_registrar,
            registrar_cert,
            token_registrar,
            registrar_token,
            provisioner_cert,
            operator_token,
            db_path,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }

    pub fn ops_addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().ops_addr().unwrap()
    }

    pub fn endpoint(&self) -> ServerEndpoint {
        let mut e = ServerEndpoint::new(self.addr(), SERVER_NAME);
        e.timeout = Duration::from_secs(20);
        e
    }

    /// How devices trust the server: its CA, without a clock.
    pub fn device_trust(&self) -> ServerTrust {
        ServerTrust::Ca {
            ca_der: self.server_ca_der.clone(),
            check_dates: false,
        }
    }

    /// How registrars and relays trust the server: its CA, with their clock.
    pub fn operator_trust(&self) -> ServerTrust {
        ServerTrust::Ca {
            ca_der: self.server_ca_der.clone(),
            check_dates: true,
        }
    }

    /// A raw channel presenting `client` (or no certificate).
    pub fn channel_with(&self, client: Option<&IssuedCertificate>) -> HttpsChannel {
        let tls = client_tls_config(
            client.map(|c| (c.chain(), c.private_key())),
            self.operator_trust(),
        )
        .unwrap();
        HttpsChannel::new(self.endpoint(), tls)
    }

    /// The TLS configuration of the provisioner (relay) certificate.
    pub fn provisioner_tls(&self) -> Arc<rustls::ClientConfig> {
        client_tls_config(
            Some((
                self.provisioner_cert.chain(),
                self.provisioner_cert.private_key(),
            )),
            self.operator_trust(),
        )
        .unwrap()
    }

    /// A registration of `device`'s label to account `account`, as CBOR.
    pub fn registration(
        &self,
        device: &TestDevice,
        account: usize,
    ) -> zerotouch_http::RegistrationRequest {
        zerotouch_http::RegistrationRequest {
            label: device.label.encode(),
            account: self.accounts[account].0,
            pin: None,
            owner_consent: None,
        }
    }

    /// [`Self::registration`] encoded.
    pub fn registration_body(&self, device: &TestDevice, account: usize) -> Vec<u8> {
        zerotouch_http::api::to_cbor(&self.registration(device, account)).unwrap()
    }

    /// A raw channel presenting a device's certificate.
    pub fn device_channel(&self, device: &TestDevice) -> HttpsChannel {
        HttpsChannel::new(self.endpoint(), self.device_tls(device))
    }

    pub fn device_tls(&self, device: &TestDevice) -> Arc<rustls::ClientConfig> {
        device_tls_config(
            device.certificate.clone(),
            Arc::clone(&device.signer),
            self.device_trust(),
        )
        .unwrap()
    }

    /// A factory device of `algorithm` for account `account`'s home, registered by the shop.
    pub async fn make_device(
        &self,
        seed: u64,
        algorithm: SignatureAlgorithm,
        account: usize,
    ) -> TestDevice {
        self.make_device_with_secret(seed, algorithm, account, None)
            .await
    }

    /// [`Self::make_device`], with a flow-2 device secret.
    pub async fn make_device_with_secret(
        &self,
        seed: u64,
        algorithm: SignatureAlgorithm,
        account: usize,
        secret: Option<DeviceSecret>,
    ) -> TestDevice {
        let device = self
            .factory_device_with_secret(seed, algorithm, secret)
            .await;
        self.service
            .register_device(
                self.cert_registrar,
                &device.label,
                self.accounts[account],
                ReassociationProof::None,
                now(),
            )
            .await
            .unwrap();
        TestDevice { account, ..device }
    }

    /// A factory device in the store, on no account yet.
    pub async fn factory_device(&self, seed: u64, algorithm: SignatureAlgorithm) -> TestDevice {
        self.factory_device_with_secret(seed, algorithm, None).await
    }

    /// [`Self::factory_device`], with a flow-2 device secret.
    pub async fn factory_device_with_secret(
        &self,
        seed: u64,
        algorithm: SignatureAlgorithm,
        secret: Option<DeviceSecret>,
    ) -> TestDevice {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = SigningKey::generate(algorithm, &mut rng).unwrap();
        let signer = Arc::new(SoftwareSigner::new(key));
        let serial = 10_000 + seed;
        let certificate = self
            .pki
            .manufacturer
            .issue_device(signer.public_key(), 7, serial)
            .unwrap();
        let pin = Pin::generate(&mut rng, 6).unwrap();
        self.import_with_secret(&signer, &certificate, &pin, serial, secret)
            .await;
        TestDevice::new(signer, certificate, pin, usize::MAX)
    }

    pub async fn import(
        &self,
        signer: &SoftwareSigner,
        certificate: &[u8],
        pin: &Pin,
        serial: u64,
    ) {
        self.import_with_secret(signer, certificate, pin, serial, None)
            .await;
    }

    pub async fn import_with_secret(
        &self,
        signer: &SoftwareSigner,
        certificate: &[u8],
        pin: &Pin,
        serial: u64,
        device_secret: Option<DeviceSecret>,
    ) {
        use zerotouch_store::DeviceStore;
        self.service
            .store()
            .import_devices(vec![DeviceRecord {
                key_id: signer.key_id(),
                identity: DeviceIdentity::Certificate(certificate.to_vec()),
                device_type: 7,
                serial,
                product_number: "SMARTPLUG01".into(),
                pin: Some(PinRecord::new(pin, MIN_PIN_ITERATIONS).unwrap()),
                device_secret,
                blocked: false,
                created_at: now(),
            }])
            .await
            .unwrap();
    }

    pub fn session(
        &self,
        device: &TestDevice,
        transport: Transport,
        retry: RetryPolicy,
    ) -> DeviceSession<Arc<SoftwareSigner>, MemoryDeviceState> {
        let config = DeviceConfig {
            transport,
            home_transport: transport,
            identity: DeviceIdentityRef::Certificate(device.certificate.clone()),
            pin: Some(device.pin.clone()),
            radio_bands: 1,
            radio_security: 3,
            suites: CipherSuite::SUPPORTED.to_vec(),
            retry,
        };
        DeviceSession::new(
            config,
            PinnedKeys::new(self.pinned.clone()),
            Arc::clone(&device.signer),
            MemoryDeviceState::new(),
        )
        .unwrap()
    }

    /// Runs the device through flow 1 over HTTPS with its certificate.
    pub async fn provision(&self, device: &TestDevice) -> Result<DeviceRun, HttpError> {
        let mut exchange =
            DirectHttps::new(self.endpoint(), self.endpoint(), self.device_tls(device));
        self.provision_over(device, Transport::Https, &mut exchange, fast_retry())
            .await
    }

    pub async fn provision_over<X: Exchange>(
        &self,
        device: &TestDevice,
        transport: Transport,
        exchange: &mut X,
        retry: RetryPolicy,
    ) -> Result<DeviceRun, HttpError> {
        let mut session = self.session(device, transport, retry);
        let mut radio = TestRadio::around(device.account, self.accounts.len());
        // A fresh stream per run: a device's RNG never repeats its draws across boots.
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut rng = ChaCha20Rng::seed_from_u64(device.seed() ^ (run << 48));
        drive(
            &mut session,
            Trigger::FirstBoot,
            exchange,
            &mut radio,
            &mut rng,
            Duration::from_secs(120),
        )
        .await
    }

    /// Every row of every table of the store, in order: equal snapshots mean nothing changed.
    pub fn snapshot(&self) -> String {
        let conn = rusqlite::Connection::open_with_flags(
            &self.db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out = String::new();
        for table in tables {
            out.push_str(&format!("== {table}\n"));
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                for c in 0..columns {
                    let v: rusqlite::types::Value = row.get(c).unwrap();
                    out.push_str(&format!("{v:?}|"));
                }
                out.push('\n');
            }
        }
        out
    }

    pub async fn metrics_text(&self) -> String {
        http_get(self.ops_addr(), "/metrics").await.1
    }

    pub async fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// Retransmits quickly so failure paths end within seconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial_timeout_ms: 1500,
        max_timeout_ms: 3000,
        max_retransmits: 3,
        max_sessions: 2,
    }
}

pub struct TestDevice {
    pub signer: Arc<SoftwareSigner>,
    pub certificate: Vec<u8>,
    pub pin: Pin,
    pub label: BarcodePayload,
    pub account: usize,
}

impl TestDevice {
    pub fn new(
        signer: Arc<SoftwareSigner>,
        certificate: Vec<u8>,
        pin: Pin,
        account: usize,
    ) -> Self {
        let label = BarcodePayload {
            fingerprint: KeyFingerprint::of(&signer.key_id(), 16).unwrap(),
            device_type: 7,
            product_number: "SMARTPLUG01".into(),
            pin: None,
        };
        TestDevice {
            signer,
            certificate,
            pin,
            label,
            account,
        }
    }

    fn seed(&self) -> u64 {
        u64::from_le_bytes(self.signer.key_id().0[..8].try_into().unwrap())
    }
}

/// The air around a device in home `home`: its own network, strongest, and the two
/// neighbours' (other accounts' networks the server must never hand out).
pub struct TestRadio {
    networks: Vec<(ReportedNetwork, Vec<u8>)>,
    pub joined: Option<Vec<u8>>,
}

impl TestRadio {
    pub fn around(home: usize, homes: usize) -> Self {
        let mut networks = Vec::new();
        for (i, loss) in [(home, 40u8), (home + 1, 45), (home + homes.max(1) - 1, 50)] {
            let i = i % homes.max(1);
            if networks
                .iter()
                .any(|(n, _): &(ReportedNetwork, _)| n.ssid == home_ssid(i))
            {
                continue;
            }
            networks.push((
                ReportedNetwork {
                    ssid: home_ssid(i),
                    signal_loss_db: loss,
                    band: 1,
                    channel: 6,
                    security: 1,
                },
                home_passphrase(i),
            ));
        }
        TestRadio {
            networks,
            joined: None,
        }
    }
}

impl Radio for TestRadio {
    async fn scan(&mut self) -> Vec<ReportedNetwork> {
        self.networks.iter().map(|(n, _)| n.clone()).collect()
    }

    async fn join(&mut self, ssid: &[u8], _security: u8, passphrase: &Passphrase) -> JoinResult {
        match self.networks.iter().find(|(n, _)| n.ssid == ssid) {
            Some((_, p)) if p.as_slice() == passphrase.expose_secret() => {
                self.joined = Some(ssid.to_vec());
                JoinResult::Joined
            }
            Some(_) => JoinResult::Failed(JoinFailure::WrongPassphrase),
            None => JoinResult::Failed(JoinFailure::NetworkGone),
        }
    }

    async fn leave(&mut self) {
        self.joined = None;
    }
}

/// A plain HTTP GET on the operations listener: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: ops\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
