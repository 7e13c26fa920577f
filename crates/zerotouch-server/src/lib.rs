//! # zerotouch-server
//!
//! The flow-1 setup service and the flow-2 association service: handlers that take a
//! request's bytes, who delivered them and the time, and return the response's bytes.
//! Transports (HTTPS, DNS, a BLE relay) only move bytes to [`SetupService::handle`] and
//! [`AssociationService::handle`]; every protocol decision is made here, over the
//! [`Store`](zerotouch_store::Store), so any server process can continue any session.
//!
//! What it decides:
//! - **device authentication**: a hello names a known, unblocked, not locked-out device that
//!   belongs to an account; the credential request's signature by the device key over the
//!   transcript is checked before anything else counts (mutual TLS, when present, must name
//!   the same key, and never replaces the proof);
//! - **key selection**: the setup key the type/serial map names if the device trusts it and
//!   it is not revoked, else the first trusted one that is;
//! - **PIN verification**: against the salted slow hash in the store, after the key proof;
//!   failures lock out, across restarts;
//! - **credentials**: the account's networks among those the device reported, in a mode the
//!   access point offers and its radio supports, sealed with HPKE to the device's session
//!   key; never another account's;
//! - **replays**: identical retransmissions get the stored response bytes, a different
//!   request reusing a session or nonce is refused;
//! - **rate**: signatures per device key per hour are capped;
//! - **outcomes**, the **revocation service** (verdicts signed by a dedicated key) and the
//!   **registrar** policy ([`SetupService::register_device`]).
//!
//! The association service ([`AssociationService::answer`], flow 2 steps 3–4) checks a
//! sponsor's signed verification request (known, unblocked sponsor; its TLS client key, if
//! any; identical retransmissions answered with the stored bytes; the joiner's nonce used
//! once; per-sponsor and per-joiner limits in the store; both devices on one account, the
//! joiner with a device secret) and answers with challenge data for the joiner and the
//! expected answer sealed to the sponsor, both signed by the association key. It copies the
//! sponsor's credential commitment and never sees the credential.
//! [`SetupService::association_service`] builds one on the setup service's store and keys.
//!
//! Unknown, blocked, locked and unowned devices get the same unsigned error. Every request is
//! handled in a `tracing` span named `flow1` with its session id; no secret is ever logged.
//! [`SetupService::answer`] also says which message it answered and why it refused, for a
//! transport's status codes; [`ServiceMetrics`] counts requests by message and result,
//! outcomes, lock-outs and revocation checks, and [`MeasuredStore`] times every store
//! operation into it.
//!
//! ```
//! use zerotouch_core::{Instant, KeyRole, ServerKeyRing, SignatureAlgorithm, SigningKey,
//!     SoftwareSigner, Transport};
//! use zerotouch_server::{ServiceConfig, SetupService, TransportIdentity};
//! use zerotouch_store::MemoryStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut keys = ServerKeyRing::new();
//! keys.add(KeyRole::SetupSigning, SoftwareSigner::new(
//!     SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[1; 32])?))?;
//! keys.add(KeyRole::RevocationVerdict, SoftwareSigner::new(
//!     SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[2; 32])?))?;
//! let service = SetupService::new(MemoryStore::new(), keys, ServiceConfig::default());
//!
//! // Whatever arrives, the answer is bytes: here an error message for garbage.
//! let from = TransportIdentity::Direct { transport: Transport::Dns, client_key: None };
//! let mut rng = rand_chacha::ChaCha20Rng::from_seed([0; 32]);
//! # use rand_core::SeedableRng;
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! let answer = rt.block_on(service.handle(b"not a message", &from, Instant(0), &mut rng));
//! assert!(!answer.is_empty());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod association;
mod association_refusal;
mod config;
mod credentials;
mod device_key;
mod error;
mod measured_store;
mod metrics;
mod observed;
mod refusal;
mod registrar;
mod responses;
mod session_state;
mod setup;
mod transport_identity;

pub use association::AssociationService;
pub use association_refusal::{AssociationAnswer, AssociationRefusal};
pub use config::{AmbiguousKeyPolicy, AssociationConfig, PinPolicy, ServiceConfig};
pub use error::ServerError;
pub use measured_store::MeasuredStore;
pub use metrics::{Labels, ServiceMetrics};
pub use refusal::Refusal;
pub use registrar::{ReassociationProof, Registration};
pub use setup::{Answer, SetupService};
pub use transport_identity::TransportIdentity;
