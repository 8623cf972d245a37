//! Sealing: a streaming sealer with bounded memory (encrypt while recording), and a one-shot
//! helper.

use crate::format::{
    DEFAULT_CHUNK_SIZE_LOG2, END_MARKER, Header, KIND_DATA, KIND_END, KIND_PAD,
    MAX_CHUNK_SIZE_LOG2, MAX_RECIPIENTS, MIN_CHUNK_SIZE_LOG2, PAYLOAD_INFO, signed_message,
};
use crate::stream::{MAX_CHUNKS, StreamKey};
use crate::wrap::{FILE_KEY_LEN, wrap};
use crate::{Error, Metadata, padding::padme};
use ring::digest::{Context, SHA256};
use toyseal_core::{CryptoRng, DeviceIdentity, FamilyId, PublicIdentity};
use zeroize::Zeroizing;

/// How to seal: chunk size, the family and roster version the recipients came from, and the
/// metadata that travels encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealOptions {
    chunk_size_log2: u8,
    family: Option<(FamilyId, u64)>,
    metadata: Metadata,
}

impl Default for SealOptions {
    fn default() -> Self {
        Self {
            chunk_size_log2: DEFAULT_CHUNK_SIZE_LOG2,
            family: None,
            metadata: Metadata::default(),
        }
    }
}

impl SealOptions {
    /// Chunk size `2^log2` bytes, `10..=20` (1 KiB to 1 MiB; default 64 KiB). Smaller chunks
    /// bound a small device's memory; larger ones cost less per byte.
    pub fn with_chunk_size_log2(mut self, log2: u8) -> Result<Self, Error> {
        if !(MIN_CHUNK_SIZE_LOG2..=MAX_CHUNK_SIZE_LOG2).contains(&log2) {
            return Err(Error::ChunkSize(log2));
        }
        self.chunk_size_log2 = log2;
        Ok(self)
    }

    /// Records the family and roster version the recipients were taken from.
    pub fn with_family(mut self, family: FamilyId, roster_version: u64) -> Self {
        self.family = Some((family, roster_version));
        self
    }

    /// Sets the encrypted metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A streaming sealer. Feed content with [`update`](Self::update) as it is recorded; call
/// [`finish`](Self::finish) once. Ciphertext is appended to the caller's buffer chunk by chunk;
/// memory use is one chunk whatever the message size.
///
/// Dropping a sealer without `finish` produces no valid envelope: the final chunk and the
/// signature are missing, so every reader rejects it.
pub struct Sealer<'a> {
    sender: &'a DeviceIdentity,
    key: StreamKey,
    hasher: Context,
    pending_out: Vec<u8>,
    chunk_size: usize,
    buf: Vec<u8>,
    counter: u64,
}

impl<'a> Sealer<'a> {
    /// Starts an envelope from `sender` to `recipients`.
    pub fn new(
        sender: &'a DeviceIdentity,
        recipients: &[PublicIdentity],
        options: &SealOptions,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, Error> {
        if recipients.is_empty() {
            return Err(Error::NoRecipients);
        }
        if recipients.len() > MAX_RECIPIENTS {
            return Err(Error::TooManyRecipients {
                count: recipients.len(),
                max: MAX_RECIPIENTS,
            });
        }
        for (i, r) in recipients.iter().enumerate() {
            if recipients[..i]
                .iter()
                .any(|o| o.agreement_key() == r.agreement_key())
            {
                return Err(Error::DuplicateRecipient);
            }
        }
        let prelude = options.metadata.encode()?;
        let mut file_key = Zeroizing::new([0u8; FILE_KEY_LEN]);
        rng.fill_bytes(file_key.as_mut());
        let mut payload_nonce = [0u8; 16];
        rng.fill_bytes(&mut payload_nonce);

        let mut header = Header {
            chunk_size_log2: options.chunk_size_log2,
            family: options.family.map(|(f, _)| f),
            roster_version: options.family.map_or(0, |(_, v)| v),
            payload_nonce,
            sender: sender.public().clone(),
            stanzas: Vec::with_capacity(recipients.len()),
        };
        let fixed = header.encode_fixed_with_count(recipients.len());
        for r in recipients {
            header.stanzas.push(wrap(&fixed, r, &file_key, rng)?);
        }
        let header_bytes = header.encode();
        let header_hash = ring::digest::digest(&SHA256, &header_bytes);
        let key = StreamKey::derive(
            file_key.as_ref(),
            &payload_nonce,
            &[PAYLOAD_INFO, header_hash.as_ref()],
        );
        let mut hasher = Context::new(&SHA256);
        hasher.update(&header_bytes);
        let chunk_size = header.chunk_size();
        let mut sealer = Self {
            sender,
            key,
            hasher,
            pending_out: header_bytes,
            chunk_size,
            buf: Vec::with_capacity(chunk_size),
            counter: 0,
        };
        let mut out = std::mem::take(&mut sealer.pending_out);
        sealer.append(&prelude, &mut out)?;
        sealer.pending_out = out;
        Ok(sealer)
    }

    /// Encrypts and appends one chunk (`kind || parts… || zeros up to pad_to`) to `out`.
    fn emit(
        &mut self,
        kind: u8,
        parts: &[&[u8]],
        pad_to: usize,
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.counter >= MAX_CHUNKS {
            return Err(Error::TooLarge {
                limit: MAX_CHUNKS.saturating_mul(self.chunk_size as u64),
            });
        }
        let start = out.len();
        out.push(kind);
        for p in parts {
            out.extend_from_slice(p);
        }
        let len = (out.len() - start).max(pad_to);
        out.resize(start + len, 0);
        let tag = self
            .key
            .seal_chunk(self.counter, last, out.get_mut(start..).unwrap_or_default());
        out.extend_from_slice(&tag);
        self.hasher.update(out.get(start..).unwrap_or_default());
        self.counter += 1;
        Ok(())
    }

    /// Appends content, emitting every full DATA chunk. A full chunk is never the last one
    /// (the END chunk always follows), so it can leave at once. Content goes from the input
    /// straight into `out`; only a trailing partial chunk is buffered.
    fn append(&mut self, mut content: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let body_len = self.chunk_size - 1;
        if !self.buf.is_empty() && self.buf.len() + content.len() >= body_len {
            // Complete the buffered chunk from the input without copying the input twice.
            let (now, rest) = content.split_at(body_len - self.buf.len());
            let buf = std::mem::take(&mut self.buf);
            self.emit(KIND_DATA, &[&buf, now], self.chunk_size, false, out)?;
            self.buf = buf;
            self.buf.clear();
            content = rest;
        }
        while content.len() >= body_len {
            let (body, rest) = content.split_at(body_len);
            self.emit(KIND_DATA, &[body], self.chunk_size, false, out)?;
            content = rest;
        }
        self.buf.extend_from_slice(content);
        Ok(())
    }

    /// Seals more content, appending ciphertext to `out`.
    pub fn update(&mut self, content: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if !self.pending_out.is_empty() {
            out.append(&mut self.pending_out);
        }
        self.append(content, out)
    }

    /// Writes the END chunk, Padmé padding and the sender's signature, all into `out`.
    ///
    /// Padding can be up to 12 % of the message; to keep memory bounded by one chunk for large
    /// messages, use [`finish_in_steps`](Self::finish_in_steps) and drain `out` between steps.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut f = self.finish_in_steps(out)?;
        while f.step(out)? == Progress::More {}
        Ok(())
    }

    /// Starts finishing: appends any pending header to `out` and returns a [`Finishing`] that
    /// writes the rest one chunk per [`Finishing::step`].
    pub fn finish_in_steps(mut self, out: &mut Vec<u8>) -> Result<Finishing<'a>, Error> {
        if !self.pending_out.is_empty() {
            out.append(&mut self.pending_out);
        }
        let c = self.chunk_size as u64;
        // buf holds at most chunk_size - 2 bytes: a full body would have been emitted.
        let mut end = std::mem::take(&mut self.buf);
        end.push(END_MARKER);
        let minimal = self.counter * c + 1 + end.len() as u64;
        let mut remaining = padme(minimal) - minimal;
        let end_len = (1 + end.len() as u64 + remaining).min(c);
        remaining -= end_len - 1 - end.len() as u64;
        Ok(Finishing {
            sealer: self,
            end: Some((end, end_len as usize)),
            remaining,
            signed: false,
        })
    }
}

/// Whether a [`Finishing`] has more to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Call [`Finishing::step`] again.
    More,
    /// The envelope is complete (the signature has been written).
    Complete,
}

/// The end of an envelope, written one chunk at a time: the END chunk, each padding chunk,
/// then the signature. Memory stays bounded by one chunk whatever the padding.
pub struct Finishing<'a> {
    sealer: Sealer<'a>,
    end: Option<(Vec<u8>, usize)>,
    remaining: u64,
    signed: bool,
}

impl Finishing<'_> {
    /// Appends the next piece to `out`.
    pub fn step(&mut self, out: &mut Vec<u8>) -> Result<Progress, Error> {
        if let Some((end, end_len)) = self.end.take() {
            let last = self.remaining == 0;
            self.sealer.emit(KIND_END, &[&end], end_len, last, out)?;
            return Ok(Progress::More);
        }
        if self.remaining > 0 {
            let c = self.sealer.chunk_size as u64;
            let len = self.remaining.min(c);
            self.remaining -= len;
            let last = self.remaining == 0;
            self.sealer.emit(KIND_PAD, &[], len as usize, last, out)?;
            return Ok(Progress::More);
        }
        if !self.signed {
            let digest = self.sealer.hasher.clone().finish();
            let signature = self.sealer.sender.sign(&signed_message(digest.as_ref()));
            out.extend_from_slice(signature.as_bytes());
            self.signed = true;
        }
        Ok(Progress::Complete)
    }
}

/// Seals `content` in one call. For large or live content use [`Sealer`].
pub fn seal(
    sender: &DeviceIdentity,
    recipients: &[PublicIdentity],
    options: &SealOptions,
    content: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, Error> {
    let mut sealer = Sealer::new(sender, recipients, options, rng)?;
    let mut out = Vec::with_capacity(sealed_len_hint(content.len(), recipients.len()));
    sealer.update(content, &mut out)?;
    sealer.finish(&mut out)?;
    Ok(out)
}

fn sealed_len_hint(content: usize, recipients: usize) -> usize {
    content + content / 8 + 4096 + recipients * crate::format::STANZA_LEN
}
