//! `--store-ca`: the command line reaches PostgreSQL over TLS, checks the database's
//! certificate against the given CA, and says why when it cannot connect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use zerotouch_pki::{CertificateAuthority, Validity};
use zerotouch_store_suite::postgres::{ClusterOptions, ThrowawayPostgres};

fn ca(name: &str) -> CertificateAuthority {
    CertificateAuthority::new(
        name,
        zerotouch_core::SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(1),
    )
    .unwrap()
}

#[test]
fn serve_reaches_postgres_over_tls_checked_against_store_ca() {
    let authority = ca("database CA");
    let pg = ThrowawayPostgres::start(ClusterOptions::default());
    let server = authority
        .issue_server(&["127.0.0.1"], Validity::years_from_now(1))
        .unwrap();
    let mut chain = server.certificate_pem();
    chain.push_str(&authority.certificate_pem());
    pg.require_tls(&chain, &server.private_key_pem()).unwrap();
    let url = pg.create_database("zt");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ca_file = dir.path().join("db-ca.pem");
    std::fs::write(&ca_file, authority.certificate_pem()).unwrap();
    let other_file = dir.path().join("other-ca.pem");
    std::fs::write(&other_file, ca("somebody else").certificate_pem()).unwrap();

    // Without the CA the connection would be plain TCP, which this database refuses.
    zt_on(&data, Some(&url))
        .args(["init", "--server-name", "localhost"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "could not open PostgreSQL at 127.0.0.1",
        ));
    // With another CA the database's certificate is refused.
    std::fs::remove_dir_all(&data).ok();
    zt_on(&data, Some(&url))
        .args([
            "--store-ca",
            s(&other_file),
            "init",
            "--server-name",
            "localhost",
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("certificate"));
    std::fs::remove_dir_all(&data).ok();
    let with_ca = |args: &[&str]| {
        let mut all = vec!["--store-ca", s(&ca_file)];
        all.extend_from_slice(args);
        json_on(&data, Some(&url), &all, None)
    };
    with_ca(&["init", "--server-name", "localhost"]);
    with_ca(&["keys", "create", "--role", "setup"]);
    let trusted = dir.path().join("devices");
    with_ca(&["ca", "create", "--name", "Acme", "--out", s(&trusted)]);
    with_ca(&[
        "ca",
        "trust",
        "--role",
        "devices",
        s(&dir.path().join("devices.crt.pem")),
    ]);
    let account = with_ca(&["accounts", "add", "--name", "owner"]);
    assert_eq!(account["account"], 1);

    let serving = Server::start_on(&data, Some(&url), &["--store-ca", s(&ca_file)]);
    assert!(
        serving.first["store"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL at 127.0.0.1"),
        "{}",
        serving.first
    );
    // The server's pooled connection is open, and PostgreSQL says it is TLS.
    let encrypted = pg.tls_connections("zerotouch-store").unwrap();
    assert_ne!(encrypted, 0, "serve holds no TLS connection");
}

#[test]
fn store_ca_with_the_embedded_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    json(&data, &["init", "--server-name", "localhost"]);
    let ca_file = dir.path().join("db-ca.pem");
    std::fs::write(&ca_file, ca("database CA").certificate_pem()).unwrap();
    zt(&data)
        .args(["--store-ca", s(&ca_file), "accounts", "add", "--name", "x"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "--store-ca is for a PostgreSQL store",
        ));
}
