//! The device's side of a tunnel, sans-IO: one message in, query names out, answers in, the
//! response out. The firmware (or [`crate::client`]) builds the DNS packets, sends them to
//! its resolver and hands back what comes; it also passes `now` and arms one timer.
//!
//! Queries go one at a time (stop-and-wait): a resolver's retransmissions and rate limits
//! make pipelining buy little, and every answer then says exactly what the next query is.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use rand_core::CryptoRng;
use zerotouch_core::Instant;

use crate::answer::{AnswerPayload, AnswerStatus, body_capacity, is_probe_filler};
use crate::header::{
    AnswerLimit, Cookie, MAX_ATTEMPTS, MAX_MESSAGES, QueryHeader, QueryKind, TunnelId,
};
use crate::name::{Query, max_data_per_query, name_wire_len};
use crate::tunnel_record::{MAX_CHUNKS, MAX_MESSAGE_LEN};
use crate::{DnsError, Zone};

/// How a tunnel paces and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// The server's zone.
    pub zone: Zone,
    /// The answer size to probe for when the device advertises EDNS to its resolver with
    /// this payload size; `None`: the device sends no EDNS and answers stay within 512 bytes.
    /// The probe goes out once, before the first poll of the first response whose polls
    /// answers of this size would make fewer; a device whose responses all fit the answers to
    /// their last chunks (or need one poll whatever the size) never probes.
    pub edns_limit: Option<AnswerLimit>,
    /// First wait for an answer, in ms (doubles on each retry, up to `max_timeout_ms`).
    pub initial_timeout_ms: u64,
    /// Longest wait, in ms.
    pub max_timeout_ms: u64,
    /// Times one query is sent before the tunnel gives up (at most 16).
    pub max_attempts: u8,
    /// Least time between two queries, in ms (public resolvers limit clients to about 100
    /// queries a second).
    pub pacing_ms: u64,
    /// Longest wait a rate-limited answer may impose, in ms (the server's per-client window
    /// is a minute: the default waits one out).
    pub max_rate_wait_ms: u64,
}

impl TunnelConfig {
    /// Defaults for `zone`: no EDNS, 1 s first timeout up to 8 s, 6 attempts, 10 ms pacing,
    /// rate-limited waits of up to 120 s.
    pub fn new(zone: Zone) -> TunnelConfig {
        TunnelConfig {
            zone,
            edns_limit: None,
            initial_timeout_ms: 1000,
            max_timeout_ms: 8000,
            max_attempts: 6,
            pacing_ms: 10,
            max_rate_wait_ms: 120_000,
        }
    }
}

/// A query to send: a TXT question for `name`, class IN, recursion desired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingQuery {
    /// The name, lower-case, without the trailing dot.
    pub name: String,
    /// What it asks for. A truncated answer to a [`QueryKind::Probe`] is reported as
    /// [`Reply::Truncated`]; any other truncated answer is asked again over TCP.
    pub kind: QueryKind,
}

/// What came back for a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// NOERROR with a TXT record: its character-strings, in order.
    Txt(Vec<Vec<u8>>),
    /// NOERROR without a TXT record.
    NoData,
    /// NXDOMAIN: the server could not read the name.
    NameError,
    /// SERVFAIL, REFUSED or another error code: the resolver could not get an answer.
    ServerFailure,
    /// The answer was truncated (and not asked again over TCP).
    Truncated,
}

/// Why a tunnel gave up on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelFailure {
    /// No usable answer after every attempt of one query.
    Timeout,
    /// The server answered NXDOMAIN: it cannot read the binding's names (wrong zone, or
    /// another version).
    NameRefused,
    /// The server refused the message for good.
    Refused(AnswerStatus),
    /// The message is longer than the binding carries.
    MessageTooLong(usize),
    /// A rate-limited answer asked for a longer wait than allowed.
    RateLimited,
}

/// What the tunnel tells the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEvent {
    /// The server's response to the message sent.
    Response(Vec<u8>),
    /// The message could not be delivered or answered.
    Failed(TunnelFailure),
}

/// What became of an answer handed to [`TunnelClient::handle_answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// It answered the outstanding query.
    Accepted,
    /// No query is outstanding under that name (late, duplicated or forged): ignored.
    NotOutstanding,
    /// It answered the outstanding query with something unusable. The query stays
    /// outstanding until its deadline (an answer that can be used may still come), then goes
    /// again with the next attempt: a resolver failing fast does not use up the attempts.
    Unusable(AnswerProblem),
}

/// What was wrong with an unusable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerProblem {
    /// The TXT strings do not decode.
    Malformed(DnsError),
    /// A status this query does not expect (NoResponse included).
    UnexpectedStatus(AnswerStatus),
    /// A data piece that does not continue the response (wrong total or length).
    Inconsistent,
    /// No TXT record, a resolver error or a truncated answer.
    NoRecord,
}

/// Counts for logs and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelStats {
    /// Queries handed out (every attempt counts).
    pub queries: u64,
    /// Of them, sent again after a timeout or an unusable answer.
    pub retries: u64,
    /// Octets of the names sent (on the wire).
    pub name_octets: u64,
    /// Bytes of TXT payload received.
    pub payload_bytes: u64,
    /// Tunnels opened (cookies fetched).
    pub cookies: u64,
    /// EDNS probes sent (every attempt counts; none until larger answers would make a
    /// response's polls fewer).
    pub probes: u64,
    /// Polls sent (every attempt counts).
    pub polls: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Cookie,
    Probe,
    Chunk(u16),
    Poll(u16),
}

#[derive(Debug)]
struct Pending {
    message: Vec<u8>,
    chunk_len: usize,
    last_chunk: u16,
    response: Vec<u8>,
    total: Option<u16>,
}

#[derive(Debug)]
struct Outstanding {
    name: String,
    step: Step,
    qname_wire_len: usize,
    deadline: Instant,
}

/// One device's tunnel to the server.
#[derive(Debug)]
pub struct TunnelClient {
    config: TunnelConfig,
    tunnel: TunnelId,
    cookie: Option<Cookie>,
    limit: AnswerLimit,
    probed: bool,
    message: u8,
    pending: Option<Pending>,
    step: Step,
    resume: Option<Step>,
    attempts: BTreeMap<(u8, u8, u16), u8>,
    outstanding: Option<Outstanding>,
    ready_at: Instant,
    events: VecDeque<TunnelEvent>,
    stats: TunnelStats,
}

fn add_ms(t: Instant, ms: u64) -> Instant {
    Instant(t.0.saturating_add(ms))
}

impl TunnelClient {
    /// A tunnel with a fresh random id; nothing is sent until [`Self::send`].
    pub fn new<R: CryptoRng>(config: TunnelConfig, rng: &mut R) -> TunnelClient {
        let mut client = TunnelClient {
            config,
            tunnel: TunnelId([0; 5]),
            cookie: None,
            limit: AnswerLimit::CLASSIC,
            probed: false,
            message: 0,
            pending: None,
            step: Step::Cookie,
            resume: None,
            attempts: BTreeMap::new(),
            outstanding: None,
            ready_at: Instant(0),
            events: VecDeque::new(),
            stats: TunnelStats::default(),
        };
        client.open_tunnel(rng);
        client
    }

    fn open_tunnel<R: CryptoRng>(&mut self, rng: &mut R) {
        rng.fill_bytes(&mut self.tunnel.0);
        self.cookie = None;
        self.message = 0;
        self.attempts.clear();
    }

    /// The tunnel's id (it changes after 16 messages).
    pub fn tunnel(&self) -> TunnelId {
        self.tunnel
    }

    /// The answer size in use: 512 bytes until a probe showed larger answers arrive (a
    /// tunnel probes only once larger answers would make a response's polls fewer).
    pub fn answer_limit(&self) -> AnswerLimit {
        self.limit
    }

    /// Counts so far.
    pub fn stats(&self) -> TunnelStats {
        self.stats
    }

    /// Whether a message is on its way.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Sends `message`; its response (or the failure) comes as a [`TunnelEvent`]. A message
    /// still on its way is abandoned.
    pub fn send<R: CryptoRng>(&mut self, message: &[u8], rng: &mut R) -> Result<(), DnsError> {
        if message.is_empty() || message.len() > MAX_MESSAGE_LEN {
            return Err(DnsError::MessageTooLong(message.len()));
        }
        let chunk_len = max_data_per_query(&self.config.zone).max(1);
        // The server assembles at most MAX_CHUNKS chunks: under a long zone, refuse here
        // what it would refuse after MAX_CHUNKS queries.
        let last_chunk = u16::try_from(message.len().div_ceil(chunk_len) - 1)
            .ok()
            .filter(|&last| last < MAX_CHUNKS)
            .ok_or(DnsError::MessageTooLong(message.len()))?;
        if self.pending.is_some() {
            self.abandon();
        }
        if self.message >= MAX_MESSAGES {
            self.open_tunnel(rng);
        }
        self.pending = Some(Pending {
            message: message.to_vec(),
            chunk_len,
            last_chunk,
            response: Vec::new(),
            total: None,
        });
        self.outstanding = None;
        self.resume = None;
        self.step = if self.cookie.is_none() {
            Step::Cookie
        } else {
            Step::Chunk(0)
        };
        Ok(())
    }

    /// The next query to send, if one is due at `now`.
    pub fn poll_query(&mut self, now: Instant) -> Option<OutgoingQuery> {
        if self.outstanding.is_some() || now < self.ready_at {
            return None;
        }
        // A probe that got nothing back twice: large answers do not arrive; go on with 512.
        let probe_key = (QueryKind::Probe as u8, self.message, 0);
        if self.step == Step::Probe && self.attempts.get(&probe_key).copied() >= Some(2) {
            self.probe_done(false);
        }
        let pending = self.pending.as_ref()?;
        let (kind, position, data) = match self.step {
            Step::Cookie => (QueryKind::Cookie, 0, Vec::new()),
            Step::Probe => (QueryKind::Probe, 0, Vec::new()),
            Step::Chunk(i) => {
                let start = usize::from(i) * pending.chunk_len;
                let end = (start + pending.chunk_len).min(pending.message.len());
                let kind = if i == pending.last_chunk {
                    QueryKind::LastData
                } else {
                    QueryKind::Data
                };
                (kind, i, pending.message.get(start..end)?.to_vec())
            }
            Step::Poll(offset) => (QueryKind::Poll, offset, Vec::new()),
        };
        let key = (kind as u8, self.message, position);
        let attempt = self.attempts.get(&key).copied().unwrap_or(0);
        if attempt >= self.config.max_attempts.min(MAX_ATTEMPTS) {
            self.fail(TunnelFailure::Timeout);
            return None;
        }
        self.attempts.insert(key, attempt + 1);
        let limit = match kind {
            QueryKind::Probe => self.config.edns_limit.unwrap_or(AnswerLimit::CLASSIC),
            _ => self.limit,
        };
        let query = Query {
            header: QueryHeader {
                kind,
                tunnel: self.tunnel,
                // A cookie request carries none (the header's rule).
                cookie: match kind {
                    QueryKind::Cookie => Cookie::default(),
                    _ => self.cookie.unwrap_or_default(),
                },
                message: self.message,
                attempt,
                position,
                limit,
            },
            data,
        };
        let name = query.to_name(&self.config.zone).ok()?;
        let timeout = self
            .config
            .initial_timeout_ms
            .saturating_mul(1u64 << attempt.min(16))
            .min(self.config.max_timeout_ms);
        let wire = name.len() + 2;
        self.stats.queries += 1;
        self.stats.retries += u64::from(attempt > 0);
        self.stats.probes += u64::from(kind == QueryKind::Probe);
        self.stats.polls += u64::from(kind == QueryKind::Poll);
        self.stats.name_octets += wire as u64;
        self.outstanding = Some(Outstanding {
            name: name.clone(),
            step: self.step,
            qname_wire_len: wire,
            deadline: add_ms(now, timeout),
        });
        self.ready_at = add_ms(now, self.config.pacing_ms);
        Some(OutgoingQuery { name, kind })
    }

    /// When to call [`Self::handle_timeout`] (or [`Self::poll_query`], for a paced query).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.outstanding {
            Some(o) => Some(o.deadline),
            None => self.pending.as_ref().map(|_| self.ready_at),
        }
    }

    /// Time has passed: a query unanswered past its deadline is sent again.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outstanding.as_ref().is_some_and(|o| now >= o.deadline) {
            self.outstanding = None;
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TunnelEvent> {
        self.events.pop_front()
    }

    fn fail(&mut self, failure: TunnelFailure) {
        self.abandon();
        if failure == TunnelFailure::Refused(AnswerStatus::TunnelFull) {
            // The next message opens a new tunnel.
            self.message = MAX_MESSAGES;
        }
        self.events.push_back(TunnelEvent::Failed(failure));
    }

    /// Gives up the message on its way. The server may hold chunks of it, and its queries used
    /// up attempts: the next message takes the next index, else its chunks would conflict with
    /// those and its queries find no attempts left.
    fn abandon(&mut self) {
        self.pending = None;
        self.outstanding = None;
        self.message = self.message.saturating_add(1);
    }

    /// What came back for the query named `name` (the question of the answer, any case).
    pub fn handle_answer(&mut self, now: Instant, name: &str, reply: Reply) -> Handled {
        let name = name.strip_suffix('.').unwrap_or(name);
        let Some(out) = self
            .outstanding
            .take_if(|o| o.name.eq_ignore_ascii_case(name))
        else {
            return Handled::NotOutstanding;
        };
        let handled = self.take_reply(now, &out, reply);
        if matches!(handled, Handled::Unusable(_)) && self.pending.is_some() {
            // Not sent again at once: the query waits out its deadline, as if unanswered.
            self.outstanding = Some(out);
        }
        handled
    }

    fn take_reply(&mut self, now: Instant, out: &Outstanding, reply: Reply) -> Handled {
        let payload = match reply {
            Reply::Txt(strings) => match AnswerPayload::from_strings(&strings) {
                Ok(p) => p,
                Err(e) => return Handled::Unusable(AnswerProblem::Malformed(e)),
            },
            Reply::NameError => {
                self.fail(TunnelFailure::NameRefused);
                return Handled::Accepted;
            }
            Reply::Truncated if out.step == Step::Probe => {
                self.probe_done(false);
                return Handled::Accepted;
            }
            Reply::NoData | Reply::ServerFailure | Reply::Truncated => {
                return Handled::Unusable(AnswerProblem::NoRecord);
            }
        };
        self.stats.payload_bytes += payload.body.len() as u64 + 3;
        self.take_payload(now, out, payload)
    }

    fn take_payload(&mut self, now: Instant, out: &Outstanding, p: AnswerPayload) -> Handled {
        match p.status {
            AnswerStatus::BadCookie => {
                self.cookie = None;
                // A cookie request answered so keeps the step it interrupted, if any.
                if out.step != Step::Cookie {
                    self.resume = Some(out.step);
                }
                self.step = Step::Cookie;
                return Handled::Accepted;
            }
            AnswerStatus::RateLimited => {
                let wait = u64::from(p.length) * 1000;
                if wait > self.config.max_rate_wait_ms {
                    self.fail(TunnelFailure::RateLimited);
                } else {
                    self.ready_at = add_ms(now, wait);
                }
                return Handled::Accepted;
            }
            AnswerStatus::Incomplete => {
                self.step = Step::Chunk(0);
                return Handled::Accepted;
            }
            s @ (AnswerStatus::TooLarge
            | AnswerStatus::ChunkConflict
            | AnswerStatus::BadOffset
            | AnswerStatus::TunnelFull) => {
                self.fail(TunnelFailure::Refused(s));
                return Handled::Accepted;
            }
            _ => {}
        }
        match (out.step, p.status) {
            (Step::Cookie, AnswerStatus::Cookie) => {
                let Ok(cookie) = <[u8; 5]>::try_from(p.body.as_slice()) else {
                    return Handled::Unusable(AnswerProblem::Inconsistent);
                };
                self.cookie = Some(Cookie(cookie));
                self.stats.cookies += 1;
                self.step = self.resume.take().unwrap_or(Step::Chunk(0));
                Handled::Accepted
            }
            (Step::Probe, AnswerStatus::Probe) => {
                let limit = self.config.edns_limit.unwrap_or(AnswerLimit::CLASSIC);
                let whole = is_probe_filler(&p.body, body_capacity(limit, out.qname_wire_len));
                self.probe_done(whole);
                Handled::Accepted
            }
            (Step::Chunk(i), AnswerStatus::Ack) => {
                let last = self.pending.as_ref().map(|p| p.last_chunk);
                if Some(i) == last {
                    return Handled::Unusable(AnswerProblem::UnexpectedStatus(p.status));
                }
                self.step = Step::Chunk(i + 1);
                Handled::Accepted
            }
            (Step::Chunk(_) | Step::Poll(_), AnswerStatus::Data) => self.take_piece(out, p),
            (_, status) => Handled::Unusable(AnswerProblem::UnexpectedStatus(status)),
        }
    }

    /// Whether probing now can pay for itself: `rest` bytes of a response take fewer polls in
    /// answers of `edns_limit` than in answers of the limit in use, so the probe costs no
    /// more queries than it may save on this response alone (and later ones gain too).
    fn probe_pays(&self, rest: usize) -> bool {
        let Some(edns) = self.config.edns_limit else {
            return false;
        };
        let poll_name = name_wire_len(&self.config.zone, 0);
        let polls = |limit| rest.div_ceil(body_capacity(limit, poll_name).max(1));
        polls(edns) < polls(self.limit)
    }

    /// The probe is over: answers of `edns_limit` arrive (`whole`) or not. The response whose
    /// first piece called for the probe is polled on, with the limit now in use.
    fn probe_done(&mut self, whole: bool) {
        self.probed = true;
        if whole {
            self.limit = self.config.edns_limit.unwrap_or(AnswerLimit::CLASSIC);
        }
        let held = self.pending.as_ref().map_or(0, |p| p.response.len());
        self.step = Step::Poll(u16::try_from(held).unwrap_or(u16::MAX));
    }

    fn take_piece(&mut self, out: &Outstanding, p: AnswerPayload) -> Handled {
        let Some(pending) = self.pending.as_mut() else {
            return Handled::NotOutstanding;
        };
        let offset = match out.step {
            Step::Poll(offset) => usize::from(offset),
            _ => 0,
        };
        let is_last_chunk = matches!(out.step, Step::Chunk(i) if i == pending.last_chunk);
        let total = usize::from(p.length);
        let consistent = (is_last_chunk || matches!(out.step, Step::Poll(_)))
            && pending.total.is_none_or(|t| t == p.length)
            && offset == pending.response.len()
            && offset + p.body.len() <= total
            && (!p.body.is_empty() || total == 0);
        if !consistent {
            return Handled::Unusable(AnswerProblem::Inconsistent);
        }
        let first = pending.total.is_none();
        pending.total = Some(p.length);
        pending.response.extend_from_slice(&p.body);
        if pending.response.len() == total {
            let response = core::mem::take(&mut pending.response);
            self.pending = None;
            self.message += 1;
            self.events.push_back(TunnelEvent::Response(response));
        } else {
            let held = pending.response.len();
            self.step = if first && !self.probed && self.probe_pays(total - held) {
                // The response needs polls, and fewer with larger answers: learn first
                // whether those arrive. A response that fits one answer never gets here.
                Step::Probe
            } else {
                // Offsets are 16-bit: responses are far shorter than 64 KiB.
                Step::Poll(u16::try_from(held).unwrap_or(u16::MAX))
            };
        }
        Handled::Accepted
    }
}
