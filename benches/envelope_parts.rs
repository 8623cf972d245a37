//! Micro-benchmarks of the pieces an envelope is made of, to explain the ratios in
//! docs/benchmarks.md:
//!
//! - `chunk_64KiB`: per-chunk costs (ring and RustCrypto ChaCha20-Poly1305, ring SHA-256, a
//!   cache-hot `memcpy`);
//! - `pk`: per-message public-key costs (X25519 in x25519-dalek and in ring, Ed25519 in ring,
//!   one HPKE wrap / unwrap of a 16-byte file key, the extra `DeriveKeyPair` toyseal's
//!   derandomized wrap does, the strict decoding of a public identity);
//! - `checkpoint`: what one v2 checkpoint costs beyond the segment's hash (chain hash + sign /
//!   verify);
//! - `prehash_1MiB`: ring SHA-256 against minisign's BLAKE2b-512 prehash (minisign's `sign` /
//!   `verify` over 1 MiB and over nothing: the difference is the prehash);
//! - `copy`: a 1 MiB `memcpy` (one segment, larger than L2) and writing 64 MiB into a fresh
//!   `Vec` (page faults) against a reused one;
//! - `opener_64MiB_3r`: `Opener::push` (content copied into the caller's `Vec`) against
//!   `Opener::push_with` (content handed out from the opener's buffer);
//! - `parallel_64MiB_3r_caller`: `seal_parallel` / `open_parallel` measured in the **calling
//!   thread's** CPU time. rayon runs the parallel parts on its own pool while the caller
//!   sleeps, so this is the sequential part of each call (Amdahl's serial fraction), next to
//!   the one-thread `seal` / `open` in the same measure.
//!
//! Measured in thread CPU time like `benches/envelope.rs`. Run: `cargo bench --bench
//! envelope_parts`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::ThreadCpu;
use criterion::measurement::{Measurement, WallTime};
use criterion::{Criterion, Throughput};
use hpke::{
    Deserializable, Kem as _, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305,
    kdf::HkdfSha256, kem::X25519HkdfSha256,
};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;
use toyseal::core::{DeviceIdentity, OsRng, PublicIdentity, Role};
use toyseal::envelope::{
    OpenOptions, Opener, SealOptions, open, open_parallel, seal, seal_parallel,
};

const CHUNK: usize = 64 * 1024;

fn parts<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("chunk_64KiB");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(CHUNK as u64));
    let mut buf = vec![5u8; CHUNK];
    let ring_key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7; 32]).unwrap());
    g.bench_function("ring_chacha20poly1305_seal", |b| {
        b.iter(|| {
            ring_key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([0; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .unwrap()
        })
    });
    g.bench_function("ring_sha256", |b| {
        b.iter(|| digest(&SHA256, black_box(&buf)))
    });
    {
        use chacha20poly1305::{AeadInOut, KeyInit};
        let rc = chacha20poly1305::ChaCha20Poly1305::new(&[7u8; 32].into());
        g.bench_function("rustcrypto_chacha20poly1305_seal", |b| {
            b.iter(|| {
                rc.encrypt_inout_detached(&[0u8; 12].into(), &[], buf.as_mut_slice().into())
                    .unwrap()
            })
        });
    }
    let src = vec![9u8; CHUNK];
    g.bench_function("memcpy", |b| {
        b.iter(|| buf.copy_from_slice(black_box(&src)))
    });
    g.finish();

    let mut g = c.benchmark_group("pk");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let sk = x25519_dalek::StaticSecret::from([3; 32]);
    let pk = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([4; 32]));
    g.bench_function("dalek_x25519_dh", |b| {
        b.iter(|| black_box(&sk).diffie_hellman(black_box(&pk)))
    });
    g.bench_function("dalek_x25519_basepoint", |b| {
        b.iter(|| x25519_dalek::PublicKey::from(black_box(&sk)))
    });
    let rng = ring::rand::SystemRandom::new();
    let ring_peer =
        ring::agreement::UnparsedPublicKey::new(&ring::agreement::X25519, *pk.as_bytes());
    g.bench_function("ring_x25519_ephemeral_keygen_pub_dh", |b| {
        b.iter(|| {
            let e = ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::X25519, &rng)
                .unwrap();
            let p = e.compute_public_key().unwrap();
            black_box(p.as_ref());
            ring::agreement::agree_ephemeral(e, &ring_peer, |k| black_box(k[0])).unwrap()
        })
    });
    let ed = Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap();
    let msg = [0u8; 54];
    let sig = ed.sign(&msg);
    g.bench_function("ring_ed25519_sign", |b| b.iter(|| ed.sign(black_box(&msg))));
    g.bench_function("ring_ed25519_verify", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ED25519, ed.public_key().as_ref())
                .verify(black_box(&msg), sig.as_ref())
                .unwrap()
        })
    });
    type Kem = X25519HkdfSha256;
    let (hsk, hpk) = Kem::derive_keypair(&[8; 32]);
    let aad = [0u8; 128];
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &hpk,
        b"toyseal/v2/file-key",
        &[1; 16],
        &aad,
        &mut OsRng,
    )
    .unwrap();
    g.bench_function("hpke_wrap_16B (keygen+DH+key schedule+AEAD)", |b| {
        b.iter(|| {
            hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
                &OpModeS::Base,
                &hpk,
                b"toyseal/v2/file-key",
                &[1; 16],
                &aad,
                &mut OsRng,
            )
            .unwrap()
        })
    });
    let enc_bytes = enc.to_bytes();
    g.bench_function("hpke_unwrap_16B (DH+basepoint+key schedule+AEAD)", |b| {
        b.iter(|| {
            let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&hsk.to_bytes()).unwrap();
            let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc_bytes).unwrap();
            hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
                &OpModeR::Base,
                &sk,
                &enc,
                b"toyseal/v2/file-key",
                &ct,
                &aad,
            )
            .unwrap()
        })
    });
    g.bench_function(
        "hpke_derive_keypair (toyseal's extra per-recipient check)",
        |b| b.iter(|| Kem::derive_keypair(black_box(&[8; 32]))),
    );
    let identity = DeviceIdentity::generate(Role::Toy, &mut OsRng)
        .public()
        .to_bytes();
    g.bench_function("strict_public_identity_decode", |b| {
        b.iter(|| PublicIdentity::from_bytes(black_box(&identity)).unwrap())
    });
    g.finish();

    checkpoint(c, &ed, &msg, sig.as_ref());
    prehash(c);
    copy(c);
    whole_messages(c);
}

/// One v2 checkpoint beyond the segment's own hash: the chain hash, then a sign or a verify.
fn checkpoint<M: Measurement>(c: &mut Criterion<M>, ed: &Ed25519KeyPair, msg: &[u8], sig: &[u8]) {
    let mut g = c.benchmark_group("checkpoint");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let chain = |d: &[u8; 32]| {
        let mut h = ring::digest::Context::new(&SHA256);
        h.update(b"toyseal/v2/checkpoint-chain\x00");
        h.update(&[1; 32]);
        h.update(&7u64.to_be_bytes());
        h.update(&[0]);
        h.update(d);
        h.finish()
    };
    g.bench_function("chain_sha256", |b| b.iter(|| chain(black_box(&[2; 32]))));
    g.bench_function("chain_sha256+ring_ed25519_sign", |b| {
        b.iter(|| ed.sign(chain(black_box(&[2; 32])).as_ref()))
    });
    let public = ed.public_key().as_ref().to_vec();
    g.bench_function("chain_sha256+ring_ed25519_verify", |b| {
        b.iter(|| {
            black_box(chain(black_box(&[2; 32])));
            UnparsedPublicKey::new(&ED25519, &public)
                .verify(black_box(msg), sig)
                .unwrap()
        })
    });
    g.finish();
}

/// ring SHA-256 against minisign's BLAKE2b-512 prehash, per MiB.
fn prehash<M: Measurement>(c: &mut Criterion<M>) {
    const LEN: usize = 1 << 20;
    let data = vec![5u8; LEN];
    let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let mut g = c.benchmark_group("prehash_1MiB");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("ring_sha256", |b| {
        b.iter(|| digest(&SHA256, black_box(&data)))
    });
    for (line, input) in [
        ("minisign_sign", &data[..]),
        ("minisign_sign_empty", &[][..]),
    ] {
        g.bench_function(line, |b| {
            b.iter(|| minisign::sign(None, &kp.sk, black_box(input), None, None).unwrap())
        });
    }
    for (line, input) in [
        ("minisign_verify", &data[..]),
        ("minisign_verify_empty", &[][..]),
    ] {
        let sig = minisign::sign(None, &kp.sk, input, None, None).unwrap();
        g.bench_function(line, |b| {
            b.iter(|| {
                minisign::verify(
                    &kp.pk,
                    &sig,
                    Cursor::new(black_box(input)),
                    true,
                    false,
                    false,
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

/// What copies and fresh buffers cost at the sizes the envelope uses.
fn copy<M: Measurement>(c: &mut Criterion<M>) {
    const SEGMENT: usize = 1 << 20;
    const BIG: usize = 64 << 20;
    let mut g = c.benchmark_group("copy");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let src = vec![9u8; BIG];
    let mut dst = vec![0u8; SEGMENT];
    g.throughput(Throughput::Bytes(SEGMENT as u64));
    g.bench_function("memcpy_1MiB", |b| {
        b.iter(|| dst.copy_from_slice(black_box(&src[..SEGMENT])))
    });
    g.throughput(Throughput::Bytes(BIG as u64));
    g.sample_size(10);
    g.bench_function("write_64MiB_fresh_vec", |b| {
        b.iter(|| {
            let mut v = Vec::with_capacity(BIG);
            v.extend_from_slice(black_box(&src));
            v
        })
    });
    let mut reused = Vec::with_capacity(BIG);
    g.bench_function("write_64MiB_reused_vec", |b| {
        b.iter(|| {
            reused.clear();
            reused.extend_from_slice(black_box(&src));
        })
    });
    g.finish();
}

/// Opener APIs, and the sequential part of the parallel functions, on 64 MiB → 3.
fn whole_messages<M: Measurement>(c: &mut Criterion<M>) {
    const LEN: usize = 64 << 20;
    let toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let phones: Vec<_> = (0..3)
        .map(|_| DeviceIdentity::generate(Role::Guardian, &mut OsRng))
        .collect();
    let recipients: Vec<_> = phones.iter().map(|p| p.public().clone()).collect();
    let trusted = [toy.public().clone()];
    let content: Vec<u8> = (0..LEN).map(|i| (i.wrapping_mul(31) % 251) as u8).collect();
    let opts = SealOptions::default();
    let envelope = seal(&toy, &recipients, &opts, &content, &mut OsRng).unwrap();
    let me = &phones[2];

    let mut g = c.benchmark_group("opener_64MiB_3r");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(LEN as u64));
    let mut sink = Vec::with_capacity(4 << 20);
    g.bench_function("push", |b| {
        b.iter(|| {
            let mut o = Opener::new(me, &trusted[..], OpenOptions::default());
            for piece in black_box(&envelope).chunks(64 << 10) {
                sink.clear();
                o.push(piece, &mut sink).unwrap();
                black_box(&sink);
            }
            o.finish().unwrap()
        })
    });
    g.bench_function("push_with", |b| {
        b.iter(|| {
            let mut o = Opener::new(me, &trusted[..], OpenOptions::default());
            for piece in black_box(&envelope).chunks(64 << 10) {
                o.push_with(piece, |content| {
                    black_box(content);
                })
                .unwrap();
            }
            o.finish().unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("parallel_64MiB_3r_caller");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("seal", |b| {
        b.iter(|| seal(&toy, &recipients, &opts, black_box(&content), &mut OsRng).unwrap())
    });
    g.bench_function("seal_parallel", |b| {
        b.iter(|| seal_parallel(&toy, &recipients, &opts, black_box(&content), &mut OsRng).unwrap())
    });
    g.bench_function("open", |b| {
        b.iter(|| {
            open(
                me,
                &trusted[..],
                black_box(&envelope),
                OpenOptions::default(),
            )
            .unwrap()
        })
    });
    g.bench_function("open_parallel", |b| {
        b.iter(|| {
            open_parallel(
                me,
                &trusted[..],
                black_box(&envelope),
                OpenOptions::default(),
            )
            .unwrap()
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .with_measurement(ThreadCpu(WallTime))
        .configure_from_args();
    parts(&mut c);
    c.final_summary();
}
