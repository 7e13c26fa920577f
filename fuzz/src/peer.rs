//! The fixtures of the flow-2 targets: which byte picks which decoder in `flow2_decode`, and
//! the world of `peer_roles`: a [`Joiner`] after `start` and a [`Sponsor`] after `accept`,
//! each with the other end of its local channel held by the fuzz input.
//!
//! A `peer_roles` input is a list of chunks `[op, len_hi, len_lo, bytes…]` (a short last chunk
//! takes what is left). `op % 10`: 0 raw bytes into the joiner's stream, 1 a plaintext sealed
//! into the joiner's channel, 2 raw bytes into the sponsor's stream, 3 a plaintext sealed into
//! the sponsor's channel, 4 an answer from the association server to the sponsor, 5 the clock
//! moves on by the chunk's first four bytes (big-endian milliseconds) and both time out; the
//! owner acts: 6 on the joiner, 7 on the sponsor, `confirm_code` (the codes match unless the
//! chunk's first byte is 0), 8 on the joiner, 9 on the sponsor, `enter_code` with what
//! [`typed`] makes of the chunk. Both roles check signatures with `InsecureFuzzingProvider`, so
//! a mutated signed message still reaches the checks behind the signature; every other check
//! is the real one.
//!
//! Both roles allow every fallback with a display and a keypad, and the joiner has a label
//! record (of [`LABEL_CODE`]), so the input can run each fallback from either side. The world
//! records where an owner's consent was skipped: a role that hands over or joins in a fallback
//! whose last prompt asked its owner to confirm or to type a code, without that answer.

use std::sync::LazyLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::flow2::{
    self, AnswerContext, Challenge, ChallengeData, ChallengeResponse, ChannelBinding,
    CommitmentKey, CredentialHandover, Fallback, FallbackHandover, FallbackStart, HomeCredential,
    OwnerDecision, PakeReply, PakeShare, PeerCredentialRequest, SasNonce, SasReveal, SealedAnswer,
    VerificationData, VerificationRequest, challenge_answer, credential_commitment,
    handoff_transcript, sas_commitment,
};
use zerotouch_core::{
    Body, CryptoProvider, DeviceSecret, Envelope, ErrorCode, ErrorMessage, Flow,
    InsecureFuzzingProvider, Instant, KeyId, KeyRole, Message, MessageTag, Nonce, Passphrase,
    PinnedKey, PinnedKeys, RustCryptoProvider, SessionId, SignatureAlgorithm, Signer, SigningKey,
    SoftwareSigner, seal_to, sign_message,
};
use zerotouch_peer::{
    Destination, Joiner, JoinerConfig, JoinerEvent, LabelRecord, LocalChannel, MemoryPeerState,
    OwnerInterface, OwnerPrompt, PairingCode, Sponsor, SponsorConfig, SponsorEvent,
};

use spake2plus::{ConfirmV, Context, Prover, ShareP, ShareV, Verifier};
use zerotouch_peer::pake::{CodeKind, PAKE_CONTEXT_LABEL, prover_secret};

use crate::{Seed, expect, fixed_signer, seed};

/// The flow-2 tags in number order, the automatic handoff's then the fallbacks': the selector
/// byte `b` of a `flow2_decode` input picks the decoder of `flow2_tags()[b % len]`.
pub fn flow2_tags() -> Vec<MessageTag> {
    MessageTag::ALL
        .into_iter()
        .filter(|t| t.flow() == Some(Flow::PeerHandoff))
        .collect()
}

/// The selector byte of `tag` in `flow2_decode`, if it is a flow-2 body.
pub fn flow2_selector(tag: MessageTag) -> Option<u8> {
    flow2_tags()
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
/// The code printed on the joiner's label (fuzzing only): the joiner holds its record.
pub const LABEL_CODE: &str = "4711 0815";
/// The code the fuzz input's side shows in a typed-code fallback (b), for its seeds.
pub const FUZZ_CODE: &str = "2468 1357";

/// What the owner types for an `enter_code` chunk: an empty chunk types [`FUZZ_CODE`], the
/// single byte 0 types [`LABEL_CODE`], anything else is typed as it is (lossy UTF-8).
pub fn typed(chunk: &[u8]) -> String {
    match chunk {
        [] => FUZZ_CODE.to_owned(),
        [0] => LABEL_CODE.to_owned(),
        _ => String::from_utf8_lossy(chunk).into_owned(),
    }
}

/// The joiner's label record, of [`LABEL_CODE`].
pub fn label_record() -> LabelRecord {
    let made = PairingCode::parse(LABEL_CODE).and_then(|c| LabelRecord::from_code(&c, &JOINER_ID));
    match made {
        Ok(r) => r,
        Err(e) => panic!("label record: {e:?}"),
    }
}

/// What one role's owner was last asked, and whether it answered.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnerLog {
    /// The last prompt asked for an answer on this device: a confirmation or a typed code.
    pub asked: bool,
    /// The owner confirmed the codes match, or typed a code that was taken, since.
    pub answered: bool,
}

impl OwnerLog {
    fn prompt(&mut self, prompt: &OwnerPrompt) {
        self.asked = matches!(
            prompt,
            OwnerPrompt::CompareCode { .. }
                | OwnerPrompt::EnterShownCode
                | OwnerPrompt::EnterLabelCode
        );
        self.answered = false;
    }

    /// Whether handing over (or joining) now skips the owner.
    fn skipped(&self) -> bool {
        self.asked && !self.answered
    }
}

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
    /// Every byte string the sponsor wrote into the joiner's stream, as written (sealed).
    pub sponsor_wire: Vec<Vec<u8>>,
    /// The joiner's events.
    pub joiner_events: Vec<JoinerEvent>,
    /// The sponsor's events.
    pub sponsor_events: Vec<SponsorEvent>,
    /// The sponsor's randomness (seeded: every run is the same).
    pub rng: ChaCha20Rng,
    /// Both roles' clock.
    pub now: Instant,
    /// The joiner's owner: last asked, and answered.
    pub joiner_owner: OwnerLog,
    /// The sponsor's owner: last asked, and answered.
    pub sponsor_owner: OwnerLog,
    /// Rules broken: a role handed over or joined without the answer its owner was asked for.
    pub violations: Vec<&'static str>,
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
        // And the label record's 10,000 PBKDF2 iterations.
        static KEYS: LazyLock<(PinnedKeys, SoftwareSigner, LabelRecord)> = LazyLock::new(|| {
            let association = fixed_signer(SignatureAlgorithm::EcdsaP256Sha256);
            let pinned = PinnedKeys::new(vec![PinnedKey::new(
                KeyRole::Association,
                association.public_key().clone(),
            )]);
            (pinned, sponsor_signer(), label_record())
        });
        let (pinned, identity) = (KEYS.0.clone(), KEYS.1.clone());
        let mut rng = ChaCha20Rng::from_seed([0x77; 32]);
        let mut config =
            JoinerConfig::new(JOINER_ID, DeviceSecret::new(DEVICE_SECRET), pinned.clone());
        config.interface = OwnerInterface::FULL;
        config.fallbacks = Fallback::ALL.to_vec();
        config.label_record = Some(KEYS.2.clone());
        let mut sponsor_config = SponsorConfig::new(home_credential(), pinned);
        sponsor_config.interface = OwnerInterface::FULL;
        sponsor_config.fallbacks = Fallback::ALL.to_vec();
        let provider = InsecureFuzzingProvider;
        let built = Joiner::with_provider(config, MemoryPeerState::new(), provider).and_then(|j| {
            Sponsor::with_provider(sponsor_config, identity, MemoryPeerState::new(), provider)
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
            sponsor_wire: Vec::new(),
            joiner_events: Vec::new(),
            sponsor_events: Vec::new(),
            rng,
            now: PEER_START,
            joiner_owner: OwnerLog::default(),
            sponsor_owner: OwnerLog::default(),
            violations: Vec::new(),
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

    /// Applies one chunk.
    pub fn step(&mut self, op: u8, bytes: &[u8]) {
        let matches = bytes.first() != Some(&0);
        match op % 10 {
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
            5 => {
                let ms = bytes
                    .iter()
                    .take(4)
                    .fold(0u64, |a, b| (a << 8) | u64::from(*b));
                self.now = Instant(self.now.0.saturating_add(ms));
                self.joiner.handle_timeout(self.now);
                self.sponsor.handle_timeout(self.now, &mut self.rng);
            }
            6 => {
                let taken = self.joiner.confirm_code(self.now, matches).is_ok();
                self.joiner_owner.answered |= taken && matches;
            }
            7 => {
                let taken = self.sponsor.confirm_code(self.now, matches).is_ok();
                self.sponsor_owner.answered |= taken && matches;
            }
            8 => {
                let code = typed(bytes);
                let taken = self.joiner.enter_code(self.now, &code, &mut self.rng);
                self.joiner_owner.answered |= taken.is_ok();
            }
            _ => {
                let code = typed(bytes);
                let taken = self.sponsor.enter_code(self.now, &code, &mut self.rng);
                self.sponsor_owner.answered |= taken.is_ok();
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
                    self.sponsor_wire.push(t.bytes);
                }
                Destination::AssociationServer => self.to_server.push(t.bytes),
            }
        }
        while let Some(event) = self.joiner.poll_event() {
            match &event {
                JoinerEvent::OwnerAction { prompt, .. } => self.joiner_owner.prompt(prompt),
                JoinerEvent::Join { .. } if self.joiner_owner.skipped() => self
                    .violations
                    .push("the joiner joined without its owner's answer"),
                _ => {}
            }
            self.joiner_events.push(event);
        }
        while let Some(event) = self.sponsor.poll_event() {
            match &event {
                SponsorEvent::OwnerAction { prompt, .. } => self.sponsor_owner.prompt(prompt),
                SponsorEvent::HandedOver { .. } if self.sponsor_owner.skipped() => self
                    .violations
                    .push("the sponsor handed over without its owner's answer"),
                _ => {}
            }
            self.sponsor_events.push(event);
        }
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

    // Every fallback, run to its end from either side, and the server unreachable.
    for fallback in Fallback::ALL {
        let (input, said) = joiner_fallback(fallback);
        out.push(seed(
            "peer_roles",
            format!("api-joiner-fallback-{fallback:?}"),
            input,
        ));
        bodies.extend(said);
        let (input, said) = sponsor_fallback(fallback);
        out.push(seed(
            "peer_roles",
            format!("api-sponsor-fallback-{fallback:?}"),
            input,
        ));
        bodies.extend(said);
    }
    out.push(seed(
        "peer_roles",
        "api-sponsor-unreachable",
        sponsor_unreachable(),
    ));

    // Raw stream bytes and a clock that runs out.
    out.push(seed(
        "peer_roles",
        "api-raw-frames",
        [chunk(0, &[0, 3, 1, 2, 3]), chunk(2, &[0, 32, 9])].concat(),
    ));
    out.push(seed("peer_roles", "api-timeout", chunk(5, &[0, 1, 0, 0])));

    for (i, (tag, body)) in bodies.into_iter().enumerate() {
        if let Some(selector) = flow2_selector(tag) {
            let name = format!("api-{i}-{tag:?}");
            out.push(seed("flow2_decode", name, [vec![selector], body].concat()));
        }
    }
    out
}

/// A `peer_roles` input built chunk by chunk on a world of its own, so that each chunk can
/// answer what the roles said before it. The world is the same every run, so the input
/// replays.
struct Script {
    world: PeerWorld,
    input: Vec<u8>,
}

impl Script {
    fn new() -> Self {
        Script {
            world: PeerWorld::new(),
            input: Vec::new(),
        }
    }

    fn run(&mut self, op: u8, bytes: &[u8]) {
        let c = chunk(op, bytes);
        self.world.apply(&c);
        self.input.extend(c);
    }

    /// A plain message of `session` into a channel: op 1 the joiner's, op 3 the sponsor's.
    fn send(&mut self, op: u8, session: SessionId, tag: MessageTag, body: Vec<u8>) {
        self.run(op, &plain(tag, session, body));
    }

    /// The plain bodies both roles said, with their tags.
    fn said(&self) -> Vec<(MessageTag, Vec<u8>)> {
        let w = &self.world;
        w.joiner_said
            .iter()
            .chain(&w.sponsor_said)
            .filter_map(|m| match Envelope::decode(m) {
                Ok(Envelope {
                    header,
                    body: Body::Plain(b),
                }) => Some((header.tag, b)),
                _ => None,
            })
            .collect()
    }

    /// The body of the last `tag` message in `said`.
    fn last<M: Message>(said: &[Vec<u8>], tag: MessageTag) -> M {
        let body = said.iter().rev().find_map(|m| match Envelope::decode(m) {
            Ok(Envelope {
                header,
                body: Body::Plain(b),
            }) if header.tag == tag => Some(b),
            _ => None,
        });
        expect(
            M::decode_body(&expect(body.ok_or("not said"), "message")),
            "body",
        )
    }
}

/// The code the last `ShowCode` prompt showed.
fn shown_code<'a>(prompts: impl DoubleEndedIterator<Item = &'a OwnerPrompt>) -> PairingCode {
    let shown = prompts.rev().find_map(|p| match p {
        OwnerPrompt::ShowCode { code } => Some(code.clone()),
        _ => None,
    });
    expect(shown.ok_or("no code shown"), "shown code")
}

fn code_of(text: &str) -> PairingCode {
    expect(PairingCode::parse(text), "code")
}

/// The SPAKE2+ context of a fallback attempt, as `zerotouch_peer::pake` makes it.
fn pake_context(fallback: Fallback, session: &SessionId, binding: &ChannelBinding) -> Vec<u8> {
    [
        PAKE_CONTEXT_LABEL,
        &[fallback.to_u8()],
        &session.0,
        &binding.0,
    ]
    .concat()
}

fn context<'a>(bytes: &'a [u8], sponsor_id: &'a KeyId) -> Context<'a> {
    Context {
        context: bytes,
        prover_id: &sponsor_id.0,
        verifier_id: &JOINER_ID.0,
    }
}

/// The joiner through `fallback` to its credential, the input playing the sponsor (and the
/// joiner's owner). Also what both said.
fn joiner_fallback(fallback: Fallback) -> (Vec<u8>, Vec<(MessageTag, Vec<u8>)>) {
    let mut s = Script::new();
    let session = decoded(&s.world.joiner_said[0]).header.session_id;
    let binding = expect(s.world.to_joiner.binding().ok_or("no binding"), "binding");
    let sponsor_id = sponsor_signer().key_id();
    let sas_nonce = [0x5a; flow2::fallback::SAS_NONCE_LEN];
    let start = FallbackStart {
        fallback,
        sponsor_id,
        sas_commitment: (fallback == Fallback::CompareCodes)
            .then(|| sas_commitment(&RustCryptoProvider, &binding, &sas_nonce)),
    };
    s.send(1, session, MessageTag::FallbackStart, start.encode_body());
    let confirm = if fallback == Fallback::CompareCodes {
        let reveal = SasReveal { nonce: sas_nonce };
        s.send(1, session, MessageTag::SasReveal, reveal.encode_body());
        // The joiner's owner sees the same code on both.
        s.run(6, &[]);
        None
    } else {
        let (code, kind) = match fallback {
            Fallback::JoinerShowsCode => (
                shown_code(s.world.joiner_events.iter().filter_map(|e| match e {
                    JoinerEvent::OwnerAction { prompt, .. } => Some(prompt),
                    _ => None,
                })),
                CodeKind::Session,
            ),
            Fallback::LabelCode => (code_of(LABEL_CODE), CodeKind::Label),
            _ => (code_of(FUZZ_CODE), CodeKind::Session),
        };
        let secret = expect(prover_secret(&code, &JOINER_ID, kind), "prover secret");
        let bytes = pake_context(fallback, &session, &binding);
        let mut rng = ChaCha20Rng::from_seed([0x79; 32]);
        let (prover, share) = Prover::start(&secret, &context(&bytes, &sponsor_id), &mut rng);
        let share = PakeShare {
            share: *share.as_bytes(),
        };
        s.send(1, session, MessageTag::PakeShare, share.encode_body());
        if fallback == Fallback::SponsorShowsCode {
            // The joiner's owner types the code the sponsor shows.
            s.run(8, &[]);
        }
        let reply: PakeReply = Script::last(&s.world.joiner_said, MessageTag::PakeReply);
        let confirm_v = expect(ConfirmV::from_bytes(&reply.confirm), "confirmV");
        let checked = ShareV::from_bytes(&reply.share)
            .and_then(|share_v| prover.receive(&share_v))
            .and_then(|confirming| confirming.finish(&confirm_v));
        let (confirm_p, _) = expect(checked, "the joiner's PAKE reply");
        Some(*confirm_p.as_bytes())
    };
    let handover = FallbackHandover {
        confirm,
        credential: home_credential(),
    };
    s.send(
        1,
        session,
        MessageTag::FallbackHandover,
        handover.encode_body(),
    );
    let mut check = PeerWorld::new();
    check.apply(&s.input);
    assert!(
        check.joiner.is_finished() && check.violations.is_empty(),
        "joiner {fallback:?} seed: {:?}",
        check.joiner_events
    );
    let said = s.said();
    (s.input, said)
}

/// The sponsor through `fallback` to its handover, the input playing a joiner that declared
/// only `fallback`, the server that says the two are not associated, and the sponsor's owner.
/// Also what both said.
fn sponsor_fallback(fallback: Fallback) -> (Vec<u8>, Vec<(MessageTag, Vec<u8>)>) {
    let mut s = Script::new();
    let session = SessionId([0x6f; 16]);
    let binding = expect(s.world.to_sponsor.binding().ok_or("no binding"), "binding");
    let asked = PeerCredentialRequest {
        joiner_id: JOINER_ID,
        nonce: Nonce([0x4f; 16]),
        seen_binding: Some(binding),
        fallbacks: vec![fallback],
    };
    let tag = MessageTag::PeerCredentialRequest;
    s.send(3, session, tag, asked.encode_body());
    s.run(4, &error(session, ErrorCode::NotAssociated));
    if fallback == Fallback::CompareCodes {
        let nonce = SasNonce { nonce: [0x6a; 16] };
        s.send(3, session, MessageTag::SasNonce, nonce.encode_body());
        // The sponsor's owner sees the same code on both, and so does the joiner's.
        s.run(7, &[]);
        let decision = OwnerDecision { confirmed: true };
        s.send(
            3,
            session,
            MessageTag::OwnerDecision,
            decision.encode_body(),
        );
    } else {
        let (code, kind) = match fallback {
            Fallback::JoinerShowsCode => {
                // The sponsor's owner types the code the joiner shows.
                s.run(9, &[]);
                (code_of(FUZZ_CODE), CodeKind::Session)
            }
            Fallback::LabelCode => {
                // The sponsor's owner types the joiner's label code.
                s.run(9, &[0]);
                (code_of(LABEL_CODE), CodeKind::Label)
            }
            _ => (
                shown_code(s.world.sponsor_events.iter().filter_map(|e| match e {
                    SponsorEvent::OwnerAction { prompt, .. } => Some(prompt),
                    _ => None,
                })),
                CodeKind::Session,
            ),
        };
        let share: PakeShare = Script::last(&s.world.sponsor_said, MessageTag::PakeShare);
        let secret = expect(prover_secret(&code, &JOINER_ID, kind), "prover secret");
        let bytes = pake_context(fallback, &session, &binding);
        let sponsor_id = sponsor_signer().key_id();
        let mut rng = ChaCha20Rng::from_seed([0x7a; 32]);
        let record = secret.verifier_record();
        let (verifier, share_v) = Verifier::start(&record, &context(&bytes, &sponsor_id), &mut rng);
        let answered = ShareP::from_bytes(&share.share).and_then(|p| verifier.receive(&p));
        let (_, confirm_v) = expect(answered, "the sponsor's PAKE share");
        let reply = PakeReply {
            share: *share_v.as_bytes(),
            confirm: *confirm_v.as_bytes(),
        };
        s.send(3, session, MessageTag::PakeReply, reply.encode_body());
    }
    let mut check = PeerWorld::new();
    check.apply(&s.input);
    assert!(
        check.sponsor.is_finished() && check.violations.is_empty(),
        "sponsor {fallback:?} seed: {:?}",
        check.sponsor_events
    );
    let said = s.said();
    (s.input, said)
}

/// The sponsor's request unanswered through every retry: compared codes (a) begin.
fn sponsor_unreachable() -> Vec<u8> {
    let mut s = Script::new();
    let session = SessionId([0x7f; 16]);
    let asked = PeerCredentialRequest {
        joiner_id: JOINER_ID,
        nonce: Nonce([0x5f; 16]),
        seen_binding: s.world.to_sponsor.binding(),
        fallbacks: Fallback::ALL.to_vec(),
    };
    let tag = MessageTag::PeerCredentialRequest;
    s.send(3, session, tag, asked.encode_body());
    // 5 s per try, three retransmissions: the fourth deadline gives up on the server.
    for _ in 0..4 {
        s.run(5, &5_001u32.to_be_bytes());
    }
    let started = s.world.sponsor_events.iter().any(|e| {
        matches!(
            e,
            SponsorEvent::FallbackStarted {
                fallback: Fallback::CompareCodes
            }
        )
    });
    assert!(started, "unreachable seed: {:?}", s.world.sponsor_events);
    s.input
}
