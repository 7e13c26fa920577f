//! What a joiner or sponsor keeps across reboots: its attempt counters.
//!
//! An attempt is counted, and the count saved, *before* the attempt starts. A device that is
//! switched off in the middle of an attempt therefore still has it counted, so power-cycling
//! cannot buy unlimited attempts. There are three counters:
//!
//! - automatic handoffs (answers to, or forwarded, server challenges);
//! - fallback attempts with a fresh code ((a) compared codes, (b) a typed code);
//! - label-code attempts ((c)): the label never changes, so this counter is never reset by a
//!   success or by the owner-action reset; only a factory reset (erasing this state) clears it.
//!
//! A completed handoff resets the first two; so does the explicit reset, which firmware calls
//! only after an owner action (a button held at power-up).

use alloc::vec::Vec;
use ciborium::Value;
use zerotouch_core::{DecodeError, cbor};

/// Version of the persisted encoding.
const STATE_VERSION: u64 = 2;

/// The durable state of one flow-2 role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistedPeerState {
    /// Automatic handoff attempts started since the last completed handoff.
    pub attempts: u32,
    /// Fallback attempts with a fresh code ((a), (b)) since the last completed handoff.
    pub fallback_attempts: u32,
    /// Label-code attempts ((c)) over the device's life (since its last factory reset).
    pub label_attempts: u32,
}

/// Which counter an attempt counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Handoff,
    Fallback,
    Label,
}

impl PersistedPeerState {
    /// Strict CBOR: `[2, attempts: uint, fallback_attempts: uint, label_attempts: uint]`.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Integer(STATE_VERSION.into()),
            Value::Integer(self.attempts.into()),
            Value::Integer(self.fallback_attempts.into()),
            Value::Integer(self.label_attempts.into()),
        ]))
    }

    /// Decodes what [`encode`](Self::encode) wrote, or version 1 (`[1, attempts]`, written
    /// before the fallbacks existed: their counters start at zero); anything else is a typed
    /// error.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let items = cbor::list(cbor::decode(bytes)?, "peer_state", 4)?;
        let count = |v: &Value, field| {
            cbor::uint(v, field, u64::from(u32::MAX))
                .and_then(|n| u32::try_from(n).map_err(|_| DecodeError::OutOfRange { field }))
        };
        match items.as_slice() {
            [version, attempts] if cbor::uint(version, "state version", 2)? == 1 => {
                Ok(PersistedPeerState {
                    attempts: count(attempts, "attempts")?,
                    ..PersistedPeerState::default()
                })
            }
            [version, attempts, fallback, label]
                if cbor::uint(version, "state version", 2)? == STATE_VERSION =>
            {
                Ok(PersistedPeerState {
                    attempts: count(attempts, "attempts")?,
                    fallback_attempts: count(fallback, "fallback_attempts")?,
                    label_attempts: count(label, "label_attempts")?,
                })
            }
            _ => Err(DecodeError::OutOfRange {
                field: "state version",
            }),
        }
    }

    fn counter(&mut self, counter: Counter) -> &mut u32 {
        match counter {
            Counter::Handoff => &mut self.attempts,
            Counter::Fallback => &mut self.fallback_attempts,
            Counter::Label => &mut self.label_attempts,
        }
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
    counter: Counter,
    limit: &AttemptLimit,
) -> Result<bool, St::Error> {
    let mut current = state.load()?.unwrap_or_default();
    let count = current.counter(counter);
    if *count >= limit.max_attempts {
        return Ok(false);
    }
    *count = count.saturating_add(1);
    state.save(&current)?;
    Ok(true)
}

/// Whether `counter` has reached `limit` (a state that cannot be read counts as reached).
pub(crate) fn exhausted<St: PeerState>(
    state: &mut St,
    counter: Counter,
    limit: &AttemptLimit,
) -> bool {
    state
        .load()
        .map(|s| *s.unwrap_or_default().counter(counter) >= limit.max_attempts)
        .unwrap_or(true)
}

/// A completed handoff, or the owner-action reset: the handoff and fallback counts start again
/// from zero. The label count never does.
pub(crate) fn attempt_succeeded<St: PeerState>(state: &mut St) -> Result<(), St::Error> {
    let label_attempts = state.load()?.unwrap_or_default().label_attempts;
    state.save(&PersistedPeerState {
        label_attempts,
        ..PersistedPeerState::default()
    })
}
