//! With the `peer` feature, [`crate::zt_check_run`] also drives `zerotouch-peer` through whole
//! flow-2 handoffs, as a joiner's and a sponsor's firmware would: the Noise handshake, the
//! credential request, the sponsor's signed verification request, and then either
//! - the automatic handoff: the association server's answer (built here from the core's
//!   primitives: signature checked, challenge data signed, expected answer sealed to the
//!   sponsor), the challenge forwarded, answered and checked, and the credential handed over
//!   and checked against the commitment; or
//! - each fallback, the server answering that the two are not associated: (a) compared codes
//!   (commit, reveal, both owners confirm the same code), (b) a fresh code shown on the joiner
//!   and typed on the sponsor, (b) shown on the sponsor and typed on the joiner, (c) the
//!   joiner's label code typed on the sponsor, the last three through SPAKE2+ (`spake2plus`,
//!   PBKDF2 for the code's scalars); the owner reads each prompt's text and acts on it.
//!
//! The label record is made as the factory makes it (`LabelRecord::from_code`, in the server's
//! region) and read back from its stored bytes by the joiner (`LabelRecord::from_bytes`);
//! [`codes`] also checks `PairingCode::generate`/`parse` and that a damaged record is refused.
//!
//! Two measurements are taken, as for the device session (see `src/device.rs`):
//! - each role's peak heap, the most over the automatic handoff and the four fallbacks: each
//!   runs twice, once with the sponsor and the server in [`heap::server_side`] measuring the
//!   joiner, once the other way round. A role's figure counts its configuration and pinned key,
//!   its state, its channel, its PAKE, each received message (copied into its receive buffer,
//!   see [`deliver`]), each message to send, and what its owner types;
//! - the peer crate's code: the roles are called only through [`entry`], whose functions are
//!   never inlined, so the script can attribute what LTO inlines into them to `zerotouch-peer`.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use alloc::string::String;
use zerotouch_core::flow2::{
    self, AnswerContext, Challenge, ChallengeData, Fallback, HomeCredential, SealedAnswer,
    ShortAuthString, VerificationData, VerificationRequest, challenge_answer, handoff_transcript,
};
use zerotouch_core::{
    Body, CryptoProvider, DeviceSecret, Envelope, ErrorCode, ErrorMessage, Instant, KeyId, KeyRole,
    Message, MessageTag, Passphrase, PinnedKey, PinnedKeys, RustCryptoProvider, Signer,
    SoftwareSigner, seal_to, sign_message,
};
use zerotouch_peer::{
    Destination, JoinerConfig, JoinerEvent, LabelRecord, MemoryPeerState, OwnerInterface,
    OwnerPrompt, PairingCode, SponsorConfig, SponsorEvent,
};

use crate::heap;
use crate::run::{Check, CounterRng, Step, ensure};

const JOINER_ID: KeyId = KeyId([0x4a; 32]);
const JOINER_SECRET: [u8; 32] = [0x5b; 32];
const SSID: &[u8] = b"Miller-Home";
/// The code printed on the joiner's label (check only).
const LABEL_CODE: &str = "3141-5926";

static JOINER_PEAK: AtomicUsize = AtomicUsize::new(0);
static SPONSOR_PEAK: AtomicUsize = AtomicUsize::new(0);

/// The joiner's peak heap in the last run.
pub fn joiner_peak() -> usize {
    JOINER_PEAK.load(Relaxed)
}

/// The sponsor's peak heap in the last run.
pub fn sponsor_peak() -> usize {
    SPONSOR_PEAK.load(Relaxed)
}

type Joiner = zerotouch_peer::Joiner<MemoryPeerState>;
type Sponsor = zerotouch_peer::Sponsor<SoftwareSigner, MemoryPeerState>;

/// The roles' API as firmware calls it, never inlined: whatever LTO inlines into these belongs
/// to the roles, and the script counts them as `zerotouch-peer`'s code
/// (`nostd_check::peer::entry::`).
mod entry {
    use alloc::vec::Vec;
    use zerotouch_core::{Instant, SoftwareSigner};
    use zerotouch_peer::{
        JoinerConfig, JoinerEvent, LabelRecord, MemoryPeerState, PeerError, SponsorConfig,
        SponsorEvent, SponsorTransmit,
    };

    use super::{Joiner, Sponsor};
    use crate::run::CounterRng;

    #[inline(never)]
    pub fn joiner(config: JoinerConfig, state: MemoryPeerState) -> Result<Joiner, PeerError> {
        Joiner::new(config, state)
    }

    #[inline(never)]
    pub fn sponsor(
        config: SponsorConfig,
        signer: SoftwareSigner,
        state: MemoryPeerState,
    ) -> Result<Sponsor, PeerError> {
        Sponsor::new(config, signer, state)
    }

    #[inline(never)]
    pub fn start(j: &mut Joiner, now: Instant, rng: &mut CounterRng) {
        j.start(now, rng);
    }

    #[inline(never)]
    pub fn accept(s: &mut Sponsor, now: Instant, rng: &mut CounterRng) {
        s.accept(now, rng);
    }

    #[inline(never)]
    pub fn receive(j: &mut Joiner, now: Instant, bytes: &[u8], rng: &mut CounterRng) {
        j.receive(now, bytes, rng);
    }

    #[inline(never)]
    pub fn receive_local(s: &mut Sponsor, now: Instant, bytes: &[u8], rng: &mut CounterRng) {
        s.receive_local(now, bytes, rng);
    }

    #[inline(never)]
    pub fn receive_server(s: &mut Sponsor, now: Instant, bytes: &[u8], rng: &mut CounterRng) {
        s.receive_server(now, bytes, rng);
    }

    #[inline(never)]
    pub fn joiner_confirm(j: &mut Joiner, now: Instant, matches: bool) -> Result<(), PeerError> {
        j.confirm_code(now, matches)
    }

    #[inline(never)]
    pub fn sponsor_confirm(s: &mut Sponsor, now: Instant, matches: bool) -> Result<(), PeerError> {
        s.confirm_code(now, matches)
    }

    #[inline(never)]
    pub fn joiner_enter(
        j: &mut Joiner,
        now: Instant,
        typed: &str,
        rng: &mut CounterRng,
    ) -> Result<(), PeerError> {
        j.enter_code(now, typed, rng)
    }

    #[inline(never)]
    pub fn sponsor_enter(
        s: &mut Sponsor,
        now: Instant,
        typed: &str,
        rng: &mut CounterRng,
    ) -> Result<(), PeerError> {
        s.enter_code(now, typed, rng)
    }

    #[inline(never)]
    pub fn label_record(bytes: &[u8]) -> Result<LabelRecord, PeerError> {
        LabelRecord::from_bytes(bytes)
    }

    #[inline(never)]
    pub fn joiner_transmit(j: &mut Joiner) -> Option<Vec<u8>> {
        j.poll_transmit()
    }

    #[inline(never)]
    pub fn sponsor_transmit(s: &mut Sponsor) -> Option<SponsorTransmit> {
        s.poll_transmit()
    }

    #[inline(never)]
    pub fn joiner_event(j: &mut Joiner) -> Option<JoinerEvent> {
        j.poll_event()
    }

    #[inline(never)]
    pub fn sponsor_event(s: &mut Sponsor) -> Option<SponsorEvent> {
        s.poll_event()
    }
}

/// Which role a handoff measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Joiner,
    Sponsor,
}

/// Runs `f` for `role`: in the measured region if `role` is the one measured, else on the
/// server's side.
fn as_role<T>(role: Role, measured: Role, f: impl FnOnce() -> T) -> T {
    if role == measured {
        f()
    } else {
        heap::server_side(f)
    }
}

/// A received message, copied into the receiving role's receive buffer.
fn deliver(to: Role, measured: Role, bytes: &[u8]) -> Vec<u8> {
    as_role(to, measured, || bytes.to_vec())
}

fn pinned(server: &SoftwareSigner) -> PinnedKeys {
    PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        server.public_key().clone(),
    )])
}

/// What a handoff runs after the request: the automatic handoff, or one fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Automatic,
    Fallback(Fallback),
}

const SCENARIOS: [Scenario; 5] = [
    Scenario::Automatic,
    Scenario::Fallback(Fallback::CompareCodes),
    Scenario::Fallback(Fallback::JoinerShowsCode),
    Scenario::Fallback(Fallback::SponsorShowsCode),
    Scenario::Fallback(Fallback::LabelCode),
];

/// Every scenario twice: once measuring the joiner, once the sponsor. `server` is the
/// association key, `identity` the sponsor's device key.
pub fn run(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    identity: &SoftwareSigner,
) -> Check {
    let label = codes()?;
    let (mut joiner, mut sponsor) = (0, 0);
    for scenario in SCENARIOS {
        let keys = (server, identity);
        joiner = joiner.max(handoff(provider, keys, &label, scenario, Role::Joiner)?);
        sponsor = sponsor.max(handoff(provider, keys, &label, scenario, Role::Sponsor)?);
    }
    JOINER_PEAK.store(joiner, Relaxed);
    SPONSOR_PEAK.store(sponsor, Relaxed);
    Ok(())
}

/// The codes' own API, on the server's side: a generated code parses back from how it is
/// shown, a typed code with spaces and dashes parses and a short one is refused, and the
/// label record the factory makes (10,000 PBKDF2 iterations) reads back from its bytes while
/// a damaged copy is refused. Returns the stored record's bytes.
fn codes() -> Result<Vec<u8>, Step> {
    heap::server_side(|| {
        let generated = PairingCode::generate(&mut CounterRng(400));
        let shown = PairingCode::parse(&generated.grouped()).map_err(|_| Step::PeerCodes)?;
        ensure(shown == generated, Step::PeerCodes)?;
        ensure(PairingCode::parse("1234 567").is_err(), Step::PeerCodes)?;
        let code = PairingCode::parse(LABEL_CODE).map_err(|_| Step::PeerCodes)?;
        let record = LabelRecord::from_code(&code, &JOINER_ID).map_err(|_| Step::PeerCodes)?;
        let stored = record.to_bytes().to_vec();
        let read = entry::label_record(&stored).map_err(|_| Step::PeerCodes)?;
        ensure(read.to_bytes()[..] == stored[..], Step::PeerCodes)?;
        let mut damaged = stored.clone();
        if let Some(b) = damaged.last_mut() {
            *b ^= 1;
        }
        ensure(entry::label_record(&damaged).is_err(), Step::PeerCodes)?;
        Ok(stored)
    })
}

/// What the owners have seen and done in one handoff.
#[derive(Default)]
struct Owners {
    /// The compared code each device shows (a).
    joiner_sas: Option<ShortAuthString>,
    sponsor_sas: Option<ShortAuthString>,
    /// The code shown on one device, as the owner reads it, for the other (b).
    joiner_shows: Option<String>,
    sponsor_shows: Option<String>,
    /// A device asks for a code (b, c).
    joiner_asks: bool,
    sponsor_asks: Option<OwnerPrompt>,
    /// Bytes of prompt text shown.
    text: usize,
}

/// One handoff of `scenario`; returns the measured role's peak heap.
fn handoff(
    provider: &RustCryptoProvider,
    (server, identity): (&SoftwareSigner, &SoftwareSigner),
    label: &[u8],
    scenario: Scenario,
    measured: Role,
) -> Result<usize, Step> {
    use Role::{Joiner as J, Sponsor as S};
    let (mut jrng, mut srng, mut vrng) = (CounterRng(100), CounterRng(200), CounterRng(300));
    let now = Instant(1_000);
    heap::begin_session();
    let joiner = as_role(J, measured, || {
        let mut config =
            JoinerConfig::new(JOINER_ID, DeviceSecret::new(JOINER_SECRET), pinned(server));
        if let Scenario::Fallback(f) = scenario {
            config.interface = OwnerInterface::FULL;
            config.fallbacks = vec![f];
            // The record as the device reads it from its flash.
            config.label_record = entry::label_record(label).ok();
        }
        entry::joiner(config, MemoryPeerState::new())
    });
    let sponsor = as_role(S, measured, || {
        let home = Passphrase::new(b"correct horse battery staple").map(|passphrase| {
            let credential = HomeCredential {
                ssid: SSID.to_vec(),
                security: 2,
                passphrase,
            };
            let mut config = SponsorConfig::new(credential, pinned(server));
            if let Scenario::Fallback(f) = scenario {
                config.interface = OwnerInterface::FULL;
                config.fallbacks = vec![f];
            }
            config
        });
        home.ok()
            .and_then(|c| entry::sponsor(c, identity.clone(), MemoryPeerState::new()).ok())
    });
    let (Ok(mut joiner), Some(mut sponsor)) = (joiner, sponsor) else {
        return Err(Step::PeerRoles);
    };
    as_role(J, measured, || entry::start(&mut joiner, now, &mut jrng));
    as_role(S, measured, || entry::accept(&mut sponsor, now, &mut srng));
    let (mut joined, mut handed_over, mut fell_back) = (false, false, false);
    let mut owners = Owners::default();
    for _ in 0..16 {
        while let Some(bytes) = as_role(J, measured, || entry::joiner_transmit(&mut joiner)) {
            let buffer = deliver(S, measured, &bytes);
            drop(bytes);
            as_role(S, measured, || {
                entry::receive_local(&mut sponsor, now, &buffer, &mut srng);
            });
        }
        while let Some(t) = as_role(S, measured, || entry::sponsor_transmit(&mut sponsor)) {
            match t.destination {
                Destination::Joiner => {
                    let buffer = deliver(J, measured, &t.bytes);
                    drop(t);
                    as_role(J, measured, || {
                        entry::receive(&mut joiner, now, &buffer, &mut jrng);
                    });
                }
                Destination::AssociationServer => {
                    let answer = heap::server_side(|| {
                        association(provider, server, identity, &t.bytes, scenario, &mut vrng)
                    })?;
                    drop(t);
                    let buffer = deliver(S, measured, &answer);
                    as_role(S, measured, || {
                        entry::receive_server(&mut sponsor, now, &buffer, &mut srng);
                    });
                }
            }
        }
        while let Some(e) = as_role(J, measured, || entry::joiner_event(&mut joiner)) {
            match &e {
                JoinerEvent::Join { ssid, .. } => joined = ssid.as_slice() == SSID,
                JoinerEvent::OwnerAction { prompt, text, .. } => {
                    owners.text += text.as_str().len();
                    match prompt {
                        OwnerPrompt::CompareCode { code } => owners.joiner_sas = Some(*code),
                        OwnerPrompt::ShowCode { code } => {
                            owners.joiner_shows = Some(as_role(S, measured, || code.grouped()));
                        }
                        OwnerPrompt::EnterShownCode => owners.joiner_asks = true,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        while let Some(e) = as_role(S, measured, || entry::sponsor_event(&mut sponsor)) {
            match &e {
                SponsorEvent::HandedOver { .. } => handed_over = true,
                SponsorEvent::FallbackStarted { fallback } => {
                    fell_back = scenario == Scenario::Fallback(*fallback);
                }
                SponsorEvent::OwnerAction { prompt, text, .. } => {
                    owners.text += text.as_str().len();
                    match prompt {
                        OwnerPrompt::CompareCode { code } => owners.sponsor_sas = Some(*code),
                        OwnerPrompt::ShowCode { code } => {
                            owners.sponsor_shows = Some(as_role(J, measured, || code.grouped()));
                        }
                        other => owners.sponsor_asks = Some(other.clone()),
                    }
                }
                _ => {}
            }
        }
        act(
            &mut owners,
            &mut joiner,
            &mut sponsor,
            (&mut jrng, &mut srng),
            now,
            measured,
        )?;
        if joined && handed_over {
            break;
        }
    }
    drop(joiner);
    drop(sponsor);
    let peak = heap::session_peak_so_far();
    ensure(joined && handed_over, Step::PeerFlow)?;
    let fallback = matches!(scenario, Scenario::Fallback(_));
    ensure(
        fell_back == fallback && (owners.text > 0) == fallback,
        Step::PeerFallback,
    )?;
    Ok(peak)
}

/// The owners act on what the devices ask: confirm the compared codes on both once both show
/// the same one, type the code one device shows on the other, type the label code.
fn act(
    owners: &mut Owners,
    joiner: &mut Joiner,
    sponsor: &mut Sponsor,
    (jrng, srng): (&mut CounterRng, &mut CounterRng),
    now: Instant,
    measured: Role,
) -> Check {
    use Role::{Joiner as J, Sponsor as S};
    let failed = |_| Step::PeerFallback;
    if let (Some(j), Some(s)) = (owners.joiner_sas, owners.sponsor_sas) {
        ensure(j == s, Step::PeerFallback)?;
        as_role(J, measured, || entry::joiner_confirm(joiner, now, true)).map_err(failed)?;
        as_role(S, measured, || entry::sponsor_confirm(sponsor, now, true)).map_err(failed)?;
        (owners.joiner_sas, owners.sponsor_sas) = (None, None);
    }
    if owners.joiner_asks
        && let Some(code) = owners.sponsor_shows.take()
    {
        as_role(J, measured, || {
            entry::joiner_enter(joiner, now, &code, jrng)
        })
        .map_err(failed)?;
        owners.joiner_asks = false;
    }
    let typed = match owners.sponsor_asks {
        Some(OwnerPrompt::EnterShownCode) => owners.joiner_shows.take(),
        Some(OwnerPrompt::EnterLabelCode) => {
            Some(as_role(S, measured, || String::from(LABEL_CODE)))
        }
        _ => None,
    };
    if let Some(code) = typed {
        owners.sponsor_asks = None;
        as_role(S, measured, || {
            entry::sponsor_enter(sponsor, now, &code, srng)
        })
        .map_err(failed)?;
    }
    Ok(())
}

/// The association server's answer to a verification request: the sponsor's signature
/// checked, then for the automatic handoff the challenge data signed, the expected answer
/// sealed to the sponsor, the whole signed; for a fallback, "not associated".
fn association(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    identity: &SoftwareSigner,
    bytes: &[u8],
    scenario: Scenario,
    rng: &mut CounterRng,
) -> Result<Vec<u8>, Step> {
    let envelope = Envelope::decode(bytes).map_err(|_| Step::PeerFlow)?;
    let Body::Signed(body) = &envelope.body else {
        return Err(Step::PeerFlow);
    };
    let session = envelope.header.session_id;
    let th = handoff_transcript(provider, &session);
    let payload = body
        .verify(
            &envelope.header,
            KeyRole::DeviceIdentity,
            &th,
            identity.public_key(),
            provider,
        )
        .map_err(|_| Step::PeerFlow)?;
    let request = VerificationRequest::decode_body(payload).map_err(|_| Step::PeerFlow)?;
    if scenario != Scenario::Automatic {
        // The two devices are not one account's: the fallbacks' case.
        let refusal = ErrorMessage {
            code: ErrorCode::NotAssociated,
            retry_after_s: 0,
            supported_versions: Vec::new(),
        };
        let header = flow2::header(MessageTag::Error, session);
        return Envelope::plain(header, refusal.encode_body())
            .map(|e| e.encode())
            .map_err(|_| Step::PeerFlow);
    }
    let challenge = Challenge([0x2c; 32]);
    let data = ChallengeData {
        sponsor_id: request.sponsor_id,
        joiner_id: request.joiner_id,
        nonce: request.nonce,
        commitment: request.commitment,
        binding: request.binding,
        challenge,
    };
    let sign = |tag: MessageTag, body: Vec<u8>| {
        let header = flow2::header(tag, session);
        sign_message(header, KeyRole::Association, &th, body, server, provider)
            .map(|e| e.encode())
            .map_err(|_| Step::PeerFlow)
    };
    let challenge_data = sign(MessageTag::ChallengeData, data.encode_body())?;
    let context = AnswerContext {
        session_id: &session,
        nonce: &request.nonce,
        sponsor_id: &request.sponsor_id,
        joiner_id: &request.joiner_id,
    };
    let secret = DeviceSecret::new(JOINER_SECRET);
    let expected = challenge_answer(provider, &secret, &context, &challenge, &request.binding);
    let aad = provider.sha256(&[&challenge_data]);
    let mut sealed = seal_to(
        request.answer_key.suite,
        &request.answer_key.public_key,
        flow2::EXPECTED_ANSWER_INFO,
        &aad,
        &[expected.expose_secret()],
        rng,
    )
    .map_err(|_| Step::PeerFlow)?;
    let ciphertext = sealed.ciphertexts.pop().ok_or(Step::PeerFlow)?;
    let answer = VerificationData {
        challenge_data,
        sealed_answer: SealedAnswer {
            encapsulated_key: sealed.encapsulated_key,
            ciphertext,
        },
        answer_window_ms: 30_000,
    };
    sign(MessageTag::VerificationData, answer.encode_body())
}
