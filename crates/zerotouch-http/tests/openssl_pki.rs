//! Certificates made with the `openssl` command line work: a manufacturer CA that certifies
//! a device's own key (P-256 and Ed25519, as a factory signs what the secure element
//! exports), a registrar CA and certificate, and a server CA and certificate; a registrar
//! registers the devices with its `openssl` certificate and the devices provision with
//! theirs against the server's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use rand_core::SeedableRng;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zerotouch_core::{Pin, SignatureAlgorithm, Signer, SigningKey, SoftwareSigner};
use zerotouch_http::{
    Limits, RegistrarClient, RegistrationRequest, RegistrationResult, client_tls_config,
};
use zerotouch_store::{RegistrarCredential, RegistrarStore};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line is installed");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A new P-256 key in `{name}.key`.
fn make_key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ],
    );
}

/// A P-256 CA: key and self-signed certificate.
fn make_ca(dir: &Path, name: &str, subject: &str) {
    make_key(dir, name);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// A leaf with its own new P-256 key, signed by `ca`.
fn make_leaf(dir: &Path, ca: &str, name: &str, subject: &str, extensions: &str) {
    write(dir, &format!("{name}.ext"), extensions);
    make_key(dir, name);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn pem_to_der(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

fn spki_pem(signer: &SoftwareSigner) -> String {
    let b64 = data_encoding::BASE64.encode(&signer.public_key().to_spki_der());
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_made_with_openssl_provision_devices_and_authenticate_registrars() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(
        d,
        "manufacturer",
        "/O=OpenSSL Widgets/CN=OpenSSL Widgets devices",
    );
    make_ca(d, "registrars", "/CN=OpenSSL registrars");
    make_ca(d, "servers", "/CN=OpenSSL servers");
    make_leaf(
        d,
        "servers",
        "server",
        &format!("/CN={SERVER_NAME}"),
        &format!(
            "subjectAltName=DNS:{SERVER_NAME}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
        ),
    );
    make_leaf(
        d,
        "registrars",
        "registrar",
        "/CN=OpenSSL shop",
        "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n",
    );

    let server_chain = vec![CertificateDer::from_pem_file(d.join("server.pem")).unwrap()];
    let server_key = PrivateKeyDer::from_pem_file(d.join("server.key")).unwrap();
    let h = Harness::start_custom(
        Pki::new(),
        Overrides {
            server: Some((server_chain, server_key, pem_to_der(&d.join("servers.pem")))),
            device_cas: vec![pem_to_der(&d.join("manufacturer.pem"))],
            registrar_cas: vec![pem_to_der(&d.join("registrars.pem"))],
        },
        Limits::default(),
        2,
    )
    .await;

    // The shop's registrar, with its openssl certificate.
    let registrar_der = pem_to_der(&d.join("registrar.pem"));
    h.service
        .store()
        .add_registrar(
            "openssl shop",
            RegistrarCredential::Certificate(key_id_of(&registrar_der)),
            now(),
        )
        .await
        .unwrap();
    let registrar_tls = client_tls_config(
        Some((
            vec![CertificateDer::from(registrar_der)],
            PrivateKeyDer::from_pem_file(d.join("registrar.key")).unwrap(),
        )),
        h.operator_trust(),
    )
    .unwrap();
    let mut registrar = RegistrarClient::new(h.endpoint(), registrar_tls, None);

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4242);
    for (i, algorithm) in [
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::Ed25519,
    ]
    .into_iter()
    .enumerate()
    {
        // The factory: the device's key never leaves it; openssl certifies its public key.
        let signer = Arc::new(SoftwareSigner::new(
            SigningKey::generate(algorithm, &mut rng).unwrap(),
        ));
        write(d, &format!("device{i}.pub.pem"), &spki_pem(&signer));
        write(
            d,
            &format!("device{i}.ext"),
            "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n",
        );
        openssl(
            d,
            &[
                "x509",
                "-new",
                "-force_pubkey",
                &format!("device{i}.pub.pem"),
                "-subj",
                &format!("/CN=7-{}", 500 + i),
                "-CA",
                "manufacturer.pem",
                "-CAkey",
                "manufacturer.key",
                "-CAcreateserial",
                // OpenSSL 3.0 has no -not_after; a century stands in for "never".
                "-days",
                "36500",
                "-extfile",
                &format!("device{i}.ext"),
                "-out",
                &format!("device{i}.pem"),
            ],
        );
        let certificate = pem_to_der(&d.join(format!("device{i}.pem")));
        let pin = Pin::generate(&mut rng, 6).unwrap();
        h.import(&signer, &certificate, &pin, 500 + i as u64).await;
        let device = TestDevice::new(signer, certificate, pin, i);

        let answer = registrar
            .register(&RegistrationRequest {
                label: device.label.encode(),
                account: h.accounts[i].0,
                pin: None,
                owner_consent: None,
            })
            .await
            .unwrap();
        assert_eq!(answer.result, RegistrationResult::Added);

        let run = h.provision(&device).await.unwrap();
        assert_eq!(run.joined, Some(home_ssid(i)), "{algorithm:?} device");
        assert!(run.revocation_checked);
    }
}
