//! Wrapping the file key to each recipient with HPKE (RFC 9180 §5.1.1 base mode, §6.1
//! single-shot), suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305
//! (KEM 0x0020, KDF 0x0001, AEAD 0x0003).
//!
//! `info` is the fixed string below; `aad` is the header's fixed 120 bytes followed by the
//! stanza's key id, so a stanza cannot be moved to another envelope, another sender, another
//! family or another recipient slot.

use crate::format::{STANZA_LEN, Stanza, key_id};
use crate::{Error, format::FIXED_HEADER_LEN};
use hpke::{
    Deserializable, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305, kdf::HkdfSha256,
    kem::X25519HkdfSha256,
};
use toyseal_core::{CryptoRng, DeviceIdentity, PublicIdentity};
use zeroize::Zeroizing;

/// HPKE `info` for file-key wrapping.
pub const WRAP_INFO: &[u8] = b"toyseal/v1/file-key";
/// Length of the per-envelope file key.
pub const FILE_KEY_LEN: usize = 16;

type Kem = X25519HkdfSha256;

fn aad(fixed: &[u8; FIXED_HEADER_LEN], key_id: &[u8; 8]) -> [u8; FIXED_HEADER_LEN + 8] {
    let mut aad = [0u8; FIXED_HEADER_LEN + 8];
    aad[..FIXED_HEADER_LEN].copy_from_slice(fixed);
    aad[FIXED_HEADER_LEN..].copy_from_slice(key_id);
    aad
}

/// Wraps `file_key` to `recipient`.
pub(crate) fn wrap(
    fixed: &[u8; FIXED_HEADER_LEN],
    recipient: &PublicIdentity,
    file_key: &[u8; FILE_KEY_LEN],
    rng: &mut impl CryptoRng,
) -> Result<Stanza, Error> {
    let key_id = key_id(recipient.agreement_key());
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient.agreement_key().as_bytes())
        .map_err(|_| Error::Key(toyseal_core::Error::WeakX25519Key))?;
    // hpke refuses an all-zero DH result (RFC 9180 §7.1.4) with an error, never a panic.
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        WRAP_INFO,
        file_key,
        &aad(fixed, &key_id),
        rng,
    )
    .map_err(|_| Error::Key(toyseal_core::Error::WeakX25519Key))?;
    let enc: [u8; 32] = enc
        .to_bytes()
        .as_slice()
        .try_into()
        .map_err(|_| Error::Decrypt)?;
    let wrapped_key: [u8; 32] = ct.as_slice().try_into().map_err(|_| Error::Decrypt)?;
    Ok(Stanza {
        key_id,
        enc,
        wrapped_key,
    })
}

/// Finds this device's stanzas (by key id) and unwraps the file key from the first that opens.
pub(crate) fn unwrap(
    fixed: &[u8; FIXED_HEADER_LEN],
    stanzas: &[Stanza],
    me: &DeviceIdentity,
) -> Result<Zeroizing<[u8; FILE_KEY_LEN]>, Error> {
    let my_id = key_id(me.public().agreement_key());
    let mut candidates = stanzas.iter().filter(|s| s.key_id == my_id).peekable();
    if candidates.peek().is_none() {
        return Err(Error::NotARecipient);
    }
    let secret = me.expose_x25519_secret();
    let sk =
        <Kem as hpke::Kem>::PrivateKey::from_bytes(secret.as_ref()).map_err(|_| Error::Decrypt)?;
    for s in candidates {
        let Ok(enc) = <Kem as hpke::Kem>::EncappedKey::from_bytes(&s.enc) else {
            continue;
        };
        if let Ok(pt) = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &sk,
            &enc,
            WRAP_INFO,
            &s.wrapped_key,
            &aad(fixed, &s.key_id),
        ) {
            let pt = Zeroizing::new(pt);
            if let Ok(k) = <[u8; FILE_KEY_LEN]>::try_from(pt.as_slice()) {
                return Ok(Zeroizing::new(k));
            }
        }
    }
    Err(Error::Decrypt)
}

const _: () = assert!(STANZA_LEN == 8 + 32 + FILE_KEY_LEN + 16);
