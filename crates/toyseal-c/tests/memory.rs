//! The toy's memory budget, measured: peak heap while sealing a 60-second recording through
//! the C ABI with the smallest chunk (1 KiB) and segment (1 KiB), as firmware would (20 ms of
//! audio per update, output drained after every call into a 512-byte buffer), then while
//! delivering it streamed from the toy's storage (the firmware supplies what the window asks
//! for, 512 bytes at a time).
//!
//! ```text
//! cargo test -p toyseal-c --test memory -- --nocapture
//! ```
//!
//! A counting global allocator (this test binary only) records the heap in use and its peak;
//! the numbers are documented in docs/guides/c-firmware.md.

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use toyseal_c::*;
use toyseal_envelope::OpenOptions;
use toyseal_pairing::{EnvelopeEvent, PhoneEvent};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// The heap the toy itself holds: allocations and frees made inside calls into the toy (on
// this thread). Through the C ABI the toy owns no memory the caller frees and frees none of
// the caller's, so this is exactly the toy's heap, apart from the phone sharing the process.
static TOY_CURRENT: AtomicIsize = AtomicIsize::new(0);
static TOY_PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static IN_TOY: Cell<bool> = const { Cell::new(false) };
}

fn in_toy() -> bool {
    IN_TOY.try_with(Cell::get).unwrap_or(false)
}

fn toy_side(on: bool) {
    IN_TOY.with(|c| c.set(on));
}

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
    if in_toy() {
        let now = TOY_CURRENT.fetch_add(by as isize, Ordering::SeqCst) + by as isize;
        TOY_PEAK.fetch_max(now, Ordering::SeqCst);
    }
}

fn shrank(by: usize) {
    CURRENT.fetch_sub(by, Ordering::SeqCst);
    if in_toy() {
        TOY_CURRENT.fetch_sub(by as isize, Ordering::SeqCst);
    }
}

// SAFETY: every method forwards to `System` with the caller's layout unchanged; the counters
// are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's (valid, non-zero-size) layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: `ptr` was allocated by `System` with this layout (every alloc goes there).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr`/`layout` came from this allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak heap above the level when `f` started.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let r = f();
    (r, PEAK.load(Ordering::SeqCst) - base)
}

const SECONDS: usize = 60;
const RATE: usize = 8000;

#[test]
fn sealing_a_60_second_recording_fits_a_small_mcu() {
    let (toy, boot) = peak_during(|| CToy::boot("48151623", Box::default()));
    drop(toy);
    let mut f = family();
    let recording = tone(RATE * SECONDS);
    // Reserved before measuring: stands for the toy's flash, not its RAM.
    let mut envelope = Vec::with_capacity(2 * recording.len());
    let (sealed, sealing) = peak_during(|| {
        c_seal(
            &mut f.toy,
            10,
            &recording,
            2 * RATE / 50,
            2 * RATE,
            &mut envelope,
        )
    });
    assert_eq!(sealed, Ok(()));
    assert!(envelope.len() <= envelope.capacity());

    // Streamed from the toy's storage: the toy's own heap, from before the first call to
    // after the phone acknowledged the last byte.
    TOY_CURRENT.store(0, Ordering::SeqCst);
    TOY_PEAK.store(0, Ordering::SeqCst);
    let (transfer, pe, te) = c_stream(&mut f.phone, &mut f.toy, &envelope, 512, 50, &toy_side);
    let streamed = TOY_PEAK.load(Ordering::SeqCst).unsigned_abs();
    assert!(
        te.iter()
            .any(|e| e.kind == toyseal_event_kind::EnvelopeDelivered && e.transfer == transfer)
    );
    let received = pe
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Envelope(EnvelopeEvent::Received { envelope, .. }) => Some(envelope),
            _ => None,
        })
        .expect("delivered");
    assert_eq!(received, envelope);
    let (content, _) = f
        .roster
        .open(&f.parent, &received, OpenOptions::default())
        .expect("opens");
    assert_eq!(content, recording);

    // For comparison: the whole-envelope call copies it.
    let mut transfer = 0;
    let ((), copied) = peak_during(|| {
        // SAFETY: live handle; `envelope` readable; `transfer` writable.
        let r = unsafe {
            toyseal_toy_send_envelope(
                f.toy.handle,
                envelope.as_ptr(),
                envelope.len(),
                60,
                &mut transfer,
            )
        };
        assert_eq!(r, toyseal_result::Ok);
    });
    let (pe, _) = pump(&mut f.phone, &mut f.toy, 60);
    assert!(
        pe.iter()
            .any(|e| matches!(e, PhoneEvent::Envelope(EnvelopeEvent::Received { .. })))
    );

    println!(
        "toy boot (identity, window): peak {boot} B; sealing {SECONDS} s of 8 kHz 16-bit audio \
         ({} B) with 1 KiB chunks and segments into {} B: peak {sealing} B above the toy's \
         resident heap; delivering it streamed from storage (default window 4 x 4 KiB, \
         512 B supplied at a time): peak {streamed} B above the toy's resident heap; handing the whole envelope \
         to the session instead: +{copied} B (a copy of the whole envelope)",
        recording.len(),
        envelope.len()
    );
    // The budget docs/guides/c-firmware.md states (an nRF52840 has 256 KiB of RAM).
    assert!(
        sealing < 16 * 1024,
        "sealing peak {sealing} B exceeds 16 KiB"
    );
    assert!(
        streamed < 48 * 1024,
        "streamed delivery peak {streamed} B exceeds 48 KiB"
    );
    assert!(
        streamed * 10 < envelope.len(),
        "far below the envelope size"
    );
}
