//! The association service's logs hold no secret: not the joiner's device secret, not the
//! expected answer, not the sponsor's or the association key's private key. Its own test
//! binary: it installs the global `tracing` subscriber, which then sees every event.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::Captured;
use common::association::*;
use zerotouch_store_suite::fixtures;

#[tokio::test]
async fn the_logs_of_handoffs_answered_and_refused_hold_no_secret() {
    let captured = Captured::global();

    let s = service().await;
    let req = Req::new(SPONSOR, JOINER, 1);
    let answered = send(&s, &req.bytes(), T0).await;
    let expected = open_as_sponsor(&req, &answered.bytes).expected;
    let _ = send(&s, &req.bytes(), T0).await;
    let _ = send(&s, &Req::new(SPONSOR, NEIGHBOURS_DEVICE, 2).bytes(), T0).await;
    let _ = send(&s, &Req::new(UNKNOWN, JOINER, 3).bytes(), T0).await;

    let logs = captured.text();
    for step in [
        "sponsor verified",
        "verification data sent",
        "identical retransmission",
        "no_shared_account",
        "unknown_sponsor",
    ] {
        assert!(logs.contains(step), "{step} was logged: {logs}");
    }
    let lower = logs.to_lowercase();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        (
            "joiner's device secret",
            fixtures::device(JOINER)
                .device_secret
                .unwrap()
                .expose_secret()
                .to_vec(),
        ),
        ("expected answer", expected),
        (
            "sponsor's private key",
            fixtures::device_key(SPONSOR).to_secret_bytes().to_vec(),
        ),
        ("association private key", vec![0xb1; 32]),
    ];
    for (what, secret) in secrets {
        assert!(
            !lower.contains(&hex::encode(&secret)),
            "{what} (hex) in the logs"
        );
        assert!(
            !lower.contains(&format!("{secret:?}").to_lowercase()),
            "{what} (bytes) in the logs"
        );
    }
}
