//! A world for the setup-service tests: a store with an account, networks, a device, a
//! registrar and server keys; and the device side built from the core's primitives
//! (`zerotouch_testkit::raw_client`), so tests can send what a correct device sends, and
//! anything else.
#![allow(dead_code)]

pub mod association;
pub mod drive;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::flow1::*;
use zerotouch_core::*;
use zerotouch_server::*;
use zerotouch_store::*;
use zerotouch_store_suite::fixtures;
// The hand-driven device, shared with the command line's multi-process tests (not every
// test binary uses every name).
#[allow(unused_imports)]
pub use zerotouch_testkit::raw_client::{Client, code_of, error_of, fresh};

pub const P: RustCryptoProvider = RustCryptoProvider;
pub const T0: Instant = Instant(1_700_000_000_000);
pub const PASSPHRASE: &[u8] = fixtures::PASSPHRASE;

pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
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
