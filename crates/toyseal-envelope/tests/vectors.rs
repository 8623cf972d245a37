//! Deterministic envelope v3 test vectors (`docs/spec/vectors/envelope.json`), checked both ways.
//!
//! 1. The generator seals every valid vector twice: with the library (its randomness replayed
//!    from recorded bytes) and with the independent sealer below, written from
//!    docs/spec/envelope.md alone with `ring`, `hpke` and `toyseal-core` public types; both must
//!    give the same bytes, and the file must equal what the generator renders.
//! 2. Every committed vector is then checked from the file alone: every valid vector is
//!    re-sealed byte for byte (with every recorded intermediate) by the independent sealer and by
//!    the library; every vector is opened with [`open`], the streaming [`Opener`] in small
//!    pieces and [`OpenReader`], and verified with the keyless [`verify`], each giving the result
//!    and the number of released content bytes that the file states.
//!
//! Regenerate the file (after a deliberate format change only) with
//! `TOYSEAL_REGENERATE_VECTORS=1 cargo test -p toyseal-envelope --test vectors`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use hpke::{
    Deserializable, Kem as _, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305,
    kdf::HkdfSha256, kem::X25519HkdfSha256,
};
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::digest::{Context, SHA256, digest};
use ring::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Read;
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_envelope::{
    ChainLink, Error, Metadata, OpenOptions, OpenReader, Opener, ReceiveState, SealOptions, Sealer,
    TrustedSenders, open, verify,
};

/// Where the committed vectors live.
const VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/spec/vectors/envelope.json"
);

/// How many vectors the file holds: valid (re-sealable) and must-fail. A vector silently lost
/// or added fails the test.
const VALID_COUNT: usize = 18;
const MUST_FAIL_COUNT: usize = 110;
/// How many openings (opener, trust policy, re-encryption check) the vectors state in all.
const OPEN_COUNT: usize = 139;

/// A fixed synthetic creation time (2025-11-24T16:00:00Z).
const CREATED: u64 = 1_764_000_000;

// =============================================================================================
// The independent sealer: docs/spec/envelope.md, and nothing from toyseal_envelope.

const MAGIC: &[u8; 7] = b"toyseal";
const VERSION: u8 = 3;
const SUITE: u16 = 0x0001;
const FIXED_LEN: usize = 201;
const STANZA_LEN: usize = 72;
const SIG_LEN: usize = 64;
const KEY_ID_CONTEXT: &[u8] = b"toyseal/v2/recipient-key-id";
const COMMITMENT_INFO: &[u8] = b"toyseal/v2/key-commitment";
const STANZA_IKM_INFO: &[u8] = b"toyseal/v2/stanza-ikm";
const PAYLOAD_INFO: &[u8] = b"toyseal/v2/payload";
const WRAP_INFO: &[u8] = b"toyseal/v2/file-key";
const CHAIN_CONTEXT: &[u8] = b"toyseal/v2/checkpoint-chain\x00";
const CHECKPOINT_CONTEXT: &[u8] = b"toyseal/v2/checkpoint\x00";
const REC_CHUNK: u8 = 0x01;
const REC_LAST_CHUNK: u8 = 0x02;
const REC_CHECKPOINT: u8 = 0x10;
const REC_FINAL: u8 = 0x11;
const KIND_DATA: u8 = 0x00;
const KIND_END: u8 = 0x01;
const KIND_PAD: u8 = 0x02;
const END_MARKER: u8 = 0x80;

// Header field offsets (§4.1).
const OFF_VERSION: usize = 7;
const OFF_SUITE: usize = 8;
const OFF_FLAGS: usize = 10;
const OFF_CHUNK: usize = 11;
const OFF_SEGMENT: usize = 12;
const OFF_FAMILY: usize = 13;
const OFF_ROSTER: usize = 29;
const OFF_SEQUENCE: usize = 37;
const OFF_PREVIOUS: usize = 45;
const OFF_CREATED: usize = 77;
const OFF_COMMITMENT: usize = 101;
const OFF_SENDER: usize = 133;
const OFF_COUNT: usize = 199;

type Kem = X25519HkdfSha256;

fn sha256(data: &[u8]) -> [u8; 32] {
    digest(&SHA256, data).as_ref().try_into().unwrap()
}

struct Len(usize);
impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Extract(salt = payload_nonce, ikm = file_key) (§5).
fn extract(file_key: &[u8; 16], payload_nonce: &[u8; 16]) -> Prk {
    Salt::new(HKDF_SHA256, payload_nonce).extract(file_key)
}

/// HKDF-Expand(prk, info_1 || info_2 || …, 32).
fn expand(prk: &Prk, info: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    prk.expand(info, Len(32)).unwrap().fill(&mut out).unwrap();
    out
}

fn key_id(x25519: &[u8]) -> [u8; 8] {
    sha256(&[KEY_ID_CONTEXT, x25519].concat())[..8]
        .try_into()
        .unwrap()
}

/// Padmé (§8), from its definition.
fn spec_padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - u64::from(len.leading_zeros());
    let s = 64 - u64::from(e.leading_zeros());
    let mask = (1u64 << (e - s)) - 1;
    (len + mask) & !mask
}

fn chain_value(previous: &[u8; 32], index: u64, last: bool, digest: &[u8]) -> [u8; 32] {
    sha256(
        &[
            CHAIN_CONTEXT,
            previous,
            &index.to_be_bytes(),
            &[u8::from(last)],
            digest,
        ]
        .concat(),
    )
}

/// Randomness that replays fixed bytes and refuses to give more.
struct Replay(Vec<u8>);

impl TryRng for Replay {
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
        assert!(
            dst.len() <= self.0.len(),
            "asked for more than the recorded randomness"
        );
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}

impl TryCryptoRng for Replay {}

/// HPKE base-mode single-shot seal of `file_key` to `recipient`, with the ephemeral key pair
/// `DeriveKeyPair(ikm)` (RFC 9180 §7.1.3; hpke's generator draws exactly Nsk = 32 bytes and
/// derives from them, as in the RFC's own vectors; checked below). Returns (enc, ct || tag).
fn hpke_wrap(
    aad: &[u8],
    recipient: &[u8; 32],
    file_key: &[u8],
    ikm: &[u8; 32],
) -> ([u8; 32], [u8; 32]) {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient).unwrap();
    let (_, expected_enc) = Kem::derive_keypair(ikm);
    let mut rng = Replay(ikm.to_vec());
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        WRAP_INFO,
        file_key,
        aad,
        &mut rng,
    )
    .unwrap();
    assert!(rng.0.is_empty(), "hpke drew fewer than 32 bytes");
    assert_eq!(enc.to_bytes(), expected_enc.to_bytes());
    (
        enc.to_bytes().as_slice().try_into().unwrap(),
        ct.as_slice().try_into().unwrap(),
    )
}

/// Deviations from the spec, for building must-fail envelopes (all default to "none").
#[derive(Clone, Default)]
struct Forge {
    /// Write this instead of the derived key commitment.
    commitment: Option<[u8; 32]>,
    /// Wrap this file key (instead of the real one) to the recipient at this index.
    stanza_file_key: Option<(usize, [u8; 16])>,
    /// Sign every checkpoint with this Ed25519 seed instead of the sender's.
    signer_seed: Option<[u8; 32]>,
    /// Never end a segment when it is full.
    no_auto_checkpoints: bool,
    /// A checkpoint mark always writes a checkpoint, even after no chunk.
    empty_checkpoints: bool,
    /// Emit these chunk plaintexts (and last flags) instead of the content stream.
    raw_chunks: Option<Vec<(Vec<u8>, bool)>>,
}

/// Everything a sealer draws or is given (§10): the test vector's `seal` object.
#[derive(Clone)]
struct SealInput {
    sender_seed: [u8; 32],
    sender_identity: [u8; 66],
    recipients: Vec<[u8; 32]>,
    file_key: [u8; 16],
    payload_nonce: [u8; 16],
    sequence: u64,
    previous: [u8; 32],
    created: u64,
    chunk_size_log2: u8,
    segment_size_log2: u8,
    family: [u8; 16],
    roster_version: u64,
    prelude: Vec<u8>,
    content: Vec<u8>,
    checkpoint_after: Vec<usize>,
    forge: Forge,
}

struct SpecStanza {
    key_id: [u8; 8],
    ikm: [u8; 32],
    enc: [u8; 32],
    wrapped: [u8; 32],
}

struct SpecCheckpoint {
    index: u64,
    last: bool,
    digest: [u8; 32],
    chain: [u8; 32],
}

struct Sealed {
    envelope: Vec<u8>,
    commitment: [u8; 32],
    stanzas: Vec<SpecStanza>,
    header_hash: [u8; 32],
    payload_key: [u8; 32],
    checkpoints: Vec<SpecCheckpoint>,
}

/// The record layer and checkpoints (§6, §7): chunks out, a checkpoint when a segment is full.
struct SpecBody {
    key: LessSafeKey,
    chunk: usize,
    segment_chunks: u64,
    signer: Ed25519KeyPair,
    forge: Forge,
    chain: [u8; 32],
    index: u64,
    counter: u64,
    in_segment: u64,
    segment: Context,
    plaintext_total: u64,
    buf: Vec<u8>,
    out: Vec<u8>,
    checkpoints: Vec<SpecCheckpoint>,
}

impl SpecBody {
    fn new(
        payload_key: &[u8; 32],
        chunk_log2: u8,
        segment_log2: u8,
        signer_seed: &[u8; 32],
        forge: Forge,
    ) -> Self {
        Self {
            key: LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, payload_key).unwrap()),
            chunk: 1 << chunk_log2,
            segment_chunks: 1 << (segment_log2 - chunk_log2),
            signer: Ed25519KeyPair::from_seed_unchecked(signer_seed).unwrap(),
            forge,
            chain: [0; 32],
            index: 0,
            counter: 0,
            in_segment: 0,
            segment: Context::new(&SHA256),
            plaintext_total: 0,
            buf: Vec::new(),
            out: Vec::new(),
            checkpoints: Vec::new(),
        }
    }

    fn checkpoint(&mut self, digest: &[u8], last: bool) {
        let chain = chain_value(&self.chain, self.index, last, digest);
        let sig = self.signer.sign(&[CHECKPOINT_CONTEXT, &chain].concat());
        self.out.push(if last { REC_FINAL } else { REC_CHECKPOINT });
        self.out.extend_from_slice(sig.as_ref());
        self.checkpoints.push(SpecCheckpoint {
            index: self.index,
            last,
            digest: digest.try_into().unwrap(),
            chain,
        });
        self.chain = chain;
        self.index += 1;
        self.in_segment = 0;
    }

    fn end_segment(&mut self, last: bool) {
        let d = std::mem::replace(&mut self.segment, Context::new(&SHA256)).finish();
        self.checkpoint(d.as_ref(), last);
    }

    fn chunk(&mut self, mut plaintext: Vec<u8>, last: bool) {
        assert!(!plaintext.is_empty() && plaintext.len() <= self.chunk);
        self.plaintext_total += plaintext.len() as u64;
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&self.counter.to_be_bytes());
        nonce[11] = u8::from(last);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut plaintext,
            )
            .unwrap();
        let len = plaintext.len() as u32;
        let mut record = vec![if last { REC_LAST_CHUNK } else { REC_CHUNK }];
        record.extend_from_slice(&len.to_be_bytes()[1..]);
        record.extend_from_slice(&plaintext);
        self.segment.update(&record);
        self.out.extend_from_slice(&record);
        self.counter += 1;
        self.in_segment += 1;
        if !last && !self.forge.no_auto_checkpoints && self.in_segment == self.segment_chunks {
            self.end_segment(false);
        }
    }

    /// Content stream bytes: every full DATA body (chunk - 1 bytes) leaves at once.
    fn append(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= self.chunk - 1 {
            let mut pt = vec![KIND_DATA];
            pt.extend(self.buf.drain(..self.chunk - 1));
            self.chunk(pt, false);
        }
    }

    /// A sender's early checkpoint: a short DATA chunk with what is buffered, then a checkpoint.
    fn mark(&mut self) {
        if !self.buf.is_empty() {
            let mut pt = vec![KIND_DATA];
            pt.append(&mut self.buf);
            self.chunk(pt, false);
        }
        if self.in_segment > 0 || self.forge.empty_checkpoints {
            self.end_segment(false);
        }
    }

    /// END chunk, Padmé padding in the END chunk then PAD chunks, the FINAL checkpoint.
    fn finish(&mut self) {
        let mut end = vec![KIND_END];
        end.append(&mut self.buf);
        end.push(END_MARKER);
        let total = self.plaintext_total + end.len() as u64;
        let mut remaining = spec_padme(total) - total;
        let grow = remaining.min((self.chunk - end.len()) as u64);
        end.resize(end.len() + grow as usize, 0);
        remaining -= grow;
        self.chunk(end, remaining == 0);
        while remaining > 0 {
            let len = remaining.min(self.chunk as u64);
            remaining -= len;
            let mut pad = vec![0u8; len as usize];
            pad[0] = KIND_PAD;
            self.chunk(pad, remaining == 0);
        }
        self.end_segment(true);
    }

    /// The content stream after checkpoint 0: prelude, content with the sender's marks, end.
    fn seal_content(&mut self, prelude: &[u8], content: &[u8], marks: &[usize]) {
        self.append(prelude);
        let mut at = 0;
        for &m in marks {
            self.append(&content[at..m]);
            self.mark();
            at = m;
        }
        self.append(&content[at..]);
        self.finish();
    }
}

/// Seals an envelope from the spec alone.
fn spec_seal(i: &SealInput) -> Sealed {
    let prk = extract(&i.file_key, &i.payload_nonce);
    let commitment = i
        .forge
        .commitment
        .unwrap_or_else(|| expand(&prk, &[COMMITMENT_INFO]));
    let mut fixed = Vec::with_capacity(FIXED_LEN);
    fixed.extend_from_slice(MAGIC);
    fixed.push(VERSION);
    fixed.extend_from_slice(&SUITE.to_be_bytes());
    fixed.push(0);
    fixed.push(i.chunk_size_log2);
    fixed.push(i.segment_size_log2);
    fixed.extend_from_slice(&i.family);
    fixed.extend_from_slice(&i.roster_version.to_be_bytes());
    fixed.extend_from_slice(&i.sequence.to_be_bytes());
    fixed.extend_from_slice(&i.previous);
    fixed.extend_from_slice(&i.created.to_be_bytes());
    fixed.extend_from_slice(&i.payload_nonce);
    fixed.extend_from_slice(&commitment);
    fixed.extend_from_slice(&i.sender_identity);
    fixed.extend_from_slice(&(i.recipients.len() as u16).to_be_bytes());
    assert_eq!(fixed.len(), FIXED_LEN);
    let mut header = fixed.clone();
    let mut stanzas = Vec::new();
    for (n, r) in i.recipients.iter().enumerate() {
        let file_key = match i.forge.stanza_file_key {
            Some((at, k)) if at == n => k,
            _ => i.file_key,
        };
        let ikm = expand(&extract(&file_key, &i.payload_nonce), &[STANZA_IKM_INFO, r]);
        let id = key_id(r);
        let (enc, wrapped) = hpke_wrap(&[&fixed[..], &id].concat(), r, &file_key, &ikm);
        header.extend_from_slice(&id);
        header.extend_from_slice(&enc);
        header.extend_from_slice(&wrapped);
        stanzas.push(SpecStanza {
            key_id: id,
            ikm,
            enc,
            wrapped,
        });
    }
    let header_hash = sha256(&header);
    let payload_key = expand(&prk, &[PAYLOAD_INFO, &header_hash]);
    let signer = i.forge.signer_seed.unwrap_or(i.sender_seed);
    let mut body = SpecBody::new(
        &payload_key,
        i.chunk_size_log2,
        i.segment_size_log2,
        &signer,
        i.forge.clone(),
    );
    body.out = header;
    body.checkpoint(&header_hash, false);
    match &i.forge.raw_chunks {
        Some(chunks) => {
            for (pt, last) in chunks {
                body.chunk(pt.clone(), *last);
            }
            body.end_segment(true);
        }
        None => body.seal_content(&i.prelude, &i.content, &i.checkpoint_after),
    }
    Sealed {
        envelope: body.out,
        commitment,
        stanzas,
        header_hash,
        payload_key,
        checkpoints: body.checkpoints,
    }
}

/// The prelude (§9) for the metadata fields the library knows.
fn spec_prelude(
    content_type: Option<&str>,
    codec: Option<&str>,
    duration_ms: Option<u32>,
) -> Vec<u8> {
    let mut body = Vec::new();
    for (tag, t) in [(1u8, content_type), (2, codec)] {
        if let Some(t) = t {
            body.push(tag);
            body.push(t.len() as u8);
            body.extend_from_slice(t.as_bytes());
        }
    }
    if let Some(d) = duration_ms {
        body.extend_from_slice(&[3, 4]);
        body.extend_from_slice(&d.to_be_bytes());
    }
    [&(body.len() as u16).to_be_bytes()[..], &body].concat()
}

// =============================================================================================
// Byte helpers for tampering (§4, §6).

fn header_len(env: &[u8]) -> usize {
    FIXED_LEN + STANZA_LEN * usize::from(u16::from_be_bytes([env[OFF_COUNT], env[OFF_COUNT + 1]]))
}

/// The records after the header: (type, byte range).
fn records(env: &[u8]) -> Vec<(u8, std::ops::Range<usize>)> {
    let mut at = header_len(env);
    let mut out = Vec::new();
    while at < env.len() {
        let kind = env[at];
        let len = match kind {
            REC_CHUNK | REC_LAST_CHUNK => {
                4 + (usize::from(env[at + 1]) << 16
                    | usize::from(env[at + 2]) << 8
                    | usize::from(env[at + 3]))
            }
            _ => 1 + SIG_LEN,
        };
        out.push((kind, at..at + len));
        at += len;
    }
    out
}

fn set(env: &[u8], offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut e = env.to_vec();
    e[offset..offset + bytes.len()].copy_from_slice(bytes);
    e
}

fn flip(env: &[u8], offset: usize) -> Vec<u8> {
    let mut e = env.to_vec();
    e[offset] ^= 0x01;
    e
}

/// The header followed by the records in `order` (indices into [`records`]).
fn rearrange(env: &[u8], order: &[usize]) -> Vec<u8> {
    let r = records(env);
    let mut e = env[..header_len(env)].to_vec();
    for &i in order {
        e.extend_from_slice(&env[r[i].1.clone()]);
    }
    e
}

/// A recipient's view (§5): its file key, from its own stanza.
fn recipient_file_key(env: &[u8], x25519_secret: &[u8; 32], x25519_public: &[u8]) -> [u8; 16] {
    let id = key_id(x25519_public);
    let s = (FIXED_LEN..header_len(env))
        .step_by(STANZA_LEN)
        .map(|at| &env[at..at + STANZA_LEN])
        .find(|s| s[..8] == id)
        .unwrap();
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(x25519_secret).unwrap();
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&s[8..40]).unwrap();
    let aad = [&env[..FIXED_LEN], &id].concat();
    let k = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        WRAP_INFO,
        &s[40..72],
        &aad,
    )
    .unwrap();
    k.as_slice().try_into().unwrap()
}

// =============================================================================================
// The cast: synthetic identities from fixed seeds.

const CAST: &[(&str, Role, u8)] = &[
    ("toy", Role::Toy, 1),
    ("phone-a", Role::Guardian, 2),
    ("phone-b", Role::Guardian, 3),
    ("phone-c", Role::Guardian, 4),
    ("stranger", Role::Guardian, 5),
    ("other-toy", Role::Toy, 6),
];

fn cast_seed(name: &str) -> u8 {
    CAST.iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no identity {name}"))
        .2
}

fn identity(name: &str) -> DeviceIdentity {
    let role = CAST.iter().find(|c| c.0 == name).unwrap().1;
    DeviceIdentity::generate(role, &mut ChaCha20Rng::from_seed([cast_seed(name); 32]))
}

/// The two secrets `DeviceIdentity::generate` drew: Ed25519 seed, then X25519 secret.
fn secrets(name: &str) -> ([u8; 32], [u8; 32]) {
    let mut rng = ChaCha20Rng::from_seed([cast_seed(name); 32]);
    let (mut seed, mut x) = ([0u8; 32], [0u8; 32]);
    rng.fill_bytes(&mut seed);
    rng.fill_bytes(&mut x);
    (seed, x)
}

fn public(name: &str) -> PublicIdentity {
    identity(name).public().clone()
}

fn family() -> FamilyId {
    FamilyId::from_bytes(*b"synthetic-family")
}

/// Deterministic synthetic "recording" bytes.
fn content(len: usize, tag: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + usize::from(tag) * 17 + i / 251) % 251) as u8)
        .collect()
}

/// The 32 bytes of randomness a sealer draws: file key, then payload nonce.
fn drawn(seed: u8) -> ([u8; 16], [u8; 16]) {
    let mut rng = ChaCha20Rng::from_seed([0x80 | seed; 32]);
    let (mut k, mut n) = ([0u8; 16], [0u8; 16]);
    rng.fill_bytes(&mut k);
    rng.fill_bytes(&mut n);
    (k, n)
}

// =============================================================================================
// Trust policies and expectations.

/// A [`TrustedSenders`] policy as a vector states it: these senders, never a sequence already
/// seen (replay); or, for a departed sender, only on the chain ending at the recorded head
/// (sequence, header hash) through the known links (docs/spec/envelope.md §11.3).
struct Policy {
    senders: Vec<PublicIdentity>,
    departed: Option<Head>,
    seen_sequences: Vec<u64>,
}

/// A departed sender's recorded chain head and the links the opener knows.
#[derive(Clone)]
struct Head {
    sequence: u64,
    head: [u8; 32],
    known_links: Vec<ChainLink>,
}

impl TrustedSenders for Policy {
    fn admits(&self, sender: &PublicIdentity, link: &ChainLink) -> bool {
        self.senders.contains(sender)
            && !self.seen_sequences.contains(&link.sequence)
            && self.departed.as_ref().is_none_or(|d| {
                let mut known = ReceiveState::new();
                for l in &d.known_links {
                    known.record(sender.device_id(), *l);
                }
                known.connects(sender.device_id(), link, d.sequence, &d.head)
            })
    }
}

fn link_json(l: &ChainLink) -> Value {
    json!({
        "sequence": l.sequence,
        "previous_hex": hx(&l.previous),
        "header_hash_hex": hx(&l.header_hash),
    })
}

fn departed_json(d: &Option<Head>) -> Value {
    match d {
        None => Value::Null,
        Some(d) => json!({
            "last_sequence": d.sequence,
            "chain_head_hex": hx(&d.head),
            "known_links": d.known_links.iter().map(link_json).collect::<Vec<_>>(),
        }),
    }
}

fn departed_from_json(v: &Value) -> Option<Head> {
    if v.is_null() {
        return None;
    }
    Some(Head {
        sequence: v["last_sequence"].as_u64().unwrap(),
        head: unhex(&v["chain_head_hex"]),
        known_links: v["known_links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| ChainLink {
                sequence: l["sequence"].as_u64().unwrap(),
                previous: unhex(&l["previous_hex"]),
                header_hash: unhex(&l["header_hash_hex"]),
            })
            .collect(),
    })
}

/// The chain link of an envelope (parsed without keys).
fn link_of(env: &[u8]) -> ChainLink {
    toyseal_envelope::inspect(env).unwrap().chain_link()
}

fn error_name(e: &Error) -> String {
    match e {
        Error::BadMagic => "BadMagic".into(),
        Error::UnsupportedVersion(_) => "UnsupportedVersion".into(),
        Error::UnsupportedSuite(_) => "UnsupportedSuite".into(),
        Error::ReservedFlags(_) => "ReservedFlags".into(),
        Error::ChunkSize(_) => "ChunkSize".into(),
        Error::SegmentSize(_) => "SegmentSize".into(),
        Error::RosterVersionWithoutFamily => "RosterVersionWithoutFamily".into(),
        Error::PreviousWithoutSequence => "PreviousWithoutSequence".into(),
        Error::NoRecipients => "NoRecipients".into(),
        Error::TooManyRecipients { .. } => "TooManyRecipients".into(),
        Error::DuplicateRecipient => "DuplicateRecipient".into(),
        Error::Key(inner) => {
            let inner = match inner {
                toyseal_core::Error::WeakEd25519Key => "WeakEd25519Key",
                toyseal_core::Error::WeakX25519Key => "WeakX25519Key",
                toyseal_core::Error::NonCanonicalX25519Key => "NonCanonicalX25519Key",
                toyseal_core::Error::UnknownRole(_) => "UnknownRole",
                toyseal_core::Error::UnsupportedVersion(_) => "UnsupportedVersion",
                _ => "Other",
            };
            format!("Key({inner})")
        }
        Error::Metadata(_) => "Metadata".into(),
        Error::Truncated => "Truncated".into(),
        Error::TooLarge { .. } => "TooLarge".into(),
        Error::NotARecipient => "NotARecipient".into(),
        Error::Decrypt => "Decrypt".into(),
        Error::Signature => "Signature".into(),
        Error::UntrustedSender => "UntrustedSender".into(),
        Error::StreamClosed => "StreamClosed".into(),
        _ => "Other".into(),
    }
}

fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

fn unhex<const N: usize>(v: &Value) -> [u8; N] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// One opening of a vector: who opens, whom it trusts, which co-recipients it checks.
struct OpenSpec {
    opener: &'static str,
    senders: Vec<&'static str>,
    departed: Option<Head>,
    seen_sequences: Vec<u64>,
    check_recipients: Vec<&'static str>,
    /// "ok" or the error name.
    expect: String,
}

fn opens(opener: &'static str, senders: &[&'static str], expect: &str) -> OpenSpec {
    OpenSpec {
        opener,
        senders: senders.to_vec(),
        departed: None,
        seen_sequences: Vec::new(),
        check_recipients: Vec::new(),
        expect: expect.into(),
    }
}

/// What the streaming opener did: the content it released, and its result.
fn open_streaming(
    me: &DeviceIdentity,
    policy: &Policy,
    check: &[PublicIdentity],
    env: &[u8],
    piece: usize,
) -> (Vec<u8>, Result<toyseal_envelope::Opened, Error>) {
    let mut opener = Opener::new(me, policy, OpenOptions::default()).check_recipients(check);
    let mut out = Vec::new();
    for p in env.chunks(piece) {
        if let Err(e) = opener.push(p, &mut out) {
            return (out, Err(e));
        }
    }
    let r = opener.finish();
    (out, r)
}

/// The outcome as the file records it.
fn outcome_json(content: &[u8], r: &Result<toyseal_envelope::Opened, Error>) -> Value {
    match r {
        Ok(o) => json!({
            "result": "ok",
            "released": content.len(),
            "content_sha256": hx(&sha256(content)),
            "sender": o.sender.to_string(),
            "metadata": {
                "content_type": o.metadata.content_type,
                "codec": o.metadata.codec,
                "duration_ms": o.metadata.duration_ms,
            },
            "family": o.family.map(|f| f.to_string()),
            "roster_version": o.roster_version,
            "sequence": o.sequence,
            "created": o.created,
            "content_len": o.content_len,
        }),
        Err(e) => json!({"result": "error", "error": error_name(e), "released": content.len()}),
    }
}

fn verify_json(env: &[u8]) -> Value {
    match verify(env, OpenOptions::default()) {
        Ok(h) => {
            json!({"result": "ok", "sender": h.sender().to_string(), "sequence": h.sequence()})
        }
        Err(e) => json!({"result": "error", "error": error_name(&e)}),
    }
}

// =============================================================================================
// The generator.

struct Vector {
    name: String,
    description: String,
    sender: &'static str,
    seal: Option<Value>,
    intermediates: Option<Value>,
    opens: Vec<Value>,
    server_verify: Value,
    envelope: Vec<u8>,
}

/// How a valid vector is sealed.
struct ValidSpec {
    sender: &'static str,
    recipients: Vec<&'static str>,
    key_seed: u8,
    sequence: u64,
    /// The sender's previous header hash (drawn from the seed unless set).
    previous: Option<[u8; 32]>,
    chunk_log2: u8,
    segment_log2: u8,
    family: Option<u64>,
    metadata: Metadata,
    /// A prelude the library's `Metadata` cannot express (unknown tags): spec sealer only.
    raw_prelude: Option<Vec<u8>>,
    content: Vec<u8>,
    checkpoint_after: Vec<usize>,
}

fn spec(
    sender: &'static str,
    recipients: &[&'static str],
    key_seed: u8,
    content: Vec<u8>,
) -> ValidSpec {
    ValidSpec {
        sender,
        recipients: recipients.to_vec(),
        key_seed,
        sequence: u64::from(key_seed),
        previous: None,
        chunk_log2: 10,
        segment_log2: 12,
        family: None,
        metadata: Metadata::default(),
        raw_prelude: None,
        content,
        checkpoint_after: Vec::new(),
    }
}

impl ValidSpec {
    fn input(&self) -> SealInput {
        let (file_key, payload_nonce) = drawn(self.key_seed);
        let m = &self.metadata;
        SealInput {
            sender_seed: secrets(self.sender).0,
            sender_identity: public(self.sender).to_bytes(),
            recipients: self
                .recipients
                .iter()
                .map(|r| *public(r).agreement_key().as_bytes())
                .collect(),
            file_key,
            payload_nonce,
            sequence: self.sequence,
            previous: self.previous.unwrap_or_else(|| {
                if self.sequence == 0 {
                    [0; 32]
                } else {
                    sha256(&[b"toyseal vector previous".as_slice(), &[self.key_seed]].concat())
                }
            }),
            created: CREATED + u64::from(self.key_seed),
            chunk_size_log2: self.chunk_log2,
            segment_size_log2: self.segment_log2,
            family: self.family.map_or([0; 16], |_| *family().as_bytes()),
            roster_version: self.family.unwrap_or(0),
            prelude: self.raw_prelude.clone().unwrap_or_else(|| {
                spec_prelude(m.content_type.as_deref(), m.codec.as_deref(), m.duration_ms)
            }),
            content: self.content.clone(),
            checkpoint_after: self.checkpoint_after.clone(),
            forge: Forge::default(),
        }
    }
}

/// Seals with the library, its randomness replayed from the recorded file key and nonce.
fn library_seal(
    sender: &DeviceIdentity,
    recipients: &[PublicIdentity],
    options: &SealOptions,
    file_key: &[u8; 16],
    nonce: &[u8; 16],
    content: &[u8],
    marks: &[usize],
) -> Vec<u8> {
    let mut rng = Replay([&file_key[..], nonce].concat());
    let mut sealer = Sealer::new(sender, recipients, options, &mut rng).unwrap();
    assert!(rng.0.is_empty(), "the sealer drew fewer than 32 bytes");
    let mut out = Vec::new();
    let mut at = 0;
    for &m in marks {
        sealer.update(&content[at..m], &mut out).unwrap();
        sealer.checkpoint(&mut out).unwrap();
        at = m;
    }
    sealer.update(&content[at..], &mut out).unwrap();
    sealer.finish(&mut out).unwrap();
    out
}

/// The library's options for a recorded seal input.
fn library_options(input: &SealInput, metadata: Metadata) -> SealOptions {
    let mut options = SealOptions::default()
        .with_chunk_size_log2(input.chunk_size_log2)
        .unwrap()
        .with_segment_size_log2(input.segment_size_log2)
        .unwrap()
        .with_sequence(input.sequence)
        .with_previous(input.previous)
        .with_created(input.created)
        .with_metadata(metadata);
    if input.family != [0; 16] {
        options = options.with_family(FamilyId::from_bytes(input.family), input.roster_version);
    }
    options
}

impl ValidSpec {
    /// Seals `input` (made by [`ValidSpec::input`]) with the library.
    fn seal_with_library(&self, input: &SealInput) -> Vec<u8> {
        let recipients: Vec<PublicIdentity> = self.recipients.iter().map(|r| public(r)).collect();
        library_seal(
            &identity(self.sender),
            &recipients,
            &library_options(input, self.metadata.clone()),
            &input.file_key,
            &input.payload_nonce,
            &self.content,
            &self.checkpoint_after,
        )
    }
}

fn seal_json(i: &SealInput, s: &ValidSpec) -> Value {
    json!({
        "recipients": s.recipients,
        "file_key_hex": hx(&i.file_key),
        "payload_nonce_hex": hx(&i.payload_nonce),
        "sequence": i.sequence,
        "previous_hex": hx(&i.previous),
        "created": i.created,
        "chunk_size_log2": i.chunk_size_log2,
        "segment_size_log2": i.segment_size_log2,
        "family_hex": hx(&i.family),
        "roster_version": i.roster_version,
        "metadata": {
            "content_type": s.metadata.content_type,
            "codec": s.metadata.codec,
            "duration_ms": s.metadata.duration_ms,
        },
        "library_sealable": s.raw_prelude.is_none(),
        "prelude_hex": hx(&i.prelude),
        "content_hex": hx(&i.content),
        "checkpoint_after": i.checkpoint_after,
    })
}

fn intermediates_json(s: &Sealed, recipients: &[&str]) -> Value {
    json!({
        "key_commitment_hex": hx(&s.commitment),
        "stanzas": s.stanzas.iter().zip(recipients).map(|(st, r)| json!({
            "recipient": r,
            "key_id_hex": hx(&st.key_id),
            "ikm_e_hex": hx(&st.ikm),
            "enc_hex": hx(&st.enc),
            "wrapped_key_hex": hx(&st.wrapped),
        })).collect::<Vec<_>>(),
        "header_hash_hex": hx(&s.header_hash),
        "payload_key_hex": hx(&s.payload_key),
        "checkpoints": s.checkpoints.iter().map(|c| json!({
            "index": c.index,
            "final": c.last,
            "segment_digest_hex": hx(&c.digest),
            "chain_hex": hx(&c.chain),
        })).collect::<Vec<_>>(),
    })
}

struct Gen {
    vectors: Vec<Vector>,
}

impl Gen {
    /// Runs each opening through the library, checks it gives what the generator states, and
    /// records the outcome.
    fn run_opens(name: &str, env: &[u8], opens: &[OpenSpec]) -> Vec<Value> {
        opens
            .iter()
            .map(|o| {
                let policy = Policy {
                    senders: o.senders.iter().map(|s| public(s)).collect(),
                    departed: o.departed.clone(),
                    seen_sequences: o.seen_sequences.clone(),
                };
                let check: Vec<PublicIdentity> =
                    o.check_recipients.iter().map(|s| public(s)).collect();
                let (content, r) = open_streaming(&identity(o.opener), &policy, &check, env, 97);
                let got = r.as_ref().map_or_else(error_name, |_| "ok".to_string());
                assert_eq!(got, o.expect, "{name}: opener {}", o.opener);
                json!({
                    "opener": o.opener,
                    "trust": {
                        "senders": o.senders,
                        "departed": departed_json(&o.departed),
                        "seen_sequences": o.seen_sequences,
                    },
                    "check_recipients": o.check_recipients,
                    "expected": outcome_json(&content, &r),
                })
            })
            .collect()
    }

    fn valid(&mut self, name: &str, description: &str, s: ValidSpec, mut opens: Vec<OpenSpec>) {
        let input = s.input();
        let sealed = spec_seal(&input);
        if s.raw_prelude.is_none() {
            let lib = s.seal_with_library(&input);
            assert!(
                lib == sealed.envelope,
                "{name}: library and spec sealer differ"
            );
        }
        if opens.is_empty() {
            opens = s.recipients.iter().map(|r| opens_ok(r, s.sender)).collect();
        }
        let opens = Self::run_opens(name, &sealed.envelope, &opens);
        self.vectors.push(Vector {
            name: name.into(),
            description: description.into(),
            sender: s.sender,
            seal: Some(seal_json(&input, &s)),
            intermediates: Some(intermediates_json(&sealed, &s.recipients)),
            opens,
            server_verify: verify_json(&sealed.envelope),
            envelope: sealed.envelope,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn fail(
        &mut self,
        name: &str,
        description: &str,
        envelope: Vec<u8>,
        opens: Vec<OpenSpec>,
        server: &str,
        released: Option<u64>,
    ) {
        let recorded = Self::run_opens(name, &envelope, &opens);
        if let Some(n) = released {
            for o in &recorded {
                assert_eq!(o["expected"]["released"], json!(n), "{name}: released");
            }
        }
        let server_verify = verify_json(&envelope);
        let got = server_verify["error"].as_str().unwrap_or("ok");
        assert_eq!(got, server, "{name}: verify");
        self.vectors.push(Vector {
            name: name.into(),
            description: description.into(),
            sender: "toy",
            seal: None,
            intermediates: None,
            opens: recorded,
            server_verify,
            envelope,
        });
    }

    /// A tampered copy of the base envelope, opened by phone-a trusting the toy.
    fn tampered(
        &mut self,
        name: &str,
        description: &str,
        envelope: Vec<u8>,
        open: &str,
        server: &str,
    ) {
        self.fail(
            name,
            description,
            envelope,
            vec![opens("phone-a", &["toy"], open)],
            server,
            None,
        );
    }
}

fn opens_ok(opener: &'static str, sender: &'static str) -> OpenSpec {
    opens(opener, &[sender], "ok")
}

/// The base of the record-layer vectors: toy → phone-a, phone-b; 1 KiB chunks, 2 chunks a
/// segment; 13 prelude + 2143 content bytes, so the records are CP0, D0 D1 CP1, END FINAL.
fn base_spec() -> ValidSpec {
    let mut s = spec("toy", &["phone-a", "phone-b"], 42, content(2143, 42));
    s.segment_log2 = 11;
    s.family = Some(3);
    s.metadata = Metadata::default().with_content_type("audio/ogg");
    s
}

/// The base of the header vectors: as [`base_spec`] with 20 content bytes (CP0, END, FINAL).
fn small_spec() -> ValidSpec {
    let mut s = base_spec();
    s.key_seed = 43;
    s.sequence = 42;
    s.content = content(20, 43);
    s
}

/// The toy's sender chain and the rules of docs/spec/envelope.md §4.3 step 12 and §11.3: its
/// sequences 1, 2 and 4 (3 was reserved and never emitted), each naming the previous one's
/// header hash; a removal recorded sequence 4 and its header hash as the chain head.
fn sender_chain_vectors(g: &mut Gen) {
    let link = |s: &ValidSpec| link_of(&spec_seal(&s.input()).envelope);
    let chain_spec = |sequence: u64, previous: [u8; 32], seed: u8| {
        let mut s = spec("toy", &["phone-a"], seed, content(30, seed));
        s.family = Some(5);
        s.sequence = sequence;
        s.previous = Some(previous);
        s
    };
    let first = chain_spec(1, [0; 32], 61);
    let l1 = link(&first);
    let second = chain_spec(2, l1.header_hash, 62);
    let l2 = link(&second);
    let fourth = chain_spec(4, l2.header_hash, 64);
    let l4 = link(&fourth);
    let departed = |expect: &str, known_links: Vec<ChainLink>| {
        let mut o = opens("phone-a", &["toy"], expect);
        o.departed = Some(Head {
            sequence: 4,
            head: l4.header_hash,
            known_links,
        });
        o
    };
    g.valid(
        "chain_first",
        "the toy's first envelope (sequence 1, previous all zero); the toy was later removed with \
         chain head = chain_head (sequence 4): admitted when the known links connect it to the \
         head (4 -> 2 -> 1)",
        first,
        vec![opens_ok("phone-a", "toy"), departed("ok", vec![l4, l2])],
    );
    let first_env = g.vectors.last().unwrap().envelope.clone();
    g.fail(
        "chain_departed_gap",
        "the toy's real first envelope, but the opener knows only the head's link (4 -> 2): \
         the link of sequence 2 is unknown, so nothing connects sequence 1 to the head yet",
        first_env,
        vec![departed("UntrustedSender", vec![l4])],
        "ok",
        Some(0),
    );
    g.valid(
        "chain_second",
        "the toy's sequence 2 naming sequence 1: the head's previous, admitted once the head's \
         link is known",
        second,
        vec![departed("ok", vec![l4])],
    );
    g.valid(
        "chain_head",
        "the toy's sequence 4 naming sequence 2 (3 was never emitted): the recorded chain head \
         itself, admitted with no known links",
        fourth,
        vec![departed("ok", Vec::new())],
    );
    let known = vec![l4, l2, l1];
    // Back-dated: the unused sequence 3, naming its real predecessor.
    let mut unused = chain_spec(3, l2.header_hash, 63);
    unused.content = b"new content, back-dated".to_vec();
    g.fail(
        "chain_departed_unused_sequence",
        "a removed toy seals new content with sequence 3, unused and below its recorded last \
         sequence 4, naming sequence 2 as previous: not on the recorded chain",
        spec_seal(&unused.input()).envelope,
        vec![departed("UntrustedSender", known.clone())],
        "ok",
        Some(0),
    );
    // Re-used: sequence 2 again, another header.
    let mut reused = chain_spec(2, l1.header_hash, 65);
    reused.content = b"new content under a re-used sequence".to_vec();
    g.fail(
        "chain_departed_reused_sequence",
        "a removed toy seals new content under its used sequence 2 (naming sequence 1 as \
         previous): another header hash, not on the recorded chain",
        spec_seal(&reused.input()).envelope,
        vec![departed("UntrustedSender", known.clone())],
        "ok",
        Some(0),
    );
    // Re-used head sequence.
    let reused_head = chain_spec(4, l2.header_hash, 66);
    g.fail(
        "chain_departed_reused_head_sequence",
        "a removed toy seals sequence 4 again (naming sequence 2): same sequence as the recorded \
         head, another header hash",
        spec_seal(&reused_head.input()).envelope,
        vec![departed("UntrustedSender", known.clone())],
        "ok",
        Some(0),
    );
    // Unsequenced.
    let unsequenced = chain_spec(0, [0; 32], 67);
    g.fail(
        "chain_departed_unsequenced",
        "a removed toy seals with sequence 0 (unsequenced): on no chain",
        spec_seal(&unsequenced.input()).envelope,
        vec![departed("UntrustedSender", known)],
        "ok",
        Some(0),
    );
    // §4.3 step 12: sequence 0 with a previous hash.
    let mut i = chain_spec(0, [0; 32], 68).input();
    i.previous = l1.header_hash;
    g.fail(
        "previous_without_sequence",
        "sequence 0 (unsequenced) but a non-zero previous-envelope hash, correctly signed",
        spec_seal(&i).envelope,
        vec![opens("phone-a", &["toy"], "PreviousWithoutSequence")],
        "PreviousWithoutSequence",
        Some(0),
    );
}

fn generate() -> Vec<Vector> {
    let mut g = Gen {
        vectors: Vec::new(),
    };

    // --- valid envelopes ------------------------------------------------------------------
    for (name, desc, seed, len) in [
        (
            "ok_empty",
            "toy to one phone, 1 KiB chunks, empty content: the END chunk holds the 2-byte empty prelude and the end marker",
            1u8,
            0usize,
        ),
        ("ok_one_byte", "one content byte", 2, 1),
        (
            "ok_data_body_exact",
            "1021 bytes: with the 2-byte prelude they fill one DATA body (1023 bytes), so the END chunk holds only the end marker",
            3,
            1021,
        ),
        (
            "ok_chunk_minus_1",
            "1022 bytes: 1024 stream bytes, one DATA chunk and an END chunk with one byte",
            4,
            1022,
        ),
        (
            "ok_four_chunks_one_segment",
            "4092 bytes with 2^12-byte segments: exactly 4 DATA chunks (a full segment, checkpoint at once) then the END chunk in a segment of its own",
            5,
            4090,
        ),
    ] {
        g.valid(
            name,
            desc,
            spec("toy", &["phone-a"], seed, content(len, seed)),
            Vec::new(),
        );
    }
    let mut s = spec("toy", &["phone-a"], 6, content(16_365, 6));
    s.segment_log2 = 14;
    s.checkpoint_after = vec![1020];
    g.valid(
        "ok_padding_chunk",
        "16365 bytes with a checkpoint after 1020 (a 1023-byte DATA chunk): 16385 plaintext bytes, Padmé 17408, so the END chunk is filled to 1024 bytes and a 1-byte PAD chunk follows it",
        s,
        Vec::new(),
    );

    let mut s = spec(
        "toy",
        &["phone-a", "phone-b", "phone-c"],
        7,
        content(2500, 7),
    );
    s.family = Some(9);
    s.metadata = Metadata::default()
        .with_content_type("audio/ogg")
        .with_codec("opus")
        .with_duration_ms(4200);
    let mut o = opens_ok("phone-a", "toy");
    o.check_recipients = vec!["phone-a", "phone-b", "phone-c"];
    g.valid(
        "ok_three_recipients_metadata",
        "toy to three phones, family and roster version 9, every metadata field; each phone opens it, and phone-a also runs the re-encryption check over the whole family",
        s,
        vec![opens_ok("phone-a", "toy"), opens_ok("phone-b", "toy"), opens_ok("phone-c", "toy"), o],
    );

    let mut s = spec("toy", &["phone-a"], 8, content(2600, 8));
    s.checkpoint_after = vec![0, 100, 100, 1500, 2600];
    g.valid(
        "ok_live_checkpoints",
        "a live sender calls checkpoint after 0, 100, 100 (no-op: nothing sealed since), 1500 and 2600 content bytes: short DATA chunks end early segments",
        s,
        Vec::new(),
    );

    let mut s = spec("toy", &["phone-a"], 9, content(3000, 9));
    s.chunk_log2 = 16;
    s.segment_log2 = 20;
    g.valid(
        "ok_default_sizes",
        "the default 64 KiB chunks and 1 MiB segments: one END chunk",
        s,
        Vec::new(),
    );

    let mut s = spec("toy", &["phone-a"], 10, content(300, 10));
    s.chunk_log2 = 11;
    s.segment_log2 = 11;
    g.valid(
        "ok_segment_equals_chunk",
        "2 KiB chunks, one chunk a segment",
        s,
        Vec::new(),
    );

    let mut s = spec("toy", &["phone-a"], 11, content(200, 11));
    s.raw_prelude = Some([&[0, 15][..], &[1, 9], b"audio/ogg", &[0x05, 2, 0xaa, 0xbb]].concat());
    g.valid(
        "ok_unknown_prelude_tag",
        "the prelude carries an unknown tag 0x05 after the content type: skipped (sealed by the spec sealer only; the library's Metadata has no such field)",
        s,
        Vec::new(),
    );

    let mut s = spec("phone-a", &["toy"], 12, content(700, 12));
    s.family = Some(1);
    g.valid(
        "ok_parent_to_toy",
        "a guardian's phone to the toy",
        s,
        Vec::new(),
    );

    let mut s = spec("toy", &["phone-a"], 13, content(50, 13));
    s.sequence = u64::MAX;
    s.family = Some(u64::MAX);
    g.valid(
        "ok_extreme_counters",
        "sequence and roster version 2^64 - 1",
        s,
        Vec::new(),
    );

    let small_link = link_of(&spec_seal(&small_spec().input()).envelope);
    let mut seq_ok = opens_ok("phone-a", "toy");
    seq_ok.departed = Some(Head {
        sequence: 42,
        head: small_link.header_hash,
        known_links: Vec::new(),
    });
    let mut check = opens_ok("phone-a", "toy");
    check.check_recipients = vec!["phone-a", "phone-b", "phone-c"];
    g.valid(
        "ok_tamper_small",
        "the base of the header and policy vectors: toy to phone-a and phone-b, family (roster version 3), sequence 42, 20 content bytes; records CP0, END, FINAL",
        small_spec(),
        vec![opens_ok("phone-a", "toy"), opens_ok("phone-b", "toy"), seq_ok, check],
    );
    let h = g.vectors.last().unwrap().envelope.clone();
    g.valid(
        "ok_tamper_base",
        "the base of the record-layer vectors: as ok_tamper_small with 2143 content bytes and 2^11-byte segments (2 chunks); records CP0, D0 D1 CP1, END FINAL",
        base_spec(),
        Vec::new(),
    );
    let b = g.vectors.last().unwrap().envelope.clone();

    // --- header fields (tampered copies of ok_tamper_small) ----------------------------------
    let t = |g: &mut Gen, n: &str, d: &str, e: Vec<u8>, err: &str| g.tampered(n, d, e, err, err);
    t(
        &mut g,
        "header_bad_magic",
        "first byte `T`",
        set(&h, 0, b"T"),
        "BadMagic",
    );
    t(
        &mut g,
        "header_version_4",
        "version byte 4",
        set(&h, OFF_VERSION, &[4]),
        "UnsupportedVersion",
    );
    t(
        &mut g,
        "header_version_1",
        "version byte 1 (v1 is retired)",
        set(&h, OFF_VERSION, &[1]),
        "UnsupportedVersion",
    );
    t(
        &mut g,
        "header_version_2",
        "version byte 2 (v2, without the sender chain, is retired)",
        set(&h, OFF_VERSION, &[2]),
        "UnsupportedVersion",
    );
    t(
        &mut g,
        "header_suite_2",
        "suite 0x0002",
        set(&h, OFF_SUITE, &[0, 2]),
        "UnsupportedSuite",
    );
    t(
        &mut g,
        "header_flags_01",
        "flags 0x01",
        set(&h, OFF_FLAGS, &[1]),
        "ReservedFlags",
    );
    t(
        &mut g,
        "header_flags_80",
        "flags 0x80",
        set(&h, OFF_FLAGS, &[0x80]),
        "ReservedFlags",
    );
    t(
        &mut g,
        "header_chunk_9",
        "chunk_size_log2 9",
        set(&h, OFF_CHUNK, &[9]),
        "ChunkSize",
    );
    t(
        &mut g,
        "header_chunk_21",
        "chunk_size_log2 21",
        set(&h, OFF_CHUNK, &[21]),
        "ChunkSize",
    );
    t(
        &mut g,
        "header_segment_below_chunk",
        "segment_size_log2 9, below chunk_size_log2 10",
        set(&h, OFF_SEGMENT, &[9]),
        "SegmentSize",
    );
    t(
        &mut g,
        "header_segment_below_chunk_13",
        "chunk_size_log2 13 with segment_size_log2 12",
        set(&h, OFF_CHUNK, &[13]),
        "SegmentSize",
    );
    t(
        &mut g,
        "header_segment_25",
        "segment_size_log2 25",
        set(&h, OFF_SEGMENT, &[25]),
        "SegmentSize",
    );
    t(
        &mut g,
        "header_no_recipients",
        "recipient count 0",
        set(&h, OFF_COUNT, &[0, 0]),
        "NoRecipients",
    );
    t(
        &mut g,
        "header_65_recipients",
        "recipient count 65",
        set(&h, OFF_COUNT, &[0, 65]),
        "TooManyRecipients",
    );
    t(
        &mut g,
        "header_recipients_ffff",
        "recipient count 65535",
        set(&h, OFF_COUNT, &[0xff, 0xff]),
        "TooManyRecipients",
    );
    t(
        &mut g,
        "header_roster_without_family",
        "family id all zero with roster version 3",
        set(&h, OFF_FAMILY, &[0; 16]),
        "RosterVersionWithoutFamily",
    );
    let s0 = h[FIXED_LEN..FIXED_LEN + STANZA_LEN].to_vec();
    t(
        &mut g,
        "header_duplicate_stanza",
        "stanza 1 replaced by a copy of stanza 0",
        set(&h, FIXED_LEN + STANZA_LEN, &s0),
        "DuplicateRecipient",
    );
    t(
        &mut g,
        "header_duplicate_key_id",
        "stanza 1's key id replaced by stanza 0's (its enc and wrapped key unchanged)",
        set(&h, FIXED_LEN + STANZA_LEN, &s0[..8]),
        "DuplicateRecipient",
    );
    let ed = OFF_SENDER + 2;
    let x = OFF_SENDER + 34;
    let mut neutral = [0u8; 32];
    neutral[0] = 1;
    t(
        &mut g,
        "sender_ed25519_neutral",
        "sender Ed25519 key = the encoding of the neutral point (small order)",
        set(&h, ed, &neutral),
        "Key(WeakEd25519Key)",
    );
    let mut order2 = [0xffu8; 32];
    order2[0] = 0xec;
    order2[31] = 0x7f;
    t(
        &mut g,
        "sender_ed25519_order_2",
        "sender Ed25519 key y = p - 1 (the point of order 2)",
        set(&h, ed, &order2),
        "Key(WeakEd25519Key)",
    );
    let mut noncanon = [0xffu8; 32];
    noncanon[0] = 0xf0;
    noncanon[31] = 0x7f;
    t(
        &mut g,
        "sender_ed25519_non_canonical_y",
        "sender Ed25519 key y = p + 3: decodes (as y = 3) but is not the canonical encoding",
        set(&h, ed, &noncanon),
        "Key(WeakEd25519Key)",
    );
    let mut neg_zero = neutral;
    neg_zero[31] = 0x80;
    t(
        &mut g,
        "sender_ed25519_negative_zero_x",
        "sender Ed25519 key y = 1 with the sign bit set (x = 0 has no negative)",
        set(&h, ed, &neg_zero),
        "Key(WeakEd25519Key)",
    );
    let mut hi = h[x..x + 32].to_vec();
    hi[31] |= 0x80;
    t(
        &mut g,
        "sender_x25519_bit_255",
        "sender X25519 key with bit 255 set",
        set(&h, x, &hi),
        "Key(NonCanonicalX25519Key)",
    );
    let mut p_plus_2 = [0xffu8; 32];
    p_plus_2[0] = 0xef;
    p_plus_2[31] = 0x7f;
    t(
        &mut g,
        "sender_x25519_u_ge_p",
        "sender X25519 key u = p + 2",
        set(&h, x, &p_plus_2),
        "Key(NonCanonicalX25519Key)",
    );
    t(
        &mut g,
        "sender_x25519_zero",
        "sender X25519 key u = 0 (low order)",
        set(&h, x, &[0; 32]),
        "Key(WeakX25519Key)",
    );
    let order8 =
        hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800").unwrap();
    t(
        &mut g,
        "sender_x25519_order_8",
        "sender X25519 key of order 8",
        set(&h, x, &order8),
        "Key(WeakX25519Key)",
    );
    t(
        &mut g,
        "sender_role_unknown",
        "sender identity role byte 4",
        set(&h, OFF_SENDER + 1, &[4]),
        "Key(UnknownRole)",
    );
    t(
        &mut g,
        "sender_identity_version_2",
        "sender identity version byte 2",
        set(&h, OFF_SENDER, &[2]),
        "Key(UnsupportedVersion)",
    );

    // --- checkpoint 0 -------------------------------------------------------------------------
    let hl = header_len(&h);
    let stranger = Ed25519KeyPair::from_seed_unchecked(&secrets("stranger").0).unwrap();
    let chain0 = chain_value(&[0; 32], 0, false, &sha256(&h[..hl]));
    let forged_cp0 = stranger.sign(&[CHECKPOINT_CONTEXT, &chain0].concat());
    g.fail("checkpoint0_signed_by_another_key", "ok_tamper_small with checkpoint 0 (over the unchanged header) signed by the stranger's key", set(&h, hl + 1, forged_cp0.as_ref()), vec![opens("phone-a", &["toy"], "Signature")], "Signature", Some(0));
    t(
        &mut g,
        "flip_commitment",
        "one bit of the key commitment flipped (checkpoint 0 no longer verifies)",
        flip(&h, OFF_COMMITMENT),
        "Signature",
    );
    t(
        &mut g,
        "flip_roster_version",
        "one bit of the roster version flipped",
        flip(&h, OFF_ROSTER + 7),
        "Signature",
    );
    t(
        &mut g,
        "flip_sequence",
        "one bit of the sequence flipped",
        flip(&h, OFF_SEQUENCE + 7),
        "Signature",
    );
    t(
        &mut g,
        "flip_previous",
        "one bit of the previous-envelope hash flipped",
        flip(&h, OFF_PREVIOUS + 31),
        "Signature",
    );
    t(
        &mut g,
        "flip_created",
        "one bit of the creation time flipped",
        flip(&h, OFF_CREATED + 7),
        "Signature",
    );
    t(
        &mut g,
        "flip_wrapped_key",
        "one bit of phone-a's wrapped key flipped",
        flip(&h, FIXED_LEN + 40),
        "Signature",
    );
    t(
        &mut g,
        "checkpoint0_final_type",
        "checkpoint 0's record type 0x11 instead of 0x10",
        set(&h, hl, &[REC_FINAL]),
        "Decrypt",
    );

    // --- forgeries built from the spec (T50) --------------------------------------------------
    let (k, n) = drawn(50);
    let mut outsider = base_spec().input();
    outsider.file_key = k;
    outsider.payload_nonce = n;
    outsider.recipients = vec![*public("phone-a").agreement_key().as_bytes()];
    outsider.content = content(2000, 50);
    outsider.forge.signer_seed = Some(secrets("stranger").0);
    g.fail(
        "outsider_names_the_toy",
        "built by an outsider (the stranger) who knows only phone-a's public key: a well-formed header naming the toy as sender, a stanza to phone-a, valid chunks, every checkpoint signed with the stranger's own key. Checkpoint 0 fails: not one content byte is released",
        spec_seal(&outsider).envelope,
        vec![opens("phone-a", &["toy"], "Signature")],
        "Signature",
        Some(0),
    );
    let bhl = header_len(&b);
    let base_input = base_spec().input();
    let (bseed, bx) = secrets("phone-b");
    let fk = recipient_file_key(&b, &bx, public("phone-b").agreement_key().as_bytes());
    let payload_key = expand(
        &extract(&fk, &base_input.payload_nonce),
        &[PAYLOAD_INFO, &sha256(&b[..bhl])],
    );
    let mut forger = SpecBody::new(&payload_key, 10, 11, &bseed, Forge::default());
    forger.out = b[..bhl + 1 + SIG_LEN].to_vec();
    forger.chain = chain_value(&[0; 32], 0, false, &sha256(&b[..bhl]));
    forger.index = 1;
    forger.seal_content(&base_input.prelude, &content(2143, 51), &[]);
    g.fail(
        "co_recipient_reencryption",
        "built by a co-recipient (phone-b): the toy's header and checkpoint 0 from ok_tamper_base, then new content under the real payload key (phone-b unwrapped the file key), checkpoints signed with phone-b's key. The chunks decrypt for phone-a, but checkpoint 1 fails: not one content byte is released",
        forger.out,
        vec![opens("phone-a", &["toy"], "Signature")],
        "Signature",
        Some(0),
    );

    // --- later checkpoints (tampered copies of ok_tamper_base) --------------------------------
    let recs = records(&b);
    let kinds: Vec<u8> = recs.iter().map(|r| r.0).collect();
    assert_eq!(
        kinds,
        [
            REC_CHECKPOINT,
            REC_CHUNK,
            REC_CHUNK,
            REC_CHECKPOINT,
            REC_LAST_CHUNK,
            REC_FINAL
        ]
    );
    let at = |i: usize| recs[i].1.start;
    let seg1 = (2 * 1023 - 13) as u64; // content bytes in segment 1 (the prelude is 13 bytes)
    let chain0 = chain_value(&[0; 32], 0, false, &sha256(&b[..bhl]));
    let chain1 = chain_value(&chain0, 1, false, &sha256(&b[at(1)..at(3)]));
    let chain2 = chain_value(&chain1, 2, true, &sha256(&b[at(4)..at(5)]));
    for (name, desc, record, chain, released) in [
        (
            "checkpoint1_signed_by_another_key",
            "the middle checkpoint (1) signed by the stranger over the right chain value: nothing is released",
            3,
            chain1,
            0,
        ),
        (
            "final_checkpoint_signed_by_another_key",
            "the final checkpoint signed by the stranger over the right chain value: segment 1 is released, nothing after it",
            5,
            chain2,
            seg1,
        ),
    ] {
        let forged = stranger.sign(&[CHECKPOINT_CONTEXT, &chain].concat());
        g.fail(
            name,
            desc,
            set(&b, at(record) + 1, forged.as_ref()),
            vec![opens("phone-a", &["toy"], "Signature")],
            "Signature",
            Some(released),
        );
    }
    let tb = |g: &mut Gen, n: &str, d: &str, e: Vec<u8>, open: &str, server: &str| {
        g.tampered(n, d, e, open, server)
    };
    tb(
        &mut g,
        "flip_checkpoint1",
        "one bit of checkpoint 1's signature flipped",
        flip(&b, at(3) + 10),
        "Signature",
        "Signature",
    );
    tb(
        &mut g,
        "flip_final_checkpoint",
        "one bit of the final checkpoint's signature flipped",
        flip(&b, at(5) + 10),
        "Signature",
        "Signature",
    );
    tb(
        &mut g,
        "checkpoint1_final_type",
        "checkpoint 1's record type 0x11 (FINAL) instead of 0x10",
        set(&b, at(3), &[REC_FINAL]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "final_checkpoint_type",
        "the final checkpoint's record type 0x10 instead of 0x11",
        set(&b, at(5), &[REC_CHECKPOINT]),
        "Decrypt",
        "Decrypt",
    );

    // --- truncation at every boundary class ---------------------------------------------------
    for (name, desc, cut) in [
        ("truncated_empty", "no bytes at all", 0),
        (
            "truncated_fixed_header",
            "cut after 100 bytes, inside the fixed header",
            100,
        ),
        (
            "truncated_in_stanzas",
            "cut inside the second stanza",
            FIXED_LEN + STANZA_LEN + 10,
        ),
        (
            "truncated_after_header",
            "cut after the header, before checkpoint 0",
            bhl,
        ),
        (
            "truncated_in_checkpoint0",
            "cut inside checkpoint 0",
            bhl + 20,
        ),
        (
            "truncated_after_checkpoint0",
            "cut after checkpoint 0, before any chunk",
            at(1),
        ),
        (
            "truncated_in_chunk_length",
            "cut inside the first chunk's 3-byte length",
            at(1) + 2,
        ),
        (
            "truncated_in_chunk",
            "cut inside the first chunk's ciphertext",
            at(1) + 500,
        ),
        ("truncated_between_chunks", "cut between D0 and D1", at(2)),
        (
            "truncated_before_checkpoint1",
            "cut after the segment's chunks, before checkpoint 1",
            at(3),
        ),
        (
            "truncated_in_checkpoint1",
            "cut inside checkpoint 1",
            at(3) + 40,
        ),
        (
            "truncated_after_checkpoint1",
            "cut after checkpoint 1: segment 1 is released",
            at(4),
        ),
        (
            "truncated_in_last_chunk",
            "cut inside the last chunk",
            at(4) + 50,
        ),
        (
            "truncated_before_final",
            "cut after the last chunk, before the final checkpoint",
            at(5),
        ),
        (
            "truncated_last_byte",
            "the final checkpoint's last byte missing",
            b.len() - 1,
        ),
    ] {
        tb(
            &mut g,
            name,
            desc,
            b[..cut].to_vec(),
            "Truncated",
            "Truncated",
        );
    }

    // --- record layer -------------------------------------------------------------------------
    tb(
        &mut g,
        "chunks_swapped",
        "D0 and D1 swapped",
        rearrange(&b, &[0, 2, 1, 3, 4, 5]),
        "Decrypt",
        "Signature",
    );
    tb(
        &mut g,
        "chunk_duplicated",
        "D0 repeated: D0 D0 D1 CP1 …",
        rearrange(&b, &[0, 1, 1, 2, 3, 4, 5]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "chunk_duplicated_in_place",
        "D1 replaced by D0: D0 D0 CP1 …",
        rearrange(&b, &[0, 1, 1, 3, 4, 5]),
        "Decrypt",
        "Signature",
    );
    tb(
        &mut g,
        "chunk_dropped",
        "D1 dropped: D0 CP1 …",
        rearrange(&b, &[0, 1, 3, 4, 5]),
        "Signature",
        "Signature",
    );
    tb(
        &mut g,
        "segment_dropped",
        "segment 1 dropped with its checkpoint: CP0 END FINAL",
        rearrange(&b, &[0, 4, 5]),
        "Decrypt",
        "Signature",
    );
    tb(
        &mut g,
        "last_segment_dropped",
        "END and FINAL dropped: the stream ends at CP1",
        rearrange(&b, &[0, 1, 2, 3]),
        "Truncated",
        "Truncated",
    );
    tb(
        &mut g,
        "last_chunk_moved",
        "END moved before checkpoint 1: CP0 D0 D1 END CP1 FINAL",
        rearrange(&b, &[0, 1, 2, 4, 3, 5]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "record_type_03",
        "D0's record type 0x03",
        set(&b, at(1), &[0x03]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "record_type_00",
        "D0's record type 0x00",
        set(&b, at(1), &[0x00]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "chunk_marked_last",
        "D0's record type 0x02 (last chunk) though chunks follow",
        set(&b, at(1), &[REC_LAST_CHUNK]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "last_chunk_marked_not_last",
        "the END chunk's record type 0x01",
        set(&b, at(4), &[REC_CHUNK]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "chunk_length_16",
        "D0's length 16 (a chunk carries at least 1 plaintext byte)",
        set(&b, at(1) + 1, &[0, 0, 16]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "chunk_length_0",
        "D0's length 0",
        set(&b, at(1) + 1, &[0, 0, 0]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "chunk_length_over",
        "D0's length 1041 (chunk size + 17)",
        set(&b, at(1) + 1, &[0, 4, 17]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "chunk_length_short",
        "D0's length 1039 (one byte less than written)",
        set(&b, at(1) + 1, &[0, 4, 15]),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "flip_chunk_ciphertext",
        "one bit of D1's ciphertext flipped",
        flip(&b, at(2) + 100),
        "Decrypt",
        "Signature",
    );
    tb(
        &mut g,
        "flip_last_chunk_tag",
        "one bit of the END chunk's tag flipped: segment 1 is released",
        flip(&b, at(5) - 1),
        "Decrypt",
        "Signature",
    );
    tb(
        &mut g,
        "trailing_byte",
        "one byte after the final checkpoint",
        [&b[..], &[0]].concat(),
        "Decrypt",
        "Decrypt",
    );
    tb(
        &mut g,
        "trailing_chunk",
        "D0's record again after the final checkpoint",
        [&b[..], &b[recs[1].1.clone()]].concat(),
        "Decrypt",
        "Decrypt",
    );

    // --- forgeries by the sender itself (signed by the toy) -------------------------------------
    let signed_fail =
        |g: &mut Gen, name: &str, desc: &str, env: Vec<u8>, open: &str, server: &str| {
            g.fail(
                name,
                desc,
                env,
                vec![opens("phone-a", &["toy"], open)],
                server,
                Some(0),
            );
        };
    let mut too_many = base_spec().input();
    too_many.forge.no_auto_checkpoints = true;
    signed_fail(
        &mut g,
        "segment_too_many_chunks",
        "signed by the toy, but 3 chunks before the first checkpoint while a segment holds 2",
        spec_seal(&too_many).envelope,
        "Decrypt",
        "Decrypt",
    );
    let mut empty_cp = small_spec().input();
    empty_cp.checkpoint_after = vec![0, 0];
    empty_cp.forge.empty_checkpoints = true;
    signed_fail(
        &mut g,
        "checkpoint_without_chunk",
        "signed by the toy: a checkpoint right after another, with no chunk between",
        spec_seal(&empty_cp).envelope,
        "Decrypt",
        "Decrypt",
    );
    let mut bad_commit = small_spec().input();
    bad_commit.forge.commitment = Some(sha256(b"not the key commitment"));
    g.fail(
        "commitment_mismatch",
        "a header whose key commitment is not the one the file key derives, everything else correct and signed by the toy: only the commitment check catches it (the keyless verifier cannot)",
        spec_seal(&bad_commit).envelope,
        vec![opens("phone-a", &["toy"], "Decrypt"), opens("phone-b", &["toy"], "Decrypt")],
        "ok",
        Some(0),
    );
    let mut split = small_spec().input();
    split.forge.stanza_file_key = Some((1, drawn(77).0));
    let mut check_all = opens("phone-a", &["toy"], "Decrypt");
    check_all.check_recipients = vec!["phone-a", "phone-b"];
    g.fail(
        "split_key",
        "signed by the toy: phone-b's stanza wraps a different file key from phone-a's (the commitment is phone-a's). phone-b fails the commitment check; phone-a fails the re-encryption check over the family; phone-a without that check opens phone-a's payload (no recipient can open another payload); the keyless verifier cannot tell",
        spec_seal(&split).envelope,
        vec![opens("phone-b", &["toy"], "Decrypt"), check_all, opens("phone-a", &["toy"], "ok")],
        "ok",
        None,
    );

    // --- chunk plaintexts (signed by the toy) ------------------------------------------------
    let end = |body: &[u8]| [&[KIND_END, 0, 0][..], body, &[END_MARKER]].concat();
    for (name, desc, chunks) in [
        (
            "chunk_data_last",
            "one DATA chunk as the last chunk: no END",
            vec![(vec![KIND_DATA, 0, 0, b'a'], true)],
        ),
        (
            "chunk_end_without_marker",
            "END whose last non-zero byte is not 0x80",
            vec![(vec![KIND_END, 0, 0, b'a', 0], true)],
        ),
        (
            "chunk_end_all_zero",
            "END with an all-zero body",
            vec![(vec![KIND_END, 0, 0, 0], true)],
        ),
        (
            "chunk_pad_nonzero",
            "a PAD chunk with a non-zero byte",
            vec![(end(b"a"), false), (vec![KIND_PAD, 0, 1], true)],
        ),
        (
            "chunk_second_end",
            "two END chunks",
            vec![(end(b"a"), false), (vec![KIND_END, END_MARKER], true)],
        ),
        (
            "chunk_pad_before_end",
            "PAD before END",
            vec![(vec![KIND_PAD, 0], false), (end(b"a"), true)],
        ),
        (
            "chunk_data_after_end",
            "DATA after END",
            vec![
                (end(b"a"), false),
                (vec![KIND_DATA, b'x'], false),
                (vec![KIND_PAD, 0], true),
            ],
        ),
        (
            "chunk_unknown_kind",
            "a chunk of kind 0x03",
            vec![(vec![0x03, 0, 0], false), (end(b"a"), true)],
        ),
        (
            "chunk_prelude_unfinished",
            "the content stream ends inside the prelude (length 5, 1 byte given)",
            vec![(vec![KIND_END, 0, 5, 1, END_MARKER], true)],
        ),
    ] {
        let mut i = small_spec().input();
        i.forge.raw_chunks = Some(chunks);
        signed_fail(&mut g, name, desc, spec_seal(&i).envelope, "Decrypt", "ok");
    }

    // --- trust policies -----------------------------------------------------------------------
    g.fail(
        "untrusted_sender",
        "phone-a trusts only other-toy",
        h.clone(),
        vec![opens("phone-a", &["other-toy"], "UntrustedSender")],
        "ok",
        Some(0),
    );
    let mut removed = opens("phone-a", &["toy"], "UntrustedSender");
    removed.departed = Some(Head {
        sequence: 41,
        head: small_link.previous,
        known_links: Vec::new(),
    });
    g.fail(
        "sender_removed_before_sequence",
        "the roster removed the toy with chain head = this envelope's previous (sequence 41); \
         this envelope is sequence 42, after the head",
        h.clone(),
        vec![removed],
        "ok",
        Some(0),
    );
    sender_chain_vectors(&mut g);
    let mut replay = opens("phone-a", &["toy"], "UntrustedSender");
    replay.seen_sequences = vec![42];
    g.fail(
        "sequence_replayed",
        "phone-a has already opened the toy's sequence 42: a replay",
        h.clone(),
        vec![replay],
        "ok",
        Some(0),
    );
    g.fail(
        "not_a_recipient",
        "phone-c opens an envelope with no stanza for it",
        h.clone(),
        vec![opens("phone-c", &["toy"], "NotARecipient")],
        "ok",
        Some(0),
    );

    // --- prelude (signed by the toy) ----------------------------------------------------------
    for (name, desc, prelude) in [
        (
            "prelude_reserved_tag_0",
            "prelude entry with the reserved tag 0x00",
            vec![0, 3, 0, 1, 0xaa],
        ),
        (
            "prelude_empty_text",
            "content type of length 0",
            vec![0, 2, 1, 0],
        ),
        (
            "prelude_tags_descending",
            "codec before content type",
            vec![0, 6, 2, 1, b'x', 1, 1, b'y'],
        ),
        (
            "prelude_tag_repeated",
            "content type twice",
            vec![0, 6, 1, 1, b'x', 1, 1, b'y'],
        ),
        (
            "prelude_bad_utf8",
            "content type 0xff",
            vec![0, 3, 1, 1, 0xff],
        ),
        (
            "prelude_text_65_bytes",
            "content type of 65 bytes",
            [&[0u8, 67, 1, 65][..], &[b'a'; 65]].concat(),
        ),
        (
            "prelude_duration_3_bytes",
            "duration of 3 bytes",
            vec![0, 5, 3, 3, 0, 0, 1],
        ),
        (
            "prelude_dangling_byte",
            "one byte after the last entry",
            vec![0, 1, 9],
        ),
        (
            "prelude_too_long",
            "declared prelude length 1025",
            [&[4u8, 1][..], &[0x7f, 0xff], &[0; 0x400 - 1]].concat(),
        ),
    ] {
        let mut i = small_spec().input();
        i.prelude = prelude;
        signed_fail(&mut g, name, desc, spec_seal(&i).envelope, "Decrypt", "ok");
    }
    g.vectors
}

// =============================================================================================
// Rendering.

#[derive(serde::Serialize)]
struct IdentityJson {
    name: &'static str,
    role: &'static str,
    public_key: String,
    identity_hex: String,
    secret_key: String,
    ed25519_seed_hex: String,
    x25519_secret_hex: String,
}

#[derive(serde::Serialize)]
struct VectorJson {
    name: String,
    description: String,
    sender: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seal: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    intermediates: Option<Value>,
    opens: Vec<Value>,
    server_verify: Value,
    envelope_hex: String,
}

#[derive(serde::Serialize)]
struct FileJson {
    comment: &'static str,
    format: &'static str,
    generator: &'static str,
    identities: Vec<IdentityJson>,
    vectors: Vec<VectorJson>,
}

fn render(vectors: &[Vector]) -> String {
    let doc = FileJson {
        comment: "toyseal envelope v3 test vectors (docs/spec/envelope.md §16). Every key in this file, public and secret, is a SYNTHETIC TEST KEY derived from a fixed seed: never use one for anything real. Hex is lower case. `identities` is the cast every vector names. A vector with `seal` is valid: `seal` holds every input and drawn value (file key, payload nonce, sequence, created, sizes, family, metadata, prelude, content, and the content offsets after which the sender called checkpoint), `intermediates` every derived value; re-sealing from them must give `envelope_hex` byte for byte. A vector without `seal` must fail for at least one opener or for the keyless verifier. Each entry of `opens` is one opener (`opener` decrypts, admitting senders in `trust.senders`, never a sequence in `trust.seen_sequences`, and, if `trust.departed` is set, only an envelope on the departed sender's chain: its header hash is `chain_head_hex` at sequence `last_sequence`, or it is reached from that head through `previous` links among `known_links` (docs/spec/envelope.md §11.3); if `check_recipients` is non-empty it runs the re-encryption check over those identities): `expected.released` is how many content bytes a streaming opener releases before it finishes or fails. `server_verify` is what the keyless verifier returns. Error names are those of docs/spec/envelope.md §12; `Key(x)` names the key rule that failed.",
        format: "toyseal envelope v3, suite 0x0001",
        generator: "crates/toyseal-envelope/tests/vectors.rs (TOYSEAL_REGENERATE_VECTORS=1 rewrites this file)",
        identities: CAST
            .iter()
            .map(|&(n, _, _)| {
                let id = identity(n);
                let (seed, x) = secrets(n);
                IdentityJson {
                    name: n,
                    role: id.role().as_str(),
                    public_key: id.public().to_string(),
                    identity_hex: hx(&id.public().to_bytes()),
                    secret_key: id.export_secret_key_text().unwrap().to_string(),
                    ed25519_seed_hex: hx(&seed),
                    x25519_secret_hex: hx(&x),
                }
            })
            .collect(),
        vectors: vectors
            .iter()
            .map(|v| VectorJson {
                name: v.name.clone(),
                description: v.description.clone(),
                sender: v.sender,
                seal: v.seal.clone(),
                intermediates: v.intermediates.clone(),
                opens: v.opens.clone(),
                server_verify: v.server_verify.clone(),
                envelope_hex: hx(&v.envelope),
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap();
    s.push('\n');
    s
}

// =============================================================================================
// The checker: reads only the file.

struct FileIdentity {
    name: String,
    device: DeviceIdentity,
    seed: [u8; 32],
    identity: [u8; 66],
}

fn identities(doc: &Value) -> Vec<FileIdentity> {
    doc["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let device =
                DeviceIdentity::from_secret_key_text(i["secret_key"].as_str().unwrap()).unwrap();
            let identity: [u8; 66] = unhex(&i["identity_hex"]);
            assert_eq!(device.public().to_bytes(), identity);
            assert_eq!(
                device.public().to_string(),
                i["public_key"].as_str().unwrap()
            );
            assert_eq!(device.role().as_str(), i["role"].as_str().unwrap());
            // The raw secrets are the ones the key text carries.
            let seed: [u8; 32] = unhex(&i["ed25519_seed_hex"]);
            let signer = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
            assert_eq!(signer.public_key().as_ref(), &identity[2..34]);
            let x: [u8; 32] = unhex(&i["x25519_secret_hex"]);
            let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&x).unwrap();
            assert_eq!(Kem::sk_to_pk(&sk).to_bytes().as_slice(), &identity[34..66]);
            FileIdentity {
                name: i["name"].as_str().unwrap().into(),
                device,
                seed,
                identity,
            }
        })
        .collect()
}

fn find<'a>(ids: &'a [FileIdentity], n: &Value) -> &'a FileIdentity {
    ids.iter().find(|i| i.name == n.as_str().unwrap()).unwrap()
}

/// Re-seals a valid vector from the recorded values alone, with the spec sealer and (when it
/// can express the prelude) the library; both must give the envelope and every intermediate.
fn check_reseal(name: &str, v: &Value, ids: &[FileIdentity], env: &[u8]) {
    let s = &v["seal"];
    let sender = find(ids, &v["sender"]);
    let recipients: Vec<&FileIdentity> = s["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| find(ids, r))
        .collect();
    let input = SealInput {
        sender_seed: sender.seed,
        sender_identity: sender.identity,
        recipients: recipients
            .iter()
            .map(|r| r.identity[34..66].try_into().unwrap())
            .collect(),
        file_key: unhex(&s["file_key_hex"]),
        payload_nonce: unhex(&s["payload_nonce_hex"]),
        sequence: s["sequence"].as_u64().unwrap(),
        previous: unhex(&s["previous_hex"]),
        created: s["created"].as_u64().unwrap(),
        chunk_size_log2: s["chunk_size_log2"].as_u64().unwrap() as u8,
        segment_size_log2: s["segment_size_log2"].as_u64().unwrap() as u8,
        family: unhex(&s["family_hex"]),
        roster_version: s["roster_version"].as_u64().unwrap(),
        prelude: hex::decode(s["prelude_hex"].as_str().unwrap()).unwrap(),
        content: hex::decode(s["content_hex"].as_str().unwrap()).unwrap(),
        checkpoint_after: s["checkpoint_after"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_u64().unwrap() as usize)
            .collect(),
        forge: Forge::default(),
    };
    let sealed = spec_seal(&input);
    assert!(
        sealed.envelope == env,
        "{name}: the spec sealer does not reproduce the envelope"
    );
    let names: Vec<&str> = s["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        intermediates_json(&sealed, &names),
        v["intermediates"],
        "{name}: intermediates"
    );

    let m = &s["metadata"];
    let mut metadata = Metadata::default();
    if let Some(t) = m["content_type"].as_str() {
        metadata = metadata.with_content_type(t);
    }
    if let Some(t) = m["codec"].as_str() {
        metadata = metadata.with_codec(t);
    }
    if let Some(d) = m["duration_ms"].as_u64() {
        metadata = metadata.with_duration_ms(d as u32);
    }
    if !s["library_sealable"].as_bool().unwrap() {
        return;
    }
    assert_eq!(
        spec_prelude(
            metadata.content_type.as_deref(),
            metadata.codec.as_deref(),
            metadata.duration_ms
        ),
        input.prelude,
        "{name}: prelude"
    );
    let options = library_options(&input, metadata);
    let recipients: Vec<PublicIdentity> = recipients
        .iter()
        .map(|r| r.device.public().clone())
        .collect();
    let lib = library_seal(
        &sender.device,
        &recipients,
        &options,
        &input.file_key,
        &input.payload_nonce,
        &input.content,
        &input.checkpoint_after,
    );
    assert!(
        lib == env,
        "{name}: the library does not reproduce the envelope"
    );
}

/// A reader that hands out at most 64 bytes a call, like a slow download.
struct Pieces<'a>(&'a [u8]);

impl Read for Pieces<'_> {
    fn read(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        let n = dst.len().min(64).min(self.0.len());
        let (now, rest) = self.0.split_at(n);
        dst[..n].copy_from_slice(now);
        self.0 = rest;
        Ok(n)
    }
}

fn check_open(name: &str, o: &Value, ids: &[FileIdentity], env: &[u8]) {
    let me = &find(ids, &o["opener"]).device;
    let t = &o["trust"];
    let policy = Policy {
        senders: t["senders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| find(ids, s).device.public().clone())
            .collect(),
        departed: departed_from_json(&t["departed"]),
        seen_sequences: t["seen_sequences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap())
            .collect(),
    };
    let check: Vec<PublicIdentity> = o["check_recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| find(ids, s).device.public().clone())
        .collect();
    let expected = &o["expected"];
    let opener = o["opener"].as_str().unwrap();

    for piece in [1, 97, 1040] {
        let (content, r) = open_streaming(me, &policy, &check, env, piece);
        assert_eq!(
            &outcome_json(&content, &r),
            expected,
            "{name}: {opener}, Opener in {piece}-byte pieces"
        );
    }
    if !check.is_empty() {
        return; // open() and OpenReader do not run the re-encryption check
    }
    match open(me, &policy, env, OpenOptions::default()) {
        Ok((content, opened)) => assert_eq!(
            outcome_json(&content, &Ok(opened)),
            *expected,
            "{name}: {opener}, open"
        ),
        Err(e) => {
            assert_eq!(expected["result"], "error", "{name}: {opener}, open");
            assert_eq!(
                error_name(&e),
                expected["error"].as_str().unwrap(),
                "{name}: {opener}, open"
            );
        }
    }
    let mut reader = OpenReader::new(Pieces(env), me, &policy, OpenOptions::default());
    let mut content = Vec::new();
    let mut buf = [0u8; 100];
    let result = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(reader.opened().unwrap().clone()),
            Ok(n) => content.extend_from_slice(&buf[..n]),
            Err(e) => {
                let inner = e.into_inner().unwrap().downcast::<Error>().unwrap();
                break Err(*inner);
            }
        }
    };
    // OpenReader may release less than the streaming opener: content that a checkpoint proved
    // inside the same read that then failed (e.g. data after FINAL) is discarded with the error.
    let mut got = outcome_json(&content, &result);
    let released = got["released"].as_u64().unwrap();
    assert!(
        released <= expected["released"].as_u64().unwrap(),
        "{name}: {opener}, OpenReader released more than the file states"
    );
    got["released"] = expected["released"].clone();
    assert_eq!(&got, expected, "{name}: {opener}, OpenReader");
}

#[test]
fn committed_vectors_are_reproduced_by_the_generator() {
    let rendered = render(&generate());
    if std::env::var_os("TOYSEAL_REGENERATE_VECTORS").is_some_and(|v| v == "1") {
        std::fs::write(VECTORS_PATH, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(VECTORS_PATH).unwrap();
    assert!(
        committed == rendered,
        "docs/spec/vectors/envelope.json differs from what the generator produces; if the format \
         change is deliberate, rerun with TOYSEAL_REGENERATE_VECTORS=1"
    );
}

#[test]
fn committed_vectors_reseal_and_open_as_stated() {
    let committed = std::fs::read_to_string(VECTORS_PATH).unwrap();
    let doc: Value = serde_json::from_str(&committed).unwrap();
    let ids = identities(&doc);
    assert_eq!(ids.len(), CAST.len());
    let mut names = BTreeSet::new();
    let (mut valid, mut must_fail, mut opens) = (0, 0, 0);
    for v in doc["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        assert!(names.insert(name.to_string()), "duplicate name {name}");
        let env = hex::decode(v["envelope_hex"].as_str().unwrap()).unwrap();
        for o in v["opens"].as_array().unwrap() {
            check_open(name, o, &ids, &env);
            opens += 1;
        }
        assert_eq!(verify_json(&env), v["server_verify"], "{name}: verify");
        let all_ok = v["opens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["expected"]["result"] == "ok")
            && v["server_verify"]["result"] == "ok";
        if v.get("seal").is_some() {
            assert!(all_ok, "{name}: a valid vector must open everywhere");
            check_reseal(name, v, &ids, &env);
            valid += 1;
        } else {
            assert!(!all_ok, "{name}: a must-fail vector must fail somewhere");
            must_fail += 1;
        }
    }
    assert_eq!((valid, must_fail), (VALID_COUNT, MUST_FAIL_COUNT));
    assert_eq!(opens, OPEN_COUNT);
}

/// T50 and T49, read from the committed file: the forgeries built from the spec release not one
/// content byte to any opener, and the split-key envelope is refused by the recipient with the
/// uncommitted key and by a recipient that runs the re-encryption check over the family.
#[test]
fn forgeries_release_nothing_and_split_keys_are_refused() {
    let committed = std::fs::read_to_string(VECTORS_PATH).unwrap();
    let doc: Value = serde_json::from_str(&committed).unwrap();
    let ids = identities(&doc);
    let vector = |name: &str| -> &Value {
        doc["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
    };
    for name in [
        "outsider_names_the_toy",
        "co_recipient_reencryption",
        "checkpoint0_signed_by_another_key",
    ] {
        let v = vector(name);
        let env = hex::decode(v["envelope_hex"].as_str().unwrap()).unwrap();
        let me = &find(&ids, &json!("phone-a")).device;
        let toy = find(&ids, &json!("toy")).device.public().clone();
        let policy = Policy {
            senders: vec![toy],
            departed: None,
            seen_sequences: Vec::new(),
        };
        for piece in [1, 64, 1040, env.len()] {
            let (released, r) = open_streaming(me, &policy, &[], &env, piece);
            assert_eq!(released.len(), 0, "{name}: {piece}-byte pieces");
            assert!(matches!(r, Err(Error::Signature)), "{name}");
        }
    }
    let v = vector("split_key");
    let env = hex::decode(v["envelope_hex"].as_str().unwrap()).unwrap();
    let toy = find(&ids, &json!("toy")).device.public().clone();
    let policy = Policy {
        senders: vec![toy],
        departed: None,
        seen_sequences: Vec::new(),
    };
    let a = &find(&ids, &json!("phone-a")).device;
    let b = &find(&ids, &json!("phone-b")).device;
    let family = [a.public().clone(), b.public().clone()];
    let (released, r) = open_streaming(b, &policy, &[], &env, 97);
    assert!(released.is_empty() && matches!(r, Err(Error::Decrypt)));
    let (released, r) = open_streaming(a, &policy, &family, &env, 97);
    assert!(released.is_empty() && matches!(r, Err(Error::Decrypt)));
    // The keyless verifier cannot tell (docs/spec/envelope.md §5.4).
    assert!(verify(&env, OpenOptions::default()).is_ok());
}

/// Beyond the committed vectors: the spec sealer and the library agree byte for byte on many
/// shapes (content lengths around chunk and segment boundaries, early checkpoints, metadata,
/// recipient counts), and every such envelope opens to its content.
#[test]
fn spec_sealer_matches_the_library_on_many_shapes() {
    let mut rng = ChaCha20Rng::from_seed([0x5e; 32]);
    let names = ["phone-a", "phone-b", "phone-c"];
    let (toy, phone_a) = (identity("toy"), identity("phone-a"));
    let trusted = [toy.public().clone()];
    let mut draw = |n: u32| -> usize {
        let mut b = [0u8; 4];
        rng.fill_bytes(&mut b);
        (u32::from_le_bytes(b) % n) as usize
    };
    for round in 0..100u32 {
        let chunk_log2 = 10 + draw(3) as u8;
        let c = 1usize << chunk_log2;
        let len = match draw(3) {
            0 => draw(3 * c as u32),
            1 => (draw(5) * (c - 1)).saturating_sub(draw(5)),
            _ => draw(40),
        };
        let mut s = spec(
            "toy",
            &names[..1 + draw(3)],
            (round % 100) as u8,
            content(len, round as u8),
        );
        s.chunk_log2 = chunk_log2;
        s.segment_log2 = chunk_log2 + draw(3) as u8;
        s.sequence = u64::from(round);
        if draw(2) == 1 {
            s.family = Some(draw(10) as u64);
            s.metadata = Metadata::default()
                .with_codec("opus")
                .with_duration_ms(round);
        }
        let mut marks: Vec<usize> = (0..draw(4)).map(|_| draw(len as u32 + 1)).collect();
        marks.sort_unstable();
        s.checkpoint_after = marks;
        let input = s.input();
        let sealed = spec_seal(&input);
        let lib = s.seal_with_library(&input);
        assert!(
            lib == sealed.envelope,
            "round {round}: library and spec sealer differ"
        );
        let (content, _) = open(&phone_a, &trusted, &lib, OpenOptions::default()).unwrap();
        assert_eq!(content, s.content, "round {round}");
    }
}
