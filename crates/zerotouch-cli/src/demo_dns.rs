//! `demo --over dns`: the device's part when its only way out is DNS. It speaks flow 1
//! through its resolver (a local unbound with 0x20 case randomisation and QNAME
//! minimisation, see `zerotouch_dns::local_resolver`) to the server's zone, where `serve`'s DNS
//! server answers in front of the same setup service as HTTPS. Each message's queries and
//! bytes are printed as they go; at the end, the answer size the EDNS probe chose and the
//! totals.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use zerotouch_core::flow1::DeviceIdentityRef;
use zerotouch_core::{PinnedKeys, Signer as _, Transport};
use zerotouch_device::Path;
use zerotouch_device_tokio::{DeviceRun, Exchange};
use zerotouch_dns::client::{DnsClientConfig, DnsClientError, DnsExchange, WireStats};
use zerotouch_dns::{AnswerLimit, TunnelConfig, TunnelStats, Zone};

use crate::simulated_device::{Link, NetworkInRange, SimulatedDevice, run_over};
use crate::{CliError, Output};
use zerotouch_dns::local_resolver::RESOLVER_EDNS;

/// The demo's zone: under `test.`, a name reserved for testing that no one else answers.
pub const DEMO_ZONE: &str = "zt.test";

/// What carrying flow 1 over DNS cost.
#[derive(Debug, Clone, Copy)]
pub struct DnsCost {
    /// Packets and bytes on the wire between the device and its resolver.
    pub wire: WireStats,
    /// The tunnel's counts: queries, retries, cookies.
    pub tunnel: TunnelStats,
    /// The EDNS payload size the device advertised.
    pub advertised: usize,
    /// The answer size the probe settled on (512 when large answers did not arrive).
    pub answer_limit: usize,
}

impl DnsCost {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} ({}, {} over TCP), {} B up and {} B down, answers of up to {} B",
            plural(self.wire.queries, "DNS query", "DNS queries"),
            plural(self.tunnel.retries, "retry", "retries"),
            self.wire.tcp_queries,
            self.wire.query_bytes,
            self.wire.answer_bytes,
            self.answer_limit
        )
    }

    /// The same for scripts.
    pub fn to_json(self) -> Value {
        json!({
            "queries": self.wire.queries,
            "tcp_queries": self.wire.tcp_queries,
            "retries": self.tunnel.retries,
            "tunnels": self.tunnel.cookies,
            "query_bytes": self.wire.query_bytes,
            "answer_bytes": self.wire.answer_bytes,
            "largest_answer": self.wire.largest_answer,
            "edns_advertised": self.advertised,
            "answer_limit": self.answer_limit,
        })
    }
}

/// The DNS client, printing what each message cost in queries and bytes, and the answer size
/// an EDNS probe settled on when one was sent (only when a response needs polls it would
/// spare).
struct Tally<'a, 'x> {
    inner: &'x mut DnsExchange,
    out: Option<&'a Output>,
    advertised: usize,
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Tally<'_, '_> {
    fn tell(&mut self, out: &Output, wire: WireStats, tunnel: TunnelStats, answered: bool) {
        let (now, now_tunnel) = (self.inner.wire_stats(), self.inner.tunnel_stats());
        let opened = now_tunnel.cookies > tunnel.cookies;
        out.step(
            "dns",
            &format!(
                "{} through the resolver ({}{}), {} B up, {} B down",
                plural(now.queries - wire.queries, "query", "queries"),
                plural(now_tunnel.retries - tunnel.retries, "retry", "retries"),
                match (opened, now_tunnel.probes > tunnel.probes) {
                    (true, true) =>
                        "; a new tunnel: its cookie request and an EDNS probe among them",
                    (true, false) => "; a new tunnel: its cookie request among them",
                    (false, true) => "; an EDNS probe among them",
                    (false, false) => "",
                },
                now.query_bytes - wire.query_bytes,
                now.answer_bytes - wire.answer_bytes,
            ),
        );
        if answered && now_tunnel.probes > tunnel.probes {
            let limit = self.inner.tunnel().answer_limit().bytes();
            out.step(
                "dns",
                &if limit >= self.advertised {
                    format!(
                        "EDNS probe: {limit} B answers arrive through the resolver, so the \
                         server's answers carry up to {limit} B"
                    )
                } else {
                    format!(
                        "EDNS probe: {} B answers did not arrive through the resolver; answers \
                         stay within {limit} B",
                        self.advertised
                    )
                },
            );
        }
    }
}

impl Exchange for Tally<'_, '_> {
    type Error = DnsClientError;

    async fn exchange(&mut self, path: Path, message: Vec<u8>) -> Result<Vec<u8>, Self::Error> {
        let (wire, tunnel) = (self.inner.wire_stats(), self.inner.tunnel_stats());
        let answer = self.inner.exchange(path, message).await;
        if let Some(out) = self.out {
            self.tell(out, wire, tunnel, answer.is_ok());
        }
        answer
    }
}

/// Runs `device` through flow 1 over DNS: its queries go to `resolver`, which asks the
/// server authoritative for `zone`. The device advertises an EDNS payload of 1,232 bytes
/// and probes whether such answers arrive; it identifies itself by its public key (there
/// is no TLS to carry its certificate, and every byte costs queries).
pub async fn run_device_over_dns(
    device: &SimulatedDevice,
    pinned: PinnedKeys,
    resolver: SocketAddr,
    zone: &Zone,
    networks: &[NetworkInRange],
    out: Option<&Output>,
    bound: Duration,
) -> Result<(DeviceRun, DnsCost), CliError> {
    let advertised = usize::from(RESOLVER_EDNS);
    let mut tunnel = TunnelConfig::new(zone.clone());
    tunnel.edns_limit = Some(
        AnswerLimit::from_bytes(advertised)
            .map_err(|e| CliError::BadArgument(format!("EDNS size {advertised}: {e}")))?,
    );
    let mut seed = [0u8; 32];
    rand_core::Rng::fill_bytes(&mut crate::system_rng()?, &mut seed);
    let mut dns = DnsExchange::with_seed(DnsClientConfig::new(resolver, tunnel), seed);
    let public_key = device.signer.public_key().to_spki_der();
    let mut tally = Tally {
        inner: &mut dns,
        out,
        advertised,
    };
    let link = Link {
        exchange: &mut tally,
        transport: Transport::Dns,
        identity: DeviceIdentityRef::PublicKey(public_key),
    };
    let run = run_over(device, pinned, link, networks, out, bound).await;
    let cost = DnsCost {
        wire: dns.wire_stats(),
        tunnel: dns.tunnel_stats(),
        advertised,
        answer_limit: dns.tunnel().answer_limit().bytes(),
    };
    Ok((run?, cost))
}
