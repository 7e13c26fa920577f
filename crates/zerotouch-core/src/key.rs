//! Public keys, key ids, signatures and software signing keys.
//!
//! A key id is the SHA-256 of the key's DER SubjectPublicKeyInfo (RFC 5280), so it names the
//! algorithm as well as the key: the same 32 bytes can never be read as two different keys.

use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::{KeyError, SignatureError};

/// The signature algorithms zerotouch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignatureAlgorithm {
    /// Ed25519 (RFC 8032), COSE algorithm -8 (EdDSA).
    Ed25519,
    /// ECDSA on P-256 with SHA-256, COSE algorithm -7 (ES256), signature as r || s.
    EcdsaP256Sha256,
}

impl SignatureAlgorithm {
    /// The COSE algorithm identifier (RFC 9053).
    pub fn cose_id(self) -> i64 {
        match self {
            SignatureAlgorithm::Ed25519 => -8,
            SignatureAlgorithm::EcdsaP256Sha256 => -7,
        }
    }

    /// Maps a COSE algorithm identifier back.
    pub fn from_cose_id(id: i64) -> Option<Self> {
        match id {
            -8 => Some(SignatureAlgorithm::Ed25519),
            -7 => Some(SignatureAlgorithm::EcdsaP256Sha256),
            _ => None,
        }
    }
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 section 4): the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point (RFC 5480 section 2):
/// the 65 point bytes follow.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
#[cfg(feature = "x509")]
const OID_ED25519: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");
#[cfg(feature = "x509")]
const OID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
#[cfg(feature = "x509")]
const OID_P256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// A public key in one of the supported algorithms. Constructors validate the encoding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// An Ed25519 public key (32 bytes).
    Ed25519([u8; 32]),
    /// A P-256 public key as an uncompressed SEC1 point (65 bytes, starting 0x04).
    P256([u8; 65]),
}

impl PublicKey {
    /// An Ed25519 key from its 32 bytes. A build without the `ed25519` feature refuses it,
    /// so a P-256-only device never pins a key it could not verify with.
    pub fn ed25519(bytes: [u8; 32]) -> Result<Self, KeyError> {
        #[cfg(feature = "ed25519")]
        {
            ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| KeyError::MalformedPublicKey)?;
            Ok(PublicKey::Ed25519(bytes))
        }
        #[cfg(not(feature = "ed25519"))]
        {
            let _ = bytes;
            Err(KeyError::UnsupportedAlgorithm)
        }
    }

    /// A P-256 key from a SEC1 point, compressed or uncompressed; stored uncompressed.
    pub fn p256_sec1(bytes: &[u8]) -> Result<Self, KeyError> {
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
            .map_err(|_| KeyError::MalformedPublicKey)?;
        let point = vk.to_sec1_point(false);
        let arr: [u8; 65] = point
            .as_bytes()
            .try_into()
            .map_err(|_| KeyError::MalformedPublicKey)?;
        Ok(PublicKey::P256(arr))
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            PublicKey::Ed25519(_) => SignatureAlgorithm::Ed25519,
            PublicKey::P256(_) => SignatureAlgorithm::EcdsaP256Sha256,
        }
    }

    /// The raw key bytes (32 for Ed25519, 65 for P-256).
    pub fn raw_bytes(&self) -> &[u8] {
        match self {
            PublicKey::Ed25519(b) => b,
            PublicKey::P256(b) => b,
        }
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let (prefix, key): (&[u8], &[u8]) = match self {
            PublicKey::Ed25519(b) => (&ED25519_SPKI_PREFIX, b),
            PublicKey::P256(b) => (&P256_SPKI_PREFIX, b),
        };
        let mut out = Vec::with_capacity(prefix.len() + key.len());
        out.extend_from_slice(prefix);
        out.extend_from_slice(key);
        out
    }

    /// Parses a DER SubjectPublicKeyInfo holding an Ed25519 or P-256 key.
    #[cfg(feature = "x509")]
    pub fn from_spki_der(der_bytes: &[u8]) -> Result<Self, KeyError> {
        use der::Decode as _;
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der_bytes)
            .map_err(|_| KeyError::MalformedPublicKey)?;
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or(KeyError::MalformedPublicKey)?;
        let oid = spki.algorithm.oid;
        if oid == OID_ED25519 {
            // RFC 8410: the parameters field must be absent.
            if spki.algorithm.parameters.is_some() {
                return Err(KeyError::MalformedPublicKey);
            }
            let arr: [u8; 32] = key.try_into().map_err(|_| KeyError::MalformedPublicKey)?;
            Self::ed25519(arr)
        } else if oid == OID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .ok_or(KeyError::UnsupportedAlgorithm)?;
            if curve != OID_P256 {
                return Err(KeyError::UnsupportedAlgorithm);
            }
            // Only the uncompressed form (RFC 5480 as used in section 7 of the spec): the key id
            // is the hash of these exact bytes, so a second encoding would be a second id.
            if key.len() != 65 || key.first() != Some(&0x04) {
                return Err(KeyError::MalformedPublicKey);
            }
            Self::p256_sec1(key)
        } else {
            Err(KeyError::UnsupportedAlgorithm)
        }
    }

    /// The key id: SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn key_id(&self) -> KeyId {
        let digest = Sha256::digest(self.to_spki_der());
        KeyId(digest.into())
    }

    /// The key id, hashed by `provider` (so a counting provider sees the hash).
    pub fn key_id_with(&self, provider: &dyn crate::CryptoProvider) -> KeyId {
        KeyId(provider.sha256(&[&self.to_spki_der()]))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({:?}, {:?})", self.algorithm(), self.key_id())
    }
}

/// SHA-256 of a key's DER SubjectPublicKeyInfo.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// Length of a key id in bytes.
    pub const LEN: usize = 32;

    /// Parses 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        b.try_into().ok().map(KeyId)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `prefix` (e.g. a barcode fingerprint) is a prefix of this id.
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.0.starts_with(prefix)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight bytes are enough to tell keys apart in a log line.
        f.write_str("KeyId(")?;
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

/// A signature: 64 bytes for both algorithms (Ed25519 R || S, ECDSA r || s as in COSE).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// Algorithm that produced it.
    pub algorithm: SignatureAlgorithm,
    /// The 64 signature bytes.
    pub bytes: [u8; 64],
}

impl Signature {
    /// Parses signature bytes for an algorithm.
    pub fn from_slice(algorithm: SignatureAlgorithm, b: &[u8]) -> Result<Self, SignatureError> {
        let bytes: [u8; 64] = b.try_into().map_err(|_| SignatureError::WrongLength)?;
        Ok(Signature { algorithm, bytes })
    }

    /// The signature in its one canonical form. ECDSA signatures are malleable: `(r, s)` and
    /// `(r, n - s)` both verify, so a relay can change a request's bytes without the device's
    /// key. Taking the low `s` lets a server recognise the altered copy as the same request.
    /// Ed25519 signatures are returned as they are (the verifier already rejects `S >= L`);
    /// bytes that are no valid P-256 signature are returned unchanged and fail verification.
    pub fn normalized(&self) -> Signature {
        match self.algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 => {
                match p256::ecdsa::Signature::from_slice(&self.bytes) {
                    Ok(sig) => {
                        let mut bytes = [0u8; 64];
                        bytes.copy_from_slice(&sig.normalize_s().to_bytes());
                        Signature {
                            algorithm: self.algorithm,
                            bytes,
                        }
                    }
                    Err(_) => *self,
                }
            }
            SignatureAlgorithm::Ed25519 => *self,
        }
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({:?})", self.algorithm)
    }
}

/// A private signing key held in software (servers without an HSM, devices without a secure
/// element, tests). Zeroized on drop by the underlying crates; `Debug` shows only the key id.
#[derive(Clone)]
pub enum SigningKey {
    /// An Ed25519 key.
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::SigningKey),
    /// A P-256 ECDSA key.
    P256(p256::ecdsa::SigningKey),
}

impl SigningKey {
    /// Generates a fresh key from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(
        algorithm: SignatureAlgorithm,
        rng: &mut R,
    ) -> Result<Self, SignatureError> {
        match algorithm {
            #[cfg(feature = "ed25519")]
            SignatureAlgorithm::Ed25519 => Ok(SigningKey::Ed25519(
                ed25519_dalek::SigningKey::generate(rng),
            )),
            #[cfg(not(feature = "ed25519"))]
            SignatureAlgorithm::Ed25519 => Err(SignatureError::UnsupportedAlgorithm),
            SignatureAlgorithm::EcdsaP256Sha256 => {
                use p256::elliptic_curve::Generate as _;
                Ok(SigningKey::P256(
                    p256::ecdsa::SigningKey::generate_from_rng(rng),
                ))
            }
        }
    }

    /// A key from 32 secret bytes: the Ed25519 seed, or the P-256 scalar (big-endian).
    pub fn from_secret_bytes(
        algorithm: SignatureAlgorithm,
        secret: &[u8; 32],
    ) -> Result<Self, KeyError> {
        match algorithm {
            #[cfg(feature = "ed25519")]
            SignatureAlgorithm::Ed25519 => Ok(SigningKey::Ed25519(
                ed25519_dalek::SigningKey::from_bytes(secret),
            )),
            #[cfg(not(feature = "ed25519"))]
            SignatureAlgorithm::Ed25519 => Err(KeyError::UnsupportedAlgorithm),
            SignatureAlgorithm::EcdsaP256Sha256 => p256::ecdsa::SigningKey::from_slice(secret)
                .map(SigningKey::P256)
                .map_err(|_| KeyError::MalformedPrivateKey),
        }
    }

    /// The 32 secret bytes, for storage in a key file. Wrapped so they are zeroized on drop.
    pub fn to_secret_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        match self {
            #[cfg(feature = "ed25519")]
            SigningKey::Ed25519(k) => zeroize::Zeroizing::new(k.to_bytes()),
            SigningKey::P256(k) => {
                let mut out = zeroize::Zeroizing::new([0u8; 32]);
                let mut bytes = k.to_bytes();
                out.copy_from_slice(&bytes);
                zeroize::Zeroize::zeroize(bytes.as_mut_slice());
                out
            }
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            #[cfg(feature = "ed25519")]
            SigningKey::Ed25519(_) => SignatureAlgorithm::Ed25519,
            SigningKey::P256(_) => SignatureAlgorithm::EcdsaP256Sha256,
        }
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match self {
            #[cfg(feature = "ed25519")]
            SigningKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key().to_bytes()),
            SigningKey::P256(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                let mut out = [0u8; 65];
                out.copy_from_slice(point.as_bytes());
                PublicKey::P256(out)
            }
        }
    }

    /// Signs a to-be-signed structure: Ed25519 over its bytes, ECDSA over its SHA-256 digest
    /// (RFC 6979 deterministic nonces, so the same input gives the same signature).
    pub fn sign(&self, tbs: &crate::ToBeSigned) -> Result<Signature, SignatureError> {
        match self {
            #[cfg(feature = "ed25519")]
            SigningKey::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                let sig = k.sign(tbs.message());
                Ok(Signature {
                    algorithm: SignatureAlgorithm::Ed25519,
                    bytes: sig.to_bytes(),
                })
            }
            SigningKey::P256(k) => {
                use p256::ecdsa::signature::hazmat::PrehashSigner as _;
                let sig: p256::ecdsa::Signature = k
                    .sign_prehash(tbs.digest())
                    .map_err(|_| SignatureError::SignerFailed("ECDSA signing failed"))?;
                let mut bytes = [0u8; 64];
                bytes.copy_from_slice(&sig.to_bytes());
                Ok(Signature {
                    algorithm: SignatureAlgorithm::EcdsaP256Sha256,
                    bytes,
                })
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({:?}, {:?}, <redacted>)",
            self.algorithm(),
            self.public_key().key_id()
        )
    }
}
