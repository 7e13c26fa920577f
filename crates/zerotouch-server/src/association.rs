//! The association service (flow 2, steps 3–4): one entry point,
//! [`AssociationService::answer`], for the sponsor's verification request.
//!
//! ```text
//! VerificationRequest (signed by the sponsor's device key over the handoff transcript)
//!   │ decode · tag · seq
//!   │ sponsor = device whose key id is the COSE kid: known, not blocked, signature verifies,
//!   │           payload's sponsor_id is the signer, TLS client key (if any) is the sponsor's
//!   │           ── any failure: NotAuthorized (one message for all)
//!   │ stored response for (session, 0)? same digest ─▶ the stored bytes again
//!   │                                   other digest ─▶ SessionExpired
//!   │ answer key's suite sealable?      ── else BadMessage
//!   │ count per sponsor, per joiner (store, windowed)  ── over: RateLimited
//!   │ joiner known, not blocked, has a device secret, shares an account with the sponsor
//!   │           ── any failure: NotAssociated (one message for all)
//!   │ nonce never seen (remembered for `nonce_memory`)  ── else SessionExpired
//!   ▼
//! ChallengeData (signed, association key) ─┐
//! expected answer sealed to the answer key ├─▶ VerificationData (signed, association key)
//! answer window ───────────────────────────┘      stored for retransmissions, then sent
//! ```
//!
//! The server never sees the home network credential: it copies the sponsor's commitment,
//! which is keyed by a secret only the sponsor and (after the handover) the joiner hold.

use core::time::Duration;
use std::sync::Arc;

use rand_core::CryptoRng;
use tracing::{Instrument, debug, info, info_span, warn};
use zerotouch_core::flow2::{
    self, AnswerContext, Challenge, ChallengeData, EXPECTED_ANSWER_INFO, SealedAnswer,
    VerificationData, VerificationRequest, challenge_answer, handoff_transcript,
};
use zerotouch_core::{
    Body, CryptoProvider, DecodeError, DeviceSecret, Envelope, ErrorCode, Flow, Header, Instant,
    KeyId, KeyRole, KeyState, Message, MessageTag, RustCryptoProvider, ServerKeyRing, SessionId,
    SessionKeyPair, SignedBody, Signer, TranscriptHash, sign_message,
};
use zerotouch_store::{CounterKey, CounterScope, ResponseKey, Store, StoreError};

use crate::association_refusal::{AssociationAnswer, AssociationRefusal};
use crate::config::AssociationConfig;
use crate::device_key::record_key;
use crate::metrics::ServiceMetrics;
use crate::refusal::error_envelope;
use crate::responses::{self, Earlier, Kept};
use crate::setup::revoked_keys;
use crate::transport_identity::TransportIdentity;

type Refused = AssociationRefusal;

impl From<StoreError> for AssociationRefusal {
    fn from(e: StoreError) -> Self {
        warn!(error = %e, "store failed");
        AssociationRefusal::Internal
    }
}

/// The flow-2 association service over a store `St`, signing with keys `S` (role
/// [`KeyRole::Association`]).
///
/// Stateless between requests, like [`crate::SetupService`]: nonces, counters and stored
/// responses are in the store, so any number of processes can share it. Build one on its own
/// with [`AssociationService::new`], or beside a setup service on the same store and keys with
/// [`crate::SetupService::association_service`].
pub struct AssociationService<St, S> {
    store: Arc<St>,
    keys: Arc<ServerKeyRing<S>>,
    config: AssociationConfig,
    provider: Arc<dyn CryptoProvider>,
    metrics: ServiceMetrics,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn secs_u32(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// A request whose sponsor proved itself: what the later steps work with.
struct Verified {
    request: VerificationRequest,
    digest: [u8; 32],
}

impl<St: Store, S: Signer> AssociationService<St, S> {
    /// A service over `store`, signing with the [`KeyRole::Association`] key of `keys`.
    pub fn new(store: St, keys: ServerKeyRing<S>, config: AssociationConfig) -> Self {
        Self::shared(Arc::new(store), Arc::new(keys), config)
    }

    /// A service over a store and keys shared with other services.
    pub fn shared(store: Arc<St>, keys: Arc<ServerKeyRing<S>>, config: AssociationConfig) -> Self {
        AssociationService {
            store,
            keys,
            config,
            provider: Arc::new(RustCryptoProvider),
            metrics: ServiceMetrics::default(),
        }
    }

    /// Does every cryptographic operation of the service through `provider` instead of
    /// [`RustCryptoProvider`]: the transcript hash, request digests and key ids, the sponsor's
    /// signature verification, the challenge answer's HMAC, the association key's signatures
    /// and the HPKE seal of the expected answer.
    pub fn with_provider(mut self, provider: Arc<dyn CryptoProvider>) -> Self {
        self.provider = provider;
        self
    }

    /// Counts into `metrics` (`zerotouch_association_requests{result}`) instead of a private
    /// set (share one set with a setup service and a [`crate::MeasuredStore`]).
    pub fn with_metrics(mut self, metrics: ServiceMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &ServiceMetrics {
        &self.metrics
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }

    /// The signing keys.
    pub fn keys(&self) -> &ServerKeyRing<S> {
        &self.keys
    }

    /// The configuration.
    pub fn config(&self) -> &AssociationConfig {
        &self.config
    }

    fn p(&self) -> &dyn CryptoProvider {
        &*self.provider
    }

    /// Answers one verification request that arrived through `transport` at `now`: the
    /// signed verification data, or an unsigned error message (header
    /// `flow2::header(Error, session)`, seq = the request's + 1). Never fails, never panics.
    pub async fn handle<R: CryptoRng + Send>(
        &self,
        request: &[u8],
        transport: &TransportIdentity,
        now: Instant,
        rng: &mut R,
    ) -> Vec<u8> {
        self.answer(request, transport, now, rng).await.bytes
    }

    /// [`Self::handle`], also saying why it refused, so a transport can set its status from
    /// the sponsor-visible [`AssociationRefusal::code`].
    pub async fn answer<R: CryptoRng + Send>(
        &self,
        request: &[u8],
        transport: &TransportIdentity,
        now: Instant,
        rng: &mut R,
    ) -> AssociationAnswer {
        let answer = self.answer_uncounted(request, transport, now, rng).await;
        self.metrics
            .association_request(answer.refusal.map_or("answered", Refused::as_str));
        answer
    }

    async fn answer_uncounted<R: CryptoRng + Send>(
        &self,
        request: &[u8],
        transport: &TransportIdentity,
        now: Instant,
        rng: &mut R,
    ) -> AssociationAnswer {
        let envelope = match Envelope::decode(request) {
            Ok(e) => e,
            Err(e) => {
                info!(error = %e, "refused: undecodable verification request");
                let refusal = match e {
                    DecodeError::UnsupportedVersion(_) => Refused::UnsupportedVersion,
                    _ => Refused::Malformed,
                };
                return self.refused(None, refusal, now);
            }
        };
        let h = envelope.header;
        let span = info_span!(
            "flow2",
            session = %hex::encode(h.session_id.0),
            tag = ?h.tag,
            transport = ?transport.device_transport(),
        );
        async {
            match self.verification(&envelope, transport, now, rng).await {
                Ok(bytes) => AssociationAnswer {
                    bytes,
                    refusal: None,
                },
                Err(refusal) => {
                    info!(reason = refusal.as_str(), "refused");
                    self.refused(Some(&h), refusal, now)
                }
            }
        }
        .instrument(span)
        .await
    }

    fn refused(
        &self,
        request: Option<&Header>,
        refusal: Refused,
        now: Instant,
    ) -> AssociationAnswer {
        let session = request.map_or(SessionId([0; 16]), |h| h.session_id);
        let mut header = flow2::header(MessageTag::Error, session);
        header.seq = request.map_or(0, |h| h.seq.saturating_add(1));
        let retry_after_s = match refusal.code() {
            ErrorCode::RateLimited => self.window_left_s(now),
            ErrorCode::NotAuthorized | ErrorCode::NotAssociated => {
                secs_u32(self.config.refusal_retry_after)
            }
            _ => 0,
        };
        AssociationAnswer {
            bytes: error_envelope(header, refusal.code(), retry_after_s),
            refusal: Some(refusal),
        }
    }

    /// The start and end of the rate window `now` falls in.
    fn window(&self, now: Instant) -> (Instant, Instant) {
        let len = millis(self.config.rate_window).max(1);
        let start = now.0 - now.0 % len;
        (Instant(start), Instant(start.saturating_add(len)))
    }

    /// Seconds to the end of the rate window: when a limited sponsor may ask again.
    fn window_left_s(&self, now: Instant) -> u32 {
        let (_, end) = self.window(now);
        u32::try_from(end.0.saturating_sub(now.0).div_ceil(1000)).unwrap_or(u32::MAX)
    }

    // ---- the steps, in order ------------------------------------------------------------

    async fn verification<R: CryptoRng + Send>(
        &self,
        envelope: &Envelope,
        transport: &TransportIdentity,
        now: Instant,
        rng: &mut R,
    ) -> Result<Vec<u8>, Refused> {
        let h = &envelope.header;
        if h.flow != Flow::PeerHandoff
            || h.tag != MessageTag::VerificationRequest
            || h.seq != flow2::seq_of(MessageTag::VerificationRequest)
        {
            return Err(Refused::Malformed);
        }
        let Body::Signed(signed) = &envelope.body else {
            return Err(Refused::Malformed);
        };
        let th = handoff_transcript(self.p(), &h.session_id);
        // The sponsor proves itself before anything about the session is looked at: unsigned
        // bytes learn nothing, not even whether a session id was used.
        let Verified { request, digest } = self.sponsor(envelope, signed, &th, transport).await?;
        let response_key = ResponseKey {
            session: h.session_id,
            seq: u64::from(h.seq),
        };
        match responses::earlier(&*self.store, response_key, &digest, now).await? {
            // An identical retransmission (a lossy link, a sponsor that timed out): the same
            // bytes, and nothing counted again.
            Earlier::Same(bytes) => {
                info!("identical retransmission: stored response");
                return Ok(bytes);
            }
            Earlier::Different => return Err(Refused::Replay),
            Earlier::Nothing => {}
        }
        if !SessionKeyPair::implements(request.answer_key.suite) {
            return Err(Refused::UnsupportedSuite);
        }
        // Counted before any further work, in the store, so limits hold across processes
        // and restarts. Only a request the sponsor signed counts: nobody else can spend a
        // sponsor's budget.
        let limits = [
            (
                CounterScope::PeerSponsorRequests,
                &request.sponsor_id,
                self.config.requests_per_sponsor,
                Refused::SponsorLimit,
            ),
            (
                CounterScope::PeerJoinerRequests,
                &request.joiner_id,
                self.config.requests_per_joiner,
                Refused::JoinerLimit,
            ),
        ];
        for (scope, subject, limit, over) in limits {
            if !self.count(scope, subject, limit, now).await? {
                return Err(over);
            }
        }
        let secret = self.joiner_secret(&request).await?;
        if let Some(theirs) = self
            .remember_nonce(&request, h.session_id, response_key, &digest, now)
            .await?
        {
            return Ok(theirs);
        }
        let bytes = self
            .build(h.session_id, &th, &request, &secret, rng)
            .await?;
        let bytes = match responses::keep(
            &*self.store,
            response_key,
            digest,
            bytes,
            now.saturating_add(self.config.response_lifetime),
        )
        .await?
        {
            Some(Kept::Ours(b) | Kept::Theirs(b)) => b,
            None => return Err(Refused::Replay),
        };
        info!(
            joiner = %hex::encode(&request.joiner_id.0[..8]),
            answer_window_ms = millis(self.config.answer_window),
            "verification data sent"
        );
        Ok(bytes)
    }

    /// The sponsor: the device of the COSE kid, unblocked, whose signature verifies, who
    /// names itself as sponsor, and whose TLS client key (if the transport had one) it is.
    async fn sponsor(
        &self,
        envelope: &Envelope,
        signed: &SignedBody,
        th: &TranscriptHash,
        transport: &TransportIdentity,
    ) -> Result<Verified, Refused> {
        let kid = *signed.key_id();
        let device = self
            .store
            .device(&kid)
            .await?
            .ok_or(Refused::UnknownSponsor)?;
        if device.blocked {
            return Err(Refused::BlockedSponsor);
        }
        let key = record_key(&device).ok_or_else(|| {
            warn!("stored sponsor identity does not parse");
            Refused::Internal
        })?;
        let payload = signed
            .verify(
                &envelope.header,
                KeyRole::DeviceIdentity,
                th,
                &key,
                self.p(),
            )
            .map_err(|e| {
                info!(error = %e, "sponsor signature failed");
                Refused::BadSignature
            })?;
        let request = VerificationRequest::decode_body(payload).map_err(|e| {
            debug!(error = %e, "signed payload does not decode");
            Refused::Malformed
        })?;
        if request.sponsor_id != kid {
            return Err(Refused::SponsorIdMismatch);
        }
        if transport
            .client_key()
            .is_some_and(|k| k.key_id_with(self.p()) != request.sponsor_id)
        {
            return Err(Refused::ClientKeyMismatch);
        }
        info!(sponsor = %hex::encode(&kid.0[..8]), "sponsor verified");
        Ok(Verified {
            request,
            digest: envelope.canonical_digest(self.p()),
        })
    }

    /// Counts one request for `subject` in `scope` in this window; whether it is within
    /// `limit`.
    async fn count(
        &self,
        scope: CounterScope,
        subject: &KeyId,
        limit: u64,
        now: Instant,
    ) -> Result<bool, Refused> {
        let (start, end) = self.window(now);
        let len = end.0.saturating_sub(start.0);
        let count = self
            .store
            .increment_counter(
                CounterKey::new(scope, subject.0.to_vec()),
                start,
                Instant(end.0.saturating_add(len)),
            )
            .await?;
        Ok(count <= limit)
    }

    /// The joiner's device secret, if the joiner may be vouched for: known, not blocked, with
    /// a secret, on an account of the sponsor's. Every failure is the same refusal code.
    async fn joiner_secret(&self, request: &VerificationRequest) -> Result<DeviceSecret, Refused> {
        let joiner = self
            .store
            .device(&request.joiner_id)
            .await?
            .ok_or(Refused::UnknownJoiner)?;
        if joiner.blocked {
            return Err(Refused::BlockedJoiner);
        }
        let secret = joiner.device_secret.ok_or(Refused::NoDeviceSecret)?;
        let sponsor_accounts = self
            .store
            .associations_of_device(&request.sponsor_id)
            .await?;
        let joiner_accounts = self
            .store
            .associations_of_device(&request.joiner_id)
            .await?;
        if !joiner_accounts
            .iter()
            .any(|j| sponsor_accounts.iter().any(|s| s.account == j.account))
        {
            return Err(Refused::NoSharedAccount);
        }
        Ok(secret)
    }

    /// Marks the joiner's nonce used. A nonce seen before (in any session) is refused, unless
    /// an identical copy of this very request won a race in another process and stored its
    /// answer already: then that answer (`Some`).
    async fn remember_nonce(
        &self,
        request: &VerificationRequest,
        session: SessionId,
        response_key: ResponseKey,
        digest: &[u8; 32],
        now: Instant,
    ) -> Result<Option<Vec<u8>>, Refused> {
        match self
            .store
            .issue_nonce(
                request.nonce,
                session,
                now.saturating_add(self.config.nonce_memory),
            )
            .await
        {
            Ok(()) => Ok(None),
            Err(StoreError::Conflict { .. }) => {
                match responses::earlier(&*self.store, response_key, digest, now).await? {
                    Earlier::Same(theirs) => Ok(Some(theirs)),
                    Earlier::Different | Earlier::Nothing => {
                        info!("replayed nonce");
                        Err(Refused::ReplayedNonce)
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The active association key the store has not revoked.
    async fn association_signer(&self) -> Result<&S, Refused> {
        let revoked = revoked_keys(&*self.store).await?;
        self.keys
            .keys()
            .iter()
            .find(|k| {
                k.role == KeyRole::Association
                    && k.state == KeyState::Active
                    && !revoked.contains(&k.signer.key_id())
            })
            .map(|k| &k.signer)
            .ok_or_else(|| {
                warn!("no usable association key");
                Refused::Internal
            })
    }

    /// The challenge data, the expected answer sealed to the sponsor, and the verification
    /// data around them, signed.
    async fn build<R: CryptoRng + Send>(
        &self,
        session: SessionId,
        th: &TranscriptHash,
        request: &VerificationRequest,
        secret: &DeviceSecret,
        rng: &mut R,
    ) -> Result<Vec<u8>, Refused> {
        let signer = self.association_signer().await?;
        let mut challenge = [0u8; 32];
        rng.fill_bytes(&mut challenge);
        let challenge = Challenge(challenge);
        let challenge_data = ChallengeData {
            sponsor_id: request.sponsor_id,
            joiner_id: request.joiner_id,
            nonce: request.nonce,
            commitment: request.commitment,
            // The sponsor's own channel, as it signed it: never a value the joiner supplied.
            binding: request.binding,
            challenge,
        };
        let challenge_data = self.sign(
            MessageTag::ChallengeData,
            session,
            th,
            challenge_data.encode_body(),
            signer,
        )?;
        let expected = challenge_answer(
            self.p(),
            secret,
            &AnswerContext {
                session_id: &session,
                nonce: &request.nonce,
                sponsor_id: &request.sponsor_id,
                joiner_id: &request.joiner_id,
            },
            &challenge,
            &request.binding,
        );
        let aad = self.p().sha256(&[&challenge_data]);
        let sealed = self
            .p()
            .hpke_seal(
                request.answer_key.suite,
                &request.answer_key.public_key,
                EXPECTED_ANSWER_INFO,
                &aad,
                &[expected.expose_secret()],
                rng,
            )
            .map_err(|e| {
                info!(error = %e, "answer key unusable");
                Refused::Malformed
            })?;
        let ciphertext = sealed
            .ciphertexts
            .into_iter()
            .next()
            .ok_or(Refused::Internal)?;
        let data = VerificationData {
            challenge_data,
            sealed_answer: SealedAnswer {
                encapsulated_key: sealed.encapsulated_key,
                ciphertext,
            },
            answer_window_ms: u32::try_from(millis(self.config.answer_window)).unwrap_or(u32::MAX),
        };
        self.sign(
            MessageTag::VerificationData,
            session,
            th,
            data.encode_body(),
            signer,
        )
    }

    fn sign(
        &self,
        tag: MessageTag,
        session: SessionId,
        th: &TranscriptHash,
        payload: Vec<u8>,
        signer: &S,
    ) -> Result<Vec<u8>, Refused> {
        sign_message(
            flow2::header(tag, session),
            KeyRole::Association,
            th,
            payload,
            signer,
            self.p(),
        )
        .map(|e| e.encode())
        .map_err(|e| {
            warn!(error = %e, "signing failed");
            Refused::Internal
        })
    }
}
