//! The factory manifest: the signed file that tells the server which devices a batch made.
//!
//! Its format is specified in `docs/PROTOCOL.md`, section "Factory manifest". In short: a
//! COSE_Sign1 (the profile of section 6.2: protected header `{1: alg, 4: kid}` only, empty
//! unprotected header) signed in role `FactoryManifest` over
//!
//! ```text
//! payload = [ 1, [batch_id, created_at_ms, device_type, product_number, suite, import_key],
//!             enc, [ * [serial, [kind, der], sealed_secrets] ] ]
//! external_aad = CBOR[ "zerotouch-factory-manifest", 5 ]
//! ```
//!
//! Each device's secrets (its PIN record, never the PIN, and its device secret) are sealed
//! with HPKE, in device order in one context, to the server's import key: whoever copies the
//! file (a contract manufacturer's file share, a ticket attachment) learns nothing to test
//! PIN guesses against and no device secret. The signature covers everything, the sealed
//! secrets included.

use ciborium::Value;
use rand_core::CryptoRng;
use std::collections::HashSet;
use zeroize::Zeroizing;
use zerotouch_core::cbor;
use zerotouch_core::{
    CipherSuite, CryptoProvider, DecodeError, DeviceCertificate, DeviceSecret, Instant, KeyId,
    KeyLookup, KeyRole, PublicKey, RustCryptoProvider, SessionKeyPair, Signature,
    SignatureAlgorithm, SignatureError, Signer, ToBeSigned, seal_to,
};
use zerotouch_store::{DeviceIdentity, DeviceRecord, PinRecord};

use crate::{FactoryBatch, FactoryError, MAX_BATCH_DEVICES};

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u64 = 1;

/// Largest manifest accepted, in bytes (100,000 devices take about 60 MB).
pub const MAX_MANIFEST_LEN: usize = 128 * 1024 * 1024;

/// Most devices one manifest may list.
pub const MAX_MANIFEST_DEVICES: usize = MAX_BATCH_DEVICES as usize;

/// Largest device certificate or public key accepted in a manifest, in bytes.
const MAX_IDENTITY_LEN: usize = 4096;

const SIGNATURE_LABEL: &str = "zerotouch-factory-manifest";
const SECRETS_LABEL: &str = "zerotouch-factory-secrets";
/// HPKE `info` of the one context the secrets are sealed in.
pub const SECRETS_INFO: &[u8] = b"zerotouch factory manifest secrets";

const IDENTITY_CERTIFICATE: u64 = 1;
const IDENTITY_PUBLIC_KEY: u64 = 2;
const PIN_RECORD_LEN: usize = 52;

/// What a manifest says about its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestBatch {
    /// Random id of the batch, drawn when the manifest was built.
    pub batch_id: [u8; 16],
    /// When the factory built the manifest (its clock, milliseconds since the Unix epoch).
    pub created_at: Instant,
    /// Device type of every device.
    pub device_type: u32,
    /// Product number of every device.
    pub product_number: String,
    /// Key id of the factory-manifest key that signed it.
    pub signed_by: KeyId,
}

/// A manifest whose signature verified and whose secrets opened: the records are ready for
/// `DeviceStore::import_devices`.
#[derive(Debug)]
pub struct OpenedManifest {
    /// The batch.
    pub batch: ManifestBatch,
    /// One record per device, in the manifest's order, `created_at` set to the import time.
    pub devices: Vec<DeviceRecord>,
}

/// Builds and opens factory manifests (see the module documentation and `docs/PROTOCOL.md`).
#[derive(Debug, Clone, Copy)]
pub struct FactoryManifest;

/// The external AAD: the signer's role is entered, so a signature made in another role
/// (by a key that also holds that role somewhere) never verifies as a manifest.
fn external_aad(role: KeyRole) -> Vec<u8> {
    cbor::encode(&Value::Array(vec![
        Value::Text(SIGNATURE_LABEL.into()),
        Value::Integer(role.to_u8().into()),
    ]))
}

fn secrets_aad(header: &Value) -> Vec<u8> {
    cbor::encode(&Value::Array(vec![
        Value::Text(SECRETS_LABEL.into()),
        Value::Integer(MANIFEST_FORMAT.into()),
        header.clone(),
    ]))
}

/// Zeroizes every byte string in `value` (a plaintext that held secrets).
fn wipe(value: &mut Value) {
    match value {
        Value::Bytes(b) => zeroize::Zeroize::zeroize(b),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        _ => {}
    }
}

fn suite_bytes(suite: CipherSuite) -> Vec<u8> {
    [suite.kem, suite.kdf, suite.aead]
        .iter()
        .flat_map(|id| id.to_be_bytes())
        .collect()
}

/// The one accepted protected header (section 6.2): `a2 01 26|27 04 58 20 <kid>`.
fn protected_header(algorithm: SignatureAlgorithm, key_id: &KeyId) -> Vec<u8> {
    let alg = match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => 0x26,
        SignatureAlgorithm::Ed25519 => 0x27,
    };
    let mut out = vec![0xa2, 0x01, alg, 0x04, 0x58, 0x20];
    out.extend_from_slice(key_id.as_bytes());
    out
}

fn parse_protected(bytes: &[u8]) -> Result<(SignatureAlgorithm, KeyId), DecodeError> {
    let bad = DecodeError::Cose("protected header must be {1: -8 or -7, 4: 32-byte kid}");
    let (Some(prefix), Some(kid)) = (bytes.get(..6), bytes.get(6..)) else {
        return Err(bad);
    };
    let algorithm = match prefix {
        [0xa2, 0x01, 0x27, 0x04, 0x58, 0x20] => SignatureAlgorithm::Ed25519,
        [0xa2, 0x01, 0x26, 0x04, 0x58, 0x20] => SignatureAlgorithm::EcdsaP256Sha256,
        _ => return Err(bad),
    };
    let key_id = KeyId::from_slice(kid).ok_or(bad)?;
    Ok((algorithm, key_id))
}

fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    sig_structure_in(KeyRole::FactoryManifest, protected, payload)
}

fn sig_structure_in(role: KeyRole, protected: &[u8], payload: &[u8]) -> Vec<u8> {
    cbor::encode(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(external_aad(role)),
        Value::Bytes(payload.to_vec()),
    ]))
}

impl FactoryManifest {
    /// The signed manifest of `batch`, its secrets sealed to the server's import key
    /// (`import_public_key`, a public key of `import_suite`), signed by `signer` (a key the
    /// server trusts in role `FactoryManifest`). `created_at` is the factory's clock.
    pub fn build<R: CryptoRng>(
        batch: &FactoryBatch,
        created_at: Instant,
        import_suite: CipherSuite,
        import_public_key: &[u8],
        signer: &dyn Signer,
        rng: &mut R,
    ) -> Result<Vec<u8>, FactoryError> {
        let provider = RustCryptoProvider;
        if batch.devices.is_empty() || batch.devices.len() > MAX_MANIFEST_DEVICES {
            return Err(FactoryError::InvalidBatch(
                "a manifest lists 1 to 100,000 devices".into(),
            ));
        }
        let mut batch_id = [0u8; 16];
        rng.fill_bytes(&mut batch_id);
        let header = Value::Array(vec![
            Value::Bytes(batch_id.to_vec()),
            Value::Integer(created_at.0.into()),
            Value::Integer(batch.spec.device_type.into()),
            Value::Text(batch.spec.product_number.clone()),
            Value::Bytes(suite_bytes(import_suite)),
            Value::Bytes(import_public_key.to_vec()),
        ]);
        let secrets: Vec<Zeroizing<Vec<u8>>> = batch
            .devices
            .iter()
            .map(|d| {
                if d.device_type != batch.spec.device_type
                    || d.product_number != batch.spec.product_number
                {
                    return Err(FactoryError::InvalidBatch(
                        "every device of a manifest has the batch's type and product".into(),
                    ));
                }
                let mut value = Value::Array(vec![
                    Value::Bytes(d.key_id.as_bytes().to_vec()),
                    Value::Integer(d.serial.into()),
                    d.pin_record()
                        .map_or(Value::Null, |r| Value::Bytes(r.to_bytes().to_vec())),
                    d.device_secret
                        .as_ref()
                        .map_or(Value::Null, |s| Value::Bytes(s.expose_secret().to_vec())),
                ]);
                let encoded = Zeroizing::new(cbor::encode(&value));
                wipe(&mut value);
                Ok(encoded)
            })
            .collect::<Result<_, _>>()?;
        let plain: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
        let sealed = seal_to(
            import_suite,
            import_public_key,
            SECRETS_INFO,
            &secrets_aad(&header),
            &plain,
            rng,
        )
        .map_err(FactoryError::Seal)?;
        let devices = batch
            .devices
            .iter()
            .zip(sealed.ciphertexts)
            .map(|(d, ciphertext)| {
                Value::Array(vec![
                    Value::Integer(d.serial.into()),
                    Value::Array(vec![
                        Value::Integer(IDENTITY_CERTIFICATE.into()),
                        Value::Bytes(d.certificate_der.clone()),
                    ]),
                    Value::Bytes(ciphertext),
                ])
            })
            .collect();
        let payload = cbor::encode(&Value::Array(vec![
            Value::Integer(MANIFEST_FORMAT.into()),
            header,
            Value::Bytes(sealed.encapsulated_key),
            Value::Array(devices),
        ]));

        let protected = protected_header(signer.algorithm(), &signer.key_id());
        let tbs = ToBeSigned::new(sig_structure(&protected, &payload), &provider);
        let signature = signer.sign(&tbs).map_err(FactoryError::Signing)?;
        // One verification per manifest catches a faulty or misconfigured signer (an HSM
        // answering with another key) at the factory rather than at the server.
        if signature.algorithm != signer.algorithm() {
            return Err(FactoryError::Signing(SignatureError::ResponseMismatch));
        }
        provider
            .verify_signature(signer.public_key(), &tbs, &signature)
            .map_err(FactoryError::Signing)?;
        let manifest = cbor::encode(&Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(Vec::new()),
            Value::Bytes(payload),
            Value::Bytes(signature.bytes.to_vec()),
        ]));
        if manifest.len() > MAX_MANIFEST_LEN {
            return Err(FactoryError::ManifestTooLarge(format!(
                "{} bytes; the limit is {MAX_MANIFEST_LEN}",
                manifest.len()
            )));
        }
        Ok(manifest)
    }

    /// Checks a manifest and opens its secrets: the signature must verify under a key
    /// `trusted` holds in role [`KeyRole::FactoryManifest`], and the secrets must be sealed
    /// to `import_key`. `now` becomes each record's `created_at` (the import time).
    ///
    /// Never panics, whatever the bytes: every refusal is a [`FactoryError`].
    pub fn open(
        bytes: &[u8],
        trusted: &dyn KeyLookup,
        import_key: &SessionKeyPair,
        now: Instant,
    ) -> Result<OpenedManifest, FactoryError> {
        Self::open_with(bytes, trusted, import_key, now, &RustCryptoProvider)
    }

    /// [`Self::open`] with the signature checked through `provider` (`RustCryptoProvider`
    /// normally; a fuzz target passes `InsecureFuzzingProvider` to reach the payload decoder).
    pub fn open_with(
        bytes: &[u8],
        trusted: &dyn KeyLookup,
        import_key: &SessionKeyPair,
        now: Instant,
        provider: &dyn CryptoProvider,
    ) -> Result<OpenedManifest, FactoryError> {
        if bytes.len() > MAX_MANIFEST_LEN {
            return Err(FactoryError::ManifestTooLarge(format!(
                "{} bytes; the limit is {MAX_MANIFEST_LEN}",
                bytes.len()
            )));
        }
        let malformed = FactoryError::MalformedManifest;
        let [protected, unprotected, payload, signature] =
            cbor::fields::<4>(cbor::decode(bytes).map_err(malformed)?, "manifest")
                .map_err(malformed)?;
        let protected = cbor::bytes(protected, "protected header").map_err(malformed)?;
        let (algorithm, key_id) = parse_protected(&protected).map_err(malformed)?;
        if !matches!(&unprotected, Value::Map(m) if m.is_empty()) {
            return Err(malformed(DecodeError::Cose(
                "unprotected header must be empty",
            )));
        }
        let payload = cbor::bytes(payload, "payload").map_err(malformed)?;
        let signature = cbor::bytes(signature, "signature").map_err(malformed)?;
        let signature = Signature::from_slice(algorithm, &signature)
            .map_err(|_| malformed(DecodeError::Cose("signature must be 64 bytes")))?;

        let key = trusted
            .trusted_key(KeyRole::FactoryManifest, &key_id)
            .ok_or(FactoryError::UntrustedSigner)?;
        if key.key_id() != key_id {
            return Err(FactoryError::BadSignature(SignatureError::KeyIdMismatch));
        }
        if key.algorithm() != algorithm {
            return Err(FactoryError::BadSignature(
                SignatureError::AlgorithmMismatch,
            ));
        }
        let tbs = ToBeSigned::new(sig_structure(&protected, &payload), provider);
        provider
            .verify_signature(key, &tbs, &signature)
            .map_err(FactoryError::BadSignature)?;

        // From here on the bytes are the factory's own; they are still decoded strictly.
        let [format, header, enc, devices] = cbor::fields::<4>(
            cbor::decode(&payload).map_err(malformed)?,
            "manifest payload",
        )
        .map_err(malformed)?;
        let format = cbor::uint(&format, "format", u64::MAX).map_err(malformed)?;
        if format != MANIFEST_FORMAT {
            return Err(FactoryError::UnsupportedFormat(format));
        }
        let aad = secrets_aad(&header);
        let batch = decode_header(header, import_key, key_id)?;
        let enc = cbor::bytes(enc, "enc").map_err(malformed)?;
        let entries = match devices {
            Value::Array(items) if items.len() > MAX_MANIFEST_DEVICES => {
                return Err(FactoryError::ManifestTooLarge(format!(
                    "{} devices; the limit is {MAX_MANIFEST_DEVICES}",
                    items.len()
                )));
            }
            Value::Array(items) if items.is_empty() => {
                return Err(malformed(DecodeError::OutOfRange { field: "devices" }));
            }
            other => cbor::list(other, "devices", MAX_MANIFEST_DEVICES).map_err(malformed)?,
        };
        let mut devices = Vec::with_capacity(entries.len());
        let mut ciphertexts = Vec::with_capacity(entries.len());
        let mut keys = HashSet::with_capacity(entries.len());
        let mut serials = HashSet::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let (key_id, serial, identity, sealed) = decode_device(entry)?;
            if !keys.insert(key_id) || !serials.insert(serial) {
                return Err(FactoryError::DuplicateDevice { index });
            }
            devices.push((key_id, serial, identity));
            ciphertexts.push(sealed);
        }
        let refs: Vec<&[u8]> = ciphertexts.iter().map(Vec::as_slice).collect();
        let secrets = import_key
            .open(&enc, SECRETS_INFO, &aad, &refs)
            .map_err(|_| FactoryError::SecretsDoNotOpen)?;

        let devices = devices
            .into_iter()
            .zip(secrets)
            .map(|((key_id, serial, identity), secrets)| {
                let (pin, device_secret) = decode_secrets(&secrets, &key_id, serial)?;
                Ok(DeviceRecord {
                    key_id,
                    identity,
                    device_type: batch.device_type,
                    serial,
                    product_number: batch.product_number.clone(),
                    pin,
                    device_secret,
                    blocked: false,
                    created_at: now,
                })
            })
            .collect::<Result<_, FactoryError>>()?;
        Ok(OpenedManifest { batch, devices })
    }
}

/// [`FactoryManifest::open`]: the server's side.
pub fn open_manifest(
    bytes: &[u8],
    trusted: &dyn KeyLookup,
    import_key: &SessionKeyPair,
    now: Instant,
) -> Result<OpenedManifest, FactoryError> {
    FactoryManifest::open(bytes, trusted, import_key, now)
}

fn decode_header(
    header: Value,
    import_key: &SessionKeyPair,
    signed_by: KeyId,
) -> Result<ManifestBatch, FactoryError> {
    let malformed = FactoryError::MalformedManifest;
    let [
        batch_id,
        created_at,
        device_type,
        product_number,
        suite,
        import_public,
    ] = cbor::fields::<6>(header, "batch header").map_err(malformed)?;
    let batch_id = cbor::fixed_bytes::<16>(batch_id, "batch_id").map_err(malformed)?;
    let created_at = cbor::uint(&created_at, "created_at_ms", u64::MAX).map_err(malformed)?;
    let device_type =
        cbor::uint(&device_type, "device_type", u64::from(u32::MAX)).map_err(malformed)?;
    let device_type = u32::try_from(device_type).map_err(|_| {
        malformed(DecodeError::OutOfRange {
            field: "device_type",
        })
    })?;
    let Value::Text(product_number) = product_number else {
        return Err(malformed(DecodeError::UnexpectedType {
            field: "product_number",
            expected: "text string",
        }));
    };
    if product_number.is_empty()
        || product_number.len() > zerotouch_core::MAX_PRODUCT_NUMBER_LEN
        || !product_number
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        return Err(malformed(DecodeError::OutOfRange {
            field: "product_number",
        }));
    }
    let suite = cbor::fixed_bytes::<6>(suite, "import_suite").map_err(malformed)?;
    let import_public = cbor::bytes(import_public, "import_key").map_err(malformed)?;
    if suite != suite_bytes(import_key.suite()).as_slice()
        || import_public != import_key.public_key()
    {
        return Err(FactoryError::WrongImportKey);
    }
    Ok(ManifestBatch {
        batch_id,
        created_at: Instant(created_at),
        device_type,
        product_number,
        signed_by,
    })
}

type DeviceEntry = (KeyId, u64, DeviceIdentity, Vec<u8>);

fn decode_device(entry: Value) -> Result<DeviceEntry, FactoryError> {
    let malformed = FactoryError::MalformedManifest;
    let [serial, identity, sealed] = cbor::fields::<3>(entry, "device").map_err(malformed)?;
    let serial = cbor::uint(&serial, "serial", u64::MAX).map_err(malformed)?;
    let [kind, der] = cbor::fields::<2>(identity, "identity").map_err(malformed)?;
    let kind = cbor::uint(&kind, "identity kind", IDENTITY_PUBLIC_KEY).map_err(malformed)?;
    let der = cbor::bytes_in(der, "identity", 1, MAX_IDENTITY_LEN).map_err(malformed)?;
    let bad_identity = || malformed(DecodeError::OutOfRange { field: "identity" });
    let (key_id, identity) = match kind {
        IDENTITY_CERTIFICATE => {
            let key_id = DeviceCertificate::from_der(&der)
                .map_err(|_| bad_identity())?
                .key_id();
            (key_id, DeviceIdentity::Certificate(der))
        }
        IDENTITY_PUBLIC_KEY => {
            let key_id = PublicKey::from_spki_der(&der)
                .map_err(|_| bad_identity())?
                .key_id();
            (key_id, DeviceIdentity::PublicKey(der))
        }
        _ => return Err(bad_identity()),
    };
    let sealed = cbor::bytes(sealed, "sealed_secrets").map_err(malformed)?;
    Ok((key_id, serial, identity, sealed))
}

fn decode_secrets(
    plaintext: &[u8],
    key_id: &KeyId,
    serial: u64,
) -> Result<(Option<PinRecord>, Option<DeviceSecret>), FactoryError> {
    let malformed = FactoryError::MalformedManifest;
    let [sealed_key_id, sealed_serial, pin, secret] =
        cbor::fields::<4>(cbor::decode(plaintext).map_err(malformed)?, "secrets")
            .map_err(malformed)?;
    let sealed_key_id =
        cbor::fixed_bytes::<32>(sealed_key_id, "secrets key_id").map_err(malformed)?;
    let sealed_serial =
        cbor::uint(&sealed_serial, "secrets serial", u64::MAX).map_err(malformed)?;
    if sealed_key_id != *key_id.as_bytes() || sealed_serial != serial {
        // Secrets sealed for another device: the factory's signer wrote an inconsistent file.
        return Err(FactoryError::SecretsDoNotOpen);
    }
    // Secret bytes are moved out of the decoded value into zeroizing buffers, never copied.
    let pin = cbor::nullable(pin, |v| cbor::bytes(v, "pin_record").map(Zeroizing::new))
        .map_err(malformed)?
        .map(|bytes| {
            PinRecord::from_bytes(&bytes)
                .ok()
                .filter(|_| bytes.len() == PIN_RECORD_LEN)
                .filter(|r| r.iterations() >= zerotouch_store::MIN_PIN_ITERATIONS)
                .ok_or(malformed(DecodeError::OutOfRange {
                    field: "pin_record",
                }))
        })
        .transpose()?;
    let secret = cbor::nullable(secret, |v| {
        cbor::bytes(v, "device_secret").map(Zeroizing::new)
    })
    .map_err(malformed)?
    .map(|bytes| {
        DeviceSecret::from_slice(&bytes).map_err(|_| {
            malformed(DecodeError::OutOfRange {
                field: "device_secret",
            })
        })
    })
    .transpose()?;
    Ok((pin, secret))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use rand_core::SeedableRng;
    use zerotouch_core::{PinnedKey, PinnedKeys, SigningKey, SoftwareSigner};

    /// The role is part of what is signed: the same key, trusted as a manifest key, signing
    /// the same payload in another role's AAD, does not verify as a manifest.
    #[test]
    fn signature_made_in_another_role_does_not_verify() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([3; 32]);
        let key = SoftwareSigner::new(
            SigningKey::generate(SignatureAlgorithm::Ed25519, &mut rng).unwrap(),
        );
        let import =
            SessionKeyPair::generate(CipherSuite::X25519_SHA256_CHACHA20POLY1305, &mut rng)
                .unwrap();
        let trusted = PinnedKeys::new(vec![PinnedKey::new(
            KeyRole::FactoryManifest,
            key.public_key().clone(),
        )]);
        let protected = protected_header(key.algorithm(), &key.key_id());
        let payload = cbor::encode(&Value::Array(vec![Value::Integer(1.into())]));
        for role in [
            KeyRole::SetupSigning,
            KeyRole::ProvisionerOrder,
            KeyRole::FactoryManifest,
        ] {
            let tbs = ToBeSigned::new(
                sig_structure_in(role, &protected, &payload),
                &RustCryptoProvider,
            );
            let signature = key.sign(&tbs).unwrap();
            let manifest = cbor::encode(&Value::Array(vec![
                Value::Bytes(protected.clone()),
                Value::Map(Vec::new()),
                Value::Bytes(payload.clone()),
                Value::Bytes(signature.bytes.to_vec()),
            ]));
            let result = FactoryManifest::open(&manifest, &trusted, &import, Instant(0));
            if role == KeyRole::FactoryManifest {
                // Verified; then refused for its (deliberately incomplete) payload.
                assert!(matches!(result, Err(FactoryError::MalformedManifest(_))));
            } else {
                assert!(
                    matches!(result, Err(FactoryError::BadSignature(_))),
                    "{role:?}"
                );
            }
        }
    }
}
