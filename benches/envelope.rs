//! Envelope throughput, side by side in one run: toyseal against the primitive floor and the
//! `age` crate, for each message size × recipient count (DESIGN.md "Targets").
//!
//! Every criterion group is named `{seal|open}_{size}_{n}r` and holds four lines:
//!
//! - `toyseal`: the one-shot API ([`toyseal::envelope::seal`] / [`toyseal::envelope::open`]),
//!   which allocates the output `Vec` on every call, as a caller of that API would;
//! - `toyseal_stream`: the streaming API ([`Sealer`] / [`Opener`]) fed 64 KiB pieces, output
//!   drained into a reused buffer (how the toy and the phone actually run it);
//! - `floor`: the primitive work the same message needs, from the same crates and nothing
//!   else: ring ChaCha20-Poly1305 in place over the content in 64 KiB chunks, ring SHA-256 over
//!   the same bytes, and for seal per recipient one X25519 base-point multiplication plus one
//!   X25519 DH, and one Ed25519 sign; for open one X25519 DH and one Ed25519 verify. No
//!   allocation, no copies, no key schedule: an honest lower bound;
//! - `age`: the `age` crate (0.12) sealing to the same number of X25519 recipients into a
//!   reused `Vec`, and opening into a reused `Vec` with the identity of the *first* recipient
//!   (age's best case: age has no key ids, so it tries one X25519 per stanza until one opens);
//! - `age_last` (open only): age opening with the *last* recipient's identity (its worst case).
//!
//! toyseal opens as the last recipient; with key ids its cost does not depend on the position.
//!
//! Inputs, identities and ciphertexts are prepared outside the timed loops.
//!
//! The machine is shared (2 cores, other builds running), so by default the measurement is the
//! benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, user + system, so page faults
//! count) rather than wall time: time spent preempted by other processes does not inflate one
//! line and not its neighbour. Set `TOYSEAL_BENCH_WALL=1` to measure wall time instead.
//! `scripts/bench-report.sh` runs this bench and turns `target/criterion` into the table in
//! docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::ThreadCpu;
use criterion::measurement::{Measurement, WallTime};
use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::digest::{Context, SHA256};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;
use toyseal::core::{DeviceIdentity, OsRng, PublicIdentity, Role};
use toyseal::envelope::{OpenOptions, Opener, SealOptions, Sealer, open, seal};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// toyseal's default chunk size, and the floor's.
const CHUNK: usize = 64 * KIB;
/// Piece size fed to the streaming APIs.
const PIECE: usize = 64 * KIB;

/// (label, bytes, recipient counts)
const CASES: &[(&str, usize, &[usize])] = &[
    ("1KiB", KIB, &[1, 3, 10]),
    ("60KiB", 60 * KIB, &[1, 3, 10]),
    ("1MiB", MIB, &[1, 3, 10]),
    ("64MiB", 64 * MIB, &[3]),
];

/// Deterministic synthetic "recording".
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) % 251) as u8).collect()
}

fn nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

struct Fixture {
    toy: DeviceIdentity,
    phones: Vec<DeviceIdentity>,
    recipients: Vec<PublicIdentity>,
    trusted: Vec<PublicIdentity>,
    content: Vec<u8>,
    envelope: Vec<u8>,
    age_ids: Vec<age::x25519::Identity>,
    age_recipients: Vec<age::x25519::Recipient>,
    age_ct: Vec<u8>,
    // Floor material.
    aead: LessSafeKey,
    ed: Ed25519KeyPair,
    ed_public: Vec<u8>,
    eph_secrets: Vec<[u8; 32]>,
    recipient_x: Vec<x25519_dalek::PublicKey>,
    my_x: x25519_dalek::StaticSecret,
    peer_x: x25519_dalek::PublicKey,
    floor_ct: Vec<u8>,
    floor_sig: Vec<u8>,
}

impl Fixture {
    fn new(len: usize, n: usize) -> Self {
        let mut rng = OsRng;
        let toy = DeviceIdentity::generate(Role::Toy, &mut rng);
        let phones: Vec<_> = (0..n)
            .map(|_| DeviceIdentity::generate(Role::Guardian, &mut rng))
            .collect();
        let recipients: Vec<_> = phones.iter().map(|p| p.public().clone()).collect();
        let trusted = vec![toy.public().clone()];
        let content = content(len);
        let envelope = seal(
            &toy,
            &recipients,
            &SealOptions::default(),
            &content,
            &mut rng,
        )
        .unwrap();

        let age_ids: Vec<_> = (0..n).map(|_| age::x25519::Identity::generate()).collect();
        let age_recipients: Vec<_> = age_ids.iter().map(|i| i.to_public()).collect();
        let mut age_ct = Vec::new();
        age_seal(&age_recipients, &content, &mut age_ct);

        let aead = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7; 32]).unwrap());
        let ed = Ed25519KeyPair::from_seed_unchecked(&[3; 32]).unwrap();
        let ed_public = ed.public_key().as_ref().to_vec();
        let eph_secrets: Vec<[u8; 32]> = (0..n).map(|i| [i as u8 + 11; 32]).collect();
        let recipient_x = (0..n)
            .map(|i| {
                x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([i as u8 + 50; 32]))
            })
            .collect();
        let my_x = x25519_dalek::StaticSecret::from([99; 32]);
        let peer_x = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([98; 32]));
        // Floor ciphertext: content in CHUNK-sized chunks, each followed by its tag.
        let mut floor_ct = Vec::with_capacity(len + len / CHUNK * 16 + 16);
        let chunks = content.chunks(CHUNK).count();
        for (i, c) in content.chunks(CHUNK).enumerate() {
            let start = floor_ct.len();
            floor_ct.extend_from_slice(c);
            let tag = aead
                .seal_in_place_separate_tag(
                    nonce(i as u64, i + 1 == chunks),
                    Aad::empty(),
                    &mut floor_ct[start..],
                )
                .unwrap();
            floor_ct.extend_from_slice(tag.as_ref());
        }
        let floor_sig = ed.sign(&[0; 62]).as_ref().to_vec();
        Self {
            toy,
            phones,
            recipients,
            trusted,
            content,
            envelope,
            age_ids,
            age_recipients,
            age_ct,
            aead,
            ed,
            ed_public,
            eph_secrets,
            recipient_x,
            my_x,
            peer_x,
            floor_ct,
            floor_sig,
        }
    }
}

fn age_seal(recipients: &[age::x25519::Recipient], content: &[u8], out: &mut Vec<u8>) {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .unwrap();
    let mut w = enc.wrap_output(out).unwrap();
    w.write_all(content).unwrap();
    w.finish().unwrap();
}

/// The floor of sealing: public-key work per recipient, AEAD + SHA-256 over the bytes, a sign.
fn floor_seal(f: &Fixture, buf: &mut [u8]) {
    for (eph, pk) in f.eph_secrets.iter().zip(&f.recipient_x) {
        let eph = x25519_dalek::StaticSecret::from(*eph);
        let enc = x25519_dalek::PublicKey::from(&eph);
        let shared = eph.diffie_hellman(pk);
        black_box((enc, shared.as_bytes()));
    }
    let mut h = Context::new(&SHA256);
    let chunks = buf.len().div_ceil(CHUNK);
    for (i, c) in buf.chunks_mut(CHUNK).enumerate() {
        let tag = f
            .aead
            .seal_in_place_separate_tag(nonce(i as u64, i + 1 == chunks), Aad::empty(), c)
            .unwrap();
        h.update(c);
        h.update(tag.as_ref());
    }
    let d = h.finish();
    let mut msg = [0u8; 62];
    msg[30..].copy_from_slice(d.as_ref());
    black_box(f.ed.sign(&msg));
}

/// The floor of opening: one DH, SHA-256 + AEAD open over the bytes, one verify.
fn floor_open(f: &Fixture, ct: &mut [u8]) {
    let shared = f.my_x.diffie_hellman(&f.peer_x);
    black_box(shared.as_bytes());
    let mut h = Context::new(&SHA256);
    let chunks = ct.len().div_ceil(CHUNK + 16);
    for (i, c) in ct.chunks_mut(CHUNK + 16).enumerate() {
        h.update(c);
        let pt = f
            .aead
            .open_in_place(nonce(i as u64, i + 1 == chunks), Aad::empty(), c)
            .unwrap();
        black_box(pt);
    }
    let d = h.finish();
    let mut msg = [0u8; 62];
    msg[30..].copy_from_slice(d.as_ref());
    // The signature is over a fixed message; verification costs the same either way.
    let ok = UnparsedPublicKey::new(&ED25519, &f.ed_public).verify(&msg, &f.floor_sig);
    black_box(ok.is_ok());
}

fn configure<M: Measurement>(g: &mut BenchmarkGroup<'_, M>, len: usize) {
    if len >= 64 * MIB {
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
    } else if len >= MIB {
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(700))
            .measurement_time(Duration::from_secs(2));
    } else {
        g.sample_size(30)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_millis(1500));
    }
}

fn batch(len: usize) -> BatchSize {
    if len >= MIB {
        BatchSize::PerIteration
    } else {
        BatchSize::SmallInput
    }
}

fn bench_case<M: Measurement>(c: &mut Criterion<M>, label: &str, len: usize, n: usize) {
    let f = Fixture::new(len, n);
    let opts = SealOptions::default();

    let mut g = c.benchmark_group(format!("seal_{label}_{n}r"));
    configure(&mut g, len);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("toyseal", |b| {
        b.iter(|| {
            seal(
                &f.toy,
                &f.recipients,
                &opts,
                black_box(&f.content),
                &mut OsRng,
            )
            .unwrap()
        })
    });
    let mut sink = Vec::with_capacity(4 * CHUNK);
    g.bench_function("toyseal_stream", |b| {
        b.iter(|| {
            let mut s = Sealer::new(&f.toy, &f.recipients, &opts, &mut OsRng).unwrap();
            for piece in black_box(&f.content).chunks(PIECE) {
                sink.clear();
                s.update(piece, &mut sink).unwrap();
                black_box(&sink);
            }
            sink.clear();
            s.finish(&mut sink).unwrap();
            black_box(&sink);
        })
    });
    let mut buf = f.content.clone();
    g.bench_function("floor", |b| b.iter(|| floor_seal(&f, black_box(&mut buf))));
    let mut out = Vec::with_capacity(len + len / 16 + 4096);
    g.bench_function("age", |b| {
        b.iter(|| {
            out.clear();
            age_seal(&f.age_recipients, black_box(&f.content), &mut out);
        })
    });
    g.finish();

    let me = &f.phones[n - 1];
    let mut g = c.benchmark_group(format!("open_{label}_{n}r"));
    configure(&mut g, len);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("toyseal", |b| {
        b.iter(|| {
            open(
                me,
                &f.trusted,
                black_box(&f.envelope),
                OpenOptions::default(),
            )
            .unwrap()
        })
    });
    g.bench_function("toyseal_stream", |b| {
        b.iter(|| {
            let mut o = Opener::new(me, &f.trusted, OpenOptions::default());
            for piece in black_box(&f.envelope).chunks(PIECE) {
                sink.clear();
                o.push(piece, &mut sink).unwrap();
                black_box(&sink);
            }
            sink.clear();
            o.finish().unwrap();
            black_box(&sink);
        })
    });
    g.bench_function("floor", |b| {
        b.iter_batched_ref(|| f.floor_ct.clone(), |ct| floor_open(&f, ct), batch(len))
    });
    let mut out = Vec::with_capacity(len + 4096);
    for (line, who) in [("age", 0), ("age_last", n - 1)] {
        if line == "age_last" && n == 1 {
            continue;
        }
        g.bench_function(line, |b| {
            b.iter(|| {
                out.clear();
                let d = age::Decryptor::new_buffered(black_box(&f.age_ct[..])).unwrap();
                let mut r = d
                    .decrypt(std::iter::once(&f.age_ids[who] as &dyn age::Identity))
                    .unwrap();
                r.read_to_end(&mut out).unwrap();
            })
        });
    }
    g.finish();
}

fn envelope<M: Measurement>(mut c: Criterion<M>) {
    for &(label, len, ns) in CASES {
        for &n in ns {
            bench_case(&mut c, label, len, n);
        }
    }
    c.final_summary();
}

fn main() {
    if std::env::var_os("TOYSEAL_BENCH_WALL").is_some() {
        envelope(Criterion::default().configure_from_args());
    } else {
        envelope(
            Criterion::default()
                .with_measurement(ThreadCpu(WallTime))
                .configure_from_args(),
        );
    }
}
