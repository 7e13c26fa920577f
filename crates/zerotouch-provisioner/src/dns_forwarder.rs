//! The filtering DNS forwarder for the DNS binding, as `dnsmasq` configuration.
//!
//! nftables cannot match DNS names, so the router runs a forwarder on the setup bridge that
//! forwards the server's own names (the binding's zone and the HTTPS name, each with every name
//! under it) to an upstream resolver, answers NXDOMAIN to every other name without forwarding
//! it, and puts the addresses it resolved into the ruleset's `resolved` set. The setup network
//! therefore carries no DNS but ours: it is not a general DNS tunnel.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::IpAddr;

use crate::{Error, NftRuleset};

/// A DNS name the forwarder may resolve: letters, digits and hyphens in labels of 1 to 63
/// bytes, at most 253 bytes in all. Refusing anything else keeps names from changing the
/// configuration.
fn valid_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl NftRuleset {
    /// `dnsmasq` configuration lines for the forwarder: answer on the setup bridge, forward
    /// `names` (and every name under them) to `upstreams`, refuse the rest with NXDOMAIN, and
    /// add what `names` resolve to into the ruleset's `resolved` set. The router's DHCP lines
    /// for the setup network can go in the same file.
    pub fn render_dns_forwarder(
        &self,
        names: &[&str],
        upstreams: &[IpAddr],
    ) -> Result<String, Error> {
        if names.is_empty() || upstreams.is_empty() {
            return Err(Error::InvalidRouterConfig(
                "the DNS forwarder needs the server's names and an upstream resolver",
            ));
        }
        if !names.iter().all(|n| valid_dns_name(n)) {
            return Err(Error::InvalidRouterConfig(
                "DNS names: labels of letters, digits and hyphens, at most 253 bytes",
            ));
        }
        let family = if self.policy().setup_prefix.0.is_ipv4() {
            4
        } else {
            6
        };
        let table = self.table();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# zerotouch setup network: the filtering DNS forwarder; generated, do not edit.\n\
             interface={bridge}\n\
             except-interface=lo\n\
             bind-interfaces\n\
             no-resolv\n\
             no-hosts\n\
             # Every other name: NXDOMAIN, never forwarded.\n\
             address=/#/",
            bridge = self.interfaces().setup_bridge,
        );
        let domains: Vec<&str> = names
            .iter()
            .map(|n| n.strip_suffix('.').unwrap_or(n))
            .collect();
        let domains = format!("/{}/", domains.join("/"));
        for upstream in upstreams {
            let _ = writeln!(out, "server={domains}{upstream}");
        }
        let _ = writeln!(out, "nftset={domains}{family}#inet#{table}#resolved");
        Ok(out)
    }
}
