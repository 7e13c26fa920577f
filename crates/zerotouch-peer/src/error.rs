//! The crate's error: misuse of the API or a broken local channel. Protocol refusals are
//! events, not errors.

use crate::framing::FramingError;
use crate::noise::NoiseError;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The Noise layer refused a message (tampered, out of turn, weak key) or failed.
    #[error("local channel: {0}")]
    Noise(#[from] NoiseError),
    /// The byte stream carried a frame of an impossible length.
    #[error("local stream framing: {0}")]
    Framing(#[from] FramingError),
    /// A message was to be sent before the handshake completed.
    #[error("the local channel is not open yet")]
    ChannelNotOpen,
    /// The channel was closed after a failure or at the end of the handoff.
    #[error("the local channel is closed")]
    ChannelClosed,
    /// A typed code is not eight digits (spaces and dashes between them aside).
    #[error("a code is eight digits")]
    InvalidCode,
    /// The PAKE refused a value (a share off the curve, a stored record that does not parse)
    /// or a key confirmation did not match.
    #[error("PAKE: {0}")]
    Pake(spake2plus::Error),
    /// PBKDF2 refused its parameters (it takes any key length, so this does not happen).
    #[error("code key derivation failed")]
    Kdf,
    /// The owner's answer or code came when no fallback was waiting for it.
    #[error("no fallback is waiting for the owner")]
    NotWaitingForOwner,
    /// The configuration cannot work (no pinned association key, a suite this build lacks).
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}
