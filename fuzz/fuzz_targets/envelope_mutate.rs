//! "Any change is detected": seal fuzzer content to 1..=4 recipients with a seeded generator,
//! apply a list of byte-level edits (bit flips, truncation, deleted / duplicated / swapped
//! ranges, appended bytes), then open and verify. If the bytes changed, both must fail; if the
//! edits cancelled out, opening must give back exactly the content and metadata sealed. Whatever
//! a streaming opener releases before it fails must be a prefix of the sealed content (v2:
//! nothing is released that the sender did not sign).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use toyseal_core::FamilyId;
use toyseal_envelope::{Error, Metadata, OpenOptions, Opener, SealOptions, open, seal, verify};
use toyseal_fuzz::{FAMILY, Mutation, clip, rng};

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    /// 10 + this % 3: 1 KiB ..= 4 KiB chunks, so small inputs still span several chunks.
    chunk_size_log2: u8,
    /// Segment = chunk size × 2^(this % 3): checkpoints every 1, 2 or 4 chunks.
    segment_extra_log2: u8,
    sequence: u64,
    /// 1 + this % 4 recipients.
    recipients: u8,
    /// Which recipient opens.
    me: u8,
    content_type: Option<String>,
    codec: Option<String>,
    duration_ms: Option<u32>,
    family: Option<([u8; 16], u64)>,
    /// The content is repeated 1 + this % 4 times, to reach more chunks.
    repeat: u8,
    mutations: Vec<Mutation>,
    content: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let fam = &*FAMILY;
    let n = 1 + usize::from(input.recipients % 4);
    let recipients = fam.recipients(n);
    let me = &fam.phones[usize::from(input.me) % n];

    let mut metadata = Metadata::default();
    // Empty text is refused by the sealer (absent is the one spelling of "none").
    if let Some(t) = input
        .content_type
        .map(|t| clip(t, 64))
        .filter(|t| !t.is_empty())
    {
        metadata = metadata.with_content_type(t);
    }
    if let Some(c) = input.codec.map(|c| clip(c, 64)).filter(|c| !c.is_empty()) {
        metadata = metadata.with_codec(c);
    }
    if let Some(d) = input.duration_ms {
        metadata = metadata.with_duration_ms(d);
    }
    let chunk_log2 = 10 + input.chunk_size_log2 % 3;
    let mut options = SealOptions::default()
        .with_metadata(metadata.clone())
        .with_chunk_size_log2(chunk_log2)
        .expect("10..=12 is a valid chunk size")
        .with_segment_size_log2(chunk_log2 + input.segment_extra_log2 % 3)
        .expect("10..=14 is a valid segment size")
        .with_sequence(input.sequence);
    // The all-zero family id means "no family" and is refused as a family.
    let family = input.family.filter(|(id, _)| *id != [0; 16]);
    if let Some((id, version)) = family {
        options = options.with_family(FamilyId::from_bytes(id), version);
    }
    let content = input.content.repeat(1 + usize::from(input.repeat % 4));

    let original = seal(
        &fam.toy,
        &recipients,
        &options,
        &content,
        &mut rng(input.seed),
    )
    .expect("sealing valid input must succeed");
    let mut mutated = original.clone();
    for m in &input.mutations {
        m.apply(&mut mutated);
    }

    let opened = open(me, &fam.trusted, &mutated, OpenOptions::default());
    let mut released = Vec::new();
    let mut opener = Opener::new(me, &fam.trusted, OpenOptions::default());
    let streamed = opener.push(&mutated, &mut released);
    assert!(
        content.starts_with(&released),
        "released bytes the sender did not seal: {:?}",
        input.mutations
    );
    if streamed.is_err() || opener.finish().is_err() {
        assert!(opened.is_err(), "one-shot opened what streaming refused");
    }
    let verified = verify(&mutated, OpenOptions::default());
    if mutated != original {
        assert!(
            opened.is_err(),
            "a changed envelope opened: {:?}",
            input.mutations
        );
        assert!(
            verified.is_err(),
            "a changed envelope verified: {:?}",
            input.mutations
        );
    } else {
        let (out, opened) = opened.expect("the unchanged envelope must open");
        assert_eq!(out, content);
        assert_eq!(opened.content_len, content.len() as u64);
        assert_eq!(opened.metadata, metadata);
        assert_eq!(&opened.sender, fam.toy.public());
        assert_eq!(
            opened.family,
            family.map(|(id, _)| FamilyId::from_bytes(id))
        );
        assert_eq!(opened.roster_version, family.map_or(0, |(_, v)| v));
        assert_eq!(opened.sequence, input.sequence);
        verified.expect("the unchanged envelope must verify");
        // Only recipients can open it.
        assert!(matches!(
            open(
                &fam.stranger,
                &fam.trusted,
                &mutated,
                OpenOptions::default()
            ),
            Err(Error::NotARecipient)
        ));
    }
});
