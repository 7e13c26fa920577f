//! TLS to PostgreSQL: with the CA of the database's certificate the store connects only over
//! TLS and checks the certificate; a certificate from another CA, or a server that will not
//! speak TLS, is refused rather than used in the clear.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use zerotouch_core::Instant;
use zerotouch_pki::{CertificateAuthority, Validity};
use zerotouch_store::{AccountStore, PostgresOptions, PostgresStore, StaticDataKey, StoreError};
use zerotouch_store_suite::postgres::{ClusterOptions, ThrowawayPostgres};

const T0: Instant = Instant(1_700_000_000_000);

fn ca(name: &str) -> CertificateAuthority {
    CertificateAuthority::new(
        name,
        zerotouch_core::SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(1),
    )
    .unwrap()
}

/// A client configuration trusting only `ca`.
fn trusting(ca: &CertificateAuthority) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.certificate_der().to_vec()))
        .unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A cluster of its own that requires TLS with a certificate for 127.0.0.1 from `ca`.
fn tls_cluster(ca: &CertificateAuthority) -> ThrowawayPostgres {
    let pg = ThrowawayPostgres::start(ClusterOptions::default());
    let server = ca
        .issue_server(&["127.0.0.1", "localhost"], Validity::years_from_now(1))
        .unwrap();
    let mut chain = server.certificate_pem();
    chain.push_str(&ca.certificate_pem());
    pg.require_tls(&chain, &server.private_key_pem()).unwrap();
    pg
}

fn key() -> StaticDataKey {
    StaticDataKey([7; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_works_over_tls_with_the_databases_ca_and_the_server_sees_tls() {
    let authority = ca("database CA");
    let pg = tls_cluster(&authority);
    let url = pg.create_database("tls");
    let store = PostgresStore::connect_tls(
        &url,
        &key(),
        PostgresOptions::default(),
        trusting(&authority),
    )
    .await
    .unwrap();
    let id = store.create_account("over tls", T0).await.unwrap();
    assert_eq!(store.account(id).await.unwrap().unwrap().name, "over tls");
    // The store's pooled connection is still open: PostgreSQL says it is TLS.
    let encrypted = pg.tls_connections("zerotouch-store").unwrap();
    assert_ne!(encrypted, 0, "no TLS connection from the store");
    // And the server refuses anything else over TCP (what the test relies on below).
    let plain = PostgresStore::connect(&url, &key(), PostgresOptions::default()).await;
    assert!(plain.is_err(), "a plain connection was accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_certificate_from_another_ca_is_refused() {
    let pg = tls_cluster(&ca("database CA"));
    let url = pg.create_database("tls");
    let other = ca("somebody else");
    let err =
        PostgresStore::connect_tls(&url, &key(), PostgresOptions::default(), trusting(&other))
            .await
            .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_ca_the_store_never_falls_back_to_plain_tcp() {
    // A server without TLS: the URL even asks for `sslmode=disable`, and the store with a
    // CA still refuses rather than send its data in the clear.
    let pg = ThrowawayPostgres::start(ClusterOptions::default());
    let url = format!("{}?sslmode=disable", pg.create_database("plain"));
    let authority = ca("database CA");
    let err = PostgresStore::connect_tls(
        &url,
        &key(),
        PostgresOptions::default(),
        trusting(&authority),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn url_requiring_tls_without_a_ca_is_refused() {
    let err = PostgresStore::connect(
        "postgres://zt@127.0.0.1:1/x?sslmode=require",
        &key(),
        PostgresOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
}
