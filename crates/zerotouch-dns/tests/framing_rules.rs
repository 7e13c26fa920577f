#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The framing's rules, one test per rule: query names (base32 read in any case, 255 octets and
//! 63-character labels, canonical encodings only, QNAME-minimisation probes told apart from
//! queries by the header's count of data labels, headers with unknown or unused fields
//! refused), answers (TXT strings cut at 255,
//! statuses, the body capacity that keeps the resolver's answer within the device's limit, the
//! probe's filler) and the tunnel record the server keeps between queries.

use data_encoding::BASE32_NOPAD;
use proptest::prelude::*;
use zerotouch_dns::answer::{ANSWER_OVERHEAD, PAYLOAD_HEADER_LEN, is_probe_filler, probe_filler};
use zerotouch_dns::header::{HEADER_LABEL_LEN, HEADER_LEN, MAX_DATA_LABELS};
use zerotouch_dns::name::{MAX_LABEL, MAX_NAME_OCTETS, name_wire_len};
use zerotouch_dns::tunnel_record::{AddChunkError, MAX_CHUNKS, MAX_MESSAGE_LEN};
use zerotouch_dns::*;

const ALL_KINDS: [QueryKind; 5] = [
    QueryKind::Cookie,
    QueryKind::Data,
    QueryKind::LastData,
    QueryKind::Poll,
    QueryKind::Probe,
];

/// A zone name of exactly `len` characters, in labels of at most 63.
fn zone_name(len: usize) -> String {
    let mut labels = Vec::new();
    let mut rest = len;
    let mut letter = b'a';
    while rest > MAX_LABEL {
        let take = MAX_LABEL.min(rest - 2);
        labels.push(String::from_utf8(vec![letter; take]).unwrap());
        rest -= take + 1;
        letter += 1;
    }
    labels.push(String::from_utf8(vec![letter; rest]).unwrap());
    let name = labels.join(".");
    assert_eq!(name.len(), len);
    name
}

/// Zones from short to the longest [`Zone::new`] accepts.
fn zones() -> Vec<Zone> {
    let mut zones = vec![
        Zone::new("zt.example.com").unwrap(),
        Zone::new("a.b").unwrap(),
        Zone::new("dns-tunnel.zerotouch.devices.example.org").unwrap(),
    ];
    for len in [
        1,
        63,
        64,
        100,
        127,
        150,
        180,
        200,
        210,
        219,
        longest_zone_len(),
    ] {
        zones.push(Zone::new(&zone_name(len)).unwrap());
    }
    zones
}

/// The longest zone name [`Zone::new`] accepts.
fn longest_zone_len() -> usize {
    (1..=253)
        .rev()
        .find(|&len| Zone::new(&zone_name(len)).is_ok())
        .unwrap()
}

fn zone() -> Zone {
    Zone::new("zt.example.com").unwrap()
}

/// A header of `kind` whose unused fields are zero and whose used ones are not.
fn header(kind: QueryKind) -> QueryHeader {
    QueryHeader {
        kind,
        tunnel: TunnelId([0xa1, 0xb2, 0xc3, 0xd4, 0xe5]),
        cookie: if kind == QueryKind::Cookie {
            Cookie::default()
        } else {
            Cookie([9, 8, 7, 6, 5])
        },
        message: 11,
        attempt: 7,
        position: match kind {
            QueryKind::Data | QueryKind::LastData => 3,
            QueryKind::Poll => 1234,
            _ => 0,
        },
        limit: AnswerLimit::from_bytes(1232).unwrap(),
    }
}

/// The header label of `h` declaring `labels` data labels.
fn header_label(h: &QueryHeader, labels: u8) -> String {
    b32(&h.to_bytes(labels))
}

fn query(kind: QueryKind, data: Vec<u8>) -> Query {
    Query {
        header: header(kind),
        data,
    }
}

fn data_query(len: usize) -> Query {
    query(
        QueryKind::Data,
        (0..len).map(|i| (i * 37 + 11) as u8).collect(),
    )
}

fn b32(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes).to_ascii_lowercase()
}

/// A name with the header label `header` and the data `labels` (nearest the header first).
fn name_with(zone: &Zone, header: &str, labels: &[&str]) -> String {
    let mut parts: Vec<&str> = labels.iter().rev().copied().collect();
    parts.push(header);
    parts.push(zone.as_str());
    parts.join(".")
}

/// The labels below the zone, nearest the zone first (header, then data labels).
fn labels_below(name: &str, zone: &Zone) -> Vec<String> {
    let below = &name[..name.len() - zone.as_str().len() - 1];
    below.split('.').rev().map(str::to_owned).collect()
}

fn classify(name: &str) -> Result<NameKind, DnsError> {
    Query::classify(name, &zone())
}

fn decoded(name: &str, zone: &Zone) -> Query {
    match Query::classify(name, zone) {
        Ok(NameKind::Query(q)) => q,
        other => panic!("{name}: {other:?}"),
    }
}

/// Queries of every kind, data queries of several lengths.
fn sample_queries(zone: &Zone) -> Vec<Query> {
    let mut queries: Vec<Query> = [QueryKind::Cookie, QueryKind::Poll, QueryKind::Probe]
        .into_iter()
        .map(|k| query(k, vec![]))
        .collect();
    for len in [1, 2, 5, 39, 40, 41, 100, max_data_per_query(zone)] {
        queries.push(data_query(len));
        let mut last = data_query(len);
        last.header.kind = QueryKind::LastData;
        queries.push(last);
    }
    queries
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Resolvers flip the case of each letter at random (0x20): the name still decodes to the
    /// same query.
    #[test]
    fn names_survive_0x20_case_randomisation(which in 0usize..19, flips in proptest::collection::vec(any::<bool>(), 255)) {
        let zone = zone();
        let queries = sample_queries(&zone);
        let q = &queries[which % queries.len()];
        let name = q.to_name(&zone).unwrap();
        let flipped: String = name
            .chars()
            .zip(flips.iter().cycle())
            .map(|(c, &flip)| if flip { c.to_ascii_uppercase() } else { c })
            .collect();
        prop_assert_eq!(Query::classify(&flipped, &zone), Ok(NameKind::Query(q.clone())));
    }

    /// Whatever a header and data say, the name decodes to them again.
    #[test]
    fn names_round_trip(
        kind in 0usize..5,
        tunnel in any::<[u8; 5]>(),
        cookie in any::<[u8; 5]>(),
        message in 0u8..16,
        attempt in 0u8..16,
        position in any::<u16>(),
        units in 32u8..=255,
        data in proptest::collection::vec(any::<u8>(), 1..=128),
    ) {
        let zone = zone();
        let kind = ALL_KINDS[kind];
        let carries_data = matches!(kind, QueryKind::Data | QueryKind::LastData);
        let data = if carries_data { data } else { vec![] };
        let q = Query {
            header: QueryHeader {
                kind,
                tunnel: TunnelId(tunnel),
                cookie: if kind == QueryKind::Cookie { Cookie::default() } else { Cookie(cookie) },
                message,
                attempt,
                position: if carries_data || kind == QueryKind::Poll { position } else { 0 },
                limit: AnswerLimit::from_bytes(usize::from(units) * 16).unwrap(),
            },
            data,
        };
        let name = q.to_name(&zone).unwrap();
        prop_assert_eq!(name.clone(), name.to_ascii_lowercase());
        prop_assert_eq!(Query::classify(&name, &zone), Ok(NameKind::Query(q)));
    }
}

/// A resolver that upper-cases the whole name (or adds the root's dot) changes nothing.
#[test]
fn upper_case_names_decode() {
    let zone = zone();
    for q in sample_queries(&zone) {
        let name = q.to_name(&zone).unwrap();
        assert_eq!(
            name,
            name.to_ascii_lowercase(),
            "names are written lower-case"
        );
        let upper = name.to_ascii_uppercase();
        assert_eq!(decoded(&upper, &zone), q);
        assert_eq!(decoded(&format!("{upper}."), &zone), q);
        assert_eq!(decoded(&format!("{name}."), &zone), q);
    }
}

/// Under zones of every length up to the longest accepted, every data length up to
/// `max_data_per_query` gives a name of at most 255 octets on the wire, labels of at most 63
/// characters, split at 63 with only the outermost one shorter, and one more byte does not fit.
#[test]
fn every_name_fits_255_octets_and_63_char_labels() {
    for zone in zones() {
        let max = max_data_per_query(&zone);
        assert!(
            max >= 1,
            "zone of {} octets carries no data",
            zone.wire_len()
        );
        assert!(max <= 255);
        assert!(name_wire_len(&zone, max + 1) > MAX_NAME_OCTETS || max == 255);
        for len in 1..=max {
            for kind in [QueryKind::Data, QueryKind::LastData] {
                let mut q = data_query(len);
                q.header.kind = kind;
                let name = q.to_name(&zone).unwrap();
                let wire = name.len() + 2;
                assert!(wire <= MAX_NAME_OCTETS, "{wire} octets: {name}");
                assert_eq!(wire, name_wire_len(&zone, len));
                // On the wire: one length octet per label, the root's zero octet.
                let octets: usize = name.split('.').map(|l| l.len() + 1).sum::<usize>() + 1;
                assert_eq!(octets, wire);
                let labels = labels_below(&name, &zone);
                assert_eq!(labels[0].len(), HEADER_LABEL_LEN);
                let data = &labels[1..];
                // The header's first byte counts the data labels (bits 5 to 3).
                let head = BASE32_NOPAD
                    .decode(labels[0].to_ascii_uppercase().as_bytes())
                    .unwrap();
                assert_eq!(usize::from((head[0] >> 3) & 0x07), data.len());
                assert!(data.len() <= usize::from(MAX_DATA_LABELS));
                for (i, label) in data.iter().enumerate() {
                    assert!(!label.is_empty() && label.len() <= MAX_LABEL);
                    if i + 1 < data.len() {
                        assert_eq!(
                            label.len(),
                            MAX_LABEL,
                            "only the outermost label is shorter"
                        );
                    }
                }
                assert_eq!(decoded(&name, &zone), q);
            }
        }
    }
}

/// The longest zone accepted still carries a data byte per query; one character more is
/// refused as too long.
#[test]
fn zones_leaving_no_room_for_data_are_refused() {
    let longest = longest_zone_len();
    let zone = Zone::new(&zone_name(longest)).unwrap();
    assert!(max_data_per_query(&zone) >= 1);
    assert_eq!(
        Zone::new(&zone_name(longest + 1)),
        Err(DnsError::ZoneTooLong(longest + 3))
    );
    for bad in [
        "",
        ".",
        "a..b",
        "a_b.example",
        "ex ample.com",
        &"a".repeat(64),
    ] {
        assert_eq!(Zone::new(bad), Err(DnsError::InvalidZone), "{bad:?}");
    }
    assert_eq!(
        Zone::new("ZT.Example.COM.").unwrap(),
        zone_for("zt.example.com")
    );
}

fn zone_for(name: &str) -> Zone {
    Zone::new(name).unwrap()
}

/// More data than one query carries is refused when written; a header declaring more data
/// labels than a name under the zone holds (or than four, under any zone) is refused when read,
/// whole or as a QNAME-minimisation probe (no name of the binding spells it).
#[test]
fn data_beyond_capacity_is_refused() {
    for zone in zones() {
        let max = max_data_per_query(&zone);
        assert_eq!(
            data_query(max + 1).to_name(&zone),
            Err(DnsError::NameTooLong(name_wire_len(&zone, max + 1)))
        );
        let mut q = data_query(1);
        q.data = vec![1; 256];
        assert_eq!(
            q.to_name(&zone),
            Err(DnsError::NameTooLong(name_wire_len(&zone, 256)))
        );
        let name = data_query(max).to_name(&zone).unwrap();
        assert!(matches!(
            Query::classify(&name, &zone),
            Ok(NameKind::Query(_))
        ));
        let labels = labels_below(&name, &zone);
        let held = labels.len() - 1;
        for declared in held + 1..=usize::from(MAX_DATA_LABELS) {
            let head = header_label(&header(QueryKind::Data), u8::try_from(declared).unwrap());
            let refs: Vec<&str> = labels[1..].iter().map(String::as_str).collect();
            for data in [&refs[..], &refs[..1], &[]] {
                assert_eq!(
                    Query::classify(&name_with(&zone, &head, data), &zone),
                    Err(DnsError::BadHeader(
                        "more data labels than a name under the zone holds"
                    )),
                    "{declared} labels declared under a zone holding {held}"
                );
            }
        }
    }
    // Five to seven data labels: no 255-octet name holds them.
    let zone = zone();
    for declared in MAX_DATA_LABELS + 1..=7 {
        let head = header_label(&header(QueryKind::Data), declared);
        assert_eq!(
            classify(&name_with(&zone, &head, &["aa"])),
            Err(DnsError::BadHeader("more than four data labels"))
        );
        assert!(QueryHeader::from_bytes(&header(QueryKind::Data).to_bytes(declared)).is_err());
    }
    // A name over 255 octets (no resolver sends one) is refused even when its labels agree.
    let long = Zone::new(&zone_name(200)).unwrap();
    assert_eq!(max_data_per_query(&long), 16, "one data label");
    let q = data_query(39);
    let text = b32(&q.data);
    assert_eq!(text.len(), MAX_LABEL);
    let name = name_with(&long, &header_label(&q.header, 1), &[&text]);
    assert!(name.len() + 2 > MAX_NAME_OCTETS);
    assert_eq!(
        Query::classify(&name, &long),
        Err(DnsError::NameTooLong(name_wire_len(&long, 39)))
    );
}

/// Base32 with spare bits set, padding, or characters outside the alphabet is refused: one
/// name, one meaning.
#[test]
fn non_canonical_base32_is_refused() {
    let zone = zone();
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let set_low_bits = |label: &str, bits: u8| -> String {
        let mut b = label.as_bytes().to_vec();
        let last = b.last_mut().unwrap();
        let v = ALPHABET.iter().position(|c| c == last).unwrap() as u8;
        assert_eq!(v & bits, 0, "the spare bits are zero in a canonical label");
        *last = ALPHABET[usize::from(v | bits)];
        String::from_utf8(b).unwrap()
    };
    // The header: 15 bytes in exactly 24 characters, no spare bit; any other length, or
    // padding, is refused.
    let q = data_query(1);
    let name = q.to_name(&zone).unwrap();
    let labels = labels_below(&name, &zone);
    assert_eq!(HEADER_LEN * 8, HEADER_LABEL_LEN * 5);
    for (head, expected) in [
        (
            labels[0][..23].to_owned(),
            DnsError::BadHeader("header label length"),
        ),
        (
            format!("{}a", labels[0]),
            DnsError::BadHeader("header label length"),
        ),
        (format!("{}========", &labels[0][..16]), DnsError::NotBase32),
    ] {
        let bad = name_with(&zone, &head, &[&labels[1]]);
        assert_eq!(classify(&bad), Err(expected.clone()), "{head}");
        assert_eq!(classify(&bad.to_ascii_uppercase()), Err(expected));
    }
    // Data: 1 byte in 2 characters (2 spare bits), 2 in 4 (4), 3 in 5 (1), 4 in 7 (3).
    for (len, spare) in [(1, 0b11), (2, 0b1111), (3, 0b1), (4, 0b111), (41, 0b11)] {
        let name = data_query(len).to_name(&zone).unwrap();
        let labels = labels_below(&name, &zone);
        let mut data: Vec<String> = labels[1..].to_vec();
        let last = data.len() - 1;
        for bit in [1, spare] {
            data[last] = set_low_bits(&labels[labels.len() - 1], bit);
            let refs: Vec<&str> = data.iter().map(String::as_str).collect();
            let bad = name_with(&zone, &labels[0], &refs);
            assert_eq!(
                classify(&bad),
                Err(DnsError::NotBase32),
                "{len} bytes, bits {bit:#b}"
            );
        }
    }
    // Characters outside the alphabet, padding.
    let name = data_query(5).to_name(&zone).unwrap();
    let labels = labels_below(&name, &zone);
    for c in ['0', '1', '8', '9', '=', '-', '_', 'é'] {
        let mut data = labels[1].clone();
        data.replace_range(..1, &c.to_string());
        let bad = name_with(&zone, &labels[0], &[&data]);
        assert_eq!(
            classify(&bad),
            Err(DnsError::NotBase32),
            "{c:?} in a data label"
        );
        let mut head = labels[0].clone();
        head.replace_range(..1, &c.to_string());
        let bad = name_with(&zone, &head, &[&labels[1]]);
        let expected = if c.len_utf8() == 1 {
            DnsError::NotBase32
        } else {
            DnsError::BadHeader("header label length")
        };
        assert_eq!(classify(&bad), Err(expected), "{c:?} in the header label");
    }
    // 1 byte with padding: "xx======" is not how the binding writes it.
    let bad = name_with(&zone, &labels[0], &[&format!("{}======", &labels[1][..2])]);
    assert!(classify(&bad).is_err());
}

/// A QNAME-minimising resolver asks for the name one label at a time from the zone down:
/// every strict prefix of a query's labels is the apex or an intermediate name, never an
/// error, in any case.
#[test]
fn a_name_with_a_missing_data_label_is_intermediate() {
    for zone in zones() {
        let max = max_data_per_query(&zone);
        for len in [1, 39, 40, 41, 79, 80, max] {
            if len > max {
                continue;
            }
            let q = data_query(len);
            let name = q.to_name(&zone).unwrap();
            let labels = labels_below(&name, &zone);
            assert!(labels.len() >= 2);
            assert_eq!(Query::classify(zone.as_str(), &zone), Ok(NameKind::Apex));
            for k in 1..labels.len() {
                let data: Vec<&str> = labels[1..k].iter().map(String::as_str).collect();
                let prefix = name_with(&zone, &labels[0], &data);
                assert_eq!(
                    Query::classify(&prefix, &zone),
                    Ok(NameKind::Intermediate),
                    "{len} bytes, {k} of {} labels",
                    labels.len()
                );
                assert_eq!(
                    Query::classify(&prefix.to_ascii_uppercase(), &zone),
                    Ok(NameKind::Intermediate)
                );
            }
            assert_eq!(decoded(&name, &zone), q);
        }
    }
    // Queries without data are whole with the header label alone.
    let zone = zone();
    for kind in [QueryKind::Cookie, QueryKind::Poll, QueryKind::Probe] {
        let q = query(kind, vec![]);
        assert_eq!(decoded(&q.to_name(&zone).unwrap(), &zone), q);
    }
}

/// A label beyond those the header declares is refused.
#[test]
fn extra_labels_are_refused() {
    let zone = zone();
    for q in sample_queries(&zone) {
        let name = q.to_name(&zone).unwrap();
        let data_labels = labels_below(&name, &zone).len() - 1;
        for extra in ["a", "aa", "aaaaaaaa", "www"] {
            let longer = format!("{extra}.{name}");
            if longer.len() + 2 > MAX_NAME_OCTETS {
                continue;
            }
            assert_eq!(
                classify(&longer),
                Err(DnsError::LabelCount {
                    declared: data_labels,
                    found: data_labels + 1,
                }),
                "{longer}"
            );
        }
    }
}

/// Data labels are split at 63 characters, only the outermost one shorter: any other split
/// of the same characters is refused.
#[test]
fn labels_not_split_at_63_are_refused() {
    let zone = zone();
    // 100 bytes: 160 characters in labels of 63, 63 and 34.
    let name = data_query(100).to_name(&zone).unwrap();
    let labels = labels_below(&name, &zone);
    let text: String = labels[1..].concat();
    assert_eq!(text.len(), 160);
    for split in [
        [62, 63, 35],
        [63, 62, 35],
        [64, 62, 34],
        [63, 64, 33],
        [34, 63, 63],
        [1, 63, 96],
    ] {
        let mut parts = Vec::new();
        let mut at = 0;
        for len in split {
            let end = (at + len).min(text.len());
            parts.push(&text[at..end]);
            at = end;
        }
        let bad = name_with(&zone, &labels[0], &parts);
        assert_eq!(classify(&bad), Err(DnsError::LabelSplit), "{split:?}");
    }
    // 41 bytes: 66 characters in labels of 63 and 3, not of 33 and 33.
    let name = data_query(41).to_name(&zone).unwrap();
    let labels = labels_below(&name, &zone);
    let text: String = labels[1..].concat();
    let bad = name_with(&zone, &labels[0], &[&text[..33], &text[33..]]);
    assert_eq!(classify(&bad), Err(DnsError::LabelSplit));
    // An empty label where data belongs.
    let bad = name_with(&zone, &labels[0], &[&text[..63], ""]);
    assert!(classify(&bad).is_err());
}

/// Versions other than 1 and kinds other than 1 to 5 are refused.
#[test]
fn unknown_version_or_kind_is_refused() {
    let zone = zone();
    let good = header(QueryKind::Poll).to_bytes(0);
    let name_of = |bytes: &[u8; HEADER_LEN]| name_with(&zone, &b32(bytes), &[]);
    assert!(matches!(classify(&name_of(&good)), Ok(NameKind::Query(_))));
    assert_eq!(
        good[0],
        (1 << 6) | QueryKind::Poll as u8,
        "version in bits 7-6"
    );
    for version in (0u8..4).filter(|&v| v != 1) {
        let mut b = good;
        b[0] = (version << 6) | (QueryKind::Poll as u8);
        assert_eq!(
            classify(&name_of(&b)),
            Err(DnsError::BadHeader("unknown version"))
        );
    }
    for kind in [0u8, 6, 7] {
        let mut b = good;
        b[0] = (1 << 6) | kind;
        assert_eq!(
            classify(&name_of(&b)),
            Err(DnsError::BadHeader("unknown kind"))
        );
    }
    // A header label of the wrong length, or of a whole number of other bytes.
    for label in [
        b32(&good[..14]),
        format!("{}a", b32(&good)),
        b32(&[good.as_slice(), &[0]].concat()),
    ] {
        assert!(matches!(
            classify(&name_with(&zone, &label, &[])),
            Err(DnsError::BadHeader(_) | DnsError::NotBase32)
        ));
    }
}

/// A kind's unused fields must be zero (no data labels or position where the kind carries
/// none, no cookie in a cookie request) and a data query must declare data labels.
#[test]
fn fields_a_kind_does_not_use_must_be_zero() {
    let zone = zone();
    let refused = |h: QueryHeader, labels: u8| {
        let name = name_with(&zone, &header_label(&h, labels), &[]);
        assert!(
            matches!(classify(&name), Err(DnsError::BadHeader(_))),
            "{h:?}, {labels} labels: {:?}",
            classify(&name)
        );
        assert!(QueryHeader::from_bytes(&h.to_bytes(labels)).is_err());
    };
    for kind in [QueryKind::Cookie, QueryKind::Poll, QueryKind::Probe] {
        for labels in [1, 4, 7] {
            refused(header(kind), labels);
        }
    }
    for kind in [QueryKind::Cookie, QueryKind::Probe] {
        refused(
            QueryHeader {
                position: 1,
                ..header(kind)
            },
            0,
        );
        refused(
            QueryHeader {
                position: 0x8000,
                ..header(kind)
            },
            0,
        );
    }
    refused(
        QueryHeader {
            cookie: Cookie([0, 0, 0, 0, 1]),
            ..header(QueryKind::Cookie)
        },
        0,
    );
    for kind in [QueryKind::Data, QueryKind::LastData] {
        refused(header(kind), 0);
        refused(header(kind), 5);
    }
    // The fields a kind uses may be anything.
    for (h, labels) in [
        (
            QueryHeader {
                position: u16::MAX,
                ..header(QueryKind::Poll)
            },
            0,
        ),
        (
            QueryHeader {
                position: u16::MAX,
                ..header(QueryKind::Data)
            },
            1,
        ),
        (
            QueryHeader {
                position: 7,
                ..header(QueryKind::LastData)
            },
            4,
        ),
        (
            QueryHeader {
                cookie: Cookie([0xff; 5]),
                ..header(QueryKind::Probe)
            },
            0,
        ),
    ] {
        assert_eq!(
            QueryHeader::from_bytes(&h.to_bytes(labels)),
            Ok((h, labels))
        );
    }
}

/// Answer limits are 512 to 4,080 bytes in 16-byte steps: a header or a configuration asking
/// for less than 512 is refused.
#[test]
fn answer_limit_below_512_is_refused() {
    for bytes in [0, 1, 16, 256, 500, 511] {
        assert_eq!(
            AnswerLimit::from_bytes(bytes),
            Err(DnsError::AnswerLimit(bytes))
        );
    }
    for bytes in [4096, 5000, usize::MAX] {
        assert_eq!(
            AnswerLimit::from_bytes(bytes),
            Err(DnsError::AnswerLimit(bytes))
        );
    }
    assert_eq!(AnswerLimit::from_bytes(512), Ok(AnswerLimit::CLASSIC));
    assert_eq!(AnswerLimit::from_bytes(527).unwrap().bytes(), 512);
    assert_eq!(AnswerLimit::from_bytes(1232).unwrap().bytes(), 1232);
    assert_eq!(AnswerLimit::from_bytes(4095).unwrap().bytes(), 4080);
    let zone = zone();
    let good = header(QueryKind::Poll).to_bytes(0);
    for units in [0u8, 1, 16, 31] {
        let mut b = good;
        b[HEADER_LEN - 1] = units;
        let name = name_with(&zone, &b32(&b), &[]);
        assert_eq!(classify(&name), Err(DnsError::BadHeader("answer limit")));
    }
    let mut b = good;
    b[HEADER_LEN - 1] = 32;
    assert!(matches!(
        classify(&name_with(&zone, &b32(&b), &[])),
        Ok(NameKind::Query(q)) if q.header.limit == AnswerLimit::CLASSIC
    ));
}

/// Names not under the zone are refused, however close.
#[test]
fn names_outside_the_zone_are_refused() {
    let zone = zone();
    let inside = data_query(5).to_name(&zone).unwrap();
    let head = &inside[..inside.len() - zone.as_str().len()];
    for name in [
        String::new(),
        ".".into(),
        "com".into(),
        "example.com".into(),
        "t.example.com".into(),
        "xzt.example.com".into(),
        format!("{head}example.com"),
        format!("{head}zt.example.org"),
        format!("{head}zt.example.com.evil"),
        format!("{head}zt.example.com.."),
        format!("{}xzt.example.com", &head[..head.len() - 1]),
        "zt.example.com.zt.example.org".into(),
        ".zt.example.com".into(),
        "a.zt.exämple.com".into(),
        // The zone's length from the end falls inside a two-byte character.
        "ézt.example.com".into(),
    ] {
        assert_eq!(classify(&name), Err(DnsError::OutsideZone), "{name:?}");
    }
}

/// The zone itself, in any case, with or without the root's dot, is the apex.
#[test]
fn the_zone_apex_is_apex() {
    for name in [
        "zt.example.com",
        "zt.example.com.",
        "ZT.EXAMPLE.COM",
        "zT.ExAmPlE.cOm.",
    ] {
        assert_eq!(classify(name), Ok(NameKind::Apex), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/// A payload is cut into 255-byte strings, the last one shorter (never empty), and reads back
/// as the same payload.
#[test]
fn answer_strings_are_cut_at_255_and_round_trip() {
    for len in (0..=1300).chain([4080 - 3, 4096]) {
        let payload = AnswerPayload {
            status: AnswerStatus::Data,
            length: 0xbeef,
            body: (0..len).map(|i| (i * 7) as u8).collect(),
        };
        let strings = payload.to_strings();
        let total = PAYLOAD_HEADER_LEN + len;
        assert_eq!(strings.len(), total.div_ceil(255));
        let (last, full) = strings.split_last().unwrap();
        assert!(full.iter().all(|s| s.len() == 255));
        assert!(!last.is_empty() && last.len() <= 255);
        assert_eq!(strings.concat()[..3], [0x01, 0xbe, 0xef]);
        assert_eq!(AnswerPayload::from_strings(&strings), Ok(payload));
    }
    for status in all_statuses() {
        let p = AnswerPayload::status(status, 7);
        assert_eq!(p.to_strings(), vec![vec![status as u8, 0, 7]]);
        assert_eq!(AnswerPayload::from_strings(&p.to_strings()), Ok(p));
    }
}

/// Only the last string may be shorter than 255 bytes; none may be longer; and the payload
/// holds at least the status and the length.
#[test]
fn payloads_with_short_inner_strings_are_refused() {
    let strings = AnswerPayload {
        status: AnswerStatus::Data,
        length: 600,
        body: vec![5; 600],
    }
    .to_strings();
    assert_eq!(strings.len(), 3);
    let cases: Vec<Vec<Vec<u8>>> = vec![
        vec![],
        vec![vec![]],
        vec![vec![1]],
        vec![vec![1, 0]],
        vec![vec![1; 254], vec![1; 10]],
        vec![vec![1; 256]],
        vec![vec![1; 255], vec![1; 256]],
        vec![
            strings[0].clone(),
            strings[1][1..].to_vec(),
            strings[2].clone(),
        ],
        vec![
            strings[0][..200].to_vec(),
            strings[1].clone(),
            strings[2].clone(),
        ],
        vec![vec![], strings[0].clone(), strings[2].clone()],
    ];
    for strings in cases {
        assert!(
            matches!(
                AnswerPayload::from_strings(&strings),
                Err(DnsError::BadAnswer(_))
            ),
            "{:?}",
            strings.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
}

fn all_statuses() -> Vec<AnswerStatus> {
    (0..=255u8)
        .filter_map(|b| AnswerStatus::from_u8(b).ok())
        .collect()
}

/// Status bytes this version does not define are refused.
#[test]
fn unknown_status_is_refused() {
    let known = [
        0x00, 0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    ];
    for b in 0..=255u8 {
        let parsed = AnswerStatus::from_u8(b);
        if known.contains(&b) {
            assert_eq!(parsed.unwrap() as u8, b);
        } else {
            assert_eq!(parsed, Err(DnsError::UnknownStatus(b)));
            assert_eq!(
                AnswerPayload::from_strings(&[[b, 0, 0]]),
                Err(DnsError::UnknownStatus(b))
            );
        }
    }
    assert_eq!(all_statuses().len(), known.len());
}

/// Bytes of the resolver's answer to the device with a payload of `payload` bytes: header,
/// question (name, type, class), answer record (compressed owner, type, class, TTL,
/// length), an OPT record above the classic 512-byte limit, and the TXT data with one length
/// byte per string.
fn answer_bytes(limit: usize, qname_wire_len: usize, payload: usize) -> usize {
    let opt = if limit > 512 { 11 } else { 0 };
    12 + qname_wire_len + 4 + 12 + opt + payload + payload.div_ceil(255).max(1)
}

/// With the body `body_capacity` allows, the resolver's answer fits the limit, for every limit
/// and every question length; one more body byte would not fit.
#[test]
fn body_capacity_keeps_answers_within_the_limit() {
    assert_eq!(ANSWER_OVERHEAD, 12 + 4 + 12);
    for units in 32u8..=255 {
        let limit = AnswerLimit::from_bytes(usize::from(units) * 16).unwrap();
        for qname in 20..=255 {
            let body = body_capacity(limit, qname);
            let payload = PAYLOAD_HEADER_LEN + body;
            assert!(
                answer_bytes(limit.bytes(), qname, payload) <= limit.bytes(),
                "limit {}, question of {qname}: {body} body bytes make {}",
                limit.bytes(),
                answer_bytes(limit.bytes(), qname, payload)
            );
            assert!(
                answer_bytes(limit.bytes(), qname, payload + 1) > limit.bytes(),
                "limit {}, question of {qname}: {body} body bytes is not the most",
                limit.bytes()
            );
        }
    }
    // 512 bytes and the longest question still leave room for a piece.
    assert!(body_capacity(AnswerLimit::CLASSIC, 255) >= 200);
}

/// The probe's filler is `i mod 251`, so a cut or shifted answer shows.
#[test]
fn probe_filler_is_i_mod_251() {
    let filler = probe_filler(4080);
    assert_eq!(filler.len(), 4080);
    for (i, b) in filler.iter().enumerate() {
        assert_eq!(usize::from(*b), i % 251);
    }
    assert_eq!(probe_filler(0), Vec::<u8>::new());
    assert_eq!(probe_filler(300)[..], filler[..300]);
    // The device's check of a probe answer: exactly the filler, no byte more or less.
    for n in [0, 1, 250, 251, 252, 1151, 4080] {
        let whole = probe_filler(n);
        assert!(is_probe_filler(&whole, n), "{n}");
        assert!(!is_probe_filler(&whole, n + 1));
        assert!(!is_probe_filler(&probe_filler(n + 1), n));
        if n > 0 {
            let mut changed = whole.clone();
            changed[n / 2] ^= 1;
            assert!(!is_probe_filler(&changed, n));
            assert!(n == 1 || !is_probe_filler(&whole[1..], n - 1), "shifted");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tunnel record
// ---------------------------------------------------------------------------------------------

fn chunk(index: u16, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (usize::from(index) * 31 + i) as u8)
        .collect()
}

/// Chunks arriving in any order assemble in index order, once all of `0..=last` are here.
#[test]
fn tunnel_record_chunks_assemble_in_index_order() {
    let mut r = TunnelRecord::default();
    let order = [3u16, 0, 4, 2, 1];
    for (n, &i) in order.iter().enumerate() {
        assert_eq!(r.assemble(0, 4), None, "{n} of 5 chunks");
        assert_eq!(r.add_chunk(0, i, &chunk(i, 100)), Ok(ChunkAdded::Stored));
    }
    let whole: Vec<u8> = (0..5).flat_map(|i| chunk(i, 100)).collect();
    assert_eq!(r.assemble(0, 4), Some(whole));
    assert_eq!(r.assemble(1, 4), None, "another message");
    assert_eq!(
        r.assemble(0, 3),
        None,
        "more chunks than the last index says"
    );
    assert_eq!(r.assemble(0, 5), None, "chunk 5 is missing");
    let mut gap = TunnelRecord::default();
    for i in [0, 1, 3] {
        gap.add_chunk(0, i, &chunk(i, 9)).unwrap();
    }
    assert_eq!(gap.assemble(0, 2), None, "chunk 2 is missing");
}

/// The same chunk again (a retransmission) is a duplicate and changes nothing.
#[test]
fn tunnel_record_duplicate_chunk_is_duplicate() {
    let mut r = TunnelRecord::default();
    r.add_chunk(2, 0, &chunk(0, 50)).unwrap();
    let before = r.clone();
    assert_eq!(r.add_chunk(2, 0, &chunk(0, 50)), Ok(ChunkAdded::Duplicate));
    assert_eq!(r, before);
}

/// A chunk sent again with other bytes is refused and changes nothing.
#[test]
fn tunnel_record_conflicting_chunk_is_refused() {
    let mut r = TunnelRecord::default();
    r.add_chunk(0, 1, &chunk(1, 50)).unwrap();
    let before = r.clone();
    let mut other = chunk(1, 50);
    other[10] ^= 1;
    assert_eq!(r.add_chunk(0, 1, &other), Err(AddChunkError::Conflict));
    assert_eq!(
        r.add_chunk(0, 1, &chunk(1, 49)),
        Err(AddChunkError::Conflict)
    );
    assert_eq!(r, before);
}

/// A late chunk of an earlier message is stale and changes nothing.
#[test]
fn tunnel_record_stale_message_chunk_is_stale() {
    let mut r = TunnelRecord::default();
    r.add_chunk(3, 0, &chunk(0, 20)).unwrap();
    let before = r.clone();
    for message in 0..3 {
        assert_eq!(
            r.add_chunk(message, 0, &chunk(9, 20)),
            Ok(ChunkAdded::Stale)
        );
        assert_eq!(
            r.add_chunk(message, 7, &chunk(7, 20)),
            Ok(ChunkAdded::Stale)
        );
    }
    assert_eq!(r, before);
}

/// A chunk of a later message drops the chunks of the earlier one.
#[test]
fn tunnel_record_later_message_drops_earlier_chunks() {
    let mut r = TunnelRecord::default();
    for i in 0..3 {
        r.add_chunk(0, i, &chunk(i, 40)).unwrap();
    }
    assert_eq!(r.add_chunk(2, 1, &chunk(5, 40)), Ok(ChunkAdded::Stored));
    assert_eq!(r.message, 2);
    assert_eq!(r.chunks.len(), 1);
    assert_eq!(r.chunks.get(&1), Some(&chunk(5, 40)));
    assert_eq!(r.assemble(0, 2), None);
}

/// The stored form reads back as the same record; records that are cut, padded, of another
/// version, or that `add_chunk` could never have built (indices out of order or repeated,
/// beyond the chunk limit, more bytes than a message may have) are refused.
#[test]
fn tunnel_record_round_trips_and_corrupt_records_are_refused() {
    let mut r = TunnelRecord::default();
    assert_eq!(TunnelRecord::from_bytes(&r.to_bytes()), Ok(r.clone()));
    r.add_chunk(5, 0, &chunk(0, 255)).unwrap();
    r.add_chunk(5, 7, &chunk(7, 1)).unwrap();
    r.add_chunk(5, 255, &chunk(255, 200)).unwrap();
    let bytes = r.to_bytes();
    assert_eq!(bytes[..2], [1, 5]);
    assert_eq!(TunnelRecord::from_bytes(&bytes), Ok(r.clone()));

    let corrupt = |b: &[u8], why: &str| {
        assert!(
            matches!(TunnelRecord::from_bytes(b), Err(DnsError::CorruptRecord(_))),
            "{why}: {:?}",
            TunnelRecord::from_bytes(b)
        );
    };
    corrupt(&[], "empty");
    corrupt(&[1], "no message");
    corrupt(&[2, 5], "version 2");
    corrupt(&[0, 5], "version 0");
    for cut in 3..bytes.len() {
        if cut == 2 + 3 + 255 || cut == 2 + 3 + 255 + 3 + 1 {
            continue; // whole chunks: a record of fewer chunks
        }
        corrupt(&bytes[..cut], &format!("cut at {cut}"));
    }
    corrupt(&[bytes.as_slice(), &[0]].concat(), "a trailing byte");
    corrupt(&[bytes.as_slice(), &[0, 9]].concat(), "two trailing bytes");
    corrupt(&[1, 0, 0, 2, 1, 7, 0, 1, 1, 8], "indices out of order");
    corrupt(&[1, 0, 0, 1, 1, 7, 0, 1, 1, 8], "an index twice");
    corrupt(&[1, 0, 1, 0, 1, 7], "index 256");
    let mut big = vec![1, 0];
    for i in 0..33u16 {
        big.extend_from_slice(&i.to_be_bytes());
        big.push(255);
        big.extend_from_slice(&chunk(i, 255));
    }
    corrupt(&big, "more than MAX_MESSAGE_LEN bytes");
}

/// Chunks adding up to more than `MAX_MESSAGE_LEN` bytes, indices from `MAX_CHUNKS` on, and
/// chunks longer than a query carries are refused as too large.
#[test]
fn messages_over_max_message_len_are_too_large() {
    let mut r = TunnelRecord::default();
    let mut total = 0;
    let mut i = 0u16;
    while total + 255 <= MAX_MESSAGE_LEN {
        assert_eq!(r.add_chunk(0, i, &chunk(i, 255)), Ok(ChunkAdded::Stored));
        total += 255;
        i += 1;
    }
    let rest = MAX_MESSAGE_LEN - total;
    assert_eq!(
        r.add_chunk(0, i, &chunk(i, rest + 1)),
        Err(AddChunkError::TooLarge)
    );
    assert_eq!(r.add_chunk(0, i, &chunk(i, rest)), Ok(ChunkAdded::Stored));
    assert_eq!(r.assemble(0, i).unwrap().len(), MAX_MESSAGE_LEN);
    assert_eq!(r.add_chunk(0, i + 1, &[1]), Err(AddChunkError::TooLarge));
    assert_eq!(TunnelRecord::from_bytes(&r.to_bytes()), Ok(r));

    let mut r = TunnelRecord::default();
    assert_eq!(r.add_chunk(0, MAX_CHUNKS - 1, &[1]), Ok(ChunkAdded::Stored));
    assert_eq!(
        r.add_chunk(0, MAX_CHUNKS, &[1]),
        Err(AddChunkError::TooLarge)
    );
    assert_eq!(r.add_chunk(0, u16::MAX, &[1]), Err(AddChunkError::TooLarge));
    assert_eq!(r.add_chunk(0, 0, &[1; 256]), Err(AddChunkError::TooLarge));
    assert_eq!(r.chunks.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever chunks `add_chunk` takes, the record round-trips through its stored form.
    #[test]
    fn tunnel_records_round_trip(
        adds in proptest::collection::vec((0u8..4, 0u16..300, 1usize..=255), 0..40),
    ) {
        let mut r = TunnelRecord::default();
        for (message, index, len) in adds {
            let _ = r.add_chunk(message, index, &chunk(index, len));
        }
        prop_assert_eq!(TunnelRecord::from_bytes(&r.to_bytes()), Ok(r));
    }

    /// Every stored form that reads back is the one `to_bytes` writes (one record, one form):
    /// chunks in any order, repeated, beyond the limits.
    #[test]
    fn accepted_tunnel_records_are_canonical(
        message in any::<u8>(),
        entries in proptest::collection::vec((prop_oneof![0u16..6, 250u16..260, any::<u16>()], 0usize..=255), 0..40),
        tail in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let mut bytes = vec![1, message];
        for (index, len) in entries {
            bytes.extend_from_slice(&index.to_be_bytes());
            bytes.push(u8::try_from(len).unwrap());
            bytes.extend_from_slice(&chunk(index, len));
        }
        bytes.extend_from_slice(&tail);
        if let Ok(r) = TunnelRecord::from_bytes(&bytes) {
            prop_assert!(r.chunks.keys().all(|&i| i < MAX_CHUNKS));
            prop_assert!(r.chunks.values().map(Vec::len).sum::<usize>() <= MAX_MESSAGE_LEN);
            prop_assert_eq!(r.to_bytes(), bytes);
        }
    }
}
