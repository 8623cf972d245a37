//! Device identities: who a toy or a phone is, as keys.
//!
//! A device has two long-term key pairs: Ed25519 (RFC 8032, via `ring`) to sign, and X25519
//! (RFC 7748, via `x25519-dalek`) to receive. Its [`PublicIdentity`] is the role plus both
//! public keys; its [`DeviceId`] is a hash of that.

use crate::{CryptoRng, Error, X25519PublicKey, text};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::{fmt, str::FromStr};
use zeroize::{Zeroize, Zeroizing};

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Format version of the binary identity encodings.
const IDENTITY_VERSION: u8 = 1;
/// Human-readable part of a public identity's text form: `toyseal1…`.
const PUBLIC_HRP: &str = "toyseal";
/// Human-readable part of a secret key's text form: `TOYSEAL-SECRET-KEY-1…`.
const SECRET_HRP: &str = "toyseal-secret-key-";
/// Domain separation for [`DeviceId`] (see docs/spec/envelope.md §Identities).
const DEVICE_ID_CONTEXT: &[u8] = b"toyseal/v1/device-id";

/// What a device is in a family. The role is part of the identity and signed into everything
/// that carries the identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// A toy: records and plays; never administers the family.
    Toy,
    /// A guardian's phone: pairs toys, signs rosters, deletes messages.
    Guardian,
    /// A non-governing member (a grandparent's or a babysitter's phone): receives and sends
    /// messages, governs nothing (never counts in a roster quorum, docs/spec/roster.md §3.3).
    Member,
}

impl Role {
    /// The role's wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Role::Toy => 1,
            Role::Guardian => 2,
            Role::Member => 3,
        }
    }

    /// Parses a role's wire byte.
    pub fn from_byte(b: u8) -> Result<Self, Error> {
        match b {
            1 => Ok(Role::Toy),
            2 => Ok(Role::Guardian),
            3 => Ok(Role::Member),
            other => Err(Error::UnknownRole(other)),
        }
    }

    /// The lower-case name used in key files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Toy => "toy",
            Role::Guardian => "guardian",
            Role::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "toy" => Ok(Role::Toy),
            "guardian" => Ok(Role::Guardian),
            "member" => Ok(Role::Member),
            _ => Err(Error::KeyText("role must be `toy`, `guardian` or `member`")),
        }
    }
}

/// A stable 16-byte identifier of a device: the first 16 bytes of
/// `SHA-256("toyseal/v1/device-id" || PublicIdentity::to_bytes())`.
///
/// Shown as 32 lower-case hex digits. It names a device in rosters, request signatures
/// (`keyid`) and logs; it is not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId([u8; 16]);

impl DeviceId {
    /// Length in bytes.
    pub const LEN: usize = 16;

    /// Wraps raw bytes (for decoding from a wire format).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.as_bytes();
        if s.len() != 32 {
            return Err(Error::KeyText("a device id is 32 hex digits"));
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let hi = hex_val(pair.first().copied())?;
            let lo = hex_val(pair.get(1).copied())?;
            *o = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

fn hex_val(c: Option<u8>) -> Result<u8, Error> {
    match c {
        Some(c @ b'0'..=b'9') => Ok(c - b'0'),
        Some(c @ b'a'..=b'f') => Ok(c - b'a' + 10),
        Some(c @ b'A'..=b'F') => Ok(c - b'A' + 10),
        _ => Err(Error::KeyText("a device id is 32 hex digits")),
    }
}

/// An Ed25519 signature (RFC 8032), 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Self(bytes)
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

/// The public half of a device: its role, Ed25519 verifying key and X25519 receiving key.
///
/// Binary form (66 bytes): `version (1) = 0x01 || role (1) || ed25519 (32) || x25519 (32)`.
/// Text form: Bech32m of the binary form under the prefix `toyseal`, e.g. `toyseal1q…`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    role: Role,
    signing: [u8; 32],
    agreement: X25519PublicKey,
}

impl PublicIdentity {
    /// Length of the binary form.
    pub const LEN: usize = 66;

    /// Assembles a public identity from its parts, validating both keys: the Ed25519 key must
    /// be a canonical encoding of a point that is not of small order, and the X25519 key must be
    /// canonical and not of low order (docs/spec/envelope.md §2.1).
    pub fn new(role: Role, signing: [u8; 32], agreement: [u8; 32]) -> Result<Self, Error> {
        check_ed25519_public(&signing)?;
        Ok(Self {
            role,
            signing,
            agreement: X25519PublicKey::from_bytes(agreement)?,
        })
    }

    /// The device's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The Ed25519 public key.
    pub fn signing_key(&self) -> &[u8; 32] {
        &self.signing
    }

    /// The X25519 public key that envelopes are sealed to.
    pub fn agreement_key(&self) -> &X25519PublicKey {
        &self.agreement
    }

    /// The device id derived from this identity.
    pub fn device_id(&self) -> DeviceId {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(DEVICE_ID_CONTEXT);
        ctx.update(&self.to_bytes());
        let digest = ctx.finish();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest.as_ref()[..16]);
        DeviceId(id)
    }

    /// The 66-byte binary form.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = IDENTITY_VERSION;
        out[1] = self.role.to_byte();
        out[2..34].copy_from_slice(&self.signing);
        out[34..66].copy_from_slice(self.agreement.as_bytes());
        out
    }

    /// Parses the binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: &[u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| Error::KeyEncoding("a public identity is 66 bytes"))?;
        let [version, role, rest @ ..] = bytes;
        if *version != IDENTITY_VERSION {
            return Err(Error::UnsupportedVersion(*version));
        }
        let role = Role::from_byte(*role)?;
        let (signing, agreement) = rest.split_at(32);
        let signing: [u8; 32] = signing
            .try_into()
            .map_err(|_| Error::KeyEncoding("ed25519 key"))?;
        let agreement: [u8; 32] = agreement
            .try_into()
            .map_err(|_| Error::KeyEncoding("x25519 key"))?;
        Self::new(role, signing, agreement)
    }

    /// Verifies an Ed25519 signature by this device over `message`.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), Error> {
        UnparsedPublicKey::new(&ED25519, &self.signing)
            .verify(message, signature.as_bytes())
            .map_err(|_| Error::BadSignature)
    }
}

impl fmt::Display for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = text::encode_lower(PUBLIC_HRP, &self.to_bytes()).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicIdentity")
            .field("role", &self.role)
            .field("device_id", &self.device_id())
            .finish()
    }
}

impl FromStr for PublicIdentity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bytes = text::decode(s, PUBLIC_HRP)?;
        Self::from_bytes(&bytes)
    }
}

impl serde::Serialize for PublicIdentity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicIdentity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Strict Ed25519 public-key decoding: RFC 8032 §5.1.3 decoding, then two refusals that the RFC's
/// "cofactorless, lenient" verifiers omit (the rule the ed25519-speccheck cases call "strict"):
///
/// 1. the encoding must be canonical: re-encoding the decoded point (RFC 8032 §5.1.2) gives the
///    same 32 bytes, which refuses `y ≥ p` and `x = 0` with the sign bit set;
/// 2. the point must not be of small order (one of the 8 torsion points): for such a key a
///    "signature" with a small-order `R` and `S = 0` passes the verification equation
///    `[S]B = R + [k]A` for one message in eight (for every message when `A` is the identity),
///    with no secret at all.
///
/// Mixed-order keys (a torsion component added to a valid key) decode and are accepted: they
/// cannot be produced by `DeviceIdentity::generate`, and verifying with cofactorless RFC 8032
/// equations keeps their signatures unforgeable without the secret scalar.
fn check_ed25519_public(key: &[u8; 32]) -> Result<(), Error> {
    let compressed = edwards25519::edwards::CompressedEdwardsY(*key);
    let point = compressed.decompress().ok_or(Error::WeakEd25519Key)?;
    if point.compress().as_bytes() != key || point.is_small_order() {
        return Err(Error::WeakEd25519Key);
    }
    Ok(())
}

/// A device's secret keys: what a toy keeps in its secure storage and a phone in its keychain.
///
/// Secrets are zeroized on drop, never printed (`Debug` shows only the role and device id), and
/// leave the value only through [`DeviceIdentity::export_secret_key_text`].
///
/// Limitation: `ring`'s `Ed25519KeyPair`, kept here so signing costs one scalar multiplication,
/// does not zeroize its own copy of the expanded key on drop; the 32-byte seed this type holds
/// is zeroized.
pub struct DeviceIdentity {
    seed: Zeroizing<[u8; 32]>,
    signer: Ed25519KeyPair,
    agreement: x25519_dalek::StaticSecret,
    public: PublicIdentity,
}

impl DeviceIdentity {
    /// Generates a new identity from `rng`.
    pub fn generate(role: Role, rng: &mut impl CryptoRng) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut x = Zeroizing::new([0u8; 32]);
        loop {
            rng.fill_bytes(seed.as_mut());
            rng.fill_bytes(x.as_mut());
            // A random X25519 secret gives a valid public key except with negligible
            // probability; looping keeps the constructor infallible without an unwrap.
            if let Ok(id) = Self::from_secret_parts(role, &seed, &x) {
                return id;
            }
        }
    }

    /// Rebuilds an identity from its two 32-byte secrets.
    fn from_secret_parts(role: Role, seed: &[u8; 32], x25519: &[u8; 32]) -> Result<Self, Error> {
        let signer = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| Error::KeyEncoding("ed25519 seed"))?;
        let agreement = x25519_dalek::StaticSecret::from(*x25519);
        let agreement_public = x25519_dalek::PublicKey::from(&agreement);
        let mut signing = [0u8; 32];
        signing.copy_from_slice(signer.public_key().as_ref());
        let public = PublicIdentity::new(role, signing, agreement_public.to_bytes())?;
        Ok(Self {
            seed: Zeroizing::new(*seed),
            signer,
            agreement,
            public,
        })
    }

    /// The public half.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.public.device_id()
    }

    /// This device's role.
    pub fn role(&self) -> Role {
        self.public.role
    }

    /// Signs `message` with Ed25519 (RFC 8032, deterministic).
    pub fn sign(&self, message: &[u8]) -> Signature {
        let sig = self.signer.sign(message);
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(sig.as_ref());
        Signature(out)
    }

    /// X25519 with this device's secret key; refuses an all-zero result.
    pub fn diffie_hellman(&self, peer: &X25519PublicKey) -> Result<Zeroizing<[u8; 32]>, Error> {
        crate::x25519_checked(&self.agreement, peer)
    }

    /// The raw X25519 secret, for composing standard constructions (HPKE decapsulation, Noise)
    /// inside the toyseal crates. Keep the returned value short-lived; it zeroizes on drop.
    pub fn expose_x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.agreement.to_bytes())
    }

    /// Exports the secret keys as text: `TOYSEAL-SECRET-KEY-1…` (upper-case Bech32m of
    /// `version || role || ed25519 seed || x25519 secret`).
    ///
    /// This is the only way secret material leaves a `DeviceIdentity`. Store the result as you
    /// would the key itself; it zeroizes on drop.
    pub fn export_secret_key_text(&self) -> Result<Zeroizing<String>, Error> {
        let mut raw = Zeroizing::new([0u8; 66]);
        raw[0] = IDENTITY_VERSION;
        raw[1] = self.role().to_byte();
        raw[2..34].copy_from_slice(self.seed.as_ref());
        let mut x = self.agreement.to_bytes();
        raw[34..66].copy_from_slice(&x);
        x.zeroize();
        Ok(Zeroizing::new(text::encode_upper(
            SECRET_HRP,
            raw.as_ref(),
        )?))
    }

    /// Imports secret keys from the text form written by
    /// [`export_secret_key_text`](Self::export_secret_key_text).
    pub fn from_secret_key_text(s: &str) -> Result<Self, Error> {
        let raw = Zeroizing::new(text::decode(s, SECRET_HRP)?);
        if raw.len() != 66 {
            return Err(Error::KeyEncoding("a secret key is 66 bytes"));
        }
        let version = raw.first().copied().unwrap_or_default();
        if version != IDENTITY_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let role = Role::from_byte(raw.get(1).copied().unwrap_or_default())?;
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut x = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(raw.get(2..34).ok_or(Error::KeyEncoding("seed"))?);
        x.copy_from_slice(raw.get(34..66).ok_or(Error::KeyEncoding("x25519 secret"))?);
        Self::from_secret_parts(role, &seed, &x)
    }
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("role", &self.role())
            .field("device_id", &self.device_id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::from_seed([9; 32])
    }

    #[test]
    fn public_text_round_trips_and_looks_like_a_key() {
        let id = DeviceIdentity::generate(Role::Toy, &mut rng());
        let text = id.public().to_string();
        assert!(text.starts_with("toyseal1"), "{text}");
        let back: PublicIdentity = text.parse().unwrap();
        assert_eq!(&back, id.public());
        assert_eq!(back.device_id(), id.device_id());
    }

    #[test]
    fn secret_text_round_trips() {
        let id = DeviceIdentity::generate(Role::Guardian, &mut rng());
        let secret = id.export_secret_key_text().unwrap();
        assert!(secret.starts_with("TOYSEAL-SECRET-KEY-1"));
        let back = DeviceIdentity::from_secret_key_text(&secret).unwrap();
        assert_eq!(back.public(), id.public());
        let sig = back.sign(b"hello");
        id.public().verify(b"hello", &sig).unwrap();
    }

    #[test]
    fn a_public_key_is_not_accepted_as_a_secret_and_vice_versa() {
        let id = DeviceIdentity::generate(Role::Toy, &mut rng());
        let public = id.public().to_string();
        assert!(DeviceIdentity::from_secret_key_text(&public).is_err());
        let secret = id.export_secret_key_text().unwrap();
        assert!(secret.parse::<PublicIdentity>().is_err());
    }

    #[test]
    fn signatures_fail_on_other_messages_and_keys() {
        let a = DeviceIdentity::generate(Role::Toy, &mut rng());
        let b = DeviceIdentity::generate(Role::Toy, &mut ChaCha20Rng::from_seed([1; 32]));
        let sig = a.sign(b"m");
        assert!(a.public().verify(b"n", &sig).is_err());
        assert!(b.public().verify(b"m", &sig).is_err());
    }

    #[test]
    fn every_role_round_trips_through_byte_name_and_identity() {
        for (role, byte, name) in [
            (Role::Toy, 1, "toy"),
            (Role::Guardian, 2, "guardian"),
            (Role::Member, 3, "member"),
        ] {
            assert_eq!(role.to_byte(), byte);
            assert_eq!(Role::from_byte(byte).unwrap(), role);
            assert_eq!(role.as_str(), name);
            assert_eq!(name.parse::<Role>().unwrap(), role);
            let id = DeviceIdentity::generate(role, &mut rng());
            let back = PublicIdentity::from_bytes(&id.public().to_bytes()).unwrap();
            assert_eq!(back.role(), role);
        }
        assert!("parent".parse::<Role>().is_err());
        assert!(matches!(Role::from_byte(4), Err(Error::UnknownRole(4))));
    }

    #[test]
    fn unknown_version_and_role_are_typed_errors() {
        let id = DeviceIdentity::generate(Role::Toy, &mut rng());
        let mut b = id.public().to_bytes();
        b[0] = 2;
        assert!(matches!(
            PublicIdentity::from_bytes(&b),
            Err(Error::UnsupportedVersion(2))
        ));
        b[0] = 1;
        b[1] = 9;
        assert!(matches!(
            PublicIdentity::from_bytes(&b),
            Err(Error::UnknownRole(9))
        ));
        assert!(PublicIdentity::from_bytes(&b[..65]).is_err());
    }

    #[test]
    fn small_order_and_non_canonical_ed25519_keys_are_refused() {
        let x = *DeviceIdentity::generate(Role::Toy, &mut rng())
            .public()
            .agreement_key()
            .as_bytes();
        // The eight points of small order (the 8-torsion subgroup).
        for p in edwards25519::constants::EIGHT_TORSION {
            let enc = p.compress().to_bytes();
            assert!(matches!(
                PublicIdentity::new(Role::Toy, enc, x),
                Err(Error::WeakEd25519Key)
            ));
        }
        // Non-canonical encodings: y = p + 1 (the identity again), and x = 0 with the sign bit
        // set (RFC 8032 §5.1.3 step 4), and a y that is on no point.
        let mut y_p_plus_1 = [0xff; 32];
        y_p_plus_1[0] = 0xee;
        y_p_plus_1[31] = 0x7f;
        let mut neg_zero = [0u8; 32];
        neg_zero[0] = 1;
        neg_zero[31] = 0x80;
        let mut not_on_curve = [0u8; 32];
        not_on_curve[0] = 2;
        for enc in [y_p_plus_1, neg_zero, not_on_curve] {
            assert!(matches!(
                PublicIdentity::new(Role::Toy, enc, x),
                Err(Error::WeakEd25519Key)
            ));
        }
        // A real key passes.
        let good = *DeviceIdentity::generate(Role::Toy, &mut rng())
            .public()
            .signing_key();
        assert!(PublicIdentity::new(Role::Toy, good, x).is_ok());
    }

    #[test]
    fn device_id_text_round_trips() {
        let id = DeviceIdentity::generate(Role::Toy, &mut rng()).device_id();
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(s.parse::<DeviceId>().unwrap(), id);
        assert!("zz".parse::<DeviceId>().is_err());
    }
}
