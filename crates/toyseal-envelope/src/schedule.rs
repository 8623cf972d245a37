//! The envelope's key schedule (docs/spec/envelope.md §3.3): everything secret in an envelope
//! derives from the random 16-byte file key and the public payload nonce through HKDF-SHA256
//! (RFC 5869 §2.2 Extract, §2.3 Expand).
//!
//! ```text
//! prk         = HKDF-Extract(salt = payload_nonce, ikm = file_key)
//! commitment  = HKDF-Expand(prk, "toyseal/v2/key-commitment", 32)
//! ikmE_i      = HKDF-Expand(prk, "toyseal/v2/stanza-ikm" || recipient_i's X25519 key, 32)
//! payload_key = HKDF-Expand(prk, "toyseal/v2/payload" || SHA-256(header), 32)
//! ```

use crate::format::{COMMITMENT_INFO, COMMITMENT_LEN, PAYLOAD_INFO, STANZA_IKM_INFO};
use crate::stream::StreamKey;
use ring::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};
use toyseal_core::{X25519PublicKey, Zeroizing};

/// Length of the per-envelope file key.
pub const FILE_KEY_LEN: usize = 16;

/// An HKDF output length for ring's typed `expand`.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The pseudorandom key of one envelope. ring's `Prk` is opaque and cannot be printed.
pub(crate) struct KeySchedule {
    prk: Prk,
}

impl KeySchedule {
    /// `HKDF-Extract(salt = payload_nonce, ikm = file_key)`.
    pub(crate) fn new(file_key: &[u8; FILE_KEY_LEN], payload_nonce: &[u8; 16]) -> Self {
        Self {
            prk: Salt::new(HKDF_SHA256, payload_nonce).extract(file_key),
        }
    }

    fn expand_32(&self, info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        // Invariant: 32 bytes is far below HKDF-SHA256's 255 * 32 byte limit, so ring's
        // `expand` and `fill` cannot fail; were they ever to, the all-zero output would make
        // the commitment check fail closed.
        if let Ok(okm) = self.prk.expand(info, Len(32)) {
            let _ = okm.fill(out.as_mut());
        }
        out
    }

    /// The key commitment written into the header.
    pub(crate) fn commitment(&self) -> [u8; COMMITMENT_LEN] {
        *self.expand_32(&[COMMITMENT_INFO])
    }

    /// `ikmE` for the HPKE encapsulation to `recipient` (RFC 9180 §7.1.3 `DeriveKeyPair`).
    pub(crate) fn stanza_ikm(&self, recipient: &X25519PublicKey) -> Zeroizing<[u8; 32]> {
        self.expand_32(&[STANZA_IKM_INFO, recipient.as_bytes()])
    }

    /// The STREAM key, bound to the whole header by its hash.
    pub(crate) fn payload_key(&self, header_hash: &[u8]) -> StreamKey {
        StreamKey::from_raw(&self.expand_32(&[PAYLOAD_INFO, header_hash]))
    }
}
