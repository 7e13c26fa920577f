//! A complete flow-1 session over the BLE binding's simulated GATT link, at ATT MTU 23, 185
//! and 247, against the fewest ATT operations the same messages need and against the same
//! session in process.
//!
//! Each run starts a fresh world: the setup service on the embedded SQLite store (a new
//! database in a temporary directory) with the bench fleet's first device imported and
//! registered (`Fleet::service_on_first`: certificate identity, one account with the home
//! network). The device (a real `DeviceSession`, transport BLE on both networks) runs flow 1
//! from first boot to `Complete` through `zerotouch_device_tokio::drive`, its `Exchange` a
//! `BleChannel` over the peripheral end of `simulated_gatt(mtu)`. The central end is a
//! `BleChannel` too, in a task standing for the provisioner: it hands each whole message to
//! `SetupService::handle` in process (as relayed over BLE) and sends the answer back. Only
//! `drive` is timed.
//!
//! Per MTU it prints: the protocol bytes (the messages' lengths, both ways), the attribute
//! value bytes the link carried (written by the central, indicated by the peripheral; ATT
//! headers excluded; from `GattControl`'s counters), the payload efficiency protocol ÷
//! attribute bytes, the ATT operations per direction beside the ideal (Σ ⌈len / (MTU − 3)⌉
//! over the messages: every operation a full attribute value of message bytes, no header)
//! and the ratio ours / ideal, and the session's median time beside the in-process reference
//! measured in the same run (the device talking to `SetupService::handle` directly). The
//! issue's goal is at least 85 % payload efficiency at MTU 23.
//!
//! `cargo bench -p zerotouch-benches --bench ble_session` (a few seconds); `ZT_BENCH_RUNS=n`
//! sets the runs per case (default 10).

use std::sync::Arc;
use std::time::{Duration, Instant as Clock, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_benches::{BenchError, Fleet, device_suites, scan};
use zerotouch_ble::simulated::{DirectionCounts, GattControl, simulated_gatt};
use zerotouch_ble::{BleChannel, LinkConfig};
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::{Instant, Passphrase, PinnedKeys, Signer, SoftwareSigner, Transport};
use zerotouch_device::{
    DeviceConfig, DeviceSession, Event, JoinResult, MemoryDeviceState, Path, RetryPolicy, Trigger,
};
use zerotouch_device_tokio::{Exchange, Radio, drive};
use zerotouch_server::{ServiceConfig, SetupService, TransportIdentity};
use zerotouch_store::{SqliteOptions, SqliteStore, StaticDataKey};

/// The MTUs measured.
const MTUS: [u16; 3] = [23, 185, 247];
/// Runs per case unless `ZT_BENCH_RUNS` says otherwise.
const DEFAULT_RUNS: usize = 10;
/// Longest a session may take before the bench gives up on it.
const SESSION_BOUND: Duration = Duration::from_secs(60);
/// The goal: protocol bytes ÷ attribute-value bytes at MTU 23.
const EFFICIENCY_GOAL: f64 = 0.85;

type Service = SetupService<SqliteStore, SoftwareSigner>;

/// The wall clock as the protocol's instant.
fn wall_now() -> Instant {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Instant(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The server side of one run.
struct World {
    service: Arc<Service>,
    pinned: PinnedKeys,
    _dir: tempfile::TempDir,
}

impl World {
    /// A new SQLite store (WAL, durable commits) with the fleet's first device registered.
    async fn start(fleet: &Fleet) -> Result<World, BenchError> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(
            dir.path().join("zerotouch.db"),
            &StaticDataKey([7; 32]),
            SqliteOptions::default(),
        )
        .await?;
        let (_, pinned) = fleet.ring()?;
        let service = fleet
            .service_on_first(store, ServiceConfig::default(), wall_now(), 1)
            .await?;
        Ok(World {
            service: Arc::new(service),
            pinned,
            _dir: dir,
        })
    }
}

/// The fleet's first device, speaking flow 1 over BLE on both networks.
fn device(
    fleet: &Fleet,
    pinned: &PinnedKeys,
) -> Result<DeviceSession<Arc<SoftwareSigner>, MemoryDeviceState>, BenchError> {
    let kit = fleet.devices.first().ok_or("the fleet has no device")?;
    let config = DeviceConfig {
        transport: Transport::Ble,
        home_transport: Transport::Ble,
        identity: DeviceIdentityRef::Certificate(kit.certificate.clone()),
        pin: None,
        radio_bands: 3,
        radio_security: 3,
        suites: device_suites(),
        retry: RetryPolicy::default(),
    };
    Ok(DeviceSession::new(
        config,
        pinned.clone(),
        Arc::clone(&kit.signer),
        MemoryDeviceState::new(),
    )?)
}

/// Sees the bench's networks and joins any.
struct BenchRadio;

impl Radio for BenchRadio {
    async fn scan(&mut self) -> Vec<ReportedNetwork> {
        scan()
    }

    async fn join(&mut self, _ssid: &[u8], _security: u8, _passphrase: &Passphrase) -> JoinResult {
        JoinResult::Joined
    }

    async fn leave(&mut self) {}
}

/// How the provisioner's relay presents a BLE device's message to the service.
fn relayed() -> TransportIdentity {
    let relay = SoftwareSigner::new(zerotouch_store_suite::fixtures::device_key(200));
    TransportIdentity::Relayed {
        relay: relay.key_id(),
        device_transport: Transport::Ble,
    }
}

/// Runs the device through flow 1 over `exchange` and times it; fails unless the session
/// completed on the home network with the revocation check done.
async fn session<X: Exchange>(
    fleet: &Fleet,
    world: &World,
    exchange: &mut X,
    seed: u64,
) -> Result<Duration, BenchError> {
    let mut device = device(fleet, &world.pinned)?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let started = Clock::now();
    let run = drive(
        &mut device,
        Trigger::FirstBoot,
        exchange,
        &mut BenchRadio,
        &mut rng,
        SESSION_BOUND,
    )
    .await;
    let time = started.elapsed();
    match run {
        Ok(run)
            if run.joined.as_deref() == Some(&b"home"[..])
                && run.transport_failures == 0
                && run.events.iter().any(|e| {
                    matches!(
                        e,
                        Event::Complete {
                            revocation_checked: true
                        }
                    )
                }) =>
        {
            Ok(time)
        }
        other => Err(format!("the session did not complete: {other:?}").into()),
    }
}

/// The reference: `SetupService::handle` called directly; records the messages' sizes.
struct InProcess {
    service: Arc<Service>,
    from: TransportIdentity,
    rng: ChaCha20Rng,
    sizes: Vec<usize>,
}

impl Exchange for InProcess {
    type Error = std::convert::Infallible;

    async fn exchange(&mut self, _path: Path, message: Vec<u8>) -> Result<Vec<u8>, Self::Error> {
        self.sizes.push(message.len());
        let answer = self
            .service
            .handle(&message, &self.from, wall_now(), &mut self.rng)
            .await;
        self.sizes.push(answer.len());
        Ok(answer)
    }
}

/// One session over the simulated GATT link.
struct BleRun {
    time: Duration,
    /// Every message's length, in order (device, server, device, ...).
    sizes: Vec<usize>,
    written: DirectionCounts,
    indicated: DirectionCounts,
}

impl BleRun {
    fn protocol_bytes(&self) -> u64 {
        self.sizes.iter().map(|&n| n as u64).sum()
    }

    fn attribute_bytes(&self) -> u64 {
        self.written.value_bytes + self.indicated.value_bytes
    }

    fn operations(&self) -> u64 {
        self.written.operations + self.indicated.operations
    }

    /// Σ ⌈len / (MTU − 3)⌉: the fewest ATT operations the messages take.
    fn ideal_operations(&self, mtu: u16) -> u64 {
        let capacity = (usize::from(mtu) - 3).min(512);
        self.sizes
            .iter()
            .map(|&n| n.div_ceil(capacity).max(1) as u64)
            .sum()
    }

    fn efficiency(&self) -> f64 {
        self.protocol_bytes() as f64 / self.attribute_bytes() as f64
    }
}

/// The provisioner: whole messages from the device to the service and back, until the
/// device's end goes away. Returns the messages' lengths.
async fn provisioner(
    mut central: BleChannel<zerotouch_ble::simulated::SimulatedBearer>,
    service: Arc<Service>,
    seed: u64,
) -> Vec<usize> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let from = relayed();
    let mut sizes = Vec::new();
    while let Ok(request) = central.recv().await {
        let answer = service.handle(&request, &from, wall_now(), &mut rng).await;
        sizes.extend([request.len(), answer.len()]);
        if central.send(answer).await.is_err() {
            break;
        }
    }
    sizes
}

async fn ble_run(fleet: &Fleet, mtu: u16, seed: u64) -> Result<BleRun, BenchError> {
    let world = World::start(fleet).await?;
    let (peripheral, central, control): (_, _, GattControl) = simulated_gatt(mtu);
    let central = BleChannel::new(central, LinkConfig::default());
    let relay = tokio::spawn(provisioner(
        central,
        Arc::clone(&world.service),
        1000 + seed,
    ));
    let mut device_side = BleChannel::new(peripheral, LinkConfig::default());
    let time = session(fleet, &world, &mut device_side, seed).await?;
    // The device's end goes away: the provisioner's next wait ends.
    drop(device_side);
    let sizes = relay.await?;
    Ok(BleRun {
        time,
        sizes,
        written: control.central_to_peripheral(),
        indicated: control.peripheral_to_central(),
    })
}

async fn in_process_run(fleet: &Fleet, seed: u64) -> Result<(Duration, Vec<usize>), BenchError> {
    let world = World::start(fleet).await?;
    let mut exchange = InProcess {
        service: Arc::clone(&world.service),
        from: relayed(),
        rng: ChaCha20Rng::seed_from_u64(1000 + seed),
        sizes: Vec::new(),
    };
    let time = session(fleet, &world, &mut exchange, seed).await?;
    Ok((time, exchange.sizes))
}

// ---------------------------------------------------------------------------------------
// Report.

/// Median (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let at = |i: usize| v.get(i).copied().unwrap_or(f64::NAN);
    if n % 2 == 1 {
        at(n / 2)
    } else {
        (at(n / 2 - 1) + at(n / 2)) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn row(label: &str, cells: &[String]) {
    print!("{label:<52}");
    for c in cells {
        print!(" {c:>12}");
    }
    println!();
}

fn print_report(results: &[(u16, Vec<BleRun>)], reference: &[Duration], reference_sizes: &[usize]) {
    let first = |runs: &[BleRun]| {
        runs.first()
            .map(|r| (r.sizes.clone(), r.written, r.indicated))
    };
    println!();
    println!("messages of run 1 (bytes, in order; device -> server, server -> device, ...):");
    if let Some((_, runs)) = results.first()
        && let Some((sizes, _, _)) = first(runs)
    {
        println!("  {sizes:?}");
        if sizes != reference_sizes {
            println!("  (in process: {reference_sizes:?})");
        }
    }
    println!();
    row(
        "",
        &results
            .iter()
            .map(|(mtu, _)| format!("MTU {mtu}"))
            .collect::<Vec<_>>(),
    );
    let each = |label: &str, f: &dyn Fn(u16, &[BleRun]) -> String| {
        row(
            label,
            &results
                .iter()
                .map(|(mtu, runs)| f(*mtu, runs))
                .collect::<Vec<_>>(),
        );
    };
    // Every run carries the same messages; the figures below are run 1's unless said.
    let one = |runs: &[BleRun], f: &dyn Fn(&BleRun) -> String| {
        runs.first().map_or_else(|| "-".to_owned(), f)
    };
    each(
        "attribute value capacity min(MTU - 3, 512) (B)",
        &|mtu, _| format!("{}", (usize::from(mtu) - 3).min(512)),
    );
    each("messages", &|_, r| one(r, &|x| x.sizes.len().to_string()));
    each("protocol bytes (messages, both ways)", &|_, r| {
        one(r, &|x| x.protocol_bytes().to_string())
    });
    each("attribute-value bytes (written + indicated)", &|_, r| {
        one(r, &|x| x.attribute_bytes().to_string())
    });
    each(
        "  written by the central (the server's answers)",
        &|_, r| one(r, &|x| x.written.value_bytes.to_string()),
    );
    each(
        "  indicated by the peripheral (the device's messages)",
        &|_, r| one(r, &|x| x.indicated.value_bytes.to_string()),
    );
    each("payload efficiency protocol / attribute bytes", &|_, r| {
        one(r, &|x| format!("{:.1} %", 100.0 * x.efficiency()))
    });
    each("ATT operations, ours", &|_, r| {
        one(r, &|x| x.operations().to_string())
    });
    each("  Write Requests (central -> peripheral)", &|_, r| {
        one(r, &|x| x.written.operations.to_string())
    });
    each(
        "  Handle Value Indications (peripheral -> central)",
        &|_, r| one(r, &|x| x.indicated.operations.to_string()),
    );
    each(
        "ATT operations, ideal sum ceil(len / (MTU - 3))",
        &|mtu, r| one(r, &|x| x.ideal_operations(mtu).to_string()),
    );
    each("ratio operations ours / ideal", &|mtu, r| {
        one(r, &|x| {
            format!(
                "{:.3}",
                x.operations() as f64 / x.ideal_operations(mtu) as f64
            )
        })
    });
    each("ATT PDU bytes (values + 3-byte headers)", &|_, r| {
        one(r, &|x| {
            (x.attribute_bytes() + 3 * x.operations()).to_string()
        })
    });
    each("largest value (B)", &|_, r| {
        one(r, &|x| {
            x.written
                .largest_value
                .max(x.indicated.largest_value)
                .to_string()
        })
    });
    each("lost operations, cuts", &|_, r| {
        one(r, &|x| (x.written.lost + x.indicated.lost).to_string())
    });
    let reference_ms = median(&reference.iter().map(|d| ms(*d)).collect::<Vec<_>>());
    let times = |runs: &[BleRun]| median(&runs.iter().map(|x| ms(x.time)).collect::<Vec<_>>());
    each("session time, median (ms)", &|_, r| {
        format!("{:.2}", times(r))
    });
    each("  least - most (ms)", &|_, r| {
        let all: Vec<f64> = r.iter().map(|x| ms(x.time)).collect();
        let least = all.iter().copied().fold(f64::INFINITY, f64::min);
        let most = all.iter().copied().fold(0.0, f64::max);
        format!("{least:.1}-{most:.1}")
    });
    each("reference in process, median (ms)", &|_, _| {
        format!("{reference_ms:.2}")
    });
    each("time ratio BLE (simulated) / in process", &|_, r| {
        format!("{:.2}", times(r) / reference_ms)
    });
    println!();
    for (mtu, runs) in results {
        if *mtu != 23 {
            continue;
        }
        let efficiency = runs.first().map_or(0.0, BleRun::efficiency);
        println!(
            "goal: payload efficiency >= {:.0} % at MTU 23 ({:.1} %): {}",
            100.0 * EFFICIENCY_GOAL,
            100.0 * efficiency,
            if efficiency >= EFFICIENCY_GOAL {
                "met"
            } else {
                "not met"
            }
        );
    }
    println!(
        "  (ours: a 4-byte header on a message's first segment, 1 byte on each after; the ideal has no header at all)"
    );
}

async fn bench(runs: usize) -> Result<(), BenchError> {
    let fleet = Fleet::new(1, 1)?;
    let started = Clock::now();
    println!(
        "ble_session: flow 1 over the BLE binding's simulated GATT link (zerotouch_ble::simulated)"
    );
    println!(
        "  device: DeviceSession (certificate identity, transport BLE) driven by zerotouch_device_tokio::drive over a"
    );
    println!(
        "  BleChannel (peripheral, indications); provisioner: a BleChannel (central, Write Requests) handing each"
    );
    println!(
        "  message to SetupService::handle in process (relayed, device transport BLE); store: embedded SQLite"
    );
    println!(
        "  {runs} runs per MTU and in process, interleaved, each on a fresh world (after one unmeasured run of each);"
    );
    println!("  only the session (drive from first boot to Complete) is timed");
    // One unmeasured session of each kind first, then the runs interleaved (the reference,
    // then each MTU) so that a drift of the machine or the file system touches all alike.
    in_process_run(&fleet, 0).await?;
    for mtu in MTUS {
        ble_run(&fleet, mtu, 0).await?;
    }
    let mut results: Vec<(u16, Vec<BleRun>)> = MTUS
        .iter()
        .map(|&mtu| (mtu, Vec::with_capacity(runs)))
        .collect();
    let mut reference = Vec::with_capacity(runs);
    let mut reference_sizes = Vec::new();
    for i in 0..runs {
        let seed = i as u64 + 1;
        let (time, sizes) = in_process_run(&fleet, seed).await?;
        reference.push(time);
        reference_sizes = sizes;
        for (mtu, mtu_runs) in &mut results {
            mtu_runs.push(ble_run(&fleet, *mtu, seed).await?);
        }
    }
    // The same messages whatever the run: the counts printed are run 1's.
    let counts = |r: &BleRun| (r.sizes.clone(), r.operations(), r.attribute_bytes());
    for (mtu, mtu_runs) in &results {
        if let Some(first) = mtu_runs.first() {
            let differing = mtu_runs
                .iter()
                .filter(|r| counts(r) != counts(first))
                .count();
            if differing > 0 {
                println!("  note: at MTU {mtu}, {differing} runs carried other sizes than run 1");
            }
        }
    }
    print_report(&results, &reference, &reference_sizes);
    println!();
    println!("total run time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> Result<(), BenchError> {
    let runs = std::env::var("ZT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_RUNS);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench(runs))
}
