//! Splits an envelope byte stream into header, records and checkpoints, hashing each segment
//! and verifying every checkpoint signature as it goes (docs/spec/envelope.md §3.6, §4). Shared
//! by the opener (which decrypts) and the keyless verifier (which does not). Sans-IO: bytes in,
//! steps out; memory is bounded by the header plus one record.

use crate::Error;
use crate::format::{
    CHECKPOINT_RECORD_LEN, CHUNK_RECORD_HEADER_LEN, FIXED_HEADER_LEN, Header, RECORD_CHECKPOINT,
    RECORD_CHUNK, RECORD_FINAL, RECORD_LAST_CHUNK, SIGNATURE_LEN, TAG_LEN, chain_value,
    checkpoint_message,
};
use crate::stream::MAX_CHUNKS;
use ring::digest::{Context, Digest, SHA256};
use toyseal_core::Signature;

/// What the framer has ready after a [`Framer::step`].
pub(crate) enum Step {
    /// More input is needed.
    NeedMore,
    /// The header is complete, parsed, and its checkpoint (number 0) verified.
    Header,
    /// A chunk (ciphertext || tag) is ready in [`Framer::chunk_mut`]. Not yet authenticated by a
    /// checkpoint: its content must not be released before the next [`Step::Checkpoint`].
    Chunk,
    /// A checkpoint verified: every chunk before it is the sender's. `last` marks the final one.
    Checkpoint {
        /// Whether this was the final checkpoint (the envelope is complete).
        last: bool,
    },
}

/// What is known once the header is parsed.
pub(crate) struct Parsed {
    pub header: Header,
    pub fixed: [u8; FIXED_HEADER_LEN],
    pub header_hash: Digest,
}

/// Which records may come next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A chunk, or a checkpoint if the segment has a chunk.
    Any,
    /// Only the final checkpoint (after the last chunk).
    Final,
    /// Nothing: the final checkpoint has verified.
    End,
}

struct Body {
    parsed: Parsed,
    segment: Context,
    chain: [u8; 32],
    checkpoints: u64,
    chunks_in_segment: u64,
    segment_chunks: u64,
    max_ct: usize,
    counter: u64,
    buf: Vec<u8>,
    pending: Option<bool>,
    expect: Expect,
}

impl Body {
    fn retire_pending(&mut self) {
        if self.pending.take().is_some() {
            self.buf.clear();
            self.counter += 1;
        }
    }

    /// Verifies the checkpoint signature in `sig` for a segment with `digest`.
    fn checkpoint(&mut self, sig: &[u8], digest: &[u8], last: bool) -> Result<(), Error> {
        let chain = chain_value(&self.chain, self.checkpoints, last, digest);
        let sig: [u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| Error::Decrypt)?;
        self.parsed
            .header
            .sender
            .verify(&checkpoint_message(&chain), &Signature::from_bytes(sig))
            .map_err(|_| Error::Signature)?;
        self.chain = chain;
        self.checkpoints += 1;
        Ok(())
    }
}

enum State {
    Header(Vec<u8>),
    Body(Box<Body>),
    Closed,
}

pub(crate) struct Framer {
    limit: u64,
    seen: u64,
    state: State,
}

impl Framer {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            seen: 0,
            state: State::Header(Vec::with_capacity(FIXED_HEADER_LEN)),
        }
    }

    pub fn parsed(&self) -> Option<&Parsed> {
        match &self.state {
            State::Body(b) => Some(&b.parsed),
            _ => None,
        }
    }

    pub fn close(&mut self) {
        self.state = State::Closed;
    }

    /// Moves up to `want - buf.len()` bytes from `input` into `buf`; whether `buf` is full.
    fn fill(
        buf: &mut Vec<u8>,
        want: usize,
        input: &mut &[u8],
        seen: &mut u64,
        limit: u64,
    ) -> Result<bool, Error> {
        let take = want.saturating_sub(buf.len()).min(input.len());
        let (now, rest) = input.split_at(take);
        buf.extend_from_slice(now);
        *input = rest;
        *seen += take as u64;
        if *seen > limit {
            return Err(Error::TooLarge { limit });
        }
        Ok(buf.len() >= want)
    }

    /// Consumes from `input` until something is ready or `input` is empty.
    pub fn step(&mut self, input: &mut &[u8]) -> Result<Step, Error> {
        let (limit, seen) = (self.limit, &mut self.seen);
        match &mut self.state {
            State::Closed => Err(Error::StreamClosed),
            State::Header(buf) => {
                // The header, then checkpoint 0 (a CHECKPOINT record) right after it.
                let mut want = FIXED_HEADER_LEN;
                loop {
                    if buf.len() >= FIXED_HEADER_LEN {
                        want = Header::declared_len(buf)? + CHECKPOINT_RECORD_LEN;
                    }
                    if Self::fill(buf, want, input, seen, limit)? && want > FIXED_HEADER_LEN {
                        break;
                    }
                    if input.is_empty() && buf.len() < want {
                        return Ok(Step::NeedMore);
                    }
                }
                let (header, len) = Header::parse(buf)?;
                let (header_bytes, cp0) = buf.split_at(len);
                let header_hash = ring::digest::digest(&SHA256, header_bytes);
                let (&kind, sig) = cp0.split_first().ok_or(Error::Truncated)?;
                if kind != RECORD_CHECKPOINT {
                    return Err(Error::Decrypt);
                }
                let fixed = header.encode_fixed();
                let segment_chunks = header.segment_chunks();
                let max_ct = header.chunk_size() + TAG_LEN;
                let mut body = Box::new(Body {
                    parsed: Parsed {
                        header,
                        fixed,
                        header_hash,
                    },
                    segment: Context::new(&SHA256),
                    chain: [0; 32],
                    checkpoints: 0,
                    chunks_in_segment: 0,
                    segment_chunks,
                    max_ct,
                    counter: 0,
                    buf: Vec::with_capacity(CHUNK_RECORD_HEADER_LEN + max_ct),
                    pending: None,
                    expect: Expect::Any,
                });
                let hash = body.parsed.header_hash;
                body.checkpoint(sig, hash.as_ref(), false)?;
                self.state = State::Body(body);
                Ok(Step::Header)
            }
            State::Body(b) => {
                b.retire_pending();
                if b.expect == Expect::End {
                    // Nothing may follow the final checkpoint.
                    return if input.is_empty() {
                        Ok(Step::NeedMore)
                    } else {
                        Err(Error::Decrypt)
                    };
                }
                if !Self::fill(&mut b.buf, 1, input, seen, limit)? {
                    return Ok(Step::NeedMore);
                }
                let kind = b.buf.first().copied().ok_or(Error::Truncated)?;
                match (kind, b.expect) {
                    (RECORD_CHUNK | RECORD_LAST_CHUNK, Expect::Any) => {
                        if b.counter >= MAX_CHUNKS {
                            return Err(Error::TooLarge {
                                limit: MAX_CHUNKS.saturating_mul(b.max_ct as u64),
                            });
                        }
                        if b.chunks_in_segment >= b.segment_chunks {
                            return Err(Error::Decrypt);
                        }
                        if !Self::fill(&mut b.buf, CHUNK_RECORD_HEADER_LEN, input, seen, limit)? {
                            return Ok(Step::NeedMore);
                        }
                        let len = match b.buf.as_slice() {
                            [_, x, y, z, ..] => {
                                usize::from(*x) << 16 | usize::from(*y) << 8 | usize::from(*z)
                            }
                            _ => return Err(Error::Truncated),
                        };
                        if !(TAG_LEN + 1..=b.max_ct).contains(&len) {
                            return Err(Error::Decrypt);
                        }
                        if !Self::fill(
                            &mut b.buf,
                            CHUNK_RECORD_HEADER_LEN + len,
                            input,
                            seen,
                            limit,
                        )? {
                            return Ok(Step::NeedMore);
                        }
                        b.segment.update(&b.buf);
                        b.chunks_in_segment += 1;
                        let last = kind == RECORD_LAST_CHUNK;
                        if last {
                            b.expect = Expect::Final;
                        }
                        b.pending = Some(last);
                        Ok(Step::Chunk)
                    }
                    (RECORD_CHECKPOINT, Expect::Any) | (RECORD_FINAL, Expect::Final) => {
                        if b.chunks_in_segment == 0 {
                            return Err(Error::Decrypt);
                        }
                        if !Self::fill(&mut b.buf, CHECKPOINT_RECORD_LEN, input, seen, limit)? {
                            return Ok(Step::NeedMore);
                        }
                        let last = kind == RECORD_FINAL;
                        let digest =
                            std::mem::replace(&mut b.segment, Context::new(&SHA256)).finish();
                        let buf = std::mem::take(&mut b.buf);
                        b.checkpoint(buf.get(1..).ok_or(Error::Truncated)?, digest.as_ref(), last)?;
                        b.buf = buf;
                        b.buf.clear();
                        b.chunks_in_segment = 0;
                        if last {
                            b.expect = Expect::End;
                        }
                        Ok(Step::Checkpoint { last })
                    }
                    _ => Err(Error::Decrypt),
                }
            }
        }
    }

    /// The chunk announced by the last [`Step::Chunk`]: its counter, whether it is the last, its
    /// ciphertext || tag, and the header.
    pub fn chunk_mut(&mut self) -> Option<(u64, bool, &mut [u8], &Parsed)> {
        match &mut self.state {
            State::Body(b) => {
                let last = b.pending?;
                let Body {
                    parsed,
                    buf,
                    counter,
                    ..
                } = &mut **b;
                Some((
                    *counter,
                    last,
                    buf.get_mut(CHUNK_RECORD_HEADER_LEN..)?,
                    &*parsed,
                ))
            }
            _ => None,
        }
    }

    /// Ends the input: succeeds only if the final checkpoint has verified.
    pub fn finish(&mut self) -> Result<&Parsed, Error> {
        match &self.state {
            State::Closed => Err(Error::StreamClosed),
            State::Header(_) => Err(Error::Truncated),
            State::Body(b) if b.expect == Expect::End => Ok(&b.parsed),
            State::Body(_) => Err(Error::Truncated),
        }
    }
}
