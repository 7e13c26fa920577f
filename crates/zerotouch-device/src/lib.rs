//! # zerotouch-device
//!
//! The device side of zerotouch's server-based setup (flow 1) as a sans-IO state machine, for
//! firmware on a microcontroller (`no_std` + `alloc`). It opens no socket, reads no clock and
//! owns no RNG: the firmware feeds it the time, received bytes, scan and join results, and
//! polls it for bytes to send, events to act on and the next timer, in the style of
//! quinn-proto.
//!
//! One setup runs: scan → hello → server proof (checked against the pinned keys) → credential
//! request (PIN and networks sealed to the authenticated server, signed by the identity key)
//! → credentials (opened with a per-session key) → joins, strongest network first → outcome
//! report and revocation check over the home network. Timeouts retransmit identical bytes;
//! failed sessions start again after a back-off within a budget; the dropped keys, the
//! indication and the progress marker are persisted through [`DeviceState`].
//!
//! ```
//! use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
//! use zerotouch_core::*;
//! use zerotouch_device::*;
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(1);
//! // The identity key (a secure element in a product) and the server key pinned in firmware.
//! let identity = SoftwareSigner::new(SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, &mut rng)?);
//! let server = SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, &mut rng)?;
//! let pinned = PinnedKeys::new(vec![PinnedKey::new(KeyRole::SetupSigning, server.public_key())]);
//!
//! let config = DeviceConfig {
//!     transport: Transport::Https,
//!     home_transport: Transport::Https,
//!     identity: DeviceIdentityRef::PublicKey(identity.public_key().to_spki_der()),
//!     pin: None,
//!     radio_bands: 1,
//!     radio_security: 3,
//!     suites: vec![CipherSuite::P256_SHA256_CHACHA20POLY1305],
//!     retry: RetryPolicy::default(),
//! };
//! let mut device = DeviceSession::new(config, pinned, identity, MemoryDeviceState::new())
//!     .expect("valid configuration");
//!
//! device.start(Instant(0), Trigger::FirstBoot);
//! assert_eq!(device.poll_event(), Some(Event::ScanRequested));
//! let home = ReportedNetwork { ssid: b"home".to_vec(), signal_loss_db: 50, band: 1, channel: 6, security: 1 };
//! device.scan_complete(Instant(10), vec![home], &mut rng);
//!
//! // The hello goes out over the setup network; an answer is due before the timer.
//! let hello = device.poll_transmit().expect("hello");
//! assert_eq!(hello.path, Path::Setup);
//! assert_eq!(device.poll_timeout(), Some(Instant(2010)));
//! # Ok::<(), zerotouch_core::Error>(())
//! ```
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `ed25519` | Ed25519 keys (pinned server keys, identity key) |
//! | `x25519` | the X25519 HPKE suite (P-256 is always in) |
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod config;
mod credentials;
mod error;
mod event;
mod exchange;
mod session;
mod state;

pub use config::{DeviceConfig, JoinFailure, JoinResult, Path, RetryPolicy, Transmit, Trigger};
pub use error::DeviceError;
pub use event::{Event, Failure, Refusal};
pub use session::DeviceSession;
pub use state::{DeviceState, MAX_DROPPED_KEYS, MemoryDeviceState, PersistedState};
