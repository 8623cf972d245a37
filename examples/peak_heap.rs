//! Peak heap while streaming a large recording through the envelope (DESIGN.md target: ≤ 1 MiB
//! while streaming 1 GiB).
//!
//! `dhat` is the global allocator. Two measured phases, each under its own profiler:
//!
//! 1. **seal**: generated content (1 GiB by default) goes through `Sealer::update` in 64 KiB
//!    pieces; the ciphertext `Vec` is drained into a sink after every piece.
//! 2. **open**: the same content is sealed piece by piece into a reused buffer and each piece of
//!    ciphertext is pushed straight into `Opener::push`, whose output is drained likewise; the
//!    whole envelope never exists in memory. This phase counts the sealer's buffers too, so it
//!    is an upper bound for the opener alone.
//!
//! Each phase counts everything allocated after the identities exist: input piece, buffers,
//! sealer, opener. Run it in release:
//!
//! ```text
//! cargo run --release --example peak_heap                 # 1 GiB
//! cargo run --release --example peak_heap -- --size-mib 64
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use toyseal::core::{DeviceIdentity, OsRng, PublicIdentity, Role};
use toyseal::envelope::{OpenOptions, Opener, SealOptions, Sealer};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const PIECE: usize = 64 * 1024;
const LIMIT: usize = 1024 * 1024;

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
}

/// Seals `total` bytes, handing each piece of ciphertext to `sink`. Returns the envelope length
/// and the peak heap reached before `Sealer::finish`.
fn seal_stream(f: &Family, total: u64, mut sink: impl FnMut(&[u8])) -> (u64, usize) {
    let mut piece = vec![0u8; PIECE];
    let mut out = Vec::with_capacity(2 * PIECE);
    let mut sealer =
        Sealer::new(&f.toy, &f.recipients, &SealOptions::default(), &mut OsRng).expect("sealer");
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
        if progress == toyseal::envelope::Progress::Complete {
            break;
        }
    }
    (written, before_finish)
}

fn main() {
    let mut size_mib: u64 = 1024;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size-mib" => {
                size_mib = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--size-mib takes a number");
            }
            "--bench" => {} // tolerate `cargo bench`-style extra flags
            other => panic!("unknown argument {other}; usage: peak_heap [--size-mib N]"),
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
    let f = Family {
        toy,
        phone,
        recipients,
        trusted,
    };

    // Phase 1: seal only.
    let (seal_peak, seal_before_finish, env_len) = {
        let _profiler = dhat::Profiler::builder().testing().build();
        let (len, before_finish) = seal_stream(&f, total, |ct| {
            black_box(ct);
        });
        (dhat::HeapStats::get().max_bytes, before_finish, len)
    };

    // Phase 2: seal piece by piece, open piece by piece.
    let (open_peak, open_before_finish, released) = {
        let _profiler = dhat::Profiler::builder().testing().build();
        let mut opener = Opener::new(&f.phone, &f.trusted, OpenOptions::default());
        let mut plain = Vec::with_capacity(2 * PIECE);
        let mut released = 0u64;
        let (_, before_finish) = seal_stream(&f, total, |ct| {
            opener.push(ct, &mut plain).expect("push");
            released += plain.len() as u64;
            plain.clear();
        });
        let opened = opener
            .finish()
            .expect("finish: checkpoints and stream verified");
        assert_eq!(opened.content_len, released);
        (dhat::HeapStats::get().max_bytes, before_finish, released)
    };

    assert_eq!(released, total, "opened content length");
    println!(
        "streamed {size_mib} MiB (envelope {env_len} bytes, 3 recipients, 64 KiB pieces, 64 KiB chunks)"
    );
    let kib = |b: usize| b as f64 / 1024.0;
    println!(
        "peak heap, seal: {seal_peak} bytes ({:.1} KiB); before Sealer::finish: {seal_before_finish} bytes ({:.1} KiB)",
        kib(seal_peak),
        kib(seal_before_finish)
    );
    println!(
        "peak heap, seal + open pipelined: {open_peak} bytes ({:.1} KiB); before Sealer::finish: {open_before_finish} bytes ({:.1} KiB)",
        kib(open_peak),
        kib(open_before_finish)
    );
    assert!(seal_peak <= LIMIT, "seal peak heap {seal_peak} > 1 MiB");
    assert!(open_peak <= LIMIT, "open peak heap {open_peak} > 1 MiB");
    println!("OK: both ≤ 1 MiB ({LIMIT} bytes)");
}
