//! The setup service: one entry point, [`SetupService::handle`], for every flow-1 request.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::sync::Arc;

use rand_core::CryptoRng;
use tracing::{Instrument, debug, info, info_span, warn};
use zerotouch_core::flow1::binding::{
    CREDENTIALS_INFO, REPORT_INFO, outcome_ack_transcript, outcome_report_transcript,
    revocation_transcript, seal_aad,
};
use zerotouch_core::flow1::{
    CredentialEntry, CredentialRequest, CredentialResponse, DeviceReport, EntryStatus, Hello,
    OutcomeAck, OutcomeReport, RevocationQuery, RevocationStatus, RevocationVerdict, ServerProof,
    SetupTranscript, header, seq_of,
};
use zerotouch_core::{
    Body, CryptoProvider, DecodeError, Envelope, Header, Instant, KeyId, KeyRole, KeyState,
    Message, MessageTag, Nonce, PublicKey, RustCryptoProvider, SUPPORTED_VERSIONS, ServerKeyRing,
    SessionId, SignedBody, Signer, TranscriptHash, negotiate_suite, negotiate_version,
    sign_message,
};
use zerotouch_store::{
    AccountId, CounterKey, CounterScope, DeviceRecord, NonceUse, ResponseKey, SessionCas, Store,
    StoreError,
};

use crate::association::AssociationService;
use crate::config::{AmbiguousKeyPolicy, AssociationConfig, PinPolicy, ServiceConfig};
use crate::credentials;
use crate::device_key::{identity_key, record_key};
use crate::metrics::ServiceMetrics;
use crate::observed::{outcome_kind, scan_report};
use crate::refusal::{Refusal, error_response};
use crate::responses::{self, Earlier, Kept};
use crate::session_state::{SetupSession, Stage};
use crate::transport_identity::TransportIdentity;

const HOUR_MS: u64 = 3_600_000;
/// The retry hint after a store or signer failure, in seconds.
const INTERNAL_RETRY_AFTER_S: u32 = 2;

/// A stored setup session, decoded.
fn decode_session(state: &[u8]) -> Result<SetupSession, Refusal> {
    SetupSession::decode(state).map_err(|e| {
        warn!(error = %e, "stored session does not decode");
        Refusal::Internal
    })
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        warn!(error = %e, "store failed");
        Refusal::Internal
    }
}

impl From<DecodeError> for Refusal {
    fn from(e: DecodeError) -> Self {
        debug!(error = %e, "malformed message");
        Refusal::Malformed
    }
}

/// The flow-1 setup service over a store `St`, signing with keys `S`.
///
/// Stateless between requests: everything a session needs next is in the store, so any
/// process sharing the store can continue any session.
pub struct SetupService<St, S> {
    // Shared (not owned) so that an association service built with
    // [`SetupService::association_service`] works on the very same store and keys.
    store: Arc<St>,
    keys: Arc<ServerKeyRing<S>>,
    config: ServiceConfig,
    provider: Arc<dyn CryptoProvider>,
    last_purge_ms: AtomicU64,
    metrics: ServiceMetrics,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn secs_u32(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The service's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The bytes to send back: a response, or an unsigned error message.
    pub bytes: Vec<u8>,
    /// The kind of message answered, if the request decoded.
    pub message: Option<MessageTag>,
    /// Why it was refused, if it was (for logs and metrics; the device sees only its code).
    pub refusal: Option<Refusal>,
}

impl Answer {
    fn refused(
        header: Option<&Header>,
        refusal: Refusal,
        retry_after_s: u32,
        message: Option<MessageTag>,
    ) -> Self {
        Answer {
            bytes: error_response(header, refusal, retry_after_s),
            message,
            refusal: Some(refusal),
        }
    }
}

/// A request seen before (identical bytes, up to ECDSA malleability) or a new one.
enum Filed {
    Retransmission(Vec<u8>),
    New { key: ResponseKey, digest: [u8; 32] },
}

impl<St: Store, S: Signer> SetupService<St, S> {
    /// A service over `store`, signing with `keys`.
    pub fn new(store: St, keys: ServerKeyRing<S>, config: ServiceConfig) -> Self {
        SetupService {
            store: Arc::new(store),
            keys: Arc::new(keys),
            config,
            provider: Arc::new(RustCryptoProvider),
            last_purge_ms: AtomicU64::new(0),
            metrics: ServiceMetrics::default(),
        }
    }

    /// Does every cryptographic operation of the service through `provider` instead of
    /// [`RustCryptoProvider`]: hashes (transcripts, key ids, request digests), signatures
    /// (the provider's [`CryptoProvider::sign`] passes each to the key ring's signer),
    /// verifications of device proofs, and HPKE key generation, restoring, sealing and
    /// opening. Use it for a faster backend, or to count what sessions cost with a
    /// [`zerotouch_core::CountingProvider`]:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use zerotouch_core::{CountingProvider, RustCryptoProvider, ServerKeyRing, SoftwareSigner};
    /// use zerotouch_server::{ServiceConfig, SetupService};
    /// use zerotouch_store::MemoryStore;
    ///
    /// let counting = Arc::new(CountingProvider::new(RustCryptoProvider));
    /// let keys: ServerKeyRing<SoftwareSigner> = ServerKeyRing::new();
    /// let service = SetupService::new(MemoryStore::new(), keys, ServiceConfig::default())
    ///     .with_provider(counting.clone());
    /// // ... serve sessions, then read what they cost:
    /// assert_eq!(counting.counts().sign_p256, 0);
    /// # drop(service);
    /// ```
    pub fn with_provider(mut self, provider: Arc<dyn CryptoProvider>) -> Self {
        self.provider = provider;
        self
    }

    /// Counts into `metrics` instead of a private set (share one set between the service and
    /// a [`crate::MeasuredStore`] under it).
    pub fn with_metrics(mut self, metrics: ServiceMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The service's metrics, to register into a Prometheus registry.
    pub fn metrics(&self) -> &ServiceMetrics {
        &self.metrics
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }

    /// Gives the store back (tests, shutdown); the service itself while an association
    /// service built from it still shares the store.
    pub fn into_store(self) -> Result<St, Box<Self>> {
        match Arc::try_unwrap(self.store) {
            Ok(store) => Ok(store),
            Err(store) => Err(Box::new(SetupService { store, ..self })),
        }
    }

    /// The flow-2 association service over the same store and keys, with the same crypto
    /// provider and metrics: how one server process answers both flows (the HTTPS adapter's
    /// `serve` does this).
    pub fn association_service(&self, config: AssociationConfig) -> AssociationService<St, S> {
        AssociationService::shared(Arc::clone(&self.store), Arc::clone(&self.keys), config)
            .with_provider(Arc::clone(&self.provider))
            .with_metrics(self.metrics.clone())
    }

    /// The signing keys.
    pub fn keys(&self) -> &ServerKeyRing<S> {
        &self.keys
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    fn p(&self) -> &dyn CryptoProvider {
        &*self.provider
    }

    /// Answers one flow-1 request (hello, credential request, outcome report, revocation
    /// query) that arrived through `from` at `now`. Always returns bytes: the response, or an
    /// unsigned error message the device treats as a hint to retry.
    pub async fn handle<R: CryptoRng + Send>(
        &self,
        request: &[u8],
        from: &TransportIdentity,
        now: Instant,
        rng: &mut R,
    ) -> Vec<u8> {
        self.answer(request, from, now, rng).await.bytes
    }

    /// [`Self::handle`], also saying which message it answered and whether it refused it, so
    /// a transport can set its status (an HTTP code) from the device-visible
    /// [`Refusal::code`] without decoding anything itself.
    pub async fn answer<R: CryptoRng + Send>(
        &self,
        request: &[u8],
        from: &TransportIdentity,
        now: Instant,
        rng: &mut R,
    ) -> Answer {
        let answer = self.answer_uncounted(request, from, now, rng).await;
        self.metrics.request(answer.message, answer.refusal);
        answer
    }

    async fn answer_uncounted<R: CryptoRng + Send>(
        &self,
        request: &[u8],
        from: &TransportIdentity,
        now: Instant,
        rng: &mut R,
    ) -> Answer {
        self.purge_if_due(now).await;
        let envelope = match Envelope::decode(request) {
            Ok(e) => e,
            Err(DecodeError::UnsupportedVersion(v)) => {
                info!(offered = v, "refused: unsupported version");
                return Answer::refused(None, Refusal::UnsupportedVersion, 0, None);
            }
            Err(e) => {
                info!(error = %e, "refused: undecodable request");
                return Answer::refused(None, Refusal::Malformed, 0, None);
            }
        };
        let h = envelope.header;
        let span = info_span!(
            "flow1",
            session = %hex::encode(h.session_id.0),
            tag = ?h.tag,
            transport = ?from.device_transport(),
        );
        async {
            let result = if h.seq != seq_of(h.tag) {
                Err(Refusal::Malformed)
            } else {
                match h.tag {
                    MessageTag::Hello => self.hello(&envelope, from, now, rng).await,
                    MessageTag::CredentialRequest => {
                        self.credential_request(&envelope, from, now, rng).await
                    }
                    MessageTag::OutcomeReport => self.outcome_report(&envelope, from, now).await,
                    MessageTag::RevocationQuery => {
                        self.revocation_query(&envelope, from, now).await
                    }
                    _ => Err(Refusal::Malformed),
                }
            };
            match result {
                Ok(bytes) => Answer {
                    bytes,
                    message: Some(h.tag),
                    refusal: None,
                },
                Err(refusal) => {
                    info!(reason = ?refusal, "refused");
                    Answer::refused(
                        Some(&h),
                        refusal,
                        self.retry_after(refusal, now),
                        Some(h.tag),
                    )
                }
            }
        }
        .instrument(span)
        .await
    }

    fn retry_after(&self, refusal: Refusal, now: Instant) -> u32 {
        match refusal {
            Refusal::SignatureCap => {
                u32::try_from((HOUR_MS - now.0 % HOUR_MS).div_ceil(1000)).unwrap_or(u32::MAX)
            }
            Refusal::Malformed
            | Refusal::BadReport
            | Refusal::UnsupportedVersion
            | Refusal::NoCommonSuite
            | Refusal::SessionExpired => 0,
            // A store that failed (a database restarting) is usually back within seconds: a
            // long hint would cost every device in flight its whole back-off.
            Refusal::Internal => INTERNAL_RETRY_AFTER_S,
            _ => secs_u32(self.config.refusal_retry_after),
        }
    }

    /// Deletes expired sessions, nonces, stored responses, counters, and scan reports and
    /// outcomes past their retention. `handle` calls it every `purge_interval`.
    pub async fn purge_expired(
        &self,
        now: Instant,
    ) -> Result<zerotouch_store::PurgeReport, StoreError> {
        let report = self.store.purge_expired(now, self.config.retention).await?;
        info!(?report, "purged expired rows");
        Ok(report)
    }

    async fn purge_if_due(&self, now: Instant) {
        let interval = millis(self.config.purge_interval);
        if interval == 0 {
            return;
        }
        let last = self.last_purge_ms.load(Ordering::Relaxed);
        if now.0.saturating_sub(last) < interval {
            return;
        }
        // One caller per interval does the work; the others go on.
        if self
            .last_purge_ms
            .compare_exchange(last, now.0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
            && let Err(e) = self.purge_expired(now).await
        {
            warn!(error = %e, "purge failed");
        }
    }

    // ---- shared steps -------------------------------------------------------------------

    /// Where a request's response is filed (its session and sequence number) and its
    /// canonical digest; or, for an identical retransmission, the stored response.
    async fn filed(&self, envelope: &Envelope, now: Instant) -> Result<Filed, Refusal> {
        let h = &envelope.header;
        let key = ResponseKey {
            session: h.session_id,
            seq: u64::from(h.seq),
        };
        let digest = envelope.canonical_digest(self.p());
        Ok(match self.stored(key, &digest, now).await? {
            Some(r) => Filed::Retransmission(r),
            None => Filed::New { key, digest },
        })
    }

    /// The stored response to an identical earlier request; a different request under the
    /// same key is a replay.
    async fn stored(
        &self,
        key: ResponseKey,
        digest: &[u8; 32],
        now: Instant,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        match responses::earlier(&*self.store, key, digest, now).await? {
            Earlier::Same(r) => {
                info!("identical retransmission: stored response");
                Ok(Some(r))
            }
            Earlier::Different => Err(Refusal::Replay),
            Earlier::Nothing => Ok(None),
        }
    }

    async fn keep(
        &self,
        key: ResponseKey,
        digest: [u8; 32],
        response: Vec<u8>,
        expires_at: Instant,
    ) -> Result<Kept, Refusal> {
        responses::keep(&*self.store, key, digest, response, expires_at)
            .await?
            .ok_or(Refusal::Replay)
    }

    fn pin_counter(device: &KeyId) -> CounterKey {
        CounterKey::new(CounterScope::PinAttempts, device.0.to_vec())
    }

    /// The device if it may be served: known, not blocked, not locked out. The three cases
    /// give the device the same answer.
    async fn admit(&self, key_id: &KeyId, now: Instant) -> Result<DeviceRecord, Refusal> {
        let device = self
            .store
            .device(key_id)
            .await?
            .ok_or(Refusal::UnknownDevice)?;
        if device.blocked {
            return Err(Refusal::Blocked);
        }
        if self
            .store
            .attempt_state(Self::pin_counter(key_id))
            .await?
            .is_locked(now)
        {
            return Err(Refusal::Locked);
        }
        Ok(device)
    }

    /// The account whose networks the device gets.
    async fn account_of(&self, key_id: &KeyId) -> Result<AccountId, Refusal> {
        let associations = self.store.associations_of_device(key_id).await?;
        match associations.as_slice() {
            [] => Err(Refusal::NotAssociated),
            [one] => Ok(one.account),
            several => match self.config.ambiguous_key {
                AmbiguousKeyPolicy::Refuse => Err(Refusal::Ambiguous),
                AmbiguousKeyPolicy::MostRecent => several
                    .iter()
                    .max_by_key(|a| a.since)
                    .map(|a| a.account)
                    .ok_or(Refusal::Ambiguous),
            },
        }
    }

    /// Counts one signature for `device` in this hour; refuses past the cap.
    async fn spend_signature(&self, device: &KeyId, now: Instant) -> Result<(), Refusal> {
        let window = Instant(now.0 - now.0 % HOUR_MS);
        let count = self
            .store
            .increment_counter(
                CounterKey::new(CounterScope::Signatures, device.0.to_vec()),
                window,
                Instant(window.0.saturating_add(2 * HOUR_MS)),
            )
            .await?;
        if count > self.config.signatures_per_hour {
            return Err(Refusal::SignatureCap);
        }
        Ok(())
    }

    async fn revoked_keys(&self) -> Result<Vec<KeyId>, Refusal> {
        Ok(revoked_keys(&*self.store).await?)
    }

    fn usable_setup_signer(&self, id: &KeyId, revoked: &[KeyId]) -> Option<&S> {
        self.keys
            .get(id)
            .filter(|k| {
                k.role == KeyRole::SetupSigning
                    && k.state != KeyState::Revoked
                    && !revoked.contains(id)
            })
            .map(|k| &k.signer)
    }

    fn sign(
        &self,
        tag: MessageTag,
        session: SessionId,
        role: KeyRole,
        th: &TranscriptHash,
        payload: Vec<u8>,
        signer: &S,
    ) -> Result<Vec<u8>, Refusal> {
        sign_message(header(tag, session), role, th, payload, signer, self.p())
            .map(|e| e.encode())
            .map_err(|e| {
                warn!(error = %e, "signing failed");
                Refusal::Internal
            })
    }

    // ---- hello → server proof ---------------------------------------------------------------

    async fn hello<R: CryptoRng + Send>(
        &self,
        envelope: &Envelope,
        from: &TransportIdentity,
        now: Instant,
        rng: &mut R,
    ) -> Result<Vec<u8>, Refusal> {
        let Body::Plain(body) = &envelope.body else {
            return Err(Refusal::Malformed);
        };
        let sid = envelope.header.session_id;
        let (response_key, digest) = match self.filed(envelope, now).await? {
            Filed::Retransmission(r) => return Ok(r),
            Filed::New { key, digest } => (key, digest),
        };
        let hello = Hello::decode_body(body)?;
        let device_key = identity_key(&hello.identity).ok_or(Refusal::Malformed)?;
        if from.client_key().is_some_and(|k| *k != device_key) {
            return Err(Refusal::ClientKeyMismatch);
        }
        let key_id = device_key.key_id_with(self.p());
        // Negotiation first: its errors must not tell a known device from an unknown one.
        let version = negotiate_version(&hello.versions, SUPPORTED_VERSIONS)
            .map_err(|_| Refusal::UnsupportedVersion)?;
        let suite = negotiate_suite(&hello.suites, &self.config.suites)
            .map_err(|_| Refusal::NoCommonSuite)?;
        let device = self.admit(&key_id, now).await?;
        let account = self.account_of(&key_id).await?;
        let revoked = self.revoked_keys().await?;
        let trusted: Vec<KeyId> = hello
            .trusted_keys
            .iter()
            .filter(|id| !revoked.contains(id))
            .copied()
            .collect();
        let signer = self
            .keys
            .select_setup_key(device.device_type, device.serial, &trusted)
            .map_err(|_| Refusal::NoUsableKey)?;
        self.spend_signature(&key_id, now).await?;

        let sealing = self
            .p()
            .hpke_generate(suite, rng)
            .map_err(|_| Refusal::Internal)?;
        let server_nonce = Nonce::random(rng);
        let pin_required =
            self.config.pin_policy == PinPolicy::WhenRecorded && device.pin.is_some();
        let proof = ServerProof {
            version,
            suite,
            server_nonce,
            sealing_key: sealing.public_key().to_vec(),
            pin_required,
            expires_in_s: secs_u32(self.config.nonce_lifetime),
        };
        let payload = proof.encode_body();
        let transport = from.device_transport();
        let mut transcript = SetupTranscript::after_hello(self.p(), transport, &sid, body);
        let response = self.sign(
            MessageTag::ServerProof,
            sid,
            KeyRole::SetupSigning,
            &transcript.hash(),
            payload.clone(),
            signer,
        )?;
        transcript.absorb_proof(self.p(), &payload);

        let expires_at = now.saturating_add(self.config.session_lifetime);
        self.store
            .issue_nonce(
                server_nonce,
                sid,
                now.saturating_add(self.config.nonce_lifetime),
            )
            .await?;
        // Storing the response first makes it the one answer to this hello: a process racing
        // with an identical copy returns these bytes and writes no session of its own.
        let response = match self
            .keep(response_key, digest, response, expires_at)
            .await?
        {
            Kept::Theirs(r) => return Ok(r),
            Kept::Ours(r) => r,
        };
        let state = SetupSession {
            stage: Stage::AwaitingRequest,
            device: key_id,
            account,
            suite,
            server_key: signer.key_id(),
            transcript: transcript.hash(),
            server_nonce,
            pin_required,
            transport,
            sealing_key: sealing.private_bytes(),
            claimed_by: None,
        };
        match self
            .store
            .compare_and_swap_session(sid, None, state.encode().to_vec(), expires_at, now)
            .await?
        {
            SessionCas::Written { .. } => {}
            SessionCas::Conflict { .. } => return Err(Refusal::Replay),
        }
        info!(
            device = %hex::encode(&key_id.0[..8]),
            server_key = %hex::encode(&signer.key_id().0[..8]),
            pin_required,
            "server proof sent"
        );
        Ok(response)
    }

    // ---- credential request → credential response -------------------------------------------

    async fn credential_request<R: CryptoRng + Send>(
        &self,
        envelope: &Envelope,
        from: &TransportIdentity,
        now: Instant,
        rng: &mut R,
    ) -> Result<Vec<u8>, Refusal> {
        let Body::Signed(signed) = &envelope.body else {
            return Err(Refusal::Malformed);
        };
        let sid = envelope.header.session_id;
        let (response_key, digest) = match self.filed(envelope, now).await? {
            Filed::Retransmission(r) => {
                // Housekeeping only: the device gets its stored answer whatever happens here.
                if let Err(refusal) = self.finish_if_left_open(sid, now).await {
                    warn!(?refusal, "could not finish a session left open");
                }
                return Ok(r);
            }
            Filed::New { key, digest } => (key, digest),
        };
        let record = self
            .store
            .session(sid, now)
            .await?
            .ok_or(Refusal::SessionExpired)?;
        let state = decode_session(&record.state)?;
        let rerun = match state.stage {
            Stage::AwaitingRequest => false,
            // This very request (same canonical digest) claimed the session and its process
            // died before answering: run it again rather than strand the device.
            Stage::Claimed if state.claimed_by == Some(digest) => true,
            Stage::Claimed | Stage::Finished => return Err(Refusal::Replay),
        };
        let device = self.admit(&state.device, now).await?;
        let device_key = record_key(&device).ok_or(Refusal::Internal)?;
        if from.client_key().is_some_and(|k| *k != device_key) {
            return Err(Refusal::ClientKeyMismatch);
        }
        let payload = verify_proof(
            signed,
            &envelope.header,
            &state.transcript,
            &device_key,
            self.p(),
        )?;
        // From here on the device's key proof holds: what follows may count against it.
        // Everything that can refuse without the device being at fault is checked before the
        // nonce is consumed, so a retransmission after such a refusal is not taken for a replay.
        let request = CredentialRequest::decode_body(payload)?;
        if self.account_of(&state.device).await? != state.account {
            // Moved to another account since the hello: its networks are no longer this
            // account's to give.
            return Err(Refusal::NotAssociated);
        }
        let revoked = self.revoked_keys().await?;
        let signer = self
            .usable_setup_signer(&state.server_key, &revoked)
            .ok_or(Refusal::NoUsableKey)?;
        self.spend_signature(&state.device, now).await?;
        // The session is claimed for this request before anything counts: of different
        // requests in any number of processes exactly one gets past here, so a session
        // allows one PIN attempt.
        let version = if rerun {
            info!("request claimed the session but was never answered: running it again");
            record.version
        } else {
            let claimed = SetupSession {
                stage: Stage::Claimed,
                claimed_by: Some(digest),
                ..state.clone()
            };
            match self
                .store
                .compare_and_swap_session(
                    sid,
                    Some(record.version),
                    claimed.encode().to_vec(),
                    record.expires_at,
                    now,
                )
                .await?
            {
                SessionCas::Written { version } => version,
                // Another request claimed it first: if it was an identical copy that has
                // answered, its answer; otherwise (a different request, or a copy still at
                // work) a replay, and the device retries.
                SessionCas::Conflict { .. } => {
                    return match self.stored(response_key, &digest, now).await? {
                        Some(r) => Ok(r),
                        None => Err(Refusal::Replay),
                    };
                }
            }
        };
        match self
            .store
            .consume_nonce(state.server_nonce, sid, now)
            .await?
        {
            NonceUse::Consumed => {}
            // Used by this request's own first run (the claim says so).
            NonceUse::AlreadyUsed if rerun => {}
            NonceUse::AlreadyUsed | NonceUse::WrongSession => return Err(Refusal::Replay),
            NonceUse::Expired | NonceUse::Unknown => return Err(Refusal::SessionExpired),
        }
        let finished = SetupSession {
            stage: Stage::Finished,
            sealing_key: zeroize::Zeroizing::new(Vec::new()),
            ..state.clone()
        };
        let report = match self.open_report(&state, &request) {
            Ok(r) => r,
            Err(refusal) => {
                self.finish(sid, version, &finished, record.expires_at, now)
                    .await?;
                return Err(refusal);
            }
        };
        if state.pin_required {
            let proven = matches!((&report.pin, &device.pin), (Some(pin), Some(stored)) if stored.verify(pin));
            let counter = Self::pin_counter(&state.device);
            if !proven {
                let after = self
                    .store
                    .record_failure(counter, self.config.pin_lockout, now)
                    .await?;
                warn!(
                    failures = after.failures,
                    locked = after.locked_until.is_some(),
                    "wrong or missing PIN"
                );
                if after.locked_until.is_some() {
                    self.metrics.lockout();
                }
                self.finish(sid, version, &finished, record.expires_at, now)
                    .await?;
                return Err(Refusal::WrongPin);
            }
            self.store.clear_failures(counter).await?;
            info!("PIN proven");
        }

        let networks = self.store.networks_of_account(state.account).await?;
        let plan = credentials::plan(&networks, &report);
        let mut transcript = SetupTranscript::resume(state.transcript);
        transcript.absorb_request(self.p(), payload);
        let th = transcript.hash();
        let secrets: Vec<&[u8]> = plan
            .iter()
            .filter_map(|e| e.passphrase.map(|p| p.expose_secret()))
            .collect();
        let sealed = if secrets.is_empty() {
            None
        } else {
            Some(
                self.p()
                    .hpke_seal(
                        state.suite,
                        &request.session_key,
                        CREDENTIALS_INFO,
                        &seal_aad(&th),
                        &secrets,
                        rng,
                    )
                    .map_err(|_| Refusal::Malformed)?,
            )
        };
        let mut ciphertexts = sealed
            .as_ref()
            .map(|s| s.ciphertexts.clone())
            .unwrap_or_default()
            .into_iter();
        let entries: Vec<CredentialEntry> = plan
            .iter()
            .map(|e| CredentialEntry {
                ssid: e.ssid.clone(),
                security: e.security,
                status: e.status,
                ciphertext: if e.status == EntryStatus::Sealed {
                    ciphertexts.next().unwrap_or_default()
                } else {
                    Vec::new()
                },
            })
            .collect();
        let response = CredentialResponse {
            encapsulated_key: sealed.map(|s| s.encapsulated_key).unwrap_or_default(),
            entries,
        };
        let bytes = self.sign(
            MessageTag::CredentialResponse,
            sid,
            KeyRole::SetupSigning,
            &th,
            response.encode_body(),
            signer,
        )?;
        let bytes = match self
            .keep(response_key, digest, bytes, record.expires_at)
            .await?
        {
            Kept::Ours(b) | Kept::Theirs(b) => b,
        };
        // Support data only: failing to keep it must not cost the device its credentials.
        if let Err(e) = self
            .store
            .record_scan_report(scan_report(&state.device, sid, &report, now))
            .await
        {
            warn!(error = %e, "scan report not recorded");
        }
        self.finish(sid, version, &finished, record.expires_at, now)
            .await?;
        let sealed_count = plan
            .iter()
            .filter(|e| e.status == EntryStatus::Sealed)
            .count();
        info!(
            entries = plan.len(),
            sealed = sealed_count,
            "credential response sent"
        );
        Ok(bytes)
    }

    fn open_report(
        &self,
        state: &SetupSession,
        request: &CredentialRequest,
    ) -> Result<DeviceReport, Refusal> {
        let key = self
            .p()
            .hpke_restore(state.suite, &state.sealing_key)
            .map_err(|_| Refusal::Internal)?;
        let opened = self
            .p()
            .hpke_open(
                &key,
                &request.report.encapsulated_key,
                REPORT_INFO,
                &seal_aad(&state.transcript),
                &[&request.report.ciphertext],
            )
            .map_err(|_| Refusal::BadReport)?;
        let plaintext = opened.first().ok_or(Refusal::BadReport)?;
        DeviceReport::decode(plaintext).map_err(|_| Refusal::BadReport)
    }

    /// Marks the session finished: no second request is served in it.
    /// Finishes a session whose credential response is stored but which was never marked
    /// finished (its process died in between), so its sealing key does not outlive it.
    async fn finish_if_left_open(&self, sid: SessionId, now: Instant) -> Result<(), Refusal> {
        let Some(record) = self.store.session(sid, now).await? else {
            return Ok(());
        };
        let state = decode_session(&record.state)?;
        if state.stage != Stage::Finished {
            info!("credential response stored but session left open: finishing it");
            let finished = SetupSession {
                stage: Stage::Finished,
                sealing_key: zeroize::Zeroizing::new(Vec::new()),
                ..state
            };
            self.finish(sid, record.version, &finished, record.expires_at, now)
                .await?;
        }
        Ok(())
    }

    async fn finish(
        &self,
        sid: SessionId,
        version: u64,
        finished: &SetupSession,
        expires_at: Instant,
        now: Instant,
    ) -> Result<(), Refusal> {
        match self
            .store
            .compare_and_swap_session(
                sid,
                Some(version),
                finished.encode().to_vec(),
                expires_at,
                now,
            )
            .await?
        {
            SessionCas::Written { .. } => Ok(()),
            // Another process finished it first; the consumed nonce already stops a second
            // request, so there is nothing left to do.
            SessionCas::Conflict { .. } => Ok(()),
        }
    }

    // ---- outcome report → acknowledgement ----------------------------------------------------

    async fn outcome_report(
        &self,
        envelope: &Envelope,
        from: &TransportIdentity,
        now: Instant,
    ) -> Result<Vec<u8>, Refusal> {
        let Body::Signed(signed) = &envelope.body else {
            return Err(Refusal::Malformed);
        };
        let osid = envelope.header.session_id;
        let (response_key, digest) = match self.filed(envelope, now).await? {
            Filed::Retransmission(r) => return Ok(r),
            Filed::New { key, digest } => (key, digest),
        };
        let key_id = *signed.key_id();
        let device = self.admit(&key_id, now).await?;
        let device_key = record_key(&device).ok_or(Refusal::Internal)?;
        if from.client_key().is_some_and(|k| *k != device_key) {
            return Err(Refusal::ClientKeyMismatch);
        }
        let transport = from.device_transport();
        let th = outcome_report_transcript(self.p(), transport, &osid);
        let payload = verify_proof(signed, &envelope.header, &th, &device_key, self.p())?;
        let report = OutcomeReport::decode_body(payload)?;

        // The ack is signed by the key that served the setup session while it lives, else by
        // the key the type/serial map names.
        let revoked = self.revoked_keys().await?;
        let setup = match self.store.session(report.setup_session, now).await? {
            Some(rec) => Some(SetupSession::decode(&rec.state).map_err(|_| Refusal::Internal)?),
            None => None,
        };
        if setup.as_ref().is_some_and(|s| s.device != key_id) {
            return Err(Refusal::Replay);
        }
        let signer = match setup
            .as_ref()
            .and_then(|s| self.usable_setup_signer(&s.server_key, &revoked))
        {
            Some(s) => s,
            None => {
                let candidates: Vec<KeyId> = self
                    .keys
                    .keys()
                    .iter()
                    .filter(|k| k.role == KeyRole::SetupSigning)
                    .map(|k| k.signer.key_id())
                    .filter(|id| !revoked.contains(id))
                    .collect();
                self.keys
                    .select_setup_key(device.device_type, device.serial, &candidates)
                    .map_err(|_| Refusal::NoUsableKey)?
            }
        };
        self.spend_signature(&key_id, now).await?;
        let network = match self.account_of(&key_id).await {
            Ok(account) => self
                .store
                .networks_of_account(account)
                .await?
                .into_iter()
                .find(|n| n.ssid == report.ssid)
                .map(|n| n.id),
            Err(_) => None,
        };
        let ack = OutcomeAck {
            device_nonce: report.device_nonce,
        };
        let ack_th = outcome_ack_transcript(self.p(), transport, &osid, payload);
        let bytes = self.sign(
            MessageTag::OutcomeAck,
            osid,
            KeyRole::SetupSigning,
            &ack_th,
            ack.encode_body(),
            signer,
        )?;
        // The outcome is recorded before the acknowledgement is stored: a process dying in
        // between leaves the outcome and no answer, and the device's retransmission then
        // finds the outcome there and does not record it twice. (The other order would
        // acknowledge an outcome that was never recorded.)
        // "The same outcome" is the same setup session, kind and network: a device may
        // report a failed network and then the one it joined, under one setup session.
        let kind = outcome_kind(report.outcome);
        let recorded = self
            .store
            .outcomes_of_device(&key_id)
            .await?
            .iter()
            .any(|o| o.session == report.setup_session && o.kind == kind && o.network == network);
        if !recorded {
            self.store
                .record_outcome(zerotouch_store::OutcomeRecord {
                    device: key_id,
                    session: report.setup_session,
                    network,
                    kind: outcome_kind(report.outcome),
                    at: now,
                })
                .await?;
            self.metrics.outcome(outcome_kind(report.outcome));
            info!(outcome = ?report.outcome, "outcome recorded");
        }
        let bytes = match self
            .keep(
                response_key,
                digest,
                bytes,
                now.saturating_add(self.config.session_lifetime),
            )
            .await?
        {
            Kept::Theirs(b) | Kept::Ours(b) => b,
        };
        Ok(bytes)
    }

    // ---- revocation query → verdict ----------------------------------------------------------

    async fn revocation_query(
        &self,
        envelope: &Envelope,
        from: &TransportIdentity,
        now: Instant,
    ) -> Result<Vec<u8>, Refusal> {
        let Body::Plain(body) = &envelope.body else {
            return Err(Refusal::Malformed);
        };
        let rsid = envelope.header.session_id;
        let (response_key, digest) = match self.filed(envelope, now).await? {
            Filed::Retransmission(r) => return Ok(r),
            Filed::New { key, digest } => (key, digest),
        };
        let query = RevocationQuery::decode_body(body)?;
        let record = self
            .store
            .server_keys()
            .await?
            .into_iter()
            .find(|k| k.key_id == query.key_id && k.role == KeyRole::SetupSigning)
            .ok_or(Refusal::UnknownKey)?;
        let revoked = record.state == KeyState::Revoked;
        let verdict = RevocationVerdict {
            key_id: query.key_id,
            device_nonce: query.device_nonce,
            status: if revoked {
                RevocationStatus::Revoked
            } else {
                RevocationStatus::Good
            },
            replacement: if revoked { record.replacement } else { None },
        };
        // A dedicated key, never the one queried: a stolen setup key cannot vouch for itself.
        let signer = self
            .keys
            .signer_for(KeyRole::RevocationVerdict)
            .map_err(|_| Refusal::Internal)?;
        let th = revocation_transcript(self.p(), from.device_transport(), &rsid, body);
        let bytes = self.sign(
            MessageTag::RevocationVerdict,
            rsid,
            KeyRole::RevocationVerdict,
            &th,
            verdict.encode_body(),
            signer,
        )?;
        let bytes = match self
            .keep(
                response_key,
                digest,
                bytes,
                now.saturating_add(self.config.session_lifetime),
            )
            .await?
        {
            Kept::Ours(b) | Kept::Theirs(b) => b,
        };
        self.metrics.revocation_check(revoked);
        info!(
            key = %hex::encode(&query.key_id.0[..8]),
            revoked,
            "revocation verdict sent"
        );
        Ok(bytes)
    }
}

fn verify_proof<'a>(
    signed: &'a SignedBody,
    header: &Header,
    th: &TranscriptHash,
    key: &PublicKey,
    provider: &dyn CryptoProvider,
) -> Result<&'a [u8], Refusal> {
    signed
        .verify(header, KeyRole::DeviceIdentity, th, key, provider)
        .map_err(|e| {
            info!(error = %e, "device key proof failed");
            Refusal::BadKeyProof
        })
}

/// Ids of keys the store records as revoked (the store is shared by every process; the
/// in-memory ring may be older).
pub(crate) async fn revoked_keys<St: Store>(store: &St) -> Result<Vec<KeyId>, StoreError> {
    Ok(store
        .server_keys()
        .await?
        .into_iter()
        .filter(|k| k.state == KeyState::Revoked)
        .map(|k| k.key_id)
        .collect())
}
