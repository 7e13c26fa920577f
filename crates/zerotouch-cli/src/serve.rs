//! `serve`: the setup service and the association service (flow 2) over HTTPS on the
//! embedded store in the data directory or on PostgreSQL, and flow 1 over DNS beside it when
//! asked: one setup service behind both. Every piece of session state is in the store, so
//! any number of processes may serve one PostgreSQL database.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use zerotouch_dns::Zone;
use zerotouch_dns::server::{DnsServerConfig, RunningDnsServer, serve_dns};
use zerotouch_http::{HttpConfig, Limits, RunningServer, serve};
use zerotouch_server::{MeasuredStore, ServiceConfig, ServiceMetrics, SetupService};
use zerotouch_store::Store;

use crate::cli::ServeArgs;
use crate::data_dir::{DataDir, TrustRole};
use crate::secret_input::read_secret;
use crate::store_location::with_store;
use crate::{CliError, Output};

/// Where the DNS server listens and the zone it answers for.
#[derive(Debug, Clone)]
pub struct DnsListen {
    /// UDP and TCP on this address (port 0: one port the system picks for both).
    pub listen: SocketAddr,
    /// The zone delegated to this server.
    pub zone: Zone,
}

/// The servers [`start`] started: HTTPS always, DNS when asked; one setup service behind
/// both.
#[derive(Debug)]
pub struct Running {
    /// The HTTPS server.
    pub https: RunningServer,
    /// The DNS server, with `--dns-listen`.
    pub dns: Option<RunningDnsServer>,
}

impl Running {
    /// Stops both, each letting requests in flight finish, and returns when both have.
    pub async fn shutdown(self) {
        let dns = async {
            if let Some(dns) = self.dns {
                dns.shutdown().await;
            }
        };
        tokio::join!(self.https.shutdown(), dns);
    }
}

/// What a server runs with, beyond its data directory.
#[derive(Clone)]
pub struct ServeSettings {
    /// The mutual-TLS listener.
    pub listen: SocketAddr,
    /// The plain operations listener (health, readiness, metrics), if any.
    pub ops_listen: Option<SocketAddr>,
    /// SHA-256 of the operator token for the audit endpoint, if any.
    pub operator_token_sha256: Option<[u8; 32]>,
    /// The DNS server, if any.
    pub dns: Option<DnsListen>,
    /// The HTTPS server's limits (rates per address and per certificate, connections).
    pub limits: Limits,
    /// Signatures per device key per hour.
    pub signatures_per_hour: u64,
}

impl ServeSettings {
    /// HTTPS on `listen` with the default limits, nothing else.
    pub fn new(listen: SocketAddr) -> Self {
        ServeSettings {
            listen,
            ops_listen: None,
            operator_token_sha256: None,
            dns: None,
            limits: Limits::default(),
            signatures_per_hour: ServiceConfig::default().signatures_per_hour,
        }
    }
}

/// Starts the server for `data` with `settings` and returns it running.
pub async fn start(data: &DataDir, settings: ServeSettings) -> Result<Running, CliError> {
    with_store!(data.open_store().await?, store => start_on(store, data, settings).await)
}

/// [`start`] on an opened store.
async fn start_on(
    store: impl Store,
    data: &DataDir,
    settings: ServeSettings,
) -> Result<Running, CliError> {
    let ServeSettings {
        listen,
        ops_listen,
        operator_token_sha256,
        dns,
        limits,
        signatures_per_hour,
    } = settings;
    let ring = data.key_ring(&store.server_keys().await?, &store.key_map().await?)?;
    if ring
        .signer_for(zerotouch_core::KeyRole::SetupSigning)
        .is_err()
    {
        return Err(CliError::BadArgument(
            "no setup key: run `zerotouch keys create --role setup` first".into(),
        ));
    }
    if ring
        .signer_for(zerotouch_core::KeyRole::Association)
        .is_err()
    {
        // Flow 1 works without it; flow 2's verification requests are refused (Internal)
        // until one exists, and the operator should know why.
        tracing::warn!(
            "no association key: peer handoffs (POST /v1/peer/verify) are refused until \
             `zerotouch keys create --role association` and a restart"
        );
    }
    let device_cas = data.trusted_cas(TrustRole::Devices)?;
    if device_cas.is_empty() {
        return Err(CliError::BadArgument(
            "no manufacturer CA is trusted: run `zerotouch ca trust --role devices CA.crt.pem`"
                .into(),
        ));
    }
    let (certificate_chain, private_key) = data.tls_identity()?;
    let metrics = ServiceMetrics::default();
    let service = SetupService::new(
        MeasuredStore::new(store, metrics.clone()),
        ring,
        ServiceConfig {
            signatures_per_hour,
            ..ServiceConfig::default()
        },
    )
    .with_metrics(metrics);
    // One service, one store, one set of keys: a device may start over HTTPS and finish
    // over DNS, and the DNS server's tunnels and counters live in the same store.
    let service = Arc::new(service);
    let https = serve(
        HttpConfig {
            listen,
            ops_listen,
            certificate_chain,
            private_key,
            device_cas,
            registrar_cas: data.trusted_cas(TrustRole::Registrars)?,
            provisioner_cas: data.trusted_cas(TrustRole::Provisioners)?,
            operator_token_sha256,
            limits,
        },
        Arc::clone(&service),
    )
    .await?;
    let dns = match dns {
        None => None,
        Some(DnsListen { listen, zone }) => {
            match serve_dns(DnsServerConfig::new(zone, listen), service).await {
                Ok(dns) => Some(dns),
                Err(e) => {
                    https.shutdown().await;
                    return Err(e.into());
                }
            }
        }
    };
    Ok(Running { https, dns })
}

/// `serve`.
pub async fn run(out: &Output, data: &DataDir, args: ServeArgs) -> Result<(), CliError> {
    let token_hash = args
        .operator_token_file
        .as_deref()
        .map(|p| -> Result<[u8; 32], CliError> {
            use sha2::Digest as _;
            Ok(sha2::Sha256::digest(read_secret(p)?.as_slice()).into())
        })
        .transpose()?;
    // Handlers go in before the address is printed: whoever reads it may signal at once.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(CliError::Runtime)?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(CliError::Runtime)?;
    let zone = args.dns_zone.as_ref().map(|z| z.as_str().to_owned());
    // clap makes each of --dns-listen and --dns-zone require the other.
    let dns = match (args.dns_listen, args.dns_zone) {
        (Some(listen), Some(zone)) => Some(DnsListen { listen, zone }),
        (None, None) => None,
        _ => {
            return Err(CliError::BadArgument(
                "--dns-listen and --dns-zone go together".into(),
            ));
        }
    };
    let mut limits = Limits::default();
    if let Some(limit) = args.per_address_limit {
        limits.per_address = limit.0;
    }
    if let Some(limit) = args.per_certificate_limit {
        limits.per_certificate = limit.0;
    }
    if let Some(n) = args.max_connections_per_address {
        limits.max_connections_per_address = n;
    }
    let settings = ServeSettings {
        listen: args.listen,
        ops_listen: args.ops_listen,
        operator_token_sha256: token_hash,
        dns,
        limits,
        signatures_per_hour: args
            .signatures_per_device_hour
            .unwrap_or(ServiceConfig::default().signatures_per_hour),
    };
    let server = start(data, settings).await?;
    let https = &server.https;
    let dns_text = match (&server.dns, &zone) {
        (Some(d), Some(zone)) => format!("; DNS for {zone} on {} (UDP and TCP)", d.local_addr()),
        _ => String::new(),
    };
    out.result(
        &format!(
            "serving https://{} on {} (operations: {}){dns_text}; state in {}",
            data.settings()?.server_name,
            https.local_addr(),
            https
                .ops_addr()
                .map_or("off".to_string(), |a| format!("http://{a}")),
            data.store_location().describe()
        ),
        json!({
            "listen": https.local_addr().to_string(),
            "ops_listen": https.ops_addr().map(|a| a.to_string()),
            "dns_listen": server.dns.as_ref().map(|d| d.local_addr().to_string()),
            "dns_zone": zone,
            "store": data.store_location().describe(),
        }),
    );
    // Scripts read the address from the first line: hand it over now.
    let _ = std::io::stdout().flush();
    // SIGINT from a terminal, SIGTERM from systemd or a container runtime, or the time
    // limit a script set.
    let limit = async {
        match args.exit_after {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
        () = limit => {}
    }
    server.shutdown().await;
    out.step("server", "stopped");
    Ok(())
}
