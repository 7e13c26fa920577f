#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Several `zerotouch serve` processes on one PostgreSQL: any process continues any session,
//! over HTTPS and over DNS; an identical DNS retransmission answered by the other process gets
//! identical bytes; one nonce raced against both processes at once is used once; and a store
//! that cannot be reached stops `serve` from starting, saying which store.
//!
//! Each test takes its own database in a throwaway PostgreSQL on loopback
//! (`zerotouch_store_suite::postgres`); the servers listen on 127.0.0.1 port 0, and nothing
//! leaves loopback.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng as _;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::net::UdpSocket;
use zerotouch_cli::simulated_device::{Link, NetworkInRange, SimulatedDevice, run_over};
use zerotouch_cli::{load_device, read_entries};
use zerotouch_core::flow1::{DeviceIdentityRef, DeviceReport, ReportedNetwork, seq_of};
use zerotouch_core::{
    Envelope, ErrorCode, MessageTag, Passphrase, PinnedKeyBundle, PinnedKeys, RustCryptoProvider,
    Signer as _, SoftwareSigner, Transport,
};
use zerotouch_device::Path;
use zerotouch_device_tokio::{DeviceRun, Exchange};
use zerotouch_dns::client::{DnsClientConfig, DnsExchange};
use zerotouch_dns::{
    AnswerPayload, AnswerStatus, NameKind, Query, QueryHeader, QueryKind, TunnelConfig, TunnelId,
    Zone,
};
use zerotouch_http::{DirectHttps, ServerEndpoint, ServerTrust, device_tls_config};
use zerotouch_store_suite::postgres::ThrowawayPostgres;
use zerotouch_testkit::raw_client::{Client, code_of};

/// The zone both processes serve in the DNS test.
const ZONE: &str = "zt.test";
/// Longest one device's run may take.
const RUN_BOUND: Duration = Duration::from_secs(60);

/// A multi-threaded runtime for a test's asynchronous part (the rest runs the binary).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// 32 bytes from the operating system.
fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    seed
}

/// A database of its own in the throwaway PostgreSQL (shared by this file's tests while they
/// run), with a deployment of `count` devices on it: the cluster, the database's name, and
/// the deployment.
fn deployment_on_postgres(count: u32) -> (Arc<ThrowawayPostgres>, String, Deployment) {
    let pg = ThrowawayPostgres::shared();
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap().to_string();
    let d = Deployment::on(count, Some(&url));
    (pg, db, d)
}

/// Server processes A (on the deployment's data directory) and B (on a copy of it), both on
/// the deployment's PostgreSQL, with `extra` arguments.
fn two_processes(d: &Deployment, extra: &[&str]) -> [Server; 2] {
    let b_data = d.copy_data_dir("data-b");
    let a = d.serve(&d.data, extra);
    let b = d.serve(&b_data, extra);
    for s in [&a, &b] {
        let store = s.first["store"].as_str().unwrap_or_default();
        assert!(store.starts_with("PostgreSQL at 127.0.0.1:"), "{}", s.first);
    }
    assert_ne!(a.addr, b.addr);
    [a, b]
}

/// Registers every device of the batch to the deployment's account through the registrar
/// API, alternately on process A and on process B.
fn register_alternately(d: &Deployment, servers: &[Server; 2]) {
    let token = d.path("token");
    std::fs::write(&token, TOKEN).unwrap();
    for (i, e) in d.entries().iter().enumerate() {
        let mut args = d.register_args(&servers[i % 2], &token);
        args.push(e["label"].as_str().unwrap().to_string());
        let v = d.json(&strs(&args));
        assert_eq!(v["result"], "added", "{v}");
    }
}

/// The batch's devices as the factory made them, each with the keys its firmware pins.
fn devices(d: &Deployment) -> Vec<(SimulatedDevice, PinnedKeys)> {
    let batch = d.path("batch");
    let bundle = PinnedKeyBundle::decode(
        &std::fs::read(d.path("pinned.cbor")).unwrap(),
        &RustCryptoProvider,
    )
    .unwrap();
    read_entries(&batch)
        .unwrap()
        .iter()
        .map(|e| {
            let device = load_device(&batch, e).unwrap();
            let pinned = bundle
                .pinned_keys_for(device.device_type, device.serial)
                .unwrap();
            (device, pinned)
        })
        .collect()
}

/// The home network in range, with the passphrase its access point takes: a device given
/// another passphrase fails to join.
fn home() -> Vec<NetworkInRange> {
    vec![NetworkInRange {
        ssid: b"home".to_vec(),
        passphrase: Some(Passphrase::new(PASSPHRASE.as_bytes()).unwrap()),
    }]
}

/// The device's HTTPS client to `server`: mutual TLS with its certificate, the server checked
/// against the deployment's server CA (without dates, as a device without a clock does).
fn https_to(d: &Deployment, device: &SimulatedDevice, server: &Server) -> DirectHttps {
    let ca = CertificateDer::from_pem_file(d.data.join("tls/ca.crt.pem")).unwrap();
    let tls = device_tls_config(
        device.certificate_der.clone(),
        Arc::clone(&device.signer),
        ServerTrust::Ca {
            ca_der: ca.as_ref().to_vec(),
            check_dates: false,
        },
    )
    .unwrap();
    let endpoint = ServerEndpoint::new(server.addr.parse().unwrap(), "localhost".to_string());
    DirectHttps::new(endpoint.clone(), endpoint, tls)
}

fn tag_of(bytes: &[u8]) -> Option<MessageTag> {
    Envelope::decode(bytes).ok().map(|e| e.header.tag)
}

/// Every device is associated to the deployment's account and reported joining "home", as
/// the CLI reads the store; and the database holds one association per device.
fn assert_associated_and_joined(pg: &ThrowawayPostgres, db: &str, d: &Deployment) {
    let entries = d.entries();
    for e in &entries {
        let key_id = e["key_id"].as_str().unwrap();
        let outcomes = d.json(&["outcomes", key_id]);
        let list = outcomes["outcomes"].as_array().unwrap();
        assert!(
            list.iter().any(|o| o["outcome"] == "joined"),
            "{key_id}: {outcomes}"
        );
    }
    let associations = pg
        .psql(
            db,
            &format!(
                "SELECT count(DISTINCT device) FROM associations WHERE account_id = {}",
                d.account
            ),
        )
        .unwrap();
    assert_eq!(associations, entries.len().to_string());
}

// ---------------------------------------------------------------------------------------------
// HTTPS

/// An exchange that sends each request to the other process than the one before, and notes
/// which process got which message.
struct Alternating<X> {
    processes: [X; 2],
    next: usize,
    /// (process, tag) of every request, in order.
    sent: Vec<(usize, Option<MessageTag>)>,
}

impl<X: Exchange> Exchange for Alternating<X> {
    type Error = X::Error;

    async fn exchange(&mut self, path: Path, message: Vec<u8>) -> Result<Vec<u8>, X::Error> {
        let to = self.next;
        self.next = 1 - to;
        self.sent.push((to, tag_of(&message)));
        self.processes[to].exchange(path, message).await
    }
}

#[test]
fn two_processes_continue_each_others_sessions_over_https() {
    const DEVICES: u32 = 6;
    let (pg, db, d) = deployment_on_postgres(DEVICES);
    let servers = two_processes(&d, &[]);
    register_alternately(&d, &servers);

    let logs: Vec<Vec<(usize, Option<MessageTag>)>> = runtime().block_on(async {
        let mut logs = Vec::new();
        for (i, (device, pinned)) in devices(&d).into_iter().enumerate() {
            // Half the sessions start on A, half on B.
            let mut alternating = Alternating {
                processes: [
                    https_to(&d, &device, &servers[0]),
                    https_to(&d, &device, &servers[1]),
                ],
                next: i % 2,
                sent: Vec::new(),
            };
            let link = Link {
                exchange: &mut alternating,
                transport: Transport::Https,
                identity: DeviceIdentityRef::Certificate(device.certificate_der.clone()),
            };
            let run = run_over(&device, pinned, link, &home(), None, RUN_BOUND)
                .await
                .unwrap_or_else(|e| panic!("device {}: {e}", device.serial));
            assert_joined_home(&run, device.serial);
            logs.push(alternating.sent);
        }
        logs
    });

    let mut per_process = [0usize; 2];
    for (serial, sent) in logs.iter().enumerate() {
        for (to, _) in sent {
            per_process[*to] += 1;
        }
        // Consecutive messages of one session went to different processes: each process
        // continued the session where the other left it.
        assert!(
            sent.windows(2).all(|w| w[0].0 != w[1].0),
            "device {serial}: {sent:?}"
        );
        let to = |tag: MessageTag| {
            sent.iter()
                .find(|(_, t)| *t == Some(tag))
                .unwrap_or_else(|| panic!("device {serial} sent no {tag:?}: {sent:?}"))
                .0
        };
        // The process that checked the credential request is not the one that made the
        // session and its nonce.
        assert_ne!(
            to(MessageTag::Hello),
            to(MessageTag::CredentialRequest),
            "{sent:?}"
        );
    }
    let total: usize = per_process.iter().sum();
    assert!(
        per_process.iter().all(|n| *n >= total / 3),
        "requests per process: {per_process:?}"
    );
    assert!(
        per_process.iter().all(|n| *n >= DEVICES as usize),
        "requests per process: {per_process:?}"
    );
    assert_associated_and_joined(&pg, &db, &d);
}

fn assert_joined_home(run: &DeviceRun, serial: u64) {
    assert_eq!(
        run.joined.as_deref(),
        Some(&b"home"[..]),
        "device {serial}: {run:?}"
    );
    assert!(run.revocation_checked, "device {serial}: {run:?}");
}

// ---------------------------------------------------------------------------------------------
// DNS

/// One query the forwarder relayed: to which process, the bytes asked, the bytes answered.
#[derive(Debug, Clone)]
struct Relayed {
    process: usize,
    query: Vec<u8>,
    answer: Vec<u8>,
}

/// The device's resolver: a UDP forwarder on loopback that sends each query to the other
/// process than the one before and relays the answer back, keeping both.
struct Forwarder {
    addr: SocketAddr,
    relayed: Arc<Mutex<Vec<Relayed>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    async fn start(upstream: [SocketAddr; 2]) -> Forwarder {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let relayed: Arc<Mutex<Vec<Relayed>>> = Arc::default();
        let record = Arc::clone(&relayed);
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, client)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let query = buf[..n].to_vec();
                let process = next;
                next = 1 - next;
                let (socket, record) = (Arc::clone(&socket), Arc::clone(&record));
                tokio::spawn(async move {
                    // An unanswered query is the device's to retry, as with a real resolver.
                    if let Some(answer) = udp_ask(upstream[process], &query).await {
                        record.lock().unwrap().push(Relayed {
                            process,
                            query,
                            answer: answer.clone(),
                        });
                        let _ = socket.send_to(&answer, client).await;
                    }
                });
            }
        });
        Forwarder {
            addr,
            relayed,
            task,
        }
    }

    fn relayed(&self) -> Vec<Relayed> {
        self.relayed.lock().unwrap().clone()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends `query` to `server` over UDP from a socket of its own; its answer, if one comes
/// within 5 s.
async fn udp_ask(server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket.send_to(query, server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

/// The tunnel query a DNS query packet asks (`None` for anything else).
fn tunnel_query(packet: &[u8], zone: &Zone) -> Option<Query> {
    let message = hickory_proto::op::Message::from_vec(packet).ok()?;
    let name = message.queries.first()?.name().to_ascii();
    match Query::classify(&name, zone) {
        Ok(NameKind::Query(q)) => Some(q),
        _ => None,
    }
}

/// A poll (as the device would send it) for the first piece of the response to the message
/// whose last chunk `last` carried, in a DNS query with id `id`.
fn poll_packet(last: &QueryHeader, zone: &Zone, id: u16) -> Vec<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode};
    let poll = Query {
        header: QueryHeader {
            kind: QueryKind::Poll,
            attempt: 0,
            position: 0,
            ..*last
        },
        data: Vec::new(),
    };
    let name = hickory_proto::rr::Name::from_ascii(poll.to_name(zone).unwrap()).unwrap();
    let mut packet = Message::new(id, MessageType::Query, OpCode::Query);
    packet.metadata.recursion_desired = true;
    packet.add_query(hickory_proto::op::Query::query(
        name,
        hickory_proto::rr::RecordType::TXT,
    ));
    packet.to_vec().unwrap()
}

/// The tunnel payload of a DNS answer's TXT record.
fn txt_payload(answer: &[u8]) -> AnswerPayload {
    let message = hickory_proto::op::Message::from_vec(answer).unwrap();
    let Some(hickory_proto::rr::RData::TXT(txt)) = message.answers.first().map(|r| &r.data) else {
        panic!("no TXT record: {message:?}")
    };
    AnswerPayload::from_strings(&txt.txt_data).unwrap()
}

fn truncated(answer: &[u8]) -> bool {
    hickory_proto::op::Message::from_vec(answer)
        .map(|m| m.metadata.truncation)
        .unwrap_or(false)
}

#[test]
fn two_processes_continue_each_others_sessions_over_dns() {
    const DEVICES: u32 = 2;
    let (pg, db, d) = deployment_on_postgres(DEVICES);
    let servers = two_processes(&d, &["--dns-listen", "127.0.0.1:0", "--dns-zone", ZONE]);
    let dns: [SocketAddr; 2] = [0, 1].map(|i| {
        servers[i].first["dns_listen"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    });
    register_alternately(&d, &servers);
    let zone = Zone::new(ZONE).unwrap();

    runtime().block_on(async {
        let forwarder = Forwarder::start(dns).await;
        for (device, pinned) in devices(&d) {
            // The tunnel's defaults: no EDNS, so every answer fits 512 bytes and none is
            // truncated (a truncated answer would send the client to TCP, which this
            // forwarder does not offer: asserted below). But a first wait of 5 s, not 1 s: a
            // retry sent while the other process is still answering the first attempt may be
            // refused as a replay there, and a refusal is never stored (it must not shadow the
            // real response), so its bytes would not come back on a later copy. On a loaded
            // machine that race is real; the copies this test sends are made below, at a
            // moment of its choosing.
            let mut tunnel = TunnelConfig::new(zone.clone());
            tunnel.initial_timeout_ms = 5_000;
            let mut exchange =
                DnsExchange::with_seed(DnsClientConfig::new(forwarder.addr, tunnel), seed());
            let link = Link {
                exchange: &mut exchange,
                transport: Transport::Dns,
                identity: DeviceIdentityRef::PublicKey(device.signer.public_key().to_spki_der()),
            };
            let run = run_over(&device, pinned, link, &home(), None, RUN_BOUND)
                .await
                .unwrap_or_else(|e| panic!("device {}: {e}", device.serial));
            assert_joined_home(&run, device.serial);
            assert_eq!(exchange.wire_stats().tcp_queries, 0);
        }
        let relayed = forwarder.relayed();
        drop(forwarder);
        assert!(!relayed.iter().any(|r| truncated(&r.answer)));

        // Each device's tunnel was served by both processes, query after query.
        let mut by_tunnel: BTreeMap<TunnelId, BTreeSet<usize>> = BTreeMap::new();
        let mut per_process = [0usize; 2];
        for r in &relayed {
            let q = tunnel_query(&r.query, &zone).expect("a tunnel query");
            by_tunnel
                .entry(q.header.tunnel)
                .or_default()
                .insert(r.process);
            per_process[r.process] += 1;
        }
        assert_eq!(by_tunnel.len(), DEVICES as usize, "{by_tunnel:?}");
        assert!(by_tunnel.values().all(|p| p.len() == 2), "{by_tunnel:?}");
        assert!(
            per_process.iter().all(|n| *n >= 3 * DEVICES as usize),
            "queries per process: {per_process:?}"
        );

        // An identical retransmission answered by the other process gets identical bytes
        // (the query's bytes, its DNS id among them, are the same, so the whole answer must
        // be). Every kind but cookie requests: a cookie is a MAC under the key of the hour it
        // is asked in, so a copy asked after the hour turns gets the next hour's cookie, and
        // cookie requests count against a limit each process keeps in memory. Chunks, last
        // chunks (the response's first piece) and polls (its later pieces) come from the store.
        let mut replayed: BTreeMap<QueryKind, usize> = BTreeMap::new();
        for r in &relayed {
            let q = tunnel_query(&r.query, &zone).unwrap();
            if q.header.kind == QueryKind::Cookie {
                continue;
            }
            let other = 1 - r.process;
            let again = udp_ask(dns[other], &r.query)
                .await
                .unwrap_or_else(|| panic!("process {other} did not answer {:?}", q.header));
            assert_eq!(
                again, r.answer,
                "{:?} answered by process {} then by process {other}",
                q.header, r.process
            );
            *replayed.entry(q.header.kind).or_default() += 1;
        }
        // Each device sent at least four messages (hello, request, outcome, revocation query):
        // that many last chunks, whose answers carry the responses' first pieces.
        assert!(
            replayed.get(&QueryKind::LastData).copied().unwrap_or(0) >= 4 * DEVICES as usize,
            "{replayed:?}"
        );
        eprintln!("replayed to the other process: {replayed:?}");

        // Every response fit the answer to its last chunk (no EDNS, 512 bytes), so the device
        // never polled; a poll for each stored response, asked of both processes, reads the
        // same bytes from the store too.
        let mut polls = 0;
        for r in &relayed {
            let q = tunnel_query(&r.query, &zone).unwrap();
            if q.header.kind != QueryKind::LastData {
                continue;
            }
            let packet = poll_packet(&q.header, &zone, u16::try_from(polls).unwrap());
            let from_a = udp_ask(dns[0], &packet).await.unwrap();
            let from_b = udp_ask(dns[1], &packet).await.unwrap();
            assert_eq!(from_a, from_b, "{:?}", q.header);
            let payload = txt_payload(&from_a);
            assert_eq!(payload.status, AnswerStatus::Data, "{payload:?}");
            // The whole response, as the answer to the last chunk carried it.
            let first = txt_payload(&r.answer);
            assert_eq!(first.status, AnswerStatus::Data, "{first:?}");
            assert_eq!(usize::from(first.length), first.body.len());
            assert_eq!(payload.body, first.body);
            polls += 1;
        }
        assert_eq!(polls, replayed[&QueryKind::LastData]);
    });
    assert_associated_and_joined(&pg, &db, &d);
}

// ---------------------------------------------------------------------------------------------
// One nonce, two processes, at once

/// What the device reports: the home network, and its PIN when the server asks for it.
fn report(device: &SimulatedDevice, pin_required: bool) -> DeviceReport {
    DeviceReport {
        pin: if pin_required {
            device.pin.clone()
        } else {
            None
        },
        networks: vec![ReportedNetwork {
            ssid: b"home".to_vec(),
            signal_loss_db: 40,
            band: 1,
            channel: 6,
            security: 3,
        }],
        radio_bands: 1,
        radio_security: 3,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn one_nonce_replayed_against_both_processes_at_once_succeeds_once() {
    const SESSIONS: usize = 5;
    let (pg, db, d) = deployment_on_postgres(1);
    let servers = two_processes(&d, &[]);
    register_alternately(&d, &servers);
    let (device, pinned) = devices(&d).remove(0);

    let sessions = runtime().block_on(async {
        let mut a = https_to(&d, &device, &servers[0]);
        let mut b = https_to(&d, &device, &servers[1]);
        let mut client = Client::with_identity(
            SoftwareSigner::new(device.signer.signing_key().clone()),
            DeviceIdentityRef::Certificate(device.certificate_der.clone()),
            &pinned,
            Transport::Https,
            ChaCha20Rng::from_seed(seed()),
        );
        // Both connections open before the races, so neither request waits on a handshake:
        // B answers a hello of its own (a session that goes no further).
        let warm = b.exchange(Path::Setup, client.hello()).await.unwrap();
        client.accept_proof(&warm, &pinned);

        let mut sessions = Vec::new();
        for round in 0..SESSIONS {
            let proof = a.exchange(Path::Setup, client.hello()).await.unwrap();
            let proof = client.accept_proof(&proof, &pinned);
            let report = report(&device, proof.pin_required);
            // Two requests for the same session and the same server nonce, each freshly
            // sealed and signed: different bytes, both valid.
            let first = client.request(&report);
            let first_key = client.session_key.take();
            let second = client.request(&report);
            let second_key = client.session_key.take();
            assert_ne!(first, second);
            // Which request goes to which process changes from round to round.
            let (to_a, to_b) = if round % 2 == 0 {
                (&first, &second)
            } else {
                (&second, &first)
            };
            let (from_a, from_b) = tokio::join!(
                a.exchange(Path::Setup, to_a.clone()),
                b.exchange(Path::Setup, to_b.clone())
            );
            let answers = [(to_a, from_a.unwrap()), (to_b, from_b.unwrap())];
            let won: Vec<usize> = (0..2)
                .filter(|i| tag_of(&answers[*i].1) == Some(MessageTag::CredentialResponse))
                .collect();
            assert_eq!(
                won.len(),
                1,
                "round {round}: exactly one process may answer with credentials: {:?}",
                answers.each_ref().map(|(_, a)| (tag_of(a), code_of(a)))
            );
            let (winner, lost) = (won[0], 1 - won[0]);
            assert_eq!(
                code_of(&answers[lost].1),
                Some(ErrorCode::NotAuthorized),
                "round {round}: the other is refused as a replay"
            );
            // The winner's credentials open with the session key of the request it answered.
            let (request, response) = &answers[winner];
            client.session_key = if *request == &first {
                first_key
            } else {
                second_key
            };
            let (credentials, opened) = client.open_response(request, response, &pinned);
            assert_eq!(credentials.entries[0].ssid, b"home");
            assert_eq!(opened[0].as_slice(), PASSPHRASE.as_bytes());
            sessions.push((client.sid, winner));
        }
        sessions
    });

    eprintln!(
        "process that won each race: {:?}",
        sessions
            .iter()
            .map(|(_, w)| ["A", "B"][*w])
            .collect::<Vec<_>>()
    );
    // In the database, each session's nonce was used once, one response is kept for its
    // credential request, and one network report was recorded.
    let request_seq = seq_of(MessageTag::CredentialRequest);
    for (sid, _) in &sessions {
        let sid = hex(&sid.0);
        let one = |sql: String| {
            let n = pg.psql(&db, &sql).unwrap();
            assert_eq!(n, "1", "{sql}");
        };
        one(format!(
            "SELECT count(*) FROM nonces WHERE session = '\\x{sid}' AND used"
        ));
        one(format!(
            "SELECT count(*) FROM responses WHERE session = '\\x{sid}' AND seq = {request_seq}"
        ));
        one(format!(
            "SELECT count(*) FROM scan_reports WHERE session = '\\x{sid}'"
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// A store that cannot be reached

#[test]
fn serve_refuses_to_start_when_postgres_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    json(&data, &["init", "--server-name", "localhost"]);
    let pg = ThrowawayPostgres::shared();
    // Nothing listens on a port just freed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (url, named) in [
        (
            pg.url("no_such_database")
                .replace("zt@", "zt:hunter2-secret@"),
            format!("127.0.0.1:{}/no_such_database", pg.port()),
        ),
        (
            format!("postgres://zt:hunter2-secret@127.0.0.1:{closed}/zt"),
            format!("127.0.0.1:{closed}/zt"),
        ),
    ] {
        let started = std::time::Instant::now();
        let out = zt_on(&data, Some(&url))
            .args(["serve", "--listen", "127.0.0.1:0", "--exit-after", "5"])
            .assert()
            .failure()
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("PostgreSQL") && stderr.contains(&named),
            "{url}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        // The password in the URL is never printed.
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(out.stdout.is_empty(), "it printed an address: {out:?}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
    }
}
