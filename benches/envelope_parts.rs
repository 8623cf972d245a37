//! Micro-benchmarks of the pieces an envelope is made of, to explain the ratios in
//! docs/benchmarks.md: per-64-KiB-chunk costs (ring and RustCrypto ChaCha20-Poly1305, ring
//! SHA-256, a `memcpy`) and per-message public-key costs (X25519 in x25519-dalek and in ring,
//! Ed25519 in ring, and one HPKE wrap / unwrap of a 16-byte file key as toyseal does it).
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
use std::time::Duration;
use toyseal::core::OsRng;

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
    let msg = [0u8; 62];
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
        b"toyseal/v1/file-key",
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
                b"toyseal/v1/file-key",
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
                b"toyseal/v1/file-key",
                &ct,
                &aad,
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
