//! `factory batch`: a batch of devices on disk and the signed manifest the server imports.
//!
//! ```text
//! OUT/manifest.cbor               signed manifest (secrets sealed to the server's import key)
//! OUT/devices.json                one entry per device: serial, key id, label, file names
//! OUT/<type>-<serial>/certificate.pem
//! OUT/<type>-<serial>/key.pem     identity key, PKCS#8 (0600; only for keys made here)
//! OUT/<type>-<serial>/pin         the PIN printed inside the box (0600)
//! OUT/<type>-<serial>/device-secret   flow-2 device secret, hex (0600)
//! OUT/<type>-<serial>/label-code  flow-2 label code to print on the device, `1234 5678` (0600)
//! OUT/<type>-<serial>/label-record    what the firmware stores for it: w0 || L, hex (0600)
//! OUT/<type>-<serial>/label.txt   the box label's barcode payload
//! OUT/<type>-<serial>/label.png   the same as a QR code
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use zerotouch_core::SoftwareSigner;
use zerotouch_factory::{BatchSpec, FactoryBatch, FactoryManifest, KeySource, make_batch};
use zerotouch_peer::{LabelRecord, PairingCode};

use crate::ceremony::load_ca;
use crate::cli::BatchArgs;
use crate::data_dir::{ImportPublicKey, certificate_pem};
use crate::key_file::read_signing_key;
use crate::secret_input::{write_private_file, write_public_file};
use crate::{CliError, Output, now, system_rng};

/// One device in `devices.json` (no secrets: those are in files of their own, mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchEntry {
    /// Device type.
    pub device_type: u32,
    /// Serial number.
    pub serial: u64,
    /// Identity key id, hex.
    pub key_id: String,
    /// The box label's barcode payload.
    pub label: String,
    /// The device's directory, relative to the batch directory.
    pub dir: String,
    /// Whether `key.pem` is there (keys made here).
    pub has_key: bool,
    /// Whether `pin` is there.
    pub has_pin: bool,
    /// Whether `label-code` and `label-record` are there.
    #[serde(default)]
    pub has_label_code: bool,
}

/// Reads a batch's `devices.json`.
pub fn read_entries(batch: &Path) -> Result<Vec<BatchEntry>, CliError> {
    let path = batch.join("devices.json");
    serde_json::from_str(&crate::secret_input::read_text(&path)?)
        .map_err(|e| CliError::BadArgument(format!("{}: {e}", path.display())))
}

fn signing_requests(dir: &Path) -> Result<Vec<Vec<u8>>, CliError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(CliError::file(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "csr" || x == "pem" || x == "der")
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(CliError::BadArgument(format!(
            "{}: no signing requests (*.csr, *.pem, *.der)",
            dir.display()
        )));
    }
    paths
        .iter()
        .map(|p| std::fs::read(p).map_err(CliError::file(p)))
        .collect()
}

/// Makes the batch in memory and writes it to `out`.
pub fn make(args: &BatchArgs) -> Result<(FactoryBatch, Vec<u8>), CliError> {
    let ca = load_ca(&args.ca)?;
    let signer = SoftwareSigner::new(read_signing_key(&args.signing_key)?);
    let import = ImportPublicKey::read(&args.import_key)?;
    let (keys, count) = match &args.csr_dir {
        Some(dir) => {
            let requests = signing_requests(dir)?;
            let n = u32::try_from(requests.len())
                .map_err(|_| CliError::BadArgument("too many signing requests".into()))?;
            (KeySource::SigningRequests(requests), n)
        }
        None => (KeySource::Generate, args.count),
    };
    let spec = BatchSpec {
        device_type: args.device_type,
        first_serial: args.first_serial,
        count,
        product_number: args.product.clone(),
        algorithm: args.algorithm,
        pin_digits: (args.pin_digits > 0).then_some(args.pin_digits),
        device_secrets: args.device_secrets,
        pin_iterations: args.pin_iterations,
    };
    let mut rng = system_rng()?;
    let batch = make_batch(&spec, keys, &ca, &mut rng)?;
    let manifest = FactoryManifest::build(
        &batch,
        now(),
        import.suite(),
        &import.public_key_bytes()?,
        &signer,
        &mut rng,
    )?;
    Ok((batch, manifest))
}

/// Writes a made batch to `out` (which must not exist).
pub fn write(
    out_dir: &Path,
    batch: &FactoryBatch,
    manifest: &[u8],
    label_codes: bool,
) -> Result<Vec<BatchEntry>, CliError> {
    let mut rng = system_rng()?;
    std::fs::create_dir(out_dir).map_err(|e| crate::secret_input::create_error(out_dir, e))?;
    let mut entries = Vec::new();
    for device in &batch.devices {
        let name = format!("{}-{}", device.device_type, device.serial);
        let dir = out_dir.join(&name);
        std::fs::create_dir(&dir).map_err(CliError::file(&dir))?;
        let cert_pem = certificate_pem(&device.certificate_der);
        write_public_file(&dir.join("certificate.pem"), cert_pem.as_bytes())?;
        if let Some(key) = device.private_key_pem() {
            write_private_file(&dir.join("key.pem"), key.as_bytes())?;
        }
        if let Some(pin) = &device.pin {
            write_private_file(&dir.join("pin"), pin.expose_secret().as_bytes())?;
        }
        if let Some(secret) = &device.device_secret {
            let hex_secret = zeroize::Zeroizing::new(hex::encode(secret.expose_secret()));
            write_private_file(&dir.join("device-secret"), hex_secret.as_bytes())?;
        }
        if label_codes {
            // The device keeps only the record; the code goes on its label and nowhere else.
            let code = PairingCode::generate(&mut rng);
            let record = LabelRecord::from_code(&code, &device.key_id)
                .map_err(|e| CliError::BadArgument(format!("label record: {e}")))?;
            write_private_file(&dir.join("label-code"), code.grouped().as_bytes())?;
            let hex_record = zeroize::Zeroizing::new(hex::encode(record.to_bytes()));
            write_private_file(&dir.join("label-record"), hex_record.as_bytes())?;
        }
        let label = device.label.encode();
        write_public_file(&dir.join("label.txt"), label.as_bytes())?;
        write_public_file(&dir.join("label.png"), &device.qr_png()?)?;
        entries.push(BatchEntry {
            device_type: device.device_type,
            serial: device.serial,
            key_id: hex::encode(device.key_id.0),
            label,
            dir: name,
            has_key: device.private_key.is_some(),
            has_pin: device.pin.is_some(),
            has_label_code: label_codes,
        });
    }
    write_public_file(&out_dir.join("manifest.cbor"), manifest)?;
    let listing =
        serde_json::to_string_pretty(&entries).map_err(|e| CliError::BadArgument(e.to_string()))?;
    write_public_file(&out_dir.join("devices.json"), listing.as_bytes())?;
    Ok(entries)
}

/// `factory batch`.
pub fn batch(out: &Output, args: &BatchArgs) -> Result<(), CliError> {
    let (batch, manifest) = make(args)?;
    let entries = write(&args.out, &batch, &manifest, args.label_codes)?;
    let mut text = format!(
        "{} devices of type {} in {}; manifest {} ({} B)",
        entries.len(),
        args.device_type,
        args.out.display(),
        args.out.join("manifest.cbor").display(),
        manifest.len()
    );
    for e in &entries {
        text.push_str(&format!(
            "\n  {:>8}  {}  {}",
            e.serial,
            e.key_id.get(..16).unwrap_or_default(),
            e.label
        ));
    }
    out.result(
        &text,
        json!({
            "out": args.out,
            "manifest": args.out.join("manifest.cbor"),
            "devices": entries,
        }),
    );
    Ok(())
}
