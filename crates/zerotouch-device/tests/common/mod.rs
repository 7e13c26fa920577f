//! The test side: fixed keys, a device harness with a manual clock and a seeded RNG, and a
//! setup server built from the core's primitives, with a knob for every way a test tampers.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_core::flow1::binding::{
    CREDENTIALS_INFO, REPORT_INFO, outcome_ack_transcript, revocation_transcript, seal_aad,
};
use zerotouch_core::flow1::*;
use zerotouch_core::*;
use zerotouch_device::*;

pub const P: RustCryptoProvider = RustCryptoProvider;
pub const PIN: &str = "482915";
pub const SUITE: CipherSuite = CipherSuite::P256_SHA256_CHACHA20POLY1305;

/// A deterministic P-256 key: the secret is SHA-256 of a label.
pub fn key(label: &str) -> SoftwareSigner {
    let secret = P.sha256(&[label.as_bytes()]);
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &secret).unwrap(),
    )
}

pub fn setup_a() -> SoftwareSigner {
    key("setup key A")
}
pub fn setup_b() -> SoftwareSigner {
    key("setup key B")
}
pub fn verdict_key() -> SoftwareSigner {
    key("revocation key")
}
pub fn device_key() -> SoftwareSigner {
    key("device identity")
}
pub fn rogue() -> SoftwareSigner {
    key("rogue")
}

/// What the firmware pins: two setup keys (A first) and the revocation key.
pub fn pinned() -> PinnedKeys {
    PinnedKeys::new(vec![
        PinnedKey::new(KeyRole::SetupSigning, setup_a().public_key().clone()),
        PinnedKey::new(KeyRole::SetupSigning, setup_b().public_key().clone()),
        PinnedKey::new(
            KeyRole::RevocationVerdict,
            verdict_key().public_key().clone(),
        ),
    ])
}

pub fn retry() -> RetryPolicy {
    RetryPolicy {
        initial_timeout_ms: 1000,
        max_timeout_ms: 8000,
        max_retransmits: 2,
        max_sessions: 3,
    }
}

pub fn config(pin: Option<&str>) -> DeviceConfig {
    DeviceConfig {
        transport: Transport::Https,
        home_transport: Transport::Https,
        identity: DeviceIdentityRef::PublicKey(device_key().public_key().to_spki_der()),
        pin: pin.map(|p| Pin::new(p).unwrap()),
        radio_bands: 3,
        radio_security: 3,
        suites: vec![SUITE],
        retry: retry(),
    }
}

pub fn net(ssid: &str, loss: u8, security: u8) -> ReportedNetwork {
    ReportedNetwork {
        ssid: ssid.as_bytes().to_vec(),
        signal_loss_db: loss,
        band: 1,
        channel: 6,
        security,
    }
}

/// The scan: one open network, three secured ones.
pub fn scan() -> Vec<ReportedNetwork> {
    vec![
        net("home", 70, 1),
        net("open-cafe", 30, 0),
        net("home-5g", 40, 2),
        net("twin", 40, 1),
    ]
}

pub type Session = DeviceSession<SoftwareSigner, MemoryDeviceState>;

/// A device with a manual clock and a seeded RNG.
pub struct Dev {
    pub s: Session,
    pub now: Instant,
    pub rng: ChaCha20Rng,
}

impl Dev {
    pub fn new(pin: Option<&str>) -> Self {
        Self::with(config(pin), MemoryDeviceState::new())
    }

    pub fn with(config: DeviceConfig, state: MemoryDeviceState) -> Self {
        Dev {
            s: DeviceSession::new(config, pinned(), device_key(), state).unwrap(),
            now: Instant(1_000),
            rng: ChaCha20Rng::seed_from_u64(7),
        }
    }

    /// Another seed: a device that rebooted draws other randomness.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha20Rng::seed_from_u64(seed);
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    pub fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.s.poll_transmit()).collect()
    }

    /// Exactly one transmit.
    pub fn sent(&mut self) -> Transmit {
        let mut t = self.transmits();
        assert_eq!(t.len(), 1, "expected one transmit, got {t:?}");
        t.remove(0)
    }

    pub fn start(&mut self) -> Vec<Event> {
        self.s.start(self.now, Trigger::FirstBoot);
        self.events()
    }

    /// Starts, scans, and returns the hello.
    pub fn hello(&mut self) -> Vec<u8> {
        assert_eq!(self.start(), vec![Event::ScanRequested]);
        self.scan();
        let t = self.sent();
        assert_eq!(t.path, Path::Setup);
        t.bytes
    }

    pub fn scan(&mut self) {
        self.s.scan_complete(self.now, scan(), &mut self.rng);
    }

    pub fn recv(&mut self, path: Path, bytes: &[u8]) -> Vec<Event> {
        self.now = Instant(self.now.0 + 10);
        self.s.handle_incoming(self.now, path, bytes, &mut self.rng);
        self.events()
    }

    pub fn join(&mut self, result: JoinResult) -> Vec<Event> {
        self.now = Instant(self.now.0 + 10);
        self.s.join_result(self.now, result, &mut self.rng);
        self.events()
    }

    /// Moves the clock to the timer and fires it; returns the new time.
    pub fn fire(&mut self) -> Instant {
        self.now = self.s.poll_timeout().expect("a timer is set");
        self.s.handle_timeout(self.now, &mut self.rng);
        self.now
    }

    pub fn refusals(events: &[Event]) -> Vec<Refusal> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::MessageRefused { reason } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

pub fn signed(env: &Envelope) -> &SignedBody {
    match &env.body {
        Body::Signed(s) => s,
        Body::Plain(_) => panic!("expected a signed body"),
    }
}

pub fn plain(env: &Envelope) -> &[u8] {
    match &env.body {
        Body::Plain(b) => b,
        Body::Signed(_) => panic!("expected a plain body"),
    }
}

/// How the test server answers the hello.
#[derive(Clone)]
pub struct ProofOpts {
    pub pin_required: bool,
    pub suite: CipherSuite,
    pub expires_in_s: u32,
    /// The transport the server enters in the transcript (the device's, unless tampering).
    pub transport: Transport,
}

impl Default for ProofOpts {
    fn default() -> Self {
        ProofOpts {
            pin_required: false,
            suite: SUITE,
            expires_in_s: 120,
            transport: Transport::Https,
        }
    }
}

/// The server's memory of one setup session.
pub struct Setup {
    pub sid: SessionId,
    pub hello: Hello,
    pub transcript: SetupTranscript,
    pub sealing: SessionKeyPair,
    pub proof: ServerProof,
    pub rng: ChaCha20Rng,
}

/// What the server read from a credential request.
pub struct Request {
    pub request: CredentialRequest,
    pub report: DeviceReport,
    /// t3.
    pub th: TranscriptHash,
}

pub fn read_hello(bytes: &[u8]) -> (SessionId, Hello, Vec<u8>) {
    let env = Envelope::decode(bytes).unwrap();
    assert_eq!(env.header, header(MessageTag::Hello, env.header.session_id));
    let body = plain(&env).to_vec();
    (
        env.header.session_id,
        Hello::decode_body(&body).unwrap(),
        body,
    )
}

/// The server's proof, signed by `signer`.
pub fn proof(hello: &[u8], signer: &SoftwareSigner, opts: ProofOpts) -> (Vec<u8>, Setup) {
    let (sid, hello, body) = read_hello(hello);
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let sealing = SessionKeyPair::generate(opts.suite, &mut rng).unwrap();
    let mut transcript = SetupTranscript::after_hello(&P, opts.transport, &sid, &body);
    let proof = ServerProof {
        version: ProtocolVersion::V1,
        suite: opts.suite,
        server_nonce: Nonce::random(&mut rng),
        sealing_key: sealing.public_key().to_vec(),
        pin_required: opts.pin_required,
        expires_in_s: opts.expires_in_s,
    };
    let payload = proof.encode_body();
    let wire = sign_message(
        header(MessageTag::ServerProof, sid),
        KeyRole::SetupSigning,
        &transcript.hash(),
        payload.clone(),
        signer,
        &P,
    )
    .unwrap()
    .encode();
    transcript.absorb_proof(&P, &payload);
    (
        wire,
        Setup {
            sid,
            hello,
            transcript,
            sealing,
            proof,
            rng,
        },
    )
}

impl Setup {
    /// Verifies the device's request and opens its report.
    pub fn read_request(&self, bytes: &[u8]) -> Request {
        let env = Envelope::decode(bytes).unwrap();
        assert_eq!(env.header, header(MessageTag::CredentialRequest, self.sid));
        let t2 = self.transcript.hash();
        let payload = signed(&env)
            .verify(
                &env.header,
                KeyRole::DeviceIdentity,
                &t2,
                device_key().public_key(),
                &P,
            )
            .unwrap()
            .to_vec();
        let request = CredentialRequest::decode_body(&payload).unwrap();
        let opened = self
            .sealing
            .open(
                &request.report.encapsulated_key,
                REPORT_INFO,
                &seal_aad(&t2),
                &[&request.report.ciphertext],
            )
            .unwrap();
        let report = DeviceReport::decode(&opened[0]).unwrap();
        let mut t3 = self.transcript.clone();
        t3.absorb_request(&P, &payload);
        Request {
            request,
            report,
            th: t3.hash(),
        }
    }

    /// The credential response: `creds` as (ssid, security, passphrase; None = unavailable),
    /// sealed with `aad` (t3 unless tampering), signed by `signer`.
    pub fn response_with(
        &mut self,
        req: &Request,
        creds: &[(&str, u8, Option<&str>)],
        signer: &SoftwareSigner,
        aad: &[u8],
    ) -> Vec<u8> {
        let secrets: Vec<&[u8]> = creds
            .iter()
            .filter_map(|(_, _, p)| p.map(str::as_bytes))
            .collect();
        let sealed = if secrets.is_empty() {
            Sealed {
                encapsulated_key: vec![],
                ciphertexts: vec![],
            }
        } else {
            seal_to(
                self.proof.suite,
                &req.request.session_key,
                CREDENTIALS_INFO,
                aad,
                &secrets,
                &mut self.rng,
            )
            .unwrap()
        };
        let mut cts = sealed.ciphertexts.into_iter();
        let entries = creds
            .iter()
            .map(|(ssid, security, p)| CredentialEntry {
                ssid: ssid.as_bytes().to_vec(),
                security: *security,
                status: if p.is_some() {
                    EntryStatus::Sealed
                } else {
                    EntryStatus::Unavailable
                },
                ciphertext: if p.is_some() {
                    cts.next().unwrap()
                } else {
                    vec![]
                },
            })
            .collect();
        let response = CredentialResponse {
            encapsulated_key: sealed.encapsulated_key,
            entries,
        };
        sign_message(
            header(MessageTag::CredentialResponse, self.sid),
            KeyRole::SetupSigning,
            &req.th,
            response.encode_body(),
            signer,
            &P,
        )
        .unwrap()
        .encode()
    }

    pub fn response(&mut self, req: &Request, creds: &[(&str, u8, Option<&str>)]) -> Vec<u8> {
        let aad = seal_aad(&req.th);
        self.response_with(req, creds, &setup_a(), &aad)
    }
}

/// The standard credentials: the server's order is the weakest first.
pub const CREDS: &[(&str, u8, Option<&str>)] = &[
    ("home", 1, Some("home passphrase")),
    ("twin", 1, Some("twin passphrase")),
    ("home-5g", 2, Some("5g passphrase")),
];

/// Reads the outcome report and answers it, with `nonce` (the report's unless tampering).
pub fn ack(
    report: &[u8],
    signer: &SoftwareSigner,
    nonce: Option<Nonce>,
) -> (OutcomeReport, Vec<u8>) {
    let env = Envelope::decode(report).unwrap();
    let osid = env.header.session_id;
    assert_eq!(env.header, header(MessageTag::OutcomeReport, osid));
    let th = binding::outcome_report_transcript(&P, Transport::Https, &osid);
    let payload = signed(&env)
        .verify(
            &env.header,
            KeyRole::DeviceIdentity,
            &th,
            device_key().public_key(),
            &P,
        )
        .unwrap()
        .to_vec();
    let report = OutcomeReport::decode_body(&payload).unwrap();
    let ack = OutcomeAck {
        device_nonce: nonce.unwrap_or(report.device_nonce),
    };
    let wire = sign_message(
        header(MessageTag::OutcomeAck, osid),
        KeyRole::SetupSigning,
        &outcome_ack_transcript(&P, Transport::Https, &osid, &payload),
        ack.encode_body(),
        signer,
        &P,
    )
    .unwrap()
    .encode();
    (report, wire)
}

pub fn read_query(query: &[u8]) -> (SessionId, RevocationQuery, Vec<u8>) {
    let env = Envelope::decode(query).unwrap();
    let rsid = env.header.session_id;
    assert_eq!(env.header, header(MessageTag::RevocationQuery, rsid));
    let body = plain(&env).to_vec();
    (rsid, RevocationQuery::decode_body(&body).unwrap(), body)
}

/// The revocation service's verdict on `query`, signed by `signer`, with `nonce` (the
/// query's unless tampering).
pub fn verdict(
    query: &[u8],
    signer: &SoftwareSigner,
    status: RevocationStatus,
    replacement: Option<KeyId>,
    nonce: Option<Nonce>,
) -> Vec<u8> {
    let (rsid, q, body) = read_query(query);
    let v = RevocationVerdict {
        key_id: q.key_id,
        device_nonce: nonce.unwrap_or(q.device_nonce),
        status,
        replacement,
    };
    sign_message(
        header(MessageTag::RevocationVerdict, rsid),
        KeyRole::RevocationVerdict,
        &revocation_transcript(&P, Transport::Https, &rsid, &body),
        v.encode_body(),
        signer,
        &P,
    )
    .unwrap()
    .encode()
}

/// An unsigned error answering the request of `sid` whose answer is `answer`.
pub fn error(sid: SessionId, answer: MessageTag, code: ErrorCode, retry_after_s: u32) -> Vec<u8> {
    let msg = ErrorMessage {
        code,
        retry_after_s,
        supported_versions: vec![],
    };
    let mut h = header(answer, sid);
    h.tag = MessageTag::Error;
    Envelope::plain(h, msg.encode_body()).unwrap().encode()
}

pub fn session_of(bytes: &[u8]) -> SessionId {
    Envelope::decode(bytes).unwrap().header.session_id
}

/// A device taken through setup to its first join (with the standard credentials), the
/// server's setup and the request it read.
pub fn to_join(dev: &mut Dev, opts: ProofOpts) -> (Setup, Request) {
    let hello = dev.hello();
    let (wire, mut setup) = proof(&hello, &setup_a(), opts);
    let ev = dev.recv(Path::Setup, &wire);
    assert_eq!(
        ev,
        vec![Event::ServerAuthenticated {
            key_id: setup_a().key_id()
        }]
    );
    let req = setup.read_request(&dev.sent().bytes);
    let resp = setup.response(&req, CREDS);
    let ev = dev.recv(Path::Setup, &resp);
    assert!(matches!(&ev[..], [Event::Join { .. }]), "{ev:?}");
    (setup, req)
}

/// From the first join to the revocation query on the home network; returns the query.
pub fn to_query(dev: &mut Dev) -> Vec<u8> {
    to_join(dev, ProofOpts::default());
    let ev = dev.join(JoinResult::Joined);
    assert_eq!(
        ev,
        vec![Event::Joined {
            ssid: b"home-5g".to_vec()
        }]
    );
    let report = dev.sent();
    assert_eq!(report.path, Path::Home);
    let (_, wire) = ack(&report.bytes, &setup_a(), None);
    assert_eq!(
        dev.recv(Path::Home, &wire),
        vec![Event::OutcomeAcknowledged]
    );
    let q = dev.sent();
    assert_eq!(q.path, Path::Home);
    q.bytes
}

pub fn join_ssids(events: &[Event]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Join { ssid, .. } => Some(ssid.clone()),
            _ => None,
        })
        .collect()
}

/// A verified "revoked" verdict on `query` from the revocation key.
pub fn revoked(query: &[u8], replacement: Option<KeyId>) -> Vec<u8> {
    verdict(
        query,
        &verdict_key(),
        RevocationStatus::Revoked,
        replacement,
        None,
    )
}

/// Feeds the device a proof of `hello` by `signer` with `opts` that it must ignore: returns
/// why, after checking it sent nothing.
pub fn proof_refusals(
    dev: &mut Dev,
    hello: &[u8],
    signer: &SoftwareSigner,
    opts: ProofOpts,
) -> Vec<Refusal> {
    let (wire, _) = proof(hello, signer, opts);
    let ev = dev.recv(Path::Setup, &wire);
    assert!(dev.transmits().is_empty(), "nothing sent after {ev:?}");
    assert_eq!(ev.len(), 1, "{ev:?}");
    Dev::refusals(&ev)
}

/// Checks that, with key A dropped, the device refuses A's proof of `hello` and accepts B's.
pub fn only_b_is_trusted(dev: &mut Dev, hello: &[u8]) {
    assert_eq!(read_hello(hello).1.trusted_keys, vec![setup_b().key_id()]);
    assert_eq!(
        proof_refusals(dev, hello, &setup_a(), ProofOpts::default()),
        vec![Refusal::Signature(SignatureError::UnknownKey)]
    );
    let (wire, _) = proof(hello, &setup_b(), ProofOpts::default());
    assert_eq!(
        dev.recv(Path::Setup, &wire),
        vec![Event::ServerAuthenticated {
            key_id: setup_b().key_id()
        }]
    );
}
