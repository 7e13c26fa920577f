//! The fixtures of the flow-2 targets: which byte picks which decoder in `flow2_decode`, and
//! the world of `peer_roles`: a [`Joiner`] after `start` and a [`Sponsor`] after `accept`,
//! each with the other end of its local channel held by the fuzz input.
//!
//! A `peer_roles` input is a list of chunks `[op, len_hi, len_lo, bytes…]` (a short last chunk
//! takes what is left). `op % 6`: 0 raw bytes into the joiner's stream, 1 a plaintext sealed
//! into the joiner's channel, 2 raw bytes into the sponsor's stream, 3 a plaintext sealed into
//! the sponsor's channel, 4 an answer from the association server to the sponsor, 5 the clock
//! moves on by the chunk's first four bytes (big-endian milliseconds) and both time out. Both
//! roles check signatures with `InsecureFuzzingProvider`, so a mutated signed message still
//! reaches the checks behind the signature; every other check is the real one.

use std::sync::LazyLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::flow2::{
    self, AnswerContext, Challenge, ChallengeData, ChallengeResponse, CommitmentKey,
    CredentialHandover, HomeCredential, PeerCredentialRequest, SealedAnswer, VerificationData,
    VerificationRequest, challenge_answer, credential_commitment, handoff_transcript,
};
use zerotouch_core::{
    Body, CryptoProvider, DeviceSecret, Envelope, ErrorCode, ErrorMessage, InsecureFuzzingProvider,
    Instant, KeyId, KeyRole, Message, MessageTag, Nonce, Passphrase, PinnedKey, PinnedKeys,
    RustCryptoProvider, SessionId, SignatureAlgorithm, Signer, SigningKey, SoftwareSigner, seal_to,
    sign_message,
};
use zerotouch_peer::{
    Destination, Joiner, JoinerConfig, JoinerEvent, LocalChannel, MemoryPeerState, Sponsor,
    SponsorConfig, SponsorEvent,
};

use crate::{Seed, expect, fixed_signer, seed};

/// The flow-2 tags in the order of `flow2_decode`'s selector byte (`byte % 6`).
pub const FLOW2_TAGS: [MessageTag; 6] = [
    MessageTag::PeerCredentialRequest,
    MessageTag::VerificationRequest,
    MessageTag::VerificationData,
    MessageTag::ChallengeData,
    MessageTag::ChallengeResponse,
    MessageTag::CredentialHandover,
];

/// The selector byte of `tag` in `flow2_decode`, if it is a flow-2 body.
pub fn flow2_selector(tag: MessageTag) -> Option<u8> {
    FLOW2_TAGS
        .iter()
        .position(|t| *t == tag)
        .and_then(|i| u8::try_from(i).ok())
}

/// The joiner's id (fuzzing only).
pub const JOINER_ID: KeyId = KeyId([0x4a; 32]);
/// The joiner's device secret (fuzzing only).
pub const DEVICE_SECRET: [u8; 32] = [0x5b; 32];
/// Secret of the sponsor's identity key (fuzzing only).
pub const SPONSOR_SECRET: [u8; 32] = [0x33; 32];
/// Both roles' clock when the input starts.
pub const PEER_START: Instant = Instant(10_000);

/// The sponsor's identity key.
pub fn sponsor_signer() -> SoftwareSigner {
    match SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &SPONSOR_SECRET) {
        Ok(key) => SoftwareSigner::new(key),
        Err(e) => panic!("sponsor secret refused: {e:?}"),
    }
}

/// The credential the sponsor holds.
pub fn home_credential() -> HomeCredential {
    HomeCredential {
        ssid: b"home".to_vec(),
        security: 2,
        passphrase: match Passphrase::new(b"correct horse battery") {
            Ok(p) => p,
            Err(e) => panic!("passphrase: {e:?}"),
        },
    }
}

/// A joiner, a sponsor, and the far end of each one's open channel.
pub struct PeerWorld {
    /// The joiner, its channel open and its credential request sent.
    pub joiner: Joiner<MemoryPeerState, InsecureFuzzingProvider>,
    /// The sponsor, its channel open.
    pub sponsor: Sponsor<SoftwareSigner, MemoryPeerState, InsecureFuzzingProvider>,
    /// The sponsor's end of the joiner's channel.
    pub to_joiner: LocalChannel,
    /// The joiner's end of the sponsor's channel.
    pub to_sponsor: LocalChannel,
    /// Every message the joiner sent through its channel, decrypted.
    pub joiner_said: Vec<Vec<u8>>,
    /// Every message the sponsor sent through its channel, decrypted.
    pub sponsor_said: Vec<Vec<u8>>,
    /// Every request the sponsor sent to the association server.
    pub to_server: Vec<Vec<u8>>,
    /// The joiner's events.
    pub joiner_events: Vec<JoinerEvent>,
    /// The sponsor's events.
    pub sponsor_events: Vec<SponsorEvent>,
    /// The sponsor's randomness (seeded: every run is the same).
    pub rng: ChaCha20Rng,
    /// Both roles' clock.
    pub now: Instant,
}

impl Default for PeerWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerWorld {
    /// The same world every time: both handshakes done, the joiner's request sent.
    pub fn new() -> Self {
        // Deriving the two P-256 public keys would cost more than a whole run.
        static KEYS: LazyLock<(PinnedKeys, SoftwareSigner)> = LazyLock::new(|| {
            let association = fixed_signer(SignatureAlgorithm::EcdsaP256Sha256);
            let pinned = PinnedKeys::new(vec![PinnedKey::new(
                KeyRole::Association,
                association.public_key().clone(),
            )]);
            (pinned, sponsor_signer())
        });
        let (pinned, identity) = (KEYS.0.clone(), KEYS.1.clone());
        let mut rng = ChaCha20Rng::from_seed([0x77; 32]);
        let config = JoinerConfig::new(JOINER_ID, DeviceSecret::new(DEVICE_SECRET), pinned.clone());
        let provider = InsecureFuzzingProvider;
        let built = Joiner::with_provider(config, MemoryPeerState::new(), provider).and_then(|j| {
            Sponsor::with_provider(
                SponsorConfig::new(home_credential(), pinned),
                identity,
                MemoryPeerState::new(),
                provider,
            )
            .map(|s| (j, s))
        });
        let (mut joiner, mut sponsor) = match built {
            Ok(roles) => roles,
            Err(e) => panic!("peer roles: {e:?}"),
        };
        let channels = LocalChannel::responder(&mut rng)
            .and_then(|r| LocalChannel::initiator(&mut rng).map(|i| (r, i)));
        let (to_joiner, (to_sponsor, first)) = match channels {
            Ok(c) => c,
            Err(e) => panic!("channels: {e:?}"),
        };
        joiner.start(PEER_START, &mut rng);
        sponsor.accept(PEER_START, &mut rng);
        sponsor.receive_local(PEER_START, &first, &mut rng);
        let mut world = PeerWorld {
            joiner,
            sponsor,
            to_joiner,
            to_sponsor,
            joiner_said: Vec::new(),
            sponsor_said: Vec::new(),
            to_server: Vec::new(),
            joiner_events: Vec::new(),
            sponsor_events: Vec::new(),
            rng,
            now: PEER_START,
        };
        // The joiner's `-> e` draws the far end's `<- e, ee`, which opens the joiner's channel.
        if let Some(bytes) = world.joiner.poll_transmit()
            && let Ok(r) = world.to_joiner.receive(&bytes)
        {
            world.joiner.receive(PEER_START, &r.reply, &mut world.rng);
        }
        world.drain();
        assert!(
            world.to_joiner.is_open() && world.to_sponsor.is_open(),
            "peer world: a channel did not open"
        );
        world
    }

    /// Applies every chunk of `input`.
    pub fn apply(&mut self, input: &[u8]) {
        let mut rest = input;
        while let Some((&op, after)) = rest.split_first() {
            let (len, after) = match after {
                [hi, lo, tail @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), tail),
                _ => (after.len(), &[][..]),
            };
            let (chunk, after) = after.split_at(len.min(after.len()));
            self.step(op, chunk);
            rest = after;
        }
    }

    fn step(&mut self, op: u8, bytes: &[u8]) {
        match op % 6 {
            0 => self.joiner.receive(self.now, bytes, &mut self.rng),
            1 => {
                if let Ok(frame) = self.to_joiner.seal(bytes) {
                    self.joiner.receive(self.now, &frame, &mut self.rng);
                }
            }
            2 => self.sponsor.receive_local(self.now, bytes, &mut self.rng),
            3 => {
                if let Ok(frame) = self.to_sponsor.seal(bytes) {
                    self.sponsor.receive_local(self.now, &frame, &mut self.rng);
                }
            }
            4 => self.sponsor.receive_server(self.now, bytes, &mut self.rng),
            _ => {
                let ms = bytes
                    .iter()
                    .take(4)
                    .fold(0u64, |a, b| (a << 8) | u64::from(*b));
                self.now = Instant(self.now.0.saturating_add(ms));
                self.joiner.handle_timeout(self.now);
                self.sponsor.handle_timeout(self.now, &mut self.rng);
            }
        }
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(bytes) = self.joiner.poll_transmit() {
            if let Ok(r) = self.to_joiner.receive(&bytes) {
                self.joiner_said.extend(r.messages);
            }
        }
        while let Some(t) = self.sponsor.poll_transmit() {
            match t.destination {
                Destination::Joiner => {
                    if let Ok(r) = self.to_sponsor.receive(&t.bytes) {
                        self.sponsor_said.extend(r.messages);
                    }
                }
                Destination::AssociationServer => self.to_server.push(t.bytes),
            }
        }
        self.joiner_events
            .extend(core::iter::from_fn(|| self.joiner.poll_event()));
        self.sponsor_events
            .extend(core::iter::from_fn(|| self.sponsor.poll_event()));
    }
}

/// One `peer_roles` chunk.
pub fn chunk(op: u8, bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut out = vec![op];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
    out
}

fn decoded(bytes: &[u8]) -> Envelope {
    match Envelope::decode(bytes) {
        Ok(e) => e,
        Err(e) => panic!("building peer seeds: {e:?}"),
    }
}

fn plain(tag: MessageTag, session: SessionId, body: Vec<u8>) -> Vec<u8> {
    expect(
        Envelope::plain(flow2::header(tag, session), body),
        "plain envelope",
    )
    .encode()
}

fn signed(tag: MessageTag, session: SessionId, body: Vec<u8>, signer: &SoftwareSigner) -> Vec<u8> {
    let th = handoff_transcript(&RustCryptoProvider, &session);
    let role = KeyRole::Association;
    expect(
        sign_message(
            flow2::header(tag, session),
            role,
            &th,
            body,
            signer,
            &RustCryptoProvider,
        ),
        "signed envelope",
    )
    .encode()
}

fn error(session: SessionId, code: ErrorCode) -> Vec<u8> {
    let body = ErrorMessage {
        code,
        retry_after_s: 0,
        supported_versions: vec![],
    };
    plain(MessageTag::Error, session, body.encode_body())
}

/// Seeds of `peer_roles` (each checked to reach the end it is for) and of `flow2_decode` (one
/// body of each message, prefixed with its selector byte).
pub(crate) fn seeds() -> Vec<Seed> {
    let p = RustCryptoProvider;
    let association = fixed_signer(SignatureAlgorithm::EcdsaP256Sha256);
    let mut bodies: Vec<(MessageTag, Vec<u8>)> = Vec::new();
    let mut out = Vec::new();

    // The joiner's whole handoff: the challenge for its request, then the credential.
    let world = PeerWorld::new();
    let request = decoded(&world.joiner_said[0]);
    let session = request.header.session_id;
    let Body::Plain(request_body) = &request.body else {
        panic!("the joiner's request is plain")
    };
    let asked = expect(PeerCredentialRequest::decode_body(request_body), "request");
    bodies.push((MessageTag::PeerCredentialRequest, request_body.clone()));
    let key = CommitmentKey::new([0x6c; 32]);
    let credential = home_credential();
    let challenge = ChallengeData {
        sponsor_id: sponsor_signer().key_id(),
        joiner_id: JOINER_ID,
        nonce: asked.nonce,
        commitment: credential_commitment(
            &p,
            &key,
            &session,
            &asked.nonce,
            &JOINER_ID,
            &credential,
        ),
        binding: expect(asked.seen_binding.ok_or("no binding"), "binding"),
        challenge: Challenge([0x1c; 32]),
    };
    bodies.push((MessageTag::ChallengeData, challenge.encode_body()));
    let handover = CredentialHandover {
        commitment_key: key,
        credential,
    };
    bodies.push((MessageTag::CredentialHandover, handover.encode_body()));
    let tag = MessageTag::ChallengeData;
    let joiner_run = [
        chunk(
            1,
            &signed(tag, session, challenge.encode_body(), &association),
        ),
        chunk(
            1,
            &plain(
                MessageTag::CredentialHandover,
                session,
                handover.encode_body(),
            ),
        ),
    ]
    .concat();
    let mut check = PeerWorld::new();
    check.apply(&joiner_run);
    assert!(
        check.joiner.is_finished(),
        "joiner seed: {:?}",
        check.joiner_events
    );
    out.push(seed("peer_roles", "api-joiner-joins", joiner_run));
    out.push(seed(
        "peer_roles",
        "api-joiner-refused",
        chunk(1, &error(session, ErrorCode::NotAssociated)),
    ));

    // The sponsor's whole handoff: a request, the server's answer, the joiner's answer.
    let session = SessionId([0x5e; 16]);
    let nonce = Nonce([0x4e; 16]);
    let asked = PeerCredentialRequest {
        joiner_id: JOINER_ID,
        nonce,
        seen_binding: world.to_sponsor.binding(),
        fallbacks: Vec::new(),
    };
    let request = chunk(
        3,
        &plain(
            MessageTag::PeerCredentialRequest,
            session,
            asked.encode_body(),
        ),
    );
    let mut asking = PeerWorld::new();
    asking.apply(&request);
    let sent = decoded(&asking.to_server[0]);
    let Body::Signed(body) = &sent.body else {
        panic!("the verification request is signed")
    };
    let th = handoff_transcript(&p, &session);
    let payload = body.verify(
        &sent.header,
        KeyRole::DeviceIdentity,
        &th,
        sponsor_signer().public_key(),
        &p,
    );
    let vr = expect(
        VerificationRequest::decode_body(expect(payload, "signature")),
        "vr",
    );
    bodies.push((MessageTag::VerificationRequest, vr.encode_body()));
    let challenge = ChallengeData {
        sponsor_id: vr.sponsor_id,
        joiner_id: vr.joiner_id,
        nonce: vr.nonce,
        commitment: vr.commitment,
        binding: vr.binding,
        challenge: Challenge([0x2c; 32]),
    };
    let challenge_data = signed(tag, session, challenge.encode_body(), &association);
    let context = AnswerContext {
        session_id: &session,
        nonce: &nonce,
        sponsor_id: &vr.sponsor_id,
        joiner_id: &JOINER_ID,
    };
    let secret = DeviceSecret::new(DEVICE_SECRET);
    let expected = challenge_answer(&p, &secret, &context, &challenge.challenge, &vr.binding);
    let mut rng = ChaCha20Rng::from_seed([0x78; 32]);
    let aad = p.sha256(&[&challenge_data]);
    let answer = [expected.expose_secret().as_slice()];
    let sealed = seal_to(
        vr.answer_key.suite,
        &vr.answer_key.public_key,
        flow2::EXPECTED_ANSWER_INFO,
        &aad,
        &answer,
        &mut rng,
    );
    let mut sealed = expect(sealed, "sealed answer");
    let data = VerificationData {
        challenge_data,
        sealed_answer: SealedAnswer {
            encapsulated_key: sealed.encapsulated_key,
            ciphertext: sealed.ciphertexts.remove(0),
        },
        answer_window_ms: 30_000,
    };
    bodies.push((MessageTag::VerificationData, data.encode_body()));
    let response = ChallengeResponse { answer: expected };
    bodies.push((MessageTag::ChallengeResponse, response.encode_body()));
    let vd_tag = MessageTag::VerificationData;
    let sponsor_run = [
        request.clone(),
        chunk(
            4,
            &signed(vd_tag, session, data.encode_body(), &association),
        ),
        chunk(
            3,
            &plain(
                MessageTag::ChallengeResponse,
                session,
                response.encode_body(),
            ),
        ),
    ]
    .concat();
    let mut check = PeerWorld::new();
    check.apply(&sponsor_run);
    assert!(
        check.sponsor.is_finished(),
        "sponsor seed: {:?}",
        check.sponsor_events
    );
    out.push(seed("peer_roles", "api-sponsor-hands-over", sponsor_run));
    let refused = [request, chunk(4, &error(session, ErrorCode::NotAssociated))].concat();
    out.push(seed("peer_roles", "api-sponsor-refused", refused));

    // Raw stream bytes and a clock that runs out.
    out.push(seed(
        "peer_roles",
        "api-raw-frames",
        [chunk(0, &[0, 3, 1, 2, 3]), chunk(2, &[0, 32, 9])].concat(),
    ));
    out.push(seed("peer_roles", "api-timeout", chunk(5, &[0, 1, 0, 0])));

    for (tag, body) in bodies {
        if let Some(selector) = flow2_selector(tag) {
            let name = format!("api-{tag:?}");
            out.push(seed("flow2_decode", name, [vec![selector], body].concat()));
        }
    }
    out
}
