//! The setup exchange: only a verified proof moves the device on, and only then does the PIN
//! (sealed) leave it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use zerotouch_core::Signer as _;
use zerotouch_core::flow1::binding::seal_aad;
use zerotouch_core::{CipherSuite, NegotiationError, SealError, SignatureError, Transport};
use zerotouch_device::*;

#[test]
fn proof_signed_by_unpinned_key_is_ignored() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let timer = dev.s.poll_timeout();
    assert_eq!(
        proof_refusals(&mut dev, &hello, &rogue(), ProofOpts::default()),
        vec![Refusal::Signature(SignatureError::UnknownKey)]
    );
    assert_eq!(dev.s.poll_timeout(), timer, "state unchanged");
    // The genuine proof still goes through.
    let (wire, _) = proof(&hello, &setup_a(), ProofOpts::default());
    dev.recv(Path::Setup, &wire);
    assert_eq!(dev.sent().path, Path::Setup);
}

#[test]
fn proof_signed_by_dropped_key_is_ignored() {
    let state = PersistedState {
        dropped_keys: vec![setup_a().key_id()],
        ..PersistedState::default()
    };
    let mut dev = Dev::with(config(None), MemoryDeviceState::with_state(&state));
    let hello = dev.hello();
    only_b_is_trusted(&mut dev, &hello);
}

#[test]
fn proof_over_another_transcript_is_ignored() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    // The same proof, but bound to a DNS session: the device used HTTPS.
    let opts = ProofOpts {
        transport: Transport::Dns,
        ..ProofOpts::default()
    };
    assert_eq!(
        proof_refusals(&mut dev, &hello, &setup_a(), opts),
        vec![Refusal::Signature(SignatureError::Invalid)]
    );
}

#[test]
fn proof_choosing_a_suite_not_offered_is_ignored() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let opts = ProofOpts {
        suite: CipherSuite::X25519_SHA256_CHACHA20POLY1305,
        ..ProofOpts::default()
    };
    assert_eq!(
        proof_refusals(&mut dev, &hello, &setup_a(), opts),
        vec![Refusal::Downgrade(NegotiationError::NotOffered)]
    );
}

#[test]
fn answers_from_another_session_or_path_are_ignored() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let (wire, _) = proof(&hello, &setup_a(), ProofOpts::default());
    assert_eq!(
        Dev::refusals(&dev.recv(Path::Home, &wire)),
        vec![Refusal::WrongPath]
    );
    let mut other = Dev::new(None);
    other.reseed(8);
    let other_hello = other.hello();
    let (wire, _) = proof(&other_hello, &setup_a(), ProofOpts::default());
    assert_eq!(
        Dev::refusals(&dev.recv(Path::Setup, &wire)),
        vec![Refusal::WrongSession]
    );
    assert!(matches!(
        Dev::refusals(&dev.recv(Path::Setup, b"\xff\x00garbage"))[..],
        [Refusal::Malformed(_)]
    ));
    assert!(dev.transmits().is_empty());
}

#[test]
fn pin_is_sent_only_after_server_is_authenticated() {
    // Nothing but the hello before a valid proof: no request, hence no PIN.
    let mut dev = Dev::new(Some(PIN));
    let hello = dev.hello();
    assert!(
        !hello.windows(PIN.len()).any(|w| w == PIN.as_bytes()),
        "the hello carries no PIN"
    );
    for bad in [
        proof(&hello, &rogue(), ProofOpts::default()).0,
        proof(
            &hello,
            &setup_a(),
            ProofOpts {
                transport: Transport::Ble,
                ..ProofOpts::default()
            },
        )
        .0,
    ] {
        dev.recv(Path::Setup, &bad);
        assert!(dev.transmits().is_empty());
    }
    // A valid proof asking for the PIN: it goes out sealed, never in clear.
    let opts = ProofOpts {
        pin_required: true,
        ..ProofOpts::default()
    };
    let (wire, setup) = proof(&hello, &setup_a(), opts);
    dev.recv(Path::Setup, &wire);
    let request = dev.sent().bytes;
    assert!(!request.windows(PIN.len()).any(|w| w == PIN.as_bytes()));
    let req = setup.read_request(&request);
    assert_eq!(req.report.pin.unwrap().expose_secret(), PIN);

    // A valid proof that does not ask: no PIN in the report.
    let mut dev = Dev::new(Some(PIN));
    let hello = dev.hello();
    let (wire, setup) = proof(&hello, &setup_a(), ProofOpts::default());
    dev.recv(Path::Setup, &wire);
    assert!(setup.read_request(&dev.sent().bytes).report.pin.is_none());

    // Asked for a PIN it does not have: the session fails, nothing is sent.
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let opts = ProofOpts {
        pin_required: true,
        ..ProofOpts::default()
    };
    let (wire, _) = proof(&hello, &setup_a(), opts);
    let ev = dev.recv(Path::Setup, &wire);
    assert!(ev.contains(&Event::SessionFailed {
        reason: Failure::PinRequiredButNone
    }));
    assert!(dev.transmits().is_empty());
}

#[test]
fn report_lists_only_secured_networks() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let (wire, setup) = proof(&hello, &setup_a(), ProofOpts::default());
    dev.recv(Path::Setup, &wire);
    let req = setup.read_request(&dev.sent().bytes);
    let ssids: Vec<&[u8]> = req.report.networks.iter().map(|n| &n.ssid[..]).collect();
    // The open network is left out; the others strongest first.
    assert_eq!(ssids, vec![&b"home-5g"[..], b"twin", b"home"]);
    assert!(req.report.networks.iter().all(|n| n.security != 0));
    assert_eq!(req.report.radio_bands, 3);
    assert_eq!(req.report.radio_security, 3);
}

#[test]
fn tampered_credential_response_is_ignored() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let (wire, mut setup) = proof(&hello, &setup_a(), ProofOpts::default());
    dev.recv(Path::Setup, &wire);
    let req = setup.read_request(&dev.sent().bytes);
    let resp = setup.response(&req, CREDS);
    // Flip one bit in each byte position of the signed body's tail (ciphertexts, signature).
    for i in (resp.len() - 120)..resp.len() {
        let mut t = resp.clone();
        t[i] ^= 0x04;
        let ev = dev.recv(Path::Setup, &t);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(matches!(ev[0], Event::MessageRefused { .. }), "{ev:?}");
    }
    // Signed by another pinned setup key than the proof's: refused too.
    let other = setup.response_with(&req, CREDS, &setup_b(), &seal_aad(&req.th));
    assert_eq!(
        Dev::refusals(&dev.recv(Path::Setup, &other)),
        vec![Refusal::WrongSigner]
    );
    assert!(dev.transmits().is_empty());
    // The genuine response is still accepted.
    assert_eq!(join_ssids(&dev.recv(Path::Setup, &resp)).len(), 1);
}

#[test]
fn credentials_sealed_to_another_transcript_do_not_open() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let (wire, mut setup) = proof(&hello, &setup_a(), ProofOpts::default());
    dev.recv(Path::Setup, &wire);
    let req = setup.read_request(&dev.sent().bytes);
    // Signed correctly over t3, but sealed with t2 as associated data.
    let t2 = setup.transcript.hash();
    let resp = setup.response_with(&req, CREDS, &setup_a(), &seal_aad(&t2));
    let ev = dev.recv(Path::Setup, &resp);
    assert_eq!(
        Dev::refusals(&ev),
        vec![Refusal::SealedCredentials(SealError::OpenFailed)]
    );
    assert!(join_ssids(&ev).is_empty());
    assert!(dev.transmits().is_empty());
}

#[test]
fn response_without_credentials_fails_the_session() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let (wire, mut setup) = proof(&hello, &setup_a(), ProofOpts::default());
    dev.recv(Path::Setup, &wire);
    let req = setup.read_request(&dev.sent().bytes);
    let resp = setup.response(&req, &[("home", 1, None)]);
    let ev = dev.recv(Path::Setup, &resp);
    assert_eq!(
        ev,
        vec![Event::SessionFailed {
            reason: Failure::NoCredentials
        }]
    );
    // Asks again later, with a fresh scan.
    dev.fire();
    assert_eq!(dev.events(), vec![Event::ScanRequested]);
}

#[test]
fn proof_expiry_bounds_the_credential_request() {
    let mut dev = Dev::new(None);
    let hello = dev.hello();
    let opts = ProofOpts {
        expires_in_s: 1,
        ..ProofOpts::default()
    };
    let (wire, _) = proof(&hello, &setup_a(), opts);
    dev.recv(Path::Setup, &wire);
    dev.sent();
    // First timer (1 s): the proof has expired, no retransmission, a new session.
    dev.fire();
    assert!(dev.transmits().is_empty());
    assert_eq!(
        dev.events(),
        vec![Event::SessionFailed {
            reason: Failure::ProofExpired
        }]
    );
}
