//! The segment format's rules (docs/PROTOCOL.md section 20), one test each, named for the
//! rule: each feeds the `Reassembler` (or `Segment::parse`, `Segmenter`, `ServiceInfo`) the
//! bytes that break it and asserts the exact `Error` variant, so removing the rule's check
//! makes its test fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_ble::segment::{BEGIN, END};
use zerotouch_ble::{
    BleLink, Error, LinkConfig, MAX_MESSAGE_LEN, PROFILE_VERSION, Reassembler, Received, Segment,
    Segmenter, ServiceInfo, segment_capacity,
};
use zerotouch_core::Instant;

const T0: Instant = Instant(0);

/// A message whose bytes tell their position apart.
fn message(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// Every segment of `message` at `mtu`, cut by the real segmenter.
fn segments(txn: u8, message: &[u8], mtu: u16) -> Vec<Vec<u8>> {
    let mut segmenter = Segmenter::new(txn, message.to_vec(), MAX_MESSAGE_LEN).unwrap();
    let mut out = Vec::new();
    while let Some(segment) = segmenter.next_segment(mtu).unwrap() {
        out.push(segment);
    }
    out
}

fn reassembler() -> Reassembler {
    Reassembler::new(&LinkConfig::default())
}

/// Feeds `segments` at `mtu`, all of which must be accepted; returns the last result.
fn feed(r: &mut Reassembler, segments: &[Vec<u8>], mtu: u16) -> Received {
    let mut last = Received::Partial;
    for s in segments {
        last = r.receive(T0, s, mtu).unwrap();
    }
    last
}

/// What the segment `next` gets at MTU 23 after `first` were accepted.
fn after(first: &[Vec<u8>], next: &[u8]) -> Result<Received, Error> {
    let mut r = reassembler();
    feed(&mut r, first, 23);
    r.receive(T0, next, 23)
}

/// A begin segment by hand: control, txn, total, payload.
fn begin(end: bool, seq: u8, txn: u8, total: u16, payload: &[u8]) -> Vec<u8> {
    let [t0, t1] = total.to_be_bytes();
    let mut s = vec![BEGIN | if end { END } else { 0 } | seq, txn, t0, t1];
    s.extend_from_slice(payload);
    s
}

/// A continuation segment by hand.
fn continuation(end: bool, seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![if end { END } else { 0 } | seq];
    s.extend_from_slice(payload);
    s
}

#[test]
fn segment_longer_than_mtu_minus_3_is_refused() {
    for (mtu, max) in [(23u16, 20usize), (24, 21), (100, 97), (247, 244)] {
        let ok = begin(false, 0, 1, 1000, &vec![0; max - 4]);
        assert_eq!(ok.len(), max);
        assert!(Segment::parse(&ok, mtu).is_ok());
        let long = begin(false, 0, 1, 1000, &vec![0; max - 3]);
        let refused = Some(Error::SegmentTooLong { len: max + 1, max });
        assert_eq!(Segment::parse(&long, mtu).err(), refused);
        assert_eq!(reassembler().receive(T0, &long, mtu).err(), refused);
    }
    // A continuation one byte too long, in the middle of a message.
    assert_eq!(
        after(
            &[begin(false, 0, 1, 1000, &[0; 16])],
            &continuation(false, 1, &[0; 20])
        ),
        Err(Error::SegmentTooLong { len: 21, max: 20 })
    );
}

#[test]
fn each_segment_is_checked_against_the_mtu_it_came_at() {
    let mut r = reassembler();
    // 40 bytes is fine at MTU 50 and too long at MTU 23 for the very same message.
    feed(&mut r, &[begin(false, 0, 1, 200, &[1; 36])], 50);
    feed(&mut r, &[continuation(false, 1, &[2; 39])], 50);
    assert_eq!(
        r.receive(T0, &continuation(false, 2, &[3; 39]), 23),
        Err(Error::SegmentTooLong { len: 40, max: 20 })
    );
}

#[test]
fn continuation_without_begin_is_refused() {
    let mut r = reassembler();
    for end in [false, true] {
        assert_eq!(
            r.receive(T0, &continuation(end, 1, b"abc"), 23),
            Err(Error::NoMessageInProgress)
        );
    }
    // Nor after a message was completed.
    let m = message(30);
    let s = segments(0, &m, 23);
    assert_eq!(feed(&mut r, &s, 23), Received::Message(m));
    assert_eq!(
        r.receive(T0, &continuation(true, 2, b"abc"), 23),
        Err(Error::NoMessageInProgress)
    );
}

#[test]
fn duplicated_segment_is_refused() {
    let m = message(100);
    let s = segments(4, &m, 23);
    assert_eq!(
        after(&s[..3], &s[2]),
        Err(Error::DuplicateSegment { seq: 2 })
    );
}

#[test]
fn out_of_order_segment_is_refused() {
    let m = message(100);
    let s = segments(4, &m, 23);
    assert_eq!(
        after(&s[..2], &s[3]),
        Err(Error::OutOfOrder {
            expected: 2,
            got: 3
        })
    );
    // Going backwards further than one is out of order too, not a duplicate.
    assert_eq!(
        after(&s[..4], &s[1]),
        Err(Error::OutOfOrder {
            expected: 4,
            got: 1
        })
    );
}

#[test]
fn end_before_announced_length_is_truncated() {
    assert_eq!(
        after(
            &[begin(false, 0, 9, 50, &[1; 16])],
            &continuation(true, 1, &[2; 5])
        ),
        Err(Error::Truncated {
            received: 21,
            total: 50
        })
    );
    // A single begin-and-end segment shorter than its total.
    assert_eq!(
        reassembler().receive(T0, &begin(true, 0, 9, 20, &[1; 10]), 23),
        Err(Error::Truncated {
            received: 10,
            total: 20
        })
    );
}

#[test]
fn bytes_past_announced_length_are_an_overrun() {
    // In the begin segment itself.
    assert_eq!(
        reassembler().receive(T0, &begin(true, 0, 1, 10, &[1; 16]), 23),
        Err(Error::Overrun { total: 10 })
    );
    // In a continuation.
    assert_eq!(
        after(
            &[begin(false, 0, 1, 20, &[1; 16])],
            &continuation(true, 1, &[2; 5])
        ),
        Err(Error::Overrun { total: 20 })
    );
}

#[test]
fn last_byte_without_end_flag_is_refused() {
    assert_eq!(
        reassembler().receive(T0, &begin(false, 0, 1, 16, &[1; 16]), 23),
        Err(Error::MissingEnd { total: 16 })
    );
    // An empty message must say it ends in its begin segment.
    assert_eq!(
        reassembler().receive(T0, &begin(false, 0, 1, 0, &[]), 23),
        Err(Error::MissingEnd { total: 0 })
    );
    assert_eq!(
        after(
            &[begin(false, 0, 1, 30, &[1; 16])],
            &continuation(false, 1, &[2; 14])
        ),
        Err(Error::MissingEnd { total: 30 })
    );
}

#[test]
fn message_longer_than_limit_is_refused_at_its_begin_segment() {
    let config = LinkConfig {
        max_message_len: 100,
        ..LinkConfig::default()
    };
    let mut r = Reassembler::new(&config);
    // Refused on the begin segment, before any more bytes come.
    assert_eq!(
        r.receive(T0, &begin(false, 0, 1, 101, &[0; 16]), 23),
        Err(Error::MessageTooLong { len: 101, max: 100 })
    );
    assert!(!r.is_reassembling());
    assert_eq!(
        feed(&mut r, &segments(2, &message(100), 23), 23),
        Received::Message(message(100))
    );
    // The default limit is the longest flow-2 frame.
    let mut r = reassembler();
    let too_long = u16::try_from(MAX_MESSAGE_LEN + 1).unwrap();
    assert_eq!(
        r.receive(T0, &begin(false, 0, 1, too_long, &[0; 16]), 23),
        Err(Error::MessageTooLong {
            len: MAX_MESSAGE_LEN + 1,
            max: MAX_MESSAGE_LEN
        })
    );
    // The sender refuses it too.
    assert_eq!(
        Segmenter::new(0, message(101), 100).err(),
        Some(Error::MessageTooLong { len: 101, max: 100 })
    );
    let mut link = BleLink::new(config, T0);
    assert_eq!(
        link.send(T0, message(101)),
        Err(Error::MessageTooLong { len: 101, max: 100 })
    );
    assert!(link.is_flushed());
}

#[test]
fn begin_inside_a_message_is_refused() {
    assert_eq!(
        after(
            &segments(7, &message(100), 23)[..2],
            &segments(8, &message(10), 23)[0]
        ),
        Err(Error::UnexpectedBegin { txn: 7 })
    );
}

#[test]
fn begin_with_nonzero_sequence_is_refused() {
    for seq in [1, 5, 63] {
        assert_eq!(
            reassembler().receive(T0, &begin(true, seq, 1, 3, b"abc"), 23),
            Err(Error::OutOfOrder {
                expected: 0,
                got: seq
            })
        );
    }
}

#[test]
fn empty_segment_is_refused() {
    assert_eq!(Segment::parse(&[], 23), Err(Error::EmptySegment));
    assert_eq!(reassembler().receive(T0, &[], 23), Err(Error::EmptySegment));
    // A continuation carries at least one byte.
    assert_eq!(
        after(
            &[begin(false, 0, 1, 30, &[1; 16])],
            &continuation(false, 1, &[])
        ),
        Err(Error::EmptySegment)
    );
}

#[test]
fn begin_segment_shorter_than_its_header_is_refused() {
    for bytes in [&[BEGIN][..], &[BEGIN | END, 1], &[BEGIN, 1, 0]] {
        let refused = Some(Error::TruncatedHeader { len: bytes.len() });
        assert_eq!(Segment::parse(bytes, 23).err(), refused);
        assert_eq!(reassembler().receive(T0, bytes, 23).err(), refused);
    }
    // Exactly the header: an empty message.
    assert_eq!(
        reassembler().receive(T0, &[BEGIN | END, 1, 0, 0], 23),
        Ok(Received::Message(Vec::new()))
    );
}

#[test]
fn segment_never_exceeds_512_even_at_mtu_517() {
    assert_eq!(segment_capacity(514), Ok(511));
    assert_eq!(segment_capacity(515), Ok(512));
    assert_eq!(segment_capacity(517), Ok(512));
    assert_eq!(segment_capacity(u16::MAX), Ok(512));
    let m = message(MAX_MESSAGE_LEN);
    for mtu in [515, 516, 517, u16::MAX] {
        let s = segments(0, &m, mtu);
        assert!(s.iter().all(|s| s.len() <= 512), "at MTU {mtu}");
        assert_eq!(s[0].len(), 512);
        assert_eq!(s.len(), 9); // 508 + 8 × 511 = 4,596 >= 4,202
        assert_eq!(
            feed(&mut reassembler(), &s, mtu),
            Received::Message(m.clone())
        );
    }
    let long = begin(false, 0, 1, 4000, &[0; 509]);
    assert_eq!(
        Segment::parse(&long, 517),
        Err(Error::SegmentTooLong { len: 513, max: 512 })
    );
    assert_eq!(
        reassembler().receive(T0, &long, 517),
        Err(Error::SegmentTooLong { len: 513, max: 512 })
    );
}

#[test]
fn mtu_below_23_is_refused() {
    for mtu in [0, 1, 3, 22] {
        let refused = Some(Error::MtuTooSmall { mtu });
        assert_eq!(segment_capacity(mtu).err(), refused);
        assert_eq!(Segment::parse(&[BEGIN | END, 0, 0, 0], mtu).err(), refused);
        assert_eq!(
            reassembler()
                .receive(T0, &[BEGIN | END, 0, 0, 0], mtu)
                .err(),
            refused
        );
        let mut segmenter = Segmenter::new(0, message(5), MAX_MESSAGE_LEN).unwrap();
        assert_eq!(segmenter.next_segment(mtu).err(), refused);
        let mut link = BleLink::new(LinkConfig::default(), T0);
        link.send(T0, message(5)).unwrap();
        assert_eq!(link.poll_segment(mtu).err(), refused);
        assert!(!link.is_in_flight());
        // The message is still there for a usable MTU.
        assert!(link.poll_segment(23).unwrap().is_some());
    }
    assert_eq!(segment_capacity(23), Ok(20));
}

#[test]
fn a_refused_segment_drops_the_half_message_and_the_next_begin_starts_afresh() {
    let first = message(100);
    let s = segments(3, &first, 23);
    let mut r = reassembler();
    feed(&mut r, &s[..3], 23);
    assert_eq!(
        r.receive(T0, &s[4], 23),
        Err(Error::OutOfOrder {
            expected: 3,
            got: 4
        })
    );
    // The half message is gone: its next segment has nothing to continue.
    assert!(!r.is_reassembling());
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(r.receive(T0, &s[3], 23), Err(Error::NoMessageInProgress));
    // A begin starts afresh (no `UnexpectedBegin`), the same message sent again included.
    assert_eq!(feed(&mut r, &s, 23), Received::Message(first));
    let second = message(45);
    assert_eq!(
        feed(&mut r, &segments(4, &second, 23), 23),
        Received::Message(second)
    );
}

#[test]
fn info_value_round_trips_and_other_versions_are_refused() {
    let info = ServiceInfo {
        version: PROFILE_VERSION,
        max_message_len: 4202,
        instance: 0x0102_0304,
    };
    let bytes = info.encode();
    assert_eq!(bytes, [1, 0x10, 0x6a, 1, 2, 3, 4]);
    assert_eq!(bytes.len(), ServiceInfo::LEN);
    assert_eq!(ServiceInfo::decode(&bytes), Ok(info));
    for version in [0, 2, 0xff] {
        let mut other = bytes;
        other[0] = version;
        assert_eq!(
            ServiceInfo::decode(&other),
            Err(Error::UnsupportedVersion(version))
        );
    }
    for len in [0, 1, 6, 8, 20] {
        let mut value = bytes.to_vec();
        value.resize(len, 0);
        assert!(
            matches!(ServiceInfo::decode(&value), Err(Error::MalformedInfo(_))),
            "{len} bytes"
        );
    }
}

#[test]
fn wire_layout_of_begin_and_continuation_segments() {
    // 40 bytes at MTU 23: 16 after the 4-byte begin header, then 19 and 5.
    let m = message(40);
    let s = segments(0x2a, &m, 23);
    assert_eq!(s.len(), 3);
    assert_eq!(&s[0][..4], &[0x80, 0x2a, 0x00, 40]);
    assert_eq!(&s[0][4..], &m[..16]);
    assert_eq!(s[1][0], 0x01);
    assert_eq!(&s[1][1..], &m[16..35]);
    assert_eq!(s[2][0], 0x40 | 0x02);
    assert_eq!(&s[2][1..], &m[35..]);
    // A message in one segment has both markers; an empty one is the header alone.
    assert_eq!(segments(5, &[9, 8], 23), vec![vec![0xc0, 5, 0, 2, 9, 8]]);
    assert_eq!(segments(6, &[], 23), vec![vec![0xc0, 6, 0, 0]]);
    assert_eq!(
        Segment::parse(&s[0], 23),
        Ok(Segment::Begin {
            end: false,
            seq: 0,
            txn: 0x2a,
            total: 40,
            payload: &m[..16],
        })
    );
    assert_eq!(
        Segment::parse(&s[2], 23),
        Ok(Segment::Continuation {
            end: true,
            seq: 2,
            payload: &m[35..],
        })
    );
}

#[test]
fn sequence_numbers_wrap_modulo_64() {
    let m = message(MAX_MESSAGE_LEN);
    let s = segments(0, &m, 23);
    // 16 bytes, then 19 a segment: 1 + ceil(4186 / 19) = 222 segments.
    assert_eq!(s.len(), 222);
    for (i, segment) in s.iter().enumerate() {
        assert_eq!(usize::from(segment[0] & 0x3f), i % 64, "segment {i}");
    }
    assert_eq!(feed(&mut reassembler(), &s, 23), Received::Message(m));
    // After the wrap, the 64th segment again is not the 0th.
    assert_eq!(
        after(&s[..64], &s[1]),
        Err(Error::OutOfOrder {
            expected: 0,
            got: 1
        })
    );
}

#[test]
fn a_copy_of_the_last_delivered_message_is_checked_and_dropped() {
    let m = message(60);
    let s = segments(9, &m, 23);
    let mut r = reassembler();
    assert_eq!(feed(&mut r, &s, 23), Received::Message(m.clone()));
    r.link_reset();
    assert_eq!(feed(&mut r, &s, 23), Received::Duplicate { txn: 9 });
    // The copy is held to every rule.
    feed(&mut r, &s[..1], 23);
    assert_eq!(
        r.receive(T0, &continuation(true, 1, &[0; 19]), 23),
        Err(Error::Truncated {
            received: 35,
            total: 60
        })
    );
    // The next transaction id is a new message.
    let next = message(61);
    assert_eq!(
        feed(&mut r, &segments(10, &next, 23), 23),
        Received::Message(next)
    );
}

#[test]
fn a_begun_message_not_finished_within_the_reassembly_timeout_is_dropped() {
    let config = LinkConfig {
        reassembly_timeout_ms: 1000,
        ..LinkConfig::default()
    };
    let mut r = Reassembler::new(&config);
    let s = segments(2, &message(100), 23);
    r.receive(Instant(500), &s[0], 23).unwrap();
    assert_eq!(r.poll_timeout(), Some(Instant(1500)));
    // Later segments do not push the deadline back.
    r.receive(Instant(1400), &s[1], 23).unwrap();
    assert_eq!(r.poll_timeout(), Some(Instant(1500)));
    assert_eq!(r.handle_timeout(Instant(1499)), Ok(()));
    assert_eq!(
        r.handle_timeout(Instant(1500)),
        Err(Error::ReassemblyTimeout { txn: 2 })
    );
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(
        r.receive(Instant(1501), &s[2], 23),
        Err(Error::NoMessageInProgress)
    );
}

#[test]
fn a_new_message_reusing_the_last_transaction_id_is_delivered() {
    // A central that restarted numbers its messages from 0 again; the peripheral kept its
    // link. Same id, other bytes: a new message, not a copy.
    let first = message(60);
    let mut r = reassembler();
    assert_eq!(
        feed(&mut r, &segments(0, &first, 23), 23),
        Received::Message(first.clone())
    );
    r.link_reset();
    let mut other = first.clone();
    other[59] ^= 1;
    assert_eq!(
        feed(&mut r, &segments(0, &other, 23), 23),
        Received::Message(other)
    );
}

#[test]
fn a_segment_after_the_reassembly_deadline_is_refused_before_the_timer_runs() {
    let config = LinkConfig {
        reassembly_timeout_ms: 1000,
        ..LinkConfig::default()
    };
    let mut r = Reassembler::new(&config);
    let s = segments(4, &message(100), 23);
    r.receive(Instant(0), &s[0], 23).unwrap();
    assert_eq!(
        r.receive(Instant(1000), &s[1], 23),
        Err(Error::ReassemblyTimeout { txn: 4 })
    );
    assert!(!r.is_reassembling());
}
