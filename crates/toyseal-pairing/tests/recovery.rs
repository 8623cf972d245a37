//! THREATS.md T39 (the family that lost its only phone), performed against the real `Toy` and
//! `Phone` state machines, frames passed directly: the long press opens the toy's recovery
//! window; a new phone pairs with the printed code, proves the recovery key over its session's
//! handshake hash, pushes one version signed by the key, and the toy co-signs it only after a
//! second confirmation at the toy (docs/spec/pairing.md §7.2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use std::sync::Arc;
use toyseal_core::{DeviceIdentity, FamilyId, Role};
use toyseal_pairing::*;
use toyseal_roster::{RecoveryKey, Roster, RosterProposal, SignedRoster};

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn code() -> PairingCode {
    PairingCode::parse("4821-3957").unwrap()
}

/// A toy and whichever phone is near it, over a perfect link, with a clock.
struct Pair {
    toy: Toy<MemoryFailureStore>,
    phone: Phone,
    rng: ChaCha20Rng,
    now: u64,
    toy_events: Vec<ToyEvent>,
    phone_events: Vec<PhoneEvent>,
}

impl Pair {
    /// Moves frames both ways until neither side has anything to send; the events since the
    /// last call are in `toy_events` / `phone_events`.
    fn pump(&mut self) {
        self.toy_events.clear();
        self.phone_events.clear();
        let now = t(self.now);
        self.toy.handle_timeout(now);
        self.phone.handle_timeout(now);
        loop {
            let mut moved = false;
            while let Some(f) = self.phone.poll_transmit() {
                self.toy.handle_frame(&f, now, &mut self.rng);
                moved = true;
            }
            while let Some(f) = self.toy.poll_transmit() {
                self.phone.handle_frame(&f, now, &mut self.rng);
                moved = true;
            }
            self.toy_events
                .extend(std::iter::from_fn(|| self.toy.poll_event()));
            self.phone_events
                .extend(std::iter::from_fn(|| self.phone.poll_event()));
            if !moved {
                return;
            }
        }
    }

    fn reconnect(&mut self) {
        self.phone.handle_disconnect();
        self.toy.handle_disconnect();
        self.pump();
    }

    /// A different phone comes near the toy (new connection).
    fn switch_phone(&mut self, identity: Arc<DeviceIdentity>) {
        self.phone = Phone::new(identity);
        self.reconnect();
    }

    /// The phone pairs with the printed code (no button pressed here); whether it paired.
    fn pair_printed(&mut self) -> bool {
        self.phone
            .pair(&code(), PairingExpectations::default(), &mut self.rng)
            .unwrap();
        self.pump();
        self.phone_saw(|e| matches!(e, PhoneEvent::Paired(_)))
    }

    fn open_session(&mut self) -> bool {
        let toy = self.toy.identity().public().clone();
        self.phone.open_session(&toy, &mut self.rng).unwrap();
        self.pump();
        self.phone_saw(|e| matches!(e, PhoneEvent::SessionOpened(_)))
    }

    fn toy_saw(&self, f: impl Fn(&ToyEvent) -> bool) -> bool {
        self.toy_events.iter().any(f)
    }

    fn phone_saw(&self, f: impl Fn(&PhoneEvent) -> bool) -> bool {
        self.phone_events.iter().any(f)
    }

    fn rosters_received(&self) -> Vec<SignedRoster> {
        self.phone_events
            .iter()
            .filter_map(|e| match e {
                PhoneEvent::Rosters(r) => Some(r.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn answered(&self, version: u64, answer: ToyAnswer) -> bool {
        self.phone_saw(|e| {
            *e == PhoneEvent::ToyAnswered {
                version: Some(version),
                answer,
            }
        })
    }
}

/// The most common family: mum's phone (the only guardian), the toy, and the printed
/// recovery key, at roster version 1 co-signed by the toy after mum confirmed at the toy.
struct Family {
    p: Pair,
    mum: Arc<DeviceIdentity>,
    recovery: RecoveryKey,
    v1: Roster,
}

fn family(seed: u8) -> Family {
    let mut r = ChaCha20Rng::from_seed([seed.wrapping_add(1); 32]);
    let mum = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut r));
    let recovery = RecoveryKey::generate(&mut r).unwrap();
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let toy_id = Arc::new(DeviceIdentity::generate(Role::Toy, &mut rng));
    let toy = Toy::builder(toy_id, code(), MemoryFailureStore::default())
        .build()
        .unwrap();
    let mut p = Pair {
        toy,
        phone: Phone::new(mum.clone()),
        rng,
        now: 0,
        toy_events: Vec::new(),
        phone_events: Vec::new(),
    };
    p.toy.press_pair_button(t(0)).unwrap();
    assert!(p.pair_printed());
    p.toy.confirm(t(0)).unwrap();
    p.pump();
    p.reconnect();
    assert!(p.open_session());
    let toy = p.toy.identity().public().clone();
    let mut v1 = RosterProposal::founding(
        FamilyId::generate(&mut r),
        vec![mum.public().clone(), toy],
        *recovery.public(),
    )
    .unwrap()
    .sign(&mum);
    v1.cosign_recovery(&recovery);
    p.phone.push_rosters(&[v1], t(p.now)).unwrap();
    p.pump();
    p.toy.confirm(t(p.now)).unwrap();
    p.pump();
    let back = p.rosters_received().first().cloned().expect("v1 co-signed");
    let v1 = Roster::verify_founding(back.clone()).unwrap();
    p.phone.set_rosters(vec![back]);
    assert_eq!(p.toy.roster(), Some(&v1));
    Family {
        p,
        mum,
        recovery,
        v1,
    }
}

/// Version 2 as the recovering family builds it: the new phone as guardian, the toy; mum's
/// lost phone removed (recorded as departed); signed by the recovery key, and by the new phone
/// (proof of possession of the key it adds).
fn recovery_version(v1: &Roster, new_phone: &DeviceIdentity, key: &RecoveryKey) -> SignedRoster {
    let toy = v1
        .members()
        .iter()
        .find(|m| m.role() == Role::Toy)
        .unwrap()
        .clone();
    let mut v2 = RosterProposal::next(v1, vec![new_phone.public().clone(), toy])
        .unwrap()
        .sign_with_recovery(key);
    v2.cosign(new_phone);
    v2
}

#[test]
fn t39_a_family_that_lost_its_only_phone_recovers_with_the_recovery_key_and_the_toy() {
    let Family {
        mut p,
        mum,
        recovery,
        v1,
    } = family(39);
    let mut r = ChaCha20Rng::from_seed([139; 32]);
    let new_phone = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut r));

    // Mum's phone is lost. The new phone is unknown to the toy, and the printed code admits no
    // one while the family exists.
    p.switch_phone(new_phone.clone());
    assert!(!p.open_session());
    p.reconnect();
    assert!(!p.pair_printed());
    assert!(p.phone_saw(|e| matches!(e, PhoneEvent::PairingFailed(PhoneFailure::NotPairable))));

    // The long press at the toy opens the recovery window (5 minutes by default).
    p.reconnect();
    p.toy.open_recovery_window(t(p.now)).unwrap();
    assert_eq!(p.toy.recovery_window(), Some(t(p.now + 300_000)));
    assert!(
        p.pair_printed(),
        "the printed code pairs in the recovery window"
    );
    assert!(p.toy_saw(|e| matches!(
        e,
        ToyEvent::Paired { phone, code: CodeKind::Recovery } if phone == new_phone.public()
    )));
    assert!(
        !p.phone_saw(|e| matches!(e, PhoneEvent::AwaitingConfirmation { .. })),
        "no founder is recorded: the toy has a family"
    );
    assert_eq!(p.toy.recovery_candidate(), Some(new_phone.public()));
    assert_eq!(p.toy.roster(), Some(&v1));

    // It gets a session, but governs nothing yet: no command reaches the toy's application,
    // and it cannot open a pairing window.
    p.reconnect();
    assert!(p.open_session(), "the recovery window admits the new phone");
    p.phone
        .send(&SessionMessage::Control(Control::StartRecording), t(p.now))
        .unwrap();
    p.pump();
    assert!(!p.toy_saw(|e| matches!(e, ToyEvent::Message(_))));
    p.phone.open_pairing_window(t(p.now), &mut p.rng).unwrap();
    p.pump();
    assert!(!p.toy_saw(|e| matches!(e, ToyEvent::PairingWindowOpened { .. })));
    // A version signed by the recovery key before the proof: refused, nothing asked.
    let v2 = recovery_version(&v1, &new_phone, &recovery);
    p.phone
        .push_rosters(std::slice::from_ref(&v2), t(p.now))
        .unwrap();
    p.pump();
    assert!(p.answered(2, ToyAnswer::Refused));
    assert!(!p.toy_saw(|e| matches!(e, ToyEvent::ConfirmationRequested { .. })));

    // The parent scans the printed recovery key; the phone proves it over this session.
    let printed = recovery.export_printable().unwrap();
    let scanned = RecoveryKey::from_printable(&printed).unwrap();
    p.phone.prove_recovery(&scanned, t(p.now)).unwrap();
    drop(scanned);
    p.pump();
    assert!(p.toy_saw(|e| *e
        == ToyEvent::RecoveryProved {
            phone: new_phone.device_id()
        }));
    assert!(p.phone_saw(|e| *e == PhoneEvent::RecoveryAnswered(RecoveryAnswer::Proved)));
    // The toy hands over its head, which the new phone builds on.
    let head = p.rosters_received();
    assert_eq!(head, vec![v1.signed().clone()]);
    let held = Roster::verify_founding(head[0].clone()).unwrap();
    assert_eq!(held.recovery_key(), recovery.public());

    // It pushes version 2; the toy asks its user a second time, with the summary.
    let v2 = recovery_version(&held, &new_phone, &recovery);
    p.phone.push_rosters(&[v2], t(p.now)).unwrap();
    p.pump();
    let Some((change, expires_at)) = p.toy_events.iter().find_map(|e| match e {
        ToyEvent::ConfirmationRequested {
            summary: Confirmation::Recovery(change),
            expires_at,
        } => Some((change.clone(), *expires_at)),
        _ => None,
    }) else {
        panic!("the toy asks its user: {:?}", p.toy_events)
    };
    assert_eq!(change.added, vec![(new_phone.device_id(), Role::Guardian)]);
    assert_eq!(change.removed, vec![(mum.device_id(), Role::Guardian)]);
    assert_eq!(change.by, new_phone.device_id());
    assert_eq!((change.from_version, change.version), (1, 2));
    assert_eq!(expires_at, t(p.now + 30_000));
    assert!(p.phone_saw(|e| *e
        == PhoneEvent::AwaitingConfirmation {
            version: Some(2),
            seconds: 30
        }));
    assert!(p.rosters_received().is_empty(), "nothing signed yet");
    assert_eq!(p.toy.roster(), Some(&v1));

    // The deliberate gesture at the toy: it co-signs, verifies, applies and sends it back.
    p.now += 5_000;
    p.toy.confirm(t(p.now)).unwrap();
    p.pump();
    assert!(p.answered(2, ToyAnswer::Confirmed));
    let back = p.rosters_received();
    assert_eq!(back.len(), 1);
    let v2 = v1.verify_next(back[0].clone()).unwrap();
    assert_eq!(p.toy.roster(), Some(&v2));
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::RosterApplied(r) if r == &v2)));
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::RecoveryWindowClosed)));
    assert_eq!(p.toy.recovery_window(), None);
    assert!(v2.contains(new_phone.public()));
    assert!(!v2.contains(mum.public()));
    assert!(
        v2.departed()
            .iter()
            .any(|d| d.identity() == mum.public() && d.last_sequence() == 0),
        "the lost phone is recorded as departed"
    );
    // The new phone's session goes on, now as a guardian's.
    assert!(p.phone.session().is_some());
    assert_eq!(
        p.toy.admitted(new_phone.device_id()),
        Some(new_phone.public())
    );

    // The lost phone (or whoever holds it) is no longer admitted to a session.
    p.switch_phone(mum.clone());
    assert!(!p.open_session());
    assert!(p.phone_saw(|e| matches!(e, PhoneEvent::SessionFailed(PhoneFailure::NotPairable))));
    // The printed code admits no one again.
    p.reconnect();
    assert!(!p.pair_printed());
    // The new phone is admitted in a new session, and governs.
    p.switch_phone(new_phone.clone());
    assert!(p.open_session());
    p.phone.open_pairing_window(t(p.now), &mut p.rng).unwrap();
    p.pump();
    assert!(p.phone_saw(|e| *e == PhoneEvent::PairingWindowAck(true)));
    println!(
        "T39: the only phone lost; the long press, the printed code, the recovery key's proof over the session and a second confirmation at the toy made v2 {{new phone, toy}}; the lost phone is departed and refused"
    );
}

#[test]
fn t39_recovery_needs_the_window_the_key_and_the_confirmation() {
    let Family {
        mut p,
        mum,
        recovery,
        v1,
    } = family(40);
    let mut r = ChaCha20Rng::from_seed([140; 32]);
    let new_phone = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut r));
    let wrong_key = RecoveryKey::generate(&mut r).unwrap();
    let v2 = recovery_version(&v1, &new_phone, &recovery);

    // No window. A guardian in session cannot use the recovery path either: its proof is
    // answered "closed", and a version signed by the recovery key alone is refused unasked.
    p.phone.prove_recovery(&recovery, t(p.now)).unwrap();
    p.pump();
    assert!(p.phone_saw(|e| *e == PhoneEvent::RecoveryAnswered(RecoveryAnswer::Closed)));
    p.phone
        .push_rosters(std::slice::from_ref(&v2), t(p.now))
        .unwrap();
    p.pump();
    assert!(p.answered(2, ToyAnswer::Refused));
    assert!(!p.toy_saw(|e| matches!(e, ToyEvent::ConfirmationRequested { .. })));
    // The new phone: the printed code is refused without the long press.
    p.switch_phone(new_phone.clone());
    assert!(!p.pair_printed());
    assert!(p.phone_saw(|e| matches!(e, PhoneEvent::PairingFailed(PhoneFailure::NotPairable))));
    assert_eq!(p.toy.roster(), Some(&v1));

    // The window opens, but a member's phone cannot take the recovery path (it has sessions).
    p.switch_phone(mum.clone());
    p.toy.open_recovery_window(t(p.now)).unwrap();
    assert!(!p.pair_printed());
    assert!(p.phone_saw(|e| matches!(e, PhoneEvent::PairingFailed(PhoneFailure::WrongPeer))));

    // A wrong key: refused, the window closes, the session ends, the phone is forgotten.
    p.switch_phone(new_phone.clone());
    p.toy.open_recovery_window(t(p.now)).unwrap();
    assert!(p.pair_printed());
    p.reconnect();
    assert!(p.open_session());
    p.phone.prove_recovery(&wrong_key, t(p.now)).unwrap();
    p.pump();
    assert!(p.phone_saw(|e| *e == PhoneEvent::RecoveryAnswered(RecoveryAnswer::Refused)));
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::RecoveryRefused)));
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::RecoveryWindowClosed)));
    assert!(p.phone_saw(|e| matches!(e, PhoneEvent::SessionClosed)));
    assert_eq!(p.toy.recovery_window(), None);
    p.reconnect();
    assert!(
        !p.open_session(),
        "the window closed: the phone is not admitted"
    );
    p.reconnect();
    assert!(!p.pair_printed(), "the printed code admits no one again");

    // The right key's proof, replayed from another session: refused. The phone proves in
    // session 1 (an eavesdropper or a relay keeps the signature), then session 2 gets it.
    p.reconnect();
    p.toy.open_recovery_window(t(p.now)).unwrap();
    assert!(p.pair_printed());
    p.reconnect();
    assert!(p.open_session());
    let first = *p.phone.session().unwrap().handshake_hash();
    let replayed = *recovery.sign_recovery_proof(&first).as_bytes();
    p.reconnect();
    assert!(p.open_session());
    assert_ne!(p.phone.session().unwrap().handshake_hash(), &first);
    p.phone
        .send(
            &SessionMessage::RecoveryProof {
                signature: replayed,
            },
            t(p.now),
        )
        .unwrap();
    p.pump();
    assert!(p.phone_saw(|e| *e == PhoneEvent::RecoveryAnswered(RecoveryAnswer::Refused)));
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::RecoveryWindowClosed)));
    assert!(
        p.rosters_received().is_empty(),
        "the toy's roster is not handed over"
    );

    // The right proof, but nobody confirms at the toy: it expires, nothing signed, the window
    // closes and the phone's session ends.
    p.reconnect();
    p.toy.open_recovery_window(t(p.now)).unwrap();
    assert!(p.pair_printed());
    p.reconnect();
    assert!(p.open_session());
    p.phone.prove_recovery(&recovery, t(p.now)).unwrap();
    p.pump();
    assert!(p.phone_saw(|e| *e == PhoneEvent::RecoveryAnswered(RecoveryAnswer::Proved)));
    p.phone
        .push_rosters(std::slice::from_ref(&v2), t(p.now))
        .unwrap();
    p.pump();
    assert!(p.toy_saw(|e| matches!(
        e,
        ToyEvent::ConfirmationRequested {
            summary: Confirmation::Recovery(_),
            ..
        }
    )));
    p.now += 29_999;
    p.pump();
    assert!(p.toy.pending_confirmation().is_some());
    p.now += 1;
    p.pump();
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::ConfirmationExpired)));
    assert!(p.answered(2, ToyAnswer::Expired));
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::RecoveryWindowClosed)));
    assert!(p.phone_saw(|e| matches!(e, PhoneEvent::SessionClosed)));
    assert!(p.rosters_received().is_empty());
    assert!(matches!(
        p.toy.confirm(t(p.now)),
        Err(Error::UnexpectedMessage)
    ));
    assert_eq!(p.toy.roster(), Some(&v1));

    // Declined at the toy: likewise.
    p.reconnect();
    p.toy.open_recovery_window(t(p.now)).unwrap();
    assert!(p.pair_printed());
    p.reconnect();
    assert!(p.open_session());
    p.phone.prove_recovery(&recovery, t(p.now)).unwrap();
    p.phone
        .push_rosters(std::slice::from_ref(&v2), t(p.now))
        .unwrap();
    p.pump();
    p.toy.decline(t(p.now)).unwrap();
    p.pump();
    assert!(p.answered(2, ToyAnswer::Declined));
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::RecoveryWindowClosed)));
    assert!(p.rosters_received().is_empty());
    assert_eq!(p.toy.roster(), Some(&v1));

    // The window expires on its own: the paired phone is no longer admitted.
    p.reconnect();
    p.toy.open_recovery_window(t(p.now)).unwrap();
    assert!(p.pair_printed());
    p.now += 300_000;
    p.reconnect();
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::RecoveryWindowClosed)));
    assert!(!p.open_session());
    assert_eq!(p.toy.roster(), Some(&v1));

    // The second confirmation never outlasts the recovery window: 10 s before it closes the
    // toy asks for 10 s, not 30, and then the window closes with it.
    p.reconnect();
    p.toy.open_recovery_window(t(p.now)).unwrap();
    let closes = p.toy.recovery_window().unwrap();
    assert!(p.pair_printed());
    p.now += 290_000;
    p.reconnect();
    assert!(p.open_session());
    p.phone.prove_recovery(&recovery, t(p.now)).unwrap();
    p.phone
        .push_rosters(std::slice::from_ref(&v2), t(p.now))
        .unwrap();
    p.pump();
    assert!(p.toy_saw(|e| matches!(
        e,
        ToyEvent::ConfirmationRequested { expires_at, .. } if *expires_at == closes
    )));
    assert!(p.phone_saw(|e| *e
        == PhoneEvent::AwaitingConfirmation {
            version: Some(2),
            seconds: 10
        }));
    p.now += 10_000;
    p.pump();
    assert!(p.answered(2, ToyAnswer::Expired));
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::RecoveryWindowClosed)));
    assert_eq!(p.toy.roster(), Some(&v1));

    // The control: the same steps with the gesture succeed (so each refusal above is the
    // missing window, key or confirmation's doing).
    p.reconnect();
    p.toy.open_recovery_window(t(p.now)).unwrap();
    assert!(p.pair_printed());
    p.reconnect();
    assert!(p.open_session());
    p.phone.prove_recovery(&recovery, t(p.now)).unwrap();
    p.phone.push_rosters(&[v2], t(p.now)).unwrap();
    p.pump();
    p.toy.confirm(t(p.now)).unwrap();
    p.pump();
    assert!(p.answered(2, ToyAnswer::Confirmed));
    assert_eq!(p.toy.roster().unwrap().version(), 2);
    println!(
        "T39: without the window, with a wrong key, with a proof replayed from another session, without the confirmation (expired, declined), and after the window expired, nothing was signed; the control recovered"
    );
}
