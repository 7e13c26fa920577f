//! Shared fixtures of the zerotouch fuzz targets and the seed generator.
//!
//! The fixed keys and transcript hash here are what `signed_verify` and
//! `open_network_order_decode` verify against and what `make_seeds` signs with, so the seeds
//! carry key ids the fuzzer can keep while it mutates the rest of a signed envelope.

use zerotouch_core::{
    BarcodePayload, Body, CipherSuite, DeviceCertificate, Envelope, ErrorCode, ErrorMessage, Flow,
    Header, Instant, KeyFingerprint, KeyId, KeyRole, Message, MessageTag, Pin, PinnedKey,
    PinnedKeys, ProtocolVersion, PublicKey, RustCryptoProvider, SessionId, SessionKeyPair,
    SignatureAlgorithm, Signer, SigningKey, SoftwareSigner, ToBeSigned, TranscriptHash,
    sign_message,
};
use zerotouch_provisioner::OpenNetworkOrder;

pub mod ble;
pub mod peer;

/// Secret of the fixed Ed25519 key (fuzzing only, never a real key).
pub const ED25519_SECRET: [u8; 32] = [0x11; 32];
/// Secret of the fixed P-256 key (fuzzing only, never a real key).
pub const P256_SECRET: [u8; 32] = [0x22; 32];
/// The transcript hash every fuzz signature is made over.
pub const FUZZ_TH: TranscriptHash = TranscriptHash([0x5a; 32]);
/// The session id of every seed.
pub const SEED_SESSION: SessionId = SessionId([0xa5; 16]);

/// The fixed signer of `algorithm`.
pub fn fixed_signer(algorithm: SignatureAlgorithm) -> SoftwareSigner {
    let secret = match algorithm {
        SignatureAlgorithm::Ed25519 => &ED25519_SECRET,
        SignatureAlgorithm::EcdsaP256Sha256 => &P256_SECRET,
    };
    match SigningKey::from_secret_bytes(algorithm, secret) {
        Ok(key) => SoftwareSigner::new(key),
        Err(e) => panic!("fixed {algorithm:?} secret refused: {e:?}"),
    }
}

/// The fixed public keys: Ed25519 first, then P-256.
pub fn fixed_public_keys() -> [PublicKey; 2] {
    [
        fixed_signer(SignatureAlgorithm::Ed25519)
            .public_key()
            .clone(),
        fixed_signer(SignatureAlgorithm::EcdsaP256Sha256)
            .public_key()
            .clone(),
    ]
}

/// Wall-clock time (Unix ms, 2026-01-01T00:00:00Z) at which `open_network_order_decode`
/// carries out orders; the order seeds are valid around it.
pub const ORDER_WALL_MS: u64 = 1_767_225_600_000;

/// The receiving side of `open_network_order_decode`: the provisioner's own key (`me`, the
/// fixed P-256 key, whose SPKI the order transcript binds) and the keys it trusts: the fixed
/// Ed25519 key for orders, and its own P-256 key for another role only (so an order it signed
/// itself is refused even when signatures are not checked).
pub fn order_fixture() -> (PublicKey, PinnedKeys) {
    let [ed, p] = fixed_public_keys();
    let trusted = PinnedKeys::new(vec![
        PinnedKey::new(KeyRole::ProvisionerOrder, ed),
        PinnedKey::new(KeyRole::Association, p.clone()),
    ]);
    (p, trusted)
}

/// The receiving side of `factory_manifest_decode`: the keys a server trusts (the fixed
/// Ed25519 key for manifests, the fixed P-256 key for another role only, so a manifest it
/// signed is refused even when signatures are not checked) and its manifest import key.
pub fn manifest_fixture() -> (PinnedKeys, SessionKeyPair) {
    let [ed, p] = fixed_public_keys();
    let trusted = PinnedKeys::new(vec![
        PinnedKey::new(KeyRole::FactoryManifest, ed),
        PinnedKey::new(KeyRole::SetupSigning, p),
    ]);
    let import = match SessionKeyPair::derive(
        CipherSuite::X25519_SHA256_CHACHA20POLY1305,
        b"zerotouch fuzz manifest import key",
    ) {
        Ok(key) => key,
        Err(e) => panic!("fixed import key refused: {e:?}"),
    };
    (trusted, import)
}

/// Manifests for `factory_manifest_decode`: with and without secrets, signed by the trusted
/// key, and one signed by the key trusted only in another role.
fn manifest_seeds() -> Vec<Seed> {
    use rand_core::SeedableRng;
    use zerotouch_factory::{BatchSpec, FactoryManifest, KeySource, make_batch};
    use zerotouch_pki::{CertificateAuthority, Validity};

    let (_, import) = manifest_fixture();
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([0x33; 32]);
    let ca = match CertificateAuthority::new(
        "fuzz devices",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(1),
    ) {
        Ok(ca) => ca,
        Err(e) => panic!("fuzz CA: {e}"),
    };
    let mut out = Vec::new();
    let cases = [
        ("secrets", Some(6), true, SignatureAlgorithm::Ed25519),
        ("no-secrets", None, false, SignatureAlgorithm::Ed25519),
        (
            "other-role",
            Some(12),
            true,
            SignatureAlgorithm::EcdsaP256Sha256,
        ),
    ];
    for (name, pin_digits, device_secrets, signer) in cases {
        let spec = BatchSpec {
            device_type: 7,
            first_serial: 1001,
            count: 2,
            product_number: "FUZZ1".into(),
            algorithm: SignatureAlgorithm::Ed25519,
            pin_digits,
            device_secrets,
            pin_iterations: zerotouch_factory::MIN_PIN_ITERATIONS,
        };
        let manifest = make_batch(&spec, KeySource::Generate, &ca, &mut rng).and_then(|batch| {
            FactoryManifest::build(
                &batch,
                Instant(ORDER_WALL_MS),
                import.suite(),
                import.public_key(),
                &fixed_signer(signer),
                &mut rng,
            )
        });
        match manifest {
            Ok(bytes) => out.push(seed(
                "factory_manifest_decode",
                format!("api-{name}"),
                bytes,
            )),
            Err(e) => panic!("manifest seed {name}: {e}"),
        }
    }
    out
}

/// Whether `needle` occurs contiguously in `haystack`.
pub fn contains_slice(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The round-trip check of the body decoders (`flow1_decode`, `flow2_decode`): whatever `M`
/// decodes from `data` re-encodes to bytes that decode to the same value, stably; with `exact`,
/// those bytes are `data` itself (one message, one byte form).
pub fn check_round_trip<M: Message + PartialEq + core::fmt::Debug>(data: &[u8], exact: bool) {
    let Ok(first) = M::decode_body(data) else {
        return;
    };
    let body = first.encode_body();
    if exact {
        assert_eq!(body, data, "a decoded body re-encodes to other bytes");
    }
    match M::decode_body(&body) {
        Ok(second) => {
            assert_eq!(first, second, "decode(encode(m)) != m");
            assert_eq!(body, second.encode_body(), "encoding not stable");
        }
        Err(e) => panic!("re-encoded body does not decode: {e:?}"),
    }
}

/// Fuzz target names, as in Cargo.toml.
pub const TARGETS: [&str; 13] = [
    "envelope_decode",
    "error_message_decode",
    "barcode_decode",
    "certificate_decode",
    "spki_decode",
    "signed_verify",
    "open_network_order_decode",
    "flow1_decode",
    "factory_manifest_decode",
    "pinned_bundle_decode",
    "flow2_decode",
    "peer_roles",
    "ble_reassemble",
];

/// One seed: the target it is for, a file name, and its bytes.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Fuzz target.
    pub target: &'static str,
    /// File name inside `corpus/<target>/`.
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

fn seed(target: &'static str, name: impl Into<String>, bytes: Vec<u8>) -> Seed {
    Seed {
        target,
        name: name.into(),
        bytes,
    }
}

fn header(flow: Flow, tag: MessageTag, seq: u32) -> Header {
    Header {
        version: ProtocolVersion::V1,
        flow,
        tag,
        session_id: SEED_SESSION,
        seq,
    }
}

fn expect<T, E: core::fmt::Debug>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("building seed {what}: {e:?}"),
    }
}

// --- a minimal DER writer, for certificates and SubjectPublicKeyInfos -----------------------

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn der_uint(be: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = {
        let skip = be.iter().take_while(|b| **b == 0).count().min(be.len() - 1);
        be[skip..].to_vec()
    };
    let mut content = Vec::new();
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&trimmed);
    tlv(0x02, &content)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = vec![0u8];
    content.extend_from_slice(bytes);
    tlv(0x03, &content)
}

const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];

/// An SPKI for a P-256 point in SEC1 form (compressed or not).
fn p256_spki(point: &[u8]) -> Vec<u8> {
    seq(&[&seq(&[OID_EC_PUBLIC_KEY, OID_P256]), &bit_string(point)])
}

fn compress_p256(uncompressed: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02 | (uncompressed[64] & 1)];
    out.extend_from_slice(&uncompressed[1..33]);
    out
}

fn name(cn: &str) -> Vec<u8> {
    let atv = seq(&[OID_COMMON_NAME, &tlv(0x0c, cn.as_bytes())]);
    seq(&[&tlv(0x31, &atv)])
}

/// A self-signed v3 certificate for `signer`'s key, signed for real (so it also works as a seed
/// for anything that checks certificate signatures later).
pub fn self_signed_certificate(signer: &SoftwareSigner, spki: &[u8], serial: &[u8]) -> Vec<u8> {
    let sig_alg = match signer.algorithm() {
        SignatureAlgorithm::Ed25519 => seq(&[OID_ED25519]),
        SignatureAlgorithm::EcdsaP256Sha256 => seq(&[OID_ECDSA_SHA256]),
    };
    let version = tlv(0xa0, &der_uint(&[2]));
    let validity = seq(&[&tlv(0x17, b"250101000000Z"), &tlv(0x18, b"99991231235959Z")]);
    let tbs = seq(&[
        &version,
        &der_uint(serial),
        &sig_alg,
        &name("zerotouch fuzz CA"),
        &validity,
        &name("zerotouch fuzz device"),
        spki,
    ]);
    let signature = expect(
        signer.sign(&ToBeSigned::new(tbs.clone(), &RustCryptoProvider)),
        "certificate signature",
    );
    let sig_bits = match signer.algorithm() {
        SignatureAlgorithm::Ed25519 => signature.bytes.to_vec(),
        SignatureAlgorithm::EcdsaP256Sha256 => {
            let (r, s) = signature.bytes.split_at(32);
            seq(&[&der_uint(r), &der_uint(s)])
        }
    };
    seq(&[&tbs, &sig_alg, &bit_string(&sig_bits)])
}

/// Seeds built with the real API.
pub fn api_seeds() -> Vec<Seed> {
    let provider = RustCryptoProvider;
    let ed = fixed_signer(SignatureAlgorithm::Ed25519);
    let p = fixed_signer(SignatureAlgorithm::EcdsaP256Sha256);
    let mut out = Vec::new();

    // Error messages, alone and in envelopes of both flows.
    let errors = [
        ErrorMessage {
            code: ErrorCode::UnsupportedVersion,
            retry_after_s: 0,
            supported_versions: vec![ProtocolVersion::V1, ProtocolVersion(2)],
        },
        ErrorMessage {
            code: ErrorCode::RateLimited,
            retry_after_s: 3600,
            supported_versions: vec![],
        },
        ErrorMessage {
            code: ErrorCode::NotAuthorized,
            retry_after_s: u32::MAX,
            supported_versions: vec![ProtocolVersion::V1],
        },
    ];
    for (i, e) in errors.iter().enumerate() {
        let body = e.encode_body();
        out.push(seed(
            "error_message_decode",
            format!("api-error-{i}"),
            body.clone(),
        ));
        let flow = if i % 2 == 0 {
            Flow::ServerSetup
        } else {
            Flow::PeerHandoff
        };
        let env = expect(
            Envelope::plain(header(flow, MessageTag::Error, i as u32), body),
            "error envelope",
        );
        out.push(seed(
            "envelope_decode",
            format!("api-plain-error-{i}"),
            env.encode(),
        ));
    }

    // Other plain envelopes.
    let plain = [
        (
            Flow::ServerSetup,
            MessageTag::Hello,
            vec![0x82, 0x41, 0x01, 0x40],
        ),
        (Flow::ServerSetup, MessageTag::RevocationQuery, vec![0x80]),
        (
            Flow::PeerHandoff,
            MessageTag::PeerCredentialRequest,
            vec![0x82, 0x00, 0x50],
        ),
        (Flow::PeerHandoff, MessageTag::ChallengeResponse, vec![]),
    ];
    for (i, (flow, tag, body)) in plain.into_iter().enumerate() {
        let env = expect(
            Envelope::plain(header(flow, tag, 7), body),
            "plain envelope",
        );
        out.push(seed(
            "envelope_decode",
            format!("api-plain-{i}"),
            env.encode(),
        ));
    }

    // Signed envelopes by the fixed keys, in the roles signed_verify pins them for.
    let signed = [
        (
            Flow::ServerSetup,
            MessageTag::ServerProof,
            KeyRole::SetupSigning,
            &ed,
            "ed25519-proof",
        ),
        (
            Flow::ServerSetup,
            MessageTag::ServerProof,
            KeyRole::SetupSigning,
            &p,
            "p256-proof",
        ),
        (
            Flow::ServerSetup,
            MessageTag::CredentialRequest,
            KeyRole::DeviceIdentity,
            &p,
            "p256-credreq",
        ),
        (
            Flow::ServerSetup,
            MessageTag::RevocationVerdict,
            KeyRole::RevocationVerdict,
            &ed,
            "ed25519-verdict",
        ),
        (
            Flow::PeerHandoff,
            MessageTag::VerificationData,
            KeyRole::Association,
            &p,
            "p256-verification",
        ),
    ];
    for (flow, tag, role, signer, label) in signed {
        let env = expect(
            sign_message(
                header(flow, tag, 1),
                role,
                &FUZZ_TH,
                b"fuzz seed payload".to_vec(),
                signer,
                &provider,
            ),
            label,
        );
        // The seed must verify under the fixed key, or signed_verify could never reach its
        // accepting path from it.
        if let Body::Signed(body) = &env.body {
            expect(
                body.verify(&env.header, role, &FUZZ_TH, signer.public_key(), &provider),
                label,
            );
        }
        let bytes = env.encode();
        out.push(seed(
            "envelope_decode",
            format!("api-signed-{label}"),
            bytes.clone(),
        ));
        out.push(seed("signed_verify", format!("api-signed-{label}"), bytes));
    }

    out.extend(order_seeds(&ed, &p));
    out.extend(flow1_seeds(&p));
    out.extend(manifest_seeds());
    out.extend(peer::seeds());
    out.extend(ble::seeds());

    // SubjectPublicKeyInfos.
    let ed_spki = ed.public_key().to_spki_der();
    let p_spki = p.public_key().to_spki_der();
    let p_point = p.public_key().raw_bytes().to_vec();
    let p_compressed_spki = p256_spki(&compress_p256(&p_point));
    out.push(seed("spki_decode", "api-ed25519", ed_spki.clone()));
    out.push(seed("spki_decode", "api-p256", p_spki.clone()));
    out.push(seed(
        "spki_decode",
        "api-p256-compressed-refused",
        p_compressed_spki.clone(),
    ));
    // An unsupported curve: the fuzzer learns the OID path of the refusal too.
    let p384_spki = seq(&[&seq(&[OID_EC_PUBLIC_KEY, OID_P384]), &bit_string(&p_point)]);
    out.push(seed("spki_decode", "api-p384-refused", p384_spki));

    // Device certificates.
    // (label, signer, SPKI, serial, whether the core accepts it). A compressed P-256 point is
    // refused (the key id hashes the uncompressed SPKI), and seeds the refusal path.
    let certs = [
        ("ed25519", &ed, ed_spki, &[0x01, 0x23, 0x45][..], true),
        ("p256", &p, p_spki, &[0x7f; 20][..], true),
        (
            "p256-compressed-refused",
            &p,
            p_compressed_spki,
            &[0x80, 0x00][..],
            false,
        ),
    ];
    for (label, signer, spki, serial, accepted) in certs {
        let der = self_signed_certificate(signer, &spki, serial);
        // A seed that does not behave as expected is a bug in this generator or in the core.
        assert_eq!(
            DeviceCertificate::from_der(&der).is_ok(),
            accepted,
            "building seed {label}"
        );
        out.push(seed("certificate_decode", format!("api-{label}"), der));
    }

    // Barcodes: fingerprints of 16, 20 and 32 bytes, with and without PIN, lower case.
    let kid = ed.key_id();
    let barcodes = [
        (16, 7, "B07XJ8C8F5", None),
        (20, 0, "A", Some("482915")),
        (
            32,
            u32::MAX,
            "ABCDEFGHIJKLMNOPQRSTUVWX",
            Some("123456789012"),
        ),
    ];
    for (i, (fp_len, device_type, product, pin)) in barcodes.into_iter().enumerate() {
        let payload = BarcodePayload {
            fingerprint: expect(KeyFingerprint::of(&kid, fp_len), "fingerprint"),
            device_type,
            product_number: product.to_string(),
            pin: pin.map(|p| expect(Pin::new(p), "pin")),
        };
        let text = payload.encode();
        expect(BarcodePayload::decode(&text), "barcode");
        out.push(seed(
            "barcode_decode",
            format!("api-{i}"),
            text.clone().into_bytes(),
        ));
        if i == 0 {
            out.push(seed(
                "barcode_decode",
                "api-lower",
                text.to_ascii_lowercase().into_bytes(),
            ));
        }
    }

    // A pinned-key bundle: a P-256 setup key with an indication, an Ed25519 revocation key.
    let setup = expect(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[5; 32]),
        "p256 key",
    )
    .public_key();
    let bundle = zerotouch_core::PinnedKeyBundle {
        keys: vec![
            (KeyRole::SetupSigning, setup.clone()),
            (KeyRole::RevocationVerdict, ed.public_key().clone()),
        ],
        indications: vec![zerotouch_core::KeyMapRule {
            device_type: 7,
            first_serial: 1,
            last_serial: 1000,
            key_id: setup.key_id(),
        }],
    };
    let bytes = bundle.encode(&RustCryptoProvider);
    expect(
        zerotouch_core::PinnedKeyBundle::decode(&bytes, &RustCryptoProvider),
        "bundle",
    );
    out.push(seed("pinned_bundle_decode", "api-0", bytes));

    out
}

/// Open-network orders for `order_fixture`'s provisioner: one it carries out at
/// `ORDER_WALL_MS`, and one for each way it refuses an order after decoding it.
fn order_seeds(ed: &SoftwareSigner, p: &SoftwareSigner) -> Vec<Seed> {
    const TARGET: &str = "open_network_order_decode";
    const HOUR_MS: u64 = 3_600_000;
    let provider = RustCryptoProvider;
    let (me, trusted) = order_fixture();
    let valid = OpenNetworkOrder {
        order_id: [0x0d; 16],
        provisioner_key_id: me.key_id(),
        device_key_id: KeyId([0x4e; 32]),
        issued_at_ms: ORDER_WALL_MS - 1_000,
        not_after_ms: ORDER_WALL_MS + HOUR_MS,
    };
    // (label, order, signer): the signer is the trusted Ed25519 order key unless it says
    // otherwise; `decodes` is whether OpenNetworkOrder::verify accepts it.
    let orders = [
        ("valid", valid, ed, true),
        (
            "week",
            OpenNetworkOrder {
                order_id: [0x01; 16],
                not_after_ms: valid.issued_at_ms + 7 * 24 * HOUR_MS,
                ..valid
            },
            ed,
            true,
        ),
        (
            "too-long",
            OpenNetworkOrder {
                order_id: [0x02; 16],
                not_after_ms: valid.issued_at_ms + 8 * 24 * HOUR_MS,
                ..valid
            },
            ed,
            true,
        ),
        (
            "expired",
            OpenNetworkOrder {
                order_id: [0x03; 16],
                not_after_ms: ORDER_WALL_MS - 1,
                ..valid
            },
            ed,
            true,
        ),
        (
            "extreme-times",
            OpenNetworkOrder {
                order_id: [0xff; 16],
                issued_at_ms: 0,
                not_after_ms: u64::MAX,
                ..valid
            },
            ed,
            true,
        ),
        (
            "other-provisioner",
            OpenNetworkOrder {
                order_id: [0x04; 16],
                provisioner_key_id: ed.key_id(),
                ..valid
            },
            ed,
            false,
        ),
        ("self-signed", valid, p, false),
    ];
    let mut out = Vec::new();
    for (label, order, signer, decodes) in orders {
        let bytes = expect(order.sign(&me, signer, &provider), label);
        let verified = OpenNetworkOrder::verify(&bytes, &me, &trusted, &provider);
        // A seed that does not behave as expected is a bug in this generator or the provisioner.
        assert_eq!(
            verified.is_ok(),
            decodes,
            "building seed order-{label}: {verified:?}"
        );
        if decodes {
            assert_eq!(verified, Ok(order), "building seed order-{label}");
        }
        out.push(seed(TARGET, format!("api-order-{label}"), bytes.clone()));
        if label == "valid" {
            out.push(seed("envelope_decode", "api-signed-order", bytes));
        }
    }
    out
}

/// One body of each flow-1 message, prefixed with the byte that picks its decoder in
/// `flow1_decode`.
fn flow1_seeds(device: &SoftwareSigner) -> Vec<Seed> {
    use zerotouch_core::flow1::*;
    use zerotouch_core::{CipherSuite, Nonce};
    let nonce = Nonce([7; 16]);
    let key = KeyId([9; 32]);
    let network = ReportedNetwork {
        ssid: b"home".to_vec(),
        signal_loss_db: 40,
        band: 2,
        channel: 36,
        security: 3,
    };
    let report = DeviceReport {
        pin: Some(expect(Pin::new("482915"), "pin")),
        networks: vec![network.clone(), network],
        radio_bands: 3,
        radio_security: 3,
    };
    let bodies: Vec<(u8, &str, Vec<u8>)> = vec![
        (
            0,
            "hello",
            Hello {
                versions: vec![ProtocolVersion::V1],
                suites: CipherSuite::SUPPORTED.to_vec(),
                identity: DeviceIdentityRef::PublicKey(device.public_key().to_spki_der()),
                trusted_keys: vec![key, KeyId([8; 32])],
                device_nonce: nonce,
            }
            .encode_body(),
        ),
        (
            1,
            "proof",
            ServerProof {
                version: ProtocolVersion::V1,
                suite: CipherSuite::P256_SHA256_CHACHA20POLY1305,
                server_nonce: nonce,
                sealing_key: vec![4; 65],
                pin_required: true,
                expires_in_s: 120,
            }
            .encode_body(),
        ),
        (
            2,
            "request",
            CredentialRequest {
                session_key: vec![5; 32],
                report: SealedReport {
                    encapsulated_key: vec![6; 32],
                    ciphertext: vec![7; 80],
                },
            }
            .encode_body(),
        ),
        (
            3,
            "response",
            CredentialResponse {
                encapsulated_key: vec![6; 32],
                entries: vec![
                    CredentialEntry {
                        ssid: b"home".to_vec(),
                        security: 2,
                        status: EntryStatus::Sealed,
                        ciphertext: vec![1; 40],
                    },
                    CredentialEntry {
                        ssid: b"home-5g".to_vec(),
                        security: 2,
                        status: EntryStatus::UnsupportedByRadio,
                        ciphertext: vec![],
                    },
                ],
            }
            .encode_body(),
        ),
        (
            4,
            "outcome",
            OutcomeReport {
                setup_session: SessionId([3; 16]),
                ssid: b"home".to_vec(),
                outcome: JoinOutcome::Joined,
                device_nonce: nonce,
            }
            .encode_body(),
        ),
        (
            5,
            "ack",
            OutcomeAck {
                device_nonce: nonce,
            }
            .encode_body(),
        ),
        (
            6,
            "query",
            RevocationQuery {
                key_id: key,
                device_nonce: nonce,
            }
            .encode_body(),
        ),
        (
            7,
            "verdict",
            RevocationVerdict {
                key_id: key,
                device_nonce: nonce,
                status: RevocationStatus::Revoked,
                replacement: Some(KeyId([8; 32])),
            }
            .encode_body(),
        ),
        (8, "report", report.encode().to_vec()),
    ];
    bodies
        .into_iter()
        .map(|(which, name, body)| {
            let mut bytes = vec![which];
            bytes.extend_from_slice(&body);
            seed("flow1_decode", format!("api-{name}"), bytes)
        })
        .collect()
}

/// Every string literal in a JSON text (escapes kept as written; hex and barcode strings have
/// none). A scanner rather than a JSON parser, so the vector format may change freely.
pub fn json_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => {
                    s.push(c);
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                }
                _ => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// Decodes lower- or upper-case hex of even length.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some((digit(p[0])? * 16 + digit(p[1])?) as u8))
        .collect()
}

/// Seeds from one test-vector file: every string that decodes as something a target takes
/// becomes a seed of that target.
pub fn vector_seeds(file_label: &str, json: &str) -> Vec<Seed> {
    let mut out = Vec::new();
    for (i, s) in json_strings(json).into_iter().enumerate() {
        let name = |t: &str| format!("vector-{file_label}-{i}-{t}");
        if s.to_ascii_uppercase().starts_with("ZT1/") {
            out.push(seed("barcode_decode", name("barcode"), s.into_bytes()));
            continue;
        }
        let Some(bytes) = from_hex(&s) else { continue };
        if let Ok(env) = Envelope::decode(&bytes) {
            if matches!(env.body, Body::Signed(_)) {
                out.push(seed("signed_verify", name("signed"), bytes.clone()));
            }
            if env.header.tag == MessageTag::OpenSetupNetworkOrder {
                out.push(seed(
                    "open_network_order_decode",
                    name("order"),
                    bytes.clone(),
                ));
            }
            if let (Some(selector), Body::Plain(body)) =
                (peer::flow2_selector(env.header.tag), &env.body)
            {
                let input = [&[selector][..], body].concat();
                out.push(seed("flow2_decode", name("flow2"), input));
            }
            out.push(seed("envelope_decode", name("envelope"), bytes.clone()));
        }
        if ErrorMessage::decode_body(&bytes).is_ok() {
            out.push(seed("error_message_decode", name("error"), bytes.clone()));
        }
        if PublicKey::from_spki_der(&bytes).is_ok() {
            out.push(seed("spki_decode", name("spki"), bytes.clone()));
        }
        if DeviceCertificate::from_der(&bytes).is_ok() {
            out.push(seed("certificate_decode", name("certificate"), bytes));
        }
    }
    out
}
