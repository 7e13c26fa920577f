//! # zerotouch-store
//!
//! The zerotouch server's durable state, behind traits that an embedded and a networked
//! database implement alike: accounts and their networks, devices, device → account
//! associations with an append-only audit log, server keys and their revocation, registrars,
//! protocol sessions, single-use nonces, attempt counters and lock-outs, stored responses for
//! retransmissions, outcomes and scan reports.
//!
//! Every operation that must not race is one atomic call (consume a nonce, increment a
//! counter, put a response if absent, compare-and-swap a session) rather than a read followed
//! by a write, so several server processes can share one store. Calls are `async` and never
//! block the runtime: the SQLite store runs its work on tokio's blocking pool and retries when
//! another writer holds the database; the PostgreSQL store talks to the server asynchronously
//! and runs a transaction again when PostgreSQL aborted it as a deadlock victim.
//!
//! Three implementations, one test suite (`zerotouch-store-suite`):
//! - [`MemoryStore`], for tests;
//! - [`SqliteStore`] (feature `sqlite`, on by default), the embedded persistent default: WAL,
//!   full synchronous commits, migrations from `migrations/sqlite/`;
//! - `PostgresStore` (feature `postgres`, off by default), for several server processes on
//!   several machines sharing one database: a pool of connections that reconnects after the
//!   database restarts, migrations from `migrations/postgres/` under an advisory lock, and
//!   TLS to the database (rustls) when given the CA of its certificate.
//!
//! Both persistent stores seal passphrases, PIN records, device secrets, session state and
//! scan reports at rest, alike, under a data key from a [`DataKeySource`] ([`LocalKeyFile`] by
//! default).
//!
//! ```
//! use zerotouch_core::{Instant, Nonce, SessionId};
//! use zerotouch_store::{MemoryStore, NonceUse, SessionStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let (nonce, session) = (Nonce([1; 16]), SessionId([2; 16]));
//! store.issue_nonce(nonce, session, Instant(60_000)).await?;
//! assert_eq!(store.consume_nonce(nonce, session, Instant(1_000)).await?, NonceUse::Consumed);
//! assert_eq!(store.consume_nonce(nonce, session, Instant(2_000)).await?, NonceUse::AlreadyUsed);
//! # Ok::<(), zerotouch_store::StoreError>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod account;
mod association;
mod attempts;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod column_codec;
mod data_key;
mod device;
mod error;
mod memory;
mod outcome;
mod pin;
#[cfg(feature = "postgres")]
mod postgres;
mod registrar;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
mod server_key;
mod session;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use account::{
    Account, AccountId, AccountStore, Bands, Network, NetworkId, NewNetwork, SecurityType,
};
pub use association::{
    Association, AssociationAction, AssociationChange, AssociationStore, AuditEntry, ChangeOutcome,
    ScannedLabel,
};
pub use attempts::{
    AttemptState, AttemptStore, CounterKey, CounterScope, LockoutPolicy, after_failure,
    lockout_length,
};
pub use data_key::{DataKey, DataKeySource, FieldCipher, LocalKeyFile, SealedField, StaticDataKey};
pub use device::{DeviceIdentity, DeviceRecord, DeviceStore, ImportReport};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use outcome::{
    OutcomeKind, OutcomeRecord, OutcomeStore, PurgeReport, Retention, ScanReport, SeenNetwork,
};
pub use pin::{DEFAULT_PIN_ITERATIONS, MIN_PIN_ITERATIONS, PinRecord};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
pub use registrar::{Registrar, RegistrarCredential, RegistrarId, RegistrarStore};
pub use server_key::{ServerKeyRecord, ServerKeyStore};
pub use session::{
    NonceUse, PutResponse, ResponseKey, SessionCas, SessionRecord, SessionStore, StoredResponse,
};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore};

/// Everything a zerotouch server keeps: every store trait together.
pub trait Store:
    AccountStore
    + DeviceStore
    + AssociationStore
    + RegistrarStore
    + ServerKeyStore
    + SessionStore
    + AttemptStore
    + OutcomeStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: AccountStore
        + DeviceStore
        + AssociationStore
        + RegistrarStore
        + ServerKeyStore
        + SessionStore
        + AttemptStore
        + OutcomeStore
        + Send
        + Sync
        + 'static
{
}
