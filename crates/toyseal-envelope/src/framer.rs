//! Splits an envelope byte stream into header, chunks and signature, hashing as it goes.
//! Shared by the opener (which decrypts) and the verifier (which does not). Sans-IO: bytes in,
//! steps out; memory is bounded by one chunk plus the signature look-ahead.

use crate::Error;
use crate::format::{FIXED_HEADER_LEN, Header, SIGNATURE_LEN, TAG_LEN};
use crate::stream::MAX_CHUNKS;
use ring::digest::{Context, Digest, SHA256};
use toyseal_core::Signature;

/// What the framer has ready after a [`Framer::step`].
pub(crate) enum Step {
    /// More input is needed.
    NeedMore,
    /// The header is complete and parsed.
    Header,
    /// A non-final chunk (ciphertext || tag) is ready in [`Framer::chunk_mut`].
    Chunk,
}

/// What is known once the header is parsed.
pub(crate) struct Parsed {
    pub header: Header,
    pub fixed: [u8; FIXED_HEADER_LEN],
    pub header_hash: Digest,
}

struct Body {
    parsed: Parsed,
    hasher: Context,
    ct_chunk: usize,
    buf: Vec<u8>,
    counter: u64,
    pending: bool,
}

impl Body {
    fn retire_pending(&mut self) {
        if self.pending {
            self.buf.drain(..self.ct_chunk);
            self.pending = false;
            self.counter += 1;
        }
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

/// The final chunk and the signature, once the input has ended.
pub(crate) struct Tail<'a> {
    pub digest: Digest,
    pub final_ct: &'a mut [u8],
    pub signature: Signature,
    pub counter: u64,
    pub parsed: &'a Parsed,
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

    /// Consumes from `input` until something is ready or `input` is empty.
    pub fn step(&mut self, input: &mut &[u8]) -> Result<Step, Error> {
        match &mut self.state {
            State::Closed => Err(Error::StreamClosed),
            State::Header(buf) => {
                loop {
                    let want = if buf.len() < FIXED_HEADER_LEN {
                        FIXED_HEADER_LEN
                    } else {
                        Header::declared_len(buf)?
                    };
                    if buf.len() == want {
                        break;
                    }
                    if input.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = (want - buf.len()).min(input.len());
                    let (now, rest) = input.split_at(take);
                    buf.extend_from_slice(now);
                    *input = rest;
                    self.seen += take as u64;
                }
                let (header, len) = Header::parse(buf)?;
                let header_bytes = buf.get(..len).ok_or(Error::Truncated)?;
                let mut hasher = Context::new(&SHA256);
                hasher.update(header_bytes);
                let header_hash = ring::digest::digest(&SHA256, header_bytes);
                let fixed = header.encode_fixed();
                let ct_chunk = header.chunk_size() + TAG_LEN;
                self.state = State::Body(Box::new(Body {
                    parsed: Parsed {
                        header,
                        fixed,
                        header_hash,
                    },
                    hasher,
                    ct_chunk,
                    buf: Vec::with_capacity(ct_chunk + SIGNATURE_LEN + 1),
                    counter: 0,
                    pending: false,
                }));
                Ok(Step::Header)
            }
            State::Body(b) => {
                b.retire_pending();
                // A chunk is known to be non-final once more than a signature follows it.
                let window = b.ct_chunk + SIGNATURE_LEN + 1;
                let take = (window - b.buf.len()).min(input.len());
                let (now, rest) = input.split_at(take);
                b.buf.extend_from_slice(now);
                *input = rest;
                self.seen += take as u64;
                if self.seen > self.limit {
                    return Err(Error::TooLarge { limit: self.limit });
                }
                if b.buf.len() < window {
                    return Ok(Step::NeedMore);
                }
                if b.counter + 1 >= MAX_CHUNKS {
                    return Err(Error::TooLarge { limit: self.limit });
                }
                let ct_chunk = b.ct_chunk;
                b.hasher
                    .update(b.buf.get(..ct_chunk).ok_or(Error::Truncated)?);
                b.pending = true;
                Ok(Step::Chunk)
            }
        }
    }

    /// The chunk announced by the last [`Step::Chunk`]: its counter, its bytes, the header.
    pub fn chunk_mut(&mut self) -> Option<(u64, &mut [u8], &Parsed)> {
        match &mut self.state {
            State::Body(b) if b.pending => {
                let Body {
                    parsed,
                    buf,
                    counter,
                    ct_chunk,
                    ..
                } = &mut **b;
                Some((*counter, buf.get_mut(..*ct_chunk)?, &*parsed))
            }
            _ => None,
        }
    }

    /// Ends the input: returns the final chunk and the signature.
    pub fn finish(&mut self) -> Result<Tail<'_>, Error> {
        match &mut self.state {
            State::Closed => Err(Error::StreamClosed),
            State::Header(_) => Err(Error::Truncated),
            State::Body(b) => {
                b.retire_pending();
                let Body {
                    parsed,
                    hasher,
                    ct_chunk,
                    buf,
                    counter,
                    ..
                } = &mut **b;
                let n = buf.len();
                // The final chunk holds 1..=chunk_size plaintext bytes, then the signature.
                if n < TAG_LEN + 1 + SIGNATURE_LEN || n > *ct_chunk + SIGNATURE_LEN {
                    return Err(Error::Truncated);
                }
                let (ct, sig) = buf.split_at_mut(n - SIGNATURE_LEN);
                hasher.update(ct);
                let signature =
                    Signature::from_bytes((&*sig).try_into().map_err(|_| Error::Truncated)?);
                Ok(Tail {
                    digest: hasher.clone().finish(),
                    final_ct: ct,
                    signature,
                    counter: *counter,
                    parsed: &*parsed,
                })
            }
        }
    }
}
