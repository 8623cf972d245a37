//! Opening: a streaming opener with bounded memory, and a one-shot helper.
//!
//! The opener releases the content of each non-final chunk once its AEAD tag verifies, so
//! playback can start early; but [`Opener::finish`] is the only way to learn that the stream
//! was complete and signed by the sender, and the final chunk's content is released only after
//! that signature has verified. A truncated or forged envelope therefore never yields its
//! complete content, and never an `Opened`.

use crate::format::{END_MARKER, KIND_DATA, KIND_END, KIND_PAD, PAYLOAD_INFO, signed_message};
use crate::framer::{Framer, Step};
use crate::metadata::MAX_PRELUDE_LEN;
use crate::stream::StreamKey;
use crate::wrap::unwrap;
use crate::{Error, Metadata};
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity};

/// Default size limit for an envelope being opened or verified (16 GiB).
pub const DEFAULT_SIZE_LIMIT: u64 = 16 << 30;

/// Limits applied while reading an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    size_limit: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            size_limit: DEFAULT_SIZE_LIMIT,
        }
    }
}

impl OpenOptions {
    /// Refuses envelopes longer than `bytes` (checked while streaming, before reading more).
    pub fn with_size_limit(mut self, bytes: u64) -> Self {
        self.size_limit = bytes;
        self
    }
    /// The size limit in force.
    pub fn size_limit(&self) -> u64 {
        self.size_limit
    }
}

/// What a successful open proves: the sender (verified signature, trusted), the metadata, and
/// the routing facts of the header.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Opened {
    /// The verified sender.
    pub sender: PublicIdentity,
    /// The metadata sealed with the content.
    pub metadata: Metadata,
    /// The family named in the header, if any.
    pub family: Option<FamilyId>,
    /// The roster version named in the header (0: none).
    pub roster_version: u64,
    /// Number of content bytes released.
    pub content_len: u64,
}

/// Decodes the content stream: prelude, content, END marker, padding.
#[derive(Default)]
struct Content {
    prelude: Vec<u8>,
    metadata: Option<Metadata>,
    seen_end: bool,
    released: u64,
}

impl Content {
    fn feed(&mut self, mut data: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), Error> {
        while self.metadata.is_none() {
            let need = match self.prelude.as_slice() {
                [hi, lo, ..] => {
                    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                    if len > MAX_PRELUDE_LEN {
                        return Err(Error::Decrypt);
                    }
                    2 + len
                }
                _ => 2,
            };
            if self.prelude.len() == need {
                let body = self.prelude.get(2..).unwrap_or_default();
                self.metadata = Some(Metadata::decode(body).map_err(|_| Error::Decrypt)?);
                break;
            }
            if data.is_empty() {
                return Ok(());
            }
            let take = (need - self.prelude.len()).min(data.len());
            let (now, rest) = data.split_at(take);
            self.prelude.extend_from_slice(now);
            data = rest;
        }
        self.released += data.len() as u64;
        if !data.is_empty() {
            out(data);
        }
        Ok(())
    }

    /// Processes one decrypted chunk.
    fn chunk(&mut self, pt: &[u8], last: bool, out: &mut dyn FnMut(&[u8])) -> Result<(), Error> {
        let (&kind, body) = pt.split_first().ok_or(Error::Decrypt)?;
        match kind {
            KIND_DATA if !self.seen_end && !last => self.feed(body, out),
            KIND_END if !self.seen_end => {
                let end = body.iter().rposition(|&b| b != 0).ok_or(Error::Decrypt)?;
                if body.get(end) != Some(&END_MARKER) {
                    return Err(Error::Decrypt);
                }
                self.seen_end = true;
                self.feed(body.get(..end).ok_or(Error::Decrypt)?, out)
            }
            KIND_PAD if self.seen_end && body.iter().all(|&b| b == 0) => Ok(()),
            _ => Err(Error::Decrypt),
        }
    }
}

/// A streaming opener. Push ciphertext with [`push`](Self::push) in pieces of any size; drain
/// the content it appends to your buffer; call [`finish`](Self::finish) at end of input.
pub struct Opener<'a> {
    me: &'a DeviceIdentity,
    trusted: &'a [PublicIdentity],
    framer: Framer,
    key: Option<StreamKey>,
    content: Content,
}

impl<'a> Opener<'a> {
    /// Starts opening an envelope addressed to `me`, accepting only senders in `trusted`.
    pub fn new(
        me: &'a DeviceIdentity,
        trusted: &'a [PublicIdentity],
        options: OpenOptions,
    ) -> Self {
        Self {
            me,
            trusted,
            framer: Framer::new(options.size_limit),
            key: None,
            content: Content::default(),
        }
    }

    /// Feeds ciphertext; appends any content it authenticates to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.push_with(input, |content| out.extend_from_slice(content))
    }

    /// Feeds ciphertext; hands each piece of authenticated content to `sink`, straight from
    /// the decryption buffer (no copy into an intermediate `Vec`).
    pub fn push_with(&mut self, input: &[u8], mut sink: impl FnMut(&[u8])) -> Result<(), Error> {
        let r = self.push_inner(input, &mut sink);
        if r.is_err() {
            self.framer.close();
        }
        r
    }

    fn push_inner(&mut self, mut input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), Error> {
        loop {
            match self.framer.step(&mut input)? {
                Step::NeedMore => return Ok(()),
                Step::Header => {
                    let parsed = self.framer.parsed().ok_or(Error::StreamClosed)?;
                    // Trust is decided before any content is released.
                    if !self.trusted.contains(&parsed.header.sender) {
                        return Err(Error::UntrustedSender);
                    }
                    let file_key = unwrap(&parsed.fixed, &parsed.header.stanzas, self.me)?;
                    self.key = Some(StreamKey::derive(
                        file_key.as_ref(),
                        &parsed.header.payload_nonce,
                        &[PAYLOAD_INFO, parsed.header_hash.as_ref()],
                    ));
                }
                Step::Chunk => {
                    let key = self.key.as_ref().ok_or(Error::StreamClosed)?;
                    let (counter, ct, _) = self.framer.chunk_mut().ok_or(Error::StreamClosed)?;
                    let pt = key
                        .open_chunk(counter, false, ct)
                        .map_err(|_| Error::Decrypt)?;
                    self.content.chunk(pt, false, out)?;
                }
            }
        }
    }

    /// Ends the input. Verifies the sender's signature over the whole envelope, then decrypts
    /// the final chunk and appends its content to `out`. Only an `Ok` here means the content
    /// is complete and from the sender.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<Opened, Error> {
        let key = self.key.take().ok_or(Error::Truncated)?;
        let tail = self.framer.finish()?;
        let header = &tail.parsed.header;
        header
            .sender
            .verify(&signed_message(tail.digest.as_ref()), &tail.signature)
            .map_err(|_| Error::Signature)?;
        let pt = key
            .open_chunk(tail.counter, true, tail.final_ct)
            .map_err(|_| Error::Decrypt)?;
        let mut last = Vec::with_capacity(pt.len());
        self.content
            .chunk(pt, true, &mut |d: &[u8]| last.extend_from_slice(d))?;
        let metadata = self.content.metadata.take().ok_or(Error::Decrypt)?;
        if !self.content.seen_end {
            return Err(Error::Decrypt);
        }
        out.extend_from_slice(&last);
        Ok(Opened {
            sender: header.sender.clone(),
            metadata,
            family: header.family,
            roster_version: header.roster_version,
            content_len: self.content.released,
        })
    }
}

/// Opens a whole envelope in memory. Returns the content only if everything verified.
pub fn open(
    me: &DeviceIdentity,
    trusted: &[PublicIdentity],
    envelope: &[u8],
    options: OpenOptions,
) -> Result<(Vec<u8>, Opened), Error> {
    let mut opener = Opener::new(me, trusted, options);
    let mut content = Vec::with_capacity(envelope.len());
    opener.push(envelope, &mut content)?;
    let opened = opener.finish(&mut content)?;
    Ok((content, opened))
}
