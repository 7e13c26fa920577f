//! Test vectors of the BLE binding (`docs/PROTOCOL.md` section 20), written to
//! `docs/vectors/ble.json`:
//!
//! - `profile`: the service's and characteristics' UUIDs and the segment format's version;
//! - `info`: an info characteristic value, its fields and its 7 bytes; `bad_info`: values a
//!   central refuses, with the error;
//! - `segmentations`: a message (hex, or for a long one a rule: byte i = i mod 251), its
//!   transaction id and the ATT MTU → the exact segments, in hex, and the bytes on the wire;
//! - `mtu_changes`: one message written while the MTU changes: each segment with the MTU of
//!   its write;
//! - `reconnect`: a message cut by a disconnect, sent again from its begin segment with the
//!   same transaction id, delivered once, then sent again whole after the last write response
//!   was lost and dropped as a copy;
//! - `bad_sequences`: segments (and timeouts) a receiver refuses, with the step that fails and
//!   the exact `Error` variant.
//!
//! The file is regenerated from the code and compared byte for byte; every vector is also read
//! back from the committed file and checked against the code the other way (`Segmenter` and
//! `BleLink` produce the segments, the `Reassembler` and `BleLink` take them back, bad
//! sequences give the named error), and against a reading of the spec's rules written out
//! here, as a port would check itself.
//!
//! After an intended change: `ZT_UPDATE_VECTORS=1 cargo test -p zerotouch-ble
//! --no-default-features --features tokio --test ble_vectors` rewrites the file, and the diff
//! shows what changed on the wire.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::{Value, json};
use zerotouch_ble::profile::{
    INDICATE_CHARACTERISTIC_UUID, INFO_CHARACTERISTIC_UUID, WRITE_CHARACTERISTIC_UUID,
};
use zerotouch_ble::*;
use zerotouch_core::Instant;

mod spec_support;
use spec_support::{docs_json, error_name, uuid};

const MTUS: [u16; 4] = [23, 185, 247, 517];
const LENGTHS: [usize; 6] = [0, 1, 16, 17, 300, 4202];
/// Messages up to this length are given in hex; longer ones by their rule.
const HEX_UP_TO: usize = 300;
const RULE: &str = "byte i = i mod 251";

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn bytes_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

fn int(v: &Value) -> u64 {
    v.as_u64().expect("an integer")
}

fn mtu_of(v: &Value) -> u16 {
    u16::try_from(int(v)).unwrap()
}

/// The messages of the vectors: byte i is i mod 251.
fn rule_message(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Every segment of `message` at a fixed `mtu`, from the `Segmenter`.
fn cut(txn: u8, message: &[u8], mtu: u16) -> Vec<Vec<u8>> {
    let mut s = Segmenter::new(txn, message.to_vec(), MAX_MESSAGE_LEN).unwrap();
    std::iter::from_fn(|| s.next_segment(mtu).unwrap()).collect()
}

/// The spec's segment format, written out from section 20 (not from the crate): a begin
/// segment `0x80 | (0x40 if last) , txn, total u16 BE, payload`, then continuations
/// `(0x40 if last) | seq mod 64, payload`, each at most min(MTU - 3, 512) bytes, payloads as
/// long as they can be.
fn spec_segments(txn: u8, message: &[u8], mtus: &[u16]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let seq = out.len();
        let cap = (usize::from(mtus[seq.min(mtus.len() - 1)]) - 3).min(512);
        let header = if seq == 0 { 4 } else { 1 };
        let take = (message.len() - offset).min(cap - header);
        let last = offset + take == message.len();
        let control = u8::try_from(seq % 64).unwrap() | if last { 0x40 } else { 0 };
        let mut segment = if seq == 0 {
            let total = u16::try_from(message.len()).unwrap().to_be_bytes();
            vec![control | 0x80, txn, total[0], total[1]]
        } else {
            vec![control]
        };
        segment.extend_from_slice(&message[offset..offset + take]);
        out.push(segment);
        offset += take;
        if last {
            return out;
        }
    }
}

/// Whether the vectors list a message of `len` bytes at `mtu`: every pair but the longest
/// message at the two middle MTUs (section 20's efficiency table has their figures), to keep
/// the file small.
fn listed(len: usize, mtu: u16) -> bool {
    len < MAX_MESSAGE_LEN || mtu == 23 || mtu == 517
}

/// Segments for a message of `len` bytes at `mtu`, by the spec's formula.
fn formula_segments(len: usize, mtu: u16) -> usize {
    let cap = (usize::from(mtu) - 3).min(512);
    if len <= cap - 4 {
        1
    } else {
        1 + (len - (cap - 4)).div_ceil(cap - 1)
    }
}

// ---- generation ----

fn profile_vector() -> Value {
    json!({
        "service_uuid": uuid(SERVICE_UUID),
        "write_characteristic_uuid": uuid(WRITE_CHARACTERISTIC_UUID),
        "indicate_characteristic_uuid": uuid(INDICATE_CHARACTERISTIC_UUID),
        "info_characteristic_uuid": uuid(INFO_CHARACTERISTIC_UUID),
        "version": PROFILE_VERSION,
    })
}

fn info_vectors() -> Value {
    let info = ServiceInfo {
        version: PROFILE_VERSION,
        max_message_len: u16::try_from(MAX_MESSAGE_LEN).unwrap(),
        instance: 0x1234_5678,
    };
    json!([{
        "version": info.version,
        "max_message_len": info.max_message_len,
        "instance": info.instance,
        "value": h(&info.encode()),
    }])
}

fn bad_info_vectors() -> Value {
    let bad = [
        ("6 bytes", "01106a123456", "MalformedInfo"),
        ("8 bytes", "01106a1234567800", "MalformedInfo"),
        ("version 2", "02106a12345678", "UnsupportedVersion"),
        ("version 0", "00106a12345678", "UnsupportedVersion"),
    ];
    bad.iter()
        .map(|(comment, value, error)| json!({"comment": comment, "value": value, "error": error}))
        .collect()
}

fn segmentation_vectors() -> Value {
    let mut out = Vec::new();
    for len in LENGTHS {
        for mtu in MTUS.into_iter().filter(|&mtu| listed(len, mtu)) {
            let txn = u8::try_from(out.len() * 11).unwrap();
            let message = rule_message(len);
            let segments = cut(txn, &message, mtu);
            let wire: usize = segments.iter().map(Vec::len).sum();
            let mut v = json!({
                "length": len,
                "mtu": mtu,
                "txn": txn,
                "message_rule": RULE,
                "segment_count": segments.len(),
                "wire_bytes": wire,
                "att_bytes": wire + ATT_HEADER_LEN * segments.len(),
                "segments": segments.iter().map(|s| h(s)).collect::<Vec<_>>(),
            });
            if len <= HEX_UP_TO {
                v["message"] = json!(h(&message));
            }
            out.push(v);
        }
    }
    Value::Array(out)
}

/// The MTUs of the writes of the `mtu_changes` vector: the central renegotiates after two
/// writes, and BlueZ reports a smaller one for a later write.
const CHANGING_MTUS: [u16; 5] = [23, 23, 185, 517, 23];

fn mtu_change_vector() -> Value {
    let message = rule_message(800);
    let mut s = Segmenter::new(5, message.clone(), MAX_MESSAGE_LEN).unwrap();
    let mut steps = Vec::new();
    for mtu in CHANGING_MTUS.iter().chain(std::iter::repeat(&23)) {
        let Some(segment) = s.next_segment(*mtu).unwrap() else {
            break;
        };
        steps.push(json!({"mtu": mtu, "segment": h(&segment)}));
    }
    json!({
        "length": message.len(),
        "txn": 5,
        "message_rule": RULE,
        "writes": steps,
    })
}

/// A 40-byte message at MTU 23 (three segments: 16, 19 and 5 bytes of it) from a fresh
/// `BleLink` (transaction id 0): the connection drops after two writes, the message goes again
/// from its begin segment; the response to its last write is lost with the connection, so it
/// goes a third time and the receiver drops that copy.
fn reconnect_vector() -> Value {
    let message = rule_message(40);
    let mut sender = BleLink::new(LinkConfig::default(), Instant(0));
    let mut receiver = BleLink::new(LinkConfig::default(), Instant(0));
    sender.send(Instant(0), message.clone()).unwrap();
    let mut steps = Vec::new();
    // (writes on this connection, the write after which it drops)
    for cut_after in [Some(2), Some(3), None] {
        let mut n = 0;
        while let Some(segment) = sender.poll_segment(23).unwrap() {
            n += 1;
            let before = receiver.stats().duplicates_dropped;
            let delivered = receiver.receive_segment(Instant(0), &segment, 23).unwrap();
            let outcome = match delivered {
                Some(m) => json!({"delivered": h(&m)}),
                None if receiver.stats().duplicates_dropped > before => json!("copy dropped"),
                None => json!("partial"),
            };
            let mut step = json!({"write": h(&segment), "receiver": outcome});
            if cut_after == Some(n) {
                step["then"] = json!("disconnect before the write response");
                steps.push(step);
                sender.link_lost(Instant(0));
                receiver.link_lost(Instant(0));
                break;
            }
            step["then"] = json!("write response");
            steps.push(step);
            sender.segment_confirmed(Instant(0));
        }
    }
    assert!(sender.is_flushed());
    json!({
        "mtu": 23,
        "message": h(&message),
        "steps": steps,
    })
}

/// The begin segment of a `total`-byte message (txn 1, not the end) with `payload`.
fn begin(total: u16, payload: &[u8]) -> String {
    let t = total.to_be_bytes();
    h(&[&[0x80, 0x01, t[0], t[1]][..], payload].concat())
}

fn bad_sequence_vectors() -> Value {
    let p16 = h(&[0xaa; 16]);
    let first = begin(40, &[0xaa; 16]);
    let receive = |hex: &str| json!({"receive": hex});
    let v = |comment: &str, mtu: u16, steps: Vec<Value>, error: &str| json!({"comment": comment, "mtu": mtu, "steps": steps, "error": error});
    let bad = vec![
        v(
            "an ATT MTU below 23",
            22,
            vec![receive("c0010001ff")],
            "MtuTooSmall",
        ),
        v(
            "a segment of no bytes",
            23,
            vec![receive("")],
            "EmptySegment",
        ),
        v(
            "a continuation segment with no payload",
            23,
            vec![receive(&first), receive("01")],
            "EmptySegment",
        ),
        v(
            "21 bytes at MTU 23 (at most 20)",
            23,
            vec![receive(&format!("c0010011{p16}ff"))],
            "SegmentTooLong",
        ),
        v(
            "a begin segment of 3 bytes",
            23,
            vec![receive("c00100")],
            "TruncatedHeader",
        ),
        v(
            "a total of 4,203 bytes, above the 4,202 the receiver accepts",
            23,
            vec![receive(&begin(4203, &[0xaa; 16]))],
            "MessageTooLong",
        ),
        v(
            "a continuation segment first",
            23,
            vec![receive("41aa")],
            "NoMessageInProgress",
        ),
        v(
            "a begin segment while a message is half received",
            23,
            vec![receive(&first), receive(&first)],
            "UnexpectedBegin",
        ),
        v(
            "segment 1 twice",
            23,
            vec![
                receive(&first),
                receive(&format!("01{}", h(&[0xbb; 19]))),
                receive(&format!("01{}", h(&[0xbb; 19]))),
            ],
            "DuplicateSegment",
        ),
        v(
            "segment 2 after the begin segment",
            23,
            vec![receive(&first), receive(&format!("02{}", h(&[0xbb; 19])))],
            "OutOfOrder",
        ),
        v(
            "a begin segment with sequence number 5",
            23,
            vec![receive("c5010001ff")],
            "OutOfOrder",
        ),
        v(
            "a one-segment message of 3 bytes announcing 2",
            23,
            vec![receive("c0010002aabbcc")],
            "Overrun",
        ),
        v(
            "a continuation past the announced total",
            23,
            vec![
                receive(&first),
                receive(&format!("01{}", h(&[0xbb; 19]))),
                receive(&format!("42{}", h(&[0xcc; 6]))),
            ],
            "Overrun",
        ),
        v(
            "the end segment 1 byte short",
            23,
            vec![
                receive(&first),
                receive(&format!("01{}", h(&[0xbb; 19]))),
                receive(&format!("42{}", h(&[0xcc; 4]))),
            ],
            "Truncated",
        ),
        v(
            "the last byte in a segment not marked as the end",
            23,
            vec![
                receive(&first),
                receive(&format!("01{}", h(&[0xbb; 19]))),
                receive(&format!("02{}", h(&[0xcc; 5]))),
            ],
            "MissingEnd",
        ),
        v(
            "an empty message without the end flag",
            23,
            vec![receive("80010000")],
            "MissingEnd",
        ),
        v(
            "a message begun and not finished within the reassembly timeout (30 s)",
            23,
            vec![
                receive(&first),
                json!({"handle_timeout_at_ms": 29_999}),
                json!({"handle_timeout_at_ms": 30_000}),
            ],
            "ReassemblyTimeout",
        ),
        v(
            "nothing received or confirmed for the idle timeout (180 s)",
            23,
            vec![
                json!({"handle_timeout_at_ms": 179_999}),
                json!({"handle_timeout_at_ms": 180_000}),
            ],
            "IdleTimeout",
        ),
    ];
    Value::Array(bad)
}

fn generate() -> Value {
    json!({
        "description": "The BLE binding (docs/PROTOCOL.md section 20). `profile`: the GATT \
            service and characteristic UUIDs and the segment format's version. `info`: the info \
            characteristic's value (version, max_message_len u16 BE, instance u32 BE); \
            `bad_info`: values a central refuses, with the error. `segmentations`: a message of \
            `length` bytes (byte i = i mod 251; in hex in `message` up to 300 bytes) with \
            transaction id `txn` written or indicated at ATT MTU `mtu` -> its segments (each one \
            attribute value of at most min(mtu - 3, 512) bytes), `wire_bytes` their sum, \
            `att_bytes` that plus the 3-byte ATT header of each write or indication. \
            `mtu_changes`: one message whose writes have different MTUs, each segment with the \
            MTU of its write. `reconnect`: a message from a fresh link (txn 0) at MTU 23, each \
            write, what the receiver made of it and what followed; after a disconnect both sides \
            reset and the sender starts again from the begin segment. `bad_sequences`: steps \
            into a fresh receiving link at `mtu` (every segment at time 0; `handle_timeout_at_ms` \
            applies the link's timeouts at that time); every step before the last succeeds, the \
            last fails with the Error variant `error`; the message being reassembled is dropped \
            and the link stays usable.",
        "profile": profile_vector(),
        "info": info_vectors(),
        "bad_info": bad_info_vectors(),
        "segmentations": segmentation_vectors(),
        "mtu_changes": mtu_change_vector(),
        "reconnect": reconnect_vector(),
        "bad_sequences": bad_sequence_vectors(),
    })
}

fn regenerating() -> bool {
    std::env::var_os("ZT_UPDATE_VECTORS").is_some_and(|s| !s.is_empty() && s != "0")
}

fn path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/vectors/ble.json").to_owned()
}

/// The committed file, as a port reads it (while regenerating: the new content).
fn committed() -> Value {
    if regenerating() {
        generate()
    } else {
        docs_json("vectors/ble.json")
    }
}

/// The message of a segmentation vector: its hex, or else its rule.
fn message_of(v: &Value) -> Vec<u8> {
    assert_eq!(v["message_rule"], RULE);
    let message = rule_message(usize::try_from(int(&v["length"])).unwrap());
    if let Some(hex) = v.get("message") {
        assert_eq!(bytes_of(hex), message, "the hex follows the rule");
    }
    message
}

fn segments_of(v: &Value) -> Vec<Vec<u8>> {
    v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(bytes_of)
        .collect()
}

/// Feeds `steps` to a fresh receiving link; returns the outcome of each.
fn run_steps(link: &mut BleLink, mtu: u16, steps: &[Value]) -> Vec<Result<(), Error>> {
    steps
        .iter()
        .map(|step| {
            if let Some(hex) = step.get("receive") {
                link.receive_segment(Instant(0), &bytes_of(hex), mtu)
                    .map(|_| ())
            } else {
                link.handle_timeout(Instant(int(&step["handle_timeout_at_ms"])))
            }
        })
        .collect()
}

// ---- checks ----

#[test]
fn the_ble_vectors_match_the_code() {
    let fresh = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    match (regenerating(), std::fs::read_to_string(path())) {
        (true, _) => std::fs::write(path(), fresh).unwrap(),
        (false, Ok(committed)) => assert!(
            committed == fresh,
            "docs/vectors/ble.json is stale: the BLE binding's wire format changed (after an \
             intended change run with ZT_UPDATE_VECTORS=1 and review the diff)"
        ),
        (false, Err(e)) => panic!("docs/vectors/ble.json: {e} (run with ZT_UPDATE_VECTORS=1)"),
    }
}

#[test]
fn the_profile_uuids_are_the_crates_constants() {
    let p = &committed()["profile"];
    let parse = |v: &Value| u128::from_str_radix(&v.as_str().unwrap().replace('-', ""), 16);
    assert_eq!(parse(&p["service_uuid"]), Ok(SERVICE_UUID));
    assert_eq!(
        parse(&p["write_characteristic_uuid"]),
        Ok(WRITE_CHARACTERISTIC_UUID)
    );
    assert_eq!(
        parse(&p["indicate_characteristic_uuid"]),
        Ok(INDICATE_CHARACTERISTIC_UUID)
    );
    assert_eq!(
        parse(&p["info_characteristic_uuid"]),
        Ok(INFO_CHARACTERISTIC_UUID)
    );
    assert_eq!(int(&p["version"]), u64::from(PROFILE_VERSION));
}

#[test]
fn the_info_value_encodes_and_decodes_as_listed() {
    for v in committed()["info"].as_array().unwrap() {
        let info = ServiceInfo {
            version: u8::try_from(int(&v["version"])).unwrap(),
            max_message_len: u16::try_from(int(&v["max_message_len"])).unwrap(),
            instance: u32::try_from(int(&v["instance"])).unwrap(),
        };
        let value = bytes_of(&v["value"]);
        assert_eq!(value.len(), ServiceInfo::LEN);
        assert_eq!(info.encode().to_vec(), value);
        assert_eq!(ServiceInfo::decode(&value), Ok(info));
        // version | max_message_len BE | instance BE, written out.
        let mut spec = vec![info.version];
        spec.extend(info.max_message_len.to_be_bytes());
        spec.extend(info.instance.to_be_bytes());
        assert_eq!(spec, value);
    }
}

#[test]
fn bad_info_values_give_the_named_error() {
    let bad = committed()["bad_info"].as_array().unwrap().clone();
    assert!(bad.len() >= 3);
    for v in bad {
        let e = ServiceInfo::decode(&bytes_of(&v["value"])).unwrap_err();
        assert_eq!(error_name(&e), v["error"], "{}", v["comment"]);
    }
}

#[test]
fn the_segmenter_cuts_each_message_into_the_listed_segments() {
    let all = committed()["segmentations"].as_array().unwrap().clone();
    for mtu in MTUS {
        for len in LENGTHS.into_iter().filter(|&len| listed(len, mtu)) {
            assert!(
                all.iter()
                    .any(|v| int(&v["mtu"]) == u64::from(mtu) && int(&v["length"]) == len as u64),
                "a vector of {len} bytes at MTU {mtu}"
            );
        }
    }
    for v in &all {
        let (mtu, txn) = (mtu_of(&v["mtu"]), u8::try_from(int(&v["txn"])).unwrap());
        let message = message_of(v);
        let segments = segments_of(v);
        assert_eq!(
            cut(txn, &message, mtu),
            segments,
            "{} bytes at {mtu}",
            message.len()
        );
        assert_eq!(segments.len() as u64, int(&v["segment_count"]));
        let wire: usize = segments.iter().map(Vec::len).sum();
        assert_eq!(wire as u64, int(&v["wire_bytes"]));
        assert_eq!((wire + 3 * segments.len()) as u64, int(&v["att_bytes"]));
    }
}

#[test]
fn the_listed_segments_follow_the_spec_rules_written_out() {
    let v = committed();
    for s in v["segmentations"].as_array().unwrap() {
        let (mtu, txn) = (mtu_of(&s["mtu"]), u8::try_from(int(&s["txn"])).unwrap());
        let message = message_of(s);
        let segments = segments_of(s);
        assert_eq!(spec_segments(txn, &message, &[mtu]), segments);
        // The efficiency formula of section 20: segments, and bytes on the wire.
        let n = message.len();
        assert_eq!(segments.len(), formula_segments(n, mtu));
        assert_eq!(int(&s["wire_bytes"]) as usize, n + 4 + (segments.len() - 1));
        // Every segment fits one ATT write at this MTU; only the last has the end flag.
        let cap = (usize::from(mtu) - 3).min(512);
        for (i, segment) in segments.iter().enumerate() {
            assert!(segment.len() <= cap && !segment.is_empty());
            assert_eq!(segment[0] & 0x80 != 0, i == 0, "BEGIN on the first only");
            assert_eq!(
                segment[0] & 0x40 != 0,
                i == segments.len() - 1,
                "END on the last"
            );
            assert_eq!(
                usize::from(segment[0] & 0x3f),
                i % 64,
                "the sequence number"
            );
        }
    }
    let m = &v["mtu_changes"];
    let writes = m["writes"].as_array().unwrap();
    let mtus: Vec<u16> = writes.iter().map(|w| mtu_of(&w["mtu"])).collect();
    let segments: Vec<Vec<u8>> = writes.iter().map(|w| bytes_of(&w["segment"])).collect();
    let message = rule_message(usize::try_from(int(&m["length"])).unwrap());
    let txn = u8::try_from(int(&m["txn"])).unwrap();
    assert_eq!(spec_segments(txn, &message, &mtus), segments);
}

#[test]
fn a_link_sends_each_message_as_the_listed_segments() {
    for v in committed()["segmentations"].as_array().unwrap() {
        let (mtu, txn) = (mtu_of(&v["mtu"]), u8::try_from(int(&v["txn"])).unwrap());
        let mut link = BleLink::new(LinkConfig::default(), Instant(0));
        // Transaction ids count the link's messages from 0: send `txn` empty ones first.
        for _ in 0..txn {
            link.send(Instant(0), Vec::new()).unwrap();
            link.poll_segment(mtu).unwrap().unwrap();
            link.segment_confirmed(Instant(0));
        }
        assert_eq!(link.send(Instant(0), message_of(v)).unwrap(), txn);
        let mut sent = Vec::new();
        while let Some(segment) = link.poll_segment(mtu).unwrap() {
            // One segment in flight: nothing more until it is confirmed.
            assert_eq!(link.poll_segment(mtu).unwrap(), None);
            sent.push(segment);
            link.segment_confirmed(Instant(0));
        }
        assert_eq!(sent, segments_of(v));
        assert!(link.is_flushed());
    }
}

#[test]
fn the_reassembler_puts_the_listed_segments_back_together() {
    for v in committed()["segmentations"].as_array().unwrap() {
        let mtu = mtu_of(&v["mtu"]);
        let segments = segments_of(v);
        let mut r = Reassembler::new(&LinkConfig::default());
        let (last, rest) = segments.split_last().unwrap();
        for s in rest {
            assert_eq!(r.receive(Instant(0), s, mtu), Ok(Received::Partial));
        }
        assert_eq!(
            r.receive(Instant(0), last, mtu),
            Ok(Received::Message(message_of(v)))
        );
        assert!(!r.is_reassembling());
    }
}

#[test]
fn each_segment_is_checked_against_the_mtu_of_its_own_write() {
    let m = &committed()["mtu_changes"];
    let mut r = Reassembler::new(&LinkConfig::default());
    let mut delivered = None;
    let writes = m["writes"].as_array().unwrap();
    for w in writes {
        let segment = bytes_of(&w["segment"]);
        let mtu = mtu_of(&w["mtu"]);
        // The same segment at a smaller MTU would not fit (apart from those that do).
        if segment.len() > 20 {
            let mut other = Reassembler::new(&LinkConfig::default());
            assert!(matches!(
                other.receive(Instant(0), &segment, 23),
                Err(Error::SegmentTooLong { .. })
            ));
        }
        if let Received::Message(message) = r.receive(Instant(0), &segment, mtu).unwrap() {
            delivered = Some(message);
        }
    }
    let length = usize::try_from(int(&m["length"])).unwrap();
    assert_eq!(delivered, Some(rule_message(length)));
    // The mtus the vector lists, and the MTU-23 writes after them.
    let mtus: Vec<u64> = writes.iter().map(|w| int(&w["mtu"])).collect();
    assert_eq!(mtus[..CHANGING_MTUS.len()], CHANGING_MTUS.map(u64::from));
}

#[test]
fn a_message_cut_by_a_disconnect_is_sent_again_from_its_begin_and_delivered_once() {
    let v = &committed()["reconnect"];
    let mtu = mtu_of(&v["mtu"]);
    let message = bytes_of(&v["message"]);
    let mut sender = BleLink::new(LinkConfig::default(), Instant(0));
    let mut receiver = BleLink::new(LinkConfig::default(), Instant(0));
    sender.send(Instant(0), message.clone()).unwrap();
    let mut delivered = 0;
    let mut begins = 0;
    for step in v["steps"].as_array().unwrap() {
        let write = bytes_of(&step["write"]);
        assert_eq!(sender.poll_segment(mtu).unwrap(), Some(write.clone()));
        if write[0] & 0x80 != 0 {
            begins += 1;
            assert_eq!(write[1], 0, "the same transaction id every time");
        }
        let got = receiver.receive_segment(Instant(0), &write, mtu).unwrap();
        match &step["receiver"] {
            Value::String(s) if s == "partial" || s == "copy dropped" => assert_eq!(got, None),
            outcome => {
                assert_eq!(got, Some(bytes_of(&outcome["delivered"])));
                assert_eq!(got.as_deref(), Some(&message[..]));
                delivered += 1;
            }
        }
        if step["then"] == "write response" {
            sender.segment_confirmed(Instant(0));
        } else {
            sender.link_lost(Instant(0));
            receiver.link_lost(Instant(0));
        }
    }
    assert_eq!((begins, delivered), (3, 1));
    assert_eq!(receiver.stats().duplicates_dropped, 1);
    assert!(sender.is_flushed());
}

#[test]
fn bad_segment_sequences_give_the_named_error() {
    let bad = committed()["bad_sequences"].as_array().unwrap().clone();
    for v in &bad {
        let mtu = mtu_of(&v["mtu"]);
        let steps = v["steps"].as_array().unwrap();
        let mut link = BleLink::new(LinkConfig::default(), Instant(0));
        let outcomes = run_steps(&mut link, mtu, steps);
        let (last, before) = outcomes.split_last().unwrap();
        for (i, o) in before.iter().enumerate() {
            assert_eq!(o, &Ok(()), "{}: step {i}", v["comment"]);
        }
        let e = last.clone().unwrap_err();
        assert_eq!(error_name(&e), v["error"], "{}", v["comment"]);
    }
    // Every framing and timeout variant of the receiver's table has a vector.
    for name in [
        "MtuTooSmall",
        "EmptySegment",
        "SegmentTooLong",
        "TruncatedHeader",
        "MessageTooLong",
        "NoMessageInProgress",
        "UnexpectedBegin",
        "DuplicateSegment",
        "OutOfOrder",
        "Overrun",
        "Truncated",
        "MissingEnd",
        "ReassemblyTimeout",
        "IdleTimeout",
    ] {
        assert!(
            bad.iter().any(|v| v["error"] == name),
            "a vector for {name}"
        );
    }
}

#[test]
fn after_a_framing_error_the_link_stays_usable() {
    for v in committed()["bad_sequences"].as_array().unwrap() {
        if v["error"] == "IdleTimeout" || v["error"] == "MtuTooSmall" {
            continue; // the caller disconnects; no segment is refused
        }
        let mtu = mtu_of(&v["mtu"]);
        let mut link = BleLink::new(LinkConfig::default(), Instant(0));
        run_steps(&mut link, mtu, v["steps"].as_array().unwrap());
        // A later begin segment starts afresh: the half message is gone.
        assert_eq!(
            link.receive_segment(Instant(1), &[0xc0, 0x77, 0x00, 0x01, 0x5a], mtu),
            Ok(Some(vec![0x5a])),
            "{}",
            v["comment"]
        );
    }
}
