//! Small TCP and UDP services on the lab's hosts: stand-ins for the setup service, the router's
//! SSH and settings page, and anything a client might try to reach.
//!
//! TCP speaks one line: `echo X` answers `X`, `stream N` answers N zero bytes; then the
//! service closes. UDP echoes each datagram.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{Host, Lab};
use super::{ROUTER_HOME, ROUTER_SETUP, ROUTER_WAN, SERVER, SERVER_BY_NAME, SERVER_OTHER};

/// How often an idle service looks at the stop flag.
const POLL: Duration = Duration::from_millis(10);
/// A connection that stalls this long is given up.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The most `stream N` sends, so a typo cannot keep a service busy.
const MAX_STREAM: usize = 256 << 20;

impl Lab {
    /// Starts every service: on Server TCP 443 and 80; on Router TCP 22 and 8080; on Home,
    /// SetupA and SetupB TCP 8080; UDP echo on 9000 everywhere.
    pub fn start_services(&self) {
        for (host, tcp_ports) in [
            (Host::Server, &[443, 80][..]),
            (Host::Router, &[22, 8080][..]),
            (Host::Home, &[8080][..]),
            (Host::SetupA, &[8080][..]),
            (Host::SetupB, &[8080][..]),
        ] {
            for &port in tcp_ports {
                self.start_tcp_service(host, port);
            }
            self.start_udp_echo(host, 9000);
        }
    }

    /// Starts the line-protocol TCP service on `host`, 0.0.0.0:`port`.
    pub fn start_tcp_service(&self, host: Host, port: u16) {
        let listener = self
            .in_ns(host, || TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)))
            .unwrap_or_else(|e| panic!("bind TCP port {port} in {host:?}: {e}"));
        // Nonblocking accept, so the thread sees the stop flag.
        listener
            .set_nonblocking(true)
            .expect("make a listener nonblocking");
        let stop = self.stop_flag();
        self.add_thread(format!("tcp {port} {host:?}"), move || {
            serve_tcp(&listener, &stop);
        });
    }

    /// Starts a UDP echo on `host` port `port`. A host with several addresses gets a socket per
    /// address: a socket on 0.0.0.0 would answer from the route's preferred source address,
    /// which the client's connected socket (and conntrack) would not take as the reply.
    pub fn start_udp_echo(&self, host: Host, port: u16) {
        let addresses: &[Ipv4Addr] = match host {
            Host::Server => &[SERVER, SERVER_BY_NAME, SERVER_OTHER],
            Host::Router => &[ROUTER_SETUP, ROUTER_HOME, ROUTER_WAN],
            // One address each (setup clients get theirs later, by DHCP).
            Host::Home | Host::SetupA | Host::SetupB => &[Ipv4Addr::UNSPECIFIED],
        };
        for &address in addresses {
            let socket = self
                .in_ns(host, || UdpSocket::bind((address, port)))
                .unwrap_or_else(|e| panic!("bind UDP {address}:{port} in {host:?}: {e}"));
            socket
                .set_read_timeout(Some(POLL))
                .expect("set a UDP read timeout");
            let stop = self.stop_flag();
            self.add_thread(format!("udp {address}:{port} {host:?}"), move || {
                echo_udp(&socket, &stop);
            });
        }
    }
}

fn serve_tcp(listener: &TcpListener, stop: &Arc<AtomicBool>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                connections.retain(|connection| !connection.is_finished());
                let stop = Arc::clone(stop);
                connections.push(thread::spawn(move || answer(&stream, &stop)));
            }
            // Nothing to accept (or a connection aborted before accept): look again soon.
            Err(_) => thread::sleep(POLL),
        }
    }
    // Each connection ends within IO_TIMEOUT of the stop flag.
    for connection in connections {
        let _ = connection.join();
    }
}

fn answer(stream: &TcpStream, stop: &AtomicBool) {
    let configured = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)));
    if configured.is_err() {
        return;
    }
    let mut line = Vec::new();
    if BufReader::new(stream.take(256))
        .read_until(b'\n', &mut line)
        .is_err()
    {
        return;
    }
    let line = String::from_utf8_lossy(&line);
    let line = line.trim_end();
    // Write errors are the client's business (it went away, or a rule cut the connection).
    let mut stream = stream;
    if let Some(text) = line.strip_prefix("echo ") {
        let _ = stream.write_all(text.as_bytes());
    } else if let Some(count) = line
        .strip_prefix("stream ")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let chunk = [0u8; 64 * 1024];
        let mut left = count.min(MAX_STREAM);
        while left > 0 && !stop.load(Ordering::Relaxed) {
            let (part, _) = chunk.split_at(left.min(chunk.len()));
            if stream.write_all(part).is_err() {
                break;
            }
            left -= part.len();
        }
    }
}

fn echo_udp(socket: &UdpSocket, stop: &AtomicBool) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((len, peer)) => {
                let (datagram, _) = buf.split_at(len.min(buf.len()));
                let _ = socket.send_to(datagram, peer);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // Anything else (e.g. a queued ICMP error): do not spin on it.
            Err(_) => thread::sleep(POLL),
        }
    }
}
