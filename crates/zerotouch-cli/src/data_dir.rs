//! The server's data directory: the embedded store, the data key, the server's signing keys,
//! its TLS identity, the CAs it trusts and the key that opens factory manifests.
//!
//! ```text
//! DIR/zerotouch.json            settings (the server's name)
//! DIR/zerotouch.db              the embedded store (SQLite, WAL, synchronous=FULL), unless
//!                               the store is PostgreSQL (`--store postgres://…`)
//! DIR/data.key                  the key sealing secrets at rest (0600)
//! DIR/keys/<key id>.pem         private halves of server signing keys (PKCS#8, 0600)
//! DIR/tls/ca.crt.pem            the CA clients check the server against (public)
//! DIR/tls/ca.key.pem            its key (0600), to re-issue the server certificate
//! DIR/tls/server.crt.pem        the server's certificate chain
//! DIR/tls/server.key.pem        its key (0600)
//! DIR/trust/{devices,registrars,provisioners}/*.pem   client CAs per role
//! DIR/manifest-import.key       HPKE key that opens factory manifests' secrets (0600)
//! DIR/manifest-import.pub.json  its public half, for the factory
//! ```

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use zerotouch_core::{
    CipherSuite, KeyId, KeyRole, KeyState, ServerKeyRing, SessionKeyPair, SoftwareSigner,
};
use zerotouch_store::{
    LocalKeyFile, PostgresOptions, PostgresStore, ServerKeyRecord, SqliteOptions, SqliteStore,
};

use crate::CliError;
use crate::key_file::read_signing_key;
use crate::secret_input::{read_text, write_private_file, write_public_file};
use crate::store_location::{OpenedStore, StoreLocation};

/// Which client role a trusted CA issues certificates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustRole {
    /// Device certificates (the manufacturer CA).
    Devices,
    /// Registrar client certificates.
    Registrars,
    /// Provisioner (relay) client certificates.
    Provisioners,
}

impl TrustRole {
    fn dir_name(self) -> &'static str {
        match self {
            TrustRole::Devices => "devices",
            TrustRole::Registrars => "registrars",
            TrustRole::Provisioners => "provisioners",
        }
    }
}

/// Settings kept in `zerotouch.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// The name in the server's certificate, which clients check.
    pub server_name: String,
}

/// The public half of the manifest import key, as the factory reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportPublicKey {
    /// HPKE KEM id.
    pub kem: u16,
    /// HPKE KDF id.
    pub kdf: u16,
    /// HPKE AEAD id.
    pub aead: u16,
    /// The public key, hex.
    pub public_key: String,
}

impl ImportPublicKey {
    /// The suite.
    pub fn suite(&self) -> CipherSuite {
        CipherSuite {
            kem: self.kem,
            kdf: self.kdf,
            aead: self.aead,
        }
    }

    /// The public key bytes.
    pub fn public_key_bytes(&self) -> Result<Vec<u8>, CliError> {
        hex::decode(&self.public_key)
            .map_err(|_| CliError::BadArgument("the import public key is not hex".into()))
    }

    /// Reads it from a JSON file.
    pub fn read(path: &Path) -> Result<Self, CliError> {
        serde_json::from_str(&read_text(path)?)
            .map_err(|e| CliError::BadArgument(format!("{}: {e}", path.display())))
    }
}

/// A data directory at a path, and where its store is.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    store: StoreLocation,
    /// The CA of the PostgreSQL server's certificate: TLS to the database when set.
    store_ca: Option<PathBuf>,
}

impl DataDir {
    /// The data directory at `root` (not touched until used), with the embedded store.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir {
            root: root.into(),
            store: StoreLocation::Embedded,
            store_ca: None,
        }
    }

    /// The same directory with its state kept at `store` instead.
    pub fn with_store(mut self, store: StoreLocation) -> Self {
        self.store = store;
        self
    }

    /// The same directory reaching PostgreSQL over TLS, trusting the CA certificates in
    /// `ca_pem` for the database server's certificate.
    pub fn with_store_ca(mut self, ca_pem: Option<PathBuf>) -> Self {
        self.store_ca = ca_pem;
        self
    }

    /// Where the state is kept.
    pub fn store_location(&self) -> &StoreLocation {
        &self.store
    }

    /// Its path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The settings file.
    pub fn settings_path(&self) -> PathBuf {
        self.root.join("zerotouch.json")
    }
    /// The embedded store's database.
    pub fn database_path(&self) -> PathBuf {
        self.root.join("zerotouch.db")
    }
    /// The data key file.
    pub fn data_key_path(&self) -> PathBuf {
        self.root.join("data.key")
    }
    /// Where server keys' private halves are.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
    /// The private half of server key `id`.
    pub fn server_key_path(&self, id: &KeyId) -> PathBuf {
        self.keys_dir().join(format!("{}.pem", hex::encode(id.0)))
    }
    /// The CA clients check the server against.
    pub fn tls_ca_path(&self) -> PathBuf {
        self.root.join("tls/ca.crt.pem")
    }
    /// That CA's key.
    pub fn tls_ca_key_path(&self) -> PathBuf {
        self.root.join("tls/ca.key.pem")
    }
    /// The server's certificate chain.
    pub fn tls_chain_path(&self) -> PathBuf {
        self.root.join("tls/server.crt.pem")
    }
    /// The server's TLS key.
    pub fn tls_key_path(&self) -> PathBuf {
        self.root.join("tls/server.key.pem")
    }
    /// The directory of CAs trusted for `role`.
    pub fn trust_dir(&self, role: TrustRole) -> PathBuf {
        self.root.join("trust").join(role.dir_name())
    }
    /// The manifest import key.
    pub fn import_key_path(&self) -> PathBuf {
        self.root.join("manifest-import.key")
    }
    /// Its public half.
    pub fn import_public_path(&self) -> PathBuf {
        self.root.join("manifest-import.pub.json")
    }

    /// Creates a new data directory: settings, store and data key, the server's TLS CA and
    /// certificate for `server_name`, and the manifest import key.
    pub async fn init(&self, server_name: &str) -> Result<Settings, CliError> {
        if self.settings_path().exists() {
            return Err(CliError::Exists(self.settings_path()));
        }
        for dir in [
            self.root.clone(),
            self.keys_dir(),
            self.root.join("tls"),
            self.trust_dir(TrustRole::Devices),
            self.trust_dir(TrustRole::Registrars),
            self.trust_dir(TrustRole::Provisioners),
        ] {
            std::fs::create_dir_all(&dir).map_err(CliError::file(&dir))?;
        }
        // Creates the data key (0600) and the schema (or migrates the PostgreSQL database and
        // checks it was made with this data key).
        self.open_store_unchecked().await?;

        let ca = zerotouch_pki::CertificateAuthority::new(
            &format!("{server_name} server CA"),
            zerotouch_core::SignatureAlgorithm::EcdsaP256Sha256,
            zerotouch_pki::Validity::years_from_now(10),
        )?;
        let (ca_pem, ca_key_pem) = ca.to_pem();
        let server = ca.issue_server(&[server_name], zerotouch_pki::Validity::years_from_now(2))?;
        write_public_file(&self.tls_ca_path(), ca_pem.as_bytes())?;
        write_private_file(&self.tls_ca_key_path(), ca_key_pem.as_bytes())?;
        let mut chain = server.certificate_pem();
        chain.push_str(&ca_pem);
        write_public_file(&self.tls_chain_path(), chain.as_bytes())?;
        write_private_file(&self.tls_key_path(), server.private_key_pem().as_bytes())?;

        let mut rng = crate::system_rng()?;
        let suite = CipherSuite::X25519_SHA256_CHACHA20POLY1305;
        let import = SessionKeyPair::generate(suite, &mut rng)
            .map_err(|e| CliError::BadArgument(format!("import key: {e}")))?;
        let private_hex = zeroize::Zeroizing::new(hex::encode(import.private_bytes().as_slice()));
        write_private_file(&self.import_key_path(), private_hex.as_bytes())?;
        let public = ImportPublicKey {
            kem: suite.kem,
            kdf: suite.kdf,
            aead: suite.aead,
            public_key: hex::encode(import.public_key()),
        };
        write_public_file(
            &self.import_public_path(),
            serde_json::to_string_pretty(&public)
                .unwrap_or_default()
                .as_bytes(),
        )?;

        let settings = Settings {
            server_name: server_name.to_owned(),
        };
        write_public_file(
            &self.settings_path(),
            serde_json::to_string_pretty(&settings)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        Ok(settings)
    }

    /// The settings; fails if the directory was never initialised.
    pub fn settings(&self) -> Result<Settings, CliError> {
        let path = self.settings_path();
        if !path.exists() {
            return Err(CliError::NotInitialized(self.root.clone()));
        }
        serde_json::from_str(&read_text(&path)?)
            .map_err(|e| CliError::BadArgument(format!("{}: {e}", path.display())))
    }

    async fn open_store_unchecked(&self) -> Result<OpenedStore, CliError> {
        let keys = LocalKeyFile::new(self.data_key_path());
        Ok(match (&self.store, &self.store_ca) {
            (StoreLocation::Embedded, None) => OpenedStore::Embedded(
                SqliteStore::open(self.database_path(), &keys, SqliteOptions::default()).await?,
            ),
            (StoreLocation::Embedded, Some(_)) => {
                return Err(CliError::BadArgument(
                    "--store-ca is for a PostgreSQL store (--store postgres://…)".into(),
                ));
            }
            (StoreLocation::Postgres(url), ca) => {
                let options = PostgresOptions::default();
                let opened = match ca {
                    None => PostgresStore::connect(url, &keys, options).await,
                    Some(ca) => {
                        let tls = crate::store_location::database_tls(ca)?;
                        PostgresStore::connect_tls(url, &keys, options, tls).await
                    }
                };
                OpenedStore::Postgres(
                    opened.map_err(|e| CliError::StoreOpen(self.store.describe(), e))?,
                )
            }
        })
    }

    /// Opens the embedded store (the demo's), whatever `--store` says.
    pub async fn open_embedded(&self) -> Result<SqliteStore, CliError> {
        self.settings()?;
        let keys = LocalKeyFile::new(self.data_key_path());
        Ok(SqliteStore::open(self.database_path(), &keys, SqliteOptions::default()).await?)
    }

    /// Opens the store: the embedded one, or PostgreSQL with `--store`.
    pub async fn open_store(&self) -> Result<OpenedStore, CliError> {
        self.settings()?;
        self.open_store_unchecked().await
    }

    /// The server's key ring from the store's key records and the private halves in
    /// `keys/`: setup and revocation keys that are not revoked must have their private half
    /// here; revoked keys are never loaded; the type/serial map follows the store.
    pub fn key_ring(
        &self,
        records: &[ServerKeyRecord],
        map: &[zerotouch_core::KeyMapRule],
    ) -> Result<ServerKeyRing<SoftwareSigner>, CliError> {
        let mut ring = ServerKeyRing::new();
        for record in records {
            let signs_here = matches!(
                record.role,
                KeyRole::SetupSigning | KeyRole::RevocationVerdict | KeyRole::Association
            );
            if !signs_here || record.state == KeyState::Revoked {
                continue;
            }
            let path = self.server_key_path(&record.key_id);
            if !path.exists() {
                return Err(CliError::MissingPrivateKey(
                    hex::encode(record.key_id.0),
                    self.keys_dir(),
                ));
            }
            let signer = SoftwareSigner::new(read_signing_key(&path)?);
            ring.add(record.role, signer)?;
            if record.state == KeyState::Retired {
                ring.retire(&record.key_id)?;
            }
        }
        for rule in map {
            // A rule naming a revoked key stays in the store (history); the server then
            // falls back to another trusted key for those devices.
            if ring.get(&rule.key_id).is_some() {
                ring.map_devices(
                    rule.device_type,
                    rule.first_serial,
                    rule.last_serial,
                    rule.key_id,
                )?;
            }
        }
        Ok(ring)
    }

    /// The CA certificates trusted for `role` (every certificate in every `.pem` file).
    pub fn trusted_cas(&self, role: TrustRole) -> Result<Vec<CertificateDer<'static>>, CliError> {
        let dir = self.trust_dir(role);
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(CliError::File {
                    path: dir,
                    source: e,
                });
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        paths.sort();
        for path in paths {
            out.extend(read_certificates(&path)?);
        }
        Ok(out)
    }

    /// Adds a CA certificate (PEM) to those trusted for `role`; returns where it was put.
    pub fn add_trusted_ca(&self, role: TrustRole, pem_path: &Path) -> Result<PathBuf, CliError> {
        let certs = read_certificates(pem_path)?;
        let dir = self.trust_dir(role);
        std::fs::create_dir_all(&dir).map_err(CliError::file(&dir))?;
        let mut written = None;
        for cert in certs {
            let fingerprint = sha2_hex(cert.as_ref());
            let target = dir.join(format!("{}.pem", fingerprint.get(..16).unwrap_or_default()));
            if !target.exists() {
                let pem = certificate_pem(cert.as_ref());
                write_public_file(&target, pem.as_bytes())?;
            }
            written = Some(target);
        }
        written.ok_or_else(|| CliError::NoCertificate(pem_path.to_path_buf()))
    }

    /// The server's TLS certificate chain and key.
    pub fn tls_identity(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CliError> {
        let chain = read_certificates(&self.tls_chain_path())?;
        let key_path = self.tls_key_path();
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| CliError::BadKeyFile {
            path: key_path.clone(),
        })?;
        Ok((chain, key))
    }

    /// The manifest import key.
    pub fn import_key(&self) -> Result<SessionKeyPair, CliError> {
        let path = self.import_key_path();
        let hex_text = crate::secret_input::read_secret_text(&path)?;
        let bytes = zeroize::Zeroizing::new(
            hex::decode(hex_text.trim())
                .map_err(|_| CliError::BadKeyFile { path: path.clone() })?,
        );
        SessionKeyPair::from_private_bytes(CipherSuite::X25519_SHA256_CHACHA20POLY1305, &bytes)
            .map_err(|_| CliError::BadKeyFile { path })
    }
}

/// Every certificate in a PEM file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, CliError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|_| CliError::NoCertificate(path.to_path_buf()))?
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(CliError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

fn sha2_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A certificate (DER) as PEM.
pub(crate) fn certificate_pem(der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Parses a key id given as 64 hex digits.
pub fn parse_key_id(text: &str) -> Result<KeyId, CliError> {
    hex::decode(text)
        .ok()
        .and_then(|b| KeyId::from_slice(&b))
        .ok_or_else(|| CliError::BadKeyId(text.to_owned()))
}
