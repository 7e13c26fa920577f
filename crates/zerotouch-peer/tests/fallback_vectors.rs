//! Test vectors of the flow-2 fallbacks (`docs/PROTOCOL.md` 18.7), written to
//! `docs/vectors/flow2_fallback.json`:
//!
//! - `sas`: the commitment and the compared code (a) for a fixed binding and fixed nonces;
//! - `codes`: for a fixed joiner id and code, the PBKDF2 input and output of a session code (b)
//!   and of a label code (c), and the label record the factory stores in the joiner;
//! - `pake`: whole SPAKE2+ exchanges for fixed contexts and fixed scalars `x` and `y`;
//! - `run`: a whole label-code fallback through the real [`Joiner`] and [`Sponsor`] after the
//!   association server answered `NotAssociated`, every message as sent and in clear.
//!
//! Every value is computed twice: by the crates, and by this test from the formulas of the spec
//! (SHA-256, PBKDF2-HMAC-SHA256 and the PAKE context written out here, `spake2plus` driven
//! directly), so the code and the spec cannot drift apart.
//!
//! After an intended change: `ZT_UPDATE_VECTORS=1 cargo test -p zerotouch-peer --test
//! fallback_vectors` rewrites the file, and the diff shows what changed. The time of one
//! label-code derivation (the figure in the spec's honest bound):
//! `cargo test --release -p zerotouch-peer --test fallback_vectors -- --ignored --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use rand_core::{Rng, TryCryptoRng, TryRng, utils::next_word_via_fill};
use serde_json::{Value, json};
use sha2::Digest as _;
use spake2plus::P256Sha256;
use zerotouch_core::flow2::{
    self, ChannelBinding, Fallback, FallbackHandover, FallbackStart, HomeCredential, PakeReply,
    PakeShare, PeerCredentialRequest, sas_commitment, short_auth_string,
};
use zerotouch_core::*;
use zerotouch_peer::pake::{self, CodeKind, pbkdf_output, prover_secret};
use zerotouch_peer::*;

/// The code of every vector below, as the owner would type it.
const CODE_TYPED: &str = "3141-5926";
/// The same code's eight digits.
const CODE: &[u8; 8] = b"31415926";
const JOINER_SEED: u64 = 11;
const SPONSOR_SEED: u64 = 12;
const NOW: Instant = Instant(1_000);

// The spec's constants, spelled out here rather than taken from the crates.
const SPEC_SAS_COMMIT_LABEL: &[u8] = b"zerotouch-flow2-sas-commit";
const SPEC_SAS_LABEL: &[u8] = b"zerotouch-flow2-sas";
const SPEC_CONTEXT_LABEL: &[u8] = b"zerotouch flow2 fallback v1";
const SPEC_SESSION_SALT: &[u8] = b"zerotouch-flow2-session-code";
const SPEC_LABEL_SALT: &[u8] = b"zerotouch-flow2-label-code";
const SPEC_SESSION_ITERATIONS: u32 = 1;
const SPEC_LABEL_ITERATIONS: u32 = 10_000;

/// Random draws: from a seeded ChaCha20Rng, or from a queue of given draws (a replay, or the
/// 64 bytes a SPAKE2+ scalar is reduced from); every draw is logged.
struct Tape {
    source: Option<ChaCha20Rng>,
    queued: VecDeque<Vec<u8>>,
    log: Vec<Vec<u8>>,
}

impl Tape {
    fn seeded(seed: u64) -> Tape {
        Tape {
            source: Some(ChaCha20Rng::seed_from_u64(seed)),
            queued: VecDeque::new(),
            log: Vec::new(),
        }
    }

    /// Serves exactly `draws`, in order; asking for more fails the test.
    fn replay(draws: impl IntoIterator<Item = Vec<u8>>) -> Tape {
        Tape {
            source: None,
            queued: draws.into_iter().collect(),
            log: Vec::new(),
        }
    }

    /// The one draw `spake2plus` makes for a scalar: 64 bytes reduced modulo the group order,
    /// here 32 zero bytes then `scalar` (big-endian), so the scalar is `scalar mod n`.
    fn scalar(scalar: &[u8; 32]) -> Tape {
        Tape::replay([[[0u8; 32], *scalar].concat()])
    }

    fn hex_log(&self) -> Vec<String> {
        self.log.iter().map(|d| h(d)).collect()
    }
}

impl TryCryptoRng for Tape {}

impl TryRng for Tape {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        next_word_via_fill(self)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        next_word_via_fill(self)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if let Some(draw) = self.queued.pop_front() {
            assert_eq!(draw.len(), dst.len(), "size of a given draw");
            dst.copy_from_slice(&draw);
        } else {
            let source = self.source.as_mut().expect("a given draw left");
            source.fill_bytes(dst);
        }
        self.log.push(dst.to_vec());
        Ok(())
    }
}

/// `SHA-256("zerotouch test vector " || label)`, as in every vector file.
fn secret(label: &str) -> [u8; 32] {
    sha2::Sha256::digest([&b"zerotouch test vector "[..], label.as_bytes()].concat()).into()
}

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn bytes_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

fn first16(label: &str) -> [u8; 16] {
    *secret(label).first_chunk::<16>().unwrap()
}

fn p256(label: &str) -> SoftwareSigner {
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &secret(label)).unwrap(),
    )
}

fn credential() -> HomeCredential {
    HomeCredential {
        ssid: b"home".to_vec(),
        security: 2,
        passphrase: Passphrase::new(b"correct horse battery staple").unwrap(),
    }
}

// ---- The spec's formulas, written out ----

fn spec_sas_commitment(binding: &[u8; 32], sponsor_nonce: &[u8; 16]) -> [u8; 32] {
    sha2::Sha256::digest([SPEC_SAS_COMMIT_LABEL, binding, sponsor_nonce].concat()).into()
}

fn spec_sas_digest(
    binding: &[u8; 32],
    sponsor_nonce: &[u8; 16],
    joiner_nonce: &[u8; 16],
) -> [u8; 32] {
    sha2::Sha256::digest([SPEC_SAS_LABEL, binding, sponsor_nonce, joiner_nonce].concat()).into()
}

/// `len(code) || code || len("") || "" || len(joiner_id) || joiner_id`, 8-byte LE lengths.
fn spec_pbkdf_input(code: &[u8], joiner_id: &[u8; 32]) -> Vec<u8> {
    let mut input = Vec::new();
    for part in [code, b"", joiner_id] {
        input.extend_from_slice(&u64::try_from(part.len()).unwrap().to_le_bytes());
        input.extend_from_slice(part);
    }
    input
}

fn spec_pbkdf(code: &[u8], joiner_id: &[u8; 32], salt: &[u8], iterations: u32) -> [u8; 80] {
    let mut out = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        &spec_pbkdf_input(code, joiner_id),
        salt,
        iterations,
        &mut out,
    );
    out
}

/// `"zerotouch flow2 fallback v1" || fallback || session_id || binding`.
fn spec_context(fallback: Fallback, session_id: &[u8; 16], binding: &[u8; 32]) -> Vec<u8> {
    [SPEC_CONTEXT_LABEL, &[fallback.to_u8()], session_id, binding].concat()
}

fn spec_salt(kind: CodeKind) -> (&'static [u8], u32) {
    match kind {
        CodeKind::Session => (SPEC_SESSION_SALT, SPEC_SESSION_ITERATIONS),
        CodeKind::Label => (SPEC_LABEL_SALT, SPEC_LABEL_ITERATIONS),
    }
}

// ---- The vectors ----

fn sas_vector() -> Value {
    let binding = secret("fallback binding");
    let (ns, nj) = (
        first16("fallback sas sponsor nonce"),
        first16("fallback sas joiner nonce"),
    );
    let p = RustCryptoProvider;
    let commitment = sas_commitment(&p, &ChannelBinding(binding), &ns);
    assert_eq!(commitment, spec_sas_commitment(&binding, &ns));
    let digest = spec_sas_digest(&binding, &ns, &nj);
    let expected = u64::from_be_bytes(*digest.first_chunk::<8>().unwrap()) % 1_000_000;
    let code = short_auth_string(&p, &ChannelBinding(binding), &ns, &nj);
    assert_eq!(u64::from(code.0), expected);
    let shown = format!("{:03} {:03}", expected / 1000, expected % 1000);
    assert_eq!(code.to_string(), shown);
    json!({
        "binding": h(&binding),
        "sponsor_nonce": h(&ns),
        "joiner_nonce": h(&nj),
        "sas_commitment": h(&commitment),
        "sas_digest": h(&digest),
        "code": code.0,
        "shown": shown,
    })
}

fn codes_vector() -> Value {
    let joiner_id = p256("joiner identity p256").key_id();
    let code = PairingCode::parse(CODE_TYPED).unwrap();
    assert_eq!(code.digits(), CODE);
    assert_eq!(code.grouped(), "3141 5926");
    let mut kinds = serde_json::Map::new();
    for (name, kind) in [("session", CodeKind::Session), ("label", CodeKind::Label)] {
        let (salt, iterations) = spec_salt(kind);
        let ours = spec_pbkdf(CODE, &joiner_id.0, salt, iterations);
        let theirs = pbkdf_output(&code, &joiner_id, kind).unwrap();
        assert_eq!(&ours, &*theirs, "{name}: PBKDF2 output");
        kinds.insert(
            name.to_owned(),
            json!({
                "salt": std::str::from_utf8(salt).unwrap(),
                "iterations": iterations,
                "w0s": h(&ours[..40]),
                "w1s": h(&ours[40..]),
            }),
        );
    }
    // The record from the spec's PBKDF2 output, through the SPAKE2+ crate alone, against the
    // one the factory makes.
    let record = LabelRecord::from_code(&code, &joiner_id).unwrap();
    let (salt, iterations) = spec_salt(CodeKind::Label);
    let spec_record = spake2plus::ProverSecret::<P256Sha256>::from_pbkdf_output(&spec_pbkdf(
        CODE,
        &joiner_id.0,
        salt,
        iterations,
    ))
    .unwrap()
    .verifier_record();
    assert_eq!(&*spec_record.to_bytes(), record.to_bytes());
    assert_eq!(record.to_bytes().len(), pake::LABEL_RECORD_LEN);
    let (w0, l) = record.to_bytes().split_at(32);
    json!({
        "joiner_id": h(&joiner_id.0),
        "code": std::str::from_utf8(CODE).unwrap(),
        "typed": CODE_TYPED,
        "shown": code.grouped(),
        "pbkdf_input": h(&spec_pbkdf_input(CODE, &joiner_id.0)),
        "session_code": kinds["session"],
        "label_code": kinds["label"],
        "label_record": { "w0": h(w0), "L": h(l), "bytes": h(record.to_bytes()) },
    })
}

/// What both sides of one SPAKE2+ exchange sent and derived.
struct Exchange {
    share_p: Vec<u8>,
    share_v: Vec<u8>,
    confirm_v: Vec<u8>,
    confirm_p: Vec<u8>,
    k_shared: Vec<u8>,
}

/// The prover from the spec's PBKDF2 output, the verifier from the crate's record for the same
/// code, the context from the spec's formula; `x_draw` and `y_draw` are each side's one draw.
fn exchange(
    kind: CodeKind,
    context: &[u8],
    ids: (&KeyId, &KeyId),
    x_draw: Tape,
    y_draw: Tape,
) -> Exchange {
    let (sponsor_id, joiner_id) = ids;
    let code = PairingCode::parse(CODE_TYPED).unwrap();
    let (salt, iterations) = spec_salt(kind);
    let secret = spake2plus::ProverSecret::<P256Sha256>::from_pbkdf_output(&spec_pbkdf(
        CODE,
        &joiner_id.0,
        salt,
        iterations,
    ))
    .unwrap();
    let record = match kind {
        CodeKind::Label => spake2plus::VerifierRecord::from_bytes(
            LabelRecord::from_code(&code, joiner_id).unwrap().to_bytes(),
        )
        .unwrap(),
        CodeKind::Session => prover_secret(&code, joiner_id, kind)
            .unwrap()
            .verifier_record(),
    };
    let context = spake2plus::Context {
        context,
        prover_id: &sponsor_id.0,
        verifier_id: &joiner_id.0,
    };
    let (mut x_draw, mut y_draw) = (x_draw, y_draw);
    let (prover, share_p) = spake2plus::Prover::start(&secret, &context, &mut x_draw);
    let (verifier, share_v) = spake2plus::Verifier::start(&record, &context, &mut y_draw);
    assert!(
        x_draw.queued.is_empty() && y_draw.queued.is_empty(),
        "one draw each"
    );
    let (verifier, confirm_v) = verifier.receive(&share_p).unwrap();
    let (confirm_p, prover_key) = prover
        .receive(&share_v)
        .unwrap()
        .finish(&confirm_v)
        .unwrap();
    let verifier_key = verifier.finish(&confirm_p).unwrap();
    assert_eq!(prover_key.as_bytes(), verifier_key.as_bytes());
    Exchange {
        share_p: share_p.as_bytes().to_vec(),
        share_v: share_v.as_bytes().to_vec(),
        confirm_v: confirm_v.as_bytes().to_vec(),
        confirm_p: confirm_p.as_bytes().to_vec(),
        k_shared: prover_key.as_bytes().to_vec(),
    }
}

fn pake_vectors() -> Value {
    let sponsor_id = p256("sponsor identity p256").key_id();
    let joiner_id = p256("joiner identity p256").key_id();
    let session_id = first16("fallback session id");
    let binding = secret("fallback binding");
    let (x, y) = (secret("fallback pake x"), secret("fallback pake y"));
    let mut runs = Vec::new();
    for (fallback, kind) in [
        (Fallback::JoinerShowsCode, CodeKind::Session),
        (Fallback::LabelCode, CodeKind::Label),
    ] {
        let context = spec_context(fallback, &session_id, &binding);
        let e = exchange(
            kind,
            &context,
            (&sponsor_id, &joiner_id),
            Tape::scalar(&x),
            Tape::scalar(&y),
        );
        runs.push(json!({
            "fallback": fallback.to_u8(),
            "code": std::str::from_utf8(CODE).unwrap(),
            "code_kind": format!("{kind:?}").to_lowercase(),
            "session_id": h(&session_id),
            "binding": h(&binding),
            "id_prover": h(&sponsor_id.0),
            "id_verifier": h(&joiner_id.0),
            "context": h(&context),
            "x": h(&x),
            "y": h(&y),
            "share_p": h(&e.share_p),
            "share_v": h(&e.share_v),
            "confirm_v": h(&e.confirm_v),
            "confirm_p": h(&e.confirm_p),
            "k_shared": h(&e.k_shared),
        }));
    }
    Value::Array(runs)
}

// ---- A whole label-code fallback through the roles ----

struct Frame {
    from: &'static str,
    to: &'static str,
    bytes: Vec<u8>,
}

fn joiner_config(record: LabelRecord) -> JoinerConfig {
    let pinned = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        p256("association p256").public_key().clone(),
    )]);
    let mut config = JoinerConfig::new(
        p256("joiner identity p256").key_id(),
        DeviceSecret::new(secret("joiner device secret")),
        pinned,
    );
    config.interface = OwnerInterface::HEADLESS;
    config.fallbacks = vec![Fallback::LabelCode];
    config.label_record = Some(record);
    config
}

/// The association server's refusal of `request`: a plain `NotAssociated` error.
fn not_associated(request: &[u8]) -> Vec<u8> {
    let asked = Envelope::decode(request).unwrap();
    let mut header = flow2::header(MessageTag::Error, asked.header.session_id);
    header.seq = asked.header.seq + 1;
    let refusal = ErrorMessage {
        code: ErrorCode::NotAssociated,
        retry_after_s: 0,
        supported_versions: vec![],
    };
    Envelope::plain(header, refusal.encode_body())
        .unwrap()
        .encode()
}

type Roles = (
    Joiner<MemoryPeerState>,
    Sponsor<SoftwareSigner, MemoryPeerState>,
);

/// Moves every queued frame until both roles are quiet; the server refuses. Each frame is
/// listed before it is delivered, so the list is in the order things happened.
fn pump(roles: &mut Roles, tapes: (&mut Tape, &mut Tape), frames: &mut Vec<Frame>) {
    let (joiner, sponsor) = roles;
    let (jt, st) = tapes;
    let list = |frames: &mut Vec<Frame>, from, to, bytes: &[u8]| {
        frames.push(Frame {
            from,
            to,
            bytes: bytes.to_vec(),
        })
    };
    let mut quiet = false;
    while !quiet {
        quiet = true;
        while let Some(bytes) = joiner.poll_transmit() {
            list(frames, "joiner", "sponsor", &bytes);
            sponsor.receive_local(NOW, &bytes, st);
            quiet = false;
        }
        while let Some(t) = sponsor.poll_transmit() {
            quiet = false;
            if t.destination == Destination::Joiner {
                list(frames, "sponsor", "joiner", &t.bytes);
                joiner.receive(NOW, &t.bytes, jt);
            } else {
                let refusal = not_associated(&t.bytes);
                list(frames, "sponsor", "association server", &t.bytes);
                list(frames, "association server", "sponsor", &refusal);
                sponsor.receive_server(NOW, &refusal, st);
            }
        }
    }
}

fn plain(env: &Envelope) -> &[u8] {
    match &env.body {
        Body::Plain(b) => b,
        Body::Signed(_) => panic!("{:?} is signed", env.header.tag),
    }
}

fn run_vector() -> Value {
    let joiner_id = p256("joiner identity p256").key_id();
    let sponsor_key = p256("sponsor identity p256");
    let code = PairingCode::parse(CODE_TYPED).unwrap();
    let record = LabelRecord::from_code(&code, &joiner_id).unwrap();
    let config = joiner_config(record.clone());
    let mut sponsor_config = SponsorConfig::new(credential(), config.association_keys.clone());
    sponsor_config.interface = OwnerInterface::FULL;
    sponsor_config.fallbacks = vec![
        Fallback::CompareCodes,
        Fallback::JoinerShowsCode,
        Fallback::LabelCode,
    ];
    let sponsor_fallbacks: Vec<u8> = sponsor_config.fallbacks.iter().map(|f| f.to_u8()).collect();
    let mut roles: Roles = (
        Joiner::new(config, MemoryPeerState::new()).unwrap(),
        Sponsor::new(sponsor_config, sponsor_key.clone(), MemoryPeerState::new()).unwrap(),
    );
    let (mut jt, mut st) = (Tape::seeded(JOINER_SEED), Tape::seeded(SPONSOR_SEED));
    let mut frames = Vec::new();
    roles.0.start(NOW, &mut jt);
    roles.1.accept(NOW, &mut st);
    pump(&mut roles, (&mut jt, &mut st), &mut frames);
    let mut sponsor_events: Vec<SponsorEvent> =
        std::iter::from_fn(|| roles.1.poll_event()).collect();
    assert!(
        sponsor_events.iter().any(|e| matches!(
            e,
            SponsorEvent::OwnerAction {
                prompt: OwnerPrompt::EnterLabelCode,
                ..
            }
        )),
        "{sponsor_events:?}"
    );
    roles.1.enter_code(NOW, CODE_TYPED, &mut st).unwrap();
    pump(&mut roles, (&mut jt, &mut st), &mut frames);
    sponsor_events.extend(std::iter::from_fn(|| roles.1.poll_event()));
    let joiner_events: Vec<JoinerEvent> = std::iter::from_fn(|| roles.0.poll_event()).collect();
    assert!(
        joiner_events
            .iter()
            .any(|e| matches!(e, JoinerEvent::Join { .. })),
        "the reference fallback failed: {joiner_events:?} / {sponsor_events:?}"
    );
    assert!(sponsor_events.contains(&SponsorEvent::FallbackStarted {
        fallback: Fallback::LabelCode
    }));

    // Both ends of the channel again, from each side's first draw (its Noise ephemeral key),
    // to read the local messages in clear.
    let (mut at_joiner, first) =
        LocalChannel::initiator(&mut Tape::replay([jt.log[0].clone()])).unwrap();
    let mut at_sponsor = LocalChannel::responder(&mut Tape::replay([st.log[0].clone()])).unwrap();
    assert_eq!(first, frames[0].bytes);
    assert_eq!(
        at_sponsor.receive(&frames[0].bytes).unwrap().reply,
        frames[1].bytes
    );
    assert!(at_joiner.receive(&frames[1].bytes).unwrap().opened);
    let binding = at_joiner.binding().unwrap();
    let mut listed = Vec::new();
    let mut clear = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let mut item = json!({ "from": f.from, "to": f.to, "sent": h(&f.bytes) });
        let inner = match (i, f.from, f.to) {
            (0 | 1, _, _) => None,
            (_, "joiner", _) => Some(at_sponsor.receive(&f.bytes).unwrap().messages.remove(0)),
            (_, _, "joiner") => Some(at_joiner.receive(&f.bytes).unwrap().messages.remove(0)),
            _ => Some(f.bytes.clone()),
        };
        if let Some(inner) = inner {
            let env = Envelope::decode(&inner).unwrap();
            item["tag"] = json!(format!("{:?}", env.header.tag));
            item["seq"] = json!(env.header.seq);
            item["clear"] = json!(h(&inner));
            clear.push(env);
        }
        listed.push(item);
    }
    let tags: Vec<MessageTag> = clear.iter().map(|e| e.header.tag).collect();
    assert_eq!(
        tags,
        [
            MessageTag::PeerCredentialRequest,
            MessageTag::VerificationRequest,
            MessageTag::Error,
            MessageTag::FallbackStart,
            MessageTag::PakeShare,
            MessageTag::PakeReply,
            MessageTag::FallbackHandover,
        ]
    );
    for env in &clear {
        if env.header.tag.flow() == Some(Flow::PeerHandoff) {
            assert_eq!(env.header.seq, flow2::seq_of(env.header.tag));
        }
    }
    let session_id = clear[0].header.session_id;
    let request = PeerCredentialRequest::decode_body(plain(&clear[0])).unwrap();
    assert_eq!(request.fallbacks, [Fallback::LabelCode]);
    let start = FallbackStart::decode_body(plain(&clear[3])).unwrap();
    assert_eq!(
        start,
        FallbackStart {
            fallback: Fallback::LabelCode,
            sponsor_id: sponsor_key.key_id(),
            sas_commitment: None,
        }
    );
    let share = PakeShare::decode_body(plain(&clear[4])).unwrap();
    let reply = PakeReply::decode_body(plain(&clear[5])).unwrap();
    let handover = FallbackHandover::decode_body(plain(&clear[6])).unwrap();
    assert_eq!(handover.credential, credential());

    // The PAKE messages again, from the spec's context and each side's last draw (its scalar).
    let (x_draw, y_draw) = (st.log.last().unwrap(), jt.log.last().unwrap());
    assert_eq!((x_draw.len(), y_draw.len()), (64, 64));
    let context = spec_context(Fallback::LabelCode, &session_id.0, &binding.0);
    let e = exchange(
        CodeKind::Label,
        &context,
        (&sponsor_key.key_id(), &joiner_id),
        Tape::replay([x_draw.clone()]),
        Tape::replay([y_draw.clone()]),
    );
    assert_eq!(e.share_p, share.share);
    assert_eq!(e.share_v, reply.share);
    assert_eq!(e.confirm_v, reply.confirm);
    assert_eq!(
        Some(e.confirm_p.as_slice()),
        handover.confirm.as_ref().map(|c| &c[..])
    );

    let joiner_state = roles.0.state().stored().unwrap();
    assert_eq!(
        joiner_state,
        PersistedPeerState {
            attempts: 0,
            fallback_attempts: 0,
            label_attempts: 1,
        },
        "one label attempt, kept after the success"
    );
    let sponsor_state = roles.1.state().stored().unwrap();
    assert_eq!(sponsor_state, PersistedPeerState::default());
    let c = credential();
    json!({
        "joiner": {
            "seed": JOINER_SEED,
            "random": jt.hex_log(),
            "joiner_id": h(&joiner_id.0),
            "device_secret": h(&secret("joiner device secret")),
            "interface": { "display": false, "keypad": false },
            "fallbacks": [Fallback::LabelCode.to_u8()],
            "label_record": h(record.to_bytes()),
            "clock_ms": NOW.0,
            "state_after": h(&joiner_state.encode()),
        },
        "sponsor": {
            "seed": SPONSOR_SEED,
            "random": st.hex_log(),
            "sponsor_id": h(&sponsor_key.key_id().0),
            "interface": { "display": true, "keypad": true },
            "fallbacks": sponsor_fallbacks,
            "typed_code": CODE_TYPED,
            "credential": {
                "ssid": h(&c.ssid),
                "security": c.security,
                "passphrase": h(c.passphrase.expose_secret()),
            },
            "clock_ms": NOW.0,
            "state_after": h(&sponsor_state.encode()),
        },
        "session_id": h(&session_id.0),
        "binding": h(&binding.0),
        "pake_context": h(&context),
        "k_shared": h(&e.k_shared),
        "messages": listed,
        "joiner_events": joiner_events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
        "sponsor_events": sponsor_events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
    })
}

fn generate() -> Value {
    json!({
        "description": "Flow-2 fallbacks (docs/PROTOCOL.md section 18.7). Fixed values are \
            SHA-256(\"zerotouch test vector \" || label), nonces and session ids their first \
            16 bytes; ids are the key ids of the P-256 keys with those secrets (labels \
            \"sponsor identity p256\", \"joiner identity p256\"). `sas`: the compared code (a). \
            `codes`: PBKDF2-HMAC-SHA256 of one code for a session code (b) and a label code \
            (c), and the label record w0 || L. `pake`: SPAKE2+ P256-SHA256-HKDF-SHA256-\
            HMAC-SHA256 exchanges (id_prover is the sponsor id, id_verifier the joiner id); \
            the scalar x (y) is the 32 bytes given, big-endian, reduced \
            modulo the group order. `run`: a whole label-code fallback through zerotouch-peer's \
            Joiner and Sponsor after the association server answered NotAssociated; each \
            side's draws come from ChaCha20Rng::seed_from_u64(seed) (the first is its Noise \
            ephemeral key, the last its SPAKE2+ scalar, 64 bytes reduced modulo the order); \
            local messages are listed as sent (one Noise frame) and in clear.",
        "sas": sas_vector(),
        "codes": codes_vector(),
        "pake": pake_vectors(),
        "run": run_vector(),
    })
}

fn regenerating() -> bool {
    std::env::var_os("ZT_UPDATE_VECTORS").is_some_and(|s| !s.is_empty() && s != "0")
}

fn path() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/vectors/flow2_fallback.json"
    )
    .to_owned()
}

#[test]
fn the_fallback_vectors_match_the_code_and_the_spec() {
    let fresh = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    match (regenerating(), std::fs::read_to_string(path())) {
        (true, _) => std::fs::write(path(), fresh).unwrap(),
        (false, Ok(committed)) => assert!(
            committed == fresh,
            "docs/vectors/flow2_fallback.json is stale: a fallback's wire format or derivation \
             changed (after an intended change run with ZT_UPDATE_VECTORS=1 and review the diff)"
        ),
        (false, Err(e)) => {
            panic!("docs/vectors/flow2_fallback.json: {e} (run with ZT_UPDATE_VECTORS=1)")
        }
    }
}

/// A port's check of its joiner: fed the file's draws and the sponsor's frames, the real joiner
/// sends the file's frames and joins.
#[test]
fn a_joiner_fed_the_runs_draws_and_sponsor_frames_sends_its_frames() {
    // The committed file, read as a port would (while regenerating: the new content).
    let v = match regenerating() {
        true => generate(),
        false => serde_json::from_str::<Value>(&std::fs::read_to_string(path()).unwrap()).unwrap(),
    };
    let run = &v["run"];
    let j = &run["joiner"];
    let record = LabelRecord::from_bytes(&bytes_of(&j["label_record"])).unwrap();
    let config = joiner_config(record);
    assert_eq!(h(&config.joiner_id.0), j["joiner_id"]);
    let mut tape = Tape::replay(j["random"].as_array().unwrap().iter().map(bytes_of));
    let mut joiner = Joiner::new(config, MemoryPeerState::new()).unwrap();
    let now = Instant(j["clock_ms"].as_u64().unwrap());
    let messages = run["messages"].as_array().unwrap();
    let sent_by = |from: &str| -> Vec<Vec<u8>> {
        messages
            .iter()
            .filter(|m| m["from"] == from && (m["to"] == "joiner" || m["to"] == "sponsor"))
            .map(|m| bytes_of(&m["sent"]))
            .collect()
    };
    joiner.start(now, &mut tape);
    let mut out: Vec<Vec<u8>> = std::iter::from_fn(|| joiner.poll_transmit()).collect();
    for frame in sent_by("sponsor") {
        joiner.receive(now, &frame, &mut tape);
        out.extend(std::iter::from_fn(|| joiner.poll_transmit()));
    }
    assert!(
        out == sent_by("joiner"),
        "the joiner's frames differ from the run's"
    );
    assert!(
        tape.queued.is_empty(),
        "the joiner drew less than the run lists"
    );
    assert!(joiner.is_finished());
    assert_eq!(
        h(&joiner.state().stored().unwrap().encode()),
        j["state_after"]
    );
}

/// What one label-code derivation costs (the defender's: 80 bytes, three PBKDF2 blocks) and
/// what testing one guess against a dumped record costs (the first block alone fixes `w0s`'s
/// top 32 bytes, which with the stored `w0` confirms or refutes a guess). Printed, not
/// asserted: `cargo test --release -p zerotouch-peer --test fallback_vectors -- --ignored
/// --nocapture`.
#[test]
#[ignore = "a timing, run by hand in release mode"]
fn label_code_derivation_time() {
    let joiner_id = p256("joiner identity p256").key_id();
    let code = PairingCode::parse(CODE_TYPED).unwrap();
    let input = spec_pbkdf_input(CODE, &joiner_id.0);
    let rounds = 200u32;
    let time = |f: &dyn Fn()| -> Duration {
        f();
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            f();
        }
        start.elapsed() / rounds
    };
    let full = time(&|| {
        std::hint::black_box(pbkdf_output(&code, &joiner_id, CodeKind::Label).unwrap());
    });
    let one_block = time(&|| {
        let mut block = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
            &input,
            SPEC_LABEL_SALT,
            SPEC_LABEL_ITERATIONS,
            &mut block,
        );
        std::hint::black_box(block);
    });
    let search = one_block.as_secs_f64() * 1e8;
    println!(
        "label code, {SPEC_LABEL_ITERATIONS} iterations, mean of {rounds}: whole derivation \
         (80 bytes) {full:?}; first block (32 bytes) {one_block:?}; all 10^8 codes at one \
         block each on one core: {:.0} s = {:.1} h",
        search,
        search / 3600.0
    );
}

/// `docs/PROTOCOL.md` 18.7 states the constants `zerotouch-peer` uses: the PAKE's context label,
/// each code's salt and iteration count, and the sizes of the PBKDF2 output and the record.
#[test]
fn the_spec_states_the_pake_constants() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/PROTOCOL.md"
    ))
    .unwrap();
    let start = text.find("### 18.7 Fallbacks").expect("section 18.7");
    let section = &text[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let utf8 = |b: &'static [u8]| std::str::from_utf8(b).unwrap();
    // 10000 → "10,000", as the spec writes numbers.
    let grouped = |n: u32| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    for needle in [
        format!("Context     = \"{}\"", utf8(pake::PAKE_CONTEXT_LABEL)),
        format!(
            "salt \"{}\", {} iteration",
            utf8(pake::SESSION_CODE_SALT),
            grouped(pake::SESSION_CODE_ITERATIONS)
        ),
        format!(
            "salt \"{}\", {} iterations",
            utf8(pake::LABEL_CODE_SALT),
            grouped(pake::LABEL_CODE_ITERATIONS)
        ),
        format!("iterations, {} bytes)", pake::PBKDF_OUTPUT_LEN),
        format!(
            "(65 bytes, SEC1 uncompressed): {} bytes",
            pake::LABEL_RECORD_LEN
        ),
        format!("{} decimal digits drawn uniformly", pake::CODE_DIGITS),
    ] {
        assert!(section.contains(&needle), "18.7 lacks `{needle}`");
    }
}
