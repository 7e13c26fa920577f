//! The whole-handoff test vector (`docs/PROTOCOL.md` 18.6): one deterministic flow-2 handoff
//! through the real [`Joiner`] and [`Sponsor`], with the association server played by the test
//! from core functions, written to `docs/vectors/flow2.json`. Every random draw comes from a
//! ChaCha20Rng seeded per party and is recorded; keys come from fixed secrets
//! `SHA-256("zerotouch test vector " || label)`; ECDSA is deterministic (RFC 6979).
//!
//! Each message is recorded as sent (Noise frames on the local link, envelopes to and from the
//! server) and, for the local transport messages, in clear: decrypted by a second pair of
//! channels built from the recorded ephemeral draws, as a port checking its own side would.
//!
//! After an intended change: `ZT_UPDATE_VECTORS=1 cargo test -p zerotouch-peer --test
//! flow2_vectors` rewrites the file (`ZEROTOUCH_REGENERATE_VECTORS=1` does the same), and the
//! diff shows what changed on the wire.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;

use common::*;
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use rand_core::{Rng, TryCryptoRng, TryRng};
use serde_json::{Value, json};
use zerotouch_core::flow2::{
    self, AnswerContext, ChallengeData, ChallengeResponse, CredentialHandover,
    PeerCredentialRequest, VerificationRequest, challenge_answer, credential_commitment,
};
use zerotouch_core::*;
use zerotouch_peer::*;

const JOINER_SEED: u64 = 1;
const SPONSOR_SEED: u64 = 2;
const SERVER_SEED: u64 = 3;
/// Both devices' clocks during the run (nothing times out).
const NOW: Instant = Instant(1_000);
const ANSWER_WINDOW_MS: u32 = 30_000;

/// Every random draw of one party: from its seeded ChaCha20Rng (and recorded), or replayed from
/// the vector.
enum Draws {
    Seeded(Box<ChaCha20Rng>, Vec<Vec<u8>>),
    Replayed(VecDeque<Vec<u8>>),
}

impl Draws {
    fn seeded(seed: u64) -> Draws {
        Draws::Seeded(Box::new(ChaCha20Rng::seed_from_u64(seed)), Vec::new())
    }

    fn recorded(&self) -> &[Vec<u8>] {
        match self {
            Draws::Seeded(_, log) => log,
            Draws::Replayed(_) => &[],
        }
    }
}

impl TryRng for Draws {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        match self {
            Draws::Seeded(rng, log) => {
                rng.fill_bytes(dst);
                log.push(dst.to_vec());
            }
            Draws::Replayed(queue) => {
                let d = queue.pop_front().expect("a recorded draw left");
                assert_eq!(d.len(), dst.len(), "draw size");
                dst.copy_from_slice(&d);
            }
        }
        Ok(())
    }
}
impl TryCryptoRng for Draws {}

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

fn secret(label: &str) -> [u8; 32] {
    RustCryptoProvider.sha256(&[b"zerotouch test vector ", label.as_bytes()])
}

fn p256(label: &str) -> SoftwareSigner {
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &secret(label)).unwrap(),
    )
}

fn key_json(label: &str, key: &SoftwareSigner) -> Value {
    json!({
        "label": label,
        "secret": h(&secret(label)),
        "public_key": h(key.public_key().raw_bytes()),
        "spki_der": h(&key.public_key().to_spki_der()),
        "key_id": h(&key.key_id().0),
    })
}

/// One message of the run, in order.
struct Sent {
    from: &'static str,
    to: &'static str,
    bytes: Vec<u8>,
}

/// The payload of a signed envelope, checked under `key`.
fn signed_payload(env: &Envelope, role: KeyRole, key: &PublicKey) -> Vec<u8> {
    let Body::Signed(body) = &env.body else {
        panic!("unsigned {:?}", env.header.tag)
    };
    let th = flow2::handoff_transcript(&RustCryptoProvider, &env.header.session_id);
    body.verify(&env.header, role, &th, key, &RustCryptoProvider)
        .unwrap()
        .to_vec()
}

fn plain_body(env: &Envelope) -> &[u8] {
    let Body::Plain(b) = &env.body else {
        panic!("signed {:?}", env.header.tag)
    };
    b
}

/// Runs the reference handoff and returns the vector.
fn generate() -> Value {
    let p = RustCryptoProvider;
    let association = p256("association p256");
    let other_association = p256("other association p256");
    let sponsor_key = p256("sponsor identity p256");
    let joiner_key = p256("joiner identity p256");
    let device_secret = DeviceSecret::new(secret("joiner device secret"));
    let pinned = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        association.public_key().clone(),
    )]);
    let joiner_id = joiner_key.key_id();
    let joiner_config = JoinerConfig::new(joiner_id, device_secret.clone(), pinned.clone());
    let sponsor_config = SponsorConfig::new(home(), pinned);
    let nonce_lifetime_ms = u64::try_from(joiner_config.nonce_lifetime.as_millis()).unwrap();
    let answer_suite = sponsor_config.answer_suite;
    let mut joiner = Joiner::new(joiner_config, MemoryPeerState::new()).unwrap();
    let mut sponsor =
        Sponsor::new(sponsor_config, sponsor_key.clone(), MemoryPeerState::new()).unwrap();
    let mut server = TestServer {
        signer: association.clone(),
        other_signer: other_association,
        sponsor_key: sponsor_key.public_key().clone(),
        joiner_secret: device_secret.clone(),
        window_ms: ANSWER_WINDOW_MS,
        tamper: ServerTampering::default(),
        requests: vec![],
    };
    let (mut jr, mut sr, mut vr) = (
        Draws::seeded(JOINER_SEED),
        Draws::seeded(SPONSOR_SEED),
        Draws::seeded(SERVER_SEED),
    );

    joiner.start(NOW, &mut jr);
    sponsor.accept(NOW, &mut sr);
    let mut sent = Vec::new();
    let mut moved = true;
    while moved {
        moved = false;
        while let Some(bytes) = joiner.poll_transmit() {
            moved = true;
            sponsor.receive_local(NOW, &bytes, &mut sr);
            sent.push(Sent {
                from: "joiner",
                to: "sponsor",
                bytes,
            });
        }
        while let Some(t) = sponsor.poll_transmit() {
            moved = true;
            match t.destination {
                Destination::Joiner => {
                    joiner.receive(NOW, &t.bytes, &mut jr);
                    sent.push(Sent {
                        from: "sponsor",
                        to: "joiner",
                        bytes: t.bytes,
                    });
                }
                Destination::AssociationServer => {
                    let answer = server.answer(&t.bytes, &mut vr);
                    sponsor.receive_server(NOW, &answer, &mut sr);
                    sent.push(Sent {
                        from: "sponsor",
                        to: "association server",
                        bytes: t.bytes,
                    });
                    sent.push(Sent {
                        from: "association server",
                        to: "sponsor",
                        bytes: answer,
                    });
                }
            }
        }
    }
    let joiner_events: Vec<JoinerEvent> = std::iter::from_fn(|| joiner.poll_event()).collect();
    let sponsor_events: Vec<SponsorEvent> = std::iter::from_fn(|| sponsor.poll_event()).collect();
    assert!(
        joiner_events
            .iter()
            .any(|e| matches!(e, JoinerEvent::Join { .. })),
        "the reference handoff failed: {joiner_events:?} / {sponsor_events:?}"
    );
    assert_eq!(
        sent.len(),
        8,
        "handshake ×2, request, verification ×2, challenge, answer, handover"
    );

    // The local transport messages in clear: a pair of channels with the recorded ephemerals.
    let first_draw = |d: &Draws| Draws::Replayed(VecDeque::from([d.recorded()[0].clone()]));
    let (mut as_joiner, first) = LocalChannel::initiator(&mut first_draw(&jr)).unwrap();
    let mut as_sponsor = LocalChannel::responder(&mut first_draw(&sr)).unwrap();
    assert_eq!(
        first, sent[0].bytes,
        "the joiner's first draw is its ephemeral key"
    );
    let reply = as_sponsor.receive(&sent[0].bytes).unwrap().reply;
    assert_eq!(
        reply, sent[1].bytes,
        "the sponsor's first draw is its ephemeral key"
    );
    assert!(as_joiner.receive(&sent[1].bytes).unwrap().opened);
    let binding = as_joiner.binding().unwrap();
    assert_eq!(as_sponsor.binding(), Some(binding));

    let mut clear = Vec::new();
    let mut messages = Vec::new();
    for (i, s) in sent.iter().enumerate() {
        let mut m = json!({ "from": s.from, "to": s.to });
        let plaintext = match (s.from, s.to) {
            _ if i < 2 => {
                m["noise"] = json!(if i == 0 { "-> e" } else { "<- e, ee" });
                m["sent"] = json!(h(&s.bytes));
                messages.push(m);
                continue;
            }
            ("joiner", _) => as_sponsor.receive(&s.bytes).unwrap().messages.remove(0),
            (_, "joiner") => as_joiner.receive(&s.bytes).unwrap().messages.remove(0),
            _ => s.bytes.clone(),
        };
        let env = Envelope::decode(&plaintext).unwrap();
        m["tag"] = json!(format!("{:?}", env.header.tag));
        m["clear"] = json!(h(&plaintext));
        m["sent"] = json!(h(&s.bytes));
        messages.push(m);
        clear.push(env);
    }

    // The values the messages carry, each checked against what computes it.
    let tags: Vec<MessageTag> = clear.iter().map(|e| e.header.tag).collect();
    assert_eq!(
        tags,
        [
            MessageTag::PeerCredentialRequest,
            MessageTag::VerificationRequest,
            MessageTag::VerificationData,
            MessageTag::ChallengeData,
            MessageTag::ChallengeResponse,
            MessageTag::CredentialHandover,
        ]
    );
    let session_id = clear[0].header.session_id;
    let asked = PeerCredentialRequest::decode_body(plain_body(&clear[0])).unwrap();
    assert_eq!(asked.seen_binding, Some(binding));
    let request = VerificationRequest::decode_body(&signed_payload(
        &clear[1],
        KeyRole::DeviceIdentity,
        sponsor_key.public_key(),
    ))
    .unwrap();
    assert_eq!(request.binding, binding);
    let data = flow2::VerificationData::decode_body(&signed_payload(
        &clear[2],
        KeyRole::Association,
        association.public_key(),
    ))
    .unwrap();
    assert_eq!(
        data.challenge_data,
        clear[3].encode(),
        "forwarded byte for byte"
    );
    let challenge = ChallengeData::decode_body(&signed_payload(
        &clear[3],
        KeyRole::Association,
        association.public_key(),
    ))
    .unwrap();
    let answer = ChallengeResponse::decode_body(plain_body(&clear[4]))
        .unwrap()
        .answer;
    let handover = CredentialHandover::decode_body(plain_body(&clear[5])).unwrap();
    let expected = challenge_answer(
        &p,
        &device_secret,
        &AnswerContext {
            session_id: &session_id,
            nonce: &asked.nonce,
            sponsor_id: &sponsor_key.key_id(),
            joiner_id: &joiner_id,
        },
        &challenge.challenge,
        &binding,
    );
    assert_eq!(answer, expected);
    let commitment = credential_commitment(
        &p,
        &handover.commitment_key,
        &session_id,
        &asked.nonce,
        &joiner_id,
        &handover.credential,
    );
    assert_eq!(commitment, request.commitment);
    assert_eq!(handover.credential, home());

    let draws = |d: &Draws| d.recorded().iter().map(|b| h(b)).collect::<Vec<_>>();
    let credential = home();
    json!({
        "description": "One whole flow-2 handoff (docs/PROTOCOL.md section 18) through \
            zerotouch-peer's Joiner and Sponsor, the association server played from \
            zerotouch-core's functions. Each party's random draws come, in order, from \
            ChaCha20Rng::seed_from_u64(seed) and are listed; keys come from the secrets \
            SHA-256(\"zerotouch test vector \" || label); ECDSA signatures are deterministic \
            (RFC 6979). Both devices' clocks read clock_ms throughout. Local messages are \
            listed as sent (one Noise frame: 2-byte length, then the Noise message) and in \
            clear (the envelope inside); messages to and from the server are envelopes.",
        "noise": {
            "protocol": flow2::NOISE_PROTOCOL,
            "prologue": h(flow2::NOISE_PROLOGUE),
            "initiator_e": h(&sent[0].bytes),
            "responder_e_ee": h(&sent[1].bytes),
        },
        "keys": [
            key_json("association p256", &association),
            key_json("sponsor identity p256", &sponsor_key),
            key_json("joiner identity p256", &joiner_key),
        ],
        "joiner": {
            "seed": JOINER_SEED,
            "random": draws(&jr),
            "joiner_id": h(&joiner_id.0),
            "device_secret": h(device_secret.expose_secret()),
            "clock_ms": NOW.0,
            "nonce_lifetime_ms": nonce_lifetime_ms,
            "session_id": h(&session_id.0),
            "nonce": h(&asked.nonce.0),
        },
        "sponsor": {
            "seed": SPONSOR_SEED,
            "random": draws(&sr),
            "sponsor_id": h(&sponsor_key.key_id().0),
            "clock_ms": NOW.0,
            "answer_suite": { "kem": answer_suite.kem, "kdf": answer_suite.kdf, "aead": answer_suite.aead },
            "answer_public_key": h(&request.answer_key.public_key),
            "credential": {
                "ssid": h(&credential.ssid),
                "security": credential.security,
                "passphrase": h(credential.passphrase.expose_secret()),
            },
            "commitment_key": h(handover.commitment_key.expose_secret()),
        },
        "association_server": {
            "seed": SERVER_SEED,
            "random": draws(&vr),
            "challenge": h(&challenge.challenge.0),
            "answer_window_ms": ANSWER_WINDOW_MS,
        },
        "binding": h(&binding.0),
        "commitment": h(&commitment.0),
        "expected_answer": h(expected.expose_secret()),
        "messages": messages,
        "joiner_events": joiner_events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
        "sponsor_events": sponsor_events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
    })
}

fn regenerating() -> bool {
    ["ZT_UPDATE_VECTORS", "ZEROTOUCH_REGENERATE_VECTORS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty() && s != "0"))
}

fn path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/vectors/flow2.json").to_owned()
}

#[test]
fn the_flow2_vectors_match_the_code() {
    let text = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if regenerating() {
        std::fs::write(path(), &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path())
        .expect("docs/vectors/flow2.json (run with ZT_UPDATE_VECTORS=1)");
    assert!(
        committed == text,
        "docs/vectors/flow2.json is stale: flow 2's wire format or the roles changed \
         (after an intended change run with ZT_UPDATE_VECTORS=1 and review the diff)"
    );
}

#[test]
fn a_joiner_fed_the_vectors_draws_and_sponsor_frames_sends_the_vectors_frames() {
    // The committed file, read as a port would (while regenerating: the new content).
    let v: Value = if regenerating() {
        generate()
    } else {
        serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap()
    };
    let j = &v["joiner"];
    let association = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "association p256")
        .unwrap();
    let pinned = PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        PublicKey::p256_sec1(&unhex(&association["public_key"])).unwrap(),
    )]);
    let mut config = JoinerConfig::new(
        KeyId(unhex(&j["joiner_id"]).try_into().unwrap()),
        DeviceSecret::from_slice(&unhex(&j["device_secret"])).unwrap(),
        pinned,
    );
    config.nonce_lifetime =
        std::time::Duration::from_millis(j["nonce_lifetime_ms"].as_u64().unwrap());
    let now = Instant(j["clock_ms"].as_u64().unwrap());
    let mut rng = Draws::Replayed(j["random"].as_array().unwrap().iter().map(unhex).collect());
    let mut joiner = Joiner::new(config, MemoryPeerState::new()).unwrap();

    let messages = v["messages"].as_array().unwrap();
    let frames = |from: &str, to: &str| -> Vec<Vec<u8>> {
        messages
            .iter()
            .filter(|m| m["from"] == from && m["to"] == to)
            .map(|m| unhex(&m["sent"]))
            .collect()
    };
    joiner.start(now, &mut rng);
    let mut emitted: Vec<Vec<u8>> = std::iter::from_fn(|| joiner.poll_transmit()).collect();
    for frame in frames("sponsor", "joiner") {
        joiner.receive(now, &frame, &mut rng);
        emitted.extend(std::iter::from_fn(|| joiner.poll_transmit()));
    }
    let expected = frames("joiner", "sponsor");
    assert_eq!(emitted.len(), expected.len(), "number of joiner frames");
    for (i, (got, want)) in emitted.iter().zip(&expected).enumerate() {
        assert!(got == want, "joiner frame {i} differs from the vector");
    }
    let Draws::Replayed(left) = &rng else {
        unreachable!()
    };
    assert!(
        left.is_empty(),
        "the joiner drew less than the vector lists"
    );

    let s = &v["sponsor"]["credential"];
    let events: Vec<JoinerEvent> = std::iter::from_fn(|| joiner.poll_event()).collect();
    match events
        .iter()
        .find(|e| matches!(e, JoinerEvent::Join { .. }))
    {
        Some(JoinerEvent::Join {
            ssid,
            security,
            passphrase,
        }) => {
            assert_eq!(*ssid, unhex(&s["ssid"]));
            assert_eq!(u64::from(*security), s["security"].as_u64().unwrap());
            assert_eq!(passphrase.expose_secret(), unhex(&s["passphrase"]));
        }
        _ => panic!("no join: {events:?}"),
    }
    assert!(joiner.is_finished());
}
