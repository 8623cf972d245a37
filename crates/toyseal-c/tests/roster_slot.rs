//! The roster survives a reboot through slot Roster: a C toy that verified roster versions,
//! freed and booted again on the same storage, admits the guardians its roster lists (not only
//! the founder) and refuses removed and unknown phones; a corrupt slot fails the boot.
// Test helpers, not library code: a failed step is a failed test.
#![allow(clippy::expect_used)]

mod common;

use common::*;
use std::sync::Arc;
use toyseal_c::*;
use toyseal_core::{DeviceIdentity, OsRng, PublicIdentity, Role};
use toyseal_pairing::{Endpoint, Phone, PhoneEvent, Timestamp};
use toyseal_roster::{Roster, RosterProposal};

/// The founder (in session) proposes the next version with `members`, signed with the
/// family's recovery key (a quorum of every class) and co-signed by `adds` (proof of
/// possession); the C toy applies it. Returns the verified version.
fn next_version(
    f: &mut Family,
    members: Vec<PublicIdentity>,
    adds: &[&DeviceIdentity],
    now: u64,
) -> Roster {
    let mut next = RosterProposal::next(&f.roster, members)
        .expect("proposal")
        .sign(&f.parent);
    next.cosign_recovery(&f.recovery);
    for d in adds {
        next.cosign(d);
    }
    f.phone
        .push_rosters(std::slice::from_ref(&next), Timestamp::from_millis(now))
        .expect("push");
    let (_, te) = pump(&mut f.phone, &mut f.toy, now);
    let version = next.proposal().version();
    // Complete already (a guardian and the recovery key): the toy applies it as signed, with
    // no confirmation asked and nothing signed by the toy.
    assert!(
        !te.iter()
            .any(|e| e.kind == toyseal_event_kind::ConfirmationRequested)
    );
    assert!(
        te.iter()
            .any(|e| e.kind == toyseal_event_kind::RosterApplied && e.roster_version == version)
    );
    let verified = f.roster.verify_next(next).expect("verifies");
    f.roster = verified.clone();
    verified
}

fn toy_public(roster: &Roster) -> PublicIdentity {
    roster
        .members()
        .iter()
        .find(|m| m.role() == Role::Toy)
        .cloned()
        .expect("the toy is a member")
}

/// Frees the toy and boots a new handle on a copy of its flash (any printed code: a toy
/// with a family admits no one with it).
fn reboot(toy: CToy) -> Result<CToy, toyseal_result> {
    let slots = toy.flash.slots.clone();
    drop(toy);
    CToy::boot(
        "48151623",
        Box::new(Flash {
            slots,
            ..Flash::default()
        }),
    )
}

fn roster_version(toy: &CToy) -> Result<u64, toyseal_result> {
    let mut v = 0;
    // SAFETY: live handle; `v` writable.
    match unsafe { toyseal_toy_roster_version(toy.handle, &mut v) } {
        toyseal_result::Ok => Ok(v),
        other => Err(other),
    }
}

/// Whether `who` gets a session with the toy (then both sides drop the link).
fn admitted(toy: &mut CToy, who: &Arc<DeviceIdentity>, toy_id: &PublicIdentity, now: u64) -> bool {
    let mut phone = Phone::new(who.clone());
    phone.open_session(toy_id, &mut OsRng).expect("session");
    let (pe, te) = pump(&mut phone, toy, now);
    let phone_side = pe.iter().any(|e| matches!(e, PhoneEvent::SessionOpened(_)));
    let toy_side = te.iter().any(|e| {
        e.kind == toyseal_event_kind::SessionOpened && e.device_id == *who.device_id().as_bytes()
    });
    assert_eq!(phone_side, toy_side, "both sides agree");
    phone.handle_disconnect();
    toy.disconnect();
    toy_side
}

#[test]
fn a_rebooted_toy_restores_its_roster_and_admits_the_second_guardian() {
    let mut f = family();
    let toy_id = toy_public(&f.roster);
    let dad = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    let members = vec![
        f.parent.public().clone(),
        dad.public().clone(),
        toy_id.clone(),
    ];
    let v2 = next_version(&mut f, members, &[&dad], 40);
    assert_eq!(
        f.toy.flash.slots[toyseal_slot::Roster as usize],
        v2.signed().encode(),
        "the slot holds the version the toy applied"
    );
    assert!(
        v2.signed().encode().len() > 256,
        "bigger than any other slot"
    );

    let Family { toy, .. } = f;
    let mut again = reboot(toy).expect("reboot");
    assert_eq!(roster_version(&again), Ok(2));
    assert!(
        admitted(&mut again, &dad, &toy_id, 50),
        "the second guardian, never paired with this toy, is admitted by the restored roster"
    );
    let stranger = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    assert!(!admitted(&mut again, &stranger, &toy_id, 60));
    // Pairing stays closed: the toy has a family.
    // SAFETY: live handle.
    let r = unsafe { toyseal_toy_press_pair_button(again.handle, 70) };
    assert_eq!(r, toyseal_result::NotPairable);
}

#[test]
fn a_phone_removed_before_the_reboot_stays_removed() {
    let mut f = family();
    let toy_id = toy_public(&f.roster);
    let dad = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    let mum = f.parent.public().clone();
    next_version(
        &mut f,
        vec![mum.clone(), dad.public().clone(), toy_id.clone()],
        &[&dad],
        40,
    );
    let v3 = next_version(&mut f, vec![mum, toy_id.clone()], &[], 50);
    assert_eq!(v3.departed().len(), 1);
    let parent = f.parent.clone();
    let Family { toy, .. } = f;
    let mut again = reboot(toy).expect("reboot");
    assert_eq!(roster_version(&again), Ok(3));
    assert!(!admitted(&mut again, &dad, &toy_id, 60), "removed in v3");
    assert!(admitted(&mut again, &parent, &toy_id, 70));
}

#[test]
fn a_corrupt_or_foreign_roster_slot_fails_the_boot_with_storage() {
    let f = family();
    let good = f.toy.flash.slots.clone();
    assert!(!good[toyseal_slot::Roster as usize].is_empty());
    let other = family();
    let foreign = other.toy.flash.slots[toyseal_slot::Roster as usize].clone();
    drop(other);
    let boot = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut slots = good.clone();
        edit(&mut slots[toyseal_slot::Roster as usize]);
        CToy::boot(
            "48151623",
            Box::new(Flash {
                slots,
                ..Flash::default()
            }),
        )
        .map(|t| roster_version(&t))
    };
    assert_eq!(boot(&|_| {}), Ok(Ok(1)), "the untouched slot restores");
    // A flipped bit in the last signature, truncation, garbage, another toy's roster.
    let flip = |s: &mut Vec<u8>| {
        if let Some(b) = s.last_mut() {
            *b ^= 1;
        }
    };
    assert_eq!(boot(&flip).err(), Some(toyseal_result::Storage));
    assert_eq!(
        boot(&|s| s.truncate(s.len() / 2)).err(),
        Some(toyseal_result::Storage)
    );
    assert_eq!(
        boot(&|s| *s = b"not a roster".to_vec()).err(),
        Some(toyseal_result::Storage)
    );
    assert_eq!(
        boot(&|s| *s = foreign.clone()).err(),
        Some(toyseal_result::Storage)
    );
    // Larger than the slot's cap: the load callback fails, and so does the boot.
    assert_eq!(
        boot(&|s| *s = vec![0; TOYSEAL_ROSTER_SLOT_CAP + 1]).err(),
        Some(toyseal_result::Storage)
    );
}

#[test]
fn a_roster_that_cannot_be_stored_is_reported_and_still_applied() {
    let mut f = family();
    let toy_id = toy_public(&f.roster);
    let dad = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    let v1_bytes = f.toy.flash.slots[toyseal_slot::Roster as usize].clone();
    f.toy.flash.fail_store = Some(toyseal_slot::Roster);
    let next = {
        let mut n = RosterProposal::next(
            &f.roster,
            vec![f.parent.public().clone(), dad.public().clone(), toy_id],
        )
        .expect("proposal")
        .sign(&f.parent);
        n.cosign_recovery(&f.recovery);
        n.cosign(&dad);
        n
    };
    f.phone
        .push_rosters(&[next], Timestamp::from_millis(40))
        .expect("push");
    // Complete already (the founder and the recovery key): the frame that carries it applies
    // it, and that call reports STORAGE.
    let mut results = Vec::new();
    while let Some(frame) = f.phone.poll_transmit() {
        results.push(f.toy.frame(&frame, 40));
    }
    assert_eq!(
        results.last(),
        Some(&toyseal_result::Storage),
        "{results:?}"
    );
    assert!(
        f.toy
            .events()
            .iter()
            .any(|e| e.kind == toyseal_event_kind::RosterApplied && e.roster_version == 2)
    );
    assert_eq!(roster_version(&f.toy), Ok(2));
    assert_eq!(f.toy.flash.slots[toyseal_slot::Roster as usize], v1_bytes);
}

#[test]
fn the_confirmation_calls_expire_decline_and_refuse_misuse() {
    let mut f = family();
    let toy_id = toy_public(&f.roster);
    // SAFETY: live handle (all four calls).
    unsafe {
        assert_eq!(
            toyseal_toy_confirm(f.toy.handle, 50),
            toyseal_result::Misuse
        );
        assert_eq!(
            toyseal_toy_decline(f.toy.handle, 50),
            toyseal_result::Misuse
        );
        for bad in [0, 65_536] {
            assert_eq!(
                toyseal_toy_set_confirmation_window(f.toy.handle, bad),
                toyseal_result::InvalidArgument
            );
        }
        assert_eq!(
            toyseal_toy_set_confirmation_window(f.toy.handle, 5),
            toyseal_result::Ok
        );
    }
    // Gran's phone (a member) joins with the recovery key; removing her is the change the
    // founder and the toy may make together, so that is what the toy asks its user about.
    let gran = Arc::new(DeviceIdentity::generate(Role::Member, &mut OsRng));
    let with_gran = vec![
        f.parent.public().clone(),
        gran.public().clone(),
        toy_id.clone(),
    ];
    next_version(&mut f, with_gran, &[&gran], 55);
    let next = RosterProposal::next(&f.roster, vec![f.parent.public().clone(), toy_id])
        .expect("proposal")
        .sign(&f.parent);
    for decline in [false, true] {
        f.phone
            .push_rosters(std::slice::from_ref(&next), Timestamp::from_millis(60))
            .expect("push");
        let (_, te) = pump(&mut f.phone, &mut f.toy, 60);
        let ask = te
            .iter()
            .find(|e| e.kind == toyseal_event_kind::ConfirmationRequested)
            .expect("asked");
        assert_eq!(ask.expires_ms, 60 + 5_000);
        assert_eq!((ask.added, ask.removed, ask.changed), (0, 1, 0));
        let mut line = toyseal_change_entry {
            change: 0,
            role: 0,
            new_role: 0,
            device_id: [0; 16],
        };
        // SAFETY: live handle; `line` writable.
        unsafe {
            assert_eq!(
                toyseal_toy_confirmation_entry(f.toy.handle, 0, &mut line),
                toyseal_result::Ok
            );
            assert_eq!(
                toyseal_toy_confirmation_entry(f.toy.handle, 1, &mut line),
                toyseal_result::InvalidArgument
            );
        }
        assert_eq!((line.change, line.role), (2, Role::Member.to_byte()));
        assert_eq!(&line.device_id, gran.device_id().as_bytes());
        let (kind, answer) = if decline {
            // SAFETY: live handle.
            let r = unsafe { toyseal_toy_decline(f.toy.handle, 61) };
            assert_eq!(r, toyseal_result::Ok);
            (
                toyseal_event_kind::ConfirmationDeclined,
                toyseal_pairing::ToyAnswer::Declined,
            )
        } else {
            // SAFETY: live handle.
            let r = unsafe { toyseal_toy_handle_timeout(f.toy.handle, 60 + 5_000) };
            assert_eq!(r, toyseal_result::Ok);
            (
                toyseal_event_kind::ConfirmationExpired,
                toyseal_pairing::ToyAnswer::Expired,
            )
        };
        let (pe, te) = pump(&mut f.phone, &mut f.toy, 5_100);
        assert!(te.iter().any(|e| e.kind == kind), "{te:?}");
        assert!(pe.iter().any(|e| matches!(
            e,
            PhoneEvent::ToyAnswered { version: Some(3), answer: a } if *a == answer
        )));
        assert!(!pe.iter().any(|e| matches!(e, PhoneEvent::Rosters(_))));
        assert_eq!(roster_version(&f.toy), Ok(2));
    }
}
