//! Why the DNS server could not start.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;
use zerotouch_store::StoreError;

/// Errors starting the authoritative DNS server.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DnsServerError {
    /// The UDP socket could not be bound.
    #[error("cannot bind UDP {addr}: {source}")]
    BindUdp {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The TCP listener could not be bound (on the UDP socket's port).
    #[error("cannot bind TCP {addr}: {source}")]
    BindTcp {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The zone does not make a DNS name for the SOA record.
    #[error("the zone does not make an SOA record: {0}")]
    Zone(String),
    /// The cookie secret could not be read from or written to the store.
    #[error("cookie secret: {0}")]
    Store(#[from] StoreError),
    /// The operating system's random number generator failed.
    #[error("system random number generator failed")]
    Random,
}
