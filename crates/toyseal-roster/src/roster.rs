//! A verified roster and the chain rules (docs/spec/roster.md §Rules):
//!
//! - version 1: every signature verifies and comes from a member; at least one guardian
//!   member (the founding guardian) and one toy member (the toy co-signs at pairing) signed;
//! - version n + 1: same family, previous hash = hash of the verified version n, version
//!   exactly n + 1; every signature verifies and comes from a member of version n or n + 1; at
//!   least one guardian **of version n** signed. The server holds no member key, so it cannot
//!   produce a version that adds itself; replaying an old version fails the version rule.

use crate::{Error, SignedRoster};
use toyseal_core::{CryptoRng, DeviceId, DeviceIdentity, PublicIdentity, Role};
use toyseal_envelope::{OpenOptions, Opened, SealOptions};

/// A roster whose whole chain has been verified. Only the verification functions make one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    signed: SignedRoster,
}

fn find(members: &[PublicIdentity], id: DeviceId) -> Option<&PublicIdentity> {
    members.iter().find(|m| m.device_id() == id)
}

/// Checks every signature against `allowed` signers; returns the verified signers.
fn verified_signers<'a>(
    signed: &SignedRoster,
    allowed: &[&'a [PublicIdentity]],
) -> Result<Vec<&'a PublicIdentity>, Error> {
    let msg = signed.signed_message();
    signed
        .signatures
        .iter()
        .map(|(id, sig)| {
            let who = allowed
                .iter()
                .find_map(|set| find(set, *id))
                .ok_or(Error::Signature)?;
            who.verify(&msg, sig).map_err(|_| Error::Signature)?;
            Ok(who)
        })
        .collect()
}

impl Roster {
    /// Verifies a founding (version 1) roster.
    pub fn verify_founding(signed: SignedRoster) -> Result<Self, Error> {
        let p = &signed.proposal;
        if p.version != 1 {
            return Err(Error::NotNextVersion {
                current: 0,
                got: p.version,
            });
        }
        let signers = verified_signers(&signed, &[&p.members])?;
        if !signers.iter().any(|s| s.role() == Role::Guardian) {
            return Err(Error::Unauthorized(
                "version 1 must be signed by its founding guardian",
            ));
        }
        if !signers.iter().any(|s| s.role() == Role::Toy) {
            return Err(Error::Unauthorized(
                "version 1 must be co-signed by the toy",
            ));
        }
        Ok(Self { signed })
    }

    /// Verifies `next` as the version right after this one.
    pub fn verify_next(&self, next: SignedRoster) -> Result<Self, Error> {
        let cur = &self.signed.proposal;
        let p = &next.proposal;
        if p.family != cur.family {
            return Err(Error::WrongFamily);
        }
        if Some(p.version) != cur.version.checked_add(1) {
            return Err(Error::NotNextVersion {
                current: cur.version,
                got: p.version,
            });
        }
        if p.previous != self.signed.hash() {
            return Err(Error::BrokenChain);
        }
        let signers = verified_signers(&next, &[&cur.members, &p.members])?;
        let by_previous_guardian = signers
            .iter()
            .any(|s| s.role() == Role::Guardian && find(&cur.members, s.device_id()).is_some());
        if !by_previous_guardian {
            return Err(Error::Unauthorized(
                "a new version must be signed by a guardian of the previous one",
            ));
        }
        Ok(Self { signed: next })
    }

    /// Verifies a whole chain from version 1; returns the last version.
    pub fn verify_chain(chain: &[SignedRoster]) -> Result<Self, Error> {
        let (first, rest) = chain.split_first().ok_or(Error::Malformed("empty chain"))?;
        let mut current = Self::verify_founding(first.clone())?;
        for next in rest {
            current = current.verify_next(next.clone())?;
        }
        Ok(current)
    }

    /// Moves forward over several versions at once (each must verify in turn). Versions not
    /// newer than this one are refused: they are replays.
    pub fn advance(&self, newer: &[SignedRoster]) -> Result<Self, Error> {
        let mut current = self.clone();
        for next in newer {
            current = current.verify_next(next.clone())?;
        }
        Ok(current)
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

    /// Seals `content` from `sender` to every other member of this roster, recording the family
    /// and roster version in the header.
    pub fn seal(
        &self,
        sender: &DeviceIdentity,
        options: SealOptions,
        content: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, Error> {
        if !self.contains(sender.public()) {
            return Err(Error::NotAMember);
        }
        let recipients: Vec<PublicIdentity> = self
            .members()
            .iter()
            .filter(|m| m.device_id() != sender.device_id())
            .cloned()
            .collect();
        let options = options.with_family(self.family(), self.version());
        Ok(toyseal_envelope::seal(
            sender,
            &recipients,
            &options,
            content,
            rng,
        )?)
    }

    /// Opens an envelope of this family, accepting only current members as senders, and
    /// proving with the re-encryption check (docs/spec/envelope.md §3.2) that every member the
    /// envelope lists received the same file key (THREATS T49): one HPKE encapsulation per other
    /// listed member.
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
        let mut opener = toyseal_envelope::Opener::new(me, self.members(), options)
            .check_recipients(self.members());
        let mut content = Vec::with_capacity(envelope.len());
        opener.push(envelope, &mut content)?;
        let opened = opener.finish()?;
        Ok((content, opened))
    }
}
