//! Roster vectors (docs/spec/vectors/roster.json), checked both ways: regenerated from fixed
//! seeds and compared byte for byte, then every case decoded and verified from the file alone
//! with the expected outcome. `TOYSEAL_REGENERATE_VECTORS=1` rewrites the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_roster::*;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Device {
    name: String,
    role: String,
    public_key: String,
    device_id: String,
    secret_key: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Case {
    name: String,
    description: String,
    /// Hex rosters: the verified chain before the candidate (may be empty).
    chain: Vec<String>,
    /// Hex roster to check against the chain's last version (or as version 1).
    candidate: String,
    /// Hash of the candidate body (hex), when it decodes.
    candidate_hash: Option<String>,
    /// "ok" or the error name.
    expect: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct File {
    comment: String,
    devices: Vec<Device>,
    cases: Vec<Case>,
}

fn err_name(e: &Error) -> &'static str {
    match e {
        Error::Malformed(_) => "Malformed",
        Error::UnsupportedFormat(_) => "UnsupportedFormat",
        Error::MemberCount { .. } => "MemberCount",
        Error::DuplicateMember => "DuplicateMember",
        Error::NotCanonical => "NotCanonical",
        Error::NoGuardian => "NoGuardian",
        Error::Signature => "Signature",
        Error::Unauthorized(_) => "Unauthorized",
        Error::WrongFamily => "WrongFamily",
        Error::NotNextVersion { .. } => "NotNextVersion",
        Error::BrokenChain => "BrokenChain",
        _ => "Other",
    }
}

fn check(chain: &[Vec<u8>], candidate: &[u8]) -> Result<u64, Error> {
    let chain: Vec<SignedRoster> = chain
        .iter()
        .map(|b| SignedRoster::decode(b).unwrap())
        .collect();
    let cand = SignedRoster::decode(candidate)?;
    if chain.is_empty() {
        return Roster::verify_founding(cand).map(|r| r.version());
    }
    Roster::verify_chain(&chain)?
        .verify_next(cand)
        .map(|r| r.version())
}

/// (name, description, chain before the candidate, candidate)
type RawCase = (String, String, Vec<Vec<u8>>, Vec<u8>);

fn generate() -> File {
    let mut rng = ChaCha20Rng::from_seed([0x52; 32]);
    let names = [
        ("mum", Role::Guardian),
        ("dad", Role::Guardian),
        ("toy", Role::Toy),
        ("server", Role::Guardian),
    ];
    let devs: Vec<DeviceIdentity> = names
        .iter()
        .map(|(_, r)| DeviceIdentity::generate(*r, &mut rng))
        .collect();
    let (mum, dad, toy, server) = (&devs[0], &devs[1], &devs[2], &devs[3]);
    let family = FamilyId::generate(&mut rng);
    let p = |d: &[&DeviceIdentity]| -> Vec<PublicIdentity> {
        d.iter().map(|x| x.public().clone()).collect()
    };

    let mut v1 = RosterProposal::founding(family, p(&[mum, toy]))
        .unwrap()
        .sign(mum);
    v1.cosign(toy);
    let r1 = Roster::verify_founding(v1.clone()).unwrap();
    let v2 = RosterProposal::next(&r1, p(&[mum, toy, dad]))
        .unwrap()
        .sign(mum);
    let r2 = r1.verify_next(v2.clone()).unwrap();
    let v3 = RosterProposal::next(&r2, p(&[mum, toy])).unwrap().sign(dad);
    let r3 = r2.verify_next(v3.clone()).unwrap();

    let e = |s: &SignedRoster| s.encode();
    let mut cases: Vec<RawCase> = vec![
        (
            "v1".into(),
            "Founding roster {mum, toy}, signed by mum and co-signed by the toy.".into(),
            vec![],
            e(&v1),
        ),
        (
            "v2_add_dad".into(),
            "Version 2 adds dad; signed by mum (a guardian of v1).".into(),
            vec![e(&v1)],
            e(&v2),
        ),
        (
            "v3_remove_dad".into(),
            "Version 3 removes dad; signed by dad (a guardian of v2).".into(),
            vec![e(&v1), e(&v2)],
            e(&v3),
        ),
    ];
    let only_mum = RosterProposal::founding(family, p(&[mum, toy]))
        .unwrap()
        .sign(mum);
    cases.push((
        "v1_without_toy".into(),
        "Version 1 not co-signed by the toy.".into(),
        vec![],
        e(&only_mum),
    ));
    let evil = RosterProposal::next(&r3, p(&[mum, toy, server]))
        .unwrap()
        .sign(server);
    cases.push((
        "v4_server_adds_itself".into(),
        "The server proposes v4 with its own key and signs it (T43).".into(),
        vec![e(&v1), e(&v2), e(&v3)],
        e(&evil),
    ));
    let by_removed = RosterProposal::next(&r3, p(&[mum, toy, dad]))
        .unwrap()
        .sign(dad);
    cases.push((
        "v4_signed_by_removed_guardian".into(),
        "Dad, removed in v3, signs v4 that re-adds him.".into(),
        vec![e(&v1), e(&v2), e(&v3)],
        e(&by_removed),
    ));
    cases.push((
        "replay_v2_after_v3".into(),
        "Replay of version 2 to a device at version 3 (T43).".into(),
        vec![e(&v1), e(&v2), e(&v3)],
        e(&v2),
    ));
    let fork = RosterProposal::next(&r1, p(&[mum, toy, server]))
        .unwrap()
        .sign(mum);
    let _ = fork;
    let mut skip = RosterProposal::next(&r3, p(&[mum, toy])).unwrap();
    let skipped = {
        let r4 = r3.verify_next(skip.clone().sign(mum)).unwrap();
        skip = RosterProposal::next(&r4, p(&[mum, toy, dad])).unwrap();
        skip.sign(mum)
    };
    cases.push((
        "gap_v5_after_v3".into(),
        "Version 5 offered to a device at version 3.".into(),
        vec![e(&v1), e(&v2), e(&v3)],
        e(&skipped),
    ));
    // The server swaps dad for itself in v2's member list (a well-formed, canonical body) and
    // keeps mum's signature from the real v2.
    let swapped = RosterProposal::next(&r1, p(&[mum, toy, server]))
        .unwrap()
        .sign(mum);
    let mut tampered = e(&swapped);
    let real = e(&v2);
    let (tn, rn) = (tampered.len(), real.len());
    tampered[tn - 80..].copy_from_slice(&real[rn - 80..]);
    cases.push(("v2_members_swapped_keeping_signature".into(), "v2 with dad replaced by the server's key, carrying mum's signature from the real v2 (T43).".into(), vec![e(&v1)], tampered));
    let mut flipped_sig = e(&v2);
    let n = flipped_sig.len();
    flipped_sig[n - 1] ^= 0x80;
    cases.push((
        "v2_signature_flipped".into(),
        "A bit of mum's signature on v2 flipped.".into(),
        vec![e(&v1)],
        flipped_sig,
    ));
    let mut trailing = e(&v1);
    trailing.push(0);
    cases.push((
        "v1_trailing_byte".into(),
        "A byte after the last signature.".into(),
        vec![],
        trailing,
    ));

    let cases = cases
        .into_iter()
        .map(|(name, description, chain, candidate)| {
            let outcome = check(&chain, &candidate);
            Case {
                name,
                description,
                candidate_hash: SignedRoster::decode(&candidate)
                    .ok()
                    .map(|s| hex::encode(s.hash())),
                chain: chain.iter().map(hex::encode).collect(),
                candidate: hex::encode(&candidate),
                expect: match outcome {
                    Ok(_) => "ok".into(),
                    Err(e) => err_name(&e).into(),
                },
            }
        })
        .collect();
    File {
        comment: "toyseal roster format 1 vectors (docs/spec/roster.md). Synthetic test devices; secret keys published on purpose. Generated by crates/toyseal-roster/tests/vectors.rs.".into(),
        devices: names
            .iter()
            .zip(&devs)
            .map(|((n, r), d)| Device {
                name: (*n).into(),
                role: r.to_string(),
                public_key: d.public().to_string(),
                device_id: d.device_id().to_string(),
                secret_key: d.export_secret_key_text().unwrap().to_string(),
            })
            .collect(),
        cases,
    }
}

#[test]
fn roster_vectors_reproduce_and_verify() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/spec/vectors/roster.json");
    let text = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("TOYSEAL_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        committed, text,
        "roster vectors differ from the code; regenerate and review"
    );
    let file: File = serde_json::from_str(&committed).unwrap();
    let expected = [
        ("v1", "ok"),
        ("v2_add_dad", "ok"),
        ("v3_remove_dad", "ok"),
        ("v1_without_toy", "Unauthorized"),
        ("v4_server_adds_itself", "Unauthorized"),
        ("v4_signed_by_removed_guardian", "Unauthorized"),
        ("replay_v2_after_v3", "NotNextVersion"),
        ("gap_v5_after_v3", "NotNextVersion"),
        ("v2_members_swapped_keeping_signature", "Signature"),
        ("v2_signature_flipped", "Signature"),
        ("v1_trailing_byte", "Malformed"),
    ];
    let mut ran = 0;
    for (case, (name, expect)) in file.cases.iter().zip(expected) {
        assert_eq!(case.name, name);
        assert_eq!(case.expect, expect, "{name}");
        let chain: Vec<Vec<u8>> = case.chain.iter().map(|h| hex::decode(h).unwrap()).collect();
        let got = check(&chain, &hex::decode(&case.candidate).unwrap());
        assert_eq!(
            got.as_ref().map(|_| "ok").unwrap_or_else(err_name),
            expect,
            "{name}"
        );
        ran += 1;
    }
    assert_eq!(ran, 11);
    assert_eq!(file.cases.len(), 11);
}
