//! The logs of whole runs (a good one and a wrong-PIN one) hold no secret. Its own test
//! binary: it installs the global `tracing` subscriber, which then sees every event.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::drive::*;
use common::*;
use zerotouch_device::*;
use zerotouch_server::*;
use zerotouch_store_suite::fixtures;

#[tokio::test]
async fn the_logs_of_a_whole_run_hold_no_secret() {
    let captured = Captured::global();

    let w = world(ServiceConfig::default()).await;
    let mut dev = device(&w.pinned, Some(fixtures::PIN));
    let mut clock = T0;
    dev.start(clock, Trigger::FirstBoot);
    // A wrong join first, so the refusal paths log too; then a wrong-PIN session.
    let events = drive(
        &w.service,
        &mut dev,
        &mut clock,
        &mut |_| JoinResult::Joined,
        &complete,
    )
    .await;
    assert!(matches!(events.last(), Some(Event::Complete { .. })));
    let mut liar = device(&w.pinned, Some("111111"));
    let mut clock2 = T0;
    liar.start(clock2, Trigger::FirstBoot);
    drive(
        &w.service,
        &mut liar,
        &mut clock2,
        &mut |_| JoinResult::Joined,
        &|e| matches!(e, Event::ServerHint { .. }),
    )
    .await;

    let logs = captured.text();
    assert!(
        logs.contains("credential response sent"),
        "the run was logged: {logs}"
    );
    assert!(
        logs.contains("wrong or missing PIN"),
        "the refusal was logged"
    );
    let lower = logs.to_lowercase();
    let device_record = fixtures::device(1);
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("PIN", fixtures::PIN.as_bytes().to_vec()),
        ("wrong PIN", b"111111".to_vec()),
        ("passphrase", PASSPHRASE.to_vec()),
        ("2.4 GHz passphrase", b"two point four only".to_vec()),
        (
            "device secret",
            device_record
                .device_secret
                .unwrap()
                .expose_secret()
                .to_vec(),
        ),
        (
            "device private key",
            fixtures::device_key(1).to_secret_bytes().to_vec(),
        ),
        ("server private key", vec![0xa1; 32]),
    ];
    for (what, secret) in secrets {
        let text = String::from_utf8_lossy(&secret).to_lowercase();
        if secret.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            assert!(!lower.contains(&text), "{what} in the logs");
        }
        assert!(
            !lower.contains(&hex::encode(&secret)),
            "{what} (hex) in the logs"
        );
        assert!(
            !lower.contains(&format!("{:?}", secret).to_lowercase()),
            "{what} (bytes) in the logs"
        );
    }
}
