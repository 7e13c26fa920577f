//! A deployment for end-to-end DNS tests: the setup service over the embedded SQLite store
//! (one account with a home network, one registered device with a PIN), its DNS server on
//! loopback, and the device side (session, radio) that `zerotouch_device_tokio::drive` runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::{
    BarcodePayload, CipherSuite, Instant, KeyFingerprint, KeyRole, Passphrase, Pin, PinnedKey,
    PinnedKeys, ServerKeyRing, SignatureAlgorithm, Signer, SigningKey, SoftwareSigner, Transport,
};
use zerotouch_device::{
    DeviceConfig, DeviceSession, JoinFailure, JoinResult, MemoryDeviceState, RetryPolicy, Trigger,
};
use zerotouch_device_tokio::{DeviceRun, DriveError, Exchange, Radio, drive};
use zerotouch_dns::server::{DnsServerConfig, RunningDnsServer, serve_dns};
use zerotouch_dns::{TunnelConfig, Zone};
use zerotouch_server::{ReassociationProof, ServiceConfig, SetupService};
use zerotouch_store::{
    AccountStore, DeviceStore, RegistrarCredential, RegistrarStore, ServerKeyStore, SqliteOptions,
    SqliteStore, StaticDataKey,
};
use zerotouch_store_suite::fixtures;

/// The zone the tests serve (under `test.`, which unbound is told not to answer itself).
pub const ZONE: &str = "zt.test";
const T0: Instant = Instant(1_700_000_000_000);

fn signer(seed: u8) -> SoftwareSigner {
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[seed; 32]).unwrap(),
    )
}

fn ring() -> ServerKeyRing<SoftwareSigner> {
    let mut ring = ServerKeyRing::new();
    ring.add(KeyRole::SetupSigning, signer(0xa1)).unwrap();
    ring.add(KeyRole::RevocationVerdict, signer(0xa3)).unwrap();
    ring
}

fn pinned() -> PinnedKeys {
    PinnedKeys::new(vec![
        PinnedKey::new(KeyRole::SetupSigning, signer(0xa1).public_key().clone()),
        PinnedKey::new(
            KeyRole::RevocationVerdict,
            signer(0xa3).public_key().clone(),
        ),
    ])
}

/// The server side: the store on disk, the service, its DNS server.
pub struct DnsWorld {
    pub service: Arc<SetupService<SqliteStore, SoftwareSigner>>,
    pub server: RunningDnsServer,
    pub store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl DnsWorld {
    /// Starts the service over a fresh SQLite store and its DNS server on 127.0.0.1:0.
    pub async fn start() -> DnsWorld {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            dir.path().join("zerotouch.db"),
            &StaticDataKey([7; 32]),
            SqliteOptions::default(),
        )
        .await
        .unwrap();
        for k in ring().keys() {
            store
                .add_server_key(k.role, k.signer.public_key().clone(), T0)
                .await
                .unwrap();
        }
        let account = store.create_account("owner", T0).await.unwrap();
        store
            .add_network(fixtures::network(account, "home"), T0)
            .await
            .unwrap();
        store
            .import_devices(vec![fixtures::device(1)])
            .await
            .unwrap();
        let registrar = store
            .add_registrar("shop", RegistrarCredential::ApiTokenHash([9; 32]), T0)
            .await
            .unwrap();
        let service = SetupService::new(store.clone(), ring(), ServiceConfig::default());
        let d = fixtures::device(1);
        let label = BarcodePayload {
            fingerprint: KeyFingerprint::of(&d.key_id, 16).unwrap(),
            device_type: d.device_type,
            product_number: d.product_number,
            // Registered with its PIN: the server asks the device to prove it.
            pin: Some(Pin::new(fixtures::PIN).unwrap()),
        };
        service
            .register_device(registrar, &label, account, ReassociationProof::None, T0)
            .await
            .unwrap();
        let service = Arc::new(service);
        let config = DnsServerConfig::new(zone(), "127.0.0.1:0".parse().unwrap());
        let server = serve_dns(config, Arc::clone(&service)).await.unwrap();
        DnsWorld {
            service,
            server,
            store,
            _dir: dir,
        }
    }

    /// The DNS server's address.
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }
}

/// The zone.
pub fn zone() -> Zone {
    Zone::new(ZONE).unwrap()
}

/// A tunnel configuration for loopback: short timeouts, EDNS as given.
pub fn tunnel_config(edns: Option<usize>) -> TunnelConfig {
    let mut config = TunnelConfig::new(zone());
    config.edns_limit = edns.map(|n| zerotouch_dns::AnswerLimit::from_bytes(n).unwrap());
    config.initial_timeout_ms = 400;
    config.max_timeout_ms = 2000;
    config.max_attempts = 8;
    config.pacing_ms = 1;
    config
}

/// Fixture device 1, with its PIN, speaking flow 1 over DNS on both networks.
pub fn device() -> DeviceSession<SoftwareSigner, MemoryDeviceState> {
    let key = SoftwareSigner::new(fixtures::device_key(1));
    let config = DeviceConfig {
        transport: Transport::Dns,
        home_transport: Transport::Dns,
        identity: DeviceIdentityRef::PublicKey(key.public_key().to_spki_der()),
        pin: Some(Pin::new(fixtures::PIN).unwrap()),
        radio_bands: 3,
        radio_security: 3,
        suites: CipherSuite::SUPPORTED.to_vec(),
        retry: RetryPolicy {
            initial_timeout_ms: 3000,
            max_timeout_ms: 6000,
            max_retransmits: 3,
            max_sessions: 3,
        },
    };
    DeviceSession::new(config, pinned(), key, MemoryDeviceState::new()).unwrap()
}

/// A radio that sees the home network and joins it only with the right passphrase.
#[derive(Default)]
pub struct HomeRadio {
    /// The passphrase it was given, if any.
    pub passphrase: Option<Vec<u8>>,
}

impl Radio for HomeRadio {
    async fn scan(&mut self) -> Vec<ReportedNetwork> {
        vec![ReportedNetwork {
            ssid: b"home".to_vec(),
            signal_loss_db: 40,
            band: 2,
            channel: 36,
            security: 2,
        }]
    }

    async fn join(&mut self, ssid: &[u8], _security: u8, passphrase: &Passphrase) -> JoinResult {
        self.passphrase = Some(passphrase.expose_secret().to_vec());
        if ssid == b"home" && passphrase.expose_secret() == fixtures::PASSPHRASE {
            JoinResult::Joined
        } else {
            JoinResult::Failed(JoinFailure::WrongPassphrase)
        }
    }

    async fn leave(&mut self) {}
}

/// Runs fixture device 1 through flow 1 over `exchange` (bounded to 60 s).
pub async fn provision<X: Exchange>(
    exchange: &mut X,
    seed: u64,
) -> (Result<DeviceRun, DriveError>, HomeRadio) {
    let mut session = device();
    let mut radio = HomeRadio::default();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let run = drive(
        &mut session,
        Trigger::FirstBoot,
        exchange,
        &mut radio,
        &mut rng,
        Duration::from_secs(60),
    )
    .await;
    (run, radio)
}
