//! A test world: a sponsor, a joiner, and an association server the test plays itself (built
//! from the core's message types and functions, so a test can tamper with any value it signs).
#![allow(dead_code)]

use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use zerotouch_core::flow2::{
    self, AnswerContext, Challenge, ChallengeData, HomeCredential, SealedAnswer, VerificationData,
    VerificationRequest, challenge_answer, handoff_transcript,
};
use zerotouch_core::*;
use zerotouch_peer::*;

pub const PASSPHRASE: &[u8] = b"correct horse battery";

pub fn home() -> HomeCredential {
    HomeCredential {
        ssid: b"home".to_vec(),
        security: 2,
        passphrase: Passphrase::new(PASSPHRASE).unwrap(),
    }
}

/// What the test server does with a verification request, before signing.
#[derive(Default, Clone)]
pub struct ServerTampering {
    pub commitment: Option<flow2::Commitment>,
    pub binding: Option<flow2::ChannelBinding>,
    pub joiner_id: Option<KeyId>,
    pub flip_sealed_answer: bool,
    pub seal_over_other_aad: bool,
    pub sign_challenge_with_other_key: bool,
    pub flip_challenge_payload: bool,
}

pub struct TestServer {
    pub signer: SoftwareSigner,
    pub other_signer: SoftwareSigner,
    pub sponsor_key: PublicKey,
    pub joiner_secret: DeviceSecret,
    pub window_ms: u32,
    pub tamper: ServerTampering,
    pub requests: Vec<Vec<u8>>,
}

impl TestServer {
    /// Verifies the sponsor's request and answers as the association server does.
    pub fn answer<R: rand_core::CryptoRng>(&mut self, bytes: &[u8], rng: &mut R) -> Vec<u8> {
        self.requests.push(bytes.to_vec());
        let p = RustCryptoProvider;
        let env = Envelope::decode(bytes).unwrap();
        let Body::Signed(body) = &env.body else {
            panic!("unsigned request")
        };
        let th = handoff_transcript(&p, &env.header.session_id);
        let payload = body
            .verify(
                &env.header,
                KeyRole::DeviceIdentity,
                &th,
                &self.sponsor_key,
                &p,
            )
            .unwrap();
        let request = VerificationRequest::decode_body(payload).unwrap();
        let session = env.header.session_id;
        let mut challenge = [0u8; 32];
        rand_core::Rng::fill_bytes(rng, &mut challenge);
        let challenge = Challenge(challenge);
        let t = self.tamper.clone();
        let data = ChallengeData {
            sponsor_id: request.sponsor_id,
            joiner_id: t.joiner_id.unwrap_or(request.joiner_id),
            nonce: request.nonce,
            commitment: t.commitment.unwrap_or(request.commitment),
            binding: t.binding.unwrap_or(request.binding),
            challenge,
        };
        let signer = if t.sign_challenge_with_other_key {
            &self.other_signer
        } else {
            &self.signer
        };
        let mut challenge_data = sign_message(
            flow2::header(MessageTag::ChallengeData, session),
            KeyRole::Association,
            &th,
            data.encode_body(),
            signer,
            &p,
        )
        .unwrap()
        .encode();
        if t.flip_challenge_payload {
            // The last byte of the payload's challenge, inside the signed bytes.
            let at = challenge_data.len() - 70;
            challenge_data[at] ^= 1;
        }
        let expected = challenge_answer(
            &p,
            &self.joiner_secret,
            &AnswerContext {
                session_id: &session,
                nonce: &request.nonce,
                sponsor_id: &request.sponsor_id,
                joiner_id: &request.joiner_id,
            },
            &challenge,
            &request.binding,
        );
        let aad = if t.seal_over_other_aad {
            [0u8; 32]
        } else {
            p.sha256(&[&challenge_data])
        };
        let mut sealed = seal_to(
            request.answer_key.suite,
            &request.answer_key.public_key,
            flow2::EXPECTED_ANSWER_INFO,
            &aad,
            &[expected.expose_secret()],
            rng,
        )
        .unwrap();
        if t.flip_sealed_answer {
            sealed.ciphertexts[0][0] ^= 1;
        }
        let vd = VerificationData {
            challenge_data,
            sealed_answer: SealedAnswer {
                encapsulated_key: sealed.encapsulated_key,
                ciphertext: sealed.ciphertexts.remove(0),
            },
            answer_window_ms: self.window_ms,
        };
        sign_message(
            flow2::header(MessageTag::VerificationData, session),
            KeyRole::Association,
            &th,
            vd.encode_body(),
            &self.signer,
            &p,
        )
        .unwrap()
        .encode()
    }
}

/// An unsigned error from the server.
pub fn server_error(request: &[u8], code: ErrorCode) -> Vec<u8> {
    let env = Envelope::decode(request).unwrap();
    let body = ErrorMessage {
        code,
        retry_after_s: 0,
        supported_versions: vec![],
    };
    Envelope::plain(
        flow2::header(MessageTag::Error, env.header.session_id),
        body.encode_body(),
    )
    .unwrap()
    .encode()
}

/// Plays the association server: the request in, the answer (or nothing: lost) out.
pub type ServerFn<'a> = dyn FnMut(&mut TestServer, &[u8], &mut ChaCha20Rng) -> Option<Vec<u8>> + 'a;

pub struct World {
    pub rng: ChaCha20Rng,
    pub pinned: PinnedKeys,
    pub joiner_id: KeyId,
    /// The sponsor's identity key (the test server knows its public half).
    pub sponsor_identity: SoftwareSigner,
    pub joiner: Joiner<MemoryPeerState>,
    pub sponsor: Sponsor<SoftwareSigner, MemoryPeerState>,
    pub server: TestServer,
    pub now: Instant,
    /// Every byte that crossed the local link, both ways.
    pub local_bytes: Vec<u8>,
    pub joiner_events: Vec<JoinerEvent>,
    pub sponsor_events: Vec<SponsorEvent>,
}

pub fn key(rng: &mut ChaCha20Rng) -> SoftwareSigner {
    SoftwareSigner::new(SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, rng).unwrap())
}

impl World {
    pub fn new(seed: u64) -> World {
        World::with_states(seed, MemoryPeerState::new(), MemoryPeerState::new())
    }

    pub fn with_states(
        seed: u64,
        joiner_state: MemoryPeerState,
        sponsor_state: MemoryPeerState,
    ) -> World {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let server_key = key(&mut rng);
        let other = key(&mut rng);
        let pinned = PinnedKeys::new(vec![PinnedKey::new(
            KeyRole::Association,
            server_key.public_key().clone(),
        )]);
        let identity = key(&mut rng);
        let sponsor_key = identity.public_key().clone();
        let secret = DeviceSecret::generate(&mut rng);
        let joiner_id = key(&mut rng).key_id();
        let joiner = Joiner::new(
            JoinerConfig::new(joiner_id, secret.clone(), pinned.clone()),
            joiner_state,
        )
        .unwrap();
        let sponsor = Sponsor::new(
            SponsorConfig::new(home(), pinned.clone()),
            identity.clone(),
            sponsor_state,
        )
        .unwrap();
        World {
            rng,
            pinned,
            joiner_id,
            sponsor_identity: identity,
            joiner,
            sponsor,
            server: TestServer {
                signer: server_key,
                other_signer: other,
                sponsor_key,
                joiner_secret: secret,
                window_ms: 30_000,
                tamper: ServerTampering::default(),
                requests: vec![],
            },
            now: Instant(1_000),
            local_bytes: vec![],
            joiner_events: vec![],
            sponsor_events: vec![],
        }
    }

    /// Replaces the joiner (another secret, a rebooted state…).
    pub fn with_joiner(mut self, config: JoinerConfig, state: MemoryPeerState) -> World {
        self.joiner = Joiner::new(config, state).unwrap();
        self
    }

    /// Replaces the sponsor (other configuration, a rebooted state…), same identity key.
    pub fn with_sponsor(mut self, config: SponsorConfig, state: MemoryPeerState) -> World {
        self.sponsor = Sponsor::new(config, self.sponsor_identity.clone(), state).unwrap();
        self
    }

    pub fn start(&mut self) {
        self.joiner.start(self.now, &mut self.rng);
        self.sponsor.accept(self.now, &mut self.rng);
    }

    /// Moves bytes both ways and answers the sponsor's server requests until nothing moves.
    pub fn run(&mut self) {
        self.run_with(&mut |server, bytes, rng| Some(server.answer(bytes, rng)));
    }

    pub fn run_with(&mut self, server: &mut ServerFn<'_>) {
        for _ in 0..50 {
            let mut moved = false;
            while let Some(bytes) = self.joiner.poll_transmit() {
                moved = true;
                self.local_bytes.extend_from_slice(&bytes);
                self.sponsor.receive_local(self.now, &bytes, &mut self.rng);
            }
            while let Some(t) = self.sponsor.poll_transmit() {
                moved = true;
                match t.destination {
                    Destination::Joiner => {
                        self.local_bytes.extend_from_slice(&t.bytes);
                        self.joiner.receive(self.now, &t.bytes, &mut self.rng);
                    }
                    Destination::AssociationServer => {
                        if let Some(answer) = server(&mut self.server, &t.bytes, &mut self.rng) {
                            self.sponsor
                                .receive_server(self.now, &answer, &mut self.rng);
                        }
                    }
                }
            }
            self.drain_events();
            if !moved {
                return;
            }
        }
        panic!("the handoff did not settle");
    }

    pub fn drain_events(&mut self) {
        while let Some(e) = self.joiner.poll_event() {
            self.joiner_events.push(e);
        }
        while let Some(e) = self.sponsor.poll_event() {
            self.sponsor_events.push(e);
        }
    }

    pub fn joined(&self) -> Option<&JoinerEvent> {
        self.joiner_events
            .iter()
            .find(|e| matches!(e, JoinerEvent::Join { .. }))
    }

    pub fn joiner_failure(&self) -> Option<&JoinerFailure> {
        self.joiner_events.iter().find_map(|e| match e {
            JoinerEvent::Failed { reason } => Some(reason),
            _ => None,
        })
    }

    pub fn sponsor_failure(&self) -> Option<&SponsorFailure> {
        self.sponsor_events.iter().find_map(|e| match e {
            SponsorEvent::Failed { reason } => Some(reason),
            _ => None,
        })
    }

    pub fn handed_over(&self) -> bool {
        self.sponsor_events
            .iter()
            .any(|e| matches!(e, SponsorEvent::HandedOver { .. }))
    }
}

/// Starts a handoff with a relay in the middle: returns the relay's channel towards the joiner
/// (not yet open: the joiner's first message is queued) and its open channel to the sponsor.
pub fn open_relay(w: &mut World) -> (LocalChannel, LocalChannel) {
    w.joiner.start(w.now, &mut w.rng);
    w.sponsor.accept(w.now, &mut w.rng);
    let to_joiner = LocalChannel::responder(&mut w.rng).unwrap();
    let (mut to_sponsor, first) = LocalChannel::initiator(&mut w.rng).unwrap();
    w.sponsor.receive_local(w.now, &first, &mut w.rng);
    let reply = w.sponsor.poll_transmit().unwrap();
    assert!(to_sponsor.receive(&reply.bytes).unwrap().opened);
    (to_joiner, to_sponsor)
}

/// Moves the joiner's queued bytes through a relay to the sponsor; the request's
/// `seen_binding` becomes `seen` when given. Whether anything moved.
pub fn relay_from_joiner(
    w: &mut World,
    to_joiner: &mut LocalChannel,
    to_sponsor: &mut LocalChannel,
    seen: Option<Option<flow2::ChannelBinding>>,
) -> bool {
    let mut moved = false;
    while let Some(bytes) = w.joiner.poll_transmit() {
        moved = true;
        let r = to_joiner.receive(&bytes).unwrap();
        if !r.reply.is_empty() {
            w.joiner.receive(w.now, &r.reply, &mut w.rng);
        }
        for m in r.messages {
            let mut env = Envelope::decode(&m).unwrap();
            if env.header.tag == MessageTag::PeerCredentialRequest
                && let Some(seen) = seen
                && let Body::Plain(b) = &env.body
            {
                let mut req = flow2::PeerCredentialRequest::decode_body(b).unwrap();
                req.seen_binding = seen;
                env.body = Body::Plain(req.encode_body());
            }
            let out = to_sponsor.seal(&env.encode()).unwrap();
            w.sponsor.receive_local(w.now, &out, &mut w.rng);
        }
    }
    moved
}

/// Starts the joiner against the test posing as its sponsor: the test's open channel, the
/// handoff's session id and the joiner's credential request.
pub fn open_as_sponsor(w: &mut World) -> (LocalChannel, SessionId, flow2::PeerCredentialRequest) {
    w.joiner.start(w.now, &mut w.rng);
    let mut channel = LocalChannel::responder(&mut w.rng).unwrap();
    let first = w.joiner.poll_transmit().unwrap();
    let r = channel.receive(&first).unwrap();
    w.joiner.receive(w.now, &r.reply, &mut w.rng);
    let req = w.joiner.poll_transmit().unwrap();
    let r = channel.receive(&req).unwrap();
    let env = Envelope::decode(&r.messages[0]).unwrap();
    let Body::Plain(b) = &env.body else {
        panic!("a plain credential request")
    };
    let request = flow2::PeerCredentialRequest::decode_body(b).unwrap();
    (channel, env.header.session_id, request)
}
