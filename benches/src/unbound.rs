//! A real unbound resolver on loopback for the DNS bench, configured as zerotouch-dns's test
//! harness configures it (`crates/zerotouch-dns/tests/common/unbound.rs`, whose helpers a
//! bench cannot import): a stub zone pointing at an authoritative server, 0x20 case
//! randomisation (`use-caps-for-id: yes`) and QNAME minimisation on, and the loopback options
//! of /work/shared/notes/dns-transport.md (without them unbound refuses to query 127.0.0.1 or
//! answers `test.` itself). Blocking (std processes and sockets): it runs before the timing.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long unbound gets to answer its first query (it answers ~30 ms after launch).
const READY_WITHIN: Duration = Duration::from_secs(5);
/// How long each readiness probe waits for its answer.
const READY_POLL: Duration = Duration::from_millis(20);
/// The port is chosen before unbound binds it, so another process may take it first.
const START_ATTEMPTS: usize = 5;

/// `localhost. A`, id 0x5eed, recursion desired: unbound answers it from its built-in local
/// zone, without any upstream traffic.
const READINESS_PROBE: [u8; 27] = [
    0x5e, 0xed, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 9, b'l', b'o', b'c', b'a', b'l', b'h', b'o',
    b's', b't', 0, 0, 1, 0, 1,
];

/// A running unbound, killed on drop; it answers on `addr` (UDP and TCP, 127.0.0.1).
#[derive(Debug)]
pub struct Unbound {
    /// Where clients send their queries.
    pub addr: SocketAddr,
    child: Child,
    dir: TempDir,
}

/// `unbound` on PATH, else where Debian puts it (/usr/sbin is not on every user's PATH).
pub fn find_unbound() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .map(|dir| dir.join("unbound"))
        .chain(["/usr/sbin/unbound", "/usr/local/sbin/unbound"].map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// The first line of `unbound -V` ("Version 1.17.1"), if it runs.
pub fn unbound_version(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("-V").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().next().map(|l| l.trim().to_owned())
}

impl Unbound {
    /// Starts `binary` resolving `zone` through a stub zone at `authoritative` (IPv4) and
    /// waits until it answers. The error carries unbound's log.
    pub fn start(binary: &Path, zone: &str, authoritative: SocketAddr) -> Result<Unbound, String> {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match start_once(binary, zone, authoritative)? {
                Some(unbound) => return Ok(unbound),
                None => last_error = "the port was taken".to_owned(),
            }
        }
        Err(format!("unbound could not bind a port: {last_error}"))
    }

    /// unbound's log (stderr, then stdout), for diagnostics.
    pub fn log(&self) -> String {
        let read = |file: &str| std::fs::read_to_string(self.dir.path().join(file));
        let mut log = read("unbound.stderr").unwrap_or_default();
        log.push_str(&read("unbound.stdout").unwrap_or_default());
        log
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        // An error means the process is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One attempt: `Ok(None)` when the port was taken before unbound bound it.
fn start_once(
    binary: &Path,
    zone: &str,
    authoritative: SocketAddr,
) -> Result<Option<Unbound>, String> {
    let dir = TempDir::new().map_err(|e| format!("temp dir: {e}"))?;
    let port = free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let conf = dir.path().join("unbound.conf");
    std::fs::write(&conf, config(dir.path(), port, zone, authoritative))
        .map_err(|e| format!("writing {}: {e}", conf.display()))?;
    let log = |name: &str| {
        std::fs::File::create(dir.path().join(name)).map_err(|e| format!("{name}: {e}"))
    };
    let child = Command::new(binary)
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log("unbound.stdout")?)
        .stderr(log("unbound.stderr")?)
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
    let mut unbound = Unbound { addr, child, dir };
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
    socket
        .set_read_timeout(Some(READY_POLL))
        .map_err(|e| format!("socket: {e}"))?;
    let mut reply = [0u8; 512];
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = unbound.child.try_wait() {
            let log = unbound.log();
            if log.contains("Address already in use") || log.contains("could not open ports") {
                return Ok(None);
            }
            return Err(format!(
                "unbound exited ({status}) before answering:\n{log}"
            ));
        }
        // Errors (ICMP port unreachable before unbound binds) just mean "not yet".
        let _ = socket.send_to(&READINESS_PROBE, addr);
        match socket.recv_from(&mut reply) {
            Ok((n, from))
                if from == addr && n >= 2 && reply.get(..2) == READINESS_PROBE.get(..2) =>
            {
                return Ok(Some(unbound));
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(READY_POLL),
        }
    }
    Err(format!(
        "unbound did not answer on {addr} within {READY_WITHIN:?}:\n{}",
        unbound.log()
    ))
}

/// A port free on 127.0.0.1 for both UDP and TCP right now (unbound serves both).
fn free_port() -> Result<u16, String> {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
        let port = udp.local_addr().map_err(|e| format!("{e}"))?.port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no port free for both UDP and TCP".to_owned())
}

/// unbound.conf: `zone` (under `test.`, which gets `nodefault` so unbound's built-in local
/// zone does not answer it) as a stub zone at `authoritative`; 0x20 and QNAME minimisation on;
/// EDNS 1,232 upstream.
fn config(dir: &Path, port: u16, zone: &str, authoritative: SocketAddr) -> String {
    let zone = zone.trim_end_matches('.');
    let tld = zone.rsplit('.').next().unwrap_or("test");
    format!(
        r#"server:
    interface: 127.0.0.1
    port: {port}
    directory: "{dir}"
    do-ip6: no
    num-threads: 1
    so-reuseport: no
    do-daemonize: no
    username: ""
    chroot: ""
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    local-zone: "{tld}." nodefault
    module-config: "iterator"
    use-caps-for-id: yes
    qname-minimisation: yes
    edns-buffer-size: 1232
    harden-referral-path: no
remote-control:
    control-enable: no
stub-zone:
    name: "{zone}."
    stub-addr: {ip}@{auth_port}
"#,
        dir = dir.display(),
        ip = authoritative.ip(),
        auth_port = authoritative.port(),
    )
}
