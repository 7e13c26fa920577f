//! Flow-1 sessions per second with the embedded store and with PostgreSQL, with one and with
//! two server processes, in one run, and where the time goes.
//!
//! Four configurations, each measured the same way: embedded store (SQLite in the data
//! directory) with one `serve` process (the reference, 1.00), embedded with two processes on
//! the same SQLite file, PostgreSQL with one process, PostgreSQL with two processes (each
//! with its own copy of the data directory: keys, data key, TLS identity). The server
//! processes are real separate processes: this bench runs its own binary again with
//! `ZT_BENCH_AS_ZEROTOUCH=1`, and that child runs `zerotouch_cli::run` on its arguments,
//! exactly as the `zerotouch` binary would (`serve --listen 127.0.0.1:0`, its first stdout
//! line gives the address). Each deployment is made with the command line, as an operator
//! would: `init`, `ca create` and `ca trust`, `keys create` (setup, revocation, factory
//! manifest), `keys export-bundle`, `factory batch` (no PINs), `devices import`, `accounts
//! add`, `networks add`, `registrars add` with API tokens, then `register` of every device
//! over HTTPS. PostgreSQL is a throwaway cluster (`zerotouch-store-suite`) with `fsync=on`:
//! waiting for commits to reach the disk is part of what is measured, as it is for SQLite.
//!
//! The load: the devices of the batch (`zerotouch_cli::simulated_device::run_over`: the real
//! device session over HTTPS with mutual TLS, in this process on a tokio runtime) run
//! `ZT_BENCH_SESSIONS` whole flow-1 sessions (default 200: hello, credential request, join,
//! outcome report, revocation check), `ZT_BENCH_CONCURRENCY` at a time (default 16), each
//! a first boot; a device provisions again and again, never twice at once. A session opens
//! two connections (setup network, home network): with two processes they are dealt round
//! robin, session i's setup connection to process i mod 2 and its home connection to the
//! other, so every session is continued by a process that did not start it (what a TCP
//! load balancer in front of stateless servers does) and each process gets half of every
//! kind of request. TLS session resumption is off in the devices, so every connection is a
//! full mutual-TLS handshake in every configuration (a ticket from one process is useless
//! at the other, and counting that would measure the ticket cache, not the store). Each
//! device connects from its own loopback address (127.1.x.y), so the server's limits per
//! address and per certificate are not what is measured, and the devices take turns, so
//! none reaches its per-certificate burst in one process or its cap of 60 server
//! signatures an hour (3 a session, counted in the store). Before each measurement fresh
//! server processes are started and one wave of `ZT_BENCH_CONCURRENCY` sessions warms them
//! (connections, caches); only the sessions after it are timed. The four configurations
//! take turns, `ZT_BENCH_ROUNDS` times (default 5), so that a disturbance (another build on
//! the machine, the disk busy writing back) falls on all of them alike: sessions/s is the
//! median of the rounds, every other figure is over all rounds together.
//!
//! For each configuration it prints sessions per second (sessions / wall time) and the ratio
//! to embedded x 1, the median and 95th percentile of one session's time, and where the
//! time went, as CPU milliseconds per session and as a share of the wall time (100 % = one
//! core busy throughout): the server processes (`/proc/PID/stat` utime + stime), PostgreSQL
//! (the postmaster, its live children and the children it has reaped, all from `/proc`),
//! the devices (this bench process: the load generator shares the machine's cores), the
//! rest of the machine (busy time in `/proc/stat` not in those: kernel work on loopback
//! traffic, anything else running, with the biggest other processes named so a disturbed
//! run shows what disturbed it), and idle time (and the part of it waiting on I/O). It
//! counts the disk's cache flushes during the run (`/proc/diskstats` of the disk holding the
//! temporary directory, whole machine): each durable commit, SQLite's or PostgreSQL's, ends
//! in one. For PostgreSQL it adds commits (`pg_stat_database`) and WAL records, bytes,
//! syncs and `wal_sync_time` (`pg_stat_wal`, `track_wal_io_timing=on`): the time backends
//! spent in the WAL flush calls themselves; a backend waiting for another's flush to cover
//! its commit is not in it. SQLite has no such counter: its commit waits show only in the
//! disk flushes and the idle time. Sessions/s with two processes on this 2-core machine
//! measure contention (two processes, PostgreSQL and the devices sharing the same cores and
//! the same database), not scaling: the bench says so next to the figures, with the ceiling
//! that each configuration's own CPU per session (servers, PostgreSQL, devices) allows on
//! this machine's cores.
//!
//! Devices have no PIN: checking one costs the server a PBKDF2 of the PIN record (100,000
//! iterations by default) per session, the same for every store, which would hide the
//! differences this bench is about.
//!
//! # Running it
//!
//! `cargo bench -p zerotouch-benches --bench server_processes`: about a minute and a half
//! once built (a throwaway PostgreSQL and two deployments, each with a factory batch of 135
//! devices registered, about 7 s; then 5 rounds of the four configurations, each about
//! 4 s with its server start, warm-up and the 1.5 s PostgreSQL needs to publish its
//! statistics). It needs
//! PostgreSQL's server programs (Debian's `postgresql`; `scripts/system-deps.sh` installs
//! it, or set `ZEROTOUCH_PG_BIN`); without them it says so loudly and prints the embedded
//! figures only. `ZT_BENCH_SESSIONS=n`, `ZT_BENCH_CONCURRENCY=n` and `ZT_BENCH_ROUNDS=n`
//! change the load (the batch grows with them).

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant as Clock};

use clap::Parser as _;
use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;
use zerotouch_benches::procfs::{
    DiskFlushes, MachineCpu, ProcessTimes, children_of, clock_ticks, process_cpu, processes,
    tree_cpu,
};
use zerotouch_benches::{BenchError, SERVER_NAME, quantile};
use zerotouch_cli::simulated_device::{Link, NetworkInRange, SimulatedDevice, run_over};
use zerotouch_cli::{Cli, CliError, DataDir, load_device, read_entries};
use zerotouch_core::flow1::DeviceIdentityRef;
use zerotouch_core::{Passphrase, PinnedKeyBundle, PinnedKeys, RustCryptoProvider, Transport};
use zerotouch_device_tokio::DeviceRun;
use zerotouch_http::{DirectHttps, ServerEndpoint, ServerTrust, device_tls_config};
use zerotouch_store_suite::postgres::{ClusterOptions, ThrowawayPostgres};

/// Set in the environment of a child that is to act as the `zerotouch` binary.
const AS_ZEROTOUCH: &str = "ZT_BENCH_AS_ZEROTOUCH";
/// Timed sessions per configuration unless `ZT_BENCH_SESSIONS` says otherwise.
const DEFAULT_SESSIONS: usize = 200;
/// Rounds unless `ZT_BENCH_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 5;
/// Devices in flight unless `ZT_BENCH_CONCURRENCY` says otherwise.
const DEFAULT_CONCURRENCY: usize = 16;
/// Sessions one device may run against one fresh process: 4 requests each stays well
/// inside the server's burst of 30 requests per device certificate.
const SESSIONS_PER_PROCESS: usize = 4;
/// Sessions one device may run on one store in a whole run: each costs 3 of the 60
/// signatures a device key may cause in a clock hour (`ServiceConfig::signatures_per_hour`,
/// counted in the store), and a device past the cap is told to come back in a minute.
const SESSIONS_PER_STORE: usize = 16;
/// Devices one registrar token registers (its burst is 30 requests).
const DEVICES_PER_REGISTRAR: usize = 25;
/// Longest one session may take.
const SESSION_BOUND: Duration = Duration::from_secs(60);
/// Quiet time after the warm-up: PostgreSQL backends publish their statistics after about
/// a second idle, so the counters read next include the warm-up's.
const SETTLE: Duration = Duration::from_millis(1500);
/// The device type of the batch.
const DEVICE_TYPE: &str = "7";
/// The home network's passphrase.
const PASSPHRASE: &str = "correct horse battery staple";

fn main() -> Result<(), BenchError> {
    if std::env::var_os(AS_ZEROTOUCH).is_some() {
        let args = std::iter::once(OsString::from("zerotouch")).chain(std::env::args_os().skip(1));
        zerotouch_cli::run(Cli::try_parse_from(args)?)?;
        return Ok(());
    }
    let sessions = env_count("ZT_BENCH_SESSIONS", DEFAULT_SESSIONS);
    let concurrency = env_count("ZT_BENCH_CONCURRENCY", DEFAULT_CONCURRENCY);
    let rounds = env_count("ZT_BENCH_ROUNDS", DEFAULT_ROUNDS);
    // Each round runs a warm-up wave and the timed sessions twice on each store (one and
    // two processes).
    let per_round = sessions + concurrency;
    let load = Load {
        sessions,
        concurrency,
        rounds,
        devices: (2 * concurrency)
            .max(per_round.div_ceil(SESSIONS_PER_PROCESS))
            .max((2 * rounds * per_round).div_ceil(SESSIONS_PER_STORE)),
    };
    bench(&load)
}

/// A positive count from the environment, else `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(default)
}

/// What each configuration runs.
struct Load {
    /// Timed sessions.
    sessions: usize,
    /// Sessions in flight at once.
    concurrency: usize,
    /// Devices in the batch.
    devices: usize,
    /// Times each configuration is measured (the configurations take turns).
    rounds: usize,
}

fn bench(load: &Load) -> Result<(), BenchError> {
    let started = Clock::now();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let work = tempfile::Builder::new()
        .prefix("zt-bench-processes-")
        .tempdir()?;
    println!(
        "server_processes: flow 1 over HTTPS (mutual TLS) against `zerotouch serve` processes"
    );
    println!(
        "  machine: {cores} core(s) (available_parallelism), shared by the servers, PostgreSQL and the devices"
    );
    println!(
        "  load: {} timed sessions a configuration, {} in flight, {} devices (each a first boot, from its own",
        load.sessions, load.concurrency, load.devices
    );
    println!(
        "    loopback address), after a warm-up wave of {} on fresh server processes",
        load.concurrency
    );
    println!(
        "  two processes: a session's setup connection goes to one, its home connection to the other"
    );
    println!(
        "  {} rounds, the configurations taking turns in each; sessions/s is the median of the rounds,",
        load.rounds
    );
    println!("    every other figure is over all rounds together");
    let pg = match ThrowawayPostgres::try_start(ClusterOptions {
        fsync: true,
        ..ClusterOptions::default()
    }) {
        Ok(pg) => Some(pg),
        Err(why) => {
            println!();
            println!("{}", "!".repeat(100));
            println!("!!! PostgreSQL could not be started: {why}");
            println!(
                "!!! Install Debian's `postgresql` (scripts/system-deps.sh) or set ZEROTOUCH_PG_BIN."
            );
            println!("!!! ONLY THE EMBEDDED FIGURES FOLLOW: there are no PostgreSQL columns.");
            println!("{}", "!".repeat(100));
            println!();
            None
        }
    };
    let exe = std::env::current_exe()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let embedded = Deployment::make(&exe, &work.path().join("embedded"), None, load)?;
    let postgres = match &pg {
        Some(pg) => {
            let url = pg.create_database("zerotouch");
            Some(Deployment::make(
                &exe,
                &work.path().join("postgres"),
                Some(url),
                load,
            )?)
        }
        None => None,
    };
    println!(
        "  deployments made and devices registered in {:.1} s; PostgreSQL: {}",
        started.elapsed().as_secs_f64(),
        match &pg {
            Some(pg) => format!(
                "throwaway cluster on 127.0.0.1:{}, fsync=on, track_wal_io_timing=on",
                pg.port()
            ),
            None => "NOT RUNNING".to_string(),
        }
    );
    let bench = Bench {
        runtime: &runtime,
        load,
        disk: work.path(),
        cluster: pg.as_ref(),
    };
    let mut configurations = vec![(&embedded, 1), (&embedded, 2)];
    if let Some(d) = &postgres {
        configurations.extend([(d, 1), (d, 2)]);
    }
    let mut results: Vec<Measured> = Vec::new();
    for round in 1..=load.rounds {
        print!("  round {round}:");
        for (i, &(d, processes)) in configurations.iter().enumerate() {
            let m = measure(&bench, d, processes)?;
            print!(" {} {:.1}/s;", m.name, m.per_second());
            std::io::Write::flush(&mut std::io::stdout())?;
            match results.get_mut(i) {
                Some(all) => all.absorb(m),
                None => results.push(m),
            }
        }
        println!();
    }
    report(&results, cores, pg.is_some());
    println!();
    println!("total run time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The deployment, made with the command line.

/// Runs this binary as `zerotouch --data DATA [--store URL] --json ...`.
struct Zerotouch {
    exe: PathBuf,
    store: Option<String>,
}

impl Zerotouch {
    fn command(&self, data: &Path) -> Command {
        let mut c = Command::new(&self.exe);
        c.env(AS_ZEROTOUCH, "1")
            .env_remove("ZEROTOUCH_DATA")
            .env_remove("ZEROTOUCH_STORE")
            .arg("--data")
            .arg(data);
        if let Some(store) = &self.store {
            c.arg("--store").arg(store);
        }
        c.arg("--json");
        c
    }

    /// Runs one command to its end and returns the JSON it printed last.
    fn json(&self, data: &Path, args: &[&str]) -> Result<Value, BenchError> {
        let out = self
            .command(data)
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "zerotouch {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(serde_json::from_str(
            text.lines().last().unwrap_or_default(),
        )?)
    }
}

/// A path as a command-line argument (the temporary directory's paths are UTF-8).
fn arg(path: &Path) -> String {
    path.display().to_string()
}

/// One device of the batch, ready to run sessions.
struct Device {
    simulated: SimulatedDevice,
    pinned: PinnedKeys,
    tls: Arc<ClientConfig>,
    address: IpAddr,
}

/// The devices of a batch, registered, and the network their radio sees.
struct Devices {
    list: Vec<Device>,
    in_range: Vec<NetworkInRange>,
    /// The devices not in a session, least recently used first: kept from one run of
    /// sessions to the next, so every device runs as many sessions as the others (each has
    /// a cap of signatures an hour in the store).
    free: Mutex<VecDeque<usize>>,
}

/// A deployment: data directories (one a process: the same one twice for the embedded
/// store, a copy for the second PostgreSQL process), its devices registered to an account.
struct Deployment {
    zt: Zerotouch,
    data: [PathBuf; 2],
    devices: Arc<Devices>,
    logs: PathBuf,
}

impl Deployment {
    fn make(
        exe: &Path,
        root: &Path,
        store: Option<String>,
        load: &Load,
    ) -> Result<Deployment, BenchError> {
        std::fs::create_dir_all(root)?;
        let zt = Zerotouch {
            exe: exe.to_path_buf(),
            store,
        };
        let data = root.join("data");
        let dir = DataDir::new(&data);
        let at = |name: &str| arg(&root.join(name));
        let count = load.devices.to_string();
        let steps: [&[&str]; 8] = [
            &["init", "--server-name", SERVER_NAME],
            &[
                "ca",
                "create",
                "--name",
                "Bench devices",
                "--out",
                &at("maker"),
            ],
            &["ca", "trust", "--role", "devices", &at("maker.crt.pem")],
            &["keys", "create", "--role", "setup"],
            &["keys", "create", "--role", "revocation"],
            &[
                "keys",
                "create",
                "--role",
                "factory-manifest",
                "--out",
                &at("factory.key.pem"),
            ],
            &[
                "keys",
                "export-bundle",
                "--header",
                &at("pinned.h"),
                "--cbor",
                &at("pinned.cbor"),
            ],
            &[
                "factory",
                "batch",
                "--ca",
                &at("maker"),
                "--signing-key",
                &at("factory.key.pem"),
                "--import-key",
                &arg(&dir.import_public_path()),
                "--device-type",
                DEVICE_TYPE,
                "--first-serial",
                "5000",
                "--count",
                &count,
                "--product",
                "BENCH01",
                "--pin-digits",
                "0",
                "--out",
                &at("batch"),
            ],
        ];
        for step in steps {
            zt.json(&data, step)?;
        }
        let imported = zt.json(&data, &["devices", "import", &at("batch/manifest.cbor")])?;
        if imported.get("added").and_then(Value::as_u64) != Some(load.devices as u64) {
            return Err(format!("devices import: {imported}").into());
        }
        let account = zt
            .json(&data, &["accounts", "add", "--name", "owner"])?
            .get("account")
            .and_then(Value::as_i64)
            .ok_or("accounts add printed no account")?
            .to_string();
        std::fs::write(root.join("passphrase"), PASSPHRASE)?;
        zt.json(
            &data,
            &[
                "networks",
                "add",
                "--account",
                &account,
                "--ssid",
                "home",
                "--passphrase-file",
                &at("passphrase"),
            ],
        )?;
        let mut tokens = Vec::new();
        for k in 0..load.devices.div_ceil(DEVICES_PER_REGISTRAR) {
            let token = root.join(format!("registrar-{k}.token"));
            std::fs::write(&token, format!("bench-registrar-{k:03}-0123456789abcdef"))?;
            let name = format!("shop {k}");
            zt.json(
                &data,
                &[
                    "registrars",
                    "add",
                    "--name",
                    &name,
                    "--token-file",
                    &arg(&token),
                ],
            )?;
            tokens.push(arg(&token));
        }
        let logs = root.join("logs");
        std::fs::create_dir_all(&logs)?;
        let batch = root.join("batch");
        let entries = read_entries(&batch)?;
        {
            let server = ServerProcess::start(&zt, &data, &logs.join("register.log"))?;
            let address = server.address.to_string();
            for (i, entry) in entries.iter().enumerate() {
                let token = tokens
                    .get(i / DEVICES_PER_REGISTRAR)
                    .ok_or("no registrar token")?;
                let register = [
                    "register",
                    "--server",
                    &address,
                    "--token-file",
                    token,
                    "--account",
                    &account,
                    &entry.label,
                ];
                let mut attempts = 0;
                let added = loop {
                    match zt.json(&data, &register) {
                        Ok(v) => break v,
                        // Past the server's burst per client address (120 requests, then
                        // 20 a second) a registration is turned away: wait and try again.
                        Err(_) if attempts < 30 => {
                            attempts += 1;
                            std::thread::sleep(Duration::from_secs(1));
                        }
                        Err(e) => return Err(e),
                    }
                };
                if added.get("result").and_then(Value::as_str) != Some("added") {
                    return Err(format!("register {}: {added}", entry.serial).into());
                }
            }
        }
        let copy = if zt.store.is_some() {
            let copy = root.join("data-copy");
            let ok = Command::new("cp")
                .arg("-a")
                .arg(&data)
                .arg(&copy)
                .status()?
                .success();
            if !ok {
                return Err(format!("cp -a {} {}", data.display(), copy.display()).into());
            }
            copy
        } else {
            data.clone()
        };
        let bundle = PinnedKeyBundle::decode(
            &std::fs::read(root.join("pinned.cbor"))?,
            &RustCryptoProvider,
        )?;
        let server_ca = CertificateDer::from_pem_file(dir.tls_ca_path())?;
        let mut devices = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let simulated = load_device(&batch, entry)?;
            let pinned = bundle.pinned_keys_for(simulated.device_type, simulated.serial)?;
            let mut tls = (*device_tls_config(
                simulated.certificate_der.clone(),
                Arc::clone(&simulated.signer),
                ServerTrust::Ca {
                    ca_der: server_ca.as_ref().to_vec(),
                    check_dates: false,
                },
            )?)
            .clone();
            tls.resumption = rustls::client::Resumption::disabled();
            let n = u16::try_from(i + 1)?.to_be_bytes();
            devices.push(Device {
                simulated,
                pinned,
                tls: Arc::new(tls),
                address: IpAddr::V4(Ipv4Addr::new(127, 1, n[0], n[1])),
            });
        }
        let in_range = vec![NetworkInRange {
            ssid: b"home".to_vec(),
            passphrase: Some(Passphrase::new(PASSPHRASE.as_bytes())?),
        }];
        Ok(Deployment {
            zt,
            data: [data, copy],
            devices: Arc::new(Devices {
                free: Mutex::new((0..devices.len()).collect()),
                list: devices,
                in_range,
            }),
            logs,
        })
    }
}

/// A `serve` child process, killed when dropped.
struct ServerProcess {
    child: Child,
    address: SocketAddr,
    /// Held open so that the child never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    fn start(zt: &Zerotouch, data: &Path, log: &Path) -> Result<ServerProcess, BenchError> {
        let mut child = zt
            .command(data)
            .args(["serve", "--listen", "127.0.0.1:0", "--exit-after", "600"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        let first = child
            .stdout
            .take()
            .map(BufReader::new)
            .ok_or("no stdout")
            .and_then(|mut out| {
                let mut line = String::new();
                out.read_line(&mut line).map_err(|_| "unreadable stdout")?;
                let address = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v.get("listen")?.as_str()?.parse().ok())
                    .ok_or("no address on its first line")?;
                Ok((out, address))
            });
        match first {
            Ok((out, address)) => Ok(ServerProcess {
                child,
                address,
                _stdout: out,
            }),
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(log).unwrap_or_default();
                Err(format!("serve did not start ({why}): {}", log.trim()).into())
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The load.

/// What a run of sessions gave.
#[derive(Default)]
struct LoadOutcome {
    /// Each completed session's time, ms.
    times: Vec<f64>,
    /// Why sessions failed.
    failures: Vec<String>,
    /// Messages exchanged by the completed sessions.
    exchanges: u64,
    /// Of those, exchanges that failed at the transport and were sent again.
    transport_failures: u64,
}

/// One session of `device`: setup-network connection to `setup`, home-network connection to
/// `home`.
async fn session(
    device: &Device,
    in_range: &[NetworkInRange],
    setup: SocketAddr,
    home: SocketAddr,
) -> Result<DeviceRun, CliError> {
    let endpoint = |address| ServerEndpoint {
        local_ip: Some(device.address),
        ..ServerEndpoint::new(address, SERVER_NAME)
    };
    let mut https = DirectHttps::new(endpoint(setup), endpoint(home), Arc::clone(&device.tls));
    let link = Link {
        exchange: &mut https,
        transport: Transport::Https,
        identity: DeviceIdentityRef::Certificate(device.simulated.certificate_der.clone()),
    };
    run_over(
        &device.simulated,
        device.pinned.clone(),
        link,
        in_range,
        None,
        SESSION_BOUND,
    )
    .await
}

/// Runs `sessions` sessions, `concurrency` at a time, over `servers`; a free device takes
/// each next session.
async fn run_load(
    devices: &Arc<Devices>,
    servers: &[SocketAddr],
    sessions: usize,
    concurrency: usize,
) -> LoadOutcome {
    let next = Arc::new(AtomicUsize::new(0));
    let servers: Arc<[SocketAddr]> = servers.into();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(devices.list.len()) {
        let (devices, next, servers) =
            (Arc::clone(devices), Arc::clone(&next), Arc::clone(&servers));
        tasks.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= sessions {
                    return done;
                }
                let taken = devices
                    .free
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front();
                let n = servers.len().max(1);
                let (Some(k), Some(&setup), Some(&home)) =
                    (taken, servers.get(i % n), servers.get((i + 1) % n))
                else {
                    return done;
                };
                let Some(device) = devices.list.get(k) else {
                    return done;
                };
                let started = Clock::now();
                let result = session(device, &devices.in_range, setup, home).await;
                done.push((started.elapsed(), result.map_err(|e| e.to_string())));
                devices
                    .free
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_back(k);
            }
        });
    }
    let mut outcome = LoadOutcome::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(done) => {
                for (took, result) in done {
                    match result {
                        Ok(run) => {
                            outcome.times.push(took.as_secs_f64() * 1e3);
                            outcome.exchanges += u64::from(run.exchanges);
                            outcome.transport_failures += u64::from(run.transport_failures);
                        }
                        Err(why) => outcome.failures.push(why),
                    }
                }
            }
            Err(e) => outcome.failures.push(format!("task failed: {e}")),
        }
    }
    outcome
}

// ---------------------------------------------------------------------------------------
// Where the time goes.

/// PostgreSQL's cumulative counters, named (with the decimals to print) in [`PG_COUNTERS`].
#[derive(Debug, Clone, Copy, Default)]
struct PgCounters([f64; 5]);

/// What [`PgCounters`] holds, in order, and how it is printed per session.
const PG_COUNTERS: [(&str, usize); 5] = [
    ("commits", 2),
    ("WAL records", 1),
    ("WAL bytes", 0),
    ("WAL syncs (wal_sync)", 2),
    ("wal_sync_time (ms)", 2),
];

impl PgCounters {
    fn read(pg: &ThrowawayPostgres) -> Result<PgCounters, BenchError> {
        let text = pg.psql(
            "zerotouch",
            "SELECT d.xact_commit, w.wal_records, w.wal_bytes, w.wal_sync, w.wal_sync_time \
             FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()",
        )?;
        let mut counters = PgCounters::default();
        for (slot, value) in counters.0.iter_mut().zip(text.split('|')) {
            *slot = value.trim().parse()?;
        }
        Ok(counters)
    }

    /// Each counter of `self` and `other` combined by `f`.
    fn with(&self, other: &PgCounters, f: impl Fn(f64, f64) -> f64) -> PgCounters {
        let mut out = *self;
        for (o, b) in out.0.iter_mut().zip(other.0) {
            *o = f(*o, b);
        }
        out
    }

    /// Milliseconds in WAL flush calls.
    fn wal_sync_ms(&self) -> f64 {
        self.0[4]
    }
}

/// CPU seconds so far of each part.
#[derive(Debug, Clone, Default)]
struct Reading {
    servers: f64,
    postgres: f64,
    bench: f64,
    machine: MachineCpu,
    flushes: Option<(u64, u64)>,
    /// Every other process (kernel threads too), by process id.
    others: BTreeMap<u32, ProcessTimes>,
}

impl Reading {
    fn take(servers: &[u32], postmaster: Option<u32>, disk: &Path, ticks: f64) -> Reading {
        let me = std::process::id();
        let ours = |pid: u32, t: &ProcessTimes| {
            pid == me
                || servers.contains(&pid)
                || Some(pid) == postmaster
                || Some(t.parent) == postmaster
        };
        Reading {
            servers: servers.iter().filter_map(|&p| process_cpu(p, ticks)).sum(),
            postgres: postmaster.and_then(|p| tree_cpu(p, ticks)).unwrap_or(0.0),
            bench: ProcessTimes::own(ticks).map_or(0.0, |t| t.cpu()),
            machine: MachineCpu::read(ticks).unwrap_or_default(),
            flushes: DiskFlushes::of_path(disk).map(|f| (f.completed, f.millis)),
            others: processes(ticks)
                .into_iter()
                .filter(|(pid, t)| !ours(*pid, t))
                .collect(),
        }
    }

    /// CPU seconds of the other processes since `before`, by command name (a kernel worker's
    /// name changes with its work, so kworkers count as one): those alive now; one that
    /// started in between counts whole, one that ended in between is missed.
    fn others_since(&self, before: &Reading) -> BTreeMap<String, f64> {
        let mut by_name = BTreeMap::new();
        for (pid, t) in &self.others {
            let earlier = before
                .others
                .get(pid)
                .map(ProcessTimes::cpu)
                .filter(|&cpu| cpu <= t.cpu())
                .unwrap_or(0.0);
            let name = if t.command.starts_with("kworker") {
                "kworker (kernel)".to_string()
            } else {
                t.command.clone()
            };
            *by_name.entry(name).or_insert(0.0) += t.cpu() - earlier;
        }
        by_name
    }
}

/// One configuration's figures: one round's, or the sum of all rounds'.
struct Measured {
    name: String,
    /// Sessions per second of each round.
    rates: Vec<f64>,
    outcome: LoadOutcome,
    wall: f64,
    servers: f64,
    /// The PostgreSQL cluster's CPU (running but unused in the embedded configurations).
    postgres: Option<f64>,
    bench: f64,
    machine: MachineCpu,
    flushes: Option<(u64, u64)>,
    disk: Option<String>,
    pg: Option<PgCounters>,
    /// CPU seconds of other processes, by command name.
    others: BTreeMap<String, f64>,
}

impl Measured {
    /// Adds another round of the same configuration.
    fn absorb(&mut self, other: Measured) {
        self.rates.extend(other.rates);
        self.outcome.times.extend(other.outcome.times);
        self.outcome.failures.extend(other.outcome.failures);
        self.outcome.exchanges += other.outcome.exchanges;
        self.outcome.transport_failures += other.outcome.transport_failures;
        self.wall += other.wall;
        self.servers += other.servers;
        self.postgres = self.postgres.zip(other.postgres).map(|(a, b)| a + b);
        self.bench += other.bench;
        self.machine = MachineCpu {
            busy: self.machine.busy + other.machine.busy,
            idle: self.machine.idle + other.machine.idle,
            iowait: self.machine.iowait + other.machine.iowait,
        };
        self.flushes = self
            .flushes
            .zip(other.flushes)
            .map(|(a, b)| (a.0 + b.0, a.1 + b.1));
        for (name, cpu) in other.others {
            *self.others.entry(name).or_insert(0.0) += cpu;
        }
        self.pg = self.pg.zip(other.pg).map(|(a, b)| a.with(&b, |x, y| x + y));
    }
}

/// What every measurement shares.
struct Bench<'a> {
    runtime: &'a tokio::runtime::Runtime,
    load: &'a Load,
    /// A path on the disk the stores write to.
    disk: &'a Path,
    /// The PostgreSQL cluster, if it started.
    cluster: Option<&'a ThrowawayPostgres>,
}

/// One round of one configuration: `processes` fresh server processes on `d`'s store.
fn measure(bench: &Bench<'_>, d: &Deployment, processes: usize) -> Result<Measured, BenchError> {
    let Bench {
        runtime,
        load,
        disk,
        cluster,
    } = *bench;
    let pg = cluster.filter(|_| d.zt.store.is_some());
    let name = format!(
        "{} x {processes}",
        if pg.is_some() { "postgres" } else { "embedded" }
    );
    let ticks = clock_ticks();
    let postmaster = cluster.and_then(ThrowawayPostgres::pid);
    let background = postmaster.map_or(0, |p| children_of(p, ticks).len());
    let mut servers = Vec::with_capacity(processes);
    for (i, data) in d.data.iter().cycle().take(processes).enumerate() {
        let log = d.logs.join(format!("{}-{i}.log", name.replace(' ', "")));
        servers.push(ServerProcess::start(&d.zt, data, &log)?);
    }
    let addresses: Vec<SocketAddr> = servers.iter().map(|s| s.address).collect();
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let warm = runtime.block_on(run_load(
        &d.devices,
        &addresses,
        load.concurrency,
        load.concurrency,
    ));
    if let Some(why) = warm.failures.first() {
        return Err(format!("{name}: a warm-up session failed: {why}").into());
    }
    std::thread::sleep(SETTLE);
    let pg_before = pg.map(PgCounters::read).transpose()?;
    let before = Reading::take(&pids, postmaster, disk, ticks);
    let started = Clock::now();
    let outcome = runtime.block_on(run_load(
        &d.devices,
        &addresses,
        load.sessions,
        load.concurrency,
    ));
    let wall = started.elapsed().as_secs_f64();
    let after = Reading::take(&pids, postmaster, disk, ticks);
    drop(servers);
    // The backends publish their last statistics as they exit.
    if let (Some(p), Some(_)) = (postmaster, pg) {
        let deadline = Clock::now() + Duration::from_secs(10);
        while children_of(p, ticks).len() > background && Clock::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let pg_after = pg.map(PgCounters::read).transpose()?;
    Ok(Measured {
        name,
        rates: vec![outcome.times.len() as f64 / wall],
        outcome,
        wall,
        servers: after.servers - before.servers,
        postgres: cluster.map(|_| after.postgres - before.postgres),
        bench: after.bench - before.bench,
        machine: after.machine.since(&before.machine),
        others: after.others_since(&before),
        flushes: after
            .flushes
            .zip(before.flushes)
            .map(|((c1, m1), (c0, m0))| (c1.saturating_sub(c0), m1.saturating_sub(m0))),
        disk: DiskFlushes::of_path(disk).map(|f| f.device),
        pg: pg_after
            .zip(pg_before)
            .map(|(a, b)| a.with(&b, |x, y| x - y)),
    })
}

// ---------------------------------------------------------------------------------------
// Report.

impl Measured {
    fn completed(&self) -> f64 {
        self.outcome.times.len() as f64
    }
    /// The median of the rounds' sessions per second.
    fn per_second(&self) -> f64 {
        quantile(&self.rates, 0.5)
    }
    /// Milliseconds of `seconds` per completed session.
    fn per_session(&self, seconds: f64) -> f64 {
        seconds * 1e3 / self.completed()
    }
    /// `seconds` as a share of the wall time (100 % = one core throughout).
    fn share(&self, seconds: f64) -> f64 {
        seconds * 100.0 / self.wall
    }
    fn rest(&self) -> f64 {
        self.machine.busy - self.servers - self.postgres.unwrap_or(0.0) - self.bench
    }
    fn ours(&self) -> f64 {
        self.servers + self.postgres.unwrap_or(0.0) + self.bench
    }
}

fn row(label: &str, cells: impl IntoIterator<Item = String>) {
    let cells: String = cells.into_iter().map(|c| format!(" {c:>13}")).collect();
    println!("{label:<46}{cells}");
}

fn report(results: &[Measured], cores: usize, have_pg: bool) {
    let Some(reference) = results.first() else {
        return;
    };
    let each = |label: &str, f: &dyn Fn(&Measured) -> String| {
        row(label, results.iter().map(f));
    };
    let or_dash = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
    println!();
    each("", &|m| m.name.clone());
    each("sessions completed (failed)", &|m| {
        format!("{} ({})", m.outcome.times.len(), m.outcome.failures.len())
    });
    each("messages per session (sent again)", &|m| {
        format!(
            "{:.2} ({})",
            m.outcome.exchanges as f64 / m.completed(),
            m.outcome.transport_failures
        )
    });
    each("wall time, all rounds (s)", &|m| format!("{:.2}", m.wall));
    each("sessions/s (median of the rounds)", &|m| {
        format!("{:.1}", m.per_second())
    });
    for r in 0..reference.rates.len() {
        each(&format!("  round {}", r + 1), &|m| {
            or_dash(m.rates.get(r).copied(), &|v| format!("{v:.1}"))
        });
    }
    each("ratio to embedded x 1", &|m| {
        format!("{:.2}", m.per_second() / reference.per_second())
    });
    each("session time, median of all (ms)", &|m| {
        format!("{:.1}", quantile(&m.outcome.times, 0.5))
    });
    each("session time, 95th percentile (ms)", &|m| {
        format!("{:.1}", quantile(&m.outcome.times, 0.95))
    });
    type Part<'a> = (&'a str, &'a dyn Fn(&Measured) -> Option<f64>);
    let parts: [Part<'_>; 4] = [
        ("  server processes", &|m| Some(m.servers)),
        ("  PostgreSQL (unused in the embedded ones)", &|m| {
            m.postgres
        }),
        ("  devices (this bench process)", &|m| Some(m.bench)),
        ("  rest of the machine", &|m| Some(m.rest())),
    ];
    println!("CPU per session (ms)");
    for (label, part) in parts {
        each(label, &|m| {
            or_dash(part(m), &|v| format!("{:.2}", m.per_session(v)))
        });
    }
    each("  all busy CPU", &|m| {
        format!("{:.2}", m.per_session(m.machine.busy))
    });
    each(
        &format!("  => ceiling, {cores} cores / ours (sessions/s)"),
        &|m| format!("{:.1}", cores as f64 * m.completed() / m.ours()),
    );
    println!(
        "share of the wall time (100 % = one core busy throughout; the machine has {} %)",
        cores * 100
    );
    for (label, part) in parts {
        each(label, &|m| {
            or_dash(part(m), &|v| format!("{:.0} %", m.share(v)))
        });
    }
    each("  idle", &|m| {
        format!("{:.0} %", m.share(m.machine.idle + m.machine.iowait))
    });
    each("    of which waiting on I/O", &|m| {
        format!("{:.0} %", m.share(m.machine.iowait))
    });
    let disk = results
        .iter()
        .find_map(|m| m.disk.clone())
        .unwrap_or_else(|| "-".to_string());
    println!("disk cache flushes ({disk}, whole machine)");
    each("  flushes per session", &|m| {
        or_dash(m.flushes.map(|f| f.0 as f64), &|v| {
            format!("{:.2}", v / m.completed())
        })
    });
    each("  time in flushes per session (ms)", &|m| {
        or_dash(m.flushes.map(|f| f.1 as f64), &|v| {
            format!("{:.2}", v / m.completed())
        })
    });
    if have_pg {
        println!("PostgreSQL per session (pg_stat_database, pg_stat_wal)");
        for (i, (name, digits)) in PG_COUNTERS.into_iter().enumerate() {
            each(&format!("  {name}"), &|m| {
                or_dash(m.pg.and_then(|p| p.0.get(i).copied()), &|v| {
                    format!("{:.digits$}", v / m.completed())
                })
            });
        }
        each("  wal_sync_time, share of the wall time", &|m| {
            or_dash(m.pg.map(|p| p.wal_sync_ms() / 1e3), &|v| {
                format!("{:.0} %", m.share(v))
            })
        });
    }
    println!(
        "the rest of the machine: other processes alive at the end of a round, CPU s over all rounds"
    );
    for m in results {
        let mut others: Vec<(&String, &f64)> =
            m.others.iter().filter(|&(_, &cpu)| cpu >= 0.01).collect();
        others.sort_by(|a, b| b.1.total_cmp(a.1));
        let top: Vec<String> = others
            .iter()
            .take(4)
            .map(|(name, cpu)| format!("{name} {cpu:.2}"))
            .collect();
        println!(
            "  {:<14}{} (all busy CPU not ours: {:.2})",
            m.name,
            if top.is_empty() {
                "none".to_string()
            } else {
                top.join(", ")
            },
            m.rest()
        );
    }
    for m in results {
        if let Some(why) = m.outcome.failures.first() {
            println!(
                "{}: {} session(s) failed, the first: {why}",
                m.name,
                m.outcome.failures.len()
            );
        }
    }
    explain(results, cores, have_pg);
}

/// What the figures mean, with the numbers.
fn explain(results: &[Measured], cores: usize, have_pg: bool) {
    let find = |name: &str| results.iter().find(|m| m.name == name);
    println!();
    println!(
        "What this means. This machine has {cores} core(s), and the servers, PostgreSQL and the devices"
    );
    println!(
        "(this process: their TLS handshakes and signatures) all run on them. A second server process adds"
    );
    println!(
        "no core: the x 2 figures measure two processes contending for the same cores and the same"
    );
    println!("database, not scaling. Here:");
    for store in ["embedded", "postgres"] {
        let (Some(one), Some(two)) = (find(&format!("{store} x 1")), find(&format!("{store} x 2")))
        else {
            continue;
        };
        println!(
            "  {store}: x 2 gives {:.2} times the sessions/s of x 1; the machine was busy {:.0} % and {:.0} % of its",
            two.per_second() / one.per_second(),
            one.share(one.machine.busy) / cores as f64,
            two.share(two.machine.busy) / cores as f64,
        );
        println!(
            "    {} %, the devices alone taking {:.0} % and {:.0} % of it; all CPU per session {:.1} ms and {:.1} ms",
            cores * 100,
            one.bench * 100.0 / one.machine.busy,
            two.bench * 100.0 / two.machine.busy,
            one.per_session(one.machine.busy),
            two.per_session(two.machine.busy),
        );
        println!(
            "    (of it ours: servers, PostgreSQL and devices, {:.0} % and {:.0} %)",
            one.ours() * 100.0 / one.machine.busy,
            two.ours() * 100.0 / two.machine.busy,
        );
    }
    println!(
        "  Where the machine is near {} % busy, sessions/s is CPU-bound: it is at most cores / CPU per session",
        cores * 100
    );
    println!(
        "  (the \"ceiling\" row, from our own CPU), and a second process can only add its own overhead. Idle time with"
    );
    println!(
        "  sessions in flight is time every session was waiting: on commits (disk flushes), locks, the network."
    );
    for m in results {
        let machine = m.wall * cores as f64;
        let busy = m.machine.busy * 100.0 / machine;
        let idle = (m.machine.idle + m.machine.iowait) * 100.0 / machine;
        let flushes = m.flushes.map_or(String::new(), |f| {
            format!(", {:.1} disk flushes a session", f.0 as f64 / m.completed())
        });
        if busy >= 90.0 {
            println!(
                "  {}: CPU-bound (the machine {busy:.0} % busy), at {:.0} % of its ceiling of {:.0} sessions/s",
                m.name,
                m.per_second() * 100.0 * m.ours() / (cores as f64 * m.completed()),
                cores as f64 * m.completed() / m.ours(),
            );
        } else {
            println!(
                "  {}: not CPU-bound (the machine {busy:.0} % busy, {idle:.0} % idle with sessions in flight): waiting{flushes}",
                m.name
            );
        }
        let rest = m.share(m.rest());
        if rest > 20.0 {
            println!(
                "    and the rest of the machine was busy {rest:.0} % of the wall time: something else was running"
            );
            println!(
                "    (another build or test on this machine, named above), so its figures are disturbed by it."
            );
        }
    }
    if !have_pg {
        println!();
        println!(
            "!!! PostgreSQL COULD NOT BE STARTED: the PostgreSQL configurations were NOT measured (see the top)."
        );
    }
}
