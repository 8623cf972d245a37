//! Shared helpers for the toyseal fuzz targets and the seed-corpus generator: a fixed synthetic
//! family (deterministic keys from a seeded ChaCha20 generator, never real ones), input
//! piecing, and byte-level mutations.

pub mod cloud;
pub mod pairing;

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use toyseal_core::{DeviceIdentity, PublicIdentity, Role};

/// A deterministic generator for synthetic keys and sealing randomness.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The fixed synthetic family every target uses: one toy (the sender), four phones
/// (recipients; `phones[0]` is "me" for the raw-bytes targets) and a stranger.
pub struct Family {
    /// The sender every opener trusts.
    pub toy: DeviceIdentity,
    /// Up to four recipients.
    pub phones: Vec<DeviceIdentity>,
    /// A device that is never a recipient and never trusted.
    pub stranger: DeviceIdentity,
    /// `[toy.public()]`: the trusted-sender list.
    pub trusted: Vec<PublicIdentity>,
}

impl Family {
    /// Public identities of the first `n` phones.
    pub fn recipients(&self, n: usize) -> Vec<PublicIdentity> {
        self.phones
            .iter()
            .take(n)
            .map(|p| p.public().clone())
            .collect()
    }
}

/// The family, built once per process (key generation is far slower than one fuzz iteration).
pub static FAMILY: LazyLock<Family> = LazyLock::new(|| {
    let mut r = rng(0x746f_7973_6561_6c00); // "toyseal\0"
    let toy = DeviceIdentity::generate(Role::Toy, &mut r);
    let phones = (0..4)
        .map(|_| DeviceIdentity::generate(Role::Guardian, &mut r))
        .collect();
    let stranger = DeviceIdentity::generate(Role::Toy, &mut r);
    let trusted = vec![toy.public().clone()];
    Family {
        toy,
        phones,
        stranger,
        trusted,
    }
});

/// Splits a raw `envelope_open` input into piece sizes and the envelope bytes.
///
/// Layout: `n (1 byte, low 4 bits used) || n control bytes || envelope`. Each control byte is
/// one piece size (see [`piece_len`]); `n == 0` means "push everything at once".
pub fn split_control(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(first & 0x0f).min(rest.len());
    let (ctrl, envelope) = rest.split_at(n);
    (ctrl.iter().map(|&b| piece_len(b)).collect(), envelope)
}

/// The inverse of [`split_control`] for the corpus generator.
pub fn join_control(ctrl: &[u8], envelope: &[u8]) -> Vec<u8> {
    let n = ctrl.len().min(15);
    let mut out = Vec::with_capacity(1 + n + envelope.len());
    out.push(n as u8);
    out.extend_from_slice(&ctrl[..n]);
    out.extend_from_slice(envelope);
    out
}

/// A control byte as a piece size: `0..=127` literally (0 is an empty push), `0x80 | k` as
/// `(k + 1) * 64` bytes (64..=8192), so both byte-by-byte and chunk-sized pieces are reachable.
pub fn piece_len(b: u8) -> usize {
    if b & 0x80 == 0 {
        usize::from(b)
    } else {
        (usize::from(b & 0x7f) + 1) * 64
    }
}

/// Cuts `data` into pieces whose sizes cycle through `sizes`; zero sizes give empty pieces.
/// With no sizes, or a whole cycle of zeros, the rest comes as one piece (so it always ends).
pub struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    i: usize,
    zero_run: usize,
}

impl<'a> Pieces<'a> {
    /// Pieces of `data` cut by `sizes`.
    pub fn new(data: &'a [u8], sizes: &'a [usize]) -> Self {
        Self {
            data,
            sizes,
            i: 0,
            zero_run: 0,
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.data.is_empty() {
            return None;
        }
        let n = if self.sizes.is_empty() || self.zero_run >= self.sizes.len() {
            self.data.len()
        } else {
            let n = self.sizes[self.i % self.sizes.len()].min(self.data.len());
            self.i += 1;
            if n == 0 {
                self.zero_run += 1;
            } else {
                self.zero_run = 0;
            }
            n
        };
        let (piece, rest) = self.data.split_at(n);
        self.data = rest;
        Some(piece)
    }
}

/// One edit of an envelope's bytes. Offsets and lengths are taken modulo the current length,
/// so every mutation applies to whatever is there.
#[derive(Arbitrary, Clone, Debug)]
pub enum Mutation {
    /// Flip bit `bit % 8` of byte `offset`.
    FlipBit {
        /// Byte offset.
        offset: u32,
        /// Bit index.
        bit: u8,
    },
    /// Keep only the first `len` bytes.
    Truncate {
        /// New length.
        len: u32,
    },
    /// Remove `len` bytes from `start`.
    DeleteRange {
        /// First byte removed.
        start: u32,
        /// How many.
        len: u16,
    },
    /// Insert a copy of `start..start + len` at `at` (e.g. a replayed chunk).
    DuplicateRange {
        /// Start of the copied range.
        start: u32,
        /// Its length.
        len: u16,
        /// Where the copy goes.
        at: u32,
    },
    /// Swap two non-overlapping ranges of equal length (e.g. reordered chunks).
    SwapRanges {
        /// Start of the first range.
        a: u32,
        /// Start of the second range.
        b: u32,
        /// Length of both.
        len: u16,
    },
    /// Append bytes at the end.
    Append(Vec<u8>),
}

fn modulo(x: u32, n: usize) -> usize {
    if n == 0 { 0 } else { x as usize % n }
}

impl Mutation {
    /// Applies the edit in place.
    pub fn apply(&self, v: &mut Vec<u8>) {
        match self {
            Mutation::FlipBit { offset, bit } => {
                if !v.is_empty() {
                    let i = modulo(*offset, v.len());
                    v[i] ^= 1 << (bit % 8);
                }
            }
            Mutation::Truncate { len } => v.truncate(modulo(*len, v.len() + 1)),
            Mutation::DeleteRange { start, len } => {
                let start = modulo(*start, v.len() + 1);
                let end = start.saturating_add(usize::from(*len)).min(v.len());
                v.drain(start..end);
            }
            Mutation::DuplicateRange { start, len, at } => {
                let start = modulo(*start, v.len() + 1);
                let end = start.saturating_add(usize::from(*len)).min(v.len());
                let copy = v[start..end].to_vec();
                let at = modulo(*at, v.len() + 1);
                v.splice(at..at, copy);
            }
            Mutation::SwapRanges { a, b, len } => {
                let n = v.len();
                let (mut a, mut b) = (modulo(*a, n + 1), modulo(*b, n + 1));
                if a > b {
                    std::mem::swap(&mut a, &mut b);
                }
                let len = usize::from(*len).min(b - a).min(n - b);
                if len > 0 {
                    let (left, right) = v.split_at_mut(b);
                    left[a..a + len].swap_with_slice(&mut right[..len]);
                }
            }
            Mutation::Append(bytes) => v.extend_from_slice(bytes),
        }
    }
}

/// Clips a string to at most `max` bytes on a character boundary (metadata text limit).
pub fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
