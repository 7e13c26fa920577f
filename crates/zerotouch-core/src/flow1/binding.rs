//! What each flow-1 message is bound to: its envelope header, the transcript it is signed over
//! and the HPKE labels. The device session and the setup service both build these from here,
//! so the two sides cannot disagree.
//!
//! The setup exchange absorbs whole message bodies, as received, in order:
//!
//! ```text
//! t0 = start(flow 1, transport the device used, session_id)
//! t1 = t0 + Message(hello body)             ServerProof signed over t1
//! t2 = t1 + Message(server proof payload)   CredentialRequest signed over t2, report sealed with aad t2
//! t3 = t2 + Message(request payload)        CredentialResponse signed over t3, credentials sealed with aad t3
//! ```
//!
//! Absorbing bodies rather than picked fields means nothing a party sent can be left out: the
//! versions and suites offered, the identity and trusted keys of the hello, the server's nonce,
//! choices and sealing key, and the device's session key and sealed report. The outcome report
//! and the revocation check are their own short exchanges with their own session ids.

use alloc::vec::Vec;

use crate::{
    CryptoProvider, Flow, Header, MessageTag, ProtocolVersion, SessionId, Transcript,
    TranscriptField, TranscriptHash, Transport,
};

/// HPKE `info` of the device's sealed report (PIN and networks).
pub const REPORT_INFO: &[u8] = b"zerotouch flow1 report";
/// HPKE `info` of the sealed credentials.
pub const CREDENTIALS_INFO: &[u8] = b"zerotouch flow1 credentials";

/// The sequence number a flow-1 message carries in its envelope: its place in its exchange.
/// An error answering a message carries that message's number plus one.
pub fn seq_of(tag: MessageTag) -> u32 {
    match tag {
        MessageTag::Hello | MessageTag::OutcomeReport | MessageTag::RevocationQuery => 0,
        MessageTag::ServerProof | MessageTag::OutcomeAck | MessageTag::RevocationVerdict => 1,
        MessageTag::CredentialRequest => 2,
        MessageTag::CredentialResponse => 3,
        _ => 0,
    }
}

/// The header of a flow-1 message of `tag` in `session_id`, protocol version 1.
pub fn header(tag: MessageTag, session_id: SessionId) -> Header {
    Header {
        version: ProtocolVersion::V1,
        flow: Flow::ServerSetup,
        tag,
        session_id,
        seq: seq_of(tag),
    }
}

/// The setup exchange's transcript (hello → proof → request → response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupTranscript(Transcript);

impl SetupTranscript {
    /// `t1`: the transcript after the hello, which the server proof is signed over.
    /// `transport` is the one the device itself used, even when a relay carries its bytes.
    pub fn after_hello(
        provider: &dyn CryptoProvider,
        transport: Transport,
        session_id: &SessionId,
        hello_body: &[u8],
    ) -> Self {
        let mut t = Transcript::new(provider, Flow::ServerSetup, transport, session_id);
        t.absorb(provider, TranscriptField::Message, hello_body);
        SetupTranscript(t)
    }

    /// Continues from a stored hash (a stateless server between two requests).
    pub fn resume(hash: TranscriptHash) -> Self {
        SetupTranscript(Transcript::resume(hash))
    }

    /// The current hash.
    pub fn hash(&self) -> TranscriptHash {
        self.0.hash()
    }

    /// `t2`: adds the verified server-proof payload. The credential request is signed over
    /// it and the report sealed with it as associated data.
    pub fn absorb_proof(&mut self, provider: &dyn CryptoProvider, proof_payload: &[u8]) {
        self.0
            .absorb(provider, TranscriptField::Message, proof_payload);
    }

    /// `t3`: adds the verified credential-request payload. The credential response is signed
    /// over it and the credentials sealed with it as associated data.
    pub fn absorb_request(&mut self, provider: &dyn CryptoProvider, request_payload: &[u8]) {
        self.0
            .absorb(provider, TranscriptField::Message, request_payload);
    }
}

/// The transcript an outcome report is signed over: a fresh exchange over the home network.
pub fn outcome_report_transcript(
    provider: &dyn CryptoProvider,
    transport: Transport,
    session_id: &SessionId,
) -> TranscriptHash {
    Transcript::new(provider, Flow::ServerSetup, transport, session_id).hash()
}

/// The transcript the outcome acknowledgement is signed over: the report's transcript plus the
/// report's payload.
pub fn outcome_ack_transcript(
    provider: &dyn CryptoProvider,
    transport: Transport,
    session_id: &SessionId,
    report_payload: &[u8],
) -> TranscriptHash {
    let mut t = Transcript::new(provider, Flow::ServerSetup, transport, session_id);
    t.absorb(provider, TranscriptField::Message, report_payload);
    t.hash()
}

/// The transcript a revocation verdict is signed over: the exchange's start plus the query.
pub fn revocation_transcript(
    provider: &dyn CryptoProvider,
    transport: Transport,
    session_id: &SessionId,
    query_body: &[u8],
) -> TranscriptHash {
    let mut t = Transcript::new(provider, Flow::ServerSetup, transport, session_id);
    t.absorb(provider, TranscriptField::Message, query_body);
    t.hash()
}

/// The associated data the report and the credentials are sealed with: the transcript hash.
pub fn seal_aad(th: &TranscriptHash) -> Vec<u8> {
    th.0.to_vec()
}
