//! The crate's error type.

use thiserror::Error;

/// Every error `zerotouch-provisioner` returns.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy configuration is unusable.
    #[error("invalid policy: {0}")]
    InvalidPolicy(&'static str),
    /// The router's interfaces or rendering options are unusable.
    #[error("invalid router configuration: {0}")]
    InvalidRouterConfig(&'static str),
    /// Not a MAC address (six hex bytes separated by `:` or `-`).
    #[error("not a MAC address")]
    InvalidMac,
    /// An open-network order was refused.
    #[error("order refused: {0}")]
    Order(#[from] OrderError),
}

/// Why an open-network order was refused. The router opens nothing on any of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The bytes are not a well-formed order envelope or body.
    #[error("malformed order: {0}")]
    Malformed(#[from] zerotouch_core::DecodeError),
    /// The envelope is not an order.
    #[error("not an open-network order")]
    WrongMessage,
    /// The signature is not from a trusted order key (forged, wrong role, unknown key).
    #[error("signature rejected: {0}")]
    Signature(#[from] zerotouch_core::SignatureError),
    /// The order names another provisioner.
    #[error("order is addressed to another device")]
    NotForThisDevice,
    /// The order's deadline has passed.
    #[error("order expired")]
    Expired,
    /// The order asks to stay open longer than the policy allows.
    #[error("order validity exceeds the policy's maximum")]
    TooLong,
    /// This order was already carried out.
    #[error("order already used")]
    Replayed,
}
