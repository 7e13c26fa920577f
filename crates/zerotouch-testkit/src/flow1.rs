//! A flow-1 deployment for a binding's end-to-end tests: the setup service over any store with
//! fixture device 1 registered to an account that has a home network, the device's session on
//! the binding's transport, and a radio that sees the home network.

use std::path::Path;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::{
    BarcodePayload, CipherSuite, Instant, KeyFingerprint, KeyRole, Passphrase, Pin, PinnedKey,
    PinnedKeys, ServerKeyRing, SignatureAlgorithm, Signer, SigningKey, SoftwareSigner, Transport,
};
use zerotouch_device::{
    DeviceConfig, DeviceSession, JoinFailure, JoinResult, MemoryDeviceState, RetryPolicy, Trigger,
};
use zerotouch_device_tokio::{DeviceRun, DriveError, Exchange, Radio, drive};
use zerotouch_server::{ReassociationProof, ServiceConfig, SetupService};
use zerotouch_store::{RegistrarCredential, SqliteOptions, SqliteStore, StaticDataKey, Store};
use zerotouch_store_suite::fixtures;

/// When the deployment was made.
pub const T0: Instant = Instant(1_700_000_000_000);

/// A P-256 signer from a seed byte.
///
/// # Panics
/// Never for the seeds used here (any non-zero byte is a valid scalar).
#[allow(clippy::expect_used)]
pub fn signer(seed: u8) -> SoftwareSigner {
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[seed; 32])
            .expect("a valid P-256 scalar"),
    )
}

/// The setup server's keys, the same every call (a second "process" signs with the same keys).
///
/// # Panics
/// Never: the two roles differ.
#[allow(clippy::expect_used)]
pub fn ring() -> ServerKeyRing<SoftwareSigner> {
    let mut ring = ServerKeyRing::new();
    ring.add(KeyRole::SetupSigning, signer(0xa1))
        .expect("a new role");
    ring.add(KeyRole::RevocationVerdict, signer(0xa3))
        .expect("a new role");
    ring
}

/// What the device's firmware pins: the public halves of [`ring`].
pub fn pinned() -> PinnedKeys {
    PinnedKeys::new(
        ring()
            .keys()
            .iter()
            .map(|k| PinnedKey::new(k.role, k.signer.public_key().clone()))
            .collect(),
    )
}

/// A fresh embedded store in `dir`.
///
/// # Panics
/// When SQLite cannot open it.
#[allow(clippy::expect_used)]
pub async fn sqlite_store(dir: &Path) -> SqliteStore {
    SqliteStore::open(
        dir.join("zerotouch.db"),
        &StaticDataKey([7; 32]),
        SqliteOptions::default(),
    )
    .await
    .expect("opening the SQLite store")
}

/// The setup service over `store`, after it was given [`ring`]'s public keys, an account with
/// the home network, fixture device 1 and a registrar that registered the device's label to
/// the account (with the device's PIN on the label when `pin_on_label`, so the server asks the
/// device to prove it).
///
/// # Panics
/// When the store refuses any of it.
#[allow(clippy::expect_used)]
pub async fn registered_service<St: Store + Clone>(
    store: St,
    pin_on_label: bool,
) -> SetupService<St, SoftwareSigner> {
    for k in ring().keys() {
        store
            .add_server_key(k.role, k.signer.public_key().clone(), T0)
            .await
            .expect("adding a server key");
    }
    let account = store.create_account("owner", T0).await.expect("an account");
    store
        .add_network(fixtures::network(account, "home"), T0)
        .await
        .expect("the home network");
    store
        .import_devices(vec![fixtures::device(1)])
        .await
        .expect("importing fixture device 1");
    let registrar = store
        .add_registrar("shop", RegistrarCredential::ApiTokenHash([9; 32]), T0)
        .await
        .expect("a registrar");
    let service = SetupService::new(store, ring(), ServiceConfig::default());
    let d = fixtures::device(1);
    let label = BarcodePayload {
        fingerprint: KeyFingerprint::of(&d.key_id, 16).expect("a fingerprint"),
        device_type: d.device_type,
        product_number: d.product_number,
        pin: pin_on_label.then(|| Pin::new(fixtures::PIN).expect("the fixture PIN")),
    };
    service
        .register_device(registrar, &label, account, ReassociationProof::None, T0)
        .await
        .expect("registering fixture device 1");
    service
}

/// Fixture device 1, with its PIN, speaking flow 1 over `transport` on both networks.
///
/// # Panics
/// Never for the fixture's configuration.
#[allow(clippy::expect_used)]
pub fn device(
    transport: Transport,
    retry: RetryPolicy,
) -> DeviceSession<SoftwareSigner, MemoryDeviceState> {
    let key = SoftwareSigner::new(fixtures::device_key(1));
    let config = DeviceConfig {
        transport,
        home_transport: transport,
        identity: DeviceIdentityRef::PublicKey(key.public_key().to_spki_der()),
        pin: Some(Pin::new(fixtures::PIN).expect("the fixture PIN")),
        radio_bands: 3,
        radio_security: 3,
        suites: CipherSuite::SUPPORTED.to_vec(),
        retry,
    };
    DeviceSession::new(config, pinned(), key, MemoryDeviceState::new())
        .expect("a valid device configuration")
}

/// A radio that sees the home network and joins it only with the right passphrase.
#[derive(Debug, Default)]
pub struct HomeRadio {
    /// The passphrase it was given, if any.
    pub passphrase: Option<Vec<u8>>,
}

impl Radio for HomeRadio {
    async fn scan(&mut self) -> Vec<ReportedNetwork> {
        vec![ReportedNetwork {
            ssid: b"home".to_vec(),
            signal_loss_db: 40,
            band: 2,
            channel: 36,
            security: 2,
        }]
    }

    async fn join(&mut self, ssid: &[u8], _security: u8, passphrase: &Passphrase) -> JoinResult {
        self.passphrase = Some(passphrase.expose_secret().to_vec());
        if ssid == b"home" && passphrase.expose_secret() == fixtures::PASSPHRASE {
            JoinResult::Joined
        } else {
            JoinResult::Failed(JoinFailure::WrongPassphrase)
        }
    }

    async fn leave(&mut self) {}
}

/// Runs `session` through flow 1 over `exchange` from its first boot (bounded to 60 s), with
/// an RNG seeded by `seed`; returns the run and the radio it used.
pub async fn provision<X: Exchange>(
    mut session: DeviceSession<SoftwareSigner, MemoryDeviceState>,
    exchange: &mut X,
    seed: u64,
) -> (Result<DeviceRun, DriveError>, HomeRadio) {
    let mut radio = HomeRadio::default();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let run = drive(
        &mut session,
        Trigger::FirstBoot,
        exchange,
        &mut radio,
        &mut rng,
        Duration::from_secs(60),
    )
    .await;
    (run, radio)
}
