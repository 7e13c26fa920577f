#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Faults under load (issue 13): a server process killed with SIGKILL, and PostgreSQL killed,
//! while devices are provisioned continuously.
//!
//! A load driver in this test registers each device of a factory batch through the registrar
//! API and then runs the real device session over HTTPS with mutual TLS. Its requests are
//! spread over the server processes round robin and go to the next process when one refuses
//! the connection or cuts it, as a load balancer would; a device whose request no process
//! answered retransmits on its own timer. Each device comes from its own loopback address, as
//! devices in homes do, so the per-address limits of one process never see the whole load.
//!
//! Afterwards the database must hold exactly what the devices were told: every device told
//! "done" has its association (and its audit entry) and one "joined" outcome, whose setup
//! session is finished and whose nonce is used; nothing else was written.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Deployment, PASSPHRASE, Server, TOKEN};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use zeroize::Zeroizing;
use zerotouch_cli::simulated_device::{Link, NetworkInRange, SimulatedDevice, run_over};
use zerotouch_cli::{DataDir, load_device, read_entries};
use zerotouch_core::flow1::DeviceIdentityRef;
use zerotouch_core::{
    Body, Envelope, ErrorMessage, Message, MessageTag, Passphrase, PinnedKeyBundle, PinnedKeys,
    RustCryptoProvider, Transport,
};
use zerotouch_device_tokio::Exchange;
use zerotouch_http::{
    DirectHttps, HttpError, RegistrarClient, RegistrationRequest, RegistrationResponse,
    RegistrationResult, ServerEndpoint, ServerTrust, client_tls_config, device_tls_config,
};
use zerotouch_store_suite::postgres::{ClusterOptions, ThrowawayPostgres};

/// Devices in the batch.
const DEVICES: usize = 48;
/// The last devices of the batch wait until the fault is over, so the load certainly goes on
/// after it (and a restarted process certainly gets traffic again).
const HELD: usize = 12;
/// Shops (registrars) selling the devices.
const SHOPS: usize = 8;
/// Devices being provisioned at once.
const IN_FLIGHT: usize = 8;
/// A new device arrives this often.
const ARRIVAL: Duration = Duration::from_millis(50);
/// Every device must be done within this bound from its arrival; a device that was answered
/// "internal error, retry later" while PostgreSQL was down waits up to the session's longest
/// timeout (32 s) before it asks again, hence the margin.
const DEVICE_BOUND: Duration = Duration::from_secs(55);
/// The whole load must be done within this bound.
const LOAD_BOUND: Duration = Duration::from_secs(75);

/// What the load balancer saw of one server process.
#[derive(Default)]
struct Tally {
    /// Requests it answered, error answers included.
    answered: AtomicU64,
    /// Of those, error answers: a protocol error message or an HTTP error status.
    errors: AtomicU64,
    /// Requests it did not answer (connection refused or cut, or no answer in time).
    failed: AtomicU64,
    /// Requests it answered while the fault was on.
    answered_in_fault: AtomicU64,
    /// Of those, error answers.
    errors_in_fault: AtomicU64,
}

/// The load balancer in front of the server processes.
struct Balancer {
    /// Each process's current address (a restarted process listens on a new port).
    addrs: Mutex<Vec<SocketAddr>>,
    next: AtomicUsize,
    tallies: Vec<Tally>,
    /// Set while a fault (a dead process, a dead database) is on.
    fault: AtomicBool,
    server_name: String,
    /// The server's TLS CA (DER).
    server_ca: Vec<u8>,
}

impl Balancer {
    fn new(d: &Deployment, servers: &[&Server]) -> Arc<Balancer> {
        let data = DataDir::new(&d.data);
        Arc::new(Balancer {
            addrs: Mutex::new(servers.iter().map(|s| s.addr.parse().unwrap()).collect()),
            next: AtomicUsize::new(0),
            tallies: servers.iter().map(|_| Tally::default()).collect(),
            fault: AtomicBool::new(false),
            server_name: data.settings().unwrap().server_name,
            server_ca: CertificateDer::from_pem_file(data.tls_ca_path())
                .unwrap()
                .as_ref()
                .to_vec(),
        })
    }

    fn addr(&self, slot: usize) -> SocketAddr {
        self.addrs.lock().unwrap()[slot]
    }

    /// Points `slot` at its restarted process.
    fn set_addr(&self, slot: usize, server: &Server) {
        self.addrs.lock().unwrap()[slot] = server.addr.parse().unwrap();
    }

    fn set_fault(&self, on: bool) {
        self.fault.store(on, Ordering::SeqCst);
    }

    /// The processes to try for one request: the next in turn first, then the others.
    fn order(&self) -> Vec<usize> {
        let n = self.tallies.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(|i| (first + i) % n).collect()
    }

    fn answered(&self, slot: usize, error: bool) {
        let t = &self.tallies[slot];
        t.answered.fetch_add(1, Ordering::SeqCst);
        t.errors.fetch_add(u64::from(error), Ordering::SeqCst);
        if self.fault.load(Ordering::SeqCst) {
            t.answered_in_fault.fetch_add(1, Ordering::SeqCst);
            t.errors_in_fault
                .fetch_add(u64::from(error), Ordering::SeqCst);
        }
    }

    fn failed(&self, slot: usize) {
        self.tallies[slot].failed.fetch_add(1, Ordering::SeqCst);
    }

    fn count(&self, slot: usize, what: fn(&Tally) -> &AtomicU64) -> u64 {
        what(&self.tallies[slot]).load(Ordering::SeqCst)
    }

    fn endpoint(&self, slot: usize, local_ip: IpAddr) -> ServerEndpoint {
        let mut e = ServerEndpoint::new(self.addr(slot), self.server_name.clone());
        e.local_ip = Some(local_ip);
        e.timeout = Duration::from_secs(5);
        e
    }

    /// Sends `request` to process `slot` as the registrar holding `token`, from `local_ip`.
    async fn register_at(
        &self,
        slot: usize,
        request: &RegistrationRequest,
        token: &str,
        local_ip: IpAddr,
    ) -> Result<RegistrationResponse, HttpError> {
        let trust = ServerTrust::Ca {
            ca_der: self.server_ca.clone(),
            check_dates: true,
        };
        let tls = client_tls_config(None, trust).unwrap();
        let token = Some(Zeroizing::new(token.to_string()));
        RegistrarClient::new(self.endpoint(slot, local_ip), tls, token)
            .register(request)
            .await
    }

    /// Registers `label` to `account` through the registrar API, from `local_ip`: the next
    /// process if one refuses the connection, again a little later if all answered with an
    /// error (a store that is down), until `deadline`.
    async fn register(
        &self,
        label: &str,
        account: i64,
        token: &str,
        local_ip: IpAddr,
        deadline: Instant,
    ) -> Result<Registered, String> {
        let request = registration(label, account);
        let mut attempts = 0;
        let mut why = String::new();
        while Instant::now() < deadline {
            for slot in self.order() {
                attempts += 1;
                match self.register_at(slot, &request, token, local_ip).await {
                    Ok(r) => {
                        self.answered(slot, false);
                        return Ok(Registered {
                            result: r.result,
                            attempts,
                        });
                    }
                    // Too many at once, or the store is down: ask again a little later.
                    Err(
                        e @ HttpError::Status {
                            status: 429 | 500..,
                            ..
                        },
                    ) => {
                        self.answered(slot, true);
                        why = e.to_string();
                        break;
                    }
                    Err(e @ HttpError::Status { .. }) => {
                        return Err(format!("registration refused: {e}"));
                    }
                    Err(e) => {
                        self.failed(slot);
                        why = e.to_string();
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!("not registered before the deadline: {why}"))
    }
}

/// A device's exchange through the balancer: each message to the next process in turn, and to
/// the other one when that one does not answer. Connections are kept per process.
struct Balanced {
    balancer: Arc<Balancer>,
    connect: Box<dyn Fn(ServerEndpoint) -> DirectHttps + Send + Sync>,
    local_ip: IpAddr,
    channels: Vec<Option<(SocketAddr, DirectHttps)>>,
    /// Each request and what became of it, for the failure message.
    trail: Vec<String>,
    started: Instant,
}

/// A message's tag, and an error message's code and retry hint.
fn describe(bytes: &[u8]) -> String {
    match Envelope::decode(bytes) {
        Ok(e) => match &e.body {
            Body::Plain(body) if e.header.tag == MessageTag::Error => {
                match <ErrorMessage as Message>::decode_body(body) {
                    Ok(m) => format!("Error {:?} retry {} s", m.code, m.retry_after_s),
                    Err(_) => "unreadable error".into(),
                }
            }
            _ => format!("{:?}", e.header.tag),
        },
        Err(_) => "unreadable".into(),
    }
}

impl Exchange for Balanced {
    type Error = String;

    async fn exchange(
        &mut self,
        path: zerotouch_device::Path,
        message: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let mut why = Vec::new();
        let sent = describe(&message);
        for slot in self.balancer.order() {
            let at = self.started.elapsed().as_millis();
            let endpoint = self.balancer.endpoint(slot, self.local_ip);
            let kept = &mut self.channels[slot];
            if kept
                .as_ref()
                .is_none_or(|(addr, _)| *addr != endpoint.address)
            {
                *kept = Some((endpoint.address, (self.connect)(endpoint)));
            }
            let (_, channel) = kept.as_mut().unwrap();
            match channel.exchange(path, message.clone()).await {
                Ok(answer) => {
                    let error =
                        Envelope::decode(&answer).is_ok_and(|e| e.header.tag == MessageTag::Error);
                    self.balancer.answered(slot, error);
                    let got = describe(&answer);
                    self.trail.push(format!("{at} ms {sent} -> {slot}: {got}"));
                    return Ok(answer);
                }
                Err(e) => {
                    self.balancer.failed(slot);
                    self.trail.push(format!("{at} ms {sent} -> {slot}: {e}"));
                    why.push(format!("process {slot}: {e}"));
                }
            }
        }
        Err(why.join("; "))
    }
}

/// A shop's registration of the device labelled `label` to `account`.
fn registration(label: &str, account: i64) -> RegistrationRequest {
    RegistrationRequest {
        label: label.to_string(),
        account,
        pin: None,
        owner_consent: None,
    }
}

/// A registration as the driver saw it.
#[derive(Debug)]
struct Registered {
    result: RegistrationResult,
    /// Requests it took (a process that refused the connection counts).
    attempts: u32,
}

/// What the driver saw of one device.
#[derive(Debug)]
struct Provisioned {
    /// Its identity key id, hex.
    key_id: String,
    registered: Result<Registered, String>,
    /// Done: joined the home network, outcome acknowledged, revocation checked.
    run: Result<(), String>,
    /// When not done: each request and what became of it.
    trail: Vec<String>,
}

impl Provisioned {
    fn done(&self) -> bool {
        self.registered.is_ok() && self.run.is_ok()
    }
}

/// A device of the batch as the driver runs it.
struct Arrival {
    device: SimulatedDevice,
    label: String,
    pinned: PinnedKeys,
    /// The API token of the shop that sells it.
    shop: String,
    /// Where it connects from.
    local_ip: IpAddr,
}

/// Registers the device and runs it through flow 1 behind the balancer.
async fn provision(balancer: Arc<Balancer>, arrival: Arrival, account: i64) -> Provisioned {
    let Arrival {
        device,
        label,
        pinned,
        shop,
        local_ip,
    } = arrival;
    let deadline = Instant::now() + DEVICE_BOUND;
    let key_id = hex::encode(device.key_id.0);
    let registered = balancer
        .register(&label, account, &shop, local_ip, deadline)
        .await;
    if let Err(e) = &registered {
        let run = Err(format!("not run: {e}"));
        return Provisioned {
            key_id,
            registered,
            run,
            trail: Vec::new(),
        };
    }
    let tls = device_tls_config(
        device.certificate_der.clone(),
        Arc::clone(&device.signer),
        ServerTrust::Ca {
            ca_der: balancer.server_ca.clone(),
            check_dates: false,
        },
    )
    .unwrap();
    let processes = balancer.tallies.len();
    let mut exchange = Balanced {
        balancer,
        connect: Box::new(move |e: ServerEndpoint| {
            DirectHttps::new(e.clone(), e, Arc::clone(&tls))
        }),
        local_ip,
        channels: (0..processes).map(|_| None).collect(),
        trail: Vec::new(),
        started: Instant::now(),
    };
    let link = Link {
        exchange: &mut exchange,
        transport: Transport::Https,
        identity: DeviceIdentityRef::Certificate(device.certificate_der.clone()),
    };
    // The radio checks the delivered passphrase: joining means the right one arrived.
    let networks = [NetworkInRange {
        ssid: b"home".to_vec(),
        passphrase: Some(Passphrase::new(PASSPHRASE.as_bytes()).unwrap()),
    }];
    let bound = deadline.saturating_duration_since(Instant::now());
    let run = match run_over(&device, pinned, link, &networks, None, bound).await {
        Ok(r) if r.joined.as_deref() == Some(b"home".as_slice()) => Ok(()),
        Ok(r) => Err(format!("joined {:?}", r.joined)),
        Err(e) => Err(e.to_string()),
    };
    let trail = if run.is_ok() {
        Vec::new()
    } else {
        exchange.trail
    };
    Provisioned {
        key_id,
        registered,
        run,
        trail,
    }
}

/// The load: every device of the deployment's batch arrives in turn (every `ARRIVAL`, at
/// most `IN_FLIGHT` at once, the last `HELD` only after [`Load::release`]) and is registered
/// and provisioned.
struct Load {
    runtime: tokio::runtime::Runtime,
    tasks: Vec<tokio::task::JoinHandle<Provisioned>>,
    done: Arc<AtomicUsize>,
    release: tokio::sync::watch::Sender<bool>,
    deadline: Instant,
}

impl Load {
    fn start(d: &Deployment, balancer: &Arc<Balancer>) -> Load {
        let batch = d.path("batch");
        let entries = read_entries(&batch).unwrap();
        assert_eq!(entries.len(), DEVICES);
        let bundle = PinnedKeyBundle::decode(
            &std::fs::read(d.path("pinned.cbor")).unwrap(),
            &RustCryptoProvider,
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let done = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let shops = shops(d);
        let mut tasks = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let device = load_device(&batch, entry).unwrap();
            let pinned = bundle
                .pinned_keys_for(device.device_type, device.serial)
                .unwrap();
            let octet = u8::try_from(10 + i).unwrap();
            let arrival = Arrival {
                device,
                label: entry.label.clone(),
                pinned,
                shop: shops[i % shops.len()].clone(),
                local_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet)),
            };
            let (balancer, permits, done, mut released) = (
                Arc::clone(balancer),
                Arc::clone(&permits),
                Arc::clone(&done),
                released.clone(),
            );
            let account = d.account;
            let at = ARRIVAL * u32::try_from(i).unwrap();
            tasks.push(runtime.spawn(async move {
                tokio::time::sleep(at).await;
                if i >= DEVICES - HELD {
                    let _ = released.wait_for(|r| *r).await;
                }
                let _permit = permits.acquire_owned().await.unwrap();
                let p = provision(balancer, arrival, account).await;
                if p.done() {
                    done.fetch_add(1, Ordering::SeqCst);
                }
                p
            }));
        }
        Load {
            runtime,
            tasks,
            done,
            release,
            deadline: Instant::now() + LOAD_BOUND,
        }
    }

    fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until `n` devices are done; fails past the load's bound.
    fn wait_done(&self, n: usize) {
        while self.done() < n {
            assert!(
                Instant::now() < self.deadline,
                "only {} of the {n} devices awaited were done within the load's bound",
                self.done()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lets the held devices arrive.
    fn release(&self) {
        self.release.send_replace(true);
    }

    /// Waits for every device (within the load's bound) and returns what the driver saw.
    fn finish(self) -> Vec<Provisioned> {
        self.release();
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let (tasks, done) = (self.tasks, self.done);
        let provisioned: Vec<Provisioned> = self.runtime.block_on(async move {
            let mut all = Vec::new();
            for task in tasks {
                match tokio::time::timeout_at(deadline, task).await {
                    Ok(p) => all.push(p.unwrap()),
                    Err(_) => panic!(
                        "the load did not finish within {LOAD_BOUND:?}: {} of {DEVICES} devices \
                         done",
                        done.load(Ordering::SeqCst)
                    ),
                }
            }
            all
        });
        let not_done: Vec<String> = provisioned
            .iter()
            .filter(|p| !p.done())
            .map(|p| {
                format!(
                    "{}: {:?} {:?}\n    {}",
                    p.key_id,
                    p.registered,
                    p.run,
                    p.trail.join("\n    ")
                )
            })
            .collect();
        assert!(
            not_done.is_empty(),
            "devices not done within {DEVICE_BOUND:?}:\n{}",
            not_done.join("\n")
        );
        provisioned
    }
}

/// The rows the checks read, each column as text (key ids and sessions in lower-case hex).
struct Tables {
    /// (device, account)
    associations: Vec<(String, i64)>,
    /// (action, device, account), in log order.
    audit: Vec<(i64, String, i64)>,
    /// (device, session, kind)
    outcomes: Vec<(String, String, i64)>,
    /// (id, version)
    sessions: Vec<(String, i64)>,
    /// (session, used)
    nonces: Vec<(String, bool)>,
}

/// Where the tables are read from.
enum Db<'a> {
    Postgres(&'a ThrowawayPostgres, &'a str),
    Sqlite(rusqlite::Connection),
}

impl Db<'_> {
    fn hex(&self, column: &str) -> String {
        match self {
            Db::Postgres(..) => format!("encode({column}, 'hex')"),
            Db::Sqlite(_) => format!("lower(hex({column}))"),
        }
    }

    fn int(&self, column: &str) -> String {
        match self {
            Db::Postgres(..) => format!("{column}::int"),
            Db::Sqlite(_) => column.to_string(),
        }
    }

    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        match self {
            Db::Postgres(pg, db) => pg
                .psql(db, sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| l.split('|').map(String::from).collect())
                .collect(),
            Db::Sqlite(c) => {
                let mut statement = c.prepare(sql).unwrap();
                let columns = statement.column_count();
                statement
                    .query_map([], |row| {
                        (0..columns)
                            .map(|i| {
                                Ok(match row.get::<_, rusqlite::types::Value>(i)? {
                                    rusqlite::types::Value::Integer(n) => n.to_string(),
                                    rusqlite::types::Value::Text(t) => t,
                                    other => panic!("{sql}: unexpected {other:?}"),
                                })
                            })
                            .collect::<rusqlite::Result<Vec<String>>>()
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
        }
    }

    fn tables(&self) -> Tables {
        let n = |s: &str| -> i64 { s.parse().unwrap() };
        let (hex, int) = (|c: &str| self.hex(c), |c: &str| self.int(c));
        Tables {
            associations: self
                .rows(&format!(
                    "SELECT {}, account_id FROM associations",
                    hex("device")
                ))
                .into_iter()
                .map(|r| (r[0].clone(), n(&r[1])))
                .collect(),
            audit: self
                .rows(&format!(
                    "SELECT action, {}, account_id FROM association_audit ORDER BY seq",
                    hex("device")
                ))
                .into_iter()
                .map(|r| (n(&r[0]), r[1].clone(), n(&r[2])))
                .collect(),
            outcomes: self
                .rows(&format!(
                    "SELECT {}, {}, kind FROM outcomes",
                    hex("device"),
                    hex("session")
                ))
                .into_iter()
                .map(|r| (r[0].clone(), r[1].clone(), n(&r[2])))
                .collect(),
            sessions: self
                .rows(&format!("SELECT {}, version FROM sessions", hex("id")))
                .into_iter()
                .map(|r| (r[0].clone(), n(&r[1])))
                .collect(),
            nonces: self
                .rows(&format!(
                    "SELECT {}, {} FROM nonces",
                    hex("session"),
                    int("used")
                ))
                .into_iter()
                .map(|r| (r[0].clone(), n(&r[1]) != 0))
                .collect(),
        }
    }
}

const AUDIT_ADD: i64 = 1;
const OUTCOME_JOINED: i64 = 1;
/// A setup session's version once its credential request was served: the hello wrote 1, the
/// request's claim 2, its finish 3 (a claim left by a killed process is finished by the
/// request's second run, or by a retransmission answered from the stored response).
const SESSION_FINISHED: i64 = 3;

/// Every device the driver saw done has its association, audit entry and joined outcome; the
/// outcome's setup session is finished and its nonce used; nothing else was written, and the
/// registrations the driver saw add up.
fn assert_nothing_lost(t: &Tables, provisioned: &[Provisioned], account: i64) {
    let done: BTreeSet<&str> = provisioned
        .iter()
        .filter(|p| p.done())
        .map(|p| p.key_id.as_str())
        .collect();
    assert_eq!(done.len(), provisioned.len(), "every device done");

    // Associations: one per device told done, to the account; nothing else.
    let mut associated: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (device, acc) in &t.associations {
        associated.entry(device.as_str()).or_default().push(*acc);
    }
    assert_eq!(
        associated.keys().copied().collect::<BTreeSet<_>>(),
        done,
        "associated devices"
    );
    assert!(
        associated.values().all(|a| a == &[account]),
        "one association each, to account {account}: {associated:?}"
    );

    // The audit log: exactly one "add" per association, with its device and account.
    assert_eq!(
        t.audit.len(),
        t.associations.len(),
        "one audit entry per association and nothing else: {:?}",
        t.audit
    );
    for (device, acc) in &t.associations {
        let entries = t
            .audit
            .iter()
            .filter(|(action, d, a)| *action == AUDIT_ADD && d == device && a == acc)
            .count();
        assert_eq!(entries, 1, "audit entries for {device} on {acc}");
    }

    // Outcomes: exactly one "joined" per device told done; each from a finished session whose
    // nonce was used.
    assert_eq!(t.outcomes.len(), done.len(), "outcomes: {:?}", t.outcomes);
    let sessions: BTreeMap<&str, i64> = t.sessions.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    for device in &done {
        let mine: Vec<_> = t.outcomes.iter().filter(|o| o.0 == *device).collect();
        assert_eq!(mine.len(), 1, "outcomes of {device}: {mine:?}");
        let (_, session, kind) = mine[0];
        assert_eq!(*kind, OUTCOME_JOINED, "outcome of {device}");
        assert_eq!(
            sessions.get(session.as_str()),
            Some(&SESSION_FINISHED),
            "the setup session {session} of {device}'s outcome: absent or not finished"
        );
        // Exactly one of its nonces was used: the one its credential request consumed. (A
        // hello whose process died after issuing a nonce but before keeping its answer leaves
        // that nonce unused; it expires with no session naming it.)
        let used = t
            .nonces
            .iter()
            .filter(|(s, used)| s == session && *used)
            .count();
        assert_eq!(used, 1, "used nonces of {device}'s session {session}");
    }

    // Registrations: each device added once; "already registered" only for a retry after a
    // connection cut (the first request had been committed).
    for p in provisioned {
        let r = p.registered.as_ref().unwrap();
        match r.result {
            RegistrationResult::Added => {}
            RegistrationResult::AlreadyRegistered => assert!(
                r.attempts > 1,
                "{} already registered at its first request",
                p.key_id
            ),
            RegistrationResult::Reassociated => panic!("{} reassociated", p.key_id),
        }
    }
    let abandoned = t.sessions.len() - done.len();
    eprintln!(
        "{} associations, {} audit entries, {} outcomes, {} sessions ({abandoned} not finished \
         by an outcome: abandoned and started again)",
        t.associations.len(),
        t.audit.len(),
        t.outcomes.len(),
        t.sessions.len()
    );
}

/// The API tokens of the shops that sell the devices: the deployment's registrar and
/// `SHOPS - 1` more (a registrar's requests are rate-limited, and one shop does not sell a
/// whole batch in a few seconds).
fn shops(d: &Deployment) -> Vec<String> {
    let mut tokens = vec![TOKEN.to_string()];
    for k in 1..SHOPS {
        let token = format!("shop-{k}-token-0123456789");
        let name = format!("shop-{k}");
        common::json_on(
            &d.data,
            d.store.as_deref(),
            &["registrars", "add", "--name", &name, "--token-file", "-"],
            Some(&token),
        );
        tokens.push(token);
    }
    tokens
}

/// Kills `server` with SIGKILL and waits until it is gone.
fn sigkill(server: &mut Server) {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

fn assert_alive(server: &mut Server, name: &str) {
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "serve process {name} exited"
    );
}

/// A PostgreSQL cluster of the caller's own (a test may kill it) with database `db`, a
/// deployment on it, and two serve processes A and B (each with its copy of the data
/// directory) behind a balancer.
fn two_processes_on_postgres(
    db: &str,
) -> (ThrowawayPostgres, Deployment, Server, Server, Arc<Balancer>) {
    let pg = ThrowawayPostgres::start(ClusterOptions::default());
    let url = pg.create_database(db);
    let d = Deployment::on(u32::try_from(DEVICES).unwrap(), Some(&url));
    let data_b = d.copy_data_dir("data-b");
    let a = d.serve(&d.data, &[]);
    let b = d.serve(&data_b, &[]);
    let balancer = Balancer::new(&d, &[&a, &b]);
    (pg, d, a, b, balancer)
}

#[test]
fn killing_one_of_two_processes_mid_load_loses_nothing() {
    let started = Instant::now();
    let (pg, d, mut a, mut b, balancer) = two_processes_on_postgres("kill_one");
    let load = Load::start(&d, &balancer);

    load.wait_done(DEVICES / 3);
    balancer.set_fault(true);
    sigkill(&mut a);
    // B alone carries the load: some devices finish while A is dead.
    load.wait_done(load.done() + 3);
    a = d.serve(&d.data, &[]);
    balancer.set_addr(0, &a);
    balancer.set_fault(false);
    let a_before = balancer.count(0, |t| &t.answered);
    load.release();
    let provisioned = load.finish();

    assert_alive(&mut a, "A (restarted)");
    assert_alive(&mut b, "B");
    assert!(
        balancer.count(0, |t| &t.failed) > 0,
        "requests went to the dead process A and were passed to B"
    );
    assert!(
        balancer.count(1, |t| &t.answered_in_fault) > 0,
        "B served while A was dead"
    );
    assert!(
        balancer.count(0, |t| &t.answered) > a_before,
        "the restarted A served again"
    );
    assert_nothing_lost(
        &Db::Postgres(&pg, "kill_one").tables(),
        &provisioned,
        d.account,
    );
    eprintln!(
        "answered by A {} (not answered {}), by B {} ({} while A was dead); {:?}",
        balancer.count(0, |t| &t.answered),
        balancer.count(0, |t| &t.failed),
        balancer.count(1, |t| &t.answered),
        balancer.count(1, |t| &t.answered_in_fault),
        started.elapsed()
    );
}

#[test]
fn killing_the_only_process_on_the_embedded_store_loses_nothing_committed() {
    let started = Instant::now();
    let d = Deployment::new(u32::try_from(DEVICES).unwrap());
    let mut server = d.serve(&d.data, &[]);
    let balancer = Balancer::new(&d, &[&server]);
    let load = Load::start(&d, &balancer);

    load.wait_done(DEVICES / 3);
    balancer.set_fault(true);
    sigkill(&mut server);
    let done_when_killed = load.done();
    // Nothing answers for a moment: requests fail, devices retransmit on their timers.
    std::thread::sleep(Duration::from_millis(500));
    server = d.serve(&d.data, &[]);
    balancer.set_addr(0, &server);
    balancer.set_fault(false);
    let provisioned = load.finish();

    assert_alive(&mut server, "restarted");
    assert!(
        balancer.count(0, |t| &t.failed) > 0,
        "requests found the process dead"
    );
    drop(server);
    let db = rusqlite::Connection::open_with_flags(
        DataDir::new(&d.data).database_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    assert_nothing_lost(&Db::Sqlite(db).tables(), &provisioned, d.account);
    // The operator's view agrees: one "add" per registered device in the audit log, and each
    // device's outcome.
    let audit = d.json(&["audit", "--limit", "1000"]);
    let log = audit["entries"].as_array().unwrap();
    assert_eq!(log.len(), DEVICES, "{audit}");
    assert!(log.iter().all(|e| e["action"] == "add"), "{audit}");
    let first = &provisioned[0].key_id;
    assert_eq!(
        d.json(&["outcomes", first.as_str()])["outcomes"][0]["outcome"],
        "joined"
    );
    eprintln!(
        "{done_when_killed} done when killed; requests not answered {}; {:?}",
        balancer.count(0, |t| &t.failed),
        started.elapsed()
    );
}

#[test]
fn postgres_restarting_under_load_fails_requests_cleanly_and_they_succeed_on_retry() {
    let started = Instant::now();
    let (pg, d, mut a, mut b, balancer) = two_processes_on_postgres("pg_restart");
    let load = Load::start(&d, &balancer);
    let label = read_entries(&d.path("batch")).unwrap()[0].label.clone();

    load.wait_done(DEVICES / 3);
    balancer.set_fault(true);
    pg.kill();
    let down = Instant::now();
    // While it is down each process answers, with an error, and stays up.
    for slot in 0..2 {
        let probe = load.runtime.block_on(async {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 200));
            let deadline = Instant::now() + Duration::from_secs(10);
            let request = registration(&label, d.account);
            loop {
                match balancer.register_at(slot, &request, TOKEN, ip).await {
                    // A connection that lived in a backend not yet gone: ask again.
                    Ok(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => return other,
                }
            }
        });
        match probe {
            Err(HttpError::Status { status, .. }) if status >= 500 => {
                balancer.answered(slot, true);
            }
            other => panic!("process {slot} with PostgreSQL down answered {other:?}"),
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_alive(&mut a, "A");
    assert_alive(&mut b, "B");
    pg.restart();
    let downtime = down.elapsed();
    balancer.set_fault(false);
    let provisioned = load.finish();

    assert_alive(&mut a, "A");
    assert_alive(&mut b, "B");
    let errors_while_down: u64 = (0..2)
        .map(|s| balancer.count(s, |t| &t.errors_in_fault))
        .sum();
    assert!(
        errors_while_down >= 2,
        "requests failed while PostgreSQL was down"
    );
    assert_nothing_lost(
        &Db::Postgres(&pg, "pg_restart").tables(),
        &provisioned,
        d.account,
    );
    eprintln!(
        "PostgreSQL down {downtime:?}; error answers while down {errors_while_down}; errors in \
         all A {} B {}; not answered A {} B {}; {:?}",
        balancer.count(0, |t| &t.errors),
        balancer.count(1, |t| &t.errors),
        balancer.count(0, |t| &t.failed),
        balancer.count(1, |t| &t.failed),
        started.elapsed()
    );
}
