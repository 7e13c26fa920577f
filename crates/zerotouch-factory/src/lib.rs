//! # zerotouch-factory
//!
//! The factory side of zerotouch: for a batch of N devices it makes the identity keys (or
//! certifies the keys of the devices' own PKCS#10 signing requests), issues the
//! never-expiring device certificates from the manufacturer CA, draws PINs and flow-2 device
//! secrets, makes the box labels (`ZT1/…` barcode payloads) and their QR codes as PNG, and
//! writes the **factory manifest**: the file the server imports to learn the batch.
//!
//! The manifest is a COSE_Sign1 signed by a key in role `FactoryManifest`; each device's
//! secrets (its PIN record, a salted PBKDF2 hash and never the PIN, and its device secret)
//! are sealed with HPKE to the server's import key, so copying the file reveals nothing to
//! guess PINs against. The server opens it with [`open_manifest`] and hands the records to
//! `DeviceStore::import_devices`. The format is in `docs/PROTOCOL.md`, "Factory manifest".
//!
//! ```
//! use rand_core::SeedableRng;
//! use zerotouch_core::{
//!     CipherSuite, Instant, KeyRole, PinnedKey, PinnedKeys, SessionKeyPair, SignatureAlgorithm,
//!     Signer, SigningKey, SoftwareSigner,
//! };
//! use zerotouch_factory::{BatchSpec, FactoryManifest, KeySource, make_batch, open_manifest};
//! use zerotouch_pki::{CertificateAuthority, Validity};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]); // a CSPRNG in production
//! let ca = CertificateAuthority::new("Acme devices", SignatureAlgorithm::EcdsaP256Sha256,
//!     Validity::years_from_now(20))?;
//! let spec = BatchSpec {
//!     device_type: 7,
//!     first_serial: 1001,
//!     count: 2,
//!     product_number: "SMARTPLUG01".into(),
//!     algorithm: SignatureAlgorithm::EcdsaP256Sha256,
//!     pin_digits: Some(6),
//!     device_secrets: true,
//!     pin_iterations: zerotouch_store::MIN_PIN_ITERATIONS, // DEFAULT_PIN_ITERATIONS in production
//! };
//! let batch = make_batch(&spec, KeySource::Generate, &ca, &mut rng)?;
//! let device = &batch.devices[0];
//! assert!(device.label.encode().starts_with("ZT1/"));
//! assert!(device.label.pin.is_none()); // the PIN is on the label inside the box only
//! let _png = device.qr_png()?;
//!
//! // The server's manifest import key and the factory's manifest signing key.
//! let import_key = SessionKeyPair::generate(CipherSuite::X25519_SHA256_CHACHA20POLY1305, &mut rng)?;
//! let factory_key = SoftwareSigner::new(SigningKey::generate(SignatureAlgorithm::Ed25519, &mut rng)?);
//! let manifest = FactoryManifest::build(&batch, Instant(1_700_000_000_000), import_key.suite(),
//!     import_key.public_key(), &factory_key, &mut rng)?;
//!
//! // The server: trusts the factory key for manifests only.
//! let trusted = PinnedKeys::new(vec![PinnedKey::new(KeyRole::FactoryManifest,
//!     factory_key.public_key().clone())]);
//! let opened = open_manifest(&manifest, &trusted, &import_key, Instant(1_700_000_100_000))?;
//! assert_eq!(opened.devices.len(), 2);
//! assert!(opened.devices[0].pin.as_ref().unwrap().verify(device.pin.as_ref().unwrap()));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod batch;
mod error;
mod manifest;
mod pkcs8;
mod qr;

pub use batch::{
    BatchSpec, FactoryBatch, FactoryDevice, KeySource, LABEL_FINGERPRINT_LEN, MAX_BATCH_DEVICES,
    make_batch,
};
pub use error::FactoryError;
pub use manifest::{
    FactoryManifest, MANIFEST_FORMAT, MAX_MANIFEST_DEVICES, MAX_MANIFEST_LEN, ManifestBatch,
    OpenedManifest, SECRETS_INFO, open_manifest,
};
pub use qr::{QR_MODULE_PIXELS, qr_png};
/// PIN hash iteration counts for [`BatchSpec::pin_iterations`], and the records an opened
/// manifest holds.
pub use zerotouch_store::{
    DEFAULT_PIN_ITERATIONS, DeviceIdentity, DeviceRecord, MIN_PIN_ITERATIONS, PinRecord,
};
