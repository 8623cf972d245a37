//! The toy's memory budget, measured: peak heap while sealing a 60-second recording through
//! the C ABI with the smallest chunk (1 KiB) and segment (1 KiB), as firmware would (20 ms of
//! audio per update, output drained after every call into a 512-byte buffer).
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
use std::sync::atomic::{AtomicUsize, Ordering};
use toyseal_c::*;
use toyseal_envelope::OpenOptions;
use toyseal_pairing::{EnvelopeEvent, PhoneEvent};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
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
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` was allocated by `System` with this layout (every alloc goes there).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr`/`layout` came from this allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
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

    let mut transfer = 0;
    let ((), delivery) = peak_during(|| {
        // SAFETY: live handle; `envelope` readable; `transfer` writable.
        let r = unsafe {
            toyseal_toy_send_envelope(
                f.toy.handle,
                envelope.as_ptr(),
                envelope.len(),
                50,
                &mut transfer,
            )
        };
        assert_eq!(r, toyseal_result::Ok);
    });
    let (pe, _) = pump(&mut f.phone, &mut f.toy, 50);
    let received = pe
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Envelope(EnvelopeEvent::Received { envelope, .. }) => Some(envelope),
            _ => None,
        })
        .expect("delivered");
    let (content, _) = f
        .roster
        .open(&f.parent, &received, OpenOptions::default())
        .expect("opens");
    assert_eq!(content, recording);

    println!(
        "toy boot (identity, window): peak {boot} B; sealing {SECONDS} s of 8 kHz 16-bit audio \
         ({} B) with 1 KiB chunks and segments into {} B: peak {sealing} B above the toy's \
         resident heap; handing the envelope to the session: +{delivery} B (a copy of the \
         whole envelope)",
        recording.len(),
        envelope.len()
    );
    // The budget docs/guides/c-firmware.md states (an nRF52840 has 256 KiB of RAM).
    assert!(
        sealing < 16 * 1024,
        "sealing peak {sealing} B exceeds 16 KiB"
    );
}
