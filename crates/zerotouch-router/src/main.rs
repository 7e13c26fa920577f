//! `zerotouch-router`: renders the setup network's nftables ruleset, or loads it and keeps its
//! sets in step with the engine from the access point's station events on standard input.
//!
//! ```text
//! zerotouch-router render --setup-bridge br-setup --setup-port wlan0-1 --home-interface br-lan \
//!     --router-address 10.77.0.1 --setup-prefix 10.77.0.0/24 --server 203.0.113.10
//! zerotouch-router run … <> /run/zerotouch/events   # a FIFO hostapd_cli's action script writes
//! ```
//!
//! docs/SETUP-NETWORK.md has the whole hostapd hookup.

use std::io::{BufRead as _, Write as _};
use std::net::IpAddr;
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use zerotouch_core::Instant;
use zerotouch_provisioner::{
    NetworkMode, NftOptions, NftRuleset, QueueMarks, RateLimit, RouterInterfaces,
    SetupNetworkPolicy,
};
use zerotouch_router::{Nft, RouterAction, RouterError, SetupRouter, StationEvent};

#[derive(Parser)]
#[command(name = "zerotouch-router", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the nftables ruleset (or, with --dnsmasq, the DNS forwarder's configuration).
    Render {
        #[command(flatten)]
        setup: SetupArgs,
        /// Print the dnsmasq lines of the filtering DNS forwarder instead.
        #[arg(long)]
        dnsmasq: bool,
    },
    /// Load the ruleset, then read hostapd station events (AP-STA-CONNECTED / AP-STA-DISCONNECTED
    /// lines) on standard input and print one line per decision. End of input cuts every
    /// setup client off and exits.
    Run {
        #[command(flatten)]
        setup: SetupArgs,
        /// Program (and arguments, split on spaces) run with an evicted client's MAC appended,
        /// to disassociate it: for example "hostapd_cli -i wlan0-1 deauthenticate".
        #[arg(long)]
        deauth_command: Option<String>,
    },
}

#[derive(Args)]
struct SetupArgs {
    /// The bridge the setup clients are on.
    #[arg(long)]
    setup_bridge: String,
    /// A port of that bridge leading to setup clients (repeat for several).
    #[arg(long = "setup-port", required = true)]
    setup_ports: Vec<String>,
    /// A home-network interface (repeat for several).
    #[arg(long = "home-interface")]
    home: Vec<String>,
    /// The router's address on the setup network.
    #[arg(long)]
    router_address: IpAddr,
    /// The setup network's prefix, as ADDRESS/LENGTH.
    #[arg(long, value_parser = parse_prefix)]
    setup_prefix: (IpAddr, u8),
    /// A setup server address (repeat for several).
    #[arg(long = "server", required = true)]
    servers: Vec<IpAddr>,
    /// A name of the setup server the DNS forwarder resolves (repeat); enables DNS to the router.
    #[arg(long = "dns-name", requires = "dns_upstreams")]
    dns_names: Vec<String>,
    /// The resolver the DNS forwarder asks (repeat for several).
    #[arg(long = "dns-upstream", requires = "dns_names")]
    dns_upstreams: Vec<IpAddr>,
    /// Most clients at once.
    #[arg(long, default_value_t = 8)]
    max_clients: usize,
    /// How many of the oldest clients to evict when full.
    #[arg(long, default_value_t = 1)]
    evict_batch: usize,
    /// Clients younger than this (seconds) are never evicted.
    #[arg(long, default_value_t = 120)]
    min_age_secs: u64,
    /// How long an evicted client stays out (seconds).
    #[arg(long, default_value_t = 600)]
    ban_secs: u64,
    /// Per-client rate as BYTES_PER_SECOND,BURST_BYTES.
    #[arg(long, value_parser = parse_rate)]
    client_rate: Option<RateLimit>,
    /// Whole-network rate as BYTES_PER_SECOND,BURST_BYTES.
    #[arg(long, value_parser = parse_rate)]
    network_rate: Option<RateLimit>,
    /// Per-client bytes a day.
    #[arg(long)]
    client_daily_bytes: Option<u64>,
    /// Whole-network bytes a day.
    #[arg(long)]
    network_daily_bytes: Option<u64>,
    /// Name of the nftables tables.
    #[arg(long, default_value = "zerotouch")]
    table: String,
    /// Packet mark for setup traffic.
    #[arg(long, default_value_t = 0x5a7)]
    mark: u32,
    /// Traffic-control class for setup traffic, as MAJOR:MINOR.
    #[arg(long, default_value = "1:3", value_parser = parse_class)]
    class: (u16, u16),
}

fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = s.split_once('/').ok_or("expected ADDRESS/LENGTH")?;
    let addr: IpAddr = addr.parse().map_err(|_| "not an IP address")?;
    let len: u8 = len.parse().map_err(|_| "not a prefix length")?;
    Ok((addr, len))
}

fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let (rate, burst) = s
        .split_once(',')
        .ok_or("expected BYTES_PER_SECOND,BURST_BYTES")?;
    Ok(RateLimit {
        bytes_per_second: rate.parse().map_err(|_| "not a number of bytes a second")?,
        burst_bytes: burst.parse().map_err(|_| "not a number of bytes")?,
    })
}

fn parse_class(s: &str) -> Result<(u16, u16), String> {
    let (major, minor) = s.split_once(':').ok_or("expected MAJOR:MINOR")?;
    let hex = |v: &str| u16::from_str_radix(v, 16).map_err(|_| "not a hex class number");
    Ok((hex(major)?, hex(minor)?))
}

impl SetupArgs {
    fn policy(&self) -> SetupNetworkPolicy {
        let mut p = SetupNetworkPolicy::with_defaults(
            self.router_address,
            self.setup_prefix,
            self.servers.clone(),
        );
        p.dns_to_router = !self.dns_names.is_empty();
        p.max_clients = self.max_clients;
        p.evict_batch = self.evict_batch;
        p.min_age_before_eviction = Duration::from_secs(self.min_age_secs);
        p.ban_duration = Duration::from_secs(self.ban_secs);
        p.client_rate = self.client_rate.unwrap_or(p.client_rate);
        p.network_rate = self.network_rate.unwrap_or(p.network_rate);
        p.client_daily_bytes = self.client_daily_bytes.unwrap_or(p.client_daily_bytes);
        p.network_daily_bytes = self.network_daily_bytes.unwrap_or(p.network_daily_bytes);
        p
    }

    fn interfaces(&self) -> RouterInterfaces {
        RouterInterfaces {
            setup_bridge: self.setup_bridge.clone(),
            setup_ports: self.setup_ports.clone(),
            home: self.home.clone(),
        }
    }

    fn options(&self) -> NftOptions {
        NftOptions {
            table: self.table.clone(),
            marks: QueueMarks {
                mark: self.mark,
                class: self.class,
            },
            ..NftOptions::default()
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zerotouch-router: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), RouterError> {
    match cli.command {
        Cmd::Render { setup, dnsmasq } => {
            let ruleset = NftRuleset::new(&setup.policy(), setup.interfaces(), setup.options())?;
            if dnsmasq {
                let names: Vec<&str> = setup.dns_names.iter().map(String::as_str).collect();
                print!(
                    "{}",
                    ruleset.render_dns_forwarder(&names, &setup.dns_upstreams)?
                );
            } else {
                print!("{}", ruleset.render());
            }
            Ok(())
        }
        Cmd::Run {
            setup,
            deauth_command,
        } => serve(&setup, deauth_command.as_deref()),
    }
}

fn serve(setup: &SetupArgs, deauth: Option<&str>) -> Result<(), RouterError> {
    let origin = std::time::Instant::now();
    let now = || Instant(u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut router = SetupRouter::start(
        setup.policy(),
        setup.interfaces(),
        setup.options(),
        NetworkMode::AlwaysOpen,
        Nft::find()?,
        now(),
    )?;
    say(&"ready");
    // Standard input is read on its own thread so timers run while no event comes.
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        let mut line = Vec::new();
        // Bytes, not UTF-8 lines: a stray byte is a line without an event, not end of input.
        while matches!(input.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            if lines_tx
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
            line.clear();
        }
    });
    loop {
        let wait = Duration::from_millis(router.poll_timeout().0.saturating_sub(now().0));
        let result = match lines.recv_timeout(wait) {
            Ok(line) => match StationEvent::parse(&line) {
                Some(event) => router.station(event, now()),
                None => continue,
            },
            Err(mpsc::RecvTimeoutError::Timeout) => router.handle_timeout(now()),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match result {
            Ok(actions) => {
                for action in actions {
                    say(&action);
                    if let (RouterAction::Evicted { client, .. }, Some(cmd)) = (action, deauth) {
                        disassociate(cmd, &client.to_string());
                    }
                }
            }
            Err(e) => {
                // The sets may now differ from the engine: write them again from its state,
                // and if even that fails, cut every client off before giving up.
                eprintln!("zerotouch-router: {e}; rewriting the sets");
                if let Err(e) = router.resync(now()) {
                    let _ = router.stop();
                    return Err(e);
                }
            }
        }
    }
    router.stop()?;
    say(&"stopped");
    Ok(())
}

/// One line on standard output. Whoever reads it may have gone; the sets matter, not the log.
fn say(line: &dyn std::fmt::Display) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Runs the access point's disassociation command. The ruleset has already cut the client off;
/// this only frees its radio slot, so a failure is reported and nothing else.
fn disassociate(command: &str, mac: &str) {
    let mut words = command.split_whitespace();
    let Some(program) = words.next() else { return };
    match Command::new(program).args(words).arg(mac).status() {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("zerotouch-router: {command} {mac}: {status}"),
        Err(e) => eprintln!("zerotouch-router: {command} {mac}: {e}"),
    }
}
