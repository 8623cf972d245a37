//! Peak heap while streaming a large recording through the envelope (format v2; DESIGN.md and
//! issue 7 target: ≤ 1.5 MiB while streaming 1 GiB at the default checkpoint interval).
//!
//! `dhat` is the global allocator. Three measured phases, each under its own profiler:
//!
//! 1. **seal**: generated content (1 GiB by default) goes through `Sealer::update` in 64 KiB
//!    pieces; the ciphertext `Vec` is drained into a sink after every piece, and the end
//!    (Padmé padding) is written with `Sealer::finish_in_steps`, one chunk per step.
//! 2. **seal + open pipelined, `Opener::push_with`**: the same content is sealed piece by piece
//!    and each piece of ciphertext is pushed straight into the opener, which hands each proved
//!    segment of content to a callback (a player, a file) from its own buffer; the whole
//!    envelope never exists in memory. Counts the sealer's buffers too, so it is an upper bound
//!    for the opener alone.
//! 3. **seal + open pipelined, `Opener::push`**: the same, but the opener appends the content
//!    to the caller's `Vec` (drained after every push). A checkpoint releases a whole segment
//!    at once, so that `Vec` also grows to one segment: the caller's memory, counted here.
//!
//! An opener must hold back up to one segment (the content between two checkpoints) until its
//! checkpoint verifies, so the figure scales with the checkpoint interval
//! (`SealOptions::with_segment_size_log2`); the interval used is printed. Each phase counts
//! everything allocated after the identities exist: input piece, buffers, sealer, opener. Run
//! it in release:
//!
//! ```text
//! cargo run --release --example peak_heap                 # 1 GiB, default interval
//! cargo run --release --example peak_heap -- --size-mib 64 --segment-log2 18
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use toyseal::core::{DeviceIdentity, OsRng, PublicIdentity, Role};
use toyseal::envelope::{OpenOptions, Opener, Progress, SealOptions, Sealer, inspect, seal};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const PIECE: usize = 64 * 1024;
/// The target: 1.5 MiB.
const LIMIT: usize = 3 << 19;

/// Fills `buf` with the content bytes at `offset..` (cheap, deterministic, not all-zero).
fn fill(buf: &mut [u8], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = offset + i as u64;
        *b = (x.wrapping_mul(31) % 251) as u8;
    }
}

struct Family {
    toy: DeviceIdentity,
    phone: DeviceIdentity,
    recipients: Vec<PublicIdentity>,
    trusted: Vec<PublicIdentity>,
    options: SealOptions,
}

/// Seals `total` bytes, handing each piece of ciphertext to `sink`. Returns the envelope length
/// and the peak heap reached before `Sealer::finish_in_steps`.
fn seal_stream(f: &Family, total: u64, mut sink: impl FnMut(&[u8])) -> (u64, usize) {
    let mut piece = vec![0u8; PIECE];
    let mut out = Vec::with_capacity(2 * PIECE);
    let mut sealer = Sealer::new(&f.toy, &f.recipients, &f.options, &mut OsRng).expect("sealer");
    let mut done = 0u64;
    let mut written = 0u64;
    while done < total {
        let n = (total - done).min(PIECE as u64) as usize;
        fill(&mut piece[..n], done);
        sealer.update(&piece[..n], &mut out).expect("update");
        sink(&out);
        written += out.len() as u64;
        out.clear();
        done += n as u64;
    }
    let before_finish = dhat::HeapStats::get().max_bytes;
    // The end (Padmé padding, up to 12 %) is written one chunk per step and drained each time.
    let mut finishing = sealer.finish_in_steps(&mut out).expect("finish");
    loop {
        let progress = finishing.step(&mut out).expect("finish step");
        sink(&out);
        written += out.len() as u64;
        out.clear();
        if progress == Progress::Complete {
            break;
        }
    }
    (written, before_finish)
}

/// One measured phase: (peak heap, peak before the sealer's finish, envelope or content length).
type Phase = (usize, usize, u64);

/// Seals `total` bytes and opens them pipelined; `push` feeds one piece of ciphertext to the
/// opener and returns how many content bytes it released.
fn pipelined(
    f: &Family,
    total: u64,
    mut push: impl FnMut(&mut Opener<&[PublicIdentity], &DeviceIdentity>, &[u8]) -> u64,
) -> Phase {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut opener = Opener::new(&f.phone, &f.trusted[..], OpenOptions::default());
    let mut released = 0u64;
    let (_, before_finish) = seal_stream(f, total, |ct| released += push(&mut opener, ct));
    let opened = opener
        .finish()
        .expect("finish: checkpoints and stream verified");
    assert_eq!(opened.content_len, released);
    assert_eq!(released, total, "opened content length");
    (dhat::HeapStats::get().max_bytes, before_finish, released)
}

fn main() {
    let mut size_mib: u64 = 1024;
    let mut options = SealOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size-mib" => {
                size_mib = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--size-mib takes a number");
            }
            "--segment-log2" => {
                let log2 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--segment-log2 takes a number");
                options = options
                    .with_segment_size_log2(log2)
                    .expect("a valid segment exponent");
            }
            "--bench" => {} // tolerate `cargo bench`-style extra flags
            other => panic!(
                "unknown argument {other}; usage: peak_heap [--size-mib N] [--segment-log2 N]"
            ),
        }
    }
    let total = size_mib << 20;

    let mut rng = OsRng;
    let toy = DeviceIdentity::generate(Role::Toy, &mut rng);
    let phone = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let others: Vec<_> = (0..2)
        .map(|_| DeviceIdentity::generate(Role::Guardian, &mut rng))
        .collect();
    let mut recipients = vec![phone.public().clone()];
    recipients.extend(others.iter().map(|o| o.public().clone()));
    let trusted = vec![toy.public().clone()];
    // The interval and chunk size as the header records them (read before profiling).
    let header = inspect(&seal(&toy, &recipients, &options, b"x", &mut rng).expect("seal"))
        .expect("inspect");
    let f = Family {
        toy,
        phone,
        recipients,
        trusted,
        options,
    };

    // Phase 1: seal only.
    let seal_phase: Phase = {
        let _profiler = dhat::Profiler::builder().testing().build();
        let (len, before_finish) = seal_stream(&f, total, |ct| {
            black_box(ct);
        });
        (dhat::HeapStats::get().max_bytes, before_finish, len)
    };
    // Phase 2: pipelined, content handed to a callback.
    let with_phase = pipelined(&f, total, |opener, ct| {
        let mut n = 0u64;
        opener
            .push_with(ct, |content| {
                black_box(content);
                n += content.len() as u64;
            })
            .expect("push_with");
        n
    });
    // Phase 3: pipelined, content appended to the caller's Vec (drained after every push).
    let mut plain = Vec::new();
    let push_phase = pipelined(&f, total, |opener, ct| {
        opener.push(ct, &mut plain).expect("push");
        let n = plain.len() as u64;
        black_box(&plain);
        plain.clear();
        n
    });

    println!(
        "streamed {size_mib} MiB (envelope {} bytes, 3 recipients, 64 KiB pieces, {} KiB chunks, \
         checkpoint interval {} KiB)",
        seal_phase.2,
        header.chunk_size() >> 10,
        header.segment_size() >> 10
    );
    let kib = |b: usize| b as f64 / 1024.0;
    let mut ok = true;
    for (what, (peak, before_finish, _)) in [
        ("seal", seal_phase),
        ("seal + open pipelined (push_with)", with_phase),
        ("seal + open pipelined (push into a Vec)", push_phase),
    ] {
        println!(
            "peak heap, {what}: {peak} bytes ({:.1} KiB); before Sealer::finish: \
             {before_finish} bytes ({:.1} KiB)",
            kib(peak),
            kib(before_finish)
        );
        ok &= peak <= LIMIT;
    }
    if ok {
        println!("OK: every phase ≤ 1.5 MiB ({LIMIT} bytes)");
    } else {
        println!("MISSED: a phase is above 1.5 MiB ({LIMIT} bytes)");
        std::process::exit(1);
    }
}
