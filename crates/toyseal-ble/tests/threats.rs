//! THREATS.md T20–T29 (Bluetooth and pairing), each performed for real: the real toy and phone
//! state machines, driven by the real drivers, over the in-memory link, with the attacker on
//! the air (a raw end of the link, the eavesdropper tap, or the man-in-the-middle hook).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use toyseal_ble::memory::{Packet, frame_mitm};
use toyseal_ble::{
    Direction, DriverConfig, DriverEvent, Error, MemoryLink, MemoryLinkConfig, run_until_idle,
};
use toyseal_core::{DeviceIdentity, Role};
use toyseal_pairing::frag::{Fragmenter, Reassembler};
use toyseal_pairing::{
    AbortReason, Control, EnvelopeEvent, Frame, PairingCode, PairingExpectations, PhoneEvent,
    PhoneFailure, PhonePairing, PhoneStep, SessionConfig, SessionMessage, Timestamp, ToyEvent,
    ToyPairing,
};

fn cfg() -> MemoryLinkConfig {
    MemoryLinkConfig::default().with_latency(Duration::from_millis(20))
}

/// Every session message type, as an attacker without keys would try to send it.
fn every_session_message() -> Vec<SessionMessage> {
    vec![
        SessionMessage::Ping { nonce: 1 },
        SessionMessage::Pong { nonce: 1 },
        SessionMessage::EnvelopeChunk {
            transfer: 1,
            total: 4,
            offset: 0,
            data: b"AUDI".to_vec(),
        },
        SessionMessage::EnvelopeAck {
            transfer: 1,
            received: 4,
        },
        SessionMessage::RosterUpdate {
            rosters: vec![b"attacker is a guardian".to_vec()],
        },
        SessionMessage::Control(Control::Play {
            envelope_id: [7; 32],
        }),
        SessionMessage::Control(Control::StartRecording),
        SessionMessage::Control(Control::StopRecording),
        SessionMessage::Control(Control::Stop),
        SessionMessage::ControlAck { ok: true },
        SessionMessage::Close { reason: 0 },
    ]
}

#[test]
fn t20_command_without_session() {
    let mut rng = rng(20);
    let code = PairingCode::generate(8, &mut rng);
    let mut toy = new_toy(&mut rng, code, DriverConfig::default());
    let (attacker, peripheral) = MemoryLink::pair(cfg());
    let medium = attacker.medium();
    toy.connect(peripheral);
    let mut attacker = RawPeer::new(attacker);

    // Everything an attacker in range can say without a session: each session message type,
    // as a transport frame (it has no key, so plaintext plus a made-up tag) and as a bare
    // frame; frames a phone never sends; a handshake from an unknown device; pairing frames
    // out of order; and random garbage frames.
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for m in every_session_message() {
        let plain = m.encode().unwrap();
        let mut noise = plain.clone();
        noise.extend_from_slice(&[0u8; 16]);
        frames.push(Frame::Transport { noise: &noise }.encode());
        frames.push(plain);
    }
    let stranger = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let (_, hello) = toyseal_pairing::Initiator::start(
        &stranger,
        toy.endpoint().identity().public(),
        SessionConfig::default(),
        &mut rng,
    )
    .unwrap();
    frames.push(hello);
    frames.push(
        Frame::PairConfirm {
            confirm: &[1; 32],
            nonce: &[5; 32],
            sealed: &[2; 100],
        }
        .encode(),
    );
    frames.push(
        Frame::PairDone {
            confirm: &[3; 32],
            nonce: &[6; 32],
            sealed: &[3; 40],
        }
        .encode(),
    );
    frames.push(Frame::HandshakeResp { noise: &[4; 48] }.encode());
    frames.push(Frame::Abort(AbortReason::Authentication).encode());
    frames.push(Frame::NotPairable.encode());
    let (_, request) = PhonePairing::start(
        &PairingCode::generate(8, &mut rng),
        PairingExpectations::default(),
        &mut rng,
    )
    .unwrap();
    frames.push(request); // no window is open
    for i in 0..50u8 {
        let mut junk = vec![0u8; 1 + usize::from(i) * 7];
        rand_core::Rng::fill_bytes(&mut rng, &mut junk);
        frames.push(junk);
    }

    for frame in &frames {
        attacker.send_frame(frame);
        medium.advance(Duration::from_millis(20));
        let events = toy.poll(medium.now(), &mut rng);
        medium.advance(Duration::from_millis(20));
        let replies = attacker.recv_frames();
        assert_eq!(
            replies,
            vec![not_pairable()],
            "frame {:02x?}",
            &frame[..frame.len().min(8)]
        );
        assert!(events.is_empty(), "no event at all: {events:?}");
        assert!(toy.endpoint().session().is_none());
        assert!(!toy.endpoint().has_guardian(), "no pinned peer");
        assert_eq!(
            toy.endpoint().window().total_failures().unwrap(),
            0,
            "no state change"
        );
        assert!(!toy.endpoint().window().attempt_in_progress());
    }
    assert!(toy.is_connected());
    println!(
        "T20: {} unauthenticated frames, each answered only NOT_PAIRABLE",
        frames.len()
    );
}

#[test]
fn t21_pair_outside_window() {
    let mut w = world(21, cfg());
    // Never pressed: refused.
    let code = w.code.clone();
    w.phone
        .pair(&code, PairingExpectations::default(), &mut w.rng)
        .unwrap();
    let p = w.pump();
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::PairingFailed(PhoneFailure::NotPairable))
    )));
    assert!(paired(&p).is_none());
    // Pressed, but the 3-minute window has expired.
    w.toy
        .endpoint_mut()
        .press_pair_button(w.medium.now())
        .unwrap();
    w.medium.advance(Duration::from_secs(181));
    w.phone
        .pair(&code, PairingExpectations::default(), &mut w.rng)
        .unwrap();
    let p = w.pump();
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::PairingFailed(PhoneFailure::NotPairable))
    )));
    // A window that was used once is closed: a second phone with the right code is refused.
    let first = w.try_pair(&code);
    assert!(paired(&first).is_some());
    w.confirm_at_toy();
    let mut second = new_phone(&mut w.rng);
    let (central, peripheral) = MemoryLink::pair(cfg());
    let medium = central.medium();
    second.connect(central);
    w.toy.connect(peripheral);
    second
        .pair(&code, PairingExpectations::default(), &mut w.rng)
        .unwrap();
    let p = run_until_idle(&mut second, &mut w.toy, &medium, &mut w.rng).unwrap();
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::PairingFailed(PhoneFailure::NotPairable))
    )));
    assert_eq!(
        w.toy.endpoint().founder(),
        Some(w.phone.endpoint().identity().public()),
        "only the phone paired in the window"
    );
    assert_eq!(w.toy.endpoint().window().total_failures().unwrap(), 0);
}

#[test]
fn t22_online_code_guessing() {
    let mut w = world(22, MemoryLinkConfig::default());
    let mut guesses = 0u32;
    let mut next_guess = {
        let mut rng = rng(122);
        let real = w.code.clone();
        move || loop {
            let g = PairingCode::generate(8, &mut rng);
            if g != real {
                return g;
            }
        }
    };
    for window in 0..5 {
        w.toy
            .endpoint_mut()
            .press_pair_button(w.medium.now())
            .unwrap();
        for i in 0..20 {
            let guess = next_guess();
            // A real guess: PAIR_REQUEST, the toy's SPAKE2 reply, the phone's PAIR_CONFIRM,
            // refused. Every other time the attacker then reconnects: still counted.
            // (An attacker's phone ignores the limit an honest phone puts on its own tries.)
            w.phone.endpoint_mut().reset_pairing_attempts();
            w.phone
                .pair(&guess, PairingExpectations::default(), &mut w.rng)
                .unwrap();
            let p = w.pump();
            guesses += 1;
            assert!(
                phone_saw(&p, |e| matches!(
                    e,
                    DriverEvent::Endpoint(PhoneEvent::PairingFailed(PhoneFailure::Authentication))
                )),
                "{p:?}"
            );
            assert!(toy_saw(&p, |e| matches!(
                e,
                DriverEvent::Endpoint(ToyEvent::PairingFailed)
            )));
            assert_eq!(w.toy.endpoint().window().total_failures().unwrap(), guesses);
            if i % 2 == 1 {
                w.reconnect();
            }
        }
        // 20 failures closed this window: even the right code is refused now.
        let code = w.code.clone();
        let p = w.try_pair_without_press(&code);
        assert!(
            paired(&p).is_none(),
            "window {window} closed after 20 failures"
        );
    }
    // 100 failures in the toy's life: pairing is disabled until factory reset.
    assert_eq!(w.toy.endpoint().window().total_failures().unwrap(), 100);
    assert!(matches!(
        w.toy.endpoint_mut().press_pair_button(w.medium.now()),
        Err(toyseal_pairing::Error::PairingDisabled)
    ));
    let code = w.code.clone();
    let p = w.try_pair_without_press(&code);
    assert!(paired(&p).is_none());
    assert!(!w.toy.endpoint().has_guardian());
    // Only a factory reset (physical access) re-enables it.
    w.toy.endpoint_mut().factory_reset().unwrap();
    assert!(paired(&w.try_pair(&code)).is_some());

    let keyspace = PairingCode::keyspace(8);
    let bound = f64::from(guesses) / keyspace as f64;
    println!(
        "T22: {guesses} online guesses before pairing is disabled; keyspace of 8 digits = {keyspace}; \
         attacker success probability <= {guesses}/{keyspace} = {bound:.3e}"
    );
    assert!(bound < 2e-6);
}

impl World {
    fn try_pair_without_press(&mut self, code: &PairingCode) -> Pumped {
        self.phone
            .pair(code, PairingExpectations::default(), &mut self.rng)
            .unwrap();
        self.pump()
    }
}

/// Longest run of bytes two byte strings share.
fn longest_common_run(a: &[u8], b: &[u8]) -> usize {
    let mut best = 0;
    let mut prev = vec![0usize; b.len() + 1];
    for x in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                cur[j + 1] = prev[j] + 1;
                best = best.max(cur[j + 1]);
            }
        }
        prev = cur;
    }
    best
}

#[test]
fn t23_offline_guessing_from_recorded_pairing() {
    // Two whole pairings of the same toy with the same code, recorded by the tap.
    let mut w = world(23, cfg());
    w.pair();
    let first = w.medium.tap();
    w.toy.endpoint_mut().factory_reset().unwrap();
    w.reconnect();
    w.pair();
    let second = w.medium.tap();
    let code = w.code.clone();

    let split = |tap: &toyseal_ble::memory::Tap| {
        (
            tap.frames(Direction::PhoneToToy).unwrap(),
            tap.frames(Direction::ToyToPhone).unwrap(),
        )
    };
    let (up1, down1) = split(&first);
    let (up2, down2) = split(&second);
    assert_eq!(
        (up1.len(), down1.len()),
        (2, 4),
        "request+confirm, response+done+confirmation pending+confirmed"
    );

    // The code appears nowhere on the air, in any encoding.
    for tap in [&first, &second] {
        assert!(!tap.contains(code.digits().as_bytes()));
        let bcd: Vec<u8> = code.digits().bytes().map(|d| d - b'0').collect();
        assert!(!tap.contains(&bcd));
    }
    // Same code, fresh randomness: unrelated transcripts. Beyond the frame kind (and the
    // version byte and SPAKE2 side byte), no run of 4 or more bytes repeats, so no field is a
    // function of the code (or of anything fixed) alone.
    for (a, b) in up1.iter().zip(&up2).chain(down1.iter().zip(&down2)) {
        assert_eq!(a[0], b[0], "same frame kinds");
        let run = longest_common_run(&a[1..], &b[1..]);
        assert!(run < 4, "a {run}-byte run repeats across two pairings");
    }
    let spake = |f: &[u8], at: usize| f[at..at + 33].to_vec();
    assert_ne!(
        spake(&up1[0], 2),
        spake(&up2[0], 2),
        "phone's SPAKE2 message differs"
    );
    assert_ne!(
        spake(&down1[0], 1),
        spake(&down2[0], 1),
        "toy's SPAKE2 message differs"
    );

    // Why there is no offline test (docs/spec/pairing.md §Pairing, RFC 9382 §3, §4): the phone
    // sends X* = x·G + w·M and the toy Y* = y·G + w·N, with x, y fresh uniform scalars, so
    // each is a uniformly random group element whatever the password w is. The key is
    // K = x·(Y* − w·N) = y·(X* − w·M); computing it for a candidate w needs x or y (that is
    // computational Diffie-Hellman), and both scalars exist only inside the two devices for
    // the length of the attempt. The confirmation MAC and the sealed identities are keyed by
    // HKDF(K, transcript), so without K a passive attacker cannot check a single candidate.
    //
    // Executed: the best a passive attacker can do is run SPAKE2 itself with each candidate
    // against the recorded messages. Every candidate, the right code included, fails in the
    // same way, because the attacker's own scalar is not the one in the transcript: the
    // recording gives no way to tell the right code from a wrong one.
    let mut rng = rng(123);
    let mut candidates: Vec<PairingCode> = (0..20)
        .map(|_| PairingCode::generate(8, &mut rng))
        .collect();
    candidates.push(code.clone());
    let attacker_toy = DeviceIdentity::generate(Role::Toy, &mut rng);
    let attacker_phone = DeviceIdentity::generate(Role::Guardian, &mut rng);
    for candidate in &candidates {
        // As the phone: check the recorded toy confirmation with the candidate. The toy's
        // PAIR_RESPONSE alone carries nothing to check (§5.4).
        let (mut as_phone, _) =
            PhonePairing::start(candidate, PairingExpectations::default(), &mut rng).unwrap();
        let r = as_phone.handle(&attacker_phone, &down1[0]);
        assert!(matches!(r, Ok(PhoneStep::Send(_))), "{r:?}");
        let r = as_phone.handle(&attacker_phone, &down1[1]);
        assert!(
            matches!(r, Err(toyseal_pairing::Error::Authentication)),
            "{r:?}"
        );
        // As the toy: check the recorded phone confirmation with the candidate.
        let (as_toy, _) =
            ToyPairing::respond(&attacker_toy, candidate, None, &up1[0], &mut rng).unwrap();
        let r = as_toy.confirm(&up1[1]);
        assert!(
            matches!(r, Err(toyseal_pairing::Error::Authentication)),
            "{r:?}"
        );
    }
    println!(
        "T23: {} candidate codes (the right one included) are indistinguishable against the recording",
        candidates.len()
    );
}

/// A man in the middle that runs its own SPAKE2 toward each side with a guessed code.
#[test]
fn t24_mitm_during_pairing_without_code() {
    for substitute_only in [false, true] {
        let mut w = world(24, cfg());
        let guess = loop {
            let g = PairingCode::generate(8, &mut rng(124));
            if g != w.code {
                break g;
            }
        };
        let mut mrng = rng(224);
        let fake_toy = DeviceIdentity::generate(Role::Toy, &mut mrng);
        let fake_phone = DeviceIdentity::generate(Role::Guardian, &mut mrng);
        let toward_toy: Arc<Mutex<Option<PhonePairing>>> = Arc::default();
        let hook = frame_mitm(247, move |d, frame| match (d, Frame::decode(&frame)) {
            (Direction::PhoneToToy, Ok(Frame::PairRequest { .. })) => {
                // Its own SPAKE2 toward the phone (as a toy) and toward the toy (as a phone).
                let (_, to_phone) =
                    ToyPairing::respond(&fake_toy, &guess, None, &frame, &mut mrng).unwrap();
                let (p, to_toy) =
                    PhonePairing::start(&guess, PairingExpectations::default(), &mut mrng).unwrap();
                *toward_toy.lock().unwrap() = Some(p);
                if substitute_only {
                    // Only swap the SPAKE2 elements, keep everything else of the real frames.
                    let mut swapped = frame.clone();
                    swapped[2..35].copy_from_slice(&to_toy[2..35]);
                    vec![(Direction::PhoneToToy, swapped)]
                } else {
                    vec![
                        (Direction::ToyToPhone, to_phone),
                        (Direction::PhoneToToy, to_toy),
                    ]
                }
            }
            (Direction::ToyToPhone, Ok(Frame::PairResponse { .. })) if substitute_only => {
                let (_, mine) =
                    ToyPairing::respond(&fake_toy, &guess, None, &frame_request(&guess), &mut mrng)
                        .unwrap();
                let mut swapped = frame.clone();
                swapped[1..34].copy_from_slice(&mine[1..34]);
                vec![(Direction::ToyToPhone, swapped)]
            }
            (Direction::ToyToPhone, Ok(Frame::PairResponse { .. })) => {
                let mut p = toward_toy.lock().unwrap().take().unwrap();
                match p.handle(&fake_phone, &frame) {
                    Ok(PhoneStep::Send(next)) => vec![(Direction::PhoneToToy, next)],
                    _ => vec![(
                        Direction::PhoneToToy,
                        Frame::Abort(AbortReason::Authentication).encode(),
                    )],
                }
            }
            // The phone's abort to the fake toy goes nowhere.
            (Direction::PhoneToToy, Ok(Frame::Abort(_))) if !substitute_only => vec![],
            _ => vec![(d, frame)],
        })
        .unwrap();
        w.medium.set_mitm(hook);
        let code = w.code.clone();
        let p = w.try_pair(&code);
        assert!(paired(&p).is_none(), "phone pinned nothing");
        assert!(
            phone_saw(&p, |e| matches!(
                e,
                DriverEvent::Endpoint(PhoneEvent::PairingFailed(PhoneFailure::Authentication))
            )),
            "{p:?}"
        );
        assert!(toy_saw(&p, |e| matches!(
            e,
            DriverEvent::Endpoint(ToyEvent::PairingFailed)
        )));
        assert!(!toy_saw(&p, |e| matches!(
            e,
            DriverEvent::Endpoint(ToyEvent::Paired { .. })
        )));
        assert!(!w.toy.endpoint().has_guardian(), "toy pinned nothing");
        assert_eq!(
            w.toy.endpoint().window().total_failures().unwrap(),
            1,
            "counted"
        );
    }
}

fn frame_request(code: &PairingCode) -> Vec<u8> {
    PhonePairing::start(code, PairingExpectations::default(), &mut rng(99))
        .unwrap()
        .1
}

const MARKER: &str = "MARKER-teddy-secret-7f3a";

#[test]
fn t25_eavesdrop_reconnect_session() {
    let mut w = world(25, cfg());
    let paired = w.pair();
    w.reconnect();
    w.medium.clear_tap();
    w.open_session(&paired.identity);

    let mut rng = rng(125);
    let phone_public = w.phone.endpoint().identity().public().clone();
    let toy_public = w.toy.endpoint().identity().public().clone();
    // A synthetic recording with the marker, sealed by the toy to the phone.
    let mut recording = format!("RIFF....WAVEfmt {MARKER} ").into_bytes();
    recording.extend((0..20_000u32).map(|i| (i % 251) as u8));
    recording.extend_from_slice(MARKER.as_bytes());
    let from_toy = toyseal_envelope::seal(
        w.toy.endpoint().identity(),
        &[phone_public],
        &toyseal_envelope::SealOptions::default(),
        &recording,
        &mut rng,
    )
    .unwrap();
    let from_phone = toyseal_envelope::seal(
        w.phone.endpoint().identity(),
        &[toy_public],
        &toyseal_envelope::SealOptions::default(),
        format!("Goodnight! {MARKER}").as_bytes(),
        &mut rng,
    )
    .unwrap();
    let messages = vec![
        SessionMessage::RosterUpdate {
            rosters: vec![MARKER.as_bytes().to_vec()],
        },
        SessionMessage::Control(Control::Play {
            envelope_id: *b"MARKER-teddy-secret-7f3a-0123456",
        }),
        SessionMessage::Ping {
            nonce: 0x4d41_524b_4552,
        },
    ];
    let now = w.now();
    for m in &messages {
        w.phone.send(m, now).unwrap();
    }
    w.toy
        .send(
            &SessionMessage::RosterUpdate {
                rosters: vec![MARKER.as_bytes().to_vec()],
            },
            now,
        )
        .unwrap();
    w.toy.send_envelope(from_toy.clone(), now).unwrap();
    w.phone.send_envelope(from_phone.clone(), now).unwrap();
    let p = w.pump();
    // It all arrived (so the marker really crossed the air)...
    assert_eq!(toy_messages(&p).len(), 1, "play (the ping is answered)");
    assert!(
        toy_saw(&p, |e| matches!(
            e,
            DriverEvent::Endpoint(ToyEvent::RosterRefused)
        )),
        "the toy read the (bogus) roster update"
    );
    assert!(phone_saw(
        &p,
        |e| matches!(e, DriverEvent::Endpoint(PhoneEvent::Envelope(EnvelopeEvent::Received { envelope, .. })) if *envelope == from_toy)
    ));
    assert!(toy_saw(
        &p,
        |e| matches!(e, DriverEvent::Endpoint(ToyEvent::Envelope(EnvelopeEvent::Received { envelope, .. })) if *envelope == from_phone)
    ));

    // ...yet the tap holds neither the marker nor any plaintext of the session layer: not
    // the messages, not even the (already encrypted) envelopes they carried.
    let tap = w.medium.tap();
    assert!(tap.packets().len() > 100);
    assert!(!tap.contains(MARKER.as_bytes()));
    let utf16: Vec<u8> = MARKER.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert!(!tap.contains(&utf16));
    let mut plaintexts: Vec<Vec<u8>> = messages.iter().map(|m| m.encode().unwrap()).collect();
    plaintexts.push(from_toy.clone());
    plaintexts.push(from_phone.clone());
    for plain in &plaintexts {
        for window in plain.chunks(12).filter(|c| c.len() == 12) {
            assert!(!tap.contains(window), "12 plaintext bytes on the air");
        }
    }
    println!(
        "T25: {} packets / {} bytes tapped, no marker, no 12-byte run of plaintext",
        tap.packets().len(),
        tap.all_bytes().len()
    );
}

#[derive(Clone, Copy, Debug)]
enum Tamper {
    Replay,
    Reorder,
    Drop,
    Inject,
    FlipBit,
}

fn play(i: u8) -> SessionMessage {
    SessionMessage::Control(Control::Play {
        envelope_id: [i; 32],
    })
}

#[test]
fn t26_replay_reorder_drop_inject_session_frames() {
    for attack in [
        Tamper::Replay,
        Tamper::Reorder,
        Tamper::Drop,
        Tamper::Inject,
        Tamper::FlipBit,
    ] {
        for direction in [Direction::PhoneToToy, Direction::ToyToPhone] {
            let mut w = world(26, cfg());
            let paired = w.pair();
            w.reconnect();
            // The hook sits on the air from the connection's first packet (it has to follow
            // the fragment sequence numbers); the handshake passes untouched.
            let mut seen: Vec<Vec<u8>> = Vec::new();
            let mut irng = rng(126);
            // The toy's first session message (its roster head) passes untouched too.
            let mut head_passed = direction == Direction::PhoneToToy;
            w.medium.set_mitm(
                frame_mitm(247, move |d, frame| {
                    if d != direction || frame[0] != 0x20 {
                        return vec![(d, frame)];
                    }
                    if !head_passed {
                        head_passed = true;
                        return vec![(d, frame)];
                    }
                    seen.push(frame.clone());
                    match (attack, seen.len()) {
                        (Tamper::Replay, 2) => vec![(d, frame), (d, seen[0].clone())],
                        (Tamper::Reorder, 1) => vec![],
                        (Tamper::Reorder, 2) => vec![(d, frame), (d, seen[0].clone())],
                        (Tamper::Drop, 1) => vec![],
                        (Tamper::Inject, 2) => {
                            let mut junk = vec![0x20; 60];
                            rand_core::Rng::fill_bytes(&mut irng, &mut junk[1..]);
                            vec![(d, junk), (d, frame)]
                        }
                        (Tamper::FlipBit, 2) => {
                            let mut f = frame;
                            let last = f.len() - 1;
                            f[last / 2] ^= 0x01;
                            vec![(d, f)]
                        }
                        _ => vec![(d, frame)],
                    }
                })
                .unwrap(),
            );
            w.open_session(&paired.identity);
            let now = w.now();
            let p = match direction {
                Direction::PhoneToToy => {
                    for i in 0..4 {
                        w.phone.send(&play(i), now).unwrap();
                    }
                    w.pump()
                }
                Direction::ToyToPhone => {
                    for i in 0..4 {
                        w.toy.send(&play(i), now).unwrap();
                    }
                    w.pump()
                }
            };
            let label = format!("{attack:?} {direction:?}");
            let delivered: Vec<SessionMessage> = match direction {
                Direction::PhoneToToy => toy_messages(&p),
                Direction::ToyToPhone => p
                    .phone
                    .iter()
                    .filter_map(|e| match e {
                        DriverEvent::Endpoint(PhoneEvent::Message(m)) => Some(m.clone()),
                        _ => None,
                    })
                    .collect(),
            };
            // Whatever got through before the attack is the untouched prefix, in order; nothing
            // tampered, replayed or out of order is ever delivered.
            let expected_prefix = match attack {
                Tamper::Reorder | Tamper::Drop => 0,
                Tamper::Inject | Tamper::FlipBit => 1,
                // Frames 1 and 2 are genuine; the replayed copy of 1 is not delivered.
                Tamper::Replay => 2,
            };
            assert_eq!(
                delivered,
                (0..expected_prefix).map(play).collect::<Vec<_>>(),
                "{label}"
            );
            match direction {
                Direction::PhoneToToy => {
                    assert!(
                        toy_saw(&p, |e| matches!(
                            e,
                            DriverEvent::Endpoint(ToyEvent::SessionClosed)
                        )),
                        "{label}: toy tears the session down"
                    );
                    assert!(w.toy.endpoint().session().is_none());
                    // The phone learns it the next time it speaks (the toy answers frames
                    // without a session with NOT_PAIRABLE), possibly already above.
                    let closed_before = phone_saw(&p, |e| {
                        matches!(e, DriverEvent::Endpoint(PhoneEvent::SessionClosed))
                    });
                    let _ = w.phone.send(&play(9), w.now());
                    let p = w.pump();
                    assert!(toy_messages(&p).is_empty());
                    let closed_now = phone_saw(&p, |e| {
                        matches!(e, DriverEvent::Endpoint(PhoneEvent::SessionClosed))
                    });
                    assert!(closed_before || closed_now, "{label}");
                    assert!(w.phone.endpoint().session().is_none(), "{label}");
                }
                Direction::ToyToPhone => {
                    assert!(
                        phone_saw(&p, |e| matches!(
                            e,
                            DriverEvent::Endpoint(PhoneEvent::SessionClosed)
                        )),
                        "{label}: phone tears the session down"
                    );
                    assert!(w.phone.endpoint().session().is_none());
                }
            }
        }
    }

    // Below the session: a replayed or dropped *packet* breaks the fragment sequence and the
    // connection is torn down.
    for drop_it in [false, true] {
        let mut w = world(126, MemoryLinkConfig::default().with_att_mtu(23));
        w.in_session();
        let mut n = 0;
        w.medium.set_mitm(move |p: Packet| {
            n += 1;
            match (n, drop_it) {
                (2, true) => vec![],
                (2, false) => vec![p.clone(), p],
                _ => vec![p],
            }
        });
        w.phone.send(&play(1), w.now()).unwrap();
        let p = w.pump();
        assert!(toy_messages(&p).is_empty());
        assert!(
            toy_saw(&p, |e| matches!(
                e,
                DriverEvent::TornDown(Error::Protocol(toyseal_pairing::Error::Fragment(_)))
            )),
            "{p:?}"
        );
        assert!(!w.toy.is_connected());
    }
}

#[test]
fn t27_impersonation_with_other_static_key() {
    let mut w = world(27, cfg());
    let paired = w.pair();
    let real_phone_id = w.phone.endpoint().identity().device_id();
    let mut rng = rng(127);

    // A phone with another key claiming the pinned phone's device id.
    let impostor = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let (_, mut hello) = toyseal_pairing::Initiator::start(
        &impostor,
        &paired.identity,
        SessionConfig::default(),
        &mut rng,
    )
    .unwrap();
    hello[1..17].copy_from_slice(real_phone_id.as_bytes());
    let (attacker, peripheral) = MemoryLink::pair(cfg());
    let medium = attacker.medium();
    w.toy.connect(peripheral);
    let mut attacker = RawPeer::new(attacker);
    attacker.send_frame(&hello);
    medium.advance(Duration::from_millis(20));
    let events = w.toy.poll(medium.now(), &mut w.rng);
    medium.advance(Duration::from_millis(20));
    assert_eq!(attacker.recv_frames(), vec![not_pairable()]);
    assert!(events.is_empty(), "{events:?}");
    assert!(w.toy.endpoint().session().is_none());

    // A fake toy with another key (it even pins the real phone, whose key is public) answering
    // the real phone, which expects the pinned toy.
    let real_phone_public = w.phone.endpoint().identity().public().clone();
    let fake_code = PairingCode::generate(8, &mut rng);
    let mut fake: TestToy = toyseal_ble::ToyDriver::new(
        toyseal_pairing::Toy::builder(
            std::sync::Arc::new(DeviceIdentity::generate(Role::Toy, &mut rng)),
            fake_code,
            toyseal_pairing::MemoryFailureStore::default(),
        )
        .founder(real_phone_public)
        .build()
        .unwrap(),
        DriverConfig::default(),
    );
    let (central, peripheral) = MemoryLink::pair(cfg());
    let medium = central.medium();
    w.phone.connect(central);
    fake.connect(peripheral);
    w.phone.open_session(&paired.identity, &mut w.rng).unwrap();
    let p = run_until_idle(&mut w.phone, &mut fake, &medium, &mut w.rng).unwrap();
    assert!(
        phone_saw(&p, |e| matches!(
            e,
            DriverEvent::Endpoint(PhoneEvent::SessionFailed(_))
        )),
        "{p:?}"
    );
    assert!(!phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::SessionOpened(_))
    )));
    assert!(!toy_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(ToyEvent::SessionOpened(_))
    )));
    assert!(fake.endpoint().session().is_none());
    assert!(w.phone.endpoint().session().is_none());

    // Neither attempt left a trace: the real phone and toy still open a session.
    w.reconnect();
    w.open_session(&paired.identity);
}

#[test]
fn t28_malformed_oversized_endless_fragments() {
    const LIMIT: usize = 4096;
    let driver = DriverConfig::default().with_max_frame(LIMIT);
    let delivery = toyseal_pairing::DeliveryConfig::default().with_max_envelope_len(32 * 1024);
    let mut rng = rng(28);
    let code = PairingCode::generate(8, &mut rng);
    let mut toy = new_toy(&mut rng, code, driver.clone());
    let connect = |toy: &mut TestToy| {
        let (attacker, peripheral) = MemoryLink::pair(MemoryLinkConfig::default());
        let medium = attacker.medium();
        toy.connect(peripheral);
        (RawPeer::new(attacker), medium)
    };
    let first = |total: u32, seq: u8, body: &[u8]| {
        let mut p = vec![0x80 | seq];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(body);
        p
    };
    let torn_down = |events: &[ToyDriverEvent]| {
        events.iter().find_map(|e| match e {
            DriverEvent::TornDown(err) => Some(format!("{err:?}")),
            _ => None,
        })
    };

    // Declared length over the limit: refused before buffering anything.
    let (mut a, m) = connect(&mut toy);
    a.send_packet(&first(1 << 30, 0, &[0; 100])).unwrap();
    let ev = toy.poll(m.now(), &mut rng);
    assert!(torn_down(&ev).unwrap().contains("TooLarge"), "{ev:?}");
    assert_eq!(toy.buffered(), 0);
    assert!(!toy.is_connected());

    // Never-ending continuations: buffered stays within the limit, then a typed error.
    let (mut a, m) = connect(&mut toy);
    a.send_packet(&first(LIMIT as u32, 0, &[1; 239])).unwrap();
    let mut seq = 1u8;
    let mut max_seen = 0;
    let err = loop {
        let mut p = vec![seq & 0x3f];
        p.extend_from_slice(&[2; 243]);
        seq = seq.wrapping_add(1);
        if a.send_packet(&p).is_err() {
            panic!("link refused");
        }
        let ev = toy.poll(m.now(), &mut rng);
        max_seen = max_seen.max(toy.buffered());
        assert!(toy.buffered() <= LIMIT);
        if let Some(e) = torn_down(&ev) {
            break e;
        }
        assert!(seq < 100, "must end");
    };
    assert!(err.contains("Fragment"), "{err}");
    println!("T28: endless continuations stopped at {max_seen} buffered bytes (limit {LIMIT})");

    // A frame that stalls forever: dropped after the reassembly timeout.
    let (mut a, m) = connect(&mut toy);
    a.send_packet(&first(LIMIT as u32, 0, &[1; 200])).unwrap();
    assert!(toy.poll(m.now(), &mut rng).is_empty());
    assert_eq!(toy.buffered(), 200);
    m.advance(Duration::from_secs(6));
    let ev = toy.poll(m.now(), &mut rng);
    assert!(torn_down(&ev).unwrap().contains("Timeout"), "{ev:?}");
    assert_eq!(toy.buffered(), 0);

    // A gap in the sequence.
    let (mut a, m) = connect(&mut toy);
    a.send_packet(&first(1000, 0, &[1; 200])).unwrap();
    a.send_packet(&[2, 9, 9, 9]).unwrap();
    let ev = toy.poll(m.now(), &mut rng);
    assert!(torn_down(&ev).unwrap().contains("out of order"), "{ev:?}");

    // Random garbage packets: always a typed error or a NOT_PAIRABLE answer; never a panic,
    // never more than the limit buffered.
    let mut errors = std::collections::BTreeSet::new();
    for i in 0..2000u32 {
        let (mut a, m) = connect(&mut toy);
        for _ in 0..(1 + i % 5) {
            let mut junk = vec![0u8; 1 + (i as usize * 37) % 244];
            rand_core::Rng::fill_bytes(&mut rng, &mut junk);
            if a.send_packet(&junk).is_err() {
                break;
            }
            let ev = toy.poll(m.now(), &mut rng);
            assert!(toy.buffered() <= LIMIT);
            if let Some(e) = torn_down(&ev) {
                // The variant name only ("Protocol(Fragment", "Protocol(TooLarge", ...).
                let kind: String = e.chars().take_while(|c| *c != '{' && *c != '"').collect();
                errors.insert(kind.trim().to_string());
                break;
            }
        }
        assert!(!toy.endpoint().has_guardian());
        assert!(toy.endpoint().session().is_none());
    }
    println!("T28: error kinds from 2000 garbage connections: {errors:?}");

    // The reassembler itself: an endless stream stays bounded, whatever the packets.
    let mut r = Reassembler::new(LIMIT, Duration::from_secs(5));
    let mut f = Fragmenter::new(247).unwrap();
    let big = f.fragment(&vec![0u8; 60_000]).unwrap();
    let mut refused = 0;
    for p in &big {
        if r.push(p, Timestamp::default()).is_err() {
            refused += 1;
        }
        assert!(r.buffered() <= LIMIT);
    }
    assert!(refused > 0);

    // Oversized envelope inside a session: refused before any byte is buffered.
    let mut w = world_full(128, MemoryLinkConfig::default(), driver, delivery);
    w.in_session();
    w.phone
        .send(
            &SessionMessage::EnvelopeChunk {
                transfer: 1,
                total: 1 << 31,
                offset: 0,
                data: vec![0; 100],
            },
            w.now(),
        )
        .unwrap();
    let p = w.pump();
    assert!(
        toy_saw(&p, |e| matches!(
            e,
            DriverEvent::TornDown(Error::Protocol(toyseal_pairing::Error::TooLarge { .. }))
        )),
        "{p:?}"
    );
    assert_eq!(w.toy.buffered(), 0);
    // And a phone facing a malicious toy is bounded the same way.
    let mut w = world(228, MemoryLinkConfig::default());
    let (central, toy_end) = MemoryLink::pair(MemoryLinkConfig::default());
    let m = central.medium();
    w.phone.connect(central);
    let mut evil = RawPeer::new(toy_end);
    evil.send_packet(&first(u32::MAX, 0, &[0; 10])).unwrap();
    let ev = w.phone.poll(m.now(), &mut w.rng);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            DriverEvent::TornDown(Error::Protocol(toyseal_pairing::Error::TooLarge { .. }))
        )),
        "{ev:?}"
    );
    assert_eq!(w.phone.buffered(), 0);
}

#[test]
fn t29_forward_secrecy() {
    let mut w = world(29, cfg());
    let paired = w.pair();
    w.reconnect();
    w.medium.clear_tap();
    w.open_session(&paired.identity);
    let now = w.now();
    w.phone
        .send(
            &SessionMessage::RosterUpdate {
                rosters: vec![MARKER.as_bytes().to_vec()],
            },
            now,
        )
        .unwrap();
    w.toy
        .send(
            &SessionMessage::RosterUpdate {
                rosters: vec![MARKER.as_bytes().to_vec()],
            },
            now,
        )
        .unwrap();
    let p = w.pump();
    assert!(toy_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(ToyEvent::RosterRefused)
    )));
    let now = w.now();
    w.phone.endpoint_mut().close_session(now).unwrap();
    w.pump();
    let recording = w.medium.tap();
    assert!(!recording.contains(MARKER.as_bytes()));
    let up = recording.frames(Direction::PhoneToToy).unwrap();
    let down = recording.frames(Direction::ToyToPhone).unwrap();
    let (hello, reply) = (&up[0], &down[0]);
    let (up_transport, down_transport) = (&up[1], &down[1]);

    // Today: the attacker steals both long-term keys.
    let phone_text = w
        .phone
        .endpoint()
        .identity()
        .export_secret_key_text()
        .unwrap();
    let toy_text = w
        .toy
        .endpoint()
        .identity()
        .export_secret_key_text()
        .unwrap();
    let stolen_phone = DeviceIdentity::from_secret_key_text(&phone_text).unwrap();
    let stolen_toy = DeviceIdentity::from_secret_key_text(&toy_text).unwrap();
    let mut rng = rng(129);
    let t = Timestamp::default();

    // As the toy: answer the recorded HANDSHAKE_INIT with the stolen toy key. The handshake
    // "works" (KK with the right static keys), but with a new ephemeral: the recorded
    // transport frames were keyed by the original ephemerals, which are gone.
    let (mut as_toy, _) = toyseal_pairing::session::respond(
        &stolen_toy,
        &[stolen_phone.public().clone()],
        hello,
        SessionConfig::default(),
        t,
        &mut rng,
    )
    .unwrap();
    let r = as_toy.open(up_transport, t);
    assert!(
        matches!(r, Err(toyseal_pairing::Error::Authentication)),
        "{r:?}"
    );

    // As the phone: start with the stolen phone key and feed the recorded HANDSHAKE_RESP.
    let (init, _) = toyseal_pairing::Initiator::start(
        &stolen_phone,
        stolen_toy.public(),
        SessionConfig::default(),
        &mut rng,
    )
    .unwrap();
    let r = init.finish(reply, t);
    assert!(
        matches!(r, Err(toyseal_pairing::Error::Authentication)),
        "{r:?}"
    );

    // Re-running the whole recorded exchange with both stolen keys at once still needs one of
    // the two ephemeral secrets; each side draws a fresh one, so decryption fails both ways.
    let (init, hello2) = toyseal_pairing::Initiator::start(
        &stolen_phone,
        stolen_toy.public(),
        SessionConfig::default(),
        &mut rng,
    )
    .unwrap();
    assert_ne!(&hello2, hello, "a new ephemeral every time");
    let (mut toy_side, reply2) = toyseal_pairing::session::respond(
        &stolen_toy,
        &[stolen_phone.public().clone()],
        &hello2,
        SessionConfig::default(),
        t,
        &mut rng,
    )
    .unwrap();
    let mut phone_side = init.finish(&reply2, t).unwrap();
    // The stolen keys are the real ones (a fresh session works)...
    let f = phone_side
        .seal(&SessionMessage::Ping { nonce: 1 }, t)
        .unwrap();
    assert_eq!(
        toy_side.open(&f, t).unwrap(),
        SessionMessage::Ping { nonce: 1 }
    );
    // ...yet yesterday's frames stay sealed.
    assert!(toy_side.open(up_transport, t).is_err());
    assert!(phone_side.open(down_transport, t).is_err());
    println!("T29: with both long-term keys stolen, the recorded session stays unreadable");
}
