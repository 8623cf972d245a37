//! Fragment reassembly under sequences of packets: real fragments of real frames (edited by
//! the fuzzer) mixed with raw packets and time jumps. Never panics, never buffers more than
//! the frame limit, and when the packets are exactly the fragmenter's output the frames come
//! back identical.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use toyseal_fuzz::Mutation;
use toyseal_pairing::Timestamp;
use toyseal_pairing::frag::{Fragmenter, MAX_ATT_MTU, MIN_ATT_MTU, Reassembler};

const LIMIT: usize = 4096;

#[derive(Arbitrary, Debug)]
enum Step {
    /// Fragment this frame and deliver its packets, applying `edit` to packet `which`.
    Frame {
        frame: Vec<u8>,
        which: u8,
        edit: Option<Mutation>,
    },
    /// A raw packet.
    Raw(Vec<u8>),
    /// Time passes.
    Wait(u16),
}

fuzz_target!(|input: (u8, Vec<Step>)| {
    let (mtu, steps) = input;
    let mtu = MIN_ATT_MTU + usize::from(mtu) % (MAX_ATT_MTU - MIN_ATT_MTU + 1);
    let Ok(mut frag) = Fragmenter::new(mtu) else {
        return;
    };
    let mut reasm = Reassembler::new(LIMIT, Duration::from_secs(5));
    let mut now = 0u64;
    let mut clean = true;
    for step in steps.into_iter().take(64) {
        match step {
            Step::Frame { frame, which, edit } => {
                let Ok(packets) = frag.fragment(&frame) else {
                    continue;
                };
                let which = usize::from(which) % packets.len().max(1);
                let mut got = None;
                for (i, mut p) in packets.into_iter().enumerate() {
                    if i == which
                        && let Some(e) = &edit
                    {
                        let before = p.clone();
                        e.apply(&mut p);
                        clean &= p == before;
                    }
                    match reasm.push(&p, Timestamp::from_millis(now)) {
                        Ok(Some(f)) => got = Some(f),
                        Ok(None) => {}
                        Err(_) => clean = false,
                    }
                    assert!(reasm.buffered() <= LIMIT);
                }
                if clean && frame.len() <= LIMIT && !frame.is_empty() {
                    assert_eq!(
                        got.as_deref(),
                        Some(&frame[..]),
                        "clean packets, wrong frame"
                    );
                }
            }
            Step::Raw(p) => {
                clean = false;
                let _ = reasm.push(&p, Timestamp::from_millis(now));
                assert!(reasm.buffered() <= LIMIT);
            }
            Step::Wait(ms) => {
                now += u64::from(ms);
                if reasm.poll(Timestamp::from_millis(now)).is_err() {
                    clean = false;
                }
            }
        }
    }
});
