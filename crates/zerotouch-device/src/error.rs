//! Errors of [`crate::DeviceSession::new`]: the session itself never fails on outside bytes.

use alloc::string::String;

use zerotouch_core::CipherSuite;

/// Why a session could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The device state could not be loaded (the storage's error, formatted).
    #[error("device state could not be loaded: {0}")]
    State(String),
    /// The configuration offers no suite, or more than a hello carries (8).
    #[error("the configuration must offer 1 to 8 suites")]
    SuiteCount,
    /// The configuration offers a suite this build does not implement.
    #[error("suite {0:?} is not implemented by this build")]
    UnsupportedSuite(CipherSuite),
    /// The configured identity is empty or longer than a hello carries (800 bytes).
    #[error("the identity must be 1 to 800 bytes")]
    IdentityLength,
    /// The hello this configuration would send (identity, suites and every pinned setup key)
    /// is longer than the wire allows: the server would refuse every one.
    #[error("the hello would be {len} bytes, over the {limit}-byte limit")]
    HelloTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The configured identity names another key than the signer's.
    #[error("the configured identity is not the signer's key")]
    IdentityMismatch,
}
