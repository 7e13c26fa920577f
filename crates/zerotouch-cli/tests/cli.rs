//! Every `zerotouch` command, run as the built binary, with its effect checked: on the data
//! directory, on the files it writes, on a running server, or on what it prints (and never
//! prints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use common::*;

#[test]
fn help_is_available_on_every_command() {
    use clap::CommandFactory as _;
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
    }
    let mut paths = Vec::new();
    walk(&zerotouch_cli::Cli::command(), Vec::new(), &mut paths);
    assert!(paths.len() > 30, "{} commands", paths.len());
    for path in paths {
        let out = Command::new(bin())
            .args(&path)
            .arg("--help")
            .assert()
            .success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(text.contains("Usage: zerotouch"), "{path:?}: {text}");
    }
}

#[test]
fn init_creates_the_data_directory_with_private_files_readable_only_by_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let v = json(&data, &["init", "--server-name", "setup.example.test"]);
    assert_eq!(v["server_name"], "setup.example.test");
    for private in [
        "data.key",
        "tls/server.key.pem",
        "tls/ca.key.pem",
        "manifest-import.key",
    ] {
        assert_eq!(mode(&data.join(private)), 0o600, "{private}");
    }
    for public in [
        "zerotouch.db",
        "tls/server.crt.pem",
        "tls/ca.crt.pem",
        "manifest-import.pub.json",
    ] {
        assert!(data.join(public).exists(), "{public}");
    }
    // The server certificate names the server and chains to the CA clients are given.
    let chain = std::fs::read_to_string(data.join("tls/server.crt.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
}

#[test]
fn init_refuses_to_overwrite_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    json(&data, &["init"]);
    let key = std::fs::read(data.join("data.key")).unwrap();
    zt(&data)
        .arg("init")
        .assert()
        .failure()
        .stderr(predicates::str::contains("already exists"));
    assert_eq!(std::fs::read(data.join("data.key")).unwrap(), key);
}

#[test]
fn commands_refuse_a_directory_that_was_never_initialised() {
    let dir = tempfile::tempdir().unwrap();
    zt(&dir.path().join("nothing"))
        .args(["accounts", "add", "--name", "x"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("zerotouch init"));
}

#[test]
fn ca_create_issue_client_and_trust() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = |n: &str| dir.path().join(n);
    json(&data, &["init"]);
    json(
        &data,
        &[
            "ca",
            "create",
            "--name",
            "Acme registrars",
            "--out",
            s(&p("reg")),
            "--algorithm",
            "ed25519",
        ],
    );
    assert_eq!(mode(&p("reg.key.pem")), 0o600);
    json(
        &data,
        &[
            "ca",
            "issue-client",
            "--ca",
            s(&p("reg")),
            "--role",
            "registrar",
            "--name",
            "shop",
            "--out",
            s(&p("shop")),
        ],
    );
    assert_eq!(mode(&p("shop.key.pem")), 0o600);
    // openssl agrees the client certificate chains to the CA.
    let verified = std::process::Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            s(&p("reg.crt.pem")),
            s(&p("shop.crt.pem")),
        ])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let v = json(
        &data,
        &["ca", "trust", "--role", "registrars", s(&p("reg.crt.pem"))],
    );
    let at = PathBuf::from(v["path"].as_str().unwrap());
    assert!(at.starts_with(data.join("trust/registrars")));
    // A file without a certificate is refused.
    std::fs::write(p("junk.pem"), "not a certificate").unwrap();
    zt(&data)
        .args(["ca", "trust", "--role", "devices", s(&p("junk.pem"))])
        .assert()
        .failure()
        .stderr(predicates::str::contains("no PEM certificate"));
}

#[test]
fn keys_create_list_and_map_only_setup_keys_to_disjoint_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    json(&data, &["init"]);
    let setup = json(&data, &["keys", "create", "--role", "setup"]);
    let setup_id = setup["key_id"].as_str().unwrap().to_string();
    assert_eq!(setup["state"], "active");
    assert_eq!(mode(&data.join(format!("keys/{setup_id}.pem"))), 0o600);
    let revocation = json(&data, &["keys", "create", "--role", "revocation"]);
    let revocation_id = revocation["key_id"].as_str().unwrap().to_string();

    json(
        &data,
        &[
            "keys",
            "map",
            "--device-type",
            "7",
            "--first-serial",
            "1",
            "--last-serial",
            "100",
            "--key",
            &setup_id,
        ],
    );
    refused(
        &data,
        "keys map --device-type 7 --first-serial 50 --last-serial 150 --key",
        &[&setup_id],
        "overlap",
    );
    refused(
        &data,
        "keys map --device-type 8 --first-serial 1 --last-serial 2 --key",
        &[&revocation_id],
        "only setup keys",
    );
    refused(
        &data,
        "keys map --device-type 8 --first-serial 1 --last-serial 2 --key",
        &["abc"],
        "not a key id",
    );

    let list = json(&data, &["keys", "list"]);
    assert_eq!(list["keys"].as_array().unwrap().len(), 2);
    assert_eq!(list["map"][0]["device_type"], 7);
    assert_eq!(list["map"][0]["key_id"], setup_id.as_str());
    assert_eq!(list["map"].as_array().unwrap().len(), 1);
}

#[test]
fn rotate_retires_the_old_key_and_revoke_deletes_its_private_half() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    json(&data, &["init"]);
    let old = json(&data, &["keys", "create", "--role", "setup"])["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let rotated = json(&data, &["keys", "rotate", "--role", "setup"]);
    let new = rotated["new"]["key_id"].as_str().unwrap().to_string();
    assert_eq!(rotated["retired"][0], old.as_str());
    let list = json(&data, &["keys", "list"]);
    let state = |id: &str| {
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == id)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state(&old), "retired");
    assert_eq!(state(&new), "active");

    let revoked = json(&data, &["keys", "revoke", &old, "--replacement", &new]);
    assert_eq!(revoked["private_key_deleted"], true);
    assert!(!data.join(format!("keys/{old}.pem")).exists());
    let list = json(&data, &["keys", "list"]);
    let k = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == old.as_str())
        .unwrap()
        .clone();
    assert_eq!(k["state"], "revoked");
    assert_eq!(k["replacement"], new.as_str());
    // A revoked key stays revoked and cannot be mapped.
    refused(
        &data,
        "keys map --device-type 1 --first-serial 1 --last-serial 1 --key",
        &[&old],
        "revoked",
    );
}

#[test]
fn export_bundle_writes_a_c_header_that_compiles_and_a_cbor_bundle_with_the_indication() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = |n: &str| dir.path().join(n);
    json(&data, &["init"]);
    // Without a setup key there is nothing to pin.
    zt(&data)
        .args([
            "keys",
            "export-bundle",
            "--header",
            s(&p("x.h")),
            "--cbor",
            s(&p("x.cbor")),
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("no active setup key"));
    let setup = json(&data, &["keys", "create", "--role", "setup"])["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let revocation = json(
        &data,
        &[
            "keys",
            "create",
            "--role",
            "revocation",
            "--algorithm",
            "ed25519",
        ],
    )["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    json(
        &data,
        &[
            "keys",
            "map",
            "--device-type",
            "7",
            "--first-serial",
            "1",
            "--last-serial",
            "1000",
            "--key",
            &setup,
        ],
    );
    let v = json(
        &data,
        &[
            "keys",
            "export-bundle",
            "--header",
            s(&p("pinned.h")),
            "--cbor",
            s(&p("pinned.cbor")),
        ],
    );
    assert_eq!(v["keys"].as_array().unwrap().len(), 2);
    assert_eq!(v["indications"], 1);

    let bundle = zerotouch_core::PinnedKeyBundle::decode(
        &std::fs::read(p("pinned.cbor")).unwrap(),
        &zerotouch_core::RustCryptoProvider,
    )
    .unwrap();
    let pinned = bundle.pinned_keys_for(7, 500).unwrap();
    assert_eq!(hex::encode(pinned.indication().unwrap().0), setup);
    assert_eq!(bundle.pinned_keys_for(7, 5000).unwrap().indication(), None);

    // The header compiles, and its tables hold the same keys and indication.
    let first_byte = |id: &str| format!("0x{}", &id[..2]);
    std::fs::write(
        p("check.c"),
        format!(
            "#include \"pinned.h\"\n#include <stdio.h>\nint main(void) {{\n\
             printf(\"%u %u %d %u %u\\n\", ZT_PINNED_KEY_COUNT, ZT_KEY_INDICATION_COUNT,\n\
             ZT_PINNED_KEYS[1].cose_alg, ZT_KEY_INDICATIONS[0].device_type, ZT_PINNED_BUNDLE_CBOR_LEN);\n\
             return !(ZT_PINNED_KEYS[0].key_id[0] == {} && ZT_PINNED_KEYS[1].key_id[0] == {}\n\
             && ZT_KEY_INDICATIONS[0].key_id[0] == {} && ZT_PINNED_KEYS[0].public_key_len == 65);\n}}\n",
            first_byte(&setup),
            first_byte(&revocation),
            first_byte(&setup)
        ),
    )
    .unwrap();
    let cc = std::process::Command::new("cc")
        .args([
            "-std=c99",
            "-Wall",
            "-Werror",
            "-o",
            s(&p("check")),
            s(&p("check.c")),
        ])
        .current_dir(dir.path())
        .output()
        .expect("a C compiler (cc) is needed to check the exported header");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = std::process::Command::new(p("check")).output().unwrap();
    assert!(run.status.success());
    let cbor_len = std::fs::metadata(p("pinned.cbor")).unwrap().len();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        format!("2 1 -8 7 {cbor_len}")
    );
}

#[test]
fn factory_batch_writes_labels_qr_codes_secrets_and_a_manifest() {
    let d = Deployment::new(3);
    let entries = d.entries();
    assert_eq!(entries.len(), 3);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["serial"], 100 + i as u64);
        let dir = d.path("batch").join(e["dir"].as_str().unwrap());
        for private in [
            "key.pem",
            "pin",
            "device-secret",
            "label-code",
            "label-record",
        ] {
            assert_eq!(mode(&dir.join(private)), 0o600, "{private}");
        }
        // The label code proves against the stored record: the firmware's record is the
        // code's, for this device's key id.
        let code = std::fs::read_to_string(dir.join("label-code")).unwrap();
        let record =
            hex::decode(std::fs::read_to_string(dir.join("label-record")).unwrap()).unwrap();
        let key_id = zerotouch_core::KeyId(
            hex::decode(e["key_id"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let code = zerotouch_peer::PairingCode::parse(&code).unwrap();
        let expected = zerotouch_peer::LabelRecord::from_code(&code, &key_id).unwrap();
        assert_eq!(&record[..], &expected.to_bytes()[..]);
        assert_eq!(e["has_label_code"], true);
        let png = std::fs::read(dir.join("label.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let label = std::fs::read_to_string(dir.join("label.txt")).unwrap();
        assert_eq!(label, e["label"].as_str().unwrap());
        let decoded = zerotouch_core::BarcodePayload::decode(&label).unwrap();
        assert_eq!(decoded.device_type, 7);
        assert!(decoded.pin.is_none(), "the box label carries no PIN");
    }
    // The imported devices are the batch's, with their PIN and secret recorded.
    let key_id = entries[0]["key_id"].as_str().unwrap();
    let shown = json(&d.data, &["devices", "show", key_id]);
    assert_eq!(shown["serial"], 100);
    assert_eq!(shown["has_pin"], true);
    assert_eq!(shown["has_device_secret"], true);
    assert_eq!(shown["blocked"], false);
}

#[test]
fn factory_batch_prints_the_labels_and_no_pin_or_key() {
    let d = Deployment::new(1);
    let spec = "--device-type 9 --first-serial 1 --count 2 --product LAMP";
    let out = zt(&d.data)
        .args(batch_args(d.dir.path(), &d.data, spec, &d.path("batch2")))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let entries: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(d.path("batch2/devices.json")).unwrap())
            .unwrap();
    for e in &entries {
        assert!(text.contains(e["label"].as_str().unwrap()), "{text}");
        let dir = d.path("batch2").join(e["dir"].as_str().unwrap());
        let pin = std::fs::read_to_string(dir.join("pin")).unwrap();
        assert_no_secret(&text, &pin);
        assert!(!text.contains("PRIVATE KEY"));
    }
    // Writing over an existing batch is refused.
    zt(&d.data)
        .args(batch_args(d.dir.path(), &d.data, spec, &d.path("batch2")))
        .assert()
        .failure()
        .stderr(predicates::str::contains("already exists"));
}

#[test]
fn factory_batch_issues_certificates_for_signing_requests() {
    let d = Deployment::new(1);
    let csrs = d.path("csrs");
    std::fs::create_dir(&csrs).unwrap();
    for i in 0..2 {
        let ok = std::process::Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=device",
                "-keyout",
                s(&csrs.join(format!("{i}.key"))),
                "-out",
                s(&csrs.join(format!("{i}.csr"))),
                "-outform",
                "DER",
            ])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    let spec = format!(
        "--device-type 8 --first-serial 1 --product CAM --csr-dir {}",
        s(&csrs)
    );
    let args = batch_args(d.dir.path(), &d.data, &spec, &d.path("csr-batch"));
    let v = json(&d.data, &strs(&args));
    let devices = v["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    for (i, e) in devices.iter().enumerate() {
        assert_eq!(e["has_key"], false, "no key is made for a signing request");
        let dir = d.path("csr-batch").join(e["dir"].as_str().unwrap());
        assert!(!dir.join("key.pem").exists());
        // The certificate certifies the requester's key.
        let cert_pub = std::process::Command::new("openssl")
            .args([
                "x509",
                "-in",
                s(&dir.join("certificate.pem")),
                "-noout",
                "-pubkey",
            ])
            .output()
            .unwrap()
            .stdout;
        let key_pub = std::process::Command::new("openssl")
            .args(["pkey", "-in", s(&csrs.join(format!("{i}.key"))), "-pubout"])
            .output()
            .unwrap()
            .stdout;
        assert_eq!(cert_pub, key_pub);
    }
    let imported = json(
        &d.data,
        &["devices", "import", s(&d.path("csr-batch/manifest.cbor"))],
    );
    assert_eq!(imported["added"], 2);
}

#[test]
fn devices_import_is_idempotent_and_block_unblock_flip_the_flag() {
    let d = Deployment::new(2);
    let again = json(
        &d.data,
        &["devices", "import", s(&d.path("batch/manifest.cbor"))],
    );
    assert_eq!(again["added"], 0);
    assert_eq!(again["unchanged"], 2);
    let key_id = d.entries()[1]["key_id"].as_str().unwrap().to_string();
    json(&d.data, &["devices", "block", &key_id]);
    assert_eq!(
        json(&d.data, &["devices", "show", &key_id])["blocked"],
        true
    );
    json(&d.data, &["devices", "unblock", &key_id]);
    assert_eq!(
        json(&d.data, &["devices", "show", &key_id])["blocked"],
        false
    );
    zt(&d.data)
        .args(["devices", "block", &"00".repeat(32)])
        .assert()
        .failure();
}

#[test]
fn tampered_manifest_is_refused_on_import() {
    let d = Deployment::new(1);
    let mut bytes = std::fs::read(d.path("batch/manifest.cbor")).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    std::fs::write(d.path("tampered.cbor"), &bytes).unwrap();
    zt(&d.data)
        .args(["devices", "import", s(&d.path("tampered.cbor"))])
        .assert()
        .failure()
        .stderr(predicates::str::contains("manifest"));
}

#[test]
fn manifest_from_a_factory_key_the_server_does_not_trust_is_refused() {
    let d = Deployment::new(1);
    // Another server that never trusted this factory's key.
    let other = d.path("other");
    json(&other, &["init"]);
    json(
        &other,
        &[
            "keys",
            "create",
            "--role",
            "factory-manifest",
            "--out",
            s(&d.path("other-factory.pem")),
        ],
    );
    zt(&other)
        .args(["devices", "import", s(&d.path("batch/manifest.cbor"))])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "not a trusted factory-manifest key",
        ));
}

#[test]
fn manifest_sealed_to_another_servers_import_key_is_refused() {
    let d = Deployment::new(1);
    // Another server that trusts the factory key but holds another import key.
    let other = d.path("other");
    json(&other, &["init"]);
    let v = json(&d.data, &["keys", "list"]);
    let factory = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "factory-manifest")
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Copy the factory key's public half into the other server by re-creating its store
    // record: the other server's store learns it through the library.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use zerotouch_store::ServerKeyStore as _;
        let first = open_store(&d.data).await;
        let key = first
            .server_keys()
            .await
            .unwrap()
            .into_iter()
            .find(|k| hex::encode(k.key_id.0) == factory)
            .unwrap();
        let second = open_store(&other).await;
        second
            .add_server_key(key.role, key.public_key, zerotouch_core::Instant(0))
            .await
            .unwrap();
    });
    zt(&other)
        .args(["devices", "import", s(&d.path("batch/manifest.cbor"))])
        .assert()
        .failure()
        .stderr(predicates::str::contains("sealed to another import key"));
}

#[test]
fn networks_take_the_passphrase_from_a_file_or_stdin_and_never_print_it() {
    let d = Deployment::new(1);
    std::fs::write(d.path("pass"), "another secret passphrase\n").unwrap();
    let out = zt(&d.data)
        .args([
            "networks",
            "add",
            "--account",
            &d.account.to_string(),
            "--ssid",
            "attic",
            "--passphrase-file",
            s(&d.path("pass")),
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(!String::from_utf8_lossy(&out).contains("another secret"));
    let shown = zt(&d.data)
        .args(["--json", "accounts", "show", &d.account.to_string()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(shown).unwrap();
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    let ssids: Vec<&str> = v["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["ssid"].as_str().unwrap())
        .collect();
    assert_eq!(ssids, ["home", "attic"]);
    assert!(!text.contains("another secret") && !text.contains(PASSPHRASE));
    // An empty passphrase is refused.
    zt(&d.data)
        .args([
            "networks",
            "add",
            "--account",
            &d.account.to_string(),
            "--ssid",
            "x",
            "--passphrase-file",
            "-",
        ])
        .write_stdin("")
        .assert()
        .failure()
        .stderr(predicates::str::contains("empty"));
}

#[test]
fn secrets_are_never_taken_from_arguments() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec![
            "networks",
            "add",
            "--account",
            "1",
            "--ssid",
            "x",
            "--passphrase",
            "secret",
        ],
        vec!["registrars", "add", "--name", "x", "--token", "secret"],
        vec![
            "register",
            "--server",
            "127.0.0.1:1",
            "--account",
            "1",
            "--token",
            "secret",
            "ZT1/X",
        ],
        vec!["serve", "--operator-token", "secret"],
    ] {
        zt(dir.path())
            .args(&args)
            .assert()
            .failure()
            .stderr(predicates::str::contains("unexpected argument"));
    }
}

#[test]
fn registrars_are_added_by_certificate_or_token() {
    let d = Deployment::new(1);
    json(
        &d.data,
        &[
            "ca",
            "create",
            "--name",
            "regs",
            "--out",
            s(&d.path("regs")),
        ],
    );
    json(
        &d.data,
        &[
            "ca",
            "issue-client",
            "--ca",
            s(&d.path("regs")),
            "--role",
            "registrar",
            "--name",
            "app",
            "--out",
            s(&d.path("app")),
        ],
    );
    let v = json(
        &d.data,
        &[
            "registrars",
            "add",
            "--name",
            "app",
            "--certificate",
            s(&d.path("app.crt.pem")),
        ],
    );
    assert_eq!(v["credential"], "certificate");
    // The same certificate twice is a conflict.
    zt(&d.data)
        .args([
            "registrars",
            "add",
            "--name",
            "app2",
            "--certificate",
            s(&d.path("app.crt.pem")),
        ])
        .assert()
        .failure();
    zt(&d.data)
        .args(["registrars", "add", "--name", "nothing"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--certificate or --token-file"));
}

/// Fails if `secret` appears in `text` as a whole token (a PIN's digits may occur inside a
/// hex key id by chance; as a word of their own they would be a leak).
fn assert_no_secret(text: &str, secret: &str) {
    let secret = secret.trim();
    assert!(!secret.is_empty());
    let leaked = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|token| token == secret);
    assert!(!leaked, "secret {secret:?} printed in:\n{text}");
    if secret.len() > 8 {
        assert!(!text.contains(secret), "secret printed in:\n{text}");
    }
}

#[test]
fn serve_register_simulate_outcomes_and_audit_work_together() {
    let d = Deployment::new(4);
    let server = Server::start(&d.data);
    // Without --dns-listen, no DNS server.
    assert!(server.first["dns_listen"].is_null(), "{}", server.first);
    let entries = d.entries();
    std::fs::write(d.path("token"), TOKEN).unwrap();
    for (i, e) in entries.iter().enumerate() {
        let label = e["label"].as_str().unwrap();
        let token = d.path("token");
        let mut args = d.register_args(&server, &token);
        // The first label comes from standard input, as a scanner would pipe it.
        let v = if i == 0 {
            args.push("-".into());
            json_with_stdin(&d.data, &strs(&args), Some(label))
        } else {
            args.push(label.into());
            json(&d.data, &strs(&args))
        };
        assert_eq!(v["result"], "added");
    }
    // A wrong token is refused by the server.
    std::fs::write(d.path("bad-token"), "not-the-token").unwrap();
    zt(&d.data)
        .args(d.register_args(&server, &d.path("bad-token")))
        .arg(entries[0]["label"].as_str().unwrap())
        .assert()
        .failure();

    // One device with each step printed.
    let one = zt(&d.data)
        .args(d.simulate_args(&server, "--count 1"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(one).unwrap();
    for step in [
        "-> Hello",
        "<- ServerProof",
        "-> CredentialRequest",
        "<- CredentialResponse",
        "joined \"home\"",
        "<- OutcomeAck",
        "<- RevocationVerdict",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    assert!(!text.contains(PASSPHRASE));
    let pin = std::fs::read_to_string(
        d.path("batch")
            .join(entries[0]["dir"].as_str().unwrap())
            .join("pin"),
    )
    .unwrap();
    assert_no_secret(&text, &pin);

    let key_id = entries[0]["key_id"].as_str().unwrap();
    let outcomes = json(&d.data, &["outcomes", key_id]);
    assert_eq!(outcomes["outcomes"][0]["outcome"], "joined");

    // The rest of the batch at once (the first device runs again: a second first boot).
    let many = json(&d.data, &strs(&d.simulate_args(&server, "--concurrency 3")));
    assert_eq!(many["devices"], 4);
    assert_eq!(many["joined"], 4);
    for e in &entries {
        let o = json(&d.data, &["outcomes", e["key_id"].as_str().unwrap()]);
        assert!(!o["outcomes"].as_array().unwrap().is_empty());
    }

    let audit = json(&d.data, &["audit"]);
    let log = audit["entries"].as_array().unwrap();
    assert_eq!(log.len(), 4);
    assert!(
        log.iter()
            .all(|e| e["action"] == "add" && e["account"] == d.account)
    );
    let later = json(&d.data, &["audit", "--after", "2", "--limit", "1"]);
    assert_eq!(later["entries"].as_array().unwrap().len(), 1);
    assert_eq!(later["entries"][0]["seq"], 3);
}

#[test]
fn blocked_device_is_refused_by_the_server() {
    let d = Deployment::new(1);
    let e = &d.entries()[0];
    std::fs::write(d.path("token"), TOKEN).unwrap();
    let server = Server::start(&d.data);
    let mut args = d.register_args(&server, &d.path("token"));
    args.push(e["label"].as_str().unwrap().into());
    json(&d.data, &strs(&args));
    json(
        &d.data,
        &["devices", "block", e["key_id"].as_str().unwrap()],
    );
    zt(&d.data)
        .args(d.simulate_args(&server, "--timeout 5"))
        .assert()
        .failure();
    let o = json(&d.data, &["outcomes", e["key_id"].as_str().unwrap()]);
    assert!(o["outcomes"].as_array().unwrap().is_empty());
}

#[test]
fn serve_refuses_to_start_without_a_setup_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    json(&data, &["init"]);
    zt(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--exit-after", "1"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("no setup key"));
}

/// Runs `zerotouch ARGS` (the demo), expects success, returns standard output and error.
fn demo(args: &[&str]) -> (String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("ZEROTOUCH_UNBOUND")
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success()
        .get_output()
        .clone();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs `zerotouch --json demo EXTRA`, expects one JSON object saying the device joined
/// "home" and its outcome was recorded, and returns it.
fn demo_json(extra: &[&str]) -> Value {
    let (text, _) = demo(&[&["--json", "demo"], extra].concat());
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["joined"], "home");
    assert_eq!(v["outcome_recorded"], true);
    v
}

#[test]
fn demo_joins_the_home_network_and_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    let (text, stderr) = demo(&["demo", "--keep", s(&keep)]);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("done: the device joined \"home\""),
        "{text}"
    );
    for step in [
        "factory",
        "registrar",
        "-> Hello",
        "<- CredentialResponse",
        "joins \"home\"",
        "outcome recorded: Joined",
    ] {
        assert!(text.contains(step), "missing {step:?}:\n{text}");
    }
    // No secret the demo made is printed: not the PIN, the device secret, the private keys,
    // the data key or the home network's passphrase.
    let device_dir = std::fs::read_dir(keep.join("batch"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_dir())
        .unwrap();
    let mut secrets = vec![
        std::fs::read_to_string(device_dir.join("pin")).unwrap(),
        std::fs::read_to_string(device_dir.join("device-secret")).unwrap(),
        hex::encode(std::fs::read(keep.join("data/data.key")).unwrap()),
    ];
    for pem in [
        device_dir.join("key.pem"),
        keep.join("data/tls/server.key.pem"),
        keep.join("factory-manifest.key.pem"),
    ] {
        let body: String = std::fs::read_to_string(pem)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        secrets.push(body);
    }
    secrets.push(home_passphrase(&keep.join("data")));
    for secret in &secrets {
        assert_no_secret(&text, secret);
        assert_no_secret(&stderr, secret);
    }
    assert!(!text.contains("PRIVATE KEY"));
}

/// A data directory's store, opened the way `serve` opens it.
async fn open_store(data: &Path) -> zerotouch_store::SqliteStore {
    zerotouch_store::SqliteStore::open(
        data.join("zerotouch.db"),
        &zerotouch_store::LocalKeyFile::new(data.join("data.key")),
        zerotouch_store::SqliteOptions::default(),
    )
    .await
    .unwrap()
}

/// The home network's passphrase as the store holds it (opened with the data key).
fn home_passphrase(data: &Path) -> String {
    use zerotouch_store::AccountStore as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = open_store(data).await;
        let networks = store
            .networks_of_account(zerotouch_store::AccountId(1))
            .await
            .unwrap();
        String::from_utf8(networks[0].passphrase.expose_secret().to_vec()).unwrap()
    })
}

#[test]
fn demo_json_output_is_one_object_with_the_joined_network() {
    let v = demo_json(&[]);
    assert_eq!(v["over"], "https");
    assert!(v["dns"].is_null(), "{v}");
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let d = Deployment::new(1);
    let mut server = Server::start(&d.data);
    let pid = server.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // Bounded wait: the server drains and exits by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// What a device of a batch made here has on its flash: its key and certificate.
fn device_identity(d: &Deployment, entry: &Value) -> (zerotouch_core::SigningKey, Vec<u8>) {
    use rustls_pki_types::pem::PemObject as _;
    let dir = d.path("batch").join(entry["dir"].as_str().unwrap());
    let key = zerotouch_cli::read_signing_key(&dir.join("key.pem")).unwrap();
    let cert = rustls_pki_types::CertificateDer::from_pem_file(dir.join("certificate.pem"))
        .unwrap()
        .to_vec();
    (key, cert)
}

#[test]
fn keys_create_association_and_serve_answers_peer_verification_requests() {
    use std::sync::Arc;
    use zerotouch_core::flow2::{
        self, AnswerKey, ChannelBinding, Commitment, VerificationRequest, handoff_transcript,
    };
    use zerotouch_core::{
        Body, CipherSuite, Envelope, ErrorCode, ErrorMessage, Flow, KeyRole, Message as _,
        MessageTag, Nonce, RustCryptoProvider, SessionId, SessionKeyPair, SoftwareSigner,
    };
    use zerotouch_http::{AssociationClient, HttpError, ServerEndpoint, ServerTrust};

    let d = Deployment::new(2);
    let created = json(&d.data, &["keys", "create", "--role", "association"]);
    assert_eq!(created["role"], "association");
    let association_id = created["key_id"].as_str().unwrap().to_string();
    let list = json(&d.data, &["keys", "list"]);
    assert!(
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key_id"] == association_id.as_str() && k["state"] == "active")
    );
    // Firmware pins it: devices check challenge and verification data against it.
    let bundle = json(
        &d.data,
        &[
            "keys",
            "export-bundle",
            "--header",
            s(&d.path("flow2.h")),
            "--cbor",
            s(&d.path("flow2.cbor")),
        ],
    );
    assert!(
        bundle["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["role"] == "association" && k["key_id"] == association_id.as_str())
    );
    let server = Server::start(&d.data);
    std::fs::write(d.path("token"), TOKEN).unwrap();
    let entries = d.entries();
    for e in &entries {
        let mut args = d.register_args(&server, &d.path("token"));
        args.push(e["label"].as_str().unwrap().into());
        json(&d.data, &strs(&args));
    }
    let (sponsor_key, sponsor_cert) = device_identity(&d, &entries[0]);
    let sponsor = SoftwareSigner::new(sponsor_key);
    use zerotouch_core::Signer as _;
    let joiner_id = {
        let (k, _) = device_identity(&d, &entries[1]);
        k.public_key().key_id()
    };
    let session = SessionId([1; 16]);
    let answer_key =
        SessionKeyPair::derive(CipherSuite::X25519_SHA256_CHACHA20POLY1305, b"k").unwrap();
    let request = VerificationRequest {
        sponsor_id: sponsor.key_id(),
        joiner_id,
        nonce: Nonce([1; 16]),
        commitment: Commitment([2; 32]),
        binding: ChannelBinding([3; 32]),
        answer_key: AnswerKey {
            suite: answer_key.suite(),
            public_key: answer_key.public_key().to_vec(),
        },
    };
    let p = RustCryptoProvider;
    let bytes = zerotouch_core::sign_message(
        flow2::header(MessageTag::VerificationRequest, session),
        KeyRole::DeviceIdentity,
        &handoff_transcript(&p, &session),
        request.encode_body(),
        &sponsor,
        &p,
    )
    .unwrap()
    .encode();

    let server_ca = {
        use rustls_pki_types::pem::PemObject as _;
        rustls_pki_types::CertificateDer::from_pem_file(d.data.join("tls/ca.crt.pem"))
            .unwrap()
            .to_vec()
    };
    let tls = zerotouch_http::device_tls_config(
        sponsor_cert,
        Arc::new(sponsor),
        ServerTrust::Ca {
            ca_der: server_ca,
            check_dates: true,
        },
    )
    .unwrap();
    let endpoint = ServerEndpoint::new(server.addr.parse().unwrap(), "localhost");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = AssociationClient::new(endpoint, tls);
        // Both devices are on the owner's account: verification data signed by the new key.
        let answer = client.verify(bytes).await.unwrap();
        let e = Envelope::decode(&answer).unwrap();
        assert_eq!(e.header.tag, MessageTag::VerificationData);
        let Body::Signed(signed) = &e.body else {
            panic!("verification data is signed")
        };
        assert_eq!(hex::encode(signed.key_id().0), association_id);
        // Garbage from the same certificate: a flow-2 error message, not a flow-1 one.
        match client.verify(b"not a message".to_vec()).await {
            Err(HttpError::Status { status, .. }) => panic!("HTTP-level refusal {status}"),
            Ok(bytes) => {
                let e = Envelope::decode(&bytes).unwrap();
                assert_eq!(e.header.flow, Flow::PeerHandoff);
                let Body::Plain(body) = &e.body else {
                    panic!("an error message is plain")
                };
                assert_eq!(
                    ErrorMessage::decode_body(body).unwrap().code,
                    ErrorCode::BadMessage
                );
            }
            Err(other) => panic!("{other}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// DNS: `serve --dns-listen`, `demo --over dns`.

/// Sends `query` to `server` over UDP and returns the answer.
fn udp_exchange(server: std::net::SocketAddr, query: &[u8]) -> Vec<u8> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    socket.send_to(query, server).unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, from) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(from, server);
    buf.truncate(n);
    buf
}

/// Sends `query` to `server` over TCP (two-byte length first) and returns the answer.
fn tcp_exchange(server: std::net::SocketAddr, query: &[u8]) -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(&u16::try_from(query.len()).unwrap().to_be_bytes())
        .unwrap();
    stream.write_all(query).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).unwrap();
    answer
}

/// `NAME. TYPE` with recursion desired, as a resolver would send it.
fn dns_query(id: u16, name: &str, qtype: hickory_proto::rr::RecordType) -> Vec<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        hickory_proto::rr::Name::from_ascii(name).unwrap(),
        qtype,
    ));
    message.to_vec().unwrap()
}

#[test]
fn serve_answers_dns_for_its_zone_beside_https() {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::{RData, RecordType};
    let d = Deployment::new(1);
    let server = Server::start_with(
        &d.data,
        &["--dns-listen", "127.0.0.1:0", "--dns-zone", "zt.test"],
    );
    // The first line reports both listeners, the DNS one with the port the system chose.
    assert_eq!(server.first["dns_zone"], "zt.test");
    let dns: std::net::SocketAddr = server.first["dns_listen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(dns.ip().is_loopback() && dns.port() != 0, "{dns}");
    assert_ne!(server.addr, dns.to_string());
    // The zone's apex SOA, authoritatively, over UDP and over TCP on the same port; the name
    // in any case (resolvers randomise it).
    for (id, answer) in [
        (
            0x1234,
            udp_exchange(dns, &dns_query(0x1234, "zt.test.", RecordType::SOA)),
        ),
        (
            0x4321,
            tcp_exchange(dns, &dns_query(0x4321, "Zt.TeSt.", RecordType::SOA)),
        ),
    ] {
        let answer = Message::from_vec(&answer).unwrap();
        assert_eq!(answer.id, id);
        assert_eq!(answer.response_code, ResponseCode::NoError);
        assert!(answer.authoritative);
        assert!(
            matches!(answer.answers.first().map(|r| &r.data), Some(RData::SOA(_))),
            "{answer:?}"
        );
    }
    // A name outside the zone is refused, not answered.
    let other = Message::from_vec(&udp_exchange(
        dns,
        &dns_query(7, "example.org.", RecordType::SOA),
    ))
    .unwrap();
    assert_eq!(other.response_code, ResponseCode::Refused);
    // HTTPS is still served on its own address: a registration goes through.
    std::fs::write(d.path("token"), TOKEN).unwrap();
    let mut args = d.register_args(&server, &d.path("token"));
    args.push(d.entries()[0]["label"].as_str().unwrap().to_string());
    let registered = json(&d.data, &strs(&args));
    assert_eq!(registered["result"], "added", "{registered}");
}

#[test]
fn dns_listen_and_dns_zone_go_together() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    refused(
        &data,
        "serve --dns-listen 127.0.0.1:5353",
        &[],
        "--dns-zone",
    );
    refused(&data, "serve --dns-zone zt.test", &[], "--dns-listen");
    refused(
        &data,
        "serve --dns-listen 127.0.0.1:5353 --dns-zone",
        &["bad..zone"],
        "is not a zone name",
    );
}

#[test]
fn demo_over_dns_joins_the_home_network_through_a_local_unbound() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    let (text, _) = demo(&["demo", "--over", "dns", "--keep", s(&keep)]);
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("done: the device joined \"home\" after 4 exchanges over DNS"),
        "{text}"
    );
    // Flow 1's responses each fit one answer within 512 B: the lazy EDNS probe never pays.
    assert!(last.contains("answers of up to 512 B"), "{text}");
    for step in [
        "DNS for zt.test listening on 127.0.0.1:",
        "resolver   unbound ",
        "0x20 case randomisation and QNAME minimisation on",
        "its only way out is DNS",
        "-> Hello",
        "<- CredentialResponse",
        "joins \"home\"",
        "outcome recorded: Joined",
    ] {
        assert!(text.contains(step), "missing {step:?}:\n{text}");
    }
    // The resolver the demo started is gone: no process runs with its configuration.
    let conf = keep.join("resolver/unbound.conf");
    assert!(conf.is_file());
    let conf = conf.to_str().unwrap().to_owned();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&conf),
            "unbound still runs: {}",
            entry.path().display()
        );
    }
}

#[test]
fn demo_over_dns_json_reports_queries_bytes_and_the_answer_limit() {
    let v = demo_json(&["--over", "dns"]);
    assert_eq!(v["over"], "dns");
    assert_eq!(v["dns"]["edns_advertised"], 1232);
    assert_eq!(
        v["dns"]["answer_limit"], 512,
        "no response needed a probe: {v}"
    );
    assert_eq!(v["dns"]["tunnels"], 1);
    // At least a cookie request and one query per message; every answer in UDP.
    assert!(v["dns"]["queries"].as_u64().unwrap() >= 6, "{v}");
    assert_eq!(v["dns"]["tcp_queries"], 0, "{v}");
    assert!(v["dns"]["answer_bytes"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn demo_over_dns_without_unbound_says_so_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    let out = Command::new(bin())
        .args(["demo", "--over", "dns", "--keep", s(&keep)])
        .env("ZEROTOUCH_UNBOUND", dir.path().join("no-unbound-here"))
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "unbound is not installed: the DNS demo needs a local recursive resolver \
             (apt-get install unbound); nothing was run",
        ))
        .get_output()
        .clone();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!keep.exists(), "the demo made {}", keep.display());
}

#[test]
fn serve_applies_the_per_address_limit_it_is_given() {
    let d = Deployment::new(1);
    std::fs::write(d.path("token"), TOKEN).unwrap();
    let label = d.entries()[0]["label"].as_str().unwrap().to_string();
    let register = |server: &Server| {
        let mut args = d.register_args(server, &d.path("token"));
        args.push(label.clone());
        zt(&d.data).args(args).assert()
    };
    // Burst 2 and a slow refill: the third request from this address in a row is refused.
    let strict = Server::start_with(&d.data, &["--per-address-limit", "2,0.05"]);
    register(&strict).success();
    register(&strict).success();
    register(&strict)
        .failure()
        .stderr(predicates::str::contains("429"));
    drop(strict);
    // The default allows them.
    let default = Server::start(&d.data);
    for _ in 0..3 {
        register(&default).success();
    }
}

#[test]
fn serve_refuses_a_limit_it_cannot_apply() {
    let d = Deployment::new(1);
    for bad in ["0,1", "5,0", "5", "x,1", "5,NaN"] {
        zt(&d.data)
            .args(["serve", "--per-address-limit", bad, "--exit-after", "1"])
            .assert()
            .failure()
            .stderr(predicates::str::contains("--per-address-limit"));
    }
}

#[test]
fn serve_applies_the_signature_cap_it_is_given() {
    // A session takes three signatures (proof, credentials, acknowledgement): with a cap of
    // one per device key per hour the device cannot finish, with the default it can.
    let d = Deployment::new(1);
    std::fs::write(d.path("token"), TOKEN).unwrap();
    let label = d.entries()[0]["label"].as_str().unwrap().to_string();
    let capped = Server::start_with(&d.data, &["--signatures-per-device-hour", "1"]);
    let mut args = d.register_args(&capped, &d.path("token"));
    args.push(label);
    zt(&d.data).args(&args).assert().success();
    zt(&d.data)
        .args(d.simulate_args(&capped, "--count 1 --timeout 3"))
        .assert()
        .failure();
    drop(capped);
    let default = Server::start(&d.data);
    zt(&d.data)
        .args(d.simulate_args(&default, "--count 1 --timeout 20"))
        .assert()
        .success();
}

#[test]
fn a_store_value_that_is_refused_is_never_repeated() {
    // It may hold a password: neither the argument nor the environment variable's value is
    // echoed back, however it is malformed.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for bad in [
        "Postgress://zt:hunter2@db.internal/zt",
        "postgres:/zt:hunter2@db.internal/zt",
        "mysql://zt:hunter2@db.internal/zt",
    ] {
        let out = zt(&data)
            .args(["--store", bad, "accounts", "add", "--name", "x"])
            .assert()
            .failure()
            .get_output()
            .clone();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("--store"), "{text}");
        let out = zt(&data)
            .env("ZEROTOUCH_STORE", bad)
            .args(["accounts", "add", "--name", "x"])
            .assert()
            .failure()
            .get_output()
            .clone();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
    }
}
