//! Sealing secrets to a per-session key with HPKE (RFC 9180, base mode).
//!
//! Flow 1 seals in both directions: the device seals its PIN proof and network report to the
//! server's signed ephemeral key, and the server seals the credentials to the device's
//! per-session key. Both use the negotiated [`CipherSuite`]: DHKEM(X25519 or P-256,
//! HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305. Several messages sealed in one context are
//! opened in the same order (the AEAD nonce is the HPKE sequence number), so a relay can
//! neither drop nor reorder one without the rest failing to open.
//!
//! The `hpke` crate (pinned to an exact version) does the work; the suites used are checked
//! against RFC 9180's test vectors (appendices A.2 and A.5) in `tests/seal.rs`.

use alloc::vec::Vec;
use core::fmt;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::{CipherSuite, SealError};

type P256Kem = hpke::kem::DhP256HkdfSha256;
#[cfg(feature = "x25519")]
type X25519Kem = hpke::kem::X25519HkdfSha256;

/// A per-session HPKE key pair. `Debug` shows the suite and public key only.
pub struct SessionKeyPair {
    suite: CipherSuite,
    private: SessionPrivateKey,
    public: Vec<u8>,
}

enum SessionPrivateKey {
    P256(<P256Kem as Kem>::PrivateKey),
    #[cfg(feature = "x25519")]
    X25519(<X25519Kem as Kem>::PrivateKey),
}

impl fmt::Debug for SessionKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeyPair")
            .field("suite", &self.suite)
            .field("public_len", &self.public.len())
            .finish_non_exhaustive()
    }
}

/// The suite's KEM, or an error if this build does not implement it.
fn kem_of(suite: CipherSuite) -> Result<KemId, SealError> {
    match suite {
        CipherSuite::P256_SHA256_CHACHA20POLY1305 => Ok(KemId::P256),
        #[cfg(feature = "x25519")]
        CipherSuite::X25519_SHA256_CHACHA20POLY1305 => Ok(KemId::X25519),
        _ => Err(SealError::UnsupportedSuite),
    }
}

#[derive(Clone, Copy)]
enum KemId {
    P256,
    #[cfg(feature = "x25519")]
    X25519,
}

impl SessionKeyPair {
    /// Whether this build implements `suite` (X25519 needs the `x25519` feature). No key is
    /// made.
    pub fn implements(suite: CipherSuite) -> bool {
        kem_of(suite).is_ok()
    }

    /// A fresh key pair for `suite`.
    pub fn generate<R: CryptoRng>(suite: CipherSuite, rng: &mut R) -> Result<Self, SealError> {
        Self::generate_dyn(suite, rng)
    }

    /// One instantiation of the KEM's key generation for every RNG type (flash on devices).
    pub(crate) fn generate_dyn(
        suite: CipherSuite,
        mut rng: &mut dyn CryptoRng,
    ) -> Result<Self, SealError> {
        let rng = &mut rng;
        let private = match kem_of(suite)? {
            KemId::P256 => SessionPrivateKey::P256(P256Kem::gen_keypair_with_rng(rng).0),
            #[cfg(feature = "x25519")]
            KemId::X25519 => SessionPrivateKey::X25519(X25519Kem::gen_keypair_with_rng(rng).0),
        };
        Ok(Self::with_private(suite, private))
    }

    /// The key pair RFC 9180's `DeriveKeyPair(ikm)` gives (test vectors, deterministic tests).
    pub fn derive(suite: CipherSuite, ikm: &[u8]) -> Result<Self, SealError> {
        let private = match kem_of(suite)? {
            KemId::P256 => SessionPrivateKey::P256(P256Kem::derive_keypair(ikm).0),
            #[cfg(feature = "x25519")]
            KemId::X25519 => SessionPrivateKey::X25519(X25519Kem::derive_keypair(ikm).0),
        };
        Ok(Self::with_private(suite, private))
    }

    /// Restores a key pair from its private key bytes (a server keeps its ephemeral key in the
    /// session state, sealed at rest, between two requests).
    pub fn from_private_bytes(suite: CipherSuite, bytes: &[u8]) -> Result<Self, SealError> {
        fn parse<K: Kem>(bytes: &[u8]) -> Result<K::PrivateKey, SealError> {
            K::PrivateKey::from_bytes(bytes).map_err(|_| SealError::InvalidPrivateKey)
        }
        let private = match kem_of(suite)? {
            KemId::P256 => SessionPrivateKey::P256(parse::<P256Kem>(bytes)?),
            #[cfg(feature = "x25519")]
            KemId::X25519 => SessionPrivateKey::X25519(parse::<X25519Kem>(bytes)?),
        };
        Ok(Self::with_private(suite, private))
    }

    /// The pair of `private`: its public key is computed from it, so no constructor can pair
    /// a private key with another public key.
    fn with_private(suite: CipherSuite, private: SessionPrivateKey) -> Self {
        let public = match &private {
            SessionPrivateKey::P256(sk) => P256Kem::sk_to_pk(sk).to_bytes().to_vec(),
            #[cfg(feature = "x25519")]
            SessionPrivateKey::X25519(sk) => X25519Kem::sk_to_pk(sk).to_bytes().to_vec(),
        };
        SessionKeyPair {
            suite,
            private,
            public,
        }
    }

    /// The private key's bytes, to keep in sealed session state. Zeroized on drop.
    pub fn private_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match &self.private {
            SessionPrivateKey::P256(sk) => sk.to_bytes().to_vec(),
            #[cfg(feature = "x25519")]
            SessionPrivateKey::X25519(sk) => sk.to_bytes().to_vec(),
        })
    }

    /// The suite.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The public key, in the KEM's serialisation (65-byte uncompressed point for P-256, 32
    /// bytes for X25519): what goes on the wire and into the transcript.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// Opens messages sealed to this key in one context, in the order they were sealed.
    pub fn open(
        &self,
        encapsulated_key: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertexts: &[&[u8]],
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, SealError> {
        match &self.private {
            SessionPrivateKey::P256(sk) => {
                open_with::<P256Kem>(sk, encapsulated_key, info, aad, ciphertexts)
            }
            #[cfg(feature = "x25519")]
            SessionPrivateKey::X25519(sk) => {
                open_with::<X25519Kem>(sk, encapsulated_key, info, aad, ciphertexts)
            }
        }
    }

    /// The RFC 9180 exporter secret of the context `encapsulated_key` opens (test vectors).
    pub fn export(
        &self,
        encapsulated_key: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        out: &mut [u8],
    ) -> Result<(), SealError> {
        fn export_with<K: Kem>(
            sk: &K::PrivateKey,
            enc: &[u8],
            info: &[u8],
            ctx: &[u8],
            out: &mut [u8],
        ) -> Result<(), SealError> {
            let enc = K::EncappedKey::from_bytes(enc).map_err(|_| SealError::InvalidPublicKey)?;
            let ctx_r = hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, K>(
                &OpModeR::Base,
                sk,
                &enc,
                info,
            )
            .map_err(|_| SealError::OpenFailed)?;
            ctx_r.export(ctx, out).map_err(|_| SealError::OpenFailed)
        }
        match &self.private {
            SessionPrivateKey::P256(sk) => {
                export_with::<P256Kem>(sk, encapsulated_key, info, exporter_context, out)
            }
            #[cfg(feature = "x25519")]
            SessionPrivateKey::X25519(sk) => {
                export_with::<X25519Kem>(sk, encapsulated_key, info, exporter_context, out)
            }
        }
    }
}

fn open_with<K: Kem>(
    sk: &K::PrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertexts: &[&[u8]],
) -> Result<Vec<Zeroizing<Vec<u8>>>, SealError> {
    let enc = K::EncappedKey::from_bytes(enc).map_err(|_| SealError::InvalidPublicKey)?;
    let mut ctx =
        hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, K>(&OpModeR::Base, sk, &enc, info)
            .map_err(|_| SealError::OpenFailed)?;
    ciphertexts
        .iter()
        .map(|ct| {
            ctx.open(ct, aad)
                .map(Zeroizing::new)
                .map_err(|_| SealError::OpenFailed)
        })
        .collect()
}

/// Messages sealed in one HPKE context: the encapsulated key and one ciphertext per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The encapsulated key (the sender's ephemeral public key).
    pub encapsulated_key: Vec<u8>,
    /// The ciphertexts, in order.
    pub ciphertexts: Vec<Vec<u8>>,
}

/// Seals `messages` to `recipient` (a public key of `suite`) in one context, in order.
pub fn seal_to<R: CryptoRng>(
    suite: CipherSuite,
    recipient: &[u8],
    info: &[u8],
    aad: &[u8],
    messages: &[&[u8]],
    rng: &mut R,
) -> Result<Sealed, SealError> {
    seal_to_dyn(suite, recipient, info, aad, messages, rng)
}

/// One instantiation of the HPKE sender for every RNG type (flash on devices).
pub(crate) fn seal_to_dyn(
    suite: CipherSuite,
    recipient: &[u8],
    info: &[u8],
    aad: &[u8],
    messages: &[&[u8]],
    mut rng: &mut dyn CryptoRng,
) -> Result<Sealed, SealError> {
    type R<'a> = &'a mut dyn CryptoRng;
    let rng = &mut rng;
    fn seal_with<K: Kem, R: CryptoRng>(
        recipient: &[u8],
        info: &[u8],
        aad: &[u8],
        messages: &[&[u8]],
        rng: &mut R,
    ) -> Result<Sealed, SealError> {
        let pk = K::PublicKey::from_bytes(recipient).map_err(|_| SealError::InvalidPublicKey)?;
        let (enc, mut ctx) = hpke::setup_sender_with_rng::<ChaCha20Poly1305, HkdfSha256, K>(
            &OpModeS::Base,
            &pk,
            info,
            rng,
        )
        .map_err(|_| SealError::InvalidPublicKey)?;
        let ciphertexts = messages
            .iter()
            .map(|m| ctx.seal(m, aad).map_err(|_| SealError::SealFailed))
            .collect::<Result<_, _>>()?;
        Ok(Sealed {
            encapsulated_key: enc.to_bytes().to_vec(),
            ciphertexts,
        })
    }
    match kem_of(suite)? {
        KemId::P256 => seal_with::<P256Kem, R<'_>>(recipient, info, aad, messages, rng),
        #[cfg(feature = "x25519")]
        KemId::X25519 => seal_with::<X25519Kem, R<'_>>(recipient, info, aad, messages, rng),
    }
}
