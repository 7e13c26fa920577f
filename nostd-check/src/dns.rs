//! With the `dns` feature, [`crate::zt_check_run`] also drives `zerotouch-dns`'s framing
//! (no_std + alloc) as a device on a DNS-only network would: a `TunnelClient` carries two
//! flow-1-sized messages through whole exchanges against a fake authoritative server built
//! here from the framing's public API: the cookie, the message in chunks, a lost answer sent
//! again after its timeout, a forged answer ignored, an expired cookie fetched again in the
//! middle of a message, the EDNS probe once the first response needs polls (answers of 1,232
//! bytes arrive), and responses in several pieces fetched by polls.
//!
//! The server reads each name with `Query::classify` (as the resolver delivers it: upper
//! case), keeps its `TunnelRecord` as stored bytes (`to_bytes`/`from_bytes`, as its store
//! would), assembles the message and answers with `AnswerPayload`s sized by `body_capacity`.
//!
//! Two measurements are taken, as for the device session (see `src/device.rs`):
//! - the tunnel's peak heap: from the tunnel's creation to its drop, the most bytes live at
//!   once that are not the fake server's (which runs in [`heap::server_side`]): the
//!   configuration and zone, the message being sent, the names it hands out, each answer's TXT
//!   strings (copied into a receive buffer, see [`deliver`]) and the response being put
//!   together;
//! - the DNS crate's code: the tunnel's methods are called only through [`entry`], whose
//!   functions are never inlined, so the script can attribute what LTO inlines into them to
//!   `zerotouch-dns` (`nostd_check::dns::entry::`). The server's calls into the framing
//!   (`Query::classify`, `TunnelRecord`, `AnswerPayload::to_strings`) count too where LTO keeps
//!   them out of line, under their own `zerotouch_dns::` names.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use zerotouch_core::Instant;
use zerotouch_dns::answer::probe_filler;
use zerotouch_dns::{
    AnswerLimit, AnswerPayload, AnswerStatus, Handled, NameKind, Query, QueryKind, Reply,
    TunnelClient, TunnelConfig, TunnelEvent, TunnelRecord, Zone, body_capacity,
};

use crate::heap;
use crate::run::{Check, CounterRng, Step, ensure};

/// The server's zone.
const ZONE: &str = "zt.example.com";
/// The messages: the longest flow-1 request (a credential request, 3,072 bytes) and a short
/// one, with the lengths of the responses the fake server makes to them.
const EXCHANGES: [(usize, usize); 2] = [(3072, 1500), (200, 2600)];

static TUNNEL_PEAK: AtomicUsize = AtomicUsize::new(0);

/// The tunnel's peak heap in the last run.
pub fn tunnel_peak() -> usize {
    TUNNEL_PEAK.load(Relaxed)
}

/// The tunnel's API as firmware calls it, never inlined: whatever LTO inlines into these
/// belongs to the tunnel, and the script counts them as `zerotouch-dns`'s code
/// (`nostd_check::dns::entry::`).
mod entry {
    use zerotouch_core::Instant;
    use zerotouch_dns::{
        DnsError, Handled, OutgoingQuery, Reply, TunnelClient, TunnelConfig, TunnelEvent,
    };

    use crate::run::CounterRng;

    #[inline(never)]
    pub fn new(config: TunnelConfig, rng: &mut CounterRng) -> TunnelClient {
        TunnelClient::new(config, rng)
    }

    #[inline(never)]
    pub fn send(
        t: &mut TunnelClient,
        message: &[u8],
        rng: &mut CounterRng,
    ) -> Result<(), DnsError> {
        t.send(message, rng)
    }

    #[inline(never)]
    pub fn poll_query(t: &mut TunnelClient, now: Instant) -> Option<OutgoingQuery> {
        t.poll_query(now)
    }

    #[inline(never)]
    pub fn handle_answer(t: &mut TunnelClient, now: Instant, name: &str, reply: Reply) -> Handled {
        t.handle_answer(now, name, reply)
    }

    #[inline(never)]
    pub fn poll_timeout(t: &TunnelClient) -> Option<Instant> {
        t.poll_timeout()
    }

    #[inline(never)]
    pub fn handle_timeout(t: &mut TunnelClient, now: Instant) {
        t.handle_timeout(now);
    }

    #[inline(never)]
    pub fn poll_event(t: &mut TunnelClient) -> Option<TunnelEvent> {
        t.poll_event()
    }
}

/// The bytes of message `n` of `len` bytes.
fn message(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + n * 31) as u8).collect()
}

/// The response the fake server makes to `message`: `len` bytes that depend on all of it.
fn response(message: &[u8], len: usize) -> Vec<u8> {
    let sum = message.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    (0..len).map(|i| (i as u8) ^ sum).collect()
}

/// The fake authoritative server: one tunnel, its record as stored bytes, the last response.
struct Server {
    zone: Zone,
    cookie: [u8; 5],
    record: Vec<u8>,
    response: Vec<u8>,
    response_len: usize,
    /// Change the cookie when chunk 3 of a message comes (once): the device's cookie expires.
    expire_cookie: bool,
}

impl Server {
    /// The TXT strings answering `name` (as the resolver hands it over), or `None` for a name
    /// the server cannot read (NXDOMAIN).
    fn answer(&mut self, name: &str) -> Option<Vec<Vec<u8>>> {
        let NameKind::Query(q) = Query::classify(name, &self.zone).ok()? else {
            return None;
        };
        let h = q.header;
        let status = |s| Some(AnswerPayload::status(s, 0));
        let payload = if h.kind == QueryKind::Cookie {
            Some(AnswerPayload {
                status: AnswerStatus::Cookie,
                length: 0,
                body: self.cookie.to_vec(),
            })
        } else if h.kind == QueryKind::Data && h.position == 3 && self.expire_cookie {
            self.expire_cookie = false;
            self.cookie[0] ^= 0xff;
            status(AnswerStatus::BadCookie)
        } else if h.cookie.0 != self.cookie {
            status(AnswerStatus::BadCookie)
        } else {
            let capacity = body_capacity(h.limit, name.len() + 2);
            match h.kind {
                QueryKind::Probe => Some(AnswerPayload {
                    status: AnswerStatus::Probe,
                    length: 0,
                    body: probe_filler(capacity),
                }),
                QueryKind::Data | QueryKind::LastData => {
                    let mut record = TunnelRecord::from_bytes(&self.record).ok()?;
                    if record.add_chunk(h.message, h.position, &q.data).is_err() {
                        return None;
                    }
                    self.record = record.to_bytes();
                    if h.kind == QueryKind::Data {
                        status(AnswerStatus::Ack)
                    } else {
                        match record.assemble(h.message, h.position) {
                            Some(message) => {
                                self.response = response(&message, self.response_len);
                                self.piece(0, capacity)
                            }
                            None => status(AnswerStatus::Incomplete),
                        }
                    }
                }
                QueryKind::Poll => self.piece(usize::from(h.position), capacity),
                QueryKind::Cookie => None,
            }
        };
        payload.map(|p| p.to_strings())
    }

    fn piece(&self, offset: usize, capacity: usize) -> Option<AnswerPayload> {
        let end = offset.checked_add(capacity)?.min(self.response.len());
        Some(AnswerPayload {
            status: AnswerStatus::Data,
            length: u16::try_from(self.response.len()).ok()?,
            body: self.response.get(offset..end)?.to_vec(),
        })
    }
}

/// A received answer, copied into the tunnel's receive buffer.
fn deliver(strings: &[Vec<u8>]) -> Vec<Vec<u8>> {
    strings.to_vec()
}

/// Both exchanges through one tunnel, its peak heap measured.
pub fn run() -> Check {
    let mut server = heap::server_side(|| {
        Zone::new(ZONE).ok().map(|zone| Server {
            zone,
            cookie: [0x5e, 0xc0, 0x0c, 0x1e, 0x01],
            record: TunnelRecord::default().to_bytes(),
            response: Vec::new(),
            response_len: 0,
            expire_cookie: true,
        })
    })
    .ok_or(Step::DnsTunnel)?;
    heap::begin_session();
    let mut rng = CounterRng(400);
    let config = TunnelConfig {
        edns_limit: AnswerLimit::from_bytes(1232).ok(),
        ..TunnelConfig::new(Zone::new(ZONE).map_err(|_| Step::DnsTunnel)?)
    };
    let mut tunnel = entry::new(config, &mut rng);
    let mut now = 0u64;
    let mut queries = 0usize;
    for (n, (len, response_len)) in EXCHANGES.into_iter().enumerate() {
        heap::server_side(|| server.response_len = response_len);
        let sent = message(n, len);
        entry::send(&mut tunnel, &sent, &mut rng).map_err(|_| Step::DnsTunnel)?;
        drop(sent);
        let received = exchange(&mut tunnel, &mut server, &mut now, &mut queries)?;
        let expected = heap::server_side(|| response(&message(n, len), response_len));
        ensure(received == expected, Step::DnsTunnel)?;
    }
    // Large answers arrived: the probe (once, when the first response needed polls) raised
    // the answer limit.
    ensure(tunnel.answer_limit().bytes() == 1232, Step::DnsTunnel)?;
    let stats = tunnel.stats();
    ensure(
        stats.cookies == 2
            && stats.probes == 1
            && stats.retries >= 2
            && stats.queries == queries as u64,
        Step::DnsTunnel,
    )?;
    drop(tunnel);
    TUNNEL_PEAK.store(heap::session_peak_so_far(), Relaxed);
    heap::server_side(|| drop(server));
    Ok(())
}

/// Runs the message sent until its response comes: every query answered by the server
/// through the resolver (upper-cased), except the second query's answer, which is lost, and
/// with a forged answer for another name first, which the tunnel must ignore.
fn exchange(
    tunnel: &mut TunnelClient,
    server: &mut Server,
    now: &mut u64,
    queries: &mut usize,
) -> Result<Vec<u8>, Step> {
    for _ in 0..500 {
        match entry::poll_event(tunnel) {
            Some(TunnelEvent::Response(r)) => return Ok(r),
            Some(TunnelEvent::Failed(_)) => return Err(Step::DnsTunnel),
            None => {}
        }
        let Some(query) = entry::poll_query(tunnel, Instant(*now)) else {
            let at = entry::poll_timeout(tunnel).ok_or(Step::DnsTunnel)?;
            *now = (*now).max(at.0);
            entry::handle_timeout(tunnel, Instant(*now));
            continue;
        };
        *queries += 1;
        let strings = heap::server_side(|| {
            let seen = query.name.to_ascii_uppercase();
            server.answer(&seen).map(|s| (seen, s))
        });
        *now += 20;
        let Some((seen, strings)) = strings else {
            return Err(Step::DnsTunnel);
        };
        if *queries == 2 {
            continue; // lost on the way back: the tunnel times out and asks again
        }
        let forged = Reply::Txt(deliver(&strings));
        let other = heap::server_side(|| {
            let mut other = seen.clone();
            other.replace_range(..1, if other.starts_with('A') { "B" } else { "A" });
            other
        });
        let ignored = entry::handle_answer(tunnel, Instant(*now), &other, forged);
        ensure(ignored == Handled::NotOutstanding, Step::DnsTunnel)?;
        let reply = Reply::Txt(deliver(&strings));
        drop(strings);
        let handled = entry::handle_answer(tunnel, Instant(*now), &seen, reply);
        ensure(handled == Handled::Accepted, Step::DnsTunnel)?;
    }
    Err(Step::DnsTunnel)
}
