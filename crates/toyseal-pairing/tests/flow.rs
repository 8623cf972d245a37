//! End to end through the real state machines, frames passed directly: pair a phone with a
//! toy using the printed code, reconnect with Noise KK, exchange session messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use toyseal_core::{DeviceIdentity, Role};
use toyseal_pairing::*;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

struct World {
    toy: Toy<MemoryFailureStore>,
    phone: DeviceIdentity,
    code: PairingCode,
    rng: ChaCha20Rng,
    maker: MakerKey,
}

fn world(attested: bool) -> World {
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let toy_id = DeviceIdentity::generate(Role::Toy, &mut rng);
    let maker = MakerKey::generate(&mut rng).unwrap();
    let att = attested.then(|| maker.attest(toy_id.public()));
    let code = PairingCode::parse("4821-3957").unwrap();
    let mut toy = Toy::builder(
        std::sync::Arc::new(toy_id),
        code.clone(),
        MemoryFailureStore::default(),
    );
    if let Some(att) = att {
        toy = toy.attestation(att);
    }
    let toy = toy.build().unwrap();
    World {
        toy,
        phone: DeviceIdentity::generate(Role::Guardian, &mut rng),
        code,
        rng,
        maker,
    }
}

/// Runs a full pairing; returns the phone's result and the number of round trips used.
fn pair(
    w: &mut World,
    code: &PairingCode,
    expect: PairingExpectations,
) -> (Result<PairedToy, Error>, usize) {
    let (mut phone, mut frame) = PhonePairing::start(code, expect, &mut w.rng).unwrap();
    let mut round_trips = 0;
    loop {
        round_trips += 1;
        let out = w.toy.handle(&frame, t(1000), &mut w.rng);
        let Some(reply) = out.replies.into_iter().next() else {
            return (Err(Error::Timeout), round_trips);
        };
        match phone.handle(&w.phone, &reply) {
            Ok(PhoneStep::Send(next)) => frame = next,
            Ok(PhoneStep::Paired(toy)) => return (Ok(toy), round_trips),
            Ok(other) => panic!("unexpected step {other:?}"),
            Err(e) => {
                // The phone gives up: tell the toy, as a real app does.
                w.toy.handle(
                    &Frame::Abort(AbortReason::Authentication).encode(),
                    t(1000),
                    &mut w.rng,
                );
                return (Err(e), round_trips);
            }
        }
    }
}

/// The toy's user confirms the founding pairing at the toy (T37): only then is the founder
/// recorded.
fn confirm_founder(w: &mut World) {
    assert_eq!(w.toy.founder(), None, "no founder before the confirmation");
    assert!(matches!(
        w.toy.pending_confirmation(),
        Some((Confirmation::Founder { phone }, _)) if phone == w.phone.device_id()
    ));
    w.toy.confirm(t(1500)).unwrap();
    let out = w.toy.poll(t(1500));
    assert_eq!(out.replies, vec![Frame::Confirmed.encode()]);
    assert_eq!(
        out.events,
        vec![ToyEvent::Paired {
            phone: w.phone.public().clone(),
            code: CodeKind::Printed
        }]
    );
    assert_eq!(w.toy.founder(), Some(w.phone.public()));
}

/// The toy's first session message: its roster head (none yet).
fn no_head(session: &mut Session, frame: &[u8]) {
    assert_eq!(
        session.open(frame, t(2000)).unwrap(),
        SessionMessage::RosterHead {
            version: 0,
            hash: [0; 32]
        }
    );
}

#[test]
fn pair_then_reconnect_then_talk() {
    let mut w = world(true);
    w.toy.press_pair_button(t(0)).unwrap();
    let expect = PairingExpectations {
        fingerprint: Some(w.toy.identity().device_id()),
        maker_roots: vec![w.maker.public_key()],
        require_attestation: true,
    };
    let code = w.code.clone();
    let (paired, round_trips) = pair(&mut w, &code, expect);
    let paired = paired.unwrap();
    assert_eq!(
        round_trips, 2,
        "pairing takes two round trips after connect"
    );
    assert!(paired.attested);
    assert_eq!(&paired.identity, w.toy.identity().public());
    confirm_founder(&mut w);
    assert_eq!(w.toy.window().total_failures().unwrap(), 0);

    // Reconnect: one round trip.
    let (init, hello) = Initiator::start(
        &w.phone,
        &paired.identity,
        SessionConfig::default(),
        &mut w.rng,
    )
    .unwrap();
    let out = w.toy.handle(&hello, t(2000), &mut w.rng);
    assert_eq!(
        out.events,
        vec![ToyEvent::SessionOpened(w.phone.device_id())]
    );
    let mut session = init.finish(&out.replies[0], t(2000)).unwrap();
    no_head(&mut session, &out.replies[1]);

    // Ping/pong and a command, across a rekey boundary.
    for i in 0..2100u64 {
        let f = session
            .seal(&SessionMessage::Ping { nonce: i }, t(3000))
            .unwrap();
        let out = w.toy.handle(&f, t(3000), &mut w.rng);
        assert_eq!(
            session.open(&out.replies[0], t(3000)).unwrap(),
            SessionMessage::Pong { nonce: i }
        );
    }
    let f = session
        .seal(&SessionMessage::Control(Control::StartRecording), t(4000))
        .unwrap();
    let out = w.toy.handle(&f, t(4000), &mut w.rng);
    assert_eq!(
        out.events,
        vec![ToyEvent::Message(SessionMessage::Control(
            Control::StartRecording
        ))]
    );
    w.toy
        .send(&SessionMessage::ControlAck { ok: true }, t(4000))
        .unwrap();
    let reply = w.toy.poll(t(4000)).replies.remove(0);
    assert_eq!(
        session.open(&reply, t(4000)).unwrap(),
        SessionMessage::ControlAck { ok: true }
    );
}

#[test]
fn wrong_code_fails_on_both_sides_and_is_counted() {
    let mut w = world(false);
    w.toy.press_pair_button(t(0)).unwrap();
    let wrong = PairingCode::parse("48213958").unwrap();
    let (r, _) = pair(&mut w, &wrong, PairingExpectations::default());
    assert!(matches!(r, Err(Error::Authentication)), "{r:?}");
    assert!(!w.toy.has_guardian());
    assert_eq!(w.toy.window().total_failures().unwrap(), 1);
    // The right code still works in the same window.
    let code = w.code.clone();
    let (r, _) = pair(&mut w, &code, PairingExpectations::default());
    assert!(r.is_ok());
    assert_eq!(w.toy.window().total_failures().unwrap(), 1);
}

#[test]
fn attestation_and_fingerprint_are_enforced() {
    let mut w = world(false);
    w.toy.press_pair_button(t(0)).unwrap();
    let code = w.code.clone();
    let expect = PairingExpectations {
        maker_roots: vec![w.maker.public_key()],
        require_attestation: true,
        ..Default::default()
    };
    assert!(matches!(
        pair(&mut w, &code, expect).0,
        Err(Error::Attestation)
    ));
    // The toy accepted the phone (it checks the code, the phone checks the toy last), but the
    // phone's ABORT right after PAIR_DONE undid it and counted a failure (§5.4 step 6).
    assert_eq!(w.toy.founder(), None);
    assert_eq!(w.toy.window().total_failures().unwrap(), 1);
    w.toy.press_pair_button(t(1)).unwrap();
    let expect = PairingExpectations {
        fingerprint: Some(toyseal_core::DeviceId::from_bytes([1; 16])),
        ..Default::default()
    };
    assert!(matches!(
        pair(&mut w, &code, expect).0,
        Err(Error::WrongPeer(_))
    ));
}

#[test]
fn a_handshake_while_live_is_ignored_and_close_session_ends_it() {
    let mut w = world(false);
    w.toy.press_pair_button(t(0)).unwrap();
    let code = w.code.clone();
    let paired = pair(&mut w, &code, PairingExpectations::default())
        .0
        .unwrap();
    confirm_founder(&mut w);
    let hello = |w: &mut World| {
        Initiator::start(
            &w.phone,
            &paired.identity,
            SessionConfig::default(),
            &mut w.rng,
        )
        .unwrap()
    };
    let (init, first) = hello(&mut w);
    let out = w.toy.handle(&first, t(2000), &mut w.rng);
    assert_eq!(
        out.events,
        vec![ToyEvent::SessionOpened(w.phone.device_id())]
    );
    let mut live = init.finish(&out.replies[0], t(2000)).unwrap();
    no_head(&mut live, &out.replies[1]);
    // A second (or replayed) HANDSHAKE_INIT while the session is live: no answer, no event.
    let (_, second) = hello(&mut w);
    for frame in [&second, &first] {
        let out = w.toy.handle(frame, t(2050), &mut w.rng);
        assert!(out.replies.is_empty() && out.events.is_empty(), "{out:?}");
    }
    let ping = live
        .seal(&SessionMessage::Ping { nonce: 2 }, t(2100))
        .unwrap();
    let out = w.toy.handle(&ping, t(2100), &mut w.rng);
    assert_eq!(
        live.open(&out.replies[0], t(2100)).unwrap(),
        SessionMessage::Pong { nonce: 2 }
    );
    // close_session on demand; then a new handshake is answered again.
    assert_eq!(w.toy.close_session().events, vec![ToyEvent::SessionClosed]);
    assert!(w.toy.close_session().events.is_empty());
    let (_, third) = hello(&mut w);
    let out = w.toy.handle(&third, t(2200), &mut w.rng);
    assert_eq!(
        out.events,
        vec![ToyEvent::SessionOpened(w.phone.device_id())]
    );
}

#[test]
fn only_the_frame_right_after_pair_done_can_reject_the_pairing() {
    let abort = Frame::Abort(AbortReason::Authentication).encode();
    // Right after PAIR_DONE: undone and counted.
    let mut w = world(false);
    w.toy.press_pair_button(t(0)).unwrap();
    let code = w.code.clone();
    assert!(
        pair(&mut w, &code, PairingExpectations::default())
            .0
            .is_ok()
    );
    confirm_founder(&mut w);
    let out = w.toy.handle(&abort, t(1000), &mut w.rng);
    assert!(out.replies.is_empty());
    assert_eq!(
        out.events,
        vec![
            ToyEvent::PairingFailed,
            ToyEvent::PairingRejected {
                phone: w.phone.public().clone()
            }
        ]
    );
    assert_eq!(w.toy.founder(), None);
    assert_eq!(w.toy.window().total_failures().unwrap(), 1);
    // After another frame (or a disconnect) an ABORT changes nothing.
    let mut w = world(false);
    w.toy.press_pair_button(t(0)).unwrap();
    assert!(
        pair(&mut w, &code, PairingExpectations::default())
            .0
            .is_ok()
    );
    confirm_founder(&mut w);
    w.toy
        .handle(&Frame::NotPairable.encode(), t(1000), &mut w.rng);
    let out = w.toy.handle(&abort, t(1000), &mut w.rng);
    assert!(
        !out.events
            .iter()
            .any(|e| matches!(e, ToyEvent::PairingRejected { .. }))
    );
    assert_eq!(w.toy.founder(), Some(w.phone.public()));
    assert_eq!(w.toy.window().total_failures().unwrap(), 0);
}
