//! Signing seams: a [`Signer`] trait for server keys (HSM, cloud KMS, software) and a
//! request/response step for device keys, which may live in a secure element that takes
//! 50-200 ms per signature and must never block the sans-IO state machine.
//!
//! Both sides sign a [`ToBeSigned`]: the COSE `Sig_structure` bytes and their SHA-256 digest.
//! A P-256 secure element or KMS signs the 32-byte digest (ECDSA over SHA-256 of the structure,
//! which is exactly COSE ES256); an Ed25519 signer signs the structure bytes (COSE EdDSA). For
//! device proofs the structure has a fixed size, because its payload is the 32-byte transcript
//! hash.

use crate::{KeyId, PublicKey, Signature, SignatureAlgorithm, SignatureError, SigningKey};
use alloc::vec::Vec;
use core::fmt;

/// The exact input of one signature: COSE `Sig_structure` bytes and their SHA-256 digest.
#[derive(Clone, PartialEq, Eq)]
pub struct ToBeSigned {
    message: Vec<u8>,
    digest: [u8; 32],
}

impl ToBeSigned {
    /// Wraps the bytes to be signed and computes their digest with `provider`.
    pub fn new(message: Vec<u8>, provider: &dyn crate::CryptoProvider) -> Self {
        let digest = provider.sha256(&[&message]);
        ToBeSigned { message, digest }
    }

    /// The bytes an Ed25519 signer signs.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The SHA-256 digest an ECDSA P-256 signer (secure element, KMS) signs as a prehash.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

impl fmt::Debug for ToBeSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToBeSigned({} bytes)", self.message.len())
    }
}

/// A key that signs, wherever it lives. Servers hold their keys behind this trait so an HSM or
/// cloud KMS can stand in for a software key; implementations must be safe to share between
/// threads.
pub trait Signer: Send + Sync {
    /// The public key, so verifiers can be told which key signed.
    fn public_key(&self) -> &PublicKey;

    /// Signs one structure. Implementations sign `tbs.digest()` (ECDSA P-256) or
    /// `tbs.message()` (Ed25519) and return the raw 64-byte signature.
    fn sign(&self, tbs: &ToBeSigned) -> Result<Signature, SignatureError>;

    /// The key id (SHA-256 of the SubjectPublicKeyInfo).
    fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }

    /// The algorithm.
    fn algorithm(&self) -> SignatureAlgorithm {
        self.public_key().algorithm()
    }
}

/// A software key with its public half and key id cached: the default [`Signer`].
#[derive(Clone)]
pub struct SoftwareSigner {
    key: SigningKey,
    public: PublicKey,
    key_id: KeyId,
}

impl SoftwareSigner {
    /// Wraps a software signing key.
    pub fn new(key: SigningKey) -> Self {
        let public = key.public_key();
        let key_id = public.key_id();
        SoftwareSigner {
            key,
            public,
            key_id,
        }
    }

    /// The private key (for writing it to a key file).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.key, f)
    }
}

impl Signer for SoftwareSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, tbs: &ToBeSigned) -> Result<Signature, SignatureError> {
        self.key.sign(tbs)
    }

    fn key_id(&self) -> KeyId {
        self.key_id
    }
}

/// A shared key: one identity key serves both the protocol session and, on devices with
/// mutual TLS, the TLS stack's client authentication.
#[cfg(target_has_atomic = "ptr")]
impl<T: Signer + ?Sized> Signer for alloc::sync::Arc<T> {
    fn public_key(&self) -> &PublicKey {
        (**self).public_key()
    }

    fn sign(&self, tbs: &ToBeSigned) -> Result<Signature, SignatureError> {
        (**self).sign(tbs)
    }

    fn key_id(&self) -> KeyId {
        (**self).key_id()
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        (**self).algorithm()
    }
}

/// A request the device session hands to the firmware: "sign this with your identity key".
/// The firmware passes it to its secure element (or a [`SoftwareSigner`]) and feeds the
/// signature back; the session checks the answer before using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// Which key must sign.
    pub key_id: KeyId,
    /// With which algorithm.
    pub algorithm: SignatureAlgorithm,
    /// What to sign.
    pub tbs: ToBeSigned,
}

impl SignRequest {
    /// Answers the request with a [`Signer`] in one step (software keys, tests).
    pub fn sign_with(&self, signer: &dyn Signer) -> Result<Signature, SignatureError> {
        if signer.key_id() != self.key_id {
            return Err(SignatureError::KeyIdMismatch);
        }
        signer.sign(&self.tbs)
    }

    /// Checks that `signature` answers this request: right algorithm, and it verifies under
    /// `key` (whose id must be the requested one). A faulty or swapped secure element is caught
    /// here rather than by the server.
    pub fn check_response(
        &self,
        key: &PublicKey,
        signature: &Signature,
        provider: &dyn crate::CryptoProvider,
    ) -> Result<(), SignatureError> {
        if signature.algorithm != self.algorithm || key.key_id_with(provider) != self.key_id {
            return Err(SignatureError::ResponseMismatch);
        }
        provider.verify_signature(key, &self.tbs, signature)
    }
}
