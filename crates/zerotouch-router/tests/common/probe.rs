//! Probes: one attempt to reach a service from a host, with the outcome as a value (a drop, a
//! reject and an answer are all results under test, never panics).

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::{Host, Lab};

/// The longest any single step of a probe waits (connect, a read, a datagram's answer). Above
/// TCP's 1 s SYN retransmission, so one lost first packet does not read as a drop.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Why a probe did not get its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// Nothing came back in time (a drop).
    Timeout,
    /// Connection refused: a TCP reset to the SYN or ICMP port unreachable.
    Refused,
    /// ICMP host/network unreachable or administratively prohibited, or no route.
    Unreachable,
    /// The connection was reset after it was established.
    Reset,
    /// Something answered, but not what the service says.
    Unexpected(String),
    /// A DNS answer that could not be read.
    Dns(String),
    /// A DHCP exchange that went wrong (NAK, garbled).
    Dhcp(String),
    /// Any other socket error.
    Io(String),
}

impl From<io::Error> for ProbeError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => ProbeError::Timeout,
            ErrorKind::ConnectionRefused => ProbeError::Refused,
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => ProbeError::Unreachable,
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => ProbeError::Reset,
            _ => ProbeError::Io(e.to_string()),
        }
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for ProbeError {}

/// A DNS answer, reduced to what the tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsReply {
    /// The response code (NoError, NXDomain, Refused…).
    pub rcode: ResponseCode,
    /// The A records of the answer section.
    pub a: Vec<Ipv4Addr>,
    /// The TXT records of the answer section, each one's strings joined.
    pub txt: Vec<String>,
}

impl Lab {
    /// Connects from `from` to `to`, sends `echo zt-probe` and expects `zt-probe` back.
    pub fn tcp_echo(&self, from: Host, to: SocketAddr) -> Result<(), ProbeError> {
        self.in_ns(from, || {
            let mut stream = connect(to)?;
            stream.write_all(b"echo zt-probe\n")?;
            let mut reply = Vec::new();
            stream.take(64).read_to_end(&mut reply)?;
            echoed(&reply)
        })
    }

    /// Asks `to` for `bytes` bytes and reads until the end or until `limit` has passed since
    /// the connection attempt; returns the bytes received and the time taken.
    pub fn tcp_download(
        &self,
        from: Host,
        to: SocketAddr,
        bytes: usize,
        limit: Duration,
    ) -> Result<(usize, Duration), ProbeError> {
        self.in_ns(from, || {
            let start = Instant::now();
            let mut stream = connect(to)?;
            stream.write_all(format!("stream {bytes}\n").as_bytes())?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut received = 0;
            while let Some(left) = limit.checked_sub(start.elapsed()) {
                let wait = left.clamp(Duration::from_millis(1), PROBE_TIMEOUT);
                stream.set_read_timeout(Some(wait))?;
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => received += n,
                    // A stall is not the end: a rate limit may hold packets back; the limit ends it.
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok((received, start.elapsed()))
        })
    }

    /// Sends `zt-probe` from `from` to the UDP echo at `to` and expects it back.
    pub fn udp_echo(&self, from: Host, to: SocketAddr) -> Result<(), ProbeError> {
        self.in_ns(from, || echoed(&udp_exchange(to, b"zt-probe", |_| true)?))
    }

    /// Asks the DNS server `server` (UDP, recursion desired) from `from` for `name`'s `rtype`.
    pub fn dns_query(
        &self,
        from: Host,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
    ) -> Result<DnsReply, ProbeError> {
        let fqdn = if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        };
        let name = Name::from_ascii(&fqdn).map_err(|e| ProbeError::Dns(e.to_string()))?;
        let mut query = Message::query();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name, rtype));
        let id = query.metadata.id;
        let bytes = query.to_vec().map_err(|e| ProbeError::Dns(e.to_string()))?;
        let reply = self.in_ns(from, || {
            udp_exchange(server, &bytes, |reply| {
                reply.get(..2) == Some(&id.to_be_bytes()[..])
            })
        })?;
        let reply = Message::from_vec(&reply).map_err(|e| ProbeError::Dns(e.to_string()))?;
        let mut answer = DnsReply {
            rcode: reply.metadata.response_code,
            a: Vec::new(),
            txt: Vec::new(),
        };
        for record in &reply.answers {
            match &record.data {
                RData::A(a) => answer.a.push(a.0),
                RData::TXT(txt) => answer.txt.push(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect(),
                ),
                _ => {}
            }
        }
        Ok(answer)
    }
}

/// Whether an echo service sent the probe back.
fn echoed(reply: &[u8]) -> Result<(), ProbeError> {
    if reply == b"zt-probe" {
        Ok(())
    } else {
        Err(ProbeError::Unexpected(format!(
            "echo answered {:?}",
            String::from_utf8_lossy(reply)
        )))
    }
}

fn connect(to: SocketAddr) -> Result<TcpStream, ProbeError> {
    let stream = TcpStream::connect_timeout(&to, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    Ok(stream)
}

/// Sends `request` to `to` (again halfway through the wait: UDP has no retransmission of its
/// own) and returns the first datagram `wanted` accepts, within [`PROBE_TIMEOUT`].
fn udp_exchange(
    to: SocketAddr,
    request: &[u8],
    wanted: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, ProbeError> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    // Connected: only `to` can answer, and ICMP errors come back as errors.
    socket.connect(to)?;
    let mut buf = vec![0u8; 4096];
    for _attempt in 0..2 {
        socket.send(request)?;
        let deadline = Instant::now() + PROBE_TIMEOUT / 2;
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
        {
            socket.set_read_timeout(Some(left))?;
            match socket.recv(&mut buf) {
                Ok(len) => {
                    let datagram = buf.get(..len).unwrap_or_default();
                    if wanted(datagram) {
                        return Ok(datagram.to_vec());
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Err(ProbeError::Timeout)
}
