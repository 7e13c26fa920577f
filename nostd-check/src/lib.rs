//! # nostd-check
//!
//! The proof that `zerotouch-core`, `zerotouch-provisioner` (feature `provisioner`),
//! `zerotouch-device` (feature `device`), `zerotouch-peer` (feature `peer`) and the framing
//! of `zerotouch-dns` (feature `dns`) and of `zerotouch-ble` (feature `ble`) build and run without `std`, and the measuring stick for their footprint on a device. See
//! `scripts/nostd-check.sh`, which builds this crate as a static library for each device
//! feature set, checks what it links against, links it into a small C runner (`runner.c`) and
//! compares code size and peak heap with `budgets.txt`.
//!
//! - `#![no_std]`, `panic = "abort"`, its own `#[panic_handler]` and `#[global_allocator]`: a
//!   dependency that links `std` fails the build with E0152 (duplicate lang item).
//! - Every no_std dependency of the core and the provisioner is named with `extern crate`: a
//!   dependency that is never referenced is never loaded and would escape the check.
//! - [`zt_check_run`] drives the core's real API through one server-proof and one device-proof
//!   round (the messages a device sends and checks during setup), so the linked code is what
//!   a device firmware pays for. With `provisioner`, it also runs the setup-network engine
//!   through a signed order, admission, isolation, rate limits, eviction and closing. With
//!   `device`, it drives `zerotouch-device` through a whole setup (hello to revocation check)
//!   with 30 visible networks, and measures the session's own peak heap. With `peer`, it runs
//!   `zerotouch-peer`'s joiner and sponsor through a whole flow-2 handoff and through each of
//!   the four fallbacks (compared codes, a code shown on either device, the label code, over
//!   SPAKE2+), and measures each role's peak heap. With `dns`, it drives `zerotouch-dns`'s
//!   `TunnelClient` through two whole exchanges (cookie, chunks, a lost answer, a forged one,
//!   an expired cookie, the EDNS probe once a response needs polls, polls) against a fake
//!   server built from the framing, and measures the tunnel's peak heap. With `ble`, it carries
//!   a 4,202-byte message each way at ATT MTU 23 between two `zerotouch-ble` `BleLink`s (a
//!   disconnect mid-message, a copy of a delivered message, a bad segment, a reassembly
//!   timeout), and measures the device link's peak heap.
//! - The allocator is a bump arena over a static buffer that counts live and peak heap bytes.
//!
//! This crate alone in the project uses `unsafe`: for the allocator, the panic handler and the
//! exported C symbols.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

extern crate alloc;

// Every no_std crate the core and the provisioner depend on, named so each one is loaded (and
// so checked) even where this crate calls nothing of it directly.
#[cfg(feature = "peer")]
extern crate chacha20poly1305;
extern crate ciborium;
extern crate coset;
#[cfg(any(feature = "barcode", feature = "dns"))]
extern crate data_encoding;
#[cfg(feature = "x509")]
extern crate der;
#[cfg(feature = "ed25519")]
extern crate ed25519_dalek;
extern crate hmac;
extern crate hpke;
extern crate p256;
#[cfg(feature = "peer")]
extern crate pbkdf2;
extern crate rand_core;
extern crate serde;
extern crate sha2;
#[cfg(feature = "peer")]
extern crate spake2plus;
#[cfg(feature = "x509")]
extern crate spki;
extern crate subtle;
extern crate thiserror;
#[cfg(feature = "peer")]
extern crate x25519_dalek;
#[cfg(feature = "x509")]
extern crate x509_cert;
extern crate zeroize;
#[cfg(feature = "ble")]
extern crate zerotouch_ble;
extern crate zerotouch_core;
#[cfg(feature = "device")]
extern crate zerotouch_device;
#[cfg(feature = "dns")]
extern crate zerotouch_dns;
#[cfg(feature = "peer")]
extern crate zerotouch_peer;
#[cfg(feature = "provisioner")]
extern crate zerotouch_provisioner;

#[cfg(feature = "ble")]
mod ble;
#[cfg(feature = "device")]
mod device;
#[cfg(feature = "dns")]
mod dns;
mod heap;
#[cfg(feature = "peer")]
mod peer;
#[cfg(feature = "provisioner")]
mod provisioner;
mod run;

/// Runs every check once. Returns 0 when all passed, else the number of the first step that
/// failed (see `run::Step`). Resets the heap counters first, so [`zt_check_peak_heap`] then
/// reports this run's peak. Not reentrant: call it from one thread at a time.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_run() -> u32 {
    heap::begin_run();
    let status = match run::run() {
        Ok(()) => 0,
        Err(step) => step as u32,
    };
    // Everything the run allocated has been dropped by now; anything still live is a leak.
    if status == 0 && heap::in_use() != 0 {
        return run::Step::HeapNotFreed as u32;
    }
    status
}

/// The largest number of heap bytes live at once during the last [`zt_check_run`] (the sum of
/// the sizes requested, as a general-purpose allocator would see them, without its overhead).
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_peak_heap() -> usize {
    heap::peak()
}

/// With `device`: the most heap bytes the device session had live at once during the last
/// [`zt_check_run`], from its creation to its drop, without the check's own server side (see
/// `src/device.rs`); 0 without `device`.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_device_session_peak_heap() -> usize {
    heap::session_peak()
}

/// With `device`: the length in bytes of the credential request (with the 30 networks) the
/// device session sent during the last [`zt_check_run`]; 0 without `device`.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_device_request_len() -> usize {
    #[cfg(feature = "device")]
    let len = device::request_len();
    #[cfg(not(feature = "device"))]
    let len = 0;
    len
}

/// With `peer`: the most heap bytes the joiner role had live at once during the last
/// [`zt_check_run`]'s handoff, without the sponsor and the server (see `src/peer.rs`); 0
/// without `peer`.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_joiner_peak_heap() -> usize {
    #[cfg(feature = "peer")]
    let peak = peer::joiner_peak();
    #[cfg(not(feature = "peer"))]
    let peak = 0;
    peak
}

/// With `peer`: the same for the sponsor role, without the joiner and the server.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_sponsor_peak_heap() -> usize {
    #[cfg(feature = "peer")]
    let peak = peer::sponsor_peak();
    #[cfg(not(feature = "peer"))]
    let peak = 0;
    peak
}

/// With `dns`: the most heap bytes the DNS tunnel had live at once during the last
/// [`zt_check_run`], from its creation to its drop, without the check's fake server (see
/// `src/dns.rs`); 0 without `dns`.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_dns_tunnel_peak_heap() -> usize {
    #[cfg(feature = "dns")]
    let peak = dns::tunnel_peak();
    #[cfg(not(feature = "dns"))]
    let peak = 0;
    peak
}

/// With `ble`: the most heap bytes the device's BLE link had live at once during the last
/// [`zt_check_run`], from its creation to its drop, without the check's central (see
/// `src/ble.rs`); 0 without `ble`.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_ble_link_peak_heap() -> usize {
    #[cfg(feature = "ble")]
    let peak = ble::link_peak();
    #[cfg(not(feature = "ble"))]
    let peak = 0;
    peak
}

/// Heap bytes live now (0 after a run: nothing leaks).
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_heap_in_use() -> usize {
    heap::in_use()
}

/// How far into its arena the bump allocator reached during the last run: the peak plus what
/// a bump allocator cannot reuse (freed blocks below the top, alignment padding).
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_arena_high_water() -> usize {
    heap::high_water()
}

/// Number of allocations (including reallocations) during the last run.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_alloc_count() -> usize {
    heap::alloc_count()
}

/// The size of the allocator's arena in bytes.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_arena_size() -> usize {
    heap::ARENA_SIZE
}

/// Which optional features this build has: bit 0 `ed25519`, bit 1 `x509`, bit 2 `barcode`,
/// bit 3 `provisioner`, bit 4 `device`, bit 5 `peer`, bit 6 `dns`, bit 7 `ble`.
#[unsafe(no_mangle)]
pub extern "C" fn zt_check_features() -> u32 {
    u32::from(cfg!(feature = "ed25519"))
        | u32::from(cfg!(feature = "x509")) << 1
        | u32::from(cfg!(feature = "barcode")) << 2
        | u32::from(cfg!(feature = "provisioner")) << 3
        | u32::from(cfg!(feature = "device")) << 4
        | u32::from(cfg!(feature = "peer")) << 5
        | u32::from(cfg!(feature = "dns")) << 6
        | u32::from(cfg!(feature = "ble")) << 7
}

/// A panic cannot unwind (`panic = "abort"`) and there is no process to abort: trap, so a host
/// runner dies with a signal instead of hanging.
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    // SAFETY: `ud2` raises an invalid-opcode trap and never returns, as declared.
    unsafe {
        core::arch::asm!("ud2", options(noreturn, nomem, nostack));
    }
    #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
    // SAFETY: `udf` is a permanently undefined instruction: it traps and never returns.
    unsafe {
        core::arch::asm!("udf #0", options(noreturn, nomem, nostack));
    }
    #[allow(unreachable_code)]
    loop {
        core::hint::spin_loop();
    }
}
