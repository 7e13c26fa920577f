//! Bad input over the wire: each gets a clear status and message, the store does not change,
//! and the server goes on serving others.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use hyper::Method;
use zerotouch_core::{Envelope, MessageTag, SignatureAlgorithm, Signer, SigningKey};
use zerotouch_http::{CBOR, HttpsChannel, Limits, RateLimit, Reply, device_tls_config};
use zerotouch_pki::{CertificateAuthority, ClientRole, Validity};

fn assert_rejected(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.error_code.as_deref(), Some(code), "{}", reply.text());
    assert!(
        reply.text().starts_with(&format!("{code}: ")),
        "{}",
        reply.text()
    );
}

/// A full provisioning of a fresh device: the server still serves others.
async fn assert_still_serving(h: &Harness, seed: u64) {
    let device = h
        .make_device(seed, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    let run = h.provision(&device).await.unwrap();
    assert_eq!(run.joined, Some(home_ssid(0)));
}

async fn post(channel: &mut HttpsChannel, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
    channel
        .request(Method::POST, path, &[], Some((content_type, body)))
        .await
        .unwrap()
}

fn hello_like() -> Vec<u8> {
    // Not a valid message; what matters is who sends it.
    vec![0x84, 0x01, 0x02, 0x03, 0x04]
}

fn from(h: &Harness, ip: [u8; 4], tls: std::sync::Arc<rustls::ClientConfig>) -> HttpsChannel {
    let mut endpoint = h.endpoint();
    endpoint.local_ip = Some(IpAddr::from(ip));
    HttpsChannel::new(endpoint, tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_certificate_on_a_device_endpoint_is_401() {
    let h = Harness::start(Limits::default(), 1).await;
    let before = h.snapshot();
    let reply = post(&mut h.channel_with(None), "/v1/setup", CBOR, hello_like()).await;
    assert_rejected(&reply, 401, "client_certificate_required");
    assert!(reply.text().contains("manufacturer CA"));
    assert_eq!(before, h.snapshot());
    assert_still_serving(&h, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_certificate_from_another_ca_is_403() {
    let h = Harness::start(Limits::default(), 1).await;
    let rogue = CertificateAuthority::new(
        "Rogue devices",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(5),
    )
    .unwrap();
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(5);
    let key = std::sync::Arc::new(zerotouch_core::SoftwareSigner::new(
        SigningKey::generate(SignatureAlgorithm::EcdsaP256Sha256, &mut rng).unwrap(),
    ));
    let cert = rogue.issue_device(key.public_key(), 7, 1).unwrap();
    let tls = device_tls_config(cert, key, h.device_trust()).unwrap();
    let before = h.snapshot();
    let reply = post(
        &mut HttpsChannel::new(h.endpoint(), tls),
        "/v1/setup",
        CBOR,
        hello_like(),
    )
    .await;
    assert_rejected(&reply, 403, "certificate_not_trusted");
    assert_eq!(before, h.snapshot());
    assert_still_serving(&h, 101).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_open_only_their_own_role_s_endpoints() {
    let h = Harness::start(Limits::default(), 1).await;
    let device = h.make_device(1, SignatureAlgorithm::Ed25519, 0).await;
    let before = h.snapshot();
    // A registrar certificate on device and relay endpoints.
    let mut registrar = h.channel_with(Some(&h.registrar_cert));
    for path in ["/v1/setup", "/v1/revocation", "/v1/relay/ble"] {
        let reply = post(&mut registrar, path, CBOR, hello_like()).await;
        assert_rejected(&reply, 403, "certificate_not_trusted");
    }
    // A device certificate on the registrar and relay endpoints.
    let mut device_channel = h.device_channel(&device);
    let registration = h.registration_body(&device, 0);
    let reply = post(
        &mut device_channel,
        "/v1/registrar/registrations",
        CBOR,
        registration.clone(),
    )
    .await;
    assert_rejected(&reply, 403, "certificate_not_trusted");
    assert!(reply.text().contains("registrar CA"));
    let reply = post(&mut device_channel, "/v1/relay/ble", CBOR, hello_like()).await;
    assert_rejected(&reply, 403, "certificate_not_trusted");
    // A provisioner certificate on the device and registrar endpoints.
    let mut provisioner = h.channel_with(Some(&h.provisioner_cert));
    let reply = post(&mut provisioner, "/v1/setup", CBOR, hello_like()).await;
    assert_rejected(&reply, 403, "certificate_not_trusted");
    let reply = post(
        &mut provisioner,
        "/v1/registrar/registrations",
        CBOR,
        registration,
    )
    .await;
    assert_rejected(&reply, 403, "certificate_not_trusted");
    // No certificate and no token on the registrar endpoint.
    let reply = post(
        &mut h.channel_with(None),
        "/v1/registrar/registrations",
        CBOR,
        vec![0xa0],
    )
    .await;
    assert_rejected(&reply, 401, "registrar_credential_required");
    assert_eq!(before, h.snapshot());
    assert_still_serving(&h, 102).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_registrar_and_provisioner_certificates_are_403() {
    let h = Harness::start(Limits::default(), 1).await;
    let device = h
        .factory_device(2, SignatureAlgorithm::EcdsaP256Sha256)
        .await;
    let expired = Validity::expired(Duration::from_secs(24 * 3600));
    let registrar = h
        .pki
        .registrars
        .issue_client(ClientRole::Registrar, "old scanner", expired)
        .unwrap();
    let provisioner = h
        .pki
        .provisioners
        .issue_client(ClientRole::Provisioner, "old router", expired)
        .unwrap();
    let before = h.snapshot();
    let registration = h.registration_body(&device, 0);
    let reply = post(
        &mut h.channel_with(Some(&registrar)),
        "/v1/registrar/registrations",
        CBOR,
        registration,
    )
    .await;
    assert_rejected(&reply, 403, "certificate_expired");
    let reply = post(
        &mut h.channel_with(Some(&provisioner)),
        "/v1/relay/ble",
        CBOR,
        hello_like(),
    )
    .await;
    assert_rejected(&reply, 403, "certificate_expired");
    assert_eq!(before, h.snapshot());
    assert_still_serving(&h, 103).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_cbor_gets_400_and_the_protocol_s_error_message() {
    let h = Harness::start(Limits::default(), 1).await;
    let device = h
        .make_device(3, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    let before = h.snapshot();
    let mut channel = h.device_channel(&device);
    for garbage in [vec![], vec![0xff; 40], b"{\"json\": true}".to_vec()] {
        let reply = post(&mut channel, "/v1/setup", CBOR, garbage).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.content_type.as_deref(), Some(CBOR));
        let answer = Envelope::decode(&reply.body).unwrap();
        assert_eq!(answer.header.tag, MessageTag::Error);
    }
    assert_eq!(before, h.snapshot());
    assert_still_serving(&h, 104).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413() {
    let h = Harness::start(Limits::default(), 1).await;
    let device = h
        .make_device(4, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    let before = h.snapshot();
    let reply = post(
        &mut h.device_channel(&device),
        "/v1/setup",
        CBOR,
        vec![0; 4097],
    )
    .await;
    assert_rejected(&reply, 413, "body_too_large");
    assert!(reply.text().contains("4096"));
    // Without a length up front (chunked), the limit holds while reading.
    let status = raw_chunked_post(&h, &device, 10_000).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(before, h.snapshot());
    assert_still_serving(&h, 105).await;
}

async fn raw_chunked_post(h: &Harness, device: &TestDevice, len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(h.device_tls(device))
        .connect(name, tcp)
        .await
        .unwrap();
    let head = "POST /v1/setup HTTP/1.1\r\nhost: x\r\ncontent-type: application/cbor\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    tls.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 1000];
    for _ in 0..len / 1000 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        if tls.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = tls.write_all(b"0\r\n\r\n").await;
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    String::from_utf8_lossy(&raw)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_unknown_path_and_wrong_method_are_refused() {
    let h = Harness::start(Limits::default(), 1).await;
    let device = h
        .make_device(5, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    let before = h.snapshot();
    let mut channel = h.device_channel(&device);
    let reply = post(
        &mut channel,
        "/v1/setup",
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_rejected(&reply, 415, "unsupported_media_type");
    let reply = post(&mut channel, "/v1/nothing-here", CBOR, hello_like()).await;
    assert_rejected(&reply, 404, "not_found");
    let reply = post(&mut channel, "/v1/relay/carrier-pigeon", CBOR, hello_like()).await;
    assert_rejected(&reply, 404, "not_found");
    let reply = post(&mut channel, "/metrics", CBOR, hello_like()).await;
    assert_rejected(&reply, 404, "not_found");
    let reply = channel
        .request(Method::GET, "/v1/setup", &[], None)
        .await
        .unwrap();
    assert_rejected(&reply, 405, "method_not_allowed");
    assert_eq!(before, h.snapshot());
    assert_still_serving(&h, 106).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits = Limits {
        handshake_timeout: Duration::from_millis(500),
        header_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let h = Harness::start(limits, 1).await;
    let device = h
        .make_device(6, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;

    // A TCP connection that never starts TLS.
    let mut silent = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    // A TLS connection that trickles its request head one byte at a time.
    let tcp = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).unwrap();
    let mut trickle = tokio_rustls::TlsConnector::from(h.device_tls(&device))
        .connect(name, tcp)
        .await
        .unwrap();
    let trickler = tokio::spawn(async move {
        let head = b"POST /v1/setup HTTP/1.1\r\nhost: x\r\ncontent-type: application/cbor\r\n";
        for byte in head.iter().cycle().take(200) {
            if trickle.write_all(&[*byte]).await.is_err() || trickle.flush().await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Still open after 10 s of trickling: not cut off.
        let mut buf = [0u8; 1];
        matches!(trickle.read(&mut buf).await, Ok(0) | Err(_))
    });
    // Meanwhile others are served.
    let other = h.make_device(60, SignatureAlgorithm::Ed25519, 0).await;
    let before = h.snapshot();
    let reply = post(
        &mut h.device_channel(&other),
        "/v1/setup",
        CBOR,
        hello_like(),
    )
    .await;
    assert_eq!(reply.status, 400);

    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "silent connection closed"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(15), trickler)
            .await
            .unwrap()
            .unwrap(),
        "trickling connection cut off"
    );
    assert_eq!(before, h.snapshot());
    assert_still_serving(&h, 107).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_gets_429_while_other_addresses_are_served() {
    let limits = Limits {
        per_address: RateLimit {
            burst: 5,
            per_second: 1.0,
        },
        ..Limits::default()
    };
    let h = Harness::start(limits, 1).await;
    let flooder = h
        .make_device(7, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    let before = h.snapshot();
    let mut channel = from(&h, [127, 0, 0, 2], h.device_tls(&flooder));
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(post(&mut channel, "/v1/setup", CBOR, hello_like()).await);
    }
    assert!(statuses[..5].iter().all(|r| r.status == 400));
    let limited: Vec<&Reply> = statuses.iter().filter(|r| r.status == 429).collect();
    assert!(limited.len() >= 6, "{}", limited.len());
    assert_rejected(limited[0], 429, "rate_limited");
    assert!(limited[0].text().contains("address"));
    assert_eq!(before, h.snapshot());
    // The same certificate from another address is still served, and so is everyone else.
    let mut elsewhere = from(&h, [127, 0, 0, 3], h.device_tls(&flooder));
    assert_eq!(
        post(&mut elsewhere, "/v1/setup", CBOR, hello_like())
            .await
            .status,
        400
    );
    assert_still_serving(&h, 108).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_certificate_over_many_addresses_gets_429() {
    let limits = Limits {
        per_certificate: RateLimit {
            burst: 3,
            per_second: 0.5,
        },
        ..Limits::default()
    };
    let h = Harness::start(limits, 1).await;
    let flooder = h.make_device(8, SignatureAlgorithm::Ed25519, 0).await;
    let before = h.snapshot();
    let mut replies = Vec::new();
    for i in 0..8u8 {
        let mut channel = from(&h, [127, 0, 1, 10 + i], h.device_tls(&flooder));
        replies.push(post(&mut channel, "/v1/setup", CBOR, hello_like()).await);
    }
    assert!(replies[..3].iter().all(|r| r.status == 400));
    assert!(replies[3..].iter().all(|r| r.status == 429));
    assert!(replies[3].text().contains("certificate"));
    assert_eq!(before, h.snapshot());
    assert_still_serving(&h, 109).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_address_cap_are_closed_at_once() {
    let limits = Limits {
        max_connections_per_address: 2,
        ..Limits::default()
    };
    let h = Harness::start(limits, 1).await;
    let device = h
        .make_device(9, SignatureAlgorithm::EcdsaP256Sha256, 0)
        .await;
    let mut kept = Vec::new();
    for _ in 0..2 {
        let mut c = from(&h, [127, 0, 2, 1], h.device_tls(&device));
        assert_eq!(
            post(&mut c, "/v1/setup", CBOR, hello_like()).await.status,
            400
        );
        kept.push(c);
    }
    let mut third = from(&h, [127, 0, 2, 1], h.device_tls(&device));
    let err = third
        .request(Method::POST, "/v1/setup", &[], Some((CBOR, hello_like())))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            zerotouch_http::HttpError::Io(_) | zerotouch_http::HttpError::Tls(_)
        ),
        "{err}"
    );
    assert_still_serving(&h, 110).await;
    let metrics = h.metrics_text().await;
    let refused = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("zerotouch_http_connections_refused_total{reason=\"address_full\"} ")
        })
        .and_then(|v| v.parse::<u64>().ok());
    assert!(refused.is_some_and(|n| n >= 1), "{metrics}");
    drop(kept);
}
