//! Opening and sealing voice envelopes (docs/spec/envelope.md). Opening releases only content
//! that a checkpoint signature of a roster member has proved.

use crate::{PublicKey, ToysealError};
use std::sync::{Arc, Mutex};
use toyseal_core::DeviceIdentity;
use toyseal_envelope::{OpenOptions, Opened, Opener};
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
    /// The header hash of the sender's previous envelope (32 bytes, all zero for its first).
    pub previous: Vec<u8>,
    /// This envelope's header hash (32 bytes): its link on the sender's chain.
    pub header_hash: Vec<u8>,
    /// The roster version the sender sealed under.
    pub roster_version: u64,
    /// Creation time the sender signed (Unix seconds, 0 if none).
    pub created: u64,
    /// Content bytes released.
    pub content_len: u64,
}

impl EnvelopeInfo {
    pub(crate) fn of(o: &Opened) -> Self {
        Self {
            sender: PublicKey::wrap(o.sender.clone()),
            metadata: EnvelopeMetadata::of(&o.metadata),
            sequence: o.sequence,
            previous: o.previous.to_vec(),
            header_hash: o.header_hash.to_vec(),
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

/// Opens one envelope in pieces (a long recording as it downloads or arrives over BLE).
/// [`push`](Self::push) returns only content a checkpoint signature has proved; call
/// [`finish`](Self::finish) at the end: only then is the content known to be complete.
/// After an error or `finish`, every call fails with `WrongState`.
#[derive(uniffi::Object)]
pub struct EnvelopeOpener {
    /// The roster's opener (it owns the identity and its copy of the roster); `None` once
    /// finished or failed.
    opener: Mutex<Option<Opener<Roster>>>,
}

impl std::fmt::Debug for EnvelopeOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeOpener").finish_non_exhaustive()
    }
}

impl EnvelopeOpener {
    /// `Roster::opener`: the family's rules (admitted senders, the re-encryption check over
    /// the members, the header's family) are the roster's.
    pub(crate) fn start(me: Arc<DeviceIdentity>, roster: &Roster) -> Arc<Self> {
        Arc::new(Self {
            opener: Mutex::new(Some(roster.opener(me, OpenOptions::default()))),
        })
    }
}

#[uniffi::export]
impl EnvelopeOpener {
    /// Feeds the next ciphertext bytes; returns the content they completed and proved (often
    /// empty: content is released a checkpoint at a time).
    pub fn push(&self, ciphertext: Vec<u8>) -> Result<Vec<u8>, ToysealError> {
        let mut guard = self
            .opener
            .lock()
            .map_err(|_| ToysealError::state("the opener failed earlier"))?;
        let opener = guard
            .as_mut()
            .ok_or_else(|| ToysealError::state("the opener is finished"))?;
        let mut out = Vec::new();
        if let Err(e) = opener.push(&ciphertext, &mut out) {
            *guard = None;
            return Err(e.into());
        }
        Ok(out)
    }

    /// Ends the input: succeeds only if the final checkpoint verified, i.e. everything pushed
    /// so far was complete and the sender's.
    pub fn finish(&self) -> Result<EnvelopeInfo, ToysealError> {
        let opener = self
            .opener
            .lock()
            .map_err(|_| ToysealError::state("the opener failed earlier"))?
            .take()
            .ok_or_else(|| ToysealError::state("the opener is finished"))?;
        let opened = opener.finish()?;
        Ok(EnvelopeInfo::of(&opened))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use toyseal_core::{FamilyId, OsRng, Role};
    use toyseal_envelope::SealOptions;
    use toyseal_roster::RosterProposal;

    fn family() -> (Arc<DeviceIdentity>, Arc<DeviceIdentity>, Roster) {
        let mum = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
        let toy = Arc::new(DeviceIdentity::generate(Role::Toy, &mut OsRng));
        let members = vec![mum.public().clone(), toy.public().clone()];
        let recovery = toyseal_roster::RecoveryKey::generate(&mut OsRng).unwrap();
        let mut v1 =
            RosterProposal::founding(FamilyId::generate(&mut OsRng), members, *recovery.public())
                .unwrap()
                .sign(&mum);
        v1.cosign(&toy);
        v1.cosign_recovery(&recovery);
        (mum, toy, Roster::verify_founding(v1).unwrap())
    }

    /// The opener is a plain object: pieces in, proved content out, then closed for good.
    #[test]
    fn the_opener_opens_in_pieces_and_is_closed_after_finish_or_failure() {
        let (mum, toy, roster) = family();
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let envelope = roster
            .seal(
                &toy,
                SealOptions::default().with_sequence(1),
                &content,
                &mut OsRng,
            )
            .unwrap();
        let opener = EnvelopeOpener::start(Arc::clone(&mum), &roster);
        let mut out = Vec::new();
        for piece in envelope.chunks(10_000) {
            out.extend(opener.push(piece.to_vec()).unwrap());
        }
        let info = opener.finish().unwrap();
        assert_eq!(info.content_len, content.len() as u64);
        assert!(out == content);
        assert!(matches!(
            opener.push(vec![0]),
            Err(ToysealError::WrongState { .. })
        ));
        assert!(matches!(
            opener.finish(),
            Err(ToysealError::WrongState { .. })
        ));

        // Truncated: finish before the end is refused.
        let opener = EnvelopeOpener::start(Arc::clone(&mum), &roster);
        opener.push(envelope[..100].to_vec()).unwrap();
        assert!(matches!(opener.finish(), Err(ToysealError::Truncated)));

        // Another family's envelope, from a member: refused as before, then closed.
        let foreign = toyseal_envelope::seal(
            &toy,
            &[mum.public().clone()],
            &SealOptions::default().with_family(FamilyId::generate(&mut OsRng), 1),
            b"x",
            &mut OsRng,
        )
        .unwrap();
        let opener = EnvelopeOpener::start(mum, &roster);
        let r = opener.push(foreign);
        assert!(
            matches!(&r, Err(ToysealError::InvalidArgument { reason }) if reason.contains("another family")),
            "{r:?}"
        );
        assert!(matches!(
            opener.push(vec![0]),
            Err(ToysealError::WrongState { .. })
        ));
    }
}
