//! A deployment for end-to-end DNS tests: the setup service over the embedded SQLite store
//! (one account with a home network, one registered device with a PIN), its DNS server on
//! loopback, and the device side (session, radio) that `zerotouch_device_tokio::drive` runs.

use std::net::SocketAddr;
use std::sync::Arc;

use zerotouch_core::{SoftwareSigner, Transport};
use zerotouch_device::{DeviceSession, MemoryDeviceState, RetryPolicy};
use zerotouch_device_tokio::{DeviceRun, DriveError, Exchange};
use zerotouch_dns::server::{DnsServerConfig, RunningDnsServer, serve_dns};
use zerotouch_dns::{TunnelConfig, Zone};
use zerotouch_server::SetupService;
use zerotouch_store::SqliteStore;
use zerotouch_testkit::flow1;
pub use zerotouch_testkit::flow1::HomeRadio;

/// The zone the tests serve (under `test.`, which unbound is told not to answer itself).
pub const ZONE: &str = "zt.test";

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
        let store = flow1::sqlite_store(dir.path()).await;
        // Registered with its PIN: the server asks the device to prove it.
        let service = flow1::registered_service(store.clone(), true).await;
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
    flow1::device(
        Transport::Dns,
        RetryPolicy {
            initial_timeout_ms: 3000,
            max_timeout_ms: 6000,
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
