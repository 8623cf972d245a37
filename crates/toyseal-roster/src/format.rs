//! The roster's wire format (docs/spec/roster.md §Format): an unsigned body, then signatures.
//!
//! ```text
//! body      = "tsroster" || 0x01 || family id (16) || version (8) || previous hash (32)
//!             || member count (1) || members (66 each, ascending device id)
//! roster    = body || signature count (1) || signatures (80 each, ascending signer id)
//! signature = signer device id (16) || Ed25519 (64) over
//!             "toyseal/v1/roster-signature" || 0x00 || SHA-256(body)
//! hash      = SHA-256("toyseal/v1/roster-hash" || body)      (the next version's previous hash)
//! ```

use crate::Error;
use ring::digest::{Context, SHA256};
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, PublicIdentity, Role, Signature};

/// Most members a roster may have.
pub const MAX_MEMBERS: usize = 32;
const MAGIC: &[u8; 8] = b"tsroster";
const FORMAT: u8 = 1;
const SIGNATURE_CONTEXT: &[u8] = b"toyseal/v1/roster-signature\x00";
const HASH_CONTEXT: &[u8] = b"toyseal/v1/roster-hash";
const FIXED: usize = 8 + 1 + 16 + 8 + 32 + 1;
const SIG_ENTRY: usize = 16 + 64;

/// An unsigned roster version: what a guardian proposes and then signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterProposal {
    pub(crate) family: FamilyId,
    pub(crate) version: u64,
    pub(crate) previous: [u8; 32],
    pub(crate) members: Vec<PublicIdentity>,
}

impl RosterProposal {
    /// Version 1 of a new family. Members are put in canonical order.
    pub fn founding(family: FamilyId, members: Vec<PublicIdentity>) -> Result<Self, Error> {
        Self::new(family, 1, [0; 32], members)
    }

    fn new(
        family: FamilyId,
        version: u64,
        previous: [u8; 32],
        mut members: Vec<PublicIdentity>,
    ) -> Result<Self, Error> {
        if family.as_bytes() == &[0; 16] {
            return Err(Error::Malformed("zero family id"));
        }
        if members.is_empty() || members.len() > MAX_MEMBERS {
            return Err(Error::MemberCount {
                count: members.len(),
                max: MAX_MEMBERS,
            });
        }
        members.sort_by_key(PublicIdentity::device_id);
        if members
            .windows(2)
            .any(|w| w[0].device_id() == w[1].device_id())
        {
            return Err(Error::DuplicateMember);
        }
        if !members.iter().any(|m| m.role() == Role::Guardian) {
            return Err(Error::NoGuardian);
        }
        Ok(Self {
            family,
            version,
            previous,
            members,
        })
    }

    /// The version after `current`, with the given members.
    pub fn next(current: &crate::Roster, members: Vec<PublicIdentity>) -> Result<Self, Error> {
        let cur = current.signed();
        Self::new(
            cur.proposal.family,
            cur.proposal
                .version
                .checked_add(1)
                .ok_or(Error::Malformed("version overflow"))?,
            cur.hash(),
            members,
        )
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

    fn encode_body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(FIXED + 66 * self.members.len());
        b.extend_from_slice(MAGIC);
        b.push(FORMAT);
        b.extend_from_slice(self.family.as_bytes());
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&self.previous);
        // Invariant: 1 <= members.len() <= MAX_MEMBERS (checked by every constructor).
        b.push(self.members.len() as u8);
        for m in &self.members {
            b.extend_from_slice(&m.to_bytes());
        }
        b
    }

    /// Signs the proposal, giving a roster with one signature.
    pub fn sign(self, signer: &DeviceIdentity) -> SignedRoster {
        let body = self.encode_body();
        let mut s = SignedRoster {
            proposal: self,
            body,
            signatures: Vec::new(),
        };
        s.cosign(signer);
        s
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

    /// Signers' device ids, ascending.
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
        let id = signer.device_id();
        self.signatures.retain(|(s, _)| *s != id);
        self.signatures.push((id, sig));
        self.signatures.sort_by_key(|(id, _)| *id);
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

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.body.clone();
        // Invariant: at most one signature per member of this or the previous version, and the
        // verifier refuses more than 255; encoding a larger set is a programming error caught
        // by decode on the other side.
        out.push(self.signatures.len().min(255) as u8);
        for (id, sig) in self.signatures.iter().take(255) {
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(sig.as_bytes());
        }
        out
    }

    /// Parses the wire form (structure only; see [`crate::Roster`] for trust).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (fixed, rest) = bytes
            .split_first_chunk::<FIXED>()
            .ok_or(Error::Malformed("shorter than a roster header"))?;
        if &fixed[0..8] != MAGIC {
            return Err(Error::Malformed("not a roster (magic)"));
        }
        if fixed[8] != FORMAT {
            return Err(Error::UnsupportedFormat(fixed[8]));
        }
        let family: [u8; 16] = fixed[9..25]
            .try_into()
            .map_err(|_| Error::Malformed("family"))?;
        if family == [0; 16] {
            return Err(Error::Malformed("zero family id"));
        }
        let version = u64::from_be_bytes(
            fixed[25..33]
                .try_into()
                .map_err(|_| Error::Malformed("version"))?,
        );
        let previous: [u8; 32] = fixed[33..65]
            .try_into()
            .map_err(|_| Error::Malformed("previous hash"))?;
        if version == 0 || (version == 1) != (previous == [0; 32]) {
            return Err(Error::Malformed(
                "version 1 has a zero previous hash, later ones not",
            ));
        }
        let count = usize::from(fixed[65]);
        if count == 0 || count > MAX_MEMBERS {
            return Err(Error::MemberCount {
                count,
                max: MAX_MEMBERS,
            });
        }
        let (members_bytes, rest) = rest
            .split_at_checked(count * PublicIdentity::LEN)
            .ok_or(Error::Malformed("members truncated"))?;
        let members = members_bytes
            .chunks_exact(PublicIdentity::LEN)
            .map(PublicIdentity::from_bytes)
            .collect::<Result<Vec<_>, _>>()?;
        if !members
            .windows(2)
            .all(|w| w[0].device_id() < w[1].device_id())
        {
            return Err(
                if members
                    .windows(2)
                    .any(|w| w[0].device_id() == w[1].device_id())
                {
                    Error::DuplicateMember
                } else {
                    Error::NotCanonical
                },
            );
        }
        if !members.iter().any(|m| m.role() == Role::Guardian) {
            return Err(Error::NoGuardian);
        }
        let (&sig_count, sigs) = rest
            .split_first()
            .ok_or(Error::Malformed("no signature count"))?;
        if sigs.len() != usize::from(sig_count) * SIG_ENTRY {
            return Err(Error::Malformed("signature section length"));
        }
        if sig_count == 0 {
            return Err(Error::Unauthorized("no signatures"));
        }
        let signatures = sigs
            .chunks_exact(SIG_ENTRY)
            .map(|e| {
                let (id, sig) = e.split_at(16);
                Ok((
                    DeviceId::from_bytes(id.try_into().map_err(|_| Error::Malformed("signer"))?),
                    Signature::from_bytes(sig.try_into().map_err(|_| Error::Malformed("sig"))?),
                ))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if !signatures.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(Error::NotCanonical);
        }
        let body_len = FIXED + count * PublicIdentity::LEN;
        Ok(Self {
            proposal: RosterProposal {
                family: FamilyId::from_bytes(family),
                version,
                previous,
                members,
            },
            body: bytes
                .get(..body_len)
                .ok_or(Error::Malformed("body"))?
                .to_vec(),
            signatures,
        })
    }
}
