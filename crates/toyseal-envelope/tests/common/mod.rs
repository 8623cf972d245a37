//! Shared test helpers: deterministic synthetic devices.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod forge;

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use toyseal_core::{DeviceIdentity, PublicIdentity, Role};

pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

pub struct Family {
    pub toy: DeviceIdentity,
    pub phones: Vec<DeviceIdentity>,
}

impl Family {
    pub fn new(phones: usize) -> Self {
        let mut r = rng(42);
        Self {
            toy: DeviceIdentity::generate(Role::Toy, &mut r),
            phones: (0..phones)
                .map(|_| DeviceIdentity::generate(Role::Guardian, &mut r))
                .collect(),
        }
    }
    pub fn recipients(&self) -> Vec<PublicIdentity> {
        self.phones.iter().map(|p| p.public().clone()).collect()
    }
    pub fn toy_public(&self) -> Vec<PublicIdentity> {
        vec![self.toy.public().clone()]
    }
}

/// A synthetic "recording": deterministic bytes with a marker phrase inside.
pub fn recording(len: usize) -> Vec<u8> {
    let marker = b"MARKER-bedtime-story-synthetic";
    let mut v: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    if len > marker.len() * 2 {
        v[len / 2..len / 2 + marker.len()].copy_from_slice(marker);
    }
    v
}

/// The byte ranges of an envelope's records after the header and checkpoint 0, read from the
/// spec's record layer: `(type, range)`.
pub fn records(env: &[u8]) -> (usize, Vec<(u8, std::ops::Range<usize>)>) {
    let header = toyseal_envelope::inspect(env).unwrap().encoded_len();
    let mut at = header + 65;
    let mut out = Vec::new();
    while at < env.len() {
        let kind = env[at];
        let len = match kind {
            0x01 | 0x02 => {
                4 + (usize::from(env[at + 1]) << 16
                    | usize::from(env[at + 2]) << 8
                    | usize::from(env[at + 3]))
            }
            0x10 | 0x11 => 65,
            other => panic!("record type {other:#x}"),
        };
        out.push((kind, at..at + len));
        at += len;
    }
    (header, out)
}
