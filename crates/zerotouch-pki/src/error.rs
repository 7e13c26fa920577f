//! What can go wrong making certificates.

/// A certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen refused the parameters or failed to sign.
    #[error("certificate generation: {0}")]
    Generation(#[from] rcgen::Error),
    /// A name is not valid in a certificate (for example a DNS name with a space).
    #[error("invalid name in certificate: {0}")]
    InvalidName(String),
    /// A validity date is out of the range X.509 can express.
    #[error("validity date out of range")]
    InvalidDate,
    /// The system RNG failed while drawing a serial number.
    #[error("system random number generator failed")]
    Random,
    /// The private key PEM or DER could not be read.
    #[error("private key: {0}")]
    PrivateKey(String),
    /// The CA certificate could not be read, is not a CA certificate, or does not certify the
    /// private key it came with.
    #[error("CA certificate: {0}")]
    CaCertificate(String),
    /// A key is of an algorithm zerotouch does not use (only P-256 and Ed25519 are).
    #[error("unsupported key algorithm: {0}")]
    UnsupportedKeyAlgorithm(String),
    /// The certificate signing request is not a well-formed PKCS#10 request (DER or PEM).
    #[error("malformed certificate signing request: {0}")]
    MalformedSigningRequest(String),
    /// The certificate signing request's signature does not verify under the key it names, so
    /// whoever sent it did not prove that they hold that key.
    #[error("certificate signing request signature does not verify")]
    SigningRequestSignature,
}
