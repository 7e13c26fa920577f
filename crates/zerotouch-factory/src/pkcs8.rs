//! Device private keys as PKCS#8, for writing key files a simulated or prototype device loads.
//!
//! The two encodings are fixed apart from the key bytes, so they are written directly:
//! Ed25519 as RFC 8410 `OneAsymmetricKey` version 2 (seed and public key), P-256 as RFC 5208
//! `PrivateKeyInfo` around an RFC 5915 `ECPrivateKey` with its public point. These are the
//! forms `ring`, `openssl` and `rustls` read.

use data_encoding::BASE64;
use zeroize::Zeroizing;
use zerotouch_core::SigningKey;

/// SEQUENCE, version 1, AlgorithmIdentifier id-Ed25519, OCTET STRING { OCTET STRING (32) }.
const ED25519_PREFIX: [u8; 16] = [
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// `[1] IMPLICIT BIT STRING` holding the 32-byte public key.
const ED25519_PUBLIC: [u8; 3] = [0x81, 0x21, 0x00];

/// SEQUENCE, version 0, AlgorithmIdentifier id-ecPublicKey prime256v1, OCTET STRING {
/// ECPrivateKey SEQUENCE, version 1, OCTET STRING (32) }.
const P256_PREFIX: [u8; 36] = [
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20,
];
/// `[1] EXPLICIT BIT STRING` holding the 65-byte uncompressed public point.
const P256_PUBLIC: [u8; 5] = [0xa1, 0x44, 0x03, 0x42, 0x00];

/// `key` as PKCS#8 DER, zeroized on drop.
pub(crate) fn pkcs8_der(key: &SigningKey) -> Zeroizing<Vec<u8>> {
    let secret = key.to_secret_bytes();
    let public = key.public_key();
    let (prefix, public_prefix): (&[u8], &[u8]) = match key.algorithm() {
        zerotouch_core::SignatureAlgorithm::Ed25519 => (&ED25519_PREFIX, &ED25519_PUBLIC),
        zerotouch_core::SignatureAlgorithm::EcdsaP256Sha256 => (&P256_PREFIX, &P256_PUBLIC),
    };
    let mut der = Zeroizing::new(Vec::with_capacity(
        prefix.len() + 32 + public_prefix.len() + public.raw_bytes().len(),
    ));
    der.extend_from_slice(prefix);
    der.extend_from_slice(secret.as_slice());
    der.extend_from_slice(public_prefix);
    der.extend_from_slice(public.raw_bytes());
    der
}

/// `key` as PEM (`PRIVATE KEY`, 64-character lines), zeroized on drop. Written here rather
/// than with a PEM library so that no intermediate copy of the key is left unzeroized.
pub(crate) fn pkcs8_pem(key: &SigningKey) -> Zeroizing<String> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----\n";
    const END: &str = "-----END PRIVATE KEY-----\n";
    let der = pkcs8_der(key);
    let mut b64 = Zeroizing::new(vec![0u8; BASE64.encode_len(der.len())]);
    BASE64.encode_mut(&der, &mut b64);
    let lines = b64.len().div_ceil(64);
    // Exact capacity: the string never reallocates, so no copy is left behind.
    let mut out = Zeroizing::new(String::with_capacity(
        BEGIN.len() + b64.len() + lines + END.len(),
    ));
    out.push_str(BEGIN);
    for line in b64.chunks(64) {
        out.extend(line.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out.push_str(END);
    out
}
