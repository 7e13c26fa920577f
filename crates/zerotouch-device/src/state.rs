//! What the device keeps across reboots, and where it keeps it.

use alloc::vec::Vec;

use ciborium::Value;
use zerotouch_core::{DecodeError, KeyId, SessionId, cbor};

/// Most dropped keys the state records (far more than a firmware pins).
pub const MAX_DROPPED_KEYS: usize = 64;
/// Version of the persisted encoding.
const STATE_VERSION: u64 = 1;

/// The device's durable state. The session saves it whole at fixed points: when a session
/// starts (the `in_progress` marker and the failure count), when a session fails, when setup
/// completes (marker cleared) and after a verified revocation (dropped key, new indication).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistedState {
    /// Server keys dropped after verified revocation verdicts: never trusted again.
    pub dropped_keys: Vec<KeyId>,
    /// The setup key to use, if a verdict named a replacement.
    pub indication: Option<KeyId>,
    /// Sessions failed in a row since the last completed setup or clean start.
    pub failed_sessions: u32,
    /// The setup session under way: set while setup runs, cleared when it completes or gives
    /// up. Found set at boot, it means the device rebooted mid-flow.
    pub in_progress: Option<SessionId>,
}

impl PersistedState {
    /// Strict CBOR: `[1, [* bstr .size 32], bstr .size 32 / null, uint, bstr .size 16 / null]`.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Integer(STATE_VERSION.into()),
            Value::Array(
                self.dropped_keys
                    .iter()
                    .map(|k| Value::Bytes(k.0.to_vec()))
                    .collect(),
            ),
            self.indication
                .map_or(Value::Null, |k| Value::Bytes(k.0.to_vec())),
            Value::Integer(self.failed_sessions.into()),
            self.in_progress
                .map_or(Value::Null, |s| Value::Bytes(s.0.to_vec())),
        ]))
    }

    /// Decodes what [`encode`](Self::encode) wrote; anything else (another byte form, too
    /// many keys, another version) is a typed error. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [version, dropped, indication, failed, in_progress] =
            cbor::fields(cbor::decode(bytes)?, "device_state")?;
        if cbor::uint(&version, "state version", STATE_VERSION)? != STATE_VERSION {
            return Err(DecodeError::OutOfRange {
                field: "state version",
            });
        }
        let dropped_keys = cbor::list(dropped, "dropped_keys", MAX_DROPPED_KEYS)?
            .into_iter()
            .map(|k| cbor::fixed_bytes::<32>(k, "dropped key").map(KeyId))
            .collect::<Result<_, _>>()?;
        let failed = cbor::uint(&failed, "failed_sessions", u64::from(u32::MAX))?;
        Ok(PersistedState {
            dropped_keys,
            indication: cbor::nullable(indication, |v| {
                cbor::fixed_bytes::<32>(v, "indication").map(KeyId)
            })?,
            failed_sessions: u32::try_from(failed).map_err(|_| DecodeError::OutOfRange {
                field: "failed_sessions",
            })?,
            in_progress: cbor::nullable(in_progress, |v| {
                cbor::fixed_bytes::<16>(v, "in_progress").map(SessionId)
            })?,
        })
    }
}

/// Where the device keeps its [`PersistedState`] (flash, EEPROM, a secure element's store).
pub trait DeviceState {
    /// The storage's error.
    type Error: core::fmt::Debug;

    /// The state last saved, or `None` on a device that never saved one.
    fn load(&mut self) -> Result<Option<PersistedState>, Self::Error>;

    /// Replaces the stored state with `state`. Must be atomic: after a power cut during the
    /// call, [`load`](Self::load) returns either the old state or the new one, whole (write a
    /// copy, then switch a pointer or rename). A torn write could revive a revoked key.
    fn save(&mut self, state: &PersistedState) -> Result<(), Self::Error>;
}

/// A [`DeviceState`] in memory, for tests and examples. It stores the encoded bytes, so the
/// codec runs on every save and load; it counts saves.
#[derive(Debug, Clone, Default)]
pub struct MemoryDeviceState {
    bytes: Option<Vec<u8>>,
    saves: usize,
}

impl MemoryDeviceState {
    /// An empty store (a device that never saved).
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `state` (a device that rebooted).
    pub fn with_state(state: &PersistedState) -> Self {
        MemoryDeviceState {
            bytes: Some(state.encode()),
            saves: 0,
        }
    }

    /// How many times the state was saved.
    pub fn saves(&self) -> usize {
        self.saves
    }

    /// The stored state, decoded (`None` if nothing was saved or it does not decode).
    pub fn stored(&self) -> Option<PersistedState> {
        self.bytes
            .as_deref()
            .and_then(|b| PersistedState::decode(b).ok())
    }

    /// The stored bytes, as firmware would write them to flash.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }
}

impl DeviceState for MemoryDeviceState {
    type Error = DecodeError;

    fn load(&mut self) -> Result<Option<PersistedState>, DecodeError> {
        self.bytes
            .as_deref()
            .map(PersistedState::decode)
            .transpose()
    }

    fn save(&mut self, state: &PersistedState) -> Result<(), DecodeError> {
        self.bytes = Some(state.encode());
        self.saves = self.saves.saturating_add(1);
        Ok(())
    }
}
