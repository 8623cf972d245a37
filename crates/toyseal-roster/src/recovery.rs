//! The family's recovery key (docs/spec/roster.md §1.2): a printable Ed25519 key that counts as
//! a guardian for the quorum of a membership change or a family deletion, and for nothing else
//! (it receives no envelopes and signs no requests).
//!
//! Printable form: Bech32m (BIP 350) of the 32-byte Ed25519 seed under the human-readable part
//! `toyseal-recovery-`, upper case (`TOYSEAL-RECOVERY-1…`), so a typo is caught by the
//! checksum and a QR code can use its alphanumeric mode.

use crate::Error;
use bech32::{Bech32m, Hrp, primitives::decode::CheckedHrpstring};
use curve25519_dalek::edwards::CompressedEdwardsY;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::fmt;
use toyseal_core::{CryptoRng, DeviceId, Signature, Zeroizing};

const HRP: &str = "toyseal-recovery-";
const ID_CONTEXT: &[u8] = b"toyseal/v1/recovery-id";
/// Context of a recovery proof (docs/spec/pairing.md §7.2): the key signs
/// `"toyseal/v1/recovery-proof\x00" || handshake hash (32)` of one Noise session with the toy.
const PROOF_CONTEXT: &[u8] = b"toyseal/v1/recovery-proof\x00";

fn proof_message(handshake_hash: &[u8; 32]) -> Vec<u8> {
    let mut m = PROOF_CONTEXT.to_vec();
    m.extend_from_slice(handshake_hash);
    m
}

/// The public half of a recovery key, as a roster lists it.
///
/// Construction validates the key strictly: the encoding must decode as in RFC 8032 §5.1.3
/// **and** be canonical (y < p, no negative zero), and the point must not be of small order —
/// otherwise anyone could forge its signatures.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecoveryPublicKey([u8; 32]);

impl RecoveryPublicKey {
    /// Length of the binary form.
    pub const LEN: usize = 32;

    /// Validates and wraps an Ed25519 public key.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, Error> {
        let point = CompressedEdwardsY(bytes)
            .decompress()
            .ok_or(Error::RecoveryKey("not an Ed25519 point"))?;
        if point.compress().to_bytes() != bytes {
            return Err(Error::RecoveryKey("non-canonical Ed25519 encoding"));
        }
        if point.is_small_order() {
            return Err(Error::RecoveryKey("small-order Ed25519 point"));
        }
        Ok(Self(bytes))
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The signer id under which the key's signatures appear in a roster or a deletion:
    /// `SHA-256("toyseal/v1/recovery-id" || key)[..16]` (device ids use another context, so
    /// the two never meet by construction).
    pub fn id(&self) -> DeviceId {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(ID_CONTEXT);
        ctx.update(&self.0);
        let digest = ctx.finish();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest.as_ref()[..16]);
        DeviceId::from_bytes(id)
    }

    /// Verifies a recovery proof ([`RecoveryKey::sign_recovery_proof`]) over the handshake hash
    /// of the session it arrived in (docs/spec/pairing.md §7.2). [`Error::Signature`] when it
    /// does not verify (another key, or a proof made for another session).
    pub fn verify_recovery_proof(
        &self,
        handshake_hash: &[u8; 32],
        signature: &Signature,
    ) -> Result<(), Error> {
        self.verify(&proof_message(handshake_hash), signature)
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), Error> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature.as_bytes())
            .map_err(|_| Error::Signature)
    }
}

impl fmt::Debug for RecoveryPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RecoveryPublicKey")
            .field(&self.id())
            .finish()
    }
}

/// A recovery key's secret: generated on a guardian's phone at founding (or when a family is
/// left with one guardian), printed once, then deleted from the phone.
///
/// The seed is zeroized on drop and never printed by `Debug`; it leaves the value only through
/// [`RecoveryKey::export_printable`].
pub struct RecoveryKey {
    seed: Zeroizing<[u8; 32]>,
    pair: Ed25519KeyPair,
    public: RecoveryPublicKey,
}

impl RecoveryKey {
    /// A new random recovery key.
    pub fn generate(rng: &mut impl CryptoRng) -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(seed)
    }

    fn from_seed(seed: Zeroizing<[u8; 32]>) -> Result<Self, Error> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
            .map_err(|_| Error::RecoveryKey("seed"))?;
        let public_bytes: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| Error::RecoveryKey("public key length"))?;
        let public = RecoveryPublicKey::from_bytes(public_bytes)?;
        Ok(Self { seed, pair, public })
    }

    /// Parses the printed form (`TOYSEAL-RECOVERY-1…`, upper or lower case, surrounding white
    /// space ignored).
    pub fn from_printable(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let checked = CheckedHrpstring::new::<Bech32m>(text)
            .map_err(|_| Error::RecoveryKey("not a printed recovery key (checksum)"))?;
        if !checked.hrp().as_str().eq_ignore_ascii_case(HRP) {
            return Err(Error::RecoveryKey("not a recovery key (prefix)"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut n = 0usize;
        for b in checked.byte_iter() {
            *seed
                .get_mut(n)
                .ok_or(Error::RecoveryKey("a recovery key is 32 bytes"))? = b;
            n += 1;
        }
        if n != 32 {
            return Err(Error::RecoveryKey("a recovery key is 32 bytes"));
        }
        let key = Self::from_seed(seed)?;
        // One spelling per key (as for device keys): padding bits and extra groups refused.
        if !key.export_printable()?.eq_ignore_ascii_case(text) {
            return Err(Error::RecoveryKey("not the canonical spelling of a key"));
        }
        Ok(key)
    }

    /// The printable secret, `TOYSEAL-RECOVERY-1…`: show it once for the family to print or
    /// write down. Anyone who reads it holds a second authority over the family.
    pub fn export_printable(&self) -> Result<Zeroizing<String>, Error> {
        let hrp = Hrp::parse(HRP).map_err(|_| Error::RecoveryKey("prefix"))?;
        let text = bech32::encode_upper::<Bech32m>(hrp, self.seed.as_ref())
            .map_err(|_| Error::RecoveryKey("encoding"))?;
        Ok(Zeroizing::new(text))
    }

    /// The public half.
    pub fn public(&self) -> &RecoveryPublicKey {
        &self.public
    }

    /// Proves possession of the recovery key to a toy in one session (docs/spec/pairing.md
    /// §7.2): an Ed25519 signature over `"toyseal/v1/recovery-proof\x00" || handshake_hash`,
    /// where `handshake_hash` is the Noise handshake hash of that session (its channel
    /// binding), so the proof is worth nothing in any other session. The context string is
    /// used for nothing else, so the proof is never a roster or deletion signature.
    pub fn sign_recovery_proof(&self, handshake_hash: &[u8; 32]) -> Signature {
        self.sign(&proof_message(handshake_hash))
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        let sig = self.pair.sign(message);
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(sig.as_ref());
        Signature::from_bytes(bytes)
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn printable_round_trip_and_no_secret_in_debug() {
        let mut rng = toyseal_core::OsRng;
        let k = RecoveryKey::generate(&mut rng).unwrap();
        let text = k.export_printable().unwrap();
        assert!(text.starts_with("TOYSEAL-RECOVERY-1"));
        let back = RecoveryKey::from_printable(&format!("  {}\n", text.to_lowercase())).unwrap();
        assert_eq!(back.public(), k.public());
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&text[18..30]));
        let mut typo = text.to_string();
        typo.replace_range(20..21, if &typo[20..21] == "Q" { "P" } else { "Q" });
        assert!(RecoveryKey::from_printable(&typo).is_err());
    }

    #[test]
    fn a_recovery_proof_verifies_only_for_its_session_and_key() {
        let mut rng = toyseal_core::OsRng;
        let k = RecoveryKey::generate(&mut rng).unwrap();
        let other = RecoveryKey::generate(&mut rng).unwrap();
        let sig = k.sign_recovery_proof(&[7; 32]);
        assert!(k.public().verify_recovery_proof(&[7; 32], &sig).is_ok());
        assert!(k.public().verify_recovery_proof(&[8; 32], &sig).is_err());
        assert!(
            other
                .public()
                .verify_recovery_proof(&[7; 32], &sig)
                .is_err()
        );
        // Not a signature over the bare hash either (domain separation).
        assert!(k.public().verify(&[7; 32], &sig).is_err());
    }

    #[test]
    fn weak_public_keys_are_refused() {
        // The identity point (small order) and a non-canonical encoding of it (y = p + 1).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(RecoveryPublicKey::from_bytes(identity).is_err());
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert!(RecoveryPublicKey::from_bytes(non_canonical).is_err());
    }
}
