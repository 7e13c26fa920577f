//! Protocol sessions as versioned state, single-use nonces, and stored responses for
//! retransmissions: everything a server process needs to continue a session another one began.

use core::fmt;
use core::future::Future;

use zerotouch_core::{Instant, Nonce, SessionId};

use crate::StoreError;

/// A session's state as the protocol serialised it, with its version for compare-and-swap.
///
/// The state is opaque to the store and sealed at rest (it may hold ephemeral private keys).
/// `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session.
    pub id: SessionId,
    /// Increases by one on every successful write; the first write stores version 1.
    pub version: u64,
    /// The protocol's serialised state.
    pub state: Vec<u8>,
    /// After this the session is gone.
    pub expires_at: Instant,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("state_len", &self.state.len())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The result of a compare-and-swap on a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCas {
    /// Written; this is the new version.
    Written {
        /// The version now stored.
        version: u64,
    },
    /// Not written: the stored version was not the expected one.
    Conflict {
        /// The version stored now (`None`: no live session).
        current: Option<u64>,
    },
}

/// The result of consuming a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonceUse {
    /// It was issued for this session, unused and unexpired: now it is used.
    Consumed,
    /// Never issued (or purged after expiry).
    Unknown,
    /// Already consumed.
    AlreadyUsed,
    /// Issued, but expired before it was used.
    Expired,
    /// Issued for another session.
    WrongSession,
}

/// Names a stored response: the request it answers is message `seq` of `session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponseKey {
    /// The session.
    pub session: SessionId,
    /// The request's sequence number.
    pub seq: u64,
}

/// A response kept so that an identical retransmitted request gets identical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// SHA-256 of the request's bytes: a different request under the same key is a replay.
    pub request_digest: [u8; 32],
    /// The response's bytes.
    pub response: Vec<u8>,
    /// When it may be purged.
    pub expires_at: Instant,
}

/// The result of storing a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutResponse {
    /// Stored.
    Stored,
    /// One was already stored under this key (perhaps by another process): this one.
    Existing(StoredResponse),
}

/// Sessions, nonces and stored responses.
pub trait SessionStore: Send + Sync {
    /// Writes `state` if the stored version is `expected` (`None`: no live session exists),
    /// atomically. An expired session counts as absent.
    fn compare_and_swap_session(
        &self,
        id: SessionId,
        expected: Option<u64>,
        state: Vec<u8>,
        expires_at: Instant,
        now: Instant,
    ) -> impl Future<Output = Result<SessionCas, StoreError>> + Send;

    /// The live session with `id`.
    fn session(
        &self,
        id: SessionId,
        now: Instant,
    ) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;

    /// Records a nonce the server issued for `session`. Issuing the same nonce twice is a
    /// conflict (the RNG failed).
    fn issue_nonce(
        &self,
        nonce: Nonce,
        session: SessionId,
        expires_at: Instant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks a nonce used, atomically: of two callers racing on one nonce exactly one sees
    /// [`NonceUse::Consumed`].
    fn consume_nonce(
        &self,
        nonce: Nonce,
        session: SessionId,
        now: Instant,
    ) -> impl Future<Output = Result<NonceUse, StoreError>> + Send;

    /// Stores a response unless one is already stored under `key`, atomically.
    fn put_response_if_absent(
        &self,
        key: ResponseKey,
        response: StoredResponse,
    ) -> impl Future<Output = Result<PutResponse, StoreError>> + Send;

    /// The unexpired response stored under `key`.
    fn stored_response(
        &self,
        key: ResponseKey,
        now: Instant,
    ) -> impl Future<Output = Result<Option<StoredResponse>, StoreError>> + Send;
}
