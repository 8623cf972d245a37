//! Family governance (docs/spec/roster.md §3.3, DESIGN "Family governance"): what a change
//! from one roster version to the next *is* (its [`ChangeClass`]), and which signers of the
//! previous version make a quorum for each class. One function per rule:
//!
//! - [`Change::class`] — the classification of a change (§3.3.1);
//! - [`class_quorum`] — the quorum table (§3.3.2), used by version changes, family deletions
//!   and every other quorum statement of the crate.
//!
//! Why the classes: a toy is pressed by children, so the toy's confirmation (its signature)
//! must never let anyone *receive* recordings or gain authority. A guardian and the toy may
//! only remove devices that govern nothing; everything that adds a receiver or changes an
//! authority needs two guardians, a guardian and the recovery key, or (the family lost its
//! only phone) the recovery key and the toy.

use crate::RecoveryPublicKey;
use crate::format::RosterProposal;
use crate::roster::{Signer, signer_in};
use std::collections::BTreeSet;
use toyseal_core::{DeviceId, PublicIdentity, Role};

/// What a change (or a statement) needs a quorum for (roster.md §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeClass {
    /// Only removes devices that govern nothing (`member` or `toy` roles); the recovery key is
    /// unchanged and no role changes: fewer devices receive. Quorum: two guardians, a
    /// guardian and the recovery key, or a guardian and the toy.
    Removal,
    /// Adds anyone (who would then receive recordings), adds or removes a guardian, adds a toy,
    /// replaces the recovery key, or changes a role. Quorum: two guardians, a guardian and the
    /// recovery key, or the recovery key and the toy — **never a guardian and the toy**.
    Grant,
    /// Deleting the family, or erasing other devices' envelopes at once. Quorum: two
    /// guardians, or a guardian and the recovery key — the toy never counts.
    Deletion,
}

impl ChangeClass {
    /// A short lower-case name (`removal`, `grant`, `deletion`) for logs and announcements.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeClass::Removal => "removal",
            ChangeClass::Grant => "grant",
            ChangeClass::Deletion => "deletion",
        }
    }

    /// The quorum rule in words, for error messages and user interfaces.
    pub fn quorum_text(self) -> &'static str {
        match self {
            ChangeClass::Removal => {
                "removing a member or a toy needs two guardians, a guardian and the recovery \
                 key, or a guardian and the toy"
            }
            ChangeClass::Grant => {
                "adding a device or changing a guardian, a toy, a role or the recovery key needs \
                 two guardians, a guardian and the recovery key, or the recovery key and the \
                 toy (never a guardian and the toy)"
            }
            ChangeClass::Deletion => {
                "deleting the family or erasing others' envelopes at once needs two guardians, \
                 or a guardian and the recovery key"
            }
        }
    }
}

/// The difference between a roster version and the proposed next one
/// ([`crate::Roster::change_to`]): what the toy announces and a phone shows before anyone
/// signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub(crate) added: Vec<PublicIdentity>,
    pub(crate) removed: Vec<PublicIdentity>,
    pub(crate) recovery: Option<(RecoveryPublicKey, RecoveryPublicKey)>,
}

impl Change {
    /// The change between two versions (by device id: a role change is the old identity
    /// removed and the new one added).
    pub(crate) fn between(current: &RosterProposal, next: &RosterProposal) -> Self {
        let ids = |p: &RosterProposal| -> BTreeSet<DeviceId> {
            p.members.iter().map(PublicIdentity::device_id).collect()
        };
        let (now, then) = (ids(current), ids(next));
        Self {
            added: next
                .members
                .iter()
                .filter(|m| !now.contains(&m.device_id()))
                .cloned()
                .collect(),
            removed: current
                .members
                .iter()
                .filter(|m| !then.contains(&m.device_id()))
                .cloned()
                .collect(),
            recovery: (current.recovery != next.recovery)
                .then_some((current.recovery, next.recovery)),
        }
    }

    /// Identities the next version lists and this one does not (with their roles), in
    /// canonical order.
    pub fn added(&self) -> &[PublicIdentity] {
        &self.added
    }
    /// Identities this version lists and the next one does not, in canonical order.
    pub fn removed(&self) -> &[PublicIdentity] {
        &self.removed
    }
    /// The recovery key replaced: `(old, new)`; `None` when it is kept.
    pub fn recovery_replaced(&self) -> Option<(&RecoveryPublicKey, &RecoveryPublicKey)> {
        self.recovery.as_ref().map(|(old, new)| (old, new))
    }
    /// Devices whose role changes: `(old, new)` identities with the same Ed25519 key.
    pub fn role_changes(&self) -> impl Iterator<Item = (&PublicIdentity, &PublicIdentity)> {
        self.removed.iter().filter_map(|old| {
            self.added
                .iter()
                .find(|new| new.signing_key() == old.signing_key())
                .map(|new| (old, new))
        })
    }
    /// Whether the versions list the same members and recovery key (only departed records
    /// may differ).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.recovery.is_none()
    }

    /// The class (roster.md §3.3.1): [`ChangeClass::Removal`] when the change only removes
    /// `member`- or `toy`-role devices and keeps the recovery key (no one is added, so no role
    /// changes either); [`ChangeClass::Grant`] otherwise. A change that removes nothing and
    /// adds nothing (only departed records dropped) is a removal.
    pub fn class(&self) -> ChangeClass {
        let removes_only_non_governing = self
            .removed
            .iter()
            .all(|m| matches!(m.role(), Role::Member | Role::Toy));
        if self.added.is_empty() && self.recovery.is_none() && removes_only_non_governing {
            ChangeClass::Removal
        } else {
            ChangeClass::Grant
        }
    }
}

/// The quorum table (roster.md §3.3.2), the one place it is written: whether `signers`
/// (verified signer ids) hold a quorum **of `version`** for `class`. Only `version`'s
/// guardians, its recovery key and its toys count, each once whatever it signed; a `member`
/// never counts, nor does anyone `version` does not list (a device a proposed version adds
/// signs only for proof of possession).
pub(crate) fn class_quorum(
    version: &RosterProposal,
    class: ChangeClass,
    signers: &[DeviceId],
) -> bool {
    let distinct: BTreeSet<DeviceId> = signers.iter().copied().collect();
    let (mut guardians, mut recovery, mut toy) = (0usize, false, false);
    for id in distinct {
        match signer_in(version, id) {
            Some(Signer::Recovery(_)) => recovery = true,
            Some(Signer::Device(d)) => match d.role() {
                Role::Guardian => guardians += 1,
                Role::Toy => toy = true,
                // A member governs nothing.
                _ => {}
            },
            None => {}
        }
    }
    let two_guardians = guardians >= 2;
    let guardian_and_recovery = guardians >= 1 && recovery;
    match class {
        ChangeClass::Removal => two_guardians || guardian_and_recovery || (guardians >= 1 && toy),
        ChangeClass::Grant => two_guardians || guardian_and_recovery || (recovery && toy),
        ChangeClass::Deletion => two_guardians || guardian_and_recovery,
    }
}
