//! Key roles and key rings.
//!
//! Server side ([`ServerKeyRing`]): N signing keys, each with one role, and a map from device
//! type and serial-number range to the setup key that signs for those devices (seed 000,
//! paragraphs 0049 and 0072). Device side ([`PinnedKeys`]): N pinned public keys and an optional
//! indication of which to use, else each in turn (paragraph 0090); keys the device stopped
//! trusting after a verified revocation are dropped.
//!
//! A key's role is part of what it signs (see [`crate::signed`]), so a revocation-verdict key
//! can never pass for a setup key even if someone tried.

use alloc::vec::Vec;

use crate::{KeyError, KeyId, PublicKey, Signer};

/// What a key may sign. Every key has exactly one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum KeyRole {
    /// A device's identity key: key proofs, outcome reports, flow-2 requests.
    DeviceIdentity = 0,
    /// The setup server's proofs and credential responses (flow 1).
    SetupSigning = 1,
    /// Revocation verdicts.
    RevocationVerdict = 2,
    /// The association server's verification data (flow 2).
    Association = 3,
    /// Orders to an already-joined device to open a setup network.
    ProvisionerOrder = 4,
    /// Signed factory manifests the server imports.
    FactoryManifest = 5,
}

impl KeyRole {
    /// Every role.
    pub const ALL: [KeyRole; 6] = [
        KeyRole::DeviceIdentity,
        KeyRole::SetupSigning,
        KeyRole::RevocationVerdict,
        KeyRole::Association,
        KeyRole::ProvisionerOrder,
        KeyRole::FactoryManifest,
    ];

    /// The wire number.
    pub fn to_u8(self) -> u8 {
        self as u8
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Used for new signatures.
    Active,
    /// Superseded: used only for devices that trust no active key of the role.
    Retired,
    /// Never used again, and reported as revoked.
    Revoked,
}

/// Finds a trusted public key by role and id: what a verifier needs.
pub trait KeyLookup {
    /// The key with `key_id` if it is trusted for `role`.
    fn trusted_key(&self, role: KeyRole, key_id: &KeyId) -> Option<&PublicKey>;
}

/// One server key.
#[derive(Debug)]
pub struct ServerKey<S> {
    /// What it signs.
    pub role: KeyRole,
    /// Where it is in its life.
    pub state: KeyState,
    /// The key.
    pub signer: S,
}

/// A rule of the type/serial map: devices of `device_type` with a serial in
/// `first..=last` are signed for by `key_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMapRule {
    /// Device type.
    pub device_type: u32,
    /// First serial number covered.
    pub first_serial: u64,
    /// Last serial number covered (inclusive).
    pub last_serial: u64,
    /// The setup key for these devices.
    pub key_id: KeyId,
}

/// The server's signing keys and its type/serial map.
#[derive(Debug)]
pub struct ServerKeyRing<S> {
    keys: Vec<ServerKey<S>>,
    map: Vec<KeyMapRule>,
}

impl<S> Default for ServerKeyRing<S> {
    fn default() -> Self {
        ServerKeyRing {
            keys: Vec::new(),
            map: Vec::new(),
        }
    }
}

impl<S: Signer> ServerKeyRing<S> {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an active key for `role` (rotation: add the new key, then retire the old one).
    pub fn add(&mut self, role: KeyRole, signer: S) -> Result<KeyId, KeyError> {
        let id = signer.key_id();
        if self.keys.iter().any(|k| k.signer.key_id() == id) {
            return Err(KeyError::Duplicate);
        }
        self.keys.push(ServerKey {
            role,
            state: KeyState::Active,
            signer,
        });
        Ok(id)
    }

    fn entry_mut(&mut self, id: &KeyId) -> Result<&mut ServerKey<S>, KeyError> {
        self.keys
            .iter_mut()
            .find(|k| k.signer.key_id() == *id)
            .ok_or(KeyError::NotFound)
    }

    /// Retires a key: no longer preferred, still used for devices that trust nothing newer.
    pub fn retire(&mut self, id: &KeyId) -> Result<(), KeyError> {
        let k = self.entry_mut(id)?;
        if k.state == KeyState::Revoked {
            return Err(KeyError::Revoked);
        }
        k.state = KeyState::Retired;
        Ok(())
    }

    /// Revokes a key: never used again. Irreversible.
    pub fn revoke(&mut self, id: &KeyId) -> Result<(), KeyError> {
        self.entry_mut(id)?.state = KeyState::Revoked;
        Ok(())
    }

    /// The key with this id.
    pub fn get(&self, id: &KeyId) -> Option<&ServerKey<S>> {
        self.keys.iter().find(|k| k.signer.key_id() == *id)
    }

    /// Every key, in the order added.
    pub fn keys(&self) -> &[ServerKey<S>] {
        &self.keys
    }

    /// Ids of every revoked key.
    pub fn revoked(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys
            .iter()
            .filter(|k| k.state == KeyState::Revoked)
            .map(|k| k.signer.key_id())
    }

    /// Whether `id` is revoked.
    pub fn is_revoked(&self, id: &KeyId) -> bool {
        self.get(id).is_some_and(|k| k.state == KeyState::Revoked)
    }

    /// Maps devices of `device_type` with serials `first..=last` to the setup key `key_id`.
    /// Ranges of one device type may not overlap, so the map always names one key.
    pub fn map_devices(
        &mut self,
        device_type: u32,
        first_serial: u64,
        last_serial: u64,
        key_id: KeyId,
    ) -> Result<(), KeyError> {
        if first_serial > last_serial {
            return Err(KeyError::InvalidRange);
        }
        let key = self.get(&key_id).ok_or(KeyError::NotFound)?;
        if key.role != KeyRole::SetupSigning {
            return Err(KeyError::WrongRole {
                held: key.role,
                wanted: KeyRole::SetupSigning,
            });
        }
        let overlaps = self.map.iter().any(|r| {
            r.device_type == device_type
                && r.first_serial <= last_serial
                && first_serial <= r.last_serial
        });
        if overlaps {
            return Err(KeyError::InvalidRange);
        }
        self.map.push(KeyMapRule {
            device_type,
            first_serial,
            last_serial,
            key_id,
        });
        Ok(())
    }

    /// The map's rules.
    pub fn map_rules(&self) -> &[KeyMapRule] {
        &self.map
    }

    /// The key the map names for a device, if any.
    pub fn mapped_key(&self, device_type: u32, serial: u64) -> Option<KeyId> {
        self.map
            .iter()
            .find(|r| {
                r.device_type == device_type && (r.first_serial..=r.last_serial).contains(&serial)
            })
            .map(|r| r.key_id)
    }

    /// Chooses the setup key for a device that trusts `trusted` (its order): the key the map
    /// names if the device trusts it and it is not revoked; else the first trusted active
    /// setup key; else the first trusted retired one. Revoked keys are never chosen.
    pub fn select_setup_key(
        &self,
        device_type: u32,
        serial: u64,
        trusted: &[KeyId],
    ) -> Result<&S, KeyError> {
        let usable = |id: &KeyId, state: KeyState| {
            self.get(id)
                .filter(|k| k.role == KeyRole::SetupSigning && k.state == state)
                .map(|k| &k.signer)
        };
        if let Some(id) = self.mapped_key(device_type, serial)
            && trusted.contains(&id)
            && let Some(s) =
                usable(&id, KeyState::Active).or_else(|| usable(&id, KeyState::Retired))
        {
            return Ok(s);
        }
        [KeyState::Active, KeyState::Retired]
            .iter()
            .find_map(|state| trusted.iter().find_map(|id| usable(id, *state)))
            .ok_or(KeyError::NoUsableKey)
    }

    /// The first active key of `role` (revocation verdicts, association data, orders).
    pub fn signer_for(&self, role: KeyRole) -> Result<&S, KeyError> {
        self.keys
            .iter()
            .find(|k| k.role == role && k.state == KeyState::Active)
            .map(|k| &k.signer)
            .ok_or(KeyError::NoUsableKey)
    }
}

impl<S: Signer> KeyLookup for ServerKeyRing<S> {
    fn trusted_key(&self, role: KeyRole, key_id: &KeyId) -> Option<&PublicKey> {
        self.get(key_id)
            .filter(|k| k.role == role && k.state != KeyState::Revoked)
            .map(|k| k.signer.public_key())
    }
}

/// A public key a device has pinned, with its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedKey {
    /// What it may sign.
    pub role: KeyRole,
    /// The key.
    pub key: PublicKey,
    /// Its id (cached).
    pub key_id: KeyId,
}

impl PinnedKey {
    /// Pins `key` for `role`.
    pub fn new(role: KeyRole, key: PublicKey) -> Self {
        let key_id = key.key_id();
        PinnedKey { role, key, key_id }
    }
}

/// The server keys a device trusts: burnt into firmware, minus those dropped after a verified
/// revocation (the dropped set and the indication are device state kept across reboots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinnedKeys {
    keys: Vec<PinnedKey>,
    indication: Option<KeyId>,
    dropped: Vec<KeyId>,
}

impl PinnedKeys {
    /// The pinned keys, in firmware order.
    pub fn new(keys: Vec<PinnedKey>) -> Self {
        PinnedKeys {
            keys,
            indication: None,
            dropped: Vec::new(),
        }
    }

    /// Indicates which setup key this device uses; the others are not accepted for setup
    /// while it is trusted. A dropped key cannot be indicated (restoring state in either
    /// order must never leave the device trusting no key).
    pub fn indicate(&mut self, key_id: KeyId) -> Result<(), KeyError> {
        if self.is_dropped(&key_id) {
            return Err(KeyError::Revoked);
        }
        let k = self
            .keys
            .iter()
            .find(|k| k.key_id == key_id)
            .ok_or(KeyError::NotFound)?;
        if k.role != KeyRole::SetupSigning {
            return Err(KeyError::WrongRole {
                held: k.role,
                wanted: KeyRole::SetupSigning,
            });
        }
        self.indication = Some(key_id);
        Ok(())
    }

    /// The indicated setup key, if any and not dropped.
    pub fn indication(&self) -> Option<KeyId> {
        self.indication.filter(|id| !self.is_dropped(id))
    }

    /// Stops trusting `key_id` (after a *verified* revocation verdict). If it was the
    /// indicated key, the device falls back to each remaining key in turn.
    pub fn drop_key(&mut self, key_id: KeyId) {
        if !self.dropped.contains(&key_id) {
            self.dropped.push(key_id);
        }
        if self.indication == Some(key_id) {
            self.indication = None;
        }
    }

    /// Keys dropped so far.
    pub fn dropped(&self) -> &[KeyId] {
        &self.dropped
    }

    fn is_dropped(&self, id: &KeyId) -> bool {
        self.dropped.contains(id)
    }

    /// Ids of the keys of `role` the device still trusts, the indicated one first. This is the
    /// list a hello carries.
    pub fn trusted_key_ids(&self, role: KeyRole) -> Vec<KeyId> {
        let mut out = Vec::new();
        if role == KeyRole::SetupSigning
            && let Some(id) = self.indication()
        {
            out.push(id);
        }
        for k in &self.keys {
            if k.role == role && !self.is_dropped(&k.key_id) && !out.contains(&k.key_id) {
                out.push(k.key_id);
            }
        }
        out
    }

    /// The pinned key with this id, whatever its state.
    pub fn get(&self, key_id: &KeyId) -> Option<&PinnedKey> {
        self.keys.iter().find(|k| k.key_id == *key_id)
    }
}

impl KeyLookup for PinnedKeys {
    fn trusted_key(&self, role: KeyRole, key_id: &KeyId) -> Option<&PublicKey> {
        if self.is_dropped(key_id) {
            return None;
        }
        // With an indication, only the indicated setup key is accepted for setup.
        if role == KeyRole::SetupSigning
            && let Some(ind) = self.indication()
            && ind != *key_id
        {
            return None;
        }
        self.get(key_id).filter(|k| k.role == role).map(|k| &k.key)
    }
}
