#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! `TunnelClient`'s rules, one test per rule, against a fake server written here with the
//! public framing only (`Query::classify`, `TunnelRecord`, `AnswerPayload`): the cookie
//! first, a name no cache has seen for every query, timeouts doubling up to the attempts
//! allowed, pacing, forged or late answers ignored, unusable answers asked again once the
//! query's timeout has passed, the server's refusals, the EDNS probe (only when a response
//! needs polls), responses in pieces, and a new tunnel after 16 messages.

use std::collections::{HashMap, HashSet};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use zerotouch_core::Instant;
use zerotouch_dns::answer::probe_filler;
use zerotouch_dns::tunnel_record::{AddChunkError, MAX_CHUNKS, MAX_MESSAGE_LEN};
use zerotouch_dns::*;

fn zone() -> Zone {
    Zone::new("zt.example.com").unwrap()
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The defaults: no EDNS, 1 s first timeout up to 8 s, 6 attempts, 10 ms pacing, 120 s of
/// rate limiting at most.
fn config() -> TunnelConfig {
    TunnelConfig::new(zone())
}

fn client(config: TunnelConfig) -> TunnelClient {
    TunnelClient::new(config, &mut rng(1))
}

fn parse(name: &str) -> Query {
    match Query::classify(name, &zone()) {
        Ok(NameKind::Query(q)) => q,
        other => panic!("{name}: {other:?}"),
    }
}

fn message(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

/// The response the fake server makes to a message: its bytes reversed and then `extra`
/// more bytes, so the test can pick the response's length.
fn respond(message: &[u8], extra: usize) -> Vec<u8> {
    let mut r: Vec<u8> = message.iter().rev().copied().collect();
    r.extend((0..extra).map(|i| (i % 241) as u8 ^ 0x5a));
    r
}

/// An authoritative server built from the framing: a cookie per server, the tunnel records,
/// the responses by tunnel and message.
struct FakeServer {
    zone: Zone,
    cookie: [u8; 5],
    records: HashMap<TunnelId, TunnelRecord>,
    responses: HashMap<(TunnelId, u8), Vec<u8>>,
    /// Bytes added to each response (see [`respond`]).
    extra: usize,
    /// Every whole query it read.
    seen: Vec<Query>,
}

impl FakeServer {
    fn new() -> FakeServer {
        FakeServer {
            zone: zone(),
            cookie: [0xc0, 0x0c, 0x1e, 0x01, 0x02],
            records: HashMap::new(),
            responses: HashMap::new(),
            extra: 0,
            seen: Vec::new(),
        }
    }

    /// What the resolver hands back for `name` (as the resolver sent it, any case).
    fn reply(&mut self, name: &str) -> Reply {
        match self.payload(name) {
            Ok(Some(p)) => Reply::Txt(p.to_strings()),
            Ok(None) => Reply::NoData,
            Err(_) => Reply::NameError,
        }
    }

    fn payload(&mut self, name: &str) -> Result<Option<AnswerPayload>, DnsError> {
        let NameKind::Query(q) = Query::classify(name, &self.zone)? else {
            return Ok(None);
        };
        self.seen.push(q.clone());
        let h = q.header;
        if h.kind == QueryKind::Cookie {
            return Ok(Some(AnswerPayload {
                status: AnswerStatus::Cookie,
                length: 0,
                body: self.cookie.to_vec(),
            }));
        }
        if h.cookie.0 != self.cookie {
            return Ok(Some(AnswerPayload::status(AnswerStatus::BadCookie, 0)));
        }
        let qname_wire_len = name.strip_suffix('.').unwrap_or(name).len() + 2;
        let capacity = body_capacity(h.limit, qname_wire_len);
        let status = |s| Ok(Some(AnswerPayload::status(s, 0)));
        match h.kind {
            QueryKind::Probe => Ok(Some(AnswerPayload {
                status: AnswerStatus::Probe,
                length: 0,
                body: probe_filler(capacity),
            })),
            QueryKind::Data | QueryKind::LastData => {
                let record = self.records.entry(h.tunnel).or_default();
                match record.add_chunk(h.message, h.position, &q.data) {
                    Err(AddChunkError::Conflict) => return status(AnswerStatus::ChunkConflict),
                    Err(AddChunkError::TooLarge) => return status(AnswerStatus::TooLarge),
                    Ok(_) => {}
                }
                if h.kind == QueryKind::Data {
                    return status(AnswerStatus::Ack);
                }
                let Some(message) = record.assemble(h.message, h.position) else {
                    return status(AnswerStatus::Incomplete);
                };
                let response = respond(&message, self.extra);
                self.responses
                    .insert((h.tunnel, h.message), response.clone());
                Ok(Some(piece(&response, 0, capacity)))
            }
            QueryKind::Poll => match self.responses.get(&(h.tunnel, h.message)) {
                None => status(AnswerStatus::NoResponse),
                Some(r) if usize::from(h.position) >= r.len() => status(AnswerStatus::BadOffset),
                Some(r) => Ok(Some(piece(r, usize::from(h.position), capacity))),
            },
            QueryKind::Cookie => unreachable!(),
        }
    }
}

fn piece(response: &[u8], offset: usize, capacity: usize) -> AnswerPayload {
    let end = (offset + capacity).min(response.len());
    AnswerPayload {
        status: AnswerStatus::Data,
        length: u16::try_from(response.len()).unwrap(),
        body: response[offset..end].to_vec(),
    }
}

/// A tunnel, the fake server, the clock and every name sent.
struct World {
    tunnel: TunnelClient,
    server: FakeServer,
    now: u64,
    names: Vec<String>,
}

/// What the network does with a query: deliver the server's reply, change it, or lose it.
type Network<'a> = dyn FnMut(&OutgoingQuery, Reply) -> Option<Reply> + 'a;

impl World {
    fn new(config: TunnelConfig) -> World {
        World {
            tunnel: client(config),
            server: FakeServer::new(),
            now: 0,
            names: Vec::new(),
        }
    }

    fn send(&mut self, message: &[u8]) {
        self.tunnel.send(message, &mut rng(self.now + 99)).unwrap();
    }

    /// The next query, waiting for pacing or a timeout if need be.
    fn next_query(&mut self) -> OutgoingQuery {
        self.try_next_query().expect("a query")
    }

    /// The next query, waiting for pacing or a timeout if need be; `None` once the tunnel has
    /// nothing more to send (the message failed).
    fn try_next_query(&mut self) -> Option<OutgoingQuery> {
        for _ in 0..100 {
            if let Some(q) = self.tunnel.poll_query(Instant(self.now)) {
                self.names.push(q.name.clone());
                return Some(q);
            }
            let at = self.tunnel.poll_timeout()?;
            self.now = self.now.max(at.0);
            self.tunnel.handle_timeout(Instant(self.now));
        }
        panic!("no query comes");
    }

    /// Answers `q` as the fake server does, 1 ms later.
    fn answer(&mut self, q: &OutgoingQuery) -> Handled {
        let reply = self.server.reply(&q.name);
        self.deliver(q, reply)
    }

    fn deliver(&mut self, q: &OutgoingQuery, reply: Reply) -> Handled {
        self.now += 1;
        self.tunnel.handle_answer(Instant(self.now), &q.name, reply)
    }

    /// Runs until the tunnel reports an event, the network deciding the fate of every reply.
    fn run_with(&mut self, network: &mut Network<'_>) -> TunnelEvent {
        for _ in 0..10_000 {
            if let Some(event) = self.tunnel.poll_event() {
                return event;
            }
            let Some(q) = self.try_next_query() else {
                continue;
            };
            let reply = self.server.reply(&q.name);
            if let Some(reply) = network(&q, reply) {
                self.deliver(&q, reply);
            }
        }
        panic!("no event after 10,000 queries");
    }

    fn run(&mut self) -> TunnelEvent {
        self.run_with(&mut |_, r| Some(r))
    }

    /// Sends `message` and runs it through a perfect network.
    fn exchange(&mut self, message: &[u8]) -> TunnelEvent {
        self.send(message);
        self.run()
    }

    /// Runs until the next query of `kind` at `position` and returns it, unanswered.
    fn until(&mut self, kind: QueryKind, position: u16) -> OutgoingQuery {
        self.until_where(|h| h.kind == kind && h.position == position)
    }

    /// Runs until the next query whose header passes `wanted` and returns it, unanswered.
    fn until_where(&mut self, wanted: impl Fn(&QueryHeader) -> bool) -> OutgoingQuery {
        for _ in 0..1000 {
            let q = self.next_query();
            if wanted(&parse(&q.name).header) {
                return q;
            }
            assert_eq!(self.answer(&q), Handled::Accepted);
        }
        panic!("no such query");
    }
}

/// A TXT answer of `status` without a body.
fn status_reply(status: AnswerStatus, length: u16) -> Reply {
    Reply::Txt(AnswerPayload::status(status, length).to_strings())
}

fn header(q: &OutgoingQuery) -> QueryHeader {
    parse(&q.name).header
}

fn assert_unique(names: &[String]) {
    let mut seen = HashSet::new();
    for name in names {
        assert!(seen.insert(name.to_ascii_lowercase()), "{name} sent twice");
    }
}

/// The chunk size under the test zone.
fn chunk_len() -> usize {
    max_data_per_query(&zone())
}

#[test]
fn the_first_query_asks_for_a_cookie() {
    let mut w = World::new(config());
    assert_eq!(w.tunnel.poll_query(Instant(0)), None, "nothing to send yet");
    assert_eq!(w.tunnel.poll_timeout(), None);
    assert!(!w.tunnel.is_busy());
    w.send(b"hello");
    assert!(w.tunnel.is_busy());
    let q = w.next_query();
    assert_eq!(q.kind, QueryKind::Cookie);
    let h = header(&q);
    assert_eq!(h.kind, QueryKind::Cookie);
    assert_eq!(h.cookie, Cookie::default());
    assert_eq!(h.tunnel, w.tunnel.tunnel());
    assert_eq!((h.message, h.attempt, h.position), (0, 0, 0));
    assert_eq!(h.limit, AnswerLimit::CLASSIC);
    assert_eq!(w.answer(&q), Handled::Accepted);
    let q = w.next_query();
    assert_eq!(q.kind, QueryKind::LastData);
    assert_eq!(header(&q).cookie, Cookie(w.server.cookie));
    assert_eq!(parse(&q.name).data, b"hello");
    assert_eq!(w.answer(&q), Handled::Accepted);
    assert_eq!(
        w.tunnel.poll_event(),
        Some(TunnelEvent::Response(respond(b"hello", 0)))
    );
    assert!(!w.tunnel.is_busy());
    assert_eq!(w.tunnel.stats().cookies, 1);
    // The next message goes straight to its data: the cookie is kept.
    w.send(b"again");
    assert_eq!(w.next_query().kind, QueryKind::LastData);
}

/// Over a long session through a bad network (lost answers, unusable answers, a server that
/// changes its cookie, rate limits, forgotten chunks, whole failed messages sent again), and
/// across new tunnels, no name is ever sent twice, in any case: a resolver's cache or
/// deduplication could otherwise answer a query with an old answer.
#[test]
fn every_query_name_is_unique_over_a_session_including_retries() {
    let mut failed = 0;
    for seed in 0..6u64 {
        let mut w = World::new(TunnelConfig {
            edns_limit: Some(AnswerLimit::from_bytes(1232).unwrap()),
            max_attempts: 5,
            ..config()
        });
        w.server.extra = 700;
        let mut faults = rng(seed);
        let mut delivered = 0;
        for m in 0..40usize {
            let msg = message(1 + (m * 397) % 1500, m as u8);
            for tries in 0.. {
                assert!(tries < 20, "message {m} never got through");
                w.send(&msg);
                match w.run_faulty(&mut faults) {
                    TunnelEvent::Response(r) => {
                        assert_eq!(r, respond(&msg, 700));
                        delivered += 1;
                        break;
                    }
                    TunnelEvent::Failed(TunnelFailure::Timeout) => failed += 1,
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(delivered, 40);
        assert!(w.tunnel.stats().retries > 20, "{:?}", w.tunnel.stats());
        assert!(w.tunnel.stats().cookies >= 3, "{:?}", w.tunnel.stats());
        assert_eq!(w.names.len() as u64, w.tunnel.stats().queries);
        assert_unique(&w.names);
        let tunnels: HashSet<TunnelId> = w.server.seen.iter().map(|q| q.header.tunnel).collect();
        assert!(
            tunnels.len() >= 3,
            "40 messages take three tunnels at least"
        );
    }
    assert!(failed > 0, "some messages failed and were sent again");
}

impl World {
    /// Runs the message through a network that loses and spoils answers, with a server
    /// that changes its cookie and forgets chunks, all at random from `faults`.
    fn run_faulty(&mut self, faults: &mut ChaCha20Rng) -> TunnelEvent {
        for _ in 0..10_000 {
            if let Some(event) = self.tunnel.poll_event() {
                return event;
            }
            let Some(q) = self.try_next_query() else {
                continue;
            };
            // The resolver randomises the case of the name it sends and echoes it back.
            let seen: String = q
                .name
                .chars()
                .map(|c| {
                    if faults.next_u32().is_multiple_of(2) {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            let roll = faults.next_u32() % 100;
            if roll < 3 {
                self.server.cookie[0] = self.server.cookie[0].wrapping_add(1);
            }
            if (3..6).contains(&roll) && q.kind == QueryKind::LastData {
                self.server.records.clear();
            }
            let reply = match roll {
                6..=20 => continue, // lost: the tunnel times out
                21..=23 => Reply::Txt(vec![vec![0xee; 3]]),
                24..=25 => Reply::ServerFailure,
                26 => status_reply(AnswerStatus::RateLimited, 1),
                _ => self.server.reply(&seen),
            };
            self.now += 1;
            self.tunnel.handle_answer(Instant(self.now), &seen, reply);
        }
        panic!("no event");
    }
}

/// An unanswered query is sent again under a new name (attempt + 1), its timeout doubled up to
/// `max_timeout_ms`, until `max_attempts` have gone unanswered; then the message fails.
#[test]
fn a_timeout_resends_with_the_next_attempt_and_a_doubled_timeout() {
    let mut w = World::new(config());
    w.send(b"lost");
    let mut sent_at = 0;
    let mut expected_timeout = 1000;
    for attempt in 0..6u8 {
        let q = w.tunnel.poll_query(Instant(sent_at)).expect("due");
        w.names.push(q.name.clone());
        let h = header(&q);
        assert_eq!((h.kind, h.attempt), (QueryKind::Cookie, attempt));
        let deadline = sent_at + expected_timeout;
        assert_eq!(w.tunnel.poll_timeout(), Some(Instant(deadline)));
        w.tunnel.handle_timeout(Instant(deadline - 1));
        assert_eq!(
            w.tunnel.poll_query(Instant(deadline - 1)),
            None,
            "still waiting"
        );
        w.tunnel.handle_timeout(Instant(deadline));
        sent_at = deadline;
        expected_timeout = (expected_timeout * 2).min(8000);
    }
    assert_eq!(w.tunnel.poll_query(Instant(sent_at)), None);
    assert_eq!(
        w.tunnel.poll_event(),
        Some(TunnelEvent::Failed(TunnelFailure::Timeout))
    );
    assert!(!w.tunnel.is_busy());
    assert_eq!(w.tunnel.poll_timeout(), None);
    assert_eq!(w.tunnel.stats().queries, 6);
    assert_eq!(w.tunnel.stats().retries, 5);
    assert_unique(&w.names);

    // max_attempts is honoured whatever it is (and never beyond the header's 16).
    for max_attempts in [1u8, 3, 16, 40] {
        let mut w = World::new(TunnelConfig {
            max_attempts,
            ..config()
        });
        w.send(b"lost");
        let event = w.run_with(&mut |_, _| None);
        assert_eq!(event, TunnelEvent::Failed(TunnelFailure::Timeout));
        assert_eq!(w.names.len(), usize::from(max_attempts.min(16)));
        assert_unique(&w.names);
    }
}

/// Two queries are at least `pacing_ms` apart: `poll_query` has nothing until then, and
/// `poll_timeout` says when.
#[test]
fn poll_query_waits_for_pacing() {
    let mut w = World::new(TunnelConfig {
        pacing_ms: 50,
        ..config()
    });
    w.send(&message(300, 1));
    let q = w.tunnel.poll_query(Instant(0)).unwrap();
    w.now = 5;
    assert_eq!(
        w.tunnel
            .handle_answer(Instant(5), &q.name, w.server.reply(&q.name)),
        Handled::Accepted
    );
    assert_eq!(w.tunnel.poll_timeout(), Some(Instant(50)));
    for t in [5, 20, 49] {
        assert_eq!(w.tunnel.poll_query(Instant(t)), None, "at {t} ms");
    }
    let q = w.tunnel.poll_query(Instant(50)).unwrap();
    assert_eq!(header(&q).kind, QueryKind::Data);
    // An answer after the pacing interval: the next query is due at once.
    assert_eq!(
        w.tunnel
            .handle_answer(Instant(200), &q.name, w.server.reply(&q.name)),
        Handled::Accepted
    );
    assert!(w.tunnel.poll_query(Instant(200)).is_some());

    // A retry waits for pacing too when pacing is longer than the timeout.
    let mut w = World::new(TunnelConfig {
        pacing_ms: 2500,
        ..config()
    });
    w.send(b"x");
    assert!(w.tunnel.poll_query(Instant(0)).is_some());
    w.tunnel.handle_timeout(Instant(1000));
    assert_eq!(w.tunnel.poll_query(Instant(1000)), None);
    assert_eq!(w.tunnel.poll_timeout(), Some(Instant(2500)));
    assert_eq!(
        header(&w.tunnel.poll_query(Instant(2500)).unwrap()).attempt,
        1
    );
}

/// An answer to any name but the outstanding query's (forged, late, duplicated) is ignored:
/// the query stays outstanding with its deadline, and its own answer is still taken.
#[test]
fn an_answer_for_another_name_is_not_outstanding() {
    let mut w = World::new(config());
    w.send(b"hello");
    let q0 = w.next_query();
    let cookie = Reply::Txt(
        AnswerPayload {
            status: AnswerStatus::Cookie,
            length: 0,
            body: vec![6; 5],
        }
        .to_strings(),
    );
    let mut other = parse(&q0.name);
    other.header.attempt = 1;
    let forged = [
        other.to_name(&zone()).unwrap(),
        format!("x{}", q0.name),
        q0.name[1..].to_owned(),
        "zt.example.com".to_owned(),
        "www.example.com".to_owned(),
        String::new(),
    ];
    for name in &forged {
        assert_eq!(
            w.tunnel.handle_answer(Instant(10), name, cookie.clone()),
            Handled::NotOutstanding,
            "{name}"
        );
    }
    assert_eq!(w.tunnel.poll_query(Instant(500)), None, "still outstanding");
    assert_eq!(w.tunnel.poll_timeout(), Some(Instant(1000)));
    // Timed out: the late answer to the first attempt no longer counts either.
    w.tunnel.handle_timeout(Instant(1000));
    w.now = 1000;
    let q1 = w.next_query();
    assert_eq!(header(&q1).attempt, 1);
    assert_eq!(
        w.tunnel
            .handle_answer(Instant(1001), &q0.name, cookie.clone()),
        Handled::NotOutstanding
    );
    // Its own answer, in another case and with the root's dot, is taken once.
    let seen = format!("{}.", q1.name.to_ascii_uppercase());
    assert_eq!(
        w.tunnel.handle_answer(Instant(1002), &seen, cookie.clone()),
        Handled::Accepted
    );
    assert_eq!(
        w.tunnel.handle_answer(Instant(1003), &seen, cookie),
        Handled::NotOutstanding
    );
    assert_eq!(w.tunnel.stats().cookies, 1);
}

/// What an answer is expected to be handled as.
type Expected = fn(&Handled) -> bool;

/// An answer to the outstanding query that cannot be used (TXT strings that do not decode, no
/// record, a resolver error, a status the query does not expect, a cookie of the wrong length)
/// is reported, and once the query's timeout has passed it is sent again under its next
/// attempt.
#[test]
fn a_malformed_txt_is_unusable_and_the_query_is_resent() {
    let mut w = World::new(TunnelConfig {
        max_attempts: 16,
        ..config()
    });
    w.send(b"hello");
    let cases: Vec<(Reply, Expected)> = vec![
        (Reply::Txt(vec![vec![0xff]]), |h| {
            matches!(
                h,
                Handled::Unusable(AnswerProblem::Malformed(DnsError::BadAnswer(_)))
            )
        }),
        (Reply::Txt(vec![vec![0xff, 0, 0]]), |h| {
            matches!(
                h,
                Handled::Unusable(AnswerProblem::Malformed(DnsError::UnknownStatus(0xff)))
            )
        }),
        (Reply::Txt(vec![vec![1; 254], vec![1]]), |h| {
            matches!(h, Handled::Unusable(AnswerProblem::Malformed(_)))
        }),
        (Reply::Txt(vec![]), |h| {
            matches!(h, Handled::Unusable(AnswerProblem::Malformed(_)))
        }),
        (Reply::NoData, |h| {
            *h == Handled::Unusable(AnswerProblem::NoRecord)
        }),
        (Reply::ServerFailure, |h| {
            *h == Handled::Unusable(AnswerProblem::NoRecord)
        }),
        (Reply::Truncated, |h| {
            *h == Handled::Unusable(AnswerProblem::NoRecord)
        }),
        (status_reply(AnswerStatus::Ack, 0), |h| {
            *h == Handled::Unusable(AnswerProblem::UnexpectedStatus(AnswerStatus::Ack))
        }),
        (
            Reply::Txt(
                AnswerPayload {
                    status: AnswerStatus::Cookie,
                    length: 0,
                    body: vec![1; 6],
                }
                .to_strings(),
            ),
            |h| *h == Handled::Unusable(AnswerProblem::Inconsistent),
        ),
    ];
    let mut sent_at = 0;
    for (attempt, (reply, expected)) in cases.into_iter().enumerate() {
        let q = w.tunnel.poll_query(Instant(sent_at)).expect("due");
        w.names.push(q.name.clone());
        let h = header(&q);
        assert_eq!(
            (h.kind, usize::from(h.attempt)),
            (QueryKind::Cookie, attempt)
        );
        w.now = sent_at;
        let handled = w.deliver(&q, reply);
        assert!(expected(&handled), "attempt {attempt}: {handled:?}");
        let deadline = sent_at + (1000u64 << attempt.min(3));
        assert_eq!(w.tunnel.poll_timeout(), Some(Instant(deadline)));
        w.tunnel.handle_timeout(Instant(deadline - 1));
        assert_eq!(w.tunnel.poll_query(Instant(deadline - 1)), None);
        w.tunnel.handle_timeout(Instant(deadline));
        sent_at = deadline;
    }
    w.now = sent_at;
    assert_eq!(w.tunnel.stats().cookies, 0);
    // The tenth attempt is answered: the message goes on.
    assert_eq!(w.run(), TunnelEvent::Response(respond(b"hello", 0)));
    assert_eq!(
        header(&OutgoingQuery {
            name: w.names[9].clone(),
            kind: QueryKind::Cookie
        })
        .attempt,
        9
    );
    assert_unique(&w.names);
}

/// A wrong or expired cookie: the tunnel asks for a new one, then sends the interrupted query
/// again with it.
#[test]
fn bad_cookie_fetches_a_new_cookie_then_the_interrupted_query_resumes() {
    let mut w = World::new(config());
    let msg = message(3 * chunk_len(), 3);
    w.send(&msg);
    let q = w.until(QueryKind::Data, 1);
    w.server.cookie = [9; 5];
    let bad = w.server.reply(&q.name);
    assert_eq!(bad, status_reply(AnswerStatus::BadCookie, 0));
    assert_eq!(w.deliver(&q, bad), Handled::Accepted);
    let c = w.next_query();
    assert_eq!(header(&c).kind, QueryKind::Cookie);
    assert_eq!(header(&c).cookie, Cookie::default());
    assert_eq!(w.answer(&c), Handled::Accepted);
    let resumed = w.next_query();
    let h = header(&resumed);
    assert_eq!((h.kind, h.position, h.attempt), (QueryKind::Data, 1, 1));
    assert_eq!(h.cookie, Cookie([9; 5]));
    assert_eq!(w.answer(&resumed), Handled::Accepted);
    assert_eq!(w.run(), TunnelEvent::Response(respond(&msg, 0)));
    assert_eq!(w.tunnel.stats().cookies, 2);
    assert_unique(&w.names);

    // A cookie request answered with BadCookie (a confused or forged answer) is asked again,
    // without a cookie, and the interrupted query still resumes after it.
    let mut w = World::new(config());
    w.send(&msg);
    let q = w.until(QueryKind::Data, 1);
    w.server.cookie = [10; 5];
    assert_eq!(w.answer(&q), Handled::Accepted);
    let c = w.next_query();
    assert_eq!(header(&c).kind, QueryKind::Cookie);
    let bad = status_reply(AnswerStatus::BadCookie, 0);
    assert_eq!(w.deliver(&c, bad), Handled::Accepted);
    let c = w.next_query();
    assert_eq!(header(&c).kind, QueryKind::Cookie);
    assert_eq!(header(&c).cookie, Cookie::default());
    assert_eq!(w.answer(&c), Handled::Accepted);
    let resumed = w.next_query();
    assert_eq!(header(&resumed).kind, QueryKind::Data);
    assert_eq!(header(&resumed).position, 1);
    assert_eq!(header(&resumed).cookie, Cookie([10; 5]));
    assert_eq!(w.answer(&resumed), Handled::Accepted);
    assert_eq!(w.run(), TunnelEvent::Response(respond(&msg, 0)));
    assert!(
        w.server
            .seen
            .iter()
            .all(|q| q.header.kind != QueryKind::Cookie || q.header.cookie == Cookie::default())
    );

    // Interrupting a poll resumes the poll.
    let mut w = World::new(config());
    w.server.extra = 2000;
    w.send(b"poll me");
    let q = w.until_where(|h| h.kind == QueryKind::Poll);
    w.server.cookie = [8; 5];
    assert_eq!(w.answer(&q), Handled::Accepted);
    let c = w.next_query();
    assert_eq!(c.kind, QueryKind::Cookie);
    assert_eq!(w.answer(&c), Handled::Accepted);
    let resumed = w.next_query();
    assert_eq!(header(&resumed).kind, QueryKind::Poll);
    assert_eq!(header(&resumed).position, header(&q).position);
    assert_eq!(w.answer(&resumed), Handled::Accepted);
    assert_eq!(w.run(), TunnelEvent::Response(respond(b"poll me", 2000)));
}

/// A rate-limited answer holds the next query back by the seconds it gives, then the query is
/// sent again; a longer wait than `max_rate_wait_ms` fails the message.
#[test]
fn rate_limited_waits_the_given_seconds() {
    let mut w = World::new(config());
    w.send(&message(2 * chunk_len(), 4));
    let q = w.until(QueryKind::Data, 0);
    let t = w.now + 1;
    let limited = status_reply(AnswerStatus::RateLimited, 3);
    assert_eq!(w.deliver(&q, limited), Handled::Accepted);
    assert_eq!(w.tunnel.poll_timeout(), Some(Instant(t + 3000)));
    assert_eq!(w.tunnel.poll_query(Instant(t + 2999)), None);
    let again = w.tunnel.poll_query(Instant(t + 3000)).unwrap();
    let h = header(&again);
    assert_eq!((h.kind, h.position, h.attempt), (QueryKind::Data, 0, 1));

    // At most max_rate_wait_ms (120 s by default: a device waits out the server's one-minute
    // window): 120 s is waited, 121 s fails.
    assert_eq!(TunnelConfig::new(zone()).max_rate_wait_ms, 120_000);
    let limited = |s| status_reply(AnswerStatus::RateLimited, s);
    w.now = t + 3000;
    assert_eq!(w.deliver(&again, limited(120)), Handled::Accepted);
    assert_eq!(w.tunnel.poll_timeout(), Some(Instant(w.now + 120_000)));
    w.now += 120_000;
    let q = w.next_query();
    assert_eq!(w.deliver(&q, limited(121)), Handled::Accepted);
    assert_eq!(
        w.tunnel.poll_event(),
        Some(TunnelEvent::Failed(TunnelFailure::RateLimited))
    );
    assert!(!w.tunnel.is_busy());

    let mut w = World::new(TunnelConfig {
        max_rate_wait_ms: 5000,
        ..config()
    });
    w.send(b"x");
    let q = w.next_query();
    assert_eq!(w.deliver(&q, limited(6)), Handled::Accepted);
    assert_eq!(
        w.tunnel.poll_event(),
        Some(TunnelEvent::Failed(TunnelFailure::RateLimited))
    );
}

/// The server got the last chunk but misses others: the whole message is sent again from
/// chunk 0.
#[test]
fn incomplete_resends_from_chunk_zero() {
    let mut w = World::new(config());
    let msg = message(3 * chunk_len() - 5, 5);
    w.send(&msg);
    let last = w.until(QueryKind::LastData, 2);
    w.server.records.clear(); // the server lost chunks 0 and 1
    assert_eq!(
        w.server.reply(&last.name),
        status_reply(AnswerStatus::Incomplete, 0)
    );
    w.server.records.clear();
    assert_eq!(w.answer(&last), Handled::Accepted);
    for position in 0..3u16 {
        let q = w.next_query();
        let h = header(&q);
        assert_eq!(h.position, position);
        assert_eq!(h.attempt, 1, "every chunk goes under a new name");
        assert_eq!(w.answer(&q), Handled::Accepted);
    }
    assert_eq!(w.run(), TunnelEvent::Response(respond(&msg, 0)));
    assert_unique(&w.names);
}

/// The server's refusals for good fail the message at once.
#[test]
fn refusals_fail_the_message() {
    for status in [
        AnswerStatus::ChunkConflict,
        AnswerStatus::TooLarge,
        AnswerStatus::BadOffset,
        AnswerStatus::TunnelFull,
    ] {
        let mut w = World::new(config());
        w.send(&message(2 * chunk_len(), 6));
        let q = w.until(QueryKind::Data, 0);
        let reply = status_reply(status, 0);
        assert_eq!(w.deliver(&q, reply), Handled::Accepted);
        assert_eq!(
            w.tunnel.poll_event(),
            Some(TunnelEvent::Failed(TunnelFailure::Refused(status)))
        );
        assert!(!w.tunnel.is_busy());
        assert_eq!(w.tunnel.poll_query(Instant(w.now + 10_000)), None);
        assert_eq!(w.tunnel.poll_timeout(), None);
        assert_eq!(w.tunnel.poll_event(), None);
    }
}

/// NXDOMAIN: the server cannot read the binding's names; the message fails.
#[test]
fn nxdomain_fails_with_name_refused() {
    let mut w = World::new(config());
    w.send(b"hello");
    let q = w.next_query();
    assert_eq!(w.deliver(&q, Reply::NameError), Handled::Accepted);
    assert_eq!(
        w.tunnel.poll_event(),
        Some(TunnelEvent::Failed(TunnelFailure::NameRefused))
    );
    assert!(!w.tunnel.is_busy());
    // A server under another zone answers NXDOMAIN for every query.
    let mut w = World::new(config());
    w.server.zone = Zone::new("other.example.com").unwrap();
    assert_eq!(
        w.exchange(b"hello"),
        TunnelEvent::Failed(TunnelFailure::NameRefused)
    );
}

fn edns_config() -> TunnelConfig {
    TunnelConfig {
        edns_limit: Some(AnswerLimit::from_bytes(1232).unwrap()),
        ..config()
    }
}

/// Runs to the probe and returns it and the fake server's whole answer. The server's
/// responses must need polls (`w.server.extra`), or no probe comes.
fn probe(w: &mut World, message: &[u8]) -> (OutgoingQuery, AnswerPayload) {
    w.send(message);
    let q = w.until(QueryKind::Probe, 0);
    assert_eq!(q.kind, QueryKind::Probe);
    assert_eq!(header(&q).limit.bytes(), 1232);
    let Reply::Txt(strings) = w.server.reply(&q.name) else {
        panic!("no probe answer");
    };
    (q, AnswerPayload::from_strings(&strings).unwrap())
}

/// The kinds of the queries the server read, in order.
fn kinds_seen(w: &World) -> Vec<QueryKind> {
    w.server.seen.iter().map(|q| q.header.kind).collect()
}

/// Body bytes of an answer to a poll under the test zone at `limit` bytes.
fn poll_capacity(limit: usize) -> usize {
    body_capacity(
        AnswerLimit::from_bytes(limit).unwrap(),
        name::name_wire_len(&zone(), 0),
    )
}

/// With `edns_limit` 1232, the first response that needs polls calls for a probe with a
/// 1232-byte limit, sent before the first poll; when its answer comes whole, the polls ask for
/// 1232-byte answers.
#[test]
fn a_whole_probe_answer_raises_the_answer_limit() {
    let mut w = World::new(edns_config());
    w.server.extra = 5000;
    let (q, whole) = probe(&mut w, b"hello");
    assert_eq!(
        kinds_seen(&w),
        [QueryKind::Cookie, QueryKind::LastData, QueryKind::Probe],
        "the cookie, then the data: the probe waits for a response that needs it"
    );
    assert_eq!(
        whole.body.len(),
        body_capacity(AnswerLimit::from_bytes(1232).unwrap(), q.name.len() + 2)
    );
    assert_eq!(
        w.deliver(&q, Reply::Txt(whole.to_strings())),
        Handled::Accepted
    );
    assert_eq!(w.tunnel.answer_limit().bytes(), 1232);
    let last = &w.server.seen[1];
    let first_piece = body_capacity(
        AnswerLimit::CLASSIC,
        last.to_name(&zone()).unwrap().len() + 2,
    );
    let q = w.next_query();
    assert_eq!(header(&q).kind, QueryKind::Poll);
    assert_eq!(usize::from(header(&q).position), first_piece);
    assert_eq!(header(&q).limit.bytes(), 1232);
    assert_eq!(w.answer(&q), Handled::Accepted);
    assert_eq!(w.run(), TunnelEvent::Response(respond(b"hello", 5000)));
    let polls = kinds_seen(&w)
        .iter()
        .filter(|&&k| k == QueryKind::Poll)
        .count();
    assert_eq!(
        polls,
        (5005 - first_piece).div_ceil(poll_capacity(1232)),
        "pieces of about 1,100 bytes"
    );
    // Not probed again: the next response that needs polls is polled at once, at 1232.
    let before = w.server.seen.len();
    assert_eq!(
        w.exchange(b"again"),
        TunnelEvent::Response(respond(b"again", 5000))
    );
    let next = &w.server.seen[before..];
    assert_eq!(next[0].header.kind, QueryKind::LastData);
    assert_eq!(next[0].header.limit.bytes(), 1232);
    assert!(next[1..].iter().all(|q| q.header.kind == QueryKind::Poll));
    // Without edns_limit, no probe.
    let mut w = World::new(config());
    w.server.extra = 5000;
    assert_eq!(
        w.exchange(b"hello"),
        TunnelEvent::Response(respond(b"hello", 5000))
    );
    assert!(!kinds_seen(&w).contains(&QueryKind::Probe));
    assert!(
        w.server
            .seen
            .iter()
            .all(|q| q.header.limit == AnswerLimit::CLASSIC)
    );
}

/// The probe goes out only when it can save queries: when the first piece of a response says
/// the response is longer than the piece and the rest takes fewer polls in answers of
/// `edns_limit` than of 512 bytes, before the first poll. A device whose responses all fit the
/// answers to their last chunks (or need one poll at any size) never probes, however many
/// messages it sends.
#[test]
fn the_probe_is_sent_only_when_a_response_needs_polls() {
    let mut w = World::new(edns_config());
    // One chunk or several, the response (as long as the message) in the last chunk's answer.
    let lengths = [10, 40, 100, chunk_len() + 5, 2 * chunk_len() + 5];
    for (m, len) in lengths.into_iter().enumerate() {
        let msg = message(len, m as u8);
        assert_eq!(w.exchange(&msg), TunnelEvent::Response(respond(&msg, 0)));
    }
    assert!(kinds_seen(&w).contains(&QueryKind::Data));
    assert!(!kinds_seen(&w).contains(&QueryKind::Probe));
    assert!(!kinds_seen(&w).contains(&QueryKind::Poll));
    assert_eq!(
        kinds_seen(&w)[..2],
        [QueryKind::Cookie, QueryKind::LastData]
    );
    assert_eq!(w.tunnel.answer_limit(), AnswerLimit::CLASSIC);
    // A response that fits exactly the answer to its last chunk: still no probe.
    let msg = message(40, 5);
    let q = Query {
        header: QueryHeader {
            kind: QueryKind::LastData,
            tunnel: w.tunnel.tunnel(),
            cookie: Cookie(w.server.cookie),
            message: 5,
            attempt: 0,
            position: 0,
            limit: AnswerLimit::CLASSIC,
        },
        data: msg.clone(),
    };
    let fits = body_capacity(AnswerLimit::CLASSIC, q.to_name(&zone()).unwrap().len() + 2);
    w.server.extra = fits - msg.len();
    assert_eq!(
        w.exchange(&msg),
        TunnelEvent::Response(respond(&msg, fits - msg.len()))
    );
    assert!(!kinds_seen(&w).contains(&QueryKind::Probe));
    // One byte more needs a poll, and as many bytes more as a 512-byte poll holds need one
    // too: one poll whatever the answer size, so no probe (it would cost a query and save
    // none).
    for (m, rest) in [(6u8, 1), (7, poll_capacity(512))] {
        let before = w.server.seen.len();
        let msg = message(40, m);
        w.server.extra = fits - msg.len() + rest;
        assert_eq!(
            w.exchange(&msg),
            TunnelEvent::Response(respond(&msg, fits - msg.len() + rest))
        );
        assert_eq!(
            kinds_seen(&w)[before..],
            [QueryKind::LastData, QueryKind::Poll],
            "{rest} bytes after the first piece"
        );
    }
    assert_eq!(w.tunnel.answer_limit(), AnswerLimit::CLASSIC);
    // One byte more than that takes two polls at 512 bytes and one at 1,232: the probe goes
    // first, in the same message, before the first poll; the poll asks for 1,232 bytes.
    let before = w.server.seen.len();
    let msg = message(40, 8);
    let rest = poll_capacity(512) + 1;
    assert!(rest <= poll_capacity(1232));
    w.server.extra = fits - msg.len() + rest;
    assert_eq!(
        w.exchange(&msg),
        TunnelEvent::Response(respond(&msg, fits - msg.len() + rest))
    );
    let kinds: Vec<QueryKind> = kinds_seen(&w)[before..].to_vec();
    assert_eq!(
        kinds,
        [QueryKind::LastData, QueryKind::Probe, QueryKind::Poll]
    );
    let probe = &w.server.seen[before + 1].header;
    assert_eq!((probe.message, probe.position), (8, 0));
    assert_eq!(w.tunnel.answer_limit().bytes(), 1232);
    assert_eq!(w.server.seen[before + 2].header.limit.bytes(), 1232);
    // Later responses that need polls are polled without another probe.
    w.server.extra = 3000;
    let before = w.server.seen.len();
    let msg = message(3 * chunk_len(), 9);
    assert_eq!(w.exchange(&msg), TunnelEvent::Response(respond(&msg, 3000)));
    assert!(!kinds_seen(&w)[before..].contains(&QueryKind::Probe));
    assert_eq!(
        kinds_seen(&w)
            .iter()
            .filter(|&&k| k == QueryKind::Probe)
            .count(),
        1
    );
    assert_unique(&w.names);
}

/// A probe answer that is cut or changed, or that comes back truncated, keeps answers within
/// 512 bytes, and the response is polled on.
#[test]
fn a_cut_or_truncated_probe_keeps_512() {
    let spoil: [fn(&mut AnswerPayload) -> Option<Reply>; 4] = [
        |p| {
            p.body.pop();
            None
        },
        |p| {
            p.body.truncate(300);
            None
        },
        |p| {
            p.body[700] ^= 1;
            None
        },
        |_| Some(Reply::Truncated),
    ];
    for spoil in spoil {
        let mut w = World::new(edns_config());
        w.server.extra = 1000;
        let (q, mut payload) = probe(&mut w, b"hello");
        let reply = spoil(&mut payload).unwrap_or(Reply::Txt(payload.to_strings()));
        assert_eq!(w.deliver(&q, reply), Handled::Accepted);
        assert_eq!(w.tunnel.answer_limit(), AnswerLimit::CLASSIC);
        let q = w.next_query();
        assert_eq!(header(&q).kind, QueryKind::Poll);
        assert_eq!(header(&q).limit, AnswerLimit::CLASSIC);
        assert_eq!(w.answer(&q), Handled::Accepted);
        assert_eq!(w.run(), TunnelEvent::Response(respond(b"hello", 1000)));
        assert!(
            w.server.seen.iter().all(
                |q| q.header.kind == QueryKind::Probe || q.header.limit == AnswerLimit::CLASSIC
            )
        );
    }
}

/// Two probes without an answer: large answers do not arrive; the tunnel polls on with 512.
#[test]
fn two_unanswered_probes_fall_back_to_512() {
    let expected = [
        QueryKind::Cookie,
        QueryKind::LastData,
        QueryKind::Probe,
        QueryKind::Probe,
        QueryKind::Poll,
    ];
    let mut w = World::new(edns_config());
    w.server.extra = 1000;
    w.send(b"hello");
    let event = w.run_with(&mut |q, r| (q.kind != QueryKind::Probe).then_some(r));
    assert_eq!(event, TunnelEvent::Response(respond(b"hello", 1000)));
    assert_eq!(w.tunnel.answer_limit(), AnswerLimit::CLASSIC);
    let kinds: Vec<QueryKind> = w.names.iter().map(|n| parse(n).header.kind).collect();
    assert_eq!(kinds[..5], expected);
    assert!(kinds[5..].iter().all(|&k| k == QueryKind::Poll));
    assert!(
        w.names[4..]
            .iter()
            .all(|n| parse(n).header.limit == AnswerLimit::CLASSIC)
    );
    // The same when the resolver fails them instead (each waits out its timeout).
    let mut w = World::new(edns_config());
    w.server.extra = 1000;
    w.send(b"hello");
    let event = w.run_with(&mut |q, r| {
        Some(if q.kind == QueryKind::Probe {
            Reply::ServerFailure
        } else {
            r
        })
    });
    assert_eq!(event, TunnelEvent::Response(respond(b"hello", 1000)));
    let kinds: Vec<QueryKind> = w.names.iter().map(|n| parse(n).header.kind).collect();
    assert_eq!(kinds[..5], expected);
    assert!(
        w.now >= 1000 + 2000,
        "both probes waited out their timeouts"
    );
}

/// An unusable answer (here SERVFAIL, the resolver's quickest failure) does not send the query
/// again at once: the query stays outstanding until the deadline it had, then goes with the
/// next attempt. Six SERVFAILs take the six timeouts (1 + 2 + 4 + 8 + 8 s), not the time six
/// answers take; a usable answer that comes after an unusable one before the deadline is
/// taken.
#[test]
fn an_unusable_answer_waits_for_the_timeout_before_the_retry() {
    let mut w = World::new(config());
    w.send(b"hello");
    let mut sent = Vec::new();
    let event = loop {
        if let Some(event) = w.tunnel.poll_event() {
            break event;
        }
        let Some(q) = w.try_next_query() else {
            continue;
        };
        sent.push(w.now);
        assert_eq!(
            w.deliver(&q, Reply::ServerFailure),
            Handled::Unusable(AnswerProblem::NoRecord)
        );
        assert_eq!(w.tunnel.poll_query(Instant(w.now + 100)), None);
    };
    assert_eq!(event, TunnelEvent::Failed(TunnelFailure::Timeout));
    assert_eq!(sent, [0, 1000, 3000, 7000, 15_000, 23_000]);
    assert_eq!(w.now, 31_000);
    assert_eq!(w.tunnel.stats().retries, 5);
    assert_unique(&w.names);

    // Every kind of unusable answer waits alike: a malformed TXT, a status the query does
    // not expect (NoResponse to a poll), a piece that does not continue the response.
    let mut w = World::new(config());
    w.server.extra = 1000;
    w.send(b"hello");
    let poll = w.until_where(|h| h.kind == QueryKind::Poll);
    let sent_at = w.now;
    let unusable = [
        Reply::Txt(vec![vec![0xee; 3]]),
        status_reply(AnswerStatus::NoResponse, 0),
        Reply::Txt(
            AnswerPayload {
                status: AnswerStatus::Data,
                length: 7,
                body: vec![1; 3],
            }
            .to_strings(),
        ),
        Reply::NoData,
    ];
    for reply in unusable {
        assert!(matches!(w.deliver(&poll, reply), Handled::Unusable(_)));
        assert_eq!(w.tunnel.poll_timeout(), Some(Instant(sent_at + 1000)));
        assert_eq!(w.tunnel.poll_query(Instant(sent_at + 999)), None);
    }
    // The query's own answer, after those and before the deadline, is taken: the query was
    // still outstanding.
    assert_eq!(w.answer(&poll), Handled::Accepted);
    let next = w.next_query();
    assert!(w.now < sent_at + 1000);
    assert_eq!(
        (header(&next).kind, header(&next).attempt),
        (QueryKind::Poll, 0)
    );
    assert_eq!(w.answer(&next), Handled::Accepted);
    assert_eq!(w.run(), TunnelEvent::Response(respond(b"hello", 1000)));
}

/// A piece of the response that does not continue it (another total, more bytes than the
/// total leaves, no bytes, a piece answering a chunk that is not the last) is unusable: the
/// query is sent again.
#[test]
fn a_data_piece_that_does_not_continue_the_response_is_unusable() {
    let mut w = World::new(config());
    w.server.extra = 1500;
    let msg = message(2 * chunk_len(), 7);
    let response = respond(&msg, 1500);
    let total = u16::try_from(response.len()).unwrap();
    w.send(&msg);
    let data = |length: u16, body: &[u8]| {
        Reply::Txt(
            AnswerPayload {
                status: AnswerStatus::Data,
                length,
                body: body.to_vec(),
            }
            .to_strings(),
        )
    };
    let unusable = Handled::Unusable(AnswerProblem::Inconsistent);
    // A piece in answer to a chunk that is not the last.
    let q = w.until(QueryKind::Data, 0);
    assert_eq!(w.deliver(&q, data(total, &response[..100])), unusable);
    let q = w.next_query();
    assert_eq!((header(&q).kind, header(&q).attempt), (QueryKind::Data, 1));
    assert_eq!(w.answer(&q), Handled::Accepted);
    // The first piece: more bytes than the total, no bytes. (The server takes the last
    // chunk, so it has the response for the polls.)
    let q = w.next_query();
    assert_eq!(header(&q).kind, QueryKind::LastData);
    let _ = w.server.reply(&q.name);
    assert_eq!(w.deliver(&q, data(10, &response[..11])), unusable);
    let q = w.next_query();
    assert_eq!(w.deliver(&q, data(total, &[])), unusable);
    let q = w.next_query();
    assert_eq!(
        w.deliver(&q, data(total, &response[..200])),
        Handled::Accepted
    );
    // A poll for offset 200: another total, a piece running past the total, no bytes.
    let q = w.next_query();
    assert_eq!(
        (header(&q).kind, header(&q).position),
        (QueryKind::Poll, 200)
    );
    assert_eq!(
        w.deliver(&q, data(total + 1, &response[200..400])),
        unusable
    );
    let q = w.next_query();
    assert_eq!(
        w.deliver(&q, data(total - 1, &response[200..400])),
        unusable
    );
    let q = w.next_query();
    let past = [&response[200..], &[0u8; 1]].concat();
    assert_eq!(w.deliver(&q, data(total, &past)), unusable);
    let q = w.next_query();
    assert_eq!(w.deliver(&q, data(total, &[])), unusable);
    let q = w.next_query();
    assert_eq!((header(&q).position, header(&q).attempt), (200, 4));
    assert_eq!(w.answer(&q), Handled::Accepted);
    assert_eq!(w.run(), TunnelEvent::Response(response));
    assert_unique(&w.names);
}

/// A response longer than one answer comes in pieces, each poll asking from the byte after
/// the last piece, and is put together exactly.
#[test]
fn a_response_spanning_several_polls_reassembles_exactly() {
    for extra in [0, 200, 213, 214, 215, 1000, 5000, 8000] {
        let mut w = World::new(config());
        w.server.extra = extra;
        let msg = message(777, 8);
        let event = w.exchange(&msg);
        assert_eq!(
            event,
            TunnelEvent::Response(respond(&msg, extra)),
            "{extra}"
        );
        let polls: Vec<u16> = w
            .server
            .seen
            .iter()
            .filter(|q| q.header.kind == QueryKind::Poll)
            .map(|q| q.header.position)
            .collect();
        assert!(polls.windows(2).all(|p| p[0] < p[1]), "{polls:?}");
        let len = 777 + extra;
        assert!(polls.last().is_none_or(|&p| usize::from(p) < len));
        // Every answer used the room it had: about 200 bytes a piece at 512.
        assert!(
            polls.len() <= len / 200,
            "{} polls for {len} bytes",
            polls.len()
        );
    }
    // An empty response.
    let mut w = World::new(config());
    w.send(b"empty");
    let q = w.until(QueryKind::LastData, 0);
    let empty = status_reply(AnswerStatus::Data, 0);
    assert_eq!(w.deliver(&q, empty), Handled::Accepted);
    assert_eq!(w.tunnel.poll_event(), Some(TunnelEvent::Response(vec![])));
}

/// A tunnel carries 16 messages; the 17th opens a new tunnel (new id, new cookie, message 0).
#[test]
fn after_16_messages_the_tunnel_id_changes() {
    let mut w = World::new(config());
    let first = w.tunnel.tunnel();
    for m in 0..16u8 {
        let msg = message(10 + usize::from(m), m);
        assert_eq!(w.exchange(&msg), TunnelEvent::Response(respond(&msg, 0)));
        assert_eq!(w.tunnel.tunnel(), first);
        let last = w.server.seen.last().unwrap().header;
        assert_eq!((last.tunnel, last.message), (first, m));
    }
    let msg = message(20, 16);
    assert_eq!(w.exchange(&msg), TunnelEvent::Response(respond(&msg, 0)));
    let second = w.tunnel.tunnel();
    assert_ne!(second, first);
    let n = w.server.seen.len();
    let [cookie, data] = &w.server.seen[n - 2..] else {
        unreachable!()
    };
    assert_eq!(cookie.header.kind, QueryKind::Cookie);
    assert_eq!((data.header.tunnel, data.header.message), (second, 0));
    assert_eq!(w.tunnel.stats().cookies, 2);
    assert_unique(&w.names);
}

/// Messages longer than the binding carries (8,192 bytes) or empty are refused at send; the
/// longest goes through.
#[test]
fn messages_longer_than_8192_bytes_are_refused_at_send() {
    assert_eq!(MAX_MESSAGE_LEN, 8192);
    let mut w = World::new(config());
    for len in [8193, 10_000, 0] {
        assert_eq!(
            w.tunnel.send(&vec![1; len], &mut rng(1)),
            Err(DnsError::MessageTooLong(len))
        );
        assert!(!w.tunnel.is_busy());
    }
    let msg = message(MAX_MESSAGE_LEN, 9);
    assert_eq!(w.exchange(&msg), TunnelEvent::Response(respond(&msg, 0)));
}

/// Under a zone so long that a message would need more chunks than the server assembles
/// (`MAX_CHUNKS`), the message is refused at send rather than after 256 queries.
#[test]
fn messages_needing_more_than_max_chunks_are_refused_at_send() {
    let long = format!("{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63));
    let zone = Zone::new(&long).unwrap();
    let per_query = max_data_per_query(&zone);
    let fits = per_query * usize::from(MAX_CHUNKS);
    assert!(fits < MAX_MESSAGE_LEN, "{per_query} bytes a query");
    let mut tunnel = TunnelClient::new(TunnelConfig::new(zone), &mut rng(1));
    assert_eq!(
        tunnel.send(&vec![1; fits + 1], &mut rng(2)),
        Err(DnsError::MessageTooLong(fits + 1))
    );
    assert!(tunnel.send(&vec![1; fits], &mut rng(2)).is_ok());
}

/// After a message fails (or is abandoned for another), the next one gets through: it takes
/// a new message index, so the chunks the server holds of the failed one neither conflict with
/// it nor use up its attempts; after `TunnelFull` it opens a new tunnel.
#[test]
fn a_message_after_a_failed_one_gets_through() {
    // Chunk 0 stored by the server, chunk 1 never answered.
    let mut w = World::new(config());
    let first = message(3 * chunk_len(), 10);
    w.send(&first);
    let event = w.run_with(&mut |q, r| (parse(&q.name).header.position != 1).then_some(r));
    assert_eq!(event, TunnelEvent::Failed(TunnelFailure::Timeout));
    let second = message(3 * chunk_len(), 11);
    assert_eq!(
        w.exchange(&second),
        TunnelEvent::Response(respond(&second, 0))
    );

    // Every attempt of chunk 0 unanswered.
    let mut w = World::new(config());
    w.send(&first);
    let event = w.run_with(&mut |q, r| (q.kind != QueryKind::Data).then_some(r));
    assert_eq!(event, TunnelEvent::Failed(TunnelFailure::Timeout));
    assert_eq!(
        w.exchange(&second),
        TunnelEvent::Response(respond(&second, 0))
    );

    // Abandoned half-way for another message.
    let mut w = World::new(config());
    w.send(&first);
    w.until(QueryKind::LastData, 2);
    assert_eq!(
        w.exchange(&second),
        TunnelEvent::Response(respond(&second, 0))
    );
    assert_unique(&w.names);

    // The tunnel is full: the next message opens a new one.
    let mut w = World::new(config());
    let id = w.tunnel.tunnel();
    w.send(b"one");
    let q = w.until(QueryKind::LastData, 0);
    let full = status_reply(AnswerStatus::TunnelFull, 0);
    assert_eq!(w.deliver(&q, full), Handled::Accepted);
    assert_eq!(
        w.tunnel.poll_event(),
        Some(TunnelEvent::Failed(TunnelFailure::Refused(
            AnswerStatus::TunnelFull
        )))
    );
    assert_eq!(
        w.exchange(b"two"),
        TunnelEvent::Response(respond(b"two", 0))
    );
    assert_ne!(w.tunnel.tunnel(), id);
    assert_unique(&w.names);
}
