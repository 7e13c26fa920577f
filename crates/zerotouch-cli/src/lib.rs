//! The `zerotouch` command line: what OEMs and operators use every day.
//!
//! - **Key ceremony**: server signing keys, the type/serial → key map, rotation and
//!   revocation, and the pinned-key bundle firmware embeds (C header + CBOR).
//! - **Factory**: a batch of devices with keys or certificates for signing requests, PINs,
//!   device secrets, labels (payload and QR PNG) and the signed manifest the server imports.
//! - **Operations**: accounts, networks, registrars, registration from a barcode payload,
//!   blocking, outcomes and the audit log.
//! - **serve**: the HTTPS server (`zerotouch-http`) with the embedded store in a data
//!   directory ([`DataDir`]), and with `--dns-listen` the DNS server (`zerotouch-dns`) in
//!   front of the same setup service.
//! - **simulate** and **demo**: devices run against a server, each step printed; `demo
//!   --over dns` carries flow 1 in DNS queries through a local unbound.
//!
//! Secrets are read from files or standard input, never from arguments, and never printed.
//! The binary is a thin `main` over [`run`]; the library is what the tests and the demo
//! call.
//!
//! ```
//! use clap::Parser as _;
//! use zerotouch_cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["zerotouch", "--json", "keys", "list"]).unwrap();
//! assert!(cli.json);
//! assert!(matches!(cli.command, Command::Keys(_)));
//! ```

#![forbid(unsafe_code)]

mod ceremony;
mod cli;
mod data_dir;
mod demo;
mod demo_dns;
mod error;
mod factory_batch;
mod key_file;
mod operations;
mod output;
mod pinned_bundle;
mod secret_input;
mod serve;
mod simulate;
pub mod simulated_device;
mod store_location;

pub use cli::*;
pub use data_dir::{DataDir, ImportPublicKey, Settings, TrustRole};
pub use error::CliError;
pub use factory_batch::{BatchEntry, read_entries};
pub use key_file::{read_signing_key, signing_key_from_pem, signing_key_to_pem};
pub use output::Output;
pub use pinned_bundle::c_header;
pub use secret_input::read_secret;
pub use simulate::load_device;
pub use store_location::{OpenedStore, StoreArg, StoreLocation};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng as _;
use store_location::with_store;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output::new(cli.json);
    let store = match &cli.store {
        Some(arg) => arg.location()?,
        None => StoreLocation::Embedded,
    };
    let data = DataDir::new(&cli.data)
        .with_store(store)
        .with_store_ca(cli.store_ca.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(&out, args).await,
            Command::Init(args) => ceremony::init(&out, &data, &args.server_name).await,
            Command::Ca(cmd) => ceremony::ca(&out, &data, cmd),
            Command::Factory(FactoryCommand::Batch(args)) => factory_batch::batch(&out, &args),
            Command::Register(args) => operations::register(&out, &data, args).await,
            Command::Serve(args) => serve::run(&out, &data, args).await,
            Command::Simulate(args) => simulate::run(&out, &data, args).await,
            // The rest work on the store, whichever kind it is.
            command => with_store!(data.open_store().await?, store => {
                on_store(&out, &data, &store, command).await
            }),
        }
    })
}

/// The commands that work on the store.
async fn on_store(
    out: &Output,
    data: &DataDir,
    store: &impl zerotouch_store::Store,
    command: Command,
) -> Result<(), CliError> {
    match command {
        Command::Keys(cmd) => ceremony::keys(out, data, store, cmd).await,
        Command::Devices(cmd) => operations::devices(out, data, store, cmd).await,
        Command::Accounts(cmd) => operations::accounts(out, store, cmd).await,
        Command::Networks(cmd) => operations::networks(out, store, cmd).await,
        Command::Registrars(cmd) => operations::registrars(out, store, cmd).await,
        Command::Outcomes(args) => operations::outcomes(out, store, &args.device).await,
        Command::Audit(args) => operations::audit(out, store, args.after, args.limit).await,
        _ => Err(CliError::BadArgument(
            "this command does not use the store".into(),
        )),
    }
}

/// A CSPRNG seeded from the operating system.
pub(crate) fn system_rng() -> Result<ChaCha20Rng, CliError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice())
        .map_err(|e| CliError::BadArgument(format!("the system RNG failed: {e}")))?;
    Ok(ChaCha20Rng::from_seed(*seed))
}

/// Milliseconds since the Unix epoch: the store's clock.
pub(crate) fn now() -> zerotouch_core::Instant {
    zerotouch_core::Instant(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}
