//! Round trips: one-shot and streaming, any size, any piecing, 1..=4 recipients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::*;
use proptest::prelude::*;
use toyseal_envelope::*;

#[test]
fn seal_open_round_trip_to_each_recipient() {
    let fam = Family::new(3);
    let content = recording(200_000);
    let meta = Metadata::default()
        .with_content_type("audio/wav")
        .with_codec("pcm_s16le")
        .with_duration_ms(6250);
    let opts = SealOptions::default().with_metadata(meta.clone());
    let env = seal(&fam.toy, &fam.recipients(), &opts, &content, &mut rng(1)).unwrap();
    for phone in &fam.phones {
        let (out, opened) = open(phone, &fam.toy_public(), &env, OpenOptions::default()).unwrap();
        assert_eq!(out, content);
        assert_eq!(opened.metadata, meta);
        assert_eq!(&opened.sender, fam.toy.public());
        assert_eq!(opened.content_len, content.len() as u64);
    }
    let header = verify(&env, OpenOptions::default()).unwrap();
    assert_eq!(header.sender(), fam.toy.public());
}

fn seal_streaming(fam: &Family, content: &[u8], piece: usize, opts: &SealOptions) -> Vec<u8> {
    let recips = fam.recipients();
    let mut s = Sealer::new(&fam.toy, &recips, opts, &mut rng(2)).unwrap();
    let mut out = Vec::new();
    for c in content.chunks(piece.max(1)) {
        s.update(c, &mut out).unwrap();
    }
    s.finish(&mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_size_any_piecing_round_trips(
        len in prop_oneof![0usize..3000, Just(1021), Just(1022), Just(1023), Just(1024), Just(2045), Just(2046), Just(2047)],
        piece in 1usize..5000,
        recipients in 1usize..=4,
        read_piece in 1usize..5000,
    ) {
        let fam = Family::new(recipients);
        let opts = SealOptions::default().with_chunk_size_log2(10).unwrap();
        let content = recording(len);
        let env = seal_streaming(&fam, &content, piece, &opts);
        let trusted = fam.toy_public();
        for phone in &fam.phones {
            let mut o = Opener::new(phone, &trusted, OpenOptions::default());
            let mut out = Vec::new();
            for c in env.chunks(read_piece) { o.push(c, &mut out).unwrap(); }
            let opened = o.finish().unwrap();
            prop_assert_eq!(&out, &content);
            prop_assert_eq!(opened.content_len, len as u64);
        }
    }
}

#[test]
fn open_reader_never_reports_end_of_file_after_an_error() {
    use std::io::Read;
    let fam = Family::new(1);
    let env = seal(
        &fam.toy,
        &fam.recipients(),
        &SealOptions::default(),
        &recording(10_000),
        &mut rng(4),
    )
    .unwrap();
    let truncated = &env[..env.len() - 10];
    let trusted = fam.toy_public();
    let mut r = OpenReader::new(truncated, &fam.phones[0], &trusted, OpenOptions::default());
    let mut buf = vec![0u8; 100_000];
    let mut saw_error = false;
    for _ in 0..10 {
        match r.read(&mut buf) {
            Ok(0) => panic!("end of file reported for a truncated envelope"),
            Ok(_) => {}
            Err(_) => saw_error = true,
        }
        if saw_error {
            // Reading again must keep failing.
            assert!(r.read(&mut buf).is_err());
            assert!(r.read(&mut buf).is_err());
            break;
        }
    }
    assert!(saw_error);
    assert!(r.opened().is_none());
}

#[test]
fn finishing_in_steps_writes_at_most_one_chunk_per_step() {
    // 3 MiB at 1 KiB chunks: Padmé adds tens of KiB of padding, i.e. many PAD chunks.
    let fam = Family::new(1);
    let opts = SealOptions::default().with_chunk_size_log2(10).unwrap();
    let recips = fam.recipients();
    let mut s = Sealer::new(&fam.toy, &recips, &opts, &mut rng(8)).unwrap();
    let mut env = Vec::new();
    let content = recording(3 << 20);
    let mut out = Vec::new();
    s.update(&content, &mut out).unwrap();
    env.append(&mut out);
    let mut f = s.finish_in_steps(&mut out).unwrap();
    env.append(&mut out);
    let mut steps = 0;
    loop {
        let p = f.step(&mut out).unwrap();
        // One chunk record (4-byte record header, chunk, tag), and the checkpoint record (65
        // bytes) when that chunk ends a segment.
        assert!(
            out.len() <= 4 + 1024 + 16 + 65,
            "a step wrote {} bytes",
            out.len()
        );
        env.append(&mut out);
        steps += 1;
        if p == Progress::Complete {
            break;
        }
    }
    assert!(
        steps > 10,
        "expected many padding chunks, got {steps} steps"
    );
    let (opened, _) = open(
        &fam.phones[0],
        &fam.toy_public(),
        &env,
        OpenOptions::default(),
    )
    .unwrap();
    assert_eq!(opened, content);
}

#[test]
fn open_reader_serves_proved_content_before_the_error() {
    use std::io::Read;
    // One byte after the final checkpoint: everything was proved by the sender's checkpoints and
    // is served, then the error (never end of file).
    let fam = Family::new(1);
    let content = recording(5000);
    let opts = SealOptions::default()
        .with_chunk_size_log2(10)
        .unwrap()
        .with_segment_size_log2(11)
        .unwrap();
    let mut env = seal(&fam.toy, &fam.recipients(), &opts, &content, &mut rng(4)).unwrap();
    env.push(0);
    let trusted = fam.toy_public();
    let mut r = OpenReader::new(&env[..], &fam.phones[0], &trusted, OpenOptions::default());
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let err = loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("end of file after trailing data"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(got, content);
    assert!(r.read(&mut buf).is_err());
}

/// Sealer and opener own the identities they use (an `Arc`): both outlive the caller's handle,
/// and the owning sealer writes exactly the bytes the borrowing one does.
#[test]
fn sealer_and_opener_outlive_the_callers_arc() {
    use std::sync::{Arc, Weak};
    let fam = Family::new(2);
    let content = recording(150_000);
    let opts = SealOptions::default().with_chunk_size_log2(12).unwrap();
    let borrowed = seal_streaming(&fam, &content, 4096, &opts);

    // The same identities again (Family::new is deterministic), now shared as `Arc`s.
    let Family { toy, mut phones } = Family::new(2);
    let toy = Arc::new(toy);
    let phone = Arc::new(phones.remove(0));
    let toy_weak: Weak<_> = Arc::downgrade(&toy);
    let mut sealer: Sealer = Sealer::new(toy, &fam.recipients(), &opts, &mut rng(2)).unwrap();
    // The caller's `Arc` is gone (moved in); only the sealer keeps the identity alive.
    assert_eq!(toy_weak.strong_count(), 1);
    let mut owned = Vec::new();
    for c in content.chunks(4096) {
        sealer.update(c, &mut owned).unwrap();
    }
    sealer.finish(&mut owned).unwrap();
    assert_eq!(
        toy_weak.strong_count(),
        0,
        "the sealer released the identity"
    );
    assert!(owned == borrowed, "an owning sealer wrote other bytes");

    let phone_weak = Arc::downgrade(&phone);
    let mut opener: Opener = Opener::new(phone, fam.toy_public(), OpenOptions::default())
        .check_recipients(&fam.recipients());
    assert_eq!(phone_weak.strong_count(), 1);
    let mut out = Vec::new();
    for c in owned.chunks(1000) {
        opener.push(c, &mut out).unwrap();
    }
    let opened = opener.finish().unwrap();
    assert_eq!(phone_weak.strong_count(), 0);
    assert!(out == content);
    assert_eq!(&opened.sender, fam.toy.public());
}

/// `require_family`: the header's family must be the one required; refused before any content.
#[test]
fn an_opener_that_requires_a_family_refuses_another_or_none() {
    use toyseal_core::FamilyId;
    let fam = Family::new(1);
    let ours = FamilyId::generate(&mut rng(5));
    let theirs = FamilyId::generate(&mut rng(6));
    let content = recording(5000);
    let seal_for = |family: Option<FamilyId>| {
        let opts = match family {
            Some(f) => SealOptions::default().with_family(f, 3),
            None => SealOptions::default(),
        };
        seal(&fam.toy, &fam.recipients(), &opts, &content, &mut rng(7)).unwrap()
    };
    for (family, ok) in [(Some(ours), true), (Some(theirs), false), (None, false)] {
        let env = seal_for(family);
        let mut opener = Opener::new(&fam.phones[0], fam.toy_public(), OpenOptions::default())
            .require_family(ours);
        let mut out = Vec::new();
        let r = opener.push(&env, &mut out);
        if ok {
            r.unwrap();
            assert_eq!(opener.finish().unwrap().family, Some(ours));
            assert!(out == content);
        } else {
            assert!(matches!(r, Err(Error::WrongFamily)), "{family:?}: {r:?}");
            assert!(out.is_empty(), "content released for another family");
        }
    }
}
