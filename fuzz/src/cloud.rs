//! Helpers for the cloud and roster targets: the request text layout of
//! `signed_request_parse`, the registered key it verifies with, and the structured roster
//! chains of `roster_chain`.

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_roster::SignedRoster;

/// The verifier's registered key: the vectors' `toy` (docs/spec/vectors/signed-requests.json,
/// seed `[0x71; 32]`), so the valid vectors used as seeds verify.
pub static REGISTERED: LazyLock<DeviceIdentity> =
    LazyLock::new(|| DeviceIdentity::generate(Role::Toy, &mut ChaCha20Rng::from_seed([0x71; 32])));

/// Default verifier clock: the vectors' `now`.
pub const NOW: u64 = 1_795_000_000;

/// A request as the `signed_request_parse` target reads it.
#[derive(Debug, Default)]
pub struct RequestText {
    /// Method.
    pub method: String,
    /// Authority.
    pub authority: String,
    /// Path.
    pub path: String,
    /// Query, `None` if absent.
    pub query: Option<String>,
    /// `Content-Digest`.
    pub content_digest: Option<String>,
    /// `Signature-Input`.
    pub signature_input: Option<String>,
    /// `Signature`.
    pub signature: Option<String>,
    /// Verifier clock.
    pub now: u64,
    /// Body.
    pub body: Vec<u8>,
}

/// Layout: eight `\n`-terminated lines — method, authority, path, query, content-digest,
/// signature-input, signature, now (decimal) — then the body (the rest). A line `-` is an
/// absent optional field; missing lines are empty; text is UTF-8 (lossy).
pub fn split_request(data: &[u8]) -> RequestText {
    let mut rest = data;
    let mut lines = Vec::with_capacity(8);
    for _ in 0..8 {
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                lines.push(String::from_utf8_lossy(&rest[..i]).into_owned());
                rest = &rest[i + 1..];
            }
            None => {
                lines.push(String::from_utf8_lossy(rest).into_owned());
                rest = &[];
            }
        }
    }
    let opt = |s: &String| (s != "-").then(|| s.clone());
    RequestText {
        method: lines[0].clone(),
        authority: lines[1].clone(),
        path: lines[2].clone(),
        query: opt(&lines[3]),
        content_digest: opt(&lines[4]),
        signature_input: opt(&lines[5]),
        signature: opt(&lines[6]),
        now: lines[7].parse().unwrap_or(NOW),
        body: rest.to_vec(),
    }
}

/// The inverse of [`split_request`], for the seed corpus.
pub fn join_request(r: &RequestText) -> Vec<u8> {
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_owned());
    let mut out = [
        r.method.clone(),
        r.authority.clone(),
        r.path.clone(),
        opt(&r.query),
        opt(&r.content_digest),
        opt(&r.signature_input),
        opt(&r.signature),
        r.now.to_string(),
    ]
    .join("\n")
    .into_bytes();
    out.push(b'\n');
    out.extend_from_slice(&r.body);
    out
}

/// Six synthetic devices the chains are built from: guardians and toys.
pub static DEVICES: LazyLock<Vec<DeviceIdentity>> = LazyLock::new(|| {
    let mut rng = ChaCha20Rng::from_seed([0x52; 32]);
    [
        Role::Guardian,
        Role::Guardian,
        Role::Toy,
        Role::Toy,
        Role::Guardian,
        Role::Toy,
    ]
    .into_iter()
    .map(|role| DeviceIdentity::generate(role, &mut rng))
    .collect()
});

/// One version of a fuzzed chain.
#[derive(Arbitrary, Debug)]
pub enum VersionSpec {
    /// A roster built from the fixed devices.
    Built {
        /// Members: bit `i` selects `DEVICES[i]` (none → device 0).
        members: u8,
        /// Signers: bit `i` makes `DEVICES[i]` sign (members or not).
        signers: u8,
        /// Added to the correct version number.
        version_delta: i8,
        /// Use a wrong previous hash.
        bad_previous: bool,
        /// Use another family id.
        other_family: bool,
    },
    /// Raw bytes, used if they decode.
    Raw(Vec<u8>),
}

/// A fuzzed chain and where to split it for `advance`.
#[derive(Arbitrary, Debug)]
pub struct ChainInput {
    /// The versions, oldest first (at most 8 are used).
    pub versions: Vec<VersionSpec>,
    /// Prefix length (modulo the chain length + 1) verified before advancing.
    pub split: u8,
}

const FAMILY: [u8; 16] = [0x11; 16];
const OTHER_FAMILY: [u8; 16] = [0x22; 16];

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Builds the wire form of a roster by hand (docs/spec/roster.md §1–2), so versions,
/// previous hashes and signer sets can be anything.
fn build(family: [u8; 16], version: u64, previous: [u8; 32], members: u8, signers: u8) -> Vec<u8> {
    let devices = &*DEVICES;
    let pick = |mask: u8| -> Vec<&DeviceIdentity> {
        let mut v: Vec<&DeviceIdentity> = devices
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, d)| d)
            .collect();
        v.sort_by_key(|d| d.device_id());
        v
    };
    let mut member_list = pick(members);
    if member_list.is_empty() {
        member_list.push(&devices[0]);
    }
    let mut body = b"tsroster\x01".to_vec();
    body.extend_from_slice(&family);
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&previous);
    body.push(member_list.len() as u8);
    for m in &member_list {
        body.extend_from_slice(&m.public().to_bytes());
    }
    let digest = sha256(&[&body]);
    let mut message = b"toyseal/v1/roster-signature\x00".to_vec();
    message.extend_from_slice(&digest);
    let signer_list = pick(signers);
    let mut out = body;
    out.push(signer_list.len() as u8);
    for s in signer_list {
        out.extend_from_slice(s.device_id().as_bytes());
        out.extend_from_slice(s.sign(&message).as_bytes());
    }
    out
}

/// The chain described by `input`: versions that do not decode are skipped.
pub fn build_chain(input: &ChainInput) -> Vec<SignedRoster> {
    let mut chain: Vec<SignedRoster> = Vec::new();
    for spec in input.versions.iter().take(8) {
        let bytes = match spec {
            VersionSpec::Built {
                members,
                signers,
                version_delta,
                bad_previous,
                other_family,
            } => {
                let version = (chain.len() as i64 + 1 + i64::from(*version_delta)).max(0) as u64;
                let previous = match chain.last() {
                    _ if version == 1 => [0; 32],
                    Some(_) if *bad_previous => [0xab; 32],
                    Some(prev) => prev.hash(),
                    None => [0xcd; 32],
                };
                let family = if *other_family { OTHER_FAMILY } else { FAMILY };
                build(family, version, previous, *members, *signers)
            }
            VersionSpec::Raw(b) => b.clone(),
        };
        if let Ok(r) = SignedRoster::decode(&bytes) {
            chain.push(r);
        }
    }
    chain
}

/// The public identities of [`DEVICES`].
pub fn device_publics() -> Vec<PublicIdentity> {
    DEVICES.iter().map(|d| d.public().clone()).collect()
}

/// The fuzzed chains' usual family.
pub fn family() -> FamilyId {
    FamilyId::from_bytes(FAMILY)
}
