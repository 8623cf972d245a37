//! A verified roster and the chain rules (docs/spec/roster.md §3):
//!
//! - version 1: every member and the recovery key signed it — the founding guardian and the
//!   toy among them;
//! - version n + 1: same family, version exactly n + 1 (the same number with another hash is a
//!   fork), previous hash = hash of version n; every signature verifies and comes from a
//!   member or the recovery key of version n or n + 1; a **quorum of version n for the
//!   change's class** signed ([`crate::ChangeClass`], `governance.rs`); every member and
//!   recovery key that version n + 1 adds signed it (proof of possession); every device it
//!   removes is recorded as departed and earlier departed records are carried over unchanged
//!   or dropped.
//!
//! The server holds no member key, so it cannot produce a version that adds itself; one stolen
//! phone is one authority, never a quorum; replaying an old version fails the version rule.

use crate::governance::class_quorum;
use crate::{
    Change, ChangeClass, Departed, Error, FamilyDeletion, RecoveryPublicKey, RosterProposal,
    SignedRoster,
};
use std::borrow::Borrow;
use std::sync::Arc;
use toyseal_core::{CryptoRng, DeviceId, DeviceIdentity, PublicIdentity, Role, Signature};
use toyseal_envelope::{
    ChainLink, OpenOptions, Opened, Opener, ReceiveState, SealOptions, Sealer, TrustedSenders,
};

/// A roster whose whole chain has been verified. Only the verification functions make one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    signed: SignedRoster,
}

/// Whether the family accepts an envelope from a sender at a sequence number
/// ([`Roster::admission`], docs/spec/roster.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// The sender is a current member.
    Member,
    /// The sender was removed, and this envelope is on the sender chain its removal recorded
    /// (the chain head itself, or an ancestor of it through known links): sealed before the
    /// removal, it stays openable.
    DepartedEarlier {
        /// The last sequence the family accepts from the departed device.
        last_sequence: u64,
    },
    /// Not a member, and not a departed device's earlier envelope.
    Refused,
    /// A current member's envelope that forks its sender chain as the receive state knows it
    /// (a re-used sequence with another header, two envelopes naming one previous), or an
    /// unsequenced one (sequence 0) where the receive state is tracked: refused, and worth
    /// showing (a copied key, or a broken sender).
    MemberFork,
}

impl Admission {
    /// `Member` or `DepartedEarlier`.
    pub fn is_admitted(self) -> bool {
        matches!(self, Admission::Member | Admission::DepartedEarlier { .. })
    }
}

fn find(members: &[PublicIdentity], id: DeviceId) -> Option<&PublicIdentity> {
    members.iter().find(|m| m.device_id() == id)
}

/// Who may have made a signature: a device, or a recovery key.
#[derive(Clone, Copy)]
pub(crate) enum Signer<'a> {
    Device(&'a PublicIdentity),
    Recovery(&'a RecoveryPublicKey),
}

impl Signer<'_> {
    fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), Error> {
        match self {
            Signer::Device(d) => d.verify(msg, sig).map_err(|_| Error::Signature),
            Signer::Recovery(r) => r.verify(msg, sig),
        }
    }
}

/// The signer with `id` among a version's members and recovery key.
pub(crate) fn signer_in(p: &RosterProposal, id: DeviceId) -> Option<Signer<'_>> {
    find(&p.members, id)
        .map(Signer::Device)
        .or_else(|| (p.recovery.id() == id).then_some(Signer::Recovery(&p.recovery)))
}

/// Checks every signature against the members and recovery keys of `allowed` versions;
/// returns the (distinct, ascending) ids that verified. One bad or foreign signature refuses
/// the whole statement.
pub(crate) fn verified_signers(
    signatures: &[(DeviceId, Signature)],
    msg: &[u8],
    allowed: &[&RosterProposal],
) -> Result<Vec<DeviceId>, Error> {
    signatures
        .iter()
        .map(|(id, sig)| {
            let who = allowed
                .iter()
                .find_map(|p| signer_in(p, *id))
                .ok_or(Error::Signature)?;
            who.verify(msg, sig)?;
            Ok(*id)
        })
        .collect()
}

/// §3.4: every member and recovery key `next` adds to `current` (or, for version 1, every one)
/// signed it.
fn possession_proved(
    current: Option<&RosterProposal>,
    next: &RosterProposal,
    signers: &[DeviceId],
) -> bool {
    let new_members = next
        .members
        .iter()
        .filter(|m| current.is_none_or(|c| find(&c.members, m.device_id()).is_none()))
        .map(PublicIdentity::device_id);
    let new_recovery = Some(next.recovery)
        .filter(|r| current.is_none_or(|c| c.recovery != *r))
        .map(|r| r.id());
    new_members
        .chain(new_recovery)
        .all(|id| signers.contains(&id))
}

/// §3.5: the departed records of `next` are exactly the devices it removes (with any last
/// sequence) plus records carried unchanged from `current` (some may be dropped).
fn departures_recorded(current: &RosterProposal, next: &RosterProposal) -> Result<(), Error> {
    let in_next = |id: DeviceId| find(&next.members, id).is_some();
    let record = |id: DeviceId| next.departed.iter().find(|d| d.identity.device_id() == id);
    for removed in current.members.iter().filter(|m| !in_next(m.device_id())) {
        if record(removed.device_id()).is_none() {
            return Err(Error::Departure(
                "a removed device is not recorded as departed",
            ));
        }
    }
    for d in &next.departed {
        let id = d.identity.device_id();
        let removed_now = find(&current.members, id).is_some();
        let carried = current.departed.iter().any(|c| c == d);
        if !removed_now && !carried {
            return Err(Error::Departure(
                "a departed record is neither a removal of this version nor carried unchanged",
            ));
        }
    }
    Ok(())
}

impl Roster {
    /// Verifies a founding (version 1) roster, **trusting it as given**: what the founding
    /// device does with the version it built and saw the toy co-sign, and what a server does
    /// with the version it admitted. Any other device must verify the chain it is handed
    /// through its anchor ([`Roster::verify_anchored_chain`]): a version 1 from the network
    /// proves nothing about whose family it is (THREATS T16). Later versions follow with
    /// [`Roster::verify_next`] / [`Roster::advance`].
    pub fn verify_founding(signed: SignedRoster) -> Result<Self, Error> {
        let p = &signed.proposal;
        // A locally built version has not been through `decode`: check its structure too.
        p.check()?;
        if p.version != 1 {
            return Err(Error::NotNextVersion {
                current: 0,
                got: p.version,
            });
        }
        let signers = verified_signers(&signed.signatures, &signed.signed_message(), &[p])?;
        let signed_by = |role| {
            signers
                .iter()
                .any(|id| find(&p.members, *id).is_some_and(|m| m.role() == role))
        };
        if !signed_by(Role::Guardian) {
            return Err(Error::Unauthorized(
                "version 1 must be signed by its founding guardian",
            ));
        }
        if !signed_by(Role::Toy) {
            return Err(Error::Unauthorized(
                "version 1 must be co-signed by the toy",
            ));
        }
        if !possession_proved(None, p, &signers) {
            return Err(Error::ProofOfPossession);
        }
        Ok(Self { signed })
    }

    /// Verifies `next` as the version right after this one (roster.md §3.2). A version with
    /// this one's number and another hash is reported as [`Error::Fork`] (§3.6).
    pub fn verify_next(&self, next: SignedRoster) -> Result<Self, Error> {
        let cur = &self.signed.proposal;
        let p = &next.proposal;
        p.check()?;
        if p.family != cur.family {
            return Err(Error::WrongFamily);
        }
        self.signed.check_same(&next)?;
        if Some(p.version) != cur.version.checked_add(1) {
            return Err(Error::NotNextVersion {
                current: cur.version,
                got: p.version,
            });
        }
        if p.previous != self.signed.hash() {
            return Err(Error::BrokenChain);
        }
        let signers = verified_signers(&next.signatures, &next.signed_message(), &[cur, p])?;
        departures_recorded(cur, p)?;
        let class = Change::between(cur, p).class();
        if !class_quorum(cur, class, &signers) {
            return Err(Error::Unauthorized(class.quorum_text()));
        }
        if !possession_proved(Some(cur), p, &signers) {
            return Err(Error::ProofOfPossession);
        }
        Ok(Self { signed: next })
    }

    /// **Device-local restore only.** Rebuilds the roster a device verified earlier (with
    /// [`Roster::verify_founding`], [`Roster::verify_next`], [`Roster::verify_anchored_chain`] or
    /// [`Roster::advance`]) and then kept in its own storage, beside its identity, after a
    /// reboot: `me` is the restoring device, which must be a member.
    ///
    /// # Never feed it bytes from the network
    ///
    /// For a version above 1 this does **not** prove the chain: the quorum of the previous
    /// version (§3.3), proof of possession (§3.4) and the departed records (§3.5) all need the
    /// previous version, which the device no longer holds. What it checks is what one version
    /// proves on its own: the structure (as `decode` and the verify paths check it), that every
    /// signature whose signer this version names (a member, its recovery key, a departed
    /// device) verifies, and that `me` is a member. Version 1 gets the full
    /// [`Roster::verify_founding`]. Bytes from a phone, a server or any link must go through
    /// the verify paths instead: through this function a forged later version would be
    /// accepted. The trust comes from the storage, exactly as for the device's identity.
    pub fn restore_verified(signed: SignedRoster, me: &PublicIdentity) -> Result<Self, Error> {
        let p = &signed.proposal;
        p.check()?;
        // `check` refused version 0.
        let restored = match p.version {
            1 => Self::verify_founding(signed)?,
            _ => {
                if signed.signatures.is_empty() {
                    return Err(Error::Unauthorized("a roster version carries signatures"));
                }
                let msg = signed.signed_message();
                for (id, sig) in &signed.signatures {
                    let named = signer_in(p, *id).or_else(|| {
                        p.departed
                            .iter()
                            .find(|d| d.identity.device_id() == *id)
                            .map(|d| Signer::Device(&d.identity))
                    });
                    // A signer this version does not name (a recovery key it replaced) was
                    // checked against the previous version when the device verified it.
                    if let Some(who) = named {
                        who.verify(&msg, sig)?;
                    }
                }
                Self { signed }
            }
        };
        if !restored.contains(me) {
            return Err(Error::NotAMember);
        }
        Ok(restored)
    }

    /// Moves forward over several versions at once (each must verify in turn). Versions not
    /// newer than this one are refused: they are replays ([`Error::NotNextVersion`]), or, with
    /// this version's number and another hash, a fork ([`Error::Fork`]).
    pub fn advance(&self, newer: &[SignedRoster]) -> Result<Self, Error> {
        let mut current = self.clone();
        for next in newer {
            current = current.verify_next(next.clone())?;
        }
        Ok(current)
    }

    /// Verifies a family deletion against this (current) version: same family, decided under
    /// this very version, every signature from a member or the recovery key of this version,
    /// and a quorum of the deletion class (§5: two guardians, or a guardian and the recovery
    /// key; the toy never counts).
    pub fn verify_deletion(&self, deletion: &FamilyDeletion) -> Result<(), Error> {
        if deletion.family != self.family() {
            return Err(Error::WrongFamily);
        }
        if deletion.roster_hash != self.signed.hash() {
            return Err(Error::NotCurrentRoster);
        }
        let cur = &self.signed.proposal;
        let signers = verified_signers(&deletion.signatures, &deletion.signed_message(), &[cur])?;
        if !class_quorum(cur, ChangeClass::Deletion, &signers) {
            return Err(Error::Unauthorized(ChangeClass::Deletion.quorum_text()));
        }
        Ok(())
    }

    /// What `next` changes from this version, with its class ([`Change::class`]): what the
    /// toy announces before it co-signs and what a phone shows before a guardian signs.
    pub fn change_to(&self, next: &RosterProposal) -> Change {
        Change::between(&self.signed.proposal, next)
    }

    /// Whether `signers` — ids whose signatures the caller has verified — hold a quorum of this
    /// version for `class` (roster.md §3.3). Only this version's guardians, recovery key and
    /// toys count, each once; a `member` and anyone this version does not list never count.
    pub fn quorum_met(&self, class: ChangeClass, signers: &[DeviceId]) -> bool {
        class_quorum(&self.signed.proposal, class, signers)
    }

    /// The fork check against this version ([`SignedRoster::check_same`]): [`Error::Fork`]
    /// when `other` has this version's number and family and another hash.
    pub fn check_same(&self, other: &SignedRoster) -> Result<(), Error> {
        self.signed.check_same(other)
    }

    /// The signers of `next` that count for a quorum of this version: this version's
    /// guardians, toys and recovery key whose signatures over `next` verify (ascending ids).
    /// A toy uses it to check, before asking its user, that its own co-signature would
    /// complete a quorum for the change's class (docs/spec/pairing.md §7.1).
    pub fn counted_signers(&self, next: &SignedRoster) -> Vec<DeviceId> {
        let msg = next.signed_message();
        next.signatures
            .iter()
            .filter(|(id, sig)| {
                signer_in(&self.signed.proposal, *id).is_some_and(|s| s.verify(&msg, sig).is_ok())
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether `next`'s signatures already make a quorum of `self` for the class of the change
    /// it makes ([`Roster::change_to`]): lets a phone tell the user whose co-signature is still
    /// missing. Only signatures that verify count.
    pub fn has_quorum(&self, next: &SignedRoster) -> bool {
        let class = self.change_to(&next.proposal).class();
        class_quorum(&self.signed.proposal, class, &self.counted_signers(next))
    }

    /// Whether the family accepts an envelope from `sender` at this place on its sender chain
    /// (§4, docs/spec/envelope.md §11.3), with no receive state: a current member always; a
    /// departed device only for the chain head its removal recorded (`sequence` = the last
    /// sequence and `header_hash` = the chain head); anyone else never. To admit a departed
    /// device's earlier envelopes, use [`Roster::admission_with`] with the links this device
    /// has verified.
    pub fn admission(&self, sender: &PublicIdentity, link: &ChainLink) -> Admission {
        if self.contains(sender) {
            return Admission::Member;
        }
        self.admission_with(sender, link, &ReceiveState::new())
    }

    /// [`Roster::admission`] with this device's receive state (the links it has verified,
    /// docs/spec/envelope.md §11.3): a current member unless the link is unsequenced or forks
    /// the member's chain ([`Admission::MemberFork`]); a departed device only on its recorded
    /// chain: the head itself, or an ancestor reached from the head through `previous` links
    /// `chains` knows. A back-dated envelope (an unused sequence at or below the last one) and
    /// a re-used sequence are not on the chain and are refused.
    pub fn admission_with(
        &self,
        sender: &PublicIdentity,
        link: &ChainLink,
        chains: &ReceiveState,
    ) -> Admission {
        if self.contains(sender) {
            if link.sequence == 0 || chains.is_fork(sender.device_id(), link) {
                return Admission::MemberFork;
            }
            return Admission::Member;
        }
        match self.departed().iter().find(|d| &d.identity == sender) {
            Some(d)
                if chains.connects(sender.device_id(), link, d.last_sequence, &d.chain_head) =>
            {
                Admission::DepartedEarlier {
                    last_sequence: d.last_sequence,
                }
            }
            _ => Admission::Refused,
        }
    }

    /// [`Roster::admission`] as a yes/no.
    pub fn admits_sender(&self, sender: &PublicIdentity, link: &ChainLink) -> bool {
        self.admission(sender, link).is_admitted()
    }

    /// The signed form.
    pub fn signed(&self) -> &SignedRoster {
        &self.signed
    }
    /// The family.
    pub fn family(&self) -> toyseal_core::FamilyId {
        self.signed.proposal.family
    }
    /// The version.
    pub fn version(&self) -> u64 {
        self.signed.proposal.version
    }
    /// All members.
    pub fn members(&self) -> &[PublicIdentity] {
        &self.signed.proposal.members
    }
    /// The member with this device id.
    pub fn member(&self, id: DeviceId) -> Option<&PublicIdentity> {
        find(self.members(), id)
    }
    /// Whether `identity` is a member (same keys, same role).
    pub fn contains(&self, identity: &PublicIdentity) -> bool {
        self.members().contains(identity)
    }
    /// Members with the guardian role.
    pub fn guardians(&self) -> impl Iterator<Item = &PublicIdentity> {
        self.members().iter().filter(|m| m.role() == Role::Guardian)
    }
    /// The family's recovery key.
    pub fn recovery_key(&self) -> &RecoveryPublicKey {
        &self.signed.proposal.recovery
    }
    /// Devices removed from the family, with the last sequence accepted from each.
    pub fn departed(&self) -> &[Departed] {
        &self.signed.proposal.departed
    }

    /// Seals `content` from `sender` to every other member of this roster, recording the family
    /// and roster version in the header (what [`Roster::sealer`] starts, in one call).
    pub fn seal(
        &self,
        sender: &DeviceIdentity,
        options: SealOptions,
        content: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, Error> {
        let (recipients, options) = self.sealing(sender.public(), options)?;
        Ok(toyseal_envelope::seal(
            sender,
            &recipients,
            &options,
            content,
            rng,
        )?)
    }

    /// Starts a streaming envelope from `me` to every other member of this roster, recording
    /// the family and roster version in the header. The sealer owns what it needs (the `Arc`
    /// and its own copy of the recipients), so it can outlive the roster and the caller.
    /// [`Error::NotAMember`] if `me` is not a member of this version.
    pub fn sealer(
        &self,
        me: Arc<DeviceIdentity>,
        options: SealOptions,
        rng: &mut impl CryptoRng,
    ) -> Result<Sealer, Error> {
        let (recipients, options) = self.sealing(me.public(), options)?;
        Ok(Sealer::new(me, &recipients, &options, rng)?)
    }

    /// The family rule for sealing, in one place: the sender must be a member of this version,
    /// the recipients are every other member, and the header names this family and version.
    fn sealing(
        &self,
        sender: &PublicIdentity,
        options: SealOptions,
    ) -> Result<(Vec<PublicIdentity>, SealOptions), Error> {
        if !self.contains(sender) {
            return Err(Error::NotAMember);
        }
        let recipients: Vec<PublicIdentity> = self
            .members()
            .iter()
            .filter(|m| m.device_id() != sender.device_id())
            .cloned()
            .collect();
        Ok((
            recipients,
            options.with_family(self.family(), self.version()),
        ))
    }

    /// Opens an envelope of this family, accepting current members as senders and departed
    /// devices for the envelopes they sealed before their removal ([`Roster::admission`]), and
    /// proving with the re-encryption check (docs/spec/envelope.md §3.2) that every member the
    /// envelope lists received the same file key (THREATS T49): one HPKE encapsulation per other
    /// listed member. [`Roster::opener`] in one call, with the family checked up front.
    pub fn open(
        &self,
        me: &DeviceIdentity,
        envelope: &[u8],
        options: OpenOptions,
    ) -> Result<(Vec<u8>, Opened), Error> {
        let header = toyseal_envelope::inspect(envelope)?;
        if header.family() != Some(self.family()) {
            return Err(Error::WrongFamily);
        }
        let mut opener = self.opening(self, me, options);
        let mut content = Vec::with_capacity(envelope.len());
        opener.push(envelope, &mut content)?;
        let opened = opener.finish()?;
        Ok((content, opened))
    }

    /// A streaming opener for `me` of this family's envelopes, with the rules of
    /// [`Roster::open`]: senders admitted by [`Roster::admission`] (departed devices only for
    /// what they sealed before their removal), the re-encryption check over the members, and
    /// the header's family required to be this one (refused as
    /// [`toyseal_envelope::Error::WrongFamily`] before any content). The opener owns a copy of
    /// this roster version and the `Arc`.
    pub fn opener(&self, me: Arc<DeviceIdentity>, options: OpenOptions) -> Opener<Roster> {
        self.opening(self.clone(), me, options)
    }

    /// [`Roster::opener`] with this device's receive state: senders admitted by
    /// [`Roster::admission_with`] (a departed device's earlier envelopes through the chain links
    /// `chains` knows; members' forks refused).
    pub fn opener_with_chains<C: Borrow<ReceiveState>>(
        &self,
        me: Arc<DeviceIdentity>,
        chains: C,
        options: OpenOptions,
    ) -> Opener<RosterSenders<Roster, C>> {
        self.opening(
            RosterSenders {
                roster: self.clone(),
                chains,
            },
            me,
            options,
        )
    }

    /// [`Roster::open`] with this device's receive state ([`Roster::opener_with_chains`]).
    pub fn open_with_chains(
        &self,
        me: &DeviceIdentity,
        chains: &ReceiveState,
        envelope: &[u8],
        options: OpenOptions,
    ) -> Result<(Vec<u8>, Opened), Error> {
        let header = toyseal_envelope::inspect(envelope)?;
        if header.family() != Some(self.family()) {
            return Err(Error::WrongFamily);
        }
        let policy = RosterSenders {
            roster: self,
            chains,
        };
        let mut opener = self.opening(policy, me, options);
        let mut content = Vec::with_capacity(envelope.len());
        opener.push(envelope, &mut content)?;
        let opened = opener.finish()?;
        Ok((content, opened))
    }

    /// The family rule for opening, in one place (see [`Roster::opener`]).
    fn opening<P: TrustedSenders, I: Borrow<DeviceIdentity>>(
        &self,
        trusted: P,
        me: I,
        options: OpenOptions,
    ) -> Opener<P, I> {
        Opener::new(me, trusted, options)
            .check_recipients(self.members())
            .require_family(self.family())
    }
}

/// A roster is the opener's sender policy (docs/spec/envelope.md §11): [`Roster::admits_sender`].
impl toyseal_envelope::TrustedSenders for Roster {
    fn admits(&self, sender: &PublicIdentity, link: &ChainLink) -> bool {
        self.admits_sender(sender, link)
    }
}

/// A roster with this device's receive state: the sender policy of docs/spec/envelope.md
/// §11.3 in full ([`Roster::admission_with`]). Departed devices are admitted on their recorded
/// chain through the links `chains` knows; members' forks and unsequenced envelopes are
/// refused. Feed `chains` with every envelope that opens ([`ReceiveState::observe`] with
/// [`Opened::link`]) and with verified headers fetched to close gaps.
#[derive(Clone, Debug)]
pub struct RosterSenders<R = Roster, C = ReceiveState> {
    /// The verified roster version.
    pub roster: R,
    /// This device's receive state.
    pub chains: C,
}

impl<R: Borrow<Roster>, C: Borrow<ReceiveState>> TrustedSenders for RosterSenders<R, C> {
    fn admits(&self, sender: &PublicIdentity, link: &ChainLink) -> bool {
        self.roster
            .borrow()
            .admission_with(sender, link, self.chains.borrow())
            .is_admitted()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::{RecoveryKey, RosterProposal};
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;
    use toyseal_core::FamilyId;

    struct Chain {
        mum: DeviceIdentity,
        dad: DeviceIdentity,
        toy: DeviceIdentity,
        recovery: RecoveryKey,
        v1: SignedRoster,
        /// v2 {mum, dad, toy}; v3 {mum, toy}: dad removed (a departed record).
        v2: SignedRoster,
        v3: SignedRoster,
    }

    fn chain() -> Chain {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let mum = DeviceIdentity::generate(Role::Guardian, &mut rng);
        let dad = DeviceIdentity::generate(Role::Guardian, &mut rng);
        let toy = DeviceIdentity::generate(Role::Toy, &mut rng);
        let family = FamilyId::generate(&mut rng);
        let recovery = RecoveryKey::generate(&mut rng).unwrap();
        let mut v1 = RosterProposal::founding(
            family,
            vec![mum.public().clone(), toy.public().clone()],
            *recovery.public(),
        )
        .unwrap()
        .sign(&mum);
        v1.cosign(&toy);
        v1.cosign_recovery(&recovery);
        let r1 = Roster::verify_founding(v1.clone()).unwrap();
        let mut v2 = RosterProposal::next(
            &r1,
            vec![
                mum.public().clone(),
                dad.public().clone(),
                toy.public().clone(),
            ],
        )
        .unwrap()
        .sign(&mum);
        v2.cosign_recovery(&recovery);
        v2.cosign(&dad);
        let r2 = r1.verify_next(v2.clone()).unwrap();
        let mut v3 = RosterProposal::next(&r2, vec![mum.public().clone(), toy.public().clone()])
            .unwrap()
            .sign(&mum);
        v3.cosign(&dad);
        r2.verify_next(v3.clone()).unwrap();
        Chain {
            mum,
            dad,
            toy,
            recovery,
            v1,
            v2,
            v3,
        }
    }

    /// The stored bytes, as the device reads them back.
    fn stored(s: &SignedRoster) -> SignedRoster {
        SignedRoster::decode(&s.encode()).unwrap()
    }

    #[test]
    fn a_restored_roster_is_the_one_verified() {
        let c = chain();
        let verified = Roster::verify_founding(c.v1.clone())
            .unwrap()
            .advance(&[c.v2.clone(), c.v3.clone()])
            .unwrap();
        let restored = Roster::restore_verified(stored(&c.v3), c.toy.public()).unwrap();
        assert_eq!(restored, verified);
        assert_eq!(restored.version(), 3);
        assert_eq!(restored.members(), verified.members());
        assert_eq!(restored.departed(), verified.departed());
        assert_eq!(restored.departed().len(), 1);
        assert_eq!(restored.signed().hash(), verified.signed().hash());
        // And it goes on verifying the chain from there.
        let v1 = Roster::restore_verified(stored(&c.v1), c.toy.public()).unwrap();
        assert_eq!(v1.advance(&[c.v2.clone(), c.v3.clone()]).unwrap(), verified);
    }

    #[test]
    fn a_device_that_is_not_a_member_refuses_to_restore() {
        let c = chain();
        assert!(matches!(
            Roster::restore_verified(stored(&c.v3), c.dad.public()),
            Err(Error::NotAMember)
        ));
        assert!(Roster::restore_verified(stored(&c.v2), c.dad.public()).is_ok());
        assert!(Roster::restore_verified(stored(&c.v2), c.mum.public()).is_ok());
    }

    #[test]
    fn garbage_and_tampered_versions_refuse() {
        let c = chain();
        assert!(SignedRoster::decode(b"not a roster").is_err());
        let mut bytes = c.v2.encode();
        // Flip one bit of the last signature: a signer v2 names no longer verifies.
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = SignedRoster::decode(&bytes).unwrap();
        assert!(matches!(
            Roster::restore_verified(tampered, c.toy.public()),
            Err(Error::Signature)
        ));
    }

    #[test]
    fn version_1_with_a_bad_or_missing_signature_refuses() {
        let c = chain();
        let mut bytes = c.v1.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = SignedRoster::decode(&bytes).unwrap();
        assert!(Roster::restore_verified(tampered, c.toy.public()).is_err());
        // Signed by mum alone: version 1 needs the toy's co-signature, restored or not.
        let mut mum_only = RosterProposal::founding(
            c.v1.proposal().family(),
            c.v1.proposal().members().to_vec(),
            *c.recovery.public(),
        )
        .unwrap()
        .sign(&c.mum);
        mum_only.cosign_recovery(&c.recovery);
        assert!(matches!(
            Roster::restore_verified(mum_only, c.toy.public()),
            Err(Error::Unauthorized(_))
        ));
    }

    /// v2 {mum, dad, toy}, and a v3 {mum, toy} whose departed dad keeps his chain up to the
    /// envelope at sequence 5 with header hash `head`.
    fn family_with_dad_departed_at_5(c: &Chain) -> (Roster, Roster) {
        family_with_dad_departed_at(c, [5; 32])
    }

    fn family_with_dad_departed_at(c: &Chain, head: [u8; 32]) -> (Roster, Roster) {
        let r2 = Roster::verify_founding(c.v1.clone())
            .unwrap()
            .advance(std::slice::from_ref(&c.v2))
            .unwrap();
        let mut v3 =
            RosterProposal::next(&r2, vec![c.mum.public().clone(), c.toy.public().clone()])
                .unwrap()
                .with_last_envelope(c.dad.device_id(), 5, head)
                .unwrap()
                .sign(&c.mum);
        v3.cosign_recovery(&c.recovery);
        let r3 = r2.verify_next(v3).unwrap();
        (r2, r3)
    }

    fn seal_stream(
        roster: &Roster,
        me: Arc<DeviceIdentity>,
        options: SealOptions,
        seed: u8,
    ) -> Vec<u8> {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let mut sealer = roster.sealer(me, options, &mut rng).unwrap();
        let mut out = Vec::new();
        sealer.update(b"a bedtime story", &mut out).unwrap();
        sealer.finish(&mut out).unwrap();
        out
    }

    fn open_stream(
        roster: &Roster,
        me: Arc<DeviceIdentity>,
        envelope: &[u8],
    ) -> Result<Vec<u8>, toyseal_envelope::Error> {
        let mut opener = roster.opener(me, OpenOptions::default());
        let mut out = Vec::new();
        opener.push(envelope, &mut out)?;
        opener.finish()?;
        Ok(out)
    }

    #[test]
    fn a_roster_sealer_refuses_a_sender_that_is_not_a_member() {
        let c = chain();
        let (_, r3) = family_with_dad_departed_at_5(&c);
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let dad = Arc::new(c.dad);
        assert!(matches!(
            r3.sealer(dad, SealOptions::default(), &mut rng),
            Err(Error::NotAMember)
        ));
        let stranger = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut rng));
        assert!(matches!(
            r3.sealer(stranger, SealOptions::default(), &mut rng),
            Err(Error::NotAMember)
        ));
    }

    #[test]
    fn a_roster_sealer_seals_to_exactly_the_other_members() {
        let c = chain();
        let (r2, _) = family_with_dad_departed_at_5(&c);
        let toy = Arc::new(c.toy);
        let options = SealOptions::default().with_sequence(9);
        let env = seal_stream(&r2, Arc::clone(&toy), options.clone(), 3);
        // The same bytes as the one-shot `Roster::seal` with the same randomness.
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        assert!(
            env == r2
                .seal(&toy, options, b"a bedtime story", &mut rng)
                .unwrap()
        );
        let header = toyseal_envelope::inspect(&env).unwrap();
        assert_eq!(header.family(), Some(r2.family()));
        assert_eq!(header.roster_version(), 2);
        assert_eq!(header.stanzas().len(), r2.members().len() - 1);
        // Every other member opens it (the re-encryption check over all members passes); the
        // sender itself is not a recipient.
        for other in [c.mum, c.dad] {
            let out = open_stream(&r2, Arc::new(other), &env).unwrap();
            assert_eq!(out, b"a bedtime story");
        }
        assert!(matches!(
            open_stream(&r2, toy, &env),
            Err(toyseal_envelope::Error::NotARecipient)
        ));
    }

    #[test]
    fn a_roster_opener_refuses_a_departed_devices_later_envelope() {
        let c = chain();
        let (r2, _) = family_with_dad_departed_at_5(&c);
        // Sealed by dad under v2 (still a member then), at sequence 5 and 6; the removal
        // records the first as his chain head.
        let earlier = r2
            .seal(
                &c.dad,
                SealOptions::default().with_sequence(5),
                b"a bedtime story",
                &mut ChaCha20Rng::from_seed([4; 32]),
            )
            .unwrap();
        let head = toyseal_envelope::inspect(&earlier).unwrap().link_hash();
        let (_, r3) = family_with_dad_departed_at(&c, head);
        let dad = Arc::new(c.dad);
        let mum = Arc::new(c.mum);
        let later = seal_stream(
            &r2,
            dad,
            SealOptions::default().with_sequence(6).with_previous(head),
            4,
        );
        assert_eq!(
            open_stream(&r3, Arc::clone(&mum), &earlier).unwrap(),
            b"a bedtime story"
        );
        assert!(matches!(
            open_stream(&r3, Arc::clone(&mum), &later),
            Err(toyseal_envelope::Error::UntrustedSender)
        ));
        // Another family's envelope from a member is refused before any content.
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let other = FamilyId::generate(&mut rng);
        let foreign = toyseal_envelope::seal(
            &mum,
            &[c.toy.public().clone()],
            &SealOptions::default().with_family(other, 2),
            b"x",
            &mut rng,
        )
        .unwrap();
        let toy = Arc::new(c.toy);
        let mut opener = r3.opener(toy, OpenOptions::default());
        let mut out = Vec::new();
        assert!(matches!(
            opener.push(&foreign, &mut out),
            Err(toyseal_envelope::Error::WrongFamily)
        ));
        assert!(out.is_empty());
    }
}
