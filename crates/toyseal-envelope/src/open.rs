//! Opening: a streaming opener with bounded memory, and a one-shot helper.
//!
//! Content is released only up to the last verified checkpoint: the opener decrypts each chunk
//! as it arrives but holds its content back until the sender's signed checkpoint after it has
//! verified (docs/spec/envelope.md §4). A forged envelope — an outsider naming the toy as sender,
//! a co-recipient re-encrypting under the toy's header — therefore releases nothing, and a
//! truncated one releases only what the sender proved. [`Opener::finish`] is the only way to
//! learn that the stream was complete.

use crate::format::{END_MARKER, KIND_DATA, KIND_END, KIND_PAD};
use crate::framer::{Framer, Step};
use crate::metadata::MAX_PRELUDE_LEN;
use crate::schedule::KeySchedule;
use crate::senders::TrustedSenders;
use crate::stream::StreamKey;
use crate::wrap::{check_stanzas, unwrap};
use crate::{Error, Metadata};
use std::borrow::Borrow;
use std::sync::Arc;
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

/// What a successful open proves: the sender (verified signatures, trusted), the metadata, and
/// the signed facts of the header. Only the opener constructs it.
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
    /// The sender's sequence number (signed).
    pub sequence: u64,
    /// The link hash of the sender's previous envelope (signed; all zero for its first).
    pub previous: [u8; 32],
    /// This envelope's own link hash (SHA-256 of its header): feed `(sender, link)` to the
    /// receive state ([`crate::ReceiveState`]) so later openings can connect the chain.
    pub header_hash: [u8; 32],
    /// When the sender sealed it, Unix seconds by its clock (signed).
    pub created: u64,
    /// Number of content bytes released.
    pub content_len: u64,
}

impl Opened {
    /// The envelope's place on its sender's chain (for [`crate::ReceiveState::observe`]).
    pub fn link(&self) -> crate::ChainLink {
        crate::ChainLink {
            sequence: self.sequence,
            previous: self.previous,
            header_hash: self.header_hash,
        }
    }
}

/// Decodes the content stream: prelude, content, END marker, padding.
#[derive(Default)]
pub(crate) struct Content {
    prelude: Vec<u8>,
    pub(crate) metadata: Option<Metadata>,
    pub(crate) seen_end: bool,
    pub(crate) released: u64,
}

impl Content {
    fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
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
        out.extend_from_slice(data);
        Ok(())
    }

    /// Processes one decrypted chunk.
    pub(crate) fn chunk(&mut self, pt: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), Error> {
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
///
/// Content appears only at checkpoints (by default every 1 MiB of content, or whenever a live
/// sender checkpoints), each piece proved the sender's; the opener holds at most one segment
/// (the header's `segment_size`) back.
///
/// The opener owns what it needs: `P` is the sender policy (a list of identities, a family
/// roster, or a reference to one), `I` how it holds this device's identity (an
/// `Arc<DeviceIdentity>` by default, or a plain `&DeviceIdentity`), and the recipients of
/// [`check_recipients`](Self::check_recipients) are copied in.
pub struct Opener<P = Vec<PublicIdentity>, I = Arc<DeviceIdentity>> {
    me: I,
    trusted: P,
    recipients: Vec<PublicIdentity>,
    family: Option<FamilyId>,
    pub(crate) framer: Framer,
    pub(crate) key: Option<StreamKey>,
    content: Content,
    held: Vec<u8>,
}

impl<P: TrustedSenders, I: Borrow<DeviceIdentity>> Opener<P, I> {
    /// Starts opening an envelope addressed to `me`, accepting only senders that `trusted`
    /// admits (a list of identities, or a family roster; owned or borrowed).
    pub fn new(me: I, trusted: P, options: OpenOptions) -> Self {
        Self {
            me,
            trusted,
            recipients: Vec::new(),
            family: None,
            framer: Framer::new(options.size_limit),
            key: None,
            content: Content::default(),
            held: Vec::new(),
        }
    }

    /// Also proves that every recipient in `recipients` that the header lists received the
    /// same file key as this device (the re-encryption check of docs/spec/envelope.md §3.2):
    /// a sender that wrapped different keys to different recipients is refused. Costs one HPKE
    /// encapsulation per listed recipient; pass the family's members (the roster).
    pub fn check_recipients(mut self, recipients: &[PublicIdentity]) -> Self {
        self.recipients = recipients.to_vec();
        self
    }

    /// Also refuses an envelope whose signed header names another family than `family` (or
    /// none): [`Error::WrongFamily`], decided with the sender's trust, before any key is
    /// unwrapped or content released. A roster's opener sets it to the roster's family.
    pub fn require_family(mut self, family: FamilyId) -> Self {
        self.family = Some(family);
        self
    }

    /// Feeds ciphertext; appends any content that a checkpoint has proved to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.push_with(input, |content| out.extend_from_slice(content))
    }

    /// Feeds ciphertext; hands each proved piece of content to `sink` (one slice per
    /// checkpoint, straight from the opener's buffer).
    pub fn push_with(&mut self, input: &[u8], mut sink: impl FnMut(&[u8])) -> Result<(), Error> {
        let r = self.push_inner(input, &mut sink);
        if r.is_err() {
            self.framer.close();
            self.held.clear();
        }
        r
    }

    fn push_inner(&mut self, mut input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), Error> {
        loop {
            match self.framer.step(&mut input)? {
                Step::NeedMore => return Ok(()),
                Step::Header => {
                    let parsed = self.framer.parsed().ok_or(Error::StreamClosed)?;
                    let header = &parsed.header;
                    // The header's checkpoint has verified: the sender is proved. Trust is
                    // decided before any key is unwrapped or content released.
                    let link = crate::ChainLink {
                        sequence: header.sequence,
                        previous: header.previous,
                        header_hash: parsed
                            .header_hash
                            .as_ref()
                            .try_into()
                            .map_err(|_| Error::Internal("SHA-256 is 32 bytes"))?,
                    };
                    if !self.trusted.admits(&header.sender, &link) {
                        return Err(Error::UntrustedSender);
                    }
                    if self.family.is_some_and(|f| header.family != Some(f)) {
                        return Err(Error::WrongFamily);
                    }
                    let file_key = unwrap(&parsed.fixed, &header.stanzas, self.me.borrow())?;
                    let schedule = KeySchedule::new(&file_key, &header.payload_nonce);
                    // Key commitment: a file key other than the one the signed header commits
                    // to is refused, so every recipient that opens sees the same payload.
                    let commitment = schedule.commitment();
                    if !bool::from(subtle::ConstantTimeEq::ct_eq(
                        &commitment[..],
                        &header.commitment[..],
                    )) {
                        return Err(Error::Decrypt);
                    }
                    check_stanzas(
                        &parsed.fixed,
                        &header.stanzas,
                        &self.recipients,
                        &file_key,
                        &schedule,
                    )?;
                    self.key = Some(schedule.payload_key(parsed.header_hash.as_ref()));
                    // One segment is the most the opener holds back: reserve it once, so the
                    // buffer never doubles past it (the peak heap of a streaming open).
                    self.held.reserve_exact(header.segment_size());
                }
                Step::Chunk => {
                    let key = self.key.as_ref().ok_or(Error::StreamClosed)?;
                    let (counter, last, ct, _) =
                        self.framer.chunk_mut().ok_or(Error::StreamClosed)?;
                    let pt = key
                        .open_chunk(counter, last, ct)
                        .map_err(|_| Error::Decrypt)?;
                    self.content.chunk(pt, last, &mut self.held)?;
                }
                Step::Checkpoint { last } => {
                    if last && (self.content.metadata.is_none() || !self.content.seen_end) {
                        return Err(Error::Decrypt);
                    }
                    if !self.held.is_empty() {
                        out(&self.held);
                        self.held.clear();
                    }
                }
            }
        }
    }

    /// Ends the input. `Ok` only if the final checkpoint verified: the content released is
    /// complete and the sender's. A stream that ended early is [`Error::Truncated`] (what the
    /// earlier checkpoints proved has been released; nothing after them).
    pub fn finish(mut self) -> Result<Opened, Error> {
        let parsed = self.framer.finish()?;
        let header = &parsed.header;
        let metadata = self.content.metadata.take().ok_or(Error::Decrypt)?;
        Ok(Opened {
            sender: header.sender.clone(),
            metadata,
            family: header.family,
            roster_version: header.roster_version,
            sequence: header.sequence,
            previous: header.previous,
            header_hash: parsed
                .header_hash
                .as_ref()
                .try_into()
                .map_err(|_| Error::Internal("SHA-256 is 32 bytes"))?,
            created: header.created,
            content_len: self.content.released,
        })
    }
}

/// Opens a whole envelope in memory. Returns the content only if everything verified.
pub fn open<P: TrustedSenders + ?Sized>(
    me: &DeviceIdentity,
    trusted: &P,
    envelope: &[u8],
    options: OpenOptions,
) -> Result<(Vec<u8>, Opened), Error> {
    let mut opener = Opener::new(me, trusted, options);
    let mut content = Vec::with_capacity(envelope.len());
    opener.push(envelope, &mut content)?;
    let opened = opener.finish()?;
    Ok((content, opened))
}
