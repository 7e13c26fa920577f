//! The pinned-key bundle: the server keys firmware pins and, per device type and serial
//! range, the key to try first (the indication). Key ceremony tools export it (`zerotouch keys
//! export-bundle` writes it as CBOR and as a C header); firmware decodes it here, `no_std`,
//! into [`PinnedKeys`] for its own type and serial.
//!
//! ```text
//! pinned_key_bundle = [
//!   version: 1,
//!   keys: [* [role: uint, public_key: bstr, key_id: bstr .size 32]],
//!   indications: [* [device_type: uint, first_serial: uint, last_serial: uint,
//!                     key_id: bstr .size 32]],
//! ]
//! ```
//!
//! `public_key` is the raw key (a 65-byte uncompressed P-256 point or a 32-byte Ed25519 key,
//! which tells the algorithm apart); `key_id` repeats its SHA-256 SubjectPublicKeyInfo hash so
//! a corrupted bundle is caught before a device trusts it.

use alloc::vec::Vec;

use ciborium::Value;

use crate::cbor;
use crate::{CryptoProvider, DecodeError, KeyId, KeyMapRule, KeyRole, PinnedKey, PinnedKeys};
use crate::{KeyError, PublicKey};

/// The bundle's format version.
pub const PINNED_BUNDLE_VERSION: u64 = 1;

/// More keys than firmware would ever pin is refused (bounds memory on decode).
pub const MAX_BUNDLE_KEYS: usize = 64;

/// More indications than this is refused.
pub const MAX_BUNDLE_INDICATIONS: usize = 1024;

/// Server keys to pin, with their roles, and the indications per device type and serials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PinnedKeyBundle {
    /// The keys, each with its role.
    pub keys: Vec<(KeyRole, PublicKey)>,
    /// Which setup key devices of a type and serial range try first.
    pub indications: Vec<KeyMapRule>,
}

fn role_of(v: u64) -> Option<KeyRole> {
    KeyRole::ALL.into_iter().find(|r| u64::from(r.to_u8()) == v)
}

fn public_key_of(raw: &[u8]) -> Result<PublicKey, DecodeError> {
    let bad = DecodeError::UnexpectedType {
        field: "public_key",
        expected: "a 65-byte P-256 point or a 32-byte Ed25519 key",
    };
    match raw.len() {
        32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(raw);
            PublicKey::ed25519(k).map_err(|_| bad)
        }
        65 => PublicKey::p256_sec1(raw).map_err(|_| bad),
        _ => Err(bad),
    }
}

impl PinnedKeyBundle {
    /// The canonical CBOR encoding.
    pub fn encode(&self, provider: &dyn CryptoProvider) -> Vec<u8> {
        let keys = self
            .keys
            .iter()
            .map(|(role, key)| {
                Value::Array(alloc::vec![
                    Value::from(role.to_u8()),
                    Value::Bytes(key.raw_bytes().to_vec()),
                    Value::Bytes(key_id(key, provider).0.to_vec()),
                ])
            })
            .collect();
        let indications = self
            .indications
            .iter()
            .map(|r| {
                Value::Array(alloc::vec![
                    Value::from(r.device_type),
                    Value::from(r.first_serial),
                    Value::from(r.last_serial),
                    Value::Bytes(r.key_id.0.to_vec()),
                ])
            })
            .collect();
        cbor::encode(&Value::Array(alloc::vec![
            Value::from(PINNED_BUNDLE_VERSION),
            Value::Array(keys),
            Value::Array(indications),
        ]))
    }

    /// Decodes a bundle: canonical CBOR only, every key id checked against its key, every
    /// indication naming a key of the bundle, ranges not empty. Never panics.
    pub fn decode(bytes: &[u8], provider: &dyn CryptoProvider) -> Result<Self, DecodeError> {
        let [version, keys, indications] = cbor::fields::<3>(cbor::decode(bytes)?, "bundle")?;
        if cbor::uint(&version, "version", u64::MAX)? != PINNED_BUNDLE_VERSION {
            return Err(DecodeError::OutOfRange { field: "version" });
        }
        let mut out = PinnedKeyBundle::default();
        for entry in cbor::list(keys, "keys", MAX_BUNDLE_KEYS)? {
            let [role, raw, id] = cbor::fields::<3>(entry, "key")?;
            let role = role_of(cbor::uint(&role, "role", 255)?)
                .ok_or(DecodeError::OutOfRange { field: "role" })?;
            let key = public_key_of(&cbor::bytes(raw, "public_key")?)?;
            let id = KeyId(cbor::fixed_bytes::<32>(id, "key_id")?);
            if key_id(&key, provider) != id {
                return Err(DecodeError::OutOfRange { field: "key_id" });
            }
            out.keys.push((role, key));
        }
        for entry in cbor::list(indications, "indications", MAX_BUNDLE_INDICATIONS)? {
            let [t, first, last, id] = cbor::fields::<4>(entry, "indication")?;
            let rule = KeyMapRule {
                device_type: u32::try_from(cbor::uint(&t, "device_type", u64::from(u32::MAX))?)
                    .map_err(|_| DecodeError::OutOfRange {
                        field: "device_type",
                    })?,
                first_serial: cbor::uint(&first, "first_serial", u64::MAX)?,
                last_serial: cbor::uint(&last, "last_serial", u64::MAX)?,
                key_id: KeyId(cbor::fixed_bytes::<32>(id, "indicated_key_id")?),
            };
            let names_a_setup_key = out.keys.iter().any(|(role, k)| {
                *role == KeyRole::SetupSigning && key_id(k, provider) == rule.key_id
            });
            if rule.first_serial > rule.last_serial || !names_a_setup_key {
                return Err(DecodeError::OutOfRange {
                    field: "indication",
                });
            }
            out.indications.push(rule);
        }
        Ok(out)
    }

    /// What a device of `device_type` with `serial` pins: every key, and the one its
    /// indication names marked as the first to try.
    pub fn pinned_keys_for(&self, device_type: u32, serial: u64) -> Result<PinnedKeys, KeyError> {
        let mut pinned = PinnedKeys::new(
            self.keys
                .iter()
                .map(|(role, key)| PinnedKey::new(*role, key.clone()))
                .collect(),
        );
        if let Some(rule) = self.indications.iter().find(|r| {
            r.device_type == device_type && (r.first_serial..=r.last_serial).contains(&serial)
        }) {
            pinned.indicate(rule.key_id)?;
        }
        Ok(pinned)
    }
}

/// A key's id (SHA-256 of its SubjectPublicKeyInfo) through the provider.
fn key_id(key: &PublicKey, provider: &dyn CryptoProvider) -> KeyId {
    KeyId(provider.sha256(&[&key.to_spki_der()]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::{RustCryptoProvider, SignatureAlgorithm, SigningKey};
    use proptest::prelude::*;

    fn key(alg: SignatureAlgorithm, seed: u8) -> PublicKey {
        SigningKey::from_secret_bytes(alg, &[seed; 32])
            .unwrap()
            .public_key()
    }

    fn bundle() -> PinnedKeyBundle {
        let setup = key(SignatureAlgorithm::EcdsaP256Sha256, 3);
        PinnedKeyBundle {
            keys: alloc::vec![
                (KeyRole::SetupSigning, setup.clone()),
                (
                    KeyRole::RevocationVerdict,
                    key(SignatureAlgorithm::Ed25519, 4)
                ),
            ],
            indications: alloc::vec![KeyMapRule {
                device_type: 7,
                first_serial: 1,
                last_serial: 99,
                key_id: setup.key_id(),
            }],
        }
    }

    #[test]
    fn bundle_round_trips_and_indicates_per_type_and_serial() {
        let p = RustCryptoProvider;
        let b = bundle();
        let decoded = PinnedKeyBundle::decode(&b.encode(&p), &p).unwrap();
        assert_eq!(decoded, b);
        let setup_id = b.keys[0].1.key_id();
        assert_eq!(
            decoded.pinned_keys_for(7, 50).unwrap().indication(),
            Some(setup_id)
        );
        assert_eq!(decoded.pinned_keys_for(7, 100).unwrap().indication(), None);
        assert_eq!(decoded.pinned_keys_for(8, 50).unwrap().indication(), None);
    }

    #[test]
    fn bundle_with_a_key_id_that_does_not_match_its_key_is_refused() {
        let p = RustCryptoProvider;
        let mut bytes = bundle().encode(&p);
        // The first 32-byte string is the first key's id.
        let at = bytes.windows(2).position(|w| w == [0x58, 0x20]).unwrap() + 2;
        bytes[at] ^= 1;
        assert!(PinnedKeyBundle::decode(&bytes, &p).is_err());
    }

    #[test]
    fn indication_naming_a_key_outside_the_bundle_is_refused() {
        let p = RustCryptoProvider;
        let mut b = bundle();
        b.indications[0].key_id = key(SignatureAlgorithm::EcdsaP256Sha256, 9).key_id();
        assert!(PinnedKeyBundle::decode(&b.encode(&p), &p).is_err());
        // Nor may it name the revocation key: only setup keys are indicated.
        let mut b = bundle();
        b.indications[0].key_id = b.keys[1].1.key_id();
        assert!(PinnedKeyBundle::decode(&b.encode(&p), &p).is_err());
    }

    #[test]
    fn empty_serial_range_is_refused() {
        let p = RustCryptoProvider;
        let mut b = bundle();
        b.indications[0].first_serial = 100;
        assert!(PinnedKeyBundle::decode(&b.encode(&p), &p).is_err());
    }

    #[test]
    fn unknown_bundle_version_is_refused() {
        let p = RustCryptoProvider;
        let mut bytes = bundle().encode(&p);
        bytes[1] = 2; // [version, …]: the version is the byte after the array head.
        assert_eq!(
            PinnedKeyBundle::decode(&bytes, &p),
            Err(DecodeError::OutOfRange { field: "version" })
        );
    }

    proptest! {
        #[test]
        fn bundle_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = PinnedKeyBundle::decode(&bytes, &RustCryptoProvider);
        }

        #[test]
        fn damaged_bundle_never_panics(at in 0usize..400, bit in 0u8..8) {
            let p = RustCryptoProvider;
            let mut bytes = bundle().encode(&p);
            let i = at % bytes.len();
            bytes[i] ^= 1 << bit;
            let _ = PinnedKeyBundle::decode(&bytes, &p);
        }
    }
}
