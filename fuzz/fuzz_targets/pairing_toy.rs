//! The toy's whole endpoint (`Toy`) under a sequence of actions: attacker frames, a real
//! phone's frames (with the right or a wrong code, optionally mutated), button presses,
//! disconnects and time passing. Never panics, and the protocol's promises hold after every
//! step: no message reaches the app without an open session; no founder appears except through
//! a `Paired` event; the lifetime failure counter never decreases except by exactly one on a
//! success, and never exceeds the policy once pairing is disabled.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use toyseal_fuzz::pairing::{PAIRING, toy};
use toyseal_fuzz::{Mutation, rng};
use toyseal_pairing::{
    Initiator, PairingCode, PairingExpectations, PhonePairing, PhoneStep, SessionConfig,
    SessionMessage, Timestamp, ToyEvent,
};

#[derive(Arbitrary, Debug)]
enum Action {
    PressButton,
    Disconnect,
    Wait(u16),
    /// Raw attacker bytes as a frame.
    Raw(Vec<u8>),
    /// A real phone starts pairing (right code if the flag is set) and its frames flow, each
    /// optionally mutated.
    Phone {
        right_code: bool,
        mutate: Vec<Mutation>,
    },
    /// A pinned phone (if any) reconnects and sends a ping.
    Reconnect {
        mutate: Vec<Mutation>,
    },
}

fuzz_target!(|input: (u64, Vec<Action>)| {
    let (seed, actions) = input;
    let p = &*PAIRING;
    let mut rng = rng(seed);
    let mut toy = toy();
    let mut now = 0u64;
    let mut session_open = false;
    let mut pinned = usize::from(toy.founder().is_some());
    for action in actions.into_iter().take(64) {
        let failures_before = toy.window().total_failures().unwrap_or(0);
        let mut events = Vec::new();
        match action {
            Action::PressButton => {
                let _ = toy.press_pair_button(Timestamp::from_millis(now));
            }
            Action::Disconnect => events.extend(toy.disconnect().events),
            Action::Wait(s) => {
                now += u64::from(s) * 100;
                events.extend(toy.poll(Timestamp::from_millis(now)).events);
            }
            Action::Raw(bytes) => {
                events.extend(
                    toy.handle(&bytes, Timestamp::from_millis(now), &mut rng)
                        .events,
                );
            }
            Action::Phone { right_code, mutate } => {
                let code = if right_code {
                    p.code.clone()
                } else {
                    PairingCode::parse("48213958").unwrap_or_else(|_| p.code.clone())
                };
                let Ok((mut phone, mut frame)) =
                    PhonePairing::start(&code, PairingExpectations::default(), &mut rng)
                else {
                    continue;
                };
                for round in 0..3 {
                    if let Some(m) = mutate.get(round) {
                        m.apply(&mut frame);
                    }
                    let out = toy.handle(&frame, Timestamp::from_millis(now), &mut rng);
                    events.extend(out.events);
                    let Some(reply) = out.replies.first() else {
                        break;
                    };
                    match phone.handle(&p.phone, reply) {
                        Ok(PhoneStep::Send(next)) => frame = next,
                        _ => break,
                    }
                }
            }
            Action::Reconnect { mutate } => {
                let Ok((init, mut hello)) = Initiator::start(
                    &p.phone,
                    p.toy_identity.public(),
                    SessionConfig::default(),
                    &mut rng,
                ) else {
                    continue;
                };
                if let Some(m) = mutate.first() {
                    m.apply(&mut hello);
                }
                let out = toy.handle(&hello, Timestamp::from_millis(now), &mut rng);
                events.extend(out.events);
                if let Some(reply) = out.replies.first()
                    && let Ok(mut s) = init.finish(reply, Timestamp::from_millis(now))
                    && let Ok(mut f) = s.seal(
                        &SessionMessage::Ping { nonce: now },
                        Timestamp::from_millis(now),
                    )
                {
                    if let Some(m) = mutate.get(1) {
                        m.apply(&mut f);
                    }
                    events.extend(toy.handle(&f, Timestamp::from_millis(now), &mut rng).events);
                }
            }
        }
        for e in &events {
            match e {
                ToyEvent::Paired { .. } => pinned += 1,
                ToyEvent::SessionOpened(_) => session_open = true,
                ToyEvent::SessionClosed => session_open = false,
                ToyEvent::Message(_) => assert!(session_open, "a message without a session"),
                _ => {}
            }
        }
        assert!(
            usize::from(toy.founder().is_some()) <= pinned,
            "a founder without a Paired event"
        );
        let failures = toy.window().total_failures().unwrap_or(0);
        let paired_now = events.iter().any(|e| matches!(e, ToyEvent::Paired { .. }));
        if paired_now {
            assert!(
                failures + 1 >= failures_before,
                "counter dropped by more than one"
            );
        } else {
            assert!(
                failures >= failures_before,
                "failure counter decreased without a success"
            );
        }
        assert!(failures <= toy.window().policy().max_failures_total + 1);
    }
});
