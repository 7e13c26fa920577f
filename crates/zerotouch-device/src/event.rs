//! What the session tells the firmware: events to act on or log, and the typed reasons behind
//! refusals and failures.

use alloc::vec::Vec;

use zerotouch_core::{
    DecodeError, ErrorCode, KeyId, NegotiationError, Passphrase, SealError, SignatureError,
};

/// Something the firmware acts on or logs. `Debug` redacts passphrases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Scan for networks, then call [`crate::DeviceSession::scan_complete`].
    ScanRequested,
    /// The setup server proved itself with this pinned key.
    ServerAuthenticated {
        /// The key that signed the proof.
        key_id: KeyId,
    },
    /// Leave the setup network and join this network, then call
    /// [`crate::DeviceSession::join_result`].
    Join {
        /// The network.
        ssid: Vec<u8>,
        /// Security bits to join with (1 = WPA2-Personal, 2 = WPA3-Personal).
        security: u8,
        /// Its passphrase (zeroized when dropped).
        passphrase: Passphrase,
    },
    /// The device is on its home network; store the network as the home network.
    Joined {
        /// The network.
        ssid: Vec<u8>,
    },
    /// The server acknowledged the outcome report.
    OutcomeAcknowledged,
    /// A verified verdict revoked the key the setup trusted; it is dropped for good.
    KeyRevoked {
        /// The dropped key.
        key_id: KeyId,
        /// The setup key now indicated, if the verdict named one the device pins.
        replacement: Option<KeyId>,
    },
    /// Leave the home network (its credential came through a revoked key); setup starts again.
    LeaveNetwork,
    /// A message was ignored (for logs): it may come from an attacker, so the session goes
    /// on as if it never arrived.
    MessageRefused {
        /// Why.
        reason: Refusal,
    },
    /// The server sent an unsigned error: a hint only, the request will be retried.
    ServerHint {
        /// What the server said.
        code: ErrorCode,
        /// How long it asked the device to wait.
        retry_after_s: u32,
    },
    /// This session failed; a new one starts after a back-off.
    SessionFailed {
        /// Why.
        reason: Failure,
    },
    /// Too many sessions failed in a row: the device stops until the next
    /// [`crate::DeviceSession::start`].
    GaveUp {
        /// Why the last session failed.
        reason: Failure,
    },
    /// Setup is over: the device is on its home network.
    Complete {
        /// Whether a verified verdict said the trusted key is good (false: the check could not
        /// be completed; the key is kept).
        revocation_checked: bool,
    },
    /// Persisting the device state failed; the session goes on and saves again at its next
    /// persistence point.
    StateNotSaved,
}

/// Why an incoming message was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The bytes are not a well-formed envelope or body.
    Malformed(DecodeError),
    /// No request is waiting for an answer, or this is not the answer it waits for.
    Unexpected,
    /// It arrived over the other network.
    WrongPath,
    /// It belongs to another session, flow or place in the exchange.
    WrongSession,
    /// The signature did not verify against the pinned keys.
    Signature(SignatureError),
    /// The server proof is signed by a key the hello did not list.
    KeyNotOffered,
    /// The server chose a version or suite the device did not offer (a downgrade attempt).
    Downgrade(NegotiationError),
    /// The credential response is signed by another key than the server proof.
    WrongSigner,
    /// The credentials did not open under this session's key and transcript.
    SealedCredentials(SealError),
    /// The answer carries another nonce than the request (a replay).
    WrongNonce,
    /// The verdict is about another key than the one queried.
    WrongKey,
    /// The verdict is signed by the key it is about.
    SignedByQueriedKey,
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer after every retransmission.
    Timeout,
    /// The server asked for a PIN and the device has none.
    PinRequiredButNone,
    /// The server holds no usable credential for the networks the device sees.
    NoCredentials,
    /// Every credential was tried and no join succeeded.
    AllJoinsFailed,
    /// The server's proof expired before the credential request was answered.
    ProofExpired,
    /// Sealing the report failed (the server's sealing key is unusable for its suite).
    Seal(SealError),
    /// The device's signer failed, or its signature did not check.
    Signer(SignatureError),
    /// The device rebooted in the middle of the session.
    Interrupted,
    /// Every pinned setup key has been dropped: no server can be authenticated.
    NoTrustedKey,
}
