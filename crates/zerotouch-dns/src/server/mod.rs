//! The authoritative DNS server of the binding (feature `server`): UDP and TCP on one
//! address, in front of the flow-1 setup service.
//!
//! [`DnsHandler`] holds the binding's rules (one question in, one [`HandlerAnswer`] out);
//! [`serve_dns`] puts it behind real sockets. Every server process sharing the setup
//! service's store answers every query alike: the cookie secret, tunnel records, stored
//! responses and the per-client and per-tunnel counters are all in the store. Cookie
//! requests and queries with a wrong cookie never touch the store, so spoofed or random
//! names cost nothing but an HMAC.

mod cookie;
mod error;
mod handler;
mod limiter;
mod packet;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tracing::{info, warn};
use zerotouch_core::{Instant, Signer};
use zerotouch_server::SetupService;
use zerotouch_store::Store;

pub use error::DnsServerError;
pub use handler::{DnsHandler, HandlerAnswer, SoaSection, response_key, tunnel_record_id};
pub use packet::MAX_UDP_PAYLOAD;

use crate::Zone;
use packet::Responder;

/// At most `queries` in each fixed window of `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimit {
    /// Queries allowed in a window.
    pub queries: u64,
    /// The window's length.
    pub window: Duration,
}

impl QueryLimit {
    /// Per client address: 3,000 a minute (a resolver speaks for many devices).
    pub const PER_CLIENT: QueryLimit = QueryLimit {
        queries: 3_000,
        window: Duration::from_secs(60),
    };
    /// Per tunnel: 600 in 10 minutes.
    pub const PER_TUNNEL: QueryLimit = QueryLimit {
        queries: 600,
        window: Duration::from_secs(600),
    };
    /// Cookie requests per client address: 120 a minute (counted in memory).
    pub const COOKIE_REQUESTS: QueryLimit = QueryLimit {
        queries: 120,
        window: Duration::from_secs(60),
    };
}

/// How the DNS server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsServerConfig {
    /// The zone served (delegated to this server).
    pub zone: Zone,
    /// Where to listen, UDP and TCP alike (port 0: one port the system chooses for both).
    pub listen: SocketAddr,
    /// How long a tunnel's record and its stored responses are kept after the last chunk.
    pub tunnel_ttl: Duration,
    /// Queries per client address (in the store, shared by every process).
    pub per_client: QueryLimit,
    /// Queries per tunnel (in the store).
    pub per_tunnel: QueryLimit,
    /// Cookie requests per client address (in this process's memory).
    pub cookie_requests_per_client: QueryLimit,
    /// UDP queries handled at once; more are dropped (the resolver asks again).
    pub max_udp_in_flight: usize,
    /// TCP connections open at once; more are closed at once.
    pub max_tcp_connections: usize,
    /// A TCP connection idle this long is closed.
    pub tcp_idle_timeout: Duration,
    /// How long [`RunningDnsServer::shutdown`] lets queries in flight finish.
    pub shutdown_grace: Duration,
}

impl DnsServerConfig {
    /// Defaults for `zone` on `listen`: tunnels kept 10 minutes, the limits of
    /// [`QueryLimit`]'s constants, 256 UDP queries in flight, 128 TCP connections idle at most
    /// 10 s, 2 s to finish on shutdown.
    pub fn new(zone: Zone, listen: SocketAddr) -> DnsServerConfig {
        DnsServerConfig {
            zone,
            listen,
            tunnel_ttl: Duration::from_secs(600),
            per_client: QueryLimit::PER_CLIENT,
            per_tunnel: QueryLimit::PER_TUNNEL,
            cookie_requests_per_client: QueryLimit::COOKIE_REQUESTS,
            max_udp_in_flight: 256,
            max_tcp_connections: 128,
            tcp_idle_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// A running DNS server. Dropping it stops the listeners without waiting; call
/// [`RunningDnsServer::shutdown`] to stop and wait until no task is left.
#[derive(Debug)]
pub struct RunningDnsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningDnsServer {
    /// The address both listeners are bound to (with the port chosen for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting queries, lets those in flight finish within the grace period (then
    /// aborts them), and returns when every task of the server has ended.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                warn!(%error, "DNS listener task ended abnormally");
            }
        }
        info!("DNS server stopped");
    }
}

/// Starts the authoritative server for `config.zone` in front of `setup`: reads (or creates)
/// the cookie secret in the store, binds UDP and TCP on `config.listen`, and returns once
/// both accept queries.
pub async fn serve_dns<St: Store, S: Signer + 'static>(
    config: DnsServerConfig,
    setup: Arc<SetupService<St, S>>,
) -> Result<RunningDnsServer, DnsServerError> {
    let handler = DnsHandler::new(&config, setup);
    handler.load_cookie_secret(now_ms()).await?;
    let soa = packet::soa_record(&config.zone)?;
    let responder = Arc::new(Responder { handler, soa });
    let (udp, tcp) = bind(config.listen).await?;
    let local_addr = udp.local_addr().map_err(|source| DnsServerError::BindUdp {
        addr: config.listen,
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(udp::run(
            Arc::new(udp),
            Arc::clone(&responder),
            stopped.clone(),
            config.max_udp_in_flight,
            config.shutdown_grace,
        )),
        tokio::spawn(tcp::run(
            tcp,
            responder,
            stopped,
            tcp::TcpLimits {
                max_connections: config.max_tcp_connections,
                idle_timeout: config.tcp_idle_timeout,
                grace: config.shutdown_grace,
            },
        )),
    ];
    info!(%local_addr, zone = config.zone.as_str(), "DNS server listening");
    Ok(RunningDnsServer {
        local_addr,
        stop,
        tasks,
    })
}

/// Tries at binding TCP on the port the system gave UDP before starting over.
const BIND_TRIES: usize = 8;

/// UDP on `listen`, then TCP on the same address and port. For port 0, a port taken for TCP
/// means another UDP port.
async fn bind(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsServerError> {
    let mut last = None;
    for _ in 0..BIND_TRIES {
        let udp = UdpSocket::bind(listen)
            .await
            .map_err(|source| DnsServerError::BindUdp {
                addr: listen,
                source,
            })?;
        let addr = udp.local_addr().map_err(|source| DnsServerError::BindUdp {
            addr: listen,
            source,
        })?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(source) if listen.port() == 0 => last = Some(source),
            Err(source) => return Err(DnsServerError::BindTcp { addr, source }),
        }
    }
    Err(DnsServerError::BindTcp {
        addr: listen,
        source: last.unwrap_or_else(|| std::io::Error::other("no port free for UDP and TCP")),
    })
}

/// Lets `tasks` finish within `grace`, then aborts the rest and waits for them.
async fn drain(mut tasks: JoinSet<()>, grace: Duration) {
    let _ = timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.shutdown().await;
}

/// The wall clock as the protocol's instant (Unix milliseconds).
fn now_ms() -> Instant {
    Instant(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}
