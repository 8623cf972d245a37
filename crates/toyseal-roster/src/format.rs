//! The roster's wire format (docs/spec/roster.md §1–2): an unsigned body, then signatures.
//!
//! ```text
//! body      = "tsroster" || 0x03 || family id (16) || version (8) || previous hash (32)
//!             || m (1) || m × member identity (66), ascending device id
//!             || r (1) || r × recovery public key (32)                    (r = 1)
//!             || d (1) || d × (departed identity (66) || last sequence (8) || chain head (32)),
//!                ascending device id
//! roster    = body || s (1) || s × (signer id (16) || Ed25519 signature (64)), ascending signer id
//! signature over "toyseal/v2/roster-signature" || 0x00 || SHA-256(body)
//! hash      = SHA-256("toyseal/v1/roster-hash" || body)      (the next version's previous hash)
//! ```

use crate::{Error, RecoveryKey, RecoveryPublicKey};
use ring::digest::{Context, SHA256};
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, PublicIdentity, Role, Signature};

/// Most members a roster may have.
pub const MAX_MEMBERS: usize = 32;
/// Most departed-device records a roster may carry (§1.3); older ones may be dropped by a
/// later version.
pub const MAX_DEPARTED: usize = 32;
/// Most recovery keys a roster may list: every version lists exactly one (roster.md §1.2).
pub const MAX_RECOVERY_KEYS: usize = 1;
const MAGIC: &[u8; 8] = b"tsroster";
const FORMAT: u8 = 3;
const SIGNATURE_CONTEXT: &[u8] = b"toyseal/v2/roster-signature\x00";
const HASH_CONTEXT: &[u8] = b"toyseal/v1/roster-hash";
const SIG_ENTRY: usize = 16 + 64;
const DEPARTED_ENTRY: usize = PublicIdentity::LEN + 8 + 32;

/// A device a version removed, with the last envelope the family still accepts from it
/// (docs/spec/roster.md §1.3): its sequence and its header hash, the head of the device's sender
/// chain (docs/spec/envelope.md §11.3). What it sealed on that chain stays openable; nothing
/// else does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departed {
    pub(crate) identity: PublicIdentity,
    pub(crate) last_sequence: u64,
    pub(crate) chain_head: [u8; 32],
}

impl Departed {
    /// The departed device's public identity.
    pub fn identity(&self) -> &PublicIdentity {
        &self.identity
    }
    /// The sequence of the last envelope accepted from it (0: none).
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }
    /// The header hash of the last envelope accepted from it (all zero: none): the head of its
    /// sender chain.
    pub fn chain_head(&self) -> &[u8; 32] {
        &self.chain_head
    }
}

/// An unsigned roster version: what a guardian proposes and then signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterProposal {
    pub(crate) family: FamilyId,
    pub(crate) version: u64,
    pub(crate) previous: [u8; 32],
    pub(crate) members: Vec<PublicIdentity>,
    pub(crate) recovery: RecoveryPublicKey,
    pub(crate) departed: Vec<Departed>,
}

impl RosterProposal {
    /// Version 1 of a new family, with the family's recovery key (every family enrols one at
    /// founding, roster.md §1.2: generate it with [`RecoveryKey::generate`], print it for the
    /// family, and co-sign the version with it, [`SignedRoster::cosign_recovery`]). Members are
    /// put in canonical order.
    pub fn founding(
        family: FamilyId,
        members: Vec<PublicIdentity>,
        recovery: RecoveryPublicKey,
    ) -> Result<Self, Error> {
        let mut p = Self {
            family,
            version: 1,
            previous: [0; 32],
            members,
            recovery,
            departed: Vec::new(),
        };
        p.members.sort_by_key(PublicIdentity::device_id);
        p.check()?;
        Ok(p)
    }

    /// The version after `current`, with the given members. The recovery key is carried over;
    /// every member of `current` that `members` leaves out is recorded as departed with last
    /// sequence 0 (nothing accepted) until [`RosterProposal::with_last_envelope`] says more;
    /// earlier departed records are carried over unchanged (a re-added device leaves them).
    /// If that makes more than [`MAX_DEPARTED`] records, drop old ones with
    /// [`RosterProposal::forget_departed`] before signing: a version over the limit is refused.
    pub fn next(current: &crate::Roster, members: Vec<PublicIdentity>) -> Result<Self, Error> {
        let cur = current.signed().proposal();
        let mut members = members;
        members.sort_by_key(PublicIdentity::device_id);
        let is_member = |id: DeviceId| members.iter().any(|m| m.device_id() == id);
        let mut departed: Vec<Departed> = cur
            .departed
            .iter()
            .filter(|d| !is_member(d.identity.device_id()))
            .cloned()
            .collect();
        departed.extend(
            cur.members
                .iter()
                .filter(|m| !is_member(m.device_id()))
                .map(|m| Departed {
                    identity: m.clone(),
                    last_sequence: 0,
                    chain_head: [0; 32],
                }),
        );
        departed.sort_by_key(|d| d.identity.device_id());
        let p = Self {
            family: cur.family,
            version: cur
                .version
                .checked_add(1)
                .ok_or(Error::Malformed("version overflow"))?,
            previous: current.signed().hash(),
            members,
            recovery: cur.recovery,
            departed,
        };
        p.check_but_departed_count()?;
        Ok(p)
    }

    /// Records the last envelope the family accepts from a device this version removes: its
    /// sequence and its header hash (`Header::link_hash`, `Opened::header_hash`), normally the
    /// newest envelope the removing guardian has verified from it. That envelope and its
    /// ancestors on the device's sender chain stay openable; nothing else from it does. Both
    /// zero (the default) accept nothing; one zero without the other is refused.
    pub fn with_last_envelope(
        mut self,
        device: DeviceId,
        sequence: u64,
        chain_head: [u8; 32],
    ) -> Result<Self, Error> {
        if (sequence == 0) != (chain_head == [0; 32]) {
            return Err(Error::Departure(
                "a last sequence needs a chain head, and a chain head a last sequence",
            ));
        }
        let entry = self
            .departed
            .iter_mut()
            .find(|d| d.identity.device_id() == device)
            .ok_or(Error::Departure(
                "the device is not departed in this version",
            ))?;
        entry.last_sequence = sequence;
        entry.chain_head = chain_head;
        Ok(self)
    }

    /// Replaces the family's recovery key (a version may replace it, never drop it). The new
    /// key must co-sign the version ([`SignedRoster::cosign_recovery`]); replacing it is a
    /// grant ([`crate::ChangeClass::Grant`]).
    pub fn with_recovery_key(mut self, key: RecoveryPublicKey) -> Result<Self, Error> {
        self.recovery = key;
        self.check()?;
        Ok(self)
    }

    /// Drops a departed record (the family gives up opening that device's old envelopes),
    /// e.g. to make room under [`MAX_DEPARTED`].
    pub fn forget_departed(mut self, device: DeviceId) -> Self {
        self.departed.retain(|d| d.identity.device_id() != device);
        self
    }

    /// The family.
    pub fn family(&self) -> FamilyId {
        self.family
    }
    /// The version number (1 for a founding roster).
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Hash of the previous version (zero for version 1).
    pub fn previous_hash(&self) -> &[u8; 32] {
        &self.previous
    }
    /// The members, in canonical order.
    pub fn members(&self) -> &[PublicIdentity] {
        &self.members
    }
    /// The family's recovery key.
    pub fn recovery_key(&self) -> &RecoveryPublicKey {
        &self.recovery
    }
    /// Departed devices with their last accepted sequence, in canonical order.
    pub fn departed(&self) -> &[Departed] {
        &self.departed
    }

    /// The structural rules of §1 that one version can be checked against by itself.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.departed.len() > MAX_DEPARTED {
            return Err(Error::Departure("more departed records than allowed"));
        }
        self.check_but_departed_count()
    }

    /// [`Self::check`] without the departed-record limit: a proposal from
    /// [`RosterProposal::next`] may exceed it until the caller forgets old records.
    fn check_but_departed_count(&self) -> Result<(), Error> {
        if self.family.as_bytes() == &[0; 16] {
            return Err(Error::Malformed("zero family id"));
        }
        if self.version == 0 || (self.version == 1) != (self.previous == [0; 32]) {
            return Err(Error::Malformed(
                "version 1 has a zero previous hash, later ones not",
            ));
        }
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return Err(Error::MemberCount {
                count: self.members.len(),
                max: MAX_MEMBERS,
            });
        }
        ascending(self.members.iter().map(PublicIdentity::device_id))?;
        ascending(self.departed.iter().map(|d| d.identity.device_id()))?;
        if self
            .departed
            .iter()
            .any(|d| (d.last_sequence == 0) != (d.chain_head == [0; 32]))
        {
            return Err(Error::Departure(
                "a last sequence needs a chain head, and a chain head a last sequence",
            ));
        }
        if self.version == 1 && !self.departed.is_empty() {
            return Err(Error::Malformed("version 1 has no departed devices"));
        }
        if self.departed.iter().any(|d| {
            self.members
                .iter()
                .any(|m| m.device_id() == d.identity.device_id())
        }) {
            return Err(Error::Departure("a device is both a member and departed"));
        }
        let guardians = self
            .members
            .iter()
            .filter(|m| m.role() == Role::Guardian)
            .count();
        if guardians == 0 {
            return Err(Error::NoGuardian);
        }
        // With a guardian and the recovery key (r = 1, checked by the decoder and by the type
        // here), a quorum of every class can always form: no version locks a family out.
        distinct_keys(&self.members, &self.recovery)?;
        Ok(())
    }

    fn encode_body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(
            8 + 1
                + 16
                + 8
                + 32
                + 3
                + PublicIdentity::LEN * self.members.len()
                + 32
                + DEPARTED_ENTRY * self.departed.len(),
        );
        b.extend_from_slice(MAGIC);
        b.push(FORMAT);
        b.extend_from_slice(self.family.as_bytes());
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&self.previous);
        // Invariant: counts are bounded by MAX_MEMBERS / MAX_RECOVERY_KEYS / MAX_DEPARTED
        // (checked by every constructor), all below 256.
        b.push(self.members.len() as u8);
        for m in &self.members {
            b.extend_from_slice(&m.to_bytes());
        }
        b.push(1);
        b.extend_from_slice(self.recovery.as_bytes());
        b.push(self.departed.len() as u8);
        for d in &self.departed {
            b.extend_from_slice(&d.identity.to_bytes());
            b.extend_from_slice(&d.last_sequence.to_be_bytes());
            b.extend_from_slice(&d.chain_head);
        }
        b
    }

    /// Signs the proposal, giving a roster with one signature.
    pub fn sign(self, signer: &DeviceIdentity) -> SignedRoster {
        let mut s = self.into_signed();
        s.cosign(signer);
        s
    }

    /// Signs the proposal with the family's recovery key.
    pub fn sign_with_recovery(self, key: &RecoveryKey) -> SignedRoster {
        let mut s = self.into_signed();
        s.cosign_recovery(key);
        s
    }

    fn into_signed(self) -> SignedRoster {
        let body = self.encode_body();
        SignedRoster {
            proposal: self,
            body,
            signatures: Vec::new(),
        }
    }
}

/// Keys distinct across members (Ed25519 and X25519 each) and the recovery key distinct from
/// every member's signing key (roster.md §1): one key is one vote and one recipient. Device ids
/// hash the whole identity, so distinct ids alone do not give this.
fn distinct_keys(members: &[PublicIdentity], recovery: &RecoveryPublicKey) -> Result<(), Error> {
    let mut signing: Vec<&[u8; 32]> = members.iter().map(PublicIdentity::signing_key).collect();
    signing.push(recovery.as_bytes());
    let mut agreement: Vec<&[u8; 32]> = members
        .iter()
        .map(|m| m.agreement_key().as_bytes())
        .collect();
    for keys in [&mut signing, &mut agreement] {
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::SharedKey);
        }
    }
    Ok(())
}

/// Device ids strictly ascending: canonical order, hence no duplicates.
fn ascending(ids: impl Iterator<Item = DeviceId>) -> Result<(), Error> {
    let ids: Vec<DeviceId> = ids.collect();
    if ids.windows(2).all(|w| w[0] < w[1]) {
        return Ok(());
    }
    if ids.windows(2).any(|w| w[0] == w[1]) {
        Err(Error::DuplicateMember)
    } else {
        Err(Error::NotCanonical)
    }
}

/// A roster version with its signatures, as it travels. Parsing checks structure only:
/// trust comes from [`crate::Roster`]'s verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRoster {
    pub(crate) proposal: RosterProposal,
    body: Vec<u8>,
    pub(crate) signatures: Vec<(DeviceId, Signature)>,
}

impl SignedRoster {
    /// The unsigned content.
    pub fn proposal(&self) -> &RosterProposal {
        &self.proposal
    }

    /// Signers' ids (device ids, and the recovery key's id), ascending.
    pub fn signers(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.signatures.iter().map(|(id, _)| *id)
    }

    /// The message every signer signs.
    pub(crate) fn signed_message(&self) -> Vec<u8> {
        let mut m = SIGNATURE_CONTEXT.to_vec();
        m.extend_from_slice(ring::digest::digest(&SHA256, &self.body).as_ref());
        m
    }

    /// Adds (or replaces) `signer`'s signature.
    pub fn cosign(&mut self, signer: &DeviceIdentity) {
        let sig = signer.sign(&self.signed_message());
        insert_signature(&mut self.signatures, signer.device_id(), sig);
    }

    /// Adds (or replaces) the recovery key's signature.
    pub fn cosign_recovery(&mut self, key: &RecoveryKey) {
        let sig = key.sign(&self.signed_message());
        insert_signature(&mut self.signatures, key.public().id(), sig);
    }

    /// `SHA-256("toyseal/v1/roster-hash" || body)`: names this version; the next one chains to it.
    pub fn hash(&self) -> [u8; 32] {
        let mut ctx = Context::new(&SHA256);
        ctx.update(HASH_CONTEXT);
        ctx.update(&self.body);
        let mut h = [0u8; 32];
        h.copy_from_slice(ctx.finish().as_ref());
        h
    }

    /// The fork check (roster.md §3.6), for a device holding this version and shown `other`
    /// (by a server, a phone or the toy's session): [`Error::Fork`] when `other` is a version
    /// of the same family with the same number and another hash — the family's roster was
    /// changed without this device. `Ok` for the same version, another number or another
    /// family (nothing to compare). A device holding a chain calls it on the version of its
    /// chain with `other`'s number.
    pub fn check_same(&self, other: &SignedRoster) -> Result<(), Error> {
        let (me, them) = (&self.proposal, &other.proposal);
        if me.family == them.family && me.version == them.version && self.hash() != other.hash() {
            return Err(Error::Fork {
                version: me.version,
            });
        }
        Ok(())
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.body.clone();
        encode_signatures(&mut out, &self.signatures);
        out
    }

    /// Parses the wire form (structure only; see [`crate::Roster`] for trust).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader(bytes);
        r.preamble(MAGIC, FORMAT, "not a roster (magic)")?;
        let family = FamilyId::from_bytes(r.array()?);
        let version = u64::from_be_bytes(r.array()?);
        let previous: [u8; 32] = r.array()?;
        let count = usize::from(r.byte()?);
        if count == 0 || count > MAX_MEMBERS {
            return Err(Error::MemberCount {
                count,
                max: MAX_MEMBERS,
            });
        }
        let members = (0..count)
            .map(|_| Ok(PublicIdentity::from_bytes(r.take(PublicIdentity::LEN)?)?))
            .collect::<Result<Vec<_>, Error>>()?;
        let recovery = match r.byte()? {
            0 => return Err(Error::NoRecoveryKey),
            1 => RecoveryPublicKey::from_bytes(r.array()?)?,
            _ => return Err(Error::Malformed("at most one recovery key")),
        };
        let departed_count = usize::from(r.byte()?);
        if departed_count > MAX_DEPARTED {
            return Err(Error::Departure("more departed records than allowed"));
        }
        let departed = (0..departed_count)
            .map(|_| {
                Ok(Departed {
                    identity: PublicIdentity::from_bytes(r.take(PublicIdentity::LEN)?)?,
                    last_sequence: u64::from_be_bytes(r.array()?),
                    chain_head: r.array()?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let body_len = bytes.len() - r.0.len();
        let proposal = RosterProposal {
            family,
            version,
            previous,
            members,
            recovery,
            departed,
        };
        proposal.check()?;
        let signatures = decode_signatures(r.0)?;
        Ok(Self {
            proposal,
            body: bytes
                .get(..body_len)
                .ok_or(Error::Malformed("body"))?
                .to_vec(),
            signatures,
        })
    }
}

/// A bounds-checked cursor over input bytes.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or(Error::Malformed("truncated"))?;
        self.0 = rest;
        Ok(head)
    }
    /// `magic || format`: a wrong magic is `Malformed(not_this)`, another format
    /// `UnsupportedFormat`.
    pub(crate) fn preamble(
        &mut self,
        magic: &[u8; 8],
        format: u8,
        not_this: &'static str,
    ) -> Result<(), Error> {
        if self.take(8)? != magic {
            return Err(Error::Malformed(not_this));
        }
        match self.byte()? {
            f if f == format => Ok(()),
            other => Err(Error::UnsupportedFormat(other)),
        }
    }
    pub(crate) fn byte(&mut self) -> Result<u8, Error> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(Error::Malformed("truncated"))?;
        self.0 = rest;
        Ok(*head)
    }
}

pub(crate) fn insert_signature(
    signatures: &mut Vec<(DeviceId, Signature)>,
    id: DeviceId,
    sig: Signature,
) {
    signatures.retain(|(s, _)| *s != id);
    signatures.push((id, sig));
    signatures.sort_by_key(|(id, _)| *id);
}

/// `s (1) || s × (signer id (16) || signature (64))`.
pub(crate) fn encode_signatures(out: &mut Vec<u8>, signatures: &[(DeviceId, Signature)]) {
    // Invariant: one signature per allowed signer (at most 2 × (MAX_MEMBERS + 1)); a larger
    // set can only come from a caller co-signing with unrelated keys, and decode on the other
    // side refuses what does not verify.
    out.push(signatures.len().min(255) as u8);
    for (id, sig) in signatures.iter().take(255) {
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(sig.as_bytes());
    }
}

/// The signature section, which must end the input: at least one, strictly ascending ids.
pub(crate) fn decode_signatures(bytes: &[u8]) -> Result<Vec<(DeviceId, Signature)>, Error> {
    let (&count, sigs) = bytes
        .split_first()
        .ok_or(Error::Malformed("no signature count"))?;
    if sigs.len() != usize::from(count) * SIG_ENTRY {
        return Err(Error::Malformed("signature section length"));
    }
    if count == 0 {
        return Err(Error::Unauthorized("no signatures"));
    }
    let signatures: Vec<(DeviceId, Signature)> = sigs
        .chunks_exact(SIG_ENTRY)
        .map(|e| {
            let mut r = Reader(e);
            Ok((
                DeviceId::from_bytes(r.array()?),
                Signature::from_bytes(r.array()?),
            ))
        })
        .collect::<Result<_, Error>>()?;
    if !signatures.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(Error::NotCanonical);
    }
    Ok(signatures)
}
