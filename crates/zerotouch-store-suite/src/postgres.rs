//! A throwaway PostgreSQL for tests and benchmarks: a cluster made by `initdb` in a temporary
//! directory, listening on a free loopback port, stopped and deleted when dropped.
//!
//! PostgreSQL refuses to run as root: as root, the cluster's files belong to the `postgres`
//! user and every server program runs as that user through `runuser`; as anyone else they
//! run as the caller. The server binaries come from `$ZEROTOUCH_PG_BIN`, else Debian's
//! `/usr/lib/postgresql/<newest>/bin`, else `pg_config --bindir`. When none can be started,
//! [`ThrowawayPostgres::start`] panics saying what to install: a test that needs PostgreSQL
//! never passes without it.
//!
//! ```no_run
//! use zerotouch_store_suite::postgres::{ClusterOptions, ThrowawayPostgres};
//!
//! let pg = ThrowawayPostgres::start(ClusterOptions::default());
//! let url = pg.create_database("example");
//! assert!(url.starts_with("postgres://zt@127.0.0.1:"));
//! // Dropping `pg` stops the server and deletes its files.
//! ```

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The role every test connects as (trust authentication on loopback).
pub const USER: &str = "zt";

/// How the throwaway cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `fsync`: off is faster and still keeps every committed row when only the server is
    /// killed (not when the machine loses power); benchmarks that measure commit waits keep
    /// it on.
    pub fsync: bool,
    /// `max_connections` of the server.
    pub max_connections: u32,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            fsync: false,
            max_connections: 200,
        }
    }
}

/// A running throwaway cluster. Stopped (immediately) and deleted on drop.
#[derive(Debug)]
pub struct ThrowawayPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run server programs as the `postgres` user (we are root).
    as_postgres: bool,
    options: ClusterOptions,
    /// Databases created so far (for unique names in [`Self::fresh_database`]).
    created: Mutex<u32>,
}

impl ThrowawayPostgres {
    /// Makes and starts a cluster; panics with what to install if PostgreSQL cannot start.
    pub fn start(options: ClusterOptions) -> ThrowawayPostgres {
        match Self::try_start(options) {
            Ok(pg) => pg,
            Err(why) => panic!(
                "PostgreSQL could not be started for this test: {why}\n\
                 Install Debian's `postgresql` package (scripts/system-deps.sh does), or set \
                 ZEROTOUCH_PG_BIN to the directory holding initdb, pg_ctl and psql."
            ),
        }
    }

    /// One cluster shared by every caller in this process while any of them holds it: the
    /// store suite's tests each take a database in it rather than a cluster of their own.
    pub fn shared() -> Arc<ThrowawayPostgres> {
        static SHARED: Mutex<Weak<ThrowawayPostgres>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pg) = slot.upgrade() {
            return pg;
        }
        let pg = Arc::new(Self::start(ClusterOptions::default()));
        *slot = Arc::downgrade(&pg);
        pg
    }

    /// Makes and starts a cluster, or says why it could not.
    pub fn try_start(options: ClusterOptions) -> Result<ThrowawayPostgres, String> {
        let bin = bin_dir()?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("zerotouch-pg-")
            .tempdir_in(std::env::temp_dir())
            .map_err(|e| format!("temporary directory: {e}"))?;
        let pg = ThrowawayPostgres {
            dir,
            bin,
            port: 0,
            as_postgres,
            options,
            created: Mutex::new(0),
        };
        if as_postgres {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(pg.dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown to postgres: {e}"))?;
        }
        let data = pg.data_dir();
        pg.server_program(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                USER,
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        let mut pg = pg;
        // A free port now may be taken by the time the server binds: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port()?;
            match pg.pg_ctl_start() {
                Ok(()) => return Ok(pg),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection URL of `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `database` and returns its URL.
    pub fn create_database(&self, database: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{database}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {database}: {e}"));
        self.url(database)
    }

    /// Creates a database with a name not used before in this cluster and returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = {
            let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
            *created += 1;
            *created
        };
        self.create_database(&format!("t{n}"))
    }

    /// Runs `sql` with `psql` in `database`; its standard output (unaligned, tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = self
            .psql_command(database, sql)
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        checked("psql", out).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// The `psql` command [`Self::psql`] runs, to spawn and leave running (e.g. holding a
    /// lock while a test watches what waits on it).
    pub fn psql_command(&self, database: &str, sql: &str) -> Command {
        let mut command = Command::new(self.bin.join("psql"));
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", USER, "-d", database, "-c", sql])
            .current_dir(std::env::temp_dir());
        command
    }

    /// Turns TLS on with this certificate chain and key (PEM) and, from then on, refuses
    /// every connection over TCP that is not TLS (`hostssl` … `trust`, `hostnossl` …
    /// `reject`); applied with a reload. `psql` here still works: it tries TLS first.
    pub fn require_tls(&self, certificate_chain_pem: &str, key_pem: &str) -> Result<(), String> {
        let data = self.data_dir();
        let cert = data.join("server.crt");
        let key = data.join("server.key");
        let write = |path: &Path, text: &str| -> Result<(), String> {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if self.as_postgres {
                let (uid, gid) = postgres_ids()?;
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", path.display()))?;
            }
            Ok(())
        };
        write(&cert, certificate_chain_pem)?;
        write(&key, key_pem)?;
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| format!("{e}"))?;
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).map_err(|e| format!("{e}"))?;
        let hba = data.join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).map_err(|e| format!("{e}"))?;
        // The first matching line wins: put ours first.
        text.insert_str(
            0,
            "hostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n\
             hostssl all all 127.0.0.1/32 trust\n",
        );
        std::fs::write(&hba, text).map_err(|e| format!("{e}"))?;
        self.server_program("pg_ctl", &["-D", path_str(&data)?, "reload"])?;
        // A reload is asynchronous: wait until the server has read the new settings.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.psql("postgres", "SHOW ssl").as_deref() != Ok("on") {
            if Instant::now() > deadline {
                return Err("PostgreSQL did not turn TLS on".to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// How many open connections of `application_name` use TLS, as PostgreSQL sees them.
    pub fn tls_connections(&self, application_name: &str) -> Result<u32, String> {
        let count = self.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = '{application_name}' AND s.ssl"
            ),
        )?;
        count
            .parse()
            .map_err(|_| format!("psql printed {count:?}, not a count"))
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Kills the server with SIGKILL, as a crash would, and waits until it is gone.
    pub fn kill(&self) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        wait_gone(pid);
    }

    /// Stops the server (fast shutdown: connections are closed, commits kept).
    pub fn stop(&self) {
        let data = self.data_dir();
        let Some(d) = data.to_str() else { return };
        let _ = self.server_program("pg_ctl", &["-D", d, "-m", "fast", "-w", "stop"]);
    }

    /// Starts the server again on the same port after [`Self::kill`] or [`Self::stop`]; waits
    /// out the killed server's processes, which linger a few seconds.
    pub fn restart(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.pg_ctl_start() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("PostgreSQL did not restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let data = self.data_dir();
        let socket_dir = self.dir.path();
        let fsync = if self.options.fsync { "on" } else { "off" };
        let server_options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync} -c max_connections={} \
             -c track_wal_io_timing=on",
            self.port,
            path_str(socket_dir)?,
            self.options.max_connections
        );
        let log = self.dir.path().join("server.log");
        self.server_program(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-o",
                &server_options,
                "-l",
                path_str(&log)?,
                "-t",
                "30",
                "-w",
                "start",
            ],
        )
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })?;
        // pg_ctl -w waited for the socket; make sure the TCP listener answers too.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("nothing listens on 127.0.0.1:{}", self.port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Runs one of the server's programs, as `postgres` when we are root.
    fn server_program(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        // The programs change into their working directory: one `postgres` can read.
        let out = cmd
            .args(args)
            .current_dir(std::env::temp_dir())
            .output()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        checked(program, out)
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        if let Some(d) = data.to_str() {
            let _ = self.server_program("pg_ctl", &["-D", d, "-m", "immediate", "-w", "stop"]);
        }
    }
}

fn checked(program: &str, out: Output) -> Result<Output, String> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{program} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn postgres_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("id: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "there is no `postgres` user to run the server as".to_string())
    };
    Ok((id("-u")?, id("-g")?))
}

/// Where initdb, pg_ctl and psql are.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("ZEROTOUCH_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let debian = Path::new("/usr/lib/postgresql");
    if let Ok(entries) = std::fs::read_dir(debian) {
        let newest = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .max_by_key(|(v, _)| *v);
        if let Some((_, bin)) = newest {
            return Ok(bin);
        }
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .map_err(|_| "no PostgreSQL server binaries found".to_string())?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if bin.join("initdb").exists() {
        Ok(bin)
    } else {
        Err("no PostgreSQL server binaries found (initdb)".to_string())
    }
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// Waits (at most 30 s) until process `pid` has exited.
fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
