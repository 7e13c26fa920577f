//! `demo`: the main job in one command. On loopback it starts the HTTPS server with the
//! embedded store, makes a factory batch of one device, creates an account with a home
//! network, registers the device from its barcode payload as a registrar over mutual TLS,
//! and runs the device through flow 1 over HTTPS with mutual TLS, printing each step as it
//! happens. Every piece is the real one the other commands use.
//!
//! `--over dns` runs the same, with the server's DNS server beside HTTPS and the device
//! speaking flow 1 in DNS queries through a local unbound ([`crate::demo_dns`]).

use std::time::Duration;

use serde_json::json;
use zerotouch_core::{DeviceCertificate, KeyRole, Passphrase, SignatureAlgorithm};
use zerotouch_dns::Zone;
use zerotouch_http::api::RegistrationRequest;
use zerotouch_http::{RegistrarClient, ServerEndpoint, ServerTrust, client_tls_config};
use zerotouch_pki::{CertificateAuthority, ClientRole, Validity};
use zerotouch_store::{
    AccountStore as _, Bands, NewNetwork, OutcomeStore as _, RegistrarCredential,
    RegistrarStore as _, SecurityType, ServerKeyStore as _,
};

use crate::ceremony::{bundle_of, create_key, write_ca};
use crate::cli::{BatchArgs, DemoArgs, DemoTransport};
use crate::data_dir::{DataDir, TrustRole};
use crate::demo_dns::{DEMO_ZONE, run_device_over_dns};
use crate::serve::DnsListen;
use crate::simulated_device::{NetworkInRange, run_device};
use crate::{CliError, Output, now, system_rng};
use zerotouch_dns::local_resolver::{LocalResolver, ResolverOptions, find_unbound};

const SERVER_NAME: &str = "setup.zerotouch.test";
const DEVICE_TYPE: u32 = 7;
const HOME_SSID: &str = "home";

/// A passphrase no one chose and the demo never prints: 24 characters from a 62-letter
/// alphabet.
fn random_passphrase() -> Result<Passphrase, CliError> {
    use rand_core::Rng as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = system_rng()?;
    let text: zeroize::Zeroizing<Vec<u8>> = zeroize::Zeroizing::new(
        (0..24)
            .map(|_| {
                let i = usize::try_from(rng.next_u32() % 62).unwrap_or(0);
                ALPHABET.get(i).copied().unwrap_or(b'A')
            })
            .collect(),
    );
    Ok(Passphrase::new(&text)?)
}

/// `demo`.
pub async fn run(out: &Output, args: DemoArgs) -> Result<(), CliError> {
    // Over DNS the device needs a resolver: find it before anything is made or started.
    let unbound = match args.over {
        DemoTransport::Dns => Some(find_unbound()?),
        DemoTransport::Https => None,
    };
    let zone = Zone::new(DEMO_ZONE)
        .map_err(|e| CliError::BadArgument(format!("zone {DEMO_ZONE}: {e}")))?;
    let out = out.timed();
    let started = std::time::Instant::now();
    let temp = tempfile::tempdir().map_err(CliError::file(std::env::temp_dir()))?;
    let work = match &args.keep {
        Some(dir) => {
            std::fs::create_dir(dir).map_err(|e| crate::secret_input::create_error(dir, e))?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let work = work.as_path();
    let root = work.join("data");
    let data = DataDir::new(&root);

    // Server: data directory, embedded store, TLS identity, signing keys, pinned bundle.
    data.init(SERVER_NAME).await?;
    let store = data.open_embedded().await?;
    out.step(
        "server",
        &format!("data directory {} with the embedded store", root.display()),
    );
    let setup = create_key(
        &data,
        &store,
        KeyRole::SetupSigning,
        SignatureAlgorithm::EcdsaP256Sha256,
        None,
    )
    .await?;
    create_key(
        &data,
        &store,
        KeyRole::RevocationVerdict,
        SignatureAlgorithm::EcdsaP256Sha256,
        None,
    )
    .await?;
    store
        .add_key_map_rule(zerotouch_core::KeyMapRule {
            device_type: DEVICE_TYPE,
            first_serial: 1,
            last_serial: 999_999,
            key_id: setup.key_id,
        })
        .await?;
    let bundle = bundle_of(&store.server_keys().await?, &store.key_map().await?);
    out.step(
        "ceremony",
        &format!(
            "setup and revocation keys; type {DEVICE_TYPE} mapped to setup key {}; firmware pins {} keys",
            hex::encode(setup.key_id.0.get(..8).unwrap_or_default()),
            bundle.keys.len()
        ),
    );

    // Factory: manufacturer CA, manifest key, one device.
    let manufacturer = CertificateAuthority::new(
        "Demo manufacturer",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(20),
    )?;
    let ca_prefix = work.join("manufacturer");
    write_ca(&ca_prefix, &manufacturer)?;
    data.add_trusted_ca(TrustRole::Devices, &work.join("manufacturer.crt.pem"))?;
    let factory_key = work.join("factory-manifest.key.pem");
    create_key(
        &data,
        &store,
        KeyRole::FactoryManifest,
        SignatureAlgorithm::EcdsaP256Sha256,
        Some(&factory_key),
    )
    .await?;
    let batch_dir = work.join("batch");
    let batch_args = BatchArgs {
        ca: ca_prefix,
        signing_key: factory_key,
        import_key: data.import_public_path(),
        device_type: DEVICE_TYPE,
        first_serial: 1001,
        count: 1,
        product: "SMARTPLUG01".into(),
        algorithm: SignatureAlgorithm::EcdsaP256Sha256,
        csr_dir: None,
        pin_digits: 6,
        device_secrets: true,
        label_codes: false,
        pin_iterations: zerotouch_store::DEFAULT_PIN_ITERATIONS,
        out: batch_dir.clone(),
    };
    let (batch, manifest) = crate::factory_batch::make(&batch_args)?;
    let entries = crate::factory_batch::write(&batch_dir, &batch, &manifest, false)?;
    let entry = entries
        .first()
        .ok_or_else(|| CliError::BadArgument("the batch is empty".into()))?;
    out.step(
        "factory",
        &format!(
            "device {DEVICE_TYPE}-{}: key, certificate, PIN, device secret; box label {} (QR in {})",
            entry.serial,
            entry.label,
            batch_dir.join(&entry.dir).join("label.png").display()
        ),
    );
    let (_, report) = crate::operations::import_manifest(&data, &store, &manifest).await?;
    out.step(
        "server",
        &format!(
            "imported the signed manifest ({} B): {} device",
            manifest.len(),
            report.added
        ),
    );

    // The owner's account and home network; a shop's registrar.
    let account = store.create_account("demo owner", now()).await?;
    let passphrase = random_passphrase()?;
    store
        .add_network(
            NewNetwork {
                account,
                ssid: HOME_SSID.as_bytes().to_vec(),
                passphrase: passphrase.clone(),
                security: SecurityType::Wpa3Personal,
                bands: Bands::GHZ_2_4.union(Bands::GHZ_5),
            },
            now(),
        )
        .await?;
    out.step(
        "owner",
        &format!(
            "account {} with home network {HOME_SSID:?} (WPA3, passphrase kept secret)",
            account.0
        ),
    );
    let registrars = CertificateAuthority::new(
        "Demo registrars",
        SignatureAlgorithm::EcdsaP256Sha256,
        Validity::years_from_now(5),
    )?;
    write_ca(&work.join("registrars"), &registrars)?;
    data.add_trusted_ca(TrustRole::Registrars, &work.join("registrars.crt.pem"))?;
    let shop = registrars.issue_client(
        ClientRole::Registrar,
        "demo shop",
        Validity::years_from_now(1),
    )?;
    let shop_key = DeviceCertificate::from_der(shop.certificate_der())
        .map_err(|e| CliError::BadArgument(format!("registrar certificate: {e}")))?
        .key_id();
    store
        .add_registrar(
            "demo shop",
            RegistrarCredential::Certificate(shop_key),
            now(),
        )
        .await?;
    drop(store);

    // The HTTPS server on loopback (and over DNS, its DNS server beside it).
    let loopback: std::net::SocketAddr = (std::net::Ipv4Addr::LOCALHOST, 0).into();
    let dns = unbound.as_ref().map(|_| DnsListen {
        listen: loopback,
        zone: zone.clone(),
    });
    let server = crate::serve::start(
        &data,
        crate::serve::ServeSettings {
            dns,
            ..crate::serve::ServeSettings::new(loopback)
        },
    )
    .await?;
    let endpoint = ServerEndpoint::new(server.https.local_addr(), SERVER_NAME);
    let server_ca = crate::data_dir::read_certificates(&data.tls_ca_path())?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::NoCertificate(data.tls_ca_path()))?;
    out.step(
        "server",
        &format!(
            "https://{SERVER_NAME} listening on {} (mutual TLS)",
            server.https.local_addr()
        ),
    );
    // The device's resolver: unbound on loopback, sending the zone's queries to our server.
    let resolver = match (&unbound, &server.dns) {
        (Some(binary), Some(dns)) => {
            out.step(
                "server",
                &format!(
                    "DNS for {DEMO_ZONE} listening on {} (UDP and TCP), the same setup service",
                    dns.local_addr()
                ),
            );
            // unbound waits a second before asking our server again: a credential request
            // is answered only after the PIN check, and copies of it would only queue up.
            let options = ResolverOptions {
                min_retry_ms: Some(1000),
                ..ResolverOptions::default()
            };
            let resolver = LocalResolver::start(
                binary,
                &work.join("resolver"),
                zone.as_str(),
                dns.local_addr(),
                options,
            )
            .await?;
            out.step(
                "resolver",
                &format!(
                    "unbound {} on {}: {DEMO_ZONE} sent to {}, 0x20 case randomisation and \
                     QNAME minimisation on",
                    resolver.version(),
                    resolver.addr(),
                    dns.local_addr()
                ),
            );
            Some(resolver)
        }
        _ => None,
    };

    // The shop scans the box label into the owner's account.
    let mut shop_client = RegistrarClient::new(
        endpoint.clone(),
        client_tls_config(
            Some((shop.chain(), shop.private_key())),
            ServerTrust::Ca {
                ca_der: server_ca.as_ref().to_vec(),
                check_dates: true,
            },
        )?,
        None,
    );
    let registered = shop_client
        .register(&RegistrationRequest {
            label: entry.label.clone(),
            account: account.0,
            pin: None,
            owner_consent: None,
        })
        .await?;
    out.step(
        "registrar",
        &format!(
            "scanned {} into account {}: {:?}",
            entry.label, account.0, registered.result
        ),
    );

    // The device's first boot.
    let device = crate::simulate::load_device(&batch_dir, entry)?;
    let pinned = bundle.pinned_keys_for(device.device_type, device.serial)?;
    out.step(
        "device",
        &format!("{DEVICE_TYPE}-{} boots for the first time", device.serial),
    );
    let device_started = std::time::Instant::now();
    let networks = [
        NetworkInRange {
            ssid: HOME_SSID.as_bytes().to_vec(),
            passphrase: Some(passphrase),
        },
        NetworkInRange {
            ssid: b"neighbours".to_vec(),
            passphrase: None,
        },
    ];
    let bound = Duration::from_secs(60);
    let (result, cost) = match &resolver {
        None => {
            let run = run_device(
                &device,
                pinned,
                &endpoint,
                server_ca.as_ref(),
                &networks,
                Some(&out),
                bound,
            )
            .await;
            (run, None)
        }
        Some(resolver) => {
            out.step(
                "device",
                &format!(
                    "its only way out is DNS: queries for {DEMO_ZONE} to its resolver {}",
                    resolver.addr()
                ),
            );
            match run_device_over_dns(
                &device,
                pinned,
                resolver.addr(),
                &zone,
                &networks,
                Some(&out),
                bound,
            )
            .await
            {
                Ok((run, cost)) => (Ok(run), Some(cost)),
                Err(e) => (Err(e), None),
            }
        }
    };
    let device_time = device_started.elapsed();
    if let Some(resolver) = resolver {
        resolver.stop().await;
    }
    let store = data.open_embedded().await?;
    let outcomes = store.outcomes_of_device(&device.key_id).await?;
    server.shutdown().await;
    let run = result?;
    let joined = String::from_utf8_lossy(run.joined.as_deref().unwrap_or_default()).into_owned();
    out.step(
        "server",
        &format!(
            "outcome recorded: {}",
            outcomes
                .last()
                .map_or("none".to_string(), |o| format!("{:?}", o.kind))
        ),
    );
    let text = match &cost {
        None => format!(
            "done: the device joined {joined:?} after {} HTTPS exchanges in {} ms ({} ms in all)",
            run.exchanges,
            device_time.as_millis(),
            started.elapsed().as_millis()
        ),
        Some(cost) => format!(
            "done: the device joined {joined:?} after {} exchanges over DNS in {} ms: {} ({} ms \
             in all)",
            run.exchanges,
            device_time.as_millis(),
            cost.summary(),
            started.elapsed().as_millis()
        ),
    };
    out.result(
        &text,
        json!({
            "joined": joined,
            "over": match args.over {
                DemoTransport::Https => "https",
                DemoTransport::Dns => "dns",
            },
            "exchanges": run.exchanges,
            "device_ms": device_time.as_millis(),
            "total_ms": started.elapsed().as_millis(),
            "outcome_recorded": !outcomes.is_empty(),
            "dns": cost.map(|c| c.to_json()),
        }),
    );
    Ok(())
}
