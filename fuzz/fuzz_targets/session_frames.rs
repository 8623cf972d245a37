//! An established Noise KK session between the phone and the toy, with a fuzzer-controlled
//! channel: each step the phone seals a message, and the channel delivers frames replayed,
//! reordered, dropped, mutated or injected. Never panics, and the toy's application only ever
//! sees messages the phone sealed, each at most once and in the order sealed (no replay, no
//! reordering, no injection). A rejected TRANSPORT frame closes the session; other injected
//! frames (a replayed handshake, garbage) are ignored while it is live.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use toyseal_fuzz::pairing::{PAIRING, toy};
use toyseal_fuzz::{Mutation, rng};
use toyseal_pairing::{Control, Initiator, SessionConfig, SessionMessage, Timestamp, ToyEvent};

#[derive(Arbitrary, Debug)]
enum Step {
    /// The phone seals the next message; it goes into the channel's queue.
    Seal,
    /// Deliver queued frame `i` (mod queue length), possibly again (replay), then these edits.
    Deliver { i: u8, edits: Vec<Mutation> },
    /// Inject raw bytes.
    Inject(Vec<u8>),
    /// Time passes (idle timeout).
    Wait(u16),
}

fuzz_target!(|input: (u64, Vec<Step>)| {
    let (seed, steps) = input;
    let p = &*PAIRING;
    let mut rng = rng(seed);
    let mut toy = toy();
    let mut now = 0u64;
    let config = SessionConfig::default();
    let Ok((init, hello)) = Initiator::start(&p.phone, p.toy_identity.public(), config, &mut rng)
    else {
        return;
    };
    let out = toy.handle(&hello, Timestamp::from_millis(now), &mut rng);
    let Some(reply) = out.replies.first() else {
        return;
    };
    let Ok(mut phone) = init.finish(reply, Timestamp::from_millis(now)) else {
        return;
    };

    let mut queue: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut sealed = 0u64;
    let mut last_seen: Option<u64> = None;
    let mut open = true;
    for step in steps.into_iter().take(200) {
        let events = match step {
            Step::Seal => {
                let msg = SessionMessage::Control(Control::Play {
                    envelope_id: [sealed as u8; 32],
                });
                if let Ok(f) = phone.seal(&msg, Timestamp::from_millis(now)) {
                    queue.push((sealed, f));
                    sealed += 1;
                }
                continue;
            }
            Step::Deliver { i, edits } => {
                if queue.is_empty() {
                    continue;
                }
                let (_, mut f) = queue[usize::from(i) % queue.len()].clone();
                for e in &edits {
                    e.apply(&mut f);
                }
                toy.handle(&f, Timestamp::from_millis(now), &mut rng).events
            }
            Step::Inject(bytes) => {
                toy.handle(&bytes, Timestamp::from_millis(now), &mut rng)
                    .events
            }
            Step::Wait(s) => {
                now += u64::from(s) * 1000;
                toy.poll(Timestamp::from_millis(now)).events
            }
        };
        for e in events {
            match e {
                ToyEvent::Message(SessionMessage::Control(Control::Play { envelope_id })) => {
                    assert!(open, "a message after the session closed");
                    let n = u64::from(envelope_id[0]);
                    // In order, no repeats: strictly after the last accepted one (mod 256 ids
                    // are fine because at most 200 steps run).
                    if let Some(prev) = last_seen {
                        assert!(n > prev, "replayed or reordered message accepted");
                    }
                    last_seen = Some(n);
                }
                ToyEvent::Message(other) => panic!("a message the phone never sealed: {other:?}"),
                ToyEvent::SessionClosed => open = false,
                ToyEvent::SessionOpened(_) => open = true,
                _ => {}
            }
        }
    }
});
