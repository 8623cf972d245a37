//! Sealing: a streaming sealer with bounded memory (encrypt while recording, signed
//! checkpoints as it goes), and a one-shot helper.

use crate::format::{
    DEFAULT_CHUNK_SIZE_LOG2, DEFAULT_SEGMENT_LOG2, END_MARKER, Header, KIND_DATA, KIND_END,
    KIND_PAD, MAX_CHUNK_SIZE_LOG2, MAX_RECIPIENTS, MAX_SEGMENT_LOG2, MIN_CHUNK_SIZE_LOG2,
    RECORD_CHECKPOINT, RECORD_CHUNK, RECORD_FINAL, RECORD_LAST_CHUNK, chain_value,
    checkpoint_message,
};
use crate::schedule::{FILE_KEY_LEN, KeySchedule};
use crate::stream::{MAX_CHUNKS, StreamKey};
use crate::wrap::wrap;
use crate::{Error, Metadata, padding::padme};
use ring::digest::{Context, SHA256};
use std::borrow::Borrow;
use std::sync::Arc;
use toyseal_core::{CryptoRng, DeviceIdentity, FamilyId, PublicIdentity};
use zeroize::Zeroizing;

/// How to seal: chunk size, checkpoint interval, the family and roster version the recipients
/// came from, the sender's sequence number and clock, and the metadata that travels encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealOptions {
    chunk_size_log2: u8,
    segment_log2: u8,
    family: Option<(FamilyId, u64)>,
    sequence: u64,
    previous: [u8; 32],
    created: u64,
    metadata: Metadata,
}

impl Default for SealOptions {
    fn default() -> Self {
        Self {
            chunk_size_log2: DEFAULT_CHUNK_SIZE_LOG2,
            segment_log2: DEFAULT_SEGMENT_LOG2,
            family: None,
            sequence: 0,
            previous: [0; 32],
            created: 0,
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

    /// At most `2^log2` plaintext bytes between two signed checkpoints (default 2^20, 1 MiB;
    /// at least the chunk size, at most 2^24). An opener buffers up to this much before it may
    /// release content, so it bounds the reader's memory and the delay before playback; each
    /// checkpoint costs the sender one Ed25519 signature and the reader one verification.
    /// For live audio, [`Sealer::checkpoint`] also ends a segment early (by time).
    pub fn with_segment_size_log2(mut self, log2: u8) -> Result<Self, Error> {
        if !(MIN_CHUNK_SIZE_LOG2..=MAX_SEGMENT_LOG2).contains(&log2) {
            return Err(Error::SegmentSize(log2));
        }
        self.segment_log2 = log2;
        Ok(self)
    }

    /// Records the family and roster version the recipients were taken from.
    pub fn with_family(mut self, family: FamilyId, roster_version: u64) -> Self {
        self.family = Some((family, roster_version));
        self
    }

    /// The sender's sequence number for this envelope: a sender never uses one twice (take it
    /// from a [`toyseal_core::SequenceStore`]). Openers use it to detect replays and reordering,
    /// and a roster that removes the sender uses it to tell earlier envelopes from later ones.
    pub fn with_sequence(mut self, sequence: u64) -> Self {
        self.sequence = sequence;
        self
    }

    /// The link hash ([`Header::link_hash`]) of this sender's previous envelope: the sender
    /// chain of docs/spec/envelope.md §11 (all zero, the default, for a sender's first
    /// envelope). Take it with the sequence from the sender's state
    /// ([`toyseal_core::SequenceStore::sender_state`]); a sealer refuses a non-zero one without
    /// a sequence.
    pub fn with_previous(mut self, previous: [u8; 32]) -> Self {
        self.previous = previous;
        self
    }

    /// The sequence number these options seal with.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The previous-envelope hash these options seal with.
    pub fn previous(&self) -> &[u8; 32] {
        &self.previous
    }

    /// When the envelope was sealed, in Unix seconds by the sender's clock.
    pub fn with_created(mut self, unix_seconds: u64) -> Self {
        self.created = unix_seconds;
        self
    }

    /// Sets the encrypted metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A streaming sealer. Feed content with [`update`](Self::update) as it is recorded; call
/// [`finish`](Self::finish) (or [`finish_in_steps`](Self::finish_in_steps)) once. Ciphertext
/// is appended to the caller's buffer record by record, with a signed checkpoint after every
/// segment; memory use is one chunk whatever the message size.
///
/// Dropping a sealer without finishing produces no valid envelope: the final checkpoint is
/// missing, so every reader reports it truncated (while releasing what earlier checkpoints
/// proved).
///
/// The sealer owns what it needs: `I` is how it holds the sender's identity, an
/// `Arc<DeviceIdentity>` by default (shared with the device's other components, so a sealer
/// can outlive the caller's handle, live in a C handle or a binding object), or a plain
/// `&DeviceIdentity` for a sealer scoped to a borrow. The recipients are needed only to
/// write the header and are not kept.
pub struct Sealer<I = Arc<DeviceIdentity>> {
    pub(crate) sender: I,
    pub(crate) key: StreamKey,
    pub(crate) segment: Context,
    pub(crate) chain: [u8; 32],
    pub(crate) checkpoints: u64,
    pub(crate) chunks_in_segment: u64,
    pub(crate) segment_chunks: u64,
    pub(crate) pending_out: Vec<u8>,
    pub(crate) chunk_size: usize,
    pub(crate) buf: Vec<u8>,
    pub(crate) counter: u64,
    pub(crate) plaintext_total: u64,
    pub(crate) link: crate::ChainLink,
}

impl<I: Borrow<DeviceIdentity>> Sealer<I> {
    /// Starts an envelope from `sender` (an `Arc<DeviceIdentity>`, or a `&DeviceIdentity`) to
    /// `recipients`.
    pub fn new(
        sender: I,
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
        // Keys are canonical (core refuses other spellings), so byte equality is key equality.
        // Distinct key ids too: readers refuse a header with two equal key ids, so two keys
        // that collide on 64 bits must not be sealed to together.
        for (i, r) in recipients.iter().enumerate() {
            let id = crate::format::key_id(r.agreement_key());
            if recipients[..i].iter().any(|o| {
                o.agreement_key() == r.agreement_key()
                    || crate::format::key_id(o.agreement_key()) == id
            }) {
                return Err(Error::DuplicateRecipient);
            }
        }
        if options.sequence == 0 && options.previous != [0; 32] {
            return Err(Error::PreviousWithoutSequence);
        }
        if options.segment_log2 < options.chunk_size_log2 {
            return Err(Error::SegmentSize(options.segment_log2));
        }
        if let Some((family, _)) = options.family
            && family.as_bytes() == &[0; 16]
        {
            // The all-zero id means "no family" on the wire.
            return Err(Error::ApiMisuse(
                "the all-zero family id is reserved for no family",
            ));
        }
        let prelude = options.metadata.encode()?;
        let mut file_key = Zeroizing::new([0u8; FILE_KEY_LEN]);
        rng.fill_bytes(file_key.as_mut());
        let mut payload_nonce = [0u8; 16];
        rng.fill_bytes(&mut payload_nonce);
        let schedule = KeySchedule::new(&file_key, &payload_nonce);

        let mut header = Header {
            chunk_size_log2: options.chunk_size_log2,
            segment_log2: options.segment_log2,
            family: options.family.map(|(f, _)| f),
            roster_version: options.family.map_or(0, |(_, v)| v),
            sequence: options.sequence,
            previous: options.previous,
            created: options.created,
            payload_nonce,
            commitment: schedule.commitment(),
            sender: sender.borrow().public().clone(),
            stanzas: Vec::with_capacity(recipients.len()),
        };
        let fixed = header.encode_fixed_with_count(recipients.len());
        for r in recipients {
            header
                .stanzas
                .push(wrap(&fixed, r.agreement_key(), &file_key, &schedule)?);
        }
        let header_bytes = header.encode();
        let header_hash = ring::digest::digest(&SHA256, &header_bytes);
        let key = schedule.payload_key(header_hash.as_ref());
        let chunk_size = header.chunk_size();
        let mut sealer = Self {
            sender,
            key,
            segment: Context::new(&SHA256),
            chain: [0; 32],
            checkpoints: 0,
            chunks_in_segment: 0,
            segment_chunks: header.segment_chunks(),
            pending_out: Vec::new(),
            chunk_size,
            buf: Vec::with_capacity(chunk_size),
            counter: 0,
            plaintext_total: 0,
            link: crate::ChainLink {
                sequence: options.sequence,
                previous: options.previous,
                header_hash: header_hash
                    .as_ref()
                    .try_into()
                    .map_err(|_| Error::Internal("SHA-256 is 32 bytes"))?,
            },
        };
        let mut out = header_bytes;
        // Checkpoint 0 covers the header: a reader refuses a forged header before any chunk.
        sealer.sign_checkpoint(header_hash.as_ref(), false, &mut out);
        sealer.append(&prelude, &mut out)?;
        sealer.pending_out = out;
        Ok(sealer)
    }

    /// This envelope's chain link: its sequence, the previous hash it names and its own
    /// [`Header::link_hash`]. Once the header has left the sealer (the first
    /// [`update`](Self::update), [`checkpoint`](Self::checkpoint) or finish), record it in the
    /// sender's state ([`toyseal_core::SequenceStore::record_sent`]) before the envelope leaves
    /// the device: the next envelope names this hash as its previous.
    pub fn link(&self) -> crate::ChainLink {
        self.link
    }

    /// Appends the checkpoint record for a segment with this digest.
    fn sign_checkpoint(&mut self, digest: &[u8], last: bool, out: &mut Vec<u8>) {
        let chain = chain_value(&self.chain, self.checkpoints, last, digest);
        let signature = self.sender.borrow().sign(&checkpoint_message(&chain));
        out.push(if last {
            RECORD_FINAL
        } else {
            RECORD_CHECKPOINT
        });
        out.extend_from_slice(signature.as_bytes());
        self.chain = chain;
        self.checkpoints += 1;
        self.chunks_in_segment = 0;
    }

    /// Ends the current segment with a checkpoint record.
    fn end_segment(&mut self, last: bool, out: &mut Vec<u8>) {
        let digest = std::mem::replace(&mut self.segment, Context::new(&SHA256)).finish();
        self.sign_checkpoint(digest.as_ref(), last, out);
    }

    /// Encrypts and appends one chunk record (`kind || parts… || zeros up to pad_to`) to `out`;
    /// after a non-last chunk that fills the segment, the segment's checkpoint follows at once.
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
        let record = out.len();
        out.push(if last {
            RECORD_LAST_CHUNK
        } else {
            RECORD_CHUNK
        });
        out.extend_from_slice(&[0; 3]);
        let start = out.len();
        out.push(kind);
        for p in parts {
            out.extend_from_slice(p);
        }
        let len = (out.len() - start).max(pad_to);
        if len > self.chunk_size {
            return Err(Error::Internal(
                "chunk plaintext larger than the chunk size",
            ));
        }
        out.resize(start + len, 0);
        let tag = match out.get_mut(start..) {
            Some(pt) => self.key.seal_chunk(self.counter, last, pt),
            None => return Err(Error::Internal("chunk slice out of range")),
        };
        out.extend_from_slice(&tag);
        // Invariant: len + 16 <= 2^20 + 16 < 2^24, so the length fits 3 bytes.
        let ct_len = (len + tag.len()) as u32;
        out.get_mut(record + 1..record + 4)
            .ok_or(Error::Internal("record header out of range"))?
            .copy_from_slice(&ct_len.to_be_bytes()[1..]);
        self.segment.update(
            out.get(record..)
                .ok_or(Error::Internal("record out of range"))?,
        );
        self.counter += 1;
        self.plaintext_total += len as u64;
        self.chunks_in_segment += 1;
        if !last && self.chunks_in_segment == self.segment_chunks {
            self.end_segment(false, out);
        }
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

    /// Ends the current segment now: seals any buffered content as a short chunk and appends
    /// a signed checkpoint, so an opener can release everything sealed so far. For live audio,
    /// call it on a timer ("every released second proved the toy's"); a no-op when nothing was
    /// sealed since the last checkpoint. Each call costs one signature; a short chunk reveals
    /// how much content the interval held (use a constant-bit-rate codec when that matters).
    pub fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if !self.pending_out.is_empty() {
            out.append(&mut self.pending_out);
        }
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.emit(KIND_DATA, &[&buf], 0, false, out)?;
            self.buf = buf;
            self.buf.clear();
        }
        if self.chunks_in_segment > 0 {
            self.end_segment(false, out);
        }
        Ok(())
    }

    /// Writes the END chunk, Padmé padding and the final checkpoint, all into `out`.
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
    pub fn finish_in_steps(mut self, out: &mut Vec<u8>) -> Result<Finishing<I>, Error> {
        if !self.pending_out.is_empty() {
            out.append(&mut self.pending_out);
        }
        let c = self.chunk_size as u64;
        // buf holds at most chunk_size - 2 bytes: a full body would have been emitted.
        let mut end = std::mem::take(&mut self.buf);
        end.push(END_MARKER);
        let minimal = self.plaintext_total + 1 + end.len() as u64;
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
    /// The envelope is complete (the final checkpoint has been written).
    Complete,
}

/// The end of an envelope, written one chunk at a time: the END chunk, each padding chunk,
/// then the final checkpoint. Memory stays bounded by one chunk whatever the padding.
pub struct Finishing<I = Arc<DeviceIdentity>> {
    sealer: Sealer<I>,
    end: Option<(Vec<u8>, usize)>,
    remaining: u64,
    signed: bool,
}

impl<I: Borrow<DeviceIdentity>> Finishing<I> {
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
            self.sealer.end_segment(true, out);
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

pub(crate) fn sealed_len_hint(content: usize, recipients: usize) -> usize {
    content + content / 8 + 4096 + recipients * crate::format::STANZA_LEN
}
