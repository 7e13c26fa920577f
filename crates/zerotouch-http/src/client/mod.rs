//! Clients: the device, the provisioner relay, the sponsor (flow 2), registrars and operators.

pub(crate) mod association;
pub(crate) mod channel;
pub(crate) mod device;
mod identity_key;
pub(crate) mod registrar;
pub(crate) mod relay;
pub(crate) mod tls;
pub(crate) mod trust;
