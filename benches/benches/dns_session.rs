//! A complete flow-1 session over the DNS binding, through a real unbound on loopback, against
//! the minimum the same messages need over DNS and against the same session in process.
//!
//! Each run starts a fresh world: the setup service on the embedded SQLite store (a new
//! database in a temporary directory, built as zerotouch-dns's `tests/common/world.rs` builds
//! it: one account with the home network, fixture device 1 imported and registered with its
//! PIN), its DNS server (`serve_dns`, zone `zt.test`) behind a counting UDP/TCP relay, and a
//! new unbound (stub zone `zt.test` to the relay, `use-caps-for-id: yes`,
//! `qname-minimisation: yes`). The device (public-key identity, PIN, DNS on both networks)
//! then runs flow 1 from first boot to `Complete` through `zerotouch_device_tokio::drive` over
//! a `DnsExchange` with `TunnelConfig::new`'s defaults (first timeout 1 s, pacing 10 ms), in two
//! cases: no EDNS (512-byte answers) and EDNS 1,232 (probed only when a response's polls
//! would be fewer in 1,232-byte answers: flow 1's responses fit the answers to their last
//! chunks or need one poll, so the device need not probe). Only `drive` is timed.
//!
//! For each case it prints, as medians over the runs: the queries the device sent
//! (`wire_stats`, `tunnel_stats`), the bytes between device and resolver, the session's time;
//! what unbound sent the server (QNAME-minimisation probes for intermediate names apart from
//! the TXT queries, and unbound's own re-sends), counted in the relay; the minimum the same
//! messages need (their sizes recorded in the session by an `Exchange` wrapper) in a
//! header-less design; the ratios ours / minimum; and the goals (ratio <= 1.2, session < 2 s).
//! The reference measured in the same run is the same session with the device talking to
//! `SetupService::handle` in process (same store, same `drive`, no transport).
//!
//! # Running it
//!
//! `cargo bench -p zerotouch-benches --bench dns_session` (a few seconds: 20 DNS sessions of
//! about 0.1 s, each with its own unbound, and 10 in process). It needs `unbound`
//! (`apt-get install unbound`; `scripts/test.sh` installs it); without it the bench says so
//! and exits 0 with no figures. `ZT_BENCH_RUNS=n` sets the runs per case (default 10).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::{Duration, Instant as Clock, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_benches::dns_relay::{CountingRelay, Upstream};
use zerotouch_benches::{BenchError, Fleet, device_suites, scan};
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::{
    BarcodePayload, Instant, KeyFingerprint, Passphrase, Pin, PinnedKeys, Signer, SoftwareSigner,
    Transport,
};
use zerotouch_device::{
    DeviceConfig, DeviceSession, Event, JoinResult, MemoryDeviceState, Path, RetryPolicy, Trigger,
};
use zerotouch_device_tokio::{Exchange, Radio, drive};
use zerotouch_dns::client::{DnsClientConfig, DnsExchange};
use zerotouch_dns::local_resolver::{
    LocalResolver, ResolverOptions, find_unbound, unbound_version,
};
use zerotouch_dns::name::MAX_NAME_OCTETS;
use zerotouch_dns::server::{DnsServerConfig, serve_dns};
use zerotouch_dns::{AnswerLimit, TunnelConfig, Zone};
use zerotouch_server::{ReassociationProof, ServiceConfig, SetupService, TransportIdentity};
use zerotouch_store::{
    AccountStore, DeviceStore, RegistrarCredential, RegistrarStore, SqliteOptions, SqliteStore,
    StaticDataKey,
};
use zerotouch_store_suite::fixtures;

/// The zone served.
const ZONE: &str = "zt.test";
/// Runs per case unless `ZT_BENCH_RUNS` says otherwise.
const DEFAULT_RUNS: usize = 10;
/// Longest a session may take before the bench gives up on it.
const SESSION_BOUND: Duration = Duration::from_secs(60);
/// The goals.
const RATIO_GOAL: f64 = 1.2;
const TIME_GOAL: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------
// The minimum: the same messages in a design with no header in names or answers.

/// The DNS header (12), the question's type and class (4), an answer record without its data
/// (compressed owner, type, class, TTL, data length: 12).
const BARE_PACKET: usize = 12 + 4;
const BARE_RECORD: usize = 12;
/// An OPT record (the device's query and the resolver's answer carry one with EDNS).
const OPT: usize = 11;
/// A poll's name as short as a poll can be: one 10-character label (6 bytes in base32: a
/// session and an offset) under `zt.test`, 1 + 10 + 9 = 20 octets; it makes the 512-byte
/// answer carry the notes' 462 bytes.
const POLL_NAME_OCTETS: usize = 20;

/// Octets of a header-less name carrying `n` bytes: base32 characters in 63-character labels
/// under the zone (W'(n) of docs/PROTOCOL.md 19.8).
fn bare_name_octets(zone: &Zone, n: usize) -> usize {
    let chars = (n * 8).div_ceil(5);
    zone.wire_len() + chars + chars.div_ceil(63)
}

/// The most bytes a header-less name carries (151 under `zt.test`).
fn bare_per_query(zone: &Zone) -> usize {
    (1..=255)
        .rev()
        .find(|&n| bare_name_octets(zone, n) <= MAX_NAME_OCTETS)
        .unwrap_or(1)
}

/// Bytes one TXT record carries in an answer of at most `limit` bytes to a question of `q`
/// octets: R = limit − 28 − opt − q, the largest p with p + max(1, ⌈p/255⌉) ≤ R (228 for a
/// full-length name and 462 for a poll at 512 bytes without EDNS, as the notes measured).
fn bare_capacity(limit: usize, q: usize, opt: usize) -> usize {
    let room = limit.saturating_sub(BARE_PACKET + BARE_RECORD + opt + q);
    (0..=room)
        .rev()
        .find(|&p| p + p.div_ceil(255).max(1) <= room)
        .unwrap_or(0)
}

/// A header-less answer of `k` bytes to a question of `q` octets.
fn bare_answer_bytes(q: usize, k: usize, opt: usize) -> usize {
    BARE_PACKET + q + BARE_RECORD + opt + k + k.div_ceil(255).max(1)
}

/// The minimum for one exchange.
#[derive(Debug, Clone, Copy, Default)]
struct Minimum {
    /// Queries: the chunks up, then the polls the first answer left.
    queries: u64,
    /// The same with the first answer's capacity fixed at a full-length name's.
    queries_full_first: u64,
    /// Bytes of those queries and their answers (device and resolver).
    bytes: u64,
}

/// min(m, r): ⌈m/U⌉ + ⌈max(0, r − cap(L, W'(last chunk))) / cap(L, poll)⌉ queries; bytes:
/// each query (header, name, type, class, OPT) and its answer (an empty NOERROR for a chunk
/// but the last; a TXT record of the response's next bytes for the last chunk and the polls).
fn minimum(zone: &Zone, m: usize, r: usize, limit: usize, edns: bool) -> Minimum {
    let opt = if edns { OPT } else { 0 };
    let per_query = bare_per_query(zone);
    let chunks = m.div_ceil(per_query).max(1);
    let last = m - (chunks - 1) * per_query;
    let mut bytes = 0;
    for i in 0..chunks {
        let q = bare_name_octets(zone, if i + 1 == chunks { last } else { per_query });
        bytes += BARE_PACKET + q + opt;
        if i + 1 < chunks {
            bytes += BARE_PACKET + q + opt;
        }
    }
    let q_last = bare_name_octets(zone, last);
    let first = bare_capacity(limit, q_last, opt).min(r);
    bytes += bare_answer_bytes(q_last, first, opt);
    let poll = bare_capacity(limit, POLL_NAME_OCTETS, opt).max(1);
    let mut rest = r - first;
    let mut polls = 0;
    while rest > 0 {
        let k = rest.min(poll);
        bytes += BARE_PACKET + POLL_NAME_OCTETS + opt + bare_answer_bytes(POLL_NAME_OCTETS, k, opt);
        rest -= k;
        polls += 1;
    }
    let full = bare_capacity(limit, MAX_NAME_OCTETS, opt);
    let polls_full_first = r.saturating_sub(full).div_ceil(poll);
    Minimum {
        queries: (chunks + polls) as u64,
        queries_full_first: (chunks + polls_full_first) as u64,
        bytes: bytes as u64,
    }
}

// ---------------------------------------------------------------------------------------
// The world: the setup service on SQLite, the device and its radio.

/// The server side of one run.
struct World {
    service: Arc<SetupService<SqliteStore, SoftwareSigner>>,
    pinned: PinnedKeys,
    _dir: tempfile::TempDir,
}

/// The wall clock as the protocol's instant (the DNS server uses it too).
fn wall_now() -> Instant {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Instant(u64::try_from(ms).unwrap_or(u64::MAX))
}

impl World {
    /// A new SQLite store (WAL, durable commits) with the server keys, one account with the
    /// home network, and fixture device 1 imported and registered with its PIN.
    async fn start(keys: &Fleet) -> Result<World, BenchError> {
        let now = wall_now();
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(
            dir.path().join("zerotouch.db"),
            &StaticDataKey([7; 32]),
            SqliteOptions::default(),
        )
        .await?;
        let (ring, pinned) = keys.stored_ring(&store, now).await?;
        let account = store.create_account("owner", now).await?;
        store
            .add_network(fixtures::network(account, "home"), now)
            .await?;
        let device = fixtures::device(1);
        store.import_devices(vec![device.clone()]).await?;
        let registrar = store
            .add_registrar("shop", RegistrarCredential::ApiTokenHash([9; 32]), now)
            .await?;
        let service = SetupService::new(store, ring, ServiceConfig::default());
        let label = BarcodePayload {
            fingerprint: KeyFingerprint::of(&device.key_id, 16)?,
            device_type: device.device_type,
            product_number: device.product_number,
            pin: Some(Pin::new(fixtures::PIN)?),
        };
        service
            .register_device(registrar, &label, account, ReassociationProof::None, now)
            .await?;
        Ok(World {
            service: Arc::new(service),
            pinned,
            _dir: dir,
        })
    }
}

/// Fixture device 1: public-key identity, its PIN, DNS on both networks.
fn device(
    pinned: &PinnedKeys,
) -> Result<DeviceSession<SoftwareSigner, MemoryDeviceState>, BenchError> {
    let key = SoftwareSigner::new(fixtures::device_key(1));
    let config = DeviceConfig {
        transport: Transport::Dns,
        home_transport: Transport::Dns,
        identity: DeviceIdentityRef::PublicKey(key.public_key().to_spki_der()),
        pin: Some(Pin::new(fixtures::PIN)?),
        radio_bands: 3,
        radio_security: 3,
        suites: device_suites(),
        retry: RetryPolicy {
            initial_timeout_ms: 3000,
            max_timeout_ms: 6000,
            max_retransmits: 3,
            max_sessions: 3,
        },
    };
    Ok(DeviceSession::new(
        config,
        pinned.clone(),
        key,
        MemoryDeviceState::new(),
    )?)
}

/// Sees the bench's networks and joins `home`.
struct HomeRadio;

impl Radio for HomeRadio {
    async fn scan(&mut self) -> Vec<ReportedNetwork> {
        scan()
    }

    async fn join(&mut self, ssid: &[u8], _security: u8, _passphrase: &Passphrase) -> JoinResult {
        if ssid == b"home" {
            JoinResult::Joined
        } else {
            JoinResult::Failed(zerotouch_device::JoinFailure::NetworkGone)
        }
    }

    async fn leave(&mut self) {}
}

// ---------------------------------------------------------------------------------------
// Exchanges: DNS and in process, each recording the sizes of the messages it carries.

/// What one exchange carried and cost.
#[derive(Debug, Clone, Copy)]
struct Carried {
    path: Path,
    /// Bytes of the device's message.
    request: usize,
    /// Bytes of the server's response (0 if the exchange failed).
    response: usize,
    /// Queries it took (the cookie request included for the first; a probe, if any, for the
    /// first whose response called for it).
    queries: u64,
    /// Bytes of those queries and their answers.
    bytes: u64,
    /// How long it took.
    time: Duration,
}

/// Queries and bytes on the wire so far.
trait WireCount {
    fn wire(&self) -> (u64, u64);
}

impl WireCount for DnsExchange {
    fn wire(&self) -> (u64, u64) {
        let w = self.wire_stats();
        (w.queries, w.query_bytes + w.answer_bytes)
    }
}

/// An exchange that records every message's size and what it cost on the wire.
struct Recording<X> {
    inner: X,
    carried: Vec<Carried>,
}

impl<X: Exchange + WireCount> Exchange for Recording<X> {
    type Error = X::Error;

    async fn exchange(&mut self, path: Path, message: Vec<u8>) -> Result<Vec<u8>, X::Error> {
        let (queries, bytes) = self.inner.wire();
        let request = message.len();
        let started = Clock::now();
        let result = self.inner.exchange(path, message).await;
        let (queries_after, bytes_after) = self.inner.wire();
        self.carried.push(Carried {
            path,
            request,
            response: result.as_ref().map_or(0, Vec::len),
            queries: queries_after - queries,
            bytes: bytes_after - bytes,
            time: started.elapsed(),
        });
        result
    }
}

/// The reference: `SetupService::handle` called directly, as the DNS server calls it.
struct InProcess {
    service: Arc<SetupService<SqliteStore, SoftwareSigner>>,
    rng: ChaCha20Rng,
}

impl WireCount for InProcess {
    fn wire(&self) -> (u64, u64) {
        (0, 0)
    }
}

impl Exchange for InProcess {
    type Error = std::convert::Infallible;

    async fn exchange(&mut self, _path: Path, message: Vec<u8>) -> Result<Vec<u8>, Self::Error> {
        let from = TransportIdentity::Direct {
            transport: Transport::Dns,
            client_key: None,
        };
        Ok(self
            .service
            .handle(&message, &from, wall_now(), &mut self.rng)
            .await)
    }
}

// ---------------------------------------------------------------------------------------
// Runs.

#[derive(Debug, Clone, Copy)]
struct Case {
    title: &'static str,
    edns: Option<usize>,
}

const CASES: [Case; 2] = [
    Case {
        title: "no EDNS (512)",
        edns: None,
    },
    Case {
        title: "EDNS 1232 (lazy probe)",
        edns: Some(1232),
    },
];

/// One session over DNS.
struct DnsRun {
    time: Duration,
    limit: usize,
    queries: u64,
    tcp_queries: u64,
    query_bytes: u64,
    answer_bytes: u64,
    tunnel_queries: u64,
    retries: u64,
    cookies: u64,
    probes: u64,
    polls: u64,
    carried: Vec<Carried>,
    minimum: Vec<Minimum>,
    upstream: Upstream,
}

impl DnsRun {
    fn bytes(&self) -> u64 {
        self.query_bytes + self.answer_bytes
    }

    fn min_queries(&self) -> u64 {
        self.minimum.iter().map(|m| m.queries).sum()
    }

    fn min_queries_full_first(&self) -> u64 {
        self.minimum.iter().map(|m| m.queries_full_first).sum()
    }

    fn min_bytes(&self) -> u64 {
        self.minimum.iter().map(|m| m.bytes).sum()
    }
}

/// Runs fixture device 1 through flow 1 from first boot over `exchange` and times it; fails
/// unless the session completed on the home network.
async fn session<X: Exchange>(
    world: &World,
    exchange: &mut X,
    seed: u8,
) -> Result<Duration, BenchError> {
    let mut device = device(&world.pinned)?;
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(seed));
    let started = Clock::now();
    let run = drive(
        &mut device,
        Trigger::FirstBoot,
        exchange,
        &mut HomeRadio,
        &mut rng,
        SESSION_BOUND,
    )
    .await;
    let time = started.elapsed();
    match run {
        Ok(run)
            if run.joined.as_deref() == Some(&b"home"[..])
                && run
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::Complete { .. })) =>
        {
            Ok(time)
        }
        other => Err(format!("the session did not complete: {other:?}").into()),
    }
}

async fn dns_run(
    binary: &FsPath,
    keys: &Fleet,
    zone: &Zone,
    case: Case,
    seed: u8,
) -> Result<DnsRun, BenchError> {
    let world = World::start(keys).await?;
    let server = serve_dns(
        DnsServerConfig::new(zone.clone(), (Ipv4Addr::LOCALHOST, 0).into()),
        Arc::clone(&world.service),
    )
    .await?;
    let relay = CountingRelay::start(server.local_addr()).await?;
    let dir = tempfile::tempdir()?;
    let unbound = LocalResolver::start(
        binary,
        dir.path(),
        ZONE,
        relay.addr,
        ResolverOptions::default(),
    )
    .await?;
    let mut tunnel = TunnelConfig::new(zone.clone());
    tunnel.edns_limit = case.edns.map(AnswerLimit::from_bytes).transpose()?;
    let mut exchange = Recording {
        inner: DnsExchange::with_seed(DnsClientConfig::new(unbound.addr(), tunnel), [seed; 32]),
        carried: Vec::new(),
    };
    let time = match session(&world, &mut exchange, seed).await {
        Ok(time) => time,
        Err(e) => {
            let log = unbound.log();
            return Err(format!("{}: {e}\nunbound's log:\n{log}", case.title).into());
        }
    };
    unbound.stop().await;
    server.shutdown().await;
    let dns = &exchange.inner;
    let limit = dns.tunnel().answer_limit().bytes();
    let (wire, tunnel) = (dns.wire_stats(), dns.tunnel_stats());
    // The minimum answers at the size the device advertises: a design without a header
    // needs no probe to use it (the tunnel's own limit stays 512 until a probe pays).
    let min_limit = case.edns.unwrap_or(512);
    let minimum = exchange
        .carried
        .iter()
        .map(|c| minimum(zone, c.request, c.response, min_limit, case.edns.is_some()))
        .collect();
    Ok(DnsRun {
        time,
        limit,
        queries: wire.queries,
        tcp_queries: wire.tcp_queries,
        query_bytes: wire.query_bytes,
        answer_bytes: wire.answer_bytes,
        tunnel_queries: tunnel.queries,
        retries: tunnel.retries,
        cookies: tunnel.cookies,
        probes: tunnel.probes,
        polls: tunnel.polls,
        carried: exchange.carried,
        minimum,
        upstream: Upstream::count(zone, &relay.seen()),
    })
}

/// The same session in process; returns its time and the message sizes.
async fn in_process_run(keys: &Fleet, seed: u8) -> Result<(Duration, Vec<Carried>), BenchError> {
    let world = World::start(keys).await?;
    let mut exchange = Recording {
        inner: InProcess {
            service: Arc::clone(&world.service),
            rng: ChaCha20Rng::seed_from_u64(1000 + u64::from(seed)),
        },
        carried: Vec::new(),
    };
    let time = session(&world, &mut exchange, seed).await?;
    Ok((time, exchange.carried))
}

// ---------------------------------------------------------------------------------------
// Report.

/// Median (the mean of the middle two for an even count), least and most.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let at = |i: usize| v.get(i).copied().unwrap_or(f64::NAN);
    let median = if n % 2 == 1 {
        at(n / 2)
    } else {
        (at(n / 2 - 1) + at(n / 2)) / 2.0
    };
    (median, at(0), at(n.saturating_sub(1)))
}

/// "median" or "median (least-most)" of counts.
fn counts(runs: &[DnsRun], f: impl Fn(&DnsRun) -> u64) -> String {
    let values: Vec<f64> = runs.iter().map(|r| f(r) as f64).collect();
    let (median, lo, hi) = spread(&values);
    if lo == hi {
        format!("{median}")
    } else {
        format!("{median} ({lo}-{hi})")
    }
}

fn ratios(runs: &[DnsRun], f: impl Fn(&DnsRun) -> f64) -> f64 {
    spread(&runs.iter().map(f).collect::<Vec<_>>()).0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "not met" }
}

fn row(label: &str, cells: &[String]) {
    print!("{label:<44}");
    for c in cells {
        print!(" {c:>22}");
    }
    println!();
}

fn path_name(path: Path) -> &'static str {
    match path {
        Path::Setup => "setup",
        Path::Home => "home",
    }
}

fn print_exchanges(case: Case, run: &DnsRun) {
    println!();
    println!(
        "{} - the messages of run 1 (answer limit {} B):",
        case.title, run.limit
    );
    println!(
        "  {:>2} {:<6} {:>10} {:>11} {:>8} {:>8} {:>10} {:>10} {:>8}",
        "#", "path", "request B", "response B", "queries", "minimum", "wire B", "min B", "ms"
    );
    for (i, (c, m)) in run.carried.iter().zip(&run.minimum).enumerate() {
        println!(
            "  {:>2} {:<6} {:>10} {:>11} {:>8} {:>8} {:>10} {:>10} {:>8.1}",
            i + 1,
            path_name(c.path),
            c.request,
            c.response,
            c.queries,
            m.queries,
            c.bytes,
            m.bytes,
            ms(c.time)
        );
    }
    println!(
        "  (the first exchange's queries include the cookie request; with EDNS, a probe comes only before the polls of a\n   response that 1232-byte answers would take in fewer polls)"
    );
}

fn print_report(zone: &Zone, runs: &[(Case, Vec<DnsRun>)], reference: &[Duration]) {
    let pacing = TunnelConfig::new(zone.clone()).pacing_ms;
    let reference_ms = spread(&reference.iter().map(|d| ms(*d)).collect::<Vec<_>>());
    println!();
    row(
        "",
        &runs
            .iter()
            .map(|(c, _)| c.title.to_owned())
            .collect::<Vec<_>>(),
    );
    let each = |label: &str, f: &dyn Fn(&[DnsRun]) -> String| {
        row(label, &runs.iter().map(|(_, r)| f(r)).collect::<Vec<_>>());
    };
    each("answer limit in use (B)", &|r| {
        counts(r, |x| x.limit as u64)
    });
    each("messages (exchanges)", &|r| {
        counts(r, |x| x.carried.len() as u64)
    });
    each("request bytes (sum)", &|r| {
        counts(r, |x| x.carried.iter().map(|c| c.request as u64).sum())
    });
    each("response bytes (sum)", &|r| {
        counts(r, |x| x.carried.iter().map(|c| c.response as u64).sum())
    });
    println!("device -> resolver");
    each("  queries sent (wire_stats)", &|r| counts(r, |x| x.queries));
    each("    of them over TCP", &|r| counts(r, |x| x.tcp_queries));
    each("  tunnel queries (tunnel_stats)", &|r| {
        counts(r, |x| x.tunnel_queries)
    });
    each("    retries", &|r| counts(r, |x| x.retries));
    each("    cookies", &|r| counts(r, |x| x.cookies));
    each("    EDNS probes", &|r| counts(r, |x| x.probes));
    each("    polls", &|r| counts(r, |x| x.polls));
    each("  query bytes", &|r| counts(r, |x| x.query_bytes));
    each("  answer bytes", &|r| counts(r, |x| x.answer_bytes));
    each("  bytes on the wire (query + answer)", &|r| {
        counts(r, DnsRun::bytes)
    });
    println!("unbound -> server (counted in the relay)");
    each("  queries", &|r| counts(r, |x| x.upstream.total));
    each("  QNAME-minimisation probes", &|r| {
        counts(r, |x| x.upstream.probe_count())
    });
    each("    for intermediate names", &|r| {
        counts(r, |x| x.upstream.probe_count() - x.upstream.probes_whole)
    });
    each("    for the whole name, before its TXT", &|r| {
        counts(r, |x| x.upstream.probes_whole)
    });
    each("    by type (mean)", &|r| {
        let mut types = BTreeMap::<String, u64>::new();
        for x in r {
            for (t, n) in &x.upstream.probes {
                *types.entry(t.clone()).or_default() += n;
            }
        }
        types
            .iter()
            .map(|(t, n)| format!("{t} {:.1}", *n as f64 / r.len() as f64))
            .collect::<Vec<_>>()
            .join(", ")
    });
    each("    answered NODATA", &|r| {
        counts(r, |x| x.upstream.probes_nodata)
    });
    each("  TXT queries (whole names)", &|r| {
        counts(r, |x| x.upstream.txt_count())
    });
    each("    cookie/probe/data/last/poll", &|r| {
        ["cookie", "probe", "data", "last", "poll"]
            .iter()
            .map(|k| counts(r, |x| x.upstream.txt.get(k).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("/")
    });
    each("  re-sent by unbound: probes", &|r| {
        counts(r, |x| x.upstream.resent_probes)
    });
    each("  re-sent by unbound: TXT", &|r| {
        counts(r, |x| x.upstream.resent_txt)
    });
    each("  over TCP", &|r| counts(r, |x| x.upstream.tcp));
    each("  other (apex, unreadable)", &|r| {
        counts(r, |x| x.upstream.other)
    });
    println!("minimum for the same messages (header-less design)");
    each("  queries", &|r| counts(r, DnsRun::min_queries));
    each("  queries, first answer at cap(L, 255)", &|r| {
        counts(r, DnsRun::min_queries_full_first)
    });
    each("  bytes (query + answer)", &|r| {
        counts(r, DnsRun::min_bytes)
    });
    each("ratio queries ours / minimum", &|r| {
        format!(
            "{:.2}",
            ratios(r, |x| x.queries as f64 / x.min_queries() as f64)
        )
    });
    each("ratio bytes ours / minimum", &|r| {
        format!(
            "{:.2}",
            ratios(r, |x| x.bytes() as f64 / x.min_bytes() as f64)
        )
    });
    each("session time, median (ms)", &|r| {
        format!("{:.1}", spread(&times(r)).0)
    });
    each("  least - most (ms)", &|r| {
        let (_, lo, hi) = spread(&times(r));
        format!("{lo:.1} - {hi:.1}")
    });
    each("  pacing floor (queries - 1) x pacing (ms)", &|r| {
        counts(r, |x| x.queries.saturating_sub(1) * pacing)
    });
    each("reference in process, median (ms)", &|_| {
        format!("{:.1}", reference_ms.0)
    });
    each("time ratio DNS / in process", &|r| {
        format!("{:.1}", spread(&times(r)).0 / reference_ms.0)
    });
    println!();
    for (case, r) in runs {
        let q = ratios(r, |x| x.queries as f64 / x.min_queries() as f64);
        let b = ratios(r, |x| x.bytes() as f64 / x.min_bytes() as f64);
        let t = spread(&times(r)).0;
        println!("goals, {}:", case.title);
        println!(
            "  ratio <= {RATIO_GOAL} (queries ours / minimum {q:.2}): {}",
            met(q <= RATIO_GOAL)
        );
        println!(
            "  ratio <= {RATIO_GOAL} (bytes ours / minimum {b:.2}): {}",
            met(b <= RATIO_GOAL)
        );
        println!(
            "  session < {} s on loopback (median {:.3} s): {}",
            TIME_GOAL.as_secs(),
            t / 1e3,
            met(t < ms(TIME_GOAL))
        );
    }
    let u = bare_per_query(zone);
    println!();
    println!("The minimum, per message of m request bytes and r response bytes, answer limit L:");
    println!(
        "  queries = ceil(m / {u}) + max(0, ceil((r - cap(L, W'(last chunk))) / cap(L, {POLL_NAME_OCTETS})))"
    );
    println!(
        "  {u} B a query: the most a name under {ZONE} carries without a header, W'(n) = {} + c + ceil(c/63) <= 255, c = ceil(8n/5)",
        zone.wire_len()
    );
    println!(
        "  cap(L, q) = largest p with p + max(1, ceil(p/255)) <= L - 28 - opt - q (DNS header 12, question type and class 4,"
    );
    println!(
        "    answer record 12; opt = 11 for the OPT record with EDNS, else 0); a poll's name is {POLL_NAME_OCTETS} octets (one 10-character label)"
    );
    for (limit, opt) in [(512, 0), (1232, OPT)] {
        println!(
            "  L = {limit}{}: cap(L, 255) = {} B (answer to a full-length name), cap(L, {POLL_NAME_OCTETS}) = {} B a poll",
            if opt > 0 { " with EDNS" } else { ", no EDNS" },
            bare_capacity(limit, MAX_NAME_OCTETS, opt),
            bare_capacity(limit, POLL_NAME_OCTETS, opt),
        );
    }
    println!(
        "  bytes: each of those queries (12 + name + 4 + opt) and its answer (an empty NOERROR for a chunk but the last,"
    );
    println!(
        "    12 + name + 4 + 12 + opt + TXT data for the last chunk and each poll); no cookie, no probe, no retry"
    );
}

fn times(runs: &[DnsRun]) -> Vec<f64> {
    runs.iter().map(|r| ms(r.time)).collect()
}

async fn bench(binary: &FsPath, runs: usize) -> Result<(), BenchError> {
    let zone = Zone::new(ZONE)?;
    let keys = Fleet::new(0, 1)?;
    let started = Clock::now();
    println!(
        "dns_session: flow 1 over DNS through {} ({}) on loopback",
        binary.display(),
        unbound_version(binary)
    );
    println!(
        "  unbound: stub zone {ZONE} -> counting relay -> serve_dns; use-caps-for-id: yes, qname-minimisation: yes"
    );
    println!(
        "  store: embedded SQLite (WAL, durable commits); device: fixture 1, public-key identity, PIN"
    );
    let tunnel = TunnelConfig::new(zone.clone());
    println!(
        "  tunnel: TunnelConfig::new defaults (first timeout {} ms, pacing {} ms, {} attempts); device retry 3 s",
        tunnel.initial_timeout_ms, tunnel.pacing_ms, tunnel.max_attempts
    );
    println!(
        "  {runs} runs a case, each on a fresh world: new SQLite store with the device registered once, new DNS"
    );
    println!(
        "  server, relay and unbound; only the session (drive from first boot to Complete) is timed"
    );
    let mut results = Vec::new();
    for case in CASES {
        let mut case_runs = Vec::with_capacity(runs);
        for i in 0..runs {
            let seed = u8::try_from(i + 1).unwrap_or(u8::MAX);
            case_runs.push(dns_run(binary, &keys, &zone, case, seed).await?);
        }
        results.push((case, case_runs));
    }
    let mut reference = Vec::with_capacity(runs);
    let mut reference_sizes = Vec::new();
    for i in 0..runs {
        let seed = u8::try_from(i + 1).unwrap_or(u8::MAX);
        let (time, carried) = in_process_run(&keys, seed).await?;
        reference.push(time);
        reference_sizes = carried;
    }
    for (case, case_runs) in &results {
        if let Some(first) = case_runs.first() {
            print_exchanges(*case, first);
        }
    }
    println!();
    println!(
        "reference, in process (device session <-> SetupService::handle, same store, same drive):"
    );
    println!(
        "  {} messages, {} request bytes, {} response bytes",
        reference_sizes.len(),
        reference_sizes.iter().map(|c| c.request).sum::<usize>(),
        reference_sizes.iter().map(|c| c.response).sum::<usize>()
    );
    print_report(&zone, &results, &reference);
    println!();
    println!("total run time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> Result<(), BenchError> {
    let Ok(binary) = find_unbound() else {
        println!(
            "dns_session: unbound is not installed (apt-get install unbound; scripts/test.sh installs it): no figures"
        );
        return Ok(());
    };
    let runs = std::env::var("ZT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_RUNS);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench(&binary, runs))
}
