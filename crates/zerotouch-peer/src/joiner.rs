//! The joiner: a new device asking an already-joined sponsor for the home credential.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::CryptoRng;
use spake2plus::{ConfirmP, ShareP, Verifier, VerifierConfirming, VerifierRecord};
use zeroize::Zeroize;
use zerotouch_core::flow2::{
    self, AnswerContext, ChallengeData, ChallengeResponse, Commitment, CredentialHandover,
    Fallback, FallbackHandover, FallbackStart, HomeCredential, OwnerDecision, PakeReply, PakeShare,
    PeerCredentialRequest, SasNonce, SasReveal, ShortAuthString, challenge_answer,
    credential_commitment, handoff_transcript, sas_commitment, short_auth_string,
};
use zerotouch_core::{
    Body, CryptoProvider, DeviceSecret, Envelope, ErrorCode, ErrorMessage, Flow, Instant, KeyId,
    KeyRole, Message, MessageTag, Nonce, PinnedKeys, RustCryptoProvider, SessionId,
};

use crate::PeerError;
use crate::channel::LocalChannel;
use crate::event::{JoinerEvent, JoinerFailure};
use crate::owner::{OwnerInterface, OwnerPrompt, Side, usable};
use crate::pake::{CodeKind, LabelRecord, PairingCode, PakeContext, PakeSuite, prover_secret};
use crate::state::{AttemptLimit, Counter, PeerState, attempt_succeeded, begin_attempt, exhausted};

/// What the joiner's firmware configures.
#[derive(Debug, Clone)]
pub struct JoinerConfig {
    /// The joiner's device key id (SHA-256 of its identity key's SubjectPublicKeyInfo): the id
    /// the association server knows it by.
    pub joiner_id: KeyId,
    /// The secret the factory stored in the device and sent to the association server.
    pub device_secret: DeviceSecret,
    /// The association server's keys, pinned in firmware (role [`KeyRole::Association`]).
    pub association_keys: PinnedKeys,
    /// How long a nonce stays valid on the joiner's own clock: the whole handoff must finish
    /// within it.
    pub nonce_lifetime: Duration,
    /// Challenges the joiner answers without a completed handoff before it stops.
    pub limit: AttemptLimit,
    /// What the device can show and take from the owner.
    pub interface: OwnerInterface,
    /// The fallbacks firmware allows, in its order of preference. The joiner declares those
    /// its interface (and label record) can carry out and whose attempts are not used up.
    pub fallbacks: Vec<Fallback>,
    /// The record of the code printed on the device's label (fallback (c)), from the factory.
    pub label_record: Option<LabelRecord>,
    /// Fallback attempts with a fresh code ((a), (b)) without a completed handoff.
    pub fallback_limit: AttemptLimit,
    /// Label-code attempts over the device's life; only a factory reset clears them.
    pub label_limit: AttemptLimit,
    /// How long one fallback attempt may wait for the owner and the sponsor.
    pub owner_timeout: Duration,
}

impl JoinerConfig {
    /// A configuration with the default lifetime (60 s) and limit (10 answers), no
    /// fallbacks, and for fallbacks once allowed: 5 attempts with a fresh code, 10 label-code
    /// attempts per life, 120 s per attempt.
    pub fn new(
        joiner_id: KeyId,
        device_secret: DeviceSecret,
        association_keys: PinnedKeys,
    ) -> Self {
        JoinerConfig {
            joiner_id,
            device_secret,
            association_keys,
            nonce_lifetime: Duration::from_secs(60),
            limit: AttemptLimit::default(),
            interface: OwnerInterface::HEADLESS,
            fallbacks: Vec::new(),
            label_record: None,
            fallback_limit: AttemptLimit { max_attempts: 5 },
            label_limit: AttemptLimit { max_attempts: 10 },
            owner_timeout: Duration::from_secs(120),
        }
    }
}

/// One handoff in progress: what the nonce and session id tie together.
#[derive(Debug, Clone, Copy)]
struct Handoff {
    session_id: SessionId,
    nonce: Nonce,
    expires: Instant,
}

enum Phase {
    Idle,
    Handshaking,
    AwaitingChallenge,
    AwaitingHandover {
        commitment: Commitment,
    },
    /// Boxed: a PAKE session is a few hundred bytes that the other phases need not carry.
    Fallback(alloc::boxed::Box<FallbackRun>),
    Finished,
}

impl Phase {
    /// A fallback starts while the joiner waits for the server's challenge; a new attempt
    /// starts only after a PAKE reply went out (the sponsor found the code wrong). Never
    /// during compared codes: a restarted comparison would let a device in the middle draw
    /// a new code each time, and never before the PAKE reply, which would let a rogue
    /// sponsor redraw the shown code and the owner's deadline at no cost in attempts.
    fn accepts_fallback_start(&self) -> bool {
        match self {
            Phase::AwaitingChallenge => true,
            Phase::Fallback(run) => matches!(
                run.step,
                FallbackStep::AwaitingHandover { verifier: Some(_) }
            ),
            _ => false,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Handshaking => "handshaking",
            Phase::AwaitingChallenge => "awaiting challenge",
            Phase::AwaitingHandover { .. } => "awaiting handover",
            Phase::Fallback(_) => "fallback",
            Phase::Finished => "finished",
        }
    }
}

/// One attempt of a fallback.
struct FallbackRun {
    fallback: Fallback,
    sponsor_id: KeyId,
    step: FallbackStep,
}

enum FallbackStep {
    /// (a) The joiner sent its nonce; the sponsor must reveal the one it committed to.
    AwaitingReveal {
        commitment: [u8; 32],
        nonce: [u8; flow2::fallback::SAS_NONCE_LEN],
    },
    /// (a) Both codes are shown; waiting for the owner's answer on this device.
    Comparing,
    /// (b), (c) Waiting for the code's record (typed, for (b) shown by the sponsor) and the
    /// sponsor's share, in either order.
    Pake {
        record: Option<VerifierRecord<PakeSuite>>,
        share: Option<ShareP<PakeSuite>>,
    },
    /// The owner confirmed (a), or the PAKE reply went out ((b), (c)): the credential comes
    /// next, with the sponsor's confirmation for the PAKE.
    AwaitingHandover {
        verifier: Option<VerifierConfirming<PakeSuite>>,
    },
}

/// The joiner role, sans-IO: [`start`](Self::start) a handoff on a fresh stream to a sponsor,
/// feed the stream's bytes to [`receive`](Self::receive), write what
/// [`poll_transmit`](Self::poll_transmit) returns, act on [`poll_event`](Self::poll_event), and
/// call [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout).
///
/// A nonce serves one handoff: a failed handoff discards it, and the next `start` draws a new
/// one with a new session id.
pub struct Joiner<St: PeerState, P: CryptoProvider = RustCryptoProvider> {
    config: JoinerConfig,
    state: St,
    provider: P,
    phase: Phase,
    handoff: Option<Handoff>,
    channel: Option<LocalChannel>,
    /// The fallbacks declared in this handoff's request.
    declared: Vec<Fallback>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<JoinerEvent>,
}

impl<St: PeerState> Joiner<St, RustCryptoProvider> {
    /// A joiner with the RustCrypto provider.
    pub fn new(config: JoinerConfig, state: St) -> Result<Self, PeerError> {
        Joiner::with_provider(config, state, RustCryptoProvider)
    }
}

impl<St: PeerState, P: CryptoProvider> Joiner<St, P> {
    /// A joiner whose hashes and signature checks go through `provider`.
    pub fn with_provider(config: JoinerConfig, state: St, provider: P) -> Result<Self, PeerError> {
        if config
            .association_keys
            .trusted_key_ids(KeyRole::Association)
            .is_empty()
        {
            return Err(PeerError::InvalidConfig("no pinned association key"));
        }
        Ok(Joiner {
            config,
            state,
            provider,
            phase: Phase::Idle,
            handoff: None,
            channel: None,
            declared: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// Starts a handoff over a fresh stream to a sponsor: a new session id and nonce, and the
    /// first handshake message to send. Any handoff in progress is abandoned.
    pub fn start<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        self.reset();
        let (channel, first) = match LocalChannel::initiator(rng) {
            Ok(c) => c,
            Err(e) => return self.fail(JoinerFailure::Channel(e)),
        };
        self.handoff = Some(Handoff {
            session_id: SessionId::random(rng),
            nonce: Nonce::random(rng),
            expires: now.saturating_add(self.config.nonce_lifetime),
        });
        self.channel = Some(channel);
        self.transmits.push_back(first);
        self.phase = Phase::Handshaking;
        self.declared = self.runnable_fallbacks();
    }

    /// The allowed fallbacks this device can run now: its interface and label record permit
    /// them, and their attempt counters are not used up (a locked-out label is not offered).
    fn runnable_fallbacks(&mut self) -> Vec<Fallback> {
        let c = &self.config;
        let label =
            c.label_record.is_some() && !exhausted(&mut self.state, Counter::Label, &c.label_limit);
        let fresh_codes_left = !exhausted(&mut self.state, Counter::Fallback, &c.fallback_limit);
        usable(&c.fallbacks, Side::Joiner, c.interface, label)
            .into_iter()
            .filter(|f| *f == Fallback::LabelCode || fresh_codes_left)
            .collect()
    }

    /// Bytes the stream delivered, in any chunking. `rng` serves the fallbacks (nonces, fresh
    /// codes, the PAKE's scalar).
    pub fn receive<R: CryptoRng + ?Sized>(&mut self, now: Instant, bytes: &[u8], rng: &mut R) {
        self.handle_timeout(now);
        let (Some(handoff), Some(channel)) = (self.handoff, self.channel.as_mut()) else {
            return;
        };
        let received = match channel.receive(bytes) {
            Ok(r) => r,
            Err(e) => return self.fail(JoinerFailure::Channel(e)),
        };
        if !received.reply.is_empty() {
            self.transmits.push_back(received.reply);
        }
        if received.opened {
            self.channel_opened(handoff);
        }
        for mut message in received.messages {
            if let Some(current) = self.handoff {
                self.handle_message(now, current, &message, rng);
            }
            // The handover's plaintext holds the passphrase.
            message.zeroize();
        }
    }

    fn channel_opened(&mut self, handoff: Handoff) {
        let Some(binding) = self.channel.as_ref().and_then(LocalChannel::binding) else {
            return;
        };
        self.events.push_back(JoinerEvent::ChannelOpen { binding });
        let request = PeerCredentialRequest {
            joiner_id: self.config.joiner_id,
            nonce: handoff.nonce,
            seen_binding: Some(binding),
            fallbacks: self.declared.clone(),
        };
        self.send(
            handoff,
            MessageTag::PeerCredentialRequest,
            request.encode_body(),
        );
        self.phase = Phase::AwaitingChallenge;
    }

    fn handle_message<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        handoff: Handoff,
        bytes: &[u8],
        rng: &mut R,
    ) {
        let mut envelope = match Envelope::decode(bytes) {
            Ok(e) => e,
            Err(e) => return self.fail(JoinerFailure::Malformed(e)),
        };
        if envelope.header.flow != Flow::PeerHandoff
            || envelope.header.session_id != handoff.session_id
        {
            return self.fail(JoinerFailure::WrongHandoff);
        }
        match (&self.phase, envelope.header.tag, &envelope.body) {
            (_, MessageTag::Error, Body::Plain(b)) => {
                match ErrorMessage::decode_body(b) {
                    Ok(m) => self
                        .events
                        .push_back(JoinerEvent::SponsorHint { code: m.code }),
                    Err(e) => return self.fail(JoinerFailure::Malformed(e)),
                }
                self.fail(JoinerFailure::SponsorRefused);
            }
            (Phase::AwaitingChallenge, MessageTag::ChallengeData, Body::Signed(body)) => {
                let th = handoff_transcript(&self.provider, &handoff.session_id);
                let payload = match body.verify_trusted(
                    &envelope.header,
                    KeyRole::Association,
                    &th,
                    &self.config.association_keys,
                    &self.provider,
                ) {
                    Ok(p) => p,
                    Err(e) => return self.fail(JoinerFailure::Signature(e)),
                };
                match ChallengeData::decode_body(payload) {
                    Ok(data) => self.answer(now, handoff, &data),
                    Err(e) => self.fail(JoinerFailure::Malformed(e)),
                }
            }
            (
                Phase::AwaitingHandover { commitment },
                MessageTag::CredentialHandover,
                Body::Plain(b),
            ) => {
                let commitment = *commitment;
                match CredentialHandover::decode_body(b) {
                    Ok(handover) => self.accept_handover(handoff, commitment, handover),
                    Err(e) => self.fail(JoinerFailure::Malformed(e)),
                }
            }
            (phase, MessageTag::FallbackStart, Body::Plain(b))
                if phase.accepts_fallback_start() =>
            {
                match FallbackStart::decode_body(b) {
                    Ok(start) => self.start_fallback(now, start, rng),
                    Err(e) => self.fail(JoinerFailure::Malformed(e)),
                }
            }
            (Phase::Fallback(_), MessageTag::SasReveal, Body::Plain(b)) => {
                match SasReveal::decode_body(b) {
                    Ok(reveal) => self.compare(&reveal),
                    Err(e) => self.fail(JoinerFailure::Malformed(e)),
                }
            }
            (Phase::Fallback(_), MessageTag::PakeShare, Body::Plain(b)) => {
                match PakeShare::decode_body(b) {
                    Ok(share) => self.take_share(handoff, &share, rng),
                    Err(e) => self.fail(JoinerFailure::Malformed(e)),
                }
            }
            (Phase::Fallback(_), MessageTag::FallbackHandover, Body::Plain(b)) => {
                match FallbackHandover::decode_body(b) {
                    Ok(handover) => self.accept_fallback_handover(handover),
                    Err(e) => self.fail(JoinerFailure::Malformed(e)),
                }
            }
            _ => self.fail(JoinerFailure::Unexpected),
        }
        if let Body::Plain(body) = &mut envelope.body {
            body.zeroize();
        }
    }

    /// The checks before the device secret is used: the data names this joiner and nonce, the
    /// nonce is fresh, and the signed binding is this channel's. Then the answer limit.
    fn answer(&mut self, now: Instant, handoff: Handoff, data: &ChallengeData) {
        if data.joiner_id != self.config.joiner_id || data.nonce != handoff.nonce {
            return self.fail(JoinerFailure::WrongHandoff);
        }
        if now.is_past(handoff.expires) {
            return self.fail(JoinerFailure::NonceExpired);
        }
        let Some(binding) = self.channel.as_ref().and_then(LocalChannel::binding) else {
            return self.fail(JoinerFailure::Unexpected);
        };
        if data.binding != binding {
            return self.fail(JoinerFailure::BindingMismatch);
        }
        if !self.count(Counter::Handoff) {
            return;
        }
        let context = AnswerContext {
            session_id: &handoff.session_id,
            nonce: &handoff.nonce,
            sponsor_id: &data.sponsor_id,
            joiner_id: &self.config.joiner_id,
        };
        let answer = challenge_answer(
            &self.provider,
            &self.config.device_secret,
            &context,
            &data.challenge,
            &binding,
        );
        let response = ChallengeResponse { answer };
        self.send(
            handoff,
            MessageTag::ChallengeResponse,
            response.encode_body(),
        );
        self.events.push_back(JoinerEvent::Challenged {
            sponsor_id: data.sponsor_id,
        });
        self.phase = Phase::AwaitingHandover {
            commitment: data.commitment,
        };
    }

    /// The credential is reported only if it matches the commitment the server signed.
    fn accept_handover(
        &mut self,
        handoff: Handoff,
        commitment: Commitment,
        handover: CredentialHandover,
    ) {
        let recomputed = credential_commitment(
            &self.provider,
            &handover.commitment_key,
            &handoff.session_id,
            &handoff.nonce,
            &self.config.joiner_id,
            &handover.credential,
        );
        if !recomputed.matches(&commitment) {
            return self.fail(JoinerFailure::CommitmentMismatch);
        }
        self.join(&handover.credential);
    }

    fn join(&mut self, credential: &HomeCredential) {
        if attempt_succeeded(&mut self.state).is_err() {
            self.events.push_back(JoinerEvent::StateNotSaved);
        }
        self.events.push_back(JoinerEvent::Join {
            ssid: credential.ssid.clone(),
            security: credential.security,
            passphrase: credential.passphrase.clone(),
        });
        self.finish(Phase::Finished);
    }

    /// One attempt of a fallback begins (again, after a failed one). Only a declared fallback
    /// runs; the deadline becomes the owner's.
    fn start_fallback<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        start: FallbackStart,
        rng: &mut R,
    ) {
        let fallback = start.fallback;
        if !self.declared.contains(&fallback) {
            return self.fail(JoinerFailure::FallbackNotOffered);
        }
        // Used up since it was declared (the attempts of this very handoff): stop before the
        // owner is asked for a code that cannot be accepted.
        let (counter, limit) = if fallback == Fallback::LabelCode {
            (Counter::Label, self.config.label_limit)
        } else {
            (Counter::Fallback, self.config.fallback_limit)
        };
        if exhausted(&mut self.state, counter, &limit) {
            return self.fail(JoinerFailure::AttemptLimitReached);
        }
        let Some(handoff) = self.handoff.as_mut() else {
            return;
        };
        handoff.expires = now.saturating_add(self.config.owner_timeout);
        let handoff = *handoff;
        let (step, prompt) = match fallback {
            Fallback::CompareCodes => {
                let Some(commitment) = start.sas_commitment else {
                    return self.fail(JoinerFailure::Unexpected);
                };
                if !self.count(Counter::Fallback) {
                    return;
                }
                let mut nonce = [0u8; flow2::fallback::SAS_NONCE_LEN];
                rng.fill_bytes(&mut nonce);
                self.send(
                    handoff,
                    MessageTag::SasNonce,
                    SasNonce { nonce }.encode_body(),
                );
                (FallbackStep::AwaitingReveal { commitment, nonce }, None)
            }
            Fallback::JoinerShowsCode => {
                let code = PairingCode::generate(rng);
                let record = match prover_secret(&code, &self.config.joiner_id, CodeKind::Session) {
                    Ok(secret) => secret.verifier_record(),
                    Err(e) => return self.fail(JoinerFailure::Pake(e)),
                };
                let step = FallbackStep::Pake {
                    record: Some(record),
                    share: None,
                };
                (step, Some(OwnerPrompt::ShowCode { code }))
            }
            Fallback::SponsorShowsCode => (
                FallbackStep::Pake {
                    record: None,
                    share: None,
                },
                Some(OwnerPrompt::EnterShownCode),
            ),
            Fallback::LabelCode => {
                let record = match self.config.label_record.as_ref().map(LabelRecord::record) {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => return self.fail(JoinerFailure::Pake(e)),
                    None => return self.fail(JoinerFailure::FallbackNotOffered),
                };
                let step = FallbackStep::Pake {
                    record: Some(record),
                    share: None,
                };
                (step, Some(OwnerPrompt::TypeLabelCodeElsewhere))
            }
        };
        self.phase = Phase::Fallback(alloc::boxed::Box::new(FallbackRun {
            fallback,
            sponsor_id: start.sponsor_id,
            step,
        }));
        if let Some(prompt) = prompt {
            self.prompt(fallback, prompt);
        }
    }

    fn prompt(&mut self, fallback: Fallback, prompt: OwnerPrompt) {
        let text = prompt.text();
        self.events.push_back(JoinerEvent::OwnerAction {
            fallback,
            prompt,
            text,
        });
    }

    /// Counts a fallback attempt before anything that depends on the code or the compared
    /// nonces leaves the device. False (and the handoff failed) when the limit is reached.
    fn count(&mut self, counter: Counter) -> bool {
        let limit = match counter {
            Counter::Label => self.config.label_limit,
            Counter::Fallback => self.config.fallback_limit,
            Counter::Handoff => self.config.limit,
        };
        match begin_attempt(&mut self.state, counter, &limit) {
            Ok(true) => true,
            Ok(false) => {
                self.fail(JoinerFailure::AttemptLimitReached);
                false
            }
            Err(_) => {
                self.events.push_back(JoinerEvent::StateNotSaved);
                self.fail(JoinerFailure::AttemptLimitReached);
                false
            }
        }
    }

    /// (a) The revealed nonce must be the committed one; then both nonces give the code.
    fn compare(&mut self, reveal: &SasReveal) {
        let Phase::Fallback(run) = &self.phase else {
            return;
        };
        let FallbackStep::AwaitingReveal { commitment, nonce } = &run.step else {
            return self.fail(JoinerFailure::Unexpected);
        };
        let Some(binding) = self.channel.as_ref().and_then(LocalChannel::binding) else {
            return self.fail(JoinerFailure::Unexpected);
        };
        let expected = sas_commitment(&self.provider, &binding, &reveal.nonce);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &expected[..],
            &commitment[..],
        )) {
            return self.fail(JoinerFailure::SasCommitmentMismatch);
        }
        let code: ShortAuthString =
            short_auth_string(&self.provider, &binding, &reveal.nonce, nonce);
        let fallback = run.fallback;
        if let Phase::Fallback(run) = &mut self.phase {
            run.step = FallbackStep::Comparing;
        }
        self.prompt(fallback, OwnerPrompt::CompareCode { code });
    }

    /// (b), (c) The sponsor's share; the reply goes out once the code is known too.
    fn take_share<R: CryptoRng + ?Sized>(
        &mut self,
        handoff: Handoff,
        share: &PakeShare,
        rng: &mut R,
    ) {
        let parsed = match ShareP::<PakeSuite>::from_bytes(&share.share) {
            Ok(s) => s,
            Err(e) => return self.fail(JoinerFailure::Pake(PeerError::Pake(e))),
        };
        match &mut self.phase {
            Phase::Fallback(run) => match &mut run.step {
                FallbackStep::Pake { share, .. } if share.is_none() => *share = Some(parsed),
                _ => return self.fail(JoinerFailure::Unexpected),
            },
            _ => return self.fail(JoinerFailure::Unexpected),
        }
        self.reply_if_ready(handoff, rng);
    }

    /// With both the record and the share: count the attempt, then send `shareV` and
    /// `confirmV`. Each reply is one online guess for whoever sent the share.
    fn reply_if_ready<R: CryptoRng + ?Sized>(&mut self, handoff: Handoff, rng: &mut R) {
        let Phase::Fallback(run) = &mut self.phase else {
            return;
        };
        let FallbackStep::Pake { record, share } = &mut run.step else {
            return;
        };
        if record.is_none() || share.is_none() {
            return;
        }
        let (Some(record), Some(share)) = (record.take(), share.take()) else {
            return;
        };
        let (fallback, sponsor_id) = (run.fallback, run.sponsor_id);
        let counter = if fallback == Fallback::LabelCode {
            Counter::Label
        } else {
            Counter::Fallback
        };
        if !self.count(counter) {
            return;
        }
        let Some(binding) = self.channel.as_ref().and_then(LocalChannel::binding) else {
            return self.fail(JoinerFailure::Unexpected);
        };
        let context = PakeContext::new(
            fallback,
            &handoff.session_id,
            &binding,
            sponsor_id,
            self.config.joiner_id,
        );
        let (verifier, share_v) = Verifier::start(&record, &context.get(), rng);
        let (confirming, confirm_v) = match verifier.receive(&share) {
            Ok(v) => v,
            Err(e) => return self.fail(JoinerFailure::Pake(PeerError::Pake(e))),
        };
        let reply = PakeReply {
            share: *share_v.as_bytes(),
            confirm: *confirm_v.as_bytes(),
        };
        self.send(handoff, MessageTag::PakeReply, reply.encode_body());
        if let Phase::Fallback(run) = &mut self.phase {
            run.step = FallbackStep::AwaitingHandover {
                verifier: Some(confirming),
            };
        }
    }

    /// The credential of a fallback: after the owner's confirmation (a), or with the sponsor's
    /// PAKE confirmation, checked before the credential is looked at ((b), (c)).
    fn accept_fallback_handover(&mut self, handover: FallbackHandover) {
        let Phase::Fallback(run) = core::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        let FallbackStep::AwaitingHandover { verifier } = run.step else {
            return self.fail(JoinerFailure::Unexpected);
        };
        match (verifier, handover.confirm) {
            (None, None) => {}
            (Some(verifier), Some(confirm)) => {
                let checked =
                    ConfirmP::<PakeSuite>::from_bytes(&confirm).and_then(|c| verifier.finish(&c));
                if checked.is_err() {
                    return self.fail(JoinerFailure::WrongCode);
                }
            }
            _ => return self.fail(JoinerFailure::Unexpected),
        }
        self.join(&handover.credential);
    }

    /// (a) The owner's answer on this device: whether the two shown codes match. Only a
    /// confirmation lets the sponsor send the credential.
    pub fn confirm_code(&mut self, now: Instant, matches: bool) -> Result<(), PeerError> {
        self.handle_timeout(now);
        let Some(handoff) = self.handoff else {
            return Err(PeerError::NotWaitingForOwner);
        };
        let Phase::Fallback(run) = &mut self.phase else {
            return Err(PeerError::NotWaitingForOwner);
        };
        if !matches!(run.step, FallbackStep::Comparing) {
            return Err(PeerError::NotWaitingForOwner);
        }
        run.step = FallbackStep::AwaitingHandover { verifier: None };
        let decision = OwnerDecision { confirmed: matches };
        self.send(handoff, MessageTag::OwnerDecision, decision.encode_body());
        if !matches {
            self.fail(JoinerFailure::CodesDiffer);
        }
        Ok(())
    }

    /// (b) The code the owner typed, as shown on the sponsor. A malformed code is refused
    /// here and costs no attempt.
    pub fn enter_code<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        typed: &str,
        rng: &mut R,
    ) -> Result<(), PeerError> {
        self.handle_timeout(now);
        let Some(handoff) = self.handoff else {
            return Err(PeerError::NotWaitingForOwner);
        };
        let waiting = matches!(
            &self.phase,
            Phase::Fallback(run) if run.fallback == Fallback::SponsorShowsCode
                && matches!(run.step, FallbackStep::Pake { record: None, .. })
        );
        if !waiting {
            return Err(PeerError::NotWaitingForOwner);
        }
        let code = PairingCode::parse(typed)?;
        let record =
            prover_secret(&code, &self.config.joiner_id, CodeKind::Session)?.verifier_record();
        if let Phase::Fallback(run) = &mut self.phase
            && let FallbackStep::Pake { record: slot, .. } = &mut run.step
        {
            *slot = Some(record);
        }
        self.reply_if_ready(handoff, rng);
        Ok(())
    }

    fn send(&mut self, handoff: Handoff, tag: MessageTag, body: Vec<u8>) {
        let Ok(envelope) = Envelope::plain(flow2::header(tag, handoff.session_id), body) else {
            return self.fail(JoinerFailure::Unexpected);
        };
        let sealed = match self.channel.as_mut().map(|c| c.seal(&envelope.encode())) {
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) => return self.fail(JoinerFailure::Channel(e)),
            None => return self.fail(JoinerFailure::Channel(PeerError::ChannelClosed)),
        };
        self.transmits.push_back(sealed);
    }

    /// The handoff's deadline passed: the nonce is spent (or, in a fallback, the owner did
    /// not act in time).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(h) = self.handoff
            && now.is_past(h.expires)
        {
            let reason = if matches!(self.phase, Phase::Fallback(_)) {
                JoinerFailure::OwnerTimeout
            } else {
                JoinerFailure::NonceExpired
            };
            self.fail(reason);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.handoff.map(|h| h.expires)
    }

    /// Bytes to write to the stream.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<JoinerEvent> {
        self.events.pop_front()
    }

    /// Whether a credential was received and reported.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished)
    }

    /// Whether no handoff is in progress (none started, or the last one ended).
    pub fn is_idle(&self) -> bool {
        self.handoff.is_none()
    }

    /// The storage of the attempt counter.
    pub fn state(&self) -> &St {
        &self.state
    }

    /// Resets the attempt counter. Call only after an owner action (a button held at boot, a
    /// factory reset): it is what stops a rogue sponsor from collecting answers forever.
    pub fn reset_attempt_limit(&mut self) -> Result<(), St::Error> {
        attempt_succeeded(&mut self.state)
    }

    fn fail(&mut self, reason: JoinerFailure) {
        // In a fallback, or refusing one, the sponsor may be waiting for its owner: tell it the
        // joiner stopped
        // (an unsigned hint inside the channel) so it does not ask for a code in vain.
        // The phase is left first, so a failure while sending this cannot come back here.
        let was = core::mem::replace(&mut self.phase, Phase::Idle);
        let in_fallback = matches!(was, Phase::Fallback(_))
            || matches!(
                reason,
                JoinerFailure::FallbackNotOffered | JoinerFailure::AttemptLimitReached
            );
        if let (true, Some(handoff)) = (in_fallback, self.handoff)
            && self.channel.as_ref().is_some_and(LocalChannel::is_open)
        {
            let message = ErrorMessage {
                code: ErrorCode::HandoffUnavailable,
                retry_after_s: 0,
                supported_versions: Vec::new(),
            };
            self.send(handoff, MessageTag::Error, message.encode_body());
        }
        self.events.push_back(JoinerEvent::Failed { reason });
        self.finish(Phase::Idle);
    }

    fn finish(&mut self, phase: Phase) {
        // Dropping the channel wipes its keys; the last message is already queued.
        self.channel = None;
        self.handoff = None;
        self.phase = phase;
    }

    fn reset(&mut self) {
        self.channel = None;
        self.handoff = None;
        self.transmits.clear();
        self.phase = Phase::Idle;
    }
}

impl<St: PeerState, P: CryptoProvider> core::fmt::Debug for Joiner<St, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Joiner")
            .field("joiner_id", &self.config.joiner_id)
            .field("phase", &self.phase.name())
            .finish_non_exhaustive()
    }
}
