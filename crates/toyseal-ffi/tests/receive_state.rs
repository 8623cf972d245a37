//! The receive state through the exported API (docs/spec/envelope.md §11.3): a removed
//! device's earlier envelopes open through the chain links the phone recorded (not only the
//! recorded head); back-dated and later ones do not; replays and a member's fork are reported;
//! the state survives being saved as bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use toyseal_ffi::{
    EnvelopeMetadata, Freshness, Identity, ReceiveState, Roster, RosterProposal,
    envelope_header_hash,
};

mod common;
use common::*;

/// `sender`'s chain of `n` envelopes sealed under `roster` (sequences 1..=n).
fn chain(roster: &Roster, sender: &Arc<Identity>, n: u64) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for sequence in 1..=n {
        let previous = match out.last() {
            Some(e) => envelope_header_hash(e.clone()).unwrap(),
            None => Vec::new(),
        };
        out.push(
            roster
                .seal(
                    sender.clone(),
                    format!("message {sequence}").into_bytes(),
                    EnvelopeMetadata::default(),
                    sequence,
                    previous,
                )
                .unwrap(),
        );
    }
    out
}

#[test]
fn a_removed_devices_earlier_envelopes_open_through_the_recorded_chain() {
    let f = family();
    let dads = chain(&f.v1, &f.dad, 3);
    let head = envelope_header_hash(dads[1].clone()).unwrap();
    // Version 2 removes dad; his second envelope is the last the family accepts.
    let v2 = RosterProposal::next(f.v1.clone(), vec![f.mum.public_key(), f.toy.public_key()])
        .unwrap()
        .with_last_envelope(f.dad.public_key(), 2, head.clone())
        .unwrap()
        .sign(f.mum.clone())
        .cosign_recovery(f.recovery.clone());
    let v2 = f.v1.verify_next(v2).unwrap();

    // The plain open admits only the head.
    assert_eq!(
        v2.open(f.mum.clone(), dads[1].clone()).unwrap().content,
        b"message 2"
    );
    assert!(v2.open(f.mum.clone(), dads[0].clone()).is_err());

    let state = ReceiveState::new();
    // The state does not know the head's link yet: the walk stops there (a gap).
    assert_eq!(
        state.gap(f.dad.public_key(), head.clone()).unwrap(),
        Some(head.clone())
    );
    assert!(
        v2.open_with_state(f.mum.clone(), dads[0].clone(), state.clone())
            .is_err()
    );
    // The head opens and is recorded; now its ancestor opens too.
    let opened = v2
        .open_with_state(f.mum.clone(), dads[1].clone(), state.clone())
        .unwrap();
    assert_eq!(opened.freshness, Freshness::New);
    let opened = v2
        .open_with_state(f.mum.clone(), dads[0].clone(), state.clone())
        .unwrap();
    assert_eq!(opened.content, b"message 1");
    assert_eq!(opened.freshness, Freshness::Late);
    assert_eq!(state.gap(f.dad.public_key(), head.clone()).unwrap(), None);
    assert_eq!(state.highest_sequence(f.dad.public_key()).unwrap(), Some(2));
    // Seen again: a replay.
    let again = v2
        .open_with_state(f.mum.clone(), dads[0].clone(), state.clone())
        .unwrap();
    assert_eq!(again.freshness, Freshness::Replay);

    // After the head: refused. Back-dated (a new envelope at sequence 1): refused.
    assert!(
        v2.open_with_state(f.mum.clone(), dads[2].clone(), state.clone())
            .is_err()
    );
    let backdated =
        f.v1.seal(
            f.dad.clone(),
            b"back-dated".to_vec(),
            EnvelopeMetadata::default(),
            1,
            Vec::new(),
        )
        .unwrap();
    assert!(
        v2.open_with_state(f.mum.clone(), backdated, state.clone())
            .is_err()
    );

    // Saved and restored, the state still knows what it saw.
    let saved = state.encode().unwrap();
    let restored = ReceiveState::decode(saved.clone()).unwrap();
    assert_eq!(restored.link_count().unwrap(), 2);
    assert_eq!(restored.encode().unwrap(), saved);
    let replay = v2
        .open_with_state(f.mum.clone(), dads[1].clone(), restored)
        .unwrap();
    assert_eq!(replay.freshness, Freshness::Replay);
    assert!(ReceiveState::decode(saved[..saved.len() - 1].to_vec()).is_err());
}

#[test]
fn recording_a_verified_envelope_connects_the_chain_without_opening_it() {
    let f = family();
    let dads = chain(&f.v1, &f.dad, 3);
    let head = envelope_header_hash(dads[2].clone()).unwrap();
    let v2 = RosterProposal::next(f.v1.clone(), vec![f.mum.public_key(), f.toy.public_key()])
        .unwrap()
        .with_last_envelope(f.dad.public_key(), 3, head)
        .unwrap()
        .sign(f.mum.clone())
        .cosign_recovery(f.recovery.clone());
    let v2 = f.v1.verify_next(v2).unwrap();
    let state = ReceiveState::new();
    assert_eq!(
        v2.record_envelope(dads[2].clone(), state.clone()).unwrap(),
        Freshness::New
    );
    assert_eq!(
        v2.record_envelope(dads[1].clone(), state.clone()).unwrap(),
        Freshness::Late
    );
    let opened = v2
        .open_with_state(f.mum.clone(), dads[0].clone(), state.clone())
        .unwrap();
    assert_eq!(opened.content, b"message 1");
    // A tampered envelope is not recorded; nor one from another family.
    let mut bad = dads[0].clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    assert!(v2.record_envelope(bad, state.clone()).is_err());
    let other = family();
    let foreign = chain(&other.v1, &other.dad, 1).remove(0);
    assert!(v2.record_envelope(foreign, state.clone()).is_err());
    assert_eq!(state.link_count().unwrap(), 3);
}

#[test]
fn a_members_fork_and_an_unsequenced_envelope_are_refused_and_reported() {
    let f = family();
    let state = ReceiveState::new();
    let first = chain(&f.v1, &f.dad, 1).remove(0);
    let opened =
        f.v1.open_with_state(f.mum.clone(), first, state.clone())
            .unwrap();
    assert_eq!(opened.freshness, Freshness::New);
    // Another envelope at dad's sequence 1 (a copied key): a fork, refused.
    let fork = chain(&f.v1, &f.dad, 1).remove(0);
    assert!(
        f.v1.open_with_state(f.mum.clone(), fork.clone(), state.clone())
            .is_err()
    );
    assert_eq!(
        f.v1.record_envelope(fork, state.clone()).unwrap(),
        Freshness::Fork
    );
    // Sequence 0 is on no chain: refused from a member with the state, reported as such.
    let unsequenced =
        f.v1.seal(
            f.mum.clone(),
            b"unsequenced".to_vec(),
            EnvelopeMetadata::default(),
            0,
            Vec::new(),
        )
        .unwrap();
    assert!(
        f.v1.open_with_state(f.dad.clone(), unsequenced.clone(), state.clone())
            .is_err()
    );
    assert_eq!(
        f.v1.record_envelope(unsequenced, state.clone()).unwrap(),
        Freshness::Unsequenced
    );
}
