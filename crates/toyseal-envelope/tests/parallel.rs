//! The `parallel` feature: `seal_parallel` is byte-identical to `seal` for the same randomness,
//! and `open_parallel` gives exactly what `open` gives — the content and proof, or the same
//! error — on valid, tampered and truncated envelopes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use std::mem::discriminant;
use toyseal_envelope::*;

fn options(chunk: u8, segment: u8) -> SealOptions {
    SealOptions::default()
        .with_chunk_size_log2(chunk)
        .unwrap()
        .with_segment_size_log2(segment)
        .unwrap()
        .with_sequence(5)
        .with_metadata(Metadata::default().with_codec("opus"))
}

#[test]
fn parallel_seal_is_byte_identical_and_parallel_open_agrees() {
    let fam = Family::new(3);
    let trusted = fam.toy_public();
    let mut cases = 0;
    for (chunk, segment) in [(10u8, 10u8), (10, 11), (10, 13), (12, 14), (16, 20)] {
        let c = 1usize << chunk;
        let s = 1usize << segment;
        for len in [
            0,
            1,
            c - 3,
            c - 2,
            c - 1,
            c,
            2 * c,
            s - 5,
            s,
            3 * s + 7,
            5 * s - 1,
            300_000,
        ] {
            let content = recording(len);
            let opts = options(chunk, segment);
            let a = seal(&fam.toy, &fam.recipients(), &opts, &content, &mut rng(9)).unwrap();
            let b =
                seal_parallel(&fam.toy, &fam.recipients(), &opts, &content, &mut rng(9)).unwrap();
            assert!(a == b, "chunk 2^{chunk}, segment 2^{segment}, {len} bytes");
            let (got, opened) =
                open_parallel(&fam.phones[1], &trusted, &a, OpenOptions::default()).unwrap();
            let (want, want_opened) =
                open(&fam.phones[1], &trusted, &a, OpenOptions::default()).unwrap();
            assert!(got == want && got == content);
            assert_eq!(opened, want_opened);
            cases += 1;
        }
    }
    assert_eq!(cases, 60);
}

#[test]
fn parallel_open_fails_exactly_as_the_sequential_opener() {
    let fam = Family::new(2);
    let trusted = fam.toy_public();
    let content = recording(20_000);
    let env = seal(
        &fam.toy,
        &fam.recipients(),
        &options(10, 11),
        &content,
        &mut rng(3),
    )
    .unwrap();
    let mut tried = 0;
    for i in (0..env.len()).step_by(37) {
        let mut e = env.clone();
        e[i] ^= 0x10;
        let p = open_parallel(&fam.phones[0], &trusted, &e, OpenOptions::default());
        let q = open(&fam.phones[0], &trusted, &e, OpenOptions::default());
        match (p, q) {
            (Err(x), Err(y)) => assert_eq!(discriminant(&x), discriminant(&y), "byte {i}"),
            (p, q) => panic!("byte {i}: {:?} vs {:?}", p.map(|_| ()), q.map(|_| ())),
        }
        tried += 1;
    }
    for cut in [0, 100, env.len() / 2, env.len() - 1] {
        let p = open_parallel(
            &fam.phones[0],
            &trusted,
            &env[..cut],
            OpenOptions::default(),
        );
        assert!(
            matches!(p, Err(Error::Truncated | Error::BadMagic)),
            "{cut}"
        );
        tried += 1;
    }
    let mut longer = env.clone();
    longer.push(0);
    assert!(open_parallel(&fam.phones[0], &trusted, &longer, OpenOptions::default()).is_err());
    assert!(matches!(
        open_parallel(&fam.phones[0], &[], &env, OpenOptions::default()),
        Err(Error::UntrustedSender)
    ));
    assert!(tried > 500);
}
