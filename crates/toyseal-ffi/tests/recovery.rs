//! Recovery through the exported API (docs/spec/pairing.md §7.2, THREATS.md T39): a family
//! that lost its only phone opens the toy's recovery window, pairs a new phone with the
//! printed code, proves the printed recovery key in its session, and replaces the lost phone
//! with a version signed by the key that the toy co-signs after a confirmation at the toy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use toyseal_ffi::{
    Identity, KeyStore, Phone, PhoneEvent, RecoveryAnswer, RecoveryKey, Role, Roster,
    RosterProposal, SignedRoster, SimulatedToy, ToyAnswer, ToysealError, generate_family_id,
};

const NOW: u64 = 1_000;

#[derive(Default)]
struct MemoryKeyStore(Mutex<HashMap<String, String>>);

impl KeyStore for MemoryKeyStore {
    fn load_secret_key_text(&self, name: String) -> Result<Option<String>, ToysealError> {
        Ok(self.0.lock().unwrap().get(&name).cloned())
    }
    fn store_secret_key_text(&self, name: String, text: String) -> Result<(), ToysealError> {
        self.0.lock().unwrap().insert(name, text);
        Ok(())
    }
    fn delete(&self, name: String) -> Result<bool, ToysealError> {
        Ok(self.0.lock().unwrap().remove(&name).is_some())
    }
}

/// A new guardian identity (each with its own key store).
fn guardian() -> Arc<Identity> {
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::default());
    Identity::load_or_generate(store, "phone".into(), Role::Guardian).unwrap()
}

fn pump(phone: &Phone, toy: &SimulatedToy, toy_frames: Vec<Vec<u8>>) -> Vec<PhoneEvent> {
    for f in toy_frames {
        phone.handle_frame(f, NOW).unwrap();
    }
    let mut events = Vec::new();
    loop {
        let mut moved = false;
        while let Some(frame) = phone.poll_transmit().unwrap() {
            moved = true;
            for reply in toy.handle_frame(frame, NOW).unwrap() {
                phone.handle_frame(reply, NOW).unwrap();
            }
        }
        while let Some(e) = phone.poll_event().unwrap() {
            events.push(e);
        }
        if !moved {
            return events;
        }
    }
}

fn rosters(events: &[PhoneEvent]) -> Vec<Arc<SignedRoster>> {
    events
        .iter()
        .filter_map(|e| match e {
            PhoneEvent::Rosters { rosters } => Some(rosters.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn recovery_answers(events: &[PhoneEvent]) -> Vec<RecoveryAnswer> {
    events
        .iter()
        .filter_map(|e| match e {
            PhoneEvent::RecoveryAnswered { answer } => Some(*answer),
            _ => None,
        })
        .collect()
}

fn reconnect(phone: &Phone, toy: &SimulatedToy) {
    toy.disconnect().unwrap();
    phone.handle_disconnect().unwrap();
}

/// Mum's phone founds the family with the toy and a printed recovery key; returns the toy,
/// the key, version 1 and mum's identity.
fn family() -> (
    Arc<SimulatedToy>,
    Arc<RecoveryKey>,
    Arc<Roster>,
    Arc<Identity>,
) {
    let mum = guardian();
    let phone = Phone::new(mum.clone()).unwrap();
    let toy = SimulatedToy::new().unwrap();
    toy.press_pair_button(NOW).unwrap();
    phone.pair(toy.printed_code()).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PhoneEvent::Paired { .. }))
    );
    reconnect(&phone, &toy);
    phone.open_session(toy.public_key()).unwrap();
    pump(&phone, &toy, Vec::new());
    let recovery = RecoveryKey::generate().unwrap();
    let v1 = RosterProposal::founding(
        generate_family_id(),
        vec![mum.public_key(), toy.public_key()],
        recovery.clone(),
    )
    .unwrap()
    .sign(mum.clone())
    .cosign_recovery(recovery.clone());
    phone.push_rosters(vec![v1], NOW).unwrap();
    let back = rosters(&pump(&phone, &toy, Vec::new()));
    let v1 = Roster::verify_founding(back[0].clone()).unwrap();
    reconnect(&phone, &toy);
    (toy, recovery, v1, mum)
}

#[test]
fn a_new_phone_proves_the_recovery_key_and_replaces_the_lost_one() {
    let (toy, recovery, v1, mum) = family();
    let new = guardian();
    let phone = Phone::new(new.clone()).unwrap();
    // Without a session there is nothing to prove over.
    assert!(phone.prove_recovery(recovery.clone(), NOW).is_err());

    // The long press at the toy; the new phone pairs with the printed code and opens a session.
    toy.open_recovery_window(NOW).unwrap();
    phone.pair(toy.printed_code()).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PhoneEvent::Paired { .. })),
        "{events:?}"
    );
    reconnect(&phone, &toy);
    phone.open_session(toy.public_key()).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PhoneEvent::SessionOpened { .. })),
        "{events:?}"
    );

    // The parent scans the printed key back; the phone proves it over this session.
    let scanned = RecoveryKey::from_printable(recovery.export_printable().unwrap()).unwrap();
    phone.prove_recovery(scanned.clone(), NOW).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert_eq!(recovery_answers(&events), vec![RecoveryAnswer::Proved]);
    let head = rosters(&events);
    assert_eq!(head.len(), 1);
    assert_eq!(head[0].encode(), v1.signed().encode());

    // Version 2: the new phone and the toy, signed by the key and the new phone.
    let held = Roster::verify_founding(head[0].clone()).unwrap();
    let v2 = RosterProposal::next(held, vec![new.public_key(), toy.public_key()])
        .unwrap()
        .sign_with_recovery(scanned)
        .cosign(new.clone());
    phone.push_rosters(vec![v2], NOW).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert!(
        events.iter().any(|e| matches!(
            e,
            PhoneEvent::AwaitingConfirmation {
                version: Some(2),
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            PhoneEvent::ToyAnswered {
                version: Some(2),
                answer: ToyAnswer::Confirmed
            }
        )),
        "{events:?}"
    );
    let back = rosters(&events);
    assert_eq!(back.len(), 1);
    let v2 = v1.verify_next(back[0].clone()).unwrap();
    let members: Vec<String> = v2.members().iter().map(|m| m.device_id()).collect();
    assert!(members.contains(&new.device_id()));
    assert!(!members.contains(&mum.device_id()));
    assert_eq!(toy.roster().unwrap().unwrap().version(), 2);
}

#[test]
fn a_proof_with_another_key_is_refused() {
    let (toy, _recovery, _v1, _mum) = family();
    let new = guardian();
    let phone = Phone::new(new).unwrap();
    toy.open_recovery_window(NOW).unwrap();
    phone.pair(toy.printed_code()).unwrap();
    pump(&phone, &toy, Vec::new());
    reconnect(&phone, &toy);
    phone.open_session(toy.public_key()).unwrap();
    pump(&phone, &toy, Vec::new());
    let wrong = RecoveryKey::generate().unwrap();
    phone.prove_recovery(wrong, NOW).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert_eq!(recovery_answers(&events), vec![RecoveryAnswer::Refused]);
    assert!(rosters(&events).is_empty());
    assert_eq!(toy.roster().unwrap().unwrap().version(), 1);
}

#[test]
fn a_guardians_ordinary_session_has_no_recovery_window() {
    let (toy, recovery, _v1, mum) = family();
    let phone = Phone::new(mum).unwrap();
    phone.open_session(toy.public_key()).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PhoneEvent::SessionOpened { .. })),
        "{events:?}"
    );
    phone.prove_recovery(recovery, NOW).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert_eq!(recovery_answers(&events), vec![RecoveryAnswer::Closed]);
}
