//! PIN records: salted, slow hashes of the PIN printed in the box.

use core::fmt;

use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};
use zerotouch_core::Pin;

use crate::StoreError;

/// PBKDF2-HMAC-SHA-256 iterations for new records.
///
/// A 6-digit PIN has a million values, so no hash makes a stolen record safe on its own; the
/// record is also sealed under the data key, and every online attempt is counted. The hash makes
/// an offline search cost about a day of one core per record instead of a second.
pub const DEFAULT_PIN_ITERATIONS: u32 = 100_000;

/// Fewest iterations a record may use (tests use this to stay fast).
pub const MIN_PIN_ITERATIONS: u32 = 1_000;

/// A salted PBKDF2-HMAC-SHA-256 hash of a PIN. `Debug` shows only the iteration count.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PinRecord {
    salt: [u8; 16],
    iterations: u32,
    hash: [u8; 32],
}

impl PinRecord {
    /// Hashes `pin` with a fresh random salt.
    pub fn new(pin: &Pin, iterations: u32) -> Result<Self, StoreError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|_| StoreError::Random)?;
        Self::with_salt(pin, salt, iterations)
    }

    /// Hashes `pin` with the given salt (for reproducible records in tests and vectors).
    pub fn with_salt(pin: &Pin, salt: [u8; 16], iterations: u32) -> Result<Self, StoreError> {
        if iterations < MIN_PIN_ITERATIONS {
            return Err(StoreError::InvalidInput("too few PIN hash iterations"));
        }
        let hash = derive(pin.expose_secret().as_bytes(), &salt, iterations);
        Ok(PinRecord {
            salt,
            iterations,
            hash,
        })
    }

    /// Whether `pin` is the PIN this record was made from (constant time in the hash).
    pub fn verify(&self, pin: &Pin) -> bool {
        let candidate = derive(pin.expose_secret().as_bytes(), &self.salt, self.iterations);
        bool::from(candidate.ct_eq(&self.hash))
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The stored form: salt (16) ‖ iterations (4, big-endian) ‖ hash (32).
    pub fn to_bytes(&self) -> [u8; 52] {
        let mut out = [0u8; 52];
        out[..16].copy_from_slice(&self.salt);
        out[16..20].copy_from_slice(&self.iterations.to_be_bytes());
        out[20..].copy_from_slice(&self.hash);
        out
    }

    /// From the stored form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = StoreError::Corrupt { what: "PIN record" };
        let (salt, rest) = bytes.split_first_chunk::<16>().ok_or(corrupt)?;
        let corrupt = || StoreError::Corrupt { what: "PIN record" };
        let (iterations, hash) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let hash: [u8; 32] = hash.try_into().map_err(|_| corrupt())?;
        Ok(PinRecord {
            salt: *salt,
            iterations: u32::from_be_bytes(*iterations),
            hash,
        })
    }
}

impl fmt::Debug for PinRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PinRecord(pbkdf2-sha256, {} iterations, ..)",
            self.iterations
        )
    }
}

fn derive(pin: &[u8], salt: &[u8; 16], iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(pin, salt, iterations)
}
