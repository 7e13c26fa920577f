//! With the `peer` feature, [`crate::zt_check_run`] also drives `zerotouch-peer` through two
//! whole flow-2 handoffs, as a joiner's and a sponsor's firmware would: the Noise handshake, the
//! credential request, the sponsor's signed verification request, the association server's
//! answer (built here from the core's primitives: signature checked, challenge data signed,
//! expected answer sealed to the sponsor), the challenge forwarded, answered and checked, and
//! the credential handed over and checked against the commitment.
//!
//! Two measurements are taken, as for the device session (see `src/device.rs`):
//! - each role's peak heap: the first handoff runs the sponsor and the server in
//!   [`heap::server_side`] and measures the joiner, the second the other way round. A role's
//!   figure counts its configuration and pinned key, its state, its channel, each received
//!   message (copied into its receive buffer, see [`deliver`]) and each message to send;
//! - the peer crate's code: the roles are called only through [`entry`], whose functions are
//!   never inlined, so the script can attribute what LTO inlines into them to `zerotouch-peer`.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use zerotouch_core::flow2::{
    self, AnswerContext, Challenge, ChallengeData, HomeCredential, SealedAnswer, VerificationData,
    VerificationRequest, challenge_answer, handoff_transcript,
};
use zerotouch_core::{
    Body, CryptoProvider, DeviceSecret, Envelope, Instant, KeyId, KeyRole, Message, MessageTag,
    Passphrase, PinnedKey, PinnedKeys, RustCryptoProvider, Signer, SoftwareSigner, seal_to,
    sign_message,
};
use zerotouch_peer::{
    Destination, JoinerConfig, JoinerEvent, MemoryPeerState, SponsorConfig, SponsorEvent,
};

use crate::heap;
use crate::run::{Check, CounterRng, Step, ensure};

const JOINER_ID: KeyId = KeyId([0x4a; 32]);
const JOINER_SECRET: [u8; 32] = [0x5b; 32];
const SSID: &[u8] = b"Miller-Home";

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
        JoinerConfig, JoinerEvent, MemoryPeerState, PeerError, SponsorConfig, SponsorEvent,
        SponsorTransmit,
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
    pub fn receive(j: &mut Joiner, now: Instant, bytes: &[u8]) {
        j.receive(now, bytes);
    }

    #[inline(never)]
    pub fn receive_local(s: &mut Sponsor, now: Instant, bytes: &[u8], rng: &mut CounterRng) {
        s.receive_local(now, bytes, rng);
    }

    #[inline(never)]
    pub fn receive_server(s: &mut Sponsor, now: Instant, bytes: &[u8]) {
        s.receive_server(now, bytes);
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

/// Two handoffs: one measuring the joiner, one the sponsor. `server` is the association key,
/// `identity` the sponsor's device key.
pub fn run(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    identity: &SoftwareSigner,
) -> Check {
    JOINER_PEAK.store(handoff(provider, server, identity, Role::Joiner)?, Relaxed);
    SPONSOR_PEAK.store(handoff(provider, server, identity, Role::Sponsor)?, Relaxed);
    Ok(())
}

/// One handoff; returns the measured role's peak heap.
fn handoff(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    identity: &SoftwareSigner,
    measured: Role,
) -> Result<usize, Step> {
    use Role::{Joiner as J, Sponsor as S};
    let (mut jrng, mut srng, mut vrng) = (CounterRng(100), CounterRng(200), CounterRng(300));
    let now = Instant(1_000);
    heap::begin_session();
    let joiner = as_role(J, measured, || {
        let config = JoinerConfig::new(JOINER_ID, DeviceSecret::new(JOINER_SECRET), pinned(server));
        entry::joiner(config, MemoryPeerState::new())
    });
    let sponsor = as_role(S, measured, || {
        let home = Passphrase::new(b"correct horse battery staple").map(|passphrase| {
            let credential = HomeCredential {
                ssid: SSID.to_vec(),
                security: 2,
                passphrase,
            };
            SponsorConfig::new(credential, pinned(server))
        });
        home.ok()
            .and_then(|c| entry::sponsor(c, identity.clone(), MemoryPeerState::new()).ok())
    });
    let (Ok(mut joiner), Some(mut sponsor)) = (joiner, sponsor) else {
        return Err(Step::PeerRoles);
    };
    as_role(J, measured, || entry::start(&mut joiner, now, &mut jrng));
    as_role(S, measured, || entry::accept(&mut sponsor, now, &mut srng));
    let (mut joined, mut handed_over) = (false, false);
    for _ in 0..8 {
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
                    as_role(J, measured, || entry::receive(&mut joiner, now, &buffer));
                }
                Destination::AssociationServer => {
                    let answer = heap::server_side(|| {
                        association(provider, server, identity, &t.bytes, &mut vrng)
                    })?;
                    drop(t);
                    let buffer = deliver(S, measured, &answer);
                    as_role(S, measured, || {
                        entry::receive_server(&mut sponsor, now, &buffer)
                    });
                }
            }
        }
        while let Some(e) = as_role(J, measured, || entry::joiner_event(&mut joiner)) {
            if let JoinerEvent::Join { ssid, .. } = &e {
                joined = ssid.as_slice() == SSID;
            }
        }
        while let Some(e) = as_role(S, measured, || entry::sponsor_event(&mut sponsor)) {
            handed_over |= matches!(e, SponsorEvent::HandedOver { .. });
        }
    }
    drop(joiner);
    drop(sponsor);
    let peak = heap::session_peak_so_far();
    ensure(joined && handed_over, Step::PeerFlow)?;
    Ok(peak)
}

/// The association server's answer to a verification request: the sponsor's signature
/// checked, the challenge data signed, the expected answer sealed to the sponsor, the whole
/// signed.
fn association(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    identity: &SoftwareSigner,
    bytes: &[u8],
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
