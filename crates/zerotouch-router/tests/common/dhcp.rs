//! A minimal DHCP client: the DISCOVER, OFFER, REQUEST, ACK exchange a setup client makes, with
//! just enough of the message format (RFC 2131) to do it.

use std::hash::{BuildHasher, RandomState};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::{Host, Lab, MAC_A, MAC_B, ProbeError};

/// DHCPDISCOVER (option 53).
pub const DISCOVER: u8 = 1;
/// DHCPOFFER.
pub const OFFER: u8 = 2;
/// DHCPREQUEST.
pub const REQUEST: u8 = 3;
/// DHCPACK.
pub const ACK: u8 = 5;
/// DHCPNAK.
pub const NAK: u8 = 6;

/// How long each step waits for the server's answer.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(2);

const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// BOOTP's fixed header: op … file, before the magic cookie.
const FIXED_LEN: usize = 236;
/// The broadcast flag: the client has no address yet, so the server must broadcast its answer.
const BROADCAST_FLAG: u16 = 0x8000;

/// The fields of a DHCP message the lab's client writes or reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpMessage {
    /// 1 for a client's request, 2 for a server's reply.
    pub op: u8,
    /// The transaction id that ties replies to requests.
    pub xid: u32,
    /// Flags (the broadcast flag is the only one).
    pub flags: u16,
    /// "Your" address: the one offered or granted.
    pub yiaddr: Ipv4Addr,
    /// The client's hardware address.
    pub chaddr: [u8; 6],
    /// Option 53, the message type.
    pub kind: Option<u8>,
    /// Option 54, the server identifier.
    pub server_id: Option<Ipv4Addr>,
    /// Option 50, the address a REQUEST asks for.
    pub requested_ip: Option<Ipv4Addr>,
}

impl DhcpMessage {
    /// A client message of type `kind`, asking for a broadcast answer.
    pub fn client(kind: u8, xid: u32, chaddr: [u8; 6]) -> Self {
        DhcpMessage {
            op: 1,
            xid,
            flags: BROADCAST_FLAG,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            kind: Some(kind),
            server_id: None,
            requested_ip: None,
        }
    }

    /// The message on the wire (padded to BOOTP's 300 bytes, as some servers want).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(300);
        // op, htype Ethernet, hlen 6, hops.
        out.extend([self.op, 1, 6, 0]);
        out.extend(self.xid.to_be_bytes());
        out.extend([0, 0]); // secs
        out.extend(self.flags.to_be_bytes());
        out.extend([0; 4]); // ciaddr
        out.extend(self.yiaddr.octets());
        out.extend([0; 8]); // siaddr, giaddr
        out.extend(self.chaddr);
        out.extend([0; 10 + 64 + 128]); // rest of chaddr, sname, file
        out.extend(MAGIC_COOKIE);
        if let Some(kind) = self.kind {
            out.extend([53, 1, kind]);
        }
        if let Some(ip) = self.requested_ip {
            out.extend([50, 4]);
            out.extend(ip.octets());
        }
        if let Some(ip) = self.server_id {
            out.extend([54, 4]);
            out.extend(ip.octets());
        }
        out.push(255);
        out.resize(out.len().max(300), 0);
        out
    }

    /// Reads a message; `None` if it is not one (too short, no magic cookie, options cut off).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let fixed = bytes.get(..FIXED_LEN)?;
        if bytes.get(FIXED_LEN..FIXED_LEN + 4)? != MAGIC_COOKIE {
            return None;
        }
        let ip = |at: usize| -> Option<Ipv4Addr> {
            let octets: [u8; 4] = fixed.get(at..at + 4)?.try_into().ok()?;
            Some(Ipv4Addr::from(octets))
        };
        let mut message = DhcpMessage {
            op: *fixed.first()?,
            xid: u32::from_be_bytes(fixed.get(4..8)?.try_into().ok()?),
            flags: u16::from_be_bytes(fixed.get(10..12)?.try_into().ok()?),
            yiaddr: ip(16)?,
            chaddr: fixed.get(28..34)?.try_into().ok()?,
            kind: None,
            server_id: None,
            requested_ip: None,
        };
        let mut options = bytes.get(FIXED_LEN + 4..)?;
        loop {
            match options {
                [] | [255, ..] => break,
                [0, rest @ ..] => options = rest,
                [code, len, rest @ ..] => {
                    let (value, rest) = rest.split_at_checked(usize::from(*len))?;
                    match (code, value) {
                        (53, [kind]) => message.kind = Some(*kind),
                        (54, &[a, b, c, d]) => message.server_id = Some(Ipv4Addr::new(a, b, c, d)),
                        (50, &[a, b, c, d]) => {
                            message.requested_ip = Some(Ipv4Addr::new(a, b, c, d));
                        }
                        _ => {}
                    }
                    options = rest;
                }
                [_] => return None,
            }
        }
        Some(message)
    }
}

impl Lab {
    /// Runs a DHCP exchange from setup client `host` (DISCOVER, sent twice if need be, OFFER,
    /// REQUEST, ACK) and returns the address granted. Does not configure it: see
    /// [`Lab::configure_address`].
    pub fn dhcp_lease(&self, host: Host) -> Result<Ipv4Addr, ProbeError> {
        let mac = match host {
            Host::SetupA => MAC_A,
            Host::SetupB => MAC_B,
            other => panic!("only setup clients ask for a lease, not {other:?}"),
        };
        self.in_ns(host, || lease(mac))
    }
}

fn lease(mac: [u8; 6]) -> Result<Ipv4Addr, ProbeError> {
    let socket = client_socket()?;
    let xid = RandomState::new().hash_one(std::process::id()) as u32;
    let send = |message: &DhcpMessage| socket.send_to(&message.encode(), (Ipv4Addr::BROADCAST, 67));
    let mut offer = None;
    for _attempt in 0..2 {
        send(&DhcpMessage::client(DISCOVER, xid, mac))?;
        offer = receive(&socket, xid, mac, &[OFFER])?;
        if offer.is_some() {
            break;
        }
    }
    let offer = offer.ok_or(ProbeError::Timeout)?;
    let server = offer
        .server_id
        .ok_or_else(|| ProbeError::Dhcp("an OFFER without a server identifier".into()))?;
    send(&DhcpMessage {
        requested_ip: Some(offer.yiaddr),
        server_id: Some(server),
        ..DhcpMessage::client(REQUEST, xid, mac)
    })?;
    let reply = receive(&socket, xid, mac, &[ACK, NAK])?.ok_or(ProbeError::Timeout)?;
    if reply.kind == Some(NAK) {
        return Err(ProbeError::Dhcp(format!(
            "{server} refused {} (NAK)",
            offer.yiaddr
        )));
    }
    Ok(reply.yiaddr)
}

/// A socket on port 68 that can send and receive broadcasts on eth0 before the client has an
/// address. Bound to the device so the kernel picks eth0 for 255.255.255.255.
fn client_socket() -> Result<UdpSocket, ProbeError> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    socket.bind_device(Some(b"eth0"))?;
    socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68).into())?;
    Ok(socket.into())
}

/// The next server reply of transaction `xid` for `mac` whose type is one of `kinds`, or
/// `None` after [`STEP_TIMEOUT`]. Other datagrams (other clients' broadcasts, garbage) are
/// skipped.
fn receive(
    socket: &UdpSocket,
    xid: u32,
    mac: [u8; 6],
    kinds: &[u8],
) -> Result<Option<DhcpMessage>, ProbeError> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut buf = [0u8; 1500];
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
    {
        socket.set_read_timeout(Some(left))?;
        let len = match socket.recv_from(&mut buf) {
            Ok((len, _)) => len,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let reply = buf.get(..len).and_then(DhcpMessage::decode);
        if let Some(reply) = reply.filter(|reply| {
            reply.op == 2
                && reply.xid == xid
                && reply.chaddr == mac
                && reply.kind.is_some_and(|kind| kinds.contains(&kind))
        }) {
            return Ok(Some(reply));
        }
    }
    Ok(None)
}
