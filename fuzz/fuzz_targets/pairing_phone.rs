//! The phone's side of pairing fed a real toy's answers, mutated by the fuzzer, or raw
//! attacker frames. Never panics; if it ever reports `Paired`, the identity is the real toy's
//! (an attacker cannot make the phone pin a key of its choosing), and only when every frame
//! came unmodified from the real toy with the right code.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use toyseal_fuzz::pairing::{PAIRING, toy};
use toyseal_fuzz::{Mutation, rng};
use toyseal_pairing::{PairingExpectations, PhonePairing, PhoneStep, Timestamp};

#[derive(Arbitrary, Debug)]
enum Reply {
    /// The real toy's reply, then these edits.
    Real(Vec<Mutation>),
    /// Attacker bytes instead.
    Raw(Vec<u8>),
}

fuzz_target!(|input: (u64, Vec<Reply>)| {
    let (seed, replies) = input;
    let p = &*PAIRING;
    let mut rng = rng(seed);
    let mut toy = toy();
    let now = Timestamp::from_millis(0);
    let _ = toy.press_pair_button(now);
    let Ok((mut phone, mut frame)) =
        PhonePairing::start(&p.code, PairingExpectations::default(), &mut rng)
    else {
        return;
    };
    let mut untouched = true;
    for reply in replies.into_iter().take(6) {
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
        match phone.handle(&p.phone, &bytes) {
            Ok(PhoneStep::Send(next)) => frame = next,
            Ok(PhoneStep::Paired(t)) => {
                assert_eq!(
                    &t.identity,
                    p.toy_identity.public(),
                    "paired with a forged identity"
                );
                assert!(untouched, "paired although a frame was changed");
                return;
            }
            Ok(_) | Err(_) => return,
        }
    }
});
