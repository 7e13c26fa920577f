//! The crate's one error type.

use zerotouch_core::{BarcodeError, DecodeError, SealError, SecretError, SignatureError};
use zerotouch_pki::PkiError;
use zerotouch_store::StoreError;

/// Every error `zerotouch-factory` returns. Each variant says what was wrong, so a factory
/// operator can fix the batch and a server can tell a damaged file from a forged one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FactoryError {
    /// The batch specification cannot be carried out as given.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// The number of signing requests is not the batch's device count.
    #[error("{found} signing requests for a batch of {expected} devices")]
    SigningRequestCount {
        /// Devices in the batch.
        expected: u32,
        /// Signing requests given.
        found: usize,
    },
    /// A signing request was refused (malformed, signature does not verify, key of another
    /// algorithm than P-256 or Ed25519).
    #[error("signing request {index}: {source}")]
    SigningRequest {
        /// Position of the request in the list (from 0).
        index: usize,
        /// What was wrong with it.
        source: PkiError,
    },
    /// A signing request's key is not of the algorithm the batch names.
    #[error("signing request {index} holds a {found:?} key; the batch is {expected:?}")]
    SigningRequestAlgorithm {
        /// Position of the request in the list (from 0).
        index: usize,
        /// Algorithm of the request's key.
        found: zerotouch_core::SignatureAlgorithm,
        /// Algorithm the batch names.
        expected: zerotouch_core::SignatureAlgorithm,
    },
    /// Two devices of one batch or manifest have the same key (or, in a manifest, serial).
    #[error("device {index} repeats the key or serial of an earlier device")]
    DuplicateDevice {
        /// Position of the second device (from 0).
        index: usize,
    },
    /// The certificate authority could not issue a device certificate.
    #[error("issuing a device certificate: {0}")]
    Certificate(#[source] PkiError),
    /// A device key could not be generated, or the manifest could not be signed.
    #[error("signing key: {0}")]
    Signing(#[source] SignatureError),
    /// A PIN could not be generated (digits outside 6 to 12).
    #[error("PIN: {0}")]
    Pin(#[source] SecretError),
    /// A PIN record could not be made (too few iterations).
    #[error("PIN record: {0}")]
    PinRecord(#[source] StoreError),
    /// A box label could not be made (for example a product number outside `0-9A-Z`).
    #[error("label: {0}")]
    Label(#[source] BarcodeError),
    /// The QR code or its PNG could not be made.
    #[error("QR code: {0}")]
    Qr(String),
    /// Sealing the secrets to the server's import key failed (for example a public key that
    /// is not a key of the named suite).
    #[error("sealing the secrets to the import key: {0}")]
    Seal(#[source] SealError),
    /// The manifest is larger than [`crate::MAX_MANIFEST_LEN`] or lists more than
    /// [`crate::MAX_MANIFEST_DEVICES`] devices.
    #[error("manifest too large: {0}")]
    ManifestTooLarge(String),
    /// The manifest bytes are not a well-formed manifest.
    #[error("malformed manifest: {0}")]
    MalformedManifest(#[source] DecodeError),
    /// The manifest is of a format version this build does not read.
    #[error("manifest format {0} is not supported (this build reads format 1)")]
    UnsupportedFormat(u64),
    /// No trusted factory-manifest key has the key id the manifest names.
    #[error("the manifest is signed by a key that is not a trusted factory-manifest key")]
    UntrustedSigner,
    /// The manifest's signature does not verify: it was changed after signing, or signed in
    /// another role or format.
    #[error("the manifest's signature does not verify: {0}")]
    BadSignature(#[source] SignatureError),
    /// The manifest's secrets are sealed to another import key than the one given.
    #[error("the manifest's secrets are sealed to another import key")]
    WrongImportKey,
    /// The sealed secrets did not open with the import key.
    #[error("the manifest's sealed secrets do not open")]
    SecretsDoNotOpen,
}
