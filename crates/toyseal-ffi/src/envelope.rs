//! Opening and sealing voice envelopes (docs/spec/envelope.md). Opening releases only content
//! that a checkpoint signature of a roster member has proved.

use crate::{PublicKey, ToysealError};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use toyseal_core::DeviceIdentity;
use toyseal_envelope::{Header, MAX_HEADER_LEN, OpenOptions, Opened, Opener};
use toyseal_roster::Roster;

/// What a recording is, sealed inside the envelope with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct EnvelopeMetadata {
    /// Media type, e.g. `audio/ogg`.
    #[uniffi(default = None)]
    pub content_type: Option<String>,
    /// Codec, e.g. `opus`.
    #[uniffi(default = None)]
    pub codec: Option<String>,
    /// Duration in milliseconds.
    #[uniffi(default = None)]
    pub duration_ms: Option<u32>,
}

impl EnvelopeMetadata {
    pub(crate) fn into_core(self) -> toyseal_envelope::Metadata {
        let mut m = toyseal_envelope::Metadata::default();
        if let Some(t) = self.content_type {
            m = m.with_content_type(t);
        }
        if let Some(c) = self.codec {
            m = m.with_codec(c);
        }
        if let Some(d) = self.duration_ms {
            m = m.with_duration_ms(d);
        }
        m
    }

    fn of(m: &toyseal_envelope::Metadata) -> Self {
        Self {
            content_type: m.content_type.clone(),
            codec: m.codec.clone(),
            duration_ms: m.duration_ms,
        }
    }
}

/// What a completed open proved about an envelope.
#[derive(Debug, uniffi::Record)]
pub struct EnvelopeInfo {
    /// The verified sender (a member of the roster that opened it).
    pub sender: Arc<PublicKey>,
    /// The sealed metadata.
    pub metadata: EnvelopeMetadata,
    /// The sender's signed sequence number.
    pub sequence: u64,
    /// The roster version the sender sealed under.
    pub roster_version: u64,
    /// Creation time the sender signed (Unix seconds, 0 if none).
    pub created: u64,
    /// Content bytes released.
    pub content_len: u64,
}

impl EnvelopeInfo {
    fn of(o: &Opened) -> Self {
        Self {
            sender: PublicKey::wrap(o.sender.clone()),
            metadata: EnvelopeMetadata::of(&o.metadata),
            sequence: o.sequence,
            roster_version: o.roster_version,
            created: o.created,
            content_len: o.content_len,
        }
    }
}

/// A whole envelope, opened and verified.
#[derive(Debug, uniffi::Record)]
pub struct OpenedEnvelope {
    /// The content.
    pub content: Vec<u8>,
    /// What was proved about it.
    pub info: EnvelopeInfo,
}

impl OpenedEnvelope {
    pub(crate) fn new(content: Vec<u8>, opened: &Opened) -> Self {
        Self {
            content,
            info: EnvelopeInfo::of(opened),
        }
    }
}

enum Command {
    Push(Vec<u8>, SyncSender<Result<Vec<u8>, ToysealError>>),
    Finish(SyncSender<Result<Opened, ToysealError>>),
}

/// Opens one envelope in pieces (a long recording as it downloads or arrives over BLE).
/// [`push`](Self::push) returns only content a checkpoint signature has proved; call
/// [`finish`](Self::finish) at the end: only then is the content known to be complete.
/// After an error or `finish`, every call fails with `WrongState`.
#[derive(uniffi::Object)]
pub struct EnvelopeOpener {
    commands: Mutex<Option<SyncSender<Command>>>,
}

impl std::fmt::Debug for EnvelopeOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeOpener").finish_non_exhaustive()
    }
}

impl EnvelopeOpener {
    /// The borrowing `Opener` lives on its own thread, which owns the identity and the roster
    /// it borrows from (the crate forbids `unsafe`, so no self-referential object); the thread
    /// ends with `finish`, an error, or when the object is dropped.
    pub(crate) fn start(me: Arc<DeviceIdentity>, roster: Roster) -> Arc<Self> {
        let (tx, rx) = sync_channel::<Command>(0);
        std::thread::spawn(move || run(&me, &roster, &rx));
        Arc::new(Self {
            commands: Mutex::new(Some(tx)),
        })
    }

    fn take_sender(&self, keep: bool) -> Result<SyncSender<Command>, ToysealError> {
        let mut guard = self
            .commands
            .lock()
            .map_err(|_| ToysealError::state("the opener failed earlier"))?;
        let tx = if keep { guard.clone() } else { guard.take() };
        tx.ok_or_else(|| ToysealError::state("the opener is finished"))
    }

    fn closed(&self) {
        if let Ok(mut g) = self.commands.lock() {
            *g = None;
        }
    }
}

#[uniffi::export]
impl EnvelopeOpener {
    /// Feeds the next ciphertext bytes; returns the content they completed and proved (often
    /// empty: content is released a checkpoint at a time).
    pub fn push(&self, ciphertext: Vec<u8>) -> Result<Vec<u8>, ToysealError> {
        let tx = self.take_sender(true)?;
        let (reply, answer) = sync_channel(1);
        let gone = || ToysealError::state("the opener has stopped");
        tx.send(Command::Push(ciphertext, reply))
            .map_err(|_| gone())?;
        let r = answer.recv().map_err(|_| gone())?;
        if r.is_err() {
            self.closed();
        }
        r
    }

    /// Ends the input: succeeds only if the final checkpoint verified, i.e. everything pushed
    /// so far was complete and the sender's.
    pub fn finish(&self) -> Result<EnvelopeInfo, ToysealError> {
        let tx = self.take_sender(false)?;
        let (reply, answer) = sync_channel(1);
        let gone = || ToysealError::state("the opener has stopped");
        tx.send(Command::Finish(reply)).map_err(|_| gone())?;
        let opened = answer.recv().map_err(|_| gone())??;
        Ok(EnvelopeInfo::of(&opened))
    }
}

/// The opener's thread: one borrowing `Opener` over the owned identity and roster.
fn run(me: &DeviceIdentity, roster: &Roster, commands: &Receiver<Command>) {
    let mut opener =
        Opener::new(me, roster, OpenOptions::default()).check_recipients(roster.members());
    // The header is checked against the roster's family before any content is handed out
    // (what `Roster::open` checks up front for a whole envelope).
    let mut prefix: Option<Vec<u8>> = Some(Vec::new());
    while let Ok(cmd) = commands.recv() {
        match cmd {
            Command::Push(input, reply) => {
                let r = push(&mut opener, &mut prefix, roster, &input);
                let failed = r.is_err();
                // The app may have gone away; nothing to do then.
                let _ = reply.send(r);
                if failed {
                    return;
                }
            }
            Command::Finish(reply) => {
                let r = if prefix.is_some() {
                    Err(ToysealError::Truncated)
                } else {
                    opener.finish().map_err(ToysealError::from)
                };
                let _ = reply.send(r);
                return;
            }
        }
    }
}

fn push(
    opener: &mut Opener<'_, Roster>,
    prefix: &mut Option<Vec<u8>>,
    roster: &Roster,
    input: &[u8],
) -> Result<Vec<u8>, ToysealError> {
    let mut out = Vec::new();
    opener.push(input, &mut out)?;
    if let Some(p) = prefix {
        let room = MAX_HEADER_LEN.saturating_sub(p.len());
        p.extend(input.iter().take(room));
        match Header::parse(p) {
            Ok((header, _)) => {
                if header.family() != Some(roster.family()) {
                    return Err(toyseal_roster::Error::WrongFamily.into());
                }
                *prefix = None;
            }
            // Not all of the header yet; the opener has released nothing without it.
            Err(_) if out.is_empty() => {}
            Err(_) => {
                return Err(ToysealError::Internal {
                    reason: "content released before its header parsed".into(),
                });
            }
        }
    }
    Ok(out)
}
