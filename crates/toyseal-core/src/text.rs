//! Checksummed text form of keys: Bech32m (BIP 350), as age does for `age1…` keys.
//!
//! BIP 173 caps a Bech32 string at 90 characters; toyseal's keys (66 bytes of data) need about
//! 120. Like age, we keep Bech32m's polynomial and target residue unchanged and lift only the
//! length cap. Any single-character error and any burst of up to 6 characters is still detected;
//! beyond the BIP's 89-character window the guarantee for 4 scattered errors becomes the generic
//! 1-in-2^30 chance of an undetected random error. Keys are copied by machines, not read aloud,
//! so that is enough; the binary form inside carries its own version and role bytes as well.

use crate::Error;
use bech32::{Bech32m, Checksum, Hrp, primitives::decode::CheckedHrpstring};

/// Bech32m with the length limit raised to the code's full length (1023 characters).
enum Bech32mLong {}

impl Checksum for Bech32mLong {
    type MidstateRepr = <Bech32m as Checksum>::MidstateRepr;
    const CODE_LENGTH: usize = 1023;
    const CHECKSUM_LENGTH: usize = <Bech32m as Checksum>::CHECKSUM_LENGTH;
    const GENERATOR_SH: [Self::MidstateRepr; 5] = <Bech32m as Checksum>::GENERATOR_SH;
    const TARGET_RESIDUE: Self::MidstateRepr = <Bech32m as Checksum>::TARGET_RESIDUE;
}

/// Encodes `data` under the human-readable part `hrp`, lower case (public keys).
pub(crate) fn encode_lower(hrp: &str, data: &[u8]) -> Result<String, Error> {
    let hrp = Hrp::parse(hrp).map_err(|_| Error::KeyText("invalid human-readable part"))?;
    bech32::encode_lower::<Bech32mLong>(hrp, data).map_err(|_| Error::KeyText("too long"))
}

/// Encodes `data` under `hrp`, upper case (secret keys, which look different on purpose).
pub(crate) fn encode_upper(hrp: &str, data: &[u8]) -> Result<String, Error> {
    let hrp = Hrp::parse(hrp).map_err(|_| Error::KeyText("invalid human-readable part"))?;
    bech32::encode_upper::<Bech32mLong>(hrp, data).map_err(|_| Error::KeyText("too long"))
}

/// Decodes a Bech32m string whose human-readable part must equal `expected_hrp`
/// (case-insensitive, but not mixed case, per BIP 173).
///
/// Only the canonical spelling is accepted: Bech32m's checksum also validates strings whose
/// unused final bits are non-zero or that carry an extra 5-bit group, which would give every
/// key many valid spellings (found by the `pubkey_text` fuzz target). The decoded bytes are
/// re-encoded and must give back the input, ignoring case.
pub(crate) fn decode(s: &str, expected_hrp: &str) -> Result<Vec<u8>, Error> {
    let s = s.trim();
    let checked = CheckedHrpstring::new::<Bech32mLong>(s)
        .map_err(|_| Error::KeyText("not valid Bech32m or the checksum does not match"))?;
    if !checked.hrp().as_str().eq_ignore_ascii_case(expected_hrp) {
        return Err(Error::KeyText("wrong prefix for this kind of key"));
    }
    let bytes: Vec<u8> = checked.byte_iter().collect();
    let canonical = bech32::encode_lower::<Bech32mLong>(checked.hrp(), &bytes)
        .map_err(|_| Error::KeyText("too long"))?;
    if !canonical.eq_ignore_ascii_case(s) {
        return Err(Error::KeyText("not the canonical spelling of a key"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_long_data() {
        let data: Vec<u8> = (0..=200u8).collect();
        let s = encode_lower("toyseal", &data).unwrap();
        assert!(s.len() > 90);
        assert_eq!(decode(&s, "toyseal").unwrap(), data);
        assert_eq!(decode(&s.to_uppercase(), "toyseal").unwrap(), data);
    }

    #[test]
    fn every_single_character_substitution_is_detected() {
        let data = [7u8; 66];
        let s = encode_lower("toyseal", &data).unwrap();
        let alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        let sep = s.rfind('1').unwrap();
        for (i, c) in s.char_indices().skip(sep + 1) {
            for r in alphabet.chars().filter(|&r| r != c) {
                let mut t = s.clone();
                t.replace_range(i..i + 1, &r.to_string());
                assert!(
                    decode(&t, "toyseal").is_err(),
                    "substitution at {i} undetected"
                );
            }
        }
    }

    #[test]
    fn non_canonical_spellings_are_rejected() {
        // The fuzzer's reproducers: non-zero padding bits, and an extra 5-bit group.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/pubkey_text");
        let mut checked = 0;
        for name in [
            "public-key-extra-data-character",
            "public-key-nonzero-padding-bits",
            "secret-key-extra-data-character",
            "secret-key-nonzero-padding-bits",
        ] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            let text = text.trim();
            let r1 = text.parse::<crate::PublicIdentity>();
            let r2 = crate::DeviceIdentity::from_secret_key_text(text);
            assert!(r1.is_err() && r2.is_err(), "{name} accepted");
            checked += 1;
        }
        assert_eq!(checked, 4);
    }

    #[test]
    fn wrong_prefix_is_rejected() {
        let s = encode_lower("age", &[1, 2, 3]).unwrap();
        assert!(matches!(decode(&s, "toyseal"), Err(Error::KeyText(_))));
    }
}
