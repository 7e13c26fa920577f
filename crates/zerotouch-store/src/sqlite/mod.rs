//! The embedded persistent store: SQLite in WAL mode with full synchronous commits.
//!
//! SQLite allows one writer at a time. Every write runs in a `BEGIN IMMEDIATE` transaction on
//! tokio's blocking pool; a writer that finds the database locked waits (`busy_timeout`) and
//! then retries with back-off, up to a bound, rather than failing. Several processes may open
//! the same file.

mod tables;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::Semaphore;

use crate::{DataKeySource, FieldCipher, StoreError};

/// Schema migrations, applied in order; the database's `user_version` is the last applied.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/sqlite/0001_initial.sql"))];

/// Tuning for [`SqliteStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long one attempt waits for another writer's lock.
    pub busy_timeout: Duration,
    /// How many times a write is tried before [`StoreError::Busy`].
    pub max_attempts: u32,
    /// Connections kept open, and operations running at once.
    pub max_connections: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(2),
            max_attempts: 30,
            max_connections: 8,
        }
    }
}

/// The embedded store. Cheap to clone: clones share connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    options: SqliteOptions,
    cipher: FieldCipher,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

/// Whether an operation writes (and so needs the write lock from its first statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies pending migrations and
    /// checks that the data key from `keys` is the one the database was created with.
    pub async fn open(
        path: impl AsRef<Path>,
        keys: &impl DataKeySource,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let key = keys.data_key().await?;
        let inner = Arc::new(Inner {
            path: path.as_ref().to_path_buf(),
            options,
            cipher: FieldCipher::new(&key),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(options.max_connections.max(1)),
        });
        let store = SqliteStore { inner };
        store
            .run(Access::Write, |tx, cipher| {
                migrate(tx)?;
                check_data_key(tx, cipher)
            })
            .await?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `op` in one transaction on the blocking pool, retrying while the database is busy.
    pub(crate) async fn run<T, F>(&self, access: Access, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Transaction<'_>, &FieldCipher) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.run_blocking(access, op))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}

impl Inner {
    fn run_blocking<T, F>(&self, access: Access, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut(&Transaction<'_>, &FieldCipher) -> Result<T, StoreError>,
    {
        let mut conn = self.checkout()?;
        let behavior = match access {
            Access::Read => TransactionBehavior::Deferred,
            Access::Write => TransactionBehavior::Immediate,
        };
        let mut attempt = 0u32;
        let result = loop {
            attempt += 1;
            let outcome = conn
                .transaction_with_behavior(behavior)
                .map_err(StoreError::from)
                .and_then(|tx| {
                    let value = op(&tx, &self.cipher)?;
                    tx.commit()?;
                    Ok(value)
                });
            match outcome {
                Err(StoreError::Sqlite(e))
                    if is_busy(&e) && attempt < self.options.max_attempts =>
                {
                    // Another writer holds the lock past busy_timeout: back off and retry.
                    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20)) * 5));
                }
                Err(StoreError::Sqlite(e)) if is_busy(&e) => {
                    break Err(StoreError::Busy { attempts: attempt });
                }
                other => break other,
            }
        };
        self.checkin(conn);
        result
    }

    fn checkout(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => open_connection(&self.path, self.options.busy_timeout),
        }
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.options.max_connections {
            idle.push(conn);
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn open_connection(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    // WAL: readers never block the writer. synchronous=FULL: a commit is on disk when it
    // returns (NORMAL could lose the last commits on power loss). Both per connection except
    // journal_mode, which the file remembers.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::InvalidInput("the database refused WAL mode"));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (version, sql) in crate::rows::pending_migrations(MIGRATIONS, current)? {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
    }
    Ok(())
}

fn check_data_key(tx: &Transaction<'_>, cipher: &FieldCipher) -> Result<(), StoreError> {
    let stored: Option<Vec<u8>> = tx
        .query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match stored {
        Some(sealed) => crate::rows::verify_key_check(cipher, &sealed),
        None => {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('key_check', ?1)",
                [crate::rows::seal_key_check(cipher)?],
            )?;
            Ok(())
        }
    }
}
