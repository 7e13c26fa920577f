//! The server's public signing keys, their revocation state and the type/serial map.
//!
//! Private keys are not here: they live in a KMS or key files behind the core's `Signer`.

use core::future::Future;

use zerotouch_core::{Instant, KeyId, KeyMapRule, KeyRole, KeyState, PublicKey};

use crate::StoreError;

/// A server key's public half and life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeyRecord {
    /// Its id.
    pub key_id: KeyId,
    /// What it signs.
    pub role: KeyRole,
    /// The public key.
    pub public_key: PublicKey,
    /// Where it is in its life.
    pub state: KeyState,
    /// When it was added.
    pub created_at: Instant,
    /// When it was revoked.
    pub revoked_at: Option<Instant>,
    /// The key devices should move to once this one is revoked.
    pub replacement: Option<KeyId>,
}

/// Server keys and the map from device type and serial to setup key.
pub trait ServerKeyStore: Send + Sync {
    /// Adds a key (state `Active`). Adding the same key again is a no-op; a different key
    /// record with the same id is a conflict.
    fn add_server_key(
        &self,
        role: KeyRole,
        public_key: PublicKey,
        now: Instant,
    ) -> impl Future<Output = Result<KeyId, StoreError>> + Send;

    /// Every server key, in the order added.
    fn server_keys(&self) -> impl Future<Output = Result<Vec<ServerKeyRecord>, StoreError>> + Send;

    /// Retires an active key. Retiring a retired key is a no-op; a revoked key cannot be
    /// retired.
    fn retire_server_key(
        &self,
        key_id: &KeyId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes a key, naming its replacement (an existing key of the same role that is not
    /// revoked). Revocation is final; revoking again keeps the first record.
    fn revoke_server_key(
        &self,
        key_id: &KeyId,
        replacement: Option<KeyId>,
        now: Instant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Appends a rule to the type/serial map (rules are tried in order).
    fn add_key_map_rule(
        &self,
        rule: KeyMapRule,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The type/serial map, in order.
    fn key_map(&self) -> impl Future<Output = Result<Vec<KeyMapRule>, StoreError>> + Send;
}

/// Applies a retirement to `keys` in place: the one rule every implementation follows.
/// Returns the key's record, to write back.
pub(crate) fn retire_in<'k>(
    keys: &'k mut [ServerKeyRecord],
    key_id: &KeyId,
) -> Result<&'k ServerKeyRecord, StoreError> {
    let key = keys
        .iter_mut()
        .find(|k| &k.key_id == key_id)
        .ok_or(StoreError::NotFound { what: "server key" })?;
    match key.state {
        KeyState::Active | KeyState::Retired => {
            key.state = KeyState::Retired;
            Ok(key)
        }
        KeyState::Revoked => Err(StoreError::InvalidChange("a revoked key stays revoked")),
    }
}

/// Applies a revocation to `keys` in place. Returns the key's record if it changed, to write
/// back.
pub(crate) fn revoke_in<'k>(
    keys: &'k mut [ServerKeyRecord],
    key_id: &KeyId,
    replacement: Option<KeyId>,
    now: Instant,
) -> Result<Option<&'k ServerKeyRecord>, StoreError> {
    let role = keys
        .iter()
        .find(|k| &k.key_id == key_id)
        .ok_or(StoreError::NotFound { what: "server key" })?
        .role;
    if let Some(r) = replacement {
        if &r == key_id {
            return Err(StoreError::InvalidChange("a key cannot replace itself"));
        }
        let ok = keys
            .iter()
            .any(|k| k.key_id == r && k.role == role && k.state != KeyState::Revoked);
        if !ok {
            return Err(StoreError::InvalidChange(
                "the replacement must be an unrevoked key of the same role",
            ));
        }
    }
    let key = keys
        .iter_mut()
        .find(|k| &k.key_id == key_id)
        .ok_or(StoreError::NotFound { what: "server key" })?;
    if key.state == KeyState::Revoked {
        return Ok(None);
    }
    key.state = KeyState::Revoked;
    key.revoked_at = Some(now);
    key.replacement = replacement;
    Ok(Some(key))
}
