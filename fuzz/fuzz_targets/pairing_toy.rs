//! The toy's whole endpoint (`Toy`) under a sequence of actions: attacker frames, a real
//! phone's frames (with the right or a wrong code, optionally mutated), button presses,
//! disconnects and time passing. Never panics, and the protocol's promises hold after every
//! step: no message reaches the app without an open session; no founder appears except through
//! a `Paired` event; the lifetime failure counter never decreases except by exactly one on a
//! success, and never exceeds the policy once pairing is disabled; roster updates (the real
//! founding version, or fuzzer bytes) only ever move the toy's roster forward, a roster
//! replaces the founder, and the toy admits exactly the roster's guardians. The toy's
//! signature and a new founder appear only on the step where its user confirmed at the toy
//! (`Toy::confirm`): never from frames alone, whatever they are (T35, T37).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use toyseal_core::FamilyId;
use toyseal_fuzz::pairing::{PAIRING, toy};
use toyseal_fuzz::{Mutation, rng};
use toyseal_pairing::{
    CodeKind, Initiator, PairingCode, PairingExpectations, PhonePairing, PhoneStep, SessionConfig,
    SessionMessage, Timestamp, ToyEvent,
};
use toyseal_roster::RosterProposal;

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
    /// The toy's user confirms at the toy (whatever is pending, if anything).
    Confirm,
    /// The toy's user declines.
    Decline,
    /// The toy's user holds the button long: the recovery window (pairing.md §7.2), which a
    /// toy opens only for a family it has.
    LongPress,
    /// The founding phone reconnects and pushes roster versions: the real founding version
    /// (signed by it, listing it and the toy) if the flag is set, then these raw versions.
    Rosters {
        founding: bool,
        raw: Vec<Vec<u8>>,
    },
}

fuzz_target!(|input: (u64, Vec<Action>)| {
    let (seed, actions) = input;
    let p = &*PAIRING;
    let mut rng = rng(seed);
    let mut toy = toy();
    let mut now = 0u64;
    let mut session_open = false;
    let mut roster_version = 0u64;
    let mut pinned = usize::from(toy.founder().is_some());
    for action in actions.into_iter().take(64) {
        let failures_before = toy.window().total_failures().unwrap_or(0);
        let mut events = Vec::new();
        let confirmed = matches!(action, Action::Confirm);
        match action {
            Action::Confirm => {
                let t = Timestamp::from_millis(now);
                let _ = toy.confirm(t);
                events.extend(toy.poll(t).events);
            }
            Action::Decline => {
                let t = Timestamp::from_millis(now);
                let _ = toy.decline(t);
                events.extend(toy.poll(t).events);
            }
            Action::LongPress => {
                let t = Timestamp::from_millis(now);
                let opened = toy.open_recovery_window(t).is_ok();
                assert!(
                    !opened || toy.roster().is_some(),
                    "a recovery window without a family"
                );
                events.extend(toy.poll(t).events);
            }
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
            Action::Rosters { founding, raw } => {
                let t = Timestamp::from_millis(now);
                events.extend(toy.disconnect().events);
                let Ok((init, hello)) = Initiator::start(
                    &p.phone,
                    p.toy_identity.public(),
                    SessionConfig::default(),
                    &mut rng,
                ) else {
                    continue;
                };
                let out = toy.handle(&hello, t, &mut rng);
                events.extend(out.events);
                let Some(Ok(mut s)) = out.replies.first().map(|r| init.finish(r, t)) else {
                    continue;
                };
                let mut rosters: Vec<Vec<u8>> = Vec::new();
                if founding {
                    let members = vec![p.phone.public().clone(), p.toy_identity.public().clone()];
                    let recovery = toyseal_fuzz::cloud::RECOVERY.public();
                    if let Ok(v1) =
                        RosterProposal::founding(FamilyId::from_bytes([7; 16]), members, *recovery)
                    {
                        let mut v1 = v1.sign(&p.phone);
                        v1.cosign_recovery(&toyseal_fuzz::cloud::RECOVERY);
                        rosters.push(v1.encode());
                    }
                }
                rosters.extend(raw.into_iter().take(15));
                if let Ok(f) = s.seal(&SessionMessage::RosterUpdate { rosters }, t) {
                    events.extend(toy.handle(&f, t, &mut rng).events);
                }
            }
        }
        let toy_id = p.toy_identity.device_id();
        for e in &events {
            match e {
                ToyEvent::Paired {
                    code: CodeKind::Printed,
                    ..
                } => {
                    assert!(confirmed, "a founder recorded without a confirmation");
                    pinned += 1;
                }
                ToyEvent::Paired { .. } => pinned += 1,
                ToyEvent::RosterApplied(r) if !confirmed => assert!(
                    !r.signed().signers().any(|s| s == toy_id),
                    "a toy signature without a confirmation"
                ),
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
        let version = toy.roster().map(|r| r.version()).unwrap_or(0);
        assert!(version >= roster_version, "the roster went backwards");
        roster_version = version;
        if let Some(r) = toy.roster() {
            assert!(toy.founder().is_none(), "a founder beside a roster");
            for m in r.members() {
                let admitted = toy.admitted(m.device_id()).is_some();
                assert_eq!(admitted, m.role() == toyseal_core::Role::Guardian);
            }
        }
    }
});
