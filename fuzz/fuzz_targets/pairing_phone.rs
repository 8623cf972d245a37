//! The phone's whole endpoint (`Phone`) pairing with the real toy, whose answers the fuzzer
//! mutates or replaces with raw attacker frames, then opening a session over the same
//! channel. Never panics; if the phone ever reports `Paired`, the identity is the real toy's
//! (an attacker cannot make the phone pin a key of its choosing), and only when every frame
//! came unmodified from the real toy with the right code; a `SessionOpened` only follows a
//! real pairing; the phone never exceeds its own limit of failed pairings.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use toyseal_core::{DeviceIdentity, Role};
use toyseal_fuzz::pairing::{PAIRING, toy};
use toyseal_fuzz::{Mutation, rng};
use toyseal_pairing::{
    DEFAULT_MAX_FAILED_PAIRINGS, PairingExpectations, Phone, PhoneEvent, Timestamp,
};

#[derive(Arbitrary, Debug)]
enum Reply {
    /// The real toy's reply, then these edits.
    Real(Vec<Mutation>),
    /// Attacker bytes instead.
    Raw(Vec<u8>),
}

fuzz_target!(|input: (u64, bool, Vec<Reply>)| {
    let (seed, open_session, replies) = input;
    let p = &*PAIRING;
    let mut rng = rng(seed);
    let mut toy = toy();
    let now = Timestamp::from_millis(0);
    let _ = toy.factory_reset();
    let _ = toy.press_pair_button(now);
    let id = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let mut phone = Phone::new(Arc::new(id));
    if phone
        .pair(&p.code, PairingExpectations::default(), &mut rng)
        .is_err()
    {
        return;
    }
    let mut to_toy = phone.drain().frames;
    let mut untouched = true;
    let mut paired = None;
    for reply in replies.into_iter().take(8) {
        let Some(frame) = to_toy.first().cloned() else {
            break;
        };
        to_toy.remove(0);
        let real = toy
            .handle(&frame, now, &mut rng)
            .replies
            .into_iter()
            .next()
            .unwrap_or_default();
        let bytes = match reply {
            Reply::Real(edits) => {
                let mut b = real.clone();
                for e in &edits {
                    e.apply(&mut b);
                }
                untouched &= b == real;
                b
            }
            Reply::Raw(b) => {
                untouched &= b == real;
                b
            }
        };
        let out = phone.handle(&bytes, now);
        to_toy.extend(out.frames);
        for e in out.events {
            match e {
                PhoneEvent::Paired(t) => {
                    assert_eq!(
                        &t.identity,
                        p.toy_identity.public(),
                        "paired with a forged identity"
                    );
                    assert!(untouched, "paired although a frame was changed");
                    paired = Some(t);
                }
                PhoneEvent::SessionOpened(_) => {
                    assert!(paired.is_some(), "a session without a pairing");
                }
                _ => {}
            }
        }
        if open_session
            && let Some(t) = &paired
            && phone.session().is_none()
            && to_toy.is_empty()
        {
            let _ = phone.open_session(&t.identity, &mut rng);
            to_toy.extend(phone.drain().frames);
        }
        assert!(phone.failed_pairings() <= DEFAULT_MAX_FAILED_PAIRINGS);
    }
});
