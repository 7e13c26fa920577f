//! The device's flow-1 session: a sans-IO state machine. The firmware feeds it time, bytes,
//! scan and join results, and polls it for bytes to send, events and the next timer.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec::Vec;
use core::mem;

use rand_core::CryptoRng;
use zerotouch_core::flow1::binding::{
    CREDENTIALS_INFO, REPORT_INFO, outcome_ack_transcript, outcome_report_transcript,
    revocation_transcript, seal_aad,
};
use zerotouch_core::flow1::{
    CredentialRequest, CredentialResponse, DeviceIdentityRef, DeviceReport, EntryStatus, Hello,
    JoinOutcome, MAX_REPORTED_NETWORKS, MAX_TRUSTED_KEYS, OutcomeAck, OutcomeReport,
    ReportedNetwork, RevocationQuery, RevocationStatus, RevocationVerdict, SealedReport,
    ServerProof, SetupTranscript, header,
};
use zerotouch_core::{
    Body, CryptoProvider, Envelope, ErrorMessage, Header, Instant, KeyId, KeyRole, Message,
    MessageTag, Nonce, Passphrase, PendingSignature, PinnedKeys, ProtocolVersion,
    RustCryptoProvider, SessionId, SessionKeyPair, SignatureError, SignedBody, Signer,
    TranscriptHash, check_suite_choice, check_version_choice,
};

use crate::config::{DeviceConfig, JoinResult, Path, Transmit, Trigger};
use crate::credentials::{Credential, strongest_first};
use crate::error::DeviceError;
use crate::event::{Event, Failure, Refusal};
use crate::exchange::{Exchange, after};
use crate::state::{DeviceState, PersistedState};

/// Most suites a hello carries.
const MAX_SUITES: usize = 8;
/// Longest identity a hello carries.
const MAX_IDENTITY_LEN: usize = 800;
/// The versions this device offers.
const OFFERED_VERSIONS: [ProtocolVersion; 1] = [ProtocolVersion::V1];

/// The hello is out; waiting for the server's proof.
struct AwaitProof {
    ex: Exchange,
    transcript: SetupTranscript,
    offered_keys: Vec<KeyId>,
    networks: Vec<ReportedNetwork>,
}

/// The credential request is out; waiting for the credentials.
struct AwaitResponse {
    ex: Exchange,
    /// t3: what the response is signed over and the credentials are sealed with.
    th: TranscriptHash,
    /// Zeroized on drop (the core's key types wipe their scalars).
    session_key: SessionKeyPair,
    proof_key: KeyId,
    networks: Vec<ReportedNetwork>,
    /// The proof's validity: no retransmission of the request after it.
    expires_at: Instant,
}

/// Trying the credentials in order.
struct Joining {
    setup_session: SessionId,
    proof_key: KeyId,
    credentials: Vec<Credential>,
    next: usize,
}

/// On the home network, the outcome report is out.
struct AwaitAck {
    ex: Exchange,
    proof_key: KeyId,
    payload: Vec<u8>,
    nonce: Nonce,
}

/// The revocation query is out.
struct AwaitVerdict {
    ex: Exchange,
    th: TranscriptHash,
    query: RevocationQuery,
    /// Attempts that failed before this one.
    attempts: u32,
}

enum Phase {
    /// Not started, complete, or given up.
    Idle,
    /// Waiting for `scan_complete`.
    Scanning,
    /// Waiting before a new session.
    Backoff {
        until: Instant,
    },
    AwaitProof(Box<AwaitProof>),
    AwaitResponse(Box<AwaitResponse>),
    Joining(Joining),
    AwaitAck(AwaitAck),
    AwaitVerdict(AwaitVerdict),
    /// Waiting before the next revocation check.
    VerdictBackoff {
        until: Instant,
        key: KeyId,
        attempts: u32,
    },
}

impl Phase {
    fn exchange_mut(&mut self) -> Option<&mut Exchange> {
        match self {
            Phase::AwaitProof(s) => Some(&mut s.ex),
            Phase::AwaitResponse(s) => Some(&mut s.ex),
            Phase::AwaitAck(s) => Some(&mut s.ex),
            Phase::AwaitVerdict(s) => Some(&mut s.ex),
            _ => None,
        }
    }
}

/// The device side of flow 1, from the scan to the revocation check, as a sans-IO state
/// machine: it opens no socket, reads no clock and owns no RNG.
///
/// Drive it with [`start`](Self::start), [`scan_complete`](Self::scan_complete),
/// [`handle_incoming`](Self::handle_incoming), [`join_result`](Self::join_result) and
/// [`handle_timeout`](Self::handle_timeout) (when [`poll_timeout`](Self::poll_timeout) is
/// reached); after each call drain [`poll_transmit`](Self::poll_transmit) and
/// [`poll_event`](Self::poll_event).
///
/// Bytes from outside never make it fail or panic: whatever does not verify is reported as
/// [`Event::MessageRefused`] and otherwise ignored, since an attacker on the setup network can
/// inject anything. Unsigned errors are only hints ([`Event::ServerHint`]): they can delay a
/// retry but never end a session sooner than silence would, nor drop a key.
///
/// Every hash, signature, verification and HPKE operation goes through the crypto provider
/// `P`: [`RustCryptoProvider`] unless the session was made with
/// [`with_provider`](Self::with_provider).
pub struct DeviceSession<S: Signer, St: DeviceState, P: CryptoProvider = RustCryptoProvider> {
    config: DeviceConfig,
    pinned: PinnedKeys,
    signer: S,
    state: St,
    persisted: PersistedState,
    provider: P,
    phase: Phase,
    trigger: Option<Trigger>,
    resume_pending: bool,
    events: VecDeque<Event>,
    transmits: VecDeque<Transmit>,
}

impl<S: Signer, St: DeviceState, P: CryptoProvider> core::fmt::Debug for DeviceSession<S, St, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceSession")
            .field("trigger", &self.trigger)
            .field("persisted", &self.persisted)
            .finish_non_exhaustive()
    }
}

impl<S: Signer, St: DeviceState> DeviceSession<S, St> {
    /// A session for the device whose identity key is behind `signer`, trusting `pinned`
    /// (the keys burnt into firmware), keeping its state in `state`.
    ///
    /// Loads the persisted state: its dropped keys are dropped from `pinned` and its
    /// indication restored (a dropped or unknown key is never indicated).
    ///
    /// If the state says a setup was in progress, the device rebooted mid-flow: that attempt
    /// counts as a failed session (saved at once, so a device that keeps rebooting still runs
    /// out of its budget), [`resume_pending`](Self::resume_pending) is true, and the next
    /// [`start`](Self::start), whatever its trigger, runs as [`Trigger::Resume`] with a fresh
    /// session (nothing of the interrupted one is reused: its nonces and keys are gone).
    pub fn new(
        config: DeviceConfig,
        pinned: PinnedKeys,
        signer: S,
        state: St,
    ) -> Result<Self, DeviceError> {
        DeviceSession::with_provider(config, pinned, signer, state, RustCryptoProvider)
    }
}

impl<S: Signer, St: DeviceState, P: CryptoProvider> DeviceSession<S, St, P> {
    /// [`new`](DeviceSession::new), with every cryptographic operation of the session done
    /// through `provider`: hashes, the identity key's signatures (the provider's
    /// [`CryptoProvider::sign`] passes each to the signer), verifications, HPKE key
    /// generation, sealing and opening. Use it for a hardware-backed backend, or (with `std`)
    /// to count what one session costs with a [`zerotouch_core::CountingProvider`], shared
    /// with the caller through an `Arc`:
    ///
    /// ```text
    /// let counting = Arc::new(CountingProvider::new(RustCryptoProvider));
    /// let session = DeviceSession::with_provider(config, pinned, signer, state, counting.clone())?;
    /// // ... run the session, then read counting.counts()
    /// ```
    ///
    /// `benches/tests/crypto_operations.rs` does exactly that for the table of operations in
    /// `docs/PROTOCOL.md` section 15.7.
    pub fn with_provider(
        config: DeviceConfig,
        mut pinned: PinnedKeys,
        signer: S,
        mut state: St,
        provider: P,
    ) -> Result<Self, DeviceError> {
        if config.suites.is_empty() || config.suites.len() > MAX_SUITES {
            return Err(DeviceError::SuiteCount);
        }
        if let Some(suite) = config
            .suites
            .iter()
            .find(|s| !SessionKeyPair::implements(**s))
        {
            return Err(DeviceError::UnsupportedSuite(*suite));
        }
        let identity = match &config.identity {
            DeviceIdentityRef::Certificate(d) | DeviceIdentityRef::PublicKey(d) => d,
        };
        if identity.is_empty() || identity.len() > MAX_IDENTITY_LEN {
            return Err(DeviceError::IdentityLength);
        }
        if let DeviceIdentityRef::PublicKey(spki) = &config.identity
            && *spki != signer.public_key().to_spki_der()
        {
            return Err(DeviceError::IdentityMismatch);
        }
        let mut persisted = state
            .load()
            .map_err(|e| DeviceError::State(format!("{e:?}")))?
            .unwrap_or_default();
        for key in &persisted.dropped_keys {
            pinned.drop_key(*key);
        }
        if let Some(key) = persisted.indication {
            // Refused for a dropped or unknown key: the device then tries each key in turn.
            let _ = pinned.indicate(key);
        }
        persisted.dropped_keys = pinned.dropped().to_vec();
        persisted.indication = pinned.indication();
        // The longest hello this device can send: with every pinned key still trusted.
        let mut offered = pinned.trusted_key_ids(KeyRole::SetupSigning);
        offered.truncate(MAX_TRUSTED_KEYS);
        let longest = Hello {
            versions: OFFERED_VERSIONS.to_vec(),
            suites: config.suites.clone(),
            identity: config.identity.clone(),
            trusted_keys: offered,
            device_nonce: Nonce([0; 16]),
        };
        let len = plain_envelope(
            header(MessageTag::Hello, SessionId([0; 16])),
            longest.encode_body(),
        )
        .len();
        let limit = MessageTag::Hello.max_len();
        if len > limit {
            return Err(DeviceError::HelloTooLong { len, limit });
        }
        let resume_pending = persisted.in_progress.is_some();
        let mut session = DeviceSession {
            config,
            pinned,
            signer,
            state,
            persisted,
            provider,
            phase: Phase::Idle,
            trigger: None,
            resume_pending,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
        };
        if resume_pending {
            session.persisted.failed_sessions = session.persisted.failed_sessions.saturating_add(1);
            session.persist();
        }
        Ok(session)
    }

    /// Starts setup (abandoning any setup under way) and emits [`Event::ScanRequested`].
    ///
    /// A clean start resets the count of failed sessions; a start after a reboot mid-flow
    /// (see [`new`](Self::new)) keeps it and runs as [`Trigger::Resume`]. With the budget
    /// already spent, it gives up at once ([`Event::GaveUp`]).
    pub fn start(&mut self, now: Instant, trigger: Trigger) {
        let _ = now;
        let trigger = if mem::take(&mut self.resume_pending) {
            Trigger::Resume
        } else {
            if trigger != Trigger::Resume {
                self.persisted.failed_sessions = 0;
            }
            trigger
        };
        self.trigger = Some(trigger);
        self.transmits.clear();
        if self.persisted.failed_sessions >= self.config.retry.max_sessions {
            self.phase = self.give_up(Failure::Interrupted);
            return;
        }
        self.request_scan();
    }

    /// The scan's result. Only secured networks (security bits not 0) that a report can carry
    /// are kept, strongest first, at most 40; then the hello is sent. Ignored unless a scan
    /// was requested.
    pub fn scan_complete<R: CryptoRng>(
        &mut self,
        now: Instant,
        networks: Vec<ReportedNetwork>,
        rng: &mut R,
    ) {
        if !matches!(self.phase, Phase::Scanning) {
            return;
        }
        let mut networks: Vec<ReportedNetwork> = networks
            .into_iter()
            .filter(|n| {
                n.security != 0
                    && n.security <= 3
                    && (1..=32).contains(&n.ssid.len())
                    && n.signal_loss_db <= 127
                    && n.band <= 7
            })
            .collect();
        networks.sort_by_key(|n| n.signal_loss_db);
        networks.truncate(MAX_REPORTED_NETWORKS);
        self.phase = self.send_hello(now, networks, rng);
    }

    /// Bytes received over `path`. Anything that is not the awaited answer, verified, is
    /// ignored with [`Event::MessageRefused`].
    pub fn handle_incoming<R: CryptoRng>(
        &mut self,
        now: Instant,
        path: Path,
        bytes: &[u8],
        rng: &mut R,
    ) {
        let envelope = match Envelope::decode(bytes) {
            Ok(e) => e,
            Err(e) => return self.refuse(Refusal::Malformed(e)),
        };
        let Some(ex) = self.phase.exchange_mut() else {
            return self.refuse(Refusal::Unexpected);
        };
        if ex.path != path {
            return self.refuse(Refusal::WrongPath);
        }
        if let Err(r) = ex.check_header(&envelope.header) {
            return self.refuse(r);
        }
        let body = match envelope.body {
            Body::Signed(body) => body,
            Body::Plain(bytes) if envelope.header.tag == MessageTag::Error => {
                match ErrorMessage::decode_body(&bytes) {
                    Ok(msg) => {
                        ex.hint(now, msg.retry_after_s, &self.config.retry);
                        self.events.push_back(Event::ServerHint {
                            code: msg.code,
                            retry_after_s: msg.retry_after_s,
                        });
                    }
                    Err(e) => self.refuse(Refusal::Malformed(e)),
                }
                return;
            }
            // The envelope decoder already refuses a plain body for a signed tag.
            Body::Plain(_) => return self.refuse(Refusal::Unexpected),
        };
        let header = envelope.header;
        self.phase = match mem::replace(&mut self.phase, Phase::Idle) {
            Phase::AwaitProof(st) => self.on_proof(now, st, &header, &body, rng),
            Phase::AwaitResponse(st) => self.on_response(now, st, &header, &body),
            Phase::AwaitAck(st) => self.on_ack(now, st, &header, &body, rng),
            Phase::AwaitVerdict(st) => self.on_verdict(now, st, &header, &body),
            other => other,
        };
    }

    /// What happened when the firmware tried the network of the last [`Event::Join`]. After
    /// a failure the next credential is tried; once joined, the outcome report goes out over
    /// the home network. Ignored unless a join is under way.
    pub fn join_result<R: CryptoRng>(&mut self, now: Instant, result: JoinResult, rng: &mut R) {
        let mut j = match mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Joining(j) => j,
            other => {
                self.phase = other;
                return;
            }
        };
        self.phase = match result {
            JoinResult::Joined => match j.credentials.get(j.next) {
                Some(c) => {
                    let ssid = c.ssid.clone();
                    self.events.push_back(Event::Joined { ssid: ssid.clone() });
                    // The credentials are dropped (and zeroized) here.
                    let (setup_session, proof_key) = (j.setup_session, j.proof_key);
                    drop(j);
                    self.send_outcome(now, setup_session, proof_key, ssid, rng)
                }
                None => Phase::Joining(j),
            },
            JoinResult::Failed(_) => {
                j.next = j.next.saturating_add(1);
                match j.credentials.get(j.next) {
                    Some(c) => {
                        self.events.push_back(join_event(c));
                        Phase::Joining(j)
                    }
                    None => self.fail_session(now, Failure::AllJoinsFailed),
                }
            }
        };
    }

    /// Call when [`poll_timeout`](Self::poll_timeout) is reached: retransmits, fails the
    /// session, or starts the next one. Does nothing before the timer.
    pub fn handle_timeout<R: CryptoRng>(&mut self, now: Instant, rng: &mut R) {
        match self.poll_timeout() {
            Some(deadline) if now.is_past(deadline) => {}
            _ => return,
        }
        let retry = self.config.retry;
        self.phase = match mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Backoff { .. } => {
                self.request_scan();
                Phase::Scanning
            }
            Phase::AwaitProof(mut st) => match st.ex.retransmit(now, &retry) {
                Some(t) => {
                    self.transmits.push_back(t);
                    Phase::AwaitProof(st)
                }
                None => self.fail_session(now, Failure::Timeout),
            },
            Phase::AwaitResponse(mut st) => {
                if now.is_past(st.expires_at) {
                    self.fail_session(now, Failure::ProofExpired)
                } else {
                    match st.ex.retransmit(now, &retry) {
                        Some(t) => {
                            self.transmits.push_back(t);
                            Phase::AwaitResponse(st)
                        }
                        None => self.fail_session(now, Failure::Timeout),
                    }
                }
            }
            // The report only informs the server: without an acknowledgement the device goes
            // on to the revocation check.
            Phase::AwaitAck(mut st) => match st.ex.retransmit(now, &retry) {
                Some(t) => {
                    self.transmits.push_back(t);
                    Phase::AwaitAck(st)
                }
                None => self.start_revocation_check(now, st.proof_key, 0, rng),
            },
            Phase::AwaitVerdict(mut st) => match st.ex.retransmit(now, &retry) {
                Some(t) => {
                    self.transmits.push_back(t);
                    Phase::AwaitVerdict(st)
                }
                None => {
                    let attempts = st.attempts.saturating_add(1);
                    if attempts >= retry.max_sessions {
                        self.complete(false)
                    } else {
                        Phase::VerdictBackoff {
                            until: after(now, retry.back_off_ms(attempts)),
                            key: st.query.key_id,
                            attempts,
                        }
                    }
                }
            },
            Phase::VerdictBackoff { key, attempts, .. } => {
                self.start_revocation_check(now, key, attempts, rng)
            }
            other => other,
        };
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Backoff { until } | Phase::VerdictBackoff { until, .. } => Some(*until),
            Phase::AwaitProof(s) => Some(s.ex.deadline),
            Phase::AwaitResponse(s) => Some(s.ex.deadline),
            Phase::AwaitAck(s) => Some(s.ex.deadline),
            Phase::AwaitVerdict(s) => Some(s.ex.deadline),
            Phase::Idle | Phase::Scanning | Phase::Joining(_) => None,
        }
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The pinned keys, with the dropped keys and the indication applied.
    pub fn pinned_keys(&self) -> &PinnedKeys {
        &self.pinned
    }

    /// The state store.
    pub fn state(&self) -> &St {
        &self.state
    }

    /// The state as last persisted (or about to be).
    pub fn persisted(&self) -> &PersistedState {
        &self.persisted
    }

    /// Whether the device found, at creation, that it had rebooted mid-flow and has not been
    /// started since: the firmware should call [`start`](Self::start) with
    /// [`Trigger::Resume`].
    pub fn resume_pending(&self) -> bool {
        self.resume_pending
    }

    /// Why the current setup started.
    pub fn trigger(&self) -> Option<Trigger> {
        self.trigger
    }

    /// Whether nothing is under way (not started, complete, or given up).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    // ---------------------------------------------------------------------------------------
    // Transitions.
    // ---------------------------------------------------------------------------------------

    fn request_scan(&mut self) {
        self.events.push_back(Event::ScanRequested);
        self.phase = Phase::Scanning;
    }

    fn send_hello<R: CryptoRng>(
        &mut self,
        now: Instant,
        networks: Vec<ReportedNetwork>,
        rng: &mut R,
    ) -> Phase {
        let mut offered_keys = self.pinned.trusted_key_ids(KeyRole::SetupSigning);
        offered_keys.truncate(MAX_TRUSTED_KEYS);
        if offered_keys.is_empty() {
            return self.give_up(Failure::NoTrustedKey);
        }
        let sid = SessionId::random(rng);
        let hello = Hello {
            versions: OFFERED_VERSIONS.to_vec(),
            suites: self.config.suites.clone(),
            identity: self.config.identity.clone(),
            trusted_keys: offered_keys.clone(),
            device_nonce: Nonce::random(rng),
        };
        let body = hello.encode_body();
        let transcript =
            SetupTranscript::after_hello(&self.provider, self.config.transport, &sid, &body);
        let bytes = plain_envelope(header(MessageTag::Hello, sid), body);
        // Session start: the marker tells a rebooted device it was mid-flow.
        self.persisted.in_progress = Some(sid);
        self.persist();
        let ex = self.send(now, Path::Setup, sid, MessageTag::ServerProof, bytes);
        Phase::AwaitProof(Box::new(AwaitProof {
            ex,
            transcript,
            offered_keys,
            networks,
        }))
    }

    fn check_proof(
        &self,
        st: &AwaitProof,
        header: &Header,
        body: &SignedBody,
    ) -> Result<(KeyId, ServerProof, Vec<u8>), Refusal> {
        let payload = body
            .verify_trusted(
                header,
                KeyRole::SetupSigning,
                &st.transcript.hash(),
                &self.pinned,
                &self.provider,
            )
            .map_err(Refusal::Signature)?;
        let key_id = *body.key_id();
        if !st.offered_keys.contains(&key_id) {
            return Err(Refusal::KeyNotOffered);
        }
        let proof = ServerProof::decode_body(payload).map_err(Refusal::Malformed)?;
        check_version_choice(&OFFERED_VERSIONS, proof.version).map_err(Refusal::Downgrade)?;
        check_suite_choice(&self.config.suites, proof.suite).map_err(Refusal::Downgrade)?;
        Ok((key_id, proof, payload.to_vec()))
    }

    fn on_proof<R: CryptoRng>(
        &mut self,
        now: Instant,
        st: Box<AwaitProof>,
        header: &Header,
        body: &SignedBody,
        rng: &mut R,
    ) -> Phase {
        let (key_id, proof, payload) = match self.check_proof(&st, header, body) {
            Ok(v) => v,
            Err(r) => {
                self.refuse(r);
                return Phase::AwaitProof(st);
            }
        };
        let AwaitProof {
            ex,
            mut transcript,
            networks,
            ..
        } = *st;
        transcript.absorb_proof(&self.provider, &payload);
        self.events.push_back(Event::ServerAuthenticated { key_id });
        // Only now, with the server authenticated, may the PIN leave the device (sealed).
        let pin = match (proof.pin_required, &self.config.pin) {
            (false, _) => None,
            (true, Some(pin)) => Some(pin.clone()),
            (true, None) => return self.fail_session(now, Failure::PinRequiredButNone),
        };
        let report = DeviceReport {
            pin,
            networks,
            radio_bands: self.config.radio_bands,
            radio_security: self.config.radio_security,
        };
        match self.credential_request(now, ex.session_id, transcript, &proof, report, rng) {
            Ok((ex, th, session_key, networks)) => Phase::AwaitResponse(Box::new(AwaitResponse {
                ex,
                th,
                session_key,
                proof_key: key_id,
                networks,
                expires_at: after(now, u64::from(proof.expires_in_s).saturating_mul(1000)),
            })),
            Err(f) => self.fail_session(now, f),
        }
    }

    /// Seals the report, makes the session key, signs and sends the request. Returns its
    /// exchange, t3, the session key and the reported networks.
    fn credential_request<R: CryptoRng>(
        &mut self,
        now: Instant,
        sid: SessionId,
        mut transcript: SetupTranscript,
        proof: &ServerProof,
        report: DeviceReport,
        rng: &mut R,
    ) -> Result<
        (
            Exchange,
            TranscriptHash,
            SessionKeyPair,
            Vec<ReportedNetwork>,
        ),
        Failure,
    > {
        let t2 = transcript.hash();
        // `encode` wipes its copies of the PIN; the report's own is wiped when it drops.
        let plaintext = report.encode();
        let DeviceReport { networks, .. } = report;
        let sealed = self
            .provider
            .hpke_seal(
                proof.suite,
                &proof.sealing_key,
                REPORT_INFO,
                &seal_aad(&t2),
                &[&plaintext],
                rng,
            )
            .map_err(Failure::Seal)?;
        drop(plaintext);
        let session_key = self
            .provider
            .hpke_generate(proof.suite, rng)
            .map_err(Failure::Seal)?;
        let request = CredentialRequest {
            session_key: session_key.public_key().to_vec(),
            report: SealedReport {
                encapsulated_key: sealed.encapsulated_key,
                ciphertext: sealed.ciphertexts.into_iter().next().unwrap_or_default(),
            },
        };
        let payload = request.encode_body();
        let bytes = self.sign(header(MessageTag::CredentialRequest, sid), &t2, &payload)?;
        transcript.absorb_request(&self.provider, &payload);
        let ex = self.send(now, Path::Setup, sid, MessageTag::CredentialResponse, bytes);
        Ok((ex, transcript.hash(), session_key, networks))
    }

    fn check_response(
        &self,
        st: &AwaitResponse,
        header: &Header,
        body: &SignedBody,
    ) -> Result<Vec<Credential>, Refusal> {
        if *body.key_id() != st.proof_key {
            return Err(Refusal::WrongSigner);
        }
        let payload = body
            .verify_trusted(
                header,
                KeyRole::SetupSigning,
                &st.th,
                &self.pinned,
                &self.provider,
            )
            .map_err(Refusal::Signature)?;
        let response = CredentialResponse::decode_body(payload).map_err(Refusal::Malformed)?;
        let sealed: Vec<_> = response
            .entries
            .iter()
            .filter(|e| e.status == EntryStatus::Sealed)
            .collect();
        if sealed.is_empty() {
            return Ok(Vec::new());
        }
        let ciphertexts: Vec<&[u8]> = sealed.iter().map(|e| e.ciphertext.as_slice()).collect();
        // One context, entry order: a reordered or dropped entry does not open.
        let opened = self
            .provider
            .hpke_open(
                &st.session_key,
                &response.encapsulated_key,
                CREDENTIALS_INFO,
                &seal_aad(&st.th),
                &ciphertexts,
            )
            .map_err(Refusal::SealedCredentials)?;
        Ok(sealed
            .iter()
            .zip(&opened)
            .filter_map(|(entry, plain)| {
                // A credential the radio could not use is skipped, not fatal.
                Passphrase::new(plain).ok().map(|passphrase| Credential {
                    ssid: entry.ssid.clone(),
                    security: entry.security,
                    passphrase,
                })
            })
            .collect())
    }

    fn on_response(
        &mut self,
        now: Instant,
        st: Box<AwaitResponse>,
        header: &Header,
        body: &SignedBody,
    ) -> Phase {
        let mut credentials = match self.check_response(&st, header, body) {
            Ok(c) => c,
            Err(r) => {
                self.refuse(r);
                return Phase::AwaitResponse(st);
            }
        };
        if credentials.is_empty() {
            return self.fail_session(now, Failure::NoCredentials);
        }
        strongest_first(&mut credentials, &st.networks);
        if let Some(first) = credentials.first() {
            self.events.push_back(join_event(first));
        }
        Phase::Joining(Joining {
            setup_session: st.ex.session_id,
            proof_key: st.proof_key,
            credentials,
            next: 0,
        })
    }

    fn send_outcome<R: CryptoRng>(
        &mut self,
        now: Instant,
        setup_session: SessionId,
        proof_key: KeyId,
        ssid: Vec<u8>,
        rng: &mut R,
    ) -> Phase {
        let osid = SessionId::random(rng);
        let nonce = Nonce::random(rng);
        let report = OutcomeReport {
            setup_session,
            ssid,
            outcome: JoinOutcome::Joined,
            device_nonce: nonce,
        };
        let payload = report.encode_body();
        let th = outcome_report_transcript(&self.provider, self.config.home_transport, &osid);
        match self.sign(header(MessageTag::OutcomeReport, osid), &th, &payload) {
            Ok(bytes) => {
                let ex = self.send(now, Path::Home, osid, MessageTag::OutcomeAck, bytes);
                Phase::AwaitAck(AwaitAck {
                    ex,
                    proof_key,
                    payload,
                    nonce,
                })
            }
            // The report only informs the server; the revocation check matters more.
            Err(_) => self.start_revocation_check(now, proof_key, 0, rng),
        }
    }

    fn check_ack(&self, st: &AwaitAck, header: &Header, body: &SignedBody) -> Result<(), Refusal> {
        let th = outcome_ack_transcript(
            &self.provider,
            self.config.home_transport,
            &st.ex.session_id,
            &st.payload,
        );
        let payload = body
            .verify_trusted(
                header,
                KeyRole::SetupSigning,
                &th,
                &self.pinned,
                &self.provider,
            )
            .map_err(Refusal::Signature)?;
        let ack = OutcomeAck::decode_body(payload).map_err(Refusal::Malformed)?;
        if ack.device_nonce != st.nonce {
            return Err(Refusal::WrongNonce);
        }
        Ok(())
    }

    fn on_ack<R: CryptoRng>(
        &mut self,
        now: Instant,
        st: AwaitAck,
        header: &Header,
        body: &SignedBody,
        rng: &mut R,
    ) -> Phase {
        if let Err(r) = self.check_ack(&st, header, body) {
            self.refuse(r);
            return Phase::AwaitAck(st);
        }
        self.events.push_back(Event::OutcomeAcknowledged);
        self.start_revocation_check(now, st.proof_key, 0, rng)
    }

    fn start_revocation_check<R: CryptoRng>(
        &mut self,
        now: Instant,
        key: KeyId,
        attempts: u32,
        rng: &mut R,
    ) -> Phase {
        let rsid = SessionId::random(rng);
        let query = RevocationQuery {
            key_id: key,
            device_nonce: Nonce::random(rng),
        };
        let body = query.encode_body();
        let th = revocation_transcript(&self.provider, self.config.home_transport, &rsid, &body);
        let bytes = plain_envelope(header(MessageTag::RevocationQuery, rsid), body);
        let ex = self.send(now, Path::Home, rsid, MessageTag::RevocationVerdict, bytes);
        Phase::AwaitVerdict(AwaitVerdict {
            ex,
            th,
            query,
            attempts,
        })
    }

    fn check_verdict(
        &self,
        st: &AwaitVerdict,
        header: &Header,
        body: &SignedBody,
    ) -> Result<RevocationVerdict, Refusal> {
        // A revoked key must not vouch for itself (a thief holding it would say "good").
        if *body.key_id() == st.query.key_id {
            return Err(Refusal::SignedByQueriedKey);
        }
        let payload = body
            .verify_trusted(
                header,
                KeyRole::RevocationVerdict,
                &st.th,
                &self.pinned,
                &self.provider,
            )
            .map_err(Refusal::Signature)?;
        let verdict = RevocationVerdict::decode_body(payload).map_err(Refusal::Malformed)?;
        if verdict.key_id != st.query.key_id {
            return Err(Refusal::WrongKey);
        }
        if verdict.device_nonce != st.query.device_nonce {
            return Err(Refusal::WrongNonce);
        }
        Ok(verdict)
    }

    fn on_verdict(
        &mut self,
        now: Instant,
        st: AwaitVerdict,
        header: &Header,
        body: &SignedBody,
    ) -> Phase {
        let _ = now;
        let verdict = match self.check_verdict(&st, header, body) {
            Ok(v) => v,
            Err(r) => {
                self.refuse(r);
                return Phase::AwaitVerdict(st);
            }
        };
        match verdict.status {
            RevocationStatus::Good => self.complete(true),
            RevocationStatus::Revoked => self.revoke(verdict.key_id, verdict.replacement),
        }
    }

    /// A verified verdict revoked `key`: drop it for good, indicate the replacement if the
    /// device pins it as a setup key, save, leave the network and start again.
    fn revoke(&mut self, key: KeyId, replacement: Option<KeyId>) -> Phase {
        self.pinned.drop_key(key);
        let replacement = replacement.filter(|r| self.pinned.indicate(*r).is_ok());
        self.persisted.dropped_keys = self.pinned.dropped().to_vec();
        self.persisted.indication = self.pinned.indication();
        self.persist();
        self.events.push_back(Event::KeyRevoked {
            key_id: key,
            replacement,
        });
        self.events.push_back(Event::LeaveNetwork);
        self.trigger = Some(Trigger::KeyRevoked);
        self.request_scan();
        Phase::Scanning
    }

    fn complete(&mut self, revocation_checked: bool) -> Phase {
        self.persisted.in_progress = None;
        self.persisted.failed_sessions = 0;
        self.persist();
        self.events
            .push_back(Event::Complete { revocation_checked });
        Phase::Idle
    }

    /// The session failed: count it, save, and start a new one after a back-off, or give up
    /// once the budget is spent.
    fn fail_session(&mut self, now: Instant, reason: Failure) -> Phase {
        self.events.push_back(Event::SessionFailed {
            reason: reason.clone(),
        });
        self.persisted.failed_sessions = self.persisted.failed_sessions.saturating_add(1);
        if self.persisted.failed_sessions >= self.config.retry.max_sessions {
            return self.give_up(reason);
        }
        self.persist();
        Phase::Backoff {
            until: after(
                now,
                self.config
                    .retry
                    .back_off_ms(self.persisted.failed_sessions),
            ),
        }
    }

    fn give_up(&mut self, reason: Failure) -> Phase {
        self.persisted.in_progress = None;
        self.persist();
        self.events.push_back(Event::GaveUp { reason });
        Phase::Idle
    }

    // ---------------------------------------------------------------------------------------
    // Helpers.
    // ---------------------------------------------------------------------------------------

    fn send(
        &mut self,
        now: Instant,
        path: Path,
        session_id: SessionId,
        answer: MessageTag,
        bytes: Vec<u8>,
    ) -> Exchange {
        let ex = Exchange::new(now, &self.config.retry, path, session_id, answer, bytes);
        self.transmits.push_back(ex.transmit());
        ex
    }

    /// Signs `payload` with the identity key in role DeviceIdentity and checks the signature
    /// before it leaves (a faulty or swapped secure element is caught here).
    fn sign(
        &self,
        header: Header,
        th: &TranscriptHash,
        payload: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let pending = PendingSignature::new(
            header,
            KeyRole::DeviceIdentity,
            th,
            payload.to_vec(),
            self.signer.key_id(),
            self.signer.algorithm(),
            &self.provider,
        )
        .map_err(|_| Failure::Signer(SignatureError::RoleNotForTag))?;
        let signature = self
            .provider
            .sign(&self.signer, &pending.request().tbs)
            .map_err(Failure::Signer)?;
        pending
            .complete(signature, self.signer.public_key(), &self.provider)
            .map(|e| e.encode())
            .map_err(Failure::Signer)
    }

    fn refuse(&mut self, reason: Refusal) {
        self.events.push_back(Event::MessageRefused { reason });
    }

    fn persist(&mut self) {
        if self.state.save(&self.persisted).is_err() {
            self.events.push_back(Event::StateNotSaved);
        }
    }
}

fn plain_envelope(header: Header, body: Vec<u8>) -> Vec<u8> {
    Envelope {
        header,
        body: Body::Plain(body),
    }
    .encode()
}

fn join_event(c: &Credential) -> Event {
    Event::Join {
        ssid: c.ssid.clone(),
        security: c.security,
        passphrase: c.passphrase.clone(),
    }
}
