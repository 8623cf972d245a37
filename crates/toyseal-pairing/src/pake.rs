//! Pairing with a code: SPAKE2 as python-spake2 0.9 and the `spake2` crate 0.4 build it over
//! the Ed25519 group (not RFC 9382: other M and N, another password hash and key transcript),
//! then HKDF-SHA256 (RFC 5869), explicit key confirmation in both directions (HMAC-SHA256,
//! RFC 2104) bound to the transcript (the phone confirms first), a short authentication string,
//! and the long-term public identities exchanged under the PAKE keys (ChaCha20-Poly1305,
//! RFC 8439) with a signature proving possession of each identity key. Two round trips after
//! connect. Spec: docs/spec/pairing.md §5.

use crate::frame::{AbortReason, CONFIRM_LEN, Frame, NONCE_LEN, PAIRING_VERSION, SPAKE_MSG_LEN};
use crate::rng::Drawn;
use crate::{Error, PairingCode};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::{digest, hkdf, hmac};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use std::fmt;
use toyseal_core::{
    CryptoRng, DeviceId, DeviceIdentity, PublicIdentity, Role, SIGNATURE_LEN, Signature,
};
use zeroize::Zeroizing;

const SPAKE_ID_PHONE: &[u8] = b"toyseal/v1/phone";
const SPAKE_ID_TOY: &[u8] = b"toyseal/v1/toy";
const TRANSCRIPT_CONTEXT: &[u8] = b"toyseal/v1/pairing";
const LABEL_CONFIRM_TOY: &[u8] = b"toyseal/v1/pairing/confirm-toy";
const LABEL_CONFIRM_PHONE: &[u8] = b"toyseal/v1/pairing/confirm-phone";
const LABEL_SEAL_TOY: &[u8] = b"toyseal/v1/pairing/seal-toy";
const LABEL_SEAL_PHONE: &[u8] = b"toyseal/v1/pairing/seal-phone";
const LABEL_SAS: &[u8] = b"toyseal/v1/pairing/sas";
const LABEL_COMMIT: &[u8] = b"toyseal/v1/pairing/commit";
const SIG_CONTEXT_TOY: &[u8] = b"toyseal/v1/pairing/identity-toy";
const SIG_CONTEXT_PHONE: &[u8] = b"toyseal/v1/pairing/identity-phone";
const ATTESTATION_CONTEXT: &[u8] = b"toyseal/v1/attestation";
const TAG_LEN: usize = 16;
/// Randomness SPAKE2 draws (one wide scalar).
const SPAKE_RANDOM: usize = 64;

/// A SAS nonce (`Na` or `Nb`, §5.3): drawn fresh per attempt, revealed only after the peer
/// committed its own contribution (T37).
type SasNonce = Zeroizing<[u8; NONCE_LEN]>;

fn draw_nonce(rng: &mut impl CryptoRng) -> SasNonce {
    let mut n = Zeroizing::new([0u8; NONCE_LEN]);
    rng.fill_bytes(n.as_mut());
    n
}

/// `Cb = SHA-256("toyseal/v1/pairing/commit" || TH || Nb)` (§5.3).
fn commitment(th: &[u8; 32], nb: &[u8; NONCE_LEN]) -> [u8; NONCE_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(LABEL_COMMIT);
    ctx.update(th);
    ctx.update(nb);
    let mut c = [0u8; NONCE_LEN];
    c.copy_from_slice(ctx.finish().as_ref());
    c
}

/// A toy maker's signing key (Ed25519). Attests toys at the factory; the app ships its public
/// half. Zeroized on drop, never printed.
///
/// Like [`DeviceIdentity`], the `ring` key pair inside does not zeroize its expanded key.
pub struct MakerKey {
    pair: ring::signature::Ed25519KeyPair,
}

impl MakerKey {
    /// A new maker key.
    pub fn generate(rng: &mut impl CryptoRng) -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// A maker key from its 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, Error> {
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| Error::Key(toyseal_core::Error::KeyEncoding("maker seed")))?;
        Ok(Self { pair })
    }

    /// The public key apps pin as a maker root.
    pub fn public_key(&self) -> [u8; 32] {
        use ring::signature::KeyPair;
        let mut k = [0u8; 32];
        k.copy_from_slice(self.pair.public_key().as_ref());
        k
    }

    /// Signs `"toyseal/v1/attestation" || toy.to_bytes()`.
    pub fn attest(&self, toy: &PublicIdentity) -> MakerAttestation {
        let mut msg = ATTESTATION_CONTEXT.to_vec();
        msg.extend_from_slice(&toy.to_bytes());
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(self.pair.sign(&msg).as_ref());
        MakerAttestation {
            maker_key: self.public_key(),
            signature: Signature::from_bytes(sig),
        }
    }
}

impl fmt::Debug for MakerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MakerKey").finish_non_exhaustive()
    }
}

/// A maker's signature over a toy's public identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MakerAttestation {
    /// The maker's public key.
    pub maker_key: [u8; 32],
    /// Ed25519 over `"toyseal/v1/attestation" || toy public identity`.
    pub signature: Signature,
}

impl MakerAttestation {
    /// Checks the attestation for `toy`.
    pub fn verify(&self, toy: &PublicIdentity) -> bool {
        let mut msg = ATTESTATION_CONTEXT.to_vec();
        msg.extend_from_slice(&toy.to_bytes());
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.maker_key)
            .verify(&msg, self.signature.as_bytes())
            .is_ok()
    }
}

/// What the phone requires of the toy it pairs with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairingExpectations {
    /// The toy's device id from its QR code, if it was scanned.
    pub fingerprint: Option<DeviceId>,
    /// Maker public keys the app trusts.
    pub maker_roots: Vec<[u8; 32]>,
    /// Refuse toys without a valid attestation from one of `maker_roots`.
    pub require_attestation: bool,
}

/// The toy a phone paired with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairedToy {
    /// The toy's identity, now pinned.
    pub identity: PublicIdentity,
    /// Whether a trusted maker attested it.
    pub attested: bool,
}

/// The short authentication string of one pairing: six decimal digits both sides derive from
/// the PAKE key, the transcript and both SAS nonces (docs/spec/pairing.md §5.3). The toy
/// speaks or blinks it, the phone shows it. The toy commits to its nonce before the phone
/// reveals its own, so a device that knows the code and sits in the middle cannot steer the
/// two strings together: they match with probability 10⁻⁶ per attempt (T37).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sas(u32);

impl Sas {
    /// The number, 0..=999_999.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Sas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl fmt::Debug for Sas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sas({self})")
    }
}

/// Keys derived from the SPAKE2 secret and the transcript.
struct Keys {
    th: [u8; 32],
    prk: hkdf::Prk,
    confirm_toy: Zeroizing<[u8; 32]>,
    confirm_phone: Zeroizing<[u8; 32]>,
    seal_toy: Zeroizing<[u8; 32]>,
    seal_phone: Zeroizing<[u8; 32]>,
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl Keys {
    fn derive(spake_key: &[u8], spake_a: &[u8], spake_b: &[u8]) -> Result<Self, Error> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(TRANSCRIPT_CONTEXT);
        ctx.update(&[PAIRING_VERSION]);
        ctx.update(spake_a);
        ctx.update(spake_b);
        let mut th = [0u8; 32];
        th.copy_from_slice(ctx.finish().as_ref());
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &th).extract(spake_key);
        let expand = |label: &[u8]| -> Result<Zeroizing<[u8; 32]>, Error> {
            let mut k = Zeroizing::new([0u8; 32]);
            prk.expand(&[label], Len32)
                .and_then(|okm| okm.fill(k.as_mut()))
                .map_err(|_| Error::Authentication)?;
            Ok(k)
        };
        Ok(Self {
            th,
            confirm_toy: expand(LABEL_CONFIRM_TOY)?,
            confirm_phone: expand(LABEL_CONFIRM_PHONE)?,
            seal_toy: expand(LABEL_SEAL_TOY)?,
            seal_phone: expand(LABEL_SEAL_PHONE)?,
            prk,
        })
    }

    /// `sas_bytes = HKDF-Expand(PRK, "toyseal/v1/pairing/sas" || Na || Nb, 32)`; the SAS is
    /// its first 4 bytes (big-endian) mod 10⁶ (§5.3).
    fn sas(&self, na: &[u8; NONCE_LEN], nb: &[u8; NONCE_LEN]) -> Result<Sas, Error> {
        let mut full = Zeroizing::new([0u8; 32]);
        self.prk
            .expand(&[LABEL_SAS, na, nb], Len32)
            .and_then(|okm| okm.fill(full.as_mut()))
            .map_err(|_| Error::Authentication)?;
        let (head, _) = full.split_first_chunk::<4>().ok_or(Error::Authentication)?;
        Ok(Sas(u32::from_be_bytes(*head) % 1_000_000))
    }

    fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; CONFIRM_LEN] {
        let k = hmac::Key::new(hmac::HMAC_SHA256, key);
        let mut ctx = hmac::Context::with_key(&k);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; CONFIRM_LEN];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn check_mac(key: &[u8; 32], parts: &[&[u8]], tag: &[u8]) -> Result<(), Error> {
        let k = hmac::Key::new(hmac::HMAC_SHA256, key);
        let msg: Vec<u8> = parts.concat();
        hmac::verify(&k, &msg, tag).map_err(|_| Error::Authentication)
    }

    fn seal(key: &[u8; 32], nonce: u8, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let k = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| Error::Authentication)?,
        );
        let mut buf = plaintext.to_vec();
        k.seal_in_place_append_tag(nonce_n(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| Error::Authentication)?;
        Ok(buf)
    }

    fn open(
        key: &[u8; 32],
        nonce: u8,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let k = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| Error::Authentication)?,
        );
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = k
            .open_in_place(nonce_n(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| Error::Authentication)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn nonce_n(n: u8) -> Nonce {
    let mut b = [0u8; 12];
    b[11] = n;
    Nonce::assume_unique_for_key(b)
}

fn sign_transcript(me: &DeviceIdentity, context: &[u8], th: &[u8; 32]) -> Signature {
    let mut m = context.to_vec();
    m.extend_from_slice(th);
    me.sign(&m)
}

fn verify_transcript(
    who: &PublicIdentity,
    context: &[u8],
    th: &[u8; 32],
    sig: &Signature,
) -> Result<(), Error> {
    let mut m = context.to_vec();
    m.extend_from_slice(th);
    who.verify(&m, sig).map_err(|_| Error::Authentication)
}

/// Splits `identity (66) || signature (64) || rest`.
fn split_identity(block: &[u8]) -> Result<(PublicIdentity, Signature, &[u8]), Error> {
    let (id, rest) = block
        .split_at_checked(PublicIdentity::LEN)
        .ok_or(Error::Malformed("identity block too short"))?;
    let (sig, rest) = rest
        .split_first_chunk::<SIGNATURE_LEN>()
        .ok_or(Error::Malformed("identity block too short"))?;
    Ok((
        PublicIdentity::from_bytes(id)?,
        Signature::from_bytes(*sig),
        rest,
    ))
}

/// The peer's SPAKE2 message: its side byte, then a canonical encoding of a point of the
/// prime-order subgroup other than the identity (§5.2). The `spake2` crate checks only the
/// side byte and that the point decompresses; a point with a small-order component would let
/// a peer learn `x mod 8` from the key, so it is refused here first.
fn check_spake_message(msg: &[u8; SPAKE_MSG_LEN], side: u8) -> Result<(), Error> {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::traits::IsIdentity;
    let (first, point) = msg
        .split_first_chunk::<1>()
        .ok_or(Error::Malformed("spake2 message"))?;
    let point: [u8; 32] = point
        .try_into()
        .map_err(|_| Error::Malformed("spake2 message"))?;
    if first[0] != side {
        return Err(Error::Authentication);
    }
    let p = CompressedEdwardsY(point)
        .decompress()
        .ok_or(Error::Authentication)?;
    if p.compress().to_bytes() != point || !p.is_torsion_free() || p.is_identity() {
        return Err(Error::Authentication);
    }
    Ok(())
}

/// Side bytes of the SPAKE2 messages (python-spake2's `A` and `B`).
const SIDE_PHONE: u8 = 0x41;
const SIDE_TOY: u8 = 0x42;

fn spake_password(code: &PairingCode) -> Password {
    Password::new(code.digits().as_bytes())
}

enum PhoneStage {
    AwaitResponse {
        spake: Box<Spake2<Ed25519Group>>,
        spake_a: [u8; SPAKE_MSG_LEN],
        na: SasNonce,
    },
    AwaitDone {
        keys: Box<Keys>,
        sealed_phone_hash: digest::Digest,
        na: SasNonce,
        commit: [u8; NONCE_LEN],
    },
    Finished,
}

/// The phone's side of pairing (initiator). Feed it every frame the toy sends.
pub struct PhonePairing {
    expect: PairingExpectations,
    stage: PhoneStage,
    sas: Option<Sas>,
}

/// What the phone should do after a frame.
#[derive(Debug)]
#[non_exhaustive]
pub enum PhoneStep {
    /// Send this frame to the toy.
    Send(Vec<u8>),
    /// Pairing is complete: pin this toy.
    Paired(PairedToy),
}

impl PhonePairing {
    /// The short authentication string, once PAIR_DONE arrived and opened the toy's
    /// commitment: show it next to the toy's.
    pub fn sas(&self) -> Option<Sas> {
        self.sas
    }

    /// Starts pairing with the code typed or scanned; returns the PAIR_REQUEST frame.
    pub fn start(
        code: &PairingCode,
        expect: PairingExpectations,
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<u8>), Error> {
        let (spake, msg) = Spake2::<Ed25519Group>::start_a_with_rng(
            &spake_password(code),
            &Identity::new(SPAKE_ID_PHONE),
            &Identity::new(SPAKE_ID_TOY),
            Drawn::new(rng, SPAKE_RANDOM),
        );
        // Drawn now, revealed only in PAIR_CONFIRM, after the toy's commitment arrived.
        let na = draw_nonce(rng);
        let spake_a: [u8; SPAKE_MSG_LEN] = msg
            .as_slice()
            .try_into()
            .map_err(|_| Error::Malformed("spake2 message length"))?;
        let frame = Frame::PairRequest {
            version: PAIRING_VERSION,
            spake: &spake_a,
        }
        .encode();
        Ok((
            Self {
                expect,
                sas: None,
                stage: PhoneStage::AwaitResponse {
                    spake: Box::new(spake),
                    spake_a,
                    na,
                },
            },
            frame,
        ))
    }

    /// Handles a frame from the toy. Any error ends the attempt; start again with a new
    /// `PhonePairing`.
    pub fn handle(&mut self, me: &DeviceIdentity, frame: &[u8]) -> Result<PhoneStep, Error> {
        let stage = std::mem::replace(&mut self.stage, PhoneStage::Finished);
        match (stage, Frame::decode(frame)?) {
            (_, Frame::NotPairable) => Err(Error::NotPairable),
            (_, Frame::Abort(AbortReason::Busy)) => Err(Error::Busy),
            (_, Frame::Abort(AbortReason::WrongPeer)) => {
                Err(Error::WrongPeer("the toy already has a guardian"))
            }
            (_, Frame::Abort(_)) => Err(Error::Authentication),
            (
                PhoneStage::AwaitResponse { spake, spake_a, na },
                Frame::PairResponse {
                    spake: spake_b,
                    commit,
                },
            ) => {
                check_spake_message(spake_b, SIDE_TOY)?;
                let k = Zeroizing::new(spake.finish(spake_b).map_err(|_| Error::Authentication)?);
                let keys = Keys::derive(&k, &spake_a, spake_b)?;
                // The phone confirms first: a toy without the code learns one guess from it,
                // which is why the phone limits its own attempts (§5.5). `Na` goes out only
                // now that the toy is committed to `Nb` (T37).
                let confirm_phone = Keys::mac(&keys.confirm_phone, &[&keys.th, commit, &na[..]]);
                let mut block = me.public().to_bytes().to_vec();
                block
                    .extend_from_slice(sign_transcript(me, SIG_CONTEXT_PHONE, &keys.th).as_bytes());
                let sealed_phone = Keys::seal(&keys.seal_phone, 0, &keys.th, &block)?;
                let frame = Frame::PairConfirm {
                    confirm: &confirm_phone,
                    nonce: &na,
                    sealed: &sealed_phone,
                }
                .encode();
                self.stage = PhoneStage::AwaitDone {
                    keys: Box::new(keys),
                    sealed_phone_hash: digest::digest(&digest::SHA256, &sealed_phone),
                    na,
                    commit: *commit,
                };
                Ok(PhoneStep::Send(frame))
            }
            (
                PhoneStage::AwaitDone {
                    keys,
                    sealed_phone_hash,
                    na,
                    commit,
                },
                Frame::PairDone {
                    confirm,
                    nonce: nb,
                    sealed,
                },
            ) => {
                // Explicit key confirmation first: a toy (or a man in the middle) without the
                // code stops here. Then the commitment: `Nb` must be what the toy committed
                // to before it saw `Na` (§5.4 step 5, T37).
                Keys::check_mac(
                    &keys.confirm_toy,
                    &[&keys.th, sealed_phone_hash.as_ref(), &na[..], nb],
                    confirm,
                )?;
                if commitment(&keys.th, nb) != commit {
                    return Err(Error::Authentication);
                }
                self.sas = Some(keys.sas(&na, nb)?);
                let block = Keys::open(&keys.seal_toy, 0, &keys.th, sealed)?;
                let (toy, sig, rest) = split_identity(&block)?;
                verify_transcript(&toy, SIG_CONTEXT_TOY, &keys.th, &sig)?;
                if toy.role() != Role::Toy {
                    return Err(Error::WrongPeer("the peer is not a toy"));
                }
                if let Some(fp) = self.expect.fingerprint
                    && toy.device_id() != fp
                {
                    return Err(Error::WrongPeer("the toy does not match its QR code"));
                }
                let attested = match rest {
                    [0] => false,
                    [1, att @ ..] => {
                        let (key, sig) = att
                            .split_first_chunk::<32>()
                            .ok_or(Error::Malformed("attestation field"))?;
                        let sig: &[u8; SIGNATURE_LEN] = sig
                            .try_into()
                            .map_err(|_| Error::Malformed("attestation field"))?;
                        let a = MakerAttestation {
                            maker_key: *key,
                            signature: Signature::from_bytes(*sig),
                        };
                        self.expect.maker_roots.contains(&a.maker_key) && a.verify(&toy)
                    }
                    _ => return Err(Error::Malformed("attestation field")),
                };
                if self.expect.require_attestation && !attested {
                    return Err(Error::Attestation);
                }
                Ok(PhoneStep::Paired(PairedToy {
                    identity: toy,
                    attested,
                }))
            }
            _ => Err(Error::UnexpectedMessage),
        }
    }
}

/// The toy's side of one pairing attempt (responder), created from a PAIR_REQUEST.
pub struct ToyPairing {
    keys: Keys,
    sealed_toy: Vec<u8>,
    nb: SasNonce,
    commit: [u8; NONCE_LEN],
}

/// What the toy learned from a valid PAIR_CONFIRM.
#[derive(Debug)]
pub struct ToyConfirmed {
    /// The phone that paired.
    pub phone: PublicIdentity,
    /// The short authentication string (known to the toy from here on).
    pub sas: Sas,
    /// The PAIR_DONE frame.
    pub reply: Vec<u8>,
}

impl ToyPairing {
    /// Answers a PAIR_REQUEST with PAIR_RESPONSE (the toy's SPAKE2 message and its commitment
    /// to `Nb`: nothing in it depends on the code in a way the phone could test, §5.4).
    pub fn respond(
        me: &DeviceIdentity,
        code: &PairingCode,
        attestation: Option<&MakerAttestation>,
        request: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<(Self, Vec<u8>), Error> {
        let Frame::PairRequest { version, spake } = Frame::decode(request)? else {
            return Err(Error::UnexpectedMessage);
        };
        if version != PAIRING_VERSION {
            return Err(Error::Malformed("unsupported protocol version"));
        }
        check_spake_message(spake, SIDE_PHONE)?;
        let (state, msg) = Spake2::<Ed25519Group>::start_b_with_rng(
            &spake_password(code),
            &Identity::new(SPAKE_ID_PHONE),
            &Identity::new(SPAKE_ID_TOY),
            Drawn::new(rng, SPAKE_RANDOM),
        );
        let spake_b: [u8; SPAKE_MSG_LEN] = msg
            .as_slice()
            .try_into()
            .map_err(|_| Error::Malformed("spake2 message length"))?;
        let nb = draw_nonce(rng);
        let k = Zeroizing::new(state.finish(spake).map_err(|_| Error::Authentication)?);
        let keys = Keys::derive(&k, spake, &spake_b)?;
        let commit = commitment(&keys.th, &nb);
        let mut block = me.public().to_bytes().to_vec();
        block.extend_from_slice(sign_transcript(me, SIG_CONTEXT_TOY, &keys.th).as_bytes());
        match attestation {
            None => block.push(0),
            Some(a) => {
                block.push(1);
                block.extend_from_slice(&a.maker_key);
                block.extend_from_slice(a.signature.as_bytes());
            }
        }
        let sealed_toy = Keys::seal(&keys.seal_toy, 0, &keys.th, &block)?;
        let frame = Frame::PairResponse {
            spake: &spake_b,
            commit: &commit,
        }
        .encode();
        Ok((
            Self {
                keys,
                sealed_toy,
                nb,
                commit,
            },
            frame,
        ))
    }

    /// Checks PAIR_CONFIRM (this is where a guess is tested); on success returns the phone,
    /// the SAS and the PAIR_DONE frame (which reveals `Nb`).
    pub fn confirm(self, frame: &[u8]) -> Result<ToyConfirmed, Error> {
        let Frame::PairConfirm {
            confirm,
            nonce: na,
            sealed,
        } = Frame::decode(frame)?
        else {
            return Err(Error::UnexpectedMessage);
        };
        let keys = &self.keys;
        Keys::check_mac(&keys.confirm_phone, &[&keys.th, &self.commit, na], confirm)?;
        let block = Keys::open(&keys.seal_phone, 0, &keys.th, sealed)?;
        let (phone, sig, rest) = split_identity(&block)?;
        if !rest.is_empty() {
            return Err(Error::Malformed("trailing bytes in identity block"));
        }
        verify_transcript(&phone, SIG_CONTEXT_PHONE, &keys.th, &sig)?;
        if phone.role() != Role::Guardian {
            return Err(Error::WrongPeer("only a guardian's phone can pair"));
        }
        let sas = keys.sas(na, &self.nb)?;
        let sealed_hash = digest::digest(&digest::SHA256, sealed);
        let confirm_toy = Keys::mac(
            &keys.confirm_toy,
            &[&keys.th, sealed_hash.as_ref(), na, &self.nb[..]],
        );
        let reply = Frame::PairDone {
            confirm: &confirm_toy,
            nonce: &self.nb,
            sealed: &self.sealed_toy,
        }
        .encode();
        Ok(ToyConfirmed { phone, sas, reply })
    }
}

const _: () = assert!(TAG_LEN == 16);

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};

    fn message(side: u8, point: [u8; 32]) -> [u8; SPAKE_MSG_LEN] {
        let mut m = [0u8; SPAKE_MSG_LEN];
        m[0] = side;
        m[1..].copy_from_slice(&point);
        m
    }

    #[test]
    fn m_and_n_are_prime_order_points_as_the_spec_says() {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        for hex_point in [
            "15cfd18e385952982b6a8f8c7854963b58e34388c8e6dae891db756481a02312",
            "f04f2e7eb734b2a8f8b472eaf9c3c632576ac64aea650b496a8a20ff00e583c3",
        ] {
            let bytes: [u8; 32] = hex::decode(hex_point).unwrap().try_into().unwrap();
            let p = CompressedEdwardsY(bytes).decompress().unwrap();
            assert!(p.is_torsion_free());
        }
    }

    #[test]
    fn spake_messages_must_be_canonical_prime_order_points() {
        let good = ED25519_BASEPOINT_POINT.compress().to_bytes();
        assert!(check_spake_message(&message(SIDE_PHONE, good), SIDE_PHONE).is_ok());
        assert!(check_spake_message(&message(SIDE_TOY, good), SIDE_PHONE).is_err());
        // Every small-order point, and the base point plus each torsion component.
        for t in EIGHT_TORSION {
            let small = message(SIDE_PHONE, t.compress().to_bytes());
            assert!(check_spake_message(&small, SIDE_PHONE).is_err());
            let mixed = (ED25519_BASEPOINT_POINT + t).compress().to_bytes();
            let is_identity_torsion = t.compress().to_bytes() == {
                let mut one = [0u8; 32];
                one[0] = 1;
                one
            };
            let r = check_spake_message(&message(SIDE_PHONE, mixed), SIDE_PHONE);
            assert_eq!(r.is_ok(), is_identity_torsion);
        }
        // A non-canonical encoding of a valid point (y + p for small y) and a non-point.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert!(check_spake_message(&message(SIDE_PHONE, non_canonical), SIDE_PHONE).is_err());
    }
}
