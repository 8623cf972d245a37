//! Listing cursors (`next_cursor`): opaque, authenticated and bound to one family.
//!
//! A cursor is `base64url(nonce ‖ ChaCha20-Poly1305(key, nonce, position, aad = family))`
//! (RFC 8439). The position inside is the database's sequence number of the last envelope
//! returned; sealing it hides that number (it counts every family's uploads, so in clear it
//! would tell a member how busy other families are), and the family in the associated data
//! makes a cursor useless on another family's listing. A cursor that does not open is a 400.

use crate::Error;
use crate::config::CursorKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use toyseal_core::FamilyId;

/// Domain separation for the associated data.
const LABEL: &str = "toyseal-cursor-v1 ";
/// Sealed length: nonce, 8-byte position, 16-byte tag.
const SEALED_LEN: usize = NONCE_LEN + 8 + 16;

/// Seals and opens cursors under the server's cursor key.
pub(crate) struct CursorSealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for CursorSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorSealer").finish_non_exhaustive()
    }
}

fn aad(family: FamilyId) -> String {
    format!("{LABEL}{family}")
}

impl CursorSealer {
    pub(crate) fn new(key: &CursorKey) -> Result<Self, Error> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, key.bytes())
            .map_err(|_| Error::Config("cursor key refused".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// The cursor for position `seq` in `family`'s listing.
    pub(crate) fn seal(&self, family: FamilyId, seq: i64) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::Internal("no randomness for a cursor".into()))?;
        let mut data = seq.to_be_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(family).as_bytes()),
                &mut data,
            )
            .map_err(|_| Error::Internal("cursor sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The position in a cursor this server sealed for `family`.
    pub(crate) fn open(&self, family: FamilyId, cursor: &str) -> Result<i64, Error> {
        let bad = || Error::bad("cursor is not one this server gave out for this family");
        let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        if raw.len() != SEALED_LEN {
            return Err(bad());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(family).as_bytes()), &mut sealed)
            .map_err(|_| bad())?;
        let seq: [u8; 8] = (&*plain).try_into().map_err(|_| bad())?;
        Ok(i64::from_be_bytes(seq))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_bound_to_family_and_tamper_evident() {
        let s = CursorSealer::new(&CursorKey::from_hex(&"11".repeat(32)).unwrap()).unwrap();
        let a = FamilyId::from_bytes([1; 16]);
        let b = FamilyId::from_bytes([2; 16]);
        let c = s.seal(a, 42).unwrap();
        assert_eq!(s.open(a, &c).unwrap(), 42);
        assert!(s.open(b, &c).is_err());
        assert_ne!(s.seal(a, 42).unwrap(), c, "randomized");
        let mut t = c.into_bytes();
        t[5] ^= 1;
        assert!(s.open(a, std::str::from_utf8(&t).unwrap()).is_err());
        assert!(s.open(a, "42").is_err());
        let other = CursorSealer::new(&CursorKey::from_hex(&"22".repeat(32)).unwrap()).unwrap();
        assert!(other.open(a, &s.seal(a, 1).unwrap()).is_err());
    }
}
