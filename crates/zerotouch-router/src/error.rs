//! The crate's error type.

use std::path::PathBuf;

/// Every error `zerotouch-router` returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// No `nft` program was found.
    #[error("nft not found on PATH or in /usr/sbin, /sbin (Debian: apt-get install nftables)")]
    NftMissing,
    /// `nft` refused a script; nothing of it was applied (a script is one transaction).
    #[error("nft refused the script ({status}): {stderr}")]
    NftRefused {
        /// Its exit status.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// A program could not be run.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy or the interfaces were refused.
    #[error(transparent)]
    Provisioner(#[from] zerotouch_provisioner::Error),
}
