//! What a joiner or sponsor keeps across reboots: its attempt counter.
//!
//! A handoff attempt is counted, and the count saved, *before* the attempt starts. A device
//! that is switched off in the middle of an attempt therefore still has it counted, so
//! power-cycling cannot buy unlimited attempts. A completed handoff resets the count; so does
//! [`AttemptLimit`]'s explicit reset, which firmware calls only after an owner action (a
//! button held at power-up, a factory reset).

use alloc::vec::Vec;
use ciborium::Value;
use zerotouch_core::{DecodeError, cbor};

/// Version of the persisted encoding.
const STATE_VERSION: u64 = 1;

/// The durable state of one flow-2 role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistedPeerState {
    /// Handoff attempts started since the last completed one.
    pub attempts: u32,
}

impl PersistedPeerState {
    /// Strict CBOR: `[1, attempts: uint]`.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Integer(STATE_VERSION.into()),
            Value::Integer(self.attempts.into()),
        ]))
    }

    /// Decodes what [`encode`](Self::encode) wrote; anything else is a typed error.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [version, attempts] = cbor::fields(cbor::decode(bytes)?, "peer_state")?;
        if cbor::uint(&version, "state version", STATE_VERSION)? != STATE_VERSION {
            return Err(DecodeError::OutOfRange {
                field: "state version",
            });
        }
        let attempts = cbor::uint(&attempts, "attempts", u64::from(u32::MAX))?;
        Ok(PersistedPeerState {
            attempts: u32::try_from(attempts)
                .map_err(|_| DecodeError::OutOfRange { field: "attempts" })?,
        })
    }
}

/// Where a role keeps its [`PersistedPeerState`] (flash, EEPROM, a secure element).
pub trait PeerState {
    /// The storage's error.
    type Error: core::fmt::Debug;

    /// The state last saved, or `None` on a device that never saved one.
    fn load(&mut self) -> Result<Option<PersistedPeerState>, Self::Error>;

    /// Replaces the stored state. Must be atomic (old or new state after a power cut).
    fn save(&mut self, state: &PersistedPeerState) -> Result<(), Self::Error>;
}

/// How many attempts a role may start without one completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimit {
    /// Attempts allowed; at this count the role refuses to start another.
    pub max_attempts: u32,
}

impl Default for AttemptLimit {
    fn default() -> Self {
        AttemptLimit { max_attempts: 10 }
    }
}

/// A [`PeerState`] in memory, for tests and examples: it stores the encoded bytes, so the
/// codec runs on every save and load. Clone it to simulate a reboot with the same flash.
#[derive(Debug, Clone, Default)]
pub struct MemoryPeerState {
    bytes: Option<Vec<u8>>,
}

impl MemoryPeerState {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored state, decoded.
    pub fn stored(&self) -> Option<PersistedPeerState> {
        self.bytes
            .as_deref()
            .and_then(|b| PersistedPeerState::decode(b).ok())
    }
}

impl PeerState for MemoryPeerState {
    type Error = DecodeError;

    fn load(&mut self) -> Result<Option<PersistedPeerState>, DecodeError> {
        self.bytes
            .as_deref()
            .map(PersistedPeerState::decode)
            .transpose()
    }

    fn save(&mut self, state: &PersistedPeerState) -> Result<(), DecodeError> {
        self.bytes = Some(state.encode());
        Ok(())
    }
}

impl<T: PeerState + ?Sized> PeerState for &mut T {
    type Error = T::Error;

    fn load(&mut self) -> Result<Option<PersistedPeerState>, Self::Error> {
        (**self).load()
    }

    fn save(&mut self, state: &PersistedPeerState) -> Result<(), Self::Error> {
        (**self).save(state)
    }
}

/// Counts an attempt before it starts: loads, checks the limit, saves the incremented count.
/// `Ok(false)`: the limit is reached (nothing saved). `Err`: the count could not be saved, so
/// the attempt must not start either.
pub(crate) fn begin_attempt<St: PeerState>(
    state: &mut St,
    limit: &AttemptLimit,
) -> Result<bool, St::Error> {
    let mut current = state.load()?.unwrap_or_default();
    if current.attempts >= limit.max_attempts {
        return Ok(false);
    }
    current.attempts = current.attempts.saturating_add(1);
    state.save(&current)?;
    Ok(true)
}

/// A completed handoff: the count starts again from zero.
pub(crate) fn attempt_succeeded<St: PeerState>(state: &mut St) -> Result<(), St::Error> {
    state.save(&PersistedPeerState::default())
}
