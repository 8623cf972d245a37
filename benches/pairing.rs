//! Pairing and reconnect CPU cost, side by side with the floor of their group operations
//! (docs/benchmarks.md). Run: `cargo bench --bench pairing`.
//!
//! - **pairing** (both sides, one run: PAIR_REQUEST → PAIR_DONE) vs its floor: per side one
//!   fixed-base and three variable-base Edwards25519 scalar multiplications (SPAKE2: x·B,
//!   w·M or w·N, w·N or w·M, x·(Y − w·N)), one Ed25519 signature and one verification.
//! - **reconnect** (Noise KK, both sides) vs its floor: per side one X25519 fixed-base
//!   multiplication (ephemeral) and four X25519 Diffie-Hellman operations (es, ss, ee, se).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use curve25519_dalek::{constants::ED25519_BASEPOINT_POINT, scalar::Scalar};
use std::hint::black_box;
use std::sync::Arc;
use toyseal::core::{DeviceIdentity, OsRng, Role};
use toyseal::pairing::{
    Initiator, MemoryFailureStore, PairingCode, PairingExpectations, PhonePairing, PhoneStep,
    SessionConfig, Timestamp, Toy,
};

fn toy(
    identity: DeviceIdentity,
    code: &PairingCode,
    founder: Option<toyseal::core::PublicIdentity>,
) -> Toy<MemoryFailureStore> {
    let b = Toy::builder(
        Arc::new(identity),
        code.clone(),
        MemoryFailureStore::default(),
    );
    match founder {
        Some(f) => b.founder(f),
        None => b,
    }
    .build()
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let now = Timestamp::from_millis(0);
    let code = PairingCode::parse("48213957").unwrap();
    let phone = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let mut g = c.benchmark_group("pairing");
    g.bench_function("toyseal pairing (both sides)", |b| {
        // The same phone each time: the toy admits its founder again until roster v1 exists.
        let mut t = toy(DeviceIdentity::generate(Role::Toy, &mut OsRng), &code, None);
        b.iter(|| {
            t.press_pair_button(now).unwrap();
            let (mut p, mut frame) =
                PhonePairing::start(&code, PairingExpectations::default(), &mut OsRng).unwrap();
            loop {
                let reply = t.handle(&frame, now, &mut OsRng).replies.remove(0);
                match p.handle(&phone, &reply).unwrap() {
                    PhoneStep::Send(next) => frame = next,
                    PhoneStep::Paired(toy) => break black_box(toy),
                    _ => unreachable!(),
                }
            }
        })
    });
    g.bench_function("floor (group operations, both sides)", |b| {
        let mut wide = [0u8; 64];
        wide[0] = 7;
        let s = Scalar::from_bytes_mod_order_wide(&wide);
        let p = ED25519_BASEPOINT_POINT * s;
        let signer = DeviceIdentity::generate(Role::Toy, &mut OsRng);
        let msg = [0u8; 62];
        let sig = signer.sign(&msg);
        b.iter(|| {
            for _ in 0..2 {
                black_box(ED25519_BASEPOINT_POINT * black_box(s));
                for _ in 0..3 {
                    black_box(black_box(p) * black_box(s));
                }
                black_box(signer.sign(&msg));
                signer.public().verify(&msg, &sig).unwrap();
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("reconnect");
    let toy_id = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let toy_public = toy_id.public().clone();
    let mut t = toy(toy_id, &code, Some(phone.public().clone()));
    g.bench_function("toyseal Noise KK reconnect (both sides)", |b| {
        b.iter(|| {
            let (init, hello) =
                Initiator::start(&phone, &toy_public, SessionConfig::default(), &mut OsRng)
                    .unwrap();
            let reply = t.handle(&hello, now, &mut OsRng).replies.remove(0);
            black_box(init.finish(&reply, now).unwrap());
            // A live session ignores new handshakes (T32): end it, as a disconnect would.
            t.close_session();
        })
    });
    g.bench_function("floor (X25519 operations, both sides)", |b| {
        let secret = x25519_dalek::StaticSecret::from([9u8; 32]);
        let public = x25519_dalek::PublicKey::from(&secret);
        b.iter(|| {
            for _ in 0..2 {
                black_box(x25519_dalek::PublicKey::from(black_box(&secret)));
                for _ in 0..4 {
                    black_box(black_box(&secret).diffie_hellman(black_box(&public)));
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
