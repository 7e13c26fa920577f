//! Operations: devices, accounts, networks, registrars, registration over HTTPS, outcomes
//! and the audit log. Local commands work on the store `serve` uses (the embedded one allows
//! them while `serve` runs, PostgreSQL always does); `register` is a registrar's client and
//! goes over HTTPS.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use zeroize::Zeroizing;
use zerotouch_core::{BarcodePayload, DeviceCertificate, Passphrase};
use zerotouch_http::api::{AuditRecord, RegistrationRequest};
use zerotouch_http::{RegistrarClient, ServerEndpoint, ServerTrust, client_tls_config};
use zerotouch_store::{
    AccountId, Bands, DeviceIdentity, NewNetwork, OutcomeKind, RegistrarCredential, SecurityType,
    Store,
};

use crate::cli::{
    AccountsCommand, DevicesCommand, NetworksCommand, RegisterArgs, RegistrarsCommand, SecurityArg,
    ServerArgs,
};
use crate::data_dir::{DataDir, parse_key_id, read_certificates};
use crate::secret_input::{read_secret, read_secret_text};
use crate::{CliError, Output, now};

/// `devices …`.
pub async fn devices(
    out: &Output,
    data: &DataDir,
    store: &impl Store,
    cmd: DevicesCommand,
) -> Result<(), CliError> {
    match cmd {
        DevicesCommand::Import { manifest } => {
            let bytes = std::fs::read(&manifest).map_err(CliError::file(&manifest))?;
            let (count, report) = import_manifest(data, store, &bytes).await?;
            out.result(
                &format!(
                    "imported {}: {} devices, {} new, {} already present",
                    manifest.display(),
                    count,
                    report.added,
                    report.unchanged
                ),
                json!({"devices": count, "added": report.added, "unchanged": report.unchanged}),
            );
        }
        DevicesCommand::Show { device } => {
            let key_id = parse_key_id(&device)?;
            let record = store
                .device(&key_id)
                .await?
                .ok_or_else(|| CliError::BadArgument(format!("no device {device}")))?;
            let accounts: Vec<i64> = store
                .associations_of_device(&key_id)
                .await?
                .iter()
                .map(|a| a.account.0)
                .collect();
            let identity = match record.identity {
                DeviceIdentity::Certificate(_) => "certificate",
                DeviceIdentity::PublicKey(_) => "public key",
            };
            out.result(
                &format!(
                    "device {device}\n  type {} serial {} product {}\n  identity: {identity}; PIN: {}; device secret: {}\n  blocked: {}\n  accounts: {accounts:?}",
                    record.device_type,
                    record.serial,
                    record.product_number,
                    if record.pin.is_some() { "recorded" } else { "none" },
                    if record.device_secret.is_some() { "recorded" } else { "none" },
                    record.blocked,
                ),
                json!({
                    "key_id": device,
                    "device_type": record.device_type,
                    "serial": record.serial,
                    "product_number": record.product_number,
                    "identity": identity,
                    "has_pin": record.pin.is_some(),
                    "has_device_secret": record.device_secret.is_some(),
                    "blocked": record.blocked,
                    "accounts": accounts,
                }),
            );
        }
        DevicesCommand::Block { device } => set_blocked(out, store, &device, true).await?,
        DevicesCommand::Unblock { device } => set_blocked(out, store, &device, false).await?,
    }
    Ok(())
}

async fn set_blocked(
    out: &Output,
    store: &impl Store,
    device: &str,
    blocked: bool,
) -> Result<(), CliError> {
    let key_id = parse_key_id(device)?;
    store.set_blocked(&key_id, blocked).await?;
    out.result(
        &format!(
            "device {device} {}",
            if blocked { "blocked" } else { "unblocked" }
        ),
        json!({"key_id": device, "blocked": blocked}),
    );
    Ok(())
}

/// `accounts …`.
pub async fn accounts(
    out: &Output,
    store: &impl Store,
    cmd: AccountsCommand,
) -> Result<(), CliError> {
    match cmd {
        AccountsCommand::Add { name } => {
            let id = store.create_account(&name, now()).await?;
            out.result(
                &format!("account {} ({name})", id.0),
                json!({"account": id.0, "name": name}),
            );
        }
        AccountsCommand::Show { account } => {
            let id = AccountId(account);
            let record = store
                .account(id)
                .await?
                .ok_or_else(|| CliError::BadArgument(format!("no account {account}")))?;
            let networks = store.networks_of_account(id).await?;
            let devices = store.devices_of_account(id).await?;
            let mut text = format!("account {account} ({})", record.name);
            for n in &networks {
                text.push_str(&format!(
                    "\n  network {} {:?} {:?}",
                    n.id.0,
                    String::from_utf8_lossy(&n.ssid),
                    n.security
                ));
            }
            for d in &devices {
                text.push_str(&format!("\n  device {}", hex::encode(d.0)));
            }
            // Passphrases are never printed, not even in JSON.
            out.result(
                &text,
                json!({
                    "account": account,
                    "name": record.name,
                    "networks": networks.iter().map(|n| json!({
                        "network": n.id.0,
                        "ssid": String::from_utf8_lossy(&n.ssid),
                        "security": format!("{:?}", n.security),
                        "bands": n.bands.bits(),
                    })).collect::<Vec<_>>(),
                    "devices": devices.iter().map(|d| hex::encode(d.0)).collect::<Vec<_>>(),
                }),
            );
        }
    }
    Ok(())
}

fn parse_bands(names: &[String]) -> Result<Bands, CliError> {
    let mut bits = 0u8;
    for name in names {
        bits |= match name.trim() {
            "2.4" => Bands::GHZ_2_4.bits(),
            "5" => Bands::GHZ_5.bits(),
            "6" => Bands::GHZ_6.bits(),
            other => {
                return Err(CliError::BadArgument(format!(
                    "band {other:?}: expected 2.4, 5 or 6"
                )));
            }
        };
    }
    Bands::from_bits(bits).ok_or_else(|| CliError::BadArgument("no band given".into()))
}

/// `networks …`.
pub async fn networks(
    out: &Output,
    store: &impl Store,
    cmd: NetworksCommand,
) -> Result<(), CliError> {
    match cmd {
        NetworksCommand::Add {
            account,
            ssid,
            passphrase_file,
            security,
            bands,
        } => {
            let passphrase = Passphrase::new(&read_secret(&passphrase_file)?)?;
            let id = store
                .add_network(
                    NewNetwork {
                        account: AccountId(account),
                        ssid: ssid.clone().into_bytes(),
                        passphrase,
                        security: match security {
                            SecurityArg::Wpa2 => SecurityType::Wpa2Personal,
                            SecurityArg::Wpa3 => SecurityType::Wpa3Personal,
                        },
                        bands: parse_bands(&bands)?,
                    },
                    now(),
                )
                .await?;
            out.result(
                &format!("network {} {ssid:?} on account {account}", id.0),
                json!({"network": id.0, "account": account, "ssid": ssid}),
            );
        }
    }
    Ok(())
}

/// Checks a signed manifest against the factory-manifest keys the store trusts, opens its
/// secrets with the data directory's import key and imports its devices (all or none).
/// Returns the number of devices and what the import did.
pub(crate) async fn import_manifest(
    data: &DataDir,
    store: &impl Store,
    bytes: &[u8],
) -> Result<(usize, zerotouch_store::ImportReport), CliError> {
    use zerotouch_core::{KeyRole, KeyState, PinnedKey, PinnedKeys};
    let trusted: Vec<PinnedKey> = store
        .server_keys()
        .await?
        .into_iter()
        .filter(|k| k.role == KeyRole::FactoryManifest && k.state != KeyState::Revoked)
        .map(|k| PinnedKey::new(KeyRole::FactoryManifest, k.public_key))
        .collect();
    if trusted.is_empty() {
        return Err(CliError::BadArgument(
            "no factory-manifest key is trusted: run `zerotouch keys create --role factory-manifest` first".into(),
        ));
    }
    let opened = zerotouch_factory::open_manifest(
        bytes,
        &PinnedKeys::new(trusted),
        &data.import_key()?,
        now(),
    )?;
    // Records carry the manifest's time, not the import's, so importing the same manifest
    // again finds identical records and changes nothing.
    let made_at = opened.batch.created_at;
    let devices: Vec<_> = opened
        .devices
        .into_iter()
        .map(|mut d| {
            d.created_at = made_at;
            d
        })
        .collect();
    let count = devices.len();
    Ok((count, store.import_devices(devices).await?))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// `registrars …`.
pub async fn registrars(
    out: &Output,
    store: &impl Store,
    cmd: RegistrarsCommand,
) -> Result<(), CliError> {
    match cmd {
        RegistrarsCommand::Add {
            name,
            certificate,
            token_file,
        } => {
            let (credential, how) = match (certificate, token_file) {
                (Some(cert), None) => {
                    let der = read_certificates(&cert)?
                        .into_iter()
                        .next()
                        .ok_or_else(|| CliError::NoCertificate(cert.clone()))?;
                    let key = DeviceCertificate::from_der(der.as_ref())
                        .map_err(|e| CliError::BadArgument(format!("{}: {e}", cert.display())))?
                        .key_id();
                    (RegistrarCredential::Certificate(key), "certificate")
                }
                (None, Some(token)) => {
                    let token = read_secret(&token)?;
                    (
                        RegistrarCredential::ApiTokenHash(sha256(&token)),
                        "API token",
                    )
                }
                _ => {
                    return Err(CliError::BadArgument(
                        "give --certificate or --token-file".into(),
                    ));
                }
            };
            let id = store.add_registrar(&name, credential, now()).await?;
            out.result(
                &format!("registrar {} ({name}) by {how}", id.0),
                json!({"registrar": id.0, "name": name, "credential": how}),
            );
        }
    }
    Ok(())
}

/// The endpoint and the server trust from `args`, defaulting to the data directory's.
pub fn server_of(data: &DataDir, args: &ServerArgs) -> Result<(ServerEndpoint, Vec<u8>), CliError> {
    let name = match &args.server_name {
        Some(n) => n.clone(),
        None => data.settings()?.server_name,
    };
    let ca_path = args.server_ca.clone().unwrap_or_else(|| data.tls_ca_path());
    let ca = read_certificates(&ca_path)?
        .into_iter()
        .next()
        .ok_or(CliError::NoCertificate(ca_path))?;
    Ok((ServerEndpoint::new(args.server, name), ca.as_ref().to_vec()))
}

/// `register`.
pub async fn register(out: &Output, data: &DataDir, args: RegisterArgs) -> Result<(), CliError> {
    let (endpoint, ca_der) = server_of(data, &args.server)?;
    let trust = ServerTrust::Ca {
        ca_der,
        check_dates: true,
    };
    let label_text = if args.label == "-" {
        String::from_utf8_lossy(&read_secret(Path::new("-"))?)
            .trim()
            .to_owned()
    } else {
        args.label.clone()
    };
    // Decoding here gives a clear error before anything goes on the wire.
    BarcodePayload::decode(&label_text).map_err(CliError::Barcode)?;
    let (identity, token) = match (&args.certificate, &args.key, &args.token_file) {
        (Some(cert), Some(key), None) => {
            let chain = read_certificates(cert)?;
            let key_pem = read_secret_text(key)?;
            let key = {
                use rustls_pki_types::pem::PemObject as _;
                rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                    .map_err(|_| CliError::BadKeyFile { path: key.clone() })?
            };
            (Some((chain, key)), None)
        }
        (None, None, Some(token)) => (None, Some(read_secret_text(token)?)),
        _ => {
            return Err(CliError::BadArgument(
                "give --certificate and --key, or --token-file".into(),
            ));
        }
    };
    let pin = args.pin_file.as_deref().map(read_secret_text).transpose()?;
    let tls = client_tls_config(identity, trust)?;
    let mut client = RegistrarClient::new(endpoint, Arc::clone(&tls), token);
    let response = client
        .register(&RegistrationRequest {
            label: label_text,
            account: args.account,
            pin: pin.map(|p| Zeroizing::new(p.as_str().to_owned())),
            owner_consent: None,
        })
        .await?;
    out.result(
        &format!(
            "registered to account {}: {:?}",
            args.account, response.result
        ),
        json!({"account": args.account, "result": response.result, "previous_accounts": response.previous_accounts}),
    );
    Ok(())
}

fn outcome_name(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Joined => "joined",
        OutcomeKind::WrongPassphrase => "wrong_passphrase",
        OutcomeKind::NetworkGone => "network_gone",
        OutcomeKind::DhcpFailed => "dhcp_failed",
        OutcomeKind::Other => "other",
    }
}

/// `outcomes`.
pub async fn outcomes(out: &Output, store: &impl Store, device: &str) -> Result<(), CliError> {
    let key_id = parse_key_id(device)?;
    let outcomes = store.outcomes_of_device(&key_id).await?;
    let text = if outcomes.is_empty() {
        format!("device {device}: no outcome reported")
    } else {
        outcomes
            .iter()
            .map(|o| {
                format!(
                    "{} {} network {}",
                    o.at.0,
                    outcome_name(o.kind),
                    o.network.map_or("-".to_string(), |n| n.0.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    out.result(
        &text,
        json!({
            "device": device,
            "outcomes": outcomes.iter().map(|o| json!({
                "at_ms": o.at.0,
                "outcome": outcome_name(o.kind),
                "network": o.network.map(|n| n.0),
                "session": hex::encode(o.session.0),
            })).collect::<Vec<_>>(),
        }),
    );
    Ok(())
}

/// `audit`.
pub async fn audit(
    out: &Output,
    store: &impl Store,
    after: u64,
    limit: usize,
) -> Result<(), CliError> {
    let records: Vec<AuditRecord> = store
        .audit_log(after, limit)
        .await?
        .iter()
        .map(AuditRecord::of)
        .collect();
    let text = if records.is_empty() {
        "no audit entries".to_string()
    } else {
        records
            .iter()
            .map(|r| {
                format!(
                    "{:>6} {} {:<11} device {} account {} by registrar {}",
                    r.seq, r.at_ms, r.action, r.device, r.account, r.registrar
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    out.result(&text, json!({ "entries": records }));
    Ok(())
}
