//! The crypto provider seam, as rustls's `CryptoProvider`: every hash, MAC, signature,
//! signature verification and HPKE operation of a session goes through one trait object, so
//! - a server can plug in a faster backend (e.g. `ring` for P-256) without touching protocol code,
//! - the benchmark counts exactly the operations a session performs ([`CountingProvider`]),
//! - the fuzzer can get past signatures (`InsecureFuzzingProvider`, feature `insecure-fuzzing`,
//!   never in a product build).
//!
//! Private keys are not here: they sit behind [`crate::Signer`] and [`crate::SignRequest`]. A
//! signature made with a [`crate::Signer`] still passes through [`CryptoProvider::sign`], which
//! by default just calls the signer, so a wrapper sees (and counts) it.
//!
//! The HPKE methods have default implementations (the `hpke` crate through
//! [`crate::SessionKeyPair`] and [`crate::seal_to`]): a provider that only replaces hashes and
//! verification keeps them.

use alloc::vec::Vec;

use hmac::{KeyInit, Mac};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

#[cfg(feature = "std")]
use crate::SignatureAlgorithm;
use crate::{
    CipherSuite, PublicKey, SealError, Sealed, SessionKeyPair, Signature, SignatureError, Signer,
    ToBeSigned,
};

/// The cryptographic operations the protocol needs.
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

    /// Signs `tbs` with `signer` (the key stays behind the signer: an HSM, a KMS, a secure
    /// element or a [`crate::SoftwareSigner`]). The default calls `signer.sign(tbs)`; a
    /// wrapper such as [`CountingProvider`] observes the signature on its way.
    fn sign(&self, signer: &dyn Signer, tbs: &ToBeSigned) -> Result<Signature, SignatureError> {
        signer.sign(tbs)
    }

    /// A fresh per-session HPKE key pair for `suite`: one KEM key generation.
    fn hpke_generate(
        &self,
        suite: CipherSuite,
        rng: &mut dyn CryptoRng,
    ) -> Result<SessionKeyPair, SealError> {
        SessionKeyPair::generate_dyn(suite, rng)
    }

    /// The HPKE key pair of `private` (a server keeps its ephemeral private key in the session
    /// state between two requests): one scalar multiplication, for the public key.
    fn hpke_restore(
        &self,
        suite: CipherSuite,
        private: &[u8],
    ) -> Result<SessionKeyPair, SealError> {
        SessionKeyPair::from_private_bytes(suite, private)
    }

    /// Seals `messages` to `recipient` in one HPKE base-mode context ([`crate::seal_to`]): one
    /// encapsulation (an ephemeral key and a key agreement) and one AEAD seal per message.
    fn hpke_seal(
        &self,
        suite: CipherSuite,
        recipient: &[u8],
        info: &[u8],
        aad: &[u8],
        messages: &[&[u8]],
        rng: &mut dyn CryptoRng,
    ) -> Result<Sealed, SealError> {
        crate::seal::seal_to_dyn(suite, recipient, info, aad, messages, rng)
    }

    /// Opens `ciphertexts` sealed to `key` in one context ([`SessionKeyPair::open`]): one
    /// decapsulation (a key agreement) and one AEAD open per ciphertext.
    fn hpke_open(
        &self,
        key: &SessionKeyPair,
        encapsulated_key: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertexts: &[&[u8]],
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, SealError> {
        key.open(encapsulated_key, info, aad, ciphertexts)
    }
}

/// A shared provider (a server and its benchmark hold the same counting provider).
#[cfg(target_has_atomic = "ptr")]
impl<T: CryptoProvider + ?Sized> CryptoProvider for alloc::sync::Arc<T> {
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        (**self).sha256(parts)
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        (**self).hmac_sha256(key, parts)
    }

    fn verify_signature(
        &self,
        key: &PublicKey,
        tbs: &ToBeSigned,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        (**self).verify_signature(key, tbs, signature)
    }

    fn sign(&self, signer: &dyn Signer, tbs: &ToBeSigned) -> Result<Signature, SignatureError> {
        (**self).sign(signer, tbs)
    }

    fn hpke_generate(
        &self,
        suite: CipherSuite,
        rng: &mut dyn CryptoRng,
    ) -> Result<SessionKeyPair, SealError> {
        (**self).hpke_generate(suite, rng)
    }

    fn hpke_restore(
        &self,
        suite: CipherSuite,
        private: &[u8],
    ) -> Result<SessionKeyPair, SealError> {
        (**self).hpke_restore(suite, private)
    }

    fn hpke_seal(
        &self,
        suite: CipherSuite,
        recipient: &[u8],
        info: &[u8],
        aad: &[u8],
        messages: &[&[u8]],
        rng: &mut dyn CryptoRng,
    ) -> Result<Sealed, SealError> {
        (**self).hpke_seal(suite, recipient, info, aad, messages, rng)
    }

    fn hpke_open(
        &self,
        key: &SessionKeyPair,
        encapsulated_key: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertexts: &[&[u8]],
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, SealError> {
        (**self).hpke_open(key, encapsulated_key, info, aad, ciphertexts)
    }
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
    /// SHA-256 computations (transcript steps, key ids, Sig_structure and request digests).
    pub sha256: u64,
    /// Bytes hashed by those SHA-256 computations, in all.
    pub sha256_bytes: u64,
    /// HMAC-SHA-256 computations.
    pub hmac_sha256: u64,
    /// Ed25519 signatures made.
    pub sign_ed25519: u64,
    /// ECDSA P-256 signatures made.
    pub sign_p256: u64,
    /// Ed25519 verifications.
    pub verify_ed25519: u64,
    /// ECDSA P-256 verifications.
    pub verify_p256: u64,
    /// HPKE key pairs generated.
    pub hpke_generate: u64,
    /// HPKE key pairs restored from their private key.
    pub hpke_restore: u64,
    /// HPKE sealing contexts set up (one encapsulation each).
    pub hpke_seal: u64,
    /// Messages sealed in those contexts (one AEAD seal each).
    pub hpke_seal_messages: u64,
    /// Bytes sealed, in all.
    pub hpke_seal_bytes: u64,
    /// HPKE opening contexts set up (one decapsulation each).
    pub hpke_open: u64,
    /// Ciphertexts opened in those contexts (one AEAD open each).
    pub hpke_open_messages: u64,
    /// Bytes of ciphertext opened, in all.
    pub hpke_open_bytes: u64,
}

#[cfg(feature = "std")]
impl OperationCounts {
    /// The operations, each with the name `docs/PROTOCOL.md` gives it and its count (sizes,
    /// such as `sha256_bytes`, are not operations and are left out).
    pub fn operations(&self) -> [(&'static str, u64); 10] {
        [
            ("SHA-256", self.sha256),
            ("HMAC-SHA-256", self.hmac_sha256),
            ("Ed25519 sign", self.sign_ed25519),
            ("ECDSA P-256 sign", self.sign_p256),
            ("Ed25519 verify", self.verify_ed25519),
            ("ECDSA P-256 verify", self.verify_p256),
            ("HPKE key generation", self.hpke_generate),
            ("HPKE key restore", self.hpke_restore),
            ("HPKE seal (encapsulation)", self.hpke_seal),
            ("HPKE open (decapsulation)", self.hpke_open),
        ]
    }

    /// The operations performed between `earlier` and `self`.
    pub fn since(&self, earlier: &OperationCounts) -> OperationCounts {
        OperationCounts {
            sha256: self.sha256 - earlier.sha256,
            sha256_bytes: self.sha256_bytes - earlier.sha256_bytes,
            hmac_sha256: self.hmac_sha256 - earlier.hmac_sha256,
            sign_ed25519: self.sign_ed25519 - earlier.sign_ed25519,
            sign_p256: self.sign_p256 - earlier.sign_p256,
            verify_ed25519: self.verify_ed25519 - earlier.verify_ed25519,
            verify_p256: self.verify_p256 - earlier.verify_p256,
            hpke_generate: self.hpke_generate - earlier.hpke_generate,
            hpke_restore: self.hpke_restore - earlier.hpke_restore,
            hpke_seal: self.hpke_seal - earlier.hpke_seal,
            hpke_seal_messages: self.hpke_seal_messages - earlier.hpke_seal_messages,
            hpke_seal_bytes: self.hpke_seal_bytes - earlier.hpke_seal_bytes,
            hpke_open: self.hpke_open - earlier.hpke_open,
            hpke_open_messages: self.hpke_open_messages - earlier.hpke_open_messages,
            hpke_open_bytes: self.hpke_open_bytes - earlier.hpke_open_bytes,
        }
    }
}

/// One counter per field of [`OperationCounts`].
#[cfg(feature = "std")]
#[derive(Debug, Default)]
struct Counters {
    sha256: AtomicU64,
    sha256_bytes: AtomicU64,
    hmac_sha256: AtomicU64,
    sign_ed25519: AtomicU64,
    sign_p256: AtomicU64,
    verify_ed25519: AtomicU64,
    verify_p256: AtomicU64,
    hpke_generate: AtomicU64,
    hpke_restore: AtomicU64,
    hpke_seal: AtomicU64,
    hpke_seal_messages: AtomicU64,
    hpke_seal_bytes: AtomicU64,
    hpke_open: AtomicU64,
    hpke_open_messages: AtomicU64,
    hpke_open_bytes: AtomicU64,
}

#[cfg(feature = "std")]
use core::sync::atomic::AtomicU64;

#[cfg(feature = "std")]
fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(
        u64::try_from(n).unwrap_or(u64::MAX),
        core::sync::atomic::Ordering::Relaxed,
    );
}

#[cfg(feature = "std")]
fn total_len(parts: &[&[u8]]) -> usize {
    parts.iter().map(|p| p.len()).sum()
}

/// Wraps a provider and counts every operation, signatures included (they pass through
/// [`CryptoProvider::sign`]): the benchmark's list of what one session costs, and the table
/// in `docs/PROTOCOL.md`, come from these counts, so they cannot drift from the code.
///
/// 64-bit atomic counters are missing on many microcontrollers, so this lives behind `std`.
#[cfg(feature = "std")]
#[derive(Debug, Default)]
pub struct CountingProvider<P> {
    inner: P,
    counters: Counters,
}

#[cfg(feature = "std")]
impl<P: CryptoProvider> CountingProvider<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        CountingProvider {
            inner,
            counters: Counters::default(),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> OperationCounts {
        use core::sync::atomic::Ordering::Relaxed;
        let c = &self.counters;
        OperationCounts {
            sha256: c.sha256.load(Relaxed),
            sha256_bytes: c.sha256_bytes.load(Relaxed),
            hmac_sha256: c.hmac_sha256.load(Relaxed),
            sign_ed25519: c.sign_ed25519.load(Relaxed),
            sign_p256: c.sign_p256.load(Relaxed),
            verify_ed25519: c.verify_ed25519.load(Relaxed),
            verify_p256: c.verify_p256.load(Relaxed),
            hpke_generate: c.hpke_generate.load(Relaxed),
            hpke_restore: c.hpke_restore.load(Relaxed),
            hpke_seal: c.hpke_seal.load(Relaxed),
            hpke_seal_messages: c.hpke_seal_messages.load(Relaxed),
            hpke_seal_bytes: c.hpke_seal_bytes.load(Relaxed),
            hpke_open: c.hpke_open.load(Relaxed),
            hpke_open_messages: c.hpke_open_messages.load(Relaxed),
            hpke_open_bytes: c.hpke_open_bytes.load(Relaxed),
        }
    }
}

#[cfg(feature = "std")]
impl<P: CryptoProvider> CryptoProvider for CountingProvider<P> {
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        add(&self.counters.sha256, 1);
        add(&self.counters.sha256_bytes, total_len(parts));
        self.inner.sha256(parts)
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        add(&self.counters.hmac_sha256, 1);
        self.inner.hmac_sha256(key, parts)
    }

    fn verify_signature(
        &self,
        key: &PublicKey,
        tbs: &ToBeSigned,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        let counter = match key.algorithm() {
            SignatureAlgorithm::Ed25519 => &self.counters.verify_ed25519,
            SignatureAlgorithm::EcdsaP256Sha256 => &self.counters.verify_p256,
        };
        add(counter, 1);
        self.inner.verify_signature(key, tbs, signature)
    }

    fn sign(&self, signer: &dyn Signer, tbs: &ToBeSigned) -> Result<Signature, SignatureError> {
        let counter = match signer.algorithm() {
            SignatureAlgorithm::Ed25519 => &self.counters.sign_ed25519,
            SignatureAlgorithm::EcdsaP256Sha256 => &self.counters.sign_p256,
        };
        add(counter, 1);
        self.inner.sign(signer, tbs)
    }

    fn hpke_generate(
        &self,
        suite: CipherSuite,
        rng: &mut dyn CryptoRng,
    ) -> Result<SessionKeyPair, SealError> {
        add(&self.counters.hpke_generate, 1);
        self.inner.hpke_generate(suite, rng)
    }

    fn hpke_restore(
        &self,
        suite: CipherSuite,
        private: &[u8],
    ) -> Result<SessionKeyPair, SealError> {
        add(&self.counters.hpke_restore, 1);
        self.inner.hpke_restore(suite, private)
    }

    fn hpke_seal(
        &self,
        suite: CipherSuite,
        recipient: &[u8],
        info: &[u8],
        aad: &[u8],
        messages: &[&[u8]],
        rng: &mut dyn CryptoRng,
    ) -> Result<Sealed, SealError> {
        add(&self.counters.hpke_seal, 1);
        add(&self.counters.hpke_seal_messages, messages.len());
        add(&self.counters.hpke_seal_bytes, total_len(messages));
        self.inner
            .hpke_seal(suite, recipient, info, aad, messages, rng)
    }

    fn hpke_open(
        &self,
        key: &SessionKeyPair,
        encapsulated_key: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertexts: &[&[u8]],
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, SealError> {
        add(&self.counters.hpke_open, 1);
        add(&self.counters.hpke_open_messages, ciphertexts.len());
        add(&self.counters.hpke_open_bytes, total_len(ciphertexts));
        self.inner
            .hpke_open(key, encapsulated_key, info, aad, ciphertexts)
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
