//! Wrapping the file key to each recipient with HPKE (RFC 9180 §5.1.1 base mode, §6.1
//! single-shot), suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305
//! (KEM 0x0020, KDF 0x0001, AEAD 0x0003).
//!
//! `info` is the fixed string below; `aad` is the header's fixed part followed by the stanza's
//! key id, so a stanza cannot be moved to another envelope, sender, family or recipient slot.
//!
//! The encapsulation is **derandomized**: the ephemeral key pair is `DeriveKeyPair(ikmE)`
//! (RFC 9180 §7.1.3, exactly as the RFC's own test vectors derive theirs) with `ikmE` from the
//! envelope's key schedule. Every stanza is then a function of the file key and the recipient's
//! public key, so a recipient that knows the other recipients' keys can re-compute their stanzas
//! and prove they carry the same file key (the Fujisaki–Okamoto re-encryption check), and a test
//! vector needs no randomness beyond the file key and the payload nonce.

use crate::Error;
use crate::format::{FIXED_HEADER_LEN, STANZA_LEN, Stanza, key_id};
use crate::schedule::{FILE_KEY_LEN, KeySchedule};
use hpke::{
    Deserializable, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305, kdf::HkdfSha256,
    kem::X25519HkdfSha256,
};
use rand_core::{TryCryptoRng, TryRng};
use toyseal_core::{DeviceIdentity, PublicIdentity, X25519PublicKey};
use zeroize::Zeroizing;

/// HPKE `info` for file-key wrapping.
pub const WRAP_INFO: &[u8] = b"toyseal/v2/file-key";

type Kem = X25519HkdfSha256;

fn aad(fixed: &[u8; FIXED_HEADER_LEN], key_id: &[u8; 8]) -> [u8; FIXED_HEADER_LEN + 8] {
    let mut aad = [0u8; FIXED_HEADER_LEN + 8];
    aad[..FIXED_HEADER_LEN].copy_from_slice(fixed);
    aad[FIXED_HEADER_LEN..].copy_from_slice(key_id);
    aad
}

/// Hands `hpke` the 32 bytes of `ikmE` as its randomness: `gen_keypair` draws exactly `Nsk` = 32
/// bytes and derives the key pair from them. That is pinned by tests, not re-checked per wrap
/// (a `DeriveKeyPair` per recipient costs a third of a Diffie-Hellman, measured in
/// docs/benchmarks.md): tests/external_rfc9180.rs reproduces the RFC's `enc` values this way, and
/// tests/vectors.rs re-seals every vector with a sealer written from the spec, so an `hpke`
/// that drew differently fails both. Past 32 bytes it yields zeros.
struct Replay<'a>(&'a [u8]);

impl TryRng for Replay<'_> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let n = dst.len().min(self.0.len());
        let (now, rest) = self.0.split_at(n);
        dst[..n].copy_from_slice(now);
        dst[n..].fill(0);
        self.0 = rest;
        Ok(())
    }
}

impl TryCryptoRng for Replay<'_> {}

/// Wraps `file_key` to `recipient`; deterministic given the key schedule.
pub(crate) fn wrap(
    fixed: &[u8; FIXED_HEADER_LEN],
    recipient: &X25519PublicKey,
    file_key: &[u8; FILE_KEY_LEN],
    schedule: &KeySchedule,
) -> Result<Stanza, Error> {
    let key_id = key_id(recipient);
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient.as_bytes())
        .map_err(|_| Error::Key(toyseal_core::Error::WeakX25519Key))?;
    let ikm = schedule.stanza_ikm(recipient);
    // hpke refuses an all-zero DH result (RFC 9180 §7.1.4) with an error, never a panic.
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        WRAP_INFO,
        file_key,
        &aad(fixed, &key_id),
        &mut Replay(ikm.as_ref()),
    )
    .map_err(|_| Error::Key(toyseal_core::Error::WeakX25519Key))?;
    let enc: [u8; 32] = enc
        .to_bytes()
        .as_slice()
        .try_into()
        .map_err(|_| Error::Internal("HPKE enc is not 32 bytes"))?;
    let wrapped_key: [u8; 32] = ct
        .as_slice()
        .try_into()
        .map_err(|_| Error::Internal("HPKE ciphertext is not 32 bytes"))?;
    Ok(Stanza {
        key_id,
        enc,
        wrapped_key,
    })
}

/// Finds this device's stanza (by key id) and unwraps the file key.
pub(crate) fn unwrap(
    fixed: &[u8; FIXED_HEADER_LEN],
    stanzas: &[Stanza],
    me: &DeviceIdentity,
) -> Result<Zeroizing<[u8; FILE_KEY_LEN]>, Error> {
    let my_id = key_id(me.public().agreement_key());
    // Key ids are distinct within a header (checked at parse), so there is at most one.
    let s = stanzas
        .iter()
        .find(|s| s.key_id == my_id)
        .ok_or(Error::NotARecipient)?;
    let secret = me.expose_x25519_secret();
    let sk =
        <Kem as hpke::Kem>::PrivateKey::from_bytes(secret.as_ref()).map_err(|_| Error::Decrypt)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&s.enc).map_err(|_| Error::Decrypt)?;
    let pt = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        WRAP_INFO,
        &s.wrapped_key,
        &aad(fixed, &s.key_id),
    )
    .map_err(|_| Error::Decrypt)?;
    let pt = Zeroizing::new(pt);
    let k = <[u8; FILE_KEY_LEN]>::try_from(pt.as_slice()).map_err(|_| Error::Decrypt)?;
    Ok(Zeroizing::new(k))
}

/// The Fujisaki–Okamoto re-encryption check: re-computes the stanza of every `recipient` whose
/// key id the header lists and requires it to be byte-identical, which proves that recipient
/// received the same file key. A sender that wrapped different keys to different recipients
/// ("invisible salamanders") is caught by any recipient that checks.
pub(crate) fn check_stanzas(
    fixed: &[u8; FIXED_HEADER_LEN],
    stanzas: &[Stanza],
    recipients: &[PublicIdentity],
    file_key: &[u8; FILE_KEY_LEN],
    schedule: &KeySchedule,
) -> Result<(), Error> {
    for r in recipients {
        let id = key_id(r.agreement_key());
        if let Some(s) = stanzas.iter().find(|s| s.key_id == id) {
            let expected = wrap(fixed, r.agreement_key(), file_key, schedule)?;
            if &expected != s {
                return Err(Error::Decrypt);
            }
        }
    }
    Ok(())
}

const _: () = assert!(STANZA_LEN == 8 + 32 + FILE_KEY_LEN + 16);
