//! What each flow-2 fallback costs the two devices, against the local channel every handoff
//! opens anyway.
//!
//! In one run it times: the Noise NN handshake between a joiner and a sponsor (the reference),
//! and whole in-memory handoffs of the real `Joiner` and `Sponsor` that fall back after the
//! association server answers `NotAssociated`, for (a) compared codes, (b) a code shown by the
//! joiner and (c) the label code (the owner's answers given at once); and the label code's
//! derivation alone (PBKDF2, 10,000 iterations). Each figure is printed with its ratio to the
//! reference. Run: `cargo bench -p zerotouch-benches --bench fallback_cost`.

// A bench that hits an error has nothing to measure: stopping there is right.
#![allow(clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use zerotouch_benches::time_per_op;
use zerotouch_core::flow2::{self, Fallback, HomeCredential};
use zerotouch_core::*;
use zerotouch_peer::pake::{CodeKind, pbkdf_output};
use zerotouch_peer::*;

const LABEL: &str = "31415926";

struct Fixture {
    pinned: PinnedKeys,
    identity: SoftwareSigner,
    joiner_id: KeyId,
    secret: DeviceSecret,
    label: LabelRecord,
}

impl Fixture {
    fn new() -> Fixture {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let key = |rng: &mut ChaCha20Rng| {
            SoftwareSigner::new(
                SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, rng).expect("key"),
            )
        };
        let server = key(&mut rng);
        let pinned = PinnedKeys::new(vec![PinnedKey::new(
            KeyRole::Association,
            server.public_key().clone(),
        )]);
        let joiner_id = key(&mut rng).key_id();
        let label = LabelRecord::from_code(&PairingCode::parse(LABEL).expect("code"), &joiner_id)
            .expect("record");
        Fixture {
            pinned,
            identity: key(&mut rng),
            joiner_id,
            secret: DeviceSecret::generate(&mut rng),
            label,
        }
    }

    /// One whole handoff that falls back to `fallback`; the owner answers at once.
    fn fallback_handoff(&self, fallback: Fallback, rng: &mut ChaCha20Rng) {
        let mut jc = JoinerConfig::new(self.joiner_id, self.secret.clone(), self.pinned.clone());
        jc.interface = OwnerInterface::FULL;
        jc.fallbacks = vec![fallback];
        jc.label_record = Some(self.label.clone());
        let home = HomeCredential {
            ssid: b"home".to_vec(),
            security: 2,
            passphrase: Passphrase::new(b"correct horse battery").expect("passphrase"),
        };
        let mut sc = SponsorConfig::new(home, self.pinned.clone());
        sc.interface = OwnerInterface::FULL;
        sc.fallbacks = vec![fallback];
        let mut joiner = Joiner::new(jc, MemoryPeerState::new()).expect("joiner");
        let mut sponsor =
            Sponsor::new(sc, self.identity.clone(), MemoryPeerState::new()).expect("sponsor");
        let now = Instant(0);
        joiner.start(now, rng);
        sponsor.accept(now, rng);
        for _ in 0..20 {
            while let Some(bytes) = joiner.poll_transmit() {
                sponsor.receive_local(now, &bytes, rng);
            }
            while let Some(t) = sponsor.poll_transmit() {
                match t.destination {
                    Destination::Joiner => joiner.receive(now, &t.bytes, rng),
                    Destination::AssociationServer => {
                        let session = Envelope::decode(&t.bytes)
                            .expect("request")
                            .header
                            .session_id;
                        let refusal = ErrorMessage {
                            code: ErrorCode::NotAssociated,
                            retry_after_s: 0,
                            supported_versions: vec![],
                        };
                        let answer = Envelope::plain(
                            flow2::header(MessageTag::Error, session),
                            refusal.encode_body(),
                        )
                        .expect("error");
                        sponsor.receive_server(now, &answer.encode(), rng);
                    }
                }
            }
            let mut shown = None;
            while let Some(e) = joiner.poll_event() {
                if let JoinerEvent::OwnerAction { prompt, .. } = e {
                    match prompt {
                        OwnerPrompt::CompareCode { .. } => {
                            joiner.confirm_code(now, true).expect("confirm")
                        }
                        OwnerPrompt::ShowCode { code } => shown = Some(code.grouped()),
                        _ => {}
                    }
                }
            }
            while let Some(e) = sponsor.poll_event() {
                if let SponsorEvent::OwnerAction { prompt, .. } = e {
                    match prompt {
                        OwnerPrompt::CompareCode { .. } => {
                            sponsor.confirm_code(now, true).expect("confirm")
                        }
                        OwnerPrompt::EnterLabelCode => {
                            sponsor.enter_code(now, LABEL, rng).expect("code")
                        }
                        _ => {}
                    }
                }
            }
            if let Some(code) = shown {
                sponsor.enter_code(now, &code, rng).expect("code");
            }
            if joiner.is_finished() {
                return;
            }
        }
        panic!("the {fallback:?} handoff did not finish");
    }
}

fn main() {
    let fixture = Fixture::new();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let channel = time_per_op(200, || {
        let (mut initiator, first) = LocalChannel::initiator(&mut rng).expect("initiator");
        let mut responder = LocalChannel::responder(&mut rng).expect("responder");
        let reply = responder.receive(&first).expect("first").reply;
        black_box(initiator.receive(&reply).expect("reply").opened);
    });
    println!("{:<44} {:>12} {:>8}", "operation", "us", "ratio");
    println!(
        "{:<44} {:>12.1} {:>8.2}",
        "Noise NN channel (reference)", channel, 1.0
    );
    for (name, fallback, iters) in [
        (
            "handoff with (a) compared codes",
            Fallback::CompareCodes,
            100,
        ),
        (
            "handoff with (b) code shown by the joiner",
            Fallback::JoinerShowsCode,
            50,
        ),
        ("handoff with (c) label code", Fallback::LabelCode, 20),
    ] {
        let us = time_per_op(iters, || fixture.fallback_handoff(fallback, &mut rng));
        println!("{name:<44} {us:>12.1} {:>8.2}", us / channel);
    }
    let code = PairingCode::parse(LABEL).expect("code");
    let label = time_per_op(20, || {
        black_box(pbkdf_output(&code, &fixture.joiner_id, CodeKind::Label).expect("derive"));
    });
    println!(
        "{:<44} {label:>12.1} {:>8.2}",
        "label code derivation (PBKDF2, 10,000 it.)",
        label / channel
    );
}
