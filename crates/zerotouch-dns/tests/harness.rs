#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Tests of the test harness itself (tests/common): unbound on loopback behaves as the notes say,
//! and DnsProxy relays, loses, duplicates, captures and forges as asked.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::{AnswerAction, Captured, Direction, DnsProxy, Faults};
use common::unbound::{Unbound, UnboundOptions};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout};

const ZONE: &str = "zt.test.";

/// One question as the authoritative server received it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    id: u16,
    /// Exactly as on the wire (case preserved).
    name: String,
    rtype: RecordType,
}

/// A tiny authoritative server for `zt.test.` over UDP: TXT "hello" for every TXT name,
/// NOERROR/NODATA (with the SOA) for any other type, the question echoed byte for byte (0x20).
struct Authoritative {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: AbortHandle,
}

impl Authoritative {
    async fn start() -> Authoritative {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(question) = query.queries.first() else {
                    continue;
                };
                log.lock().unwrap().push(Seen {
                    id: query.id,
                    name: question.name().to_ascii(),
                    rtype: question.query_type(),
                });
                let answer = answer(&query, question).to_vec().unwrap();
                let _ = socket.send_to(&answer, from).await;
            }
        })
        .abort_handle();
        Authoritative { addr, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Authoritative {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(query: &Message, question: &Query) -> Message {
    let zone = Name::from_ascii(ZONE).unwrap();
    let mut answer = Message::response(query.id, OpCode::Query);
    answer.metadata.recursion_desired = query.recursion_desired;
    answer.add_query(question.clone());
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        answer.set_edns(edns);
    }
    if !zone.zone_of(question.name()) {
        answer.metadata.response_code = ResponseCode::Refused;
        return answer;
    }
    answer.metadata.authoritative = true;
    if question.query_type() == RecordType::TXT {
        let txt = RData::TXT(TXT::new(vec!["hello".to_owned()]));
        answer.add_answer(Record::from_rdata(question.name().clone(), 0, txt));
    } else {
        let soa = SOA::new(
            Name::from_ascii("ns.zt.test.").unwrap(),
            Name::from_ascii("hostmaster.zt.test.").unwrap(),
            1,
            3600,
            600,
            86_400,
            0,
        );
        answer.add_authority(Record::from_rdata(zone, 0, RData::SOA(soa)));
    }
    answer
}

fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    message.to_vec().unwrap()
}

/// The strings of the first TXT record of an answer.
fn txt(answer: &Message) -> Vec<String> {
    answer
        .answers
        .iter()
        .find_map(|record| match &record.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// Sends `bytes` and returns the first reply with the same id within `wait`.
async fn exchange(
    socket: &UdpSocket,
    server: SocketAddr,
    bytes: &[u8],
    wait: Duration,
) -> Option<Message> {
    socket.send_to(bytes, server).await.unwrap();
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65_535];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok((n, _))) = timeout(remaining, socket.recv_from(&mut buf)).await else {
            return None;
        };
        // Late answers to earlier attempts (other ids) are skipped, as a real client would.
        if let Ok(message) = Message::from_vec(&buf[..n])
            && message.id == id
        {
            return Some(message);
        }
    }
}

/// A client that retries with a new id until it gets an answer; returns it and the attempts.
async fn ask_retrying(
    server: SocketAddr,
    name: &str,
    next_id: &mut u16,
    attempts: usize,
) -> (Message, usize) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    for attempt in 1..=attempts {
        *next_id = next_id.wrapping_add(1);
        let bytes = query(*next_id, name, RecordType::TXT);
        if let Some(answer) = exchange(&socket, server, &bytes, Duration::from_millis(150)).await {
            return (answer, attempt);
        }
    }
    panic!("no answer for {name} in {attempts} attempts");
}

/// One TXT query to unbound, re-sent every second for up to 5 s.
async fn ask_unbound(unbound: &Unbound, name: &str) -> Message {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let bytes = query(0x1234, name, RecordType::TXT);
    for _ in 0..5 {
        if let Some(answer) = exchange(&socket, unbound.addr, &bytes, Duration::from_secs(1)).await
        {
            return answer;
        }
    }
    panic!("unbound did not answer {name}; its log:\n{}", unbound.log());
}

async fn start_unbound(authoritative: SocketAddr, opts: UnboundOptions) -> Unbound {
    Unbound::start(ZONE, authoritative, opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn in_zone(seen: &[Seen]) -> Vec<Seen> {
    let zone = Name::from_ascii(ZONE).unwrap();
    seen.iter()
        .filter(|s| zone.zone_of(&Name::from_ascii(&s.name).unwrap()))
        .cloned()
        .collect()
}

#[tokio::test]
async fn unbound_forwards_txt_answers_from_the_stub_zone() {
    let auth = Authoritative::start().await;
    let unbound = start_unbound(auth.addr, UnboundOptions::default()).await;
    let answer = ask_unbound(&unbound, "abc.zt.test.").await;
    assert_eq!(
        answer.response_code,
        ResponseCode::NoError,
        "log:\n{}",
        unbound.log()
    );
    assert_eq!(txt(&answer), ["hello"]);
    assert_eq!(answer.queries[0].name().to_ascii(), "abc.zt.test.");
    let seen = auth.seen();
    assert!(
        seen.iter()
            .any(|s| s.rtype == RecordType::TXT && s.name.eq_ignore_ascii_case("abc.zt.test.")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn unbound_with_caps_for_id_sends_mixed_case_names() {
    let auth = Authoritative::start().await;
    let opts = UnboundOptions {
        caps_for_id: true,
        qname_minimisation: false,
    };
    let unbound = start_unbound(auth.addr, opts).await;
    // 22 letters: all lower case by chance once in 4 million.
    let answer = ask_unbound(&unbound, "abcdefghijklmnop.zt.test.").await;
    assert_eq!(txt(&answer), ["hello"], "log:\n{}", unbound.log());
    let seen = in_zone(&auth.seen());
    assert!(!seen.is_empty());
    assert!(
        seen.iter().any(|s| s.name != s.name.to_ascii_lowercase()),
        "{seen:?}"
    );
    // The client still gets its own spelling back.
    assert_eq!(
        answer.queries[0].name().to_ascii(),
        "abcdefghijklmnop.zt.test."
    );
}

#[tokio::test]
async fn unbound_without_caps_for_id_sends_names_as_asked() {
    let auth = Authoritative::start().await;
    let opts = UnboundOptions {
        caps_for_id: false,
        qname_minimisation: false,
    };
    let unbound = start_unbound(auth.addr, opts).await;
    let answer = ask_unbound(&unbound, "abcdefghijklmnop.zt.test.").await;
    assert_eq!(txt(&answer), ["hello"], "log:\n{}", unbound.log());
    let seen = in_zone(&auth.seen());
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|s| s.name == "abcdefghijklmnop.zt.test."),
        "{seen:?}"
    );
}

#[tokio::test]
async fn unbound_with_qname_minimisation_probes_intermediate_names_with_a_queries_first() {
    let auth = Authoritative::start().await;
    let opts = UnboundOptions {
        caps_for_id: false,
        qname_minimisation: true,
    };
    let unbound = start_unbound(auth.addr, opts).await;
    let answer = ask_unbound(&unbound, "x1.y2.z3.zt.test.").await;
    assert_eq!(txt(&answer), ["hello"], "log:\n{}", unbound.log());
    let seen = in_zone(&auth.seen());
    let position = |name: &str, rtype| {
        seen.iter()
            .position(|s| s.rtype == rtype && s.name.eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("no {rtype} {name} in {seen:?}"))
    };
    let txt_query = position("x1.y2.z3.zt.test.", RecordType::TXT);
    // One probe per label below the zone, the full name included (unbound 1.17: A x1.y2.z3 too).
    let probes = [
        position("z3.zt.test.", RecordType::A),
        position("y2.z3.zt.test.", RecordType::A),
        position("x1.y2.z3.zt.test.", RecordType::A),
        txt_query,
    ];
    assert!(probes.is_sorted(), "{seen:?}");
}

#[tokio::test]
async fn unbound_without_qname_minimisation_asks_the_full_name_at_once() {
    let auth = Authoritative::start().await;
    let opts = UnboundOptions {
        caps_for_id: false,
        qname_minimisation: false,
    };
    let unbound = start_unbound(auth.addr, opts).await;
    let answer = ask_unbound(&unbound, "x1.y2.z3.zt.test.").await;
    assert_eq!(txt(&answer), ["hello"], "log:\n{}", unbound.log());
    let seen = in_zone(&auth.seen());
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|s| s.rtype == RecordType::TXT && s.name == "x1.y2.z3.zt.test."),
        "{seen:?}"
    );
}

#[tokio::test]
async fn unbound_start_fails_with_the_log_when_the_config_is_rejected() {
    // A zone name unbound cannot parse: start must fail (not hang) and say why.
    let error = Unbound::start(
        "bad zone\".",
        SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
        UnboundOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(error.contains("unbound"), "{error}");
}

#[tokio::test]
async fn proxy_with_faults_still_delivers_to_a_client_retrying_with_new_ids() {
    let auth = Authoritative::start().await;
    let faults = Faults {
        drop_query: 0.3,
        drop_answer: 0.3,
        duplicate_query: 0.2,
        delay_ms: (0, 20),
    };
    let proxy = DnsProxy::start(auth.addr, faults, 7).await;
    let mut id = 0u16;
    let mut sends = 0;
    for i in 0..20 {
        let name = format!("q{i}.zt.test.");
        let (answer, attempts) = ask_retrying(proxy.addr(), &name, &mut id, 40).await;
        sends += attempts;
        assert_eq!(txt(&answer), ["hello"]);
        assert_eq!(answer.queries[0].name().to_ascii(), name);
    }
    let stats = proxy.stats();
    assert_eq!(stats.queries, sends as u64, "{stats:?}");
    assert!(
        sends > 20,
        "with 30 % loss each way some attempts must fail: {stats:?}"
    );
    assert!(stats.dropped > 0 && stats.duplicated > 0, "{stats:?}");
    assert!(stats.answers >= 20, "{stats:?}");
}

#[tokio::test]
async fn proxy_faults_are_reproducible_from_the_seed() {
    // One query at a time, each fully settled: the sequence of events, hence of draws, is fixed.
    async fn run(seed: u64) -> Vec<bool> {
        let auth = Authoritative::start().await;
        let faults = Faults {
            drop_query: 0.5,
            ..Faults::default()
        };
        let proxy = DnsProxy::start(auth.addr, faults, seed).await;
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let mut delivered = Vec::new();
        for id in 0..16 {
            let bytes = query(id, "r.zt.test.", RecordType::TXT);
            delivered.push(
                exchange(&socket, proxy.addr(), &bytes, Duration::from_millis(100))
                    .await
                    .is_some(),
            );
        }
        delivered
    }
    let first = run(42).await;
    assert_eq!(first, run(42).await);
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
}

#[tokio::test]
async fn proxy_duplicated_queries_reach_the_upstream_twice() {
    let auth = Authoritative::start().await;
    let faults = Faults {
        duplicate_query: 1.0,
        ..Faults::default()
    };
    let proxy = DnsProxy::start(auth.addr, faults, 1).await;
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let bytes = query(0xd0d0, "dup.zt.test.", RecordType::TXT);
    let first = exchange(&socket, proxy.addr(), &bytes, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(txt(&first), ["hello"]);
    // The second copy's answer is relayed too.
    let mut buf = vec![0u8; 65_535];
    let (n, _) = timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Message::from_vec(&buf[..n]).unwrap().id, 0xd0d0);

    let seen = auth.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.id == 0xd0d0 && s.name == "dup.zt.test."),
        "{seen:?}"
    );
    let stats = proxy.stats();
    assert_eq!(
        (
            stats.queries,
            stats.duplicated,
            stats.answers,
            stats.dropped
        ),
        (1, 1, 2, 0)
    );
}

#[tokio::test]
async fn proxy_capture_holds_both_directions_in_order() {
    let auth = Authoritative::start().await;
    let proxy = DnsProxy::start(auth.addr, Faults::default(), 1).await;
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let bytes = query(0xcafe, "cap.zt.test.", RecordType::TXT);
    let answer = exchange(&socket, proxy.addr(), &bytes, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        proxy.capture(),
        [
            Captured {
                direction: Direction::ToUpstream,
                bytes,
                tcp: false
            },
            Captured {
                direction: Direction::ToClient,
                bytes: answer.to_vec().unwrap(),
                tcp: false
            },
        ]
    );
}

#[tokio::test]
async fn proxy_dropped_queries_are_captured_but_never_reach_the_upstream() {
    let auth = Authoritative::start().await;
    let faults = Faults {
        drop_query: 1.0,
        ..Faults::default()
    };
    let proxy = DnsProxy::start(auth.addr, faults, 1).await;
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let bytes = query(0xbeef, "lost.zt.test.", RecordType::TXT);
    assert!(
        exchange(&socket, proxy.addr(), &bytes, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert!(auth.seen().is_empty());
    assert_eq!(
        proxy.capture(),
        [Captured {
            direction: Direction::ToUpstream,
            bytes,
            tcp: false
        }]
    );
    let stats = proxy.stats();
    assert_eq!((stats.queries, stats.dropped, stats.answers), (1, 1, 0));
}

/// The real answer with its TXT data replaced.
fn forge(real: &[u8], text: &str) -> Vec<u8> {
    let mut message = Message::from_vec(real).unwrap();
    message.answers[0].data = RData::TXT(TXT::new(vec![text.to_owned()]));
    message.to_vec().unwrap()
}

#[tokio::test]
async fn proxy_answer_filter_replace_gives_the_client_the_forgery() {
    let auth = Authoritative::start().await;
    let proxy = DnsProxy::start(auth.addr, Faults::default(), 1).await;
    proxy.set_answer_filter(Box::new(|real| {
        AnswerAction::Replace(forge(real, "forged"))
    }));
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let bytes = query(0x0f0f, "forge.zt.test.", RecordType::TXT);
    let answer = exchange(&socket, proxy.addr(), &bytes, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(txt(&answer), ["forged"]);
    // The capture keeps what the upstream really said.
    let capture = proxy.capture();
    assert_eq!(
        txt(&Message::from_vec(&capture[1].bytes).unwrap()),
        ["hello"]
    );
}

#[tokio::test]
async fn proxy_answer_filter_inject_before_sends_the_forgery_first_then_the_real_answer() {
    let auth = Authoritative::start().await;
    let proxy = DnsProxy::start(auth.addr, Faults::default(), 1).await;
    proxy.set_answer_filter(Box::new(|real| {
        AnswerAction::InjectBefore(forge(real, "first"))
    }));
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let bytes = query(0x1111, "inject.zt.test.", RecordType::TXT);
    let first = exchange(&socket, proxy.addr(), &bytes, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(txt(&first), ["first"]);
    let mut buf = vec![0u8; 65_535];
    let (n, _) = timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(txt(&Message::from_vec(&buf[..n]).unwrap()), ["hello"]);
}

#[tokio::test]
async fn proxy_answer_filter_drop_withholds_the_answer() {
    let auth = Authoritative::start().await;
    let proxy = DnsProxy::start(auth.addr, Faults::default(), 1).await;
    proxy.set_answer_filter(Box::new(|_| AnswerAction::Drop));
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let bytes = query(0x2222, "withheld.zt.test.", RecordType::TXT);
    assert!(
        exchange(&socket, proxy.addr(), &bytes, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(auth.seen().len(), 1);
    let stats = proxy.stats();
    assert_eq!((stats.queries, stats.answers, stats.dropped), (1, 1, 1));
}

#[tokio::test]
async fn proxy_relays_length_prefixed_tcp_messages_both_ways() {
    // unbound serves TCP; our tiny authoritative server only UDP.
    let auth = Authoritative::start().await;
    let unbound = start_unbound(auth.addr, UnboundOptions::default()).await;
    let proxy = DnsProxy::start(unbound.addr, Faults::default(), 1).await;
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let bytes = query(0x3333, "tcp.zt.test.", RecordType::TXT);
    let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).await.unwrap();
    let len = timeout(Duration::from_secs(5), stream.read_u16())
        .await
        .unwrap()
        .unwrap();
    let mut reply = vec![0u8; usize::from(len)];
    stream.read_exact(&mut reply).await.unwrap();
    let answer = Message::from_vec(&reply).unwrap();
    assert_eq!(txt(&answer), ["hello"], "log:\n{}", unbound.log());
    assert_eq!(
        proxy.capture(),
        [
            Captured {
                direction: Direction::ToUpstream,
                bytes,
                tcp: true
            },
            Captured {
                direction: Direction::ToClient,
                bytes: reply,
                tcp: true
            },
        ]
    );
}

#[tokio::test]
async fn unbound_retries_through_a_lossy_proxy_to_the_stub_zone() {
    // unbound -> proxy (half its queries lost) -> authoritative: unbound's own retries get through.
    let auth = Authoritative::start().await;
    let faults = Faults {
        drop_query: 0.5,
        ..Faults::default()
    };
    let proxy = DnsProxy::start(auth.addr, faults, 3).await;
    let unbound = start_unbound(proxy.addr(), UnboundOptions::default()).await;
    let started = Instant::now();
    let answer = ask_unbound(&unbound, "a.b.c.zt.test.").await;
    let elapsed = started.elapsed();
    assert_eq!(txt(&answer), ["hello"], "log:\n{}", unbound.log());
    let stats = proxy.stats();
    eprintln!(
        "answered after {elapsed:?}; proxy {stats:?}; authoritative saw {:?}",
        auth.seen()
    );
    // 3 minimisation probes and the TXT query, plus re-sends of the lost ones.
    assert!(stats.queries >= 4 + stats.dropped, "{stats:?}");
}

#[tokio::test]
async fn proxy_stops_its_tasks_and_frees_its_port_when_dropped() {
    let auth = Authoritative::start().await;
    // The query is still waiting out its delay when the proxy goes.
    let faults = Faults {
        delay_ms: (5_000, 5_000),
        ..Faults::default()
    };
    let proxy = DnsProxy::start(auth.addr, faults, 1).await;
    let addr = proxy.addr();
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    socket
        .send_to(&query(0x4444, "late.zt.test.", RecordType::TXT), addr)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(proxy.stats().queries, 1);
    drop(proxy);
    // Every task held the listening socket; once they are gone the port can be bound again.
    let deadline = Instant::now() + Duration::from_secs(2);
    while UdpSocket::bind(addr).await.is_err() || std::net::TcpListener::bind(addr).is_err() {
        assert!(Instant::now() < deadline, "the proxy still holds {addr}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(auth.seen().is_empty());
}

#[tokio::test]
async fn unbound_is_killed_when_dropped() {
    let auth = Authoritative::start().await;
    let unbound = start_unbound(auth.addr, UnboundOptions::default()).await;
    let addr = unbound.addr;
    let dir = unbound.dir().to_owned();
    drop(unbound);
    let deadline = Instant::now() + Duration::from_secs(5);
    while UdpSocket::bind(addr).await.is_err() {
        assert!(Instant::now() < deadline, "unbound still holds {addr}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!dir.exists());
}
