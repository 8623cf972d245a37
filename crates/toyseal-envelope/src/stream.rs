//! The payload: STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption
//! and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015) over ChaCha20-Poly1305 (RFC 8439), with
//! age's nonce layout: an 11-byte big-endian chunk counter followed by a last-chunk flag byte.
//! Truncation, reordering and dropped chunks all change some chunk's nonce, so its tag fails.
//!
//! `ring`'s ChaCha20-Poly1305 is used for speed (measured in docs/benchmarks.md); the tests check
//! it byte for byte against the RustCrypto implementation and against the C2SP age testkit.

use crate::format::TAG_LEN;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use ring::hkdf;

/// Most chunks one envelope may have (keeps the counter far from its 2^88 limit).
pub const MAX_CHUNKS: u64 = 1 << 32;

/// The 256-bit payload key. ring's key object is opaque and cannot be printed.
pub struct StreamKey(LessSafeKey);

impl StreamKey {
    /// HKDF-SHA256 (RFC 5869): `Extract(salt, ikm)` then `Expand(prk, info_parts..., 32)`.
    pub fn derive(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
        // Invariant: expanding 32 bytes (ChaCha20-Poly1305's key length) is far below
        // HKDF-SHA256's 255 * 32 byte limit, so ring cannot fail here.
        let key = match prk.expand(info, &CHACHA20_POLY1305) {
            Ok(okm) => UnboundKey::from(okm),
            Err(_) => unreachable_key(),
        };
        Self(LessSafeKey::new(key))
    }

    /// Wraps a raw 32-byte key (used by the age testkit harness).
    pub fn from_raw(key: &[u8; 32]) -> Self {
        match UnboundKey::new(&CHACHA20_POLY1305, key) {
            Ok(k) => Self(LessSafeKey::new(k)),
            Err(_) => unreachable_key(),
        }
    }

    /// Encrypts one chunk in place and returns its tag.
    pub fn seal_chunk(&self, counter: u64, last: bool, in_out: &mut [u8]) -> [u8; TAG_LEN] {
        let tag: Tag =
            match self
                .0
                .seal_in_place_separate_tag(nonce(counter, last), Aad::empty(), in_out)
            {
                Ok(t) => t,
                // ring fails only for inputs longer than 2^38 bytes; chunks are at most 1 MiB.
                Err(_) => unreachable_key(),
            };
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Decrypts one chunk (ciphertext || tag) in place; returns the plaintext part.
    /// Fails with the coarse [`Error::Decrypt`](crate::Error::Decrypt).
    pub fn open_chunk<'a>(
        &self,
        counter: u64,
        last: bool,
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], crate::Error> {
        self.0
            .open_in_place(nonce(counter, last), Aad::empty(), in_out)
            .map_err(|_| crate::Error::Decrypt)
    }
}

/// ring's key constructors and `seal` fail only for wrong key lengths or inputs of more than
/// 2^38 bytes, which the types and chunk limits here exclude.
#[allow(clippy::panic)]
#[cold]
fn unreachable_key() -> ! {
    panic!("ChaCha20-Poly1305 key setup failed with a fixed-length key");
}

/// `counter` as 11 big-endian bytes, then `0x01` for the last chunk or `0x00` otherwise.
pub fn nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::{
        ChaCha20Poly1305, KeyInit,
        aead::{Aead, Payload},
    };

    #[test]
    fn ring_stream_matches_rustcrypto_byte_for_byte() {
        let key = [7u8; 32];
        let ours = StreamKey::from_raw(&key);
        let theirs = ChaCha20Poly1305::new(&key.into());
        for (counter, last, len) in [
            (0u64, false, 0usize),
            (1, false, 100),
            (2, true, 65_536),
            (1 << 33, true, 3),
        ] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut buf = pt.clone();
            let tag = ours.seal_chunk(counter, last, &mut buf);
            buf.extend_from_slice(&tag);
            let mut n = [0u8; 12];
            n[3..11].copy_from_slice(&counter.to_be_bytes());
            n[11] = u8::from(last);
            let expect = theirs
                .encrypt(&n.into(), Payload { msg: &pt, aad: &[] })
                .unwrap();
            assert_eq!(buf, expect);
            let opened = ours.open_chunk(counter, last, &mut buf).unwrap();
            assert_eq!(opened, &pt[..]);
        }
    }

    #[test]
    fn wrong_counter_or_flag_fails() {
        let k = StreamKey::from_raw(&[1; 32]);
        let mut buf = b"chunk".to_vec();
        let tag = k.seal_chunk(5, false, &mut buf);
        buf.extend_from_slice(&tag);
        assert!(k.open_chunk(5, true, &mut buf.clone()).is_err());
        assert!(k.open_chunk(4, false, &mut buf.clone()).is_err());
        assert!(k.open_chunk(5, false, &mut buf).is_ok());
    }
}
