//! The BLE binding's receiving side fed arbitrary segments: the input is a series of records
//! (a segment written at any MTU, the link lost, time passing; the format is in
//! `zerotouch_fuzz::ble`) given both to a `Reassembler` and to a `BleLink`. Neither may panic,
//! and whatever the input: they agree on every segment; a message is delivered only when
//! the payloads since the begin segment they accepted add up to its announced length, and it
//! is exactly those bytes, no longer than the limit; a message is dropped as a copy exactly
//! when its transaction id and bytes are the last delivered message's; a reassembly deadline exists exactly while a message is half
//! received; and every accepted segment fits `min(MTU - 3, 512)`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_ble::{BleLink, Reassembler, Received, Segment, segment_capacity};
use zerotouch_core::Instant;
use zerotouch_fuzz::ble::{OP_LINK_LOST, OP_TIME, config};

/// What the receiver should hold, worked out from the accepted segments alone.
#[derive(Default)]
struct Expected {
    /// The transaction id, announced length and bytes so far of the message begun.
    begun: Option<(u8, usize, Vec<u8>)>,
    /// The transaction id and bytes of the last message delivered.
    last_delivered: Option<(u8, Vec<u8>)>,
}

fuzz_target!(|data: &[u8]| {
    let (&flags, mut rest) = data.split_first().unwrap_or((&0, &[]));
    let mut next = 0;
    if matches!(flags % 4, 1 | 2) {
        if let Some((&b, r)) = rest.split_first() {
            next = b;
            rest = r;
        }
    }
    let config = config(flags, next);
    let mut reassembler = Reassembler::new(&config);
    let mut link = BleLink::new(config, Instant(0));
    let mut expected = Expected::default();
    let mut now = 0u64;
    while let [op, m0, m1, l0, l1, tail @ ..] = rest {
        let mtu = u16::from_be_bytes([*m0, *m1]);
        let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
        let (segment, after) = tail.split_at(len);
        rest = after;
        match op % 8 {
            OP_LINK_LOST => {
                reassembler.link_reset();
                link.link_lost(Instant(now));
                expected.begun = None;
            }
            OP_TIME => {
                now += u64::from(mtu) * 16;
                let timed_out = reassembler.handle_timeout(Instant(now)).is_err();
                // The link's own idle timeout may fire too; its reassembly one is the same.
                let _ = link.handle_timeout(Instant(now));
                if timed_out {
                    expected.begun = None;
                }
            }
            _ => {
                let got = reassembler.receive(Instant(now), segment, mtu);
                let from_link = link.receive_segment(Instant(now), segment, mtu);
                match (&got, &from_link) {
                    (Ok(Received::Message(a)), Ok(Some(b))) => assert_eq!(a, b),
                    (Ok(Received::Partial | Received::Duplicate { .. }), Ok(None)) => {}
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    (a, b) => panic!("reassembler {a:?}, link {b:?}"),
                }
                check(&mut expected, segment, mtu, got, config.max_message_len);
            }
        }
        assert_eq!(reassembler.is_reassembling(), expected.begun.is_some());
        assert_eq!(
            reassembler.poll_timeout().is_some(),
            reassembler.is_reassembling()
        );
    }
});

fn check(
    expected: &mut Expected,
    segment: &[u8],
    mtu: u16,
    got: Result<Received, zerotouch_ble::Error>,
    limit: usize,
) {
    let Ok(received) = got else {
        // A refused segment drops the half message.
        expected.begun = None;
        return;
    };
    let Ok(capacity) = segment_capacity(mtu) else {
        panic!("a segment accepted at MTU {mtu}");
    };
    assert!(segment.len() <= capacity);
    match Segment::parse(segment, mtu) {
        Ok(Segment::Begin {
            txn,
            total,
            payload,
            ..
        }) => {
            assert!(expected.begun.is_none(), "a begin accepted mid-message");
            expected.begun = Some((txn, usize::from(total), payload.to_vec()));
        }
        Ok(Segment::Continuation { payload, .. }) => match &mut expected.begun {
            Some((_, _, bytes)) => bytes.extend_from_slice(payload),
            None => panic!("a continuation accepted with nothing begun"),
        },
        Err(e) => panic!("accepted a segment that does not parse: {e:?}"),
    }
    let Some((txn, total, bytes)) = expected.begun.take() else {
        return;
    };
    assert!(
        total <= limit,
        "{total} bytes begun above the limit {limit}"
    );
    match received {
        Received::Partial => {
            assert!(bytes.len() < total);
            expected.begun = Some((txn, total, bytes));
        }
        Received::Message(message) => {
            assert!(message.len() <= limit);
            assert_eq!(message.len(), total);
            assert!(message == bytes, "delivered bytes that were not sent");
            // The same id and bytes as the last one is a copy, never delivered again; a new
            // message reusing the id (a central that restarted) is delivered.
            let delivered = Some((txn, bytes));
            assert!(
                delivered != expected.last_delivered,
                "a copy delivered again"
            );
            expected.last_delivered = delivered;
        }
        Received::Duplicate { txn: copy } => {
            assert_eq!(copy, txn);
            assert_eq!(bytes.len(), total);
            assert!(
                Some((txn, bytes)) == expected.last_delivered,
                "dropped as a copy but not the last message delivered"
            );
        }
    }
}
