//! The crypto provider seam, as rustls's `CryptoProvider`: every hash, MAC and signature
//! verification in the protocol goes through one trait object, so
//! - a server can plug in a faster backend (e.g. `ring` for P-256) without touching protocol code,
//! - the benchmark counts exactly the operations a session performs ([`CountingProvider`]),
//! - the fuzzer can get past signatures (`InsecureFuzzingProvider`, feature `insecure-fuzzing`,
//!   never in a product build).
//!
//! Signing is not here: private keys sit behind [`crate::Signer`] and [`crate::SignRequest`].

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

#[cfg(feature = "std")]
use crate::SignatureAlgorithm;
use crate::{PublicKey, Signature, SignatureError, ToBeSigned};

/// The cryptographic operations the protocol needs besides signing.
pub trait CryptoProvider: Send + Sync {
    /// SHA-256 over the concatenation of `parts`.
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32];

    /// HMAC-SHA-256 (RFC 2104) under `key` over the concatenation of `parts`.
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32];

    /// Verifies `signature` over `tbs` under `key`: Ed25519 over the message (strict RFC 8032
    /// verification), ECDSA P-256 over the SHA-256 digest.
    fn verify_signature(
        &self,
        key: &PublicKey,
        tbs: &ToBeSigned,
        signature: &Signature,
    ) -> Result<(), SignatureError>;
}

/// The default provider: RustCrypto's `sha2`, `hmac`, `p256` and dalek's `ed25519-dalek`, all
/// `no_std`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCryptoProvider;

impl CryptoProvider for RustCryptoProvider {
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length (RFC 2104 hashes long keys), so this cannot fail.
        let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
            return [0u8; 32];
        };
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    fn verify_signature(
        &self,
        key: &PublicKey,
        tbs: &ToBeSigned,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        if signature.algorithm != key.algorithm() {
            return Err(SignatureError::AlgorithmMismatch);
        }
        match key {
            #[cfg(feature = "ed25519")]
            PublicKey::Ed25519(pk) => {
                let vk = ed25519_dalek::VerifyingKey::from_bytes(pk)
                    .map_err(|_| SignatureError::Invalid)?;
                let sig = ed25519_dalek::Signature::from_bytes(&signature.bytes);
                // Strict verification rejects small-order keys and non-canonical encodings,
                // so a signature has exactly one accepted form.
                vk.verify_strict(tbs.message(), &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            #[cfg(not(feature = "ed25519"))]
            PublicKey::Ed25519(_) => Err(SignatureError::UnsupportedAlgorithm),
            PublicKey::P256(pk) => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(pk)
                    .map_err(|_| SignatureError::Invalid)?;
                let sig = p256::ecdsa::Signature::from_slice(&signature.bytes)
                    .map_err(|_| SignatureError::Invalid)?;
                vk.verify_prehash(tbs.digest(), &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
        }
    }
}

/// How many of each operation a [`CountingProvider`] has performed.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationCounts {
    /// SHA-256 computations.
    pub sha256: u64,
    /// HMAC-SHA-256 computations.
    pub hmac_sha256: u64,
    /// Ed25519 verifications.
    pub verify_ed25519: u64,
    /// ECDSA P-256 verifications.
    pub verify_p256: u64,
}

/// Wraps a provider and counts every operation: the benchmark's list of what one session
/// costs comes from these counts, so it cannot drift from the code.
///
/// 64-bit atomic counters are missing on many microcontrollers, so this lives behind `std`.
#[cfg(feature = "std")]
#[derive(Debug, Default)]
pub struct CountingProvider<P> {
    inner: P,
    sha256: core::sync::atomic::AtomicU64,
    hmac_sha256: core::sync::atomic::AtomicU64,
    verify_ed25519: core::sync::atomic::AtomicU64,
    verify_p256: core::sync::atomic::AtomicU64,
}

#[cfg(feature = "std")]
impl<P: CryptoProvider> CountingProvider<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        CountingProvider {
            inner,
            sha256: Default::default(),
            hmac_sha256: Default::default(),
            verify_ed25519: Default::default(),
            verify_p256: Default::default(),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> OperationCounts {
        use core::sync::atomic::Ordering::Relaxed;
        OperationCounts {
            sha256: self.sha256.load(Relaxed),
            hmac_sha256: self.hmac_sha256.load(Relaxed),
            verify_ed25519: self.verify_ed25519.load(Relaxed),
            verify_p256: self.verify_p256.load(Relaxed),
        }
    }
}

#[cfg(feature = "std")]
impl<P: CryptoProvider> CryptoProvider for CountingProvider<P> {
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.sha256
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        self.inner.sha256(parts)
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        self.hmac_sha256
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        self.inner.hmac_sha256(key, parts)
    }

    fn verify_signature(
        &self,
        key: &PublicKey,
        tbs: &ToBeSigned,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        let counter = match key.algorithm() {
            SignatureAlgorithm::Ed25519 => &self.verify_ed25519,
            SignatureAlgorithm::EcdsaP256Sha256 => &self.verify_p256,
        };
        counter.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        self.inner.verify_signature(key, tbs, signature)
    }
}

/// A provider that accepts every signature. Only for fuzzing, so the fuzzer can reach the code
/// behind signature checks; the feature `insecure-fuzzing` must never be on in a product.
#[cfg(feature = "insecure-fuzzing")]
#[derive(Debug, Clone, Copy, Default)]
pub struct InsecureFuzzingProvider;

#[cfg(feature = "insecure-fuzzing")]
impl CryptoProvider for InsecureFuzzingProvider {
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        RustCryptoProvider.sha256(parts)
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        RustCryptoProvider.hmac_sha256(key, parts)
    }

    fn verify_signature(
        &self,
        key: &PublicKey,
        _tbs: &ToBeSigned,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        if signature.algorithm == key.algorithm() {
            Ok(())
        } else {
            Err(SignatureError::AlgorithmMismatch)
        }
    }
}
