//! The data key that seals secrets at rest, where it comes from, and the sealing itself.
//!
//! Passphrases, PIN records, device secrets, session state and scan reports are sealed with
//! XChaCha20-Poly1305 under a 256-bit data key. The associated data names the table, the
//! column and the row, so a sealed value copied into another row does not open. A stolen
//! database file without the key yields none of them.

use core::fmt;
use core::future::Future;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::StoreError;

/// Sealed-value format version.
const SEALED_V1: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// A 256-bit data key. `Debug` shows only its id.
pub struct DataKey {
    key: Zeroizing<[u8; 32]>,
    id: [u8; KEY_ID_LEN],
}

impl DataKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let key = Zeroizing::new(bytes);
        let id = key_id(&key);
        DataKey { key, id }
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, StoreError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|_| StoreError::Random)?;
        Ok(Self::from_bytes(*bytes))
    }

    /// A public identifier of the key (HMAC of a fixed label): tells which key sealed a value
    /// without revealing the key.
    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        self.id
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(id ")?;
        for b in self.id {
            write!(f, "{b:02x}")?;
        }
        f.write_str(", ..)")
    }
}

fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        // HMAC takes keys of any length; this branch is never taken.
        return [0u8; KEY_ID_LEN];
    };
    mac.update(b"zerotouch data key id v1");
    let tag = mac.finalize().into_bytes();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(tag.get(..KEY_ID_LEN).unwrap_or(&[0u8; KEY_ID_LEN]));
    id
}

/// Where the data key comes from: a KMS that unwraps it in production, a local key file by
/// default. Called once when a store opens.
pub trait DataKeySource: Send + Sync {
    /// The data key.
    fn data_key(&self) -> impl Future<Output = Result<DataKey, StoreError>> + Send;
}

/// A data key in a local file of 32 raw bytes, created (mode 0600) on first use.
///
/// Keep it off the database's disk or backups where possible: whoever has both has the
/// secrets. A file readable by group or others is refused.
#[derive(Debug, Clone)]
pub struct LocalKeyFile {
    path: PathBuf,
}

impl LocalKeyFile {
    /// The key file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalKeyFile { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load_or_create(&self) -> Result<DataKey, StoreError> {
        use std::io::{ErrorKind, Read, Write};
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path)
        {
            Ok(mut file) => {
                let key = DataKey::generate()?;
                file.write_all(key.key.as_ref())?;
                file.sync_all()?;
                return Ok(key);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        let mut file = std::fs::File::open(&self.path)?;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(StoreError::DataKey(format!(
                "{} is readable by others (mode {:o}); chmod 600 it",
                self.path.display(),
                mode & 0o777
            )));
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(33));
        Read::by_ref(&mut file).take(33).read_to_end(&mut bytes)?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            StoreError::DataKey(format!(
                "{} must hold exactly 32 bytes",
                self.path.display()
            ))
        })?;
        Ok(DataKey::from_bytes(key))
    }
}

impl DataKeySource for LocalKeyFile {
    async fn data_key(&self) -> Result<DataKey, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.load_or_create())
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}

/// A data key held in memory (tests, or a key the caller already unwrapped).
#[derive(Debug)]
pub struct StaticDataKey(pub [u8; 32]);

impl DataKeySource for StaticDataKey {
    async fn data_key(&self) -> Result<DataKey, StoreError> {
        Ok(DataKey::from_bytes(self.0))
    }
}

/// Where a sealed value lives; it becomes the associated data.
#[derive(Debug, Clone, Copy)]
pub struct SealedField<'a> {
    /// Table.
    pub table: &'static str,
    /// Column.
    pub column: &'static str,
    /// The row's key bytes.
    pub row: &'a [u8],
}

impl SealedField<'_> {
    fn aad(&self) -> Vec<u8> {
        // Length-prefixed parts, so no two fields share associated data.
        let mut aad = Vec::with_capacity(32 + self.row.len());
        aad.extend_from_slice(b"zerotouch-store v1");
        for part in [self.table.as_bytes(), self.column.as_bytes(), self.row] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad
    }
}

/// Seals and opens values under the data key.
pub struct FieldCipher {
    aead: XChaCha20Poly1305,
    key_id: [u8; KEY_ID_LEN],
}

impl fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldCipher").finish_non_exhaustive()
    }
}

impl FieldCipher {
    /// A cipher under `key`.
    pub fn new(key: &DataKey) -> Self {
        let aead = XChaCha20Poly1305::new(&(*key.key).into());
        FieldCipher {
            aead,
            key_id: key.id,
        }
    }

    /// Seals `plaintext` for `field`: version ‖ key id ‖ random 24-byte nonce ‖ ciphertext.
    pub fn seal(&self, field: SealedField<'_>, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| StoreError::Random)?;
        let aad = field.aad();
        let ct = self
            .aead
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::InvalidInput("value too long to seal"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a value sealed for `field`.
    pub fn open(
        &self,
        field: SealedField<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let rejected = || StoreError::SealedFieldRejected {
            field: field.column,
        };
        let (&version, rest) = sealed.split_first().ok_or_else(rejected)?;
        let (key_id, rest) = rest
            .split_first_chunk::<KEY_ID_LEN>()
            .ok_or_else(rejected)?;
        let (nonce, ct) = rest.split_first_chunk::<NONCE_LEN>().ok_or_else(rejected)?;
        if version != SEALED_V1 {
            return Err(rejected());
        }
        if key_id != &self.key_id {
            return Err(StoreError::DataKey(
                "value sealed under a different data key".into(),
            ));
        }
        let aad = field.aad();
        self.aead
            .decrypt(&XNonce::from(*nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| rejected())
    }
}
