//! A caching recursive resolver on loopback for `demo --over dns`: unbound, started with a
//! configuration of our own, answering only 127.0.0.1 and sending every query for the
//! demo's zone to the demo's DNS server (a stub zone), with what makes public resolvers
//! hard on a DNS tunnel switched on: 0x20 case randomisation and QNAME minimisation. Killed
//! when stopped or dropped.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};
use zerotouch_dns::Zone;

use crate::CliError;

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
/// The least time unbound waits for our server before asking again (its
/// `infra-cache-min-rtt`; unbound's own default is 50 ms). The server answers a credential
/// request only after checking the PIN (PBKDF2, tens of milliseconds, more under load or in
/// a debug build); a copy of the query arriving meanwhile is answered today with the setup
/// service's `Replay` refusal, which then stands for the message, and the device only gets
/// its credential after its session's back-off (about 30 s). Until the DNS server holds
/// such copies back, the demo's resolver waits a second before asking again.
const MIN_RETRY_MS: u32 = 1000;

/// The unbound binary: `$ZEROTOUCH_UNBOUND` when set, else `unbound` on PATH, else in
/// /usr/sbin, /usr/local/sbin or /opt/homebrew/sbin. [`CliError::UnboundMissing`] when
/// there is none.
pub fn find_unbound() -> Result<PathBuf, CliError> {
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
        .ok_or(CliError::UnboundMissing)
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
    /// of 127.0.0.1, resolving `zone` through `authoritative`, and waits until it answers.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        zone: &Zone,
        authoritative: SocketAddr,
    ) -> Result<LocalResolver, CliError> {
        std::fs::create_dir_all(dir).map_err(CliError::file(dir))?;
        let version = version_of(binary);
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match start_once(binary, dir, zone, authoritative, &version).await? {
                Ok(resolver) => return Ok(resolver),
                // Only a lost race for the port is worth another attempt.
                Err(port_taken) => last = port_taken,
            }
        }
        Err(CliError::Resolver(format!(
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

/// `unbound -V`'s first line without "Version ".
fn version_of(binary: &Path) -> String {
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
    zone: &Zone,
    authoritative: SocketAddr,
    version: &str,
) -> Result<Result<LocalResolver, String>, CliError> {
    let port = free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let config_path = dir.join("unbound.conf");
    std::fs::write(&config_path, config(dir, port, zone, authoritative))
        .map_err(CliError::file(&config_path))?;
    let log = |name: &str| {
        let path = dir.join(name);
        std::fs::File::create(&path).map_err(CliError::file(path))
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
        .map_err(|e| CliError::Resolver(format!("starting {}: {e}", binary.display())))?;
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
        .map_err(|e| CliError::Resolver(format!("probe socket: {e}")))?;
    let mut reply = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(Some(status)) = resolver.child.try_wait() {
            let log = resolver.log();
            if log.contains("Address already in use") || log.contains("could not open ports") {
                return Ok(Err(log));
            }
            return Err(CliError::Resolver(format!(
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
    Err(CliError::Resolver(format!(
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
fn free_port() -> Result<u16, CliError> {
    let mut last = String::new();
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| CliError::Resolver(format!("no UDP port on 127.0.0.1: {e}")))?;
        let port = udp
            .local_addr()
            .map_err(|e| CliError::Resolver(e.to_string()))?
            .port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(_tcp) => return Ok(port),
            Err(e) => last = e.to_string(),
        }
    }
    Err(CliError::Resolver(format!(
        "no port free for both UDP and TCP: {last}"
    )))
}

/// unbound.conf: loopback only, no daemon, no privilege drop, no chroot, logs to stderr;
/// a stub zone for `zone` at `authoritative`. Without `do-not-query-localhost: no` unbound
/// refuses to ask 127.0.0.1 (SERVFAIL); without `local-zone: "<tld>." nodefault` it answers
/// `test.` (and the other special-use names) itself (NXDOMAIN).
fn config(dir: &Path, port: u16, zone: &Zone, authoritative: SocketAddr) -> String {
    let zone = zone.as_str();
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
    use-caps-for-id: yes
    qname-minimisation: yes
    edns-buffer-size: {RESOLVER_EDNS}
    harden-referral-path: no
    infra-cache-min-rtt: {MIN_RETRY_MS}
remote-control:
    control-enable: no
stub-zone:
    name: "{zone}."
    stub-addr: {ip}@{auth_port}
"#,
        dir = dir.display(),
        ip = authoritative.ip(),
        auth_port = authoritative.port(),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_stubs_the_zone_to_the_server_and_unblocks_its_tld() {
        let zone = Zone::new("zt.test").unwrap();
        let conf = config(
            Path::new("/tmp/r"),
            5300,
            &zone,
            SocketAddr::from(([127, 0, 0, 1], 5353)),
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
    }

    #[test]
    fn the_readiness_probe_asks_localhost_a() {
        let probe = readiness_probe();
        assert_eq!(probe.len(), 12 + 11 + 4);
        assert_eq!(probe.get(12..23), Some(&b"\x09localhost\x00"[..]));
    }
}
