//! `serve`: the setup service and the association service (flow 2) over HTTPS with the
//! embedded store in the data directory.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use zerotouch_http::{HttpConfig, Limits, RunningServer, serve};
use zerotouch_server::{MeasuredStore, ServiceConfig, ServiceMetrics, SetupService};
use zerotouch_store::ServerKeyStore as _;

use crate::cli::ServeArgs;
use crate::data_dir::{DataDir, TrustRole};
use crate::secret_input::read_secret;
use crate::{CliError, Output};

/// Starts the server for `data` on `listen` and returns it running.
pub async fn start(
    data: &DataDir,
    listen: std::net::SocketAddr,
    ops_listen: Option<std::net::SocketAddr>,
    operator_token_sha256: Option<[u8; 32]>,
) -> Result<RunningServer, CliError> {
    let store = data.open_store().await?;
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
        ServiceConfig::default(),
    )
    .with_metrics(metrics);
    Ok(serve(
        HttpConfig {
            listen,
            ops_listen,
            certificate_chain,
            private_key,
            device_cas,
            registrar_cas: data.trusted_cas(TrustRole::Registrars)?,
            provisioner_cas: data.trusted_cas(TrustRole::Provisioners)?,
            operator_token_sha256,
            limits: Limits::default(),
        },
        Arc::new(service),
    )
    .await?)
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
    let server = start(data, args.listen, args.ops_listen, token_hash).await?;
    out.result(
        &format!(
            "serving https://{} on {} (operations: {})",
            data.settings()?.server_name,
            server.local_addr(),
            server
                .ops_addr()
                .map_or("off".to_string(), |a| format!("http://{a}"))
        ),
        json!({
            "listen": server.local_addr().to_string(),
            "ops_listen": server.ops_addr().map(|a| a.to_string()),
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
