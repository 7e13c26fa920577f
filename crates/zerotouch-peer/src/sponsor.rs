//! The sponsor: an already-joined device handing the home credential to a joiner the
//! association server vouches for.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::CryptoRng;
use spake2plus::{ConfirmV, Prover, ShareV};
use zerotouch_core::flow2::{
    self, AnswerKey, ChallengeAnswer, ChallengeData, ChallengeResponse, ChannelBinding, Commitment,
    CommitmentKey, CredentialHandover, Fallback, FallbackHandover, FallbackStart, HomeCredential,
    OwnerDecision, PakeReply, PakeShare, PeerCredentialRequest, SasNonce, SasReveal,
    VerificationData, VerificationRequest, credential_commitment, handoff_transcript,
    sas_commitment, short_auth_string,
};
use zerotouch_core::{
    Body, CipherSuite, CryptoProvider, Envelope, ErrorCode, ErrorMessage, Flow, Header, Instant,
    KeyId, KeyRole, Message, MessageTag, Nonce, PendingSignature, PinnedKeys, RustCryptoProvider,
    SessionId, SessionKeyPair, Signer,
};

use crate::PeerError;
use crate::channel::LocalChannel;
use crate::event::{SponsorEvent, SponsorFailure};
use crate::owner::{OwnerInterface, OwnerPrompt, Side, usable};
use crate::pake::{CodeKind, PairingCode, PakeContext, PakeSuite, prover_secret};
use crate::state::{AttemptLimit, Counter, PeerState, attempt_succeeded, begin_attempt, exhausted};

/// Longest answer window the sponsor grants, whatever the server says.
const MAX_ANSWER_WINDOW: Duration = Duration::from_secs(120);

/// What the sponsor's firmware configures.
#[derive(Debug, Clone)]
pub struct SponsorConfig {
    /// The home network credential the sponsor hands over.
    pub credential: HomeCredential,
    /// The association server's keys, pinned in firmware (role [`KeyRole::Association`]).
    pub association_keys: PinnedKeys,
    /// The suite of the per-handoff key the server seals the expected answer to.
    pub answer_suite: CipherSuite,
    /// How long the sponsor waits for the joiner's request after accepting a stream.
    pub request_timeout: Duration,
    /// How long the sponsor waits for the server before sending the request again.
    pub server_timeout: Duration,
    /// Retransmissions to the server before giving up (identical bytes: the server answers
    /// a retransmission with its stored answer).
    pub server_retries: u32,
    /// Challenges forwarded without a completed handoff before the sponsor stops.
    pub limit: AttemptLimit,
    /// What the device can show and take from the owner.
    pub interface: OwnerInterface,
    /// The fallbacks firmware allows, in its order: when the association server is
    /// unreachable or says the devices are not associated, the first of these that the
    /// interface can carry out and the joiner declared runs.
    pub fallbacks: Vec<Fallback>,
    /// Fallback attempts (each compared or typed code) without a completed handoff.
    pub fallback_limit: AttemptLimit,
    /// How long one fallback attempt may wait for the owner and the joiner.
    pub owner_timeout: Duration,
}

impl SponsorConfig {
    /// A configuration with the defaults: P-256 answer key, 30 s for the request, 5 s per
    /// server try with 3 retransmissions, 5 forwarded challenges; no fallbacks, and once
    /// allowed, 5 attempts of 120 s each.
    pub fn new(credential: HomeCredential, association_keys: PinnedKeys) -> Self {
        SponsorConfig {
            credential,
            association_keys,
            answer_suite: CipherSuite::P256_SHA256_CHACHA20POLY1305,
            request_timeout: Duration::from_secs(30),
            server_timeout: Duration::from_secs(5),
            server_retries: 3,
            limit: AttemptLimit { max_attempts: 5 },
            interface: OwnerInterface::HEADLESS,
            fallbacks: Vec::new(),
            fallback_limit: AttemptLimit { max_attempts: 5 },
            owner_timeout: Duration::from_secs(120),
        }
    }
}

/// Where a sponsor's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Into the local stream to the joiner.
    Joiner,
    /// To the association server (HTTPS with the sponsor's client certificate).
    AssociationServer,
}

/// Bytes to send, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SponsorTransmit {
    /// Where.
    pub destination: Destination,
    /// What.
    pub bytes: Vec<u8>,
}

/// What one handoff has fixed once the joiner asked.
struct Request {
    session_id: SessionId,
    joiner_id: KeyId,
    nonce: Nonce,
    binding: ChannelBinding,
    commitment: Commitment,
    commitment_key: CommitmentKey,
    answer_keys: SessionKeyPair,
    /// The fallbacks the joiner declared.
    fallbacks: Vec<Fallback>,
}

enum Phase {
    Idle,
    AwaitingRequest {
        deadline: Instant,
    },
    AwaitingVerification {
        request: Request,
        bytes: Vec<u8>,
        deadline: Instant,
        retries_left: u32,
    },
    AwaitingAnswer {
        request: Request,
        expected: ChallengeAnswer,
        deadline: Instant,
    },
    Fallback(FallbackRun),
    Finished,
}

/// One attempt of a fallback.
struct FallbackRun {
    session_id: SessionId,
    joiner_id: KeyId,
    fallback: Fallback,
    deadline: Instant,
    step: FallbackStep,
}

enum FallbackStep {
    /// (a) Committed to `nonce`; waiting for the joiner's.
    AwaitingSasNonce {
        nonce: [u8; flow2::fallback::SAS_NONCE_LEN],
    },
    /// (a) Both codes shown; the credential goes once the owner confirmed on both.
    Comparing {
        owner_confirmed: bool,
        joiner_confirmed: bool,
    },
    /// (b) shown by the joiner, (c): waiting for the owner to type the code.
    AwaitingCode,
    /// (b), (c): `shareP` sent; waiting for `shareV` and `confirmV`.
    AwaitingReply {
        /// Boxed: a PAKE session is a few hundred bytes the other steps need not carry.
        prover: alloc::boxed::Box<Prover<PakeSuite>>,
    },
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::AwaitingRequest { .. } => "awaiting request",
            Phase::AwaitingVerification { .. } => "awaiting verification",
            Phase::AwaitingAnswer { .. } => "awaiting answer",
            Phase::Fallback(_) => "fallback",
            Phase::Finished => "finished",
        }
    }
}

/// The sponsor role, sans-IO. [`accept`](Self::accept) a stream from a joiner, feed its bytes
/// to [`receive_local`](Self::receive_local) and the server's answers to
/// [`receive_server`](Self::receive_server), send what [`poll_transmit`](Self::poll_transmit)
/// returns where it says, act on [`poll_event`](Self::poll_event), and call
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout). One
/// handoff at a time.
///
/// The verification request is signed with the device's identity key through `S`.
pub struct Sponsor<S: Signer, St: PeerState, P: CryptoProvider = RustCryptoProvider> {
    config: SponsorConfig,
    signer: S,
    state: St,
    provider: P,
    channel: Option<LocalChannel>,
    phase: Phase,
    transmits: VecDeque<SponsorTransmit>,
    events: VecDeque<SponsorEvent>,
}

impl<S: Signer, St: PeerState> Sponsor<S, St, RustCryptoProvider> {
    /// A sponsor with the RustCrypto provider.
    pub fn new(config: SponsorConfig, signer: S, state: St) -> Result<Self, PeerError> {
        Sponsor::with_provider(config, signer, state, RustCryptoProvider)
    }
}

impl<S: Signer, St: PeerState, P: CryptoProvider> Sponsor<S, St, P> {
    /// A sponsor whose hashes, signatures and checks go through `provider`.
    pub fn with_provider(
        config: SponsorConfig,
        signer: S,
        state: St,
        provider: P,
    ) -> Result<Self, PeerError> {
        if config
            .association_keys
            .trusted_key_ids(KeyRole::Association)
            .is_empty()
        {
            return Err(PeerError::InvalidConfig("no pinned association key"));
        }
        if !SessionKeyPair::implements(config.answer_suite) {
            return Err(PeerError::InvalidConfig(
                "answer suite not implemented by this build",
            ));
        }
        Ok(Sponsor {
            config,
            signer,
            state,
            provider,
            channel: None,
            phase: Phase::Idle,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The sponsor's device key id: the id the association server knows it by.
    pub fn sponsor_id(&self) -> KeyId {
        self.signer.key_id()
    }

    /// Accepts a new stream from a joiner. Any handoff in progress is abandoned.
    pub fn accept<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        self.channel = None;
        self.transmits.clear();
        match LocalChannel::responder(rng) {
            Ok(c) => {
                self.channel = Some(c);
                self.phase = Phase::AwaitingRequest {
                    deadline: now.saturating_add(self.config.request_timeout),
                };
            }
            Err(e) => self.fail(SponsorFailure::Channel(e), None),
        }
    }

    /// Bytes the local stream delivered, in any chunking.
    pub fn receive_local<R: CryptoRng>(&mut self, now: Instant, bytes: &[u8], rng: &mut R) {
        let Some(channel) = self.channel.as_mut() else {
            return;
        };
        let received = match channel.receive(bytes) {
            Ok(r) => r,
            Err(e) => return self.fail(SponsorFailure::Channel(e), None),
        };
        if !received.reply.is_empty() {
            self.transmit(Destination::Joiner, received.reply);
        }
        if received.opened
            && let Some(binding) = self.binding()
        {
            self.events.push_back(SponsorEvent::ChannelOpen { binding });
        }
        for message in received.messages {
            if self.channel.is_none() {
                break;
            }
            self.handle_local(now, &message, rng);
        }
    }

    fn binding(&self) -> Option<ChannelBinding> {
        self.channel.as_ref().and_then(LocalChannel::binding)
    }

    fn handle_local<R: CryptoRng>(&mut self, now: Instant, bytes: &[u8], rng: &mut R) {
        let envelope = match Envelope::decode(bytes) {
            Ok(e) => e,
            Err(e) => return self.fail(SponsorFailure::Malformed(e), None),
        };
        let session = envelope.header.session_id;
        if envelope.header.flow != Flow::PeerHandoff {
            return self.fail(SponsorFailure::Unexpected, Some(session));
        }
        match (&self.phase, envelope.header.tag, &envelope.body) {
            (Phase::AwaitingRequest { .. }, MessageTag::PeerCredentialRequest, Body::Plain(b)) => {
                match PeerCredentialRequest::decode_body(b) {
                    Ok(request) => self.request_verification(now, session, &request, rng),
                    Err(e) => self.fail(SponsorFailure::Malformed(e), Some(session)),
                }
            }
            (
                Phase::AwaitingAnswer { request, .. },
                MessageTag::ChallengeResponse,
                Body::Plain(b),
            ) if request.session_id == session => match ChallengeResponse::decode_body(b) {
                Ok(response) => self.check_answer(response),
                Err(e) => self.fail(SponsorFailure::Malformed(e), Some(session)),
            },
            (Phase::Fallback(run), MessageTag::Error, Body::Plain(_))
                if run.session_id == session =>
            {
                self.fail(SponsorFailure::JoinerGaveUp, Some(session));
            }
            (Phase::Fallback(run), tag, Body::Plain(b)) if run.session_id == session => {
                self.handle_fallback(now, tag, b, rng);
            }
            _ => self.fail(SponsorFailure::Unexpected, Some(session)),
        }
    }

    /// Builds and signs the verification request. The binding in it is the sponsor's own
    /// channel's; the joiner's `seen_binding` only lets the sponsor stop early.
    fn request_verification<R: CryptoRng>(
        &mut self,
        now: Instant,
        session_id: SessionId,
        asked: &PeerCredentialRequest,
        rng: &mut R,
    ) {
        let Some(binding) = self.binding() else {
            return self.fail(SponsorFailure::Unexpected, Some(session_id));
        };
        if asked.seen_binding.is_some_and(|seen| seen != binding) {
            return self.fail(SponsorFailure::BindingMismatch, Some(session_id));
        }
        let answer_keys = match SessionKeyPair::generate(self.config.answer_suite, rng) {
            Ok(k) => k,
            Err(e) => return self.fail(SponsorFailure::SealedAnswer(e), Some(session_id)),
        };
        let commitment_key = CommitmentKey::generate(rng);
        let commitment = credential_commitment(
            &self.provider,
            &commitment_key,
            &session_id,
            &asked.nonce,
            &asked.joiner_id,
            &self.config.credential,
        );
        let body = VerificationRequest {
            sponsor_id: self.signer.key_id(),
            joiner_id: asked.joiner_id,
            nonce: asked.nonce,
            commitment,
            binding,
            answer_key: AnswerKey {
                suite: answer_keys.suite(),
                public_key: answer_keys.public_key().to_vec(),
            },
        };
        let bytes = match self.sign(session_id, body.encode_body()) {
            Ok(e) => e.encode(),
            Err(e) => return self.fail(SponsorFailure::Signer(e), Some(session_id)),
        };
        self.transmit(Destination::AssociationServer, bytes.clone());
        self.events.push_back(SponsorEvent::CredentialRequested {
            joiner_id: asked.joiner_id,
        });
        self.phase = Phase::AwaitingVerification {
            request: Request {
                session_id,
                joiner_id: asked.joiner_id,
                nonce: asked.nonce,
                binding,
                commitment,
                commitment_key,
                answer_keys,
                fallbacks: asked.fallbacks.clone(),
            },
            bytes,
            deadline: now.saturating_add(self.config.server_timeout),
            retries_left: self.config.server_retries,
        };
    }

    fn sign(
        &self,
        session_id: SessionId,
        payload: Vec<u8>,
    ) -> Result<Envelope, zerotouch_core::SignatureError> {
        let th = handoff_transcript(&self.provider, &session_id);
        let pending = PendingSignature::new(
            flow2::header(MessageTag::VerificationRequest, session_id),
            KeyRole::DeviceIdentity,
            &th,
            payload,
            self.signer.key_id(),
            self.signer.algorithm(),
            &self.provider,
        )
        .map_err(|_| zerotouch_core::SignatureError::RoleNotForTag)?;
        let signature = self.provider.sign(&self.signer, &pending.request().tbs)?;
        pending.complete(signature, self.signer.public_key(), &self.provider)
    }

    /// The association server's answer to the verification request. `rng` serves a fallback
    /// the answer may start.
    pub fn receive_server<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        bytes: &[u8],
        rng: &mut R,
    ) {
        let Phase::AwaitingVerification { request, .. } = &self.phase else {
            return;
        };
        let session = request.session_id;
        let envelope = match Envelope::decode(bytes) {
            Ok(e) => e,
            Err(e) => return self.fail(SponsorFailure::Malformed(e), Some(session)),
        };
        if envelope.header.flow != Flow::PeerHandoff || envelope.header.session_id != session {
            return self.fail(SponsorFailure::WrongVerification, Some(session));
        }
        match (envelope.header.tag, &envelope.body) {
            (MessageTag::Error, Body::Plain(b)) => {
                let code = match ErrorMessage::decode_body(b) {
                    Ok(m) => m.code,
                    Err(e) => return self.fail(SponsorFailure::Malformed(e), Some(session)),
                };
                self.events.push_back(SponsorEvent::ServerRefused { code });
                if code == ErrorCode::NotAssociated && self.offer_fallback(now, rng) {
                    return;
                }
                let to_joiner = if code == ErrorCode::NotAssociated {
                    ErrorCode::NotAssociated
                } else {
                    ErrorCode::HandoffUnavailable
                };
                self.fail_with(SponsorFailure::ServerRefused, Some(session), to_joiner);
            }
            (MessageTag::VerificationData, Body::Signed(body)) => {
                let th = handoff_transcript(&self.provider, &session);
                let checked = body
                    .verify_trusted(
                        &envelope.header,
                        KeyRole::Association,
                        &th,
                        &self.config.association_keys,
                        &self.provider,
                    )
                    .map_err(SponsorFailure::Signature)
                    .and_then(|p| {
                        VerificationData::decode_body(p).map_err(SponsorFailure::Malformed)
                    })
                    .and_then(|data| {
                        self.check_verification(&envelope.header, &data)
                            .map(|e| (data, e))
                    });
                match checked {
                    Ok((data, expected)) => self.forward_challenge(now, data, expected),
                    Err(reason) => self.fail(reason, Some(session)),
                }
            }
            _ => self.fail(SponsorFailure::Unexpected, Some(session)),
        }
    }

    /// The challenge data must be signed too and be about exactly this request; the expected
    /// answer must open under this handoff's key, bound to that challenge data.
    fn check_verification(
        &self,
        outer: &Header,
        data: &VerificationData,
    ) -> Result<ChallengeAnswer, SponsorFailure> {
        let Phase::AwaitingVerification { request, .. } = &self.phase else {
            return Err(SponsorFailure::Unexpected);
        };
        let inner = Envelope::decode(&data.challenge_data).map_err(SponsorFailure::Malformed)?;
        if inner.header.tag != MessageTag::ChallengeData
            || inner.header.session_id != outer.session_id
        {
            return Err(SponsorFailure::WrongVerification);
        }
        let Body::Signed(body) = &inner.body else {
            return Err(SponsorFailure::WrongVerification);
        };
        let th = handoff_transcript(&self.provider, &request.session_id);
        let payload = body
            .verify_trusted(
                &inner.header,
                KeyRole::Association,
                &th,
                &self.config.association_keys,
                &self.provider,
            )
            .map_err(SponsorFailure::Signature)?;
        let challenge = ChallengeData::decode_body(payload).map_err(SponsorFailure::Malformed)?;
        if challenge.sponsor_id != self.signer.key_id()
            || challenge.joiner_id != request.joiner_id
            || challenge.nonce != request.nonce
            || !challenge.commitment.matches(&request.commitment)
            || challenge.binding != request.binding
        {
            return Err(SponsorFailure::WrongVerification);
        }
        let aad = self.provider.sha256(&[&data.challenge_data]);
        let opened = request
            .answer_keys
            .open(
                &data.sealed_answer.encapsulated_key,
                flow2::EXPECTED_ANSWER_INFO,
                &aad,
                &[&data.sealed_answer.ciphertext],
            )
            .map_err(SponsorFailure::SealedAnswer)?;
        let bytes: [u8; 32] = opened
            .first()
            .and_then(|a| <[u8; 32]>::try_from(a.as_slice()).ok())
            .ok_or(SponsorFailure::WrongVerification)?;
        Ok(ChallengeAnswer::new(bytes))
    }

    /// Counts the attempt, then forwards the signed challenge data unchanged.
    fn forward_challenge(
        &mut self,
        now: Instant,
        data: VerificationData,
        expected: ChallengeAnswer,
    ) {
        let Phase::AwaitingVerification { request, .. } =
            core::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        if !self.count(Counter::Handoff, request.session_id) {
            return;
        }
        let sealed = match self.channel.as_mut().map(|c| c.seal(&data.challenge_data)) {
            Some(Ok(b)) => b,
            Some(Err(e)) => return self.fail(SponsorFailure::Channel(e), None),
            None => return self.fail(SponsorFailure::Channel(PeerError::ChannelClosed), None),
        };
        self.transmit(Destination::Joiner, sealed);
        self.events.push_back(SponsorEvent::JoinerVouchedFor {
            joiner_id: request.joiner_id,
        });
        let window = Duration::from_millis(data.answer_window_ms.into()).min(MAX_ANSWER_WINDOW);
        self.phase = Phase::AwaitingAnswer {
            request,
            expected,
            deadline: now.saturating_add(window),
        };
    }

    /// Constant-time comparison with the expected answer; the credential goes out only on a
    /// match, and only inside the channel.
    fn check_answer(&mut self, response: ChallengeResponse) {
        let Phase::AwaitingAnswer {
            request, expected, ..
        } = core::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        if response.answer != expected {
            return self.fail(SponsorFailure::WrongAnswer, Some(request.session_id));
        }
        let handover = CredentialHandover {
            commitment_key: request.commitment_key.clone(),
            credential: self.config.credential.clone(),
        };
        self.hand_over(
            MessageTag::CredentialHandover,
            request.session_id,
            request.joiner_id,
            handover.encode(),
        );
    }

    /// Sends the credential's message (`body` holds the passphrase), inside the channel only,
    /// then ends the handoff as completed.
    fn hand_over(
        &mut self,
        tag: MessageTag,
        session: SessionId,
        joiner_id: KeyId,
        body: zeroize::Zeroizing<Vec<u8>>,
    ) {
        let Ok(mut envelope) = Envelope::plain(flow2::header(tag, session), body.to_vec()) else {
            return self.fail(SponsorFailure::Unexpected, None);
        };
        let plaintext = zeroize::Zeroizing::new(envelope.encode());
        // The envelope's copy of the body holds the passphrase too.
        if let Body::Plain(body) = &mut envelope.body {
            zeroize::Zeroize::zeroize(body);
        }
        let sealed = match self.channel.as_mut().map(|c| c.seal(&plaintext)) {
            Some(Ok(b)) => b,
            Some(Err(e)) => return self.fail(SponsorFailure::Channel(e), None),
            None => return self.fail(SponsorFailure::Channel(PeerError::ChannelClosed), None),
        };
        self.transmit(Destination::Joiner, sealed);
        if attempt_succeeded(&mut self.state).is_err() {
            self.events.push_back(SponsorEvent::StateNotSaved);
        }
        self.events
            .push_back(SponsorEvent::HandedOver { joiner_id });
        self.channel = None;
        self.phase = Phase::Finished;
    }

    /// Counts an attempt on `counter` before it starts. False (and the handoff failed) when
    /// the limit is reached or the count cannot be saved.
    fn count(&mut self, counter: Counter, session: SessionId) -> bool {
        let limit = match counter {
            Counter::Fallback | Counter::Label => self.config.fallback_limit,
            Counter::Handoff => self.config.limit,
        };
        match begin_attempt(&mut self.state, counter, &limit) {
            Ok(true) => true,
            Ok(false) => {
                self.fail(SponsorFailure::AttemptLimitReached, Some(session));
                false
            }
            Err(_) => {
                self.events.push_back(SponsorEvent::StateNotSaved);
                self.fail(SponsorFailure::AttemptLimitReached, Some(session));
                false
            }
        }
    }

    /// The server cannot vouch for the joiner (unreachable, or not associated): the first
    /// fallback of the sponsor's list that it can run and the joiner declared starts. False
    /// when there is none (the handoff then fails as before).
    fn offer_fallback<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) -> bool {
        let Phase::AwaitingVerification { request, .. } = &self.phase else {
            return false;
        };
        let chosen = usable(
            &self.config.fallbacks,
            Side::Sponsor,
            self.config.interface,
            false,
        )
        .into_iter()
        .find(|f| request.fallbacks.contains(f));
        let Some(fallback) = chosen else {
            return false;
        };
        let (session_id, joiner_id) = (request.session_id, request.joiner_id);
        if exhausted(
            &mut self.state,
            Counter::Fallback,
            &self.config.fallback_limit,
        ) {
            self.fail(SponsorFailure::AttemptLimitReached, Some(session_id));
            return true;
        }
        self.events
            .push_back(SponsorEvent::FallbackStarted { fallback });
        self.start_attempt(now, session_id, joiner_id, fallback, rng);
        true
    }

    /// One attempt of `fallback`, counted before it starts.
    fn start_attempt<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        session_id: SessionId,
        joiner_id: KeyId,
        fallback: Fallback,
        rng: &mut R,
    ) {
        if !self.count(Counter::Fallback, session_id) {
            return;
        }
        let Some(binding) = self.binding() else {
            return self.fail(SponsorFailure::Channel(PeerError::ChannelClosed), None);
        };
        let mut start = FallbackStart {
            fallback,
            sponsor_id: self.signer.key_id(),
            sas_commitment: None,
        };
        let mut shown = None;
        let step = match fallback {
            Fallback::CompareCodes => {
                let mut nonce = [0u8; flow2::fallback::SAS_NONCE_LEN];
                rng.fill_bytes(&mut nonce);
                start.sas_commitment = Some(sas_commitment(&self.provider, &binding, &nonce));
                FallbackStep::AwaitingSasNonce { nonce }
            }
            Fallback::JoinerShowsCode => {
                self.prompt(fallback, OwnerPrompt::EnterShownCode);
                FallbackStep::AwaitingCode
            }
            Fallback::LabelCode => {
                self.prompt(fallback, OwnerPrompt::EnterLabelCode);
                FallbackStep::AwaitingCode
            }
            Fallback::SponsorShowsCode => {
                let code = PairingCode::generate(rng);
                shown = Some(code.clone());
                self.prompt(fallback, OwnerPrompt::ShowCode { code });
                FallbackStep::AwaitingCode
            }
        };
        self.send_plain(session_id, MessageTag::FallbackStart, start.encode_body());
        self.phase = Phase::Fallback(FallbackRun {
            session_id,
            joiner_id,
            fallback,
            deadline: now.saturating_add(self.config.owner_timeout),
            step,
        });
        if let Some(code) = shown {
            self.start_pake(&code, rng);
        }
    }

    fn prompt(&mut self, fallback: Fallback, prompt: OwnerPrompt) {
        let text = prompt.text();
        self.events.push_back(SponsorEvent::OwnerAction {
            fallback,
            prompt,
            text,
        });
    }

    /// (b), (c) Sends `shareP` for `code`.
    fn start_pake<R: CryptoRng + ?Sized>(&mut self, code: &PairingCode, rng: &mut R) {
        let Phase::Fallback(run) = &self.phase else {
            return;
        };
        let (session, fallback, joiner_id) = (run.session_id, run.fallback, run.joiner_id);
        let Some(binding) = self.binding() else {
            return self.fail(SponsorFailure::Channel(PeerError::ChannelClosed), None);
        };
        let kind = if fallback == Fallback::LabelCode {
            CodeKind::Label
        } else {
            CodeKind::Session
        };
        let secret = match prover_secret(code, &joiner_id, kind) {
            Ok(s) => s,
            Err(e) => return self.fail(SponsorFailure::Pake(e), Some(session)),
        };
        let context = PakeContext::new(
            fallback,
            &session,
            &binding,
            self.signer.key_id(),
            joiner_id,
        );
        let (prover, share) = Prover::start(&secret, &context.get(), rng);
        self.send_plain(
            session,
            MessageTag::PakeShare,
            PakeShare {
                share: *share.as_bytes(),
            }
            .encode_body(),
        );
        if let Phase::Fallback(run) = &mut self.phase {
            run.step = FallbackStep::AwaitingReply {
                prover: alloc::boxed::Box::new(prover),
            };
        }
    }

    fn handle_fallback<R: CryptoRng>(
        &mut self,
        now: Instant,
        tag: MessageTag,
        body: &[u8],
        rng: &mut R,
    ) {
        let Phase::Fallback(run) = core::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        let session = run.session_id;
        let malformed = |e| SponsorFailure::Malformed(e);
        match (run.step, tag) {
            (FallbackStep::AwaitingSasNonce { nonce }, MessageTag::SasNonce) => {
                let theirs = match SasNonce::decode_body(body) {
                    Ok(n) => n,
                    Err(e) => return self.fail(malformed(e), Some(session)),
                };
                let Some(binding) = self.binding() else {
                    return self.fail(SponsorFailure::Unexpected, None);
                };
                self.send_plain(
                    session,
                    MessageTag::SasReveal,
                    SasReveal { nonce }.encode_body(),
                );
                let code = short_auth_string(&self.provider, &binding, &nonce, &theirs.nonce);
                self.phase = Phase::Fallback(FallbackRun {
                    step: FallbackStep::Comparing {
                        owner_confirmed: false,
                        joiner_confirmed: false,
                    },
                    ..run
                });
                self.prompt(Fallback::CompareCodes, OwnerPrompt::CompareCode { code });
            }
            (
                FallbackStep::Comparing {
                    owner_confirmed, ..
                },
                MessageTag::OwnerDecision,
            ) => {
                let decision = match OwnerDecision::decode_body(body) {
                    Ok(d) => d,
                    Err(e) => return self.fail(malformed(e), Some(session)),
                };
                if !decision.confirmed {
                    return self.fail(SponsorFailure::CodesDiffer, Some(session));
                }
                self.phase = Phase::Fallback(FallbackRun {
                    step: FallbackStep::Comparing {
                        owner_confirmed,
                        joiner_confirmed: true,
                    },
                    ..run
                });
                if owner_confirmed {
                    self.hand_over_fallback(None);
                }
            }
            (FallbackStep::AwaitingReply { prover }, MessageTag::PakeReply) => {
                let reply = match PakeReply::decode_body(body) {
                    Ok(r) => r,
                    Err(e) => return self.fail(malformed(e), Some(session)),
                };
                let (Ok(share), Ok(confirm)) = (
                    ShareV::<PakeSuite>::from_bytes(&reply.share),
                    ConfirmV::<PakeSuite>::from_bytes(&reply.confirm),
                ) else {
                    return self.fail(SponsorFailure::FallbackProtocol, Some(session));
                };
                let confirming = match prover.receive(&share) {
                    Ok(c) => c,
                    Err(_) => return self.fail(SponsorFailure::FallbackProtocol, Some(session)),
                };
                match confirming.finish(&confirm) {
                    Ok((confirm_p, _key)) => {
                        self.phase = Phase::Fallback(FallbackRun {
                            step: FallbackStep::AwaitingCode,
                            ..run
                        });
                        self.hand_over_fallback(Some(*confirm_p.as_bytes()));
                    }
                    Err(_) => {
                        let left = self.attempts_left();
                        self.events.push_back(SponsorEvent::CodeRejected {
                            attempts_left: left,
                        });
                        if left == 0 {
                            return self.fail(SponsorFailure::AttemptLimitReached, Some(session));
                        }
                        // A channel of its own still: the next attempt, with a fresh code
                        // where the code is drawn per attempt.
                        self.phase = Phase::Fallback(FallbackRun {
                            step: FallbackStep::AwaitingCode,
                            ..run
                        });
                        self.start_attempt(now, session, run.joiner_id, run.fallback, rng);
                    }
                }
            }
            _ => self.fail(SponsorFailure::FallbackProtocol, Some(session)),
        }
    }

    fn attempts_left(&mut self) -> u32 {
        let used = self
            .state
            .load()
            .ok()
            .flatten()
            .unwrap_or_default()
            .fallback_attempts;
        self.config.fallback_limit.max_attempts.saturating_sub(used)
    }

    /// (a) The owner's answer on this device: whether the two shown codes match. The
    /// credential goes only once the owner confirmed on both devices.
    pub fn confirm_code(&mut self, now: Instant, matches: bool) -> Result<(), PeerError> {
        if let Phase::Fallback(run) = &self.phase
            && now.is_past(run.deadline)
        {
            let session = run.session_id;
            self.fail(SponsorFailure::OwnerTimeout, Some(session));
        }
        let Phase::Fallback(run) = &mut self.phase else {
            return Err(PeerError::NotWaitingForOwner);
        };
        let FallbackStep::Comparing {
            owner_confirmed,
            joiner_confirmed,
        } = &mut run.step
        else {
            return Err(PeerError::NotWaitingForOwner);
        };
        let session = run.session_id;
        if !matches {
            self.fail(SponsorFailure::CodesDiffer, Some(session));
            return Ok(());
        }
        *owner_confirmed = true;
        if *joiner_confirmed {
            self.hand_over_fallback(None);
        }
        Ok(())
    }

    /// (b) shown by the joiner, (c) from its label: the code the owner typed. A malformed
    /// code is refused here and costs no attempt.
    pub fn enter_code<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        typed: &str,
        rng: &mut R,
    ) -> Result<(), PeerError> {
        self.handle_timeout(now, rng);
        let waiting = matches!(
            &self.phase,
            Phase::Fallback(FallbackRun {
                fallback: Fallback::JoinerShowsCode | Fallback::LabelCode,
                step: FallbackStep::AwaitingCode,
                ..
            })
        );
        if !waiting {
            return Err(PeerError::NotWaitingForOwner);
        }
        let code = PairingCode::parse(typed)?;
        self.start_pake(&code, rng);
        Ok(())
    }

    /// The credential, inside the channel only, after the owner confirmed on both devices (a)
    /// or the joiner's PAKE confirmation checked out ((b), (c)).
    fn hand_over_fallback(&mut self, confirm: Option<[u8; flow2::fallback::PAKE_CONFIRM_LEN]>) {
        let Phase::Fallback(run) = core::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        let handover = FallbackHandover {
            confirm,
            credential: self.config.credential.clone(),
        };
        self.hand_over(
            MessageTag::FallbackHandover,
            run.session_id,
            run.joiner_id,
            handover.encode(),
        );
    }

    /// Seals a plain flow-2 message for the joiner.
    fn send_plain(&mut self, session: SessionId, tag: MessageTag, body: Vec<u8>) {
        let Ok(envelope) = Envelope::plain(flow2::header(tag, session), body) else {
            return self.fail(SponsorFailure::Unexpected, None);
        };
        match self.channel.as_mut().map(|c| c.seal(&envelope.encode())) {
            Some(Ok(b)) => self.transmit(Destination::Joiner, b),
            Some(Err(e)) => self.fail(SponsorFailure::Channel(e), None),
            None => self.fail(SponsorFailure::Channel(PeerError::ChannelClosed), None),
        }
    }

    /// A deadline passed: retransmit to the server, or give up (and offer a fallback, if one
    /// is allowed: `rng` serves it).
    pub fn handle_timeout<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if !now.is_past(deadline) {
            return;
        }
        match &mut self.phase {
            Phase::AwaitingRequest { .. } => self.fail(SponsorFailure::RequestTimeout, None),
            Phase::AwaitingVerification {
                request,
                bytes,
                deadline,
                retries_left,
            } => {
                if *retries_left == 0 {
                    let session = request.session_id;
                    if self.offer_fallback(now, rng) {
                        return;
                    }
                    return self.fail(SponsorFailure::ServerUnreachable, Some(session));
                }
                *retries_left -= 1;
                *deadline = now.saturating_add(self.config.server_timeout);
                let again = bytes.clone();
                self.transmit(Destination::AssociationServer, again);
            }
            Phase::AwaitingAnswer { request, .. } => {
                let session = request.session_id;
                self.fail(SponsorFailure::AnswerTimeout, Some(session));
            }
            Phase::Fallback(run) => {
                let session = run.session_id;
                self.fail(SponsorFailure::OwnerTimeout, Some(session));
            }
            Phase::Idle | Phase::Finished => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::AwaitingRequest { deadline }
            | Phase::AwaitingVerification { deadline, .. }
            | Phase::AwaitingAnswer { deadline, .. } => Some(*deadline),
            Phase::Fallback(run) => Some(run.deadline),
            Phase::Idle | Phase::Finished => None,
        }
    }

    /// Bytes to send, and where.
    pub fn poll_transmit(&mut self) -> Option<SponsorTransmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SponsorEvent> {
        self.events.pop_front()
    }

    /// Whether the last handoff handed the credential over.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished)
    }

    /// Whether no handoff is in progress.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Finished)
    }

    /// The storage of the attempt counter.
    pub fn state(&self) -> &St {
        &self.state
    }

    /// Resets the attempt counter. Call only after an owner action.
    pub fn reset_attempt_limit(&mut self) -> Result<(), St::Error> {
        attempt_succeeded(&mut self.state)
    }

    fn transmit(&mut self, destination: Destination, bytes: Vec<u8>) {
        self.transmits
            .push_back(SponsorTransmit { destination, bytes });
    }

    fn fail(&mut self, reason: SponsorFailure, session: Option<SessionId>) {
        self.fail_with(reason, session, ErrorCode::HandoffUnavailable);
    }

    /// Tells the joiner (an unsigned hint, inside the channel), closes the channel, reports.
    fn fail_with(&mut self, reason: SponsorFailure, session: Option<SessionId>, code: ErrorCode) {
        if let (Some(session), Some(channel)) = (session, self.channel.as_mut())
            && channel.is_open()
        {
            let message = ErrorMessage {
                code,
                retry_after_s: 0,
                supported_versions: Vec::new(),
            };
            let header = flow2::header(MessageTag::Error, session);
            if let Ok(envelope) = Envelope::plain(header, message.encode_body())
                && let Ok(sealed) = channel.seal(&envelope.encode())
            {
                self.transmits.push_back(SponsorTransmit {
                    destination: Destination::Joiner,
                    bytes: sealed,
                });
            }
        }
        self.channel = None;
        self.phase = Phase::Idle;
        self.events.push_back(SponsorEvent::Failed { reason });
    }
}

impl<S: Signer, St: PeerState, P: CryptoProvider> core::fmt::Debug for Sponsor<S, St, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sponsor")
            .field("sponsor_id", &self.signer.key_id())
            .field("phase", &self.phase.name())
            .finish_non_exhaustive()
    }
}
