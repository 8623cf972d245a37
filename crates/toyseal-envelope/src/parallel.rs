//! Sealing and opening whole messages on every core (feature `parallel`, rayon).
//!
//! The format allows it because each segment (the chunks between two checkpoints) is hashed on
//! its own and only the 32-byte segment digests are chained (docs/spec/envelope.md §3.6): the
//! chunks of every segment are encrypted or decrypted, and every segment hashed, in parallel;
//! only the cheap chain runs in order. A toy still seals in one pass with [`crate::Sealer`];
//! these functions are for phones, servers and the CLI working on files.
//!
//! [`seal_parallel`] gives byte for byte what [`crate::seal`] gives for the same randomness.
//! [`open_parallel`] gives exactly what [`crate::open`] gives: any envelope it cannot prove in
//! parallel (malformed, forged, truncated) is handed to the sequential opener, so the error is
//! the same one the streaming API reports.

use crate::format::{
    CHECKPOINT_RECORD_LEN, CHUNK_RECORD_HEADER_LEN, KIND_DATA, RECORD_CHECKPOINT, RECORD_CHUNK,
    RECORD_FINAL, RECORD_LAST_CHUNK, SIGNATURE_LEN, TAG_LEN, chain_value, checkpoint_message,
};
use crate::open::Content;
use crate::seal::sealed_len_hint;
use crate::{Error, OpenOptions, Opened, Opener, SealOptions, Sealer, TrustedSenders};
use rayon::prelude::*;
use ring::digest::{Context, SHA256};
use std::borrow::Borrow;
use toyseal_core::{CryptoRng, DeviceIdentity, PublicIdentity, Signature};

/// [`crate::seal`] on every core: the same bytes for the same randomness.
pub fn seal_parallel(
    sender: &DeviceIdentity,
    recipients: &[PublicIdentity],
    options: &SealOptions,
    content: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, Error> {
    let mut sealer = Sealer::new(sender, recipients, options, rng)?;
    let mut out = Vec::with_capacity(sealed_len_hint(content.len(), recipients.len()));
    let c = sealer.chunk_size;
    let body = c - 1;
    let s = sealer.segment_chunks;
    // 1. In order, up to a segment boundary with nothing buffered (the prelude's last bytes
    //    share a chunk with the content).
    let buffered = sealer.buf.len();
    let mut chunks = u64::from(buffered > 0);
    while (sealer.chunks_in_segment + chunks) % s != 0 {
        chunks += 1;
    }
    let head = usize::try_from(chunks)
        .ok()
        .and_then(|n| n.checked_mul(body))
        .map_or(usize::MAX, |b| b - buffered)
        .min(content.len());
    let (first, rest) = content.split_at(head);
    sealer.update(first, &mut out)?;
    // 2. Whole segments of full DATA chunks, in parallel.
    let seg_content = usize::try_from(s).map_err(|_| Error::Internal("segment size"))? * body;
    let segments = if sealer.buf.is_empty() && sealer.chunks_in_segment == 0 {
        rest.len() / seg_content
    } else {
        0
    };
    let (bulk, tail) = rest.split_at(segments * seg_content);
    if segments > 0 {
        seal_segments(&mut sealer, bulk, &mut out)?;
    }
    // 3. The rest in order: the last partial segment, END, padding, the final checkpoint.
    sealer.update(tail, &mut out)?;
    sealer.finish(&mut out)?;
    Ok(out)
}

/// Appends whole segments of full DATA chunks for `bulk` (a multiple of a segment's content)
/// and their checkpoints, and advances the sealer as if it had sealed them itself.
fn seal_segments<I: Borrow<DeviceIdentity>>(
    sealer: &mut Sealer<I>,
    bulk: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let c = sealer.chunk_size;
    let body = c - 1;
    let s = usize::try_from(sealer.segment_chunks).map_err(|_| Error::Internal("segment"))?;
    let record = CHUNK_RECORD_HEADER_LEN + c + TAG_LEN;
    let seg_out = s * record + CHECKPOINT_RECORD_LEN;
    let segments = bulk.len() / (s * body);
    let total_chunks = (segments * s) as u64;
    if sealer.counter.saturating_add(total_chunks) > crate::stream::MAX_CHUNKS {
        return Err(Error::TooLarge {
            limit: crate::stream::MAX_CHUNKS.saturating_mul(c as u64),
        });
    }
    let base = out.len();
    out.resize(base + segments * seg_out, 0);
    let region = out
        .get_mut(base..)
        .ok_or(Error::Internal("output region"))?;
    let key = &sealer.key;
    let counter0 = sealer.counter;
    let ct_len = ((c + TAG_LEN) as u32).to_be_bytes();
    let digests: Vec<[u8; 32]> = region
        .par_chunks_mut(seg_out)
        .zip(bulk.par_chunks(s * body))
        .enumerate()
        .map(|(q, (dst, src))| {
            let (records, _) = dst.split_at_mut(s * record);
            for (i, (rec, pt)) in records.chunks_mut(record).zip(src.chunks(body)).enumerate() {
                let (hdr, rest) = rec.split_at_mut(CHUNK_RECORD_HEADER_LEN);
                hdr[0] = RECORD_CHUNK;
                hdr[1..].copy_from_slice(&ct_len[1..]);
                let (plain, tag) = rest.split_at_mut(c);
                plain[0] = KIND_DATA;
                plain[1..].copy_from_slice(pt);
                let counter = counter0 + (q * s + i) as u64;
                tag.copy_from_slice(&key.seal_chunk(counter, false, plain));
            }
            let mut h = Context::new(&SHA256);
            h.update(records);
            let mut d = [0u8; 32];
            d.copy_from_slice(h.finish().as_ref());
            d
        })
        .collect();
    // The chain in order (32-byte inputs), then every signature in parallel.
    let mut chains = Vec::with_capacity(segments);
    let mut prev = sealer.chain;
    for (q, d) in digests.iter().enumerate() {
        prev = chain_value(&prev, sealer.checkpoints + q as u64, false, d);
        chains.push(prev);
    }
    let sender: &DeviceIdentity = sealer.sender.borrow();
    region
        .par_chunks_mut(seg_out)
        .zip(chains.par_iter())
        .for_each(|(dst, chain)| {
            let (_, cp) = dst.split_at_mut(s * record);
            cp[0] = RECORD_CHECKPOINT;
            cp[1..].copy_from_slice(sender.sign(&checkpoint_message(chain)).as_bytes());
        });
    sealer.chain = prev;
    sealer.checkpoints += segments as u64;
    sealer.counter += total_chunks;
    sealer.plaintext_total += total_chunks * c as u64;
    Ok(())
}

/// One chunk record found by the structural scan.
struct ChunkAt {
    ct: std::ops::Range<usize>,
    last: bool,
}

/// One segment: its chunk records' byte range, its chunks, its checkpoint signature.
struct SegmentAt {
    records: std::ops::Range<usize>,
    chunks: Vec<ChunkAt>,
    signature: [u8; SIGNATURE_LEN],
    last: bool,
}

/// [`crate::open`] on every core: the same content and [`Opened`], or the same error.
pub fn open_parallel<P: TrustedSenders + Sync + ?Sized>(
    me: &DeviceIdentity,
    trusted: &P,
    envelope: &[u8],
    options: OpenOptions,
) -> Result<(Vec<u8>, Opened), Error> {
    match try_open_parallel(me, trusted, envelope, options) {
        Some(done) => Ok(done),
        None => crate::open(me, trusted, envelope, options),
    }
}

/// The parallel path; `None` whenever anything does not verify (the sequential opener then
/// finds and reports it).
fn try_open_parallel<P: TrustedSenders + ?Sized>(
    me: &DeviceIdentity,
    trusted: &P,
    envelope: &[u8],
    options: OpenOptions,
) -> Option<(Vec<u8>, Opened)> {
    if envelope.len() as u64 > options.size_limit() {
        return None;
    }
    // The header and checkpoint 0 through the sequential opener: trust, unwrap, commitment.
    let declared = crate::format::Header::declared_len(envelope).ok()?;
    let body_start = declared + CHECKPOINT_RECORD_LEN;
    let mut opener = Opener::new(me, trusted, options);
    let mut nothing = Vec::new();
    opener
        .push(envelope.get(..body_start)?, &mut nothing)
        .ok()?;
    let key = opener.key.take()?;
    let parsed = opener.framer.parsed()?;
    let header = parsed.header.clone();
    let max_ct = header.chunk_size() + TAG_LEN;
    let per_segment = usize::try_from(header.segment_chunks()).ok()?;
    let first_chain = chain_value(&[0; 32], 0, false, parsed.header_hash.as_ref());
    let header_hash: [u8; 32] = parsed.header_hash.as_ref().try_into().ok()?;

    // Structure, in order: records, lengths, segment limits, the final checkpoint last.
    let mut segments = Vec::new();
    let mut at = body_start;
    let mut chunks = Vec::new();
    let mut seg_start = at;
    let mut n_chunks = 0u64;
    loop {
        let kind = *envelope.get(at)?;
        match kind {
            RECORD_CHUNK | RECORD_LAST_CHUNK => {
                let h = envelope.get(at..at + CHUNK_RECORD_HEADER_LEN)?;
                let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
                if !(TAG_LEN + 1..=max_ct).contains(&len) || chunks.len() >= per_segment {
                    return None;
                }
                let start = at + CHUNK_RECORD_HEADER_LEN;
                envelope.get(start..start + len)?;
                chunks.push(ChunkAt {
                    ct: start..start + len,
                    last: kind == RECORD_LAST_CHUNK,
                });
                n_chunks += 1;
                at = start + len;
                if kind == RECORD_LAST_CHUNK && envelope.get(at) != Some(&RECORD_FINAL) {
                    return None;
                }
            }
            RECORD_CHECKPOINT | RECORD_FINAL => {
                if chunks.is_empty() {
                    return None;
                }
                let sig = envelope.get(at + 1..at + CHECKPOINT_RECORD_LEN)?;
                let last = kind == RECORD_FINAL;
                if last != chunks.last().is_some_and(|c: &ChunkAt| c.last) {
                    return None;
                }
                segments.push(SegmentAt {
                    records: seg_start..at,
                    chunks: std::mem::take(&mut chunks),
                    signature: sig.try_into().ok()?,
                    last,
                });
                at += CHECKPOINT_RECORD_LEN;
                seg_start = at;
                if last {
                    break;
                }
            }
            _ => return None,
        }
    }
    if at != envelope.len() || n_chunks > crate::stream::MAX_CHUNKS {
        return None;
    }

    // Every segment hashed in parallel; the chain in order; every signature in parallel.
    let digests: Vec<[u8; 32]> = segments
        .par_iter()
        .map(|seg| {
            let mut d = [0u8; 32];
            d.copy_from_slice(
                ring::digest::digest(&SHA256, &envelope[seg.records.clone()]).as_ref(),
            );
            d
        })
        .collect();
    let mut chains = Vec::with_capacity(segments.len());
    let mut prev = first_chain;
    for (q, (d, seg)) in digests.iter().zip(&segments).enumerate() {
        prev = chain_value(&prev, q as u64 + 1, seg.last, d);
        chains.push(prev);
    }
    let sender = &header.sender;
    let signatures_ok = segments
        .par_iter()
        .zip(chains.par_iter())
        .all(|(seg, chain)| {
            sender
                .verify(
                    &checkpoint_message(chain),
                    &Signature::from_bytes(seg.signature),
                )
                .is_ok()
        });
    if !signatures_ok {
        return None;
    }

    // Every chunk decrypted in parallel (into one buffer), then decoded in order.
    let all: Vec<&ChunkAt> = segments.iter().flat_map(|s| s.chunks.iter()).collect();
    let mut plain: Vec<u8> = Vec::with_capacity(all.iter().map(|c| c.ct.len()).sum());
    let mut spans = Vec::with_capacity(all.len());
    for c in &all {
        let from = plain.len();
        plain.extend_from_slice(&envelope[c.ct.clone()]);
        spans.push(from..plain.len());
    }
    let mut pieces: Vec<&mut [u8]> = Vec::with_capacity(all.len());
    let mut rest = plain.as_mut_slice();
    for span in &spans {
        let (now, later) = rest.split_at_mut(span.len());
        pieces.push(now);
        rest = later;
    }
    let decrypted: Option<Vec<usize>> = pieces
        .into_par_iter()
        .zip(all.par_iter())
        .enumerate()
        .map(|(i, (buf, c))| {
            key.open_chunk(i as u64, c.last, buf)
                .ok()
                .map(|pt| pt.len())
        })
        .collect();
    let decrypted = decrypted?;
    let mut content = Content::default();
    let mut out = Vec::with_capacity(plain.len());
    for ((span, len), c) in spans.iter().zip(&decrypted).zip(&all) {
        let pt = plain.get(span.start..span.start + len)?;
        content.chunk(pt, c.last, &mut out).ok()?;
    }
    if !content.seen_end {
        return None;
    }
    let metadata = content.metadata.take()?;
    Some((
        out,
        Opened {
            sender: header.sender.clone(),
            metadata,
            family: header.family,
            roster_version: header.roster_version,
            sequence: header.sequence,
            previous: header.previous,
            header_hash,
            created: header.created,
            content_len: content.released,
        },
    ))
}
