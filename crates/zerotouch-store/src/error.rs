//! The store's one error type.

use thiserror::Error;

/// What went wrong in a store operation.
///
/// Outcomes a caller must handle as part of the protocol (a nonce already used, a lost
/// compare-and-swap, a response already stored) are not errors: they are the `Ok` values of
/// the operations that produce them.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record the operation names does not exist.
    #[error("no {what} with that id")]
    NotFound {
        /// Which kind of record.
        what: &'static str,
    },
    /// A record with that id already exists with different contents.
    #[error("a different {what} with that id already exists")]
    Conflict {
        /// Which kind of record.
        what: &'static str,
    },
    /// The operation is not allowed from the record's current state.
    #[error("invalid change: {0}")]
    InvalidChange(&'static str),
    /// A value handed to the store is out of range.
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// A sealed field did not open: wrong data key, or the database was tampered with.
    #[error("a sealed {field} did not open: wrong data key or tampered database")]
    SealedFieldRejected {
        /// Which field.
        field: &'static str,
    },
    /// A stored value did not decode: the database holds something this version did not write.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// Which kind of value.
        what: &'static str,
    },
    /// The data key could not be obtained or is malformed.
    #[error("data key: {0}")]
    DataKey(String),
    /// The database was written by a newer schema than this build knows.
    #[error("database schema version {found} is newer than this build's {supported}")]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Highest version this build migrates to.
        supported: i64,
    },
    /// Other writers held the database for longer than the store waits.
    #[error("database stayed busy after {attempts} attempts")]
    Busy {
        /// How many times the operation was tried.
        attempts: u32,
    },
    /// The operating system's random number generator failed.
    #[error("system random number generator failed")]
    Random,
    /// The blocking worker running the operation went away (runtime shutting down).
    #[error("store worker stopped: {0}")]
    Worker(String),
    /// An I/O error (key file, database directory).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The database could not be reached, or the connection to it broke during the operation:
    /// a networked database restarting, failing over or unreachable. Whether a write whose
    /// connection broke during its commit was applied is unknown; the protocol's retry (same
    /// nonce, same stored response) makes trying again safe. The next operation connects
    /// afresh.
    #[error("the database could not be reached: {0}")]
    Unavailable(String),
    /// The database engine reported an error.
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error. The message (`Display`) names the error's SQLSTATE and
    /// primary text only, not PostgreSQL's DETAIL line, which may quote a row's values; `Debug`
    /// and [`std::error::Error::source`] carry the whole error.
    #[cfg(feature = "postgres")]
    #[error("postgres: {}", crate::postgres::describe_error(.0))]
    Postgres(#[from] tokio_postgres::Error),
}
