//! A world for the setup-service tests: a store with an account, networks, a device, a
//! registrar and server keys; and a device side built from the core's primitives, so tests
//! can send what a correct device sends, and anything else.
#![allow(dead_code)]

pub mod association;
pub mod drive;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;
use zerotouch_core::flow1::binding::{CREDENTIALS_INFO, REPORT_INFO, seal_aad};
use zerotouch_core::flow1::*;
use zerotouch_core::*;
use zerotouch_server::*;
use zerotouch_store::*;
use zerotouch_store_suite::fixtures;

pub const P: RustCryptoProvider = RustCryptoProvider;
pub const T0: Instant = Instant(1_700_000_000_000);
pub const PASSPHRASE: &[u8] = fixtures::PASSPHRASE;

pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// A differently seeded RNG on every call: the server draws nonces from it, and a repeated
/// nonce is (rightly) a store conflict.
pub fn fresh() -> ChaCha20Rng {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    ChaCha20Rng::seed_from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
}

pub fn signer(seed: u8) -> SoftwareSigner {
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[seed; 32]).unwrap(),
    )
}

pub type Service<St> = SetupService<St, SoftwareSigner>;

/// Everything a test needs to know about the world it runs in.
pub struct World<St> {
    pub service: Service<St>,
    pub account: AccountId,
    pub other_account: AccountId,
    pub registrar: RegistrarId,
    pub device_seed: u8,
    pub setup_key: KeyId,
    pub second_setup_key: KeyId,
    pub revocation_key: KeyId,
    pub pinned: PinnedKeys,
}

pub fn ring() -> (ServerKeyRing<SoftwareSigner>, PinnedKeys) {
    let mut ring = ServerKeyRing::new();
    let mut pinned = Vec::new();
    for (role, seed) in [
        (KeyRole::SetupSigning, 0xa1),
        (KeyRole::SetupSigning, 0xa2),
        (KeyRole::RevocationVerdict, 0xa3),
    ] {
        let s = signer(seed);
        pinned.push(PinnedKey::new(role, s.public_key().clone()));
        ring.add(role, s).unwrap();
    }
    (ring, PinnedKeys::new(pinned))
}

/// A world on `store`: one device (seed 1, PIN `fixtures::PIN`) registered to `account`,
/// which has networks "home" (WPA3, both bands) and "home-2g" (WPA2, 2.4 GHz only);
/// `other_account` has "neighbour".
pub async fn world_on<St: Store>(store: St, config: ServiceConfig) -> World<St> {
    let (ring, pinned) = ring();
    let setup_key = ring.keys()[0].signer.key_id();
    let second_setup_key = ring.keys()[1].signer.key_id();
    let revocation_key = ring.keys()[2].signer.key_id();
    for k in ring.keys() {
        store
            .add_server_key(k.role, k.signer.public_key().clone(), T0)
            .await
            .unwrap();
    }
    let account = store.create_account("owner", T0).await.unwrap();
    let other_account = store.create_account("neighbour", T0).await.unwrap();
    store
        .add_network(fixtures::network(account, "home"), T0)
        .await
        .unwrap();
    store
        .add_network(
            NewNetwork {
                account,
                ssid: b"home-2g".to_vec(),
                passphrase: Passphrase::new(b"two point four only").unwrap(),
                security: SecurityType::Wpa2Personal,
                bands: Bands::GHZ_2_4,
            },
            T0,
        )
        .await
        .unwrap();
    store
        .add_network(fixtures::network(other_account, "neighbour"), T0)
        .await
        .unwrap();
    store
        .import_devices(vec![fixtures::device(1), fixtures::device(2)])
        .await
        .unwrap();
    let registrar = store
        .add_registrar("shop", RegistrarCredential::ApiTokenHash([9; 32]), T0)
        .await
        .unwrap();
    let service = SetupService::new(store, ring, config);
    service
        .register_device(
            registrar,
            &label(1, false),
            account,
            ReassociationProof::None,
            T0,
        )
        .await
        .unwrap();
    World {
        service,
        account,
        other_account,
        registrar,
        device_seed: 1,
        setup_key,
        second_setup_key,
        revocation_key,
        pinned,
    }
}

pub async fn world(config: ServiceConfig) -> World<MemoryStore> {
    world_on(MemoryStore::new(), config).await
}

/// The label of fixture device `seed`, with or without its PIN.
pub fn label(seed: u8, with_pin: bool) -> BarcodePayload {
    let d = fixtures::device(seed);
    BarcodePayload {
        fingerprint: KeyFingerprint::of(&d.key_id, 16).unwrap(),
        device_type: d.device_type,
        product_number: d.product_number,
        pin: with_pin.then(|| Pin::new(fixtures::PIN).unwrap()),
    }
}

pub fn direct() -> TransportIdentity {
    TransportIdentity::Direct {
        transport: Transport::Dns,
        client_key: None,
    }
}

/// The error message in a response, if it is one.
pub fn error_of(bytes: &[u8]) -> Option<ErrorMessage> {
    let env = Envelope::decode(bytes).ok()?;
    if env.header.tag != MessageTag::Error {
        return None;
    }
    let Body::Plain(b) = env.body else {
        return None;
    };
    ErrorMessage::decode_body(&b).ok()
}

pub fn code_of(bytes: &[u8]) -> Option<ErrorCode> {
    error_of(bytes).map(|e| e.code)
}

/// A network sighting.
pub fn seen(ssid: &str, loss: u8, band: u8, security: u8) -> ReportedNetwork {
    ReportedNetwork {
        ssid: ssid.as_bytes().to_vec(),
        signal_loss_db: loss,
        band,
        channel: if band == 1 { 6 } else { 36 },
        security,
    }
}

/// A report of both home networks from a dual-band WPA2/WPA3 radio.
pub fn report(pin: Option<&str>) -> DeviceReport {
    DeviceReport {
        pin: pin.map(|p| Pin::new(p).unwrap()),
        networks: vec![seen("home", 40, 2, 2), seen("home-2g", 55, 1, 1)],
        radio_bands: 3,
        radio_security: 3,
    }
}

/// A device speaking flow 1 by hand.
pub struct Client {
    pub key: SoftwareSigner,
    pub identity: DeviceIdentityRef,
    pub trusted: Vec<KeyId>,
    pub transport: Transport,
    pub sid: SessionId,
    pub suites: Vec<CipherSuite>,
    pub hello_body: Vec<u8>,
    pub transcript: Option<SetupTranscript>,
    pub proof: Option<ServerProof>,
    pub proof_key: Option<KeyId>,
    pub session_key: Option<SessionKeyPair>,
    pub rng: ChaCha20Rng,
}

impl Client {
    pub fn new(seed: u8, pinned: &PinnedKeys) -> Self {
        let key = SoftwareSigner::new(fixtures::device_key(seed));
        let mut rng = fresh();
        Client {
            identity: DeviceIdentityRef::PublicKey(key.public_key().to_spki_der()),
            key,
            trusted: pinned.trusted_key_ids(KeyRole::SetupSigning),
            transport: Transport::Dns,
            sid: SessionId::random(&mut rng),
            suites: CipherSuite::SUPPORTED.to_vec(),
            hello_body: Vec::new(),
            transcript: None,
            proof: None,
            proof_key: None,
            session_key: None,
            rng,
        }
    }

    /// Starts a fresh session and returns the hello's bytes.
    pub fn hello(&mut self) -> Vec<u8> {
        self.sid = SessionId::random(&mut self.rng);
        let hello = Hello {
            versions: vec![ProtocolVersion::V1],
            suites: self.suites.clone(),
            identity: self.identity.clone(),
            trusted_keys: self.trusted.clone(),
            device_nonce: Nonce::random(&mut self.rng),
        };
        self.hello_body = hello.encode_body();
        self.transcript = Some(SetupTranscript::after_hello(
            &P,
            self.transport,
            &self.sid,
            &self.hello_body,
        ));
        Envelope::plain(header(MessageTag::Hello, self.sid), self.hello_body.clone())
            .unwrap()
            .encode()
    }

    /// Verifies the server proof against `pinned` and absorbs it.
    pub fn accept_proof(&mut self, bytes: &[u8], pinned: &PinnedKeys) -> ServerProof {
        let env = Envelope::decode(bytes).unwrap();
        assert_eq!(
            env.header.tag,
            MessageTag::ServerProof,
            "{:?}",
            error_of(bytes)
        );
        let Body::Signed(s) = &env.body else { panic!() };
        let t = self.transcript.as_mut().unwrap();
        let payload = s
            .verify_trusted(&env.header, KeyRole::SetupSigning, &t.hash(), pinned, &P)
            .unwrap()
            .to_vec();
        t.absorb_proof(&P, &payload);
        self.proof_key = Some(*s.key_id());
        let proof = ServerProof::decode_body(&payload).unwrap();
        self.proof = Some(proof.clone());
        proof
    }

    /// The credential request sealing `report`, signed by the device key over the transcript.
    /// Does not advance the transcript (see `sent_request`).
    pub fn request_with(&mut self, report: &DeviceReport, signer: &SoftwareSigner) -> Vec<u8> {
        let proof = self.proof.clone().unwrap();
        let t = self.transcript.clone().unwrap();
        let sealed = seal_to(
            proof.suite,
            &proof.sealing_key,
            REPORT_INFO,
            &seal_aad(&t.hash()),
            &[&report.encode()],
            &mut self.rng,
        )
        .unwrap();
        let kp = SessionKeyPair::generate(proof.suite, &mut self.rng).unwrap();
        let request = CredentialRequest {
            session_key: kp.public_key().to_vec(),
            report: SealedReport {
                encapsulated_key: sealed.encapsulated_key,
                ciphertext: sealed.ciphertexts.into_iter().next().unwrap(),
            },
        };
        self.session_key = Some(kp);
        sign_message(
            header(MessageTag::CredentialRequest, self.sid),
            KeyRole::DeviceIdentity,
            &t.hash(),
            request.encode_body(),
            signer,
            &P,
        )
        .unwrap()
        .encode()
    }

    pub fn request(&mut self, report: &DeviceReport) -> Vec<u8> {
        let key = SoftwareSigner::new(self.key.signing_key().clone());
        self.request_with(report, &key)
    }

    /// Verifies a credential response to `request` and opens its sealed entries.
    pub fn open_response(
        &self,
        request: &[u8],
        bytes: &[u8],
        pinned: &PinnedKeys,
    ) -> (CredentialResponse, Vec<Zeroizing<Vec<u8>>>) {
        let env = Envelope::decode(bytes).unwrap();
        assert_eq!(
            env.header.tag,
            MessageTag::CredentialResponse,
            "{:?}",
            error_of(bytes)
        );
        let Body::Signed(s) = &env.body else { panic!() };
        assert_eq!(
            Some(*s.key_id()),
            self.proof_key,
            "signed by the proof's key"
        );
        let req = Envelope::decode(request).unwrap();
        let Body::Signed(rs) = &req.body else {
            panic!()
        };
        let mut t = self.transcript.clone().unwrap();
        // The request payload as sent (the server verified it before absorbing it).
        let rpayload = rs
            .verify(
                &req.header,
                KeyRole::DeviceIdentity,
                &t.hash(),
                self.key.public_key(),
                &P,
            )
            .unwrap()
            .to_vec();
        t.absorb_request(&P, &rpayload);
        let payload = s
            .verify_trusted(&env.header, KeyRole::SetupSigning, &t.hash(), pinned, &P)
            .unwrap();
        let response = CredentialResponse::decode_body(payload).unwrap();
        let cts: Vec<&[u8]> = response
            .entries
            .iter()
            .filter(|e| e.status == EntryStatus::Sealed)
            .map(|e| e.ciphertext.as_slice())
            .collect();
        let opened = if cts.is_empty() {
            Vec::new()
        } else {
            self.session_key
                .as_ref()
                .unwrap()
                .open(
                    &response.encapsulated_key,
                    CREDENTIALS_INFO,
                    &seal_aad(&t.hash()),
                    &cts,
                )
                .unwrap()
        };
        (response, opened)
    }
}

/// Runs hello → proof for `client` against `w`.
pub async fn proof_for<St: Store>(w: &World<St>, client: &mut Client, now: Instant) -> ServerProof {
    let hello = client.hello();
    let bytes = w.service.handle(&hello, &direct(), now, &mut fresh()).await;
    client.accept_proof(&bytes, &w.pinned)
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs the global `tracing` subscriber (every level) writing into a new buffer. Global,
    /// not scoped: a scoped subscriber misses callsites another thread cached first; so one
    /// call per test binary.
    pub fn global() -> Captured {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}
