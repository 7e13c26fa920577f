//! A counting bump allocator over a static arena.
//!
//! It counts the bytes live (requested and not yet freed) and their peak, which is the figure a
//! device's heap must hold at least; a general-purpose allocator adds its own overhead on top.
//! Memory is handed out from the arena's top; freeing the topmost block gives it back, growing
//! or shrinking the topmost block happens in place, and the whole arena is reused when a run
//! starts with nothing live. All counters are atomics, so the allocator is sound if shared
//! between threads; the entry points that reset counters are not meant to run concurrently.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Size of the arena. Far above the aim for peak heap (16 KiB), so the arena never limits the
/// figure being measured; a run that exhausts it fails to allocate and traps.
pub const ARENA_SIZE: usize = 256 * 1024;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);

// SAFETY: the arena's bytes are only reached through pointers the allocator hands out, and it
// hands each byte to one live allocation at a time (offsets are claimed with compare-exchange).
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_SIZE]));

struct CountingBump {
    /// Offset of the first free byte of the arena.
    top: AtomicUsize,
    /// Highest `top` reached since the last reset.
    high_water: AtomicUsize,
    /// Bytes requested and not yet freed.
    live: AtomicUsize,
    /// Highest `live` since the last reset.
    peak: AtomicUsize,
    /// Allocations and reallocations since the last reset.
    count: AtomicUsize,
}

#[global_allocator]
static ALLOCATOR: CountingBump = CountingBump {
    top: AtomicUsize::new(0),
    high_water: AtomicUsize::new(0),
    live: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
    count: AtomicUsize::new(0),
};

fn base() -> usize {
    ARENA.0.get() as usize
}

impl CountingBump {
    fn add_live(&self, bytes: usize) {
        let now = self.live.fetch_add(bytes, Relaxed) + bytes;
        self.peak.fetch_max(now, Relaxed);
    }

    fn sub_live(&self, bytes: usize) {
        self.live.fetch_sub(bytes, Relaxed);
    }

    /// Claims `layout` at the top of the arena; returns its offset.
    fn claim(&self, layout: Layout) -> Option<usize> {
        let base = base();
        let mut top = self.top.load(Relaxed);
        loop {
            let start = (base.checked_add(top)?)
                .checked_next_multiple_of(layout.align())?
                .checked_sub(base)?;
            let end = start.checked_add(layout.size())?;
            if end > ARENA_SIZE {
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
}

// SAFETY: `alloc` returns either null or a block of `layout.size()` bytes aligned to
// `layout.align()` inside the arena that no other live allocation overlaps: offsets only move
// down (in `dealloc`/`realloc`) by giving back the topmost block, which the caller has freed.
unsafe impl GlobalAlloc for CountingBump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(start) = self.claim(layout) else {
            return ptr::null_mut();
        };
        self.count.fetch_add(1, Relaxed);
        self.add_live(layout.size());
        // `start + size <= ARENA_SIZE`, so the pointer stays inside the arena.
        ARENA.0.get().cast::<u8>().wrapping_add(start)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.sub_live(layout.size());
        // If this was the topmost block, give its bytes back. If another block was claimed in
        // between, the exchange fails and the bytes stay used until the arena is reset.
        let start = (ptr as usize).wrapping_sub(base());
        let end = start.wrapping_add(layout.size());
        let _ = self.top.compare_exchange(end, start, Relaxed, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = (ptr as usize).wrapping_sub(base());
        let old_end = start.wrapping_add(layout.size());
        // The topmost block grows or shrinks in place.
        if let Some(new_end) = start.checked_add(new_size).filter(|e| *e <= ARENA_SIZE)
            && self
                .top
                .compare_exchange(old_end, new_end, Relaxed, Relaxed)
                .is_ok()
        {
            self.high_water.fetch_max(new_end, Relaxed);
            self.count.fetch_add(1, Relaxed);
            if new_size >= layout.size() {
                self.add_live(new_size - layout.size());
            } else {
                self.sub_live(layout.size() - new_size);
            }
            return ptr;
        }
        // Elsewhere: a new block, a copy, and the old block freed (both are live for a moment,
        // as with any allocator that cannot grow in place).
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        // SAFETY: `new_layout` has a non-zero size (the caller's contract for `realloc`).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap (the new
            // block was claimed above the top, the old one lies below it).
            unsafe { ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated by this allocator with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

/// Starts a measured run: peak and counts restart from what is live now, and when nothing is
/// live the arena is reused from its start.
pub fn begin_run() {
    let a = &ALLOCATOR;
    if a.live.load(Relaxed) == 0 {
        a.top.store(0, Relaxed);
    }
    a.peak.store(a.live.load(Relaxed), Relaxed);
    a.high_water.store(a.top.load(Relaxed), Relaxed);
    a.count.store(0, Relaxed);
}

/// Peak live bytes since the last [`begin_run`].
pub fn peak() -> usize {
    ALLOCATOR.peak.load(Relaxed)
}

/// Live bytes now.
pub fn in_use() -> usize {
    ALLOCATOR.live.load(Relaxed)
}

/// Highest arena offset reached since the last [`begin_run`].
pub fn high_water() -> usize {
    ALLOCATOR.high_water.load(Relaxed)
}

/// Allocations and reallocations since the last [`begin_run`].
pub fn alloc_count() -> usize {
    ALLOCATOR.count.load(Relaxed)
}
