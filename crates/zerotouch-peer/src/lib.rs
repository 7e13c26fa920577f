//! # zerotouch-peer
//!
//! Flow 2 of zerotouch on the devices, as sans-IO state machines for firmware (`no_std` +
//! `alloc`): an already-joined [`Sponsor`] hands the home network credential to a new
//! [`Joiner`] over an encrypted local channel, after the association server has confirmed both
//! belong to one account. The credential never leaves the home, the association server learns
//! nothing that helps it guess the credential, and a device relaying in the middle gets
//! nothing. The wire format and the reasons for each rule are in `docs/PROTOCOL.md` section 18.
//!
//! - [`channel`]: Noise `NN_25519_ChaChaPoly_SHA256` ([`noise`]) in length-prefixed frames
//!   ([`framing`]) over any reliable byte stream; its handshake hash is the channel binding.
//! - [`Joiner`]: credential request → checks the server-signed challenge data (pinned
//!   association key, its own ids and nonce, nonce fresh on its own clock, the binding of its
//!   own channel) → answers with HMAC-SHA-256 under its device secret → reports the credential
//!   only if it matches the signed commitment.
//! - [`Sponsor`]: signs a verification request (binding of its *own* channel, a commitment
//!   keyed by a fresh secret) with its identity key through a [`zerotouch_core::Signer`] →
//!   checks the server's two signatures and opens the expected answer sealed to it → forwards
//!   the challenge → compares the answer in constant time → hands over, inside the channel.
//! - Both count attempts in a [`PeerState`] *before* they use them, so a reboot buys nothing.
//! - When the server is unreachable or does not know the two as one account's, the owner
//!   steps in through a fallback the firmware allows: a compared code (commit-then-reveal), a
//!   fresh code shown on one device and typed on the other, or the joiner's label code, the
//!   last two proven with SPAKE2+ ([`pake`]); each is bound to the channel, asks the owner
//!   through an [`OwnerPrompt`] event, and sends the credential only inside the channel.
//!
//! ```
//! use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! use zerotouch_core::flow2::HomeCredential;
//! use zerotouch_core::*;
//! use zerotouch_peer::*;
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(7);
//! // The association server's key, pinned in both devices' firmware.
//! let server = SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, &mut rng)?;
//! let pinned = PinnedKeys::new(vec![PinnedKey::new(KeyRole::Association, server.public_key())]);
//!
//! // The sponsor: its identity key and the home credential.
//! let identity = SoftwareSigner::new(SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, &mut rng)?);
//! let home = HomeCredential { ssid: b"home".to_vec(), security: 1, passphrase: Passphrase::new(b"correct horse")? };
//! let mut sponsor = Sponsor::new(SponsorConfig::new(home, pinned.clone()), identity, MemoryPeerState::new())?;
//!
//! // The joiner: its id and the device secret the factory gave it.
//! let config = JoinerConfig::new(KeyId([9; 32]), DeviceSecret::generate(&mut rng), pinned);
//! let mut joiner = Joiner::new(config, MemoryPeerState::new())?;
//!
//! // Wire them together as a byte stream would: handshake, then the credential request.
//! joiner.start(Instant(0), &mut rng);
//! sponsor.accept(Instant(0), &mut rng);
//! let mut to_server = None;
//! for _ in 0..4 {
//!     while let Some(bytes) = joiner.poll_transmit() {
//!         sponsor.receive_local(Instant(1), &bytes, &mut rng);
//!     }
//!     while let Some(t) = sponsor.poll_transmit() {
//!         match t.destination {
//!             Destination::Joiner => joiner.receive(Instant(1), &t.bytes, &mut rng),
//!             Destination::AssociationServer => to_server = Some(t.bytes),
//!         }
//!     }
//! }
//! // The sponsor now waits for the association server, with a signed verification request.
//! let request = Envelope::decode(&to_server.expect("verification request"))?;
//! assert_eq!(request.header.tag, MessageTag::VerificationRequest);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod channel;
mod error;
mod event;
pub mod framing;
mod joiner;
pub mod noise;
mod owner;
pub mod pake;
mod sponsor;
mod state;

pub use channel::LocalChannel;
pub use error::PeerError;
pub use event::{JoinerEvent, JoinerFailure, SponsorEvent, SponsorFailure};
pub use joiner::{Joiner, JoinerConfig};
pub use owner::{OwnerInterface, OwnerPrompt, ScreenText};
pub use pake::{LabelRecord, PairingCode};
pub use sponsor::{Destination, Sponsor, SponsorConfig, SponsorTransmit};
pub use state::{AttemptLimit, MemoryPeerState, PeerState, PersistedPeerState};
