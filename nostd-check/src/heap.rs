//! A counting bump allocator over a static arena.
//!
//! It counts the bytes live (requested and not yet freed) and their peak, which is the figure a
//! device's heap must hold at least; a general-purpose allocator adds its own overhead on top.
//! Memory is handed out from the arena's top; freeing the topmost block gives it back, growing
//! or shrinking the topmost block happens in place, and the whole arena is reused when a run
//! starts with nothing live. All counters are atomics, so the allocator is sound if shared
//! between threads; the entry points that reset counters are not meant to run concurrently.
//!
//! With the `device`, `peer`, `dns` or `ble` feature the arena has a second region for the check's
//! own server side (see [`server_side`]): the device session's peak ([`begin_session`],
//! [`end_session`]) and a peer role's, the DNS tunnel's or the BLE link's ([`session_peak_so_far`]) count the
//! first region only, so the server's allocations, interleaved with the session's, are not
//! charged to the device. A block is counted in the region its address lies in, whoever frees
//! or grows it.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;
#[cfg(any(feature = "device", feature = "peer", feature = "dns", feature = "ble"))]
use core::sync::atomic::AtomicBool;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Size of the region everything but the check's server side allocates from. Far above the
/// aim for peak heap (16 KiB), so the arena never limits the figure being measured; a run that
/// exhausts it fails to allocate and traps. A bump allocator reuses only the topmost freed
/// block, so a run's high water is far above its peak: the sets with both the device session
/// and the peer roles get twice the room.
const MAIN_SIZE: usize = if cfg!(all(feature = "device", feature = "peer")) {
    512 * 1024
} else {
    256 * 1024
};
/// Size of the region of the check's own server side (`device`, `peer`, `dns` and `ble` only). With
/// `peer` it also plays the other role of ten handoffs (the automatic one and four fallbacks,
/// each measuring either role), whose freed blocks the bump allocator mostly cannot reuse: its
/// high water reached 162,895 bytes with `peer` alone and 201,535 in the full set. With `dns`
/// it runs the DNS check's fake server, which reads and rewrites its stored tunnel record for
/// every chunk of a 3,072-byte message, as a server keeping it in its store does: more than
/// 128 KiB of blocks the bump allocator cannot reuse, so 256 KiB more. With `ble` it runs the
/// BLE check's central, which holds two 4,202-byte messages at most: the 64 KiB suffice.
#[cfg(any(feature = "device", feature = "peer", feature = "dns", feature = "ble"))]
const SERVER_SIZE: usize = if cfg!(feature = "peer") {
    256 * 1024
} else {
    64 * 1024
} + if cfg!(feature = "dns") { 256 * 1024 } else { 0 };
#[cfg(not(any(feature = "device", feature = "peer", feature = "dns", feature = "ble")))]
const SERVER_SIZE: usize = 0;
/// Whether the arena has the server's region (and counts per region).
const SPLIT: bool = cfg!(any(
    feature = "device",
    feature = "peer",
    feature = "dns",
    feature = "ble"
));
/// Size of the whole arena (both regions).
pub const ARENA_SIZE: usize = MAIN_SIZE + SERVER_SIZE;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);

// SAFETY: the arena's bytes are only reached through pointers the allocator hands out, and it
// hands each byte to one live allocation at a time (offsets are claimed with compare-exchange).
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_SIZE]));

/// One region of the arena, `[start, end)` in offsets, with its own bump pointer.
struct Region {
    start: usize,
    end: usize,
    /// Offset of the first free byte of the region.
    top: AtomicUsize,
    /// Highest `top` reached since the last reset.
    high_water: AtomicUsize,
    /// Bytes requested from this region and not yet freed.
    live: AtomicUsize,
    /// Highest `live` since the last reset (of the run, or of the device session).
    peak: AtomicUsize,
}

impl Region {
    const fn new(start: usize, end: usize) -> Self {
        Region {
            start,
            end,
            top: AtomicUsize::new(start),
            high_water: AtomicUsize::new(start),
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Claims `layout` at the top of the region; returns its offset in the arena.
    fn claim(&self, layout: Layout) -> Option<usize> {
        let base = base();
        let mut top = self.top.load(Relaxed);
        loop {
            let start = (base.checked_add(top)?)
                .checked_next_multiple_of(layout.align())?
                .checked_sub(base)?;
            let end = start.checked_add(layout.size())?;
            if end > self.end {
                return None;
            }
            match self.top.compare_exchange_weak(top, end, Relaxed, Relaxed) {
                Ok(_) => {
                    self.high_water.fetch_max(end, Relaxed);
                    return Some(start);
                }
                Err(now) => top = now,
            }
        }
    }

    /// Bytes of the region reached since the last reset.
    fn reached(&self) -> usize {
        self.high_water.load(Relaxed) - self.start
    }
}

struct CountingBump {
    /// Where everything but the check's server side allocates.
    main: Region,
    /// Where the check's server side allocates (empty without `device`).
    server: Region,
    /// Bytes requested and not yet freed, in both regions.
    live: AtomicUsize,
    /// Highest `live` since the last reset.
    peak: AtomicUsize,
    /// Allocations and reallocations since the last reset.
    count: AtomicUsize,
}

#[global_allocator]
static ALLOCATOR: CountingBump = CountingBump {
    main: Region::new(0, MAIN_SIZE),
    server: Region::new(MAIN_SIZE, ARENA_SIZE),
    live: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
    count: AtomicUsize::new(0),
};

/// Whether allocations go to the server's region now.
#[cfg(any(feature = "device", feature = "peer", feature = "dns", feature = "ble"))]
static IN_SERVER: AtomicBool = AtomicBool::new(false);
/// Bytes live in the main region when the device session (or a peer role) began.
#[cfg(any(feature = "device", feature = "peer", feature = "dns", feature = "ble"))]
static SESSION_BASE: AtomicUsize = AtomicUsize::new(0);
/// The device session's peak, as [`end_session`] found it.
#[cfg(feature = "device")]
static SESSION_PEAK: AtomicUsize = AtomicUsize::new(0);

fn base() -> usize {
    ARENA.0.get() as usize
}

impl CountingBump {
    /// The region new allocations go to now.
    fn current(&self) -> &Region {
        #[cfg(any(feature = "device", feature = "peer", feature = "dns", feature = "ble"))]
        if IN_SERVER.load(Relaxed) {
            return &self.server;
        }
        &self.main
    }

    /// The region an offset lies in.
    fn region_of(&self, offset: usize) -> &Region {
        // Without `device` the server's region is empty and this folds away.
        if SPLIT && offset >= self.server.start {
            &self.server
        } else {
            &self.main
        }
    }

    fn add_live(&self, region: &Region, bytes: usize) {
        let now = self.live.fetch_add(bytes, Relaxed) + bytes;
        self.peak.fetch_max(now, Relaxed);
        // Per region only where a device session is measured, so the other sets' allocator
        // (part of their code figure) stays as it was.
        if SPLIT {
            let now = region.live.fetch_add(bytes, Relaxed) + bytes;
            region.peak.fetch_max(now, Relaxed);
        }
    }

    fn sub_live(&self, region: &Region, bytes: usize) {
        self.live.fetch_sub(bytes, Relaxed);
        if SPLIT {
            region.live.fetch_sub(bytes, Relaxed);
        }
    }

    /// Allocates `layout` in `region`.
    fn alloc_in(&self, region: &Region, layout: Layout) -> *mut u8 {
        let Some(start) = region.claim(layout) else {
            return ptr::null_mut();
        };
        self.count.fetch_add(1, Relaxed);
        self.add_live(region, layout.size());
        // `start + size <= ARENA_SIZE`, so the pointer stays inside the arena.
        ARENA.0.get().cast::<u8>().wrapping_add(start)
    }
}

// SAFETY: `alloc` returns either null or a block of `layout.size()` bytes aligned to
// `layout.align()` inside one region of the arena that no other live allocation overlaps:
// offsets only move down (in `dealloc`/`realloc`) by giving back the topmost block of the
// block's own region, which the caller has freed.
unsafe impl GlobalAlloc for CountingBump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.alloc_in(self.current(), layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let start = (ptr as usize).wrapping_sub(base());
        let region = self.region_of(start);
        self.sub_live(region, layout.size());
        // If this was the topmost block, give its bytes back. If another block was claimed in
        // between, the exchange fails and the bytes stay used until the arena is reset.
        let end = start.wrapping_add(layout.size());
        let _ = region.top.compare_exchange(end, start, Relaxed, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = (ptr as usize).wrapping_sub(base());
        let region = self.region_of(start);
        let old_end = start.wrapping_add(layout.size());
        // The topmost block grows or shrinks in place.
        if let Some(new_end) = start.checked_add(new_size).filter(|e| *e <= region.end)
            && region
                .top
                .compare_exchange(old_end, new_end, Relaxed, Relaxed)
                .is_ok()
        {
            region.high_water.fetch_max(new_end, Relaxed);
            self.count.fetch_add(1, Relaxed);
            if new_size >= layout.size() {
                self.add_live(region, new_size - layout.size());
            } else {
                self.sub_live(region, layout.size() - new_size);
            }
            return ptr;
        }
        // Elsewhere in the same region: a new block, a copy, and the old block freed (both are
        // live for a moment, as with any allocator that cannot grow in place).
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        let new = self.alloc_in(region, new_layout);
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap (the new
            // block was claimed above the region's top, the old one lies below it).
            unsafe { ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated by this allocator with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

/// Starts a measured run: peaks and counts restart from what is live now, and when nothing is
/// live the arena is reused from its start.
pub fn begin_run() {
    let a = &ALLOCATOR;
    let regions: &[&Region] = if SPLIT {
        &[&a.main, &a.server]
    } else {
        &[&a.main]
    };
    if a.live.load(Relaxed) == 0 {
        for r in regions {
            r.top.store(r.start, Relaxed);
        }
    }
    a.peak.store(a.live.load(Relaxed), Relaxed);
    for r in regions {
        r.peak.store(r.live.load(Relaxed), Relaxed);
        r.high_water.store(r.top.load(Relaxed), Relaxed);
    }
    a.count.store(0, Relaxed);
    #[cfg(feature = "device")]
    SESSION_PEAK.store(0, Relaxed);
}

/// Runs `f` as the check's server side: what it allocates is not charged to the device
/// session (it still counts in the run's [`peak`]).
#[cfg(any(feature = "device", feature = "peer", feature = "dns", feature = "ble"))]
pub fn server_side<T>(f: impl FnOnce() -> T) -> T {
    let was = IN_SERVER.swap(true, Relaxed);
    let out = f();
    IN_SERVER.store(was, Relaxed);
    out
}

/// The device session begins: its peak counts the main region's bytes from here, above what
/// is live now.
#[cfg(any(feature = "device", feature = "peer", feature = "dns", feature = "ble"))]
pub fn begin_session() {
    let main = &ALLOCATOR.main;
    let live = main.live.load(Relaxed);
    SESSION_BASE.store(live, Relaxed);
    main.peak.store(live, Relaxed);
}

/// The device session has ended (and been dropped): records its peak (see [`session_peak`]).
#[cfg(feature = "device")]
pub fn end_session() {
    let peak = ALLOCATOR.main.peak.load(Relaxed);
    SESSION_PEAK.store(peak - SESSION_BASE.load(Relaxed), Relaxed);
}

/// The most bytes live at once in the main region since [`begin_session`], above what was live
/// when it began (the peer roles', the DNS tunnel's and the BLE link's figures, taken when the
/// role, the tunnel or the link has been dropped).
#[cfg(any(feature = "peer", feature = "dns", feature = "ble"))]
pub fn session_peak_so_far() -> usize {
    ALLOCATOR.main.peak.load(Relaxed) - SESSION_BASE.load(Relaxed)
}

/// The most bytes live at once in the main region between [`begin_session`] and
/// [`end_session`] of the last run, above what was live when it began.
#[cfg(feature = "device")]
pub fn session_peak() -> usize {
    SESSION_PEAK.load(Relaxed)
}

/// Without `device` there is no device session: 0.
#[cfg(not(feature = "device"))]
pub fn session_peak() -> usize {
    0
}

/// Peak live bytes (both regions) since the last [`begin_run`].
pub fn peak() -> usize {
    ALLOCATOR.peak.load(Relaxed)
}

/// Live bytes now.
pub fn in_use() -> usize {
    ALLOCATOR.live.load(Relaxed)
}

/// Bytes of the arena reached since the last [`begin_run`], both regions together.
pub fn high_water() -> usize {
    let a = &ALLOCATOR;
    if SPLIT {
        a.main.reached() + a.server.reached()
    } else {
        a.main.reached()
    }
}

/// Allocations and reallocations since the last [`begin_run`].
pub fn alloc_count() -> usize {
    ALLOCATOR.count.load(Relaxed)
}
