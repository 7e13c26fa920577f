//! `BleLink`'s rules (one segment in flight, the MTU of each segment, a message cut by a
//! disconnect sent again from its begin and not delivered twice, timeouts, counters), and
//! `BleChannel` over `simulated_gatt`: messages of every size both ways at MTU 23 and 247,
//! with the link cut mid-message, each delivered exactly once and byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use zerotouch_ble::simulated::{Cut, GattControl, SimulatedBearer, simulated_gatt};
use zerotouch_ble::{
    BearerEvent, BleChannel, BleLink, Error, GattBearer, LinkConfig, LinkStats, MAX_MESSAGE_LEN,
};
use zerotouch_core::Instant;

const T0: Instant = Instant(0);

fn message(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt)
        .collect()
}

fn link() -> BleLink {
    BleLink::new(LinkConfig::default(), T0)
}

/// Moves one segment from `from` to `to` at `mtu` and confirms it; returns what `to`
/// delivered, or `None` when `from` had nothing to send.
fn step(from: &mut BleLink, to: &mut BleLink, mtu: u16) -> Option<Option<Vec<u8>>> {
    let segment = from.poll_segment(mtu).unwrap()?;
    assert!(segment.len() <= usize::from(mtu) - 3);
    let delivered = to.receive_segment(T0, &segment, mtu).unwrap();
    from.segment_confirmed(T0);
    Some(delivered)
}

/// A sender with `m` queued, and its receiver.
fn sending(m: &[u8]) -> (BleLink, BleLink) {
    let mut sender = link();
    sender.send(T0, m.to_vec()).unwrap();
    (sender, link())
}

/// Moves the next `n` segments from `from` to `to` at MTU 23, none of which completes a
/// message; returns them.
fn move_segments(from: &mut BleLink, to: &mut BleLink, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let segment = from.poll_segment(23).unwrap().unwrap();
            assert_eq!(to.receive_segment(T0, &segment, 23), Ok(None));
            from.segment_confirmed(T0);
            segment
        })
        .collect()
}

/// Moves everything queued in `from` to `to` at `mtu`; returns the messages delivered.
fn pump(from: &mut BleLink, to: &mut BleLink, mtu: u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(delivered) = step(from, to, mtu) {
        out.extend(delivered);
    }
    assert!(from.is_flushed());
    out
}

#[test]
fn one_segment_in_flight_until_confirmed() {
    let mut sender = link();
    sender.send(T0, message(100, 1)).unwrap();
    sender.send(T0, message(10, 2)).unwrap();
    let first = sender.poll_segment(23).unwrap().unwrap();
    assert!(sender.is_in_flight());
    // Nothing more until the write response or the confirmation, at any MTU.
    for mtu in [23, 247, 517] {
        assert_eq!(sender.poll_segment(mtu), Ok(None));
    }
    assert_eq!(sender.stats().segments_sent, 1);
    sender.segment_confirmed(T0);
    assert!(!sender.is_in_flight());
    let second = sender.poll_segment(23).unwrap().unwrap();
    assert_ne!(first, second);
    assert_eq!(second[0] & 0x3f, 1);
    // A confirmation with nothing in flight changes nothing.
    sender.segment_confirmed(T0);
    sender.segment_confirmed(T0);
    assert!(!sender.is_in_flight());
    assert_eq!(sender.poll_segment(23).unwrap().unwrap()[0] & 0x3f, 2);
    assert_eq!(sender.poll_segment(23), Ok(None));
    // The second message only starts once the first's last segment is confirmed.
    let mut receiver = link();
    let mut sender = link();
    sender.send(T0, message(30, 1)).unwrap();
    sender.send(T0, message(30, 2)).unwrap();
    let begin = sender.poll_segment(23).unwrap().unwrap();
    receiver.receive_segment(T0, &begin, 23).unwrap();
    sender.segment_confirmed(T0);
    let end = sender.poll_segment(23).unwrap().unwrap();
    assert_eq!(end[0] & 0x40, 0x40);
    assert_eq!(
        receiver.receive_segment(T0, &end, 23),
        Ok(Some(message(30, 1)))
    );
    assert!(!sender.is_flushed());
    assert_eq!(sender.poll_segment(23), Ok(None));
    sender.segment_confirmed(T0);
    assert_eq!(pump(&mut sender, &mut receiver, 23), vec![message(30, 2)]);
}

#[test]
fn mtu_is_taken_per_segment() {
    let mtus = [23u16, 247, 30, 517, 23, 100, 185, 24, 512];
    let m = message(MAX_MESSAGE_LEN, 7);
    let (mut sender, mut receiver) = sending(&m);
    let mut delivered = Vec::new();
    let mut lengths = Vec::new();
    for i in 0.. {
        let mtu = mtus[i % mtus.len()];
        let Some(segment) = sender.poll_segment(mtu).unwrap() else {
            break;
        };
        let capacity = (usize::from(mtu) - 3).min(512);
        assert!(segment.len() <= capacity, "segment {i} at MTU {mtu}");
        // Every segment but the last is full at its own MTU.
        if segment[0] & 0x40 == 0 {
            assert_eq!(segment.len(), capacity, "segment {i} at MTU {mtu}");
        }
        lengths.push(segment.len());
        delivered.extend(receiver.receive_segment(T0, &segment, mtu).unwrap());
        sender.segment_confirmed(T0);
    }
    assert_eq!(delivered, vec![m]);
    assert_eq!(&lengths[..4], &[20, 244, 27, 512]);
}

#[test]
fn message_cut_by_a_disconnect_is_sent_again_from_its_begin() {
    let m = message(200, 3);
    let mut sender = link();
    let mut receiver = link();
    let txn = sender.send(T0, m.clone()).unwrap();
    let first_time = move_segments(&mut sender, &mut receiver, 4);
    // The fifth is written and the link drops before it arrives.
    let lost = sender.poll_segment(23).unwrap().unwrap();
    assert_eq!(lost[0] & 0x3f, 4);
    sender.link_lost(T0);
    receiver.link_lost(T0);
    // Again from the begin segment, with the same transaction id and the same bytes.
    let again = sender.poll_segment(23).unwrap().unwrap();
    assert_eq!(again, first_time[0]);
    assert_eq!(again[1], txn);
    assert_eq!(receiver.receive_segment(T0, &again, 23), Ok(None));
    sender.segment_confirmed(T0);
    assert_eq!(pump(&mut sender, &mut receiver, 23), vec![m]);
    assert_eq!(receiver.stats().messages_received, 1);
    assert_eq!(receiver.stats().duplicates_dropped, 0);
    // 11 segments, 5 of them before the cut.
    assert_eq!(sender.stats().segments_sent, 16);
}

#[test]
fn a_copy_of_the_last_delivered_message_is_dropped_not_delivered_twice() {
    let m = message(100, 4);
    let (mut sender, mut receiver) = sending(&m);
    let mut delivered = Vec::new();
    // Every segment arrives; the last one's acknowledgement is lost with the link.
    loop {
        let segment = sender.poll_segment(23).unwrap().unwrap();
        delivered.extend(receiver.receive_segment(T0, &segment, 23).unwrap());
        if segment[0] & 0x40 != 0 {
            break;
        }
        sender.segment_confirmed(T0);
    }
    assert_eq!(delivered, vec![m.clone()]);
    sender.link_lost(T0);
    receiver.link_lost(T0);
    assert!(!sender.is_flushed());
    // The sender cannot tell and sends it again; the receiver drops the copy.
    assert_eq!(pump(&mut sender, &mut receiver, 23), Vec::<Vec<u8>>::new());
    assert_eq!(receiver.stats().messages_received, 1);
    assert_eq!(receiver.stats().duplicates_dropped, 1);
    // The next message is delivered as usual.
    let next = message(100, 5);
    sender.send(T0, next.clone()).unwrap();
    assert_eq!(pump(&mut sender, &mut receiver, 23), vec![next]);
    assert_eq!(receiver.stats().messages_received, 2);
}

#[test]
fn half_received_message_is_dropped_on_link_lost() {
    let m = message(100, 6);
    let (mut sender, mut receiver) = sending(&m);
    move_segments(&mut sender, &mut receiver, 3);
    let reassembly = receiver.poll_timeout();
    receiver.link_lost(Instant(10));
    // The half message is gone: its next segment continues nothing, and its reassembly
    // deadline went with it.
    assert_ne!(receiver.poll_timeout(), reassembly);
    let fourth = sender.poll_segment(23).unwrap().unwrap();
    assert_eq!(
        receiver.receive_segment(T0, &fourth, 23),
        Err(Error::NoMessageInProgress)
    );
    // What the sender sends again from its begin is taken whole.
    sender.link_lost(T0);
    assert_eq!(pump(&mut sender, &mut receiver, 23), vec![m]);
}

#[test]
fn reassembly_timeout_drops_a_stalled_message() {
    let config = LinkConfig {
        reassembly_timeout_ms: 2_000,
        idle_timeout_ms: 60_000,
        ..LinkConfig::default()
    };
    let mut sender = link();
    let mut receiver = BleLink::new(config, T0);
    sender.send(T0, message(100, 8)).unwrap();
    let begin = sender.poll_segment(23).unwrap().unwrap();
    receiver
        .receive_segment(Instant(1_000), &begin, 23)
        .unwrap();
    sender.segment_confirmed(T0);
    assert_eq!(receiver.poll_timeout(), Some(Instant(3_000)));
    assert_eq!(receiver.handle_timeout(Instant(2_999)), Ok(()));
    assert_eq!(
        receiver.handle_timeout(Instant(3_000)),
        Err(Error::ReassemblyTimeout { txn: 0 })
    );
    // Dropped: the idle timeout is the next deadline, and the rest continues nothing.
    assert_eq!(receiver.poll_timeout(), Some(Instant(61_000)));
    assert_eq!(receiver.handle_timeout(Instant(3_001)), Ok(()));
    let next = sender.poll_segment(23).unwrap().unwrap();
    assert_eq!(
        receiver.receive_segment(Instant(3_001), &next, 23),
        Err(Error::NoMessageInProgress)
    );
}

#[test]
fn idle_timeout_fires_when_nothing_moves() {
    let config = LinkConfig {
        idle_timeout_ms: 5_000,
        ..LinkConfig::default()
    };
    let mut a = BleLink::new(config, Instant(100));
    let mut b = BleLink::new(config, Instant(100));
    assert_eq!(a.poll_timeout(), Some(Instant(5_100)));
    assert_eq!(a.handle_timeout(Instant(5_099)), Ok(()));
    assert_eq!(a.handle_timeout(Instant(5_100)), Err(Error::IdleTimeout));
    // A segment received is movement.
    b.send(Instant(100), message(50, 1)).unwrap();
    let segment = b.poll_segment(23).unwrap().unwrap();
    a.receive_segment(Instant(4_000), &segment, 23).unwrap();
    assert_eq!(a.handle_timeout(Instant(8_999)), Ok(()));
    // A segment confirmed is movement; one written and never confirmed is not.
    b.segment_confirmed(Instant(7_000));
    assert_eq!(b.poll_timeout(), Some(Instant(12_000)));
    b.poll_segment(23).unwrap().unwrap();
    assert_eq!(b.handle_timeout(Instant(11_999)), Ok(()));
    assert_eq!(b.handle_timeout(Instant(12_000)), Err(Error::IdleTimeout));
    // A message queued on a quiet link restarts the clock.
    let mut c = BleLink::new(config, T0);
    c.send(Instant(4_000), message(5, 1)).unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant(9_000)));
    // As does a reconnect.
    c.link_lost(Instant(8_000));
    assert_eq!(c.handle_timeout(Instant(12_999)), Ok(()));
    assert_eq!(c.handle_timeout(Instant(13_000)), Err(Error::IdleTimeout));
}

#[test]
fn stats_count_attribute_bytes_and_operations() {
    let mut sender = link();
    let mut receiver = link();
    sender.send(T0, message(300, 1)).unwrap();
    sender.send(T0, message(0, 2)).unwrap();
    assert_eq!(
        pump(&mut sender, &mut receiver, 23),
        vec![message(300, 1), vec![]]
    );
    // 300 bytes: a 4-byte header and 16 bytes, then 15 segments of a 1-byte header and up to
    // 19 bytes; the empty message is a 4-byte begin segment.
    let expected = LinkStats {
        messages_sent: 2,
        message_bytes_sent: 300,
        segments_sent: 17,
        segment_bytes_sent: 300 + 4 + 15 + 4,
        ..LinkStats::default()
    };
    assert_eq!(sender.stats(), expected);
    assert_eq!(
        receiver.stats(),
        LinkStats {
            segments_received: 17,
            messages_received: 2,
            ..LinkStats::default()
        }
    );
    // Segments sent again after a cut are counted again; refused segments are counted as
    // received.
    let mut sender = link();
    let mut receiver = link();
    sender.send(T0, message(40, 1)).unwrap();
    step(&mut sender, &mut receiver, 23);
    sender.link_lost(T0);
    receiver.link_lost(T0);
    pump(&mut sender, &mut receiver, 23);
    assert_eq!(sender.stats().segments_sent, 4);
    assert_eq!(sender.stats().segment_bytes_sent, 20 + 20 + 20 + 6);
    assert!(receiver.receive_segment(T0, &[0x01, 0], 23).is_err());
    assert_eq!(receiver.stats().segments_received, 5);
    assert_eq!(receiver.stats().messages_received, 1);
}

// ---------------------------------------------------------------------------------------
// BleChannel over the simulated GATT link.

/// The sizes each direction sends, in order: the edges of the segment sizes at both MTUs,
/// flow 1's and flow 2's largest, and the limit.
const SIZES: [usize; 14] = [
    0, 1, 16, 17, 35, 36, 240, 241, 244, 245, 1000, 4096, 4201, 4202,
];

fn channels(
    mtu: u16,
) -> (
    BleChannel<SimulatedBearer>,
    BleChannel<SimulatedBearer>,
    GattControl,
) {
    let (peripheral, central, control) = simulated_gatt(mtu);
    (
        BleChannel::new(peripheral, LinkConfig::default()),
        BleChannel::new(central, LinkConfig::default()),
        control,
    )
}

/// The peripheral sends `SIZES` in order, the central answers each with a message of the
/// size in reverse order (as the device's `Exchange` and a provisioner do); `cut` is called
/// before each exchange with its index. Returns what each side received.
async fn ping_pong(
    mtu: u16,
    cut: impl Fn(usize, &GattControl),
) -> (
    Vec<Vec<u8>>,
    Vec<Vec<u8>>,
    GattControl,
    LinkStats,
    LinkStats,
) {
    let (mut peripheral, mut central, control) = channels(mtu);
    let mut got_by_central = Vec::new();
    let mut got_by_peripheral = Vec::new();
    for (i, &len) in SIZES.iter().enumerate() {
        cut(i, &control);
        let request = message(len, i as u8);
        let answer_len = SIZES[SIZES.len() - 1 - i];
        let (answer, ()) = tokio::join!(
            async {
                peripheral.send(request).await.unwrap();
                peripheral.recv().await.unwrap()
            },
            async {
                let got = central.recv().await.unwrap();
                got_by_central.push(got);
                central
                    .send(message(answer_len, 0x80 | i as u8))
                    .await
                    .unwrap();
            }
        );
        got_by_peripheral.push(answer);
    }
    // Nothing else arrives: no copy was delivered twice. (Events still queued, a cut's
    // copy for instance, are taken here.)
    for channel in [&mut peripheral, &mut central] {
        let extra = tokio::time::timeout(Duration::from_millis(50), channel.recv()).await;
        assert!(extra.is_err(), "delivered after the last: {extra:?}");
    }
    (
        got_by_central,
        got_by_peripheral,
        control,
        peripheral.stats(),
        central.stats(),
    )
}

fn check_exactly_once(got_by_central: &[Vec<u8>], got_by_peripheral: &[Vec<u8>]) {
    let requests: Vec<Vec<u8>> = SIZES
        .iter()
        .enumerate()
        .map(|(i, &len)| message(len, i as u8))
        .collect();
    let answers: Vec<Vec<u8>> = SIZES
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &len)| message(len, 0x80 | i as u8))
        .collect();
    assert_eq!(got_by_central.len(), requests.len());
    for (i, (got, want)) in got_by_central.iter().zip(&requests).enumerate() {
        assert!(got == want, "request {i}: {} bytes", got.len());
    }
    assert_eq!(got_by_peripheral.len(), answers.len());
    for (i, (got, want)) in got_by_peripheral.iter().zip(&answers).enumerate() {
        assert!(got == want, "answer {i}: {} bytes", got.len());
    }
}

/// ATT operations `Σ ceil((len + 3) / (MTU − 3))`-ish: what our framing needs for `len` bytes.
fn segments_for(len: usize, mtu: u16) -> u64 {
    let capacity = (usize::from(mtu) - 3).min(512);
    let first = capacity - 4;
    1 + len.saturating_sub(first).div_ceil(capacity - 1) as u64
}

#[tokio::test]
async fn channel_carries_every_size_both_ways_at_mtu_23_and_247() {
    for mtu in [23, 247] {
        let (to_central, to_peripheral, control, p_stats, c_stats) =
            ping_pong(mtu, |_, _| {}).await;
        check_exactly_once(&to_central, &to_peripheral);
        // The simulated link counted what the links sent, operation for operation.
        let up = control.central_to_peripheral();
        let down = control.peripheral_to_central();
        let ideal: u64 = SIZES.iter().map(|&len| segments_for(len, mtu)).sum();
        assert_eq!(down.operations, ideal, "MTU {mtu}");
        assert_eq!(up.operations, ideal, "MTU {mtu}");
        assert_eq!(down.operations, p_stats.segments_sent);
        assert_eq!(down.value_bytes, p_stats.segment_bytes_sent);
        assert_eq!(up.operations, c_stats.segments_sent);
        assert_eq!(up.value_bytes, c_stats.segment_bytes_sent);
        assert_eq!(down.largest_value, usize::from(mtu) - 3);
        assert_eq!((down.lost, up.lost, control.cuts()), (0, 0, 0));
    }
}

/// Every exchange's request (even) or answer (odd) is cut after `k` of its segments, for
/// a few `k` from the first segment to the last.
async fn cut_each_exchange(mtu: u16, how: Cut) {
    for at in [1u64, 2, 5, 40, 1000] {
        let (to_central, to_peripheral, control, p_stats, c_stats) = ping_pong(mtu, |i, c| {
            let request = SIZES[i];
            let answer = SIZES[SIZES.len() - 1 - i];
            // Counting from the request's first segment: into the request, or into the
            // answer after the request's segments.
            let n = if i % 2 == 0 {
                at.min(segments_for(request, mtu))
            } else {
                segments_for(request, mtu) + at.min(segments_for(answer, mtu))
            };
            c.cut_after(n, how);
        })
        .await;
        check_exactly_once(&to_central, &to_peripheral);
        assert_eq!(control.cuts(), SIZES.len() as u64, "MTU {mtu}, cut at {at}");
        let lost = control.central_to_peripheral().lost + control.peripheral_to_central().lost;
        assert_eq!(lost, SIZES.len() as u64);
        let copies = p_stats.duplicates_dropped + c_stats.duplicates_dropped;
        // A copy is dropped exactly when the acknowledgement of a message's last segment was
        // lost.
        let last_acks_lost = SIZES
            .iter()
            .enumerate()
            .filter(|&(i, &request)| {
                let len = if i % 2 == 0 {
                    request
                } else {
                    SIZES[SIZES.len() - 1 - i]
                };
                how == Cut::AcknowledgementLost && at >= segments_for(len, mtu)
            })
            .count() as u64;
        assert_eq!(copies, last_acks_lost, "MTU {mtu}, cut at {at}");
        assert_eq!(p_stats.messages_received, SIZES.len() as u64);
        assert_eq!(c_stats.messages_received, SIZES.len() as u64);
    }
}

#[tokio::test]
async fn channel_delivers_once_when_a_segment_is_lost_mid_message_at_mtu_23_and_247() {
    for mtu in [23, 247] {
        cut_each_exchange(mtu, Cut::SegmentLost).await;
    }
}

#[tokio::test]
async fn channel_delivers_once_when_an_acknowledgement_is_lost_mid_message_at_mtu_23_and_247() {
    for mtu in [23, 247] {
        cut_each_exchange(mtu, Cut::AcknowledgementLost).await;
    }
}

/// A peripheral whose central exchanges the MTU after it indicated `after` segments.
struct Renegotiating {
    inner: SimulatedBearer,
    control: GattControl,
    sent: u64,
    after: u64,
    to: u16,
}

impl GattBearer for Renegotiating {
    fn mtu(&self) -> u16 {
        self.inner.mtu()
    }

    async fn send_segment(&mut self, segment: Vec<u8>) -> Result<(), Error> {
        let sent = self.inner.send_segment(segment).await;
        self.sent += 1;
        if self.sent == self.after {
            self.control.set_mtu(self.to);
        }
        sent
    }

    async fn next_event(&mut self) -> Result<BearerEvent, Error> {
        self.inner.next_event().await
    }
}

#[tokio::test]
async fn channel_takes_the_mtu_of_each_segment_when_it_changes_mid_message() {
    let (peripheral, central, control) = simulated_gatt(23);
    let renegotiating = Renegotiating {
        inner: peripheral,
        control: control.clone(),
        sent: 0,
        after: 10,
        to: 247,
    };
    let mut peripheral = BleChannel::new(renegotiating, LinkConfig::default());
    let mut central = BleChannel::new(central, LinkConfig::default());
    let m = message(MAX_MESSAGE_LEN, 9);
    peripheral.send(m.clone()).await.unwrap();
    assert!(central.recv().await.unwrap() == m);
    // 10 segments at MTU 23 carry 16 + 9 × 19 = 187 bytes; the other 4,015 go 243 a segment.
    let down = control.peripheral_to_central();
    assert_eq!(down.operations, 10 + 17);
    assert_eq!(down.largest_value, 244);
    assert_eq!(down.value_bytes, 4202 + 4 + 26);
}

#[test]
fn refused_segments_do_not_keep_the_link_alive() {
    let config = LinkConfig {
        idle_timeout_ms: 5_000,
        ..LinkConfig::default()
    };
    let mut link = BleLink::new(config, T0);
    // Garbage every second: a continuation with nothing begun.
    for at in (1_000..5_000).step_by(1_000) {
        assert_eq!(
            link.receive_segment(Instant(at), &[0x01, 0xff], 23),
            Err(Error::NoMessageInProgress)
        );
    }
    assert_eq!(link.handle_timeout(Instant(5_000)), Err(Error::IdleTimeout));
}
