//! Secrets: Wi-Fi passphrases, PINs, device secrets.
//!
//! Every type here zeroizes its memory on drop, compares in constant time and prints as
//! `<redacted>` in `Debug`, so a secret cannot leak through a log line or a timing side channel.
//! The bytes are reachable only through an explicit `expose_secret()`.

use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::SecretError;

/// Secret bytes of any length.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps bytes as a secret.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// Copies a slice into a new secret.
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretBytes(bytes.to_vec())
    }

    /// The secret bytes. Callers must not log or keep them.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ConstantTimeEq for SecretBytes {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        // Slices of different length compare unequal; the length of a secret is not itself
        // hidden by this comparison (only its contents).
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}
impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

macro_rules! redacted_debug {
    ($t:ident) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($t), "(<redacted>)"))
            }
        }
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }
        impl Eq for $t {}
    };
}

/// A Wi-Fi network credential: a WPA2/WPA3 passphrase of 8-63 printable ASCII characters, or a
/// raw PSK as 64 hex digits (IEEE 802.11i).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Passphrase(SecretBytes);
redacted_debug!(Passphrase);

impl Passphrase {
    /// Checks the form and wraps the passphrase.
    pub fn new(bytes: &[u8]) -> Result<Self, SecretError> {
        let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
        let hex_psk = bytes.len() == 64 && bytes.iter().all(u8::is_ascii_hexdigit);
        if (printable && (8..=63).contains(&bytes.len())) || hex_psk {
            Ok(Passphrase(SecretBytes::from_slice(bytes)))
        } else {
            Err(SecretError::InvalidPassphrase)
        }
    }

    /// The passphrase bytes.
    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

/// A device PIN: 6 to 12 decimal digits, printed on or in the box.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Pin(SecretBytes);
redacted_debug!(Pin);

impl Pin {
    /// Shortest PIN accepted: 10^6 values, each attempt one online guess.
    pub const MIN_DIGITS: usize = 6;
    /// Longest PIN accepted.
    pub const MAX_DIGITS: usize = 12;

    /// Checks the form (ASCII digits only) and wraps the PIN.
    pub fn new(digits: &str) -> Result<Self, SecretError> {
        let b = digits.as_bytes();
        if (Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&b.len())
            && b.iter().all(u8::is_ascii_digit)
        {
            Ok(Pin(SecretBytes::from_slice(b)))
        } else {
            Err(SecretError::InvalidPin)
        }
    }

    /// Draws a uniformly random PIN of `digits` digits from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(
        rng: &mut R,
        digits: usize,
    ) -> Result<Self, SecretError> {
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits) {
            return Err(SecretError::InvalidPin);
        }
        let mut out = Zeroizing::new(Vec::with_capacity(digits));
        while out.len() < digits {
            let mut byte = [0u8; 1];
            rng.fill_bytes(&mut byte);
            // Rejection sampling: 250 = 25 * 10 keeps every digit equally likely.
            if byte[0] < 250 {
                out.push(b'0' + byte[0] % 10);
            }
            byte.zeroize();
        }
        Ok(Pin(SecretBytes::from_slice(&out)))
    }

    /// The PIN as ASCII digits.
    pub fn expose_secret(&self) -> &str {
        // Constructed from ASCII digits only, so this cannot fail; fall back to "" rather than
        // panic if that invariant were ever broken.
        core::str::from_utf8(self.0.expose_secret()).unwrap_or("")
    }
}

/// A device secret: 32 random bytes shared by a device and the association server (flow 2).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeviceSecret([u8; 32]);
redacted_debug!(DeviceSecret);

impl DeviceSecret {
    /// Wraps 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        DeviceSecret(bytes)
    }

    /// Checks the length and wraps the bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SecretError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SecretError::InvalidDeviceSecret)?;
        Ok(DeviceSecret(arr))
    }

    /// Draws a fresh secret from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        DeviceSecret(b)
    }

    /// The secret bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}
