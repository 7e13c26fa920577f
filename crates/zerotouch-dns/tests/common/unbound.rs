//! A real unbound resolver on loopback, for tests that must see what a recursive resolver does to
//! our traffic (0x20 case randomisation, QNAME minimisation, retries, caching).
//!
//! The configuration follows /work/shared/notes/dns-transport.md: without the loopback options
//! unbound refuses to query 127.0.0.1 (SERVFAIL) or answers `test.` itself (NXDOMAIN).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

/// How long unbound gets to answer its first query (it answers ~30 ms after launch).
const READY_WITHIN: Duration = Duration::from_secs(5);
/// How often the readiness probe is re-sent.
const READY_POLL: Duration = Duration::from_millis(20);
/// The port is chosen before unbound binds it, so another process may take it first: retry.
const START_ATTEMPTS: usize = 5;

/// Which resolver behaviours are switched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnboundOptions {
    /// `use-caps-for-id`: 0x20, random case in every name sent to the authoritative server.
    pub caps_for_id: bool,
    /// `qname-minimisation`: A probes for each label below the zone before the real query.
    pub qname_minimisation: bool,
}

impl Default for UnboundOptions {
    /// Both on: the hostile-but-realistic resolver our transport has to survive.
    fn default() -> Self {
        Self {
            caps_for_id: true,
            qname_minimisation: true,
        }
    }
}

/// A running unbound, killed on drop. Answers on `addr` (UDP and TCP, 127.0.0.1 only).
#[derive(Debug)]
pub struct Unbound {
    /// Where clients send their queries.
    pub addr: SocketAddr,
    child: Child,
    dir: TempDir,
}

impl Unbound {
    /// Starts unbound resolving `zone` (e.g. `"zt.test."`) through a stub zone pointing at
    /// `authoritative` (an IPv4 address), and waits until it answers.
    ///
    /// Errors when unbound is not installed (scripts/test.sh installs it), cannot start, or does
    /// not answer within 5 s; the error carries unbound's log.
    pub async fn start(
        zone: &str,
        authoritative: SocketAddr,
        opts: UnboundOptions,
    ) -> Result<Unbound, String> {
        let binary = find_unbound().ok_or_else(|| {
            "unbound is not installed (scripts/test.sh installs it: apt-get install unbound)"
                .to_owned()
        })?;
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match start_once(&binary, zone, authoritative, opts).await? {
                Ok(unbound) => return Ok(unbound),
                // Only a lost race for the port is worth another attempt.
                Err(port_taken) => last_error = port_taken,
            }
        }
        Err(format!(
            "unbound could not bind a port in {START_ATTEMPTS} attempts:\n{last_error}"
        ))
    }

    /// unbound's log (stderr, where it logs with `use-syslog: no`, then stdout), for diagnostics.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// The directory holding unbound.conf and the logs; removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        // kill_on_drop would do it too; explicit so the intent is visible. An error means the
        // process is already gone.
        let _ = self.child.start_kill();
    }
}

/// One attempt. The outer error is fatal; the inner one means "the port was taken, retry".
async fn start_once(
    binary: &Path,
    zone: &str,
    authoritative: SocketAddr,
    opts: UnboundOptions,
) -> Result<Result<Unbound, String>, String> {
    let dir = TempDir::new().map_err(|e| format!("temp dir: {e}"))?;
    let port = free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let config_path = dir.path().join("unbound.conf");
    std::fs::write(
        &config_path,
        config(dir.path(), port, zone, authoritative, opts),
    )
    .map_err(|e| format!("writing {}: {e}", config_path.display()))?;
    let stdout = std::fs::File::create(dir.path().join("unbound.stdout"))
        .map_err(|e| format!("unbound.stdout: {e}"))?;
    let stderr = std::fs::File::create(dir.path().join("unbound.stderr"))
        .map_err(|e| format!("unbound.stderr: {e}"))?;
    let child = Command::new(binary)
        .arg("-d")
        .arg("-c")
        .arg(&config_path)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
    let mut unbound = Unbound { addr, child, dir };

    let deadline = Instant::now() + READY_WITHIN;
    let probe = readiness_probe()?;
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| format!("probe socket: {e}"))?;
    let mut reply = vec![0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(Some(status)) = unbound.child.try_wait() {
            let log = unbound.log();
            if log.contains("Address already in use") || log.contains("could not open ports") {
                return Ok(Err(log));
            }
            return Err(format!(
                "unbound exited ({status}) before answering:\n{log}"
            ));
        }
        // A send error (e.g. ECONNREFUSED from the previous probe) just means "not yet".
        let _ = socket.send_to(&probe, addr).await;
        if let Ok(Ok((n, from))) = timeout(READY_POLL, socket.recv_from(&mut reply)).await
            && from == addr
            && n >= 2
            && reply.get(..2) == probe.get(..2)
        {
            return Ok(Ok(unbound));
        }
        // recv_from may fail at once (ICMP port unreachable before unbound binds): pace the loop.
        sleep(READY_POLL).await;
    }
    Err(format!(
        "unbound did not answer on {addr} within {READY_WITHIN:?}:\n{}",
        unbound.log()
    ))
}

/// `localhost. A`, answered by unbound's built-in local zone without any upstream traffic.
fn readiness_probe() -> Result<Vec<u8>, String> {
    let name = Name::from_ascii("localhost.").map_err(|e| e.to_string())?;
    let mut message = Message::new(0x5eed, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name, RecordType::A));
    message.to_vec().map_err(|e| e.to_string())
}

/// A port free on 127.0.0.1 for both UDP and TCP right now (unbound serves both).
fn free_port() -> Result<u16, String> {
    let mut last_error = String::new();
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
        let port = udp
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(_tcp) => return Ok(port),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(format!("no port free for both UDP and TCP: {last_error}"))
}

/// `unbound` on PATH, else where Debian puts it (/usr/sbin is not on every user's PATH).
fn find_unbound() -> Option<PathBuf> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("unbound"))
                .collect()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin/unbound", "/usr/local/sbin/unbound"].map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// `zt.test` / `zt.test.` -> `zt.test.`; the TLD (`test.`) gets `nodefault` so that unbound's
/// built-in local zones (test., invalid., localhost., ...) do not answer for it.
fn config(
    dir: &Path,
    port: u16,
    zone: &str,
    authoritative: SocketAddr,
    opts: UnboundOptions,
) -> String {
    let zone = format!("{}.", zone.trim_end_matches('.'));
    let tld = zone
        .trim_end_matches('.')
        .rsplit('.')
        .next()
        .unwrap_or("test")
        .to_ascii_lowercase();
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    let mut conf = String::new();
    // Writing into a String cannot fail.
    let _ = write!(
        conf,
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
    local-zone: "test." nodefault
    module-config: "iterator"
    use-caps-for-id: {caps}
    qname-minimisation: {minimise}
    edns-buffer-size: 1232
    harden-referral-path: no
    val-permissive-mode: yes
"#,
        dir = dir.display(),
        caps = yes_no(opts.caps_for_id),
        minimise = yes_no(opts.qname_minimisation),
    );
    if tld != "test" {
        let _ = writeln!(conf, "    local-zone: \"{tld}.\" nodefault");
    }
    let _ = write!(
        conf,
        r#"remote-control:
    control-enable: no
stub-zone:
    name: "{zone}"
    stub-addr: {ip}@{port}
"#,
        ip = authoritative.ip(),
        port = authoritative.port(),
    );
    conf
}

fn read_log(dir: &Path) -> String {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    let mut log = read("unbound.stderr");
    let stdout = read("unbound.stdout");
    if !stdout.is_empty() {
        log.push_str("--- stdout ---\n");
        log.push_str(&stdout);
    }
    log
}
