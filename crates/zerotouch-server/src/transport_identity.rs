//! Who delivered a request: what the transport adapter knows and the protocol may use.

use zerotouch_core::{KeyId, PublicKey, Transport};

/// How a request reached the setup service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportIdentity {
    /// The device itself sent it.
    Direct {
        /// The transport it used.
        transport: Transport,
        /// The public key of its TLS client certificate, when mutual TLS authenticated one.
        /// It must be the key the hello names; it never replaces the in-protocol key proof.
        client_key: Option<PublicKey>,
    },
    /// A provisioner (router, phone, sponsor) forwarded the device's bytes unchanged.
    Relayed {
        /// The relay's own authenticated key.
        relay: KeyId,
        /// The transport the device used to reach the relay: it goes into the transcript the
        /// device signs, so a relay that misstates it only makes the session fail.
        device_transport: Transport,
    },
}

impl TransportIdentity {
    /// The transport the device used: the one in the transcript.
    pub fn device_transport(&self) -> Transport {
        match self {
            TransportIdentity::Direct { transport, .. } => *transport,
            TransportIdentity::Relayed {
                device_transport, ..
            } => *device_transport,
        }
    }

    /// The client-certificate key, if the device authenticated one directly.
    pub fn client_key(&self) -> Option<&PublicKey> {
        match self {
            TransportIdentity::Direct { client_key, .. } => client_key.as_ref(),
            TransportIdentity::Relayed { .. } => None,
        }
    }
}
