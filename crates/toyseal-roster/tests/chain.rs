//! Roster chain rules, and the threats they answer: T17 (a stolen phone cannot take the family
//! over), T43 (the server appends its own key, or replays an old version), T44 (a removed phone
//! cannot open what is sealed after removal) and the roster half of T52 (a removed device's
//! earlier envelopes stay admitted, later ones do not). The change classes and the review's
//! attacks on them (T35) are in `governance.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_envelope::{ChainLink, Freshness, OpenOptions, ReceiveState, SealOptions};
use toyseal_roster::Error as RosterError;
use toyseal_roster::*;

struct Family {
    mum: DeviceIdentity,
    dad: DeviceIdentity,
    gran: DeviceIdentity,
    toy: DeviceIdentity,
    server: DeviceIdentity,
    id: FamilyId,
    recovery: RecoveryKey,
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
        recovery: RecoveryKey::generate(&mut rng).unwrap(),
        rng,
    }
}

/// Version 1 of `f`'s family with these members and the family's recovery key.
fn found(f: &Family, members: &[&DeviceIdentity]) -> RosterProposal {
    RosterProposal::founding(f.id, ids(members), *f.recovery.public()).unwrap()
}

/// `s` co-signed by the family's recovery key.
fn and_recovery(mut s: SignedRoster, f: &Family) -> SignedRoster {
    s.cosign_recovery(&f.recovery);
    s
}

fn ids(list: &[&DeviceIdentity]) -> Vec<PublicIdentity> {
    list.iter().map(|d| d.public().clone()).collect()
}

fn signed_by(p: RosterProposal, signers: &[&DeviceIdentity]) -> SignedRoster {
    let (first, rest) = signers.split_first().unwrap();
    let mut s = p.sign(first);
    for d in rest {
        s.cosign(d);
    }
    s
}

/// Dad's phone had sealed up to sequence 7 when it was removed.
const DAD_LAST: u64 = 7;
/// The chain head recorded with DAD_LAST in [`chain`] (synthetic: the tests that open dad's
/// envelopes record the header hash of a real one).
const DAD_HEAD: [u8; 32] = [0xda; 32];

/// A chain link at `sequence` with header hash `hash` (previous irrelevant to the roster alone).
fn link(sequence: u64, hash: [u8; 32]) -> ChainLink {
    ChainLink {
        sequence,
        previous: [0; 32],
        header_hash: hash,
    }
}

/// v1 {mum, toy} + recovery key; v2 {mum, toy, dad} (mum + the recovery key, dad proves
/// possession); v3 {mum, toy} (dad's phone removed by mum + dad, his last sequence recorded).
fn chain(f: &Family) -> Vec<SignedRoster> {
    let v1 = and_recovery(signed_by(found(f, &[&f.mum, &f.toy]), &[&f.mum, &f.toy]), f);
    let r1 = Roster::verify_founding(v1.clone()).unwrap();
    let v2 = and_recovery(
        signed_by(
            RosterProposal::next(&r1, ids(&[&f.mum, &f.toy, &f.dad])).unwrap(),
            &[&f.mum, &f.dad],
        ),
        f,
    );
    let r2 = r1.verify_next(v2.clone()).unwrap();
    let v3 = signed_by(
        RosterProposal::next(&r2, ids(&[&f.mum, &f.toy]))
            .unwrap()
            .with_last_envelope(f.dad.device_id(), DAD_LAST, DAD_HEAD)
            .unwrap(),
        &[&f.mum, &f.dad],
    );
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
    let r = from_founding(&decoded).unwrap();
    assert_eq!(r.version(), 3);
    assert!(!r.contains(f.dad.public()));
    assert_eq!(r.guardians().count(), 1);
}

#[test]
fn founding_needs_guardian_and_toy_signatures() {
    let f = family();
    let only_mum = and_recovery(found(&f, &[&f.mum, &f.toy]).sign(&f.mum), &f);
    assert!(matches!(
        Roster::verify_founding(only_mum),
        Err(Error::Unauthorized(_))
    ));
    let only_toy = and_recovery(found(&f, &[&f.mum, &f.toy]).sign(&f.toy), &f);
    assert!(matches!(
        Roster::verify_founding(only_toy),
        Err(Error::Unauthorized(_))
    ));
    let mut outsider = and_recovery(found(&f, &[&f.mum, &f.toy]).sign(&f.mum), &f);
    outsider.cosign(&f.toy);
    outsider.cosign(&f.gran);
    assert!(matches!(
        Roster::verify_founding(outsider),
        Err(Error::Signature)
    ));
    assert!(matches!(
        RosterProposal::founding(f.id, ids(&[&f.toy]), *f.recovery.public()),
        Err(Error::NoGuardian)
    ));
}

#[test]
fn t43_server_cannot_add_itself_or_replay_an_old_version() {
    let f = family();
    let c = chain(&f);
    let current = from_founding(&c).unwrap();

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
        assert!(from_founding(&[c[0].clone(), c[1].clone(), s]).is_err());
    }
    // 4. Replays: an old version, or the same version again, is refused.
    for old in &c {
        assert!(matches!(
            current.verify_next(old.clone()),
            Err(Error::NotNextVersion { .. })
        ));
    }
    // 5. A fork: another v3 (built on v2), shown to a device at v3.
    let v2 = from_founding(&c[..2]).unwrap();
    let fork = RosterProposal::next(&v2, ids(&[&f.mum, &f.toy, &f.server]))
        .unwrap()
        .sign(&f.mum);
    assert!(matches!(
        current.verify_next(fork),
        Err(Error::Fork { version: 3 })
    ));
    // 6. It enrols a recovery key of its own, signing with it and its device key: neither is
    //    an authority of v3.
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let servers_recovery = RecoveryKey::generate(&mut rng).unwrap();
    let mut evil = RosterProposal::next(&current, ids(&[&f.mum, &f.toy, &f.server]))
        .unwrap()
        .with_recovery_key(*servers_recovery.public())
        .unwrap()
        .sign(&f.server);
    evil.cosign_recovery(&servers_recovery);
    assert!(matches!(
        current.verify_next(evil),
        Err(Error::Unauthorized(_))
    ));
    // 7. The toy and the phones agree: the current roster is still v3 without the server.
    assert!(!current.contains(f.server.public()));
}

#[test]
fn removed_guardian_cannot_sign_later_versions() {
    let f = family();
    let c = chain(&f);
    let current = from_founding(&c).unwrap();
    // Dad was removed in v3: he may not even sign v4, and without him the toy and the newcomer
    // are no quorum.
    let p4 = || RosterProposal::next(&current, ids(&[&f.mum, &f.toy, &f.gran])).unwrap();
    assert!(matches!(
        current.verify_next(signed_by(p4(), &[&f.dad, &f.toy, &f.gran])),
        Err(Error::Signature)
    ));
    assert!(matches!(
        current.verify_next(signed_by(p4(), &[&f.toy, &f.gran])),
        Err(Error::Unauthorized(_))
    ));
    let v4 = and_recovery(signed_by(p4(), &[&f.mum, &f.gran]), &f);
    assert_eq!(current.verify_next(v4).unwrap().version(), 4);
}

#[test]
fn t44_removed_phone_cannot_open_later_messages() {
    let mut f = family();
    let c = chain(&f);
    let v2 = from_founding(&c[..2]).unwrap();
    let v3 = from_founding(&c).unwrap();
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
    // The removal recorded dad's last sequence: what he sealed up to it stays admitted for the
    // family, anything later (sealed with his still-valid key after removal) is refused.
    assert!(v3.admits_sender(f.dad.public(), &link(DAD_LAST, DAD_HEAD)));
    assert!(!v3.admits_sender(f.dad.public(), &link(DAD_LAST + 1, [1; 32])));
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
    bad_format[8] = 1;
    assert!(matches!(
        SignedRoster::decode(&bad_format),
        Err(Error::UnsupportedFormat(1))
    ));
}

/// v1 {mum, toy}; v2 {mum, dad, toy}: a family with two guardians.
fn two_guardians(f: &Family) -> (Vec<SignedRoster>, Roster) {
    let c = chain(f);
    let r2 = from_founding(&c[..2]).unwrap();
    (c[..2].to_vec(), r2)
}

#[test]
fn t17_stolen_phone_cannot_take_over() {
    let f = family();
    let (_, r2) = two_guardians(&f);
    // The thief holds dad's phone (dad's key) and its own device.
    let thief = &f.server;
    // 1. Remove mum (the other guardian), signed with dad's key alone — and with the thief's
    //    own device "proving possession" of nothing that counts.
    let remove_mum = RosterProposal::next(&r2, ids(&[&f.dad, &f.toy])).unwrap();
    assert!(matches!(
        r2.verify_next(signed_by(remove_mum.clone(), &[&f.dad])),
        Err(Error::Unauthorized(_))
    ));
    // 2. Add a device of its own (it proves possession, but that is no authority).
    let add_thief = RosterProposal::next(&r2, ids(&[&f.mum, &f.dad, &f.toy, thief])).unwrap();
    assert!(matches!(
        r2.verify_next(signed_by(add_thief.clone(), &[&f.dad, thief])),
        Err(Error::Unauthorized(_))
    ));
    // 3. Replace itself as the toy: a fresh "toy" key of its own, added and signing, is not a
    //    toy of version 2.
    let fake_toy = DeviceIdentity::generate(Role::Toy, &mut ChaCha20Rng::from_seed([3; 32]));
    let swap_toy = RosterProposal::next(&r2, ids(&[&f.dad, &fake_toy])).unwrap();
    assert!(matches!(
        r2.verify_next(signed_by(swap_toy, &[&f.dad, &fake_toy])),
        Err(Error::Unauthorized(_))
    ));
    // 4. Delete the family.
    let mut deletion = FamilyDeletion::new(&r2);
    deletion.cosign(&f.dad);
    let deletion = FamilyDeletion::decode(&deletion.encode()).unwrap();
    assert!(matches!(
        r2.verify_deletion(&deletion),
        Err(Error::Unauthorized(_))
    ));
    // 5. Nor with the toy's confirmation: removing mum is a grant (T35).
    assert!(matches!(
        r2.verify_next(signed_by(remove_mum, &[&f.dad, &f.toy])),
        Err(Error::Unauthorized(_))
    ));
    // The family keeps control: mum and the printed recovery key remove the stolen phone (a
    // guardian's removal is a grant: mum and the toy could not).
    let remove_dad = RosterProposal::next(&r2, ids(&[&f.mum, &f.toy])).unwrap();
    assert!(matches!(
        r2.verify_next(signed_by(remove_dad.clone(), &[&f.mum, &f.toy])),
        Err(Error::Unauthorized(_))
    ));
    let r3 = r2
        .verify_next(and_recovery(signed_by(remove_dad, &[&f.mum]), &f))
        .unwrap();
    assert!(!r3.contains(f.dad.public()));
    // ...after which the thief's whole toolbox is void: dad is no authority of version 3.
    let readd = RosterProposal::next(&r3, ids(&[&f.mum, &f.toy, &f.dad])).unwrap();
    assert!(r3.verify_next(signed_by(readd, &[&f.dad, &f.toy])).is_err());
    let mut deletion = FamilyDeletion::new(&r3);
    deletion.cosign(&f.dad);
    deletion.cosign(&f.toy);
    assert!(matches!(
        r3.verify_deletion(&deletion),
        Err(Error::Signature)
    ));
    // The real family deletes with its quorum (mum + the recovery key; mum + the toy is not
    // one for a deletion).
    let mut deletion = FamilyDeletion::new(&r3);
    deletion.cosign(&f.mum);
    deletion.cosign(&f.toy);
    assert!(matches!(
        r3.verify_deletion(&deletion),
        Err(Error::Unauthorized(_))
    ));
    deletion.cosign_recovery(&f.recovery);
    r3.verify_deletion(&deletion).unwrap();
    // A statement decided under version 2 does not count at version 3.
    let mut stale = FamilyDeletion::new(&r2);
    stale.cosign(&f.mum);
    stale.cosign(&f.dad);
    assert!(matches!(
        r3.verify_deletion(&stale),
        Err(Error::NotCurrentRoster)
    ));
}

#[test]
fn quorums_that_count() {
    let f = family();
    let (_, r2) = two_guardians(&f);
    let p = || RosterProposal::next(&r2, ids(&[&f.mum, &f.dad, &f.toy, &f.gran])).unwrap();
    // Adding gran is a grant. Two guardians; a guardian and the recovery key; the recovery key
    // and the toy: yes (gran proves possession).
    let grants: [(&[&DeviceIdentity], bool); 3] = [
        (&[&f.mum, &f.dad], false),
        (&[&f.dad], true),
        (&[&f.toy], true),
    ];
    for (signers, recovery) in grants {
        let mut s = signed_by(p(), signers);
        if recovery {
            s.cosign_recovery(&f.recovery);
        }
        s.cosign(&f.gran);
        assert!(r2.has_quorum(&s));
        r2.verify_next(s).unwrap();
    }
    // A guardian and the toy: no, for a grant.
    for g in [&f.mum, &f.dad] {
        let s = signed_by(p(), &[g, &f.toy, &f.gran]);
        assert!(!r2.has_quorum(&s));
        assert!(matches!(r2.verify_next(s), Err(Error::Unauthorized(_))));
    }
    // The toy and the new member only: no.
    assert!(matches!(
        r2.verify_next(signed_by(p(), &[&f.toy, &f.gran])),
        Err(Error::Unauthorized(_))
    ));
    // Two guardians, but gran does not prove possession of her key.
    assert!(matches!(
        r2.verify_next(signed_by(p(), &[&f.mum, &f.dad])),
        Err(Error::ProofOfPossession)
    ));
    // Two toys are not a quorum.
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let toy2 = DeviceIdentity::generate(Role::Toy, &mut rng);
    let r3 = r2
        .verify_next(signed_by(
            RosterProposal::next(&r2, ids(&[&f.mum, &f.dad, &f.toy, &toy2])).unwrap(),
            &[&f.mum, &f.dad, &toy2],
        ))
        .unwrap();
    let p4 = RosterProposal::next(&r3, ids(&[&f.mum, &f.toy, &toy2])).unwrap();
    assert!(matches!(
        r3.verify_next(signed_by(p4, &[&f.toy, &toy2])),
        Err(Error::Unauthorized(_))
    ));
}

#[test]
fn recovery_key_is_a_second_authority() {
    let mut f = family();
    let recovery = RecoveryKey::from_printable(&f.recovery.export_printable().unwrap()).unwrap();
    // Founding with a recovery key: it proves possession like every founding member.
    let p1 = found(&f, &[&f.mum, &f.toy]);
    assert!(matches!(
        Roster::verify_founding(signed_by(p1.clone(), &[&f.mum, &f.toy])),
        Err(Error::ProofOfPossession)
    ));
    let mut v1 = signed_by(p1, &[&f.mum, &f.toy]);
    v1.cosign_recovery(&recovery);
    let r1 = Roster::verify_founding(SignedRoster::decode(&v1.encode()).unwrap()).unwrap();
    assert_eq!(r1.recovery_key(), recovery.public());
    // The recovery key is no member: it is never a recipient.
    assert_eq!(r1.members().len(), 2);
    // Mum's phone alone: no. Mum + the printed recovery key: yes (the toy is away).
    let p2 = || RosterProposal::next(&r1, ids(&[&f.mum, &f.toy, &f.dad])).unwrap();
    assert!(r1.verify_next(signed_by(p2(), &[&f.mum, &f.dad])).is_err());
    let mut v2 = signed_by(p2(), &[&f.mum, &f.dad]);
    v2.cosign_recovery(&recovery);
    let r2 = r1.verify_next(v2).unwrap();
    assert_eq!(r2.recovery_key(), recovery.public());
    // Mum's phone lost: the recovery key and the toy remove it (a grant: the recovery window).
    let printed = recovery.export_printable().unwrap();
    let from_paper = RecoveryKey::from_printable(&printed).unwrap();
    let p3 = RosterProposal::next(&r2, ids(&[&f.dad, &f.toy])).unwrap();
    let mut v3 = p3.sign_with_recovery(&from_paper);
    v3.cosign(&f.toy);
    let r3 = r2.verify_next(v3).unwrap();
    // The recovery key alone, or a stranger's "recovery key": no.
    let p4 = RosterProposal::next(&r3, ids(&[&f.dad, &f.toy, &f.gran])).unwrap();
    let mut alone = p4.clone().sign_with_recovery(&recovery);
    alone.cosign(&f.gran);
    assert!(matches!(r3.verify_next(alone), Err(Error::Unauthorized(_))));
    let stranger = RecoveryKey::generate(&mut f.rng).unwrap();
    let mut forged = p4.sign_with_recovery(&stranger);
    forged.cosign(&f.toy);
    forged.cosign(&f.gran);
    assert!(matches!(r3.verify_next(forged), Err(Error::Signature)));
    // A family deletion with dad + the recovery key.
    let mut deletion = FamilyDeletion::new(&r3);
    deletion.cosign(&f.dad);
    deletion.cosign_recovery(&recovery);
    r3.verify_deletion(&FamilyDeletion::decode(&deletion.encode()).unwrap())
        .unwrap();
    // Replacing the recovery key (a grant: dad and the old key), the new one proves
    // possession.
    let new_key = RecoveryKey::generate(&mut f.rng).unwrap();
    let p4 = RosterProposal::next(&r3, ids(&[&f.dad, &f.toy]))
        .unwrap()
        .with_recovery_key(*new_key.public())
        .unwrap();
    let old_signed = and_recovery(signed_by(p4.clone(), &[&f.dad]), &f);
    assert!(matches!(
        r3.verify_next(old_signed.clone()),
        Err(Error::ProofOfPossession)
    ));
    let mut v4 = old_signed;
    v4.cosign_recovery(&new_key);
    let r4 = r3.verify_next(v4).unwrap();
    assert_eq!(r4.recovery_key(), new_key.public());
}

#[test]
fn every_version_lists_the_recovery_key() {
    let f = family();
    let (c, r2) = two_guardians(&f);
    // {mum} alone is governable: mum and the recovery key are a quorum of every class.
    RosterProposal::next(&r2, ids(&[&f.mum])).unwrap();
    // A body without the recovery key (r = 0) is refused by the decoder.
    let bytes = c[1].encode();
    let r_at = 8 + 1 + 16 + 8 + 32 + 1 + 66 * 3;
    assert_eq!(bytes[r_at], 1);
    let mut without = bytes[..r_at].to_vec();
    without.push(0);
    without.extend_from_slice(&bytes[r_at + 1 + 32..]);
    assert!(matches!(
        SignedRoster::decode(&without),
        Err(Error::NoRecoveryKey)
    ));
    // Two recovery keys: malformed (r ≤ 1).
    let mut two = bytes.clone();
    two[r_at] = 2;
    assert!(matches!(
        SignedRoster::decode(&two),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn removals_are_recorded_and_carried() {
    let f = family();
    let c = chain(&f);
    let r3 = from_founding(&c).unwrap();
    assert_eq!(r3.departed().len(), 1);
    assert_eq!(r3.departed()[0].identity(), f.dad.public());
    assert_eq!(r3.departed()[0].last_sequence(), DAD_LAST);
    assert_eq!(r3.departed()[0].chain_head(), &DAD_HEAD);
    // Carried over to v4 unchanged...
    let p4 = || RosterProposal::next(&r3, ids(&[&f.mum, &f.toy, &f.gran])).unwrap();
    let r4 = r3
        .verify_next(and_recovery(signed_by(p4(), &[&f.mum, &f.gran]), &f))
        .unwrap();
    assert_eq!(r4.departed(), r3.departed());
    // ...and never raised later (the server or a guardian cannot re-open later envelopes).
    let raised = p4()
        .with_last_envelope(f.dad.device_id(), 1000, DAD_HEAD)
        .unwrap();
    assert!(matches!(
        r3.verify_next(signed_by(raised, &[&f.mum, &f.toy, &f.gran])),
        Err(Error::Departure(_))
    ));
    // Nor moved to another chain head at the same sequence.
    let moved = p4()
        .with_last_envelope(f.dad.device_id(), DAD_LAST, [0xee; 32])
        .unwrap();
    assert!(matches!(
        r3.verify_next(signed_by(moved, &[&f.mum, &f.toy, &f.gran])),
        Err(Error::Departure(_))
    ));
    // A last sequence without a chain head, or a head without a sequence, is refused.
    assert!(matches!(
        p4().with_last_envelope(f.dad.device_id(), DAD_LAST, [0; 32]),
        Err(Error::Departure(_))
    ));
    assert!(matches!(
        p4().with_last_envelope(f.dad.device_id(), 0, DAD_HEAD),
        Err(Error::Departure(_))
    ));
    // A removal without its record is refused.
    let r2 = from_founding(&c[..2]).unwrap();
    let unrecorded = RosterProposal::next(&r2, ids(&[&f.mum, &f.toy]))
        .unwrap()
        .forget_departed(f.dad.device_id());
    assert!(matches!(
        r2.verify_next(signed_by(unrecorded, &[&f.mum, &f.toy])),
        Err(Error::Departure(_))
    ));
    // Dropping an old record later is allowed (the family gives those envelopes up).
    let forget = p4().forget_departed(f.dad.device_id());
    let r4 = r3
        .verify_next(and_recovery(signed_by(forget, &[&f.mum, &f.gran]), &f))
        .unwrap();
    assert!(r4.departed().is_empty());
    assert!(!r4.admits_sender(f.dad.public(), &link(DAD_LAST, DAD_HEAD)));
    // Re-adding a departed device removes its record (it proves possession again).
    let readd = RosterProposal::next(&r3, ids(&[&f.mum, &f.toy, &f.dad])).unwrap();
    assert!(readd.departed().is_empty());
    let r4 = r3
        .verify_next(and_recovery(signed_by(readd, &[&f.mum, &f.dad]), &f))
        .unwrap();
    assert_eq!(
        r4.admission(f.dad.public(), &link(10_000, [3; 32])),
        Admission::Member
    );
}

/// Dad's phone seals `count` envelopes to the family of `r2` as its sender state makes them:
/// sequences 1, 2, … (skipping `skip`, reserved and never emitted), each naming the previous
/// one's header hash.
fn dads_chain(
    f: &Family,
    r2: &Roster,
    count: u64,
    skip: u64,
    rng: &mut ChaCha20Rng,
) -> Vec<Vec<u8>> {
    let mut previous = [0u8; 32];
    let mut out = Vec::new();
    for seq in (1..=count).filter(|s| *s != skip) {
        let env = r2
            .seal(
                &f.dad,
                SealOptions::default()
                    .with_sequence(seq)
                    .with_previous(previous),
                b"synthetic goodnight",
                rng,
            )
            .unwrap();
        previous = toyseal_envelope::inspect(&env).unwrap().link_hash();
        out.push(env);
    }
    out
}

/// v3 removing dad, recording the last of `envelopes` as his chain head.
fn remove_dad_at(f: &Family, r2: &Roster, envelopes: &[Vec<u8>]) -> Roster {
    let head = toyseal_envelope::inspect(envelopes.last().unwrap()).unwrap();
    let v3 = signed_by(
        RosterProposal::next(r2, ids(&[&f.mum, &f.toy]))
            .unwrap()
            .with_last_envelope(f.dad.device_id(), head.sequence(), head.link_hash())
            .unwrap(),
        &[&f.mum, &f.dad],
    );
    r2.verify_next(v3).unwrap()
}

#[test]
fn t52_removed_device_earlier_envelopes_admitted_later_ones_not() {
    let f = family();
    let c = chain(&f);
    let r2 = from_founding(&c[..2]).unwrap();
    let mut rng = ChaCha20Rng::from_seed([52; 32]);
    let dads = dads_chain(&f, &r2, DAD_LAST, 0, &mut rng);
    let r3 = remove_dad_at(&f, &r2, &dads);
    let head = toyseal_envelope::inspect(dads.last().unwrap()).unwrap();
    // Before the removal dad's phone is a member at any link.
    assert_eq!(
        r2.admission(f.dad.public(), &head.chain_link()),
        Admission::Member
    );
    // After it, with no receive state, the recorded head itself only.
    assert_eq!(
        r3.admission(f.dad.public(), &head.chain_link()),
        Admission::DepartedEarlier {
            last_sequence: DAD_LAST
        }
    );
    let earlier = toyseal_envelope::inspect(&dads[0]).unwrap().chain_link();
    assert_eq!(r3.admission(f.dad.public(), &earlier), Admission::Refused);
    // With the links mum's phone verified, every earlier envelope on the chain.
    let mut known = ReceiveState::new();
    for env in &dads {
        let h = toyseal_envelope::inspect(env).unwrap();
        known.observe(f.dad.device_id(), h.chain_link());
    }
    for env in &dads {
        let (content, opened) = r3
            .open_with_chains(&f.mum, &known, env, OpenOptions::default())
            .unwrap();
        assert_eq!(content, b"synthetic goodnight");
        assert!(opened.sequence <= DAD_LAST);
    }
    // Sealed after it, continuing the chain (a stolen phone keeps its key): refused before any
    // content.
    let later = r2
        .seal(
            &f.dad,
            SealOptions::default()
                .with_sequence(DAD_LAST + 1)
                .with_previous(head.link_hash()),
            b"sealed after the removal",
            &mut rng,
        )
        .unwrap();
    assert!(matches!(
        r3.open_with_chains(&f.mum, &known, &later, OpenOptions::default()),
        Err(RosterError::Envelope(
            toyseal_envelope::Error::UntrustedSender
        ))
    ));
    // Current members are admitted; strangers are not.
    assert!(r3.admits_sender(f.mum.public(), &link(1, [1; 32])));
    assert!(!r3.admits_sender(f.gran.public(), &link(1, [1; 32])));
    assert!(!r3.admits_sender(f.server.public(), &link(0, [0; 32])));
}

#[test]
fn t38_removed_device_cannot_back_date_or_reuse_a_sequence_through_the_roster() {
    let f = family();
    let c = chain(&f);
    let r2 = from_founding(&c[..2]).unwrap();
    let mut rng = ChaCha20Rng::from_seed([38; 32]);
    // Dad's real chain: 1, 2, 3, 5, 6, 7 (4 was reserved by a seal that failed before it
    // emitted anything).
    let dads = dads_chain(&f, &r2, DAD_LAST, 4, &mut rng);
    let r3 = remove_dad_at(&f, &r2, &dads);
    let mut known = ReceiveState::new();
    for env in &dads {
        known.observe(
            f.dad.device_id(),
            toyseal_envelope::inspect(env).unwrap().chain_link(),
        );
    }
    let link_of = |i: usize| toyseal_envelope::inspect(&dads[i]).unwrap().link_hash();
    // The removed phone (it keeps its key) seals new content dated before its removal.
    let forge = |sequence: u64, previous: [u8; 32], rng: &mut ChaCha20Rng| {
        r2.seal(
            &f.dad,
            SealOptions::default()
                .with_sequence(sequence)
                .with_previous(previous),
            b"new words passed off as old",
            rng,
        )
        .unwrap()
    };
    let attacks = [
        // The unused sequence 4, naming its real predecessor 3.
        ("unused sequence 4", forge(4, link_of(2), &mut rng)),
        // Re-used sequences, naming their real predecessors: other header hashes.
        ("re-used sequence 2", forge(2, link_of(0), &mut rng)),
        ("re-used sequence 5", forge(5, link_of(2), &mut rng)),
        ("re-used head sequence 7", forge(7, link_of(4), &mut rng)),
        ("re-used sequence 1", forge(1, [0; 32], &mut rng)),
        ("unsequenced", forge(0, [0; 32], &mut rng)),
    ];
    for (what, env) in &attacks {
        // Refused by the roster opener, with and without the receive state, before any
        // content: the streaming opener releases nothing.
        for r in [
            r3.open_with_chains(&f.mum, &known, env, OpenOptions::default()),
            r3.open(&f.mum, env, OpenOptions::default()),
        ] {
            assert!(
                matches!(
                    r,
                    Err(RosterError::Envelope(
                        toyseal_envelope::Error::UntrustedSender
                    ))
                ),
                "{what}: {r:?}"
            );
        }
        let policy = RosterSenders {
            roster: &r3,
            chains: &known,
        };
        let mut opener = toyseal_envelope::Opener::new(&f.toy, policy, OpenOptions::default());
        let mut released = Vec::new();
        assert!(opener.push(env, &mut released).is_err(), "{what}");
        assert!(released.is_empty(), "{what}");
        let l = toyseal_envelope::inspect(env).unwrap().chain_link();
        let verdict = known.classify(f.dad.device_id(), &l);
        if l.sequence == 0 {
            assert_eq!(verdict, Freshness::Unsequenced, "{what}");
        } else {
            assert_eq!(verdict, Freshness::Fork, "{what}");
        }
    }
    // Its real earlier envelopes still open.
    for env in &dads {
        assert!(
            r3.open_with_chains(&f.mum, &known, env, OpenOptions::default())
                .is_ok()
        );
    }
    // A current member's re-used sequence is refused where the state is tracked.
    let mum_first = r3
        .seal(
            &f.mum,
            SealOptions::default().with_sequence(1),
            b"one",
            &mut rng,
        )
        .unwrap();
    let mum_again = r3
        .seal(
            &f.mum,
            SealOptions::default().with_sequence(1),
            b"two",
            &mut rng,
        )
        .unwrap();
    let (_, opened) = r3
        .open_with_chains(&f.toy, &known, &mum_first, OpenOptions::default())
        .unwrap();
    assert_eq!(
        known.observe(f.mum.device_id(), opened.link()),
        Freshness::New
    );
    assert!(matches!(
        r3.open_with_chains(&f.toy, &known, &mum_again, OpenOptions::default()),
        Err(RosterError::Envelope(
            toyseal_envelope::Error::UntrustedSender
        ))
    ));
}

#[test]
fn departed_records_are_bounded_and_old_ones_can_be_forgotten() {
    let f = family();
    let (_, mut r) = two_guardians(&f);
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    // Add 20 devices, remove them, twice: 1 + 20 + 20 records would exceed the limit.
    for _ in 0..2 {
        let extra: Vec<DeviceIdentity> = (0..20)
            .map(|_| DeviceIdentity::generate(Role::Toy, &mut rng))
            .collect();
        let mut members = ids(&[&f.mum, &f.dad, &f.toy]);
        members.extend(extra.iter().map(|d| d.public().clone()));
        let mut signers: Vec<&DeviceIdentity> = vec![&f.mum, &f.dad];
        signers.extend(extra.iter());
        r = r
            .verify_next(signed_by(
                RosterProposal::next(&r, members).unwrap(),
                &signers,
            ))
            .unwrap();
        let p = RosterProposal::next(&r, ids(&[&f.mum, &f.dad, &f.toy])).unwrap();
        if p.departed().len() <= MAX_DEPARTED {
            r = r.verify_next(signed_by(p, &[&f.mum, &f.dad])).unwrap();
            continue;
        }
        // Over the limit: refused as it is, accepted once old records are forgotten.
        assert!(matches!(
            r.verify_next(signed_by(p.clone(), &[&f.mum, &f.dad])),
            Err(Error::Departure(_))
        ));
        let old: Vec<_> = r
            .departed()
            .iter()
            .map(|d| d.identity().device_id())
            .collect();
        let trimmed = old.into_iter().fold(p, |p, id| p.forget_departed(id));
        assert_eq!(trimmed.departed().len(), 20);
        r = r
            .verify_next(signed_by(trimmed, &[&f.mum, &f.dad]))
            .unwrap();
    }
    assert_eq!(r.departed().len(), 20);
    assert!(SignedRoster::decode(&r.signed().encode()).is_ok());
}

/// The chain verified from its version 1, trusted as given (the founding device's and the
/// server's view; every other device verifies through its anchor).
fn from_founding(chain: &[SignedRoster]) -> Result<Roster, RosterError> {
    let (first, rest) = chain
        .split_first()
        .ok_or(RosterError::Malformed("empty chain"))?;
    Roster::verify_founding(first.clone())?.advance(rest)
}
