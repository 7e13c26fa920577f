//! Noise: the published cacophony vectors for `Noise_NN_25519_ChaChaPoly_SHA256` and
//! `Noise_XX_25519_ChaChaPoly_SHA256` (every one, from `tests/data/noise_cacophony_subset.json`),
//! then the rules the local channel relies on: tampering, replay, turns, bindings and
//! low-order keys are refused, and no input makes `read_message` panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;
use zerotouch_peer::noise::{
    Handshake, MAX_MESSAGE_LEN, NoiseError, Pattern, Role, StaticKeypair, Transport,
};

const VECTORS: &str = include_str!("data/noise_cacophony_subset.json");

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn h32(s: &str) -> [u8; 32] {
    h(s).try_into().unwrap()
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).map(|x| x.as_str().unwrap())
}

fn side(v: &Value, pattern: Pattern, role: Role) -> Handshake {
    let prefix = match role {
        Role::Initiator => "init",
        Role::Responder => "resp",
    };
    let prologue = h(field(v, &format!("{prefix}_prologue")).unwrap());
    let ephemeral = h32(field(v, &format!("{prefix}_ephemeral")).unwrap());
    let local_static =
        field(v, &format!("{prefix}_static")).map(|s| StaticKeypair::from_secret_bytes(h32(s)));
    Handshake::with_fixed_ephemeral(pattern, role, &prologue, local_static, ephemeral).unwrap()
}

/// Runs one vector: both sides, every message checked byte for byte, in both directions.
fn run_vector(v: &Value) {
    let name = field(v, "protocol_name").unwrap();
    let pattern = match name {
        "Noise_NN_25519_ChaChaPoly_SHA256" => Pattern::Nn,
        "Noise_XX_25519_ChaChaPoly_SHA256" => Pattern::Xx,
        other => panic!("vector for {other} in the subset"),
    };
    assert_eq!(pattern.protocol_name(), name);
    let mut init = side(v, pattern, Role::Initiator);
    let mut resp = side(v, pattern, Role::Responder);
    let mut transports: Option<(Transport, Transport)> = None;
    let messages = v.get("messages").unwrap().as_array().unwrap();
    assert!(messages.len() > 3, "{name}: vector has transport messages");
    for (i, m) in messages.iter().enumerate() {
        let payload = h(field(m, "payload").unwrap());
        let expected = h(field(m, "ciphertext").unwrap());
        let initiator_sends = i % 2 == 0;
        match &mut transports {
            None => {
                let (sender, receiver) = if initiator_sends {
                    (&mut init, &mut resp)
                } else {
                    (&mut resp, &mut init)
                };
                assert!(
                    sender.is_my_turn() && !receiver.is_my_turn(),
                    "{name} message {i}"
                );
                let ciphertext = sender.write_message(&payload).unwrap();
                assert_eq!(
                    hex::encode(&ciphertext),
                    hex::encode(&expected),
                    "{name} message {i}"
                );
                assert_eq!(
                    receiver.read_message(&ciphertext).unwrap(),
                    payload,
                    "{name} message {i}"
                );
                assert_eq!(init.is_finished(), resp.is_finished());
                if init.is_finished() {
                    let i_t = core::mem::replace(&mut init, side(v, pattern, Role::Initiator));
                    let r_t = core::mem::replace(&mut resp, side(v, pattern, Role::Responder));
                    transports =
                        Some((i_t.into_transport().unwrap(), r_t.into_transport().unwrap()));
                }
            }
            Some((i_t, r_t)) => {
                let (sender, receiver) = if initiator_sends {
                    (i_t, r_t)
                } else {
                    (r_t, i_t)
                };
                let ciphertext = sender.encrypt(&payload).unwrap();
                assert_eq!(
                    hex::encode(&ciphertext),
                    hex::encode(&expected),
                    "{name} message {i}"
                );
                assert_eq!(
                    receiver.decrypt(&ciphertext).unwrap(),
                    payload,
                    "{name} message {i}"
                );
            }
        }
    }
    let (i_t, r_t) = transports.unwrap();
    assert_eq!(i_t.handshake_hash(), r_t.handshake_hash());
    if let Some(hash) = field(v, "handshake_hash") {
        assert_eq!(
            hex::encode(i_t.handshake_hash()),
            hash,
            "{name} handshake hash"
        );
    }
    match pattern {
        Pattern::Nn => assert!(i_t.remote_static().is_none() && r_t.remote_static().is_none()),
        Pattern::Xx => {
            let init_pub = StaticKeypair::from_secret_bytes(h32(field(v, "init_static").unwrap()));
            let resp_pub = StaticKeypair::from_secret_bytes(h32(field(v, "resp_static").unwrap()));
            assert_eq!(i_t.remote_static(), Some(resp_pub.public()));
            assert_eq!(r_t.remote_static(), Some(init_pub.public()));
        }
    }
}

#[test]
fn every_cacophony_nn_and_xx_vector_matches_byte_for_byte() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    assert!(
        doc.get("source").is_some(),
        "the data file says where it came from"
    );
    let vectors = doc.get("vectors").unwrap().as_array().unwrap();
    let mut seen = (0, 0);
    for v in vectors {
        match field(v, "protocol_name") {
            Some("Noise_NN_25519_ChaChaPoly_SHA256") => seen.0 += 1,
            Some("Noise_XX_25519_ChaChaPoly_SHA256") => seen.1 += 1,
            _ => {}
        }
        run_vector(v);
    }
    assert!(
        seen.0 >= 1 && seen.1 >= 1,
        "both patterns covered: {seen:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Rules.

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn pair(pattern: Pattern, seed: u64) -> (Handshake, Handshake) {
    let mut r = rng(seed);
    let (si, sr) = match pattern {
        Pattern::Nn => (None, None),
        Pattern::Xx => (
            Some(StaticKeypair::generate(&mut r)),
            Some(StaticKeypair::generate(&mut r)),
        ),
    };
    let init = Handshake::new(pattern, Role::Initiator, b"zt test", si, &mut r).unwrap();
    let resp = Handshake::new(pattern, Role::Responder, b"zt test", sr, &mut r).unwrap();
    (init, resp)
}

/// Runs the whole handshake; returns the messages sent, in order.
fn complete(init: &mut Handshake, resp: &mut Handshake) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    while !init.is_finished() {
        let (sender, receiver) = if init.is_my_turn() {
            (&mut *init, &mut *resp)
        } else {
            (&mut *resp, &mut *init)
        };
        let m = sender.write_message(b"hello").unwrap();
        assert_eq!(receiver.read_message(&m).unwrap(), b"hello");
        sent.push(m);
    }
    assert!(resp.is_finished());
    sent
}

fn session(pattern: Pattern, seed: u64) -> (Transport, Transport) {
    let (mut init, mut resp) = pair(pattern, seed);
    complete(&mut init, &mut resp);
    (
        init.into_transport().unwrap(),
        resp.into_transport().unwrap(),
    )
}

#[test]
fn tampered_handshake_message_is_refused() {
    for pattern in [Pattern::Nn, Pattern::Xx] {
        let (mut init, mut resp) = pair(pattern, 1);
        let messages = complete(&mut init, &mut resp);
        // Every bit of every message, flipped in turn: the side that reads it, or the next
        // one to read anything, refuses, and the handshake never completes on both sides.
        for (index, message) in messages.iter().enumerate() {
            for byte in 0..message.len() {
                let (mut init, mut resp) = pair(pattern, 1);
                let mut refused = false;
                for (i, original) in messages.iter().enumerate() {
                    let (sender, receiver) = if i % 2 == 0 {
                        (&mut init, &mut resp)
                    } else {
                        (&mut resp, &mut init)
                    };
                    let Ok(mut m) = sender.write_message(b"hello") else {
                        refused = true;
                        break;
                    };
                    if i <= index {
                        assert_eq!(&m, original, "same seed, same messages");
                    }
                    if i == index {
                        m[byte] ^= 0x01;
                    }
                    if receiver.read_message(&m).is_err() {
                        refused = true;
                        assert_eq!(
                            receiver.read_message(&m),
                            Err(NoiseError::HandshakeAborted),
                            "a refused message ends the handshake"
                        );
                        assert!(!receiver.is_my_turn());
                        break;
                    }
                }
                assert!(
                    refused,
                    "{pattern:?}: flip in message {index} byte {byte} accepted"
                );
            }
        }
    }
    // Specifically: a damaged encrypted payload is a decryption failure.
    let (mut init, mut resp) = pair(Pattern::Xx, 2);
    let m1 = init.write_message(b"").unwrap();
    resp.read_message(&m1).unwrap();
    let mut m2 = resp.write_message(b"payload").unwrap();
    let last = m2.len() - 1;
    m2[last] ^= 0x80;
    assert_eq!(init.read_message(&m2), Err(NoiseError::DecryptFailed));
    assert_eq!(init.write_message(b""), Err(NoiseError::HandshakeAborted));
    assert_eq!(
        init.into_transport().err(),
        Some(NoiseError::HandshakeAborted)
    );
    // A message cut short is refused as truncated.
    let (mut init, mut resp) = pair(Pattern::Nn, 3);
    let m1 = init.write_message(b"").unwrap();
    assert_eq!(
        resp.read_message(&m1[..31]),
        Err(NoiseError::TruncatedMessage)
    );
}

#[test]
fn tampered_transport_message_is_refused_and_does_not_advance_nonce() {
    for pattern in [Pattern::Nn, Pattern::Xx] {
        let (mut a, mut b) = session(pattern, 4);
        let c1 = a.encrypt(b"first").unwrap();
        let c2 = a.encrypt(b"second").unwrap();
        for byte in 0..c1.len() {
            let mut bad = c1.clone();
            bad[byte] ^= 0x01;
            assert_eq!(b.decrypt(&bad), Err(NoiseError::DecryptFailed));
        }
        assert_eq!(
            b.decrypt(&c1[..c1.len() - 1]),
            Err(NoiseError::DecryptFailed)
        );
        assert_eq!(b.decrypt(&c1[..15]), Err(NoiseError::TruncatedMessage));
        assert_eq!(b.decrypt(&[]), Err(NoiseError::TruncatedMessage));
        // None of that moved the nonce: the genuine messages still decrypt, in order.
        assert_eq!(b.decrypt(&c1).unwrap(), b"first");
        assert_eq!(b.decrypt(&c2).unwrap(), b"second");
        // And the other direction is unaffected.
        let back = b.encrypt(b"back").unwrap();
        assert_eq!(a.decrypt(&back).unwrap(), b"back");
    }
}

#[test]
fn message_out_of_turn_is_refused() {
    for pattern in [Pattern::Nn, Pattern::Xx] {
        let (mut init, mut resp) = pair(pattern, 5);
        assert!(init.is_my_turn() && !resp.is_my_turn());
        assert_eq!(resp.write_message(b""), Err(NoiseError::OutOfTurn));
        assert_eq!(init.read_message(&[9; 96]), Err(NoiseError::OutOfTurn));
        let m1 = init.write_message(b"").unwrap();
        assert_eq!(init.write_message(b""), Err(NoiseError::OutOfTurn));
        // Refusals out of turn change nothing: the handshake goes on.
        resp.read_message(&m1).unwrap();
        assert_eq!(resp.read_message(&m1), Err(NoiseError::OutOfTurn));
        let m2 = resp.write_message(b"").unwrap();
        init.read_message(&m2).unwrap();
        if pattern == Pattern::Xx {
            assert_eq!(init.read_message(&m2), Err(NoiseError::OutOfTurn));
            assert!(init.remote_static().is_some());
            let m3 = init.write_message(b"").unwrap();
            resp.read_message(&m3).unwrap();
        }
        assert!(init.is_finished() && resp.is_finished());
        assert!(!init.is_my_turn() && !resp.is_my_turn());
        assert_eq!(
            init.write_message(b""),
            Err(NoiseError::HandshakeAlreadyFinished)
        );
        assert_eq!(
            resp.read_message(&m2),
            Err(NoiseError::HandshakeAlreadyFinished)
        );
        let (mut a, mut b) = (
            init.into_transport().unwrap(),
            resp.into_transport().unwrap(),
        );
        let c = a.encrypt(b"x").unwrap();
        assert_eq!(b.decrypt(&c).unwrap(), b"x");
    }
    // A transport cannot be had before the last message.
    let (mut init, _resp) = pair(Pattern::Nn, 6);
    init.write_message(b"").unwrap();
    assert_eq!(
        init.into_transport().err(),
        Some(NoiseError::HandshakeNotFinished)
    );
}

#[test]
fn replayed_transport_message_is_refused() {
    let (mut a, mut b) = session(Pattern::Nn, 7);
    let c1 = a.encrypt(b"one").unwrap();
    let c2 = a.encrypt(b"two").unwrap();
    assert_eq!(b.decrypt(&c1).unwrap(), b"one");
    assert_eq!(b.decrypt(&c1), Err(NoiseError::DecryptFailed), "replay");
    assert_eq!(b.decrypt(&c2).unwrap(), b"two");
    assert_eq!(b.decrypt(&c2), Err(NoiseError::DecryptFailed), "replay");
    assert_eq!(
        b.decrypt(&c1),
        Err(NoiseError::DecryptFailed),
        "old message"
    );
    // A message sent back to its own sender (reflection) is refused too.
    let c3 = a.encrypt(b"three").unwrap();
    assert_eq!(a.decrypt(&c3), Err(NoiseError::DecryptFailed), "reflection");
    // Reordering: the later message first is refused; then both arrive in order.
    let c4 = a.encrypt(b"four").unwrap();
    assert_eq!(b.decrypt(&c4), Err(NoiseError::DecryptFailed), "reordered");
    assert_eq!(b.decrypt(&c3).unwrap(), b"three");
    assert_eq!(b.decrypt(&c4).unwrap(), b"four");
}

#[test]
fn both_sides_export_the_same_binding() {
    for pattern in [Pattern::Nn, Pattern::Xx] {
        let mut r = rng(8);
        let (si, sr) = match pattern {
            Pattern::Nn => (None, None),
            Pattern::Xx => (
                Some(StaticKeypair::generate(&mut r)),
                Some(StaticKeypair::generate(&mut r)),
            ),
        };
        let (pi, pr) = (
            si.as_ref().map(StaticKeypair::public),
            sr.as_ref().map(StaticKeypair::public),
        );
        let mut init = Handshake::new(pattern, Role::Initiator, b"p", si, &mut r).unwrap();
        let mut resp = Handshake::new(pattern, Role::Responder, b"p", sr, &mut r).unwrap();
        complete(&mut init, &mut resp);
        let (a, b) = (
            init.into_transport().unwrap(),
            resp.into_transport().unwrap(),
        );
        assert_eq!(a.handshake_hash(), b.handshake_hash());
        assert_ne!(a.handshake_hash(), [0u8; 32]);
        assert_eq!(a.remote_static(), pr);
        assert_eq!(b.remote_static(), pi);
    }
}

#[test]
fn different_sessions_export_different_bindings() {
    let mut seen = std::collections::HashSet::new();
    for pattern in [Pattern::Nn, Pattern::Xx] {
        for seed in 0..8 {
            let (a, _) = session(pattern, 100 + seed);
            assert!(
                seen.insert(a.handshake_hash()),
                "{pattern:?} seed {seed} repeats a binding"
            );
        }
    }
    // Same keys and randomness, different prologue: different binding (and the peers
    // disagree, so the handshake fails).
    let mut r1 = rng(9);
    let mut r2 = rng(9);
    let mut init = Handshake::new(Pattern::Nn, Role::Initiator, b"v1", None, &mut r1).unwrap();
    let mut resp = Handshake::new(Pattern::Nn, Role::Responder, b"v2", None, &mut r2).unwrap();
    let m1 = init.write_message(b"").unwrap();
    resp.read_message(&m1).unwrap();
    let m2 = resp.write_message(b"").unwrap();
    assert_eq!(init.read_message(&m2), Err(NoiseError::DecryptFailed));
}

/// Low-order X25519 points (the list libsodium refuses): DH with any of them is all zeros.
const LOW_ORDER: [&str; 7] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

#[test]
fn low_order_ephemeral_is_refused() {
    for point in LOW_ORDER {
        let point = h32(point);
        // From the initiator: the responder accepts the first message (it has no DH yet) but
        // refuses to answer it.
        for pattern in [Pattern::Nn, Pattern::Xx] {
            let (_, mut resp) = pair(pattern, 10);
            resp.read_message(&point).unwrap();
            assert_eq!(
                resp.write_message(b""),
                Err(NoiseError::WeakDhResult),
                "{pattern:?}"
            );
            assert_eq!(resp.write_message(b""), Err(NoiseError::HandshakeAborted));
        }
        // From the responder: the initiator refuses the answer at the `ee` DH.
        for pattern in [Pattern::Nn, Pattern::Xx] {
            let (mut init, _) = pair(pattern, 11);
            init.write_message(b"").unwrap();
            let mut m2 = point.to_vec();
            m2.resize(if pattern == Pattern::Nn { 48 } else { 96 }, 0);
            assert_eq!(
                init.read_message(&m2),
                Err(NoiseError::WeakDhResult),
                "{pattern:?}"
            );
        }
    }
}

#[test]
fn static_key_must_match_the_pattern() {
    let mut r = rng(12);
    let s = StaticKeypair::generate(&mut r);
    assert_eq!(
        Handshake::new(Pattern::Xx, Role::Initiator, b"", None, &mut r).err(),
        Some(NoiseError::MissingStaticKey)
    );
    assert_eq!(
        Handshake::new(Pattern::Nn, Role::Responder, b"", Some(s.clone()), &mut r).err(),
        Some(NoiseError::UnexpectedStaticKey)
    );
    let restored = StaticKeypair::from_secret_bytes(*s.to_secret_bytes());
    assert_eq!(restored.public(), s.public());
    let debug = format!("{s:?}");
    assert!(
        !debug.contains(&format!("{:?}", *s.to_secret_bytes())),
        "secret in Debug: {debug}"
    );
}

#[test]
fn over_long_messages_are_refused_without_aborting() {
    let (mut init, mut resp) = pair(Pattern::Xx, 13);
    // Message 1 carries the 32-byte ephemeral and the clear payload.
    assert_eq!(
        init.write_message(&vec![0; MAX_MESSAGE_LEN - 31]),
        Err(NoiseError::MessageTooLong)
    );
    let m1 = init.write_message(&vec![7; MAX_MESSAGE_LEN - 32]).unwrap();
    assert_eq!(m1.len(), MAX_MESSAGE_LEN);
    assert_eq!(
        resp.read_message(&vec![0; MAX_MESSAGE_LEN + 1]),
        Err(NoiseError::MessageTooLong)
    );
    resp.read_message(&m1).unwrap();
    // Message 2: 32 + 48 + payload + 16.
    assert_eq!(
        resp.write_message(&vec![0; MAX_MESSAGE_LEN - 95]),
        Err(NoiseError::MessageTooLong)
    );
    let m2 = resp.write_message(&vec![0; MAX_MESSAGE_LEN - 96]).unwrap();
    assert_eq!(m2.len(), MAX_MESSAGE_LEN);
    init.read_message(&m2).unwrap();
    let m3 = init.write_message(b"").unwrap();
    resp.read_message(&m3).unwrap();
    let (mut a, mut b) = (
        init.into_transport().unwrap(),
        resp.into_transport().unwrap(),
    );
    assert_eq!(
        a.encrypt(&vec![0; MAX_MESSAGE_LEN - 15]),
        Err(NoiseError::MessageTooLong)
    );
    let c = a.encrypt(&vec![1; MAX_MESSAGE_LEN - 16]).unwrap();
    assert_eq!(c.len(), MAX_MESSAGE_LEN);
    assert_eq!(
        b.decrypt(&vec![0; MAX_MESSAGE_LEN + 1]),
        Err(NoiseError::MessageTooLong)
    );
    assert_eq!(b.decrypt(&c).unwrap().len(), MAX_MESSAGE_LEN - 16);
}

proptest! {
    #[test]
    fn read_message_never_panics(
        seed in any::<u64>(),
        xx in any::<bool>(),
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..4),
        big in proptest::collection::vec(any::<u8>(), 0..70_000),
    ) {
        let pattern = if xx { Pattern::Xx } else { Pattern::Nn };
        // Arbitrary bytes into a responder (any message), into an initiator after its first
        // message, and into an established transport.
        let (mut init, mut resp) = pair(pattern, seed);
        init.write_message(b"").unwrap();
        for m in messages.iter().chain(core::iter::once(&big)) {
            let _ = resp.read_message(m);
            if resp.is_my_turn() {
                let _ = resp.write_message(b"");
            }
            let _ = init.read_message(m);
        }
        let (mut a, _) = session(pattern, seed);
        for m in messages.iter().chain(core::iter::once(&big)) {
            prop_assert!(a.decrypt(m).is_err());
        }
    }
}
