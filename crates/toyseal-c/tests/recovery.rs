//! THREATS.md T39 through the C ABI (issue 15 item 7, docs/spec/pairing.md §7.2): the family
//! lost its only phone. The long press at the C toy (`toyseal_toy_open_recovery_window`) opens
//! the recovery window; a new Rust phone pairs with the printed code, proves the recovery key,
//! pushes version 2 signed by the key; the C toy asks its user, and only its confirmation
//! applies it — stored in slot Roster, so a rebooted toy admits the new phone and refuses the
//! lost one. Without the window, or without the confirmation, nothing changes.
// Test helpers, not library code: a failed step is a failed test.
#![allow(clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::sync::Arc;
use toyseal_c::*;
use toyseal_core::{DeviceIdentity, OsRng, PublicIdentity, Role};
use toyseal_pairing::{
    Endpoint, PairingExpectations, Phone, PhoneEvent, PhoneFailure, RecoveryAnswer, Timestamp,
    ToyAnswer,
};
use toyseal_roster::{Roster, RosterProposal, SignedRoster};

fn toy_public(roster: &Roster) -> PublicIdentity {
    roster
        .members()
        .iter()
        .find(|m| m.role() == Role::Toy)
        .cloned()
        .expect("the toy is a member")
}

/// Frees the toy and boots a new handle on a copy of its flash (the same printed code).
fn reboot(toy: CToy, code: &str) -> Result<CToy, toyseal_result> {
    let slots = toy.flash.slots.clone();
    drop(toy);
    CToy::boot(
        code,
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

/// The long press.
fn long_press(toy: &mut CToy, now: u64) -> toyseal_result {
    // SAFETY: live handle.
    unsafe { toyseal_toy_open_recovery_window(toy.handle, now) }
}

fn recovery_window(toy: &CToy) -> Result<u64, toyseal_result> {
    let mut at = 0;
    // SAFETY: live handle; `at` writable.
    match unsafe { toyseal_toy_recovery_window(toy.handle, &mut at) } {
        toyseal_result::Ok => Ok(at),
        other => Err(other),
    }
}

fn entry(toy: &CToy, index: u32) -> Result<toyseal_change_entry, toyseal_result> {
    let mut e = toyseal_change_entry {
        change: 0,
        role: 0,
        new_role: 0,
        device_id: [0; 16],
    };
    // SAFETY: live handle; `e` writable.
    match unsafe { toyseal_toy_confirmation_entry(toy.handle, index, &mut e) } {
        toyseal_result::Ok => Ok(e),
        other => Err(other),
    }
}

fn has(te: &[toyseal_event], kind: toyseal_event_kind) -> bool {
    te.iter().any(|e| e.kind == kind)
}

/// The new phone tries the printed code; whether it paired (both sides agree).
fn pair_printed(phone: &mut Phone, f: &mut Family, now: u64) -> (bool, Vec<PhoneEvent>) {
    phone
        .pair(&f.code, PairingExpectations::default(), &mut OsRng)
        .expect("pair");
    let (pe, te) = pump(phone, &mut f.toy, now);
    let phone_side = pe.iter().any(|e| matches!(e, PhoneEvent::Paired(_)));
    let toy_side = te.iter().any(|e| {
        e.kind == toyseal_event_kind::Paired
            && e.device_id == *phone.identity().device_id().as_bytes()
    });
    assert_eq!(phone_side, toy_side, "both sides agree");
    assert!(
        !has(&te, toyseal_event_kind::ConfirmationRequested),
        "no founder is asked for: the toy has a family"
    );
    phone.handle_disconnect();
    f.toy.disconnect();
    (phone_side, pe)
}

/// Version 2 of the recovering family: the new phone as guardian and the toy (the lost phone
/// removed), signed by the recovery key and by the new phone.
fn recovery_version(f: &Family, new_phone: &DeviceIdentity, head: &Roster) -> SignedRoster {
    let toy = toy_public(head);
    let mut v2 = RosterProposal::next(head, vec![new_phone.public().clone(), toy])
        .expect("proposal")
        .sign_with_recovery(&f.recovery);
    v2.cosign(new_phone);
    v2
}

/// The parent lost their phone: a new phone pairs in the recovery window, opens a session,
/// proves the recovery key and pushes version 2; the C toy asks its user. Returns the new
/// phone (in session) and its identity; the toy's events of the push are checked here.
fn up_to_the_recovery_confirmation(f: &mut Family, now: u64) -> (Phone, Arc<DeviceIdentity>) {
    let toy_id = toy_public(&f.roster);
    let founder_slot = f.toy.flash.slots[toyseal_slot::Founder as usize].clone();
    let v1_slot = f.toy.flash.slots[toyseal_slot::Roster as usize].clone();
    // Mum's phone is lost.
    f.phone.handle_disconnect();
    f.toy.disconnect();
    let new_id = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    let mut phone = Phone::new(new_id.clone());

    assert_eq!(long_press(&mut f.toy, now), toyseal_result::Ok);
    assert_eq!(recovery_window(&f.toy), Ok(now + 300_000));
    let (paired, _) = pair_printed(&mut phone, f, now + 1);
    assert!(paired, "the printed code pairs in the recovery window");
    assert_eq!(
        f.toy.flash.slots[toyseal_slot::Founder as usize],
        founder_slot,
        "a recovery candidate is never recorded as founder"
    );
    assert_eq!(f.toy.flash.slots[toyseal_slot::Roster as usize], v1_slot);

    phone.open_session(&toy_id, &mut OsRng).expect("session");
    let (pe, _) = pump(&mut phone, &mut f.toy, now + 2);
    assert!(pe.iter().any(|e| matches!(e, PhoneEvent::SessionOpened(_))));

    phone
        .prove_recovery(&f.recovery, Timestamp::from_millis(now + 3))
        .expect("proof");
    let (pe, te) = pump(&mut phone, &mut f.toy, now + 3);
    assert!(
        te.iter()
            .any(|e| e.kind == toyseal_event_kind::RecoveryProved
                && e.device_id == *new_id.device_id().as_bytes())
    );
    assert!(
        pe.iter()
            .any(|e| *e == PhoneEvent::RecoveryAnswered(RecoveryAnswer::Proved))
    );
    let head = pe
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Rosters(r) => r.into_iter().next(),
            _ => None,
        })
        .expect("the toy hands over its head");
    let head = Roster::verify_founding(head).expect("v1");
    assert_eq!(head, f.roster);

    let v2 = recovery_version(f, &new_id, &head);
    phone
        .push_rosters(&[v2], Timestamp::from_millis(now + 4))
        .expect("push");
    let (pe, te) = pump(&mut phone, &mut f.toy, now + 4);
    let ask = te
        .iter()
        .find(|e| e.kind == toyseal_event_kind::ConfirmationRequested)
        .expect("the toy asks its user a second time");
    assert_eq!(ask.confirmation, toyseal_confirmation::Recovery);
    assert_eq!(&ask.device_id, new_id.device_id().as_bytes());
    assert_eq!(ask.roster_version, 2);
    assert_eq!((ask.added, ask.removed, ask.changed), (1, 1, 0));
    assert_eq!(ask.expires_ms, now + 4 + 30_000);
    let added = entry(&f.toy, 0).expect("line 0");
    assert_eq!((added.change, added.role), (1, Role::Guardian.to_byte()));
    assert_eq!(&added.device_id, new_id.device_id().as_bytes());
    let removed = entry(&f.toy, 1).expect("line 1");
    assert_eq!(
        (removed.change, removed.role),
        (2, Role::Guardian.to_byte())
    );
    assert_eq!(&removed.device_id, f.parent.device_id().as_bytes());
    assert_eq!(
        entry(&f.toy, 2).err(),
        Some(toyseal_result::InvalidArgument)
    );
    assert!(
        !pe.iter().any(|e| matches!(e, PhoneEvent::Rosters(_))),
        "nothing signed yet"
    );
    assert_eq!(f.toy.flash.slots[toyseal_slot::Roster as usize], v1_slot);
    assert_eq!(roster_version(&f.toy), Ok(1));
    (phone, new_id)
}

#[test]
fn t39_c_toy_recovers_the_family_with_the_recovery_key_and_a_confirmation_at_the_toy() {
    let mut f = family();
    let toy_id = toy_public(&f.roster);
    let code = f.code.digits().to_owned();
    let (mut phone, new_id) = up_to_the_recovery_confirmation(&mut f, 1_000);

    // The deliberate gesture at the toy: co-signed, applied, stored, sent back.
    assert_eq!(f.toy.confirm(6_000), toyseal_result::Ok);
    let (pe, te) = pump(&mut phone, &mut f.toy, 6_000);
    assert!(
        te.iter()
            .any(|e| e.kind == toyseal_event_kind::RosterApplied && e.roster_version == 2)
    );
    assert!(has(&te, toyseal_event_kind::RecoveryWindowClosed));
    assert_eq!(recovery_window(&f.toy), Err(toyseal_result::Misuse));
    assert!(pe.iter().any(|e| *e
        == PhoneEvent::ToyAnswered {
            version: Some(2),
            answer: ToyAnswer::Confirmed
        }));
    let back = pe
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Rosters(r) => r.into_iter().next(),
            _ => None,
        })
        .expect("the co-signed version 2");
    let v2 = f.roster.verify_next(back).expect("verifies");
    assert!(v2.contains(new_id.public()));
    assert!(!v2.contains(f.parent.public()));
    assert_eq!(
        f.toy.flash.slots[toyseal_slot::Roster as usize],
        v2.signed().encode(),
        "the applied recovery version is in slot Roster"
    );
    assert_eq!(roster_version(&f.toy), Ok(2));
    phone.handle_disconnect();
    f.toy.disconnect();

    // A reboot: the toy comes back with version 2.
    let parent = f.parent.clone();
    let Family { toy, .. } = f;
    let mut again = reboot(toy, &code).expect("reboot");
    assert_eq!(roster_version(&again), Ok(2));
    assert!(
        admitted(&mut again, &new_id, &toy_id, 10_000),
        "the new phone is a guardian"
    );
    assert!(
        !admitted(&mut again, &parent, &toy_id, 10_100),
        "the lost phone is refused"
    );
    // The printed code admits no one again, and the toy stays closed to pairing.
    // SAFETY: live handle.
    let r = unsafe { toyseal_toy_press_pair_button(again.handle, 10_200) };
    assert_eq!(r, toyseal_result::NotPairable);
}

#[test]
fn t39_c_toy_without_the_recovery_window_refuses_the_printed_code_and_the_new_phone() {
    let mut f = family();
    let toy_id = toy_public(&f.roster);
    let slots = f.toy.flash.slots.clone();
    f.phone.handle_disconnect();
    f.toy.disconnect();
    let new_id = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    assert!(!admitted(&mut f.toy, &new_id, &toy_id, 100));
    let mut phone = Phone::new(new_id.clone());
    let (paired, pe) = pair_printed(&mut phone, &mut f, 200);
    assert!(!paired);
    assert!(
        pe.iter()
            .any(|e| matches!(e, PhoneEvent::PairingFailed(PhoneFailure::NotPairable)))
    );
    assert_eq!(recovery_window(&f.toy), Err(toyseal_result::Misuse));

    // A window that expired admits no one either.
    assert_eq!(long_press(&mut f.toy, 1_000), toyseal_result::Ok);
    // SAFETY: live handle.
    let r = unsafe { toyseal_toy_handle_timeout(f.toy.handle, 1_000 + 300_001) };
    assert_eq!(r, toyseal_result::Ok);
    assert!(has(
        &f.toy.events(),
        toyseal_event_kind::RecoveryWindowClosed
    ));
    let mut phone = Phone::new(new_id.clone());
    let (paired, _) = pair_printed(&mut phone, &mut f, 301_002);
    assert!(!paired);
    assert!(!admitted(&mut f.toy, &new_id, &toy_id, 301_003));

    // A proof by another key closes the window: RecoveryRefused.
    assert_eq!(long_press(&mut f.toy, 400_000), toyseal_result::Ok);
    let mut phone = Phone::new(new_id.clone());
    let (paired, _) = pair_printed(&mut phone, &mut f, 400_001);
    assert!(paired);
    phone.open_session(&toy_id, &mut OsRng).expect("session");
    pump(&mut phone, &mut f.toy, 400_002);
    let other = toyseal_roster::RecoveryKey::generate(&mut OsRng).expect("key");
    phone
        .prove_recovery(&other, Timestamp::from_millis(400_003))
        .expect("proof");
    let (_, te) = pump(&mut phone, &mut f.toy, 400_003);
    assert!(has(&te, toyseal_event_kind::RecoveryRefused));
    assert!(has(&te, toyseal_event_kind::RecoveryWindowClosed));
    assert!(!has(&te, toyseal_event_kind::RecoveryProved));
    phone.handle_disconnect();
    f.toy.disconnect();

    assert_eq!(f.toy.flash.slots, slots, "nothing stored");
    assert_eq!(roster_version(&f.toy), Ok(1));
    assert!(admitted(&mut f.toy, &f.parent.clone(), &toy_id, 400_100));
    assert!(!admitted(&mut f.toy, &new_id, &toy_id, 400_200));
}

#[test]
fn t39_c_toy_recovery_pairing_rejected_at_the_sas_leaves_the_founder_slot_alone() {
    let f = family();
    let toy_id = toy_public(&f.roster);
    let code = f.code.clone();
    let Family { toy, parent, .. } = f;
    // Rebooted: the toy runs from its roster (no founder in memory).
    let mut toy = reboot(toy, code.digits()).expect("reboot");
    let founder = toy.flash.slots[toyseal_slot::Founder as usize].clone();
    let roster = toy.flash.slots[toyseal_slot::Roster as usize].clone();
    assert!(!founder.is_empty());
    let new_id = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    let mut phone = Phone::new(new_id.clone());
    assert_eq!(long_press(&mut toy, 1_000), toyseal_result::Ok);
    phone
        .pair(&code, PairingExpectations::default(), &mut OsRng)
        .expect("pair");
    let (pe, _) = pump(&mut phone, &mut toy, 1_001);
    assert!(pe.iter().any(|e| matches!(e, PhoneEvent::Paired(_))));
    // The parent saw different codes: the phone aborts, the toy undoes the pairing (and
    // counts a failed attempt).
    phone.reject_sas().expect("reject");
    let (_, te) = pump(&mut phone, &mut toy, 1_002);
    assert!(has(&te, toyseal_event_kind::PairingFailed));
    phone.handle_disconnect();
    toy.disconnect();
    assert_eq!(
        toy.flash.slots[toyseal_slot::Founder as usize],
        founder,
        "slot Founder untouched"
    );
    assert_eq!(toy.flash.slots[toyseal_slot::Roster as usize], roster);
    assert!(
        !admitted(&mut toy, &new_id, &toy_id, 1_100),
        "the rejected candidate gets no session"
    );
    let mut again = reboot(toy, code.digits()).expect("reboot");
    assert_eq!(roster_version(&again), Ok(1));
    assert!(admitted(&mut again, &parent, &toy_id, 2_000));
}

#[test]
fn t39_c_toy_recovery_without_the_confirmation_expires_and_stores_nothing() {
    let mut f = family();
    let toy_id = toy_public(&f.roster);
    let code = f.code.digits().to_owned();
    let slots = f.toy.flash.slots.clone();
    let (mut phone, new_id) = up_to_the_recovery_confirmation(&mut f, 1_000);

    // Nobody confirms at the toy within 30 s.
    // SAFETY: live handle.
    let r = unsafe { toyseal_toy_handle_timeout(f.toy.handle, 1_004 + 30_001) };
    assert_eq!(r, toyseal_result::Ok);
    let (pe, mut te) = pump(&mut phone, &mut f.toy, 1_004 + 30_001);
    te.extend(f.toy.events());
    assert!(has(&te, toyseal_event_kind::ConfirmationExpired));
    assert!(has(&te, toyseal_event_kind::RecoveryWindowClosed));
    assert!(!has(&te, toyseal_event_kind::RosterApplied));
    assert!(!pe.iter().any(|e| matches!(e, PhoneEvent::Rosters(_))));
    assert_eq!(f.toy.confirm(31_100), toyseal_result::Misuse, "too late");
    assert_eq!(f.toy.flash.slots, slots, "nothing stored");
    assert_eq!(roster_version(&f.toy), Ok(1));
    phone.handle_disconnect();
    f.toy.disconnect();

    let parent = f.parent.clone();
    let Family { toy, .. } = f;
    let mut again = reboot(toy, &code).expect("reboot");
    assert_eq!(roster_version(&again), Ok(1));
    assert!(!admitted(&mut again, &new_id, &toy_id, 40_000));
    assert!(admitted(&mut again, &parent, &toy_id, 40_100));
}

#[test]
fn t39_c_toy_recovery_window_setters_and_misuse() {
    let mut f = family();
    // SAFETY: live handle.
    unsafe {
        assert_eq!(
            toyseal_toy_set_recovery_window(f.toy.handle, 0),
            toyseal_result::InvalidArgument
        );
        assert_eq!(
            toyseal_toy_set_recovery_window(f.toy.handle, 65_536),
            toyseal_result::InvalidArgument
        );
        assert_eq!(
            toyseal_toy_set_recovery_window(f.toy.handle, 60),
            toyseal_result::Ok
        );
        assert_eq!(
            toyseal_toy_set_recovery_window(std::ptr::null_mut(), 60),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_open_recovery_window(std::ptr::null_mut(), 0),
            toyseal_result::NullArgument
        );
        assert_eq!(
            toyseal_toy_recovery_window(f.toy.handle, std::ptr::null_mut()),
            toyseal_result::NullArgument
        );
    }
    assert_eq!(long_press(&mut f.toy, 5_000), toyseal_result::Ok);
    assert_eq!(recovery_window(&f.toy), Ok(65_000));
    // No confirmation pending: no recovery summary lines.
    assert_eq!(entry(&f.toy, 0).err(), Some(toyseal_result::Misuse));

    // Before roster version 1 there is no family to recover: the pairing button instead.
    let fresh = CToy::boot("48151623", Box::default()).expect("boot");
    let mut fresh = fresh;
    assert_eq!(long_press(&mut fresh, 0), toyseal_result::NotPairable);
}
