//! `DnsProxy`: a relay between a DNS client and an upstream DNS server (our authoritative server or
//! unbound), on 127.0.0.1, that loses, duplicates and delays UDP datagrams with a seeded RNG,
//! records everything it sees, and lets attack tests forge or replay answers.
//!
//! UDP: every client datagram is forwarded from its own upstream socket, so the upstream's
//! answer(s) can be matched back to the client without parsing; that socket closes once each copy
//! sent has had one answer, or 10 s after the last copy (so a second, unsolicited answer from the
//! upstream is not relayed: forge those with the answer filter). TCP (same port): length-prefixed
//! messages are relayed on one upstream connection per client connection, without faults.
//!
//! All tasks stop when the proxy is dropped: they select on a watch channel whose sender the
//! proxy owns, and the accept loops are also aborted.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep, sleep_until};

/// How long a forwarded UDP query waits for its answers after its last copy is sent. Generous:
/// behind the proxy, unbound may itself retry a lossy authoritative server for seconds.
const ANSWER_WINDOW: Duration = Duration::from_secs(10);

/// Largest DNS message over UDP or TCP.
const MAX_MESSAGE: usize = 65_535;

/// Faults applied to UDP traffic (TCP is relayed faithfully). Probabilities are in [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Chance that a client query is not forwarded.
    pub drop_query: f64,
    /// Chance that an upstream answer is not relayed to the client.
    pub drop_answer: f64,
    /// Chance that a client query is forwarded twice (each copy with its own delay).
    pub duplicate_query: f64,
    /// Delay in milliseconds, uniform in `[.0, .1]`, drawn for every forwarded packet (each
    /// query copy and each answer), so packets may overtake each other.
    pub delay_ms: (u64, u64),
}

/// Which way a captured message was going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client, towards the upstream server.
    ToUpstream,
    /// From the upstream server, towards the client.
    ToClient,
}

/// One message as the proxy received it (before faults and the answer filter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// Which way it was going.
    pub direction: Direction,
    /// The DNS message (without the TCP length prefix).
    pub bytes: Vec<u8>,
    /// Seen on a TCP connection rather than as a UDP datagram.
    pub tcp: bool,
}

/// What to do with an upstream answer (see [`DnsProxy::set_answer_filter`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerAction {
    /// Relay it unchanged.
    Forward,
    /// Do not relay it.
    Drop,
    /// Relay these bytes instead.
    Replace(Vec<u8>),
    /// Send these bytes to the client first, then the real answer.
    InjectBefore(Vec<u8>),
}

/// Counters over UDP and TCP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Messages received from clients.
    pub queries: u64,
    /// Messages received from the upstream server.
    pub answers: u64,
    /// Queries and answers not relayed (by a fault or by the answer filter's `Drop`).
    pub dropped: u64,
    /// Queries forwarded twice.
    pub duplicated: u64,
}

/// Decides what happens to each upstream answer (see [`DnsProxy::set_answer_filter`]).
pub type AnswerFilter = Box<dyn FnMut(&[u8]) -> AnswerAction + Send>;

/// A DNS relay with faults, capture and answer forgery; stops when dropped.
pub struct DnsProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<AbortHandle>,
    // Dropping the sender is the shutdown signal for every task.
    _shutdown: watch::Sender<()>,
}

struct Shared {
    upstream: SocketAddr,
    faults: Faults,
    state: Mutex<State>,
    // Separate from `state` so a slow filter never holds the capture lock.
    filter: Mutex<Option<AnswerFilter>>,
}

struct State {
    capture: Vec<Captured>,
    stats: ProxyStats,
    rng: ChaCha20Rng,
}

impl DnsProxy {
    /// Starts relaying 127.0.0.1:<port> (UDP and TCP) to `upstream`, on the current tokio
    /// runtime. The same seed and the same sequence of events give the same faults.
    ///
    /// Panics if no port free for both UDP and TCP is found (a test environment failure).
    pub async fn start(upstream: SocketAddr, faults: Faults, seed: u64) -> DnsProxy {
        let (udp, tcp) = bind_pair().await;
        #[allow(clippy::expect_used)] // A bound socket always has a local address.
        let addr = udp.local_addr().expect("local_addr of a bound socket");
        let shared = Arc::new(Shared {
            upstream,
            faults,
            state: Mutex::new(State {
                capture: Vec::new(),
                stats: ProxyStats::default(),
                rng: ChaCha20Rng::seed_from_u64(seed),
            }),
            filter: Mutex::new(None),
        });
        let (shutdown, stop) = watch::channel(());
        let udp_task = tokio::spawn(until_stopped(
            stop.clone(),
            serve_udp(shared.clone(), Arc::new(udp), stop.clone()),
        ));
        let tcp_task = tokio::spawn(until_stopped(
            stop.clone(),
            serve_tcp(shared.clone(), tcp, stop),
        ));
        DnsProxy {
            addr,
            shared,
            tasks: vec![udp_task.abort_handle(), tcp_task.abort_handle()],
            _shutdown: shutdown,
        }
    }

    /// Where clients send their queries (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message received so far, in order of arrival, including dropped ones.
    pub fn capture(&self) -> Vec<Captured> {
        self.shared.state().capture.clone()
    }

    /// Decides the fate of every later upstream answer, UDP and TCP (an on-path attacker sees
    /// both). After `Forward`, `Replace` or `InjectBefore`, UDP faults still apply to the real or
    /// replacement answer; injected bytes are always sent.
    pub fn set_answer_filter(&self, f: AnswerFilter) {
        *self.shared.filter() = Some(f);
    }

    /// Counters so far.
    pub fn stats(&self) -> ProxyStats {
        self.shared.state().stats
    }
}

impl Drop for DnsProxy {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the capture from the others.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn filter(&self) -> MutexGuard<'_, Option<AnswerFilter>> {
        self.filter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, direction: Direction, bytes: &[u8], tcp: bool) {
        let mut state = self.state();
        state.capture.push(Captured {
            direction,
            bytes: bytes.to_vec(),
            tcp,
        });
        match direction {
            Direction::ToUpstream => state.stats.queries += 1,
            Direction::ToClient => state.stats.answers += 1,
        }
    }

    fn count_drop(&self) {
        self.state().stats.dropped += 1;
    }

    /// Records a UDP query and returns the delays of the copies to forward (none if dropped).
    fn plan_query(&self, query: &[u8]) -> Vec<Duration> {
        self.record(Direction::ToUpstream, query, false);
        let faults = self.faults;
        let mut state = self.state();
        if chance(&mut state.rng, faults.drop_query) {
            state.stats.dropped += 1;
            return Vec::new();
        }
        let copies = if chance(&mut state.rng, faults.duplicate_query) {
            state.stats.duplicated += 1;
            2
        } else {
            1
        };
        let mut delays: Vec<Duration> = (0..copies)
            .map(|_| delay(&mut state.rng, faults.delay_ms))
            .collect();
        delays.sort();
        delays
    }

    /// Runs the answer filter on an upstream answer.
    fn filter_answer(&self, answer: &[u8]) -> AnswerAction {
        match self.filter().as_mut() {
            Some(filter) => filter(answer),
            None => AnswerAction::Forward,
        }
    }

    /// Records a UDP answer and returns what to send to the client, in order, after which delay.
    fn plan_answer(&self, answer: &[u8]) -> (Vec<Vec<u8>>, Duration) {
        self.record(Direction::ToClient, answer, false);
        let action = self.filter_answer(answer);
        let faults = self.faults;
        let mut state = self.state();
        let (injected, real) = match action {
            AnswerAction::Forward => (None, Some(answer.to_vec())),
            AnswerAction::Drop => (None, None),
            AnswerAction::Replace(bytes) => (None, Some(bytes)),
            AnswerAction::InjectBefore(bytes) => (Some(bytes), Some(answer.to_vec())),
        };
        // Drawn whatever the action, so a filter does not shift the fault sequence.
        let lost = chance(&mut state.rng, faults.drop_answer);
        let wait = delay(&mut state.rng, faults.delay_ms);
        let real = match real {
            Some(bytes) if !lost => Some(bytes),
            _ => {
                state.stats.dropped += 1;
                None
            }
        };
        (injected.into_iter().chain(real).collect(), wait)
    }
}

/// Runs `work` until it ends or the proxy is dropped.
async fn until_stopped(mut stop: watch::Receiver<()>, work: impl Future<Output = ()>) {
    tokio::select! {
        // Err once the sender (owned by DnsProxy) is dropped; nothing is ever sent.
        _ = stop.changed() => {}
        () = work => {}
    }
}

/// A UDP socket and a TCP listener on the same 127.0.0.1 port.
#[allow(clippy::panic)] // A test helper: no loopback ports is an environment failure.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    let mut last_error = String::new();
    for _ in 0..20 {
        let udp = match UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await {
            Ok(udp) => udp,
            Err(e) => {
                last_error = e.to_string();
                continue;
            }
        };
        let Ok(addr) = udp.local_addr() else { continue };
        match TcpListener::bind(addr).await {
            Ok(tcp) => return (udp, tcp),
            Err(e) => last_error = e.to_string(),
        }
    }
    panic!("DnsProxy: no 127.0.0.1 port free for both UDP and TCP: {last_error}")
}

/// True with probability `p`.
fn chance(rng: &mut ChaCha20Rng, p: f64) -> bool {
    f64::from(rng.next_u32()) / 4_294_967_296.0 < p
}

/// Uniform in `[lo, hi]` milliseconds.
fn delay(rng: &mut ChaCha20Rng, (lo, hi): (u64, u64)) -> Duration {
    let ms = if hi <= lo {
        lo
    } else {
        lo + rng.next_u64() % (hi - lo).saturating_add(1)
    };
    Duration::from_millis(ms)
}

async fn serve_udp(shared: Arc<Shared>, socket: Arc<UdpSocket>, stop: watch::Receiver<()>) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            // Transient (e.g. a late ICMP error); pace the loop rather than spin.
            sleep(Duration::from_millis(1)).await;
            continue;
        };
        let query = buf.get(..n).unwrap_or_default().to_vec();
        let delays = shared.plan_query(&query);
        if delays.is_empty() {
            continue;
        }
        // One upstream socket per client datagram: its answers belong to this client.
        let Ok(upstream) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await else {
            continue;
        };
        if upstream.connect(shared.upstream).await.is_err() {
            continue;
        }
        tokio::spawn(until_stopped(
            stop.clone(),
            relay_udp(
                shared.clone(),
                socket.clone(),
                client,
                upstream,
                query,
                delays,
                stop.clone(),
            ),
        ));
    }
}

/// Sends the query copies on schedule and relays answers until every copy is answered or the
/// answer window closes.
async fn relay_udp(
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    upstream: UdpSocket,
    query: Vec<u8>,
    delays: Vec<Duration>,
    stop: watch::Receiver<()>,
) {
    let start = Instant::now();
    let expected = delays.len();
    let last = delays.last().copied().unwrap_or_default();
    let deadline = start + last + ANSWER_WINDOW;
    let mut pending: VecDeque<Duration> = delays.into();
    let mut answered = 0;
    let mut buf = vec![0u8; MAX_MESSAGE];
    while answered < expected || !pending.is_empty() {
        let next_send = pending.front().map_or(deadline, |d| start + *d);
        tokio::select! {
            () = sleep_until(next_send), if !pending.is_empty() => {
                pending.pop_front();
                // A lost send is just another lost packet.
                let _ = upstream.send(&query).await;
            }
            received = upstream.recv(&mut buf) => {
                // An error here is an ICMP "port unreachable" for an earlier copy: keep waiting.
                let Ok(n) = received else { continue };
                answered += 1;
                let answer = buf.get(..n).unwrap_or_default();
                let (packets, wait) = shared.plan_answer(answer);
                if packets.is_empty() {
                    continue;
                }
                if wait.is_zero() {
                    send_all(&socket, client, &packets).await;
                } else {
                    let socket = socket.clone();
                    // Delayed on its own so that later answers may overtake it.
                    tokio::spawn(until_stopped(stop.clone(), async move {
                        sleep(wait).await;
                        send_all(&socket, client, &packets).await;
                    }));
                }
            }
            () = sleep_until(deadline) => return,
        }
    }
}

async fn send_all(socket: &UdpSocket, client: SocketAddr, packets: &[Vec<u8>]) {
    for packet in packets {
        // The client may be gone; that is its business.
        let _ = socket.send_to(packet, client).await;
    }
}

async fn serve_tcp(shared: Arc<Shared>, listener: TcpListener, stop: watch::Receiver<()>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            sleep(Duration::from_millis(1)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(until_stopped(stop.clone(), async move {
            let Ok(upstream) = TcpStream::connect(shared.upstream).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (upstream_read, upstream_write) = upstream.into_split();
            // Either side closing ends the connection.
            tokio::select! {
                () = relay_tcp_queries(&shared, client_read, upstream_write) => {}
                () = relay_tcp_answers(&shared, upstream_read, client_write) => {}
            }
        }));
    }
}

async fn relay_tcp_queries(shared: &Shared, mut from: OwnedReadHalf, mut to: OwnedWriteHalf) {
    while let Some(query) = read_message(&mut from).await {
        shared.record(Direction::ToUpstream, &query, true);
        if write_message(&mut to, &query).await.is_err() {
            return;
        }
    }
}

async fn relay_tcp_answers(shared: &Shared, mut from: OwnedReadHalf, mut to: OwnedWriteHalf) {
    while let Some(answer) = read_message(&mut from).await {
        shared.record(Direction::ToClient, &answer, true);
        let packets = match shared.filter_answer(&answer) {
            AnswerAction::Forward => vec![answer],
            AnswerAction::Drop => {
                shared.count_drop();
                Vec::new()
            }
            AnswerAction::Replace(bytes) => vec![bytes],
            AnswerAction::InjectBefore(bytes) => vec![bytes, answer],
        };
        for packet in &packets {
            if write_message(&mut to, packet).await.is_err() {
                return;
            }
        }
    }
}

/// One length-prefixed DNS message, or None at EOF or on error.
async fn read_message(from: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let len = from.read_u16().await.ok()?;
    let mut message = vec![0u8; usize::from(len)];
    from.read_exact(&mut message).await.ok()?;
    Some(message)
}

async fn write_message(to: &mut OwnedWriteHalf, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len()).map_err(std::io::Error::other)?;
    // One write: prefix and message in the same segment, as most stacks send them.
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    to.write_all(&framed).await
}
