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
}
