//! The BlueZoo simulator on a private D-Bus: BlueZ's D-Bus API with two adapters and no
//! radio, for tests and examples on machines without Bluetooth.
//!
//! [`Bluezoo::start`] runs `dbus-daemon` and BlueZoo (through the launcher script
//! `bluezoo/launch.py` of this crate, which sets the ATT MTU BlueZoo reports); dropping the
//! [`Bluezoo`] ends both. `bluer` finds the bus in `DBUS_SYSTEM_BUS_ADDRESS`, which a program
//! cannot set for itself without `unsafe`, so the code that uses the simulator runs in a child
//! process that [`Bluezoo::run`] starts with the variable set:
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//! use zerotouch_ble::bluez::bluezoo::Bluezoo;
//!
//! if let Some(mtu) = Bluezoo::mtu_from_env() {
//!     // The child: BlePeripheral on hci0, BleCentral on hci1, at `mtu`.
//! } else {
//!     let simulator = Bluezoo::start(23)?;
//!     let status = simulator.run(Command::new(std::env::current_exe()?), Duration::from_secs(60))?;
//!     assert!(status.success());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What the simulator does not do: it does not enforce the MTU (the central checks sizes
//! itself), it has no long writes and no radio timing.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Error;

/// The BlueZoo release the launcher's MTU patch was written against (what
/// `scripts/system-deps.sh` installs).
pub const BLUEZOO_VERSION: &str = "1.0.2";
/// The adapter a peripheral uses (`00:11:22:33:44:55`).
pub const PERIPHERAL_ADAPTER: &str = "hci0";
/// The adapter a central uses (`00:AA:BB:CC:DD:EE`).
pub const CENTRAL_ADAPTER: &str = "hci1";
/// The variable naming the simulator's bus, which `bluer` reads.
pub const BUS_VARIABLE: &str = "DBUS_SYSTEM_BUS_ADDRESS";
/// The variable telling a child process the MTU the simulator reports.
pub const MTU_VARIABLE: &str = "ZEROTOUCH_BLUEZOO_MTU";

const LAUNCHER: &str = include_str!("../../bluezoo/launch.py");
const ADAPTERS: [&str; 2] = ["00:11:22:33:44:55", "00:AA:BB:CC:DD:EE"];
const STARTUP: Duration = Duration::from_secs(20);
const INSTALL_HINT: &str = "install it with: bash scripts/system-deps.sh";

/// A running simulator: a private `dbus-daemon` and BlueZoo on it, both ended on drop.
#[derive(Debug)]
pub struct Bluezoo {
    address: String,
    mtu: u16,
    version: String,
    // BlueZoo first: it ends the bus too when its standard input closes.
    _simulator: Process,
    _bus: Process,
}

impl Bluezoo {
    /// Starts the bus and BlueZoo with adapters [`PERIPHERAL_ADAPTER`] and
    /// [`CENTRAL_ADAPTER`], powered, scanning every second, reporting ATT MTU `mtu`; returns
    /// once both adapters are on the bus (within 20 s).
    ///
    /// # Errors
    /// [`Error::Stack`] saying what to install when `dbus-daemon`, `python3` (3.11 or later,
    /// or `$ZEROTOUCH_PYTHON`) or its `bluezoo` package is missing, and what failed when a
    /// process did not start.
    pub fn start(mtu: u16) -> Result<Bluezoo, Error> {
        let daemon = find_program("dbus-daemon", &["/usr/bin", "/bin"]).ok_or_else(|| {
            harness(format!(
                "dbus-daemon not found on PATH or in /usr/bin (Debian package dbus); {INSTALL_HINT}"
            ))
        })?;
        let python = std::env::var_os("ZEROTOUCH_PYTHON").unwrap_or_else(|| "python3".into());
        let version = bluezoo_version(&python)?;

        let mut bus = Process::spawn(
            "dbus-daemon",
            Command::new(daemon)
                .args(["--session", "--nofork", "--print-address=1"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )?;
        let address = bus.read_line()?;
        if !address.starts_with("unix:") {
            return Err(harness(format!(
                "dbus-daemon printed {address:?}, not a bus address"
            )));
        }

        let mut launcher = Command::new(&python);
        launcher
            .args(["-c", LAUNCHER, "--mtu", &mtu.to_string()])
            .args(["--scan-interval", "1", "--bus-pid", &bus.id().to_string()])
            .args(ADAPTERS.iter().flat_map(|a| ["-a", a]))
            .env(BUS_VARIABLE, &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut simulator = Process::spawn("BlueZoo", &mut launcher)?;
        let ready = simulator.read_line()?;
        if ready != "ready" {
            return Err(harness(format!(
                "BlueZoo printed {ready:?} instead of ready"
            )));
        }
        Ok(Bluezoo {
            address,
            mtu,
            version,
            _simulator: simulator,
            _bus: bus,
        })
    }

    /// The private bus's address.
    pub fn bus_address(&self) -> &str {
        &self.address
    }

    /// The ATT MTU the simulator reports.
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// The installed BlueZoo's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The simulator's MTU when this process was started by [`run`](Self::run), that is
    /// when it is the child that talks to the simulator.
    pub fn mtu_from_env() -> Option<u16> {
        std::env::var(MTU_VARIABLE).ok()?.parse().ok()
    }

    /// Runs `command` with [`BUS_VARIABLE`] and [`MTU_VARIABLE`] set and waits for it; a
    /// child still running after `timeout` is killed. Its output goes where `command` sends it
    /// (inherited unless set).
    ///
    /// # Errors
    /// [`Error::Stack`] when the child cannot start or ran out of time.
    pub fn run(&self, mut command: Command, timeout: Duration) -> Result<ExitStatus, Error> {
        command
            .env(BUS_VARIABLE, &self.address)
            .env(MTU_VARIABLE, self.mtu.to_string())
            .stdin(Stdio::null());
        let mut child = Process::spawn("the child process", &mut command)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(harness(format!(
                    "the child process did not finish within {timeout:?} and was killed"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn harness(message: String) -> Error {
    Error::Stack(format!("BlueZoo harness: {message}"))
}

/// `program` on `PATH`, else in one of `fallback`.
fn find_program(program: &str, fallback: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(fallback.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_file(candidate))
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
}

/// The version of the `bluezoo` package `python` imports.
fn bluezoo_version(python: &OsString) -> Result<String, Error> {
    let missing = |why: String| {
        harness(format!(
            "{why}; BlueZoo needs Python 3.11 or later with `pip install bluezoo=={BLUEZOO_VERSION}` \
             (or set ZEROTOUCH_PYTHON to a python that has it); {INSTALL_HINT}"
        ))
    };
    let output = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m, bluezoo.bluezoo; print(m.version('bluezoo'))",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing(format!("cannot run {}: {e}", python.to_string_lossy())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no output");
        return Err(missing(format!(
            "{} cannot import bluezoo ({last})",
            python.to_string_lossy()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A child process killed and reaped on drop, whose first stdout lines can be read with a
/// deadline.
#[derive(Debug)]
struct Process {
    name: &'static str,
    child: Child,
    // Held open: the launcher exits when it closes (see launch.py).
    _stdin: Option<ChildStdin>,
    lines: Option<mpsc::Receiver<std::io::Result<String>>>,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command) -> Result<Process, Error> {
        let mut child = command
            .spawn()
            .map_err(|e| harness(format!("cannot start {name}: {e}")))?;
        let lines = child.stdout.take().map(|stdout| {
            let (tx, rx) = mpsc::channel();
            // Reads lines until the process closes its stdout, so it never blocks on a full
            // pipe.
            std::thread::spawn(move || read_lines(stdout, &tx));
            rx
        });
        let stdin = child.stdin.take();
        Ok(Process {
            name,
            child,
            _stdin: stdin,
            lines,
        })
    }

    fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next line the process prints, within [`STARTUP`].
    fn read_line(&mut self) -> Result<String, Error> {
        let name = self.name;
        let line = self
            .lines
            .as_ref()
            .ok_or_else(|| harness(format!("{name}'s output is not captured")))?
            .recv_timeout(STARTUP);
        match line {
            Ok(Ok(line)) => Ok(line),
            Ok(Err(e)) => Err(harness(format!("reading {name}'s output: {e}"))),
            Err(_) => {
                let status = self.child.try_wait().ok().flatten();
                Err(harness(match status {
                    Some(status) => format!("{name} exited ({status}) before it was ready"),
                    None => format!("{name} was not ready within {STARTUP:?}"),
                }))
            }
        }
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        let name = self.name;
        self.child
            .try_wait()
            .map_err(|e| harness(format!("waiting for {name}: {e}")))
    }
}

fn read_lines(stdout: impl Read, tx: &mpsc::Sender<std::io::Result<String>>) {
    for line in BufReader::new(stdout).lines() {
        let line = line.map(|l| l.trim().to_owned());
        if tx.send(line).is_err() {
            return;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
