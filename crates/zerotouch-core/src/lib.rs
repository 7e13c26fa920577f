//! # zerotouch-core
//!
//! What every part of zerotouch shares: the message envelope and its one decoder, the
//! transcript that every signature covers, COSE_Sign1 signatures with Ed25519 and ECDSA P-256,
//! key ids and key rings, the signing and crypto-provider seams, device certificates, the
//! barcode payload and secret types.
//!
//! The crate is sans-IO and `no_std` + `alloc`: it opens no socket, reads no clock and owns no
//! RNG. Time and randomness come from the caller. DNS and BLE carry no TLS, so messages protect
//! themselves: each signed message is bound to its envelope, the signer's key role and the
//! session transcript.
//!
//! ```
//! use zerotouch_core::{
//!     sign_message, Envelope, Flow, Header, KeyRole, MessageTag, PinnedKey, PinnedKeys,
//!     ProtocolVersion, RustCryptoProvider, SessionId, SignatureAlgorithm, SigningKey,
//!     SoftwareSigner, Transcript, Transport, Body,
//! };
//!
//! let provider = RustCryptoProvider;
//! // A server key (fixed here; use `SigningKey::generate` with a CSPRNG in practice).
//! let key = SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[7u8; 32])?;
//! let server = SoftwareSigner::new(key);
//!
//! // Both sides build the same transcript.
//! let session_id = SessionId([1u8; 16]);
//! let th = Transcript::new(&provider, Flow::ServerSetup, Transport::Dns, &session_id).hash();
//!
//! let header = Header {
//!     version: ProtocolVersion::V1,
//!     flow: Flow::ServerSetup,
//!     tag: MessageTag::ServerProof,
//!     session_id,
//!     seq: 0,
//! };
//! let wire = sign_message(header, KeyRole::SetupSigning, &th, b"payload".to_vec(), &server, &provider)?
//!     .encode();
//!
//! // The device decodes and verifies against its pinned keys.
//! let pinned = PinnedKeys::new(vec![PinnedKey::new(KeyRole::SetupSigning, server.signing_key().public_key())]);
//! let envelope = Envelope::decode(&wire)?;
//! let Body::Signed(body) = &envelope.body else { unreachable!() };
//! let payload = body.verify_trusted(&envelope.header, KeyRole::SetupSigning, &th, &pinned, &provider)?;
//! assert_eq!(payload, b"payload");
//! # Ok::<(), zerotouch_core::Error>(())
//! ```
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `std` | yes | `CountingProvider` (needs 64-bit atomics) |
//! | `ed25519` | yes | Ed25519 signatures; without it a build is P-256 only |
//! | `x25519` | yes | the X25519 HPKE suite; without it a build seals with P-256 only |
//! | `x509` | yes | `DeviceCertificate`, `PublicKey::from_spki_der` (servers; not needed on devices) |
//! | `barcode` | yes | `BarcodePayload` (factories, registrars, servers; not devices) |
//! | `insecure-fuzzing` | no | `InsecureFuzzingProvider`, which accepts every signature: fuzzing only |
//!
//! A device build uses `default-features = false` (add `ed25519` if its keys need it).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "barcode")]
mod barcode;
pub mod cbor;
mod context;
mod envelope;
mod error;
mod error_message;
pub mod flow1;
pub mod flow2;
#[cfg(feature = "x509")]
mod identity;
mod key;
mod keyring;
mod nonce;
mod pinned_bundle;
mod provider;
mod seal;
mod secret;
pub mod signed;
mod signer;
mod suite;
mod tag;
mod transcript;
mod version;

#[cfg(feature = "barcode")]
pub use barcode::{BarcodePayload, KeyFingerprint, MAX_PAYLOAD_LEN, MAX_PRODUCT_NUMBER_LEN};
pub use context::{Flow, Transport};
pub use envelope::{Body, Envelope, Header, Message};
pub use error::{
    BarcodeError, CertificateError, DecodeError, Error, KeyError, NegotiationError, SealError,
    SecretError, SignatureError,
};
pub use error_message::{ErrorCode, ErrorMessage};
#[cfg(feature = "x509")]
pub use identity::DeviceCertificate;
pub use key::{KeyId, PublicKey, Signature, SignatureAlgorithm, SigningKey};
pub use keyring::{
    KeyLookup, KeyMapRule, KeyRole, KeyState, PinnedKey, PinnedKeys, ServerKey, ServerKeyRing,
};
pub use nonce::{Instant, Nonce, SessionId};
pub use pinned_bundle::{
    MAX_BUNDLE_INDICATIONS, MAX_BUNDLE_KEYS, PINNED_BUNDLE_VERSION, PinnedKeyBundle,
};
#[cfg(feature = "insecure-fuzzing")]
pub use provider::InsecureFuzzingProvider;
#[cfg(feature = "std")]
pub use provider::{CountingProvider, OperationCounts};
pub use provider::{CryptoProvider, RustCryptoProvider};
pub use seal::{Sealed, SessionKeyPair, seal_to};
pub use secret::{DeviceSecret, Passphrase, Pin, SecretBytes};
pub use signed::{PendingSignature, SignedBody, external_aad, sign_message};
pub use signer::{SignRequest, Signer, SoftwareSigner, ToBeSigned};
pub use suite::{CipherSuite, check_suite_choice, negotiate_suite};
pub use tag::{MAX_MESSAGE_LEN, MessageTag};
pub use transcript::{Transcript, TranscriptField, TranscriptHash};
pub use version::{
    ProtocolVersion, SUPPORTED_VERSIONS, check_version_choice, is_supported, negotiate_version,
};
