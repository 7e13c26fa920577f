//! dnsmasq in the lab: the router's DHCP server (and later its filtering DNS forwarder), and the
//! upstream resolver on the server that answers the setup service's zone.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use super::lab::tool;
use super::{Host, Lab, MAC_A, MAC_B, OTHER_NAME, SERVER, SERVER_BY_NAME, SERVER_OTHER};
use super::{SETUP_A, SETUP_B, SETUP_BRIDGE, SETUP_NAME, TXT_NAME};

/// How long dnsmasq may take to start.
pub const DNSMASQ_START_TIMEOUT: Duration = Duration::from_secs(5);

impl Lab {
    /// Starts dnsmasq in `host` with `config` (written to `NAME.conf` in the lab's directory),
    /// logging queries and DHCP to the log `name`; returns once it has bound its sockets, and
    /// panics with its log if it does not start.
    pub fn start_dnsmasq(&self, host: Host, name: &str, config: &str) {
        let dnsmasq = tool("dnsmasq");
        let conf = self.dir().join(format!("{name}.conf"));
        fs::write(&conf, config).expect("write dnsmasq's config to the lab's directory");
        let args = [
            dnsmasq.display().to_string(),
            "--keep-in-foreground".into(),
            format!("--conf-file={}", conf.display()),
            format!(
                "--pid-file={}",
                self.dir().join(format!("{name}.pid")).display()
            ),
            format!("--log-facility={}", self.log_path(name).display()),
            "--log-queries".into(),
            "--log-dhcp".into(),
            // Stay root: as nobody it could not write its lease file in the lab's 0700 directory.
            "--user=root".into(),
            "--group=root".into(),
        ];
        self.spawn(host, name, &args);
        let deadline = Instant::now() + DNSMASQ_START_TIMEOUT;
        // dnsmasq logs "started" after it has bound its DNS and DHCP sockets.
        while !self.log(name).contains("started, version") {
            if let Some(status) = self.exited(name) {
                panic!(
                    "dnsmasq {name} in {host:?} exited ({status}):\n{}",
                    self.log(name)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "dnsmasq {name} in {host:?} did not start within {DNSMASQ_START_TIMEOUT:?}:\n{}",
                    self.log(name)
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The DHCP part of the router's dnsmasq config: a lease for each setup client's MAC on
    /// the setup bridge only. Unless `serve_dns`, it adds `port=0` so this part alone serves no
    /// DNS; with it, the caller appends the DNS forwarder's lines.
    pub fn router_dhcp_config(&self, serve_dns: bool) -> String {
        let mac = |mac: [u8; 6]| mac.map(|byte| format!("{byte:02x}")).join(":");
        let mut config = format!(
            "interface={SETUP_BRIDGE}\n\
             bind-interfaces\n\
             except-interface=lo\n\
             dhcp-range={SETUP_A},10.77.0.50,255.255.255.0,1h\n\
             dhcp-host={},{SETUP_A}\n\
             dhcp-host={},{SETUP_B}\n\
             dhcp-ignore-names\n\
             dhcp-leasefile={}\n\
             dhcp-authoritative\n",
            mac(MAC_A),
            mac(MAC_B),
            self.dir().join("router-dhcp.leases").display(),
        );
        if !serve_dns {
            config.push_str("port=0\n");
        }
        config
    }

    /// Starts the upstream resolver (dnsmasq, log `upstream-dns`) on the server at
    /// 10.0.3.2:53: `setup.zt.test` A 10.0.3.20, `other.example` A 10.0.3.30, `t1.zt.test`
    /// TXT "tunnel-ok"; nothing else.
    pub fn start_upstream_dns(&self) {
        let config = format!(
            "listen-address={SERVER}\n\
             bind-interfaces\n\
             no-resolv\n\
             no-hosts\n\
             host-record={SETUP_NAME},{SERVER_BY_NAME}\n\
             address=/{OTHER_NAME}/{SERVER_OTHER}\n\
             txt-record={TXT_NAME},\"tunnel-ok\"\n"
        );
        self.start_dnsmasq(Host::Server, "upstream-dns", &config);
    }
}
