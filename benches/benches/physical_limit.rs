//! Flow 1 against its physical limit: how close whole sessions come to the cost of the
//! cryptography they cannot avoid. All figures come from one run, on one core (the process
//! re-runs itself under `taskset -c <first allowed CPU>` unless already pinned), on a tokio
//! current-thread runtime that runs the server and the devices alike:
//!
//! - (a)  complete flow-1 sessions per second over loopback HTTPS with mutual TLS, one full
//!   handshake per session (TLS resumption off), in-memory store;
//! - (a') the same on the embedded SQLite store (WAL, full sync: durable commits included);
//! - (b)  bare rustls mutual-TLS handshakes per second, in memory, with the same certificates,
//!   the same rustls crypto provider (ring) and the same device signing key path;
//! - (c)  sessions per second in process (device session + setup service, no transport,
//!   in-memory store);
//! - (d)  the crypto floor: each cryptographic operation one session performs, counted by a
//!   counting provider on each side during sessions like (c) (so the list is the code's, and
//!   `docs/PROTOCOL.md` section 15.7 is checked against the same counts), each timed here.
//!
//! It prints each figure and the ratios of cost to physical limit, 1/a ÷ (1/b + d) (goal at
//! most 1.3) and 1/c ÷ d (goal at most 1.25), and, apart, the PBKDF2 PIN check that a device
//! with a PIN adds (the sessions measured have no PIN recorded).
//!
//! Thousands of devices take turns so that no per-device limit is what is measured; the HTTP
//! server's per-address limits are loosened (every device connects from 127.0.0.1), all
//! other limits and the service's configuration are the defaults, and a session that meets a
//! refusal or a rate limit stops the bench.
//!
//! Run: `cargo bench -p zerotouch-benches --bench physical_limit` (about a minute and a half;
//! `ZT_BENCH_QUICK=1` or `-- --quick` for a few seconds with rough figures).

// A bench that hits an error has nothing to measure: stopping there is right.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant as Clock};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use zerotouch_benches::{
    BenchError, Carrier, Fleet, SERVER_NAME, device_session, device_suites, in_process_session,
    run_session,
};
use zerotouch_core::{
    CountingProvider, CryptoProvider, Envelope, Instant, MessageTag, OperationCounts, Pin,
    RustCryptoProvider, SignatureAlgorithm, Signer, SigningKey, SoftwareSigner, ToBeSigned,
    negotiate_suite,
};
use zerotouch_device::Path;
use zerotouch_http::{
    CBOR, HttpConfig, HttpsChannel, Limits, REVOCATION_PATH, RateLimit, SETUP_PATH, ServerEndpoint,
    ServerTrust, device_tls_config, serve,
};
use zerotouch_server::ServiceConfig;
use zerotouch_store::{
    DEFAULT_PIN_ITERATIONS, MemoryStore, PinRecord, SqliteOptions, SqliteStore, StaticDataKey,
};

const NOW: Instant = Instant(1_764_000_000_000);

struct Plan {
    quick: bool,
    /// Devices registered for the in-memory runs.
    devices: usize,
    /// Devices registered on the SQLite store (each registration is a durable commit).
    sqlite_devices: usize,
    /// How long each throughput figure is measured.
    window: Duration,
    /// How long each operation of the crypto floor is timed.
    op_window: Duration,
}

fn main() -> Result<(), BenchError> {
    pin_to_one_core()?;
    let quick = std::env::var_os("ZT_BENCH_QUICK").is_some_and(|v| v != "0")
        || std::env::args().any(|a| a == "--quick");
    let plan = if quick {
        Plan {
            quick,
            devices: 300,
            sqlite_devices: 100,
            window: Duration::from_millis(600),
            op_window: Duration::from_millis(40),
        }
    } else {
        Plan {
            quick,
            devices: 4000,
            sqlite_devices: 1000,
            window: Duration::from_secs(8),
            op_window: Duration::from_millis(400),
        }
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(&plan))
}

/// Re-runs this process under `taskset -c <cpu>` unless it may already run on one CPU only.
fn pin_to_one_core() -> Result<(), BenchError> {
    let allowed = allowed_cpus();
    println!("CPUs allowed: {allowed}");
    let single = !allowed.contains(',') && !allowed.contains('-');
    if single || std::env::var_os("ZT_BENCH_PINNED").is_some() {
        if !single {
            println!(
                "warning: not pinned to one core (taskset failed?); figures are not one core's"
            );
        }
        return Ok(());
    }
    let first = allowed
        .split([',', '-'])
        .next()
        .unwrap_or("0")
        .trim()
        .to_string();
    let exe = std::env::current_exe()?;
    match std::process::Command::new("taskset")
        .arg("-c")
        .arg(&first)
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env("ZT_BENCH_PINNED", "1")
        .status()
    {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => {
            println!("warning: taskset not available ({e}); running unpinned");
            Ok(())
        }
    }
}

fn allowed_cpus() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

async fn run(plan: &Plan) -> Result<(), BenchError> {
    if plan.quick {
        println!("QUICK MODE: short windows, rough figures");
    }
    let started = Clock::now();
    let fleet = Fleet::new(plan.devices, 1)?;
    let (_, pinned) = fleet.ring()?;
    println!(
        "fleet: {} devices with P-256 keys and certificates, P-256 server keys ({:.1} s)",
        fleet.devices.len(),
        started.elapsed().as_secs_f64()
    );

    // ---- counts: what one session performs, each side counted by its own provider ----
    let counting_sessions = 20usize;
    let (device_ops, server_ops) = count_operations(&fleet, counting_sessions).await?;
    let suite = negotiate_suite(&device_suites(), &ServiceConfig::default().suites)
        .map_err(|e| format!("no common suite: {e:?}"))?;

    // ---- (d) the crypto floor ----
    println!();
    println!(
        "(d) crypto floor: operations per session (counted over {counting_sessions} in-process sessions), each timed"
    );
    println!(
        "  {:<28} {:>7} {:>7} {:>11} {:>11}",
        "operation", "device", "server", "us each", "us/session"
    );
    let per = |n: u64| n as f64 / counting_sessions as f64;
    let timings = time_operations(plan, suite, &device_ops, &server_ops, counting_sessions)?;
    let mut floor_us = 0.0;
    for ((name, d), (_, s)) in device_ops
        .operations()
        .iter()
        .zip(server_ops.operations().iter())
    {
        let each = timings
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, t)| *t);
        let total = (per(*d) + per(*s)) * each;
        floor_us += total;
        if d + s > 0 {
            println!(
                "  {:<28} {:>7.1} {:>7.1} {:>11.2} {:>11.1}",
                name,
                per(*d),
                per(*s),
                each,
                total
            );
        }
    }
    println!(
        "  (HPKE suite {suite:?}; SHA-256 timed at the mean input of {:.0} B; seal/open at the mean message size)",
        (device_ops.sha256_bytes + server_ops.sha256_bytes) as f64
            / (device_ops.sha256 + server_ops.sha256).max(1) as f64
    );
    println!("  d = {floor_us:.1} us per session");

    // ---- (b) bare mutual-TLS handshakes ----
    let handshake_us = bare_handshakes(plan, &fleet)?;
    println!();
    println!(
        "(b) bare rustls mutual-TLS handshakes (TLS 1.3, ring, in memory): {:.0} /s ({handshake_us:.1} us each)",
        1e6 / handshake_us
    );

    // ---- (c) in process ----
    let in_process_us = in_process(plan, &fleet, &pinned).await?;
    println!();
    println!(
        "(c) in-process sessions (device + service, in-memory store): {:.0} /s ({in_process_us:.1} us each)",
        1e6 / in_process_us
    );

    // ---- (a) HTTPS, in-memory store ----
    let service = fleet
        .service_on(MemoryStore::new(), ServiceConfig::default(), now_ms())
        .await?;
    let https_us = over_https(plan, &fleet, &pinned, service, fleet.devices.len()).await?;
    println!();
    println!(
        "(a) HTTPS sessions with mutual TLS (loopback, in-memory store): {:.0} /s ({https_us:.1} us each)",
        1e6 / https_us
    );

    // ---- (a') HTTPS, SQLite store ----
    let dir = tempfile::tempdir()?;
    let sqlite = SqliteStore::open(
        dir.path().join("bench.db"),
        &StaticDataKey([5; 32]),
        SqliteOptions::default(),
    )
    .await?;
    let registering = Clock::now();
    let sqlite_fleet_size = plan.sqlite_devices.min(fleet.devices.len());
    let service = fleet
        .service_on_first(
            sqlite,
            ServiceConfig::default(),
            now_ms(),
            sqlite_fleet_size,
        )
        .await?;
    println!();
    println!(
        "    ({} devices registered on the SQLite store at {} in {:.1} s)",
        sqlite_fleet_size,
        dir.path().display(),
        registering.elapsed().as_secs_f64()
    );
    let sqlite_us = over_https(plan, &fleet, &pinned, service, sqlite_fleet_size).await?;
    println!(
        "(a') HTTPS sessions with mutual TLS (loopback, SQLite store, durable commits): {:.0} /s ({sqlite_us:.1} us each)",
        1e6 / sqlite_us
    );

    // ---- apart: the PIN check ----
    let pbkdf2_us = pin_check(plan)?;
    println!();
    println!(
        "apart: PBKDF2-HMAC-SHA-256 PIN check ({DEFAULT_PIN_ITERATIONS} iterations, once per session for a device with a PIN): {:.0} us ({:.1} /s)",
        pbkdf2_us,
        1e6 / pbkdf2_us
    );

    // ---- ratios ----
    let transport_ratio = https_us / (handshake_us + floor_us);
    let process_ratio = in_process_us / floor_us;
    println!();
    println!(
        "ratio 1/a / (1/b + d) = {https_us:.1} / ({handshake_us:.1} + {floor_us:.1}) = {transport_ratio:.3}   (goal <= 1.30: {})",
        if transport_ratio <= 1.3 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "ratio 1/c / d         = {in_process_us:.1} / {floor_us:.1} = {process_ratio:.3}   (goal <= 1.25: {})",
        if process_ratio <= 1.25 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "(SQLite, for reference: 1/a' / (1/b + d) = {:.3})",
        sqlite_us / (handshake_us + floor_us)
    );
    println!("total run time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn now_ms() -> Instant {
    Instant(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

/// Runs `count` in-process sessions with a counting provider on each side; returns the
/// device's and the server's counts over all of them.
async fn count_operations(
    fleet: &Fleet,
    count: usize,
) -> Result<(OperationCounts, OperationCounts), BenchError> {
    let (_, pinned) = fleet.ring()?;
    let server_side = Arc::new(CountingProvider::new(RustCryptoProvider));
    let device_side = Arc::new(CountingProvider::new(RustCryptoProvider));
    let service = fleet
        .service_on(MemoryStore::new(), ServiceConfig::default(), NOW)
        .await?
        .with_provider(server_side.clone());
    let before = server_side.counts();
    let mut server_rng = ChaCha20Rng::seed_from_u64(2);
    let mut device_rng = ChaCha20Rng::seed_from_u64(3);
    for kit in fleet.devices.iter().cycle().take(count) {
        in_process_session(
            &service,
            kit,
            &pinned,
            device_side.clone(),
            NOW,
            &mut server_rng,
            &mut device_rng,
        )
        .await?;
    }
    Ok((device_side.counts(), server_side.counts().since(&before)))
}

/// Mean time of `f` in microseconds, run for about `window` after a short warm-up.
fn time_us(window: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let start = Clock::now();
    let mut n = 0u64;
    while start.elapsed() < window || n < 10 {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Times each operation the counts name, with the suite and sizes the sessions used.
fn time_operations(
    plan: &Plan,
    suite: zerotouch_core::CipherSuite,
    device: &OperationCounts,
    server: &OperationCounts,
    sessions: usize,
) -> Result<Vec<(&'static str, f64)>, BenchError> {
    let _ = sessions;
    let p = RustCryptoProvider;
    let w = plan.op_window;
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mean = |bytes: u64, n: u64| usize::try_from(bytes / n.max(1)).unwrap_or(0);
    let hash_input = vec![
        0x5a;
        mean(
            device.sha256_bytes + server.sha256_bytes,
            device.sha256 + server.sha256,
        )
    ];
    let sealed_len = mean(
        device.hpke_seal_bytes + server.hpke_seal_bytes,
        device.hpke_seal_messages + server.hpke_seal_messages,
    );
    let plaintext = vec![0x42; sealed_len];
    let tbs = ToBeSigned::new(vec![0x33; 200], &p);
    let mut out = Vec::new();
    for alg in [
        SignatureAlgorithm::Ed25519,
        SignatureAlgorithm::EcdsaP256Sha256,
    ] {
        let signer = SoftwareSigner::new(SigningKey::generate(alg, &mut rng)?);
        let sig = signer.sign(&tbs)?;
        let (sign_name, verify_name) = match alg {
            SignatureAlgorithm::Ed25519 => ("Ed25519 sign", "Ed25519 verify"),
            SignatureAlgorithm::EcdsaP256Sha256 => ("ECDSA P-256 sign", "ECDSA P-256 verify"),
        };
        out.push((
            sign_name,
            time_us(w, || {
                black_box(p.sign(&signer, black_box(&tbs))).expect("sign");
            }),
        ));
        out.push((
            verify_name,
            time_us(w, || {
                p.verify_signature(signer.public_key(), black_box(&tbs), &sig)
                    .expect("verify");
            }),
        ));
    }
    out.push((
        "SHA-256",
        time_us(w, || {
            black_box(p.sha256(&[black_box(&hash_input)]));
        }),
    ));
    out.push((
        "HMAC-SHA-256",
        time_us(w, || {
            black_box(p.hmac_sha256(&[7; 32], &[black_box(&hash_input)]));
        }),
    ));
    out.push((
        "HPKE key generation",
        time_us(w, || {
            black_box(p.hpke_generate(suite, &mut rng)).expect("generate");
        }),
    ));
    let recipient = p.hpke_generate(suite, &mut rng)?;
    let private = recipient.private_bytes();
    out.push((
        "HPKE key restore",
        time_us(w, || {
            black_box(p.hpke_restore(suite, black_box(&private))).expect("restore");
        }),
    ));
    let aad = [0x11; 32];
    out.push((
        "HPKE seal (encapsulation)",
        time_us(w, || {
            black_box(p.hpke_seal(
                suite,
                recipient.public_key(),
                b"bench",
                &aad,
                &[&plaintext],
                &mut rng,
            ))
            .expect("seal");
        }),
    ));
    let sealed = p.hpke_seal(
        suite,
        recipient.public_key(),
        b"bench",
        &aad,
        &[&plaintext],
        &mut rng,
    )?;
    let ciphertext = sealed.ciphertexts.first().cloned().unwrap_or_default();
    out.push((
        "HPKE open (decapsulation)",
        time_us(w, || {
            black_box(p.hpke_open(
                &recipient,
                &sealed.encapsulated_key,
                b"bench",
                &aad,
                &[&ciphertext],
            ))
            .expect("open");
        }),
    ));
    Ok(out)
}

/// Microseconds per bare mutual-TLS handshake, client and server in memory.
fn bare_handshakes(plan: &Plan, fleet: &Fleet) -> Result<f64, BenchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(fleet.manufacturer.certificate_der().to_vec().into())?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let mut server_config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            fleet.server_certificate.chain(),
            fleet.server_certificate.private_key(),
        )?;
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_config = Arc::new(server_config);
    let clients = client_configs(fleet, 64)?;
    let name = ServerName::try_from(SERVER_NAME)?;
    let mut i = 0usize;
    let mut failure = None;
    let us = time_us(plan.window / 2, || {
        let client = clients.get(i % clients.len()).expect("a client config");
        i += 1;
        if let Err(e) = handshake(client, &server_config, &name) {
            failure.get_or_insert(e);
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(us),
    }
}

/// The first `n` devices' TLS configurations, resumption off: every handshake is a full one.
fn client_configs(fleet: &Fleet, n: usize) -> Result<Vec<Arc<ClientConfig>>, BenchError> {
    fleet
        .devices
        .iter()
        .take(n)
        .map(|kit| {
            let config = device_tls_config(
                kit.certificate.clone(),
                Arc::clone(&kit.signer),
                ServerTrust::Ca {
                    ca_der: fleet.server_ca.certificate_der().to_vec(),
                    check_dates: false,
                },
            )?;
            let mut config = (*config).clone();
            config.resumption = rustls::client::Resumption::disabled();
            Ok(Arc::new(config))
        })
        .collect()
}

fn handshake(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    name: &ServerName<'static>,
) -> Result<(), BenchError> {
    let mut c = ClientConnection::new(Arc::clone(client), name.clone())?;
    let mut s = ServerConnection::new(Arc::clone(server))?;
    let mut buf = Vec::new();
    for _ in 0..16 {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf)?;
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            s.read_tls(&mut rd)?;
            s.process_new_packets()?;
        }
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf)?;
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            c.read_tls(&mut rd)?;
            c.process_new_packets()?;
        }
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

/// Microseconds per in-process session, devices taking turns.
async fn in_process(
    plan: &Plan,
    fleet: &Fleet,
    pinned: &zerotouch_core::PinnedKeys,
) -> Result<f64, BenchError> {
    let service = fleet
        .service_on(MemoryStore::new(), ServiceConfig::default(), NOW)
        .await?;
    let mut server_rng = ChaCha20Rng::seed_from_u64(4);
    let mut device_rng = ChaCha20Rng::seed_from_u64(5);
    let mut devices = fleet.devices.iter().cycle();
    // Warm-up, then the window.
    let mut run = async |n: Option<usize>, window: Duration| -> Result<(u64, f64), BenchError> {
        let start = Clock::now();
        let mut done = 0u64;
        loop {
            if n.is_some_and(|n| done >= n as u64) || (n.is_none() && start.elapsed() >= window) {
                return Ok((done, start.elapsed().as_secs_f64()));
            }
            let kit = devices.next().ok_or("no devices")?;
            in_process_session(
                &service,
                kit,
                pinned,
                RustCryptoProvider,
                NOW,
                &mut server_rng,
                &mut device_rng,
            )
            .await?;
            done += 1;
        }
    };
    run(Some(50), Duration::ZERO).await?;
    let (n, secs) = run(None, plan.window).await?;
    println!("    ({n} sessions in {secs:.2} s)");
    Ok(secs * 1e6 / n as f64)
}

/// One device's HTTPS connection to the server, kept for the whole session: setup-network
/// messages to the setup endpoint, revocation queries to the revocation endpoint.
struct OneConnection {
    channel: HttpsChannel,
}

impl Carrier for OneConnection {
    async fn carry(&mut self, _path: Path, message: Vec<u8>) -> Result<Vec<u8>, BenchError> {
        let target = match Envelope::decode(&message).map(|e| e.header.tag) {
            Ok(MessageTag::RevocationQuery) => REVOCATION_PATH,
            _ => SETUP_PATH,
        };
        let reply = self
            .channel
            .request(hyper::Method::POST, target, &[], Some((CBOR, message)))
            .await?;
        if reply.content_type.as_deref() == Some(CBOR) {
            Ok(reply.body)
        } else {
            Err(format!("HTTP {}: {}", reply.status, reply.text()).into())
        }
    }
}

/// Microseconds per HTTPS session with mutual TLS against `service`, the first `devices`
/// devices taking turns.
async fn over_https<St: zerotouch_store::Store + 'static>(
    plan: &Plan,
    fleet: &Fleet,
    pinned: &zerotouch_core::PinnedKeys,
    service: zerotouch_server::SetupService<St, SoftwareSigner>,
    devices: usize,
) -> Result<f64, BenchError> {
    let limits = Limits {
        // Every device connects from 127.0.0.1: the per-address limits would be what is
        // measured. Per-certificate limits and everything else stay at their defaults.
        per_address: RateLimit {
            burst: 1_000_000,
            per_second: 1_000_000.0,
        },
        max_connections_per_address: 10_000,
        ..Limits::default()
    };
    let server = serve(
        HttpConfig {
            listen: "127.0.0.1:0".parse()?,
            ops_listen: None,
            certificate_chain: fleet.server_certificate.chain(),
            private_key: fleet.server_certificate.private_key(),
            device_cas: vec![fleet.manufacturer.certificate_der().to_vec().into()],
            registrar_cas: vec![],
            provisioner_cas: vec![],
            operator_token_sha256: None,
            limits,
        },
        Arc::new(service),
    )
    .await?;
    let endpoint = ServerEndpoint::new(server.local_addr(), SERVER_NAME);
    let configs = client_configs(fleet, devices)?;
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut i = 0usize;
    let mut one = async |rng: &mut ChaCha20Rng| -> Result<(), BenchError> {
        let idx = i % devices.max(1);
        i += 1;
        let kit = fleet.devices.get(idx).ok_or("no device")?;
        let tls = configs.get(idx).ok_or("no config")?;
        let mut carrier = OneConnection {
            channel: HttpsChannel::new(endpoint.clone(), Arc::clone(tls)),
        };
        let mut device = device_session(kit, pinned, RustCryptoProvider)?;
        run_session(&mut device, &mut carrier, now_ms(), rng).await
    };
    for _ in 0..20 {
        one(&mut rng).await?;
    }
    let start = Clock::now();
    let mut n = 0u64;
    while start.elapsed() < plan.window {
        one(&mut rng).await?;
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("    ({n} sessions in {secs:.2} s)");
    server.shutdown().await;
    Ok(secs * 1e6 / n as f64)
}

/// Microseconds per PIN check at the default iteration count.
fn pin_check(plan: &Plan) -> Result<f64, BenchError> {
    let pin = Pin::new("482915")?;
    let record = PinRecord::new(&pin, DEFAULT_PIN_ITERATIONS)?;
    Ok(time_us(plan.window / 8, || {
        assert!(record.verify(black_box(&pin)));
    }))
}
