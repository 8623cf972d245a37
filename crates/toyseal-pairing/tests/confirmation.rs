//! THREATS.md T35, T37 (the toy's half) and T39 (forks, catch-up), performed against the real
//! `Toy` and `Phone` state machines, frames passed directly: the toy signs nothing and records
//! no founder without a deliberate confirmation at the toy; a fork is refused and reported on
//! every path; a toy any number of versions behind catches up over Bluetooth in batches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use std::sync::Arc;
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_pairing::*;
use toyseal_roster::{RecoveryKey, Roster, RosterProposal, SignedRoster};

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A toy and one phone over a perfect link, with a clock.
struct Pair {
    toy: Toy<MemoryFailureStore>,
    phone: Phone,
    rng: ChaCha20Rng,
    now: u64,
    toy_events: Vec<ToyEvent>,
    phone_events: Vec<PhoneEvent>,
}

impl Pair {
    fn new(seed: u8, mum: Arc<DeviceIdentity>) -> Self {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let toy_id = Arc::new(DeviceIdentity::generate(Role::Toy, &mut rng));
        let code = PairingCode::parse("4821-3957").unwrap();
        let toy = Toy::builder(toy_id, code, MemoryFailureStore::default())
            .build()
            .unwrap();
        Pair {
            toy,
            phone: Phone::new(mum),
            rng,
            now: 0,
            toy_events: Vec::new(),
            phone_events: Vec::new(),
        }
    }

    fn code() -> PairingCode {
        PairingCode::parse("4821-3957").unwrap()
    }

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

    fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    /// The phone pairs with the printed code; the toy then waits for its user.
    fn pair(&mut self) -> PairedToy {
        self.toy.press_pair_button(t(self.now)).unwrap();
        self.phone
            .pair(&Self::code(), PairingExpectations::default(), &mut self.rng)
            .unwrap();
        self.pump();
        self.phone_events
            .iter()
            .find_map(|e| match e {
                PhoneEvent::Paired(p) => Some(p.clone()),
                _ => None,
            })
            .expect("paired")
    }

    fn reconnect(&mut self) {
        self.phone.handle_disconnect();
        self.toy.handle_disconnect();
        self.pump();
    }

    fn open_session(&mut self) -> bool {
        let toy = self.toy.identity().public().clone();
        self.phone.open_session(&toy, &mut self.rng).unwrap();
        self.pump();
        self.phone_events
            .iter()
            .any(|e| matches!(e, PhoneEvent::SessionOpened(_)))
    }

    fn toy_saw(&self, f: impl Fn(&ToyEvent) -> bool) -> bool {
        self.toy_events.iter().any(f)
    }

    fn phone_saw(&self, f: impl Fn(&PhoneEvent) -> bool) -> bool {
        self.phone_events.iter().any(f)
    }

    fn phone_got_rosters(&self) -> bool {
        self.phone_saw(|e| matches!(e, PhoneEvent::Rosters(_)))
    }
}

/// A family {mum, dad, gran (a member), toy} with its recovery key at version 1, co-signed by
/// the toy over mum's session after mum confirmed at the toy. Returns the pair (mum's phone in
/// session), dad and gran.
fn family(seed: u8) -> (Pair, Arc<DeviceIdentity>, Arc<DeviceIdentity>) {
    let (p, mum, dad, _) = family_with_gran(seed);
    (p, mum, dad)
}

fn family_with_gran(
    seed: u8,
) -> (
    Pair,
    Arc<DeviceIdentity>,
    Arc<DeviceIdentity>,
    Arc<DeviceIdentity>,
) {
    let mut r = ChaCha20Rng::from_seed([seed.wrapping_add(1); 32]);
    let mum = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut r));
    let dad = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut r));
    let gran = Arc::new(DeviceIdentity::generate(Role::Member, &mut r));
    let recovery = RecoveryKey::generate(&mut r).unwrap();
    let mut p = Pair::new(seed, mum.clone());
    p.pair();
    p.toy.confirm(t(p.now)).unwrap();
    p.pump();
    p.reconnect();
    assert!(p.open_session());
    let toy = p.toy.identity().public().clone();
    let mut v1 = RosterProposal::founding(
        FamilyId::generate(&mut r),
        vec![
            mum.public().clone(),
            dad.public().clone(),
            gran.public().clone(),
            toy,
        ],
        *recovery.public(),
    )
    .unwrap()
    .sign(&mum);
    v1.cosign(&dad);
    v1.cosign(&gran);
    v1.cosign_recovery(&recovery);
    p.phone.push_rosters(&[v1], t(p.now)).unwrap();
    p.pump();
    p.toy.confirm(t(p.now)).unwrap();
    p.pump();
    let back = p
        .phone_events
        .iter()
        .find_map(|e| match e {
            PhoneEvent::Rosters(r) => r.first().cloned(),
            _ => None,
        })
        .expect("v1 co-signed");
    p.phone.set_rosters(vec![back]);
    assert_eq!(p.toy.roster().unwrap().version(), 1);
    (p, mum, dad, gran)
}

fn members(list: &[&PublicIdentity]) -> Vec<PublicIdentity> {
    list.iter().map(|m| (*m).clone()).collect()
}

#[test]
fn t35_a_stolen_guardian_key_in_session_gets_no_toy_signature() {
    let (mut p, mum, dad, gran) = family_with_gran(35);
    let v1 = p.toy.roster().unwrap().clone();
    let toy = p.toy.identity().public().clone();
    // The thief holds mum's key (her phone stolen, or its key copied) and reaches the toy over
    // Bluetooth: a new phone with mum's identity opens a session, as she would.
    p.phone.close_session(t(p.now)).unwrap();
    p.pump();
    p.phone = Phone::new(mum.clone());
    p.reconnect();
    assert!(p.open_session(), "mum's key is admitted");

    // Attack 1: remove gran's phone — the one kind of change a guardian and the toy may make
    // together (roster.md §3.3). Signed by mum's key only: the toy asks its user and signs
    // nothing without the gesture.
    let remove_gran = RosterProposal::next(&v1, members(&[mum.public(), dad.public(), &toy]))
        .unwrap()
        .sign(&mum);
    p.phone
        .push_rosters(std::slice::from_ref(&remove_gran), t(p.now))
        .unwrap();
    p.pump();
    let Some((change, expires_at)) = p.toy_events.iter().find_map(|e| match e {
        ToyEvent::ConfirmationRequested {
            summary: Confirmation::Roster(change),
            expires_at,
        } => Some((change.clone(), *expires_at)),
        _ => None,
    }) else {
        panic!("the toy asks its user: {:?}", p.toy_events)
    };
    // The summary the toy speaks: gran, a member, removed; nobody added.
    assert_eq!(change.removed, vec![(gran.device_id(), Role::Member)]);
    assert!(change.added.is_empty());
    assert_eq!((change.from_version, change.version), (1, 2));
    assert_eq!(change.by, mum.device_id());
    assert_eq!(expires_at, t(p.now + 30_000));
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::AwaitingConfirmation {
            version: Some(2),
            seconds: 30
        }
    )));
    assert!(!p.phone_got_rosters(), "nothing signed");
    assert_eq!(p.toy.roster(), Some(&v1));
    // Just before the window ends: still pending, still nothing.
    p.advance(29_999);
    p.pump();
    assert!(p.toy.pending_confirmation().is_some());
    assert_eq!(p.toy.roster(), Some(&v1));
    // Nobody makes the gesture: it expires, nothing signed, the thief is told.
    p.advance(1);
    p.pump();
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::ConfirmationExpired)));
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::ToyAnswered {
            version: Some(2),
            answer: ToyAnswer::Expired
        }
    )));
    assert!(!p.phone_got_rosters());
    assert_eq!(p.toy.roster(), Some(&v1));
    assert!(matches!(
        p.toy.confirm(t(p.now)),
        Err(Error::UnexpectedMessage)
    ));

    // Attacks 2 and 3: remove dad (the other guardian), or add a toy-role key the thief holds
    // (a standing quorum from anywhere; it proves possession). A guardian and the toy can never
    // make these changes, so the toy refuses at once: no confirmation is even asked for.
    let mut r = ChaCha20Rng::from_seed([135; 32]);
    let fake_toy = DeviceIdentity::generate(Role::Toy, &mut r);
    let mut add_toy = RosterProposal::next(
        &v1,
        members(&[
            mum.public(),
            dad.public(),
            gran.public(),
            &toy,
            fake_toy.public(),
        ]),
    )
    .unwrap()
    .sign(&mum);
    add_toy.cosign(&fake_toy);
    let remove_dad = RosterProposal::next(&v1, members(&[mum.public(), gran.public(), &toy]))
        .unwrap()
        .sign(&mum);
    for grant in [add_toy, remove_dad] {
        p.toy_events.clear();
        p.phone_events.clear();
        p.phone.push_rosters(&[grant], t(p.now)).unwrap();
        p.pump();
        assert!(
            !p.toy_saw(|e| matches!(e, ToyEvent::ConfirmationRequested { .. })),
            "a grant is never put to the toy's button: {:?}",
            p.toy_events
        );
        assert!(p.phone_saw(|e| matches!(
            e,
            PhoneEvent::ToyAnswered {
                version: Some(2),
                answer: ToyAnswer::Refused
            }
        )));
        assert!(!p.phone_got_rosters());
        assert_eq!(p.toy.roster(), Some(&v1));
    }
    assert!(!p.toy.roster().unwrap().contains(fake_toy.public()));

    // One pending confirmation at a time: a second push is answered busy; a decline (the
    // parent at the toy says no) signs nothing.
    p.phone
        .push_rosters(std::slice::from_ref(&remove_gran), t(p.now))
        .unwrap();
    p.pump();
    p.phone
        .push_rosters(std::slice::from_ref(&remove_gran), t(p.now))
        .unwrap();
    p.pump();
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::ToyAnswered {
            answer: ToyAnswer::Busy,
            ..
        }
    )));
    p.toy.decline(t(p.now)).unwrap();
    p.pump();
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::ConfirmationDeclined)));
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::ToyAnswered {
            version: Some(2),
            answer: ToyAnswer::Declined
        }
    )));
    assert!(!p.phone_got_rosters());
    assert_eq!(p.toy.roster(), Some(&v1));

    // A session that ends while a confirmation is pending cancels it: nothing signed.
    p.phone
        .push_rosters(std::slice::from_ref(&remove_gran), t(p.now))
        .unwrap();
    p.pump();
    p.reconnect();
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::ConfirmationCancelled)));
    assert!(p.toy.pending_confirmation().is_none());
    assert_eq!(p.toy.roster(), Some(&v1));

    // The control: the same removal with the gesture at the toy is co-signed (so the refusals
    // above are the confirmation's doing, not a malformed proposal).
    assert!(p.open_session());
    p.phone.push_rosters(&[remove_gran], t(p.now)).unwrap();
    p.pump();
    p.toy.confirm(t(p.now)).unwrap();
    p.pump();
    assert!(p.phone_got_rosters());
    assert_eq!(p.toy.roster().unwrap().version(), 2);
    assert!(!p.toy.roster().unwrap().contains(gran.public()));
    println!(
        "T35: a thief with a guardian's key in session: a removal expired and was declined unsigned; removing a guardian and adding a toy-role key were refused without a prompt; the toy stayed at v1"
    );
}

#[test]
fn t37_the_toy_records_no_founder_without_a_confirmation_at_the_toy() {
    let mut r = ChaCha20Rng::from_seed([37; 32]);
    let mum = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut r));
    let mut p = Pair::new(37, mum.clone());
    p.pair();
    // The SAS was shown (the parent compares), but nobody confirmed at the toy yet.
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::Sas(_))));
    assert!(p.toy_saw(|e| matches!(
        e,
        ToyEvent::ConfirmationRequested { summary: Confirmation::Founder { phone }, .. }
            if *phone == mum.device_id()
    )));
    assert!(!p.toy_saw(|e| matches!(e, ToyEvent::Paired { .. })));
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::AwaitingConfirmation {
            version: None,
            seconds: 30
        }
    )));
    assert_eq!(p.toy.founder(), None);
    assert!(!p.toy.has_guardian());
    // The phone is not admitted to a session meanwhile.
    p.reconnect();
    assert!(!p.open_session());
    assert!(p.phone_saw(|e| matches!(e, PhoneEvent::SessionFailed(PhoneFailure::NotPairable))));

    // Again, and this time the window expires on the same connection: the phone is told.
    p.reconnect();
    p.pair();
    p.advance(30_000);
    p.pump();
    assert!(p.toy_saw(|e| matches!(e, ToyEvent::ConfirmationExpired)));
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::ToyAnswered {
            version: None,
            answer: ToyAnswer::Expired
        }
    )));
    assert_eq!(p.toy.founder(), None);

    // Declined at the toy: likewise.
    p.reconnect();
    p.pair();
    p.toy.decline(t(p.now)).unwrap();
    p.pump();
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::ToyAnswered {
            version: None,
            answer: ToyAnswer::Declined
        }
    )));
    assert_eq!(p.toy.founder(), None);

    // The printed code stays valid until a confirmation: another phone pairs, and with the
    // gesture at the toy it becomes the founder.
    let dad = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut r));
    p.reconnect();
    p.phone = Phone::new(dad.clone());
    p.pair();
    p.toy.confirm(t(p.now)).unwrap();
    p.pump();
    assert!(p.toy_saw(|e| matches!(
        e,
        ToyEvent::Paired { phone, code: CodeKind::Printed } if phone == dad.public()
    )));
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::ToyAnswered {
            version: None,
            answer: ToyAnswer::Confirmed
        }
    )));
    assert_eq!(p.toy.founder(), Some(dad.public()));
    p.reconnect();
    assert!(p.open_session());
}

/// Version `n + 1` after `current` with the same members, signed by both guardians (a quorum
/// without the toy).
fn by_both(current: &Roster, mum: &DeviceIdentity, dad: &DeviceIdentity) -> SignedRoster {
    let mut v = RosterProposal::next(current, current.members().to_vec())
        .unwrap()
        .sign(mum);
    v.cosign(dad);
    v
}

#[test]
fn t39_a_fork_is_refused_and_reported_on_the_toy_and_the_phone() {
    let (mut p, mum, dad) = family(39);
    let v1 = p.toy.roster().unwrap().clone();
    // Two versions 2: the family's (same members) and another (dad removed), both with a
    // two-guardian quorum (as keys stolen from both could make).
    let ours = by_both(&v1, &mum, &dad);
    let mut theirs = RosterProposal::next(&v1, members(&[mum.public(), dad.public()]))
        .unwrap()
        .sign(&dad);
    theirs.cosign(&mum);
    assert_ne!(ours.hash(), theirs.hash());
    // The toy applies ours over the session.
    p.phone
        .push_rosters(std::slice::from_ref(&ours), t(p.now))
        .unwrap();
    p.pump();
    assert_eq!(p.toy.roster().unwrap().version(), 2);

    // Session path: the other version 2 is refused and reported on both sides.
    p.phone.push_rosters(&[theirs.clone()], t(p.now)).unwrap();
    p.pump();
    assert!(p.toy_saw(|e| matches!(
        e,
        ToyEvent::RosterFork { version: 2, held, other }
            if *held == ours.hash() && *other == theirs.hash()
    )));
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::ToyAnswered {
            version: Some(2),
            answer: ToyAnswer::Fork
        }
    )));
    assert_eq!(p.toy.roster().unwrap().signed().hash(), ours.hash());

    // Cloud path: likewise, a typed error and the event.
    let r = p.toy.apply_rosters(&[theirs.clone()], t(p.now));
    assert!(matches!(r, Err(Error::RosterFork { version: 2 })), "{r:?}");
    let events = p.toy.poll(t(p.now)).events;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ToyEvent::RosterFork { version: 2, .. }))
    );
    assert_eq!(p.toy.roster().unwrap().signed().hash(), ours.hash());

    // Phone path: a phone whose chain holds the other version 2 learns of the fork from the
    // toy's head at session start, and pushes nothing.
    p.reconnect();
    p.phone
        .set_rosters(vec![v1.signed().clone(), theirs.clone()]);
    assert!(p.open_session());
    assert!(p.phone_saw(|e| matches!(
        e,
        PhoneEvent::RosterFork { version: 2, toy, phone }
            if *toy == ours.hash() && *phone == theirs.hash()
    )));
    assert!(!p.toy_saw(|e| matches!(e, ToyEvent::RosterFork { .. } | ToyEvent::RosterRefused)));
    assert_eq!(p.toy.roster().unwrap().signed().hash(), ours.hash());
}

#[test]
fn t39_a_toy_40_versions_behind_catches_up_over_bluetooth_in_batches() {
    let (mut p, mum, dad) = family(40);
    let v1 = p.toy.roster().unwrap().clone();
    // The family moved on 40 versions while the toy was away (two guardians sign each).
    let mut chain = vec![v1.signed().clone()];
    let mut head = v1.clone();
    for _ in 0..40 {
        let next = by_both(&head, &mum, &dad);
        head = head.verify_next(next.clone()).unwrap();
        chain.push(next);
    }
    assert_eq!(head.version(), 41);
    p.phone.close_session(t(p.now)).unwrap();
    p.pump();
    p.reconnect();
    p.phone.set_rosters(chain.clone());
    assert!(p.open_session());
    // The phone sent versions 2 … 41 from the toy's stated head (1) in batches of at most 16:
    // 16, 16, 8, each verified and applied in turn.
    let applied: Vec<u64> = p
        .toy_events
        .iter()
        .filter_map(|e| match e {
            ToyEvent::RosterApplied(r) => Some(r.version()),
            _ => None,
        })
        .collect();
    assert_eq!(applied, vec![17, 33, 41]);
    assert_eq!(p.toy.roster(), Some(&head));
    // A toy that is current gets nothing more at the next session.
    p.reconnect();
    assert!(p.open_session());
    assert!(!p.toy_saw(|e| matches!(e, ToyEvent::RosterApplied(_))));
}
