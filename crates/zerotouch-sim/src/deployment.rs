//! The cloud side of a simulation: the setup service over a store holding accounts, their
//! networks, the fixture devices and a registrar, with the server keys a device pins.

use zerotouch_core::{
    BarcodePayload, Instant, KeyFingerprint, KeyId, KeyRole, Passphrase, PinnedKey, PinnedKeys,
    ServerKeyRing, SignatureAlgorithm, Signer, SigningKey, SoftwareSigner,
};
use zerotouch_server::{ReassociationProof, ServiceConfig, SetupService};
use zerotouch_store::{
    AccountId, Bands, NewNetwork, RegistrarCredential, RegistrarId, SecurityType, Store,
};
use zerotouch_store_suite::fixtures;

use crate::SimError;

/// When the deployment's records were made: a Unix time in milliseconds.
pub const EPOCH: Instant = Instant(1_700_000_000_000);

/// The server's signing keys, by role: two setup keys and the revocation-verdict key.
pub const SETUP_KEY_SEEDS: [u8; 2] = [0xa1, 0xa2];
/// The revocation-verdict key's seed.
pub const REVOCATION_KEY_SEED: u8 = 0xa3;

/// A server signing key from a seed byte.
pub fn server_signer(seed: u8) -> Result<SoftwareSigner, SimError> {
    Ok(SoftwareSigner::new(SigningKey::from_secret_bytes(
        SignatureAlgorithm::EcdsaP256Sha256,
        &[seed; 32],
    )?))
}

/// The server's key ring and the keys a device's firmware pins.
pub fn server_keys() -> Result<(ServerKeyRing<SoftwareSigner>, PinnedKeys), SimError> {
    let mut ring = ServerKeyRing::new();
    let mut pinned = Vec::new();
    let roles = [
        (KeyRole::SetupSigning, SETUP_KEY_SEEDS[0]),
        (KeyRole::SetupSigning, SETUP_KEY_SEEDS[1]),
        (KeyRole::RevocationVerdict, REVOCATION_KEY_SEED),
    ];
    for (role, seed) in roles {
        let s = server_signer(seed)?;
        pinned.push(PinnedKey::new(role, s.public_key().clone()));
        ring.add(role, s)?;
    }
    Ok((ring, PinnedKeys::new(pinned)))
}

/// The label printed on fixture device `seed`.
pub fn label(seed: u8) -> Result<BarcodePayload, SimError> {
    let d = fixtures::device(seed);
    Ok(BarcodePayload {
        fingerprint: KeyFingerprint::of(&d.key_id, 16).map_err(zerotouch_core::Error::from)?,
        device_type: d.device_type,
        product_number: d.product_number,
        pin: None,
    })
}

/// The setup service and the records it serves from.
pub struct Deployment<St> {
    /// The service under test.
    pub service: SetupService<St, SoftwareSigner>,
    /// What every device pins.
    pub pinned: PinnedKeys,
    /// The registrar that registers devices (a shop's scanner).
    pub registrar: RegistrarId,
    /// The key ids of the server's keys: setup keys first, then the revocation key.
    pub key_ids: [KeyId; 3],
}

impl<St: Store> Deployment<St> {
    /// A deployment on a fresh `store`: the server keys, fixture devices 1 to 8 (each with
    /// PIN [`fixtures::PIN`]) and a registrar; accounts and networks are the simulation's to
    /// add.
    pub async fn new(store: St, config: ServiceConfig) -> Result<Self, SimError> {
        let (ring, _) = server_keys()?;
        for k in ring.keys() {
            store
                .add_server_key(k.role, k.signer.public_key().clone(), EPOCH)
                .await?;
        }
        store
            .import_devices((1..=8).map(fixtures::device).collect())
            .await?;
        let registrar = store
            .add_registrar("shop", RegistrarCredential::ApiTokenHash([9; 32]), EPOCH)
            .await?;
        Self::reopen(store, config, registrar)
    }

    /// The deployment after a restart: a service over `store`, which already holds the
    /// records [`new`](Self::new) made.
    pub fn reopen(
        store: St,
        config: ServiceConfig,
        registrar: RegistrarId,
    ) -> Result<Self, SimError> {
        let (ring, pinned) = server_keys()?;
        let key_ids = [
            server_signer(SETUP_KEY_SEEDS[0])?.key_id(),
            server_signer(SETUP_KEY_SEEDS[1])?.key_id(),
            server_signer(REVOCATION_KEY_SEED)?.key_id(),
        ];
        Ok(Deployment {
            service: SetupService::new(store, ring, config),
            pinned,
            registrar,
            key_ids,
        })
    }

    /// Opens an account.
    pub async fn add_account(&self, name: &str) -> Result<AccountId, SimError> {
        Ok(self.service.store().create_account(name, EPOCH).await?)
    }

    /// Records a network of `account`.
    pub async fn add_network(
        &self,
        account: AccountId,
        ssid: &str,
        passphrase: &[u8],
        security: SecurityType,
        bands: Bands,
    ) -> Result<(), SimError> {
        let network = NewNetwork {
            account,
            ssid: ssid.as_bytes().to_vec(),
            passphrase: Passphrase::new(passphrase)?,
            security,
            bands,
        };
        self.service.store().add_network(network, EPOCH).await?;
        Ok(())
    }

    /// Registers fixture device `seed` to `account`, as a shop scanning its label does.
    pub async fn register(&self, seed: u8, account: AccountId) -> Result<(), SimError> {
        self.service
            .register_device(
                self.registrar,
                &label(seed)?,
                account,
                ReassociationProof::None,
                EPOCH,
            )
            .await?;
        Ok(())
    }
}
