//! A relay for the DNS bench between a resolver and the authoritative server, on 127.0.0.1,
//! that records every query the resolver sends (and the server's answer code) so they can be
//! counted by kind: QNAME-minimisation probes, the binding's TXT queries, the resolver's
//! re-sends. UDP and TCP on one port; nothing is lost, changed or delayed but by the hop.

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{AbortHandle, JoinSet};
use zerotouch_dns::{NameKind, Query, QueryKind, Zone};

use crate::BenchError;

/// How long the relay waits for the server's answer to one UDP query.
const RELAY_WAIT: Duration = Duration::from_secs(5);

/// One query unbound sent the server, as the relay saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The question's name, in the case the resolver wrote it.
    pub name: String,
    /// The question's type.
    pub qtype: RecordType,
    /// Sent over TCP.
    pub tcp: bool,
    /// The server's answer: its code and how many answer records it had.
    pub answer: Option<(ResponseCode, usize)>,
}

/// Relays UDP and TCP on one port to the server and records each query; stops on drop.
pub struct CountingRelay {
    /// Where the resolver sends its queries (UDP and TCP).
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Vec<AbortHandle>,
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

type SeenLog = Arc<Mutex<Vec<Seen>>>;

fn record(seen: &SeenLog, query: &[u8], answer: Option<&[u8]>, tcp: bool) {
    let (name, qtype) = Message::from_vec(query)
        .ok()
        .and_then(|m| {
            m.queries
                .first()
                .map(|q| (q.name().to_ascii(), q.query_type()))
        })
        .unwrap_or_else(|| ("<unreadable>".to_owned(), RecordType::Unknown(0)));
    let answer = answer
        .and_then(|a| Message::from_vec(a).ok())
        .map(|a| (a.metadata.response_code, a.answers.len()));
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Seen {
            name,
            qtype,
            tcp,
            answer,
        });
}

impl CountingRelay {
    /// Relays to `upstream` (UDP and TCP) from a port of its own on 127.0.0.1.
    pub async fn start(upstream: SocketAddr) -> Result<CountingRelay, BenchError> {
        let mut bound = None;
        for _ in 0..8 {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            if let Ok(tcp) = TcpListener::bind(udp.local_addr()?).await {
                bound = Some((udp, tcp));
                break;
            }
        }
        let (udp, tcp) = bound.ok_or("no port free for the relay's UDP and TCP")?;
        let addr = udp.local_addr()?;
        let seen = SeenLog::default();
        let tasks = vec![
            tokio::spawn(relay_udp(Arc::new(udp), upstream, Arc::clone(&seen))).abort_handle(),
            tokio::spawn(relay_tcp(tcp, upstream, Arc::clone(&seen))).abort_handle(),
        ];
        Ok(CountingRelay { addr, seen, tasks })
    }

    /// Every query relayed so far, in the order answered.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Each datagram goes upstream from its own socket, so its answer finds its way back.
async fn relay_udp(socket: Arc<UdpSocket>, upstream: SocketAddr, seen: SeenLog) {
    let mut buf = vec![0u8; 65_535];
    let mut forwards = JoinSet::new();
    loop {
        while forwards.try_join_next().is_some() {}
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let query = buf.get(..n).unwrap_or_default().to_vec();
        let (socket, seen) = (Arc::clone(&socket), Arc::clone(&seen));
        forwards.spawn(async move {
            let answer = forward_udp(&query, upstream).await;
            record(&seen, &query, answer.as_deref(), false);
            if let Some(answer) = answer {
                let _ = socket.send_to(&answer, from).await;
            }
        });
    }
}

async fn forward_udp(query: &[u8], upstream: SocketAddr) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.ok()?;
    socket.connect(upstream).await.ok()?;
    socket.send(query).await.ok()?;
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(RELAY_WAIT, socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

/// One upstream connection per client connection; messages relayed one at a time.
async fn relay_tcp(listener: TcpListener, upstream: SocketAddr, seen: SeenLog) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(relay_tcp_connection(client, upstream, Arc::clone(&seen)));
    }
}

async fn relay_tcp_connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    seen: SeenLog,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    while let Some(query) = read_framed(&mut client).await? {
        server.write_all(&framed(&query)?).await?;
        let answer = read_framed(&mut server).await?;
        record(&seen, &query, answer.as_deref(), true);
        match answer {
            Some(answer) => client.write_all(&framed(&answer)?).await?,
            None => break,
        }
    }
    Ok(())
}

async fn read_framed(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}

fn framed(message: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(message.len()).map_err(std::io::Error::other)?;
    Ok([&len.to_be_bytes()[..], message].concat())
}

/// What the resolver sent the server, by kind.
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    /// Queries relayed.
    pub total: u64,
    /// QNAME-minimisation probes (first time sent), by record type: a type other than TXT
    /// for an intermediate name (fewer data labels than its header declares) or for a whole
    /// query's name (the last step before the TXT question).
    pub probes: BTreeMap<String, u64>,
    /// Of the probes, those for a whole query's name.
    pub probes_whole: u64,
    /// Of the probes, answered NOERROR without records (NODATA).
    pub probes_nodata: u64,
    /// Whole queries with type TXT (first time sent), by the header's kind.
    pub txt: BTreeMap<&'static str, u64>,
    /// Probes for a (name, type) the resolver had sent already (its retries, and re-asks
    /// after a case mismatch).
    pub resent_probes: u64,
    /// TXT queries sent again, likewise.
    pub resent_txt: u64,
    /// Over TCP.
    pub tcp: u64,
    /// Anything else (the apex, names the binding cannot read).
    pub other: u64,
}

/// The header kind's short name in the counts.
pub fn kind_name(kind: QueryKind) -> &'static str {
    match kind {
        QueryKind::Cookie => "cookie",
        QueryKind::Probe => "probe",
        QueryKind::Data => "data",
        QueryKind::LastData => "last",
        QueryKind::Poll => "poll",
    }
}

impl Upstream {
    /// Counts `seen` by kind, reading each name under `zone`.
    pub fn count(zone: &Zone, seen: &[Seen]) -> Upstream {
        let mut up = Upstream::default();
        let mut sent = HashSet::new();
        for s in seen {
            up.total += 1;
            up.tcp += u64::from(s.tcp);
            let again = !sent.insert((s.name.to_ascii_lowercase(), s.qtype));
            let (probe, whole) = match Query::classify(&s.name, zone) {
                Ok(NameKind::Intermediate) => (true, false),
                Ok(NameKind::Query(q)) if s.qtype == RecordType::TXT => {
                    if again {
                        up.resent_txt += 1;
                    } else {
                        *up.txt.entry(kind_name(q.header.kind)).or_default() += 1;
                    }
                    continue;
                }
                Ok(NameKind::Query(_)) => (true, true),
                _ => {
                    up.other += 1;
                    continue;
                }
            };
            if probe && again {
                up.resent_probes += 1;
            } else if probe {
                *up.probes.entry(s.qtype.to_string()).or_default() += 1;
                up.probes_whole += u64::from(whole);
                if matches!(s.answer, Some((ResponseCode::NoError, 0))) {
                    up.probes_nodata += 1;
                }
            }
        }
        up
    }

    /// Probes of every type.
    pub fn probe_count(&self) -> u64 {
        self.probes.values().sum()
    }

    /// TXT queries of every kind (first sends).
    pub fn txt_count(&self) -> u64 {
        self.txt.values().sum()
    }
}
