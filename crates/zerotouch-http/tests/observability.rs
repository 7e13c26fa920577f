//! What an operator sees: Prometheus metrics for sessions, outcomes, lock-outs, revocation
//! checks, request and store latency; health and readiness; the session id on every log line
//! the setup service writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use zerotouch_core::{Pin, SignatureAlgorithm};
use zerotouch_http::{DirectHttps, Limits};
use zerotouch_server::ServiceConfig;

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric line starting {line_start}:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_readiness_and_session_ids_in_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let mut h = Harness::start(Limits::default(), 2).await;
    assert_eq!(
        http_get(h.ops_addr(), "/healthz").await,
        (200, "ok\n".into())
    );
    assert_eq!(
        http_get(h.ops_addr(), "/readyz").await,
        (200, "ready\n".into())
    );

    // One device joins; another has a wrong PIN in firmware until it is locked out.
    let good = h
        .make_device(1, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    h.provision(&good).await.unwrap();
    let mut wrong = h.make_device(2, SignatureAlgorithm::Ed25519, 1).await;
    wrong.pin = Pin::new("000000").unwrap();
    let lockout_after = ServiceConfig::default().pin_lockout.max_failures;
    for _ in 0..lockout_after {
        let mut exchange = DirectHttps::new(h.endpoint(), h.endpoint(), h.device_tls(&wrong));
        let retry = zerotouch_device::RetryPolicy {
            max_sessions: 1,
            max_retransmits: 0,
            initial_timeout_ms: 300,
            max_timeout_ms: 300,
        };
        let run = h
            .provision_over(
                &wrong,
                zerotouch_core::Transport::Https,
                &mut exchange,
                retry,
            )
            .await;
        assert!(run.is_err(), "a wrong PIN gets no credential");
    }

    let text = h.metrics_text().await;
    assert_eq!(
        metric(
            &text,
            "zerotouch_setup_requests_total{message=\"hello\",result=\"answered\"}"
        ),
        1.0 + f64::from(lockout_after)
    );
    assert_eq!(
        metric(
            &text,
            "zerotouch_setup_requests_total{message=\"credential_request\",result=\"wrong_pin\"}"
        ),
        f64::from(lockout_after)
    );
    assert_eq!(
        metric(&text, "zerotouch_setup_outcomes_total{outcome=\"joined\"}"),
        1.0
    );
    assert_eq!(metric(&text, "zerotouch_pin_lockouts_total"), 1.0);
    assert_eq!(
        metric(&text, "zerotouch_revocation_checks_total{verdict=\"good\"}"),
        1.0
    );
    assert!(
        metric(
            &text,
            "zerotouch_store_operation_seconds_count{operation=\"consume_nonce\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            "zerotouch_http_request_seconds_count{endpoint=\"setup\"}"
        ) >= 3.0
    );
    assert!(
        metric(
            &text,
            "zerotouch_http_requests_total{endpoint=\"setup\",status=\"403\"}"
        ) >= 1.0
    );
    assert!(text.contains("# TYPE zerotouch_http_request_seconds histogram"));

    // Every line the setup service logged for a request carries its session id.
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let service_lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("zerotouch_server::setup:"))
        .collect();
    assert!(service_lines.len() >= 8, "{logs}");
    for line in &service_lines {
        assert!(
            line.contains("flow1{session=")
                || line.contains("undecodable")
                || line.contains("purged"),
            "no session id: {line}"
        );
    }
    // ... and no secret: not the PIN, not a passphrase.
    assert!(!logs.contains(good.pin.expose_secret()));
    assert!(!logs.contains(std::str::from_utf8(&home_passphrase(0)).unwrap()));

    // After shutdown the operations listener is closed too.
    let ops = h.ops_addr();
    h.shutdown().await;
    assert!(tokio::net::TcpStream::connect(ops).await.is_err());
}
