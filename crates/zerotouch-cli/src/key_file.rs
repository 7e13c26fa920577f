//! Signing keys on disk as PKCS#8 PEM (RFC 5958), the form OpenSSL, HSM import tools and
//! KMS key import read, written with mode 0600.

use std::path::Path;

use zeroize::Zeroizing;
use zerotouch_core::{SignatureAlgorithm, SigningKey};

use crate::CliError;
use crate::secret_input::{read_secret_text, write_private_file};

/// The PKCS#8 PEM of `key`.
pub fn signing_key_to_pem(key: &SigningKey) -> Result<Zeroizing<String>, CliError> {
    use p256::pkcs8::EncodePrivateKey as _;
    let secret = key.to_secret_bytes();
    let bad = |_| CliError::BadArgument("the key could not be encoded as PKCS#8".into());
    let pem = match key.algorithm() {
        SignatureAlgorithm::EcdsaP256Sha256 => {
            let sk = p256::SecretKey::from_slice(secret.as_slice())
                .map_err(|_| CliError::BadArgument("not a P-256 scalar".into()))?;
            sk.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).map_err(bad)?
        }
        SignatureAlgorithm::Ed25519 => ed25519_dalek::SigningKey::from_bytes(&secret)
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .map_err(bad)?,
    };
    Ok(Zeroizing::new(pem.as_str().to_owned()))
}

/// Parses a PKCS#8 PEM private key of a supported algorithm.
pub fn signing_key_from_pem(pem: &str, path: &Path) -> Result<SigningKey, CliError> {
    use p256::pkcs8::DecodePrivateKey as _;
    let bad = || CliError::BadKeyFile {
        path: path.to_path_buf(),
    };
    if let Ok(sk) = p256::SecretKey::from_pkcs8_pem(pem) {
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(sk.to_bytes().as_slice());
        return SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &bytes)
            .map_err(|_| bad());
    }
    if let Ok(sk) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        let bytes = Zeroizing::new(sk.to_bytes());
        return SigningKey::from_secret_bytes(SignatureAlgorithm::Ed25519, &bytes)
            .map_err(|_| bad());
    }
    Err(bad())
}

/// Reads a signing key from a PKCS#8 PEM file (or `-` for standard input).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, CliError> {
    let pem = read_secret_text(path)?;
    signing_key_from_pem(&pem, path)
}

/// Writes `key` to a new file with mode 0600.
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), CliError> {
    let pem = signing_key_to_pem(key)?;
    write_private_file(path, pem.as_bytes())
}

/// Parses a signature algorithm name as the command line takes it.
pub fn parse_algorithm(name: &str) -> Result<SignatureAlgorithm, String> {
    match name {
        "p256" | "P-256" | "es256" => Ok(SignatureAlgorithm::EcdsaP256Sha256),
        "ed25519" | "Ed25519" => Ok(SignatureAlgorithm::Ed25519),
        other => Err(format!("{other:?}: expected p256 or ed25519")),
    }
}
