//! Registrars: the apps, scanners and services allowed to associate devices with accounts.

use core::future::Future;

use zerotouch_core::{Instant, KeyId};

use crate::StoreError;

/// A registrar's id, assigned by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrarId(pub i64);

/// How a registrar authenticates. Registrars hold no device certificate, so they have their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrarCredential {
    /// A client certificate from the registrar CA, named by its key id.
    Certificate(KeyId),
    /// An API token, stored as its SHA-256 (tokens are 256-bit random values, so a fast hash
    /// is enough; never the token itself).
    ApiTokenHash([u8; 32]),
}

/// A stored registrar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrar {
    /// Its id.
    pub id: RegistrarId,
    /// A name for the audit log.
    pub name: String,
    /// How it authenticates.
    pub credential: RegistrarCredential,
    /// Disabled registrars are refused.
    pub disabled: bool,
    /// When it was added.
    pub created_at: Instant,
}

/// The registrars the server accepts.
pub trait RegistrarStore: Send + Sync {
    /// Adds a registrar; its credential must be unused.
    fn add_registrar(
        &self,
        name: &str,
        credential: RegistrarCredential,
        now: Instant,
    ) -> impl Future<Output = Result<RegistrarId, StoreError>> + Send;

    /// The registrar that authenticates with `credential`.
    fn registrar_by_credential(
        &self,
        credential: &RegistrarCredential,
    ) -> impl Future<Output = Result<Option<Registrar>, StoreError>> + Send;

    /// The registrar with `id`.
    fn registrar(
        &self,
        id: RegistrarId,
    ) -> impl Future<Output = Result<Option<Registrar>, StoreError>> + Send;

    /// Disables or re-enables a registrar.
    fn set_registrar_disabled(
        &self,
        id: RegistrarId,
        disabled: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
