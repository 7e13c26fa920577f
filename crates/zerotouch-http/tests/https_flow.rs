//! Flow 1 over real HTTPS on loopback: devices with P-256 and Ed25519 certificates, server
//! trust without a clock or by pinned key, a BLE device through a provisioner relay,
//! registrars by certificate and by token, the audit log, and graceful shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::*;
use hyper::Method;
use zeroize::Zeroizing;
use zerotouch_core::{SignatureAlgorithm, Transport};
use zerotouch_device::RetryPolicy;
use zerotouch_http::{
    DirectHttps, HttpError, Limits, OperatorClient, RegistrarClient, RegistrationResult,
    RelayClient, ServerTrust, client_tls_config, device_tls_config,
};
use zerotouch_pki::{ClientRole, Validity};
use zerotouch_store::{OutcomeKind, OutcomeStore};

async fn assert_joined_own_home(h: &Harness, device: &TestDevice) {
    let run = h.provision(device).await.unwrap();
    assert_eq!(run.joined, Some(home_ssid(device.account)));
    assert!(
        run.revocation_checked,
        "the revocation verdict was verified"
    );
    let outcomes = h
        .service
        .store()
        .outcomes_of_device(&device.signer.key_id())
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].kind, OutcomeKind::Joined);
}

use zerotouch_core::Signer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_with_p256_certificate_provisions_over_mutual_tls() {
    let h = Harness::start(Limits::default(), 3).await;
    let device = h
        .make_device(1, SignatureAlgorithm::EcdsaP256Sha256, 1)
        .await;
    assert_joined_own_home(&h, &device).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_with_ed25519_certificate_provisions_over_mutual_tls() {
    let h = Harness::start(Limits::default(), 3).await;
    let device = h.make_device(2, SignatureAlgorithm::Ed25519, 2).await;
    assert_joined_own_home(&h, &device).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_certificates_never_expire() {
    use der::Decode as _;
    let h = Harness::start(Limits::default(), 1).await;
    let device = h
        .make_device(3, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    let cert = x509_cert::Certificate::from_der(&device.certificate).unwrap();
    let not_after = cert.tbs_certificate().validity().not_after;
    // RFC 5280 4.1.2.5: 99991231235959Z, as GeneralizedTime.
    assert_eq!(not_after.to_unix_duration().as_secs(), 253_402_300_799);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_checks_server_chain_but_not_dates_without_a_clock() {
    // The server's certificate expired long ago: a device without a clock still accepts it
    // (its chain and name are checked), a registrar with a clock does not.
    let mut pki = Pki::new();
    pki.server = pki
        .servers
        .issue_server(
            &[SERVER_NAME],
            Validity::expired(Duration::from_secs(400 * 24 * 3600)),
        )
        .unwrap();
    let h = Harness::start_with(pki, Limits::default(), 2).await;
    let device = h
        .make_device(4, SignatureAlgorithm::EcdsaP256Sha256, 1)
        .await;
    assert_joined_own_home(&h, &device).await;

    let mut registrar = h.channel_with(Some(&h.registrar_cert));
    let err = registrar
        .request(Method::GET, "/healthz", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Io(_) | HttpError::Tls(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_refuses_a_server_certificate_from_another_ca() {
    let h = Harness::start(Limits::default(), 1).await;
    let device = h
        .make_device(5, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    // The device trusts the manufacturer CA for its server: the server's chain is not there.
    let tls = device_tls_config(
        device.certificate.clone(),
        device.signer.clone(),
        ServerTrust::Ca {
            ca_der: h.pki.manufacturer.certificate_der().to_vec(),
            check_dates: false,
        },
    )
    .unwrap();
    let mut exchange = DirectHttps::new(h.endpoint(), h.endpoint(), tls);
    let err = h
        .provision_over(&device, Transport::Https, &mut exchange, quick_give_up())
        .await
        .unwrap_err();
    assert_gave_up_with_nothing_recorded(&h, &device, err).await;
}

/// The device gave up, and the server recorded no outcome for it.
async fn assert_gave_up_with_nothing_recorded(h: &Harness, device: &TestDevice, err: HttpError) {
    assert!(matches!(err, HttpError::GaveUp(_)), "{err}");
    assert!(
        h.service
            .store()
            .outcomes_of_device(&device.signer.key_id())
            .await
            .unwrap()
            .is_empty()
    );
}

fn quick_give_up() -> RetryPolicy {
    RetryPolicy {
        initial_timeout_ms: 200,
        max_timeout_ms: 400,
        max_retransmits: 1,
        max_sessions: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_pinning_the_server_key_provisions_and_refuses_another_key() {
    let h = Harness::start(Limits::default(), 2).await;
    let device = h
        .make_device(6, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    let pinned = ServerTrust::pin_of_certificate(h.pki.server.certificate_der()).unwrap();
    let tls = device_tls_config(device.certificate.clone(), device.signer.clone(), pinned).unwrap();
    let mut exchange = DirectHttps::new(h.endpoint(), h.endpoint(), tls);
    let run = h
        .provision_over(&device, Transport::Https, &mut exchange, fast_retry())
        .await
        .unwrap();
    assert_eq!(run.joined, Some(home_ssid(0)));

    let other = h
        .make_device(7, SignatureAlgorithm::EcdsaP256Sha256, 1)
        .await;
    let wrong_pin = ServerTrust::PinnedKey {
        spki_sha256: [7; 32],
    };
    let tls =
        device_tls_config(other.certificate.clone(), other.signer.clone(), wrong_pin).unwrap();
    let mut exchange = DirectHttps::new(h.endpoint(), h.endpoint(), tls);
    let err = h
        .provision_over(&other, Transport::Https, &mut exchange, quick_give_up())
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::GaveUp(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ble_device_relayed_by_a_provisioner_is_authenticated_by_its_key_proof() {
    let h = Harness::start(Limits::default(), 3).await;
    let device = h.make_device(8, SignatureAlgorithm::Ed25519, 2).await;
    let tls = h.provisioner_tls();
    let mut relay = RelayClient::new(h.endpoint(), tls, Transport::Ble).unwrap();
    let run = h
        .provision_over(&device, Transport::Ble, &mut relay, fast_retry())
        .await
        .unwrap();
    assert_eq!(run.joined, Some(home_ssid(2)));
    assert!(run.revocation_checked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_that_misstates_the_device_transport_only_fails_the_session() {
    // The device speaks BLE; a relay claiming "local-stream" changes the transcript the
    // device signs over, so the server refuses the proof and the device gets nothing.
    let h = Harness::start(Limits::default(), 1).await;
    let device = h
        .make_device(9, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    let tls = h.provisioner_tls();
    let mut relay = RelayClient::new(h.endpoint(), tls, Transport::LocalStream).unwrap();
    let err = h
        .provision_over(&device, Transport::Ble, &mut relay, quick_give_up())
        .await
        .unwrap_err();
    assert_gave_up_with_nothing_recorded(&h, &device, err).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrars_register_by_certificate_and_by_token_and_the_audit_log_shows_both() {
    let h = Harness::start(Limits::default(), 2).await;
    let first = h
        .factory_device(10, SignatureAlgorithm::EcdsaP256Sha256)
        .await;
    let second = h.factory_device(11, SignatureAlgorithm::Ed25519).await;

    let tls = client_tls_config(
        Some((h.registrar_cert.chain(), h.registrar_cert.private_key())),
        h.operator_trust(),
    )
    .unwrap();
    let mut by_cert = RegistrarClient::new(h.endpoint(), tls, None);
    let answer = by_cert.register(&h.registration(&first, 0)).await.unwrap();
    assert_eq!(answer.result, RegistrationResult::Added);

    let tls = client_tls_config(None, h.operator_trust()).unwrap();
    let mut by_token = RegistrarClient::new(
        h.endpoint(),
        tls.clone(),
        Some(Zeroizing::new(h.registrar_token.clone())),
    );
    let request = h.registration(&second, 1);
    assert_eq!(
        by_token.register(&request).await.unwrap().result,
        RegistrationResult::Added
    );
    assert_eq!(
        by_token.register(&request).await.unwrap().result,
        RegistrationResult::AlreadyRegistered
    );

    // Moving the second device to account 0 needs its in-box PIN.
    let mut moving = request.clone();
    moving.account = h.accounts[0].0;
    let err = by_token.register(&moving).await.unwrap_err();
    assert!(
        matches!(&err, HttpError::Status { status: 409, code, .. } if code == "reassociation_needs_proof"),
        "{err}"
    );
    moving.pin = Some(Zeroizing::new(second.pin.expose_secret().to_string()));
    let moved = by_token.register(&moving).await.unwrap();
    assert_eq!(moved.result, RegistrationResult::Reassociated);
    assert_eq!(moved.previous_accounts, vec![h.accounts[1].0]);

    let mut operator = OperatorClient::new(
        h.endpoint(),
        tls.clone(),
        Zeroizing::new(h.operator_token.clone()),
    );
    let audit = operator.audit(0, 100).await.unwrap();
    let actions: Vec<(&str, i64, i64)> = audit
        .iter()
        .map(|r| (r.action.as_str(), r.account, r.registrar))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("add", h.accounts[0].0, h.cert_registrar.0),
            ("add", h.accounts[1].0, h.token_registrar.0),
            ("reassociate", h.accounts[0].0, h.token_registrar.0),
        ]
    );
    assert!(
        audit
            .iter()
            .all(|r| r.label.as_ref().is_some_and(|l| !l.had_pin))
    );
    // Paging: after the first entry.
    assert_eq!(operator.audit(audit[0].seq, 100).await.unwrap().len(), 2);

    let mut wrong = OperatorClient::new(h.endpoint(), tls, Zeroizing::new("guess".into()));
    let err = wrong.audit(0, 10).await.unwrap_err();
    assert!(
        matches!(&err, HttpError::Status { status: 401, code, .. } if code == "operator_token_required"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrar_certificate_the_store_does_not_know_is_refused() {
    let h = Harness::start(Limits::default(), 1).await;
    let device = h
        .factory_device(12, SignatureAlgorithm::EcdsaP256Sha256)
        .await;
    // Issued by the registrar CA, but never added as a registrar.
    let stranger = h
        .pki
        .registrars
        .issue_client(
            ClientRole::Registrar,
            "stranger",
            Validity::years_from_now(1),
        )
        .unwrap();
    let tls = client_tls_config(
        Some((stranger.chain(), stranger.private_key())),
        h.operator_trust(),
    )
    .unwrap();
    let mut client = RegistrarClient::new(h.endpoint(), tls, None);
    let before = h.snapshot();
    let err = client
        .register(&h.registration(&device, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HttpError::Status { status: 403, code, .. } if code == "unknown_registrar"),
        "{err}"
    );
    assert_eq!(before, h.snapshot());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_the_request_in_flight_and_refuses_new_connections() {
    let mut h = Harness::start(Limits::default(), 1).await;
    let device = h
        .make_device(13, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    // A request whose body is still arriving when shutdown starts.
    let tls = h.device_tls(&device);
    let addr = h.addr();
    let slow = tokio::spawn(async move { slow_post(addr, tls, Duration::from_millis(600)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = h.server.take().unwrap();
    let stopping = tokio::spawn(server.shutdown());
    let status = slow.await.unwrap();
    // The service answered it (the bytes are no valid message: 400 with a protocol error).
    assert_eq!(status, 400);
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

/// Sends a POST whose body arrives in two parts `gap` apart; returns the status.
async fn slow_post(
    addr: std::net::SocketAddr,
    tls: std::sync::Arc<rustls::ClientConfig>,
    gap: Duration,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(
        b"POST /v1/setup HTTP/1.1\r\nhost: x\r\ncontent-type: application/cbor\r\ncontent-length: 8\r\nconnection: close\r\n\r\nabcd",
    )
    .await
    .unwrap();
    tokio::time::sleep(gap).await;
    tls.write_all(b"efgh").await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    String::from_utf8_lossy(&raw)
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
