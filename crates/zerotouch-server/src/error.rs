//! Errors of the operator-facing calls (registrar, blocklist, maintenance). The request
//! handler never fails: it answers every request with bytes, an error message at worst.

use zerotouch_core::KeyError;
use zerotouch_store::StoreError;

/// What went wrong in an operator-facing call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A key operation failed.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// No device has a key matching the scanned label's fingerprint.
    #[error("no device matches the scanned label")]
    UnknownDevice,
    /// Several devices match the label's fingerprint prefix (the label is too short to tell).
    #[error("the scanned label matches several devices")]
    AmbiguousLabel,
    /// The label's device type or product number differs from the device record.
    #[error("the scanned label does not match the device record")]
    LabelMismatch,
    /// The registrar is unknown or disabled.
    #[error("registrar is unknown or disabled")]
    RegistrarNotAllowed,
    /// The device belongs to another account; moving it needs the in-box PIN or the current
    /// owner's consent.
    #[error(
        "device belongs to another account: re-association needs the in-box PIN or the owner's consent"
    )]
    ReassociationNeedsProof,
    /// The PIN given for a re-association is wrong.
    #[error("the in-box PIN is wrong")]
    WrongPin,
    /// Too many wrong PINs for this device: the registrar must wait.
    #[error("too many wrong PINs for this device; locked until {until_ms} ms")]
    Locked {
        /// End of the lock-out (ms).
        until_ms: u64,
    },
    /// The consent names an account that does not own the device.
    #[error("the consenting account does not own the device")]
    ConsentNotFromOwner,
    /// The account does not exist.
    #[error("unknown account")]
    UnknownAccount,
}
