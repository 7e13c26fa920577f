//! The crate's one error type, with a typed sub-enum per kind of failure.
//!
//! Each variant names what was wrong with the input, so the caller can tell a malformed
//! message (drop it) from a failed signature (treat the sender as hostile) from a
//! misuse of the API (a bug on our side of the wire).

use thiserror::Error;

/// Every error `zerotouch-core` returns.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from outside were not a well-formed message.
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    /// A signature did not verify, or no trusted key could verify it.
    #[error("signature rejected: {0}")]
    Signature(#[from] SignatureError),
    /// A key was malformed, unknown, revoked or used outside its role.
    #[error("key rejected: {0}")]
    Key(#[from] KeyError),
    /// A device certificate could not be used.
    #[error("certificate rejected: {0}")]
    Certificate(#[from] CertificateError),
    /// A barcode payload was malformed.
    #[error("barcode payload rejected: {0}")]
    Barcode(#[from] BarcodeError),
    /// A secret (PIN, passphrase, device secret) had an invalid form.
    #[error("secret rejected: {0}")]
    Secret(#[from] SecretError),
    /// The peers have no protocol version or suite in common.
    #[error("negotiation failed: {0}")]
    Negotiation(#[from] NegotiationError),
    /// Sealing to or opening with a per-session key failed.
    #[error("sealing failed: {0}")]
    Seal(#[from] SealError),
}

/// What was wrong with bytes that should have been a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the limit for its message type (or the overall limit).
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLong {
        /// Length of the input.
        len: usize,
        /// Limit that applied.
        limit: usize,
    },
    /// The input is not valid CBOR, or is nested too deeply.
    #[error("invalid CBOR")]
    InvalidCbor,
    /// Bytes follow the end of the CBOR item.
    #[error("trailing bytes after the message")]
    TrailingBytes,
    /// The CBOR is not in the one accepted form (shortest integers and lengths, definite
    /// lengths, no tags).
    #[error("CBOR not in its canonical form")]
    NonCanonical,
    /// A CBOR item had the wrong major type or shape.
    #[error("field `{field}`: expected {expected}")]
    UnexpectedType {
        /// Which field.
        field: &'static str,
        /// What was expected there.
        expected: &'static str,
    },
    /// An array had the wrong number of elements.
    #[error("`{field}` has {found} elements, expected {expected}")]
    WrongLength {
        /// Which structure.
        field: &'static str,
        /// Elements found.
        found: usize,
        /// Elements expected.
        expected: usize,
    },
    /// An integer field was out of its allowed range.
    #[error("field `{field}` is out of range")]
    OutOfRange {
        /// Which field.
        field: &'static str,
    },
    /// The protocol version is not one this build speaks.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u64),
    /// The flow number is unknown.
    #[error("unknown flow {0}")]
    UnknownFlow(u64),
    /// The message tag is unknown.
    #[error("unknown message tag {0}")]
    UnknownTag(u64),
    /// The message tag does not belong to the envelope's flow.
    #[error("message tag {tag} is not part of flow {flow}")]
    TagNotInFlow {
        /// Tag found.
        tag: u8,
        /// Flow of the envelope.
        flow: u8,
    },
    /// The transport number is unknown.
    #[error("unknown transport {0}")]
    UnknownTransport(u64),
    /// A signed message type arrived with a plain body, or the reverse.
    #[error("message tag {0} arrived with the wrong body kind (signed vs plain)")]
    WrongBodyKind(u8),
    /// The COSE_Sign1 structure was malformed.
    #[error("malformed COSE_Sign1: {0}")]
    Cose(&'static str),
    /// An error code is unknown.
    #[error("unknown error code {0}")]
    UnknownErrorCode(u64),
}

/// Why a signature was not accepted. Deliberately coarse: a verifier tells an attacker nothing
/// about which check failed beyond what it needs to retry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    Invalid,
    /// The algorithm in the protected header differs from the key's algorithm.
    #[error("algorithm in the signed header does not match the key")]
    AlgorithmMismatch,
    /// The key id in the protected header is not the key's id.
    #[error("key id in the signed header does not match the key")]
    KeyIdMismatch,
    /// No trusted key has the key id in the protected header.
    #[error("no trusted key with this key id")]
    UnknownKey,
    /// The signature has the wrong length for its algorithm.
    #[error("signature has the wrong length")]
    WrongLength,
    /// The signer (secure element, HSM, KMS) failed to sign.
    #[error("signer failed: {0}")]
    SignerFailed(&'static str),
    /// A signature response did not answer the request it was given for.
    #[error("signature response does not match the pending request")]
    ResponseMismatch,
    /// The role asked for is not the one that signs this message type.
    #[error("this message type is not signed by a key of that role")]
    RoleNotForTag,
    /// This build has no implementation of the algorithm (e.g. a P-256-only device build).
    #[error("algorithm not supported by this build")]
    UnsupportedAlgorithm,
}

/// What was wrong with a key or its use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The public key bytes are not a valid point / encoding.
    #[error("malformed public key")]
    MalformedPublicKey,
    /// The private key bytes are invalid.
    #[error("malformed private key")]
    MalformedPrivateKey,
    /// The SubjectPublicKeyInfo names an algorithm or curve we do not support.
    #[error("unsupported key algorithm")]
    UnsupportedAlgorithm,
    /// The key is held for another role than the one asked for.
    #[error("key is held for role {held:?}, not {wanted:?}")]
    WrongRole {
        /// Role the key has.
        held: crate::KeyRole,
        /// Role the operation needs.
        wanted: crate::KeyRole,
    },
    /// The key is revoked.
    #[error("key is revoked")]
    Revoked,
    /// The key id is already in the ring.
    #[error("key id already present")]
    Duplicate,
    /// No key with this id is in the ring.
    #[error("no such key")]
    NotFound,
    /// No usable key is left for the request.
    #[error("no usable key")]
    NoUsableKey,
    /// A serial-number range is empty or overlaps an existing rule for the same device type.
    #[error("invalid or overlapping serial range")]
    InvalidRange,
}

/// Why a device certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// Not a DER X.509 certificate.
    #[error("not a DER-encoded X.509 certificate")]
    MalformedDer,
    /// The certificate's key is not Ed25519 or P-256.
    #[error("unsupported subject public key algorithm")]
    UnsupportedKey,
    /// The certificate's key is malformed.
    #[error("malformed subject public key")]
    MalformedKey,
}

/// What was wrong with a barcode payload.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BarcodeError {
    /// It does not start with a known `ZT<version>` prefix.
    #[error("unknown prefix or version")]
    UnknownVersion,
    /// It has the wrong number of `/`-separated fields.
    #[error("expected {expected} fields, found {found}")]
    FieldCount {
        /// Fields expected.
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A character outside the allowed set.
    #[error("invalid character in field `{0}`")]
    InvalidCharacter(&'static str),
    /// A field has the wrong length.
    #[error("field `{0}` has an invalid length")]
    InvalidLength(&'static str),
    /// The check character does not match.
    #[error("check character mismatch (mistyped or damaged payload)")]
    CheckMismatch,
    /// The device type is not a number in range.
    #[error("device type out of range")]
    DeviceTypeOutOfRange,
}

/// What was wrong with a secret's form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SecretError {
    /// A PIN must be 6 to 12 decimal digits.
    #[error("a PIN must be 6 to 12 decimal digits")]
    InvalidPin,
    /// A Wi-Fi passphrase must be 8-63 printable ASCII characters or 64 hex digits.
    #[error("a passphrase must be 8-63 printable ASCII characters or 64 hex digits")]
    InvalidPassphrase,
    /// A device secret must be exactly 32 bytes.
    #[error("a device secret must be 32 bytes")]
    InvalidDeviceSecret,
}

/// The peers have nothing in common to agree on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// No protocol version in common.
    #[error("no common protocol version")]
    NoCommonVersion,
    /// No cipher suite in common.
    #[error("no common cipher suite")]
    NoCommonSuite,
    /// The chosen value was not among those offered (a downgrade attempt).
    #[error("chosen value was not offered")]
    NotOffered,
}

/// What went wrong sealing to, or opening with, a per-session key (HPKE, RFC 9180).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The suite is not one this build implements (X25519 needs the `x25519` feature).
    #[error("cipher suite not implemented by this build")]
    UnsupportedSuite,
    /// A public key (recipient key or encapsulated key) is not a valid point for the suite.
    #[error("invalid public key for the suite")]
    InvalidPublicKey,
    /// A private key's bytes are not a valid scalar for the suite.
    #[error("invalid private key for the suite")]
    InvalidPrivateKey,
    /// A sealed value did not open: wrong key, wrong transcript, reordered or tampered.
    #[error("sealed value did not open")]
    OpenFailed,
    /// Sealing failed (the message limit of the context was reached).
    #[error("sealing failed")]
    SealFailed,
}
