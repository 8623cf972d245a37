//! Change classes (docs/spec/roster.md §3.3) and the design review's attacks on the roster
//! (THREATS T35, the roster half: the pairing crate tests the at-the-toy half). The attacker
//! holds a stolen guardian key (dad's) and a toy signature (the toy co-signed whatever was put
//! to it); with them it may only *remove* a toy or a member, never add anyone who would
//! receive, never change an authority, never delete the family. Forks are reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_roster::Error as RosterError;
use toyseal_roster::*;

struct Family {
    mum: DeviceIdentity,
    dad: DeviceIdentity,
    toy: DeviceIdentity,
    toy2: DeviceIdentity,
    gran: DeviceIdentity,
    recovery: RecoveryKey,
    /// v2 {mum, dad, toy, toy2, gran (member)}.
    roster: Roster,
    rng: ChaCha20Rng,
}

fn ids(list: &[&DeviceIdentity]) -> Vec<PublicIdentity> {
    list.iter().map(|d| d.public().clone()).collect()
}

fn signed(
    p: RosterProposal,
    devices: &[&DeviceIdentity],
    recovery: Option<&RecoveryKey>,
) -> SignedRoster {
    let mut s = match recovery {
        Some(r) => p.sign_with_recovery(r),
        None => p.sign(devices[0]),
    };
    for d in devices {
        s.cosign(d);
    }
    s
}

fn family() -> Family {
    let mut rng = ChaCha20Rng::from_seed([35; 32]);
    let mum = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let dad = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let toy = DeviceIdentity::generate(Role::Toy, &mut rng);
    let toy2 = DeviceIdentity::generate(Role::Toy, &mut rng);
    let gran = DeviceIdentity::generate(Role::Member, &mut rng);
    let recovery = RecoveryKey::generate(&mut rng).unwrap();
    let id = FamilyId::generate(&mut rng);
    let v1 = signed(
        RosterProposal::founding(id, ids(&[&mum, &toy]), *recovery.public()).unwrap(),
        &[&mum, &toy],
        Some(&recovery),
    );
    let r1 = Roster::verify_founding(v1).unwrap();
    let v2 = signed(
        RosterProposal::next(&r1, ids(&[&mum, &dad, &toy, &toy2, &gran])).unwrap(),
        &[&mum, &dad, &toy2, &gran],
        Some(&recovery),
    );
    let roster = r1.verify_next(v2).unwrap();
    Family {
        mum,
        dad,
        toy,
        toy2,
        gran,
        recovery,
        roster,
        rng,
    }
}

fn unauthorized(r: Result<Roster, RosterError>) -> bool {
    matches!(r, Err(Error::Unauthorized(_)))
}

/// The phantom toy: dad's stolen key and the toy's signature add a toy-role key the thief
/// holds (which signs for possession). Were it admitted, the thief would hold a standing
/// guardian + toy pair from anywhere. Refused: adding a device is a grant.
#[test]
fn t35_roster_stolen_guardian_and_toy_cannot_add_a_phantom_toy() {
    let mut f = family();
    let r = &f.roster;
    let phantom = DeviceIdentity::generate(Role::Toy, &mut f.rng);
    let mut members = r.members().to_vec();
    members.push(phantom.public().clone());
    let p = RosterProposal::next(r, members).unwrap();
    assert_eq!(r.change_to(&p).class(), ChangeClass::Grant);
    assert_eq!(r.change_to(&p).added(), &[phantom.public().clone()]);
    let attack = signed(p.clone(), &[&f.dad, &f.toy, &phantom], None);
    assert!(!r.has_quorum(&attack));
    assert!(unauthorized(r.verify_next(attack)));
    // Nor a member-role phone (it would receive every recording), nor a guardian.
    for role in [Role::Member, Role::Guardian] {
        let newcomer = DeviceIdentity::generate(role, &mut f.rng);
        let mut members = r.members().to_vec();
        members.push(newcomer.public().clone());
        let p = RosterProposal::next(r, members).unwrap();
        let attack = signed(p, &[&f.dad, &f.toy, &newcomer], None);
        assert!(unauthorized(r.verify_next(attack)), "{role}");
    }
    // Both toys and the stolen key: the toy counts once, whatever number of toys signed.
    let attack = signed(p.clone(), &[&f.dad, &f.toy, &f.toy2, &phantom], None);
    assert!(unauthorized(r.verify_next(attack)));
    // The same version with the family's quorum (mum and dad) is accepted: the refusal above is
    // the class rule, nothing else.
    r.verify_next(signed(p, &[&f.mum, &f.dad, &phantom], None))
        .unwrap();
}

/// The stolen key and the toy's signature remove mum (the other guardian): refused (a grant).
#[test]
fn t35_roster_stolen_guardian_and_toy_cannot_remove_the_other_guardian() {
    let f = family();
    let r = &f.roster;
    let p = RosterProposal::next(r, ids(&[&f.dad, &f.toy, &f.toy2, &f.gran])).unwrap();
    let change = r.change_to(&p);
    assert_eq!(change.removed(), &[f.mum.public().clone()]);
    assert_eq!(change.class(), ChangeClass::Grant);
    assert!(unauthorized(r.verify_next(signed(
        p.clone(),
        &[&f.dad, &f.toy],
        None
    ))));
    assert!(unauthorized(r.verify_next(signed(
        p.clone(),
        &[&f.dad, &f.toy, &f.toy2],
        None
    ))));
    // Demoting mum to a member is a role change: a grant as well.
    let mum_as_member = toyseal_core::PublicIdentity::new(
        Role::Member,
        *f.mum.public().signing_key(),
        *f.mum.public().agreement_key().as_bytes(),
    )
    .unwrap();
    let mut members = ids(&[&f.dad, &f.toy, &f.toy2, &f.gran]);
    members.push(mum_as_member.clone());
    let demote = RosterProposal::next(r, members).unwrap();
    let change = r.change_to(&demote);
    assert_eq!(
        change.role_changes().collect::<Vec<_>>(),
        vec![(f.mum.public(), &mum_as_member)]
    );
    assert_eq!(change.class(), ChangeClass::Grant);
    assert!(unauthorized(r.verify_next(signed(
        demote,
        &[&f.dad, &f.toy],
        None
    ))));
    // The family itself (mum and dad) may do it.
    r.verify_next(signed(p, &[&f.mum, &f.dad], None)).unwrap();
}

/// The stolen key and the toy's signature replace the recovery key with one the thief holds,
/// or drop it: refused (a grant; and no version may drop it).
#[test]
fn t35_roster_stolen_guardian_and_toy_cannot_replace_or_drop_the_recovery_key() {
    let mut f = family();
    let r = &f.roster;
    let thiefs = RecoveryKey::generate(&mut f.rng).unwrap();
    let p = RosterProposal::next(r, r.members().to_vec())
        .unwrap()
        .with_recovery_key(*thiefs.public())
        .unwrap();
    let change = r.change_to(&p);
    assert_eq!(
        change.recovery_replaced(),
        Some((f.recovery.public(), thiefs.public()))
    );
    assert_eq!(change.class(), ChangeClass::Grant);
    let mut attack = signed(p.clone(), &[&f.dad, &f.toy], None);
    attack.cosign_recovery(&thiefs);
    assert!(!r.has_quorum(&attack));
    assert!(unauthorized(r.verify_next(attack)));
    // Dropping it: a body with r = 0 does not even decode.
    let honest = signed(
        RosterProposal::next(r, r.members().to_vec()).unwrap(),
        &[&f.dad, &f.toy],
        None,
    );
    let bytes = honest.encode();
    let r_at = 8 + 1 + 16 + 8 + 32 + 1 + PublicIdentity::LEN * r.members().len();
    let mut dropped = bytes[..r_at].to_vec();
    dropped.push(0);
    dropped.extend_from_slice(&bytes[r_at + 1 + 32..]);
    assert!(matches!(
        SignedRoster::decode(&dropped),
        Err(Error::NoRecoveryKey)
    ));
    // Dad and the old recovery key may replace it (the new key proves possession).
    let mut ok = signed(p, &[&f.dad], Some(&f.recovery));
    ok.cosign_recovery(&thiefs);
    assert_eq!(r.verify_next(ok).unwrap().recovery_key(), thiefs.public());
}

/// The stolen key and the toy's signature delete the family: refused (the toy never counts for
/// a deletion).
#[test]
fn t35_roster_stolen_guardian_and_toy_cannot_delete_the_family() {
    let f = family();
    let r = &f.roster;
    let mut deletion = FamilyDeletion::new(r);
    deletion.cosign(&f.dad);
    deletion.cosign(&f.toy);
    deletion.cosign(&f.toy2);
    deletion.cosign(&f.gran);
    let deletion = FamilyDeletion::decode(&deletion.encode()).unwrap();
    assert!(matches!(
        r.verify_deletion(&deletion),
        Err(Error::Unauthorized(_))
    ));
    // Two guardians, or a guardian and the recovery key: yes.
    let mut two = FamilyDeletion::new(r);
    two.cosign(&f.mum);
    two.cosign(&f.dad);
    r.verify_deletion(&two).unwrap();
    let mut with_key = FamilyDeletion::new(r);
    with_key.cosign(&f.dad);
    with_key.cosign_recovery(&f.recovery);
    r.verify_deletion(&with_key).unwrap();
}

/// What a guardian and the toy may do: remove a toy, or a member (fewer devices receive).
#[test]
fn t35_roster_guardian_and_toy_may_remove_a_toy_or_a_member() {
    let f = family();
    let r = &f.roster;
    let without_toy2 = RosterProposal::next(r, ids(&[&f.mum, &f.dad, &f.toy, &f.gran])).unwrap();
    assert_eq!(r.change_to(&without_toy2).class(), ChangeClass::Removal);
    let r3 = r
        .verify_next(signed(without_toy2, &[&f.dad, &f.toy], None))
        .unwrap();
    assert!(r3.member(f.toy2.device_id()).is_none());
    let without_gran = RosterProposal::next(&r3, ids(&[&f.mum, &f.dad, &f.toy])).unwrap();
    assert_eq!(r3.change_to(&without_gran).class(), ChangeClass::Removal);
    let r4 = r3
        .verify_next(signed(without_gran, &[&f.mum, &f.toy], None))
        .unwrap();
    assert_eq!(r4.members().len(), 3);
    // But the toy alone may not.
    let p = RosterProposal::next(&r4, ids(&[&f.mum, &f.dad, &f.toy])).unwrap();
    assert!(unauthorized(r4.verify_next(signed(p, &[&f.toy], None))));
}

/// A `member` governs nothing: its signature never counts, in any class.
#[test]
fn t35_roster_a_members_signature_never_counts() {
    let f = family();
    let r = &f.roster;
    let gran = f.gran.device_id();
    for class in [
        ChangeClass::Removal,
        ChangeClass::Grant,
        ChangeClass::Deletion,
    ] {
        assert!(
            !r.quorum_met(class, &[gran, f.dad.device_id()]),
            "{class:?}"
        );
        assert!(
            !r.quorum_met(class, &[gran, f.toy.device_id()]),
            "{class:?}"
        );
        assert!(
            !r.quorum_met(class, &[gran, f.recovery.public().id()]),
            "{class:?}"
        );
    }
    // Removing toy2 with dad and gran: refused (gran does not count), dad and the toy: yes.
    let p = RosterProposal::next(r, ids(&[&f.mum, &f.dad, &f.toy, &f.gran])).unwrap();
    assert!(unauthorized(r.verify_next(signed(
        p.clone(),
        &[&f.dad, &f.gran],
        None
    ))));
    r.verify_next(signed(p, &[&f.dad, &f.toy], None)).unwrap();
}

/// Every row of the quorum table, and nothing else, is a quorum: all 2^6 signer sets over
/// {mum, dad, recovery key, toy, toy2, gran} against a table written out independently of the
/// implementation. One device counts once (a signer listed twice is still one).
#[test]
fn t35_roster_quorum_table_exactly() {
    let f = family();
    let r = &f.roster;
    let who: [(DeviceId, &str); 6] = [
        (f.mum.device_id(), "g"),
        (f.dad.device_id(), "g"),
        (f.recovery.public().id(), "r"),
        (f.toy.device_id(), "t"),
        (f.toy2.device_id(), "t"),
        (f.gran.device_id(), "m"),
    ];
    for set in 0u32..64 {
        let chosen: Vec<(DeviceId, &str)> = (0..6)
            .filter(|i| set & (1 << i) != 0)
            .map(|i| who[i])
            .collect();
        let count = |k: &str| chosen.iter().filter(|(_, w)| *w == k).count();
        let (g, rk, t) = (count("g"), count("r") > 0, count("t") > 0);
        let mut signers: Vec<DeviceId> = chosen.iter().map(|(id, _)| *id).collect();
        // Listing every signer twice changes nothing.
        signers.extend(signers.clone());
        let rows = [
            (
                ChangeClass::Removal,
                g >= 2 || (g >= 1 && rk) || (g >= 1 && t),
            ),
            (ChangeClass::Grant, g >= 2 || (g >= 1 && rk) || (rk && t)),
            (ChangeClass::Deletion, g >= 2 || (g >= 1 && rk)),
        ];
        for (class, expected) in rows {
            assert_eq!(
                r.quorum_met(class, &signers),
                expected,
                "{class:?} set {set:06b}"
            );
        }
    }
}

/// A fork: the thief (alone, or the server) shows a device at version 3 another version 3.
/// Reported as `Fork` by `verify_next`, `advance` and `check_same`; the same version again is a
/// replay, not a fork.
#[test]
fn t35_roster_fork_is_reported() {
    let f = family();
    let r2 = &f.roster;
    let ours = signed(
        RosterProposal::next(r2, ids(&[&f.mum, &f.dad, &f.toy, &f.gran])).unwrap(),
        &[&f.mum, &f.dad],
        None,
    );
    let theirs = signed(
        RosterProposal::next(r2, ids(&[&f.mum, &f.dad, &f.toy, &f.toy2])).unwrap(),
        &[&f.dad, &f.toy],
        None,
    );
    let r3 = r2.verify_next(ours.clone()).unwrap();
    assert!(matches!(
        r3.check_same(&theirs),
        Err(Error::Fork { version: 3 })
    ));
    assert!(matches!(
        r3.verify_next(theirs.clone()),
        Err(Error::Fork { version: 3 })
    ));
    assert!(matches!(
        r3.advance(std::slice::from_ref(&theirs)),
        Err(Error::Fork { version: 3 })
    ));
    assert!(matches!(
        ours.check_same(&theirs),
        Err(Error::Fork { version: 3 })
    ));
    // The same version again, another version number: no fork.
    r3.check_same(&ours).unwrap();
    r3.check_same(r2.signed()).unwrap();
    assert!(matches!(
        r3.verify_next(ours),
        Err(Error::NotNextVersion { .. })
    ));
}
