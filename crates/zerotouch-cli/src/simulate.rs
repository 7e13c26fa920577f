//! `simulate`: devices from a factory batch run flow 1 against a server, each step printed
//! for one device, a progress bar for many.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant as Clock};

use serde_json::json;
use zerotouch_core::{Passphrase, Pin, SoftwareSigner};

use crate::cli::SimulateArgs;
use crate::data_dir::{DataDir, parse_key_id, read_certificates};
use crate::factory_batch::{BatchEntry, read_entries};
use crate::key_file::read_signing_key;
use crate::operations::server_of;
use crate::secret_input::read_secret_text;
use crate::simulated_device::{NetworkInRange, SimulatedDevice, run_device};
use crate::{CliError, Output};
use zerotouch_core::{PinnedKeyBundle, RustCryptoProvider};

/// Loads a device of a batch: certificate, key and PIN.
pub fn load_device(batch: &Path, entry: &BatchEntry) -> Result<SimulatedDevice, CliError> {
    let dir = batch.join(&entry.dir);
    if !entry.has_key {
        return Err(CliError::BadArgument(format!(
            "device {}: its key is in the device (signing request), so it cannot be simulated",
            entry.serial
        )));
    }
    let certificate = read_certificates(&dir.join("certificate.pem"))?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::NoCertificate(dir.join("certificate.pem")))?;
    let pin = if entry.has_pin {
        Some(Pin::new(&read_secret_text(&dir.join("pin"))?)?)
    } else {
        None
    };
    Ok(SimulatedDevice {
        serial: entry.serial,
        device_type: entry.device_type,
        key_id: parse_key_id(&entry.key_id)?,
        certificate_der: certificate.as_ref().to_vec(),
        signer: Arc::new(SoftwareSigner::new(read_signing_key(&dir.join("key.pem"))?)),
        pin,
    })
}

/// `simulate`.
pub async fn run(out: &Output, data: &DataDir, args: SimulateArgs) -> Result<(), CliError> {
    let (endpoint, server_ca) = server_of(data, &args.server)?;
    let bundle_bytes = std::fs::read(&args.bundle).map_err(CliError::file(&args.bundle))?;
    let bundle = PinnedKeyBundle::decode(&bundle_bytes, &RustCryptoProvider)
        .map_err(|e| CliError::BadArgument(format!("{}: {e}", args.bundle.display())))?;
    let mut entries = read_entries(&args.batch)?;
    if let Some(n) = args.count {
        entries.truncate(n);
    }
    let devices = entries
        .iter()
        .map(|e| load_device(&args.batch, e))
        .collect::<Result<Vec<_>, _>>()?;
    let networks: Vec<NetworkInRange> = args
        .networks
        .iter()
        .map(|ssid| NetworkInRange {
            ssid: ssid.as_bytes().to_vec(),
            passphrase: None::<Passphrase>,
        })
        .collect();
    let bound = Duration::from_secs(args.timeout);
    let started = Clock::now();

    if let [device] = devices.as_slice() {
        out.step(
            "device",
            &format!(
                "{}-{} boots for the first time",
                device.device_type, device.serial
            ),
        );
        let pinned = bundle.pinned_keys_for(device.device_type, device.serial)?;
        let run = run_device(
            device,
            pinned,
            &endpoint,
            &server_ca,
            &networks,
            Some(out),
            bound,
        )
        .await?;
        let joined =
            String::from_utf8_lossy(run.joined.as_deref().unwrap_or_default()).into_owned();
        let took = started.elapsed();
        out.result(
            &format!(
                "device {}-{} joined {joined:?} after {} exchanges in {} ms",
                device.device_type,
                device.serial,
                run.exchanges,
                took.as_millis()
            ),
            json!({
                "devices": 1,
                "joined": 1,
                "failed": 0,
                "network": joined,
                "exchanges": run.exchanges,
                "elapsed_ms": took.as_millis(),
            }),
        );
        return Ok(());
    }

    let bar = if out.is_json() {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(devices.len() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} devices joined, {per_sec}, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let endpoint = Arc::new(endpoint);
    let server_ca = Arc::new(server_ca);
    let networks = Arc::new(networks);
    let mut tasks = tokio::task::JoinSet::new();
    for device in devices {
        let pinned = bundle.pinned_keys_for(device.device_type, device.serial)?;
        let (permits, endpoint, server_ca, networks) = (
            Arc::clone(&permits),
            Arc::clone(&endpoint),
            Arc::clone(&server_ca),
            Arc::clone(&networks),
        );
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = run_device(
                &device, pinned, &endpoint, &server_ca, &networks, None, bound,
            )
            .await;
            (device.serial, result)
        });
    }
    let mut joined = 0usize;
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((_, Ok(_))) => joined += 1,
            Ok((serial, Err(e))) => failures.push((serial, e.to_string())),
            Err(e) => failures.push((0, format!("task failed: {e}"))),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let took = started.elapsed();
    let total = joined + failures.len();
    let per_second = total as f64 / took.as_secs_f64().max(1e-9);
    let mut text = format!(
        "{joined} of {total} devices joined in {} ms ({per_second:.1} devices/s)",
        took.as_millis()
    );
    for (serial, reason) in &failures {
        text.push_str(&format!("\n  device {serial}: {reason}"));
    }
    out.result(
        &text,
        json!({
            "devices": total,
            "joined": joined,
            "failed": failures.len(),
            "failures": failures.iter().map(|(s, r)| json!({"serial": s, "reason": r})).collect::<Vec<_>>(),
            "elapsed_ms": took.as_millis(),
        }),
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::DeviceFailed {
            device: format!("{} of {total}", failures.len()),
            reason: "did not join".into(),
        })
    }
}
