//! The family roster (docs/spec/roster.md): proposing, signing and co-signing versions,
//! verifying chains, and joining through an anchored invitation. A [`Roster`] exists only as
//! the result of a verification, so holding one is the proof.

use crate::envelope::{EnvelopeMetadata, EnvelopeOpener, OpenedEnvelope};
use crate::{Identity, PublicKey, ToysealError};
use std::sync::Arc;
use toyseal_core::{FamilyId, OsRng};
use toyseal_envelope::{OpenOptions, SealOptions};

/// Generates a fresh family id (32 hex digits) for a new family's version 1.
#[uniffi::export]
pub fn generate_family_id() -> String {
    FamilyId::generate(&mut OsRng).to_string()
}

/// The header hash of an envelope (SHA-256 of its header, docs/spec/envelope.md §5.1): its link
/// on the sender's chain. A sender keeps it with the sequence as its sender state and passes it
/// as `previous` to its next seal. The header is parsed, not verified (use it for what this
/// device sealed itself).
#[uniffi::export]
pub fn envelope_header_hash(envelope: Vec<u8>) -> Result<Vec<u8>, ToysealError> {
    Ok(toyseal_envelope::inspect(&envelope)?.link_hash().to_vec())
}

/// A previous-envelope hash from the bindings: 32 bytes, or empty for none (a first envelope).
pub(crate) fn previous_hash(previous: &[u8]) -> Result<[u8; 32], ToysealError> {
    match previous.len() {
        0 => Ok([0; 32]),
        _ => previous
            .try_into()
            .map_err(|_| ToysealError::invalid("a previous-envelope hash is 32 bytes (or empty)")),
    }
}

fn family_id(text: &str) -> Result<FamilyId, ToysealError> {
    text.trim()
        .parse()
        .map_err(|_| ToysealError::invalid("a family id is 32 hex digits"))
}

fn members(keys: &[Arc<PublicKey>]) -> Vec<toyseal_core::PublicIdentity> {
    keys.iter().map(|k| k.inner.clone()).collect()
}

/// The family's recovery key (docs/spec/roster.md §1.2): generated on the founding phone,
/// printed once for the family to keep offline, scanned back to sign a change (adding a
/// phone, replacing a lost one) and then forgotten. It is one authority in a quorum
/// (docs/spec/roster.md §3.3) and receives nothing.
#[derive(uniffi::Object)]
pub struct RecoveryKey {
    pub(crate) inner: toyseal_roster::RecoveryKey,
}

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryKey")
            .field("signer_id", &self.inner.public().id())
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl RecoveryKey {
    /// A new random recovery key (at founding, or to replace the family's).
    #[uniffi::constructor]
    pub fn generate() -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: toyseal_roster::RecoveryKey::generate(&mut OsRng)?,
        }))
    }

    /// Parses the printed form (`TOYSEAL-RECOVERY-1…`, either case, as scanned or typed).
    #[uniffi::constructor]
    pub fn from_printable(text: String) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: toyseal_roster::RecoveryKey::from_printable(&text)?,
        }))
    }

    /// The printed form: a **secret**. Show or print it once for the family to keep, then drop
    /// this object; never store it on the phone.
    pub fn export_printable(&self) -> Result<String, ToysealError> {
        Ok(self.inner.export_printable()?.to_string())
    }

    /// The id its signatures carry in a roster (32 hex digits).
    pub fn signer_id(&self) -> String {
        self.inner.public().id().to_string()
    }
}

/// What a roster change needs a quorum for (docs/spec/roster.md §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeClass {
    /// Only removes members or toys (two guardians, a guardian and the recovery key, or a
    /// guardian and the toy).
    Removal,
    /// Adds anyone, or changes a guardian, a toy, a role or the recovery key (two guardians, a
    /// guardian and the recovery key, or the recovery key and the toy — never a guardian and
    /// the toy).
    Grant,
}

/// An unsigned roster version: what a guardian proposes, then signs.
#[derive(Debug, uniffi::Object)]
pub struct RosterProposal {
    inner: toyseal_roster::RosterProposal,
}

#[uniffi::export]
impl RosterProposal {
    /// Version 1 of a new family (the founding guardian and the toy, at least) with the
    /// family's recovery key, which must co-sign it ([`SignedRoster::cosign_recovery`]).
    #[uniffi::constructor]
    pub fn founding(
        family_id: String,
        members: Vec<Arc<PublicKey>>,
        recovery: Arc<RecoveryKey>,
    ) -> Result<Arc<Self>, ToysealError> {
        let inner = toyseal_roster::RosterProposal::founding(
            self::family_id(&family_id)?,
            self::members(&members),
            *recovery.inner.public(),
        )?;
        Ok(Arc::new(Self { inner }))
    }

    /// The version after `current` with these members (add or remove devices).
    #[uniffi::constructor]
    pub fn next(
        current: Arc<Roster>,
        members: Vec<Arc<PublicKey>>,
    ) -> Result<Arc<Self>, ToysealError> {
        let inner = toyseal_roster::RosterProposal::next(&current.inner, self::members(&members))?;
        Ok(Arc::new(Self { inner }))
    }

    /// The version number it proposes.
    pub fn version(&self) -> u64 {
        self.inner.version()
    }

    /// Records the last envelope the family accepts from a device this version removes: its
    /// sequence and 32-byte header hash (`EnvelopeInfo.headerHash`), normally the newest one
    /// this guardian verified from it. That envelope and its ancestors on the device's chain
    /// stay openable (`Roster.openWithState`); nothing else from it does. Without it, nothing
    /// from the removed device opens.
    pub fn with_last_envelope(
        &self,
        device: Arc<PublicKey>,
        sequence: u64,
        header_hash: Vec<u8>,
    ) -> Result<Arc<Self>, ToysealError> {
        let head: [u8; 32] = header_hash
            .as_slice()
            .try_into()
            .map_err(|_| ToysealError::invalid("a header hash is 32 bytes"))?;
        let inner =
            self.inner
                .clone()
                .with_last_envelope(device.inner.device_id(), sequence, head)?;
        Ok(Arc::new(Self { inner }))
    }

    /// Signs it as `signer` (a guardian of the current version, or a member it adds).
    pub fn sign(&self, signer: Arc<Identity>) -> Arc<SignedRoster> {
        Arc::new(SignedRoster {
            inner: self.inner.clone().sign(&signer.inner),
        })
    }

    /// Signs it with the family's recovery key (e.g. a lost only phone's replacement).
    pub fn sign_with_recovery(&self, key: Arc<RecoveryKey>) -> Arc<SignedRoster> {
        Arc::new(SignedRoster {
            inner: self.inner.clone().sign_with_recovery(&key.inner),
        })
    }
}

/// A roster version with its signatures, as it travels (parsed, not yet trusted).
#[derive(Debug, uniffi::Object)]
pub struct SignedRoster {
    pub(crate) inner: toyseal_roster::SignedRoster,
}

#[uniffi::export]
impl SignedRoster {
    /// Parses the wire form (structure only; verify it with [`Roster`]).
    #[uniffi::constructor]
    pub fn decode(bytes: Vec<u8>) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: toyseal_roster::SignedRoster::decode(&bytes)?,
        }))
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        self.inner.encode()
    }

    /// The version number (not yet verified).
    pub fn version(&self) -> u64 {
        self.inner.proposal().version()
    }

    /// The family id (not yet verified).
    pub fn family_id(&self) -> String {
        self.inner.proposal().family().to_string()
    }

    /// The device ids that signed it (signatures not yet verified).
    pub fn signers(&self) -> Vec<String> {
        self.inner.signers().map(|d| d.to_string()).collect()
    }

    /// This version with `signer`'s signature added (a second guardian completing the quorum).
    pub fn cosign(&self, signer: Arc<Identity>) -> Arc<SignedRoster> {
        let mut inner = self.inner.clone();
        inner.cosign(&signer.inner);
        Arc::new(Self { inner })
    }

    /// This version with the family's recovery key's signature added.
    pub fn cosign_recovery(&self, key: Arc<RecoveryKey>) -> Arc<SignedRoster> {
        let mut inner = self.inner.clone();
        inner.cosign_recovery(&key.inner);
        Arc::new(Self { inner })
    }
}

impl SignedRoster {
    pub(crate) fn wrap(inner: toyseal_roster::SignedRoster) -> Arc<Self> {
        Arc::new(Self { inner })
    }
}

fn chain(versions: &[Arc<SignedRoster>]) -> Vec<toyseal_roster::SignedRoster> {
    versions.iter().map(|s| s.inner.clone()).collect()
}

/// A verified roster version: only the verifying constructors make one.
#[derive(Debug, uniffi::Object)]
pub struct Roster {
    pub(crate) inner: toyseal_roster::Roster,
}

#[uniffi::export]
impl Roster {
    /// Verifies version 1 **as the founding device**: the one that built it and saw the toy
    /// co-sign it over its own session. Every other device verifies what it is handed through
    /// its anchor ([`Roster::verify_anchored_chain`]): a version 1 from a server proves nothing
    /// about whose family it is.
    #[uniffi::constructor]
    pub fn verify_founding(founding: Arc<SignedRoster>) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: toyseal_roster::Roster::verify_founding(founding.inner.clone())?,
        }))
    }

    /// Verifies a chain served by anyone (the cloud) through this device's anchor: refused
    /// unless the chain contains exactly the anchored version (so a server cannot fabricate a
    /// family for a joining device), then verified forward to its newest version.
    #[uniffi::constructor]
    pub fn verify_anchored_chain(
        chain: Vec<Arc<SignedRoster>>,
        anchor: Arc<Anchor>,
    ) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: toyseal_roster::Roster::verify_anchored_chain(
                &self::chain(&chain),
                &anchor.inner,
            )?,
        }))
    }

    /// Verifies `next` (quorum, chain, proofs of possession) against this version.
    pub fn verify_next(&self, next: Arc<SignedRoster>) -> Result<Arc<Roster>, ToysealError> {
        Ok(Arc::new(Self {
            inner: self.inner.verify_next(next.inner.clone())?,
        }))
    }

    /// Verifies `newer` versions in turn after this one (each must follow the previous).
    pub fn advance(&self, newer: Vec<Arc<SignedRoster>>) -> Result<Arc<Roster>, ToysealError> {
        Ok(Arc::new(Self {
            inner: self.inner.advance(&chain(&newer))?,
        }))
    }

    /// Whether `next` already carries the signatures its adoption needs (a quorum of this
    /// version for its change class).
    pub fn has_quorum(&self, next: Arc<SignedRoster>) -> bool {
        self.inner.has_quorum(&next.inner)
    }

    /// The class of the change `next` makes from this version: what to show before signing,
    /// and which quorum it needs.
    pub fn change_class(&self, next: Arc<SignedRoster>) -> ChangeClass {
        match self.inner.change_to(next.inner.proposal()).class() {
            toyseal_roster::ChangeClass::Removal => ChangeClass::Removal,
            _ => ChangeClass::Grant,
        }
    }

    /// The fork check: `RosterFork` when `other` is a version of this family with this
    /// version's number and another hash (the roster was changed without this device).
    pub fn check_same(&self, other: Arc<SignedRoster>) -> Result<(), ToysealError> {
        Ok(self.inner.check_same(&other.inner)?)
    }

    /// The family id.
    pub fn family_id(&self) -> String {
        self.inner.family().to_string()
    }

    /// The version number.
    pub fn version(&self) -> u64 {
        self.inner.version()
    }

    /// The members.
    pub fn members(&self) -> Vec<Arc<PublicKey>> {
        self.inner
            .members()
            .iter()
            .cloned()
            .map(PublicKey::wrap)
            .collect()
    }

    /// This version as it travels.
    pub fn signed(&self) -> Arc<SignedRoster> {
        SignedRoster::wrap(self.inner.signed().clone())
    }

    /// The anchor naming this version (to keep with the device's keys).
    pub fn anchor(&self) -> Arc<Anchor> {
        Arc::new(Anchor {
            inner: toyseal_roster::Anchor::of(self.inner.signed()),
        })
    }

    /// Seals `content` from `sender` to every other member (a reply to the toy), on the
    /// sender's chain (docs/spec/envelope.md §11.2): `sequence` is the sender's next one (the
    /// first is 1; persist it and never reuse one), `previous` the header hash of its previous
    /// envelope ([`envelope_header_hash`]; empty for its first). The server refuses sequence 0,
    /// a re-used sequence and a `previous` that is not its stored predecessor's.
    pub fn seal(
        &self,
        sender: Arc<Identity>,
        content: Vec<u8>,
        metadata: EnvelopeMetadata,
        sequence: u64,
        previous: Vec<u8>,
    ) -> Result<Vec<u8>, ToysealError> {
        let options = SealOptions::default()
            .with_metadata(metadata.into_core())
            .with_sequence(sequence)
            .with_previous(previous_hash(&previous)?);
        Ok(self
            .inner
            .seal(&sender.inner, options, &content, &mut OsRng)?)
    }

    /// Opens a whole envelope of this family addressed to `me`: content only if every
    /// signature verified and the sender is a member.
    pub fn open(
        &self,
        me: Arc<Identity>,
        envelope: Vec<u8>,
    ) -> Result<OpenedEnvelope, ToysealError> {
        let (content, opened) = self
            .inner
            .open(&me.inner, &envelope, OpenOptions::default())?;
        Ok(OpenedEnvelope::new(content, &opened))
    }

    /// A streaming opener for a long recording: push ciphertext as it arrives, get back only
    /// content a checkpoint signature has proved.
    pub fn opener(&self, me: Arc<Identity>) -> Arc<EnvelopeOpener> {
        EnvelopeOpener::start(me.inner.clone(), &self.inner)
    }
}

/// The roster version a joining device trusts without the server (keep it with its keys).
#[derive(Debug, uniffi::Object)]
#[uniffi::export(Display)]
pub struct Anchor {
    pub(crate) inner: toyseal_roster::Anchor,
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[uniffi::export]
impl Anchor {
    /// Parses the text form (`family:version:hash`).
    #[uniffi::constructor]
    pub fn parse(text: String) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: text
                .trim()
                .parse()
                .map_err(|e: toyseal_roster::Error| ToysealError::invalid(e.to_string()))?,
        }))
    }

    /// The family id.
    pub fn family_id(&self) -> String {
        self.inner.family().to_string()
    }

    /// The anchored version number.
    pub fn version(&self) -> u64 {
        self.inner.version()
    }
}

/// What a guardian shows (as a QR code) to a device that joins: the anchor and, optionally,
/// the server to fetch the chain from.
#[derive(Debug, uniffi::Object)]
#[uniffi::export(Display)]
pub struct Invitation {
    inner: toyseal_roster::Invitation,
}

impl std::fmt::Display for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[uniffi::export]
impl Invitation {
    /// An invitation to the version `adding` (which lists the invited device).
    #[uniffi::constructor]
    pub fn new(
        adding: Arc<SignedRoster>,
        server: Option<String>,
    ) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: toyseal_roster::Invitation::new(&adding.inner, server.as_deref())?,
        }))
    }

    /// Parses the text form scanned from the QR code (`toyseal-invite:1:…`).
    #[uniffi::constructor]
    pub fn parse(text: String) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: text
                .trim()
                .parse()
                .map_err(|e: toyseal_roster::Error| ToysealError::invalid(e.to_string()))?,
        }))
    }

    /// The anchor to verify the family's chain through.
    pub fn anchor(&self) -> Arc<Anchor> {
        Arc::new(Anchor {
            inner: *self.inner.anchor(),
        })
    }

    /// The server URL it names (a hint, not a trust anchor).
    pub fn server(&self) -> Option<String> {
        self.inner.server().map(str::to_owned)
    }
}
