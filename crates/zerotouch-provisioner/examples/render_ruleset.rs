//! Prints the nftables ruleset and the DNS forwarder configuration for a typical home router
//! (the ones `docs/SETUP-NETWORK.md` shows): `cargo run -p zerotouch-provisioner --example
//! render_ruleset`.

use core::net::{IpAddr, Ipv4Addr};
use zerotouch_provisioner::{NftOptions, NftRuleset, RouterInterfaces, SetupNetworkPolicy};

fn main() -> Result<(), zerotouch_provisioner::Error> {
    let router = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
    let server = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
    let mut policy = SetupNetworkPolicy::with_defaults(router, (router, 24), vec![server]);
    policy.dns_to_router = true;
    let interfaces = RouterInterfaces {
        setup_bridge: "br-setup".into(),
        setup_ports: vec!["wlan0-1".into()],
        home: vec!["br-lan".into()],
    };
    let ruleset = NftRuleset::new(&policy, interfaces, NftOptions::default())?;
    print!("{}", ruleset.render());
    println!("\n# ---- dnsmasq ----");
    let upstream = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));
    print!(
        "{}",
        ruleset.render_dns_forwarder(&["setup.example.com"], &[upstream])?
    );
    Ok(())
}
