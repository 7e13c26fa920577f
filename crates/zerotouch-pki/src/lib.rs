//! # zerotouch-pki
//!
//! The certificates zerotouch's HTTPS binding runs on, made from code: a manufacturer CA that
//! issues device certificates, a registrar CA, a provisioner CA and the server's certificate.
//! Factories, tests and the command line use it; a deployment may equally bring certificates
//! made with `openssl` or an existing CA, since the server only needs DER and PKCS#8.
//!
//! Device certificates are issued for a key the device holds (its secure element exports only
//! the public key) and never expire (`notAfter` 99991231235959Z, RFC 5280 section 4.1.2.5):
//! a device may sit in a warehouse for years and has no trustworthy clock at first boot.
//! Registrar, provisioner and server certificates get a validity period and are generated with
//! their key.
//!
//! A CA is saved and loaded as PEM ([`CertificateAuthority::to_pem`],
//! [`CertificateAuthority::from_pem`], which also takes CAs made with `openssl`), and a device
//! that makes its own key sends a PKCS#10 signing request: [`csr_public_key`] checks its
//! signature and [`CertificateAuthority::issue_device_from_csr`] certifies its key.
//!
//! ```
//! use zerotouch_core::{SignatureAlgorithm, SigningKey};
//! use zerotouch_pki::{CertificateAuthority, Validity};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manufacturer = CertificateAuthority::new("Acme devices", SignatureAlgorithm::EcdsaP256Sha256,
//!     Validity::years_from_now(20))?;
//! let mut rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
//! # use rand_core::SeedableRng;
//! let device_key = SigningKey::generate(SignatureAlgorithm::Ed25519, &mut rng)?;
//! let cert = manufacturer.issue_device(&device_key.public_key(), 7, 1001)?;
//! assert!(!cert.is_empty());
//!
//! let server = manufacturer.issue_server(&["setup.example"], Validity::years_from_now(1))?;
//! assert!(!server.certificate_der().is_empty());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod authority;
mod error;
mod issued;
mod validity;

pub use authority::{CertificateAuthority, ClientRole, csr_public_key};
pub use error::PkiError;
pub use issued::IssuedCertificate;
pub use validity::Validity;
