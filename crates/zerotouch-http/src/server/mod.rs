//! The HTTPS server: listeners, TLS, connections and shutdown.

mod config;
mod limits;
mod metrics;
pub(crate) mod peer;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::registry::Registry;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};
use zerotouch_core::Signer;
use zerotouch_server::{AssociationConfig, AssociationService, SetupService};
use zerotouch_store::Store;

pub use config::{HttpConfig, Limits, RateLimit};
pub use peer::{CertificateProblem, PeerRole};

use crate::HttpError;
use limits::{ConnectionSlot, ConnectionTracker, RateLimiter};
use metrics::HttpMetrics;
use peer::{Peer, ProofOfPossession, RoleVerifiers};
use routes::{Listener, ServerState};

/// A running server. Dropping it leaves the server running until the runtime stops; call
/// [`RunningServer::shutdown`] to stop it gracefully.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    ops_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    draining: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// The TLS listener's address (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The operations listener's address, if there is one.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops_addr
    }

    /// Stops accepting connections, lets requests in flight finish within the configured
    /// grace period, closes idle kept-alive connections, and returns when all is done.
    pub async fn shutdown(self) {
        // /readyz answers 503 from here on, while connections finish.
        self.draining.store(true, Ordering::Relaxed);
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                warn!(error = %e, "listener task ended abnormally");
            }
        }
        info!("server stopped");
    }
}

/// Starts the server for `service` as `config` says: binds the listeners and returns once
/// they accept connections. The association service (flow 2, [`crate::PEER_VERIFY_PATH`])
/// runs beside it on the same store and keys, with [`AssociationConfig::default`].
pub async fn serve<St: Store, S: Signer + 'static>(
    config: HttpConfig,
    service: Arc<SetupService<St, S>>,
) -> Result<RunningServer, HttpError> {
    let association = Arc::new(service.association_service(AssociationConfig::default()));
    serve_with_association(config, service, association).await
}

/// [`serve`] with an association service of its own (another configuration, or a store and
/// keys apart from the setup service's).
pub async fn serve_with_association<St: Store, S: Signer + 'static>(
    config: HttpConfig,
    service: Arc<SetupService<St, S>>,
    association: Arc<AssociationService<St, S>>,
) -> Result<RunningServer, HttpError> {
    let provider = crate::client::tls::provider();
    let roles = Arc::new(RoleVerifiers::new(
        &config.device_cas,
        &config.registrar_cas,
        &config.provisioner_cas,
        &provider,
    )?);
    let verifier = ProofOfPossession {
        roles: Arc::clone(&roles),
        handshake: crate::client::tls::HandshakeSignatures(Arc::clone(&provider)),
    };
    let mut tls = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(config.certificate_chain, config.private_key)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));

    let mut registry = Registry::default();
    service.metrics().register(&mut registry);
    let metrics = HttpMetrics::new(&mut registry);
    let limits = config.limits;
    let draining = Arc::new(AtomicBool::new(false));
    let state = Arc::new(ServerState {
        service,
        association,
        per_address: RateLimiter::new(limits.per_address),
        per_certificate: RateLimiter::new(limits.per_certificate),
        per_relay: RateLimiter::new(limits.per_relay),
        limits,
        metrics,
        registry,
        operator_token_sha256: config.operator_token_sha256,
        draining: Arc::clone(&draining),
        next_request: AtomicU64::new(0),
    });
    let tracker = ConnectionTracker::new(
        state.limits.max_connections,
        state.limits.max_connections_per_address,
    );

    let (stop, stopped) = watch::channel(false);
    let listener = TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let mut tasks = vec![tokio::spawn(accept_loop(
        listener,
        Some(acceptor),
        Listener::Tls,
        Arc::clone(&state),
        Arc::clone(&roles),
        Arc::clone(&tracker),
        stopped.clone(),
    ))];
    let mut ops_addr = None;
    if let Some(addr) = config.ops_listen {
        let ops = TcpListener::bind(addr).await?;
        ops_addr = Some(ops.local_addr()?);
        // Its own connection count: a flood on the TLS listener must not lock operators out.
        let ops_tracker = ConnectionTracker::new(64, 16);
        tasks.push(tokio::spawn(accept_loop(
            ops,
            None,
            Listener::Ops,
            Arc::clone(&state),
            roles,
            ops_tracker,
            stopped,
        )));
    }
    info!(%local_addr, ?ops_addr, "zerotouch HTTPS server listening");
    Ok(RunningServer {
        local_addr,
        ops_addr,
        stop,
        draining,
        tasks,
    })
}

#[allow(clippy::too_many_arguments)]
async fn accept_loop<St: Store, S: Signer + 'static>(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    kind: Listener,
    state: Arc<ServerState<St, S>>,
    roles: Arc<RoleVerifiers>,
    tracker: Arc<ConnectionTracker>,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => break,
        };
        let (tcp, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match tracker.admit(remote.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                debug!(%remote, reason = refusal.as_str(), "connection refused");
                state.metrics.connection_refused(refusal.as_str());
                continue;
            }
        };
        let state = Arc::clone(&state);
        let roles = Arc::clone(&roles);
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            state.metrics.connection_opened();
            connection(tcp, remote, acceptor, kind, &state, roles, watcher, slot).await;
            state.metrics.connection_closed();
        });
    }
    drop(listener);
    let grace = state.limits.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            ?grace,
            "connections still open after the shutdown grace period"
        );
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection<St: Store, S: Signer + 'static>(
    tcp: TcpStream,
    remote: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    kind: Listener,
    state: &Arc<ServerState<St, S>>,
    roles: Arc<RoleVerifiers>,
    watcher: hyper_util::server::graceful::Watcher,
    _slot: ConnectionSlot,
) {
    let limits = &state.limits;
    let _ = tcp.set_nodelay(true);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    let lifetime = limits.connection_lifetime;
    let serve = |peer: Arc<Peer>| {
        let state = Arc::clone(state);
        service_fn(move |request| {
            let state = Arc::clone(&state);
            let peer = Arc::clone(&peer);
            async move { Ok::<_, std::convert::Infallible>(state.handle(kind, peer, request).await) }
        })
    };
    let result = match acceptor {
        Some(acceptor) => {
            let tls =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        debug!(%remote, error = %e, "TLS handshake failed");
                        state.metrics.handshake_failed();
                        return;
                    }
                    Err(_) => {
                        debug!(%remote, "TLS handshake timed out");
                        state.metrics.handshake_failed();
                        return;
                    }
                };
            let chain = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let peer = Arc::new(Peer::new(remote, chain, roles));
            let conn = builder.serve_connection(TokioIo::new(tls), serve(peer));
            tokio::time::timeout(lifetime, watcher.watch(conn)).await
        }
        None => {
            let peer = Arc::new(Peer::new(remote, Vec::new(), roles));
            let conn = builder.serve_connection(TokioIo::new(tcp), serve(peer));
            tokio::time::timeout(lifetime, watcher.watch(conn)).await
        }
    };
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(%remote, error = %e, "connection ended with an error"),
        Err(_) => debug!(%remote, "connection reached its lifetime"),
    }
}
