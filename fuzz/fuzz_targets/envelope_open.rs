//! Raw bytes as an envelope: `inspect`, `verify` (one-shot and streaming) and `Opener` (fed in
//! pieces whose sizes come from the input) for a fixed synthetic recipient trusting a fixed
//! sender. Nothing may panic; the streaming and one-shot paths must agree; a successful open
//! implies valid checkpoints and reports exactly the content it released; content is released
//! only by an opener whose header checkpoint verified under the trusted sender.
//!
//! Input layout: see `toyseal_fuzz::split_control`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::mem::discriminant;
use toyseal_envelope::{Error, OpenOptions, Opener, Verifier, inspect, open, verify};
use toyseal_fuzz::{FAMILY, Pieces, split_control};

fuzz_target!(|data: &[u8]| {
    let (sizes, envelope) = split_control(data);
    let fam = &*FAMILY;
    let me = &fam.phones[0];
    let options = OpenOptions::default();

    // The public header and the sender check: one-shot and streaming must agree.
    let inspected = inspect(envelope);
    let verified = verify(envelope, options);
    let mut verifier = Verifier::new(options);
    let streamed_verify = Pieces::new(envelope, &sizes)
        .try_for_each(|piece| verifier.push(piece))
        .and_then(|()| verifier.finish());
    same_outcome(&verified, &streamed_verify);
    if let Ok(header) = &verified {
        assert_eq!(inspected.as_ref().ok(), Some(header.header()));
        assert_eq!(streamed_verify.as_ref().ok(), Some(header));
    }

    // Opening, streaming in the input's pieces.
    let mut content = Vec::new();
    let mut opener = Opener::new(me, &fam.trusted, options);
    let streamed = Pieces::new(envelope, &sizes)
        .try_for_each(|piece| opener.push(piece, &mut content))
        .and_then(|()| opener.finish());
    if !content.is_empty() {
        // Nothing is released before the header's checkpoint proved the trusted sender.
        let header = inspected
            .as_ref()
            .expect("content released from an unparsable header");
        assert_eq!(header.sender(), fam.toy.public());
    }
    let one_shot = open(me, &fam.trusted, envelope, options);
    same_outcome(&streamed, &one_shot);
    if let Ok(opened) = streamed {
        assert_eq!(opened.content_len, content.len() as u64);
        assert_eq!(&opened.sender, fam.toy.public());
        assert!(
            verified.is_ok(),
            "opened but the sender signature does not verify"
        );
        let Ok((one_shot_content, one_shot_opened)) = one_shot else {
            unreachable!("checked by same_outcome")
        };
        assert_eq!(one_shot_content, content);
        assert_eq!(one_shot_opened, opened);
    }
});

/// Streaming and one-shot must succeed together, or fail with the same kind of error.
fn same_outcome<A, B>(a: &Result<A, Error>, b: &Result<B, Error>) {
    match (a, b) {
        (Ok(_), Ok(_)) => {}
        (Err(x), Err(y)) => assert_eq!(discriminant(x), discriminant(y), "{x:?} vs {y:?}"),
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => panic!("one path failed, the other did not: {e:?}"),
    }
}
