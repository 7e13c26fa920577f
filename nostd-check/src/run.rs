//! What [`crate::zt_check_run`] does: the device's side of a setup session through the core's
//! real API, with the server's signing side alongside to produce the messages, plus a few
//! independent checks (stock COSE and ECDSA) that the wire format is what it claims to be.

#[cfg(feature = "barcode")]
use alloc::string::String;
use alloc::vec::Vec;

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;
use zerotouch_core::{
    Body, CipherSuite, Envelope, ErrorCode, ErrorMessage, Flow, Header, KeyRole, Message,
    MessageTag, Nonce, PendingSignature, PinnedKey, PinnedKeys, ProtocolVersion, PublicKey,
    RustCryptoProvider, SUPPORTED_VERSIONS, SessionId, SessionKeyPair, SignatureAlgorithm,
    SignatureError, Signer, SigningKey, SoftwareSigner, Transcript, TranscriptHash, Transport,
    check_suite_choice, check_version_choice, external_aad, negotiate_suite, negotiate_version,
    seal_to, sign_message,
};

/// A P-256 device certificate made with the openssl CLI (see `data/README.md`), and its
/// SubjectPublicKeyInfo extracted separately.
#[cfg(feature = "x509")]
static DEVICE_CERT: &[u8] = include_bytes!("../data/device-p256.der");
#[cfg(feature = "x509")]
static DEVICE_CERT_SPKI: &[u8] = include_bytes!("../data/device-p256.spki.der");

/// Fixed secrets: the check must give the same figures on every run. Any value below the
/// P-256 group order works as a scalar.
const SERVER_SECRET: [u8; 32] = [0x11; 32];
const DEVICE_SECRET: [u8; 32] = [0x22; 32];
#[cfg(feature = "ed25519")]
const VERDICT_SECRET: [u8; 32] = [0x33; 32];

/// Each step's status code: 0 is success, so numbering starts at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
// The Ed25519 and provisioner steps.
#[cfg_attr(
    not(all(
        feature = "ed25519",
        feature = "provisioner",
        feature = "device",
        feature = "peer",
        feature = "dns",
        feature = "ble"
    )),
    allow(dead_code)
)]
pub enum Step {
    /// Negotiating the version and the suite, or checking the choices, failed.
    Negotiation = 1,
    /// The server's P-256 key could not be built from its secret bytes.
    ServerKey = 2,
    /// The device's P-256 key could not be built from its secret bytes.
    DeviceKey = 3,
    /// `sign_message` failed for the server proof.
    SignServerProof = 4,
    /// The server proof did not decode, or decoded to another header or an unsigned body.
    DecodeServerProof = 5,
    /// The server proof did not verify against the pinned keys, or gave the wrong payload.
    VerifyServerProof = 6,
    /// A server proof with one signature bit flipped was accepted.
    TamperedAccepted = 7,
    /// A server proof verified under another transcript.
    WrongTranscriptAccepted = 8,
    /// Stock COSE (coset) plus ECDSA (p256) over SHA-256 did not verify the server proof.
    IndependentCose = 9,
    /// `PendingSignature::new` failed for the credential request.
    PendingSignature = 10,
    /// The device signer did not answer the sign request.
    SignRequest = 11,
    /// `PendingSignature::complete` refused the right signature.
    CompleteSignature = 12,
    /// `PendingSignature::complete` accepted a signature by another key.
    WrongResponseAccepted = 13,
    /// The credential request did not decode or verify on the server's side.
    VerifyDeviceProof = 14,
    /// A device proof verified in another key role.
    WrongRoleAccepted = 15,
    /// The error message did not survive encode, envelope and decode unchanged.
    ErrorMessage = 16,
    /// The barcode payload did not survive encode and decode (upper and lower case) unchanged,
    /// or its fingerprint did not name the device key.
    Barcode = 17,
    /// A barcode payload with one mistyped character was accepted.
    BarcodeTypoAccepted = 18,
    /// The device certificate did not parse.
    Certificate = 19,
    /// The certificate's key or serial number differs from what openssl wrote.
    CertificateContents = 20,
    /// The build without Ed25519 accepted an Ed25519 key, or Ed25519 signing failed.
    Ed25519Key = 21,
    /// An Ed25519-signed message did not round-trip and verify.
    Ed25519Verify = 22,
    /// A tampered Ed25519-signed message was accepted.
    Ed25519TamperedAccepted = 23,
    /// ed25519-dalek alone did not verify the COSE structure of the Ed25519 message.
    Ed25519Independent = 24,
    /// The provisioner refused its default policy, or accepted an unusable one.
    ProvisionerPolicy = 25,
    /// Signing an open-network order failed.
    ProvisionerOrderSign = 26,
    /// A valid open-network order was refused, or opened the network for the wrong device or
    /// time.
    ProvisionerOrderRefused = 27,
    /// A tampered, untrusted, misaddressed, expired, over-long or replayed order was accepted.
    ProvisionerBadOrderAccepted = 28,
    /// Admission went wrong: closed, admitted, full, evicted or banned when it should not be.
    ProvisionerAdmission = 29,
    /// Heap was still live after the run: something leaked.
    HeapNotFreed = 30,
    /// A packet was forwarded or dropped against the isolation rules or rate limits.
    ProvisionerPacket = 31,
    /// Bans or the ordered opening did not end when due.
    ProvisionerTimeout = 32,
    /// Sealing to the device's session key and opening it (HPKE, P-256) failed or gave other
    /// bytes.
    Seal = 33,
    /// A sealed value opened under another transcript.
    SealWrongTranscriptAccepted = 34,
    /// The device session could not be created.
    DeviceSession = 35,
    /// The device session did not go through setup as it should (a message, event or check
    /// of the server's side went wrong).
    DeviceFlow = 36,
    /// The device session acted on a forged server proof.
    DeviceForgedAccepted = 37,
    /// The joiner or the sponsor could not be created.
    PeerRoles = 38,
    /// The flow-2 handoff did not end with the joiner joining and the sponsor handing over (a
    /// message, event or check of the server's side went wrong).
    PeerFlow = 39,
    /// A fallback handoff did not start as the server refused, or its owner prompts and
    /// actions did not go as they should (codes differ, a typed code refused).
    PeerFallback = 40,
    /// A pairing code or label record was not generated, parsed or refused as it should be.
    PeerCodes = 41,
    /// The DNS tunnel did not carry a message and its response through the fake server as it
    /// should (a query, an answer's handling, an event, the answer limit or the counts).
    DnsTunnel = 42,
    /// The BLE links did not carry a message each way as they should (the info value, a
    /// segment, a delivery, the resend after a disconnect, a copy dropped, a bad segment or a
    /// timeout refused, the counts).
    Ble = 43,
}

pub(crate) type Check = Result<(), Step>;

pub(crate) fn ensure(ok: bool, step: Step) -> Check {
    if ok { Ok(()) } else { Err(step) }
}

fn header(tag: MessageTag, session_id: SessionId, seq: u32) -> Header {
    Header {
        version: ProtocolVersion::V1,
        flow: Flow::ServerSetup,
        tag,
        session_id,
        seq,
    }
}

/// Decodes `wire` as the device would and returns the envelope if it carries `expected`'s
/// header and a signed body.
fn decode_signed(wire: &[u8], expected: &Header, step: Step) -> Result<Envelope, Step> {
    let envelope = Envelope::decode(wire).map_err(|_| step)?;
    ensure(envelope.header == *expected, step)?;
    ensure(matches!(envelope.body, Body::Signed(_)), step)?;
    Ok(envelope)
}

fn signed_body(envelope: &Envelope) -> Option<&zerotouch_core::SignedBody> {
    match &envelope.body {
        Body::Signed(body) => Some(body),
        Body::Plain(_) => None,
    }
}

/// Pulls the COSE_Sign1 out of an encoded envelope with ciborium and coset alone, and returns
/// its `Sig_structure` bytes (under our external AAD) and its signature.
fn stock_cose(
    wire: &[u8],
    header: &Header,
    role: KeyRole,
    th: &TranscriptHash,
) -> Option<(Vec<u8>, Vec<u8>)> {
    use coset::{AsCborValue as _, CborSerializable as _};
    let mut reader = wire;
    let value: ciborium::Value = ciborium::de::from_reader(&mut reader).ok()?;
    let ciborium::Value::Array(items) = value else {
        return None;
    };
    let body = items.into_iter().nth(5)?;
    let cose = coset::CoseSign1::from_cbor_value(body).ok()?;
    // Round trip through coset's own encoder too: a COSE_Sign1 we emit is one coset reads.
    let cose = coset::CoseSign1::from_slice(&cose.to_vec().ok()?).ok()?;
    let tbs = cose.tbs_data(&external_aad(header, role, th));
    Some((tbs, cose.signature))
}

pub fn run() -> Check {
    let provider = RustCryptoProvider;

    // Keys. The device's identity key and the server's setup key, from fixed bytes; the secrets
    // are wiped when dropped.
    let server_secret = zeroize::Zeroizing::new(SERVER_SECRET);
    let server_key =
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &server_secret)
            .map_err(|_| Step::ServerKey)?;
    let server = SoftwareSigner::new(server_key);
    let device_secret = zeroize::Zeroizing::new(DEVICE_SECRET);
    let device_key =
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &device_secret)
            .map_err(|_| Step::DeviceKey)?;
    let device = SoftwareSigner::new(device_key);
    let device_public = device.public_key().clone();

    // The device pins the server key for its role (burnt into firmware).
    let pinned = PinnedKeys::new(alloc::vec![PinnedKey::new(
        KeyRole::SetupSigning,
        server.public_key().clone(),
    )]);

    // Negotiation, as the server does it and as the device checks it.
    let offered_versions = [ProtocolVersion::V1];
    let version =
        negotiate_version(&offered_versions, SUPPORTED_VERSIONS).map_err(|_| Step::Negotiation)?;
    check_version_choice(&offered_versions, version).map_err(|_| Step::Negotiation)?;
    let offered_suites = [CipherSuite::P256_SHA256_CHACHA20POLY1305];
    let suite =
        negotiate_suite(&offered_suites, CipherSuite::SUPPORTED).map_err(|_| Step::Negotiation)?;
    check_suite_choice(&offered_suites, suite).map_err(|_| Step::Negotiation)?;
    ensure(
        suite == CipherSuite::P256_SHA256_CHACHA20POLY1305,
        Step::Negotiation,
    )?;

    // The transcript both sides build.
    let session_id = SessionId([0x5a; 16]);
    let mut transcript = Transcript::new(&provider, Flow::ServerSetup, Transport::Dns, &session_id);
    transcript.offered_versions(&provider, &offered_versions);
    transcript.chosen_version(&provider, version);
    transcript.offered_suites(&provider, &offered_suites);
    transcript.chosen_suite(&provider, suite);
    transcript.device_key(&provider, &device_public);
    transcript.device_nonce(&provider, &Nonce([0xd0; 16]));
    transcript.server_nonce(&provider, &Nonce([0x5e; 16]));
    let th = transcript.hash();

    server_proof(&provider, &server, &pinned, session_id, &th)?;
    device_proof(&provider, &server, &device, session_id, &th)?;
    sealing(suite, &th)?;
    error_message(session_id)?;
    #[cfg(feature = "barcode")]
    barcode(&device_public)?;
    #[cfg(feature = "x509")]
    certificate()?;
    ed25519(&provider, session_id, &th)?;
    // An already-joined device opening a setup network on the server's order, signed with the
    // server's key (pinned here for the order role) and addressed to the device's own key.
    #[cfg(feature = "provisioner")]
    crate::provisioner::run(&provider, &server, &device)?;
    // A whole setup through the device session, as a firmware drives it.
    #[cfg(feature = "device")]
    crate::device::run(&provider, &server, &device)?;
    // A whole flow-2 handoff between a joiner and a sponsor (the device key as the sponsor's).
    #[cfg(feature = "peer")]
    crate::peer::run(&provider, &server, &device)?;
    // Flow-1 messages through a DNS tunnel, as a device on a DNS-only network carries them.
    #[cfg(feature = "dns")]
    crate::dns::run()?;
    // Both flows' largest message each way between a device's GATT peripheral and a central.
    #[cfg(feature = "ble")]
    crate::ble::run()?;
    Ok(())
}

/// A deterministic RNG for the check (the figures must not vary between runs): SHA-256 of a
/// counter. Devices use their hardware RNG.
pub(crate) struct CounterRng(pub(crate) u64);

impl rand_core::TryRng for CounterRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(32) {
            self.0 += 1;
            let block = sha2::Sha256::digest(self.0.to_le_bytes());
            for (to, from) in chunk.iter_mut().zip(block.iter()) {
                *to = *from;
            }
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for CounterRng {}

/// The device's per-session key receives two credentials sealed by the server (HPKE, the
/// negotiated P-256 suite, the transcript as associated data) and opens them in order.
fn sealing(suite: CipherSuite, th: &TranscriptHash) -> Check {
    let mut rng = CounterRng(0);
    let device = SessionKeyPair::generate(suite, &mut rng).map_err(|_| Step::Seal)?;
    let messages: [&[u8]; 2] = [b"passphrase of home-5g", b"passphrase of home-2g"];
    let sealed = seal_to(
        suite,
        device.public_key(),
        b"zerotouch check",
        &th.0,
        &messages,
        &mut rng,
    )
    .map_err(|_| Step::Seal)?;
    let cts: Vec<&[u8]> = sealed.ciphertexts.iter().map(Vec::as_slice).collect();
    let opened = device
        .open(&sealed.encapsulated_key, b"zerotouch check", &th.0, &cts)
        .map_err(|_| Step::Seal)?;
    ensure(
        opened.len() == 2 && opened.iter().zip(messages).all(|(o, m)| o.as_slice() == m),
        Step::Seal,
    )?;
    ensure(
        device
            .open(
                &sealed.encapsulated_key,
                b"zerotouch check",
                &[0u8; 32],
                &cts,
            )
            .is_err(),
        Step::SealWrongTranscriptAccepted,
    )
}

/// The server signs its proof; the device decodes it and verifies it against its pinned keys.
fn server_proof(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    pinned: &PinnedKeys,
    session_id: SessionId,
    th: &TranscriptHash,
) -> Check {
    let hdr = header(MessageTag::ServerProof, session_id, 0);
    let payload = b"server proof payload";
    let wire = sign_message(
        hdr,
        KeyRole::SetupSigning,
        th,
        payload.to_vec(),
        server,
        provider,
    )
    .map_err(|_| Step::SignServerProof)?
    .encode();

    let envelope = decode_signed(&wire, &hdr, Step::DecodeServerProof)?;
    let body = signed_body(&envelope).ok_or(Step::DecodeServerProof)?;
    ensure(body.key_id() == &server.key_id(), Step::DecodeServerProof)?;
    ensure(
        body.algorithm() == SignatureAlgorithm::EcdsaP256Sha256,
        Step::DecodeServerProof,
    )?;
    let verified = body
        .verify_trusted(
            &envelope.header,
            KeyRole::SetupSigning,
            th,
            pinned,
            provider,
        )
        .map_err(|_| Step::VerifyServerProof)?;
    ensure(verified == payload, Step::VerifyServerProof)?;

    // The same message under another transcript must fail.
    let mut other = Transcript::resume(*th);
    other.absorb(
        provider,
        zerotouch_core::TranscriptField::Message,
        b"something else",
    );
    let wrong = body.verify_trusted(
        &envelope.header,
        KeyRole::SetupSigning,
        &other.hash(),
        pinned,
        provider,
    );
    ensure(
        wrong == Err(SignatureError::Invalid),
        Step::WrongTranscriptAccepted,
    )?;

    // One flipped bit in the signature (the envelope's last byte) must fail.
    let mut tampered = wire.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0x01;
    }
    let envelope = decode_signed(&tampered, &hdr, Step::TamperedAccepted)?;
    let body = signed_body(&envelope).ok_or(Step::TamperedAccepted)?;
    let result = body.verify_trusted(
        &envelope.header,
        KeyRole::SetupSigning,
        th,
        pinned,
        provider,
    );
    ensure(
        result == Err(SignatureError::Invalid),
        Step::TamperedAccepted,
    )?;

    // Stock COSE: ES256 is ECDSA P-256 over SHA-256 of the Sig_structure.
    let (tbs, signature) =
        stock_cose(&wire, &hdr, KeyRole::SetupSigning, th).ok_or(Step::IndependentCose)?;
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(server.public_key().raw_bytes())
        .map_err(|_| Step::IndependentCose)?;
    let sig = p256::ecdsa::Signature::from_slice(&signature).map_err(|_| Step::IndependentCose)?;
    let digest = sha2::Sha256::digest(&tbs);
    vk.verify_prehash(&digest, &sig)
        .map_err(|_| Step::IndependentCose)?;
    Ok(())
}

/// The device proves its key the way a secure element would: the session emits a sign
/// request, the signer answers, the session checks the answer; the server then verifies.
fn device_proof(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    device: &SoftwareSigner,
    session_id: SessionId,
    th: &TranscriptHash,
) -> Check {
    let hdr = header(MessageTag::CredentialRequest, session_id, 1);
    let pending = PendingSignature::new(
        hdr,
        KeyRole::DeviceIdentity,
        th,
        th.0.to_vec(),
        device.key_id(),
        device.algorithm(),
        provider,
    )
    .map_err(|_| Step::PendingSignature)?;
    ensure(
        pending.request().key_id == device.key_id(),
        Step::PendingSignature,
    )?;

    // A signature from the wrong key (a swapped secure element) is caught on the device.
    let wrong = server
        .sign(&pending.request().tbs)
        .map_err(|_| Step::SignRequest)?;
    let refused = pending
        .clone()
        .complete(wrong, device.public_key(), provider);
    ensure(refused.is_err(), Step::WrongResponseAccepted)?;

    let signature = pending
        .request()
        .sign_with(device)
        .map_err(|_| Step::SignRequest)?;
    let wire = pending
        .complete(signature, device.public_key(), provider)
        .map_err(|_| Step::CompleteSignature)?
        .encode();

    let envelope = decode_signed(&wire, &hdr, Step::VerifyDeviceProof)?;
    let body = signed_body(&envelope).ok_or(Step::VerifyDeviceProof)?;
    let payload = body
        .verify(
            &envelope.header,
            KeyRole::DeviceIdentity,
            th,
            device.public_key(),
            provider,
        )
        .map_err(|_| Step::VerifyDeviceProof)?;
    ensure(bool::from(payload.ct_eq(&th.0)), Step::VerifyDeviceProof)?;

    // The role is signed: the same signature does not pass as another role's.
    let other_role = body.verify(
        &envelope.header,
        KeyRole::SetupSigning,
        th,
        device.public_key(),
        provider,
    );
    ensure(other_role.is_err(), Step::WrongRoleAccepted)?;
    Ok(())
}

/// An error message in a plain envelope, encoded and decoded through the `Message` trait.
fn error_message(session_id: SessionId) -> Check {
    let msg = ErrorMessage {
        code: ErrorCode::UnsupportedVersion,
        retry_after_s: 30,
        supported_versions: SUPPORTED_VERSIONS.to_vec(),
    };
    let hdr = header(ErrorMessage::TAG, session_id, 2);
    let wire = Envelope::plain(hdr, msg.encode_body())
        .map_err(|_| Step::ErrorMessage)?
        .encode();
    let envelope = Envelope::decode(&wire).map_err(|_| Step::ErrorMessage)?;
    ensure(envelope.header == hdr, Step::ErrorMessage)?;
    let Body::Plain(bytes) = &envelope.body else {
        return Err(Step::ErrorMessage);
    };
    let decoded = ErrorMessage::decode_body(bytes).map_err(|_| Step::ErrorMessage)?;
    ensure(decoded == msg, Step::ErrorMessage)
}

/// The barcode payload printed on the box: encode, decode (also typed in lower case), and a
/// mistyped character caught by the check character.
#[cfg(feature = "barcode")]
fn barcode(device_public: &PublicKey) -> Check {
    use zerotouch_core::{BarcodeError, BarcodePayload, KeyFingerprint, Pin};
    let key_id = device_public.key_id();
    let payload = BarcodePayload {
        fingerprint: KeyFingerprint::of(&key_id, KeyFingerprint::MIN_LEN)
            .map_err(|_| Step::Barcode)?,
        device_type: 7,
        product_number: String::from("B07XJ8C8F5"),
        pin: Some(Pin::new("482915").map_err(|_| Step::Barcode)?),
    };
    let text = payload.encode();
    let decoded = BarcodePayload::decode(&text).map_err(|_| Step::Barcode)?;
    ensure(decoded == payload, Step::Barcode)?;
    ensure(decoded.fingerprint.matches(&key_id), Step::Barcode)?;
    let typed = BarcodePayload::decode(&text.to_ascii_lowercase()).map_err(|_| Step::Barcode)?;
    ensure(typed == payload, Step::Barcode)?;
    // The fingerprint field is plain RFC 4648 base32 of the key id's first bytes.
    let field = text.split('/').nth(1).ok_or(Step::Barcode)?;
    let fp = data_encoding::BASE32_NOPAD
        .decode(field.as_bytes())
        .map_err(|_| Step::Barcode)?;
    ensure(key_id.starts_with(&fp), Step::Barcode)?;
    // "ZT1/" + fingerprint + "/" + "7" + "/": the first character of the product number.
    let at = 4 + field.len() + 1 + 1 + 1;

    // A typo in the product number: swap its first character for another.
    let mut typo = text.into_bytes();
    let c = typo.get_mut(at).ok_or(Step::Barcode)?;
    *c = if *c == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).map_err(|_| Step::Barcode)?;
    ensure(
        BarcodePayload::decode(&typo) == Err(BarcodeError::CheckMismatch),
        Step::BarcodeTypoAccepted,
    )
}

/// The device certificate: parse it, and compare its key and serial with x509-cert and spki
/// read directly.
#[cfg(feature = "x509")]
fn certificate() -> Check {
    use der::Decode as _;
    use zerotouch_core::DeviceCertificate;
    let cert = DeviceCertificate::from_der(DEVICE_CERT).map_err(|_| Step::Certificate)?;
    ensure(cert.der() == DEVICE_CERT, Step::CertificateContents)?;
    ensure(
        cert.public_key().algorithm() == SignatureAlgorithm::EcdsaP256Sha256,
        Step::CertificateContents,
    )?;
    let spki_key =
        PublicKey::from_spki_der(DEVICE_CERT_SPKI).map_err(|_| Step::CertificateContents)?;
    ensure(cert.public_key() == &spki_key, Step::CertificateContents)?;
    ensure(
        cert.public_key().to_spki_der() == DEVICE_CERT_SPKI,
        Step::CertificateContents,
    )?;
    let id: [u8; 32] = sha2::Sha256::digest(DEVICE_CERT_SPKI).into();
    ensure(
        bool::from(cert.key_id().0.ct_eq(&id)),
        Step::CertificateContents,
    )?;

    let parsed =
        x509_cert::Certificate::from_der(DEVICE_CERT).map_err(|_| Step::CertificateContents)?;
    ensure(
        parsed.tbs_certificate().serial_number().as_bytes() == cert.serial_number(),
        Step::CertificateContents,
    )?;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(DEVICE_CERT_SPKI)
        .map_err(|_| Step::CertificateContents)?;
    ensure(
        spki.subject_public_key.as_bytes() == Some(cert.public_key().raw_bytes()),
        Step::CertificateContents,
    )
}

/// Without the `ed25519` feature the core must refuse Ed25519 keys rather than half-support
/// them.
#[cfg(not(feature = "ed25519"))]
fn ed25519(_: &RustCryptoProvider, _: SessionId, _: &TranscriptHash) -> Check {
    use zerotouch_core::KeyError;
    let refused = SigningKey::from_secret_bytes(SignatureAlgorithm::Ed25519, &[0x33; 32]);
    ensure(
        matches!(refused, Err(KeyError::UnsupportedAlgorithm)),
        Step::Ed25519Key,
    )?;
    // Nor can such a build pin an Ed25519 public key it could never verify with.
    ensure(
        matches!(
            PublicKey::ed25519([0x33; 32]),
            Err(KeyError::UnsupportedAlgorithm)
        ),
        Step::Ed25519Key,
    )
}

/// With the `ed25519` feature: a revocation verdict signed with Ed25519, verified against a
/// pinned key, a tampered copy refused, and ed25519-dalek alone agreeing.
#[cfg(feature = "ed25519")]
fn ed25519(provider: &RustCryptoProvider, session_id: SessionId, th: &TranscriptHash) -> Check {
    let secret = zeroize::Zeroizing::new(VERDICT_SECRET);
    let key = SigningKey::from_secret_bytes(SignatureAlgorithm::Ed25519, &secret)
        .map_err(|_| Step::Ed25519Key)?;
    let signer = SoftwareSigner::new(key);
    ensure(
        signer.algorithm() == SignatureAlgorithm::Ed25519,
        Step::Ed25519Key,
    )?;
    let pinned = PinnedKeys::new(alloc::vec![PinnedKey::new(
        KeyRole::RevocationVerdict,
        signer.public_key().clone(),
    )]);

    let hdr = header(MessageTag::RevocationVerdict, session_id, 3);
    let payload = b"verdict: not revoked";
    let wire = sign_message(
        hdr,
        KeyRole::RevocationVerdict,
        th,
        payload.to_vec(),
        &signer,
        provider,
    )
    .map_err(|_| Step::Ed25519Key)?
    .encode();
    let envelope = decode_signed(&wire, &hdr, Step::Ed25519Verify)?;
    let body = signed_body(&envelope).ok_or(Step::Ed25519Verify)?;
    ensure(
        body.algorithm() == SignatureAlgorithm::Ed25519,
        Step::Ed25519Verify,
    )?;
    let verified = body
        .verify_trusted(
            &envelope.header,
            KeyRole::RevocationVerdict,
            th,
            &pinned,
            provider,
        )
        .map_err(|_| Step::Ed25519Verify)?;
    ensure(verified == payload, Step::Ed25519Verify)?;

    let mut tampered = wire.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0x01;
    }
    let envelope = decode_signed(&tampered, &hdr, Step::Ed25519TamperedAccepted)?;
    let body = signed_body(&envelope).ok_or(Step::Ed25519TamperedAccepted)?;
    let result = body.verify_trusted(
        &envelope.header,
        KeyRole::RevocationVerdict,
        th,
        &pinned,
        provider,
    );
    ensure(
        result == Err(SignatureError::Invalid),
        Step::Ed25519TamperedAccepted,
    )?;

    // Stock COSE: EdDSA signs the Sig_structure bytes themselves.
    let (tbs, signature) =
        stock_cose(&wire, &hdr, KeyRole::RevocationVerdict, th).ok_or(Step::Ed25519Independent)?;
    let raw: [u8; 32] = signer
        .public_key()
        .raw_bytes()
        .try_into()
        .map_err(|_| Step::Ed25519Independent)?;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|_| Step::Ed25519Independent)?;
    let sig =
        ed25519_dalek::Signature::from_slice(&signature).map_err(|_| Step::Ed25519Independent)?;
    vk.verify_strict(&tbs, &sig)
        .map_err(|_| Step::Ed25519Independent)
}
