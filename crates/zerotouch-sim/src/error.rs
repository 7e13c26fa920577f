//! What can go wrong setting up a simulation (never the protocol's refusals: those are what
//! a simulation observes).

use zerotouch_device::DeviceError;
use zerotouch_server::ServerError;
use zerotouch_store::StoreError;

/// Why a simulation could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The store refused a record.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The service refused a registration.
    #[error("server: {0}")]
    Server(#[from] ServerError),
    /// The device session refused its configuration.
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    /// A record or key was invalid.
    #[error("core: {0}")]
    Core(#[from] zerotouch_core::Error),
    /// A server key could not join the key ring.
    #[error("key: {0}")]
    Key(#[from] zerotouch_core::KeyError),
    /// A passphrase was not a valid WPA passphrase.
    #[error("secret: {0}")]
    Secret(#[from] zerotouch_core::SecretError),
    /// The setup network's policy was invalid.
    #[error("provisioner: {0}")]
    Provisioner(#[from] zerotouch_provisioner::Error),
    /// A flow-2 role refused its configuration.
    #[error("peer: {0}")]
    Peer(#[from] zerotouch_peer::PeerError),
    /// The scenario's fixtures lack something it needs.
    #[error("scenario: {0}")]
    Scenario(&'static str),
    /// The async runtime could not start.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}
