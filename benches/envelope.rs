//! Envelope (format v2) throughput, side by side in one run: toyseal against its primitive
//! floor, against `age`, and against `age + minisign` (the peer with the same guarantees), for
//! each message size × recipient count (DESIGN.md "Targets", issue 7 "Performance").
//!
//! Every criterion group `{seal|open}_{size}_{n}r` (measured in thread CPU time, see below)
//! holds these lines, all on inputs prepared outside the timed loops:
//!
//! - `toyseal`: the one-shot API ([`toyseal::envelope::seal`] / [`toyseal::envelope::open`]),
//!   which allocates the output `Vec` on every call, as a caller of that API would;
//! - `toyseal_stream`: the streaming API ([`Sealer`] / [`Opener::push`]) fed 64 KiB pieces,
//!   output drained into a reused buffer (how the toy and the phone run it);
//! - `floor`: the primitive work the format needs for the same content, from the same crates,
//!   with no allocation, copy, framing, key schedule or padding — see [`floor_seal`] and
//!   [`floor_open`] for exactly what it counts;
//! - `age`: the `age` crate (0.12) to the same number of X25519 recipients, into / out of a
//!   reused `Vec`; open uses the *first* recipient's identity (age's best case: it has no key
//!   ids and tries one X25519 per stanza);
//! - `age_minisign`: the peer with the same guarantees (encrypted to every recipient *and*
//!   sender-authenticated, verifiable without decrypting): `age` as above plus a `minisign`
//!   (0.10) detached signature over the **ciphertext** — what the sender sends and what a server
//!   can check without a key, as toyseal's checkpoints do. minisign signs a BLAKE2b-512 prehash
//!   of the file with Ed25519 (plus its Ed25519 "global" signature over the trusted comment).
//!   Seal = age encrypt + `minisign::sign` (no public key passed, so minisign skips its
//!   self-check: its best case); open = `minisign::verify` + age decrypt. The signature box is
//!   kept as a value (its ~300-byte text encoding is not timed);
//! - `age_last` (open, 3 and 10 recipients): age opening with the *last* recipient's identity.
//!
//! toyseal opens as the last recipient; with key ids its cost does not depend on the position.
//!
//! For 64 MiB → 3 the groups `{seal|open}_64MiB_3r_wall` measure **wall time** (both lines the
//! same way): `toyseal_parallel` ([`seal_parallel`] / [`open_parallel`], every core, one-shot)
//! against `age` (single-threaded; it has no parallel mode), plus `toyseal` (one-shot, one
//! thread) for the speed-up.
//!
//! The machine is shared (2 cores, other builds running), so the single-thread groups measure
//! the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, user + system, so page faults
//! count) rather than wall time: time spent preempted by other processes does not inflate one
//! line and not its neighbour. Set `TOYSEAL_BENCH_WALL=1` to measure every group in wall time.
//! `scripts/bench-report.sh` runs this bench and turns `target/criterion` into the tables and
//! the plot in docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::ThreadCpu;
use criterion::measurement::{Measurement, WallTime};
use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::digest::{Context, SHA256};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::hint::black_box;
use std::io::{Cursor, Read, Write};
use std::time::Duration;
use toyseal::core::{DeviceIdentity, OsRng, PublicIdentity, Role};
use toyseal::envelope::{
    DEFAULT_SEGMENT_LOG2, OpenOptions, Opener, SealOptions, Sealer, open, open_parallel, seal,
    seal_parallel,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// toyseal's default chunk size, and the floor's.
const CHUNK: usize = 64 * KIB;
/// toyseal's default checkpoint interval (content bytes per segment), and the floor's.
const SEGMENT: usize = 1 << DEFAULT_SEGMENT_LOG2;
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
    minisign: minisign::KeyPair,
    minisign_sig: minisign::SignatureBox,
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
        let minisign = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let minisign_sig = minisign::sign(None, &minisign.sk, &age_ct[..], None, None).unwrap();

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
        let floor_sig = ed.sign(&[0; 54]).as_ref().to_vec();
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
            minisign,
            minisign_sig,
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

fn age_open(id: &age::x25519::Identity, ct: &[u8], out: &mut Vec<u8>) {
    let d = age::Decryptor::new_buffered(ct).unwrap();
    let mut r = d
        .decrypt(std::iter::once(id as &dyn age::Identity))
        .unwrap();
    r.read_to_end(out).unwrap();
}

/// age sealing into a reused buffer.
fn age_seal_into(f: &Fixture, out: &mut Vec<u8>) {
    out.clear();
    age_seal(&f.age_recipients, black_box(&f.content), out);
}

/// age opening out of the prepared ciphertext into a reused buffer, as recipient `who`.
fn age_open_into(f: &Fixture, who: usize, out: &mut Vec<u8>) {
    out.clear();
    age_open(&f.age_ids[who], black_box(&f.age_ct), out);
}

/// age + minisign, sealing: encrypt, then sign what is sent (the ciphertext).
fn age_minisign_seal(f: &Fixture, content: &[u8], out: &mut Vec<u8>) -> minisign::SignatureBox {
    age_seal(&f.age_recipients, content, out);
    minisign::sign(None, &f.minisign.sk, &out[..], None, None).unwrap()
}

/// age + minisign, opening: verify the detached signature over the ciphertext, then decrypt.
fn age_minisign_open(f: &Fixture, ct: &[u8], out: &mut Vec<u8>) {
    minisign::verify(
        &f.minisign.pk,
        &f.minisign_sig,
        Cursor::new(ct),
        true,
        false,
        false,
    )
    .unwrap();
    age_open(&f.age_ids[0], ct, out);
}

/// The signed message of one checkpoint: the chain value over the previous one and the
/// segment digest (format v2 signs a fixed-size message per checkpoint).
fn chain(prev: &[u8; 32], digest: &[u8]) -> [u8; 54] {
    let mut h = Context::new(&SHA256);
    h.update(prev);
    h.update(digest);
    let mut msg = [0u8; 54];
    msg[22..].copy_from_slice(h.finish().as_ref());
    msg
}

/// The floor of sealing (format v2), and exactly what it counts:
/// - per recipient: one X25519 base-point multiplication (the ephemeral public key) and one
///   X25519 DH (x25519-dalek, what toyseal's HPKE uses);
/// - ring ChaCha20-Poly1305 in place over the content in 64 KiB chunks;
/// - ring SHA-256 over every ciphertext byte and tag, one digest per 1 MiB segment, chained
///   (one 64-byte SHA-256 per checkpoint);
/// - one ring Ed25519 signature per checkpoint: the header's plus one per segment.
///
/// Not counted: the header hash, HPKE's key schedule, HKDF, the key commitment, strict key
/// checks, framing bytes, copies, allocation, the prelude and Padmé padding.
fn floor_seal(f: &Fixture, buf: &mut [u8]) {
    for (eph, pk) in f.eph_secrets.iter().zip(&f.recipient_x) {
        let eph = x25519_dalek::StaticSecret::from(*eph);
        let enc = x25519_dalek::PublicKey::from(&eph);
        let shared = eph.diffie_hellman(pk);
        black_box((enc, shared.as_bytes()));
    }
    // Checkpoint 0: the header.
    let mut prev = [0u8; 32];
    let msg = chain(&prev, &[0; 32]);
    black_box(f.ed.sign(&msg));
    let chunks = buf.len().div_ceil(CHUNK);
    let mut i = 0u64;
    for segment in buf.chunks_mut(SEGMENT) {
        let mut h = Context::new(&SHA256);
        for c in segment.chunks_mut(CHUNK) {
            let tag = f
                .aead
                .seal_in_place_separate_tag(nonce(i, i + 1 == chunks as u64), Aad::empty(), c)
                .unwrap();
            h.update(c);
            h.update(tag.as_ref());
            i += 1;
        }
        let msg = chain(&prev, h.finish().as_ref());
        prev.copy_from_slice(&msg[22..]);
        black_box(f.ed.sign(&msg));
    }
}

/// The floor of opening (format v2): one X25519 DH (unwrapping this recipient's stanza); ring
/// SHA-256 over every ciphertext byte per segment, chained; ring ChaCha20-Poly1305 open in
/// place; one ring Ed25519 verification per checkpoint (header + one per segment). Not counted:
/// as for [`floor_seal`], plus the strict decoding of the sender's key.
fn floor_open(f: &Fixture, ct: &mut [u8]) {
    let shared = f.my_x.diffie_hellman(&f.peer_x);
    black_box(shared.as_bytes());
    let key = UnparsedPublicKey::new(&ED25519, &f.ed_public);
    // The signatures are over fixed messages; verification costs the same either way.
    let verify = |msg: &[u8; 54]| black_box(key.verify(msg, &f.floor_sig).is_ok());
    let mut prev = [0u8; 32];
    verify(&chain(&prev, &[0; 32]));
    let chunks = ct.len().div_ceil(CHUNK + 16);
    let mut i = 0u64;
    for segment in ct.chunks_mut(SEGMENT / CHUNK * (CHUNK + 16)) {
        let mut h = Context::new(&SHA256);
        for c in segment.chunks_mut(CHUNK + 16) {
            h.update(c);
            let pt = f
                .aead
                .open_in_place(nonce(i, i + 1 == chunks as u64), Aad::empty(), c)
                .unwrap();
            black_box(pt);
            i += 1;
        }
        let msg = chain(&prev, h.finish().as_ref());
        prev.copy_from_slice(&msg[22..]);
        verify(&msg);
    }
}

/// The one-shot APIs: [`seal`], or [`seal_parallel`] on every core.
fn one_shot_seal(f: &Fixture, parallel: bool) -> Vec<u8> {
    let seal_fn = if parallel { seal_parallel } else { seal };
    seal_fn(
        &f.toy,
        &f.recipients,
        &SealOptions::default(),
        black_box(&f.content),
        &mut OsRng,
    )
    .unwrap()
}

/// The one-shot APIs: [`open`], or [`open_parallel`] on every core, as the last recipient.
fn one_shot_open(f: &Fixture, parallel: bool) -> Vec<u8> {
    let me = f.phones.last().unwrap();
    let envelope = black_box(&f.envelope[..]);
    let trusted = &f.trusted[..];
    let opened = if parallel {
        open_parallel(me, trusted, envelope, OpenOptions::default())
    } else {
        open(me, trusted, envelope, OpenOptions::default())
    };
    opened.unwrap().0
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

fn bench_case<M: Measurement>(c: &mut Criterion<M>, f: &Fixture, label: &str, n: usize) {
    let len = f.content.len();
    let opts = SealOptions::default();

    let mut g = c.benchmark_group(format!("seal_{label}_{n}r"));
    configure(&mut g, len);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("toyseal", |b| b.iter(|| one_shot_seal(f, false)));
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
    g.bench_function("floor", |b| b.iter(|| floor_seal(f, black_box(&mut buf))));
    let mut out = Vec::with_capacity(len + len / 16 + 4096);
    g.bench_function("age", |b| b.iter(|| age_seal_into(f, &mut out)));
    g.bench_function("age_minisign", |b| {
        b.iter(|| {
            out.clear();
            age_minisign_seal(f, black_box(&f.content), &mut out)
        })
    });
    g.finish();

    let me = &f.phones[n - 1];
    let mut g = c.benchmark_group(format!("open_{label}_{n}r"));
    configure(&mut g, len);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("toyseal", |b| b.iter(|| one_shot_open(f, false)));
    g.bench_function("toyseal_stream", |b| {
        b.iter(|| {
            let mut o = Opener::new(me, &f.trusted, OpenOptions::default());
            for piece in black_box(&f.envelope).chunks(PIECE) {
                sink.clear();
                o.push(piece, &mut sink).unwrap();
                black_box(&sink);
            }
            black_box(o.finish().unwrap());
        })
    });
    g.bench_function("floor", |b| {
        b.iter_batched_ref(|| f.floor_ct.clone(), |ct| floor_open(f, ct), batch(len))
    });
    let mut out = Vec::with_capacity(len + 4096);
    for (line, who) in [("age", 0), ("age_last", n - 1)] {
        if line == "age_last" && n == 1 {
            continue;
        }
        g.bench_function(line, |b| b.iter(|| age_open_into(f, who, &mut out)));
    }
    g.bench_function("age_minisign", |b| {
        b.iter(|| {
            out.clear();
            age_minisign_open(f, black_box(&f.age_ct), &mut out);
        })
    });
    g.finish();
}

/// Every core against age, in wall time (`{seal|open}_{label}_{n}r_wall`).
fn bench_parallel(c: &mut Criterion<WallTime>, f: &Fixture, label: &str, n: usize) {
    let len = f.content.len();
    assert_eq!(
        one_shot_seal(f, true).len(),
        f.envelope.len(),
        "seal_parallel seals the same envelope length"
    );
    assert_eq!(one_shot_open(f, true), f.content, "open_parallel opens it");
    let mut g = c.benchmark_group(format!("seal_{label}_{n}r_wall"));
    configure(&mut g, len);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("toyseal_parallel", |b| b.iter(|| one_shot_seal(f, true)));
    g.bench_function("toyseal", |b| b.iter(|| one_shot_seal(f, false)));
    let mut out = Vec::with_capacity(len + len / 16 + 4096);
    g.bench_function("age", |b| b.iter(|| age_seal_into(f, &mut out)));
    g.finish();

    let mut g = c.benchmark_group(format!("open_{label}_{n}r_wall"));
    configure(&mut g, len);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("toyseal_parallel", |b| b.iter(|| one_shot_open(f, true)));
    g.bench_function("toyseal", |b| b.iter(|| one_shot_open(f, false)));
    let mut out = Vec::with_capacity(len + 4096);
    g.bench_function("age", |b| b.iter(|| age_open_into(f, 0, &mut out)));
    g.finish();
}

fn envelope<M: Measurement>(mut c: Criterion<M>, mut wall: Criterion<WallTime>) {
    for &(label, len, ns) in CASES {
        for &n in ns {
            let f = Fixture::new(len, n);
            bench_case(&mut c, &f, label, n);
            if len >= 64 * MIB {
                bench_parallel(&mut wall, &f, label, n);
            }
        }
    }
    c.final_summary();
    wall.final_summary();
}

fn main() {
    let wall = || Criterion::default().configure_from_args();
    if std::env::var_os("TOYSEAL_BENCH_WALL").is_some() {
        envelope(wall(), wall());
    } else {
        envelope(
            Criterion::default()
                .with_measurement(ThreadCpu(WallTime))
                .configure_from_args(),
            wall(),
        );
    }
}
