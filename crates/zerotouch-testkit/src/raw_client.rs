//! A device speaking flow 1 by hand, built from the core's primitives rather than
//! `zerotouch-device`'s session, so a test can send what a correct device sends, and anything
//! else: a second request for a used nonce, a request signed by another key, a hello naming
//! other suites. It sends nothing itself: each call returns the bytes to put on a transport
//! (the setup service in process, or HTTPS to a server process) and takes the bytes that
//! came back.
//!
//! ```
//! use zerotouch_core::{Envelope, MessageTag};
//! use zerotouch_testkit::raw_client::Client;
//!
//! let mut device = Client::new(1, &zerotouch_testkit::flow1::pinned());
//! let hello = device.hello();
//! assert_eq!(Envelope::decode(&hello).unwrap().header.tag, MessageTag::Hello);
//! ```
// A test device: a message that does not verify is the test's failure, said at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zeroize::Zeroizing;
use zerotouch_core::flow1::binding::{CREDENTIALS_INFO, REPORT_INFO, seal_aad};
use zerotouch_core::flow1::{
    CredentialRequest, CredentialResponse, DeviceIdentityRef, DeviceReport, EntryStatus, Hello,
    SealedReport, ServerProof, SetupTranscript, header,
};
use zerotouch_core::{
    Body, CipherSuite, Envelope, ErrorCode, ErrorMessage, KeyId, KeyRole, Message, MessageTag,
    Nonce, PinnedKeys, ProtocolVersion, RustCryptoProvider, SessionId, SessionKeyPair, Signer as _,
    SoftwareSigner, Transport, seal_to, sign_message,
};
use zerotouch_store_suite::fixtures;

const P: RustCryptoProvider = RustCryptoProvider;

/// A differently seeded RNG on every call (a counter, so runs repeat): a server drawing
/// nonces from it never draws one twice, and a repeated nonce is (rightly) a store conflict.
pub fn fresh() -> ChaCha20Rng {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    ChaCha20Rng::seed_from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The error message in a response, if it is one.
pub fn error_of(bytes: &[u8]) -> Option<ErrorMessage> {
    match Envelope::decode(bytes).ok()? {
        Envelope {
            header,
            body: Body::Plain(body),
        } if header.tag == MessageTag::Error => ErrorMessage::decode_body(&body).ok(),
        _ => None,
    }
}

/// The error code in a response, if it is an error.
pub fn code_of(bytes: &[u8]) -> Option<ErrorCode> {
    error_of(bytes).map(|e| e.code)
}

/// A device speaking flow 1 by hand. Its fields are public so tests can change what it
/// sends (suites, trusted keys, transport) and read what it keeps (session, transcript).
pub struct Client {
    /// The device's identity key: signs its credential requests.
    pub key: SoftwareSigner,
    /// How its hello names it (its public key, or its certificate).
    pub identity: DeviceIdentityRef,
    /// The setup keys its hello says it trusts.
    pub trusted: Vec<KeyId>,
    /// The transport its transcript names (the server checks it against the one it got).
    pub transport: Transport,
    /// The current session.
    pub sid: SessionId,
    /// The suites its hello offers.
    pub suites: Vec<CipherSuite>,
    /// The last hello's body.
    pub hello_body: Vec<u8>,
    /// The transcript so far (after the hello, then after the proof).
    pub transcript: Option<SetupTranscript>,
    /// The proof accepted.
    pub proof: Option<ServerProof>,
    /// The key that signed it.
    pub proof_key: Option<KeyId>,
    /// The session key of the last request (opens the response's entries).
    pub session_key: Option<SessionKeyPair>,
    /// Where its session ids, nonces and seals come from.
    pub rng: ChaCha20Rng,
}

impl Client {
    /// Fixture device `seed` of `zerotouch-store-suite`, named by its public key, over DNS,
    /// trusting `pinned`'s setup keys, with a [`fresh`] RNG.
    pub fn new(seed: u8, pinned: &PinnedKeys) -> Self {
        let key = SoftwareSigner::new(fixtures::device_key(seed));
        let identity = DeviceIdentityRef::PublicKey(key.public_key().to_spki_der());
        Client::with_identity(key, identity, pinned, Transport::Dns, fresh())
    }

    /// A device with `key`, named by `identity` (its certificate over a TLS transport), whose
    /// transcript names `transport`, trusting `pinned`'s setup keys, drawing from `rng`.
    pub fn with_identity(
        key: SoftwareSigner,
        identity: DeviceIdentityRef,
        pinned: &PinnedKeys,
        transport: Transport,
        mut rng: ChaCha20Rng,
    ) -> Self {
        Client {
            identity,
            key,
            trusted: pinned.trusted_key_ids(KeyRole::SetupSigning),
            transport,
            sid: SessionId::random(&mut rng),
            suites: CipherSuite::SUPPORTED.to_vec(),
            hello_body: Vec::new(),
            transcript: None,
            proof: None,
            proof_key: None,
            session_key: None,
            rng,
        }
    }

    /// Starts a fresh session and returns the hello's bytes.
    pub fn hello(&mut self) -> Vec<u8> {
        self.sid = SessionId::random(&mut self.rng);
        let hello = Hello {
            versions: vec![ProtocolVersion::V1],
            suites: self.suites.clone(),
            identity: self.identity.clone(),
            trusted_keys: self.trusted.clone(),
            device_nonce: Nonce::random(&mut self.rng),
        };
        self.hello_body = hello.encode_body();
        self.transcript = Some(SetupTranscript::after_hello(
            &P,
            self.transport,
            &self.sid,
            &self.hello_body,
        ));
        Envelope::plain(header(MessageTag::Hello, self.sid), self.hello_body.clone())
            .unwrap()
            .encode()
    }

    /// Verifies the server proof against `pinned` and absorbs it.
    ///
    /// # Panics
    /// When `bytes` is not a server proof that verifies.
    pub fn accept_proof(&mut self, bytes: &[u8], pinned: &PinnedKeys) -> ServerProof {
        let env = Envelope::decode(bytes).unwrap();
        assert_eq!(
            env.header.tag,
            MessageTag::ServerProof,
            "{:?}",
            error_of(bytes)
        );
        let Body::Signed(s) = &env.body else { panic!() };
        let t = self.transcript.as_mut().unwrap();
        let payload = s
            .verify_trusted(&env.header, KeyRole::SetupSigning, &t.hash(), pinned, &P)
            .unwrap()
            .to_vec();
        t.absorb_proof(&P, &payload);
        self.proof_key = Some(*s.key_id());
        let proof = ServerProof::decode_body(&payload).unwrap();
        self.proof = Some(proof.clone());
        proof
    }

    /// The credential request sealing `report`, signed by `signer` over the transcript; freshly
    /// sealed each call (other bytes, the same nonce). Does not advance the transcript.
    ///
    /// # Panics
    /// Before a proof was accepted.
    pub fn request_with(&mut self, report: &DeviceReport, signer: &SoftwareSigner) -> Vec<u8> {
        let proof = self.proof.clone().unwrap();
        let t = self.transcript.clone().unwrap();
        let sealed = seal_to(
            proof.suite,
            &proof.sealing_key,
            REPORT_INFO,
            &seal_aad(&t.hash()),
            &[&report.encode()],
            &mut self.rng,
        )
        .unwrap();
        let kp = SessionKeyPair::generate(proof.suite, &mut self.rng).unwrap();
        let request = CredentialRequest {
            session_key: kp.public_key().to_vec(),
            report: SealedReport {
                encapsulated_key: sealed.encapsulated_key,
                ciphertext: sealed.ciphertexts.into_iter().next().unwrap(),
            },
        };
        self.session_key = Some(kp);
        sign_message(
            header(MessageTag::CredentialRequest, self.sid),
            KeyRole::DeviceIdentity,
            &t.hash(),
            request.encode_body(),
            signer,
            &P,
        )
        .unwrap()
        .encode()
    }

    /// The credential request sealing `report`, signed by the device's own key.
    pub fn request(&mut self, report: &DeviceReport) -> Vec<u8> {
        let key = SoftwareSigner::new(self.key.signing_key().clone());
        self.request_with(report, &key)
    }

    /// Verifies a credential response to `request` and opens its sealed entries.
    ///
    /// # Panics
    /// When `bytes` is not a credential response to `request` that verifies and opens.
    pub fn open_response(
        &self,
        request: &[u8],
        bytes: &[u8],
        pinned: &PinnedKeys,
    ) -> (CredentialResponse, Vec<Zeroizing<Vec<u8>>>) {
        let env = Envelope::decode(bytes).unwrap();
        assert_eq!(
            env.header.tag,
            MessageTag::CredentialResponse,
            "{:?}",
            error_of(bytes)
        );
        let Body::Signed(s) = &env.body else { panic!() };
        assert_eq!(
            Some(*s.key_id()),
            self.proof_key,
            "signed by the proof's key"
        );
        let req = Envelope::decode(request).unwrap();
        let Body::Signed(rs) = &req.body else {
            panic!()
        };
        let mut t = self.transcript.clone().unwrap();
        // The request payload as sent (the server verified it before absorbing it).
        let rpayload = rs
            .verify(
                &req.header,
                KeyRole::DeviceIdentity,
                &t.hash(),
                self.key.public_key(),
                &P,
            )
            .unwrap()
            .to_vec();
        t.absorb_request(&P, &rpayload);
        let payload = s
            .verify_trusted(&env.header, KeyRole::SetupSigning, &t.hash(), pinned, &P)
            .unwrap();
        let response = CredentialResponse::decode_body(payload).unwrap();
        let cts: Vec<&[u8]> = response
            .entries
            .iter()
            .filter(|e| e.status == EntryStatus::Sealed)
            .map(|e| e.ciphertext.as_slice())
            .collect();
        let opened = if cts.is_empty() {
            Vec::new()
        } else {
            self.session_key
                .as_ref()
                .unwrap()
                .open(
                    &response.encapsulated_key,
                    CREDENTIALS_INFO,
                    &seal_aad(&t.hash()),
                    &cts,
                )
                .unwrap()
        };
        (response, opened)
    }
}
