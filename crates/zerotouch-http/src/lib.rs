//! # zerotouch-http
//!
//! The HTTPS binding of zerotouch's flow 1 (seed 000 paragraphs 0047-0048 and 0079): devices
//! reach the setup service over mutual TLS with their manufacturer certificate; registrars
//! (scanners, phone apps) register devices to accounts with their own certificates or API
//! tokens; provisioners (routers, sponsors) relay devices that have no TLS (BLE) with their
//! own certificate; operators read the audit log, metrics and probes.
//!
//! Only bytes move here. Device bytes go to
//! [`SetupService::answer`](zerotouch_server::SetupService::answer) unchanged, with the
//! client certificate's key (or the relay's identity) as the
//! [`TransportIdentity`](zerotouch_server::TransportIdentity), and its answer comes back
//! unchanged; a sponsor's verification request (flow 2) goes to
//! [`AssociationService::answer`](zerotouch_server::AssociationService::answer) the same way. The adapter checks who may call which endpoint, sizes, times and rates.
//!
//! | endpoint | method | caller | body |
//! |---|---|---|---|
//! | `/v1/setup` | POST | device certificate (manufacturer CA) | flow-1 message, `application/cbor` |
//! | `/v1/revocation` | POST | device certificate (manufacturer CA) | revocation query, `application/cbor` |
//! | `/v1/relay/ble`, `/v1/relay/local-stream` | POST | provisioner certificate | the device's message, unchanged |
//! | `/v1/peer/verify` | POST | sponsor's device certificate (manufacturer CA), of the request's signer | flow-2 verification request, `application/cbor` |
//! | `/v1/registrar/registrations` | POST | registrar certificate or `Authorization: Bearer` token | [`RegistrationRequest`] |
//! | `/v1/operator/audit` | GET | operator token | [`AuditRecord`]s |
//! | `/healthz`, `/readyz` | GET | anyone (also on the operations listener) | text |
//! | `/metrics` | GET | operations listener only | Prometheus (OpenMetrics) text |
//!
//! The client side: [`device_tls_config`] (the device's certificate and identity key, the
//! server checked against a CA without a clock or a pinned key), [`DirectHttps`] and
//! [`drive`] to run a `zerotouch-device` session, [`RelayClient`], [`AssociationClient`] (a
//! sponsor's verification requests), [`RegistrarClient`] and [`OperatorClient`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use zerotouch_http::{HttpConfig, Limits, serve};
//! # async fn run(service: Arc<zerotouch_server::SetupService<zerotouch_store::MemoryStore,
//! #     zerotouch_core::SoftwareSigner>>, chain: Vec<rustls::pki_types::CertificateDer<'static>>,
//! #     key: rustls::pki_types::PrivateKeyDer<'static>,
//! #     manufacturer_ca: rustls::pki_types::CertificateDer<'static>) -> Result<(), zerotouch_http::HttpError> {
//! let server = serve(HttpConfig {
//!     listen: "127.0.0.1:0".parse().expect("address"),
//!     ops_listen: Some("127.0.0.1:0".parse().expect("address")),
//!     certificate_chain: chain,
//!     private_key: key,
//!     device_cas: vec![manufacturer_ca],
//!     registrar_cas: vec![],
//!     provisioner_cas: vec![],
//!     operator_token_sha256: None,
//!     limits: Limits::default(),
//! }, service).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
mod client;
mod error;
mod server;

pub use api::{AuditRecord, RegistrationRequest, RegistrationResponse, RegistrationResult};
pub use client::association::AssociationClient;
pub use client::channel::{HttpsChannel, Reply, ServerEndpoint};
pub use client::device::{DirectHttps, drive, drive_observed};
pub use client::registrar::{OperatorClient, RegistrarClient};
pub use client::relay::RelayClient;
pub use client::tls::{client_tls_config, device_tls_config};
pub use client::trust::ServerTrust;
pub use error::HttpError;
pub use server::{
    CertificateProblem, HttpConfig, Limits, PeerRole, RateLimit, RunningServer, serve,
    serve_with_association,
};
pub use zerotouch_device_tokio::{DeviceRun, Exchange, Radio};

use hyper::header::HeaderName;
use zerotouch_core::Transport;

/// The content type of every protocol and registrar body.
pub const CBOR: &str = "application/cbor";
/// Flow-1 messages from devices.
pub const SETUP_PATH: &str = "/v1/setup";
/// Revocation queries from devices (the revocation service may be hosted apart).
pub const REVOCATION_PATH: &str = "/v1/revocation";
/// Relayed device messages: this prefix and the device's transport (`ble`, `local-stream`).
pub const RELAY_PATH_PREFIX: &str = "/v1/relay/";
/// Flow-2 verification requests from sponsors (mutual TLS with the sponsor's device
/// certificate).
pub const PEER_VERIFY_PATH: &str = "/v1/peer/verify";
/// Registrations by registrars.
pub const REGISTRAR_PATH: &str = "/v1/registrar/registrations";
/// The audit log of registrar changes, for operators.
pub const AUDIT_PATH: &str = "/v1/operator/audit";
/// Liveness.
pub const HEALTH_PATH: &str = "/healthz";
/// Readiness: the store answers and the server is not shutting down.
pub const READY_PATH: &str = "/readyz";
/// Prometheus metrics (operations listener only).
pub const METRICS_PATH: &str = "/metrics";
/// The header carrying an HTTP-layer error's stable code.
pub const ERROR_HEADER: HeaderName = HeaderName::from_static("zerotouch-error");

/// The relay path for devices on `transport`; `None` for transports devices use directly.
pub fn relay_path(transport: Transport) -> Option<&'static str> {
    match transport {
        Transport::Ble => Some("/v1/relay/ble"),
        Transport::LocalStream => Some("/v1/relay/local-stream"),
        _ => None,
    }
}
