//! X25519 (RFC 7748) public keys that are safe to use, and a Diffie-Hellman that refuses the
//! all-zero result.
//!
//! RFC 7748 §6.1 and RFC 9180 §7.1.4 require checking for an all-zero shared secret. toyseal
//! does it twice: keys of low order are refused when they are parsed (so `-r KEY`, a roster
//! entry or a peer's key fails early with a clear error), and every Diffie-Hellman result is
//! checked again (`x25519-dalek`'s `was_contributory`, and `hpke`'s own check).

use crate::Error;
use std::fmt;

/// The points whose X25519 product with any clamped scalar is zero: the encodings of points of
/// order 1, 2, 4 and 8 on the curve and its twist, as listed by libsodium's
/// `has_small_order` (`crypto_scalarmult/curve25519/ref10`). Compared with bit 255 ignored,
/// because RFC 7748 §5 masks it. The Wycheproof test in this crate checks that every public key
/// giving an all-zero shared secret is caught by this list.
const LOW_ORDER: [[u8; 32]; 7] = [
    // 0 (order 4)
    [0; 32],
    // 1 (order 1)
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    // order 8
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    // order 8
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    // p - 1 (order 2)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p (= 0, non-canonical)
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p + 1 (= 1, non-canonical)
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

fn has_low_order(u: &[u8; 32]) -> bool {
    let mut masked = *u;
    masked[31] &= 0x7f;
    // Public values: no need for constant time.
    LOW_ORDER.contains(&masked)
}

/// Whether `u` is the canonical encoding of a u-coordinate: bit 255 clear and `u < p`
/// (p = 2^255 − 19). RFC 7748 §5 tells receivers to mask bit 255 and reduce mod p; toyseal
/// refuses such encodings instead, so one key has exactly one spelling (a recipient listed twice
/// under two spellings is a duplicate, and a key that its owner's software would decode
/// differently is never sealed to).
fn is_canonical(u: &[u8; 32]) -> bool {
    if u[31] & 0x80 != 0 {
        return false;
    }
    // u >= p iff u[31] == 0x7f, u[1..31] all 0xff and u[0] >= 0xed.
    !(u[31] == 0x7f && u[1..31].iter().all(|&b| b == 0xff) && u[0] >= 0xed)
}

/// An X25519 public key in canonical encoding (bit 255 clear, `u < p`) and not of low order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct X25519PublicKey([u8; 32]);

impl X25519PublicKey {
    /// Parses 32 bytes, refusing non-canonical encodings (bit 255 set, or `u ≥ p`) and the
    /// low-order points (RFC 7748 §6.1; Wycheproof "ZeroSharedSecret").
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, Error> {
        if !is_canonical(&bytes) {
            return Err(Error::NonCanonicalX25519Key);
        }
        if has_low_order(&bytes) {
            return Err(Error::WeakX25519Key);
        }
        Ok(Self(bytes))
    }

    /// The 32-byte u-coordinate, as sent on the wire.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for X25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519PublicKey(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// X25519(secret, peer) that fails instead of returning an all-zero shared secret.
///
/// The result is zeroized when dropped.
pub fn x25519_checked(
    secret: &x25519_dalek::StaticSecret,
    peer: &X25519PublicKey,
) -> Result<zeroize::Zeroizing<[u8; 32]>, Error> {
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer.0));
    if !shared.was_contributory() {
        return Err(Error::WeakX25519Key);
    }
    Ok(zeroize::Zeroizing::new(shared.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_listed_points_and_their_high_bit_twins_are_refused() {
        for p in LOW_ORDER {
            assert!(X25519PublicKey::from_bytes(p).is_err());
            let mut hi = p;
            hi[31] |= 0x80;
            assert!(X25519PublicKey::from_bytes(hi).is_err());
        }
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        let mut good = [0u8; 32];
        good[0] = 9; // the base point
        assert!(X25519PublicKey::from_bytes(good).is_ok());
        let mut hi = good;
        hi[31] |= 0x80;
        assert!(matches!(
            X25519PublicKey::from_bytes(hi),
            Err(Error::NonCanonicalX25519Key)
        ));
        // p + 2 ..= 2^255 - 1 (p - 1, p and p + 1 are also low order).
        for low in 0xef..=0xffu8 {
            let mut u = [0xff; 32];
            u[0] = low;
            u[31] = 0x7f;
            assert!(matches!(
                X25519PublicKey::from_bytes(u),
                Err(Error::NonCanonicalX25519Key)
            ));
        }
        // p - 2 is canonical (and not low order).
        let mut u = [0xff; 32];
        u[0] = 0xeb;
        u[31] = 0x7f;
        assert!(X25519PublicKey::from_bytes(u).is_ok());
    }

    #[test]
    fn listed_points_really_give_zero() {
        // Guards the hand-copied table: each entry must actually be a zero-product point.
        let secret = x25519_dalek::StaticSecret::from([0x42; 32]);
        for p in LOW_ORDER {
            let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(p));
            assert!(!shared.was_contributory());
        }
    }
}
