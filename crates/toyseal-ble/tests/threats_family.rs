//! THREATS.md T19 and T30–T34 (the toy's allow-list is its roster; pairing after the first
//! guardian), each performed for real: the real `Toy` and `Phone` endpoints, driven by the
//! real driver over the in-memory link, with the attacker as a phone, a fake toy, a raw end of
//! the link or a man in the middle on the air.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use toyseal_ble::memory::frame_mitm;
use toyseal_ble::{Direction, DriverConfig, DriverEvent, Error, MemoryLink, MemoryLinkConfig};
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity, Role};
use toyseal_pairing::{
    CodeKind, Frame, MemoryFailureStore, PairingCode, PairingExpectations, Phone, PhoneEvent,
    PhoneFailure, PhonePairing, SessionMessage, Toy, ToyEvent,
};
use toyseal_roster::{Error as RosterError, Roster};
use toyseal_roster::{RecoveryKey, RosterProposal, SignedRoster};

/// The tests' families' recovery key (every family keeps one, roster.md §1.2).
static RECOVERY: std::sync::LazyLock<RecoveryKey> =
    std::sync::LazyLock::new(|| RecoveryKey::generate(&mut rng(200)).unwrap());

fn cfg() -> MemoryLinkConfig {
    MemoryLinkConfig::default().with_latency(Duration::from_millis(20))
}

/// A fresh link between `phone` and `toy` (the toy drops whoever it was connected to).
fn link(phone: &mut TestPhone, toy: &mut TestToy) -> MemoryLink {
    let (central, peripheral) = MemoryLink::pair(cfg());
    let medium = central.medium();
    phone.connect(central);
    toy.connect(peripheral);
    medium
}

fn pump(phone: &mut TestPhone, toy: &mut TestToy, m: &MemoryLink) -> Pumped {
    toyseal_ble::run_until_idle(phone, toy, m, &mut rng(99)).unwrap()
}

fn guardian_phone(rng: &mut chacha20::ChaCha20Rng) -> (Arc<DeviceIdentity>, TestPhone) {
    let id = Arc::new(DeviceIdentity::generate(Role::Guardian, rng));
    let phone = TestPhone::new(Phone::new(id.clone()), DriverConfig::default());
    (id, phone)
}

/// Version 1 listing `guardians` (and any other members) and the toy, signed by every one of
/// them and the family's recovery key (the first is the founder, who pushes it; the toy adds
/// its co-signature over the founder's session).
fn founding(family: FamilyId, guardians: &[&DeviceIdentity], toy: &PublicIdentity) -> SignedRoster {
    let mut members: Vec<PublicIdentity> = guardians.iter().map(|g| g.public().clone()).collect();
    members.push(toy.clone());
    let mut v = RosterProposal::founding(family, members, *RECOVERY.public())
        .unwrap()
        .sign(guardians[0]);
    for g in &guardians[1..] {
        v.cosign(g);
    }
    v.cosign_recovery(&RECOVERY);
    v
}

/// The version after `current` with `guardians` and the toy, signed by `signers`.
fn next(
    chain: &[SignedRoster],
    guardians: &[&DeviceIdentity],
    toy: &PublicIdentity,
    signers: &[&DeviceIdentity],
) -> SignedRoster {
    let current = from_founding(chain).unwrap();
    let mut members: Vec<PublicIdentity> = guardians.iter().map(|g| g.public().clone()).collect();
    members.push(toy.clone());
    let mut v = RosterProposal::next(&current, members)
        .unwrap()
        .sign(signers[0]);
    for s in &signers[1..] {
        v.cosign(s);
    }
    v
}

fn phone_opened(p: &Pumped) -> bool {
    phone_saw(p, |e| {
        matches!(e, DriverEvent::Endpoint(PhoneEvent::SessionOpened(_)))
    })
}

fn phone_refused(p: &Pumped) -> bool {
    phone_saw(p, |e| {
        matches!(
            e,
            DriverEvent::Endpoint(PhoneEvent::SessionFailed(PhoneFailure::NotPairable))
        )
    })
}

fn sas_of(p: &Pumped) -> (Option<String>, Option<String>) {
    let phone = p.phone.iter().find_map(|e| match e {
        DriverEvent::Endpoint(PhoneEvent::Sas(s)) => Some(s.to_string()),
        _ => None,
    });
    let toy = p.toy.iter().find_map(|e| match e {
        DriverEvent::Endpoint(ToyEvent::Sas(s)) => Some(s.to_string()),
        _ => None,
    });
    (phone, toy)
}

/// A family: mum paired with the printed code (the founder), roster v1 {mum, dad, grandma,
/// toy} applied by the toy over mum's session. Returns the world, the three guardians' phones
/// (mum's is `w.phone`), and the chain.
struct Family {
    w: World,
    mum: Arc<DeviceIdentity>,
    dad: Arc<DeviceIdentity>,
    dads_phone: TestPhone,
    grandma: Arc<DeviceIdentity>,
    grandmas_phone: TestPhone,
    toy: PublicIdentity,
    chain: Vec<SignedRoster>,
}

fn family(seed: u8) -> Family {
    let mut w = world(seed, cfg());
    let paired = w.in_session();
    let toy = paired.identity;
    let mum = w.phone.endpoint().identity().clone();
    let mut r = rng(seed.wrapping_add(100));
    let (dad, dads_phone) = guardian_phone(&mut r);
    let (grandma, grandmas_phone) = guardian_phone(&mut r);
    let v1 = founding(FamilyId::generate(&mut r), &[&mum, &dad, &grandma], &toy);
    let now = w.now();
    w.phone
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v1), now)
        .unwrap();
    let p = w.pump();
    assert!(w.toy.endpoint().roster().is_none(), "nothing signed before");
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::AwaitingConfirmation {
            version: Some(1),
            ..
        })
    )));
    // Mum confirms at the toy: the toy co-signs version 1 for its founder and sends it back.
    let p = w.confirm_at_toy();
    let cosigned = p
        .phone
        .iter()
        .find_map(|e| match e {
            DriverEvent::Endpoint(PhoneEvent::Rosters(r)) => r.first().cloned(),
            _ => None,
        })
        .expect("the toy co-signs v1");
    assert!(cosigned.signers().any(|s| s == toy.device_id()));
    assert_eq!(w.toy.endpoint().roster().unwrap().version(), 1);
    let chain = vec![cosigned];
    w.phone.endpoint_mut().set_rosters(chain.clone());
    Family {
        w,
        mum,
        dad,
        dads_phone,
        grandma,
        grandmas_phone,
        toy,
        chain,
    }
}

#[test]
fn t30_removed_phone_refused_and_live_session_ends() {
    let mut f = family(30);
    // Dad was never paired with the toy: the roster alone admits him (a guardian of v1).
    let m = link(&mut f.dads_phone, &mut f.w.toy);
    f.dads_phone.open_session(&f.toy, &mut rng(130)).unwrap();
    let p = pump(&mut f.dads_phone, &mut f.w.toy, &m);
    assert!(phone_opened(&p), "{p:?}");

    // Mum and grandma remove dad (v2). The toy applies it (here through its cloud pull) while
    // dad's session is live: the session ends at once and the connection is dropped.
    let v2 = next(
        &f.chain,
        &[&f.mum, &f.grandma],
        &f.toy,
        &[&f.mum, &f.grandma],
    );
    let now = m.now();
    let applied =
        f.w.toy
            .endpoint_mut()
            .apply_rosters(std::slice::from_ref(&v2), now)
            .unwrap()
            .version();
    assert_eq!(applied, 2);
    let p = pump(&mut f.dads_phone, &mut f.w.toy, &m);
    assert!(
        toy_saw(&p, |e| matches!(
            e,
            DriverEvent::Endpoint(ToyEvent::SessionClosed)
        )),
        "{p:?}"
    );
    assert!(toy_saw(&p, |e| matches!(
        e,
        DriverEvent::TornDown(Error::Protocol(toyseal_pairing::Error::UnknownPeer))
    )));
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::SessionClosed)
    )));
    assert!(f.w.toy.endpoint().session().is_none());
    assert!(!f.w.toy.is_connected());

    // Dad comes back with his still-valid key: refused, nothing reaches the toy's app.
    let m = link(&mut f.dads_phone, &mut f.w.toy);
    f.dads_phone.open_session(&f.toy, &mut rng(131)).unwrap();
    let p = pump(&mut f.dads_phone, &mut f.w.toy, &m);
    assert!(phone_refused(&p), "{p:?}");
    assert!(!phone_opened(&p));
    assert!(p.toy.is_empty(), "no event on the toy: {p:?}");
    // And the toy's recipients no longer include him.
    let roster = f.w.toy.endpoint().roster().unwrap();
    assert!(!roster.contains(f.dad.public()));
    assert!(f.w.toy.endpoint().admitted(f.dad.device_id()).is_none());
    // Mum still gets in.
    let m = link(&mut f.w.phone, &mut f.w.toy);
    f.w.phone.open_session(&f.toy, &mut rng(132)).unwrap();
    assert!(phone_opened(&pump(&mut f.w.phone, &mut f.w.toy, &m)));
    println!(
        "T30: a removed guardian's live session ended when v2 was applied; its reconnect was refused"
    );
}

#[test]
fn t19_roster_reaches_toy_through_guardian_session() {
    let mut f = family(19);
    // v2 removes dad. The server withholds it from the toy (there is no server here at all):
    // only mum's phone knows it.
    let v2 = next(
        &f.chain,
        &[&f.mum, &f.grandma],
        &f.toy,
        &[&f.mum, &f.grandma],
    );
    let mut chain = f.chain.clone();
    chain.push(v2.clone());
    f.w.phone.endpoint_mut().set_rosters(chain.clone());

    // Before mum's next session the toy still admits dad (it has not learnt the removal).
    let m = link(&mut f.dads_phone, &mut f.w.toy);
    f.dads_phone.open_session(&f.toy, &mut rng(119)).unwrap();
    assert!(phone_opened(&pump(&mut f.dads_phone, &mut f.w.toy, &m)));

    // Mum's phone connects: at session start it pushes the newest rosters it knows; the toy
    // verifies the chain from its own version and applies v2.
    let m = link(&mut f.w.phone, &mut f.w.toy);
    f.w.phone.open_session(&f.toy, &mut rng(120)).unwrap();
    let p = pump(&mut f.w.phone, &mut f.w.toy, &m);
    assert!(phone_opened(&p));
    assert!(
        toy_saw(&p, |e| matches!(
            e,
            DriverEvent::Endpoint(ToyEvent::RosterApplied(r)) if r.version() == 2
        )),
        "{p:?}"
    );
    assert_eq!(f.w.toy.endpoint().roster().unwrap().version(), 2);
    assert!(
        !f.w.toy
            .endpoint()
            .roster()
            .unwrap()
            .contains(f.dad.public())
    );

    // Grandma's phone still has only v1: the toy tells her about v2 at her session start.
    f.grandmas_phone.endpoint_mut().set_rosters(f.chain.clone());
    let m = link(&mut f.grandmas_phone, &mut f.w.toy);
    f.grandmas_phone
        .open_session(&f.toy, &mut rng(121))
        .unwrap();
    let p = pump(&mut f.grandmas_phone, &mut f.w.toy, &m);
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::Rosters(r)) if r == std::slice::from_ref(&v2)
    )));

    // A roster that does not chain (a v2 signed by a stranger alone adding himself: another
    // version 2, a fork, T39) changes nothing, and is reported on both sides.
    let stranger = DeviceIdentity::generate(Role::Guardian, &mut rng(122));
    let forged = next(
        &f.chain,
        &[&f.mum, &f.dad, &f.grandma, &stranger],
        &f.toy,
        &[&stranger],
    );
    let now = m.now();
    f.grandmas_phone
        .endpoint_mut()
        .push_rosters(&[forged], now)
        .unwrap();
    let p = pump(&mut f.grandmas_phone, &mut f.w.toy, &m);
    assert!(toy_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(ToyEvent::RosterFork { version: 2, .. })
    )));
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::ToyAnswered {
            version: Some(2),
            answer: toyseal_pairing::ToyAnswer::Fork
        })
    )));
    assert_eq!(f.w.toy.endpoint().roster().unwrap().version(), 2);

    // Dad is refused from now on.
    let m = link(&mut f.dads_phone, &mut f.w.toy);
    f.dads_phone.open_session(&f.toy, &mut rng(123)).unwrap();
    assert!(phone_refused(&pump(&mut f.dads_phone, &mut f.w.toy, &m)));
    println!(
        "T19: the removal reached the toy at the first guardian session after it was signed, \
         with no server involved"
    );
}

#[test]
fn t31_printed_code_refused_after_guardian() {
    let mut f = family(31);
    let code = f.w.code.clone();
    let mut r = rng(231);
    // The babysitter read the tag.
    let (babysitter, mut sitters_phone) = guardian_phone(&mut r);
    assert!(matches!(
        f.w.toy.endpoint_mut().press_pair_button(f.w.medium.now()),
        Err(toyseal_pairing::Error::NotPairable)
    ));
    let m = link(&mut sitters_phone, &mut f.w.toy);
    sitters_phone
        .pair(&code, PairingExpectations::default(), &mut r)
        .unwrap();
    let p = pump(&mut sitters_phone, &mut f.w.toy, &m);
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::PairingFailed(PhoneFailure::NotPairable))
    )));
    assert!(paired(&p).is_none());

    // A guardian opens a window over its session: a fresh one-time code on mum's screen.
    let m = link(&mut f.w.phone, &mut f.w.toy);
    f.w.phone.open_session(&f.toy, &mut r).unwrap();
    pump(&mut f.w.phone, &mut f.w.toy, &m);
    let now = m.now();
    let one_time =
        f.w.phone
            .endpoint_mut()
            .open_pairing_window(now, &mut r)
            .unwrap();
    let p = pump(&mut f.w.phone, &mut f.w.toy, &m);
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::PairingWindowAck(true))
    )));
    assert!(toy_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(ToyEvent::PairingWindowOpened { by }) if *by == f.mum.device_id()
    )));

    // Even inside that window the printed code admits no one (it is just a wrong guess now).
    let m = link(&mut sitters_phone, &mut f.w.toy);
    sitters_phone
        .pair(&code, PairingExpectations::default(), &mut r)
        .unwrap();
    let p = pump(&mut sitters_phone, &mut f.w.toy, &m);
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::PairingFailed(PhoneFailure::Authentication))
    )));
    assert!(!toy_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(ToyEvent::Paired { .. })
    )));

    // The new phone with the one-time code pairs, once.
    let (grandpa, mut grandpas_phone) = guardian_phone(&mut r);
    let m = link(&mut grandpas_phone, &mut f.w.toy);
    grandpas_phone
        .pair(&one_time, PairingExpectations::default(), &mut r)
        .unwrap();
    let p = pump(&mut grandpas_phone, &mut f.w.toy, &m);
    assert!(paired(&p).is_some(), "{p:?}");
    assert!(toy_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(ToyEvent::Paired { phone, code: CodeKind::OneTime })
            if phone == grandpa.public()
    )));
    let m = link(&mut sitters_phone, &mut f.w.toy);
    sitters_phone.endpoint_mut().reset_pairing_attempts();
    sitters_phone
        .pair(&one_time, PairingExpectations::default(), &mut r)
        .unwrap();
    let p = pump(&mut sitters_phone, &mut f.w.toy, &m);
    assert!(paired(&p).is_none(), "the one-time code is spent");
    // Pairing is not membership: until a roster lists grandpa, the toy admits no session.
    assert!(f.w.toy.endpoint().admitted(grandpa.device_id()).is_none());
    assert!(
        f.w.toy
            .endpoint()
            .admitted(babysitter.device_id())
            .is_none()
    );
    assert_eq!(f.w.toy.endpoint().roster().unwrap().version(), 1);

    // Before roster v1, a founding pairing binds the printed code to that phone only.
    let mut w = world(131, cfg());
    w.pair();
    let (_, mut other) = guardian_phone(&mut r);
    w.toy
        .endpoint_mut()
        .press_pair_button(w.medium.now())
        .unwrap();
    let m = link(&mut other, &mut w.toy);
    let code = w.code.clone();
    other
        .pair(&code, PairingExpectations::default(), &mut r)
        .unwrap();
    let p = pump(&mut other, &mut w.toy, &m);
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::PairingFailed(PhoneFailure::WrongPeer))
    )));
    // After a factory reset (physical access) the printed code works again.
    f.w.toy.endpoint_mut().factory_reset().unwrap();
    f.w.reconnect();
    assert!(paired(&f.w.try_pair(&code_of(&f.w))).is_some());
    println!("T31: the printed code admitted no one once the toy had a guardian");
}

/// A toy endpoint with its own identity and `code` (a device posing as the toy).
fn posing_toy(code: PairingCode, r: &mut chacha20::ChaCha20Rng) -> TestToy {
    let identity = Arc::new(DeviceIdentity::generate(Role::Toy, r));
    let toy = Toy::builder(identity, code, MemoryFailureStore::default())
        .build()
        .unwrap();
    TestToy::new(toy, DriverConfig::default())
}

fn code_of(w: &World) -> PairingCode {
    w.code.clone()
}

#[test]
fn t32_replayed_handshake_init_leaves_session() {
    let mut w = world(32, cfg());
    let paired = w.pair();
    // Reconnect through a man in the middle who records the HANDSHAKE_INIT and, once the
    // session is live, injects it again together with garbage frames.
    let (central, peripheral) = MemoryLink::pair(cfg());
    let medium = central.medium();
    let hello: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let injected = Arc::new(Mutex::new(0usize));
    let (h, n) = (hello.clone(), injected.clone());
    medium.set_mitm(
        frame_mitm(medium.att_mtu(), move |d, frame| {
            let mut out = Vec::new();
            if d == Direction::PhoneToToy {
                match frame.first() {
                    Some(0x10) => *h.lock().unwrap() = Some(frame.clone()),
                    Some(0x20) => {
                        if let Some(replay) = h.lock().unwrap().clone() {
                            out.push((d, replay));
                            out.push((d, vec![0xff, 1, 2, 3]));
                            out.push((d, vec![0x03, 0, 0]));
                            out.push((d, Frame::NotPairable.encode()));
                            *n.lock().unwrap() += 4;
                        }
                    }
                    _ => {}
                }
            }
            out.push((d, frame));
            out
        })
        .unwrap(),
    );
    w.medium = medium;
    w.phone.connect(central);
    w.toy.connect(peripheral);
    w.open_session(&paired.identity);
    for i in 0..3u64 {
        let now = w.now();
        w.phone
            .send(&SessionMessage::Ping { nonce: i }, now)
            .unwrap();
        let p = w.pump();
        assert!(
            phone_saw(&p, |e| matches!(
                e,
                DriverEvent::Endpoint(PhoneEvent::Message(SessionMessage::Pong { nonce })) if *nonce == i
            )),
            "{p:?}"
        );
        assert!(p.toy.is_empty(), "the toy saw nothing else: {p:?}");
        assert!(!phone_saw(&p, |e| matches!(
            e,
            DriverEvent::Endpoint(PhoneEvent::SessionClosed) | DriverEvent::TornDown(_)
        )));
    }
    assert_eq!(*injected.lock().unwrap(), 12);
    assert!(w.toy.endpoint().session().is_some());
    assert!(w.phone.endpoint().session().is_some());
    println!("T32: 3 replayed HANDSHAKE_INITs and 9 garbage frames left the live session alone");
}

/// A new connection on which an attacker sends one PAIR_REQUEST (a random guess inside).
fn send_pair_request(toy: &mut TestToy, r: &mut chacha20::ChaCha20Rng) -> (RawPeer, MemoryLink) {
    let (attacker, peripheral) = MemoryLink::pair(cfg());
    let m = attacker.medium();
    toy.connect(peripheral);
    let mut attacker = RawPeer::new(attacker);
    let guess = PairingCode::generate(8, r);
    let (_, request) = PhonePairing::start(&guess, PairingExpectations::default(), r).unwrap();
    attacker.send_frame(&request);
    (attacker, m)
}

#[test]
fn t33_pairing_denial_bounded() {
    let mut w = world(33, cfg());
    let mut r = rng(133);
    w.toy
        .endpoint_mut()
        .press_pair_button(w.medium.now())
        .unwrap();
    // PAIR_REQUEST + ABORT spam, and PAIR_REQUEST + disconnect, many times in one window:
    // no guess was ever tested, so nothing is counted and the window stays open.
    for i in 0..300 {
        let (mut attacker, m) = send_pair_request(&mut w.toy, &mut r);
        if i % 2 == 0 {
            attacker
                .send_frame(&Frame::Abort(toyseal_pairing::AbortReason::Authentication).encode());
        }
        m.advance(Duration::from_millis(20));
        w.toy.poll(m.now(), &mut r);
    }
    let window = w.toy.endpoint().window();
    assert_eq!(window.total_failures().unwrap(), 0);
    assert_eq!(window.failures_in_window(), 0);
    // A request left hanging holds the attempt slot only until the attempt timeout (60 s),
    // and costs nothing.
    w.reconnect();
    let mut w2 = w;
    {
        let (_attacker, m) = send_pair_request(&mut w2.toy, &mut r);
        m.advance(Duration::from_millis(20));
        w2.toy.poll(m.now(), &mut r);
        assert!(w2.toy.endpoint().window().attempt_in_progress());
        m.advance(Duration::from_secs(61));
        w2.toy.poll(m.now(), &mut r);
        assert!(!w2.toy.endpoint().window().attempt_in_progress());
    }
    // A frame that never finishes (one packet every 4 s, under the 5 s gap limit) holds the
    // only connection no longer than the whole-frame deadline.
    let (attacker, peripheral) = MemoryLink::pair(cfg());
    let m = attacker.medium();
    w2.toy.connect(peripheral);
    let mut attacker = RawPeer::new(attacker);
    let mut first = vec![0x80u8];
    first.extend_from_slice(&65_536u32.to_be_bytes());
    first.extend_from_slice(&[1; 10]);
    attacker.send_packet(&first).unwrap();
    let mut held = Duration::ZERO;
    let mut seq = 1u8;
    let torn_down = loop {
        m.advance(Duration::from_secs(4));
        held += Duration::from_secs(4);
        let _ = attacker.send_packet(&[seq & 0x3f, 7, 7, 7]);
        seq = seq.wrapping_add(1);
        let ev = w2.toy.poll(m.now(), &mut r);
        if ev.iter().any(|e| matches!(e, DriverEvent::TornDown(_))) {
            break held;
        }
        assert!(held < Duration::from_secs(120), "never torn down");
    };
    assert!(torn_down <= DriverConfig::default().frame_deadline + Duration::from_secs(8));
    // The real parent still pairs in the same window, first try.
    w2.reconnect();
    let code = w2.code.clone();
    w2.phone
        .pair(&code, PairingExpectations::default(), &mut w2.rng)
        .unwrap();
    let p = w2.pump();
    assert!(paired(&p).is_some(), "{p:?}");
    assert_eq!(w2.toy.endpoint().window().total_failures().unwrap(), 0);
    println!(
        "T33: 300 requests without a guess cost 0 of the budget; a never-ending frame held \
         the connection {torn_down:?}"
    );
}

#[test]
fn t34_code_holder_posing_as_toy_detected_by_sas() {
    // Honest pairing: both sides show the same string.
    let mut w = world(34, cfg());
    let code = w.code.clone();
    let p = w.try_pair(&code);
    let (phone_sas, toy_sas) = sas_of(&p);
    assert!(paired(&p).is_some());
    assert_eq!(phone_sas, toy_sas);
    assert!(phone_sas.is_some());

    // A neighbour who read the tag relays: it poses as the toy to the parent's phone (its own
    // Toy endpoint with the same code) and as a phone to the real toy.
    let mut w = world(134, cfg());
    let code = w.code.clone();
    let mut r = rng(234);
    let mut fake_toy = posing_toy(code.clone(), &mut r);
    fake_toy
        .endpoint_mut()
        .press_pair_button(w.medium.now())
        .unwrap();
    let m = link(&mut w.phone, &mut fake_toy);
    w.phone
        .pair(&code, PairingExpectations::default(), &mut w.rng)
        .unwrap();
    let p = pump(&mut w.phone, &mut fake_toy, &m);
    let (parents_screen, _) = sas_of(&p);
    assert!(
        paired(&p).is_some(),
        "without the QR the phone cannot tell by itself"
    );
    let (_, mut relay_phone) = guardian_phone(&mut r);
    w.toy
        .endpoint_mut()
        .press_pair_button(w.medium.now())
        .unwrap();
    let m = link(&mut relay_phone, &mut w.toy);
    relay_phone
        .pair(&code, PairingExpectations::default(), &mut r)
        .unwrap();
    let p = pump(&mut relay_phone, &mut w.toy, &m);
    let (_, real_toy_says) = sas_of(&p);
    assert!(parents_screen.is_some() && real_toy_says.is_some());
    assert_ne!(
        parents_screen, real_toy_says,
        "the parent sees the strings differ"
    );

    // With the QR fingerprint, the phone itself refuses the impostor.
    let mut w = world(135, cfg());
    let real = w.toy.endpoint().identity().device_id();
    let code = w.code.clone();
    let mut fake_toy = posing_toy(code.clone(), &mut r);
    fake_toy
        .endpoint_mut()
        .press_pair_button(w.medium.now())
        .unwrap();
    let m = link(&mut w.phone, &mut fake_toy);
    let expect = PairingExpectations {
        fingerprint: Some(real),
        ..Default::default()
    };
    w.phone.pair(&code, expect, &mut w.rng).unwrap();
    let p = pump(&mut w.phone, &mut fake_toy, &m);
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::PairingFailed(PhoneFailure::WrongPeer))
    )));

    // A fake toy without the code learns one guess per attempt from the phone's confirmation:
    // the phone stops after its limit.
    let mut w = world(136, cfg());
    let mut guessing_toy = posing_toy(PairingCode::generate(8, &mut r), &mut r);
    let code = w.code.clone();
    let mut tries = 0;
    loop {
        guessing_toy
            .endpoint_mut()
            .press_pair_button(w.medium.now())
            .unwrap();
        let m = link(&mut w.phone, &mut guessing_toy);
        match w
            .phone
            .pair(&code, PairingExpectations::default(), &mut w.rng)
        {
            Ok(()) => {}
            Err(toyseal_pairing::Error::PairingDisabled) => break,
            Err(e) => panic!("{e}"),
        }
        tries += 1;
        let p = pump(&mut w.phone, &mut guessing_toy, &m);
        assert!(paired(&p).is_none());
    }
    assert_eq!(tries, toyseal_pairing::DEFAULT_MAX_FAILED_PAIRINGS);
    println!(
        "T34: the relay showed {parents_screen:?} on the phone and {real_toy_says:?} on the toy; \
         the phone gave a code-less impostor {tries} tries"
    );
}

#[test]
fn t17_a_thief_in_session_with_a_guardians_key_changes_nothing() {
    // A family whose only guardian is mum (v1 {mum, gran (a member), toy}): even removing gran's
    // phone — the one change a guardian and the toy may make together (roster.md §3.3) — needs
    // the toy's co-signature, which the toy gives only after a deliberate confirmation at the
    // toy. A thief with mum's key who reaches the toy over Bluetooth opens a session and still
    // gets nothing signed.
    let mut w = world(17, cfg());
    let paired = w.in_session();
    let toy = paired.identity;
    let mum = w.phone.endpoint().identity().clone();
    let mut r = rng(117);
    let gran = DeviceIdentity::generate(Role::Member, &mut r);
    let v1 = founding(FamilyId::generate(&mut r), &[&mum, &gran], &toy);
    let now = w.now();
    w.phone
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v1), now)
        .unwrap();
    w.pump();
    let p = w.confirm_at_toy();
    let v1 = p
        .phone
        .iter()
        .find_map(|e| match e {
            DriverEvent::Endpoint(PhoneEvent::Rosters(r)) => r.first().cloned(),
            _ => None,
        })
        .expect("the toy co-signs v1 once confirmed");
    let chain = vec![v1];
    let current = from_founding(&chain).unwrap();
    // The thief, with mum's stolen key, signs v2 removing gran.
    let v2 = next(&chain, &[&mum], &toy, &[&mum]);
    assert!(
        current.verify_next(v2.clone()).is_err(),
        "one guardian alone"
    );
    // The thief's phone holds mum's key, opens a session and pushes v2.
    let mut thief = TestPhone::new(Phone::new(mum.clone()), DriverConfig::default());
    let m = link(&mut thief, &mut w.toy);
    thief.open_session(&toy, &mut rng(217)).unwrap();
    let p = pump(&mut thief, &mut w.toy, &m);
    assert!(phone_opened(&p), "{p:?}");
    let now = m.now();
    thief
        .endpoint_mut()
        .push_rosters(std::slice::from_ref(&v2), now)
        .unwrap();
    let p = pump(&mut thief, &mut w.toy, &m);
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::AwaitingConfirmation {
            version: Some(2),
            ..
        })
    )));
    // Nobody at the toy confirms: after the window nothing is signed, nothing changed.
    m.advance(Duration::from_secs(31));
    let p = pump(&mut thief, &mut w.toy, &m);
    assert!(toy_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(ToyEvent::ConfirmationExpired)
    )));
    assert!(phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::ToyAnswered {
            version: Some(2),
            answer: toyseal_pairing::ToyAnswer::Expired
        })
    )));
    assert!(!phone_saw(&p, |e| matches!(
        e,
        DriverEvent::Endpoint(PhoneEvent::Rosters(_))
    )));
    assert_eq!(w.toy.endpoint().roster(), Some(&current));
    println!(
        "T17: a thief in session with a guardian's key pushed v2; no confirmation at the toy, nothing signed, the toy stays at v1"
    );
}

/// The chain verified from its version 1, trusted as given (the founding device's and the
/// server's view; every other device verifies through its anchor).
fn from_founding(chain: &[SignedRoster]) -> Result<Roster, RosterError> {
    let (first, rest) = chain
        .split_first()
        .ok_or(RosterError::Malformed("empty chain"))?;
    Roster::verify_founding(first.clone())?.advance(rest)
}
