#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The authoritative DNS server's rules, one test each: the handler driven in-process with
//! names made by `Query::to_name` and by a `TunnelClient`, and the listeners over real UDP and
//! TCP on loopback.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use data_encoding::BASE32_NOPAD;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::{
    CipherSuite, Envelope, Instant, KeyId, KeyMapRule, KeyRole, MessageTag, Nonce, Pin, PublicKey,
    SessionId, Signer, SoftwareSigner, Transport,
};
use zerotouch_device::{DeviceConfig, DeviceSession, Event, MemoryDeviceState, Path, RetryPolicy};
use zerotouch_dns::answer::{body_capacity, probe_filler};
use zerotouch_dns::server::{DnsHandler, HandlerAnswer, SoaSection};
use zerotouch_dns::{
    AnswerLimit, AnswerPayload, AnswerStatus, Cookie, DnsServerConfig, Handled, NameKind, Query,
    QueryHeader, QueryKind, QueryLimit, Reply, TunnelClient, TunnelConfig, TunnelEvent, TunnelId,
    Zone, max_data_per_query, serve_dns,
};
use zerotouch_server::{ServiceConfig, SetupService};
use zerotouch_store::{
    Account, AccountId, AccountStore, Association, AssociationChange, AssociationStore,
    AttemptState, AttemptStore, AuditEntry, ChangeOutcome, CounterKey, DeviceRecord, DeviceStore,
    ImportReport, LockoutPolicy, MemoryStore, Network, NetworkId, NewNetwork, NonceUse,
    OutcomeRecord, OutcomeStore, PurgeReport, PutResponse, Registrar, RegistrarCredential,
    RegistrarId, RegistrarStore, ResponseKey, Retention, ScanReport, ServerKeyRecord,
    ServerKeyStore, SessionCas, SessionRecord, SessionStore, StoreError, StoredResponse,
};
use zerotouch_store_suite::fixtures;
use zerotouch_testkit::flow1::{self, pinned, ring};

/// 2023-11-14T22:13:20Z: 13 min 20 s into a cookie epoch.
const T0: Instant = Instant(1_700_000_000_000);
const HOUR_MS: u64 = 3_600_000;
const ZONE: &str = "zt.example.com";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

// ---------------------------------------------------------------------------------------------
// A store that counts the calls made to it: a wrong cookie must make none.

#[derive(Clone, Default)]
struct CountingStore {
    inner: Arc<MemoryStore>,
    calls: Arc<AtomicU64>,
}

impl CountingStore {
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Implements a store trait by counting the call and delegating it.
macro_rules! counted {
    ($trait:ident { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $ret:ty; )* }) => {
        impl $trait for CountingStore {
            $(
                fn $name(&self $(, $arg: $ty)*)
                    -> impl Future<Output = Result<$ret, StoreError>> + Send
                {
                    self.calls.fetch_add(1, Ordering::SeqCst);
                    self.inner.$name($($arg),*)
                }
            )*
        }
    };
}

counted!(AccountStore {
    fn create_account(&self, name: &str, now: Instant) -> AccountId;
    fn account(&self, id: AccountId) -> Option<Account>;
    fn add_network(&self, network: NewNetwork, now: Instant) -> NetworkId;
    fn networks_of_account(&self, account: AccountId) -> Vec<Network>;
    fn remove_network(&self, id: NetworkId) -> bool;
});

counted!(AssociationStore {
    fn apply_association_change(&self, change: AssociationChange) -> ChangeOutcome;
    fn associations_of_device(&self, device: &KeyId) -> Vec<Association>;
    fn devices_of_account(&self, account: AccountId) -> Vec<KeyId>;
    fn audit_log(&self, after: u64, limit: usize) -> Vec<AuditEntry>;
    fn device_history(&self, device: &KeyId) -> Vec<AuditEntry>;
});

counted!(AttemptStore {
    fn increment_counter(&self, key: CounterKey, window_start: Instant, expires_at: Instant) -> u64;
    fn record_failure(&self, key: CounterKey, policy: LockoutPolicy, now: Instant) -> AttemptState;
    fn attempt_state(&self, key: CounterKey) -> AttemptState;
    fn clear_failures(&self, key: CounterKey) -> ();
});

counted!(DeviceStore {
    fn import_devices(&self, devices: Vec<DeviceRecord>) -> ImportReport;
    fn device(&self, key_id: &KeyId) -> Option<DeviceRecord>;
    fn devices_with_key_prefix(&self, prefix: &[u8], limit: usize) -> Vec<KeyId>;
    fn set_blocked(&self, key_id: &KeyId, blocked: bool) -> ();
});

counted!(OutcomeStore {
    fn record_outcome(&self, outcome: OutcomeRecord) -> ();
    fn outcomes_of_device(&self, device: &KeyId) -> Vec<OutcomeRecord>;
    fn record_scan_report(&self, report: ScanReport) -> ();
    fn scan_reports_of_device(&self, device: &KeyId) -> Vec<ScanReport>;
    fn purge_expired(&self, now: Instant, retention: Retention) -> PurgeReport;
});

counted!(RegistrarStore {
    fn add_registrar(&self, name: &str, credential: RegistrarCredential, now: Instant) -> RegistrarId;
    fn registrar_by_credential(&self, credential: &RegistrarCredential) -> Option<Registrar>;
    fn registrar(&self, id: RegistrarId) -> Option<Registrar>;
    fn set_registrar_disabled(&self, id: RegistrarId, disabled: bool) -> ();
});

counted!(ServerKeyStore {
    fn add_server_key(&self, role: KeyRole, public_key: PublicKey, now: Instant) -> KeyId;
    fn server_keys(&self) -> Vec<ServerKeyRecord>;
    fn retire_server_key(&self, key_id: &KeyId) -> ();
    fn revoke_server_key(&self, key_id: &KeyId, replacement: Option<KeyId>, now: Instant) -> ();
    fn add_key_map_rule(&self, rule: KeyMapRule) -> ();
    fn key_map(&self) -> Vec<KeyMapRule>;
});

counted!(SessionStore {
    fn compare_and_swap_session(&self, id: SessionId, expected: Option<u64>, state: Vec<u8>, expires_at: Instant, now: Instant) -> SessionCas;
    fn session(&self, id: SessionId, now: Instant) -> Option<SessionRecord>;
    fn issue_nonce(&self, nonce: Nonce, session: SessionId, expires_at: Instant) -> ();
    fn consume_nonce(&self, nonce: Nonce, session: SessionId, now: Instant) -> NonceUse;
    fn put_response_if_absent(&self, key: ResponseKey, response: StoredResponse) -> PutResponse;
    fn stored_response(&self, key: ResponseKey, now: Instant) -> Option<StoredResponse>;
});

// ---------------------------------------------------------------------------------------------
// A world: the setup service with a registered device whose account has a home network.

type Service = SetupService<CountingStore, SoftwareSigner>;
type Handler = DnsHandler<CountingStore, SoftwareSigner>;

struct World {
    store: CountingStore,
    service: Arc<Service>,
}

impl World {
    async fn new() -> World {
        let store = CountingStore::default();
        let service = flow1::registered_service(store.clone(), false).await;
        World {
            store,
            service: Arc::new(service),
        }
    }

    /// Another server process: its own setup service and handler on the same store.
    fn second_process(&self, config: &DnsServerConfig) -> Handler {
        let service = SetupService::new(self.store.clone(), ring(), ServiceConfig::default());
        DnsHandler::new(config, Arc::new(service))
    }

    fn handler(&self, config: &DnsServerConfig) -> Handler {
        DnsHandler::new(config, Arc::clone(&self.service))
    }
}

fn zone() -> Zone {
    Zone::new(ZONE).unwrap()
}

fn config() -> DnsServerConfig {
    DnsServerConfig::new(zone(), "127.0.0.1:0".parse().unwrap())
}

/// A device of fixture 1 speaking flow 1 over DNS.
fn device() -> DeviceSession<SoftwareSigner, MemoryDeviceState> {
    let key = SoftwareSigner::new(fixtures::device_key(1));
    let config = DeviceConfig {
        transport: Transport::Dns,
        home_transport: Transport::Https,
        identity: DeviceIdentityRef::PublicKey(key.public_key().to_spki_der()),
        pin: Some(Pin::new(fixtures::PIN).unwrap()),
        radio_bands: 3,
        radio_security: 3,
        suites: CipherSuite::SUPPORTED.to_vec(),
        retry: RetryPolicy::default(),
    };
    DeviceSession::new(config, pinned(), key, MemoryDeviceState::new()).unwrap()
}

fn home() -> Vec<ReportedNetwork> {
    vec![ReportedNetwork {
        ssid: b"home".to_vec(),
        signal_loss_db: 40,
        band: 2,
        channel: 36,
        security: 2,
    }]
}

/// A real hello from a device session, and the session waiting for its proof.
fn hello() -> (DeviceSession<SoftwareSigner, MemoryDeviceState>, Vec<u8>) {
    let mut device = device();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    device.start(T0, zerotouch_device::Trigger::FirstBoot);
    assert_eq!(device.poll_event(), Some(Event::ScanRequested));
    device.scan_complete(T0, home(), &mut rng);
    let hello = device.poll_transmit().unwrap();
    assert_eq!(hello.path, Path::Setup);
    (device, hello.bytes)
}

// ---------------------------------------------------------------------------------------------
// Names and answers.

const TUNNEL: TunnelId = TunnelId([1, 2, 3, 4, 5]);

struct Q {
    kind: QueryKind,
    tunnel: TunnelId,
    cookie: Cookie,
    message: u8,
    attempt: u8,
    position: u16,
    limit: AnswerLimit,
    data: Vec<u8>,
}

impl Q {
    fn new(kind: QueryKind, cookie: Cookie) -> Q {
        Q {
            kind,
            tunnel: TUNNEL,
            cookie,
            message: 0,
            attempt: 0,
            position: 0,
            limit: AnswerLimit::CLASSIC,
            data: Vec::new(),
        }
    }

    fn cookie_request(tunnel: TunnelId) -> Q {
        Q {
            tunnel,
            ..Q::new(QueryKind::Cookie, Cookie::default())
        }
    }

    fn chunk(cookie: Cookie, last: bool, index: u16, data: &[u8]) -> Q {
        let kind = if last {
            QueryKind::LastData
        } else {
            QueryKind::Data
        };
        Q {
            position: index,
            data: data.to_vec(),
            ..Q::new(kind, cookie)
        }
    }

    fn poll(cookie: Cookie, offset: u16) -> Q {
        Q {
            position: offset,
            ..Q::new(QueryKind::Poll, cookie)
        }
    }

    fn name_in(&self, zone: &Zone) -> String {
        Query {
            header: QueryHeader {
                kind: self.kind,
                tunnel: self.tunnel,
                cookie: self.cookie,
                message: self.message,
                attempt: self.attempt,
                position: self.position,
                limit: self.limit,
            },
            data: self.data.clone(),
        }
        .to_name(zone)
        .unwrap()
    }

    fn name(&self) -> String {
        self.name_in(&zone())
    }
}

/// The TXT payload of a NOERROR answer.
fn payload(answer: HandlerAnswer) -> AnswerPayload {
    assert_eq!(answer.rcode, ResponseCode::NoError, "{answer:?}");
    answer.txt.expect("a TXT record")
}

async fn ask(handler: &Handler, name: &str, from: IpAddr, now: Instant) -> AnswerPayload {
    payload(handler.answer(name, RecordType::TXT, from, now).await)
}

async fn status_of(handler: &Handler, name: &str, from: IpAddr, now: Instant) -> AnswerStatus {
    ask(handler, name, from, now).await.status
}

fn limit(queries: u64, secs: u64) -> QueryLimit {
    QueryLimit {
        queries,
        window: Duration::from_secs(secs),
    }
}

async fn cookie_at(handler: &Handler, tunnel: TunnelId, now: Instant) -> Cookie {
    let p = ask(handler, &Q::cookie_request(tunnel).name(), CLIENT, now).await;
    assert_eq!(p.status, AnswerStatus::Cookie);
    Cookie(p.body.try_into().unwrap())
}

/// Mixes the case of a name's letters (0x20 randomisation as a resolver does it).
fn mixed_case(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 3 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn wire_len(name: &str) -> usize {
    name.len() + 2
}

/// What a resolver would hand the device for a handler's answer.
fn reply_of(answer: HandlerAnswer) -> Reply {
    match (answer.rcode, answer.txt) {
        (ResponseCode::NoError, Some(p)) => Reply::Txt(p.to_strings()),
        (ResponseCode::NoError, None) => Reply::NoData,
        (ResponseCode::NXDomain, _) => Reply::NameError,
        _ => Reply::ServerFailure,
    }
}

/// Sends `message` through `tunnel`, asking each query of `ask`, with a simulated clock;
/// every answer must be usable. Returns the response.
async fn run_tunnel<F, Fut>(
    tunnel: &mut TunnelClient,
    message: &[u8],
    clock: &mut Instant,
    mut ask: F,
) -> Vec<u8>
where
    F: FnMut(String, Instant) -> Fut,
    Fut: Future<Output = Reply>,
{
    tunnel
        .send(message, &mut ChaCha20Rng::seed_from_u64(clock.0))
        .unwrap();
    for _ in 0..1_000 {
        match tunnel.poll_event() {
            Some(TunnelEvent::Response(response)) => return response,
            Some(TunnelEvent::Failed(failure)) => panic!("tunnel failed: {failure:?}"),
            None => {}
        }
        match tunnel.poll_query(*clock) {
            Some(query) => {
                let reply = ask(query.name.clone(), *clock).await;
                *clock = Instant(clock.0 + 1);
                let handled = tunnel.handle_answer(*clock, &query.name, reply);
                assert_eq!(handled, Handled::Accepted, "{:?}", query.kind);
            }
            None => {
                let t = tunnel.poll_timeout().expect("a timer");
                *clock = Instant(t.0.max(clock.0));
                tunnel.handle_timeout(*clock);
            }
        }
    }
    panic!("the tunnel did not finish");
}

// ---------------------------------------------------------------------------------------------
// Over the wire.

fn dns_query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(hickory_proto::op::Query::query(
        Name::from_ascii(format!("{name}.")).unwrap(),
        qtype,
    ));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        message.set_edns(e);
    }
    message.to_vec().unwrap()
}

/// The cookie the server at `server` answers a cookie request `name` with, over UDP.
async fn udp_cookie(server: SocketAddr, name: &str) -> Cookie {
    let response = udp_exchange(server, &dns_query(name, RecordType::TXT, None)).await;
    let payload = txt_of(&Message::from_vec(&response).unwrap());
    assert_eq!(payload.status, AnswerStatus::Cookie);
    Cookie(payload.body.try_into().unwrap())
}

async fn udp_exchange(server: SocketAddr, request: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    socket.send_to(request, server).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    buf.truncate(n);
    buf
}

async fn tcp_exchange(server: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let len = u16::try_from(request.len()).unwrap().to_be_bytes();
    stream.write_all(&len).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut response = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut response).await.unwrap();
    response
}

/// The TXT payload of a response message.
fn txt_of(response: &Message) -> AnswerPayload {
    let record = response.answers.first().expect("an answer record");
    let RData::TXT(txt) = &record.data else {
        panic!("not TXT: {record:?}");
    };
    AnswerPayload::from_strings(&txt.txt_data).unwrap()
}

fn wire_reply(bytes: &[u8]) -> Reply {
    let response = Message::from_vec(bytes).unwrap();
    if response.truncation {
        return Reply::Truncated;
    }
    match response.response_code {
        ResponseCode::NoError if response.answers.is_empty() => Reply::NoData,
        ResponseCode::NoError => Reply::Txt(txt_of(&response).to_strings()),
        ResponseCode::NXDomain => Reply::NameError,
        _ => Reply::ServerFailure,
    }
}

// ---------------------------------------------------------------------------------------------
// The rules.

#[tokio::test]
async fn names_outside_the_zone_are_refused() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let inside = Q::cookie_request(TUNNEL).name();
    let other_zone = inside.replace(ZONE, "zt.example.org");
    for name in [
        "www.example.org",
        "example.com",
        "zt.example.com.evil",
        "xzt.example.com",
        "",
        ".",
        other_zone.as_str(),
    ] {
        let answer = handler.answer(name, RecordType::TXT, CLIENT, T0).await;
        assert_eq!(answer.rcode, ResponseCode::Refused, "{name}");
        assert_eq!((answer.txt, answer.soa), (None, None), "{name}");
    }
}

#[tokio::test]
async fn the_apex_answers_its_soa_and_nodata_otherwise() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let soa = handler
        .answer("ZT.example.com.", RecordType::SOA, CLIENT, T0)
        .await;
    assert_eq!(soa.rcode, ResponseCode::NoError);
    assert_eq!(soa.soa, Some(SoaSection::Answer));
    for qtype in [RecordType::TXT, RecordType::A, RecordType::NS] {
        assert!(handler.answer(ZONE, qtype, CLIENT, T0).await.is_nodata());
    }
}

#[tokio::test]
async fn undecodable_names_get_nxdomain() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let data = Q::chunk(Cookie([9; 5]), false, 0, &[7; 100]).name();
    let header_label = data.split('.').nth(2).unwrap().to_string();
    let mut bad_version = Q::cookie_request(TUNNEL).name();
    let mut header = BASE32_NOPAD
        .decode(
            bad_version
                .split('.')
                .next()
                .unwrap()
                .to_uppercase()
                .as_bytes(),
        )
        .unwrap();
    header[0] = 0x81; // version 2
    bad_version = format!(
        "{}.{ZONE}",
        BASE32_NOPAD.encode(&header).to_ascii_lowercase()
    );
    let names = [
        format!("www.{ZONE}"),
        format!("{}.{ZONE}", "1".repeat(24)),
        bad_version,
        // One data label too many.
        format!("aaaa.{data}"),
        // The data labels split at other places.
        data.replacen('.', "", 1)
            .replacen(&header_label, &format!("{}.{header_label}", "a"), 1),
    ];
    for name in &names {
        assert!(Query::classify(name, &zone()).is_err(), "{name}");
        let answer = handler.answer(name, RecordType::TXT, CLIENT, T0).await;
        assert_eq!(answer.rcode, ResponseCode::NXDomain, "{name}");
        assert_eq!(answer.soa, Some(SoaSection::Authority));
        assert_eq!(answer.txt, None);
    }
}

#[tokio::test]
async fn intermediate_names_and_non_txt_types_get_nodata() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let before = world.store.calls();
    let name = Q::chunk(Cookie([9; 5]), false, 0, &[7; 100]).name();
    // QNAME minimisation: the zone, then one label more at a time.
    let labels: Vec<&str> = name.split('.').collect();
    for skip in 1..labels.len() - ZONE.split('.').count() {
        let partial = labels[skip..].join(".");
        let kind = Query::classify(&partial, &zone()).unwrap();
        assert_eq!(kind, NameKind::Intermediate, "{partial}");
        let answer = handler.answer(&partial, RecordType::TXT, CLIENT, T0).await;
        assert!(answer.is_nodata(), "{partial}: {answer:?}");
        let answer = handler.answer(&partial, RecordType::A, CLIENT, T0).await;
        assert!(answer.is_nodata(), "{partial}: {answer:?}");
    }
    for qtype in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::NS,
        RecordType::CNAME,
        RecordType::ANY,
    ] {
        let answer = handler.answer(&name, qtype, CLIENT, T0).await;
        assert!(answer.is_nodata(), "{qtype}: {answer:?}");
    }
    assert_eq!(world.store.calls(), before, "NODATA costs no store access");
}

#[tokio::test]
async fn the_question_case_is_echoed_exactly_over_udp() {
    let world = World::new().await;
    let server = serve_dns(config(), Arc::clone(&world.service))
        .await
        .unwrap();
    let lower = Q::cookie_request(TUNNEL).name();
    let mixed = mixed_case(&lower);
    assert_ne!(mixed, lower);
    let mut answers = Vec::new();
    for name in [&mixed, &lower] {
        let request = dns_query(name, RecordType::TXT, None);
        let response = udp_exchange(server.local_addr(), &request).await;
        // The question section, byte for byte.
        let question_end = 12 + wire_len(name) + 4;
        assert_eq!(response[12..question_end], request[12..question_end]);
        let message = Message::from_vec(&response).unwrap();
        assert_eq!(message.id, Message::from_vec(&request).unwrap().id);
        assert!(message.authoritative && message.recursion_desired);
        assert_eq!(message.queries[0].name.to_ascii(), format!("{name}."));
        assert_eq!(message.answers[0].name.to_ascii(), format!("{name}."));
        assert_eq!(message.answers[0].ttl, 0);
        answers.push(txt_of(&message));
    }
    assert_eq!(answers[0].status, AnswerStatus::Cookie);
    // The payload does not depend on the case.
    assert_eq!(answers[0], answers[1]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_cookie_costs_no_store_access() {
    let world = World::new().await;
    let handler = world.handler(&config());
    handler.load_cookie_secret(T0).await.unwrap();
    let good = cookie_at(&handler, TUNNEL, T0).await;
    let before = world.store.calls();
    for cookie in [
        Cookie::default(),
        Cookie([0xff; 5]),
        Cookie([good.0[0] ^ 1, 0, 0, 0, 0]),
    ] {
        for q in [
            Q::chunk(cookie, false, 0, b"chunk"),
            Q::chunk(cookie, true, 0, b"chunk"),
            Q::poll(cookie, 0),
            Q::new(QueryKind::Probe, cookie),
        ] {
            let p = ask(&handler, &q.name(), CLIENT, T0).await;
            assert_eq!(p, AnswerPayload::status(AnswerStatus::BadCookie, 0));
        }
    }
    // Cookie requests cost none either.
    for i in 0..5u8 {
        cookie_at(&handler, TunnelId([i; 5]), T0).await;
    }
    assert_eq!(world.store.calls(), before);
    // The right cookie does reach the store.
    let p = ask(&handler, &Q::poll(good, 0).name(), CLIENT, T0).await;
    assert_eq!(p.status, AnswerStatus::NoResponse);
    assert!(world.store.calls() > before);
}

#[tokio::test]
async fn an_expired_cookie_is_refused_and_the_previous_epochs_is_accepted() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let cookie = cookie_at(&handler, TUNNEL, T0).await;
    let probe = Q::new(QueryKind::Probe, cookie).name();
    let an_hour_on = Instant(T0.0 + HOUR_MS);
    assert_eq!(
        status_of(&handler, &probe, CLIENT, an_hour_on).await,
        AnswerStatus::Probe
    );
    assert_ne!(cookie_at(&handler, TUNNEL, an_hour_on).await, cookie);
    let two_hours_on = Instant(T0.0 + 2 * HOUR_MS);
    assert_eq!(
        ask(&handler, &probe, CLIENT, two_hours_on).await,
        AnswerPayload::status(AnswerStatus::BadCookie, 0)
    );
    // Another tunnel's cookie is no cookie for this one.
    let other = cookie_at(&handler, TunnelId([9; 5]), T0).await;
    let probe = Q::new(QueryKind::Probe, other).name();
    assert_eq!(
        status_of(&handler, &probe, CLIENT, T0).await,
        AnswerStatus::BadCookie
    );
}

#[tokio::test]
async fn two_handlers_on_one_store_give_the_same_cookie() {
    let world = World::new().await;
    let (a, b) = (world.handler(&config()), world.second_process(&config()));
    // Both processes start at once: one creates the secret, the other reads it.
    let (ca, cb) = tokio::join!(cookie_at(&a, TUNNEL, T0), cookie_at(&b, TUNNEL, T0));
    assert_eq!(ca, cb);
    let probe = Q::new(QueryKind::Probe, ca).name();
    assert_eq!(status_of(&b, &probe, CLIENT, T0).await, AnswerStatus::Probe);
    // A third process, later, reads the same secret.
    let c = world.second_process(&config());
    assert_eq!(cookie_at(&c, TUNNEL, T0).await, ca);
}

#[tokio::test]
async fn identical_retransmissions_get_identical_bytes_from_any_process() {
    let world = World::new().await;
    let (a, b) = (world.handler(&config()), world.second_process(&config()));
    let cookie = cookie_at(&a, TUNNEL, T0).await;
    let (_device, hello) = hello();
    let chunks: Vec<&[u8]> = hello.chunks(100).collect();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.iter().enumerate() {
        let q = Q::chunk(cookie, i == last, u16::try_from(i).unwrap(), chunk);
        let p = ask(&a, &q.name(), CLIENT, T0).await;
        if i < last {
            assert_eq!(p, AnswerPayload::status(AnswerStatus::Ack, 0));
        }
    }
    let last_chunk = Q::chunk(cookie, true, u16::try_from(last).unwrap(), chunks[last]);
    let first = ask(&a, &last_chunk.name(), CLIENT, T0).await;
    assert_eq!(first.status, AnswerStatus::Data);
    assert!(!first.body.is_empty());
    // The same name again, in another case, as another attempt, and from another process.
    let again = Q {
        attempt: 1,
        ..Q::chunk(cookie, true, u16::try_from(last).unwrap(), chunks[last])
    };
    for (handler, name) in [
        (&a, last_chunk.name()),
        (&a, mixed_case(&last_chunk.name())),
        (&a, again.name()),
        (&b, last_chunk.name()),
        (&b, again.name()),
    ] {
        assert_eq!(ask(handler, &name, OTHER_CLIENT, T0).await, first, "{name}");
    }
    // A chunk before the last, resent after the response: acknowledged, nothing changes.
    let resent = Q::chunk(cookie, false, 0, chunks[0]);
    assert_eq!(
        status_of(&b, &resent.name(), CLIENT, T0).await,
        AnswerStatus::Ack
    );
    // Polls give the same pieces from either process.
    let poll = Q::poll(cookie, u16::try_from(first.body.len()).unwrap()).name();
    let from_a = ask(&a, &poll, CLIENT, T0).await;
    assert_eq!(from_a, ask(&b, &poll, CLIENT, T0).await);
    assert_eq!(from_a.length, first.length);
}

#[tokio::test]
async fn a_chunk_resent_with_other_bytes_is_refused() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let cookie = cookie_at(&handler, TUNNEL, T0).await;
    let ack = AnswerPayload::status(AnswerStatus::Ack, 0);
    let first = Q::chunk(cookie, false, 0, b"first bytes").name();
    assert_eq!(ask(&handler, &first, CLIENT, T0).await, ack);
    let other = Q::chunk(cookie, false, 0, b"other bytes").name();
    assert_eq!(
        ask(&handler, &other, CLIENT, T0).await,
        AnswerPayload::status(AnswerStatus::ChunkConflict, 0)
    );
    // The same bytes again are a retransmission.
    assert_eq!(ask(&handler, &first, CLIENT, T0).await, ack);
}

#[tokio::test]
async fn a_last_chunk_with_missing_chunks_gets_incomplete() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let cookie = cookie_at(&handler, TUNNEL, T0).await;
    let ack = AnswerPayload::status(AnswerStatus::Ack, 0);
    let chunk0 = Q::chunk(cookie, false, 0, b"zero").name();
    assert_eq!(ask(&handler, &chunk0, CLIENT, T0).await, ack);
    // Chunk 1 never came.
    let chunk2 = Q::chunk(cookie, true, 2, b"two").name();
    assert_eq!(
        ask(&handler, &chunk2, CLIENT, T0).await,
        AnswerPayload::status(AnswerStatus::Incomplete, 0)
    );
    // Nothing was answered, so a poll finds nothing.
    let poll = Q::poll(cookie, 0).name();
    assert_eq!(
        status_of(&handler, &poll, CLIENT, T0).await,
        AnswerStatus::NoResponse
    );
}

#[tokio::test]
async fn per_client_and_per_tunnel_limits_answer_rate_limited() {
    let world = World::new().await;
    let mut config = config();
    config.per_client = limit(5, 60);
    config.per_tunnel = limit(7, 600);
    let handler = world.handler(&config);
    let cookie = cookie_at(&handler, TUNNEL, T0).await;
    let probe = Q::new(QueryKind::Probe, cookie).name();
    for _ in 0..5 {
        assert_eq!(
            status_of(&handler, &probe, CLIENT, T0).await,
            AnswerStatus::Probe
        );
    }
    // The client's sixth query in the minute: wait until the minute ends.
    let minute_ends = (T0.0 / 60_000 + 1) * 60_000;
    let wait = u16::try_from((minute_ends - T0.0).div_ceil(1000)).unwrap();
    assert_eq!(
        ask(&handler, &probe, CLIENT, T0).await,
        AnswerPayload::status(AnswerStatus::RateLimited, wait)
    );
    // Another tunnel from the same client is limited too; another client is not.
    let other = cookie_at(&handler, TunnelId([7; 5]), T0).await;
    let other_probe = Q {
        tunnel: TunnelId([7; 5]),
        ..Q::new(QueryKind::Probe, other)
    }
    .name();
    assert_eq!(
        status_of(&handler, &other_probe, CLIENT, T0).await,
        AnswerStatus::RateLimited
    );
    assert_eq!(
        status_of(&handler, &probe, OTHER_CLIENT, T0).await,
        AnswerStatus::Probe
    );
    // A query refused for its client is not counted for its tunnel: the tunnel has had 5 + 1
    // queries; the seventh passes, the eighth, from yet another client, is over its limit.
    let third = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));
    assert_eq!(
        status_of(&handler, &probe, third, T0).await,
        AnswerStatus::Probe
    );
    let window_ends = (T0.0 / 600_000 + 1) * 600_000;
    let wait = u16::try_from((window_ends - T0.0).div_ceil(1000)).unwrap();
    assert_eq!(
        ask(&handler, &probe, third, T0).await,
        AnswerPayload::status(AnswerStatus::RateLimited, wait)
    );
    // In the next minute the client may ask again (the other tunnel has room).
    let later = Instant(minute_ends);
    assert_eq!(
        status_of(&handler, &other_probe, CLIENT, later).await,
        AnswerStatus::Probe
    );
}

#[tokio::test]
async fn cookie_requests_are_limited_per_client_in_memory() {
    let world = World::new().await;
    let mut config = config();
    config.cookie_requests_per_client = limit(3, 60);
    let handler = world.handler(&config);
    handler.load_cookie_secret(T0).await.unwrap();
    let before = world.store.calls();
    for i in 0..3u8 {
        cookie_at(&handler, TunnelId([i; 5]), T0).await;
    }
    let name = Q::cookie_request(TUNNEL).name();
    assert_eq!(
        status_of(&handler, &name, CLIENT, T0).await,
        AnswerStatus::RateLimited
    );
    assert_eq!(
        status_of(&handler, &name, OTHER_CLIENT, T0).await,
        AnswerStatus::Cookie
    );
    assert_eq!(world.store.calls(), before);
}

#[tokio::test]
async fn polls_beyond_the_response_get_bad_offset_and_polls_before_it_no_response() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let cookie = cookie_at(&handler, TUNNEL, T0).await;
    let poll = |offset| Q::poll(cookie, offset).name();
    assert_eq!(
        ask(&handler, &poll(0), CLIENT, T0).await,
        AnswerPayload::status(AnswerStatus::NoResponse, 0)
    );
    // The response to a real hello (one piece at 512 bytes).
    let (_device, hello) = hello();
    let chunks: Vec<&[u8]> = hello.chunks(100).collect();
    let last = chunks.len() - 1;
    let mut first = AnswerPayload::status(AnswerStatus::Ack, 0);
    for (i, chunk) in chunks.iter().enumerate() {
        let q = Q::chunk(cookie, i == last, u16::try_from(i).unwrap(), chunk);
        first = ask(&handler, &q.name(), CLIENT, T0).await;
    }
    assert_eq!(first.status, AnswerStatus::Data);
    let len = first.length;
    assert_eq!(usize::from(len), first.body.len(), "short: one piece");
    for offset in [len, len + 1, u16::MAX] {
        assert_eq!(
            ask(&handler, &poll(offset), CLIENT, T0).await,
            AnswerPayload::status(AnswerStatus::BadOffset, len),
            "{offset}"
        );
    }
    let tail = ask(&handler, &poll(1), CLIENT, T0).await;
    assert_eq!(tail.status, AnswerStatus::Data);
    assert_eq!(tail.body, first.body[1..]);
}

/// The setup service's refusal (here of bytes that are no flow-1 message) is the answer to the
/// last chunk, but never the message's stored response: a copy refused as a replay must not
/// shadow the real response.
#[tokio::test]
async fn a_refusal_is_answered_but_never_stored_as_the_response() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let cookie = cookie_at(&handler, TUNNEL, T0).await;
    let last = Q::chunk(cookie, true, 0, b"not a flow-1 message").name();
    let refused = ask(&handler, &last, CLIENT, T0).await;
    assert_eq!(refused.status, AnswerStatus::Data);
    assert!(!refused.body.is_empty());
    assert_eq!(
        ask(&handler, &Q::poll(cookie, 0).name(), CLIENT, T0).await,
        AnswerPayload::status(AnswerStatus::NoResponse, 0)
    );
    assert!(
        world
            .store
            .stored_response(zerotouch_dns::server::response_key(TUNNEL, 0), T0)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn answers_fit_the_answer_limit_over_udp_without_edns() {
    // A zone so long that every name is close to 255 octets.
    let long_zone = format!(
        "{}.{}.{}.example",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63)
    );
    let zone = Zone::new(&long_zone).unwrap();
    let world = World::new().await;
    let server = serve_dns(
        DnsServerConfig::new(zone.clone(), "127.0.0.1:0".parse().unwrap()),
        Arc::clone(&world.service),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let mut tunnel_config = TunnelConfig::new(zone.clone());
    // A device that would probe for 512 bytes had a response needed polls (flow 1's server
    // proof does not); the probe's filler must fit too: asked for below.
    tunnel_config.edns_limit = Some(AnswerLimit::CLASSIC);
    let mut tunnel = TunnelClient::new(tunnel_config, &mut ChaCha20Rng::seed_from_u64(3));
    let (mut device, hello) = hello();
    let sizes = std::sync::Mutex::new(Vec::new());
    let mut clock = T0;
    let proof = run_tunnel(&mut tunnel, &hello, &mut clock, |name, _| {
        let sizes = &sizes;
        async move {
            let response = udp_exchange(addr, &dns_query(&name, RecordType::TXT, None)).await;
            sizes
                .lock()
                .unwrap()
                .push((wire_len(&name), response.len()));
            wire_reply(&response)
        }
    })
    .await;
    let sizes = sizes.into_inner().unwrap();
    assert!(sizes.len() > 5, "cookie and chunks: {sizes:?}");
    assert!(sizes.iter().all(|&(_, size)| size <= 512), "{sizes:?}");
    // The zone's 201 octets and the header label's 25: every name at least 226 octets.
    assert!(sizes.iter().all(|&(name, _)| name >= 226), "{sizes:?}");
    device.handle_incoming(
        clock,
        Path::Setup,
        &proof,
        &mut ChaCha20Rng::seed_from_u64(4),
    );
    assert!(matches!(
        device.poll_event(),
        Some(Event::ServerAuthenticated { .. })
    ));
    // A probe for 512 bytes under the long zone: its filler fills the answer to within a few
    // bytes of 512, never past it.
    let cookie = udp_cookie(addr, &Q::cookie_request(TUNNEL).name_in(&zone)).await;
    let probe = Q::new(QueryKind::Probe, cookie).name_in(&zone);
    let answer = udp_exchange(addr, &dns_query(&probe, RecordType::TXT, None)).await;
    assert!(
        answer.len() <= 512 && answer.len() > 500,
        "{}",
        answer.len()
    );
    let filler = txt_of(&Message::from_vec(&answer).unwrap());
    assert_eq!(filler.status, AnswerStatus::Probe);
    assert_eq!(
        filler.body,
        probe_filler(body_capacity(AnswerLimit::CLASSIC, wire_len(&probe)))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_response_too_large_for_udp_is_truncated_and_served_over_tcp_and_udp_never_exceeds_1232()
{
    let world = World::new().await;
    let server = serve_dns(config(), Arc::clone(&world.service))
        .await
        .unwrap();
    let addr = server.local_addr();
    let cookie = udp_cookie(addr, &Q::cookie_request(TUNNEL).name()).await;
    let probe = Q {
        limit: AnswerLimit::from_bytes(4080).unwrap(),
        ..Q::new(QueryKind::Probe, cookie)
    }
    .name();
    for edns in [None, Some(1232)] {
        let request = dns_query(&probe, RecordType::TXT, edns);
        let truncated = Message::from_vec(&udp_exchange(addr, &request).await).unwrap();
        assert!(truncated.truncation, "{edns:?}");
        assert!(truncated.answers.is_empty());
        assert_eq!(truncated.queries[0].name.to_ascii(), format!("{probe}."));
        assert_eq!(truncated.edns.is_some(), edns.is_some());
        let whole = tcp_exchange(addr, &request).await;
        assert!(whole.len() > 1232);
        let whole = Message::from_vec(&whole).unwrap();
        assert!(!whole.truncation);
        let p = txt_of(&whole);
        assert_eq!(p.status, AnswerStatus::Probe);
        let capacity = body_capacity(AnswerLimit::from_bytes(4080).unwrap(), wire_len(&probe));
        assert_eq!(p.body, probe_filler(capacity));
    }
    // Not even a requester advertising 4,096 bytes gets more than 1,232 over UDP: a spoofed
    // source would otherwise receive up to 4 KB per query.
    let request = dns_query(&probe, RecordType::TXT, Some(4096));
    let capped = udp_exchange(addr, &request).await;
    assert!(capped.len() <= 1232);
    assert!(Message::from_vec(&capped).unwrap().truncation);
    server.shutdown().await;
}

#[tokio::test]
async fn tcp_carries_several_queries_bad_requests_get_errors_and_shutdown_ends_everything() {
    let world = World::new().await;
    let server = serve_dns(config(), Arc::clone(&world.service))
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for tunnel in 0..3u8 {
        let request = dns_query(
            &Q::cookie_request(TunnelId([tunnel; 5])).name(),
            RecordType::TXT,
            None,
        );
        let len = u16::try_from(request.len()).unwrap().to_be_bytes();
        stream
            .write_all(&[&len[..], &request].concat())
            .await
            .unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.unwrap();
        let mut response = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut response).await.unwrap();
        let response = Message::from_vec(&response).unwrap();
        assert_eq!(txt_of(&response).status, AnswerStatus::Cookie);
    }
    // A header and garbage: FORMERR with the id.
    let garbage = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    let response = Message::from_vec(&udp_exchange(addr, &garbage).await).unwrap();
    assert_eq!(response.id, 0x1234);
    assert_eq!(response.response_code, ResponseCode::FormErr);
    assert!(response.authoritative);
    // A name outside the zone: REFUSED, not authoritative.
    let response = Message::from_vec(
        &udp_exchange(addr, &dns_query("example.org", RecordType::TXT, None)).await,
    )
    .unwrap();
    assert_eq!(response.response_code, ResponseCode::Refused);
    assert!(!response.authoritative);
    // The apex SOA.
    let response =
        Message::from_vec(&udp_exchange(addr, &dns_query(ZONE, RecordType::SOA, Some(1232))).await)
            .unwrap();
    assert_eq!(response.response_code, ResponseCode::NoError);
    assert!(matches!(response.answers[0].data, RData::SOA(_)));
    assert_eq!(response.edns.as_ref().unwrap().max_payload(), 1232);
    // Another opcode: NOTIMP.
    let mut notify = Message::from_vec(&dns_query(ZONE, RecordType::SOA, None)).unwrap();
    notify.metadata.op_code = hickory_proto::op::OpCode::Notify;
    let response = Message::from_vec(&udp_exchange(addr, &notify.to_vec().unwrap()).await).unwrap();
    assert_eq!(response.response_code, ResponseCode::NotImp);
    assert!(response.authoritative);
    // Shutdown ends idle connections at once, and nothing listens afterwards.
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).await.unwrap_or(0), 0);
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_complete_flow_1_exchange_yields_the_real_server_proof() {
    let world = World::new().await;
    let handler = world.handler(&config());
    let mut tunnel = TunnelClient::new(
        TunnelConfig::new(zone()),
        &mut ChaCha20Rng::seed_from_u64(5),
    );
    let (mut device, hello) = hello();
    let mut clock = T0;
    let ask_handler = |name: String, now: Instant| {
        let handler = &handler;
        async move { reply_of(handler.answer(&name, RecordType::TXT, CLIENT, now).await) }
    };
    let proof = run_tunnel(&mut tunnel, &hello, &mut clock, ask_handler).await;
    assert_eq!(
        Envelope::decode(&proof).unwrap().header.tag,
        MessageTag::ServerProof
    );
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    device.handle_incoming(clock, Path::Setup, &proof, &mut rng);
    assert!(matches!(
        device.poll_event(),
        Some(Event::ServerAuthenticated { .. })
    ));
    // The credential request is the tunnel's second message.
    let request = device.poll_transmit().expect("a credential request");
    assert!(
        request.bytes.len() > max_data_per_query(&zone()),
        "the request takes several chunks: {} bytes",
        request.bytes.len()
    );
    let credentials = run_tunnel(&mut tunnel, &request.bytes, &mut clock, ask_handler).await;
    assert_eq!(
        Envelope::decode(&credentials).unwrap().header.tag,
        MessageTag::CredentialResponse
    );
    device.handle_incoming(clock, Path::Setup, &credentials, &mut rng);
    let join = std::iter::from_fn(|| device.poll_event())
        .find(|e| matches!(e, Event::Join { .. }))
        .expect("a network to join");
    let Event::Join { ssid, .. } = join else {
        unreachable!()
    };
    assert_eq!(ssid, b"home");
    assert_eq!(tunnel.stats().cookies, 1, "one tunnel, one cookie");
}

#[test]
fn the_handler_never_panics() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let world = rt.block_on(World::new());
    let handler = world.handler(&config());
    let cookie = rt.block_on(cookie_at(&handler, TUNNEL, T0));
    let labels = prop::collection::vec("[a-zA-Z2-7]{0,70}", 0..6);
    let names = prop_oneof![
        "[a-zA-Z0-9.\\-_]{0,300}",
        labels.prop_map(|l| format!("{}.{ZONE}", l.join("."))),
        (prop::array::uniform15(any::<u8>()), "[a-z2-7.]{0,120}").prop_map(|(h, d)| {
            format!(
                "{d}.{}.{ZONE}",
                BASE32_NOPAD.encode(&h).to_ascii_lowercase()
            )
        }),
        (
            0u8..6,
            any::<u8>(),
            any::<u16>(),
            32u8..=255,
            prop::collection::vec(any::<u8>(), 0..120),
            any::<bool>()
        )
            .prop_map(move |(kind, message, position, limit, data, good)| {
                let kind = match kind {
                    0 => QueryKind::Cookie,
                    1 => QueryKind::Data,
                    2 => QueryKind::LastData,
                    3 => QueryKind::Poll,
                    _ => QueryKind::Probe,
                };
                let cookie = if good { cookie } else { Cookie([3; 5]) };
                let q = Q {
                    kind,
                    message: message & 0x0f,
                    attempt: message >> 4,
                    position,
                    limit: AnswerLimit::from_bytes(usize::from(limit) * 16).unwrap(),
                    data,
                    ..Q::new(kind, cookie)
                };
                Query {
                    header: QueryHeader {
                        kind: q.kind,
                        tunnel: q.tunnel,
                        cookie: q.cookie,
                        message: q.message,
                        attempt: q.attempt,
                        position: q.position,
                        limit: q.limit,
                    },
                    data: q.data,
                }
                .to_name(&zone())
                .unwrap_or_default()
            }),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(names, any::<u16>()), |(name, qtype)| {
            let qtype = match qtype % 4 {
                0 => RecordType::from(qtype),
                _ => RecordType::TXT,
            };
            let answer = rt.block_on(handler.answer(&name, qtype, CLIENT, T0));
            prop_assert!(answer.txt.is_none() || answer.rcode == ResponseCode::NoError);
            Ok(())
        })
        .unwrap();
}

/// A resolver re-sends a query after ~50 ms; the copy of a credential request's last chunk
/// that arrives while the first is still inside the setup service gets the same response,
/// not a replay refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_last_chunk_copy_arriving_during_its_handling_gets_the_same_response() {
    for round in 0..6u64 {
        let world = World::new().await;
        let handler = Arc::new(world.handler(&config()));
        let mut tunnel = TunnelClient::new(
            TunnelConfig::new(zone()),
            &mut ChaCha20Rng::seed_from_u64(round),
        );
        let (mut device, hello) = hello();
        let mut clock = T0;
        let ask_handler = |name: String, now: Instant| {
            let handler = Arc::clone(&handler);
            async move { reply_of(handler.answer(&name, RecordType::TXT, CLIENT, now).await) }
        };
        let proof = run_tunnel(&mut tunnel, &hello, &mut clock, ask_handler).await;
        device.handle_incoming(
            clock,
            Path::Setup,
            &proof,
            &mut ChaCha20Rng::seed_from_u64(6),
        );
        let request = device.poll_transmit().expect("a credential request").bytes;
        // The request as message 1 of the same tunnel, its last chunk sent four times at once.
        let cookie = cookie_at(&handler, tunnel.tunnel(), T0).await;
        let chunks: Vec<&[u8]> = request.chunks(100).collect();
        let last = chunks.len() - 1;
        let q = |i: usize| Q {
            tunnel: tunnel.tunnel(),
            message: 1,
            ..Q::chunk(cookie, i == last, u16::try_from(i).unwrap(), chunks[i])
        };
        for i in 0..last {
            assert_eq!(
                status_of(&handler, &q(i).name(), CLIENT, clock).await,
                AnswerStatus::Ack
            );
        }
        let name = q(last).name();
        let copies: Vec<_> = (0..4)
            .map(|_| {
                let (handler, name) = (Arc::clone(&handler), name.clone());
                tokio::spawn(async move { ask(&handler, &name, CLIENT, clock).await })
            })
            .collect();
        let mut answers = Vec::new();
        for copy in copies {
            answers.push(copy.await.unwrap());
        }
        let first = &answers[0];
        assert_eq!(first.status, AnswerStatus::Data);
        let piece = &first.body;
        assert_eq!(
            Envelope::decode(piece).map(|e| e.header.tag).ok(),
            Some(MessageTag::CredentialResponse),
            "round {round}: {} of {} bytes",
            piece.len(),
            first.length
        );
        assert!(answers.iter().all(|a| a == first), "round {round}");
    }
}
