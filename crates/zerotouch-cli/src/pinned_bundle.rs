//! The pinned-key bundle firmware embeds: the server keys a device trusts and, per device
//! type and serial range, which one to try first (the indication). Exported as CBOR (for
//! firmware that reads a file or a flash partition) and as a C header (for firmware that
//! compiles it in), both from one [`PinnedKeyBundle`].
//!
//! ```text
//! pinned_key_bundle = [
//!   version: 1,
//!   keys: [* [role: uint, key_id: bstr .size 32, spki: bstr]],   ; SubjectPublicKeyInfo DER
//!   indications: [* [device_type: uint, first_serial: uint, last_serial: uint,
//!                     key_id: bstr .size 32]],
//! ]
//! ```

use core::fmt::Write as _;

use ciborium::Value;
use zerotouch_core::{KeyId, KeyMapRule, KeyRole, PinnedKey, PinnedKeys, PublicKey};

use crate::CliError;

/// The bundle's format version.
pub const BUNDLE_VERSION: u64 = 1;

/// Server keys to pin and the indications per device type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedKeyBundle {
    /// The keys, each with its role.
    pub keys: Vec<(KeyRole, PublicKey)>,
    /// Which setup key devices of a type and serial range should try first.
    pub indications: Vec<KeyMapRule>,
}

fn role_from_u8(v: u64) -> Option<KeyRole> {
    KeyRole::ALL.into_iter().find(|r| u64::from(r.to_u8()) == v)
}

impl PinnedKeyBundle {
    /// The CBOR encoding.
    pub fn to_cbor(&self) -> Result<Vec<u8>, CliError> {
        let keys = self
            .keys
            .iter()
            .map(|(role, key)| {
                Value::Array(vec![
                    Value::from(role.to_u8()),
                    Value::Bytes(key.key_id().0.to_vec()),
                    Value::Bytes(key.to_spki_der()),
                ])
            })
            .collect();
        let indications = self
            .indications
            .iter()
            .map(|r| {
                Value::Array(vec![
                    Value::from(r.device_type),
                    Value::from(r.first_serial),
                    Value::from(r.last_serial),
                    Value::Bytes(r.key_id.0.to_vec()),
                ])
            })
            .collect();
        let value = Value::Array(vec![
            Value::from(BUNDLE_VERSION),
            Value::Array(keys),
            Value::Array(indications),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&value, &mut out).map_err(|e| CliError::Cbor(e.to_string()))?;
        Ok(out)
    }

    /// Decodes a bundle, checking each key id against its key.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, CliError> {
        let bad = |what: &str| CliError::Cbor(format!("pinned-key bundle: {what}"));
        let value: Value =
            ciborium::from_reader(bytes).map_err(|e| CliError::Cbor(e.to_string()))?;
        let Value::Array(top) = value else {
            return Err(bad("not an array"));
        };
        let [version, keys, indications] = top.as_slice() else {
            return Err(bad("expected [version, keys, indications]"));
        };
        if version.as_integer().and_then(|i| u64::try_from(i).ok()) != Some(BUNDLE_VERSION) {
            return Err(bad("unknown version"));
        }
        let uint = |v: &Value| v.as_integer().and_then(|i| u64::try_from(i).ok());
        let mut out = PinnedKeyBundle {
            keys: Vec::new(),
            indications: Vec::new(),
        };
        for entry in keys.as_array().ok_or_else(|| bad("keys"))? {
            let [role, id, spki] = entry.as_array().map(Vec::as_slice).unwrap_or_default() else {
                return Err(bad("key entry"));
            };
            let role = uint(role)
                .and_then(role_from_u8)
                .ok_or_else(|| bad("role"))?;
            let key = PublicKey::from_spki_der(spki.as_bytes().ok_or_else(|| bad("spki"))?)?;
            if Some(key.key_id().0.as_slice()) != id.as_bytes().map(Vec::as_slice) {
                return Err(bad("a key id does not match its key"));
            }
            out.keys.push((role, key));
        }
        for entry in indications.as_array().ok_or_else(|| bad("indications"))? {
            let [t, first, last, id] = entry.as_array().map(Vec::as_slice).unwrap_or_default()
            else {
                return Err(bad("indication entry"));
            };
            out.indications.push(KeyMapRule {
                device_type: uint(t)
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(|| bad("device type"))?,
                first_serial: uint(first).ok_or_else(|| bad("first serial"))?,
                last_serial: uint(last).ok_or_else(|| bad("last serial"))?,
                key_id: id
                    .as_bytes()
                    .and_then(|b| KeyId::from_slice(b))
                    .ok_or_else(|| bad("indicated key id"))?,
            });
        }
        Ok(out)
    }

    /// What a device of `device_type` with `serial` pins: every key, the indicated one
    /// marked.
    pub fn pinned_keys_for(&self, device_type: u32, serial: u64) -> Result<PinnedKeys, CliError> {
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

    /// The C header: the keys and indications as constant tables, and the CBOR bundle as a
    /// byte array, so firmware can use either.
    pub fn to_c_header(&self) -> Result<String, CliError> {
        let cbor = self.to_cbor()?;
        let mut h = String::new();
        let bytes = |b: &[u8]| {
            b.iter()
                .map(|x| format!("0x{x:02x}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            h,
            "/* Generated by `zerotouch keys export-bundle`. Do not edit: export again after a\n * key is added, rotated or revoked. Public keys only; nothing here is secret. */"
        );
        h.push_str("#ifndef ZEROTOUCH_PINNED_KEYS_H\n#define ZEROTOUCH_PINNED_KEYS_H\n\n");
        h.push_str("#include <stddef.h>\n#include <stdint.h>\n\n");
        let _ = writeln!(h, "#define ZT_PINNED_BUNDLE_VERSION {BUNDLE_VERSION}u");
        h.push_str(
            "#define ZT_KEY_ROLE_SETUP_SIGNING 1u\n#define ZT_KEY_ROLE_REVOCATION_VERDICT 2u\n",
        );
        h.push_str("#define ZT_COSE_ALG_ES256 (-7)\n#define ZT_COSE_ALG_EDDSA (-8)\n\n");
        h.push_str(
            "typedef struct {\n    uint8_t role;\n    int8_t cose_alg;\n    uint8_t key_id[32]; /* SHA-256 of the SubjectPublicKeyInfo */\n    uint8_t public_key_len;\n    uint8_t public_key[65]; /* SEC1 uncompressed point, or the Ed25519 key */\n} zt_pinned_key_t;\n\n",
        );
        h.push_str(
            "typedef struct {\n    uint32_t device_type;\n    uint64_t first_serial;\n    uint64_t last_serial;\n    uint8_t key_id[32];\n} zt_key_indication_t;\n\n",
        );
        let _ = writeln!(h, "#define ZT_PINNED_KEY_COUNT {}u", self.keys.len());
        if !self.keys.is_empty() {
            h.push_str("static const zt_pinned_key_t ZT_PINNED_KEYS[ZT_PINNED_KEY_COUNT] = {\n");
            for (role, key) in &self.keys {
                let raw = key.raw_bytes();
                let _ = writeln!(
                    h,
                    "    {{ {}u, {}, {{ {} }}, {}u, {{ {} }} }},",
                    role.to_u8(),
                    key.algorithm().cose_id(),
                    bytes(&key.key_id().0),
                    raw.len(),
                    bytes(raw)
                );
            }
            h.push_str("};\n");
        }
        let _ = writeln!(
            h,
            "\n#define ZT_KEY_INDICATION_COUNT {}u",
            self.indications.len()
        );
        if !self.indications.is_empty() {
            h.push_str(
                "static const zt_key_indication_t ZT_KEY_INDICATIONS[ZT_KEY_INDICATION_COUNT] = {\n",
            );
            for r in &self.indications {
                let _ = writeln!(
                    h,
                    "    {{ {}u, {}ull, {}ull, {{ {} }} }},",
                    r.device_type,
                    r.first_serial,
                    r.last_serial,
                    bytes(&r.key_id.0)
                );
            }
            h.push_str("};\n");
        }
        let _ = writeln!(h, "\n#define ZT_PINNED_BUNDLE_CBOR_LEN {}u", cbor.len());
        h.push_str("static const uint8_t ZT_PINNED_BUNDLE_CBOR[ZT_PINNED_BUNDLE_CBOR_LEN] = {\n");
        for line in cbor.chunks(12) {
            let _ = writeln!(h, "    {},", bytes(line));
        }
        h.push_str("};\n\n#endif /* ZEROTOUCH_PINNED_KEYS_H */\n");
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use zerotouch_core::{SignatureAlgorithm, SigningKey};

    fn key(alg: SignatureAlgorithm, seed: u8) -> PublicKey {
        SigningKey::from_secret_bytes(alg, &[seed; 32])
            .unwrap()
            .public_key()
    }

    #[test]
    fn bundle_round_trips_through_cbor() {
        let a = key(SignatureAlgorithm::EcdsaP256Sha256, 3);
        let b = key(SignatureAlgorithm::Ed25519, 4);
        let bundle = PinnedKeyBundle {
            keys: vec![
                (KeyRole::SetupSigning, a.clone()),
                (KeyRole::RevocationVerdict, b),
            ],
            indications: vec![KeyMapRule {
                device_type: 7,
                first_serial: 1,
                last_serial: 99,
                key_id: a.key_id(),
            }],
        };
        let decoded = PinnedKeyBundle::from_cbor(&bundle.to_cbor().unwrap()).unwrap();
        assert_eq!(decoded, bundle);
        let pinned = decoded.pinned_keys_for(7, 50).unwrap();
        assert_eq!(pinned.indication(), Some(a.key_id()));
        assert_eq!(decoded.pinned_keys_for(8, 50).unwrap().indication(), None);
    }

    #[test]
    fn bundle_with_a_key_id_that_does_not_match_its_key_is_refused() {
        let a = key(SignatureAlgorithm::EcdsaP256Sha256, 3);
        let bundle = PinnedKeyBundle {
            keys: vec![(KeyRole::SetupSigning, a)],
            indications: vec![],
        };
        let mut bytes = bundle.to_cbor().unwrap();
        // The key id is the first 32-byte string: flip a bit in it.
        let at = bytes.windows(2).position(|w| w == [0x58, 0x20]).unwrap() + 2;
        bytes[at] ^= 1;
        assert!(PinnedKeyBundle::from_cbor(&bytes).is_err());
    }
}
