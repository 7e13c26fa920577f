//! The input format of `ble_reassemble` and its seeds.
//!
//! An input is a flags byte, then records `op | mtu (u16 BE) | len (u16 BE) | len bytes` (a
//! short last record takes what is left). `flags % 4` picks the receiver's message limit:
//! 0 the default (4,202), 1 the next byte, 2 the next byte × 16, 3 none above 65,535. `op %
//! 8`: 0 to 5 the bytes are one segment written at `mtu`; 6 the link is lost (both the
//! `Reassembler` and the `BleLink` reset); 7 the clock moves on by `mtu` × 16 ms and both
//! handle their timeouts. The seeds are real segmentations: messages of several sizes at MTU
//! 23, 185, 247 and 517, an MTU change mid-message, a message cut by a disconnect and sent
//! again, and a copy of a delivered message.

use zerotouch_ble::{LinkConfig, MAX_MESSAGE_LEN, Segmenter};

use crate::Seed;

/// A record's operation: one segment.
pub const OP_SEGMENT: u8 = 0;
/// A record's operation: the link is lost.
pub const OP_LINK_LOST: u8 = 6;
/// A record's operation: time passes.
pub const OP_TIME: u8 = 7;

/// The receiver's limits from the input's flags byte and, for flags 1 and 2, the next one.
pub fn config(flags: u8, next: u8) -> LinkConfig {
    let max_message_len = match flags % 4 {
        0 => MAX_MESSAGE_LEN,
        1 => usize::from(next),
        2 => usize::from(next) * 16,
        _ => usize::from(u16::MAX),
    };
    LinkConfig {
        max_message_len,
        reassembly_timeout_ms: 30_000,
        idle_timeout_ms: 180_000,
    }
}

/// One record.
pub fn record(op: u8, mtu: u16, bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut out = vec![op];
    out.extend_from_slice(&mtu.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
    out
}

/// The records of `message`'s segments with transaction id `txn`, each at the next MTU of
/// `mtus` (cycled); `cut_after` loses the link after that many segments and starts over.
fn segmented(txn: u8, message: &[u8], mtus: &[u16], cut_after: Option<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    let Ok(mut segmenter) = Segmenter::new(txn, message.to_vec(), MAX_MESSAGE_LEN) else {
        return out;
    };
    let mut cut = cut_after;
    let mut i = 0;
    loop {
        let mtu = mtus.get(i % mtus.len().max(1)).copied().unwrap_or(23);
        i += 1;
        match segmenter.next_segment(mtu) {
            Ok(Some(segment)) => out.extend(record(OP_SEGMENT, mtu, &segment)),
            _ => return out,
        }
        if cut == Some(i) {
            cut = None;
            out.extend(record(OP_LINK_LOST, 0, &[]));
            segmenter.rewind();
        }
    }
}

fn message(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ salt)
        .collect()
}

/// The seeds of `ble_reassemble`.
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut push = |name: String, bytes: Vec<u8>| {
        out.push(Seed {
            target: "ble_reassemble",
            name,
            bytes,
        });
    };
    for mtu in [23u16, 185, 247, 517] {
        for len in [0usize, 1, 16, 17, 300, 1000, MAX_MESSAGE_LEN] {
            let mut input = vec![0];
            input.extend(segmented(0, &message(len, 1), &[mtu], None));
            push(format!("real-{mtu}-{len}"), input);
        }
    }
    // Two messages, an MTU exchange in the middle of the first.
    let mut input = vec![0];
    input.extend(segmented(0, &message(600, 2), &[23, 23, 23, 247], None));
    input.extend(segmented(1, &message(90, 3), &[247], None));
    push("mtu-change".into(), input);
    // A message cut by a disconnect and sent again from its begin.
    let mut input = vec![0];
    input.extend(segmented(0, &message(200, 4), &[23], Some(4)));
    push("cut-resent".into(), input);
    // A delivered message sent again (its last acknowledgement lost), then the next.
    let mut input = vec![0];
    input.extend(segmented(5, &message(50, 5), &[23], None));
    input.extend(record(OP_LINK_LOST, 0, &[]));
    input.extend(segmented(5, &message(50, 5), &[23], None));
    input.extend(segmented(6, &message(70, 6), &[23], None));
    push("copy".into(), input);
    // A message stalled past the reassembly timeout, then sent again.
    let mut input = vec![0];
    let whole = segmented(7, &message(100, 7), &[23], None);
    input.extend(whole.get(..50).unwrap_or_default()); // two records of 25 bytes
    input.extend(record(OP_TIME, 2000, &[]));
    input.extend(whole);
    push("stalled".into(), input);
    // A low limit: 1,000 bytes (flags 2, 62 × 16 = 992) refused at its begin segment.
    let mut input = vec![2, 62];
    input.extend(segmented(0, &message(1000, 8), &[185], None));
    input.extend(segmented(1, &message(900, 9), &[185], None));
    push("limit".into(), input);
    out
}
