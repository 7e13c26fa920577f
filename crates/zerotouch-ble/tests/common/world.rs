//! A deployment for the BLE flow tests, on loopback: the setup service and the association
//! service over the embedded SQLite store behind the real HTTPS server, which accepts the
//! provisioner CA on its relay endpoint; a provisioner relay under a setup-network policy;
//! fixture device 1 (registered with its PIN) for flow 1; a sponsor and a joiner on one
//! account for flow 2.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_ble::relay::ProvisionerRelay;
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::{
    BarcodePayload, CipherSuite, Instant, KeyFingerprint, KeyRole, Passphrase, Pin, PinnedKey,
    PinnedKeys, ServerKeyRing, SignatureAlgorithm, Signer, SigningKey, SoftwareSigner, Transport,
};
use zerotouch_device::{
    DeviceConfig, DeviceSession, JoinFailure, JoinResult, MemoryDeviceState, RetryPolicy, Trigger,
};
use zerotouch_device_tokio::{DeviceRun, DriveError, Exchange, Radio, drive};
use zerotouch_http::{
    HttpConfig, Limits, RunningServer, ServerEndpoint, ServerTrust, client_tls_config, serve,
};
use zerotouch_pki::{CertificateAuthority, ClientRole, Validity};
use zerotouch_provisioner::{NetworkMode, SetupNetwork, SetupNetworkPolicy};
use zerotouch_server::{ReassociationProof, ServiceConfig, SetupService};
use zerotouch_store::{
    AccountStore, DeviceStore, RegistrarCredential, RegistrarStore, ServerKeyStore, SqliteOptions,
    SqliteStore, StaticDataKey,
};
use zerotouch_store_suite::fixtures;

pub const SERVER_NAME: &str = "setup.zerotouch.test";
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

/// The server side and the provisioner's credentials.
pub struct BleWorld {
    pub server: RunningServer,
    pub store: SqliteStore,
    provisioner_tls: Arc<rustls::ClientConfig>,
    _dir: tempfile::TempDir,
}

impl BleWorld {
    /// The store with fixture device 1 registered to an account with a home network, the
    /// setup service, and the HTTPS server on 127.0.0.1:0.
    pub async fn start() -> BleWorld {
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
            pin: Some(Pin::new(fixtures::PIN).unwrap()),
        };
        service
            .register_device(registrar, &label, account, ReassociationProof::None, T0)
            .await
            .unwrap();

        let ca = |name| {
            CertificateAuthority::new(
                name,
                SignatureAlgorithm::EcdsaP256Sha256,
                Validity::years_from_now(20),
            )
            .unwrap()
        };
        let servers = ca("test servers");
        let provisioners = ca("test provisioners");
        let server_cert = servers
            .issue_server(&[SERVER_NAME], Validity::years_from_now(1))
            .unwrap();
        let router = provisioners
            .issue_client(
                ClientRole::Provisioner,
                "router 1",
                Validity::years_from_now(1),
            )
            .unwrap();
        let server = serve(
            HttpConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
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
        .await
        .unwrap();
        let provisioner_tls = client_tls_config(
            Some((router.chain(), router.private_key())),
            ServerTrust::Ca {
                ca_der: servers.certificate_der().to_vec(),
                check_dates: true,
            },
        )
        .unwrap();
        BleWorld {
            server,
            store,
            provisioner_tls,
            _dir: dir,
        }
    }

    /// The server's endpoint as the relay dials it.
    pub fn endpoint(&self) -> ServerEndpoint {
        let mut endpoint = ServerEndpoint::new(self.server.local_addr(), SERVER_NAME);
        endpoint.timeout = Duration::from_secs(20);
        endpoint
    }

    /// A setup-network policy that lets devices reach this server only.
    pub fn policy(&self) -> SetupNetworkPolicy {
        let router = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
        SetupNetworkPolicy::with_defaults(router, (router, 24), vec![self.server.local_addr().ip()])
    }

    /// A relay under `policy`, with the provisioner's certificate.
    pub fn relay(&self, policy: SetupNetworkPolicy) -> Arc<ProvisionerRelay> {
        let network = SetupNetwork::new(policy, NetworkMode::AlwaysOpen, Instant(0)).unwrap();
        Arc::new(
            ProvisionerRelay::new(self.endpoint(), Arc::clone(&self.provisioner_tls), network)
                .unwrap(),
        )
    }
}

/// Fixture device 1, with its PIN, speaking flow 1 over BLE through a relay.
pub fn device() -> DeviceSession<SoftwareSigner, MemoryDeviceState> {
    let key = SoftwareSigner::new(fixtures::device_key(1));
    let config = DeviceConfig {
        transport: Transport::Ble,
        home_transport: Transport::Ble,
        identity: DeviceIdentityRef::PublicKey(key.public_key().to_spki_der()),
        pin: Some(Pin::new(fixtures::PIN).unwrap()),
        radio_bands: 3,
        radio_security: 3,
        suites: CipherSuite::SUPPORTED.to_vec(),
        retry: RetryPolicy {
            initial_timeout_ms: 5000,
            max_timeout_ms: 10_000,
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

/// Flow 2's world: a sponsor (fixture device 2) and a joiner (fixture device 3, with its
/// device secret) on one account, and the association service over the SQLite store.
pub struct HandoffWorld {
    pub association: zerotouch_server::AssociationService<SqliteStore, SoftwareSigner>,
    pub pinned: PinnedKeys,
    _dir: tempfile::TempDir,
}

/// The association key's seed.
const ASSOCIATION_KEY: u8 = 0xa5;

impl HandoffWorld {
    pub async fn start() -> HandoffWorld {
        use zerotouch_store::{AssociationAction, AssociationChange, AssociationStore};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            dir.path().join("zerotouch.db"),
            &StaticDataKey([7; 32]),
            SqliteOptions::default(),
        )
        .await
        .unwrap();
        let key = signer(ASSOCIATION_KEY);
        store
            .add_server_key(KeyRole::Association, key.public_key().clone(), T0)
            .await
            .unwrap();
        let mut ring = ServerKeyRing::new();
        ring.add(KeyRole::Association, key).unwrap();
        store
            .import_devices(vec![fixtures::device(2), fixtures::device(3)])
            .await
            .unwrap();
        let account = store.create_account("owner", T0).await.unwrap();
        let registrar = store
            .add_registrar("shop", RegistrarCredential::ApiTokenHash([9; 32]), T0)
            .await
            .unwrap();
        for device in [fixtures::device_id(2), fixtures::device_id(3)] {
            store
                .apply_association_change(AssociationChange {
                    action: AssociationAction::Add,
                    device,
                    account,
                    registrar,
                    label: None,
                    at: T0,
                })
                .await
                .unwrap();
        }
        let service = SetupService::new(store, ring, ServiceConfig::default());
        HandoffWorld {
            association: service.association_service(Default::default()),
            pinned: PinnedKeys::new(vec![PinnedKey::new(
                KeyRole::Association,
                signer(ASSOCIATION_KEY).public_key().clone(),
            )]),
            _dir: dir,
        }
    }
}
