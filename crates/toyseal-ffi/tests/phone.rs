//! The exported API from Rust, the way the bindings call it: a phone pairs with the in-process
//! toy, founds the family, opens the toy's recording (whole and streamed) and refuses a
//! tampered one. The Python and Kotlin suites (tests/python, tests/kotlin) run the same flows
//! through the generated bindings in `.ci/run`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use toyseal_ffi::{
    EnvelopeMetadata, Identity, KeyStore, Phone, PhoneEvent, RecoveryKey, Role, Roster,
    RosterProposal, SimulatedToy, ToysealError, generate_family_id,
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

#[test]
fn phone_pairs_founds_the_family_and_opens_the_toys_recording() {
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::default());
    let me = Identity::load_or_generate(store.clone(), "phone".into(), Role::Guardian).unwrap();
    let again = Identity::load_or_generate(store, "phone".into(), Role::Guardian).unwrap();
    assert_eq!(me.device_id(), again.device_id());

    let phone = Phone::new(me.clone()).unwrap();
    let toy = SimulatedToy::new().unwrap();
    toy.press_pair_button(NOW).unwrap();
    phone.pair(toy.printed_code()).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    let sas = events.iter().find_map(|e| match e {
        PhoneEvent::Sas { sas } => Some(sas.clone()),
        _ => None,
    });
    assert_eq!(sas, toy.sas().unwrap());
    let toy_key = events
        .iter()
        .find_map(|e| match e {
            PhoneEvent::Paired { toy, .. } => Some(toy.clone()),
            _ => None,
        })
        .expect("paired");

    toy.disconnect().unwrap();
    phone.handle_disconnect().unwrap();
    phone.open_session(toy_key.clone()).unwrap();
    pump(&phone, &toy, Vec::new());
    // Every family keeps a printed recovery key: it signs version 1 with the phone.
    let recovery = RecoveryKey::generate().unwrap();
    let printed = recovery.export_printable().unwrap();
    assert!(printed.starts_with("TOYSEAL-RECOVERY-1"));
    assert_eq!(
        RecoveryKey::from_printable(printed.to_lowercase())
            .unwrap()
            .signer_id(),
        recovery.signer_id()
    );
    let v1 = RosterProposal::founding(
        generate_family_id(),
        vec![me.public_key(), toy_key],
        recovery.clone(),
    )
    .unwrap()
    .sign(me.clone())
    .cosign_recovery(recovery.clone());
    phone.push_rosters(vec![v1], NOW).unwrap();
    let rosters = pump(&phone, &toy, Vec::new())
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Rosters { rosters } => Some(rosters),
            _ => None,
        })
        .expect("the toy co-signed version 1");
    let [v1] = rosters.as_slice() else {
        panic!("the toy co-signed one version: {}", rosters.len())
    };
    let roster = Roster::verify_founding(v1.clone()).unwrap();

    let recording: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let frames = toy
        .record_and_send(recording.clone(), EnvelopeMetadata::default(), NOW)
        .unwrap();
    let envelope = pump(&phone, &toy, frames)
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::EnvelopeReceived { envelope } => Some(envelope),
            _ => None,
        })
        .expect("the recording arrived");
    assert_eq!(
        roster.open(me.clone(), envelope.clone()).unwrap().content,
        recording
    );

    let opener = roster.opener(me.clone());
    let mut streamed = Vec::new();
    for piece in envelope.chunks(777) {
        streamed.extend(opener.push(piece.to_vec()).unwrap());
    }
    assert_eq!(opener.finish().unwrap().content_len, recording.len() as u64);
    assert_eq!(streamed, recording);
    assert!(matches!(
        opener.push(vec![0]),
        Err(ToysealError::WrongState { .. })
    ));

    let mut bad = envelope;
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    assert!(matches!(
        roster.open(me, bad),
        Err(ToysealError::Authentication)
    ));
}

/// T37 through the exported API: the parent says the codes differ; the toy learns it (its
/// pairing is undone and counted) and the phone counts it, so a second rejection is not free.
#[test]
fn rejecting_the_sas_reaches_the_toy_and_is_counted() {
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::default());
    let me = Identity::load_or_generate(store, "phone".into(), Role::Guardian).unwrap();
    let phone = Phone::new(me).unwrap();
    let toy = SimulatedToy::new().unwrap();
    // Before any pairing there is nothing to reject.
    assert!(phone.reject_sas().is_err());
    toy.press_pair_button(NOW).unwrap();
    phone.pair(toy.printed_code()).unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PhoneEvent::Paired { .. }))
    );
    assert!(toy.sas().unwrap().is_some());
    assert_eq!(toy.failed_pairings().unwrap(), 0);
    phone.reject_sas().unwrap();
    let events = pump(&phone, &toy, Vec::new());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PhoneEvent::PairingFailed { .. })),
        "{events:?}"
    );
    assert_eq!(toy.failed_pairings().unwrap(), 1);
    // Only once per pairing.
    assert!(phone.reject_sas().is_err());
}
