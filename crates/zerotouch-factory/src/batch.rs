//! A batch of devices: keys (made here, or certified from the devices' signing requests),
//! certificates, PINs, device secrets and box labels.

use core::fmt;
use std::collections::HashSet;

use rand_core::CryptoRng;
use zeroize::Zeroizing;
use zerotouch_core::{
    BarcodePayload, DeviceCertificate, DeviceSecret, KeyFingerprint, KeyId, Pin, PublicKey,
    SignatureAlgorithm, SigningKey,
};
use zerotouch_pki::CertificateAuthority;
use zerotouch_store::{MIN_PIN_ITERATIONS, PinRecord};

use crate::FactoryError;

/// Most devices in one batch (and one manifest).
pub const MAX_BATCH_DEVICES: u32 = 100_000;

/// Bytes of the key id printed on the label as its fingerprint (128 bits, the minimum the
/// protocol allows: the shortest label).
pub const LABEL_FINGERPRINT_LEN: usize = 16;

/// What to make: `count` devices of one type and product, serials from `first_serial`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSpec {
    /// Device type (selects the server key and capabilities).
    pub device_type: u32,
    /// Serial of the first device; the others follow, one apart.
    pub first_serial: u64,
    /// How many devices (1 to [`MAX_BATCH_DEVICES`]).
    pub count: u32,
    /// Product number as printed on the label: 1 to 24 characters `0-9A-Z`.
    pub product_number: String,
    /// Algorithm of the device keys: the keys made here, or the keys every signing request
    /// must hold.
    pub algorithm: SignatureAlgorithm,
    /// Digits of each device's PIN (6 to 12), or `None` for products without a PIN.
    pub pin_digits: Option<u8>,
    /// Whether each device gets a flow-2 device secret.
    pub device_secrets: bool,
    /// PBKDF2 iterations of the PIN records in the manifest (at least
    /// [`zerotouch_store::MIN_PIN_ITERATIONS`]; [`zerotouch_store::DEFAULT_PIN_ITERATIONS`] in
    /// production, about 10 ms per device).
    pub pin_iterations: u32,
}

/// Where the device keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Made here; the factory flashes each private key into its device.
    Generate,
    /// One PKCS#10 signing request (DER or PEM) per device, in serial order: each device (or
    /// its secure element) made its key and never lets it out.
    SigningRequests(Vec<Vec<u8>>),
}

/// One device of a batch: everything the factory writes into it, prints on its box and
/// reports to the server. `Debug` never shows the private key, PIN or device secret.
pub struct FactoryDevice {
    /// SHA-256 of the identity key's SubjectPublicKeyInfo.
    pub key_id: KeyId,
    /// Device type.
    pub device_type: u32,
    /// Serial number.
    pub serial: u64,
    /// Product number.
    pub product_number: String,
    /// The device certificate (DER) from the manufacturer CA, never expiring.
    pub certificate_der: Vec<u8>,
    /// The identity key, when it was made here (never when it came from a signing request).
    /// The factory flashes it into the device; it is never in the manifest.
    pub private_key: Option<SigningKey>,
    /// The PIN, when the product has one: printed inside the box, stored by the server only
    /// as a slow hash.
    pub pin: Option<Pin>,
    /// The flow-2 device secret, when the batch has them: flashed into the device and sealed
    /// to the server in the manifest.
    pub device_secret: Option<DeviceSecret>,
    /// The label on the box: fingerprint, type and product number, **no PIN** (anyone who
    /// handles the box can read it; see [`Self::in_box_label`]).
    pub label: BarcodePayload,
    pin_record: Option<PinRecord>,
}

impl fmt::Debug for FactoryDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactoryDevice")
            .field("key_id", &self.key_id)
            .field("device_type", &self.device_type)
            .field("serial", &self.serial)
            .field("product_number", &self.product_number)
            .field(
                "certificate_der",
                &format_args!("{} bytes", self.certificate_der.len()),
            )
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("pin", &self.pin)
            .field("device_secret", &self.device_secret)
            .field("label", &self.label.encode())
            .finish()
    }
}

impl FactoryDevice {
    /// The label inside the box: the box label plus the PIN, which proves the holder opened
    /// the box (it lets a registrar move a device another account owns, and the device
    /// proves it during setup). `None` when the device has no PIN.
    pub fn in_box_label(&self) -> Option<BarcodePayload> {
        self.pin.as_ref().map(|pin| BarcodePayload {
            pin: Some(pin.clone()),
            ..self.label.clone()
        })
    }

    /// The identity public key.
    pub fn public_key(&self) -> Result<PublicKey, FactoryError> {
        DeviceCertificate::from_der(&self.certificate_der)
            .map(|c| c.public_key().clone())
            .map_err(|_| FactoryError::InvalidBatch("device certificate does not parse".into()))
    }

    /// The private key as PKCS#8 PEM (`PRIVATE KEY`), zeroized on drop, for simulated or
    /// prototype devices that load a key file. `None` when the key came from a signing
    /// request (the device holds it).
    pub fn private_key_pem(&self) -> Option<Zeroizing<String>> {
        self.private_key.as_ref().map(crate::pkcs8::pkcs8_pem)
    }

    /// The private key as PKCS#8 DER, zeroized on drop. `None` as for
    /// [`Self::private_key_pem`].
    pub fn private_key_pkcs8(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.private_key.as_ref().map(crate::pkcs8::pkcs8_der)
    }

    /// A QR code of the box label ([`Self::label`]) as PNG.
    pub fn qr_png(&self) -> Result<Vec<u8>, FactoryError> {
        crate::qr::qr_png(&self.label)
    }

    /// A QR code of the in-box label (with the PIN) as PNG; `None` when the device has no PIN.
    /// The PNG shows the PIN to whoever sees it: print it and delete it.
    pub fn in_box_qr_png(&self) -> Option<Result<Vec<u8>, FactoryError>> {
        self.in_box_label().map(|label| crate::qr::qr_png(&label))
    }

    /// The PIN record (salted PBKDF2 hash) the manifest carries for this device.
    pub fn pin_record(&self) -> Option<&PinRecord> {
        self.pin_record.as_ref()
    }
}

/// A batch of devices made by [`make_batch`].
#[derive(Debug)]
pub struct FactoryBatch {
    /// What was asked for.
    pub spec: BatchSpec,
    /// The devices, in serial order.
    pub devices: Vec<FactoryDevice>,
}

fn check_spec(spec: &BatchSpec) -> Result<(), FactoryError> {
    let invalid = |what: &str| Err(FactoryError::InvalidBatch(what.into()));
    if spec.count == 0 || spec.count > MAX_BATCH_DEVICES {
        return invalid("count must be 1 to 100,000");
    }
    if spec
        .first_serial
        .checked_add(u64::from(spec.count) - 1)
        .is_none()
    {
        return invalid("serial numbers would pass 2^64 - 1");
    }
    if let Some(digits) = spec.pin_digits
        && !(Pin::MIN_DIGITS..=Pin::MAX_DIGITS).contains(&usize::from(digits))
    {
        return invalid("a PIN has 6 to 12 digits");
    }
    if spec.pin_digits.is_some() && spec.pin_iterations < MIN_PIN_ITERATIONS {
        return invalid("too few PIN hash iterations (zerotouch_store::MIN_PIN_ITERATIONS)");
    }
    Ok(())
}

/// Makes a batch: for each device its key (or the key of its signing request), its
/// certificate from `ca`, its PIN and PIN record, its device secret and its labels. Randomness
/// (keys, PINs, salts, secrets) comes from `rng`, which must be a CSPRNG.
///
/// Nothing is half done: any refused input (a signing request that does not verify, a key
/// of another algorithm, a key given twice, a product number that cannot be printed) fails
/// the whole batch.
pub fn make_batch<R: CryptoRng + ?Sized>(
    spec: &BatchSpec,
    keys: KeySource,
    ca: &CertificateAuthority,
    rng: &mut R,
) -> Result<FactoryBatch, FactoryError> {
    check_spec(spec)?;
    let requests = match keys {
        KeySource::Generate => None,
        KeySource::SigningRequests(requests) => {
            if requests.len() != spec.count as usize {
                return Err(FactoryError::SigningRequestCount {
                    expected: spec.count,
                    found: requests.len(),
                });
            }
            Some(requests)
        }
    };
    let mut seen = HashSet::with_capacity(spec.count as usize);
    let mut devices = Vec::with_capacity(spec.count as usize);
    for index in 0..spec.count {
        let i = index as usize;
        let serial = spec.first_serial + u64::from(index);
        let (public, private_key) = match requests.as_ref().and_then(|r| r.get(i)) {
            Some(csr) => {
                let key = zerotouch_pki::csr_public_key(csr)
                    .map_err(|source| FactoryError::SigningRequest { index: i, source })?;
                if key.algorithm() != spec.algorithm {
                    return Err(FactoryError::SigningRequestAlgorithm {
                        index: i,
                        found: key.algorithm(),
                        expected: spec.algorithm,
                    });
                }
                (key, None)
            }
            None => {
                let key =
                    SigningKey::generate(spec.algorithm, rng).map_err(FactoryError::Signing)?;
                (key.public_key(), Some(key))
            }
        };
        let key_id = public.key_id();
        if !seen.insert(key_id) {
            return Err(FactoryError::DuplicateDevice { index: i });
        }
        let certificate_der = ca
            .issue_device(&public, spec.device_type, serial)
            .map_err(FactoryError::Certificate)?;
        let pin = spec
            .pin_digits
            .map(|digits| Pin::generate(rng, usize::from(digits)).map_err(FactoryError::Pin))
            .transpose()?;
        let pin_record = pin
            .as_ref()
            .map(|pin| {
                let mut salt = [0u8; 16];
                rng.fill_bytes(&mut salt);
                PinRecord::with_salt(pin, salt, spec.pin_iterations)
                    .map_err(FactoryError::PinRecord)
            })
            .transpose()?;
        let device_secret = spec.device_secrets.then(|| DeviceSecret::generate(rng));
        let label = BarcodePayload {
            fingerprint: KeyFingerprint::of(&key_id, LABEL_FINGERPRINT_LEN)
                .map_err(FactoryError::Label)?,
            device_type: spec.device_type,
            product_number: spec.product_number.clone(),
            pin: None,
        };
        // Refuse a label that would not scan back (a product number outside 0-9A-Z, too
        // long): better now than on ten thousand printed boxes.
        BarcodePayload::decode(&label.encode()).map_err(FactoryError::Label)?;
        devices.push(FactoryDevice {
            key_id,
            device_type: spec.device_type,
            serial,
            product_number: spec.product_number.clone(),
            certificate_der,
            private_key,
            pin,
            device_secret,
            label,
            pin_record,
        });
    }
    Ok(FactoryBatch {
        spec: spec.clone(),
        devices,
    })
}
