//! The command line's grammar (clap derive): every command and its arguments, with the help
//! text `--help` prints.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::data_dir::TrustRole;

/// zerotouch: Wi-Fi onboarding with no typing. Key ceremony, factory batches, operations,
/// the setup server, device simulation and a one-command demo.
///
/// Secrets (passphrases, tokens, keys) are read from files or standard input (`-`), never
/// from arguments, and never printed.
#[derive(Debug, Parser)]
#[command(name = "zerotouch", version, propagate_version = true)]
pub struct Cli {
    /// Print results as JSON (one object per command) for scripts.
    #[arg(long, global = true)]
    pub json: bool,

    /// The server's data directory.
    #[arg(
        long,
        global = true,
        env = "ZEROTOUCH_DATA",
        default_value = "zerotouch-data"
    )]
    pub data: PathBuf,

    /// Where the server's state is: `embedded` (the default: SQLite in the data directory)
    /// or a PostgreSQL URL (postgres://user@host:port/database) that several `serve`
    /// processes share, each with a copy of the same data directory. The URL may carry a
    /// password: give it through ZEROTOUCH_STORE, not as an argument.
    #[arg(
        long,
        global = true,
        env = "ZEROTOUCH_STORE",
        hide_env_values = true,
        value_parser = crate::StoreArg::parse
    )]
    pub store: Option<crate::StoreArg>,

    /// Reach the PostgreSQL store over TLS, trusting the CA certificates in this PEM file for
    /// the database's certificate (which must name the URL's host). Without it the
    /// connection is plain TCP: keep such a database on a private network.
    #[arg(long, global = true, env = "ZEROTOUCH_STORE_CA")]
    pub store_ca: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole main job on loopback: server, factory, account, registration, device
    /// (over HTTPS, or over DNS through a local unbound with `--over dns`).
    Demo(DemoArgs),
    /// Create a data directory: store, data key, the server's TLS identity, the manifest
    /// import key.
    Init(InitArgs),
    /// Certificate authorities: create one, issue client certificates, trust one.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Key ceremony: server signing keys, the type/serial map, rotation, revocation, and the
    /// pinned-key bundle firmware embeds.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Factory: make a batch of devices and the signed manifest the server imports.
    #[command(subcommand)]
    Factory(FactoryCommand),
    /// Devices the server knows: import a manifest, show, block and unblock.
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Home networks of accounts.
    #[command(subcommand)]
    Networks(NetworksCommand),
    /// Registrars the server accepts (shops, apps, retailers' services).
    #[command(subcommand)]
    Registrars(RegistrarsCommand),
    /// Register a device to an account from its barcode payload, over HTTPS as a registrar.
    Register(RegisterArgs),
    /// The outcomes a device reported.
    Outcomes(OutcomesArgs),
    /// The association audit log.
    Audit(AuditArgs),
    /// Run the setup server over HTTPS (and DNS with --dns-listen) on the embedded store in
    /// the data directory, or on PostgreSQL with --store (any number of processes).
    Serve(ServeArgs),
    /// Run simulated devices from a factory batch against a server.
    Simulate(SimulateArgs),
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep everything the demo made (data directory, CAs, factory batch) in this new
    /// directory instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// How the device reaches the server: https (mutual TLS), or dns (flow 1 in DNS queries
    /// through a local unbound the demo starts on loopback; needs unbound installed).
    #[arg(long, value_enum, default_value = "https")]
    pub over: DemoTransport,
}

/// How the demo's device reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoTransport {
    /// HTTPS with mutual TLS, straight to the server.
    Https,
    /// DNS queries through a recursive resolver (a local unbound) to the server's zone.
    Dns,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The server's DNS name, put in its TLS certificate.
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
}

/// `ca …`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a CA: writes OUT.crt.pem and OUT.key.pem (0600).
    Create {
        /// The CA's common name.
        #[arg(long)]
        name: String,
        /// Output prefix.
        #[arg(long)]
        out: PathBuf,
        /// p256 or ed25519.
        #[arg(long, default_value = "p256", value_parser = crate::key_file::parse_algorithm)]
        algorithm: zerotouch_core::SignatureAlgorithm,
        /// Validity in years.
        #[arg(long, default_value_t = 20)]
        years: u32,
    },
    /// Issue a registrar or provisioner client certificate: OUT.crt.pem, OUT.key.pem.
    IssueClient {
        /// The CA's prefix (PREFIX.crt.pem, PREFIX.key.pem).
        #[arg(long)]
        ca: PathBuf,
        /// registrar or provisioner.
        #[arg(long)]
        role: ClientRoleArg,
        /// The client's name.
        #[arg(long)]
        name: String,
        /// Output prefix.
        #[arg(long)]
        out: PathBuf,
        /// Validity in years.
        #[arg(long, default_value_t = 1)]
        years: u32,
    },
    /// Trust a CA certificate for a client role in the data directory.
    Trust {
        /// devices, registrars or provisioners.
        #[arg(long)]
        role: TrustRole,
        /// The CA certificate (PEM).
        certificate: PathBuf,
    },
}

/// A client certificate's role.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ClientRoleArg {
    /// A registrar.
    Registrar,
    /// A provisioner relay.
    Provisioner,
}

/// A server key's role as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyRoleArg {
    /// Signs flow-1 proofs and credential responses.
    Setup,
    /// Signs revocation verdicts.
    Revocation,
    /// Signs flow-2 challenge and verification data (the association service).
    Association,
    /// Signs factory manifests (kept at the factory; only its public half is here).
    FactoryManifest,
}

impl KeyRoleArg {
    /// The core's role.
    pub fn role(self) -> zerotouch_core::KeyRole {
        match self {
            KeyRoleArg::Setup => zerotouch_core::KeyRole::SetupSigning,
            KeyRoleArg::Revocation => zerotouch_core::KeyRole::RevocationVerdict,
            KeyRoleArg::Association => zerotouch_core::KeyRole::Association,
            KeyRoleArg::FactoryManifest => zerotouch_core::KeyRole::FactoryManifest,
        }
    }
}

/// `keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a server signing key. Setup, revocation and association keys stay in the data
    /// directory; a factory-manifest key is written to --out for the factory and only its
    /// public half is kept.
    Create {
        /// What the key signs.
        #[arg(long)]
        role: KeyRoleArg,
        /// p256 or ed25519.
        #[arg(long, default_value = "p256", value_parser = crate::key_file::parse_algorithm)]
        algorithm: zerotouch_core::SignatureAlgorithm,
        /// Where to write a factory-manifest key (PKCS#8 PEM, 0600).
        #[arg(long, required_if_eq("role", "factory-manifest"))]
        out: Option<PathBuf>,
    },
    /// List server keys, their roles and states, and the type/serial map.
    List,
    /// Map devices of a type and serial range to the setup key that signs for them.
    Map {
        /// Device type.
        #[arg(long)]
        device_type: u32,
        /// First serial of the range.
        #[arg(long)]
        first_serial: u64,
        /// Last serial of the range (inclusive).
        #[arg(long)]
        last_serial: u64,
        /// The setup key's id (hex).
        #[arg(long)]
        key: String,
    },
    /// Rotate: create a new key of the role and retire the active ones (still used for
    /// devices that pin nothing newer).
    Rotate {
        /// setup, revocation or association.
        #[arg(long)]
        role: KeyRoleArg,
        /// p256 or ed25519.
        #[arg(long, default_value = "p256", value_parser = crate::key_file::parse_algorithm)]
        algorithm: zerotouch_core::SignatureAlgorithm,
    },
    /// Revoke a key: never used again, reported as revoked to devices, its private half
    /// deleted from the data directory.
    Revoke {
        /// The key's id (hex).
        key: String,
        /// The key devices should move to (same role, not revoked).
        #[arg(long)]
        replacement: Option<String>,
    },
    /// Export the pinned-key bundle firmware embeds: a C header and a CBOR file.
    ExportBundle {
        /// Where to write the C header.
        #[arg(long)]
        header: PathBuf,
        /// Where to write the CBOR bundle.
        #[arg(long)]
        cbor: PathBuf,
    },
}

/// `factory …`.
#[derive(Debug, Subcommand)]
pub enum FactoryCommand {
    /// Make N devices: keys (or certificates for signing requests), PINs, device secrets,
    /// labels (payload and QR PNG) and the signed manifest.
    Batch(BatchArgs),
}

/// `factory batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The manufacturer CA's prefix (PREFIX.crt.pem, PREFIX.key.pem).
    #[arg(long)]
    pub ca: PathBuf,
    /// The factory-manifest signing key (PKCS#8 PEM, from `keys create --role
    /// factory-manifest`).
    #[arg(long)]
    pub signing_key: PathBuf,
    /// The server's manifest import public key (manifest-import.pub.json).
    #[arg(long)]
    pub import_key: PathBuf,
    /// Device type.
    #[arg(long)]
    pub device_type: u32,
    /// First serial number.
    #[arg(long)]
    pub first_serial: u64,
    /// Number of devices (ignored with --csr-dir: one per request).
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Product number printed on the label.
    #[arg(long)]
    pub product: String,
    /// p256 or ed25519, for keys made here.
    #[arg(long, default_value = "p256", value_parser = crate::key_file::parse_algorithm)]
    pub algorithm: zerotouch_core::SignatureAlgorithm,
    /// Sign these PKCS#10 requests (*.csr, *.pem) instead of making keys: devices whose
    /// key never leaves a secure element.
    #[arg(long)]
    pub csr_dir: Option<PathBuf>,
    /// Digits of each device's PIN (0: no PIN).
    #[arg(long, default_value_t = 6)]
    pub pin_digits: u8,
    /// Give each device a flow-2 device secret.
    #[arg(long)]
    pub device_secrets: bool,
    /// Give each device a flow-2 label code (fallback (c)): the 8 digits to print on the
    /// device (`label-code`) and the record its firmware stores instead (`label-record`).
    #[arg(long)]
    pub label_codes: bool,
    /// PBKDF2 iterations of the PIN records in the manifest.
    #[arg(long, default_value_t = 100_000)]
    pub pin_iterations: u32,
    /// Output directory (created; must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

/// `devices …`.
#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Import a signed factory manifest (checked against the factory-manifest keys).
    Import {
        /// The manifest file.
        manifest: PathBuf,
    },
    /// Show a device.
    Show {
        /// The device's key id (hex).
        device: String,
    },
    /// Block a device: it is refused as if unknown.
    Block {
        /// The device's key id (hex).
        device: String,
    },
    /// Unblock a device.
    Unblock {
        /// The device's key id (hex).
        device: String,
    },
}

/// `accounts …`.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create an account.
    Add {
        /// Its name.
        #[arg(long)]
        name: String,
    },
    /// Show an account, its networks (without passphrases) and its devices.
    Show {
        /// The account id.
        account: i64,
    },
}

/// Wi-Fi security of a network.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SecurityArg {
    /// WPA2-Personal.
    Wpa2,
    /// WPA3-Personal (SAE).
    Wpa3,
}

/// `networks …`.
#[derive(Debug, Subcommand)]
pub enum NetworksCommand {
    /// Add a home network to an account; the passphrase comes from a file or `-` (stdin).
    Add {
        /// The account id.
        #[arg(long)]
        account: i64,
        /// The SSID.
        #[arg(long)]
        ssid: String,
        /// File holding the passphrase, or `-` for standard input.
        #[arg(long)]
        passphrase_file: PathBuf,
        /// wpa2 or wpa3.
        #[arg(long, default_value = "wpa3")]
        security: SecurityArg,
        /// Bands: 2.4, 5, 6, comma separated.
        #[arg(long, default_value = "2.4,5", value_delimiter = ',')]
        bands: Vec<String>,
    },
}

/// `registrars …`.
#[derive(Debug, Subcommand)]
pub enum RegistrarsCommand {
    /// Accept a registrar by its client certificate or by an API token.
    Add {
        /// A name for the audit log.
        #[arg(long)]
        name: String,
        /// Its client certificate (PEM), issued by a CA trusted for registrars.
        #[arg(long, conflicts_with = "token_file")]
        certificate: Option<PathBuf>,
        /// A file holding its API token, or `-`; only the token's SHA-256 is stored.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
}

/// How a client reaches the server.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's address (host:port).
    #[arg(long)]
    pub server: SocketAddr,
    /// The name in the server's certificate (default: the data directory's setting).
    #[arg(long)]
    pub server_name: Option<String>,
    /// The CA to check the server's certificate against (default: the data directory's).
    #[arg(long)]
    pub server_ca: Option<PathBuf>,
}

/// `register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The registrar's client certificate (PEM).
    #[arg(long, requires = "key")]
    pub certificate: Option<PathBuf>,
    /// Its key (PEM file, or `-`).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Or: a file holding the registrar's API token, or `-`.
    #[arg(long, conflicts_with = "certificate")]
    pub token_file: Option<PathBuf>,
    /// The account to register the device to.
    #[arg(long)]
    pub account: i64,
    /// A file holding the PIN from the box (for moving a device between accounts), or `-`.
    #[arg(long)]
    pub pin_file: Option<PathBuf>,
    /// The barcode payload as scanned (`ZT1:…`); `-` reads it from standard input.
    pub label: String,
}

/// `outcomes`.
#[derive(Debug, Args)]
pub struct OutcomesArgs {
    /// The device's key id (hex).
    pub device: String,
}

/// `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Entries after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// At most this many entries.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the mutual-TLS listener binds.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Where the operations listener (health, readiness, metrics) binds.
    #[arg(long)]
    pub ops_listen: Option<SocketAddr>,
    /// A file holding the operator token for the audit endpoint, or `-`.
    #[arg(long)]
    pub operator_token_file: Option<PathBuf>,
    /// Also serve flow 1 over DNS here, UDP and TCP (e.g. 0.0.0.0:53): the authoritative
    /// server for --dns-zone, sharing the setup service with HTTPS. Default: no DNS.
    #[arg(long, requires = "dns_zone")]
    pub dns_listen: Option<SocketAddr>,
    /// The zone the DNS server answers for (e.g. zt.example.com), delegated to it by NS
    /// records in the parent zone. Required with --dns-listen.
    #[arg(long, requires = "dns_listen", value_parser = parse_zone)]
    pub dns_zone: Option<zerotouch_dns::Zone>,
    /// Stop after this many seconds (for scripts and tests); default: until Ctrl-C.
    #[arg(long)]
    pub exit_after: Option<u64>,
    /// Requests per client address, as BURST,PER_SECOND (default 120,20). Raise it behind a
    /// load balancer that hides client addresses.
    #[arg(long, value_parser = parse_rate_limit)]
    pub per_address_limit: Option<RateLimitArg>,
    /// Requests per device or registrar certificate or registrar token, as BURST,PER_SECOND
    /// (default 30,2).
    #[arg(long, value_parser = parse_rate_limit)]
    pub per_certificate_limit: Option<RateLimitArg>,
    /// Open connections from one client address (default 64).
    #[arg(long)]
    pub max_connections_per_address: Option<usize>,
    /// Signatures per device key per hour, counted in the store across processes (default
    /// 60; a cloud KMS bills per signature).
    #[arg(long)]
    pub signatures_per_device_hour: Option<u64>,
}

/// A rate limit as the command line takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitArg(pub zerotouch_http::RateLimit);

/// `BURST,PER_SECOND`: a burst of at least 1 and a positive, finite refill rate.
fn parse_rate_limit(text: &str) -> Result<RateLimitArg, String> {
    let (burst, rate) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?}: a limit is BURST,PER_SECOND (e.g. 120,20)"))?;
    let burst: u32 = burst
        .trim()
        .parse()
        .map_err(|_| format!("{burst:?} is not a whole number of requests"))?;
    let per_second: f64 = rate
        .trim()
        .parse()
        .map_err(|_| format!("{rate:?} is not a number of requests per second"))?;
    if burst == 0 || !per_second.is_finite() || per_second <= 0.0 {
        return Err(format!(
            "{text:?}: the burst must be at least 1 and the rate above 0"
        ));
    }
    Ok(RateLimitArg(zerotouch_http::RateLimit {
        burst,
        per_second,
    }))
}

/// A DNS zone as the command line takes it (`zt.example.com`, a trailing dot allowed).
fn parse_zone(text: &str) -> Result<zerotouch_dns::Zone, String> {
    zerotouch_dns::Zone::new(text).map_err(|e| format!("{text:?} is not a zone name: {e}"))
}

/// `simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The factory batch directory (from `factory batch`).
    #[arg(long)]
    pub batch: PathBuf,
    /// The pinned-key bundle (CBOR, from `keys export-bundle`).
    #[arg(long)]
    pub bundle: PathBuf,
    /// Run only this many devices of the batch.
    #[arg(long)]
    pub count: Option<usize>,
    /// Devices in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// SSIDs the simulated radio sees (the device joins whichever it is told to, if seen).
    #[arg(long = "network", default_value = "home")]
    pub networks: Vec<String>,
    /// Give up on a device after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}
