//! A deployment for the BLE flow tests, on loopback: the setup service and the association
//! service over the embedded SQLite store behind the real HTTPS server, which accepts the
//! provisioner CA on its relay endpoint; a provisioner relay under a setup-network policy;
//! fixture device 1 (registered with its PIN) for flow 1; a sponsor and a joiner on one
//! account for flow 2.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use zerotouch_ble::relay::ProvisionerRelay;
use zerotouch_core::{
    Instant, KeyRole, PinnedKey, PinnedKeys, ServerKeyRing, SignatureAlgorithm, Signer,
    SoftwareSigner, Transport,
};
use zerotouch_device::{DeviceSession, MemoryDeviceState, RetryPolicy};
use zerotouch_device_tokio::{DeviceRun, DriveError, Exchange};
use zerotouch_http::{
    HttpConfig, Limits, RunningServer, ServerEndpoint, ServerTrust, client_tls_config, serve,
};
use zerotouch_pki::{CertificateAuthority, ClientRole, Validity};
use zerotouch_provisioner::{NetworkMode, SetupNetwork, SetupNetworkPolicy};
use zerotouch_server::{ServiceConfig, SetupService};
use zerotouch_store::{
    AccountStore, DeviceStore, RegistrarCredential, RegistrarStore, ServerKeyStore, SqliteStore,
};
use zerotouch_store_suite::fixtures;
use zerotouch_testkit::flow1::{self, HomeRadio, T0, signer};

pub const SERVER_NAME: &str = "setup.zerotouch.test";

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
        let store = flow1::sqlite_store(dir.path()).await;
        let service = flow1::registered_service(store.clone(), true).await;

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
    flow1::device(
        Transport::Ble,
        RetryPolicy {
            initial_timeout_ms: 5000,
            max_timeout_ms: 10_000,
            max_retransmits: 3,
            max_sessions: 3,
        },
    )
}

/// Runs fixture device 1 through flow 1 over `exchange` (bounded to 60 s).
pub async fn provision<X: Exchange>(
    exchange: &mut X,
    seed: u64,
) -> (Result<DeviceRun, DriveError>, HomeRadio) {
    flow1::provision(device(), exchange, seed).await
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
        let store = flow1::sqlite_store(dir.path()).await;
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
