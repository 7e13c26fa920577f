//! Key ceremony: the data directory, CAs, server signing keys, the type/serial map,
//! rotation, revocation and the pinned-key bundle.

use std::path::Path;

use serde_json::json;
use zerotouch_core::{KeyRole, KeyState, SignatureAlgorithm, SigningKey};
use zerotouch_pki::{CertificateAuthority, ClientRole, Validity};
use zerotouch_store::ServerKeyRecord;

use crate::cli::{CaCommand, ClientRoleArg, KeyRoleArg, KeysCommand};
use crate::data_dir::{DataDir, parse_key_id};
use crate::key_file::write_signing_key;
use crate::secret_input::{read_secret_text, read_text, write_private_file, write_public_file};
use crate::{CliError, Output, now, system_rng};
use zerotouch_core::PinnedKeyBundle;

/// `init`.
pub async fn init(out: &Output, data: &DataDir, server_name: &str) -> Result<(), CliError> {
    let settings = data.init(server_name).await?;
    out.result(
        &format!(
            "initialised {} for server {}\n  clients check the server against {}\n  factories seal secrets to {}",
            data.root().display(),
            settings.server_name,
            data.tls_ca_path().display(),
            data.import_public_path().display()
        ),
        json!({
            "data": data.root(),
            "server_name": settings.server_name,
            "server_ca": data.tls_ca_path(),
            "import_public_key": data.import_public_path(),
        }),
    );
    Ok(())
}

fn with_suffix(prefix: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// Loads a CA from PREFIX.crt.pem and PREFIX.key.pem.
pub fn load_ca(prefix: &Path) -> Result<CertificateAuthority, CliError> {
    let cert = read_text(&with_suffix(prefix, ".crt.pem"))?;
    let key = read_secret_text(&with_suffix(prefix, ".key.pem"))?;
    Ok(CertificateAuthority::from_pem(&cert, &key)?)
}

/// Writes a CA to PREFIX.crt.pem and PREFIX.key.pem (0600).
pub fn write_ca(prefix: &Path, ca: &CertificateAuthority) -> Result<(), CliError> {
    let (cert, key) = ca.to_pem();
    write_public_file(&with_suffix(prefix, ".crt.pem"), cert.as_bytes())?;
    write_private_file(&with_suffix(prefix, ".key.pem"), key.as_bytes())
}

/// `ca …`.
pub fn ca(out: &Output, data: &DataDir, cmd: CaCommand) -> Result<(), CliError> {
    match cmd {
        CaCommand::Create {
            name,
            out: prefix,
            algorithm,
            years,
        } => {
            let ca = CertificateAuthority::new(&name, algorithm, Validity::years_from_now(years))?;
            write_ca(&prefix, &ca)?;
            out.result(
                &format!("CA {name:?}: {}.crt.pem and {}.key.pem", prefix.display(), prefix.display()),
                json!({"certificate": with_suffix(&prefix, ".crt.pem"), "key": with_suffix(&prefix, ".key.pem")}),
            );
        }
        CaCommand::IssueClient {
            ca,
            role,
            name,
            out: prefix,
            years,
        } => {
            let ca = load_ca(&ca)?;
            let role = match role {
                ClientRoleArg::Registrar => ClientRole::Registrar,
                ClientRoleArg::Provisioner => ClientRole::Provisioner,
            };
            let issued = ca.issue_client(role, &name, Validity::years_from_now(years))?;
            write_public_file(
                &with_suffix(&prefix, ".crt.pem"),
                issued.certificate_pem().as_bytes(),
            )?;
            write_private_file(
                &with_suffix(&prefix, ".key.pem"),
                issued.private_key_pem().as_bytes(),
            )?;
            out.result(
                &format!("{role:?} certificate for {name:?}: {}.crt.pem", prefix.display()),
                json!({"certificate": with_suffix(&prefix, ".crt.pem"), "key": with_suffix(&prefix, ".key.pem")}),
            );
        }
        CaCommand::Trust { role, certificate } => {
            data.settings()?;
            let at = data.add_trusted_ca(role, &certificate)?;
            out.result(
                &format!("trusting {} for {role:?}", certificate.display()),
                json!({"role": role, "path": at}),
            );
        }
    }
    Ok(())
}

fn state_name(state: KeyState) -> &'static str {
    match state {
        KeyState::Active => "active",
        KeyState::Retired => "retired",
        KeyState::Revoked => "revoked",
    }
}

fn role_name(role: KeyRole) -> &'static str {
    match role {
        KeyRole::DeviceIdentity => "device-identity",
        KeyRole::SetupSigning => "setup",
        KeyRole::RevocationVerdict => "revocation",
        KeyRole::Association => "association",
        KeyRole::ProvisionerOrder => "provisioner-order",
        KeyRole::FactoryManifest => "factory-manifest",
    }
}

fn key_json(k: &ServerKeyRecord) -> serde_json::Value {
    json!({
        "key_id": hex::encode(k.key_id.0),
        "role": role_name(k.role),
        "algorithm": format!("{:?}", k.public_key.algorithm()),
        "state": state_name(k.state),
        "replacement": k.replacement.map(|r| hex::encode(r.0)),
    })
}

/// Creates a key of `role`: its private half in the data directory (or at `out` for a
/// factory key), its public half in the store.
pub(crate) async fn create_key(
    data: &DataDir,
    store: &impl zerotouch_store::Store,
    role: KeyRole,
    algorithm: SignatureAlgorithm,
    out: Option<&Path>,
) -> Result<ServerKeyRecord, CliError> {
    let mut rng = system_rng()?;
    let key = SigningKey::generate(algorithm, &mut rng)?;
    let public = key.public_key();
    let path = match out {
        Some(p) => p.to_path_buf(),
        None => data.server_key_path(&public.key_id()),
    };
    // The private half is on disk before the store trusts the public half, so a crash in
    // between leaves an unused file, never a trusted key nobody can sign with.
    write_signing_key(&path, &key)?;
    let id = store.add_server_key(role, public, now()).await?;
    store
        .server_keys()
        .await?
        .into_iter()
        .find(|k| k.key_id == id)
        .ok_or_else(|| CliError::UnknownKey(hex::encode(id.0)))
}

/// `keys …`.
pub async fn keys(
    out: &Output,
    data: &DataDir,
    store: &impl zerotouch_store::Store,
    cmd: KeysCommand,
) -> Result<(), CliError> {
    match cmd {
        KeysCommand::Create {
            role,
            algorithm,
            out: key_out,
        } => {
            let key_out = if role == KeyRoleArg::FactoryManifest {
                key_out
            } else {
                None
            };
            let record =
                create_key(data, store, role.role(), algorithm, key_out.as_deref()).await?;
            out.result(
                &format!(
                    "{} key {} ({:?}){}",
                    role_name(record.role),
                    hex::encode(record.key_id.0),
                    algorithm,
                    key_out
                        .map(|p| format!(", private half at {}", p.display()))
                        .unwrap_or_default()
                ),
                key_json(&record),
            );
        }
        KeysCommand::List => {
            let keys = store.server_keys().await?;
            let map = store.key_map().await?;
            let mut text = String::new();
            for k in &keys {
                text.push_str(&format!(
                    "{}  {:<16} {:<8} {:?}\n",
                    hex::encode(k.key_id.0),
                    role_name(k.role),
                    state_name(k.state),
                    k.public_key.algorithm()
                ));
            }
            for r in &map {
                text.push_str(&format!(
                    "map: type {} serials {}..={} -> {}\n",
                    r.device_type,
                    r.first_serial,
                    r.last_serial,
                    hex::encode(r.key_id.0)
                ));
            }
            out.result(
                text.trim_end(),
                json!({
                    "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
                    "map": map.iter().map(|r| json!({
                        "device_type": r.device_type,
                        "first_serial": r.first_serial,
                        "last_serial": r.last_serial,
                        "key_id": hex::encode(r.key_id.0),
                    })).collect::<Vec<_>>(),
                }),
            );
        }
        KeysCommand::Map {
            device_type,
            first_serial,
            last_serial,
            key,
        } => {
            let key_id = parse_key_id(&key)?;
            let keys = store.server_keys().await?;
            let record = keys
                .iter()
                .find(|k| k.key_id == key_id)
                .ok_or_else(|| CliError::UnknownKey(key.clone()))?;
            if record.role != KeyRole::SetupSigning {
                return Err(CliError::BadArgument(format!(
                    "key {key} is a {} key; only setup keys are mapped",
                    role_name(record.role)
                )));
            }
            if record.state == KeyState::Revoked {
                return Err(CliError::BadArgument(format!("key {key} is revoked")));
            }
            // The ring checks ranges the way the server will load them.
            let mut map = store.key_map().await?;
            let rule = zerotouch_core::KeyMapRule {
                device_type,
                first_serial,
                last_serial,
                key_id,
            };
            map.push(rule);
            data.key_ring(&keys, &map).map_err(|e| match e {
                CliError::Key(_) => CliError::BadArgument(format!(
                    "serials {first_serial}..={last_serial} of type {device_type} are empty or overlap a mapped range"
                )),
                other => other,
            })?;
            store.add_key_map_rule(rule).await?;
            out.result(
                &format!("type {device_type} serials {first_serial}..={last_serial} -> {key}"),
                json!({"device_type": device_type, "first_serial": first_serial, "last_serial": last_serial, "key_id": key}),
            );
        }
        KeysCommand::Rotate { role, algorithm } => {
            if role == KeyRoleArg::FactoryManifest {
                return Err(CliError::BadArgument(
                    "factory-manifest keys are rotated at the factory: create a new one, then revoke the old".into(),
                ));
            }
            let old: Vec<ServerKeyRecord> = store
                .server_keys()
                .await?
                .into_iter()
                .filter(|k| k.role == role.role() && k.state == KeyState::Active)
                .collect();
            let new = create_key(data, store, role.role(), algorithm, None).await?;
            for k in &old {
                store.retire_server_key(&k.key_id).await?;
            }
            out.result(
                &format!(
                    "new {} key {}; retired {}",
                    role_name(new.role),
                    hex::encode(new.key_id.0),
                    if old.is_empty() {
                        "none".to_string()
                    } else {
                        old.iter()
                            .map(|k| hex::encode(k.key_id.0))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
                json!({
                    "new": key_json(&new),
                    "retired": old.iter().map(|k| hex::encode(k.key_id.0)).collect::<Vec<_>>(),
                }),
            );
        }
        KeysCommand::Revoke { key, replacement } => {
            let key_id = parse_key_id(&key)?;
            let replacement = replacement.as_deref().map(parse_key_id).transpose()?;
            store.revoke_server_key(&key_id, replacement, now()).await?;
            // Revocation is final: the private half is of no further use, so it goes. (A
            // deleted file is not securely erased on every file system; keep data
            // directories on encrypted storage.)
            let path = data.server_key_path(&key_id);
            let destroyed = match std::fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(CliError::File { path, source: e }),
            };
            out.result(
                &format!(
                    "revoked {key}{}",
                    if destroyed { "; private half deleted" } else { "" }
                ),
                json!({"revoked": key, "replacement": replacement.map(|r| hex::encode(r.0)), "private_key_deleted": destroyed}),
            );
        }
        KeysCommand::ExportBundle { header, cbor } => {
            let keys = store.server_keys().await?;
            let map = store.key_map().await?;
            let bundle = bundle_of(&keys, &map);
            if !bundle.keys.iter().any(|(r, _)| *r == KeyRole::SetupSigning) {
                return Err(CliError::BadArgument(
                    "no active setup key to pin: run `zerotouch keys create --role setup` first"
                        .into(),
                ));
            }
            write_public_file(&cbor, &bundle.encode(&zerotouch_core::RustCryptoProvider))?;
            write_public_file(&header, crate::pinned_bundle::c_header(&bundle).as_bytes())?;
            out.result(
                &format!(
                    "pinned-key bundle: {} keys, {} indications -> {} and {}",
                    bundle.keys.len(),
                    bundle.indications.len(),
                    header.display(),
                    cbor.display()
                ),
                json!({
                    "keys": bundle.keys.iter().map(|(r, k)| json!({"role": role_name(*r), "key_id": hex::encode(k.key_id().0)})).collect::<Vec<_>>(),
                    "indications": bundle.indications.len(),
                    "header": header,
                    "cbor": cbor,
                }),
            );
        }
    }
    Ok(())
}

/// What new firmware pins: active setup, revocation and association keys, and the map's rules
/// whose key is one of them.
pub fn bundle_of(keys: &[ServerKeyRecord], map: &[zerotouch_core::KeyMapRule]) -> PinnedKeyBundle {
    let pinned: Vec<&ServerKeyRecord> = keys
        .iter()
        .filter(|k| {
            k.state == KeyState::Active
                // Flow-2 devices check challenge and verification data against the
                // association key, so firmware pins it too.
                && matches!(
                    k.role,
                    KeyRole::SetupSigning | KeyRole::RevocationVerdict | KeyRole::Association
                )
        })
        .collect();
    PinnedKeyBundle {
        keys: pinned
            .iter()
            .map(|k| (k.role, k.public_key.clone()))
            .collect(),
        indications: map
            .iter()
            .filter(|r| pinned.iter().any(|k| k.key_id == r.key_id))
            .copied()
            .collect(),
    }
}
