//! What an operator configures: addresses, certificates, who may call what, and limits.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zerotouch_core::MAX_MESSAGE_LEN;

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests allowed at once.
    pub burst: u32,
    /// Requests added back per second.
    pub per_second: f64,
}

/// Limits that keep one client from taking the server from the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest request body (device messages are at most `MAX_MESSAGE_LEN`).
    pub max_body_bytes: usize,
    /// Read buffer for request heads: longer headers are refused (hyper's minimum is 8 KiB).
    pub max_header_bytes: usize,
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_connections_per_address: usize,
    /// Time to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time to send a request's head, and the idle time allowed between requests on a kept
    /// connection (slow clients that trickle headers are cut off here).
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
    /// Longest life of one connection.
    pub connection_lifetime: Duration,
    /// Requests per client IP address.
    pub per_address: RateLimit,
    /// Requests per device or registrar certificate (or registrar token).
    pub per_certificate: RateLimit,
    /// Requests per provisioner certificate (a relay carries many devices).
    pub per_relay: RateLimit,
    /// Time in-flight requests get to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: MAX_MESSAGE_LEN,
            max_header_bytes: 8 * 1024,
            max_connections: 10_000,
            max_connections_per_address: 64,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(300),
            per_address: RateLimit {
                burst: 120,
                per_second: 20.0,
            },
            per_certificate: RateLimit {
                burst: 30,
                per_second: 2.0,
            },
            per_relay: RateLimit {
                burst: 240,
                per_second: 40.0,
            },
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The HTTPS server's configuration.
pub struct HttpConfig {
    /// Where the TLS listener binds.
    pub listen: SocketAddr,
    /// Where the plain-HTTP operations listener (`/metrics`, `/healthz`, `/readyz`) binds;
    /// keep it on loopback or a management network. `None`: no operations listener.
    pub ops_listen: Option<SocketAddr>,
    /// The server's certificate chain (leaf first).
    pub certificate_chain: Vec<CertificateDer<'static>>,
    /// The server's private key.
    pub private_key: PrivateKeyDer<'static>,
    /// CAs whose certificates identify devices (manufacturer CAs).
    pub device_cas: Vec<CertificateDer<'static>>,
    /// CAs whose certificates identify registrars.
    pub registrar_cas: Vec<CertificateDer<'static>>,
    /// CAs whose certificates identify provisioners (relays).
    pub provisioner_cas: Vec<CertificateDer<'static>>,
    /// SHA-256 of the operator token for `/v1/operator/*` (`None`: those endpoints are off).
    pub operator_token_sha256: Option<[u8; 32]>,
    /// Limits.
    pub limits: Limits,
}

impl core::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("ops_listen", &self.ops_listen)
            .field("certificate_chain", &self.certificate_chain.len())
            .field("private_key", &"<redacted>")
            .field("device_cas", &self.device_cas.len())
            .field("registrar_cas", &self.registrar_cas.len())
            .field("provisioner_cas", &self.provisioner_cas.len())
            .field(
                "operator_token",
                &self.operator_token_sha256.map(|_| "<set>"),
            )
            .field("limits", &self.limits)
            .finish()
    }
}
