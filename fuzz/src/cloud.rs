//! Helpers for the cloud and roster targets: the request text layout of
//! `signed_request_parse`, the registered key it verifies with, and the structured roster
//! chains of `roster_chain`.

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, PublicIdentity, Role, Signature};
use toyseal_roster::{RecoveryKey, SignedRoster};

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

/// Six synthetic devices the chains are built from: guardians, toys and a `member`.
pub static DEVICES: LazyLock<Vec<DeviceIdentity>> = LazyLock::new(|| {
    let mut rng = ChaCha20Rng::from_seed([0x52; 32]);
    [
        Role::Guardian,
        Role::Guardian,
        Role::Toy,
        Role::Toy,
        Role::Guardian,
        Role::Member,
    ]
    .into_iter()
    .map(|role| DeviceIdentity::generate(role, &mut rng))
    .collect()
});

/// The family's recovery key in fuzzed chains (fixed, so a listed key can sign).
pub static RECOVERY: LazyLock<RecoveryKey> = LazyLock::new(|| {
    RecoveryKey::generate(&mut ChaCha20Rng::from_seed([0x73; 32]))
        .expect("a recovery key from a fixed seed")
});

/// How a built version records the devices it removes (docs/spec/roster.md §3.5).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departures {
    /// Removed devices recorded with `last_sequence` (and [`chain_head`] of it), earlier records
    /// carried unchanged.
    Correct,
    /// Removed devices not recorded.
    OmitRemoved,
    /// Earlier records carried with their last sequence raised by one.
    RaiseCarried,
    /// Earlier records dropped (allowed).
    DropCarried,
}

/// One version of a fuzzed chain.
#[derive(Arbitrary, Debug)]
pub enum VersionSpec {
    /// A roster built from the fixed devices.
    Built {
        /// Members: bit `i` selects `DEVICES[i]` (none → device 0).
        members: u8,
        /// Signers: bit `i` makes `DEVICES[i]` sign (members or not).
        signers: u8,
        /// Whether the version lists [`RECOVERY`] (every valid version does: without it the
        /// version is refused, `NoRecoveryKey`).
        recovery: bool,
        /// Whether [`RECOVERY`] signs.
        recovery_signs: bool,
        /// How removals are recorded.
        departures: Departures,
        /// The last sequence recorded for devices removed now.
        last_sequence: u8,
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

/// The devices selected by `mask` (bit `i` = `DEVICES[i]`), in canonical order.
pub fn pick(mask: u8) -> Vec<&'static DeviceIdentity> {
    let mut v: Vec<&DeviceIdentity> = DEVICES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, d)| d)
        .collect();
    v.sort_by_key(|d| d.device_id());
    v
}

/// Builds the wire form of a format-3 roster by hand (docs/spec/roster.md §1–2), so versions,
/// previous hashes, departed records and signer sets can be anything.
#[allow(clippy::too_many_arguments)]
fn build(
    family: [u8; 16],
    version: u64,
    previous: [u8; 32],
    members: u8,
    recovery: bool,
    departed: &[(PublicIdentity, u64, [u8; 32])],
    signers: u8,
    recovery_signs: bool,
) -> Vec<u8> {
    let mut member_list = pick(members);
    if member_list.is_empty() {
        member_list.push(&DEVICES[0]);
    }
    let mut body = b"tsroster\x03".to_vec();
    body.extend_from_slice(&family);
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&previous);
    body.push(member_list.len() as u8);
    for m in &member_list {
        body.extend_from_slice(&m.public().to_bytes());
    }
    if recovery {
        body.push(1);
        body.extend_from_slice(RECOVERY.public().as_bytes());
    } else {
        body.push(0);
    }
    body.push(departed.len() as u8);
    for (d, seq, head) in departed {
        body.extend_from_slice(&d.to_bytes());
        body.extend_from_slice(&seq.to_be_bytes());
        body.extend_from_slice(head);
    }
    let digest = sha256(&[&body]);
    let mut message = b"toyseal/v2/roster-signature\x00".to_vec();
    message.extend_from_slice(&digest);
    let mut sigs: Vec<(DeviceId, Signature)> = pick(signers)
        .into_iter()
        .map(|s| (s.device_id(), s.sign(&message)))
        .collect();
    if recovery_signs && let Some(sig) = recovery_signature(&body, &message) {
        sigs.push((RECOVERY.public().id(), sig));
    }
    sigs.sort_by_key(|(id, _)| *id);
    let mut out = body;
    out.push(sigs.len() as u8);
    for (id, sig) in sigs {
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(sig.as_bytes());
    }
    out
}

/// [`RECOVERY`]'s signature over `body`, made through the public API (`cosign_recovery` on a
/// decoded copy carrying one device signature); `None` if the body does not decode.
fn recovery_signature(body: &[u8], message: &[u8]) -> Option<Signature> {
    let mut probe = body.to_vec();
    probe.push(1);
    probe.extend_from_slice(DEVICES[0].device_id().as_bytes());
    probe.extend_from_slice(DEVICES[0].sign(message).as_bytes());
    let mut signed = SignedRoster::decode(&probe).ok()?;
    signed.cosign_recovery(&RECOVERY);
    let encoded = signed.encode();
    let entries = encoded.get(body.len() + 1..)?;
    entries.chunks_exact(80).find_map(|e| {
        (e[..16] == RECOVERY.public().id().as_bytes()[..])
            .then(|| Signature::from_bytes(e[16..].try_into().expect("64 bytes")))
    })
}

/// The chain described by `input`: versions that do not decode are skipped.
pub fn build_chain(input: &ChainInput) -> Vec<SignedRoster> {
    let mut chain: Vec<SignedRoster> = Vec::new();
    for spec in input.versions.iter().take(8) {
        let bytes = match spec {
            VersionSpec::Built {
                members,
                signers,
                recovery,
                recovery_signs,
                departures,
                last_sequence,
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
                let departed = match chain.last() {
                    Some(prev) if version != 1 => {
                        departed_after(prev, *members, *departures, u64::from(*last_sequence))
                    }
                    _ => Vec::new(),
                };
                build(
                    family,
                    version,
                    previous,
                    *members,
                    *recovery,
                    &departed,
                    *signers,
                    *recovery_signs,
                )
            }
            VersionSpec::Raw(b) => b.clone(),
        };
        if let Ok(r) = SignedRoster::decode(&bytes) {
            chain.push(r);
        }
    }
    chain
}

/// The departed records of a version with `members` after `prev`, per `how`.
fn departed_after(
    prev: &SignedRoster,
    members: u8,
    how: Departures,
    last_sequence: u64,
) -> Vec<(PublicIdentity, u64, [u8; 32])> {
    let mut now: Vec<PublicIdentity> = pick(members).iter().map(|d| d.public().clone()).collect();
    if now.is_empty() {
        now.push(DEVICES[0].public().clone());
    }
    let is_member = |p: &PublicIdentity| now.iter().any(|m| m == p);
    let mut out: Vec<(PublicIdentity, u64, [u8; 32])> = Vec::new();
    if how != Departures::DropCarried {
        let bump = u64::from(how == Departures::RaiseCarried);
        out.extend(
            prev.proposal()
                .departed()
                .iter()
                .filter(|d| !is_member(d.identity()))
                .map(|d| {
                    (
                        d.identity().clone(),
                        d.last_sequence().saturating_add(bump),
                        *d.chain_head(),
                    )
                }),
        );
    }
    if how != Departures::OmitRemoved {
        out.extend(
            prev.proposal()
                .members()
                .iter()
                .filter(|m| !is_member(m))
                .map(|m| (m.clone(), last_sequence, chain_head(last_sequence))),
        );
    }
    out.sort_by_key(|(p, _, _)| p.device_id());
    out.dedup_by_key(|(p, _, _)| p.device_id());
    out
}

/// The chain head the fuzzed removals record with `last_sequence` (zero for none).
pub fn chain_head(last_sequence: u64) -> [u8; 32] {
    if last_sequence == 0 {
        [0; 32]
    } else {
        sha256(&[&last_sequence.to_be_bytes()])
    }
}

/// The public identities of [`DEVICES`].
pub fn device_publics() -> Vec<PublicIdentity> {
    DEVICES.iter().map(|d| d.public().clone()).collect()
}

/// The fuzzed chains' usual family.
pub fn family() -> FamilyId {
    FamilyId::from_bytes(FAMILY)
}
