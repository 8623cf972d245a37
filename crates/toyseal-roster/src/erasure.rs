//! The signed statement that erases named envelopes at once (docs/spec/roster.md §5.1): the
//! family id, the hash of the roster version it is decided under and the envelope ids, signed
//! by two guardians or a guardian and the recovery key (THREATS T36). The server verifies it
//! ([`Roster::verify_erasure`]) before it erases another device's envelope without the 30-day
//! soft deletion, or beyond a device's daily soft-deletion limit. The toy's signature does not
//! count here: a button a child can press never erases recordings.
//!
//! ```text
//! body      = "tserased" || 0x01 || family id (16) || roster hash (32)
//!             || n (1, 1..=64) || n × envelope id (32), strictly ascending
//! statement = body || s (1) || s × (signer id (16) || Ed25519 signature (64)), ascending id
//! signature over "toyseal/v1/envelope-erasure" || 0x00 || SHA-256(body)
//! ```

use crate::format::{Reader, decode_signatures, encode_signatures, insert_signature};
use crate::{Error, RecoveryKey, Roster};
use ring::digest::{SHA256, digest};
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, Signature};

const MAGIC: &[u8; 8] = b"tserased";
const FORMAT: u8 = 1;
const SIGNATURE_CONTEXT: &[u8] = b"toyseal/v1/envelope-erasure\x00";

/// Most envelope ids one erasure statement names (a larger erasure is several statements).
pub const MAX_ERASURE_IDS: usize = 64;

/// "Erase these envelopes now", decided under one roster version, with its signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeErasure {
    family: FamilyId,
    roster_hash: [u8; 32],
    /// Strictly ascending, 1 to [`MAX_ERASURE_IDS`].
    envelopes: Vec<[u8; 32]>,
    signatures: Vec<(DeviceId, Signature)>,
}

impl EnvelopeErasure {
    /// An unsigned statement erasing `envelopes` (SHA-256 ids of envelopes, as the server
    /// names them) under `roster`'s current version. The ids are sorted and de-duplicated;
    /// none, or more than [`MAX_ERASURE_IDS`], is [`Error::Malformed`].
    pub fn new(
        roster: &Roster,
        envelopes: impl IntoIterator<Item = [u8; 32]>,
    ) -> Result<Self, Error> {
        let mut envelopes: Vec<[u8; 32]> = envelopes.into_iter().collect();
        envelopes.sort_unstable();
        envelopes.dedup();
        check_count(envelopes.len())?;
        Ok(Self {
            family: roster.family(),
            roster_hash: roster.signed().hash(),
            envelopes,
            signatures: Vec::new(),
        })
    }

    /// The family.
    pub fn family(&self) -> FamilyId {
        self.family
    }
    /// The hash of the roster version the erasure was decided under.
    pub fn roster_hash(&self) -> &[u8; 32] {
        &self.roster_hash
    }
    /// The envelope ids to erase, ascending.
    pub fn envelopes(&self) -> &[[u8; 32]] {
        &self.envelopes
    }
    /// Signers' ids, ascending.
    pub fn signers(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.signatures.iter().map(|(id, _)| *id)
    }

    fn body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + 1 + 16 + 32 + 1 + 32 * self.envelopes.len());
        b.extend_from_slice(MAGIC);
        b.push(FORMAT);
        b.extend_from_slice(self.family.as_bytes());
        b.extend_from_slice(&self.roster_hash);
        // Invariant: 1..=MAX_ERASURE_IDS (64) ids, checked by `new` and `decode`.
        b.push(self.envelopes.len().min(MAX_ERASURE_IDS) as u8);
        for id in self.envelopes.iter().take(MAX_ERASURE_IDS) {
            b.extend_from_slice(id);
        }
        b
    }

    fn signed_message(&self) -> Vec<u8> {
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

    /// Parses the wire form (structure only; see [`Roster::verify_erasure`] for trust).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader(bytes);
        r.preamble(MAGIC, FORMAT, "not an envelope erasure (magic)")?;
        let family: [u8; 16] = r.array()?;
        if family == [0; 16] {
            return Err(Error::Malformed("zero family id"));
        }
        let roster_hash = r.array()?;
        let n = usize::from(r.byte()?);
        check_count(n)?;
        let envelopes = (0..n)
            .map(|_| r.array::<32>())
            .collect::<Result<Vec<_>, _>>()?;
        if !envelopes.windows(2).all(|w| w[0] < w[1]) {
            return Err(Error::NotCanonical);
        }
        Ok(Self {
            family: FamilyId::from_bytes(family),
            roster_hash,
            envelopes,
            signatures: decode_signatures(r.0)?,
        })
    }
}

fn check_count(n: usize) -> Result<(), Error> {
    match n {
        0 => Err(Error::Malformed("an erasure names no envelope")),
        n if n > MAX_ERASURE_IDS => {
            Err(Error::Malformed("an erasure names more than 64 envelopes"))
        }
        _ => Ok(()),
    }
}

impl Roster {
    /// Verifies an envelope erasure against this (current) version: same family
    /// (`WrongFamily`), decided under this version (`NotCurrentRoster`), every signature from
    /// a member or the recovery key of this version (`Signature`), and signed by two guardians
    /// or a guardian and the recovery key (`Unauthorized`; the toy does not count, DESIGN
    /// "Family governance", last row of the change table).
    pub fn verify_erasure(&self, erasure: &EnvelopeErasure) -> Result<(), Error> {
        if erasure.family != self.family() {
            return Err(Error::WrongFamily);
        }
        if erasure.roster_hash != self.signed().hash() {
            return Err(Error::NotCurrentRoster);
        }
        let current = &self.signed().proposal;
        let signers = crate::roster::verified_signers(
            &erasure.signatures,
            &erasure.signed_message(),
            &[current],
        )?;
        // The deletion class of the change table (roster.md §3.3), the same function as a
        // family deletion: two guardians, or a guardian and the recovery key; never the toy.
        if !crate::governance::class_quorum(current, crate::ChangeClass::Deletion, &signers) {
            return Err(Error::Unauthorized(
                "erasing envelopes at once needs two guardians, or a guardian and the \
                 recovery key (the toy does not count)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::RosterProposal;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;
    use toyseal_core::{PublicIdentity, Role};

    struct Family {
        mum: DeviceIdentity,
        dad: DeviceIdentity,
        toy: DeviceIdentity,
        recovery: RecoveryKey,
        roster: Roster,
    }

    fn family() -> Family {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let mum = DeviceIdentity::generate(Role::Guardian, &mut rng);
        let dad = DeviceIdentity::generate(Role::Guardian, &mut rng);
        let toy = DeviceIdentity::generate(Role::Toy, &mut rng);
        let recovery = RecoveryKey::generate(&mut rng).unwrap();
        let members: Vec<PublicIdentity> = [&mum, &dad, &toy]
            .iter()
            .map(|d| d.public().clone())
            .collect();
        let p = RosterProposal::founding(FamilyId::generate(&mut rng), members, *recovery.public())
            .unwrap();
        let mut v1 = p.sign(&mum);
        v1.cosign(&dad);
        v1.cosign(&toy);
        v1.cosign_recovery(&recovery);
        let roster = Roster::verify_founding(v1).unwrap();
        Family {
            mum,
            dad,
            toy,
            recovery,
            roster,
        }
    }

    #[test]
    fn quorum_is_two_guardians_or_guardian_and_recovery_never_the_toy() {
        let f = family();
        let ids = [[3u8; 32], [1; 32], [3; 32]];
        let mut e = EnvelopeErasure::new(&f.roster, ids).unwrap();
        assert_eq!(e.envelopes(), &[[1; 32], [3; 32]]);
        e.cosign(&f.mum);
        assert!(matches!(
            f.roster.verify_erasure(&e),
            Err(Error::Unauthorized(_))
        ));
        let mut with_toy = e.clone();
        with_toy.cosign(&f.toy);
        assert!(matches!(
            f.roster
                .verify_erasure(&EnvelopeErasure::decode(&with_toy.encode()).unwrap()),
            Err(Error::Unauthorized(_))
        ));
        let mut with_recovery = e.clone();
        with_recovery.cosign_recovery(&f.recovery);
        f.roster.verify_erasure(&with_recovery).unwrap();
        e.cosign(&f.dad);
        let back = EnvelopeErasure::decode(&e.encode()).unwrap();
        assert_eq!(back, e);
        f.roster.verify_erasure(&back).unwrap();
    }

    #[test]
    fn bad_shapes_are_typed_errors() {
        let f = family();
        assert!(matches!(
            EnvelopeErasure::new(&f.roster, []),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            EnvelopeErasure::new(&f.roster, (0..=64u8).map(|i| [i; 32])),
            Err(Error::Malformed(_))
        ));
        let mut e = EnvelopeErasure::new(&f.roster, [[1; 32], [2; 32]]).unwrap();
        e.cosign(&f.mum);
        e.cosign(&f.dad);
        let good = e.encode();
        for cut in 0..good.len() {
            assert!(EnvelopeErasure::decode(&good[..cut]).is_err(), "{cut}");
        }
        // Ids swapped: not canonical.
        let mut swapped = good.clone();
        let at = 8 + 1 + 16 + 32 + 1;
        swapped[at..at + 32].copy_from_slice(&[2; 32]);
        swapped[at + 32..at + 64].copy_from_slice(&[1; 32]);
        assert!(matches!(
            EnvelopeErasure::decode(&swapped),
            Err(Error::NotCanonical)
        ));
        // Another id under the same signatures: the signatures no longer verify.
        let mut changed = good.clone();
        changed[at + 63] = 9;
        let changed = EnvelopeErasure::decode(&changed).unwrap();
        assert!(matches!(
            f.roster.verify_erasure(&changed),
            Err(Error::Signature)
        ));
        let mut family_deletion_magic = good;
        family_deletion_magic[..8].copy_from_slice(b"tsdelete");
        assert!(matches!(
            EnvelopeErasure::decode(&family_deletion_magic),
            Err(Error::Malformed(_))
        ));
    }
}
