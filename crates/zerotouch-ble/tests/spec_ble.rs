//! `docs/PROTOCOL.md` section 20 (the BLE binding) states what the code does: the GATT
//! profile's UUIDs and properties, the info value's layout, the ATT sizes, the segment header,
//! the receiver's rules and their errors, the link's defaults, what the flows put in a message
//! and the efficiency figures. This test reads the section's tables and figures and fails if
//! they and the code disagree, so the two cannot drift apart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;

use zerotouch_ble::profile::{
    INDICATE_CHARACTERISTIC_UUID, INFO_CHARACTERISTIC_UUID, WRITE_CHARACTERISTIC_UUID,
};
use zerotouch_ble::segment::{
    BEGIN, BEGIN_HEADER_LEN, CONTINUATION_HEADER_LEN, END, SEQ_MASK, Segment,
};
use zerotouch_ble::*;
use zerotouch_core::{Instant, Transport};

mod spec_support;
use spec_support::{docs_json, error_name as name, uuid};

use zerotouch_testkit::spec::{self, grouped, number, table};

fn section() -> String {
    spec::protocol_section("## 20. BLE binding")
}

/// The section with every run of white space made one space: for phrases the text may wrap.
fn prose() -> String {
    spec::prose(&section())
}

/// The text between the first pair of backticks in `cell`.
fn code(cell: &str) -> &str {
    cell.split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no `code` in `{cell}`"))
}

/// The variants of `Error`, read from its source (`#[non_exhaustive]` keeps a test from
/// matching them all).
fn error_variants() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/error.rs");
    let source = std::fs::read_to_string(path).unwrap();
    let body = &source[source.find("pub enum Error {").unwrap()..];
    body.lines()
        .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
        .map(str::trim)
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|l| {
            l.split(['(', ' ', '{', ','])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// One value of every variant, for their names and Display text.
fn samples() -> Vec<Error> {
    vec![
        Error::MtuTooSmall { mtu: 22 },
        Error::EmptySegment,
        Error::SegmentTooLong { len: 21, max: 20 },
        Error::TruncatedHeader { len: 3 },
        Error::MessageTooLong {
            len: 4203,
            max: 4202,
        },
        Error::NoMessageInProgress,
        Error::UnexpectedBegin { txn: 1 },
        Error::DuplicateSegment { seq: 1 },
        Error::OutOfOrder {
            expected: 1,
            got: 2,
        },
        Error::Overrun { total: 40 },
        Error::Truncated {
            received: 39,
            total: 40,
        },
        Error::MissingEnd { total: 40 },
        Error::ReassemblyTimeout { txn: 1 },
        Error::IdleTimeout,
        Error::MalformedInfo("the value is not 7 bytes"),
        Error::UnsupportedVersion(2),
        Error::Disconnected,
        Error::Stack("x".into()),
        Error::Relay("x".into()),
    ]
}

/// Feeds `segments` (hex) to a fresh receiver at MTU 23; the last one's error.
fn refusal(segments: &[&str]) -> Error {
    let mut r = Reassembler::new(&LinkConfig::default());
    let (last, before) = segments.split_last().unwrap();
    for s in before {
        r.receive(Instant(0), &hex::decode(s).unwrap(), 23).unwrap();
    }
    r.receive(Instant(0), &hex::decode(last).unwrap(), 23)
        .unwrap_err()
}

/// The segments of `message` at `mtu`, as a link sends them.
fn sent(message: Vec<u8>, mtu: u16) -> (Vec<Vec<u8>>, LinkStats) {
    let mut link = BleLink::new(LinkConfig::default(), Instant(0));
    link.send(Instant(0), message).unwrap();
    let mut out = Vec::new();
    while let Some(s) = link.poll_segment(mtu).unwrap() {
        out.push(s);
        link.segment_confirmed(Instant(0));
    }
    (out, link.stats())
}

#[test]
fn the_profile_table_has_the_crates_uuids_and_properties() {
    let rows = table(&section(), "| attribute | UUID | properties | use |");
    let expected = [
        ("service", SERVICE_UUID, "primary service"),
        ("write characteristic", WRITE_CHARACTERISTIC_UUID, "Write"),
        (
            "indicate characteristic",
            INDICATE_CHARACTERISTIC_UUID,
            "Indicate, with a CCCD",
        ),
        ("info characteristic", INFO_CHARACTERISTIC_UUID, "Read"),
    ];
    assert_eq!(rows.len(), expected.len());
    for (row, (attribute, id, properties)) in rows.iter().zip(expected) {
        assert_eq!(row[0], attribute);
        assert_eq!(code(&row[1]), uuid(id), "{attribute}");
        assert_eq!(row[2], properties, "{attribute}");
    }
    assert!(rows[1][3].contains("ATT Write Request"));
    assert!(rows[2][3].contains("ATT Handle Value Indication"));
    assert!(rows[3][3].contains(&format!("{} bytes", ServiceInfo::LEN)));
    let text = prose();
    for needle in [
        "never Write Command",
        "never Prepare/Execute Write",
        "never Notify",
        "The info characteristic has Read only",
    ] {
        assert!(text.contains(needle), "`{needle}`");
    }
}

#[test]
fn the_info_table_is_the_encoding() {
    let rows = table(&section(), "| offset | size | field | contents |");
    let base = ServiceInfo {
        version: PROFILE_VERSION,
        max_message_len: 0x0102,
        instance: 0x0304_0506,
    };
    let mut next = 0;
    for row in &rows {
        let (offset, size) = (number(&row[0]), number(&row[1]));
        assert_eq!(offset, next, "the fields follow each other: {}", row[2]);
        next = offset + size;
        let field = &base.encode()[offset..offset + size];
        match row[2].as_str() {
            "version" => {
                assert_eq!(field, [PROFILE_VERSION]);
                assert!(row[3].contains(&format!("{PROFILE_VERSION} (`PROFILE_VERSION`)")));
            }
            "max_message_len" => {
                assert_eq!(field, [1, 2], "big-endian");
                assert!(row[3].contains("big-endian u16"));
                assert!(row[3].contains(&grouped(MAX_MESSAGE_LEN)));
            }
            "instance" => {
                assert_eq!(field, [3, 4, 5, 6], "big-endian");
                assert!(row[3].contains("big-endian u32"));
            }
            other => panic!("the info table names an unknown field `{other}`"),
        }
    }
    assert_eq!(next, ServiceInfo::LEN, "the table covers the value");
    assert_eq!(rows.len(), 3);
    // The errors the section names for a bad value.
    assert!(matches!(
        ServiceInfo::decode(&[1; 6]),
        Err(Error::MalformedInfo(_))
    ));
    assert_eq!(
        ServiceInfo::decode(&[2, 0, 0, 0, 0, 0, 0]),
        Err(Error::UnsupportedVersion(2))
    );
    let text = prose();
    assert!(text.contains("that is not 7 bytes (`MalformedInfo`)"));
    assert!(text.contains("(`UnsupportedVersion`)"));
}

#[test]
fn the_att_sizes_are_the_codes() {
    let text = prose();
    assert!(text.contains("segment capacity = min(MTU − 3, 512)"));
    assert!(text.contains("20 bytes at MTU 23, 512 from MTU 515 up"));
    assert!(text.contains("a 3-byte header (opcode and handle; `ATT_HEADER_LEN`)"));
    assert!(text.contains("no attribute value is longer than 512 bytes"));
    assert!(text.contains("Every LE link supports MTU 23 (`MIN_ATT_MTU`)"));
    assert!(text.contains("the largest worth negotiating is 517 (`MAX_ATT_MTU`"));
    assert_eq!(ATT_HEADER_LEN, 3);
    assert_eq!(MAX_ATTRIBUTE_LEN, 512);
    assert_eq!(MIN_ATT_MTU, 23);
    assert_eq!(MAX_ATT_MTU, 517);
    assert_eq!(segment_capacity(23), Ok(20));
    assert_eq!(segment_capacity(514), Ok(511));
    assert_eq!(segment_capacity(515), Ok(512));
    assert_eq!(segment_capacity(517), Ok(512));
    assert_eq!(segment_capacity(22), Err(Error::MtuTooSmall { mtu: 22 }));
    // The MTU is taken per write: a segment cut at 185 fits 185 and not 23.
    let (segments, _) = sent(vec![0; 100], 185);
    assert_eq!(segments.len(), 1);
    assert!(Segment::parse(&segments[0], 185).is_ok());
    assert!(matches!(
        Segment::parse(&segments[0], 23),
        Err(Error::SegmentTooLong { len: 104, max: 20 })
    ));
}

#[test]
fn the_segment_header_table_is_the_format() {
    let section = section();
    let rows = table(&section, "| byte | bits | field | contents |");
    let fields: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(fields, ["BEGIN", "END", "sequence", "txn", "total"]);
    assert_eq!(rows[0][1], format!("{BEGIN:#04x}"));
    assert_eq!(rows[1][1], format!("{END:#04x}"));
    assert_eq!(rows[2][1], format!("{SEQ_MASK:#04x}"));
    assert!(section.contains(&format!("{BEGIN_HEADER_LEN}-byte header")));
    assert!(section.contains(&format!("{CONTINUATION_HEADER_LEN}-byte header")));
    // A message of two segments at MTU 23, txn 0x2a: the fields where the table puts them.
    let mut s = Segmenter::new(0x2a, (0..20).collect(), MAX_MESSAGE_LEN).unwrap();
    let first = s.next_segment(23).unwrap().unwrap();
    let second = s.next_segment(23).unwrap().unwrap();
    assert_eq!(
        first[..4],
        [BEGIN, 0x2a, 0x00, 20],
        "BEGIN, seq 0, txn, total BE"
    );
    assert_eq!(first.len(), 20);
    assert_eq!(
        second,
        [END | 1, 16, 17, 18, 19],
        "END, seq 1, the last bytes"
    );
    for (row, byte) in rows.iter().zip([0, 0, 0, 1, 2]) {
        assert_eq!(number(&row[0]), byte, "{}", row[2]);
    }
    let text = prose();
    // One segment: BEGIN | END. The empty message: 4 bytes.
    assert!(text.contains("BEGIN and END both set (control byte 0xC0)"));
    let (one, _) = sent(vec![9; 16], 23);
    assert_eq!(one, [[&[0xc0, 0, 0, 16][..], &[9; 16]].concat()]);
    assert!(text.contains("The **empty message** is one begin segment of 4 bytes"));
    let (empty, _) = sent(Vec::new(), 23);
    assert_eq!(empty, [vec![BEGIN | END, 0, 0, 0]]);
    // The sequence number wraps; a 4,202-byte message at MTU 23 has 222 segments.
    let (long, _) = sent(vec![0; MAX_MESSAGE_LEN], 23);
    assert!(text.contains(&format!(
        "a {}-byte message at MTU 23 has {} segments",
        grouped(MAX_MESSAGE_LEN),
        long.len()
    )));
    assert_eq!(long[64][0] & SEQ_MASK, 0, "the 65th segment has sequence 0");
    assert!(text.contains("the 65th segment of a message has sequence 0 again"));
    // The transaction id counts the link's messages and is kept on a resend.
    let mut link = BleLink::new(LinkConfig::default(), Instant(0));
    assert_eq!(link.send(Instant(0), vec![1; 40]).unwrap(), 0);
    assert_eq!(link.send(Instant(0), vec![2; 40]).unwrap(), 1);
    assert!(text.contains("the number of messages the sender queued before this one on its link, mod 256 (the first is 0)"));
}

#[test]
fn the_error_table_names_every_receiver_error_with_the_codes_outcome() {
    let section = section();
    let rows = table(&section, "| condition | error | the receiver | why |");
    let variants = error_variants();
    let samples = samples();
    // The samples are every variant, and each has a Display text.
    let sample_names: BTreeSet<String> = samples.iter().map(name).collect();
    assert_eq!(
        sample_names, variants,
        "samples() lists every variant of Error"
    );
    for e in &samples {
        assert!(!e.to_string().is_empty());
    }
    let named: Vec<&str> = rows.iter().map(|r| code(&r[1])).collect();
    for n in &named {
        assert!(variants.contains(*n), "`{n}` is not a variant of Error");
    }
    // Every variant is in the table, or named as no framing rule.
    let text = prose();
    for v in &variants {
        if !named.contains(&v.as_str()) {
            assert!(
                ["Disconnected", "Stack", "Relay"].contains(&v.as_str()),
                "{v} is missing from the error table"
            );
            assert!(text.contains(&format!("`{v}` (")), "{v} is explained");
        }
    }
    // The receiver's outcomes, as the code has them.
    for row in &rows {
        let error = code(&row[1]);
        let outcome = row[2].as_str();
        match error {
            "IdleTimeout" => assert!(outcome.contains("the caller disconnects")),
            "MalformedInfo" | "UnsupportedVersion" => {
                assert_eq!(outcome, "(central) does not use the service");
            }
            "ReassemblyTimeout" => {
                assert_eq!(outcome, "drops the message when its timeout is handled");
            }
            "UnexpectedBegin" => assert_eq!(outcome, "drops both"),
            "NoMessageInProgress" => assert_eq!(outcome, "drops the segment"),
            "MessageTooLong" => {
                assert_eq!(outcome, "drops the message before storing any of it");
            }
            _ => assert!(
                outcome == "drops the message being reassembled" || outcome == "drops the message",
                "{error}: {outcome}"
            ),
        }
    }
    // The conditions, checked in the table's order, give these errors.
    let begin40 = "80010028aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let cont = |control: &str, n: usize| format!("{control}{}", "bb".repeat(n));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![format!("c0010011{}", "aa".repeat(17))],
            "SegmentTooLong",
        ),
        (vec![String::new()], "EmptySegment"),
        (vec![begin40.into(), "01".into()], "EmptySegment"),
        (vec!["c00100".into()], "TruncatedHeader"),
        (vec![begin40.into(), begin40.into()], "UnexpectedBegin"),
        (vec!["c5010001ff".into()], "OutOfOrder"),
        (
            vec![format!("8001106b{}", "aa".repeat(16))],
            "MessageTooLong",
        ),
        (vec!["41aa".into()], "NoMessageInProgress"),
        (vec![begin40.into(), cont("00", 19)], "DuplicateSegment"),
        (
            vec![begin40.into(), cont("01", 19), cont("01", 19)],
            "DuplicateSegment",
        ),
        (vec![begin40.into(), cont("03", 19)], "OutOfOrder"),
        (
            vec![begin40.into(), cont("01", 19), cont("42", 6)],
            "Overrun",
        ),
        (
            vec![begin40.into(), cont("01", 19), cont("42", 4)],
            "Truncated",
        ),
        (
            vec![begin40.into(), cont("01", 19), cont("02", 5)],
            "MissingEnd",
        ),
        (vec!["80010000".into()], "MissingEnd"),
    ];
    for (segments, expected) in &cases {
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        assert_eq!(name(&refusal(&segments)), *expected, "{segments:?}");
        assert!(named.contains(expected));
    }
    // The limits the rows quote.
    let config = LinkConfig::default();
    let row = |e: &str| rows.iter().find(|r| code(&r[1]) == e).unwrap()[0].clone();
    assert!(row("MessageTooLong").contains(&grouped(config.max_message_len)));
    assert!(
        row("ReassemblyTimeout").contains(&format!("({} s)", config.reassembly_timeout_ms / 1000))
    );
    assert!(row("IdleTimeout").contains(&format!("({} s)", config.idle_timeout_ms / 1000)));
    assert!(row("SegmentTooLong").contains("min(MTU − 3, 512)"));
    assert!(row("TruncatedHeader").contains(&format!("{BEGIN_HEADER_LEN}-byte header")));
}

#[test]
fn after_a_refused_segment_the_link_stays_usable_and_a_copy_is_dropped() {
    let text = prose();
    assert!(text.contains("After any error but the last three the link stays usable"));
    let mut r = Reassembler::new(&LinkConfig::default());
    let now = Instant(0);
    r.receive(now, &hex::decode("80010028aaaa").unwrap(), 23)
        .unwrap();
    assert!(r.receive(now, &[0x05, 1], 23).is_err());
    assert!(!r.is_reassembling(), "the half message is dropped");
    assert_eq!(
        r.receive(now, &[0xc0, 0x09, 0, 1, 7], 23),
        Ok(Received::Message(vec![7]))
    );
    // The same transaction id again: checked, counted, dropped.
    assert_eq!(
        r.receive(now, &[0xc0, 0x09, 0, 1, 7], 23),
        Ok(Received::Duplicate { txn: 9 })
    );
    assert!(text.contains("(`Received::Duplicate`)"));
}

#[test]
fn the_defaults_table_is_link_config_default() {
    let rows = table(&section(), "| setting (`LinkConfig`) | default |");
    let config = LinkConfig::default();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let (field, value) = (code(&row[0]), number(&row[1]));
        let actual = match field {
            "max_message_len" => {
                assert!(row[1].ends_with(" bytes"));
                config.max_message_len
            }
            "reassembly_timeout_ms" => {
                assert!(row[1].ends_with(" ms"));
                usize::try_from(config.reassembly_timeout_ms).unwrap()
            }
            "idle_timeout_ms" => {
                assert!(row[1].ends_with(" ms"));
                usize::try_from(config.idle_timeout_ms).unwrap()
            }
            other => panic!("the defaults table names an unknown setting `{other}`"),
        };
        assert_eq!(value, actual, "{field}");
        assert_eq!(row[1].split(' ').next().unwrap(), grouped(actual));
    }
}

#[test]
fn the_flows_limits_are_the_cores_and_the_peers() {
    let text = prose();
    assert!(text.contains(&format!(
        "at most {} bytes (section 4)",
        grouped(zerotouch_core::MAX_MESSAGE_LEN)
    )));
    let frame = zerotouch_peer::framing::MAX_FRAME_LEN;
    assert_eq!(MAX_MESSAGE_LEN, 2 + frame);
    assert!(text.contains(&format!(
        "at most 2 + {} = {} bytes (`MAX_MESSAGE_LEN`)",
        grouped(frame),
        grouped(MAX_MESSAGE_LEN)
    )));
    const { assert!(zerotouch_core::MAX_MESSAGE_LEN <= MAX_MESSAGE_LEN) };
    assert!(text.contains("`/v1/relay/ble`"));
    assert_eq!(Transport::Ble as u8, 3);
    assert!(text.contains("The transcript names transport number 3 (BLE, section 5)"));
    assert!(text.contains("with transport 3 (BLE)"));
}

#[test]
fn the_efficiency_figures_are_what_a_link_sends() {
    let section = section();
    let text = prose();
    for line in [
        "segments = 1 if N ≤ c − 4",
        "= 1 + ⌈(N − (c − 4)) / (c − 1)⌉ otherwise",
        "segment bytes = N + 4 + (segments − 1)",
        "ATT bytes = segment bytes + 3 · segments",
    ] {
        assert!(text.contains(line), "`{line}`");
    }
    let session = docs_json("vectors/session.json");
    let rows = table(
        &section,
        "| message | length | ATT MTU | segments | segment bytes | ATT bytes |",
    );
    assert!(rows.len() >= 6);
    let mut mtus = BTreeSet::new();
    for row in &rows {
        let (len, mtu) = (number(&row[1]), u16::try_from(number(&row[2])).unwrap());
        mtus.insert(mtu);
        // The length the row's message has.
        if row[0].contains("session.json") {
            let tag = row[0].split(' ').nth(2).unwrap();
            let m = session["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["tag"] == tag)
                .unwrap_or_else(|| panic!("no {tag} in session.json"));
            assert_eq!(m["hex"].as_str().unwrap().len() / 2, len, "{tag}");
        } else if row[0].contains("flow-1 envelope") {
            assert_eq!(len, zerotouch_core::MAX_MESSAGE_LEN);
        } else if row[0].contains("flow-2 frame") {
            assert_eq!(len, MAX_MESSAGE_LEN);
        } else {
            assert_eq!(row[0], "the empty message");
            assert_eq!(len, 0);
        }
        let (segments, stats) = sent(vec![0x5a; len], mtu);
        let bytes = usize::try_from(stats.segment_bytes_sent).unwrap();
        assert_eq!(number(&row[3]), segments.len(), "{row:?}");
        assert_eq!(number(&row[4]), bytes, "{row:?}");
        assert_eq!(number(&row[5]), bytes + 3 * segments.len(), "{row:?}");
        assert_eq!(row[3], grouped(segments.len()));
        assert_eq!(row[4], grouped(bytes));
        // The formula gives the same.
        let c = segment_capacity(mtu).unwrap();
        let formula = if len <= c - 4 {
            1
        } else {
            1 + (len - (c - 4)).div_ceil(c - 1)
        };
        assert_eq!(formula, segments.len());
        assert_eq!(bytes, len + 4 + (formula - 1));
    }
    assert_eq!(mtus, BTreeSet::from([23, 185, 247, 517]));
    assert!(text.contains("a continuation carries 19 of its 20 bytes"));
    assert_eq!(segment_capacity(23).unwrap() - CONTINUATION_HEADER_LEN, 19);
}

#[test]
fn the_vector_paragraph_describes_the_vector_file() {
    let text = prose();
    let v = docs_json("vectors/ble.json");
    let segmentations = v["segmentations"].as_array().unwrap();
    let lengths: BTreeSet<u64> = segmentations
        .iter()
        .map(|s| s["length"].as_u64().unwrap())
        .collect();
    let mtus: BTreeSet<u64> = segmentations
        .iter()
        .map(|s| s["mtu"].as_u64().unwrap())
        .collect();
    let list = |xs: &BTreeSet<u64>| {
        let xs: Vec<String> = xs.iter().map(|&x| grouped(x as usize)).collect();
        let (last, rest) = xs.split_last().unwrap();
        format!("{} and {last}", rest.join(", "))
    };
    assert!(text.contains(&format!("messages of {} bytes", list(&lengths))));
    assert!(text.contains(&format!("at MTUs {}", list(&mtus))));
    assert!(text.contains(&format!(
        "an {}-byte message written while the MTU changes",
        v["mtu_changes"]["length"]
    )));
    assert!(text.contains(&format!(
        "a {}-byte message cut after two writes",
        hex::decode(v["reconnect"]["message"].as_str().unwrap())
            .unwrap()
            .len()
    )));
    assert!(text.contains("byte i is i mod 251"));
}
