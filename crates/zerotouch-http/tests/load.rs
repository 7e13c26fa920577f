//! 1,000 devices, each with its own certificate, on ten accounts, from 250 loopback
//! addresses (so per-address limits apply as in the field), provision at once against one
//! server on the embedded store: every device gets its own account's network, none another's,
//! and no request fails. `ZT_LOAD_DEVICES` changes the count.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use zerotouch_core::{SignatureAlgorithm, Transport};
use zerotouch_device::RetryPolicy;
use zerotouch_http::{DirectHttps, Limits};
use zerotouch_server::ReassociationProof;
use zerotouch_store::{OutcomeKind, OutcomeStore};

const ACCOUNTS: usize = 10;
const ADDRESSES: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_devices_provision_concurrently_each_into_its_own_account() {
    let devices: usize = std::env::var("ZT_LOAD_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let h = Arc::new(Harness::start(Limits::default(), ACCOUNTS).await);

    let prepared = Instant::now();
    let mut fleet = Vec::with_capacity(devices);
    for i in 0..devices {
        let algorithm = if i % 2 == 0 {
            SignatureAlgorithm::EcdsaP256Sha256
        } else {
            SignatureAlgorithm::Ed25519
        };
        let mut device = h.factory_device(1_000_000 + i as u64, algorithm).await;
        device.account = i % ACCOUNTS;
        h.service
            .register_device(
                h.cert_registrar,
                &device.label,
                h.accounts[device.account],
                ReassociationProof::None,
                now(),
            )
            .await
            .unwrap();
        fleet.push(device);
    }
    eprintln!(
        "{devices} devices made and registered in {:?}",
        prepared.elapsed()
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, device) in fleet.into_iter().enumerate() {
        let h = Arc::clone(&h);
        tasks.push(tokio::spawn(async move {
            let mut endpoint = h.endpoint();
            endpoint.timeout = Duration::from_secs(60);
            let a = i % ADDRESSES;
            endpoint.local_ip = Some(IpAddr::from([
                127,
                0,
                1 + (a / 200) as u8,
                1 + (a % 200) as u8,
            ]));
            let mut exchange = DirectHttps::new(endpoint.clone(), endpoint, h.device_tls(&device));
            // Patient timers: under this load a response may take seconds, and a retransmit
            // would only add load (it is answered from the stored response anyway).
            let retry = RetryPolicy {
                initial_timeout_ms: 30_000,
                max_timeout_ms: 60_000,
                max_retransmits: 3,
                max_sessions: 2,
            };
            let run = h
                .provision_over(&device, Transport::Https, &mut exchange, retry)
                .await
                .unwrap_or_else(|e| panic!("device {i}: {e}"));
            (device, run)
        }));
    }
    let mut joined = 0;
    for task in tasks {
        let (device, run) = task.await.unwrap();
        assert_eq!(
            run.joined,
            Some(home_ssid(device.account)),
            "its own account's network"
        );
        assert_eq!(run.transport_failures, 0, "no request failed");
        let outcomes = h
            .service
            .store()
            .outcomes_of_device(&zerotouch_core::Signer::key_id(&*device.signer))
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].kind, OutcomeKind::Joined);
        joined += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(joined, devices);

    let text = h.metrics_text().await;
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("zerotouch_http_requests_total") && !l.contains("status=\"200\""))
        .collect();
    assert!(
        failed.is_empty(),
        "requests that did not succeed: {failed:?}"
    );
    assert!(!text.contains("result=\"replay\"") && !text.contains("result=\"internal\""));
    eprintln!(
        "{devices} devices provisioned concurrently in {elapsed:?} ({:.1} devices/s)",
        devices as f64 / elapsed.as_secs_f64()
    );
}
