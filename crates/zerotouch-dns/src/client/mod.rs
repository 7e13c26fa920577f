//! The device client: a [`DnsExchange`] carries each of a `zerotouch-device` session's
//! messages through the device's resolver, over a [`TunnelClient`], so
//! `zerotouch_device_tokio::drive` runs flow 1 over DNS as it does over HTTPS.

mod packet;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tracing::{debug, warn};
use zerotouch_core::Instant;
use zerotouch_device::Path;
use zerotouch_device_tokio::Exchange;

use crate::{
    Handled, OutgoingQuery, QueryKind, Reply, TunnelClient, TunnelConfig, TunnelEvent,
    TunnelFailure, TunnelStats,
};

/// Where the device's resolver is and how the tunnel behaves.
#[derive(Debug, Clone)]
pub struct DnsClientConfig {
    /// The resolver the device was given (by DHCP on the captive network).
    pub resolver: SocketAddr,
    /// The resolver to use once on the home network (often another one).
    pub home_resolver: SocketAddr,
    /// The tunnel: zone, timeouts, retries, pacing, and the EDNS size to advertise and probe
    /// (`edns_limit: None` sends no EDNS at all).
    pub tunnel: TunnelConfig,
    /// Longest a TCP exchange (after a truncated answer) may take.
    pub tcp_timeout: Duration,
}

impl DnsClientConfig {
    /// The same resolver on both networks, the tunnel's defaults.
    pub fn new(resolver: SocketAddr, tunnel: TunnelConfig) -> DnsClientConfig {
        DnsClientConfig {
            resolver,
            home_resolver: resolver,
            tunnel,
            tcp_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a message did not get through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsClientError {
    /// The socket could not be opened or used.
    #[error("socket: {0}")]
    Socket(String),
    /// The tunnel gave up on the message.
    #[error("tunnel failed: {0:?}")]
    Tunnel(TunnelFailure),
    /// The message could not be put into queries.
    #[error("message: {0}")]
    Message(crate::DnsError),
}

/// What went over the wire, for benchmarks and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Query packets sent (UDP and TCP).
    pub queries: u64,
    /// Of them, over TCP after a truncated answer.
    pub tcp_queries: u64,
    /// Bytes of the query packets.
    pub query_bytes: u64,
    /// Answer packets received that matched a query.
    pub answers: u64,
    /// Bytes of those answer packets.
    pub answer_bytes: u64,
    /// The largest of them, in bytes.
    pub largest_answer: u64,
    /// Packets dropped: wrong id, wrong question, unreadable.
    pub ignored: u64,
}

/// Carries a device session's messages through a resolver.
#[derive(Debug)]
pub struct DnsExchange {
    config: DnsClientConfig,
    tunnel: TunnelClient,
    rng: ChaCha20Rng,
    socket: Option<UdpSocket>,
    start: tokio::time::Instant,
    wire: WireStats,
}

impl DnsExchange {
    /// A client whose randomness (tunnel ids, DNS ids) comes from `seed`.
    pub fn with_seed(config: DnsClientConfig, seed: [u8; 32]) -> DnsExchange {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let tunnel = TunnelClient::new(config.tunnel.clone(), &mut rng);
        DnsExchange {
            config,
            tunnel,
            rng,
            socket: None,
            start: tokio::time::Instant::now(),
            wire: WireStats::default(),
        }
    }

    /// A client seeded from the operating system.
    pub fn new(config: DnsClientConfig) -> Result<DnsExchange, DnsClientError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| DnsClientError::Socket(e.to_string()))?;
        Ok(DnsExchange::with_seed(config, seed))
    }

    /// The tunnel's counts (queries, retries, name octets).
    pub fn tunnel_stats(&self) -> TunnelStats {
        self.tunnel.stats()
    }

    /// What went over the wire.
    pub fn wire_stats(&self) -> WireStats {
        self.wire
    }

    /// The tunnel (its id and answer limit).
    pub fn tunnel(&self) -> &TunnelClient {
        &self.tunnel
    }

    fn now(&self) -> Instant {
        Instant(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    async fn socket(&mut self, resolver: SocketAddr) -> Result<&UdpSocket, DnsClientError> {
        if self.socket.is_none() {
            let local: SocketAddr = match resolver {
                SocketAddr::V4(a) if a.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let socket = UdpSocket::bind(local)
                .await
                .map_err(|e| DnsClientError::Socket(e.to_string()))?;
            self.socket = Some(socket);
        }
        self.socket
            .as_ref()
            .ok_or_else(|| DnsClientError::Socket("no socket".into()))
    }

    /// Sends one message and returns the server's response.
    pub async fn round_trip(
        &mut self,
        resolver: SocketAddr,
        message: &[u8],
    ) -> Result<Vec<u8>, DnsClientError> {
        self.tunnel
            .send(message, &mut self.rng)
            .map_err(DnsClientError::Message)?;
        // Bounded: every query has at most 16 attempts, each with a deadline.
        loop {
            match self.tunnel.poll_event() {
                Some(TunnelEvent::Response(bytes)) => return Ok(bytes),
                Some(TunnelEvent::Failed(f)) => return Err(DnsClientError::Tunnel(f)),
                None => {}
            }
            let now = self.now();
            if let Some(query) = self.tunnel.poll_query(now) {
                self.ask(resolver, query).await?;
                continue;
            }
            let Some(at) = self.tunnel.poll_timeout() else {
                return Err(DnsClientError::Tunnel(TunnelFailure::Timeout));
            };
            if at > now {
                tokio::time::sleep_until(self.start + Duration::from_millis(at.0)).await;
            }
            let now = self.now();
            self.tunnel.handle_timeout(now);
        }
    }

    /// Sends `query` over UDP and waits for its answer until the tunnel's deadline (past an
    /// unusable one too); a truncated answer is asked again over TCP (except for a probe, whose
    /// point is to learn whether large answers arrive over UDP).
    async fn ask(
        &mut self,
        resolver: SocketAddr,
        query: OutgoingQuery,
    ) -> Result<(), DnsClientError> {
        let id = self.rng.next_u32() as u16;
        let edns = self
            .config
            .tunnel
            .edns_limit
            .map(|l| u16::try_from(l.bytes()).unwrap_or(u16::MAX));
        // Names from the tunnel are always valid ASCII names.
        let packet = packet::query_packet(id, &query.name, edns)
            .map_err(|_| DnsClientError::Message(crate::DnsError::NameTooLong(query.name.len())))?;
        let deadline = self
            .tunnel
            .poll_timeout()
            .map(|at| self.start + Duration::from_millis(at.0));
        let socket = self.socket(resolver).await?;
        socket
            .send_to(&packet, resolver)
            .await
            .map_err(|e| DnsClientError::Socket(e.to_string()))?;
        self.wire.queries += 1;
        self.wire.query_bytes += packet.len() as u64;
        let mut buf = vec![0u8; 4096];
        loop {
            let recv = async {
                let socket = self.socket.as_ref()?;
                socket.recv_from(&mut buf).await.ok()
            };
            let got = match deadline {
                Some(d) => tokio::time::timeout_at(d, recv).await.ok().flatten(),
                None => recv.await,
            };
            let Some((n, from)) = got else {
                return Ok(()); // the deadline passed: the tunnel's timer retries
            };
            let Some(answer) = buf.get(..n).and_then(packet::read_answer) else {
                self.wire.ignored += 1;
                continue;
            };
            if from != resolver || answer.id != id || !same_name(&answer.question, &query.name) {
                self.wire.ignored += 1;
                continue;
            }
            self.wire.answers += 1;
            self.wire.answer_bytes += n as u64;
            self.wire.largest_answer = self.wire.largest_answer.max(n as u64);
            let reply = match answer.reply {
                Reply::Truncated if query.kind != QueryKind::Probe => {
                    match self.ask_tcp(resolver, &packet, id, &query.name).await {
                        Some(reply) => reply,
                        None => return Ok(()),
                    }
                }
                other => other,
            };
            let now = self.now();
            match self.tunnel.handle_answer(now, &query.name, reply) {
                Handled::Accepted => {}
                Handled::Unusable(problem) => {
                    // The query stays outstanding until its deadline: a usable answer may
                    // still come (an unusable one may be forged), and the retry waits anyway.
                    debug!(?problem, "answer not used");
                    continue;
                }
                other => debug!(?other, "answer not used"),
            }
            return Ok(());
        }
    }

    async fn ask_tcp(
        &mut self,
        resolver: SocketAddr,
        packet: &[u8],
        id: u16,
        name: &str,
    ) -> Option<Reply> {
        let timeout = self.config.tcp_timeout;
        let exchange = async {
            let mut stream = TcpStream::connect(resolver).await.ok()?;
            let len = u16::try_from(packet.len()).ok()?;
            stream.write_all(&len.to_be_bytes()).await.ok()?;
            stream.write_all(packet).await.ok()?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.ok()?;
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut answer).await.ok()?;
            Some(answer)
        };
        let answer = tokio::time::timeout(timeout, exchange).await.ok().flatten();
        self.wire.queries += 1;
        self.wire.tcp_queries += 1;
        self.wire.query_bytes += packet.len() as u64 + 2;
        let Some(bytes) = answer else {
            warn!("TCP retry of a truncated answer failed");
            return None;
        };
        let read = packet::read_answer(&bytes)?;
        if read.id != id || !same_name(&read.question, name) {
            self.wire.ignored += 1;
            return None;
        }
        self.wire.answers += 1;
        self.wire.answer_bytes += bytes.len() as u64 + 2;
        Some(read.reply)
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.strip_suffix('.')
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b))
}

impl Exchange for DnsExchange {
    type Error = DnsClientError;

    async fn exchange(&mut self, path: Path, message: Vec<u8>) -> Result<Vec<u8>, DnsClientError> {
        let resolver = match path {
            Path::Setup => self.config.resolver,
            Path::Home => self.config.home_resolver,
        };
        self.round_trip(resolver, &message).await
    }
}
