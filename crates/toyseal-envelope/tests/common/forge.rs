//! An envelope builder written from docs/spec/envelope.md alone (not from the library's
//! internals), for the attacks in tests/threats.rs: it lets a test choose who signs the
//! checkpoints, who the header names as sender, and which file key each stanza wraps.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hpke::{
    Deserializable, Kem as _, OpModeS, Serializable, aead::ChaCha20Poly1305, kdf::HkdfSha256,
    kem::X25519HkdfSha256,
};
use rand_core::{TryCryptoRng, TryRng};
use ring::digest::{Context, SHA256, digest};
use ring::hkdf::{HKDF_SHA256, KeyType, Salt};
use toyseal_core::{DeviceIdentity, PublicIdentity};
use toyseal_envelope::stream::StreamKey;

pub const KEY_ID_CONTEXT: &[u8] = b"toyseal/v2/recipient-key-id";
pub const WRAP_INFO: &[u8] = b"toyseal/v2/file-key";
pub const PAYLOAD_INFO: &[u8] = b"toyseal/v2/payload";
pub const COMMITMENT_INFO: &[u8] = b"toyseal/v2/key-commitment";
pub const STANZA_IKM_INFO: &[u8] = b"toyseal/v2/stanza-ikm";
pub const CHAIN_CONTEXT: &[u8] = b"toyseal/v2/checkpoint-chain\x00";
pub const CHECKPOINT_CONTEXT: &[u8] = b"toyseal/v2/checkpoint\x00";
pub const FIXED_LEN: usize = 201;

struct Len(usize);
impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256(salt = nonce, ikm = file key) expanded with `info` to 32 bytes.
pub fn expand(file_key: &[u8; 16], nonce: &[u8; 16], info: &[&[u8]]) -> [u8; 32] {
    let prk = Salt::new(HKDF_SHA256, nonce).extract(file_key);
    let mut out = [0u8; 32];
    prk.expand(info, Len(32)).unwrap().fill(&mut out).unwrap();
    out
}

pub fn key_id(x25519: &[u8; 32]) -> [u8; 8] {
    let mut c = Context::new(&SHA256);
    c.update(KEY_ID_CONTEXT);
    c.update(x25519);
    c.finish().as_ref()[..8].try_into().unwrap()
}

pub fn chain(prev: &[u8; 32], index: u64, last: bool, d: &[u8]) -> [u8; 32] {
    let mut c = Context::new(&SHA256);
    c.update(CHAIN_CONTEXT);
    c.update(prev);
    c.update(&index.to_be_bytes());
    c.update(&[u8::from(last)]);
    c.update(d);
    c.finish().as_ref().try_into().unwrap()
}

struct Replay<'a>(&'a [u8]);
impl TryRng for Replay<'_> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!()
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!()
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let (now, rest) = self.0.split_at(dst.len());
        dst.copy_from_slice(now);
        self.0 = rest;
        Ok(())
    }
}
impl TryCryptoRng for Replay<'_> {}

/// What to build.
pub struct Forge<'a> {
    /// Signs every checkpoint.
    pub signer: &'a DeviceIdentity,
    /// Named in the header's sender field.
    pub named_sender: PublicIdentity,
    /// Each recipient and the file key its stanza wraps.
    pub stanzas: Vec<(PublicIdentity, [u8; 16])>,
    /// The file key the header commits to and the payload is encrypted under.
    pub file_key: [u8; 16],
    pub chunk_log2: u8,
    pub segment_log2: u8,
    pub sequence: u64,
    pub content: Vec<u8>,
}

impl Forge<'_> {
    pub fn build(&self) -> Vec<u8> {
        let nonce = [7u8; 16];
        let mut fixed = Vec::with_capacity(FIXED_LEN);
        fixed.extend_from_slice(b"toyseal");
        fixed.push(3);
        fixed.extend_from_slice(&1u16.to_be_bytes());
        fixed.push(0);
        fixed.push(self.chunk_log2);
        fixed.push(self.segment_log2);
        fixed.extend_from_slice(&[0; 16]); // no family
        fixed.extend_from_slice(&0u64.to_be_bytes());
        fixed.extend_from_slice(&self.sequence.to_be_bytes());
        fixed.extend_from_slice(&[0; 32]); // previous: the sender's first envelope
        fixed.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        fixed.extend_from_slice(&nonce);
        fixed.extend_from_slice(&expand(&self.file_key, &nonce, &[COMMITMENT_INFO]));
        fixed.extend_from_slice(&self.named_sender.to_bytes());
        fixed.extend_from_slice(&(self.stanzas.len() as u16).to_be_bytes());
        assert_eq!(fixed.len(), FIXED_LEN);
        let mut header = fixed.clone();
        for (r, k) in &self.stanzas {
            let x = r.agreement_key().as_bytes();
            let id = key_id(x);
            let ikm = expand(k, &nonce, &[STANZA_IKM_INFO, x]);
            let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(x).unwrap();
            let mut aad = fixed.clone();
            aad.extend_from_slice(&id);
            let (enc, ct) = hpke::single_shot_seal_with_rng::<
                ChaCha20Poly1305,
                HkdfSha256,
                X25519HkdfSha256,
            >(
                &OpModeS::Base, &pk, WRAP_INFO, k, &aad, &mut Replay(&ikm)
            )
            .unwrap();
            assert_eq!(
                enc.to_bytes().as_slice(),
                X25519HkdfSha256::derive_keypair(&ikm)
                    .1
                    .to_bytes()
                    .as_slice()
            );
            header.extend_from_slice(&id);
            header.extend_from_slice(&enc.to_bytes());
            header.extend_from_slice(&ct);
        }
        let header_hash = digest(&SHA256, &header);
        let mut out = header;
        let mut prev = chain(&[0; 32], 0, false, header_hash.as_ref());
        out.push(0x10);
        out.extend_from_slice(self.signer.sign(&msg(&prev)).as_bytes());

        let key = StreamKey::from_raw(&expand(
            &self.file_key,
            &nonce,
            &[PAYLOAD_INFO, header_hash.as_ref()],
        ));
        let c = 1usize << self.chunk_log2;
        let per_segment = 1usize << (self.segment_log2 - self.chunk_log2);
        let mut stream = vec![0u8, 0]; // empty prelude
        stream.extend_from_slice(&self.content);
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut rest = &stream[..];
        while rest.len() > c - 2 {
            let (body, r) = rest.split_at(c - 1);
            let mut pt = vec![0x00];
            pt.extend_from_slice(body);
            chunks.push(pt);
            rest = r;
        }
        let mut end = vec![0x01];
        end.extend_from_slice(rest);
        end.push(0x80);
        chunks.push(end);
        let n = chunks.len();
        let mut segment = Context::new(&SHA256);
        let mut in_segment = 0;
        let mut index = 1u64;
        for (i, mut pt) in chunks.into_iter().enumerate() {
            let last = i + 1 == n;
            let tag = key.seal_chunk(i as u64, last, &mut pt);
            pt.extend_from_slice(&tag);
            let start = out.len();
            out.push(if last { 0x02 } else { 0x01 });
            out.extend_from_slice(&(pt.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(&pt);
            segment.update(&out[start..]);
            in_segment += 1;
            if last || in_segment == per_segment {
                let d = std::mem::replace(&mut segment, Context::new(&SHA256)).finish();
                prev = chain(&prev, index, last, d.as_ref());
                index += 1;
                out.push(if last { 0x11 } else { 0x10 });
                out.extend_from_slice(self.signer.sign(&msg(&prev)).as_bytes());
                in_segment = 0;
            }
        }
        out
    }
}

pub fn msg(chain: &[u8; 32]) -> Vec<u8> {
    let mut m = CHECKPOINT_CONTEXT.to_vec();
    m.extend_from_slice(chain);
    m
}
