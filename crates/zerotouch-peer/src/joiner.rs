//! The joiner: a new device asking an already-joined sponsor for the home credential.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::CryptoRng;
use zeroize::Zeroize;
use zerotouch_core::flow2::{
    self, AnswerContext, ChallengeData, ChallengeResponse, Commitment, CredentialHandover,
    PeerCredentialRequest, challenge_answer, credential_commitment, handoff_transcript,
};
use zerotouch_core::{
    Body, CryptoProvider, DeviceSecret, Envelope, ErrorMessage, Flow, Instant, KeyId, KeyRole,
    Message, MessageTag, Nonce, PinnedKeys, RustCryptoProvider, SessionId,
};

use crate::PeerError;
use crate::channel::LocalChannel;
use crate::event::{JoinerEvent, JoinerFailure};
use crate::state::{AttemptLimit, PeerState, attempt_succeeded, begin_attempt};

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
}

impl JoinerConfig {
    /// A configuration with the default lifetime (60 s) and limit (10 answers).
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

#[derive(Debug)]
enum Phase {
    Idle,
    Handshaking,
    AwaitingChallenge,
    AwaitingHandover { commitment: Commitment },
    Finished,
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
    }

    /// Bytes the stream delivered, in any chunking.
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) {
        let (Some(handoff), Some(channel)) = (self.handoff, self.channel.as_mut()) else {
            return;
        };
        if now.is_past(handoff.expires) {
            return self.fail(JoinerFailure::NonceExpired);
        }
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
            if self.handoff.is_some() {
                self.handle_message(now, handoff, &message);
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
        };
        self.send(
            handoff,
            MessageTag::PeerCredentialRequest,
            request.encode_body(),
        );
        self.phase = Phase::AwaitingChallenge;
    }

    fn handle_message(&mut self, now: Instant, handoff: Handoff, bytes: &[u8]) {
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
        match begin_attempt(&mut self.state, &self.config.limit) {
            Ok(true) => {}
            Ok(false) => return self.fail(JoinerFailure::AttemptLimitReached),
            Err(_) => {
                self.events.push_back(JoinerEvent::StateNotSaved);
                return self.fail(JoinerFailure::AttemptLimitReached);
            }
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
        if attempt_succeeded(&mut self.state).is_err() {
            self.events.push_back(JoinerEvent::StateNotSaved);
        }
        let credential = handover.credential.clone();
        self.events.push_back(JoinerEvent::Join {
            ssid: credential.ssid.clone(),
            security: credential.security,
            passphrase: credential.passphrase.clone(),
        });
        self.finish(Phase::Finished);
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

    /// The handoff's deadline passed: the nonce is spent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(h) = self.handoff
            && now.is_past(h.expires)
        {
            self.fail(JoinerFailure::NonceExpired);
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
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}
