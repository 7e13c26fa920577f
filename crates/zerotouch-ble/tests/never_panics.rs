//! The framing at every MTU and on any input: a round trip through two `BleLink`s at every
//! ATT MTU from 23 to 517, each segment within `min(MTU - 3, 512)`; and `Segment::parse`,
//! `Reassembler::receive`, `ServiceInfo::decode` and `BleLink` never panic on arbitrary bytes,
//! arbitrary segment sequences (real segments mutated, or made up) at arbitrary MTUs, and
//! what they deliver is what was sent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use proptest::prelude::*;
use zerotouch_ble::segment::{BEGIN, END, SEQ_MASK};
use zerotouch_ble::{
    BleLink, LinkConfig, MAX_MESSAGE_LEN, MIN_ATT_MTU, Reassembler, Received, Segment, Segmenter,
    ServiceInfo,
};
use zerotouch_core::Instant;

const T0: Instant = Instant(0);

fn message(len: usize, salt: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9) ^ salt) as u8)
        .collect()
}

/// Sends `message` from one link to another at `mtu`; checks every segment's size and
/// returns how many there were.
fn round_trip(message: &[u8], mtu: u16) -> usize {
    let capacity = (usize::from(mtu) - 3).min(512);
    let mut sender = BleLink::new(LinkConfig::default(), T0);
    let mut receiver = BleLink::new(LinkConfig::default(), T0);
    sender.send(T0, message.to_vec()).unwrap();
    let mut delivered = Vec::new();
    let mut count = 0;
    while let Some(segment) = sender.poll_segment(mtu).unwrap() {
        assert!(
            segment.len() <= capacity,
            "{} bytes at MTU {mtu}",
            segment.len()
        );
        count += 1;
        delivered.extend(receiver.receive_segment(T0, &segment, mtu).unwrap());
        sender.segment_confirmed(T0);
    }
    assert!(sender.is_flushed());
    assert_eq!(delivered.len(), 1, "at MTU {mtu}");
    assert!(delivered[0] == message, "at MTU {mtu}");
    count
}

/// The fewest segments `len` bytes can take with a 4-byte begin header and 1-byte headers
/// after: what the segmenter must achieve (every segment but the last full).
fn fewest_segments(len: usize, mtu: u16) -> usize {
    let capacity = (usize::from(mtu) - 3).min(512);
    1 + len.saturating_sub(capacity - 4).div_ceil(capacity - 1)
}

#[test]
fn every_mtu_from_23_to_517_round_trips_and_fills_its_segments() {
    for len in [0, 1, 2, 100, MAX_MESSAGE_LEN] {
        let m = message(len, len as u64);
        for mtu in MIN_ATT_MTU..=517 {
            assert_eq!(
                round_trip(&m, mtu),
                fewest_segments(len, mtu),
                "{len} bytes at MTU {mtu}"
            );
        }
    }
}

/// What a reassembler may deliver, worked out independently: the payloads since the last
/// begin segment it accepted.
#[derive(Default)]
struct Shadow {
    total: usize,
    bytes: Vec<u8>,
    /// Transaction id and bytes of the last message delivered.
    last_delivered: Option<(u8, Vec<u8>)>,
    txn: Option<u8>,
}

impl Shadow {
    /// Checks the reassembler's answer to `segment` against what the shadow expects.
    fn check(&mut self, segment: &[u8], mtu: u16, got: &Result<Received, zerotouch_ble::Error>) {
        let Ok(received) = got else {
            self.txn = None;
            return;
        };
        let parsed = Segment::parse(segment, mtu).expect("accepted but does not parse");
        match parsed {
            Segment::Begin {
                txn,
                total,
                payload,
                ..
            } => {
                self.txn = Some(txn);
                self.total = usize::from(total);
                self.bytes = payload.to_vec();
            }
            Segment::Continuation { payload, .. } => {
                assert!(
                    self.txn.is_some(),
                    "continuation accepted with nothing begun"
                );
                self.bytes.extend_from_slice(payload);
            }
        }
        assert!(self.bytes.len() <= self.total);
        match received {
            Received::Partial => assert!(self.bytes.len() < self.total),
            Received::Message(m) => {
                assert!(m.len() <= MAX_MESSAGE_LEN);
                assert_eq!(m.len(), self.total);
                assert!(*m == self.bytes);
                let delivered = self.txn.map(|txn| (txn, self.bytes.clone()));
                // Same id and same bytes as the last one is a copy, never delivered again.
                assert_ne!(delivered, self.last_delivered);
                self.last_delivered = delivered;
                self.txn = None;
            }
            Received::Duplicate { txn } => {
                assert_eq!(Some((*txn, self.bytes.clone())), self.last_delivered);
                assert_eq!(self.bytes.len(), self.total);
                self.txn = None;
            }
        }
    }
}

fn mtu() -> impl Strategy<Value = u16> {
    prop_oneof![
        8 => MIN_ATT_MTU..=517u16,
        1 => any::<u16>(),
    ]
}

/// A made-up segment: a plausible control byte (begin or not, end or not, a small sequence
/// number) and header, or anything at all.
fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (any::<bool>(), any::<bool>(), 0u8..4, 0u8..3, 0u16..300, prop::collection::vec(any::<u8>(), 0..60))
            .prop_map(|(begin, end, seq, txn, total, payload)| {
                let mut s = vec![
                    if begin { BEGIN } else { 0 } | if end { END } else { 0 } | (seq & SEQ_MASK),
                ];
                if begin {
                    s.push(txn);
                    s.extend_from_slice(&total.to_be_bytes());
                }
                s.extend(payload);
                s
            }),
        1 => prop::collection::vec(any::<u8>(), 0..600),
    ]
}

/// What happens to the real segments of a few messages on their way.
#[derive(Debug, Clone)]
enum Mutation {
    Keep,
    Drop,
    Repeat,
    Swap,
    Flip(usize, u8),
    Truncate(usize),
    LinkReset,
    Timeout(u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        12 => Just(Mutation::Keep),
        1 => Just(Mutation::Drop),
        1 => Just(Mutation::Repeat),
        1 => Just(Mutation::Swap),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => Just(Mutation::LinkReset),
        1 => (0u64..60_000).prop_map(Mutation::Timeout),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_mtu_any_length_round_trips(mtu in MIN_ATT_MTU..=517u16, len in 0..=MAX_MESSAGE_LEN) {
        let m = message(len, u64::from(mtu));
        prop_assert_eq!(round_trip(&m, mtu), fewest_segments(len, mtu));
    }

    #[test]
    fn parse_and_decode_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), mtu in any::<u16>()) {
        if let Ok(segment) = Segment::parse(&bytes, mtu) {
            prop_assert!(mtu >= MIN_ATT_MTU);
            prop_assert!(bytes.len() <= (usize::from(mtu) - 3).min(512));
            let payload = match segment {
                Segment::Begin { payload, .. } => payload.len() + 4,
                Segment::Continuation { payload, .. } => payload.len() + 1,
            };
            prop_assert_eq!(payload, bytes.len());
        }
        if let Ok(info) = ServiceInfo::decode(&bytes) {
            prop_assert_eq!(&info.encode()[..], &bytes[..]);
        }
        let _ = Reassembler::new(&LinkConfig::default()).receive(T0, &bytes, mtu);
    }

    #[test]
    fn made_up_segments_never_panic_and_deliver_only_what_they_carry(
        segments in prop::collection::vec((segment(), mtu(), 0u64..50_000), 0..80),
        limit in prop_oneof![Just(MAX_MESSAGE_LEN), 0usize..200],
    ) {
        let config = LinkConfig { max_message_len: limit, reassembly_timeout_ms: 20_000, ..LinkConfig::default() };
        let mut reassembler = Reassembler::new(&config);
        let mut link = BleLink::new(config, T0);
        let mut shadow = Shadow::default();
        let mut now = 0;
        for (segment, mtu, step) in &segments {
            now += step;
            if reassembler.handle_timeout(Instant(now)).is_err() {
                shadow.txn = None;
            }
            let _ = link.handle_timeout(Instant(now));
            let got = reassembler.receive(Instant(now), segment, *mtu);
            if let Ok(Received::Message(m)) = &got {
                prop_assert!(m.len() <= limit);
            }
            shadow.check(segment, *mtu, &got);
            prop_assert_eq!(reassembler.is_reassembling(), shadow.txn.is_some());
            prop_assert_eq!(reassembler.poll_timeout().is_some(), reassembler.is_reassembling());
            // The link's reassembler answers the same.
            let from_link = link.receive_segment(Instant(now), segment, *mtu);
            match (&got, &from_link) {
                (Ok(Received::Message(a)), Ok(Some(b))) => prop_assert_eq!(a, b),
                (Ok(_), Ok(None)) => {}
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "reassembler {:?}, link {:?}", a, b),
            }
        }
    }

    #[test]
    fn mutated_real_segments_never_panic_and_deliver_only_what_was_sent(
        lens in prop::collection::vec(0..=600usize, 1..5),
        mtus in prop::collection::vec(MIN_ATT_MTU..=517u16, 1..8),
        mutations in prop::collection::vec(mutation(), 0..120),
    ) {
        let messages: Vec<Vec<u8>> =
            lens.iter().enumerate().map(|(i, &len)| message(len, i as u64)).collect();
        // The real segments of every message, each at the MTU of its moment.
        let mut wire = Vec::new();
        let mut k = 0;
        for (txn, m) in messages.iter().enumerate() {
            let mut segmenter = Segmenter::new(txn as u8, m.clone(), MAX_MESSAGE_LEN).unwrap();
            loop {
                let mtu = mtus[k % mtus.len()];
                k += 1;
                match segmenter.next_segment(mtu).unwrap() {
                    Some(segment) => wire.push((segment, mtu)),
                    None => break,
                }
            }
        }
        let config = LinkConfig { reassembly_timeout_ms: 20_000, ..LinkConfig::default() };
        let mut reassembler = Reassembler::new(&config);
        let mut shadow = Shadow::default();
        let mut now = 0;
        let mut i = 0;
        let mut corrupted = false;
        let mut mutations = mutations.into_iter();
        while i < wire.len() {
            let mutation = mutations.next().unwrap_or(Mutation::Keep);
            if matches!(mutation, Mutation::Swap) && i + 1 < wire.len() {
                wire.swap(i, i + 1);
            }
            let (mut segment, mtu) = wire[i].clone();
            let mut again = false;
            match mutation {
                Mutation::Keep | Mutation::Swap => {}
                Mutation::Drop => {
                    i += 1;
                    continue;
                }
                // Fed now, and again next time round.
                Mutation::Repeat => again = true,
                Mutation::Flip(at, bits) => {
                    if !segment.is_empty() {
                        let at = at % segment.len();
                        segment[at] ^= bits;
                        corrupted |= bits != 0;
                    }
                }
                Mutation::Truncate(at) => segment.truncate(at % (segment.len() + 1)),
                Mutation::LinkReset => {
                    reassembler.link_reset();
                    shadow.txn = None;
                }
                Mutation::Timeout(ms) => {
                    now += ms;
                    if reassembler.handle_timeout(Instant(now)).is_err() {
                        shadow.txn = None;
                    }
                }
            }
            let got = reassembler.receive(Instant(now), &segment, mtu);
            if let Ok(Received::Message(m)) = &got {
                // Nothing in the format protects the payload (ATT does): a flipped payload
                // byte is delivered; anything else delivers a message that was sent or none.
                prop_assert!(corrupted || messages.contains(m), "delivered {} bytes never sent", m.len());
            }
            shadow.check(&segment, mtu, &got);
            if !again {
                i += 1;
            }
        }
    }

    #[test]
    fn link_operations_in_any_order_never_panic(
        ops in prop::collection::vec((0u8..7, any::<u16>(), 0..=MAX_MESSAGE_LEN + 10), 0..60),
    ) {
        let mut a = BleLink::new(LinkConfig::default(), T0);
        let mut b = BleLink::new(LinkConfig::default(), T0);
        let mut sent = Vec::new();
        let mut delivered = Vec::new();
        let mut now = 0;
        for (op, mtu, n) in ops {
            match op {
                0 => {
                    let m = message(n, sent.len() as u64);
                    if a.send(Instant(now), m.clone()).is_ok() {
                        sent.push(m);
                    } else {
                        prop_assert!(n > MAX_MESSAGE_LEN);
                    }
                }
                1 | 2 => {
                    // A segment at an MTU that may be too small, delivered or lost.
                    if let Ok(Some(segment)) = a.poll_segment(mtu)
                        && op == 1
                        && let Ok(Some(m)) = b.receive_segment(Instant(now), &segment, mtu)
                    {
                        delivered.push(m);
                    }
                }
                3 => a.segment_confirmed(Instant(now)),
                4 => {
                    a.link_lost(Instant(now));
                    b.link_lost(Instant(now));
                }
                5 => {
                    now += u64::from(mtu) * 16;
                    let _ = a.handle_timeout(Instant(now));
                    let _ = b.handle_timeout(Instant(now));
                }
                _ => {
                    let _ = b.receive_segment(Instant(now), &message(n % 600, 1), mtu);
                }
            }
            // Lost segments and garbage drop messages, never reorder, repeat or invent them.
            let mut rest = sent.iter();
            for d in &delivered {
                prop_assert!(d.len() <= MAX_MESSAGE_LEN);
                prop_assert!(rest.any(|s| s == d), "delivered {} bytes out of order or never sent", d.len());
            }
        }
    }
}
