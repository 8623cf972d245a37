//! Streaming equivalence. Seal fuzzer content one-shot and with `Sealer::update` in
//! fuzzer-chosen pieces (same seeded generator): the bytes must be identical. Then open with
//! `Opener::push` and verify with `Verifier::push` in other fuzzer-chosen pieces, empty pushes
//! included: both must succeed, with exactly the sealed content. A third seal checkpoints early
//! (`Sealer::checkpoint`, as a live recorder does on a timer) after fuzzer-chosen pieces: it must
//! open to the same content, and the opener must have released each piece by the checkpoint
//! that followed it.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use toyseal_envelope::{OpenOptions, Opener, SealOptions, Sealer, Verifier, seal};
use toyseal_fuzz::{FAMILY, Pieces, rng};

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    /// 10 + this % 3.
    chunk_size_log2: u8,
    /// 1 + this % 4 recipients; phone 0 opens.
    recipients: u8,
    /// The content is repeated 1 + this % 8 times.
    repeat: u8,
    seal_pieces: Vec<u16>,
    /// Checkpoint after piece i when bit (i % 64) is set.
    checkpoint_mask: u64,
    open_pieces: Vec<u16>,
    content: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let fam = &*FAMILY;
    let recipients = fam.recipients(1 + usize::from(input.recipients % 4));
    let me = &fam.phones[0];
    let options = SealOptions::default()
        .with_chunk_size_log2(10 + input.chunk_size_log2 % 3)
        .expect("10..=12 is a valid chunk size");
    let content = input.content.repeat(1 + usize::from(input.repeat % 8));

    let envelope = seal(
        &fam.toy,
        &recipients,
        &options,
        &content,
        &mut rng(input.seed),
    )
    .expect("sealing valid input must succeed");

    // Streaming seal, same randomness: byte-identical output whatever the piecing.
    let seal_sizes: Vec<usize> = input.seal_pieces.iter().map(|&s| usize::from(s)).collect();
    let mut sealer =
        Sealer::new(&fam.toy, &recipients, &options, &mut rng(input.seed)).expect("sealer");
    let mut streamed = Vec::new();
    sealer.update(&[], &mut streamed).expect("empty update");
    for piece in Pieces::new(&content, &seal_sizes) {
        sealer.update(piece, &mut streamed).expect("update");
    }
    sealer.finish(&mut streamed).expect("finish");
    assert!(
        streamed == envelope,
        "streaming seal differs from one-shot seal"
    );

    // Streaming open and verify in the fuzzer's pieces, with empty pushes in between.
    let open_sizes: Vec<usize> = input.open_pieces.iter().map(|&s| usize::from(s)).collect();
    let mut opener = Opener::new(me, &fam.trusted, OpenOptions::default());
    let mut verifier = Verifier::new(OpenOptions::default());
    let mut out = Vec::new();
    opener
        .push(&[], &mut out)
        .expect("empty push before the header");
    for piece in Pieces::new(&envelope, &open_sizes) {
        opener
            .push(piece, &mut out)
            .expect("push of a valid envelope");
        verifier
            .push(piece)
            .expect("verifier push of a valid envelope");
    }
    opener.push(&[], &mut out).expect("empty push at the end");
    let opened = opener.finish().expect("a valid envelope must open");
    assert!(out == content, "streamed content differs");
    assert_eq!(opened.content_len, content.len() as u64);
    assert_eq!(&opened.sender, fam.toy.public());
    let header = verifier.finish().expect("a valid envelope must verify");
    assert_eq!(header.sender(), fam.toy.public());

    // Live sealing with early checkpoints, opened as it is produced.
    let mut sealer =
        Sealer::new(&fam.toy, &recipients, &options, &mut rng(input.seed)).expect("sealer");
    let mut opener = Opener::new(me, &fam.trusted, OpenOptions::default());
    let (mut wire, mut released, mut sealed_so_far) = (Vec::new(), Vec::new(), 0usize);
    for (i, piece) in Pieces::new(&content, &seal_sizes).enumerate() {
        sealer.update(piece, &mut wire).expect("update");
        sealed_so_far += piece.len();
        if input.checkpoint_mask & (1 << (i % 64)) != 0 {
            sealer.checkpoint(&mut wire).expect("checkpoint");
            opener.push(&wire, &mut released).expect("push");
            wire.clear();
            // Everything sealed so far (after the prelude) is out, and nothing else.
            assert!(
                released == content[..sealed_so_far],
                "checkpoint did not release"
            );
        }
    }
    sealer.finish(&mut wire).expect("finish");
    opener.push(&wire, &mut released).expect("push");
    opener.finish().expect("a checkpointed envelope must open");
    assert!(released == content, "checkpointed content differs");
});
