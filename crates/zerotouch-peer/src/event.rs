//! What the roles tell the firmware: typed events, and the typed reasons behind refusals and
//! failures.

use zerotouch_core::flow2::{ChannelBinding, Fallback};
use zerotouch_core::{DecodeError, ErrorCode, KeyId, Passphrase, SealError, SignatureError};

use crate::PeerError;
use crate::owner::{OwnerPrompt, ScreenText};

/// Something the joiner's firmware acts on or logs. `Debug` redacts the passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinerEvent {
    /// The encrypted channel is open; this is its binding (for logs).
    ChannelOpen {
        /// The channel's binding value.
        binding: ChannelBinding,
    },
    /// The association server vouched for this sponsor and challenged the joiner; the joiner
    /// answered.
    Challenged {
        /// The sponsor's device key id.
        sponsor_id: KeyId,
    },
    /// Every check passed: join this network. Reported only after the server's signature,
    /// the nonce's freshness, the channel binding and the commitment all checked out.
    Join {
        /// The network.
        ssid: alloc::vec::Vec<u8>,
        /// Security bits (1 = WPA2-Personal, 2 = WPA3-Personal, 3 = either).
        security: u8,
        /// Its passphrase (zeroized when dropped).
        passphrase: Passphrase,
    },
    /// The owner must act for a fallback: show `text` (or a translation built from `prompt`).
    /// Each attempt of a fallback starts with one of these; a new one after a failed attempt
    /// replaces the last.
    OwnerAction {
        /// The fallback running.
        fallback: Fallback,
        /// What is asked, typed.
        prompt: OwnerPrompt,
        /// The English text to show (redacted from `Debug`).
        text: ScreenText,
    },
    /// The sponsor sent an unsigned error: a hint (try another sponsor or a fallback).
    SponsorHint {
        /// What it said.
        code: ErrorCode,
    },
    /// The handoff failed; the channel is closed.
    Failed {
        /// Why.
        reason: JoinerFailure,
    },
    /// Persisting the attempt counter failed; no attempt was started.
    StateNotSaved,
}

/// Why a joiner's handoff failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinerFailure {
    /// The attempt limit is reached; the firmware must reset it after an owner action.
    AttemptLimitReached,
    /// The local channel broke (tampered frame, closed stream, failed handshake).
    Channel(PeerError),
    /// A message was not the well-formed one expected at this point.
    Malformed(DecodeError),
    /// A message came out of order.
    Unexpected,
    /// The challenge data's signature did not verify against the pinned association keys.
    Signature(SignatureError),
    /// The challenge data names another joiner, nonce or session (a replay).
    WrongHandoff,
    /// The signed binding is not this channel's: someone is relaying between two channels.
    BindingMismatch,
    /// The nonce expired on the joiner's own clock before the handoff completed.
    NonceExpired,
    /// The credential does not match the commitment the server signed.
    CommitmentMismatch,
    /// The owner said the compared codes differ (a): someone may be in the middle.
    CodesDiffer,
    /// The sponsor's revealed compared-code nonce does not match its commitment.
    SasCommitmentMismatch,
    /// The sponsor's PAKE confirmation did not match: it does not hold the same code, or it is
    /// on another channel.
    WrongCode,
    /// A fallback the joiner did not declare, or cannot run, was started.
    FallbackNotOffered,
    /// The owner did not act before the fallback's deadline.
    OwnerTimeout,
    /// The PAKE refused a value (the sponsor's share, or the stored label record).
    Pake(PeerError),
    /// The sponsor gave up (see the preceding [`JoinerEvent::SponsorHint`]).
    SponsorRefused,
}

/// Something the sponsor's firmware acts on or logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SponsorEvent {
    /// The encrypted channel is open; this is its binding (for logs).
    ChannelOpen {
        /// The channel's binding value.
        binding: ChannelBinding,
    },
    /// A joiner asked for the credential; a verification request is on its way to the server.
    CredentialRequested {
        /// The joiner's device key id.
        joiner_id: KeyId,
    },
    /// The association server confirmed the joiner; its challenge went to the joiner.
    JoinerVouchedFor {
        /// The joiner's device key id.
        joiner_id: KeyId,
    },
    /// The joiner answered correctly and the credential went out, encrypted.
    HandedOver {
        /// The joiner's device key id.
        joiner_id: KeyId,
    },
    /// The association server could not vouch for the joiner (unreachable, or the devices are
    /// not associated), so this fallback started; owner actions follow.
    FallbackStarted {
        /// The fallback: the first of the sponsor's list the joiner declared.
        fallback: Fallback,
    },
    /// The owner must act for a fallback: show `text` (or a translation built from `prompt`).
    OwnerAction {
        /// The fallback running.
        fallback: Fallback,
        /// What is asked, typed.
        prompt: OwnerPrompt,
        /// The English text to show (redacted from `Debug`).
        text: ScreenText,
    },
    /// A typed code did not prove out (b, c): the code was wrong, or someone is in the middle.
    /// A new attempt follows while `attempts_left` is above zero.
    CodeRejected {
        /// Attempts this sponsor still allows before an owner reset.
        attempts_left: u32,
    },
    /// The server refused (unsigned: a hint). `NotAssociated` means the devices do not share
    /// an account as far as the server knows.
    ServerRefused {
        /// What it said.
        code: ErrorCode,
    },
    /// The handoff failed; the channel is closed.
    Failed {
        /// Why.
        reason: SponsorFailure,
    },
    /// Persisting the attempt counter failed; no attempt was started.
    StateNotSaved,
}

/// Why a sponsor's handoff failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SponsorFailure {
    /// The attempt limit is reached; the firmware must reset it after an owner action.
    AttemptLimitReached,
    /// The local channel broke.
    Channel(PeerError),
    /// A message was not the well-formed one expected at this point.
    Malformed(DecodeError),
    /// A message came out of order.
    Unexpected,
    /// The joiner's view of the binding differs from the sponsor's: a relay, or a broken
    /// channel. (Advisory: the sponsor stops early; it never signs the joiner's value.)
    BindingMismatch,
    /// The server's answer did not verify against the pinned association keys.
    Signature(SignatureError),
    /// The server's answer is about another request (ids, nonce, commitment or binding).
    WrongVerification,
    /// The expected answer did not open under this handoff's answer key.
    SealedAnswer(SealError),
    /// The device's signer failed, or its signature did not check.
    Signer(SignatureError),
    /// The association server refused (see [`SponsorEvent::ServerRefused`]).
    ServerRefused,
    /// No answer from the association server after every retransmission.
    ServerUnreachable,
    /// The joiner sent no credential request in time after the stream was accepted.
    RequestTimeout,
    /// The joiner did not answer within the server's answer window.
    AnswerTimeout,
    /// The joiner's answer is wrong: it does not hold the device secret, or it answered on
    /// another channel.
    WrongAnswer,
    /// The owner said the compared codes differ (a), on this device or on the joiner.
    CodesDiffer,
    /// The joiner's compared-code message or PAKE reply was not the one expected.
    FallbackProtocol,
    /// The joiner stopped the fallback (its attempts are used up, its owner said no, or it
    /// found a message wrong).
    JoinerGaveUp,
    /// The typed code's key derivation or the PAKE refused a value.
    Pake(PeerError),
    /// The owner did not act before the fallback's deadline.
    OwnerTimeout,
}
