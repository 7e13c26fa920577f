//! What can go wrong setting up the server or talking to it.

use zerotouch_device::{DeviceError, Failure};

/// An HTTPS binding error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A socket operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// TLS configuration or a handshake failed.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// The HTTP exchange failed (connection closed, malformed response).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// A configured certificate, CA or key is unusable.
    #[error("certificate configuration: {0}")]
    Certificate(String),
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(&'static str),
    /// The peer did not answer in time.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// The server answered with an error status.
    #[error("server answered {status} ({code}): {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The stable error code from the `zerotouch-error` header.
        code: String,
        /// The human-readable message.
        message: String,
    },
    /// A response body is longer than allowed.
    #[error("response body longer than {limit} bytes")]
    ResponseTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A CBOR body did not encode or decode.
    #[error("cbor body: {0}")]
    Cbor(String),
    /// The device session refused its configuration.
    #[error("device session: {0}")]
    Device(#[from] DeviceError),
    /// The device gave up after its session budget.
    #[error("device gave up: {0:?}")]
    GaveUp(Failure),
    /// The device did not finish within the run's time bound.
    #[error("device did not finish within the run's time bound")]
    RunTimeout,
}

impl From<zerotouch_device_tokio::DriveError> for HttpError {
    fn from(e: zerotouch_device_tokio::DriveError) -> Self {
        match e {
            zerotouch_device_tokio::DriveError::GaveUp(f) => HttpError::GaveUp(f),
            zerotouch_device_tokio::DriveError::RunTimeout => HttpError::RunTimeout,
        }
    }
}
