//! One question in, one answer out: the binding's rules over the setup service and its store.
//!
//! The payload is a pure function of the lower-cased name and the stored state (a cookie
//! also of the hour), so a resolver that asks again in another case, or asks another server
//! process, gets the same data.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};
use tracing::{debug, warn};
use zerotouch_core::{Instant, SessionId, Signer, Transport};
use zerotouch_server::{SetupService, TransportIdentity};
use zerotouch_store::{
    CounterKey, CounterScope, PutResponse, ResponseKey, SessionCas, Store, StoreError,
    StoredResponse,
};

use super::cookie::{CookieJar, RootError};
use super::limiter::{WindowLimiter, seconds_until};
use super::{DnsServerConfig, QueryLimit};
use crate::answer::{AnswerPayload, AnswerStatus, body_capacity, probe_filler};
use crate::header::{QueryHeader, QueryKind, TunnelId};
use crate::name::{NameKind, Query};
use crate::tunnel_record::{AddChunkError, ChunkAdded, TunnelRecord};
use crate::{DnsError, Zone};

/// Compare-and-swap attempts on a tunnel record before the query is left unanswered.
const MAX_CAS_TRIES: usize = 8;

/// Where the zone's SOA record goes in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoaSection {
    /// In the answer section: the answer to an SOA question at the apex.
    Answer,
    /// In the authority section: a negative answer (NODATA or NXDOMAIN), so resolvers cache
    /// it no longer than the SOA's minimum (0).
    Authority,
}

/// What to answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerAnswer {
    /// The response code.
    pub rcode: ResponseCode,
    /// The TXT record's payload (owner: the question's name as received; TTL 0).
    pub txt: Option<AnswerPayload>,
    /// Whether and where the zone's SOA record goes.
    pub soa: Option<SoaSection>,
}

impl HandlerAnswer {
    fn refused() -> Self {
        HandlerAnswer {
            rcode: ResponseCode::Refused,
            txt: None,
            soa: None,
        }
    }

    fn negative(rcode: ResponseCode) -> Self {
        HandlerAnswer {
            rcode,
            txt: None,
            soa: Some(SoaSection::Authority),
        }
    }

    fn soa() -> Self {
        HandlerAnswer {
            rcode: ResponseCode::NoError,
            txt: None,
            soa: Some(SoaSection::Answer),
        }
    }

    fn server_failure() -> Self {
        HandlerAnswer {
            rcode: ResponseCode::ServFail,
            txt: None,
            soa: None,
        }
    }

    fn txt(payload: AnswerPayload) -> Self {
        HandlerAnswer {
            rcode: ResponseCode::NoError,
            txt: Some(payload),
            soa: None,
        }
    }

    /// Whether this is NOERROR without a record (NODATA).
    pub fn is_nodata(&self) -> bool {
        self.rcode == ResponseCode::NoError
            && self.txt.is_none()
            && self.soa == Some(SoaSection::Authority)
    }
}

/// Why a query got no payload: the resolver sees SERVFAIL and asks again.
#[derive(Debug)]
enum Failure {
    Store(StoreError),
    Random,
    CorruptRoot,
    Contention,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Failure::Store(e) => write!(f, "store failed: {e}"),
            Failure::Random => f.write_str("system random number generator failed"),
            Failure::CorruptRoot => f.write_str("the stored cookie secret is corrupt"),
            Failure::Contention => f.write_str("tunnel record kept changing"),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<RootError> for Failure {
    fn from(e: RootError) -> Self {
        match e {
            RootError::Store(e) => Failure::Store(e),
            RootError::Random => Failure::Random,
            RootError::Corrupt => Failure::CorruptRoot,
        }
    }
}

/// The store record of a tunnel: `SHA-256("zerotouch-dns tunnel v1" || tunnel id)`, first 16
/// bytes.
pub fn tunnel_record_id(tunnel: TunnelId) -> SessionId {
    let digest = Sha256::new()
        .chain_update(b"zerotouch-dns tunnel v1")
        .chain_update(tunnel.0)
        .finalize();
    let mut id = [0u8; 16];
    if let Some(head) = digest.get(..16) {
        id.copy_from_slice(head);
    }
    SessionId(id)
}

/// Where the response to message `message` of `tunnel` is stored.
pub fn response_key(tunnel: TunnelId, message: u8) -> ResponseKey {
    ResponseKey {
        session: tunnel_record_id(tunnel),
        seq: u64::from(message),
    }
}

fn status(status: AnswerStatus, length: u16) -> AnswerPayload {
    AnswerPayload::status(status, length)
}

/// The piece of `response` from `offset`, at most `capacity` bytes.
fn piece(response: &[u8], offset: usize, capacity: usize) -> AnswerPayload {
    let Ok(total) = u16::try_from(response.len()) else {
        return status(AnswerStatus::TooLarge, 0);
    };
    let len = response.len();
    if offset > len || (offset == len && len != 0) {
        return status(AnswerStatus::BadOffset, total);
    }
    let end = offset.saturating_add(capacity).min(len);
    AnswerPayload {
        status: AnswerStatus::Data,
        length: total,
        body: response.get(offset..end).unwrap_or_default().to_vec(),
    }
}

/// The counter subject of a client: its address's bytes (IPv4-mapped addresses as IPv4).
fn client_subject(client: IpAddr) -> Vec<u8> {
    match client.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// Answers the questions of the DNS binding for the setup service `setup`.
pub struct DnsHandler<St, S> {
    setup: Arc<SetupService<St, S>>,
    zone: Zone,
    tunnel_ttl: Duration,
    per_client: QueryLimit,
    per_tunnel: QueryLimit,
    cookie_requests: WindowLimiter,
    cookies: CookieJar,
    // Last chunks of one message are handled one at a time in this process: a resolver
    // re-sends a query after ~50 ms, and a copy reaching the setup service while the first
    // is still inside it (a PIN check takes longer) would be refused as a replay. Striped so
    // unrelated tunnels rarely wait on each other.
    last_chunk_locks: Vec<tokio::sync::Mutex<()>>,
}

/// Stripes of [`DnsHandler`]'s last-chunk locks.
const LAST_CHUNK_STRIPES: usize = 64;

impl<St, S> core::fmt::Debug for DnsHandler<St, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DnsHandler")
            .field("zone", &self.zone)
            .field("tunnel_ttl", &self.tunnel_ttl)
            .field("per_client", &self.per_client)
            .field("per_tunnel", &self.per_tunnel)
            .field("cookies", &self.cookies)
            .finish_non_exhaustive()
    }
}

impl<St: Store, S: Signer> DnsHandler<St, S> {
    /// A handler for `config`'s zone and limits in front of `setup`. Each handler keeps its
    /// own in-memory state (the cookie secret once read, cookie-request counts), as a server
    /// process does; everything else is in the store.
    pub fn new(config: &DnsServerConfig, setup: Arc<SetupService<St, S>>) -> Self {
        DnsHandler {
            setup,
            zone: config.zone.clone(),
            tunnel_ttl: config.tunnel_ttl,
            per_client: config.per_client,
            per_tunnel: config.per_tunnel,
            cookie_requests: WindowLimiter::new(config.cookie_requests_per_client),
            cookies: CookieJar::default(),
            last_chunk_locks: (0..LAST_CHUNK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The zone served.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// The setup service behind the handler.
    pub fn setup(&self) -> &Arc<SetupService<St, S>> {
        &self.setup
    }

    /// Reads the cookie secret from the store (creating it if no process has yet), so that
    /// no later query, however forged, costs a store access to check its cookie.
    /// [`super::serve_dns`] calls it before it listens.
    pub async fn load_cookie_secret(&self, now: Instant) -> Result<(), super::DnsServerError> {
        match self.cookies.root(self.setup.store(), now).await {
            Ok(_) => Ok(()),
            Err(RootError::Store(e)) => Err(super::DnsServerError::Store(e)),
            Err(RootError::Random) => Err(super::DnsServerError::Random),
            Err(RootError::Corrupt) => Err(super::DnsServerError::Store(StoreError::Corrupt {
                what: "DNS cookie secret",
            })),
        }
    }

    /// Answers the question for `qname` (exactly as received: any case, trailing dot or not)
    /// of type `qtype` from `client` at `now`. Never panics; a store failure is SERVFAIL.
    pub async fn answer(
        &self,
        qname: &str,
        qtype: RecordType,
        client: IpAddr,
        now: Instant,
    ) -> HandlerAnswer {
        let query = match Query::classify(qname, &self.zone) {
            Ok(NameKind::Query(query)) => query,
            Ok(NameKind::Apex) if qtype == RecordType::SOA => return HandlerAnswer::soa(),
            Ok(NameKind::Apex | NameKind::Intermediate) => {
                return HandlerAnswer::negative(ResponseCode::NoError);
            }
            Err(DnsError::OutsideZone) => return HandlerAnswer::refused(),
            Err(error) => {
                debug!(%error, "undecodable name under the zone");
                return HandlerAnswer::negative(ResponseCode::NXDomain);
            }
        };
        if qtype != RecordType::TXT {
            return HandlerAnswer::negative(ResponseCode::NoError);
        }
        // The name's octets on the wire: it decoded, so it is letters, digits and dots.
        let qname_wire_len = qname.strip_suffix('.').unwrap_or(qname).len() + 2;
        match self
            .tunnel_answer(&query, qname_wire_len, client, now)
            .await
        {
            Ok(payload) => {
                debug!(
                    kind = ?query.header.kind,
                    tunnel = %hex(&query.header.tunnel.0),
                    message = query.header.message,
                    position = query.header.position,
                    status = ?payload.status,
                    "answered"
                );
                HandlerAnswer::txt(payload)
            }
            Err(failure) => {
                warn!(%failure, kind = ?query.header.kind, "query not answered");
                HandlerAnswer::server_failure()
            }
        }
    }

    async fn tunnel_answer(
        &self,
        query: &Query,
        qname_wire_len: usize,
        client: IpAddr,
        now: Instant,
    ) -> Result<AnswerPayload, Failure> {
        let h = &query.header;
        let root = self.cookies.root(self.setup.store(), now).await?;
        if h.kind == QueryKind::Cookie {
            if let Err(wait) = self.cookie_requests.take(client, now) {
                return Ok(status(AnswerStatus::RateLimited, wait));
            }
            let cookie = CookieJar::cookie(root, now, h.tunnel);
            return Ok(AnswerPayload {
                status: AnswerStatus::Cookie,
                length: 0,
                body: cookie.0.to_vec(),
            });
        }
        // Nothing below runs for a forged or random name: it costs no store access.
        if !CookieJar::accepts(root, now, h.tunnel, h.cookie) {
            return Ok(status(AnswerStatus::BadCookie, 0));
        }
        if let Some(wait) = self.over_limit(client, h.tunnel, now).await? {
            return Ok(status(AnswerStatus::RateLimited, wait));
        }
        let capacity = body_capacity(h.limit, qname_wire_len);
        match h.kind {
            QueryKind::Probe => Ok(AnswerPayload {
                status: AnswerStatus::Probe,
                length: 0,
                body: probe_filler(capacity),
            }),
            QueryKind::Poll => {
                let key = response_key(h.tunnel, h.message);
                Ok(match self.setup.store().stored_response(key, now).await? {
                    Some(stored) => piece(&stored.response, usize::from(h.position), capacity),
                    None => status(AnswerStatus::NoResponse, 0),
                })
            }
            // Data and LastData (a cookie request was answered above).
            _ => self.data(h, &query.data, capacity, now).await,
        }
    }

    /// Counts the query against its client and its tunnel; over a limit, the seconds to wait.
    async fn over_limit(
        &self,
        client: IpAddr,
        tunnel: TunnelId,
        now: Instant,
    ) -> Result<Option<u16>, StoreError> {
        let counters = [
            (
                CounterScope::DnsClientQueries,
                client_subject(client),
                self.per_client,
            ),
            (
                CounterScope::DnsTunnelQueries,
                tunnel.0.to_vec(),
                self.per_tunnel,
            ),
        ];
        for (scope, subject, limit) in counters {
            let (start, end) = limit.window_at(now);
            let count = self
                .setup
                .store()
                .increment_counter(CounterKey::new(scope, subject), start, end)
                .await?;
            if count > limit.queries {
                debug!(scope = scope.as_str(), "rate limited");
                return Ok(Some(seconds_until(end, now)));
            }
        }
        Ok(None)
    }

    async fn data(
        &self,
        h: &QueryHeader,
        data: &[u8],
        capacity: usize,
        now: Instant,
    ) -> Result<AnswerPayload, Failure> {
        let key = response_key(h.tunnel, h.message);
        let stripe = h.tunnel.0.iter().fold(usize::from(h.message), |acc, b| {
            acc.wrapping_mul(31) ^ usize::from(*b)
        });
        let _one_at_a_time = match (
            h.kind,
            self.last_chunk_locks.get(stripe % LAST_CHUNK_STRIPES),
        ) {
            (QueryKind::LastData, Some(lock)) => Some(lock.lock().await),
            _ => None,
        };
        if let Some(stored) = self.setup.store().stored_response(key, now).await? {
            return Ok(match h.kind {
                QueryKind::LastData => piece(&stored.response, 0, capacity),
                _ => status(AnswerStatus::Ack, 0),
            });
        }
        let record = match self.add_chunk(h, data, now).await? {
            Ok(record) => record,
            Err(refusal) => return Ok(status(refusal, 0)),
        };
        if h.kind != QueryKind::LastData {
            return Ok(status(AnswerStatus::Ack, 0));
        }
        let Some(message) = record.assemble(h.message, h.position) else {
            return Ok(status(AnswerStatus::Incomplete, 0));
        };
        let response = self.respond(key, &message, now).await?;
        Ok(piece(&response, 0, capacity))
    }

    /// Adds the chunk to the tunnel's record; the record as it now stands, or the refusal.
    async fn add_chunk(
        &self,
        h: &QueryHeader,
        data: &[u8],
        now: Instant,
    ) -> Result<Result<TunnelRecord, AnswerStatus>, Failure> {
        let store = self.setup.store();
        let id = tunnel_record_id(h.tunnel);
        for _ in 0..MAX_CAS_TRIES {
            let (mut record, expected) = match store.session(id, now).await? {
                Some(stored) => {
                    let record = TunnelRecord::from_bytes(&stored.state).unwrap_or_else(|error| {
                        warn!(%error, "tunnel record replaced");
                        TunnelRecord::default()
                    });
                    (record, Some(stored.version))
                }
                None => (TunnelRecord::default(), None),
            };
            match record.add_chunk(h.message, h.position, data) {
                Ok(ChunkAdded::Stored) => {}
                Ok(ChunkAdded::Duplicate | ChunkAdded::Stale) => return Ok(Ok(record)),
                Err(AddChunkError::Conflict) => return Ok(Err(AnswerStatus::ChunkConflict)),
                Err(AddChunkError::TooLarge) => return Ok(Err(AnswerStatus::TooLarge)),
            }
            let expires = now.saturating_add(self.tunnel_ttl);
            match store
                .compare_and_swap_session(id, expected, record.to_bytes(), expires, now)
                .await?
            {
                SessionCas::Written { .. } => return Ok(Ok(record)),
                SessionCas::Conflict { .. } => continue,
            }
        }
        Err(Failure::Contention)
    }

    /// The setup service's response to a whole message, stored once for every process.
    async fn respond(
        &self,
        key: ResponseKey,
        message: &[u8],
        now: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| Failure::Random)?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let from = TransportIdentity::Direct {
            transport: Transport::Dns,
            client_key: None,
        };
        let answer = self.setup.answer(message, &from, now, &mut rng).await;
        if answer.refusal.is_some() {
            // A refusal is a hint to the device, never the message's answer: a copy refused
            // as a replay in another process must not shadow the real response.
            return Ok(answer.bytes);
        }
        let stored = StoredResponse {
            request_digest: Sha256::digest(message).into(),
            response: answer.bytes.clone(),
            expires_at: now.saturating_add(self.tunnel_ttl),
        };
        match self
            .setup
            .store()
            .put_response_if_absent(key, stored)
            .await?
        {
            PutResponse::Stored => Ok(answer.bytes),
            // Another process answered the same message first: its bytes, for every copy.
            PutResponse::Existing(first) => Ok(first.response),
        }
    }
}

/// Lower-case hex, for logs (tunnel ids only: never data).
fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
