//! `docs/PROTOCOL.md` section 19 (the DNS binding) states what the code does: the header's
//! layout, the kinds, the answer statuses and what the device does on each, the size rules
//! and their figures, the device's defaults and the query counts. This test reads the
//! section's tables and figures and fails if they and the code disagree, so the two cannot
//! drift apart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use zerotouch_core::{Instant, Transport};
use zerotouch_dns::answer::{ANSWER_OVERHEAD, OPT_RECORD, PAYLOAD_HEADER_LEN, probe_filler};
use zerotouch_dns::header::{
    HEADER_LABEL_LEN, HEADER_LEN, MAX_ATTEMPTS, MAX_DATA_LABELS, MAX_MESSAGES, VERSION,
};
use zerotouch_dns::name::{MAX_LABEL, MAX_NAME_OCTETS, name_wire_len};
use zerotouch_dns::tunnel_record::{MAX_CHUNKS, MAX_MESSAGE_LEN};
use zerotouch_dns::*;

use zerotouch_testkit::spec::{self, grouped, number, table};

fn section() -> String {
    spec::protocol_section("## 19. DNS binding")
}

/// The section with every run of white space made one space: for phrases the text may wrap.
fn prose() -> String {
    spec::prose(&section())
}

fn zone() -> Zone {
    Zone::new("zt.test").unwrap()
}

const KINDS: [QueryKind; 5] = [
    QueryKind::Cookie,
    QueryKind::Data,
    QueryKind::LastData,
    QueryKind::Poll,
    QueryKind::Probe,
];

fn kind_named(name: &str) -> QueryKind {
    KINDS
        .into_iter()
        .find(|k| format!("{k:?}") == name)
        .unwrap_or_else(|| panic!("no kind {name}"))
}

fn base_header(kind: QueryKind) -> QueryHeader {
    QueryHeader {
        kind,
        tunnel: TunnelId([1, 2, 3, 4, 5]),
        cookie: Cookie::default(),
        message: 0,
        attempt: 0,
        position: 0,
        limit: AnswerLimit::CLASSIC,
    }
}

/// The data labels a header of `kind` declares at least (one for Data and LastData).
fn least_labels(kind: QueryKind) -> u8 {
    u8::from(matches!(kind, QueryKind::Data | QueryKind::LastData))
}

#[test]
fn header_table_matches_the_code() {
    let rows = table(&section(), "| offset | size | field | contents |");
    let base = base_header(QueryKind::Data);
    let mut next = 0;
    for row in &rows {
        let (offset, size, field) = (number(&row[0]), number(&row[1]), row[2].as_str());
        assert_eq!(offset, next, "the fields follow each other: {field}");
        next = offset + size;
        let mut changed = base;
        let mut labels = 1;
        match field {
            "version, labels, kind" => {
                changed.kind = QueryKind::Probe;
                labels = 0;
                let b = QueryHeader {
                    kind: QueryKind::LastData,
                    ..base
                }
                .to_bytes(3)[0];
                assert_eq!(b >> 6, VERSION, "the version in bits 7-6");
                assert_eq!((b >> 3) & 0x07, 3, "the data labels in bits 5-3");
                assert_eq!(b & 0x07, QueryKind::LastData as u8, "the kind in bits 2-0");
                for needle in [
                    format!("bits 7–6: the version, {VERSION}"),
                    "bits 5–3: the number of data labels, 1 to 4 in Data and LastData, else 0"
                        .to_owned(),
                    "bits 2–0: the kind".to_owned(),
                ] {
                    assert!(row[3].contains(&needle), "`{needle}`");
                }
            }
            "tunnel" => changed.tunnel = TunnelId([0xff; 5]),
            "cookie" => changed.cookie = Cookie([0xff; 5]),
            "message, attempt" => {
                changed.message = 15;
                changed.attempt = 15;
                assert_eq!(
                    QueryHeader {
                        message: 15,
                        ..base
                    }
                    .to_bytes(1)[offset]
                        >> 4,
                    15,
                    "message in the high bits"
                );
            }
            "position" => {
                changed.position = 0x0102;
                assert_eq!(
                    changed.to_bytes(1)[offset..offset + 2],
                    [1, 2],
                    "big-endian"
                );
                changed.position = 0xffff;
            }
            "limit" => changed.limit = AnswerLimit::from_bytes(4080).unwrap(),
            other => panic!("the header table names an unknown field `{other}`"),
        }
        let (a, b) = (base.to_bytes(1), changed.to_bytes(labels));
        let differing: Vec<usize> = (0..HEADER_LEN).filter(|&i| a[i] != b[i]).collect();
        let expected: Vec<usize> = (offset..offset + size).collect();
        assert_eq!(differing, expected, "the bytes of `{field}`");
    }
    assert_eq!(next, HEADER_LEN, "the table covers the header");
    assert_eq!(rows.len(), 6);
    // The limit's range, as the table states it.
    let limit = rows.iter().find(|r| r[2] == "limit").unwrap();
    assert!(limit[3].contains("32 to 255 (512 to 4,080 bytes)"));
    assert!(AnswerLimit::from_bytes(511).is_err());
    assert_eq!(AnswerLimit::from_bytes(512).unwrap(), AnswerLimit::CLASSIC);
    assert_eq!(AnswerLimit::from_bytes(4080).unwrap().bytes(), 4080);
    assert!(AnswerLimit::from_bytes(4096).is_err());
    // Data labels: 1 to 4 for the data kinds; 5 or more is refused.
    for labels in 0..8u8 {
        assert_eq!(
            QueryHeader::from_bytes(&base.to_bytes(labels)).is_ok(),
            (1..=4).contains(&labels),
            "{labels} data labels"
        );
    }
    assert_eq!(MAX_DATA_LABELS, 4);
}

#[test]
fn kind_table_matches_the_code() {
    let section = section();
    let rows = table(
        &section,
        "| kind | value | data | position | answered with (19.4) |",
    );
    let statuses = table(&section, "| code | status | length | body | the device |");
    let mut listed = Vec::new();
    for row in &rows {
        let kind = kind_named(&row[0]);
        let value = u8::try_from(number(&row[1])).unwrap();
        let header = base_header(kind);
        assert_eq!(
            header.to_bytes(least_labels(kind))[0] & 0x07,
            value,
            "{kind:?}"
        );
        listed.push(value);
        // The data column: none (no data label), or at least one byte (a label at least).
        if row[2] == "none" {
            assert!(QueryHeader::from_bytes(&header.to_bytes(1)).is_err());
            assert!(QueryHeader::from_bytes(&header.to_bytes(0)).is_ok());
        } else {
            assert!(QueryHeader::from_bytes(&header.to_bytes(1)).is_ok());
            assert!(QueryHeader::from_bytes(&header.to_bytes(0)).is_err());
        }
        // The position column: 0, or used.
        let mut positioned = base_header(kind);
        positioned.position = 1;
        assert_eq!(
            QueryHeader::from_bytes(&positioned.to_bytes(least_labels(kind))).is_ok(),
            row[3] != "0",
            "{kind:?}: position"
        );
        // The answer's status is in the status table.
        let status = row[4].split(':').next().unwrap();
        assert!(
            statuses.iter().any(|s| s[1] == status),
            "{kind:?} answered with `{status}`"
        );
    }
    // Every other kind value is refused.
    for value in 0..8u8 {
        // With a data label or without: a known kind parses one way.
        let parses = [0u8, 1].iter().any(|&labels| {
            let mut b = base_header(QueryKind::Cookie).to_bytes(0);
            b[0] = (VERSION << 6) | (labels << 3) | value;
            QueryHeader::from_bytes(&b).is_ok()
        });
        assert_eq!(parses, listed.contains(&value), "kind {value}");
    }
    assert_eq!(listed.len(), KINDS.len());
}

#[test]
fn status_table_matches_the_code() {
    let rows = table(&section(), "| code | status | length | body | the device |");
    let mut listed = Vec::new();
    for row in &rows {
        let code = u8::from_str_radix(row[0].trim_start_matches("0x"), 16).unwrap();
        let status = AnswerStatus::from_u8(code).unwrap();
        assert_eq!(format!("{status:?}"), row[1], "status {code:#04x}");
        assert_eq!(status as u8, code);
        listed.push(code);
    }
    let defined: Vec<u8> = (0..=255u8)
        .filter(|&v| AnswerStatus::from_u8(v).is_ok())
        .collect();
    assert_eq!(listed, defined, "the table lists every status, in order");
    // The filler of a probe, as the table says.
    let probe = rows.iter().find(|r| r[1] == "Probe").unwrap();
    assert!(probe[3].contains("byte i is i mod 251"));
    let filler = probe_filler(600);
    assert!(
        filler
            .iter()
            .enumerate()
            .all(|(i, &b)| usize::from(b) == i % 251)
    );
}

// ---- What the device does on each status ----

const T0: u64 = 100;

/// A tunnel under `zt.test` sending a `len`-byte message, its cookie received; and the time.
fn tunnel_with_cookie(len: usize, edns: Option<usize>) -> (TunnelClient, u64) {
    let mut config = TunnelConfig::new(zone());
    config.edns_limit = edns.map(|l| AnswerLimit::from_bytes(l).unwrap());
    let mut t = TunnelClient::new(config, &mut ChaCha20Rng::seed_from_u64(1));
    t.send(&vec![7u8; len], &mut ChaCha20Rng::seed_from_u64(2))
        .unwrap();
    let q = t.poll_query(Instant(0)).unwrap();
    assert_eq!(q.kind, QueryKind::Cookie);
    let cookie = AnswerPayload {
        status: AnswerStatus::Cookie,
        length: 0,
        body: vec![9; 5],
    };
    assert_eq!(
        t.handle_answer(Instant(5), &q.name, Reply::Txt(cookie.to_strings())),
        Handled::Accepted
    );
    (t, T0)
}

fn header_of(name: &str) -> QueryHeader {
    match Query::classify(name, &zone()).unwrap() {
        NameKind::Query(q) => q.header,
        other => panic!("{other:?}"),
    }
}

fn answer(t: &mut TunnelClient, at: u64, q: &OutgoingQuery, p: &AnswerPayload) -> Handled {
    t.handle_answer(Instant(at), &q.name, Reply::Txt(p.to_strings()))
}

/// Checks what a fresh tunnel does when `status` answers one of its queries.
fn device_behaviour(status: AnswerStatus) {
    let status_only = |length| AnswerPayload::status(status, length);
    match status {
        AnswerStatus::Ack => {
            let (mut t, now) = tunnel_with_cookie(300, None);
            let q = t.poll_query(Instant(now)).unwrap();
            assert_eq!(
                answer(&mut t, now + 5, &q, &status_only(0)),
                Handled::Accepted
            );
            let next = header_of(&t.poll_query(Instant(now + 20)).unwrap().name);
            assert_eq!(
                (next.kind, next.position, next.attempt),
                (QueryKind::Data, 1, 0)
            );
        }
        AnswerStatus::Data => {
            let (mut t, now) = tunnel_with_cookie(10, None);
            let q = t.poll_query(Instant(now)).unwrap();
            assert_eq!(q.kind, QueryKind::LastData);
            let piece = AnswerPayload {
                status,
                length: 500,
                body: vec![1; 300],
            };
            assert_eq!(answer(&mut t, now + 5, &q, &piece), Handled::Accepted);
            let next = header_of(&t.poll_query(Instant(now + 20)).unwrap().name);
            assert_eq!((next.kind, next.position), (QueryKind::Poll, 300));
        }
        AnswerStatus::Cookie => {
            // tunnel_with_cookie took one: the first chunk follows, with the cookie.
            let (mut t, now) = tunnel_with_cookie(10, None);
            let next = header_of(&t.poll_query(Instant(now)).unwrap().name);
            assert_eq!(
                (next.kind, next.cookie),
                (QueryKind::LastData, Cookie([9; 5]))
            );
        }
        AnswerStatus::Probe => {
            for (whole, limit) in [(true, 1232), (false, 512)] {
                // The probe comes when the first piece of a response leaves polls to do that
                // larger answers make fewer: 1,700 bytes take 4 polls at 512, 2 at 1,232.
                let (mut t, now) = tunnel_with_cookie(10, Some(1232));
                let last = t.poll_query(Instant(now)).unwrap();
                assert_eq!(last.kind, QueryKind::LastData);
                let piece = AnswerPayload {
                    status: AnswerStatus::Data,
                    length: 2000,
                    body: vec![1; 300],
                };
                assert_eq!(answer(&mut t, now + 5, &last, &piece), Handled::Accepted);
                let q = t.poll_query(Instant(now + 20)).unwrap();
                assert_eq!(q.kind, QueryKind::Probe);
                let mut n = body_capacity(AnswerLimit::from_bytes(1232).unwrap(), q.name.len() + 2);
                if !whole {
                    n -= 1;
                }
                let filler = AnswerPayload {
                    status,
                    length: 0,
                    body: probe_filler(n),
                };
                assert_eq!(answer(&mut t, now + 25, &q, &filler), Handled::Accepted);
                assert_eq!(t.answer_limit().bytes(), limit);
                let poll = header_of(&t.poll_query(Instant(now + 40)).unwrap().name);
                assert_eq!(
                    (poll.kind, poll.position, poll.limit.bytes()),
                    (QueryKind::Poll, 300, limit)
                );
            }
        }
        AnswerStatus::BadCookie => {
            let (mut t, now) = tunnel_with_cookie(300, None);
            let q = t.poll_query(Instant(now)).unwrap();
            assert_eq!(
                answer(&mut t, now + 5, &q, &status_only(0)),
                Handled::Accepted
            );
            let c = t.poll_query(Instant(now + 20)).unwrap();
            assert_eq!(c.kind, QueryKind::Cookie);
            let cookie = AnswerPayload {
                status: AnswerStatus::Cookie,
                length: 0,
                body: vec![4; 5],
            };
            assert_eq!(answer(&mut t, now + 25, &c, &cookie), Handled::Accepted);
            let again = header_of(&t.poll_query(Instant(now + 40)).unwrap().name);
            assert_eq!(
                (again.kind, again.position, again.attempt, again.cookie),
                (QueryKind::Data, 0, 1, Cookie([4; 5]))
            );
        }
        AnswerStatus::RateLimited => {
            let (mut t, now) = tunnel_with_cookie(300, None);
            let q = t.poll_query(Instant(now)).unwrap();
            assert_eq!(
                answer(&mut t, now + 5, &q, &status_only(5)),
                Handled::Accepted
            );
            assert_eq!(t.poll_query(Instant(now + 5 + 4_999)), None);
            let again = header_of(&t.poll_query(Instant(now + 5 + 5_000)).unwrap().name);
            assert_eq!(
                (again.kind, again.position, again.attempt),
                (QueryKind::Data, 0, 1)
            );
            // Longer than the longest wait (120 s): the device gives up.
            let (mut t, now) = tunnel_with_cookie(300, None);
            let q = t.poll_query(Instant(now)).unwrap();
            assert_eq!(
                answer(&mut t, now + 5, &q, &status_only(121)),
                Handled::Accepted
            );
            assert_eq!(
                t.poll_event(),
                Some(TunnelEvent::Failed(TunnelFailure::RateLimited))
            );
        }
        AnswerStatus::Incomplete => {
            let (mut t, mut now) = tunnel_with_cookie(300, None);
            for _ in 0..2 {
                let q = t.poll_query(Instant(now)).unwrap();
                assert_eq!(q.kind, QueryKind::Data);
                let ack = AnswerPayload::status(AnswerStatus::Ack, 0);
                assert_eq!(answer(&mut t, now + 5, &q, &ack), Handled::Accepted);
                now += 20;
            }
            let last = t.poll_query(Instant(now)).unwrap();
            assert_eq!(last.kind, QueryKind::LastData);
            assert_eq!(
                answer(&mut t, now + 5, &last, &status_only(0)),
                Handled::Accepted
            );
            let again = header_of(&t.poll_query(Instant(now + 20)).unwrap().name);
            assert_eq!(
                (again.kind, again.position, again.attempt),
                (QueryKind::Data, 0, 1)
            );
        }
        AnswerStatus::NoResponse => {
            let (mut t, now) = tunnel_with_cookie(300, None);
            let q = t.poll_query(Instant(now)).unwrap();
            assert!(matches!(
                answer(&mut t, now + 5, &q, &status_only(0)),
                Handled::Unusable(_)
            ));
            // Not at once: when the query's timeout (1 s for attempt 0) runs out.
            assert_eq!(t.poll_timeout(), Some(Instant(now + 1000)));
            assert_eq!(t.poll_query(Instant(now + 999)), None);
            t.handle_timeout(Instant(now + 1000));
            let again = header_of(&t.poll_query(Instant(now + 1000)).unwrap().name);
            assert_eq!(
                (again.kind, again.position, again.attempt),
                (QueryKind::Data, 0, 1)
            );
        }
        AnswerStatus::TooLarge
        | AnswerStatus::ChunkConflict
        | AnswerStatus::BadOffset
        | AnswerStatus::TunnelFull => {
            let (mut t, now) = tunnel_with_cookie(300, None);
            let q = t.poll_query(Instant(now)).unwrap();
            assert_eq!(
                answer(&mut t, now + 5, &q, &status_only(0)),
                Handled::Accepted
            );
            assert_eq!(
                t.poll_event(),
                Some(TunnelEvent::Failed(TunnelFailure::Refused(status)))
            );
            assert_eq!(t.poll_query(Instant(now + 1_000_000)), None);
        }
    }
}

#[test]
fn the_device_does_what_the_status_table_says() {
    let rows = table(&section(), "| code | status | length | body | the device |");
    for row in &rows {
        let code = u8::from_str_radix(row[0].trim_start_matches("0x"), 16).unwrap();
        let status = AnswerStatus::from_u8(code).unwrap();
        let says = match status {
            AnswerStatus::Ack => "sends the next chunk",
            AnswerStatus::Data => "polls from the next offset",
            AnswerStatus::Cookie => "keeps the cookie",
            AnswerStatus::Probe => "uses the limit probed if the filler is whole, else 512",
            AnswerStatus::BadCookie => "asks for a new cookie, then sends the query it was at",
            AnswerStatus::RateLimited => "waits `length` seconds, then sends the query again",
            AnswerStatus::Incomplete => "sends the message again from chunk 0",
            AnswerStatus::NoResponse => "sends the query again",
            _ => "gives up on the message",
        };
        assert!(
            row[4].contains(says),
            "{status:?}: the table says `{}`",
            row[4]
        );
        device_behaviour(status);
    }
}

// ---- Sizes ----

#[test]
fn name_capacity_matches_the_code() {
    let section = section();
    let prose = prose();
    let rows = table(
        &section,
        "| zone | characters | data bytes per query | name octets |",
    );
    for row in &rows {
        let name = row[0].trim_matches('`');
        let zone = Zone::new(name).unwrap();
        assert_eq!(number(&row[1]), name.len(), "{name}");
        let n = max_data_per_query(&zone);
        assert_eq!(number(&row[2]), n, "{name}: data bytes per query");
        assert_eq!(number(&row[3]), name_wire_len(&zone, n), "{name}: octets");
        // The formula W(n) as the section writes it.
        for bytes in 0..=255usize {
            let c = (8 * bytes).div_ceil(5);
            let w = (name.len() + 2) + 25 + c + c.div_ceil(63);
            assert_eq!(w, name_wire_len(&zone, bytes), "{name}: W({bytes})");
        }
    }
    assert!(
        rows.iter().any(|r| number(&r[1]) == 30),
        "a 30-character zone"
    );
    let z = zone();
    let w0 = name_wire_len(&z, 0);
    assert!(prose.contains(&format!("under `zt.test` takes W(0) = {w0} octets")));
    // The longest zone still carries a byte.
    assert!(prose.contains("leave room for one byte of data: at most 225 characters"));
    let longest = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(33)
    );
    assert_eq!(longest.len(), 225);
    assert_eq!(max_data_per_query(&Zone::new(&longest).unwrap()), 1);
    assert!(Zone::new(&format!("{longest}d")).is_err());
    for needle in [
        format!(
            "{HEADER_LEN}-byte header (19.3) in base32: {HEADER_LABEL_LEN} characters (120 bits, no spare bit)"
        ),
        format!("at most {MAX_NAME_OCTETS} octets on the wire"),
        format!("cut into {MAX_LABEL}-character pieces"),
    ] {
        assert!(prose.contains(&needle), "19 lacks `{needle}`");
    }
}

/// `body_capacity` as the section writes it: the largest payload whose strings fit what is left
/// of the limit, less status and length.
fn spec_body_capacity(limit: usize, q: usize) -> usize {
    let o = if limit > 512 { 11 } else { 0 };
    let r = limit.saturating_sub(28 + o + q);
    let fits = |p: usize| p + p.div_ceil(255).max(1) <= r;
    (0..=r)
        .rev()
        .find(|&p| fits(p))
        .map_or(0, |p| p.saturating_sub(3))
}

#[test]
fn answer_size_rule_and_figures_match_the_code() {
    let section = section();
    let prose = prose();
    assert_eq!(ANSWER_OVERHEAD, 28);
    assert_eq!(OPT_RECORD, 11);
    assert_eq!(PAYLOAD_HEADER_LEN, 3);
    for needle in [
        "`ANSWER_OVERHEAD` = 12 + 4 + 12 = 28",
        "(2 + 2 + 2 + 4 + 2 = 12)",
        "(1 + 2 + 2 + 4 + 2 = 11)",
        "o = 11 if L > 512, else 0",
        "R = L − 28 − o − q",
        "body_capacity(L, q) = max(0, p − 3)",
    ] {
        assert!(prose.contains(needle), "19 lacks `{needle}`");
    }
    for units in 32..=255usize {
        let limit = AnswerLimit::from_bytes(units * 16).unwrap();
        for q in 1..=255usize {
            assert_eq!(
                body_capacity(limit, q),
                spec_body_capacity(units * 16, q),
                "limit {units} units, question {q} octets"
            );
        }
    }
    let rows = table(
        &section,
        "| answer limit | question | question octets | body bytes |",
    );
    for row in &rows {
        let limit = AnswerLimit::from_bytes(number(&row[0])).unwrap();
        let q = number(&row[2]);
        assert_eq!(number(&row[3]), body_capacity(limit, q), "{row:?}");
        if row[1].contains("poll under `zt.test`") {
            assert_eq!(q, name_wire_len(&zone(), 0));
        }
        if row[1].contains("full-length") {
            assert_eq!(q, MAX_NAME_OCTETS);
        }
    }
    // A 300-byte body travels in two strings of 255 and 48 bytes.
    let strings = AnswerPayload {
        status: AnswerStatus::Data,
        length: 300,
        body: vec![0; 300],
    }
    .to_strings();
    assert_eq!(strings.iter().map(Vec::len).collect::<Vec<_>>(), [255, 48]);
    assert!(prose.contains("a string of 255 bytes and one of 48"));
}

// ---- Defaults and limits ----

#[test]
fn device_defaults_match_tunnel_config() {
    let rows = table(&section(), "| setting (`TunnelConfig`) | default |");
    let config = TunnelConfig::new(zone());
    let mut seen = 0;
    for row in &rows {
        let field = row[0]
            .split('`')
            .nth(1)
            .unwrap_or_else(|| panic!("no field in `{}`", row[0]));
        let value = &row[1];
        match field {
            "initial_timeout_ms" => assert_eq!(number(value) as u64, config.initial_timeout_ms),
            "max_timeout_ms" => assert_eq!(number(value) as u64, config.max_timeout_ms),
            "max_attempts" => assert_eq!(number(value), usize::from(config.max_attempts)),
            "pacing_ms" => assert_eq!(number(value) as u64, config.pacing_ms),
            "max_rate_wait_ms" => assert_eq!(number(value) as u64, config.max_rate_wait_ms),
            "edns_limit" => {
                assert!(value.starts_with("none"));
                assert_eq!(config.edns_limit, None);
            }
            other => panic!("unknown setting `{other}`"),
        }
        seen += 1;
    }
    assert_eq!(seen, 6);
    // The timeouts the section lists: min(first · 2^a, longest).
    assert!(prose().contains("by default 1, 2, 4, 8, 8 and 8 s"));
    let timeouts: Vec<u64> = (0..u32::from(config.max_attempts))
        .map(|a| (config.initial_timeout_ms << a).min(config.max_timeout_ms) / 1000)
        .collect();
    assert_eq!(timeouts, [1, 2, 4, 8, 8, 8]);
}

#[test]
fn spec_states_the_limits_and_constants() {
    let prose = prose();
    for needle in [
        format!(
            "A message is at most {} bytes (`MAX_MESSAGE_LEN`) in at most {MAX_CHUNKS} chunks",
            grouped(MAX_MESSAGE_LEN)
        ),
        format!("The message (1 to {} bytes;", grouped(MAX_MESSAGE_LEN)),
        format!(
            "a tunnel carries at most {MAX_MESSAGES} messages and a query has at most {MAX_ATTEMPTS} attempts"
        ),
        format!("transport number {} (DNS, section 5)", Transport::Dns as u8),
        "The timeout of attempt a is min(first timeout · 2^a, longest timeout)".to_owned(),
        "(6 by default, never more than 16)".to_owned(),
        // The lazy probe (19.6.2) and the wait after an unusable answer (19.6.5).
        "and the device has not probed yet, it sends a Probe query with limit L before its first poll"
            .to_owned(),
        "A device whose responses all fit the answers to their last chunks, or need one poll whatever the answer size, never probes"
            .to_owned(),
        "takes fewer polls in answers of L than in answers of 512 bytes".to_owned(),
        "it stays outstanding until its timeout runs out".to_owned(),
        format!(
            "longest wait (by default {} s:",
            TunnelConfig::new(zone()).max_rate_wait_ms / 1000
        ),
        // The threat model's sizes (19.9).
        format!(
            "Tunnel ids are {} bytes.",
            size_of::<TunnelId>()
        ),
        format!("Cookies are {} bits.", 8 * size_of::<Cookie>()),
        format!("about 2^{} queries on average per tunnel", 8 * size_of::<Cookie>() - 1),
    ] {
        assert!(prose.contains(&needle), "19 lacks `{needle}`");
    }
    assert_eq!(MAX_CHUNKS, 256);
    assert_eq!(MAX_ATTEMPTS, 16);
    assert_eq!(MAX_MESSAGES, 16);
    // A tunnel refuses a message longer than the limit, and takes one that long.
    let mut t = TunnelClient::new(
        TunnelConfig::new(zone()),
        &mut ChaCha20Rng::seed_from_u64(1),
    );
    let rng = &mut ChaCha20Rng::seed_from_u64(2);
    assert!(t.send(&vec![0; MAX_MESSAGE_LEN + 1], rng).is_err());
    assert!(t.send(&vec![0; MAX_MESSAGE_LEN], rng).is_ok());
    assert!(t.send(&[], rng).is_err());
    // The server's chunk limits (TunnelRecord).
    let mut record = TunnelRecord::default();
    assert!(record.add_chunk(0, MAX_CHUNKS, &[1]).is_err());
    assert!(record.add_chunk(0, MAX_CHUNKS - 1, &[1]).is_ok());
}

// ---- Query counts ----

/// Data bytes a name without a header carries at most under `zone` (the section's U).
fn headerless_capacity(zone: &str) -> usize {
    (0..=255usize)
        .rev()
        .find(|&n| headerless_wire_len(zone, n) <= 255)
        .unwrap()
}

/// W'(n): a name under `zone` carrying n bytes in data labels and nothing else.
fn headerless_wire_len(zone: &str, n: usize) -> usize {
    let c = (8 * n).div_ceil(5);
    (zone.len() + 2) + c + c.div_ceil(63)
}

/// The section's `ours(m, r)`.
fn ours(zone: &Zone, limit: AnswerLimit, m: usize, r: usize) -> usize {
    let d = max_data_per_query(zone);
    let chunks = m.div_ceil(d);
    let last = m - (chunks - 1) * d;
    let first_piece = body_capacity(limit, name_wire_len(zone, last));
    let poll = body_capacity(limit, name_wire_len(zone, 0));
    chunks + r.saturating_sub(first_piece).div_ceil(poll)
}

/// The section's `min(m, r)`.
fn minimum(zone: &str, limit: AnswerLimit, m: usize, r: usize) -> usize {
    let u = headerless_capacity(zone);
    let chunks = m.div_ceil(u);
    let last = m - (chunks - 1) * u;
    let a = |q: usize| body_capacity(limit, q) + 3;
    let first = a(headerless_wire_len(zone, last));
    let poll = a(zone.len() + 4);
    chunks + r.saturating_sub(first).div_ceil(poll)
}

/// Runs one message of `m` bytes through a `TunnelClient` against a server that answers by the
/// section's rules with a response of `r` bytes; the queries of each kind.
fn simulate(m: usize, r: usize, edns: Option<usize>) -> BTreeMap<QueryKind, usize> {
    let z = zone();
    let mut config = TunnelConfig::new(z.clone());
    config.edns_limit = edns.map(|l| AnswerLimit::from_bytes(l).unwrap());
    let mut t = TunnelClient::new(config, &mut ChaCha20Rng::seed_from_u64(3));
    let message: Vec<u8> = (0..m).map(|i| i as u8).collect();
    t.send(&message, &mut ChaCha20Rng::seed_from_u64(4))
        .unwrap();
    let mut record = TunnelRecord::default();
    let response = vec![0x5a; r];
    let mut counts = BTreeMap::new();
    let mut now = 0u64;
    loop {
        match t.poll_event() {
            Some(TunnelEvent::Response(got)) => {
                assert_eq!(got, response);
                return counts;
            }
            Some(TunnelEvent::Failed(f)) => panic!("{f:?}"),
            None => {}
        }
        now = now.max(t.poll_timeout().unwrap().0);
        let q = t.poll_query(Instant(now)).expect("a query due");
        *counts.entry(q.kind).or_insert(0) += 1;
        let NameKind::Query(query) = Query::classify(&q.name, &z).unwrap() else {
            panic!("not a query")
        };
        let h = query.header;
        let capacity = body_capacity(h.limit, q.name.len() + 2);
        let piece = |offset: usize| AnswerPayload {
            status: AnswerStatus::Data,
            length: u16::try_from(r).unwrap(),
            body: response[offset..(offset + capacity).min(r)].to_vec(),
        };
        let payload = match h.kind {
            QueryKind::Cookie => AnswerPayload {
                status: AnswerStatus::Cookie,
                length: 0,
                body: vec![1; 5],
            },
            QueryKind::Probe => AnswerPayload {
                status: AnswerStatus::Probe,
                length: 0,
                body: probe_filler(capacity),
            },
            QueryKind::Data => {
                record
                    .add_chunk(h.message, h.position, &query.data)
                    .unwrap();
                AnswerPayload::status(AnswerStatus::Ack, 0)
            }
            QueryKind::LastData => {
                record
                    .add_chunk(h.message, h.position, &query.data)
                    .unwrap();
                assert_eq!(record.assemble(h.message, h.position).unwrap(), message);
                piece(0)
            }
            QueryKind::Poll => piece(usize::from(h.position)),
        };
        now += 20;
        let handled = t.handle_answer(Instant(now), &q.name, Reply::Txt(payload.to_strings()));
        assert_eq!(handled, Handled::Accepted);
    }
}

#[test]
fn query_counts_match_the_formula_and_the_tunnel() {
    let section = section();
    let prose = prose();
    let rows = table(
        &section,
        "| exchange | answer limit | up | down | our queries | minimum |",
    );
    let z = zone();
    let mut session = (0, 0);
    for row in &rows {
        let limit_bytes = number(&row[1]);
        let limit = AnswerLimit::from_bytes(limit_bytes).unwrap();
        let (m, r) = (number(&row[2]), number(&row[3]));
        let ours = ours(&z, limit, m, r);
        assert_eq!(number(&row[4]), ours, "{row:?}: our queries");
        assert_eq!(
            number(&row[5]),
            minimum("zt.test", limit, m, r),
            "{row:?}: minimum"
        );
        // The tunnel itself: the formula's queries, one cookie request, and with EDNS a probe
        // if the rest after the answer to the last chunk (cut at 512 bytes: the probe comes
        // after it) takes fewer polls at the EDNS size than at 512.
        let edns = (limit_bytes != 512).then_some(limit_bytes);
        let counts = simulate(m, r, edns);
        let d = max_data_per_query(&z);
        let first_at_512 = body_capacity(
            AnswerLimit::CLASSIC,
            name_wire_len(&z, m - (m.div_ceil(d) - 1) * d),
        );
        let rest = r.saturating_sub(first_at_512);
        let polls = |limit: usize| {
            let poll = body_capacity(
                AnswerLimit::from_bytes(limit).unwrap(),
                name_wire_len(&z, 0),
            );
            rest.div_ceil(poll)
        };
        let probes = edns.filter(|&l| polls(l) < polls(512)).map(|_| 1);
        let moved: usize = [QueryKind::Data, QueryKind::LastData, QueryKind::Poll]
            .iter()
            .map(|k| counts.get(k).copied().unwrap_or(0))
            .sum();
        assert_eq!(moved, ours, "{row:?}: the tunnel's queries");
        assert_eq!(counts.get(&QueryKind::Cookie), Some(&1));
        assert_eq!(counts.get(&QueryKind::Probe).copied(), probes);
        if row[0].starts_with("hello") || row[0].starts_with("credential request") {
            session.0 += ours;
            session.1 += number(&row[5]);
        }
    }
    let (d, u) = (max_data_per_query(&z), headerless_capacity("zt.test"));
    for needle in [
        format!(
            "with the cookie request, {} queries without EDNS, against a minimum of {}",
            session.0 + 1,
            session.1
        ),
        format!("({d} bytes a query instead of {u})"),
        "one probe the first time a response needs fewer polls at its EDNS size than at 512 bytes"
            .to_owned(),
        format!("(the largest n with W'(n) ≤ 255: {u} under `zt.test`)"),
    ] {
        assert!(prose.contains(&needle), "19 lacks `{needle}`");
    }
}

/// The server's limits (19.7) and its advertised EDNS size (19.5), when the server is built.
#[cfg(feature = "server")]
#[test]
fn server_limits_table_matches_the_server() {
    use std::time::Duration;
    use zerotouch_dns::server::MAX_UDP_PAYLOAD;
    use zerotouch_dns::{DnsServerConfig, QueryLimit};

    let rows = table(&section(), "| counted | default | kept |");
    let config = DnsServerConfig::new(zone(), "127.0.0.1:0".parse().unwrap());
    let per = |cell: &str| -> Duration {
        match cell {
            c if c.ends_with("a minute") => Duration::from_secs(60),
            c if c.ends_with("in 10 minutes") => Duration::from_secs(600),
            c => panic!("a window in `{c}`"),
        }
    };
    for row in &rows {
        let limit = match row[0].as_str() {
            c if c.starts_with("queries per client address") => config.per_client,
            "queries per tunnel" => config.per_tunnel,
            "cookie requests per client address" => config.cookie_requests_per_client,
            other => panic!("unknown limit `{other}`"),
        };
        let stated = QueryLimit {
            queries: number(&row[1]) as u64,
            window: per(&row[1]),
        };
        assert_eq!(limit, stated, "{}", row[0]);
    }
    assert_eq!(rows.len(), 3);
    let prose = prose();
    assert!(prose.contains("The record is kept 10 minutes after its last change"));
    assert_eq!(config.tunnel_ttl, Duration::from_secs(600));
    assert!(prose.contains(&format!(
        "an OPT record advertising {} bytes",
        grouped(usize::from(MAX_UDP_PAYLOAD))
    )));
}
