//! The envelope header: layout, limits, parsing and encoding (docs/spec/envelope.md §Header).

use crate::Error;
use toyseal_core::{FamilyId, PublicIdentity};

/// The 7 magic bytes every envelope starts with.
pub const MAGIC: &[u8; 7] = b"toyseal";
/// The format version this crate reads and writes.
pub const VERSION: u8 = 1;
/// Suite 0x0001: HPKE base mode DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305
/// (RFC 9180) for the file key; HKDF-SHA256 (RFC 5869) and STREAM over ChaCha20-Poly1305
/// (RFC 8439) for the payload; Ed25519 (RFC 8032) over SHA-256 for the sender signature.
pub const SUITE: u16 = 0x0001;
/// Length of the fixed part of the header (everything before the recipient stanzas).
pub const FIXED_HEADER_LEN: usize = 120;
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
/// Largest possible header.
pub const MAX_HEADER_LEN: usize = FIXED_HEADER_LEN + MAX_RECIPIENTS * STANZA_LEN;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Length of the trailing Ed25519 signature.
pub const SIGNATURE_LEN: usize = toyseal_core::SIGNATURE_LEN;

/// One recipient's entry: which key it is for, and the file key wrapped to that key with HPKE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    /// First 8 bytes of `SHA-256("toyseal/v1/recipient-key-id" || recipient X25519 key)`.
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
    pub(crate) family: Option<FamilyId>,
    pub(crate) roster_version: u64,
    pub(crate) payload_nonce: [u8; 16],
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
    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> usize {
        1usize << self.chunk_size_log2
    }
    /// The recipient stanzas.
    pub fn stanzas(&self) -> &[Stanza] {
        &self.stanzas
    }
    /// Encoded length of this header.
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER_LEN + STANZA_LEN * self.stanzas.len()
    }

    /// The fixed 120-byte part; also the HPKE `aad` prefix of every stanza.
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
        if let Some(f) = self.family {
            out[12..28].copy_from_slice(f.as_bytes());
        }
        out[28..36].copy_from_slice(&self.roster_version.to_be_bytes());
        out[36..52].copy_from_slice(&self.payload_nonce);
        out[52..118].copy_from_slice(&self.sender.to_bytes());
        // Invariant: count <= MAX_RECIPIENTS (checked by every constructor), so it fits a u16.
        out[118..120].copy_from_slice(&(count as u16).to_be_bytes());
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
        let count = usize::from(u16::from_be_bytes([fixed[118], fixed[119]]));
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
        let family: [u8; 16] = fixed[12..28].try_into().map_err(|_| Error::Truncated)?;
        let family = (family != [0; 16]).then(|| FamilyId::from_bytes(family));
        let roster_version =
            u64::from_be_bytes(fixed[28..36].try_into().map_err(|_| Error::Truncated)?);
        let payload_nonce: [u8; 16] = fixed[36..52].try_into().map_err(|_| Error::Truncated)?;
        let sender = PublicIdentity::from_bytes(&fixed[52..118])?;
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
        let header = Header {
            chunk_size_log2: fixed[11],
            family,
            roster_version,
            payload_nonce,
            sender,
            stanzas,
        };
        Ok((header, len))
    }
}

/// The recipient key id of an X25519 public key.
pub(crate) fn key_id(x25519: &toyseal_core::X25519PublicKey) -> [u8; 8] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"toyseal/v1/recipient-key-id");
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
pub(crate) const PAYLOAD_INFO: &[u8] = b"toyseal/v1/payload";
/// Prefix of the message the sender signs; SHA-256 of header || chunks follows it.
pub(crate) const SIGNATURE_CONTEXT: &[u8] = b"toyseal/v1/envelope-signature\x00";

/// The message the sender signs, given the SHA-256 of everything before the signature.
pub(crate) fn signed_message(digest: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_CONTEXT.len() + digest.len());
    m.extend_from_slice(SIGNATURE_CONTEXT);
    m.extend_from_slice(digest);
    m
}
