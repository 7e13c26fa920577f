//! `OpenNetworkOrder::verify` and `SetupNetwork::accept_order`, the provisioner's entry points
//! for an order that arrives from the network, on arbitrary bytes. With
//! `InsecureFuzzingProvider`, which accepts every signature, the fuzzer gets past the signature
//! to the order body, but never past the envelope, tag, trusted-key, role and addressee checks;
//! every refusal is the typed error its stage gives. An accepted order re-signs to the same
//! body (the decoding is canonical), the real provider never accepts more than the insecure one,
//! and the engine opens the network exactly for orders within their deadline and the policy's
//! maximum, once.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use zerotouch_core::{
    Body, Envelope, InsecureFuzzingProvider, Instant, KeyLookup, KeyRole, MessageTag, PinnedKeys,
    PublicKey, RustCryptoProvider, SignatureAlgorithm, SignatureError, SoftwareSigner,
};
use zerotouch_fuzz::{ORDER_WALL_MS, fixed_signer, order_fixture};
use zerotouch_provisioner::{
    NetworkMode, OpenNetworkOrder, OrderError, SetupNetwork, SetupNetworkPolicy, TimerDecision,
    order_transcript,
};

struct Fixture {
    /// The provisioner's own key.
    me: PublicKey,
    /// The Ed25519 order key, and `me` for another role.
    trusted: PinnedKeys,
    /// The server's order key, to re-sign accepted orders with.
    server: SoftwareSigner,
    policy: SetupNetworkPolicy,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let (me, trusted) = order_fixture();
    let router = "10.77.0.1".parse().unwrap_or_else(|e| panic!("{e}"));
    let server_addr = "203.0.113.10".parse().unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        me,
        trusted,
        server: fixed_signer(SignatureAlgorithm::Ed25519),
        policy: SetupNetworkPolicy::with_defaults(router, (router, 24), vec![server_addr]),
    }
});

/// A closed network that only an order opens, as an already-joined device runs it.
fn network(f: &Fixture) -> SetupNetwork {
    match SetupNetwork::new(f.policy.clone(), NetworkMode::OpenedByOrder, Instant(0)) {
        Ok(net) => net,
        Err(e) => panic!("default policy refused: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let insecure = InsecureFuzzingProvider;
    let r = OpenNetworkOrder::verify(data, &f.me, &f.trusted, &insecure);

    // Whatever happens to the order, the engine refuses it with the same error and stays
    // closed, or opens exactly as the order says.
    // At the fixed time the seeds are made for, and when the order says it was issued.
    accept(f, data, &r, ORDER_WALL_MS);
    if let Ok(order) = &r {
        accept(f, data, &r, order.issued_at_ms);
    }

    // Each stage refuses with its own error.
    let env = match Envelope::decode(data) {
        Ok(env) => env,
        Err(e) => {
            assert_eq!(r, Err(OrderError::Malformed(e)), "envelope refusal");
            return;
        }
    };
    if env.header.tag != MessageTag::OpenSetupNetworkOrder || env.header.seq != 0 {
        assert_eq!(r, Err(OrderError::WrongMessage), "not an order");
        return;
    }
    let Body::Signed(body) = &env.body else {
        panic!("an order envelope decoded with a plain body");
    };
    let key = f
        .trusted
        .trusted_key(KeyRole::ProvisionerOrder, body.key_id());
    let Some(key) = key else {
        assert_eq!(
            r,
            Err(OrderError::Signature(SignatureError::UnknownKey)),
            "an order signed by a key not trusted for orders"
        );
        return;
    };
    if key.algorithm() != body.algorithm() {
        assert_eq!(
            r,
            Err(OrderError::Signature(SignatureError::AlgorithmMismatch)),
            "an order with another algorithm than its key's"
        );
        return;
    }

    // Past the signature (which the insecure provider does not check). The real provider runs
    // on whatever signature the fuzzer made: it never accepts more, and agrees when it accepts.
    let real = OpenNetworkOrder::verify(data, &f.me, &f.trusted, &RustCryptoProvider);
    if let Ok(order) = &real {
        assert_eq!(r.as_ref(), Ok(order), "the real provider accepted more");
    }
    let th = order_transcript(&insecure, &env.header.session_id.0, &f.me);
    let payload = match body.verify_trusted(
        &env.header,
        KeyRole::ProvisionerOrder,
        &th,
        &f.trusted,
        &insecure,
    ) {
        Ok(p) => p,
        Err(e) => panic!("verify_trusted refused what passed the key checks: {e:?}"),
    };
    let order = match r {
        Ok(order) => order,
        Err(OrderError::Malformed(_))
        | Err(OrderError::WrongMessage)
        | Err(OrderError::NotForThisDevice) => return,
        Err(e) => panic!("unexpected refusal of a signed order: {e:?}"),
    };
    assert_eq!(
        order.order_id, env.header.session_id.0,
        "order id != session id"
    );
    assert_eq!(
        order.provisioner_key_id,
        f.me.key_id(),
        "order for another device"
    );

    // Canonical: signing the decoded order again gives the same body, which verifies for real.
    let wire = match order.sign(&f.me, &f.server, &RustCryptoProvider) {
        Ok(w) => w,
        Err(e) => panic!("re-signing an accepted order failed: {e:?}"),
    };
    match OpenNetworkOrder::verify(&wire, &f.me, &f.trusted, &RustCryptoProvider) {
        Ok(again) => assert_eq!(again, order, "decode(sign(order)) != order"),
        Err(e) => panic!("re-signed order refused: {e:?}"),
    }
    let again = match Envelope::decode(&wire) {
        Ok(env) => env,
        Err(e) => panic!("re-signed order does not decode: {e:?}"),
    };
    let Body::Signed(again_body) = &again.body else {
        panic!("re-signed order has a plain body");
    };
    match again_body.verify_trusted(
        &again.header,
        KeyRole::ProvisionerOrder,
        &th,
        &f.trusted,
        &RustCryptoProvider,
    ) {
        Ok(p) => assert_eq!(p, payload, "the order body is not canonical"),
        Err(e) => panic!("re-signed order body refused: {e:?}"),
    }
    assert_eq!(
        again.header, env.header,
        "re-signed order has another header"
    );
});

/// `accept_order` at `wall` on a fresh engine, against what `verify` said.
fn accept(f: &Fixture, data: &[u8], verified: &Result<OpenNetworkOrder, OrderError>, wall: u64) {
    let insecure = InsecureFuzzingProvider;
    let now = Instant(1_000);
    let mut net = network(f);
    let r = net.accept_order(data, &f.me, &f.trusted, &insecure, wall, now);
    let order = match verified {
        Ok(order) => *order,
        Err(e) => {
            assert_eq!(r.as_ref(), Err(e), "accept_order and verify disagree");
            assert_eq!(net.opening(), None, "a refused order opened the network");
            return;
        }
    };
    let max = u64::try_from(f.policy.max_order_validity.as_millis()).unwrap_or(u64::MAX);
    if wall >= order.not_after_ms {
        assert_eq!(r, Err(OrderError::Expired), "expired order at {wall}");
    } else if order.not_after_ms.saturating_sub(order.issued_at_ms) > max
        || order.not_after_ms - wall > max
    {
        assert_eq!(r, Err(OrderError::TooLong), "over-long order at {wall}");
    } else {
        let opening = match r {
            Ok(o) => o,
            Err(e) => panic!("valid order refused at {wall}: {e:?}"),
        };
        assert_eq!(opening.device_key_id, order.device_key_id);
        assert_eq!(opening.until, Instant(now.0 + (order.not_after_ms - wall)));
        assert_eq!(net.opening(), Some(opening));
        let replay = net.accept_order(data, &f.me, &f.trusted, &insecure, wall, now);
        assert_eq!(replay, Err(OrderError::Replayed), "order carried out twice");
        assert_eq!(net.poll_timeout(), Some(opening.until));
        assert_eq!(
            net.handle_timeout(opening.until),
            vec![TimerDecision::Closed],
            "the opening did not end at its deadline"
        );
        return;
    }
    assert_eq!(net.opening(), None, "a refused order opened the network");
}
