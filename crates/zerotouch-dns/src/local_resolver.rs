//! A caching recursive resolver on loopback, for demos, benchmarks and tests of the binding:
//! unbound, started with a configuration of our own, answering only 127.0.0.1 and sending
//! every query for one zone to our DNS server (a stub zone), with what makes public
//! resolvers hard on a DNS tunnel switchable: 0x20 case randomisation and QNAME
//! minimisation. Killed when stopped or dropped. (Feature `local-resolver`.)

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

/// The environment variable naming the unbound binary to run instead of searching for it.
pub const UNBOUND_ENV: &str = "ZEROTOUCH_UNBOUND";
/// Where unbound is when it is not on PATH (/usr/sbin is not on every user's PATH).
const UNBOUND_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin"];
/// How long unbound gets to answer its first query (it answers ~30 ms after launch).
const READY_WITHIN: Duration = Duration::from_secs(5);
/// How often the readiness probe is sent again.
const READY_POLL: Duration = Duration::from_millis(20);
/// The port is chosen before unbound binds it, so another process may take it first.
const START_ATTEMPTS: usize = 5;
/// The EDNS payload size unbound advertises upstream (the DNS Flag Day 2020 size).
pub const RESOLVER_EDNS: u16 = 1232;

/// Why a local resolver could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalResolverError {
    /// No unbound binary was found.
    #[error("unbound is not installed")]
    Missing,
    /// A file or socket of the resolver could not be made.
    #[error("{0}")]
    Io(String),
    /// unbound did not start or did not answer; the message carries its log.
    #[error("{0}")]
    Start(String),
}

/// What the resolver does to our traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolverOptions {
    /// `use-caps-for-id`: 0x20, random case in every name sent to the authoritative server.
    pub caps_for_id: bool,
    /// `qname-minimisation`: A probes for each label below the zone before the real query.
    pub qname_minimisation: bool,
    /// `infra-cache-min-rtt` in ms: the least time unbound waits for our server before
    /// asking again (unbound's own default, 50 ms, when `None`).
    pub min_retry_ms: Option<u32>,
}

impl Default for ResolverOptions {
    /// Both behaviours on (the hostile-but-realistic resolver the binding has to survive),
    /// unbound's own retry timing.
    fn default() -> Self {
        ResolverOptions {
            caps_for_id: true,
            qname_minimisation: true,
            min_retry_ms: None,
        }
    }
}

fn yes_no(on: bool) -> &'static str {
    if on { "yes" } else { "no" }
}

/// The unbound binary: `$ZEROTOUCH_UNBOUND` when set, else `unbound` on PATH, else in
/// /usr/sbin, /usr/local/sbin or /opt/homebrew/sbin. [`LocalResolverError::Missing`] when
/// there is none.
pub fn find_unbound() -> Result<PathBuf, LocalResolverError> {
    let candidates: Vec<PathBuf> = match std::env::var_os(UNBOUND_ENV) {
        Some(path) => vec![PathBuf::from(path)],
        None => std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(UNBOUND_DIRS.iter().map(PathBuf::from))
            .map(|dir| dir.join("unbound"))
            .collect(),
    };
    candidates
        .into_iter()
        .find(|c| is_executable(c))
        .ok_or(LocalResolverError::Missing)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running unbound, killed on [`LocalResolver::stop`] or drop.
#[derive(Debug)]
pub struct LocalResolver {
    addr: SocketAddr,
    version: String,
    dir: PathBuf,
    child: Child,
}

impl LocalResolver {
    /// Starts `binary` in `dir` (created; it holds unbound.conf and the logs) on a free port
    /// of 127.0.0.1, resolving `zone` (e.g. `zt.test`) through `authoritative`, and waits
    /// until it answers.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        zone: &str,
        authoritative: SocketAddr,
        options: ResolverOptions,
    ) -> Result<LocalResolver, LocalResolverError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let version = unbound_version(binary);
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match start_once(binary, dir, zone, authoritative, options, &version).await? {
                Ok(resolver) => return Ok(resolver),
                // Only a lost race for the port is worth another attempt.
                Err(port_taken) => last = port_taken,
            }
        }
        Err(LocalResolverError::Start(format!(
            "unbound could not bind a port in {START_ATTEMPTS} attempts:\n{last}"
        )))
    }

    /// Where clients send queries (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// unbound's version (`1.19.2`), or `unknown version`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// unbound's log, for diagnostics.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    /// The directory holding unbound.conf and the logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills unbound and waits until it is gone.
    pub async fn stop(mut self) {
        // An error means it is gone already.
        let _ = self.child.kill().await;
    }
}

impl Drop for LocalResolver {
    fn drop(&mut self) {
        // After `stop`, or on an early return: never leave a resolver running.
        let _ = self.child.start_kill();
    }
}

/// `unbound -V`'s first line without "Version " (`1.19.2`), or `unknown version`.
pub fn unbound_version(binary: &Path) -> String {
    std::process::Command::new(binary)
        .arg("-V")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let line = text.lines().next()?.trim().to_owned();
            Some(line.strip_prefix("Version ").unwrap_or(&line).to_owned())
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown version".to_owned())
}

/// One attempt. The outer error is fatal; the inner one means "the port was taken".
async fn start_once(
    binary: &Path,
    dir: &Path,
    zone: &str,
    authoritative: SocketAddr,
    options: ResolverOptions,
    version: &str,
) -> Result<Result<LocalResolver, String>, LocalResolverError> {
    let port = free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let config_path = dir.join("unbound.conf");
    std::fs::write(
        &config_path,
        config(dir, port, zone, authoritative, options),
    )
    .map_err(io(&config_path))?;
    let log = |name: &str| {
        let path = dir.join(name);
        std::fs::File::create(&path).map_err(io(&path))
    };
    let child = Command::new(binary)
        .arg("-d")
        .arg("-c")
        .arg(&config_path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log("unbound.stdout")?))
        .stderr(Stdio::from(log("unbound.stderr")?))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| LocalResolverError::Start(format!("starting {}: {e}", binary.display())))?;
    let mut resolver = LocalResolver {
        addr,
        version: version.to_owned(),
        dir: dir.to_path_buf(),
        child,
    };

    let deadline = Instant::now() + READY_WITHIN;
    let probe = readiness_probe();
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| LocalResolverError::Io(format!("probe socket: {e}")))?;
    let mut reply = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(Some(status)) = resolver.child.try_wait() {
            let log = resolver.log();
            if log.contains("Address already in use") || log.contains("could not open ports") {
                return Ok(Err(log));
            }
            return Err(LocalResolverError::Start(format!(
                "unbound exited ({status}) before answering:\n{log}"
            )));
        }
        // A send error (ICMP port unreachable from the last probe) only means "not yet".
        let _ = socket.send_to(&probe, addr).await;
        if let Ok(Ok((n, from))) = timeout(READY_POLL, socket.recv_from(&mut reply)).await
            && from == addr
            && n >= 2
            && reply.get(..2) == probe.get(..2)
        {
            return Ok(Ok(resolver));
        }
        // recv_from may fail at once, before unbound binds: pace the loop.
        sleep(READY_POLL).await;
    }
    Err(LocalResolverError::Start(format!(
        "unbound did not answer on {addr} within {READY_WITHIN:?}:\n{}",
        resolver.log()
    )))
}

/// `localhost. A`, recursion desired: unbound answers it from its built-in local zone,
/// without asking anyone.
fn readiness_probe() -> Vec<u8> {
    let mut packet = vec![
        0x5e, 0xed, // id
        0x01, 0x00, // RD
        0x00, 0x01, // one question
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // no answers, authority, additional
        9,
    ];
    packet.extend_from_slice(b"localhost");
    packet.extend_from_slice(&[0, 0x00, 0x01, 0x00, 0x01]); // root; type A, class IN
    packet
}

/// A port free on 127.0.0.1 for both UDP and TCP right now.
fn free_port() -> Result<u16, LocalResolverError> {
    let mut last = String::new();
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| LocalResolverError::Io(format!("no UDP port on 127.0.0.1: {e}")))?;
        let port = udp
            .local_addr()
            .map_err(|e| LocalResolverError::Io(e.to_string()))?
            .port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(_tcp) => return Ok(port),
            Err(e) => last = e.to_string(),
        }
    }
    Err(LocalResolverError::Io(format!(
        "no port free for both UDP and TCP: {last}"
    )))
}

/// unbound.conf: loopback only, no daemon, no privilege drop, no chroot, logs to stderr;
/// a stub zone for `zone` at `authoritative`. Without `do-not-query-localhost: no` unbound
/// refuses to ask 127.0.0.1 (SERVFAIL); without `local-zone: "<tld>." nodefault` it answers
/// `test.` (and the other special-use names) itself (NXDOMAIN).
fn config(
    dir: &Path,
    port: u16,
    zone: &str,
    authoritative: SocketAddr,
    options: ResolverOptions,
) -> String {
    let zone = zone.strip_suffix('.').unwrap_or(zone);
    let tld = zone.rsplit('.').next().unwrap_or(zone);
    let mut conf = String::new();
    // Writing into a String cannot fail.
    let _ = write!(
        conf,
        r#"server:
    interface: 127.0.0.1
    port: {port}
    access-control: 127.0.0.0/8 allow
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
    do-not-query-localhost: no
    local-zone: "{tld}." nodefault
    module-config: "iterator"
    use-caps-for-id: {caps}
    qname-minimisation: {minimise}
    edns-buffer-size: {RESOLVER_EDNS}
    harden-referral-path: no
{min_rtt}remote-control:
    control-enable: no
stub-zone:
    name: "{zone}."
    stub-addr: {ip}@{auth_port}
"#,
        dir = dir.display(),
        caps = yes_no(options.caps_for_id),
        minimise = yes_no(options.qname_minimisation),
        min_rtt = options
            .min_retry_ms
            .map(|ms| format!("    infra-cache-min-rtt: {ms}\n"))
            .unwrap_or_default(),
        ip = authoritative.ip(),
        auth_port = authoritative.port(),
    );
    conf
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LocalResolverError + '_ {
    move |e| LocalResolverError::Io(format!("{}: {e}", path.display()))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_stubs_the_zone_to_the_server_and_unblocks_its_tld() {
        let options = ResolverOptions {
            min_retry_ms: Some(1000),
            ..ResolverOptions::default()
        };
        let conf = config(
            Path::new("/tmp/r"),
            5300,
            "zt.test",
            SocketAddr::from(([127, 0, 0, 1], 5353)),
            options,
        );
        for line in [
            "interface: 127.0.0.1",
            "port: 5300",
            "do-not-query-localhost: no",
            "local-zone: \"test.\" nodefault",
            "use-caps-for-id: yes",
            "qname-minimisation: yes",
            "name: \"zt.test.\"",
            "stub-addr: 127.0.0.1@5353",
            "infra-cache-min-rtt: 1000",
        ] {
            assert!(conf.contains(line), "missing {line:?}:\n{conf}");
        }
        let plain = config(
            Path::new("/tmp/r"),
            5300,
            "zt.test.",
            SocketAddr::from(([127, 0, 0, 1], 5353)),
            ResolverOptions {
                caps_for_id: false,
                qname_minimisation: false,
                min_retry_ms: None,
            },
        );
        assert!(plain.contains("use-caps-for-id: no"));
        assert!(plain.contains("qname-minimisation: no"));
        assert!(plain.contains("name: \"zt.test.\""));
        assert!(!plain.contains("infra-cache-min-rtt"));
    }

    #[test]
    fn the_readiness_probe_asks_localhost_a() {
        let probe = readiness_probe();
        assert_eq!(probe.len(), 12 + 11 + 4);
        assert_eq!(probe.get(12..23), Some(&b"\x09localhost\x00"[..]));
    }
}
