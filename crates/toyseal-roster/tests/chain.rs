//! Roster chain rules, and the threats they answer: T43 (the server appends its own key, or
//! replays an old version) and T44 (a removed phone cannot open what is sealed after removal).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_envelope::{OpenOptions, SealOptions};
use toyseal_roster::*;

struct Family {
    mum: DeviceIdentity,
    dad: DeviceIdentity,
    gran: DeviceIdentity,
    toy: DeviceIdentity,
    server: DeviceIdentity,
    id: FamilyId,
    rng: ChaCha20Rng,
}

fn family() -> Family {
    let mut rng = ChaCha20Rng::from_seed([21; 32]);
    Family {
        mum: DeviceIdentity::generate(Role::Guardian, &mut rng),
        dad: DeviceIdentity::generate(Role::Guardian, &mut rng),
        gran: DeviceIdentity::generate(Role::Guardian, &mut rng),
        toy: DeviceIdentity::generate(Role::Toy, &mut rng),
        server: DeviceIdentity::generate(Role::Guardian, &mut rng),
        id: FamilyId::generate(&mut rng),
        rng,
    }
}

fn ids(list: &[&DeviceIdentity]) -> Vec<PublicIdentity> {
    list.iter().map(|d| d.public().clone()).collect()
}

/// v1 {mum, toy}; v2 {mum, toy, dad}; v3 {mum, toy} (dad's phone removed).
fn chain(f: &Family) -> Vec<SignedRoster> {
    let mut v1 = RosterProposal::founding(f.id, ids(&[&f.mum, &f.toy]))
        .unwrap()
        .sign(&f.mum);
    v1.cosign(&f.toy);
    let r1 = Roster::verify_founding(v1.clone()).unwrap();
    let v2 = RosterProposal::next(&r1, ids(&[&f.mum, &f.toy, &f.dad]))
        .unwrap()
        .sign(&f.mum);
    let r2 = r1.verify_next(v2.clone()).unwrap();
    let v3 = RosterProposal::next(&r2, ids(&[&f.mum, &f.toy]))
        .unwrap()
        .sign(&f.dad);
    vec![v1, v2, v3]
}

#[test]
fn chain_verifies_and_round_trips_through_bytes() {
    let f = family();
    let c = chain(&f);
    let decoded: Vec<SignedRoster> = c
        .iter()
        .map(|s| SignedRoster::decode(&s.encode()).unwrap())
        .collect();
    assert_eq!(decoded, c);
    let r = Roster::verify_chain(&decoded).unwrap();
    assert_eq!(r.version(), 3);
    assert!(!r.contains(f.dad.public()));
    assert_eq!(r.guardians().count(), 1);
}

#[test]
fn founding_needs_guardian_and_toy_signatures() {
    let f = family();
    let only_mum = RosterProposal::founding(f.id, ids(&[&f.mum, &f.toy]))
        .unwrap()
        .sign(&f.mum);
    assert!(matches!(
        Roster::verify_founding(only_mum),
        Err(Error::Unauthorized(_))
    ));
    let only_toy = RosterProposal::founding(f.id, ids(&[&f.mum, &f.toy]))
        .unwrap()
        .sign(&f.toy);
    assert!(matches!(
        Roster::verify_founding(only_toy),
        Err(Error::Unauthorized(_))
    ));
    let mut outsider = RosterProposal::founding(f.id, ids(&[&f.mum, &f.toy]))
        .unwrap()
        .sign(&f.mum);
    outsider.cosign(&f.toy);
    outsider.cosign(&f.gran);
    assert!(matches!(
        Roster::verify_founding(outsider),
        Err(Error::Signature)
    ));
    assert!(matches!(
        RosterProposal::founding(f.id, ids(&[&f.toy])),
        Err(Error::NoGuardian)
    ));
}

#[test]
fn t43_server_cannot_add_itself_or_replay_an_old_version() {
    let f = family();
    let c = chain(&f);
    let current = Roster::verify_chain(&c).unwrap();

    // 1. The server proposes v4 with its own key and signs it itself.
    let evil = RosterProposal::next(&current, ids(&[&f.mum, &f.toy, &f.server]))
        .unwrap()
        .sign(&f.server);
    assert!(matches!(
        current.verify_next(evil.clone()),
        Err(Error::Unauthorized(_))
    ));
    // 2. It re-uses mum's v3 signature on its own body: the signature no longer verifies.
    let mut bytes = evil.encode();
    let mum_sig = c[2].encode();
    let n = mum_sig.len();
    let sig_at = bytes.len() - 80;
    bytes[sig_at..].copy_from_slice(&mum_sig[n - 80..]);
    if let Ok(s) = SignedRoster::decode(&bytes) {
        assert!(current.verify_next(s).is_err());
    }
    // 3. It edits v3's member list in transit (swap dad back in): mum's signature breaks.
    let mut tampered = c[2].encode();
    tampered[70] ^= 1;
    if let Ok(s) = SignedRoster::decode(&tampered) {
        assert!(Roster::verify_chain(&[c[0].clone(), c[1].clone(), s]).is_err());
    }
    // 4. Replays: an old version, or the same version again, is refused.
    for old in &c {
        assert!(matches!(
            current.verify_next(old.clone()),
            Err(Error::NotNextVersion { .. })
        ));
    }
    // 5. A forked v4 that does not chain to v3.
    let v2 = Roster::verify_chain(&c[..2]).unwrap();
    let fork = RosterProposal::next(&v2, ids(&[&f.mum, &f.toy, &f.server]))
        .unwrap()
        .sign(&f.mum);
    assert!(current.verify_next(fork).is_err());
    // 6. The toy and the phones agree: the current roster is still v3 without the server.
    assert!(!current.contains(f.server.public()));
}

#[test]
fn removed_guardian_cannot_sign_later_versions() {
    let f = family();
    let c = chain(&f);
    let current = Roster::verify_chain(&c).unwrap();
    // Dad was removed in v3: his signature alone cannot make v4 (gran added).
    let v4 = RosterProposal::next(&current, ids(&[&f.mum, &f.toy, &f.gran]))
        .unwrap()
        .sign(&f.dad);
    assert!(current.verify_next(v4).is_err());
    let v4 = RosterProposal::next(&current, ids(&[&f.mum, &f.toy, &f.gran]))
        .unwrap()
        .sign(&f.mum);
    assert_eq!(current.verify_next(v4).unwrap().version(), 4);
}

#[test]
fn t44_removed_phone_cannot_open_messages_sealed_after_removal() {
    let mut f = family();
    let c = chain(&f);
    let v2 = Roster::verify_chain(&c[..2]).unwrap();
    let v3 = Roster::verify_chain(&c).unwrap();
    let before = v2
        .seal(
            &f.toy,
            SealOptions::default(),
            b"sealed while dad was a member",
            &mut f.rng,
        )
        .unwrap();
    let after = v3
        .seal(
            &f.toy,
            SealOptions::default(),
            b"sealed after dad's phone was removed",
            &mut f.rng,
        )
        .unwrap();
    // Dad could read the old message (he was a recipient then)...
    assert!(v2.open(&f.dad, &before, OpenOptions::default()).is_ok());
    // ...but not the new one: he is no longer a recipient.
    let r = v3.open(&f.dad, &after, OpenOptions::default());
    assert!(
        matches!(
            r,
            Err(Error::Envelope(toyseal_envelope::Error::NotARecipient))
        ),
        "{r:?}"
    );
    // Trying with the old roster's trust does not help: the keys are not there.
    assert!(
        toyseal_envelope::open(
            &f.dad,
            &[f.toy.public().clone()],
            &after,
            OpenOptions::default()
        )
        .is_err()
    );
    // Mum still can; the header names family and roster version 3.
    let (content, opened) = v3.open(&f.mum, &after, OpenOptions::default()).unwrap();
    assert_eq!(content, b"sealed after dad's phone was removed");
    assert_eq!(opened.roster_version, 3);
    assert_eq!(opened.family, Some(f.id));
}

#[test]
fn decode_rejects_malformed_input() {
    let f = family();
    let c = chain(&f);
    let good = c[1].encode();
    for cut in 0..good.len() {
        assert!(SignedRoster::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut extra = good.clone();
    extra.push(0);
    assert!(SignedRoster::decode(&extra).is_err());
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 1;
    assert!(matches!(
        SignedRoster::decode(&bad_magic),
        Err(Error::Malformed(_))
    ));
    let mut bad_format = good;
    bad_format[8] = 2;
    assert!(matches!(
        SignedRoster::decode(&bad_format),
        Err(Error::UnsupportedFormat(2))
    ));
}
