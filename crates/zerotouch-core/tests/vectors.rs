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
        "flow1": flow1(p, &session_id, &device_nonce, &server_nonce, &device, &ec, &ed),
    })
}

/// One body of each flow-1 message from fixed fields (byte strings that would be keys or
/// ciphertexts are fixed patterns: the bodies show the encoding), and the setup transcript
/// over the first three.
fn flow1(
    p: &RustCryptoProvider,
    session_id: &SessionId,
    device_nonce: &Nonce,
    server_nonce: &Nonce,
    device: &SoftwareSigner,
    ec: &SoftwareSigner,
    ed: &SoftwareSigner,
) -> Value {
    use zerotouch_core::flow1::*;
    let hello = Hello {
        versions: vec![ProtocolVersion::V1],
        suites: CipherSuite::SUPPORTED.to_vec(),
        identity: DeviceIdentityRef::PublicKey(device.public_key().to_spki_der()),
        trusted_keys: vec![ec.key_id(), ed.key_id()],
        device_nonce: *device_nonce,
    }
    .encode_body();
    let proof = ServerProof {
        version: ProtocolVersion::V1,
        suite: CipherSuite::X25519_SHA256_CHACHA20POLY1305,
        server_nonce: *server_nonce,
        sealing_key: vec![0x42; 32],
        pin_required: true,
        expires_in_s: 120,
    }
    .encode_body();
    let request = CredentialRequest {
        session_key: vec![0x43; 32],
        report: SealedReport {
            encapsulated_key: vec![0x44; 32],
            ciphertext: vec![0x45; 48],
        },
    }
    .encode_body();
    let report = DeviceReport {
        pin: Some(Pin::new("482915").unwrap()),
        networks: vec![ReportedNetwork {
            ssid: b"home".to_vec(),
            signal_loss_db: 40,
            band: 2,
            channel: 36,
            security: 2,
        }],
        radio_bands: 3,
        radio_security: 3,
    }
    .encode()
    .to_vec();
    let response = CredentialResponse {
        encapsulated_key: vec![0x46; 32],
        entries: vec![
            CredentialEntry {
                ssid: b"home".to_vec(),
                security: 2,
                status: EntryStatus::Sealed,
                ciphertext: vec![0x47; 44],
            },
            CredentialEntry {
                ssid: b"home-5g".to_vec(),
                security: 2,
                status: EntryStatus::UnsupportedByRadio,
                ciphertext: vec![],
            },
        ],
    }
    .encode_body();
    let outcome = OutcomeReport {
        setup_session: *session_id,
        ssid: b"home".to_vec(),
        outcome: JoinOutcome::Joined,
        device_nonce: *device_nonce,
    }
    .encode_body();
    let ack = OutcomeAck {
        device_nonce: *device_nonce,
    }
    .encode_body();
    let query = RevocationQuery {
        key_id: ec.key_id(),
        device_nonce: *device_nonce,
    }
    .encode_body();
    let verdict = RevocationVerdict {
        key_id: ec.key_id(),
        device_nonce: *device_nonce,
        status: RevocationStatus::Revoked,
        replacement: Some(ed.key_id()),
    }
    .encode_body();
    let mut t = SetupTranscript::after_hello(p, Transport::Dns, session_id, &hello);
    let t1 = t.hash();
    t.absorb_proof(p, &proof);
    let t2 = t.hash();
    t.absorb_request(p, &request);
    let t3 = t.hash();
    json!({
        "bodies": [
            {"message": "hello", "body": h(&hello)},
            {"message": "server_proof", "body": h(&proof)},
            {"message": "credential_request", "body": h(&request)},
            {"message": "report (sealed inside the request)", "body": h(&report)},
            {"message": "credential_response", "body": h(&response)},
            {"message": "outcome_report", "body": h(&outcome)},
            {"message": "outcome_ack", "body": h(&ack)},
            {"message": "revocation_query", "body": h(&query)},
            {"message": "revocation_verdict", "body": h(&verdict)},
        ],
        "setup_transcript": [
            {"step": "t1 = start(1, DNS, session_id) + hello", "hash": h(&t1.0)},
            {"step": "t2 = t1 + server_proof", "hash": h(&t2.0)},
            {"step": "t3 = t2 + credential_request", "hash": h(&t3.0)},
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
    out += "flow 1 (section 15)\n";
    for m in v["flow1"]["bodies"].as_array().unwrap() {
        out += &format!(
            "  {}\n    {}\n",
            m["message"].as_str().unwrap(),
            m["body"].as_str().unwrap()
        );
    }
    for s in v["flow1"]["setup_transcript"].as_array().unwrap() {
        out += &format!(
            "  {:<38} {}\n",
            s["step"].as_str().unwrap(),
            s["hash"].as_str().unwrap()
        );
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
    // Every flow-1 body decodes with its decoder and re-encodes to the same bytes.
    for m in v["flow1"]["bodies"].as_array().unwrap() {
        let body = hex::decode(m["body"].as_str().unwrap()).unwrap();
        let again = match m["message"].as_str().unwrap() {
            "hello" => flow1::Hello::decode_body(&body).unwrap().encode_body(),
            "server_proof" => flow1::ServerProof::decode_body(&body)
                .unwrap()
                .encode_body(),
            "credential_request" => flow1::CredentialRequest::decode_body(&body)
                .unwrap()
                .encode_body(),
            "credential_response" => flow1::CredentialResponse::decode_body(&body)
                .unwrap()
                .encode_body(),
            "outcome_report" => flow1::OutcomeReport::decode_body(&body)
                .unwrap()
                .encode_body(),
            "outcome_ack" => flow1::OutcomeAck::decode_body(&body).unwrap().encode_body(),
            "revocation_query" => flow1::RevocationQuery::decode_body(&body)
                .unwrap()
                .encode_body(),
            "revocation_verdict" => flow1::RevocationVerdict::decode_body(&body)
                .unwrap()
                .encode_body(),
            _ => flow1::DeviceReport::decode(&body)
                .unwrap()
                .encode()
                .to_vec(),
        };
        assert_eq!(again, body, "{}", m["message"]);
    }
}
