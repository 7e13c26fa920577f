//! The barcode payload printed on or in the box: what a registrar scans to tie a device to an
//! account.
//!
//! ```text
//! ZT1/<fingerprint>/<device type>/<product number>/<PIN or empty>/<check>
//! ZT1/JBSWY3DPEHPK3PXPJBSWY3DPEE/7/B07XJ8C8F5/482915/Q
//! ```
//!
//! Every character is in the QR alphanumeric set (0-9, A-Z, `/`, `*`), which packs 5.5 bits a
//! character, and the text is short enough to type from the label. The fingerprint is the first
//! 16 to 32 bytes (at least 128 bits) of the device key id in RFC 4648 base32 without padding.
//! The check character is the ISO/IEC 7064 MOD 37-2 computation over every character before it,
//! separators included (`0-9` = 0-9, `A-Z` = 10-35, `/` = 36); its value 0-36 is written
//! `0-9`, `A-Z` or `*`. Because 37 is prime and 2 generates its multiplicative group, it catches
//! every single mistyped character and every swap of two adjacent different characters,
//! a moved separator included. Lower-case input (typed by hand) is accepted.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use data_encoding::BASE32_NOPAD;

use crate::{BarcodeError, KeyId, Pin};

const PREFIX: &str = "ZT1";
const FIELDS: usize = 6;
/// Longest product number.
pub const MAX_PRODUCT_NUMBER_LEN: usize = 24;
/// Longest payload: prefix, 52-character fingerprint, 10-digit type, product number, 12-digit
/// PIN, check and separators.
pub const MAX_PAYLOAD_LEN: usize = 3 + 52 + 10 + MAX_PRODUCT_NUMBER_LEN + 12 + 1 + 5;

/// A prefix of a device key id, 16 to 32 bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyFingerprint(Vec<u8>);

impl KeyFingerprint {
    /// Shortest fingerprint: 128 bits.
    pub const MIN_LEN: usize = 16;

    /// The first `len` bytes of `key_id` (16 to 32).
    pub fn of(key_id: &KeyId, len: usize) -> Result<Self, BarcodeError> {
        let bytes = key_id
            .0
            .get(..len)
            .filter(|_| len >= Self::MIN_LEN)
            .ok_or(BarcodeError::InvalidLength("fingerprint"))?;
        Ok(KeyFingerprint(bytes.to_vec()))
    }

    /// Whether this fingerprint names `key_id`.
    pub fn matches(&self, key_id: &KeyId) -> bool {
        key_id.starts_with(&self.0)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({})", BASE32_NOPAD.encode(&self.0))
    }
}

/// The decoded barcode payload. `Debug` redacts the PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarcodePayload {
    /// Prefix of the device key id.
    pub fingerprint: KeyFingerprint,
    /// Device type (selects the server key and the product's capabilities).
    pub device_type: u32,
    /// Product number, `0-9A-Z`, 1 to 24 characters.
    pub product_number: String,
    /// The PIN, when the product has one.
    pub pin: Option<Pin>,
}

/// Value of a character in the check computation.
fn char_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'/' => Some(36),
        _ => None,
    }
}

/// The check character for a value 0-36.
fn check_symbol(v: u32) -> char {
    const SYMBOLS: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";
    SYMBOLS
        .get(v as usize)
        .map(|&b| char::from(b))
        .unwrap_or('*')
}

/// ISO/IEC 7064 MOD 37-2 (pure system, modulus 37, radix 2): the check character that makes
/// the whole text, check included, sum to 1 modulo 37.
fn check_char(data: &str) -> char {
    const M: u32 = 37;
    let p = data
        .bytes()
        .filter_map(char_value)
        .fold(0u32, |p, v| ((p + v) * 2) % M);
    check_symbol((M + 1 - p) % M)
}

impl BarcodePayload {
    /// Encodes the payload as upper-case text for a QR code in alphanumeric mode.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        s.push_str(PREFIX);
        s.push('/');
        s.push_str(&BASE32_NOPAD.encode(&self.fingerprint.0));
        s.push('/');
        s.push_str(&alloc::format!("{}", self.device_type));
        s.push('/');
        s.push_str(&self.product_number);
        s.push('/');
        if let Some(pin) = &self.pin {
            s.push_str(pin.expose_secret());
        }
        let c = check_char(&s);
        s.push('/');
        s.push(c);
        s
    }

    /// Decodes a scanned or typed payload.
    pub fn decode(text: &str) -> Result<Self, BarcodeError> {
        if text.len() > MAX_PAYLOAD_LEN {
            return Err(BarcodeError::InvalidLength("payload"));
        }
        // The copy holds the PIN: wipe it when done.
        let upper = zeroize::Zeroizing::new(text.to_ascii_uppercase());
        let fields: Vec<&str> = upper.split('/').collect();
        if fields.first() != Some(&PREFIX) {
            return Err(BarcodeError::UnknownVersion);
        }
        let [_, fp, ty, product, pin, check] = fields.as_slice() else {
            return Err(BarcodeError::FieldCount {
                expected: FIELDS,
                found: fields.len(),
            });
        };

        // Check character first: a mistyped payload says so rather than blaming a field.
        let data_len = upper.len().saturating_sub(check.len() + 1);
        let data = upper.get(..data_len).unwrap_or("");
        let mut check_chars = check.bytes();
        let (Some(c), None) = (check_chars.next(), check_chars.next()) else {
            return Err(BarcodeError::InvalidLength("check"));
        };
        if !(c.is_ascii_digit() || c.is_ascii_uppercase() || c == b'*') {
            return Err(BarcodeError::InvalidCharacter("check"));
        }
        if check_char(data) != char::from(c) {
            return Err(BarcodeError::CheckMismatch);
        }

        if !fp
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(BarcodeError::InvalidCharacter("fingerprint"));
        }
        let fp_bytes = BASE32_NOPAD
            .decode(fp.as_bytes())
            .map_err(|_| BarcodeError::InvalidLength("fingerprint"))?;
        // Re-encoding must give the same text, so one payload has one spelling.
        if !(KeyFingerprint::MIN_LEN..=KeyId::LEN).contains(&fp_bytes.len())
            || BASE32_NOPAD.encode(&fp_bytes) != *fp
        {
            return Err(BarcodeError::InvalidLength("fingerprint"));
        }

        if ty.is_empty() || ty.len() > 10 || !ty.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BarcodeError::InvalidCharacter("device type"));
        }
        if ty.len() > 1 && ty.starts_with('0') {
            return Err(BarcodeError::InvalidCharacter("device type"));
        }
        let device_type: u32 = ty.parse().map_err(|_| BarcodeError::DeviceTypeOutOfRange)?;

        if product.is_empty() || product.len() > MAX_PRODUCT_NUMBER_LEN {
            return Err(BarcodeError::InvalidLength("product number"));
        }
        if !product
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            return Err(BarcodeError::InvalidCharacter("product number"));
        }

        let pin = if pin.is_empty() {
            None
        } else {
            if !pin.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BarcodeError::InvalidCharacter("pin"));
            }
            Some(Pin::new(pin).map_err(|_| BarcodeError::InvalidLength("pin"))?)
        };

        Ok(BarcodePayload {
            fingerprint: KeyFingerprint(fp_bytes),
            device_type,
            product_number: String::from(*product),
            pin,
        })
    }
}
