//! What can go wrong running a command.

use std::path::PathBuf;

/// A command's failure: each variant names what was wrong with the input or the data
/// directory, so the message alone tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Standard input could not be read.
    #[error("reading standard input: {0}")]
    Stdin(std::io::Error),
    /// A secret file or standard input was empty.
    #[error("{0}: the secret is empty")]
    EmptySecret(String),
    /// The data directory has not been set up.
    #[error("{0} is not a zerotouch data directory (run `zerotouch init` first)")]
    NotInitialized(PathBuf),
    /// A file would have been overwritten.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// A key file is not a PKCS#8 key of a supported algorithm.
    #[error("{path}: not a PKCS#8 P-256 or Ed25519 private key")]
    BadKeyFile {
        /// The file.
        path: PathBuf,
    },
    /// A PEM file holds no certificate.
    #[error("{0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    /// A key id on the command line is not 64 hex digits.
    #[error("{0:?} is not a key id (64 hex digits)")]
    BadKeyId(String),
    /// No server key has this id.
    #[error("no server key {0}")]
    UnknownKey(String),
    /// The private half of a server key is not in the data directory.
    #[error("the private key of server key {0} is not in {1}")]
    MissingPrivateKey(String, PathBuf),
    /// An argument's value is out of range or malformed.
    #[error("{0}")]
    BadArgument(String),
    /// A barcode payload did not decode.
    #[error("barcode payload: {0}")]
    Barcode(zerotouch_core::BarcodeError),
    /// Key handling in the core failed.
    #[error("key: {0}")]
    Key(#[from] zerotouch_core::KeyError),
    /// A signature operation failed.
    #[error("signature: {0}")]
    Signature(#[from] zerotouch_core::SignatureError),
    /// The factory refused a batch or a manifest.
    #[error("factory: {0}")]
    Factory(#[from] zerotouch_factory::FactoryError),
    /// A secret was malformed.
    #[error("secret: {0}")]
    Secret(#[from] zerotouch_core::SecretError),
    /// The store refused or failed.
    #[error("store: {0}")]
    Store(#[from] zerotouch_store::StoreError),
    /// The store could not be opened (the location, without credentials, and why).
    #[error("could not open {0}: {1}")]
    StoreOpen(String, zerotouch_store::StoreError),
    /// The setup service refused.
    #[error("server: {0}")]
    Server(#[from] zerotouch_server::ServerError),
    /// HTTPS failed.
    #[error("https: {0}")]
    Http(#[from] zerotouch_http::HttpError),
    /// Certificate issuance failed.
    #[error("pki: {0}")]
    Pki(#[from] zerotouch_pki::PkiError),
    /// A simulated device did not finish its flow.
    #[error("device {device}: {reason}")]
    DeviceFailed {
        /// Which device.
        device: String,
        /// What went wrong.
        reason: String,
    },
    /// The DNS server could not start.
    #[error("dns: {0}")]
    Dns(#[from] zerotouch_dns::DnsServerError),
    /// `demo --over dns` found no unbound to run as the device's resolver.
    #[error(
        "unbound is not installed: the DNS demo needs a local recursive resolver \
         (apt-get install unbound); nothing was run"
    )]
    UnboundMissing,
    /// The local resolver could not be started or did not answer.
    #[error("local resolver: {0}")]
    Resolver(String),
    /// The async runtime could not start.
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

impl From<zerotouch_dns::local_resolver::LocalResolverError> for CliError {
    fn from(e: zerotouch_dns::local_resolver::LocalResolverError) -> Self {
        match e {
            zerotouch_dns::local_resolver::LocalResolverError::Missing => CliError::UnboundMissing,
            other => CliError::Resolver(other.to_string()),
        }
    }
}

impl CliError {
    /// A file error for `path`.
    pub fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::File { path, source }
    }
}
