//! Test vectors: regenerated from fixed seeds and compared with docs/vectors/core.json and with
//! the vector block in docs/PROTOCOL.md, so code and spec cannot drift.
//!
//! After an intended change: `ZT_UPDATE_VECTORS=1 cargo test -p zerotouch-core --test vectors`
//! rewrites both, and the diff shows what changed on the wire.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
use common::*;
use serde_json::{Value, json};
use zerotouch_core::*;

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn seed(label: &str) -> [u8; 32] {
    PROVIDER.sha256(&[b"zerotouch test vector ", label.as_bytes()])
}

fn generate() -> Value {
    let p = &PROVIDER;
    let ed = SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::Ed25519, &seed("server ed25519"))
            .unwrap(),
    );
    let ec = SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &seed("server p256"))
            .unwrap(),
    );
    let device = SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &seed("device p256"))
            .unwrap(),
    );
    let keys: Vec<Value> = [
        ("server ed25519", &ed),
        ("server p256", &ec),
        ("device p256", &device),
    ]
    .iter()
    .map(|(label, s)| {
        json!({
            "label": label,
            "secret": h(&seed(label)),
            "algorithm": format!("{:?}", s.algorithm()),
            "public_key": h(s.public_key().raw_bytes()),
            "spki_der": h(&s.public_key().to_spki_der()),
            "key_id": h(&s.key_id().0),
        })
    })
    .collect();

    // A transcript, step by step.
    let session_id = SessionId(seed("session")[..16].try_into().unwrap());
    let device_nonce = Nonce(seed("device nonce")[..16].try_into().unwrap());
    let server_nonce = Nonce(seed("server nonce")[..16].try_into().unwrap());
    let mut t = Transcript::new(p, Flow::ServerSetup, Transport::Dns, &session_id);
    let mut steps =
        vec![json!({"step": "start(flow=1, transport=2, session_id)", "hash": h(&t.hash().0)})];
    let mut step = |t: &mut Transcript, name: &str, f: &dyn Fn(&mut Transcript)| {
        f(t);
        steps.push(json!({"step": name, "hash": h(&t.hash().0)}));
    };
    step(&mut t, "offered_versions [1]", &|t| {
        t.offered_versions(p, &[ProtocolVersion::V1])
    });
    step(&mut t, "offered_suites [X25519, P-256]", &|t| {
        t.offered_suites(p, CipherSuite::SUPPORTED)
    });
    step(&mut t, "device_key (SPKI of device p256)", &|t| {
        t.device_key(p, device.public_key())
    });
    step(&mut t, "device_nonce", &|t| {
        t.device_nonce(p, &device_nonce)
    });
    step(&mut t, "chosen_version 1", &|t| {
        t.chosen_version(p, ProtocolVersion::V1)
    });
    step(&mut t, "chosen_suite X25519", &|t| {
        t.chosen_suite(p, CipherSuite::X25519_SHA256_CHACHA20POLY1305)
    });
    step(&mut t, "server_nonce", &|t| {
        t.server_nonce(p, &server_nonce)
    });
    let th = t.hash();

    let header = Header {
        version: ProtocolVersion::V1,
        flow: Flow::ServerSetup,
        tag: MessageTag::ServerProof,
        session_id,
        seq: 0,
    };
    let payload = b"example payload".to_vec();
    let signed: Vec<Value> = [("ed25519", &ed), ("p256", &ec)]
        .iter()
        .map(|(name, s)| {
            let pending = PendingSignature::new(
                header,
                KeyRole::SetupSigning,
                &th,
                payload.clone(),
                s.key_id(),
                s.algorithm(),
                p,
            )
            .unwrap();
            let tbs = pending.request().tbs.clone();
            let env =
                sign_message(header, KeyRole::SetupSigning, &th, payload.clone(), *s, p).unwrap();
            json!({
                "signer": name,
                "role": KeyRole::SetupSigning.to_u8(),
                "payload": h(&payload),
                "external_aad": h(&external_aad(&header, KeyRole::SetupSigning, &th)),
                "sig_structure": h(tbs.message()),
                "sig_structure_sha256": h(tbs.digest()),
                "envelope": h(&env.encode()),
            })
        })
        .collect();

    let error = ErrorMessage {
        code: ErrorCode::UnsupportedVersion,
        retry_after_s: 0,
        supported_versions: vec![ProtocolVersion::V1],
    };
    let error_env = Envelope::plain(
        Header {
            tag: MessageTag::Error,
            seq: 3,
            ..header
        },
        error.encode_body(),
    )
    .unwrap();

    let barcode = |pin: Option<&str>| {
        BarcodePayload {
            fingerprint: KeyFingerprint::of(&device.key_id(), 16).unwrap(),
            device_type: 7,
            product_number: "B07XJ8C8F5".into(),
            pin: pin.map(|p| Pin::new(p).unwrap()),
        }
        .encode()
    };

    json!({
        "description": "zerotouch core test vectors; see docs/PROTOCOL.md. Secrets are SHA-256(\"zerotouch test vector \" || label).",
        "keys": keys,
        "transcript": {
            "session_id": h(&session_id.0),
            "device_nonce": h(&device_nonce.0),
            "server_nonce": h(&server_nonce.0),
            "steps": steps,
        },
        "signed_messages": signed,
        "plain_messages": [{
            "description": "error UnsupportedVersion, seq 3",
            "body": h(&error.encode_body()),
            "envelope": h(&error_env.encode()),
        }],
        "barcodes": [
            {"pin": null, "text": barcode(None)},
            {"pin": "482915", "text": barcode(Some("482915"))},
        ],
    })
}

/// The markdown block PROTOCOL.md carries between its vector markers.
fn markdown(v: &Value) -> String {
    let mut out = String::from("```text\n");
    let key = |i: usize, f: &str| v["keys"][i][f].as_str().unwrap().to_string();
    for i in 0..3 {
        out += &format!(
            "key {:?}\n  secret  {}\n  spki    {}\n  key_id  {}\n",
            v["keys"][i]["label"].as_str().unwrap(),
            key(i, "secret"),
            key(i, "spki_der"),
            key(i, "key_id")
        );
    }
    out += "transcript\n";
    for s in v["transcript"]["steps"].as_array().unwrap() {
        out += &format!(
            "  {:<38} {}\n",
            s["step"].as_str().unwrap(),
            s["hash"].as_str().unwrap()
        );
    }
    for m in v["signed_messages"].as_array().unwrap() {
        out += &format!(
            "signed ServerProof by {}\n  external_aad {}\n  envelope     {}\n",
            m["signer"].as_str().unwrap(),
            m["external_aad"].as_str().unwrap(),
            m["envelope"].as_str().unwrap()
        );
    }
    out += &format!(
        "error envelope {}\n",
        v["plain_messages"][0]["envelope"].as_str().unwrap()
    );
    for b in v["barcodes"].as_array().unwrap() {
        out += &format!("barcode {}\n", b["text"].as_str().unwrap());
    }
    out + "```\n"
}

const BEGIN: &str =
    "<!-- vectors:begin (generated by crates/zerotouch-core/tests/vectors.rs) -->\n";
const END: &str = "<!-- vectors:end -->";

#[test]
fn vectors_match_docs() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let json_path = format!("{root}/docs/vectors/core.json");
    let md_path = format!("{root}/docs/PROTOCOL.md");
    let v = generate();
    let json_text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    let md = std::fs::read_to_string(&md_path).expect("docs/PROTOCOL.md");
    let (Some(b), Some(e)) = (md.find(BEGIN), md.find(END)) else {
        panic!("PROTOCOL.md lacks vector markers")
    };
    let block = markdown(&v);
    if std::env::var_os("ZT_UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(format!("{root}/docs/vectors")).unwrap();
        std::fs::write(&json_path, &json_text).unwrap();
        let new_md = format!("{}{BEGIN}{block}{}", &md[..b], &md[e..]);
        std::fs::write(&md_path, new_md).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&json_path)
        .expect("docs/vectors/core.json (run with ZT_UPDATE_VECTORS=1)");
    assert_eq!(
        committed, json_text,
        "docs/vectors/core.json is stale: the wire format changed"
    );
    assert_eq!(
        &md[b + BEGIN.len()..e],
        block,
        "PROTOCOL.md's vector block is stale"
    );
}

#[test]
fn committed_vectors_verify_independently() {
    // Decode the committed envelopes and verify them with keys rebuilt from the committed SPKI:
    // what an implementer in another language does with these files.
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/docs/vectors/core.json")).unwrap(),
    )
    .unwrap();
    let th_hex = v["transcript"]["steps"].as_array().unwrap().last().unwrap()["hash"]
        .as_str()
        .unwrap();
    let th = TranscriptHash(hex::decode(th_hex).unwrap().try_into().unwrap());
    for (i, m) in v["signed_messages"].as_array().unwrap().iter().enumerate() {
        let key = PublicKey::from_spki_der(
            &hex::decode(v["keys"][i]["spki_der"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let env = Envelope::decode(&hex::decode(m["envelope"].as_str().unwrap()).unwrap()).unwrap();
        let payload = signed_body(&env)
            .verify(&env.header, KeyRole::SetupSigning, &th, &key, &PROVIDER)
            .unwrap();
        assert_eq!(hex::encode(payload), m["payload"].as_str().unwrap());
    }
    for b in v["barcodes"].as_array().unwrap() {
        BarcodePayload::decode(b["text"].as_str().unwrap()).unwrap();
    }
}
