//! The signed statement that deletes a family (docs/spec/roster.md §5): the family id and the
//! hash of the roster version it is decided under, signed by the same quorum as a membership
//! change. The server verifies it ([`crate::Roster::verify_deletion`]) before it erases
//! anything, so one stolen phone cannot wipe a family's recordings.
//!
//! ```text
//! body      = "tsdelete" || 0x01 || family id (16) || roster hash (32)
//! statement = body || s (1) || s × (signer id (16) || Ed25519 signature (64)), ascending id
//! signature over "toyseal/v1/family-deletion" || 0x00 || SHA-256(body)
//! ```

use crate::format::{Reader, decode_signatures, encode_signatures, insert_signature};
use crate::{Error, RecoveryKey, Roster};
use ring::digest::{SHA256, digest};
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, Signature};

const MAGIC: &[u8; 8] = b"tsdelete";
const FORMAT: u8 = 1;
const SIGNATURE_CONTEXT: &[u8] = b"toyseal/v1/family-deletion\x00";

/// "Delete this family", decided under one roster version, with its signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyDeletion {
    pub(crate) family: FamilyId,
    pub(crate) roster_hash: [u8; 32],
    pub(crate) signatures: Vec<(DeviceId, Signature)>,
}

impl FamilyDeletion {
    /// An unsigned statement to delete `roster`'s family under its current version.
    pub fn new(roster: &Roster) -> Self {
        Self {
            family: roster.family(),
            roster_hash: roster.signed().hash(),
            signatures: Vec::new(),
        }
    }

    /// The family to delete.
    pub fn family(&self) -> FamilyId {
        self.family
    }
    /// The hash of the roster version the deletion was decided under.
    pub fn roster_hash(&self) -> &[u8; 32] {
        &self.roster_hash
    }
    /// Signers' ids, ascending.
    pub fn signers(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.signatures.iter().map(|(id, _)| *id)
    }

    fn body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + 1 + 16 + 32);
        b.extend_from_slice(MAGIC);
        b.push(FORMAT);
        b.extend_from_slice(self.family.as_bytes());
        b.extend_from_slice(&self.roster_hash);
        b
    }

    pub(crate) fn signed_message(&self) -> Vec<u8> {
        let mut m = SIGNATURE_CONTEXT.to_vec();
        m.extend_from_slice(digest(&SHA256, &self.body()).as_ref());
        m
    }

    /// Adds (or replaces) a device's signature.
    pub fn cosign(&mut self, signer: &DeviceIdentity) {
        let sig = signer.sign(&self.signed_message());
        insert_signature(&mut self.signatures, signer.device_id(), sig);
    }

    /// Adds (or replaces) the recovery key's signature.
    pub fn cosign_recovery(&mut self, key: &RecoveryKey) {
        let sig = key.sign(&self.signed_message());
        insert_signature(&mut self.signatures, key.public().id(), sig);
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.body();
        encode_signatures(&mut out, &self.signatures);
        out
    }

    /// Parses the wire form (structure only; see [`Roster::verify_deletion`] for trust).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader(bytes);
        r.preamble(MAGIC, FORMAT, "not a family deletion (magic)")?;
        let family: [u8; 16] = r.array()?;
        if family == [0; 16] {
            return Err(Error::Malformed("zero family id"));
        }
        let roster_hash = r.array()?;
        Ok(Self {
            family: FamilyId::from_bytes(family),
            roster_hash,
            signatures: decode_signatures(r.0)?,
        })
    }
}
