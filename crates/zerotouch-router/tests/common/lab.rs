//! The topology, running commands and closures inside namespaces, and cleaning up.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use super::{HOME, MAC_A, MAC_B, ROUTER_HOME, ROUTER_SETUP, ROUTER_WAN, SERVER};
use super::{SERVER_BY_NAME, SERVER_OTHER};

/// Longest a command run by [`Lab::exec`] may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A machine of the lab, each in its own network namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// The router: setup bridge, home network, WAN; forwards IPv4.
    Router,
    /// Setup client A (MAC [`MAC_A`]), on bridge port `zts-a`.
    SetupA,
    /// Setup client B (MAC [`MAC_B`]), on bridge port `zts-b`.
    SetupB,
    /// A client on the home network.
    Home,
    /// The server on the WAN side (setup service, upstream resolver).
    Server,
}

impl Host {
    /// Every host, in the order the lab creates them.
    pub const ALL: [Host; 5] = [
        Host::Router,
        Host::SetupA,
        Host::SetupB,
        Host::Home,
        Host::Server,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn letter(self) -> char {
        match self {
            Host::Router => 'r',
            Host::SetupA => 'a',
            Host::SetupB => 'b',
            Host::Home => 'h',
            Host::Server => 's',
        }
    }
}

/// The lab: five namespaces wired together, the processes and service threads started in them,
/// and a temporary directory for configs and logs. Dropping it (also on a panic) stops
/// everything and deletes the namespaces.
pub struct Lab {
    prefix: String,
    names: [String; 5],
    created: Vec<String>,
    dir: tempfile::TempDir,
    children: Mutex<Vec<(String, Child)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
}

impl Lab {
    /// Creates the namespaces and wires the topology described in the module docs. Panics with
    /// the reason when the environment cannot (no root, no iproute2).
    pub fn build() -> Lab {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        tool("ip");
        remove_stale_namespaces();
        // The trailing '-' keeps lab 1's prefix from matching lab 10's namespaces.
        let prefix = format!(
            "zt{}x{}-",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        // The struct exists before the first namespace, so a panic half-way still cleans up.
        let mut lab = Lab {
            names: Host::ALL.map(|host| format!("{prefix}{}", host.letter())),
            prefix,
            created: Vec::new(),
            dir: tempfile::Builder::new()
                .prefix("zt-lab-")
                .tempdir()
                .expect("create the lab's temporary directory"),
            children: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
        };
        for host in Host::ALL {
            lab.add_namespace(host);
        }
        lab.wire();
        lab
    }

    fn add_namespace(&mut self, host: Host) {
        let name = self.ns(host).to_owned();
        let out = run(Command::new(tool("ip")).args(["netns", "add", &name]));
        if !out.status.success() {
            panic!(
                "network namespaces could not be created (`ip netns add {name}`: {}). The lab \
                 needs root and iproute2; scripts/system-deps.sh installs iproute2, nftables \
                 and dnsmasq.",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        self.created.push(name);
    }

    fn wire(&self) {
        use Host::*;
        let (a, b, home, server) = (
            self.ns(SetupA),
            self.ns(SetupB),
            self.ns(Home),
            self.ns(Server),
        );
        // The router creates every veth pair with the peer already in the client's namespace,
        // so no interface ever appears in the root namespace.
        self.ip_batch(
            Router,
            &format!(
                "link set lo up
                 link add zts type bridge forward_delay 0 stp_state 0
                 addr add {ROUTER_SETUP}/24 dev zts
                 link set zts up
                 link add zts-a type veth peer name eth0 netns {a}
                 link set zts-a master zts up
                 link add zts-b type veth peer name eth0 netns {b}
                 link set zts-b master zts up
                 link add zth type veth peer name eth0 netns {home}
                 addr add {ROUTER_HOME}/24 dev zth
                 link set zth up
                 link add ztw type veth peer name eth0 netns {server}
                 addr add {ROUTER_WAN}/24 dev ztw
                 link set ztw up"
            ),
        );
        for (client, mac) in [(SetupA, MAC_A), (SetupB, MAC_B)] {
            let mac = mac_text(mac);
            self.ip_batch(
                client,
                &format!("link set lo up\nlink set eth0 address {mac} up"),
            );
        }
        self.ip_batch(
            Home,
            &format!(
                "link set lo up
                 addr add {HOME}/24 dev eth0
                 link set eth0 up
                 route add default via {ROUTER_HOME}"
            ),
        );
        self.ip_batch(
            Server,
            &format!(
                "link set lo up
                 addr add {SERVER}/24 dev eth0
                 addr add {SERVER_BY_NAME}/24 dev eth0
                 addr add {SERVER_OTHER}/24 dev eth0
                 link set eth0 up
                 route add default via {ROUTER_WAN}"
            ),
        );
        // /proc/sys/net shows the namespace of the thread that opens it.
        self.in_ns(Router, || {
            fs::write("/proc/sys/net/ipv4/ip_forward", "1")
                .expect("turn on IPv4 forwarding in the router's namespace");
            // br_netfilter (loaded on many machines, e.g. by Docker) would pass frames bridged
            // between setup clients through the router's ip/inet hooks as "zts" to "zts": pinned
            // off, the lab behaves the same with and without it, like a router without it.
            for family in ["iptables", "ip6tables", "arptables"] {
                let path = format!("/proc/sys/net/bridge/bridge-nf-call-{family}");
                match fs::write(&path, "0") {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    written => written.unwrap_or_else(|e| panic!("write 0 to {path}: {e}")),
                }
            }
        });
    }

    /// Runs `ip -n NS -batch` over `script` (one `ip` command a line, without `ip`) and panics
    /// with its stderr and the script on failure.
    pub fn ip_batch(&self, host: Host, script: &str) {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = self
            .dir()
            .join(format!("ip-{}.batch", N.fetch_add(1, Ordering::Relaxed)));
        let script: Vec<_> = script.lines().map(str::trim).collect();
        fs::write(&path, script.join("\n")).expect("write an ip batch to the lab's directory");
        let out = run(Command::new(tool("ip"))
            .args(["-n", self.ns(host), "-batch"])
            .arg(&path));
        if !out.status.success() {
            panic!(
                "`ip -n {} -batch` failed: {}\n{}",
                self.ns(host),
                String::from_utf8_lossy(&out.stderr).trim(),
                script.join("\n")
            );
        }
    }

    /// Gives setup client `host` the address `ip/24` and a default route via the router, as the
    /// DHCP lease says.
    pub fn configure_address(&self, host: Host, ip: Ipv4Addr) {
        assert!(
            matches!(host, Host::SetupA | Host::SetupB),
            "only setup clients get their address late, not {host:?}"
        );
        self.ip_batch(
            host,
            &format!("addr add {ip}/24 dev eth0\nroute replace default via {ROUTER_SETUP}"),
        );
    }

    /// The network namespace's name of `host`.
    pub fn ns(&self, host: Host) -> &str {
        self.names
            .get(host.index())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// What every namespace name of this lab starts with (unique per lab and process).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The lab's temporary directory (configs, logs, lease files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `ip netns exec NS ARGS…` (killed after [`COMMAND_TIMEOUT`]) and returns its output.
    pub fn exec<S: AsRef<OsStr>>(&self, host: Host, args: &[S]) -> Output {
        run(Command::new(tool("ip"))
            .args(["netns", "exec", self.ns(host)])
            .args(args))
    }

    /// Like [`Lab::exec`], but panics with stderr unless the command succeeds; returns stdout.
    pub fn exec_ok<S: AsRef<OsStr>>(&self, host: Host, args: &[S]) -> String {
        let out = self.exec(host, args);
        let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        if !out.status.success() {
            panic!(
                "`{}` in {host:?} failed ({}): {}",
                shown.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Loads an nftables ruleset (`nft -f`) in `host`'s namespace; panics with nft's complaint
    /// and the numbered ruleset if nft rejects it.
    pub fn load_nftables(&self, host: Host, ruleset: &str) {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = self
            .dir()
            .join(format!("ruleset-{}.nft", N.fetch_add(1, Ordering::Relaxed)));
        fs::write(&path, ruleset).expect("write the ruleset to the lab's directory");
        let out = self.exec(
            host,
            &[tool("nft").as_os_str(), "-f".as_ref(), path.as_os_str()],
        );
        if !out.status.success() {
            let numbered: Vec<_> = ruleset
                .lines()
                .enumerate()
                .map(|(i, line)| format!("{:4} {line}", i + 1))
                .collect();
            panic!(
                "nft rejected the ruleset in {host:?}: {}\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                numbered.join("\n")
            );
        }
    }

    /// Runs `f` on a fresh thread moved into `host`'s network namespace and returns its value;
    /// sockets it creates and processes it spawns belong to that namespace.
    pub fn in_ns<T: Send>(&self, host: Host, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns(host));
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = File::open(&path)
                        .unwrap_or_else(|e| panic!("open {path} to enter the namespace: {e}"));
                    move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                        .unwrap_or_else(|e| panic!("enter the namespace {path}: {e}"));
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Starts a long-running `ip netns exec NS ARGS…`, its stdout and stderr appended to the log
    /// `name`; killed and reaped when the lab is dropped. Returns its process id.
    pub fn spawn<S: AsRef<OsStr>>(&self, host: Host, name: &str, args: &[S]) -> u32 {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(name))
            .expect("open a log file in the lab's directory");
        let child = Command::new(tool("ip"))
            .args(["netns", "exec", self.ns(host)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} in {host:?}: {e}"));
        let pid = child.id();
        lock(&self.children).push((name.to_owned(), child));
        pid
    }

    /// The exit status of the process `name` if it has ended (`None` while it runs or if there
    /// is no such process).
    pub fn exited(&self, name: &str) -> Option<ExitStatus> {
        let mut children = lock(&self.children);
        let (_, child) = children.iter_mut().find(|(n, _)| n == name)?;
        child.try_wait().ok().flatten()
    }

    /// Kills and reaps the process `name` (e.g. to restart it with another config).
    pub fn kill(&self, name: &str) {
        let mut children = lock(&self.children);
        children.retain_mut(|(n, child)| {
            if n == name {
                stop_child(child);
            }
            n != name
        });
    }

    /// What the process `name` wrote so far (for failure messages).
    pub fn log(&self, name: &str) -> String {
        match fs::read(self.log_path(name)) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(no log {name}: {e})"),
        }
    }

    /// Where the log `name` is written.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}.log"))
    }

    /// Runs `f` on a thread the lab joins when dropped; `f` must return soon after
    /// [`Lab::stop_flag`] is set.
    pub(crate) fn add_thread(&self, name: String, f: impl FnOnce() + Send + 'static) {
        let handle = thread::Builder::new()
            .name(name)
            .spawn(f)
            .expect("start a service thread");
        lock(&self.threads).push(handle);
    }

    /// Set when the lab is dropped: service threads stop.
    pub(crate) fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Threads first: their sockets keep a namespace alive after it is deleted.
        self.stop.store(true, Ordering::Relaxed);
        for handle in lock(&self.threads).drain(..) {
            let _ = handle.join();
        }
        for (_, child) in lock(&self.children).iter_mut() {
            stop_child(child);
        }
        if thread::panicking() {
            self.print_logs();
        }
        for name in self.created.iter().rev() {
            let out = run(Command::new(tool("ip")).args(["netns", "delete", name]));
            if !out.status.success() {
                // Not a panic: this may run during unwinding, where a second panic aborts.
                eprintln!(
                    "lab: could not delete namespace {name}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
}

impl Lab {
    /// On a failing test, the logs of every process go to stderr before they are deleted.
    fn print_logs(&self) {
        let Ok(entries) = fs::read_dir(self.dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension() == Some(OsStr::new("log")) {
                let text = fs::read_to_string(&path).unwrap_or_default();
                eprintln!("---- lab log {} ----\n{text}", path.display());
            }
        }
    }
}

/// The namespaces (`ip netns list`) whose names start with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    namespace_list()
        .into_iter()
        .filter(|name| name.starts_with(prefix))
        .collect()
}

fn namespace_list() -> Vec<String> {
    let out = run(Command::new(tool("ip")).args(["netns", "list"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        // Lines read "NAME" or "NAME (id: N)".
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Deletes namespaces of labs whose process is gone (killed by a test timeout or Ctrl-C, so no
/// Drop ran), and the processes still in them.
fn remove_stale_namespaces() {
    for name in namespace_list() {
        let Some((pid, rest)) = name
            .strip_prefix("zt")
            .and_then(|rest| rest.split_once('x'))
        else {
            continue;
        };
        let ours = pid.parse::<u32>().is_ok()
            && rest
                .split_once('-')
                .is_some_and(|(n, role)| n.parse::<u32>().is_ok() && role.len() == 1);
        if ours && !Path::new("/proc").join(pid).exists() {
            // Its processes (dnsmasq) outlived the test; another process may be cleaning up
            // at the same time, so failures are ignored.
            let out = run(Command::new(tool("ip")).args(["netns", "pids", &name]));
            let pids = String::from_utf8_lossy(&out.stdout).into_owned();
            if !pids.trim().is_empty() {
                run(Command::new(tool("kill"))
                    .arg("-KILL")
                    .args(pids.split_whitespace()));
            }
            run(Command::new(tool("ip")).args(["netns", "delete", &name]));
        }
    }
}

/// The path of a system tool, looked for on PATH and in /usr/sbin and /sbin; panics naming the
/// package to install when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let package = match name {
        "ip" => "iproute2",
        "nft" => "nftables",
        "kill" => "procps",
        other => other,
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found on PATH, in /usr/sbin or /sbin: the lab needs the {package} \
                 package (scripts/system-deps.sh installs iproute2, nftables and dnsmasq)"
            )
        })
}

/// Runs a command to completion, killing it after [`COMMAND_TIMEOUT`]. Output goes to
/// anonymous files, not pipes, so a grandchild holding them open cannot make us wait.
fn run(command: &mut Command) -> Output {
    let mut stdout = tempfile::tempfile().expect("create a temporary file for stdout");
    let mut stderr = tempfile::tempfile().expect("create a temporary file for stderr");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("duplicate a file handle"))
        .stderr(stderr.try_clone().expect("duplicate a file handle"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let mut pause = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            // Timed out, or waiting failed: a killed command reads as "signal 9".
            _ => {
                stop_child(&mut child);
                break ExitStatus::from_raw(9);
            }
        }
    };
    let read = |file: &mut File| {
        let mut bytes = Vec::new();
        let _ = file.rewind().and_then(|()| file.read_to_end(&mut bytes));
        bytes
    };
    let mut stderr_bytes = read(&mut stderr);
    if status.signal() == Some(9) {
        stderr_bytes.extend_from_slice(b"\n(killed: no result within the lab's command timeout)");
    }
    Output {
        status,
        stdout: read(&mut stdout),
        stderr: stderr_bytes,
    }
}

fn stop_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not keep Drop from cleaning up.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|byte| format!("{byte:02x}")).join(":")
}
