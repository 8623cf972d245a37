//! The envelope header: layout, limits, parsing and encoding (docs/spec/envelope.md §Header).

use crate::Error;
use toyseal_core::{FamilyId, PublicIdentity};

/// The 7 magic bytes every envelope starts with.
pub const MAGIC: &[u8; 7] = b"toyseal";
/// The format version this crate reads and writes.
pub const VERSION: u8 = 3;
/// Suite 0x0001: HPKE base mode DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305
/// (RFC 9180) for the file key; HKDF-SHA256 (RFC 5869) and STREAM over ChaCha20-Poly1305
/// (RFC 8439) for the payload; Ed25519 (RFC 8032) over SHA-256 for the checkpoints.
pub const SUITE: u16 = 0x0001;
/// Length of the fixed part of the header (everything before the recipient stanzas).
pub const FIXED_HEADER_LEN: usize = 201;
/// Length of one recipient stanza: key id (8) || HPKE enc (32) || wrapped file key (32).
pub const STANZA_LEN: usize = 72;
/// Most recipients one envelope may have.
pub const MAX_RECIPIENTS: usize = 64;
/// Smallest allowed chunk size exponent (1 KiB chunks).
pub const MIN_CHUNK_SIZE_LOG2: u8 = 10;
/// Largest allowed chunk size exponent (1 MiB chunks).
pub const MAX_CHUNK_SIZE_LOG2: u8 = 20;
/// Default chunk size exponent (64 KiB chunks, as age).
pub const DEFAULT_CHUNK_SIZE_LOG2: u8 = 16;
/// Largest segment (the content between two checkpoints, what an opener buffers before it may
/// release it): `2^MAX_SEGMENT_LOG2` plaintext bytes, 16 MiB.
pub const MAX_SEGMENT_LOG2: u8 = 24;
/// Default segment exponent: 1 MiB between checkpoints (16 chunks of 64 KiB).
pub const DEFAULT_SEGMENT_LOG2: u8 = 20;
/// Largest possible header.
pub const MAX_HEADER_LEN: usize = FIXED_HEADER_LEN + MAX_RECIPIENTS * STANZA_LEN;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Length of an Ed25519 signature (one checkpoint's body).
pub const SIGNATURE_LEN: usize = toyseal_core::SIGNATURE_LEN;
/// Length of the key commitment in the header.
pub const COMMITMENT_LEN: usize = 32;

/// Record type: a chunk that is not the last one.
pub(crate) const RECORD_CHUNK: u8 = 0x01;
/// Record type: the last chunk (flag `0x01` in its STREAM nonce); a FINAL record follows.
pub(crate) const RECORD_LAST_CHUNK: u8 = 0x02;
/// Record type: a checkpoint signature over everything since the previous one.
pub(crate) const RECORD_CHECKPOINT: u8 = 0x10;
/// Record type: the final checkpoint; nothing may follow it.
pub(crate) const RECORD_FINAL: u8 = 0x11;
/// A chunk record's header: type (1) || ciphertext length (3, big-endian).
pub(crate) const CHUNK_RECORD_HEADER_LEN: usize = 4;
/// A checkpoint record: type (1) || Ed25519 signature (64).
pub(crate) const CHECKPOINT_RECORD_LEN: usize = 1 + SIGNATURE_LEN;

/// One recipient's entry: which key it is for, and the file key wrapped to that key with HPKE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    /// First 8 bytes of `SHA-256("toyseal/v2/recipient-key-id" || recipient X25519 key)`.
    pub key_id: [u8; 8],
    /// HPKE encapsulated key (the ephemeral X25519 public key).
    pub enc: [u8; 32],
    /// HPKE ciphertext of the 16-byte file key, with its tag.
    pub wrapped_key: [u8; 32],
}

/// A parsed envelope header. Everything here is public: the server and `toyseal inspect` read
/// it without any key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub(crate) chunk_size_log2: u8,
    pub(crate) segment_log2: u8,
    pub(crate) family: Option<FamilyId>,
    pub(crate) roster_version: u64,
    pub(crate) sequence: u64,
    pub(crate) previous: [u8; 32],
    pub(crate) created: u64,
    pub(crate) payload_nonce: [u8; 16],
    pub(crate) commitment: [u8; COMMITMENT_LEN],
    pub(crate) sender: PublicIdentity,
    pub(crate) stanzas: Vec<Stanza>,
}

impl Header {
    /// The sender named by the header (proved only once the signature is verified).
    pub fn sender(&self) -> &PublicIdentity {
        &self.sender
    }
    /// The family the envelope is addressed to, if any.
    pub fn family(&self) -> Option<FamilyId> {
        self.family
    }
    /// The roster version the recipients were taken from (0: none).
    pub fn roster_version(&self) -> u64 {
        self.roster_version
    }
    /// The sender's sequence number for this envelope (signed; a sender never repeats one).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
    /// The link hash ([`Header::link_hash`]) of the sender's previous envelope, all zero for
    /// its first (signed): the sender's chain (docs/spec/envelope.md §4.1, §11.2).
    pub fn previous(&self) -> &[u8; 32] {
        &self.previous
    }
    /// This envelope's own link hash: `SHA-256` of the whole encoded header, the `header_hash`
    /// of docs/spec/envelope.md §5.1. The sender's next envelope names it as `previous`, and a
    /// removal records the last one the family accepts as the departed device's chain head.
    pub fn link_hash(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &self.encode()).as_ref());
        out
    }
    /// The chain link an opener's sender policy decides on: sequence, previous, link hash.
    pub fn chain_link(&self) -> crate::ChainLink {
        crate::ChainLink {
            sequence: self.sequence,
            previous: self.previous,
            header_hash: self.link_hash(),
        }
    }
    /// When the sender sealed it, in Unix seconds, by the sender's clock (signed).
    pub fn created(&self) -> u64 {
        self.created
    }
    /// Plaintext bytes per chunk (the largest a chunk may hold).
    pub fn chunk_size(&self) -> usize {
        1usize << self.chunk_size_log2
    }
    /// The most plaintext bytes between two checkpoints: what an opener may have to buffer
    /// before it can release content.
    pub fn segment_size(&self) -> usize {
        1usize << self.segment_log2
    }
    /// The most chunks between two checkpoints.
    pub(crate) fn segment_chunks(&self) -> u64 {
        1u64 << (self.segment_log2 - self.chunk_size_log2)
    }
    /// The key commitment: every recipient checks that its file key derives it.
    pub fn key_commitment(&self) -> &[u8; COMMITMENT_LEN] {
        &self.commitment
    }
    /// The recipient stanzas.
    pub fn stanzas(&self) -> &[Stanza] {
        &self.stanzas
    }
    /// Encoded length of this header.
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER_LEN + STANZA_LEN * self.stanzas.len()
    }

    /// The fixed 201-byte part; also the HPKE `aad` prefix of every stanza.
    pub(crate) fn encode_fixed(&self) -> [u8; FIXED_HEADER_LEN] {
        self.encode_fixed_with_count(self.stanzas.len())
    }

    /// The fixed part for a header that will carry `count` stanzas (the sealer needs it before
    /// the stanzas exist, because each stanza's HPKE `aad` covers it).
    pub(crate) fn encode_fixed_with_count(&self, count: usize) -> [u8; FIXED_HEADER_LEN] {
        let mut out = [0u8; FIXED_HEADER_LEN];
        out[0..7].copy_from_slice(MAGIC);
        out[7] = VERSION;
        out[8..10].copy_from_slice(&SUITE.to_be_bytes());
        out[10] = 0; // flags
        out[11] = self.chunk_size_log2;
        out[12] = self.segment_log2;
        if let Some(f) = self.family {
            out[13..29].copy_from_slice(f.as_bytes());
        }
        out[29..37].copy_from_slice(&self.roster_version.to_be_bytes());
        out[37..45].copy_from_slice(&self.sequence.to_be_bytes());
        out[45..77].copy_from_slice(&self.previous);
        out[77..85].copy_from_slice(&self.created.to_be_bytes());
        out[85..101].copy_from_slice(&self.payload_nonce);
        out[101..133].copy_from_slice(&self.commitment);
        out[133..199].copy_from_slice(&self.sender.to_bytes());
        // Invariant: count <= MAX_RECIPIENTS (checked by every constructor), so it fits a u16.
        out[199..201].copy_from_slice(&(count as u16).to_be_bytes());
        out
    }

    /// The whole encoded header.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.encode_fixed());
        for s in &self.stanzas {
            out.extend_from_slice(&s.key_id);
            out.extend_from_slice(&s.enc);
            out.extend_from_slice(&s.wrapped_key);
        }
        out
    }

    /// Given at least the fixed part, returns the full header length it declares, validating
    /// everything the fixed part alone can tell.
    pub(crate) fn declared_len(fixed: &[u8]) -> Result<usize, Error> {
        let fixed: &[u8; FIXED_HEADER_LEN] = fixed
            .get(..FIXED_HEADER_LEN)
            .and_then(|f| f.try_into().ok())
            .ok_or(Error::Truncated)?;
        if &fixed[0..7] != MAGIC {
            return Err(Error::BadMagic);
        }
        if fixed[7] != VERSION {
            return Err(Error::UnsupportedVersion(fixed[7]));
        }
        let suite = u16::from_be_bytes([fixed[8], fixed[9]]);
        if suite != SUITE {
            return Err(Error::UnsupportedSuite(suite));
        }
        if fixed[10] != 0 {
            return Err(Error::ReservedFlags(fixed[10]));
        }
        if !(MIN_CHUNK_SIZE_LOG2..=MAX_CHUNK_SIZE_LOG2).contains(&fixed[11]) {
            return Err(Error::ChunkSize(fixed[11]));
        }
        if !(fixed[11]..=MAX_SEGMENT_LOG2).contains(&fixed[12]) {
            return Err(Error::SegmentSize(fixed[12]));
        }
        let count = usize::from(u16::from_be_bytes([fixed[199], fixed[200]]));
        if count == 0 {
            return Err(Error::NoRecipients);
        }
        if count > MAX_RECIPIENTS {
            return Err(Error::TooManyRecipients {
                count,
                max: MAX_RECIPIENTS,
            });
        }
        Ok(FIXED_HEADER_LEN + count * STANZA_LEN)
    }

    /// Parses a complete header from the start of `bytes`; returns it and its length.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), Error> {
        let len = Self::declared_len(bytes)?;
        let bytes = bytes.get(..len).ok_or(Error::Truncated)?;
        let (fixed, stanzas) = bytes.split_at(FIXED_HEADER_LEN);
        let u64_at = |at: usize| -> Result<u64, Error> {
            Ok(u64::from_be_bytes(
                fixed[at..at + 8].try_into().map_err(|_| Error::Truncated)?,
            ))
        };
        let family: [u8; 16] = fixed[13..29].try_into().map_err(|_| Error::Truncated)?;
        let family = (family != [0; 16]).then(|| FamilyId::from_bytes(family));
        let roster_version = u64_at(29)?;
        if family.is_none() && roster_version != 0 {
            return Err(Error::RosterVersionWithoutFamily);
        }
        let sequence = u64_at(37)?;
        let previous: [u8; 32] = fixed[45..77].try_into().map_err(|_| Error::Truncated)?;
        if sequence == 0 && previous != [0; 32] {
            return Err(Error::PreviousWithoutSequence);
        }
        let created = u64_at(77)?;
        let payload_nonce: [u8; 16] = fixed[85..101].try_into().map_err(|_| Error::Truncated)?;
        let commitment: [u8; COMMITMENT_LEN] =
            fixed[101..133].try_into().map_err(|_| Error::Truncated)?;
        let sender = PublicIdentity::from_bytes(&fixed[133..199])?;
        let stanzas = stanzas
            .chunks_exact(STANZA_LEN)
            .map(|s| {
                let (key_id, rest) = s.split_at(8);
                let (enc, wrapped_key) = rest.split_at(32);
                Ok(Stanza {
                    key_id: key_id.try_into().map_err(|_| Error::Truncated)?,
                    enc: enc.try_into().map_err(|_| Error::Truncated)?,
                    wrapped_key: wrapped_key.try_into().map_err(|_| Error::Truncated)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        for (i, s) in stanzas.iter().enumerate() {
            if stanzas[..i].iter().any(|o| o.key_id == s.key_id) {
                return Err(Error::DuplicateRecipient);
            }
        }
        let header = Header {
            chunk_size_log2: fixed[11],
            segment_log2: fixed[12],
            family,
            roster_version,
            sequence,
            previous,
            created,
            payload_nonce,
            commitment,
            sender,
            stanzas,
        };
        Ok((header, len))
    }
}

/// The recipient key id of an X25519 public key.
pub(crate) fn key_id(x25519: &toyseal_core::X25519PublicKey) -> [u8; 8] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"toyseal/v2/recipient-key-id");
    ctx.update(x25519.as_bytes());
    let d = ctx.finish();
    let mut id = [0u8; 8];
    id.copy_from_slice(&d.as_ref()[..8]);
    id
}

/// Chunk kind: a full chunk of content (never the final chunk).
pub(crate) const KIND_DATA: u8 = 0x00;
/// Chunk kind: the last content, then `0x80`, then zeros (ISO/IEC 7816-4 padding).
pub(crate) const KIND_END: u8 = 0x01;
/// Chunk kind: padding only (zeros), after the END chunk.
pub(crate) const KIND_PAD: u8 = 0x02;
/// The byte that ends content inside the END chunk.
pub(crate) const END_MARKER: u8 = 0x80;

/// HKDF `info` prefix for the payload key; SHA-256 of the whole header follows it.
pub(crate) const PAYLOAD_INFO: &[u8] = b"toyseal/v2/payload";
/// HKDF `info` of the key commitment.
pub(crate) const COMMITMENT_INFO: &[u8] = b"toyseal/v2/key-commitment";
/// HKDF `info` prefix of a stanza's HPKE `ikmE`; the recipient's X25519 key follows it.
pub(crate) const STANZA_IKM_INFO: &[u8] = b"toyseal/v2/stanza-ikm";
/// Domain separation of the checkpoint chain hash.
pub(crate) const CHAIN_CONTEXT: &[u8] = b"toyseal/v2/checkpoint-chain\x00";
/// Prefix of the message the sender signs at each checkpoint; the chain value follows it.
pub(crate) const CHECKPOINT_CONTEXT: &[u8] = b"toyseal/v2/checkpoint\x00";

/// The chain value of checkpoint `index` (docs/spec/envelope.md §3.6):
/// `SHA-256(CHAIN_CONTEXT || previous || index (8) || final (1) || digest)`, with `previous` 32
/// zero bytes for checkpoint 0.
pub(crate) fn chain_value(previous: &[u8; 32], index: u64, last: bool, digest: &[u8]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(CHAIN_CONTEXT);
    ctx.update(previous);
    ctx.update(&index.to_be_bytes());
    ctx.update(&[u8::from(last)]);
    ctx.update(digest);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The message the sender signs for a checkpoint with chain value `chain`.
pub(crate) fn checkpoint_message(chain: &[u8; 32]) -> [u8; 54] {
    let mut m = [0u8; 54];
    m[..CHECKPOINT_CONTEXT.len()].copy_from_slice(CHECKPOINT_CONTEXT);
    m[CHECKPOINT_CONTEXT.len()..].copy_from_slice(chain);
    m
}

const _: () = assert!(CHECKPOINT_CONTEXT.len() + 32 == 54);
