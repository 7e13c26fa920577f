//! The networked store: PostgreSQL, for several server processes on several machines sharing
//! one database.
//!
//! Every operation is one transaction (READ COMMITTED) whose statements are written so that
//! concurrent transactions in any number of processes cannot interleave badly: conditional
//! `UPDATE`s and `INSERT … ON CONFLICT` decide races inside the database, and where a value
//! must be read before it is written the row is locked first (`SELECT … FOR UPDATE`). A
//! transaction that PostgreSQL aborts as a deadlock victim or for a serialization failure
//! (SQLSTATE 40P01, 40001) is run again from the start, up to
//! [`PostgresOptions::max_attempts`] times.
//!
//! Connections come from a small pool of our own. A connection that breaks (the server
//! restarted, was killed, or failed over) is thrown away, and the operation that was using it
//! fails with [`StoreError::Unavailable`] without being retried here: its commit may or may
//! not have happened, and the protocol's own retry is what makes trying again safe. The next
//! operations connect afresh, so the store recovers by itself once the database is back.
//!
//! TLS to the database: [`PostgresStore::connect_tls`] takes a rustls client configuration (the
//! CAs that sign the database server's certificate), and then requires TLS on every connection
//! (`sslmode=require` whatever the URL says, so nobody on the path can downgrade it) and checks
//! the server's certificate and name. [`PostgresStore::connect`] connects in plain TCP, for a
//! database on the same host or a private network.
//!
//! Migrations (`migrations/postgres/`) run in one transaction under an advisory lock, so
//! servers starting together do not race; applied versions are recorded in
//! `schema_migrations`.

mod tables;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::{FromSqlOwned, ToSql};
use tokio_postgres::{Client, Config, IsolationLevel, NoTls, Row, Socket, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::rows::{columns_through, pending_migrations, seal_key_check, verify_key_check};
use crate::{DataKeySource, FieldCipher, StoreError};

/// Schema migrations, applied in order; `schema_migrations` records the applied versions.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    include_str!("../../migrations/postgres/0001_initial.sql"),
)];

/// The advisory lock held while migrating (the ASCII of "zt-migra").
const MIGRATION_LOCK: i64 = 0x7a74_2d6d_6967_7261;

/// The advisory lock an association change holds from its audit append to its commit (the
/// ASCII of "zt-audit"), so that audit entries commit in `seq` order.
const AUDIT_LOCK: i64 = 0x7a74_2d61_7564_6974;

/// Tuning for [`PostgresStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections kept open, and operations running at once (default 16). Each server process
    /// has its own pool: keep the sum over processes below the server's `max_connections`.
    pub max_connections: usize,
    /// How long opening a connection may take, TCP and start-up together (default 5 s).
    pub connect_timeout: Duration,
    /// Tries of a transaction that PostgreSQL aborted as a deadlock victim or for a
    /// serialization failure (SQLSTATE 40P01, 40001) before [`StoreError::Busy`] (default 10).
    pub max_attempts: u32,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            max_attempts: 10,
        }
    }
}

/// The store on PostgreSQL. Cheap to clone: clones share the connection pool.
///
/// [`connect`](Self::connect) opens plain TCP (or Unix socket) connections, for a database on
/// the same host or a private network; a URL that requires TLS (`sslmode=require`) is refused
/// there. [`connect_tls`](Self::connect_tls) requires TLS and checks the server's certificate.
///
/// ```no_run
/// use zerotouch_store::{PostgresOptions, PostgresStore, StaticDataKey};
///
/// # async fn example() -> Result<(), zerotouch_store::StoreError> {
/// let store = PostgresStore::connect(
///     "postgres://zerotouch@db.internal/zerotouch",
///     &StaticDataKey([7; 32]),
///     PostgresOptions::default(),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// TLS to the database, when [`PostgresStore::connect_tls`] asked for it.
    tls: Option<MakeRustlsConnect>,
    options: PostgresOptions,
    cipher: FieldCipher,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("dbname", &self.config.get_dbname())
            .field("tls", &self.tls.is_some())
            .field("options", &self.options)
            .field("idle", &lock(&self.idle).len())
            .finish_non_exhaustive()
    }
}

/// One open connection and the statements prepared on it.
struct Connection {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

/// An open transaction, handed to an operation. Statements are prepared once per connection.
pub(crate) struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a Mutex<HashMap<String, Statement>>,
}

/// A statement's parameters.
pub(crate) type Params<'p> = [&'p (dyn ToSql + Sync)];

columns_through!(Row, try_get);

impl Tx<'_> {
    async fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = lock(self.statements).get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql).await?;
        lock(self.statements).insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Runs a statement; the number of rows it changed.
    pub(crate) async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, StoreError> {
        let statement = self.statement(sql).await?;
        Ok(self.tx.execute(&statement, params).await?)
    }

    /// Runs a query; every row.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        Ok(self.tx.query(&statement, params).await?)
    }

    /// Runs a query; its first row, if any.
    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Runs a query that returns one value (`… RETURNING id`, `SELECT nextval(…)`).
    pub(crate) async fn value<T: FromSqlOwned>(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<T, StoreError> {
        let row = self
            .query_opt(sql, params)
            .await?
            .ok_or(StoreError::Corrupt {
                what: "query result",
            })?;
        Ok(row.try_get(0)?)
    }

    /// Whether a query returns a row.
    pub(crate) async fn exists(&self, sql: &str, params: &Params<'_>) -> Result<bool, StoreError> {
        Ok(!self.query(sql, params).await?.is_empty())
    }

    /// Every row a query returns, each made into a `T` by `f`.
    pub(crate) async fn all<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.query(sql, params).await?.iter().map(f).collect()
    }

    /// The first row a query returns, if any, made into a `T` by `f`.
    pub(crate) async fn first<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.query_opt(sql, params)
            .await?
            .as_ref()
            .map(f)
            .transpose()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL or a libpq-style
    /// `key=value …` string), applies pending migrations and checks that the data key from
    /// `keys` is the one the database was created with.
    ///
    /// Fails with [`StoreError::Unavailable`] when the database cannot be reached,
    /// [`StoreError::SchemaTooNew`] when a newer build has migrated it, and
    /// [`StoreError::DataKey`] when it was created under another data key.
    ///
    /// `connect_timeout` in the URL overrides [`PostgresOptions::connect_timeout`] for the TCP
    /// connect. A server that vanishes without closing its connections (a network partition)
    /// leaves operations waiting until TCP gives up: set `tcp_user_timeout` or `keepalives_idle`
    /// in the URL to bound that.
    pub async fn connect(
        url: &str,
        keys: &impl DataKeySource,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        let config: Config = url.parse()?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(StoreError::InvalidInput(
                "sslmode=require needs the CA of the database's certificate (connect_tls)",
            ));
        }
        Self::open(config, None, keys, options).await
    }

    /// [`connect`](Self::connect) over TLS: every connection is encrypted (`sslmode=require`
    /// is forced, so a server or a man in the middle cannot fall back to plain TCP) and the
    /// server's certificate must chain to a root in `tls` and name the URL's host.
    pub async fn connect_tls(
        url: &str,
        keys: &impl DataKeySource,
        options: PostgresOptions,
        tls: rustls::ClientConfig,
    ) -> Result<Self, StoreError> {
        let mut config: Config = url.parse()?;
        config.ssl_mode(SslMode::Require);
        Self::open(config, Some(MakeRustlsConnect::new(tls)), keys, options).await
    }

    async fn open(
        mut config: Config,
        tls: Option<MakeRustlsConnect>,
        keys: &impl DataKeySource,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("zerotouch-store");
        }
        if config.get_options().is_none() {
            // A process that freezes mid-transaction (paused, partitioned: not killed, so its
            // socket stays open) must not hold its locks, such as the audit lock, until TCP
            // gives up hours later: PostgreSQL ends such a transaction after 15 s, and a
            // statement waiting on a lock gives up after 5 s (an Internal the device
            // retries) rather than take a pool permit for good.
            config.options("-c lock_timeout=5000 -c idle_in_transaction_session_timeout=15000");
        }
        let key = keys.data_key().await?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                config,
                tls,
                options,
                cipher: FieldCipher::new(&key),
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(options.max_connections.max(1)),
            }),
        };
        store
            .run(async |tx, cipher| {
                migrate(tx).await?;
                check_data_key(tx, cipher).await
            })
            .await?;
        Ok(store)
    }

    /// Runs `op` in one transaction on a pooled connection and commits it; runs it again when
    /// PostgreSQL aborted it as a deadlock victim or for a serialization failure.
    ///
    /// `op` is an `async move` closure that owns what it uses: the traits' futures must be
    /// `Send`, and today's compiler proves that for an async closure only when it borrows
    /// nothing from the caller.
    pub(crate) async fn run<T, F>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: AsyncFnMut(&Tx<'_>, &FieldCipher) -> Result<T, StoreError>,
    {
        let inner = &*self.inner;
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?;
        let max_attempts = inner.options.max_attempts.max(1);
        let mut attempts = 0u32;
        let mut reconnected = false;
        loop {
            let mut conn = inner.checkout(reconnected).await?;
            let (outcome, reusable) = match attempt(&mut conn, &inner.cipher, &mut op).await {
                Ok(done) => done,
                // A pooled connection that died while idle fails its BEGIN: nothing can have
                // been written, so try once more on a new connection (not another idle one,
                // which the same restart may have broken).
                Err(e) if connection_lost(&e) && !reconnected => {
                    reconnected = true;
                    continue;
                }
                Err(e) => return Err(classify(e)),
            };
            attempts += 1;
            match outcome {
                Err(StoreError::Postgres(e)) if connection_lost(&e) => {
                    // Dropped, not pooled. A commit in flight may or may not have happened:
                    // not retried here.
                    return Err(unavailable(&e));
                }
                Err(StoreError::Postgres(e)) if must_retry(&e) => {
                    if reusable {
                        inner.checkin(conn);
                    }
                    if attempts >= max_attempts {
                        return Err(StoreError::Busy { attempts });
                    }
                    tokio::time::sleep(Duration::from_millis(u64::from(attempts.min(20)) * 3))
                        .await;
                }
                other => {
                    if reusable {
                        inner.checkin(conn);
                    }
                    return other;
                }
            }
        }
    }
}

/// One try of `op` on `conn`: its outcome (committed, or rolled back on error) and whether
/// the connection may go back to the pool; `Err` if the transaction could not even begin.
async fn attempt<T, F>(
    conn: &mut Connection,
    cipher: &FieldCipher,
    op: &mut F,
) -> Result<(Result<T, StoreError>, bool), tokio_postgres::Error>
where
    F: AsyncFnMut(&Tx<'_>, &FieldCipher) -> Result<T, StoreError>,
{
    let Connection { client, statements } = conn;
    // Stated, not left to the server's default: the operations are written for READ
    // COMMITTED, where each statement sees what committed before it began.
    let tx = Tx {
        tx: client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await?,
        statements,
    };
    Ok(match op(&tx, cipher).await {
        Ok(value) => (
            tx.tx.commit().await.map(|()| value).map_err(Into::into),
            true,
        ),
        Err(e) => (Err(e), tx.tx.rollback().await.is_ok()),
    })
}

impl Inner {
    /// An idle connection that is still open, or a new one (always a new one if `fresh`).
    async fn checkout(&self, fresh: bool) -> Result<Connection, StoreError> {
        if !fresh {
            // Connections whose server went away while they were idle are dropped here.
            let idle = {
                let mut idle = lock(&self.idle);
                idle.retain(|conn| !conn.client.is_closed());
                idle.pop()
            };
            if let Some(conn) = idle {
                return Ok(conn);
            }
        }
        let client = match &self.tls {
            None => self.open_connection(NoTls).await?,
            Some(tls) => self.open_connection(tls.clone()).await?,
        };
        Ok(Connection {
            client,
            statements: Mutex::new(HashMap::new()),
        })
    }

    /// Opens one connection with `tls` (or none) and spawns the task that drives its socket.
    async fn open_connection<T>(&self, tls: T) -> Result<Client, StoreError>
    where
        T: MakeTlsConnect<Socket>,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let connecting = self.config.connect(tls);
        let (client, connection) =
            match tokio::time::timeout(self.options.connect_timeout, connecting).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(classify_connect(e)),
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "no connection within {:?}",
                        self.options.connect_timeout
                    )));
                }
            };
        // The connection future does the socket I/O for its client; it ends when the
        // connection closes, which the client then reports through `is_closed`.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    fn checkin(&self, conn: Connection) {
        if conn.client.is_closed() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < self.options.max_connections {
            idle.push(conn);
        }
    }
}

/// Whether `e` means the connection is gone (or the server is going away): the client must be
/// thrown away.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        // Class 08: connection exception; 57P01 admin_shutdown, 57P02 crash_shutdown,
        // 57P03 cannot_connect_now.
        let code = code.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether PostgreSQL aborted the transaction so that running it again may succeed:
/// serialization failure (40001) or deadlock victim (40P01).
fn must_retry(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(c.code(), "40001" | "40P01"))
}

fn unavailable(e: &tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(describe_error(e))
}

fn classify(e: tokio_postgres::Error) -> StoreError {
    if connection_lost(&e) {
        unavailable(&e)
    } else {
        StoreError::Postgres(e)
    }
}

/// A failed connection attempt: unreachable unless the server answered with an error of its
/// own (wrong password, no such database), which no retry fixes.
fn classify_connect(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(_) if !connection_lost(&e) => StoreError::Postgres(e),
        _ => unavailable(&e),
    }
}

/// A one-line description of `e` without PostgreSQL's DETAIL, which may quote a row's values:
/// the kind of failure, then the SQLSTATE and primary message, or the I/O cause.
pub(crate) fn describe_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{} {} ({}): {}",
            e,
            db.severity(),
            db.code().code(),
            db.message()
        );
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

async fn migrate(tx: &Tx<'_>) -> Result<(), StoreError> {
    // Held to commit: a second process migrating at the same time waits here, then finds the
    // work done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.tx
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version BIGINT PRIMARY KEY, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
    let current: i64 = tx
        .value(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?;
    for (version, sql) in pending_migrations(MIGRATIONS, current)? {
        tx.tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
    }
    Ok(())
}

async fn check_data_key(tx: &Tx<'_>, cipher: &FieldCipher) -> Result<(), StoreError> {
    // A new database takes this build's check value; an existing one keeps its own, which
    // must open under the data key.
    let created = tx
        .execute(
            "INSERT INTO meta (name, value) VALUES ('key_check', $1) ON CONFLICT (name) DO NOTHING",
            &[&seal_key_check(cipher)?],
        )
        .await?;
    if created == 0 {
        let stored: Vec<u8> = tx
            .value("SELECT value FROM meta WHERE name = 'key_check'", &[])
            .await?;
        verify_key_check(cipher, &stored)?;
    }
    Ok(())
}
