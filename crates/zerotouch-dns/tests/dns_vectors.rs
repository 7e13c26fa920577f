//! Test vectors of the DNS binding (`docs/PROTOCOL.md` section 19), written to
//! `docs/vectors/dns.json`:
//!
//! - `queries`: header fields and data under the zone `zt.test` → the number of data labels,
//!   the 15 header bytes and the exact query name, one or more of each kind;
//! - `any_case`: those names in other cases (0x20 randomisation, upper case, a trailing dot) →
//!   the same query;
//! - `apex`, `intermediate`: names that are not a whole query (the zone itself, QNAME
//!   minimisation probes) and what the server answers them;
//! - `undecodable`: names the server cannot read → the reason and the DNS answer;
//! - `answers`: payloads → the TXT record's character-strings; `bad_answers`: strings a device
//!   must refuse;
//! - `body_capacity`, `max_data_per_query`: the size rules' figures;
//! - `cookie`: the server's retry cookie from a fixed root secret, tunnel and time, computed
//!   from the formula of section 19.6 (HMAC-SHA256 written out here);
//! - `exchange`: one whole message through `TunnelClient` against a server that follows the
//!   spec's rules, one answer lost: every name sent and every answer, in order.
//!
//! The file is regenerated from the code and compared byte for byte; every vector is also read
//! back from the committed file and checked against the code the other way (names decoded,
//! strings parsed, the exchange replayed into a fresh tunnel), as a port would check itself.
//!
//! After an intended change: `ZT_UPDATE_VECTORS=1 cargo test -p zerotouch-dns
//! --no-default-features --test dns_vectors` rewrites the file, and the diff shows what
//! changed on the wire.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zerotouch_core::Instant;
use zerotouch_dns::answer::probe_filler;
use zerotouch_dns::header::HEADER_LEN;
use zerotouch_dns::name::name_wire_len;
use zerotouch_dns::tunnel_record::AddChunkError;
use zerotouch_dns::*;

const ZONE: &str = "zt.test";
/// A 30-character zone, for the capacity figure of a longer zone.
const ZONE_30: &str = "zerotouch-setup.example-co.net";
/// The server's clock when the device's clock reads 0 (2026-09-21T13:33:20Z).
const UNIX_MS_AT_ZERO: u64 = 1_790_000_000_000;
/// The spec's cookie labels, spelled out here rather than taken from the server.
const SPEC_EPOCH_LABEL: &[u8] = b"zerotouch-dns epoch";
const SPEC_COOKIE_LABEL: &[u8] = b"zerotouch-dns cookie v1";
const SPEC_EPOCH_MS: u64 = 3_600_000;

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn bytes_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

fn int(v: &Value) -> u64 {
    v.as_u64().expect("an integer")
}

fn zone() -> Zone {
    Zone::new(ZONE).unwrap()
}

/// `SHA-256("zerotouch test vector " || label)`, as in every vector file.
fn secret(label: &str) -> [u8; 32] {
    Sha256::digest([&b"zerotouch test vector "[..], label.as_bytes()].concat()).into()
}

/// `n` bytes of a fixed pattern, different for each `salt`.
fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(salt))
        .collect()
}

fn kind_name(kind: QueryKind) -> &'static str {
    match kind {
        QueryKind::Cookie => "Cookie",
        QueryKind::Data => "Data",
        QueryKind::LastData => "LastData",
        QueryKind::Poll => "Poll",
        QueryKind::Probe => "Probe",
    }
}

fn kind_of(name: &str) -> QueryKind {
    [
        QueryKind::Cookie,
        QueryKind::Data,
        QueryKind::LastData,
        QueryKind::Poll,
        QueryKind::Probe,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == name)
    .unwrap_or_else(|| panic!("unknown kind {name}"))
}

fn status_of(name: &str) -> AnswerStatus {
    (0..=255u8)
        .filter_map(|v| AnswerStatus::from_u8(v).ok())
        .find(|s| format!("{s:?}") == name)
        .unwrap_or_else(|| panic!("unknown status {name}"))
}

/// The error's variant, as the vectors name it.
fn error_name(e: &DnsError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// What the server answers at the DNS level for a name it classified (section 19.5, for a TXT
/// question).
fn rcode_for(result: &Result<NameKind, DnsError>) -> &'static str {
    match result {
        Ok(NameKind::Query(_)) => "NOERROR, one TXT record",
        Ok(NameKind::Apex | NameKind::Intermediate) => "NOERROR, no record, SOA in authority",
        Err(DnsError::OutsideZone) => "REFUSED",
        Err(_) => "NXDOMAIN, SOA in authority",
    }
}

// ---- HMAC-SHA256 (RFC 2104), written out: the cookie of section 19.6 ----

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::digest([pad(0x36).as_slice(), message].concat());
    Sha256::digest([pad(0x5c).as_slice(), inner.as_slice()].concat()).into()
}

fn epoch_key(root: &[u8; 32], epoch: u64) -> [u8; 32] {
    hmac_sha256(root, &[SPEC_EPOCH_LABEL, &epoch.to_be_bytes()].concat())
}

fn spec_cookie(root: &[u8; 32], unix_ms: u64, tunnel: TunnelId) -> Cookie {
    let key = epoch_key(root, unix_ms / SPEC_EPOCH_MS);
    let tag = hmac_sha256(&key, &[SPEC_COOKIE_LABEL, &tunnel.0].concat());
    Cookie(*tag.first_chunk::<5>().unwrap())
}

fn cookie_root() -> [u8; 32] {
    secret("dns cookie root")
}

// ---- A server that follows section 19's rules, in memory ----

/// The authoritative server's payloads, as section 19 specifies them (no rate limits).
struct SpecServer {
    zone: Zone,
    root: [u8; 32],
    records: BTreeMap<TunnelId, TunnelRecord>,
    responses: BTreeMap<(TunnelId, u8), Vec<u8>>,
    respond: fn(&[u8]) -> Vec<u8>,
}

impl SpecServer {
    fn new(zone: Zone, respond: fn(&[u8]) -> Vec<u8>) -> SpecServer {
        SpecServer {
            zone,
            root: cookie_root(),
            records: BTreeMap::new(),
            responses: BTreeMap::new(),
            respond,
        }
    }

    fn piece(response: &[u8], offset: usize, capacity: usize) -> AnswerPayload {
        let total = u16::try_from(response.len()).unwrap();
        if offset > response.len() || (offset == response.len() && offset != 0) {
            return AnswerPayload::status(AnswerStatus::BadOffset, total);
        }
        let end = (offset + capacity).min(response.len());
        AnswerPayload {
            status: AnswerStatus::Data,
            length: total,
            body: response[offset..end].to_vec(),
        }
    }

    /// The TXT payload for a TXT question of `qname` (as received) at `unix_ms`.
    fn answer(&mut self, qname: &str, unix_ms: u64) -> AnswerPayload {
        let NameKind::Query(q) = Query::classify(qname, &self.zone).unwrap() else {
            panic!("not a whole query: {qname}")
        };
        let h = q.header;
        let qname_wire_len = qname.trim_end_matches('.').len() + 2;
        let capacity = body_capacity(h.limit, qname_wire_len);
        if h.kind == QueryKind::Cookie {
            let cookie = spec_cookie(&self.root, unix_ms, h.tunnel);
            return AnswerPayload {
                status: AnswerStatus::Cookie,
                length: 0,
                body: cookie.0.to_vec(),
            };
        }
        let accepted = [unix_ms, unix_ms.saturating_sub(SPEC_EPOCH_MS)]
            .iter()
            .any(|&t| spec_cookie(&self.root, t, h.tunnel) == h.cookie);
        if !accepted {
            return AnswerPayload::status(AnswerStatus::BadCookie, 0);
        }
        let stored = self.responses.get(&(h.tunnel, h.message));
        match (h.kind, stored) {
            (QueryKind::Probe, _) => AnswerPayload {
                status: AnswerStatus::Probe,
                length: 0,
                body: probe_filler(capacity),
            },
            (QueryKind::Poll, None) => AnswerPayload::status(AnswerStatus::NoResponse, 0),
            (QueryKind::Poll, Some(r)) => Self::piece(r, usize::from(h.position), capacity),
            (QueryKind::Data, Some(_)) => AnswerPayload::status(AnswerStatus::Ack, 0),
            (QueryKind::LastData, Some(r)) => Self::piece(r, 0, capacity),
            (QueryKind::Cookie, _) => unreachable!("answered above"),
            (QueryKind::Data | QueryKind::LastData, None) => {
                let record = self.records.entry(h.tunnel).or_default();
                if let Err(e) = record.add_chunk(h.message, h.position, &q.data) {
                    let status = match e {
                        AddChunkError::Conflict => AnswerStatus::ChunkConflict,
                        AddChunkError::TooLarge => AnswerStatus::TooLarge,
                    };
                    return AnswerPayload::status(status, 0);
                }
                if h.kind == QueryKind::Data {
                    return AnswerPayload::status(AnswerStatus::Ack, 0);
                }
                let Some(message) = record.assemble(h.message, h.position) else {
                    return AnswerPayload::status(AnswerStatus::Incomplete, 0);
                };
                let response = (self.respond)(&message);
                let piece = Self::piece(&response, 0, capacity);
                self.responses.insert((h.tunnel, h.message), response);
                piece
            }
        }
    }
}

// ---- The vectors ----

fn tunnel_id() -> TunnelId {
    TunnelId([0xa1, 0xb2, 0xc3, 0xd4, 0xe5])
}

fn header(kind: QueryKind, message: u8, attempt: u8, position: u16, limit: usize) -> QueryHeader {
    let cookie = match kind {
        QueryKind::Cookie => Cookie::default(),
        _ => spec_cookie(&cookie_root(), UNIX_MS_AT_ZERO, tunnel_id()),
    };
    QueryHeader {
        kind,
        tunnel: tunnel_id(),
        cookie,
        message,
        attempt,
        position,
        limit: AnswerLimit::from_bytes(limit).unwrap(),
    }
}

/// The queries: (comment, query).
fn queries() -> Vec<(&'static str, Query)> {
    let q = |comment, header: QueryHeader, data: Vec<u8>| (comment, Query { header, data });
    let full = max_data_per_query(&zone());
    vec![
        q(
            "cookie request: no data, cookie zero, the tunnel's first message",
            header(QueryKind::Cookie, 0, 0, 0, 512),
            vec![],
        ),
        q(
            "EDNS probe for 1,232-byte answers (limit 77 units)",
            header(QueryKind::Probe, 0, 0, 0, 1232),
            vec![],
        ),
        q(
            "first chunk of a message, as much data as a name under zt.test holds: 135 bytes in \
             four data labels, 254 octets",
            header(QueryKind::Data, 0, 0, 0, 512),
            pattern(full, 1),
        ),
        q(
            "a middle chunk sent a third time (attempt 2)",
            header(QueryKind::Data, 0, 2, 1, 512),
            pattern(40, 2),
        ),
        q(
            "last chunk: 5 bytes in one 8-character label",
            header(QueryKind::LastData, 3, 0, 2, 512),
            pattern(5, 3),
        ),
        q(
            "a message of one chunk is a single LastData at position 0",
            header(QueryKind::LastData, 15, 15, 0, 4080),
            pattern(1, 4),
        ),
        q(
            "poll for the response from byte 429, second attempt",
            header(QueryKind::Poll, 3, 1, 429, 512),
            vec![],
        ),
    ]
}

/// The data labels of a name under `zt.test`: those left of the header label.
fn data_labels(name: &str) -> u8 {
    u8::try_from(name.split('.').count() - 3).unwrap()
}

fn query_vector((comment, query): &(&str, Query)) -> Value {
    let z = zone();
    let name = query.to_name(&z).unwrap();
    let hd = &query.header;
    let labels = data_labels(&name);
    let header = hd.to_bytes(labels);
    json!({
        "comment": comment,
        "kind": kind_name(hd.kind),
        "kind_value": hd.kind as u8,
        "tunnel": h(&hd.tunnel.0),
        "cookie": h(&hd.cookie.0),
        "message": hd.message,
        "attempt": hd.attempt,
        "position": hd.position,
        "limit_units": hd.limit.bytes() / 16,
        "data": h(&query.data),
        "data_labels": labels,
        "header": h(&header),
        "name": name,
        "wire_len": name.len() + 2,
    })
}

/// 0x20 randomisation with a fixed pattern: upper case where the character's index times 7
/// leaves a remainder below 3 modulo 5.
fn randomise_case(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| match (i * 7) % 5 < 3 {
            true => c.to_ascii_uppercase(),
            false => c,
        })
        .collect()
}

fn any_case_vectors(names: &[String]) -> Value {
    let cases = [
        (2, randomise_case(&names[2])),
        (0, names[0].to_ascii_uppercase()),
        (6, format!("{}.", randomise_case(&names[6]))),
    ];
    Value::Array(
        cases
            .into_iter()
            .map(|(i, name)| json!({ "name": name, "query": i }))
            .collect(),
    )
}

fn classified(name: &str) -> Value {
    let result = Query::classify(name, &zone());
    let kind = match &result {
        Ok(NameKind::Apex) => "Apex".to_owned(),
        Ok(NameKind::Intermediate) => "Intermediate".to_owned(),
        Ok(NameKind::Query(_)) => "Query".to_owned(),
        Err(e) => error_name(e),
    };
    let mut v = json!({ "name": name, "is": kind, "dns_answer": rcode_for(&result) });
    if let Err(e) = &result {
        v["reason"] = json!(e.to_string());
    }
    v
}

fn apex_vectors() -> Value {
    Value::Array(["zt.test", "ZT.Test."].map(classified).to_vec())
}

/// QNAME minimisation: the name cut at each label below the zone, for the query with four data
/// labels.
fn intermediate_vectors(names: &[String]) -> Value {
    let labels: Vec<&str> = names[2].split('.').collect();
    // `<d4>.<d3>.<d2>.<d1>.<header>.zt.test`: keep the header and one to three data labels.
    let cut = |keep_data: usize| labels[4 - keep_data..].join(".");
    Value::Array(
        [cut(0), randomise_case(&cut(1)), cut(3)]
            .iter()
            .map(|n| classified(n))
            .collect(),
    )
}

/// A header's label (no data labels declared) with one byte changed.
fn header_label_with(base: &QueryHeader, at: usize, value: u8) -> String {
    let mut b = base.to_bytes(0);
    b[at] = value;
    data_encoding::BASE32_NOPAD.encode(&b).to_ascii_lowercase()
}

/// `label` with its last character's lowest bit flipped: a spare bit, when the label's bits
/// do not fill its last character.
fn flip_last_bit(label: &str) -> String {
    const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz234567";
    let last = label.chars().last().unwrap();
    let value = ALPHABET.find(last).unwrap() ^ 1;
    format!("{}{}", &label[..label.len() - 1], &ALPHABET[value..=value])
}

fn undecodable_vectors(names: &[String]) -> Value {
    let cookie = header(QueryKind::Cookie, 0, 0, 0, 512);
    let good = names[0].split('.').next().unwrap().to_owned();
    let under = |label: &str| format!("{label}.zt.test");
    let five: Vec<&str> = names[4].split('.').collect();
    let one: Vec<&str> = names[5].split('.').collect();
    let four: Vec<&str> = names[2].split('.').collect();
    let names_out = [
        under("foo"),
        under(&format!("{}1", &good[..good.len() - 1])),
        // 15 bytes are exactly 24 characters: no padding, no spare bit.
        under(&format!("{}========", &good[..16])),
        // Version 2 (bits 7-6), kind 1.
        under(&header_label_with(&cookie, 0, 0x81)),
        // Version 1, no data labels, kind 6.
        under(&header_label_with(&cookie, 0, 0x46)),
        under(&header_label_with(&cookie, 14, 31)),
        // A cookie request declaring one data label.
        under(&header_label_with(&cookie, 0, 0x49)),
        under(&header_label_with(&cookie, 13, 1)),
        under(&header_label_with(&cookie, 6, 1)),
        // A Data query declaring no data label.
        under(&header_label_with(
            &header(QueryKind::Data, 0, 0, 0, 512),
            0,
            0x42,
        )),
        // A LastData query declaring five.
        format!(
            "aa.{}",
            under(&header_label_with(
                &header(QueryKind::LastData, 0, 0, 0, 512),
                0,
                0x6b,
            ))
        ),
        // A cookie request has no data label.
        format!("a.{}", names[0]),
        // One data label declared, two present.
        format!("aa.{}", names[4]),
        // One byte is 8 bits in 2 characters (10 bits): the last 2 bits are spare.
        format!("{}.{}.zt.test", flip_last_bit(one[0]), one[1]),
        // Five bytes are 8 characters; 3 characters are no whole number of bytes.
        format!("{}.{}.zt.test", &five[0][..3], five[1]),
        // The data labels of a four-label query cut at 62 and 64 characters.
        [
            four[0],
            &format!("{}{}", four[1], &four[2][..1]),
            &four[2][1..],
            four[3],
            four[4],
            "zt.test",
        ]
        .join("."),
        "x.example.com".to_owned(),
    ];
    Value::Array(names_out.iter().map(|n| classified(n)).collect())
}

fn answer_vectors() -> Value {
    let cookie = spec_cookie(&cookie_root(), UNIX_MS_AT_ZERO, tunnel_id());
    let probe = body_capacity(AnswerLimit::CLASSIC, name_wire_len(&zone(), 0));
    let payloads = [
        (
            "acknowledgement of a chunk",
            AnswerPayload::status(AnswerStatus::Ack, 0),
        ),
        (
            "the retry cookie",
            AnswerPayload {
                status: AnswerStatus::Cookie,
                length: 0,
                body: cookie.0.to_vec(),
            },
        ),
        (
            "a 300-byte piece of a 700-byte response: two strings, 255 and 48 bytes",
            AnswerPayload {
                status: AnswerStatus::Data,
                length: 700,
                body: pattern(300, 5),
            },
        ),
        (
            "a 252-byte piece: the payload is exactly one 255-byte string",
            AnswerPayload {
                status: AnswerStatus::Data,
                length: 252,
                body: pattern(252, 6),
            },
        ),
        (
            "an empty response",
            AnswerPayload::status(AnswerStatus::Data, 0),
        ),
        (
            "the probe filler for a 512-byte limit and a 34-octet question",
            AnswerPayload {
                status: AnswerStatus::Probe,
                length: 0,
                body: probe_filler(probe),
            },
        ),
        (
            "rate limited: wait 30 seconds",
            AnswerPayload::status(AnswerStatus::RateLimited, 30),
        ),
        (
            "bad cookie",
            AnswerPayload::status(AnswerStatus::BadCookie, 0),
        ),
    ];
    Value::Array(
        payloads
            .iter()
            .map(|(comment, p)| {
                json!({
                    "comment": comment,
                    "status": format!("{:?}", p.status),
                    "status_value": p.status as u8,
                    "length": p.length,
                    "body": h(&p.body),
                    "strings": p.to_strings().iter().map(|s| h(s)).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn bad_answer_vectors() -> Value {
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("no string", vec![]),
        ("shorter than status and length", vec![vec![0x00, 0x00]]),
        (
            "a string other than the last shorter than 255 bytes",
            vec![vec![0x01; 254], vec![0x01; 10]],
        ),
        (
            "a status this version does not define",
            vec![vec![0x04, 0, 0]],
        ),
    ];
    Value::Array(
        cases
            .into_iter()
            .map(|(comment, strings)| {
                let e = AnswerPayload::from_strings(&strings).unwrap_err();
                json!({
                    "comment": comment,
                    "strings": strings.iter().map(|s| h(s)).collect::<Vec<_>>(),
                    "error": error_name(&e),
                    "reason": e.to_string(),
                })
            })
            .collect(),
    )
}

fn capacity_vectors() -> Value {
    Value::Array(
        [(512, 18), (512, 34), (512, 255), (1232, 34), (1232, 100)]
            .into_iter()
            .map(|(limit, q)| {
                json!({
                    "limit": limit,
                    "qname_wire_len": q,
                    "body": body_capacity(AnswerLimit::from_bytes(limit).unwrap(), q),
                })
            })
            .collect(),
    )
}

fn max_data_vectors() -> Value {
    Value::Array(
        [ZONE, ZONE_30, "zt.example.com"]
            .into_iter()
            .map(|z| {
                let zone = Zone::new(z).unwrap();
                let n = max_data_per_query(&zone);
                json!({
                    "zone": z,
                    "zone_chars": z.len(),
                    "bytes": n,
                    "name_wire_len": name_wire_len(&zone, n),
                })
            })
            .collect(),
    )
}

fn cookie_vector() -> Value {
    let root = cookie_root();
    let epoch = UNIX_MS_AT_ZERO / SPEC_EPOCH_MS;
    let tunnel = tunnel_id();
    json!({
        "root": h(&root),
        "unix_ms": UNIX_MS_AT_ZERO,
        "epoch": epoch,
        "tunnel": h(&tunnel.0),
        "epoch_key": h(&epoch_key(&root, epoch)),
        "cookie": h(&spec_cookie(&root, UNIX_MS_AT_ZERO, tunnel).0),
        "previous_epoch_key": h(&epoch_key(&root, epoch - 1)),
        "previous_epoch_cookie": h(&spec_cookie(&root, UNIX_MS_AT_ZERO - SPEC_EPOCH_MS, tunnel).0),
    })
}

// ---- The exchange ----

const EXCHANGE_TUNNEL_SEED: u64 = 7;
const EXCHANGE_MESSAGE_LEN: usize = 300;
const EXCHANGE_RESPONSE_LEN: usize = 1000;
/// The answer's delay after its query, in ms.
const RTT_MS: u64 = 30;
/// The query whose first answer is lost (0-based).
const LOST: usize = 2;
/// The query whose answer comes back with its name in 0x20-randomised case.
const MIXED_CASE: usize = 3;

fn exchange_response(_: &[u8]) -> Vec<u8> {
    pattern(EXCHANGE_RESPONSE_LEN, 9)
}

fn new_exchange_tunnel() -> TunnelClient {
    TunnelClient::new(
        TunnelConfig::new(zone()),
        &mut ChaCha20Rng::seed_from_u64(EXCHANGE_TUNNEL_SEED),
    )
}

fn exchange_vector() -> Value {
    let message = pattern(EXCHANGE_MESSAGE_LEN, 8);
    let mut server = SpecServer::new(zone(), exchange_response);
    let mut tunnel = new_exchange_tunnel();
    tunnel
        .send(&message, &mut ChaCha20Rng::seed_from_u64(0))
        .unwrap();
    let mut steps = Vec::new();
    let mut now = 0u64;
    let response = loop {
        if let Some(event) = tunnel.poll_event() {
            match event {
                TunnelEvent::Response(r) => break r,
                TunnelEvent::Failed(f) => panic!("exchange failed: {f:?}"),
            }
        }
        if let Some(at) = tunnel.poll_timeout() {
            now = now.max(at.0);
        }
        tunnel.handle_timeout(Instant(now));
        let Some(query) = tunnel.poll_query(Instant(now)) else {
            continue;
        };
        let i = steps.len();
        let parsed = match Query::classify(&query.name, &zone()).unwrap() {
            NameKind::Query(q) => q,
            other => panic!("{other:?}"),
        };
        let mut step = json!({
            "sent_at_ms": now,
            "name": query.name,
            "kind": kind_name(query.kind),
            "message": parsed.header.message,
            "attempt": parsed.header.attempt,
            "position": parsed.header.position,
        });
        if i == LOST {
            step["answer"] = Value::Null;
        } else {
            let owner = match i == MIXED_CASE {
                true => randomise_case(&query.name),
                false => query.name.clone(),
            };
            let payload = server.answer(&owner, UNIX_MS_AT_ZERO + now);
            let strings = payload.to_strings();
            now += RTT_MS;
            let handled = tunnel.handle_answer(Instant(now), &owner, Reply::Txt(strings.clone()));
            assert_eq!(handled, Handled::Accepted, "step {i}");
            step["answer"] = json!({
                "at_ms": now,
                "owner": owner,
                "status": format!("{:?}", payload.status),
                "strings": strings.iter().map(|s| h(s)).collect::<Vec<_>>(),
            });
        }
        steps.push(step);
    };
    assert_eq!(response, exchange_response(&message));
    json!({
        "zone": ZONE,
        "config": "TunnelConfig::new defaults: no EDNS, first timeout 1,000 ms doubling to \
            8,000 ms, 6 attempts, 10 ms pacing",
        "tunnel": h(&tunnel.tunnel().0),
        "cookie_root": h(&cookie_root()),
        "server_unix_ms_at_zero": UNIX_MS_AT_ZERO,
        "message": h(&message),
        "response": h(&response),
        "steps": steps,
    })
}

fn generate() -> Value {
    let named = queries();
    let names: Vec<String> = named
        .iter()
        .map(|(_, q)| q.to_name(&zone()).unwrap())
        .collect();
    json!({
        "description": "The DNS binding (docs/PROTOCOL.md section 19) under the zone zt.test. \
            `queries`: header fields and data -> the number of data labels, the 15 header bytes \
            (bits 7-6 of the first: version; 5-3: data labels; 2-0: kind) and the query name (the \
            cookie field of non-cookie queries is `cookie.cookie`). `any_case`: another spelling \
            of `queries[query].name` that decodes to the same query. `apex`, `intermediate`, \
            `undecodable`: names that are not whole queries, what they are (`is`: Apex, \
            Intermediate, or the reference decoder's error) and the server's answer to a TXT \
            question for them. `answers`: payload -> TXT character-strings; `bad_answers`: \
            strings a device refuses. `body_capacity`: body bytes for an answer limit and a \
            question's wire length. `max_data_per_query`: data bytes per query name for a zone. \
            `cookie`: K_e = HMAC-SHA256(root, \"zerotouch-dns epoch\" || e as u64 BE), e = \
            unix_ms / 3,600,000; cookie = the first 5 bytes of HMAC-SHA256(K_e, \
            \"zerotouch-dns cookie v1\" || tunnel); root = SHA-256(\"zerotouch test vector dns \
            cookie root\"). `exchange`: one message through zerotouch-dns's TunnelClient \
            (tunnel id from ChaCha20Rng::seed_from_u64(7)) against a server following the \
            section's rules, the server's clock server_unix_ms_at_zero + the device's; the \
            answer of the third query is lost, the fourth comes back with its name in another \
            case.",
        "zone": ZONE,
        "queries": named.iter().map(query_vector).collect::<Vec<_>>(),
        "any_case": any_case_vectors(&names),
        "apex": apex_vectors(),
        "intermediate": intermediate_vectors(&names),
        "undecodable": undecodable_vectors(&names),
        "answers": answer_vectors(),
        "bad_answers": bad_answer_vectors(),
        "body_capacity": capacity_vectors(),
        "max_data_per_query": max_data_vectors(),
        "cookie": cookie_vector(),
        "exchange": exchange_vector(),
    })
}

fn regenerating() -> bool {
    std::env::var_os("ZT_UPDATE_VECTORS").is_some_and(|s| !s.is_empty() && s != "0")
}

fn path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/vectors/dns.json").to_owned()
}

/// The committed file, as a port reads it (while regenerating: the new content).
fn committed() -> Value {
    match regenerating() {
        true => generate(),
        false => serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap(),
    }
}

fn query_from(v: &Value) -> Query {
    let data = bytes_of(&v["data"]);
    Query {
        header: QueryHeader {
            kind: kind_of(v["kind"].as_str().unwrap()),
            tunnel: TunnelId(bytes_of(&v["tunnel"]).try_into().unwrap()),
            cookie: Cookie(bytes_of(&v["cookie"]).try_into().unwrap()),
            message: u8::try_from(int(&v["message"])).unwrap(),
            attempt: u8::try_from(int(&v["attempt"])).unwrap(),
            position: u16::try_from(int(&v["position"])).unwrap(),
            limit: AnswerLimit::from_bytes(usize::try_from(int(&v["limit_units"])).unwrap() * 16)
                .unwrap(),
        },
        data,
    }
}

#[test]
fn the_dns_vectors_match_the_code() {
    let fresh = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    match (regenerating(), std::fs::read_to_string(path())) {
        (true, _) => std::fs::write(path(), fresh).unwrap(),
        (false, Ok(committed)) => assert!(
            committed == fresh,
            "docs/vectors/dns.json is stale: the DNS binding's wire format changed (after an \
             intended change run with ZT_UPDATE_VECTORS=1 and review the diff)"
        ),
        (false, Err(e)) => panic!("docs/vectors/dns.json: {e} (run with ZT_UPDATE_VECTORS=1)"),
    }
}

#[test]
fn query_fields_encode_to_the_listed_header_and_name() {
    let v = committed();
    let zone = Zone::new(v["zone"].as_str().unwrap()).unwrap();
    let queries = v["queries"].as_array().unwrap();
    assert!(queries.len() >= 5);
    for q in queries {
        let query = query_from(q);
        let labels = u8::try_from(int(&q["data_labels"])).unwrap();
        assert_eq!(
            query.header.to_bytes(labels).to_vec(),
            bytes_of(&q["header"])
        );
        assert_eq!(query.header.kind as u64, int(&q["kind_value"]));
        let name = query.to_name(&zone).unwrap();
        assert_eq!(name, q["name"].as_str().unwrap());
        assert_eq!(name.len() as u64 + 2, int(&q["wire_len"]));
        assert!(int(&q["wire_len"]) <= 255);
    }
    // Every kind has a vector.
    for kind in ["Cookie", "Data", "LastData", "Poll", "Probe"] {
        assert!(
            queries.iter().any(|q| q["kind"] == kind),
            "no {kind} vector"
        );
    }
}

#[test]
fn query_names_decode_to_the_listed_fields() {
    let v = committed();
    let zone = Zone::new(v["zone"].as_str().unwrap()).unwrap();
    for q in v["queries"].as_array().unwrap() {
        let name = q["name"].as_str().unwrap();
        let NameKind::Query(decoded) = Query::classify(name, &zone).unwrap() else {
            panic!("{name} is not a whole query")
        };
        assert_eq!(decoded, query_from(q), "{name}");
        let header: [u8; HEADER_LEN] = bytes_of(&q["header"]).try_into().unwrap();
        let labels = u8::try_from(int(&q["data_labels"])).unwrap();
        assert_eq!(
            QueryHeader::from_bytes(&header).unwrap(),
            (decoded.header, labels)
        );
        assert_eq!(labels, data_labels(name));
    }
}

#[test]
fn names_decode_in_any_case() {
    let v = committed();
    let zone = Zone::new(v["zone"].as_str().unwrap()).unwrap();
    let queries = v["queries"].as_array().unwrap();
    let cases = v["any_case"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let original = &queries[usize::try_from(int(&case["query"])).unwrap()];
        assert_ne!(name, original["name"].as_str().unwrap(), "another spelling");
        assert!(
            name.trim_end_matches('.')
                .eq_ignore_ascii_case(original["name"].as_str().unwrap())
        );
        let NameKind::Query(decoded) = Query::classify(name, &zone).unwrap() else {
            panic!("{name} is not a whole query")
        };
        assert_eq!(decoded, query_from(original));
    }
}

#[test]
fn names_that_are_not_queries_are_classified_as_listed() {
    let v = committed();
    let zone = Zone::new(v["zone"].as_str().unwrap()).unwrap();
    for group in ["apex", "intermediate", "undecodable"] {
        let list = v[group].as_array().unwrap();
        assert!(!list.is_empty(), "{group}");
        for case in list {
            let name = case["name"].as_str().unwrap();
            let result = Query::classify(name, &zone);
            let is = match &result {
                Ok(NameKind::Apex) => "Apex".to_owned(),
                Ok(NameKind::Intermediate) => "Intermediate".to_owned(),
                Ok(NameKind::Query(q)) => panic!("{name} decoded to {q:?}"),
                Err(e) => {
                    assert_eq!(case["reason"], e.to_string(), "{name}");
                    error_name(e)
                }
            };
            assert_eq!(case["is"], is, "{name}");
            assert_eq!(case["dns_answer"], rcode_for(&result), "{name}");
        }
    }
    let intermediate = v["intermediate"].as_array().unwrap();
    assert!(intermediate.iter().all(|c| c["is"] == "Intermediate"));
    let undecodable = v["undecodable"].as_array().unwrap();
    assert!(undecodable.len() >= 10);
}

#[test]
fn payloads_encode_to_the_listed_strings_and_back() {
    let v = committed();
    for a in v["answers"].as_array().unwrap() {
        let payload = AnswerPayload {
            status: status_of(a["status"].as_str().unwrap()),
            length: u16::try_from(int(&a["length"])).unwrap(),
            body: bytes_of(&a["body"]),
        };
        assert_eq!(payload.status as u64, int(&a["status_value"]));
        let strings: Vec<Vec<u8>> = a["strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(bytes_of)
            .collect();
        assert_eq!(payload.to_strings(), strings, "{}", a["comment"]);
        assert_eq!(AnswerPayload::from_strings(&strings).unwrap(), payload);
        let (last, full) = strings.split_last().unwrap();
        assert!(full.iter().all(|s| s.len() == 255) && !last.is_empty() && last.len() <= 255);
    }
    let two = v["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| bytes_of(&a["body"]).len() == 300)
        .expect("a 300-byte body");
    assert_eq!(two["strings"].as_array().unwrap().len(), 2);
    for bad in v["bad_answers"].as_array().unwrap() {
        let strings: Vec<Vec<u8>> = bad["strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(bytes_of)
            .collect();
        let e = AnswerPayload::from_strings(&strings).unwrap_err();
        assert_eq!(bad["error"], error_name(&e));
        assert_eq!(bad["reason"], e.to_string());
    }
}

#[test]
fn size_figures_match_the_code() {
    let v = committed();
    for c in v["body_capacity"].as_array().unwrap() {
        let limit = AnswerLimit::from_bytes(usize::try_from(int(&c["limit"])).unwrap()).unwrap();
        let q = usize::try_from(int(&c["qname_wire_len"])).unwrap();
        assert_eq!(body_capacity(limit, q) as u64, int(&c["body"]));
    }
    for m in v["max_data_per_query"].as_array().unwrap() {
        let zone = Zone::new(m["zone"].as_str().unwrap()).unwrap();
        let n = max_data_per_query(&zone);
        assert_eq!(n as u64, int(&m["bytes"]));
        assert_eq!(name_wire_len(&zone, n) as u64, int(&m["name_wire_len"]));
        assert!(name_wire_len(&zone, n + 1) > 255);
    }
}

/// HMAC-SHA256 as written out here is RFC 2104: RFC 4231 test cases 2 and 6 (a key longer
/// than the block).
#[test]
fn the_cookie_hmac_is_rfc_2104() {
    assert_eq!(
        h(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        h(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn the_cookie_follows_the_formula() {
    let v = committed();
    let c = &v["cookie"];
    let root: [u8; 32] = bytes_of(&c["root"]).try_into().unwrap();
    let unix_ms = int(&c["unix_ms"]);
    let tunnel = TunnelId(bytes_of(&c["tunnel"]).try_into().unwrap());
    assert_eq!(int(&c["epoch"]), unix_ms / 3_600_000);
    assert_eq!(h(&epoch_key(&root, int(&c["epoch"]))), c["epoch_key"]);
    assert_eq!(h(&spec_cookie(&root, unix_ms, tunnel).0), c["cookie"]);
    assert_eq!(
        h(&spec_cookie(&root, unix_ms - 3_600_000, tunnel).0),
        c["previous_epoch_cookie"]
    );
    // The queries other than cookie requests carry it.
    for q in v["queries"].as_array().unwrap() {
        let expected = match q["kind"] == "Cookie" {
            true => "0000000000".into(),
            false => c["cookie"].clone(),
        };
        assert_eq!(q["cookie"], expected);
    }
}

/// A port's check of its tunnel: fed the file's answers at the file's times, a fresh
/// `TunnelClient` with the file's tunnel id sends the file's names and returns the response.
#[test]
fn a_tunnel_fed_the_exchanges_answers_sends_its_names() {
    let v = committed();
    let x = &v["exchange"];
    let mut tunnel = new_exchange_tunnel();
    assert_eq!(h(&tunnel.tunnel().0), x["tunnel"]);
    tunnel
        .send(&bytes_of(&x["message"]), &mut ChaCha20Rng::seed_from_u64(0))
        .unwrap();
    let steps = x["steps"].as_array().unwrap();
    let mut names = std::collections::BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let at = Instant(int(&step["sent_at_ms"]));
        assert_eq!(tunnel.poll_event(), None, "step {i}");
        tunnel.handle_timeout(at);
        let query = tunnel.poll_query(at).expect("a query due");
        assert_eq!(query.name, step["name"].as_str().unwrap(), "step {i}");
        assert_eq!(kind_name(query.kind), step["kind"], "step {i}");
        assert!(names.insert(query.name.clone()), "every name is new");
        if step["answer"].is_null() {
            continue;
        }
        let a = &step["answer"];
        let strings = a["strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(bytes_of)
            .collect();
        let handled = tunnel.handle_answer(
            Instant(int(&a["at_ms"])),
            a["owner"].as_str().unwrap(),
            Reply::Txt(strings),
        );
        assert_eq!(handled, Handled::Accepted, "step {i}");
    }
    assert_eq!(
        tunnel.poll_event(),
        Some(TunnelEvent::Response(bytes_of(&x["response"])))
    );
    // The lost answer made the query go again after its timeout, as attempt 1.
    let lost = steps.iter().position(|s| s["answer"].is_null()).unwrap();
    let retry = &steps[lost + 1];
    assert_eq!(retry["kind"], steps[lost]["kind"]);
    assert_eq!(retry["position"], steps[lost]["position"]);
    assert_eq!(int(&retry["attempt"]), int(&steps[lost]["attempt"]) + 1);
    assert_eq!(
        int(&retry["sent_at_ms"]),
        int(&steps[lost]["sent_at_ms"]) + 1000
    );
}

/// The server's answers in the exchange are what section 19 makes them: the file's strings,
/// recomputed from the file's names by the in-memory server, with the stored response.
#[test]
fn the_exchanges_answers_follow_the_spec() {
    let v = committed();
    let x = &v["exchange"];
    let response = bytes_of(&x["response"]);
    let mut server = SpecServer::new(zone(), exchange_response);
    let unix0 = int(&x["server_unix_ms_at_zero"]);
    for step in x["steps"].as_array().unwrap() {
        let a = &step["answer"];
        if a.is_null() {
            continue;
        }
        let payload = server.answer(
            a["owner"].as_str().unwrap(),
            unix0 + int(&step["sent_at_ms"]),
        );
        let strings: Vec<String> = payload.to_strings().iter().map(|s| h(s)).collect();
        assert_eq!(json!(strings), a["strings"]);
        // A piece of data is the stored response from the offset asked for.
        if payload.status == AnswerStatus::Data {
            let offset = match step["kind"] == "Poll" {
                true => usize::try_from(int(&step["position"])).unwrap(),
                false => 0,
            };
            assert_eq!(usize::from(payload.length), response.len());
            assert_eq!(payload.body, response[offset..offset + payload.body.len()]);
            let q = a["owner"].as_str().unwrap().len() + 2;
            let cap = body_capacity(AnswerLimit::CLASSIC, q);
            assert_eq!(payload.body.len(), cap.min(response.len() - offset));
        }
    }
}

/// `docs/PROTOCOL.md` 19.6.1 states the cookie's formula with the labels and hour used here.
#[test]
fn the_spec_states_the_cookie_formula() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/PROTOCOL.md"
    ))
    .unwrap();
    let start = text
        .find("#### 19.6.1 Tunnels and cookies")
        .expect("19.6.1");
    let section = &text[start..];
    let section = &section[..section.find("\n#### ").unwrap_or(section.len())];
    let utf8 = |b: &'static [u8]| std::str::from_utf8(b).unwrap();
    for needle in [
        "e      = ⌊Unix time in milliseconds / 3,600,000⌋".to_owned(),
        format!(
            "K_e    = HMAC-SHA256(root, \"{}\" || e)",
            utf8(SPEC_EPOCH_LABEL)
        ),
        format!(
            "cookie = the first 5 bytes of HMAC-SHA256(K_e, \"{}\" || tunnel id)",
            utf8(SPEC_COOKIE_LABEL)
        ),
        "e as a big-endian u64".to_owned(),
        "current hour or of the previous one".to_owned(),
    ] {
        assert!(section.contains(&needle), "19.6.1 lacks `{needle}`");
    }
    assert_eq!(SPEC_EPOCH_MS, 3_600_000);
}
