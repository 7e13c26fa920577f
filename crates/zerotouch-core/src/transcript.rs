//! The transcript: a running, domain-separated hash of everything a session has agreed on.
//!
//! Every signature covers the transcript hash, so a signed message cannot be moved into another
//! session, flow or transport, and nobody can strip an offer (version, suite, trusted key) that
//! was made. The state is 32 bytes, which a stateless server keeps in its store between requests.
//!
//! ```text
//! h0 = SHA-256( CBOR["zerotouch-transcript", version-of-this-construction, flow, transport, session_id] )
//! hi = SHA-256( h(i-1) || CBOR[field, value] )
//! ```

use alloc::vec::Vec;
use ciborium::Value;

use crate::{
    CipherSuite, CryptoProvider, Flow, Nonce, ProtocolVersion, PublicKey, SessionId, Transport,
};

/// Domain label of the first transcript block.
const TRANSCRIPT_LABEL: &str = "zerotouch-transcript";
/// Version of the transcript construction itself.
const TRANSCRIPT_CONSTRUCTION: u64 = 1;

/// What a transcript entry holds. The number goes into the hash, so entries cannot be confused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum TranscriptField {
    /// Protocol versions the device offered, one byte each, in its order.
    OfferedVersions = 1,
    /// The version the server chose.
    ChosenVersion = 2,
    /// Cipher suites the device offered, six bytes each (KEM, KDF, AEAD, big-endian).
    OfferedSuites = 3,
    /// The suite the server chose.
    ChosenSuite = 4,
    /// The device identity key, as DER SubjectPublicKeyInfo.
    DeviceKey = 5,
    /// The device's nonce.
    DeviceNonce = 6,
    /// The server's nonce.
    ServerNonce = 7,
    /// A per-session public key (sealing key, ephemeral key), raw encoding.
    SessionKey = 8,
    /// Server key ids the device still trusts, 32 bytes each, in its order.
    TrustedKeys = 9,
    /// An encrypted channel's binding value (flow 2).
    ChannelBinding = 10,
    /// The exact bytes of a whole message.
    Message = 11,
    /// The sponsor's or other peer's key (flow 2), as DER SubjectPublicKeyInfo.
    PeerKey = 12,
}

/// A transcript hash: the 32-byte state after the last entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TranscriptHash(pub [u8; 32]);

/// A running transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    hash: [u8; 32],
}

impl Transcript {
    /// Starts a transcript for one session of `flow` over `transport`.
    pub fn new(
        provider: &dyn CryptoProvider,
        flow: Flow,
        transport: Transport,
        session_id: &SessionId,
    ) -> Self {
        let start = crate::cbor::encode(&Value::Array(alloc::vec![
            Value::Text(TRANSCRIPT_LABEL.into()),
            Value::Integer(TRANSCRIPT_CONSTRUCTION.into()),
            Value::Integer(flow.to_u8().into()),
            Value::Integer(transport.to_u8().into()),
            Value::Bytes(session_id.0.to_vec()),
        ]));
        Transcript {
            hash: provider.sha256(&[&start]),
        }
    }

    /// Continues a transcript from a stored hash (a stateless server between two requests).
    pub fn resume(hash: TranscriptHash) -> Self {
        Transcript { hash: hash.0 }
    }

    /// The current hash.
    pub fn hash(&self) -> TranscriptHash {
        TranscriptHash(self.hash)
    }

    /// Appends one entry.
    pub fn absorb(&mut self, provider: &dyn CryptoProvider, field: TranscriptField, value: &[u8]) {
        let entry = crate::cbor::encode(&Value::Array(alloc::vec![
            Value::Integer((field as u8).into()),
            Value::Bytes(value.to_vec()),
        ]));
        self.hash = provider.sha256(&[&self.hash, &entry]);
    }

    /// Appends the versions the device offered.
    pub fn offered_versions(&mut self, p: &dyn CryptoProvider, offered: &[ProtocolVersion]) {
        let bytes: Vec<u8> = offered.iter().map(|v| v.0).collect();
        self.absorb(p, TranscriptField::OfferedVersions, &bytes);
    }

    /// Appends the version the server chose.
    pub fn chosen_version(&mut self, p: &dyn CryptoProvider, chosen: ProtocolVersion) {
        self.absorb(p, TranscriptField::ChosenVersion, &[chosen.0]);
    }

    /// Appends the suites the device offered.
    pub fn offered_suites(&mut self, p: &dyn CryptoProvider, offered: &[CipherSuite]) {
        let mut bytes = Vec::with_capacity(offered.len() * 6);
        for s in offered {
            bytes.extend_from_slice(&suite_bytes(s));
        }
        self.absorb(p, TranscriptField::OfferedSuites, &bytes);
    }

    /// Appends the suite the server chose.
    pub fn chosen_suite(&mut self, p: &dyn CryptoProvider, chosen: CipherSuite) {
        self.absorb(p, TranscriptField::ChosenSuite, &suite_bytes(&chosen));
    }

    /// Appends the device identity key.
    pub fn device_key(&mut self, p: &dyn CryptoProvider, key: &PublicKey) {
        self.absorb(p, TranscriptField::DeviceKey, &key.to_spki_der());
    }

    /// Appends the device's nonce.
    pub fn device_nonce(&mut self, p: &dyn CryptoProvider, nonce: &Nonce) {
        self.absorb(p, TranscriptField::DeviceNonce, &nonce.0);
    }

    /// Appends the server's nonce.
    pub fn server_nonce(&mut self, p: &dyn CryptoProvider, nonce: &Nonce) {
        self.absorb(p, TranscriptField::ServerNonce, &nonce.0);
    }
}

fn suite_bytes(s: &CipherSuite) -> [u8; 6] {
    let [a, b] = s.kem.to_be_bytes();
    let [c, d] = s.kdf.to_be_bytes();
    let [e, f] = s.aead.to_be_bytes();
    [a, b, c, d, e, f]
}
