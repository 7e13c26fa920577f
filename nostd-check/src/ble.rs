//! With the `ble` feature, [`crate::zt_check_run`] also drives `zerotouch-ble`'s framing
//! (no_std + alloc) as a device (the GATT peripheral) and a provisioner or sponsor (the
//! central) would, at the smallest ATT MTU, 23, where every segment holds 20 bytes:
//!
//! - the device's info value ([`ServiceInfo`]) encoded and read back by the central, and a
//!   value of another version refused;
//! - a 4,202-byte message (`MAX_MESSAGE_LEN`, a flow-2 frame) written by the central, cut by a
//!   disconnect after 100 segments and sent again from its begin segment with the same
//!   transaction id, delivered once; then sent again whole after a disconnect that lost the
//!   write response of its last segment, and recognised by the device as a copy and dropped;
//! - a 4,202-byte answer indicated by the device, one segment in flight at a time;
//! - a continuation segment with no message begun refused (`NoMessageInProgress`), a begin
//!   segment left unfinished dropped at the reassembly timeout, and the link still usable.
//!
//! Two measurements are taken, as for the device session (see `src/device.rs`):
//! - the device link's peak heap: from its creation to its drop, the most bytes live at once
//!   that are not the central's (which runs in [`heap::server_side`]): the link's state, each
//!   segment received (copied into a receive buffer, see [`deliver`]), the message being
//!   reassembled, and the answer being indicated with its segment in flight;
//! - the BLE crate's code: the device's link is called only through [`entry`], whose functions
//!   are never inlined, so the script can attribute what LTO inlines into them to
//!   `zerotouch-ble` (`nostd_check::ble::entry::`). The central's calls count too where LTO
//!   keeps them out of line, under their own `zerotouch_ble::` names.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use zerotouch_ble::{
    BleLink, Error, LinkConfig, MAX_MESSAGE_LEN, MIN_ATT_MTU, PROFILE_VERSION, ServiceInfo,
};
use zerotouch_core::Instant;

use crate::heap;
use crate::run::{Check, Step, ensure};

/// Every write and indication at the smallest MTU.
const MTU: u16 = MIN_ATT_MTU;
/// The device's instance (random in firmware).
const INSTANCE: u32 = 0x5eed_b1e0;
/// The write after which the connection drops, in the first copy of the central's message.
const CUT_AFTER: usize = 100;
/// Segments of a 4,202-byte message at MTU 23: 16 bytes in the begin segment, then 19 in each.
const SEGMENTS: u64 = 1 + (MAX_MESSAGE_LEN as u64 - 16).div_ceil(19);

static LINK_PEAK: AtomicUsize = AtomicUsize::new(0);

/// The device link's peak heap in the last run.
pub fn link_peak() -> usize {
    LINK_PEAK.load(Relaxed)
}

/// The device link's API as firmware calls it, never inlined: whatever LTO inlines into these
/// belongs to the link, and the script counts them as `zerotouch-ble`'s code
/// (`nostd_check::ble::entry::`).
mod entry {
    use alloc::vec::Vec;

    use zerotouch_ble::{BleLink, Error, LinkConfig, ServiceInfo};
    use zerotouch_core::Instant;

    #[inline(never)]
    pub fn new(config: LinkConfig, now: Instant) -> BleLink {
        BleLink::new(config, now)
    }

    #[inline(never)]
    pub fn info(info: &ServiceInfo) -> [u8; ServiceInfo::LEN] {
        info.encode()
    }

    #[inline(never)]
    pub fn send(link: &mut BleLink, now: Instant, message: Vec<u8>) -> Result<u8, Error> {
        link.send(now, message)
    }

    #[inline(never)]
    pub fn poll_segment(link: &mut BleLink, mtu: u16) -> Result<Option<Vec<u8>>, Error> {
        link.poll_segment(mtu)
    }

    #[inline(never)]
    pub fn segment_confirmed(link: &mut BleLink, now: Instant) {
        link.segment_confirmed(now);
    }

    #[inline(never)]
    pub fn receive_segment(
        link: &mut BleLink,
        now: Instant,
        segment: &[u8],
        mtu: u16,
    ) -> Result<Option<Vec<u8>>, Error> {
        link.receive_segment(now, segment, mtu)
    }

    #[inline(never)]
    pub fn link_lost(link: &mut BleLink, now: Instant) {
        link.link_lost(now);
    }

    #[inline(never)]
    pub fn poll_timeout(link: &BleLink) -> Option<Instant> {
        link.poll_timeout()
    }

    #[inline(never)]
    pub fn handle_timeout(link: &mut BleLink, now: Instant) -> Result<(), Error> {
        link.handle_timeout(now)
    }
}

/// The bytes of message `n`.
fn message(n: usize) -> Vec<u8> {
    (0..MAX_MESSAGE_LEN)
        .map(|i| (i * 13 + n * 101) as u8)
        .collect()
}

/// A segment the central wrote, copied into the device's receive buffer.
fn deliver(segment: &[u8]) -> Vec<u8> {
    segment.to_vec()
}

/// The central writes its queued message to the device, segment by segment, each write
/// acknowledged; the connection drops after `cut_after` writes (or never). Returns what the
/// device delivered and the number of writes.
fn write_all(
    central: &mut BleLink,
    device: &mut BleLink,
    now: &mut u64,
    cut_after: Option<usize>,
) -> Result<(Option<Vec<u8>>, usize), Step> {
    let mut delivered = None;
    let mut writes = 0;
    while let Some(segment) =
        heap::server_side(|| central.poll_segment(MTU)).map_err(|_| Step::Ble)?
    {
        *now += 15;
        let received = deliver(&segment);
        heap::server_side(|| drop(segment));
        let got =
            entry::receive_segment(device, Instant(*now), &received, MTU).map_err(|_| Step::Ble)?;
        drop(received);
        ensure(delivered.is_none() || got.is_none(), Step::Ble)?;
        delivered = delivered.or(got);
        writes += 1;
        if cut_after == Some(writes) {
            // The write response never comes: both sides see the disconnect.
            heap::server_side(|| central.link_lost(Instant(*now)));
            entry::link_lost(device, Instant(*now));
            return Ok((delivered, writes));
        }
        heap::server_side(|| central.segment_confirmed(Instant(*now)));
    }
    Ok((delivered, writes))
}

/// One device link through the exchanges, its peak heap measured.
pub fn run() -> Check {
    let config = LinkConfig::default();
    let mut central = heap::server_side(|| BleLink::new(config, Instant(0)));
    heap::begin_session();
    let mut device = entry::new(config, Instant(0));
    let mut now = 0u64;

    // The central reads the info characteristic before it writes.
    let info = ServiceInfo {
        version: PROFILE_VERSION,
        max_message_len: MAX_MESSAGE_LEN as u16,
        instance: INSTANCE,
    };
    let value = entry::info(&info);
    ensure(ServiceInfo::decode(&value) == Ok(info), Step::Ble)?;
    let mut other = value;
    other[0] = PROFILE_VERSION + 1;
    ensure(
        ServiceInfo::decode(&other) == Err(Error::UnsupportedVersion(PROFILE_VERSION + 1)),
        Step::Ble,
    )?;

    // The central's message: cut after 100 writes, sent again from its start, delivered once.
    heap::server_side(|| central.send(Instant(now), message(0))).map_err(|_| Step::Ble)?;
    let (first, writes) = write_all(&mut central, &mut device, &mut now, Some(CUT_AFTER))?;
    ensure(first.is_none() && writes == CUT_AFTER, Step::Ble)?;
    // The second copy: every write but the last acknowledged; the last one's response is lost
    // with the connection, so the device has the message and the central does not know it.
    let (second, writes) = write_all(&mut central, &mut device, &mut now, Some(SEGMENTS as usize))?;
    ensure(writes == SEGMENTS as usize, Step::Ble)?;
    let expected = heap::server_side(|| message(0));
    ensure(second.as_ref() == Some(&expected), Step::Ble)?;
    heap::server_side(|| drop(expected));
    drop(second);
    // The third copy, whole: recognised by its transaction id and dropped.
    let (third, _) = write_all(&mut central, &mut device, &mut now, None)?;
    ensure(
        third.is_none() && device.stats().duplicates_dropped == 1,
        Step::Ble,
    )?;
    ensure(
        central.is_flushed() && central.stats().segments_sent == CUT_AFTER as u64 + 2 * SEGMENTS,
        Step::Ble,
    )?;

    // The device's answer, indicated one segment at a time, each confirmed.
    let answer = message(1);
    entry::send(&mut device, Instant(now), answer).map_err(|_| Step::Ble)?;
    let mut answered = None;
    while let Some(segment) = entry::poll_segment(&mut device, MTU).map_err(|_| Step::Ble)? {
        ensure(segment.len() <= 20, Step::Ble)?;
        // One indication in flight: nothing more until its confirmation.
        ensure(
            entry::poll_segment(&mut device, MTU)
                .map_err(|_| Step::Ble)?
                .is_none(),
            Step::Ble,
        )?;
        now += 15;
        let got = heap::server_side(|| central.receive_segment(Instant(now), &segment, MTU))
            .map_err(|_| Step::Ble)?;
        drop(segment);
        answered = answered.or(got);
        entry::segment_confirmed(&mut device, Instant(now));
    }
    let stats = device.stats();
    ensure(
        stats.segments_sent == SEGMENTS
            && stats.segment_bytes_sent == MAX_MESSAGE_LEN as u64 + 4 + SEGMENTS - 1,
        Step::Ble,
    )?;
    let expected = heap::server_side(|| message(1));
    ensure(answered.as_ref() == Some(&expected), Step::Ble)?;
    heap::server_side(|| drop((answered, expected)));

    // A continuation with no message begun is refused; a begin segment left unfinished is
    // dropped at the reassembly timeout; the link goes on.
    ensure(
        entry::receive_segment(&mut device, Instant(now), &[0x01, 0xaa], MTU)
            == Err(Error::NoMessageInProgress),
        Step::Ble,
    )?;
    let begin = [0x80, 0x07, 0x00, 0x20, 1, 2, 3, 4];
    ensure(
        entry::receive_segment(&mut device, Instant(now), &begin, MTU) == Ok(None),
        Step::Ble,
    )?;
    let deadline = entry::poll_timeout(&device).ok_or(Step::Ble)?;
    ensure(deadline.0 == now + config.reassembly_timeout_ms, Step::Ble)?;
    ensure(
        entry::handle_timeout(&mut device, deadline) == Err(Error::ReassemblyTimeout { txn: 7 }),
        Step::Ble,
    )?;
    let whole = [0xc0, 0x08, 0x00, 0x02, 0x5a, 0xa5];
    ensure(
        entry::receive_segment(&mut device, deadline, &whole, MTU)
            == Ok(Some(alloc::vec![0x5a, 0xa5])),
        Step::Ble,
    )?;
    ensure(
        entry::handle_timeout(&mut device, deadline) == Ok(()),
        Step::Ble,
    )?;

    drop(device);
    LINK_PEAK.store(heap::session_peak_so_far(), Relaxed);
    heap::server_side(|| drop(central));
    Ok(())
}
