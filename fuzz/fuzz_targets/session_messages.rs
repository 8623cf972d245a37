//! The session messages and link frames of docs/spec/pairing.md §4 and §7 (including the
//! confirmation frames CONFIRMATION_PENDING / CONFIRMED and the session messages RosterPending,
//! RosterAnswer and RosterHead) decoded from arbitrary bytes, then fed to a real phone in a
//! live session with the toy: never panics; whatever decodes encodes back to the same bytes
//! (one encoding per message); the phone reports a toy's answer or pending confirmation only
//! for the version the message carried, and pushes nothing on a fork it reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};
use toyseal_core::DeviceIdentity;
use toyseal_fuzz::pairing::{PAIRING, toy};
use toyseal_fuzz::rng;
use toyseal_pairing::{Endpoint, Frame, Phone, PhoneEvent, SessionMessage, Timestamp, ToyEvent};

/// The fixture's founding phone, shared (its key, as `Phone` takes it).
static PHONE: LazyLock<Option<Arc<DeviceIdentity>>> = LazyLock::new(|| {
    let text = PAIRING.phone.export_secret_key_text().ok()?;
    DeviceIdentity::from_secret_key_text(&text)
        .ok()
        .map(Arc::new)
});

fuzz_target!(|input: (u64, Vec<u8>)| {
    let (seed, bytes) = input;
    if let Ok(m) = SessionMessage::decode(&bytes) {
        assert_eq!(m.encode().ok().as_deref(), Some(&bytes[..]), "{m:?}");
    }
    if let Ok(f) = Frame::decode(&bytes) {
        assert_eq!(f.encode(), bytes, "{f:?}");
    }
    // The toy seals the fuzzer's message to a real phone in session.
    let Ok(msg) = SessionMessage::decode(&bytes) else {
        return;
    };
    let p = &*PAIRING;
    let Some(me) = PHONE.clone() else {
        return;
    };
    let mut rng = rng(seed);
    let mut toy = toy();
    let mut phone = Phone::new(me);
    let t = Timestamp::from_millis(0);
    if phone
        .open_session(p.toy_identity.public(), &mut rng)
        .is_err()
    {
        return;
    }
    for _ in 0..4 {
        while let Some(f) = phone.poll_transmit() {
            toy.handle_frame(&f, t, &mut rng);
        }
        while let Some(f) = toy.poll_transmit() {
            phone.handle_frame(&f, t, &mut rng);
        }
    }
    while toy.poll_event().is_some() {}
    while phone.poll_event().is_some() {}
    if toy.send(&msg, t).is_err() {
        return;
    }
    while let Some(f) = toy.poll_transmit() {
        phone.handle_frame(&f, t, &mut rng);
    }
    let pushed = phone.poll_transmit().is_some();
    while let Some(e) = phone.poll_event() {
        match (&e, &msg) {
            (
                PhoneEvent::ToyAnswered { version, .. },
                SessionMessage::RosterAnswer { version: v, .. },
            )
            | (
                PhoneEvent::AwaitingConfirmation { version, .. },
                SessionMessage::RosterPending { version: v, .. },
            ) => assert_eq!(*version, Some(*v)),
            (PhoneEvent::ToyAnswered { .. } | PhoneEvent::AwaitingConfirmation { .. }, _) => {
                panic!("{e:?} from {msg:?}")
            }
            (PhoneEvent::RosterFork { .. }, _) => assert!(!pushed, "pushed on a fork"),
            _ => {}
        }
    }
    // The toy's application never sees its own message types echoed.
    while let Some(e) = toy.poll_event() {
        assert!(!matches!(e, ToyEvent::RosterApplied(_)));
    }
});
