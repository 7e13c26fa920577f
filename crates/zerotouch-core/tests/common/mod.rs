//! Fixtures shared by the integration tests: fixed keys, a full transcript, headers.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_core::*;

pub const PROVIDER: RustCryptoProvider = RustCryptoProvider;

/// A deterministic key: the secret is SHA-256 of a label.
pub fn key(alg: SignatureAlgorithm, label: &str) -> SoftwareSigner {
    let secret = PROVIDER.sha256(&[label.as_bytes()]);
    SoftwareSigner::new(SigningKey::from_secret_bytes(alg, &secret).unwrap())
}

/// Every input a transcript binds, so tests can change exactly one.
#[derive(Clone, Debug)]
pub struct TranscriptInputs {
    pub flow: Flow,
    pub transport: Transport,
    pub session_id: SessionId,
    pub offered_versions: Vec<ProtocolVersion>,
    pub chosen_version: ProtocolVersion,
    pub offered_suites: Vec<CipherSuite>,
    pub chosen_suite: CipherSuite,
    pub device_key: PublicKey,
    pub device_nonce: Nonce,
    pub server_nonce: Nonce,
}

impl TranscriptInputs {
    pub fn fixed() -> Self {
        TranscriptInputs {
            flow: Flow::ServerSetup,
            transport: Transport::Dns,
            session_id: SessionId([0x11; 16]),
            offered_versions: vec![ProtocolVersion::V1],
            chosen_version: ProtocolVersion::V1,
            offered_suites: CipherSuite::SUPPORTED.to_vec(),
            chosen_suite: CipherSuite::X25519_SHA256_CHACHA20POLY1305,
            device_key: key(SignatureAlgorithm::EcdsaP256Sha256, "device")
                .public_key()
                .clone(),
            device_nonce: Nonce([0x22; 16]),
            server_nonce: Nonce([0x33; 16]),
        }
    }

    pub fn hash(&self) -> TranscriptHash {
        let p = &PROVIDER;
        let mut t = Transcript::new(p, self.flow, self.transport, &self.session_id);
        t.offered_versions(p, &self.offered_versions);
        t.offered_suites(p, &self.offered_suites);
        t.device_key(p, &self.device_key);
        t.device_nonce(p, &self.device_nonce);
        t.chosen_version(p, self.chosen_version);
        t.chosen_suite(p, self.chosen_suite);
        t.server_nonce(p, &self.server_nonce);
        t.hash()
    }
}

pub fn header(tag: MessageTag) -> Header {
    Header {
        version: ProtocolVersion::V1,
        flow: tag.flow().unwrap_or(Flow::ServerSetup),
        tag,
        session_id: SessionId([0x11; 16]),
        seq: 1,
    }
}

pub fn signed_body(env: &Envelope) -> &SignedBody {
    match &env.body {
        Body::Signed(s) => s,
        Body::Plain(_) => panic!("expected a signed body"),
    }
}
